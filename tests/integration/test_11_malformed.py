"""11 malformed and protocol-violating input, one test per violation, raw
sockets. MQTT 5 expects DISCONNECT with the reason code the specification asks
for and then TCP close (a violation inside CONNECT: CONNACK with the reason
code); MQTT 3.1.1 expects a plain close. Each time two well-behaved clients
connected before keep working, and the log names the bad client.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import random
import socket

import pytest

import mqttraw as m
from mqttraw import T

CONF = {"mqtt.max_packet_size": 4096, "mqtt.topic_alias_maximum": 10}
M, P = m.RC_MALFORMED, m.RC_PROTOCOL_ERROR


def props_raw(*chunks):
    """Already-encoded property bytes (for ids/values the encoder refuses)."""
    return b"".join(chunks)


# name -> (versions, builder(version) -> bytes, v5 reason code(s))
CASES = {
    # fixed header
    "remaining_length_5_bytes": ((4, 5), lambda v: b"\x30\xff\xff\xff\xff\x01", M),
    "reserved_packet_type_0": ((4, 5), lambda v: b"\x00\x00", (M, P)),
    "subscribe_flags_0": ((4, 5), lambda v: m.subscribe(1, [("a/b", 0)], version=v, flags=0), M),
    "unsubscribe_flags_0": ((4, 5), lambda v: m.unsubscribe(1, ["a/b"], version=v, flags=0), M),
    "pubrel_flags_0": ((4, 5), lambda v: m.pubrel(1, version=v, flags=0), M),
    "pingreq_flags_1": ((4, 5), lambda v: b"\xc1\x00", M),
    "disconnect_flags_1": ((4, 5), lambda v: b"\xe1\x00", M),
    "puback_truncated": ((4, 5), lambda v: b"\x40\x01\x00", M),
    # strings
    "topic_invalid_utf8": ((4, 5), lambda v: m.publish(b"a/\xff", b"x", version=v), M),
    "topic_overlong_utf8": ((4, 5), lambda v: m.publish(b"a/\xc0\xaf", b"x", version=v), M),
    "topic_surrogate": ((4, 5), lambda v: m.publish(b"a/\xed\xa0\x80", b"x", version=v), M),
    "topic_nul": ((4, 5), lambda v: m.publish(b"a\x00b", b"x", version=v), M),
    "filter_invalid_utf8": ((4, 5), lambda v: m.subscribe(1, [(b"a/\xfe", 0)], version=v), M),
    "string_beyond_packet": ((4, 5), lambda v: m.fixed(0x30, b"\x00\x64a/b"), M),
    # PUBLISH
    "publish_wildcard_plus": ((4, 5), lambda v: m.publish("a/+/c", b"x", version=v), m.RC_TOPIC_NAME_INVALID),
    "publish_wildcard_hash": ((4, 5), lambda v: m.publish("a/#", b"x", version=v), m.RC_TOPIC_NAME_INVALID),
    "publish_qos3": ((4, 5), lambda v: m.publish("a/b", b"x", flags=0x06, mid=1, version=v), M),
    "publish_dup_qos0": ((4, 5), lambda v: m.publish("a/b", b"x", flags=0x08, version=v), (M, P)),
    "publish_packet_id_0": ((4, 5), lambda v: m.publish("a/b", b"x", qos=1, mid=0, version=v), P),
    "publish_empty_topic_v311": ((4,), lambda v: m.publish("", b"x", version=v), P),
    "publish_oversize": ((4, 5), lambda v: m.publish("a/b", b"z" * 5000, version=v), m.RC_PACKET_TOO_LARGE),
    "publish_oversize_header_only": ((4, 5), lambda v: b"\x30" + m.varint(100000) + m.mstr("a/b"),
                                     m.RC_PACKET_TOO_LARGE),
    # SUBSCRIBE / UNSUBSCRIBE
    "subscribe_packet_id_0": ((4, 5), lambda v: m.subscribe(0, [("a/b", 0)], version=v), P),
    "unsubscribe_packet_id_0": ((4, 5), lambda v: m.unsubscribe(0, ["a/b"], version=v), P),
    "subscribe_no_topics": ((4, 5), lambda v: m.subscribe(1, [], version=v), P),
    "unsubscribe_no_topics": ((4, 5), lambda v: m.unsubscribe(1, [], version=v), P),
    "subscribe_qos3": ((4, 5), lambda v: m.subscribe(1, [("a/b", 3)], version=v), P),
    "subscribe_reserved_option_bits": ((4, 5), lambda v: m.subscribe(1, [("a/b", 0xC1)], version=v), M),
    "subscribe_retain_handling_3": ((5,), lambda v: m.subscribe(1, [("a/b", 0x30)], version=v), P),
    # properties (v5)
    "property_unknown_id": ((5,), lambda v: m.publish("a/b", b"x", props=props_raw(b"\x05\x01"), version=5), M),
    "property_wrong_packet": ((5,), lambda v: m.publish("a/b", b"x", props=[(m.SESSION_EXPIRY, 5)], version=5), M),
    "property_duplicated": ((5,), lambda v: m.publish("a/b", b"x", props=[(m.PAYLOAD_FORMAT, 0),
                                                                          (m.PAYLOAD_FORMAT, 0)], version=5), P),
    "property_duplicated_content_type": ((5,), lambda v: m.publish(
        "a/b", b"x", props=[(m.CONTENT_TYPE, "a"), (m.CONTENT_TYPE, "b")], version=5), P),
    "property_length_overrun": ((5,), lambda v: m.fixed(0x30, m.mstr("a/b") + b"\x32\x01\x00"), M),
    "property_bad_utf8": ((5,), lambda v: m.publish("a/b", b"x", props=props_raw(b"\x03\x00\x01\xff"), version=5), M),
    "topic_alias_0": ((5,), lambda v: m.publish("a/b", b"x", props=[(m.TOPIC_ALIAS, 0)], version=5),
                      m.RC_TOPIC_ALIAS_INVALID),
    "topic_alias_above_max": ((5,), lambda v: m.publish("a/b", b"x", props=[(m.TOPIC_ALIAS, 11)], version=5),
                              m.RC_TOPIC_ALIAS_INVALID),
    "publish_subscription_identifier": ((5,), lambda v: m.publish(
        "a/b", b"x", props=[(m.SUBSCRIPTION_ID, 3)], version=5), (M, P)),
    "auth_without_method": ((5,), lambda v: m.fixed(0xF0, b"\x18\x00"), P),
    # packets a client must not send
    "client_sends_suback": ((4, 5), lambda v: m.fixed(0x90, b"\x00\x01" + (b"\x00" if v == 5 else b"") + b"\x00"),
                            (M, P)),
    "client_sends_connack": ((4, 5), lambda v: b"\x20\x02\x00\x00", (M, P)),
    "client_sends_pingresp": ((4, 5), lambda v: b"\xd0\x00", (M, P)),
    "reserved_packet_type_15_v311": ((4,), lambda v: b"\xf0\x00", M),
}


def params():
    out = []
    for name, (versions, _, _) in CASES.items():
        for v in versions:
            out.append(pytest.param(name, v, id="%s-v%d" % (name, v)))
    return out


class Bystanders:
    """Two well-behaved clients connected before the bad one (with several workers
    are likely to hold one each); .check() proves both still work."""

    def __init__(self, b, raw):
        self.sub = raw(b, version=5, auto_ack=True)
        self.sub.connect("good-sub")
        self.sub.subscribe("good/#", qos=1)
        self.pub = raw(b, version=4)
        self.pub.connect("good-pub")
        self.n = 0

    def check(self):
        self.n += 1
        payload = b"alive-%d" % self.n
        self.pub.publish("good/echo", payload, qos=1)
        p = self.sub.expect(m.PUBLISH, timeout=5)
        assert p.payload == payload
        assert self.pub.ping().type == m.PINGRESP
        assert self.sub.ping().type == m.PINGRESP


def expect_violation(c, version, rc, timeout=5.0):
    """v5: DISCONNECT with rc (or one of rc) then close; v3: close only."""
    got = [p for p in c.wait_closed(timeout) if p.type != m.PUBLISH]
    if version == 5:
        allowed = rc if isinstance(rc, tuple) else (rc,)
        assert got and got[-1].type == m.DISCONNECT, "expected DISCONNECT %r, got %r" % (allowed, got)
        assert got[-1].rc in allowed, "DISCONNECT 0x%02x, expected %s" % (
            got[-1].rc, "/".join("0x%02x" % r for r in allowed))
        assert m.SESSION_EXPIRY not in got[-1].props  # [MQTT-3.14.2-2]
    else:
        assert got == [], "3.1.1: expected a plain close, got %r" % got


@pytest.mark.parametrize("name,version", params())
def test_violation_after_connect(broker, raw, name, version):
    """One violation after a successful CONNECT: reserved flag bits
    [MQTT-2.1.3-1] ((3.1.1) [MQTT-2.2.2-1] [MQTT-2.2.2-2]); remaining length
    of at most 4 bytes (1.5.5, 2.1.4); ill-formed UTF-8, surrogates, U+0000
    [MQTT-1.5.4-1] [MQTT-1.5.4-2] ((3.1.1) [MQTT-1.5.3-1] [MQTT-1.5.3-2]);
    wildcards in a topic name [MQTT-3.3.2-2] -> 0x90; QoS 3 [MQTT-3.3.1-4];
    DUP on QoS 0 [MQTT-3.3.1-2]; packet id 0 [MQTT-2.2.1-3] ((3.1.1)
    [MQTT-2.3.1-1]); empty SUBSCRIBE/UNSUBSCRIBE [MQTT-3.8.3-2]
    [MQTT-3.10.3-2]; reserved subscription option bits [MQTT-3.8.3-5];
    unknown, misplaced or duplicated properties (2.2.2.2) -> 0x81/0x82;
    Subscription Identifier from a client [MQTT-3.3.4-6]; topic alias 0 or
    above the maximum (3.3.2.3.4) -> 0x94; oversize -> 0x95 (3.2.2.3.6).
    The connection alone is closed [MQTT-4.13.1-1]; others are untouched."""
    b = broker(CONF)
    good = Bystanders(b, raw)
    versions, build, rc = CASES[name]
    cid = "bad-%s" % name.replace("_", "-")[:40]
    c = raw(b, version=version)
    c.connect(cid)
    c.send(build(version))
    expect_violation(c, version, rc)
    good.check()
    b.wait_log("client_id=%s" % cid, count=2)


# ---- violations inside CONNECT: v5 CONNACK with the reason code, v3 close ----

CONNECT_CASES = {
    "reserved_flag": ((4, 5), lambda v: m.connect("cbad", version=v, flags=0x03), M),
    "will_qos_3": ((4, 5), lambda v: m.connect("cbad", version=v, will_topic="w/t", will_payload=b"x",
                                                flags=0x02 | 0x04 | 0x18), M),
    "will_qos_without_will": ((4, 5), lambda v: m.connect("cbad", version=v, flags=0x02 | 0x08), M),
    "will_retain_without_will": ((4, 5), lambda v: m.connect("cbad", version=v, flags=0x02 | 0x20), M),
    "password_without_username_v311": ((4,), lambda v: m.connect("cbad", version=4, password="p"), M),
    "client_id_invalid_utf8": ((4, 5), lambda v: m.connect(b"bad\xff", version=v), (M, m.RC_CLIENT_ID_NOT_VALID)),
    "will_topic_wildcard": ((4, 5), lambda v: m.connect("cbad", version=v, will_topic="w/#",
                                                        will_payload=b"x"), (m.RC_TOPIC_NAME_INVALID, P)),
    "connect_unknown_property": ((5,), lambda v: m.connect("cbad", version=5, props=props_raw(b"\x05\x01")), M),
    "connect_duplicate_property": ((5,), lambda v: m.connect(
        "cbad", version=5, props=[(m.SESSION_EXPIRY, 1), (m.SESSION_EXPIRY, 2)]), P),
    "connect_receive_maximum_0": ((5,), lambda v: m.connect("cbad", version=5, props=[(m.RECEIVE_MAXIMUM, 0)]), P),
    "connect_max_packet_size_0": ((5,), lambda v: m.connect(
        "cbad", version=5, props=[(m.MAXIMUM_PACKET_SIZE, 0)]), P),
    "connect_request_problem_info_2": ((5,), lambda v: m.connect(
        "cbad", version=5, props=[(m.REQUEST_PROBLEM_INFO, 2)]), P),
    "connect_oversize": ((4, 5), lambda v: m.connect("cbad", version=v, username="u" * 5000),
                         m.RC_PACKET_TOO_LARGE),
    "connect_truncated_client_id": ((4, 5), lambda v: m.fixed(0x10, m.mstr("MQTT") + bytes([v, 2]) + m.u16(60)
                                                              + (b"\x00" if v == 5 else b"") + m.u16(10) + b"abcd"), M),
}


def connect_params():
    out = []
    for name, (versions, _, _) in CONNECT_CASES.items():
        for v in versions:
            out.append(pytest.param(name, v, id="%s-v%d" % (name, v)))
    return out


@pytest.mark.parametrize("name,version", connect_params())
def test_violation_in_connect(broker, raw, name, version):
    """A malformed CONNECT [MQTT-3.1.4-1]: reserved flag [MQTT-3.1.2-3]; Will
    QoS 3 or Will QoS / Retain without Will [MQTT-3.1.2-11] [MQTT-3.1.2-13]
    ((3.1.1) [MQTT-3.1.2-13] [MQTT-3.1.2-15]); (3.1.1) password without user
    name [MQTT-3.1.2-22]; ill-formed client id [MQTT-1.5.4-1]; invalid or
    repeated properties and Receive Maximum / Maximum Packet Size 0
    (3.1.2.11); oversize. v5: CONNACK with the reason code, session present 0
    [MQTT-3.2.2-6], then close [MQTT-3.2.2-7]; 3.1.1: close without CONNACK."""
    b = broker(CONF)
    good = Bystanders(b, raw)
    versions, build, rc = CONNECT_CASES[name]
    c = raw(b, version=version)
    c.send(build(version))
    got = c.wait_closed()
    if version == 5:
        allowed = rc if isinstance(rc, tuple) else (rc,)
        assert len(got) == 1 and got[0].type == m.CONNACK, got
        assert got[0].rc in allowed, "CONNACK 0x%02x, expected %r" % (got[0].rc, allowed)
        assert not got[0].session_present
    else:
        assert got == [], "3.1.1: expected a plain close, got %r" % got
    good.check()


def test_connect_bad_protocol_name(broker, raw):
    """[MQTT-3.1.2-1] a protocol name other than "MQTT" (or "MQIsdp" for 3.1):
    no accepting CONNACK, the connection is closed."""
    b = broker(CONF)
    good = Bystanders(b, raw)
    c = raw(b)
    c.send(m.connect("cbad", version=4, proto_name="MQTX"))
    got = c.wait_closed()
    assert all(p.type == m.CONNACK and p.rc != 0 for p in got), got
    good.check()


# ---- byte streams ----

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_garbage_stream_before_connect(broker, raw, seed):
    """A stream of random bytes instead of CONNECT [MQTT-3.1.0-1]: closed, no
    CONNACK; the broker carries on."""
    b = broker(CONF)
    good = Bystanders(b, raw)
    rnd = random.Random(seed)
    data = bytes([0xFF]) + bytes(rnd.getrandbits(8) for _ in range(4095))
    c = raw(b)
    try:
        c.send(data)
    except m.Closed:
        pass
    assert all(p.type != m.CONNACK or p.rc != 0 for p in c.wait_closed())
    good.check()


def test_http_request_to_mqtt_port(broker, raw):
    """An HTTP request on the MQTT port is not a CONNECT: closed."""
    b = broker(CONF)
    good = Bystanders(b, raw)
    c = raw(b)
    c.send(b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    c.wait_closed()
    good.check()


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_bytes_after_connect(broker, raw, version, seed):
    """Random bytes after a good CONNECT end in a close (v5: any DISCONNECT
    carries an error code >= 0x80 [MQTT-4.13.1-1]); nothing crashes, others
    keep working, the log names the client."""
    b = broker(CONF)
    good = Bystanders(b, raw)
    rnd = random.Random(seed * 10 + version)
    cid = "rnd-%d-%d" % (version, seed)
    c = raw(b, version=version)
    c.connect(cid)
    try:
        for _ in range(8):
            c.send(bytes(rnd.getrandbits(8) for _ in range(8192)))
            if not c.is_open(0.2):
                break
        got = c.wait_closed(timeout=5)
    except m.Closed:
        got = []
    for p in got:
        if p.type == m.DISCONNECT:
            assert p.rc >= 0x80
    good.check()
    b.wait_log("client_id=%s" % cid, count=2)


def test_half_open_connections(broker, raw):
    """Many connections that never send anything (and never read) do not
    disturb other clients, and are closed by mqtt.connect_timeout."""
    b = broker(dict(CONF, **{"mqtt.connect_timeout": 1}))
    good = Bystanders(b, raw)
    idle = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=T(5))
        idle.append(s)
    good.check()
    for s in idle[:5]:
        s.settimeout(T(5))
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
    for s in idle:
        s.close()
    good.check()


def test_half_open_after_connect(broker, raw):
    """A client that connects, subscribes, then never reads nor sends, with
    keep alive 0, while messages for it arrive: other clients are not held up
    and the broker stays responsive."""
    b = broker(CONF)
    good = Bystanders(b, raw)
    stuck = raw(b, version=5, rcvbuf=2048)
    stuck.connect("stuck-client", keepalive=0)
    stuck.subscribe("good/#", qos=1)
    for _ in range(50):
        good.check()
