"""52 the cluster-wide REST API (issue 11 item 1, ARCHITECTURE.md "Cluster-wide
REST API"): three real hamqttd nodes (cluster.py); every node answers for the
whole cluster by asking its peers over the cluster links (RPC_REQ/RPC_RESP).

  - node-level routes from every node cover all three nodes: /nodes,
    /nodes/{node}, /stats (per node and ?aggregate=true), /metrics (JSON
    counters that move), /listeners, /monitor?latest=N, /monitor_current;
  - a paged cluster-wide list (HTTP_R_FANOUT_LIST; the test-only route
    /api/v5/_test/items, HQ_TEST_FANOUT_ITEMS items per node) pages
    right across node boundaries from every node, in member order;
  - a stopped node is reported quickly (node_status "stopped", header
    X-Hamqtt-Unreachable, meta "unreachable"), not waited for;
  - a forwarded request is refused from anyone but a peer: ?_offset= from a
    normal HTTP client is ignored, and without credentials nothing answers."""

import contextlib
import http.client
import json
import time

import pytest

import mqttraw as m
from conftest import api_headers, wait_until
from mqttraw import T

# node i lists ITEMS[i] test items: 0 on node 2 puts an empty node in the middle
ITEMS = {1: 7, 2: 0, 3: 12}

# a stopped member is answered at once by the cluster thread: well inside the
# RPC deadline (3 s), which a node that is linked but silent costs instead
QUICK = 2.5


@pytest.fixture
def c3(cluster):
    cl = cluster(3, node_env={i: {"HQ_TEST_FANOUT_ITEMS": str(n)} for i, n in ITEMS.items()})
    cl.join_all()
    return cl


def get(node, path, timeout=8.0, headers=True):
    """(status, parsed JSON or text, response headers) of GET path on node."""
    in_ns = getattr(node, "in_ns", None)
    with (in_ns() if in_ns else contextlib.nullcontext()):
        conn = http.client.HTTPConnection(node.host, node.http_port, timeout=T(timeout))
        try:
            conn.request("GET", path, headers=api_headers(node.data_dir) if headers else {})
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
            try:
                body = json.loads(body)
            except ValueError:
                pass
            return r.status, body, dict(r.getheaders())
        finally:
            conn.close()


def ok(node, path):
    st, body, _ = get(node, path)
    assert st == 200, "%s: GET %s -> %d %r" % (node.name, path, st, body)
    return body


def names(cl):
    return [n.name for n in cl.nodes]


