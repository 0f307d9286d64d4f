"""26 one node per port and per data directory (issue 8): a second hamqttd
given a port or a node.data_dir that a running node already has refuses to
start, with exit status 1 and a message naming the key, the address or
directory, and (for the directory) the pid of the node holding it; the first
node keeps serving every client.

The MQTT listeners bind with SO_REUSEPORT (one socket per worker), which used
to let a second node share the port silently: the kernel split the clients
between two brokers and most round trips were lost. node.data_dir is held
with an flock on <data_dir>/hamqttd.lock, which the kernel releases when the
process dies, so a SIGKILLed node restarts on its directory at once."""

import os
import subprocess

import pytest

import mqttraw as m
from conftest import broker_env, free_port, hamqttd_path
from mqttraw import T


def _other_port(*avoid):
    p = free_port()
    while p in avoid:
        p = free_port()
    return p


def second_node(first, tmp_path, take):
    """A config for a second node sharing only `take` with the first:
    "mqtt", "dashboard", "cluster" or "data_dir". Returns (config lines,
    expected message)."""
    used = (first.port, first.http_port, first.cluster_port)
    mqtt = _other_port(*used)
    http = _other_port(mqtt, *used)
    clu = _other_port(mqtt, http, *used)
    data = str(tmp_path / "second-data")
    if take == "mqtt":
        mqtt = first.port
        expect = "listeners.tcp.default.bind: 127.0.0.1:%d is already in use" % mqtt
    elif take == "dashboard":
        http = first.http_port
        expect = "dashboard.listeners.http.bind: 127.0.0.1:%d is already in use" % http
    elif take == "cluster":
        clu = first.cluster_port
        expect = "cluster.port: cannot listen on 127.0.0.1:%d" % clu
    else:
        data = first.data_dir
        expect = "node.data_dir: %s is already in use by another node (pid %d " % (
            data, first.pid)
    return [
        "node.name = hamqtt@127.0.0.1",
        "node.data_dir = %s" % data,
        "node.workers = 2",
        "listeners.tcp.default.bind = 127.0.0.1:%d" % mqtt,
        "dashboard.listeners.http.bind = 127.0.0.1:%d" % http,
        "cluster.port = %d" % clu,
    ], expect


def round_trips(port, n=10):
    """n round trips, each a fresh subscriber and a fresh publisher connection
    (two brokers on one port would each get some of them). Returns how many
    messages arrived."""
    arrived = 0
    for i in range(n):
        s = m.RawClient(port)
        p = m.RawClient(port)
        try:
            s.connect("rt-sub-%d" % i)
            s.subscribe("rt/%d" % i, qos=1)
            p.connect("rt-pub-%d" % i)
            p.publish("rt/%d" % i, b"x", qos=1)
            if s.try_recv(1.0) is not None:
                arrived += 1
        finally:
            s.close()
            p.close()
    return arrived


@pytest.mark.parametrize("take", ["mqtt", "data_dir", "dashboard", "cluster"])
def test_second_node_refused(broker, tmp_path, take):
    """A second node on the first one's MQTT port, node.data_dir, dashboard
    port or cluster.port exits 1 before it starts serving ("hamqttd started"
    never logged), saying what is in use; the first serves 10 of 10 round
    trips meanwhile and after."""
    first = broker()
    lines, expect = second_node(first, tmp_path, take)
    workdir = tmp_path / "second"
    workdir.mkdir()
    conf = workdir / "hamqtt.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([hamqttd_path(), "-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=broker_env(),
                            cwd=str(workdir))
    try:
        rc = proc.wait(timeout=T(10))
    except subprocess.TimeoutExpired:
        rc = None  # still running: it shares the port (or directory) with the first
    try:
        arrived = round_trips(first.port)
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate(timeout=T(10))[0]
    assert rc is not None, "the second node started (%d of 10 round trips on the first " \
        "arrived); output:\n%s" % (arrived, out)
    assert rc == 1, "exit status %r; output:\n%s" % (rc, out)
    found = [ln for ln in out.splitlines() if expect in ln]
    assert found, "no line with %r; output:\n%s" % (expect, out)
    if take == "cluster":
        assert "already in use" in found[0], found[0]
    assert "hamqttd started" not in out, out
    assert arrived == 10, "%d of 10 round trips arrived" % arrived
    assert first.alive()
    with open(os.path.join(first.data_dir, "hamqttd.lock")) as f:
        assert f.read().strip() == str(first.pid)  # still the first's


def test_killed_node_restarts_on_its_data_dir(broker):
    """The lock of a SIGKILLed node goes with it: restarted on the same
    node.data_dir (the lock file with the dead pid still there) it starts and
    serves, and the file names the new pid."""
    b = broker()
    lock = os.path.join(b.data_dir, "hamqttd.lock")
    old_pid = b.pid
    with open(lock) as f:
        assert f.read().strip() == str(old_pid)
    b.kill()
    assert os.path.exists(lock)
    b.start()
    assert b.pid != old_pid
    with open(lock) as f:
        assert f.read().strip() == str(b.pid)
    assert round_trips(b.port, 3) == 3
