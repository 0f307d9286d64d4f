"""
redisfx.py - a real redis-server for the integration suite (session.store =
redis): RedisServer on a free loopback port with its files in a test's
directory, and the `redis` fixture (one per test, killed at teardown).

It runs with an fsync'd append-only file (appendfsync always), so that a
restart after SIGKILL has everything it acknowledged.
"""

import os
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import free_port, wait_until

REDIS = shutil.which("redis-server")


class RedisServer:
    """One redis-server on 127.0.0.1:port, files in dir; every wait bounded."""

    def __init__(self, dir_, port=None, replica_of=None):
        self.dir = str(dir_)
        self.port = port or free_port()
        self.replica_of = replica_of  # a master's port
        self.proc = None

    def start(self):
        logf = open(os.path.join(self.dir, "redis.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
                 "--daemonize", "no", "--dbfilename", "dump-%d.rdb" % self.port,
                 "--appendfilename", "appendonly-%d.aof" % self.port,
                 "--appenddirname", "aof-%d" % self.port]
                + (["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else []),
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            logf.close()
        wait_until(self._answers, 10, 0.05, "redis-server answering PING on %d" % self.port)
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited with %s" % self.proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def redis(tmp_path):
    """A started RedisServer in tmp_path/redis."""
    d = tmp_path / "redis"
    d.mkdir()
    r = RedisServer(d).start()
    yield r
    r.kill()




class Sentinel:
    """One redis-sentinel on 127.0.0.1:port watching master `name`."""

    def __init__(self, dir_, master_port, name="mymaster", quorum=2):
        self.dir = str(dir_)
        self.port = free_port()
        self.proc = None
        conf = os.path.join(self.dir, "sentinel-%d.conf" % self.port)
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                    "sentinel monitor %s 127.0.0.1 %d %d\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 3000\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (self.port, self.dir, name, master_port, quorum, name, name, name))
        self.conf = conf

    def start(self):
        logf = open(os.path.join(self.dir, "sentinel-%d.log" % self.port), "ab")
        try:
            self.proc = subprocess.Popen([REDIS, self.conf, "--sentinel"], stdout=logf,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            logf.close()
        wait_until(lambda: command(self.port, "PING") == b"+PONG", 10, 0.05,
                   "redis-sentinel answering on %d" % self.port)
        return self

    def master_port(self, name="mymaster"):
        r = command(self.port, "SENTINEL", "get-master-addr-by-name", name)
        parts = r.split(b"\r\n") if r else []
        try:
            return int(parts[4])
        except (IndexError, ValueError):
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def command(port, *args):
    """One RESP command to 127.0.0.1:port; the raw reply bytes (or None)."""
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(req)
            return s.recv(4096).rstrip(b"\r\n")
    except OSError:
        return None
