#!/usr/bin/env python3
"""Writes the seed inputs of Tests/fuzz-corpus/ that are binary protocol streams or images: a few
well-formed conversations and files per target, which the fuzzer then mutates. Run from the
repository root; qcow2 seeds need qemu-img and qemu-io. Re-running rewrites the same files."""
import os, struct, subprocess, tempfile

ROOT = 'Tests/fuzz-corpus'

def put(target, name, data):
    os.makedirs(f'{ROOT}/{target}', exist_ok=True)
    with open(f'{ROOT}/{target}/{name}', 'wb') as f:
        f.write(data)

# --- nbd-server: what a client sends --------------------------------------------------------
OPT_MAGIC = 0x49484156454F5054
REQ_MAGIC = 0x25609513

def option(kind, data=b''):
    return struct.pack('>QII', OPT_MAGIC, kind, len(data)) + data

def request(kind, handle, offset, length, flags=0, payload=b''):
    return struct.pack('>IHHQQI', REQ_MAGIC, flags, kind, handle, offset, length) + payload

def name(text):
    return struct.pack('>I', len(text)) + text

go = option(7, name(b'exp') + struct.pack('>HHH', 2, 3, 0))
meta = option(10, name(b'exp') + struct.pack('>I', 1) + name(b'base:allocation'))
put('nbd-server', 'go-read-write', struct.pack('>I', 3) + option(8) + go
    + request(0, 1, 0, 4096) + request(1, 2, 512, 512, payload=bytes(range(256)) * 2)
    + request(3, 3, 0, 0) + request(2, 4, 0, 0))
put('nbd-server', 'list-info-meta', struct.pack('>I', 1) + option(3) + option(6, name(b'exp') + struct.pack('>H', 0))
    + option(8) + meta + option(9, name(b'exp') + struct.pack('>I', 1) + name(b'base:')) + go
    + request(7, 1, 0, 1 << 20) + request(6, 2, 4096, 8192, flags=2) + request(4, 3, 0, 65536) + request(5, 4, 0, 0))
put('nbd-server', 'export-name', struct.pack('>I', 1) + option(1, b'exp') + request(0, 7, 1 << 20, 512) + request(2, 0, 0, 0))
put('nbd-server', 'abort', struct.pack('>I', 3) + option(2))

# --- nbd-client: what a server sends (the client asks: STRUCTURED_REPLY, GO "exp") ------------
REP_MAGIC = 0x3e889045565a9
SIMPLE, CHUNK = 0x67446698, 0x668e33ef

def reply(opt, kind, data=b''):
    return struct.pack('>QIII', REP_MAGIC, opt, kind, len(data)) + data

greeting = struct.pack('>QQH', 0x4e42444d41474943, OPT_MAGIC, 3)
flags = 1 | 4 | 0x20 | 0x40  # HAS_FLAGS, SEND_FLUSH, SEND_TRIM, SEND_WRITE_ZEROES
info = (reply(7, 3, struct.pack('>HQH', 0, 1 << 20, flags)) + reply(7, 3, struct.pack('>HIII', 3, 1, 4096, 1 << 25))
        + reply(7, 1))
simple_tail = b''.join(struct.pack('>IIQ', SIMPLE, 0, h) for h in (2, 3, 4, 5))
put('nbd-client', 'structured', greeting + reply(8, 1) + info
    + struct.pack('>IHHQI', CHUNK, 0, 1, 1, 8 + 2048) + struct.pack('>Q', 0) + b'\xab' * 2048
    + struct.pack('>IHHQI', CHUNK, 0, 2, 1, 12) + struct.pack('>QI', 2048, 2048)
    + struct.pack('>IHHQI', CHUNK, 1, 0, 1, 0) + simple_tail)
put('nbd-client', 'structured-error', greeting + reply(8, 1) + info
    + struct.pack('>IHHQI', CHUNK, 1, 32769, 1, 10) + struct.pack('>IH', 5, 4) + b'oops' + simple_tail)
put('nbd-client', 'simple', greeting + reply(8, (1 << 31) + 1) + info
    + struct.pack('>IIQ', SIMPLE, 0, 1) + b'\xcd' * 4096 + simple_tail)
put('nbd-client', 'export-name', struct.pack('>QQH', 0x4e42444d41474943, OPT_MAGIC, 1) + reply(8, (1 << 31) + 1)
    + reply(7, (1 << 31) + 1) + struct.pack('>QH', 4096, 1 | 4) + bytes(124) + struct.pack('>IIQ', SIMPLE, 0, 1) + bytes(4096))

# --- virtio: 24 bytes of register values, then guest RAM -----------------------------------
def virtio(descs, chain_data, features=0, size=8, kicks=0):
    ram = bytearray(0x1000)
    for i, (addr, length, fl, nxt) in enumerate(descs):
        struct.pack_into('<QIHH', ram, 0x100 + 16 * i, addr, length, fl, nxt)
    struct.pack_into('<HHH', ram, 0x200, 0, 1, 0)  # avail: flags, idx 1, ring[0] = head 0
    for addr, data in chain_data:
        ram[addr:addr + len(data)] = data
    header = struct.pack('<IIIIII', features, 0, size | kicks << 24, 0x100, 0x200, 0x300)
    return header + bytes(ram)

NEXT, WRITE, INDIRECT = 1, 2, 4
def blk(kind, sector):
    return struct.pack('<IIQ', kind, 0, sector)
