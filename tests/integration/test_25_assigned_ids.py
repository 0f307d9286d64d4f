"""25 assigned client identifiers (issue 8): a client that connects with an
empty client id gets one from the server [MQTT-3.1.3-6] [MQTT-3.2.2-16].
Those ids must be unguessable and unique cluster-wide: 128 random bits
("hamqtt-" and 32 hex digits), never the same on two nodes or after a restart.

The ids used to be a per-process counter times a constant: every node and
every restart handed out the same sequence, anyone could compute the next id
from their own and resume another client's session with clean start 0, and in
a cluster two nodes' clients (mosquitto_sub / mosquitto_pub without -i send an
empty id) took each other's sessions over."""

import os
import re
import subprocess

import pytest

import mqttraw as m
from conftest import wait_until
from helpers import MosquittoSub, mosquitto_pub

ID_RE = re.compile(r"^hamqtt-[0-9a-f]{32}$")
OLD_MULT = 0x9E3779B97F4A7C15  # the old formula: hamqtt-%016llx of counter * OLD_MULT
MASK64 = (1 << 64) - 1
EXPIRY_300 = [(m.SESSION_EXPIRY, 300)]


def assigned_id(target, props=None):
    """Connect v5 with an empty client id; return the Assigned Client Identifier."""
    c = m.RawClient(target.port, host=getattr(target, "host", "127.0.0.1"), version=5)
    try:
        p = c.connect("", props=props)
        aid = p.props.get(m.ASSIGNED_CLIENT_ID)
        assert aid, "no Assigned Client Identifier in %r" % p
        return aid.decode() if isinstance(aid, bytes) else aid
    finally:
        c.disconnect()


def test_assigned_id_format(node):
    """128 random bits: "hamqtt-" and 32 lower-case hex digits, all different."""
    ids = [assigned_id(node) for _ in range(20)]
    for aid in ids:
        assert ID_RE.match(aid), aid
    assert len(set(ids)) == len(ids), ids


def test_assigned_ids_differ_across_brokers_and_restarts(broker):
    """Two brokers started the same way hand out different ids, and so does a
    broker after a restart (a counter gave the same sequence every time)."""
    b1 = broker()
    b2 = broker()
    first = [assigned_id(b1) for _ in range(5)]
    second = [assigned_id(b2) for _ in range(5)]
    assert not set(first) & set(second), (first, second)
    assert b1.stop() == 0
    b1.start()
    again = [assigned_id(b1) for _ in range(5)]
    assert not set(again) & set(first), (first, again)
    assert len(set(first + second + again)) == 15


# getrandom that always fails, preloaded into hamqttd: the kernel giving no
# random bytes (ENOSYS on an old kernel, a seccomp filter) must cost the client
# that needs an assigned id its connection, never the node.
NO_GETRANDOM_C = r"""
#include <errno.h>
#include <sys/types.h>
ssize_t getrandom(void *buf, size_t n, unsigned int flags)
{
	(void)buf; (void)n; (void)flags;
	errno = ENOSYS;
	return -1;
}
"""


def test_no_random_bytes_refuses_the_client_not_the_node(broker, raw, tmp_path):
    """Without random bytes an empty client id is refused (v5 CONNACK 0x88
    Server unavailable, v3.1.1 return code 3) and the node keeps serving
    clients with ids of their own."""
    src = tmp_path / "nogetrandom.c"
    src.write_text(NO_GETRANDOM_C)
    lib = str(tmp_path / "nogetrandom.so")
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, str(src)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.fail("cannot build the getrandom shim: %s" % r.stderr)
    env = {"LD_PRELOAD": lib}
    # ASan wants its runtime first; the shim only replaces one call
    env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    b = broker({"cluster.port": 0}, env=env)
    c5 = raw(b, version=5)
    c5.send(m.connect("", version=5))
    got = c5.wait_closed()
    assert [p.type for p in got] == [m.CONNACK] and got[0].rc == 0x88, got
    c4 = raw(b, version=4)
    c4.send(m.connect("", version=4, clean=True))
    got = c4.wait_closed()
    assert [p.raw for p in got] == [b"\x20\x02\x00\x03"], got
    b.wait_log("cannot assign a client id")
    ok = raw(b, version=5)
    ok.connect("has-an-id")
    assert ok.ping().type == m.PINGRESP
    assert b.alive()


