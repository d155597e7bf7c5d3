// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Integration: amil-controlplane daemons in their own network namespaces,
// joined by a bridge, with nftables making the links lossy or cutting them
// (tc netem is not available; `numgen random mod 100 < N drop` is).
//
//   ns amil-cpn-<pid>-1 .. -5: one daemon each, 198.18.1.<i>/24 on a veth
//   (-6: an intruder where a test needs one)
//   ns amil-cpn-<pid>-br: bridge br0 joining the other veth ends
//
// What must hold: a kill -9 is seen by every other member within the LAN
// target; with 10 % of all packets between the appliances dropped nobody is
// ever declared dead over 20 s; a partition {1,2} | {3,4,5} is seen by both
// sides and heals by itself when the cut is lifted; the registry resolves
// an AP conflict alike on heal and, in CP mode, refuses on the minority side
// and never shows a second owner; beacons with the wrong
// secret and an appliance whose key is not on the allow-list are ignored.
// Needs root; skips without.
// TearDown kills the daemons and deletes every namespace (which removes
// the veths and the bridge with them).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <zmq.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "integration_child.h"
#include "integration_json.h"

using namespace itest;

namespace {

std::string find_tool(const std::string &name)
{
	for (const char *d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
		std::string p = std::string(d) + "/" + name;
		if (access(p.c_str(), X_OK) == 0)
			return p;
	}
	return "";
}

class NetnsCluster : public ::testing::Test {
protected:
	static constexpr int kNodes = 6;   // 5 appliances + a slot for an intruder

	void SetUp() override
	{
		const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();

		Watchdog::get().arm(240, info->name());
		if (geteuid() != 0)
			GTEST_SKIP() << "needs root for namespaces and nftables";
		cp_ = getenv("AMIL_CONTROLPLANE") != nullptr ? getenv("AMIL_CONTROLPLANE") : "";
		ASSERT_FALSE(cp_.empty());
		ip_ = find_tool("ip");
		nft_ = find_tool("nft");
		if (ip_.empty() || nft_.empty())
			GTEST_SKIP() << "ip or nft not found (tools/install-deps.sh)";
		ASSERT_TRUE(dir_.create("cp-netns"));
		ctx_ = zmq_ctx_new();
		std::string id = std::to_string(getpid());
		br_ns_ = "amil-cpn-" + id + "-br";
		if (cmd({ip_, "netns", "add", br_ns_}) != 0)
			GTEST_SKIP() << "cannot create network namespaces here";
		made_.push_back(br_ns_);
		must({ip_, "-n", br_ns_, "link", "add", "br0", "type", "bridge"});
		must({ip_, "-n", br_ns_, "link", "set", "br0", "up"});
		std::string allow;
		for (int i = 1; i <= kNodes; i++) {
			std::string ns = "amil-cpn-" + id + "-" + std::to_string(i);
			std::string a = "acn" + id + "n" + std::to_string(i);
			std::string b = "acn" + id + "b" + std::to_string(i);
			std::string pub;

			must({ip_, "netns", "add", ns});
			made_.push_back(ns);
			must({ip_, "link", "add", a, "type", "veth", "peer", "name", b});
			veths_.push_back(a);
			must({ip_, "link", "set", a, "netns", ns});
			must({ip_, "link", "set", b, "netns", br_ns_});
			veths_.pop_back();
			must({ip_, "-n", br_ns_, "link", "set", b, "master", "br0"});
			must({ip_, "-n", br_ns_, "link", "set", b, "up"});
			must({ip_, "-n", ns, "link", "set", "lo", "up"});
			must({ip_, "-n", ns, "addr", "add", "198.18.1." + std::to_string(i) + "/24", "dev", a});
			must({ip_, "-n", ns, "link", "set", a, "up"});
			ns_.push_back(ns);
			std::string keys = dir_ / ("keys" + std::to_string(i));
			ASSERT_EQ(cmd({cp_, "keygen", "--keys", keys}, &pub), 0);
			if (i <= 5)
				allow += pub.substr(0, 40) + " " + std::to_string(i) + "\n";
			else
				intruder_line_ = pub.substr(0, 40) + " " + std::to_string(i) + "\n";
		}
		ASSERT_TRUE(write_file(dir_ / "allow.txt", allow));
	}

