"""
test_61_archive_mysql.py - the message archive into a real MariaDB
(archive.<name>.backend = mysql, issue 12): rows arrive from mosquitto_pub
and paho (v3.1.1 and v5) with every column right, only matching topics;
MariaDB killed for ~5 s under a bounded QoS 1 load then restarted on the
same data: every message in the table exactly once; read-back through
GET /api/v5/archive/messages. The server is started by the test
(mariadb.py).
"""

import base64
import threading
import time
import urllib.parse

import pytest

from helpers import Paho, mosquitto_pub
from mariadb import DATABASE, PASSWORD, USER, mariadb, wait_rows  # noqa: F401 (fixture)
from mqttraw import T
from restapi import api


def archive_conf(m, table, name="my", **more):
    conf = {
        "archive.%s.backend" % name: "mysql",
        "archive.%s.server" % name: m.server(),
        "archive.%s.database" % name: DATABASE,
        "archive.%s.username" % name: USER,
        "archive.%s.password" % name: PASSWORD,
        "archive.%s.table" % name: table,
        "archive.%s.topics" % name: '"sensors/#,$SYS/#"',  # quoted: a bare # starts a comment
        "archive.%s.batch_interval_ms" % name: 20,
        "archive.%s.retry_min_ms" % name: 100,
        "archive.%s.retry_max_ms" % name: 1000,
        "archive.%s.connect_timeout" % name: "2s",
    }
    conf.update(more)
    return conf


def test_rows_arrive(broker, mariadb):  # noqa: F811
    """Every column of rows from mosquitto_pub (3.1.1 and 5) and paho; other topics not archived."""
    b = broker(archive_conf(mariadb, 't61_rows'))
    mosquitto_pub(b.port, "sensors/a/temp", "21.5", qos=0)
    mosquitto_pub(b.port, "sensors/b/temp", "22", qos=1, retain=True, version="mqttv5",
                  extra=["-i", "pub-v5"])
    mosquitto_pub(b.port, "other/x", "not archived", qos=1)
    c = Paho(b.port, "paho-61", version=5)
    try:
        c.publish("sensors/bin", bytes([0, 1, 2, 0, 255]), qos=2)
    finally:
        c.close()
    assert wait_rows(mariadb, "SELECT COUNT(*) FROM t61_rows", "3", T(30)) == "3", \
        b.log_tail(40)
    rows = {r[0]: r for r in mariadb.sql(
        "SELECT topic, HEX(payload), qos, retain, clientid, username, node, LENGTH(msgid), "
        "ABS(TIMESTAMPDIFF(SECOND, ts, UTC_TIMESTAMP())) < 120 FROM t61_rows")}
    assert set(rows) == {"sensors/a/temp", "sensors/b/temp", "sensors/bin"}
    assert rows["sensors/a/temp"][1:4] == ["32312E35", "0", "0"]
    assert rows["sensors/b/temp"][1:5] == ["3232", "1", "1", "pub-v5"]
    assert rows["sensors/bin"][1:5] == ["00010200FF", "2", "0", "paho-61"]
    for r in rows.values():
        assert r[5] is None          # no username
        assert r[6]                  # the node's name
        assert r[7] == "32"          # a 32 hex digit id
        assert r[8] == "1"           # publish time, UTC
    # $SYS is never archived even when a filter names it
    assert mariadb.scalar("SELECT COUNT(*) FROM t61_rows WHERE topic LIKE '$%'") == "0"


def test_outage_exactly_once(broker, mariadb):  # noqa: F811
    """MariaDB killed ~5 s under a bounded QoS 1 load, restarted: each message once."""
    b = broker(archive_conf(mariadb, 't61_outage'))
    n = 400
    c = Paho(b.port, "load-61", version=4)
    errors = []

    def load():
        try:
            for i in range(n):
                c.publish("sensors/load/%d" % (i % 7), "m-%05d" % i, qos=1)
                time.sleep(0.02)  # ~8 s of load in all
        except Exception as e:  # surfaced by the assert below
            errors.append(e)

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(1.5)
        mariadb.kill()
        time.sleep(5)
        mariadb.start()
    finally:
        t.join(T(60))
        c.close()
    assert not errors, errors
    got = wait_rows(mariadb, "SELECT COUNT(*) FROM t61_outage", str(n), T(60))
    assert got == str(n), "rows %s of %d\n%s" % (got, n, b.log_tail(40))
    assert mariadb.scalar("SELECT COUNT(DISTINCT payload) FROM t61_outage") == str(n)
    assert mariadb.scalar("SELECT COUNT(DISTINCT msgid) FROM t61_outage") == str(n)


