#!/bin/sh
# Run the runtime stage of deploy/docker/Dockerfile without a container engine
# (docs/operator/containers.md "What was run"): a Debian 12 rootfs made by
# debootstrap (Debian's mirror), the Dockerfile's runtime RUN step executed in it
# as written, the COPY steps done by hand (hamqttd etc. from BUILD), then the
# ENTRYPOINT started as the image's USER in its own mount, pid and network
# namespaces (only lo: the ports stay off this host's) with
# the rootfs read-only except /var/lib/hamqtt, and the HEALTHCHECK command run
# inside until it passes. With BUILD_STAGE=1 the build stage runs first, in a copy
# of the rootfs (ROOTFS_DIR-build): its RUN, WORKDIR and COPY lines in order, as
# written (the -dev packages, then `make all`), and the runtime stage gets the
# binaries it built instead of BUILD_DIR's. Root only. Usage:
#   [BUILD_STAGE=1] scripts/rootfs_image.sh ROOTFS_DIR [BUILD_DIR]   (ROOTFS_DIR made if missing)
set -eu
root=$1
build=${2:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
df="$here/deploy/docker/Dockerfile"
[ "$(id -u)" -eq 0 ] || { echo "rootfs_image: needs root (debootstrap, chroot)" >&2; exit 2; }
if [ ! -x "$root/bin/sh" ]; then
	debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
fi
joined=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$df" | grep -v '^ *#')
if [ "${BUILD_STAGE:-0}" = 1 ]; then
	broot="$root-build"
	[ -x "$broot/bin/sh" ] || cp -a "$root" "$broot"
	cp /etc/resolv.conf "$broot/etc/resolv.conf"
	wd=/
	# the first stage's lines, one by one (a COPY is done by hand from the repo)
	printf '%s\n' "$joined" | awk '/^FROM /{n++} n==1' | while IFS= read -r ln; do
		case "$ln" in
		WORKDIR\ *) wd=${ln#WORKDIR }; mkdir -p "$broot$wd" ;;
		COPY\ *) set -- ${ln#COPY }; cp -a "$here/$1" "$broot$wd/$2" ;;
		RUN\ *) echo "rootfs_image: build stage: ${ln#RUN }" | cut -c1-160
			chroot "$broot" /bin/sh -c "cd $wd && ${ln#RUN }" ;;
		esac
	done
	here_build="$broot/src/build"
else
	here_build="$here/$build"
fi
# the runtime stage: the lines after the last FROM, continuation lines joined
stage=$(printf '%s\n' "$joined" | awk '/^FROM /{s=""} {s=s $0 "\n"} END{printf "%s", s}')
run=$(printf '%s\n' "$stage" | sed -n 's/^RUN //p')
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" id hamqtt >/dev/null 2>&1 || chroot "$root" /bin/sh -c "$run"
install -m 0755 "$here_build/hamqttd" "$here_build/hamqtt-ctl" "$here_build/hamqtt-passwd" "$root/usr/bin/"
install -m 0644 "$here/deploy/docker/hamqtt.conf" "$root/etc/hamqtt/hamqtt.conf"
user=$(printf '%s\n' "$stage" | sed -n 's/^USER //p' | tail -1)
health=$(printf '%s\n' "$stage" | sed -n 's/^HEALTHCHECK .* CMD //p' | tail -1)
[ -n "$health" ] || { echo "rootfs_image: no HEALTHCHECK CMD in $df" >&2; exit 1; }
entry=$(printf '%s\n' "$stage" | sed -n 's/^ENTRYPOINT //p' | python3 -c 'import json,sys,shlex; print(" ".join(map(shlex.quote, json.loads(sys.stdin.read()))))')
echo "rootfs_image: USER $user; ENTRYPOINT $entry; HEALTHCHECK $health"
# the container: own mount and pid namespaces, rootfs read-only but the volume
log="$root/../hamqttd.log"
unshare --mount --pid --net --fork --mount-proc="$root/proc" /bin/sh -c "
	ip link set lo up && mount --bind '$root' '$root' && mount -o remount,bind,ro '$root' &&
	mount -t tmpfs -o uid=${user%%:*},gid=${user##*:},mode=0750 tmpfs '$root/var/lib/hamqtt' &&
	exec chroot --userspec='$user' '$root' /bin/sh -c 'cd /var/lib/hamqtt && HAMQTT_NODE__SHUTDOWN_GRACE=0s exec $entry'
" >"$log" 2>&1 &
pid=$!
sleep 0.5
inns="nsenter -t $pid -n"
ok=1
for i in $(seq 60); do
	if $inns chroot "$root" /bin/sh -c "$health" >/dev/null 2>&1; then ok=0; break; fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
[ $ok -eq 0 ] && echo "rootfs_image: HEALTHCHECK passed: $($inns chroot "$root" curl -s http://127.0.0.1:18083/api/v5/status)"
# who it runs as, and that only the volume is writable
uid=$(awk '/^Uid:/{print $2}' "/proc/$(pgrep -P "$pid" | head -1)/status" 2>/dev/null || true)
echo "rootfs_image: hamqttd runs as uid $uid"
[ "$uid" = "${user%%:*}" ] || ok=1
# SIGTERM to hamqttd itself (unshare --fork ignores it while it waits)
child=$(pgrep -P "$pid" | head -1)
[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
wait "$pid" || ok=1
echo "rootfs_image: hamqttd log:"; cat "$log"
exit $ok
