#!/bin/sh
# Install the Debian 12 packages hamqtt needs to build, run and test. Idempotent:
# apt-get runs only when something is missing.
set -e
PKGS="gcc clang libclang-rt-14-dev make pkg-config libcmocka-dev uthash-dev libmicrohttpd-dev libcjson-dev libssl-dev openssl libcurl4-openssl-dev mosquitto-clients python3-paho-mqtt python3 iproute2 procps python3-pytest python3-pytest-xdist haproxy liblmdb-dev lmdb-utils libhiredis-dev redis-server redis-sentinel"
PKGS="$PKGS libwslay-dev"
PKGS="$PKGS libjwt-dev python3-cryptography"
# issue 11: promtool and a real Prometheus (test_54), PyYAML for its configs
PKGS="$PKGS prometheus python3-yaml"
# issue 12, make deb: lintian checks the package (test_63); dpkg-dev
# (dpkg-shlibdeps computes its Depends) and systemd (systemd-analyze verifies
# the unit; installing it does not make it PID 1) are named for a minimal machine
PKGS="$PKGS lintian dpkg-dev systemd"
# issue 12 docs: the guide's commands read the REST API's JSON with jq (test_65_docs)
PKGS="$PKGS jq"
# the dashboard (ARCHITECTURE.md "The dashboard"): zlib inflates the embedded
# assets for a client without gzip; its browser test runs Debian's chromium
# driven by playwright-core (npm, tests/browser/package-lock.json) on node.
# A node that came from elsewhere (e.g. NodeSource, which bundles npm) is kept.
PKGS="$PKGS zlib1g-dev chromium fonts-liberation"
# issue 12 containers: dnsmasq-base is the DNS server of test_64_dns_srv (SRV
# records of a StatefulSet); the binary only, no system service to stop
PKGS="$PKGS dnsmasq-base"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# issue 12, the archive's MariaDB/MySQL backend: the client library to build;
# mariadb-server only for the tests, which start their own mariadbd in a temp
# dir. The package's service must not start (nor stay enabled): a policy-rc.d
# refuses it during the install (when there is none already) and, where
# systemd runs, the unit is stopped and disabled after.
PKGS="$PKGS libmariadb-dev mariadb-server"
mariadb_no_service() {
	s=""; [ "$(id -u)" -ne 0 ] && s=sudo
	[ -n "$mariadb_policy" ] && $s rm -f /usr/sbin/policy-rc.d
	if [ -d /run/systemd/system ] && dpkg-query -W -f='${Status}' mariadb-server 2>/dev/null | grep -q "install ok installed"; then
		$s systemctl disable --now mariadb.service >/dev/null 2>&1 || true
	fi
}
mariadb_policy=""
if ! dpkg-query -W -f='${Status}' mariadb-server 2>/dev/null | grep -q "install ok installed"; then
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		mariadb_policy=1
		s=""; [ "$(id -u)" -ne 0 ] && s=sudo
		printf '#!/bin/sh\n# scripts/deps.sh: no service starts while packages install\nexit 101\n' | $s tee /usr/sbin/policy-rc.d >/dev/null
		$s chmod 755 /usr/sbin/policy-rc.d
	fi
	trap mariadb_no_service EXIT
fi
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
