#!/usr/bin/env python3
"""S11 of make bench (issue 4): the cost of crossing nodes.

Two hamqttd nodes (127.0.0.1 and 127.0.0.2, node.workers = 1 each) joined in a
cluster. 100 QoS 1 publishers (hamqtt-bench pub, window 64) and 100
subscribers (hamqtt-bench sub, one per publisher topic), two processes:

  same-node   publishers and subscribers on node 1
  cross-node  publishers on node 1, subscribers on node 2: every message
              crosses the cluster link once (FORWARD, batched FORWARD_ACK
              before each PUBACK)

Rounds alternate (same, cross / cross, same / ...), fresh nodes per run,
nothing pinned (each node has one worker; the two generator processes share
the machine with them). Reported: delivered msg/s (the subscriber process's
measured rate), the cross / same ratio (target >= 0.6), and route propagation:
the SUBACK round trip of 500 SUBSCRIBEs on node 2 (a SUBACK leaves only once
every peer confirmed it has the route), p50 / p99 (target p99 < 50 ms).

Usage: scripts/bench_s11.py [--rounds N] [--count N] [--no-write]
Writes its table between the bench:s11 markers of BENCHMARKS.md unless --no-write.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BENCH_MD = os.path.join(ROOT, "BENCHMARKS.md")
MARK_BEGIN = "<!-- bench:s11:begin (written by scripts/bench_s11.py) -->"
MARK_END = "<!-- bench:s11:end -->"
PAIRS = 100


def free_port(hosts):
    for _ in range(500):
        port = random.randint(20000, 32000)
        ok = True
        for h in hosts:
            s = socket.socket()
            try:
                s.bind((h, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no free port")


class Node:
    def __init__(self, i, workdir, cluster_port):
        self.i = i
        self.host = "127.0.0.%d" % i
        self.dir = os.path.join(workdir, "n%d" % i)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port([self.host])
        self.http = free_port([self.host])
        self.conf = os.path.join(self.dir, "hamqtt.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "node.name = hamqtt@%s" % self.host,
                "node.workers = 1",
                "node.data_dir = %s" % os.path.join(self.dir, "data"),
                "cluster.port = %d" % cluster_port,
                "cluster.name = bench-s11",
                "listeners.tcp.default.bind = %s:%d" % (self.host, self.port),
                "dashboard.listeners.http.bind = %s:%d" % (self.host, self.http),
                "log.level = warning",
                "sys.interval = 0",
                "mqtt.max_queued_messages = 1000000",
                "mqtt.max_inflight = 20",
            ]) + "\n")
        self.log = open(os.path.join(self.dir, "hamqttd.log"), "w")
        self.proc = subprocess.Popen([os.path.join(BUILD, "hamqttd"), "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("node %d did not start" % i)

    def ctl(self, *args):
        return subprocess.run([os.path.join(BUILD, "hamqtt-ctl"), "-c", self.conf] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def result(out):
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    return {}


def run_pair(pub_node, sub_node, count, workdir, tag):
    bench = os.path.join(BUILD, "hamqtt-bench")
    common = ["-c", PAIRS, "-q", 1, "--count", count, "--no-progress", "--timeout", 20]
    common = [str(x) for x in common]
    sub = subprocess.Popen([bench, "sub", "-h", sub_node.host, "-p", str(sub_node.port),
                            "--pubs", str(PAIRS), "--drain", "5", "--id-prefix", "s11s" + tag]
                           + common,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.5)  # subscriptions in place (SUBACKs waited for the peer)
    pub = subprocess.run([bench, "pub", "-h", pub_node.host, "-p", str(pub_node.port),
                          "-w", "64", "--id-prefix", "s11p" + tag] + common,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    try:
        out, _ = sub.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        sub.kill()
        out, _ = sub.communicate()
    with open(os.path.join(workdir, "%s.sub.txt" % tag), "wb") as f:
        f.write(out)
    with open(os.path.join(workdir, "%s.pub.txt" % tag), "wb") as f:
        f.write(pub.stdout)
    r = result(out.decode("utf-8", "replace"))
    return float(r.get("rate", 0)), int(r.get("lost", -1)), int(r.get("delivered", 0))


def suback_rtts(node, n=500):
    """SUBACK round trips (ms) of n SUBSCRIBEs, one at a time, on a raw socket."""
    s = socket.create_connection((node.host, node.port), timeout=5)
    cid = b"s11-routes"
    vh = b"\x00\x04MQTT\x04\x02\x00\x3c"
    pl = struct.pack("!H", len(cid)) + cid
    body = vh + pl
    s.sendall(bytes([0x10, len(body)]) + body)
    s.recv(4)
    rtts = []
    for i in range(n):
        topic = ("route/%d" % i).encode()
        payload = struct.pack("!H", i + 1) + struct.pack("!H", len(topic)) + topic + b"\x01"
        t0 = time.perf_counter()
        s.sendall(bytes([0x82, len(payload)]) + payload)
        got = b""
        while len(got) < 5:
            chunk = s.recv(5 - len(got))
            if not chunk:
                raise RuntimeError("connection closed")
            got += chunk
        rtts.append((time.perf_counter() - t0) * 1000)
    s.close()
    return rtts


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def start_cluster(workdir):
    cport = free_port(["127.0.0.1", "127.0.0.2"])
    n1 = Node(1, workdir, cport)
    n2 = Node(2, workdir, cport)
    r = n2.ctl("cluster", "join", "hamqtt@127.0.0.1")
    if r.returncode != 0:
        raise RuntimeError("join failed: %s" % r.stdout.decode())
    return n1, n2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=10000, help="messages per publisher")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="hamqtt-s11-")
    same, cross, lost = [], [], []
    rtts = []
    try:
        for rnd in range(a.rounds):
            order = ["same", "cross"] if rnd % 2 == 0 else ["cross", "same"]
            for case in order:
                wd = os.path.join(base, "r%d-%s" % (rnd, case))
                os.makedirs(wd)
                n1, n2 = start_cluster(wd)
                try:
                    rate, l, dlv = run_pair(n1, n1 if case == "same" else n2, a.count, wd,
                                            "%d%s" % (rnd, case))
                    (same if case == "same" else cross).append(rate)
                    lost.append(l)
                    print("S11 round %d %-5s: %9.0f msg/s delivered=%d lost=%d" %
                          (rnd + 1, case, rate, dlv, l), flush=True)
                    if case == "cross":
                        rtts += suback_rtts(n2)
                finally:
                    n1.stop()
                    n2.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ms, mc = statistics.median(same), statistics.median(cross)
    ratio = mc / ms if ms else 0
    p50, p99 = pct(rtts, 50), pct(rtts, 99)
    table = "\n".join([
        "| S11: 100 QoS 1 pairs, 2 nodes (1 worker each), unpinned | value | target | met |",
        "|---|---:|---|---|",
        "| same-node delivered msg/s (median of %d) | %.0f | | |" % (len(same), ms),
        "| cross-node delivered msg/s (median of %d) | %.0f | | |" % (len(cross), mc),
        "| cross / same | %.2f | >= 0.60 | %s |" % (ratio, "yes" if ratio >= 0.6 else "**no**"),
        "| messages lost (all runs) | %d | 0 | %s |" % (sum(x for x in lost if x > 0),
                                                       "yes" if all(x == 0 for x in lost) else "**no**"),
        "| route propagation (SUBACK round trip on node 2, %d subscribes) p50 / p99 ms | "
        "%.2f / %.2f | p99 < 50 | %s |" % (len(rtts), p50, p99, "yes" if p99 < 50 else "**no**"),
    ])
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode().strip()
    load = os.getloadavg()[0]
    table += "\n\nRun %s UTC at %s, %d rounds, load average %.2f at the end." % (
        time.strftime("%Y-%m-%d %H:%M", time.gmtime()), head or "unknown", a.rounds, load)
    print(table)
    if not a.no_write and os.path.exists(BENCH_MD):
        text = open(BENCH_MD).read()
        block = "%s\n%s\n%s" % (MARK_BEGIN, table, MARK_END)
        if MARK_BEGIN in text and MARK_END in text:
            pre = text[:text.index(MARK_BEGIN)]
            post = text[text.index(MARK_END) + len(MARK_END):]
            text = pre + block + post
        else:
            text += "\n## S11: crossing nodes (issue 4)\n\n%s\n" % block
        with open(BENCH_MD, "w") as f:
            f.write(text)
    return 0 if ratio >= 0.6 and p99 < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
