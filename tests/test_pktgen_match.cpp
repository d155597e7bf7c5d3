/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for tools/pktgen/match.h: matching ACKs to donations by
 * (center_id, donation_id) and judging their tag, status, amount and levy. */
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "amil_levy.h"
#include "amil_wire.h"
#include "gen.h"
#include "match.h"
#include "track.h"

namespace {

const char kCenters[] = "1001 000102030405060708090a0b0c0d0e0f\n"
			"1002 5d8e1f3a94c27b60e1a4f09c3b7d2e58\n";
const char kStranger[] = "77 ffeeddccbbaa99887766554433221100\n";
constexpr uint32_t kRate = 250;
constexpr uint64_t kFirst = 1000;

class Match : public ::testing::Test {
protected:
	void SetUp() override
	{
		char err[256];

		centers_ = amil_centers_parse(kCenters, sizeof(kCenters) - 1, "t", err, sizeof(err));
		stranger_ = amil_centers_parse(kStranger, sizeof(kStranger) - 1, "s", err,
					       sizeof(err));
		ASSERT_NE(nullptr, centers_);
		ASSERT_NE(nullptr, stranger_);
		amil_gen_conf gc{};
		gc.centers = centers_;
		gc.seed = 9;
		gc.amount_min = 1;
		gc.amount_max = 100000000;
		gc.campaigns = 8;
		memcpy(gc.currency, "SAR", 3);
		gc.exponent = 2;
		gen_ = amil_gen_create(&gc);
		ASSERT_NE(nullptr, gen_);
		for (int t = 0; t < 2; t++) {
			track_[t] = amil_track_create(64, 1000, 3);
			ASSERT_NE(nullptr, track_[t]);
		}
		ctx_ = {centers_, gen_, track_, 2, kFirst, kRate};
	}
	void TearDown() override
	{
		for (auto *t : track_)
			amil_track_free(t);
		amil_gen_free(gen_);
		amil_centers_free(centers_);
		amil_centers_free(stranger_);
	}

	/* The ACK a correct node sends for donation (t, k) of @kind. */
	amil_ack correct(uint32_t t, uint64_t k, uint8_t kind, uint8_t status)
	{
		amil_donation d;
		amil_ack a{};
		uint64_t id = amil_match_id(&ctx_, t, k);

		amil_gen_donation(gen_, id, kind, &d);
		a.center_id = d.center_id;
		a.donation_id = id;
		a.node_id = 1;
		a.status = status;
		a.sent_ns = 4242;
		a.seq = 1;
		if (status != AMIL_ACK_REJECTED) {
			a.amount_minor = d.amount_minor;
			a.levy_minor = amil_levy_minor(d.amount_minor, kRate);
		} else {
			a.reason = kind == AMIL_GEN_BAD_AMOUNT ? AMIL_REASON_BAD_AMOUNT
							       : AMIL_REASON_BAD_CURRENCY;
		}
		return a;
	}

	amil_match_result judge(const amil_ack &a, const amil_centers *keys = nullptr,
				bool spoil_tag = false)
	{
		uint8_t buf[AMIL_WIRE_LEN];

		amil_wire_ack_encode(buf, &a);
		amil_wire_sign(buf, amil_centers_key(keys ? keys : centers_, a.center_id));
		if (spoil_tag)
			buf[60] ^= 0x80;
		return amil_match_ack(&ctx_, buf, sizeof(buf), &out_);
	}

	amil_centers *centers_ = nullptr, *stranger_ = nullptr;
	amil_gen *gen_ = nullptr;
	amil_track *track_[2] = {nullptr, nullptr};
	amil_match_ctx ctx_{};
	amil_match_out out_{};
};

} // namespace

TEST_F(Match, IdsMapToTheirLcoreAndSlot)
{
	EXPECT_EQ(kFirst, amil_match_id(&ctx_, 0, 0));
	EXPECT_EQ(kFirst + 1, amil_match_id(&ctx_, 1, 0));
	EXPECT_EQ(kFirst + 6, amil_match_id(&ctx_, 0, 3));
	/* An ACK for TX lcore 1's donation is found in lcore 1's table only. */
	ASSERT_EQ(0, amil_track_add(track_[1], 3, AMIL_GEN_VALID, true, 0));
	EXPECT_EQ(AMIL_MATCH_ACCEPTED, judge(correct(1, 3, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
	EXPECT_EQ(AMIL_MATCH_UNEXPECTED, judge(correct(0, 3, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
	EXPECT_EQ(4242u, out_.sent_ns);
}

TEST_F(Match, AcceptedThenDuplicateOfADeliberateCopy)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 0, AMIL_GEN_VALID, true, 0));
	ASSERT_EQ(0, amil_track_add_copy(track_[0], 0));
	EXPECT_EQ(AMIL_MATCH_ACCEPTED, judge(correct(0, 0, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
	EXPECT_FALSE(out_.late);
	EXPECT_EQ(AMIL_MATCH_DUPLICATE, judge(correct(0, 0, AMIL_GEN_VALID, AMIL_ACK_DUPLICATE)));
	EXPECT_FALSE(out_.late);
	/* A third answer (e.g. to a retransmission that crossed) is late, not
	 * unexpected. */
	EXPECT_EQ(AMIL_MATCH_DUPLICATE, judge(correct(0, 0, AMIL_GEN_VALID, AMIL_ACK_DUPLICATE)));
	EXPECT_TRUE(out_.late);
}

TEST_F(Match, SecondAcceptedIsMismatched)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 1, AMIL_GEN_VALID, true, 0));
	ASSERT_EQ(0, amil_track_add_copy(track_[0], 1));
	EXPECT_EQ(AMIL_MATCH_ACCEPTED, judge(correct(0, 1, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(correct(0, 1, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
}

TEST_F(Match, DuplicateForADonationSentOnceIsMismatched)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 2, AMIL_GEN_VALID, true, 0));
	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(correct(0, 2, AMIL_GEN_VALID, AMIL_ACK_DUPLICATE)));
	/* After a retransmission a DUPLICATE first is legitimate (the first
	 * ACK may have been lost). */
	uint64_t k[4];
	ASSERT_EQ(1u, amil_track_due(track_[0], 1000, k, 4));
	EXPECT_EQ(AMIL_MATCH_DUPLICATE, judge(correct(0, 2, AMIL_GEN_VALID, AMIL_ACK_DUPLICATE)));
}

TEST_F(Match, WrongAmountOrLevyIsMismatched)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 4, AMIL_GEN_VALID, true, 0));
	amil_ack a = correct(0, 4, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED);
	amil_ack b = a;

	a.levy_minor += 1;
	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(a));
	EXPECT_NE(nullptr, out_.why);
	b.amount_minor -= 1;
	b.levy_minor = amil_levy_minor(b.amount_minor, kRate);  /* self-consistent, still wrong */
	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(b));
	/* A mismatched answer does not end the wait. */
	amil_track_info info;
	ASSERT_EQ(0, amil_track_lookup(track_[0], 4, &info));
	EXPECT_EQ(0u, info.acks);
	EXPECT_EQ(AMIL_MATCH_ACCEPTED, judge(correct(0, 4, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
}

TEST_F(Match, TagIsCheckedWithTheCentersKey)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 5, AMIL_GEN_VALID, true, 0));
	amil_ack a = correct(0, 5, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED);

	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(a, nullptr, true));
	/* Signed by a stranger under an id we simulate: a forgery. */
	amil_ack f = a;
	f.center_id = 77;
	EXPECT_EQ(AMIL_MATCH_UNEXPECTED, judge(f, stranger_));
	EXPECT_EQ(AMIL_MATCH_ACCEPTED, judge(a));
}

