// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Integration test: amil-pktgen <-> amil-dataplane over net_memif, two real
// processes, no hugepages.
//
// The data plane is the memif server (one lcore, run to completion), the
// generator the client; the generator resolves the appliance's MAC by ARP,
// sends 100,000 frames at a paced 50,000 pps - 5 % duplicates, 2 % invalid
// spread over the five invalid kinds - and checks every ACK itself.  The
// mix is exact by construction (tools/pktgen/gen.h), so every count on both
// sides is known in advance:
//
//   frames 100000 = 93000 new valid + 5000 duplicates + 5 x 400 invalid
//   ACKs    98800 = 93000 ACCEPTED + 5000 DUPLICATE + 400 BAD_AMOUNT
//                   + 400 BAD_CURRENCY
//   silent   1200 = 400 bad tag + 400 unknown center + 400 truncated
//
// and lost = mismatched = unexpected = 0.  Both the generator's --json and
// the data plane's --stats-json must say exactly that.
//
// memif notes: with --no-huge the memif PMD shares its rings through memfd
// regions, which works without hugepages (zero-copy mode would not: it
// needs the mempool in shared hugepage memory, so it is not used).  The
// socket is a file in the test's temporary directory (socket-abstract=no),
// removed with the directory even when the watchdog fires.
//
// Time is bounded: 60 s for the data plane to come up, 150 s for the
// generator, 20 s to stop; the watchdog kills both past 280 s.

#include <gtest/gtest.h>

#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "integration_child.h"
#include "integration_json.h"

using namespace itest;

namespace {

std::string env_or_skip(const char *name)
{
	const char *v = getenv(name);

	return v != nullptr ? v : "";
}

bool wait_for_text(const std::string &path, const std::string &text, Child &c, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		if (read_file(path).find(text) != std::string::npos)
			return true;
		if (c.poll_exit())
			return false;
		sleep_ms(50);
	}
	return false;
}

const Json *at(const Json &j, const std::string &p)
{
	const Json *v = j.path(p);

	EXPECT_NE(nullptr, v) << "missing " << p;
	return v;
}

std::string num(const Json &j, const std::string &p)
{
	const Json *v = at(j, p);

	return v != nullptr ? v->text : "<missing>";
}

uint64_t u64(const Json &j, const std::string &p)
{
	return std::strtoull(num(j, p).c_str(), nullptr, 10);
}

} // namespace

