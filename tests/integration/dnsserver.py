"""
dnsserver.py - a tiny authoritative DNS server for tests (UDP, A records only).

Run as a program inside a network namespace of the test:
    python3 dnsserver.py ADDR PORT NAME=IP[,IP...] ...
It answers A queries for the given names (all addresses, TTL 1), NXDOMAIN for
other names, NOTIMP for anything but a standard query, and prints "ready" on
stdout once it listens. It exits when stdin closes (the test ends).
"""

import socket
import struct
import sys
import threading


def parse_name(msg, off):
    labels = []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


def answer(msg, zone):
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    opcode = (flags >> 11) & 0xF
    if qd != 1 or opcode != 0:
        return struct.pack("!HHHHHH", qid, 0x8004, 0, 0, 0, 0)  # NOTIMP
    name, off = parse_name(msg, 12)
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    question = msg[12:off + 4]
    ips = zone.get(name)
    if ips is None:
        return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
    answers = b""
    count = 0
    if qtype in (1, 255) and qclass == 1:
        for ip in ips:
            answers += struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(ip)
            count += 1
    return struct.pack("!HHHHHH", qid, 0x8180, 1, count, 0, 0) + question + answers


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    zone = {}
    for spec in sys.argv[3:]:
        name, ips = spec.split("=", 1)
        zone[name.lower().rstrip(".")] = [ip for ip in ips.split(",") if ip]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.2)
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("ready", flush=True)
    while not stop.is_set():
        try:
            msg, peer = s.recvfrom(512)
        except socket.timeout:
            continue
        try:
            reply = answer(msg, zone)
        except (ValueError, IndexError, struct.error):
            reply = None
        if reply:
            s.sendto(reply, peer)


if __name__ == "__main__":
    main()
