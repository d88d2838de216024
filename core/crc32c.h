/* CRC32C (Castagnoli), the checksum of iSCSI, ext4 and Btrfs: gt_crc32c(0, "123456789", 9) is
 * 0xe3069283. On x86-64 with SSE4.2 the CPU's crc32 instruction computes it (three interleaved
 * streams, several GB/s); elsewhere slicing-by-8 tables. gt_crc32c_combine joins the CRCs of two
 * adjacent pieces, so a large file can be checksummed in slices by several processes. */
#ifndef GT_CRC32C_H
#define GT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of the bytes so far (crc, 0 for none) extended by buf[n]. */
uint32_t gt_crc32c(uint32_t crc, const void *buf, size_t n);
/* The CRC of A followed by B, from crc_a = CRC(A), crc_b = CRC(B) and len_b = |B|. */
uint32_t gt_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#endif
