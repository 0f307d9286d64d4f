"""48 replicated tables (issue 10 items 2, 4, 6; ARCHITECTURE.md "Replicated
tables"): the built-in user database, the management API's users and API
keys, and the banned list are held by every node of a cluster, converge by
last writer wins (HLC, node) with tombstones, are sent in full when a link
comes up, and persist in each node's data dir.

Real hamqttd nodes (cluster.py), real MQTT clients (mqttraw) and the REST API.
Waits are bounded (T()); nothing asserts a timing tighter than seconds."""

import base64
import time

import mqttraw as m
from mqttraw import T
from conftest import wait_until
from restapi import api

USERS = "/api/v5/authentication/password_based:built_in_database/users"


def connack(node, cid, user=None, pw=None, version=5):
    """The CONNACK reason code node gives cid with these credentials."""
    c = node.raw(version=version)
    p = c.connect(cid, username=user, password=pw, rc=None)
    c.close()
    return p.rc


def eventually(fn, timeout=5.0):
    assert wait_until(fn, timeout=T(timeout)), "condition not met within %s s" % timeout


# ---- the built-in user database ----

def test_builtin_user_added_on_one_node_connects_on_all(cluster):
    cl = cluster(3)
    cl.join_all()
    cl.wait_all_running()
    n1, n2, n3 = cl.nodes
    # an empty database takes no part: anonymous and unknown users as before
    assert connack(n2, "anon") == 0
    assert connack(n2, "who", "nobody", b"x") == 0
    st, doc = api(n1, "POST", USERS, {"user_id": "alice", "password": "s3cret"})
    assert st == 201 and doc == {"user_id": "alice", "is_superuser": False}, (st, doc)
    assert api(n1, "POST", USERS, {"user_id": "alice", "password": "x"})[0] == 409
    for n in (n2, n3):
        eventually(lambda n=n: connack(n, "a-%d" % n.index, "alice", b"s3cret") == 0)
        assert connack(n, "b-%d" % n.index, "alice", b"wrong") == 0x86
        # a user it does not hold: the next method, then the end of the chain
        # (a user name no method knows is refused now that one is in force)
        assert connack(n, "c-%d" % n.index, "nobody", b"x") == 0x86
        st, doc = api(n, "GET", USERS + "?page=1&limit=10")
        assert st == 200 and doc["data"] == [{"user_id": "alice", "is_superuser": False}]
        assert doc["meta"] == {"page": 1, "limit": 10, "count": 1, "hasnext": False}
    # paging
    for i in range(5):
        assert api(n2, "POST", USERS, {"user_id": "u%d" % i, "password": "p"})[0] == 201
    eventually(lambda: api(n3, "GET", USERS)[1]["meta"]["count"] == 6)
    st, doc = api(n3, "GET", USERS + "?page=2&limit=4")
    assert [u["user_id"] for u in doc["data"]] == ["u3", "u4"] and doc["meta"]["count"] == 6
    assert doc["meta"]["hasnext"] is False
    st, doc = api(n3, "GET", USERS + "?page=1&limit=4")
    assert len(doc["data"]) == 4 and doc["meta"]["hasnext"] is True
    assert api(n3, "GET", USERS + "?limit=0")[0] == 400
    # a password change on node 3 holds on node 1; a delete on node 2 too
    st, doc = api(n3, "PUT", USERS + "/alice", {"password": "n3w", "is_superuser": True})
    assert st == 200 and doc["is_superuser"] is True
    eventually(lambda: connack(n1, "a-new", "alice", b"n3w") == 0)
    assert connack(n1, "a-old", "alice", b"s3cret") == 0x86
    assert api(n1, "GET", USERS + "/alice")[1] == {"user_id": "alice", "is_superuser": True}
    assert api(n2, "DELETE", USERS + "/alice")[0] == 204
    assert api(n2, "DELETE", USERS + "/alice")[0] == 404
    eventually(lambda: api(n1, "GET", USERS + "/alice")[0] == 404)
    assert connack(n1, "a-gone", "alice", b"n3w") == 0x86
    # v3 clients get return code 4 for a wrong password
    assert connack(n1, "v3", "u1", b"bad", version=4) == 4
    assert connack(n1, "v3", "u1", b"p", version=4) == 0


