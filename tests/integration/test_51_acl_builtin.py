"""51 ACL rules from the built-in database (issue 10 item 3; ARCHITECTURE.md
"ACL rules from the built-in database"): EMQX's built_in_database
authorization source. Rules per client id, per user name and for all
clients, managed at /api/v5/authorization/sources/built_in_database/rules,
held in the replicated table "acldb" (every node of a cluster), checked in
that order (first covering rule decides) after a JWT's claims and before the
ACL file; auth.acl.no_match decides where nothing matched. A change holds
for connections made after it.

A denied SUBSCRIBE gets 0x80 ((3.1.1) [MQTT-3.9.3-2]) or v5 0x87 in its
SUBACK; a denied PUBLISH is dropped, v5 QoS 1 answered PUBACK 0x87
[MQTT-3.4.2-1]. Real hamqttd nodes (cluster.py), real MQTT clients (mqttraw),
the REST API with the node's API key. Waits are bounded (T())."""

import pytest

import mqttraw as m
from restapi import api
from test_48_repl import eventually

RULES = "/api/v5/authorization/sources/built_in_database/rules"


def rule(topic, permission="allow", action="all"):
    return {"topic": topic, "permission": permission, "action": action}


def client(node, cid, user=None, version=5):
    c = node.raw(version=version)
    c.connect(cid, username=user)
    return c


def fail_code(version):
    return 0x87 if version == 5 else 0x80


@pytest.mark.parametrize("version", [4, 5])
def test_rules_per_client_user_and_all(cluster, version):
    cl = cluster(1)
    (n1,) = cl.nodes
    st, _ = api(n1, "POST", RULES + "/users",
                [{"username": "alice", "rules": [rule("a/#"), rule("sec/#", "deny", "subscribe")]}])
    assert st == 204
    assert api(n1, "POST", RULES + "/clients",
               [{"clientid": "dev1", "rules": [rule("a/x", "deny", "publish"),
                                               rule("d/#", action="subscribe")]},
                {"clientid": "watch", "rules": [rule("#", action="subscribe")]}])[0] == 204
    assert api(n1, "POST", RULES + "/all", {"rules": [rule("pub/#", action="subscribe")]})[0] == 204
    fail = fail_code(version)

    # the user's rules (and all's); what none covers: no_match (deny)
    a = client(n1, "a1", "alice", version)
    assert a.subscribe(("a/#", 1), ("sec/1", 1), ("pub/#", 1), ("z/#", 1)).codes == [1, fail, 1, fail]
    # the client id's rules first: dev1 may read d/#, may not write a/x
    d = client(n1, "dev1", "alice", version)
    assert d.subscribe("d/#", "a/b").codes == [0, 0]
    # anonymous, no lists of its own: "all" only
    anon = client(n1, "anon1", None, version)
    assert anon.subscribe("pub/#", "a/#").codes == [0, fail]

    w = client(n1, "watch", None, 5)
    assert w.subscribe(("#", 1)).codes == [1]
    deny = 0x87 if version == 5 else 0
    assert a.publish("a/1", b"1", qos=1).rc == 0
    assert a.publish("z/1", b"2", qos=1).rc == deny          # no rule: dropped
    assert d.publish("a/x", b"3", qos=1).rc == deny          # the client's deny
    assert d.publish("a/y", b"4", qos=1).rc == 0             # the user's allow
    anon.publish("pub/1", b"5", qos=0)                       # all: subscribe only
    assert a.publish("a/end", b"6", qos=1).rc == 0
    got = [(p.topic, p.payload) for p in w.publishes(3)]
    assert got == [("a/1", b"1"), ("a/y", b"4"), ("a/end", b"6")]
    w.expect_nothing(0.3, m.PUBLISH)
    assert a.ping().type == m.PINGRESP and d.ping().type == m.PINGRESP

    # a change holds for new connections; an open one keeps what it had
    assert api(n1, "DELETE", RULES + "/users/alice")[0] == 204
    assert api(n1, "DELETE", RULES + "/clients/dev1")[0] == 204
    assert api(n1, "DELETE", RULES + "/clients/watch")[0] == 204
    assert api(n1, "DELETE", RULES + "/all")[0] == 204
    assert a.subscribe("z/#").codes == [fail]
    a2 = client(n1, "a2", "alice", version)
    assert a2.subscribe("z/#").codes == [0]                  # no rules at all: as before


