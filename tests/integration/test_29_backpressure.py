"""25 back-pressure: a publisher is slowed to what its subscribers take, so an
acknowledged QoS 1 message to a live subscriber is never dropped; a stuck
subscriber holds nobody back for more than about a second and its drops are
counted and logged (ARCHITECTURE.md, "Invariants"; src/broker/brk_conn.c).

The load runs are bounded in count and time; no timing is asserted tighter
than seconds."""

import threading
import time
import urllib.request

import pytest

import mqttraw as m
from mqttraw import T
from helpers import pipeline_publish
from test_20_bench import num, run_bench

QUIET = {"log.level": "info"}  # etc/hamqtt.conf's level: no per-pause debug lines


def dropped_total(b):
    """hamqtt_messages_dropped_total from GET /metrics."""
    b.wait_listening(b.http_port)
    url = "http://127.0.0.1:%d/metrics" % b.http_port
    with urllib.request.urlopen(url, timeout=T(5)) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("hamqtt_messages_dropped_total"):
                return int(line.rsplit(" ", 1)[1])
    raise AssertionError("no hamqtt_messages_dropped_total in /metrics")


def pairs_run(b, seconds):
    """100 publisher/subscriber pairs at QoS 1, as fast as a window of 64
    allows, for `seconds`: every acknowledged message must arrive."""
    res = run_bench(b.port, "pubsub", "-c", 100, "-q", 1, "-w", 64, "-d", seconds,
                    "--drain", 3, timeout=seconds + 60)
    ctx = res["_ctx"]
    assert res["status"] == "ok", ctx
    assert num(res, "acked") > 0, ctx
    assert num(res, "lost") == 0, ctx
    assert num(res, "dup") == 0 and num(res, "reorder") == 0, ctx
    return res


# The defaults as shipped must pass; the tighter queue makes the old defect
# (cross-worker deliveries invisible to the pause, an idle subscriber taken for
# a stuck one) show in every run instead of one in four.
@pytest.mark.parametrize("overrides,runs,seconds", [
    ({}, 2, 5),
    ({"mqtt.max_queued_messages": 100}, 1, 4),
    ({"mqtt.max_queued_bytes": 20000}, 1, 4),
], ids=["defaults", "queue100", "bytes20k"])
def test_pairs_qos1_nothing_acknowledged_is_dropped(broker, overrides, runs, seconds):
    b = broker(dict(QUIET, **overrides))
    for _ in range(runs):
        pairs_run(b, seconds)
    assert b.log_lines("queue full") == [], b.log_lines("queue full")[:5]
    assert dropped_total(b) == 0


def test_fan_in_qos1_nothing_acknowledged_is_dropped(broker):
    """100 publishers feeding one subscriber in the same loop turns, on both
    workers, at the default limits: nothing acknowledged is lost."""
    b = broker(QUIET)
    res = run_bench(b.port, "pubsub", "--pubs", 100, "--subs", 1, "-q", 1, "-w", 64,
                    "-d", 4, "--drain", 3, "-T", "bench/#", timeout=70)
    ctx = res["_ctx"]
    assert res["status"] == "ok" and num(res, "acked") > 0, ctx
    assert num(res, "lost") == 0 and num(res, "dup") == 0, ctx
    assert b.log_lines("queue full") == [], b.log_lines("queue full")[:5]
    assert dropped_total(b) == 0


def test_slow_subscriber_pauses_publisher(broker, raw):
    """A subscriber that reads slowly but acknowledges everything: the
    publisher's PUBACKs never run ahead of what the subscriber received by
    more than the window plus the queue (its sends block instead), it was
    paused (logged at debug), and nothing is dropped."""
    inflight, qmax, n = 10, 100, 600
    b = broker({"mqtt.max_inflight": inflight, "mqtt.max_queued_messages": qmax})
    sub = raw(b)
    sub.connect("bp-slow-sub")
    sub.subscribe("bp/slow", qos=1)
    pub = raw(b)
    pub.connect("bp-slow-pub")

    got = []
    done = threading.Event()
    errors = []

    def consume():
        try:
            while len(got) < n:
                p = sub.expect(m.PUBLISH, timeout=5)
                got.append(int(p.payload))
                sub.send(m.puback(p.mid))
                time.sleep(0.004)  # a slow device: ~250 messages/s at best
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            done.set()

    acked = [0]
    lead = [0]
    outstanding = set()

    def settle():
        p = pub.expect(m.PUBACK, timeout=15)
        outstanding.discard(p.mid)
        acked[0] += 1
        # received is read after the PUBACK: the lead can only be overstated
        lead[0] = max(lead[0], acked[0] - len(got))

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    for i in range(n):
        while len(outstanding) >= 50:
            settle()
        mid = pub.next_mid()
        pub.send(m.publish("bp/slow", str(i).encode(), qos=1, mid=mid))
        outstanding.add(mid)
    while outstanding:
        settle()
    assert done.wait(T(30)), "subscriber did not finish"
    assert dropped_total(b) == 0
    assert got == list(range(n)), "%d of %d received (%r)" % (len(got), n, errors)
    assert not errors, errors
    # window + queue, plus the one message a publisher adds after the pause
    assert lead[0] <= inflight + qmax + 1, "publisher ran %d messages ahead" % lead[0]
    assert b.log_lines("paused: subscriber bp-slow-sub is behind")
    assert b.log_lines("queue full") == []


def test_stuck_subscriber_does_not_hold_publisher(broker, raw):
    """A subscriber that stops reading entirely: the publisher is paused for
    about a second at most, then runs at full speed; the subscriber's excess
    messages are dropped, counted in /metrics and logged."""
    inflight, qmax, n = 10, 100, 2000
    b = broker({"mqtt.max_inflight": inflight, "mqtt.max_queued_messages": qmax})
    sub = raw(b, rcvbuf=4096)
    sub.connect("bp-stuck-sub")
    sub.subscribe("bp/stuck", qos=1)  # and never reads again
    pub = raw(b)
    pub.connect("bp-stuck-pub")
    t0 = time.monotonic()
    payloads = [("%d" % i).encode() for i in range(n)]
    try:
        pipeline_publish(pub, "bp/stuck", payloads, qos=1, window=50)
    except m.NoPacket:
        raise AssertionError("publisher held back: no PUBACK for %.0f s" % pub.timeout)
    took = time.monotonic() - t0
    # paused at most ~1 s; a publisher held back per message would need minutes
    assert took < T(15), "publisher held back %.1f s" % took
    assert dropped_total(b) >= n - qmax - inflight
    b.wait_log("client_id=bp-stuck-sub queue full")
