"""The scenarios of make bench (scripts/bench.py): what hamqtt-bench runs for
each, the headline rows (metric, unit, which way is better, target ratio)
and which scenarios each table runs. Data only; S1T/S3T/S13/S13R/S3A come
from scripts/bench_tls.py.
"""

import bench_tls

S8_CONNS = 19000           # the file limit is 20,000 for every process
S9_TOPICS = 100000
S10_SIZE = 256 * 1024


# ---- scenarios ---------------------------------------------------------------

# args: hamqtt-bench arguments; kind: how the run is made and measured
SCENARIOS = {
    "S1": dict(title="fan-in: 100 publishers -> 1 subscriber on bench/#, QoS 0, max rate",
               args=["pubsub", "--pubs", 100, "--subs", 1, "-q", 0,
                     "-t", "bench/%i", "-T", "bench/#"], kind="rate"),
    "S2": dict(title="point-to-point: 100 pairs, QoS 0, max rate",
               args=["pubsub", "-c", 100, "-q", 0], kind="rate"),
    "S3": dict(title="point-to-point: 100 pairs, QoS 1, max rate, window 64",
               args=["pubsub", "-c", 100, "-q", 1, "-w", 64], kind="rate"),
    "S4": dict(title="fan-out: 1 publisher at 100 msg/s -> 1,000 subscribers, QoS 0",
               args=["pubsub", "--pubs", 1, "--subs", 1000, "-q", 0, "-r", 100,
                     "-t", "bench/fan", "-T", "bench/fan"], kind="rate"),
    "S4M": dict(title="fan-out at max rate: 1 publisher -> 1,000 subscribers, QoS 0, "
                "end-to-end window 4",
                args=["pubsub", "--pubs", 1, "--subs", 1000, "-q", 0, "-w", 4,
                      "-t", "bench/fan", "-T", "bench/fan"], kind="rate"),
    "S5": dict(title="latency: 100 QoS 1 pairs at 100 msg/s each",
               args=["pubsub", "-c", 100, "-q", 1, "-r", 100], kind="rate", nodelay=True),
    "S6": dict(title="efficiency: 100 QoS 1 pairs at 500 msg/s each (50k msg/s)",
               args=["pubsub", "-c", 100, "-q", 1, "-r", 500], kind="rate"),
    "S7": dict(title="point-to-point: 100 pairs, QoS 2, window 20",
               args=["pubsub", "-c", 100, "-q", 2, "-w", 20], kind="rate"),
    "S8": dict(title="connections: %d idle connections (--bind-spread), held 2 s" % S8_CONNS,
               args=["conn", "-c", S8_CONNS, "--bind-spread", "-d", 2], kind="conn"),
    "S9": dict(title="retained: %d retained topics (QoS 1), then 1 subscriber to # (QoS 0)"
               % S9_TOPICS, kind="retained"),
    "S10": dict(title="large messages: 10 pairs, 256 KiB payloads, QoS 1, window 64",
                args=["pubsub", "-c", 10, "-q", 1, "-s", S10_SIZE], kind="rate"),
}
# S3 with persistent sessions (issue 9): every client connects with clean
# session 0, so each message is stored for its subscriber's session before the
# publisher gets its PUBACK. store: hamqttd's session.store (fsync: with
# session.local.fsync = true); Mosquitto runs with persistence true (its
# periodic snapshot, autosave_interval 1800 s by default). base: (the in-memory
# scenario of the same run it is compared with, target ratio to it).
for _name, _store, _fsync, _target, _what in (
        ("S3P", "local", False, 0.5, "local store (LMDB, no fsync)"),
        ("S3R", "redis", False, 0.3, "redis store (redis-server, AOF fsync every second)"),
        ("S3PF", "local", True, 0.5, "local store with session.local.fsync = true")):
    SCENARIOS[_name] = dict(title="S3 with persistent sessions (--no-clean), " + _what,
                            args=SCENARIOS["S3"]["args"] + ["--no-clean"], kind="rate",
                            store=_store, fsync=_fsync, persist=True, base=("S3", _target))
# over TLS, full handshakes per second, and with a password file + ACL (issue
# 10): see scripts/bench_tls.py
SCENARIOS.update(bench_tls.scenarios(SCENARIOS["S1"]["args"], SCENARIOS["S3"]["args"]))

# headline rows: (scenario, label, metric, unit, better, target ratio)
# target: hamqtt / Mosquitto >= target (better=high) or <= target (better=low)
HEADLINE = [
    ("S1", "delivered msg/s", "rate", "msg/s", "high", 4.5),
    ("S2", "delivered msg/s", "rate", "msg/s", "high", 6.5),
    ("S3", "delivered msg/s", "rate", "msg/s", "high", 7.0),
    ("S4", "delivered msg/s", "rate", "msg/s", "high", None),
    ("S4", "broker CPU us/delivery", "us_per_msg", "us", "low", 0.25),
    ("S4M", "delivered msg/s", "rate", "msg/s", "high", 4.0),
    ("S5", "latency p50", "p50", "us", "low", None),
    ("S5", "latency p99", "p99", "us", "low", 1.0),
    ("S5", "latency p99.9", "p999", "us", "low", 1.0),
    ("S6", "broker CPU at 50k msg/s", "broker_cpu", "%", "low", 0.7),
    ("S7", "delivered msg/s", "rate", "msg/s", "high", 4.0),
    ("S8", "connect rate", "conn_rate", "conn/s", "high", None),
    ("S8", "broker RSS per idle connection", "rss_per_conn", "B", "low", 1.0),
    ("S9", "seconds until all retained arrived", "secs", "s", "low", 1.0),
    ("S10", "delivered MB/s", "mbps", "MB/s", "high", 1.0),
    # targets against the in-memory S3 of the same run: see persist_table
    ("S3P", "delivered msg/s", "rate", "msg/s", "high", None),
    ("S3R", "delivered msg/s", "rate", "msg/s", "high", None),
    ("S3PF", "delivered msg/s", "rate", "msg/s", "high", None),
    ("S1T", "delivered msg/s over TLS", "rate", "msg/s", "high", None),
    ("S3T", "delivered msg/s over TLS", "rate", "msg/s", "high", 5.0),
    ("S13", "full TLS handshakes/s (EC P-256)", "hs_rate", "hs/s", "high", 1.5),
    ("S13", "broker CPU us/handshake (EC P-256)", "us_per_hs", "us", "low", None),
    ("S13R", "full TLS handshakes/s (RSA 2048)", "hs_rate", "hs/s", "high", None),
    ("S13R", "broker CPU us/handshake (RSA 2048)", "us_per_hs", "us", "low", None),
    # target against hamqtt's plain S3 of the same run: see bench_tls.auth_table
    ("S3A", "delivered msg/s, password file + ACL", "rate", "msg/s", "high", None),
]

PINNED = ["S1", "S2", "S3", "S3P", "S3R", "S3PF", "S4", "S4M", "S5", "S6", "S7", "S8", "S9",
          "S10", "S1T", "S3T", "S13", "S13R", "S3A"]
UNPINNED = ["S1", "S2", "S3", "S3P", "S3R", "S3PF", "S6"]
