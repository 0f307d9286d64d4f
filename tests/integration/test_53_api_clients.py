"""53 The broker's query services over EMQX's v5 REST API (issue 11 item 1;
ARCHITECTURE.md "The broker's query services"): /clients (every filter,
paging, details), DELETE /clients/{id} (kick: v5 DISCONNECT 0x98
administrative action, v3 a plain close; an offline session is discarded),
/clients/{id}/subscriptions, /subscriptions (clientid, topic, qos,
share_group, match_topic), /topics, the retained messages (list, get with
the topic as a%2Fb or a/b/c, delete seen on another node) and /publish
(/bulk): plain and base64 payloads, v5 properties received by paho.

Real hamqttd nodes, real clients (mosquitto_sub, paho, mqttraw), the API
with the node's API key; a viewer may read but not kick or publish. Waits
are bounded (T())."""

import base64
import json
import subprocess
import time
import urllib.parse

import pytest

import mqttraw as m
from conftest import api_headers, wait_until
from mqttraw import T
from test_43_mgmt_auth import bearer, login, req
from test_48_repl import api


def eventually(fn, timeout=5.0, what="condition"):
    assert wait_until(fn, timeout=T(timeout)), what


def raw5(node, raw, cid, clean=True, expiry=None, **kw):
    c = raw(node, version=5)
    props = [(m.SESSION_EXPIRY, expiry)] if expiry else None
    c.connect(cid, clean=clean, props=props, **kw)
    return c


