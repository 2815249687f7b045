/*
 * virtio.c - virtio-mmio v2 block driver: one split virtqueue, polled.
 *
 * The device works on the rings concurrently from another host thread, so:
 * descriptors and avail ring entries are written before avail->idx (x86
 * keeps stores in order; a compiler barrier keeps gcc from reordering),
 * and an mfence separates the avail->idx store from reading avail_event /
 * used->flags to decide whether to notify. Interrupts are suppressed
 * (the guest runs with IF=0 and polls used->idx).
 */
#include "virtio.h"

#define VRING_DESC_F_NEXT        1
#define VRING_DESC_F_WRITE       2
#define VRING_DESC_F_INDIRECT    4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY   1

#define S_ACK         1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

struct blk_hdr {
    uint32_t type, reserved;
    uint64_t sector;
};

/* rings, sized for QUEUE_MAX; used_event / avail_event sit at ring[qsize] */
static struct vring_desc desc[QUEUE_MAX] __attribute__((aligned(4096)));
static struct {
    uint16_t flags, idx;
    uint16_t ring[QUEUE_MAX + 1];
} avail __attribute__((aligned(4096)));
static struct {
    uint16_t flags, idx;
    struct { uint32_t id, len; } ring[QUEUE_MAX];
    uint16_t avail_event_max;
} used __attribute__((aligned(4096)));

/* per request slot: header (device-readable), status (device-writable), indirect table */
static struct blk_hdr hdr[BLK_MAX_SLOTS] __attribute__((aligned(64)));
static volatile uint8_t status[BLK_MAX_SLOTS];
static struct vring_desc ind[BLK_MAX_SLOTS][4] __attribute__((aligned(64)));

static uint16_t free_head, nfree;               /* free descriptors, linked by .next */
static int8_t slot_of_head[QUEUE_MAX];
static uint16_t avail_shadow, kicked_idx, last_used;
static int event_idx;

struct blk_dev blk;

static inline uint32_t mr(uint32_t off)
{
    return *(volatile uint32_t *)(uintptr_t)(blk.base + off);
}
static inline void mw(uint32_t off, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)(blk.base + off) = v;
}

#define USED_EVENT  (*(volatile uint16_t *)&avail.ring[blk.qsize])
#define AVAIL_EVENT (*(volatile uint16_t *)&used.ring[blk.qsize])

