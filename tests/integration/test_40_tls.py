"""40 TLS listeners (listeners.ssl.<name>.*): real clients over TLS 1.2 and
1.3 (mosquitto_pub/sub --cafile, paho-mqtt tls_set), mutual TLS (verify =
peer), the client certificate's CN as username, a plain client on the TLS
port, a TCP and an SSL listener side by side, PROXY protocol v2 before the
handshake, the handshake timeout, and a certificate that cannot be loaded.

Certificates are made at test time (certs.py, the openssl command line) in a
temporary directory (a CA, a server certificate for 127.0.0.1 and
localhost, client certificates of that CA and of another CA); no key is
ever committed.
"""

import os
import signal
import socket
import ssl
import struct
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

import mqttraw
from certs import SAN_LOCAL, CertDir, listener_conf, make_leaf, paho_tls_set, served_cn, tls_args
from conftest import EXIT_REFUSED, broker_env, free_port, hamqttd_path
from helpers import MosquittoSub, QueuedPaho, mosquitto_pub
from mqttraw import T


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    c = CertDir(tmp_path_factory.mktemp("certs"))
    c.ca("ca")
    c.ca("otherca")
    c.leaf("server", "ca", "localhost", san=SAN_LOCAL, eku="serverAuth")
    c.leaf("client", "ca", "alice", eku="clientAuth")
    c.leaf("stranger", "otherca", "mallory", eku="clientAuth")
    return c


def ssl_conf(certs, port, **more):
    return listener_conf("ssl", certs, port, **more)


def start_tls(broker, certs, extra=None, **more):
    port = free_port()
    conf = ssl_conf(certs, port, **more)
    conf.update(extra or {})
    b = broker(conf)
    b.wait_listening(port)
    b.tls_port = port
    return b


class TlsPaho(QueuedPaho):
    """A paho 1.6 client over TLS (tls_set) with a message queue."""

    what = "paho over TLS"

    def __init__(self, port, client_id, certs, client=None, version=None):
        self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        paho_tls_set(self.c, certs, client)
        if version:
            self.c._ssl_context.minimum_version = version
            self.c._ssl_context.maximum_version = version
        self._start(port)


@pytest.mark.parametrize("version,name", [("tlsv1.2", "TLSv1.2"), ("tlsv1.3", "TLSv1.3")])
def test_mosquitto_qos_0_1_2_over_tls(broker, certs, version, name):
    """mosquitto's --tls-version is a minimum: the listener pins the version."""
    b = start_tls(broker, certs, tls_versions=name[4:])
    for qos in (0, 1, 2):
        sub = MosquittoSub(b.tls_port, "tls/q%d" % qos, qos=qos, count=1,
                           extra=tls_args(certs, version))
        try:
            mosquitto_pub(b.tls_port, "tls/q%d" % qos, "hello %d" % qos, qos=qos,
                          extra=tls_args(certs, version))
            assert sub.messages(1) == [("tls/q%d" % qos, "hello %d" % qos)]
            assert sub.wait() == 0
        finally:
            sub.close()
    b.wait_log("version=%s" % name)


def test_big_payload_across_records(broker, certs):
    """1 MiB each way over TLS: 64+ records, partial SSL_write, payload segments."""
    b = start_tls(broker, certs, extra={"mqtt.max_packet_size": "2MB"})
    payload = bytes((i * 7 + i // 251) & 0xFF for i in range(1 << 20))
    sub = TlsPaho(b.tls_port, "big-sub", certs)
    pub = TlsPaho(b.tls_port, "big-pub", certs)
    try:
        sub.subscribe("big/#", qos=1)
        for qos in (0, 1, 2):
            pub.publish("big/%d" % qos, payload, qos=qos)
            m = sub.get(timeout=30)
            assert m.topic == "big/%d" % qos and m.payload == payload
    finally:
        sub.close()
        pub.close()


def test_paho_tls_1_3_only_listener_refuses_1_2(broker, certs):
    b = start_tls(broker, certs, tls_versions="1.3")
    p = TlsPaho(b.tls_port, "p13", certs, version=ssl.TLSVersion.TLSv1_3)
    try:
        p.subscribe("v/#")
        p.publish("v/1", b"x")
        assert p.get().payload == b"x"
    finally:
        p.close()
    ctx = ssl.create_default_context(cafile=certs("ca.pem"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = socket.create_connection(("127.0.0.1", b.tls_port), timeout=T(10))
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(s, server_hostname="127.0.0.1")
    s.close()
    line = b.wait_log("TLS handshake failed addr=")[0]
    assert "listener=ssl.default" in line and "protocol" in line, line


def test_mutual_tls(broker, certs):
    b = start_tls(broker, certs, verify="peer", cacertfile=certs("ca.pem"))
    sub = MosquittoSub(b.tls_port, "m/#", qos=1, count=1,
                       extra=tls_args(certs, client="client"))
    try:
        mosquitto_pub(b.tls_port, "m/1", "with cert", qos=1,
                      extra=tls_args(certs, client="client"))
        assert sub.messages(1) == [("m/1", "with cert")]
    finally:
        sub.close()
    # no certificate: refused during the handshake, one line with the reason
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.tls_port), "-t", "m/2",
                        "-m", "no cert"] + tls_args(certs),
                       capture_output=True, text=True, timeout=T(15))
    assert r.returncode != 0
    line = b.wait_log("TLS handshake failed addr=")[0]
    assert "certificate" in line and "listener=ssl.default" in line, line
    # a certificate of another CA: refused too
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.tls_port), "-t", "m/3",
                        "-m", "wrong ca"] + tls_args(certs, client="stranger"),
                       capture_output=True, text=True, timeout=T(15))
    assert r.returncode != 0
    lines = b.wait_log("TLS handshake failed addr=", count=2)
    assert "certificate" in lines[1], lines
    assert not b.log_lines("client connected client_id=") or \
        all("m/2" not in x for x in b.log_lines("client connected"))


