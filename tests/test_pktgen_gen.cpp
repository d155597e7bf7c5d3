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

// ---- TX fast path: payload writer, burst form, plan shortcut, checksum ----

#include <random>
#include <vector>

#include "amil_frame.h"
#include "csum.h"

// The generator writes payloads field by field instead of going through
// struct amil_donation and amil_wire_donation_encode(): bytes 0..55 must be
// exactly the encoder's for every kind, and the key the right one.
TEST_F(Gen, PayloadWriterMatchesLibEncoderForEveryKind)
{
	make();
	for (uint8_t kind = 0; kind < AMIL_GEN_KINDS; kind++) {
		for (uint64_t id = 1; id <= 2000; id++) {
			uint8_t fast[AMIL_WIRE_LEN], ref[AMIL_WIRE_LEN];
			const uint8_t *key = nullptr;
			amil_donation d;
			uint64_t sent = id * 0x1234567ull + kind;
			uint32_t seq = (uint32_t)(id * 7 + kind);

			memset(fast, 0xEE, sizeof(fast));
			unsigned len = amil_gen_payload_unsigned(gen_, id, kind, sent, seq, fast, &key);
			EXPECT_EQ(kind == AMIL_GEN_TRUNCATED ? 63u : 64u, len);
			amil_gen_donation(gen_, id, kind, &d);
			d.sent_ns = sent;
			d.seq = seq;
			amil_wire_donation_encode(ref, &d);
			ASSERT_EQ(0, memcmp(fast, ref, AMIL_WIRE_TAG_OFF))
				<< "kind " << int(kind) << " id " << id;
			for (int i = AMIL_WIRE_TAG_OFF; i < AMIL_WIRE_LEN; i++)
				ASSERT_EQ(0xEE, fast[i]) << "tag bytes must be left alone";
			if (kind == AMIL_GEN_UNKNOWN_CENTER)
				EXPECT_EQ(nullptr, amil_centers_key(centers_, d.center_id));
			else
				EXPECT_EQ(0, memcmp(key, amil_centers_key(centers_, d.center_id),
						    AMIL_KEY_LEN));
		}
	}
}

// Same with the Zipf campaign table (the other campaign_of() branch).
TEST_F(Gen, PayloadWriterMatchesLibEncoderWithZipf)
{
	make(1.1, 1000);
	for (uint64_t id = 1; id <= 5000; id++) {
		uint8_t fast[AMIL_WIRE_LEN], ref[AMIL_WIRE_LEN];
		const uint8_t *key;
		amil_donation d;

		amil_gen_payload_unsigned(gen_, id, AMIL_GEN_VALID, 5, 6, fast, &key);
		amil_gen_donation(gen_, id, AMIL_GEN_VALID, &d);
		d.sent_ns = 5;
		d.seq = 6;
		amil_wire_donation_encode(ref, &d);
		ASSERT_EQ(0, memcmp(fast, ref, AMIL_WIRE_TAG_OFF)) << "id " << id;
		ASSERT_GE(d.campaign_id, 1u);
		ASSERT_LE(d.campaign_id, 1000u);
	}
}

// Two hashes per donation instead of one per field: the fields must still
// cover their ranges and look independent enough for traffic shaping.
TEST_F(Gen, FieldsFromTwoHashesCoverTheirRanges)
{
	make(0.0, 16);
	const int N = 60000;
	std::map<uint32_t, int> per_center, per_campaign;
	std::set<int64_t> amounts;
	std::map<std::pair<uint32_t, uint32_t>, int> joint;
	int anonymous = 0;

	for (uint64_t id = 1; id <= (uint64_t)N; id++) {
		amil_donation d;

		amil_gen_donation(gen_, id, AMIL_GEN_VALID, &d);
		per_center[d.center_id]++;
		per_campaign[d.campaign_id]++;
		joint[{d.center_id, d.campaign_id}]++;
		amounts.insert(d.amount_minor);
		if (d.donor_id == 0)
			anonymous++;
		else
			ASSERT_LE(d.donor_id, 1000000u);
	}
	ASSERT_EQ(3u, per_center.size());
	for (auto &kv : per_center)
		EXPECT_NEAR(N / 3, kv.second, N / 30) << "center " << kv.first;
	ASSERT_EQ(16u, per_campaign.size());
	for (auto &kv : per_campaign)
		EXPECT_NEAR(N / 16, kv.second, N / 80) << "campaign " << kv.first;
	/* Center and campaign come from two halves of one hash: every pair
	 * must show up about equally often. */
	ASSERT_EQ(48u, joint.size());
	for (auto &kv : joint)
		EXPECT_NEAR(N / 48, kv.second, N / 160);
	EXPECT_NEAR(N / 4, anonymous, N / 40);
	EXPECT_EQ(101u, amounts.size());  /* 100..200, every value reached */
	EXPECT_EQ(100, *amounts.begin());
	EXPECT_EQ(200, *amounts.rbegin());
}