def test_db_rules_before_the_acl_file(cluster, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("topic read f/#\ntopic write f/#\n")
    cl = cluster(1, {"auth.acl_file": str(acl)})
    (n1,) = cl.nodes
    assert api(n1, "POST", RULES + "/all",
               {"rules": [rule("f/secret", "deny"), rule("g/#", action="subscribe")]})[0] == 204
    c = client(n1, "c1")
    assert c.subscribe("f/secret", "f/ok", "g/x", "h/x").codes == [0x87, 0, 0, 0x87]
    assert c.publish("f/secret", b"x", qos=1).rc == 0x87
    assert c.publish("f/ok", b"x", qos=1).rc == 0


def test_rest_shapes_and_errors(cluster):
    cl = cluster(1)
    (n1,) = cl.nodes
    # credentials required on every route
    for method, path, body in (("GET", "/users", None), ("POST", "/users", []),
                               ("GET", "/users/u", None), ("PUT", "/users/u", {"rules": []}),
                               ("DELETE", "/users/u", None), ("GET", "/clients", None),
                               ("POST", "/clients", []), ("GET", "/clients/c", None),
                               ("PUT", "/clients/c", {"rules": []}),
                               ("DELETE", "/clients/c", None), ("GET", "/all", None),
                               ("POST", "/all", {"rules": []}), ("DELETE", "/all", None)):
        assert api(n1, method, RULES + path, body, headers={})[0] == 401, (method, path)
    assert api(n1, "GET", RULES + "/all")[1] == {"rules": []}
    assert api(n1, "GET", RULES + "/users/nobody")[0] == 404
    assert api(n1, "DELETE", RULES + "/users/nobody")[0] == 404
    for i in range(3):
        assert api(n1, "PUT", RULES + "/users/u%d" % i,
                   {"username": "u%d" % i, "rules": [rule("t/%d" % i, "deny", "publish")]})[0] == 204
    st, doc = api(n1, "GET", RULES + "/users/u1")
    assert st == 200 and doc == {"username": "u1", "rules": [rule("t/1", "deny", "publish")]}
    st, doc = api(n1, "GET", RULES + "/users?page=2&limit=2")
    assert st == 200 and doc["meta"] == {"page": 2, "limit": 2, "count": 3, "hasnext": False}
    assert doc["data"] == [{"username": "u2", "rules": [rule("t/2", "deny", "publish")]}]
    assert api(n1, "GET", RULES + "/clients")[1]["data"] == []
    # POST refuses a name that has rules (nothing of the batch is stored)
    st, doc = api(n1, "POST", RULES + "/users", [{"username": "new", "rules": []},
                                                 {"username": "u0", "rules": []}])
    assert st == 409 and doc["code"] == "ALREADY_EXISTS"
    assert api(n1, "GET", RULES + "/users/new")[0] == 404
    # bad rules: 400 with the reason
    for bad, why in (([{"topic": "a", "permission": "perhaps", "action": "all"}],
                      "rule 1: permission must be allow or deny"),
                     ([rule("a"), {"topic": "a", "permission": "allow", "action": "read"}],
                      "rule 2: action must be publish, subscribe or all"),
                     ([rule("a/#/b")], "rule 1: topic must be a valid topic filter"),
                     ([dict(rule("a"), qos=[1])],
                      'rule 1: unsupported member "qos" (topic, permission and action only)'),
                     ({"topic": "a"}, "rules must be an array")):
        st, doc = api(n1, "PUT", RULES + "/clients/c", {"rules": bad})
        assert (st, doc["message"]) == (400, why)
    assert api(n1, "PUT", RULES + "/users/u1", {"username": "other", "rules": []})[0] == 400
    assert api(n1, "POST", RULES + "/users", {"username": "x"})[0] == 400
    assert api(n1, "GET", RULES + "/clients/c")[0] == 404


def test_rule_added_on_one_node_holds_on_another(cluster):
    cl = cluster(3)
    cl.join_all()
    cl.wait_all_running()
    n1, n2, n3 = cl.nodes
    c = client(n2, "before", "carol")
    assert c.subscribe("x/#").codes == [0]   # no rules yet
    c.close()
    assert api(n1, "PUT", RULES + "/users/carol",
               {"rules": [rule("x/#", "deny", "subscribe"), rule("#")]})[0] == 204

    def denied_on_n2():
        k = client(n2, "after", "carol")
        codes = k.subscribe("x/#", "y/#").codes
        k.close()
        return codes == [0x87, 0]
    eventually(denied_on_n2)
    assert api(n3, "GET", RULES + "/users/carol")[1]["rules"][0] == rule("x/#", "deny", "subscribe")
    # a delete on node 3 ends them on node 2 (for new connections)
    assert api(n3, "DELETE", RULES + "/users/carol")[0] == 204

    def free_on_n2():
        k = client(n2, "later", "carol")
        codes = k.subscribe("x/#").codes
        k.close()
        return codes == [0]
    eventually(free_on_n2)
