"""21 native clustering (issue 4, DESIGN.md "Cluster"): three real hamqttd
nodes on 127.0.0.1, .2 and .3 (cluster.py), administered with hamqtt-ctl and
observed through GET /api/v5/cluster and real MQTT clients on each node.

  - membership: `cluster join` (to any member) makes a full mesh listed by
    every node; `cluster status [--json]` and GET /api/v5/cluster agree;
  - routing: point-to-point QoS 0/1/2 across nodes (exactly once, in order
    per publisher), fan-out, a SUBACK on one node holds on every node, the
    PUBACK of a QoS 1 publish waits until the remote node accepted it;
  - failures: SIGKILL -> stopped within the heartbeat, the rest keep serving,
    restart -> rejoins by itself; graceful leave and force-leave leave no
    member or route behind; wrong cookie, other cluster name and unreachable
    nodes are refused with exit 1 and a clear message;
  - retained messages, wills and shared subscriptions across nodes; session
    takeover from one node to another (live and offline sessions); racing
    connects of one client id on two nodes end with one connection holding
    the session; messages published during a cross-node takeover are all
    delivered on the new node.

Every node has cluster.heartbeat_timeout = 2s (cluster.HEARTBEAT)."""

import json
import threading
import time

import pytest

import mqttraw as m
from cluster import HEARTBEAT
from conftest import wait_until
from helpers import pipeline_publish
from mqttraw import T

EXPIRY_300 = [(m.SESSION_EXPIRY, 300)]


@pytest.fixture
def c3(cluster):
    """Three nodes, joined, every node listing all three running."""
    cl = cluster(3)
    cl.join_all()
    return cl


# ---- helpers ----------------------------------------------------------------------

def client(node, cid, version=5, auto_ack=True, **kw):
    c = node.raw(version=version, auto_ack=auto_ack)
    c.connect(cid, **kw)
    return c


def subscriber(node, cid, flt, qos=1, version=5, **kw):
    c = client(node, cid, version=version, **kw)
    ack = c.subscribe(flt, qos=qos)
    assert ack.codes == [qos], "%s: SUBACK %r" % (node.name, ack)
    return c


def publishes_within(c, seconds):
    """PUBLISH packets c receives within seconds (unscaled: an absence check);
    a connection closed by the broker simply ends the list."""
    got = [p for p in c.stash if p.type == m.PUBLISH]
    c.stash = [p for p in c.stash if p.type != m.PUBLISH]
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            p = c._read(left / m.MULT)
        except m.NoPacket:
            return got
        except m.Closed:
            return got
        if p.type == m.PUBLISH:
            got.append(p)
        else:
            c.stash.append(p)


def until_sentinels(c, sentinels, timeout=10.0):
    """PUBLISH packets read by c until every payload in sentinels arrived;
    returns the non-sentinel ones in arrival order."""
    want = set(sentinels)
    got = []
    deadline = time.monotonic() + T(timeout)
    while want:
        left = (deadline - time.monotonic()) / m.MULT
        if left <= 0:
            raise AssertionError("sentinels %r missing; received %r" % (want, got))
        p = c.expect(m.PUBLISH, timeout=left)
        if p.payload in want:
            want.discard(p.payload)
        else:
            got.append(p)
    return got


def gather(clients, n, timeout=10.0):
    """Read PUBLISH packets from several clients until n arrived in total;
    returns one list of payloads per client."""
    per = [[] for _ in clients]
    deadline = time.monotonic() + T(timeout)
    while sum(len(x) for x in per) < n:
        if time.monotonic() > deadline:
            raise AssertionError("got %d of %d messages: %r" % (sum(len(x) for x in per), n, per))
        for i, c in enumerate(clients):
            p = c.try_recv(0.02)
            if p is not None and p.type == m.PUBLISH:
                per[i].append(p.payload)
    return per


def incarnation(doc, name):
    return [e for e in doc["nodes"] if e["node"] == name][0]["incarnation"]


def status_lines(text, name):
    return [ln for ln in text.splitlines() if name in ln]


def check_doc(cl, node, doc, members):
    """doc (GET /api/v5/cluster of node) has the contract's shape and lists
    exactly members, all running."""
    assert doc["name"] == cl.name, doc
    assert doc["self"] == node.name, doc
    listed = sorted(e["node"] for e in doc["nodes"])
    assert listed == sorted(n.name for n in members), doc
    for e in doc["nodes"]:
        assert {"node", "addr", "status", "self", "incarnation"} <= set(e), e
        owner = cl.node(e["node"])
        assert e["addr"] == "%s:%d" % (owner.host, cl.port), e
        assert e["status"] == "running", e
        assert e["self"] is (e["node"] == node.name), e
        assert isinstance(e["incarnation"], int) and e["incarnation"] > 0, e


# ---- membership -------------------------------------------------------------------