def test_node_routes_cover_every_node(c3):
    """Every route from every node answers for all three nodes."""
    cl = c3
    everyone = sorted(names(cl))
    # some traffic on node 2 so the counters move
    sub = cl[2].raw(version=5)
    sub.connect("sub-52")
    sub.subscribe("t52/#", qos=1)
    pub = cl[3].raw(version=5)
    pub.connect("pub-52")
    for i in range(5):
        pub.publish("t52/x", b"p%d" % i, qos=1)
    for _ in range(5):
        sub.expect(m.PUBLISH)
    for n in cl.nodes:
        nodes = ok(n, "/api/v5/nodes")
        assert sorted(x["node"] for x in nodes) == everyone
        assert nodes[0]["node"] == n.name  # this node first, then member order
        for x in nodes:
            assert x["node_status"] == "running"
            for k in ("version", "uptime", "connections", "live_connections", "memory_used",
                      "memory_total", "load1", "load5", "load15", "sys_path", "log_path"):
                assert k in x, (k, x)
            assert x["role"] == "core" and x["edition"] == "hamqtt"
            assert x["memory_used"] > 0 and x["memory_total"] >= x["memory_used"]
        for other in cl.nodes:
            one = ok(n, "/api/v5/nodes/" + other.name)
            assert one["node"] == other.name and one["node_status"] == "running"
        st, _, _ = get(n, "/api/v5/nodes/nobody@127.0.0.9")
        assert st == 404
        stats = ok(n, "/api/v5/stats")
        assert sorted(s["node"] for s in stats) == everyone
        by = {s["node"]: s for s in stats}
        assert by[cl[2].name]["connections.count"] == 1
        assert by[cl[2].name]["subscriptions.count"] == 1
        assert by[cl[2].name]["sessions.count"] == 1
        agg = ok(n, "/api/v5/stats?aggregate=true")
        assert "node" not in agg and agg["connections.count"] == 2
        assert agg["connections.max"] >= 0
        metrics = ok(n, "/api/v5/metrics")
        assert sorted(x["node"] for x in metrics) == everyone
        mby = {x["node"]: x for x in metrics}
        assert mby[cl[3].name]["messages.received"] >= 5
        assert mby[cl[2].name]["messages.sent"] >= 5
        magg = ok(n, "/api/v5/metrics?aggregate=true")
        assert magg["messages.received"] >= 5 and magg["client.connected"] >= 2
        for k in ("messages.dropped", "bytes.received", "bytes.sent"):
            assert k in magg
        listeners = ok(n, "/api/v5/listeners")
        tcp = [x for x in listeners if x["id"] == "tcp:default"]
        assert tcp, listeners
        assert sorted(s["node"] for s in tcp[0]["node_status"]) == everyone
        assert tcp[0]["current_connections"] == 2 and tcp[0]["running"] is True
        for k in ("type", "bind", "max_connections"):
            assert k in tcp[0]
        cur = ok(n, "/api/v5/monitor_current")
        for k in ("connections", "received_msg_rate", "sent_msg_rate", "dropped_msg_rate",
                  "subscriptions"):
            assert k in cur, (k, cur)
        assert cur["connections"] == 2
        mine = ok(n, "/api/v5/monitor_current?node=" + cl[2].name)
        assert mine["node"] == cl[2].name and mine["connections"] == 1
        series = ok(n, "/api/v5/monitor?latest=60")
        assert series and all("time_stamp" in p and "received" in p for p in series)
        assert series == sorted(series, key=lambda p: p["time_stamp"])
        assert len(set(p["time_stamp"] for p in series)) == len(series)  # summed per stamp
        # the sampler reads every second: node 3's publishes show up soon,
        # in its own series and in the cluster's sum
        wait_until(lambda: sum(p["received"] for p in
                               ok(n, "/api/v5/monitor?latest=60&node=" + cl[3].name)) >= 5,
                   timeout=T(5), what="node 3's received in /monitor")
        wait_until(lambda: sum(p["received"] for p in ok(n, "/api/v5/monitor?latest=60")) >= 5,
                   timeout=T(5), what="the cluster's received in /monitor")
        assert get(n, "/api/v5/monitor?latest=0")[0] == 400


def test_list_pages_across_nodes(c3):
    """A cluster-wide paged list: the nodes' lists concatenated in member
    order and paged over the whole, from every node, with right counts."""
    cl = c3
    total = sum(ITEMS.values())
    for n in cl.nodes:
        # member order as this node lists it (itself first)
        order = [x["node"] for x in ok(n, "/api/v5/nodes")]
        want = []
        for name in order:
            i = names(cl).index(name) + 1
            want += [(name, k) for k in range(ITEMS[i])]
        for limit in (1, 3, 5, 7, 19, 100):
            got, page = [], 1
            while True:
                doc = ok(n, "/api/v5/_test/items?page=%d&limit=%d" % (page, limit))
                meta = doc["meta"]
                assert meta["count"] == total and meta["page"] == page and meta["limit"] == limit
                assert len(doc["data"]) <= limit
                got += [(x["node"], x["i"]) for x in doc["data"]]
                assert meta["hasnext"] == (len(got) < total), (limit, page, meta)
                assert "unreachable" not in meta
                if not meta["hasnext"]:
                    break
                page += 1
                assert page <= total + 1
            assert got == want, (n.name, limit)
        # a page past the end: empty, count still right
        doc = ok(n, "/api/v5/_test/items?page=50&limit=10")
        assert doc["data"] == [] and doc["meta"]["count"] == total
        assert not doc["meta"]["hasnext"]
        # the route's own checks still apply (limit at most 1000)
        assert get(n, "/api/v5/_test/items?limit=5000")[0] == 400
        assert get(n, "/api/v5/_test/items?page=0")[0] == 400


