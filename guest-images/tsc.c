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

/*
 * One 10 ms one-shot on channel ch: TSC Hz, or 0 if OUT never rose.
 * *err = width of the two TSC brackets (start, rise), i.e. the uncertainty.
 */
static uint64_t measure(int ch, uint8_t port61, uint64_t *err)
{
    if (ch == 2)
        outb(0x61, (uint8_t)((port61 & ~0x02) | 0x01));   /* gate 2 on, speaker off */
    outb(0x43, (uint8_t)(ch << 6 | 0x30));      /* lo/hi byte, mode 0, binary */
    outb((uint16_t)(0x40 + ch), LATCH & 0xff);
    uint64_t a = rdtsc();
    outb((uint16_t)(0x40 + ch), LATCH >> 8);    /* counting starts here */
    uint64_t b = rdtsc(), t0 = a + (b - a) / 2, prev = t0, now = t0;
    do {
        prev = now;
        if (pit_out(ch, &now)) {                /* OUT rose between prev and now */
            *err = (b - a) + (now - prev);
            return (prev + (now - prev) / 2 - t0) * PIT_HZ / LATCH;
        }
    } while (now - t0 < 400000000ull);          /* 40 ms even at 10 GHz */
    return 0;
}

/* Up to 5 runs (a preempted vCPU widens a bracket); keeps the tightest. */
static uint64_t calibrate(int ch, uint8_t port61)
{
    uint64_t best = 0, best_err = ~0ull;
    for (int i = 0; i < 5; i++) {
        uint64_t err, hz = measure(ch, port61, &err);
        if (!hz)
            return 0;
        if (err < best_err) {
            best = hz;
            best_err = err;
        }
        if (best_err * 50 < best / 100)         /* bracket < 2% of 10 ms: error < 1% */
            break;
    }
    return best;
}

void tsc_calibrate(void)
{
    uint8_t port61 = inb(0x61);
    tsc_hz = port61 != 0xff ? calibrate(2, port61) : 0;
    if (tsc_hz < 100000000ull)
        tsc_hz = calibrate(0, 0);
    if (tsc_hz < 100000000ull) {                /* no PIT */
        print("TSC calibration failed, assuming 2 GHz\n");
        tsc_hz = 2000000000ull;
    }
}
