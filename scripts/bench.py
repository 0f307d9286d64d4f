#!/usr/bin/env python3
"""make bench: hamqttd side by side with Mosquitto 2.0.11 (issue 3).

Runs the scenarios S1..S10 (and S3P/S3R/S3PF: S3 with persistent sessions on
the local and redis stores, see SCENARIOS; S1T/S3T over TLS, S13/S13R full TLS
handshakes per second and S3A with a password file and an ACL, see
scripts/bench_tls.py) against build/hamqttd and against Mosquitto in the
same run: for each scenario, ROUNDS rounds, each round one run per broker with
the order alternating (H,M / M,H / H,M), a fresh broker per run on a free
loopback port. Two tables:

  pinned    broker on CPU 0, hamqtt-bench on CPU 1 (taskset); hamqttd with
            node.workers = 1: the per-core comparison
  unpinned  nothing pinned, hamqttd with node.workers = 2 (S1, S2, S3, S6)

Per scenario it prints the median of each metric over the successful runs and
the ratio hamqtt / Mosquitto, writes the tables into BENCHMARKS.md (the section
between the "bench:latest" markers is replaced, one summary line is appended to
the history) and keeps every run's output under build/bench/<stamp>/.

A run that fails (broker did not start or died, hamqtt-bench exit status != 0,
a timeout) is recorded as failed with its reason; the others go on. Every
subprocess has a bounded timeout and every broker is stopped (SIGTERM, then
SIGKILL) before the next run and on exit.

Usage: scripts/bench.py [--only S1,S3] [--rounds N] [--duration S] [--warmup S]
                        [--no-unpinned] [--no-write] [--quick]
"""

import argparse
import datetime
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import bench_store
import bench_tls
from bench_scen import (HEADLINE, PINNED, S8_CONNS, S9_TOPICS, SCENARIOS,  # noqa: F401
                        UNPINNED)
from bench_store import free_port, proc_cpu_s

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BENCH_MD = os.path.join(ROOT, "BENCHMARKS.md")
MARK_BEGIN = "<!-- bench:latest:begin (written by scripts/bench.py) -->"
MARK_END = "<!-- bench:latest:end -->"
MARK_HISTORY = "<!-- bench:history (one line appended per full run) -->"

BROKER_CPU = 0
GEN_CPU = 1
QUEUE_LIMIT = 1000000      # max queued messages per session, both brokers
INFLIGHT = 20              # outgoing QoS 1/2 in flight per client, both brokers
GEN_SATURATED = 90.0       # generator CPU % from which it is the bottleneck
LIVE = []                  # brokers running now (stopped on exit)


def log(msg=""):
    print(msg, flush=True)


# ---- helpers -----------------------------------------------------------------

def sh(cmd, timeout=30):
    """Run a short command; (rc, stdout) ('' and -1 on failure)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, cwd=ROOT)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def ensure_mosquitto():
    """Install Debian's mosquitto if missing (idempotent); return its version."""
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                        if os.path.exists("/usr/sbin/mosquitto") else None)
    if not exe:
        log("bench: installing mosquitto (apt-get)")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (sudo + ["apt-get", "update", "-q"],
                    sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                            "mosquitto"]):
            try:
                subprocess.run(cmd, timeout=900, env=env, check=cmd[-1] == "mosquitto")
            except (OSError, subprocess.SubprocessError) as e:
                sys.exit("bench: cannot install mosquitto: %s" % e)
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            sys.exit("bench: mosquitto still missing after apt-get install")
    _, out = sh([exe, "-h"], timeout=10)
    version = "unknown"
    for line in out.splitlines():
        if line.startswith("mosquitto version"):
            version = line.split()[-1]
    if version != "2.0.11":
        log("bench: warning: mosquitto %s, the targets were set against 2.0.11" % version)
    return exe, version


