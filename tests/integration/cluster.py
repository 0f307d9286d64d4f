"""
cluster.py - a cluster of real hamqttd nodes for the integration suite.

    cl = Cluster(tmp_path, n=3, overrides=None, cookie=None, name=None)
    cl.start()                      # every node up: MQTT listening, /api/v5/status 200
    cl.join_all()                   # `hamqtt-ctl cluster join hamqtt@127.0.0.1` on 2..N
    cl.wait_all_running()           # every node lists every node "running"
    n1, n2, n3 = cl.nodes
    c = n2.raw(version=5)           # mqttraw.RawClient connected to node 2's listener
    n3.kill(); cl.wait_members(n1, cl.view(running=[n1, n2], stopped=[n3]))
    n3.restart()
    problems = cl.teardown()        # stop every node (SIGTERM, exit 0 within 15 s)

Node i (1-based) is named hamqtt@127.0.0.i and binds its MQTT listener and
dashboard to 127.0.0.i (free ports, kept across restarts); all nodes share one
cluster.port, free on every 127.0.0.i; node.cookie and cluster.name are shared;
node.workers = 2, log.level = debug, cluster.heartbeat_timeout = 2s
(HEARTBEAT). With netns=[ns1, ns2, ...] and hosts=[addr1, ...] (see netns.py)
each node runs in its own network namespace on the default ports (1883, 18083,
4370), and its clients, HTTP requests and hamqtt-ctl run there too.

Config values may be callables taking the node (evaluated when the config is
written), e.g. {"listeners.tcp.direct.bind": lambda n: "%s:%d" % (n.host,
n.alloc_port("direct"))}; node_overrides={i: {...}} applies to node i only, and
node_env={i: {...}} adds environment variables to node i only (a test hook).
binary=PATH starts every node from another build's hamqttd (node.binary, None =
the build under test, may be changed before restart(): test_65_upgrade).
Every wait is bounded and scaled by HAMQTT_TEST_TIMEOUT_MULT.
"""

import http.client
import json as jsonlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from conftest import (SANITIZER_MARKERS, api_headers, broker_env, build_dir, fmt_value,
                      hamqttd_path, pid_listens_on, port_race, store_kind, wait_until, workers_count)
from mqttraw import T, RawClient
import netns as nsmod

HEARTBEAT = 2.0  # cluster.heartbeat_timeout of every test node, seconds
HEARTBEAT_CONF = "2s"
DEFAULT_PORTS = {"mqtt": 1883, "http": 18083}  # in a namespace of its own
DEFAULT_CLUSTER_PORT = 4370
_seq = 0


def ctl_path():
    return os.path.join(build_dir(), "hamqtt-ctl")