	void TearDown() override
	{
		for (auto &p : procs_)
			if (p && p->pid() > 0 && !p->exited())
				p->kill_hard();
		for (const auto &v : veths_)
			cmd({ip_, "link", "del", v});
		for (const auto &ns : made_)
			cmd({ip_, "netns", "del", ns});
		if (ctx_ != nullptr)
			zmq_ctx_term(ctx_);
		Watchdog::get().disarm();
	}

	int cmd(const std::vector<std::string> &argv, std::string *out = nullptr)
	{
		Child c;
		std::string o = dir_ / "cmd.out", e = dir_ / "cmd.err";

		if (!c.start(argv, o, e).empty())
			return -1;
		if (!c.wait_exit(20000)) {
			c.kill_hard();
			return -1;
		}
		if (out)
			*out = read_file(o);
		last_err_ = read_file(e);
		return WIFEXITED(c.status()) ? WEXITSTATUS(c.status()) : -1;
	}

	void must(const std::vector<std::string> &argv)
	{
		std::string line;
		for (const auto &a : argv)
			line += a + " ";
		ASSERT_EQ(cmd(argv), 0) << line << ": " << last_err_;
	}

	std::string ep(int i) { return "tcp://198.18.1." + std::to_string(i) + ":7200"; }

	void start_all(int n = 5, const std::vector<std::string> &extra = {})
	{
		for (int i = 1; i <= n; i++)
			ASSERT_NO_FATAL_FAILURE(start_one(i, extra));
	}

	void start_one(int i, const std::vector<std::string> &extra = {},
		       const std::string &allow = "allow.txt")
	{
		{
			std::vector<std::string> argv = {
				ip_, "netns", "exec", ns_[i - 1], cp_, "run", "--node-id", std::to_string(i),
				"--listen", ep(i), "--keys", dir_ / ("keys" + std::to_string(i)),
				"--allow-list", dir_ / allow, "--run-dir",
				dir_ / ("run" + std::to_string(i)), "--event-log",
				dir_ / ("ev" + std::to_string(i) + ".jsonl"), "--seed", "1@" + ep(1), "--seed",
				"2@" + ep(2)};
			argv.insert(argv.end(), extra.begin(), extra.end());
			auto c = std::make_unique<Child>();
			std::string out = dir_ / ("out" + std::to_string(i));

			ASSERT_EQ(c->start(argv, out, dir_ / ("err" + std::to_string(i))), "");
			Watchdog::get().add_pid(c->pid());
			int64_t end = now_ms() + 10000;
			while (read_file(out).find("listening") == std::string::npos) {
				ASSERT_FALSE(c->poll_exit()) << read_file(dir_ / ("err" + std::to_string(i)));
				ASSERT_LT(now_ms(), end);
				sleep_ms(10);
			}
			procs_.push_back(std::move(c));
		}
	}

	std::string state_of(int i, int who)
	{
		void *s = zmq_socket(ctx_, ZMQ_REQ);
		int zero = 0, to = 2000;
		char buf[1 << 15];
		std::string e = "ipc://" + (dir_ / ("run" + std::to_string(i))) + "/ctl.sock", text;
		Json j;
		std::string err;

		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
		if (zmq_connect(s, e.c_str()) == 0 && zmq_send(s, "nodes", 5, 0) == 5) {
			int n = zmq_recv(s, buf, sizeof(buf), 0);
			if (n > 0)
				text.assign(buf, (size_t)std::min(n, (int)sizeof(buf)));
		}
		zmq_close(s);
		if (text.empty() || !JsonParser::parse(text, &j, &err) || j.get("nodes") == nullptr)
			return "?";
		for (const auto &n : j.get("nodes")->arr)
			if (n.get("id")->text == std::to_string(who))
				return n.get("state")->text;
		return "";
	}

	// One counter of node @i's status.
	uint64_t counter(int i, const std::string &name)
	{
		void *s = zmq_socket(ctx_, ZMQ_REQ);
		int zero = 0, to = 2000;
		char buf[1 << 15];
		std::string e = "ipc://" + (dir_ / ("run" + std::to_string(i))) + "/ctl.sock", text, err;
		Json j;

		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
		if (zmq_connect(s, e.c_str()) == 0 && zmq_send(s, "status", 6, 0) == 6) {
			int n = zmq_recv(s, buf, sizeof(buf), 0);
			if (n > 0)
				text.assign(buf, (size_t)std::min(n, (int)sizeof(buf)));
		}
		zmq_close(s);
		if (text.empty() || !JsonParser::parse(text, &j, &err) ||
		    j.path("counters." + name) == nullptr)
			return 0;
		return std::stoull(j.path("counters." + name)->text);
	}

