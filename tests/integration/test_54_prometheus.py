"""
test_54_prometheus.py - Prometheus and Grafana as the guide's step 5 says
("install Prometheus, scrape node:18083, visualize in Grafana"), with real
tools: Debian's promtool and prometheus binaries.

  - GET /metrics and its EMQX alias /api/v5/prometheus/stats pass
    `promtool check metrics`, on a standalone node and on every node of a
    3-node cluster with the redis store (so every family appears: cluster
    links, routes, store commit times), and carry every documented family;
  - deploy/prometheus/alerts.yml passes `promtool check rules`, and
    deploy/prometheus/prometheus.yml (targets replaced by the test cluster's)
    `promtool check config`;
  - a real Prometheus on 127.0.0.1 (its own port and directory, scraping
    every second) scrapes the 3 nodes: every target up, the message counters
    move under load, each panel's PromQL of deploy/grafana/dashboards/
    hamqtt.json (variables replaced) returns data, and a stopped node's `up`
    turns 0 with HamqttNodeDown pending or firing.

Bounded: every wait has a deadline; the whole file takes well under 90 s.
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from conftest import free_port, require
from mqttraw import T
from redisfx import REDIS, redis  # noqa: F401 (the fixture)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROM_YML = os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")
ALERTS_YML = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "dashboards", "hamqtt.json")
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
NO_PROM = None if PROMTOOL and PROMETHEUS else "promtool/prometheus not installed (scripts/deps.sh)"

# families every node exposes (standalone included)
FAMILIES = [
    "hamqtt_up", "hamqtt_connections", "hamqtt_messages_received_total",
    "hamqtt_messages_sent_total", "hamqtt_messages_dropped_by_reason_total",
    "hamqtt_messages_received_by_qos_total", "hamqtt_messages_sent_by_qos_total",
    "hamqtt_listener_received_bytes_total", "hamqtt_listener_sent_bytes_total",
    "hamqtt_sessions", "hamqtt_subscriptions", "hamqtt_session_queue_depth",
    "hamqtt_retained_messages", "hamqtt_authentication_total", "hamqtt_store_up",
    "hamqtt_store_failed_batches_total", "hamqtt_store_retries_total",
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
    "process_max_fds", "process_start_time_seconds",
]
# ... and with clustering on and a durable store
CLUSTER_FAMILIES = [
    "hamqtt_routes", "hamqtt_cluster_link_up", "hamqtt_cluster_link_rtt_seconds",
    "hamqtt_cluster_link_received_bytes_total", "hamqtt_cluster_link_sent_bytes_total",
    "hamqtt_cluster_link_queue_bytes", "hamqtt_cluster_forwards_pending",
    "hamqtt_store_commit_duration_seconds",
]


def get(host, port, path, timeout=5.0):
    with urllib.request.urlopen("http://%s:%d%s" % (host, port, path), timeout=T(timeout)) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def families(text):
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def promtool(*args, stdin=None):
    r = subprocess.run([PROMTOOL] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=T(30))
    return r.returncode, r.stdout + r.stderr


def check_metrics(host, port, expect):
    """Both paths: 200, text format 0.0.4, promtool clean, every family in expect."""
    for path in ("/metrics", "/api/v5/prometheus/stats"):
        st, ctype, body = get(host, port, path)
        assert st == 200 and "version=0.0.4" in ctype, (path, st, ctype)
        rc, out = promtool("check", "metrics", stdin=body)
        assert rc == 0 and not out.strip(), "%s:%d%s: promtool check metrics:\n%s" % (
            host, port, path, out)
        missing = set(expect) - families(body)
        assert not missing, "%s: missing families %s" % (path, sorted(missing))
    return body


def sample(text, name, **labels):
    """The value of the first sample of name whose labels include labels."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        lab, _, val = line[len(name):].rpartition(" ")
        if all('%s="%s"' % kv in lab for kv in labels.items()):
            return float(val)
    return None