def git_commit():
    """HEAD, "+ uncommitted changes" when src/ differs from it, and a warning
    when build/hamqttd is older than a file under src/ (then it was built from
    an earlier state than the one named)."""
    _, head = sh(["git", "rev-parse", "--short", "HEAD"])
    head = head.strip() or "unknown"
    _, dirty = sh(["git", "status", "--porcelain", "src"])
    label = head + (" + uncommitted changes" if dirty.strip() else "")
    built = os.path.getmtime(os.path.join(BUILD, "hamqttd"))
    newer = []
    for d, _dirs, files in os.walk(os.path.join(ROOT, "src")):
        for f in files:
            path = os.path.join(d, f)
            if f.endswith((".c", ".h")) and os.path.getmtime(path) > built:
                newer.append(os.path.relpath(path, ROOT))
    if newer:
        label += " (build/hamqttd is older than %s%s: built from an earlier state)" % (
            ", ".join(sorted(newer)[:3]), " ..." if len(newer) > 3 else "")
    return label


# ---- brokers -----------------------------------------------------------------

class Broker:
    """One broker process: hamqttd or mosquitto, with its own config and log."""

    def __init__(self, kind, exe, workdir, pinned, workers, scen, redis_port=None, mat=None):
        self.kind = kind
        self.mat = mat   # bench_tls.make_material() paths (TLS, auth scenarios)
        self.redis_port = redis_port
        self.http = None
        self.exe = exe
        self.workdir = workdir
        self.pinned = pinned
        self.workers = workers
        self.scen = scen
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, "broker.log")
        self.conf_path = os.path.join(workdir, "hamqtt.conf" if kind == "hamqtt"
                                      else "mosquitto.conf")

    def write_config(self):
        sc = SCENARIOS[self.scen]
        if self.kind == "hamqtt":
            http = self.http = free_port(exclude=(self.port,))
            lines = [
                "node.name = hamqtt@127.0.0.1",
                "cluster.port = 0",  # a standalone node: no cluster listener
                "node.workers = %d" % self.workers,
                "node.data_dir = %s" % os.path.join(self.workdir, "data"),
                "session.store = %s" % sc.get("store", "memory"),
                "session.local.fsync = %s" % ("true" if sc.get("fsync") else "false"),
                "listeners.tcp.default.bind = 127.0.0.1:%d" % self.port,
                "dashboard.listeners.http.bind = 127.0.0.1:%d" % http,
                "log.level = warning",
                "sys.interval = 0",
                "mqtt.max_queued_messages = %d" % QUEUE_LIMIT,
                "mqtt.max_inflight = %d" % INFLIGHT,
            ]
            if sc.get("store") == "redis":
                lines.append("session.redis.server = 127.0.0.1:%d" % self.redis_port)
            extra = bench_tls.hamqtt_lines(sc, self.mat, self.port)
            if sc.get("tls"):   # the ssl listener takes the port
                lines = [ln for ln in lines if not ln.startswith("listeners.tcp.")]
            lines += extra
            os.makedirs(os.path.join(self.workdir, "data"), exist_ok=True)
        else:
            lines = [
                "listener %d 127.0.0.1" % self.port,
            ] + bench_tls.mosquitto_lines(sc, self.mat) + [
                "persistence %s" % ("true" if sc.get("persist") else "false"),
                "max_queued_messages %d" % QUEUE_LIMIT,
                "max_inflight_messages %d" % INFLIGHT,
                "sys_interval 0",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
            ]
            if sc.get("persist"):
                # autosave_interval left at its default (1800 s)
                mdir = os.path.join(self.workdir, "mosquitto-db") + "/"
                os.makedirs(mdir, exist_ok=True)
                lines.append("persistence_location %s" % mdir)
            if sc.get("nodelay"):
                lines.append("set_tcp_nodelay true")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cmd(self):
        pin = ["taskset", "-c", str(BROKER_CPU)] if self.pinned else []
        return pin + [self.exe, "-c", self.conf_path]

    def start(self):
        """Start and wait until it accepts connections; raises RuntimeError."""
        last = "not started"
        for _attempt in range(3):
            self.port = free_port()
            self.write_config()
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(self.cmd(), stdout=logf, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.workdir,
                                             start_new_session=True)
            LIVE.append(self)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    time.sleep(0.1)   # let it settle (and drop the probe)
                    return self
                except OSError:
                    time.sleep(0.02)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError("%s not accepting on port %d after 10 s; log: %s"
                                   % (self.kind, self.port, self.log_tail()))
            last = "%s exited with %s at start; log: %s" % (self.kind, self.proc.returncode,
                                                            self.log_tail())
            self.stop()
        raise RuntimeError(last)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            except ProcessLookupError:
                pass
        if self in LIVE:
            LIVE.remove(self)
        return self.proc.returncode

    def log_tail(self, n=8):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return " | ".join(lines[-n:]) or "(empty)"
        except OSError:
            return "(no log)"


