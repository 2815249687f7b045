/*
 * tsc.c - calibrate the TSC once against the PIT (8254): a 10 ms one-shot
 * (mode 0) whose OUT pin is polled.
 *
 * The classic way is channel 2, gated and read back through port 0x61
 * (bit 0 gate, bit 5 OUT2). QEMU microvm has no port 0x61 (reads 0xff), so
 * there channel 0 is used instead, its OUT pin read with the read-back
 * command (status byte bit 7); IRQ0 is harmless with IF=0.
 * Each poll is a VM exit or two (~36-72 us here): < 1% error.
 */
#include "guest.h"

#define PIT_HZ 1193182u
#define LATCH  (PIT_HZ / 100)                   /* 10 ms */

uint64_t tsc_hz;

/* Samples the OUT pin; *when = TSC midpoint of the access that sampled it. */
static int pit_out(int ch, uint64_t *when)
{
    uint64_t a = rdtsc(), b;
    int out;
    if (ch == 2) {
        out = inb(0x61) & 0x20;
        b = rdtsc();
    } else {
        outb(0x43, 0xe2);                       /* read-back: latch status of ch 0 */
        b = rdtsc();
        out = inb(0x40) & 0x80;
    }
    *when = a + (b - a) / 2;
    return out;
}

void tsc_calibrate(void)
{
    uint8_t v = inb(0x61);
    int ch = v == 0xff ? 0 : 2;
    if (ch == 2)
        outb(0x61, (uint8_t)((v & ~0x02) | 0x01));  /* gate 2 on, speaker off */
    outb(0x43, (uint8_t)(ch << 6 | 0x30));      /* lo/hi byte, mode 0, binary */
    outb((uint16_t)(0x40 + ch), LATCH & 0xff);
    uint64_t a = rdtsc();
    outb((uint16_t)(0x40 + ch), LATCH >> 8);    /* counting starts here */
    uint64_t b = rdtsc(), t0 = a + (b - a) / 2, prev = t0, now = t0;

    unsigned polls = 0;
    while (polls++ < 100000) {                  /* gives up after a few seconds */
        prev = now;
        if (pit_out(ch, &now))
            break;
    }
    /* OUT rose between the previous sample and this one: take the middle */
    tsc_hz = (prev + (now - prev) / 2 - t0) * PIT_HZ / LATCH;
    if (polls >= 100000 || tsc_hz < 100000000ull) { /* no PIT */
        print("TSC calibration failed, assuming 2 GHz\n");
        tsc_hz = 2000000000ull;
    }
}
