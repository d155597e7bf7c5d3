// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Unit tests of the donation worker (worker.c) and the counters it feeds
// (stats.c): frames built with lib/amil_frame.h, classified with net.c as
// the I/O lcore does, then one amil_worker_process() burst; every ACK is
// decoded and checked, and the counters, exact money totals and JSON output
// are compared with what was sent.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "amil_centers.h"
#include "amil_frame.h"
#include "amil_levy.h"
#include "amil_wire.h"
#include "eal_env.h"
#include "net.h"
#include "stats.h"
#include "worker.h"

#include <chrono>
#include <filesystem>
#include <unistd.h>

AMIL_TEST_MAIN_WITH_EAL("worker")

namespace {

const uint8_t kOurMac[6] = {2, 0, 0, 0, 0, 1};
const char kCenters[] = "11 000102030405060708090a0b0c0d0e0f\n"
			"22 f0e0d0c0b0a090807060504030201000\n";

struct Fixture : ::testing::Test {
	rte_mempool *pool = nullptr;
	amil_centers *centers = nullptr;
	amil_stats *stats = nullptr;
	amil_lcore_stats *st = nullptr;
	amil_worker *w = nullptr;
	amil_net_cfg net{};
	static int seq;

	void SetUp() override
	{
		char err[256];
		char name[32];

		snprintf(name, sizeof(name), "wpool%d", seq);
		pool = rte_pktmbuf_pool_create(name, 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					       SOCKET_ID_ANY);
		ASSERT_NE(pool, nullptr);
		centers = amil_centers_parse(kCenters, sizeof(kCenters) - 1, "t", err, sizeof(err));
		ASSERT_NE(centers, nullptr) << err;
		stats = amil_stats_create(1, 9);
		ASSERT_NE(stats, nullptr);
		st = amil_stats_lcore_add(stats, 0, 0, SOCKET_ID_ANY);
		ASSERT_NE(st, nullptr);
		memcpy(net.mac.addr_bytes, kOurMac, 6);
		net.has_ip4 = true;
		inet_pton(AF_INET, "198.18.0.1", &net.ip4);
		net.udp_port = htons(AMIL_WIRE_PORT_DEFAULT);
		amil_worker_conf c{};
		c.worker_id = 100 + seq++;
		c.socket_id = SOCKET_ID_ANY;
		c.centers = centers;
		c.rate_bp = AMIL_LEVY_RATE_BP_DEFAULT;
		c.node_id = 9;
		c.net = &net;
		c.nb_ports = 1;
		c.dedupe_capacity = 8;
		c.dedupe_retention_tsc = UINT64_MAX / 2;
		c.stats = st;
		c.ledger = ledger_for_test();
		c.held_capacity = 256;
		w = amil_worker_create(&c);
		ASSERT_NE(w, nullptr);
	}
	// Fixtures with a ledger return it here (created before the worker).
	virtual amil_ledger *ledger_for_test() { return nullptr; }
	void TearDown() override
	{
		amil_worker_free(w);
		amil_stats_free(stats);
		amil_centers_free(centers);
		rte_mempool_free(pool);
	}

	// A signed donation frame, classified as the I/O lcore would.
	rte_mbuf *frame(amil_donation d, uint32_t sign_as = 0, bool break_tag = false)
	{
		uint8_t payload[AMIL_WIRE_LEN], buf[256];
		amil_frame_addr a{};
		const uint8_t *key = amil_centers_key(centers, sign_as ? sign_as : d.center_id);
		static const uint8_t unknown_key[16] = {9};

		amil_wire_donation_encode(payload, &d);
		amil_wire_sign(payload, key ? key : unknown_key);
		if (break_tag)
			payload[60] ^= 0x80;
		memcpy(a.dst_mac, kOurMac, 6);
		a.src_mac[0] = 2, a.src_mac[5] = 2;
		inet_pton(AF_INET, "198.18.0.1", &a.dst_ip4);
		inet_pton(AF_INET, "198.18.0.2", &a.src_ip4);
		a.src_port = 40000;
		a.dst_port = AMIL_WIRE_PORT_DEFAULT;
		int len = amil_frame_build_udp(buf, sizeof(buf), &a, payload, sizeof(payload));
		EXPECT_GT(len, 0);
		rte_mbuf *m = rte_pktmbuf_alloc(pool);
		EXPECT_NE(m, nullptr);
		memcpy(rte_pktmbuf_append(m, (uint16_t)len), buf, (size_t)len);
		m->port = 0; /* set by the PMD on RX; ACKs leave on it */
		uint16_t off;
		uint8_t reason;
		EXPECT_EQ(amil_net_classify(&net, m, &off, &reason), AMIL_NET_DONATION);
		return m;
	}

