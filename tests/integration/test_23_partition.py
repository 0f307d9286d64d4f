"""23 partitions and heals (issue 4 point 5 and 8; DESIGN.md: both sides of
a partition keep serving, AP; on heal routes and retained converge), with
each node in its own network namespace (netns.py): veth pairs on a bridge in
a hub namespace, addresses in a per-test 10.x.y.0/24, node.name =
hamqtt@10.x.y.i, default ports. A partition is `ip link set <veth> down` on
the hub side of a node's veth: the node keeps its address (its clients, which
run in its namespace, still reach it) but loses every peer, silently (no
RST: only the heartbeat, cluster.heartbeat_timeout = 2s, can notice).

  - three nodes, node 3 cut off: nodes 1-2 list it stopped, node 3 lists
    1-2 stopped; both sides serve their clients; after the heal every node
    lists three running and routes are resynced both ways (subscriptions
    made before and during the partition); retained messages set on both
    sides converge to the last writer (the hybrid logical clock);
  - a two-node cluster split and healed;
  - a three-way split (every node alone) healed.

Needs root and `ip netns`; skipped with the reason otherwise. Namespaces,
veths and bridge are removed in the fixture's teardown even when the test
fails, and the teardown fails the test if anything is left behind."""

import time

import pytest

import mqttraw as m
import netns
from cluster import HEARTBEAT, Cluster, finish
from conftest import require, wait_until

HEAL = HEARTBEAT + 5  # seconds: heartbeat + reconnect after a heal

_why = netns.unavailable_reason()
pytestmark = require(_why, "network namespaces")


@pytest.fixture
def lab(tmp_path, request):
    """Factory: lab(n) -> (netns.Lab, Cluster started, not joined). Teardown:
    nodes stopped (exit 0, no sanitizer report), then namespaces removed."""
    made = []

    def make(n):
        net = netns.Lab(n)
        made.append((net, None))
        cl = Cluster(tmp_path / ("lab%d" % len(made)), n, hosts=net.addrs, netns=net.node_ns)
        made[-1] = (net, cl)
        cl.start()
        return net, cl

    yield make

    def cleanup():
        problems = []
        for net, _ in made:
            problems += ["netns %s: %s" % (net.tag, p) for p in net.teardown()]
        return problems
    finish([cl for _, cl in made if cl is not None], request, after=cleanup)


def client(node, cid, auto_ack=True):
    c = node.raw(version=5, auto_ack=auto_ack)
    c.connect(cid)
    return c


def subscriber(node, cid, flt, qos=1):
    c = client(node, cid)
    assert c.subscribe(flt, qos=qos).codes == [qos]
    return c


def isolated(cl, nodes_alive_sides):
    """Wait until every node lists its own side running and the rest stopped.
    nodes_alive_sides: list of lists of nodes (the sides)."""
    for side in nodes_alive_sides:
        others = [n for n in cl.nodes if n not in side]
        for n in side:
            cl.wait_members(n, cl.view(running=side, stopped=others), timeout=HEARTBEAT + 3)


def serves(node, tag):
    """node serves its own clients: subscribe + publish on it."""
    s = subscriber(node, "%s-s%d" % (tag, node.index), "%s/local" % tag)
    client(node, "%s-p%d" % (tag, node.index)).publish("%s/local" % tag, b"local", qos=1)
    assert s.expect(m.PUBLISH, timeout=5).payload == b"local"


def test_partition_and_heal_three_nodes(lab):
    """Node 3 is cut off: nodes 1-2 see it stopped and it sees them
    stopped (heartbeat only); both sides keep serving (nodes 1 -> 2 still
    cross); after the heal all three are running everywhere and a
    subscriber on node 3 from before the partition, one made on node 3
    during it, and one made on node 1 during it each receive a message
    published on the other side."""
    net, cl = lab(3)
    n1, n2, n3 = cl.nodes
    cl.join_all()
    before3 = subscriber(n3, "pt-before3", "pt/to3")
    pub1 = client(n1, "pt-pub1")
    pub1.publish("pt/to3", b"pre", qos=1)
    assert before3.expect(m.PUBLISH).payload == b"pre"
    net.cut(3)
    isolated(cl, [[n1, n2], [n3]])
    serves(n3, "pt")
    serves(n1, "pt")
    sub2 = subscriber(n2, "pt-sub2", "pt/12")
    pub1.publish("pt/12", b"majority side", qos=1)
    assert sub2.expect(m.PUBLISH).payload == b"majority side"
    during3 = subscriber(n3, "pt-during3", "pt/new3")
    during1 = subscriber(n1, "pt-during1", "pt/new1")
    net.heal(3)
    cl.wait_all_running(timeout=HEAL)
    pub1.publish("pt/to3", b"healed", qos=1)
    assert before3.expect(m.PUBLISH, timeout=5).payload == b"healed"
    pub1.publish("pt/new3", b"new route", qos=1)
    assert during3.expect(m.PUBLISH, timeout=5).payload == b"new route"
    client(n3, "pt-pub3").publish("pt/new1", b"other way", qos=1)
    assert during1.expect(m.PUBLISH, timeout=5).payload == b"other way"


