"""
test_35_store_local.py - session.store = local (the embedded LMDB store in
node.data_dir): what a persistent session holds survives kill -9 of the node.

Each test SIGKILLs the real hamqttd (no shutdown path runs) and starts it
again on the same data directory, then checks with real clients that what
was acknowledged before the kill is there: queued messages of offline
persistent sessions (QoS 1 at least once, QoS 2 exactly once), subscriptions
without a new SUBSCRIBE, in-flight QoS 2 state and packet ids, incoming QoS 2
ids between PUBREC and PUBREL, retained messages, session expiry and wills.
"""

import time

from helpers import Paho, count_redelivered, mosquitto_pub
from mqttraw import (PUBCOMP, PUBLISH, PUBREC, PUBREL, SESSION_EXPIRY, T, pubcomp, pubrec,
                     pubrel)
from mqttraw import publish as enc_publish

LOCAL = {"session.store": "local"}


def restart(b):
    """kill -9, then start the same node on the same data directory."""
    b.kill()
    b.start()
    return b


def test_queued_qos1_survive_kill(broker, raw):
    """Every QoS 1 message acknowledged to its publisher while a persistent
    subscriber was offline is delivered after kill -9 and restart, without a
    new SUBSCRIBE (the session and its subscription are stored)."""
    b = broker(LOCAL)
    sub = raw(b)
    sub.connect("dur-sub", clean=False)
    sub.subscribe("dur/#", qos=1)
    sub.disconnect()
    pub = raw(b)
    pub.connect("dur-pub")
    for i in range(50):
        pub.publish("dur/a", b"m%d" % i, qos=1)  # returns once PUBACK arrived
    pub.close()
    restart(b)
    sub = raw(b)
    ack = sub.connect("dur-sub", clean=False)
    assert ack.session_present, "session lost across kill -9"
    got = []
    deadline = time.monotonic() + T(10)
    while len(set(got)) < 50 and time.monotonic() < deadline:
        p = sub.try_recv(0.5)
        if p is not None and p.type == PUBLISH:
            got.append(bytes(p.payload))
            sub.ack(p)
    assert set(got) == {b"m%d" % i for i in range(50)}, "lost: %r" % sorted(
        {b"m%d" % i for i in range(50)} - set(got))
    # in order [MQTT-4.6.0-6]
    firsts = []
    for g in got:
        if g not in firsts:
            firsts.append(g)
    assert firsts == [b"m%d" % i for i in range(50)]


def test_subscription_survives_kill(broker, paho):
    """A persistent session's subscription is live after the restart: a
    message published after it reaches the reconnected client, which never
    subscribed again."""
    b = broker(LOCAL)
    s = paho(b, "dur-sub2", clean=False)
    s.subscribe("live/+", qos=1)
    s.close()
    restart(b)
    s = paho(b, "dur-sub2", clean=False)
    assert s.connack[0]["session present"] == 1
    mosquitto_pub(b.port, "live/x", "after-restart", qos=1)
    assert s.get(timeout=10).payload == b"after-restart"


def test_qos2_inflight_exactly_once(broker, raw):
    """A QoS 2 message in flight to a subscriber (PUBLISH received, PUBREC
    sent, PUBREL not yet) is resent after kill -9 with the same packet id,
    then released: the client sees one message, never a second one under a
    new id [MQTT-4.3.3-9] [MQTT-4.4.0-1]."""
    b = broker(LOCAL)
    sub = raw(b)
    sub.connect("q2-sub", clean=False)
    sub.subscribe("q2/t", qos=2)
    pub = raw(b)
    pub.connect("q2-pub")
    pub.publish("q2/t", b"once", qos=2)
    p = sub.expect(PUBLISH)
    assert p.qos == 2
    first_mid = p.mid
    sub.send(pubrec(p.mid))
    sub.expect(PUBREL, mid=p.mid)
    # PUBREL seen: the broker may have stored "waiting for PUBCOMP"; kill now
    pub.close()
    sub.close()
    restart(b)
    sub = raw(b)
    ack = sub.connect("q2-sub", clean=False)
    assert ack.session_present
    # the broker resends PUBREL for the id (or nothing); never the PUBLISH again
    seen = []
    deadline = time.monotonic() + T(3)
    while time.monotonic() < deadline:
        q = sub.try_recv(0.3)
        if q is None:
            continue
        seen.append(q)
        if q.type == PUBREL:
            sub.send(pubcomp(q.mid))
    # a resend of the same PUBLISH (DUP, same id) is allowed: the client knows
    # the id and does not deliver again; a new id would be a second message
    for q in seen:
        assert q.mid == first_mid, "QoS 2 message sent again under another id: %r" % seen
        if q.type == PUBLISH:
            assert q.dup, "QoS 2 resend without DUP: %r" % q


