"""
test_37_store_redis_cluster.py - session.store = redis in a 3-node cluster:
a node killed with SIGKILL and never restarted loses nothing acknowledged.

Every node shares one real redis-server (redisfx). Node 2 is killed:
  - a persistent session that was on it resumes on another node when its
    client reconnects there (session present, its subscription live, every
    message acknowledged before the kill delivered), read from the store at
    once, without waiting for the dead node;
  - a persistent session whose client stays away is adopted by a survivor
    once node 2 has been unreachable for cluster.heartbeat_timeout: QoS 1
    messages published meanwhile are not acknowledged until they can be
    stored for it (the publisher is told to send again), and all reach the
    client when it comes back;
  - the will of a client that was connected to node 2 is published by a
    survivor [MQTT-3.1.2-8];
  - node 2, restarted after its sessions moved, loads none of them.

Exactly once for QoS 2 across nodes: node 1 dies after storing a QoS 2
message (for every target, or only for its own before its forwards left);
the publisher's resend through another node reaches exactly the subscribers
that lack it (FORWARD RX marks the entries other nodes store, FORWARD SKIP
carries the marked targets to the nodes the resend is forwarded to).
"""

import time

import pytest

import mqttraw as m
from conftest import require
from helpers import count_redelivered
from mqttraw import PUBLISH, T, Closed
from redisfx import REDIS, redis  # noqa: F401 (the fixture)


def start(cluster, redis):  # noqa: F811
    cl = cluster(3, {"session.store": "redis",
                     "session.redis.server": "127.0.0.1:%d" % redis.port})
    cl.join_all()
    cl.wait_all_running()
    return cl


def drain(c, n, timeout=10.0):
    """Up to n distinct PUBLISH payloads (acknowledged), within timeout."""
    got = []
    deadline = time.monotonic() + T(timeout)
    while len(set(got)) < n and time.monotonic() < deadline:
        p = c.try_recv(0.3)
        if p is not None and p.type == PUBLISH:
            got.append(bytes(p.payload))
            c.ack(p)
    return got


