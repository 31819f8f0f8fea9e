#!/usr/bin/env bash
# The applications suite (README's table) at a larger scale than CI runs it: every test moves
# SCALE times the bytes, requests and seconds (default 3: 300 MB downloads, 1.2 million redis
# SETs, 24 s of pgbench), each through the cut of the primary. Runs as root, after deploy/setup.sh
# and a release build (deploy/test.sh does both).
#
#   deploy/compat.sh [SCALE] [ROUNDS]     ROUNDS: run the whole suite that many times (default 1)
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
scale=${1:-3}
rounds=${2:-1}
[[ $scale =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] || { echo "compat: SCALE and ROUNDS are positive integers" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "compat: must run as root (the lab needs network namespaces)" >&2; exit 1; }
deploy/setup.sh
swift build -c release
for round in $(seq 1 "$rounds"); do
    echo "compat: round $round of $rounds at scale $scale"
    FTCP_APP_SCALE=$scale swift test \
        --filter 'FTPLabTests|NginxLabTests|RedisLabTests|MemcachedLabTests|PostgresLabTests|BGPLabTests|SambaLabTests'
done
