// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Integration: amil-donate (kernel UDP sockets) <-> amil-dataplane
// (net_af_packet) over a veth pair between two network namespaces.
//
//   ns amil-ns-<pid>-a                      ns amil-ns-<pid>-b
//   amil-dataplane --ip 198.18.0.1          amil-donate --server 198.18.0.1
//   --ip6 2001:2::1, af_packet on veth a    veth b: 198.18.0.2/24, 2001:2::2/64
//   (the kernel side of veth a has no
//    address: the data plane owns it)
//
// So the whole kernel path is exercised: the client's kernel resolves the
// node by ARP / IPv6 neighbour discovery (answered by the data plane),
// sends real UDP, and receives the ACKs through its routing and socket
// layers.  Needs root (namespaces, veth, af_packet); skips otherwise.
//
// Checksums: veth offloads TX checksums, so a UDP datagram from the
// client's kernel reaches the af_packet socket with only the pseudo-header
// sum in its checksum field (CHECKSUM_PARTIAL).  The data plane verifies
// UDP checksums in software and would drop every donation as bad_udp_csum,
// so the test turns TX checksum offload off on the client's veth
// (ethtool -K <veth-b> tx off) and asserts bad_udp_csum stays 0.
//
// Every wait is bounded; TearDown kills the data plane and deletes both
// namespaces (which removes the veth pair) even when a check failed.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "amil_levy.h"
#include "integration_child.h"
#include "integration_json.h"

using namespace itest;

