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
# issue 12: the message archive's PostgreSQL client library (src/archive/arc_pg.c)
# and Debian's server, which its tests start themselves (tests/integration/pgsql.py)
PKGS="$PKGS libpq-dev postgresql"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# issue 12, the archive's MariaDB/MySQL backend: the client library to build;
# mariadb-server only for the tests, which start their own mariadbd in a temp
# dir (tests/integration/mariadb.py). Like postgresql, its service must not
# run: see the policy-rc.d below, and the units disabled where systemd runs.
PKGS="$PKGS libmariadb-dev mariadb-server"
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
	# issue 12: a server package (postgresql) must not leave its service
	# running on its default port: policy-rc.d refuses every start during
	# the install (removed after, unless it was there before)
	own_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	$SUDO apt-get install -y -q --no-install-recommends $missing || { [ -n "$own_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d; exit 1; }
	[ -n "$own_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
	# where systemd runs, the database servers just installed stay stopped
	# and disabled (their units would start at the next boot)
	if [ -d /run/systemd/system ]; then
		for u in mariadb postgresql; do
			case "$missing" in *" $u-server"*|*" $u"*) $SUDO systemctl disable --now "$u.service" >/dev/null 2>&1 || true ;; esac
		done
	fi
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
