// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// The ledger's on-disk format (lib/amil_ledger_format): record and header
// codecs byte by byte, and amil_ledger_scan() over directories built here
// in mkdtemp directories: continuity, gaps, torn and corrupt tails with and
// without repair, damage in earlier segments never repaired, node ids, and
// the callbacks.  Every test runs twice: with the SSE4.2 CRC and with the
// table CRC (amil_crc32c_force_table), which must agree on every byte.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "amil_crc32c.h"
#include "amil_ledger_format.h"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

const uint32_t kNode = 3;

// ---- helpers ---------------------------------------------------------------

uint64_t ld(const uint8_t *p, int n)  // little-endian, n bytes
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void st(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

// Recompute a record's CRC after the test changed a byte, so that decode
// gets past the CRC to the content checks.
void reseal_rec(uint8_t *p)
{
	st(p + AMIL_LEDGER_REC_OFF_CRC, amil_crc32c(0, p, AMIL_LEDGER_REC_OFF_CRC), 4);
}

void reseal_hdr(uint8_t *p)
{
	st(p + AMIL_LEDGER_HDR_OFF_CRC, amil_crc32c(0, p, AMIL_LEDGER_HDR_OFF_CRC), 4);
}

amil_ledger_rec make_rec(uint64_t seq, uint32_t node = kNode)
{
	amil_ledger_rec r;

	memset(&r, 0, sizeof(r));
	r.center_id = 1001 + (uint32_t)(seq % 3);
	r.donation_id = 5000 + seq;
	r.donor_id = seq % 2 ? 0 : 77;
	r.campaign_id = 7;
	memcpy(r.currency, "SAR", 3);
	r.exponent = 2;
	r.amount_minor = 10000 + (int64_t)seq;
	r.levy_minor = r.amount_minor * 250 / 10000;
	r.seq = seq;
	r.accepted_ns = UINT64_C(1795600000000000000) + seq * 1000;
	r.node_id = node;
	r.worker = (uint16_t)(seq % 4);
	r.rate_bp = 250;
	return r;
}

Bytes enc_rec(const amil_ledger_rec &r)
{
	Bytes b(AMIL_LEDGER_REC_LEN);

	amil_ledger_rec_encode(b.data(), &r);
	return b;
}

Bytes enc_hdr(uint64_t first_seq, uint32_t node = kNode)
{
	amil_ledger_hdr h;
	Bytes b(AMIL_LEDGER_HDR_LEN);

	memset(&h, 0, sizeof(h));
	h.node_id = node;
	h.created_ns = UINT64_C(1795600000000000000) + first_seq;
	h.first_seq = first_seq;
	amil_ledger_hdr_encode(b.data(), &h);
	return b;
}

void expect_rec_eq(const amil_ledger_rec &a, const amil_ledger_rec &b)
{
	EXPECT_EQ(a.center_id, b.center_id);
	EXPECT_EQ(a.donation_id, b.donation_id);
	EXPECT_EQ(a.donor_id, b.donor_id);
	EXPECT_EQ(a.campaign_id, b.campaign_id);
	EXPECT_EQ(0, memcmp(a.currency, b.currency, AMIL_CURRENCY_LEN));
	EXPECT_EQ(a.exponent, b.exponent);
	EXPECT_EQ(a.amount_minor, b.amount_minor);
	EXPECT_EQ(a.levy_minor, b.levy_minor);
	EXPECT_EQ(a.seq, b.seq);
	EXPECT_EQ(a.accepted_ns, b.accepted_ns);
	EXPECT_EQ(a.node_id, b.node_id);
	EXPECT_EQ(a.worker, b.worker);
	EXPECT_EQ(a.rate_bp, b.rate_bp);
}

Bytes read_bytes(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string &path, const Bytes &b)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);
	f.write((const char *)b.data(), (std::streamsize)b.size());
	ASSERT_TRUE(f.good()) << path;
}

std::string seg_name(uint64_t first_seq)
{
	char buf[64];

	amil_ledger_seg_name(buf, sizeof(buf), first_seq);
	return buf;
}

// A segment's bytes: header for @first_seq and records with @seqs.
Bytes segment(uint64_t first_seq, const std::vector<uint64_t> &seqs, uint32_t node = kNode)
{
	Bytes b = enc_hdr(first_seq, node);

	for (uint64_t s : seqs) {
		Bytes r = enc_rec(make_rec(s, node));
		b.insert(b.end(), r.begin(), r.end());
	}
	return b;
}

std::vector<uint64_t> range(uint64_t first, uint64_t n)
{
	std::vector<uint64_t> v;

	for (uint64_t i = 0; i < n; i++)
		v.push_back(first + i);
	return v;
}

struct Seen {
	std::vector<uint64_t> seqs;
	std::vector<std::string> seg_paths;
	std::vector<uint64_t> seg_first, seg_sizes;
	uint64_t stop_at_seq = 0;     // on_record returns 7 there
	std::string stop_at_seg;      // on_segment returns 9 there
};

int on_record(void *arg, const amil_ledger_rec *r)
{
	auto *s = static_cast<Seen *>(arg);

	s->seqs.push_back(r->seq);
	return r->seq == s->stop_at_seq ? 7 : 0;
}

int on_segment(void *arg, const char *path, const amil_ledger_hdr *h, uint64_t size)
{
	auto *s = static_cast<Seen *>(arg);

	s->seg_paths.push_back(path);
	s->seg_first.push_back(h->first_seq);
	s->seg_sizes.push_back(size);
	return s->seg_paths.back() == s->stop_at_seg ? 9 : 0;
}

