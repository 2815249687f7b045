/* CRC-32C for the migration stream (see cchecksum.h). Hardware path: the SSE4.2 crc32
 * instruction, 8 bytes at a time; software path: the reflected polynomial 0x82F63B78, one
 * table lookup a byte. Both give the same value for the same bytes. */
#include "cchecksum.h"
#include <string.h>

static uint32_t table[256];

static void build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[n] = c;
    }
}

static uint32_t software(uint32_t crc, const unsigned char *p, size_t n) {
    if (table[1] == 0) build_table();
    while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t hardware(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t svmm_crc32c(uint32_t crc, const void *bytes, size_t length) {
    const unsigned char *p = bytes;
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~hardware(crc, p, length);
#endif
    return ~software(crc, p, length);
}
