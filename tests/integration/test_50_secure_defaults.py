"""50 secure defaults (issue 10, item 8; SECURITY.md): the production config
deploy/hamqtt/hamqtt.conf, started as shipped with only its paths and
ports substituted (--set) and the cookie from HAMQTT_NODE__COOKIE, with
certificates, a password file, an ACL and admin's password file made here:

  - anonymous clients are refused (v5 CONNACK 0x87 Not authorized
    [MQTT-3.2.2-6]), over TLS and through the PROXY port alike;
  - a user of the password file works over TLS (mosquitto_sub/pub --cafile),
    within its ACL;
  - the plain port serves only connections that start with a PROXY header
    (HAProxy): a plain client is closed without a CONNACK;
  - /api/v5 needs credentials; admin's password comes from the file (no
    admin/public); cluster links run TLS; no plain ws listener;
  - without a cookie of its own (the public default) on a non-loopback
    node name the node refuses to start, naming node.cookie;
and that etc/hamqtt.conf (`make run`) still lets `mosquitto_sub -t '#'`
work without credentials (the README's first example).

Also the polish of the first wave: login throttling on POST /api/v5/login
(dashboard.login.*), the HTTP hook's outage logged once instead of once
per CONNECT, and hamqtt-ctl finding a relative node.data_dir next to the
config file as the node does."""

import json
import os
import socket
import ssl
import struct
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import mqttraw as m
from authfx import ham_passwd
from certs import SAN_LOCAL, CertDir
from conftest import REPO, EXIT_REFUSED, broker_env, build_dir, free_port, hamqttd_path
from helpers import MosquittoSub, mosquitto_pub
from mqttraw import T

DEPLOY = os.path.join(REPO, "deploy", "hamqtt", "hamqtt.conf")
SHIPPED = os.path.join(REPO, "etc", "hamqtt.conf")
COOKIE = "d3adb33f" * 8
ADMIN_PW = "first-admin-pw-123"
RC_NOT_AUTHORIZED = 0x87


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    """The files deploy/hamqtt/hamqtt.conf names: certificates (one CA for
    the MQTT server and the node), a password file, an ACL, admin's first
    password. Returns {name: path}."""
    p = CertDir(tmp_path_factory.mktemp("etc-hamqtt"))
    p.ca("ca")
    p.leaf("server", "ca", "server", san=SAN_LOCAL, eku="serverAuth")
    p.leaf("node", "ca", "node", san="IP:127.0.0.1", eku="serverAuth,clientAuth")
    r = ham_passwd(p("passwd"), "-b", "-c", "FILE", "alice", "alice-pw")
    assert r.returncode == 0, r.stderr
    with open(p("acl"), "w") as f:
        f.write("user alice\ntopic readwrite devices/alice/#\n")
    with open(p("dashboard.pass"), "w") as f:
        f.write(ADMIN_PW + "\n")
    for n in ("passwd", "acl", "dashboard.pass", "server.key", "node.key"):
        os.chmod(p(n), 0o600)
    return {n: p(n) for n in ("ca.pem", "server.pem", "server.key", "node.pem", "node.key",
                              "passwd", "acl", "dashboard.pass")}


def deploy_args(s, b, node_name="hamqtt@127.0.0.1"):
    """--set lines for the deploy file: this machine's ports and the test's
    files; nothing else of the file is changed."""
    if not hasattr(b, "ssl_port"):
        # free now but not bound yet, like b's own ports: never the same number
        taken = {b.port, b.http_port, b.cluster_port}
        for attr in ("ssl_port", "wss_port"):
            p = free_port()
            while p in taken:
                p = free_port()
            taken.add(p)
            setattr(b, attr, p)
    kv = {
        "node.name": node_name,
        "node.data_dir": b.data_dir,
        "node.shutdown_grace": "0s",
        "cluster.port": b.cluster_port,
        "cluster.tls.certfile": s["node.pem"],
        "cluster.tls.keyfile": s["node.key"],
        "cluster.tls.cacertfile": s["ca.pem"],
        "listeners.tcp.default.bind": "127.0.0.1:%d" % b.port,
        "listeners.ssl.default.bind": "127.0.0.1:%d" % b.ssl_port,
        "listeners.ssl.default.certfile": s["server.pem"],
        "listeners.ssl.default.keyfile": s["server.key"],
        "listeners.wss.default.bind": "127.0.0.1:%d" % b.wss_port,
        "listeners.wss.default.certfile": s["server.pem"],
        "listeners.wss.default.keyfile": s["server.key"],
        "auth.password_file": s["passwd"],
        "auth.acl_file": s["acl"],
        "dashboard.listeners.http.bind": "127.0.0.1:%d" % b.http_port,
        "dashboard.default_password_file": s["dashboard.pass"],
    }
    out = []
    for k, v in kv.items():
        out += ["--set", "%s=%s" % (k, v)]
    return out


