"""41 authentication and authorization (issue 10, items 2 and 3): the password
file in Mosquitto's format (files written by the installed mosquitto_passwd and
by hamqtt-passwd), auth.allow_anonymous, the ACL file (topic / user / pattern,
read / write / readwrite / deny, %u and %c, $SYS), auth.acl.no_match,
auth.acl.deny_action, SIGHUP reload, /metrics counters.

Refusals: a CONNACK with v5 0x86 Bad User Name or Password / 0x87 Not
authorized (3.1.1 return codes 4 / 5), session present 0 and then a close
[MQTT-3.2.2-6] [MQTT-3.2.2-7] ((3.1.1) [MQTT-3.2.2-4] [MQTT-3.2.2-5]). A
denied SUBSCRIBE filter gets 0x80 ((3.1.1) [MQTT-3.9.3-2]) or v5 0x87 in its
place in the SUBACK [MQTT-3.9.3-1] [MQTT-3.9.3-2]; a denied PUBLISH is
answered with 0x87 in PUBACK / PUBREC [MQTT-3.4.2-1] [MQTT-3.5.2-1]."""

import os
import signal
import subprocess

import pytest

import mqttraw as m
from authfx import accepted, ham_passwd, mosq_passwd, paho_connack_rcs, refused
from conftest import wait_until
from helpers import MosquittoSub
from promtext import metric
from startfail import start_fails
from mqttraw import T

RC_BAD_CREDS = 0x86
RC_NOT_AUTHORIZED = 0x87


@pytest.fixture
def pwfile(tmp_path):
    """A password file written by the installed mosquitto_passwd:
    alice/secret, bob/'p:w d' (a colon and a space in the password)."""
    path = str(tmp_path / "passwd")
    mosq_passwd(path, "alice", "secret", create=True)
    mosq_passwd(path, "bob", "p:w d")
    return path


@pytest.mark.parametrize("version", [4, 5])
def test_mosquitto_passwd_file(broker, pwfile, version):
    """A file from mosquitto_passwd works as it is: the right password is
    accepted, a wrong or missing one and an unknown user are refused with
    0x86 (3.1.1: 4); without credentials the client is anonymous, allowed by
    auth.allow_anonymous = true. One log line per refusal with client id,
    address, user name and reason, never the password."""
    node = broker({"auth.password_file": pwfile})
    bad = RC_BAD_CREDS if version == 5 else 4
    accepted(node, version, "a1", username="alice", password="secret").disconnect()
    accepted(node, version, "b1", username="bob", password="p:w d").disconnect()
    refused(node, version, bad, client_id="wrongpw", username="alice", password="Secret")
    refused(node, version, bad, client_id="nopw", username="alice")
    refused(node, version, bad, client_id="unknown", username="mallory", password="secret")
    accepted(node, version, "anon").disconnect()
    lines = node.wait_log("connection refused client_id=wrongpw")
    assert "username=alice" in lines[0] and "127.0.0.1:" in lines[0], lines[0]
    assert "wrong password" in lines[0], lines[0]
    node.wait_log("connection refused client_id=unknown")
    assert "Secret" not in node.log_text()
    assert metric(node, "hamqtt_authentication_total", result="failure") == 3
    assert metric(node, "hamqtt_authentication_total", result="success") >= 3


def test_real_clients_with_credentials(broker, pwfile):
    """mosquitto_pub/sub -u/-P and paho's username_pw_set against a
    mosquitto_passwd file; mosquitto_pub with a wrong password is refused
    (its exit status and message)."""
    node = broker({"auth.password_file": pwfile, "auth.allow_anonymous": False})
    sub = MosquittoSub(node.port, "t/#", qos=1, version="mqttv5",
                       extra=["-u", "alice", "-P", "secret"])
    try:
        subprocess.run(["mosquitto_pub", "-p", str(node.port), "-t", "t/1", "-m", "hi",
                        "-q", "1", "-u", "bob", "-P", "p:w d"], check=True, timeout=T(10))
        assert sub.messages(1) == [("t/1", "hi")]
        r = subprocess.run(["mosquitto_pub", "-p", str(node.port), "-t", "t/1", "-m", "x",
                            "-u", "bob", "-P", "nope"], capture_output=True, text=True,
                           timeout=T(10))
        assert r.returncode != 0 and "bad user name or password" in (r.stdout + r.stderr).lower()
        r = subprocess.run(["mosquitto_pub", "-p", str(node.port), "-t", "t/1", "-m", "x",
                            "-V", "mqttv5"], capture_output=True, text=True, timeout=T(10))
        assert r.returncode != 0 and "not authorized" in (r.stdout + r.stderr).lower()
    finally:
        sub.close()
    import paho.mqtt.client as mqtt
    for version, proto in ((4, mqtt.MQTTv311), (5, mqtt.MQTTv5)):
        assert paho_connack_rcs(node.port, "paho-%d" % version, proto, "alice", "secret") == [0]


