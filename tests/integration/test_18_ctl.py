"""18 hamqtt-ctl, the admin CLI: it finds the node from the node's own config
file (-c FILE, then HAMQTT_* variables) and asks its HTTP API. `status` prints
a one-line summary or, with --json, the node's JSON; exit 1 with a clear
message when the node is down or the config file is bad; `help`/`--help`."""

import json
import os
import subprocess

from conftest import NODE_NAME, broker_env, build_dir, free_port
from mqttraw import T


def ctl(*args, env=None, cwd=None):
    """Run hamqtt-ctl with args; CompletedProcess with text stdout/stderr. The
    harness's own HAMQTT_* variables are dropped (they are config overrides)."""
    path = os.path.join(build_dir(), "hamqtt-ctl")
    assert os.access(path, os.X_OK), "hamqtt-ctl not built in %s" % build_dir()
    return subprocess.run([path] + list(args), capture_output=True, text=True,
                          env=broker_env(env), cwd=cwd, timeout=T(20))


def started(broker):
    b = broker()
    b.wait_listening(b.http_port)  # HTTP comes up after the MQTT workers
    return b


def test_status_running(broker, raw):
    b = started(broker)
    raw(b, version=5).connect("ctl-status")
    r = ctl("-c", b.conf_path, "status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Node %s is running (uptime " % NODE_NAME), r.stdout
    assert "connection" in r.stdout and "version " in r.stdout
    assert r.stderr == ""


def test_status_json(broker):
    b = started(broker)
    for args in (("--json", "status"), ("status", "--json")):
        r = ctl("-c", b.conf_path, *args)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["node"] == NODE_NAME
        assert doc["status"] == "running"
        assert isinstance(doc["uptime"], int) and doc["connections"] >= 0


def test_status_node_stopped(broker):
    b = started(broker)
    assert b.stop() == 0
    for args in (("status",), ("--json", "status")):
        r = ctl("-c", b.conf_path, *args)
        assert r.returncode == 1
        assert r.stdout == ""
        assert ("cannot reach hamqtt node at http://127.0.0.1:%d: " % b.http_port) in r.stderr


def test_env_overrides_config_file(broker, tmp_path):
    """HAMQTT_* variables apply after the file, as they do for hamqttd."""
    b = started(broker)
    conf = tmp_path / "other.conf"
    conf.write_text("dashboard.listeners.http.bind = 127.0.0.1:%d\n" % free_port())
    r = ctl("-c", str(conf), "status",
            env={"HAMQTT_DASHBOARD__LISTENERS__HTTP__BIND": "127.0.0.1:%d" % b.http_port})
    assert r.returncode == 0, r.stderr
    assert "is running" in r.stdout


def test_bad_config(tmp_path):
    missing = str(tmp_path / "nope.conf")
    r = ctl("-c", missing, "status")
    assert r.returncode == 1
    assert missing in r.stderr and "cannot open" in r.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("# ok\nno.such.key = 1\n")
    r = ctl("-c", str(bad), "status")
    assert r.returncode == 1
    assert "%s:2: no.such.key" % bad in r.stderr


def test_help_and_usage(tmp_path):
    for args in (("--help",), ("-h",), ("help",)):
        r = ctl(*args, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert "usage: hamqtt-ctl" in r.stdout and "status" in r.stdout
    r = ctl("frobnicate", cwd=str(tmp_path))
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = ctl(cwd=str(tmp_path))
    assert r.returncode == 2 and "usage: hamqtt-ctl" in r.stderr
    r = ctl("status", "extra", cwd=str(tmp_path))
    assert r.returncode == 2
