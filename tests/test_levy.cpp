/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for lib/amil_levy.h: exact round-half-up levy without overflow. */
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "amil_levy.h"
#include "amil_wire.h"

namespace {

/* The formula evaluated in 128 bits, where it cannot overflow. */
int64_t
levy_ref(int64_t amount, uint32_t rate_bp)
{
	unsigned __int128 v = (unsigned __int128)(uint64_t)amount * rate_bp + 5000;

	return (int64_t)(v / 10000);
}

} // namespace

TEST(Levy, RoundHalfUpAtDefaultRate)
{
	const uint32_t r = AMIL_LEVY_RATE_BP_DEFAULT;

	ASSERT_EQ(250u, r);
	EXPECT_EQ(0, amil_levy_minor(0, r));
	EXPECT_EQ(0, amil_levy_minor(1, r));      /* 0.025 */
	EXPECT_EQ(0, amil_levy_minor(19, r));     /* 0.475 */
	EXPECT_EQ(1, amil_levy_minor(20, r));     /* 0.5 exactly: half rounds up */
	EXPECT_EQ(1, amil_levy_minor(39, r));     /* 0.975 */
	EXPECT_EQ(1, amil_levy_minor(59, r));     /* 1.475 */
	EXPECT_EQ(2, amil_levy_minor(60, r));     /* 1.5 */
	EXPECT_EQ(3, amil_levy_minor(100, r));    /* 2.5 -> 3 (not banker's 2) */
	EXPECT_EQ(309, amil_levy_minor(12345, r)); /* 308.625 */
}

TEST(Levy, SplitAtTenThousandBoundary)
{
	/* Amounts just around multiples of 10000 exercise the q/r split. */
	EXPECT_EQ(250, amil_levy_minor(9999 + 1, 250));
	EXPECT_EQ(250, amil_levy_minor(9999, 250));     /* 249.975 */
	EXPECT_EQ(250, amil_levy_minor(10019, 250));    /* 250.475 */
	EXPECT_EQ(251, amil_levy_minor(10020, 250));    /* 250.5 */
	EXPECT_EQ(9999, amil_levy_minor(9999, 10000));
	EXPECT_EQ(10000, amil_levy_minor(10000, 10000));
}

TEST(Levy, MaximumAmount)
{
	EXPECT_EQ(INT64_C(25000000000000), amil_levy_minor(AMIL_AMOUNT_MAX_MINOR, 250));
	/* 10^15 * 10^4 = 10^19 > INT64_MAX: the naive formula overflows here. */
	EXPECT_EQ(AMIL_AMOUNT_MAX_MINOR, amil_levy_minor(AMIL_AMOUNT_MAX_MINOR, 10000));
	EXPECT_EQ(INT64_C(100000000000), amil_levy_minor(AMIL_AMOUNT_MAX_MINOR, 1));
	EXPECT_EQ(levy_ref(INT64_MAX, 10000), amil_levy_minor(INT64_MAX, 10000));
	EXPECT_EQ(INT64_MAX, amil_levy_minor(INT64_MAX, 10000));
}

TEST(Levy, RateZeroAndOne)
{
	EXPECT_EQ(0, amil_levy_minor(AMIL_AMOUNT_MAX_MINOR, 0));
	EXPECT_EQ(0, amil_levy_minor(1, 0));
	EXPECT_EQ(0, amil_levy_minor(1, 1));
	EXPECT_EQ(0, amil_levy_minor(4999, 1));    /* 0.4999 */
	EXPECT_EQ(1, amil_levy_minor(5000, 1));    /* 0.5 */
	EXPECT_EQ(1, amil_levy_minor(14999, 1));   /* 1.4999 */
	EXPECT_EQ(2, amil_levy_minor(15000, 1));   /* 1.5 */
}

TEST(Levy, RandomAgainst128BitReference)
{
	std::mt19937_64 rng(0x414D494CULL);   /* fixed seed: reproducible failures */
	std::uniform_int_distribution<int64_t> amount(0, AMIL_AMOUNT_MAX_MINOR);
	std::uniform_int_distribution<uint32_t> rate(0, AMIL_LEVY_RATE_BP_MAX);
	int mismatches = 0;

	for (int i = 0; i < 1000000; i++) {
		int64_t a = amount(rng);
		uint32_t r = rate(rng);

		/* Every 16th draw: a small amount, where rounding matters most. */
		if (i % 16 == 0)
			a %= 100000;
		if (amil_levy_minor(a, r) != levy_ref(a, r) && ++mismatches <= 10)
			ADD_FAILURE() << "amount " << a << " rate " << r << ": got "
				      << amil_levy_minor(a, r) << ", want " << levy_ref(a, r);
	}
	EXPECT_EQ(0, mismatches);
}

TEST(Levy, ExhaustiveSmallAmountsAllRates)
{
	/* Every remainder class at a few rates, plus every rate at a few amounts. */
	for (int64_t a = 0; a < 20000; a++)
		for (uint32_t r : {0u, 1u, 250u, 3333u, 9999u, 10000u})
			ASSERT_EQ(levy_ref(a, r), amil_levy_minor(a, r)) << a << " @ " << r;
	for (uint32_t r = 0; r <= AMIL_LEVY_RATE_BP_MAX; r++)
		for (int64_t a : {INT64_C(1), INT64_C(20), INT64_C(9999), INT64_C(10001),
				  AMIL_AMOUNT_MAX_MINOR - 1, AMIL_AMOUNT_MAX_MINOR})
			ASSERT_EQ(levy_ref(a, r), amil_levy_minor(a, r)) << a << " @ " << r;
}
