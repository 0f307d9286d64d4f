"""
haproxy.py - the real haproxy binary in front of hamqttd nodes, with a config
generated from the shipped deploy/haproxy/haproxy.cfg (shared by test_17,
test_21, test_22, test_34 and tests/chaos).

    hp = HAProxy(workdir, nodes)            # nodes: objects with .ip .port .http_port
    hp = HAProxy(workdir, nodes, checks=None)   # keep the shipped check timings
    hp.wait_state(node, "UP" | "DOWN"); hp.conns(node); hp.servers(); hp.stop()

make_config() rewrites only what a test must: the bind address, the server
addresses and check ports, (by default) faster health checks (TEST_CHECKS),
a stats socket in the test directory and the log on stdout (haproxy.log in
workdir); no daemon/chroot/user. Every rewrite must find its target, so a
change to the shipped file that the rewrite does not understand fails here
rather than testing something else.
"""

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess

from conftest import REPO, free_port, pid_listens_on, wait_until
from mqttraw import T

SHIPPED = os.path.join(REPO, "deploy", "haproxy", "haproxy.cfg")
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK)
                                      else None)
BACKEND = "hamqtt"


# health checks every 200 ms, 2 failures mark a server down: tests see state changes fast
TEST_CHECKS = (("inter", "200ms"), ("fastinter", "200ms"), ("downinter", "200ms"),
               ("fall", "2"), ("rise", "2"))


def make_config(nodes, port, sock_path, checks=TEST_CHECKS):
    """The shipped haproxy.cfg adapted to a test (see the module docstring);
    checks: (key, value) pairs replacing the default-server timings, or None
    to keep the shipped ones."""
    with open(SHIPPED) as f:
        lines = f.read().splitlines()
    out, servers, section = [], 0, None
    found = set()
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        word = s.split()[0]
        if not line[0].isspace():
            section = s
            out.append(s)
            continue
        if section == "global":
            if word in ("chroot", "user", "group", "daemon", "stats"):
                continue
            if word == "log":  # to haproxy's stdout (its log file here), not syslog
                s = "log stdout format raw local0 info"
            if word == "maxconn":
                s = "maxconn 1000"
        if section == "frontend mqtt" and word == "bind":
            s = "bind 127.0.0.1:%d" % port
            found.add("bind")
        if section == "backend " + BACKEND:
            if word == "default-server":
                for key, val in checks or ():
                    s, n = re.subn(r"\b%s \S+" % key, "%s %s" % (key, val), s)
                    assert n == 1, "default-server without %s: %r" % (key, line)
                found.add("default-server")
            elif word == "server":
                if servers >= len(nodes):
                    continue
                b = nodes[servers]
                s, n1 = re.subn(r"^server (\S+) \S+:\d+", "server \\1 %s:%d" % (b.ip, b.port), s)
                s, n2 = re.subn(r"\bcheck port \d+", "check port %d" % b.http_port, s)
                assert n1 == 1 and n2 == 1, "unexpected server line %r" % line
                assert "send-proxy-v2" in s, "server line without send-proxy-v2: %r" % line
                servers += 1
            elif "mqtt_field_value(connect,client_identifier)" in s:
                found.add("stick")
        out.append("    " + s)
    assert servers == len(nodes), "shipped config has %d server lines" % servers
    assert found == {"bind", "default-server", "stick"}, found
    # a stats socket of our own (the shipped one lives in /run/haproxy)
    i = out.index("global")
    out.insert(i + 1, "    stats socket %s mode 600 level admin" % sock_path)
    return "\n".join(out) + "\n"


class HAProxy:
    def __init__(self, workdir, nodes, checks=TEST_CHECKS):
        self.workdir = workdir
        self.nodes = nodes
        self.port = free_port()
        self.sock_path = os.path.join(workdir, "haproxy.sock")
        self.cfg_path = os.path.join(workdir, "haproxy.cfg")
        self.log_path = os.path.join(workdir, "haproxy.log")
        with open(self.cfg_path, "w") as f:
            f.write(make_config(nodes, self.port, self.sock_path, checks))
        r = subprocess.run([HAPROXY, "-c", "-f", self.cfg_path], capture_output=True,
                           text=True, timeout=T(10))
        assert r.returncode == 0, "generated config refused:\n%s%s" % (r.stdout, r.stderr)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([HAPROXY, "-f", self.cfg_path, "-db"],
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=workdir,
                                         start_new_session=True)
        # the stats socket appears once the listeners are bound
        wait_until(lambda: self._check_alive() and os.path.exists(self.sock_path), 10, 0.05,
                   "haproxy stats socket")
        assert pid_listens_on(self.proc.pid, self.port), "haproxy not listening:\n" + self.log()

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("haproxy exited with %s:\n%s" % (self.proc.returncode,
                                                                   self.log()))
        return True

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def command(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(T(5))
        try:
            s.connect(self.sock_path)
            s.sendall(cmd.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data.decode()
                data += chunk
        finally:
            s.close()

    def servers(self):
        """{server name: row of `show stat`} for the backend's servers."""
        text = self.command("show stat")
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {r["svname"]: r for r in rows
                if r["pxname"] == BACKEND and r["svname"] not in ("BACKEND", "FRONTEND")}

    def name(self, node):
        return "hamqtt%d" % (self.nodes.index(node) + 1)

    def wait_state(self, node, state, timeout=5.0):
        """Wait until node's server is UP (a check passed) or DOWN."""
        name = self.name(node)

        def ok():
            self._check_alive()
            r = self.servers()[name]
            if state == "UP":
                return r["status"] == "UP" and r["check_status"] == "L7OK"
            return r["status"].startswith(state)
        try:
            wait_until(ok, timeout, 0.05, "%s %s in haproxy" % (name, state))
        except AssertionError as e:
            raise AssertionError("%s; servers: %r" % (e, {k: (v["status"], v["check_status"])
                                                          for k, v in self.servers().items()}))

    def conns(self, node):
        return int(self.servers()[self.name(node)]["scur"] or 0)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=T(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


# an `option tcplog` line: client [date] frontend backend/server Tw/Tc/Tt bytes
# termination_state actconn/feconn/beconn/srv_conn/retries queues ("+N" retries:
# redispatched to another server after N)
TCPLOG = re.compile(r" (\S+)/(\S+) -?\d+/-?\d+/\+?-?\d+ \+?\d+ (\S\S) "
                    r"\d+/\d+/\d+/\d+/(\+?\d+) ")


def tcplog(text):
    """(backend, server, termination state, retries) of each connection HAProxy
    logged as closed (the first letter of the state says who ended it: D = the
    server was marked down (on-marked-down shutdown-sessions), K = killed by an
    admin, C/S = the client/server closed it, - = normal end)."""
    return [m.groups() for m in TCPLOG.finditer(text)]

