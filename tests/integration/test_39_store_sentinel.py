"""
test_39_store_sentinel.py - session.store = redis through Redis Sentinel:
the master dies under load and nothing acknowledged is lost.

A master, one replica and three redis-sentinel processes (quorum 2) on
loopback; the node finds the master through the Sentinels
(session.redis.sentinels, session.redis.master_name) and waits for one
replica per group commit (session.redis.wait_replicas = 1: Redis replicates
asynchronously, so without WAIT a failover may drop what the old master
acknowledged). A persistent subscriber is offline; a publisher sends QoS 1
messages without pause; the master is SIGKILLed after a third of them, the
Sentinels promote the replica, the old master comes back as a replica. Every
message whose PUBACK arrived is delivered to the subscriber afterwards.
"""

import time

from conftest import require, wait_until
from mqttraw import PUBLISH, T, Closed
from redisfx import REDIS, RedisServer, Sentinel, command

N = 45


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_failover_under_load_loses_nothing(tmp_path, broker, raw):
    d = tmp_path / "redis"
    d.mkdir()
    master = RedisServer(d).start()
    replica = RedisServer(d, replica_of=master.port).start()
    sentinels = [Sentinel(d, master.port).start() for _ in range(3)]
    wait_until(lambda: b"master_link_status:up" in (command(replica.port, "INFO", "replication")
                                                     or b""), 10, 0.1, "the replica in sync")
    try:
        b = broker({"session.store": "redis",
                    "session.redis.sentinels": ",".join("127.0.0.1:%d" % s.port
                                                        for s in sentinels),
                    "session.redis.master_name": "mymaster",
                    "session.redis.wait_replicas": 1,
                    "session.redis.timeout": "1s"})
        s = raw(b)
        s.connect("sf-sub", clean=False)
        s.subscribe("sf/#", qos=1)
        s.close()
        acked, refused, killed = [], 0, False
        deadline = time.monotonic() + T(60)
        c = None
        for i in range(N):
            if i == N // 3:
                master.kill()
                killed = True
            while True:
                assert time.monotonic() < deadline, "publishing stalled after %d" % len(acked)
                if killed and master.proc.poll() is not None and \
                        sentinels[0].master_port() == replica.port:
                    master = RedisServer(d, port=master.port).start()  # back, as a replica
                if c is None:
                    c = raw(b, timeout=T(3))
                    c.connect("sf-pub", clean=False)
                try:
                    c.publish("sf/t", b"f%d" % i, qos=1)
                    acked.append(b"f%d" % i)
                    break
                except (Closed, AssertionError, OSError):
                    refused += 1
                    c.close()
                    c = None
                    time.sleep(0.2)
        assert sentinels[0].master_port() == replica.port, "no failover happened"
        s = raw(b)
        assert s.connect("sf-sub", clean=False).session_present
        got = set()
        end = time.monotonic() + T(15)
        while len(got) < len(acked) and time.monotonic() < end:
            p = s.try_recv(0.3)
            if p is not None and p.type == PUBLISH:
                got.add(bytes(p.payload))
                s.ack(p)
        lost = [a for a in acked if a not in got]
        assert not lost, "%d acknowledged messages lost across the failover (refused %d): %r" % (
            len(lost), refused, lost[:10])
        wait_until(lambda: b.log_lines("store redis"), 1, what="store log lines")
    finally:
        for x in sentinels + [replica, master]:
            x.kill()