def test_one_object_from_its_node(c3):
    """HTTP_R_FANOUT_ONE: the node holding the object answers, from any node;
    404 when no node has it; a stopped node is named, not waited for."""
    cl = c3
    n1, n2, n3 = cl.nodes
    for n in cl.nodes:
        doc = ok(n, "/api/v5/_test/items/%s,11" % n3.name)
        assert doc == {"node": n3.name, "i": 11}
        assert ok(n, "/api/v5/_test/items/%s,0" % n1.name)["node"] == n1.name
        st, body, hdr = get(n, "/api/v5/_test/items/%s,12" % n3.name)  # past node 3's 12
        assert st == 404 and "X-Hamqtt-Unreachable" not in hdr
        st, body, _ = get(n, "/api/v5/_test/items/%s,x" % n2.name)   # node 2 says 400
        assert st == 400
    n3.kill()
    t0 = time.monotonic()
    st, _, hdr = get(n1, "/api/v5/_test/items/%s,1" % n3.name)
    assert st == 404 and hdr.get("X-Hamqtt-Unreachable") == n3.name
    assert time.monotonic() - t0 < T(QUICK)
    assert ok(n2, "/api/v5/_test/items/%s,6" % n1.name) == {"node": n1.name, "i": 6}


def test_stopped_node_reported_not_waited_for(c3):
    cl = c3
    n1, n2, n3 = cl.nodes
    n3.kill()
    t0 = time.monotonic()
    st, nodes, hdr = get(n1, "/api/v5/nodes")
    took = time.monotonic() - t0
    assert st == 200 and took < T(QUICK), (st, took)
    by = {x["node"]: x for x in nodes}
    assert by[n3.name]["node_status"] == "stopped"
    assert by[n1.name]["node_status"] == by[n2.name]["node_status"] == "running"
    assert hdr.get("X-Hamqtt-Unreachable") == n3.name
    t0 = time.monotonic()
    st, one, _ = get(n2, "/api/v5/nodes/" + n3.name)
    assert st == 200 and one["node_status"] == "stopped" and time.monotonic() - t0 < T(QUICK)
    t0 = time.monotonic()
    st, doc, hdr = get(n2, "/api/v5/_test/items?limit=100")
    assert time.monotonic() - t0 < T(QUICK)
    assert st == 200 and doc["meta"]["count"] == ITEMS[1] + ITEMS[2]
    assert doc["meta"]["unreachable"] == [n3.name]
    assert hdr.get("X-Hamqtt-Unreachable") == n3.name
    stats = ok(n1, "/api/v5/stats")
    assert sorted(s["node"] for s in stats) == sorted([n1.name, n2.name])
    # once the cluster sees it stopped, the answer is immediate too
    wait_until(lambda: (n1.members() or {}).get(n3.name) == "stopped", timeout=T(10))
    t0 = time.monotonic()
    assert get(n1, "/api/v5/nodes")[0] == 200 and time.monotonic() - t0 < T(QUICK)


def test_paused_node_times_out(c3):
    """A node whose link is up but that does not answer (SIGSTOP) costs the
    RPC deadline (3 s), not more, and is named."""
    cl = c3
    n1, _, n3 = cl.nodes
    n3.pause()
    try:
        t0 = time.monotonic()
        st, doc, hdr = get(n1, "/api/v5/_test/items?limit=100", timeout=15)
        took = time.monotonic() - t0
        assert st == 200 and doc["meta"]["unreachable"] == [n3.name], doc
        assert took < T(8), took
    finally:
        n3.resume()


