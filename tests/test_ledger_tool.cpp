// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Integration: the real amil-ledger binary (path in AMIL_LEDGER; meson test
// sets it) over ledgers built here with amil_ledger_hdr_encode/rec_encode.
//
// Checks what operators and auditors rely on: verify's verdict, counts and
// the exact place of damage (text and JSON); export rows and every filter
// (CSV, JSON, --output); totals summed exactly near 10^15 with several
// exponents, and overflow reported rather than wrapped; the documented exit
// codes (0 intact, 1 damaged, 2 usage, 3 cannot read/write or overflow);
// and that the ledger directory is byte-identical after every command.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "amil_ledger_format.h"
#include "amil_levy.h"
#include "integration_child.h"
#include "integration_json.h"

using namespace itest;
namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

const uint32_t kNode = 3;
const uint64_t kT0 = UINT64_C(1795600800);  // 2026-11-25T10:00:00Z, seconds
const uint64_t kNs = UINT64_C(1000000000);
const int64_t k1e15 = INT64_C(1000000000000000);

struct Spec {
	uint32_t center, campaign;
	const char *currency;
	uint8_t exponent;
	int64_t amount;
	uint64_t accepted_ns;
};

// Seqs 1..10, in segments [1..4], [5..8], [9..10].
const Spec kRecs[] = {
	{1001, 7, "SAR", 2, 12345, kT0 * kNs + 123456789},
	{1002, 7, "SAR", 2, k1e15 - 1, (kT0 + 60) * kNs},
	{1001, 7, "SAR", 2, k1e15, (kT0 + 120) * kNs},
	{1002, 7, "KWD", 3, k1e15, (kT0 + 180) * kNs},
	{1001, 7, "KWD", 3, k1e15, (kT0 + 240) * kNs},
	{1003, 8, "JPY", 0, 5, (kT0 + 300) * kNs},
	{1003, 8, "JPY", 0, k1e15, (kT0 + 3600) * kNs},
	{1001, 8, "BHD", 4, 1, (kT0 + 3660) * kNs},
	{1002, 9, "SAR", 2, 5, (kT0 + 7200) * kNs},
	{1001, 9, "SAR", 2, 7, (kT0 + 86400) * kNs},
};
const uint64_t kN = sizeof(kRecs) / sizeof(kRecs[0]);

amil_ledger_rec rec_of(uint64_t seq, const Spec &s, uint32_t node = kNode)
{
	amil_ledger_rec r;

	memset(&r, 0, sizeof(r));
	r.center_id = s.center;
	r.donation_id = 5000 + seq;
	r.donor_id = seq % 2 ? 0 : 77;
	r.campaign_id = s.campaign;
	memcpy(r.currency, s.currency, 3);
	r.exponent = s.exponent;
	r.amount_minor = s.amount;
	r.rate_bp = 250;
	r.levy_minor = amil_levy_minor(s.amount, r.rate_bp);
	r.seq = seq;
	r.accepted_ns = s.accepted_ns;
	r.node_id = node;
	r.worker = (uint16_t)(seq % 4);
	return r;
}

void append_rec(Bytes *b, const amil_ledger_rec &r)
{
	size_t at = b->size();

	b->resize(at + AMIL_LEDGER_REC_LEN);
	amil_ledger_rec_encode(b->data() + at, &r);
}

Bytes header(uint64_t first_seq, uint32_t node = kNode)
{
	amil_ledger_hdr h;
	Bytes b(AMIL_LEDGER_HDR_LEN);

	memset(&h, 0, sizeof(h));
	h.node_id = node;
	h.created_ns = kT0 * kNs;
	h.first_seq = first_seq;
	amil_ledger_hdr_encode(b.data(), &h);
	return b;
}

std::string seg_name(uint64_t first_seq)
{
	char buf[64];

	amil_ledger_seg_name(buf, sizeof(buf), first_seq);
	return buf;
}

