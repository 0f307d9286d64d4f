"""21 (cluster) a CONNECT for a client id last seen on a node that just died
(issue 8: "waits about a second before CONNACK", seen through HAProxy right
after a SIGKILL; ARCHITECTURE.md "The cluster" says what a CONNECT waits
for).

A killed node's kernel closes its links at once, so the other nodes know it
stopped before anyone can connect elsewhere: a CONNECT on node 1 for the id
whose session was on the SIGKILLed node 2 asks only the peers still linked
(or stops waiting for node 2 the moment its link closes) and gets its CONNACK
at once. The log says so ("not waiting for <node 2>") and never that the
request ran into its 3 s bound.

The second measured through HAProxy was HAProxy's own: the stick table sends
the client back to its dead node until the health checks take it out, and
HAProxy waited a turn-around of min(timeout connect, 1 s) before each retry,
redispatching only on the last one. deploy/haproxy/haproxy.cfg now says
`option redispatch 1`: the first retry goes to another node at once. The
second test reconnects through the shipped HAProxy config (as test_22 runs
it) right after the SIGKILL."""

import statistics
import time

import pytest

import mqttraw as m
from mqttraw import T
from haproxy import HAPROXY, HAProxy
from test_22_guide import GUIDE_NODE
from conftest import require

EXPIRY_300 = [(m.SESSION_EXPIRY, 300)]
ROUNDS = 3


def test_connect_after_holder_killed_does_not_wait(cluster):
    cl = cluster(3)
    cl.join_all()
    n1, n2, n3 = cl.nodes
    took = []
    for rnd in range(ROUNDS):
        cid = "dead-holder-%d" % rnd
        old = n2.raw(version=5, auto_ack=True)
        old.connect(cid, clean=False, props=EXPIRY_300)
        assert old.subscribe(("dead/%d" % rnd, 1)).codes == [1]
        since = n1.log_size()
        n2.kill()  # returns once it is reaped: its sockets are closed
        t0 = time.monotonic()
        new = n1.raw(version=5, auto_ack=True)
        ack = new.connect(cid, clean=False, props=EXPIRY_300)
        took.append(time.monotonic() - t0)
        old.close()
        # the session died with node 2 (memory store): a fresh one here
        assert not ack.session_present, ack
        log = n1.log_text()[since:]
        assert "client_id=%s: not waiting for %s" % (cid, n2.name) in log, log[-3000:]
        assert "did not answer within" not in log, log[-3000:]
        new.disconnect()
        n2.restart()
        cl.wait_all_running(timeout=15)
    # a loaded 2-core machine stretches everything; the bound is far below
    # the 1 s reported and far above what the node needs (~1 ms alone)
    assert statistics.median(took) < T(0.5), took


@require(None if HAPROXY else "binary not found (apt-get install haproxy)", "haproxy")
def test_haproxy_reconnect_after_kill(cluster, tmp_path):
    """Through HAProxy (shipped config): a client whose node was just
    SIGKILLed reconnects with the same client id; HAProxy still sticks it to
    the dead node, is refused, and must try a live node at once: the CONNACK
    comes promptly and the connection stays up when the dead node is marked
    down. Before `option redispatch 1`: 1 s (or 2 s) of turn-around, and
    with these fast checks the connection was then cut (termination D)."""
    cl = cluster(3, GUIDE_NODE)
    cl.join_all()
    wd = tmp_path / "hp"  # the stats socket path must stay under 98 bytes
    wd.mkdir()
    hp = HAProxy(str(wd), cl.nodes)
    took = []
    try:
        for rnd in range(ROUNDS):
            for n in cl.nodes:
                hp.wait_state(n, "UP", timeout=10)
            cid = "hp-dead-%d" % rnd
            old = m.RawClient(hp.port, version=5, auto_ack=True)
            old.connect(cid, clean=False, props=EXPIRY_300)
            home = [n for n in cl.nodes if n.log_lines(r"client connected client_id=%s " % cid)]
            assert len(home) == 1, home
            home = home[0]
            home.kill()
            t0 = time.monotonic()
            new = m.RawClient(hp.port, version=5, auto_ack=True)
            try:
                new.connect(cid, clean=False, props=EXPIRY_300)
            except m.Closed:
                raise AssertionError("round %d: the reconnect was closed before its CONNACK "
                                     "(%.2f s); haproxy log:\n%s"
                                     % (rnd, time.monotonic() - t0, hp.log()[-2000:]))
            took.append(time.monotonic() - t0)
            # HAProxy marks the dead node down within about half a second
            # here (200 ms checks, fall 2): the new connection survives it
            hp.wait_state(home, "DOWN", timeout=10)
            assert new.is_open(0.5), "round %d: cut when %s was marked down; haproxy log:\n%s" % (
                rnd, home.name, hp.log()[-2000:])
            new.ping()
            new.disconnect()
            old.close()
            home.restart()
            cl.wait_all_running(timeout=15)
    finally:
        hp.stop()
    assert statistics.median(took) < T(0.5), took