def stop_all():
    bench_store.stop_all()
    for b in list(LIVE):
        try:
            b.stop()
        except Exception:   # noqa: BLE001 - best effort at exit
            pass


# ---- one run -----------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)   # idle + iowait
    return (sum(v[:8]) - idle) / CLK_TCK


def children_cpu_s():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class OtherLoad:
    """CPU used on the machine during a run by anything but the broker and the
    generator (other processes, and interrupt time not charged to a process),
    in percent of one core."""

    def __init__(self, broker_pid):
        self.pid = broker_pid
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_s()
        self.broker0 = proc_cpu_s(broker_pid)
        self.gen0 = children_cpu_s()

    def pct(self):
        wall = time.monotonic() - self.t0
        if wall <= 0:
            return None
        other = (machine_busy_s() - self.busy0) - (proc_cpu_s(self.pid) - self.broker0) - \
            (children_cpu_s() - self.gen0)
        return max(0.0, other / wall * 100)


def run_bench(bench_exe, args, pinned, timeout, out_path):
    """Run hamqtt-bench; (exit status or reason string, RESULT dict or None,
    first error line)."""
    pin = ["taskset", "-c", str(GEN_CPU)] if pinned else []
    cmd = pin + [bench_exe] + [str(a) for a in args]
    with open(out_path, "ab") as f:
        f.write(("$ %s\n" % " ".join(cmd)).encode())
        f.flush()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout)
            out = p.stdout.decode("utf-8", "replace")
            rc = p.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace")
            rc = "timed out after %.0f s" % timeout
        f.write(out.encode())
    res = None
    first_err = ""
    for line in out.splitlines():
        if line.startswith("RESULT "):
            res = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        elif not first_err and line.startswith("hamqtt-bench:"):
            first_err = line[len("hamqtt-bench:"):].strip()
    return rc, res, first_err


def fnum(res, key, default=None):
    try:
        v = float(res.get(key, "na"))
        return v
    except (TypeError, ValueError):
        return default


def metrics_of(scen, res):
    """The metrics of one RESULT line."""
    m = {}
    for key, name in (("rate", "rate"), ("lost", "lost"), ("dup", "dup"),
                      ("reorder", "reorder"), ("p50_us", "p50"), ("p99_us", "p99"),
                      ("p999_us", "p999"), ("broker_cpu", "broker_cpu"), ("gen_cpu", "gen_cpu"),
                      ("broker_rss_max_kb", "rss_max_kb"), ("conn_rate", "conn_rate"),
                      ("rss_per_conn_b", "rss_per_conn"), ("duration", "secs"),
                      ("sent_rate", "sent_rate"), ("hs_rate", "hs_rate"), ("hs", "hs")):
        v = fnum(res, key)
        if v is not None:
            m[name] = v
    if not m.get("hs"):   # only hs runs make connection cycles
        m.pop("hs", None)
        m.pop("hs_rate", None)
    if m.get("hs_rate") and m.get("broker_cpu") is not None:
        m["us_per_hs"] = m["broker_cpu"] / 100.0 / m["hs_rate"] * 1e6
    if m.get("rate") and m.get("broker_cpu") is not None:
        m["us_per_msg"] = m["broker_cpu"] / 100.0 / m["rate"] * 1e6
    if "rate" in m:
        m["mbps"] = m["rate"] * float(res.get("size", 0) or 0) / 1e6
    return m


