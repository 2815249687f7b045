/* cmdline.c - space-separated key=value command line. */
#include "guest.h"

int str_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

/* Calls back for each token; returns the token start via *tok and length. */
static const char *next_token(const char *p, size_t *n)
{
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (!*p)
        return NULL;
    const char *e = p;
    while (*e && *e != ' ' && *e != '\t' && *e != '\n')
        e++;
    *n = (size_t)(e - p);
    return p;
}

const char *cmdline_get(const char *cl, const char *key, size_t *len)
{
    size_t kl = strlen(key), n;
    const char *t, *found = NULL;
    for (t = next_token(cl, &n); t; t = next_token(t + n, &n))
        if (n > kl && t[kl] == '=' && memcmp(t, key, kl) == 0) {
            found = t + kl + 1;             /* the last occurrence wins */
            *len = n - kl - 1;
        }
    return found;
}

int parse_num(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0, base = 10;
    size_t i = 0, digits = 0;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    for (; i < n; i++, digits++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            break;
        v = v * base + d;
    }
    if (!digits)
        return 0;
    if (i < n) {                            /* size suffix */
        char c = s[i++];
        if (c == 'k' || c == 'K')
            v <<= 10;
        else if (c == 'm' || c == 'M')
            v <<= 20;
        else if (c == 'g' || c == 'G')
            v <<= 30;
        else
            return 0;
        if (i < n)
            return 0;
    }
    *out = v;
    return 1;
}

/* virtio_mmio.device=<size>@<base>:<irq>  (what QEMU microvm appends) */
int cmdline_mmio(const char *cl, struct mmio_dev *devs, int max)
{
    static const char key[] = "virtio_mmio.device=";
    const size_t kl = sizeof(key) - 1;
    size_t n;
    int count = 0;
    for (const char *t = next_token(cl, &n); t && count < max; t = next_token(t + n, &n)) {
        if (n <= kl || memcmp(t, key, kl) != 0)
            continue;
        const char *v = t + kl, *e = t + n, *at = v, *colon;
        while (at < e && *at != '@')
            at++;
        colon = at;
        while (colon < e && *colon != ':')
            colon++;
        struct mmio_dev d = { 0, 0, 0 };
        uint64_t irq = 0;
        if (at == e || !parse_num(v, (size_t)(at - v), &d.size) ||
            !parse_num(at + 1, (size_t)(colon - at - 1), &d.base))
            continue;
        if (colon < e && parse_num(colon + 1, (size_t)(e - colon - 1), &irq))
            d.irq = (uint32_t)irq;
        devs[count++] = d;
    }
    return count;
}
