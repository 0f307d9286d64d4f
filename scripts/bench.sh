#!/bin/sh
# make bench: hamqttd side by side with Mosquitto (scenarios S1..S10, see
# scripts/bench.py --help and BENCHMARKS.md). Extra arguments go to bench.py,
# e.g. scripts/bench.sh --only S3,S5 --rounds 1 --no-write
set -e
cd "$(dirname "$0")/.."
exec /usr/bin/python3 scripts/bench.py "$@"