// The burst form gives the one-by-one bytes, seq numbered from seq0, and
// once signed every valid payload verifies under its center's key.
TEST_F(Gen, PayloadBurstEqualsOneByOneAndVerifies)
{
	make();
	const unsigned n = 37;  /* not a multiple of four: the scalar tail too */
	uint64_t ids[n];
	uint8_t kinds[n], bufs[n][AMIL_WIRE_LEN], one[AMIL_WIRE_LEN];
	void *out[n];
	const uint8_t *keys[n];

	for (unsigned i = 0; i < n; i++) {
		ids[i] = 1000 + 3 * i;
		kinds[i] = (uint8_t)(i % 7 == 3 ? AMIL_GEN_BAD_AMOUNT : AMIL_GEN_VALID);
		out[i] = bufs[i];
	}
	amil_gen_payload_burst(gen_, ids, kinds, n, 424242, 90, out, keys);
	amil_wire_sign_burst(out, keys, n);
	for (unsigned i = 0; i < n; i++) {
		amil_donation d;

		amil_gen_payload(gen_, ids[i], kinds[i], 424242, 90 + i, one);
		EXPECT_EQ(0, memcmp(one, bufs[i], AMIL_WIRE_LEN)) << "frame " << i;
		ASSERT_EQ(0, amil_wire_verify(bufs[i], amil_centers_key(centers_,
									 amil_wire_center_id(bufs[i]))));
		amil_wire_donation_decode(bufs[i], &d);
		EXPECT_EQ(ids[i], d.donation_id);
		EXPECT_EQ(90u + i, d.seq);
		EXPECT_EQ(424242u, d.sent_ns);
	}
}

TEST_F(Gen, PlanAllNewOnlyWhenNothingElseIsLeft)
{
	amil_gen_plan p;
	uint64_t k, k_next = 0;
	uint8_t kind;

	ASSERT_EQ(0, amil_gen_plan_init(&p, 0, 0.0, 0.0, 1));
	EXPECT_TRUE(amil_gen_plan_all_new(&p));
	ASSERT_EQ(0, amil_gen_plan_init(&p, 0, 0.01, 0.0, 1));
	EXPECT_FALSE(amil_gen_plan_all_new(&p));
	ASSERT_EQ(0, amil_gen_plan_init(&p, 0, 0.0, 0.01, 1));
	EXPECT_FALSE(amil_gen_plan_all_new(&p));
	ASSERT_EQ(0, amil_gen_plan_init(&p, 1000, 0.0, 0.0, 1));
	EXPECT_TRUE(amil_gen_plan_all_new(&p));

	/* With a count: false while a duplicate or invalid frame is still
	 * planned, true once they are all out, and never a wrong answer. */
	ASSERT_EQ(0, amil_gen_plan_init(&p, 100, 0.1, 0.1, 2));
	uint64_t dups = 0, invalid = 0;
	for (int i = 0; i < 100; i++) {
		if (amil_gen_plan_all_new(&p)) {
			EXPECT_EQ(10u, dups);
			EXPECT_EQ(10u, invalid);
		}
		switch (amil_gen_plan_next(&p, &k, &kind)) {
		case AMIL_GEN_PICK_NEW:
			amil_gen_plan_note_valid(&p, k_next++);
			break;
		case AMIL_GEN_PICK_DUP:
			dups++;
			break;
		case AMIL_GEN_PICK_INVALID:
			invalid++;
			k_next++;
			break;
		}
	}
	EXPECT_TRUE(amil_gen_plan_all_new(&p));
}

