"""
pgsql.py - a real PostgreSQL server for the integration suite (the message
archive, issue 12; reused by the docs' tests): PgServer runs Debian's
postgres binary from its own temporary directory on a free loopback port,
as the unprivileged `postgres` user (postgres refuses root), with a user and
password the broker logs in with over TCP (scram-sha-256), and the `pgsql`
fixture kills it at teardown (a finalizer: no server outlives its test).

    pg = PgServer().init().start()      # pg.port, pg.user, pg.password, pg.database
    pg.sql("SELECT count(*) FROM mqtt_messages")  -> [["42"]]
    pg.stop(); pg.start()               # an outage: fast shutdown, then back
    pg.destroy()

fsync is off: the tests stop the server cleanly or not at all, never the
machine, so what it committed survives a stop; it only saves disk time on a
loaded machine.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import free_port, wait_until


def _bindir():
    for d in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"):
        if os.access(os.path.join(d, "postgres"), os.X_OK):
            return d
    return None


BINDIR = _bindir()


def why_not():
    """None when a PostgreSQL server can run here, else the reason."""
    if not BINDIR:
        return "postgresql is not installed (scripts/deps.sh installs it)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    if os.geteuid() != 0:
        return "needs root (to run postgres as the postgres user)"
    return None


class PgServer:
    """One postgres on 127.0.0.1:port, its cluster in a fresh directory."""

    def __init__(self, user="hamqtt", password="arch1ve-pw", database="archive"):
        self.user, self.password, self.database = user, password, database
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="hamqtt-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.proc = None
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)

    def _as_postgres(self, argv, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + argv, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=120, **kw)

    def init(self):
        self._as_postgres([os.path.join(BINDIR, "initdb"), "-D", self.data, "-U", "postgres",
                           "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                           "--no-sync", "--locale=C.UTF-8"])
        return self

    def start(self):
        # free_port() only picked a port nobody held then: another test can
        # take it before postgres binds. The first start moves to another
        # port then (a restart keeps its port: a broker's config names it).
        for attempt in range(5):
            seen = os.path.getsize(self.log) if os.path.exists(self.log) else 0
            try:
                return self._start()
            except AssertionError:
                with open(self.log, errors="replace") as f:
                    f.seek(seen)
                    this_try = f.read()
                if getattr(self, "_made", False) or attempt == 4 or \
                        "Address already in use" not in this_try:
                    raise
                self.port = free_port()

    def _start(self):
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                ["runuser", "-u", "postgres", "--", os.path.join(BINDIR, "postgres"),
                 "-D", self.data, "-p", str(self.port), "-h", "127.0.0.1", "-k", self.dir,
                 "-c", "fsync=off", "-c", "full_page_writes=off",
                 "-c", "shared_buffers=64MB", "-c", "max_connections=40"],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            logf.close()
        wait_until(self._ready, 30, 0.1, "postgres answering on %d" % self.port)
        if not getattr(self, "_made", False):
            self.sql("CREATE USER %s PASSWORD '%s'" % (self.user, self.password), db="postgres")
            self.sql("CREATE DATABASE %s OWNER %s" % (self.database, self.user), db="postgres")
            self._made = True
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("postgres exited with %s:\n%s" % (self.proc.returncode,
                                                                    self.log_tail()))
        r = subprocess.run([os.path.join(BINDIR, "pg_isready"), "-h", self.dir, "-p",
                            str(self.port)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def sql(self, query, db=None):
        """Run query through the local socket as postgres; rows as lists of text."""
        r = self._as_postgres([os.path.join(BINDIR, "psql"), "-h", self.dir, "-p", str(self.port),
                               "-U", "postgres", "-d", db or self.database, "-X", "-A", "-t",
                               "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", query])
        out = r.stdout.decode()
        return [line.split("\x1f") for line in out.splitlines() if line != ""]

    def count(self, table="mqtt_messages", where="TRUE"):
        try:
            return int(self.sql("SELECT count(*) FROM %s WHERE %s" % (table, where))[0][0])
        except subprocess.CalledProcessError as e:
            if b"does not exist" in e.stdout:
                return 0
            raise

    def stop(self):
        """Fast shutdown (SIGINT): committed transactions stay."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def destroy(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def archive_keys(self, name="pg", **more):
        """The archive.<name>.* overrides of a broker that writes here."""
        keys = {
            "archive.%s.backend" % name: "postgresql",
            "archive.%s.server" % name: "127.0.0.1:%d" % self.port,
            "archive.%s.database" % name: self.database,
            "archive.%s.username" % name: self.user,
            "archive.%s.password" % name: self.password,
        }
        for k, v in more.items():
            # quoted: a '#' in a filter would start a comment
            keys["archive.%s.%s" % (name, k)] = '"%s"' % v if k == "topics" else v
        return keys


@pytest.fixture
def pgsql(request):
    """A started PgServer, killed and removed at teardown."""
    pg = PgServer()
    request.addfinalizer(pg.destroy)
    return pg.init().start()
