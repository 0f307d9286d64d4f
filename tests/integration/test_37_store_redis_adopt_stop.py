"""
test_37_store_redis_adopt_stop.py - SIGTERM to a node in the middle of an
adoption of a dead node's sessions (session.store = redis, two nodes).

Node 2 holds an offline persistent session with acknowledged QoS 1 messages
queued, and is killed (SIGKILL). Node 1 adopts its sessions after
cluster.heartbeat_timeout: it lists them (one store read), then reads each
(one read per session). Node 1 runs with HQ_TEST_STORE_READ_DELAY_MS, so each
read takes seconds, and gets SIGTERM while one is in flight:
  - "list": the listing is out. Before the fix its answer was handled after
    the store thread had stopped, and the session reads it started were
    submitted to a runner that was gone: SIGSEGV (a NULL runner);
  - "sessions": the per-session reads are out. Before the fix their answers
    built and registered sessions after shutdown had ended every session:
    never freed (LeakSanitizer in the ASan build).
Either way the node must exit 0 with no sanitizer report, and nothing
acknowledged may be lost: the adoption it did not finish leaves the session
in the store, and its client, reconnecting to the restarted node 1, gets
every message.
"""

import time

import pytest

from conftest import require
from mqttraw import PUBLISH, T
from redisfx import REDIS, redis  # noqa: F401 (the fixture)

DELAY_MS = 2000  # every store read of node 1 (the test hook)
N_MSGS = 5


@require(None if REDIS else "redis-server not installed", "the redis store")
@pytest.mark.parametrize("phase", ["list", "sessions"])
def test_sigterm_during_adoption(redis, cluster, phase):  # noqa: F811
    cl = cluster(2, {"session.store": "redis",
                     "session.redis.server": "127.0.0.1:%d" % redis.port},
                 node_env={1: {"HQ_TEST_STORE_READ_DELAY_MS": str(DELAY_MS)}})
    cl.join_all()
    cl.wait_all_running()
    n1, n2 = cl.nodes
    s = n2.raw()
    s.connect("as-off", clean=False)
    s.subscribe("as/#", qos=1)
    s.close()
    time.sleep(0.5)  # the subscription's route reaches node 1
    p = n1.raw()
    p.connect("as-pub")  # clean: no store read on node 1
    for i in range(N_MSGS):
        p.publish("as/x", b"m%d" % i, qos=1)  # PUBACK: stored for as-off by node 2
    p.close()
    n2.kill()
    if phase == "list":
        n1.wait_log(r"this node resumes its sessions from the store", timeout=T(10))
        time.sleep(0.3)  # the worker has submitted the listing: it is in the delay
    else:
        n1.wait_log(r"store: resuming 1 sessions of", timeout=T(15))
    assert not n1.log_lines(r"session of a dead node resumed here"), \
        "the adoption finished before the stop: the test missed its window"
    rc = n1.stop()
    assert rc == 0, "node 1 exited with %r on SIGTERM during the adoption; log:\n%s" % (
        rc, n1.log_tail())
    found = n1.sanitizer_reports()
    assert not found, "sanitizer report(s) in node 1's log: %s" % found
    # nothing acknowledged is lost: the session is still in the store
    n1.env.pop("HQ_TEST_STORE_READ_DELAY_MS")  # the CONNECT's read at full speed
    n1.restart()
    c = n1.raw()
    assert c.connect("as-off", clean=False).session_present
    got = set()
    deadline = time.monotonic() + T(15)
    while len(got) < N_MSGS and time.monotonic() < deadline:
        pk = c.try_recv(0.3)
        if pk is not None and pk.type == PUBLISH:
            got.add(bytes(pk.payload))
            c.ack(pk)
    assert got == {b"m%d" % i for i in range(N_MSGS)}