	static amil_donation don(uint32_t center, uint64_t id, int64_t amount)
	{
		amil_donation d{};
		d.center_id = center;
		d.donation_id = id;
		d.donor_id = 5;
		d.campaign_id = 3;
		memcpy(d.currency, "USD", 3);
		d.exponent = 2;
		d.amount_minor = amount;
		d.sent_ns = 1000 + id;
		d.seq = (uint32_t)id;
		return d;
	}

	// Process @in as one burst; decode and verify every ACK.
	std::vector<amil_ack> run(std::vector<rte_mbuf *> in)
	{
		std::vector<rte_mbuf *> out(in.size());
		uint16_t n = amil_worker_process(w, in.data(), (uint16_t)in.size(), out.data(), 1);
		return decode(out, n);
	}

	// Decode and verify the ACK frames out[0..n), then free them.
	std::vector<amil_ack> decode(std::vector<rte_mbuf *> &out, uint16_t n)
	{
		std::vector<amil_ack> acks;
		for (uint16_t i = 0; i < n; i++) {
			amil_frame_addr a{};
			const uint8_t *p;
			size_t plen;
			EXPECT_EQ(amil_frame_parse_udp(rte_pktmbuf_mtod(out[i], uint8_t *),
						       out[i]->data_len, true, &a, &p, &plen),
				  0)
				<< "ACK frame checksums";
			EXPECT_EQ(plen, (size_t)AMIL_WIRE_LEN);
			EXPECT_EQ(amil_wire_check(p, plen, AMIL_MSG_ACK), 0);
			const uint8_t *key = amil_centers_key(centers, amil_wire_center_id(p));
			EXPECT_NE(key, nullptr);
			EXPECT_EQ(amil_wire_verify(p, key), 0) << "ACK tag";
			EXPECT_EQ(0, memcmp(a.dst_mac, "\x02\0\0\0\0\x02", 6)) << "back to the sender";
			EXPECT_EQ(a.dst_port, 40000);
			amil_ack ack;
			amil_wire_ack_decode(p, &ack);
			acks.push_back(ack);
		}
		rte_pktmbuf_free_bulk(out.data(), n);
		return acks;
	}
};
int Fixture::seq = 0;

TEST_F(Fixture, AcceptsDuplicatesRejectsAndDropsInOneBurst)
{
	amil_donation bad_amount = don(11, 4, 0);
	amil_donation bad_cur = don(22, 5, 100);
	memcpy(bad_cur.currency, "usd", 3);
	amil_donation conflict = don(11, 1, 999);
	amil_donation retransmit = don(11, 1, 1000);
	retransmit.sent_ns = 77;
	retransmit.seq = 78;

	auto acks = run({
		frame(don(11, 1, 1000)),          // ACCEPTED, levy 25
		frame(don(22, 2, 20)),            // ACCEPTED, levy 1 (half rounds up)
		frame(don(11, 3, 100), 0, true),  // bad tag: dropped
		frame(don(33, 9, 100)),           // unknown center: dropped
		frame(bad_amount),                // REJECTED BAD_AMOUNT
		frame(bad_cur),                   // REJECTED BAD_CURRENCY
		frame(retransmit),                // DUPLICATE of 1
		frame(conflict),                  // REJECTED CONFLICT
	});
	ASSERT_EQ(acks.size(), 6u);
	EXPECT_EQ(acks[0].status, AMIL_ACK_ACCEPTED);
	EXPECT_EQ(acks[0].levy_minor, 25);
	EXPECT_EQ(acks[0].amount_minor, 1000);
	EXPECT_EQ(acks[0].node_id, 9u);
	EXPECT_EQ(acks[0].sent_ns, 1001u);
	EXPECT_EQ(acks[1].levy_minor, 1);
	EXPECT_EQ(acks[1].center_id, 22u);
	EXPECT_EQ(acks[2].status, AMIL_ACK_REJECTED);
	EXPECT_EQ(acks[2].reason, AMIL_REASON_BAD_AMOUNT);
	EXPECT_EQ(acks[2].levy_minor, 0);
	EXPECT_EQ(acks[3].reason, AMIL_REASON_BAD_CURRENCY);
	EXPECT_EQ(acks[4].status, AMIL_ACK_DUPLICATE);
	EXPECT_EQ(acks[4].amount_minor, 1000);
	EXPECT_EQ(acks[4].levy_minor, 25);
	EXPECT_EQ(acks[4].sent_ns, 77u) << "sent_ns echoed from the retransmit";
	EXPECT_EQ(acks[4].seq, 78u);
	EXPECT_EQ(acks[5].reason, AMIL_REASON_CONFLICT);

	amil_worker_counters wc;
	amil_stats_worker_sum(stats, &wc);
	EXPECT_EQ(wc.rx, 8u);
	EXPECT_EQ(wc.tx, 6u);
	EXPECT_EQ(wc.accepted, 2u);
	EXPECT_EQ(wc.duplicate, 1u);
	EXPECT_EQ(wc.rejected[AMIL_REASON_BAD_AMOUNT], 1u);
	EXPECT_EQ(wc.rejected[AMIL_REASON_BAD_CURRENCY], 1u);
	EXPECT_EQ(wc.rejected[AMIL_REASON_CONFLICT], 1u);
	EXPECT_EQ(wc.drop[AMIL_DROP_BAD_TAG], 1u);
	EXPECT_EQ(wc.drop[AMIL_DROP_UNKNOWN_CENTER], 1u);
	EXPECT_EQ(amil_worker_dedupe_count(w), 2u);
}

TEST_F(Fixture, FullTableAnswersUnavailableAndKeepsEveryRecord)
{
	std::vector<rte_mbuf *> in;
	for (uint64_t id = 1; id <= 9; id++)
		in.push_back(frame(don(11, id, 100 * (int64_t)id)));
	auto acks = run(in);
	ASSERT_EQ(acks.size(), 9u);
	for (int i = 0; i < 8; i++)
		EXPECT_EQ(acks[i].status, AMIL_ACK_ACCEPTED) << i;
	EXPECT_EQ(acks[8].status, AMIL_ACK_REJECTED);
	EXPECT_EQ(acks[8].reason, AMIL_REASON_UNAVAILABLE);

	in.clear();
	for (uint64_t id = 1; id <= 8; id++)
		in.push_back(frame(don(11, id, 100 * (int64_t)id)));
	acks = run(in);
	ASSERT_EQ(acks.size(), 8u);
	for (int i = 0; i < 8; i++) {
		EXPECT_EQ(acks[i].status, AMIL_ACK_DUPLICATE) << i;
		EXPECT_EQ(acks[i].levy_minor, amil_levy_minor(100 * (i + 1), 250));
	}
}

TEST_F(Fixture, TotalsAreExactAndJsonCarriesThem)
{
	// 10^15 four times: 4 * 10^15 overflows nothing here, but the sum of
	// levies and amounts must come out digit for digit.
	std::vector<rte_mbuf *> in;
	for (uint64_t id = 1; id <= 4; id++)
		in.push_back(frame(don(22, id, AMIL_AMOUNT_MAX_MINOR)));
	amil_donation eur = don(11, 9, 333);
	memcpy(eur.currency, "EUR", 3);
	eur.exponent = 0;
	in.push_back(frame(eur));
	auto acks = run(in);
	ASSERT_EQ(acks.size(), 5u);

	char *buf = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ASSERT_EQ(amil_stats_write_json(stats, f), 0);
	fclose(f);
	std::string json(buf, len);
	free(buf);
	EXPECT_NE(json.find("{\"currency\": \"USD\", \"exponent\": 2, \"accepted\": 4, "
			    "\"amount_minor\": 4000000000000000, \"levy_minor\": 100000000000000}"),
		  std::string::npos)
		<< json;
	EXPECT_NE(json.find("{\"currency\": \"EUR\", \"exponent\": 0, \"accepted\": 1, "
			    "\"amount_minor\": 333, \"levy_minor\": 8}"),
		  std::string::npos)
		<< json;
	EXPECT_NE(json.find("\"node_id\": 9"), std::string::npos);

	f = open_memstream(&buf, &len);
	amil_stats_print_summary(stats, f);
	fclose(f);
	std::string sum(buf, len);
	free(buf);
	EXPECT_NE(sum.find("USD (exponent 2): 4 accepted, amount 40000000000000.00, levy "
			   "1000000000000.00"),
		  std::string::npos)
		<< sum;
	EXPECT_NE(sum.find("EUR (exponent 0): 1 accepted, amount 333, levy 8"), std::string::npos)
		<< sum;
}

TEST(Totals, SumsBeyondInt64StayExact)
{
	// 20000 donations of 10^15 = 2 * 10^19 > INT64_MAX: the 128-bit sums
	// must not wrap.
	amil_totals t{};
	for (int i = 0; i < 20000; i++)
		amil_totals_add(&t, amil_currency_index("SAR"), 2, AMIL_AMOUNT_MAX_MINOR,
				amil_levy_minor(AMIL_AMOUNT_MAX_MINOR, 250));
	int used = 0;
	for (auto &e : t.slot) {
		if (!e.used)
			continue;
		used++;
		EXPECT_EQ(e.count, 20000u);
		EXPECT_TRUE(e.amount_minor == (__int128)20000 * AMIL_AMOUNT_MAX_MINOR);
		EXPECT_TRUE(e.amount_minor > (__int128)INT64_MAX);
	}
	EXPECT_EQ(used, 1);
	EXPECT_EQ(t.overflow, 0u);
}

TEST(Totals, MoreCurrenciesThanSlotsAreCountedAsOverflow)
{
	amil_totals t{};
	char code[3] = {'A', 'A', 'A'};
	for (int i = 0; i < AMIL_TOTALS_SLOTS + 5; i++) {
		code[2] = (char)('A' + i % 26);
		code[1] = (char)('A' + i / 26);
		amil_totals_add(&t, amil_currency_index(code), 0, 1, 0);
	}
	EXPECT_EQ(t.overflow, 5u);
}

// ---- with a ledger: ACKs wait for the disk ---------------------------------

struct LedgerWorker : Fixture {
	std::string dir;
	amil_ledger *ledger = nullptr;
	amil_ledger_counters lc{};

