"""
test_36_store_health.py - a session store in trouble is reported, and what
needs it waits (issue 9: backend trouble).

A real redis-server on a free loopback port (its files in tmp_path) is the
node's store (session.store = redis). Killed with SIGKILL while the node runs:
the first write that needs it fails, and the node says so in one log line
(then at most one reminder per 10 s), in /api/v5/status (still 200: the node
serves everything that needs no store, see ARCHITECTURE.md "Persistence"),
in /metrics (hamqtt_store_up 0) and in $SYS (store/healthy 0). QoS 0 between
clean sessions still flows; a QoS 1 PUBLISH that reached a persistent
session is not acknowledged until Redis is back on the same port, then the
PUBACK arrives, the message is delivered and the node logs one "back" line.

Redis runs with an fsync'd append-only file (appendfsync always) so that
its restart after SIGKILL has what it acknowledged: the stored session the
queued message belongs to (a Redis that comes back empty is data loss on
the Redis side, another story).
"""

import json
import os
import signal
import time
import urllib.error
import urllib.request

import mqttraw as m
from conftest import NODE_NAME, require, wait_until
from redisfx import REDIS, command, redis  # noqa: F401 (the fixture)
from mqttraw import PUBACK, PUBLISH, T

SYS = "$SYS/brokers/%s/" % NODE_NAME


def http(b, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (b.http_port, path))
    try:
        with urllib.request.urlopen(req, timeout=T(5)) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def status(b):
    code, body = http(b, "/api/v5/status")
    assert code == 200, "the store's state must not change the health check: %s %s" % (code, body)
    return json.loads(body)["store"]


def metrics(b):
    """{sample line without value: value} of /metrics."""
    code, body = http(b, "/metrics")
    assert code == 200
    out = {}
    for ln in body.splitlines():
        if ln and not ln.startswith("#"):
            k, v = ln.rsplit(" ", 1)
            out[k] = v
    return out


def store_up(b, backend):
    return metrics(b).get('hamqtt_store_up{node="%s",backend="%s"}' % (NODE_NAME, backend))


def sys_store(c, timeout=5.0):
    """The next values of $SYS .../store/healthy and .../store/backend."""
    seen = {}
    deadline = time.monotonic() + T(timeout)
    while len(seen) < 2:
        left = (deadline - time.monotonic()) / T(1)
        if left <= 0:
            raise AssertionError("no $SYS store values; seen %r" % seen)
        p = c.expect(PUBLISH, timeout=left)
        if p.topic in (SYS + "store/healthy", SYS + "store/backend"):
            seen[p.topic[len(SYS) + 6:]] = p.payload.decode()
    return seen


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_redis_down_reported_and_qos1_waits(redis, broker, raw):
    """Redis SIGKILLed and started again: reported everywhere, QoS 0 flows,
    the QoS 1 PUBACK waits for it. (redis is the first fixture: torn down
    after the broker, which then stops with its store up.)"""
    b = broker({"session.store": "redis", "session.redis.server": "127.0.0.1:%d" % redis.port,
                "session.redis.timeout": "1s", "sys.interval": 1})
    st = status(b)
    assert st["backend"] == "redis" and st["durable"] is True
    assert st["healthy"] is True and st["down_since_s"] is None
    assert "127.0.0.1:%d" % redis.port in st["description"]
    assert store_up(b, "redis") == "1"
    watch = raw(b, version=5)
    watch.connect("sys-watch")
    watch.subscribe("$SYS/brokers/+/store/#", qos=0)
    assert sys_store(watch) == {"healthy": "1", "backend": "redis"}

    # persistent subscriber and publisher, stored while Redis is up
    sub = raw(b)
    sub.connect("p-sub", clean=False)
    sub.subscribe("dur/t", qos=1)
    pub = raw(b)
    pub.connect("p-pub", clean=False)
    pub.publish("dur/t", b"before", qos=1)
    p = sub.expect(PUBLISH)
    assert p.payload == b"before"
    sub.ack(p)

    redis.kill()
    down_at = time.monotonic()
    # a QoS 1 message for a persistent session needs the store: no PUBACK
    pub.send(m.publish("dur/t", b"while-down", qos=1, mid=77))
    wait_until(lambda: not status(b)["healthy"], 10, 0.1, "status: store unhealthy")
    st = status(b)
    assert st["backend"] == "redis"
    assert isinstance(st["down_since_s"], (int, float)) and st["down_since_s"] > 1.7e9
    assert st["down_for_s"] >= 0
    assert "disconnected" in st["description"], st
    wait_until(lambda: store_up(b, "redis") == "0", 5, 0.1, "hamqtt_store_up 0")
    wait_until(lambda: sys_store(watch)["healthy"] == "0", 10, 0, "$SYS store/healthy 0")
    # QoS 0 between clean sessions needs no store
    a = raw(b)
    a.connect("c-sub")
    a.subscribe("plain/t", qos=0)
    z = raw(b)
    z.connect("c-pub")
    z.publish("plain/t", b"q0", qos=0)
    assert a.expect(PUBLISH, timeout=5).payload == b"q0"
    pub.expect_nothing(timeout=2, ptype=PUBACK)
    b.wait_log("store redis: down (")

    redis.start()  # same port, same append-only file
    ack = pub.expect(PUBACK, timeout=20, mid=77)
    assert ack.mid == 77
    down_for = time.monotonic() - down_at
    got = []
    deadline = time.monotonic() + T(10)
    while b"while-down" not in got and time.monotonic() < deadline:
        p = sub.try_recv(0.5)
        if p is not None and p.type == PUBLISH:
            got.append(bytes(p.payload))
            sub.ack(p)
    assert b"while-down" in got
    wait_until(lambda: status(b)["healthy"], 10, 0.1, "status: store healthy again")
    st = status(b)
    assert st["down_since_s"] is None and "disconnected" not in st["description"]
    assert store_up(b, "redis") == "1"
    mt = metrics(b)
    key = '{node="%s"}' % NODE_NAME
    assert int(mt["hamqtt_store_retries_total" + key]) >= 1
    assert int(mt["hamqtt_store_batches_total" + key]) >= 1
    assert int(mt["hamqtt_store_failed_batches_total" + key]) == 0
    b.wait_log("store redis: back after")
    assert len(b.log_lines("store redis: down (")) == 1, b.log_lines("store redis:")
    assert len(b.log_lines("store redis: back after")) == 1
    reminders = b.log_lines("store redis: still down")
    assert len(reminders) <= down_for / 10 + 1, reminders