TEST_F(Match, AckFromTheWrongCenterOrForNothingSentIsUnexpected)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 6, AMIL_GEN_VALID, true, 0));
	amil_ack a = correct(0, 6, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED);

	a.center_id = a.center_id == 1001 ? 1002 : 1001;  /* the other center's key signs */
	EXPECT_EQ(AMIL_MATCH_UNEXPECTED, judge(a));
	EXPECT_EQ(AMIL_MATCH_UNEXPECTED, judge(correct(0, 7, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
	amil_ack low = correct(0, 6, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED);
	low.donation_id = kFirst - 1;
	EXPECT_EQ(AMIL_MATCH_UNEXPECTED, judge(low));
}

TEST_F(Match, InvalidKindsExpectTheirRejectionOrSilence)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 8, AMIL_GEN_BAD_AMOUNT, true, 0));
	ASSERT_EQ(0, amil_track_add(track_[0], 9, AMIL_GEN_BAD_CURRENCY, true, 0));
	ASSERT_EQ(0, amil_track_add(track_[0], 10, AMIL_GEN_BAD_TAG, false, 0));

	EXPECT_EQ(AMIL_MATCH_REJECTED, judge(correct(0, 8, AMIL_GEN_BAD_AMOUNT, AMIL_ACK_REJECTED)));
	EXPECT_EQ(AMIL_REASON_BAD_AMOUNT, out_.reason);
	/* Wrong reason for the kind sent. */
	amil_ack w = correct(0, 9, AMIL_GEN_BAD_CURRENCY, AMIL_ACK_REJECTED);
	w.reason = AMIL_REASON_BAD_AMOUNT;
	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(w));
	EXPECT_EQ(AMIL_MATCH_REJECTED,
		  judge(correct(0, 9, AMIL_GEN_BAD_CURRENCY, AMIL_ACK_REJECTED)));
	EXPECT_EQ(AMIL_REASON_BAD_CURRENCY, out_.reason);
	/* A node must never answer a frame with a bad tag. */
	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(correct(0, 10, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED)));
	/* An invalid donation ACCEPTED is mismatched. */
	amil_ack acc = correct(0, 8, AMIL_GEN_VALID, AMIL_ACK_ACCEPTED);
	EXPECT_EQ(AMIL_MATCH_MISMATCHED, judge(acc));
}

TEST_F(Match, UnavailableIsARejectionThatDoesNotEndTheWait)
{
	ASSERT_EQ(0, amil_track_add(track_[0], 11, AMIL_GEN_VALID, true, 0));
	amil_ack u = correct(0, 11, AMIL_GEN_VALID, AMIL_ACK_REJECTED);

	u.reason = AMIL_REASON_UNAVAILABLE;
	EXPECT_EQ(AMIL_MATCH_REJECTED, judge(u));
	EXPECT_EQ(AMIL_REASON_UNAVAILABLE, out_.reason);
	uint64_t k[4];
	EXPECT_EQ(1u, amil_track_due(track_[0], 1000, k, 4));  /* so it is retransmitted */
	EXPECT_EQ(11u, k[0]);
}

TEST_F(Match, NotAnAckIsIgnored)
{
	uint8_t buf[AMIL_WIRE_LEN] = {0};
	amil_donation d{};

	EXPECT_EQ(AMIL_MATCH_NOT_ACK, amil_match_ack(&ctx_, buf, sizeof(buf), &out_));
	amil_wire_donation_encode(buf, &d);  /* a DONATION, not an ACK */
	EXPECT_EQ(AMIL_MATCH_NOT_ACK, amil_match_ack(&ctx_, buf, sizeof(buf), &out_));
	EXPECT_EQ(AMIL_MATCH_NOT_ACK, amil_match_ack(&ctx_, buf, 63, &out_));
}