@pytest.mark.parametrize("version", [4, 5])
def test_anonymous_refused(broker, pwfile, version):
    """auth.allow_anonymous = false: a client without a user name gets 0x87
    Not authorized (3.1.1: 5); a listed user still connects."""
    node = broker({"auth.password_file": pwfile, "auth.allow_anonymous": False})
    refused(node, version, RC_NOT_AUTHORIZED if version == 5 else 5, client_id="anon")
    accepted(node, version, "a1", username="alice", password="secret").disconnect()
    line = node.wait_log("connection refused client_id=anon")[0]
    assert "auth.allow_anonymous" in line, line


def test_allow_anonymous_false_without_file(broker):
    """No method and anonymous clients refused: everyone is refused 0x87."""
    node = broker({"auth.allow_anonymous": False})
    refused(node, 5, RC_NOT_AUTHORIZED, client_id="anon")
    refused(node, 4, 5, client_id="named", username="x", password="y")


def test_hamqtt_passwd_tool(broker, tmp_path):
    """hamqtt-passwd -c -b / -b / -D writes mosquitto_passwd's format: the
    broker accepts its users, mosquitto_passwd keeps editing the file, and
    a deleted user is gone."""
    path = str(tmp_path / "pw")
    assert ham_passwd(path, "-c", "-b", "FILE", "carol", "c-pw").returncode == 0
    assert ham_passwd(path, "-b", "FILE", "dave", "d-pw").returncode == 0
    assert ham_passwd(path, "-b", "FILE", "dave", "d-pw2").returncode == 0  # update
    mosq_passwd(path, "erin", "e-pw")  # mosquitto_passwd reads and extends our file
    longname = "u" * 3000  # a line longer than the spare room the tool allocated once
    assert ham_passwd(path, "-b", "FILE", longname, "l-pw").returncode == 0
    assert ham_passwd(path, "-b", "FILE", "frank", "f-pw").returncode == 0
    assert ham_passwd(path, "-D", "FILE", "frank").returncode == 0
    r = ham_passwd(path, "-D", "FILE", "nobody")
    assert r.returncode != 0 and "not found" in r.stderr
    r = ham_passwd(str(tmp_path / "missing"), "-b", "FILE", "x", "y")
    assert r.returncode != 0 and "-c" in r.stderr
    text = open(path).read()
    assert [ln.split(":")[0] for ln in text.splitlines()] == ["carol", "dave", "erin", longname]
    assert all(ln.split(":", 1)[1].startswith("$7$101$") for ln in text.splitlines())
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    node = broker({"auth.password_file": path, "auth.allow_anonymous": False})
    accepted(node, 5, "c", username="carol", password="c-pw").disconnect()
    accepted(node, 4, "d", username="dave", password="d-pw2").disconnect()
    refused(node, 4, 4, client_id="d-old", username="dave", password="d-pw")
    accepted(node, 5, "e", username="erin", password="e-pw").disconnect()
    accepted(node, 4, "l", username=longname, password="l-pw").disconnect()
    refused(node, 5, RC_BAD_CREDS, client_id="f", username="frank", password="f-pw")