def test_partition_retained_converges_to_last_writer(lab):
    """During a partition node 1 and then node 3 set the retained message of
    one topic; after the heal a new subscriber on every node gets node 3's
    (the last writer's) payload."""
    net, cl = lab(3)
    n1, n2, n3 = cl.nodes
    cl.join_all()
    net.cut(3)
    isolated(cl, [[n1, n2], [n3]])
    client(n1, "rt-pub1").publish("rt/t", b"side A", qos=1, retain=True)
    time.sleep(0.05)  # a later wall clock for the second writer
    client(n3, "rt-pub3").publish("rt/t", b"side B (last)", qos=1, retain=True)
    net.heal(3)
    cl.wait_all_running(timeout=HEAL)

    def converged():
        for n in cl.nodes:
            c = client(n, "rt-check%d" % n.index)
            c.subscribe("rt/t", qos=1)
            p = c.try_recv(0.3)
            c.disconnect()
            if p is None or p.type != m.PUBLISH or p.payload != b"side B (last)":
                return False
        return True
    wait_until(converged, 5, 0.1, "retained rt/t = side B on every node")


def test_two_node_split_and_heal(lab):
    """Two nodes cut apart: each lists the other stopped and serves its own
    clients; after the heal both list two running and messages cross both
    ways (no majority, no manual step)."""
    net, cl = lab(2)
    n1, n2 = cl.nodes
    cl.join_all()
    net.cut(2)
    isolated(cl, [[n1], [n2]])
    serves(n1, "two")
    serves(n2, "two")
    s1 = subscriber(n1, "two-s1", "two/to1")
    s2 = subscriber(n2, "two-s2", "two/to2")
    net.heal(2)
    cl.wait_all_running(timeout=HEAL)
    client(n1, "two-p1").publish("two/to2", b"1->2", qos=1)
    client(n2, "two-p2").publish("two/to1", b"2->1", qos=1)
    assert s2.expect(m.PUBLISH, timeout=5).payload == b"1->2"
    assert s1.expect(m.PUBLISH, timeout=5).payload == b"2->1"


def test_three_way_split_heals(lab):
    """Every node cut off from the others: each lists itself running and the
    other two stopped; after the heal all three are running everywhere and a
    message published on node 2 reaches subscribers on nodes 1 and 3."""
    net, cl = lab(3)
    n1, n2, n3 = cl.nodes
    cl.join_all()
    for i in (1, 2, 3):
        net.cut(i)
    isolated(cl, [[n1], [n2], [n3]])
    subs = [subscriber(n, "tw-s%d" % n.index, "tw/t") for n in (n1, n3)]
    for i in (1, 2, 3):
        net.heal(i)
    cl.wait_all_running(timeout=HEAL)
    client(n2, "tw-p2").publish("tw/t", b"together again", qos=1)
    for s in subs:
        assert s.expect(m.PUBLISH, timeout=5).payload == b"together again"


def test_client_connected_on_both_sides_keeps_the_newer_after_heal(lab):
    """Client X is connected on node 1; node 3 is cut off and X connects
    again on node 3 (node 3 cannot ask node 1: it waits for its takeover
    request at most 3 s, then serves X). After the heal no client id stays
    connected twice [DESIGN.md Cluster]: node 1 closes its older connection
    with DISCONNECT 0x8E (session taken over) and node 3's stays, and gets
    what is published to X's topic."""
    net, cl = lab(3)
    n1, n2, n3 = cl.nodes
    cl.join_all()
    old = client(n1, "dup-x")
    assert old.subscribe("dup/x", qos=1).codes == [1]
    net.cut(3)
    isolated(cl, [[n1, n2], [n3]])
    new = client(n3, "dup-x")
    assert new.subscribe("dup/x", qos=1).codes == [1]
    net.heal(3)
    cl.wait_all_running(timeout=HEAL)
    old.expect_disconnect(0x8E, timeout=5)
    n1.wait_log(r"client_id=dup-x is connected here and, more recently, on hamqtt@")
    assert new.is_open(0.2)
    client(n2, "dup-pub").publish("dup/x", b"to the newer", qos=1)
    assert new.expect(m.PUBLISH, timeout=5).payload == b"to the newer"
