"""
mariadb.py - a real MariaDB server for the integration suite (the message
archive's mysql backend): MariaDBServer (mariadb-install-db + mariadbd) in a
temporary directory, TCP on a free 127.0.0.1 port, a database and a user
with a password made over the server's own unix socket, and the `mariadb`
fixture (one per test, killed and removed at teardown).

mariadbd refuses to run as root: under root (CI) the server and the
installer run as the `mysql` user the Debian package creates (Popen's
user=, no su/runuser in between, so the process we kill is the server).
The directory is made under /tmp, not in pytest's tmp_path: that one is
0700 root and the server's user could not enter it. Nothing here needs
systemd, and the Debian package's own service is never started
(scripts/deps.sh). SQL from the tests goes through the `mariadb` client.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import free_port, wait_until

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
CLIENT = shutil.which("mariadb") or "/usr/bin/mariadb"

USER = "hq"
PASSWORD = "hq-archive-secret"
DATABASE = "hqarchive"


def available():
    return all(os.access(p, os.X_OK) for p in (MARIADBD, INSTALL_DB, CLIENT))


class MariaDBServer:
    """One mariadbd on 127.0.0.1:port with its files in its own directory."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="hq-mariadb-")
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.as_user = {}
        if os.geteuid() == 0:
            shutil.chown(self.dir, "mysql", "mysql")
            self.as_user = {"user": "mysql", "group": "mysql", "extra_groups": []}
        self.sock = os.path.join(self.dir, "sock")
        self.datadir = os.path.join(self.dir, "data")

    def install(self):
        with open(os.path.join(self.dir, "install.log"), "ab") as log:
            r = subprocess.run([INSTALL_DB, "--no-defaults", "--datadir=" + self.datadir,
                                "--auth-root-authentication-method=normal", "--skip-test-db",
                                "--skip-name-resolve"], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=180, **self.as_user)
        assert r.returncode == 0, "mariadb-install-db failed: %s" % self.log_tail("install.log")
        return self

    def start(self):
        with open(os.path.join(self.dir, "stdout.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [MARIADBD, "--no-defaults", "--datadir=" + self.datadir, "--socket=" + self.sock,
                 "--port=%d" % self.port, "--bind-address=127.0.0.1", "--skip-name-resolve",
                 "--pid-file=" + os.path.join(self.dir, "mariadbd.pid"),
                 "--log-error=" + os.path.join(self.dir, "error.log"),
                 "--innodb-buffer-pool-size=32M", "--max-connections=100", "--skip-log-bin"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **self.as_user)
        wait_until(self._answers, 90, 0.1, "mariadbd answering on %d" % self.port)
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("mariadbd exited with %s: %s" % (self.proc.returncode,
                                                                 self.log_tail("error.log")))
        r = subprocess.run([CLIENT, "--no-defaults", "-S", self.sock, "-u", "root",
                            "--connect-timeout=2", "-e", "SELECT 1"], capture_output=True,
                           timeout=20)
        return r.returncode == 0

    def log_tail(self, name, n=30):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no %s)" % name

    def sql(self, query, database=DATABASE):
        """Rows of query (as root over the socket), each a list of strings (None for NULL)."""
        args = [CLIENT, "--no-defaults", "-S", self.sock, "-u", "root", "-N", "-B",
                "--connect-timeout=5"] + (["-D", database] if database else []) + ["-e", query]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "mariadb %r: %s" % (query, r.stderr)
        return [[None if v == "NULL" else v for v in line.split("\t")]
                for line in r.stdout.splitlines()]

    def scalar(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None

    def setup_database(self):
        self.sql("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4" % DATABASE, database=None)
        self.sql("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'" % (USER, PASSWORD),
                 database=None)
        self.sql("GRANT ALL ON %s.* TO '%s'@'%%'" % (DATABASE, USER), database=None)
        return self

    def stop(self):
        """A clean shutdown (SIGTERM), bounded."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def remove(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self):
        """archive.<name>.server for hamqttd."""
        return "127.0.0.1:%d" % self.port


@pytest.fixture(scope="module")
def mariadb():
    """An installed and started MariaDBServer with DATABASE and USER, one per
    test module (installing takes seconds): tests use their own tables, and
    one that stops the server starts it again."""
    if not available():  # a failure under CI=true (conftest)
        pytest.skip("MariaDB: mariadb-server not installed (scripts/deps.sh)")
    m = MariaDBServer()
    try:
        m.install().start().setup_database()
        yield m
    finally:
        m.remove()


def wait_rows(m, query, want, timeout=30.0):
    """Wait until scalar(query) == want (a string); the last value seen."""
    seen = [None]

    def ok():
        try:
            seen[0] = m.scalar(query)
        except AssertionError as e:  # the archive has not made its table yet
            seen[0] = str(e).splitlines()[-1]
        return seen[0] == want
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return seen[0]
        time.sleep(0.2)
    return seen[0]
