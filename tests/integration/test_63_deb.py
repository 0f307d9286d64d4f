"""63 the Debian package (issue 12, item 3; docs/architecture/packaging.md):

  - `make deb` builds build/hamqtt_<version>_<arch>.deb and lintian finds no
    error in it (the warnings left are overridden, each with its why);
  - `dpkg -i` installs it: the binaries, the conffiles, the unit, the system
    user hamqtt (no shell), /var/lib/hamqtt 0750 hamqtt:hamqtt, a random
    node.cookie in /etc/hamqtt/hamqtt.env (root 0600, never the public one);
  - the unit's ExecStart runs as hamqtt (setpriv: the unit's User, Group,
    empty CapabilityBoundingSet, NoNewPrivileges) with the unit's
    EnvironmentFile, inside a network namespace made here (so the packaged
    ports 1883 / 18083 cannot collide with the rest of the suite), on the
    packaged configuration UNCHANGED (no --set, no HAMQTT_* beyond the env
    file); the operator's steps only: a user made with the installed
    hamqtt-passwd (which must keep /etc/hamqtt/passwd readable by hamqtt)
    and an ACL line. An anonymous client is refused, the user's QoS 1 round
    trip works (mosquitto_pub/sub), /api/v5/status answers 200, SIGTERM stops
    it with status 0;
  - `dpkg --purge` leaves nothing (files, /etc/hamqtt, /var/lib/hamqtt, the
    unit's enablement); the system user stays (Debian's policy for system
    users: docs/operator/packages.md);
and that the shipped unit passes `systemd-analyze verify` (no systemd needs
to run for it).

Every dpkg call holds dpkg's frontend lock (as apt does; DPKG_FRONTEND_LOCKED
tells dpkg so), waiting while another apt/dpkg runs, and the whole test holds
/run/lock/hamqtt-test-deb.lock (two runs of this file must not install the
same package at once). The package is purged in a finally, whatever failed.
Plain pass only (conftest.py PLAIN_PASS_ONLY): the package is made from the
plain build."""

import contextlib
import fcntl
import grp
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import netns
from conftest import REPO, broker_env, require
from mqttraw import T

PKG = "hamqtt"
UNIT = os.path.join(REPO, "packaging", "hamqtt.service")
LOCK = "/run/lock/hamqtt-test-deb.lock"
DPKG_LOCK = "/var/lib/dpkg/lock-frontend"
DEFAULT_COOKIE = "hamqttsecretcookie"
USER, PASSWORD = "debtester", "deb-test-pw-1234"
# what the package installs (the test checks each, then that purge removed it)
FILES = ("/usr/sbin/hamqttd", "/usr/bin/hamqtt-ctl", "/usr/bin/hamqtt-passwd",
         "/usr/bin/hamqtt-bench", "/etc/hamqtt/hamqtt.conf", "/etc/hamqtt/acl",
         "/lib/systemd/system/hamqtt.service", "/etc/logrotate.d/hamqtt",
         "/usr/share/doc/hamqtt/copyright", "/usr/share/doc/hamqtt/changelog.gz",
         "/usr/share/man/man8/hamqttd.8.gz")
WANTS = "/etc/systemd/system/multi-user.target.wants/hamqtt.service"


def _why_not():
    if os.geteuid() != 0:
        return "needs root (dpkg -i, a system user, ip netns)"
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "lintian", "mosquitto_sub", "setpriv"):
        if not shutil.which(tool):
            return "%s not found (scripts/deps.sh)" % tool
    return netns.unavailable_reason()


def version():
    with open(os.path.join(REPO, "src", "core", "version.h")) as f:
        return re.search(r'#define HAMQTT_VERSION "([^"]+)"', f.read()).group(1)


def run(cmd, timeout=60, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=T(timeout),
                       stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s -> %d\n%s\n%s" % (" ".join(cmd), r.returncode,
                                                   r.stdout[-3000:], r.stderr[-3000:]))
    return r