@pytest.fixture
def secure(broker, secrets):
    b = broker(config_file=DEPLOY, args=lambda b: deploy_args(secrets, b),
               env={"HAMQTT_NODE__COOKIE": COOKIE})
    b.wait_listening(b.ssl_port)
    return b


def _tls_socket(b, secrets):
    ctx = ssl.create_default_context(cafile=secrets["ca.pem"])
    s = socket.create_connection(("127.0.0.1", b.ssl_port), timeout=T(10))
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")


def _connack(sock):
    """(first byte, reason code) of the CONNACK read from sock."""
    data = b""
    deadline = time.monotonic() + T(5)
    while len(data) < 4 and time.monotonic() < deadline:
        chunk = sock.recv(64)
        if not chunk:
            break
        data += chunk
    assert len(data) >= 4, "no CONNACK: %r" % data
    return data[0], data[3]


def _v2_header(src, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def _http(b, method, path, body=None, headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (b.http_port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers=dict(headers or {}, **({"Content-Type":
                                                                  "application/json"}
                                                                 if body is not None else {})))
    try:
        with urllib.request.urlopen(req, timeout=T(10)) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# ---- the production config -----------------------------------------------------------

def test_anonymous_refused(secure, secrets):
    """Anonymous clients get 0x87 over TLS and through HAProxy's PROXY port."""
    t = _tls_socket(secure, secrets)
    t.sendall(m.connect("anon-tls", version=5))
    assert _connack(t) == (0x20, RC_NOT_AUTHORIZED)
    t.close()
    s = socket.create_connection(("127.0.0.1", secure.port), timeout=T(10))
    s.sendall(_v2_header("10.1.2.3", 40000, secure.port) + m.connect("anon-proxy", version=5))
    assert _connack(s) == (0x20, RC_NOT_AUTHORIZED)
    s.close()
    line = secure.wait_log("connection refused client_id=anon-proxy")[0]
    assert "10.1.2.3" in line, line


def test_password_user_over_tls(secure, secrets):
    """alice (password file) subscribes and publishes over TLS with the real
    mosquitto clients, within her ACL; a topic outside it is refused."""
    tls = ["--cafile", secrets["ca.pem"], "-u", "alice", "-P", "alice-pw"]
    sub = MosquittoSub(secure.ssl_port, "devices/alice/#", qos=1, version="mqttv5",
                       count=1, extra=tls)
    try:
        mosquitto_pub(secure.ssl_port, "devices/alice/temp", "21.5", qos=1, version="mqttv5",
                      extra=tls)
        assert sub.messages(1) == [("devices/alice/temp", "21.5")]
    finally:
        sub.close()
    # outside the ACL (no_match = deny): the subscription is refused
    t = _tls_socket(secure, secrets)
    t.sendall(m.connect("alice-2", version=5, username="alice", password="alice-pw"))
    assert _connack(t) == (0x20, 0)
    t.sendall(m.subscribe(1, [("other/#", 0)], version=5))
    data = t.recv(64)
    assert data[0] == 0x90 and data[-1] == 0x87, data
    t.close()


def test_plain_port_needs_proxy_header(secure):
    """1883 is for HAProxy: a client that connects directly (no PROXY
    header) is closed without a CONNACK; one behind a PROXY v2 header with a
    password is served."""
    c = m.RawClient(secure.port, version=5)
    try:
        c.send(m.connect("direct", version=5, username="alice", password="alice-pw"))
        assert c.wait_closed() == []
    finally:
        c.close()
    secure.wait_log("refused: no valid PROXY protocol header")
    s = socket.create_connection(("127.0.0.1", secure.port), timeout=T(10))
    s.sendall(_v2_header("10.1.2.4", 40001, secure.port) +
              m.connect("via-haproxy", version=5, username="alice", password="alice-pw"))
    assert _connack(s) == (0x20, 0)
    s.close()


def test_api_needs_credentials_and_admin_from_file(secure):
    """Only the health check and /metrics are open; admin/public does not
    exist (the first password came from dashboard.default_password_file)."""
    assert _http(secure, "GET", "/api/v5/status")[0] == 200
    for method, path in (("GET", "/api/v5/cluster"), ("POST", "/api/v5/cluster/leave"),
                         ("GET", "/api/v5/users"), ("GET", "/api/v5/banned")):
        assert _http(secure, method, path)[0] == 401, (method, path)
    assert _http(secure, "POST", "/api/v5/login",
                 {"username": "admin", "password": "public"})[0] == 401
    st, _, body = _http(secure, "POST", "/api/v5/login",
                        {"username": "admin", "password": ADMIN_PW})
    assert st == 200, body
    doc = json.loads(body)
    assert doc["password_change_required"] is False
    st, _, _ = _http(secure, "GET", "/api/v5/cluster",
                     headers={"Authorization": "Bearer " + doc["token"]})
    assert st == 200


def test_cluster_tls_on_and_no_plain_ws(secure):
    secure.wait_log("listening for links on")
    assert secure.log_lines("listening for links on")[0].rstrip().endswith(", TLS)")
    assert not secure.log_lines("listener ws.")
    assert COOKIE not in secure.log_text()


def _run_refused(args, env=None, cwd=None):
    r = subprocess.run([hamqttd_path()] + args, capture_output=True, text=True, timeout=T(20),
                       env=broker_env(env), cwd=cwd)
    assert r.returncode == EXIT_REFUSED, "exit %s: %s%s" % (r.returncode, r.stdout, r.stderr)
    return r.stdout + r.stderr


def test_default_cookie_refused_off_loopback(secrets, tmp_path):
    """The deploy file sets no cookie: with the public default and the
    node's own (non-loopback) name, hamqttd refuses to start, naming
    node.cookie; the start fails before anything listens. The same on
    etc/hamqtt.conf with a non-loopback node name."""

    class B:  # ports for deploy_args; nothing is started on them
        data_dir = str(tmp_path / "data")
        port, http_port, cluster_port = free_port(), free_port(), free_port()
    args = ["-c", DEPLOY] + deploy_args(secrets, B, node_name="hamqtt@10.0.0.1")
    out = _run_refused(args)
    assert "node.cookie: the built-in default cookie is public" in out, out
    assert "10.0.0.1:%d" % B.cluster_port in out, out
    out = _run_refused(["-c", SHIPPED, "--set", "node.name=hamqtt@192.0.2.1",
                        "--set", "node.data_dir=%s" % B.data_dir])
    assert "node.cookie" in out and "192.0.2.1:4370" in out, out


def test_make_run_config_stays_open(broker, tmp_path):
    """etc/hamqtt.conf, as `make run` starts it: `mosquitto_sub -t '#'` and
    mosquitto_pub without credentials (README), default cookie on loopback."""
    def args(b):
        return ["--set", "listeners.tcp.default.bind=127.0.0.1:%d" % b.port,
                "--set", "dashboard.listeners.http.bind=127.0.0.1:%d" % b.http_port,
                "--set", "cluster.port=%d" % b.cluster_port,
                "--set", "listeners.ws.default.bind=127.0.0.1:%d" % free_port(),
                "--set", "node.data_dir=%s" % (tmp_path / "run-data")]
    b = broker(config_file=SHIPPED, args=args)
    sub = MosquittoSub(b.port, "#", count=1)
    try:
        mosquitto_pub(b.port, "test/hello", "Hello MQTT", qos=1)
        assert sub.messages(1) == [("test/hello", "Hello MQTT")]
    finally:
        sub.close()


# ---- login throttling (dashboard.login.*) ---------------------------------------------

def _login(b, pw):
    return _http(b, "POST", "/api/v5/login", {"username": "admin", "password": pw})


def _metric(b, name):
    body = _http(b, "GET", "/metrics")[2].decode()
    for line in body.splitlines():
        if line.startswith(name):
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError("%s not in /metrics" % name)


def test_login_throttled_per_address(broker):
    """3 wrong logins from one address: the next ones get 429 with
    Retry-After, even with the right password (not checked), counted and
    logged once; after the block the right password works; the next block
    lasts twice as long."""
    b = broker({"dashboard.login.max_failures": 3, "dashboard.login.block_time": "2s"})
    for _ in range(3):
        assert _login(b, "wrong")[0] == 401
    st, hdr, body = _login(b, "public")
    assert st == 429, body
    assert 1 <= int(hdr["Retry-After"]) <= 2
    assert json.loads(body)["code"] == "TOO_MANY_REQUESTS"
    assert len(b.wait_log("3 failed logins from 127.0.0.1")) == 1
    assert _metric(b, 'hamqtt_http_login_total{node="hamqtt@127.0.0.1",result="throttled"}') == 1
    assert _metric(b, 'hamqtt_http_login_total{node="hamqtt@127.0.0.1",result="failed"}') == 3
    assert _metric(b, 'hamqtt_http_login_blocks_total') == 1
    time.sleep(int(hdr["Retry-After"]) + 0.2)
    assert _login(b, "public")[0] == 200  # a good login starts the address over
    for _ in range(3):
        assert _login(b, "wrong")[0] == 401
    st, hdr, _ = _login(b, "public")
    assert st == 429 and int(hdr["Retry-After"]) == 2  # 2 s again: the good login reset it
    time.sleep(2.2)
    for _ in range(3):
        assert _login(b, "wrong")[0] == 401
    st, hdr, _ = _login(b, "wrong")
    assert st == 429 and 3 <= int(hdr["Retry-After"]) <= 4  # second block in a row: doubled


# ---- the HTTP hook's outage is logged once ----------------------------------------------

def test_http_hook_outage_logged_once(broker):
    """A hook that fails (500) for 5 CONNECTs in a row writes one warning,
    not one info line per CONNECT; when it answers again, one notice."""
    from test_45_auth_hook import Hook
    hook = Hook()
    try:
        b = broker({"auth.http.url": hook.url, "log.level": "info"})
        for i in range(5):
            c = m.RawClient(b.port, version=5)
            c.send(m.connect("c-err-%d" % i, version=5, username="err", password="x"))
            got = c.wait_closed()
            assert got and got[0].type == m.CONNACK and got[0].rc == 0x86, got
            c.close()
        b.wait_log("connection refused client_id=c-err-4")
        assert len(b.log_lines("HTTP hook failing")) == 1, b.log_tail()
        assert "status 500" in b.log_lines("HTTP hook failing")[0]
        assert not [ln for ln in b.log_lines(": next method") if "[info]" in ln], b.log_tail()
        c = m.RawClient(b.port, version=5)
        c.connect("c-ok", username="allow", password="x")
        c.close()
        line = b.wait_log("HTTP hook answers again")[0]
        assert "5 calls failed meanwhile" in line, line
    finally:
        hook.close()


# ---- hamqtt-ctl and the node agree on a relative node.data_dir -------------------------

def test_ctl_finds_relative_data_dir_next_to_config(broker, tmp_path):
    """node.data_dir = data in /x/conf/hamqtt.conf is /x/conf/data for the
    node (started in /x) and for hamqtt-ctl run from / : ctl reads the local
    API key there and its authenticated command works."""
    confdir = tmp_path / "conf"
    confdir.mkdir()
    path = str(confdir / "hamqtt.conf")

    def args(b):
        with open(path, "w") as f:
            f.write("node.name = hamqtt@127.0.0.1\nnode.data_dir = data\n"
                    "listeners.tcp.default.bind = 127.0.0.1:%d\n"
                    "dashboard.listeners.http.bind = 127.0.0.1:%d\ncluster.port = %d\n"
                    % (b.port, b.http_port, b.cluster_port))
        return []
    b = broker(config_file=path, args=args)
    assert os.path.exists(confdir / "data" / "ctl.key")
    r = subprocess.run([os.path.join(build_dir(), "hamqtt-ctl"), "-c", path, "cluster", "status"],
                       capture_output=True, text=True, timeout=T(20), cwd="/",
                       env=broker_env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "hamqtt@127.0.0.1" in r.stdout, r.stdout
    assert b.alive()