void put(const std::string &path, const Bytes &b)
{
	std::string s(b.begin(), b.end());

	ASSERT_TRUE(write_file(path, s)) << path;
}

Bytes get(const std::string &path)
{
	std::string s = read_file(path);

	return Bytes(s.begin(), s.end());
}

// Decimal from minor units, written independently of the tool's code.
std::string decimal(int64_t v, unsigned exp)
{
	std::string d = std::to_string(v);

	if (exp == 0)
		return d;
	while (d.size() <= exp)
		d = "0" + d;
	return d.substr(0, d.size() - exp) + "." + d.substr(d.size() - exp);
}

struct Result {
	int code = -1;
	std::string out, err;
};

class LedgerTool : public ::testing::Test {
protected:
	void SetUp() override
	{
		const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();

		Watchdog::get().arm(100, info->name());
		const char *bin = getenv("AMIL_LEDGER");
		ASSERT_NE(bin, nullptr) << "set AMIL_LEDGER (meson test does)";
		bin_ = bin;
		ASSERT_TRUE(work_.create("ledger-tool"));
		dir_ = work_ / "ledger";
		ASSERT_TRUE(fs::create_directory(dir_));
	}
	void TearDown() override { Watchdog::get().disarm(); }

	// The standard ledger of kRecs in three segments.
	void build(uint32_t node = kNode)
	{
		const uint64_t firsts[] = {1, 5, 9, kN + 1};

		for (int s = 0; s < 3; s++) {
			Bytes b = header(firsts[s], node);
			for (uint64_t q = firsts[s]; q < firsts[s + 1]; q++)
				append_rec(&b, rec_of(q, kRecs[q - 1], node));
			put(seg(firsts[s]), b);
		}
	}

	std::string seg(uint64_t first_seq) const { return dir_ + "/" + seg_name(first_seq); }

	std::map<std::string, Bytes> snapshot() const
	{
		std::map<std::string, Bytes> m;

		for (const auto &e : fs::directory_iterator(dir_))
			m[e.path().filename().string()] = get(e.path().string());
		return m;
	}

	Result run(std::vector<std::string> args)
	{
		Child c;
		Result r;
		std::string out = work_ / "out.txt", err = work_ / "err.txt";

		args.insert(args.begin(), bin_);
		std::string e = c.start(args, out, err);
		EXPECT_EQ(e, "");
		if (!e.empty())
			return r;
		EXPECT_TRUE(c.wait_exit(30000)) << "amil-ledger did not exit";
		if (c.exited() && WIFEXITED(c.status()))
			r.code = WEXITSTATUS(c.status());
		r.out = read_file(out);
		r.err = read_file(err);
		return r;
	}

	static Json parse(const std::string &s)
	{
		Json j;
		std::string err;

		EXPECT_TRUE(JsonParser::parse(s, &j, &err)) << err << "\n" << s;
		return j;
	}

	// Seqs of the CSV rows in @csv (header checked).
	static std::vector<uint64_t> csv_seqs(const std::string &csv)
	{
		std::vector<uint64_t> v;
		std::stringstream ss(csv);
		std::string line;

		std::getline(ss, line);
		EXPECT_EQ(line, "seq,accepted_ns,accepted,node_id,worker,center_id,donation_id,"
				"donor_id,campaign_id,currency,exponent,amount_minor,amount,levy_minor,"
				"levy,rate_bp");
		while (std::getline(ss, line))
			v.push_back(std::stoull(line.substr(0, line.find(','))));
		return v;
	}

	std::string bin_, dir_;
	TempDir work_;
};

std::string tx(const Json *j)
{
	return j == nullptr ? "<missing>" : j->text;
}

// ---- verify ----------------------------------------------------------------

