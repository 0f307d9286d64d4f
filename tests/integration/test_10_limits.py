"""10 limits: max connections, max subscriptions, max topic levels, client id
length, and bounded memory with a slow reader under a QoS 0 flood.

Statement ids are MQTT 5.0 unless marked (3.1.1)."""

import threading
import time

import pytest

import mqttraw as m
from mqttraw import SANITIZED, T
from conftest import wait_until


def test_max_connections(broker, raw):
    """mqtt.max_connections: beyond the limit a v5 client gets CONNACK 0x97
    (Quota exceeded) and a 3.1.1 client CONNACK 0x03 (Server unavailable),
    then close [MQTT-3.2.2-7] ((3.1.1) [MQTT-3.2.2-5]); once a slot frees, new
    clients are accepted again."""
    b = broker({"mqtt.max_connections": 2})
    a = raw(b, version=5)
    a.connect("mc-a")
    c = raw(b, version=4)
    c.connect("mc-b")
    over5 = raw(b, version=5)
    over5.send(m.connect("mc-over5", version=5))
    got = over5.wait_closed()
    assert len(got) == 1 and got[0].type == m.CONNACK, got
    assert got[0].rc == m.RC_QUOTA_EXCEEDED and not got[0].session_present
    over4 = raw(b, version=4)
    over4.send(m.connect("mc-over4", version=4))
    assert [p.raw for p in over4.wait_closed()] == [b"\x20\x02\x00\x03"]
    a.disconnect()

    def accepted():
        n = raw(b, version=4)
        n.send(m.connect("mc-new", version=4))
        p = n.recv()
        ok = p.raw == b"\x20\x02\x00\x00"
        n.disconnect()
        return ok
    wait_until(accepted, timeout=5, interval=0.1, what="a free connection slot")
    assert c.ping().type == m.PINGRESP


@pytest.mark.parametrize("version", [4, 5])
def test_max_subscriptions(broker, raw, version):
    """mqtt.max_subscriptions per client: further filters get SUBACK 0x97
    (v5) / 0x80 (3.1.1); re-subscribing an existing filter is a replacement
    [MQTT-3.8.4-3] and still granted."""
    b = broker({"mqtt.max_subscriptions": 2})
    c = raw(b, version=version)
    c.connect("maxsub-%d" % version)
    fail = m.RC_QUOTA_EXCEEDED if version == 5 else 0x80
    assert c.subscribe(("ms/a", 1), ("ms/b", 1), ("ms/c", 1)).codes == [1, 1, fail]
    assert c.subscribe(("ms/d", 0)).codes == [fail]
    assert c.subscribe(("ms/a", 2)).codes == [2]
    c.unsubscribe("ms/b")
    assert c.subscribe(("ms/d", 0)).codes == [0]


@pytest.mark.parametrize("version", [4, 5])
def test_max_topic_levels(broker, raw, version):
    """mqtt.max_topic_levels: a PUBLISH with a deeper topic is refused: v5
    DISCONNECT 0x90 (Topic Name invalid), 3.1.1 close."""
    b = broker({"mqtt.max_topic_levels": 4})
    c = raw(b, version=version)
    c.connect("levels-%d" % version)
    c.publish("a/b/c/d", b"ok", qos=1)
    c.send(m.publish("a/b/c/d/e", b"deep", qos=0, version=version))
    c.expect_disconnect(m.RC_TOPIC_NAME_INVALID)


@pytest.mark.parametrize("version", [4, 5])
def test_max_clientid_len(broker, raw, version):
    """mqtt.max_clientid_len: a longer client id is rejected with CONNACK
    0x85 (v5, [MQTT-3.1.3-8]) / 0x02 (3.1.1, [MQTT-3.1.3-9]), then close."""
    b = broker({"mqtt.max_clientid_len": 10})
    ok = raw(b, version=version)
    ok.connect("x" * 10)
    c = raw(b, version=version)
    c.send(m.connect("y" * 11, version=version))
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == m.CONNACK
    assert got[0].rc == (m.RC_CLIENT_ID_NOT_VALID if version == 5 else 2)


