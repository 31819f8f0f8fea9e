#!/usr/bin/env bash
# Installs the Debian packages that building ftcp, its lab and its tests need, and nothing
# else. Harmless when everything is there (it only checks). The README's two commands and
# .ci/run call it, so a fresh Debian 12 machine with Swift needs no set-up by hand.
#
#   deploy/setup.sh [--check]     --check: only report what is missing (exit 1 if anything is)
set -Eeuo pipefail

# What each package is for:
#   libnetfilter-queue-dev  the bridges' NFQUEUE (headers and library to build and run)
#   libpcap-dev             the secondary's capture of clients' frames
#   iptables                the bridges' rules and the lab's impairment (iptables-nft)
#   iproute2                ip and tc: namespaces, addresses, rate shaping
#   tcpdump                 the lab tests' captures (what the client saw)
#   ethtool                 the lab's offload settings
#   spin, gcc               model checking of the ownership protocol (model/check.sh)
#   procps                  pgrep/ps in the lab scripts
#   stress-ng               the CPU hog of the heartbeat-under-load test
#   prometheus, curl        the metrics test: a real Prometheus scrapes a bridge, curl queries it
#   vsftpd, nginx-light, redis-server, redis-tools, memcached, libmemcached-tools, postgresql, bird2,
#   samba, smbclient
#                           the applications tests: Debian's servers on both servers, their clients
#                           (curl, redis-benchmark, memcslap, pgbench, bird2 as the router) on the client's host
PACKAGES=(libnetfilter-queue-dev libpcap-dev iptables iproute2 tcpdump ethtool spin gcc procps stress-ng prometheus curl
    vsftpd nginx-light redis-server redis-tools memcached libmemcached-tools postgresql bird2 samba smbclient)

log() { printf 'setup: %s\n' "$*"; }

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ ${1:-} == --check ]]; then
    log "missing Debian packages: ${missing[*]}"
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    printf 'setup: error: missing Debian packages: %s; run as root (sudo) so this script can install them, or: apt-get install %s\n' \
        "${missing[*]}" "${missing[*]}" >&2
    exit 1
fi
command -v swift >/dev/null 2>&1 || { printf 'setup: error: swift is not on PATH (ftcp needs Swift 6.x)\n' >&2; exit 1; }
log "installing the Debian packages ftcp needs: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
log "installed ${missing[*]}"
