/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * CRC32C.  See amil_crc32c.h.
 *
 * Hardware path: the SSE4.2 crc32 instruction, compiled with a target
 * attribute so the library builds without -msse4.2 and picks the path at
 * run time (the appliance image may boot on any x86-64).  Table path:
 * one 256-entry table, built once; ledger records are 80 bytes, so a
 * slice-by-8 table would not pay for its 8 KiB of cache here.
 */
#include <stdbool.h>
#include <string.h>

#include "amil_crc32c.h"

#define POLY 0x82F63B78u

static uint32_t table[256];
static bool table_ready;
static int force_table;

static void
table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1)));
		table[i] = c;
	}
	__atomic_store_n(&table_ready, true, __ATOMIC_RELEASE);
}

static uint32_t
crc_table(uint32_t c, const uint8_t *p, size_t len)
{
	/* Racing initialisers compute identical tables: benign. */
	if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE))
		table_init();
	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t c, const uint8_t *p, size_t len)
{
	uint64_t c64 = c;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c64 = _mm_crc32_u64(c64, v);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	while (len--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}

static bool
have_hw(void)
{
	static int cached = -1;
	int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (v < 0) {
		v = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	}
	return v == 1;
}
#endif

uint32_t
amil_crc32c(uint32_t crc, const void *buf, size_t len)
{
	uint32_t c = ~crc;

#if defined(__x86_64__)
	if (!force_table && have_hw())
		return ~crc_hw(c, buf, len);
#endif
	return ~crc_table(c, buf, len);
}

void
amil_crc32c_force_table(int on)
{
	force_table = on;
}
