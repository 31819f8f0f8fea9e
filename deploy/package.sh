#!/usr/bin/env bash
# Builds a Debian package of ftcp-bridge: the binary (Swift runtime linked in statically; the
# C libraries stay dynamic), the systemd unit, a commented sample config and a man page
# generated from the command-line definitions. Prints the package's path.
#
#   deploy/package.sh [VERSION]      (default: 0.1.0+git<commit>)
#
# It links ftcp-bridge again in the regular release build (.build/release) with the Swift
# runtime static (the compiled objects are the same; the next plain `swift build -c release`
# links it back); the .deb goes to .build/ftcp-bridge_VERSION_ARCH.deb.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

for tool in swift dpkg-deb dpkg; do
    command -v "$tool" >/dev/null || { echo "package.sh: $tool not found" >&2; exit 2; }
done
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
version=${1:-0.1.0+git$commit}
arch=$(dpkg --print-architecture)

echo "package.sh: building ftcp-bridge (release, static Swift runtime)" >&2
swift build -c release --static-swift-stdlib --product ftcp-bridge >&2
binary=$root/.build/release/ftcp-bridge
if ldd "$binary" | grep -q libswiftCore; then
    echo "package.sh: $binary still links the Swift runtime dynamically" >&2
    exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$binary" "$stage/usr/sbin/ftcp-bridge"  # copied before the plugin links it again
if command -v strip >/dev/null; then strip --strip-unneeded "$stage/usr/sbin/ftcp-bridge"; fi
install -D -m 0644 deploy/systemd/ftcp-bridge@.service "$stage/lib/systemd/system/ftcp-bridge@.service"
install -D -m 0644 deploy/systemd/ftcp-bridge.default "$stage/usr/share/doc/ftcp-bridge/examples/ftcp-bridge.default"
install -D -m 0644 deploy/ftcp.conf.sample "$stage/usr/share/doc/ftcp-bridge/examples/ftcp.conf"
install -D -m 0644 README.md "$stage/usr/share/doc/ftcp-bridge/README.md"
install -d -m 0700 "$stage/etc/ftcp"

# The man page, from the command-line definitions (swift-argument-parser's generator reads
# the binaries' own description of their commands and options). The plugin builds the release
# products with the usual flags first (linking ftcp-bridge back to the shared runtime).
"$binary" --experimental-dump-help >/dev/null  # fails early if the binary cannot describe itself
swift package --disable-sandbox plugin generate-manual --section 8 >&2
page=$root/.build/plugins/GenerateManual/outputs/ftcp-bridge/ftcp-bridge.8
[ -f "$page" ] || { echo "package.sh: the man page was not generated ($page)" >&2; exit 1; }
install -D -m 0644 "$page" "$stage/usr/share/man/man8/ftcp-bridge.8"
gzip -9n "$stage/usr/share/man/man8/ftcp-bridge.8"

size=$(du -sk "$stage" | cut -f1)
install -d "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: ftcp-bridge
Version: $version
Architecture: $arch
Maintainer: ftcp developers <ftcp@localhost>
Depends: libnetfilter-queue1, libpcap0.8, iptables, iproute2
Section: net
Priority: optional
Installed-Size: $size
Description: transparent TCP connection failover
 Two servers run the same deterministic application; a bridge on each keeps
 clients' TCP connections open when a server fails, and moves them without a
 byte lost in a planned switchover.
CONTROL
cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
POSTINST
chmod 0755 "$stage/DEBIAN/postinst"

deb=$root/.build/ftcp-bridge_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >&2
echo "$deb"
