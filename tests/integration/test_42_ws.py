"""42 WebSocket listeners (listeners.ws.<name>.*, listeners.wss.<name>.*):
paho-mqtt over transport="websockets" with MQTT 3.1.1, 5.0 and 3.1, with and
without TLS (wss, and mutual TLS with verify = peer), publish/subscribe
between ws and tcp clients, payloads larger than 200 KB, and a raw
WebSocket client for what paho never does: fragmented frames with a ping
between the fragments, several MQTT packets in one frame, a close frame, a
text frame (close 1003), an unmasked frame (close 1002), a wrong path (404)
and a plain HTTP request (426); each refusal is logged while another client
keeps working. Also the PROXY protocol v2 header before the HTTP request, and
SIGHUP reloading the certificates of a wss listener.
"""

import base64
import os
import signal
import socket
import ssl
import struct

import paho.mqtt.client as mqtt
import pytest

import mqttraw
from certs import SAN_LOCAL, CertDir, listener_conf, make_leaf, paho_tls_set, served_cn
from conftest import free_port
from helpers import QueuedPaho
from mqttraw import T
from test_40_tls import _v2_header


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    c = CertDir(tmp_path_factory.mktemp("wscerts"))
    c.ca("ca")
    c.leaf("server", "ca", "localhost", san=SAN_LOCAL, eku="serverAuth")
    c.leaf("client", "ca", "alice", eku="clientAuth")
    return c


def start_ws(broker, extra=None, **more):
    port = free_port()
    conf = {"listeners.ws.default.bind": "127.0.0.1:%d" % port}
    for k, v in more.items():
        conf["listeners.ws.default." + k] = v
    conf.update(extra or {})
    b = broker(conf)
    b.wait_listening(port)
    b.ws_port = port
    return b


def wss_conf(certs, port, **more):
    return listener_conf("wss", certs, port, **more)


def start_wss(broker, certs, extra=None, **more):
    port = free_port()
    conf = wss_conf(certs, port, **more)
    conf.update(extra or {})
    b = broker(conf)
    b.wait_listening(port)
    b.wss_port = port
    return b


class WsPaho(QueuedPaho):
    """A paho 1.6 client over WebSocket (optionally TLS) with a message queue."""

    what = "paho over WebSocket"

    def __init__(self, port, client_id, protocol=mqtt.MQTTv311, certs=None, client=None,
                 path="/mqtt"):
        self.c = mqtt.Client(client_id=client_id, protocol=protocol, transport="websockets")
        self.c.ws_set_options(path=path)
        if certs:
            paho_tls_set(self.c, certs, client)
        self._start(port)
        assert getattr(self.rc, "value", self.rc) == 0, self.rc


def roundtrip(ws, raw_client, tag):
    """ws subscriber <- tcp publisher, then tcp subscriber <- ws publisher."""
    ws.subscribe("ws/%s/down" % tag)
    raw_client.publish("ws/%s/down" % tag, b"to-ws-" + tag.encode(), qos=1)
    assert ws.get().payload == b"to-ws-" + tag.encode()
    raw_client.subscribe("ws/%s/up" % tag, qos=1)
    ws.publish("ws/%s/up" % tag, b"from-ws-" + tag.encode())
    p = raw_client.expect(mqttraw.PUBLISH)
    assert p.payload == b"from-ws-" + tag.encode()


@pytest.mark.parametrize("protocol,name", [(mqtt.MQTTv311, "v311"), (mqtt.MQTTv5, "v5"),
                                           (mqtt.MQTTv31, "v31")])
def test_paho_over_ws_with_tcp_clients(broker, raw, protocol, name):
    b = start_ws(broker)
    ws = WsPaho(b.ws_port, "ws-" + name, protocol=protocol)
    try:
        c = raw(b, version=4, auto_ack=True)
        c.connect("tcp-" + name)
        roundtrip(ws, c, name)
    finally:
        ws.close()


