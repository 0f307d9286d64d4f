"""34 HAProxy failover (deploy/haproxy/haproxy.cfg, issue 9 item 4) with real
paho clients, real haproxy and a joined three-node cluster.

Issue 9 saw a client's reconnect after a SIGKILL reach a surviving node and
then be cut by HAProxy "as the dead server was marked down", before the client
read its CONNACK. `on-marked-down shutdown-sessions` only ends streams
attached to the server that goes down, but a stream counts as attached to a
server from the moment it is assigned to it until it connects elsewhere. With
plain `option redispatch` the stick table sent the reconnect to the dead node,
each refused connect was followed by a turn-around of 1 s (min(timeout
connect, 1 s)) still attached to that node, and the server went DOWN during
one of them: the kill arrived as the stream was redispatched, so the log
shows termination "D" under a survivor, with "+2" retries. `option redispatch
1` leaves the dead server on the first refusal, microseconds later: the
window is gone, and shutdown-sessions stays for what it is for (second test).

  - a paho client whose node is SIGKILLed reconnects while that node is still
    UP in HAProxy (redispatched: "+1" in the log), gets its CONNACK from a
    survivor and is not cut when the dead node is marked DOWN; the shipped
    check timings (fails with the config before `option redispatch 1`:
    every such client is cut, termination D);
  - a node that freezes (SIGSTOP: its sockets stay open, TCP still accepts)
    answers no health check: when it is marked DOWN, shutdown-sessions cuts
    its clients and they reconnect to a survivor, long before their own
    keepalive (60 s) would notice. Without shutdown-sessions they would sit
    on the frozen node.
(test_21_cluster_dead_node checks the same redispatch with a raw client and
fast checks.)"""

import re
import threading
import time

import paho.mqtt.client as mqtt

from conftest import require, wait_until
from haproxy import HAPROXY, HAProxy, tcplog

pytestmark = require(None if HAPROXY else "binary not found (apt-get install haproxy)", "haproxy")

NODE = {"listeners.tcp.default.proxy_protocol": True}
KEEPALIVE = 60


class Client:
    """A paho client with a persistent session through HAProxy, reconnecting
    on its own; records its CONNACKs and disconnects."""

    def __init__(self, port, cid, reconnect_delay):
        self.cid = cid
        self.lock = threading.Lock()
        self.connacks, self.disconnects = [], []
        self.c = mqtt.Client(cid, clean_session=False)
        self.c.reconnect_delay_set(reconnect_delay, reconnect_delay)
        self.c.on_connect = lambda c, u, f, rc: self._log(self.connacks, rc)
        self.c.on_disconnect = lambda c, u, rc: self._log(self.disconnects, rc)
        self.c.connect("127.0.0.1", port, KEEPALIVE)
        self.c.loop_start()
        wait_until(lambda: self.connacks, 10, 0.02, "%s CONNACK" % cid)

    def _log(self, where, rc):
        with self.lock:
            where.append((time.monotonic(), rc))

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def home_of(cl, cid):
    """The node whose log says cid connected there last."""
    last = {}
    for n in cl.nodes:
        lines = n.log_lines(r"client connected client_id=%s " % re.escape(cid))
        if lines:
            last[n] = lines[-1][:32]  # the log line starts with its timestamp
    assert last, "%s connected nowhere" % cid
    return max(last, key=last.get)


def front(cluster, tmp_path, checks, request):
    cl = cluster(3, NODE)
    cl.join_all()
    wd = tmp_path / "hp"  # the stats socket path must stay under 98 bytes
    wd.mkdir()
    hp = HAProxy(str(wd), cl.nodes) if checks else HAProxy(str(wd), cl.nodes, checks=None)
    request.addfinalizer(hp.stop)  # haproxy is ours to stop, pass or fail
    for n in cl.nodes:
        hp.wait_state(n, "UP", timeout=15)
    return cl, hp


def clients_on(cl, hp, victim, prefix, delay, want=2):
    """Clients connected through hp until `want` of them are on victim (leastconn
    spreads them: about one in three lands there)."""
    made, on = [], []
    for i in range(3 * want + 3):
        c = Client(hp.port, "%s-%d" % (prefix, i), delay)
        made.append(c)
        if home_of(cl, c.cid) is victim:
            on.append(c)
            if len(on) == want:
                break
    assert len(on) == want, "leastconn put %d of %d clients on %s" % (len(on), len(made),
                                                                       victim.name)
    return made, on


def test_redispatched_client_not_cut_when_dead_node_marked_down(cluster, tmp_path, request):
    cl, hp = front(cluster, tmp_path, False, request)   # the shipped check timings
    victim = cl.nodes[1]
    made, on = clients_on(cl, hp, victim, "fo-kill", 60.0)
    again = []
    try:
        t0 = time.monotonic()
        victim.kill()
        for c in on:   # these stay away (60 s reconnect delay): `again` takes over their ids
            c.c.loop_stop()
        # The victim failed a check but is not DOWN yet (the next two failures,
        # 0.5 s apart, mark it): a reconnect now is sent to it by the stick table
        # and is refused, and the DOWN mark comes within the 3 s the old config
        # spent retrying it (1 s turn-arounds), so that config cut every one.
        wait_until(lambda: re.match(r"UP \d/\d", hp.servers()[hp.name(victim)]["status"]),
                   10, 0.01, "%s failing its checks" % victim.name)
        for c in on:
            again.append(Client(hp.port, c.cid, 0.2))
            assert home_of(cl, c.cid) is not victim
        hp.wait_state(victim, "DOWN", timeout=20)
        time.sleep(2.0)  # past the DOWN mark: shutdown-sessions has run
        for c in again:
            assert not c.disconnects and c.c.is_connected(), (
                "%s cut after its reconnect (%d disconnects); haproxy log:\n%s"
                % (c.cid, len(c.disconnects), hp.log()[-3000:]))
        assert time.monotonic() - t0 < 60
    finally:
        for c in made + again:
            c.close()
    # the log lines are written at close: each reconnect was redispatched off
    # the dead node, and no connection was cut when it was marked DOWN
    wait_until(lambda: sum(r.startswith("+") for _, _, _, r in tcplog(hp.log())) >= len(on),
               10, 0.05, "haproxy log lines of the redispatched reconnects")
    cut = [x for x in tcplog(hp.log()) if x[2].startswith("D")]
    assert not cut, "cut when %s was marked down: %r" % (victim.name, cut)


def test_frozen_node_clients_moved_by_shutdown_sessions(cluster, tmp_path, request):
    cl, hp = front(cluster, tmp_path, True, request)   # 200 ms checks, fall 2
    victim = cl.nodes[2]
    made, on = clients_on(cl, hp, victim, "fo-stop", 1.0)
    try:
        t0 = time.monotonic()
        victim.pause()   # SIGSTOP: connections stay open, nothing answers
        hp.wait_state(victim, "DOWN", timeout=30)
        for c in on:
            # well before KEEPALIVE: it was HAProxy that cut them
            wait_until(lambda c=c: [a for a in c.connacks if a[0] > t0], 20, 0.05,
                       "%s back on a survivor" % c.cid)
            assert home_of(cl, c.cid) is not victim
        assert time.monotonic() - t0 < KEEPALIVE / 2
    finally:
        for c in made:
            c.close()
        victim.resume()
    cut = [x for x in tcplog(hp.log()) if x[2].startswith("D")]
    assert {x[1] for x in cut} == {hp.name(victim)} and len(cut) >= len(on), hp.log()[-3000:]
