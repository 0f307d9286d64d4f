"""27 the health check's 503 while a node starts and while it stops
(GET /api/v5/status, DESIGN.md; deploy/haproxy/haproxy.cfg relies on it:
'200 when the node accepts MQTT and 503 while it starts or shuts down').

A poller hammers the endpoint (a new connection per request) from before
the node starts until it serves 200, and from before SIGTERM until the port
closes, and records every answer: the 503 must be seen, with status
"starting" / "stopping".

Both are xfail: hamqttd has no observable starting or stopping phase (see
the reasons). A build that holds each phase for 0.5 s (HTTP started before
broker_start() and stopped 0.5 s after broker_stop()) passes both."""

import http.client
import json
import signal
import threading
import time

import pytest

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


@pytest.mark.xfail(reason="hamqttd starts its HTTP server only after broker_start() has set "
                          "b->ready (main.c), so GET /api/v5/status never answers 503 "
                          "'starting': the port is closed until the node accepts MQTT",
                   strict=False)
def test_status_503_while_starting(broker):
    """From the moment hamqttd is started until it answers 200, the health
    check answers 503 {"status": "starting"} at least once (or the port is
    closed), and never 200 before the MQTT listener accepts."""
    b = broker(wait=False)
    p = Poller(b.http_port, lambda a, seen: a is not None and a[0] == 200)
    p.start()
    p.join(T(25))
    answers = p.answers()
    assert answers and answers[-1][0] == 200, "never became ready: %r" % answers[-5:]
    assert (503, "starting") in answers, (
        "no 503 'starting' before 200 (%d polls refused, answers: %r)"
        % (p.seen.count(None), sorted(set(answers))))


@pytest.mark.xfail(reason="main.c stops the HTTP server right after broker_stop(), before the "
                          "workers wind down in broker_free(), so the 503 'stopping' window is "
                          "shorter than one poll: seen in about half of the runs, else the port "
                          "just closes",
                   strict=False)
def test_status_503_while_stopping(broker, raw):
    """SIGTERM to a node with 200 connected clients: until its HTTP port
    closes the health check answers 503 {"status": "stopping"} at least
    once; never 200 once a 503 was seen (a node does not come back)."""
    b = broker()
    b.wait_listening(b.http_port)
    clients = []
    for i in range(200):
        c = raw(b, version=5)
        c.connect("stop-%d" % i, props=[(0x11, 60)])
        clients.append(c)
    assert poll_once(b.http_port)[0] == 200
    p = Poller(b.http_port, lambda a, seen: a is None and any(x for x in seen))
    p.start()
    time.sleep(0.2)
    b.proc.send_signal(signal.SIGTERM)
    p.join(T(25))
    b.proc.wait(timeout=T(15))
    answers = p.answers()
    assert (503, "stopping") in answers, (
        "no 503 'stopping' before the port closed (answers: %r)" % sorted(set(answers)))
    first_503 = answers.index((503, "stopping"))
    assert all(a[0] == 503 for a in answers[first_503:]), answers[first_503:]
