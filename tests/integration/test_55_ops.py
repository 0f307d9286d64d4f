"""
test_55_ops.py - the operator's view (issue 11 items 1 and 5): alarms raised
and cleared for real (a Redis store killed and restarted, a cluster node
stopped, memory above a tiny watermark), the log level changed at run time,
traces of a client id (mosquitto_pub) and of a topic filter written to files
and read back over the API, JSON log lines that all parse, one flood-guarded
line per refused connection and per ACL denial, log.file reopened on SIGHUP.
"""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import NODE_NAME, api_headers, require, wait_until
from mqttraw import PUBACK, PUBLISH, T
from redisfx import REDIS, redis  # noqa: F401 (the fixture)
import mqttraw as m


def api(b, method, path, body=None, raw_body=False):
    """(status, parsed JSON, text or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (b.http_port, path), data=data,
                                 method=method, headers={"Content-Type": "application/json",
                                                         **api_headers(b.data_dir)})
    try:
        with urllib.request.urlopen(req, timeout=T(5)) as r:
            text = r.read().decode()
            code = r.status
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        code = e.code
    if raw_body:
        return code, text
    return code, json.loads(text) if text else None


def alarms(b, activated=None):
    q = "" if activated is None else "?activated=%s" % ("true" if activated else "false")
    code, doc = api(b, "GET", "/api/v5/alarms" + q)
    assert code == 200, doc
    assert set(doc["meta"]) >= {"page", "limit", "count", "hasnext"}
    return doc["data"]


def active(b):
    return {a["name"]: a for a in alarms(b, True)}


def alarm_metric(b, name):
    code, text = api(b, "GET", "/metrics", raw_body=True)
    assert code == 200
    key = 'hamqtt_alarm_active{node="%s",name="%s"} ' % (NODE_NAME, name)
    for ln in text.splitlines():
        if ln.startswith(key):
            return int(ln.rsplit(" ", 1)[1])
    return None


def test_memory_high_alarm(broker):
    """A watermark below the node's RSS: memory_high within a few seconds, in
    the API (EMQX's item shape), in /metrics and in one warning line."""
    b = broker({"overload.memory_high_watermark": "1MB"})
    wait_until(lambda: "memory_high" in active(b), 10, 0.2, "memory_high raised")
    a = active(b)["memory_high"]
    assert a["node"] == NODE_NAME and a["activated"] is True
    assert a["deactivate_at"] == "infinity" and a["duration"] >= 0
    assert a["activate_at"].endswith("Z") and "message" in a
    assert a["details"]["rss_bytes"] > a["details"]["high_watermark"] == 1024 * 1024
    assert alarm_metric(b, "memory_high") == 1
    assert alarm_metric(b, "store_down") == 0
    assert len(b.log_lines("alarm raised name=memory_high")) == 1
    assert alarms(b, False) == []


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_store_down_alarm_raised_and_cleared(redis, broker, raw):
    """Redis killed: the first write that needs it fails, store_down is
    raised; Redis back: cleared, kept in the history until DELETE."""
    b = broker({"session.store": "redis", "session.redis.server": "127.0.0.1:%d" % redis.port,
                "session.redis.timeout": "1s"})
    assert "store_down" not in active(b)
    sub = raw(b)
    sub.connect("al-sub", clean=False)
    sub.subscribe("al/t", qos=1)
    pub = raw(b)
    pub.connect("al-pub", clean=False)
    redis.kill()
    pub.send(m.publish("al/t", b"x", qos=1, mid=5))
    wait_until(lambda: "store_down" in active(b), 15, 0.2, "store_down raised")
    a = active(b)["store_down"]
    assert a["details"]["backend"] == "redis"
    assert alarm_metric(b, "store_down") == 1
    b.wait_log("alarm raised name=store_down")
    redis.start()
    pub.expect(PUBACK, timeout=20, mid=5)
    wait_until(lambda: "store_down" not in active(b), 15, 0.2, "store_down cleared")
    hist = [x for x in alarms(b, False) if x["name"] == "store_down"]
    assert len(hist) == 1 and hist[0]["activated"] is False
    assert hist[0]["deactivate_at"] != "infinity" and hist[0]["duration"] > 0
    assert alarm_metric(b, "store_down") == 0
    b.wait_log("alarm cleared name=store_down")
    code, _ = api(b, "DELETE", "/api/v5/alarms")
    assert code == 204
    assert alarms(b, False) == []


def test_node_down_alarm(cluster):
    """A member stopped: node_down:<node> on the others; back: cleared."""
    cl = cluster(2)
    cl.join_all()
    n1, n2 = cl.nodes
    name = "node_down:%s" % n2.name

    def act(n):
        code, body = n.http("GET", "/api/v5/alarms?activated=true")
        assert code == 200, body
        return {a["name"]: a for a in json.loads(body)["data"]}

    assert name not in act(n1)
    n2.kill()
    wait_until(lambda: name in act(n1), 20, 0.2, "node_down raised on node 1")
    assert act(n1)[name]["details"]["node"] == n2.name
    code, text = n1.http("GET", "/metrics")
    assert 'hamqtt_alarm_active{node="%s",name="%s"} 1' % (n1.name, name) in text
    n1.wait_log("alarm raised name=" + name)
    n2.start()
    wait_until(lambda: name not in act(n1), 30, 0.2, "node_down cleared on node 1")
    n1.wait_log("alarm cleared name=" + name)


def debug_lines(b):
    return len([ln for ln in b.log_text().splitlines() if "[debug]" in ln])


def test_log_level_at_run_time(broker):
    """PUT /api/v5/log_level: debug lines appear, then stop again."""
    b = broker({"log.level": "info"})
    assert api(b, "GET", "/api/v5/log_level") == (200, {"level": "info"})
    subprocess.run(["mosquitto_pub", "-p", str(b.port), "-i", "ll-1", "-t", "ll/a", "-m", "x"],
                   check=True, timeout=T(10))
    assert debug_lines(b) == 0
    assert api(b, "PUT", "/api/v5/log_level", {"level": "debug"}) == (200, {"level": "debug"})
    assert api(b, "GET", "/api/v5/log_level") == (200, {"level": "debug"})
    subprocess.run(["mosquitto_pub", "-p", str(b.port), "-i", "ll-2", "-t", "ll/a", "-m", "x"],
                   check=True, timeout=T(10))
    wait_until(lambda: debug_lines(b) > 0, 5, 0.1, "debug lines")
    b.wait_log("set the log level from info to debug")
    assert api(b, "PUT", "/api/v5/log_level", {"level": "info"})[0] == 200
    n = debug_lines(b)
    subprocess.run(["mosquitto_pub", "-p", str(b.port), "-i", "ll-3", "-t", "ll/a", "-m", "x"],
                   check=True, timeout=T(10))
    time.sleep(T(0.5))
    assert debug_lines(b) == n
    code, doc = api(b, "PUT", "/api/v5/log_level", {"level": "loud"})
    assert code == 400, doc
    assert api(b, "GET", "/api/v5/log_level") == (200, {"level": "info"})


def trace_text(b, name):
    code, text = api(b, "GET", "/api/v5/trace/%s/download" % name, raw_body=True)
    assert code == 200, text
    return text


def test_trace_client_id(broker):
    """A trace of a client id: its CONNECT, CONNACK, PUBLISH, PUBACK and
    DISCONNECT from a real mosquitto_pub, nothing of another client; a
    refused connection of the id shows the refusal and its reason."""
    b = broker()
    code, t = api(b, "POST", "/api/v5/trace", {"name": "c1", "type": "clientid",
                                                "clientid": "tr-pub"})
    assert code == 200, t
    assert t["status"] == "running" and t["clientid"] == "tr-pub" and t["type"] == "clientid"
    for cid in ("tr-pub", "other-pub"):
        subprocess.run(["mosquitto_pub", "-p", str(b.port), "-i", cid, "-t", "tr/topic",
                        "-m", "hello", "-q", "1"], check=True, timeout=T(10))
    text = trace_text(b, "c1")
    lines = text.splitlines()
    assert any("IN CONNECT client_id=tr-pub" in ln for ln in lines), text
    assert any("OUT CONNACK client_id=tr-pub" in ln and "reason=0x00" in ln for ln in lines), text
    pub = [ln for ln in lines if "IN PUBLISH" in ln]
    assert len(pub) == 1 and "topic=tr/topic qos=1" in pub[0] and "payload=5" in pub[0], text
    assert any("OUT PUBACK" in ln for ln in lines), text
    assert any("IN DISCONNECT" in ln for ln in lines), text
    assert "other-pub" not in text
    # a refusal (banned client id): the CONNACK code and the reason
    code, _ = api(b, "POST", "/api/v5/banned", {"as": "clientid", "who": "tr-pub"})
    assert code == 200
    r = subprocess.run(["mosquitto_pub", "-p", str(b.port), "-i", "tr-pub", "-t", "tr/topic",
                        "-m", "x"], timeout=T(10), capture_output=True)
    assert r.returncode != 0
    text = trace_text(b, "c1")
    assert "(connection refused)" in text and "connection refused: banned" in text, text
    code, lst = api(b, "GET", "/api/v5/trace")
    assert code == 200 and lst[0]["log_size"][NODE_NAME] == len(text.encode())


def test_trace_topic_stop_delete(broker, raw):
    """A topic trace: matching publishes only, with the matched count; stop
    ends it (no more lines), /log pages the text, delete removes the file."""
    b = broker()
    code, t = api(b, "POST", "/api/v5/trace", {"name": "tp", "type": "topic", "topic": "tt/#"})
    assert code == 200, t
    s = raw(b)
    s.connect("tt-sub")
    s.subscribe("tt/#", qos=0)
    p = raw(b)
    p.connect("tt-pub")
    p.publish("tt/a", b"1234", qos=0)
    p.publish("other/x", b"z", qos=0)
    p.publish("tt/b/c", b"12", qos=1)
    assert s.expect(PUBLISH).topic == "tt/a"
    wait_until(lambda: trace_text(b, "tp").count("\n") >= 2, 5, 0.1, "two trace lines")
    text = trace_text(b, "tp")
    lines = text.splitlines()
    assert len(lines) == 2, text
    assert "topic=tt/a qos=0" in lines[0] and "payload=4" in lines[0]
    assert "from client_id=tt-pub" in lines[0] and "matched_subscriptions=1" in lines[0]
    assert "topic=tt/b/c qos=1" in lines[1]
    code, doc = api(b, "GET", "/api/v5/trace/tp/log?position=0&bytes=10")
    assert code == 200 and doc["items"] == text[:10] and doc["meta"]["position"] == 10
    code, doc = api(b, "PUT", "/api/v5/trace/tp/stop")
    assert code == 200 and doc["status"] == "stopped"
    p.publish("tt/late", b"x", qos=1)  # acknowledged: a line would be there now
    assert trace_text(b, "tp") == text
    code, _ = api(b, "DELETE", "/api/v5/trace/tp")
    assert code == 204
    assert api(b, "GET", "/api/v5/trace/tp/download", raw_body=True)[0] == 404
    assert api(b, "GET", "/api/v5/trace")[1] == []
    assert not os.path.exists(os.path.join(b.data_dir, "trace", "tp.log"))


def test_trace_times_and_bounds(broker):
    """end_at enforced by the tick, start_at in the future waits, bad input
    400, a taken name 409, at most 32 traces."""
    b = broker()
    now = int(time.time())
    code, t = api(b, "POST", "/api/v5/trace", {"name": "short", "type": "ip_address",
                                                "ip_address": "127.0.0.1", "end_at": now + 2})
    assert code == 200 and t["status"] == "running", t
    code, t = api(b, "POST", "/api/v5/trace", {
        "name": "later", "type": "topic", "topic": "x/#",
        "start_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))})
    assert code == 200 and t["status"] == "waiting", t

    def status(name):
        return {x["name"]: x["status"] for x in api(b, "GET", "/api/v5/trace")[1]}[name]
    wait_until(lambda: status("short") == "stopped", 10, 0.2, "short trace stopped")
    b.wait_log("trace short ended")
    assert status("later") == "waiting"
    for bad in ({"name": "a/b", "type": "topic", "topic": "x"},
                {"name": "ok", "type": "user", "user": "x"},
                {"name": "ok", "type": "topic", "topic": "a/#/b"},
                {"name": "ok", "type": "topic", "topic": "x", "end_at": "yesterday"}):
        code, doc = api(b, "POST", "/api/v5/trace", bad)
        assert code == 400, (bad, doc)
    assert api(b, "POST", "/api/v5/trace", {"name": "later", "type": "topic",
                                            "topic": "y"})[0] == 409
    for i in range(30):
        assert api(b, "POST", "/api/v5/trace", {"name": "n%d" % i, "type": "topic",
                                                "topic": "n/%d" % i})[0] == 200
    code, doc = api(b, "POST", "/api/v5/trace", {"name": "one-too-many", "type": "topic",
                                                 "topic": "z"})
    assert code == 409 and doc["code"] == "TOO_MANY_TRACES"


ACL = "topic readwrite ok/#\n"


def test_json_logs_refusals_and_denials(broker, raw, tmp_path):
    """log.format = json: every line of a run through connects, refusals
    and ACL denials is one JSON object; each refusal and denial has its line
    with the client id, address and reason."""
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    b = broker({"log.format": "json", "log.level": "debug", "auth.acl_file": str(acl),
                "mqtt.max_clientid_len": 20})
    c = raw(b)
    c.connect("js-ok\n\"quoted\"")
    c.subscribe("ok/#", qos=0)
    ack = c.subscribe("no/#", qos=0)
    c.publish("no/x", b"denied", qos=1)  # dropped, acknowledged (deny_action ignore)
    c.publish("ok/x", b"fine", qos=0)
    c.expect(PUBLISH)
    bad = raw(b)
    bad.connect("x" * 30, rc=2)  # 3.1.1: identifier rejected
    b.wait_log("subscribe denied by the ACL")
    b.wait_log("publish denied by the ACL")
    b.wait_log("connection refused")
    objs = []
    for ln in b.log_text().splitlines():
        obj = json.loads(ln)  # every line, or the test fails here
        assert set(obj) >= {"time", "level", "msg"}, obj
        objs.append(obj)
    msgs = [o["msg"] for o in objs]
    assert any('js-ok\n"quoted"' in x for x in msgs), "control bytes and quotes round-trip"
    ref = [x for x in msgs if x.startswith("connection refused")]
    assert ref and "x" * 30 in ref[0] and "addr=127.0.0.1:" in ref[0]
    assert "max_clientid_len" in ref[0]
    den = [x for x in msgs if "denied by the ACL" in x]
    assert any("filter=no/#" in x for x in den) and any("topic=no/x" in x for x in den)
    assert all("addr=127.0.0.1:" in x for x in den)
    del ack


def test_refusal_lines_flood_guarded(broker, raw):
    """A flood of refused CONNECTs: at most 20 lines per 10 s, and the next
    window's first line says how many were dropped."""
    b = broker({"mqtt.max_clientid_len": 5})
    for i in range(40):
        c = raw(b)
        c.connect("too-long-%d" % i, rc=2)
        c.close()
    lines = b.log_lines("connection refused client_id=too-long")
    assert 1 <= len(lines) <= 20, len(lines)


def test_log_file_reopened_on_sighup(broker, tmp_path):
    """log.file renamed away (logrotate), SIGHUP: lines go to a new file."""
    path = str(tmp_path / "node.log")
    b = broker({"log.file": path, "log.level": "info"})
    wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 5, 0.1, "log file")
    os.rename(path, path + ".1")
    os.kill(b.pid, signal.SIGHUP)
    wait_until(lambda: os.path.exists(path) and "received SIGHUP" in open(path).read(), 5, 0.1,
               "the SIGHUP lines in the new file")
    assert "received SIGHUP" not in open(path + ".1").read()
    subprocess.run(["mosquitto_pub", "-p", str(b.port), "-i", "after-hup", "-t", "a", "-m", "x"],
                   check=True, timeout=T(10))
    wait_until(lambda: "after-hup" in open(path).read(), 5, 0.1, "new lines in the new file")
