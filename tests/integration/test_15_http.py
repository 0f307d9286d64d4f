"""15 management HTTP server (dashboard.listeners.http.bind): the health
endpoint GET /api/v5/status that load balancers (HAProxy) poll, JSON 404/405
for everything else, no log noise from health checks, and a dashboard port
that cannot be bound stops hamqttd with a clear error."""

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request

import mqttraw as m
from conftest import EXIT_REFUSED, api_headers, SANITIZER_MARKERS, broker_env, free_port, hamqttd_path
from mqttraw import T

STATUS = "/api/v5/status"


def http(b, path, method="GET", data=None):
    """(status, headers, body bytes) of one request to b's dashboard port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (b.http_port, path),
                                 method=method, data=data, headers=api_headers(b.data_dir))
    try:
        with urllib.request.urlopen(req, timeout=T(5)) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def started(broker, overrides=None):
    """A broker whose HTTP listener is up (it starts after the MQTT workers)."""
    b = broker(overrides)
    b.wait_listening(b.http_port)
    return b


def test_status_running(broker, raw):
    b = started(broker)
    c = raw(b, version=5)
    c.connect("http-status")
    status, headers, body = http(b, STATUS)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["node"] == "hamqtt@127.0.0.1"
    assert doc["status"] == "running"
    assert isinstance(doc["uptime"], int) and doc["uptime"] >= 0
    assert doc["connections"] >= 1
    assert isinstance(doc["version"], str) and doc["version"]


def test_head_status_for_health_checkers(broker):
    """HEAD on a GET route (HAProxy `option httpchk HEAD ...`): 200, no body."""
    b = started(broker)
    status, _, body = http(b, STATUS, method="HEAD")
    assert status == 200 and body == b""


def test_unknown_path_404_json(broker):
    b = started(broker)
    for path in ("/nope", "/api/v5/statusx", "/api/v5/status/extra"):
        status, headers, body = http(b, path)
        assert status == 404, path
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["code"] == "NOT_FOUND"


def test_wrong_method_405_json(broker):
    b = started(broker)
    status, headers, body = http(b, STATUS, method="POST", data=b'{"x": 1}')
    assert status == 405
    assert headers["Content-Type"].startswith("application/json")
    assert "GET" in headers["Allow"]
    assert json.loads(body)["code"] == "METHOD_NOT_ALLOWED"
    # the connection state is clean afterwards
    assert http(b, STATUS)[0] == 200


def test_oversized_body_413(broker):
    b = started(broker)
    status, _, body = http(b, STATUS, method="POST", data=b"x" * (65 * 1024))
    assert status == 413
    assert json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"


def test_aborted_requests_free_their_slots(broker):
    """Clients that vanish mid-request (half a body, or headers only) do not pin
    connections: after more of them than the connection limit (256), status
    still answers."""
    b = started(broker)
    for i in range(300):
        s = socket.create_connection(("127.0.0.1", b.http_port), timeout=T(2))
        if i < 280:
            s.sendall(b"POST /api/v5/status HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100000\r\n\r\nabc")
        else:
            s.sendall(b"GET /api/v5/status HTTP/1.1\r\nHost: x\r\n")
        s.close()
    assert http(b, STATUS)[0] == 200


def test_health_checks_leave_no_log_noise(broker):
    """At log.level = info, 20 health checks add no line to the log."""
    b = started(broker, {"log.level": "info"})
    # the start's last line comes a moment after the listeners are up
    b.wait_log("hamqttd started")
    before = b.log_text().splitlines()
    for _ in range(20):
        assert http(b, STATUS)[0] == 200
    # a bare TCP check (HAProxy's default) too
    socket.create_connection(("127.0.0.1", b.http_port), timeout=T(2)).close()
    assert http(b, STATUS)[0] == 200  # served after the bare connect: all handled
    after = b.log_text().splitlines()
    assert after == before, "new log lines: %r" % after[len(before):]


def test_requests_logged_at_debug(broker):
    """The per-request line exists, at debug level only."""
    b = started(broker)  # the fixture's default is log.level = debug
    http(b, STATUS)
    line = b.wait_log("http: GET /api/v5/status -> 200")[0]
    assert "debug" in line.lower()


def test_dashboard_port_in_use_fails_start(tmp_path):
    """A dashboard bind on a port in use: hamqttd exits non-zero naming the key."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        data = tmp_path / "data"
        data.mkdir()
        conf = tmp_path / "hamqtt.conf"
        conf.write_text("\n".join([
            "node.name = hamqtt@127.0.0.1",
            "node.data_dir = %s" % data,
            "node.workers = 2",
            "listeners.tcp.default.bind = 127.0.0.1:%d" % free_port(),
            "dashboard.listeners.http.bind = 127.0.0.1:%d" % port,
            "log.level = info",
        ]) + "\n")
        r = subprocess.run([hamqttd_path(), "-c", str(conf)], capture_output=True, text=True,
                           env=broker_env(), stdin=subprocess.DEVNULL, timeout=T(20))
    finally:
        busy.close()
    out = r.stdout + r.stderr
    assert r.returncode == EXIT_REFUSED, out
    lines = [ln for ln in out.splitlines() if "dashboard.listeners.http.bind" in ln]
    assert lines, out
    assert "127.0.0.1:%d" % port in lines[0] and "in use" in lines[0], lines[0]
    assert not [m for m in SANITIZER_MARKERS if m in out], out