def test_peer_cert_cn_is_the_username(broker, certs):
    b = start_tls(broker, certs, verify="peer", cacertfile=certs("ca.pem"),
                  peer_cert_as_username="cn")
    mosquitto_pub(b.tls_port, "cn/1", "x", extra=tls_args(certs, client="client") +
                  ["-i", "cn-client", "-u", "notalice"])
    line = b.wait_log("client connected client_id=cn-client")[0]
    assert "username=alice " in line, line


def test_plain_client_on_tls_port_is_closed_and_logged(broker, certs):
    b = start_tls(broker, certs)
    p = TlsPaho(b.tls_port, "survivor", certs)
    try:
        p.subscribe("s/#")
        s = socket.create_connection(("127.0.0.1", b.tls_port), timeout=T(5))
        s.sendall(mqttraw.connect("plain"))
        s.settimeout(T(10))
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        s.close()
        assert not data.startswith(b"\x20"), "a CONNACK came back over plain TCP"
        line = b.wait_log("TLS handshake failed addr=")[0]
        assert "addr=127.0.0.1:" in line and "listener=ssl.default" in line, line
        assert 'not TLS: a plain MQTT client?' in line, line
        # the TLS client on the same listener is undisturbed
        p.publish("s/1", b"still here")
        assert p.get().payload == b"still here"
        time.sleep(0.2)
        assert len(b.log_lines("TLS handshake failed addr=")) == 1
    finally:
        p.close()


def test_tcp_and_ssl_side_by_side(broker, certs, paho):
    b = start_tls(broker, certs)
    t = TlsPaho(b.tls_port, "over-tls", certs)
    plain = paho(b, "over-tcp")
    try:
        t.subscribe("x/#")
        plain.subscribe("x/#", qos=1)
        plain.publish("x/from-tcp", b"a", qos=1)
        t.publish("x/from-tls", b"b")
        got_tls = sorted((t.get().topic, t.get().topic))
        got_tcp = sorted(m.topic for m in plain.get_n(2))
        assert got_tls == got_tcp == ["x/from-tcp", "x/from-tls"]
    finally:
        t.close()
        plain.close()
    b.wait_log("listener tcp.default on 127.0.0.1:%d" % b.port)
    b.wait_log("listener ssl.default on 127.0.0.1:%d" % b.tls_port)


