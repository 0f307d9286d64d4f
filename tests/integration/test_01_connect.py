"""01 connect: CONNECT / CONNACK for MQTT 3.1, 3.1.1 and 5.0, first-packet and
second-CONNECT rules, the CONNECT timeout, keep alive, PINGREQ and takeover.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import time

import pytest

import keepalive as ka
import mqttraw as m


def test_connect_v31_mqisdp(node, raw):
    """MQTT 3.1 ("MQIsdp", level 3) is accepted: CONNACK is exactly 20 02 00 00,
    then the connection carries traffic."""
    c = raw(node, version=3)
    c.send(m.connect("v31client", version=3))
    p = c.recv()
    assert p.raw == b"\x20\x02\x00\x00"
    c.subscribe("v31/t", qos=1)
    c.publish("v31/t", b"hello", qos=1)
    got = c.expect(m.PUBLISH)
    assert (got.topic, got.payload, got.qos) == ("v31/t", b"hello", 1)


def test_connect_v311_connack_bytes(node, raw):
    """[MQTT-3.2.0-1] (3.1.1) the first packet from the server is CONNACK;
    [MQTT-3.2.2-1] (3.1.1) clean session -> session present 0: 20 02 00 00."""
    c = raw(node)
    c.send(m.connect("v311-client", version=4))
    assert c.recv().raw == b"\x20\x02\x00\x00"
    assert c.ping().raw == b"\xd0\x00"


def test_connect_v5_connack(node, raw):
    """[MQTT-3.2.0-1] CONNACK first; [MQTT-3.2.2-1] ack flags reserved bits 0;
    [MQTT-3.2.2-2] clean start -> session present 0, reason 0x00."""
    c = raw(node, version=5)
    c.send(m.connect("v5-client", version=5))
    p = c.recv()
    assert p.type == m.CONNACK and p.raw[0] == 0x20
    assert p.ack_flags == 0
    assert p.rc == 0
    assert m.ASSIGNED_CLIENT_ID not in p.props


@pytest.mark.parametrize("level", [6, 2])
def test_unsupported_protocol_level(node, raw, level):
    """[MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 (3.1.1
    format) or 0x84 (5.0 format), then the connection is closed
    [MQTT-3.2.2-7] [MQTT-3.2.2-6] (3.1.1: [MQTT-3.1.2-2])."""
    c = raw(node)
    c.send(m.connect("badlevel", version=level, proto_name="MQTT"))
    got = c.wait_closed()
    assert len(got) == 1, got
    r = got[0].raw
    assert r == b"\x20\x02\x00\x01" or (r[0] == 0x20 and r[2:4] == b"\x00\x84"), r


def test_empty_client_id_v311_clean_accepted(node, raw):
    """[MQTT-3.1.3-6] [MQTT-3.1.3-7] (3.1.1) a zero-byte client id with clean
    session 1 is accepted."""
    c = raw(node)
    c.send(m.connect("", version=4, clean=True))
    assert c.recv().raw == b"\x20\x02\x00\x00"
    assert c.ping().type == m.PINGRESP


def test_empty_client_id_v311_persistent_rejected(node, raw):
    """[MQTT-3.1.3-8] (3.1.1) zero-byte client id with clean session 0 ->
    CONNACK return code 0x02 (identifier rejected), then close [MQTT-3.2.2-5] (3.1.1)."""
    c = raw(node)
    c.send(m.connect("", version=4, clean=False))
    got = c.wait_closed()
    assert [p.raw for p in got] == [b"\x20\x02\x00\x02"]


def test_v5_assigned_client_identifier(node, raw):
    """[MQTT-3.2.2-16] [MQTT-3.1.3-6] [MQTT-3.1.3-7] an empty client id gets an
    Assigned Client Identifier, unique among sessions."""
    ids = []
    for _ in range(2):
        c = raw(node, version=5)
        p = c.connect("")
        aid = p.props.get(m.ASSIGNED_CLIENT_ID)
        assert aid, "no Assigned Client Identifier in %r" % p
        ids.append(aid)
    assert ids[0] != ids[1]
    node.wait_log("client_id=%s" % ids[0])


def test_connack_v5_advertises_limits(broker, raw):
    """CONNACK advertises the server's limits: Receive Maximum (3.2.2.3.3),
    Maximum Packet Size (3.2.2.3.6), Topic Alias Maximum (3.2.2.3.8), Retain
    Available, Wildcard / Subscription Identifier / Shared Subscription
    Available; no Maximum QoS when 2 is supported [MQTT-3.2.2-9]."""
    b = broker({"mqtt.receive_maximum": 77, "mqtt.max_packet_size": 65536,
                "mqtt.topic_alias_maximum": 9})
    c = raw(b, version=5)
    p = c.connect("limits")
    assert p.props.get(m.RECEIVE_MAXIMUM) == 77
    assert p.props.get(m.MAXIMUM_PACKET_SIZE) == 65536
    assert p.props.get(m.TOPIC_ALIAS_MAXIMUM) == 9
    assert p.props.get(m.RETAIN_AVAILABLE) == 1
    assert p.props.get(m.WILDCARD_SUB_AVAILABLE) == 1
    assert p.props.get(m.SUB_ID_AVAILABLE) == 1
    assert p.props.get(m.SHARED_SUB_AVAILABLE) == 1
    assert m.MAXIMUM_QOS not in p.props
    for pid in set(p.props.ids()):
        if pid != m.USER_PROPERTY:
            assert p.props.ids().count(pid) == 1, "property 0x%02x repeated" % pid


@pytest.mark.parametrize("max_qos", [0, 1])
def test_connack_v5_maximum_qos(broker, raw, max_qos):
    """[MQTT-3.2.2-9] a server not supporting QoS 2 (or 1) sends Maximum QoS."""
    b = broker({"mqtt.max_qos": max_qos})
    p = raw(b, version=5).connect("maxqos")
    assert p.props.get(m.MAXIMUM_QOS) == max_qos


def test_connack_v5_no_server_keepalive_by_default(node, raw):
    """[MQTT-3.2.2-22] without server keep alive configured the client's value
    is used and no Server Keep Alive is sent."""
    p = raw(node, version=5).connect("ska-none", keepalive=60)
    assert m.SERVER_KEEP_ALIVE not in p.props


def test_server_keepalive_advertised_and_enforced(broker, raw):
    """mqtt.server_keepalive > 0: CONNACK carries Server Keep Alive
    [MQTT-3.1.2-21] [MQTT-3.2.2-21] and the server enforces it (1.5x, pinned
    from both sides) [MQTT-3.1.2-22] with DISCONNECT 0x8D."""
    b = broker({"mqtt.server_keepalive": ka.KA})
    c = raw(b, version=5)
    t0 = time.monotonic()
    p = c.connect("ska", keepalive=60)
    assert p.props.get(m.SERVER_KEEP_ALIVE) == ka.KA
    c.expect_disconnect(m.RC_KEEP_ALIVE_TIMEOUT, timeout=ka.window()[1] + 2)
    ka.assert_in_window(t0)


@pytest.mark.parametrize("version", [4, 5])
def test_second_connect_is_protocol_error(node, raw, version):
    """[MQTT-3.1.0-2] a second CONNECT is a protocol error: v5 DISCONNECT 0x82
    then close; 3.1.1 [MQTT-3.1.0-2] close."""
    c = raw(node, version=version)
    c.connect("twice-%d" % version)
    c.send(m.connect("twice-%d" % version, version=version))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)
    node.wait_log("client_id=twice-%d" % version, count=2)


@pytest.mark.parametrize("first", ["pingreq", "publish", "subscribe", "disconnect"])
def test_packet_before_connect_closes(node, raw, first):
    """[MQTT-3.1.0-1] the first packet must be CONNECT: anything else closes
    the connection without a CONNACK."""
    pkt = {"pingreq": m.pingreq(), "publish": m.publish("a/b", b"x"),
           "subscribe": m.subscribe(1, [("a/b", 0)]), "disconnect": m.disconnect()}[first]
    c = raw(node)
    c.send(pkt)
    assert c.wait_closed() == []


@pytest.mark.parametrize("sent", [b"", b"\x10\x0c\x00"], ids=["silent", "partial-connect"])
def test_connect_timeout(broker, raw, sent):
    """mqtt.connect_timeout: a connection that never completes a CONNECT is
    closed after the timeout (silent, or a partial CONNECT)."""
    b = broker({"mqtt.connect_timeout": 1})
    c = raw(b)
    if sent:
        c.send(sent)
    t0 = time.monotonic()
    assert c.wait_closed(timeout=5) == []
    assert time.monotonic() - t0 >= 0.5
    ok = raw(b)  # the broker still accepts
    ok.connect("after-timeout")


@pytest.mark.parametrize("version", [4, 5])
def test_keepalive_timeout(node, raw, version):
    """(3.1.1) [MQTT-3.1.2-24] / (5.0) [MQTT-3.1.2-22]: no packet within 1.5x
    keep alive -> the server closes (not before 1.5x, and soon after it);
    v5 sends DISCONNECT 0x8D first."""
    c = raw(node, version=version)
    t0 = time.monotonic()
    c.connect("ka-%d" % version, keepalive=ka.KA)
    c.expect_disconnect(m.RC_KEEP_ALIVE_TIMEOUT, timeout=ka.window()[1] + 2)
    ka.assert_in_window(t0)


@pytest.mark.parametrize("version", [4, 5])
def test_pingreq_pingresp_keeps_alive(node, raw, version):
    """[MQTT-3.12.4-1] PINGREQ -> PINGRESP (d0 00); pings 1.2x keep alive
    apart (longer than the keep alive, shorter than 1.5x) keep the
    connection open: the broker must not time out at 1.0x."""
    c = raw(node, version=version)
    last = time.monotonic()
    c.connect("ping-%d" % version, keepalive=ka.KA)
    for _ in range(2):
        time.sleep(max(0.0, last + 1.2 * ka.KA - time.monotonic()))
        gap = time.monotonic() - last
        assert gap < 1.5 * ka.KA - 0.3, "test delayed: %.2fs between pings" % gap
        last = time.monotonic()
        try:
            assert c.ping().raw == b"\xd0\x00"
        except m.Closed:
            raise AssertionError("closed %.2fs after the previous packet, within 1.5x keep "
                                 "alive (%ds) [MQTT-3.1.2-22]" % (gap, ka.KA))
    assert c.is_open()


@pytest.mark.parametrize("version", [4, 5])
def test_session_takeover(node, raw, version):
    """(3.1.1) [MQTT-3.1.4-2] / (5.0) [MQTT-3.1.4-3]: a second connection with
    the same client id closes the first; v5 gets DISCONNECT 0x8E first."""
    cid = "takeover-%d" % version
    a = raw(node, version=version)
    a.connect(cid)
    b = raw(node, version=version)
    b.connect(cid)
    a.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    assert b.ping().type == m.PINGRESP
    b.subscribe("to/x", qos=1)
    b.publish("to/x", b"still here", qos=1)
    assert b.expect(m.PUBLISH).payload == b"still here"


def test_connect_and_disconnect_are_logged(node, raw):
    """One log line per connect and per disconnect, naming client id and address."""
    c = raw(node, version=5)
    c.connect("logged-client")
    lines = node.wait_log("client_id=logged-client")
    assert any("127.0.0.1" in ln for ln in lines), lines
    c.disconnect()
    node.wait_log("client_id=logged-client", count=2)
