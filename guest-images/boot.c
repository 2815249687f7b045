/*
 * boot.c - ring-0 structures that are set up from ring 3.
 *
 * entry.S loads IDTR with an empty IDT and drops to ring 3; idt_init() then
 * fills the gates natively from ring 3 (all memory is user-mapped), which
 * keeps the emulated ring-0 instruction count minimal.
 */
#include "guest.h"

#define KCODE 0x08

struct gate {
    uint16_t off_lo, sel;
    uint8_t ist, type;          /* 0x8e: present, DPL 0, 64-bit interrupt gate */
    uint16_t off_mid;
    uint32_t off_hi, reserved;
};

struct gate idt[256] __attribute__((aligned(4096)));

extern char exc_stubs[];

static void set_gate(int vec, void *handler)
{
    uint64_t a = (uint64_t)(uintptr_t)handler;
    idt[vec] = (struct gate){
        .off_lo = (uint16_t)a, .sel = KCODE, .ist = 0,
        .type = 0x8e,
        .off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32),
    };
}

void idt_init(void)
{
    for (int v = 0; v < 32; v++)
        set_gate(v, exc_stubs + 16 * v);
}

/* Runs in ring 0 (called from entry.S exc_common); every instruction is slow
 * there, but this is the failure path only. */
NORETURN void exception_report(uint32_t vec, uint64_t rip, uint64_t err)
{
    serial_flush();
    print("EXCEPTION ");
    print_dec(vec);
    print(" rip=");
    print_hex(rip);
    print(" err=");
    print_hex(err);
    putch('\n');
    outb(0x501, EXIT_EXCEPTION);
    for (;;)
        __asm__ volatile("cli; hlt");
}
