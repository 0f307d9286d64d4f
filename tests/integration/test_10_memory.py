"""10 memory bounds: what a client can make the node hold, with the shipped
defaults (issue 8 "Memory has no default bound"): bytes per session queue,
the node-wide bound on queued bytes (mqtt.max_queued_bytes_total) and its
drop counters, the session expiry cap, and topic aliases.

RSS checks compare the growth with what the old defaults let through (several
times the bound), so they fail if a bound is gone, yet leave room for the
allocator. Under a sanitizer (mqttraw.SANITIZED) RSS includes the
sanitizer's quarantine, so only the counters are checked there."""

import time

import pytest

import mqttraw as m
from mqttraw import SANITIZED, T
from promtext import by_reason
from conftest import wait_until
from helpers import collect_until

MIB = 1024 * 1024
PAYLOAD = 512 * 1024  # under the default mqtt.max_packet_size (1MB)


def dropped(b, reason):
    return by_reason(b)[("hamqtt_messages_dropped_by_reason_total", reason)]


def vm_data_kb(b):
    """VmData: heap and anonymous mappings, touched or not (a calloc'd table
    the kernel has not paged in yet shows here, not in RSS)."""
    with open("/proc/%d/status" % b.pid) as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1])
    raise AssertionError("no VmData for pid %d" % b.pid)


def queued_bytes(b):
    return by_reason(b)[("hamqtt_queued_bytes", None)]


def offline_session(b, raw, cid, topic):
    """A persistent QoS 1 subscriber of topic, offline once this returns."""
    c = raw(b, version=5)
    c.connect(cid, clean=False, props=[(m.SESSION_EXPIRY, 0xFFFFFFFF)])
    c.subscribe(topic, qos=1)
    c.disconnect()
    b.wait_log("client disconnected client_id=%s addr" % cid)


def flood(pub, topic, n, size=PAYLOAD):
    body = b"q" * size
    for i in range(n):
        pub.publish(topic, b"%06d" % i + body[6:], qos=1)


def test_session_queue_bytes_bounded_by_default(broker, raw):
    """With the shipped defaults an offline session holds at most
    mqtt.max_queued_bytes (16MB) of messages, not 1000 x 1MB: 100 messages of
    512KB leave the newest 31 (16MB / 512KB, topic bytes counted), the rest
    are dropped as queue_full, and the node's RSS grows by well under the
    50MB published."""
    b = broker()
    offline_session(b, raw, "qb-sess", "qb/t")
    pub = raw(b, version=5)
    pub.connect("qb-pub")
    baseline = b.rss_kb()
    flood(pub, "qb/t", 100)
    grown = (b.rss_kb() - baseline) // 1024
    if not SANITIZED:
        assert grown < 32, "RSS grew %d MiB for a 16MB queue bound" % grown
    assert dropped(b, "queue_full") == 69
    assert 15 * MIB < queued_bytes(b) <= 16 * MIB
    c = raw(b, version=5, auto_ack=True)
    assert c.connect("qb-sess", clean=False,
                     props=[(m.SESSION_EXPIRY, 0xFFFFFFFF)]).session_present
    c.subscribe("qb/end", qos=0)
    pub.publish("qb/end", b"")
    got = [int(p.payload[:6]) for p in collect_until(c, "qb/end", timeout=20)]
    assert got == list(range(69, 100))
    wait_until(lambda: queued_bytes(b) == 0, timeout=5, what="queue accounted back to 0")


def test_node_wide_queue_bound(broker, raw):
    """Four offline persistent sessions (expiry 0xFFFFFFFF) flooded with
    512KB messages on their own topics (80MB in all; 64MB within their
    per-session bounds) stay within the node-wide bound: offline sessions
    get 3/4 of mqtt.max_queued_bytes_total (24MB -> 18MB). The drops are
    counted as node_full, logged once per interval, and the bytes are given
    back when the sessions go."""
    b = broker({"mqtt.max_queued_bytes_total": "24MB"})
    for i in range(4):
        offline_session(b, raw, "nb-%d" % i, "nb/%d" % i)
    pub = raw(b, version=5)
    pub.connect("nb-pub")
    baseline = b.rss_kb()
    for i in range(4):
        flood(pub, "nb/%d" % i, 40)
    grown = (b.rss_kb() - baseline) // 1024
    if not SANITIZED:
        assert grown < 40, "RSS grew %d MiB for an 18MB node-wide bound" % grown
    q = queued_bytes(b)
    # the bound holds up to the batching slack: 256KB per worker + one message
    assert q <= 18 * MIB + 2 * 256 * 1024 + PAYLOAD, q
    assert q > 12 * MIB, q
    # every message not queued was dropped and counted: most of them at the
    # node bound, a few (session 0, alone at first) at its own 16MB
    node_full, queue_full = dropped(b, "node_full"), dropped(b, "queue_full")
    assert node_full + queue_full >= 160 - (q + PAYLOAD) // PAYLOAD, (node_full, queue_full)
    assert node_full >= 100, (node_full, queue_full)
    assert by_reason(b)[("hamqtt_queued_bytes_limit", None)] == 24 * MIB
    assert b.log_lines("node queue limit reached"), "node_full drops not logged"
    # the attacker leaves: clean start discards the sessions and their queues
    for i in range(4):
        c = raw(b, version=5)
        assert not c.connect("nb-%d" % i, clean=True).session_present
        c.disconnect()
    wait_until(lambda: queued_bytes(b) == 0, timeout=5, what="queued bytes given back")


