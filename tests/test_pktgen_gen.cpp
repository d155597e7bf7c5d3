/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for tools/pktgen/gen.h: donation content, the five invalid
 * kinds as the node sees them, and the exact traffic mix. */
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <set>

#include "amil_wire.h"
#include "gen.h"

namespace {

const char kCenters[] = "1001 000102030405060708090a0b0c0d0e0f\n"
			"1002 5d8e1f3a94c27b60e1a4f09c3b7d2e58\n"
			"1003 C7A2964E0B5F18D3A96E47B21F0C85D4\n";

class Gen : public ::testing::Test {
protected:
	void SetUp() override
	{
		char err[256];

		centers_ = amil_centers_parse(kCenters, sizeof(kCenters) - 1, "t", err, sizeof(err));
		ASSERT_NE(nullptr, centers_);
	}
	void TearDown() override
	{
		amil_gen_free(gen_);
		amil_centers_free(centers_);
	}
	void make(double zipf = 0.0, uint32_t campaigns = 16)
	{
		amil_gen_conf gc{};
		gc.centers = centers_;
		gc.seed = 3;
		gc.amount_min = 100;
		gc.amount_max = 200;
		gc.campaigns = campaigns;
		gc.zipf_s = zipf;
		memcpy(gc.currency, "EUR", 3);
		gc.exponent = 2;
		gen_ = amil_gen_create(&gc);
		ASSERT_NE(nullptr, gen_);
	}
	amil_centers *centers_ = nullptr;
	amil_gen *gen_ = nullptr;
};

} // namespace

TEST_F(Gen, ValidDonationsVerifyAndValidate)
{
	make();
	std::set<uint32_t> centers;

	for (uint64_t id = 1; id <= 3000; id++) {
		uint8_t p[AMIL_WIRE_LEN];
		amil_donation d, again;

		ASSERT_EQ(64u, amil_gen_payload(gen_, id, AMIL_GEN_VALID, id * 10, 7, p));
		ASSERT_EQ(0, amil_wire_check(p, 64, AMIL_MSG_DONATION));
		const uint8_t *key = amil_centers_key(centers_, amil_wire_center_id(p));
		ASSERT_NE(nullptr, key);
		ASSERT_EQ(0, amil_wire_verify(p, key));
		amil_wire_donation_decode(p, &d);
		EXPECT_EQ(AMIL_REASON_NONE, amil_wire_donation_validate(&d, nullptr));
		EXPECT_EQ(id, d.donation_id);
		EXPECT_EQ(id * 10, d.sent_ns);
		EXPECT_GE(d.amount_minor, 100);
		EXPECT_LE(d.amount_minor, 200);
		EXPECT_GE(d.campaign_id, 1u);
		EXPECT_LE(d.campaign_id, 16u);
		EXPECT_EQ(amil_gen_center(gen_, id), d.center_id);
		/* Content is a function of the id: a retransmission is identical. */
		amil_gen_donation(gen_, id, AMIL_GEN_VALID, &again);
		EXPECT_EQ(d.amount_minor, again.amount_minor);
		EXPECT_EQ(d.donor_id, again.donor_id);
		EXPECT_EQ(d.campaign_id, again.campaign_id);
		centers.insert(d.center_id);
	}
	EXPECT_EQ(3u, centers.size());  /* every center is simulated */
}

TEST_F(Gen, InvalidKindsFailWhereTheNodeLooks)
{
	make();
	uint8_t p[AMIL_WIRE_LEN], st, rs;
	amil_donation d;
	const uint64_t id = 77;

	amil_gen_payload(gen_, id, AMIL_GEN_BAD_TAG, 0, 0, p);
	EXPECT_NE(0, amil_wire_verify(p, amil_centers_key(centers_, amil_wire_center_id(p))));
	EXPECT_FALSE(amil_gen_expect(AMIL_GEN_BAD_TAG, &st, &rs));

	amil_gen_payload(gen_, id, AMIL_GEN_UNKNOWN_CENTER, 0, 0, p);
	EXPECT_EQ(nullptr, amil_centers_key(centers_, amil_wire_center_id(p)));
	EXPECT_FALSE(amil_gen_expect(AMIL_GEN_UNKNOWN_CENTER, &st, &rs));

	EXPECT_EQ(63u, amil_gen_payload(gen_, id, AMIL_GEN_TRUNCATED, 0, 0, p));
	EXPECT_EQ(-EMSGSIZE, amil_wire_check(p, 63, AMIL_MSG_DONATION));
	EXPECT_FALSE(amil_gen_expect(AMIL_GEN_TRUNCATED, &st, &rs));

	for (uint64_t i : {id, id + 1}) {  /* zero and negative amounts */
		amil_gen_payload(gen_, i, AMIL_GEN_BAD_AMOUNT, 0, 0, p);
		ASSERT_EQ(0, amil_wire_verify(p, amil_centers_key(centers_, amil_wire_center_id(p))));
		amil_wire_donation_decode(p, &d);
		EXPECT_LE(d.amount_minor, 0);
		EXPECT_EQ(AMIL_REASON_BAD_AMOUNT, amil_wire_donation_validate(&d, nullptr));
	}
	ASSERT_TRUE(amil_gen_expect(AMIL_GEN_BAD_AMOUNT, &st, &rs));
	EXPECT_EQ(AMIL_ACK_REJECTED, st);
	EXPECT_EQ(AMIL_REASON_BAD_AMOUNT, rs);

	amil_gen_payload(gen_, id, AMIL_GEN_BAD_CURRENCY, 0, 0, p);
	ASSERT_EQ(0, amil_wire_verify(p, amil_centers_key(centers_, amil_wire_center_id(p))));
	amil_wire_donation_decode(p, &d);
	EXPECT_EQ(AMIL_REASON_BAD_CURRENCY, amil_wire_donation_validate(&d, nullptr));
	ASSERT_TRUE(amil_gen_expect(AMIL_GEN_BAD_CURRENCY, &st, &rs));
	EXPECT_EQ(AMIL_REASON_BAD_CURRENCY, rs);
}

