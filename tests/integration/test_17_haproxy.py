"""17 HAProxy front door (deploy/haproxy/haproxy.cfg) with the real haproxy
binary in front of real hamqttd nodes (127.0.0.2, 127.0.0.3; each an
independent broker until clustering exists):

  - the shipped file passes `haproxy -c`;
  - stickiness on the MQTT client identifier brings a returning client back to
    the node it used, against what leastconn alone would choose;
  - mosquitto_sub and mosquitto_pub exchange a message through HAProxy;
  - send-proxy-v2: each node logs the client's own address and source port;
  - a SIGKILLed node fails its health check (GET /api/v5/status), is taken
    out, new connections go to the other node; restarted on the same ports it
    is put back and used again;
  - health checks leave nothing in the nodes' logs at info level.

The test config is generated from the shipped file: bind port, server
addresses and check ports rewritten, check interval 200 ms, a stats socket in
the test directory, its log on stdout, no daemon/chroot/user. Skipped only if there is no
haproxy binary (scripts/deps.sh installs Debian's)."""

import os
import subprocess
import time

import pytest

import mqttraw as m
from conftest import broker_env, hamqttd_path, require, wait_until
from haproxy import HAPROXY, SHIPPED, HAProxy
from helpers import MosquittoSub, mosquitto_pub
from mqttraw import T

pytestmark = require(None if HAPROXY else "binary not found (apt-get install haproxy; "
                                             "scripts/deps.sh installs it)", "haproxy")


# ---- nodes ----------------------------------------------------------------------

def start_node(broker, ip, level="debug"):
    """A hamqttd node with PROXY protocol on, MQTT and dashboard bound to ip."""
    b = broker({"listeners.tcp.default.proxy_protocol": "true", "log.level": level},
               args=lambda b: ["--set", "listeners.tcp.default.bind=%s:%d" % (ip, b.port),
                               "--set", "dashboard.listeners.http.bind=%s:%d" % (ip, b.http_port)])
    b.ip = ip
    b.wait_listening(b.http_port)
    return b


def restart_node(b):
    """Start b's hamqttd again with the same config file and ports."""
    assert not b.alive()
    args = b.args(b) if callable(b.args) else b.args
    with open(b.log_path, "ab") as logf:
        b.proc = subprocess.Popen([hamqttd_path(), "-c", b.conf_path] + list(args),
                                  stdout=logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=broker_env(b.env),
                                  cwd=b.workdir)
    b.returncode = None
    b.wait_listening(b.port)
    b.wait_listening(b.http_port)


@pytest.fixture
def haproxy(tmp_path):
    """Factory: haproxy(nodes) -> a running HAProxy with every node UP."""
    made = []

    def start(nodes):
        workdir = str(tmp_path / ("haproxy%d" % len(made)))
        os.makedirs(workdir, exist_ok=True)
        hp = HAProxy(workdir, nodes)
        made.append(hp)
        for b in nodes:
            hp.wait_state(b, "UP")
        return hp

    yield start
    for hp in made:
        hp.stop()


@pytest.fixture
def two(broker, haproxy):
    n1 = start_node(broker, "127.0.0.2")
    n2 = start_node(broker, "127.0.0.3")
    return n1, n2, haproxy([n1, n2])


# ---- helpers --------------------------------------------------------------------

def connected_lines(b, cid):
    return b.log_lines("client connected client_id=%s addr=" % cid)


def landing(nodes, cid, action, timeout=5.0):
    """Run action() (which connects client cid through HAProxy); return the
    node whose log gained a `client connected client_id=cid` line."""
    before = [len(connected_lines(b, cid)) for b in nodes]
    result = action()

    def which():
        gained = [b for b, n in zip(nodes, before) if len(connected_lines(b, cid)) > n]
        assert len(gained) <= 1, "%s connected on several nodes" % cid
        return gained[0] if gained else None
    return wait_until(which, timeout, 0.05, "%s connected on a node" % cid), result


def raw_via(hp, cid):
    c = m.RawClient(hp.port, version=4)
    c.connect(cid)
    return c


def bye(c):
    try:
        c.send(m.disconnect())
    except m.Closed:
        pass
    c.close()


def other(nodes, b):
    return [x for x in nodes if x is not b][0]


# ---- tests ----------------------------------------------------------------------

def test_shipped_config_is_valid():
    r = subprocess.run([HAPROXY, "-c", "-f", SHIPPED], capture_output=True, text=True,
                       timeout=T(10))
    assert r.returncode == 0, r.stdout + r.stderr


