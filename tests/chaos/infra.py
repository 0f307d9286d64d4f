"""
infra.py - the processes of a chaos run: hamqttd nodes (tests/integration's
Cluster: 127.0.0.1..N, joined like the integration tests join them), HAProxy
in front of them (tests/integration's HAProxy: a config generated from the
shipped deploy/haproxy/haproxy.cfg, its check timings kept), and for
session.store = redis a redis-server of our own on loopback in the run's
directory. Everything listens on loopback only.

Every process started here is registered with Reaper, which kills what is
still running at exit: atexit, and SIGINT/SIGTERM/SIGHUP turned into an exit.
"""

import atexit
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from cluster import Cluster, free_port_on  # noqa: E402
from haproxy import HAPROXY, HAProxy, tcplog  # noqa: E402

REDIS = "/usr/bin/redis-server"


class Reaper:
    """Stops registered things in reverse order, once, at exit or on a signal."""

    def __init__(self):
        self.stops = []
        atexit.register(self.run)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def add(self, what, stop):
        self.stops.append((what, stop))

    def _on_signal(self, signum, frame):
        sys.stderr.write("chaos: signal %d, stopping everything\n" % signum)
        sys.exit(128 + signum)   # atexit runs self.run()

    def run(self):
        while self.stops:
            what, stop = self.stops.pop()
            try:
                stop()
            except Exception as e:  # one failure must not leave the others running
                sys.stderr.write("chaos: stopping %s: %r\n" % (what, e))


class Redis:
    """redis-server on 127.0.0.1 in workdir, no persistence of its own (the
    chaos test kills brokers, never Redis)."""

    def __init__(self, workdir):
        self.port = free_port_on(["127.0.0.1"])
        self.log_path = os.path.join(workdir, "redis.log")
        self.proc = subprocess.Popen(
            [REDIS, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", workdir,
             "--save", "", "--appendonly", "no", "--protected-mode", "yes",
             "--logfile", self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start; %s" % self.log_path)
            time.sleep(0.05)

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def node_overrides(store, redis, workers=None):
    """hamqttd settings of every node of a run (workers: node.workers, or
    the node's default)."""
    ov = {
        "session.store": store,
        # HAProxy sends a PROXY v2 header first (deploy/haproxy/haproxy.cfg)
        "listeners.tcp.default.proxy_protocol": True,
        # debug logging of thousands of messages a second would slow the nodes
        "log.level": "info",
        # the test counts messages a durable session lost, not those a full queue
        # dropped on purpose: an outage of a few seconds queues rate x pubs x s
        "mqtt.max_queued_messages": 1000000,
        "mqtt.max_queued_bytes": 0,
        "mqtt.receive_maximum": int(os.environ.get("CHAOS_RECVMAX", "128")),
    }
    if redis is not None:
        ov["session.redis.server"] = "127.0.0.1:%d" % redis.port
    if workers:
        ov["node.workers"] = workers
    return ov


def start(workdir, reaper, store, nodes, workers=None):
    """Start (redis,) the nodes and HAProxy; returns (cluster, haproxy, redis)."""
    if HAPROXY is None:
        raise RuntimeError("haproxy not found (apt-get install haproxy)")
    redis = None
    if store == "redis":
        if not os.access(REDIS, os.X_OK):
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        redis = Redis(workdir)
        reaper.add("redis-server", redis.stop)
    cl = Cluster(workdir, nodes, node_overrides(store, redis, workers), name="hamqtt-chaos-%d" % os.getpid())
    reaper.add("hamqttd nodes", lambda: [n.stop(timeout=5) for n in cl.nodes])
    cl.start()
    if nodes > 1:
        cl.join_all(timeout=30)
    hp_dir = os.path.join(workdir, "hp")   # the stats socket path must stay short
    os.makedirs(hp_dir, exist_ok=True)
    hp = HAProxy(hp_dir, cl.nodes, checks=None)   # the shipped check timings
    reaper.add("haproxy", hp.stop)
    for n in cl.nodes:
        hp.wait_state(n, "UP", timeout=20)
    return cl, hp, redis


def closed_connections(hp):
    """haproxy.tcplog() rows of every connection HAProxy closed so far."""
    return tcplog(hp.log())

