#!/usr/bin/env python3
"""A tiny authoritative DNS responder for the QEMU tests (stdlib only).

    dns-responder.py --log FILE [--lifetime SECONDS] [--port 53]
                     [--listen ADDRESS]... NAME=ADDRESS...

Answers A and AAAA questions for the names given (case-insensitively;
a name may be given several times, once per address), NOERROR with no
answer for a known name without a record of the type asked, NXDOMAIN for
any other name. Answer names are compressed (a pointer to the question),
as real servers do. Each question is logged to FILE as `QTYPE NAME RCODE`,
and `ready` once every socket is bound. Exits after --lifetime seconds
(default 300), so a test that dies cannot leave it behind for long.
"""
import argparse
import ipaddress
import select
import socket
import struct
import sys
import time


def parse_question(data):
    """(id, flags, qname text, qtype, end of question) or None."""
    if len(data) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, at = [], 12
    while True:
        if at >= len(data):
            return None
        n = data[at]
        if n == 0:
            at += 1
            break
        if n & 0xC0:
            return None  # no compression in questions
        labels.append(data[at + 1:at + 1 + n].decode("ascii", "replace"))
        at += 1 + n
    if at + 4 > len(data):
        return None
    qtype, _qclass = struct.unpack("!HH", data[at:at + 4])
    return qid, flags, ".".join(labels), qtype, at + 4


def answer(data, records):
    q = parse_question(data)
    if q is None:
        return None, None
    qid, flags, name, qtype, end = q
    key = name.lower().rstrip(".")
    rcode = 0 if key in records else 3
    rrs = []
    for addr in records.get(key, []):
        if qtype == 1 and addr.version == 4:
            rrs.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + addr.packed)
        elif qtype == 28 and addr.version == 6:
            rrs.append(struct.pack("!HHHIH", 0xC00C, 28, 1, 60, 16) + addr.packed)
    header = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(rrs), 0, 0)
    reply = header + data[12:end] + b"".join(rrs)
    kind = {1: "A", 28: "AAAA"}.get(qtype, str(qtype))
    return reply, "%s %s %s" % (kind, name, "NOERROR" if rcode == 0 else "NXDOMAIN")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--lifetime", type=float, default=300)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--listen", action="append")
    p.add_argument("records", nargs="+", metavar="NAME=ADDRESS")
    a = p.parse_args()
    records = {}
    for r in a.records:
        name, _, addr = r.partition("=")
        records.setdefault(name.lower().rstrip("."), []).append(ipaddress.ip_address(addr))
    socks = []
    for host in a.listen or ["127.0.0.1"]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.bind((host, a.port))
        except OSError as e:
            sys.exit("dns-responder: cannot bind %s port %d: %s" % (host, a.port, e))
        socks.append(s)
    log = open(a.log, "a", buffering=1)
    log.write("ready\n")
    deadline = time.monotonic() + a.lifetime
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        readable, _, _ = select.select(socks, [], [], left)
        for s in readable:
            data, peer = s.recvfrom(4096)
            reply, line = answer(data, records)
            if reply is not None:
                s.sendto(reply, peer)
                log.write(line + "\n")


if __name__ == "__main__":
    main()
