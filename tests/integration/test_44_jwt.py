"""44 JWT / OAuth 2 access-token authentication (issue 10, items 2 and 3):
auth.jwt.* with HS256 (secret), RS256 / ES256 (PEM public key, JWKS file,
JWKS URL from a local HTTP server this test starts), the refusals (expired,
nbf in the future, iss / aud, bad signature, alg none, algorithm confusion,
unknown kid), the claims ACL, and the password file next to it.

Refusals of a JWT: CONNACK v5 0x86 / 3.1.1 return code 4 and a close
[MQTT-3.2.2-6] ((3.1.1) [MQTT-3.2.2-4]); a log line with the reason, never
the token. A denied SUBSCRIBE gets 0x80 / v5 0x87 [MQTT-3.9.3-2]."""

import http.server
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

import authfx
import jwtmint as jm
import mqttraw as m
from conftest import wait_until
from helpers import MosquittoSub
from mqttraw import T

SECRET = b"hamqtt-test-secret-0123456789abcdef"


def refused(node, version, tok, client_id="r", username="u"):
    """tok as the password: CONNACK 0x86 (3.1.1: 4), then a close."""
    authfx.refused(node, version, 0x86 if version == 5 else 4, client_id,
                   username=username, password=tok)


def accepted(node, version, tok, client_id="ok", username="u"):
    return authfx.accepted(node, version, client_id, username=username, password=tok)


def jwt_metrics(node):
    url = "http://127.0.0.1:%d/metrics" % node.http_port
    with urllib.request.urlopen(url, timeout=T(5)) as r:
        body = r.read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith("hamqtt_jwt_total{"):
            k, v = line.rsplit(" ", 1)
            out[k.split('result="')[1].rstrip('"}')] = int(v)
    return out


def reason(node, client_id):
    return node.wait_log("connection refused client_id=%s " % client_id)[0]


@pytest.fixture(scope="module")
def keys():
    return {"rsa": jm.rsa_key(), "ec": jm.ec_key(), "rsa2": jm.rsa_key()}


@pytest.mark.parametrize("version", [4, 5])
def test_hs256_and_refusals(broker, version):
    """HS256 with auth.jwt.secret: a good token connects (mosquitto_pub -P
    too); expired, nbf in the future, wrong iss / aud, a bad signature and
    alg none are refused 0x86 / 4 with the reason logged and counted in
    /metrics (hamqtt_jwt_total by result); a password that is not a JWT is
    left to the rest of the chain."""
    node = broker({"auth.jwt.secret": SECRET.decode(), "auth.jwt.issuer": "https://idp.test",
                   "auth.jwt.audience": "hamqtt"})
    good = dict(iss="https://idp.test", aud=["x", "hamqtt"])
    accepted(node, version, jm.mint(SECRET, "HS256", jm.claims(**good))).disconnect()
    now = int(time.time())
    cases = {
        "exp": (jm.mint(SECRET, "HS256", dict(good, exp=now - 5)), "expired"),
        "nbf": (jm.mint(SECRET, "HS256", jm.claims(nbf=now + 300, **good)), "nbf"),
        "iss": (jm.mint(SECRET, "HS256", jm.claims(iss="https://evil", aud="hamqtt")), "iss"),
        "aud": (jm.mint(SECRET, "HS256", jm.claims(iss="https://idp.test", aud="other")), "aud"),
        "sig": (jm.mint(b"another-secret", "HS256", jm.claims(**good)), "signature"),
        "none": (jm.mint(None, "none", jm.claims(**good)), "alg none"),
    }
    for cid, (tok, why) in cases.items():
        refused(node, version, tok, client_id=cid)
        line = reason(node, cid)
        assert why in line, line
    assert cases["sig"][0] not in node.log_text()  # never the token
    got = jwt_metrics(node)
    assert got["success"] == 1 and got["expired"] == 2 and got["claims"] == 2, got
    assert got["signature"] == 1 and got["algorithm"] == 1 and got["unknown_kid"] == 0, got
    # not a JWT at all: not this method's answer; the end of the chain
    # refuses the unknown user name (a JWT reason would mean we judged it)
    refused(node, version, "plain-password", client_id="nojwt")
    assert "unknown user name" in reason(node, "nojwt")
    tok = jm.mint(SECRET, "HS256", jm.claims(**good))
    subprocess.run(["mosquitto_pub", "-p", str(node.port), "-t", "t/1", "-m", "x",
                    "-u", "x", "-P", tok], check=True, timeout=T(10))


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_public_key_and_confusion(broker, tmp_path, keys, alg):
    """RS256 / ES256 with a PEM public key (paho 3.1.1 and 5); an HS256 token
    signed with the public key's PEM as the HMAC secret (algorithm confusion)
    is refused, also when smuggled in by a header with two alg members."""
    key = keys["rsa" if alg == "RS256" else "ec"]
    pem = tmp_path / "pub.pem"
    pem.write_bytes(jm.pem_public(key))
    node = broker({"auth.jwt.public_key": str(pem), "auth.allow_anonymous": False})
    import paho.mqtt.client as mqtt
    for version, proto in ((4, mqtt.MQTTv311), (5, mqtt.MQTTv5)):
        tok = jm.mint(key, alg, jm.claims(sub="dev"))
        assert authfx.paho_connack_rcs(node.port, "paho-%d" % version, proto, "dev", tok) == [0]
    confused = jm.mint(jm.pem_public(key), "HS256", jm.claims())
    refused(node, 5, confused, client_id="confused")
    assert "alg does not fit" in reason(node, "confused")
    # the same through a header with two alg members: we must not read the
    # first while libjwt reads the last (HMAC keyed with the public PEM)
    dup = jm.mint_raw_header(jm.pem_public(key), '{"alg":"%s","alg":"HS256"}' % alg, jm.claims())
    refused(node, 5, dup, client_id="dupalg")
    assert "duplicate" in reason(node, "dupalg")
    other = jm.rsa_key() if alg == "RS256" else jm.ec_key()
    refused(node, 4, jm.mint(other, alg, jm.claims()), client_id="otherkey")
    assert "signature" in reason(node, "otherkey")


