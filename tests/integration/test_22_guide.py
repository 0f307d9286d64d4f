"""22 the HA guide end to end (../shared/seeds: install several nodes, set
cluster.name and node.name, `cluster join`, `cluster status`, HAProxy in
front, mosquitto_pub / mosquitto_sub through it, stop a node), with hamqtt:

  three nodes on 127.0.0.1-3, joined with `hamqtt-ctl cluster join`;
  `cluster status` shows three running; the real haproxy from
  deploy/haproxy/haproxy.cfg (rewritten as in test_17: ports, 200 ms checks)
  in front, with send-proxy-v2 and health checks on /api/v5/status, so each
  node's default listener has proxy_protocol = true (a second listener,
  "direct", without it lets the test talk to one node directly);
  mosquitto_sub (persistent session, QoS 1) and mosquitto_pub exchange a
  message through HAProxy; the subscriber's node is SIGKILLed; mosquitto_sub
  reconnects through HAProxy by itself (it resubscribes on every CONNACK;
  the test waits for that SUBACK before publishing, so nothing depends on
  timing); a publish through HAProxy reaches it; `cluster status` shows the
  node stopped; restarted, it is running again on every node, HAProxy puts
  it back, and it serves: a publish on it directly reaches the subscriber,
  and a subscriber on it directly receives a publish made through HAProxy."""

import subprocess

import pytest

from conftest import require

import mqttraw as m
from cluster import HEARTBEAT
from helpers import MosquittoSub, mosquitto_pub
from mqttraw import T
from haproxy import HAPROXY, HAProxy

pytestmark = require(None if HAPROXY else "binary not found (apt-get install haproxy; "
                                             "scripts/deps.sh installs it)", "haproxy")

GUIDE_NODE = {
    "listeners.tcp.default.proxy_protocol": True,
    "listeners.tcp.direct.bind": lambda n: "%s:%d" % (n.host, n.alloc_port("direct")),
}


@pytest.fixture
def front(cluster, tmp_path):
    """A joined three-node cluster and a running HAProxy in front of it."""
    cl = cluster(3, GUIDE_NODE)
    made = []

    def start():
        workdir = tmp_path / "haproxy"
        workdir.mkdir()
        hp = HAProxy(str(workdir), cl.nodes)
        made.append(hp)
        for n in cl.nodes:
            hp.wait_state(n, "UP")
        return hp
    yield cl, start
    for hp in made:
        hp.stop()


def status_says(node, target, word):
    """`hamqtt-ctl cluster status` on node shows target with word (running /
    stopped) on its line."""
    rc, out, err = node.ctl("cluster", "status")
    assert rc == 0, "cluster status -> %d: %s" % (rc, err)
    lines = [ln for ln in out.splitlines() if target.name in ln]
    return bool(lines) and word in lines[0]


def pub_direct(node, topic, message, cid):
    """mosquitto_pub to node's "direct" listener (no PROXY header needed)."""
    cmd = ["mosquitto_pub", "-h", node.host, "-p", str(node.ports["direct"]), "-t", topic,
           "-m", message, "-q", "1", "-i", cid]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=T(15))
    assert r.returncode == 0, "%s -> %d: %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr)


def connected_on(nodes, cid):
    return [n for n in nodes if n.log_lines(r"client connected client_id=%s addr=" % cid)]


def test_guide_end_to_end(front):
    cl, start_haproxy = front
    n1, n2, n3 = cl.nodes
    # Step 2: cluster join, cluster status
    cl.join_all()
    for target in cl.nodes:
        assert status_says(n1, target, "running"), target.name
    # Step 3: HAProxy in front
    hp = start_haproxy()
    # Step 6.1: mosquitto_sub and mosquitto_pub through HAProxy
    sub = MosquittoSub(hp.port, "guide/topic", qos=1, count=4, wait_seconds=90,
                       extra=["-i", "guide-sub", "-c"])
    try:
        home = connected_on(cl.nodes, "guide-sub")
        assert len(home) == 1, "guide-sub connected on %r" % home
        victim = home[0]
        mosquitto_pub(hp.port, "guide/topic", "Hello MQTT Cluster", qos=1,
                      extra=["-i", "guide-pub-1"])
        assert sub.messages(1) == [("guide/topic", "Hello MQTT Cluster")]
        # Step 6.2: a broker fails (SIGKILL of the subscriber's node)
        victim.kill()
        hp.wait_state(victim, "DOWN", timeout=10)
        assert sub.wait_line(lambda ln: "received SUBACK" in ln, timeout=20) == []
        survivors = [n for n in cl.nodes if n is not victim]
        mosquitto_pub(hp.port, "guide/topic", "still operational", qos=1,
                      extra=["-i", "guide-pub-2"])
        assert sub.messages(1) == [("guide/topic", "still operational")]
        for n in survivors:
            cl.wait_members(n, cl.view(running=survivors, stopped=[victim]),
                            timeout=HEARTBEAT + 1)
            assert status_says(n, victim, "stopped")
        # the node comes back: it rejoins by itself and serves again
        victim.restart()
        cl.wait_all_running(timeout=10)
        assert status_says(survivors[0], victim, "running")
        hp.wait_state(victim, "UP", timeout=10)
        pub_direct(victim, "guide/topic", "via the restarted node", "guide-pub-3")
        assert sub.messages(1) == [("guide/topic", "via the restarted node")]
        direct = victim.raw(version=5, port=victim.ports["direct"], auto_ack=True)
        direct.connect("guide-direct")
        direct.subscribe("guide/topic", qos=1)
        mosquitto_pub(hp.port, "guide/topic", "through haproxy again", qos=1,
                      extra=["-i", "guide-pub-4"])
        assert direct.expect(m.PUBLISH, timeout=5).payload == b"through haproxy again"
        assert sub.messages(1) == [("guide/topic", "through haproxy again")]
        assert sub.wait() == 0
    finally:
        sub.close()
