/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * every ledger header and record (docs/ledger.md).  Chosen over CRC32
 * (zlib) because x86-64 computes it in hardware (SSE4.2 crc32 instruction,
 * 8 bytes per instruction) and it detects more error patterns at record
 * sizes.  Without SSE4.2 a table-driven version gives the same values.
 */
#ifndef AMIL_CRC32C_H
#define AMIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * CRC32C of @len bytes at @buf, continuing from @crc (0 to start).
 * Standard initial value and final xor are applied inside, so
 * amil_crc32c(amil_crc32c(0, a, n), b, m) == CRC of a||b, and the check
 * value of "123456789" is 0xE3069283.  Thread-safe, no allocation.
 */
uint32_t amil_crc32c(uint32_t crc, const void *buf, size_t len);

/** Force the table-driven path (tests compare both); not thread-safe. */
void amil_crc32c_force_table(int on);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CRC32C_H */
