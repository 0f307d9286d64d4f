"""57 hamqtt-ctl over the REST API (issue 11 item 1): clients list/show/kick,
subscriptions list, retained list/show/delete, publish, log level, trace
start/list/log/stop, nodes, alarms. Each command against a real hamqttd with
real clients: the readable table (a header and one aligned line per item),
--json (the API's JSON), exit codes (0 ok, 1 the node refused: HTTP status
and the API's message on stderr, 2 usage), ids and topics URL-encoded. A
2-node cluster: a client connected to node 2 is listed, shown and kicked
through node 1."""

import json
import os
import subprocess

import mqttraw as m
from conftest import broker_env, build_dir, wait_until
from mqttraw import T


def ctl(node, *args):
    path = os.path.join(build_dir(), "hamqtt-ctl")
    r = subprocess.run([path, "-c", node.conf_path] + list(args), capture_output=True,
                       text=True, env=broker_env(), stdin=subprocess.DEVNULL, timeout=T(30))
    return r.returncode, r.stdout, r.stderr


def ok(node, *args):
    rc, out, err = ctl(node, *args)
    assert rc == 0, (args, rc, out, err)
    return out


def js(node, *args):
    return json.loads(ok(node, "--json", *args))


def table(out):
    """The lines of a table: header first; checks the columns are aligned
    (every column starts where the header's does) and no trailing blanks."""
    lines = [ln for ln in out.splitlines() if ln]
    for ln in lines:
        assert ln == ln.rstrip(), repr(ln)
    return lines


def started(broker):
    b = broker()
    b.wait_listening(b.http_port)
    return b


def test_clients_subscriptions_kick(broker, raw):
    b = started(broker)
    # an id that needs URL-encoding: ' ', '%', '#', '?', '&', '=', '+' (not '/':
    # the route's {clientid} is one path segment and the node decodes %2F first)
    odd = "ctl a %41#x?&=+"
    c1 = raw(b, version=5)
    c1.connect(odd)
    c1.subscribe(("ctl/t/+", 1))
    c2 = raw(b, version=4)
    c2.connect("ctl-plain", username="ctl-user")

    out = ok(b, "clients", "list")
    lines = table(out)
    head = lines[0].split()
    assert head[:4] == ["CLIENTID", "USERNAME", "NODE", "STATE"], lines[0]
    rows = [ln for ln in lines[1:] if ln.startswith(("ctl", "ctl-"))]
    assert len(rows) == 2, out
    # aligned: the NODE column starts at one offset on every row
    col = lines[0].index("NODE")
    for ln in rows:
        assert ln[col:].startswith("hamqtt@"), (ln, col)
    assert "2 clients in all" in out

    doc = js(b, "clients", "list", "--username", "ctl-user")
    assert [c["clientid"] for c in doc["data"]] == ["ctl-plain"]
    assert doc["meta"]["count"] == 1
    doc = js(b, "clients", "list", "--like-clientid", "%41#x?&")
    assert [c["clientid"] for c in doc["data"]] == [odd]
    doc = js(b, "clients", "list", "--clientid", odd)
    assert [c["clientid"] for c in doc["data"]] == [odd]
    # paging: limit 1 -> two pages; --all merges them
    doc = js(b, "clients", "list", "--limit", "1")
    assert len(doc["data"]) == 1 and doc["meta"]["hasnext"] is True
    out = ok(b, "clients", "list", "--limit", "1")
    assert "more with --page 2 or --all" in out
    doc = js(b, "clients", "list", "--limit", "1", "--page", "2")
    assert len(doc["data"]) == 1 and doc["meta"]["page"] == 2
    doc = js(b, "clients", "list", "--limit", "1", "--all")
    assert sorted(c["clientid"] for c in doc["data"]) == sorted([odd, "ctl-plain"])
    assert doc["meta"]["count"] == 2 and doc["meta"]["hasnext"] is False

    out = ok(b, "clients", "show", odd)
    assert "clientid" in out and odd in out and "ctl/t/+" in out and "1 subscription" in out
    doc = js(b, "clients", "show", odd)
    assert doc["clientid"] == odd and doc["subscriptions_cnt"] == 1

    out = ok(b, "subscriptions", "list", "--clientid", odd)
    lines = table(out)
    assert lines[0].split() == ["CLIENTID", "TOPIC", "QOS", "NODE"]
    assert any("ctl/t/+" in ln for ln in lines[1:]), out
    doc = js(b, "subscriptions", "list", "--topic", "ctl/t/+")
    assert [(s["clientid"], s["qos"]) for s in doc["data"]] == [(odd, 1)]

    # kick: the client is disconnected (v5: DISCONNECT 0x98)
    out = ok(b, "clients", "kick", odd)
    assert out.strip() == "client %s kicked" % odd
    c1.expect_disconnect(0x98, timeout=T(5))
    assert wait_until(lambda: js(b, "clients", "list", "--clientid", odd)["meta"]["count"] == 0,
                      timeout=T(5))

    # a bad id: exit 1, the HTTP status and the API's message on stderr
    rc, out, err = ctl(b, "clients", "show", "no-such-client")
    assert rc == 1 and out == ""
    assert "HTTP 404" in err and "Client ID not found" in err, err
    rc, out, err = ctl(b, "clients", "kick", "no-such-client")
    assert rc == 1 and "HTTP 404" in err and "Client ID not found" in err, err
    rc, out, err = ctl(b, "--json", "clients", "kick", "no-such-client")
    assert rc == 1 and json.loads(out)["message"] == "Client ID not found"


