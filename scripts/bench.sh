#!/bin/sh
# make bench: hamqttd side by side with Mosquitto (scenarios S1..S10, see
# scripts/bench.py --help and BENCHMARKS.md), then S11, the cost of crossing
# cluster nodes (scripts/bench_s11.py). Extra arguments go to bench.py, e.g.
# scripts/bench.sh --only S3,S5 --rounds 1 --no-write (S11 is skipped when
# --only is given and does not name it).
set -e
cd "$(dirname "$0")/.."
rc=0
/usr/bin/python3 scripts/bench.py "$@" || rc=$?
case " $* " in
*" --only "*) case " $* " in *S11*) ;; *) exit $rc ;; esac ;;
esac
s11=""
case " $* " in *" --no-write "*) s11="--no-write" ;; esac
/usr/bin/python3 scripts/bench_s11.py $s11 || rc=$?
exit $rc