def test_forwarding_only_from_peers(c3):
    """Only the cluster link sets req->local: a client's ?_offset= is ignored
    (the window is page/limit over the whole cluster), and the API wants
    credentials as ever."""
    cl = c3
    n1 = cl[1]
    doc = ok(n1, "/api/v5/_test/items?_offset=5&limit=2")
    assert [x["i"] for x in doc["data"]] == [0, 1]  # page 1, not offset 5
    assert doc["meta"]["count"] == sum(ITEMS.values())
    st, _, _ = get(n1, "/api/v5/_test/items", headers=False)
    assert st == 401
    st, _, _ = get(n1, "/api/v5/nodes", headers=False)
    assert st == 401


@pytest.mark.parametrize("cluster_port", ["alone", "off"])
def test_single_node(broker, cluster_port):
    """A node alone (clustering on, no peer) or with clustering off answers
    every route for itself, in the same shapes."""
    ov = {"cluster.port": 0} if cluster_port == "off" else {}
    b = broker(ov, env={"HQ_TEST_FANOUT_ITEMS": "4"})
    nodes = ok(b, "/api/v5/nodes")
    assert len(nodes) == 1 and nodes[0]["node_status"] == "running"
    assert ok(b, "/api/v5/nodes/" + nodes[0]["node"])["node"] == nodes[0]["node"]
    assert len(ok(b, "/api/v5/stats")) == 1
    assert ok(b, "/api/v5/metrics?aggregate=true")["messages.received"] >= 0
    assert ok(b, "/api/v5/listeners")[0]["id"] == "tcp:default"
    assert "connections" in ok(b, "/api/v5/monitor_current")
    assert isinstance(ok(b, "/api/v5/monitor"), list)
    doc = ok(b, "/api/v5/_test/items?limit=3&page=2")
    assert [x["i"] for x in doc["data"]] == [3] and doc["meta"]["count"] == 4
    st, _, hdr = get(b, "/api/v5/_test/items")
    assert "X-Hamqtt-Unreachable" not in hdr


def test_test_route_absent_in_production(node):
    """Without HQ_TEST_FANOUT_ITEMS the tests' list route is a 404."""
    assert get(node, "/api/v5/_test/items")[0] == 404


def test_writes_reach_every_node(c3):
    """Writes flagged HTTP_R_FANOUT_ONE are made by every running member: the
    log level set on node 1 holds on nodes 2 and 3; a trace started on node 2
    runs on all three (each writes its own file) and a stop or delete sent to
    node 3 reaches all; the alarm history is cleared everywhere."""
    from restapi import api
    n1, n2, n3 = c3.nodes
    assert api(n1, "PUT", "/api/v5/log_level", {"level": "debug"})[0] in (200, 204)
    for n in c3.nodes:
        assert api(n, "GET", "/api/v5/log_level")[1]["level"] == "debug", n.name
    assert api(n3, "PUT", "/api/v5/log_level", {"level": "info"})[0] in (200, 204)
    for n in c3.nodes:
        assert api(n, "GET", "/api/v5/log_level")[1]["level"] == "info", n.name
    st, _ = api(n2, "POST", "/api/v5/trace", {"name": "everywhere", "type": "topic",
                                              "topic": "w/#"})
    assert st in (200, 201), st
    for n in c3.nodes:
        names = [t["name"] for t in api(n, "GET", "/api/v5/trace")[1]]
        assert names == ["everywhere"], (n.name, names)
    assert api(n3, "PUT", "/api/v5/trace/everywhere/stop")[0] in (200, 204)
    for n in c3.nodes:
        assert api(n, "GET", "/api/v5/trace")[1][0]["status"] == "stopped", n.name
    assert api(n1, "DELETE", "/api/v5/trace/everywhere")[0] in (200, 204)
    for n in c3.nodes:
        assert api(n, "GET", "/api/v5/trace")[1] == [], n.name
    assert api(n1, "DELETE", "/api/v5/trace/everywhere")[0] == 404
    assert api(n2, "DELETE", "/api/v5/alarms")[0] in (200, 204)