def test_builtin_superuser_skips_the_acl(cluster, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("user plain\ntopic read nothing/#\n")
    cl = cluster(1, {"auth.acl_file": str(acl), "auth.allow_anonymous": "false"})
    (n1,) = cl.nodes
    assert api(n1, "POST", USERS, {"user_id": "root", "password": "pw",
                                   "is_superuser": True})[0] == 201
    assert api(n1, "POST", USERS, {"user_id": "plain", "password": "pw"})[0] == 201
    su = n1.raw(version=5)
    su.connect("su", username="root", password=b"pw")
    assert su.subscribe("any/#", qos=0).codes == [0]
    pl = n1.raw(version=5)
    pl.connect("pl", username="plain", password=b"pw")
    assert pl.subscribe("any/#", qos=0).codes == [0x87]


def test_change_made_while_a_node_is_down_reaches_it_and_survives_restart(cluster):
    cl = cluster(3)
    cl.join_all()
    cl.wait_all_running()
    n1, n2, n3 = cl.nodes
    assert api(n1, "POST", USERS, {"user_id": "keep", "password": "pw"})[0] == 201
    assert api(n1, "POST", USERS, {"user_id": "drop", "password": "pw"})[0] == 201
    eventually(lambda: connack(n3, "k0", "drop", b"pw") == 0)
    n3.stop()
    # while n3 is down: a new user, a delete (a tombstone on n1 and n2), a ban
    assert api(n2, "POST", USERS, {"user_id": "late", "password": "pw"})[0] == 201
    assert api(n1, "DELETE", USERS + "/drop")[0] == 204
    assert api(n2, "POST", "/api/v5/banned", {"as": "clientid", "who": "evil"})[0] == 200
    n3.restart()
    # the full exchange when the links come up: the new user, the delete
    # (n3's older "drop" loses against the tombstone) and the ban
    eventually(lambda: connack(n3, "k1", "late", b"pw") == 0, timeout=15)
    eventually(lambda: connack(n3, "k2", "drop", b"pw") == 0x86)
    eventually(lambda: connack(n3, "evil") == 0x8A)
    assert connack(n3, "k3", "keep", b"pw") == 0
    # n1's and n2's view did not regress from n3's stale table
    assert api(n1, "GET", USERS + "/drop")[0] == 404
    assert api(n2, "GET", USERS + "/drop")[0] == 404
    # persistence: the whole cluster stops and starts, the tables stay
    for n in cl.nodes:
        n.stop()
    for n in cl.nodes:
        n.restart()
    for n in cl.nodes:
        assert connack(n, "p-%d" % n.index, "late", b"pw") == 0
        assert connack(n, "q-%d" % n.index, "drop", b"pw") == 0x86
        assert connack(n, "evil") == 0x8A


def test_single_node_table_persists(cluster):
    """No cluster: just the local table, in the data dir."""
    (b,) = cluster(1).nodes
    assert api(b, "POST", USERS, {"user_id": "solo", "password": "pw"})[0] == 201
    assert api(b, "POST", USERS, {"user_id": "gone", "password": "pw"})[0] == 201
    assert api(b, "DELETE", USERS + "/gone")[0] == 204
    b.stop()
    b.restart()
    st, doc = api(b, "GET", USERS)
    assert st == 200 and doc["data"] == [{"user_id": "solo", "is_superuser": False}]
    assert connack(b, "solo-c", "solo", b"pw") == 0
    assert connack(b, "solo-d", "solo", b"no") == 0x86


# ---- the banned list ----

def test_ban_on_one_node_refuses_everywhere_and_expires(cluster):
    cl = cluster(3)
    cl.join_all()
    cl.wait_all_running()
    n1, n2, n3 = cl.nodes
    st, _ = api(n1, "POST", "/api/v5/banned", {"as": "clientid", "who": "bad", "until":
                                                 int(time.time()) + 4})
    assert st == 200
    assert api(n1, "POST", "/api/v5/banned", {"as": "username", "who": "mallory"})[0] == 200
    for n in (n2, n3):
        eventually(lambda n=n: connack(n, "bad") == 0x8A)
        eventually(lambda n=n: connack(n, "x", "mallory", b"p") == 0x8A)
        assert api(n, "GET", "/api/v5/banned")[1]["meta"]["count"] == 2
    # lifting it on node 3 lifts it everywhere
    assert api(n3, "DELETE", "/api/v5/banned/username/mallory")[0] == 204
    eventually(lambda: connack(n1, "x", "mallory", b"p") == 0)
    eventually(lambda: connack(n2, "x", "mallory", b"p") == 0)
    # the expiry holds everywhere
    eventually(lambda: all(connack(n, "bad") == 0 for n in cl.nodes), timeout=10)


def test_flapping_ban_replicates(cluster):
    cl = cluster(2, {"flapping_detect.enable": "true", "flapping_detect.max_count": 2,
                     "flapping_detect.window_time": "30s", "flapping_detect.ban_time": "30s"})
    cl.join_all()
    cl.wait_all_running()
    n1, n2 = cl.nodes
    for _ in range(2):
        assert connack(n1, "flappy") == 0
    assert connack(n1, "flappy") == 0x8A
    eventually(lambda: connack(n2, "flappy") == 0x8A)
    ban = api(n2, "GET", "/api/v5/banned")[1]["data"][0]
    assert ban["who"] == "flappy" and ban["by"] == "flapping detector"


# ---- management API users, API keys and logouts ----

def basic(key, secret):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (key, secret)).encode()).decode()}


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def login(node, user, pw):
    """The token, or None when refused."""
    st, doc = api(node, "POST", "/api/v5/login", {"username": user, "password": pw}, headers={})
    return doc["token"] if st == 200 else None