	amil_ledger *ledger_for_test() override
	{
		char tmpl[] = "/tmp/amil-worker-ledger-XXXXXX";
		amil_ledger_params p{};

		if (mkdtemp(tmpl) == nullptr)
			return nullptr;
		dir = tmpl;
		p.dir = tmpl;
		p.node_id = 9;
		p.nb_lanes = 1;
		p.lane_size = 256;
		p.batch_max = 64;
		p.max_wait_ns = 0;
		p.segment_bytes = 1 << 20;
		p.counters = &lc;
		ledger = amil_ledger_create(&p);
		return ledger;
	}
	void TearDown() override
	{
		amil_ledger_stop(ledger);
		Fixture::TearDown();  // frees the worker and what it still holds
		amil_ledger_free(ledger);
		std::error_code ec;
		std::filesystem::remove_all(dir, ec);
	}
	// Release until @n ACKs came out (the writer runs on its own thread).
	std::vector<amil_ack> release(size_t n, int timeout_ms = 10000)
	{
		std::vector<rte_mbuf *> out(AMIL_WORKER_BURST_MAX);
		std::vector<amil_ack> acks;
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);

		while (acks.size() < n && std::chrono::steady_clock::now() < end) {
			uint16_t k = amil_worker_release(w, out.data(), AMIL_WORKER_BURST_MAX);
			auto got = decode(out, k);
			acks.insert(acks.end(), got.begin(), got.end());
			if (k == 0)
				usleep(100);
		}
		return acks;
	}
	std::vector<amil_ledger_rec> records()
	{
		std::vector<amil_ledger_rec> v;
		amil_ledger_scan_opts o{};
		amil_ledger_scan_result r;

		o.on_record = [](void *arg, const amil_ledger_rec *rec) {
			static_cast<std::vector<amil_ledger_rec> *>(arg)->push_back(*rec);
			return 0;
		};
		o.arg = &v;
		EXPECT_EQ(amil_ledger_scan(dir.c_str(), &o, &r), 0);
		return v;
	}
};