def test_retained_publish(broker):
    b = started(broker)
    topic = "ctl/ret/a b"
    out = ok(b, "publish", topic, "hello", "--retain", "--qos", "1")
    assert out.startswith("published to %s" % topic), out
    doc = js(b, "publish", "ctl/none", "x")
    assert doc["message"] == "no_matching_subscribers"  # 202 is success

    assert wait_until(lambda: js(b, "retained", "list")["meta"]["count"] == 1, timeout=T(5))
    out = ok(b, "retained", "list")
    lines = table(out)
    assert lines[0].split() == ["TOPIC", "QOS", "PUBLISHED_AT"]
    assert lines[1].startswith(topic + "  1") and lines[1].split()[-1].startswith("20"), lines
    out = ok(b, "retained", "show", topic)
    assert "payload       hello" in out and "qos           1" in out, out
    doc = js(b, "retained", "show", topic)
    assert doc["topic"] == topic and doc["payload"] == "aGVsbG8="
    out = ok(b, "retained", "delete", topic)
    assert "deleted" in out
    rc, out, err = ctl(b, "retained", "show", topic)
    assert rc == 1 and "HTTP 404" in err and "Viewed message not found" in err, err
    rc, out, err = ctl(b, "retained", "delete", "bad/+/topic")
    assert rc == 1 and "HTTP 400" in err, err
    rc, out, err = ctl(b, "publish", "a/#", "x")
    assert rc == 1 and "HTTP 400" in err and "topic" in err, err
    rc, out, err = ctl(b, "publish", "t", "x", "--qos", "3")
    assert rc == 2 and "--qos" in err


