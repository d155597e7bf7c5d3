/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Four SipHash-2-4 computations in the four 64-bit lanes of AVX2 registers.
 *
 * SipHash is a chain of dependent 64-bit add/rotate/xor steps, so one hash
 * cannot be vectorised; four independent hashes can, lane by lane, with the
 * exact same sequence of operations as the reference code.  The data plane
 * always has several tags to compute per burst (verify each request, sign
 * each ACK), so it batches them through amil_wire_{sign,verify}_burst().
 *
 * Only the function bodies that use AVX2 carry __attribute__((target)): the
 * rest of the build targets the baseline CPU (-march=corei7 from DPDK), and a
 * global -mavx2 would let the compiler put AVX2 instructions anywhere,
 * including code that runs before the CPU check.  The check is
 * __builtin_cpu_supports("avx2"), which in GCC's libgcc also requires the
 * OS to save YMM state (OSXSAVE + XGETBV), so "supported" means usable.
 *
 * Rotations: AVX2 has no 64-bit rotate (that is AVX-512's vprolq), so a
 * rotate is two shifts and an or, except the byte-multiple ones: rot32 is a
 * 32-bit lane swap (vpshufd) and rot16 a byte shuffle (vpshufb), one
 * instruction each.
 */
#include "amil_siphash_x4.h"

#include <endian.h>
#include <stdatomic.h>
#include <string.h>

/* Cached CPU answer: 0 = not asked yet, 1 = no AVX2, 2 = AVX2.  Every
 * thread that races on the first call computes the same value, so relaxed
 * ordering is enough: the flag publishes no other data. */
static atomic_int cpu_state;
static atomic_bool forced_scalar;

void
amil_siphash_x4_force_scalar(bool on)
{
	atomic_store_explicit(&forced_scalar, on, memory_order_relaxed);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

static bool
cpu_has_avx2(void)
{
	int s = atomic_load_explicit(&cpu_state, memory_order_relaxed);

	if (s == 0) {
		/* Needed when called before libgcc's own constructor ran
		 * (e.g. from another constructor); harmless otherwise. */
		__builtin_cpu_init();
		s = __builtin_cpu_supports("avx2") ? 2 : 1;
		atomic_store_explicit(&cpu_state, s, memory_order_relaxed);
	}
	return s == 2;
}

bool
amil_siphash_x4_usable(void)
{
	return !atomic_load_explicit(&forced_scalar, memory_order_relaxed) && cpu_has_avx2();
}

#define AVX2 __attribute__((target("avx2")))

static inline AVX2 __m256i
rotl(__m256i x, int b)
{
	return _mm256_or_si256(_mm256_slli_epi64(x, b), _mm256_srli_epi64(x, 64 - b));
}

static inline AVX2 __m256i
rotl32(__m256i x)
{
	return _mm256_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1));
}

static inline AVX2 __m256i
rotl16(__m256i x)
{
	/* Byte j of each 64-bit word takes byte (j - 2) mod 8 of the same
	 * word; vpshufb indexes within each 128-bit half. */
	const __m256i m = _mm256_setr_epi8(6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13,
					   6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13);

	return _mm256_shuffle_epi8(x, m);
}

/* One SipRound on four lanes, step for step the reference SIPROUND. */
#define SIPROUND_X4()                                       \
	do {                                                \
		v0 = _mm256_add_epi64(v0, v1);              \
		v1 = rotl(v1, 13);                          \
		v1 = _mm256_xor_si256(v1, v0);              \
		v0 = rotl32(v0);                            \
		v2 = _mm256_add_epi64(v2, v3);              \
		v3 = rotl16(v3);                            \
		v3 = _mm256_xor_si256(v3, v2);              \
		v0 = _mm256_add_epi64(v0, v3);              \
		v3 = rotl(v3, 21);                          \
		v3 = _mm256_xor_si256(v3, v0);              \
		v2 = _mm256_add_epi64(v2, v1);              \
		v1 = rotl(v1, 17);                          \
		v1 = _mm256_xor_si256(v1, v2);              \
		v2 = rotl32(v2);                            \
	} while (0)

/*
 * Transpose a 4x4 matrix of 64-bit words: row i = four consecutive message
 * words of lane i in, column j = word j of every lane out (lane i in
 * element i).  Four unpacks and four 128-bit permutes instead of sixteen
 * scalar inserts.
 */
