#ifndef CCHECKSUM_H
#define CCHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli, the iSCSI/ext4 polynomial) of `length` bytes, continuing `crc` (0 to
 * start): the SSE4.2 crc32 instruction where the CPU has it, else a table. The migration
 * stream's record checksum; Swift cannot reach the instruction itself. */
uint32_t svmm_crc32c(uint32_t crc, const void *bytes, size_t length);

#endif
