#!/usr/bin/env bash
# Regenerates Tests/FTCPWireTests/GoldenSegments.swift from a real Linux TCP
# exchange: a handshake, 20,000 bytes with one segment dropped at the
# receiver (so it answers with SACK), a close, and a refused connection (RST).
# Checksum offload is turned off so the captured checksums are complete.
# Needs root, iproute2, ethtool, iptables, tcpdump and python3. Uses its own
# namespaces (ftcp-gold-a, ftcp-gold-b) and removes them on exit.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "capture-golden-segments: run as root" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../Tests/FTCPWireTests/GoldenSegments.swift"
work=$(mktemp -d)
cleanup() { ip netns del ftcp-gold-a 2>/dev/null || true; ip netns del ftcp-gold-b 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cleanup; work=$(mktemp -d)
ip netns add ftcp-gold-a; ip netns add ftcp-gold-b
ip link add golda type veth peer name goldb
ip link set golda netns ftcp-gold-a; ip link set goldb netns ftcp-gold-b
ip -n ftcp-gold-a addr add 10.99.0.10/24 dev golda
ip -n ftcp-gold-b addr add 10.99.0.1/24 dev goldb
for side in a b; do
  ip -n ftcp-gold-$side link set lo up
  ip -n ftcp-gold-$side link set gold$side up
  ip netns exec ftcp-gold-$side ethtool -K gold$side tx off tso off gso off gro off >/dev/null
done
sleep 1
ip netns exec ftcp-gold-a timeout 15 tcpdump -U -i golda -w "$work/golden.pcap" tcp 2>/dev/null &
dump=$!
sleep 1
ip netns exec ftcp-gold-b iptables -A INPUT -p tcp --dport 5001 -m length --length 1000:2000 \
  -m statistic --mode nth --every 100 --packet 3 -j DROP
ip netns exec ftcp-gold-b timeout 8 python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.99.0.1", 5001)); s.listen(1)
c, _ = s.accept()
while c.recv(65536): pass
c.close()' &
server=$!
sleep 1
ip netns exec ftcp-gold-a timeout 8 python3 -c '
import socket
s = socket.create_connection(("10.99.0.1", 5001))
s.sendall(bytes((i * 7) % 251 for i in range(20000))); s.shutdown(socket.SHUT_WR); s.recv(10); s.close()'
wait $server
ip netns exec ftcp-gold-a timeout 3 python3 -c '
import socket
try: socket.create_connection(("10.99.0.1", 5002))
except ConnectionRefusedError: pass'
sleep 1; kill $dump; wait $dump || true
python3 - "$work/golden.pcap" "$out" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
offset, packets = 24, []
while offset < len(data):
    _, _, length, _ = struct.unpack('<IIII', data[offset:offset + 16]); offset += 16
    packets.append(data[offset:offset + length][14:]); offset += length
# Picked by position in this exchange: SYN, SYN-ACK, first data, first SACK, client FIN, RST.
names = {0: 'syn', 1: 'synAck', 3: 'data', 11: 'sackAck', 28: 'finAck', len(packets) - 1: 'rstAck'}
lines = ['import Testing', '',
         '// Generated from a capture of real Linux TCP (veth, checksum offload off):',
         '// see deploy/capture-golden-segments.sh. IPv4 packets, Ethernet header removed.', '',
         '/// Golden IPv4/TCP packets captured from Linux, one per segment kind.', 'enum GoldenSegments {']
for index, name in names.items():
    hexed = packets[index].hex()
    lines.append(f'    static let {name} = bytes("""')
    lines += ['        ' + hexed[i:i + 96] for i in range(0, len(hexed), 96)]
    lines.append('        """)')
lines.append('}')
tail = open(sys.argv[2]).read().split('\n/// A golden packet with a short name', 1)
open(sys.argv[2], 'w').write('\n'.join(lines) + '\n' + ('\n/// A golden packet with a short name' + tail[1] if len(tail) == 2 else ''))
PY
echo "wrote $out (field values in GoldenSegmentTests.swift must be updated to match the new capture)"
