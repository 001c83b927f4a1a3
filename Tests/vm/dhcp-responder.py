#!/usr/bin/env python3
"""A second DHCP server for a QEMU station, on a UDP-socket netdev (stdlib only).

    dhcp-responder.py --log FILE --port-range LOW-HIGH --root-path TEXT
                      [--lifetime SECONDS] [--delay-ms MS] [--server-id IP]
                      [--address IP] [--netmask IP] [--router IP] [--dns IP]
                      [--next-server IP]

QEMU 7.2's user network (slirp) cannot send a root-path (option 17) and
cannot have its DHCP server turned off. So the test puts the station's NIC on
a QEMU hub together with slirp and a datagram netdev,

    -netdev dgram,id=x,local.type=inet,local.host=127.0.0.1,local.port=QEMU,
            remote.type=inet,remote.host=127.0.0.1,remote.port=PEER

which carries every Ethernet frame of the hub as one UDP datagram to
127.0.0.1:PEER, and puts each datagram sent to 127.0.0.1:QEMU on the hub as
a frame. This program is PEER: it binds a free UDP port of --port-range on
127.0.0.1, picks a second free one for QEMU's end, and logs `ready PEER QEMU`.

It answers a DHCPDISCOVER with an OFFER and a DHCPREQUEST that names it
(option 54 = --server-id) with an ACK, both carrying --root-path and the
address slirp gives (10.0.2.15/24, router 10.0.2.2, DNS 10.0.2.3, by
default), as raw Ethernet + IPv4 + UDP frames broadcast from port 67 to 68.
A REQUEST naming another server is not answered (RFC 2131 4.3.2: the client
chose that server). --delay-ms holds each answer back (a slower boot server:
slirp's reply then always comes first). ARP, slirp's own replies and the
station's TCP are left alone: slirp handles them.

Each message is logged to FILE as it arrives, one line each:
    DISCOVER xid=0x1a2b3c4d mac=52:54:00:12:34:56 -> OFFER 10.0.2.15
    REQUEST xid=0x1a2b3c4d server=10.0.2.2 addr=10.0.2.15 -> not ours, ignored
    REQUEST xid=0x1a2b3c4d server=10.0.2.77 addr=10.0.2.15 -> ACK 10.0.2.15
Exits after --lifetime seconds (default 300), so a test that dies cannot
leave it behind for long.
"""
import argparse
import errno
import ipaddress
import random
import select
import socket
import struct
import sys
import time

