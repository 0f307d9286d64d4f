#!/usr/bin/python3
"""bench_api.py - how fast GET /api/v5/clients pages through many sessions
(issue 11 item 1: "each page in well under 100 ms on one node").

Starts one hamqttd (build/hamqttd, memory store, log level notice) in a temp
directory, creates --sessions offline persistent sessions (v3.1.1,
clean session 0: each a raw CONNECT + DISCONNECT, --window sockets at a time,
so the process fd limit is never near), then walks every page of
/api/v5/clients?limit=--limit and a few filtered queries, and prints the
time per request (median, p99, max). Loopback only; every loop is bounded by
--sessions and by the pages those make.

    scripts/bench_api.py [--sessions 100000] [--limit 100] [--build build]
"""
import argparse
import base64
import json
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def mstr(b):
    return len(b).to_bytes(2, "big") + b


def connect_disconnect(cid):
    body = mstr(b"MQTT") + bytes([4, 0x00]) + (600).to_bytes(2, "big") + mstr(cid)
    return bytes([0x10, len(body)]) + body + bytes([0xE0, 0])


def make_sessions(port, n, window):
    """n offline sessions "bench-<i>": window connections in flight at a time."""
    sel = selectors.DefaultSelector()
    sent = done = 0
    deadline = time.monotonic() + 600
    while done < n:
        if time.monotonic() > deadline:
            raise SystemExit("sessions not created within 600 s (%d of %d)" % (done, n))
        while sent < n and sent - done < window:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(connect_disconnect(b"bench-%07d" % sent))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            sent += 1
        for key, _ in sel.select(timeout=5):
            s = key.fileobj
            try:
                data = s.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data and data[0] != 0x20:
                raise SystemExit("expected CONNACK, got %r" % data)
            if not data or len(data) >= 4:  # CONNACK read (or closed after DISCONNECT)
                sel.unregister(s)
                s.close()
                done += 1


def get(port, path, headers):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers)
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        doc = json.loads(r.read())
    return (time.perf_counter() - t0) * 1000.0, doc


def summary(name, ms):
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print("%-44s %6d requests  median %7.2f ms  p99 %7.2f ms  max %7.2f ms"
          % (name, len(ms), statistics.median(ms), p99, ms[-1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=100000)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--build", default="build")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench_api.")
    port, http = free_port(), free_port()
    conf = os.path.join(work, "hamqtt.conf")
    with open(conf, "w") as f:
        f.write("node.data_dir = %s\nnode.workers = %d\nlisteners.tcp.default.bind = "
                "127.0.0.1:%d\ndashboard.listeners.http.bind = 127.0.0.1:%d\n"
                "cluster.port = 0\nlog.level = notice\nsession.store = memory\n"
                % (os.path.join(work, "data"), a.workers, port, http))
    os.makedirs(os.path.join(work, "data"))
    log = open(os.path.join(work, "hamqttd.log"), "wb")
    p = subprocess.Popen([os.path.join(a.build, "hamqttd"), "-c", conf], stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        key_path = os.path.join(work, "data", "ctl.key")
        for _ in range(200):
            if os.path.exists(key_path):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        with open(key_path) as f:
            key = f.readline().strip()
        h = {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}
        t0 = time.monotonic()
        make_sessions(port, a.sessions, a.window)
        print("%d offline sessions created in %.1f s" % (a.sessions, time.monotonic() - t0))
        ms, doc = get(http, "/api/v5/clients?limit=1", h)
        assert doc["meta"]["count"] == a.sessions, doc["meta"]
        pages = (a.sessions + a.limit - 1) // a.limit
        times, seen = [], 0
        for page in range(1, pages + 1):
            ms, doc = get(http, "/api/v5/clients?limit=%d&page=%d" % (a.limit, page), h)
            times.append(ms)
            seen += len(doc["data"])
        assert seen == a.sessions, (seen, a.sessions)
        summary("GET /clients limit=%d, every page" % a.limit, times)
        for name, q in (("like_clientid=999 (lock-free filter)", "like_clientid=999"),
                        ("conn_state=disconnected", "conn_state=disconnected"),
                        ("proto_ver=4 (judged by the workers)", "proto_ver=4"),
                        ("clientid=bench-0050000 (hash lookup)", "clientid=bench-0050000")):
            t = [get(http, "/api/v5/clients?limit=%d&page=%d&%s" % (a.limit, pg, q), h)[0]
                 for pg in (1, 2, 3, 4, 5)]
            summary(name, t)
    finally:
        p.terminate()
        p.wait(timeout=30)
        log.close()
        if p.returncode == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("hamqttd exited %d; log kept in %s" % (p.returncode, work), file=sys.stderr)


if __name__ == "__main__":
    main()
