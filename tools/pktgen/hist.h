/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Latency histogram, HDR style: log-linear buckets fixed at creation, so
 * recording is an index computation and an increment - no allocation, no
 * branch on the data beyond one compare.
 *
 * Values below 2^AMIL_HIST_SUB_BITS (128) get a bucket each.  Above that,
 * each power of two [2^e, 2^(e+1)) is split into 2^AMIL_HIST_SUB_BITS equal
 * buckets, so a bucket is at most 1/128 (0.78 %) of its values wide: the
 * relative error of any percentile is below 0.8 %, from 1 ns to
 * 2^AMIL_HIST_MAX_BITS ns (about 4.9 hours).  Larger values are clamped
 * into the last bucket; the exact maximum is kept separately.
 *
 * Why not a sorted sample or a t-digest: both allocate or approximate
 * unpredictably; the lab wants p99.9 and max it can trust at 15 Mpps.
 * 4,864 buckets of 8 bytes (38 KiB) per histogram, one per RX lcore,
 * merged on the control path at the end.
 *
 * Thread-safety: a histogram is written by one lcore; amil_hist_merge() and
 * the readers run after that lcore stopped (or accept a torn view).
 */
#ifndef AMIL_PKTGEN_HIST_H
#define AMIL_PKTGEN_HIST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_HIST_SUB_BITS 7
#define AMIL_HIST_MAX_BITS 44
#define AMIL_HIST_SUB      (1u << AMIL_HIST_SUB_BITS)
#define AMIL_HIST_BUCKETS  (AMIL_HIST_SUB + (AMIL_HIST_MAX_BITS - AMIL_HIST_SUB_BITS) * AMIL_HIST_SUB)

struct amil_hist;

/** A zeroed histogram, or NULL (errno ENOMEM).  Caller owns it. */
struct amil_hist *amil_hist_create(void);

/** Free @h; NULL is a no-op. */
void amil_hist_free(struct amil_hist *h);

/** Forget every recorded value. */
void amil_hist_reset(struct amil_hist *h);

/** Record one value (nanoseconds, or any unit).  Fast path. */
void amil_hist_record(struct amil_hist *h, uint64_t v);

/** Add every value of @src to @dst. */
void amil_hist_merge(struct amil_hist *dst, const struct amil_hist *src);

/** Number of values recorded. */
uint64_t amil_hist_count(const struct amil_hist *h);

/** Exact largest and smallest values recorded (0 when empty). */
uint64_t amil_hist_max(const struct amil_hist *h);
uint64_t amil_hist_min(const struct amil_hist *h);

/**
 * Value at quantile @ppm parts per million (500000 = median, 999000 =
 * p99.9): the highest value of the bucket holding the ceil(count * ppm /
 * 10^6)-th smallest value, but never above the exact maximum.  So the
 * answer is at least the true quantile and less than 0.8 % above it.
 * @return 0 when empty; @ppm above 10^6 is taken as 10^6 (the maximum).
 */
uint64_t amil_hist_quantile(const struct amil_hist *h, uint32_t ppm);

/** Bucket index of @v and the inclusive range of values of bucket @i
 *  (exposed for tests). */
uint32_t amil_hist_bucket(uint64_t v);
void amil_hist_bucket_range(uint32_t i, uint64_t *lo, uint64_t *hi);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PKTGEN_HIST_H */