static inline AVX2 void
transpose4(__m256i r0, __m256i r1, __m256i r2, __m256i r3, __m256i c[4])
{
	__m256i t0 = _mm256_unpacklo_epi64(r0, r1); /* r0.w0 r1.w0 r0.w2 r1.w2 */
	__m256i t1 = _mm256_unpackhi_epi64(r0, r1); /* r0.w1 r1.w1 r0.w3 r1.w3 */
	__m256i t2 = _mm256_unpacklo_epi64(r2, r3); /* r2.w0 r3.w0 r2.w2 r3.w2 */
	__m256i t3 = _mm256_unpackhi_epi64(r2, r3); /* r2.w1 r3.w1 r2.w3 r3.w3 */

	c[0] = _mm256_permute2x128_si256(t0, t2, 0x20);
	c[1] = _mm256_permute2x128_si256(t1, t3, 0x20);
	c[2] = _mm256_permute2x128_si256(t0, t2, 0x31);
	c[3] = _mm256_permute2x128_si256(t1, t3, 0x31);
}

static inline AVX2 __m256i
loadu(const uint8_t *p)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

static inline AVX2 __m128i
loadu16(const uint8_t *p)
{
	return _mm_loadu_si128((const __m128i *)(const void *)p);
}

AVX2 void
amil_siphash_x4_hash56(uint64_t out[AMIL_SIPHASH_X4_LANES],
		       const uint8_t *const msg[AMIL_SIPHASH_X4_LANES],
		       const uint8_t *const key[AMIL_SIPHASH_X4_LANES])
{
	__m256i m[8], v0, v1, v2, v3, k0, k1;

	/* Words 0..3 from bytes 0..31 and words 3..6 from bytes 24..55: two
	 * unaligned 32-byte loads per message that never read past byte 55
	 * (word 3 is loaded twice; the second copy is dropped). */
	transpose4(loadu(msg[0]), loadu(msg[1]), loadu(msg[2]), loadu(msg[3]), &m[0]);
	transpose4(loadu(msg[0] + 24), loadu(msg[1] + 24), loadu(msg[2] + 24), loadu(msg[3] + 24),
		   &m[3]);
	/* x86 is little-endian, so the loads above already hold SipHash's
	 * little-endian words, and so do the keys' 16-byte loads: lanes
	 * (k0, k1) of keys 0|1 and 2|3, unpacked into k0 = (0, 2, 1, 3) and
	 * k1 likewise, then put in lane order: eight instructions where
	 * eight scalar loads and their inserts took about sixteen. */
	{
		__m256i a = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu16(key[0])),
						    loadu16(key[1]), 1);
		__m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu16(key[2])),
						    loadu16(key[3]), 1);

		k0 = _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(a, b), _MM_SHUFFLE(3, 1, 2, 0));
		k1 = _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(a, b), _MM_SHUFFLE(3, 1, 2, 0));
	}

	v0 = _mm256_xor_si256(k0, _mm256_set1_epi64x(0x736f6d6570736575LL));
	v1 = _mm256_xor_si256(k1, _mm256_set1_epi64x(0x646f72616e646f6dLL));
	v2 = _mm256_xor_si256(k0, _mm256_set1_epi64x(0x6c7967656e657261LL));
	v3 = _mm256_xor_si256(k1, _mm256_set1_epi64x(0x7465646279746573LL));

	/* Seven message words, then the final block: the length (56) in the
	 * top byte and no leftover bytes since 56 is a multiple of 8. */
	m[7] = _mm256_set1_epi64x((long long)((uint64_t)AMIL_SIPHASH_X4_MSG_LEN << 56));
	/* Unrolled: no loop counter in the way and each m[i] read where it
	 * is used.  With the key loads above, 528 -> 474 instructions per
	 * call (callgrind, GCC 12 -O3). */
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		v3 = _mm256_xor_si256(v3, m[i]);
		SIPROUND_X4();
		SIPROUND_X4();
		v0 = _mm256_xor_si256(v0, m[i]);
	}

	v2 = _mm256_xor_si256(v2, _mm256_set1_epi64x(0xff));
	SIPROUND_X4();
	SIPROUND_X4();
	SIPROUND_X4();
	SIPROUND_X4();
	v0 = _mm256_xor_si256(_mm256_xor_si256(v0, v1), _mm256_xor_si256(v2, v3));
	_mm256_storeu_si256((__m256i *)(void *)out, v0);
}

#else /* not x86-64: no vector path, callers always take the scalar one */

#include <sodium/crypto_shorthash_siphash24.h>

bool
amil_siphash_x4_usable(void)
{
	(void)cpu_state;
	return false;
}

void
amil_siphash_x4_hash56(uint64_t out[AMIL_SIPHASH_X4_LANES],
		       const uint8_t *const msg[AMIL_SIPHASH_X4_LANES],
		       const uint8_t *const key[AMIL_SIPHASH_X4_LANES])
{
	/* Never reached through the wire API (usable() is false); kept
	 * correct so a direct caller still gets the right answer. */
	for (int i = 0; i < AMIL_SIPHASH_X4_LANES; i++) {
		uint8_t t[8];

		(void)crypto_shorthash_siphash24(t, msg[i], AMIL_SIPHASH_X4_MSG_LEN, key[i]);
		memcpy(&out[i], t, sizeof(t));
		out[i] = le64toh(out[i]);
	}
}

#endif
