#!/usr/bin/env python3
"""make bench-recovery: restart time of a node full of offline sessions (issue 9).

For each store (local, and redis with a redis-server of its own):
  1. start build/hamqttd (node.workers = 2, no queue limit that would drop);
  2. SESSIONS persistent sessions (MQTT 3.1.1, clean session 0, fixed client
     ids) subscribe to one topic at QoS 1 (hamqtt-bench sub), then disconnect;
  3. one publisher sends MESSAGES QoS 1 messages of SIZE bytes to that topic,
     all acknowledged (so stored): SESSIONS x MESSAGES queue entries, MESSAGES
     stored messages; checked through /metrics (queued bytes, drops);
  4. SIGKILL the node, start it again on the same data dir (same Redis) and
     measure the time from exec until a fresh client gets its CONNACK, the
     store's own "loaded N sessions ... in X ms" log line, RSS after the load
     and the size of the data;
  5. one of the sessions reconnects (clean session 0) and must get all
     MESSAGES messages.
One summary line per store; exit 1 when a restart took longer than --limit
seconds (5) or a check failed. Every wait is bounded; every process is killed
at exit. Output under build/bench/recovery-<date-time>/.

Usage: scripts/bench_recovery.py [--store local|redis|both] [--sessions N]
                                 [--messages N] [--limit S]
"""

import argparse
import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import bench_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
TOPIC = "rec/t"
ID_PREFIX = "rec"
PROCS = []   # hamqttd processes running now


def log(msg):
    print(msg, flush=True)


