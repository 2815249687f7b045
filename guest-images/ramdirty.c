/*
 * ramdirty.c - mode=ramdirty [mb=N]: a RAM-correctness witness for migration
 * (QEMU's qtest A-B bootblock idea). The region of N MiB (default 16) at
 * 8 MiB is rewritten page by page, pass p = 1, 2, ...; before a page is
 * overwritten every one of its words is checked to hold pass p-1. A page a
 * migration lost or sent stale shows up as a mismatch on the destination.
 * Needs -m of at least 8 + N MiB. Runs in ring 3 at native speed, so it
 * dirties the whole region many times a second.
 *
 * Page i, pass p (512 little-endian u64 words):
 *   w[k] = (RAMDIRTY_TAG ^ (i << 20) ^ p) * 0x9e3779b97f4a7c15 + k
 */
#include "guest.h"

#define REGION_BASE  0x800000ull                /* above the image, FDT and start info */
#define RAMDIRTY_TAG 0x52414d4449525459ull      /* "RAMDIRTY" */
#define PAGE_WORDS   512

static uint64_t word_base(uint64_t page, uint64_t pass)
{
    return (RAMDIRTY_TAG ^ (page << 20) ^ pass) * 0x9e3779b97f4a7c15ull;
}

static NORETURN void mismatch(uint64_t page, uint64_t k, uint64_t pass, uint64_t seen)
{
    print("RAMDIRTY FAIL: page ");
    print_dec(page);
    print(" word ");
    print_dec(k);
    print(" pass ");
    print_dec(pass);
    print(" holds ");
    print_hex(seen);
    putch('\n');
    guest_exit(EXIT_RAMDIRTY);
}

NORETURN void ramdirty(const char *cl)
{
    uint64_t mb = 16, v;
    size_t n;
    const char *p = cmdline_get(cl, "mb", &n);
    if (p && parse_num(p, n, &v) && v > 0 && v <= 2048)
        mb = v;
    uint64_t pages = mb << 8;
    volatile uint64_t *region = (volatile uint64_t *)(uintptr_t)REGION_BASE;
    print("RAMDIRTY start mb=");
    print_dec(mb);
    putch('\n');
    for (uint64_t pass = 1;; pass++) {
        for (uint64_t page = 0; page < pages; page++) {
            volatile uint64_t *w = region + page * PAGE_WORDS;
            if (pass > 1) {
                uint64_t expect = word_base(page, pass - 1);
                for (uint64_t k = 0; k < PAGE_WORDS; k++)
                    if (w[k] != expect + k)
                        mismatch(page, k, pass - 1, w[k]);
            }
            uint64_t next = word_base(page, pass);
            for (uint64_t k = 0; k < PAGE_WORDS; k++)
                w[k] = next + k;
        }
        print("RAMDIRTY pass ");
        print_dec(pass);
        print(" ok\n");
    }
}
