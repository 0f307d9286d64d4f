"""MQTT bridges (bridges.mqtt.<name>.*, issue 12; docs/architecture/bridge.md)
against a real Mosquitto broker as the remote, started here on a free port
in a temp dir and killed at the end.

The bridge's forwards (local filter -> remote prefix) and subscriptions
(remote filter -> local prefix), no loop with overlapping filters, at least
once through an outage of the remote (the local session is the buffer,
bounded by max_buffered), TLS with a CA, user name/password and a client
certificate, MQTT 3.1.1, one node of a cluster at a time, refused
configurations."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from authfx import mosq_passwd
from certs import SAN_LOCAL, CertDir
from conftest import free_port, require, wait_until
from helpers import MosquittoSub, mosquitto_pub
from mqttraw import T
from redisfx import REDIS, redis  # noqa: F401 (the fixture)
from restapi import api
from startfail import start_fails

MOSQUITTO = "/usr/sbin/mosquitto"


def need_mosquitto():
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip("mosquitto (the broker) is not installed: scripts/deps.sh installs it")


class Mosquitto:
    """A Mosquitto broker of this test: its own config and directory, a free
    127.0.0.1 port kept across restarts, stopped by the fixture's finalizer."""

    def __init__(self, d, extra=""):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.log = os.path.join(self.dir, "mosquitto.log")
        self.extra = extra
        self.proc = None

    def start(self):
        with open(self.conf, "w") as f:
            # root here: "user root" keeps it (it drops to user mosquitto
            # otherwise, who cannot read the temp dir)
            f.write("user root\nlistener %d 127.0.0.1\npersistence true\n"
                    "persistence_location %s/\nlog_dest file %s\nlog_type all\n%s\n"
                    % (self.port, self.dir, self.log, self.extra))
            if "allow_anonymous" not in self.extra:
                f.write("allow_anonymous true\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.listening() or self.proc.poll() is not None,
                   timeout=10, what="mosquitto listening")
        assert self.proc.poll() is None, (self.proc.stderr.read(), self.log_text())
        return self

    def listening(self):
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", self.port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves its persistence file
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


@pytest.fixture
def mosquitto(tmp_path, request):
    need_mosquitto()
    made = []

    def mk(extra="", name=None):
        m = Mosquitto(tmp_path / (name or "mosq%d" % len(made)), extra)
        made.append(m)
        return m.start()

    yield mk
    failed = getattr(request.node, "rep_call", None)
    for m in made:
        m.stop()
        if failed is not None and failed.failed:
            print("\n---- mosquitto %s ----\n%s" % (m.dir, m.log_text()[-4000:]))


def bridge_conf(m, name="r1", **kw):
    """The keys of bridge `name` to Mosquitto m; values with '#' quoted."""
    ov = {"bridges.mqtt.%s.server" % name: "127.0.0.1:%d" % m.port,
          "bridges.mqtt.%s.reconnect_min" % name: "200ms",
          "bridges.mqtt.%s.reconnect_max" % name: "1s"}
    for k, v in kw.items():
        key = "bridges.mqtt.%s.%s" % (name, k.replace("__", "."))
        ov[key] = '"%s"' % v if isinstance(v, str) and "#" in v else v
    return ov


def bridges(node):
    st, body = api(node, "GET", "/api/v5/bridges")
    assert st == 200, (st, body)
    return body["data"]


def wait_status(node, status, name="r1", timeout=10.0):
    deadline = time.monotonic() + T(timeout)
    while True:
        mine = [b for b in bridges(node) if b["name"] == name and b["node"] == node_name(node)]
        if mine and mine[0]["status"] == status:
            return mine[0]
        if time.monotonic() > deadline:
            raise AssertionError("bridge %s not %s: %r" % (name, status, mine))
        time.sleep(0.1)


def node_name(node):
    return getattr(node, "name", None) or "hamqtt@127.0.0.1"