def test_rest_readback(broker, mariadb):  # noqa: F811
    """GET /api/v5/archive/messages pages over the rows in order, with MQTT filters."""
    b = broker(archive_conf(mariadb, 't61_rest'))
    c = Paho(b.port, "rb-61", version=5)
    try:
        for i in range(6):
            c.publish("sensors/r%d/temp" % (i % 2), bytes([i, 0, 0xff]), qos=1)
            time.sleep(0.01)  # distinct publish times: the order is theirs
        c.publish("sensors/r0/humidity", b"h", qos=1)
    finally:
        c.close()
    assert wait_rows(mariadb, "SELECT COUNT(*) FROM t61_rest", "7", T(30)) == "7"

    def get(**q):
        path = "/api/v5/archive/messages?" + urllib.parse.urlencode(dict(archive="my", **q))
        st, body = api(b, "GET", path)
        assert st == 200, (st, body)
        return body

    body = get(topic="sensors/+/temp", limit=4, page=1)
    assert [x["topic"] for x in body["data"]] == ["sensors/r0/temp", "sensors/r1/temp"] * 2
    assert [base64.b64decode(x["payload"])[0] for x in body["data"]] == [0, 1, 2, 3]
    assert all(x.get("payload_encoding") == "base64" for x in body["data"])
    assert body["meta"]["count"] == 6
    body = get(topic="sensors/+/temp", limit=4, page=2)
    assert [base64.b64decode(x["payload"]) for x in body["data"]] == \
        [bytes([4, 0, 0xff]), bytes([5, 0, 0xff])]
    assert get(topic="sensors/r0/#")["meta"]["count"] == 4
    assert get(topic="sensors/r0/humidity")["meta"]["count"] == 1
    assert get(topic="sensors/r0")["meta"]["count"] == 0


def test_insert_template(broker, mariadb):  # noqa: F811
    """archive.<name>.insert: the operator's table gets ${payload.temp} of JSON payloads (NULL
    when not JSON), bound values, no default table."""
    mariadb.sql("CREATE TABLE t61_readings (id CHAR(32) PRIMARY KEY, topic VARCHAR(255) NOT NULL, "
                "temp DOUBLE NULL, room VARCHAR(32) NULL, raw BLOB, at DATETIME(3))")
    conf = archive_conf(mariadb, "t61_unused")
    conf["archive.my.insert"] = (
        "INSERT INTO t61_readings (id, topic, temp, room, raw, at) VALUES (${id}, ${topic}, "
        "${payload.temp}, ${payload.where.room}, ${payload}, FROM_UNIXTIME(${timestamp} / 1000))")
    b = broker(conf)
    mosquitto_pub(b.port, "sensors/k/t", '{"temp": 21.5, "where": {"room": "kitchen"}}', qos=1)
    mosquitto_pub(b.port, "sensors/x/t", "it's not JSON'); DROP TABLE t61_readings; --", qos=1)
    assert wait_rows(mariadb, "SELECT COUNT(*) FROM t61_readings", "2", T(30)) == "2", \
        b.log_tail(40)
    assert mariadb.sql("SELECT topic, temp, room FROM t61_readings ORDER BY topic") == [
        ["sensors/k/t", "21.5", "kitchen"], ["sensors/x/t", None, None]]
    assert mariadb.scalar("SELECT COUNT(*) FROM t61_readings WHERE raw LIKE '%DROP TABLE%' "
                          "AND ABS(TIMESTAMPDIFF(SECOND, at, UTC_TIMESTAMP())) < 120") == "1"
    assert mariadb.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE "
                          "table_name = 't61_unused'") == "0"