def _v2_header(src, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def test_proxy_protocol_before_tls(broker, certs):
    b = start_tls(broker, certs, proxy_protocol="true")
    ctx = ssl.create_default_context(cafile=certs("ca.pem"))
    s = socket.create_connection(("127.0.0.1", b.tls_port), timeout=T(10))
    hdr = _v2_header("10.9.8.7", 40000, b.tls_port)
    s.sendall(hdr[:10])  # split: the broker must wait for the rest, not read past it
    time.sleep(0.2)
    s.sendall(hdr[10:])
    ts = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    ts.sendall(mqttraw.connect("behind-haproxy"))
    assert ts.recv(4)[:1] == b"\x20"
    line = b.wait_log("client connected client_id=behind-haproxy")[0]
    assert "addr=10.9.8.7:40000" in line, line
    ts.close()
    # no header: refused, the listener keeps serving
    s = socket.create_connection(("127.0.0.1", b.tls_port), timeout=T(10))
    with pytest.raises((ssl.SSLError, OSError)):
        ctx.wrap_socket(s, server_hostname="127.0.0.1")
    b.wait_log("no valid PROXY protocol header")


def test_handshake_timeout(broker, certs):
    """A connection that never finishes its handshake is closed after
    mqtt.connect_timeout, like one that never sends CONNECT."""
    b = start_tls(broker, certs, extra={"mqtt.connect_timeout": "1s"})
    s = socket.create_connection(("127.0.0.1", b.tls_port), timeout=T(10))
    s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then silence
    t0 = time.monotonic()
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - t0 < T(8)
    s.close()
    b.wait_log("no CONNECT within mqtt.connect_timeout")


def run_refused(tmp_path, conf):
    """hamqttd on conf must refuse to start: exit EXIT_REFUSED, the reason on stderr."""
    path = str(tmp_path / "refused.conf")
    lines = ["node.name = hamqtt@127.0.0.1", "node.data_dir = %s" % tmp_path,
             "listeners.tcp.default.bind = 127.0.0.1:%d" % free_port(),
             "dashboard.listeners.http.bind = 127.0.0.1:%d" % free_port(),
             "cluster.port = 0"]
    lines += ["%s = %s" % kv for kv in conf.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([hamqttd_path(), "-c", path], capture_output=True, text=True,
                       timeout=T(20), env=broker_env(), cwd=str(tmp_path))
    assert r.returncode == EXIT_REFUSED, r.stderr
    return path, len(lines), r.stderr


@pytest.mark.parametrize("key,value,expect", [
    ("certfile", "/nonexistent/server.pem",
     "listeners.ssl.default.certfile: cannot load /nonexistent/server.pem: "
     "No such file or directory"),
    ("keyfile", "ca.pem", "listeners.ssl.default.keyfile: cannot load %s: "
     "not a PEM private key"),
    ("certfile", "server.key", "listeners.ssl.default.certfile: cannot load %s: "
     "not a PEM certificate"),
    ("keyfile", "client.key", "listeners.ssl.default.keyfile: cannot load %s: "
     "the key does not match the certificate in certfile"),
    ("cacertfile", "/nonexistent/ca.pem",
     "listeners.ssl.default.cacertfile: cannot load /nonexistent/ca.pem: "
     "No such file or directory"),
])
def test_bad_file_fails_the_start(tmp_path, certs, key, value, expect):
    if not value.startswith("/"):
        value = certs(value)
    if "%s" in expect:
        expect = expect % value
    _, _, err = run_refused(tmp_path, ssl_conf(certs, free_port(), **{key: value}))
    assert expect in err, err


def test_bad_ssl_key_names_file_and_line(tmp_path, certs):
    path, n, err = run_refused(tmp_path, ssl_conf(certs, free_port(), verify="maybe"))
    assert "%s:%d: listeners.ssl.default.verify: expected one of none|peer, got 'maybe'" \
        % (path, n) in err, err
    del_cert = ssl_conf(certs, free_port())
    del del_cert["listeners.ssl.default.certfile"]
    _, _, err = run_refused(tmp_path, del_cert)
    assert "listeners.ssl.default.certfile: required for an ssl listener" in err, err


def test_sighup_reloads_certificates_without_dropping_connections(broker, certs, tmp_path):
    """SIGHUP: new connections get the files' new certificate, live ones stay;
    a file that fails to load keeps the old certificate (logged)."""
    d = str(tmp_path)
    for f in ("server.pem", "server.key"):
        with open(certs(f), "rb") as src, open(os.path.join(d, f), "wb") as dst:
            dst.write(src.read())
    port = free_port()
    conf = ssl_conf(certs, port)
    conf["listeners.ssl.default.certfile"] = os.path.join(d, "server.pem")
    conf["listeners.ssl.default.keyfile"] = os.path.join(d, "server.key")
    b = broker(conf)
    b.wait_listening(port)
    assert served_cn(port, certs) == "localhost"
    live = TlsPaho(port, "live", certs)
    try:
        live.subscribe("r/#")
        # a new certificate of the same CA, written over the files
        with open(os.path.join(d, "ca.pem"), "wb") as f, open(certs("ca.pem"), "rb") as src:
            f.write(src.read())
        with open(os.path.join(d, "ca.key"), "wb") as f, open(certs("ca.key"), "rb") as src:
            f.write(src.read())
        make_leaf(d, "server", "ca", "renewed", san=SAN_LOCAL)
        b.proc.send_signal(signal.SIGHUP)
        b.wait_log("listener ssl.default: certificates reloaded")
        assert served_cn(port, certs) == "renewed"
        live.publish("r/1", b"after reload")
        assert live.get().payload == b"after reload"
        # a broken file: the renewed certificate stays
        with open(os.path.join(d, "server.pem"), "w") as f:
            f.write("garbage\n")
        b.proc.send_signal(signal.SIGHUP)
        line = b.wait_log("reload failed, the previous certificates stay")[0]
        assert "listeners.ssl.default.certfile: cannot load" in line, line
        assert served_cn(port, certs) == "renewed"
        live.publish("r/2", b"still")
        assert live.get().payload == b"still"
    finally:
        live.close()