def test_qos2_received_id_survives_kill(broker, raw):
    """An incoming QoS 2 id between PUBREC and PUBREL is stored: after kill -9
    the publisher's PUBREL gets PUBCOMP, and its resent PUBLISH (DUP) is not
    delivered a second time [MQTT-4.3.3-9]."""
    b = broker(LOCAL)
    sub = raw(b)
    sub.connect("rx-sub", clean=False)
    sub.subscribe("rx/t", qos=1)
    sub.disconnect()
    pub = raw(b)
    pub.connect("rx-pub", clean=False)
    pub.send(enc_publish("rx/t", b"x", qos=2, mid=7))
    pub.expect(PUBREC, mid=7)
    pub.close()
    restart(b)
    pub = raw(b)
    ack = pub.connect("rx-pub", clean=False)
    assert ack.session_present
    pub.send(enc_publish("rx/t", b"x", qos=2, mid=7, dup=True))
    pub.expect(PUBREC, mid=7)
    pub.send(pubrel(7))
    pub.expect(PUBCOMP, mid=7)
    sub = raw(b)
    sub.connect("rx-sub", clean=False)
    msgs = []
    deadline = time.monotonic() + T(2)
    while time.monotonic() < deadline:
        q = sub.try_recv(0.3)
        if q is not None and q.type == PUBLISH:
            msgs.append(q)
            sub.ack(q)
    assert len(msgs) == 1, "expected the message once, got %d" % len(msgs)


def test_retained_survive_kill(broker, paho):
    """Retained messages written before kill -9 are all there after it, and a
    delete (empty retained payload) stays deleted."""
    b = broker(LOCAL)
    p = paho(b, "ret-pub")
    for i in range(20):
        p.publish("ret/%d" % i, b"v%d" % i, qos=1, retain=True)
    p.publish("ret/5", b"", qos=1, retain=True)
    p.close()
    restart(b)
    s = paho(b, "ret-sub")
    s.subscribe("ret/#", qos=1)
    got = {m.topic: bytes(m.payload) for m in s.get_n(19, timeout=10)}
    assert got == {"ret/%d" % i: b"v%d" % i for i in range(20) if i != 5}
    s.expect_none(0.5)


def test_session_expiry_holds_on_disk(broker, raw):
    """A session's expiry interval keeps running across a restart: a v5
    session with expiry 2 s is gone after the node was down longer than that."""
    b = broker(LOCAL)
    c = raw(b, version=5)
    c.connect("exp-sub", clean=False, props=[(SESSION_EXPIRY, 2)])
    c.subscribe("exp/t", qos=1)
    c.disconnect()
    # the offline header (with its expiry time) is written at once; a node
    # killed before it is stored counts the expiry from its restart instead
    time.sleep(0.5)
    b.kill()
    time.sleep(3)
    b.start()
    c = raw(b, version=5)
    ack = c.connect("exp-sub", clean=False, props=[(SESSION_EXPIRY, 2)])
    assert not ack.session_present, "expired session came back"


