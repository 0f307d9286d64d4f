"""
helpers.py - real MQTT clients for the integration suite: paho-mqtt 1.6.1
(v3.1.1 and v5) and mosquitto_pub / mosquitto_sub, every wait bounded.
"""

import queue
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqttraw import T


class Paho:
    """A connected paho client with a message queue.

    version: 4 (MQTT 3.1.1) or 5. Messages land in self.messages (a Queue)."""

    def __init__(self, port, client_id, version=4, clean=True, keepalive=60,
                 connect_props=None, will=None, host="127.0.0.1", expect_rc=0):
        self.version = version
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        if version == 5:
            self.c = mqtt.Client(client_id=client_id, protocol=proto)
        else:
            self.c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=proto)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.connack = None
        self.subacks = {}
        self.sub_event = threading.Condition()
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        if will:
            self.c.will_set(**will)
        kw = {}
        if version == 5:
            kw["clean_start"] = clean
            if connect_props:
                p = Properties(PacketTypes.CONNECT)
                for k, v in connect_props.items():
                    setattr(p, k, v)
                kw["properties"] = p
        self.c.connect(host, port, keepalive, **kw)
        self.c.loop_start()
        if not self.connected.wait(T(10)):
            self.close()
            raise AssertionError("paho %s: no CONNACK" % client_id)
        rc = self.connack[1]
        rc = getattr(rc, "value", rc)
        assert rc == expect_rc, "paho %s: CONNACK rc %r" % (client_id, rc)

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack = (flags, rc, properties)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self.sub_event:
            self.subacks[mid] = granted
            self.sub_event.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, properties=None, reasons=None):
        with self.sub_event:
            self.subacks[mid] = reasons
            self.sub_event.notify_all()

    def _wait_ack(self, mid):
        deadline = time.monotonic() + T(10)
        with self.sub_event:
            while mid not in self.subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no SUBACK/UNSUBACK for mid %d" % mid)
                self.sub_event.wait(left)
            return self.subacks.pop(mid)

    def subscribe(self, topic, qos=0, no_local=False, rap=False, rh=0, props=None):
        """Subscribe and wait for the SUBACK; returns granted QoS / reason codes."""
        if self.version == 5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=rap,
                                    retainHandling=rh)
            kw = {}
            if props:
                p = Properties(PacketTypes.SUBSCRIBE)
                for k, v in props.items():
                    setattr(p, k, v)
                kw["properties"] = p
            rc, mid = self.c.subscribe(topic, options=opts, **kw)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, "subscribe failed: %r" % rc
        return self._wait_ack(mid)

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return self._wait_ack(mid)

    def publish(self, topic, payload, qos=0, retain=False, props=None, wait=True):
        kw = {}
        if props and self.version == 5:
            p = Properties(PacketTypes.PUBLISH)
            for k, v in props.items():
                setattr(p, k, v)
            kw["properties"] = p
        info = self.c.publish(topic, payload, qos=qos, retain=retain, **kw)
        if wait:
            info.wait_for_publish(timeout=T(10))
            assert info.is_published(), "paho publish of %r not completed" % topic
        return info

    def get(self, timeout=5.0):
        try:
            return self.messages.get(timeout=T(timeout))
        except queue.Empty:
            raise AssertionError("no message within %.1fs" % T(timeout))

    def get_n(self, n, timeout=5.0):
        deadline = time.monotonic() + T(timeout)
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("got %d of %d messages: %r"
                                     % (len(out), n, [(m.topic, m.payload) for m in out]))
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def expect_none(self, timeout=0.5):
        try:
            m = self.messages.get(timeout=T(timeout))
        except queue.Empty:
            return
        raise AssertionError("unexpected message %r %r" % (m.topic, m.payload))

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


class QueuedPaho:
    """A paho client over a transport Paho does not set up (TLS, WebSocket):
    the subclass makes and configures self.c, then calls _start(port), which
    connects and waits for the CONNACK. Messages land in self.messages;
    failures name self.what ("paho over TLS")."""

    what = "paho"

    def _start(self, port):
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.rc = None

        def on_connect(c, u, f, rc, props=None):
            self.rc = rc
            self.connected.set()
        self.c.on_connect = on_connect
        self.c.on_subscribe = lambda c, u, mid, g, props=None: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.connect("127.0.0.1", port, 60)
        self.c.loop_start()
        assert self.connected.wait(T(10)), "%s: no CONNACK" % self.what

    def subscribe(self, topic, qos=1):
        self.subscribed.clear()
        self.c.subscribe(topic, qos)
        assert self.subscribed.wait(T(10)), "%s: no SUBACK" % self.what

    def publish(self, topic, payload, qos=1):
        info = self.c.publish(topic, payload, qos)
        info.wait_for_publish(T(20))
        assert info.is_published()

    def get(self, timeout=10.0):
        return self.messages.get(timeout=T(timeout))

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


# ---- mosquitto command-line clients -------------------------------------------

