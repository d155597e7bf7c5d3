/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The zakat levy, exactly, in integer minor units.
 *
 *   levy = round_half_up(amount * rate_bp / 10000)
 *        = (amount * rate_bp + 5000) / 10000      (amount >= 0)
 *
 * The obvious expression overflows int64 for amount = 10^15 and rate_bp =
 * 10000 (10^19 > 2^63).  Splitting amount = q * 10000 + r gives
 *
 *   (q * 10000 * rate + r * rate + 5000) / 10000 = q * rate + (r * rate + 5000) / 10000
 *
 * because the first term is a multiple of 10000.  Both parts stay below
 * 2^63 for every amount in 0..INT64_MAX and rate_bp in 0..10000, so there is
 * no overflow and no 128-bit arithmetic on the fast path.
 */
#ifndef AMIL_LEVY_H
#define AMIL_LEVY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_LEVY_RATE_BP_DEFAULT 250     /* 2.5 % */
#define AMIL_LEVY_RATE_BP_MAX     10000   /* 100 % */

/**
 * Levy on @amount_minor at @rate_bp basis points, rounded half up.
 * Precondition: 0 <= amount_minor, rate_bp <= AMIL_LEVY_RATE_BP_MAX
 * (validated amounts are 1..10^15; config refuses larger rates).
 * Pure; safe from any thread.
 */
static inline int64_t
amil_levy_minor(int64_t amount_minor, uint32_t rate_bp)
{
	int64_t q = amount_minor / 10000;
	int64_t r = amount_minor % 10000;

	return q * (int64_t)rate_bp + (r * (int64_t)rate_bp + 5000) / 10000;
}

#ifdef __cplusplus
}
#endif
#endif /* AMIL_LEVY_H */
