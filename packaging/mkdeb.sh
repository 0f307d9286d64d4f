#!/bin/sh
# mkdeb.sh BUILD - build BUILD/hamqtt_<version>_<arch>.deb from the binaries
# in BUILD (make deb; docs/architecture/packaging.md). A staged tree in
# BUILD/deb/root, Depends computed by dpkg-shlibdeps from what the binaries
# link, then dpkg-deb --root-owner-group. No debhelper, no source package.
set -eu
given=${1:?usage: mkdeb.sh BUILD}
build=$(cd "$given" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
pkg="$top/packaging"
version=$(sed -n 's/^#define HAMQTT_VERSION "\(.*\)"$/\1/p' "$top/src/core/version.h")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "mkdeb: no HAMQTT_VERSION in src/core/version.h" >&2; exit 1; }
stage="$build/deb"
root="$stage/root"
out="$build/hamqtt_${version}_${arch}.deb"
rm -rf "$stage"
umask 022
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/etc/hamqtt" \
	"$root/etc/logrotate.d" "$root/lib/systemd/system" "$root/usr/share/doc/hamqtt/examples" \
	"$root/usr/share/man/man1" "$root/usr/share/man/man8" "$root/usr/share/lintian/overrides"

# binaries, stripped (the build keeps its symbols for gdb)
bin() {
	install -m 0755 "$build/$1" "$root/$2"
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/$2"
}
bin hamqttd usr/sbin/hamqttd
for t in ctl passwd bench; do bin "hamqtt-$t" "usr/bin/hamqtt-$t"; done

# configuration (conffiles), unit, logrotate
install -m 0644 "$pkg/hamqtt.conf" "$root/etc/hamqtt/hamqtt.conf"
install -m 0644 "$pkg/acl" "$root/etc/hamqtt/acl"
install -m 0644 "$pkg/hamqtt.service" "$root/lib/systemd/system/hamqtt.service"
install -m 0644 "$pkg/logrotate" "$root/etc/logrotate.d/hamqtt"

# documentation: gzip -9n (reproducible: no name, no time stamp). A native
# package (no Debian revision in the version): changelog.gz, not changelog.Debian.gz
doc="$root/usr/share/doc/hamqtt"
install -m 0644 "$pkg/copyright" "$doc/copyright"
sed "s/@VERSION@/$version/" "$pkg/changelog" | gzip -9n > "$doc/changelog.gz"
install -m 0644 "$pkg/README.Debian" "$doc/README.Debian"
gzip -9n < "$top/README.md" > "$doc/README.md.gz"
gzip -9n < "$top/SECURITY.md" > "$doc/SECURITY.md.gz"
gzip -9n < "$top/etc/hamqtt.conf" > "$doc/examples/hamqtt.conf.full.gz"
install -m 0644 "$top/deploy/hamqtt/hamqtt.conf" "$doc/examples/hamqtt.conf.cluster"
for m in "$pkg"/man/*.[18]; do
	s=${m##*.}
	sed "s/@VERSION@/$version/" "$m" | gzip -9n > "$root/usr/share/man/man$s/$(basename "$m").gz"
done
install -m 0644 "$pkg/lintian-overrides" "$root/usr/share/lintian/overrides/hamqtt"
chmod 0644 "$doc"/*.gz "$doc/examples"/* "$root"/usr/share/man/man*/*.gz

# maintainer scripts; every file under /etc is a conffile
for s in postinst prerm postrm; do install -m 0755 "$pkg/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find etc -type f | sort | sed 's|^|/|') > "$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"

# Depends: the packages of the shared libraries the binaries link, as
# dpkg-shlibdeps finds them (it needs a debian/control to read: a throw-away one)
mkdir -p "$stage/src/debian"
printf 'Source: hamqtt\n\nPackage: hamqtt\nArchitecture: any\n' > "$stage/src/debian/control"
shlibs=$(cd "$stage/src" && dpkg-shlibdeps -O \
	"-e$root/usr/sbin/hamqttd" "-e$root/usr/bin/hamqtt-ctl" \
	"-e$root/usr/bin/hamqtt-passwd" "-e$root/usr/bin/hamqtt-bench" 2>"$stage/shlibdeps.log")
depends=$(printf '%s\n' "$shlibs" | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { cat "$stage/shlibdeps.log" >&2; echo "mkdeb: dpkg-shlibdeps found nothing" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	-e "s/@DEPENDS@/$depends/" "$pkg/control.in" > "$root/DEBIAN/control"
(cd "$root" && find . \( -path ./DEBIAN -o -path ./etc \) -prune -o -type f -print | sed 's|^\./||' | sort |
	xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$given/$(basename "$out")"