def test_log_level_trace_nodes_alarms(broker, raw):
    b = started(broker)
    assert ok(b, "log", "level").strip().startswith("log level: ")
    assert ok(b, "log", "level", "debug").strip() == "log level: debug"
    assert js(b, "log", "level") == {"level": "debug"}
    rc, out, err = ctl(b, "log", "level", "loud")
    assert rc == 1 and "HTTP 400" in err and "level:" in err, err
    ok(b, "log", "level", "info")

    out = ok(b, "trace", "start", "client", "ctl-tr", "--name", "t1", "--duration", "60")
    assert out.startswith("trace t1 started"), out
    c = raw(b, version=5)
    c.connect("ctl-tr")
    c.publish("ctl/tr", b"traced-payload")
    out = ok(b, "trace", "start", "topic", "ctl/#")
    assert out.startswith("trace topic-ctl__-"), out
    lines = table(ok(b, "trace", "list"))
    assert lines[0].split()[:4] == ["NAME", "TYPE", "FILTER", "STATUS"]
    assert any(ln.split()[:4] == ["t1", "clientid", "ctl-tr", "running"] for ln in lines), lines
    docs = js(b, "trace", "list")
    assert {d["name"] for d in docs} >= {"t1"}
    assert wait_until(lambda: "ctl-tr" in ok(b, "trace", "log", "t1"), timeout=T(5))
    assert "ctl-tr" in js(b, "trace", "log", "t1")["items"]
    assert ok(b, "trace", "stop", "t1").strip() == "trace t1 stopped"
    assert [d["status"] for d in js(b, "trace", "list") if d["name"] == "t1"] == ["stopped"]
    rc, out, err = ctl(b, "trace", "stop", "nope")
    assert rc == 1 and "HTTP 404" in err and "no such trace" in err, err
    rc, out, err = ctl(b, "trace", "log", "nope")
    assert rc == 1 and "HTTP 404" in err, err
    rc, out, err = ctl(b, "trace", "start", "client", "x", "--name", "bad name")
    assert rc == 1 and "HTTP 400" in err, err
    rc, out, err = ctl(b, "trace", "start", "session", "x")
    assert rc == 2

    lines = table(ok(b, "nodes"))
    assert lines[0].split()[:3] == ["NODE", "STATUS", "VERSION"]
    assert lines[1].split()[1] == "running"
    assert js(b, "nodes")[0]["node_status"] == "running"

    out = ok(b, "alarms")
    assert out.strip().endswith("active alarms") or out.strip().endswith("active alarm"), out
    doc = js(b, "alarms", "--all")
    assert set(doc) == {"data", "meta"}


def test_usage_errors(broker):
    b = started(broker)
    for args in (("clients", "show"), ("clients", "list", "--bogus"),
                 ("clients", "list", "--limit"), ("clients", "list", "--limit", "0"),
                 ("clients", "list", "--all", "--page", "2"), ("clients", "kick", "a", "b"),
                 ("publish", "t"), ("log", "level", "a", "b"), ("trace", "stop"),
                 ("retained", "frob")):
        rc, out, err = ctl(b, *args)
        assert rc == 2, (args, rc, out, err)
        assert "hamqtt-ctl" in err, (args, err)
    # "--" ends the options: a message that starts with '-'
    assert ok(b, "publish", "ctl/dash", "--", "-5").startswith("published to ctl/dash")
    out = ok(b, "help")
    for cmd in ("clients list", "clients kick ID", "subscriptions list", "retained delete TOPIC",
                "log level [LEVEL]", "trace start", "nodes", "alarms [--all]", "publish TOPIC"):
        assert cmd in out, cmd


def test_cluster_client_on_other_node(cluster, raw):
    cl = cluster(2)
    cl.join_all()
    n1, n2 = cl.nodes
    c = raw(n2, version=5, host=n2.host)
    c.connect("ctl-remote")
    assert wait_until(lambda: "ctl-remote" in [
        x["clientid"] for x in js(n1, "clients", "list")["data"]], timeout=T(10))
    doc = js(n1, "clients", "list", "--clientid", "ctl-remote")
    assert [x["node"] for x in doc["data"]] == [n2.name]
    out = ok(n1, "clients", "list")
    assert any(ln.startswith("ctl-remote") and n2.name in ln for ln in out.splitlines()), out
    assert js(n1, "clients", "show", "ctl-remote")["node"] == n2.name
    lines = table(ok(n1, "nodes"))
    assert len(lines) == 3 and all(ln.split()[1] == "running" for ln in lines[1:]), lines
    assert ok(n1, "clients", "kick", "ctl-remote").strip() == "client ctl-remote kicked"
    c.expect_disconnect(0x98, timeout=T(5))
    rc, out, err = ctl(n1, "clients", "show", "ctl-remote")
    assert rc == 1 and "HTTP 404" in err, err
