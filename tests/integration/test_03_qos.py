"""03 QoS: exact QoS 1 / 2 flows and packet ids, PUBREL for an unknown id,
duplicate QoS 2 PUBLISH, redelivery on session resume, Receive Maximum in
both directions, the outgoing in-flight window.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import pytest

import mqttraw as m
from helpers import collect_until


def persistent(version):
    """CONNECT keyword arguments for a session that outlives the connection."""
    if version == 5:
        return {"clean": False, "props": [(m.SESSION_EXPIRY, 300)]}
    return {"clean": False}


def test_qos1_flow_exact_bytes_v311(node, raw):
    """(3.1.1) [MQTT-4.3.2-2] PUBACK 40 02 <id> carries the PUBLISH's packet id;
    the subscriber's copy is 32 ... with a non-zero id [MQTT-2.3.1-1] and DUP 0."""
    sub = raw(node)
    sub.connect("q1x-sub")
    sub.subscribe("q1x", qos=1)
    pub = raw(node)
    pub.connect("q1x-pub")
    pub.send(m.publish("q1x", b"data", qos=1, mid=0x1234))
    assert pub.recv().raw == b"\x40\x02\x12\x34"
    p = sub.expect(m.PUBLISH)
    assert p.raw[0] == 0x32 and p.mid != 0
    assert p.raw == b"\x32" + m.varint(2 + 3 + 2 + 4) + m.mstr("q1x") + m.u16(p.mid) + b"data"
    sub.send(m.puback(p.mid))
    sub.expect_nothing(0.3)


def test_qos1_flow_v5(node, raw):
    """[MQTT-4.3.2-4] [MQTT-2.2.1-5] PUBACK with the same packet id and reason
    0x00 (or 0x10 no matching subscribers); a QoS 1 PUBLISH is forwarded."""
    pub = raw(node, version=5)
    pub.connect("q1v5-pub")
    pub.send(m.publish("q1v5/none", b"x", qos=1, mid=7, version=5))
    ack = pub.recv()
    assert ack.type == m.PUBACK and ack.mid == 7 and ack.rc in (0x00, 0x10)
    sub = raw(node, version=5)
    sub.connect("q1v5-sub")
    sub.subscribe("q1v5/t", qos=1)
    pub.send(m.publish("q1v5/t", b"y", qos=1, mid=8, version=5))
    ack = pub.recv()
    assert (ack.type, ack.mid, ack.rc) == (m.PUBACK, 8, 0)
    p = sub.expect(m.PUBLISH)
    assert (p.qos, p.payload, p.dup) == (1, b"y", False)


def test_qos2_flow_exact_bytes_v311(node, raw):
    """(3.1.1) [MQTT-4.3.3-2] PUBREC 50 02 <id>, PUBCOMP 70 02 <id> after
    PUBREL; to the subscriber PUBREL is 62 02 <id> [MQTT-3.6.1-1]."""
    sub = raw(node)
    sub.connect("q2x-sub")
    sub.subscribe("q2x", qos=2)
    pub = raw(node)
    pub.connect("q2x-pub")
    pub.send(m.publish("q2x", b"exactly", qos=2, mid=0x0102))
    assert pub.recv().raw == b"\x50\x02\x01\x02"
    pub.send(m.pubrel(0x0102))
    assert pub.recv().raw == b"\x70\x02\x01\x02"
    p = sub.expect(m.PUBLISH)
    assert p.raw[0] == 0x34 and p.mid != 0 and p.payload == b"exactly"
    sub.send(m.pubrec(p.mid))
    assert sub.expect(m.PUBREL).raw == b"\x62\x02" + m.u16(p.mid)
    sub.send(m.pubcomp(p.mid))
    sub.expect_nothing(0.3)