	// One request on node @i's control socket; the raw reply ("" on timeout).
	std::string ctl(int i, const std::string &req)
	{
		void *s = zmq_socket(ctx_, ZMQ_REQ);
		int zero = 0, to = 2000;
		char buf[1 << 15];
		std::string e = "ipc://" + (dir_ / ("run" + std::to_string(i))) + "/ctl.sock", text;

		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
		if (zmq_connect(s, e.c_str()) == 0 && zmq_send(s, req.data(), req.size(), 0) >= 0) {
			int n = zmq_recv(s, buf, sizeof(buf), 0);
			if (n > 0)
				text.assign(buf, (size_t)std::min(n, (int)sizeof(buf)));
		}
		zmq_close(s);
		return text;
	}

	std::string owner(int i, const std::string &name)
	{
		Json j;
		std::string err;

		if (!JsonParser::parse(ctl(i, "registry-get " + name), &j, &err) ||
		    j.path("entry.owner") == nullptr)
			return "";
		return j.path("entry.owner")->text;
	}

	bool all_see(const std::vector<int> &obs, const std::vector<int> &who, const std::string &st,
		     int timeout_ms)
	{
		int64_t end = now_ms() + timeout_ms;
		for (;;) {
			bool ok = true;
			for (int o : obs)
				for (int w : who)
					ok = ok && state_of(o, w) == st;
			if (ok)
				return true;
			if (now_ms() > end)
				return false;
			sleep_ms(50);
		}
	}

	// nftables in node @i's namespace: drop what matches @rule on input
	// and output.
	void nft_drop(int i, const std::string &match)
	{
		const std::string &ns = ns_[i - 1];
		must({ip_, "netns", "exec", ns, nft_, "add", "table", "inet", "amiltest"});
		for (const char *hook : {"input", "output"}) {
			must({ip_, "netns", "exec", ns, nft_, "add", "chain", "inet", "amiltest", hook,
			      std::string("{ type filter hook ") + hook + " priority 0 ; }"});
			must({ip_, "netns", "exec", ns, nft_, "add rule inet amiltest " + std::string(hook) +
								   " " + match + " drop"});
		}
	}

	void nft_clear(int i)
	{
		must({ip_, "netns", "exec", ns_[i - 1], nft_, "delete", "table", "inet", "amiltest"});
	}

	int count_in_log(int i, const std::string &needle)
	{
		std::string log = read_file(dir_ / ("ev" + std::to_string(i) + ".jsonl"));
		int n = 0;
		for (size_t p = log.find(needle); p != std::string::npos; p = log.find(needle, p + 1))
			n++;
		return n;
	}

	std::string cp_, ip_, nft_, br_ns_, last_err_, intruder_line_;
	std::vector<int> all5_ = {1, 2, 3, 4, 5};
	TempDir dir_;
	void *ctx_ = nullptr;
	std::vector<std::string> made_, ns_, veths_;
	std::vector<std::unique_ptr<Child>> procs_;
};

TEST_F(NetnsCluster, TenPercentLossRaisesNoFalseDeaths)
{
	ASSERT_NO_FATAL_FAILURE(start_all());
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 15000)) << "no convergence";
	// 10 % of every packet between the appliances, each way, on every node.
	for (int i = 1; i <= 5; i++)
		ASSERT_NO_FATAL_FAILURE(nft_drop(i, "ip saddr 198.18.1.0/24 numgen random mod 100 < 10"));
	sleep_ms(20000);
	for (int i = 1; i <= 5; i++) {
		EXPECT_EQ(count_in_log(i, "\"type\": \"nodedown\""), 0) << "false death seen by " << i;
		std::printf("[ netns ] node %d under 10%% loss for 20 s: %d suspicions, %d refuted, 0 deaths\n",
			    i, count_in_log(i, "\"type\": \"suspect\""),
			    count_in_log(i, "\"type\": \"unsuspect\""));
	}
	EXPECT_TRUE(all_see(all5_, all5_, "alive", 5000));
}

