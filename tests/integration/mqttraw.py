"""
mqttraw.py - a minimal, independent MQTT 3.1 / 3.1.1 / 5.0 encoder and decoder
for raw-socket integration tests that check exact bytes.

Deliberately written from the specifications, sharing no code with the broker:
a bug in the broker's codec must not be mirrored here. Builders return bytes
(never validate, so tests can build malformed packets on purpose); decode()
turns one whole packet into a Packet; RawClient wraps a TCP socket with
bounded reads.

Versions are protocol levels: 3 (MQTT 3.1, "MQIsdp"), 4 (3.1.1), 5 (5.0).
"""

import os
import select
import socket
import struct
import time

MULT = float(os.environ.get("HAMQTT_TEST_TIMEOUT_MULT", "1") or "1")


def _sanitized():
    """True when $HAMQTT_BUILD/hamqttd is an ASan or TSan build: its RSS then
    includes shadow memory and the allocator's quarantine, so tests that bound
    memory only check their counters there."""
    build = os.environ.get("HAMQTT_BUILD") or "build"
    if not os.path.isabs(build):
        build = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", build)
    try:
        with open(os.path.join(build, "hamqttd"), "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


SANITIZED = _sanitized()


def T(seconds):
    """A timeout scaled for slow (sanitizer) builds."""
    return seconds * MULT


# ---- packet types -----------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

TYPE_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
    7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
    12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# ---- MQTT 5 properties (spec 2.2.2.2) ----------------------------------------

PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTH_METHOD = 0x15
AUTH_DATA = 0x16
REQUEST_PROBLEM_INFO = 0x17
WILL_DELAY = 0x18
REQUEST_RESPONSE_INFO = 0x19
RESPONSE_INFO = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUB_AVAILABLE = 0x28
SUB_ID_AVAILABLE = 0x29
SHARED_SUB_AVAILABLE = 0x2A

# property id -> wire type
PROP_TYPES = {
    0x01: "byte", 0x02: "u32", 0x03: "str", 0x08: "str", 0x09: "bin", 0x0B: "varint",
    0x11: "u32", 0x12: "str", 0x13: "u16", 0x15: "str", 0x16: "bin", 0x17: "byte",
    0x18: "u32", 0x19: "byte", 0x1A: "str", 0x1C: "str", 0x1F: "str", 0x21: "u16",
    0x22: "u16", 0x23: "u16", 0x24: "byte", 0x25: "byte", 0x26: "pair", 0x27: "u32",
    0x28: "byte", 0x29: "byte", 0x2A: "byte",
}

# ---- reason codes (spec 2.4) --------------------------------------------------

RC_SUCCESS = 0x00
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_ID_NOT_VALID = 0x85
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97
RC_QOS_NOT_SUPPORTED = 0x9B
RC_SHARED_SUB_NOT_SUPPORTED = 0x9E

# subscription options (v5 3.8.3.1)
NO_LOCAL = 0x04
RETAIN_AS_PUBLISHED = 0x08


def retain_handling(n):
    return (n & 3) << 4


# ---- primitives --------------------------------------------------------------

def varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("varint out of range: %d" % n)
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, pos):
    """Decode a variable byte integer at buf[pos:]. Returns (value, new_pos);
    raises ValueError if longer than 4 bytes, IndexError if incomplete."""
    mult, value = 1, 0
    for i in range(4):
        b = buf[pos + i]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos + i + 1
        mult *= 128
    raise ValueError("variable byte integer longer than 4 bytes")


def u8(n):
    return struct.pack("!B", n)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def _b(s):
    if isinstance(s, str):
        return s.encode("utf-8")
    return bytes(s)


def mstr(s):
    """Length-prefixed UTF-8 string or binary data (s: str or bytes)."""
    s = _b(s)
    return u16(len(s)) + s


def fixed(first_byte, body):
    """A whole packet: first byte, remaining length, body."""
    return bytes([first_byte]) + varint(len(body)) + bytes(body)


# ---- properties --------------------------------------------------------------

def encode_prop(pid, value):
    t = PROP_TYPES.get(pid)
    if t is None:
        raise ValueError("unknown property id 0x%02x (use raw_props for that)" % pid)
    head = varint(pid)
    if t == "byte":
        return head + u8(value)
    if t == "u16":
        return head + u16(value)
    if t == "u32":
        return head + u32(value)
    if t == "varint":
        return head + varint(value)
    if t in ("str", "bin"):
        return head + mstr(value)
    if t == "pair":
        k, v = value
        return head + mstr(k) + mstr(v)
    raise AssertionError(t)


