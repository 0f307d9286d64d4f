"""20 bench: hamqtt-bench's counts checked against a known workload.

Runs $HAMQTT_BUILD/hamqtt-bench against a real broker with --count (exact
message counts) and reads its `RESULT key=value ...` line: at QoS 1 and 2
every message is delivered once and in order (none lost, duplicated or
reordered), for MQTT 3.1.1 and 5, point to point and fan-in; conn mode
establishes every connection; a refused connection gives exit status 2. No
timing is asserted.

The broker's session queue is raised so a max-rate burst is not cut by the
default queue policy (1000 queued messages, then drops)."""

import os
import random
import subprocess

import pytest

from conftest import build_dir
from mqttraw import T

QUEUE = {"mqtt.max_queued_messages": 100000}


@pytest.fixture
def uid(request):
    """A topic prefix unique to this test."""
    return "b%d-%s" % (random.randint(0, 999999), request.node.name.split("[")[0][-12:])


def bench_path():
    return os.path.join(build_dir(), "hamqtt-bench")


def run_bench(port, *args, expect_rc=0, timeout=60):
    """Run hamqtt-bench; return its RESULT line as a dict of strings."""
    if not os.access(bench_path(), os.X_OK):
        pytest.fail("hamqtt-bench not found at %s" % bench_path())
    cmd = [bench_path(), args[0], "-p", str(port), "--no-progress", "--timeout", str(T(10))]
    cmd += [str(a) for a in args[1:]]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=T(timeout), env=dict(os.environ))
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    ctx = "command: %s\nexit %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), p.returncode, out, err)
    assert p.returncode == expect_rc, ctx
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert len(lines) == 1, ctx
    assert out.rstrip().endswith(lines[0]), "RESULT is not the last line\n" + ctx
    res = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
    res["_ctx"] = ctx
    return res


def num(res, key):
    return int(float(res[key]))


def assert_exact(res, expected):
    ctx = res["_ctx"]
    assert res["status"] == "ok", ctx
    assert num(res, "expected") == expected, ctx
    assert num(res, "delivered") == expected, ctx
    assert num(res, "lost") == 0, ctx
    assert num(res, "dup") == 0, ctx
    assert num(res, "reorder") == 0, ctx
    assert num(res, "stray") == 0, ctx


@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("version", [4, 5])
def test_pubsub_pairs_exact(broker, uid, qos, version):
    """5 pairs x 2000 messages at max rate: each subscriber gets each of its
    publisher's messages exactly once, in order; every flow is acknowledged."""
    b = broker(QUEUE)
    res = run_bench(b.port, "pubsub", "-c", 5, "-q", qos, "-V", version, "--count", 2000,
                    "-t", uid + "/%i", "-T", uid + "/%i", "--broker-pid", b.pid)
    assert_exact(res, 5 * 2000)
    assert num(res, "sent") == 10000 and num(res, "acked") == 10000, res["_ctx"]
    assert num(res, "conns") == 10 and num(res, "nacked") == 0, res["_ctx"]
    assert int(res["broker_rss_kb"]) > 0, res["_ctx"]


def test_fan_in_exact(broker, uid):
    """10 publishers -> 1 subscriber on a wildcard, QoS 1: every message of
    every publisher arrives once, in per-publisher order."""
    b = broker(QUEUE)
    res = run_bench(b.port, "pubsub", "--pubs", 10, "--subs", 1, "-q", 1, "--count", 1000,
                    "-t", uid + "/%i", "-T", uid + "/#")
    assert_exact(res, 10 * 1000)


def test_fan_out_exact(broker, uid):
    """1 publisher -> 20 subscribers, QoS 1: each subscriber gets all 500."""
    b = broker(QUEUE)
    res = run_bench(b.port, "pubsub", "--pubs", 1, "--subs", 20, "-q", 1, "--count", 500,
                    "-t", uid + "/x", "-T", uid + "/x", "-V", 5)
    assert_exact(res, 20 * 500)


def test_shared_once_per_group(broker, uid):
    """$share/g/...: 2 publishers -> 3 members of one group, QoS 1: each message
    once per group (reorder across members is allowed, not asserted)."""
    b = broker(QUEUE)
    res = run_bench(b.port, "pubsub", "--pubs", 2, "--subs", 3, "-q", 1, "--count", 500,
                    "--shared", "g", "-t", uid + "/%i", "-T", uid + "/#", "-V", 5)
    ctx = res["_ctx"]
    assert res["status"] == "ok", ctx
    assert num(res, "expected") == 1000, ctx
    assert num(res, "delivered") == 1000 and num(res, "lost") == 0, ctx
    assert num(res, "dup") == 0, ctx


def test_conn_200(broker):
    """conn mode: 200 connections established, held, none dropped."""
    b = broker()
    res = run_bench(b.port, "conn", "-c", 200, "-d", 0.5, "--broker-pid", b.pid)
    ctx = res["_ctx"]
    assert res["status"] == "ok", ctx
    assert num(res, "conns") == 200 and num(res, "conns_wanted") == 200, ctx
    assert num(res, "conn_fail") == 0 and num(res, "dropped") == 0, ctx
    assert int(res["rss_per_conn_b"]) > 0, ctx


def test_refused_connection_exit_2(broker):
    """Nothing listens: a clear error, status=error and exit status 2."""
    b = broker()
    port = b.port
    b.stop()
    res = run_bench(port, "pubsub", "-c", 2, "--count", 10, expect_rc=2)
    assert res["status"] == "error" and num(res, "conn_fail") == 4, res["_ctx"]
    assert "connection failed" in res["_ctx"], res["_ctx"]
