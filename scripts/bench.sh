#!/bin/sh
# make bench: hamqttd side by side with Mosquitto (scenarios S1..S10, the
# persistent S3P/S3R/S3PF, and S1T/S3T over TLS, S13/S13R TLS handshakes/s and
# S3A with a password file + ACL; see scripts/bench.py --help and BENCHMARKS.md),
# then S11, the cost of crossing cluster nodes (scripts/bench_s11.py), then
# the restart of a node full of offline sessions (scripts/bench_recovery.py),
# then ARCHIVE, archived msg/s into PostgreSQL with fsync on (scripts/bench_archive.py).
# Extra arguments go to bench.py, e.g. scripts/bench.sh --only S3,S5 --rounds 1
# --no-write (S11, RECOVERY and ARCHIVE are skipped when --only does not name them).
# Smoke test of some scenarios (1 round of 1 s, BENCHMARKS.md untouched):
# scripts/bench.sh --only S1T,S3T,S13,S13R,S3A --quick --no-unpinned
set -e
cd "$(dirname "$0")/.."
rc=0
# --help is bench.py's: print it and run nothing else
case " $* " in *" -h "*|*" --help "*) exec /usr/bin/python3 scripts/bench.py --help ;; esac
/usr/bin/python3 scripts/bench.py "$@" || rc=$?
only=0
case " $* " in *" --only "*) only=1 ;; esac
# want NAME "$@": no --only, or --only names NAME
want() { w=$1; shift; [ $only = 0 ] || case " $* " in *"$w"*) return 0 ;; *) return 1 ;; esac; }
s11=""
case " $* " in *" --no-write "*) s11="--no-write" ;; esac
if want S11 "$@"; then
	/usr/bin/python3 scripts/bench_s11.py $s11 || rc=$?
fi
if want RECOVERY "$@"; then
	/usr/bin/python3 scripts/bench_recovery.py || rc=$?
fi
if want ARCHIVE "$@"; then
	/usr/bin/python3 scripts/bench_archive.py || rc=$?
fi
exit $rc
