"""18 hamqtt-ctl, the admin CLI: it finds the node from the node's own config
file (-c FILE, then HAMQTT_* variables) and asks its HTTP API. `status` prints
a one-line summary or, with --json, the node's JSON; exit 1 with a clear
message when the node is down or the config file is bad; `help`/`--help`.
`cluster status|join|leave|force-leave` against a single node: the member list,
the node's reason on stderr with exit 1 when it refuses, exit 2 on usage errors."""

import json
import os
import re
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


# -- cluster commands (single node: the cluster is this node only) --

GHOST = "ghost@127.0.0.2"  # no hamqtt node there: joining it fails, it is no member


def cluster_node(broker):
    """A started broker with its own cluster port and cluster name."""
    port = free_port()
    b = broker({"cluster.port": port, "cluster.name": "ctl-test-cluster"})
    b.wait_listening(b.http_port)
    b.cluster_port = port
    return b


def test_cluster_status(broker):
    b = cluster_node(broker)
    r = ctl("-c", b.conf_path, "cluster", "status")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == "Cluster ctl-test-cluster: 1 node, 1 running", r.stdout
    assert re.fullmatch(r"  %s {3}running {3}127\.0\.0\.1:%d {3}\(this node\)"
                        % (re.escape(NODE_NAME), b.cluster_port), lines[1]), lines[1]
    assert len(lines) == 2, r.stdout


def test_cluster_status_json(broker):
    b = cluster_node(broker)
    for args in (("--json", "cluster", "status"), ("cluster", "status", "--json")):
        r = ctl("-c", b.conf_path, *args)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["name"] == "ctl-test-cluster" and doc["self"] == NODE_NAME
        assert [(n["node"], n["status"], n["self"]) for n in doc["nodes"]] == \
            [(NODE_NAME, "running", True)]


def test_cluster_join_unreachable(broker):
    """A join the node cannot do: exit 1, the node's one-line reason on stderr,
    nothing on stdout; with --json the node's error body on stdout."""
    b = cluster_node(broker)
    r = ctl("-c", b.conf_path, "cluster", "join", GHOST)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("hamqtt-ctl: ") and r.stderr.count("\n") == 1, r.stderr
    assert "unexpected" not in r.stderr and "cannot reach hamqtt node" not in r.stderr
    r2 = ctl("-c", b.conf_path, "--json", "cluster", "join", GHOST)
    assert r2.returncode == 1
    doc = json.loads(r2.stdout)
    assert doc["code"] == "UNREACHABLE"
    assert r.stderr == "hamqtt-ctl: %s\n" % doc["message"]
    # still a cluster of one
    r = ctl("-c", b.conf_path, "cluster", "status")
    assert r.returncode == 0 and "1 node, 1 running" in r.stdout


def test_cluster_leave_single_node(broker):
    b = cluster_node(broker)
    r = ctl("-c", b.conf_path, "cluster", "leave")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "left the cluster; this node is now a cluster of one\n"
    r = ctl("-c", b.conf_path, "--json", "cluster", "leave")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"left": True}


def test_cluster_force_leave_not_member(broker):
    """force-leave of a node that is not a member: exit 1 with the node's reason
    (the name goes percent-encoded in the path and is decoded by the node)."""
    b = cluster_node(broker)
    r = ctl("-c", b.conf_path, "cluster", "force-leave", GHOST)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("hamqtt-ctl: ") and r.stderr.count("\n") == 1, r.stderr
    assert "no such path" not in r.stderr and "unexpected" not in r.stderr, r.stderr
    r = ctl("-c", b.conf_path, "--json", "cluster", "force-leave", GHOST)
    assert r.returncode == 1
    assert json.loads(r.stdout)["code"] == "NOT_FOUND"


def test_cluster_node_stopped(broker):
    b = cluster_node(broker)
    assert b.stop() == 0
    for args in (("cluster", "status"), ("cluster", "join", GHOST), ("cluster", "leave")):
        r = ctl("-c", b.conf_path, *args)
        assert r.returncode == 1, args
        assert r.stdout == ""
        assert ("cannot reach hamqtt node at http://127.0.0.1:%d: " % b.http_port) in r.stderr


def test_cluster_help_and_usage(tmp_path):
    """Usage errors are found before the config is read: exit 2 and the
    command's usage line, wherever the command runs."""
    r = ctl("help", cwd=str(tmp_path))
    assert r.returncode == 0
    for words in ("cluster join NODE", "cluster leave", "cluster force-leave NODE",
                  "cluster status"):
        assert "  " + words + " " in r.stdout, words
    for args, usage in ((("cluster", "join"), "cluster join NODE"),
                        (("cluster", "join", "a@b", "c@d"), "cluster join NODE"),
                        (("cluster", "force-leave"), "cluster force-leave NODE"),
                        (("cluster", "force-leave", "a@b", "x"), "cluster force-leave NODE"),
                        (("cluster", "leave", "x"), "cluster leave"),
                        (("cluster", "status", "x"), "cluster status"),
                        (("status", "x"), "status")):
        r = ctl("-c", str(tmp_path / "nope.conf"), *args, cwd=str(tmp_path))
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == ""
        assert "usage: hamqtt-ctl [-c FILE] [--json] %s\n" % usage in r.stderr, r.stderr
    r = ctl("cluster", "join", cwd=str(tmp_path))
    assert "hamqtt-ctl: cluster join: missing NODE" in r.stderr
    r = ctl("cluster", "leave", "x", cwd=str(tmp_path))
    assert "hamqtt-ctl: cluster leave: unexpected argument 'x'" in r.stderr
    for args in (("cluster",), ("cluster", "frob")):
        r = ctl(*args, cwd=str(tmp_path))
        assert r.returncode == 2 and "unknown command" in r.stderr, args