def test_join_and_status_three_running(cluster):
    """Before joining each node is a cluster of one; `cluster join` exits 0
    (node 2 joins node 1, node 3 joins node 2: joining any member is
    enough); within a few seconds every node lists all three running (full
    mesh); GET /api/v5/cluster has the contract's shape on every node, the
    nodes agree on each other's incarnation, and `cluster status --json`
    prints the same document; the human `cluster status` names every node
    as running."""
    cl = cluster(3)
    n1, n2, n3 = cl.nodes
    for n in cl.nodes:
        check_doc(cl, n, n.status_json(), [n])
    for joiner, seed in ((n2, n1), (n3, n2)):
        rc, out, err = joiner.ctl("cluster", "join", seed.name)
        assert rc == 0, "cluster join %s -> %d: %s%s" % (seed.name, rc, out, err)
    cl.wait_all_running(timeout=5)
    docs = {n.name: n.status_json() for n in cl.nodes}
    for n in cl.nodes:
        check_doc(cl, n, docs[n.name], cl.nodes)
    for target in cl.nodes:
        seen = {incarnation(docs[n.name], target.name) for n in cl.nodes}
        assert len(seen) == 1, "nodes disagree on %s's incarnation: %r" % (target.name, seen)
    for n in cl.nodes:
        rc, out, err = n.ctl("cluster", "status", json=True)
        assert rc == 0, err
        assert json.loads(out) == n.status_json(), out
        rc, out, err = n.ctl("cluster", "status")
        assert rc == 0, err
        for target in cl.nodes:
            lines = status_lines(out, target.name)
            assert lines and "running" in lines[0], "%s not shown running in:\n%s" % (
                target.name, out)


def test_join_unreachable_fails_clearly(cluster):
    """`cluster join` to a node where nothing listens exits 1, in bounded
    time, with a message on stderr naming that node; the node stays a
    cluster of one and keeps serving."""
    cl = cluster(1)
    n1 = cl[1]
    t0 = time.monotonic()
    rc, out, err = n1.ctl("cluster", "join", "hamqtt@127.0.0.9")
    took = time.monotonic() - t0
    assert rc == 1, "join of an unreachable node -> %d: %s%s" % (rc, out, err)
    assert "127.0.0.9" in err, "stderr does not name the node: %r" % err
    assert took < T(15), "join took %.1fs to fail" % took
    cl.assert_members_stay(n1, cl.view(running=[n1]), duration=0.3)
    c = subscriber(n1, "alone", "alone/t")
    c.publish("alone/t", b"still serving", qos=1)
    assert c.expect(m.PUBLISH).payload == b"still serving"


def test_wrong_cookie_refused(cluster):
    """A join with a different node.cookie is refused: exit 1, "cookie" on
    stderr, a log line about the cookie / authentication on both nodes, the
    cookie itself never shows up on the other side, and the nodes stay
    separate. With the right cookie (restart) the same join succeeds."""
    cl = cluster(2, node_overrides={2: {"node.cookie": "not-the-cluster-cookie"}})
    n1, n2 = cl.nodes
    since = (n1.log_size(), n2.log_size())
    rc, out, err = n2.ctl("cluster", "join", n1.name)
    assert rc == 1, "join with a wrong cookie -> %d: %s%s" % (rc, out, err)
    assert "cookie" in err.lower(), err
    for n, s in zip((n1, n2), since):
        n.wait_log(r"(?i)cookie|auth", since=s, timeout=3)
    assert "not-the-cluster-cookie" not in n1.log_text()
    assert cl.cookie not in n2.log_text() + out + err
    for n in (n1, n2):
        cl.assert_members_stay(n, cl.view(running=[n]), duration=0.5)
    assert n2.stop() == 0
    del n2.overrides["node.cookie"]
    n2.restart()
    rc, out, err = n2.ctl("cluster", "join", n1.name)
    assert rc == 0, "join with the right cookie -> %d: %s%s" % (rc, out, err)
    cl.wait_all_running(timeout=5)


def test_other_cluster_name_refused(cluster):
    """A node of another cluster.name cannot join: exit 1, "cluster name" on
    stderr, a log line about it on both nodes; the nodes stay separate."""
    cl = cluster(2, node_overrides={2: {"cluster.name": "some-other-cluster"}})
    n1, n2 = cl.nodes
    since = (n1.log_size(), n2.log_size())
    rc, out, err = n2.ctl("cluster", "join", n1.name)
    assert rc == 1, "join of another cluster -> %d: %s%s" % (rc, out, err)
    assert "cluster name" in err.lower(), err
    for n, s in zip((n1, n2), since):
        n.wait_log(r"(?i)cluster[ ._-]?name", since=s, timeout=3)
    for n in (n1, n2):
        cl.assert_members_stay(n, cl.view(running=[n]), duration=0.5)


# ---- routing ----------------------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_cross_node_point_to_point(c3, qos):
    """A subscriber on node 2 receives what publishers on nodes 1 and 3 send
    at QoS 0/1/2: every message exactly once, at the publish QoS, in each
    publisher's order (sentinels close the wait; nothing arrives after)."""
    n1, n2, n3 = c3.nodes
    sub = subscriber(n2, "p2p-sub-%d" % qos, "p2p/+/t", qos=qos)
    pubs = [client(n, "p2p-pub%d-%d" % (n.index, qos)) for n in (n1, n3)]
    count = 30
    for i in range(count):
        for j, p in enumerate(pubs):
            p.publish("p2p/%d/t" % j, b"%d-%02d" % (j, i), qos=qos)
    for j, p in enumerate(pubs):
        p.publish("p2p/%d/t" % j, b"end-%d" % j, qos=qos)
    got = until_sentinels(sub, [b"end-0", b"end-1"])
    for j in range(2):
        seq = [p.payload for p in got if p.topic == "p2p/%d/t" % j]
        assert seq == [b"%d-%02d" % (j, i) for i in range(count)], seq
    assert {p.qos for p in got} == {qos}
    assert publishes_within(sub, 0.3) == []