@contextlib.contextmanager
def flock(path, timeout, exclusive_fcntl=False):
    """Hold a lock on path, waiting at most timeout seconds. fcntl (lockf)
    locks for dpkg's own lock files (dpkg and apt use fcntl), flock for ours."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        end = time.monotonic() + T(timeout)
        while True:
            try:
                if exclusive_fcntl:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > end:
                    raise AssertionError("%s still locked after %d s" % (path, timeout))
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)  # releases either lock


def dpkg(*args, check=True):
    """dpkg ARGS under dpkg's frontend lock, waiting (bounded) for any apt or
    dpkg another test or helper runs."""
    with flock(DPKG_LOCK, 600, exclusive_fcntl=True):
        env = dict(os.environ, DPKG_FRONTEND_LOCKED="1", DEBIAN_FRONTEND="noninteractive")
        return run(["dpkg"] + list(args), timeout=300, check=check, env=env)


def installed():
    r = run(["dpkg-query", "-W", "-f=${Status}", PKG], check=False)
    return r.returncode == 0 and "install ok installed" in r.stdout


def unit_value(text, key):
    vals = re.findall(r"^%s=(.*)$" % re.escape(key), text, re.M)
    assert vals, "%s= not in the unit" % key
    return vals[-1].strip()


def env_file(path):
    """A systemd EnvironmentFile: KEY=VALUE lines, # comments."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k.strip()] = v.strip()
    return env


def owner(path):
    st = os.stat(path)
    return (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
            stat.S_IMODE(st.st_mode))


def http_status(ns):
    with netns.entered(ns):
        with urllib.request.urlopen("http://127.0.0.1:18083/api/v5/status",
                                    timeout=T(3)) as r:
            return r.status, json.loads(r.read().decode())


