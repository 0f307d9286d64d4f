"""
clients.py - the chaos test's MQTT clients (paho-mqtt 1.6, Debian 12) and what
each one saw.

Publisher: a persistent session (3.1.1 clean session 0, 5.0 clean start 0 and
a session expiry); publish() numbers its messages (payload b"<pub>:<seq>") and
keeps each one's MQTTMessageInfo; sweep() moves those whose PUBACK (QoS 1) or
PUBCOMP (QoS 2) has arrived to `acked`. paho keeps unacknowledged messages of
a persistent session across reconnects and sends them again (QoS 1: PUBLISH
with DUP; QoS 2: PUBLISH or PUBREL, by state), so a message publish()ed while
disconnected is queued, not dropped: `sent` counts publish() calls.

Subscriber: a persistent session with a fixed client id that subscribes ONCE,
at its first CONNACK, like a device that trusts "session present": it never
subscribes again, so a session the broker lost stays lost (that is what the
test looks for). Received messages are kept per publisher as sets of sequence
numbers; a second copy of one is a duplicate.

Both reconnect on their own (paho's loop thread, delay RECONNECT_MIN doubling
up to RECONNECT_MAX) and record every CONNACK (session present value, time)
and every disconnect, so that the report can say where the time went.
"""

import collections
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TOPIC_FILTER = "chaos/#"
SESSION_EXPIRY = 300      # v5 session expiry (s): far longer than any outage of a run
KEEPALIVE = 30
RECONNECT_MIN = 1.0       # paho's default first reconnect delay
RECONNECT_MAX = 4.0       # capped low so a client is back soon after a restart


# paho-mqtt 1.x (Debian 12 ships 1.6.1) resets its outgoing messages on every
# reconnect *attempt*, before any CONNACK: a QoS 2 message waiting for PUBCOMP
# becomes "resend PUBREL" on the first attempt and, if that attempt fails (as
# it does while HAProxy still sends connections to a dead node), a fresh
# PUBLISH with DUP 0 on the second, which MQTT forbids ("MUST NOT re-send the
# PUBLISH once it has sent the corresponding PUBREL", 4.3.3). A broker that
# had processed the PUBREL must take that PUBLISH for a new message, and every
# subscriber gets it twice (seen in the chaos test: one message per kill, or a
# few consecutive ones). The test measures the broker, so its clients keep
# the PUBREL state across attempts, as MQTT says; FIXED counts how often that
# mattered (printed by the report).
FIXED = {"pubrel_kept": 0}
_paho_reset_out = mqtt.Client._messages_reconnect_reset_out


def _reset_out_keeping_pubrel(self):
    with self._out_message_mutex:
        keep = [m for m in self._out_messages.values()
                if m.qos == 2 and m.state == mqtt.mqtt_ms_resend_pubrel]
    _paho_reset_out(self)
    with self._out_message_mutex:
        for m in keep:
            if m.state != mqtt.mqtt_ms_resend_pubrel:
                m.state = mqtt.mqtt_ms_resend_pubrel
                FIXED["pubrel_kept"] += 1


