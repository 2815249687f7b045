/*
 * selftest.c - mode=selftest: write a pattern over the whole disk, read it
 * back, exercise FLUSH / WRITE_ZEROES / DISCARD / GET_ID, multi-descriptor
 * chains and indirect tables.
 *
 * Pattern: sector s holds 64 little-endian u64, word i = PATTERN | s << 8 | i.
 */
#include "virtio.h"

#define PATTERN     0x5356000000000000ull       /* "SV" */
#define CHUNK       128                         /* sectors per request: 64 KiB */
#define CHUNK_BYTES (CHUNK * 512)
#define PIPE        8                           /* requests in flight */

typedef void (*chunk_fn)(uint64_t *w, uint64_t sector, uint32_t nsec);

static void fill_pattern(uint64_t *w, uint64_t s, uint32_t nsec)
{
    for (uint32_t k = 0; k < nsec; k++, s++)
        for (uint64_t i = 0; i < 64; i++)
            *w++ = PATTERN | s << 8 | i;
}

static void check_pattern(uint64_t *w, uint64_t s, uint32_t nsec)
{
    for (uint32_t k = 0; k < nsec; k++, s++)
        for (uint64_t i = 0; i < 64; i++)
            if (*w++ != (PATTERN | s << 8 | i)) {
                print("SELFTEST FAIL: mismatch at sector ");
                print_dec(s);
                putch('\n');
                guest_exit(EXIT_MISMATCH);
            }
}

/*
 * Moves sectors [start, start+count) in CHUNK-sized requests, up to PIPE in
 * flight. before() fills a buffer ahead of submission, after() checks one on
 * completion. The first two requests use the layouts l0 and l1.
 */
static void stream(uint32_t type, uint64_t start, uint64_t count, chunk_fn before, chunk_fn after,
                   int l0, int l1)
{
    uint64_t next = start, end = start + count, sec[PIPE];
    uint32_t ns[PIPE], busy = 0, nreq = 0;
    int mask = blk_has(VIRTIO_RING_F_INDIRECT_DESC) ? ~0 : ~BLK_INDIRECT;

    while (next < end || busy) {
        for (int s = 0; s < PIPE && next < end; s++) {
            if (busy & (1u << s))
                continue;
            uint32_t n = end - next < CHUNK ? (uint32_t)(end - next) : CHUNK;
            uint64_t *buf = (uint64_t *)(data_pool + s * CHUNK_BYTES);
            int layout = (nreq == 0 ? l0 : nreq == 1 ? l1 : BLK_NORMAL) & mask;
            if (before)
                before(buf, next, n);
            if (blk_queue(s, type, next, buf, n * 512, layout) < 0)
                break;                          /* ring full: reap first */
            sec[s] = next;
            ns[s] = n;
            busy |= 1u << s;
            next += n;
            nreq++;
        }
        blk_kick();
        int s;
        while ((s = blk_reap()) < 0)
            cpu_relax();
        do {
            if (blk_status(s) != VIRTIO_BLK_S_OK)
                fail_req("SELFTEST", type, blk_status(s), sec[s]);
            if (after)
                after((uint64_t *)(data_pool + s * CHUNK_BYTES), sec[s], ns[s]);
            busy &= ~(1u << s);
        } while ((s = blk_reap()) >= 0);
    }
}

static void sync_ok(uint32_t type, uint64_t sector, void *buf, uint32_t len, int layout)
{
    uint8_t st = blk_sync(type, sector, buf, len, layout);
    if (st != VIRTIO_BLK_S_OK)
        fail_req("SELFTEST", type, st, sector);
}

NORETURN void selftest(void)
{
    const uint64_t C = blk.capacity;
    uint8_t *buf = data_pool;

    /* 1. GET_ID (UNSUPP tolerated: empty id) */
    memset(buf, 0, 20);
    uint8_t st = blk_sync(VIRTIO_BLK_T_GET_ID, 0, buf, 20, BLK_NORMAL);
    if (st != VIRTIO_BLK_S_OK && st != VIRTIO_BLK_S_UNSUPP)
        fail_req("SELFTEST", VIRTIO_BLK_T_GET_ID, st, 0);
    print("ID: ");
    for (int i = 0; i < 20 && st == VIRTIO_BLK_S_OK && buf[i]; i++)
        putch(buf[i] >= 0x20 && buf[i] < 0x7f ? (char)buf[i] : '?');
    putch('\n');

    if (C == 0)
        fail(EXIT_SETUP, "disk has capacity 0");

    /* 2. read-only device: read up to 1 MiB, one OUT must fail with IOERR */
    if (blk_has(VIRTIO_BLK_F_RO)) {
        stream(VIRTIO_BLK_T_IN, 0, C < 2048 ? C : 2048, NULL, NULL, BLK_SPLIT, BLK_INDIRECT);
        sync_ok(VIRTIO_BLK_T_IN, 0, buf, 512, BLK_NORMAL);
        st = blk_sync(VIRTIO_BLK_T_OUT, 0, buf, 512, BLK_NORMAL);   /* writes back sector 0 */
        if (st != VIRTIO_BLK_S_IOERR)
            fail_req("SELFTEST", VIRTIO_BLK_T_OUT, st, 0);
        print("SELFTEST PASS read-only\n");
        guest_exit(EXIT_PASS);
    }

    /* 3. pattern over the whole disk; 4. flush, read back, verify */
    stream(VIRTIO_BLK_T_OUT, 0, C, fill_pattern, NULL, BLK_SPLIT, BLK_INDIRECT);
    if (blk_has(VIRTIO_BLK_F_FLUSH))
        sync_ok(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, BLK_NORMAL);
    stream(VIRTIO_BLK_T_IN, 0, C, NULL, check_pattern, BLK_INDIRECT | BLK_SPLIT, BLK_SPLIT);

    /* 5. write zeroes [Z, Z+64), discard [Z+64, Z+128) */
    if (C >= 256) {
        uint64_t Z = (C / 2) & ~63ull;
        struct { uint64_t sector; uint32_t num_sectors, flags; } *seg = (void *)buf;
        if (blk_has(VIRTIO_BLK_F_WRITE_ZEROES)) {
            *seg = (typeof(*seg)){ Z, 64, 0 };
            sync_ok(VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, sizeof(*seg), BLK_NORMAL);
            memset(buf, 0xa5, 64 * 512);
            sync_ok(VIRTIO_BLK_T_IN, Z, buf, 64 * 512, BLK_NORMAL);
            for (uint32_t i = 0; i < 64 * 512; i++)
                if (buf[i]) {
                    print("SELFTEST FAIL: write-zeroes\n");
                    guest_exit(EXIT_WZEROES);
                }
        }
        if (blk_has(VIRTIO_BLK_F_DISCARD)) {
            *seg = (typeof(*seg)){ Z + 64, 64, 0 };
            sync_ok(VIRTIO_BLK_T_DISCARD, 0, seg, sizeof(*seg), BLK_NORMAL);
        }
    }

    /* 6. */
    if (blk_has(VIRTIO_BLK_F_FLUSH))
        sync_ok(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, BLK_NORMAL);
    print("SELFTEST PASS\n");
    guest_exit(EXIT_PASS);
}
