"""65 the rolling upgrade of docs/upgrading.md, with two builds: the previous
release (OLD_COMMIT, main before issue 12, same cluster protocol 5 and store
formats) built from `git archive` into <build>/upgrade-from-<commit>/ (kept
there: built once per build directory), and the build under test.

Three old nodes share a Redis session store (the guide's setup) and form a
cluster; two persistent sessions (QoS 1 subscribers on nodes 3 and 1) go
offline so that messages queue for them; a retained message is set; a QoS 1
publisher sends at a bounded rate (50/s) through whichever nodes are up, and
notes every message the broker acknowledged. Then node by node: SIGTERM (exit
0), restart from the new binary with the same configuration and data_dir,
wait until every node lists every node running. At the end both sessions are
resumed (session present) and receive every acknowledged message (none lost),
the retained message is on every node, and no node logged a refused link.

Run only in the plain pass (conftest: PLAIN_ONLY): it builds a whole tree."""

import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import REPO, build_dir, require
from mqttraw import PUBLISH, T
from redisfx import REDIS, redis  # noqa: F401 (the fixture)

OLD_COMMIT = "48f27ac"
RATE = 50          # messages per second, at most
MAX_MESSAGES = 3000


def old_hamqttd():
    """hamqttd of OLD_COMMIT, built once into <build>/upgrade-from-OLD_COMMIT."""
    dest = os.path.join(build_dir(), "upgrade-from-" + OLD_COMMIT)
    binary = os.path.join(dest, "build", "hamqttd")
    if os.access(binary, os.X_OK):
        return binary
    r = subprocess.run(["git", "-C", REPO, "cat-file", "-e", OLD_COMMIT + "^{commit}"],
                       capture_output=True)
    if r.returncode != 0:
        pytest.fail("the repository lacks commit %s, the build to upgrade from (a shallow "
                    "clone? CI must clone with history, e.g. fetch-depth: 0)" % OLD_COMMIT)
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    archive = subprocess.Popen(["git", "-C", REPO, "archive", OLD_COMMIT], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", tmp], stdin=archive.stdout, check=True)
    assert archive.wait() == 0, "git archive %s failed" % OLD_COMMIT
    # a plain build whatever make invoked us (make SAN=... passes its variables on)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SAN", "BUILD")}
    # only hamqttd, unoptimised (CFLAGS from the environment: the old Makefile's
    # `CFLAGS ?=` takes it and appends its own): half the CPU of `make all`,
    # which CI pays once
    env["CFLAGS"] = "-O0 -g0"
    r = subprocess.run(["make", "-j2", "build/hamqttd"], cwd=tmp, env=env, capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, "building %s failed:\n%s" % (OLD_COMMIT, r.stdout[-3000:] + r.stderr[-3000:])
    os.rename(tmp, dest)
    return binary


class Publisher(threading.Thread):
    """QoS 1 publishes on up/load, one connection per node, round robin over
    the nodes that are up; acked: the payloads the broker acknowledged."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.down = set()      # indexes of nodes being upgraded: not used
        self.acked = []
        self.where = {}        # payload -> (node number, seconds since start, nodes down)
        self.t0 = time.monotonic()
        self.failed = 0
        self.stop = threading.Event()
        self.conns = {}

    def conn(self, i):
        c = self.conns.get(i)
        if c is None:
            c = self.nodes[i].raw()
            c.connect("up-pub-%d" % i)
            self.conns[i] = c
        return c

    def run(self):
        k = 0
        while not self.stop.is_set() and k < MAX_MESSAGES:
            i = k % len(self.nodes)
            k += 1
            if i in self.down or not self.nodes[i].alive():
                continue
            payload = b"m-%d" % k
            try:
                self.conn(i).publish("up/load", payload, qos=1)
                self.acked.append(payload)
                self.where[payload] = (i + 1, round(time.monotonic() - self.t0, 2),
                                       sorted(d + 1 for d in self.down))
            except Exception:  # the node went away mid-flow: not acknowledged
                self.failed += 1
                c = self.conns.pop(i, None)
                if c:
                    c.close()
            time.sleep(1.0 / RATE)
        for c in self.conns.values():
            c.close()


def drain_until(c, want, timeout):
    """PUBLISH payloads received (and acked) until every one of want is seen."""
    got = set()
    deadline = time.monotonic() + T(timeout)
    while not want <= got and time.monotonic() < deadline:
        p = c.try_recv(0.3)
        if p is not None and p.type == PUBLISH:
            got.add(bytes(p.payload))
            c.ack(p)
    return got


@require(None if REDIS else "redis-server not installed", "the redis store")
def test_rolling_upgrade_from_previous_build(redis, cluster):  # noqa: F811
    old = old_hamqttd()
    cl = cluster(3, {"session.store": "redis",
                     "session.redis.server": "127.0.0.1:%d" % redis.port}, binary=old)
    n1, n2, n3 = cl.nodes
    assert all(n.proc.args[-3] == old for n in cl.nodes), "not started from the old build"
    cl.join_all()
    cl.wait_all_running()

    for name, node in (("up-sess-a", n3), ("up-sess-b", n1)):
        s = node.raw()
        s.connect(name, clean=False)
        s.subscribe("up/#", qos=1)
        s.disconnect()
    r = n2.raw()
    r.connect("up-retainer")
    r.publish("up/retained", b"kept", qos=1, retain=True)
    r.disconnect()

    pub = Publisher(cl.nodes)
    pub.start()
    try:
        time.sleep(1.0)
        for i, n in enumerate(cl.nodes):
            pub.down.add(i)
            assert n.stop() == 0, "%s did not stop cleanly:\n%s" % (n.name, n.log_tail())
            n.binary = None  # the build under test, same config and data_dir
            n.restart()
            pub.down.discard(i)
            cl.wait_all_running(timeout=20.0)
            time.sleep(1.0)  # publishes through the upgraded node
    finally:
        pub.stop.set()
        pub.join(timeout=T(10))
    assert len(pub.acked) >= 100, "too few publishes acknowledged: %d (failed %d)" % (
        len(pub.acked), pub.failed)
    assert all(n.proc.args[-3] != old for n in cl.nodes)

    want = set(pub.acked)
    for name, node in (("up-sess-a", n1), ("up-sess-b", n2)):
        c = node.raw()
        ack = c.connect(name, clean=False)
        assert ack.session_present, "%s: session lost in the upgrade" % name
        got = drain_until(c, want, timeout=30.0)
        lost = want - got
        assert not lost, "%s: %d of %d acknowledged messages lost, e.g. %s" % (
            name, len(lost), len(want), ["%s (published on node %d at %.2f s, node(s) %s "
                                         "being upgraded)" % ((m.decode(),) + tuple(pub.where[m]))
                                         for m in sorted(lost)[:5]])
        c.disconnect()

    for n in cl.nodes:
        c = n.raw()
        c.connect("up-check-%d" % n.index)
        c.subscribe("up/retained", qos=1)
        p = c.publishes(1, timeout=5.0)[0]
        assert bytes(p.payload) == b"kept" and p.retain, "%s lost the retained message" % n.name
        c.disconnect()
    for n in cl.nodes:
        # ("busy" is two nodes dialing each other at once: one link is kept)
        refused = n.log_lines(r"refused the link: (?!busy)")
        assert not refused, "%s: %s" % (n.name, refused)
