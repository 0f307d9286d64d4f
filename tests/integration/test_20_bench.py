"""20 bench: hamqtt-bench's counts checked against a known workload.

Runs $HAMQTT_BUILD/hamqtt-bench against a real broker with --count (exact
message counts) and reads its `RESULT key=value ...` line: at QoS 1 and 2
every message is delivered once and in order (none lost, duplicated or
reordered), for MQTT 3.1.1 and 5, point to point and fan-in; retained mode
(pub --retain with a %n topic per message, then sub --expect) delivers every
retained message exactly once; conn mode establishes every connection; a
refused connection gives exit status 2. Over TLS (--cafile, issue 10): exact
counts at TLS 1.2 and 1.3 with small and multi-record messages, mutual TLS,
the hs sub-command's exact cycle count (each a real connection: the broker's
connects_total), and the failures (wrong CA, version mismatch, missing client
certificate, wrong password) exit 2 with the reason. No timing is asserted.

The broker's session queue is raised so a max-rate burst is not cut by the
default queue policy (1000 queued messages, then drops)."""

import os
import random
import subprocess
import urllib.request

import pytest

from authfx import ham_passwd
from certs import tls_args
from conftest import build_dir
from mqttraw import T
from promtext import metric
from test_40_tls import certs, start_tls  # noqa: F401 - certs is a fixture

QUEUE = {"mqtt.max_queued_messages": 100000}


@pytest.fixture
def uid(request):
    """A topic prefix unique to this test."""
    return "b%d-%s" % (random.randint(0, 999999), request.node.name.split("[")[0][-12:])


def bench_path():
    return os.path.join(build_dir(), "hamqtt-bench")


def start_bench(port, *args):
    if not os.access(bench_path(), os.X_OK):
        pytest.fail("hamqtt-bench not found at %s" % bench_path())
    cmd = [bench_path(), args[0], "-p", str(port), "--no-progress", "--timeout", str(T(10))]
    cmd += [str(a) for a in args[1:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ))
    proc.cmd = cmd
    return proc


