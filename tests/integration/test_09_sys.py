"""09 $SYS: $SYS/brokers/<node>/... published every sys.interval; '#' does not
receive them [MQTT-4.7.2-1]."""

import time

import mqttraw as m
from conftest import NODE_NAME
from mqttraw import T

PREFIX = "$SYS/brokers/%s/" % NODE_NAME
COUNTERS = ["clients/connected", "messages/received", "messages/sent",
            "bytes/received", "bytes/sent"]


def sys_values(c, want, timeout=5.0):
    """Read $SYS PUBLISHes until every topic suffix in want was seen; return
    {suffix: last payload as str}."""
    seen = {}
    deadline = time.monotonic() + T(timeout)
    while not all(w in seen for w in want):
        left = (deadline - time.monotonic()) / T(1)
        if left <= 0:
            raise AssertionError("missing %r; seen %r" % ([w for w in want if w not in seen], seen))
        p = c.expect(m.PUBLISH, timeout=left)
        if p.topic.startswith(PREFIX):
            seen[p.topic[len(PREFIX):]] = p.payload.decode("utf-8", "replace")
    return seen


def test_sys_topics_published(broker, raw):
    """version, uptime, clients/connected, messages and bytes in/out under
    $SYS/brokers/<node.name>/, published every sys.interval (1 s here)."""
    b = broker({"sys.interval": 1})
    c = raw(b, version=5)
    c.connect("sys-reader")
    c.subscribe("$SYS/#", qos=0)
    vals = sys_values(c, ["version", "uptime"] + COUNTERS, timeout=4)
    assert vals["version"].strip()
    assert any(ch.isdigit() for ch in vals["uptime"])
    for k in COUNTERS:
        assert int(vals[k]) >= 0, (k, vals[k])
    # a retained first value may predate us; a later round counts this client
    deadline = time.monotonic() + T(4)
    while int(vals["clients/connected"]) < 1 and time.monotonic() < deadline:
        vals = sys_values(c, ["clients/connected"], timeout=3)
    assert int(vals["clients/connected"]) >= 1


def test_sys_values_follow_traffic(broker, raw):
    """The counters move: clients/connected counts live clients; messages and
    bytes received / sent grow with traffic (values are re-published every
    interval)."""
    b = broker({"sys.interval": 1})
    c = raw(b, version=5)
    c.connect("sys-watch")
    c.subscribe("$SYS/brokers/+/clients/connected", "$SYS/brokers/+/messages/#",
                "$SYS/brokers/+/bytes/#", qos=0)
    before = sys_values(c, COUNTERS, timeout=4)
    extra = []
    for i in range(3):
        e = raw(b, version=4)
        e.connect("sys-extra-%d" % i)
        e.subscribe("sys/traffic", qos=0)
        extra.append(e)
    for i in range(20):
        extra[0].publish("sys/traffic", b"x" * 100, qos=0)
    for e in extra:
        e.publishes(20)

    def moved():
        now = sys_values(c, COUNTERS, timeout=4)
        return (int(now["clients/connected"]) >= int(before["clients/connected"]) + 3
                and int(now["messages/received"]) >= int(before["messages/received"]) + 20
                and int(now["messages/sent"]) >= int(before["messages/sent"]) + 60
                and int(now["bytes/received"]) >= int(before["bytes/received"]) + 2000
                and int(now["bytes/sent"]) >= int(before["bytes/sent"]) + 6000), now

    deadline = time.monotonic() + T(6)
    ok, now = moved()
    while not ok and time.monotonic() < deadline:
        ok, now = moved()
    assert ok, (before, now)


def test_hash_does_not_receive_sys(broker, raw):
    """[MQTT-4.7.2-1] '#' and '+/...' do not match $SYS topics, while
    '$SYS/#' does."""
    b = broker({"sys.interval": 1})
    wild = raw(b, version=4)
    wild.connect("sys-hash")
    wild.subscribe("#", "+/brokers/#", qos=0)
    sysc = raw(b, version=4)
    sysc.connect("sys-dollar")
    sysc.subscribe("$SYS/#", qos=0)
    sys_values(sysc, COUNTERS, timeout=4)
    sys_values(sysc, COUNTERS, timeout=4)  # two rounds published by now
    wild.expect_nothing(0.2)


def test_sys_counts_dropped_messages(broker, raw):
    """Messages the queue policy drops are counted in
    $SYS/brokers/<node>/messages/dropped (and logged): an offline persistent
    session with mqtt.max_queued_messages = 2 gets 5 QoS 1 messages, so at
    least 3 are dropped."""
    b = broker({"sys.interval": 1, "mqtt.max_queued_messages": 2})
    off = raw(b, version=4)
    off.connect("sys-offline", clean=False)
    off.subscribe("sysdrop/t", qos=1)
    off.close()
    b.wait_log("client disconnected client_id=sys-offline")
    pub = raw(b, version=4)
    pub.connect("sys-drop-pub")
    for i in range(5):
        pub.publish("sysdrop/t", b"m%d" % i, qos=1)
    b.wait_log("queue full")
    c = raw(b, version=5)
    c.connect("sys-drop-reader")
    c.subscribe("$SYS/brokers/+/messages/dropped", qos=0)
    deadline = time.monotonic() + T(5)
    vals = sys_values(c, ["messages/dropped"], timeout=4)
    while int(vals["messages/dropped"]) < 3 and time.monotonic() < deadline:
        vals = sys_values(c, ["messages/dropped"], timeout=3)
    assert int(vals["messages/dropped"]) >= 3