namespace {

const char kKeyHex[] = "000102030405060708090a0b0c0d0e0f";
const char kOtherKeyHex[] = "0f0e0d0c0b0a09080706050403020100";
const char kCenter[] = "1001";
const char kIp4[] = "198.18.0.1", kClientIp4[] = "198.18.0.2";
const char kIp6[] = "2001:2::1", kClientIp6[] = "2001:2::2";
const uint32_t kNodeId = 3;
const uint32_t kRateBp = 250;  // the data plane's default
const int kCmdMs = 20000;      // any ip/ethtool command
const int kDonateMs = 60000;   // one amil-donate run (200 donations included)
const int kStartMs = 30000;    // data plane up (telemetry answering)
const int kExitMs = 20000;     // data plane gone after SIGTERM

std::string find_tool(const std::string &name)
{
	std::string path = getenv("PATH") != nullptr ? getenv("PATH") : "";

	path += ":/usr/sbin:/sbin:/usr/bin:/bin";
	std::stringstream ss(path);
	std::string dir;
	while (std::getline(ss, dir, ':')) {
		std::string p = dir + "/" + name;
		if (!dir.empty() && access(p.c_str(), X_OK) == 0)
			return p;
	}
	return "";
}

struct Result {
	int code = -1;  // exit status, or -1 when it did not exit normally
	std::string out, err;
	std::string describe;
};

class DonateVeth : public ::testing::Test {
protected:
	void SetUp() override
	{
		const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();

		Watchdog::get().arm(240, info->name());
		if (geteuid() != 0)
			GTEST_SKIP() << "needs root for network namespaces and af_packet";
		dataplane_ = getenv("AMIL_DATAPLANE") != nullptr ? getenv("AMIL_DATAPLANE") : "";
		donate_ = getenv("AMIL_DONATE") != nullptr ? getenv("AMIL_DONATE") : "";
		ASSERT_FALSE(dataplane_.empty() || donate_.empty())
			<< "set AMIL_DATAPLANE and AMIL_DONATE (meson test does)";
		ip_ = find_tool("ip");
		if (ip_.empty())
			GTEST_SKIP() << "iproute2 'ip' not found";
		ethtool_ = find_tool("ethtool");
		ASSERT_FALSE(ethtool_.empty())
			<< "ethtool is needed to turn off TX checksum offload on the veth "
			   "(apt-get install ethtool; tools/install-deps.sh)";
		ASSERT_TRUE(dir_.create("donate-veth"));

		std::string id = std::to_string(getpid());
		ns_a_ = "amil-ns-" + id + "-a";
		ns_b_ = "amil-ns-" + id + "-b";
		veth_a_ = "amv" + id + "a";
		veth_b_ = "amv" + id + "b";
		prefix_ = "amil-donate-veth-" + id + "-" + std::to_string(runs_++);
		Watchdog::get().add_path(dpdk_run_dir(prefix_));

		Result r = cmd({ip_, "netns", "add", ns_a_});
		if (r.code != 0)
			GTEST_SKIP() << "cannot create a network namespace here: " << r.err;
		ns_made_ = true;
		ASSERT_EQ(cmd({ip_, "netns", "add", ns_b_}).code, 0);
		must({ip_, "link", "add", veth_a_, "type", "veth", "peer", "name", veth_b_});
		// Until it is moved into ns A, the pair lives here: remove it in
		// TearDown if a step below fails.
		veth_in_root_ = true;
		must({ip_, "link", "set", veth_a_, "netns", ns_a_});
		must({ip_, "link", "set", veth_b_, "netns", ns_b_});
		veth_in_root_ = false;

		// ns A: no address on the kernel side, and no IPv6 either, so the
		// kernel neither answers for nor runs DAD on what the data plane
		// owns.  (Best effort: the data plane works without it.)
		cmd({ip_, "netns", "exec", ns_a_, "sysctl", "-qw",
		     "net.ipv6.conf." + veth_a_ + ".disable_ipv6=1"});
		must({ip_, "-n", ns_a_, "link", "set", "lo", "up"});
		must({ip_, "-n", ns_a_, "link", "set", veth_a_, "up"});
		// ns B: the center.  nodad: usable at once.
		must({ip_, "-n", ns_b_, "link", "set", "lo", "up"});
		must({ip_, "-n", ns_b_, "addr", "add", std::string(kClientIp4) + "/24", "dev", veth_b_});
		must({ip_, "-n", ns_b_, "-6", "addr", "add", std::string(kClientIp6) + "/64", "dev",
		      veth_b_, "nodad"});
		must({ip_, "netns", "exec", ns_b_, ethtool_, "-K", veth_b_, "tx", "off"});
		must({ip_, "-n", ns_b_, "link", "set", veth_b_, "up"});

		mac_a_ = link_mac(ns_a_, veth_a_);
		ASSERT_EQ(mac_a_.size(), 17u) << "no MAC for " << veth_a_;
		ASSERT_GE(link_mtu(ns_b_, veth_b_), 1500) << "veth MTU too small for AMIL/1 frames";

		// Centers file and the center's key file, 0600 like the real ones.
		ASSERT_TRUE(write_file(dir_ / "centers.txt",
				       std::string(kCenter) + " " + kKeyHex + "\n1002 " + kOtherKeyHex +
					       "\n"));
		ASSERT_TRUE(write_file(dir_ / "center.key", std::string(kKeyHex) + "\n"));
		ASSERT_TRUE(write_file(dir_ / "wrong.key", std::string(kOtherKeyHex) + "\n"));
		chmod((dir_ / "center.key").c_str(), 0600);
		chmod((dir_ / "wrong.key").c_str(), 0600);

		start_dataplane();
	}

	void TearDown() override
	{
		if (dp_.pid() > 0 && !dp_.exited()) {
			dp_.signal(SIGTERM);
			if (!dp_.wait_exit(kExitMs))
				dp_.kill_hard();
		}
		tel_.close_fd();
		// Deleting a namespace destroys the veth end in it, and with it
		// the peer.
		if (veth_in_root_)
			cmd({ip_, "link", "del", veth_a_});
		if (ns_made_) {
			cmd({ip_, "netns", "del", ns_a_});
			cmd({ip_, "netns", "del", ns_b_});
		}
		if (!prefix_.empty()) {
			std::error_code ec;
			std::filesystem::remove_all(dpdk_run_dir(prefix_), ec);
		}
		Watchdog::get().disarm();
	}

	// Run a command to completion (bounded), capturing its output.
	Result cmd(const std::vector<std::string> &argv, int timeout_ms = kCmdMs)
	{
		Result r;
		Child c;
		std::string o = dir_ / ("cmd" + std::to_string(ncmd_) + ".out");
		std::string e = dir_ / ("cmd" + std::to_string(ncmd_++) + ".err");
		std::string why = c.start(argv, o, e);

		if (!why.empty()) {
			r.err = why;
			return r;
		}
		if (!c.wait_exit(timeout_ms))
			c.kill_hard();
		r.out = read_file(o);
		r.err = read_file(e);
		r.describe = c.describe();
		if (WIFEXITED(c.status()))
			r.code = WEXITSTATUS(c.status());
		std::remove(o.c_str());
		std::remove(e.c_str());
		return r;
	}