def test_large_payloads_both_ways(broker, raw):
    """250 KB messages: many TCP segments and, from the broker, several
    frames of at most 64 KiB; the MQTT stream does not care where frames end."""
    b = start_ws(broker)
    big = os.urandom(250 * 1024)
    ws = WsPaho(b.ws_port, "ws-big")
    try:
        c = raw(b, version=4, auto_ack=True)
        c.connect("tcp-big")
        ws.subscribe("big/down")
        c.publish("big/down", big, qos=1)
        assert ws.get(20).payload == big
        c.subscribe("big/up", qos=1)
        ws.publish("big/up", big)
        assert c.expect(mqttraw.PUBLISH, timeout=T(20)).payload == big
    finally:
        ws.close()


# ---- a raw WebSocket client ----

class RawWs:
    def __init__(self, port, path="/mqtt", proto="mqtt", sock=None, prefix=b"",
                 extra_headers=""):
        self.s = sock or socket.create_connection(("127.0.0.1", port), timeout=T(10))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               % (path, key))
        if proto:
            req += "Sec-WebSocket-Protocol: %s\r\n" % proto
        req += extra_headers + "\r\n"
        self.s.sendall(prefix + req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.response = head.decode("latin-1")
        self.status = int(self.response.split(" ")[1]) if self.response else 0

    def send_frame(self, op, payload, fin=True, mask=True):
        b0 = (0x80 if fin else 0) | op
        n = len(payload)
        mb = 0x80 if mask else 0
        if n < 126:
            hdr = bytes([b0, mb | n])
        elif n < 65536:
            hdr = bytes([b0, mb | 126]) + struct.pack("!H", n)
        else:
            hdr = bytes([b0, mb | 127]) + struct.pack("!Q", n)
        if mask:
            m = os.urandom(4)
            key = (m * (n // 4 + 1))[:n]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
            hdr += m
        self.s.sendall(hdr + payload)

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise mqttraw.Closed("closed")
            self.buf += d

    def read_frame(self):
        """(fin, opcode, payload) of the next frame from the server (unmasked)."""
        self._need(2)
        fin, op, n = self.buf[0] >> 7, self.buf[0] & 0x0F, self.buf[1] & 0x7F
        assert not self.buf[1] & 0x80, "server frames are never masked"
        pos = 2
        if n == 126:
            self._need(4)
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(pos + n)
        payload, self.buf = self.buf[pos:pos + n], self.buf[pos + n:]
        return fin, op, payload

    def read_mqtt(self, stream=b""):
        """The next whole MQTT packet from binary frames (any boundaries)."""
        while True:
            if len(stream) >= 2:
                try:
                    rem, pos = mqttraw.read_varint(stream, 1)
                except IndexError:
                    rem = None
                if rem is not None and len(stream) >= pos + rem:
                    return mqttraw.decode(stream[:pos + rem]), stream[pos + rem:]
            fin, op, payload = self.read_frame()
            assert op in (0, 2), "unexpected opcode %d" % op
            stream += payload

    def close(self):
        self.s.close()


def test_raw_fragments_ping_and_packets_in_one_frame(broker):
    b = start_ws(broker)
    w = RawWs(b.ws_port)
    assert w.status == 101, w.response
    assert "Sec-WebSocket-Protocol: mqtt" in w.response
    conn = mqttraw.connect("raw-ws")
    # CONNECT in two fragments, a ping between them (control frames may be
    # interleaved with a fragmented message, RFC 6455 5.4)
    w.send_frame(2, conn[:5], fin=False)
    w.send_frame(9, b"hello")
    w.send_frame(0, conn[5:], fin=True)
    fin, op, payload = w.read_frame()
    assert (op, payload) == (0xA, b"hello")  # the pong first
    p, rest = w.read_mqtt()
    assert p.type == mqttraw.CONNACK
    # SUBSCRIBE and PUBLISH in one frame; the PUBLISH comes back to us
    big = os.urandom(210 * 1024)
    w.send_frame(2, mqttraw.subscribe(1, [("frag/t", 0)]))
    p, rest = w.read_mqtt(rest)
    assert p.type == mqttraw.SUBACK
    pub = mqttraw.publish("frag/t", big, qos=0)
    # the 210 KB PUBLISH in 7 fragments of a binary message
    step = len(pub) // 7 + 1
    parts = [pub[i:i + step] for i in range(0, len(pub), step)]
    for i, part in enumerate(parts):
        w.send_frame(2 if i == 0 else 0, part, fin=i == len(parts) - 1)
    p, rest = w.read_mqtt(rest)
    assert p.type == mqttraw.PUBLISH and p.payload == big
    # two packets in one frame: PINGREQ twice
    w.send_frame(2, mqttraw.pingreq() + mqttraw.pingreq())
    p, rest = w.read_mqtt(rest)
    assert p.type == mqttraw.PINGRESP
    p, rest = w.read_mqtt(rest)
    assert p.type == mqttraw.PINGRESP
    # the close handshake: our close frame is answered with one
    w.send_frame(8, struct.pack("!H", 1000))
    fin, op, payload = w.read_frame()
    assert op == 8 and payload[:2] == struct.pack("!H", 1000)
    w.s.settimeout(T(5))
    assert w.s.recv(100) == b""
    w.close()
    b.wait_log("client disconnected client_id=raw-ws")


def _worker_ok(ws, tag):
    ws.publish("alive/" + tag, tag.encode())
    assert ws.get().payload == tag.encode()


def test_refusals_are_logged_and_disturb_nothing(broker):
    b = start_ws(broker)
    ok = WsPaho(b.ws_port, "bystander")
    try:
        ok.subscribe("alive/#")
        # a wrong path: 404
        w = RawWs(b.ws_port, path="/nope")
        assert w.status == 404, w.response
        w.close()
        b.wait_log('WebSocket upgrade refused addr=127.0.0.1')
        line = b.wait_log('status=404')[0]
        assert 'listener=ws.default' in line and 'target="/nope"' in line, line
        _worker_ok(ok, "a")
        # no upgrade at all: 426
        s = socket.create_connection(("127.0.0.1", b.ws_port), timeout=T(10))
        s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = s.recv(4096)
        assert resp.startswith(b"HTTP/1.1 426 "), resp
        s.close()
        b.wait_log('status=426')
        _worker_ok(ok, "b")
        # an unknown subprotocol only: 400
        w = RawWs(b.ws_port, proto="chat")
        assert w.status == 400
        w.close()
        b.wait_log('reason="no supported subprotocol')
        # a text frame: close 1003 (after CONNECT: the client's line names it)
        w = RawWs(b.ws_port)
        w.send_frame(2, mqttraw.connect("texter"))
        p, _ = w.read_mqtt()
        assert p.type == mqttraw.CONNACK
        w.send_frame(1, b"hello")
        fin, op, payload = w.read_frame()
        assert op == 8 and payload[:2] == struct.pack("!H", 1003), payload
        w.close()
        line = b.wait_log("client disconnected client_id=texter")[0]
        assert "text frame" in line, line
        _worker_ok(ok, "c")
        # an unmasked frame before CONNECT: close 1002, a notice line
        w = RawWs(b.ws_port)
        w.send_frame(2, mqttraw.connect("unmasked"), mask=False)
        fin, op, payload = w.read_frame()
        assert op == 8 and payload[:2] == struct.pack("!H", 1002), payload
        w.close()
        line = b.wait_log("WebSocket connection closed addr=")[0]
        assert "protocol error" in line and "listener=ws.default" in line, line
        _worker_ok(ok, "d")
        # an MQTT client on the WebSocket port: 400 at once
        s = socket.create_connection(("127.0.0.1", b.ws_port), timeout=T(10))
        s.sendall(mqttraw.connect("plain"))
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")
        s.close()
        b.wait_log('reason="not an HTTP request"')
        _worker_ok(ok, "e")
    finally:
        ok.close()


def test_no_subprotocol_is_accepted(broker):
    b = start_ws(broker)
    w = RawWs(b.ws_port, proto=None)
    assert w.status == 101 and "Sec-WebSocket-Protocol" not in w.response
    w.send_frame(2, mqttraw.connect("noproto"))
    p, _ = w.read_mqtt()
    assert p.type == mqttraw.CONNACK
    w.close()


def test_custom_path(broker):
    b = start_ws(broker, path="/ws/v1")
    ws = WsPaho(b.ws_port, "pathy", path="/ws/v1")
    ws.close()
    w = RawWs(b.ws_port, path="/mqtt")
    assert w.status == 404
    w.close()


def test_proxy_protocol_before_the_request(broker):
    b = start_ws(broker, proxy_protocol="true")
    hdr = _v2_header("10.9.8.7", 40000, b.ws_port)
    w = RawWs(b.ws_port, prefix=hdr)
    assert w.status == 101, w.response
    w.send_frame(2, mqttraw.connect("behind-haproxy"))
    p, _ = w.read_mqtt()
    assert p.type == mqttraw.CONNACK
    line = b.wait_log("client connected client_id=behind-haproxy")[0]
    assert "addr=10.9.8.7:40000" in line, line
    w.close()
    # no header: refused, the listener keeps serving
    w = RawWs(b.ws_port)
    assert w.status == 0
    w.close()
    b.wait_log("no valid PROXY protocol header")


def test_wss_paho_versions(broker, raw, certs):
    b = start_wss(broker, certs)
    for protocol, name in ((mqtt.MQTTv311, "v311"), (mqtt.MQTTv5, "v5"), (mqtt.MQTTv31, "v31")):
        ws = WsPaho(b.wss_port, "wss-" + name, protocol=protocol, certs=certs)
        try:
            c = raw(b, version=4, auto_ack=True)
            c.connect("tcp-wss-" + name)
            roundtrip(ws, c, "s" + name)
        finally:
            ws.close()
    big = os.urandom(220 * 1024)
    ws = WsPaho(b.wss_port, "wss-big", certs=certs)
    try:
        ws.subscribe("wbig")
        ws.publish("wbig", big)
        assert ws.get(20).payload == big
    finally:
        ws.close()


def test_wss_mutual_tls(broker, certs):
    b = start_wss(broker, certs, verify="peer", cacertfile=certs("ca.pem"),
                  peer_cert_as_username="cn")
    ws = WsPaho(b.wss_port, "mtls", certs=certs, client="client")
    ws.close()
    line = b.wait_log("client connected client_id=mtls")[0]
    assert "alice" in line, line
    # no client certificate: the TLS handshake fails, logged
    c = mqtt.Client(client_id="nocert", transport="websockets")
    c.tls_set(ca_certs=certs("ca.pem"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises((ssl.SSLError, OSError)):
        c.connect("127.0.0.1", b.wss_port, 60)
        c.loop_read()  # TLS 1.3: the refusal arrives after the handshake
        c.loop_read()
    line = b.wait_log("TLS handshake failed")[0]
    assert "listener=wss.default" in line and "certificate" in line, line


def test_wss_sighup_reloads_certificates(broker, certs, tmp_path):
    d = str(tmp_path)
    for f in ("server.pem", "server.key", "ca.pem", "ca.key"):
        with open(certs(f), "rb") as src, open(os.path.join(d, f), "wb") as dst:
            dst.write(src.read())
    port = free_port()
    conf = wss_conf(certs, port)
    conf["listeners.wss.default.certfile"] = os.path.join(d, "server.pem")
    conf["listeners.wss.default.keyfile"] = os.path.join(d, "server.key")
    b = broker(conf)
    b.wait_listening(port)
    assert served_cn(port, certs) == "localhost"
    live = WsPaho(port, "live", certs=certs)
    try:
        live.subscribe("r/#")
        make_leaf(d, "server", "ca", "renewed", san=SAN_LOCAL)
        b.proc.send_signal(signal.SIGHUP)
        b.wait_log("listener wss.default: certificates reloaded")
        assert served_cn(port, certs) == "renewed"
        live.publish("r/1", b"after reload")
        assert live.get().payload == b"after reload"
    finally:
        live.close()


def test_metrics_count_connections_per_listener_type(broker):
    import urllib.request
    b = start_ws(broker)
    ws = WsPaho(b.ws_port, "counted")
    try:
        url = "http://127.0.0.1:%d/metrics" % b.http_port
        text = urllib.request.urlopen(url, timeout=T(10)).read().decode()
        assert ',type="ws"} 1' in text, text
        assert ',type="tcp"} 0' in text
    finally:
        ws.close()
