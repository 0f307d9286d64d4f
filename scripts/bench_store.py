"""Helpers of the persistent-session benchmarks (issue 9): a private
redis-server for session.store = redis, the node's /metrics, the size of a
data directory, and the table comparing a persistent scenario with its
in-memory base (S3P / S3 in the same run). Used by scripts/bench.py and
scripts/bench_recovery.py; no state of its own beyond the servers in LIVE.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

LIVE = []   # redis servers running now (stopped by stop_all at exit)


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(exclude=()):
    """A free loopback port below the ephemeral range (clients never get it)."""
    for _ in range(500):
        port = random.randint(20000, 32000)
        if port not in exclude and port_free(port):
            return port
    raise RuntimeError("no free port found")


def resp_cmd(port, *words, timeout=10.0):
    """One Redis command over a fresh connection (RESP, no redis-cli needed);
    the first reply line, e.g. '+OK' or '+PONG'. Raises OSError."""
    req = "*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w.encode()), w)
                                           for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req.encode())
        data = b""
        while b"\r\n" not in data and len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode("utf-8", "replace")


class RedisServer:
    """A redis-server of our own on a free loopback port, its files in
    workdir: AOF with fsync every second (Redis's usual durable setting), no
    RDB snapshots. pin_cpu: run it under taskset on that CPU (the pinned
    table counts the store's CPU on the broker's core)."""

    def __init__(self, workdir, pin_cpu=None):
        self.workdir = workdir
        self.pin_cpu = pin_cpu
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, "redis.log")

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        last = "not started"
        for _attempt in range(3):
            self.port = free_port()
            pin = ["taskset", "-c", str(self.pin_cpu)] if self.pin_cpu is not None else []
            cmd = pin + ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                         "--dir", self.workdir, "--logfile", self.log_path]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, start_new_session=True)
            LIVE.append(self)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if resp_cmd(self.port, "PING", timeout=1) == "+PONG":
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            last = "redis-server on port %d: exit %s" % (self.port, self.proc.poll())
            self.stop()
        raise RuntimeError(last)

    @property
    def pid(self):
        return self.proc.pid

    def flushall(self):
        """Empty it between runs, so every run starts from an empty store."""
        rep = resp_cmd(self.port, "FLUSHALL")
        if rep != "+OK":
            raise RuntimeError("redis FLUSHALL: %s" % rep)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self in LIVE:
            LIVE.remove(self)


def stop_all():
    for r in list(LIVE):
        try:
            r.stop()
        except Exception:   # noqa: BLE001 - best effort at exit
            pass


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """utime + stime of a process (all threads), 0.0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def start_redis(workdir, pin_cpu):
    """(RedisServer, "") for a session.store = redis scenario's runs, or
    (None, why): its runs then fail with that reason."""
    if not shutil.which("redis-server"):
        return None, "redis-server not installed (apt-get install redis-server)"
    try:
        return RedisServer(workdir, pin_cpu).start(), ""
    except (RuntimeError, OSError) as e:
        return None, str(e)


def store_facts(m, http_port, data_dir, redis, aof0, rcpu0, rt0):
    """Into a run's metrics m, the proof that a persistent run stored
    something: the node's store batches from /metrics, the bytes on disk (the
    node's data dir; with redis what its AOF directory grew by), and with redis
    redis-server's CPU % since rt0."""
    met = scrape_metrics(http_port)
    if "hamqtt_store_batches_total" in met:
        m["store_batches"] = met["hamqtt_store_batches_total"]
        m["store_failed"] = met.get("hamqtt_store_failed_batches_total", 0)
    if redis:
        m["data_bytes"] = dir_bytes(redis.workdir) - aof0
        wall = time.monotonic() - rt0
        if wall > 0:
            m["store_cpu"] = (proc_cpu_s(redis.pid) - rcpu0) / wall * 100
    else:
        m["data_bytes"] = dir_bytes(data_dir)


def scrape_metrics(http_port, timeout=5.0):
    """hamqttd's /metrics as {name: value} (labels dropped: one node); {} if
    it cannot be read (the caller records what it got)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port,
                                    timeout=timeout) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            pass
    return out


def dir_bytes(path):
    """Bytes allocated on disk under path (sparse LMDB maps count as used)."""
    total = 0
    for d, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


def persist_table(by, scens, scenarios, med, fmt):
    """Markdown rows comparing each scenario that has a base (S3P -> S3) with
    that base in the same table, and with Mosquitto (persistence true).
    by: {(scenario, broker): [records]}."""
    rows = [s for s in scens if scenarios[s].get("persist") and scenarios[s].get("base")]
    if not rows:
        return []
    out = ["", "Persistent sessions (`--no-clean`) against in-memory S3 of the same run "
           "(target: hamqtt / hamqtt base) and against Mosquitto with `persistence true`:", "",
           "| scenario | hamqtt store | hamqtt msg/s | base | base msg/s | ratio to base | "
           "target | met | Mosquitto msg/s | ratio H/M | lost H | store batches | "
           "data MB after | store CPU % |",
           "|---|---|---:|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for scen in rows:
        sc = scenarios[scen]
        base, target = sc["base"]
        h = by.get((scen, "hamqtt"), [])
        m = by.get((scen, "mosquitto"), [])
        hb = by.get((base, "hamqtt"), [])
        hv, bv, mv = med(h, "rate"), med(hb, "rate"), med(m, "rate")
        ratio = hv / bv if hv is not None and bv else None
        met = ""
        if ratio is not None:
            met = "yes" if ratio >= target and not (med(h, "lost") or 0) else "**no**"
        store = sc.get("store", "memory") + (" fsync" if sc.get("fsync") else "")
        batches = med(h, "store_batches")
        mb = med(h, "data_bytes")
        scpu = med(h, "store_cpu")
        out.append("| %s | %s | %s | %s | %s | %s | ratio >= %g | %s | %s | %s | %s | %s | %s "
                   "| %s |" % (
                       scen, store, fmt(hv, "msg/s"), base, fmt(bv, "msg/s"),
                       "%.2f" % ratio if ratio is not None else "-", target, met,
                       fmt(mv, "msg/s"), "%.2fx" % (hv / mv) if hv is not None and mv else "-",
                       fmt(med(h, "lost")) if h else "-",
                       "%.0f" % batches if batches is not None else "-",
                       "%.1f" % (mb / 1e6) if mb is not None else "-",
                       "%.1f" % scpu if scpu is not None else "-"))
    out.append("")
    out.append("store batches: `hamqtt_store_batches_total` after the run (> 0: the messages "
               "were written); data MB: node.data_dir (local) or the Redis AOF directory "
               "(redis) at the end of the run; store CPU %: redis-server's CPU over the run "
               "(redis only; hamqttd's own store thread is in its broker CPU).")
    return out
