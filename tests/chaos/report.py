"""
report.py - what a chaos run saw: per kill, per subscriber, publishers in
total, and the one summary line (see chaos.py).
"""

import collections



def _sp(counter):
    return " ".join("sp%d=%d" % (k, v) for k, v in sorted(counter.items())) or "-"


def _secs(v, fmt, none):
    return none if v is None else fmt % v


def haproxy_cuts(lines):
    """Connections HAProxy ended itself (termination D: the server was marked
    down, shutdown-sessions; K: an admin; s: a server timeout), and how many
    were redispatched to another server, by server and state."""
    cuts, redispatched = collections.Counter(), 0
    for _backend, server, state, retries in lines:
        if state[0] in "DKs":
            cuts["%s:%s" % (server, state)] += 1
        redispatched += retries.startswith("+")
    return "%d connections closed, %d redispatched, ended by haproxy: %s" % (
        len(lines), redispatched, ", ".join("%s x%d" % kv for kv in sorted(cuts.items()))
        or "none")


def print_report(label, args, pubs, subs, monkey, closed, times, why):
    """Print everything (closed: haproxy.tcplog() rows); returns True if the
    run passed."""
    t0, t_load, t_end = times
    sent = sum(p.sent for p in pubs)
    acked = sum(len(p.acked) for p in pubs)
    refused = sum(p.refused for p in pubs)
    print("phases: load %.1fs, drain %.1fs: %s" % (t_load - t0, t_end - t_load, why))

    # kills: what the clients did around each one
    for ev in monkey.events:
        at = t0 + ev["kill"]
        cut = [c for c in subs + pubs if any(at <= d[0] < at + 1.0 for d in c.disconnects)]
        back = []
        for c in cut:
            acks = [a[0] for a in c.connacks if a[0] > at and a[2] == 0]
            if acks:
                back.append(acks[0] - at)
        print("kill t=%5.1fs %s: %d clients cut; haproxy DOWN %s; restarted t=%.1fs, "
              "ready in %.1fs, haproxy UP %s; cut clients back after %s%s" % (
                  ev["kill"], ev["node"], len(cut),
                  _secs(ev["down"], "after %.1fs", "not before the restart"), ev["start"],
                  ev["ready"], _secs(ev["up"], "%.1fs later", "not seen"),
                  "%.1f..%.1fs (%d/%d)" % (min(back), max(back), len(back), len(cut))
                  if back else "-", "; " + ev["problem"] if ev["problem"] else ""))
    if monkey.error:
        print("kill/restart stopped: %s" % monkey.error)

    # subscribers
    lost_total, dup_total, received = 0, 0, 0
    lost_msgs = set()
    for s in subs:
        lost = 0
        for p in pubs:
            miss = p.acked - s.got[p.index]
            lost += len(miss)
            lost_msgs.update((p.index, q) for q in miss)
        lost_total += lost
        dup_total += s.duplicates
        received += s.received
        n, sp, down, longest = s.timeline(t0, t_end)
        print("sub %-14s received %6d lost %6d dup %4d | reconnects %2d (%s) offline %5.1fs "
              "(longest %.1fs)%s" % (s.client_id, s.received, lost, s.duplicates, n, _sp(sp),
                                     down, longest,
                                     " garbage %d" % s.garbage if s.garbage else ""))

    # which messages, so that a node's log can be searched for them
    # ("chaos/p<publisher>", payload "<publisher>:<seq>")
    def _ids(keys):
        keys = sorted(keys)
        more = " (+%d more)" % (len(keys) - 10) if len(keys) > 10 else ""
        return " ".join("%d:%d" % k for k in keys[:10]) + more
    dup_msgs = collections.Counter()
    for s in subs:
        dup_msgs.update(s.dup_msgs)
    if lost_msgs:
        print("lost messages: %s" % _ids(lost_msgs))
    if dup_msgs:
        print("duplicated messages: %s" % _ids(dup_msgs))

    # publishers, together
    sp_all = collections.Counter()
    recon, down_all, longest_all = 0, 0.0, 0.0
    for p in pubs:
        n, sp, down, longest = p.timeline(t0, t_end)
        recon += n
        sp_all.update(sp)
        down_all += down
        longest_all = max(longest_all, longest)
    print("pubs: sent %d acked %d pending %d refused %d | reconnects %d (%s) offline %.1fs in "
          "total (longest %.1fs)" % (sent, acked, sum(len(p.pending) for p in pubs), refused,
                                     recon, _sp(sp_all), down_all, longest_all))
    print("haproxy: %s" % haproxy_cuts(closed))

    ok = lost_total == 0 and (args.qos != 2 or dup_total == 0) and acked > 0
    print("CHAOS %s: sent=%d acked=%d received=%d expected=%d lost=%d (of %d messages) "
          "duplicated=%d -> %s" % (label, sent, acked, received, acked * len(subs), lost_total,
                                   len(lost_msgs), dup_total, "PASS" if ok else "FAIL"),
          flush=True)
    return ok
