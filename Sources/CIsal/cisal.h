/* Intel's ISA-L (Debian's libisal-dev): crc32_iscsi, the CRC-32C of the migration stream's
 * records, with the SSE4.2/PCLMUL code picked at run time. */
#include <isa-l/crc.h>