static inline int vring_need_event(uint16_t event, uint16_t new, uint16_t old)
{
    return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

int virtio_probe(uint64_t base, const char **why)
{
    volatile uint32_t *m = (volatile uint32_t *)(uintptr_t)base;
    if (base >= (4ull << 30)) {
        *why = "virtio-mmio base above 4 GiB";
        return -1;
    }
    if (m[VIRTIO_MMIO_MAGIC / 4] != VIRTIO_MMIO_MAGIC_VALUE) {
        *why = "virtio-mmio bad magic";
        return -1;
    }
    if (m[VIRTIO_MMIO_DEVICE_ID / 4] != VIRTIO_ID_BLOCK)
        return 0;
    if (m[VIRTIO_MMIO_VERSION / 4] != 2) {
        *why = "virtio-mmio version is not 2";
        return -1;
    }
    return 1;
}

const char *blk_init(uint64_t base)
{
    blk.base = base;
    mw(VIRTIO_MMIO_STATUS, 0);
    if (mr(VIRTIO_MMIO_STATUS) != 0)
        return "device reset failed";
    mw(VIRTIO_MMIO_STATUS, S_ACK);
    mw(VIRTIO_MMIO_STATUS, S_ACK | S_DRIVER);

    mw(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = mr(VIRTIO_MMIO_DEVICE_FEATURES);
    mw(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)mr(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    if (!(offered & F(VIRTIO_F_VERSION_1)))
        return "feature negotiation: no VIRTIO_F_VERSION_1";
    uint64_t want = offered & (F(VIRTIO_F_VERSION_1) | F(VIRTIO_BLK_F_SEG_MAX) |
                               F(VIRTIO_BLK_F_BLK_SIZE) | F(VIRTIO_BLK_F_RO) |
                               F(VIRTIO_BLK_F_FLUSH) | F(VIRTIO_BLK_F_DISCARD) |
                               F(VIRTIO_BLK_F_WRITE_ZEROES) |
                               F(VIRTIO_RING_F_INDIRECT_DESC) | F(VIRTIO_RING_F_EVENT_IDX));
    mw(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    mw(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)want);
    mw(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    mw(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(want >> 32));
    mw(VIRTIO_MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(mr(VIRTIO_MMIO_STATUS) & S_FEATURES_OK))
        return "feature negotiation: FEATURES_OK not accepted";
    blk.features = want;
    event_idx = blk_has(VIRTIO_RING_F_EVENT_IDX);

    mw(VIRTIO_MMIO_QUEUE_SEL, 0);
    uint32_t max = mr(VIRTIO_MMIO_QUEUE_NUM_MAX), q = QUEUE_MAX;
    if (mr(VIRTIO_MMIO_QUEUE_READY))
        return "queue 0 already ready";
    while (q > max)                             /* power of two <= max */
        q >>= 1;
    if (q < 4)
        return "queue 0 smaller than 4";
    blk.qsize = q;

    for (uint32_t i = 0; i < q; i++)
        desc[i].next = (uint16_t)(i + 1);
    free_head = 0;
    nfree = (uint16_t)q;
    avail.flags = event_idx ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
    USED_EVENT = 0xffff;

    uint64_t d = (uintptr_t)desc, a = (uintptr_t)&avail, u = (uintptr_t)&used;
    mw(VIRTIO_MMIO_QUEUE_NUM, q);
    mw(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d);
    mw(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
    mw(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a);
    mw(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(a >> 32));
    mw(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)u);
    mw(VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(u >> 32));
    mw(VIRTIO_MMIO_QUEUE_READY, 1);

    uint32_t gen, lo, hi;
    do {
        gen = mr(VIRTIO_MMIO_CONFIG_GENERATION);
        lo = mr(VIRTIO_MMIO_CONFIG + 0);
        hi = mr(VIRTIO_MMIO_CONFIG + 4);
    } while (gen != mr(VIRTIO_MMIO_CONFIG_GENERATION));
    blk.capacity = (uint64_t)hi << 32 | lo;

    mw(VIRTIO_MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return NULL;
}

int blk_queue(int slot, uint32_t type, uint64_t sector, void *buf, uint32_t len, int layout)
{
    struct vring_desc chain[4];
    int n = 0;
    uint16_t dflag = (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID) ? VRING_DESC_F_WRITE : 0;
    uint64_t b = (uintptr_t)buf;

    hdr[slot] = (struct blk_hdr){ .type = type, .reserved = 0, .sector = sector };
    status[slot] = 0xff;
    chain[n++] = (struct vring_desc){ (uintptr_t)&hdr[slot], sizeof(struct blk_hdr), 0, 0 };
    if (len && (layout & BLK_SPLIT) && len >= 1024) {
        uint32_t first = (len / 2) & ~511u;
        chain[n++] = (struct vring_desc){ b, first, dflag, 0 };
        chain[n++] = (struct vring_desc){ b + first, len - first, dflag, 0 };
    } else if (len) {
        chain[n++] = (struct vring_desc){ b, len, dflag, 0 };
    }
    chain[n++] = (struct vring_desc){ (uintptr_t)&status[slot], 1, VRING_DESC_F_WRITE, 0 };

    if (layout & BLK_INDIRECT) {
        for (int k = 0; k < n; k++) {
            ind[slot][k] = chain[k];
            if (k + 1 < n) {
                ind[slot][k].flags |= VRING_DESC_F_NEXT;
                ind[slot][k].next = (uint16_t)(k + 1);
            }
        }
        chain[0] = (struct vring_desc){ (uintptr_t)ind[slot], (uint32_t)(n * sizeof(struct vring_desc)),
                                        VRING_DESC_F_INDIRECT, 0 };
        n = 1;
    }
    if (nfree < n)
        return -1;

    /* Take n descriptors off the free list; its links become the chain links. */
    uint16_t head = free_head, i = head;
    for (int k = 0; k < n; k++) {
        uint16_t next_free = desc[i].next;
        desc[i].addr = chain[k].addr;
        desc[i].len = chain[k].len;
        desc[i].flags = chain[k].flags | (k + 1 < n ? VRING_DESC_F_NEXT : 0);
        i = next_free;
    }
    free_head = i;
    nfree = (uint16_t)(nfree - n);

    slot_of_head[head] = (int8_t)slot;
    avail.ring[avail_shadow & (blk.qsize - 1)] = head;
    avail_shadow++;
    return 0;
}

void blk_kick(void)
{
    uint16_t old = kicked_idx, new = avail_shadow;
    if (old == new)
        return;
    barrier();                                  /* ring entries before idx */
    *(volatile uint16_t *)&avail.idx = new;
    kicked_idx = new;
    mb();                                       /* idx store before event/flags load */
    if (event_idx ? vring_need_event(AVAIL_EVENT, new, old)
                  : !(*(volatile uint16_t *)&used.flags & VRING_USED_F_NO_NOTIFY))
        mw(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

int blk_reap(void)
{
    if (*(volatile uint16_t *)&used.idx == last_used)
        return -1;
    barrier();                                  /* x86 does not reorder loads */
    uint32_t id = ((volatile uint32_t *)&used.ring[last_used & (blk.qsize - 1)].id)[0];
    last_used++;
    if (event_idx)
        USED_EVENT = (uint16_t)(last_used - 1); /* keep interrupts off */
    if (id >= blk.qsize)
        fail(EXIT_SETUP, "used ring id out of range");

    /* return the chain to the free list */
    uint16_t tail = (uint16_t)id, n = 1;
    while (desc[tail].flags & VRING_DESC_F_NEXT) {
        tail = desc[tail].next;
        n++;
    }
    desc[tail].next = free_head;
    free_head = (uint16_t)id;
    nfree = (uint16_t)(nfree + n);
    return slot_of_head[id];
}

uint8_t blk_status(int slot)
{
    return status[slot];
}

uint8_t blk_sync(uint32_t type, uint64_t sector, void *buf, uint32_t len, int layout)
{
    int s;
    if (blk_queue(0, type, sector, buf, len, layout) < 0)
        fail(EXIT_SETUP, "no free descriptors");
    blk_kick();
    while ((s = blk_reap()) < 0)
        cpu_relax();
    return status[s];
}

const char *blk_type_name(uint32_t type)
{
    switch (type) {
    case VIRTIO_BLK_T_IN: return "IN";
    case VIRTIO_BLK_T_OUT: return "OUT";
    case VIRTIO_BLK_T_FLUSH: return "FLUSH";
    case VIRTIO_BLK_T_GET_ID: return "GET_ID";
    case VIRTIO_BLK_T_DISCARD: return "DISCARD";
    case VIRTIO_BLK_T_WRITE_ZEROES: return "WRITE_ZEROES";
    }
    return "?";
}
