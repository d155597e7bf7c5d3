/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for tools/pktgen/pace.h: exact TSC pacing, bursts, debt bound. */
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "pace.h"

namespace {

/* Advance a simulated TSC by random steps for @span cycles and count what
 * the pacer hands out, at most @max per call. */
uint64_t
run(amil_pace *p, uint64_t start, uint64_t span, uint64_t max_step, uint32_t max, uint32_t seed)
{
	std::mt19937_64 rng(seed);
	uint64_t now = start, n = 0;

	while (now < start + span) {
		n += amil_pace_take(p, now, max);
		now += 1 + rng() % max_step;
	}
	return n;
}

} // namespace

TEST(PktgenPace, FractionalPeriodIsExactOverOneSecond)
{
	/* 2.5 GHz / 15 Mpps = 166.67 cycles: a rounded period would give
	 * 15.06 Mpps.  The schedule must hand out 15,000,000 (+1 for the
	 * packet due at t=0) in one second of TSC. */
	amil_pace p;
	const uint64_t hz = 2500000000ull, start = 123456789;

	amil_pace_init(&p, 15000000, hz, start, 0);
	uint64_t n = run(&p, start, hz, 50, 64, 1);
	EXPECT_GE(n, 15000000u);
	EXPECT_LE(n, 15000001u);
	EXPECT_EQ(0u, p.skipped);
}

TEST(PktgenPace, OddRatesAndClocks)
{
	const uint64_t hz[] = {1000000000ull, 2194917000ull, 3000000007ull};
	const uint64_t rate[] = {1, 7, 50000, 999983, 14880952};

	for (uint64_t h : hz)
		for (uint64_t r : rate) {
			amil_pace p;

			amil_pace_init(&p, r, h, 0, 0);
			/* Exactly floor(r * T / hz) + 1 slots fall in [0, T]. */
			uint64_t n = run(&p, 0, h / 4, h / r / 3 + 1, 1u << 30, 7);
			uint64_t want = (uint64_t)((unsigned __int128)r * (h / 4) / h);
			EXPECT_GE(n, want) << "hz " << h << " rate " << r;
			EXPECT_LE(n, want + 1) << "hz " << h << " rate " << r;
		}
}

TEST(PktgenPace, NothingBeforeItsTimeAndNeverAboveMax)
{
	amil_pace p;

	amil_pace_init(&p, 1000, 1000000, 0, 0);  /* one packet per 1000 cycles */
	EXPECT_EQ(1u, amil_pace_take(&p, 0, 32));  /* packet 0 is due at once */
	EXPECT_EQ(0u, amil_pace_take(&p, 999, 32));
	EXPECT_EQ(1u, amil_pace_take(&p, 1000, 32));
	/* 10 packets owed at t=11000, but at most 4 per call. */
	EXPECT_EQ(4u, amil_pace_take(&p, 11000, 4));
	EXPECT_EQ(4u, amil_pace_take(&p, 11000, 4));
	EXPECT_EQ(2u, amil_pace_take(&p, 11000, 4));
	EXPECT_EQ(0u, amil_pace_take(&p, 11000, 4));
}

TEST(PktgenPace, UnlimitedGivesMax)
{
	amil_pace p;

	amil_pace_init(&p, 0, 2000000000ull, 5, 0);
	EXPECT_EQ(32u, amil_pace_take(&p, 5, 32));
	EXPECT_EQ(7u, amil_pace_take(&p, 5, 7));
}

TEST(PktgenPace, StallDebtIsBoundedAndCounted)
{
	/* 1 Mpps at 1 GHz, debt bound 1 ms = 1000 packets.  A 1 s stall owes
	 * 10^6 packets; only the last 1 ms worth (1000, +1) may be caught up,
	 * the rest is skipped and counted. */
	amil_pace p;
	const uint64_t hz = 1000000000ull;

	amil_pace_init(&p, 1000000, hz, 0, hz / 1000);
	EXPECT_EQ(1u, amil_pace_take(&p, 0, 1u << 30));
	uint64_t caught = amil_pace_take(&p, hz, 1u << 30);
	EXPECT_GE(caught, 1000u);
	EXPECT_LE(caught, 1002u);
	EXPECT_EQ(1000001u, 1 + caught + p.skipped);
	/* And the schedule goes on at the rate afterwards. */
	EXPECT_EQ(0u, amil_pace_take(&p, hz, 1u << 30));
	EXPECT_EQ(1000u, amil_pace_take(&p, hz + hz / 1000, 1u << 30));
}
