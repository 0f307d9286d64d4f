"""02 subscribe / publish: QoS 0/1/2 delivery in both versions, wildcards,
"$" topics, overlapping subscriptions, UNSUBSCRIBE, SUBACK codes, no-local and
ordering.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import pytest

import mqttraw as m
from helpers import collect_until, pipeline_publish


@pytest.mark.parametrize("version", [4, 5])
def test_qos0_exact_bytes(node, raw, version):
    """A QoS 0 PUBLISH reaches the subscriber byte for byte: 30, remaining
    length, topic, (v5: property length 0), payload; DUP 0 [MQTT-3.3.1-2]."""
    sub = raw(node, version=version)
    sub.connect("q0sub-%d" % version)
    ack = sub.subscribe("q0/t", qos=0)
    assert ack.codes == [0]
    pub = raw(node, version=version)
    pub.connect("q0pub-%d" % version)
    pub.publish("q0/t", b"hi", qos=0)
    p = sub.expect(m.PUBLISH)
    body = m.mstr("q0/t") + (b"\x00" if version == 5 else b"") + b"hi"
    assert p.raw == b"\x30" + m.varint(len(body)) + body


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [1, 2])
def test_qos_delivery(node, raw, version, qos):
    """QoS 1 and 2 reach a subscriber at the same QoS with a non-zero packet
    id [MQTT-2.2.1-4] ((3.1.1) [MQTT-2.3.1-1]), DUP 0 on first delivery
    [MQTT-3.3.1-3], payload and topic unchanged [MQTT-3.3.2-3]."""
    sub = raw(node, version=version)
    sub.connect("qsub-%d-%d" % (version, qos))
    assert sub.subscribe("qd/+", qos=qos).codes == [qos]
    pub = raw(node, version=version)
    pub.connect("qpub-%d-%d" % (version, qos))
    last = pub.publish("qd/x", b"payload-%d" % qos, qos=qos)
    assert last.rc == 0
    p = sub.expect(m.PUBLISH)
    assert (p.topic, p.payload, p.qos, p.dup, p.retain) == ("qd/x", b"payload-%d" % qos, qos, False, False)
    assert p.mid != 0
    sub.ack(p)


WILDCARD_CASES = [
    ("sport/tennis/player1/#", {"sport/tennis/player1": True, "sport/tennis/player1/ranking": True,
                                "sport/tennis/player1/score/wimbledon": True,
                                "sport/tennis/player2": False, "sport/tennis": False}),
    ("sport/#", {"sport": True, "sport/x": True, "sports": False, "x/sport": False}),
    ("sport/tennis/+", {"sport/tennis/player1": True, "sport/tennis/player2": True,
                        "sport/tennis/player1/ranking": False, "sport/tennis": False}),
    ("sport/+", {"sport": False, "sport/": True, "sport/a": True}),
    ("+/+", {"/finance": True, "a/b": True, "a": False, "a/b/c": False}),
    ("/+", {"/finance": True, "finance": False}),
    ("+", {"/finance": False, "finance": True}),
    ("+/tennis/#", {"sport/tennis": True, "sport/tennis/x/y": True, "sport/golf": False}),
    ("#", {"a": True, "a/b/c": True, "/": True}),
    ("a/b", {"a/b": True, "a/b/": False, "A/b": False, "a/b/c": False, "a": False}),
]


@pytest.mark.parametrize("flt,cases", WILDCARD_CASES, ids=[c[0] for c in WILDCARD_CASES])
def test_wildcards(node, raw, flt, cases):
    """Topic filter matching (4.7): '#' matches the parent and any number of
    levels [MQTT-4.7.1-1]; '+' matches exactly one whole level [MQTT-4.7.1-2];
    empty levels are levels; matching is case sensitive, no normalisation
    [MQTT-4.7.3-4]."""
    sub = raw(node, version=5)
    sub.connect("wc-sub")
    assert sub.subscribe(flt, "zz-sentinel", qos=0).codes == [0, 0]
    pub = raw(node, version=5)
    pub.connect("wc-pub")
    for topic in cases:
        pub.publish(topic, topic.encode(), qos=0)
    pub.publish("zz-sentinel", b"", qos=0)
    got = [p.topic for p in collect_until(sub, "zz-sentinel")]
    expected = [t for t, match in cases.items() if match]
    assert got == expected


def test_dollar_topics_not_matched_by_leading_wildcards(broker, raw):
    """[MQTT-4.7.2-1] filters starting with '#' or '+' do not match topic
    names starting with '$' (checked with the broker's own $SYS topics)."""
    b = broker({"sys.interval": 1})
    wild = raw(b, version=5)
    wild.connect("dollar-wild")
    assert wild.subscribe("#", "+/brokers/#", "+/+/+/+", qos=0).codes == [0, 0, 0]
    sys_sub = raw(b, version=5)
    sys_sub.connect("dollar-sys")
    sys_sub.subscribe("$SYS/#", qos=0)
    first = sys_sub.expect(m.PUBLISH, timeout=5)
    assert first.topic.startswith("$SYS/")
    sys_sub.expect(m.PUBLISH, timeout=5)
    pub = raw(b, version=5)
    pub.connect("dollar-pub")
    pub.publish("plain/topic", b"x")
    got = wild.expect(m.PUBLISH)
    assert got.topic == "plain/topic", "a wildcard filter received %r" % got.topic
    wild.expect_nothing(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_overlapping_subscriptions_deliver_once(node, raw, version):
    """Overlapping subscriptions: one copy at the maximum granted QoS
    [MQTT-3.3.4-2] ((3.1.1) [MQTT-3.3.5-1]); in v5 it carries the
    Subscription Identifiers of all matching subscriptions [MQTT-3.3.4-3]
    [MQTT-3.3.4-4]."""
    sub = raw(node, version=version, auto_ack=True)
    sub.connect("ov-sub-%d" % version)
    kw1 = {"sub_id": 1} if version == 5 else {}
    kw2 = {"sub_id": 2} if version == 5 else {}
    sub.subscribe("ov/#", qos=1, **kw1)
    sub.subscribe("ov/+", qos=2, **kw2)
    sub.subscribe("ov-sentinel", qos=0)
    pub = raw(node, version=version)
    pub.connect("ov-pub-%d" % version)
    pub.publish("ov/x", b"both", qos=2)
    pub.publish("ov/x/y", b"deep", qos=2)
    pub.publish("ov-sentinel", b"", qos=0)
    got = collect_until(sub, "ov-sentinel")
    assert [(p.topic, p.qos) for p in got] == [("ov/x", 2), ("ov/x/y", 1)]
    if version == 5:
        assert sorted(got[0].props.all(m.SUBSCRIPTION_ID)) == [1, 2]
        assert got[1].props.all(m.SUBSCRIPTION_ID) == [1]


def test_unsubscribe_v5(node, raw):
    """UNSUBSCRIBE deletes the subscription [MQTT-3.10.4-1]; UNSUBACK with
    the same packet id [MQTT-3.10.4-4] [MQTT-3.10.4-5], one reason code per
    filter in order: 0x00, or 0x11 when none existed [MQTT-3.11.3-1]."""
    c = raw(node, version=5)
    c.connect("unsub5")
    c.subscribe("un/a", "un/b", qos=1)
    ack = c.unsubscribe("un/a", "un/none", mid=0x4242)
    assert ack.mid == 0x4242
    assert ack.codes == [0x00, 0x11]
    pub = raw(node, version=5)
    pub.connect("unsub5-pub")
    pub.publish("un/a", b"gone", qos=1)
    pub.publish("un/b", b"kept", qos=1)
    p = c.expect(m.PUBLISH)
    assert (p.topic, p.payload) == ("un/b", b"kept")


def test_unsubscribe_v311(node, raw):
    """(3.1.1) [MQTT-3.10.4-4] [MQTT-3.10.4-5] UNSUBACK b0 02 <id>, also when
    nothing matched; the subscription is gone [MQTT-3.10.4-1]."""
    c = raw(node)
    c.connect("unsub4")
    c.subscribe("un/a", "un/b", qos=0)
    c.send(m.unsubscribe(0x0102, ["un/a"]))
    assert c.expect(m.UNSUBACK).raw == b"\xb0\x02\x01\x02"
    c.send(m.unsubscribe(0x0103, ["never/subscribed"]))
    assert c.expect(m.UNSUBACK).raw == b"\xb0\x02\x01\x03"
    pub = raw(node)
    pub.connect("unsub4-pub")
    pub.publish("un/a", b"gone")
    pub.publish("un/b", b"kept")
    assert c.expect(m.PUBLISH).topic == "un/b"


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("max_qos", [2, 1, 0])
def test_suback_granted_qos(broker, raw, version, max_qos):
    """SUBACK with the same packet id [MQTT-3.8.4-1] [MQTT-3.8.4-2] and one
    code per filter in order [MQTT-3.9.3-1]: granted QoS = min(requested,
    mqtt.max_qos); QoS 2 requests are accepted even when not supported
    [MQTT-3.2.2-10]."""
    b = broker({"mqtt.max_qos": max_qos})
    c = raw(b, version=version)
    c.connect("grant-%d-%d" % (version, max_qos))
    ack = c.subscribe(("g/0", 0), ("g/1", 1), ("g/2", 2), mid=0x0A0B)
    assert ack.mid == 0x0A0B
    assert ack.codes == [min(q, max_qos) for q in (0, 1, 2)]
    if version == 4:
        assert ack.raw == b"\x90\x05\x0a\x0b" + bytes(min(q, max_qos) for q in (0, 1, 2))


@pytest.mark.parametrize("version", [4, 5])
def test_invalid_topic_filter(node, raw, version):
    """Invalid filters ('#' not last or not a whole level, '+' not a whole
    level: [MQTT-4.7.1-1] [MQTT-4.7.1-2]) get SUBACK 0x8F (v5) / 0x80 (3.1.1,
    [MQTT-3.9.3-2]) while valid filters in the same SUBSCRIBE are granted,
    and the connection stays up."""
    c = raw(node, version=version)
    c.connect("badfilter-%d" % version)
    bad = ["a/#/b", "a+/b", "a/b#", "#/a", "sport+"]
    ack = c.subscribe(*[(f, 1) for f in bad], ("ok/+", 1))
    fail = 0x8F if version == 5 else 0x80
    assert ack.codes == [fail] * len(bad) + [1]
    assert c.ping().type == m.PINGRESP


def test_no_local(node, raw):
    """[MQTT-3.8.3-3] with No Local a client does not receive its own
    messages; other subscribers still do."""
    a = raw(node, version=5)
    a.connect("nl-a")
    a.subscribe(("nl/t", 1 | m.NO_LOCAL), ("nl/sentinel", 0))
    b = raw(node, version=5, auto_ack=True)
    b.connect("nl-b")
    b.subscribe("nl/t", qos=1)
    a.publish("nl/t", b"mine", qos=1)
    a.publish("nl/sentinel", b"", qos=0)
    assert collect_until(a, "nl/sentinel") == []
    assert b.expect(m.PUBLISH).payload == b"mine"
    # without No Local, own messages come back
    a.subscribe(("nl/t", 1))
    a.publish("nl/t", b"again", qos=1)
    assert a.expect(m.PUBLISH).payload == b"again"


def test_order_per_publisher(node, raw):
    """[MQTT-4.6.0-6] ((3.1.1) [MQTT-4.6.0-6]) messages from one publisher
    on one topic reach every subscriber in order, at QoS 0, 1 and 2, whatever
    worker each subscriber is on."""
    subs = []
    for i in range(4):
        s = raw(node, version=5 if i % 2 else 4, auto_ack=True)
        s.connect("ord-sub-%d" % i)
        s.subscribe("ord/q0", qos=0)
        s.subscribe("ord/q1", qos=1)
        s.subscribe("ord/q2", qos=2)
        subs.append(s)
    pub = raw(node, version=5)
    ack = pub.connect("ord-pub")
    window = min(10, ack.props.get(m.RECEIVE_MAXIMUM, 65535))
    n = 150
    payloads = [b"%05d" % i for i in range(n)]
    pipeline_publish(pub, "ord/q0", payloads, qos=0)
    pipeline_publish(pub, "ord/q1", payloads, qos=1, window=window)
    pipeline_publish(pub, "ord/q2", payloads, qos=2, window=window)
    for s in subs:
        got = {"ord/q0": [], "ord/q1": [], "ord/q2": []}
        for _ in range(3 * n):
            p = s.expect(m.PUBLISH, timeout=10)
            got[p.topic].append(p.payload)
        assert got["ord/q0"] == payloads
        assert got["ord/q1"] == payloads
        assert got["ord/q2"] == payloads


@pytest.mark.parametrize("pub_qos,sub_qos", [(2, 0), (2, 1), (1, 0), (0, 2), (1, 2)])
def test_delivery_qos_is_minimum(node, raw, pub_qos, sub_qos):
    """[MQTT-3.8.4-8] delivered QoS = min(published QoS, granted QoS)."""
    s = raw(node, version=5, auto_ack=True)
    s.connect("min-sub")
    s.subscribe("min/t", qos=sub_qos)
    p = raw(node, version=5)
    p.connect("min-pub")
    p.publish("min/t", b"m", qos=pub_qos)
    assert s.expect(m.PUBLISH).qos == min(pub_qos, sub_qos)


@pytest.mark.parametrize("version", [4, 5])
def test_resubscribe_replaces(node, raw, version):
    """[MQTT-3.8.4-3] a SUBSCRIBE with an identical filter replaces the
    existing subscription (new QoS), no duplicate delivery."""
    s = raw(node, version=version, auto_ack=True)
    s.connect("resub-%d" % version)
    s.subscribe("rs/t", qos=0)
    assert s.subscribe("rs/t", qos=2).codes == [2]
    s.subscribe("rs/sentinel", qos=0)
    p = raw(node, version=version)
    p.connect("resub-pub-%d" % version)
    p.publish("rs/t", b"once", qos=2)
    p.publish("rs/sentinel", b"")
    got = collect_until(s, "rs/sentinel")
    assert [(x.payload, x.qos) for x in got] == [(b"once", 2)]


def test_subscription_effective_when_suback_arrives_across_workers(node, raw):
    """A subscription holds on every worker as soon as its SUBACK is out
    ([MQTT-3.8.4-1], [MQTT-3.10.4-1] for UNSUBACK): a message published right
    after SUBACK from a connection that may live on another worker arrives,
    and one published right after UNSUBACK does not. Repeated, because the
    connections land on the workers (HAMQTT_TEST_WORKERS) by the kernel's choice."""
    for i in range(30):
        sub = raw(node, version=5)
        sub.connect("race-sub-%d" % i)
        pub = raw(node, version=5)
        pub.connect("race-pub-%d" % i)
        topic = "race/%d" % i
        sub.subscribe(topic, qos=1)
        pub.publish(topic, b"after-suback", qos=1)
        p = sub.expect(m.PUBLISH)
        assert p.payload == b"after-suback"
        sub.send(m.puback(p.mid, version=5))
        sub.unsubscribe(topic)
        pub.publish(topic, b"after-unsuback", qos=1)
        sub.expect_nothing(0.05, ptype=m.PUBLISH)
        sub.close()
        pub.close()


def check_per_publisher_order(got, n_pubs, n_msgs, complete):
    """got: payloads b"<publisher>-<seq>" in arrival order at one subscriber.
    Each publisher's messages arrive in the order sent, none twice
    [MQTT-4.6.0-6]; with complete, none missing either."""
    seqs = {}
    for payload in got:
        pub, seq = payload.split(b"-")
        seqs.setdefault(int(pub), []).append(int(seq))
    for pub in range(n_pubs):
        s = seqs.get(pub, [])
        bad = [(a, b) for a, b in zip(s, s[1:]) if b <= a]
        assert not bad, "publisher %d: out of order or repeated (prev, next): %r" % (pub, bad[:10])
        if complete:
            assert s == list(range(n_msgs)), "publisher %d: %d of %d arrived" % (
                pub, len(s), n_msgs)
        else:
            assert s, "publisher %d: nothing arrived" % pub


@pytest.mark.parametrize("qos", [0, 1])
def test_order_per_publisher_many_publishers_on_several_workers(broker, raw, qos):
    """[MQTT-4.6.0-6] 8 publishers at once (QoS 1 pipelined, 10 in flight;
    QoS 0 as fast as they can), each sending 150 messages on one topic, to 3
    subscribers, on a node with 4 workers (the connections spread over
    them, so deliveries cross worker inboxes): every subscriber sees each
    publisher's messages in the order sent, none twice; at QoS 1 all of
    them."""
    import threading
    import time
    from mqttraw import T
    b = broker({"node.workers": 4})
    n_pubs, n_msgs = 8, 150
    subs = []
    for i in range(3):
        s = raw(b, version=5, auto_ack=True)
        s.connect("ord-sub-%d" % i)
        assert s.subscribe("ord/t", qos=qos).codes == [qos]
        subs.append(s)
    pubs = []
    for i in range(n_pubs):
        p = raw(b, version=5)
        p.connect("ord-pub-%d" % i)
        pubs.append(p)
    failures = []

    def run(i):
        try:
            pipeline_publish(pubs[i], "ord/t", [b"%d-%d" % (i, k) for k in range(n_msgs)],
                             qos=qos, window=10)
            pubs[i].ping(timeout=10)  # everything sent was read by the broker
        except Exception as e:  # reported below
            failures.append((i, e))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n_pubs)]
    for t in threads:
        t.start()
    got = [[] for _ in subs]
    total = n_pubs * n_msgs
    deadline = time.monotonic() + T(30)
    quiet_since = None
    while time.monotonic() < deadline and any(len(g) < total for g in got):
        progress = False
        for s, g in zip(subs, got):
            p = s.try_recv(0.01)
            if p is not None and p.type == m.PUBLISH:
                g.append(p.payload)
                progress = True
        if progress or any(t.is_alive() for t in threads):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > T(2):
            break  # publishers done, nothing more arrives (QoS 0 may drop)
    for t in threads:
        t.join(T(10))
    assert not failures, failures
    for g in got:
        check_per_publisher_order(g, n_pubs, n_msgs, complete=(qos == 1))