MAC = bytes.fromhex("02000a00024d")  # locally administered, "10.0.2.77"
COOKIE = b"\x63\x82\x53\x63"


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def parse_request(frame):
    """(xid, flags, chaddr, type, options) of a BOOTREQUEST to port 67, or None."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 17 or len(ip) < ihl + 8:
        return None
    _sport, dport, ulen, _sum = struct.unpack("!HHHH", ip[ihl:ihl + 8])
    if dport != 67:
        return None
    b = ip[ihl + 8:ihl + ulen]
    if len(b) < 240 or b[0] != 1 or b[236:240] != COOKIE:
        return None
    xid, _secs, flags = struct.unpack("!IHH", b[4:12])
    chaddr = b[28:34]
    options, i = {}, 240
    while i < len(b):
        code = b[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(b):
            break
        n = b[i + 1]
        options[code] = options.get(code, b"") + b[i + 2:i + 2 + n]
        i += 2 + n
    mtype = options.get(53, b"\0")[0]
    return xid, flags, chaddr, mtype, options


def reply_frame(a, xid, flags, chaddr, mtype):
    """An OFFER (2) or ACK (5) as a broadcast Ethernet frame."""
    ip4 = lambda s: ipaddress.IPv4Address(s).packed
    bootp = struct.pack("!BBBBIHH", 2, 1, 6, 0, xid, 0, flags)
    bootp += ip4("0.0.0.0") + ip4(a.address) + ip4(a.next_server) + ip4("0.0.0.0")
    bootp += chaddr + b"\0" * 10 + b"\0" * 64 + b"\0" * 128 + COOKIE
    root = a.root_path.encode()
    opts = [(53, bytes([mtype])), (54, ip4(a.server_id)), (51, struct.pack("!I", 86400)),
            (1, ip4(a.netmask)), (3, ip4(a.router)), (6, ip4(a.dns)), (17, root)]
    for code, data in opts:
        bootp += bytes([code, len(data)]) + data
    bootp += b"\xff"
    bootp += b"\0" * max(0, 300 - len(bootp))
    src, dst = ip4(a.server_id), ip4("255.255.255.255")
    udp_len = 8 + len(bootp)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", 67, 68, udp_len, 0) + bootp
    usum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", usum) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, 20 + udp_len, random.randrange(65536), 0, 64, 17, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return b"\xff" * 6 + MAC + b"\x08\x00" + hdr + udp


def bind_free(low, high, exclude=()):
    """A UDP socket bound to a free port of LOW-HIGH on 127.0.0.1, scanned from a random start."""
    span = high - low + 1
    start = random.randrange(span)
    for k in range(span):
        port = low + (start + k) % span
        if port in exclude:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return s, port
        except OSError as e:
            s.close()
            if e.errno != errno.EADDRINUSE:
                raise
    sys.exit("dhcp-responder: no free UDP port in %d-%d" % (low, high))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--port-range", required=True, help="LOW-HIGH")
    p.add_argument("--root-path", required=True)
    p.add_argument("--lifetime", type=float, default=300)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--server-id", default="10.0.2.77")
    p.add_argument("--address", default="10.0.2.15")
    p.add_argument("--netmask", default="255.255.255.0")
    p.add_argument("--router", default="10.0.2.2")
    p.add_argument("--dns", default="10.0.2.3")
    p.add_argument("--next-server", default="10.0.2.2")
    a = p.parse_args()
    low, _, high = a.port_range.partition("-")
    low, high = int(low), int(high)
    sock, peer_port = bind_free(low, high)
    # QEMU binds its end itself: find a port free now and let it go.
    probe, qemu_port = bind_free(low, high, exclude=(peer_port,))
    probe.close()
    log = open(a.log, "a", buffering=1)
    log.write("ready %d %d\n" % (peer_port, qemu_port))
    deadline = time.monotonic() + a.lifetime
    pending = []  # (time to send, frame)
    our_id = ipaddress.IPv4Address(a.server_id).packed
    while True:
        now = time.monotonic()
        if now >= deadline:
            return
        while pending and pending[0][0] <= now:
            _, frame = pending.pop(0)
            sock.sendto(frame, ("127.0.0.1", qemu_port))
        wait = deadline - now
        if pending:
            wait = min(wait, pending[0][0] - now)
        readable, _, _ = select.select([sock], [], [], max(wait, 0))
        if not readable:
            continue
        frame = sock.recv(65536)
        req = parse_request(frame)
        if req is None:
            continue
        xid, flags, chaddr, mtype, options = req
        mac = ":".join("%02x" % x for x in chaddr)
        if mtype == 1:
            out, line = 2, "DISCOVER xid=0x%08x mac=%s -> OFFER %s" % (xid, mac, a.address)
        elif mtype == 3:
            server = options.get(54, b"")
            wanted = options.get(50, b"")
            desc = "REQUEST xid=0x%08x server=%s addr=%s" % (
                xid, ipaddress.IPv4Address(server) if len(server) == 4 else "none",
                ipaddress.IPv4Address(wanted) if len(wanted) == 4 else "none")
            if server != our_id:
                log.write(desc + " -> not ours, ignored\n")
                continue
            out, line = 5, desc + " -> ACK %s" % a.address
        else:
            continue
        # Logged as received (so the log keeps the station's order), sent after --delay-ms.
        log.write(line + "\n")
        pending.append((time.monotonic() + a.delay_ms / 1000, reply_frame(a, xid, flags, chaddr, out)))


if __name__ == "__main__":
    main()