TEST_F(NetnsCluster, PartitionTwoThreeIsSeenOnBothSidesAndHeals)
{
	ASSERT_NO_FATAL_FAILURE(start_all());
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 15000));
	// {1,2} | {3,4,5}: nodes 1 and 2 drop everything from and to 3..5.
	for (int i : {1, 2}) {
		ASSERT_NO_FATAL_FAILURE(nft_drop(i, "ip saddr { 198.18.1.3, 198.18.1.4, 198.18.1.5 }"));
		must({ip_, "netns", "exec", ns_[i - 1], nft_, "add rule inet amiltest output ip daddr { "
							 "198.18.1.3, 198.18.1.4, 198.18.1.5 } drop"});
	}
	int64_t t0 = now_ms();
	ASSERT_TRUE(all_see({1, 2}, {3, 4, 5}, "dead", 10000)) << "the two did not see the three dead";
	ASSERT_TRUE(all_see({3, 4, 5}, {1, 2}, "dead", 10000)) << "the three did not see the two dead";
	std::printf("[ netns ] partition {1,2}|{3,4,5} seen on both sides after %lld ms\n",
		    (long long)(now_ms() - t0));
	EXPECT_TRUE(all_see({1, 2}, {1, 2}, "alive", 1000));
	EXPECT_TRUE(all_see({3, 4, 5}, {3, 4, 5}, "alive", 1000));
	for (int i : {1, 2})
		nft_clear(i);
	t0 = now_ms();
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 20000)) << "no heal";
	std::printf("[ netns ] healed: all alive everywhere %lld ms after the cut was lifted\n",
		    (long long)(now_ms() - t0));
}

// AP mode across a partition {1,2} | {3,4,5}: both sides register the
// same names (and names of their own); after the heal every member holds
// every name, agrees on one owner for each, and each loser's owner is told.
TEST_F(NetnsCluster, RegistryConflictAcrossAPartitionResolvesAlikeOnHeal)
{
	ASSERT_NO_FATAL_FAILURE(start_all(5));
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 15000));
	for (int i : {1, 2}) {
		ASSERT_NO_FATAL_FAILURE(nft_drop(i, "ip saddr { 198.18.1.3, 198.18.1.4, 198.18.1.5 }"));
		must({ip_, "netns", "exec", ns_[i - 1], nft_, "add rule inet amiltest output ip daddr { "
							 "198.18.1.3, 198.18.1.4, 198.18.1.5 } drop"});
	}
	ASSERT_TRUE(all_see({1, 2}, {3, 4, 5}, "dead", 10000));
	ASSERT_TRUE(all_see({3, 4, 5}, {1, 2}, "dead", 10000));
	const std::vector<std::string> both = {"jkt/leader", "jkt/ledger", "sby/leader"};
	for (const auto &n : both) {
		ASSERT_NE(ctl(1, "registry-register " + n + " side-a").find("\"ok\": true"), std::string::npos)
			<< ctl(1, "registry-list");
		ASSERT_NE(ctl(4, "registry-register " + n + " side-b").find("\"ok\": true"), std::string::npos);
	}
	ASSERT_NE(ctl(2, "registry-register only/a two").find("\"ok\": true"), std::string::npos);
	ASSERT_NE(ctl(5, "registry-register only/b five").find("\"ok\": true"), std::string::npos);
	for (int i : {1, 2})
		nft_clear(i);
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 20000));
	int64_t t0 = now_ms();
	std::vector<std::string> names = both;
	names.push_back("only/a");
	names.push_back("only/b");
	std::map<std::string, std::string> winner;
	for (;;) {
		bool same = true;
		for (const auto &n : names) {
			std::string o = owner(1, n);
			for (int i = 2; i <= 5; i++)
				same = same && !o.empty() && owner(i, n) == o;
			winner[n] = o;
		}
		if (same || now_ms() - t0 > 10000)
			break;
		sleep_ms(20);
	}
	std::printf("[ netns ] registry 2|3 heal: 5 names alike on all 5 members %lld ms after "
		    "the members saw each other again\n", (long long)(now_ms() - t0));
	for (const auto &n : names)
		for (int i = 1; i <= 5; i++)
			EXPECT_EQ(owner(i, n), winner[n]) << n << " on node " << i;
	EXPECT_EQ(winner["only/a"], "2");
	EXPECT_EQ(winner["only/b"], "5");
	for (const auto &n : both) {
		ASSERT_TRUE(winner[n] == "1" || winner[n] == "4") << n << ": " << winner[n];
		int loser = winner[n] == "1" ? 4 : 1;
		t0 = now_ms();
		while (now_ms() - t0 < 5000 &&
		       count_in_log(loser, "\"type\": \"name_conflict\", \"node_id\": " + winner[n] +
						   ", \"name\": \"" + n + "\"") == 0)
			sleep_ms(50);
		EXPECT_GE(count_in_log(loser, "\"type\": \"name_conflict\", \"node_id\": " + winner[n] +
						  ", \"name\": \"" + n + "\""),
			  1)
			<< read_file(dir_ / ("ev" + std::to_string(loser) + ".jsonl"));
	}
}

