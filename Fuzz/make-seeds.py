#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora under Fuzz/corpus/<target>/ (committed; rerun after a
change of an input format): the golden segments captured from Linux
(Tests/FTCPWireTests/GoldenSegments.swift) and small hand-made inputs in each target's format,
described in the target's doc comment. Standard library only.

    python3 Fuzz/make-seeds.py
"""

import pathlib
import re
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Fuzz" / "corpus"


def golden_segments():
    """name -> bytes of every `static let name = bytes(\"\"\" hex \"\"\")` in GoldenSegments.swift."""
    text = (ROOT / "Tests" / "FTCPWireTests" / "GoldenSegments.swift").read_text()
    found = {}
    for name, hex_digits in re.findall(r'static let (\w+) = bytes\(\s*"""(.*?)"""', text, re.S):
        found[name] = bytes.fromhex("".join(hex_digits.split()))
    assert found, "no golden segments found"
    return found


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def wire_packet(golden):
    for name, packet in golden.items():
        write("wire-packet", name, bytes([0x00]) + packet)
    # Every setter, and trailing Ethernet padding allowed.
    write("wire-packet", "syn-all-setters", bytes([0xFE]) + golden["syn"])
    write("wire-packet", "rst-padded", bytes([0x01]) + golden["rstAck"] + bytes(6))


def segment_coalescing():
    # piece size 1448, limit 65,455; then per segment: shape, length, jump, steps, options.
    full_run = bytes([0, 0, 0]) + bytes([0x00, 0x00, 0x00, 0x01, 0x01]) * 8 + bytes([0x0C, 0x85, 0x00, 0x00, 0x01])
    write("segment-coalescing", "one-run", full_run)
    # Two connections interleaved, a retransmission, a FIN, urgent data, short segments.
    mixed = bytes([1, 0, 2])
    for shape, length, jump in [(0, 0, 0), (1, 0, 0), (0, 0, 0), (1, 0, 0xC5), (0x10, 0x83, 0), (0x14, 0x90, 0),
                                (2, 0x60, 0), (0x1C, 0xE0, 0x01)]:
        mixed += bytes([shape, length, jump, 0x03, 0x06])
    write("segment-coalescing", "mixed", mixed)
    write("segment-coalescing", "tiny-pieces", bytes([3, 0, 5]) + bytes([0x00, 0xC3, 0x00, 0x00, 0x00]) * 3)


def replication_opener():
    def heartbeat(sealer=0):
        return bytes([1, 1]) + bytes(range(8)) + bytes([7]) + bytes([0, 0, 0, 3]) + bytes(range(8)) + bytes([sealer])

    def inject(length, sealer=0):
        return bytes([1, 0]) + struct.pack(">H", length) + bytes(range(length)) + bytes([sealer])

    script = bytes([0]) + heartbeat() + inject(40) + heartbeat() + bytes([3, 1, 0, 0x10, 0, 3])
    script += bytes([3, 0, 4]) + bytes([4, 20, 1]) + heartbeat(2) + inject(60, 1)
    write("replication-opener", "sealed-then-replayed", script)
    # Hand-made authentic datagrams: a heartbeat of a later version, a resend request, released.
    authentic = bytes([1])
    authentic += bytes([2, 1, 0, 0, 2, 1]) + bytes([2, 1]) + bytes([30]) + bytes(30)
    authentic += bytes([2, 1, 0, 0, 3, 2]) + struct.pack(">QI", 5, 10) + bytes([0])
    authentic += bytes([2, 1, 0, 0, 5, 4, 2, 0]) + bytes(range(16))
    authentic += bytes([2, 1, 0, 4, 1, 3, 2, 0, 10, 1]) + bytes(10) + bytes([12, 1]) + bytes(12)
    authentic += bytes([2, 0, 0, 0, 2, 1, 2, 1]) + bytes(20)
    write("replication-opener", "hand-made", authentic)
    noise = bytes([0, 0, 0, 60]) + b"FTCR\x01\x03\x01\x00" + bytes(52) + bytes([5, 12]) + bytes(range(24))
    write("replication-opener", "noise-and-window", noise)


# The bridge-cores input format (BridgeCoresFuzzer.swift): an event is an opcode, then for a
# segment an endpoint byte, shape, sequence choice, acknowledgment choice, length, corruption
# and options (with their fields), then a route byte (client) or relay byte (secondary).
TIMESTAMPS = bytes([0x08]) + struct.pack(">II", 1000, 2000)
HANDSHAKE_OPTIONS = bytes([0x0F, 0x00, 0x07]) + struct.pack(">II", 1000, 0)


def client(shape, length=0, options=TIMESTAMPS, endpoint=0, route=0, sequence=0, ack=0):
    return bytes([0x00, endpoint, shape, sequence, ack, length, 0]) + options + bytes([route])


def from_primary(shape, length=0, options=TIMESTAMPS, endpoint=0):
    return bytes([0x03, endpoint, shape, 0, 0, length, 0]) + options


def from_secondary(shape, length=0, options=TIMESTAMPS, endpoint=0, relay=0):
    return bytes([0x06, endpoint, shape, 0, 0, length, 0]) + options + bytes([relay])


def handshake(endpoint=0):
    return (client(0x07, options=HANDSHAKE_OPTIONS, endpoint=endpoint)
            + from_primary(0x07, options=HANDSHAKE_OPTIONS, endpoint=endpoint)
            + from_secondary(0x07, options=HANDSHAKE_OPTIONS, endpoint=endpoint)
            + client(0x00, endpoint=endpoint))


def bridge_cores():
    data = from_primary(0x05, 0xA8) + from_secondary(0x05, 0xA8) + client(0x00) + client(0x05, 0x4A)
    close = from_primary(0x08) + from_secondary(0x08) + client(0x08) + client(0x00)
    write("bridge-cores", "handshake-data-close", bytes([0x16]) + handshake() + data + close
          + bytes([0x39, 5, 0x1B, 0x0F]))
    write("bridge-cores", "secondary-fails", bytes([0x16]) + handshake() + from_primary(0x05, 0xC8)
          + bytes([0x0A]) + from_primary(0x05, 0x50) + client(0x00) + bytes([0x3A]) + client(0x07, endpoint=0x04))
    write("bridge-cores", "takeover-mid-stream", bytes([0x15]) + handshake() + from_secondary(0x05, 0xC8)
          + from_primary(0x05, 0x44) + bytes([0x1B]) + client(0x00) + from_secondary(0x05, 0x44) + bytes([0x0F]))
    write("bridge-cores", "syn-flood", bytes([0x00]) + b"".join(
        client(0x07, endpoint=endpoint) for endpoint in [0, 1, 2, 4, 5, 6, 0x80, 0x81]) + handshake(0x82)
          + bytes([0x19, 200]) + client(0x07, endpoint=0x84))
    # The primary's SYN-ACK held as it completes the handshake, the secondary failing, a new SYN
    # while alone (the held SYN-ACK must go with the connection).
    write("bridge-cores", "held-synack-while-alone", bytes([0x16]) + client(0x07, options=HANDSHAKE_OPTIONS)
          + from_secondary(0x07, options=HANDSHAKE_OPTIONS) + from_primary(0x07, options=HANDSHAKE_OPTIONS)
          + bytes([0x0A]) + client(0x07, options=HANDSHAKE_OPTIONS, sequence=0x0E))
    write("bridge-cores", "primary-refuses", bytes([0x16]) + client(0x07, options=HANDSHAKE_OPTIONS)
          + from_primary(0x0A) + from_secondary(0x07, options=HANDSHAKE_OPTIONS) + client(0x00)
          + from_secondary(0x05, 0x60) + client(0x00))


def config_file():
    sample = (ROOT / "deploy" / "ftcp.conf.sample").read_bytes()
    write("config-file", "sample", sample)
    settings = (b"address = 192.0.2.10\npeer = 192.0.2.11\nservice-address = \"192.0.2.100\"\n"
                b"service-address = 192.0.2.101 # a second one\nhand-over-on-stop = yes\nverbose = off\n")
    write("config-file", "settings", settings)
    write("config-file", "settings-crlf", settings.replace(b"\n", b"\r\n"))
    write("config-file", "errors", b"adress = 192.0.2.10\npeer\nverbose = maybe\npeer = 1\npeer = 2\nkey-file =\n")


def arp_packet():
    own = bytes([0x02, 0, 0, 0, 0, 0x01])
    address = bytes([192, 0, 2, 100])
    header = bytes([0, 1, 8, 0, 6, 4])
    write("arp-packet", "gratuitous-request", header + bytes([0, 1]) + own + address + bytes(6) + address)
    write("arp-packet", "reply-padded", header + bytes([0, 2]) + own + address + own + address + bytes(18))
    write("arp-packet", "probe", header + bytes([0, 1]) + own + bytes(4) + bytes(6) + address)
    write("arp-packet", "mac-text", b"02:00:5e:10:00:01")
    write("arp-packet", "ipv4-text", b"192.0.2.100")


def key_file():
    key = bytes(range(32)).hex()
    write("key-file", "key", f"# ftcp replication key\n# Secret.\nftcp-key-v1 {key}\n".encode())
    write("key-file", "key-crlf", f"\tftcp-key-v1   {key.upper()}  \r\n\r\n".encode())
    write("key-file", "two-lines", f"ftcp-key-v1 {key}\nftcp-key-v1 {key}\n".encode())
    write("key-file", "bad-digit", f"ftcp-key-v1 {key[:-1]}g\n".encode())


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    golden = golden_segments()
    wire_packet(golden)
    segment_coalescing()
    replication_opener()
    bridge_cores()
    config_file()
    arp_packet()
    key_file()
    for folder in sorted(CORPUS.iterdir()):
        print(f"{folder.relative_to(ROOT)}: {len(list(folder.iterdir()))} files")


if __name__ == "__main__":
    main()
