/*
 * serial.c - 16550 output at 0x3f8. Every port access is a VM exit, so
 * output is line-buffered and sent 16 bytes (one FIFO) per LSR check.
 */
#include "guest.h"

#define COM1     0x3f8
#define LSR      (COM1 + 5)
#define LSR_THRE 0x20

static char buf[256];
static unsigned len;

void serial_flush(void)
{
    unsigned i = 0;
    while (i < len) {
        if (!(inb(LSR) & LSR_THRE)) {
            cpu_relax();
            continue;
        }
        for (unsigned n = 0; n < 16 && i < len; n++)
            outb(COM1, (uint8_t)buf[i++]);
    }
    len = 0;
}

void putch(char c)
{
    buf[len++] = c;
    if (c == '\n' || len == sizeof(buf))
        serial_flush();
}

void print(const char *s)
{
    while (*s)
        putch(*s++);
}

void print_n(const char *s, size_t n)
{
    while (n--)
        putch(*s++);
}

void print_dec(uint64_t v)
{
    char t[20];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putch(t[--n]);
}

void print_hex(uint64_t v)
{
    int shift = 60;
    print("0x");
    while (shift > 0 && !(v >> shift))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        putch("0123456789abcdef"[(v >> shift) & 15]);
}
