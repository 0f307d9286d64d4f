"""
netns.py - network namespaces for partition tests (test_23_partition.py).

A Lab is a small private network: one namespace per node, each with one end
of a veth pair (address 10.x.y.i/24), the other end plugged into a bridge that
lives in a hub namespace of its own. Nothing is created in (or routed through)
the root namespace: every interface is created directly inside its namespace,
and the nodes have no route but their /24. Names are unique per test (pid +
counter; interface names stay under 16 characters).

    lab = Lab(3)           # created at once; lab.addrs, lab.node_ns
    lab.cut(3)             # hub side of node 3's veth down: node 3 is isolated
    lab.heal(3)            # and back
    with entered(lab.node_ns[0]):
        ...                # sockets created here belong to node 1's namespace
    lab.teardown()         # always (a finally / fixture teardown): [] or problems

Namespaces left by a run that was killed before its teardown (creator pid
gone, nobody inside) are removed when the next Lab is made.

Cutting the hub end (not the node end) keeps each node's own address usable
inside its namespace (the node's veth only loses carrier), so clients running
next to a node keep reaching it during a partition.

Clients run in a node's namespace through entered(): setns(2) on the calling
thread only, restored on exit; threads started inside the block (paho's loop)
stay in that namespace, which is what a client of that node wants.
"""

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import time

from mqttraw import T

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count(1)
_available = None


