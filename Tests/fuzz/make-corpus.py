#!/usr/bin/env python3
"""Writes the seed corpus Tests/fuzz/corpus/: valid conversations for each
fuzz target (first byte = target, see FuzzEntry.swift). Run it again after
changing it: python3 Tests/fuzz/make-corpus.py"""
import os, struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
OPT_MAGIC = b'IHAVEOPT'
REPLY_MAGIC = 0x3e889045565a9
REQ_MAGIC = 0x25609513

def opt(code, data=b''):
    return OPT_MAGIC + struct.pack('>II', code, len(data)) + data

def name_info(name, infos=()):
    n = name.encode()
    return struct.pack('>I', len(n)) + n + struct.pack('>H', len(infos)) + b''.join(struct.pack('>H', i) for i in infos)

def meta(name, queries):
    n = name.encode()
    out = struct.pack('>I', len(n)) + n + struct.pack('>I', len(queries))
    for q in queries:
        out += struct.pack('>I', len(q)) + q.encode()
    return out

def req(cmd, cookie, offset=0, length=0, flags=0, payload=b''):
    return struct.pack('>IHHQQI', REQ_MAGIC, flags, cmd, cookie, offset, length) + payload

def reply(option, rtype, data=b''):
    return struct.pack('>QIII', REPLY_MAGIC, option, rtype, len(data)) + data

seeds = {
    # target 0: a client talking to the server
    'server-go-all-commands': bytes([0]) + struct.pack('>I', 3) + opt(8)
        + opt(10, meta('root', ['base:allocation'])) + opt(7, name_info('root', [0, 1, 2, 3]))
        + req(0, 1, 0, 512) + req(1, 2, 512, 4, 1, b'abcd') + req(3, 3) + req(4, 4, 4096, 4096)
        + req(7, 5, 0, 65536) + req(6, 6, 0, 4096, 2) + req(5, 7, 0, 4096) + req(0, 8, 0, 512, 4)
        + req(2, 9),
    'server-exportname-noflags': bytes([0]) + struct.pack('>I', 0) + opt(1, b'root') + req(0, 1, 0, 4096) + req(2, 2),
    'server-list-info-abort': bytes([0]) + struct.pack('>I', 1) + opt(3) + opt(6, name_info('', [1, 2, 3]))
        + opt(6, name_info('lab')) + opt(9, meta('ro', [])) + opt(2),
    'server-station-go': bytes([0]) + struct.pack('>I', 1) + opt(6, name_info('root@st1', [1])) + opt(7, name_info('root@10.0.2.15'))
        + req(0, 1, 0, 512) + req(2, 2),
    'server-refusals': bytes([0]) + struct.pack('>I', 3) + opt(5) + opt(11) + opt(0x7777, b'xyz') + opt(8) + opt(8)
        + opt(7, name_info('ro')) + req(1, 1, 0, 8, 0, b'12345678') + req(0, 2, 4096, 1) + req(9, 3) + b'\xde\xad\xbe\xef' + bytes(24),
    # target 1: a server talking to the client
    'client-newstyle-go': bytes([1]) + b'NBDMAGIC' + OPT_MAGIC + struct.pack('>H', 3)
        + reply(7, 3, struct.pack('>HQH', 0, 1 << 20, 0x2d)) + reply(7, 3, struct.pack('>HIII', 3, 1, 4096, 32 << 20))
        + reply(7, 1),
    'client-list': bytes([1]) + b'NBDMAGIC' + OPT_MAGIC + struct.pack('>H', 3)
        + reply(3, 2, struct.pack('>I', 4) + b'root' + b'Debian') + reply(3, 2, struct.pack('>I', 0)) + reply(3, 1),
    'client-oldstyle': bytes([1]) + b'NBDMAGIC' + struct.pack('>QQI', 0x00420281861253, 1 << 20, 0x21) + bytes(124),
    'client-go-refused': bytes([1]) + b'NBDMAGIC' + OPT_MAGIC + struct.pack('>H', 1)
        + reply(7, 0x80000001, b'not supported') + struct.pack('>QI', 1 << 20, 0x21) + bytes(124),
    # target 2: configuration text
    'config-nbd-server': bytes([2]) + b'''# nbd-server
[generic]
    port = 10809
    listenaddr = 127.0.0.1, ::1
    allowlist = true
    includedir = /etc/nbd-server/conf.d
    max_threads = 8
[root]
    exportname = /srv/root.img
    readonly = true
    authfile = /etc/nbd-server/lab.allow
    trim = false
    filesize = 512M
    nbdboot_description = Debian\\s12
''',
    'config-allow': bytes([2]) + b'# lab\n192.168.10.0/24\n10.0.2.15\nfd00:1::/64\n::ffff:10.1.2.3\n::\n1:2:3:4:5:6:7:8\n',
    # target 3: single messages
    'wire-request': bytes([3]) + req(1, 0x1122334455667788, 4096, 512, 1),
    'wire-info-request': bytes([3]) + name_info('root', [0, 1, 2, 3]),
    'wire-chunk': bytes([3]) + struct.pack('>IHHQI', 0x668e33ef, 1, 1, 7, 12) + struct.pack('>QI', 0, 4096),
    'wire-error-chunk': bytes([3]) + struct.pack('>IH', 22, 5) + b'error',
}

os.makedirs(HERE, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, name), 'wb') as f:
        f.write(data)
print('wrote %d seeds to %s' % (len(seeds), HERE))