def test_bad_password_file_fails_start(tmp_path, pwfile):
    """A bad line stops the start with file:line; a missing file too."""
    with open(pwfile, "a") as f:
        f.write("mallory:plaintext\n")
    out = start_fails(tmp_path, "auth.password_file = %s\n" % pwfile)
    assert "%s:3: hash is neither" % pwfile in out, out
    missing = str(tmp_path / "nope")
    out = start_fails(tmp_path, "auth.password_file = %s\n" % missing)
    assert "%s: cannot open" % missing in out, out


def test_sighup_reloads_password_file(broker, pwfile):
    """SIGHUP re-reads the password file: a user added since is accepted, a
    deleted one refused; a file with a bad line is refused with file:line and
    the old table stays; connected clients stay connected."""
    node = broker({"auth.password_file": pwfile, "auth.allow_anonymous": False})
    keep = accepted(node, 5, "keep", username="alice", password="secret")
    refused(node, 5, RC_BAD_CREDS, client_id="g0", username="gina", password="g-pw")
    assert ham_passwd(pwfile, "-b", "FILE", "gina", "g-pw").returncode == 0
    assert ham_passwd(pwfile, "-D", "FILE", "alice").returncode == 0
    os.kill(node.pid, signal.SIGHUP)
    node.wait_log("reloaded password file")
    accepted(node, 5, "g1", username="gina", password="g-pw").disconnect()
    refused(node, 4, 4, client_id="a2", username="alice", password="secret")
    assert keep.ping().type == m.PINGRESP
    with open(pwfile, "a") as f:
        f.write("broken line\n")
    os.kill(node.pid, signal.SIGHUP)
    line = node.wait_log("reload refused")[0]
    assert ":3: expected user:hash" in line, line
    accepted(node, 5, "g2", username="gina", password="g-pw").disconnect()
    keep.disconnect()


# ---- ACL ----------------------------------------------------------------------

ACL = """# anonymous clients
topic read public/#
topic write anon/in

user alice
topic readwrite a/#
topic deny a/secret
topic read $SYS/#
topic write w/only

user bob
topic read a/#
topic read b/+

pattern readwrite dev/%u/#
pattern write clients/%c/status
"""


@pytest.fixture
def acl_node(broker, tmp_path, pwfile):
    def start(**over):
        path = str(tmp_path / "acl")
        with open(path, "w") as f:
            f.write(over.pop("acl", ACL))
        o = {"auth.password_file": pwfile, "auth.acl_file": path}
        o.update(over)
        return broker(o)
    return start


def alice(node, version=5, cid="alice-c"):
    return accepted(node, version, cid, username="alice", password="secret")


def bob(node, version=5, cid="bob-c"):
    return accepted(node, version, cid, username="bob", password="p:w d")


@pytest.mark.parametrize("version", [4, 5])
def test_acl_subscribe(acl_node, version):
    """SUBSCRIBE: each filter decided on its own in one SUBACK: granted where
    a read rule covers it (or, a wildcard filter, where a read rule covers
    part of it), 0x80 / v5 0x87 where none can ever deliver, where a deny
    rule covers it, or where only write is granted."""
    node = acl_node()
    c = alice(node, version)
    fail = RC_NOT_AUTHORIZED if version == 5 else 0x80
    ack = c.subscribe(("a/#", 1), ("a/secret", 1), ("x/y", 1), ("w/only", 1), ("#", 0),
                      ("dev/alice/+", 1), ("dev/bob/+", 1), ("$share/g/a/b", 1))
    assert ack.codes == [1, fail, fail, fail, 0, 1, fail, 1]
    assert c.ping().type == m.PINGRESP
    assert metric(node, "hamqtt_acl_decisions_total", result="deny") >= 4
    node.wait_log("subscribe denied by the ACL client_id=alice-c filter=a/secret")