// AP mode, a partition longer than the grace: the two declare the third
// dead and remove its names; it is alive, and when the heal brings it the
// removal it puts them back.  Nothing an alive appliance registered is lost.
TEST_F(NetnsCluster, ApNamesOfACutOffApplianceComeBackWithTheHeal)
{
	ASSERT_NO_FATAL_FAILURE(start_all(3, {"--registry-grace-ms", "1000"}));
	ASSERT_TRUE(all_see({1, 2, 3}, {1, 2, 3}, "alive", 15000));
	ASSERT_NE(ctl(3, "registry-register sby/gateway three").find("\"ok\": true"), std::string::npos);
	ASSERT_NE(ctl(1, "group-join ID-SBY").find("\"ok\": true"), std::string::npos);
	ASSERT_NE(ctl(3, "group-join ID-SBY").find("\"ok\": true"), std::string::npos);
	int64_t t0 = now_ms();
	while (now_ms() - t0 < 5000 && owner(1, "sby/gateway") != "3")
		sleep_ms(20);
	ASSERT_EQ(owner(1, "sby/gateway"), "3");
	ASSERT_NO_FATAL_FAILURE(nft_drop(3, "ip saddr { 198.18.1.1, 198.18.1.2 }"));
	must({ip_, "netns", "exec", ns_[2], nft_, "add rule inet amiltest output ip daddr { 198.18.1.1, "
						 "198.18.1.2 } drop"});
	ASSERT_TRUE(all_see({1, 2}, {3}, "dead", 10000));
	t0 = now_ms();
	while (now_ms() - t0 < 5000 && owner(1, "sby/gateway") != "")
		sleep_ms(50);
	EXPECT_EQ(owner(1, "sby/gateway"), "") << "the grace rule did not remove the name";
	EXPECT_EQ(owner(3, "sby/gateway"), "3");
	nft_clear(3);
	ASSERT_TRUE(all_see({1, 2, 3}, {1, 2, 3}, "alive", 20000));
	t0 = now_ms();
	while (now_ms() - t0 < 10000 &&
	       (owner(1, "sby/gateway") != "3" || owner(2, "sby/gateway") != "3" ||
		owner(3, "sby/gateway") != "3"))
		sleep_ms(20);
	EXPECT_EQ(owner(1, "sby/gateway"), "3");
	EXPECT_EQ(owner(2, "sby/gateway"), "3");
	EXPECT_EQ(owner(3, "sby/gateway"), "3") << "the owner lost its own name";
	std::printf("[ netns ] a cut-off appliance's name back everywhere %lld ms after the heal\n",
		    (long long)(now_ms() - t0));
	std::string g = ctl(2, "groups ID-SBY");
	EXPECT_NE(g.find("\"node_id\": 3"), std::string::npos) << g;
	EXPECT_NE(g.find("\"node_id\": 1"), std::string::npos) << g;
}