def test_fan_out(c3):
    """One publisher on node 1; subscribers on node 1, node 2 and (two
    clients, wildcard filters) node 3: each receives every message once, in
    order."""
    n1, n2, n3 = c3.nodes
    subs = [subscriber(n1, "fan-1", "fan/t"), subscriber(n2, "fan-2", "fan/t"),
            subscriber(n3, "fan-3a", "fan/#"), subscriber(n3, "fan-3b", "+/t", version=4)]
    pub = client(n1, "fan-pub")
    count = 40
    for i in range(count):
        pub.publish("fan/t", b"%02d" % i, qos=1)
    pub.publish("fan/t", b"end", qos=1)
    for s in subs:
        got = [p.payload for p in until_sentinels(s, [b"end"])]
        assert got == [b"%02d" % i for i in range(count)], (s.client_id, got)
        assert publishes_within(s, 0.2) == []


def test_suback_holds_cluster_wide(c3):
    """Once node 2 or 3 sent the SUBACK, a message published on node 1 right
    after (no sleep) is delivered: 20 fresh subscriptions with the raw
    client (QoS 0 and 1 publishes), 4 with paho (sequenced by on_subscribe)."""
    n1, n2, n3 = c3.nodes
    pub = client(n1, "sa-pub")
    for i in range(20):
        node = (n2, n3)[i % 2]
        topic = "sa/raw/%d" % i
        sub = subscriber(node, "sa-sub-%d" % i, topic, qos=1)
        pub.publish(topic, b"m%d" % i, qos=i % 2)
        p = sub.expect(m.PUBLISH, timeout=3)
        assert (p.topic, p.payload) == (topic, b"m%d" % i)
        sub.disconnect()
    ppub = n1.paho("sa-paho-pub", version=5)
    for i in range(4):
        node = (n2, n3)[i % 2]
        topic = "sa/paho/%d" % i
        psub = node.paho("sa-paho-sub-%d" % i, version=5)
        psub.subscribe(topic, qos=1)  # returns once on_subscribe saw the SUBACK
        ppub.publish(topic, b"p%d" % i, qos=1)
        msg = psub.get(timeout=3)
        assert (msg.topic, msg.payload) == (topic, b"p%d" % i)
        psub.close()


def test_qos1_puback_waits_for_the_remote_node(c3):
    """The PUBACK of a QoS 1 publish matching only a subscriber on node 2
    does not come while node 2 is frozen (SIGSTOP, shorter than the
    heartbeat timeout); it comes once node 2 runs again, and the message is
    delivered."""
    n1, n2, _ = c3.nodes
    sub = subscriber(n2, "hold-sub", "hold/t")
    pub = client(n1, "hold-pub")
    pub.publish("hold/t", b"warm", qos=1)
    assert sub.expect(m.PUBLISH).payload == b"warm"
    n2.pause()
    try:
        mid = pub.next_mid()
        pub.send(m.publish("hold/t", b"held", qos=1, mid=mid, version=5))
        window = min(0.8, HEARTBEAT * 0.4)  # unscaled: node 2 must not look dead
        pub.expect_nothing(window / m.MULT, ptype=m.PUBACK)
    finally:
        n2.resume()
    pub.expect(m.PUBACK, mid=mid, timeout=5)
    assert sub.expect(m.PUBLISH).payload == b"held"


def test_acked_qos1_survives_kill_of_publisher_node(c3):
    """QoS 1 publishes on node 1 to a subscriber on node 2: once the last
    PUBACK is in, node 1 is SIGKILLed at once; node 2 already accepted every
    acknowledged message, so the subscriber receives all of them, once, in
    order."""
    n1, n2, _ = c3.nodes
    sub = subscriber(n2, "acked-sub", "acked/t")
    pub = client(n1, "acked-pub")
    count = 200
    pipeline_publish(pub, "acked/t", [b"%03d" % i for i in range(count)], qos=1, window=20)
    n1.kill()
    got = [p.payload for p in sub.publishes(count, timeout=10)]
    assert got == [b"%03d" % i for i in range(count)]
    assert publishes_within(sub, 0.3) == []


# ---- failures and membership changes --------------------------------------------