@pytest.mark.parametrize("version", [4, 5])
def test_acl_publish_denied_ignored(acl_node, version):
    """A PUBLISH the ACL denies is dropped (auth.acl.deny_action = ignore):
    v5 QoS 1 gets PUBACK 0x87, QoS 2 PUBREC 0x87 (which ends the flow);
    3.1.1 gets a plain acknowledgement (it has no failure code); the
    connection stays; allowed ones are delivered."""
    node = acl_node()
    s = bob(node, 5)
    assert s.subscribe(("a/#", 2)).codes == [2]
    p = alice(node, version)
    assert p.publish("a/ok", b"1", qos=1).rc == 0
    deny = RC_NOT_AUTHORIZED if version == 5 else 0
    assert p.publish("a/secret", b"2", qos=1).rc == deny
    p.send(m.publish("a/secret", b"3", qos=2, mid=77, version=version))
    rec = p.expect(m.PUBREC, mid=77)
    assert rec.rc == deny
    if version == 4:  # a 3.1.1 client goes on with PUBREL: PUBCOMP
        p.send(m.pubrel(77, version=version))
        assert p.expect(m.PUBCOMP, mid=77).mid == 77
    p.publish("a/secret", b"4", qos=0)
    p.publish("b/x", b"5", qos=1)  # bob may read b/+ but alice not write it
    p.publish("a/end", b"6", qos=1)
    got = [(x.topic, x.payload) for x in s.publishes(2)]
    assert got == [("a/ok", b"1"), ("a/end", b"6")]
    s.expect_nothing(0.3, m.PUBLISH)
    assert p.ping().type == m.PINGRESP


@pytest.mark.parametrize("version", [4, 5])
def test_acl_publish_denied_disconnect(acl_node, version):
    """auth.acl.deny_action = disconnect: v5 DISCONNECT 0x87, 3.1.1 closed."""
    node = acl_node(**{"auth.acl.deny_action": "disconnect"})
    p = alice(node, version)
    p.publish("a/fine", b"", qos=1)
    p.send(m.publish("zzz", b"x", qos=1, mid=5, version=version))
    p.expect_disconnect(RC_NOT_AUTHORIZED)


def test_acl_read_checked_per_message(acl_node):
    """A wildcard subscription a read rule covers only in part ('#' for
    alice, whose rules grant a/# and deny a/secret): each message is checked
    on delivery, retained ones included; the decisions are cached."""
    node = acl_node()
    pub = bob(node, 5, "pub")  # writes dev/bob/# (pattern), which alice may not read
    w = alice(node, 5, "writer")
    w.publish("a/r1", b"retained", qos=1, retain=True)
    w.publish("a/secret", b"no", qos=1, retain=True)  # denied: not stored
    s = alice(node, 5, "reader")
    assert s.subscribe(("#", 1)).codes == [1]
    assert [(x.topic, x.payload) for x in s.publishes(1)] == [("a/r1", b"retained")]
    for i in range(3):
        w.publish("a/x", b"%d" % i, qos=1)
        w.publish("dev/alice/t", b"d%d" % i, qos=1)
    pub.publish("dev/bob/t", b"bob's", qos=1)  # pattern: bob writes dev/bob/#
    w.publish("a/end", b"", qos=1)
    got = [(x.topic, x.payload) for x in s.publishes(7)]
    assert got == [("a/x", b"0"), ("dev/alice/t", b"d0"), ("a/x", b"1"), ("dev/alice/t", b"d1"),
                   ("a/x", b"2"), ("dev/alice/t", b"d2"), ("a/end", b"")], got
    s.expect_nothing(0.3, m.PUBLISH)  # dev/bob/t reached '#' but not alice's ACL


def test_acl_patterns_and_anonymous(acl_node):
    """pattern %u / %c apply to every client, anonymous ones too (%c); the
    rules before the first `user` line are the anonymous clients'; a user
    with no section gets only the patterns."""
    node = acl_node(acl=ACL + "user carol\n")
    anon = accepted(node, 5, "anon-1")
    assert anon.subscribe(("public/#", 1), ("a/#", 1)).codes == [1, RC_NOT_AUTHORIZED]
    assert anon.publish("anon/in", b"", qos=1).rc == 0
    assert anon.publish("public/x", b"", qos=1).rc == RC_NOT_AUTHORIZED  # read only
    assert anon.publish("clients/anon-1/status", b"", qos=1).rc == 0   # %c
    assert anon.publish("clients/other/status", b"", qos=1).rc == RC_NOT_AUTHORIZED
    assert anon.publish("dev//x", b"", qos=1).rc == RC_NOT_AUTHORIZED  # %u: no user
    b = bob(node)
    assert b.publish("dev/bob/x", b"", qos=1).rc == 0
    assert b.publish("dev/alice/x", b"", qos=1).rc == RC_NOT_AUTHORIZED
    assert b.publish("anon/in", b"", qos=1).rc == RC_NOT_AUTHORIZED  # not anonymous