def port_free_on(port, hosts):
    """True if port can be bound on every host (addresses of this namespace)."""
    for h in hosts:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((h, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port_on(hosts, avoid=()):
    """A port free on every host, below the ephemeral range (as conftest)."""
    for _ in range(400):
        port = random.randint(20000, 32000)
        if port not in avoid and port_free_on(port, hosts):
            return port
    raise RuntimeError("no port free on all of %s" % (hosts,))


def pid_listens(pid, port):
    """True if process pid owns a listening socket on port (any namespace)."""
    return pid_listens_on(pid, port, fallback=False)


def members_of(doc):
    """{node name: status} of a GET /api/v5/cluster document."""
    return {e["node"]: e["status"] for e in doc["nodes"]}


class NodeExited(AssertionError):
    """hamqttd exited before it was ready."""


class ClusterNode:
    """One hamqttd of a Cluster: its own directory, config, log and ports."""

    def __init__(self, cluster, index, host, workdir, overrides, netns=None, env=None):
        self.cluster = cluster
        self.index = index            # 1-based
        self.host = host
        self.ip = host                # the name test_17's HAProxy helper uses
        self.name = "hamqtt@%s" % host
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        self.conf_path = os.path.join(workdir, "hamqtt.conf")
        self.log_path = os.path.join(workdir, "hamqttd.log")
        self.overrides = dict(overrides)  # may be changed before restart()
        self.netns = netns
        self.env = dict(env or {})
        self.ports = {}               # "mqtt", "http", anything alloc_port() made
        self.proc = None
        self.returncode = None
        self.starts = 0
        self.binary = None            # None: the build under test; set before (re)start
        os.makedirs(self.data_dir, exist_ok=True)

    def __repr__(self):
        return "<node %s>" % self.name

    # -- ports and config --

    @property
    def port(self):
        return self.ports["mqtt"]

    @property
    def http_port(self):
        return self.ports["http"]

    def alloc_port(self, key):
        """A port on this node's host reserved under key (kept across restarts)."""
        if key not in self.ports:
            if self.netns:
                used = set(self.ports.values()) | {self.cluster.port}
                self.ports[key] = max(used | {20000}) + 1
            else:
                self.ports[key] = free_port_on(
                    [self.host], avoid=set(self.ports.values()) | {self.cluster.port})
        return self.ports[key]

    def _fresh_ports(self):
        keep = [k for k in self.ports if k not in ("mqtt", "http")]
        self.ports = {}
        if self.netns:
            self.ports.update(DEFAULT_PORTS)
        else:
            self.alloc_port("mqtt")
            self.alloc_port("http")
        for k in keep:
            self.alloc_port(k)

    def config_items(self):
        cl = self.cluster
        items = [
            ("node.name", self.name),
            ("node.cookie", cl.cookie),
            ("node.data_dir", self.data_dir),
            ("node.workers", workers_count()),
            ("cluster.name", cl.name),
            ("cluster.port", cl.port),
            ("cluster.heartbeat_timeout", HEARTBEAT_CONF),
            ("listeners.tcp.default.bind", "%s:%d" % (self.host, self.port)),
            ("dashboard.listeners.http.bind", "%s:%d" % (self.host, self.http_port)),
            ("log.level", "debug"),
            ("session.store", store_kind()),
        ]
        out = [(k, v) for k, v in items if k not in self.overrides]
        out += list(self.overrides.items())
        return [(k, v(self) if callable(v) else v) for k, v in out]

    def write_config(self):
        lines = ["# written by tests/integration/cluster.py (node %d)" % self.index]
        lines += ["%s = %s" % (k, fmt_value(v)) for k, v in self.config_items()]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- lifecycle --

    def start(self, timeout=15.0):
        """Start hamqttd (ports allocated on the first start) and wait until
        its MQTT listener is up and GET /api/v5/status answers 200."""
        assert not self.alive(), "%s is already running" % self.name
        if not self.ports:
            self._fresh_ports()
        self.write_config()
        cmd = nsmod.exec_prefix(self.netns) + [self.binary or hamqttd_path(), "-c",
                                               self.conf_path]
        self.log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as logf:
            if self.starts:
                logf.write(b"---- cluster.py: start #%d ----\n" % (self.starts + 1))
                logf.flush()
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=broker_env(self.env),
                                         cwd=self.workdir)
        self.returncode = None
        self.starts += 1
        self.wait_ready(timeout)
        return self

    def restart(self, timeout=15.0):
        """Start again with the same ports, data_dir and (re-written) config."""
        return self.start(timeout)

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + T(timeout)
        while True:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise NodeExited("%s exited with %s before it was ready; log:\n%s"
                                 % (self.name, self.proc.returncode, self.log_tail()))
            if pid_listens(self.proc.pid, self.port) and self.health() == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError("%s not ready after %.1fs (MQTT listening: %s, "
                                     "/api/v5/status: %s); log:\n%s"
                                     % (self.name, T(timeout),
                                        pid_listens(self.proc.pid, self.port),
                                        self.health(), self.log_tail()))
            time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            self.returncode = self.proc.returncode

    def pause(self):
        """SIGSTOP: the node is frozen (its sockets stay open). Returns once
        every thread of it is stopped (a signal reaches threads one by one: a
        thread still running could answer meanwhile)."""
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + T(2)
        task_dir = "/proc/%d/task" % self.pid
        while time.monotonic() < deadline:
            try:
                states = []
                for tid in os.listdir(task_dir):
                    with open("%s/%s/stat" % (task_dir, tid)) as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                return
            if all(st in ("T", "t") for st in states):
                return
            time.sleep(0.002)

    def resume(self):
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status (a string if it had to be
        killed after timeout*MULT seconds). Idempotent."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=T(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self.returncode = "timeout (killed after %.0fs)" % T(timeout)
                return self.returncode
            self.returncode = self.proc.returncode
        elif self.returncode is None:
            self.returncode = self.proc.returncode
        return self.returncode

    # -- administration --

    def in_ns(self):
        """Context manager: the calling thread in this node's namespace (if any)."""
        return nsmod.entered(self.netns)

    def ctl(self, *args, json=False, timeout=20.0):
        """Run `hamqtt-ctl -c <conf> ARGS... [--json]`; returns (rc, stdout, stderr)."""
        cmd = nsmod.exec_prefix(self.netns) + [ctl_path(), "-c", self.conf_path] + list(args)
        if json:
            cmd.append("--json")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=broker_env(),
                               stdin=subprocess.DEVNULL, timeout=T(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError("%s: no answer within %.0fs" % (" ".join(cmd), T(timeout)))
        return r.returncode, r.stdout, r.stderr

    def http(self, method, path, timeout=2.0):
        """(status, body text) of an HTTP request to this node's dashboard."""
        with self.in_ns():
            conn = http.client.HTTPConnection(self.host, self.http_port, timeout=T(timeout))
            try:
                conn.request(method, path, headers=api_headers(self.data_dir))
                r = conn.getresponse()
                return r.status, r.read().decode("utf-8", "replace")
            finally:
                conn.close()

    def health(self):
        """Status code of GET /api/v5/status, or None if it does not answer."""
        try:
            return self.http("GET", "/api/v5/status", timeout=1.0)[0]
        except (OSError, http.client.HTTPException):
            return None

    def status_json(self):
        """GET /api/v5/cluster as a dict (asserting 200 and JSON)."""
        status, body = self.http("GET", "/api/v5/cluster")
        assert status == 200, "%s: GET /api/v5/cluster -> %d %s" % (self.name, status, body)
        try:
            return jsonlib.loads(body)
        except ValueError:
            raise AssertionError("%s: GET /api/v5/cluster is not JSON: %r" % (self.name, body))

    def members(self):
        """{node name: status} as this node sees it, or None if it cannot say."""
        try:
            return members_of(self.status_json())
        except (OSError, http.client.HTTPException, AssertionError, KeyError, TypeError):
            return None

    # -- clients (created in this node's namespace, closed at teardown) --

    def raw(self, version=4, port=None, **kw):
        """A mqttraw.RawClient connected (TCP only) to this node."""
        with self.in_ns():
            c = RawClient(port or self.port, host=self.host, version=version, **kw)
        self.cluster.clients.append(c)
        return c

    def paho(self, client_id, version=4, port=None, **kw):
        """A connected helpers.Paho on this node."""
        from helpers import Paho
        with self.in_ns():
            c = Paho(port or self.port, client_id, version=version, host=self.host, **kw)
        self.cluster.clients.append(c)
        return c

    # -- log --

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self):
        """Current length of the log text: pass as since= to only look later."""
        return len(self.log_text())

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_lines(self, regex, since=0, flags=0):
        rx = re.compile(regex, flags)
        return [ln for ln in self.log_text()[since:].splitlines() if rx.search(ln)]

    def wait_log(self, regex, count=1, timeout=5.0, since=0, flags=0):
        """Wait until at least count log lines (after offset since) match regex."""
        def ok():
            lines = self.log_lines(regex, since, flags)
            return lines if len(lines) >= count else None
        try:
            return wait_until(ok, timeout, 0.05, "%s: %d log line(s) matching %r"
                              % (self.name, count, regex))
        except AssertionError as e:
            raise AssertionError("%s; log tail:\n%s" % (e, self.log_tail()))

    def sanitizer_reports(self):
        text = self.log_text()
        return [mk for mk in SANITIZER_MARKERS if mk in text]


class Cluster:
    """N hamqttd nodes forming (once joined) one cluster; see the module docstring."""

    def __init__(self, tmp_path, n=3, overrides=None, cookie=None, name=None, *,
                 node_overrides=None, hosts=None, netns=None, env=None, node_env=None,
                 binary=None):
        global _seq
        _seq += 1
        self.dir = str(tmp_path)
        self.cookie = cookie or "cookie-%d-%d-%08x" % (os.getpid(), _seq, random.getrandbits(32))
        self.name = name or "hamqtt-test-%d-%d" % (os.getpid(), _seq)
        self.hosts = list(hosts or ["127.0.0.%d" % i for i in range(1, n + 1)])
        self.netns = list(netns) if netns else None
        assert len(self.hosts) == n and (self.netns is None or len(self.netns) == n)
        self.port = None   # cluster.port shared by every node
        self.clients = []
        self.nodes = []
        for i in range(1, n + 1):
            ov = dict(overrides or {})
            ov.update((node_overrides or {}).get(i, {}))
            workdir = os.path.join(self.dir, "node%d" % i)
            os.makedirs(workdir, exist_ok=True)
            ev = dict(env or {})
            ev.update((node_env or {}).get(i, {}))  # e.g. a test hook on one node only
            self.nodes.append(ClusterNode(self, i, self.hosts[i - 1], workdir, ov,
                                          self.netns[i - 1] if self.netns else None, ev))
            self.nodes[-1].binary = binary  # another build's hamqttd (test_65_upgrade)

    def __getitem__(self, i):
        """cl[i]: node i, 1-based."""
        return self.nodes[i - 1]

    def node(self, name):
        return [n for n in self.nodes if n.name == name][0]

    def _alloc_cluster_port(self):
        if self.netns:
            self.port = DEFAULT_CLUSTER_PORT
        else:
            self.port = free_port_on(self.hosts)

    def start(self, timeout=15.0):
        """Start every node, each ready before the next starts. A node that
        exits at once on its first start because one of its ports was taken
        meanwhile by a parallel test (its log says so: EADDRINUSE) makes the
        whole cluster retry with fresh ports, as conftest does; any other
        early exit fails at once."""
        if not self.nodes or self.port is not None:
            for n in self.nodes:
                if not n.alive():
                    n.start(timeout)
            return self
        last = None
        for _attempt in range(3):
            self._alloc_cluster_port()
            for n in self.nodes:
                n.ports = {}
            try:
                for n in self.nodes:
                    n.start(timeout)
                return self
            except NodeExited as e:
                last = e
                n = [x for x in self.nodes if x.proc is not None and x.proc.poll() is not None][0]
                if port_race(n.proc.returncode, n.log_text()[n.log_start:],
                             list(n.ports.values()) + [self.port]) is None:
                    raise  # a crash or a refusal: never hidden by a retry
                for n in self.nodes:  # start over: no state from this attempt
                    n.stop()
                    n.starts = 0
                    shutil.rmtree(n.data_dir, ignore_errors=True)
                    os.makedirs(n.data_dir, exist_ok=True)
        raise last

    # -- membership --

    def join_all(self, wait=True, timeout=15.0):
        """`hamqtt-ctl cluster join <node 1>` on nodes 2..N (each must exit 0);
        then (wait) every node lists every node running."""
        seed = self.nodes[0]
        for n in self.nodes[1:]:
            rc, out, err = n.ctl("cluster", "join", seed.name)
            assert rc == 0, "%s: cluster join %s -> %d\nstdout: %s\nstderr: %s" % (
                n.name, seed.name, rc, out, err)
        if wait:
            self.wait_all_running(timeout=timeout)

    def view(self, running=(), stopped=()):
        """An expected view {name: status} from node lists."""
        v = {n.name: "running" for n in running}
        v.update({n.name: "stopped" for n in stopped})
        return v

    def _names(self, expect):
        return {(k.name if isinstance(k, ClusterNode) else k): v for k, v in expect.items()}

    def wait_members(self, node, expect, timeout=5.0):
        """Poll node's GET /api/v5/cluster (every 50 ms, at most timeout*MULT s)
        until its member list equals expect ({name or node: "running" |
        "stopped"}) exactly. Returns the last document."""
        expect = self._names(expect)
        last = {"doc": None}

        def ok():
            try:
                doc = node.status_json()
            except (OSError, http.client.HTTPException, AssertionError) as e:
                last["doc"] = repr(e)
                return None
            last["doc"] = doc
            try:
                return doc if members_of(doc) == expect else None
            except (KeyError, TypeError):
                return None
        try:
            return wait_until(ok, timeout, 0.05, "%s to list %r" % (node.name, expect))
        except AssertionError as e:
            raise AssertionError("%s; its last answer: %s" % (e, last["doc"]))

    def wait_all_running(self, nodes=None, timeout=10.0):
        """Every node of nodes (default all) lists exactly nodes, all running."""
        nodes = list(nodes or self.nodes)
        want = self.view(running=nodes)
        deadline = time.monotonic() + T(timeout)
        for n in nodes:
            left = max(0.1, (deadline - time.monotonic()) / (T(1) or 1))
            self.wait_members(n, want, timeout=left)

    def assert_members_stay(self, node, expect, duration=1.0):
        """node's member list equals expect at every poll for duration seconds
        (unscaled: an absence check)."""
        expect = self._names(expect)
        end = time.monotonic() + duration
        while True:
            got = node.members()
            assert got == expect, "%s lists %r, expected %r" % (node.name, got, expect)
            if time.monotonic() >= end:
                return
            time.sleep(0.1)

    # -- teardown --

    def teardown(self):
        """Close clients, stop every running node (SIGTERM: exit 0 within 15 s),
        look for sanitizer reports in every log. Returns a list of problems."""
        problems = []
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        self.clients = []
        for n in self.nodes:
            if n.alive():
                rc = n.stop()
                if rc != 0:
                    problems.append("%s: exit status %r after SIGTERM (expected 0)"
                                    % (n.name, rc))
        for n in self.nodes:
            found = n.sanitizer_reports()
            if found:
                problems.append("%s: sanitizer report(s) in log: %s"
                                % (n.name, ", ".join(found)))
        return problems

    def dump_logs(self, out=None, lines=80):
        out = out or sys.stdout
        for n in self.nodes:
            out.write("\n---- %s %s (tail) ----\n%s\n" % (n.name, n.log_path, n.log_tail(lines)))


def finish(clusters, request, after=None):
    """Fixture teardown shared by conftest's `cluster` and test_23: tear every
    cluster down, then run after() (returns more problems, e.g. the network
    namespaces' cleanup), print the logs if the test failed, fail it on problems."""
    import pytest
    problems = []
    try:
        for cl in clusters:
            problems += cl.teardown()
    finally:
        if after is not None:
            problems += after()
    failed = getattr(request.node, "rep_call", None)
    if problems or (failed is not None and failed.failed):
        for cl in clusters:
            cl.dump_logs()
    if problems:
        pytest.fail("; ".join(problems))