def ip(*args, timeout=10.0, check=True):
    """Run `ip ARGS...` (bounded); returns the CompletedProcess, raising
    RuntimeError with its stderr when check and it fails."""
    cmd = ["ip"] + [str(a) for a in args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=T(timeout),
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError("%s: timed out" % " ".join(cmd))
    if check and r.returncode != 0:
        raise RuntimeError("%s -> %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


def unavailable_reason():
    """None if this process can make network namespaces, else why not (for
    pytest.skip). Probed once per process: a namespace is created and removed."""
    global _available
    if _available is not None:
        return _available or None
    if os.geteuid() != 0:
        _available = "needs root to create network namespaces (ip netns)"
    elif not shutil.which("ip"):
        _available = "iproute2 `ip` not found (apt-get install iproute2)"
    else:
        probe = "hqprobe%x" % os.getpid()
        try:
            ip("netns", "add", probe)
            ip("-n", probe, "link", "add", "hqprobe0", "type", "bridge")
            _available = ""
        except RuntimeError as e:
            _available = "cannot create network namespaces here: %s" % e
        finally:
            ip("netns", "del", probe, check=False)
    return _available or None


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


@contextlib.contextmanager
def entered(ns):
    """Run the block with the calling thread in network namespace ns (None:
    no change). Sockets keep the namespace they were created in."""
    if ns is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open("/run/netns/%s" % ns, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)  # must not fail; if it does, this thread is unusable: raise
    finally:
        os.close(own)


def exec_prefix(ns):
    """The argv prefix that runs a program in namespace ns (pid unchanged:
    `ip netns exec` execs the program itself)."""
    return ["ip", "netns", "exec", ns] if ns else []


_TAG_RX = re.compile(r"^hq([0-9a-f]{6})[0-9a-f]{2}-(hub|n\d+)$")


def sweep_stale():
    """Remove namespaces an earlier, killed test run left behind: named by
    this module, created by a process that no longer exists, with no process
    inside (nothing is killed here)."""
    for name in ip("netns", "list", check=False).stdout.split():
        mt = _TAG_RX.match(name)
        if not mt:
            continue
        try:
            os.kill(int(mt.group(1), 16), 0)
            continue  # its creator still runs (or the pid was reused): not ours to judge
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        if not ip("netns", "pids", name, check=False).stdout.split():
            ip("netns", "del", name, check=False)


class Lab:
    """n node namespaces on one bridge; see the module docstring."""

    def __init__(self, n):
        pid = os.getpid()
        k = next(_counter)
        self.n = n
        self.tag = "hq%06x%02x" % (pid & 0xFFFFFF, k & 0xFF)  # 10 characters
        self.subnet = "10.%d.%d" % (100 + pid % 150, (pid // 150 + k) & 0xFF)
        self.hub = self.tag + "-hub"
        self.bridge = self.tag + "br"                                     # 12
        self.node_ns = ["%s-n%d" % (self.tag, i) for i in range(1, n + 1)]
        self.hub_if = ["%sh%d" % (self.tag, i) for i in range(1, n + 1)]  # 12-13
        self.node_if = ["%sn%d" % (self.tag, i) for i in range(1, n + 1)]
        self.addrs = ["%s.%d" % (self.subnet, i) for i in range(1, n + 1)]
        self.created = []  # namespaces, in creation order
        sweep_stale()
        try:
            self._build()
        except Exception:
            self.teardown()
            raise

    def _add_ns(self, name):
        ip("netns", "add", name)
        self.created.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _build(self):
        self._add_ns(self.hub)
        ip("-n", self.hub, "link", "add", self.bridge, "type", "bridge", "forward_delay", "0")
        ip("-n", self.hub, "link", "set", self.bridge, "up")
        for i in range(self.n):
            ns, hif, nif = self.node_ns[i], self.hub_if[i], self.node_if[i]
            self._add_ns(ns)
            ip("-n", self.hub, "link", "add", hif, "type", "veth", "peer", "name", nif,
               "netns", ns)
            ip("-n", self.hub, "link", "set", hif, "master", self.bridge)
            ip("-n", self.hub, "link", "set", hif, "up")
            ip("-n", ns, "addr", "add", "%s/24" % self.addrs[i], "dev", nif)
            ip("-n", ns, "link", "set", nif, "up")
        for i in range(self.n):
            self.wait_carrier(i + 1, True)

    # -- partitions --

    def cut(self, i):
        """Isolate node i (1-based): its veth's hub end goes down."""
        ip("-n", self.hub, "link", "set", self.hub_if[i - 1], "down")
        self.wait_carrier(i, False)

    def heal(self, i):
        ip("-n", self.hub, "link", "set", self.hub_if[i - 1], "up")
        self.wait_carrier(i, True)

    def carrier(self, i):
        """True if node i's veth has carrier (LOWER_UP)."""
        r = ip("-n", self.node_ns[i - 1], "-br", "link", "show", self.node_if[i - 1])
        flags = r.stdout.split("<", 1)[-1]
        return "LOWER_UP" in flags and "NO-CARRIER" not in flags

    def wait_carrier(self, i, up, timeout=5.0):
        deadline = time.monotonic() + T(timeout)
        while self.carrier(i) != up:
            if time.monotonic() > deadline:
                raise RuntimeError("%s: carrier still %s after %.1fs"
                                   % (self.node_if[i - 1], not up, T(timeout)))
            time.sleep(0.02)

    # -- cleanup --

    def leftovers(self):
        """Our namespaces still present, and interfaces with our tag in the
        root namespace (there never should be any)."""
        left = []
        names = ip("netns", "list", check=False).stdout.split()
        left += [ns for ns in self.created + [self.hub] + self.node_ns if ns in names]
        links = ip("-br", "link", check=False).stdout
        left += [ln.split()[0] for ln in links.splitlines() if ln.startswith(self.tag)]
        return sorted(set(left))

    def teardown(self):
        """Remove everything (processes still inside our namespaces, which can
        only be ones this test started, are killed by pid first). Returns a
        list of problems; [] when clean. Idempotent."""
        problems = []
        for ns in reversed(self.created):
            r = ip("netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                    problems.append("process %s was still running in %s" % (pid, ns))
                except (ProcessLookupError, ValueError):
                    pass
            r = ip("netns", "del", ns, check=False)
            if r.returncode != 0:
                problems.append("ip netns del %s: %s" % (ns, r.stderr.strip()))
        self.created = []
        deadline = time.monotonic() + T(5)
        left = self.leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.leftovers()
        if left:
            problems.append("left behind: %s" % ", ".join(left))
        return problems

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        problems = self.teardown()
        if problems and exc[0] is None:
            raise AssertionError("netns cleanup: " + "; ".join(problems))
        return False
