"""21 (cluster) shared subscriptions when a member on another node leaves
(issue 8, "Acknowledged QoS 1 messages are lost when a shared-subscription
member on another node drops"): on one node, the unacknowledged messages of a
member that leaves go to another member of its group (test_08,
sess_redispatch_shared); across nodes they must too, even when the only other
member is on another node. QoS 1 is at least once here: a duplicate is
allowed, a loss is not.

Three nodes (cluster.py). Member B of $share/g/<t> on node 2 never
acknowledges; a publisher on node 3 publishes 5 QoS 1 messages (each
PUBACKed, so acknowledged to the publisher) while B is the group's only
member, so B holds all 5; then member A subscribes on node 1 (its SUBACK
waits until every node has its route) and B leaves. A must receive all 5.

  - in flight: B holds the 5 in its in-flight window;
  - queued: node 2's mqtt.max_inflight = 2, so B holds 2 in flight and 3 in
    its session queue;
  - B leaves with a normal DISCONNECT (its session ends), with an abrupt
    close, or with a normal DISCONNECT of a persistent session (it stays,
    offline: its shared messages still go to a member that is online); for
    MQTT 3.1.1 and 5.0 members."""

import time

import pytest

import mqttraw as m
from mqttraw import T

N = 5


def member(node, cid, flt, version, auto_ack, persistent=False):
    c = node.raw(version=version, auto_ack=auto_ack)
    if not persistent:
        c.connect(cid)
    elif version == 5:
        c.connect(cid, clean=False, props=[(m.SESSION_EXPIRY, 300)])
    else:
        c.connect(cid, clean=False)
    ack = c.subscribe((flt, 1))
    assert ack.codes == [1], "%s: SUBACK %r" % (node.name, ack)
    return c


def received(c, want, timeout):
    """Payloads of the PUBLISH packets c reads until every payload in want
    arrived (or timeout); duplicates are kept."""
    got = []
    deadline = time.monotonic() + T(timeout)
    while not set(want) <= set(got):
        left = (deadline - time.monotonic()) / m.MULT
        if left <= 0:
            break
        p = c.try_recv(min(left, 0.2))
        if p is not None and p.type == m.PUBLISH:
            assert p.qos == 1, p
            got.append(p.payload)
    return got


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("held", ["in_flight", "queued"])
@pytest.mark.parametrize("leave", ["disconnect", "abrupt", "persistent"])
def test_departing_member_on_other_node_hands_messages_over(cluster, version, held, leave):
    inflight = 2 if held == "queued" else 32
    cl = cluster(3, node_overrides={2: {"mqtt.max_inflight": inflight}})
    cl.join_all()
    n1, n2, n3 = cl.nodes
    tag = "%s-%s-v%d" % (held, leave, version)
    flt = "$share/g/shx/%s" % tag
    topic = "shx/%s" % tag
    b = member(n2, "shx-b", flt, version, auto_ack=False, persistent=leave == "persistent")
    pub = n3.raw(version=5, auto_ack=True)
    pub.connect("shx-pub")
    want = [b"m%d" % i for i in range(N)]
    for payload in want:
        pub.publish(topic, payload, qos=1)  # returns the PUBACK: acknowledged
    in_window = min(N, inflight)
    held_by_b = [p.payload for p in b.publishes(in_window, timeout=5)]
    assert held_by_b == want[:in_window]
    b.expect_nothing(0.3, ptype=m.PUBLISH)  # the rest, if any, waits in B's queue
    a = member(n1, "shx-a", flt, version, auto_ack=True)
    since = n2.log_size()
    if leave in ("disconnect", "persistent"):
        b.disconnect()
    else:
        b.shutdown_abrupt()
    got = received(a, want, 10)
    missing = [x for x in want if x not in got]
    assert not missing, ("member on node 1 received %r of %r after the member on node 2 "
                         "left; node 2 log:\n%s" % (got, want, n2.log_text()[since:][-3000:]))