// CP mode (like :global, but partition-safe): a registration needs a
// majority of the configured cluster (3 of 5).  Across {1,2}|{3,4,5} the
// minority refuses and reports itself degraded, the majority goes on, and
// no member ever shows a second owner of a name, during or after the split.
TEST_F(NetnsCluster, CpRegistryMinorityRefusesAndNoNameEverHasTwoOwners)
{
	ASSERT_NO_FATAL_FAILURE(start_all(5, {"--registry-mode", "cp"}));
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 15000));
	std::map<std::string, std::set<std::string>> seen;   // name -> owners ever shown
	auto observe = [&](const std::string &name) {
		for (int i = 1; i <= 5; i++) {
			std::string o = owner(i, name);
			if (!o.empty())
				seen[name].insert(o);
		}
	};
	auto wait_owner = [&](const std::string &name, const std::string &want, int timeout_ms) {
		int64_t end = now_ms() + timeout_ms;
		for (;;) {
			bool ok = true;
			for (int i = 1; i <= 5; i++)
				ok = ok && owner(i, name) == want;
			observe(name);
			if (ok)
				return true;
			if (now_ms() > end)
				return false;
			sleep_ms(20);
		}
	};

	std::string r = ctl(1, "registry-register cp/a one");
	ASSERT_NE(r.find("\"ok\": true"), std::string::npos) << r;
	ASSERT_TRUE(wait_owner("cp/a", "1", 5000)) << "the learned view did not spread";
	r = ctl(4, "registry-register cp/a four");
	EXPECT_NE(r.find("registered by node 1"), std::string::npos) << r;
	EXPECT_NE(ctl(2, "status").find("\"mode\": \"cp\""), std::string::npos);

	for (int i : {1, 2}) {
		ASSERT_NO_FATAL_FAILURE(nft_drop(i, "ip saddr { 198.18.1.3, 198.18.1.4, 198.18.1.5 }"));
		must({ip_, "netns", "exec", ns_[i - 1], nft_, "add rule inet amiltest output ip daddr { "
							 "198.18.1.3, 198.18.1.4, 198.18.1.5 } drop"});
	}
	// Straight away, before anyone is declared dead: the minority cannot
	// gather 3 acknowledgements whatever its membership view says.
	r = ctl(1, "registry-register cp/b minority");
	EXPECT_EQ(r.find("\"ok\": true"), std::string::npos) << r;
	EXPECT_NE(r.find("degraded"), std::string::npos) << r;
	ASSERT_TRUE(all_see({1, 2}, {3, 4, 5}, "dead", 10000));
	ASSERT_TRUE(all_see({3, 4, 5}, {1, 2}, "dead", 10000));
	EXPECT_NE(ctl(1, "status").find("\"health\": \"degraded\""), std::string::npos);
	EXPECT_EQ(ctl(3, "status").find("\"health\": \"degraded\""), std::string::npos);
	r = ctl(2, "registry-register cp/b minority");
	EXPECT_NE(r.find("degraded"), std::string::npos) << r;
	r = ctl(1, "registry-unregister cp/a");
	EXPECT_NE(r.find("degraded"), std::string::npos) << r;
	r = ctl(3, "registry-register cp/b majority");
	EXPECT_NE(r.find("\"ok\": true"), std::string::npos) << r;
	// cp/a still belongs to node 1, cut off or not: never handed over.
	r = ctl(4, "registry-register cp/a four");
	EXPECT_NE(r.find("registered by node 1"), std::string::npos) << r;
	for (int k = 0; k < 10; k++) {
		observe("cp/a");
		observe("cp/b");
		sleep_ms(50);
	}

	for (int i : {1, 2})
		nft_clear(i);
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 20000)) << "no heal";
	int64_t t0 = now_ms();
	EXPECT_TRUE(wait_owner("cp/b", "3", 10000)) << "the minority did not learn cp/b";
	std::printf("[ netns ] cp: the minority learned the majority's name %lld ms after the heal\n",
		    (long long)(now_ms() - t0));
	EXPECT_TRUE(wait_owner("cp/a", "1", 5000));
	EXPECT_EQ(seen["cp/a"], std::set<std::string>{"1"});
	EXPECT_EQ(seen["cp/b"], std::set<std::string>{"3"}) << "a second owner of cp/b was shown";
	EXPECT_EQ(ctl(1, "status").find("\"health\": \"degraded\""), std::string::npos);
	// Healed: the owner hands the name over the proper way.
	r = ctl(1, "registry-unregister cp/a");
	EXPECT_NE(r.find("\"ok\": true"), std::string::npos) << r;
	r = ctl(4, "registry-register cp/a four");
	EXPECT_NE(r.find("\"ok\": true"), std::string::npos) << r;
	EXPECT_TRUE(wait_owner("cp/a", "4", 5000));
}

