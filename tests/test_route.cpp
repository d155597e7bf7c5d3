// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Tests for dataplane/route.h: the (center_id, donation_id) -> worker hash.
// What matters to the rest of the data plane: a key always lands on the same
// worker (the per-worker dedupe tables depend on it), the load is even even
// for sequential donation ids, and growing the worker count moves as few
// keys as possible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "route.h"

namespace {

// A few centers, each sending sequential donation ids: the realistic shape.
constexpr uint32_t kCenters[] = {1, 2, 17, 40000};
constexpr uint64_t kKeysPerCenter = 250000; // 4 x 250k = 1e6 keys
constexpr uint64_t kFirstId = 1000000;      // ids start somewhere, not at 0

template <typename F> void for_each_key(F f)
{
	for (uint32_t c : kCenters)
		for (uint64_t id = kFirstId; id < kFirstId + kKeysPerCenter; id++)
			f(c, id);
}

// Jump consistent hash as published (Lamping & Veach 2014, figure 1), kept
// here independently of route.h so that a change to either is caught.
int32_t paper_jump(uint64_t key, int32_t num_buckets)
{
	int64_t b = -1, j = 0;
	while (j < num_buckets) {
		b = j;
		key = key * 2862933555777941757ULL + 1;
		j = (int64_t)((b + 1) * (double(1LL << 31) / double((key >> 33) + 1)));
	}
	return (int32_t)b;
}

// Chi-square critical values at p = 0.001 for df = n - 1.
double chi2_critical_p001(uint32_t n)
{
	switch (n) {
	case 2: return 10.828;
	case 3: return 13.816;
	case 4: return 16.266;
	case 8: return 24.322;
	case 16: return 37.697;
	}
	ADD_FAILURE() << "no critical value for n=" << n;
	return 0;
}

} // namespace

// Behaviour freeze: if any of these change, every deployed worker count
// would route keys differently after an upgrade, and retransmits of
// donations recorded before the upgrade would reach a worker that has never
// seen them (answered ACCEPTED twice).  Update only with a migration plan.
TEST(Route, FixedOutputs)
{
	struct {
		uint32_t center;
		uint64_t donation;
		uint64_t mix;
		uint32_t worker[7]; // for n = 2, 3, 4, 8, 16, 64, 1000
	} const golden[] = {
		{0, UINT64_C(0), UINT64_C(0x0000000000000000), {0, 0, 0, 0, 0, 0, 0}},
		{1, UINT64_C(1), UINT64_C(0xe4d971771b652c20), {0, 2, 3, 3, 3, 26, 650}},
		{1, UINT64_C(2), UINT64_C(0x975835de1c9756ce), {0, 0, 0, 0, 0, 19, 19}},
		{7, UINT64_C(1000000), UINT64_C(0x6a233884a483da98), {0, 0, 0, 4, 14, 14, 781}},
		{42, UINT64_C(18446744073709551615), UINT64_C(0x81089db081255100),
		 {1, 1, 1, 1, 1, 19, 649}},
		{4294967295u, UINT64_C(123456789), UINT64_C(0x8e23ee972280c664),
		 {0, 0, 0, 5, 8, 19, 976}},
		{3, UINT64_C(9223372036854775808), UINT64_C(0x61a685ffc80a8140),
		 {1, 2, 2, 6, 6, 40, 879}},
	};
	const uint32_t ns[7] = {2, 3, 4, 8, 16, 64, 1000};

	for (const auto &g : golden) {
		SCOPED_TRACE(testing::Message() << "center " << g.center << " donation " << g.donation);
		EXPECT_EQ(amil_route_mix(g.center, g.donation), g.mix);
		for (int j = 0; j < 7; j++)
			EXPECT_EQ(amil_route_worker(g.center, g.donation, ns[j]), g.worker[j])
				<< "n=" << ns[j];
	}
}

TEST(Route, SameKeySameWorkerEveryCall)
{
	for (uint32_t n = 1; n <= 16; n++)
		for (uint64_t id = 0; id < 2000; id++) {
			uint32_t first = amil_route_worker(5, id, n);
			for (int rep = 0; rep < 3; rep++)
				ASSERT_EQ(amil_route_worker(5, id, n), first) << "id " << id << " n " << n;
		}
}

TEST(Route, JumpMatchesPublishedAlgorithm)
{
	for (uint32_t n = 1; n <= 300; n += 7)
		for (uint64_t id = 0; id < 5000; id++) {
			uint64_t k = amil_route_mix(9, id);
			ASSERT_EQ((int32_t)amil_route_jump(k, n), paper_jump(k, (int32_t)n))
				<< "id " << id << " n " << n;
		}
}

TEST(Route, SingleWorkerTakesEverything)
{
	for (uint64_t id = 0; id < 10000; id++) {
		ASSERT_EQ(amil_route_worker(3, id, 1), 0u);
		ASSERT_EQ(amil_route_jump(amil_route_mix(3, id), 1), 0u);
	}
}

