/*
 * writer.c - mode=writer [size=<sectors>]: endless rounds g = 1, 2, ...
 * stamping every sector with generation g, verifying before each overwrite
 * that the sector still holds g-1 (lost or stale writes after a migration
 * or restart show up as a mismatch).
 *
 * Sector s, generation g (64 little-endian u64 words):
 *   w[0] = 0x5752495445520000 | (s & 0xffff)        "WRITER" tag
 *   w[1] = s
 *   w[2] = g
 *   w[3] = FNV-1a-64 over the words w[0..2], w[4..63] (whole u64s, in order)
 *   w[i] = ((s << 6) + i) * 0x9e3779b97f4a7c15 ^ g   for i = 4..63
 */
#include "virtio.h"

#define WRITER_TAG  0x5752495445520000ull
#define CHUNK       128                         /* sectors per request */
#define PIPE        8                           /* requests in flight */
#define CHUNK_BYTES (CHUNK * 512)

static uint64_t checksum(const uint64_t *w)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 64; i++)
        if (i != 3)
            h = (h ^ w[i]) * 0x100000001b3ull;
    return h;
}

static void stamp(uint64_t *w, uint64_t s, uint64_t g)
{
    w[0] = WRITER_TAG | (s & 0xffff);
    w[1] = s;
    w[2] = g;
    for (uint64_t i = 4; i < 64; i++)
        w[i] = ((s << 6) + i) * 0x9e3779b97f4a7c15ull ^ g;
    w[3] = checksum(w);
}

static int stamp_valid(const uint64_t *w, uint64_t s)
{
    return w[0] == (WRITER_TAG | (s & 0xffff)) && w[1] == s && w[3] == checksum(w);
}

/* Submits nreq requests of CHUNK sectors from `first` (the last may end
 * short at `end`), request i using bufs + i * CHUNK_BYTES; waits for all. */
static void batch(uint32_t type, uint64_t first, int nreq, uint64_t end, uint8_t *bufs)
{
    uint64_t sec[PIPE];
    for (int i = 0; i < nreq; i++) {
        uint64_t s = first + (uint64_t)i * CHUNK, n = end - s < CHUNK ? end - s : CHUNK;
        sec[i] = s;
        if (blk_queue(i, type, s, bufs + i * CHUNK_BYTES, (uint32_t)(n * 512), BLK_NORMAL) < 0)
            fail(EXIT_SETUP, "writer: virtqueue too small");
    }
    blk_kick();
    for (int left = nreq; left;) {
        int s = blk_reap();
        if (s < 0) {
            cpu_relax();
            continue;
        }
        if (blk_status(s) != VIRTIO_BLK_S_OK)
            fail_req("WRITER", type, blk_status(s), sec[s]);
        left--;
    }
}

NORETURN void writer(const char *cl)
{
    uint64_t size = blk.capacity, v;
    size_t n;
    const char *p = cmdline_get(cl, "size", &n);
    if (p && parse_num(p, n, &v) && v > 0 && v < size)
        size = v;
    if (size == 0)
        fail(EXIT_SETUP, "disk has capacity 0");
    int pipe = blk.qsize / 3 < PIPE ? (int)(blk.qsize / 3) : PIPE;

    /* continue from the generation stored in sector 0, if any */
    uint64_t *w = (uint64_t *)data_pool, g = 1;
    int resumed = 0;
    batch(VIRTIO_BLK_T_IN, 0, 1, 1, data_pool);
    if (stamp_valid(w, 0) && w[2] > 0) {
        g = w[2];
        resumed = 1;
        print("WRITER resume gen ");
        print_dec(g);
        putch('\n');
    } else {
        print("WRITER start\n");
    }

    for (;; g++, resumed = 0) {
        for (uint64_t base = 0; base < size; base += (uint64_t)pipe * CHUNK) {
            uint64_t end = base + (uint64_t)pipe * CHUNK < size ? base + (uint64_t)pipe * CHUNK : size;
            int nreq = (int)((end - base + CHUNK - 1) / CHUNK);
            if (g > 1)
                batch(VIRTIO_BLK_T_IN, base, nreq, end, data_pool);
            for (uint64_t s = base; s < end; s++) {
                w = (uint64_t *)(data_pool + (s - base) * 512);
                /* a resumed round may find its own generation where it already wrote */
                if (g > 1 && (!stamp_valid(w, s) || (w[2] != g - 1 && !(resumed && w[2] == g)))) {
                    print("WRITER FAIL: sector ");
                    print_dec(s);
                    print(" gen ");
                    print_dec(w[2]);
                    print(" expected ");
                    print_dec(g - 1);
                    print(stamp_valid(w, s) ? "\n" : " (bad stamp)\n");
                    guest_exit(EXIT_WRITER);
                }
                stamp(w, s, g);
            }
            if (base == 0) {
                /* sector 0 carries the round's generation: it is written
                 * alone and completes before anything else of the round */
                batch(VIRTIO_BLK_T_OUT, 0, 1, end, data_pool);
                if (nreq > 1)
                    batch(VIRTIO_BLK_T_OUT, CHUNK, nreq - 1, end, data_pool + CHUNK_BYTES);
            } else {
                batch(VIRTIO_BLK_T_OUT, base, nreq, end, data_pool);
            }
        }
        if (blk_has(VIRTIO_BLK_F_FLUSH)) {
            uint8_t st = blk_sync(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, BLK_NORMAL);
            if (st != VIRTIO_BLK_S_OK)
                fail_req("WRITER", VIRTIO_BLK_T_FLUSH, st, 0);
        }
        print("WRITER round ");
        print_dec(g);
        print(" ok\n");
    }
}
