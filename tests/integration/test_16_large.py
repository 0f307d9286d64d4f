"""16 large payloads: messages of 16 KiB and more are written from the stored
message itself (writev) instead of being copied per subscriber; they must reach
every subscriber byte-exact and in order, mixed with small ones
[MQTT-4.6.0-6], at every QoS, in 3.1.1 and 5.0."""

import hashlib
import os

import pytest

import mqttraw as m


def payload(i, size):
    seed = hashlib.sha256(b"%d" % i).digest()
    return (seed * (size // len(seed) + 1))[:size]


SIZES = [100, 20000, 300000, 16384, 1, 65536, 262144, 17]


@pytest.mark.parametrize("version", [4, 5])
def test_mixed_sizes_in_order_to_several_subscribers(broker, raw, version):
    b = broker({"mqtt.max_packet_size": "1MB"})
    subs = []
    for k in range(3):
        s = raw(b, version=version, auto_ack=True)
        s.connect("large-sub-%d-%d" % (version, k))
        s.subscribe("big/#", qos=2)
        subs.append(s)
    pub = raw(b, version=version)
    pub.connect("large-pub-%d" % version)
    sent = []
    for i, size in enumerate(SIZES * 2):
        qos = i % 3
        data = payload(i, size)
        pub.publish("big/%d" % (i % 2), data, qos=qos)
        sent.append(data)
    for s in subs:
        got = [p.payload for p in s.publishes(len(sent), timeout=15)]
        assert [len(g) for g in got] == [len(d) for d in sent]
        assert got == sent


def test_large_to_a_slow_reader_then_drained(broker, raw):
    """A subscriber that reads late still gets every large QoS 1 message, in
    order, once it reads (output pending counts the unsent payloads)."""
    b = broker({"mqtt.max_packet_size": "1MB"})
    slow = raw(b, version=4, rcvbuf=4096)
    slow.connect("large-slow")
    slow.subscribe("bigslow/t", qos=1)
    pub = raw(b, version=4)
    pub.connect("large-slow-pub")
    sent = [payload(i, 200000 + i) for i in range(12)]
    for d in sent:
        pub.publish("bigslow/t", d, qos=1)
    got = []
    for _ in range(len(sent)):
        p = slow.expect(m.PUBLISH, timeout=15)
        slow.send(m.puback(p.mid))
        got.append(p.payload)
    assert got == sent