TEST_F(LedgerTool, VerifyIntact)
{
	build();
	auto before = snapshot();

	Result r = run({"verify", dir_});
	EXPECT_EQ(r.code, 0) << r.out << r.err;
	EXPECT_NE(r.out.find("segments: 3\n"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("records: 10\n"), std::string::npos);
	EXPECT_NE(r.out.find("first_seq: 1\n"), std::string::npos);
	EXPECT_NE(r.out.find("last_seq: 10\n"), std::string::npos);
	EXPECT_NE(r.out.find("status: intact"), std::string::npos);
	EXPECT_NE(r.out.find(seg_name(5) + ": node 3, first_seq 5, 4 records"), std::string::npos)
		<< r.out;
	EXPECT_EQ(r.err, "");

	r = run({"verify", "--json", dir_, "--node-id", "3"});
	EXPECT_EQ(r.code, 0) << r.err;
	Json j = parse(r.out);
	EXPECT_EQ(tx(j.get("status")), "intact");
	EXPECT_EQ(tx(j.get("segments")), "3");
	EXPECT_EQ(tx(j.get("records")), "10");
	EXPECT_EQ(tx(j.get("first_seq")), "1");
	EXPECT_EQ(tx(j.get("last_seq")), "10");
	ASSERT_NE(j.get("damage"), nullptr);
	EXPECT_EQ(j.get("damage")->type, Json::NUL);
	ASSERT_NE(j.get("segment_list"), nullptr);
	ASSERT_EQ(j.get("segment_list")->arr.size(), 3u);
	EXPECT_EQ(tx(j.path("segment_list.2.file")), seg_name(9));
	EXPECT_EQ(tx(j.path("segment_list.2.records")), "2");
	EXPECT_EQ(tx(j.path("segment_list.2.bytes")), std::to_string(64 + 2 * 80));

	EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTool, VerifyEmptyLedger)
{
	Result r = run({"verify", dir_});
	EXPECT_EQ(r.code, 0) << r.err;
	EXPECT_NE(r.out.find("records: 0\n"), std::string::npos);
	EXPECT_TRUE(snapshot().empty());
}

TEST_F(LedgerTool, VerifyCorruptRecordInEarlierSegment)
{
	build();
	Bytes b = get(seg(1));
	b[64 + 2 * 80 + 33] ^= 0x04;  // seq 3's amount
	put(seg(1), b);
	auto before = snapshot();

	Result r = run({"verify", dir_});
	EXPECT_EQ(r.code, 1) << r.out << r.err;
	EXPECT_NE(r.err.find(seg(1) + ": record CRC mismatch at byte offset 224 (record index 2)"),
		  std::string::npos)
		<< r.err;
	EXPECT_NE(r.out.find("byte offset: 224\n"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("record index: 2 "), std::string::npos);
	EXPECT_NE(r.out.find("in last segment: no"), std::string::npos);
	EXPECT_NE(r.out.find("refuses to start"), std::string::npos);
	EXPECT_NE(r.out.find("records: 2\n"), std::string::npos);

	r = run({"verify", dir_, "--json"});
	EXPECT_EQ(r.code, 1);
	Json j = parse(r.out);
	EXPECT_EQ(tx(j.get("status")), "damaged");
	EXPECT_EQ(tx(j.path("damage.kind")), "bad_crc");
	EXPECT_EQ(tx(j.path("damage.file")), seg(1));
	EXPECT_EQ(tx(j.path("damage.offset")), "224");
	EXPECT_EQ(tx(j.path("damage.record_index")), "2");
	EXPECT_EQ(tx(j.path("damage.in_last_segment")), "false");
	EXPECT_EQ(tx(j.path("damage.repaired_at_start")), "false");
	EXPECT_EQ(tx(j.get("records")), "2");

	EXPECT_EQ(snapshot(), before);  // never repaired, no .tail file
}

// verify must never do what the data plane's recovery does to a torn tail.
TEST_F(LedgerTool, VerifyTornTailIsReportedNotCut)
{
	build();
	Bytes b = get(seg(9));
	b.resize(b.size() - 10);
	put(seg(9), b);
	auto before = snapshot();

	Result r = run({"verify", dir_, "--json"});
	EXPECT_EQ(r.code, 1) << r.err;
	Json j = parse(r.out);
	EXPECT_EQ(tx(j.path("damage.kind")), "torn");
	EXPECT_EQ(tx(j.path("damage.offset")), "144");
	EXPECT_EQ(tx(j.path("damage.record_index")), "1");
	EXPECT_EQ(tx(j.path("damage.in_last_segment")), "true");
	EXPECT_EQ(tx(j.path("damage.repaired_at_start")), "true");
	EXPECT_EQ(tx(j.get("records")), "9");
	EXPECT_NE(r.err.find("torn record"), std::string::npos);
	EXPECT_NE(r.err.find("byte offset 144"), std::string::npos);

	r = run({"verify", dir_});
	EXPECT_EQ(r.code, 1);
	EXPECT_NE(r.out.find("would cut this segment at byte 144"), std::string::npos) << r.out;
	EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTool, VerifySeqGapAndNodeId)
{
	Bytes a = header(1), b = header(4);

	for (uint64_t q = 1; q <= 3; q++)
		append_rec(&a, rec_of(q, kRecs[q - 1]));
	append_rec(&b, rec_of(4, kRecs[3]));
	append_rec(&b, rec_of(6, kRecs[5]));  // 5 is missing
	put(seg(1), a);
	put(seg(4), b);
	auto before = snapshot();

	Result r = run({"verify", dir_});
	EXPECT_EQ(r.code, 1);
	EXPECT_NE(r.err.find(seg(4) + ": sequence gap at byte offset 144 (record index 1): "
				      "expected seq 5, found 6"),
		  std::string::npos)
		<< r.err;
	EXPECT_NE(r.out.find("expected seq: 5\n"), std::string::npos);
	EXPECT_NE(r.out.find("found seq: 6\n"), std::string::npos);
	r = run({"verify", "--json", dir_});
	Json j = parse(r.out);
	EXPECT_EQ(tx(j.path("damage.kind")), "seq_gap");
	EXPECT_EQ(tx(j.path("damage.expected_seq")), "5");
	EXPECT_EQ(tx(j.path("damage.found_seq")), "6");

	// Drop the gap; then the node id decides.
	b.resize(64 + 80);
	put(seg(4), b);
	before = snapshot();
	EXPECT_EQ(run({"verify", dir_, "--node-id", "3"}).code, 0);
	r = run({"verify", dir_, "--node-id", "4", "--json"});
	EXPECT_EQ(r.code, 1);
	j = parse(r.out);
	EXPECT_EQ(tx(j.path("damage.kind")), "node_mismatch");
	EXPECT_EQ(tx(j.path("damage.offset")), "0");
	EXPECT_EQ(tx(j.path("damage.file")), seg(1));
	EXPECT_EQ(tx(j.path("damage.repaired_at_start")), "false");
	EXPECT_EQ(snapshot(), before);
}

// ---- export ----------------------------------------------------------------

TEST_F(LedgerTool, ExportCsvRows)
{
	build();
	auto before = snapshot();

	Result r = run({"export", dir_});
	EXPECT_EQ(r.code, 0) << r.err;
	std::vector<uint64_t> all;
	for (uint64_t q = 1; q <= kN; q++)
		all.push_back(q);
	EXPECT_EQ(csv_seqs(r.out), all);
	// Row by row, every field (seq 1: worker 1, donor 0; seq 2: donor 77).
	EXPECT_NE(r.out.find("\n1,1795600800123456789,2026-11-25T10:00:00.123456789Z,3,1,1001,5001,"
			     "0,7,SAR,2,12345,123.45,309,3.09,250\n"),
		  std::string::npos)
		<< r.out;
	EXPECT_NE(r.out.find("\n2,1795600860000000000,2026-11-25T10:01:00.000000000Z,3,2,1002,5002,"
			     "77,7,SAR,2,999999999999999,9999999999999.99,25000000000000,"
			     "250000000000.00,250\n"),
		  std::string::npos)
		<< r.out;
	EXPECT_NE(r.out.find(",8,BHD,4,1,0.0001,0,0.0000,250\n"), std::string::npos);
	EXPECT_NE(r.out.find(",8,JPY,0,1000000000000000,1000000000000000,25000000000000,"
			     "25000000000000,250\n"),
		  std::string::npos);
	EXPECT_NE(r.out.find(",7,KWD,3,1000000000000000,1000000000000.000,25000000000000,"
			     "25000000000.000,250\n"),
		  std::string::npos);
	EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTool, ExportFilters)
{
	build();
	auto before = snapshot();
	struct Case {
		std::vector<std::string> args;
		std::vector<uint64_t> seqs;
	} cases[] = {
		{{"--center", "1001"}, {1, 3, 5, 8, 10}},
		{{"--campaign", "8"}, {6, 7, 8}},
		{{"--campaign", "7", "--center", "1002"}, {2, 4}},
		{{"--campaign", "99"}, {}},
		// [from, to): 10:01:00 is in, 11:00:00 (seq 7) is out.
		{{"--from", "2026-11-25T10:01:00Z", "--to", "2026-11-25T11:00:00Z"}, {2, 3, 4, 5, 6}},
		{{"--from", "2026-11-25T13:01:00+03:00", "--to=2026-11-25T11:00:00.000000001Z"},
		 {2, 3, 4, 5, 6, 7}},
		{{"--from", std::to_string((kT0 + 3600) * kNs)}, {7, 8, 9, 10}},
		{{"--to", std::to_string(kT0 * kNs + 123456789)}, {}},
		{{"--to", std::to_string(kT0 * kNs + 123456790)}, {1}},
		{{"--from", "2026-11-25T10:00:00.123456789Z", "--to", "2026-11-25t10:00:00.2z"}, {1}},
		{{"--from", "2026-11-26T00:00:00Z"}, {10}},
		{{"--center", "1001", "--from", "2026-11-25T11:00:00Z"}, {8, 10}},
	};

	for (const auto &c : cases) {
		std::vector<std::string> args = {"export", dir_};
		args.insert(args.end(), c.args.begin(), c.args.end());
		Result r = run(args);
		std::string what;
		for (const auto &a : c.args)
			what += a + " ";
		EXPECT_EQ(r.code, 0) << what << r.err;
		EXPECT_EQ(csv_seqs(r.out), c.seqs) << what;
	}
	EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTool, ExportJsonAndOutputFile)
{
	build();
	auto before = snapshot();

	Result r = run({"export", dir_, "--format", "json", "--campaign", "7"});
	EXPECT_EQ(r.code, 0) << r.err;
	Json j = parse(r.out);
	ASSERT_EQ(j.type, Json::ARR);
	ASSERT_EQ(j.arr.size(), 5u);
	EXPECT_EQ(tx(j.path("0.seq")), "1");
	EXPECT_EQ(tx(j.path("0.accepted_ns")), "1795600800123456789");
	EXPECT_EQ(tx(j.path("0.accepted")), "2026-11-25T10:00:00.123456789Z");
	EXPECT_EQ(tx(j.path("0.center_id")), "1001");
	EXPECT_EQ(tx(j.path("0.donation_id")), "5001");
	EXPECT_EQ(tx(j.path("0.currency")), "SAR");
	EXPECT_EQ(tx(j.path("0.amount_minor")), "12345");
	EXPECT_EQ(tx(j.path("0.amount")), "123.45");
	EXPECT_EQ(tx(j.path("0.levy_minor")), "309");
	EXPECT_EQ(tx(j.path("0.levy")), "3.09");
	EXPECT_EQ(tx(j.path("0.rate_bp")), "250");
	EXPECT_EQ(tx(j.path("4.seq")), "5");
	EXPECT_EQ(tx(j.path("4.amount")), "1000000000000.000");

	// An empty selection is still a JSON array.
	r = run({"export", dir_, "--format=json", "--center", "4242"});
	EXPECT_EQ(r.code, 0);
	j = parse(r.out);
	EXPECT_EQ(j.type, Json::ARR);
	EXPECT_TRUE(j.arr.empty());

	// --output: the same bytes as stdout, nothing on stdout.
	Result csv = run({"export", dir_, "--center", "1001"});
	std::string file = work_ / "export.csv";
	r = run({"export", dir_, "--center", "1001", "--output", file});
	EXPECT_EQ(r.code, 0) << r.err;
	EXPECT_EQ(r.out, "");
	EXPECT_EQ(read_file(file), csv.out);

	// Never inside the ledger directory.
	r = run({"export", dir_, "--output", dir_ + "/" + seg_name(1)});
	EXPECT_EQ(r.code, 3);
	EXPECT_NE(r.err.find("inside the ledger directory"), std::string::npos) << r.err;
	r = run({"export", dir_, "--output", dir_ + "/x.csv"});
	EXPECT_EQ(r.code, 3);
	EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTool, ExportDamagedLedgerExportsWhatIsIntact)
{
	build();
	Bytes b = get(seg(5));
	b[64 + 80 + 50] ^= 0x80;  // seq 6
	put(seg(5), b);
	auto before = snapshot();

	Result r = run({"export", dir_});
	EXPECT_EQ(r.code, 1);
	EXPECT_EQ(csv_seqs(r.out), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
	EXPECT_NE(r.err.find(seg(5) + ": record CRC mismatch at byte offset 144 (record index 1)"),
		  std::string::npos)
		<< r.err;

	r = run({"export", dir_, "--format", "json"});
	EXPECT_EQ(r.code, 1);
	Json j = parse(r.out);  // the array is closed
	EXPECT_EQ(j.arr.size(), 5u);
	EXPECT_NE(r.err.find("byte offset 144"), std::string::npos);

	r = run({"totals", dir_, "--json"});
	EXPECT_EQ(r.code, 1);
	j = parse(r.out);
	EXPECT_EQ(tx(j.get("records")), "5");
	EXPECT_EQ(tx(j.get("complete")), "false");
	EXPECT_NE(r.err.find("byte offset 144"), std::string::npos);
	EXPECT_EQ(snapshot(), before);
}

// ---- totals ----------------------------------------------------------------

TEST_F(LedgerTool, TotalsExact)
{
	build();
	auto before = snapshot();
	struct Group {
		std::string campaign, currency;
		unsigned exp;
		uint64_t count = 0;
		int64_t amount = 0, levy = 0;
	};
	std::map<std::tuple<uint32_t, std::string, unsigned>, Group> want;
	for (uint64_t q = 1; q <= kN; q++) {
		const Spec &s = kRecs[q - 1];
		Group &g = want[{s.campaign, s.currency, s.exponent}];
		g.campaign = std::to_string(s.campaign);
		g.currency = s.currency;
		g.exp = s.exponent;
		g.count++;
		g.amount += s.amount;
		g.levy += amil_levy_minor(s.amount, 250);
	}
	ASSERT_EQ(want.size(), 5u);

	Result r = run({"totals", dir_, "--json"});
	EXPECT_EQ(r.code, 0) << r.err;
	Json j = parse(r.out);
	EXPECT_EQ(tx(j.get("records")), "10");
	EXPECT_EQ(tx(j.get("overflow")), "false");
	ASSERT_NE(j.get("groups"), nullptr);
	ASSERT_EQ(j.get("groups")->arr.size(), want.size());
	size_t i = 0;
	for (const auto &kv : want) {  // same order: campaign, currency, exponent
		const Group &g = kv.second;
		const Json &o = j.get("groups")->arr[i++];
		SCOPED_TRACE(g.campaign + " " + g.currency);
		EXPECT_EQ(tx(o.get("campaign_id")), g.campaign);
		EXPECT_EQ(tx(o.get("currency")), g.currency);
		EXPECT_EQ(tx(o.get("exponent")), std::to_string(g.exp));
		EXPECT_EQ(tx(o.get("count")), std::to_string(g.count));
		EXPECT_EQ(tx(o.get("amount_minor")), std::to_string(g.amount));
		EXPECT_EQ(tx(o.get("amount")), decimal(g.amount, g.exp));
		EXPECT_EQ(tx(o.get("levy_minor")), std::to_string(g.levy));
		EXPECT_EQ(tx(o.get("levy")), decimal(g.levy, g.exp));
	}
	// Spelled out, so the expectation does not share a bug with decimal().
	EXPECT_EQ(tx(j.path("groups.1.amount")), "20000000000123.44");      // 7 SAR 2
	EXPECT_EQ(tx(j.path("groups.0.amount")), "2000000000000.000");      // 7 KWD 3
	EXPECT_EQ(tx(j.path("groups.2.amount")), "0.0001");                 // 8 BHD 4
	EXPECT_EQ(tx(j.path("groups.3.amount")), "1000000000000005");       // 8 JPY 0
	EXPECT_EQ(tx(j.path("groups.4.amount")), "0.12");                   // 9 SAR 2

	r = run({"totals", dir_});
	EXPECT_EQ(r.code, 0);
	EXPECT_NE(r.out.find("20000000000123.44"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("records: 10\n"), std::string::npos);

	// Filters as export.
	r = run({"totals", dir_, "--json", "--campaign", "7", "--center", "1001"});
	EXPECT_EQ(r.code, 0);
	j = parse(r.out);
	EXPECT_EQ(tx(j.get("records")), "3");
	ASSERT_NE(j.get("groups"), nullptr) << r.out;
	ASSERT_EQ(j.get("groups")->arr.size(), 2u);
	EXPECT_EQ(tx(j.path("groups.0.currency")), "KWD");
	EXPECT_EQ(tx(j.path("groups.0.amount_minor")), "1000000000000000");
	EXPECT_EQ(tx(j.path("groups.1.amount_minor")), "1000000000012345");
	r = run({"totals", dir_, "--json", "--from", "2026-11-25T11:00:00Z"});
	j = parse(r.out);
	EXPECT_EQ(tx(j.get("records")), "4");
	EXPECT_EQ(snapshot(), before);
}

// 9224 x 10^15 > INT64_MAX: reported, never wrapped; other groups exact.
TEST_F(LedgerTool, TotalsOverflowReported)
{
	const uint64_t n = 9224;
	Bytes b = header(1);
	Spec big = {1001, 1, "USD", 2, k1e15, kT0 * kNs};
	Spec small = {1001, 2, "USD", 2, 42, kT0 * kNs};

	for (uint64_t q = 1; q <= n; q++) {
		big.accepted_ns = kT0 * kNs + q;
		append_rec(&b, rec_of(q, big));
	}
	append_rec(&b, rec_of(n + 1, small));
	put(seg(1), b);
	auto before = snapshot();

	Result r = run({"totals", dir_, "--json"});
	EXPECT_EQ(r.code, 3) << r.err;
	EXPECT_NE(r.err.find("exceeds int64"), std::string::npos) << r.err;
	Json j = parse(r.out);
	EXPECT_EQ(tx(j.get("overflow")), "true");
	EXPECT_EQ(tx(j.path("groups.0.count")), std::to_string(n));
	ASSERT_NE(j.path("groups.0.amount_minor"), nullptr) << r.out;
	EXPECT_EQ(j.path("groups.0.amount_minor")->type, Json::NUL);
	EXPECT_EQ(tx(j.path("groups.0.overflow")), "true");
	// The levy sum still fits and stays exact.
	EXPECT_EQ(tx(j.path("groups.0.levy_minor")), std::to_string(n * UINT64_C(25000000000000)));
	EXPECT_EQ(tx(j.path("groups.1.amount_minor")), "42");
	EXPECT_EQ(tx(j.path("groups.1.overflow")), "false");

	r = run({"totals", dir_});
	EXPECT_EQ(r.code, 3);
	EXPECT_NE(r.out.find("OVERFLOW"), std::string::npos) << r.out;
	// One record fewer is just below the limit (9223 x 10^15 < 2^63): exact.
	r = run({"totals", dir_, "--json", "--to", std::to_string(kT0 * kNs + n), "--campaign", "1"});
	EXPECT_EQ(r.code, 0) << r.err;
	j = parse(r.out);
	EXPECT_EQ(tx(j.path("groups.0.count")), "9223");
	EXPECT_EQ(tx(j.path("groups.0.amount_minor")), "9223000000000000000");
	EXPECT_EQ(tx(j.path("groups.0.amount")), "92230000000000000.00");
	EXPECT_EQ(snapshot(), before);
}

// ---- usage and errors ------------------------------------------------------

TEST_F(LedgerTool, UsageErrorsExit2)
{
	build();
	auto before = snapshot();
	const std::vector<std::vector<std::string>> bad = {
		{},
		{"frobnicate", dir_},
		{"verify"},
		{"verify", dir_, dir_},
		{"verify", dir_, "--bogus"},
		{"verify", dir_, "--format", "csv"},     // export-only option
		{"verify", dir_, "--center", "1"},       // filters are not for verify
		{"export", dir_, "--json"},              // export says --format json
		{"export", dir_, "--format", "xml"},
		{"export", dir_, "--from", "yesterday"},
		{"export", dir_, "--from", "2026-02-30T00:00:00Z"},
		{"export", dir_, "--from", "2026-11-25T24:00:00Z"},
		{"export", dir_, "--from", "2026-11-25T10:00:00"},   // no zone
		{"export", dir_, "--from", "2026-11-25T10:00:00.1234567891Z"},
		{"export", dir_, "--from", "1969-12-31T23:59:59Z"},
		{"export", dir_, "--from", "-5"},
		{"export", dir_, "--from", "2026-11-25T11:00:00Z", "--to", "2026-11-25T10:00:00Z"},
		{"export", dir_, "--center", "abc"},
		{"export", dir_, "--center", "4294967296"},
		{"export", dir_, "--campaign"},
		{"totals", dir_, "--node-id", "0"},
		{"totals", dir_, "--output", "x"},
		{"help", "nothing"},
	};

	for (const auto &args : bad) {
		Result r = run(args);
		std::string what;
		for (const auto &a : args)
			what += a + " ";
		EXPECT_EQ(r.code, 2) << what << "\n" << r.err;
		EXPECT_NE(r.err, "") << what;
		EXPECT_EQ(r.out, "") << what;
	}
	EXPECT_EQ(snapshot(), before);
}

TEST_F(LedgerTool, HelpExit0)
{
	for (const std::vector<std::string> &args :
	     std::vector<std::vector<std::string>>{{"--help"},
						   {"help"},
						   {"-h"},
						   {"help", "export"},
						   {"verify", "--help"},
						   {"export", "--help"},
						   {"totals", "-h"}}) {
		Result r = run(args);
		EXPECT_EQ(r.code, 0) << args[0];
		EXPECT_NE(r.out.find("usage: amil-ledger"), std::string::npos) << r.out;
		EXPECT_NE(r.out.find("Exit status"), std::string::npos) << r.out;
		EXPECT_NE(r.out.find("2  usage error"), std::string::npos);
	}
}

TEST_F(LedgerTool, MissingOrBadDirectoryExit3)
{
	Result r = run({"verify", dir_ + "/nope"});
	EXPECT_EQ(r.code, 3);
	EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
	EXPECT_EQ(r.out, "");

	ASSERT_TRUE(write_file(work_ / "plain", "x"));
	r = run({"totals", work_ / "plain"});
	EXPECT_EQ(r.code, 3);
	EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;

	if (geteuid() != 0) {
		build();
		ASSERT_EQ(chmod(seg(5).c_str(), 0), 0);
		r = run({"verify", dir_});
		EXPECT_EQ(r.code, 3);
		EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
		chmod(seg(5).c_str(), 0644);
	}
}

}  // namespace