def test_local_store_reported(broker):
    """The node-local LMDB store: healthy, named, described (its directory)."""
    b = broker({"session.store": "local", "sys.interval": 1})
    st = status(b)
    assert st["backend"] == "local" and st["durable"] is True and st["healthy"] is True
    assert st["down_since_s"] is None and st["down_for_s"] is None
    assert "LMDB" in st["description"]
    assert store_up(b, "local") == "1"


def test_memory_store_reported(broker, raw):
    """session.store = memory: nothing to be down; $SYS says so too."""
    b = broker({"session.store": "memory", "sys.interval": 1})
    st = status(b)
    assert st == {"backend": "memory", "durable": False, "healthy": True, "description": "",
                  "down_since_s": None, "down_for_s": None}
    assert store_up(b, "memory") == "1"
    c = raw(b, version=5)
    c.connect("sys-mem")
    c.subscribe("$SYS/brokers/+/store/#", qos=0)
    assert sys_store(c) == {"healthy": "1", "backend": "memory"}


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_redis_back_empty_sessions_written_again(redis, broker, raw):
    """Redis comes back without its data (no persistence of its own): the
    write waiting for it fails (its session is missing), the publisher is
    told to send again (no PUBACK for what was not stored), the node writes
    the sessions it holds again whole, and the resent message is stored and
    delivered; a later kill -9 of the node would find the session in Redis."""
    import shutil
    b = broker({"session.store": "redis", "session.redis.server": "127.0.0.1:%d" % redis.port,
                "session.redis.timeout": "1s"})
    sub = raw(b)
    sub.connect("e-sub", clean=False)
    sub.subscribe("emp/t", qos=1)
    sub.disconnect()
    pub = raw(b)
    pub.connect("e-pub", clean=False)
    redis.kill()
    for f in os.listdir(redis.dir):  # its data is gone
        if f.startswith(("aof-", "appendonly", "dump")):
            p = os.path.join(redis.dir, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
    pub.send(m.publish("emp/t", b"x", qos=1, mid=5))
    time.sleep(0.5)
    redis.start()
    # not stored: no PUBACK, the connection closes (v3: the client sends again)
    pub.wait_closed(timeout=T(15))
    b.wait_log("client_id=e-sub written again whole", timeout=10)
    pub = raw(b)
    pub.connect("e-pub", clean=False)
    assert pub.publish("emp/t", b"x", qos=1, dup=True, mid=5).type == PUBACK
    sub = raw(b)
    assert sub.connect("e-sub", clean=False).session_present
    p = sub.expect(PUBLISH, timeout=T(5))
    assert p.payload == b"x"
    reply = command(redis.port, "HEXISTS", "hq:sess", "e-sub")
    assert reply in (b":1",), reply


def test_resumed_pubrel_waits_for_the_store(redis, broker, raw):
    """A PUBREL resent on a resumed session [MQTT-4.4.0-1] leaves only once
    its state is stored, like the first one: the client delivers on PUBREL
    and forgets the id, so if the node died before the store knew, it would
    send the PUBLISH again and the client take it for a new message. Redis
    is frozen (SIGSTOP) between the PUBREC and the reconnect."""
    b = broker({"session.store": "redis", "session.redis.server": "127.0.0.1:%d" % redis.port,
                "session.redis.timeout": "1s"})
    persist = [(m.SESSION_EXPIRY, 300)]
    sub = raw(b, version=5)
    sub.connect("rp-sub", clean=False, props=persist)
    sub.subscribe("rp/t", qos=2)
    pub = raw(b)
    pub.connect("rp-pub")
    pub.publish("rp/t", b"x", qos=2)
    p = sub.expect(PUBLISH)
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        sub.send(m.pubrec(p.mid, version=5))
        sub.expect_nothing(0.5, ptype=m.PUBREL)  # held for the store
        sub.close()
        sub = raw(b, version=5)
        assert sub.connect("rp-sub", clean=False, props=persist).session_present
        sub.expect_nothing(1.0, ptype=m.PUBREL)  # resent only once stored
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert sub.expect(m.PUBREL, timeout=T(15)).mid == p.mid
    sub.send(m.pubcomp(p.mid, version=5))
    sub.expect_nothing(0.5, ptype=PUBLISH)
