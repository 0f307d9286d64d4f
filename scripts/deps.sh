#!/bin/sh
# Install the Debian 12 packages hamqtt needs to build, run and test. Idempotent:
# apt-get runs only when something is missing.
set -e
PKGS="gcc clang libclang-rt-14-dev make pkg-config libcmocka-dev uthash-dev libmicrohttpd-dev libcjson-dev libssl-dev openssl libcurl4-openssl-dev mosquitto-clients python3-paho-mqtt python3 iproute2 procps python3-pytest python3-pytest-xdist haproxy liblmdb-dev lmdb-utils libhiredis-dev redis-server redis-sentinel"
PKGS="$PKGS libwslay-dev"
PKGS="$PKGS libjwt-dev python3-cryptography"
# issue 11: promtool and a real Prometheus (test_54), PyYAML for its configs
PKGS="$PKGS prometheus python3-yaml"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q || true
$SUDO apt-get install -y -q --no-install-recommends $missing
