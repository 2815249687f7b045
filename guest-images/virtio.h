/* virtio.h - virtio-mmio (version 2) block device, one split virtqueue, polled. */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "guest.h"

/* virtio-mmio registers */
#define VIRTIO_MMIO_MAGIC           0x000
#define VIRTIO_MMIO_VERSION         0x004
#define VIRTIO_MMIO_DEVICE_ID       0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL       0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX   0x034
#define VIRTIO_MMIO_QUEUE_NUM       0x038
#define VIRTIO_MMIO_QUEUE_READY     0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY    0x050
#define VIRTIO_MMIO_STATUS          0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW  0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW 0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW  0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG          0x100

#define VIRTIO_MMIO_MAGIC_VALUE     0x74726976      /* "virt" */
#define VIRTIO_ID_BLOCK             2

/* feature bits */
#define F(bit) (1ull << (bit))
#define VIRTIO_BLK_F_SEG_MAX        2
#define VIRTIO_BLK_F_RO             5
#define VIRTIO_BLK_F_BLK_SIZE       6
#define VIRTIO_BLK_F_FLUSH          9
#define VIRTIO_BLK_F_DISCARD        13
#define VIRTIO_BLK_F_WRITE_ZEROES   14
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32

/* request types and status */
#define VIRTIO_BLK_T_IN             0
#define VIRTIO_BLK_T_OUT            1
#define VIRTIO_BLK_T_FLUSH          4
#define VIRTIO_BLK_T_GET_ID         8
#define VIRTIO_BLK_T_DISCARD        11
#define VIRTIO_BLK_T_WRITE_ZEROES   13
#define VIRTIO_BLK_S_OK             0
#define VIRTIO_BLK_S_IOERR          1
#define VIRTIO_BLK_S_UNSUPP         2

/* request layouts (blk_queue) */
#define BLK_NORMAL   0      /* header, one data descriptor, status */
#define BLK_SPLIT    1      /* data split across two descriptors */
#define BLK_INDIRECT 2      /* the chain lives in an indirect table */

#define BLK_MAX_SLOTS 64    /* request slots (header + status each) */
#define QUEUE_MAX     128

struct blk_dev {
    uint64_t base;          /* virtio-mmio window */
    uint64_t features;      /* negotiated */
    uint64_t capacity;      /* 512-byte sectors */
    uint32_t qsize;
};
extern struct blk_dev blk;

static inline int blk_has(int bit) { return (blk.features >> bit) & 1; }

/* 1 = virtio-blk v2 at base, 0 = other device id, <0 = not usable (see *why) */
int virtio_probe(uint64_t base, const char **why);
const char *blk_init(uint64_t base);            /* NULL on success, else reason */
/* Builds the chain for request slot `slot` and puts it in the avail ring
 * (not yet visible to the device: call blk_kick). -1: out of descriptors. */
int blk_queue(int slot, uint32_t type, uint64_t sector, void *buf, uint32_t len, int layout);
void blk_kick(void);
int blk_reap(void);                             /* completed slot, or -1 */
uint8_t blk_status(int slot);
/* queue on slot 0 + kick + wait; nothing else may be in flight; returns status */
uint8_t blk_sync(uint32_t type, uint64_t sector, void *buf, uint32_t len, int layout);
const char *blk_type_name(uint32_t type);

#endif
