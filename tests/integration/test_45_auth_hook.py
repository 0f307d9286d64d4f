"""45 authentication by a server (issue 10, item 2): the HTTP hook
(auth.http.*, EMQX 5's contract) and Redis (auth.redis.*), both asked on the
auth threads so that a slow server never blocks a worker.

The hook is a threaded http.server on loopback started by each test; it
answers by user name: allow / deny / ignore (200 + JSON result), nocontent
(204), err (500), slow* (sleeps, then allows). Refusals are CONNACKs with
v5 0x86 Bad User Name or Password (3.1.1 return code 4) [MQTT-3.2.2-6]
((3.1.1) [MQTT-3.2.2-4]), then a close. Redis is a real redis-server
(redisfx.py) with users stored under mqtt_user:<name>."""

import hashlib
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import mqttraw as m
from authfx import accepted, refused
from conftest import wait_until
from mqttraw import T
from promtext import value
from startfail import start_fails
from redisfx import RedisServer, command, redis  # noqa: F401 (fixture)

RC_BAD_CREDS = 0x86


class Hook:
    """The HTTP hook: records each request (method, path, JSON body or
    query) and answers by the user name in it."""

    def __init__(self, slow_s=3.0):
        self.calls = []
        self.slow_s = slow_s
        self.lock = threading.Lock()
        hook = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _handle(self, body):
                q = urllib.parse.urlparse(self.path).query
                req = json.loads(body) if body.startswith(b"{") else \
                    {k: v[0] for k, v in urllib.parse.parse_qs(q or body.decode()).items()}
                with hook.lock:
                    hook.calls.append((self.command, self.path, req))
                user = req.get("username", "")
                if user.startswith("slow"):
                    time.sleep(hook.slow_s)
                    user = "allow"
                if user == "nocontent":
                    self.send_response(204)
                    self.end_headers()
                    return
                if user == "err":
                    self.send_response(500)
                    self.end_headers()
                    return
                su = user == "super"
                if su:
                    user = "allow"
                out = json.dumps({"result": user if user in ("allow", "deny") else "ignore",
                                  "is_superuser": su}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                self._handle(self.rfile.read(n))

            def do_GET(self):
                self._handle(b"")

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d/auth" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def hits(self, user=None):
        with self.lock:
            return len([c for c in self.calls if user is None or c[2].get("username") == user])

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def mcount(b, method, result):
    return value(b, "hamqtt_auth_method_total", method=method, result=result)


@pytest.mark.parametrize("version", [4, 5])
def test_http_hook_answers(broker, hook, version):
    """200 allow / 204 accept; 200 deny refuses (0x86, v3 4); 200 ignore
    and 500 leave the client to the next method (none here: a user name no
    method accepted is refused). The hook gets client id, user name,
    password and peer host as JSON; one log line per refusal names the
    method and the reason; /metrics counts per method."""
    node = broker({"auth.http.url": hook.url})
    bad = RC_BAD_CREDS if version == 5 else 4
    accepted(node, version, "c-allow", username="allow", password="pw1").disconnect()
    accepted(node, version, "c-204", username="nocontent", password="x").disconnect()
    refused(node, version, bad, "c-deny", username="deny", password="pw2")
    refused(node, version, bad, "c-ignore", username="ignore", password="x")
    refused(node, version, bad, "c-err", username="err", password="x")
    meth, path, req = [c for c in hook.calls if c[2].get("clientid") == "c-allow"][0]
    assert meth == "POST" and path == "/auth"
    assert req == {"clientid": "c-allow", "username": "allow", "password": "pw1",
                   "peerhost": "127.0.0.1"}, req
    line = node.wait_log("connection refused client_id=c-deny")[0]
    assert "http hook: deny" in line and "username=deny" in line, line
    assert "pw2" not in node.log_text()
    assert "status 500" in node.wait_log("connection refused client_id=c-err")[0]
    # the hook's outage: one warning when it starts (test_50: not one per CONNECT)
    node.wait_log("auth: HTTP hook failing (http hook: status 500, client_id=c-err)")
    assert mcount(node, "http", "allow") == 2
    assert mcount(node, "http", "deny") == 1
    assert mcount(node, "http", "ignore") == 2


def test_refused_client_will_not_published(broker, hook):
    """Authentication is now the last check of CONNECT, after the will is
    parsed: a client the hook denies never publishes its will."""
    node = broker({"auth.http.url": hook.url})
    sub = accepted(node, 4, "will-sub", username="allow", password="p")
    sub.subscribe("will/#", qos=1)
    refused(node, 4, 4, "will-deny", username="deny", password="x", will_topic="will/x",
            will_payload=b"gone", will_qos=1)
    sub.expect_nothing(1.0, ptype=m.PUBLISH)
    sub.disconnect()


def test_http_get_and_template(broker, hook):
    """auth.http.method = get with a body template: the values are URL
    encoded into the query string; headers are sent."""
    node = broker({"auth.http.url": hook.url, "auth.http.method": "get",
                   "auth.http.body": "u=${username}&c=${clientid}&username=${username}",
                   "auth.http.headers": "X-Test: yes"})
    accepted(node, 4, "id with space&=", username="allow", password="p").disconnect()
    meth, path, req = hook.calls[0]
    assert meth == "GET" and req == {"u": "allow", "c": "id with space&=", "username": "allow"}, \
        (path, req)


def test_http_superuser_skips_acl(broker, hook, tmp_path):
    """"is_superuser": true in the hook's answer: no ACL applies to that
    client; an ordinary user of the hook is held to the ACL file."""
    acl = tmp_path / "acl"
    acl.write_text("user nobody\ntopic read nothing/#\n")
    node = broker({"auth.http.url": hook.url, "auth.acl_file": str(acl)})
    su = accepted(node, 5, "su", username="super", password="p")
    assert su.subscribe("a/b", qos=0).codes == [0]
    node.wait_log("client_id=su authenticated as a superuser")
    plain = accepted(node, 5, "plain", username="allow", password="p")
    assert plain.subscribe("a/b", qos=0).codes == [0x87]
    su.disconnect()
    plain.disconnect()


def test_http_slow_hook_blocks_no_worker(broker, hook):
    """With one worker, while the hook sleeps 3 s over one CONNECT, two
    other clients connect and exchange messages promptly. The slow client
    pipelined SUBSCRIBE and PUBLISH after its CONNECT: they are processed
    after its CONNACK, in order (SUBACK, then its own message)."""
    node = broker({"auth.http.url": hook.url, "node.workers": 1})
    slow = m.RawClient(node.port, version=5)
    t0 = time.monotonic()
    slow.send(m.connect("slow-1", version=5, username="slow", password="p")
              + m.subscribe(1, [("pipe/t", 0)], version=5)
              + m.publish("pipe/t", b"after-connack", version=5))
    wait_until(lambda: hook.hits("slow") == 1, 5, what="the hook asked about slow")
    sub = accepted(node, 4, "fast-sub", username="allow", password="p")
    sub.subscribe("f/t", qos=1)
    pub = accepted(node, 4, "fast-pub", username="allow", password="p")
    pub.publish("f/t", b"hello", qos=1)
    got = sub.expect(m.PUBLISH, timeout=2)
    assert got.payload == b"hello"
    fast = time.monotonic() - t0
    assert fast < 2.5, "other clients waited %.1f s for the slow hook" % fast
    assert slow.try_recv(0.1) is None  # nothing yet for the slow one
    ack = slow.recv(timeout=6)
    assert ack.type == m.CONNACK and ack.rc == 0, ack
    assert time.monotonic() - t0 >= 2.5
    assert slow.recv(timeout=3).type == m.SUBACK
    p = slow.recv(timeout=3)
    assert p.type == m.PUBLISH and p.payload == b"after-connack", p
    for c in (slow, sub, pub):
        c.disconnect()


def test_http_client_gone_while_pending(broker, hook):
    """Clients that go away while their hook call is out: their connections
    are closed by mqtt.connect_timeout (2 s) before the answers come (3 s);
    the late answers find no connection and are dropped (ASan: no use after
    free), while new connections, which may reuse the memory, are served."""
    node = broker({"auth.http.url": hook.url, "node.workers": 1,
                   "mqtt.connect_timeout": "2s", "auth.http.timeout": "10s"})
    for i in range(3):
        c = m.RawClient(node.port, version=4)
        c.send(m.connect("gone-%d" % i, username="slow", password="p"))
        wait_until(lambda: hook.hits("slow") == i + 1, 5, what="hook call %d" % i)
        c.close()
    node.wait_log("authentication not answered within mqtt.connect_timeout", count=3,
                  timeout=6)
    others = [accepted(node, 4, "next-%d" % i, username="allow", password="p") for i in range(3)]
    node.wait_log("auth: an answer for a connection that is gone", count=3, timeout=8)
    for c in others:
        c.ping()
        c.disconnect()
    accepted(node, 5, "after", username="allow", password="p").disconnect()
    assert not node.log_lines("client connected client_id=gone-")


def test_http_timeout_then_next_method(broker, hook, redis):  # noqa: F811
    """A hook slower than auth.http.timeout counts as a timeout and the next
    method (Redis) decides; /metrics counts the timeout."""
    command(redis.port, "HSET", "mqtt_user:slowuser", "password_hash", "pw")
    node = broker({"auth.http.url": hook.url, "auth.http.timeout": "1s",
                   "auth.redis.server": "127.0.0.1:%d" % redis.port,
                   "auth.redis.password_hash": "plain"})
    t0 = time.monotonic()
    accepted(node, 5, "to", username="slowuser", password="pw").disconnect()
    assert time.monotonic() - t0 < T(3)
    refused(node, 5, RC_BAD_CREDS, "to2", username="slowuser", password="bad")
    assert mcount(node, "http", "timeout") == 2
    assert mcount(node, "redis", "allow") == 1
    assert mcount(node, "redis", "deny") == 1


def test_connect_timeout_while_pending(broker, hook):
    """mqtt.connect_timeout still applies while the chain waits: a hook
    slower than it gets the connection closed without a CONNACK."""
    hook.slow_s = 6
    node = broker({"auth.http.url": hook.url, "auth.http.timeout": "20s",
                   "mqtt.connect_timeout": "2s"})
    c = m.RawClient(node.port, version=4)
    t0 = time.monotonic()
    c.send(m.connect("ct", username="slow", password="p"))
    got = c.wait_closed(timeout=8)
    assert got == [], got
    assert time.monotonic() - t0 < T(5)
    node.wait_log("authentication not answered within mqtt.connect_timeout")


def test_http_cache(broker, hook):
    """auth.http.cache_ttl: the same client id, user name and password are
    answered from the cache (the hook is not asked again); another password
    is asked; an ignore answer is not cached."""
    node = broker({"auth.http.url": hook.url, "auth.http.cache_ttl": "60s"})
    for _ in range(3):
        accepted(node, 4, "cached", username="allow", password="p1").disconnect()
    assert hook.hits("allow") == 1
    accepted(node, 4, "cached", username="allow", password="p2").disconnect()
    assert hook.hits("allow") == 2
    for _ in range(2):
        refused(node, 4, 4, "cached-deny", username="deny", password="x")
    assert hook.hits("deny") == 1
    for _ in range(2):
        refused(node, 4, 4, "cached-ign", username="ignore", password="x")
    assert hook.hits("ignore") == 2


def pbkdf2_hex(pw, salt, it):
    return hashlib.pbkdf2_hmac("sha512", pw.encode(), salt.encode(), it).hex()


@pytest.mark.parametrize("alg,pos", [("plain", "disable"), ("sha256", "prefix"),
                                     ("sha512", "suffix"), ("pbkdf2", "prefix")])
def test_redis_users(broker, redis, alg, pos):  # noqa: F811
    """Users stored in Redis (HMGET mqtt_user:<name> password_hash salt) with
    plain, salted sha256 (salt first), salted sha512 (salt last) and pbkdf2
    hashes: the right password connects, a wrong one is refused 0x86 (v3
    4), an unknown user falls to the end of the chain (refused)."""
    salt = "s4lt"
    if alg == "plain":
        h = "secret"
    elif alg == "pbkdf2":
        h = pbkdf2_hex("secret", salt, 1000)
    else:
        data = (salt + "secret") if pos == "prefix" else ("secret" + salt)
        h = hashlib.new(alg, data.encode()).hexdigest()
    command(redis.port, "HSET", "mqtt_user:ann", "password_hash", h, "salt", salt)
    node = broker({"auth.redis.server": "127.0.0.1:%d" % redis.port,
                   "auth.redis.password_hash": alg, "auth.redis.salt_position": pos,
                   "auth.redis.pbkdf2_iterations": 1000})
    accepted(node, 5, "r1", username="ann", password="secret").disconnect()
    accepted(node, 4, "r2", username="ann", password="secret").disconnect()
    refused(node, 5, RC_BAD_CREDS, "r3", username="ann", password="Secret")
    refused(node, 4, 4, "r4", username="ann", password="secret2")
    refused(node, 5, RC_BAD_CREDS, "r5", username="nobody", password="secret")
    line = node.wait_log("connection refused client_id=r3")[0]
    assert "wrong password (redis)" in line, line


def test_redis_down_and_back(broker, redis, tmp_path):  # noqa: F811
    """Redis stopped: CONNECTs go to the next method at once (here the end
    of the chain: refused), with one log line for the outage, not one per
    CONNECT; restarted on the same port: works again."""
    command(redis.port, "HSET", "mqtt_user:bo", "password_hash", "pw")
    node = broker({"auth.redis.server": "127.0.0.1:%d" % redis.port,
                   "auth.redis.password_hash": "plain"})
    accepted(node, 4, "b1", username="bo", password="pw").disconnect()
    port = redis.port
    redis.kill()
    for i in range(4):
        t0 = time.monotonic()
        refused(node, 4, 4, "down-%d" % i, username="bo", password="pw")
        assert time.monotonic() - t0 < T(3)
    # one line for the outage; per CONNECT only its own refusal line
    noisy = [ln for ln in node.log_lines("unavailable")
             if "[debug]" not in ln and "client_id=down-" not in ln]
    assert len(noisy) == 1 and "[warning]" in noisy[0], noisy
    line = node.wait_log("connection refused client_id=down-0")[0]
    assert "unknown user name (redis: unavailable)" in line, line
    r2 = RedisServer(redis.dir, port=port).start()
    try:
        command(port, "HSET", "mqtt_user:bo", "password_hash", "pw")

        def ok():
            c = m.RawClient(node.port, version=4)
            try:
                c.send(m.connect("back", username="bo", password="pw"))
                p = c.recv(timeout=3)
                return p.type == m.CONNACK and p.rc == 0
            except (m.Closed, m.NoPacket):
                return False
            finally:
                c.close()
        wait_until(ok, 15, 0.3, what="redis authentication back")
        node.wait_log("is back")
    finally:
        r2.kill()


@pytest.mark.parametrize("line,key", [
    ("auth.http.url = ftp://127.0.0.1/x", "auth.http.url"),
    ("auth.http.body = {\"u\": \"${user}\"}", "auth.http.body"),
    ("auth.http.method = put", "auth.http.method"),
    ("auth.redis.server = nohost", "auth.redis.server"),
    ("auth.redis.cmd = GET mqtt_user:${username}", "auth.redis.cmd"),
    ("auth.redis.password_hash = md5", "auth.redis.password_hash"),
])
def test_bad_config_fails_start(tmp_path, line, key):
    """A bad auth.http / auth.redis value stops the start with file:line and
    the key."""
    out = start_fails(tmp_path, line + "\n")
    assert "%s:6: %s:" % (tmp_path / "fail.conf", key) in out, out


def test_default_config_untouched(node):
    """No auth.http / auth.redis: nothing is asked, anonymous clients
    connect, no method lines in /metrics."""
    accepted(node, 4, "anon").disconnect()
    assert mcount(node, "http", "allow") is None
    assert mcount(node, "redis", "allow") is None
