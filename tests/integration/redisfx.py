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

    def __init__(self, dir_, port=None):
        self.dir = str(dir_)
        self.port = port or free_port()
        self.proc = None

    def start(self):
        logf = open(os.path.join(self.dir, "redis.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
                 "--daemonize", "no"],
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