def test_forwards_and_subscriptions_no_loop(broker, mosquitto):
    m = mosquitto()
    node = broker(bridge_conf(
        m, forwards="out/# -> fromlocal/ qos 1, both/# -> qos 1",
        subscriptions="in/# -> fromremote/ qos 1, both/# -> qos 1"))
    wait_status(node, "connected")
    # the bridge's local side is a client of the node, marked as a bridge
    st, cl = api(node, "GET", "/api/v5/clients?clientid=hamqtt-cluster-bridge-r1")
    assert st == 200 and cl["data"] and cl["data"][0]["listener"] == "bridge", cl
    rsub = MosquittoSub(m.port, ["fromlocal/#", "both/#"], qos=1)
    lsub = MosquittoSub(node.port, ["fromremote/#", "both/#"], qos=1)
    try:
        mosquitto_pub(node.port, "out/a", "hello", qos=1)
        assert rsub.messages(1) == [("fromlocal/out/a", "hello")]
        # QoS 1 kept on the remote side
        assert any("received PUBLISH (d0, q1" in ln and "fromlocal/out/a" in ln for ln in rsub.all)
        mosquitto_pub(m.port, "in/b", "world", qos=1)
        assert lsub.messages(1) == [("fromremote/in/b", "world")]
        assert any("received PUBLISH (d0, q1" in ln and "fromremote/in/b" in ln
                   for ln in lsub.all)
        # both ways at once on overlapping filters: each side sees each message
        # once (v5 no-local both sides, and the hop marker), no echo storm
        mosquitto_pub(node.port, "both/x", "L", qos=1)
        mosquitto_pub(m.port, "both/y", "R", qos=1)
        time.sleep(T(1.5))
        seen_r = [ln for ln in rsub.all if ln.startswith("MSG|both/")]
        seen_l = [ln for ln in lsub.all if ln.startswith("MSG|both/")]
        assert sorted(seen_r) == ["MSG|both/x|L", "MSG|both/y|R"], rsub.all
        assert sorted(seen_l) == ["MSG|both/x|L", "MSG|both/y|R"], lsub.all
    finally:
        rsub.close()
        lsub.close()
    b = wait_status(node, "connected")
    assert b["metrics"]["forwarded"] == 2 and b["metrics"]["received"] == 2, b
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % node.http_port,
                                timeout=T(5)) as r:
        text = r.read().decode()
    assert re.search(r'hamqtt_bridge_up\{node="[^"]+",bridge="r1"\} 1', text), text
    assert re.search(r'hamqtt_bridge_messages_total\{node="[^"]+",bridge="r1",'
                     r'direction="forward",result="ok"\} 2', text)
    if shutil.which("promtool"):  # the exposition format, bridge lines included
        r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=T(20))
        assert "bridge" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_remote_down_buffered_in_order(broker, mosquitto):
    m = mosquitto()
    # mqtt.session_expiry_max caps clients' sessions, not the bridge's buffer
    node = broker(bridge_conf(m, forwards="buf/# -> r/ qos 1"), **{"mqtt.session_expiry_max": "1s"})
    wait_status(node, "connected")
    # a persistent subscriber on the remote, offline while the messages come
    sub = MosquittoSub(m.port, "r/buf/#", qos=1, extra=("-c", "-i", "rsub62"))
    sub.close()
    m.stop()
    b = wait_status(node, "disconnected")
    assert "remote side" in b["last_error"], b
    n = 200
    time.sleep(T(2))  # longer than mqtt.session_expiry_max
    mosquitto_pub(node.port, "buf/t", qos=1, stdin_lines=["m%03d" % i for i in range(n)])
    wait_until(lambda: wait_status(node, "disconnected")["metrics"]["buffered"] == n,
               timeout=10, interval=0.2, what="200 buffered")
    m.start()
    wait_status(node, "connected")
    sub = MosquittoSub(m.port, "r/buf/#", qos=1, extra=("-c", "-i", "rsub62"))
    try:
        # queued ones may come before the SUBACK line: read the whole output
        wait_until(lambda: "MSG|r/buf/t|m199" in sub.all, timeout=20, interval=0.1,
                   what="the last message")
        time.sleep(T(0.5))
    finally:
        sub.close()
    got = [ln.split("|", 2)[2] for ln in sub.all if ln.startswith("MSG|")]
    want = ["m%03d" % i for i in range(n)]
    assert got == want, "%d messages, first wrong at %r" % (
        len(got), next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None))
    assert node.log_lines("bridge r1 (127.0.0.1:%d): connecting -> connected" % m.port)


