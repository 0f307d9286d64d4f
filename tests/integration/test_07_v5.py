"""07 MQTT 5 features: topic aliases both ways, message expiry, maximum packet
size both ways, property pass-through, subscription identifiers, request
problem / response information, maximum QoS.

All statement ids are MQTT 5.0."""

import time

import pytest

import mqttraw as m
from helpers import collect_until


def v5(node, raw, cid, **kw):
    c = raw(node, version=5, **{k: kw.pop(k) for k in list(kw) if k in ("auto_ack", "rcvbuf")})
    ack = c.connect(cid, **kw)
    c.connack = ack
    return c


# ---- topic aliases -------------------------------------------------------------

def test_topic_alias_client_to_server(broker, raw):
    """[MQTT-3.3.2-12] the server accepts aliases 1..Topic Alias Maximum;
    an alias set with a topic is then used with an empty topic, and can be
    remapped; subscribers see the real topic and no alias of the publisher's
    (they did not ask for aliases [MQTT-3.1.2-27])."""
    b = broker({"mqtt.topic_alias_maximum": 10})
    sub = v5(b, raw, "ta-sub")
    sub.subscribe("ta/#", qos=0)
    pub = v5(b, raw, "ta-pub")
    assert pub.connack.props.get(m.TOPIC_ALIAS_MAXIMUM) == 10
    pub.publish("ta/one", b"1", props=[(m.TOPIC_ALIAS, 1)])
    pub.publish("", b"2", props=[(m.TOPIC_ALIAS, 1)])
    pub.publish("ta/two", b"3", props=[(m.TOPIC_ALIAS, 1)])  # remap
    pub.publish("", b"4", props=[(m.TOPIC_ALIAS, 1)])
    pub.publish("ta/ten", b"5", qos=1, props=[(m.TOPIC_ALIAS, 10)])
    pub.publish("", b"6", qos=1, props=[(m.TOPIC_ALIAS, 10)])
    got = sub.publishes(6)
    assert [(p.topic, p.payload) for p in got] == [
        ("ta/one", b"1"), ("ta/one", b"2"), ("ta/two", b"3"), ("ta/two", b"4"),
        ("ta/ten", b"5"), ("ta/ten", b"6")]
    assert all(m.TOPIC_ALIAS not in p.props for p in got)


def test_topic_alias_out_of_range(broker, raw):
    """An alias greater than the server's Topic Alias Maximum [MQTT-3.2.2-17]
    gets DISCONNECT 0x94 (Topic Alias invalid)."""
    b = broker({"mqtt.topic_alias_maximum": 10})
    c = v5(b, raw, "ta-range")
    c.send(m.publish("ta/x", b"x", props=[(m.TOPIC_ALIAS, 11)], version=5))
    c.expect_disconnect(m.RC_TOPIC_ALIAS_INVALID)


def test_topic_alias_disabled(broker, raw):
    """mqtt.topic_alias_maximum = 0: no (or zero) Topic Alias Maximum is
    advertised and any alias is invalid [MQTT-3.2.2-18] -> DISCONNECT 0x94."""
    b = broker({"mqtt.topic_alias_maximum": 0})
    c = v5(b, raw, "ta-off")
    assert c.connack.props.get(m.TOPIC_ALIAS_MAXIMUM, 0) == 0
    c.send(m.publish("ta/x", b"x", props=[(m.TOPIC_ALIAS, 1)], version=5))
    c.expect_disconnect(m.RC_TOPIC_ALIAS_INVALID)


