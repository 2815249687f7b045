// Thin C shim for svmm: only what Swift cannot import by itself.
// - ioctl numbers (function-like _IO* macros) as constants,
// - a non-variadic ioctl wrapper,
// - libfdt's macro helpers as inline functions.
// No logic lives here.
#ifndef CKVM_H
#define CKVM_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <malloc.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <libaio.h>
#include <libfdt.h>

// glibc hides these behind _GNU_SOURCE, which a Clang module cannot set for Glibc.
static const int CKVM_O_DIRECT = __O_DIRECT;
extern int fallocate(int fd, int mode, off_t offset, off_t len);
extern char *strerrorname_np(int errnum);
// Open-file-description locks (Linux ABI values; <fcntl.h> hides them behind _GNU_SOURCE).
static const int CKVM_F_OFD_GETLK = 36;
static const int CKVM_F_OFD_SETLK = 37;

static const int CKVM_M_MMAP_THRESHOLD = M_MMAP_THRESHOLD;
static const int CKVM_M_TRIM_THRESHOLD = M_TRIM_THRESHOLD;

static inline int ckvm_ioctl(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
static inline int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value) { return ioctl(fd, request, value); }
static inline int ckvm_open(const char *path, int flags, unsigned int mode) { return open(path, flags, mode); }
static inline int ckvm_fcntl_lock(int fd, int cmd, struct flock *lock) { return fcntl(fd, cmd, lock); }

static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CKVM_IRQFD = KVM_IRQFD;
static const unsigned long CKVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned long CKVM_GET_DIRTY_LOG = KVM_GET_DIRTY_LOG;
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_SET_SIGNAL_MASK = KVM_SET_SIGNAL_MASK;

// vCPU and VM state (save/restore for migration) and the dirty log.
static const unsigned long CKVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_GET_XSAVE = KVM_GET_XSAVE;
static const unsigned long CKVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CKVM_GET_XCRS = KVM_GET_XCRS;
static const unsigned long CKVM_SET_XCRS = KVM_SET_XCRS;
static const unsigned long CKVM_GET_DEBUGREGS = KVM_GET_DEBUGREGS;
static const unsigned long CKVM_SET_DEBUGREGS = KVM_SET_DEBUGREGS;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CKVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CKVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;
static const unsigned long CKVM_GET_IRQCHIP = KVM_GET_IRQCHIP;
static const unsigned long CKVM_SET_IRQCHIP = KVM_SET_IRQCHIP;
static const unsigned long CKVM_GET_PIT2 = KVM_GET_PIT2;
static const unsigned long CKVM_SET_PIT2 = KVM_SET_PIT2;
static const unsigned long CKVM_GET_CLOCK = KVM_GET_CLOCK;
static const unsigned long CKVM_SET_CLOCK = KVM_SET_CLOCK;

static inline int ckvm_fdt_property_string(void *fdt, const char *name, const char *value) {
    return fdt_property_string(fdt, name, value);
}

/* Single-copy atomic accesses to memory the guest shares (virtqueue indices, flags, event
 * indices, used elements): one load or store of the exact width in every build configuration,
 * relaxed; callers order them with fences as virtio requires. */
static inline uint16_t ckvm_atomic_load16(const void *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED); }
static inline uint32_t ckvm_atomic_load32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED); }
static inline uint64_t ckvm_atomic_load64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED); }
static inline void ckvm_atomic_store16(void *p, uint16_t v) { __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED); }
static inline void ckvm_atomic_store32(void *p, uint32_t v) { __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELAXED); }
/* kvm_run.immediate_exit is set by the loop thread and cleared by the vCPU thread. */
static inline void ckvm_atomic_store8(void *p, uint8_t v) { __atomic_store_n((uint8_t *)p, v, __ATOMIC_SEQ_CST); }
/* The VMM-write dirty bitmap: the loop sets bits, the migration sender takes and clears words. */
static inline void ckvm_atomic_or64(void *p, uint64_t v) { __atomic_fetch_or((uint64_t *)p, v, __ATOMIC_RELEASE); }
static inline uint64_t ckvm_atomic_exchange64(void *p, uint64_t v) { return __atomic_exchange_n((uint64_t *)p, v, __ATOMIC_ACQ_REL); }

#endif
