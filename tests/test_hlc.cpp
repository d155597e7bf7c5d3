// Unit tests for controlplane/hlc.c: monotonicity when the wall clock
// steps back, the logical carry, receive ordering, the drift bound and
// the (timestamp, node id) order.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>

#include "hlc.h"

namespace {

constexpr uint64_t kSec = 1000000000ull;

TEST(Hlc, FollowsPhysicalTime)
{
	amil_hlc h;
	amil_hlc_init(&h, 0);
	uint64_t a = amil_hlc_now(&h, 100 * kSec);
	EXPECT_EQ(amil_hlc_physical_ns(a), amil_hlc_from_ns(100 * kSec));
	EXPECT_EQ(amil_hlc_logical(a), 0u);
	uint64_t b = amil_hlc_now(&h, 101 * kSec);
	EXPECT_GT(b, a);
	EXPECT_EQ(amil_hlc_logical(b), 0u);
}

TEST(Hlc, NeverGoesBackwardsWhenWallClockSteps)
{
	amil_hlc h;
	amil_hlc_init(&h, 0);
	uint64_t a = amil_hlc_now(&h, 100 * kSec);
	uint64_t b = amil_hlc_now(&h, 50 * kSec);  // NTP stepped back
	uint64_t c = amil_hlc_now(&h, 100 * kSec);  // same tick again
	EXPECT_EQ(b, a + 1);
	EXPECT_EQ(c, a + 2);
	EXPECT_EQ(amil_hlc_physical_ns(c), amil_hlc_physical_ns(a));
	EXPECT_EQ(amil_hlc_logical(c), 2u);
}

TEST(Hlc, LogicalOverflowCarriesIntoPhysical)
{
	amil_hlc h;
	amil_hlc_init(&h, 0);
	uint64_t first = amil_hlc_now(&h, 7 * kSec), prev = first;
	for (unsigned i = 0; i < AMIL_HLC_LOGICAL_MASK + 5; i++) {
		uint64_t t = amil_hlc_now(&h, 7 * kSec);
		ASSERT_GT(t, prev);
		prev = t;
	}
	EXPECT_GT(amil_hlc_physical_ns(prev), amil_hlc_physical_ns(first));
}

TEST(Hlc, ReceiveOrdersAfterRemote)
{
	amil_hlc a, b;
	amil_hlc_init(&a, 0);
	amil_hlc_init(&b, 0);
	uint64_t sent = amil_hlc_now(&a, 200 * kSec);
	// b's wall clock lags by 1 s: its next event must still order after
	ASSERT_EQ(amil_hlc_update(&b, 199 * kSec, sent), 0);
	uint64_t next = amil_hlc_now(&b, 199 * kSec);
	EXPECT_GT(next, sent);
	EXPECT_EQ(amil_hlc_physical_ns(next), amil_hlc_physical_ns(sent));
	// an old remote timestamp does not move the clock back
	ASSERT_EQ(amil_hlc_update(&b, 199 * kSec, 1), 0);
	EXPECT_GT(amil_hlc_now(&b, 199 * kSec), next);
}

TEST(Hlc, DriftBoundRefusesFarFutureAndKeepsClock)
{
	amil_hlc h;
	amil_hlc_init(&h, 500000000ull);  // 500 ms
	uint64_t t = amil_hlc_now(&h, 10 * kSec);
	EXPECT_EQ(amil_hlc_update(&h, 10 * kSec, amil_hlc_from_ns(12 * kSec)), -ERANGE);
	EXPECT_EQ(h.rejected, 1u);
	EXPECT_EQ(amil_hlc_now(&h, 10 * kSec), t + 1);
	// within the bound: accepted
	EXPECT_EQ(amil_hlc_update(&h, 10 * kSec, amil_hlc_from_ns(10 * kSec + 400000000ull)), 0);
	EXPECT_GT(amil_hlc_now(&h, 10 * kSec), amil_hlc_from_ns(10 * kSec + 400000000ull));
	// 0 turns the check off
	amil_hlc_init(&h, 0);
	EXPECT_EQ(amil_hlc_update(&h, 0, UINT64_C(1) << 62), 0);
}

TEST(Hlc, CompareBreaksTiesByNodeId)
{
	EXPECT_LT(amil_hlc_cmp(5, 9, 6, 1), 0);
	EXPECT_GT(amil_hlc_cmp(6, 1, 5, 9), 0);
	EXPECT_LT(amil_hlc_cmp(5, 1, 5, 2), 0);
	EXPECT_GT(amil_hlc_cmp(5, 2, 5, 1), 0);
	EXPECT_EQ(amil_hlc_cmp(5, 2, 5, 2), 0);
}

}  // namespace
