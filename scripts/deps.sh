#!/bin/sh
# Install the Debian 12 packages hamqtt needs to build, run and test. Idempotent:
# apt-get runs only when something is missing.
set -e
PKGS="gcc clang libclang-rt-14-dev make pkg-config libcmocka-dev uthash-dev libmicrohttpd-dev libcjson-dev libssl-dev openssl libcurl4-openssl-dev mosquitto-clients python3-paho-mqtt python3 iproute2 procps python3-pytest python3-pytest-xdist haproxy liblmdb-dev lmdb-utils libhiredis-dev redis-server redis-sentinel"
PKGS="$PKGS libwslay-dev"
PKGS="$PKGS libjwt-dev python3-cryptography"
# issue 11: promtool and a real Prometheus (test_54), PyYAML for its configs
PKGS="$PKGS prometheus python3-yaml"
# the dashboard (ARCHITECTURE.md "The dashboard"): zlib inflates the embedded
# assets for a client without gzip; its browser test runs Debian's chromium
# driven by playwright-core (npm, tests/browser/package-lock.json) on node.
# A node that came from elsewhere (e.g. NodeSource, which bundles npm) is kept.
PKGS="$PKGS zlib1g-dev chromium fonts-liberation"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
browser_deps() {
	dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
	[ -d "$dir/node_modules/playwright-core" ] && return 0
	echo "deps: npm ci in tests/browser (playwright-core)"
	# not fatal: only the browser test needs it, and it runs npm ci itself too
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
		echo "deps: npm ci in tests/browser failed (test_56 will try again)"
}
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q || true
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi
browser_deps
# issue 12 bridges: Mosquitto's broker is the remote of test_62 (its own config on
# a free port, started and stopped by the test) and mosquitto_passwd writes the
# password files of test_41. Installing it must not leave Debian's service
# running on 1883: a policy-rc.d forbids starting it during the install, and
# it is disabled for the next boot (no systemd needed).
if ! dpkg-query -W -f='${Status}' mosquitto 2>/dev/null | grep -q "install ok installed"; then
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	own_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends mosquitto || {
		[ -n "$own_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d; exit 1; }
	[ -n "$own_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
	$SUDO update-rc.d mosquitto disable >/dev/null 2>&1 || true
	command -v systemctl >/dev/null 2>&1 && $SUDO systemctl disable mosquitto >/dev/null 2>&1 || true
fi
