#!/usr/bin/python3
"""
chaos.py - kill brokers under load and count what persistent sessions lost.

    /usr/bin/python3 tests/chaos/chaos.py --store redis --nodes 3 --qos 1 --mqtt 5
    (make chaos: the long variants; make chaos-short: a bounded short one)

Starts N hamqttd nodes (127.0.0.1..N, joined into one cluster; or one node)
with the given session.store, HAProxy in front (config generated from
deploy/haproxy/haproxy.cfg, its health-check timings kept) and, for
--store redis, a redis-server of its own. Then:

  1. --subs subscribers (persistent sessions, fixed client ids) connect
     through HAProxy and subscribe ONCE to chaos/# at --qos; they never
     subscribe again, however they reconnect (a device trusting "session
     present": the session must survive). Publishing starts once all are
     subscribed, so every subscriber must receive every message.
  2. --pubs publishers (persistent sessions too) each publish --rate msg/s
     for --duration s, payload "<publisher>:<sequence>". A message is
     ACKNOWLEDGED when its PUBACK (QoS 1) / PUBCOMP (QoS 2) arrives; paho
     sends unacknowledged ones again after a reconnect.
  3. Every ~--kill-every s a random node (not the one killed last time, if
     there are others) gets SIGKILL, and is started again --restart-after s
     later with the same data dir and ports.
  4. After --duration: no more kills or publishing; drain until every
     acknowledged message reached every subscriber and nothing is pending,
     or --drain s passed (or nothing moved for QUIET s).

Prints per subscriber what it lost and how its connection went (reconnects,
CONNACK session present values, time offline), per kill what happened, and
one summary line:

    CHAOS store=.. nodes=.. qos=.. mqtt=..: sent=.. acked=.. received=..
    lost=.. duplicated=.. -> PASS|FAIL

lost counts deliveries: (acknowledged message, subscriber) pairs that never
arrived; duplicated counts second copies of a message at one subscriber.
Exit status 0 only if lost == 0 and, at QoS 2, duplicated == 0; 1 otherwise
(2: the harness could not run). CHAOS_RECVMAX=N in the environment sets the
nodes' mqtt.receive_maximum (default 128), to study paho's resend bursts.
It also prints the ids of lost and duplicated messages and its own CPU
(all clients share this one process: above 85 % of a core it says
SATURATED, and a slow drain is the harness's, not the broker's).
Every loop is bounded in count and time,
everything listens on loopback, every process started is killed at exit.
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time

import infra
import report
from clients import FIXED, Publisher, Subscriber

QUIET = 10.0            # drain: stop once nothing moved for this long with all clients up
SETUP_TIMEOUT = 60.0    # all subscribers connected and subscribed
HARNESS_CPU_MAX = 0.85  # share of one core above which the harness is the bottleneck
MAX_SEQ = 60000         # paho's packet ids wrap at 65535: keep a run's messages below


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--store", choices=("memory", "local", "redis"), default="memory")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--qos", type=int, choices=(1, 2), default=1)
    ap.add_argument("--mqtt", choices=("3.1.1", "5"), default="3.1.1")
    ap.add_argument("--pubs", type=int, default=20)
    ap.add_argument("--subs", type=int, default=20)
    ap.add_argument("--rate", type=float, default=10.0, help="messages/s per publisher")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--kill-every", type=float, default=10.0)
    ap.add_argument("--restart-after", type=float, default=3.0)
    ap.add_argument("--drain", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--build", default=None, help="directory holding hamqttd (default build/)")
    ap.add_argument("--workers", type=int, default=None,
                    help="node.workers of every node (default: the node's own)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    a = ap.parse_args(argv)
    if not (1 <= a.nodes <= 9 and 1 <= a.pubs <= 500 and 1 <= a.subs <= 500):
        ap.error("--nodes 1..9, --pubs and --subs 1..500")
    if not (0 < a.rate and 0 < a.duration <= 3600 and a.rate * a.duration < MAX_SEQ):
        ap.error("--rate x --duration must stay below %d messages per publisher" % MAX_SEQ)
    if not (0 < a.restart_after < a.kill_every and 0 <= a.drain <= 600):
        ap.error("need 0 < --restart-after < --kill-every and --drain <= 600")
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    return a


class Monkey(threading.Thread):
    """SIGKILLs a random node at about every kill_every s (+-10 %) until
    `until`, restarting it restart_after s later; records what it did."""

    def __init__(self, cl, hp, args, t0):
        super().__init__(daemon=True)
        self.cl, self.hp, self.args, self.t0 = cl, hp, args, t0
        self.rng = random.Random(args.seed)
        self.stop_at = t0 + args.duration
        self.events = []     # one dict per kill, see run()
        self.error = None
        self.halt = threading.Event()

    def watch(self, node, state, until):
        """Poll HAProxy (every 50 ms, until `until`) for node's server to reach
        state (DOWN, or UP); returns the time it did, or None."""
        name = self.hp.name(node)
        while True:
            try:
                if self.hp.servers()[name]["status"] == state:
                    return time.monotonic()
            except (OSError, KeyError):
                pass
            if time.monotonic() >= until:
                return None
            time.sleep(0.05)

    def run(self):
        a = self.args
        k, last = 1, None
        try:
            while k < 10000:
                at = self.t0 + k * a.kill_every + self.rng.uniform(-0.1, 0.1) * a.kill_every
                if at + a.restart_after >= self.stop_at:
                    return
                if self.halt.wait(max(0.0, at - time.monotonic())):
                    return
                # not the node killed last time when there is a choice: restarted,
                # it holds no clients yet (they reconnected elsewhere), so killing
                # it again would test nothing
                victim = self.rng.choice([n for n in self.cl.nodes if n is not last]
                                         or self.cl.nodes)
                last = victim
                t_kill = time.monotonic()
                victim.kill()
                # restart even when halted: every node is up for the drain
                t_down = self.watch(victim, "DOWN", t_kill + a.restart_after)
                self.halt.wait(max(0.0, t_kill + a.restart_after - time.monotonic()))
                t_start = time.monotonic()
                victim.restart()
                ready = time.monotonic() - t_start
                problem = None
                next_kill = at + a.kill_every - 1.0
                if len(self.cl.nodes) > 1:
                    left = max(1.0, next_kill - time.monotonic())
                    try:
                        self.cl.wait_all_running(timeout=min(left, 30.0))
                    except AssertionError as e:
                        problem = "not rejoined: %s" % str(e).splitlines()[0]
                t_up = self.watch(victim, "UP", max(next_kill, time.monotonic() + 1.0))
                self.events.append({"kill": t_kill - self.t0, "node": victim.name,
                                    "down": t_down and t_down - t_kill,
                                    "start": t_start - self.t0, "ready": ready,
                                    "up": t_up and t_up - t_start, "problem": problem})
                k += 1
        except Exception as e:  # a node that does not come back ends the run
            self.error = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def wait_subscribed(subs, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s.subscribed_at is not None for s in subs):
            bad = [s.client_id for s in subs if s.granted not in (1, 2)]
            if bad:
                raise RuntimeError("SUBSCRIBE refused (granted 0x80) for %s" % bad)
            return
        time.sleep(0.05)
    raise RuntimeError("subscribers not subscribed within %.0fs: %s" % (
        timeout, [s.client_id for s in subs if s.subscribed_at is None]))


def load(pubs, args, t0):
    """Publish at args.rate per publisher until t0 + duration (paced on the
    clock: a late tick publishes what it owes, never more than rate x duration)."""
    end = t0 + args.duration
    total = int(args.rate * args.duration)
    while True:
        now = time.monotonic()
        due = min(total, int((now - t0) * args.rate) + 1)
        for p in pubs:
            while p.sent < due:
                p.publish()
            p.sweep()
        if now >= end:
            return
        time.sleep(min(0.05, 1.0 / args.rate))


def missing(subs, pubs):
    """Total (acknowledged message, subscriber) pairs not received yet."""
    return sum(len(p.acked - s.got[p.index]) for s in subs for p in pubs)


def drain(pubs, subs, args):
    """Wait until nothing is missing or pending, args.drain passes, or
    nothing moved for QUIET s with every client connected. Returns why it ended."""
    start = time.monotonic()
    last_move, last = start, None
    while True:
        for p in pubs:
            p.sweep()
        miss = missing(subs, pubs)
        pending = sum(len(p.pending) for p in pubs)
        if miss == 0 and pending == 0:
            return "all arrived after %.1fs" % (time.monotonic() - start)
        state = (miss, pending, sum(s.received + s.duplicates for s in subs))
        now = time.monotonic()
        if state != last:
            last, last_move = state, now
        if now - start >= args.drain:
            return "timeout %.0fs (%d deliveries missing, %d messages unacknowledged)" % (
                args.drain, miss, pending)
        if now - last_move >= QUIET and all(c.up for c in pubs + subs):
            return "nothing moved for %.0fs after %.1fs (%d missing, %d unacknowledged)" % (
                QUIET, now - start, miss, pending)
        time.sleep(0.5)


def main(argv):
    args = parse_args(argv)
    if args.build:
        os.environ["HAMQTT_BUILD"] = os.path.abspath(args.build)
    version = 5 if args.mqtt == "5" else 4
    workdir = tempfile.mkdtemp(prefix="hamqtt-chaos-")
    reaper = infra.Reaper()
    label = "store=%s nodes=%d qos=%d mqtt=%s" % (args.store, args.nodes, args.qos, args.mqtt)
    print("chaos %s pubs=%d subs=%d rate=%g duration=%g kill-every=%g restart-after=%g "
          "seed=%d dir=%s" % (label, args.pubs, args.subs, args.rate, args.duration,
                              args.kill_every, args.restart_after, args.seed, workdir),
          flush=True)
    try:
        cl, hp, _redis = infra.start(workdir, reaper, args.store, args.nodes,
                                          args.workers)
    except Exception as e:
        print("CHAOS %s: could not start: %s -> ERROR (logs in %s)" % (label, e, workdir))
        return 2
    subs = [Subscriber(i, hp.port, version, args.qos, args.pubs) for i in range(args.subs)]
    pubs = [Publisher(i, hp.port, version, args.qos) for i in range(args.pubs)]
    reaper.add("mqtt clients", lambda: [c.c.loop_stop() for c in subs + pubs])
    for c in subs:
        c.start()
    try:
        wait_subscribed(subs, SETUP_TIMEOUT)
    except RuntimeError as e:
        print("CHAOS %s: %s -> ERROR (logs in %s)" % (label, e, workdir))
        return 2
    for p in pubs:
        p.start()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    monkey = Monkey(cl, hp, args, t0)
    monkey.start()
    load(pubs, args, t0)
    t_load = time.monotonic()
    monkey.halt.set()
    monkey.join(timeout=60)
    for n in cl.nodes:   # every node up for the drain, whatever the monkey managed
        if not n.alive():
            n.restart()
    why = drain(pubs, subs, args)
    t_end = time.monotonic()
    cpu = (time.process_time() - cpu0) / max(t_end - t0, 1e-3)
    for c in subs + pubs:
        c.stop()
    ok = report.print_report(label, args, pubs, subs, monkey,
                             infra.closed_connections(hp), (t0, t_load, t_end), why)
    # every client lives in this one Python process: if it ran out of CPU,
    # a slow drain says more about the harness than about the broker
    print("harness: this process used %.0f%% of a core during load and drain%s" % (
        cpu * 100, " - SATURATED: lower --rate, --pubs or --subs" if cpu > HARNESS_CPU_MAX else ""))
    if FIXED["pubrel_kept"]:
        print("harness: %d QoS 2 message(s) kept in the PUBREL state that paho 1.x would have "
              "published again (clients.py)" % FIXED["pubrel_kept"])
    problems = [] if monkey.error is None else ["kill/restart: " + monkey.error]
    problems += cl.teardown()   # SIGTERM: every node must exit 0, no sanitizer report
    for p in problems:
        print("problem: %s" % p)
    if ok and not problems and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print("logs: %s (node*/hamqttd.log, hp/haproxy.log)" % workdir)
    return 0 if ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
