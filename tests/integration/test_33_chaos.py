"""33 the chaos test's short variant (tests/chaos/chaos.py, `make chaos-short`):
SIGKILL nodes under load behind HAProxy, twice in 20 s, and require that no
acknowledged message is lost by any persistent subscriber (nor, at QoS 2,
duplicated): `--store local` with one node (restarted on its data dir; QoS 1,
MQTT 5) and `--store redis` with three (the killed node's sessions resume
elsewhere; QoS 1, MQTT 3.1.1), and both again at QoS 2 (exactly once), the
runs of `make chaos-short`. With
`memory` the sessions die with their node and tests/chaos reports the losses
(the run that failed before issue 9's stores: 126,964 of 240,000 deliveries
lost with 3 nodes)."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, build_dir, require
from haproxy import HAPROXY
from mqttraw import T

CHAOS = os.path.join(REPO, "tests", "chaos", "chaos.py")
SHORT = ["--pubs", "5", "--subs", "5", "--rate", "10", "--duration", "20", "--kill-every", "7",
         "--restart-after", "3", "--drain", "20"]
# QoS 2: more in flight at each kill, or a build that does not store QoS 2
# queue entries at all still passes (seen: 5 x 5 at 10 msg/s passed with it,
# 10 x 10 at 20 msg/s lost 88 deliveries)
# (and a longer drain: under ASan, with clients back only after the load
# ended, 20 s was not enough for the 28,000 queued deliveries; it ends as
# soon as everything arrived)
SHORT_QOS2 = SHORT[:]
SHORT_QOS2[1], SHORT_QOS2[3], SHORT_QOS2[5], SHORT_QOS2[-1] = "10", "10", "20", "60"

pytestmark = require(None if HAPROXY else "binary not found (apt-get install haproxy)",
                     "haproxy")


# QoS 2 (local, 1 node, v5, SHORT_QOS2) failed 3 of 8 runs of `make test` at the
# message published at the first kill (7:141 with seed 33), lost at 7 of 10
# subscribers: the kill fell between the publisher's store batch and the other
# workers'. Exactly once across workers (brk_rxmark.c) closed it. The redis
# QoS 2 run uses the lighter load: three nodes and HAProxy share the 2 cores.
RUNS = [("local", 1, 1, "5"), ("redis", 3, 1, "3.1.1"), ("local", 1, 2, "5"),
        ("redis", 3, 2, "3.1.1")]
# `make test`'s passes with 1 and 4 workers (HAMQTT_TEST_WORKERS) run only the
# variant where the number of workers matters (a QoS 2 message stored by
# several workers), at that number; the plain pass ran the others already
WORKERS = os.environ.get("HAMQTT_TEST_WORKERS")
if WORKERS:
    RUNS = [("local", 1, 2, "5")]


@pytest.mark.parametrize("store,nodes,qos,mqtt", RUNS)
def test_chaos_short(store, nodes, qos, mqtt):
    args = SHORT_QOS2 if qos == 2 and store == "local" else SHORT
    if WORKERS:
        args = args + ["--workers", WORKERS]
    if qos == 2 and os.path.basename(build_dir().rstrip("/")) in ("build-tsan", "build-asan"):
        # the sanitizers run the broker 2x (ASan) to 10x (TSan) slower, and
        # every QoS 2 delivery to a persistent session waits for two store
        # commits: in `make test` (the machine shared with other work) the
        # 10 x 10 run's drain ran out with 8,945 deliveries still queued in
        # the store (ASan; TSan: 9,562), each subscriber's window full (32);
        # the same seed passed alone. They look for races and memory errors:
        # the lighter 5 x 5 load exercises the same QoS 2 paths.
        args = SHORT[:-1] + ["60"]
    cmd = [sys.executable, CHAOS, "--build", build_dir(), "--store", store,
           "--nodes", str(nodes), "--qos", str(qos), "--mqtt", mqtt, "--seed", "33"] + args
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=T(240))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("chaos.py did not finish within %.0fs:\n%s"
                             % (T(240), (e.stdout or b"")[-4000:]))
    summary = [ln for ln in r.stdout.splitlines() if ln.startswith("CHAOS ")]
    assert r.returncode == 0 and summary and summary[-1].endswith("-> PASS"), (
        "exit %d\n%s\n%s" % (r.returncode, r.stdout[-6000:], r.stderr[-3000:]))
