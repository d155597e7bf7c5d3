/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Big-endian loads and stores at any alignment, for the lib/ codecs (wire
 * messages and frames).  Internal to lib/: not installed, not API.
 * memcpy() keeps unaligned access defined; compilers turn each into one
 * load or store plus a byte swap.
 */
#ifndef AMIL_BYTES_H
#define AMIL_BYTES_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t
ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static inline uint32_t
ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static inline uint64_t
ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static inline void
st16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void
st32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void
st64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

/* Signed fields travel as their two's-complement bit pattern; the
 * conversion back from uint64_t is implementation-defined in C11 but is
 * the identity on every compiler we build with (gcc/clang document it). */
static inline int64_t
ld64s(const uint8_t *p)
{
	return (int64_t)ld64(p);
}

static inline void
st64s(uint8_t *p, int64_t v)
{
	st64(p, (uint64_t)v);
}

#endif /* AMIL_BYTES_H */