	void must(const std::vector<std::string> &argv)
	{
		Result r = cmd(argv);
		std::string line;

		for (const auto &a : argv)
			line += a + " ";
		ASSERT_EQ(r.code, 0) << line << ": " << r.describe << "\n" << r.out << r.err;
	}

	std::string link_mac(const std::string &ns, const std::string &dev)
	{
		Result r = cmd({ip_, "-n", ns, "link", "show", dev});
		size_t p = r.out.find("link/ether ");

		return p == std::string::npos ? "" : r.out.substr(p + 11, 17);
	}

	int link_mtu(const std::string &ns, const std::string &dev)
	{
		Result r = cmd({ip_, "-n", ns, "link", "show", dev});
		size_t p = r.out.find(" mtu ");

		return p == std::string::npos ? 0 : atoi(r.out.c_str() + p + 5);
	}

	std::string dp_output()
	{
		return "\n--- amil-dataplane stdout ---\n" + read_file(dir_ / "dp.out") +
		       "--- stderr ---\n" + read_file(dir_ / "dp.err");
	}

	void start_dataplane()
	{
		std::string sock = dpdk_run_dir(prefix_) + "/dpdk_telemetry.v2", err;
		std::vector<std::string> argv = {
			ip_, "netns", "exec", ns_a_, dataplane_, "-l", "0", "--no-huge", "-m", "512",
			"--no-pci", "--file-prefix", prefix_, "--log-level=lib.eal:warning", "--vdev",
			"net_af_packet0,iface=" + veth_a_, "--", "--ip", kIp4, "--ip6", kIp6,
			"--centers", dir_ / "centers.txt", "--node-id", std::to_string(kNodeId),
			"--currencies", "SAR,USD,KWD", "--stats-json", dir_ / "stats.json",
			"--dedupe-capacity", "4096", "--ledger-dir", dir_ / "ledger"};
		int64_t end = now_ms() + kStartMs;

		ASSERT_EQ(dp_.start(argv, dir_ / "dp.out", dir_ / "dp.err"), "");
		for (;;) {
			ASSERT_FALSE(dp_.poll_exit())
				<< "amil-dataplane exited early (" << dp_.describe() << ")" << dp_output();
			ASSERT_LT(now_ms(), end) << "amil-dataplane not up within " << kStartMs << " ms"
						 << dp_output();
			if (!tel_.connected() && !tel_.connect_to(sock).empty()) {
				sleep_ms(50);
				continue;
			}
			Json j;
			if (JsonParser::parse(tel_.query("/amil/stats"), &j, &err) &&
			    j.path("/amil/stats.port_rx") != nullptr)
				break;
			sleep_ms(50);  // the commands are not registered yet
		}
	}

	// A counter of /amil/stats ("accepted", "drop_bad_tag", ...).
	uint64_t stat(const std::string &key)
	{
		Json j;
		std::string err, r = tel_.query("/amil/stats");
		const Json *v;

		EXPECT_TRUE(JsonParser::parse(r, &j, &err)) << err << ": " << r;
		v = j.path("/amil/stats." + key);
		EXPECT_NE(v, nullptr) << "no " << key << " in " << r;
		return v != nullptr ? std::stoull(v->text) : UINT64_MAX;
	}

	// Stop the data plane (SIGTERM) and read its --stats-json file.
	void stop_dataplane(Json *stats)
	{
		std::string err;

		tel_.close_fd();
		dp_.signal(SIGTERM);
		ASSERT_TRUE(dp_.wait_exit(kExitMs))
			<< "amil-dataplane still running " << kExitMs << " ms after SIGTERM"
			<< dp_output();
		ASSERT_TRUE(WIFEXITED(dp_.status()) && WEXITSTATUS(dp_.status()) == 0)
			<< dp_.describe() << dp_output();
		std::string s = read_file(dir_ / "stats.json");
		ASSERT_TRUE(JsonParser::parse(s, stats, &err)) << err << ":\n" << s;
	}