def publish_until_acked(node, topic, payloads, timeout=20.0):
    """QoS 1 publish of each payload from a persistent publisher, sending
    again on a new connection whenever the node refuses (closes) until it
    is acknowledged. Returns the number of refusals."""
    refused = 0
    deadline = time.monotonic() + T(timeout)
    c = None
    for pl in payloads:
        while True:
            assert time.monotonic() < deadline, "%r never acknowledged" % pl
            if c is None:
                c = node.raw()
                c.connect("rc-pub", clean=False)
            try:
                c.publish(topic, pl, qos=1)
                break
            except (Closed, AssertionError, OSError):
                refused += 1
                c.close()
                c = None
                time.sleep(0.2)
    if c is not None:
        c.close()
    return refused


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_session_of_dead_node_resumes_elsewhere(redis, cluster):  # noqa: F811
    cl = start(cluster, redis)
    n1, n2, n3 = cl.nodes
    s = n2.raw()
    s.connect("rc-sub", clean=False)
    s.subscribe("rc/#", qos=1)
    s.close()
    publish_until_acked(n1, "rc/a", [b"k%d" % i for i in range(20)])
    n2.kill()
    s = n3.raw()
    t0 = time.monotonic()
    ack = s.connect("rc-sub", clean=False)
    took = time.monotonic() - t0
    assert ack.session_present, "the dead node's session was not resumed from the store"
    assert took < T(1.5), "resuming waited %.1fs for the dead node" % took
    got = drain(s, 20)
    assert set(got) == {b"k%d" % i for i in range(20)}
    # its subscription is live here without a new SUBSCRIBE
    publish_until_acked(n1, "rc/b", [b"after"])
    assert drain(s, 1) == [b"after"]
    n3.wait_log(r"client_id=rc-sub session resumed from the store")


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_offline_session_of_dead_node_adopted(redis, cluster):  # noqa: F811
    cl = start(cluster, redis)
    n1, n2, n3 = cl.nodes
    s = n2.raw()
    s.connect("rc-off", clean=False)
    s.subscribe("off/#", qos=1)
    s.close()
    n2.kill()
    # published while no node holds the session: acknowledged only once a
    # survivor adopted it from the store
    refused = publish_until_acked(n1, "off/x", [b"o%d" % i for i in range(10)])
    adopter = [n for n in (n1, n3) if n.log_lines(r"session of a dead node resumed here")]
    assert adopter, "no survivor adopted the dead node's sessions"
    s = n3.raw()
    assert s.connect("rc-off", clean=False).session_present
    got = drain(s, 10)
    assert set(got) == {b"o%d" % i for i in range(10)}, "lost: %r (refused %d)" % (
        sorted({b"o%d" % i for i in range(10)} - set(got)), refused)
    # the dead node comes back: its sessions live elsewhere now
    n2.restart()
    n2.wait_log(r"store redis: loaded 0 sessions")


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_will_of_client_on_dead_node(redis, cluster):  # noqa: F811
    cl = start(cluster, redis)
    n1, n2, n3 = cl.nodes
    w = n1.raw()
    w.connect("watcher")
    w.subscribe("presence/#", qos=1)
    dev = n2.raw()
    dev.connect("dev-1", clean=True, will_topic="presence/dev-1", will_payload=b"offline",
                will_qos=1)
    time.sleep(0.5)  # its connection (and will) reach the store
    n2.kill()
    p = w.expect(PUBLISH, timeout=T(15))
    assert (p.topic, bytes(p.payload)) == ("presence/dev-1", b"offline")


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_qos2_forward_lost_with_its_node_is_delivered(redis, cluster):  # noqa: F811
    """A QoS 2 PUBLISH whose forward the destination never acknowledged
    because it died (frozen, then SIGKILL: it stored nothing) fails its
    PUBREC: the publisher is closed and sends again (DUP, same packet id).
    The id must have been forgotten with the failure, or the resend is
    acknowledged as a duplicate and the dead node's session never gets the
    message (it did not, before the fix). And exactly once: a session that
    stored the first copy (here one on the publisher's node) is not sent a
    second one; the resend goes only to the targets the store has no mark
    of (brk_rxmark.c), read from Redis on the first resend."""
    cl = start(cluster, redis)
    n1, n2, n3 = cl.nodes
    s = n2.raw()
    s.connect("fl-sub", clean=False)
    s.subscribe("fl/#", qos=2)
    s.close()
    loc = n1.raw()
    loc.connect("fl-local", clean=False)
    loc.subscribe("fl/#", qos=2)
    loc.close()
    p = n1.raw()
    p.connect("fl-pub", clean=False)  # before the pause: a CONNECT asks every node
    time.sleep(0.3)  # the subscription's route reaches n1
    n2.pause()
    p.send(m.publish("fl/a", b"m1", qos=2, mid=1))
    p.expect_nothing(0.5)  # the PUBREC waits for n2, which is frozen
    n2.kill()
    p.wait_closed(timeout=10)  # the forward is lost: send again
    deadline = time.monotonic() + T(30)
    resends = 0
    while True:
        assert time.monotonic() < deadline, "the resend was never acknowledged"
        p = n1.raw()
        p.connect("fl-pub", clean=False)
        p.send(m.publish("fl/a", b"m1", qos=2, mid=1, dup=True))
        resends += 1
        try:
            rec = p.expect(m.PUBREC, timeout=5)
            break
        except (Closed, AssertionError, OSError):
            p.close()  # refused while the dead node's sessions are not adopted
            time.sleep(0.3)
    assert rec.mid == 1
    p.send(m.pubrel(1))
    assert p.expect(m.PUBCOMP).mid == 1
    s = n3.raw()
    assert s.connect("fl-sub", clean=False).session_present
    got = drain(s, 1)
    assert got == [b"m1"], "the dead node's session got %r (resends %d)" % (got, resends)
    s.expect_nothing(0.5, ptype=PUBLISH)
    loc = n1.raw()
    assert loc.connect("fl-local", clean=False).session_present
    got = drain(loc, 1)
    assert got == [b"m1"], "the publisher's node's session got %r" % got
    loc.expect_nothing(1.0, ptype=PUBLISH)  # the resend did not come a second time
    assert n1.log_lines("its resend goes to the others"), n1.log_tail()


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_forwards_not_held_for_a_store_that_is_down(redis, cluster):  # noqa: F811
    """The forwards of a loop turn that received a QoS 2 PUBLISH wait until
    its packet id is stored (exactly once across nodes). With Redis down
    that would hold every forward of that worker, for any client, until
    Redis returns: after a bound they go anyway. A clean subscriber on
    another node gets the message (its publisher's PUBREC still waits for
    the store)."""
    cl = start(cluster, redis)
    n1, n2, _n3 = cl.nodes
    s = n2.raw()
    s.connect("hd-sub")  # clean: nothing of it needs the store
    s.subscribe("hd/#", qos=0)
    p = n1.raw()
    p.connect("hd-pub", clean=False)
    time.sleep(0.3)  # the route reaches n1
    redis.kill()
    p.send(m.publish("hd/a", b"x", qos=2, mid=1))
    got = s.expect(PUBLISH, timeout=10)
    assert bytes(got.payload) == b"x"
    n1.wait_log(r"forwards held \d+ ms for the store: sent without waiting more")
    p.expect_nothing(0.3, ptype=m.PUBREC)  # not stored: not acknowledged


# ---- exactly once for QoS 2 across nodes (FORWARD RX / SKIP) ----

XO_SUBS = {1: "xo-sub1", 2: "xo-sub2", 3: "xo-sub3"}  # node -> persistent subscriber
XO_MEMBERS = {2: "xo-member2", 3: "xo-member3"}       # node -> member of $share/g/xo/t