def test_kill_marks_stopped_then_restart_rejoins(c3):
    """SIGKILL of node 3: nodes 1 and 2 list it stopped within the heartbeat
    timeout (+1 s; its closed links are seen at once), `cluster status`
    agrees; nodes 1-2 keep serving and a QoS 1 publish matching node 3's
    old subscriber is acknowledged at once. Restarted with its data_dir and no
    ctl command it rejoins: all three running everywhere, with a new
    incarnation, and messages cross to and from it again."""
    n1, n2, n3 = c3.nodes
    inc_before = incarnation(n1.status_json(), n3.name)
    sub2 = subscriber(n2, "k-sub2", "k/t")
    subscriber(n3, "k-sub3", "k/t")
    pub = client(n1, "k-pub")
    pub.publish("k/t", b"before", qos=1)
    assert sub2.expect(m.PUBLISH).payload == b"before"
    n3.kill()
    want = c3.view(running=[n1, n2], stopped=[n3])
    for n in (n1, n2):
        c3.wait_members(n, want, timeout=HEARTBEAT + 1)
    rc, out, err = n1.ctl("cluster", "status")
    assert rc == 0, err
    assert "stopped" in status_lines(out, n3.name)[0], out
    t0 = time.monotonic()
    pub.publish("k/t", b"after", qos=1)
    assert time.monotonic() - t0 < T(1.0), "PUBACK waited for the dead node"
    assert sub2.expect(m.PUBLISH).payload == b"after"
    n3.restart()
    c3.wait_all_running(timeout=10)
    assert incarnation(n1.status_json(), n3.name) != inc_before
    back = subscriber(n3, "k-back", "k/back")
    pub.publish("k/back", b"to node 3", qos=1)
    assert back.expect(m.PUBLISH).payload == b"to node 3"
    p3 = client(n3, "k-pub3")
    p3.publish("k/t", b"from node 3", qos=1)
    assert sub2.expect(m.PUBLISH).payload == b"from node 3"


def test_restarted_seed_rejoins_without_cleanup(c3):
    """Node 1 (the node everyone joined) is SIGKILLed; while it is down node
    3 gains a subscription; restarted with its old data_dir it rejoins by
    itself (3 running on every node), learns the new route, and serves."""
    n1, n2, n3 = c3.nodes
    subscriber(n1, "rj-old", "rj/old")
    n1.kill()
    for n in (n2, n3):
        c3.wait_members(n, c3.view(running=[n2, n3], stopped=[n1]), timeout=HEARTBEAT + 1)
    new = subscriber(n3, "rj-new", "rj/new")
    n1.restart()
    c3.wait_all_running(timeout=10)
    pub = client(n1, "rj-pub")
    pub.publish("rj/new", b"learned", qos=1)
    assert new.expect(m.PUBLISH).payload == b"learned"
    fresh = subscriber(n1, "rj-fresh", "rj/old")
    client(n2, "rj-pub2").publish("rj/old", b"again", qos=1)
    assert fresh.expect(m.PUBLISH).payload == b"again"


def test_graceful_leave(c3):
    """`cluster leave` on node 3: it then lists only itself, nodes 1-2 no
    longer list it; no route survives in either direction (a subscriber on
    node 3, old or new, gets nothing published on node 1 and vice versa);
    each side still serves locally; node 3 stays alone after a restart; it
    can join again, and then messages cross again."""
    n1, n2, n3 = c3.nodes
    old3 = subscriber(n3, "lv-old3", "lv/t")
    sub1 = subscriber(n1, "lv-sub1", "lv/back")
    pub1 = client(n1, "lv-pub1")
    pub1.publish("lv/t", b"member", qos=1)
    assert old3.expect(m.PUBLISH).payload == b"member"
    rc, out, err = n3.ctl("cluster", "leave")
    assert rc == 0, "cluster leave -> %d: %s%s" % (rc, out, err)
    c3.wait_members(n3, c3.view(running=[n3]), timeout=3)
    for n in (n1, n2):
        c3.wait_members(n, c3.view(running=[n1, n2]), timeout=3)
    new3 = subscriber(n3, "lv-new3", "lv/t")
    pub1.publish("lv/t", b"after leave", qos=1)
    pub3 = client(n3, "lv-pub3")
    pub3.publish("lv/back", b"after leave", qos=1)
    pub3.publish("lv/t", b"local", qos=1)
    assert [p.payload for p in new3.publishes(1)] == [b"local"]
    for c in (old3, new3, sub1):
        got = [p.payload for p in publishes_within(c, 0.5)]
        assert b"after leave" not in got, (c.client_id, got)
    assert n3.stop() == 0
    n3.restart()
    c3.assert_members_stay(n3, c3.view(running=[n3]), duration=HEARTBEAT * 0.75)
    c3.assert_members_stay(n1, c3.view(running=[n1, n2]), duration=0.2)
    rc, out, err = n3.ctl("cluster", "join", n2.name)
    assert rc == 0, "join after leave -> %d: %s%s" % (rc, out, err)
    c3.wait_all_running(timeout=5)
    again = subscriber(n3, "lv-again", "lv/t")
    pub1.publish("lv/t", b"rejoined", qos=1)
    assert again.expect(m.PUBLISH).payload == b"rejoined"


def test_member_that_left_while_a_node_was_down_stays_out(c3):
    """Node 1 is down (SIGKILL) while node 3 leaves; node 1 restarts with
    node 3 still in the member list on its disk: it rejoins node 2, and nobody
    lists node 3 again (no member entry outlives a leave)."""
    n1, n2, n3 = c3.nodes
    n1.kill()
    c3.wait_members(n2, c3.view(running=[n2, n3], stopped=[n1]), timeout=HEARTBEAT + 1)
    rc, out, err = n3.ctl("cluster", "leave")
    assert rc == 0, "cluster leave -> %d: %s%s" % (rc, out, err)
    c3.wait_members(n3, c3.view(running=[n3]), timeout=3)
    c3.wait_members(n2, c3.view(running=[n2], stopped=[n1]), timeout=3)
    n1.restart()
    c3.wait_all_running([n1, n2], timeout=10)
    c3.assert_members_stay(n3, c3.view(running=[n3]), duration=HEARTBEAT * 0.75)
    for n in (n1, n2):
        c3.assert_members_stay(n, c3.view(running=[n1, n2]), duration=0.2)