	// amil-donate inside ns B with our center's connection flags.
	Result donate(const std::vector<std::string> &args, const std::string &key = "center.key")
	{
		std::vector<std::string> argv = {ip_, "netns", "exec", ns_b_, donate_,
						 "--center", kCenter, "--key-file", dir_ / key};

		argv.insert(argv.end(), args.begin(), args.end());
		return cmd(argv, kDonateMs);
	}

	std::vector<std::string> one(const char *server, const std::string &id,
				     const std::string &amount, const char *currency = "SAR")
	{
		return {"--server", server, "--donation-id", id, "--amount", amount, "--currency",
			currency, "--attempts", "5"};
	}

	// The neighbour entry of @addr in ns B: lladdr and a usable state.
	void expect_resolved(const char *family, const char *addr)
	{
		Result r = cmd({ip_, "-n", ns_b_, family, "neigh", "show", addr, "dev", veth_b_});

		EXPECT_EQ(r.code, 0) << r.err;
		EXPECT_NE(r.out.find("lladdr " + mac_a_), std::string::npos)
			<< addr << " not resolved to the data plane's MAC " << mac_a_ << ": '" << r.out
			<< "'";
		EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
		EXPECT_EQ(r.out.find("INCOMPLETE"), std::string::npos) << r.out;
	}

	static int runs_;
	TempDir dir_;
	Child dp_;
	Telemetry tel_;
	std::string dataplane_, donate_, ip_, ethtool_;
	std::string ns_a_, ns_b_, veth_a_, veth_b_, prefix_, mac_a_;
	bool ns_made_ = false, veth_in_root_ = false;
	int ncmd_ = 0;
};

int DonateVeth::runs_ = 0;

std::vector<std::string> lines(const std::string &s)
{
	std::vector<std::string> v;
	std::stringstream ss(s);
	std::string l;

	while (std::getline(ss, l))
		v.push_back(l);
	return v;
}

uint64_t num(const Json &j, const std::string &key)
{
	const Json *v = j.path(key);

	EXPECT_NE(v, nullptr) << "no " << key;
	return v != nullptr && v->type == Json::NUM ? std::stoull(v->text) : UINT64_MAX;
}

std::string str(const Json &j, const std::string &key)
{
	const Json *v = j.path(key);

	EXPECT_NE(v, nullptr) << "no " << key;
	return v != nullptr && v->type == Json::STR ? v->text : "";
}

}  // namespace