def test_qos2_flow_v5(node, raw):
    """[MQTT-4.3.3-8] PUBREC, [MQTT-4.3.3-10] PUBCOMP on PUBREL, same packet
    ids [MQTT-2.2.1-5]; server as sender sends PUBREL after PUBREC [MQTT-4.3.3-4]."""
    sub = raw(node, version=5)
    sub.connect("q2v5-sub")
    sub.subscribe("q2v5", qos=2)
    pub = raw(node, version=5)
    pub.connect("q2v5-pub")
    pub.send(m.publish("q2v5", b"z", qos=2, mid=300, version=5))
    rec = pub.recv()
    assert (rec.type, rec.mid, rec.rc) == (m.PUBREC, 300, 0)
    pub.send(m.pubrel(300, version=5))
    comp = pub.recv()
    assert (comp.type, comp.mid, comp.rc) == (m.PUBCOMP, 300, 0)
    p = sub.expect(m.PUBLISH)
    sub.send(m.pubrec(p.mid, version=5))
    rel = sub.expect(m.PUBREL)
    assert rel.mid == p.mid and rel.rc == 0 and rel.flags == 2
    sub.send(m.pubcomp(p.mid, version=5))


def test_pubrel_unknown_packet_id_v5(node, raw):
    """PUBREL for a packet id with no QoS 2 state: PUBCOMP with reason 0x92
    (Packet Identifier not found, 3.7.2.1); the connection stays up."""
    c = raw(node, version=5)
    c.connect("pubrel-unknown5")
    c.send(m.pubrel(77, version=5))
    p = c.recv()
    assert (p.type, p.mid, p.rc) == (m.PUBCOMP, 77, m.RC_PACKET_ID_NOT_FOUND)
    assert c.ping().type == m.PINGRESP


def test_pubrel_unknown_packet_id_v311(node, raw):
    """(3.1.1) a PUBREL for an unknown id is still answered by PUBCOMP 70 02 <id>."""
    c = raw(node)
    c.connect("pubrel-unknown4")
    c.send(m.pubrel(77))
    assert c.recv().raw == b"\x70\x02\x00\x4d"


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_duplicate_publish_delivered_once(node, raw, version):
    """[MQTT-4.3.3-9] ((3.1.1) [MQTT-4.3.3-2]) until PUBREL, a PUBLISH with the
    same packet id is acknowledged with PUBREC again and not delivered twice."""
    sub = raw(node, version=version, auto_ack=True)
    sub.connect("dup2-sub-%d" % version)
    sub.subscribe("dup2/t", "dup2/sentinel", qos=2)
    pub = raw(node, version=version)
    pub.connect("dup2-pub-%d" % version)
    pub.send(m.publish("dup2/t", b"only-once", qos=2, mid=5, version=version))
    assert pub.expect(m.PUBREC).mid == 5
    pub.send(m.publish("dup2/t", b"only-once", qos=2, mid=5, dup=True, version=version))
    assert pub.expect(m.PUBREC).mid == 5
    pub.send(m.pubrel(5, version=version))
    assert pub.expect(m.PUBCOMP).mid == 5
    pub.publish("dup2/sentinel", b"", qos=2)
    got = collect_until(sub, "dup2/sentinel")
    assert [p.payload for p in got] == [b"only-once"]


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_redelivered_with_dup_on_resume(node, raw, version):
    """[MQTT-4.4.0-1] on session resume unacknowledged QoS 1 PUBLISHes are
    resent with their original packet ids and DUP=1 [MQTT-3.3.1-1]
    ((3.1.1) [MQTT-4.4.0-1] [MQTT-3.3.1-1])."""
    cid = "redeliver1-%d" % version
    sub = raw(node, version=version)
    sub.connect(cid, **persistent(version))
    sub.subscribe("rd1/t", qos=1)
    pub = raw(node, version=version)
    pub.connect("rd1-pub-%d" % version)
    pub.publish("rd1/t", b"unacked", qos=1)
    first = sub.expect(m.PUBLISH)
    assert not first.dup
    sub.shutdown_abrupt()
    sub2 = raw(node, version=version)
    ack = sub2.connect(cid, **persistent(version))
    assert ack.session_present
    again = sub2.expect(m.PUBLISH)
    assert (again.mid, again.payload, again.dup, again.qos) == (first.mid, b"unacked", True, 1)
    sub2.send(m.puback(again.mid, version=version))
    sub2.expect_nothing(0.3, ptype=m.PUBLISH)


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_state_resumed(node, raw, version):
    """[MQTT-4.4.0-1] on resume: a QoS 2 PUBLISH never acknowledged is resent
    (DUP=1, same id), and for one already PUBREC'd the PUBREL is resent
    (not the PUBLISH) [MQTT-4.3.3-6]."""
    cid = "redeliver2-%d" % version
    sub = raw(node, version=version)
    sub.connect(cid, **persistent(version))
    sub.subscribe("rd2/t", qos=2)
    pub = raw(node, version=version)
    pub.connect("rd2-pub-%d" % version)
    pub.publish("rd2/t", b"recd", qos=2)
    pub.publish("rd2/t", b"unacked", qos=2)
    p1 = sub.expect(m.PUBLISH)
    assert p1.payload == b"recd"
    sub.send(m.pubrec(p1.mid, version=version))
    assert sub.expect(m.PUBREL).mid == p1.mid
    p2 = sub.expect(m.PUBLISH)
    assert p2.payload == b"unacked"
    sub.shutdown_abrupt()
    sub2 = raw(node, version=version)
    assert sub2.connect(cid, **persistent(version)).session_present
    got = [sub2.recv(), sub2.recv()]
    rels = [p for p in got if p.type == m.PUBREL]
    pubs = [p for p in got if p.type == m.PUBLISH]
    assert [r.mid for r in rels] == [p1.mid], got
    assert [(p.mid, p.payload, p.dup) for p in pubs] == [(p2.mid, b"unacked", True)], got
    sub2.send(m.pubcomp(p1.mid, version=version))
    sub2.send(m.pubrec(p2.mid, version=version))
    assert sub2.expect(m.PUBREL).mid == p2.mid
    sub2.send(m.pubcomp(p2.mid, version=version))
    sub2.expect_nothing(0.3)