def encode_props(props):
    """props: None, a dict {id: value}, or a list of (id, value) pairs in wire
    order (duplicates allowed, e.g. user properties). Value for USER_PROPERTY is
    a (key, value) pair. Returns the property length + properties."""
    if props is None:
        body = b""
    elif isinstance(props, (bytes, bytearray)):
        body = bytes(props)  # already encoded (may be deliberately bad)
    else:
        items = props.items() if isinstance(props, dict) else props
        body = b"".join(encode_prop(pid, v) for pid, v in items)
    return varint(len(body)) + body


class Props:
    """Decoded properties, in wire order."""

    def __init__(self, items=None):
        self.items = list(items or [])

    def get(self, pid, default=None):
        for k, v in self.items:
            if k == pid:
                return v
        return default

    def all(self, pid):
        return [v for k, v in self.items if k == pid]

    def user(self):
        return self.all(USER_PROPERTY)

    def ids(self):
        return [k for k, _ in self.items]

    def __contains__(self, pid):
        return any(k == pid for k, _ in self.items)

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return "Props(%s)" % ", ".join("0x%02x=%r" % (k, v) for k, v in self.items)


def decode_props(buf, pos):
    length, pos = read_varint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ValueError("property length beyond packet")
    items = []
    while pos < end:
        pid, pos = read_varint(buf, pos)
        t = PROP_TYPES.get(pid)
        if t is None:
            raise ValueError("unknown property id 0x%02x" % pid)
        if t == "byte":
            v = buf[pos]
            pos += 1
        elif t == "u16":
            v = struct.unpack_from("!H", buf, pos)[0]
            pos += 2
        elif t == "u32":
            v = struct.unpack_from("!I", buf, pos)[0]
            pos += 4
        elif t == "varint":
            v, pos = read_varint(buf, pos)
        elif t == "str":
            v, pos = _read_str(buf, pos)
            v = v.decode("utf-8")
        elif t == "bin":
            v, pos = _read_str(buf, pos)
        else:
            k, pos = _read_str(buf, pos)
            val, pos = _read_str(buf, pos)
            v = (k.decode("utf-8"), val.decode("utf-8"))
        items.append((pid, v))
    if pos != end:
        raise ValueError("property overran its length")
    return Props(items), end


def _read_str(buf, pos):
    n = struct.unpack_from("!H", buf, pos)[0]
    pos += 2
    if pos + n > len(buf):
        raise ValueError("string beyond packet")
    return bytes(buf[pos:pos + n]), pos + n


# ---- builders ----------------------------------------------------------------

def connect(client_id="", version=4, clean=True, keepalive=60, props=None,
            will_topic=None, will_payload=b"", will_qos=0, will_retain=False,
            will_props=None, username=None, password=None, proto_name=None,
            flags=None):
    """CONNECT. flags overrides the computed connect-flags byte (for malformed
    tests); proto_name defaults to "MQIsdp" for level 3, else "MQTT"."""
    if proto_name is None:
        proto_name = "MQIsdp" if version == 3 else "MQTT"
    f = 0
    if clean:
        f |= 0x02
    if will_topic is not None:
        f |= 0x04 | ((will_qos & 3) << 3) | (0x20 if will_retain else 0)
    if password is not None:
        f |= 0x40
    if username is not None:
        f |= 0x80
    if flags is not None:
        f = flags
    body = mstr(proto_name) + u8(version) + u8(f) + u16(keepalive)
    if version == 5:
        body += encode_props(props)
    body += mstr(client_id)
    if will_topic is not None:
        if version == 5:
            body += encode_props(will_props)
        body += mstr(will_topic) + mstr(will_payload)
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return fixed(0x10, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, mid=None,
            props=None, version=4, flags=None):
    """PUBLISH. mid defaults to 1 for QoS > 0; flags overrides the low nibble."""
    f = (0x08 if dup else 0) | ((qos & 3) << 1) | (0x01 if retain else 0)
    if flags is not None:
        f = flags
    body = mstr(topic)
    if qos > 0 or (flags is not None and (flags >> 1) & 3):
        body += u16(1 if mid is None else mid)
    if version == 5:
        body += encode_props(props)
    body += _b(payload)
    return fixed(0x30 | f, body)


