/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for tools/pktgen/track.h: outstanding donations, retransmission
 * deadlines, loss, the sliding window. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "track.h"

namespace {

struct TrackDeleter {
	void operator()(amil_track *t) const { amil_track_free(t); }
};
using Track = std::unique_ptr<amil_track, TrackDeleter>;

constexpr uint64_t TO = 1000;   /* timeout, in TSC cycles */

std::vector<uint64_t>
due(amil_track *t, uint64_t now, unsigned max = 64)
{
	std::vector<uint64_t> v(max);
	v.resize(amil_track_due(t, now, v.data(), max));
	return v;
}

} // namespace

TEST(PktgenTrack, CreateRoundsToPowerOfTwoAndRejectsBadSizes)
{
	Track t(amil_track_create(100, TO, 3));
	ASSERT_NE(nullptr, t.get());
	EXPECT_EQ(128u, amil_track_capacity(t.get()));
	errno = 0;
	EXPECT_EQ(nullptr, amil_track_create(0, TO, 3));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(nullptr, amil_track_create(AMIL_TRACK_CAPACITY_MAX + 1, TO, 3));
	amil_track_free(nullptr);  /* no-op */
}

TEST(PktgenTrack, AnsweredBeforeDeadlineIsNeverRetransmitted)
{
	Track t(amil_track_create(16, TO, 3));

	ASSERT_EQ(0, amil_track_add(t.get(), 0, 7, true, 0));
	EXPECT_TRUE(due(t.get(), TO - 1).empty());       /* not yet due */
	EXPECT_EQ(0, amil_track_ack(t.get(), 0));         /* first ACK */
	EXPECT_TRUE(due(t.get(), TO).empty());            /* finished, not resent */
	EXPECT_TRUE(amil_track_idle(t.get()));
	EXPECT_EQ(0u, amil_track_lost(t.get()));
	EXPECT_EQ(0u, amil_track_retransmits(t.get()));
	EXPECT_EQ(1u, amil_track_expected_acks(t.get()));
}

TEST(PktgenTrack, UnansweredIsRetransmittedRetriesTimesThenLost)
{
	Track t(amil_track_create(16, TO, 2));
	amil_track_info info;

	ASSERT_EQ(0, amil_track_add(t.get(), 5, 1, true, 100));
	EXPECT_TRUE(due(t.get(), 100 + TO - 1).empty());
	EXPECT_EQ(std::vector<uint64_t>{5}, due(t.get(), 100 + TO));     /* retry 1 */
	EXPECT_TRUE(due(t.get(), 100 + 2 * TO - 1).empty());  /* deadline restarted */
	EXPECT_EQ(std::vector<uint64_t>{5}, due(t.get(), 100 + 2 * TO)); /* retry 2 */
	ASSERT_EQ(0, amil_track_lookup(t.get(), 5, &info));
	EXPECT_EQ(3u, info.sends);
	EXPECT_EQ(1u, info.kind);
	EXPECT_FALSE(amil_track_idle(t.get()));
	EXPECT_TRUE(due(t.get(), 100 + 3 * TO).empty());      /* retries spent: lost */
	EXPECT_EQ(1u, amil_track_lost(t.get()));
	EXPECT_EQ(2u, amil_track_retransmits(t.get()));
	EXPECT_EQ(3u, amil_track_expected_acks(t.get()));
	EXPECT_TRUE(amil_track_idle(t.get()));
}

TEST(PktgenTrack, AckAfterARetransmitEndsTheWait)
{
	Track t(amil_track_create(16, TO, 5));

	ASSERT_EQ(0, amil_track_add(t.get(), 1, 0, true, 0));
	EXPECT_EQ(1u, due(t.get(), TO).size());
	EXPECT_EQ(0, amil_track_ack(t.get(), 1));
	EXPECT_EQ(1, amil_track_ack(t.get(), 1));  /* the crossed first ACK: counted, late */
	EXPECT_TRUE(due(t.get(), 10 * TO).empty());
	EXPECT_EQ(0u, amil_track_lost(t.get()));
	EXPECT_TRUE(amil_track_idle(t.get()));
}