def _neighbours(aid, span):
    """Ids an attacker derives from an assigned id he got himself: the old
    formula's next counter values, and the hex suffix counted up and down."""
    suffix = aid[len("hamqtt-"):]
    value = int(suffix, 16)
    inverse = pow(OLD_MULT, -1, 1 << 64)
    counter = ((value & MASK64) * inverse) & MASK64
    out = []
    for j in range(1, span + 1):
        out.append("hamqtt-%016x" % (((counter + j) * OLD_MULT) & MASK64))
    for j in range(-span // 2, span // 2 + 1):
        if j:
            out.append("hamqtt-%0*x" % (len(suffix), (value + j) % (1 << (4 * len(suffix)))))
    return out


def test_next_assigned_id_does_not_resume_a_victims_session(node, raw):
    """The attack: the attacker gets an assigned id of his own; then a device
    (v5, empty id, session expiry 300) gets one, subscribes at QoS 1 and goes
    offline, and a QoS 1 message is queued for it. The attacker connects with
    clean start 0 to every id he can derive from his own (the old counter
    formula's next values, his suffix counted up and down): none has a session
    (session present 0, nothing delivered). The device itself still resumes
    its session with the message."""
    mine = assigned_id(node)
    victim = raw(node, version=5)
    ack = victim.connect("", clean=True, props=EXPIRY_300)
    vid = ack.props.get(m.ASSIGNED_CLIENT_ID)
    vid = vid.decode() if isinstance(vid, bytes) else vid
    assert vid and vid != mine
    assert victim.subscribe("secret/pin", qos=1).codes == [1]
    victim.disconnect()
    node.wait_log("client disconnected client_id=%s" % vid)
    pub = raw(node, version=5)
    pub.connect("secret-publisher")
    assert pub.publish("secret/pin", b"1234", qos=1).rc == 0
    pub.disconnect()

    guesses = _neighbours(mine, 40)
    for guess in guesses:
        a = m.RawClient(node.port, version=5)
        try:
            # session expiry 0: a guess that misses leaves no session behind
            p = a.connect(guess, clean=False)
            a.ping()
            leaked = [q for q in a.stash if q.type == m.PUBLISH]
            assert not p.session_present and not leaked, (
                "guessed id %s (derived from %s) resumed the session of %s: %r %r"
                % (guess, mine, vid, p, leaked))
        finally:
            a.disconnect()

    back = raw(node, version=5, auto_ack=True)
    p = back.connect(vid, clean=False, props=EXPIRY_300)
    assert p.session_present, p
    got = back.expect(m.PUBLISH)
    assert (got.topic, got.payload) == ("secret/pin", b"1234")


def _assigned_ids_in_logs(nodes):
    rx = re.compile(r"client connected client_id=(hamqtt-[0-9a-f]+) ")
    ids = []
    for n in nodes:
        for ln in n.log_lines(r"client connected client_id=hamqtt-"):
            mt = rx.search(ln)
            if mt:
                ids.append((n.name, mt.group(1)))
    return ids


def _no_takeovers(nodes):
    for n in nodes:
        lines = n.log_lines(r"taken over")
        assert not lines, "%s: a session was taken over:\n%s" % (n.name, "\n".join(lines))


def test_cluster_clients_without_ids_keep_their_sessions(cluster):
    """Three nodes. mosquitto_sub on node 2 and mosquitto_pub on node 3, both
    without -i (mosquitto 2.0 then sends an empty client id, v3.1.1 clean
    session 1), several rounds: the subscriber gets its SUBACK and every
    message. Then raw v5 and v3.1.1 clients with empty ids, subscribers on
    node 2 and publishers on node 3, all kept connected: every message
    arrives, no connection is closed, no session is taken over and every
    assigned id in the three logs is distinct."""
    cl = cluster(3)
    cl.join_all()
    n1, n2, n3 = cl.nodes
    for r in range(4):
        topic = "ids/mosq/%d" % r
        sub = MosquittoSub(n2.port, topic, qos=1, count=3, host=n2.host)
        try:
            for i in range(3):
                mosquitto_pub(n3.port, topic, "m%d" % i, qos=1, host=n3.host)
            got = sub.messages(3)
            assert got == [(topic, "m%d" % i) for i in range(3)], (r, got)
            assert sub.wait() == 0
        finally:
            sub.close()

    subs, pubs = [], []
    for r in range(3):
        for version in (5, 4):
            topic = "ids/raw/%d/%d" % (r, version)
            s = n2.raw(version=version, auto_ack=True)
            s.connect("", clean=True)
            assert s.subscribe(topic, qos=1).codes == [1]
            p = n3.raw(version=version)
            p.connect("", clean=True)
            for i in range(3):
                assert p.publish(topic, b"%d" % i, qos=1).rc == 0
            got = [(q.topic, q.payload) for q in s.publishes(3)]
            assert got == [(topic, b"%d" % i) for i in range(3)], (r, version, got)
            subs.append(s)
            pubs.append(p)
    for c in subs + pubs:
        assert c.ping().type == m.PINGRESP  # still connected: nobody took it over

    # 4 rounds of 1 mosquitto_sub and 3 mosquitto_pub, 12 raw clients
    expected = 4 * 4 + 12
    ids = wait_until(lambda: (lambda x: x if len(x) >= expected else None)(
        _assigned_ids_in_logs(cl.nodes)), 5, 0.1, "%d assigned ids in the logs" % expected)
    only = [i for _, i in ids]
    assert len(set(only)) == len(only), "an assigned id was handed out twice: %r" % ids
    _no_takeovers(cl.nodes)
