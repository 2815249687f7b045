/* guest.h - shared declarations of the blkguest test guest. */
#ifndef GUEST_H
#define GUEST_H

#include <stdint.h>
#include <stddef.h>

#define NORETURN __attribute__((noreturn))

/* ---- CPU helpers (all usable in ring 3: IOPL 3, CR4.TSD clear) ---- */
static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
#define barrier() __asm__ volatile("" ::: "memory")
static inline void mb(void) { __asm__ volatile("mfence" ::: "memory"); }

/* ---- exit codes (debug-exit port 0x501: status = code << 1 | 1) ---- */
#define EXIT_PASS       0
#define EXIT_MISMATCH   2
#define EXIT_WZEROES    3
#define EXIT_REQ_STATUS 4
#define EXIT_SETUP      5
#define EXIT_WRITER     6
#define EXIT_RAMDIRTY   7
#define EXIT_EXCEPTION  0x7f

/* ---- serial.c ---- */
void putch(char c);
void print(const char *s);
void print_n(const char *s, size_t n);
void print_dec(uint64_t v);
void print_hex(uint64_t v);
void serial_flush(void);

/* ---- main.c ---- */
NORETURN void guest_exit(int code);
NORETURN void halt_forever(void);
NORETURN void fail(int code, const char *msg);   /* "SELFTEST FAIL: <msg>" */
NORETURN void fail_req(const char *who, uint32_t type, uint8_t status, uint64_t sector);
#define POOL_SIZE (2u << 20)
extern uint8_t data_pool[POOL_SIZE];             /* 4 KiB aligned I/O buffers */

/* ---- boot.c ---- */
void idt_init(void);

/* ---- lib.c ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* ---- cmdline.c ---- */
struct mmio_dev {
    uint64_t base, size;
    uint32_t irq;
};
/* value of "key=..." (token-wise), or NULL; *len = length of the value */
const char *cmdline_get(const char *cl, const char *key, size_t *len);
int str_is(const char *s, size_t n, const char *lit);
/* decimal or 0x-hex, optional K/M/G suffix; returns 0 on syntax error */
int parse_num(const char *s, size_t n, uint64_t *out);
int cmdline_mmio(const char *cl, struct mmio_dev *devs, int max);

/* ---- fdt.c ---- */
int fdt_scan(const void *fdt, struct mmio_dev *devs, int max, const char **bootargs);

/* ---- tsc.c ---- */
extern uint64_t tsc_hz;
void tsc_calibrate(void);

/* ---- modes ---- */
NORETURN void selftest(void);
NORETURN void bench(const char *cmdline);
NORETURN void writer(const char *cmdline);
NORETURN void ramdirty(const char *cmdline);

#endif