def test_force_leave(c3):
    """After node 3 was SIGKILLed, force-leave of a running member (node 2)
    fails with exit 1 and changes nothing; force-leave of node 3 on node 1
    exits 0 and then neither node 1 nor node 2 lists node 3; force-leave of a
    node that is not a member fails; the two remaining nodes still route."""
    n1, n2, n3 = c3.nodes
    n3.kill()
    for n in (n1, n2):
        c3.wait_members(n, c3.view(running=[n1, n2], stopped=[n3]), timeout=HEARTBEAT + 1)
    rc, out, err = n1.ctl("cluster", "force-leave", n2.name)
    assert rc == 1 and err.strip(), "force-leave of a running member -> %d: %s%s" % (
        rc, out, err)
    c3.assert_members_stay(n1, c3.view(running=[n1, n2], stopped=[n3]), duration=0.3)
    rc, out, err = n1.ctl("cluster", "force-leave", n3.name)
    assert rc == 0, "force-leave -> %d: %s%s" % (rc, out, err)
    for n in (n1, n2):
        c3.wait_members(n, c3.view(running=[n1, n2]), timeout=3)
    rc, out, err = n1.ctl("cluster", "force-leave", n3.name)
    assert rc == 1 and err.strip(), "second force-leave -> %d: %s%s" % (rc, out, err)
    sub = subscriber(n2, "fl-sub", "fl/t")
    client(n1, "fl-pub").publish("fl/t", b"two left", qos=1)
    assert sub.expect(m.PUBLISH).payload == b"two left"


# ---- retained, wills, shared subscriptions, takeover -----------------------------

def retained_on(node, cid, topic, timeout=3.0):
    """Poll: a fresh subscriber on node gets topic's retained payload (or
    None if none arrives within 0.3 s); returns the first non-None answer
    or, after timeout, None."""
    def once():
        c = client(node, cid)
        c.subscribe(topic, qos=1)
        got = publishes_within(c, 0.3)
        c.disconnect()
        return got[0] if got else None
    deadline = time.monotonic() + T(timeout)
    while True:
        p = once()
        if p is not None or time.monotonic() > deadline:
            return p


def test_retained_reaches_every_node(c3):
    """A retained message published on node 1 reaches a live subscriber on
    node 2 and a subscriber that subscribes later on node 3 (retain flag
    set); one published on node 3 reaches a later subscriber on node 1;
    deleting it on node 2 (empty retained payload) deletes it everywhere."""
    n1, n2, n3 = c3.nodes
    live = subscriber(n2, "ret-live", "ret/#")
    client(n1, "ret-pub1").publish("ret/a", b"A", qos=1, retain=True)
    assert live.expect(m.PUBLISH).payload == b"A"
    p = retained_on(n3, "ret-late3", "ret/a")
    assert p is not None and p.retain and p.payload == b"A", p
    client(n3, "ret-pub3").publish("ret/b", b"B", qos=1, retain=True)
    p = retained_on(n1, "ret-late1", "ret/b")
    assert p is not None and p.retain and p.payload == b"B", p
    client(n2, "ret-del").publish("ret/b", b"", qos=1, retain=True)

    def gone_everywhere():
        return all(retained_on(n, "ret-gone-%d" % n.index, "ret/b", timeout=0) is None
                   for n in c3.nodes)
    wait_until(gone_everywhere, 5, 0.1, "ret/b deleted on every node")


def test_will_reaches_other_nodes(c3):
    """The will of a client on node 1 whose socket dies reaches subscribers
    on nodes 2 and 3."""
    n1, n2, n3 = c3.nodes
    subs = [subscriber(n, "will-sub%d" % n.index, "will/t") for n in (n2, n3)]
    w = n1.raw(version=5)
    w.connect("will-c", will_topic="will/t", will_payload=b"gone", will_qos=1)
    w.shutdown_abrupt()
    for s in subs:
        p = s.expect(m.PUBLISH, timeout=5)
        assert (p.topic, p.payload) == ("will/t", b"gone")


def test_shared_subscription_one_member_cluster_wide(c3):
    """$share/g/sh/t with one member on each node, publishers on nodes 1 and
    2: every message is delivered exactly once, to exactly one member, across
    the cluster."""
    n1, n2, n3 = c3.nodes
    members = [subscriber(n, "sh-m%d" % n.index, "$share/g/sh/t") for n in c3.nodes]
    pubs = [client(n1, "sh-pub1"), client(n2, "sh-pub2")]
    want = []
    for i in range(30):
        for j, p in enumerate(pubs):
            payload = b"%d-%02d" % (j, i)
            p.publish("sh/t", payload, qos=1)
            want.append(payload)
    per = gather(members, len(want))
    for c in members:
        per[members.index(c)] += [p.payload for p in publishes_within(c, 0.5)]
    everything = sorted(x for got in per for x in got)
    assert everything == sorted(want), per