def test_max_buffered_drops_counted(broker, mosquitto):
    m = mosquitto()
    node = broker(bridge_conf(m, forwards="cap/# -> qos 1", max_buffered=50))
    wait_status(node, "connected")
    sub = MosquittoSub(m.port, "cap/#", qos=1, extra=("-c", "-i", "rsub62cap"))
    sub.close()
    m.stop()
    wait_status(node, "disconnected")
    mosquitto_pub(node.port, "cap/t", qos=1, stdin_lines=["m%03d" % i for i in range(120)])
    wait_until(lambda: wait_status(node, "disconnected")["metrics"]["dropped"] > 0,
               timeout=10, interval=0.2, what="drops counted")
    m.start()
    wait_status(node, "connected")
    sub = MosquittoSub(m.port, "cap/#", qos=1, extra=("-c", "-i", "rsub62cap"))
    try:
        wait_until(lambda: "MSG|cap/t|m119" in sub.all, timeout=20, interval=0.1,
                   what="the last message")
        time.sleep(T(0.5))
    finally:
        sub.close()
    got = [ln for ln in sub.all if ln.startswith("MSG|")]
    dropped = wait_status(node, "connected")["metrics"]["dropped"]
    # the bound holds (up to mqtt.max_inflight, 32, may be in flight to the
    # bridge's local side rather than queued) and every message is either
    # delivered or counted as dropped
    assert 50 <= len(got) <= 50 + 32 and len(got) + dropped == 120, (len(got), dropped)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    c = CertDir(tmp_path_factory.mktemp("certs62"))
    c.ca("ca")
    c.ca("otherca")
    c.leaf("server", "ca", "localhost", san=SAN_LOCAL, eku="serverAuth")
    c.leaf("client", "ca", "bridge62", eku="clientAuth")
    return c


def mosq_tls(certs, tmp_path, clientcert=False):
    pw = str(tmp_path / "mosq.passwd")
    with open(pw, "w"):
        pass
    subprocess.run(["mosquitto_passwd", "-b", pw, "bridgeuser", "s3cret"], check=True,
                   capture_output=True)
    return ("allow_anonymous false\npassword_file %s\ncafile %s\ncertfile %s\nkeyfile %s\n%s"
            % (pw, certs("ca.pem"), certs("server.pem"), certs("server.key"),
               "require_certificate true\n" if clientcert else ""))


@pytest.mark.parametrize("clientcert", [False, True], ids=["password", "clientcert"])
def test_tls_with_ca_and_password(broker, mosquitto, certs, tmp_path, clientcert):
    m = mosquitto(mosq_tls(certs, tmp_path, clientcert))
    kw = dict(forwards="tls/# -> qos 1", username="bridgeuser", password="s3cret",
              ssl__enable=True, ssl__cacertfile=certs("ca.pem"), ssl__server_name="localhost")
    if clientcert:
        kw.update(ssl__certfile=certs("client.pem"), ssl__keyfile=certs("client.key"))
    node = broker(bridge_conf(m, **kw))
    wait_status(node, "connected")
    # the remote is only reachable over TLS with a password: its subscriber too
    sub = MosquittoSub(m.port, "tls/#", qos=1, extra=(
        "--cafile", certs("ca.pem"), "-u", "bridgeuser", "-P", "s3cret") + (
        ("--cert", certs("client.pem"), "--key", certs("client.key")) if clientcert else ()))
    try:
        mosquitto_pub(node.port, "tls/x", "secure", qos=1)
        assert sub.messages(1) == [("tls/x", "secure")]
    finally:
        sub.close()