TEST_F(LedgerWorker, AcksWaitUntilTheRecordIsDurable)
{
	ASSERT_NE(ledger, nullptr);
	// The writer is not running: nothing may leave.
	auto none = run({frame(don(11, 1, 1000)), frame(don(22, 2, 400))});
	EXPECT_TRUE(none.empty());
	EXPECT_EQ(amil_worker_held(w), 2u);
	EXPECT_EQ(amil_worker_room(w), 254u);
	EXPECT_TRUE(release(1, 200).empty());
	EXPECT_EQ(st->worker.accepted, 0u) << "counted before durable";

	ASSERT_EQ(amil_ledger_start(ledger, 1), 0);
	auto acks = release(2);
	ASSERT_EQ(acks.size(), 2u);
	EXPECT_EQ(acks[0].donation_id, 1u);
	EXPECT_EQ(acks[0].status, AMIL_ACK_ACCEPTED);
	EXPECT_EQ(acks[0].levy_minor, 25);
	EXPECT_EQ(acks[1].donation_id, 2u);
	EXPECT_EQ(acks[1].levy_minor, 10);
	EXPECT_EQ(st->worker.accepted, 2u);
	EXPECT_EQ(amil_worker_held(w), 0u);

	auto recs = records();
	ASSERT_EQ(recs.size(), 2u);
	EXPECT_EQ(recs[0].seq, 1u);
	EXPECT_EQ(recs[0].center_id, 11u);
	EXPECT_EQ(recs[0].donation_id, 1u);
	EXPECT_EQ(recs[0].amount_minor, 1000);
	EXPECT_EQ(recs[0].levy_minor, 25);
	EXPECT_EQ(recs[0].node_id, 9u);
	EXPECT_EQ(recs[0].rate_bp, AMIL_LEVY_RATE_BP_DEFAULT);
	EXPECT_EQ(recs[1].seq, 2u);
	EXPECT_EQ(recs[1].donation_id, 2u);
}

