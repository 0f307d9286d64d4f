#!/usr/bin/env python3
"""make bench (ARCHIVE): archived msg/s into a real PostgreSQL (issue 12; target
>= 100,000 msg/s with batching).

  1. start Debian's postgres from a temporary directory on a free loopback port as
     the postgres user (like tests/integration/pgsql.py, but fsync ON and
     synchronous_commit on: every committed batch is on disk);
  2. start build/hamqttd (node.workers = 2) with one archive `pg` of topic
     `arc/#`, a memory buffer large enough that nothing spills or drops;
  3. hamqtt-bench pub: PUBS publishers, QoS 0, 64-byte payloads, --count N each;
  4. count the rows (SELECT count(*) every 0.2 s) until all arrived, or none
     for 20 s; archived msg/s = rows / (time of the last row - first publish).
One line `ARCHIVE ...` with the figures; exit 1 when rows are missing or a
process failed. Every wait is bounded; every process is killed at exit.
Output under build/bench/archive-<date-time>/.

Usage: scripts/bench_archive.py [--pubs N] [--count N] [--batch N] [--pool N]
"""

import argparse
import datetime
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time

import bench_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
PROCS = []


def log(msg):
    print(msg, flush=True)


def pg_bindir():
    for d in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"):
        if os.access(os.path.join(d, "postgres"), os.X_OK):
            return d
    return None


class Pg:
    USER, PASSWORD, DB = "hamqtt", "bench-pw", "archive"

    def __init__(self, workdir):
        self.bin = pg_bindir()
        self.dir = os.path.join(workdir, "pg")
        self.port = bench_store.free_port()
        os.makedirs(self.dir)
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)

    def _as_postgres(self, argv):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + argv, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=120)

    def sql(self, q, db=None):
        r = self._as_postgres([os.path.join(self.bin, "psql"), "-h", self.dir, "-p",
                               str(self.port), "-U", "postgres", "-d", db or self.DB, "-X", "-A",
                               "-t", "-v", "ON_ERROR_STOP=1", "-c", q])
        return r.stdout.decode().strip()

    def start(self):
        data = os.path.join(self.dir, "data")
        self._as_postgres([os.path.join(self.bin, "initdb"), "-D", data, "-U", "postgres",
                           "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                           "--locale=C.UTF-8"])
        with open(os.path.join(self.dir, "postgres.log"), "ab") as f:
            p = subprocess.Popen(["runuser", "-u", "postgres", "--",
                                  os.path.join(self.bin, "postgres"), "-D", data, "-p",
                                  str(self.port), "-h", "127.0.0.1", "-k", self.dir,
                                  "-c", "fsync=on", "-c", "synchronous_commit=on",
                                  "-c", "shared_buffers=128MB", "-c", "max_connections=20"],
                                 stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        PROCS.append(p)
        deadline = time.monotonic() + 30
        while subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", self.dir, "-p",
                              str(self.port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode:
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("postgres did not start (see %s)" % self.dir)
            time.sleep(0.1)
        self.sql("CREATE USER %s PASSWORD '%s'" % (self.USER, self.PASSWORD), db="postgres")
        self.sql("CREATE DATABASE %s OWNER %s" % (self.DB, self.USER), db="postgres")

    def rows(self):
        try:
            return int(self.sql("SELECT count(*) FROM mqtt_messages") or 0)
        except subprocess.CalledProcessError:
            return 0   # not created yet


def start_node(workdir, pg, a):
    port = bench_store.free_port()
    http = bench_store.free_port(exclude=(port,))
    conf = os.path.join(workdir, "hamqtt.conf")
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    lines = [
        "node.name = arc@127.0.0.1", "cluster.port = 0", "node.workers = 2",
        "node.data_dir = %s" % data, "listeners.tcp.default.bind = 127.0.0.1:%d" % port,
        "dashboard.listeners.http.bind = 127.0.0.1:%d" % http, "log.level = notice",
        "sys.interval = 0",
        "archive.pg.backend = postgresql", "archive.pg.server = 127.0.0.1:%d" % pg.port,
        "archive.pg.database = %s" % pg.DB, "archive.pg.username = %s" % pg.USER,
        "archive.pg.password = %s" % pg.PASSWORD, 'archive.pg.topics = "arc/#"',
        "archive.pg.batch_size = %d" % a.batch, "archive.pg.pool_size = %d" % a.pool,
        "archive.pg.buffer_messages = %d" % (a.pubs * a.count + 1000),
    ]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(workdir, "hamqttd.log"), "ab") as f:
        p = subprocess.Popen([os.path.join(BUILD, "hamqttd"), "-c", conf], stdout=f,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    PROCS.append(p)
    deadline = time.monotonic() + 20
    while bench_store.port_free(port):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("hamqttd did not start (see %s)" % workdir)
        time.sleep(0.1)
    return p, port, http


def metric(http, name):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'^%s\S* (\d+)' % re.escape(name), text, re.M)
    return int(m.group(1)) if m else 0


def stop_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pubs", type=int, default=4)
    ap.add_argument("--count", type=int, default=100000, help="messages per publisher")
    ap.add_argument("--batch", type=int, default=5000, help="archive.pg.batch_size")
    ap.add_argument("--pool", type=int, default=2, help="archive.pg.pool_size")
    a = ap.parse_args()
    if not pg_bindir() or os.geteuid() != 0:
        log("ARCHIVE skipped: needs postgresql (scripts/deps.sh) and root (runuser postgres)")
        return 1
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = os.path.join(BUILD, "bench", "archive-" + stamp)
    os.makedirs(workdir)
    os.chmod(workdir, 0o755)
    try:
        pg = Pg(workdir)
        pg.start()
        node, port, http = start_node(workdir, pg, a)
        want = a.pubs * a.count
        t0 = time.monotonic()
        with open(os.path.join(workdir, "bench.out"), "wb") as f:
            r = subprocess.run([os.path.join(BUILD, "hamqtt-bench"), "pub", "-p", str(port),
                                "-c", str(a.pubs), "-q", "0", "-s", "64", "-t", "arc/%i",
                                "--count", str(a.count), "--no-progress"],
                               stdout=f, stderr=subprocess.STDOUT, timeout=600)
        t_pub = time.monotonic() - t0
        if r.returncode:
            log("ARCHIVE failed: hamqtt-bench exited %d (see %s)" % (r.returncode, workdir))
            return 1
        last, last_t, n = -1, time.monotonic(), 0
        while True:
            n = pg.rows()
            now = time.monotonic()
            if n != last:
                last, last_t = n, now
            if n >= want or now - last_t > 20:
                break
            time.sleep(0.2)
        dropped = metric(http, 'hamqtt_archive_messages_total{node="arc@127.0.0.1",'
                               'archive="pg",result="dropped"}')
        spilled = metric(http, 'hamqtt_archive_messages_total{node="arc@127.0.0.1",'
                               'archive="pg",result="spilled"}')
        secs = last_t - t0
        rate = n / secs if secs > 0 else 0
        log("ARCHIVE rows=%d/%d published_in=%.2fs archived_in=%.2fs archived_msg_s=%.0f "
            "publish_msg_s=%.0f spilled=%d dropped=%d fsync=on batch=%d pool=%d (%s)"
            % (n, want, t_pub, secs, rate, want / t_pub if t_pub > 0 else 0, spilled, dropped,
               a.batch, a.pool, workdir))
        return 0 if n == want else 1
    finally:
        stop_all()
        shutil.rmtree(os.path.join(workdir, "pg"), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