TEST(PktgenMemif, HundredThousandDonationsEveryCountExact)
{
	const std::string dp = env_or_skip("AMIL_DATAPLANE"), pg = env_or_skip("AMIL_PKTGEN"),
			  centers = env_or_skip("AMIL_CENTERS");
	if (dp.empty() || pg.empty() || centers.empty())
		GTEST_SKIP() << "AMIL_DATAPLANE, AMIL_PKTGEN and AMIL_CENTERS are set by meson test";
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		GTEST_SKIP() << "needs two CPUs (one polling process on each)";

	Watchdog::get().arm(280, "PktgenMemif.HundredThousandDonationsEveryCountExact");
	TempDir dir;
	ASSERT_TRUE(dir.create("pktgen-memif"));
	const std::string pid = std::to_string(getpid());
	const std::string sock = dir / "memif.sock";
	const std::string dp_prefix = "amil-pgm-dp-" + pid, pg_prefix = "amil-pgm-pg-" + pid;
	Watchdog::get().add_path(dpdk_run_dir(dp_prefix));
	Watchdog::get().add_path(dpdk_run_dir(pg_prefix));

	Child dpc, pgc;
	ASSERT_EQ("", dpc.start({dp, "-l", "0", "--no-huge", "-m", "256", "--no-pci",
				 "--file-prefix", dp_prefix, "--log-level=lib.eal:warning", "--vdev",
				 "net_memif0,role=server,socket-abstract=no,socket=" + sock, "--",
				 "--ip", "198.18.0.1", "--centers", centers, "--dedupe-capacity",
				 "262144", "--stats-json", dir / "dp.json", "--ledger-dir", dir / "ledger"},
				dir / "dp.out", dir / "dp.err"));
	ASSERT_TRUE(wait_for_text(dir / "dp.out", "serving", dpc, 60000))
		<< "data plane did not come up (" << dpc.describe() << "):\n"
		<< read_file(dir / "dp.out") << read_file(dir / "dp.err");

	ASSERT_EQ("", pgc.start({pg, "-l", "1", "--no-huge", "-m", "256", "--no-pci",
				 "--file-prefix", pg_prefix, "--log-level=lib.eal:warning", "--vdev",
				 "net_memif0,role=client,socket-abstract=no,socket=" + sock, "--",
				 "--centers", centers, "--dst-ip", "198.18.0.1", "--src-ip",
				 "198.18.0.2", "--count", "100000", "--rate", "50000", "--dup-frac",
				 "0.05", "--invalid-frac", "0.02", "--ack-timeout", "2000", "--retries",
				 "3", "--seed", "7", "--no-live", "--json", dir / "pg.json"},
				dir / "pg.out", dir / "pg.err"));
	bool pg_done = pgc.wait_exit(150000);
	if (!pg_done)
		pgc.kill_hard();
	dpc.signal(SIGINT);
	bool dp_done = dpc.wait_exit(20000);
	if (!dp_done)
		dpc.kill_hard();
	const std::string pg_log = read_file(dir / "pg.out") + read_file(dir / "pg.err");
	const std::string dp_log = read_file(dir / "dp.out") + read_file(dir / "dp.err");
	ASSERT_TRUE(pg_done) << "generator did not finish in 150 s:\n" << pg_log;
	ASSERT_TRUE(dp_done) << "data plane did not stop in 20 s:\n" << dp_log;
	EXPECT_EQ("exit 0", pgc.describe()) << pg_log;
	EXPECT_EQ("exit 0", dpc.describe()) << dp_log;

	// ---- the generator's view ------------------------------------------
	Json pj, dj;
	std::string err;
	ASSERT_TRUE(JsonParser::parse(read_file(dir / "pg.json"), &pj, &err)) << err << "\n"
									  << pg_log;
	std::set<std::string> keys;
	for (const auto &kv : pj.obj)
		keys.insert(kv.first);
	EXPECT_EQ((std::set<std::string>{"sent", "acked", "accepted", "duplicate", "rejected",
					 "lost", "mismatched", "unexpected", "tx_pps", "ack_pps",
					 "duration_s", "latency_ns"}),
		  keys);
	std::set<std::string> lkeys;
	if (const Json *l = pj.get("latency_ns"))
		for (const auto &kv : l->obj)
			lkeys.insert(kv.first);
	EXPECT_EQ((std::set<std::string>{"p50", "p90", "p99", "p999", "max"}), lkeys);

	EXPECT_EQ("100000", num(pj, "sent")) << pg_log;
	EXPECT_EQ("98800", num(pj, "acked")) << pg_log;
	EXPECT_EQ("93000", num(pj, "accepted")) << pg_log;
	EXPECT_EQ("5000", num(pj, "duplicate")) << pg_log;
	EXPECT_EQ("800", num(pj, "rejected")) << pg_log;
	EXPECT_EQ("0", num(pj, "lost")) << pg_log;
	EXPECT_EQ("0", num(pj, "mismatched")) << pg_log;
	EXPECT_EQ("0", num(pj, "unexpected")) << pg_log;
	EXPECT_GT(u64(pj, "tx_pps"), 0u);
	EXPECT_LE(u64(pj, "tx_pps"), 50000u * 101 / 100) << "pacing above --rate";
	EXPECT_GT(u64(pj, "latency_ns.p50"), 0u);
	EXPECT_LE(u64(pj, "latency_ns.p50"), u64(pj, "latency_ns.p90"));
	EXPECT_LE(u64(pj, "latency_ns.p90"), u64(pj, "latency_ns.p99"));
	EXPECT_LE(u64(pj, "latency_ns.p99"), u64(pj, "latency_ns.p999"));
	EXPECT_LE(u64(pj, "latency_ns.p999"), u64(pj, "latency_ns.max"));
	// Not in the JSON (its keys are fixed) but in the summary.
	EXPECT_NE(std::string::npos, pg_log.find("expected-silent (no ACK by design) 1200;")) << pg_log;
	EXPECT_NE(std::string::npos, pg_log.find("rejected BAD_AMOUNT    400")) << pg_log;
	EXPECT_NE(std::string::npos, pg_log.find("rejected BAD_CURRENCY  400")) << pg_log;
	EXPECT_NE(std::string::npos, pg_log.find("0 retransmits")) << pg_log;

	// ---- the data plane's view -----------------------------------------
	ASSERT_TRUE(JsonParser::parse(read_file(dir / "dp.json"), &dj, &err)) << err << "\n"
									  << dp_log;
	EXPECT_EQ("93000", num(dj, "total.accepted")) << dp_log;
	EXPECT_EQ("5000", num(dj, "total.duplicate")) << dp_log;
	EXPECT_EQ("800", num(dj, "total.rejected")) << dp_log;
	EXPECT_EQ("400", num(dj, "total.rejected_by_reason.bad_amount"));
	EXPECT_EQ("400", num(dj, "total.rejected_by_reason.bad_currency"));
	EXPECT_EQ("400", num(dj, "total.dropped_by_reason.bad_len"));
	EXPECT_EQ("400", num(dj, "total.dropped_by_reason.unknown_center"));
	EXPECT_EQ("400", num(dj, "total.dropped_by_reason.bad_tag"));
	EXPECT_EQ("0", num(dj, "total.tx_full"));
	EXPECT_EQ("0", num(dj, "total.ring_full"));
	// Every frame the generator sent arrived; the rest of rx is ARP
	// requests, each answered (replies), and tx is every ACK plus those.
	uint64_t replies = u64(dj, "total.replies");
	EXPECT_GE(replies, 1u) << "the generator resolved the MAC by ARP";
	EXPECT_EQ(100000u + replies, u64(dj, "total.rx"));
	EXPECT_EQ(98800u + replies, u64(dj, "total.tx"));
	EXPECT_EQ("93000", num(dj, "currencies.0.accepted"));

	// ---- clean-up ----------------------------------------------------------
	dir.remove();
	EXPECT_FALSE(file_exists(sock)) << "memif socket left behind";
	for (const auto &p : {dp_prefix, pg_prefix}) {
		std::error_code ec;
		std::filesystem::remove_all(dpdk_run_dir(p), ec);  // EAL leaves its runtime dir
	}
	Watchdog::get().disarm();
}