def one_run(ctx, scen, kind, pinned, rnd):
    """One fresh broker, one scenario: a record {ok, why, m}."""
    sc = SCENARIOS[scen]
    tag = "%s-%s-%s-r%d" % ("pinned" if pinned else "unpinned", scen, kind, rnd + 1)
    workdir = os.path.join(ctx.outdir, tag)
    os.makedirs(workdir, exist_ok=True)
    out_path = os.path.join(workdir, "bench.out")
    exe = ctx.hamqttd if kind == "hamqtt" else ctx.mosquitto
    workers = 1 if pinned else 2
    redis = ctx.redis if kind == "hamqtt" and sc.get("store") == "redis" else None
    b = Broker(kind, exe, workdir, pinned, workers, scen, redis.port if redis else None,
               ctx.mat)
    rec = dict(scenario=scen, broker=kind, pinned=pinned, round=rnd + 1, ok=False, why="", m={})
    t0 = time.monotonic()
    auth_why = ""
    if (sc.get("tls") or sc.get("auth")) and not ctx.mat:
        rec["why"] = "no certificates / password file: %s" % ctx.mat_err
        return rec
    if kind == "hamqtt" and sc.get("store") == "redis" and not redis:
        rec["why"] = "no redis-server: %s" % ctx.redis_err
        return rec
    try:
        if redis:
            redis.flushall()   # every run starts from an empty store
            aof0 = bench_store.dir_bytes(redis.workdir)
        b.start()
    except (RuntimeError, OSError) as e:
        rec["why"] = "broker did not start: %s" % e
        return rec
    try:
        common = ["-p", b.port, "--broker-pid", b.pid]
        if sc["kind"] == "retained":
            # load the retained topics (not measured), then measure one '#' subscriber
            rc, res, err = run_bench(ctx.bench, ["pub", "-c", 1, "-q", 1, "--retain",
                                                 "--count", S9_TOPICS, "-t", "bench/ret/%n",
                                                 "--no-progress"] + common,
                                     pinned, 300, out_path)
            if rc != 0 or not res or fnum(res, "acked") != S9_TOPICS:
                rec["why"] = "loading the retained topics failed (exit %s): %s" % (
                    rc, err or (res or {}).get("status", "no RESULT"))
                return rec
            load = OtherLoad(b.pid)
            rc, res, err = run_bench(ctx.bench, ["sub", "-T", "#", "-q", 0, "--expect",
                                                 S9_TOPICS, "--timeout", 20] + common,
                                     pinned, 120, out_path)
        else:
            args = list(sc["args"]) + common + bench_tls.bench_args(sc, ctx.mat)
            if sc["kind"] == "conn":
                timeout = 240
            else:
                args += ["-d", ctx.duration, "--warmup", ctx.warmup]
                timeout = ctx.duration + ctx.warmup + 120
            load = OtherLoad(b.pid)
            rcpu0, rt0 = (proc_cpu_s(redis.pid), time.monotonic()) if redis \
                else (0, 0)
            rc, res, err = run_bench(ctx.bench, args, pinned, timeout, out_path)
        other = load.pct()
        alive = b.alive()
        if res:
            rec["m"] = metrics_of(scen, res)
            if other is not None:
                rec["m"]["other_cpu"] = other
            if sc.get("store") and kind == "hamqtt" and alive:
                bench_store.store_facts(rec["m"], b.http, os.path.join(b.workdir, "data"),
                                        redis, aof0 if redis else 0, rcpu0, rt0)
            if sc.get("auth") and kind == "hamqtt" and alive:
                auth_why = bench_tls.auth_facts(rec["m"], b.http)
        if not alive:
            rec["why"] = "broker died during the run (exit %s): %s" % (b.proc.returncode,
                                                                       b.log_tail(4))
        elif rc != 0 or not res:
            status = res.get("status") if res else "no RESULT line"
            rec["why"] = "hamqtt-bench exit %s (%s): %s" % (rc, status, err or "no message")
        elif sc.get("store") and kind == "hamqtt" and not rec["m"].get("store_batches"):
            rec["why"] = "no store batches in /metrics after the run: nothing was stored?"
        elif sc["kind"] == "conn" and fnum(res, "conns") != S8_CONNS:
            rec["why"] = "only %s of %d connections" % (res.get("conns"), S8_CONNS)
        elif sc["kind"] == "retained" and res.get("expect_reached") != "1":
            rec["why"] = "not all retained messages arrived"
        elif auth_why:
            rec["why"] = auth_why
        elif sc["kind"] == "hs" and not fnum(res, "hs"):
            rec["why"] = "no handshake completed in the measured period"
        else:
            rec["ok"] = True
    finally:
        code = b.stop()
        rec["wall_s"] = round(time.monotonic() - t0, 1)
        if rec["ok"] and code not in (0, None, -signal.SIGTERM):
            rec["note"] = "broker exit status %s at stop" % code
    return rec


