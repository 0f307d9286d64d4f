"""14 PROXY protocol on a listener (listeners.tcp.<name>.proxy_protocol = true):
the header HAProxy sends with `send-proxy` (v1 text) or `send-proxy-v2` (v2
binary) comes first; the real client address is what the broker logs; a
connection without a valid header is refused and nothing else is affected."""

import socket
import struct

import mqttraw as m

PROXY_ON = {"listeners.tcp.default.proxy_protocol": "true"}

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="127.0.0.1", dport=1883, tlv=b""):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    body = addrs + tlv
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def v2_local():
    return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)


def test_v1_header_gives_the_real_address(broker, raw):
    b = broker(PROXY_ON)
    c = raw(b, version=4)
    c.send(b"PROXY TCP4 10.9.8.7 10.0.0.1 40001 1883\r\n")
    c.connect("via-v1")
    b.wait_log("client connected client_id=via-v1 addr=10.9.8.7:40001")


def test_v2_header_with_tlv_split_over_writes(broker, raw):
    """The header may arrive in pieces, and TLVs are skipped."""
    b = broker(PROXY_ON)
    c = raw(b, version=5)
    hdr = v2_header("192.0.2.44", 50123, tlv=bytes([0x04, 0x00, 0x03]) + b"abc")
    c.send(hdr[:7])
    c.send(hdr[7:20])
    c.send(hdr[20:] + m.connect("via-v2", version=5))
    p = c.recv()
    assert p.type == m.CONNACK and p.rc == 0
    b.wait_log("client connected client_id=via-v2 addr=192.0.2.44:50123")
    # and MQTT works on it
    c.subscribe("px/t", qos=1)
    c.publish("px/t", b"hello", qos=1)
    assert c.expect(m.PUBLISH).payload == b"hello"


def test_v2_local_keeps_the_socket_address(broker, raw):
    """A LOCAL command (HAProxy's own health check) carries no address."""
    b = broker(PROXY_ON)
    c = raw(b, version=4)
    c.send(v2_local())
    c.connect("local-cmd")
    b.wait_log("client connected client_id=local-cmd addr=127.0.0.1:")


def test_missing_header_is_refused_others_unaffected(broker, raw):
    b = broker(PROXY_ON)
    good = raw(b, version=4)
    good.send(b"PROXY TCP4 10.1.1.1 10.0.0.1 1000 1883\r\n")
    good.connect("good-one")
    good.subscribe("px/keep", qos=0)
    bad = raw(b, version=4)
    bad.send(m.connect("no-header", version=4))
    assert bad.wait_closed() == []
    b.wait_log("no valid PROXY protocol header")
    good.publish("px/keep", b"still here")
    assert good.expect(m.PUBLISH).payload == b"still here"


def test_off_by_default_header_is_not_mqtt(node, raw):
    """Without the option a PROXY header is just bytes that are not CONNECT
    [MQTT-3.1.0-1]: the connection is closed."""
    c = raw(node, version=4)
    c.send(b"PROXY TCP4 10.9.8.7 10.0.0.1 40001 1883\r\n")
    assert c.wait_closed() == []