TEST_F(NetnsCluster, KillNineIsSeenEverywhereWithinTheLanTarget)
{
	ASSERT_NO_FATAL_FAILURE(start_all());
	ASSERT_TRUE(all_see(all5_, all5_, "alive", 15000));
	int64_t t0 = now_ms();
	procs_[4]->signal(SIGKILL);
	ASSERT_TRUE(all_see({1, 2, 3, 4}, {5}, "dead", 5000));
	int64_t t = now_ms() - t0;
	std::printf("[ netns ] kill -9 of node 5 dead on all 4 others after %lld ms\n", (long long)t);
	// LAN target 1 s; the polling here adds up to ~100 ms.
	EXPECT_LT(t, 1500);
}

// Beacons only (no seeds would help them): the intruder uses the wrong
// cluster secret, then the right secret but a key not on the allow-list.
TEST_F(NetnsCluster, WrongSecretAndUnlistedKeyAreIgnored)
{
	const std::string good = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	const std::string bad = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	ASSERT_TRUE(write_file(dir_ / "good.secret", good));
	ASSERT_TRUE(write_file(dir_ / "bad.secret", bad));
	chmod((dir_ / "good.secret").c_str(), 0600);
	chmod((dir_ / "bad.secret").c_str(), 0600);
	std::vector<std::string> beacon = {"--beacon-group", "198.18.1.255", "--beacon-mode",
					   "broadcast", "--beacon-port", "7299",
					   "--beacon-interval-ms", "200"};
	std::vector<std::string> ok = beacon, evil = beacon;
	ok.insert(ok.end(), {"--cluster-secret", dir_ / "good.secret"});
	evil.insert(evil.end(), {"--cluster-secret", dir_ / "bad.secret"});
	for (int i = 1; i <= 3; i++)
		ASSERT_NO_FATAL_FAILURE(start_one(i, ok));
	ASSERT_TRUE(all_see({1, 2, 3}, {1, 2, 3}, "alive", 15000));
	// A valid beacon captured on the wire and sent again is a replay.
	{
		int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		int other = open(("/var/run/netns/" + ns_[5]).c_str(), O_RDONLY | O_CLOEXEC);
		ASSERT_GE(self, 0);
		ASSERT_GE(other, 0);
		ASSERT_EQ(setns(other, CLONE_NEWNET), 0);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
		ASSERT_EQ(setns(self, CLONE_NEWNET), 0);
		close(self);
		close(other);
		ASSERT_GE(u, 0);
		setsockopt(u, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(u, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
		struct timeval tv = {3, 0};
		setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		struct sockaddr_in a = {};
		a.sin_family = AF_INET;
		a.sin_port = htons(7299);
		ASSERT_EQ(bind(u, (struct sockaddr *)&a, sizeof(a)), 0) << strerror(errno);
		uint8_t buf[512];
		ssize_t n = recv(u, buf, sizeof(buf), 0);
		ASSERT_GT(n, 0) << "no beacon seen on the segment";
		inet_pton(AF_INET, "198.18.1.255", &a.sin_addr);
		for (int k = 0; k < 3; k++)
			ASSERT_EQ(sendto(u, buf, (size_t)n, 0, (struct sockaddr *)&a, sizeof(a)), n);
		close(u);
		sleep_ms(500);
		uint64_t replays = 0;
		for (int o = 1; o <= 3; o++)
			replays += counter(o, "beacon_replay");
		EXPECT_GE(replays, 3u) << "replayed beacons were not refused as replays";
	}
	// The intruder (node 6) lists itself so it would talk to anyone.
	ASSERT_TRUE(write_file(dir_ / "allow6.txt", read_file(dir_ / "allow.txt") + intruder_line_));
	ASSERT_NO_FATAL_FAILURE(start_one(6, evil, "allow6.txt"));
	sleep_ms(2000);
	for (int o : {1, 2, 3})
		EXPECT_EQ(state_of(o, 6), "") << "wrong secret, yet known to " << o;
	EXPECT_GT(counter(1, "beacon_bad_mac"), 0u) << "the wrong secret's beacons were not seen";
	procs_.back()->signal(SIGKILL);
	procs_.back()->wait_exit(5000);
	procs_.pop_back();
	ASSERT_NO_FATAL_FAILURE(start_one(6, ok, "allow6.txt"));
	sleep_ms(2000);
	for (int o : {1, 2, 3})
		EXPECT_EQ(state_of(o, 6), "") << "key not on the allow-list, yet known to " << o;
}

} // namespace