def test_topic_alias_unknown_with_empty_topic(broker, raw):
    """3.3.2.3.4: an empty topic with an alias that has no mapping is a
    Protocol Error -> DISCONNECT 0x82."""
    b = broker({"mqtt.topic_alias_maximum": 10})
    c = v5(b, raw, "ta-unknown")
    c.send(m.publish("", b"x", props=[(m.TOPIC_ALIAS, 5)], version=5))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_topic_alias_not_carried_to_new_connection(broker, raw):
    """[MQTT-3.3.2-7] alias mappings do not survive the connection: using the
    old alias with an empty topic on a new connection is a Protocol Error."""
    b = broker({"mqtt.topic_alias_maximum": 10})
    c = v5(b, raw, "ta-conn", clean=False, props=[(m.SESSION_EXPIRY, 60)])
    c.publish("ta/x", b"x", props=[(m.TOPIC_ALIAS, 3)])
    c.disconnect()
    c2 = v5(b, raw, "ta-conn", clean=False, props=[(m.SESSION_EXPIRY, 60)])
    c2.send(m.publish("", b"x", props=[(m.TOPIC_ALIAS, 3)], version=5))
    c2.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_topic_alias_empty_topic_without_alias(node, raw):
    """3.3.2.1: a zero-length topic with no Topic Alias is a Protocol Error."""
    c = v5(node, raw, "ta-none")
    c.send(m.publish("", b"x", version=5))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_topic_alias_server_to_client(node, raw):
    """When the client advertises Topic Alias Maximum, the server may use
    aliases, never above that maximum [MQTT-3.1.2-26] and never 0
    [MQTT-3.3.2-8]; here it does use them for a repeated topic. A client that
    advertises none gets none [MQTT-3.1.2-27]."""
    sub = v5(node, raw, "tas-sub", props=[(m.TOPIC_ALIAS_MAXIMUM, 2)])
    sub.subscribe("tas/#", qos=0)
    plain = v5(node, raw, "tas-plain")
    plain.subscribe("tas/#", qos=0)
    pub = v5(node, raw, "tas-pub")
    topics = ["tas/a", "tas/a", "tas/b", "tas/a", "tas/c", "tas/c", "tas/c"]
    for i, t in enumerate(topics):
        pub.publish(t, b"%d" % i)
    got = sub.publishes(len(topics))
    aliases = [p.props.get(m.TOPIC_ALIAS) for p in got]
    assert [p.topic for p in got] == topics  # resolved through the aliases
    assert all(a is None or 1 <= a <= 2 for a in aliases), aliases
    assert any(m.TOPIC_ALIAS in p.props and p.wire_topic == "" for p in got), \
        "no PUBLISH used an alias with an empty topic"
    for p in plain.publishes(len(topics)):
        assert m.TOPIC_ALIAS not in p.props and p.topic


# ---- message expiry --------------------------------------------------------------

def test_message_expiry_forwarded(node, raw):
    """[MQTT-3.3.2-6] a live message carries the Message Expiry Interval
    (received value minus time waiting); without one, none is added."""
    sub = v5(node, raw, "me-sub")
    sub.subscribe("me/t", qos=1)
    pub = v5(node, raw, "me-pub")
    pub.publish("me/t", b"e", qos=1, props=[(m.MESSAGE_EXPIRY, 60)])
    pub.publish("me/t", b"n", qos=1)
    a, b = sub.publishes(2)
    assert 58 <= a.props.get(m.MESSAGE_EXPIRY) <= 60
    assert m.MESSAGE_EXPIRY not in b.props


def test_message_expiry_while_queued(node, raw):
    """[MQTT-3.3.2-5] a queued message whose interval passed is not delivered;
    [MQTT-3.3.2-6] one still valid is delivered with the interval reduced by
    the time it waited."""
    c = v5(node, raw, "me-q", clean=False, props=[(m.SESSION_EXPIRY, 60)])
    c.subscribe("meq/t", qos=1)
    c.disconnect()
    pub = v5(node, raw, "me-q-pub")
    pub.publish("meq/t", b"expires", qos=1, props=[(m.MESSAGE_EXPIRY, 1)])
    pub.publish("meq/t", b"survives", qos=1, props=[(m.MESSAGE_EXPIRY, 30)])
    pub.publish("meq/t", b"forever", qos=1)
    time.sleep(2.2)
    c2 = v5(node, raw, "me-q", clean=False, props=[(m.SESSION_EXPIRY, 60)], auto_ack=True)
    assert c2.connack.session_present
    c2.subscribe("meq/sentinel")
    pub.publish("meq/sentinel", b"")
    got = collect_until(c2, "meq/sentinel")
    assert [p.payload for p in got] == [b"survives", b"forever"]
    assert 1 <= got[0].props.get(m.MESSAGE_EXPIRY) <= 28
    assert m.MESSAGE_EXPIRY not in got[1].props


def test_retained_message_expiry(node, raw):
    """[MQTT-3.3.2-5] an expired retained message is no longer sent to new
    subscribers; a valid one carries the reduced interval [MQTT-3.3.2-6]."""
    pub = v5(node, raw, "mer-pub")
    pub.publish("mer/short", b"s", qos=1, retain=True, props=[(m.MESSAGE_EXPIRY, 1)])
    pub.publish("mer/long", b"l", qos=1, retain=True, props=[(m.MESSAGE_EXPIRY, 30)])
    time.sleep(2.2)
    sub = v5(node, raw, "mer-sub")
    sub.subscribe("mer/+", qos=1)
    p = sub.expect(m.PUBLISH)
    assert p.topic == "mer/long"
    assert 1 <= p.props.get(m.MESSAGE_EXPIRY) <= 28
    sub.expect_nothing(0.3, ptype=m.PUBLISH)


