/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Log-linear latency histogram.  See hist.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

struct amil_hist {
	uint64_t count;                     /* values recorded */
	uint64_t min, max;                  /* exact extremes; min valid when count > 0 */
	uint64_t bucket[AMIL_HIST_BUCKETS]; /* see amil_hist_bucket() */
};

/* Largest value with its own bucket range; larger values are clamped. */
#define HIST_CLAMP ((UINT64_C(1) << AMIL_HIST_MAX_BITS) - 1)

uint32_t
amil_hist_bucket(uint64_t v)
{
	unsigned e;

	if (v < AMIL_HIST_SUB)
		return (uint32_t)v;
	if (v > HIST_CLAMP)
		v = HIST_CLAMP;
	e = 63u - (unsigned)__builtin_clzll(v);       /* 7 .. MAX_BITS-1 */
	/* The SUB_BITS bits after the leading one pick the sub-bucket. */
	return AMIL_HIST_SUB + (e - AMIL_HIST_SUB_BITS) * AMIL_HIST_SUB +
	       (uint32_t)((v >> (e - AMIL_HIST_SUB_BITS)) & (AMIL_HIST_SUB - 1));
}

void
amil_hist_bucket_range(uint32_t i, uint64_t *lo, uint64_t *hi)
{
	unsigned e, shift;
	uint64_t sub;

	if (i < AMIL_HIST_SUB) {
		*lo = *hi = i;
		return;
	}
	e = AMIL_HIST_SUB_BITS + (i - AMIL_HIST_SUB) / AMIL_HIST_SUB;
	sub = (i - AMIL_HIST_SUB) % AMIL_HIST_SUB;
	shift = e - AMIL_HIST_SUB_BITS;
	*lo = (AMIL_HIST_SUB + sub) << shift;
	*hi = *lo + (UINT64_C(1) << shift) - 1;
}

struct amil_hist *
amil_hist_create(void)
{
	struct amil_hist *h = calloc(1, sizeof(*h));

	if (h == NULL)
		errno = ENOMEM;
	return h;
}

void
amil_hist_free(struct amil_hist *h)
{
	free(h);
}

void
amil_hist_reset(struct amil_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void
amil_hist_record(struct amil_hist *h, uint64_t v)
{
	h->bucket[amil_hist_bucket(v)]++;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
}

void
amil_hist_merge(struct amil_hist *dst, const struct amil_hist *src)
{
	if (src->count == 0)
		return;
	for (uint32_t i = 0; i < AMIL_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
}

uint64_t
amil_hist_count(const struct amil_hist *h)
{
	return h->count;
}

uint64_t
amil_hist_max(const struct amil_hist *h)
{
	return h->max;
}

uint64_t
amil_hist_min(const struct amil_hist *h)
{
	return h->count ? h->min : 0;
}

uint64_t
amil_hist_quantile(const struct amil_hist *h, uint32_t ppm)
{
	uint64_t rank, seen = 0, lo, hi;

	if (h->count == 0)
		return 0;
	if (ppm >= 1000000)
		return h->max;
	/* rank = ceil(count * ppm / 10^6), at least 1; 128-bit so a count
	 * near 2^64 cannot overflow. */
	rank = (uint64_t)(((unsigned __int128)h->count * ppm + 999999) / 1000000);
	if (rank == 0)
		rank = 1;
	for (uint32_t i = 0; i < AMIL_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			amil_hist_bucket_range(i, &lo, &hi);
			if (hi > h->max)
				hi = h->max;
			if (hi < h->min)
				hi = h->min;
			return hi;
		}
	}
	return h->max;
}