// Files in @dir whose name contains ".tail-".
std::vector<std::string> tails(const std::string &dir)
{
	std::vector<std::string> v;

	for (const auto &e : fs::directory_iterator(dir))
		if (e.path().filename().string().find(".tail-") != std::string::npos)
			v.push_back(e.path().string());
	return v;
}

// ---- fixture: a temp dir, and the CRC implementation as the parameter ------

class LedgerFormat : public ::testing::TestWithParam<bool> {
protected:
	void SetUp() override
	{
		amil_crc32c_force_table(GetParam() ? 1 : 0);
		char tmpl[] = "/tmp/amil-ledger-format-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir_ = tmpl;
	}
	void TearDown() override
	{
		amil_crc32c_force_table(0);
		std::error_code ec;
		fs::remove_all(dir_, ec);
	}

	std::string put(uint64_t first_seq, const Bytes &b)
	{
		std::string p = dir_ + "/" + seg_name(first_seq);
		write_bytes(p, b);
		return p;
	}

	int scan(Seen *seen, amil_ledger_scan_result *res, bool repair = false, uint32_t node = 0)
	{
		amil_ledger_scan_opts o;

		memset(&o, 0, sizeof(o));
		o.on_record = on_record;
		o.on_segment = on_segment;
		o.arg = seen;
		o.repair_tail = repair;
		o.node_id = node;
		return amil_ledger_scan(dir_.c_str(), &o, res);
	}

	std::string dir_;
};

// ---- records ---------------------------------------------------------------

TEST_P(LedgerFormat, RecordRoundTrip)
{
	amil_ledger_rec r = make_rec(42), back;

	ASSERT_EQ(amil_ledger_rec_decode(enc_rec(r).data(), &back), 0);
	expect_rec_eq(r, back);

	// The extremes of every field that decode accepts.
	r.center_id = UINT32_MAX;
	r.donation_id = UINT64_MAX;
	r.donor_id = UINT64_MAX;
	r.campaign_id = UINT32_MAX;
	memcpy(r.currency, "ZZZ", 3);
	r.exponent = AMIL_EXPONENT_MAX;
	r.amount_minor = AMIL_AMOUNT_MAX_MINOR;
	r.levy_minor = AMIL_AMOUNT_MAX_MINOR;
	r.seq = UINT64_MAX;
	r.accepted_ns = UINT64_MAX;
	r.node_id = UINT32_MAX;
	r.worker = UINT16_MAX;
	r.rate_bp = 10000;
	Bytes b = enc_rec(r);
	ASSERT_EQ(amil_ledger_rec_decode(b.data(), &back), 0);
	expect_rec_eq(r, back);

	r.center_id = 0;
	r.donor_id = 0;
	r.campaign_id = 0;
	memcpy(r.currency, "AAA", 3);
	r.exponent = 0;
	r.amount_minor = 1;
	r.levy_minor = 0;
	r.seq = 1;
	r.accepted_ns = 0;
	r.node_id = 0;
	r.worker = 0;
	r.rate_bp = 0;
	ASSERT_EQ(amil_ledger_rec_decode(enc_rec(r).data(), &back), 0);
	expect_rec_eq(r, back);
}

TEST_P(LedgerFormat, RecordFieldsAtDocumentedOffsets)
{
	amil_ledger_rec r;

	memset(&r, 0, sizeof(r));
	r.center_id = 0x11223344;
	r.donation_id = UINT64_C(0x0102030405060708);
	r.donor_id = UINT64_C(0x1112131415161718);
	r.campaign_id = 0x21222324;
	memcpy(r.currency, "EUR", 3);
	r.exponent = 3;
	r.amount_minor = INT64_C(0x0003112233445566);
	r.levy_minor = INT64_C(0x0000000033445566);
	r.seq = UINT64_C(0x4142434445464748);
	r.accepted_ns = UINT64_C(0x5152535455565758);
	r.node_id = 0x61626364;
	r.worker = 0x7172;
	r.rate_bp = 0x0102;
	Bytes b = enc_rec(r);
	const uint8_t *p = b.data();

	ASSERT_EQ(b.size(), 80u);
	EXPECT_EQ(p[0], 'R');  // 0x4452 little-endian
	EXPECT_EQ(p[1], 'D');
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_MAGIC, 2), 0x4452u);
	EXPECT_EQ(p[AMIL_LEDGER_REC_OFF_KIND], AMIL_LEDGER_REC_ACCEPTED);
	EXPECT_EQ(p[AMIL_LEDGER_REC_OFF_EXPONENT], 3);
	EXPECT_EQ(AMIL_LEDGER_REC_OFF_CENTER, 4);
	EXPECT_EQ(p[4], 0x44);  // least significant byte first
	EXPECT_EQ(p[7], 0x11);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_CENTER, 4), r.center_id);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_DONATION, 8), r.donation_id);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_DONOR, 8), r.donor_id);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_CAMPAIGN, 4), r.campaign_id);
	EXPECT_EQ(0, memcmp(p + AMIL_LEDGER_REC_OFF_CURRENCY, "EUR\0", 4));
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_AMOUNT, 8), (uint64_t)r.amount_minor);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_LEVY, 8), (uint64_t)r.levy_minor);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_SEQ, 8), r.seq);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_ACCEPTED, 8), r.accepted_ns);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_NODE, 4), r.node_id);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_WORKER, 2), r.worker);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_RATE, 2), r.rate_bp);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_RESERVED, 4), 0u);
	EXPECT_EQ(ld(p + AMIL_LEDGER_REC_OFF_CRC, 4), amil_crc32c(0, p, 76));
	// The documented offsets, spelled out (docs/ledger.md's table).
	const int offs[] = {AMIL_LEDGER_REC_OFF_MAGIC, AMIL_LEDGER_REC_OFF_KIND,
			    AMIL_LEDGER_REC_OFF_EXPONENT, AMIL_LEDGER_REC_OFF_CENTER,
			    AMIL_LEDGER_REC_OFF_DONATION, AMIL_LEDGER_REC_OFF_DONOR,
			    AMIL_LEDGER_REC_OFF_CAMPAIGN, AMIL_LEDGER_REC_OFF_CURRENCY,
			    AMIL_LEDGER_REC_OFF_AMOUNT, AMIL_LEDGER_REC_OFF_LEVY,
			    AMIL_LEDGER_REC_OFF_SEQ, AMIL_LEDGER_REC_OFF_ACCEPTED,
			    AMIL_LEDGER_REC_OFF_NODE, AMIL_LEDGER_REC_OFF_WORKER,
			    AMIL_LEDGER_REC_OFF_RATE, AMIL_LEDGER_REC_OFF_RESERVED,
			    AMIL_LEDGER_REC_OFF_CRC};
	const int want[] = {0, 2, 3, 4, 8, 16, 24, 28, 32, 40, 48, 56, 64, 68, 70, 72, 76};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		EXPECT_EQ(offs[i], want[i]) << "field " << i;
}

