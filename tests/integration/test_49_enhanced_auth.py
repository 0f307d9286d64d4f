"""49 MQTT v5 enhanced authentication (issue 10 item 2): SCRAM-SHA-512 over
AUTH packets against a password file written by mosquitto_passwd (a $7$
entry is SCRAM's SaltedPassword, so the broker never sees the password).

The SCRAM client here is written from RFC 5802 with Python's hashlib/hmac,
sharing nothing with the broker. Flow: CONNECT with Authentication Method and
Data (client-first) -> AUTH 0x18 (server-first) [MQTT-4.12.0-2] -> AUTH 0x18
(client-final) [MQTT-4.12.0-3] -> CONNACK 0x00 with the server signature,
which the client verifies; every AUTH and the CONNACK carry the CONNECT's
method [MQTT-4.12.0-5]."""

import base64
import hashlib
import hmac
import os
import time

import pytest

import mqttraw as m
from authfx import mosq_passwd
from mqttraw import T

METHOD = "SCRAM-SHA-512"


def b64(b):
    return base64.b64encode(b).decode()


def saslname(u):
    return u.replace("=", "=3D").replace(",", "=2C")


class Scram:
    """The client side of SCRAM-SHA-512 (RFC 5802, no channel binding)."""

    def __init__(self, user, password, gs2="n,,"):
        self.user, self.password, self.gs2 = user, password, gs2
        self.cnonce = b64(os.urandom(18))
        self.bare = "n=%s,r=%s" % (saslname(user), self.cnonce)
        self.server_sig = None
        self.attrs = None

    def first(self):
        return (self.gs2 + self.bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        self.attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        nonce = self.attrs["r"]
        assert nonce.startswith(self.cnonce) and len(nonce) > len(self.cnonce), sf
        salt, it = base64.b64decode(self.attrs["s"]), int(self.attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha512", self.password.encode(), salt, it)
        ck = hmac.new(salted, b"Client Key", "sha512").digest()
        sk = hashlib.sha512(ck).digest()
        without = "c=%s,r=%s" % (b64(self.gs2.encode()), nonce)
        am = ",".join([self.bare, sf, without]).encode()
        sig = hmac.new(sk, am, "sha512").digest()
        proof = bytes(a ^ b for a, b in zip(ck, sig))
        server_key = hmac.new(salted, b"Server Key", "sha512").digest()
        self.server_sig = hmac.new(server_key, am, "sha512").digest()
        return (without + ",p=" + b64(proof)).encode()

    def verify(self, server_final):
        assert server_final == b"v=" + b64(self.server_sig).encode(), server_final


@pytest.fixture
def pwfile(tmp_path):
    path = str(tmp_path / "passwd")
    mosq_passwd(path, "alice", "secret", create=True)
    mosq_passwd(path, "bob", "b-pw")
    mosq_passwd(path, "c,d=e", "odd name")
    return path


def auth_pkt(rc, data=None, method=METHOD):
    props = []
    if method is not None:
        props.append((m.AUTH_METHOD, method))
    if data is not None:
        props.append((m.AUTH_DATA, data))
    return m.fixed(0xF0, m.u8(rc) + m.encode_props(props))


def start_scram(node, s, cid, **kw):
    """CONNECT with client-first; returns (client, the server's AUTH 0x18)."""
    c = m.RawClient(node.port, version=5)
    c.send(m.connect(cid, version=5, props=[(m.AUTH_METHOD, METHOD), (m.AUTH_DATA, s.first())], **kw))
    a = c.recv()
    assert a.type == m.AUTH and a.rc == 0x18, a                # [MQTT-4.12.0-2]
    assert a.props.get(m.AUTH_METHOD) in (METHOD, METHOD.encode()), a  # [MQTT-4.12.0-5]
    return c, a


def data_of(p):
    d = p.props.get(m.AUTH_DATA)
    return d if isinstance(d, bytes) else d.encode()


def scram_connect(node, user, pw, cid, **kw):
    s = Scram(user, pw)
    c, a = start_scram(node, s, cid, **kw)
    c.send(auth_pkt(0x18, s.final(data_of(a))))               # [MQTT-4.12.0-3]
    ack = c.recv()
    assert ack.type == m.CONNACK, ack
    return c, ack, s


def test_scram_success(broker, pwfile):
    """A mosquitto_passwd user logs in with SCRAM-SHA-512; the CONNACK carries
    the method and the server signature, which the client verifies; the user
    is the connection's user name (the ACL applies to it); a name with ','
    and '=' (saslname escapes) works too."""
    acl = os.path.join(os.path.dirname(pwfile), "acl")
    with open(acl, "w") as f:
        f.write("user alice\ntopic readwrite a/#\nuser c,d=e\ntopic readwrite c/#\n")
    node = broker({"auth.password_file": pwfile, "auth.acl_file": acl,
                   "auth.acl.no_match": "deny"})
    c, ack, s = scram_connect(node, "alice", "secret", "sc1")
    assert ack.rc == 0, ack
    assert ack.props.get(m.AUTH_METHOD) in (METHOD, METHOD.encode()), ack  # [MQTT-4.12.0-5]
    s.verify(data_of(ack))
    assert int(s.attrs["i"]) == 101 and len(base64.b64decode(s.attrs["s"])) == 12
    assert c.subscribe("a/x", qos=1).codes == [1]
    assert c.subscribe("b/x", qos=1).codes == [0x87]          # ACL of user alice
    c.publish("a/x", b"hi", qos=1)
    assert c.expect(m.PUBLISH).payload == b"hi"
    line = node.wait_log("client connected client_id=sc1")[0]
    assert "username=alice" in line, line
    c.close()
    c2, ack2, s2 = scram_connect(node, "c,d=e", "odd name", "sc2")
    assert ack2.rc == 0, ack2
    s2.verify(data_of(ack2))
    assert c2.subscribe("c/1").codes == [0]
    c2.close()


def test_scram_wrong_password_and_unknown_user(broker, pwfile):
    """A wrong password and an unknown user both run the whole exchange
    (an unknown user gets a decoy salt, the same each time, and the file's
    iteration count) and end in CONNACK 0x86 and a close; a log line says
    which it was."""
    node = broker({"auth.password_file": pwfile})
    c, ack, _ = scram_connect(node, "alice", "Secret", "wrong")
    assert ack.rc == 0x86 and not ack.session_present, ack
    c.wait_closed()
    salts = []
    for i in range(2):
        c, ack, s = scram_connect(node, "mallory", "x", "unk%d" % i)
        assert ack.rc == 0x86, ack
        assert int(s.attrs["i"]) == 101
        salts.append(s.attrs["s"])
        c.wait_closed()
    assert salts[0] == salts[1] and len(base64.b64decode(salts[0])) == 12
    assert "wrong password (SCRAM proof)" in node.wait_log("connection refused client_id=wrong")[0]
    assert "unknown user" in node.wait_log("connection refused client_id=unk0")[0]


def test_unknown_method(broker, pwfile, tmp_path):
    """An unsupported method gets CONNACK 0x8C and a close [MQTT-4.12.0-1];
    SCRAM without a password file is unsupported too."""
    node = broker({"auth.password_file": pwfile})
    c = m.RawClient(node.port, version=5)
    c.send(m.connect("um", version=5, props=[(m.AUTH_METHOD, "GS2-KRB5")]))
    got = c.wait_closed()
    assert [p.type for p in got] == [m.CONNACK] and got[0].rc == 0x8C, got
    plain = broker()
    c = m.RawClient(plain.port, version=5)
    c.send(m.connect("um2", version=5, props=[(m.AUTH_METHOD, METHOD),
                                              (m.AUTH_DATA, Scram("alice", "secret").first())]))
    got = c.wait_closed()
    assert [p.type for p in got] == [m.CONNACK] and got[0].rc == 0x8C, got


@pytest.mark.parametrize("what", ["publish", "auth19", "other_method", "connect", "no_method",
                                  "garbage"])
def test_auth_out_of_sequence(broker, pwfile, what):
    """While the exchange runs only AUTH 0x18 with the CONNECT's method (or
    DISCONNECT) is accepted [MQTT-3.1.2-30] [MQTT-4.12.0-3] [MQTT-4.12.0-5]:
    anything else gets CONNACK 0x82 (no DISCONNECT before CONNACK
    [MQTT-3.14.0-1]) and a close; bad SCRAM data gets 0x87."""
    node = broker({"auth.password_file": pwfile})
    s = Scram("alice", "secret")
    c, a = start_scram(node, s, "seq-" + what)
    final = s.final(data_of(a))
    pkt = {
        "publish": m.publish("t", b"x"),
        "auth19": auth_pkt(0x19, final),
        "other_method": auth_pkt(0x18, final, method="SCRAM-SHA-256"),
        "connect": m.connect("again", version=5),
        "no_method": auth_pkt(0x18, final, method=None),
        "garbage": auth_pkt(0x18, b"c=biws,r=nope,p=AAAA"),
    }[what]
    c.send(pkt)
    got = c.wait_closed()
    assert [p.type for p in got] == [m.CONNACK], got
    want = 0x87 if what == "garbage" else 0x82
    assert got[0].rc == want, got
    node.wait_log("connection refused client_id=seq-" + what)


def test_auth_without_method_and_v3_unaffected(broker, pwfile):
    """No method in CONNECT: an AUTH is a protocol error (DISCONNECT 0x82)
    [MQTT-4.12.0-7] and CONNACK has no Authentication Method
    [MQTT-4.12.0-6]; 3.1.1 clients and v5 password clients log in with the
    same file as before; an AUTH from a 3.1.1 client closes it."""
    node = broker({"auth.password_file": pwfile})
    c = m.RawClient(node.port, version=5)
    ack = c.connect("nm", username="alice", password="secret")
    assert m.AUTH_METHOD not in ack.props and m.AUTH_DATA not in ack.props, ack
    c.send(auth_pkt(0x19, b"n,,n=alice,r=abc"))
    c.expect_disconnect(0x82)
    c3 = m.RawClient(node.port, version=4)
    c3.connect("v3", username="alice", password="secret")
    c3.send(auth_pkt(0x18, b"x"))
    assert c3.wait_closed() == []
    c3 = m.RawClient(node.port, version=4)
    c3.connect("v3b", username="alice", password="wrong", rc=4)


def test_exchange_bounded_by_connect_timeout(broker, pwfile):
    """A client that stops in the middle of the exchange is closed by
    mqtt.connect_timeout like one that never sends CONNECT; the log says so."""
    node = broker({"auth.password_file": pwfile, "mqtt.connect_timeout": "2s"})
    s = Scram("alice", "secret")
    c, _ = start_scram(node, s, "slow")
    t0 = time.monotonic()
    got = c.wait_closed(timeout=15)
    assert got == [], got
    assert time.monotonic() - t0 >= 1.0
    node.wait_log("enhanced authentication not finished within mqtt.connect_timeout")


def reauth(c, user, pw):
    s = Scram(user, pw)
    c.send(auth_pkt(0x19, s.first()))                          # [MQTT-4.12.1-1]
    a = c.expect(m.AUTH)
    assert a.rc == 0x18, a
    c.send(auth_pkt(0x18, s.final(data_of(a))))
    return s


def test_reauthentication(broker, pwfile):
    """AUTH 0x19 on a live connection runs the exchange again and ends in
    AUTH 0x00 with the server signature; the connection goes on. A wrong
    password or another user ends it with DISCONNECT 0x87 [MQTT-4.12.1-2]."""
    node = broker({"auth.password_file": pwfile})
    c, ack, _ = scram_connect(node, "alice", "secret", "re1")
    assert ack.rc == 0
    c.subscribe("r/#", qos=1)
    s = reauth(c, "alice", "secret")
    done = c.expect(m.AUTH)
    assert done.rc == 0 and done.props.get(m.AUTH_METHOD) in (METHOD, METHOD.encode()), done
    s.verify(data_of(done))
    c.publish("r/1", b"still", qos=1)
    assert c.expect(m.PUBLISH).payload == b"still"
    reauth(c, "alice", "nope")
    c.expect_disconnect(0x87)
    c, ack, _ = scram_connect(node, "alice", "secret", "re2")
    reauth(c, "bob", "b-pw")
    c.expect_disconnect(0x87)
    node.wait_log("re-authentication failed client_id=re2")


def test_disconnect_during_exchange_no_will(broker, pwfile):
    """A client that gives up with DISCONNECT (even 0x04, with will) in the
    middle of the exchange is closed; it never connected, so its will is not
    published and nothing else is disturbed."""
    node = broker({"auth.password_file": pwfile})
    sub = m.RawClient(node.port, version=5)
    sub.connect("watcher", username="bob", password="b-pw")
    sub.subscribe("will/#", qos=1)
    s = Scram("alice", "secret")
    c, _ = start_scram(node, s, "quitter", will_topic="will/q", will_payload=b"gone")
    c.send(m.disconnect(0x04, version=5))
    assert c.wait_closed() == []
    node.wait_log("client sent DISCONNECT during enhanced authentication")
    sub.expect_nothing(timeout=1.0, ptype=m.PUBLISH)
    sub.send(m.pingreq())
    sub.expect(m.PINGRESP)


def test_banned_user_name_applies_to_scram_user(broker, pwfile):
    """A user banned by user name is refused 0x8A even when the name comes
    only from SCRAM (CONNECT without a User Name field)."""
    import json
    import urllib.request
    from conftest import api_headers
    node = broker({"auth.password_file": pwfile})
    req = urllib.request.Request(
        "http://127.0.0.1:%d/api/v5/banned" % node.http_port, method="POST",
        data=json.dumps({"as": "username", "who": "alice"}).encode(),
        headers={"Content-Type": "application/json", **api_headers(node.data_dir)})
    with urllib.request.urlopen(req, timeout=T(5)) as r:
        assert r.status == 200
    c, ack, _ = scram_connect(node, "alice", "secret", "banned-a")
    assert ack.rc == 0x8A and m.AUTH_METHOD not in ack.props, ack
    c.wait_closed()
    c, ack, s = scram_connect(node, "bob", "b-pw", "ok-b")
    assert ack.rc == 0
    s.verify(data_of(ack))


def test_user_name_field_must_match(broker, pwfile):
    """A User Name field naming the SCRAM user is fine; naming someone else
    is refused 0x87 (the connection's user, and its ACL, must be the one
    authenticated)."""
    node = broker({"auth.password_file": pwfile})
    c, ack, _ = scram_connect(node, "alice", "secret", "same", username="alice")
    assert ack.rc == 0, ack
    c.close()
    c, ack, _ = scram_connect(node, "alice", "secret", "other", username="bob")
    assert ack.rc == 0x87, ack
    c.wait_closed()
    assert "names another user" in node.wait_log("connection refused client_id=other")[0]
