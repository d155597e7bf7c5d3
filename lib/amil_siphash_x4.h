/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * SipHash-2-4 of four 56-byte messages at once, one per 64-bit lane of an
 * AVX2 register.  Internal to lib/: not installed, not API.  The public
 * entry points are amil_wire_sign_burst() and amil_wire_verify_burst(),
 * which check amil_siphash_x4_usable() and fall back to libsodium's scalar
 * crypto_shorthash_siphash24() when it says no.
 *
 * Why only 56 bytes: every AMIL/1 tag covers exactly bytes 0..55 of the
 * message, so the length block (56 << 56) and the absence of a partial last
 * word are compile-time constants, and the whole message is seven words.
 */
#ifndef AMIL_SIPHASH_X4_H
#define AMIL_SIPHASH_X4_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_SIPHASH_X4_MSG_LEN 56  /* bytes hashed per lane */
#define AMIL_SIPHASH_X4_LANES   4

/**
 * True when amil_siphash_x4_hash56() may be called: the CPU and the OS
 * support AVX2 and the scalar path is not forced.  The CPU check runs once
 * and is cached; the answer is then one relaxed atomic load, cheap enough
 * to call once per burst.  Thread-safe.
 */
bool amil_siphash_x4_usable(void);

/**
 * Test hook: force (@on true) or stop forcing (@on false) the scalar path,
 * so a test can run both paths on the same AVX2 machine and compare them.
 * Affects every thread (one relaxed atomic flag).  Not for production code.
 */
void amil_siphash_x4_force_scalar(bool on);

/**
 * SipHash-2-4 of four 56-byte messages, bit-exact with
 * crypto_shorthash_siphash24(out, msg[i], 56, key[i]).
 *
 * @param out  receives the four 64-bit SipHash values, host order; the
 *             8 tag bytes are their little-endian encoding (htole64).
 * @param msg  four messages of AMIL_SIPHASH_X4_MSG_LEN bytes, any alignment;
 *             exactly those 56 bytes are read.  Pointers may repeat.
 * @param key  four 16-byte keys, any alignment; pointers may repeat.
 *
 * Precondition: amil_siphash_x4_usable() returned true (the function is
 * compiled for AVX2 and would fault with SIGILL on an older CPU).  No
 * allocation, no shared state: thread-safe.  @out must not overlap the
 * inputs.
 */
void amil_siphash_x4_hash56(uint64_t out[AMIL_SIPHASH_X4_LANES],
			    const uint8_t *const msg[AMIL_SIPHASH_X4_LANES],
			    const uint8_t *const key[AMIL_SIPHASH_X4_LANES]);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_SIPHASH_X4_H */
