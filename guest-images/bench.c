/*
 * bench.c - mode=bench qd=<1..64> secs=<n> rw=randread|randwrite|read bs=<bytes>
 * Keeps qd requests in flight for secs seconds, prints BENCH iops=<n> mbps=<n>.
 */
#include "virtio.h"

static uint64_t param(const char *cl, const char *key, uint64_t def)
{
    size_t n;
    uint64_t v;
    const char *s = cmdline_get(cl, key, &n);
    if (!s)
        return def;
    if (!parse_num(s, n, &v)) {
        print("BENCH FAIL: bad ");
        print(key);
        putch('\n');
        guest_exit(EXIT_SETUP);
    }
    return v;
}

/* request positions: xorshift64 over bs-aligned offsets, or sequential with wrap */
struct gen {
    uint64_t nsec, npos, pos, rng;
    int seq;
};

static uint64_t next_sector(struct gen *g)
{
    if (g->seq) {
        uint64_t p = g->pos;
        g->pos = p + 1 < g->npos ? p + 1 : 0;
        return p * g->nsec;
    }
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (g->rng % g->npos) * g->nsec;
}

static void bad(const char *what)
{
    print("BENCH FAIL: bad ");
    print(what);
    putch('\n');
    guest_exit(EXIT_SETUP);
}

NORETURN void bench(const char *cl)
{
    uint64_t qd = param(cl, "qd", 1), secs = param(cl, "secs", 5), bs = param(cl, "bs", 4096);
    size_t rl;
    const char *rw = cmdline_get(cl, "rw", &rl);
    int write = 0, seq = 0;
    if (!rw || str_is(rw, rl, "randread"))
        ;
    else if (str_is(rw, rl, "randwrite"))
        write = 1;
    else if (str_is(rw, rl, "read"))
        seq = 1;
    else
        bad("rw");
    if (qd < 1 || qd > BLK_MAX_SLOTS)
        bad("qd");
    if (bs == 0 || bs % 512 || bs > (1u << 20))
        bad("bs");
    if (secs == 0)
        bad("secs");

    const uint64_t nsec = bs / 512, C = blk.capacity;
    if (C < nsec)
        bad("bs (larger than the disk)");
    const uint64_t npos = C / nsec;

    /* 3 descriptors per request; beyond qsize/3 use indirect tables (1 each) */
    int layout = BLK_NORMAL;
    if (qd * 3 > blk.qsize) {
        if (blk_has(VIRTIO_RING_F_INDIRECT_DESC))
            layout = BLK_INDIRECT;
        else
            qd = blk.qsize / 3;
    }
    if (qd > blk.qsize)
        qd = blk.qsize;

    /* buffers: 4 KiB aligned, shared round-robin when qd * bs exceeds the pool */
    const uint64_t stride = (bs + 4095) & ~4095ull;
    struct gen g = { .nsec = nsec, .npos = npos, .seq = seq, .rng = 0x9e3779b97f4a7c15ull };
    uint32_t type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    uint64_t sec[BLK_MAX_SLOTS];

    uint64_t t0 = rdtsc(), deadline = t0 + secs * tsc_hz, done = 0;
    int inflight = 0, stop = 0;
    for (int s = 0; s < (int)qd; s++, inflight++)
        blk_queue(s, type, sec[s] = next_sector(&g),
                  data_pool + (s % (POOL_SIZE / stride)) * stride, (uint32_t)bs, layout);
    blk_kick();

    while (inflight) {
        int s, got = 0;
        while ((s = blk_reap()) >= 0) {
            got = 1;
            if (blk_status(s) != VIRTIO_BLK_S_OK)
                fail_req("BENCH", type, blk_status(s), sec[s]);
            done++;
            inflight--;
            if (stop || (stop = rdtsc() >= deadline))
                continue;
            blk_queue(s, type, sec[s] = next_sector(&g),
                      data_pool + (s % (POOL_SIZE / stride)) * stride, (uint32_t)bs, layout);
            inflight++;
        }
        if (got)
            blk_kick();
        else
            cpu_relax();
    }
    uint64_t elapsed = rdtsc() - t0;
    uint64_t iops = done * tsc_hz / (elapsed ? elapsed : 1);
    print("BENCH iops=");
    print_dec(iops);
    print(" mbps=");
    print_dec(iops * bs / 1000000);
    putch('\n');
    guest_exit(EXIT_PASS);
}
