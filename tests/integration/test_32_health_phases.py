"""32 the health check's 503 while a node starts and while it stops
(GET /api/v5/status, DESIGN.md; deploy/haproxy/haproxy.cfg relies on it:
'200 when the node accepts MQTT and 503 while it starts or shuts down').

A poller hammers the endpoint (a new connection per request) from before
the node starts until it serves 200, and from before SIGTERM until the port
closes, and records every answer: the 503 must be seen, with status
"starting" / "stopping".

main.c starts the HTTP server before the broker and stops it after the
broker wound down. The starting phase is held for a second with the test
hook HQ_TEST_START_DELAY_MS (standing in for a slow store load); the
stopping phase lasts node.shutdown_grace, during which connected clients are
still served and new MQTT connections are refused. Failed before (the old
main.c: HTTP started after broker_start, stopped right after broker_stop):
no 503 "starting" at all (the port was closed until 200), and the connected
client was cut at SIGTERM, so no round trip was served after the 503."""

import http.client
import json
import signal
import threading
import time

import socket

import mqttraw as m
from conftest import wait_until
from mqttraw import T

STATUS = "/api/v5/status"


def poll_once(port):
    """(status, doc) of one GET, or None if nothing answers on the port."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", STATUS)
        r = conn.getresponse()
        body = r.read()
        conn.close()
    except (OSError, http.client.HTTPException):
        return None
    try:
        return r.status, json.loads(body)
    except ValueError:
        return r.status, None


class Poller(threading.Thread):
    """Polls until stop() or `until` returns true for an answer; keeps every
    answer (None: refused) in order. Bounded in time."""

    def __init__(self, port, until, limit=20.0):
        super().__init__(daemon=True)
        self.port, self.until, self.limit = port, until, limit
        self.seen = []
        self.halt = threading.Event()

    def run(self):
        deadline = time.monotonic() + T(self.limit)
        while not self.halt.is_set() and time.monotonic() < deadline:
            a = poll_once(self.port)
            self.seen.append(a)
            if self.until(a, self.seen):
                return

    def answers(self):
        return [(s, (d or {}).get("status")) for s, d in (a for a in self.seen if a)]


def test_status_503_while_starting(broker):
    """From the moment hamqttd is started until it answers 200, the health
    check answers 503 {"status": "starting"} at least once (or the port is
    closed), and never 200 before the MQTT listener accepts."""
    b = broker(wait=False, env={"HQ_TEST_START_DELAY_MS": "1000"})
    for attempt in range(3):
        p = Poller(b.http_port, lambda a, seen: a is not None and a[0] == 200)
        p.start()
        p.join(T(25))
        # a port the harness picked was taken before hamqttd bound it (seen in
        # `make test`: the cluster port; the 200 then came from another test's
        # node that got the freed HTTP port): start again on fresh ports, as
        # the broker fixture does for a waited start
        if attempt < 2 and b.proc.poll() is not None and b.port_race(b.log_text()):
            b.start(wait=False)
            continue
        break
    answers = p.answers()
    assert answers and answers[-1][0] == 200, "never became ready: %r" % answers[-5:]
    assert (503, "starting") in answers, (
        "no 503 'starting' before 200 (%d polls refused, answers: %r)"
        % (p.seen.count(None), sorted(set(answers))))
    assert set(answers[:-1]) == {(503, "starting")}, sorted(set(answers))
    # 200 means the node serves MQTT
    c = m.RawClient(b.port, version=5)
    try:
        c.connect("after-start")
        c.ping()
    finally:
        c.close()


def mqtt_refused(port):
    """True if a new MQTT connection gets no CONNACK: refused, reset or closed."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return True
    try:
        s.sendall(m.connect("late", version=5))
        return not s.recv(64)
    except OSError:
        return True
    finally:
        s.close()


GRACE = 3  # node.shutdown_grace, seconds: the drain the test works in


def test_status_503_while_stopping(broker, raw):
    """SIGTERM to a node with 200 connected clients and node.shutdown_grace
    set: the health check answers 503 {"status": "stopping"} until its HTTP
    port closes, never 200 once a 503 was seen (a node does not come back);
    meanwhile a connected client still gets its messages, a new MQTT
    connection is refused, and at the end the clients are told 0x8B."""
    b = broker({"node.shutdown_grace": "%ds" % GRACE})
    b.wait_listening(b.http_port)
    clients = []
    for i in range(200):
        c = raw(b, version=5)
        c.connect("stop-%d" % i, props=[(0x11, 60)])
        clients.append(c)
    probe = raw(b, version=5)
    probe.connect("probe")
    probe.subscribe("drain/t", qos=1)
    assert poll_once(b.http_port)[0] == 200
    p = Poller(b.http_port, lambda a, seen: a is None and any(x for x in seen))
    p.start()
    time.sleep(0.2)
    b.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: (503, "stopping") in p.answers(), timeout=GRACE,
               what="a 503 'stopping' after SIGTERM")
    # the drain: connected clients are served (a QoS 1 round trip) ...
    probe.publish("drain/t", b"still served", qos=1)
    got = probe.expect(m.PUBLISH)
    assert got.payload == b"still served"
    probe.ack(got)
    # ... and new connections are refused (a load balancer retries elsewhere)
    wait_until(lambda: mqtt_refused(b.port), timeout=GRACE,
               what="new MQTT connections refused during the drain")
    p.join(T(25))
    assert b.proc.wait(timeout=T(15)) == 0
    answers = p.answers()
    assert (503, "stopping") in answers, (
        "no 503 'stopping' before the port closed (answers: %r)" % sorted(set(answers)))
    first_503 = answers.index((503, "stopping"))
    assert all(a == (503, "stopping") for a in answers[first_503:]), answers[first_503:]
    probe.expect_disconnect(0x8B)
    clients[0].expect_disconnect(0x8B)


def test_stop_without_grace_never_200(broker):
    """node.shutdown_grace = 0 (the default): after SIGTERM the node exits 0
    promptly, and once the health check answered anything but 200 (a 503 or
    a closed port) it never answers 200 again. (A poll racing the signal's
    delivery may still see 200: the signal is asynchronous.)"""
    b = broker()
    b.wait_listening(b.http_port)
    assert poll_once(b.http_port)[0] == 200
    p = Poller(b.http_port, lambda a, seen: a is None and any(x for x in seen))
    p.start()
    time.sleep(0.2)
    b.proc.send_signal(signal.SIGTERM)
    assert b.proc.wait(timeout=T(15)) == 0
    p.join(T(25))
    seen = p.seen
    first_down = next(i for i, a in enumerate(seen) if a is None or a[0] != 200)
    assert all(a is None or a[0] == 503 for a in seen[first_down:]), seen[first_down:]