def test_will_of_client_connected_at_kill(broker, paho):
    """A client was connected with a will when the node died: its connection
    ended without DISCONNECT, so the restarted node publishes the will (after
    the will delay) [MQTT-3.1.2-8]."""
    b = broker(LOCAL)
    w = Paho(b.port, "will-dev", version=4, clean=False,
             will={"topic": "presence/will-dev", "payload": b"offline", "qos": 1, "retain": True})
    time.sleep(0.5)  # connected for a moment: its session (and will) reach the store
    try:
        restart(b)
    finally:
        w.c.loop_stop()
    s = paho(b, "will-watch")
    s.subscribe("presence/#", qos=1)
    m = s.get(timeout=10)
    assert (m.topic, bytes(m.payload)) == ("presence/will-dev", b"offline")


def test_queue_limit_holds_on_disk(broker, raw):
    """mqtt.max_queued_messages holds in the store as in memory: the messages
    the queue policy dropped stay dropped after kill -9 (the newest 5 of 20
    come back, not all 20)."""
    b = broker(dict(LOCAL, **{"mqtt.max_queued_messages": 5}))
    sub = raw(b)
    sub.connect("ql-sub", clean=False)
    sub.subscribe("ql/t", qos=1)
    sub.disconnect()
    # offline before the first publish: else q0 goes out in flight and is
    # (rightly) sent again after the restart, ahead of the newest five
    b.wait_log("client disconnected client_id=ql-sub")
    pub = raw(b)
    pub.connect("ql-pub")
    for i in range(20):
        pub.publish("ql/t", b"q%d" % i, qos=1)
    pub.close()
    time.sleep(0.3)
    restart(b)
    sub = raw(b)
    assert sub.connect("ql-sub", clean=False).session_present
    got = []
    deadline = time.monotonic() + T(3)
    while time.monotonic() < deadline:
        p = sub.try_recv(0.3)
        if p is not None and p.type == PUBLISH:
            got.append(bytes(p.payload))
            sub.ack(p)
    assert got == [b"q%d" % i for i in range(15, 20)], got


def test_qos2_kill_between_workers_batches_exactly_once(broker, raw):
    """A QoS 2 message is stored in several batches: the publisher's worker
    stores its packet id and its own subscribers' entries, every other
    worker its subscribers' entries, later. The node is killed right after
    the first of them is durable (test hook HQ_TEST_STORE_KILL_AFTER_RXID):
    after the restart the publisher's resend (DUP, same id) must reach the
    subscribers that lack it, and only them; every persistent subscriber,
    whichever worker held it, gets the message exactly once
    [MQTT-4.3.3-9] [MQTT-4.3.3-10]; a shared group gets it once."""
    b = broker(dict(LOCAL, **{"node.workers": 4}), env={"HQ_TEST_STORE_KILL_AFTER_RXID": "1"})
    subs = ["xw-sub%d" % i for i in range(8)]
    members = ["xw-member%d" % i for i in range(2)]
    for cid in subs:  # each its own connection: spread over the 4 workers
        s = raw(b)
        s.connect(cid, clean=False)
        s.subscribe("xw/t", qos=2 if cid[-1] in "0246" else 1)
        s.disconnect()
    for cid in members:
        s = raw(b)
        s.connect(cid, clean=False)
        s.subscribe("$share/g/xw/t", qos=2)
        s.disconnect()
    pub = raw(b)
    pub.connect("xw-pub", clean=False)
    pub.send(enc_publish("xw/t", b"once", qos=2, mid=9))
    b.proc.wait(timeout=T(10))  # the hook killed it: no PUBREC was sent
    b.wait_log("killed after a QoS 2 id was stored")
    b.env = {}
    b.start()
    pub = raw(b)
    assert pub.connect("xw-pub", clean=False).session_present
    pub.send(enc_publish("xw/t", b"once", qos=2, mid=9, dup=True))
    pub.expect(PUBREC, mid=9)
    pub.send(pubrel(9))
    pub.expect(PUBCOMP, mid=9)
    counts = {}
    for cid in subs + members:
        s = raw(b)
        assert s.connect(cid, clean=False).session_present
        counts[cid] = count_redelivered(s, b"once")
        s.disconnect()
    assert all(counts[c] == 1 for c in subs), "not exactly once per subscriber: %r" % counts
    assert sum(counts[c] for c in members) == 1, "the shared group: %r" % counts
    assert b.log_lines("resent after a restart"), b.log_tail()