def test_session_takeover_across_nodes(c3):
    """Client X (v5, session expiry 300, subscribed at QoS 1) on node 1
    connects again on node 2 with clean start 0: the old connection gets
    DISCONNECT 0x8E, node 2's CONNACK has session present 1, and the
    subscription now delivers on node 2 only."""
    n1, n2, n3 = c3.nodes
    old = subscriber(n1, "to-x", "to/t", props=EXPIRY_300)
    pub = client(n3, "to-pub")
    pub.publish("to/t", b"before", qos=1)
    assert old.expect(m.PUBLISH).payload == b"before"
    new = n2.raw(version=5, auto_ack=True)
    ack = new.connect("to-x", clean=False, props=EXPIRY_300)
    assert ack.session_present
    old.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    pub.publish("to/t", b"after", qos=1)
    p = new.expect(m.PUBLISH)
    if p.payload == b"before":
        # the old client's PUBACK for it may not have reached node 1 before
        # the hand-over: an unacknowledged QoS 1 message is sent again, as a
        # duplicate [MQTT-4.4.0-1]
        assert p.dup, p
        p = new.expect(m.PUBLISH)
    assert p.payload == b"after"


def test_offline_session_taken_over_on_another_node(c3):
    """Client X subscribes at QoS 1 on node 1 (session expiry 300) and
    disconnects; 5 messages published on node 3 meanwhile are queued; X
    connects on node 2 with clean start 0: session present 1 and the 5
    messages arrive there, in order."""
    n1, n2, n3 = c3.nodes
    c = subscriber(n1, "off-x", "off/t", props=EXPIRY_300)
    c.disconnect()
    pub = client(n3, "off-pub")
    for i in range(5):
        pub.publish("off/t", b"q%d" % i, qos=1)
    new = n2.raw(version=5, auto_ack=True)
    assert new.connect("off-x", clean=False, props=EXPIRY_300).session_present
    assert [p.payload for p in new.publishes(5)] == [b"q%d" % i for i in range(5)]


def race_connects(n_home, n_other, cid, freeze):
    """Connect cid (clean start 0) on n_home (where its session is) and on
    n_other at once; returns the two raw clients. freeze: None (both
    CONNECTs complete together), or the node to SIGSTOP while both CONNECTs
    are sent, so that once it runs again it meets the other node's takeover
    request and its own client's CONNECT in the same instant."""
    pkt = m.connect(cid, version=5, clean=False, props=EXPIRY_300)
    a, b = n_home.raw(version=5, auto_ack=True), n_other.raw(version=5, auto_ack=True)
    a.send(pkt[:-1])  # both nodes hold all but the last byte...
    b.send(pkt[:-1])
    time.sleep(0.05)
    if freeze is not None:
        freeze.pause()
    try:
        a.send(pkt[-1:])  # ...which reaches them within microseconds
        b.send(pkt[-1:])
        if freeze is not None:
            time.sleep(0.2)  # the other node asks the frozen one (< heartbeat)
    finally:
        if freeze is not None:
            freeze.resume()
    return a, b


def test_racing_connects_leave_one_connection(c3):
    """The same client id, whose session is on node 1, connects on nodes 1
    and 2 at once (12 rounds: plain, with node 1 frozen meanwhile, with
    node 2 frozen meanwhile): within a few seconds exactly one connection is
    alive, it stays so, and the session's subscription delivers to it."""
    n1, n2, n3 = c3.nodes
    pub = client(n3, "race-pub")
    for rnd in range(12):
        cid = "race-%d" % rnd
        freeze = (None, n1, n2)[rnd % 3]
        subscriber(n1, cid, "race/%d" % rnd, props=EXPIRY_300).disconnect()
        a, b = race_connects(n1, n2, cid, freeze)
        deadline = time.monotonic() + T(5)
        while True:
            alive = [c for c in (a, b) if c.is_open(0.05)]
            if len(alive) == 1:
                break
            assert time.monotonic() < deadline, "%s (frozen: %s): %d connections alive" % (
                cid, freeze, len(alive))
        survivor = alive[0]
        time.sleep(0.2)
        assert [c for c in (a, b) if c.is_open(0.05)] == [survivor], cid
        pub.publish("race/%d" % rnd, b"to the survivor", qos=1)
        try:
            p = survivor.expect(m.PUBLISH, timeout=3)
        except m.NoPacket:
            raise AssertionError("%s (frozen: %s): the surviving connection lost the "
                                 "session's subscription" % (cid, freeze))
        assert p.payload == b"to the survivor", (cid, p)
        survivor.disconnect()