// The writer encodes in the worker with seq 0 and seals later.
TEST_P(LedgerFormat, SealSetsSeqTimeAndCrc)
{
	amil_ledger_rec r = make_rec(9), back;
	amil_ledger_rec unsealed = r;

	unsealed.seq = 0;
	unsealed.accepted_ns = 0;
	Bytes b = enc_rec(unsealed);
	EXPECT_EQ(amil_ledger_rec_decode(b.data(), &back), -EPROTO);  // seq 0
	amil_ledger_rec_seal(b.data(), r.seq, r.accepted_ns);
	EXPECT_EQ(b, enc_rec(r));
	ASSERT_EQ(amil_ledger_rec_decode(b.data(), &back), 0);
	expect_rec_eq(r, back);
}

TEST_P(LedgerFormat, RecordDecodeRejectsEveryBitFlip)
{
	const Bytes good = enc_rec(make_rec(123));
	amil_ledger_rec back;

	for (size_t bit = 0; bit < good.size() * 8; bit++) {
		Bytes b = good;

		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ASSERT_EQ(amil_ledger_rec_decode(b.data(), &back), -EBADMSG) << "bit " << bit;
	}
}

TEST_P(LedgerFormat, RecordDecodeRejectsBadContentWithGoodCrc)
{
	const Bytes good = enc_rec(make_rec(5));
	amil_ledger_rec back;
	struct Case {
		const char *what;
		int off, len;
		uint64_t value;
	} cases[] = {
		{"magic", AMIL_LEDGER_REC_OFF_MAGIC, 2, 0x4453},
		{"magic swapped", AMIL_LEDGER_REC_OFF_MAGIC, 2, 0x5244},
		{"kind 0", AMIL_LEDGER_REC_OFF_KIND, 1, 0},
		{"kind 2", AMIL_LEDGER_REC_OFF_KIND, 1, 2},
		{"exponent 5", AMIL_LEDGER_REC_OFF_EXPONENT, 1, AMIL_EXPONENT_MAX + 1},
		{"donation 0", AMIL_LEDGER_REC_OFF_DONATION, 8, 0},
		{"currency NUL", AMIL_LEDGER_REC_OFF_CURRENCY + 3, 1, 'X'},
		{"currency lower", AMIL_LEDGER_REC_OFF_CURRENCY, 1, 's'},
		{"currency digit", AMIL_LEDGER_REC_OFF_CURRENCY + 1, 1, '1'},
		{"currency [", AMIL_LEDGER_REC_OFF_CURRENCY + 2, 1, '['},
		{"currency @", AMIL_LEDGER_REC_OFF_CURRENCY + 2, 1, '@'},
		{"amount 0", AMIL_LEDGER_REC_OFF_AMOUNT, 8, 0},
		{"amount -1", AMIL_LEDGER_REC_OFF_AMOUNT, 8, UINT64_MAX},
		{"amount 10^15+1", AMIL_LEDGER_REC_OFF_AMOUNT, 8, UINT64_C(1000000000000001)},
		{"levy -1", AMIL_LEDGER_REC_OFF_LEVY, 8, UINT64_MAX},
		{"levy > amount", AMIL_LEDGER_REC_OFF_LEVY, 8, 10006},
		{"seq 0", AMIL_LEDGER_REC_OFF_SEQ, 8, 0},
		{"rate 10001", AMIL_LEDGER_REC_OFF_RATE, 2, 10001},
		{"reserved byte 0", AMIL_LEDGER_REC_OFF_RESERVED, 1, 1},
		{"reserved byte 3", AMIL_LEDGER_REC_OFF_RESERVED + 3, 1, 0x80},
	};

	ASSERT_EQ(amil_ledger_rec_decode(good.data(), &back), 0);
	ASSERT_EQ(back.amount_minor, 10005);  // "levy > amount" above is 10006
	for (const auto &c : cases) {
		Bytes b = good;

		st(b.data() + c.off, c.value, c.len);
		reseal_rec(b.data());
		EXPECT_EQ(amil_ledger_rec_decode(b.data(), &back), -EPROTO) << c.what;
	}
	// Boundaries that are valid.
	struct Case ok[] = {
		{"exponent 4", AMIL_LEDGER_REC_OFF_EXPONENT, 1, 4},
		{"levy == amount", AMIL_LEDGER_REC_OFF_LEVY, 8, 10005},
		{"levy 0", AMIL_LEDGER_REC_OFF_LEVY, 8, 0},
		{"rate 10000", AMIL_LEDGER_REC_OFF_RATE, 2, 10000},
		{"donor 0", AMIL_LEDGER_REC_OFF_DONOR, 8, 0},
	};
	for (const auto &c : ok) {
		Bytes b = good;

		st(b.data() + c.off, c.value, c.len);
		reseal_rec(b.data());
		EXPECT_EQ(amil_ledger_rec_decode(b.data(), &back), 0) << c.what;
	}
}

