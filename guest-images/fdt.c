/*
 * fdt.c - just enough of a flattened device tree walker to find
 * virtio-mmio transports (and /chosen/bootargs).
 *
 * A node is a transport when its "compatible" string list contains
 * "virtio,mmio"; its first "reg" entry is decoded with the parent's
 * #address-cells / #size-cells (defaults 2 / 1), "interrupts" first cell
 * is recorded (the guest polls, so it is informational).
 */
#include "guest.h"

#define FDT_MAGIC      0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP        4
#define FDT_END        9
#define MAX_DEPTH      16

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t cells(const uint8_t *p, uint32_t n)
{
    uint64_t v = 0;
    while (n--) {
        v = v << 32 | be32(p);
        p += 4;
    }
    return v;
}

static int strlist_has(const char *list, uint32_t len, const char *want)
{
    size_t wl = strlen(want) + 1;
    for (uint32_t i = 0; i < len;) {
        size_t l = strlen(list + i) + 1;
        if (l == wl && memcmp(list + i, want, wl) == 0)
            return 1;
        i += (uint32_t)l;
    }
    return 0;
}

int fdt_scan(const void *blob, struct mmio_dev *devs, int max, const char **bootargs)
{
    const uint8_t *f = blob;
    if (be32(f) != FDT_MAGIC)
        return -1;
    const uint8_t *p = f + be32(f + 8);             /* off_dt_struct */
    const uint8_t *end = f + be32(f + 4);           /* totalsize */
    const char *strings = (const char *)f + be32(f + 12);

    uint32_t acells[MAX_DEPTH + 1], scells[MAX_DEPTH + 1];
    struct { int virtio, chosen, has_reg; struct mmio_dev d; } node[MAX_DEPTH + 1];
    int depth = 0, count = 0;
    acells[0] = 2;
    scells[0] = 1;

    while (p + 4 <= end) {
        uint32_t tok = be32(p);
        p += 4;
        if (tok == FDT_BEGIN_NODE) {
            const char *name = (const char *)p;
            size_t l = strlen(name);
            if (++depth > MAX_DEPTH)
                return -1;
            acells[depth] = 2;
            scells[depth] = 1;
            memset(&node[depth], 0, sizeof(node[depth]));
            node[depth].chosen = depth == 2 && (str_is(name, l, "chosen") ||
                                                (l > 7 && memcmp(name, "chosen@", 7) == 0));
            p += (l + 1 + 3) & ~(size_t)3;
        } else if (tok == FDT_END_NODE) {
            if (depth <= 0)
                return -1;
            if (node[depth].virtio && node[depth].has_reg && count < max)
                devs[count++] = node[depth].d;
            depth--;
        } else if (tok == FDT_PROP) {
            uint32_t len = be32(p), nameoff = be32(p + 4);
            const uint8_t *val = p + 8;
            const char *name = strings + nameoff;
            p = val + ((len + 3) & ~3u);
            if (depth <= 0)
                continue;
            if (!memcmp(name, "#address-cells", 15) && len >= 4)
                acells[depth] = be32(val);
            else if (!memcmp(name, "#size-cells", 12) && len >= 4)
                scells[depth] = be32(val);
            else if (!memcmp(name, "compatible", 11))
                node[depth].virtio = strlist_has((const char *)val, len, "virtio,mmio");
            else if (!memcmp(name, "reg", 4)) {
                uint32_t ac = acells[depth - 1], sc = scells[depth - 1];
                if (ac <= 2 && sc <= 2 && len >= 4 * (ac + sc)) {
                    node[depth].d.base = cells(val, ac);
                    node[depth].d.size = cells(val + 4 * ac, sc);
                    node[depth].has_reg = 1;
                }
            } else if (!memcmp(name, "interrupts", 11) && len >= 4)
                node[depth].d.irq = be32(val);
            else if (!memcmp(name, "bootargs", 9) && node[depth].chosen && bootargs)
                *bootargs = (const char *)val;
        } else if (tok == FDT_NOP) {
            continue;
        } else {                                    /* FDT_END or garbage */
            break;
        }
    }
    return count;
}