def check_takeover_deliveries(got, old_got, count, qos):
    """got: (payload, dup, packet id) in arrival order on the new connection;
    old_got: {payload: packet id} the old connection received (never
    acknowledged). Messages are b"%03d" % i from one publisher, i < count.
    Asserts per-publisher order [MQTT-4.6.0-6], no loss, and duplicates only
    as allowed: none within the new connection, DUP=1 exactly on the
    messages the old connection had already been sent [MQTT-3.3.1-1], with
    their original packet ids [MQTT-4.4.0-1] (so a QoS 2 receiver that
    remembers ids delivers each message exactly once)."""
    assert old_got, "nothing was in flight on node 1: the takeover proves nothing"
    want = [b"%03d" % i for i in range(count)]
    payloads = [p for p, _, _ in got]
    repeated = sorted({p for p in payloads if payloads.count(p) > 1})
    assert not repeated, "delivered more than once on node 2 (QoS %d): %r" % (qos, repeated[:10])
    missing = sorted(set(want) - set(payloads))
    extra = sorted(set(payloads) - set(want))
    assert not missing, "not delivered on node 2: %r (unexpected payloads: %r)" % (
        missing[:20], extra[:5])
    assert not extra, extra
    bad_dup = [p for p, dup, _ in got if dup and p not in old_got]
    assert not bad_dup, "DUP=1 on messages never sent before: %r" % bad_dup[:10]
    no_dup = [p for p, dup, _ in got if not dup and p in old_got]
    assert not no_dup, "re-delivered without DUP=1 [MQTT-3.3.1-1]: %r" % no_dup[:10]
    new_id = [(p, old_got[p], mid) for p, dup, mid in got if p in old_got and mid != old_got[p]]
    assert not new_id, "re-delivered with another packet id [MQTT-4.4.0-1] (payload, " \
        "old id, new id): %r" % new_id[:10]
    if payloads != want:
        at = [i for i, p in enumerate(payloads) if p != want[i]][0]
        seen = "at index %d; (payload, dup, sent to node 1) around it: %r" % (
            at, [(p, d, p in old_got) for p, d, _ in got[max(0, at - 3):at + 6]])
        raise AssertionError("per-publisher order broken on node 2 [MQTT-4.6.0-6] " + seen)


def drain_publishes(c, timeout=1.0):
    """{payload: packet id} of the PUBLISH packets c can still read (it may
    be closed)."""
    out = {p.payload: p.mid for p in c.stash if p.type == m.PUBLISH}
    c.stash = []
    while True:
        try:
            p = c._read(timeout)
        except (m.NoPacket, m.Closed):
            return out
        if p.type == m.PUBLISH:
            out[p.payload] = p.mid


def takeover_under_load(c3, qos, prefix, pub_node=0, bystander=None, burst=1):
    """A publisher on node pub_node + 1 (node 1 by default) sends 200
    messages at qos to client X's subscription while X (never acknowledging
    on node 1) takes its session over on node 2. bystander: a list that gets
    a client subscribed to the same topic on node 2 before (so node 2 has
    the route all along). burst > 1: the publisher keeps that many messages
    in flight (bursts of burst, each acknowledged before the next). Returns
    (got on node 2 as (payload, dup, packet id)
    in arrival order, {payload: packet id} the old connection received,
    count)."""
    n1, n2, _ = c3.nodes
    topic = "%s/t" % prefix
    old = subscriber(n1, "%s-x" % prefix, topic, qos=qos, props=EXPIRY_300, auto_ack=False)
    if bystander is not None:
        bystander.append(subscriber(n2, "%s-y" % prefix, topic, qos=qos))
    pub = client(c3.nodes[pub_node], "%s-pub" % prefix)
    count = 200
    halfway = threading.Event()
    failure = []

    def publish_all():
        try:
            for i in range(0, count, burst):
                if burst == 1:
                    pub.publish(topic, b"%03d" % i, qos=qos)
                else:
                    pipeline_publish(pub, topic, [b"%03d" % k for k in range(i, i + burst)],
                                     qos=qos, window=burst)
                if i >= count // 4:
                    halfway.set()
        except Exception as e:  # reported by the main thread
            failure.append(e)
            halfway.set()

    t = threading.Thread(target=publish_all, daemon=True)
    t.start()
    assert halfway.wait(T(10)), "publisher stuck before the takeover"
    new = n2.raw(version=5, auto_ack=True)
    assert new.connect("%s-x" % prefix, clean=False, props=EXPIRY_300).session_present
    got = []
    deadline = time.monotonic() + T(15)
    progress = time.monotonic()
    while len(got) < count and time.monotonic() < deadline:
        p = new.try_recv(0.1)
        if p is not None and p.type == m.PUBLISH:
            got.append((p.payload, p.dup, p.mid))
            progress = time.monotonic()
        elif not t.is_alive() and time.monotonic() - progress > T(2):
            break  # publisher done, nothing more for 2 s
    t.join(T(15))
    assert not t.is_alive(), "publisher still running"
    assert not failure, failure
    got += [(p.payload, p.dup, p.mid) for p in publishes_within(new, 0.5)]  # no more may come
    old_got = drain_publishes(old)
    old.close()
    return got, old_got, count


@pytest.mark.parametrize("qos", [1, 2])
def test_publishes_during_takeover_are_delivered(c3, qos):
    """A publisher on node 1 sends 200 QoS 1 (QoS 2) messages to client X's
    subscription while X (never acknowledging on node 1) takes its session
    over on node 2: X receives every one of them on node 2, once, in the
    publisher's order, with DUP=1 on exactly those node 1 had already sent.
    Four rounds (client ids): the paths a message takes switch at the
    hand-over (through the session's old worker, then straight from the
    publisher's; on node 2 as a forward following the session, then as a
    plain one), and a swap there shows only now and then (it did in about one
    round in 20 with 4 workers before the hand-over fence, clu_fence.c)."""
    for rnd in range(4):
        got, old_got, count = takeover_under_load(c3, qos, "tk%d-%d" % (qos, rnd))
        check_takeover_deliveries(got, old_got, count, qos)