// ---- headers ---------------------------------------------------------------

TEST_P(LedgerFormat, HeaderRoundTripAndOffsets)
{
	amil_ledger_hdr h, back;

	memset(&h, 0, sizeof(h));
	h.node_id = 0x01020304;
	h.created_ns = UINT64_C(0x1112131415161718);
	h.first_seq = UINT64_C(0x2122232425262728);
	Bytes b(AMIL_LEDGER_HDR_LEN);
	amil_ledger_hdr_encode(b.data(), &h);
	const uint8_t *p = b.data();

	EXPECT_EQ(0, memcmp(p, "AMILLEDG", 8));
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_VERSION, 2), 1u);
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_HDR_LEN, 2), 64u);
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_REC_LEN, 2), 80u);
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_FLAGS, 2), 0u);
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_NODE, 4), h.node_id);
	EXPECT_EQ(p[16], 0x04);
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_RESERVED0, 4), 0u);
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_CREATED, 8), h.created_ns);
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_FIRST_SEQ, 8), h.first_seq);
	for (int i = AMIL_LEDGER_HDR_OFF_RESERVED1; i < AMIL_LEDGER_HDR_OFF_CRC; i++)
		EXPECT_EQ(p[i], 0) << "reserved byte " << i;
	EXPECT_EQ(ld(p + AMIL_LEDGER_HDR_OFF_CRC, 4), amil_crc32c(0, p, 60));
	EXPECT_EQ(AMIL_LEDGER_HDR_OFF_VERSION, 8);
	EXPECT_EQ(AMIL_LEDGER_HDR_OFF_NODE, 16);
	EXPECT_EQ(AMIL_LEDGER_HDR_OFF_CREATED, 24);
	EXPECT_EQ(AMIL_LEDGER_HDR_OFF_FIRST_SEQ, 32);
	EXPECT_EQ(AMIL_LEDGER_HDR_OFF_RESERVED1, 40);
	EXPECT_EQ(AMIL_LEDGER_HDR_OFF_CRC, 60);

	ASSERT_EQ(amil_ledger_hdr_decode(p, &back), 0);
	EXPECT_EQ(back.version, 1);
	EXPECT_EQ(back.node_id, h.node_id);
	EXPECT_EQ(back.created_ns, h.created_ns);
	EXPECT_EQ(back.first_seq, h.first_seq);
}

TEST_P(LedgerFormat, HeaderDecodeRejectsEveryBitFlipAndBadMagic)
{
	const Bytes good = enc_hdr(1);
	amil_ledger_hdr back;

	for (size_t bit = 0; bit < good.size() * 8; bit++) {
		Bytes b = good;

		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ASSERT_EQ(amil_ledger_hdr_decode(b.data(), &back), -EBADMSG) << "bit " << bit;
	}
	// Bad magic is -EBADMSG even with a CRC that matches.
	Bytes b = good;
	memcpy(b.data(), "AMILLEDX", 8);
	reseal_hdr(b.data());
	EXPECT_EQ(amil_ledger_hdr_decode(b.data(), &back), -EBADMSG);
}

TEST_P(LedgerFormat, HeaderUnsupportedVersionLengthsFlags)
{
	const Bytes good = enc_hdr(1);
	amil_ledger_hdr back;
	struct Case {
		const char *what;
		int off, len;
		uint64_t value;
	} cases[] = {
		{"version 2", AMIL_LEDGER_HDR_OFF_VERSION, 2, 2},
		{"version 0", AMIL_LEDGER_HDR_OFF_VERSION, 2, 0},
		{"hdr_len 128", AMIL_LEDGER_HDR_OFF_HDR_LEN, 2, 128},
		{"rec_len 96", AMIL_LEDGER_HDR_OFF_REC_LEN, 2, 96},
		// Version 1 writes these as zero (see amil_ledger_hdr_decode).
		{"flags", AMIL_LEDGER_HDR_OFF_FLAGS, 2, 1},
		{"reserved0", AMIL_LEDGER_HDR_OFF_RESERVED0, 4, 0x100},
		{"reserved1 first", AMIL_LEDGER_HDR_OFF_RESERVED1, 1, 1},
		{"reserved1 last", AMIL_LEDGER_HDR_OFF_CRC - 1, 1, 0x80},
	};

	for (const auto &c : cases) {
		Bytes b = good;

		st(b.data() + c.off, c.value, c.len);
		reseal_hdr(b.data());
		EXPECT_EQ(amil_ledger_hdr_decode(b.data(), &back), -EPROTONOSUPPORT) << c.what;
	}
}

TEST_P(LedgerFormat, SegmentName)
{
	char buf[64];

	amil_ledger_seg_name(buf, sizeof(buf), 1);
	EXPECT_STREQ(buf, "seg-00000000000000000001.amil");
	amil_ledger_seg_name(buf, 32, UINT64_MAX);
	EXPECT_STREQ(buf, "seg-18446744073709551615.amil");
	// Name order is sequence order.
	EXPECT_LT(seg_name(9), seg_name(10));
	EXPECT_LT(seg_name(99999), seg_name(100000));
	// A short buffer is truncated, NUL-terminated.
	memset(buf, 'x', sizeof(buf));
	amil_ledger_seg_name(buf, 8, 1);
	EXPECT_STREQ(buf, "seg-000");
	EXPECT_STRNE(amil_ledger_damage_str(AMIL_LEDGER_TORN), "");
	EXPECT_STREQ(amil_ledger_damage_str(AMIL_LEDGER_INTACT), "intact");
}

