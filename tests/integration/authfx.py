"""Authentication for the tests: password files written by the installed
mosquitto_passwd or by our hamqtt-passwd, and CONNECTs that must be accepted
or refused."""

import os
import subprocess

import mqttraw as m
from conftest import build_dir, wait_until
from mqttraw import T


def passwd_tool():
    return os.path.join(build_dir(), "hamqtt-passwd")


def mosq_passwd(path, user, pw, create=False):
    """Adds user/pw to the password file path with mosquitto_passwd -b."""
    cmd = ["mosquitto_passwd"] + (["-c"] if create else []) + ["-b", path, user, pw]
    subprocess.run(cmd, check=True, capture_output=True, timeout=T(10))


def ham_passwd(path, *args):
    """hamqtt-passwd with args, "FILE" standing for path; its CompletedProcess
    (the caller checks the status: some tests expect a failure)."""
    return subprocess.run([passwd_tool()] + [a if a != "FILE" else path for a in args],
                          capture_output=True, text=True, timeout=T(10))


def refused(node, version, rc, client_id="refused", **kw):
    """CONNECT with kw, expect a refusing CONNACK (rc) with session present 0
    [MQTT-3.2.2-6] ((3.1.1) [MQTT-3.2.2-4]) and a close."""
    c = m.RawClient(node.port, version=version)
    try:
        c.send(m.connect(client_id, version=version, **kw))
        got = c.wait_closed()
        assert len(got) == 1 and got[0].type == m.CONNACK, got
        assert got[0].rc == rc, "CONNACK rc 0x%02x, want 0x%02x" % (got[0].rc, rc)
        assert not got[0].session_present
    finally:
        c.close()


def accepted(node, version, client_id="ok", **kw):
    """A raw client connected with kw (connect asserts the CONNACK is 0)."""
    c = m.RawClient(node.port, version=version)
    c.connect(client_id, **kw)
    return c


def paho_connack_rcs(port, client_id, protocol, username, password):
    """The CONNACK return codes a paho client logging in with username /
    password got (a list, [0] when accepted); it disconnects at once."""
    import paho.mqtt.client as mqtt
    c = mqtt.Client(client_id=client_id, protocol=protocol)
    c.username_pw_set(username, password)
    rcs = []
    c.on_connect = lambda cl, ud, fl, rc, props=None: rcs.append(getattr(rc, "value", rc))
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    wait_until(lambda: rcs, 10, what="paho CONNACK")
    c.disconnect()
    c.loop_stop()
    return rcs
