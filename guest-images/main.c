/* main.c - ring-3 main: command line, device discovery, mode dispatch. */
#include "guest.h"
#include "virtio.h"

#define HVM_START_MAGIC 0x336ec578
#define FDT_MAGIC_BE    0xedfe0dd0              /* 0xd00dfeed read little-endian */

struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct hvm_modlist_entry {
    uint64_t paddr, size, cmdline_paddr, reserved;
};

uint8_t data_pool[POOL_SIZE] __attribute__((aligned(4096)));

NORETURN void halt_forever(void)
{
    __asm__ volatile("jmp idle_trap");          /* ud2 -> ring 0: cli; hlt forever */
    __builtin_unreachable();
}

NORETURN void guest_exit(int code)
{
    serial_flush();
    outb(0x501, (uint8_t)code);                 /* isa-debug-exit: status code<<1|1 */
    halt_forever();
}

NORETURN void fail(int code, const char *msg)
{
    print("SELFTEST FAIL: ");
    print(msg);
    putch('\n');
    guest_exit(code);
}

NORETURN void fail_req(const char *who, uint32_t type, uint8_t st, uint64_t sector)
{
    print(who);
    print(" FAIL: ");
    print(blk_type_name(type));
    print(" status ");
    print_dec(st);
    print(" at sector ");
    print_dec(sector);
    putch('\n');
    guest_exit(EXIT_REQ_STATUS);
}

static void find_blk(const void *fdt, const char *cmdline)
{
    struct mmio_dev devs[32];
    int n = -1;
    const char *why = "no virtio-blk device found";
    if (fdt)
        n = fdt_scan(fdt, devs, 32, NULL);
    if (n < 0)
        n = cmdline_mmio(cmdline, devs, 32);
    for (int i = 0; i < n; i++) {
        const char *err = NULL;
        int r = virtio_probe(devs[i].base, &err);
        if (r < 0)
            why = err;
        if (r == 1) {
            if ((err = blk_init(devs[i].base)) != NULL)
                fail(EXIT_SETUP, err);
            return;
        }
    }
    fail(EXIT_SETUP, why);
}

NORETURN void main(uint32_t start_info_pa)
{
    idt_init();

    const struct hvm_start_info *si = (const void *)(uintptr_t)start_info_pa;
    const char *cmdline = "";
    const void *fdt = NULL;
    int si_ok = si->magic == HVM_START_MAGIC;
    if (si_ok) {
        if (si->cmdline_paddr)
            cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
        if (si->nr_modules >= 1 && si->modlist_paddr) {
            const struct hvm_modlist_entry *m = (const void *)(uintptr_t)si->modlist_paddr;
            if (m->paddr && *(const uint32_t *)(uintptr_t)m->paddr == FDT_MAGIC_BE)
                fdt = (const void *)(uintptr_t)m->paddr;
        }
        if (!*cmdline && fdt)
            fdt_scan(fdt, NULL, 0, &cmdline);   /* fall back to /chosen/bootargs */
    }

    print("svmm-guest: ");
    print(cmdline);
    putch('\n');
    if (!si_ok)
        fail(EXIT_SETUP, "bad hvm_start_info magic");

    size_t ml = 0;
    const char *mode = cmdline_get(cmdline, "mode", &ml);
    if (!mode) {
        mode = "selftest";
        ml = 8;
    }
    if (str_is(mode, ml, "idle")) {
        print("IDLE\n");
        serial_flush();
        halt_forever();
    }
    if (str_is(mode, ml, "ramdirty"))
        ramdirty(cmdline);                      /* RAM only: no disk needed */
    int m_self = str_is(mode, ml, "selftest"), m_bench = str_is(mode, ml, "bench"),
        m_writer = str_is(mode, ml, "writer");
    if (!m_self && !m_bench && !m_writer) {
        print("SELFTEST FAIL: unknown mode ");
        print_n(mode, ml);
        putch('\n');
        guest_exit(EXIT_SETUP);
    }

    tsc_calibrate();
    find_blk(fdt, cmdline);
    if (cmdline_get(cmdline, "debug", &ml)) {
        print("DEBUG base=");
        print_hex(blk.base);
        print(" features=");
        print_hex(blk.features);
        print(" qsize=");
        print_dec(blk.qsize);
        print(" capacity=");
        print_dec(blk.capacity);
        print(" tsc_hz=");
        print_dec(tsc_hz);
        putch('\n');
    }
    if (m_bench)
        bench(cmdline);
    if (m_writer)
        writer(cmdline);
    selftest();
}
