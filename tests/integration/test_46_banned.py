"""46 banned clients (issue 10 item 6, second part): flapping detection
(flapping_detect.*: a client id connecting too often is banned for a while)
and the banned list over REST in EMQX's shape (GET/POST /api/v5/banned,
DELETE /api/v5/banned/{as}/{who}), checked at CONNECT: v5 CONNACK 0x8A
Banned, v3 return code 5. Cluster-wide replication: test_48_repl.py."""

import time

import mqttraw as m
from conftest import wait_until
from restapi import api
from test_46_overload import ovl


def test_flapping_client_is_banned_for_a_while(broker, raw):
    b = broker({"flapping_detect.enable": "true", "flapping_detect.max_count": 3,
                "flapping_detect.window_time": "30s", "flapping_detect.ban_time": "3s"})
    for _ in range(3):
        c = raw(b, version=5)
        c.connect("flap")
        c.disconnect()
        c.close()
    t0 = time.monotonic()
    raw(b, version=5).connect("flap", rc=0x8A)   # the 4th in the window
    raw(b, version=4).connect("flap", rc=5)      # banned meanwhile (v3: not authorized)
    raw(b, version=5).connect("steady")          # others are not affected
    st, doc = api(b, "GET", "/api/v5/banned")
    assert st == 200 and doc["meta"]["count"] == 1
    ban = doc["data"][0]
    assert ban["as"] == "clientid" and ban["who"] == "flap"
    assert ban["by"] == "flapping detector" and ban["until"] != "infinity"
    assert ovl(b, "flapping") == 1 and ovl(b, "banned") == 1
    b.wait_log("overload flapping: connection refused client_id=flap")
    # the ban ends by itself
    time.sleep(max(0, 3.5 - (time.monotonic() - t0)))
    raw(b, version=5).connect("flap")
    assert api(b, "GET", "/api/v5/banned")[1]["meta"]["count"] == 0


def test_flapping_off_by_default(broker, raw):
    b = broker()
    for _ in range(20):
        c = raw(b)
        c.connect("often")
        c.close()
    assert ovl(b, "flapping") == 0


def test_banned_list_over_rest(broker, raw):
    b = broker()
    assert api(b, "GET", "/api/v5/banned") == (200, {"data": [], "meta": {"count": 0}})
    st, ban = api(b, "POST", "/api/v5/banned",
                  {"as": "clientid", "who": "bad1", "reason": "tests"})
    assert st == 200 and ban["who"] == "bad1" and ban["until"] == "infinity"
    assert ban["by"] == "rest api" and ban["at"].endswith("Z")
    raw(b, version=5).connect("bad1", rc=0x8A)
    raw(b, version=4).connect("bad1", rc=5)
    raw(b, version=5).connect("good1")
    # a user name, whatever the client id
    assert api(b, "POST", "/api/v5/banned", {"as": "username", "who": "evil"})[0] == 200
    c = raw(b, version=5)
    c.send(m.connect("anyid", version=5, username="evil"))
    assert c.expect(m.CONNACK).rc == 0x8A
    # an address: everyone from it
    assert api(b, "POST", "/api/v5/banned", {"as": "peerhost", "who": "127.0.0.1"})[0] == 200
    raw(b, version=5).connect("good2", rc=0x8A)
    st, doc = api(b, "GET", "/api/v5/banned")
    assert doc["meta"]["count"] == 3
    assert sorted((x["as"], x["who"]) for x in doc["data"]) == [
        ("clientid", "bad1"), ("peerhost", "127.0.0.1"), ("username", "evil")]
    # lifted
    assert api(b, "DELETE", "/api/v5/banned/peerhost/127.0.0.1")[0] == 204
    assert api(b, "DELETE", "/api/v5/banned/clientid/bad1")[0] == 204
    assert api(b, "DELETE", "/api/v5/banned/clientid/bad1")[0] == 404
    raw(b, version=5).connect("bad1")
    assert api(b, "DELETE", "/api/v5/banned/username/evil")[0] == 204
    assert api(b, "GET", "/api/v5/banned")[1]["meta"]["count"] == 0
    assert ovl(b, "banned") == 4


def test_ban_expires(broker, raw):
    b = broker()
    until = int(time.time()) + 2
    assert api(b, "POST", "/api/v5/banned",
               {"as": "clientid", "who": "brief", "until": until})[0] == 200
    raw(b, version=5).connect("brief", rc=0x8A)
    wait_until(lambda: api(b, "GET", "/api/v5/banned")[1]["meta"]["count"] == 0,
               timeout=5, what="the ban expired")
    raw(b, version=5).connect("brief")


def test_banned_bad_requests(broker):
    b = broker()
    for body in ({"as": "nobody", "who": "x"}, {"as": "clientid"},
                 {"as": "clientid", "who": ""}, {"as": "clientid", "who": "x" * 300},
                 {"as": "clientid", "who": "x", "until": "2001-01-01T00:00:00Z"},
                 {"as": "clientid", "who": "x", "until": "tomorrow"}, [1, 2]):
        st, doc = api(b, "POST", "/api/v5/banned", body)
        assert st == 400 and doc["code"] == "BAD_REQUEST", (body, st, doc)
    st, doc = api(b, "POST", "/api/v5/banned",
                  {"as": "clientid", "who": "x", "until": "2099-01-01T00:00:00+01:00"})
    assert st == 200 and doc["until"] == "2098-12-31T23:00:00Z"
    assert api(b, "DELETE", "/api/v5/banned/nobody/x")[0] == 404
    assert api(b, "PUT", "/api/v5/banned")[0] == 405
