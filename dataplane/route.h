/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Which worker owns a donation: a consistent hash of (center_id,
 * donation_id) onto 0..nb_workers-1.
 *
 * The key is first mixed into 64 well-spread bits (a multiply-xorshift
 * finaliser: donation ids are often sequential, so the raw value would
 * cluster), then mapped with jump consistent hashing (Lamping & Veach,
 * 2014): no table, O(log n), perfectly balanced in expectation, and when the
 * worker count goes from n to n+1 only 1/(n+1) of keys move.  Every key
 * always lands on the same worker for a fixed count, which is what lets the
 * per-worker dedupe tables work without sharing.
 *
 * Pure functions: any thread, no allocation.
 */
#ifndef AMIL_ROUTE_H
#define AMIL_ROUTE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** 64-bit mix of the idempotency key (bijective in donation_id). */
static inline uint64_t
amil_route_mix(uint32_t center_id, uint64_t donation_id)
{
	uint64_t x = donation_id ^ ((uint64_t)center_id * UINT64_C(0x9E3779B97F4A7C15));

	x ^= x >> 30;
	x *= UINT64_C(0xBF58476D1CE4E5B9);
	x ^= x >> 27;
	x *= UINT64_C(0x94D049BB133111EB);
	x ^= x >> 31;
	return x;
}

/** Jump consistent hash of @key onto [0, @buckets); @buckets >= 1. */
static inline uint32_t
amil_route_jump(uint64_t key, uint32_t buckets)
{
	int64_t b = -1, j = 0;

	while (j < (int64_t)buckets) {
		b = j;
		key = key * UINT64_C(2862933555777941757) + 1;
		j = (int64_t)((double)(b + 1) *
			      ((double)(UINT64_C(1) << 31) / (double)((key >> 33) + 1)));
	}
	return (uint32_t)b;
}

/** Worker index for a donation; @nb_workers >= 1. */
static inline uint32_t
amil_route_worker(uint32_t center_id, uint64_t donation_id, uint32_t nb_workers)
{
	if (nb_workers <= 1)
		return 0;
	return amil_route_jump(amil_route_mix(center_id, donation_id), nb_workers);
}

#ifdef __cplusplus
}
#endif
#endif /* AMIL_ROUTE_H */