put('virtio', 'read', virtio([(0x400, 16, NEXT, 1), (0x600, 512, NEXT | WRITE, 2), (0x800, 1, WRITE, 0)], [(0x400, blk(0, 0))]))
put('virtio', 'write', virtio([(0x400, 16, NEXT, 1), (0x600, 512, NEXT, 2), (0x800, 1, WRITE, 0)], [(0x400, blk(1, 7))]))
put('virtio', 'get-id', virtio([(0x400, 16, NEXT, 1), (0x600, 20, NEXT | WRITE, 2), (0x800, 1, WRITE, 0)], [(0x400, blk(8, 0))]))
put('virtio', 'discard', virtio([(0x400, 16, NEXT, 1), (0x600, 16, NEXT, 2), (0x800, 1, WRITE, 0)],
                                [(0x400, blk(11, 0)), (0x600, struct.pack('<QII', 8, 16, 0))]))
put('virtio', 'write-zeroes-event-idx', virtio([(0x400, 16, NEXT, 1), (0x600, 16, NEXT, 2), (0x800, 1, WRITE, 0)],
                                [(0x400, blk(13, 0)), (0x600, struct.pack('<QII', 0, 8, 1))], features=1 << 29, kicks=2))
put('virtio', 'indirect-flush', virtio([(0xa00, 48, INDIRECT, 0)],
                                [(0x400, blk(4, 0)), (0xa00, struct.pack('<QIHH', 0x400, 16, NEXT, 1) + struct.pack('<QIHH', 0x800, 1, WRITE, 0))],
                                features=1 << 28))

# --- qcow2: small images made by QEMU's own tools ------------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    def img(name, opts, size, writes=(), extra=None):
        path = f'{tmp}/{name}'
        subprocess.run(['qemu-img', 'create', '-q', '-u', '-f', 'qcow2', '-o', opts, path, size], check=True)
        for w in writes:
            subprocess.run(['qemu-io', '-f', 'qcow2', '-c', w, path], check=True, capture_output=True)
        if extra:
            extra(path)
        put('qcow2', name, open(path, 'rb').read())
    img('v3-512', 'cluster_size=512', '64K', ['write -P 0x5a 0 2k', 'write -z 8k 1k'])
    img('v2-512', 'cluster_size=512,compat=0.10', '64K', ['write -P 0x11 4k 1k'])
    img('backing-name', 'cluster_size=512,backing_file=base.raw,backing_fmt=raw', '32K')
    img('snapshot', 'cluster_size=512', '16K', ['write -P 0x22 0 512'],
        lambda p: subprocess.run(['qemu-img', 'snapshot', '-c', 'snap1', p], check=True))
    img('refcount-bits-1', 'cluster_size=512,refcount_bits=1', '16K', ['write -P 0x33 512 512'])
    img('compressed', 'cluster_size=512', '16K', ['write -c -P 0x44 0 512'])

# --- state: a selector byte (StateSectionKind's order), then the section's payload -------------
# cpu 0, kvm-clock 1, kvm-irqchip 2, kvm-pit 3, serial 4, debug-exit 5, virtio-mmio 6, virtqueue 7, virtio-blk 8
def lestr(text):
    return struct.pack('<I', len(text)) + text

def queue_layout(size, ready, desc, avail, used):
    return struct.pack('<HBQQQ', size, ready, desc, avail, used)

def transport(status, features, broken=None, queues=(queue_layout(8, 1, 0x1000, 0x2000, 0x3000),)):
    head = struct.pack('<IIIQIII', status, 0, 1, features, 0, 1 if broken else 0, 0)
    reason = struct.pack('<B', 1) + lestr(broken) if broken else struct.pack('<B', 0) + lestr(b'')
    return head + reason + struct.pack('<H', len(queues)) + b''.join(queues)

BLK_FEATURES = (1 << 2) | (1 << 6) | (1 << 9) | (1 << 13) | (1 << 14) | (1 << 28) | (1 << 29)
V1_EVENT_IDX = (1 << 32) | (1 << 29)
pit_channel = struct.pack('<IHBBBBBBBBBBq', 0x10000, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 1, 0)
cpu = struct.pack('<BB', 1, 1) + bytes(144 + 312 + 4096 + 392 + 128 + 1024 + 64) + struct.pack('<I', 0) \
    + struct.pack('<I', 2) + struct.pack('<IQ', 0x10, 12345) + struct.pack('<IQ', 0x1b, 0xfee00900)
put('state', 'cpu', b'\x00' + cpu)
put('state', 'kvm-clock', b'\x01' + struct.pack('<QII', 5_000_000_000, 0, 0) + bytes(32))
put('state', 'kvm-irqchip-ioapic', b'\x02' + struct.pack('<IIQ', 2, 0, 0xfec00000) + bytes(504))
put('state', 'kvm-pit', b'\x03' + pit_channel * 3 + bytes(40))
put('state', 'serial', b'\x04' + struct.pack('<BBBBH', 5, 3, 0x0b, 0x42, 1))
put('state', 'debug-exit', b'\x05' + struct.pack('<HB', 0x501, 1))
put('state', 'virtio-mmio-live', b'\x06' + transport(0xf, V1_EVENT_IDX))
put('state', 'virtio-mmio-broken', b'\x06' + transport(0x4f, V1_EVENT_IDX, broken=b'virtio-blk missing headers'))
put('state', 'virtio-mmio-reset', b'\x06' + transport(0, 0, queues=(queue_layout(128, 0, 0, 0, 0),)))
put('state', 'virtqueue', b'\x07' + struct.pack('<HHHB', 3, 3, 2, 1))
put('state', 'virtio-blk', b'\x08' + struct.pack('<QQ', 2048, BLK_FEATURES) + lestr(b'fuzz'))