def test_receive_maximum_of_client_respected_qos1(node, raw):
    """[MQTT-3.3.4-9] the server never has more than the client's Receive
    Maximum QoS 1/2 PUBLISHes unacknowledged; the rest follow, in order,
    as acknowledgements come in."""
    sub = raw(node, version=5)
    sub.connect("rm-sub", props=[(m.RECEIVE_MAXIMUM, 2)])
    sub.subscribe("rm/t", qos=1)
    pub = raw(node, version=5)
    pub.connect("rm-pub")
    for i in range(6):
        pub.publish("rm/t", b"%d" % i, qos=1)
    got = sub.publishes(2)
    sub.expect_nothing(0.5, ptype=m.PUBLISH)
    received = list(got)
    while len(received) < 6:
        sub.send(m.puback(got.pop(0).mid, version=5))
        nxt = sub.expect(m.PUBLISH)
        got.append(nxt)
        received.append(nxt)
        assert len(got) == 2
        sub.expect_nothing(0.1, ptype=m.PUBLISH)
    assert [p.payload for p in received] == [b"%d" % i for i in range(6)]


def test_receive_maximum_of_client_respected_qos2(node, raw):
    """[MQTT-3.3.4-9] a QoS 2 message counts against Receive Maximum until its
    PUBCOMP, not just its PUBREC."""
    sub = raw(node, version=5)
    sub.connect("rm2-sub", props=[(m.RECEIVE_MAXIMUM, 1)])
    sub.subscribe("rm2/t", qos=2)
    pub = raw(node, version=5)
    pub.connect("rm2-pub")
    for i in range(3):
        pub.publish("rm2/t", b"%d" % i, qos=2)
    for i in range(3):
        p = sub.expect(m.PUBLISH)
        assert p.payload == b"%d" % i
        sub.expect_nothing(0.3, ptype=m.PUBLISH)
        sub.send(m.pubrec(p.mid, version=5))
        assert sub.expect(m.PUBREL).mid == p.mid
        sub.expect_nothing(0.3, ptype=m.PUBLISH)
        sub.send(m.pubcomp(p.mid, version=5))