TEST_F(DonateVeth, Ipv4AcceptedDuplicateConflictOverArp)
{
	Result r = donate(one(kIp4, "42", "1000"));
	ASSERT_EQ(r.code, 0) << r.describe << "\n" << r.out << r.err << dp_output();
	EXPECT_EQ(r.out, "donation 42: ACCEPTED, levy 25 of 1000 (minor units), node 3\n");

	// The same donation again (a retransmission from a new process):
	// recorded once, answered with the original levy.
	r = donate(one(kIp4, "42", "1000"));
	EXPECT_EQ(r.code, 0) << r.out << r.err;
	EXPECT_EQ(r.out, "donation 42: DUPLICATE, levy 25 of 1000 (minor units), node 3 "
			 "(recorded earlier; original amount and levy)\n");

	// Same id, other amount: CONFLICT, exit 1.
	r = donate(one(kIp4, "42", "2000"));
	EXPECT_EQ(r.code, 1) << r.out << r.err;
	EXPECT_EQ(r.out, "donation 42: REJECTED (CONFLICT), node 3\n");

	// A currency outside the node's allow-list: REJECTED by the node.
	r = donate(one(kIp4, "44", "1000", "EUR"));
	EXPECT_EQ(r.code, 1) << r.out << r.err;
	EXPECT_EQ(r.out, "donation 44: REJECTED (BAD_CURRENCY), node 3\n");

	// The worked example of docs/protocol.md, in JSON: 12345 -> levy 309.
	r = donate({"--server", kIp4, "--donation-id", "7", "--amount", "12345", "--currency", "SAR",
		    "--exponent", "2", "--campaign", "3", "--json"});
	ASSERT_EQ(r.code, 0) << r.out << r.err;
	Json j;
	std::string err;
	ASSERT_TRUE(JsonParser::parse(r.out, &j, &err)) << err << ": " << r.out;
	EXPECT_EQ(str(j, "status"), "ACCEPTED");
	EXPECT_EQ(str(j, "reason"), "NONE");
	EXPECT_EQ(num(j, "donation_id"), 7u);
	EXPECT_EQ(num(j, "levy_minor"), 309u);
	EXPECT_EQ(num(j, "amount_minor"), 12345u);
	EXPECT_EQ(num(j, "node_id"), kNodeId);
	EXPECT_EQ(num(j, "attempts"), 1u);

	expect_resolved("-4", kIp4);
	EXPECT_EQ(stat("accepted"), 2u);
	EXPECT_EQ(stat("duplicate"), 1u);
	EXPECT_EQ(stat("rejected_conflict"), 1u);
	EXPECT_EQ(stat("rejected_bad_currency"), 1u);
	EXPECT_EQ(stat("drop_bad_udp_csum"), 0u) << "partial checksums reached the data plane";
	EXPECT_EQ(stat("drop_bad_tag"), 0u);
	EXPECT_GE(stat("replies"), 1u);  // at least the ARP reply

	Json s;
	ASSERT_NO_FATAL_FAILURE(stop_dataplane(&s));
	EXPECT_EQ(num(s, "total.accepted"), 2u);
	EXPECT_EQ(num(s, "total.duplicate"), 1u);
	EXPECT_EQ(num(s, "total.rejected"), 2u);
}

TEST_F(DonateVeth, CsvBatchOf200AllAnsweredThenAllDuplicate)
{
	const int n = 200;
	std::string csv = "donation_id,amount,currency,exponent,campaign,donor\n";
	std::map<uint64_t, int64_t> amount;
	int64_t sar_amount = 0, sar_levy = 0, usd_amount = 0, usd_levy = 0;

	for (int i = 1; i <= n; i++) {
		int64_t a = (int64_t)i * 9973 + (i % 7 == 0 ? 1000000000000LL : 19);
		bool usd = i % 3 == 0;

		amount[(uint64_t)i + 1000] = a;
		(usd ? usd_amount : sar_amount) += a;
		(usd ? usd_levy : sar_levy) += amil_levy_minor(a, kRateBp);
		csv += std::to_string(i + 1000) + "," + std::to_string(a) + "," +
		       (usd ? "USD" : "SAR") + ",2," + std::to_string(i % 5) + "," +
		       std::to_string(i % 2 ? 0 : 500 + i) + "\n";
	}
	ASSERT_TRUE(write_file(dir_ / "donations.csv", csv));

	for (const char *want : {"ACCEPTED", "DUPLICATE"}) {
		Result r = donate({"--server", kIp4, "--csv", dir_ / "donations.csv", "--json"});
		ASSERT_EQ(r.code, 0) << want << ": " << r.describe << "\n" << r.out << r.err
				     << dp_output();
		std::vector<std::string> out = lines(r.out);
		ASSERT_EQ(out.size(), (size_t)n) << r.out;
		std::map<uint64_t, int> seen;
		for (const auto &l : out) {
			Json j;
			std::string err;

			ASSERT_TRUE(JsonParser::parse(l, &j, &err)) << err << ": " << l;
			uint64_t id = num(j, "donation_id");
			ASSERT_EQ(amount.count(id), 1u) << l;
			seen[id]++;
			EXPECT_EQ(str(j, "status"), want) << l;
			EXPECT_EQ((int64_t)num(j, "amount_minor"), amount[id]) << l;
			EXPECT_EQ((int64_t)num(j, "levy_minor"), amil_levy_minor(amount[id], kRateBp))
				<< l;
			EXPECT_EQ(num(j, "line"), id - 1000 + 1) << l;
		}
		EXPECT_EQ(seen.size(), (size_t)n);
		EXPECT_NE(r.err.find(std::to_string(n) + " donations: " +
				     (std::string(want) == "ACCEPTED" ? "200 accepted, 0 duplicate"
								      : "0 accepted, 200 duplicate") +
				     ", 0 rejected, 0 unanswered"),
			  std::string::npos)
			<< r.err;
	}
	EXPECT_EQ(stat("accepted"), (uint64_t)n);
	EXPECT_EQ(stat("duplicate"), (uint64_t)n);
	EXPECT_EQ(stat("rejected"), 0u);
	EXPECT_EQ(stat("drop_bad_udp_csum"), 0u);

	// The node's per-currency totals add up to exactly what we sent.
	Json s;
	ASSERT_NO_FATAL_FAILURE(stop_dataplane(&s));
	EXPECT_EQ(num(s, "total.accepted"), (uint64_t)n);
	const Json *cur = s.get("currencies");
	ASSERT_NE(cur, nullptr);
	int found = 0;
	for (const auto &c : cur->arr) {
		std::string code = str(c, "currency");
		if (code == "SAR" || code == "USD") {
			found++;
			EXPECT_EQ(c.get("amount_minor")->text,
				  std::to_string(code == "SAR" ? sar_amount : usd_amount));
			EXPECT_EQ(c.get("levy_minor")->text,
				  std::to_string(code == "SAR" ? sar_levy : usd_levy));
		}
	}
	EXPECT_EQ(found, 2) << read_file(dir_ / "stats.json");
}