@require(NO_PROM, "Prometheus")
def test_deploy_files_pass_promtool(tmp_path):
    rc, out = promtool("check", "rules", ALERTS_YML)
    assert rc == 0, out
    names = {r["alert"] for g in yaml.safe_load(open(ALERTS_YML))["groups"] for r in g["rules"]}
    assert {"HamqttNodeDown", "HamqttQueueDrops", "HamqttStoreDown", "HamqttMemoryHigh",
            "HamqttClusterLinkDown"} <= names
    # the shipped config as is (its rule file beside it), and the guide's scrape
    shutil.copy(PROM_YML, tmp_path / "prometheus.yml")
    shutil.copy(ALERTS_YML, tmp_path / "alerts.yml")
    rc, out = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert rc == 0, out
    job = yaml.safe_load(open(PROM_YML))["scrape_configs"][0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = job["static_configs"][0]["targets"]
    assert len(targets) == 3 and all(t.endswith(":18083") for t in targets)


@require(NO_PROM, "Prometheus")
def test_standalone_metrics_pass_promtool(broker, raw):
    b = broker({"session.store": "local", "cluster.port": 0})
    b.wait_listening(b.http_port)
    sub = raw(b)
    sub.connect("p54-sub", clean=False)
    sub.subscribe("p54/#", qos=1)
    sub.close()                               # offline, its queue fills
    pub = raw(b)
    pub.connect("p54-pub")
    for q in (0, 1, 2):
        pub.publish("p54/x", b"m", qos=q)
    body = None
    deadline = time.monotonic() + T(5)
    while time.monotonic() < deadline:        # the session sample is at most 1 s old
        body = check_metrics("127.0.0.1", b.http_port, FAMILIES + [
            "hamqtt_store_commit_duration_seconds"])
        if sample(body, "hamqtt_session_queue_depth_sum") == 3:
            break
        time.sleep(0.3)
    assert sample(body, "hamqtt_session_queue_depth_sum") == 3, body
    assert sample(body, "hamqtt_sessions", state="offline") == 1
    assert sample(body, "hamqtt_sessions", state="online") == 1
    assert sample(body, "hamqtt_subscriptions") == 1
    for q in ("0", "1", "2"):
        assert sample(body, "hamqtt_messages_received_by_qos_total", qos=q) == 1
    assert sample(body, "hamqtt_listener_received_bytes_total", listener="tcp:default") > 0
    assert sample(body, "hamqtt_store_commit_duration_seconds_count") > 0
    assert sample(body, "process_open_fds") > 0
    # the cluster families are not there: clustering is off
    assert "hamqtt_cluster_link_up" not in families(body)
    pub.close()


class Prometheus:
    """The Debian prometheus binary on 127.0.0.1:<free port>, in dir_."""

    def __init__(self, dir_, targets):
        self.dir = dir_
        self.port = free_port()
        cfg = yaml.safe_load(open(PROM_YML))
        cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
        job = cfg["scrape_configs"][0]
        job["scrape_timeout"] = "1s"
        job["static_configs"] = [{"targets": targets}]
        rules = yaml.safe_load(open(ALERTS_YML))
        for g in rules["groups"]:
            g["interval"] = "1s"
            for r in g["rules"]:
                r["for"] = "1s"
        with open(os.path.join(dir_, "alerts.yml"), "w") as f:
            yaml.safe_dump(rules, f)
        cfg["rule_files"] = [os.path.join(dir_, "alerts.yml")]
        self.conf = os.path.join(dir_, "prometheus.yml")
        with open(self.conf, "w") as f:
            yaml.safe_dump(cfg, f)
        rc, out = promtool("check", "config", self.conf)
        assert rc == 0, out
        self.log = open(os.path.join(dir_, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.conf,
             "--storage.tsdb.path=" + os.path.join(dir_, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait(lambda: self.ready(), 20, "prometheus ready")

    def ready(self):
        assert self.proc.poll() is None, "prometheus exited:\n" + self.log_text()
        try:
            return get("127.0.0.1", self.port, "/-/ready", 1)[0] == 200
        except (OSError, urllib.error.URLError):
            return False

    def log_text(self):
        with open(os.path.join(self.dir, "prometheus.log"), errors="replace") as f:
            return f.read()[-3000:]

    def api(self, path, **params):
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        doc = json.loads(get("127.0.0.1", self.port, "/api/v1/" + path + q)[2])
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    @staticmethod
    def wait(pred, timeout, what):
        deadline = time.monotonic() + T(timeout)
        last = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(0.25)
        raise AssertionError("timeout waiting for %s (last: %r)" % (what, last))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(T(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def panel_exprs():
    """(panel title, PromQL) of every target of every panel of the dashboard,
    Grafana's variables replaced as Grafana would with node = All."""
    doc = json.load(open(DASHBOARD))
    subst = [("$__rate_interval", "15s"), ("$__interval", "1s"), ("$__range", "1m"),
             ("${node}", ".*"), ("$node", ".*")]
    out = []
    for p in doc["panels"]:
        for sub in [p] + p.get("panels", []):
            for t in sub.get("targets", []):
                e = t["expr"]
                for k, v in subst:
                    e = e.replace(k, v)
                assert "$" not in e, "unreplaced variable in %r" % t["expr"]
                out.append((sub["title"], e))
    return out


def load(cl, n=30):
    """QoS 0/1/2 from node 2 to a subscriber on node 1 (forwarded), and a
    persistent session on node 3 left offline with messages queued."""
    n1, n2, n3 = cl.nodes
    sub = n1.raw()
    sub.connect("p54-sub", clean=False)
    sub.subscribe("p54/#", qos=2)
    off = n3.raw()
    off.connect("p54-off", clean=False)
    off.subscribe("p54/#", qos=1)
    off.close()
    pub = n2.raw()
    pub.connect("p54-pub")
    for i in range(n):
        pub.publish("p54/x", b"m%d" % i, qos=i % 3)
    pub.close()
    return sub


@require(NO_PROM, "Prometheus")
@require(None if REDIS else "redis-server not installed", "the redis store")
def test_prometheus_scrapes_cluster(redis, cluster, tmp_path):  # noqa: F811
    cl = cluster(3, {"session.store": "redis",
                     "session.redis.server": "127.0.0.1:%d" % redis.port})
    cl.join_all()
    cl.wait_all_running()
    sub = load(cl)
    for nd in cl.nodes:
        peers = [o.name for o in cl.nodes if o is not nd]

        def links_measured(nd=nd, peers=peers):
            # every link up and its RTT measured: a node sees "running" members
            # (wait_all_running) a moment before its own dial to each is linked
            body = get(nd.host, nd.http_port, "/metrics")[2]
            return "hamqtt_cluster_link_rtt_seconds{" in body and all(
                sample(body, "hamqtt_cluster_link_up", peer=p) == 1 for p in peers)
        Prometheus.wait(links_measured, 15, "%s: links up, RTT measured" % nd.name)
        body = check_metrics(nd.host, nd.http_port, FAMILIES + CLUSTER_FAMILIES)
        assert sample(body, "hamqtt_store_up", backend="redis") == 1
        for other in cl.nodes:
            if other is not nd:
                assert sample(body, "hamqtt_cluster_link_up", peer=other.name) == 1, body

    pdir = tmp_path / "prometheus"
    pdir.mkdir()
    targets = ["%s:%d" % (nd.host, nd.http_port) for nd in cl.nodes]
    prom = Prometheus(str(pdir), targets)
    try:
        # every target up
        def all_up():
            act = prom.api("targets")["activeTargets"]
            return len(act) == 3 and all(t["health"] == "up" for t in act)
        prom.wait(all_up, 20, "3 targets up")

        # the series move under load
        def received():
            r = prom.query('sum(hamqtt_messages_received_total{job="hamqtt"})')
            return float(r[0]["value"][1]) if r else None
        before = prom.wait(received, 10, "hamqtt_messages_received_total scraped")
        sub2 = load(cl)
        prom.wait(lambda: (received() or 0) >= before + 30, 10, "received counter moves")

        # every dashboard panel has data (rates need two samples in 15 s)
        exprs = panel_exprs()
        assert len(exprs) >= 30
        time.sleep(T(3))

        def empty_panels():
            return [(t, e) for t, e in exprs if not prom.query(e)]
        left = empty_panels()
        deadline = time.monotonic() + T(10)
        while left and time.monotonic() < deadline:
            time.sleep(1)
            left = empty_panels()
        assert not left, "dashboard panels without data: %s" % left

        # a node stopped: up == 0 and HamqttNodeDown pending or firing
        n3 = cl.nodes[2]
        n3.stop()
        inst = "%s:%d" % (n3.host, n3.http_port)
        prom.wait(lambda: prom.query('up{job="hamqtt",instance="%s"} == 0' % inst), 10,
                  "up == 0 for node 3")

        def node_down_alert():
            return [a["state"] for a in prom.api("alerts")["alerts"]
                    if a["labels"].get("alertname") == "HamqttNodeDown"
                    and a["labels"].get("instance") == inst]
        states = prom.wait(node_down_alert, 10, "HamqttNodeDown for node 3")
        assert set(states) <= {"pending", "firing"}, states
        prom.wait(lambda: "firing" in node_down_alert(), 10, "HamqttNodeDown firing")
        sub.close()
        sub2.close()
    except AssertionError:
        print("---- prometheus log ----\n" + prom.log_text())
        raise
    finally:
        prom.stop()