def _ack(ptype, flags, mid, rc=None, props=None, version=4):
    body = u16(mid)
    if version == 5 and (rc is not None or props is not None):
        body += u8(rc or 0)
        if props is not None:
            body += encode_props(props)
    return fixed((ptype << 4) | flags, body)


def puback(mid, rc=None, props=None, version=4):
    return _ack(PUBACK, 0, mid, rc, props, version)


def pubrec(mid, rc=None, props=None, version=4):
    return _ack(PUBREC, 0, mid, rc, props, version)


def pubrel(mid, rc=None, props=None, version=4, flags=0x2):
    return _ack(PUBREL, flags, mid, rc, props, version)


def pubcomp(mid, rc=None, props=None, version=4):
    return _ack(PUBCOMP, 0, mid, rc, props, version)


def subscribe(mid, topics, props=None, version=4, flags=0x2):
    """topics: list of (filter, options_byte) or of filters (options 0)."""
    body = u16(mid)
    if version == 5:
        body += encode_props(props)
    for t in topics:
        if isinstance(t, (tuple, list)):
            flt, opts = t
        else:
            flt, opts = t, 0
        body += mstr(flt) + u8(opts)
    return fixed((SUBSCRIBE << 4) | flags, body)


def unsubscribe(mid, filters, props=None, version=4, flags=0x2):
    body = u16(mid)
    if version == 5:
        body += encode_props(props)
    for flt in filters:
        body += mstr(flt)
    return fixed((UNSUBSCRIBE << 4) | flags, body)


def pingreq():
    return b"\xc0\x00"


def disconnect(rc=None, props=None, version=4):
    if version == 5 and (rc is not None or props is not None):
        body = u8(rc or 0)
        if props is not None:
            body += encode_props(props)
        return fixed(0xE0, body)
    return b"\xe0\x00"


# ---- decoder -----------------------------------------------------------------

class Packet:
    """One decoded packet. Always: type, flags, raw (all bytes). By type:
    CONNACK session_present rc props; PUBLISH dup qos retain topic mid props
    payload; PUBACK..PUBCOMP mid rc props; SUBACK/UNSUBACK mid props codes;
    DISCONNECT/AUTH rc props."""

    def __init__(self, ptype, flags, raw):
        self.type = ptype
        self.flags = flags
        self.raw = raw
        self.props = Props()
        self.rc = None
        self.mid = None

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, "type%d" % self.type)

    def __repr__(self):
        extra = []
        for k in ("mid", "rc", "qos", "topic", "payload", "codes", "session_present"):
            if hasattr(self, k) and getattr(self, k) is not None:
                extra.append("%s=%r" % (k, getattr(self, k)))
        if len(self.props):
            extra.append(repr(self.props))
        return "<%s %s>" % (self.name, " ".join(extra))


def decode(raw, version=4):
    """Decode one whole packet (fixed header included)."""
    raw = bytes(raw)
    ptype, flags = raw[0] >> 4, raw[0] & 0x0F
    rem, pos = read_varint(raw, 1)
    if pos + rem != len(raw):
        raise ValueError("remaining length %d does not match %d bytes" % (rem, len(raw) - pos))
    p = Packet(ptype, flags, raw)
    v5 = version == 5
    if ptype == CONNACK:
        p.session_present = bool(raw[pos] & 1)
        p.ack_flags = raw[pos]
        p.rc = raw[pos + 1]
        if v5 and len(raw) > pos + 2:
            p.props, _ = decode_props(raw, pos + 2)
    elif ptype == PUBLISH:
        p.dup = bool(flags & 0x08)
        p.qos = (flags >> 1) & 3
        p.retain = bool(flags & 1)
        t, pos = _read_str(raw, pos)
        p.topic = t.decode("utf-8")
        p.wire_topic = p.topic  # topic as sent (empty when only an alias was used)
        if p.qos:
            p.mid = struct.unpack_from("!H", raw, pos)[0]
            pos += 2
        if v5:
            p.props, pos = decode_props(raw, pos)
        p.payload = raw[pos:]
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.mid = struct.unpack_from("!H", raw, pos)[0]
        p.rc = 0
        if v5 and rem > 2:
            p.rc = raw[pos + 2]
            if rem > 3:
                p.props, _ = decode_props(raw, pos + 3)
    elif ptype in (SUBACK, UNSUBACK):
        p.mid = struct.unpack_from("!H", raw, pos)[0]
        pos += 2
        if v5:
            p.props, pos = decode_props(raw, pos)
        p.codes = list(raw[pos:])
    elif ptype in (DISCONNECT, AUTH):
        p.rc = 0
        if v5 and rem > 0:
            p.rc = raw[pos]
            if rem > 1:
                p.props, _ = decode_props(raw, pos + 1)
    return p