def test_node_bound_leaves_a_quarter_to_connected_sessions(broker, raw):
    """Offline sessions fill at most 3/4 of mqtt.max_queued_bytes_total; a
    connected subscriber that is behind (Receive Maximum 1, acknowledging
    later) still gets its messages queued in the last quarter: none of them
    is dropped while the offline sessions are refused."""
    b = broker({"mqtt.max_queued_bytes_total": "24MB"})
    for i in range(3):
        offline_session(b, raw, "nq-%d" % i, "nq/%d" % i)
    pub = raw(b, version=5)
    pub.connect("nq-pub")
    for i in range(3):
        flood(pub, "nq/%d" % i, 20)  # 10MB each: 30MB asked, over the whole bound
    assert dropped(b, "node_full") > 0
    before = dropped(b, "node_full")
    live = raw(b, version=5)
    live.connect("nq-live", props=[(m.RECEIVE_MAXIMUM, 1)])
    live.subscribe("nq/live", qos=1)
    flood(pub, "nq/live", 10)  # 1 in flight, 9 queued (4.5MB)
    assert dropped(b, "node_full") == before
    got = []
    for _ in range(10):
        p = live.expect(m.PUBLISH, timeout=10)
        got.append(int(p.payload[:6]))
        live.ack(p)
    assert got == list(range(10))


def test_session_expiry_capped_by_default(broker, raw):
    """mqtt.session_expiry_max defaults to 2h: a v5 client asking for
    0xFFFFFFFF (never) gets Session Expiry Interval 7200 in CONNACK (5.0
    3.2.2.3.2: the server tells the client the value it uses instead)."""
    b = broker()
    c = raw(b, version=5)
    ack = c.connect("se-default", clean=False, props=[(m.SESSION_EXPIRY, 0xFFFFFFFF)])
    assert ack.props.get(m.SESSION_EXPIRY) == 7200


@pytest.mark.parametrize("version", [4, 5])
def test_session_expiry_cap_ends_session(broker, raw, version):
    """A configured cap of 2s: the v5 CONNACK says 2, and the session (v5 asking
    for 300s, or v3.1.1 clean session 0, which would never expire) is gone
    after it: session present 0 on return."""
    b = broker({"mqtt.session_expiry_max": "2s"})
    cid = "se-cap-%d" % version
    c = raw(b, version=version)
    props = [(m.SESSION_EXPIRY, 300)] if version == 5 else None
    ack = c.connect(cid, clean=False, props=props)
    if version == 5:
        assert ack.props.get(m.SESSION_EXPIRY) == 2
    c.subscribe("se/t", qos=1)
    c.disconnect()
    b.wait_log("session expired client_id=%s" % cid, timeout=T(10))
    c2 = raw(b, version=version)
    assert not c2.connect(cid, clean=False, props=props).session_present


def test_topic_alias_maximum_default(broker, raw):
    """The default Topic Alias Maximum is 10 (CONNACK), and an alias above it
    is a protocol error: DISCONNECT 0x94 [MQTT-3.3.2-9] [MQTT-3.3.2-10]."""
    b = broker()
    c = raw(b, version=5)
    ack = c.connect("ta-default")
    assert ack.props.get(m.TOPIC_ALIAS_MAXIMUM) == 10
    c.send(m.publish("ta/t", b"x", props=[(m.TOPIC_ALIAS, 10)], version=5))
    assert c.ping().type == m.PINGRESP
    c.send(m.publish("ta/t", b"x", props=[(m.TOPIC_ALIAS, 11)], version=5))
    c.expect_disconnect(m.RC_TOPIC_ALIAS_INVALID)


def test_high_topic_alias_costs_no_table(broker, raw):
    """With mqtt.topic_alias_maximum = 65535, 1000 connections each setting
    alias 65535 add about a KB each, not a 65,536-entry table each (512KB
    apiece: 500MB of address space, paged in as the allocator reuses it)."""
    b = broker({"mqtt.topic_alias_maximum": 65535})
    n = 1000
    conns = []
    for i in range(n):
        c = raw(b, version=5)
        c.connect("ta-hi-%d" % i)
        conns.append(c)
    assert conns[-1].ping().type == m.PINGRESP
    base_rss, base_data = b.rss_kb(), vm_data_kb(b)
    for c in conns:
        c.send(m.publish("ta/hi", b"x", props=[(m.TOPIC_ALIAS, 65535)], version=5))
    for c in conns:
        c.send(m.publish("", b"again", props=[(m.TOPIC_ALIAS, 65535)], version=5))
        assert c.ping().type == m.PINGRESP  # both PUBLISHes were accepted
    rss = (b.rss_kb() - base_rss) // 1024
    data = (vm_data_kb(b) - base_data) // 1024
    if not SANITIZED:
        assert rss < 16 and data < 64, \
            "%d aliases: RSS +%d MiB, VmData +%d MiB" % (n, rss, data)
    assert b.alive()