TEST_F(Gen, ExactMixWithCount)
{
	amil_gen_plan p;
	std::map<int, uint64_t> kinds;
	uint64_t news = 0, dups = 0, k_next = 0;

	ASSERT_EQ(0, amil_gen_plan_init(&p, 100000, 0.05, 0.02, 1));
	for (int i = 0; i < 100000; i++) {
		uint64_t k;
		uint8_t kind;

		switch (amil_gen_plan_next(&p, &k, &kind)) {
		case AMIL_GEN_PICK_NEW:
			news++;
			amil_gen_plan_note_valid(&p, k_next++);
			break;
		case AMIL_GEN_PICK_DUP:
			dups++;
			ASSERT_LT(k, k_next);  /* only re-sends what was sent */
			break;
		case AMIL_GEN_PICK_INVALID:
			kinds[kind]++;
			k_next++;
			break;
		}
	}
	EXPECT_EQ(5000u, dups);
	EXPECT_EQ(93000u, news);
	ASSERT_EQ(5u, kinds.size());
	for (auto &kv : kinds)
		EXPECT_EQ(400u, kv.second) << "kind " << kv.first;
}

TEST_F(Gen, NoDuplicateBeforeTheFirstValid)
{
	amil_gen_plan p;
	uint64_t k;
	uint8_t kind;

	ASSERT_EQ(0, amil_gen_plan_init(&p, 10, 0.9, 0.0, 5));
	EXPECT_EQ(AMIL_GEN_PICK_NEW, amil_gen_plan_next(&p, &k, &kind));
	EXPECT_EQ(-EINVAL, amil_gen_plan_init(&p, 10, 0.7, 0.4, 5));
}

TEST_F(Gen, ZipfFavoursTheFirstCampaigns)
{
	make(1.2, 100);
	std::map<uint32_t, int> n;

	for (uint64_t id = 1; id <= 100000; id++) {
		amil_donation d;
		amil_gen_donation(gen_, id, AMIL_GEN_VALID, &d);
		ASSERT_GE(d.campaign_id, 1u);
		ASSERT_LE(d.campaign_id, 100u);
		n[d.campaign_id]++;
	}
	/* Zipf(1.2) over 100: rank 1 has ~ 26 % of the mass, rank 2 ~ 11 %. */
	EXPECT_GT(n[1], 22000);
	EXPECT_LT(n[1], 30000);
	EXPECT_GT(n[1], 2 * n[2]);
	EXPECT_GT(n[2], n[10]);
}

TEST_F(Gen, CreateRejectsBadConfig)
{
	amil_gen_conf gc{};
	gc.centers = centers_;
	gc.amount_min = 5;
	gc.amount_max = 4;
	gc.campaigns = 1;
	EXPECT_EQ(nullptr, amil_gen_create(&gc));
	gc.amount_max = 5;
	gc.campaigns = 0;
	EXPECT_EQ(nullptr, amil_gen_create(&gc));
}

// The generator's TX path encodes without the tag, signs a burst at once
// and then spoils bad tags: for every kind the bytes must be exactly those
// of the one-by-one amil_gen_payload().
TEST_F(Gen, BurstSigningGivesTheSameBytesAsOneByOne)
{
	make();
	for (uint8_t kind = 0; kind < AMIL_GEN_KINDS; kind++) {
		uint8_t one[8][AMIL_WIRE_LEN], burst[8][AMIL_WIRE_LEN];
		void *bufs[8];
		const uint8_t *keys[8];
		unsigned len[8];

		for (unsigned i = 0; i < 8; i++) {
			uint64_t id = 100 + kind * 8 + i;

			len[i] = amil_gen_payload(gen_, id, kind, id, (uint32_t)i, one[i]);
			EXPECT_EQ(len[i], amil_gen_payload_unsigned(gen_, id, kind, id, (uint32_t)i,
								    burst[i], &keys[i]));
			bufs[i] = burst[i];
		}
		amil_wire_sign_burst(bufs, keys, 8);
		for (unsigned i = 0; i < 8; i++) {
			amil_gen_payload_finish(kind, burst[i]);
			EXPECT_EQ(0, memcmp(one[i], burst[i], AMIL_WIRE_LEN)) << "kind " << int(kind);
		}
	}
}
