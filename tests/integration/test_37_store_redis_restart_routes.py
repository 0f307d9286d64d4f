"""
test_37_store_redis_restart_routes.py - a restarted node acknowledges no
QoS 1 message before it knows where its peers' subscribers are.

Three nodes share a Redis session store; an offline persistent session
(clean session 0, QoS 1 on rr/#) lives on node 2. Node 1 is stopped
(SIGTERM) and started again while a publisher hammers its MQTT port: the
first CONNECT that gets through publishes at once. A node learns the other
nodes' routes only from the route sync of each link, which comes up a dial
period after the start; before the fix, node 1 answered that first PUBLISH
with a PUBACK without forwarding it anywhere (it matched no route of node 2),
and the offline session never got it (test_65's rolling restart lost such a
message about one run in three). Now node 1 accepts MQTT clients only once
the routes of every member that is up are known (clu_start.c): every
acknowledged message reaches the session.
"""

import socket
import threading
import time

from conftest import require
from mqttraw import PUBLISH, RawClient, T
from redisfx import REDIS, redis  # noqa: F401 (the fixture)

ROUNDS = 3
PER_ROUND = 3


def publish_at_first_chance(node, round_no, acked, errors, stop):
    """Connect to node's MQTT port as soon as it accepts, publish PER_ROUND
    QoS 1 messages; note those acknowledged. Bounded by stop and 30 s."""
    deadline = time.monotonic() + T(30)
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            c = RawClient(node.port, host=node.host, timeout=10.0)
        except OSError:
            time.sleep(0.005)  # not listening yet
            continue
        try:
            c.connect("rr-pub-%d" % round_no)
            for k in range(PER_ROUND):
                payload = b"r%d-%d" % (round_no, k)
                c.publish("rr/x", payload, qos=1)
                acked.append(payload)
            c.disconnect()
            return
        except Exception as e:  # noqa: BLE001 (the old process going away)
            errors.append(repr(e))
            try:
                c.close()
            except (OSError, socket.error):
                pass
        time.sleep(0.005)


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_restarted_node_acknowledges_nothing_before_the_peers_routes(redis, cluster):  # noqa: F811
    cl = cluster(3, {"session.store": "redis",
                     "session.redis.server": "127.0.0.1:%d" % redis.port})
    cl.join_all()
    cl.wait_all_running()
    n1, n2, n3 = cl.nodes
    s = n2.raw()
    s.connect("rr-sub", clean=False)
    s.subscribe("rr/#", qos=1)
    s.disconnect()

    acked = []
    for r in range(ROUNDS):
        assert n1.stop() == 0, n1.log_tail()
        errors, stop = [], threading.Event()
        t = threading.Thread(target=publish_at_first_chance,
                             args=(n1, r, acked, errors, stop), daemon=True)
        t.start()
        try:
            n1.restart()
        finally:
            t.join(timeout=T(30))
            stop.set()
        assert len(acked) == (r + 1) * PER_ROUND, "round %d: publishes failed: %s" % (r, errors)
        cl.wait_all_running()

    c = n3.raw()
    ack = c.connect("rr-sub", clean=False)
    assert ack.session_present
    got = []
    deadline = time.monotonic() + T(15)
    while len(set(got)) < len(acked) and time.monotonic() < deadline:
        p = c.try_recv(0.3)
        if p is not None and p.type == PUBLISH:
            got.append(bytes(p.payload))
            c.ack(p)
    lost = sorted(set(acked) - set(got))
    assert not lost, "acknowledged by the restarted node 1 but lost for the offline " \
        "session on node 2: %s of %d" % (lost, len(acked))
    c.disconnect()
    # each start said when it began accepting (clu_start.c)
    assert len(n1.log_lines(r"accepting MQTT clients \(the routes of every")) == ROUNDS