def xo_setup(cl):
    """Persistent QoS 2 subscribers on every node (offline), and a shared
    group with a member on nodes 2 and 3: each SUBACK holds cluster-wide."""
    for i, cid in XO_SUBS.items():
        s = cl[i].raw()
        s.connect(cid, clean=False)
        s.subscribe("xo/t", qos=2)
        s.disconnect()
    for i, cid in XO_MEMBERS.items():
        s = cl[i].raw()
        s.connect(cid, clean=False)
        s.subscribe("$share/g/xo/t", qos=2)
        s.disconnect()


def xo_resend_until_pubrec(node, mid, timeout=30.0):
    """The publisher's resend (DUP, same packet id) through node, on a new
    connection each time the node refuses it (while the dead node's sessions
    are not adopted yet, a publish matching its routes is refused); then
    PUBREL / PUBCOMP. Returns the number of resends."""
    deadline = time.monotonic() + T(timeout)
    resends = 0
    while True:
        assert time.monotonic() < deadline, "the resend was never acknowledged"
        p = node.raw()
        assert p.connect("xo-pub", clean=False).session_present
        p.send(m.publish("xo/t", b"once", qos=2, mid=mid, dup=True))
        resends += 1
        try:
            rec = p.expect(m.PUBREC, timeout=5)
            break
        except (Closed, AssertionError, OSError):
            p.close()
            time.sleep(0.3)
    assert rec.mid == mid
    p.send(m.pubrel(mid))
    assert p.expect(m.PUBCOMP).mid == mid
    p.close()
    return resends


def xo_counts(cl):
    """Each subscriber reconnects (the dead node 1's through node 2, which
    adopted its sessions, or any other): how many times it gets the message."""
    counts = {}
    for i, cid in list(XO_SUBS.items()) + list(XO_MEMBERS.items()):
        node = cl[i] if cl[i].alive() else cl[2]
        s = node.raw()
        assert s.connect(cid, clean=False).session_present, cid
        counts[cid] = count_redelivered(s, b"once")
        s.disconnect()
    return counts


def xo_assert_once(cl, resends):
    counts = xo_counts(cl)
    assert all(counts[c] == 1 for c in XO_SUBS.values()), \
        "not exactly once per subscriber: %r (resends %d)" % (counts, resends)
    assert sum(counts[c] for c in XO_MEMBERS.values()) == 1, \
        "the shared group: %r (resends %d)" % (counts, resends)


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_qos2_resend_after_pubrec_lost_exactly_once_across_nodes(redis, cluster):  # noqa: F811
    """Node 1 stores a QoS 2 message for every subscriber of the cluster
    (its own, and those of nodes 2 and 3 through FORWARD) and sends PUBREC,
    then dies (SIGKILL) before the publisher read it. The publisher resends
    (DUP, same id) through node 3: its session, taken over from Redis, holds
    the id unconfirmed with the marks of every target that has it, those
    node 1 stored and those nodes 2 and 3 stored for node 1's forwards
    (FORWARD RX). Node 3 skips its own, and its FORWARD to node 2 (which
    adopted node 1's sessions: the first survivor by name) carries the whole
    set (FORWARD SKIP): nobody gets it twice [MQTT-4.3.3-9]."""
    cl = start(cluster, redis)
    n1, n2, n3 = cl.nodes
    xo_setup(cl)
    p = n1.raw()
    p.connect("xo-pub", clean=False)
    p.send(m.publish("xo/t", b"once", qos=2, mid=7))
    assert p.expect(m.PUBREC).mid == 7  # stored for every target, cluster-wide
    n1.kill()  # as if the PUBREC had never reached the publisher
    p.close()
    resends = xo_resend_until_pubrec(n3, 7)
    assert n3.log_lines(r"client_id=xo-pub: QoS 2 packet id 7 resent after a restart")
    xo_assert_once(cl, resends)


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_qos2_kill_between_batches_exactly_once_across_nodes(redis, cluster):  # noqa: F811
    """Node 1 is killed right after the batch holding the publisher's QoS 2
    id (and its own subscriber's entry and mark) is durable, before its
    forwards leave (they wait for that batch; test hook
    HQ_TEST_STORE_KILL_AFTER_RXID). The resend through node 3 must reach
    the subscribers of nodes 2 and 3 and the group, which lack it, and not
    node 1's subscriber (adopted by node 2), which has it: FORWARD SKIP."""
    cl = cluster(3, {"session.store": "redis",
                     "session.redis.server": "127.0.0.1:%d" % redis.port},
                 node_env={1: {"HQ_TEST_STORE_KILL_AFTER_RXID": "1"}})
    cl.join_all()
    cl.wait_all_running()
    n1, n2, n3 = cl.nodes
    xo_setup(cl)
    p = n1.raw()
    p.connect("xo-pub", clean=False)
    p.send(m.publish("xo/t", b"once", qos=2, mid=9))
    n1.proc.wait(timeout=T(10))  # the hook killed it: no PUBREC was sent
    n1.wait_log("killed after a QoS 2 id was stored")
    p.close()
    resends = xo_resend_until_pubrec(n3, 9)
    xo_assert_once(cl, resends)
