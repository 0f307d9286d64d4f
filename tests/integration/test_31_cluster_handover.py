"""31 session hand-over between nodes, what test_21 does not pin: QoS 2
exactly once across a takeover (receiving and sending side), and the will
delay against the session expiry when the client comes back on another
node. Three real nodes (cluster.py), raw v5 clients.

Statement ids are MQTT 5.0."""

import time

import mqttraw as m
from mqttraw import T
from test_21_cluster import EXPIRY_300, c3, client  # noqa: F401 (c3: fixture)


def publishes(c, seconds):
    """Every packet c reads within seconds (unscaled: an absence check)."""
    got = list(c.stash)
    c.stash = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            got.append(c._read(left / m.MULT))
        except (m.NoPacket, m.Closed):
            return got


# ---- QoS 2 exactly once across a takeover ------------------------------------------

def test_qos2_receiver_taken_over_on_another_node(c3):
    """X (QoS 2 subscriber, session expiry 300) on node 1 holds three QoS 2
    messages: A acknowledged with PUBREC (PUBREL received, PUBCOMP not yet
    sent), B and C not acknowledged. X connects on node 2 (clean start 0)
    while the node 1 connection is still open. Node 2 must resend PUBREL
    for A and never A's PUBLISH again, resend B and C with DUP=1 and their
    original packet ids [MQTT-4.4.0-1], in order, then deliver D once: no
    message lost, none delivered twice [MQTT-4.3.3]."""
    n1, n2, n3 = c3.nodes
    old = client(n1, "q2-x", auto_ack=False, props=EXPIRY_300)
    assert old.subscribe("q2/t", qos=2).codes == [2]
    pub = client(n3, "q2-pub")
    for payload in (b"A", b"B", b"C"):
        pub.publish("q2/t", payload, qos=2)
    first = {p.payload: p for p in old.publishes(3)}
    assert sorted(first) == [b"A", b"B", b"C"], first
    assert not any(p.dup for p in first.values()), first
    old.send(m.pubrec(first[b"A"].mid, version=5))
    old.expect(m.PUBREL, mid=first[b"A"].mid)  # node 1 knows A was received

    new = n2.raw(version=5, auto_ack=False)
    assert new.connect("q2-x", clean=False, props=EXPIRY_300).session_present
    old.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    pub.publish("q2/t", b"D", qos=2)

    got = []
    deadline = time.monotonic() + T(10)
    while len([p for p in got if p.type == m.PUBLISH]) < 3 or \
            not [p for p in got if p.type == m.PUBREL]:
        assert time.monotonic() < deadline, "node 2 sent only %r" % got
        p = new.try_recv(0.2)
        if p is not None:
            got.append(p)
    got += publishes(new, 1.0)  # nothing more may come
    pubrels = [p.mid for p in got if p.type == m.PUBREL]
    pubs = [(p.payload, p.dup, p.mid) for p in got if p.type == m.PUBLISH]
    assert pubrels == [first[b"A"].mid], "PUBREL for A expected once: %r" % got
    assert [x[0] for x in pubs] == [b"B", b"C", b"D"], "lost, duplicated or reordered: %r" % pubs
    assert pubs[0] == (b"B", True, first[b"B"].mid), pubs
    assert pubs[1] == (b"C", True, first[b"C"].mid), pubs
    assert pubs[2][1] is False, pubs

    # complete every flow: the session then holds nothing
    new.send(m.pubcomp(first[b"A"].mid, version=5))
    for _, _, mid in pubs:
        new.send(m.pubrec(mid, version=5))
        new.expect(m.PUBREL, mid=mid)
        new.send(m.pubcomp(mid, version=5))
    assert new.ping().type == m.PINGRESP
    pub.publish("q2/t", b"E", qos=2)
    e = new.expect(m.PUBLISH)
    assert (e.payload, e.dup) == (b"E", False), e