// ---- scan: intact ledgers --------------------------------------------------

TEST_P(LedgerFormat, ScanMissingAndEmptyDirectory)
{
	Seen seen;
	amil_ledger_scan_result res;
	amil_ledger_scan_opts o;

	memset(&o, 0, sizeof(o));
	memset(&res, 0xAB, sizeof(res));
	EXPECT_EQ(amil_ledger_scan((dir_ + "/missing").c_str(), &o, &res), 0);
	EXPECT_EQ(res.segments, 0u);
	EXPECT_EQ(res.records, 0u);
	EXPECT_EQ(res.first_seq, 0u);
	EXPECT_EQ(res.last_seq, 0u);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_INTACT);
	EXPECT_EQ(res.tail_saved[0], '\0');

	EXPECT_EQ(scan(&seen, &res), 0);
	EXPECT_EQ(res.segments, 0u);
	EXPECT_EQ(res.records, 0u);
	EXPECT_TRUE(seen.seqs.empty());

	// A regular file is not a directory: an I/O error, not "empty".
	write_bytes(dir_ + "/file", Bytes{1});
	EXPECT_EQ(amil_ledger_scan((dir_ + "/file").c_str(), &o, &res), -ENOTDIR);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_IO_ERROR);
	EXPECT_EQ(res.damage.err, ENOTDIR);
}

TEST_P(LedgerFormat, ScanSeveralSegmentsContinuous)
{
	Seen seen;
	amil_ledger_scan_result res;

	// Written in reverse so directory order is unlikely to be name order.
	std::string p3 = put(9, segment(9, {}));
	std::string p2 = put(6, segment(6, range(6, 3)));
	std::string p1 = put(1, segment(1, range(1, 5)));
	ASSERT_EQ(scan(&seen, &res), 0);
	EXPECT_EQ(res.segments, 3u);
	EXPECT_EQ(res.records, 8u);
	EXPECT_EQ(res.first_seq, 1u);
	EXPECT_EQ(res.last_seq, 8u);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_INTACT);
	EXPECT_EQ(res.tail_cut_bytes, 0u);
	EXPECT_EQ(seen.seqs, range(1, 8));
	EXPECT_EQ(seen.seg_paths, (std::vector<std::string>{p1, p2, p3}));
	EXPECT_EQ(seen.seg_first, (std::vector<uint64_t>{1, 6, 9}));
	EXPECT_EQ(seen.seg_sizes, (std::vector<uint64_t>{64 + 5 * 80, 64 + 3 * 80, 64}));
}

// Older segments may have been archived: the first one need not start at 1.
TEST_P(LedgerFormat, ScanStartsAtFirstSegmentsSeq)
{
	Seen seen;
	amil_ledger_scan_result res;

	put(100, segment(100, range(100, 4)));
	put(104, segment(104, range(104, 2)));
	ASSERT_EQ(scan(&seen, &res, false, kNode), 0);
	EXPECT_EQ(res.first_seq, 100u);
	EXPECT_EQ(res.last_seq, 105u);
	EXPECT_EQ(res.records, 6u);
}

TEST_P(LedgerFormat, ScanIgnoresNonSegmentFiles)
{
	Seen seen;
	amil_ledger_scan_result res;

	put(1, segment(1, range(1, 2)));
	write_bytes(dir_ + "/README", Bytes{'h', 'i'});
	write_bytes(dir_ + "/seg-1.amil", Bytes{1, 2, 3});                      // too few digits
	write_bytes(dir_ + "/" + seg_name(3) + ".tail-123", Bytes{1, 2, 3});    // a saved tail
	write_bytes(dir_ + "/" + seg_name(4) + "x", Bytes{1});
	write_bytes(dir_ + "/seg-0000000000000000000a.amil", Bytes{1});
	write_bytes(dir_ + "/xseg-00000000000000000005.amil", Bytes{1});
	ASSERT_EQ(scan(&seen, &res), 0);
	EXPECT_EQ(res.segments, 1u);
	EXPECT_EQ(res.records, 2u);
}

// SCAN_CHUNK (1 MiB) is not a multiple of 80: a record straddles the end
// of each chunk.  Damage placed on that record must be found at its exact
// offset, and a big intact segment must read through.
TEST_P(LedgerFormat, ScanAcrossReadChunks)
{
	Seen seen;
	amil_ledger_scan_result res;
	const uint64_t n = 30000;  // 2.4 MB
	Bytes seg = segment(1, range(1, n));
	std::string p = put(1, seg);

	ASSERT_EQ(scan(&seen, &res), 0);
	EXPECT_EQ(res.records, n);
	EXPECT_EQ(res.last_seq, n);
	ASSERT_EQ(seen.seqs.size(), n);
	EXPECT_EQ(seen.seqs[13107], 13108u);

	// Record 13107 spans bytes 64 + 1048560 .. +80: across the first chunk.
	const uint64_t idx = (1u << 20) / 80;
	ASSERT_EQ(idx, 13107u);
	Bytes bad = seg;
	bad[64 + idx * 80 + 40] ^= 1;
	write_bytes(p, bad);
	put(n + 1, segment(n + 1, {n + 1}));  // so this damage is not in the last segment
	seen = Seen();
	EXPECT_EQ(scan(&seen, &res, true), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_BAD_CRC);
	EXPECT_EQ(res.damage.offset, 64 + idx * 80);
	EXPECT_EQ(res.damage.record_index, idx);
	EXPECT_FALSE(res.damage.in_last_segment);
	EXPECT_EQ(res.records, idx);
	EXPECT_EQ(read_bytes(p), bad);
}

