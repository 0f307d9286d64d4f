"""08 shared subscriptions ($share/<group>/<filter>): one member per message,
round robin by default, random and hash_clientid strategies, no retained
messages, redelivery to another member, no-local refused, invalid names.

Statement ids are MQTT 5.0 (section 4.8.2)."""

import collections
import time

import pytest

import mqttraw as m
from helpers import collect_until
from mqttraw import T


def member(node, raw, cid, flt="$share/g/sh/t", qos=1, version=5, auto_ack=True):
    c = raw(node, version=version, auto_ack=auto_ack)
    c.connect(cid)
    ack = c.subscribe((flt, qos))
    assert ack.codes == [qos], ack
    return c


def drain(c, sentinel):
    return [p.payload for p in collect_until(c, sentinel)]


def indices_per_member(per_member):
    """[[message index, ...] per member] from payloads b"%02d" % index."""
    return [[int(x) for x in got] for got in per_member]


def test_round_robin(node, raw):
    """Default strategy: each message goes to exactly one member of the group
    [MQTT-4.8.2-3 context: 'free to choose'], in turn: the messages of one
    publisher go to the members in a fixed rotation (member k gets every
    third message), which random or hashing cannot produce; a non-shared
    subscriber of the same filter still gets every message."""
    members = [member(node, raw, "rr-%d" % i) for i in range(3)]
    for c in members:
        c.subscribe("rr-sentinel", qos=0)
    plain = raw(node, version=5, auto_ack=True)
    plain.connect("rr-plain")
    plain.subscribe("sh/t", qos=1)
    pub = raw(node, version=5)
    pub.connect("rr-pub")
    n = 30
    for i in range(n):
        pub.publish("sh/t", b"%02d" % i, qos=1)
    pub.publish("rr-sentinel", b"")
    per_member = [drain(c, "rr-sentinel") for c in members]
    everything = sorted(x for got in per_member for x in got)
    assert everything == [b"%02d" % i for i in range(n)], per_member
    idx = indices_per_member(per_member)
    assert [len(g) for g in idx] == [n // 3] * 3, per_member
    residues = [sorted({i % 3 for i in g}) for g in idx]
    assert sorted(residues) == [[0], [1], [2]], "not a rotation: %r" % idx
    assert [p.payload for p in plain.publishes(n)] == [b"%02d" % i for i in range(n)]


def test_two_groups_each_get_every_message(node, raw):
    """Each share group receives every message once."""
    g1 = [member(node, raw, "g1-%d" % i, "$share/g1/two/t") for i in range(2)]
    g2 = [member(node, raw, "g2-%d" % i, "$share/g2/two/t") for i in range(2)]
    for c in g1 + g2:
        c.subscribe("two-sentinel", qos=0)
    pub = raw(node, version=5)
    pub.connect("two-pub")
    for i in range(6):
        pub.publish("two/t", b"%d" % i, qos=1)
    pub.publish("two-sentinel", b"")
    for group in (g1, g2):
        got = sorted(x for c in group for x in drain(c, "two-sentinel"))
        assert got == [b"%d" % i for i in range(6)]


def test_shared_wildcard_filter_and_granted_qos(node, raw):
    """A shared filter may contain wildcards; each member gets messages at its
    own granted QoS [MQTT-4.8.2-3]."""
    a = member(node, raw, "sq-a", "$share/q/sq/+", qos=0)
    b = member(node, raw, "sq-b", "$share/q/sq/+", qos=2)
    for c in (a, b):
        c.subscribe("sq-sentinel", qos=0)
    pub = raw(node, version=5)
    pub.connect("sq-pub")
    for i in range(6):
        pub.publish("sq/%d" % i, b"%d" % i, qos=2)
    pub.publish("sq-sentinel", b"")
    got_a = collect_until(a, "sq-sentinel")
    got_b = collect_until(b, "sq-sentinel")
    assert len(got_a) + len(got_b) == 6
    assert all(p.qos == 0 for p in got_a) and all(p.qos == 2 for p in got_b)


def test_strategy_random(broker, raw):
    """mqtt.shared_subscription_strategy = random: every message still goes to
    exactly one member; over 60 messages from one publisher both members get
    some, and not in strict alternation (what round robin does: a random
    choice alternates 60 times in a row with probability 2^-59)."""
    b = broker({"mqtt.shared_subscription_strategy": "random"})
    members = [member(b, raw, "rnd-%d" % i) for i in range(2)]
    for c in members:
        c.subscribe("rnd-sentinel", qos=0)
    pub = raw(b, version=5)
    pub.connect("rnd-pub")
    n = 60
    for i in range(n):
        pub.publish("sh/t", b"%02d" % i, qos=1)
    pub.publish("rnd-sentinel", b"")
    per_member = [drain(c, "rnd-sentinel") for c in members]
    # a member holding max_inflight unacknowledged messages gets the rest
    # after the (QoS 0, other topic) sentinel: read on until all arrived
    deadline = time.monotonic() + T(5)
    while sum(len(g) for g in per_member) < n and time.monotonic() < deadline:
        for c, g in zip(members, per_member):
            p = c.try_recv(0.05)
            if p is not None and p.type == m.PUBLISH:
                g.append(p.payload)
    assert sorted(x for g in per_member for x in g) == [b"%02d" % i for i in range(n)]
    assert all(len(g) > 0 for g in per_member), [len(g) for g in per_member]
    idx = indices_per_member(per_member)
    alternating = all(len({i % 2 for i in g}) == 1 for g in idx)
    assert not alternating, "strict alternation, as round robin: %r" % idx


def test_strategy_hash_clientid(broker, raw):
    """mqtt.shared_subscription_strategy = hash_clientid: the member is chosen
    by the publisher's client id, so all messages of one publisher go to the
    same member; each message still goes to exactly one member, and six
    publishers do not all land on one member (the hash spreads them: this
    is deterministic for these client ids)."""
    b = broker({"mqtt.shared_subscription_strategy": "hash_clientid"})
    members = [member(b, raw, "hash-m%d" % i) for i in range(3)]
    for c in members:
        c.subscribe("hash-sentinel", qos=0)
    pubs = []
    for i in range(6):
        p = raw(b, version=5)
        p.connect("hash-publisher-%d" % i)
        pubs.append(p)
    for round_ in range(5):
        for i, p in enumerate(pubs):
            p.publish("sh/t", b"p%d-%d" % (i, round_), qos=1)
    for p in pubs:
        p.publish("hash-sentinel", b"")
    owner = {}
    total = 0
    for mi, c in enumerate(members):
        got = []
        for _ in pubs:  # one sentinel per publisher
            got += collect_until(c, "hash-sentinel")
        for msg in got:
            publisher = msg.payload.split(b"-")[0]
            assert owner.setdefault(publisher, mi) == mi, \
                "messages of %r went to members %d and %d" % (publisher, owner[publisher], mi)
            total += 1
    assert total == 30
    assert len(set(owner.values())) >= 2, "every publisher on one member: %r" % owner


def test_no_retained_messages_for_shared_subscriptions(node, raw):
    """3.3.1.3 / 4.8.2: retained messages are sent on new non-shared
    subscriptions only; a new shared subscription gets none. Live retained
    messages still reach one member."""
    pub = raw(node, version=5)
    pub.connect("shr-pub")
    pub.publish("shr/t", b"retained", qos=1, retain=True)
    mem = member(node, raw, "shr-m", "$share/g/shr/t")
    mem.expect_nothing(0.5, ptype=m.PUBLISH)
    plain = raw(node, version=5)
    plain.connect("shr-plain")
    plain.subscribe("shr/t", qos=1)
    assert plain.expect(m.PUBLISH).payload == b"retained"
    pub.publish("shr/t", b"live", qos=1, retain=True)
    assert mem.expect(m.PUBLISH).payload == b"live"


def test_unacknowledged_message_redelivered_to_another_member(node, raw):
    """4.8.2: a QoS 1 message sent to a member that leaves without
    acknowledging it (its session ends) is delivered to another member."""
    quiet = member(node, raw, "redel-quiet", auto_ack=False)
    busy = member(node, raw, "redel-busy", auto_ack=True)
    busy.subscribe("redel-sentinel", qos=0)
    pub = raw(node, version=5)
    pub.connect("redel-pub")
    stuck = None
    for i in range(4):
        pub.publish("sh/t", b"msg-%d" % i, qos=1)
        p = quiet.try_recv(0.5)
        if p is not None and p.type == m.PUBLISH:
            stuck = p
            break
    assert stuck is not None, "round robin never chose the second member"
    pub.publish("redel-sentinel", b"")
    before = drain(busy, "redel-sentinel")
    assert stuck.payload not in before
    quiet.shutdown_abrupt()
    p = busy.expect(m.PUBLISH, timeout=5)
    assert p.payload == stuck.payload


def test_unsubscribe_leaves_group(node, raw):
    """UNSUBSCRIBE of the shared filter removes the member; the remaining one
    gets every message."""
    a = member(node, raw, "leave-a")
    b = member(node, raw, "leave-b")
    assert a.unsubscribe("$share/g/sh/t").codes == [0]
    pub = raw(node, version=5)
    pub.connect("leave-pub")
    for i in range(4):
        pub.publish("sh/t", b"%d" % i, qos=1)
    assert [p.payload for p in b.publishes(4)] == [b"%d" % i for i in range(4)]
    a.expect_nothing(0.3, ptype=m.PUBLISH)


def test_shared_no_local_is_protocol_error(node, raw):
    """[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error ->
    DISCONNECT 0x82."""
    c = raw(node, version=5)
    c.connect("share-nl")
    c.send(m.subscribe(1, [("$share/g/nl/t", 1 | m.NO_LOCAL)], version=5))
    c.expect_disconnect(m.RC_PROTOCOL_ERROR)


@pytest.mark.parametrize("flt", ["$share/g", "$share/g/", "$share//t", "$share/g+/t",
                                 "$share/g#/t", "$share/g/a/#/b"])
def test_invalid_shared_filter(node, raw, flt):
    """[MQTT-4.8.2-1] [MQTT-4.8.2-2]: a ShareName of at least one character
    without / + #, followed by / and a valid filter; otherwise SUBACK 0x8F."""
    c = raw(node, version=5)
    c.connect("share-bad")
    assert c.subscribe((flt, 1)).codes == [m.RC_TOPIC_FILTER_INVALID]
    assert c.ping().type == m.PINGRESP


def test_shared_subscription_v311_members(node, raw):
    """$share works for MQTT 3.1.1 clients too (same listener, same topic
    index): messages are split between the members."""
    members = [member(node, raw, "v3share-%d" % i, version=4) for i in range(2)]
    for c in members:
        c.subscribe("v3share-sentinel", qos=0)
    pub = raw(node)
    pub.connect("v3share-pub")
    for i in range(6):
        pub.publish("sh/t", b"%d" % i, qos=1)
    pub.publish("v3share-sentinel", b"")
    per = [drain(c, "v3share-sentinel") for c in members]
    assert sorted(x for g in per for x in g) == [b"%d" % i for i in range(6)]
    assert collections.Counter(len(g) for g in per) == collections.Counter([3, 3])