def mosquitto_sub(node, *args):
    p = subprocess.Popen(["mosquitto_sub", "-p", str(node.port), "-v"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p


def stop_sub(p):
    p.terminate()
    try:
        out, _ = p.communicate(timeout=T(5))
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out


def clients(node, query=""):
    st, doc = api(node, "GET", "/api/v5/clients" + query)
    assert st == 200, (query, st, doc)
    return doc


def ids(doc):
    return sorted(c["clientid"] for c in doc["data"])


def test_clients_list_filters_details_and_paging(broker, raw):
    b = broker()
    # mosquitto_sub without -i: the broker sees a generated id
    sub = mosquitto_sub(b, "-t", "a/#", "-V", "mqttv5", "-u", "mosq-user")
    try:
        eventually(lambda: clients(b, "?like_username=mosq")["meta"]["count"] == 1,
                   what="mosquitto_sub listed")
        alice = raw5(b, raw, "alice-5", username="alice", keepalive=30)
        bob = raw(b, version=4)
        bob.connect("bob-4", username="bob")
        old = raw(b, version=3)
        old.connect("old-3")
        # an offline persistent session (v5, expiry 600)
        off = raw5(b, raw, "off-5", clean=False, expiry=600)
        off.subscribe(("off/#", 1))
        off.disconnect()
        off.close()
        eventually(lambda: clients(b, "?conn_state=disconnected")["meta"]["count"] == 1,
                   what="offline session listed")

        every = clients(b)
        assert every["meta"] == {"page": 1, "limit": 100, "count": 5, "hasnext": False}
        node = every["data"][0]["node"]
        assert ids(clients(b, "?clientid=alice-5")) == ["alice-5"]
        assert ids(clients(b, "?username=bob")) == ["bob-4"]
        assert ids(clients(b, "?like_clientid=-5")) == ["alice-5", "off-5"]
        assert ids(clients(b, "?like_username=li")) == ["alice-5"]
        assert ids(clients(b, "?conn_state=disconnected")) == ["off-5"]
        assert len(clients(b, "?conn_state=connected")["data"]) == 4
        assert ids(clients(b, "?proto_ver=3")) == ["old-3"]
        assert ids(clients(b, "?proto_ver=4")) == ["bob-4"]
        assert len(clients(b, "?proto_ver=5")["data"]) == 3  # mosquitto_sub, alice, off
        assert len(clients(b, "?ip_address=127.0.0.1")["data"]) == 4  # offline has none
        assert clients(b, "?ip_address=10.9.9.9")["data"] == []
        assert ids(clients(b, "?node=" + urllib.parse.quote(node) + "&proto_ver=4")) == ["bob-4"]
        assert clients(b, "?node=other%40host")["meta"]["count"] == 0
        assert ids(clients(b, "?username=alice&proto_ver=5&conn_state=connected")) == ["alice-5"]

        # pages: stable order, every client once, hasnext until the last
        seen = []
        for page in (1, 2, 3):
            doc = clients(b, "?limit=2&page=%d" % page)
            assert doc["meta"]["count"] == 5 and doc["meta"]["hasnext"] == (page < 3), doc["meta"]
            seen += [c["clientid"] for c in doc["data"]]
        assert seen == [c["clientid"] for c in every["data"]]
        assert clients(b, "?limit=2&page=4")["data"] == []

        # details (EMQX's names)
        st, a = api(b, "GET", "/api/v5/clients/alice-5")
        assert st == 200, a
        assert a["username"] == "alice" and a["proto_ver"] == 5 and a["proto_name"] == "MQTT"
        assert a["keepalive"] == 30 and a["clean_start"] is True and a["connected"] is True
        assert a["conn_state"] == "connected" and a["ip_address"] == "127.0.0.1" and a["port"] > 0
        assert a["listener"] == "tcp:default" and a["is_bridge"] is False and a["node"] == node
        assert a["connected_at"].endswith("+00:00") and a["created_at"]
        assert a["subscriptions_cnt"] == 0 and a["mqueue_len"] == 0 and a["inflight_cnt"] == 0
        st, o = api(b, "GET", "/api/v5/clients/off-5")
        assert st == 200 and o["connected"] is False and o["conn_state"] == "disconnected", o
        assert o["expiry_interval"] == 600 and o["subscriptions_cnt"] == 1
        assert o["disconnected_at"] and o["ip_address"] is None
        st, o3 = api(b, "GET", "/api/v5/clients/old-3")
        assert st == 200 and o3["proto_name"] == "MQIsdp" and o3["proto_ver"] == 3
        # the window in force: mqtt.max_inflight (32), as no client asked for less
        assert a["inflight_max"] == 32 and o3["inflight_max"] == 32, (a, o3)
        # queued messages of the offline session show as mqueue_len
        alice.publish("off/x", b"1", qos=1)
        alice.publish("off/y", b"2", qos=1)
        eventually(lambda: api(b, "GET", "/api/v5/clients/off-5")[1]["mqueue_len"] == 2,
                   what="mqueue_len 2")

        # unknown and bad
        assert api(b, "GET", "/api/v5/clients/nobody")[0] == 404
        for q in ("?conn_state=sleeping", "?proto_ver=9", "?page=0", "?limit=x"):
            assert api(b, "GET", "/api/v5/clients" + q)[0] == 400, q
        bob.close()
        old.close()
        alice.close()
    finally:
        stop_sub(sub)


def test_kick_v5_v3_and_offline(broker, raw):
    b = broker()
    v5 = raw5(b, raw, "k5")
    v3 = raw(b, version=4)
    v3.connect("k3")
    assert api(b, "DELETE", "/api/v5/clients/k5")[0] == 204
    v5.expect_disconnect(0x98)  # administrative action
    assert api(b, "DELETE", "/api/v5/clients/k3")[0] == 204
    v3.expect_disconnect(None)  # v3: a plain close
    eventually(lambda: clients(b)["meta"]["count"] == 0, what="kicked clients gone")
    # an offline session is discarded: the next connect finds none
    off = raw5(b, raw, "koff", clean=False, expiry=600)
    off.subscribe("x/#")
    off.disconnect()
    off.close()
    eventually(lambda: api(b, "GET", "/api/v5/clients/koff")[0] == 200)
    assert api(b, "DELETE", "/api/v5/clients/koff")[0] == 204
    assert api(b, "GET", "/api/v5/clients/koff")[0] == 404
    assert api(b, "DELETE", "/api/v5/clients/nobody")[0] == 404


def test_kicked_offline_session_not_present(broker, raw):
    b = broker()
    off = raw5(b, raw, "sp", clean=False, expiry=600)
    off.disconnect()
    off.close()
    eventually(lambda: api(b, "GET", "/api/v5/clients/sp")[0] == 200)
    assert api(b, "DELETE", "/api/v5/clients/sp")[0] == 204
    c = raw(b, version=5)
    ack = c.connect("sp", clean=False, props=[(m.SESSION_EXPIRY, 600)])
    assert ack.flags & 1 == 0, "session present after the kick discarded it"
    c.close()


def test_subscriptions_and_topics(broker, raw):
    b = broker()
    s1 = raw5(b, raw, "s1")
    # options: qos 1 + no local + retain as published + retain handling 2
    s1.subscribe(("t/+/x", 1 | 0x04 | 0x08 | 0x20), ("$share/g1/t/#", 2), ("z", 0))
    s2 = raw(b, version=4)
    s2.connect("s2")
    s2.subscribe(("t/1/x", 0), ("other", 1))
    st, arr = api(b, "GET", "/api/v5/clients/s1/subscriptions")
    assert st == 200 and isinstance(arr, list), arr
    by = {s["topic"]: s for s in arr}
    assert set(by) == {"t/+/x", "$share/g1/t/#", "z"}
    assert by["t/+/x"]["qos"] == 1 and by["t/+/x"]["nl"] == 1 and by["t/+/x"]["rap"] == 1
    assert by["t/+/x"]["rh"] == 2 and by["t/+/x"]["clientid"] == "s1" and by["z"]["nl"] == 0
    assert api(b, "GET", "/api/v5/clients/nobody/subscriptions")[0] == 404

    def subs(q=""):
        st, doc = api(b, "GET", "/api/v5/subscriptions" + q)
        assert st == 200, (q, doc)
        return sorted((s["clientid"], s["topic"]) for s in doc["data"]), doc["meta"]

    allsubs, meta = subs()
    assert meta["count"] == 5 and len(allsubs) == 5
    assert subs("?clientid=s2")[0] == [("s2", "other"), ("s2", "t/1/x")]
    assert subs("?topic=z")[0] == [("s1", "z")]
    assert subs("?qos=2")[0] == [("s1", "$share/g1/t/#")]
    assert subs("?share_group=g1")[0] == [("s1", "$share/g1/t/#")]
    assert subs("?match_topic=t/1/x")[0] == [("s1", "$share/g1/t/#"), ("s1", "t/+/x"),
                                             ("s2", "t/1/x")]
    assert subs("?match_topic=t/1/x&clientid=s2&qos=0")[0] == [("s2", "t/1/x")]
    # pages of 2 cover the whole list once
    got = []
    for page in (1, 2, 3):
        doc = api(b, "GET", "/api/v5/subscriptions?limit=2&page=%d" % page)[1]
        got += [(s["clientid"], s["topic"]) for s in doc["data"]]
    assert sorted(got) == allsubs
    assert api(b, "GET", "/api/v5/subscriptions?qos=7")[0] == 400

    st, doc = api(b, "GET", "/api/v5/topics")
    assert st == 200, doc
    topics = sorted(t["topic"] for t in doc["data"])
    assert doc["meta"]["count"] == len(topics) == 5, topics  # distinct filters
    assert all(t["node"] for t in doc["data"])
    st, doc = api(b, "GET", "/api/v5/topics?topic=other")
    assert [t["topic"] for t in doc["data"]] == ["other"]
    # /stats counts them on a standalone node too (clustering off)
    st, stats = api(b, "GET", "/api/v5/stats")
    assert st == 200 and stats[0]["subscriptions.count"] == 5, stats
    assert stats[0]["topics.count"] == 5, stats
    s1.close()
    s2.close()


def test_retained_list_get_delete_across_cluster(cluster):
    cl = cluster(2)
    cl.join_all()
    cl.wait_all_running()
    n1, n2 = cl.nodes
    for topic, payload in (("a/b", b"\x00\x01bin"), ("a/b/c", b"deep"), ("flat", b"x")):
        subprocess.run(["mosquitto_pub", "-h", n1.host, "-p", str(n1.port), "-t", topic, "-r", "-q", "1",
                        "-s"], input=payload, check=True, timeout=T(10))
    for n in (n1, n2):
        eventually(lambda n=n: api(n, "GET", "/api/v5/mqtt/retainer/messages")[1]["meta"]
                   ["count"] == 3, what="3 retained on node %d" % n.index)
    st, doc = api(n2, "GET", "/api/v5/mqtt/retainer/messages?limit=2")
    assert st == 200 and len(doc["data"]) == 2 and doc["meta"]["hasnext"] is True
    assert all("payload" not in r and r["publish_at"] for r in doc["data"])
    st, r = api(n2, "GET", "/api/v5/mqtt/retainer/message/a%2Fb")
    assert st == 200 and base64.b64decode(r["payload"]) == b"\x00\x01bin", r
    assert r["topic"] == "a/b" and r["qos"] == 1
    st, r = api(n2, "GET", "/api/v5/mqtt/retainer/message/a/b/c")
    assert st == 200 and base64.b64decode(r["payload"]) == b"deep", r
    assert api(n2, "GET", "/api/v5/mqtt/retainer/message/none")[0] == 404
    # a delete on one node reaches the other (the replicated empty write)
    assert api(n1, "DELETE", "/api/v5/mqtt/retainer/message/a%2Fb")[0] == 204
    eventually(lambda: api(n2, "GET", "/api/v5/mqtt/retainer/message/a/b")[0] == 404,
               what="delete replicated")
    assert api(n1, "DELETE", "/api/v5/mqtt/retainer/message/a/b")[0] == 404
    assert api(n1, "DELETE", "/api/v5/mqtt/retainer/message/a/%23")[0] == 400
    # a new subscriber no longer gets it; the others stay
    out = subprocess.run(["mosquitto_sub", "-h", n2.host, "-p", str(n2.port), "-t", "#", "-v",
                          "-C", "2", "-W", "5"],
                         capture_output=True, timeout=T(10))
    lines = sorted(out.stdout.decode(errors="replace").splitlines())
    assert lines == ["a/b/c deep", "flat x"], lines


def test_publish_plain_base64_bulk_and_properties(broker, paho):
    b = broker()
    sub = mosquitto_sub(b, "-t", "p/#", "-C", "4", "-W", "20")
    try:
        eventually(lambda: api(b, "GET", "/api/v5/subscriptions?topic=p/%23")[1]["meta"]
                   ["count"] == 1, what="mosquitto_sub subscribed")
        st, doc = api(b, "POST", "/api/v5/publish", {"topic": "p/1", "payload": "hello", "qos": 1})
        assert st == 200 and len(doc["id"]) >= 16, doc
        st, doc = api(b, "POST", "/api/v5/publish",
                      {"topic": "p/2", "payload": base64.b64encode(b"b64 text").decode(),
                       "payload_encoding": "base64"})
        assert st == 200, doc
        st, doc = api(b, "POST", "/api/v5/publish/bulk",
                      [{"topic": "p/3", "payload": "one"}, {"topic": "p/4", "payload": "two"},
                       {"topic": "nobody/here", "payload": "x"}])
        assert st == 200 and len(doc) == 3 and "id" in doc[0] and "id" in doc[1], doc
        assert doc[2] == {"reason_code": 16, "message": "no_matching_subscribers"}
        out, _ = sub.communicate(timeout=T(20))
        assert out.splitlines() == ["p/1 hello", "p/2 b64 text", "p/3 one", "p/4 two"], out
    finally:
        if sub.poll() is None:
            stop_sub(sub)
    # nobody subscribed: EMQX's 202
    st, doc = api(b, "POST", "/api/v5/publish", {"topic": "void", "payload": "x"})
    assert st == 202 and doc == {"reason_code": 16, "message": "no_matching_subscribers"}, doc

    # v5 properties reach a paho v5 subscriber; retained; no ACL for the admin
    p5 = paho(b, "p5", version=5)
    p5.subscribe("v/#", qos=1)
    st, doc = api(b, "POST", "/api/v5/publish",
                  {"topic": "v/props", "payload": "{}", "qos": 1, "retain": True,
                   "properties": {"message_expiry_interval": 60, "content_type": "application/json",
                                  "response_topic": "v/reply", "correlation_data": "corr-1",
                                  "payload_format_indicator": 1,
                                  "user_properties": {"k1": "v1", "k2": "v2"}}})
    assert st == 200, doc
    msg = p5.messages.get(timeout=T(5))
    assert msg.topic == "v/props" and msg.payload == b"{}" and msg.qos == 1
    props = msg.properties
    assert props.ContentType == "application/json" and props.ResponseTopic == "v/reply"
    assert props.CorrelationData == b"corr-1" and props.PayloadFormatIndicator == 1
    assert sorted(props.UserProperty) == [("k1", "v1"), ("k2", "v2")]
    assert 0 < props.MessageExpiryInterval <= 60
    st, r = api(b, "GET", "/api/v5/mqtt/retainer/message/v/props")
    assert st == 200 and base64.b64decode(r["payload"]) == b"{}"

    bad = [{"payload": "no topic"}, {"topic": "a/#"}, {"topic": "a/+/b"}, {"topic": ""},
           {"topic": "t", "qos": 3}, {"topic": "t", "qos": "1"}, {"topic": "t", "retain": 1},
           {"topic": "t", "payload": "!!", "payload_encoding": "base64"},
           {"topic": "t", "payload_encoding": "hex"},
           {"topic": "t", "properties": {"response_topic": "r/#"}},
           {"topic": "t", "properties": {"nonsense": 1}},
           {"topic": "t", "properties": {"user_properties": {"k": 1}}},
           {"topic": "$SYS/x"}, [1, 2]]
    for body in bad:
        st, doc = api(b, "POST", "/api/v5/publish", body)
        assert st == 400, (body, st, doc)
    assert api(b, "POST", "/api/v5/publish/bulk", [])[0] == 400
    assert api(b, "POST", "/api/v5/publish/bulk", [{"topic": "ok"}, {"topic": "a/#"}])[0] == 400
    assert api(b, "POST", "/api/v5/publish/bulk", {"topic": "t"})[0] == 400


def test_viewer_reads_but_cannot_kick_or_publish(broker, raw):
    b = broker()
    admin = api_headers(b.data_dir)
    st, _, doc = req(b.http_port, "POST", "/api/v5/users",
                     {"username": "vic", "password": "viewer-pw-1", "role": "viewer"}, admin)
    assert st == 200, doc
    tok = bearer(login(b.http_port, "vic", "viewer-pw-1")["token"])
    c = raw5(b, raw, "seen")
    for path in ("/api/v5/clients", "/api/v5/clients/seen", "/api/v5/clients/seen/subscriptions",
                 "/api/v5/subscriptions", "/api/v5/topics", "/api/v5/mqtt/retainer/messages"):
        st, _, doc = req(b.http_port, "GET", path, None, tok)
        assert st == 200, (path, st, doc)
    for method, path, body in (("DELETE", "/api/v5/clients/seen", None),
                               ("POST", "/api/v5/publish", {"topic": "t"}),
                               ("POST", "/api/v5/publish/bulk", [{"topic": "t"}]),
                               ("DELETE", "/api/v5/mqtt/retainer/message/t", None)):
        st, _, doc = req(b.http_port, method, path, body, tok)
        assert st == 403, (method, path, st, doc)
    assert c.is_open()
    # without credentials: 401
    assert req(b.http_port, "GET", "/api/v5/clients")[0] == 401
    c.close()