def bench_result(proc, expect_rc=0, timeout=60):
    """Wait for a bench started by start_bench; return its RESULT line as a
    dict of strings (plus "_ctx", everything it printed)."""
    try:
        out, err = proc.communicate(timeout=T(timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("hamqtt-bench timed out: %s\n%s\n%s" % (proc.cmd, out, err))
    out = out.decode("utf-8", "replace")
    err = err.decode("utf-8", "replace")
    ctx = "command: %s\nexit %d\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(proc.cmd), proc.returncode, out, err)
    assert proc.returncode == expect_rc, ctx
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert len(lines) == 1, ctx
    assert out.rstrip().endswith(lines[0]), "RESULT is not the last line\n" + ctx
    res = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
    res["_ctx"] = ctx
    return res


def run_bench(port, *args, expect_rc=0, timeout=60):
    """Run hamqtt-bench to the end; return its RESULT line as a dict."""
    return bench_result(start_bench(port, *args), expect_rc, timeout)


def num(res, key):
    return int(float(res[key]))


def assert_exact(res, expected, any_order=False):
    """Exactly expected deliveries, none lost, duplicated or stray; in
    per-publisher order unless any_order (retained messages have none)."""
    ctx = res["_ctx"]
    assert res["status"] == "ok", ctx
    assert num(res, "expected") == expected, ctx
    assert num(res, "delivered") == expected, ctx
    assert num(res, "lost") == 0, ctx
    assert num(res, "dup") == 0, ctx
    if not any_order:
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


def test_refused_connack_exit_2(broker):
    """The broker refuses every CONNECT (client id too long): refused is
    counted, exit status 2, for v3.1.1 and v5."""
    b = broker({"mqtt.max_clientid_len": 4})
    for version in (4, 5):
        res = run_bench(b.port, "conn", "-c", 3, "-d", 0, "-V", version, expect_rc=2)
        assert res["status"] == "error" and num(res, "refused") == 3, res["_ctx"]
        assert num(res, "conns") == 0, res["_ctx"]
        assert "CONNACK refused" in res["_ctx"], res["_ctx"]


def test_broker_gone_mid_run_exit_2(broker):
    """The broker shuts down during the run: the connections it closed are
    counted as dropped and the exit status is 2."""
    b = broker()
    proc = start_bench(b.port, "pubsub", "-c", 2, "-r", 200, "-d", 20, "-V", 5)
    b.wait_log("client connected", count=4)
    b.stop()
    res = bench_result(proc, expect_rc=2)
    assert res["status"] == "error" and num(res, "dropped") >= 1, res["_ctx"]
    assert "dropped by the broker" in res["_ctx"], res["_ctx"]


@pytest.mark.parametrize("version", [4, 5])
def test_retained_topics_exact(broker, uid, version):
    """pub --retain with %n: 2 publishers x 1500 retained messages, each on its
    own topic (QoS 1: stored when pub exits); then sub --expect: every retained
    message arrives exactly once (any order), at subscription QoS 0 and 1, and
    the broker still holds them all for a second subscriber."""
    b = broker(QUEUE)
    topic = uid + "/%i/r/%n"
    res = run_bench(b.port, "pub", "-c", 2, "-q", 1, "--retain", "--count", 1500,
                    "-t", topic, "-V", version)
    ctx = res["_ctx"]
    assert res["status"] == "ok", ctx
    assert num(res, "sent") == 3000 and num(res, "acked") == 3000, ctx
    assert num(res, "nacked") == 0, ctx
    for sub_qos in (0, 1):
        # publishers known (-t, --pubs, --count): exact per-publisher counts
        res = run_bench(b.port, "sub", "-T", uid + "/#", "-t", topic, "--pubs", 2,
                        "--count", 1500, "--expect", 3000, "-q", sub_qos, "-V", version,
                        "--broker-pid", b.pid)
        assert_exact(res, 3000, any_order=True)
        assert res["expect_reached"] == "1" and num(res, "expect") == 3000, res["_ctx"]
        assert float(res["duration"]) > 0, res["_ctx"]
    # publishers unknown: --expect alone still counts exactly
    res = run_bench(b.port, "sub", "-T", uid + "/1/#", "--expect", 1500, "-V", version)
    assert_exact(res, 1500, any_order=True)
    assert res["expect_reached"] == "1", res["_ctx"]


def test_expect_not_reached_exit_3(broker, uid):
    """sub --expect more than the broker holds: it gives up after --timeout
    without progress, reports the missing ones as lost, exit status 3."""
    b = broker()
    res = run_bench(b.port, "pub", "-c", 1, "-q", 1, "--retain", "--count", 10,
                    "-t", uid + "/%n")
    assert res["status"] == "ok", res["_ctx"]
    cmd_timeout = ["--timeout", "1"]
    res = run_bench(b.port, "sub", "-T", uid + "/#", "--expect", 20, *cmd_timeout,
                    expect_rc=3)
    ctx = res["_ctx"]
    assert res["status"] == "stalled" and res["expect_reached"] == "0", ctx
    assert num(res, "delivered") == 10 and num(res, "lost") == 10, ctx
    assert num(res, "expected") == 20, ctx


# ---- TLS (--cafile ...), credentials (-u/-P), hs mode ----

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_tls_pubsub_exact(broker, certs, uid, version):
    """Over TLS 1.2 and 1.3: 5 QoS 1 pairs x 2000 small messages, then 3 pairs
    x 100 messages of 100 KB (several TLS records per message, socket buffers
    filled: the non-blocking paths): each once and in order."""
    b = start_tls(broker, certs, QUEUE)
    res = run_bench(b.tls_port, "pubsub", "-c", 5, "-q", 1, "--count", 2000,
                    "-t", uid + "/%i", "-T", uid + "/%i", *tls_args(certs, version))
    assert_exact(res, 5 * 2000)
    assert res["tls"] == "1" and num(res, "acked") == 10000, res["_ctx"]
    res = run_bench(b.tls_port, "pubsub", "-c", 3, "-q", 1, "-s", 100000, "--count", 100,
                    "-t", uid + "/big/%i", "-T", uid + "/big/%i", "-V", 5,
                    *tls_args(certs, version))
    assert_exact(res, 3 * 100)


def test_tls_cipher_and_mutual(broker, certs, uid):
    """--ciphers picks the TLS 1.3 suite; with verify = peer the client
    certificate (--cert/--key) is required and its CN can be the user name."""
    b = start_tls(broker, certs, QUEUE, verify="peer", cacertfile=certs("ca.pem"),
                  tls_versions="1.3", ciphers="TLS_AES_256_GCM_SHA384")
    res = run_bench(b.tls_port, "pubsub", "-c", 2, "-q", 1, "--count", 500,
                    "-t", uid + "/%i", "-T", uid + "/%i", "--ciphers", "TLS_AES_256_GCM_SHA384",
                    *tls_args(certs, "1.3", client="client"))
    assert_exact(res, 2 * 500)
    # no client certificate: the broker ends the handshake
    res = run_bench(b.tls_port, "conn", "-c", 2, "-d", 0, *tls_args(certs), expect_rc=2)
    assert res["status"] == "error" and num(res, "conn_fail") == 2, res["_ctx"]
    # a suite the broker does not offer: no handshake
    res = run_bench(b.tls_port, "conn", "-c", 1, "-d", 0, "--ciphers", "TLS_AES_128_GCM_SHA256",
                    *tls_args(certs, "1.3", client="client"), expect_rc=2)
    assert num(res, "conn_fail") == 1, res["_ctx"]


def test_tls_failures_exit_2(broker, certs):
    """A server certificate of another CA, or a TLS version the listener does
    not accept: every connection fails with the reason, exit status 2; a TLS
    option without --cafile is a usage error (exit 1)."""
    b = start_tls(broker, certs, tls_versions="1.3")
    res = run_bench(b.tls_port, "conn", "-c", 2, "-d", 0, "--cafile", certs("otherca.pem"),
                    expect_rc=2)
    assert num(res, "conn_fail") == 2 and "certificate" in res["_ctx"], res["_ctx"]
    res = run_bench(b.tls_port, "hs", "-c", 2, "--count", 10, *tls_args(certs, "1.2"),
                    expect_rc=2)
    assert num(res, "conn_fail") == 2 and num(res, "hs") == 0, res["_ctx"]
    assert "version" in res["_ctx"], res["_ctx"]
    p = subprocess.run([bench_path(), "conn", "--tls-version", "1.3"], capture_output=True,
                       text=True, timeout=T(10))
    assert p.returncode == 1 and "without --cafile" in p.stderr, p.stderr


@pytest.mark.parametrize("tls", [False, True])
def test_hs_cycles_exact(broker, certs, tls):
    """hs: 8 slots, --count 200: exactly 200 cycles (connect, handshake,
    CONNECT/CONNACK, DISCONNECT, close), each a connection the broker
    accepted, none failed, latency measured."""
    b = start_tls(broker, certs) if tls else broker()
    port = b.tls_port if tls else b.port
    res = run_bench(port, "hs", "-c", 8, "--count", 200, "--broker-pid", b.pid,
                    *(tls_args(certs, "1.3") if tls else []))
    ctx = res["_ctx"]
    assert res["status"] == "ok" and res["tls"] == ("1" if tls else "0"), ctx
    assert num(res, "hs") == 200 and float(res["hs_rate"]) > 0, ctx
    assert num(res, "conn_fail") == 0 and num(res, "protocol_err") == 0, ctx
    assert float(res["p50_us"]) > 0, ctx
    with urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % b.http_port, timeout=T(5)) as r:
        body = r.read().decode()
    connects = [ln for ln in body.splitlines() if ln.startswith("hamqtt_connects_total")]
    assert connects and int(float(connects[0].rsplit(" ", 1)[1])) == 200, connects


def test_credentials(broker, tmp_path, uid):
    """-u/-P: a password file and no anonymous clients: the right password
    connects every client and messages flow; a wrong one is refused (exit 2)."""
    pw = str(tmp_path / "passwd")
    r = ham_passwd(pw, "-c", "-b", "FILE", "benchuser", "s3cret")
    assert r.returncode == 0, r.stderr
    b = broker(dict(QUEUE, **{"auth.password_file": pw, "auth.allow_anonymous": False}))
    res = run_bench(b.port, "pubsub", "-c", 3, "-q", 1, "--count", 300, "-t", uid + "/%i",
                    "-T", uid + "/%i", "-u", "benchuser", "-P", "s3cret")
    assert_exact(res, 3 * 300)
    assert metric(b, "hamqtt_authentication_total", result="success") == 6
    res = run_bench(b.port, "conn", "-c", 2, "-d", 0, "-u", "benchuser", "-P", "wrong",
                    expect_rc=2)
    assert num(res, "refused") == 2 and "CONNACK refused" in res["_ctx"], res["_ctx"]
