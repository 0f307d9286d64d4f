"""26 out of file descriptors: the node neither spins nor floods its log.

With connections up to the descriptor limit, accept() fails with EMFILE while
the listening socket stays readable (level-triggered epoll). The node must
refuse the pending clients at once (instead of leaving them hanging), pause
accepting briefly instead of retrying in a loop, log at most a line per
interval with counts, count it in /metrics, keep serving the clients it has,
and admit new clients once descriptors are free again (src/net/accept_guard.h).
Both listeners: MQTT (the workers) and cluster links (the cluster thread)."""

import os
import re
import resource
import select
import socket
import time
import urllib.request

import mqttraw as m
from mqttraw import T
from conftest import wait_until, workers_count

LIMIT = 64          # RLIMIT_NOFILE of the broker; it starts with ~20 open
CLIENTS = 60        # more than fit


def _cpu_seconds(pid):
    """utime + stime of the whole process (/proc/PID/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _answered(socks, timeout):
    """Wait until every socket is readable (an answer or a close); return the
    ones that stayed silent."""
    left = list(socks)
    deadline = time.monotonic() + T(timeout)
    while left and time.monotonic() < deadline:
        r, _, _ = select.select(left, [], [], 0.2)
        left = [s for s in left if s not in r]
    return left


def _got_connack(sock):
    try:
        return sock.recv(4) == b"\x20\x02\x00\x00"
    except OSError:
        return False  # reset: refused


def _metric(text, name, **labels):
    total = 0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all('%s="%s"' % kv in line for kv in labels.items()):
            total += int(line.rsplit(" ", 1)[1])
    return total


def _knock(port, n, prefix):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=T(5))
        s.sendall(m.connect("%s-%d" % (prefix, i), version=4))
        socks.append(s)
    return socks


def test_out_of_descriptors(broker):
    b = broker()
    resource.prlimit(b.pid, resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
    alive = m.RawClient(b.port, version=5)
    alive.connect("fd-alive")
    alive.subscribe("fd/t", qos=1)

    socks = _knock(b.port, CLIENTS, "fd")
    b.wait_log("accept failed", timeout=10)
    first_line = time.monotonic()
    # cluster links knock too, once the descriptors are gone
    links = [socket.create_connection(("127.0.0.1", b.cluster_port), timeout=T(5))
             for _ in range(3)]

    # every client learns its fate: CONNACK, or a close (not a hang in the backlog)
    silent = _answered(socks, 10)
    assert not silent, "%d of %d clients neither admitted nor refused" % (len(silent), CLIENTS)
    admitted = [s for s in socks if _got_connack(s)]
    assert 20 <= len(admitted) < CLIENTS, len(admitted)
    silent = _answered(links, 10)
    assert not silent, "%d cluster connections neither served nor refused" % len(silent)

    # more storms, still at the limit: every worker can still refuse. With one
    # reserve per worker, a worker whose freed slot a sibling took (each storm
    # makes the workers refuse at the same time) had no reserve any more and
    # left its share of the next storm hanging (each worker has its own
    # SO_REUSEPORT listener and backlog): the unfixed broker failed 7 of 8 runs
    # with 4 workers, in the first storm or one of these.
    more = []
    for storm in range(2, 5):
        knock = _knock(b.port, 20, "fd%d" % storm)
        more += knock
        silent = _answered(knock, 10)
        assert not silent, "storm %d: %d of 20 clients neither admitted nor refused" % (
            storm, len(silent))

    # no spinning while the limit holds
    time.sleep(0.5)
    cpu0 = _cpu_seconds(b.pid)
    time.sleep(3)
    spent = _cpu_seconds(b.pid) - cpu0
    assert spent < 0.5, "broker used %.2f CPU seconds in 3 s at the descriptor limit" % spent
    lines = b.log_lines("accept failed")
    # at most one line per listener owner (the workers, the cluster thread)
    # per 10 s interval (+1: one may have begun before we saw the first line)
    intervals = 2 + int((time.monotonic() - first_line) // 10)
    allowed = (workers_count() + 1) * intervals
    assert len(lines) <= allowed, "%d accept failure lines (at most %d), e.g. %s" % (
        len(lines), allowed, lines[:3])
    assert any("refused since the last report" in ln for ln in lines), lines

    # the clients it has are served: a QoS 1 round trip
    assert alive.publish("fd/t", b"still here", qos=1).type == m.PUBACK
    assert alive.expect(m.PUBLISH).payload == b"still here"

    # descriptors free again: /metrics (needs one itself) and new clients work
    for s in admitted[:10] + links:
        s.close()
    text = wait_until(lambda: _try_metrics(b), timeout=10, interval=0.2, what="/metrics")
    assert _metric(text, "hamqtt_listener_accept_errors_total", listener="mqtt",
                   reason="emfile") >= 1, text
    assert _metric(text, "hamqtt_listener_connections_refused_total", listener="mqtt") >= 1
    assert _metric(text, "hamqtt_listener_connections_refused_total", listener="cluster") + \
        _metric(text, "hamqtt_listener_accept_errors_total", listener="cluster") >= 1
    assert re.search(r"# TYPE hamqtt_listener_accept_errors_total counter\n", text)
    late = m.RawClient(b.port, version=5)
    late.connect("fd-late")
    late.disconnect()
    for s in socks + more:
        s.close()
    alive.disconnect()


def _try_metrics(b):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % b.http_port,
                                    timeout=T(2)) as r:
            return r.read().decode()
    except OSError:
        return None
