"""05 sessions: clean session / clean start, persistent sessions that queue
while offline, session present, session expiry (v5), the queue limit policy.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import time

import pytest

import mqttraw as m
from helpers import collect_until


def persistent(version, expiry=300):
    if version == 5:
        return {"clean": False, "props": [(m.SESSION_EXPIRY, expiry)]}
    return {"clean": False}


@pytest.mark.parametrize("version", [4, 5])
def test_clean_session_discards_state(node, raw, version):
    """(3.1.1) [MQTT-3.1.2-6] / (5.0) [MQTT-3.1.2-4] [MQTT-3.2.2-2]: clean
    session / clean start discards the old session: session present 0 and
    the old subscriptions are gone."""
    cid = "clean-%d" % version
    c = raw(node, version=version)
    c.connect(cid, **persistent(version))
    c.subscribe("cs/t", qos=1)
    c.disconnect()
    c2 = raw(node, version=version)
    assert not c2.connect(cid, clean=True).session_present
    c2.subscribe("cs/sentinel", qos=0)
    pub = raw(node, version=version)
    pub.connect("clean-pub-%d" % version)
    pub.publish("cs/t", b"lost", qos=1)
    pub.publish("cs/sentinel", b"")
    assert collect_until(c2, "cs/sentinel") == []


@pytest.mark.parametrize("version", [4, 5])
def test_session_present_flag(node, raw, version):
    """(3.1.1) [MQTT-3.2.2-2] [MQTT-3.2.2-3] / (5.0) [MQTT-3.2.2-3]
    [MQTT-3.1.2-5] [MQTT-3.1.2-6]: persistent connect without a session ->
    session present 0; with one -> 1."""
    cid = "present-%d" % version
    c = raw(node, version=version)
    assert not c.connect(cid, **persistent(version)).session_present
    c.disconnect()
    c2 = raw(node, version=version)
    ack = c2.connect(cid, **persistent(version))
    assert ack.session_present
    assert ack.raw[2] == 0x01  # only bit 0 of the acknowledge flags [MQTT-3.2.2-1]


@pytest.mark.parametrize("version", [4, 5])
def test_persistent_session_queues_while_offline(node, raw, version):
    """(3.1.1) [MQTT-3.1.2-4] [MQTT-3.1.2-5] / (5.0) [MQTT-3.1.2-23]: the
    session (subscriptions, QoS 1/2 messages that arrive while offline) is
    kept and delivered on reconnect, in order, with session present 1."""
    cid = "queue-%d" % version
    c = raw(node, version=version)
    c.connect(cid, **persistent(version))
    c.subscribe(("pq/q1", 1), ("pq/q2", 2))
    c.disconnect()
    pub = raw(node, version=version)
    pub.connect("queue-pub-%d" % version)
    for i in range(5):
        pub.publish("pq/q1", b"one-%d" % i, qos=1)
        pub.publish("pq/q2", b"two-%d" % i, qos=2)
    c2 = raw(node, version=version, auto_ack=True)
    assert c2.connect(cid, **persistent(version)).session_present
    got = c2.publishes(10)
    assert [p.payload for p in got if p.topic == "pq/q1"] == [b"one-%d" % i for i in range(5)]
    assert [p.payload for p in got if p.topic == "pq/q2"] == [b"two-%d" % i for i in range(5)]
    assert all(p.qos == (1 if p.topic == "pq/q1" else 2) for p in got)


def test_v5_zero_session_expiry_ends_session_at_disconnect(node, raw):
    """[MQTT-3.1.2-23] (absent Session Expiry Interval = 0): the session ends
    when the connection closes, so clean start 0 finds no session."""
    c = raw(node, version=5)
    c.connect("sei0", clean=False)
    c.subscribe("sei0/t", qos=1)
    c.disconnect()
    c2 = raw(node, version=5)
    assert not c2.connect("sei0", clean=False).session_present


def test_takeover_of_an_expiry_0_session_starts_fresh(node, raw):
    """3.1.2.11.2: a session with Session Expiry Interval 0 ends when its
    network connection closes. A takeover closes it ([MQTT-3.1.4-3], 0x8E), so
    the new connection, even with clean start 0, finds no session: session
    present 0, and the old subscription is gone."""
    old = raw(node, version=5)
    old.connect("sei0-take", clean=False)
    old.subscribe("sei0take/t", qos=1)
    new = raw(node, version=5)
    assert not new.connect("sei0-take", clean=False).session_present
    old.expect_disconnect(0x8E)
    pub = raw(node, version=5)
    pub.connect("sei0-take-pub")
    pub.publish("sei0take/t", b"nobody", qos=1)
    new.expect_nothing(0.3, ptype=m.PUBLISH)


def test_v5_session_expiry_interval(node, raw):
    """Session Expiry Interval (3.1.2.11.2): the session survives a reconnect
    within the interval (session present 1) and is gone after it
    (session present 0, messages published meanwhile not kept)."""
    cid = "sei2"
    c = raw(node, version=5)
    c.connect(cid, clean=True, props=[(m.SESSION_EXPIRY, 2)])
    c.subscribe("sei2/t", qos=1)
    c.disconnect()
    time.sleep(0.3)
    c2 = raw(node, version=5)
    assert c2.connect(cid, clean=False, props=[(m.SESSION_EXPIRY, 2)]).session_present
    c2.disconnect()
    time.sleep(3.2)
    c3 = raw(node, version=5)
    assert not c3.connect(cid, clean=False, props=[(m.SESSION_EXPIRY, 2)]).session_present


def test_v5_session_expiry_set_to_zero_in_disconnect(node, raw):
    """DISCONNECT may lower the Session Expiry Interval (3.14.2.2.2): 0 ends
    the session at once."""
    c = raw(node, version=5)
    c.connect("sei-dc", clean=True, props=[(m.SESSION_EXPIRY, 300)])
    c.subscribe("seidc/t", qos=1)
    c.disconnect(rc=0, props=[(m.SESSION_EXPIRY, 0)])
    # the DISCONNECT is read by the first connection's worker; the new CONNECT
    # may land on another one: wait until the session is over
    node.wait_log(r"session ended client_id=sei-dc")
    c2 = raw(node, version=5)
    assert not c2.connect("sei-dc", clean=False, props=[(m.SESSION_EXPIRY, 300)]).session_present


def test_v5_session_expiry_zero_to_nonzero_in_disconnect_is_protocol_error(node, raw):
    """3.14.2.2.2: if CONNECT had Session Expiry Interval 0, a non-zero one in
    DISCONNECT is a Protocol Error: the server answers DISCONNECT 0x82 (with no
    Session Expiry Interval of its own [MQTT-3.14.2-2]) and closes; the session
    does not survive."""
    c = raw(node, version=5)
    c.connect("sei-bad", clean=True)
    c.subscribe("seibad/t", qos=1)
    c.send(m.disconnect(0, [(m.SESSION_EXPIRY, 60)], version=5))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)
    c2 = raw(node, version=5)
    assert not c2.connect("sei-bad", clean=False).session_present


def test_max_queued_messages_drops_qos0_first(broker, raw):
    """mqtt.max_queued_messages: when an offline session's queue is full,
    QoS 0 messages are dropped first."""
    b = broker({"mqtt.max_queued_messages": 5})
    c = raw(b)
    c.connect("mq-q0", clean=False)
    c.subscribe("mq/t", qos=1)
    c.disconnect()
    # offline for sure before the publishes (they would go to the live
    # connection, in flight rather than queued, if read first by another worker)
    b.wait_log("client disconnected client_id=mq-q0 addr")
    pub = raw(b)
    pub.connect("mq-q0-pub")
    pub.publish("mq/t", b"m0", qos=1)
    pub.publish("mq/t", b"z0", qos=0)
    for i in range(1, 5):
        pub.publish("mq/t", b"m%d" % i, qos=1)
    c2 = raw(b, auto_ack=True)
    assert c2.connect("mq-q0", clean=False).session_present
    c2.subscribe("mq/sentinel")
    pub.publish("mq/sentinel", b"")
    got = [p.payload for p in collect_until(c2, "mq/sentinel")]
    assert got == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_max_queued_messages_then_drops_oldest(broker, raw):
    """mqtt.max_queued_messages: with only QoS 1 queued, the oldest message is
    dropped to make room."""
    b = broker({"mqtt.max_queued_messages": 5})
    c = raw(b)
    c.connect("mq-old", clean=False)
    c.subscribe("mq/t", qos=1)
    c.disconnect()
    b.wait_log("client disconnected client_id=mq-old addr")  # offline, as above
    pub = raw(b)
    pub.connect("mq-old-pub")
    for i in range(8):
        pub.publish("mq/t", b"m%d" % i, qos=1)
    c2 = raw(b, auto_ack=True)
    assert c2.connect("mq-old", clean=False).session_present
    c2.subscribe("mq/sentinel")
    pub.publish("mq/sentinel", b"")
    got = [p.payload for p in collect_until(c2, "mq/sentinel")]
    assert got == [b"m3", b"m4", b"m5", b"m6", b"m7"]