class JwksServer:
    """A JWK Set on loopback; .keys can be swapped (a key rotation)."""

    def __init__(self, keys):
        self.keys = keys
        self.hits = 0
        self.down = False
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if outer.down:
                    self.send_error(503)
                    return
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/jwks.json" % self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_jwks_url_rotation(broker, keys):
    """A JWKS URL: tokens of its kid (RS256 and ES256) connect; after the
    server rotates to a new key, the first CONNECT with the new kid is
    refused ("kid unknown") and asks for an early refresh, and a retry a few
    seconds later is accepted; the old kid is then refused."""
    srv = JwksServer([jm.jwk(keys["rsa"], "k1"), jm.jwk(keys["ec"], "e1")])
    try:
        node = broker({"auth.jwt.jwks_url": srv.url, "auth.jwt.jwks_refresh": "1h",
                       "auth.allow_anonymous": False})
        accepted(node, 5, jm.mint(keys["rsa"], "RS256", jm.claims(), kid="k1")).disconnect()
        accepted(node, 4, jm.mint(keys["ec"], "ES256", jm.claims(), kid="e1")).disconnect()
        srv.keys = [jm.jwk(keys["rsa2"], "k2")]
        new = jm.mint(keys["rsa2"], "RS256", jm.claims(), kid="k2")
        refused(node, 5, new, client_id="early")
        assert "kid unknown" in reason(node, "early")

        accepted_eventually(node, new, "new kid accepted after the refresh")
        refused(node, 5, jm.mint(keys["rsa"], "RS256", jm.claims(), kid="k1"), client_id="old")
        assert srv.hits >= 2
    finally:
        srv.close()


def accepted_eventually(node, tok, what):
    def ok():
        c = m.RawClient(node.port, version=5)
        try:
            c.send(m.connect("late", version=5, username="u", password=tok))
            p = c.recv()
            return p.type == m.CONNACK and p.rc == 0
        finally:
            c.close()
    wait_until(ok, T(20), interval=1.0, what=what)


def test_jwks_url_down_at_start(broker, keys):
    """The JWKS server answers 503 when the node starts: the node starts
    anyway (a warning), tokens are refused, and once the server is back the
    thread's retry (every 5 s while failing) brings the keys; then it goes
    back to auth.jwt.jwks_refresh."""
    srv = JwksServer([jm.jwk(keys["ec"], "e1")])
    srv.down = True
    try:
        node = broker({"auth.jwt.jwks_url": srv.url, "auth.jwt.jwks_refresh": "1h"})
        node.wait_log("JWKS fetch failed")
        tok = jm.mint(keys["ec"], "ES256", jm.claims(), kid="e1")
        refused(node, 5, tok, client_id="nokeys")
        srv.down = False
        accepted_eventually(node, tok, "keys fetched after the server came back")
        # then the configured interval (1h) again, not the failure retry's 5 s
        hits = srv.hits
        time.sleep(8)
        assert srv.hits == hits, "fetched %d times in 8 s with jwks_refresh = 1h" % (srv.hits - hits)
    finally:
        srv.close()