TEST_F(LedgerWorker, DuplicateLeavesOnlyAfterItsOriginal)
{
	ASSERT_NE(ledger, nullptr);
	EXPECT_TRUE(run({frame(don(11, 1, 1000))}).empty());
	EXPECT_TRUE(run({frame(don(11, 1, 1000)), frame(don(11, 1, 5))}).empty());
	ASSERT_EQ(amil_ledger_start(ledger, 1), 0);
	auto acks = release(3);
	ASSERT_EQ(acks.size(), 3u);
	EXPECT_EQ(acks[0].status, AMIL_ACK_ACCEPTED);
	EXPECT_EQ(acks[1].status, AMIL_ACK_DUPLICATE);
	EXPECT_EQ(acks[1].levy_minor, 25);
	EXPECT_EQ(acks[2].status, AMIL_ACK_REJECTED);
	EXPECT_EQ(acks[2].reason, AMIL_REASON_CONFLICT);
	EXPECT_EQ(records().size(), 1u);
}

// The disk refuses a batch: its donations are answered UNAVAILABLE, and so
// are the DUPLICATE/CONFLICT answers that vouched for them; a retransmit
// afterwards is new and recorded once.
TEST_F(LedgerWorker, RefusedRecordsAnswerUnavailableAndAreForgotten)
{
	ASSERT_NE(ledger, nullptr);
	amil_ledger_fail_next(ledger, ENOSPC, 1);
	// Both bursts' records (1, 2 and 3) are in the lane before the writer
	// starts, so its first batch holds all three, and fails.
	EXPECT_TRUE(run({frame(don(11, 1, 1000)), frame(don(22, 2, 400))}).empty());
	EXPECT_TRUE(run({frame(don(11, 1, 1000)), frame(don(11, 1, 7)), frame(don(22, 3, 80))})
			    .empty());
	ASSERT_EQ(amil_ledger_start(ledger, 1), 0);
	auto acks = release(5);
	ASSERT_EQ(acks.size(), 5u);
	const uint64_t ids[] = {1, 2, 1, 1, 3};
	for (int i = 0; i < 5; i++) {
		SCOPED_TRACE(i);
		EXPECT_EQ(acks[i].donation_id, ids[i]);
		EXPECT_EQ(acks[i].status, AMIL_ACK_REJECTED);
		EXPECT_EQ(acks[i].reason, AMIL_REASON_UNAVAILABLE);
		EXPECT_EQ(acks[i].levy_minor, 0);
		EXPECT_EQ(acks[i].amount_minor, 0);
	}
	EXPECT_EQ(st->worker.rejected[AMIL_REASON_UNAVAILABLE], 5u);
	EXPECT_EQ(st->worker.accepted, 0u);
	EXPECT_EQ(st->worker.duplicate, 0u);
	EXPECT_EQ(lc.refused, 3u);
	EXPECT_EQ(lc.write_errors, 1u);
	EXPECT_EQ(lc.last_errno, (uint64_t)ENOSPC);
	EXPECT_EQ(lc.alarm, 1u);
	EXPECT_TRUE(records().empty());

	// Retransmits of the refused ones are new now, and the disk takes them.
	EXPECT_TRUE(run({frame(don(11, 1, 1000)), frame(don(22, 2, 400)), frame(don(22, 3, 80))})
			    .empty());
	acks = release(3);
	ASSERT_EQ(acks.size(), 3u);
	for (const auto &a : acks)
		EXPECT_EQ(a.status, AMIL_ACK_ACCEPTED) << a.donation_id;
	EXPECT_EQ(st->worker.accepted, 3u);
	EXPECT_EQ(lc.alarm, 0u) << "cleared by the durable batch";
	auto recs = records();
	ASSERT_EQ(recs.size(), 3u);
	EXPECT_EQ(recs[0].donation_id, 1u);
	EXPECT_EQ(recs[0].seq, 1u) << "refused records take no sequence number";
	EXPECT_EQ(recs[2].donation_id, 3u);
	EXPECT_EQ(recs[2].seq, 3u);
}

TEST_F(LedgerWorker, RestoredRecordAnswersDuplicateWithItsOriginalLevy)
{
	ASSERT_NE(ledger, nullptr);
	amil_ledger_rec r{};
	r.center_id = 11;
	r.donation_id = 42;
	r.donor_id = 5;
	r.campaign_id = 3;
	memcpy(r.currency, "USD", 3);
	r.exponent = 2;
	r.amount_minor = 1000;
	r.levy_minor = 30;  // recorded at another rate: the original wins
	ASSERT_EQ(amil_worker_restore(w, &r, 1), 0);
	ASSERT_EQ(amil_ledger_start(ledger, 1), 0);
	EXPECT_TRUE(run({frame(don(11, 42, 1000))}).empty());
	auto acks = release(1);
	ASSERT_EQ(acks.size(), 1u);
	EXPECT_EQ(acks[0].status, AMIL_ACK_DUPLICATE);
	EXPECT_EQ(acks[0].levy_minor, 30);
	EXPECT_TRUE(records().empty());
}

} // namespace