# ---- maximum packet size ---------------------------------------------------------

def test_client_maximum_packet_size(node, raw):
    """[MQTT-3.1.2-24] the server sends no packet larger than the client's
    Maximum Packet Size; [MQTT-3.1.2-25] the too-large message is skipped for
    that client only, which stays connected and gets later messages."""
    small = v5(node, raw, "mps-small", props=[(m.MAXIMUM_PACKET_SIZE, 100)], auto_ack=True)
    small.subscribe("mps/t", qos=1)
    big = v5(node, raw, "mps-big", auto_ack=True)
    big.subscribe("mps/t", qos=1)
    pub = v5(node, raw, "mps-pub")
    pub.publish("mps/t", b"x" * 200, qos=1)
    pub.publish("mps/t", b"small", qos=1)
    p = small.expect(m.PUBLISH)
    assert p.payload == b"small"
    assert len(p.raw) <= 100
    assert [q.payload for q in big.publishes(2)] == [b"x" * 200, b"small"]


def test_server_maximum_packet_size(broker, raw):
    """The server advertises mqtt.max_packet_size (3.2.2.3.6); a client packet
    above it [MQTT-3.2.2-15] gets DISCONNECT 0x95 (Packet too large)."""
    b = broker({"mqtt.max_packet_size": 1024})
    c = v5(b, raw, "mps-server")
    assert c.connack.props.get(m.MAXIMUM_PACKET_SIZE) == 1024
    c.publish("mps/ok", b"y" * 900)
    c.send(m.publish("mps/too", b"z" * 2000, version=5))
    c.expect_disconnect(m.RC_PACKET_TOO_LARGE)


# ---- pass-through properties -----------------------------------------------------

def test_user_properties_in_order(node, raw):
    """[MQTT-3.3.2-17] [MQTT-3.3.2-18] user properties reach subscribers
    unaltered and in order, duplicates included."""
    sub = v5(node, raw, "up-sub")
    sub.subscribe("up/t", qos=1)
    pub = v5(node, raw, "up-pub")
    ups = [("k", "1"), ("k", "2"), ("a", "x"), ("k", "3"), ("ünï", "cødé"), ("empty", "")]
    pub.publish("up/t", b"u", qos=1, props=[(m.USER_PROPERTY, kv) for kv in ups])
    assert sub.expect(m.PUBLISH).props.user() == ups


def test_payload_format_and_content_type(node, raw):
    """[MQTT-3.3.2-4] Payload Format Indicator and [MQTT-3.3.2-20] Content
    Type are forwarded unaltered."""
    sub = v5(node, raw, "pf-sub")
    sub.subscribe("pf/t", qos=0)
    pub = v5(node, raw, "pf-pub")
    pub.publish("pf/t", "héllo".encode(), props=[(m.PAYLOAD_FORMAT, 1),
                                                 (m.CONTENT_TYPE, "application/json")])
    pub.publish("pf/t", b"\xff\x00", props=[(m.PAYLOAD_FORMAT, 0)])
    a, b = sub.publishes(2)
    assert a.props.get(m.PAYLOAD_FORMAT) == 1
    assert a.props.get(m.CONTENT_TYPE) == "application/json"
    assert b.props.get(m.PAYLOAD_FORMAT, 0) == 0 and b.payload == b"\xff\x00"


def test_response_topic_and_correlation_data(node, raw):
    """[MQTT-3.3.2-15] Response Topic and [MQTT-3.3.2-16] Correlation Data are
    forwarded unaltered (request / response)."""
    responder = v5(node, raw, "rr-responder")
    responder.subscribe("rr/request", qos=1)
    requester = v5(node, raw, "rr-requester")
    requester.subscribe("rr/reply/1", qos=1)
    corr = bytes(range(256))
    requester.publish("rr/request", b"ping", qos=1,
                      props=[(m.RESPONSE_TOPIC, "rr/reply/1"), (m.CORRELATION_DATA, corr)])
    req = responder.expect(m.PUBLISH)
    assert req.props.get(m.RESPONSE_TOPIC) == "rr/reply/1"
    assert req.props.get(m.CORRELATION_DATA) == corr
    responder.send(m.puback(req.mid, version=5))
    responder.publish(req.props.get(m.RESPONSE_TOPIC), b"pong", qos=1,
                      props=[(m.CORRELATION_DATA, req.props.get(m.CORRELATION_DATA))])
    rep = requester.expect(m.PUBLISH)
    assert (rep.payload, rep.props.get(m.CORRELATION_DATA)) == (b"pong", corr)