@pytest.mark.parametrize("version", [4, 5])
def test_claims_acl_and_password_file(broker, tmp_path, keys, version):
    """A JWKS file; the token's acl claim (EMQX's list form, first match
    wins) with no auth.acl_file: its allowed publish is delivered, its
    denied subscribe gets 0x80 / v5 0x87, and the old object form works
    too; a password-file user still connects next to JWT clients."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jm.jwk(keys["rsa"], "k1")]}))
    pw = tmp_path / "passwd"
    authfx.mosq_passwd(str(pw), "alice", "secret", create=True)
    node = broker({"auth.jwt.jwks_file": str(jwks), "auth.password_file": str(pw),
                   "auth.allow_anonymous": False})
    acl = [{"permission": "allow", "action": "publish", "topic": "dev/${clientid}/#"},
           {"permission": "allow", "action": "subscribe", "topic": "cmd/#"},
           {"permission": "deny", "action": "all", "topic": "#"}]
    tok = jm.mint(keys["rsa"], "RS256", jm.claims(acl=acl), kid="k1")
    sub = MosquittoSub(node.port, "dev/#", qos=1, extra=["-u", "alice", "-P", "secret"])
    try:
        c = accepted(node, version, tok, client_id="d1")
        deny = 0x87 if version == 5 else 0x80
        assert c.subscribe(("cmd/x", 1), ("dev/#", 1), ("other", 0)).codes == [1, deny, deny]
        c.publish("dev/d1/temp", b"21", qos=1)
        c.publish("dev/d2/temp", b"no", qos=1)
        c.publish("dev/d1/end", b"e", qos=1)
        assert sub.messages(2) == [("dev/d1/temp", "21"), ("dev/d1/end", "e")]
        c.disconnect()
    finally:
        sub.close()
    old = jm.mint(keys["rsa"], "RS256", jm.claims(acl={"sub": ["a/#"], "pub": ["b/#"]}), kid="k1")
    c = accepted(node, version, old, client_id="d2")
    deny = 0x87 if version == 5 else 0x80
    assert c.subscribe(("a/1", 0), ("b/1", 0)).codes == [0, deny]
    c.disconnect()
    refused(node, version, "not-a-jwt-and-not-alice", client_id="nobody", username="mallory")
    refused(node, version, jm.mint(keys["rsa"], "RS256", jm.claims(), kid="zz"), client_id="kid")
    assert "kid unknown" in reason(node, "kid")


def test_token_in_username(broker):
    """auth.jwt.from = username: the token is the user name; the connection's
    user name becomes the token's username/sub claim (%u in an ACL file), and a
    refused token is never logged."""
    node = broker({"auth.jwt.secret": SECRET.decode(), "auth.jwt.from": "username",
                   "auth.allow_anonymous": False})
    tok = jm.mint(SECRET, "HS256", jm.claims(sub="carol"))
    c = m.RawClient(node.port, version=5)
    c.connect("u1", username=tok)
    c.disconnect()
    bad = jm.mint(b"wrong", "HS256", jm.claims(sub="carol"))
    c = m.RawClient(node.port, version=5)
    c.send(m.connect("u2", version=5, username=bad))
    assert c.wait_closed()[0].rc == 0x86
    c.close()
    reason(node, "u2")
    assert bad not in node.log_text() and tok not in node.log_text()


def test_bad_jwt_config_fails_start(tmp_path, keys):
    """A JWKS URL that is not http(s) stops the start with file:line and the
    key; an unreadable public key, a JWKS file with a bad key and a
    non-base64 secret stop it with the key's name."""
    from startfail import start_fails
    out = start_fails(tmp_path, 'auth.jwt.jwks_url = "ftp://idp/jwks"\n')
    assert "auth.jwt.jwks_url" in out and "fail.conf:6" in out, out
    out = start_fails(tmp_path, "auth.jwt.public_key = %s\n" % (tmp_path / "missing.pem"))
    assert "auth.jwt.public_key" in out and "cannot open" in out, out
    bad = tmp_path / "jwks.json"
    bad.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}))
    out = start_fails(tmp_path, "auth.jwt.jwks_file = %s\n" % bad)
    assert "auth.jwt.jwks_file" in out and "key 1" in out, out
    out = start_fails(tmp_path, 'auth.jwt.secret = "***"\nauth.jwt.secret_base64 = true\n')
    assert "auth.jwt.secret" in out, out


def test_sighup_reloads_jwks_file(broker, tmp_path, keys):
    """SIGHUP re-reads auth.jwt.jwks_file: a rotated key is accepted and the
    removed one refused; a broken file is refused and the old keys stay;
    connected clients stay connected."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jm.jwk(keys["rsa"], "k1")]}))
    node = broker({"auth.jwt.jwks_file": str(jwks), "auth.allow_anonymous": False})
    t1 = jm.mint(keys["rsa"], "RS256", jm.claims(), kid="k1")
    t2 = jm.mint(keys["ec"], "ES256", jm.claims(), kid="k2")
    keep = accepted(node, 5, t1, client_id="keep")
    refused(node, 5, t2, client_id="k2early")
    jwks.write_text(json.dumps({"keys": [jm.jwk(keys["ec"], "k2")]}))
    os.kill(node.pid, signal.SIGHUP)
    node.wait_log("reloaded JWT keys")
    accepted(node, 4, t2, client_id="k2late").disconnect()
    refused(node, 4, t1, client_id="k1late")
    jwks.write_text("{broken")
    os.kill(node.pid, signal.SIGHUP)
    line = node.wait_log("reload refused")[0]
    assert "auth.jwt.jwks_file" in line, line
    accepted(node, 5, t2, client_id="k2still").disconnect()
    assert keep.ping().type == m.PINGRESP