TEST(PktgenTrack, SilentKindsAreNeitherQueuedNorLost)
{
	Track t(amil_track_create(16, TO, 3));

	ASSERT_EQ(0, amil_track_add(t.get(), 3, 2, false, 0));
	EXPECT_TRUE(amil_track_idle(t.get()));
	EXPECT_TRUE(due(t.get(), 100 * TO).empty());
	EXPECT_EQ(0u, amil_track_lost(t.get()));
	EXPECT_EQ(0u, amil_track_expected_acks(t.get()));
	amil_track_info info;
	ASSERT_EQ(0, amil_track_lookup(t.get(), 3, &info));  /* still known, for RX */
	EXPECT_FALSE(info.expect_ack);
}

TEST(PktgenTrack, FifoOrderAndBoundedWork)
{
	Track t(amil_track_create(64, TO, 1));

	for (uint64_t k = 0; k < 10; k++)
		ASSERT_EQ(0, amil_track_add(t.get(), k, 0, true, k * 10));
	amil_track_ack(t.get(), 4);
	/* At 10 + TO + 45 entries 0..5 are due; 4 is answered; only 3 per call. */
	EXPECT_EQ((std::vector<uint64_t>{0, 1, 2}), due(t.get(), TO + 55, 3));
	EXPECT_EQ((std::vector<uint64_t>{3, 5}), due(t.get(), TO + 55, 3));
	EXPECT_TRUE(due(t.get(), TO + 55, 3).empty());
	/* Retransmitted ones go to the back with new deadlines. */
	EXPECT_EQ((std::vector<uint64_t>{6, 7, 8, 9}), due(t.get(), TO + 95, 64));
}

TEST(PktgenTrack, WindowFullUntilTheOldDonationIsFinished)
{
	Track t(amil_track_create(4, TO, 0));

	for (uint64_t k = 0; k < 4; k++)
		ASSERT_EQ(0, amil_track_add(t.get(), k, 0, true, 0));
	/* k=4 maps to slot 0, still outstanding. */
	EXPECT_FALSE(amil_track_can_add(t.get(), 4));
	EXPECT_EQ(-EBUSY, amil_track_add(t.get(), 4, 0, true, 0));
	EXPECT_EQ(-EEXIST, amil_track_add(t.get(), 1, 0, true, 0));
	amil_track_ack(t.get(), 0);
	EXPECT_FALSE(amil_track_can_add(t.get(), 4));  /* answered, but not yet expired */
	EXPECT_TRUE(due(t.get(), TO).empty());         /* 0 finished; 1..3 lost (0 retries) */
	EXPECT_EQ(3u, amil_track_lost(t.get()));
	EXPECT_TRUE(amil_track_can_add(t.get(), 4));
	ASSERT_EQ(0, amil_track_add(t.get(), 4, 0, true, TO));
	/* The slot now holds 4: the old key is gone. */
	amil_track_info info;
	EXPECT_EQ(-ENOENT, amil_track_lookup(t.get(), 0, &info));
	EXPECT_EQ(-ENOENT, amil_track_ack(t.get(), 0));
	ASSERT_EQ(0, amil_track_lookup(t.get(), 4, &info));
	EXPECT_EQ(0u, info.acks);
}

TEST(PktgenTrack, CopiesRaiseExpectedAcks)
{
	Track t(amil_track_create(8, TO, 3));
	amil_track_info info;

	ASSERT_EQ(0, amil_track_add(t.get(), 2, 0, true, 0));
	ASSERT_EQ(0, amil_track_add_copy(t.get(), 2));
	ASSERT_EQ(0, amil_track_add_copy(t.get(), 2));
	EXPECT_EQ(-ENOENT, amil_track_add_copy(t.get(), 3));
	ASSERT_EQ(0, amil_track_lookup(t.get(), 2, &info));
	EXPECT_EQ(3u, info.sends);
	EXPECT_EQ(2u, info.copies);
	EXPECT_EQ(3u, amil_track_expected_acks(t.get()));
	EXPECT_FALSE(amil_track_accept(t.get(), 2));
	EXPECT_TRUE(amil_track_accept(t.get(), 2));   /* a second ACCEPTED is noticed */
}

TEST(PktgenTrack, AbandonCountsTheUnansweredAsLost)
{
	Track t(amil_track_create(8, TO, 3));

	for (uint64_t k = 0; k < 5; k++)
		ASSERT_EQ(0, amil_track_add(t.get(), k, 0, true, 0));
	amil_track_ack(t.get(), 1);
	amil_track_ack(t.get(), 3);
	amil_track_abandon(t.get());
	EXPECT_EQ(3u, amil_track_lost(t.get()));
	EXPECT_TRUE(amil_track_idle(t.get()));
}