namespace {

// Reference Internet checksum: 16-bit big-endian words, byte at a time.
uint16_t ref_sum16(const uint8_t *p, size_t n, uint32_t s = 0)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

amil_frame_addr random_addr(std::mt19937_64 &rng, bool v6)
{
	amil_frame_addr a{};

	for (auto &b : a.src_mac)
		b = (uint8_t)rng();
	for (auto &b : a.dst_mac)
		b = (uint8_t)rng();
	a.ipv6 = v6;
	a.src_ip4 = (uint32_t)rng();
	a.dst_ip4 = (uint32_t)rng();
	for (auto &b : a.src_ip6)
		b = (uint8_t)rng();
	for (auto &b : a.dst_ip6)
		b = (uint8_t)rng();
	a.src_port = (uint16_t)rng();
	a.dst_port = (uint16_t)rng();
	return a;
}

// The generator's framing, as traffic.c does it: the template over a zero
// payload, its partial sum, then per frame the payload and the checksum
// from pktgen_csum_udp64().
struct Tmpl {
	uint8_t hdr[AMIL_FRAME_MAX];
	unsigned hdr_len;
	uint16_t base;

	explicit Tmpl(const amil_frame_addr &a)
	{
		uint8_t zero[AMIL_WIRE_LEN] = {0};
		int len = amil_frame_build_udp(hdr, sizeof(hdr), &a, zero, sizeof(zero));

		EXPECT_GT(len, 0);
		hdr_len = (unsigned)len - AMIL_WIRE_LEN;
		base = pktgen_csum_base(hdr + hdr_len - 2);
	}
	unsigned frame(const uint8_t *pl, uint8_t *out) const
	{
		uint16_t c;

		memcpy(out, hdr, hdr_len);
		memcpy(out + hdr_len, pl, AMIL_WIRE_LEN);
		c = pktgen_csum_udp64(base, out + hdr_len);
		memcpy(out + hdr_len - 2, &c, 2);
		return hdr_len + AMIL_WIRE_LEN;
	}
};

} // namespace

TEST(PktgenCsum, AddAndFoldMatchTheByteWiseSum)
{
	std::mt19937_64 rng(7);

	for (int t = 0; t < 20000; t++) {
		uint8_t buf[64];
		uint64_t s = 0;

		for (auto &b : buf)
			b = (uint8_t)rng();
		if (t % 5 == 0)
			memset(buf, 0xff, sizeof(buf));  /* carries everywhere */
		for (int i = 0; i < 8; i++) {
			uint64_t w;

			memcpy(&w, buf + 8 * i, 8);
			s = pktgen_csum_add64(s, w);
		}
		uint16_t mem = pktgen_csum_fold64(s);
		/* Summed in memory order: the byte-swapped big-endian sum. */
		uint16_t ref = ref_sum16(buf, sizeof(buf));
		uint16_t got = (uint16_t)((mem >> 8) | (mem << 8));
		/* 0 and 0xffff are the same one's-complement number. */
		if (ref == 0xffff && got == 0)
			got = 0xffff;
		ASSERT_EQ(ref, got) << "trial " << t;
	}
}

// Incremental checksum (template partial sum + payload) equals a full
// recomputation by lib/'s frame builder, over random flows and payloads,
// IPv4 and IPv6, and every frame passes the parser's checksum check.
TEST(PktgenCsum, TemplatePlusPayloadEqualsFullRecomputation)
{
	std::mt19937_64 rng(11);

	for (int t = 0; t < 4000; t++) {
		amil_frame_addr a = random_addr(rng, t & 1);
		Tmpl tm(a);
		uint8_t pl[AMIL_WIRE_LEN], fast[AMIL_FRAME_MAX], full[AMIL_FRAME_MAX];

		for (auto &b : pl)
			b = (uint8_t)rng();
		if (t % 97 == 0)
			memset(pl, 0xff, sizeof(pl));
		if (t % 89 == 0)
			memset(pl, 0, sizeof(pl));
		unsigned len = tm.frame(pl, fast);
		ASSERT_EQ((int)len, amil_frame_build_udp(full, sizeof(full), &a, pl, sizeof(pl)));
		ASSERT_EQ(0, memcmp(fast, full, len)) << "trial " << t;

		amil_frame_addr seen;
		const uint8_t *p;
		size_t plen;
		ASSERT_EQ(0, amil_frame_parse_udp(fast, len, true, &seen, &p, &plen));
		ASSERT_EQ(64u, plen);
	}
}