// ---- scan: sequence gaps ---------------------------------------------------

TEST_P(LedgerFormat, ScanSeqGapInsideSegment)
{
	Seen seen;
	amil_ledger_scan_result res;
	std::string p = put(1, segment(1, {1, 2, 4, 5}));

	put(6, segment(6, {6}));
	EXPECT_EQ(scan(&seen, &res, true), -EBADMSG);  // not the last: never repaired
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_SEQ_GAP);
	EXPECT_EQ(res.damage.path, p);
	EXPECT_EQ(res.damage.offset, 64u + 2 * 80);
	EXPECT_EQ(res.damage.record_index, 2u);
	EXPECT_EQ(res.damage.expected_seq, 3u);
	EXPECT_EQ(res.damage.found_seq, 4u);
	EXPECT_FALSE(res.damage.in_last_segment);
	EXPECT_EQ(res.records, 2u);
	EXPECT_EQ(seen.seqs, (std::vector<uint64_t>{1, 2}));
	EXPECT_TRUE(tails(dir_).empty());
}

TEST_P(LedgerFormat, ScanSeqGapAcrossSegments)
{
	Seen seen;
	amil_ledger_scan_result res;

	put(1, segment(1, range(1, 3)));
	std::string p = put(5, segment(5, range(5, 2)));  // 4 is missing
	put(7, segment(7, range(7, 2)));
	EXPECT_EQ(scan(&seen, &res, true), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_SEQ_GAP);
	EXPECT_EQ(res.damage.path, p);
	EXPECT_EQ(res.damage.offset, 0u);
	EXPECT_EQ(res.damage.expected_seq, 4u);
	EXPECT_EQ(res.damage.found_seq, 5u);
	EXPECT_FALSE(res.damage.in_last_segment);
	EXPECT_EQ(res.segments, 1u);
	EXPECT_EQ(res.records, 3u);

	// The header agrees but the first record does not.
	fs::remove(p);
	fs::remove(dir_ + "/" + seg_name(7));
	p = put(4, segment(4, {5, 6}));
	seen = Seen();
	EXPECT_EQ(scan(&seen, &res), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_SEQ_GAP);
	EXPECT_EQ(res.damage.path, p);
	EXPECT_EQ(res.damage.offset, 64u);
	EXPECT_EQ(res.damage.record_index, 0u);
	EXPECT_EQ(res.damage.expected_seq, 4u);
	EXPECT_EQ(res.damage.found_seq, 5u);
	EXPECT_TRUE(res.damage.in_last_segment);
}

// ---- scan: the torn or corrupt tail of the last segment --------------------

TEST_P(LedgerFormat, ScanTornLastRecord)
{
	Seen seen;
	amil_ledger_scan_result res;
	put(1, segment(1, range(1, 3)));
	Bytes full = segment(4, range(4, 5));
	Bytes torn(full.begin(), full.begin() + 64 + 4 * 80 + 30);
	std::string p = put(4, torn);

	// Without repair: reported, nothing touched.
	EXPECT_EQ(scan(&seen, &res), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_TORN);
	EXPECT_EQ(res.damage.path, p);
	EXPECT_EQ(res.damage.offset, 64u + 4 * 80);
	EXPECT_EQ(res.damage.record_index, 4u);
	EXPECT_TRUE(res.damage.in_last_segment);
	EXPECT_EQ(res.records, 7u);
	EXPECT_EQ(read_bytes(p), torn);
	EXPECT_TRUE(tails(dir_).empty());

	// With repair: cut at the record boundary, the 30 bytes saved aside.
	seen = Seen();
	ASSERT_EQ(scan(&seen, &res, true), 0);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_INTACT);
	EXPECT_EQ(res.records, 7u);
	EXPECT_EQ(res.last_seq, 7u);
	EXPECT_EQ(res.segments, 2u);
	EXPECT_EQ(res.tail_cut_bytes, 30u);
	EXPECT_EQ(res.tail_cut_records, 0u);
	EXPECT_EQ(seen.seqs, range(1, 7));
	EXPECT_EQ(read_bytes(p), Bytes(full.begin(), full.begin() + 64 + 4 * 80));
	auto t = tails(dir_);
	ASSERT_EQ(t.size(), 1u);
	EXPECT_EQ(t[0], std::string(res.tail_saved));
	EXPECT_EQ(t[0].rfind(p + ".tail-", 0), 0u) << t[0];
	EXPECT_EQ(read_bytes(t[0]), Bytes(torn.begin() + 64 + 4 * 80, torn.end()));

	// Now intact; a second scan cuts nothing.
	ASSERT_EQ(scan(&seen, &res, true), 0);
	EXPECT_EQ(res.tail_cut_bytes, 0u);
	EXPECT_EQ(res.tail_saved[0], '\0');
	EXPECT_EQ(tails(dir_).size(), 1u);
}

TEST_P(LedgerFormat, ScanCorruptLastRecordOfLastSegment)
{
	Seen seen;
	amil_ledger_scan_result res;
	Bytes seg = segment(1, range(1, 5));

	seg[64 + 4 * 80 + 10] ^= 0x20;
	std::string p = put(1, seg);
	EXPECT_EQ(scan(&seen, &res), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_BAD_CRC);
	EXPECT_EQ(res.damage.offset, 64u + 4 * 80);
	EXPECT_EQ(res.damage.record_index, 4u);
	EXPECT_EQ(read_bytes(p), seg);

	ASSERT_EQ(scan(&seen, &res, true), 0);
	EXPECT_EQ(res.records, 4u);
	EXPECT_EQ(res.tail_cut_bytes, 80u);
	EXPECT_EQ(res.tail_cut_records, 0u);
	EXPECT_EQ(read_bytes(p), Bytes(seg.begin(), seg.begin() + 64 + 4 * 80));
	EXPECT_EQ(read_bytes(res.tail_saved), Bytes(seg.begin() + 64 + 4 * 80, seg.end()));
}