# ---- statistics and tables -------------------------------------------------

def med(recs, key):
    vals = [r["m"][key] for r in recs if r["ok"] and key in r["m"]]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "FAILED"
    if unit in ("msg/s", "conn/s", "hs/s"):
        if v >= 1e6:
            return "%.2fM" % (v / 1e6)
        if v >= 1e4:
            return "%.1fk" % (v / 1e3)
        return "%.0f" % v
    if unit == "us":
        return "%.1f" % v if v < 100 else "%.0f" % v
    if unit == "%":
        return "%.1f" % v
    if unit == "B":
        return "%.0f" % v
    if unit == "s":
        return "%.3f" % v
    if unit == "MB/s":
        return "%.0f" % v
    return "%.3g" % v


def gen_cell(recs):
    g = med(recs, "gen_cpu")
    if g is None:
        return "-"
    return "%.0f%s" % (g, " (saturated)" if g >= GEN_SATURATED else "")


def failures(recs):
    return ["r%d: %s" % (r["round"], r["why"]) for r in recs if not r["ok"]]


def tables(results, scens, pinned, rounds):
    """Markdown: headline (ratios) and details, for one table."""
    by = {}
    for r in results:
        if r["pinned"] == pinned:
            by.setdefault((r["scenario"], r["broker"]), []).append(r)
    out = []
    out.append("| scenario | metric | hamqtt | Mosquitto | ratio H/M | target | met | "
               "gen CPU % H / M |")
    out.append("|---|---|---:|---:|---:|---|---|---|")
    for scen, label, key, unit, better, target in HEADLINE:
        if scen not in scens:
            continue
        h = by.get((scen, "hamqtt"), [])
        m = by.get((scen, "mosquitto"), [])
        hv, mv = med(h, key), med(m, key)
        ratio = hv / mv if hv is not None and mv else None
        tcell, met = "", ""
        if target is not None:
            tcell = ("ratio >= %g" if better == "high" else "ratio <= %g") % target
            if ratio is not None:
                ok = ratio >= target if better == "high" else ratio <= target
                if scen.startswith("S3") and (med(h, "lost") or 0) > 0:
                    ok = False
                met = "yes" if ok else "**no**"
        unit_s = " (%s)" % unit if unit else ""
        out.append("| %s | %s%s | %s | %s | %s | %s | %s | %s / %s |" % (
            scen, label, unit_s, fmt(hv, unit), fmt(mv, unit),
            "%.2fx" % ratio if ratio is not None else "-", tcell, met,
            gen_cell(h), gen_cell(m)))
    out.extend(bench_store.persist_table(by, scens, SCENARIOS, med, fmt))
    out.extend(bench_tls.auth_table(by, scens, SCENARIOS, med, fmt))
    out.append("")
    out.append("Details (medians of the successful runs; runs = successful / rounds; "
               "\"per run\" lists the headline metric of each run in order):")
    out.append("")
    out.append("| scenario | broker | runs | delivered msg/s | lost | p50 / p99 / p99.9 us | "
               "broker CPU % | broker CPU us/msg | broker RSS max MB | gen CPU % | other CPU % "
               "| per run |")
    out.append("|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    notes = []
    for scen in scens:
        key = next(k for s, _l, k, _u, _b, _t in HEADLINE if s == scen and
                   k not in ("p50", "us_per_msg", "conn_rate"))
        unit = next(u for s, _l, k, u, _b, _t in HEADLINE if s == scen and k == key)
        for kind, name in (("hamqtt", "hamqtt"), ("mosquitto", "Mosquitto")):
            recs = by.get((scen, kind), [])
            ok = [r for r in recs if r["ok"]]

            def c(k, u=""):
                return fmt(med(recs, k), u) if ok else "-"
            lat = "-"
            if ok and med(recs, "p50") is not None and SCENARIOS[scen]["kind"] in ("rate", "hs"):
                lat = "%s / %s / %s" % (c("p50", "us"), c("p99", "us"), c("p999", "us"))
            rss = med(recs, "rss_max_kb")
            per_run = ", ".join(fmt(r["m"].get(key), unit) if r["ok"] else "failed"
                                for r in sorted(recs, key=lambda r: r["round"]))
            out.append("| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                scen, name, len(ok), rounds,
                c("rate", "msg/s") if SCENARIOS[scen]["kind"] not in ("conn", "hs") else "-",
                c("lost") if SCENARIOS[scen]["kind"] not in ("conn", "hs") else "-", lat,
                c("broker_cpu", "%"), c("us_per_msg", "us") if SCENARIOS[scen]["kind"] not in
                ("conn", "hs") else "-", "%.1f" % (rss / 1024) if ok and rss is not None else "-",
                c("gen_cpu", "%"), c("other_cpu", "%"), per_run))
            for f in failures(recs):
                notes.append("- %s %s %s" % (scen, name, f))
            for r in recs:
                if r.get("note"):
                    notes.append("- %s %s r%d: %s" % (scen, name, r["round"], r["note"]))
    if notes:
        out.append("")
        out.append("Failed runs and notes:")
        out.append("")
        out.extend(notes)
    return "\n".join(out)