@pytest.mark.parametrize("qos", [1, 2])
def test_publishes_from_third_node_during_takeover_are_delivered(c3, qos):
    """As above, but the publisher is on node 3: its messages reach X's
    session as forwards, first to node 1 (X's route there), then, once node
    3 has node 2's route, straight to node 2. A forward that reaches node 1
    after the hand-over must follow the session to node 2 (it is not
    forwarded on like a match of node 2's route would be: a forwarded
    message never is), and the two paths must keep the publisher's order
    [MQTT-4.6.0-6]: every message once on node 2, in order, DUP=1 with the
    old packet id on exactly those node 1 had sent. Four rounds."""
    for rnd in range(4):
        got, old_got, count = takeover_under_load(c3, qos, "tk3%d-%d" % (qos, rnd), pub_node=2)
        check_takeover_deliveries(got, old_got, count, qos)


@pytest.mark.parametrize("qos", [1, 2])
def test_third_node_publishes_reaching_both_nodes_during_takeover_come_once(c3, qos):
    """As above, but another client subscribes to the same topic on node 2
    first, so node 3 forwards every message to node 2 as well as to node 1
    (X's route) all along: while node 1 still relays what it gets for X's
    session (brk_handover.c), a message reaches X's new session both
    straight and relayed, and node 2 keeps one copy (FORWARD mid). X gets
    every message once, in order; the bystander too. Four rounds."""
    for rnd in range(4):
        by = []
        got, old_got, count = takeover_under_load(c3, qos, "tkb%d-%d" % (qos, rnd), pub_node=2,
                                                  bystander=by)
        check_takeover_deliveries(got, old_got, count, qos)
        seen = [p.payload for p in publishes_within(by[0], 0.5)]
        assert seen == [b"%03d" % i for i in range(count)], "bystander on node 2: %r" % (
            seen[:5] + ["..."] + seen[-5:])
        by[0].disconnect()


def forwards_received(node):
    """hamqtt_cluster_forwards_received_total of node (GET /metrics)."""
    status, body = node.http("GET", "/metrics")
    assert status == 200, (status, body[:200])
    for line in body.splitlines():
        if line.startswith("hamqtt_cluster_forwards_received_total"):
            return int(float(line.split()[-1]))
    raise AssertionError("no hamqtt_cluster_forwards_received_total in /metrics")


def test_old_node_keeps_a_moved_sessions_routes_for_a_while(c3):
    """After X's session moved from node 1 to node 2, node 1 keeps X's route
    announced for about 10 s (so node 3 never has neither route) and relays
    what node 3 sends there; then it withdraws it (debug log) and node 3
    forwards X's messages to node 2 only: node 1 receives nothing more."""
    n1, n2, n3 = c3.nodes
    old = subscriber(n1, "gh-x", "gh/t", qos=1, props=EXPIRY_300)
    old.disconnect()
    new = n2.raw(version=5, auto_ack=True)
    assert new.connect("gh-x", clean=False, props=EXPIRY_300).session_present
    assert n1.wait_log(r"client_id=gh-x: 1 route\(s\) kept", timeout=5)
    pub = client(n3, "gh-pub")
    pub.publish("gh/t", b"during", qos=1)
    got = [p.payload for p in publishes_within(new, 1.0)]
    assert got == [b"during"], got
    assert n1.wait_log(r"client_id=gh-x: the 1 route\(s\) kept after its hand-over are "
                       r"withdrawn", timeout=20), "node 1 never withdrew X's route"
    time.sleep(T(0.5))  # the ROUTE_DEL reaches node 3
    before = forwards_received(n1)
    for i in range(3):
        pub.publish("gh/t", b"after%d" % i, qos=1)
    got = [p.payload for p in publishes_within(new, 1.0)]
    assert got == [b"after0", b"after1", b"after2"], got
    assert forwards_received(n1) == before, "node 3 still forwards X's messages to node 1"


@pytest.mark.parametrize("qos", [1, 2])
def test_third_node_burst_publisher_during_takeover(c3, qos):
    """As the third-node test, but the publisher keeps 5 messages in flight
    (bursts of 5): at node 3's switch point a message on its way through node
    1 (relayed to node 2) could be overtaken by a later one sent straight to
    node 2. Node 3's forwards to node 2 wait, from the point its worker has
    node 2's new route, until node 1 acknowledged what that worker sent it
    before (clu_switch.c; node 1 acknowledges a relayed message once node 2
    did): every message once, in order. (It broke the order in about one run
    of three, 4 workers, before the switch fence.) Four rounds."""
    for rnd in range(4):
        got, old_got, count = takeover_under_load(c3, qos, "tkp%d-%d" % (qos, rnd), pub_node=2,
                                                  burst=5)
        check_takeover_deliveries(got, old_got, count, qos)
