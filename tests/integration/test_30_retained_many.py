"""26 many retained messages: a subscriber that acknowledges gets every one.

Retained messages matching a new subscription are sent as the in-flight
window frees (src/broker/brk_retained_out.c), not queued all at once, so the
queue limit (mqtt.max_queued_messages, 1000 by default) drops none of them.
Each arrives with RETAIN=1 [MQTT-3.3.1-8] (3.1.1: [MQTT-3.3.1-6])."""

import pytest

import mqttraw as m
from test_20_bench import run_bench

N = 5000


def store_retained(b, prefix, qos, n=N):
    """n retained messages on prefix/0 .. prefix/<n-1>, published at qos."""
    res = run_bench(b.port, "pub", "-c", 1, "-q", qos, "--retain", "--count", n,
                    "-t", prefix + "/%n")
    assert res["status"] == "ok" and int(res["acked"]) == n, res["_ctx"]


def receive(c, n, qos, got):
    """Read n PUBLISH packets into got (topic -> count), checking each."""
    for _ in range(n):
        try:
            p = c.expect(m.PUBLISH, timeout=10)
        except m.NoPacket:
            raise AssertionError("only %d distinct retained messages arrived" % len(got))
        assert p.retain, "RETAIN=0 on %r" % p  # [MQTT-3.3.1-8]
        assert p.qos == qos, p
        got[p.topic] = got.get(p.topic, 0) + 1


@pytest.mark.parametrize("version,qos", [(4, 1), (5, 1), (5, 2)],
                         ids=["v311-qos1", "v5-qos1", "v5-qos2"])
def test_every_retained_message_arrives(broker, raw, version, qos):
    """5,000 retained messages, one subscriber to prefix/# at their QoS that
    acknowledges at once, default queue limits: all 5,000 arrive, once each,
    RETAIN=1, and nothing is dropped."""
    b = broker({"log.level": "info"})
    prefix = "rq%d" % qos
    store_retained(b, prefix, qos)
    sub = raw(b, version=version, auto_ack=True)
    sub.connect("rq-sub")
    sub.subscribe(prefix + "/#", qos=qos)
    got = {}
    receive(sub, N, qos, got)
    assert sorted(got) == sorted("%s/%d" % (prefix, i) for i in range(N))
    assert set(got.values()) == {1}
    sub.expect_nothing(0.3, ptype=m.PUBLISH)
    assert b.log_lines("queue full") == []


@pytest.mark.parametrize("version", [4, 5])
def test_retained_resume_after_reconnect(broker, raw, version):
    """A persistent session that goes away in the middle of its retained
    messages gets the rest when it comes back: the unacknowledged ones again
    (DUP=1), then those not sent yet; none is lost."""
    n = 2000
    b = broker({"log.level": "info"})
    store_retained(b, "rr", 1, n)
    props = [(m.SESSION_EXPIRY, 300)] if version == 5 else None
    sub = raw(b, version=version, auto_ack=True)
    sub.connect("rr-sub", clean=False, props=props)
    sub.subscribe("rr/#", qos=1)
    got = {}
    receive(sub, 300, 1, got)
    # with auto_ack, every PUBLISH read is acknowledged, including those read
    # while waiting for the SUBACK (stashed: the SUBACK waits for the store,
    # the retained messages do not): they count as received
    for p in sub.stash:
        if p.type == m.PUBLISH:
            got[p.topic] = got.get(p.topic, 0) + 1
    sub.close()
    b.wait_log("client disconnected client_id=rr-sub")
    sub = raw(b, version=version, auto_ack=True)
    ack = sub.connect("rr-sub", clean=False, props=props)
    assert ack.session_present
    while len(got) < n:
        receive(sub, 1, 1, got)
    assert sorted(got) == sorted("rr/%d" % i for i in range(n))
    assert b.log_lines("queue full") == []