TEST_F(DonateVeth, Ipv6AcceptedOverNeighbourDiscovery)
{
	Result r = donate(one(kIp6, "61", "20"));
	ASSERT_EQ(r.code, 0) << r.describe << "\n" << r.out << r.err << dp_output();
	// 20 at 2.5 % = 0.5, rounded half up.
	EXPECT_EQ(r.out, "donation 61: ACCEPTED, levy 1 of 20 (minor units), node 3\n");
	r = donate(one(kIp6, "61", "20"));
	EXPECT_EQ(r.code, 0) << r.out << r.err;
	EXPECT_EQ(r.out.rfind("donation 61: DUPLICATE, levy 1 of 20", 0), 0u) << r.out;
	expect_resolved("-6", kIp6);
	EXPECT_EQ(stat("accepted"), 1u);
	EXPECT_EQ(stat("duplicate"), 1u);
	EXPECT_EQ(stat("drop_bad_udp_csum"), 0u);
}

// The node drops a datagram whose tag does not verify, without a reply: the
// client must say "no answer" (exit 3) after exactly its attempts, never
// "recorded".
TEST_F(DonateVeth, WrongKeyIsNeverReportedAsRecorded)
{
	Result r = donate({"--server", kIp4, "--donation-id", "99", "--amount", "1000", "--currency",
			"SAR", "--attempts", "3", "--timeout-ms", "100"},
		       "wrong.key");
	EXPECT_EQ(r.code, 3) << r.describe << "\n" << r.out << r.err;
	EXPECT_EQ(r.out, "donation 99: NO ANSWER after 3 attempts; not known to be recorded: send "
			 "it again later with the same content\n");
	EXPECT_EQ(stat("drop_bad_tag"), 3u);
	EXPECT_EQ(stat("accepted"), 0u);

	// The same donation with the right key is then recorded once.
	r = donate(one(kIp4, "99", "1000"));
	EXPECT_EQ(r.code, 0) << r.out << r.err;
	EXPECT_EQ(r.out, "donation 99: ACCEPTED, levy 25 of 1000 (minor units), node 3\n");
	EXPECT_EQ(stat("accepted"), 1u);
}

// A CSV error is reported before anything is sent.
TEST_F(DonateVeth, BadCsvSendsNothing)
{
	ASSERT_TRUE(write_file(dir_ / "bad.csv", "donation_id,amount,currency\n1,100,SAR\n"
						 "2,12.5,SAR\n"));
	Result r = donate({"--server", kIp4, "--csv", dir_ / "bad.csv"});
	EXPECT_EQ(r.code, 2) << r.out << r.err;
	EXPECT_EQ(r.out, "");
	EXPECT_NE(r.err.find("bad.csv:3: amount: '12.5' is not an integer number of minor units"),
		  std::string::npos)
		<< r.err;
	EXPECT_EQ(stat("rx"), 0u);
}