def test_tls_wrong_ca_not_connected(broker, mosquitto, certs, tmp_path):
    m = mosquitto(mosq_tls(certs, tmp_path))
    node = broker(bridge_conf(m, forwards="tls/# -> qos 1", username="bridgeuser",
                              password="s3cret", ssl__enable=True,
                              ssl__cacertfile=certs("otherca.pem")))
    b = wait_status(node, "disconnected")
    assert "certificate verify failed" in b["last_error"], b
    node.wait_log("TLS handshake failed")
    assert not [x for x in bridges(node) if x["status"] == "connected"]


def test_mqtt_311_remote(broker, mosquitto, tmp_path):
    """Also: the node requires a password and has an ACL that grants the
    bridge nothing; its local side is trusted all the same."""
    m = mosquitto()
    pw, acl = str(tmp_path / "local.passwd"), str(tmp_path / "local.acl")
    mosq_passwd(pw, "alice", "pw", create=True)
    with open(acl, "w") as f:
        f.write("user alice\ntopic readwrite #\n")
    ov = bridge_conf(m, mqtt_version="3.1.1", forwards="o/# -> v3/ qos 1",
                     subscriptions="i/# -> v3in/ qos 1")
    ov.update({"auth.allow_anonymous": False, "auth.password_file": pw, "auth.acl_file": acl})
    node = broker(ov)
    wait_status(node, "connected")
    cred = ("-u", "alice", "-P", "pw")
    assert re.search(r"New client connected .* as hamqtt-cluster-bridge-r1 \(p2, c0",
                     m.log_text()), m.log_text()[-2000:]
    rsub = MosquittoSub(m.port, "v3/#", qos=1)
    lsub = MosquittoSub(node.port, "v3in/#", qos=1, extra=cred)
    try:
        mosquitto_pub(node.port, "o/1", "a", qos=1, extra=cred)
        mosquitto_pub(m.port, "i/2", "b", qos=1)
        assert rsub.messages(1) == [("v3/o/1", "a")]
        assert lsub.messages(1) == [("v3in/i/2", "b")]
    finally:
        rsub.close()
        lsub.close()


def test_cluster_one_runner_and_takeover(cluster, mosquitto, tmp_path):
    m = mosquitto()
    ov = bridge_conf(m, forwards="cl/# -> qos 1")
    cl = cluster(2, ov)
    cl.join_all()
    cl.wait_all_running()
    n1, n2 = cl.nodes

    def statuses(node):
        return sorted((b["node"], b["status"], b["running_on"]) for b in bridges(node))

    want = [(n1.name, "connected", n1.name), (n2.name, "standby", n1.name)]
    wait_until(lambda: statuses(n2) == want, timeout=10, interval=0.2,
               what="n1 runs the bridge: %r" % (statuses(n2),))
    sub = MosquittoSub(m.port, "cl/#", qos=1)
    try:
        mosquitto_pub(n2.port, "cl/a", "via-n1", qos=1, host=n2.host)
        assert sub.messages(1) == [("cl/a", "via-n1")]
        n1.kill()  # SIGKILL: n2 takes over once it sees n1 stopped
        wait_until(lambda: any(b["node"] == n2.name and b["status"] == "connected"
                               for b in bridges(n2)), timeout=15, interval=0.2,
                   what="n2 runs the bridge")
        mosquitto_pub(n2.port, "cl/b", "via-n2", qos=1, host=n2.host)
        assert sub.messages(1) == [("cl/b", "via-n2")]
    finally:
        sub.close()