def history_line(results, date, commit):
    parts = []
    for scen, _label, key, _unit, _better, _target in HEADLINE:
        if key in ("p50", "conn_rate") or (scen == "S4" and key == "rate"):
            continue
        recs = [r for r in results if r["pinned"] and r["scenario"] == scen]
        hv = med([r for r in recs if r["broker"] == "hamqtt"], key)
        mv = med([r for r in recs if r["broker"] == "mosquitto"], key)
        if hv is not None and mv:
            parts.append("%s%s %.2fx" % (scen, "" if key in ("rate", "broker_cpu", "secs",
                                                            "mbps") else " " + key, hv / mv))
        base = SCENARIOS[scen].get("base", ("",))[0]   # S3P: also hamqtt S3P / S3
        bv = med([r for r in results if r["pinned"] and r["scenario"] == base and
                  r["broker"] == "hamqtt"], key)
        if base and hv is not None and bv:
            parts.append("%s/%s %.2f" % (scen, base, hv / bv))
    return "- %s, %s: pinned ratios H/M: %s" % (date, commit, ", ".join(parts) or "none")


def write_markdown(section, hist):
    if os.path.exists(BENCH_MD):
        with open(BENCH_MD) as f:
            text = f.read()
    else:
        text = ("# Benchmarks\n\nWritten by `make bench` (scripts/bench.py); the method is "
                "described there.\n\n## Latest results\n\n%s\n%s\n\n## History\n\n%s\n"
                % (MARK_BEGIN, MARK_END, MARK_HISTORY))
    if MARK_BEGIN in text and MARK_END in text:
        a = text.index(MARK_BEGIN) + len(MARK_BEGIN)
        z = text.index(MARK_END)
        text = text[:a] + "\n" + section + "\n" + text[z:]
    else:
        text += "\n## Latest results\n\n%s\n%s\n%s\n" % (MARK_BEGIN, section, MARK_END)
    if MARK_HISTORY not in text:
        text += "\n## History\n\n%s\n" % MARK_HISTORY
    a = text.index(MARK_HISTORY) + len(MARK_HISTORY)
    text = text[:a] + "\n" + hist + text[a:]
    with open(BENCH_MD, "w") as f:
        f.write(text)