def run(cmd, timeout, out):
    """A bounded subprocess, its output appended to out; (rc, RESULT dict)."""
    with open(out, "ab") as f:
        f.write(("$ %s\n" % " ".join(str(c) for c in cmd)).encode())
        f.flush()
        try:
            p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout)
            text, rc = p.stdout.decode("utf-8", "replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            text, rc = (e.stdout or b"").decode("utf-8", "replace"), "timeout"
        f.write(text.encode())
    res = {}
    for line in text.splitlines():
        if line.startswith("RESULT "):
            res = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    return rc, res


def connack_s(port, t0, limit):
    """Seconds from t0 until a fresh MQTT 3.1.1 client (clean session) gets
    CONNACK 0 on port; None if not within limit seconds after t0."""
    cid = b"rec-probe"
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    connect = bytes([0x10, len(body)]) + body
    while time.monotonic() - t0 < limit:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(max(0.5, limit - (time.monotonic() - t0)))
                s.sendall(connect)
                ack = b""
                while len(ack) < 4:
                    chunk = s.recv(4 - len(ack))
                    if not chunk:
                        break
                    ack += chunk
                if ack == b"\x20\x02\x00\x00":
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.005)
    return None


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class Node:
    def __init__(self, workdir, store, redis_port, a):
        self.workdir = workdir
        self.data = os.path.join(workdir, "data")
        self.conf = os.path.join(workdir, "hamqtt.conf")
        self.log = os.path.join(workdir, "hamqttd.log")
        self.port = bench_store.free_port()
        self.http = bench_store.free_port(exclude=(self.port,))
        self.proc = None
        os.makedirs(self.data, exist_ok=True)
        lines = [
            "node.name = rec@127.0.0.1", "cluster.port = 0", "node.workers = 2",
            "node.data_dir = %s" % self.data, "session.store = %s" % store,
            "listeners.tcp.default.bind = 127.0.0.1:%d" % self.port,
            "dashboard.listeners.http.bind = 127.0.0.1:%d" % self.http,
            "log.level = notice", "sys.interval = 0",
            # nothing may be dropped: SESSIONS x MESSAGES entries
            "mqtt.max_queued_messages = %d" % max(1000, a.messages * 2),
            "mqtt.max_queued_bytes = 0", "mqtt.max_queued_bytes_total = 0",
        ]
        if redis_port:
            lines.append("session.redis.server = 127.0.0.1:%d" % redis_port)
            if a.redis_timeout:
                # one store batch holds every queue entry of a loop turn: with
                # 10,000 sessions per message it can outlast the 2 s default
                lines.append("session.redis.timeout = %gs" % a.redis_timeout)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        """exec; returns the monotonic time just before it."""
        t0 = time.monotonic()
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([os.path.join(BUILD, "hamqttd"), "-c", self.conf],
                                         stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        PROCS.append(self.proc)
        return t0

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc in PROCS:
            PROCS.remove(self.proc)

    def loaded_line(self):
        """The last 'store X: loaded N sessions ...' log line's numbers."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return None
        m = re.findall(r"loaded (\d+) sessions \((\d+) subscriptions, (\d+) queued or "
                       r"in-flight messages\).* in (\d+) ms", text)
        return tuple(int(x) for x in m[-1]) if m else None


def wait_metric(node, name, want, limit_s):
    """Poll /metrics until name >= want (bounded); the last value seen."""
    v = 0.0
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        v = bench_store.scrape_metrics(node.http).get(name, 0.0)
        if v >= want:
            break
        time.sleep(0.2)
    return v


def one_store(store, a, outdir):
    """Fill, kill, restart, measure; (ok, summary line)."""
    wd = os.path.join(outdir, store)
    os.makedirs(wd, exist_ok=True)
    out = os.path.join(wd, "bench.out")
    bench = os.path.join(BUILD, "hamqtt-bench")
    redis = None
    if store == "redis":
        redis, why = bench_store.start_redis(os.path.join(wd, "redis"), None)
        if not redis:
            return False, "recovery redis: FAILED: %s" % why
    node = Node(wd, store, redis.port if redis else None, a)
    try:
        node.start()
        if connack_s(node.port, time.monotonic(), 15) is None:
            return False, "recovery %s: FAILED: the node did not start (%s)" % (store, node.log)
        n, total = a.sessions, a.sessions * a.messages
        t = time.monotonic()
        rc, res = run([bench, "sub", "-p", node.port, "-c", n, "--no-clean", "--id-prefix",
                       ID_PREFIX, "-T", TOPIC, "-q", 1, "-d", 1, "--timeout", 60,
                       "--no-progress"], 300, out)
        if rc != 0 or res.get("conns") != str(n):
            return False, "recovery %s: FAILED: creating %d sessions (exit %s, conns %s)" % (
                store, n, rc, res.get("conns"))
        log("recovery %s: %d persistent sessions subscribed and disconnected in %.1f s"
            % (store, n, time.monotonic() - t))
        t = time.monotonic()
        rc, res = run([bench, "pub", "-p", node.port, "-c", 1, "-q", 1, "-t", TOPIC, "-s",
                       a.size, "--count", a.messages, "--drain", 60, "--timeout", 60,
                       "--no-progress"],
                      300, out)
        if rc != 0 or res.get("acked") != str(a.messages):
            return False, "recovery %s: FAILED: publishing (exit %s, acked %s)" % (
                store, rc, res.get("acked"))
        want_bytes = total * (a.size + len(TOPIC))
        qb = wait_metric(node, "hamqtt_queued_bytes", want_bytes, 60)
        dropped = bench_store.scrape_metrics(node.http).get("hamqtt_messages_dropped_total")
        log("recovery %s: %d messages acknowledged in %.1f s; queued bytes %.0f of %d "
            "expected, dropped %s" % (store, a.messages, time.monotonic() - t, qb, want_bytes,
                                      dropped))
        if qb < want_bytes or dropped:
            return False, "recovery %s: FAILED: not all %d entries queued" % (store, total)
        node.kill(signal.SIGKILL)
        data_mb = bench_store.dir_bytes(redis.workdir if redis else node.data) / 1e6
        t0 = node.start()
        secs = connack_s(node.port, t0, max(60.0, a.limit * 4))
        rss = rss_mb(node.proc.pid)
        loaded = node.loaded_line()
        ok = secs is not None and secs <= a.limit
        checks = []
        if not loaded or loaded[0] < n or loaded[2] < total:
            ok = False
            checks.append("loaded %s, want >= %d sessions, %d entries" % (loaded, n, total))
        # one session back: all of its messages are there (v3.1.1, clean 0)
        rc, res = run([bench, "sub", "-p", node.port, "-c", 1, "--no-clean", "--id-prefix",
                       ID_PREFIX, "-T", TOPIC, "-q", 1, "--expect", a.messages,
                       "--timeout", 20, "--no-progress"], 120, out)
        if rc != 0 or res.get("expect_reached") != "1":
            ok = False
            checks.append("session %ss0 did not get its %d messages (exit %s)"
                          % (ID_PREFIX, a.messages, rc))
        line = ("recovery %s: %d sessions, %d queued: MQTT CONNACK %s after exec "
                "(store load %s ms), RSS %s MB after load, %s %.0f MB: %s (limit %.0f s)%s" % (
                    store, n, total, "%.2f s" % secs if secs is not None else "NEVER",
                    loaded[3] if loaded else "?", "%.0f" % rss if rss else "?",
                    "Redis AOF" if redis else "data dir", data_mb, "ok" if ok else "FAILED",
                    a.limit, "; " + "; ".join(checks) if checks else ""))
        return ok, line
    finally:
        node.kill(signal.SIGTERM)
        if redis:
            redis.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", choices=("local", "redis", "both"), default="both")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--redis-timeout", type=float, default=0,
                    help="session.redis.timeout in seconds (default: hamqttd's own)")
    ap.add_argument("--limit", type=float, default=5.0, help="seconds allowed for the restart")
    a = ap.parse_args()
    for exe in ("hamqttd", "hamqtt-bench"):
        if not os.access(os.path.join(BUILD, exe), os.X_OK):
            sys.exit("bench-recovery: build/%s missing: run make first" % exe)
    if a.sessions > 18000:
        sys.exit("bench-recovery: at most 18000 sessions (the file limit is 20000)")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(BUILD, "bench", "recovery-" + stamp)
    os.makedirs(outdir, exist_ok=True)
    stores = ("local", "redis") if a.store == "both" else (a.store,)
    all_ok = True
    for store in stores:
        ok, line = one_store(store, a, outdir)
        log(line)
        all_ok = all_ok and ok
    log("bench-recovery: output in %s" % outdir)
    return 0 if all_ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        sys.exit(main())
    finally:
        for p in list(PROCS):
            if p.poll() is None:
                p.kill()
        bench_store.stop_all()
