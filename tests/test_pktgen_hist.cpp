/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for tools/pktgen/hist.h: log-linear buckets and quantiles. */
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "hist.h"

namespace {

struct HistDeleter {
	void operator()(amil_hist *h) const { amil_hist_free(h); }
};
using Hist = std::unique_ptr<amil_hist, HistDeleter>;

Hist make()
{
	Hist h(amil_hist_create());
	EXPECT_NE(nullptr, h.get());
	return h;
}

/* The exact quantile the histogram approximates: the ceil(n*q)-th smallest. */
uint64_t
exact(std::vector<uint64_t> v, uint32_t ppm)
{
	std::sort(v.begin(), v.end());
	uint64_t rank = ((unsigned __int128)v.size() * ppm + 999999) / 1000000;
	if (rank == 0)
		rank = 1;
	return v[rank - 1];
}

} // namespace

TEST(PktgenHist, BucketsTileTheRangeWithoutGapsOrOverlap)
{
	uint64_t expect_lo = 0;

	for (uint32_t i = 0; i < AMIL_HIST_BUCKETS; i++) {
		uint64_t lo, hi;

		amil_hist_bucket_range(i, &lo, &hi);
		ASSERT_EQ(expect_lo, lo) << "bucket " << i;
		ASSERT_LE(lo, hi);
		ASSERT_EQ(i, amil_hist_bucket(lo));
		ASSERT_EQ(i, amil_hist_bucket(hi));
		/* Relative width below 1/128 past the linear part. */
		if (lo >= AMIL_HIST_SUB) {
			ASSERT_LE((hi - lo + 1) * AMIL_HIST_SUB, lo) << "bucket " << i;
		}
		expect_lo = hi + 1;
	}
	EXPECT_EQ(UINT64_C(1) << AMIL_HIST_MAX_BITS, expect_lo);
	/* Beyond the range: clamped into the last bucket. */
	EXPECT_EQ(AMIL_HIST_BUCKETS - 1, amil_hist_bucket(UINT64_MAX));
}

TEST(PktgenHist, EmptyAndSingleValue)
{
	Hist h = make();

	EXPECT_EQ(0u, amil_hist_quantile(h.get(), 500000));
	EXPECT_EQ(0u, amil_hist_max(h.get()));
	amil_hist_record(h.get(), 123456);
	EXPECT_EQ(1u, amil_hist_count(h.get()));
	/* One value: every quantile is that value (clamped to the exact max). */
	EXPECT_EQ(123456u, amil_hist_quantile(h.get(), 1));
	EXPECT_EQ(123456u, amil_hist_quantile(h.get(), 999000));
	EXPECT_EQ(123456u, amil_hist_max(h.get()));
	EXPECT_EQ(123456u, amil_hist_min(h.get()));
}

TEST(PktgenHist, QuantilesWithinRelativeErrorOfExact)
{
	std::mt19937_64 rng(42);
	std::lognormal_distribution<double> lat(10.0, 1.5);  /* ~22 us median, long tail */
	std::vector<uint64_t> v;
	Hist h = make();

	for (int i = 0; i < 200000; i++) {
		uint64_t x = (uint64_t)lat(rng);
		v.push_back(x);
		amil_hist_record(h.get(), x);
	}
	for (uint32_t ppm : {1u, 500000u, 900000u, 990000u, 999000u, 999999u}) {
		uint64_t e = exact(v, ppm), q = amil_hist_quantile(h.get(), ppm);

		EXPECT_GE(q, e) << "ppm " << ppm;                   /* never below */
		EXPECT_LE(q - e, e / AMIL_HIST_SUB + 1) << "ppm " << ppm; /* < 0.8 % above */
	}
	EXPECT_EQ(*std::max_element(v.begin(), v.end()), amil_hist_max(h.get()));
	EXPECT_EQ(*std::max_element(v.begin(), v.end()), amil_hist_quantile(h.get(), 1000000));
}

TEST(PktgenHist, SmallValuesAreExact)
{
	Hist h = make();

	for (uint64_t x = 0; x < 100; x++)
		amil_hist_record(h.get(), x);
	EXPECT_EQ(49u, amil_hist_quantile(h.get(), 500000));
	EXPECT_EQ(89u, amil_hist_quantile(h.get(), 900000));
	EXPECT_EQ(98u, amil_hist_quantile(h.get(), 990000));
}

TEST(PktgenHist, MergeEqualsRecordingEverythingInOne)
{
	std::mt19937_64 rng(7);
	Hist a = make(), b = make(), all = make();

	for (int i = 0; i < 50000; i++) {
		uint64_t x = rng() % 10000000;
		amil_hist_record(i % 3 ? a.get() : b.get(), x);
		amil_hist_record(all.get(), x);
	}
	amil_hist_merge(a.get(), b.get());
	EXPECT_EQ(amil_hist_count(all.get()), amil_hist_count(a.get()));
	EXPECT_EQ(amil_hist_max(all.get()), amil_hist_max(a.get()));
	EXPECT_EQ(amil_hist_min(all.get()), amil_hist_min(a.get()));
	for (uint32_t ppm : {500000u, 990000u, 999000u})
		EXPECT_EQ(amil_hist_quantile(all.get(), ppm), amil_hist_quantile(a.get(), ppm));
	amil_hist_reset(a.get());
	EXPECT_EQ(0u, amil_hist_count(a.get()));
}

TEST(PktgenHist, HugeValuesClampButMaxStaysExact)
{
	Hist h = make();

	amil_hist_record(h.get(), UINT64_MAX);
	amil_hist_record(h.get(), 5);
	EXPECT_EQ(UINT64_MAX, amil_hist_max(h.get()));
	EXPECT_EQ(5u, amil_hist_quantile(h.get(), 500000));
	/* The clamped bucket reports its upper bound, not garbage. */
	EXPECT_EQ((UINT64_C(1) << AMIL_HIST_MAX_BITS) - 1, amil_hist_quantile(h.get(), 999999));
}