class Link:
    """One paho client with a persistent session, reconnecting on its own,
    and the log of its connection's life."""

    def __init__(self, client_id, port, version):
        self.client_id = client_id
        self.port = port
        self.version = version           # 4 (3.1.1) or 5
        self.lock = threading.Lock()
        self.connacks = []               # (time, session present, rc)
        self.disconnects = []            # (time, rc)
        self.up = False
        if version == 5:
            self.c = mqtt.Client(client_id, protocol=mqtt.MQTTv5)
        else:
            self.c = mqtt.Client(client_id, clean_session=False, protocol=mqtt.MQTTv311)
        # the instance only: paho itself stays as installed
        self.c._messages_reconnect_reset_out = _reset_out_keeping_pubrel.__get__(self.c)
        self.c.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect

    def start(self):
        """Connect (asynchronously: paho's loop thread retries until it can)."""
        if self.version == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY
            self.c.connect_async("127.0.0.1", self.port, KEEPALIVE, clean_start=False,
                                 properties=props)
        else:
            self.c.connect_async("127.0.0.1", self.port, KEEPALIVE)
        self.c.loop_start()

    def stop(self):
        """Disconnect cleanly (the sessions stay: clean session 0 / expiry) and
        stop the loop thread (bounded: paho joins it)."""
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        rc = int(getattr(rc, "value", rc))
        with self.lock:
            self.connacks.append((time.monotonic(), int(flags.get("session present", 0)), rc))
            self.up = rc == 0
        if rc == 0:
            self.connected(int(flags.get("session present", 0)))

    def connected(self, session_present):
        """Called (paho's thread) at every successful CONNACK."""

    def _on_disconnect(self, client, userdata, rc, properties=None):
        with self.lock:
            self.disconnects.append((time.monotonic(), int(getattr(rc, "value", rc))))
            self.up = False

    # -- where the time went --

    def timeline(self, since, until):
        """(reconnects, {session present: count} of reconnects, seconds without
        a connection between since and until, longest such gap). An outage runs
        from the first disconnect while connected to the next good CONNACK (a
        failed attempt in between is one more disconnect, not a new outage)."""
        with self.lock:
            events = sorted([(a[0], "up") for a in self.connacks if a[2] == 0] +
                            [(d[0], "down") for d in self.disconnects])
            acks = [a for a in self.connacks if a[2] == 0]
        sp = collections.Counter(a[1] for a in acks[1:])
        gaps, down_since = [], None
        for t, what in events:
            if what == "down" and down_since is None:
                down_since = t
            elif what == "up" and down_since is not None:
                gaps.append((down_since, t))
                down_since = None
        if down_since is not None:
            gaps.append((down_since, until))
        spans = [min(e, until) - max(b, since) for b, e in gaps]
        spans = [x for x in spans if x > 0]
        return len(acks) - 1, dict(sp), sum(spans), max(spans or [0.0])


def _acknowledged(info):
    """True once paho ran on_publish for this message (PUBACK / PUBCOMP in).
    Not info.is_published(): that raises for a message publish()ed while
    disconnected (rc MQTT_ERR_NO_CONN) although paho queued it and will
    send it after the reconnect; the flag it reads is the same."""
    with info._condition:
        return info._published


class Publisher(Link):
    def __init__(self, index, port, version, qos):
        super().__init__("chaos-pub-%d" % index, port, version)
        self.index = index
        self.qos = qos
        self.topic = "chaos/p%d" % index
        self.sent = 0
        self.pending = collections.deque()   # (seq, MQTTMessageInfo) not acknowledged yet
        self.acked = set()
        self.refused = 0                     # publish() refusals (not queued by paho)

    def publish(self):
        """Publish the next message (queued by paho if not connected)."""
        seq = self.sent
        info = self.c.publish(self.topic, b"%d:%d" % (self.index, seq), qos=self.qos)
        self.sent += 1
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.refused += 1            # e.g. a full queue: never sent, never acknowledged
            return
        self.pending.append((seq, info))

    def sweep(self):
        """Move acknowledged messages from pending to acked; returns how many."""
        n = 0
        keep = collections.deque()
        while self.pending:
            seq, info = self.pending.popleft()
            if _acknowledged(info):
                self.acked.add(seq)
                n += 1
            else:
                keep.append((seq, info))
        self.pending = keep
        return n


class Subscriber(Link):
    def __init__(self, index, port, version, qos, npubs):
        super().__init__("chaos-sub-%d" % index, port, version)
        self.qos = qos
        self.subscribed_at = None            # time of the one SUBACK
        self.granted = None
        # publisher index -> sequence numbers; every key made here, so that the
        # main thread can read it while paho's thread adds to the sets
        self.got = {i: set() for i in range(npubs)}
        self.received = 0                    # unique deliveries
        self.duplicates = 0
        self.dup_msgs = collections.Counter()  # (publisher, seq) -> second copies
        self.garbage = 0                     # payloads that are not "<pub>:<seq>"
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self._subscribe_sent = False

    def connected(self, session_present):
        # once only, whatever session present says: see the module docstring
        if not self._subscribe_sent:
            self._subscribe_sent = True
            self.c.subscribe(TOPIC_FILTER, qos=self.qos)

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        g = granted[0]
        self.granted = int(getattr(g, "value", g))
        self.subscribed_at = time.monotonic()

    def _on_message(self, client, userdata, msg):
        try:
            pub, seq = msg.payload.split(b":")
            pub, seq = int(pub), int(seq)
        except ValueError:
            self.garbage += 1
            return
        seen = self.got.get(pub)
        if seen is None:
            self.garbage += 1
        elif seq in seen:
            self.duplicates += 1
            self.dup_msgs[(pub, seq)] += 1
        else:
            seen.add(seq)
            self.received += 1
