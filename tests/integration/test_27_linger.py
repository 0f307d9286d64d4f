"""25 lingering close: a server DISCONNECT with a reason code reaches a client
that keeps writing.

When the server closes a connection with unread input (or input arrives after
the close), the kernel answers with RST, and a RST discards whatever of the
server's output the client has not received yet: the DISCONNECT and its
reason code [MQTT-4.13.1-1] are lost exactly when the client misbehaves. The
broker closes like careful servers do: last packet, shutdown(SHUT_WR), then
read and discard the client's input for a bounded time (src/net/linger.h).

Each case makes the RST reliable: the client subscribes to its own topic and
publishes filler without reading, so its receive window is full and the
broker's last packets wait in the broker's send buffer; then it commits the
violation and keeps writing a few KiB, like a client busy sending."""

import time

import pytest

import mqttraw as m

FILLER = m.publish("lg/f", b"f" * 1000, version=5)


def _client(b, cid, keepalive=60):
    c = m.RawClient(b.port, version=5, rcvbuf=4096)
    c.connect(cid, keepalive=keepalive)
    c.subscribe("lg/#")
    # echoed back and not read: the client's receive window fills up
    c.send(FILLER * 8)
    return c


def _keep_writing(c, n=8):
    """Write n KiB more with short pauses, ignoring errors (the server may be
    gone): a client that does not stop to read."""
    for _ in range(n):
        time.sleep(0.002)
        try:
            c.sock.sendall(FILLER)
        except OSError:
            return


def _last_word(c, rc):
    try:
        got = c.wait_closed(timeout=10)
    finally:
        c.close()
    rest = [p for p in got if p.type != m.PUBLISH]
    assert rest and rest[-1].type == m.DISCONNECT and rest[-1].rc == rc, (
        "expected DISCONNECT 0x%02x as the last packet, got %r (after %d PUBLISHes)"
        % (rc, rest, len(got) - len(rest)))


def test_receive_maximum_exceeded_while_client_keeps_sending(broker):
    """A v5 client that overruns the server's Receive Maximum with QoS 2
    PUBLISHes [MQTT-3.3.4-7] and keeps sending reads DISCONNECT 0x93 (Receive
    Maximum exceeded) every time [MQTT-4.13.1-1], then the close."""
    b = broker({"mqtt.receive_maximum": 2})
    for i in range(20):
        c = _client(b, "lg-rm-%d" % i)
        c.send(b"".join(m.publish("lg/q", b"x", qos=2, mid=mid, version=5)
                        for mid in (1, 2, 3)))
        _keep_writing(c)
        _last_word(c, m.RC_RECEIVE_MAXIMUM_EXCEEDED)


CASES = {
    # a PUBLISH with QoS 3 is malformed
    "malformed_0x81": ({}, m.publish("lg/q", b"x", flags=0x06, mid=1, version=5),
                       m.RC_MALFORMED),
    # a second CONNECT [MQTT-3.1.0-2]
    "protocol_error_0x82": ({}, m.connect("lg-again", version=5), m.RC_PROTOCOL_ERROR),
    # over mqtt.max_packet_size: refused on its header, the rest stays unread
    "packet_too_large_0x95": ({"mqtt.max_packet_size": 4096},
                              m.publish("lg/q", b"z" * 6000, version=5),
                              m.RC_PACKET_TOO_LARGE),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_violation_while_client_keeps_sending(broker, case):
    """Other server-initiated closes with a reason code go through the same
    lingering close: the client that keeps writing still reads the code."""
    overrides, bad, rc = CASES[case]
    b = broker(overrides)
    for i in range(5):
        c = _client(b, "lg-%s-%d" % (case, i))
        c.send(bad)
        _keep_writing(c)
        _last_word(c, rc)


def test_keep_alive_timeout_then_late_packets(broker):
    """The server closes a silent client after 1.5 x keep alive with DISCONNECT
    0x8D [MQTT-3.1.2-22]; a client whose packets arrive just after that (a
    late PINGREQ, more PUBLISHes) still reads the code."""
    b = broker()
    for i in range(3):
        cid = "lg-ka-%d" % i
        c = _client(b, cid, keepalive=1)
        b.wait_log("client disconnected client_id=%s " % cid, timeout=10)
        c.send(m.pingreq())
        _keep_writing(c)
        _last_word(c, m.RC_KEEP_ALIVE_TIMEOUT)