def mosquitto_pub(port, topic, message=None, qos=0, version="mqttv311", retain=False,
                  extra=(), stdin_lines=None, timeout=15.0, host="127.0.0.1"):
    """Run mosquitto_pub; returns the CompletedProcess (asserting exit 0)."""
    cmd = ["mosquitto_pub", "-h", host, "-p", str(port), "-t", topic,
           "-q", str(qos), "-V", version]
    if retain:
        cmd.append("-r")
    stdin = None
    if stdin_lines is not None:
        cmd.append("-l")
        stdin = "".join(line + "\n" for line in stdin_lines)
    elif message is None:
        cmd.append("-n")
    else:
        cmd += ["-m", message]
    cmd += list(extra)
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=T(timeout))
    assert r.returncode == 0, "%s -> %d: %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr)
    return r


class MosquittoSub:
    """mosquitto_sub in the background. Lines of received messages are
    "MSG|topic|payload"; start() waits until the SUBACK is received."""

    def __init__(self, port, topics, qos=0, version="mqttv311", count=None, extra=(),
                 wait_seconds=20, host="127.0.0.1"):
        if isinstance(topics, str):
            topics = [topics]
        # stdbuf: mosquitto_sub writes to a pipe here; line-buffer it so lines arrive live
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", host, "-p", str(port), "-q", str(qos),
               "-V", version, "-d", "-F", "MSG|%t|%p", "-W", str(int(T(wait_seconds)))]
        for t in topics:
            cmd += ["-t", t]
        if count is not None:
            cmd += ["-C", str(count)]
        cmd += list(extra)
        self.cmd = cmd
        self.lines = queue.Queue()
        self.all = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self._wait_suback()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _wait_suback(self):
        self.wait_line(lambda ln: "received SUBACK" in ln, timeout=10, what="no SUBACK")

    def wait_line(self, pred, timeout=15.0, what="no matching line"):
        """Consume output lines until pred(line); returns the messages seen
        on the way as (topic, payload) pairs."""
        msgs = []
        deadline = time.monotonic() + T(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("mosquitto_sub: %s; output %r" % (what, self.all))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("mosquitto_sub exited; output %r" % self.all)
            if line.startswith("MSG|"):
                msgs.append(tuple(line.split("|", 2)[1:]))
            if pred(line):
                return msgs

    def messages(self, n, timeout=10.0):
        """The next n messages as (topic, payload) pairs."""
        out = []
        deadline = time.monotonic() + T(timeout)
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("mosquitto_sub: got %r of %d; output %r" % (out, n, self.all))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("mosquitto_sub exited after %r; output %r" % (out, self.all))
            if line.startswith("MSG|"):
                _, topic, payload = line.split("|", 2)
                out.append((topic, payload))
        return out

    def wait(self, timeout=10.0):
        """Wait for exit; returns the exit status."""
        rc = self.proc.wait(timeout=T(timeout))
        self.reader.join(T(5))
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=T(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


# ---- raw-client conveniences --------------------------------------------------

def collect_until(c, sentinel_topic, timeout=5.0):
    """Read PUBLISH packets from raw client c until one on sentinel_topic
    arrives; return the ones before it (the sentinel itself is dropped).
    Publishing the sentinel after the messages under test, from the same
    publisher, turns "nothing else arrives" into a bounded wait
    ([MQTT-4.6.0-6] ordering)."""
    from mqttraw import PUBLISH
    got = []
    deadline = time.monotonic() + T(timeout)
    while True:
        left = (deadline - time.monotonic()) / (T(1) or 1)
        if left <= 0:
            raise AssertionError("sentinel %r not received; got %r" % (sentinel_topic, got))
        p = c.expect(PUBLISH, timeout=left)
        if p.topic == sentinel_topic:
            return got
        got.append(p)


def count_redelivered(s, payload, seconds=1.5):
    """PUBLISH packets of payload the just-reconnected raw client s gets
    within seconds (each acknowledged): an exactly-once check after a
    restart or a takeover counts them and expects 1."""
    from mqttraw import PUBLISH
    n = 0
    deadline = time.monotonic() + T(seconds)
    while time.monotonic() < deadline:
        q = s.try_recv(0.3)
        if q is not None and q.type == PUBLISH:
            assert bytes(q.payload) == payload
            n += 1
            s.ack(q)
    return n


def pipeline_publish(c, topic, payloads, qos=1, window=10, props=None):
    """Publish payloads at qos from raw client c keeping at most `window`
    unacknowledged (QoS 2 flows completed as acks arrive). Returns mids."""
    import mqttraw as m
    outstanding = {}
    mids = []
    todo = list(payloads)

    def settle_one():
        p = c._read(None)  # not recv(): stashed packets stay stashed
        if p.type == m.PUBACK and p.mid in outstanding:
            del outstanding[p.mid]
        elif p.type == m.PUBREC and p.mid in outstanding:
            c.send(m.pubrel(p.mid, version=c.version))
        elif p.type == m.PUBCOMP and p.mid in outstanding:
            del outstanding[p.mid]
        else:
            c.stash.append(p)  # e.g. a PUBLISH for this client: keep for later

    while todo:
        if qos == 0:
            c.send(m.publish(topic, todo.pop(0), qos=0, props=props, version=c.version))
            continue
        while len(outstanding) >= window:
            settle_one()
        mid = c.next_mid()
        c.send(m.publish(topic, todo.pop(0), qos=qos, mid=mid, props=props, version=c.version))
        outstanding[mid] = True
        mids.append(mid)
    while outstanding:
        settle_one()
    return mids