def login_status(ns, password):
    req = urllib.request.Request(
        "http://127.0.0.1:18083/api/v5/login", method="POST",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"})
    with netns.entered(ns):
        try:
            with urllib.request.urlopen(req, timeout=T(5)) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code


def wait_up(ns, proc, log):
    end = time.monotonic() + T(30)
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError("hamqttd exited with %s:\n%s" % (proc.returncode, log()))
        try:
            code, body = http_status(ns)
            if code == 200:
                return body
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("hamqttd not up within 30 s:\n%s" % log())


def mqtt(ns, tool, *args):
    """argv of a mosquitto client run inside namespace ns (line-buffered: its
    -d lines are read while it runs)."""
    return netns.exec_prefix(ns) + ["stdbuf", "-oL", tool, "-h", "127.0.0.1", "-p", "1883"] + \
        list(args)


def qos1_round_trip(ns):
    creds = ["-u", USER, "-P", PASSWORD]
    sub = subprocess.Popen(mqtt(ns, "mosquitto_sub", *creds, "-V", "mqttv5", "-i", "deb-sub",
                                "-t", "deb/t", "-q", "1", "-C", "1", "-W", str(int(T(20))),
                                "-d"),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        end = time.monotonic() + T(15)
        while time.monotonic() < end:  # -d prints the SUBACK: subscribed
            line = sub.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "SUBACK" in line:
                break
        assert any("SUBACK" in s for s in seen), "no SUBACK: %s" % "".join(seen)
        run(mqtt(ns, "mosquitto_pub", *creds, "-V", "mqttv5", "-i", "deb-pub", "-t", "deb/t",
                 "-q", "1", "-m", "hello-deb"), timeout=20)
        out, _ = sub.communicate(timeout=T(20))
        seen.append(out)
        assert sub.returncode == 0, "".join(seen)
        assert "hello-deb" in out, "".join(seen)
        # QoS 1 on both legs: the broker's PUBLISH to the subscriber carried q1
        assert re.search(r"received PUBLISH \(d0, q1", out), "".join(seen)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


def check_installed():
    for f in FILES:
        assert os.path.exists(f), f
    u = pwd.getpwnam("hamqtt")
    assert u.pw_dir == "/var/lib/hamqtt" and u.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert u.pw_uid < 1000, "not a system user: uid %d" % u.pw_uid
    assert owner("/var/lib/hamqtt") == ("hamqtt", "hamqtt", 0o750)
    assert owner("/etc/hamqtt/hamqtt.env") == ("root", "root", 0o600)
    cookie = env_file("/etc/hamqtt/hamqtt.env").get("HAMQTT_NODE__COOKIE", "")
    assert re.fullmatch(r"[0-9a-f]{64}", cookie) and cookie != DEFAULT_COOKIE, cookie
    assert owner("/etc/hamqtt/passwd") == ("root", "hamqtt", 0o640)
    assert owner("/etc/hamqtt/dashboard.pass") == ("root", "hamqtt", 0o640)
    assert len(open("/etc/hamqtt/dashboard.pass").readline().strip()) >= 8
    assert os.path.islink(WANTS), "the unit was not enabled (deb-systemd-helper)"
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
    for f in ("/etc/hamqtt/hamqtt.conf", "/etc/hamqtt/acl", "/etc/logrotate.d/hamqtt"):
        assert f in conffiles, conffiles
    for f in ("/usr/sbin/hamqttd", "/usr/bin/hamqtt-ctl"):
        assert owner(f) == ("root", "root", 0o755)


def check_purged():
    assert not installed()
    left = [f for f in FILES + ("/etc/hamqtt", "/var/lib/hamqtt", "/var/log/hamqtt", WANTS)
            if os.path.lexists(f)]
    left += [f for f in os.listdir("/var/lib/systemd/deb-systemd-helper-enabled")
             if f.startswith("hamqtt")] \
        if os.path.isdir("/var/lib/systemd/deb-systemd-helper-enabled") else []
    assert left == [], "left after purge: %s" % left
    pwd.getpwnam("hamqtt")  # the system user stays (packages.md)


def run_packaged(ns, logpath):
    """The unit's ExecStart as its User= and Group=, with its
    EnvironmentFile=, UMask=, WorkingDirectory (/, systemd's default), empty
    CapabilityBoundingSet= and NoNewPrivileges=, in namespace ns. setpriv
    (util-linux, runuser's sibling) rather than runuser: it execs hamqttd
    itself, as systemd does, so the process is the unit's main process (no
    PAM session parent in between) and the bounding set is dropped too."""
    with open("/lib/systemd/system/hamqtt.service") as f:
        unit = f.read()
    argv = unit_value(unit, "ExecStart").split()
    user, group = unit_value(unit, "User"), unit_value(unit, "Group")
    assert unit_value(unit, "CapabilityBoundingSet") == ""
    assert unit_value(unit, "NoNewPrivileges") == "yes"
    envf = unit_value(unit, "EnvironmentFile").lstrip("-")
    umask = int(unit_value(unit, "UMask"), 8)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    env.update(env_file(envf))
    log = open(logpath, "w")
    try:
        setpriv = ["setpriv", "--reuid", user, "--regid", group, "--init-groups",
                   "--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all", "--"]
        return subprocess.Popen(netns.exec_prefix(ns) + setpriv + argv,
                                env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                preexec_fn=lambda: os.umask(umask))
    finally:
        log.close()


@require(_why_not(), "the .deb test")
def test_deb_builds_installs_runs_and_purges(tmp_path):
    with flock(LOCK, 900):
        if installed():  # left by a run that was killed before its finally
            dpkg("--purge", PKG)
        # make deb: the plain build (no sanitizer), then the package
        env = {k: v for k, v in os.environ.items() if k not in ("SAN", "BUILD", "MAKEFLAGS")}
        r = run(["make", "-s", "deb"], timeout=900, cwd=REPO, env=env)
        deb = r.stdout.strip().splitlines()[-1]
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        assert deb == "build/hamqtt_%s_%s.deb" % (version(), arch), r.stdout
        deb = os.path.join(REPO, deb)
        info = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
        for lib in ("libssl3", "libmicrohttpd12", "liblmdb0", "libhiredis0.14", "libwslay1",
                    "libjwt", "libcjson1", "libcurl4", "zlib1g", "adduser"):
            assert lib in info, "Depends lacks %s: %s" % (lib, info)

        # lintian as root warns about it; --fail-on error: exit 1 on any E:
        lint = run(["lintian", "--fail-on", "error", "--allow-root", "--no-tag-display-limit",
                    deb], timeout=300, check=False)
        errors = [ln for ln in lint.stdout.splitlines() if ln.startswith("E:")]
        assert lint.returncode == 0 and not errors, lint.stdout + lint.stderr

        ns = "hqdeb%x" % os.getpid()
        proc = None
        logpath = str(tmp_path / "hamqttd.log")

        def log():
            with open(logpath, errors="replace") as f:
                return f.read()[-4000:]
        try:
            dpkg("-i", deb)
            check_installed()

            # the operator's steps (docs/operator/packages.md): a user, an ACL line
            run(["/usr/bin/hamqtt-passwd", "-b", "/etc/hamqtt/passwd", USER, PASSWORD])
            assert owner("/etc/hamqtt/passwd") == ("root", "hamqtt", 0o640), \
                "hamqtt-passwd did not keep the file's owner and mode"
            with open("/etc/hamqtt/acl", "a") as f:
                f.write("\nuser %s\ntopic readwrite deb/#\n" % USER)

            netns.ip("netns", "add", ns)
            netns.ip("-n", ns, "link", "set", "lo", "up")
            proc = run_packaged(ns, logpath)
            body = wait_up(ns, proc, log)
            assert body.get("version") == version(), body
            # ip netns exec and setpriv exec: proc is hamqttd, as hamqtt, no capability
            with open("/proc/%d/status" % proc.pid) as f:
                status = f.read()
            assert re.search(r"^Name:\s+hamqttd$", status, re.M), status
            assert re.search(r"^Uid:\s+%d\s" % pwd.getpwnam("hamqtt").pw_uid, status, re.M)
            assert re.search(r"^CapBnd:\s+0+$", status, re.M), status
            assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status

            anon = run(mqtt(ns, "mosquitto_pub", "-V", "mqttv5", "-t", "deb/t", "-m", "x"),
                       timeout=20, check=False)
            assert anon.returncode != 0, "an anonymous client was let in"
            qos1_round_trip(ns)
            assert owner("/var/lib/hamqtt/ctl.key")[0] == "hamqtt"
            # the admin paths README.Debian gives: hamqtt-ctl as root, admin's
            # first password from dashboard.pass
            run(netns.exec_prefix(ns) + ["/usr/bin/hamqtt-ctl", "-c", "/etc/hamqtt/hamqtt.conf",
                                         "status"], timeout=20, env=broker_env())
            assert login_status(ns, open("/etc/hamqtt/dashboard.pass").readline().strip()) == 200

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=T(20)) == 0, log()
            assert "stopped" in log()
            proc = None
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            netns.ip("netns", "del", ns, check=False)
            if installed() or os.path.exists("/etc/hamqtt"):
                dpkg("--purge", PKG, check=False)
        check_purged()


def test_unit_file_verifies(tmp_path):
    """systemd-analyze verify on packaging/hamqtt.service, with ExecStart
    pointing at the build's hamqttd when the package is not installed
    (verify checks the binary exists); no systemd needs to run."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze not found (scripts/deps.sh: systemd)")
    with open(UNIT) as f:
        text = f.read()
    binary = os.path.join(REPO, "build", "hamqttd")
    assert os.access(binary, os.X_OK), "no plain build at %s" % binary
    text = text.replace("ExecStart=/usr/sbin/hamqttd", "ExecStart=%s" % binary)
    unit = tmp_path / "hamqtt.service"
    unit.write_text(text)
    r = run(["systemd-analyze", "verify", str(unit)], check=False)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and "hamqtt.service" not in out, out


@require(None if os.geteuid() == 0 else "needs root (chown)", "hamqtt-passwd's ownership")
def test_passwd_keeps_owner_and_mode(tmp_path):
    """hamqtt-passwd run by root on the package's root:hamqtt 0640 file must
    leave it so (it writes a new file and renames it over the old one), or the
    broker (group hamqtt) can no longer read its users after a reload; a new
    file (-c on a missing path) is still 0600."""
    tool = os.path.join(REPO, "build", "hamqtt-passwd")
    f = tmp_path / "passwd"
    f.write_text("")
    os.chown(f, 0, grp.getgrnam("nogroup").gr_gid)
    os.chmod(f, 0o640)
    run([tool, "-b", str(f), "u1", "pw-one-1234"])
    run([tool, "-D", str(f), "u1"])
    run([tool, "-b", str(f), "u2", "pw-two-1234"])
    assert owner(str(f)) == ("root", "nogroup", 0o640)
    assert f.read_text().startswith("u2:$7$")
    fresh = tmp_path / "fresh"
    run([tool, "-b", "-c", str(fresh), "u3", "pw-three-1234"])
    assert owner(str(fresh)) == ("root", "root", 0o600)