// After a crash pages may reach the disk in any order: intact-looking
// records after a bad one were never acknowledged and are cut too, but
// counted in tail_cut_records.
TEST_P(LedgerFormat, ScanCorruptMiddleOfLastSegment)
{
	Seen seen;
	amil_ledger_scan_result res;
	Bytes seg = segment(1, range(1, 10));

	seg[64 + 3 * 80 + AMIL_LEDGER_REC_OFF_CRC] ^= 0xFF;
	seg.resize(seg.size() + 17);  // and a torn record at the very end
	std::string p = put(1, seg);

	ASSERT_EQ(scan(&seen, &res, true), 0);
	EXPECT_EQ(res.records, 3u);
	EXPECT_EQ(res.last_seq, 3u);
	EXPECT_EQ(res.tail_cut_bytes, 7u * 80 + 17);
	EXPECT_EQ(res.tail_cut_records, 6u);
	EXPECT_EQ(seen.seqs, range(1, 3));
	EXPECT_EQ(read_bytes(p), Bytes(seg.begin(), seg.begin() + 64 + 3 * 80));
	EXPECT_EQ(read_bytes(res.tail_saved), Bytes(seg.begin() + 64 + 3 * 80, seg.end()));
}

// Regression: the scan used to remove a last segment whose intact header
// had the wrong first_seq.  That is no torn write but a missing segment
// (removed by hand): its records may have been acknowledged, and removing
// it would let the writer hand out their seqs again.  Refused instead.
TEST_P(LedgerFormat, ScanHeaderGapInLastSegmentNeverRepaired)
{
	Seen seen;
	amil_ledger_scan_result res;

	put(1, segment(1, range(1, 4)));
	Bytes last = segment(9, range(9, 3));  // 5..8 missing
	std::string p = put(9, last);
	EXPECT_EQ(scan(&seen, &res, true), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_SEQ_GAP);
	EXPECT_EQ(res.damage.path, p);
	EXPECT_EQ(res.damage.offset, 0u);
	EXPECT_EQ(res.damage.expected_seq, 5u);
	EXPECT_EQ(res.damage.found_seq, 9u);
	EXPECT_TRUE(res.damage.in_last_segment);
	EXPECT_EQ(res.tail_cut_bytes, 0u);
	EXPECT_EQ(read_bytes(p), last);
	EXPECT_TRUE(tails(dir_).empty());
}

// A gap between records of the last segment is cut like any tail damage.
TEST_P(LedgerFormat, ScanSeqGapInLastSegmentRepaired)
{
	Seen seen;
	amil_ledger_scan_result res;
	Bytes seg = segment(1, {1, 2, 9, 3});
	std::string p = put(1, seg);

	ASSERT_EQ(scan(&seen, &res, true), 0);
	EXPECT_EQ(res.records, 2u);
	EXPECT_EQ(res.tail_cut_bytes, 160u);
	EXPECT_EQ(res.tail_cut_records, 2u);  // 9 and 3 both decode
	EXPECT_EQ(read_bytes(p).size(), 64u + 160);
}

TEST_P(LedgerFormat, ScanDamageInEarlierSegmentNeverRepaired)
{
	Seen seen;
	amil_ledger_scan_result res;
	struct Damage {
		const char *what;
		std::function<void(Bytes &)> apply;
		amil_ledger_damage_kind kind;
		uint64_t offset;
	} cases[] = {
		{"bad crc", [](Bytes &b) { b[64 + 2 * 80 + 5] ^= 1; }, AMIL_LEDGER_BAD_CRC, 64 + 160},
		{"torn", [](Bytes &b) { b.resize(64 + 3 * 80 + 40); }, AMIL_LEDGER_TORN, 64 + 240},
		{"header", [](Bytes &b) { b[20] ^= 1; }, AMIL_LEDGER_BAD_HEADER, 0},
		{"short header", [](Bytes &b) { b.resize(40); }, AMIL_LEDGER_BAD_HEADER, 0},
		{"bad record", [](Bytes &b) { b[64 + 80 + AMIL_LEDGER_REC_OFF_KIND] = 9;
					      reseal_rec(&b[64 + 80]); },
		 AMIL_LEDGER_BAD_RECORD, 64 + 80},
	};

	for (const auto &c : cases) {
		SCOPED_TRACE(c.what);
		for (const auto &e : fs::directory_iterator(dir_))
			fs::remove(e.path());
		Bytes first = segment(1, range(1, 5));
		c.apply(first);
		std::string p1 = put(1, first);
		Bytes second = segment(6, range(6, 3));
		second.resize(second.size() - 7);  // even with a torn tail of its own
		std::string p2 = put(6, second);

		seen = Seen();
		EXPECT_EQ(scan(&seen, &res, true), -EBADMSG);
		EXPECT_EQ(res.damage.kind, c.kind);
		EXPECT_EQ(res.damage.path, p1);
		EXPECT_EQ(res.damage.offset, c.offset);
		EXPECT_FALSE(res.damage.in_last_segment);
		EXPECT_EQ(res.tail_cut_bytes, 0u);
		EXPECT_EQ(read_bytes(p1), first);
		EXPECT_EQ(read_bytes(p2), second);
		EXPECT_TRUE(tails(dir_).empty());
		for (uint64_t s : seen.seqs)
			EXPECT_LE(s, 5u);  // nothing from the second segment
	}
}

