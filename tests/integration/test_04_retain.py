"""04 retained messages: stored and sent on subscribe, replaced, deleted by an
empty payload, retain handling 0/1/2, retain-as-published, QoS of retained
deliveries.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import pytest

import mqttraw as m
from helpers import collect_until


def publisher(node, raw, version=4, cid="ret-pub"):
    c = raw(node, version=version)
    c.connect(cid)
    return c


@pytest.mark.parametrize("version", [4, 5])
def test_retained_sent_on_subscribe(node, raw, version):
    """(3.1.1) [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] / (5.0)
    [MQTT-3.3.1-5] [MQTT-3.3.1-9]: a retained message is stored and sent to
    a new subscription with RETAIN=1."""
    pub = publisher(node, raw, version)
    pub.publish("ret/a", b"stored", qos=1, retain=True)
    sub = raw(node, version=version)
    sub.connect("ret-sub-%d" % version)
    sub.subscribe("ret/#", qos=1)
    p = sub.expect(m.PUBLISH)
    assert (p.topic, p.payload, p.retain, p.qos) == ("ret/a", b"stored", True, 1)


def test_retained_replaced(node, raw):
    """[MQTT-3.3.1-5] a new retained message replaces the old one."""
    pub = publisher(node, raw)
    pub.publish("ret/r", b"one", qos=1, retain=True)
    pub.publish("ret/r", b"two", qos=1, retain=True)
    sub = raw(node)
    sub.connect("ret-rep-sub")
    sub.subscribe("ret/r", qos=1)
    assert sub.expect(m.PUBLISH).payload == b"two"
    sub.expect_nothing(0.3, ptype=m.PUBLISH)


@pytest.mark.parametrize("version", [4, 5])
def test_empty_payload_deletes_retained(node, raw, version):
    """(3.1.1) [MQTT-3.3.1-10] [MQTT-3.3.1-11] / (5.0) [MQTT-3.3.1-6]
    [MQTT-3.3.1-7]: a retained PUBLISH with an empty payload is forwarded
    normally to current subscribers and removes the retained message."""
    pub = publisher(node, raw, version)
    pub.publish("ret/d", b"doomed", qos=1, retain=True)
    live = raw(node, version=version)
    live.connect("ret-live-%d" % version)
    live.subscribe("ret/d", qos=1)
    assert live.expect(m.PUBLISH).payload == b"doomed"
    pub.publish("ret/d", b"", qos=1, retain=True)
    p = live.expect(m.PUBLISH)
    assert p.payload == b""
    late = raw(node, version=version)
    late.connect("ret-late-%d" % version)
    late.subscribe("ret/d", qos=1)
    late.expect_nothing(0.5, ptype=m.PUBLISH)


def test_retain_flag_0_does_not_store_or_replace(node, raw):
    """(3.1.1) [MQTT-3.3.1-12] / (5.0) [MQTT-3.3.1-8]: a non-retained PUBLISH
    neither stores nor replaces the retained message."""
    pub = publisher(node, raw)
    pub.publish("ret/k", b"kept", qos=1, retain=True)
    pub.publish("ret/k", b"transient", qos=1, retain=False)
    pub.publish("ret/n", b"never", qos=1, retain=False)
    sub = raw(node)
    sub.connect("ret-k-sub")
    sub.subscribe("ret/+", qos=1)
    p = sub.expect(m.PUBLISH)
    assert (p.topic, p.payload) == ("ret/k", b"kept")
    sub.expect_nothing(0.3, ptype=m.PUBLISH)


def test_retained_matching_wildcards(node, raw):
    """Retained messages of every topic matching the new filter are sent, and
    only those."""
    pub = publisher(node, raw)
    for t in ("rw/a", "rw/b", "rw/a/deep", "other/x"):
        pub.publish(t, t.encode(), qos=1, retain=True)
    sub = raw(node)
    sub.connect("rw-sub")
    sub.subscribe("rw/+", qos=1)
    got = sorted(p.topic for p in sub.publishes(2))
    assert got == ["rw/a", "rw/b"]
    sub.expect_nothing(0.3, ptype=m.PUBLISH)


def test_retain_handling(node, raw):
    """[MQTT-3.3.1-9] RH 0: retained sent at every subscribe;
    [MQTT-3.3.1-10] RH 1: only if the subscription did not exist;
    [MQTT-3.3.1-11] RH 2: never."""
    pub = publisher(node, raw, 5)
    pub.publish("rh/t", b"r", qos=1, retain=True)
    c = raw(node, version=5)
    c.connect("rh-sub")
    # RH 2 first: nothing
    c.subscribe(("rh/t", 1 | m.retain_handling(2)))
    c.expect_nothing(0.4, ptype=m.PUBLISH)
    c.unsubscribe("rh/t")
    # RH 1 on a new subscription: sent; again on the existing one: not sent
    c.subscribe(("rh/t", 1 | m.retain_handling(1)))
    assert c.expect(m.PUBLISH).retain
    c.subscribe(("rh/t", 1 | m.retain_handling(1)))
    c.expect_nothing(0.4, ptype=m.PUBLISH)
    # RH 0 on the existing subscription: sent again
    c.subscribe(("rh/t", 1 | m.retain_handling(0)))
    p = c.expect(m.PUBLISH)
    assert p.retain and p.payload == b"r"


def test_retain_as_published(node, raw):
    """Live messages: RAP=1 keeps the publisher's RETAIN flag [MQTT-3.3.1-13],
    RAP=0 forwards with RETAIN=0 [MQTT-3.3.1-12] ((3.1.1) [MQTT-3.3.1-9])."""
    rap = raw(node, version=5, auto_ack=True)
    rap.connect("rap-1")
    rap.subscribe(("rap/t", 1 | m.RETAIN_AS_PUBLISHED | m.retain_handling(2)))
    norap = raw(node, version=5, auto_ack=True)
    norap.connect("rap-0")
    norap.subscribe(("rap/t", 1 | m.retain_handling(2)))
    v3 = raw(node, version=4, auto_ack=True)
    v3.connect("rap-v3")
    v3.subscribe("rap/t", qos=1)
    pub = publisher(node, raw, 5)
    pub.publish("rap/t", b"R", qos=1, retain=True)
    pub.publish("rap/t", b"N", qos=1, retain=False)
    assert [(p.payload, p.retain) for p in rap.publishes(2)] == [(b"R", True), (b"N", False)]
    assert [(p.payload, p.retain) for p in norap.publishes(2)] == [(b"R", False), (b"N", False)]
    assert [(p.payload, p.retain) for p in v3.publishes(2)] == [(b"R", False), (b"N", False)]


@pytest.mark.parametrize("stored_qos,sub_qos", [(2, 1), (2, 0), (0, 2), (1, 2), (2, 2)])
def test_retained_qos_is_minimum(node, raw, stored_qos, sub_qos):
    """[MQTT-3.3.1-5] the retained message keeps its QoS; it is delivered at
    min(stored QoS, granted QoS) [MQTT-3.8.4-8]."""
    pub = publisher(node, raw, 5)
    pub.publish("rq/t", b"q", qos=stored_qos, retain=True)
    pub.ping()  # the broker has read the PUBLISH (no ack at QoS 0) before we subscribe
    sub = raw(node, version=5, auto_ack=True)
    sub.connect("rq-sub")
    sub.subscribe("rq/t", qos=sub_qos)
    p = sub.expect(m.PUBLISH)
    assert (p.qos, p.retain) == (min(stored_qos, sub_qos), True)


def test_retained_keeps_properties(node, raw):
    """[MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] a retained message keeps
    its user properties (in order) and content type."""
    pub = publisher(node, raw, 5)
    props = [(m.CONTENT_TYPE, "text/plain"), (m.USER_PROPERTY, ("k", "1")),
             (m.USER_PROPERTY, ("k", "2"))]
    pub.publish("rp/t", b"p", qos=1, retain=True, props=props)
    sub = raw(node, version=5)
    sub.connect("rp-sub")
    sub.subscribe("rp/t", qos=1)
    p = sub.expect(m.PUBLISH)
    assert p.props.get(m.CONTENT_TYPE) == "text/plain"
    assert p.props.user() == [("k", "1"), ("k", "2")]


def test_retained_not_sent_twice_with_sentinel(node, raw):
    """One retained message per topic: after many updates a new subscriber
    gets exactly the last one."""
    pub = publisher(node, raw, 5)
    for i in range(20):
        pub.publish("rl/t", b"%d" % i, qos=1, retain=True)
    sub = raw(node, version=5)
    sub.connect("rl-sub")
    sub.subscribe("rl/t", qos=1)
    sub.subscribe("rl/sentinel", qos=0)
    first = sub.expect(m.PUBLISH)
    assert first.payload == b"19"
    pub.publish("rl/sentinel", b"")
    assert collect_until(sub, "rl/sentinel") == []