@pytest.mark.parametrize("lines,why", [
    ("bridges.mqtt.r1.forwards = \"a/# b/\"\nbridges.mqtt.r1.server = 127.0.0.1:1\n",
     "fail.conf:6: bridges.mqtt.r1.forwards: entry 1: expected '<filter> -> <prefix>"),
    ("bridges.mqtt.r1.server = 127.0.0.1:1\nbridges.mqtt.r1.forwards = \"a/#/b -> x/\"\n",
     "fail.conf:7: bridges.mqtt.r1.forwards: entry 1: not a valid topic filter"),
    ("bridges.mqtt.r1.server = 127.0.0.1:1\nbridges.mqtt.r1.forwards = \"a/# -> x/ qos 3\"\n",
     "fail.conf:7: bridges.mqtt.r1.forwards: entry 1: qos must be 0, 1 or 2"),
    ("bridges.mqtt.r1.forwards = \"a/# -> x/\"\n",
     "fail.conf:6: bridges.mqtt.r1.forwards: bridge 'r1' has no server"),
    ("bridges.mqtt.r1.server = 127.0.0.1:1\nbridges.mqtt.r1.forwardz = x\n",
     "fail.conf:7: bridges.mqtt.r1.forwardz: unknown key"),
    ("bridges.mqtt.r1.server = 127.0.0.1:1\nbridges.mqtt.r1.forwards = # -> x/\n",
     "'#' after a blank starts a comment"),
    ("bridges.other.r1.server = 127.0.0.1:1\n", "fail.conf:6: bridges.other.r1.server: unknown key"),
])
def test_bad_config_refused(tmp_path, lines, why):
    out = start_fails(tmp_path, lines)
    assert why in out, out


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_cluster_redis_buffer_survives_runner_kill(cluster, mosquitto, redis):  # noqa: F811
    """session.store = redis: what the runner buffered while the remote was
    down moves with the bridge's session to the node that takes over."""
    m = mosquitto()
    ov = bridge_conf(m, forwards="rb/# -> qos 1")
    ov.update({"session.store": "redis", "session.redis.server": "127.0.0.1:%d" % redis.port})
    cl = cluster(2, ov)
    cl.join_all()
    cl.wait_all_running()
    n1, n2 = cl.nodes
    wait_until(lambda: any(b["node"] == n1.name and b["status"] == "connected"
                           for b in bridges(n1)), timeout=10, interval=0.2, what="n1 runs it")
    sub = MosquittoSub(m.port, "rb/#", qos=1, extra=("-c", "-i", "rsub62rb"))
    sub.close()
    m.stop()
    wait_until(lambda: any(b["node"] == n1.name and b["status"] == "disconnected"
                           for b in bridges(n1)), timeout=10, interval=0.2, what="n1 down")
    n = 50
    mosquitto_pub(n2.port, "rb/t", qos=1, stdin_lines=["m%02d" % i for i in range(n)],
                  host=n2.host)
    wait_until(lambda: [b["metrics"]["buffered"] for b in bridges(n1)
                        if b["node"] == n1.name] == [n], timeout=10, interval=0.2,
               what="50 buffered on n1")
    n1.kill()
    m.start()
    wait_until(lambda: any(b["node"] == n2.name and b["status"] == "connected"
                           for b in bridges(n2)), timeout=20, interval=0.2,
               what="n2 runs the bridge")
    sub = MosquittoSub(m.port, "rb/#", qos=1, extra=("-c", "-i", "rsub62rb"))
    try:
        wait_until(lambda: "MSG|rb/t|m%02d" % (n - 1) in sub.all, timeout=20, interval=0.1,
                   what="the last buffered message")
        time.sleep(T(0.5))
    finally:
        sub.close()
    got = [ln.split("|", 2)[2] for ln in sub.all if ln.startswith("MSG|")]
    assert sorted(set(got)) == ["m%02d" % i for i in range(n)], got  # none lost