TEST_P(LedgerFormat, ScanPartialHeaderLastSegmentRemoved)
{
	Seen seen;
	amil_ledger_scan_result res;
	put(1, segment(1, range(1, 3)));
	Bytes hdr = enc_hdr(4);
	Bytes part(hdr.begin(), hdr.begin() + 20);
	std::string p = put(4, part);

	EXPECT_EQ(scan(&seen, &res), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_BAD_HEADER);
	EXPECT_EQ(res.damage.path, p);
	EXPECT_EQ(res.damage.offset, 0u);
	EXPECT_TRUE(res.damage.in_last_segment);
	EXPECT_TRUE(fs::exists(p));

	ASSERT_EQ(scan(&seen, &res, true), 0);
	EXPECT_FALSE(fs::exists(p));
	EXPECT_EQ(res.segments, 1u);
	EXPECT_EQ(res.records, 3u);
	EXPECT_EQ(res.last_seq, 3u);
	EXPECT_EQ(res.tail_cut_bytes, 20u);
	EXPECT_EQ(res.tail_cut_records, 0u);
	EXPECT_EQ(read_bytes(res.tail_saved), part);
	EXPECT_EQ(std::string(res.tail_saved).rfind(p + ".tail-", 0), 0u);

	// An empty last segment (created, nothing written) goes the same way.
	std::string q = put(4, Bytes{});
	ASSERT_EQ(scan(&seen, &res, true), 0);
	EXPECT_FALSE(fs::exists(q));
	EXPECT_EQ(res.tail_cut_bytes, 0u);
	EXPECT_EQ(res.records, 3u);
}

TEST_P(LedgerFormat, ScanUnsupportedVersionNeverRepaired)
{
	Seen seen;
	amil_ledger_scan_result res;
	Bytes seg = segment(1, range(1, 2));

	st(seg.data() + AMIL_LEDGER_HDR_OFF_VERSION, 2, 2);
	reseal_hdr(seg.data());
	std::string p = put(1, seg);
	EXPECT_EQ(scan(&seen, &res, true), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_BAD_VERSION);
	EXPECT_TRUE(res.damage.in_last_segment);
	EXPECT_EQ(read_bytes(p), seg);
	EXPECT_TRUE(tails(dir_).empty());
}

TEST_P(LedgerFormat, ScanNodeIdMismatch)
{
	Seen seen;
	amil_ledger_scan_result res;

	// Segment header of another node.
	std::string p = put(1, segment(1, range(1, 2), 4));
	EXPECT_EQ(scan(&seen, &res, true, kNode), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_NODE_MISMATCH);
	EXPECT_EQ(res.damage.offset, 0u);
	EXPECT_TRUE(fs::exists(p));  // never repaired, even in the last segment
	EXPECT_EQ(scan(&seen, &res, false, 4), 0);
	EXPECT_EQ(scan(&seen, &res, false, 0), 0);  // 0: any node

	// A record of another node inside our segment.
	Bytes seg = segment(1, range(1, 3));
	Bytes foreign = enc_rec(make_rec(4, 9));
	seg.insert(seg.end(), foreign.begin(), foreign.end());
	write_bytes(p, seg);
	seen = Seen();
	EXPECT_EQ(scan(&seen, &res, true, kNode), -EBADMSG);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_NODE_MISMATCH);
	EXPECT_EQ(res.damage.offset, 64u + 3 * 80);
	EXPECT_EQ(res.damage.record_index, 3u);
	EXPECT_EQ(res.records, 3u);
	EXPECT_EQ(read_bytes(p), seg);
	EXPECT_TRUE(tails(dir_).empty());
}

TEST_P(LedgerFormat, ScanCallbacksInOrderAndStop)
{
	Seen seen;
	amil_ledger_scan_result res;

	put(1, segment(1, range(1, 4)));
	std::string p2 = put(5, segment(5, range(5, 4)));
	put(9, segment(9, range(9, 4)));

	seen.stop_at_seq = 6;
	EXPECT_EQ(scan(&seen, &res), 7);
	EXPECT_EQ(seen.seqs, range(1, 6));
	EXPECT_EQ(seen.seg_paths.size(), 2u);

	seen = Seen();
	seen.stop_at_seg = p2;
	EXPECT_EQ(scan(&seen, &res), 9);
	EXPECT_EQ(seen.seqs, range(1, 4));

	// Without callbacks at all.
	amil_ledger_scan_opts o;
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(amil_ledger_scan(dir_.c_str(), &o, &res), 0);
	EXPECT_EQ(res.records, 12u);
	EXPECT_EQ(res.last_seq, 12u);
}

TEST_P(LedgerFormat, ScanUnreadableSegment)
{
	Seen seen;
	amil_ledger_scan_result res;

	if (geteuid() == 0)
		GTEST_SKIP() << "root reads a mode 000 file";
	std::string p = put(1, segment(1, range(1, 2)));
	ASSERT_EQ(chmod(p.c_str(), 0), 0);
	EXPECT_EQ(scan(&seen, &res), -EACCES);
	EXPECT_EQ(res.damage.kind, AMIL_LEDGER_IO_ERROR);
	EXPECT_EQ(res.damage.err, EACCES);
	EXPECT_EQ(res.damage.path, p);
}

INSTANTIATE_TEST_SUITE_P(Crc, LedgerFormat, ::testing::Values(false, true),
			 [](const ::testing::TestParamInfo<bool> &i) {
				 return std::string(i.param ? "Table" : "Hardware");
			 });

}  // namespace