def test_sticky_on_client_id(two):
    """A returning client id goes back to its node although leastconn would
    send a new client to the other one."""
    n1, n2, hp = two
    nodes = [n1, n2]
    home, c = landing(nodes, "sticky-x", lambda: raw_via(hp, "sticky-x"))
    away = other(nodes, home)
    bye(c)
    wait_until(lambda: hp.conns(home) == 0, 5, 0.05, "sticky-x gone from haproxy")
    # one filler on each node, then drop the one away from home: home 1, away 0
    fillers = {}
    for cid in ("filler-1", "filler-2"):
        b, c = landing(nodes, cid, lambda cid=cid: raw_via(hp, cid))
        fillers[b.ip] = c
    assert set(fillers) == {n1.ip, n2.ip}, "leastconn did not spread the fillers"
    bye(fillers.pop(away.ip))
    wait_until(lambda: hp.conns(away) == 0 and hp.conns(home) == 1, 5, 0.05,
               "connections home 1 / away 0")
    # the same id, reconnecting (raw client, then mosquitto_pub): home every time
    b, c = landing(nodes, "sticky-x", lambda: raw_via(hp, "sticky-x"))
    assert b is home, "sticky-x went to %s, its session is on %s" % (b.ip, home.ip)
    bye(c)
    wait_until(lambda: hp.conns(home) == 1, 5, 0.05, "sticky-x gone again")
    b, _ = landing(nodes, "sticky-x",
                   lambda: mosquitto_pub(hp.port, "hp/sticky", "again", extra=["-i", "sticky-x"]))
    assert b is home
    # control: a new id goes where leastconn says (away)
    b, c = landing(nodes, "fresh-y", lambda: raw_via(hp, "fresh-y"))
    assert b is away, "a new client id should go to the least loaded node"
    bye(c)
    for c in fillers.values():
        bye(c)


def test_pub_sub_through_haproxy(two):
    """mosquitto_sub and mosquitto_pub through HAProxy exchange a message; the
    other node is stopped first (the nodes are not clustered yet), so HAProxy
    must take it out and send both clients to the same node."""
    n1, n2, hp = two
    assert n2.stop() == 0
    hp.wait_state(n2, "DOWN")
    sub = MosquittoSub(hp.port, "hp/chat", qos=1, count=1, extra=["-i", "hp-sub"])
    try:
        mosquitto_pub(hp.port, "hp/chat", "through haproxy", qos=1, extra=["-i", "hp-pub"])
        assert sub.messages(1) == [("hp/chat", "through haproxy")]
        assert sub.wait() == 0
    finally:
        sub.close()
    assert connected_lines(n1, "hp-sub") and connected_lines(n1, "hp-pub")


def test_nodes_log_the_real_client_address(two):
    """send-proxy-v2: each node logs 127.0.0.1 and the client's own source
    port, not the address HAProxy connected from."""
    n1, n2, hp = two
    seen = {}
    clients = []
    for cid in ("addr-1", "addr-2"):  # leastconn: one on each node
        b, c = landing([n1, n2], cid, lambda cid=cid: raw_via(hp, cid))
        clients.append(c)
        ip, port = c.sock.getsockname()
        line = b.wait_log("client connected client_id=%s addr=" % cid)[-1]
        assert "addr=%s:%d " % (ip, port) in line, (ip, port, line)
        seen[b.ip] = cid
    assert set(seen) == {n1.ip, n2.ip}
    for c in clients:
        bye(c)


def test_killed_node_taken_out_and_back(two):
    n1, n2, hp = two
    victim, survivor = n2, n1
    victim.kill()  # SIGKILL
    hp.wait_state(victim, "DOWN")
    # new connections all go to the survivor and work
    held = []
    for i in range(4):
        cid = "after-kill-%d" % i
        b, c = landing([n1, n2], cid, lambda cid=cid: raw_via(hp, cid))
        assert b is survivor
        held.append(c)
    sub = MosquittoSub(hp.port, "hp/failover", qos=1, count=1, extra=["-i", "fo-sub"])
    try:
        mosquitto_pub(hp.port, "hp/failover", "still serving", qos=1, extra=["-i", "fo-pub"])
        assert sub.messages(1) == [("hp/failover", "still serving")]
        assert sub.wait() == 0
    finally:
        sub.close()
    # back on the same ports: HAProxy puts it back and sends it new clients
    restart_node(victim)
    hp.wait_state(victim, "UP")
    b, c = landing([n1, n2], "back-again", lambda: raw_via(hp, "back-again"))
    assert b is victim, "a restarted node should get new clients (leastconn)"
    c.subscribe("hp/back", qos=1)
    c.publish("hp/back", b"served", qos=1)
    assert c.expect(m.PUBLISH).payload == b"served"
    bye(c)
    for c in held:
        bye(c)


def test_health_checks_leave_no_log_noise(broker, haproxy):
    """Checks every 200 ms for 3 s: nothing at info level in a node's log
    (the debug-level node shows that the checks did arrive)."""
    quiet = start_node(broker, "127.0.0.2", level="info")
    chatty = start_node(broker, "127.0.0.3", level="debug")
    haproxy([quiet, chatty])
    check = "GET /api/v5/status -> 200"
    before_quiet = quiet.log_text().splitlines()
    before_chatty = len(chatty.log_lines(check))
    time.sleep(T(3))
    new = quiet.log_text().splitlines()[len(before_quiet):]
    assert new == [], "health checks logged at info level: %r" % new[:5]
    assert len(chatty.log_lines(check)) - before_chatty >= 5, "health checks did not arrive"

