"""Rewrites svmm migration-stream seeds of version 2 as version 3 (ram records: table first),
with an independent CRC-32C (table-driven, Python)."""
import struct, sys, glob
POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
def convert(d):
    out = bytearray(d[:16]); out[8:12] = struct.pack('>I', 3)
    pos = 16
    while pos < len(d):
        if pos + 2 > len(d): out += d[pos:]; break
        t = d[pos]; nl = d[pos+1]; hend = pos + 14 + nl
        if hend > len(d): out += d[pos:]; break
        inst, ver, ln = struct.unpack('>III', d[pos+2+nl:hend])
        payload = d[hend:hend+ln]; stored = d[hend+ln:hend+ln+4]
        if len(payload) < ln or len(stored) < 4: out += d[pos:]; break
        header = bytearray(d[pos:hend])
        good = struct.unpack('>I', stored)[0] == crc32c(d[pos:hend+ln])
        if t == 2:
            entries, data, p = [], b'', 0
            while p + 5 <= len(payload):
                idx, kind = struct.unpack('>IB', payload[p:p+5]); p += 5
                entries.append((idx, kind))
                if kind == 1: data += payload[p:p+4096]; p += 4096
            payload = struct.pack('>I', len(entries)) + b''.join(struct.pack('>IB', i, k) for i, k in entries) + data
            header[10+nl:14+nl] = struct.pack('>I', len(payload))
        crc = crc32c(bytes(header) + payload)
        if not good: crc ^= 1
        out += header + payload + struct.pack('>I', crc)
        pos = hend + ln + 4
    return bytes(out)
for f in sys.argv[1:]:
    d = open(f, 'rb').read()
    if d[8:12] != struct.pack('>I', 2): print("skip", f); continue
    open(f, 'wb').write(convert(d)); print("converted", f)