// A payload whose checksum computes to 0 is sent as 0xffff (0 means "no
// checksum" over IPv4 and is invalid over IPv6).
TEST(PktgenCsum, ComputedZeroIsSentAsFfff)
{
	std::mt19937_64 rng(13);

	for (int v6 = 0; v6 < 2; v6++) {
		amil_frame_addr a = random_addr(rng, v6);
		Tmpl tm(a);
		uint8_t pl[AMIL_WIRE_LEN] = {0}, fast[AMIL_FRAME_MAX];

		for (int i = 0; i < 62; i++)
			pl[i] = (uint8_t)rng();
		/* Choose the last word so that everything sums to 0xffff. */
		uint32_t rest = ref_sum16(pl, sizeof(pl), (uint16_t)((tm.base >> 8) | (tm.base << 8)));
		uint16_t w = (uint16_t)(0xffff - rest);
		pl[62] = (uint8_t)(w >> 8);
		pl[63] = (uint8_t)w;
		unsigned len = tm.frame(pl, fast);
		EXPECT_EQ(0xff, fast[tm.hdr_len - 2]);
		EXPECT_EQ(0xff, fast[tm.hdr_len - 1]);
		amil_frame_addr seen;
		const uint8_t *p;
		size_t plen;
		EXPECT_EQ(0, amil_frame_parse_udp(fast, len, true, &seen, &p, &plen));
	}
}

// End to end without an EAL: the TX path's steps (payload burst, sign
// burst, spoil, checksum into the template) give frames that parse with
// good checksums and whose payloads verify (or, BAD_TAG, do not).
TEST_F(Gen, GeneratedFramesParseAndVerify)
{
	make();
	std::mt19937_64 rng(17);
	for (int v6 = 0; v6 < 2; v6++) {
		amil_frame_addr a = random_addr(rng, v6);
		Tmpl tm(a);
		const unsigned n = 32;
		uint64_t ids[n];
		uint8_t kinds[n], frames[n][256];
		void *pl[n];
		const uint8_t *keys[n];

		for (unsigned i = 0; i < n; i++) {
			ids[i] = 500 + i;
			kinds[i] = (uint8_t)(i % 4 == 1 ? AMIL_GEN_BAD_TAG : AMIL_GEN_VALID);
			memcpy(frames[i], tm.hdr, tm.hdr_len);
			pl[i] = frames[i] + tm.hdr_len;
		}
		amil_gen_payload_burst(gen_, ids, kinds, n, 99, 0, pl, keys);
		amil_wire_sign_burst(pl, keys, n);
		for (unsigned i = 0; i < n; i++) {
			amil_gen_payload_finish(kinds[i], (uint8_t *)pl[i]);
			uint16_t c = pktgen_csum_udp64(tm.base, (const uint8_t *)pl[i]);
			memcpy(frames[i] + tm.hdr_len - 2, &c, 2);

			amil_frame_addr seen;
			const uint8_t *p;
			size_t plen;
			ASSERT_EQ(0, amil_frame_parse_udp(frames[i], tm.hdr_len + 64, true, &seen,
							  &p, &plen));
			const uint8_t *key = amil_centers_key(centers_, amil_wire_center_id(p));
			ASSERT_NE(nullptr, key);
			if (kinds[i] == AMIL_GEN_BAD_TAG)
				EXPECT_NE(0, amil_wire_verify(p, key)) << "frame " << i;
			else
				EXPECT_EQ(0, amil_wire_verify(p, key)) << "frame " << i;
		}
	}
}

// The one-add fold (rotate trick) against the plain repeated fold, on the
// values where carries bite and on random ones: the same 16 bits exactly.
TEST(PktgenCsum, FoldEqualsRepeatedFold)
{
	auto slow = [](uint64_t s) {
		while (s >> 16)
			s = (s & 0xffff) + (s >> 16);
		return (uint16_t)s;
	};
	std::vector<uint64_t> v = {0, 1, 0xffff, 0x10000, 0x1fffe, 0xffffffffull, 0x100000000ull,
				   0x1ffffffffull, 0xffff0000ffffull, 0xfffffffffffffffeull,
				   0xffffffffffffffffull, 0x8000000080000000ull, 0x0000ffffffff0000ull};
	std::mt19937_64 rng(19);

	for (int i = 0; i < 200000; i++)
		v.push_back(rng() >> (rng() % 64));
	for (uint64_t s : v)
		ASSERT_EQ(slow(s), pktgen_csum_fold64(s)) << std::hex << s;
}