# ---- main --------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenarios, e.g. S1,S3")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per run")
    ap.add_argument("--no-unpinned", action="store_true", help="skip the unpinned table")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 round of 1 s after 1 s warm-up, BENCHMARKS.md "
                    "untouched (the figures mean nothing)")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.duration, a.warmup, a.no_write = 1, 1.0, 1.0, True
    return a


class Ctx:
    pass


def take_lock(wait_s=1800):
    """One benchmark at a time on this machine (two would measure each other):
    wait for a running one to finish, at most wait_s."""
    import fcntl
    os.makedirs(os.path.join(BUILD, "bench"), exist_ok=True)
    f = open(os.path.join(BUILD, "bench", ".lock"), "a+")
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("bench: another benchmark still holds build/bench/.lock after %d s"
                         % wait_s)
            if not said:
                log("bench: another benchmark is running on this machine: waiting for it")
                said = True
            time.sleep(2)


def main():
    a = parse_args()
    only = set(s.strip().upper() for s in a.only.split(",")) if a.only else None
    if only:   # a persistent scenario is measured against its base of the same run
        only |= set(SCENARIOS[s]["base"][0] for s in only if SCENARIOS.get(s, {}).get("base"))
    pinned_scens = [s for s in PINNED if not only or s in only]
    unpinned_scens = [] if a.no_unpinned else [s for s in UNPINNED if not only or s in only]
    if not pinned_scens and not unpinned_scens:   # e.g. --only S11: bench.sh runs it
        log("bench: no scenario of bench.py selected")
        return 0
    for exe in ("hamqttd", "hamqtt-bench"):
        if not os.access(os.path.join(BUILD, exe), os.X_OK):
            sys.exit("bench: build/%s missing: run make first" % exe)
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench: needs 2 CPUs (broker on CPU 0, generator on CPU 1)")
    mosq, mosq_version = ensure_mosquitto()
    lock = take_lock()   # noqa: F841 - held until exit

    ctx = Ctx()
    ctx.duration, ctx.warmup = a.duration, a.warmup
    ctx.redis = None
    ctx.mat, ctx.mat_err = None, ""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    ctx.outdir = os.path.join(BUILD, "bench", stamp)
    os.makedirs(ctx.outdir, exist_ok=True)
    if bench_tls.needed(set(pinned_scens) | set(unpinned_scens), SCENARIOS):
        try:
            ctx.mat = bench_tls.make_material(os.path.join(ctx.outdir, "tls"))
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            ctx.mat_err = str(e)
            log("bench: warning: TLS/auth scenarios will fail: %s" % e)
    # private copies: src/ may be rebuilt while the benchmark runs
    bindir = tempfile.mkdtemp(prefix="hamqtt-bench-bin-")
    ctx.hamqttd = shutil.copy2(os.path.join(BUILD, "hamqttd"), bindir)
    ctx.bench = shutil.copy2(os.path.join(BUILD, "hamqtt-bench"), bindir)
    ctx.mosquitto = mosq
    commit = git_commit()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open("/proc/loadavg") as f:
        load_start = " ".join(f.read().split()[:3])
    _, kernel = sh(["uname", "-r"])
    _, cpu = sh(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"])
    nofile = "%s" % (__import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE),)

    n_runs = (len(pinned_scens) + len(unpinned_scens)) * a.rounds * 2
    log("bench: hamqttd %s vs mosquitto %s, %d runs of %.0f s + %.0f s warm-up, output in %s"
        % (commit, mosq_version, n_runs, a.duration, a.warmup, ctx.outdir))
    results = []
    t_start = time.monotonic()
    interrupted = False

    def on_signal(sig, _frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for pinned, scens in ((True, pinned_scens), (False, unpinned_scens)):
            for scen in scens:
                ctx.redis, ctx.redis_err = None, ""
                if SCENARIOS[scen].get("store") == "redis":
                    ctx.redis, ctx.redis_err = bench_store.start_redis(
                        os.path.join(ctx.outdir, "redis-%s-%s" % (
                            scen, "pinned" if pinned else "unpinned")),
                        BROKER_CPU if pinned else None)
                for rnd in range(a.rounds):
                    order = ("hamqtt", "mosquitto") if rnd % 2 == 0 else ("mosquitto", "hamqtt")
                    for kind in order:
                        rec = one_run(ctx, scen, kind, pinned, rnd)
                        results.append(rec)
                        m = rec["m"]
                        show = ", ".join("%s=%s" % (k, fmt(m[k], u)) for k, u in (
                            ("rate", "msg/s"), ("lost", ""), ("p99", "us"),
                            ("broker_cpu", "%"), ("gen_cpu", "%"), ("conn_rate", "conn/s"),
                            ("rss_per_conn", "B"), ("secs", "s"), ("hs_rate", "hs/s")) if k in m)
                        log("[%5.0fs] %-8s %-3s %-9s r%d %s  %s" % (
                            time.monotonic() - t_start, "pinned" if pinned else "unpinned",
                            scen, kind, rnd + 1, "ok    " if rec["ok"] else "FAILED",
                            show + ("" if rec["ok"] else "  -- " + rec["why"])))
                if ctx.redis:
                    ctx.redis.stop()
    except KeyboardInterrupt:
        interrupted = True
        log("bench: interrupted: stopping the brokers")
    finally:
        stop_all()
        shutil.rmtree(bindir, ignore_errors=True)

    with open(os.path.join(ctx.outdir, "results.json"), "w") as f:
        json.dump(dict(commit=commit, date=date, mosquitto=mosq_version, rounds=a.rounds,
                       duration=a.duration, warmup=a.warmup, results=results), f, indent=1)
    elapsed = time.monotonic() - t_start
    head = [
        "Run of %s, hamqtt commit %s, Mosquitto %s; %d rounds, %.0f s measured after %.0f s "
        "warm-up per run (S8: %d connections held 2 s; S9: until all %d arrived); "
        "the whole run took %.0f min. Machine: %d CPUs (%s), kernel %s, file limit %s, "
        "load average %s at the start."
        % (date, commit, mosq_version, a.rounds, a.duration, a.warmup, S8_CONNS, S9_TOPICS,
           elapsed / 60, os.cpu_count() or 0, cpu.strip(), kernel.strip(), nofile, load_start),
        "",
    ]
    others = [r["m"]["other_cpu"] for r in results if "other_cpu" in r["m"]]
    if others and statistics.median(others) > 15:
        head.append("**The machine was busy with other work during this run** (median "
                    "\"other CPU\" %.0f %% of a core, max %.0f %%): the figures are noisier "
                    "than on a quiet machine, the latency tails most.\n"
                    % (statistics.median(others), max(others)))
    if interrupted:
        head.append("**Interrupted: partial results.**\n")
    parts = list(head)
    if pinned_scens:
        parts += ["### Pinned: broker on CPU %d (hamqttd node.workers = 1), hamqtt-bench on "
                  "CPU %d" % (BROKER_CPU, GEN_CPU), "",
                  tables(results, pinned_scens, True, a.rounds), ""]
    if unpinned_scens:
        parts += ["### Unpinned: nothing pinned, hamqttd node.workers = 2", "",
                  tables(results, unpinned_scens, False, a.rounds), ""]
    section = "\n".join(parts)
    log("")
    log(section)
    if not a.no_write and not interrupted:
        write_markdown(section, history_line(results, date, commit))
        log("bench: tables written to BENCHMARKS.md (raw runs: %s)" % ctx.outdir)
    # exit 1 when a scenario has no successful run for a broker
    by = {}
    for r in results:
        by.setdefault((r["pinned"], r["scenario"], r["broker"]), []).append(r["ok"])
    if interrupted:
        return 130
    return 1 if any(not any(v) for v in by.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