def test_acl_sys_readable_only_where_allowed(acl_node):
    """$SYS is readable only where a rule names it: alice (topic read $SYS/#)
    gets $SYS messages, bob ('#' rules do not cover $SYS) and anonymous
    clients are refused the subscription [MQTT-4.7.2-1]."""
    node = acl_node(**{"sys.interval": "1s"})
    a = alice(node)
    assert a.subscribe(("$SYS/#", 0)).codes == [0]
    p = a.expect(m.PUBLISH, timeout=10)
    assert p.topic.startswith("$SYS/"), p
    b = bob(node)
    assert b.subscribe(("$SYS/#", 0), ("$SYS/brokers/+/uptime", 0)).codes == [RC_NOT_AUTHORIZED] * 2
    anon = accepted(node, 4, "anon")
    assert anon.subscribe(("$SYS/#", 0)).codes == [0x80]


def test_acl_no_match_allow(acl_node):
    """auth.acl.no_match = allow: what no rule matches is allowed, deny rules
    still deny."""
    node = acl_node(**{"auth.acl.no_match": "allow"})
    a = alice(node)
    assert a.subscribe(("x/y", 1), ("a/secret", 1)).codes == [1, RC_NOT_AUTHORIZED]
    assert a.publish("x/y", b"", qos=1).rc == 0
    assert a.publish("a/secret", b"", qos=1).rc == RC_NOT_AUTHORIZED


def test_acl_will_topic_denied(acl_node):
    """A will on a topic the client may not write: CONNECT refused 0x87 (3.1.1: 5)."""
    node = acl_node()
    refused(node, 5, RC_NOT_AUTHORIZED, client_id="w5", username="alice", password="secret",
            will_topic="x/will", will_payload=b"bye")
    refused(node, 4, 5, client_id="w4", username="alice", password="secret",
            will_topic="x/will", will_payload=b"bye")
    c = m.RawClient(node.port, version=5)
    c.connect("w-ok", username="alice", password="secret", will_topic="a/will", will_payload=b"x")
    c.disconnect()


def test_acl_metrics_and_paho(acl_node):
    """paho (v3.1.1) under the ACL: a denied subscription shows 128 in its
    granted list; /metrics counts allow and deny decisions."""
    node = acl_node()
    before = metric(node, "hamqtt_acl_decisions_total", result="allow")
    import paho.mqtt.client as mqtt
    c = mqtt.Client(client_id="paho-acl", protocol=mqtt.MQTTv311)
    c.username_pw_set("bob", "p:w d")
    granted = []
    c.on_subscribe = lambda cl, ud, mid, qos: granted.append(list(qos))
    c.connect("127.0.0.1", node.port, 30)
    c.loop_start()
    try:
        c.subscribe([("a/1", 1), ("z/1", 1)])
        wait_until(lambda: granted, 10, what="SUBACK")
    finally:
        c.disconnect()
        c.loop_stop()
    assert granted == [[1, 128]]
    assert metric(node, "hamqtt_acl_decisions_total", result="allow") > before
    assert metric(node, "hamqtt_acl_decisions_total", result="deny") >= 1


def test_bad_acl_file_fails_start(tmp_path):
    path = str(tmp_path / "acl")
    with open(path, "w") as f:
        f.write("user x\ntopic readwrite a/#/b\n")
    out = start_fails(tmp_path, "auth.acl_file = %s\n" % path)
    assert "%s:2: invalid topic filter" % path in out, out


def test_no_auth_config_unchanged(node):
    """Without any auth.* key nothing is asked or counted: a client with a
    user name and password connects as before, and the counters stay 0."""
    accepted(node, 5, "u", username="whoever", password="anything").disconnect()
    accepted(node, 4, "n").disconnect()
    assert metric(node, "hamqtt_authentication_total", result="success") == 0
    assert metric(node, "hamqtt_acl_decisions_total", result="allow") == 0