def test_qos2_sender_taken_over_on_another_node(c3):
    """P (session expiry 300) on node 1 sends two QoS 2 messages and gets
    PUBREC for both, then its connection breaks before any PUBREL. P
    connects on node 2 (clean start 0): a resent PUBLISH of the first (DUP=1,
    same packet id, as after a lost PUBREC) is answered with PUBREC and not
    delivered again [MQTT-4.3.3-10]; PUBREL of both is answered with PUBCOMP
    success (node 2 knows the packet ids, not 0x92) [MQTT-4.3.3-11]. The
    subscriber on node 3 gets each message exactly once."""
    n1, n2, n3 = c3.nodes
    sub = client(n3, "q2s-sub")
    assert sub.subscribe("q2s/t", qos=2).codes == [2]
    p1 = client(n1, "q2s-pub", props=EXPIRY_300)
    for mid, payload in ((7, b"first"), (8, b"second")):
        p1.send(m.publish("q2s/t", payload, qos=2, mid=mid, version=5))
        rec = p1.expect(m.PUBREC, mid=mid)
        assert rec.rc == 0, rec
    got = [p.payload for p in sub.publishes(2)]
    assert got == [b"first", b"second"], got
    p1.shutdown_abrupt()

    p2 = n2.raw(version=5)
    deadline = time.monotonic() + T(10)
    while True:  # node 1 may not have seen the broken connection yet
        ack = p2.connect("q2s-pub", clean=False, props=EXPIRY_300)
        if ack.session_present:
            break
        assert time.monotonic() < deadline, "session not found on node 2"
        p2.close()
        time.sleep(0.2)
        p2 = n2.raw(version=5)
    p2.send(m.publish("q2s/t", b"first", qos=2, mid=7, dup=True, version=5))
    rec = p2.expect(m.PUBREC, mid=7)
    assert rec.rc == 0, rec
    for mid in (7, 8):
        p2.send(m.pubrel(mid, version=5))
        comp = p2.expect(m.PUBCOMP, mid=mid)
        assert comp.rc == 0, "PUBCOMP 0x%02x for packet id %d: node 2 lost it" % (comp.rc, mid)
    again = [p.payload for p in publishes(sub, 1.5) if p.type == m.PUBLISH]
    assert again == [], "delivered again after the takeover: %r" % again
    # the packet id is free again: a new message with it is a new message
    p2.publish("q2s/t", b"third", qos=2, mid=7)
    assert sub.expect(m.PUBLISH).payload == b"third"


# ---- will delay and session expiry across nodes ------------------------------------

def watcher(node, topic, cid):
    w = client(node, cid)
    assert w.subscribe(topic, qos=1).codes == [1]
    return w


def test_will_at_session_end_when_delay_exceeds_expiry(c3):
    """Will Delay Interval 30 s > Session Expiry Interval 3 s: the will is
    published when the session ends, at 3 s, not at 30 s [MQTT-3.1.3-9]
    ('whichever happens first'), to a watcher on another node."""
    n1, _, n3 = c3.nodes
    w = watcher(n3, "wd/end", "wd-end-watch")
    c = client(n1, "wd-end", props=[(m.SESSION_EXPIRY, 3)], will_topic="wd/end",
               will_payload=b"gone", will_props=[(m.WILL_DELAY, 30)])
    assert c.ping().type == m.PINGRESP
    t0 = time.monotonic()
    c.shutdown_abrupt()
    p = w.expect(m.PUBLISH, timeout=15)
    elapsed = time.monotonic() - t0
    assert p.payload == b"gone", p
    assert 2.5 <= elapsed <= 10, "will after %.1fs (session expiry 3 s, delay 30 s)" % elapsed


def test_will_cancelled_by_reconnect_on_another_node(c3):
    """Will Delay Interval 3 s, Session Expiry 300 s: the connection on node 1
    breaks and the client connects again on node 2 (clean start 0) within
    the delay: the will is never published [MQTT-3.1.3-9]; the session moved
    (session present 1). Then a broken connection on node 2 with a new will
    delay publishes that will after its delay."""
    n1, n2, n3 = c3.nodes
    w = watcher(n3, "wd/cancel", "wd-cancel-watch")
    will = dict(will_topic="wd/cancel", will_payload=b"should not", will_props=[(m.WILL_DELAY, 3)])
    c = client(n1, "wd-cancel", props=EXPIRY_300, **will)
    assert c.ping().type == m.PINGRESP
    c.shutdown_abrupt()
    time.sleep(0.3)
    again = n2.raw(version=5, auto_ack=True)
    ack = again.connect("wd-cancel", clean=False, props=EXPIRY_300, will_topic="wd/cancel",
                        will_payload=b"later", will_props=[(m.WILL_DELAY, 2)])
    assert ack.session_present, ack
    wills = [p.payload for p in publishes(w, 5.0) if p.type == m.PUBLISH]
    assert wills == [], "will published though the client came back within the delay: %r" % wills
    t0 = time.monotonic()
    again.shutdown_abrupt()
    p = w.expect(m.PUBLISH, timeout=10)
    assert p.payload == b"later", p
    assert time.monotonic() - t0 >= 1.8, "the new will came before its 2 s delay"
