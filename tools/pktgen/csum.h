/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The UDP checksum of a generated frame from its template, 64 bits at a
 * time.  Header-only and DPDK-free so the unit tests check it against
 * lib/'s amil_frame_build_udp() without an EAL.
 *
 * Every frame of a run has the same Ethernet/IP/UDP header and a 64-byte
 * payload; only the payload changes.  The UDP checksum is linear (RFC 1071:
 * a one's-complement sum), so it is the template's partial sum (pseudo
 * header + UDP header, taken once from a template built over a zero
 * payload) plus the sum of the payload, complemented.  The payload is
 * summed as eight 64-bit words with end-around carry: 2^16 - 1 divides
 * 2^64 - 1, so folding the 64-bit sum gives the same 16-bit sum as adding
 * 32 16-bit words, in eight additions instead of 32.
 *
 * Byte order: words are loaded in memory order (little-endian on x86), and
 * the one's-complement sum of byte-swapped words is the byte-swapped sum
 * (RFC 1071, 2.B), so the result is stored as is, without htons().
 */
#ifndef AMIL_PKTGEN_CSUM_H
#define AMIL_PKTGEN_CSUM_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* @s + @w with the carry out added back in (one's-complement addition). */
static inline uint64_t
pktgen_csum_add64(uint64_t s, uint64_t w)
{
	s += w;
	return s + (s < w);
}

/* Fold a 64-bit one's-complement sum to 16 bits (not complemented). */
static inline uint16_t
pktgen_csum_fold64(uint64_t s)
{
	uint32_t t;

	s = (s >> 32) + (uint32_t)s;     /* <= 2^33 - 2 */
	s = (s >> 32) + (uint32_t)s;     /* <= 2^32 - 1: a carry-out above leaves lo < 2^32 - 1 */
	t = (uint32_t)s;
	/* The high half of t + rotate(t, 16) is hi + lo plus the carry out
	 * of lo + hi: the 32-to-16 fold in one add (as Linux's csum_fold()). */
	t += (t >> 16) | (t << 16);
	return (uint16_t)(t >> 16);
}

/**
 * Partial sum of a template from its UDP checksum field @field (the two
 * bytes as stored, memory order), where the template was built over an
 * all-zero payload: the sum of everything the checksum covers except the
 * payload.
 */
static inline uint16_t
pktgen_csum_base(const uint8_t field[2])
{
	uint16_t c;

	memcpy(&c, field, sizeof(c));
	return (uint16_t)~c;
}

/**
 * UDP checksum field (memory order, ready to store) of a frame whose
 * template partial sum is @base (pktgen_csum_base()) and whose 64-byte
 * payload is @payload (any alignment).  Never 0: over UDP a computed 0 is
 * sent as 0xffff, since 0 means "no checksum" over IPv4 and is invalid
 * over IPv6.
 */
static inline uint16_t
pktgen_csum_udp64(uint16_t base, const uint8_t payload[64])
{
	uint64_t s = base;
	uint16_t c;

#if defined(__x86_64__) && defined(__GNUC__)
	/* One add-with-carry chain, the last carry added back: ten
	 * instructions.  In asm because GCC 12 makes three to six
	 * instructions per word of "s += w; s += s < w", of a 128-bit
	 * accumulator and of _addcarry_u64() alike. */
	__asm__("addq 0(%[p]), %[s]\n\t"
		"adcq 8(%[p]), %[s]\n\t"
		"adcq 16(%[p]), %[s]\n\t"
		"adcq 24(%[p]), %[s]\n\t"
		"adcq 32(%[p]), %[s]\n\t"
		"adcq 40(%[p]), %[s]\n\t"
		"adcq 48(%[p]), %[s]\n\t"
		"adcq 56(%[p]), %[s]\n\t"
		"adcq $0, %[s]"
		: [s] "+r"(s)
		: [p] "r"(payload), "m"(*(const uint8_t(*)[64])payload)
		: "cc");
#else
	for (unsigned i = 0; i < 8; i++) {
		uint64_t w;

		memcpy(&w, payload + 8 * i, sizeof(w));
		s = pktgen_csum_add64(s, w);
	}
#endif
	c = (uint16_t)~pktgen_csum_fold64(s);
	return c == 0 ? 0xffff : c;
}

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PKTGEN_CSUM_H */