# mqtt.max_outbuf = 1GB lets the whole flood pile up for the slow reader: the
# ceiling must catch it (strict xfail), so this test can fail. Sanitizer
# builds only get a loose ceiling (quarantine), so that case runs plain only.
TIGHT = pytest.param("1GB", id="outbuf_1GB", marks=[
    pytest.mark.xfail(strict=True, raises=AssertionError,
                      reason="the RSS ceiling catches a 1GB output buffer")])


@pytest.mark.parametrize("outbuf", [pytest.param(None, id="default")] +
                         ([] if SANITIZED else [TIGHT]))
def test_slow_reader_bounded_memory(broker, raw, outbuf):
    """A subscriber that stops reading while a publisher floods QoS 0 (20k x
    4 KiB = 80 MiB) cannot make the broker's memory grow beyond its output
    buffer bound (mqtt.max_outbuf, 8MB by default): the RSS ceiling is the
    baseline + 60 MiB, well under the flood, so a broker that buffered the
    whole flood for the slow reader (e.g. mqtt.max_outbuf = 1GB) fails it.
    The publisher is not blocked and other clients keep working meanwhile."""
    b = broker({"mqtt.max_outbuf": outbuf} if outbuf else {})
    slow = raw(b, version=4, rcvbuf=4096)
    slow.connect("slow-reader")
    slow.subscribe("flood/t", qos=0)
    probe_sub = raw(b, version=5, auto_ack=True)
    probe_sub.connect("probe-sub")
    probe_sub.subscribe("probe/t", qos=1)
    probe_pub = raw(b, version=5)
    probe_pub.connect("probe-pub")
    flood = raw(b, version=4)
    flood.connect("flooder")

    baseline = b.rss_kb()
    # sanitizers keep freed memory in quarantine: only a loose ceiling there
    # 60 MiB: the 80 MiB flood buffered whole (max_outbuf = 1GB) still breaks it
    # (the strict xfail below proves it); the 8MB output bound plus four
    # workers' allocator arenas under a loaded machine once reached 34.7 MiB
    # over the baseline, and 51.6 MiB in make test's 4-worker pass (2026-12-06)
    limit_kb = baseline + 60 * 1024 if not SANITIZED else max(600 * 1024, baseline + 400 * 1024)
    n, size, batch = 20000, 4096, 200
    packet = m.publish("flood/t", b"f" * size, qos=0)
    flood.sock.settimeout(T(60))
    errors = []

    def pump():
        try:
            chunk = packet * batch
            for _ in range(n // batch):
                flood.sock.sendall(chunk)
            flood.sock.sendall(m.pingreq())
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=pump, daemon=True)
    t0 = time.monotonic()
    t.start()
    peak = baseline
    probes = 0
    while t.is_alive() and time.monotonic() - t0 < T(90):
        peak = max(peak, b.rss_kb())
        assert peak < limit_kb, "broker RSS %d kB (baseline %d kB)" % (peak, baseline)
        start = time.monotonic()
        probe_pub.publish("probe/t", b"probe-%d" % probes, qos=1)
        p = probe_sub.expect(m.PUBLISH, timeout=5)
        assert p.payload == b"probe-%d" % probes
        assert time.monotonic() - start < T(5)
        probes += 1
        time.sleep(0.05)
    t.join(T(5))
    assert not t.is_alive(), "publisher still blocked after %.0fs" % T(90)
    assert not errors, errors
    assert flood.expect(m.PINGRESP, timeout=30).type == m.PINGRESP
    peak = max(peak, b.rss_kb())
    assert peak < limit_kb, "broker RSS %d kB (baseline %d kB)" % (peak, baseline)
    # still serving
    probe_pub.publish("probe/t", b"after", qos=1)
    assert probe_sub.expect(m.PUBLISH).payload == b"after"
    late = raw(b, version=5)
    late.connect("late-client")
    assert late.ping().type == m.PINGRESP
    assert b.alive()