def metrics(b):
    status, headers, body = http(b, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    vals = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            vals[name_labels] = float(value)  # process_cpu_seconds_total is fractional
    return vals


def test_prometheus_metrics(broker, raw):
    """GET /metrics: the counters in Prometheus' text format (what the HA
    guide's Prometheus job scrapes on port 18083), labelled with the node, and
    they follow traffic."""
    b = started(broker)
    node = 'node="hamqtt@127.0.0.1"'
    before = metrics(b)
    assert before["hamqtt_up{%s}" % node] == 1
    for name in ("hamqtt_connections", "hamqtt_messages_received_total",
                 "hamqtt_messages_sent_total", "hamqtt_bytes_received_total",
                 "hamqtt_retained_messages", "hamqtt_messages_dropped_total"):
        assert "%s{%s}" % (name, node) in before, name
    sub = raw(b, version=5)
    sub.connect("metrics-sub")
    sub.subscribe("met/t", qos=1)
    pub = raw(b, version=4)
    pub.connect("metrics-pub")
    for i in range(3):
        pub.publish("met/t", b"m", qos=1, retain=(i == 0))
    for _ in range(3):
        sub.expect(m.PUBLISH)
    after = metrics(b)
    assert after["hamqtt_connections{%s}" % node] >= 2
    assert after["hamqtt_messages_received_total{%s}" % node] >= \
        before["hamqtt_messages_received_total{%s}" % node] + 3
    assert after["hamqtt_messages_sent_total{%s}" % node] >= \
        before["hamqtt_messages_sent_total{%s}" % node] + 3
    assert after["hamqtt_retained_messages{%s}" % node] >= 1


# -- cluster administration (single node: the member list is this node only) --

CLUSTER = "/api/v5/cluster"
GHOST = "ghost@127.0.0.2"  # no hamqtt node there: joining it fails, it is no member


def cluster_node(broker):
    """A started broker with its own cluster port and cluster name."""
    port = free_port()
    b = started(broker, {"cluster.port": port, "cluster.name": "http-test-cluster"})
    b.cluster_port = port
    return b


def test_cluster_members_single_node(broker):
    b = cluster_node(broker)
    status, headers, body = http(b, CLUSTER)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["name"] == "http-test-cluster"
    assert doc["self"] == "hamqtt@127.0.0.1"
    assert len(doc["nodes"]) == 1, doc
    me = doc["nodes"][0]
    assert me["node"] == "hamqtt@127.0.0.1" and me["self"] is True
    assert me["status"] == "running"
    assert me["addr"] == "127.0.0.1:%d" % b.cluster_port
    assert isinstance(me["incarnation"], int) and me["incarnation"] > 1600000000000  # ms
    status, _, body = http(b, CLUSTER, method="HEAD")
    assert status == 200 and body == b""


def test_cluster_join_unreachable_502(broker):
    """Joining a node nobody answers for: 502 with the broker's reason, and
    the member list is unchanged."""
    b = cluster_node(broker)
    status, headers, body = http(b, CLUSTER + "/join", method="POST",
                                 data=json.dumps({"node": GHOST}).encode())
    assert status == 502, body
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["code"] == "UNREACHABLE"
    assert doc["message"] and "\n" not in doc["message"]
    nodes = json.loads(http(b, CLUSTER)[2])["nodes"]
    assert [n["node"] for n in nodes] == ["hamqtt@127.0.0.1"]


def test_cluster_join_bad_body_400(broker):
    """The body must be one JSON object with a non-empty string "node"."""
    b = cluster_node(broker)
    for data in (None, b"", b"not json", b"[]", b'"ghost@h"', b'{"x": 1}', b'{"node": 5}',
                 b'{"node": ""}', b'{"node": "a@b"} trailing', b'{"node": "%s"}' % (b"a" * 300)):
        status, _, body = http(b, CLUSTER + "/join", method="POST", data=data)
        assert status == 400, (data, body)
        doc = json.loads(body)
        assert doc["code"] == "BAD_REQUEST" and doc["message"], doc
    status, _, body = http(b, CLUSTER + "/join", method="POST", data=b"")
    assert "missing request body" in json.loads(body)["message"]
    status, _, body = http(b, CLUSTER + "/join", method="POST", data=b'{"x": 1}')
    assert 'missing "node"' in json.loads(body)["message"]


def test_cluster_leave_single_node(broker):
    """Leaving when already a cluster of one succeeds and changes nothing."""
    b = cluster_node(broker)
    status, _, body = http(b, CLUSTER + "/leave", method="POST")
    assert status == 200, body
    assert json.loads(body) == {"left": True}
    nodes = json.loads(http(b, CLUSTER)[2])["nodes"]
    assert [(n["node"], n["status"]) for n in nodes] == [("hamqtt@127.0.0.1", "running")]


def test_cluster_force_leave_not_member_404(broker):
    """DELETE /api/v5/cluster/{node}/force_leave (EMQX 5's path) of a node that
    is not a member: 404 from the broker (not the router's "no such path"),
    whether the client percent-encodes the '@' or not."""
    b = cluster_node(broker)
    replies = []
    for node in (GHOST, GHOST.replace("@", "%40")):
        status, headers, body = http(b, "%s/%s/force_leave" % (CLUSTER, node), method="DELETE")
        assert status == 404, body
        doc = json.loads(body)
        assert doc["code"] == "NOT_FOUND"
        assert doc["message"] != "no such path", doc
        replies.append(doc)
    assert replies[0] == replies[1]


def test_cluster_wrong_method_405(broker):
    b = cluster_node(broker)
    for method, path, allow in (("GET", CLUSTER + "/join", "POST"),
                                ("GET", CLUSTER + "/leave", "POST"),
                                ("DELETE", CLUSTER + "/join", "POST"),
                                ("POST", CLUSTER, "GET, HEAD"),
                                ("DELETE", CLUSTER, "GET, HEAD"),
                                ("GET", CLUSTER + "/%s/force_leave" % GHOST, "DELETE"),
                                ("POST", CLUSTER + "/%s/force_leave" % GHOST, "DELETE")):
        status, headers, body = http(b, path, method=method, data=b"{}" if method == "POST" else None)
        assert status == 405, (method, path, body)
        assert headers["Allow"] == allow, (method, path)
        assert json.loads(body)["code"] == "METHOD_NOT_ALLOWED"
    assert http(b, CLUSTER)[0] == 200


def test_cluster_unknown_paths_404(broker):
    """The one-segment wildcard of the force_leave route matches exactly one
    non-empty segment."""
    b = cluster_node(broker)
    for path in (CLUSTER + "//force_leave", CLUSTER + "/a/b/force_leave",
                 CLUSTER + "/%s/force_leave/x" % GHOST, CLUSTER + "/%s" % GHOST,
                 CLUSTER + "/", CLUSTER + "x", CLUSTER + "/join/x"):
        status, _, body = http(b, path, method="DELETE")
        assert status == 404, (path, body)
        assert json.loads(body)["code"] == "NOT_FOUND"
