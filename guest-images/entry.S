/*
 * entry.S - PVH entry, switch to long mode, drop to ring 3, exception stubs.
 *
 * Ring-0 code is executed by an instruction emulator on the KVM we run on
 * (~1 us per instruction), so everything that can be static data is static
 * data (page tables, GDT, TSS) and the ring-0 path before ring 3 is ~30
 * instructions. The IDT is filled later from ring 3 (boot.c): every page
 * is user-accessible, including the IDT itself.
 */

#define KCODE   0x08
#define KDATA   0x10
#define UDATA   0x18
#define UCODE   0x20
#define TSSSEL  0x28

/* PVH: ELF note "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18), desc = entry. */
        .section .note.Xen, "a", @note
        .balign 4
        .long   4                       /* namesz ("Xen\0") */
        .long   8                       /* descsz */
        .long   18                      /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz  "Xen"
        .balign 4
        .quad   pvh_start32
        .balign 4

/* ---------------------------------------------------------------------- */
        .section .text.entry, "ax"
        .code32
        .globl  pvh_start32
pvh_start32:                            /* 32-bit PM, paging off, ebx = hvm_start_info */
        cli
        mov     $kstack_top, %esp
        mov     %ebx, %edi              /* first argument of main() */
        lgdt    gdt_ptr
        mov     $0x20, %eax             /* CR4.PAE (TSD stays clear: rdtsc in ring 3) */
        mov     %eax, %cr4
        mov     $pml4, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx       /* EFER.LME */
        mov     $0x100, %eax
        xor     %edx, %edx
        wrmsr
        mov     $0x80000011, %eax       /* CR0 = PG | ET | PE */
        mov     %eax, %cr0
        ljmp    $KCODE, $long_mode

        .code64
long_mode:
        mov     $KDATA, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        /* TSS descriptor base: the TSS lies below 16 MiB, so bits 0-23 suffice */
        mov     $tss, %eax
        mov     %ax, gdt_tss + 2
        shr     $16, %eax
        mov     %al, gdt_tss + 4
        mov     $TSSSEL, %eax
        ltr     %ax
        lidt    idt_ptr
        /* iretq frame: ss, rsp, rflags (IOPL 3, IF 0), cs, rip */
        push    $(UDATA | 3)
        push    $ustack_top
        push    $0x3002
        push    $(UCODE | 3)
        push    $user_entry
        iretq

        .text
user_entry:                             /* ring 3 from here on; rdi = hvm_start_info */
        call    main
        ud2

/*
 * Exception stubs, 16 bytes apart (boot.c computes exc_stubs + 16 * vector).
 * Each pushes a dummy error code when the CPU does not, then the vector.
 */
        .balign 16
        .globl  exc_stubs
exc_stubs:
        .set    vec, 0
        .rept   32
        .balign 16
        .if !((vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30))
        push    $0
        .endif
        push    $vec
        jmp     exc_common
        .set    vec, vec + 1
        .endr

exc_common:                             /* ring 0: [vector][error][rip][cs][rflags][rsp][ss] */
        cmpq    $idle_trap, 16(%rsp)    /* the deliberate #UD of halt_forever()? */
        je      idle_gate
        mov     (%rsp), %edi
        mov     16(%rsp), %rsi
        mov     8(%rsp), %rdx
        and     $-16, %rsp
        call    exception_report        /* boot.c, does not return */
        jmp     idle_gate

/*
 * Ring 3 cannot hlt. halt_forever() executes the ud2 at idle_trap; the #UD
 * lands in exc_common, which sends that one RIP here to sleep forever.
 * (A DPL-3 "int $0x80" gate would be the textbook way, but the kvm_pvm
 * KVM on these hosts turns a ring-3 "int n" into #UD; ud2 works everywhere.)
 */
        .globl  idle_trap
idle_trap:
        ud2
idle_gate:
        cli
1:      hlt
        jmp     1b

/* ---------------------------------------------------------------------- */
        .data
        .balign 16
gdt:
        .quad   0                       /* 0x00 null */
        .quad   0x00af9a000000ffff      /* 0x08 kernel code, 64-bit */
        .quad   0x00cf92000000ffff      /* 0x10 kernel data */
        .quad   0x00cff2000000ffff      /* 0x18 user data (DPL 3) */
        .quad   0x00affa000000ffff      /* 0x20 user code, 64-bit (DPL 3) */
gdt_tss:
        .quad   0x0000890000002068      /* 0x28 64-bit TSS, limit 104+8192, base set at boot */
        .quad   0
gdt_end:

        .balign 8
gdt_ptr:
        .word   gdt_end - gdt - 1
        .quad   gdt
idt_ptr:
        .word   256 * 16 - 1
        .quad   idt                     /* boot.c */

        .balign 16
tss:
        .long   0
        .quad   kstack_top              /* rsp0: stack for ring 3 -> ring 0 */
        .fill   90, 1, 0                /* rsp1, rsp2, ist1-7, reserved */
        .word   104                     /* I/O permission bitmap follows */
        .fill   8192, 1, 0              /* every port allowed from ring 3 */
        .byte   0xff                    /* bitmap terminator */

/*
 * Page tables: identity map 0-4 GiB with 2 MiB pages, all user-accessible.
 * 3-4 GiB (MMIO: svmm 0xd0000000, QEMU microvm 0xfeb00000) is PCD|PWT.
 */
        .section .data.pagetables, "aw"
        .balign 4096
pml4:
        .quad   pdpt + 0x7              /* P | RW | US */
        .fill   511, 8, 0
pdpt:
        .quad   pd + 0x0000 + 0x7
        .quad   pd + 0x1000 + 0x7
        .quad   pd + 0x2000 + 0x7
        .quad   pd + 0x3000 + 0x7
        .fill   508, 8, 0
pd:
        .set    i, 0
        .rept   1536
        .quad   (i << 21) | 0x87        /* P | RW | US | PS */
        .set    i, i + 1
        .endr
        .rept   512
        .quad   (i << 21) | 0x9f        /* P | RW | US | PWT | PCD | PS */
        .set    i, i + 1
        .endr

/* ---------------------------------------------------------------------- */
        .bss
        .balign 4096
kstack:
        .skip   16384
kstack_top:
ustack:
        .skip   65536
ustack_top:

        .section .note.GNU-stack, "", @progbits