# ---- subscription identifiers ----------------------------------------------------

def test_subscription_identifiers(node, raw):
    """3.8.2.1.2: the Subscription Identifier of the matching subscription is
    sent with the message [MQTT-3.3.4-3]; a re-SUBSCRIBE without one removes
    it; large values (varint) survive."""
    c = v5(node, raw, "sid", auto_ack=True)
    c.subscribe("sid/a", qos=1, sub_id=7)
    c.subscribe("sid/b", qos=1, sub_id=268435455)
    c.subscribe("sid/c", qos=1)
    pub = v5(node, raw, "sid-pub")
    for t in ("sid/a", "sid/b", "sid/c"):
        pub.publish(t, b"x", qos=1)
    got = {p.topic: p.props.all(m.SUBSCRIPTION_ID) for p in c.publishes(3)}
    assert got == {"sid/a": [7], "sid/b": [268435455], "sid/c": []}
    c.subscribe("sid/a", qos=1)  # replaces, no identifier now
    pub.publish("sid/a", b"y", qos=1)
    assert c.expect(m.PUBLISH).props.all(m.SUBSCRIPTION_ID) == []


def test_subscription_identifier_zero_is_protocol_error(node, raw):
    """3.8.2.1.2: a Subscription Identifier of 0 is a Protocol Error ->
    DISCONNECT 0x82."""
    c = v5(node, raw, "sid0")
    c.send(m.subscribe(1, [("sid0/t", 0)], props=[(m.SUBSCRIPTION_ID, 0)], version=5))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)


# ---- request problem / response information ---------------------------------------

def test_request_problem_information_0(node, raw):
    """[MQTT-3.1.2-29] with Request Problem Information 0 the server sends no
    Reason String or User Property on packets other than PUBLISH, CONNACK and
    DISCONNECT (here: SUBACK 0x8F, UNSUBACK 0x11, PUBCOMP 0x92)."""
    c = v5(node, raw, "rpi0", props=[(m.REQUEST_PROBLEM_INFO, 0)])
    un = c.unsubscribe("never/subscribed")
    assert un.codes == [m.RC_NO_SUBSCRIPTION_EXISTED]
    c.send(m.pubrel(99, version=5))
    comp = c.expect(m.PUBCOMP)
    ack = c.subscribe(("bad/#/filter", 0))
    assert ack.codes == [m.RC_TOPIC_FILTER_INVALID]
    for p in (ack, un, comp):
        assert m.REASON_STRING not in p.props and m.USER_PROPERTY not in p.props, p


@pytest.mark.parametrize("requested", [None, 0, 1])
def test_request_response_information(node, raw, requested):
    """3.1.2.11.6: Request Response Information 1 -> CONNACK carries Response
    Information; 0 or absent -> none [MQTT-3.1.2-28]."""
    props = [] if requested is None else [(m.REQUEST_RESPONSE_INFO, requested)]
    c = v5(node, raw, "rri-%s" % requested, props=props)
    if requested == 1:
        assert c.connack.props.get(m.RESPONSE_INFO)
    else:
        assert m.RESPONSE_INFO not in c.connack.props


# ---- maximum QoS ------------------------------------------------------------------

def test_max_qos_1_publish_qos2(broker, raw):
    """mqtt.max_qos = 1: CONNACK Maximum QoS 1 [MQTT-3.2.2-9]; a QoS 2 PUBLISH
    breaks [MQTT-3.2.2-11] -> DISCONNECT 0x9B (QoS not supported)."""
    b = broker({"mqtt.max_qos": 1})
    c = v5(b, raw, "mq1")
    assert c.connack.props.get(m.MAXIMUM_QOS) == 1
    c.publish("mq1/t", b"fine", qos=1)
    c.send(m.publish("mq1/t", b"too much", qos=2, mid=9, version=5))
    c.expect_disconnect(m.RC_QOS_NOT_SUPPORTED)


def test_max_qos_1_will_qos2_refused(broker, raw):
    """[MQTT-3.2.2-12] a Will QoS above the server's maximum: CONNACK 0x9B,
    then close."""
    b = broker({"mqtt.max_qos": 1})
    c = raw(b, version=5)
    c.send(m.connect("mq1-will", version=5, will_topic="w/t", will_payload=b"x", will_qos=2))
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == m.CONNACK and got[0].rc == m.RC_QOS_NOT_SUPPORTED
    assert not got[0].session_present  # [MQTT-3.2.2-6]