# ---- client ------------------------------------------------------------------

class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


class NoPacket(AssertionError):
    """No packet arrived in time."""


class RawClient:
    """A TCP connection speaking raw MQTT. Every read is bounded by a timeout.

    recv() returns the next packet (stashed ones first); expect(type) returns
    the next packet of that type, stashing others for later recv().
    With auto_ack=True, incoming QoS 1/2 PUBLISH and PUBREL are acknowledged as
    they are read (the packets are still returned)."""

    def __init__(self, port, host="127.0.0.1", version=4, timeout=5.0, auto_ack=False,
                 rcvbuf=None):
        self.version = version
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.buf = bytearray()
        self.stash = []
        self.closed = False
        self._mid = 0
        self.client_id = None
        self.aliases = {}  # server->client topic aliases seen
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(T(5))
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing --

    def next_mid(self):
        self._mid = self._mid % 65535 + 1
        return self._mid

    def send(self, data):
        try:
            self.sock.sendall(bytes(data))
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Closed(str(e))

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            self.closed = True
            raise Closed("connection closed by broker")
        self.buf += data
        return True

    def _take(self):
        """A whole packet from buf, or None."""
        if len(self.buf) < 2:
            return None
        try:
            rem, pos = read_varint(self.buf, 1)
        except IndexError:
            return None
        if len(self.buf) < pos + rem:
            return None
        raw = bytes(self.buf[:pos + rem])
        del self.buf[:pos + rem]
        return raw

    def _read(self, timeout):
        deadline = time.monotonic() + T(self.timeout if timeout is None else timeout)
        while True:
            raw = self._take()
            if raw is not None:
                p = decode(raw, self.version)
                self._on_packet(p)
                return p
            if self.closed:
                raise Closed("connection closed by broker")
            if not self._fill(deadline):
                raise NoPacket("no packet within the timeout")

    def _on_packet(self, p):
        if p.type == PUBLISH and self.version == 5:
            alias = p.props.get(TOPIC_ALIAS)
            if alias is not None:
                if p.topic:
                    self.aliases[alias] = p.topic
                else:
                    p.topic = self.aliases.get(alias, "")
        if not self.auto_ack:
            return
        if p.type == PUBLISH and p.qos == 1:
            self.send(puback(p.mid, version=self.version))
        elif p.type == PUBLISH and p.qos == 2:
            self.send(pubrec(p.mid, version=self.version))
        elif p.type == PUBREL:
            self.send(pubcomp(p.mid, version=self.version))

    def recv(self, timeout=None):
        if self.stash:
            return self.stash.pop(0)
        return self._read(timeout)

    def try_recv(self, timeout):
        """The next packet, or None if nothing arrives within timeout."""
        try:
            return self.recv(timeout)
        except NoPacket:
            return None

    def expect(self, ptype, timeout=None, mid=None):
        """Next packet of ptype (and mid if given); others are stashed."""
        for i, p in enumerate(self.stash):
            if p.type == ptype and (mid is None or p.mid == mid):
                return self.stash.pop(i)
        deadline = time.monotonic() + T(self.timeout if timeout is None else timeout)
        while True:
            left = (deadline - time.monotonic()) / MULT
            if left <= 0:
                raise NoPacket("no %s within timeout (stash: %r)" % (TYPE_NAMES[ptype], self.stash))
            p = self._read(left)
            if p.type == ptype and (mid is None or p.mid == mid):
                return p
            self.stash.append(p)

    def expect_nothing(self, timeout=0.5, ptype=None):
        """Assert no packet (of ptype, if given) arrives within timeout."""
        for p in self.stash:
            if ptype is None or p.type == ptype:
                raise AssertionError("unexpected %r" % p)
        deadline = time.monotonic() + T(timeout)
        while True:
            left = (deadline - time.monotonic()) / MULT
            if left <= 0:
                return
            try:
                p = self._read(left)
            except NoPacket:
                return
            if ptype is None or p.type == ptype:
                raise AssertionError("unexpected %r" % p)
            self.stash.append(p)

    def publishes(self, n, timeout=None):
        """Read n PUBLISH packets (stashing everything else)."""
        return [self.expect(PUBLISH, timeout) for _ in range(n)]

    def wait_closed(self, timeout=5.0):
        """Wait until the broker closes; return the packets read meanwhile.
        Raises AssertionError if it does not close within timeout."""
        got = list(self.stash)
        self.stash = []
        deadline = time.monotonic() + T(timeout)
        while True:
            left = (deadline - time.monotonic()) / MULT
            if left <= 0:
                raise AssertionError("broker did not close the connection within %.1fs "
                                     "(received %r)" % (T(timeout), got))
            try:
                got.append(self._read(left))
            except Closed:
                return got
            except NoPacket:
                pass

    def is_open(self, timeout=0.2):
        """True if the connection is still open (peeks; stashes packets)."""
        try:
            p = self._read(timeout)
            self.stash.append(p)
            return True
        except NoPacket:
            return True
        except Closed:
            return False

    def expect_disconnect(self, rc, timeout=5.0):
        """v5: a DISCONNECT with reason rc, then close (no Session Expiry
        Interval in it [MQTT-3.14.2-2]). v3: close with no packet at all."""
        got = self.wait_closed(timeout)
        got = [p for p in got if p.type != PUBLISH]  # in-flight deliveries may precede
        if self.version == 5:
            assert got, "expected DISCONNECT 0x%02x before close, got nothing" % rc
            d = got[-1]
            assert d.type == DISCONNECT, "expected DISCONNECT 0x%02x, got %r" % (rc, got)
            assert d.rc == rc, "expected DISCONNECT 0x%02x, got 0x%02x (%r)" % (rc, d.rc, d)
            assert SESSION_EXPIRY not in d.props, "[MQTT-3.14.2-2] server sent Session Expiry"
            return d
        assert not got, "v3: expected a plain close, got %r" % got
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def shutdown_abrupt(self):
        """Close with RST (no FIN handshake niceties): an abnormal disconnect."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    # -- flows --

    def connect(self, client_id="", clean=True, keepalive=60, props=None, rc=0, **kw):
        """Send CONNECT, return the CONNACK (asserting its reason code == rc)."""
        self.client_id = client_id
        self.send(connect(client_id, version=self.version, clean=clean, keepalive=keepalive,
                          props=props, **kw))
        p = self.recv()
        assert p.type == CONNACK, "expected CONNACK, got %r" % p
        if rc is not None:
            assert p.rc == rc, "CONNACK rc 0x%02x, expected 0x%02x (%r)" % (p.rc, rc, p)
        return p

    def subscribe(self, *topics, qos=0, props=None, mid=None, sub_id=None):
        """SUBSCRIBE to filters (str -> options=qos, or (filter, options)).
        Returns the SUBACK."""
        mid = mid or self.next_mid()
        if sub_id is not None:
            props = list(props or []) + [(SUBSCRIPTION_ID, sub_id)]
        entries = [t if isinstance(t, (tuple, list)) else (t, qos) for t in topics]
        self.send(subscribe(mid, entries, props=props, version=self.version))
        p = self.expect(SUBACK, mid=mid)
        return p

    def unsubscribe(self, *filters, props=None, mid=None):
        mid = mid or self.next_mid()
        self.send(unsubscribe(mid, filters, props=props, version=self.version))
        return self.expect(UNSUBACK, mid=mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, mid=None,
                dup=False):
        """PUBLISH and complete the QoS flow. Returns the last ack (or None)."""
        if qos and mid is None:
            mid = self.next_mid()
        self.send(publish(topic, payload, qos=qos, retain=retain, dup=dup, mid=mid,
                          props=props, version=self.version))
        if qos == 1:
            return self.expect(PUBACK, mid=mid)
        if qos == 2:
            rec = self.expect(PUBREC, mid=mid)
            if rec.rc >= 0x80:
                return rec
            self.send(pubrel(mid, version=self.version))
            return self.expect(PUBCOMP, mid=mid)
        return None

    def ping(self, timeout=None):
        self.send(pingreq())
        return self.expect(PINGRESP, timeout)

    def disconnect(self, rc=None, props=None):
        try:
            self.send(disconnect(rc, props, self.version))
        except Closed:
            pass
        self.close()

    def ack(self, p):
        """Acknowledge a received PUBLISH per its QoS (QoS 2: PUBREC, wait PUBREL, PUBCOMP)."""
        if p.qos == 1:
            self.send(puback(p.mid, version=self.version))
        elif p.qos == 2:
            self.send(pubrec(p.mid, version=self.version))
            self.expect(PUBREL, mid=p.mid)
            self.send(pubcomp(p.mid, version=self.version))