def test_receive_maximum_exceeded_by_client(broker, raw):
    """mqtt.receive_maximum is advertised in CONNACK; a client with more
    unacknowledged QoS 2 PUBLISHes than that violates [MQTT-3.3.4-7] and gets
    DISCONNECT 0x93 (Receive Maximum exceeded)."""
    b = broker({"mqtt.receive_maximum": 2})
    c = raw(b, version=5)
    ack = c.connect("rm-exceed")
    assert ack.props.get(m.RECEIVE_MAXIMUM) == 2
    for mid in (1, 2):
        c.send(m.publish("rmx/t", b"x", qos=2, mid=mid, version=5))
        assert c.expect(m.PUBREC).mid == mid
    c.send(m.publish("rmx/t", b"x", qos=2, mid=3, version=5))
    c.expect_disconnect(m.RC_RECEIVE_MAXIMUM_EXCEEDED)
    b.wait_log("client_id=rm-exceed", count=2)


def test_receive_maximum_exceeded_acks_before_disconnect(broker, raw):
    """A burst over Receive Maximum (paho 1.x resends every unacknowledged
    message at once after a reconnect) still gets the PUBRECs of the
    PUBLISHes accepted before the excess, then DISCONNECT 0x93 [MQTT-3.3.4-7]:
    the client knows what was received and the next connection makes
    progress. Persistent sessions, so the PUBRECs wait for the store."""
    b = broker({"mqtt.receive_maximum": 2})
    persist = [(m.SESSION_EXPIRY, 300)]
    sub = raw(b, version=5)
    sub.connect("rmg-sub", clean=False, props=persist)
    sub.subscribe("rmg/t", qos=1)
    c = raw(b, version=5)
    c.connect("rmg-pub", clean=False, props=persist)
    c.send(b"".join(m.publish("rmg/t", b"%d" % mid, qos=2, mid=mid, version=5)
                    for mid in (1, 2, 3)))
    got = c.wait_closed()
    assert [(p.type, p.mid) for p in got[:2]] == [(m.PUBREC, 1), (m.PUBREC, 2)], got
    assert got[2].type == m.DISCONNECT and got[2].rc == m.RC_RECEIVE_MAXIMUM_EXCEEDED, got
    # the next connection completes 1 and 2, and 3 is new
    c = raw(b, version=5)
    assert c.connect("rmg-pub", clean=False, props=persist).session_present
    for mid in (1, 2):
        c.send(m.pubrel(mid, version=5))
        assert c.expect(m.PUBCOMP).mid == mid
    c.send(m.publish("rmg/t", b"3", qos=2, mid=3, version=5))
    assert c.expect(m.PUBREC).mid == 3
    c.send(m.pubrel(3, version=5))
    assert c.expect(m.PUBCOMP).mid == 3
    assert sorted(p.payload for p in sub.publishes(3)) == [b"1", b"2", b"3"]
    sub.expect_nothing(0.3, ptype=m.PUBLISH)


def test_packet_ids_unique_while_in_flight(node, raw):
    """[MQTT-2.2.1-4] packet ids of PUBLISHes in flight to a client are
    non-zero and distinct."""
    sub = raw(node, version=5)
    sub.connect("pid-sub", props=[(m.RECEIVE_MAXIMUM, 30)])
    sub.subscribe("pid/t", qos=1)
    pub = raw(node, version=5)
    pub.connect("pid-pub")
    for i in range(30):
        pub.publish("pid/t", b"%d" % i, qos=1)
    mids = [p.mid for p in sub.publishes(30)]
    assert 0 not in mids and len(set(mids)) == 30


def test_max_inflight_window_v311(broker, raw):
    """mqtt.max_inflight bounds the outgoing window of a 3.1.1 client: no more
    than that many unacknowledged QoS 1 PUBLISHes; the rest follow in order."""
    b = broker({"mqtt.max_inflight": 3})
    sub = raw(b)
    sub.connect("win-sub")
    sub.subscribe("win/t", qos=1)
    pub = raw(b)
    pub.connect("win-pub")
    for i in range(8):
        pub.publish("win/t", b"%d" % i, qos=1)
    got = sub.publishes(3)
    sub.expect_nothing(0.5, ptype=m.PUBLISH)
    for p in got:
        sub.send(m.puback(p.mid))
    rest = []
    for _ in range(5):
        p = sub.expect(m.PUBLISH)
        sub.send(m.puback(p.mid))
        rest.append(p)
    assert [p.payload for p in got + rest] == [b"%d" % i for i in range(8)]