def test_mgmt_users_and_keys_hold_cluster_wide(cluster):
    cl = cluster(3)
    cl.join_all()
    cl.wait_all_running()
    n1, n2, n3 = cl.nodes
    st, doc = api(n1, "POST", "/api/v5/users", {"username": "ops", "password": "ops-pw-123",
                                                "role": "administrator"})
    assert st == 200, (st, doc)
    # a user added on node 1 logs in on every node
    for n in (n2, n3):
        eventually(lambda n=n: login(n, "ops", "ops-pw-123") is not None)
    tok1 = login(n1, "ops", "ops-pw-123")
    assert api(n3, "GET", "/api/v5/users", headers=bearer(tok1))[0] == 200
    # an API key made on node 2 works on node 1 and 3
    st, doc = api(n2, "POST", "/api/v5/api_key", {"name": "ci"}, headers=bearer(tok1))
    assert st == 200, (st, doc)
    key = basic(doc["api_key"], doc["api_secret"])
    for n in (n1, n3):
        eventually(lambda n=n: api(n, "GET", "/api/v5/cluster", headers=key)[0] == 200)
    # logout on node 1: the token is refused on node 2 and 3
    tok2 = login(n2, "ops", "ops-pw-123")
    assert api(n1, "POST", "/api/v5/logout", headers=bearer(tok1))[0] == 204
    for n in (n2, n3):
        eventually(lambda n=n: api(n, "GET", "/api/v5/users", headers=bearer(tok1))[0] == 401)
    assert api(n3, "GET", "/api/v5/users", headers=bearer(tok2))[0] == 200
    # a password change on node 3: older tokens and the old password refused everywhere
    time.sleep(0.05)
    st, _ = api(n3, "POST", "/api/v5/users/ops/change_pwd",
                {"old_pwd": "ops-pw-123", "new_pwd": "ops-pw-456"}, headers=bearer(tok2))
    assert st == 204
    for n in cl.nodes:
        eventually(lambda n=n: login(n, "ops", "ops-pw-456") is not None)
        assert login(n, "ops", "ops-pw-123") is None
        assert api(n, "GET", "/api/v5/users", headers=bearer(tok2))[0] == 401
    # deleting the key on node 3 refuses it on node 1
    assert api(n3, "DELETE", "/api/v5/api_key/ci")[0] == 204
    eventually(lambda: api(n1, "GET", "/api/v5/cluster", headers=key)[0] == 401)
    # deleting the user on node 1: it can log in nowhere
    assert api(n1, "DELETE", "/api/v5/users/ops")[0] == 204
    for n in cl.nodes:
        eventually(lambda n=n: login(n, "ops", "ops-pw-456") is None)


def test_fresh_node_default_admin_does_not_reset_the_cluster(cluster):
    """The admin password changed on a running cluster is not reset by a
    node that joins later with its own fresh default ("public")."""
    cl = cluster(2)
    n1, n2 = cl.nodes
    tok = login(n1, "admin", "public")
    assert api(n1, "POST", "/api/v5/users/admin/change_pwd",
               {"old_pwd": "public", "new_pwd": "cluster-admin-pw"}, headers=bearer(tok))[0] == 204
    cl.join_all()
    cl.wait_all_running()
    eventually(lambda: login(n2, "admin", "cluster-admin-pw") is not None)
    assert login(n2, "admin", "public") is None
    assert login(n1, "admin", "cluster-admin-pw") is not None