TEST(Route, ResultInRange)
{
	for (uint32_t n = 1; n <= 64; n++) {
		std::vector<uint64_t> seen(n, 0);
		for (uint64_t id = 0; id < 20000; id++) {
			uint32_t w = amil_route_worker(11, id, n);
			ASSERT_LT(w, n) << "id " << id;
			seen[w]++;
		}
		// In range is not enough: every worker must get something.
		for (uint32_t w = 0; w < n; w++)
			EXPECT_GT(seen[w], 0u) << "worker " << w << " of " << n << " never chosen";
	}
}

TEST(Route, MixIsBijectiveInDonationId)
{
	std::vector<uint64_t> m;
	m.reserve(kKeysPerCenter);
	for (uint64_t id = kFirstId; id < kFirstId + kKeysPerCenter; id++)
		m.push_back(amil_route_mix(17, id));
	std::sort(m.begin(), m.end());
	EXPECT_EQ(std::adjacent_find(m.begin(), m.end()), m.end()) << "two ids mix to one value";
}

TEST(Route, BalancedOverSequentialIds)
{
	for (uint32_t n : {2u, 3u, 4u, 8u, 16u}) {
		std::vector<uint64_t> load(n, 0);
		uint64_t total = 0;
		for_each_key([&](uint32_t c, uint64_t id) {
			load[amil_route_worker(c, id, n)]++;
			total++;
		});
		ASSERT_EQ(total, 1000000u);
		double mean = double(total) / n, chi2 = 0;
		for (uint32_t w = 0; w < n; w++) {
			EXPECT_NEAR(double(load[w]), mean, 0.02 * mean)
				<< "worker " << w << " of " << n;
			chi2 += (double(load[w]) - mean) * (double(load[w]) - mean) / mean;
		}
		EXPECT_LT(chi2, chi2_critical_p001(n)) << "n=" << n;
	}
}

// Each center on its own must also be spread: one busy center must not
// load a single worker.
TEST(Route, BalancedPerCenter)
{
	const uint32_t n = 8;
	for (uint32_t c : kCenters) {
		std::vector<uint64_t> load(n, 0);
		for (uint64_t id = kFirstId; id < kFirstId + kKeysPerCenter; id++)
			load[amil_route_worker(c, id, n)]++;
		double mean = double(kKeysPerCenter) / n;
		for (uint32_t w = 0; w < n; w++)
			EXPECT_NEAR(double(load[w]), mean, 0.03 * mean) << "center " << c;
	}
}

// n -> n+1: a key either stays or moves to the new worker n, and the
// fraction that moves is 1/(n+1).
TEST(Route, MinimalMovementWhenAddingAWorker)
{
	for (uint32_t n = 1; n <= 32; n++) {
		uint64_t moved = 0, total = 0, wrong_target = 0;
		for_each_key([&](uint32_t c, uint64_t id) {
			uint32_t a = amil_route_worker(c, id, n);
			uint32_t b = amil_route_worker(c, id, n + 1);
			total++;
			if (a != b) {
				moved++;
				if (b != n)
					wrong_target++;
			}
		});
		double frac = double(moved) / double(total);
		EXPECT_NEAR(frac, 1.0 / (n + 1), 0.005) << "n=" << n << " -> " << n + 1;
		EXPECT_EQ(wrong_target, 0u) << "keys moved between old workers, n=" << n;
	}
}

// Sequential ids must not form runs on one worker: a burst of consecutive
// donations from one center should spread over all workers.
TEST(Route, SequentialIdsDoNotCluster)
{
	const uint32_t n = 4;
	for (uint32_t c : kCenters) {
		uint32_t prev = UINT32_MAX, run = 0, longest = 0;
		for (uint64_t id = kFirstId; id < kFirstId + kKeysPerCenter; id++) {
			uint32_t w = amil_route_worker(c, id, n);
			run = (w == prev) ? run + 1 : 1;
			prev = w;
			longest = std::max(longest, run);
		}
		// Random: expected longest run ~ log4(250k) ~ 9; 20 has p ~ 1e-6.
		EXPECT_LE(longest, 20u) << "center " << c;

		// Every window of 64 consecutive ids reaches every worker
		// (random: P(miss) ~ 4 * 0.75^64 ~ 4e-8 per window).
		for (uint64_t start = kFirstId; start < kFirstId + 100000; start += 64) {
			unsigned mask = 0;
			for (uint64_t id = start; id < start + 64; id++)
				mask |= 1u << amil_route_worker(c, id, n);
			ASSERT_EQ(mask, 0xfu) << "center " << c << " window at " << start;
		}
	}

	// Avalanche of the mix: neighbouring ids differ in about half the bits.
	double bits = 0;
	const uint64_t count = 100000;
	for (uint64_t id = 0; id < count; id++)
		bits += __builtin_popcountll(amil_route_mix(1, id) ^ amil_route_mix(1, id + 1));
	EXPECT_NEAR(bits / count, 32.0, 0.5);
}

// The same donation id from different centers is a different key and must
// not all go to one worker.
TEST(Route, CenterIsPartOfTheKey)
{
	const uint32_t n = 8;
	std::vector<uint64_t> load(n, 0);
	for (uint32_t c = 0; c < 80000; c++)
		load[amil_route_worker(c, 12345, n)]++;
	for (uint32_t w = 0; w < n; w++)
		EXPECT_NEAR(double(load[w]), 10000.0, 400.0) << "worker " << w;
}
