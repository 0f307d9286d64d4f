"""06 will messages: sent on abnormal close, not on normal DISCONNECT, v5
DISCONNECT 0x04, retain, QoS, properties, will delay interval.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import time

import pytest

import keepalive as ka
import mqttraw as m
from mqttraw import T


def watcher(node, raw, topic, qos=1, version=5, cid="will-watch"):
    w = raw(node, version=version, auto_ack=True)
    w.connect(cid)
    w.subscribe(topic, qos=qos)
    return w


@pytest.mark.parametrize("version", [4, 5])
def test_will_on_abnormal_close(node, raw, version):
    """(3.1.1) [MQTT-3.1.2-8] / (5.0) [MQTT-3.1.2-8]: the will is published
    when the connection closes without DISCONNECT, non-retained
    ((3.1.1) [MQTT-3.1.2-16] / (5.0) [MQTT-3.1.2-14])."""
    w = watcher(node, raw, "will/%d" % version)
    c = raw(node, version=version)
    c.connect("dying-%d" % version, will_topic="will/%d" % version, will_payload=b"gone",
              will_qos=1)
    c.shutdown_abrupt()
    p = w.expect(m.PUBLISH)
    assert (p.topic, p.payload, p.retain) == ("will/%d" % version, b"gone", False)


@pytest.mark.parametrize("version", [4, 5])
def test_no_will_on_normal_disconnect(node, raw, version):
    """(3.1.1) [MQTT-3.1.2-10] / (5.0) [MQTT-3.1.2-10] [MQTT-3.14.4-3]: a
    normal DISCONNECT deletes the will."""
    w = watcher(node, raw, "will/n%d" % version)
    c = raw(node, version=version)
    c.connect("polite-%d" % version, will_topic="will/n%d" % version, will_payload=b"no")
    c.disconnect()
    node.wait_log("client_id=polite-%d" % version, count=2)
    w.expect_nothing(0.5, ptype=m.PUBLISH)


def test_will_on_disconnect_with_will_message(node, raw):
    """DISCONNECT with reason 0x04 (Disconnect with Will Message, 3.14.2.1)
    publishes the will."""
    w = watcher(node, raw, "will/04")
    c = raw(node, version=5)
    c.connect("dc04", will_topic="will/04", will_payload=b"asked")
    c.disconnect(rc=m.RC_DISCONNECT_WITH_WILL)
    assert w.expect(m.PUBLISH).payload == b"asked"


def test_will_on_protocol_error(node, raw):
    """(3.1.1) [MQTT-3.1.2-8]: the will is published when the server closes
    the connection because of a protocol error."""
    w = watcher(node, raw, "will/perr")
    c = raw(node, version=5)
    c.connect("perr", will_topic="will/perr", will_payload=b"broken")
    c.send(m.connect("perr", version=5))  # second CONNECT
    c.wait_closed()
    assert w.expect(m.PUBLISH).payload == b"broken"


def test_will_on_keepalive_timeout(node, raw):
    """The will is published when keep alive expires [MQTT-3.1.2-22], at
    1.5x keep alive (not before, and soon after)."""
    w = watcher(node, raw, "will/ka")
    c = raw(node, version=4)
    t0 = time.monotonic()
    c.connect("ka-will", keepalive=ka.KA, will_topic="will/ka", will_payload=b"silent")
    assert w.expect(m.PUBLISH, timeout=ka.window()[1] + 2).payload == b"silent"
    ka.assert_in_window(t0, what="will")


@pytest.mark.parametrize("version", [4, 5])
def test_will_retain(node, raw, version):
    """(3.1.1) [MQTT-3.1.2-17] / (5.0) [MQTT-3.1.2-15]: Will Retain 1 ->
    published as a retained message."""
    w = watcher(node, raw, "will/r%d" % version)
    c = raw(node, version=version)
    c.connect("wr-%d" % version, will_topic="will/r%d" % version, will_payload=b"kept",
              will_retain=True, will_qos=1)
    c.shutdown_abrupt()
    w.expect(m.PUBLISH)
    late = raw(node, version=version)
    late.connect("wr-late-%d" % version)
    late.subscribe("will/r%d" % version, qos=1)
    p = late.expect(m.PUBLISH)
    assert (p.payload, p.retain) == (b"kept", True)


@pytest.mark.parametrize("will_qos,sub_qos", [(2, 2), (2, 1), (1, 2), (0, 2)])
def test_will_qos(node, raw, will_qos, sub_qos):
    """[MQTT-3.1.2-12] ((3.1.1) [MQTT-3.1.2-14]) the will is published at its
    Will QoS, delivered at min(will QoS, granted QoS) [MQTT-3.8.4-8]."""
    w = watcher(node, raw, "will/q", qos=sub_qos)
    c = raw(node, version=5)
    c.connect("wq", will_topic="will/q", will_payload=b"q", will_qos=will_qos)
    c.shutdown_abrupt()
    assert w.expect(m.PUBLISH).qos == min(will_qos, sub_qos)


def test_will_properties_passed_through(node, raw):
    """[MQTT-3.1.3-10] will user properties are passed on unaltered and in
    order; payload format, content type, response topic, correlation data and
    message expiry (3.1.3.2) are forwarded too."""
    w = watcher(node, raw, "will/props")
    wp = [(m.PAYLOAD_FORMAT, 1), (m.MESSAGE_EXPIRY, 100), (m.CONTENT_TYPE, "text/plain"),
          (m.RESPONSE_TOPIC, "reply/here"), (m.CORRELATION_DATA, b"\x00\x01corr"),
          (m.USER_PROPERTY, ("a", "1")), (m.USER_PROPERTY, ("b", "2")),
          (m.USER_PROPERTY, ("a", "3"))]
    c = raw(node, version=5)
    c.connect("wprops", will_topic="will/props", will_payload=b"bye", will_qos=1, will_props=wp)
    c.shutdown_abrupt()
    p = w.expect(m.PUBLISH)
    assert p.props.get(m.PAYLOAD_FORMAT) == 1
    assert p.props.get(m.CONTENT_TYPE) == "text/plain"
    assert p.props.get(m.RESPONSE_TOPIC) == "reply/here"
    assert p.props.get(m.CORRELATION_DATA) == b"\x00\x01corr"
    assert 0 < p.props.get(m.MESSAGE_EXPIRY) <= 100
    assert p.props.user() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert m.WILL_DELAY not in p.props


def test_will_delay_cancelled_by_reconnect(node, raw):
    """[MQTT-3.1.3-9] [MQTT-3.1.2-8]: a new connection to the session before
    the Will Delay Interval has passed means the will is not sent."""
    w = watcher(node, raw, "will/delay")
    c = raw(node, version=5)
    c.connect("wd-back", clean=True, props=[(m.SESSION_EXPIRY, 30)], will_topic="will/delay",
              will_payload=b"should-not", will_props=[(m.WILL_DELAY, 2)])
    c.shutdown_abrupt()
    time.sleep(0.3)
    c2 = raw(node, version=5)
    c2.connect("wd-back", clean=False, props=[(m.SESSION_EXPIRY, 30)])
    w.expect_nothing(2.5, ptype=m.PUBLISH)


def test_will_sent_after_delay(node, raw):
    """[MQTT-3.1.2-8] with a Will Delay Interval the will is published once the
    delay has passed (not before)."""
    w = watcher(node, raw, "will/late")
    c = raw(node, version=5)
    c.connect("wd-late", clean=True, props=[(m.SESSION_EXPIRY, 30)], will_topic="will/late",
              will_payload=b"late", will_props=[(m.WILL_DELAY, 1)])
    t0 = time.monotonic()
    c.shutdown_abrupt()
    p = w.expect(m.PUBLISH, timeout=5)
    elapsed = time.monotonic() - t0
    assert p.payload == b"late"
    assert 0.8 <= elapsed <= T(4), elapsed


def test_will_sent_when_session_ends_before_delay(node, raw):
    """[MQTT-3.1.2-8] the will is published when the session ends, if that
    comes before the Will Delay Interval (session expiry 1 s, delay 30 s)."""
    w = watcher(node, raw, "will/sess")
    c = raw(node, version=5)
    c.connect("wd-sess", clean=True, props=[(m.SESSION_EXPIRY, 1)], will_topic="will/sess",
              will_payload=b"session-over", will_props=[(m.WILL_DELAY, 30)])
    c.shutdown_abrupt()
    assert w.expect(m.PUBLISH, timeout=5).payload == b"session-over"


def test_will_not_sent_for_takeover_with_delay(node, raw):
    """A takeover (new connection, clean start 0) within the Will Delay
    Interval does not send the will [MQTT-3.1.3-9]."""
    w = watcher(node, raw, "will/take")
    c = raw(node, version=5)
    c.connect("wd-take", clean=True, props=[(m.SESSION_EXPIRY, 30)], will_topic="will/take",
              will_payload=b"no", will_props=[(m.WILL_DELAY, 2)])
    c2 = raw(node, version=5)
    c2.connect("wd-take", clean=False, props=[(m.SESSION_EXPIRY, 30)])
    c.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    w.expect_nothing(2.5, ptype=m.PUBLISH)
