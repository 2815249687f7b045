// zlib's crc32 for the migration stream's section checksums (linkage only, no logic).
#include <zlib.h>
