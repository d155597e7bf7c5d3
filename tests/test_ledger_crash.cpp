// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Integration: the durable ledger of amil-dataplane under crashes, a torn
// tail and a full disk (issue "Durable donation ledger").
//
//   ns amil-lg-<pid>-a                    ns amil-lg-<pid>-b
//   amil-dataplane --ip 198.18.0.1        this test's UDP socket, created in
//   net_af_packet on veth a,              ns b (setns), 198.18.0.2/24 on veth b
//   --ledger-dir <tmp>/ledger
//
// The test is the center: it signs donations with lib/amil_wire, keeps a
// window of them in flight, verifies every ACK's tag and records what it
// was told.  What must hold (the words):
//   - Crash: kill -9 the data plane mid-stream, several times at several
//     points, restart it on the same ledger, retransmit everything: every
//     donation acknowledged ACCEPTED before a kill is in the ledger exactly
//     once, its retransmit is answered DUPLICATE with the same levy, and
//     the ledger's totals equal the sender's.
//   - Torn tail: cut and corrupt the last records: recovery keeps
//     everything before them (retransmits DUPLICATE), what was cut is
//     accepted again, the cut bytes are saved aside.
//   - Disk full: the ledger on a tmpfs with a size limit: no ACCEPTED
//     without a record, the rest answered REJECTED/UNAVAILABLE with the
//     alarm raised; once the tmpfs grows, the same donations are accepted.
// Needs root (namespaces, veth, af_packet, mount); skips otherwise.  Every
// wait is bounded; TearDown kills the data plane, unmounts and deletes the
// namespaces even when a check failed.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "amil_ledger_format.h"
#include "amil_levy.h"
#include "amil_wire.h"
#include "integration_child.h"
#include "integration_json.h"

using namespace itest;

namespace {

const uint8_t kKey[AMIL_KEY_LEN] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
const char kKeyHex[] = "000102030405060708090a0b0c0d0e0f";
const uint32_t kCenter = 1001;
const char kIp4[] = "198.18.0.1", kClientIp4[] = "198.18.0.2";
const uint32_t kNodeId = 5;
const uint32_t kRateBp = 250;
const int kCmdMs = 20000;
const int kStartMs = 30000;
const int kExitMs = 30000;

std::string find_tool(const std::string &name)
{
	for (const char *d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
		std::string p = std::string(d) + "/" + name;
		if (access(p.c_str(), X_OK) == 0)
			return p;
	}
	return "";
}

// What the center knows about one donation.
struct Donation {
	uint64_t id = 0;
	int64_t amount = 0;
	uint32_t campaign = 0;
	int status = -1;           // last answer: enum amil_ack_status, -1 none
	int reason = 0;
	int64_t levy = -1;         // levy of the first ACCEPTED/DUPLICATE answer
	bool acked_accepted = false; // ACCEPTED seen (a promise: must be durable)
	int answers = 0;
};

class LedgerCrash : public ::testing::Test {
protected:
	void SetUp() override
	{
		const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();

		Watchdog::get().arm(400, info->name());
		if (geteuid() != 0)
			GTEST_SKIP() << "needs root for network namespaces, af_packet and mount";
		dataplane_ = getenv("AMIL_DATAPLANE") != nullptr ? getenv("AMIL_DATAPLANE") : "";
		ASSERT_FALSE(dataplane_.empty()) << "set AMIL_DATAPLANE (meson test does)";
		ip_ = find_tool("ip");
		ethtool_ = find_tool("ethtool");
		if (ip_.empty())
			GTEST_SKIP() << "iproute2 'ip' not found";
		ASSERT_FALSE(ethtool_.empty()) << "ethtool needed (tools/install-deps.sh)";
		ASSERT_TRUE(dir_.create("ledger-crash"));
		std::string id = std::to_string(getpid());
		ns_a_ = "amil-lg-" + id + "-a";
		ns_b_ = "amil-lg-" + id + "-b";
		veth_a_ = "amlg" + id + "a";
		veth_b_ = "amlg" + id + "b";
		if (cmd({ip_, "netns", "add", ns_a_}) != 0)
			GTEST_SKIP() << "cannot create a network namespace here";
		ns_made_ = true;
		must({ip_, "netns", "add", ns_b_});
		must({ip_, "link", "add", veth_a_, "type", "veth", "peer", "name", veth_b_});
		veth_in_root_ = true;
		must({ip_, "link", "set", veth_a_, "netns", ns_a_});
		must({ip_, "link", "set", veth_b_, "netns", ns_b_});
		veth_in_root_ = false;
		cmd({ip_, "netns", "exec", ns_a_, "sysctl", "-qw",
		     "net.ipv6.conf." + veth_a_ + ".disable_ipv6=1"});
		must({ip_, "-n", ns_a_, "link", "set", veth_a_, "up"});
		must({ip_, "-n", ns_b_, "link", "set", "lo", "up"});
		must({ip_, "-n", ns_b_, "addr", "add", std::string(kClientIp4) + "/24", "dev", veth_b_});
		// The kernel would leave a partial UDP checksum for af_packet.
		must({ip_, "netns", "exec", ns_b_, ethtool_, "-K", veth_b_, "tx", "off"});
		must({ip_, "-n", ns_b_, "link", "set", veth_b_, "up"});
		ASSERT_TRUE(write_file(dir_ / "centers.txt",
				       std::to_string(kCenter) + " " + kKeyHex + "\n"));
		ledger_ = dir_ / "ledger";
		ASSERT_NO_FATAL_FAILURE(open_socket());
	}

	void TearDown() override
	{
		stop_dataplane(SIGKILL);
		if (sock_ >= 0)
			close(sock_);
		if (mounted_)
			umount2(mnt_.c_str(), MNT_DETACH);
		if (veth_in_root_)
			cmd({ip_, "link", "del", veth_a_});
		if (ns_made_) {
			cmd({ip_, "netns", "del", ns_a_});
			cmd({ip_, "netns", "del", ns_b_});
		}
		for (const auto &p : prefixes_) {
			std::error_code ec;
			std::filesystem::remove_all(dpdk_run_dir(p), ec);
		}
		Watchdog::get().disarm();
	}

	int cmd(const std::vector<std::string> &argv)
	{
		Child c;
		std::string o = dir_ / "cmd.out", e = dir_ / "cmd.err";

		if (!c.start(argv, o, e).empty())
			return -1;
		if (!c.wait_exit(kCmdMs)) {
			c.kill_hard();
			return -1;
		}
		last_cmd_err_ = read_file(e);
		return WIFEXITED(c.status()) ? WEXITSTATUS(c.status()) : -1;
	}

	void must(const std::vector<std::string> &argv)
	{
		std::string line;

		for (const auto &a : argv)
			line += a + " ";
		ASSERT_EQ(cmd(argv), 0) << line << ": " << last_cmd_err_;
	}

	// A UDP socket that lives in ns b: sockets stay in the namespace they
	// were created in, so this thread enters ns b only for socket().
	void open_socket()
	{
		int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		int other = open(("/var/run/netns/" + ns_b_).c_str(), O_RDONLY | O_CLOEXEC);
		struct sockaddr_in a = {};
		int buf = 4 << 20;

		ASSERT_GE(self, 0);
		ASSERT_GE(other, 0) << "no /var/run/netns/" << ns_b_;
		ASSERT_EQ(setns(other, CLONE_NEWNET), 0) << strerror(errno);
		sock_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int back = setns(self, CLONE_NEWNET);
		close(self);
		close(other);
		ASSERT_EQ(back, 0) << "cannot return to the test's namespace";
		ASSERT_GE(sock_, 0);
		setsockopt(sock_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		setsockopt(sock_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		a.sin_family = AF_INET;
		a.sin_port = htons(AMIL_WIRE_PORT_DEFAULT);
		inet_pton(AF_INET, kIp4, &a.sin_addr);
		ASSERT_EQ(connect(sock_, (struct sockaddr *)&a, sizeof(a)), 0) << strerror(errno);
	}

	std::string dp_output(int run)
	{
		return "\n--- amil-dataplane run " + std::to_string(run) + " stdout ---\n" +
		       read_file(dir_ / ("dp" + std::to_string(run) + ".out")) + "--- stderr ---\n" +
		       read_file(dir_ / ("dp" + std::to_string(run) + ".err"));
	}

	// Start the data plane on the ledger; -l 0-1 (I/O lcore + a worker)
	// or -l 0 (run to completion), alternating, so both paths recover.
	void start_dataplane(const std::string &ledger, const std::vector<std::string> &extra = {})
	{
		std::string prefix = "amil-lg-" + std::to_string(getpid()) + "-" + std::to_string(run_);
		std::string out = dir_ / ("dp" + std::to_string(run_) + ".out");
		std::vector<std::string> argv = {
			ip_, "netns", "exec", ns_a_, dataplane_, "-l", run_ % 2 ? "0" : "0-1",
			"--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix,
			"--log-level=lib.eal:warning", "--vdev", "net_af_packet0,iface=" + veth_a_, "--",
			"--ip", kIp4, "--centers", dir_ / "centers.txt", "--node-id",
			std::to_string(kNodeId), "--dedupe-capacity", "262144", "--ledger-dir", ledger,
			"--stats-json", dir_ / ("stats" + std::to_string(run_) + ".json")};

		argv.insert(argv.end(), extra.begin(), extra.end());
		prefixes_.push_back(prefix);
		Watchdog::get().add_path(dpdk_run_dir(prefix));
		ASSERT_EQ(dp_.start(argv, out, dir_ / ("dp" + std::to_string(run_) + ".err")), "");
		int64_t end = now_ms() + kStartMs;
		while (read_file(out).find("serving") == std::string::npos) {
			ASSERT_FALSE(dp_.poll_exit()) << "data plane exited" << dp_output(run_);
			ASSERT_LT(now_ms(), end) << "data plane did not come up" << dp_output(run_);
			sleep_ms(20);
		}
		run_++;
	}

	void stop_dataplane(int sig)
	{
		if (dp_.pid() <= 0 || dp_.exited())
			return;
		dp_.signal(sig);
		if (!dp_.wait_exit(kExitMs))
			dp_.kill_hard();
	}

	// ---- the center -------------------------------------------------------

	void make_donations(size_t n)
	{
		for (size_t i = 0; i < n; i++) {
			Donation d;

			d.id = next_id_++;
			// Amounts from 1 minor unit to ~10^12, exact sums matter.
			d.amount = (int64_t)(1 + (d.id * 2654435761u) % 1000000007u) * (1 + (int64_t)(d.id % 1000));
			d.campaign = 1 + (uint32_t)(d.id % 7);
			by_id_[d.id] = dons_.size();
			dons_.push_back(d);
		}
	}

	void send_one(const Donation &d)
	{
		uint8_t buf[AMIL_WIRE_LEN];
		struct amil_donation w = {};

		w.center_id = kCenter;
		w.donation_id = d.id;
		w.donor_id = 42;
		w.campaign_id = d.campaign;
		memcpy(w.currency, "USD", 3);
		w.exponent = 2;
		w.amount_minor = d.amount;
		w.sent_ns = (uint64_t)now_ms() * 1000000;
		w.seq = (uint32_t)d.id;
		amil_wire_donation_encode(buf, &w);
		amil_wire_sign(buf, kKey);
		// Non-blocking: a full socket buffer just means the donation is
		// retransmitted later, as a center would.
		(void)send(sock_, buf, sizeof(buf), 0);
		sent_++;
	}

	// Read every ACK waiting on the socket; returns how many.
	int drain_acks(int timeout_ms)
	{
		struct pollfd p = {sock_, POLLIN, 0};
		int got = 0;

		if (poll(&p, 1, timeout_ms) <= 0)
			return 0;
		for (;;) {
			uint8_t buf[256];
			ssize_t r = recv(sock_, buf, sizeof(buf), 0);
			struct amil_ack a;

			if (r < 0)
				break;
			if (r != AMIL_WIRE_LEN || amil_wire_check(buf, (size_t)r, AMIL_MSG_ACK) != 0 ||
			    amil_wire_verify(buf, kKey) != 0) {
				bad_acks_++;
				continue;
			}
			amil_wire_ack_decode(buf, &a);
			auto it = by_id_.find(a.donation_id);
			if (a.center_id != kCenter || it == by_id_.end()) {
				bad_acks_++;
				continue;
			}
			Donation &d = dons_[it->second];
			got++;
			d.answers++;
			d.status = a.status;
			d.reason = a.reason;
			if (a.status == AMIL_ACK_ACCEPTED || a.status == AMIL_ACK_DUPLICATE) {
				int64_t want = amil_levy_minor(d.amount, kRateBp);

				// The levy is exact, and a retransmit hears the same one.
				EXPECT_EQ(a.levy_minor, want) << "donation " << d.id;
				EXPECT_EQ(a.amount_minor, d.amount) << "donation " << d.id;
				if (d.levy >= 0) {
					EXPECT_EQ(a.levy_minor, d.levy) << "donation " << d.id;
				}
				d.levy = a.levy_minor;
				if (a.status == AMIL_ACK_ACCEPTED) {
					// A second ACCEPTED for the same donation is counting
					// it twice.
					EXPECT_FALSE(d.acked_accepted)
						<< "donation " << d.id << " ACCEPTED twice";
					d.acked_accepted = true;
				} else {
					dup_answers_++;
				}
				if (a.status == AMIL_ACK_DUPLICATE && promised_before_kill_.count(d.id))
					promised_dup_++;
			} else if (a.status == AMIL_ACK_REJECTED) {
				EXPECT_EQ(a.reason, AMIL_REASON_UNAVAILABLE)
					<< "donation " << d.id << " rejected for reason " << (int)a.reason;
				unavailable_++;
			}
		}
		return got;
	}

	// Send donations [from, to) with a window in flight; those without a
	// final answer (ACCEPTED or DUPLICATE) are retransmitted after a
	// timeout.  Returns when all are answered, or when @stop says so (the
	// kill point), or at @deadline_ms.
	template <typename Stop>
	void pump(size_t from, size_t to, int64_t deadline_ms, Stop stop, bool want_final = true)
	{
		const size_t window = 256;
		std::vector<int64_t> last_sent(dons_.size(), 0);
		size_t next = from;

		for (;;) {
			size_t open = 0, pending = 0;
			int64_t now = now_ms();

			for (size_t i = from; i < next; i++) {
				const Donation &d = dons_[i];
				bool final = d.status == AMIL_ACK_ACCEPTED || d.status == AMIL_ACK_DUPLICATE ||
					     (!want_final && d.status >= 0);

				if (final)
					continue;
				pending++;
				if (now - last_sent[i] < 300) {
					open++;
				} else if (open < window) {
					send_one(d);
					last_sent[i] = now;
					open++;
				}
			}
			while (open < window && next < to) {
				send_one(dons_[next]);
				last_sent[next++] = now;
				open++;
				pending++;
			}
			if (pending == 0 && next == to)
				return;
			if (stop() || now > deadline_ms)
				return;
			drain_acks(5);
		}
	}

	size_t count_accepted() const
	{
		size_t n = 0;

		for (const auto &d : dons_)
			n += d.acked_accepted;
		return n;
	}

	// The ledger as a list of records (after the data plane stopped).
	std::vector<amil_ledger_rec> read_ledger(const std::string &dir, int *rc)
	{
		struct Ctx {
			std::vector<amil_ledger_rec> v;
		} ctx;
		struct amil_ledger_scan_opts o = {};
		struct amil_ledger_scan_result res;

		o.on_record = [](void *arg, const amil_ledger_rec *r) {
			static_cast<Ctx *>(arg)->v.push_back(*r);
			return 0;
		};
		o.arg = &ctx;
		o.node_id = kNodeId;
		*rc = amil_ledger_scan(dir.c_str(), &o, &res);
		if (*rc != 0)
			ADD_FAILURE() << "ledger scan: " << amil_ledger_damage_str(res.damage.kind) << " at "
				      << res.damage.path << " byte " << res.damage.offset;
		return ctx.v;
	}

	// Every ACCEPTED answer is in the ledger exactly once, nothing is there
	// twice, and the ledger's totals are the sender's.
	void check_ledger_matches(const std::string &dir, bool all_final)
	{
		int rc;
		std::vector<amil_ledger_rec> recs = read_ledger(dir, &rc);
		std::map<uint64_t, int> seen;
		__int128 ledger_amount = 0, ledger_levy = 0, sender_amount = 0, sender_levy = 0;
		uint64_t want_seq = 1;

		ASSERT_EQ(rc, 0);
		for (const auto &r : recs) {
			EXPECT_EQ(r.seq, want_seq++) << "sequence gap";
			EXPECT_EQ(r.center_id, kCenter);
			EXPECT_EQ(r.node_id, kNodeId);
			ASSERT_EQ(seen[r.donation_id]++, 0) << "donation " << r.donation_id
							    << " recorded twice";
			auto it = by_id_.find(r.donation_id);
			ASSERT_NE(it, by_id_.end()) << "a record for a donation never sent";
			const Donation &d = dons_[it->second];
			EXPECT_EQ(r.amount_minor, d.amount);
			EXPECT_EQ(r.levy_minor, amil_levy_minor(d.amount, kRateBp));
			EXPECT_EQ(r.campaign_id, d.campaign);
			ledger_amount += r.amount_minor;
			ledger_levy += r.levy_minor;
		}
		for (const auto &d : dons_) {
			if (d.acked_accepted) {
				EXPECT_EQ(seen.count(d.id), 1u)
					<< "donation " << d.id << " was acknowledged but is not in the ledger";
			}
			if (d.status == AMIL_ACK_ACCEPTED || d.status == AMIL_ACK_DUPLICATE) {
				sender_amount += d.amount;
				sender_levy += d.levy;
			} else if (all_final) {
				ADD_FAILURE() << "donation " << d.id << " never answered";
			}
		}
		if (all_final) {
			EXPECT_EQ(recs.size(), dons_.size());
			EXPECT_TRUE(ledger_amount == sender_amount) << "ledger amount != sender's";
			EXPECT_TRUE(ledger_levy == sender_levy) << "ledger levy != sender's";
		}
	}

	Json stats_of(int run)
	{
		Json j;
		std::string err;

		EXPECT_TRUE(JsonParser::parse(read_file(dir_ / ("stats" + std::to_string(run) + ".json")),
					      &j, &err))
			<< err;
		return j;
	}

	static uint64_t num(const Json &j, const std::string &path)
	{
		const Json *v = j.path(path);

		return v == nullptr ? UINT64_MAX : std::stoull(v->text);
	}

	TempDir dir_;
	std::string dataplane_, ip_, ethtool_, ns_a_, ns_b_, veth_a_, veth_b_, ledger_, mnt_;
	std::string last_cmd_err_;
	std::vector<std::string> prefixes_;
	bool ns_made_ = false, veth_in_root_ = false, mounted_ = false;
	Child dp_;
	int run_ = 0;
	int sock_ = -1;
	std::vector<Donation> dons_;
	std::map<uint64_t, size_t> by_id_;
	std::set<uint64_t> promised_before_kill_;
	uint64_t next_id_ = 1;
	uint64_t sent_ = 0, bad_acks_ = 0, dup_answers_ = 0, promised_dup_ = 0, unavailable_ = 0;
};

// kill -9 at three points of a stream (early, middle, late of each chunk),
// restart on the same ledger each time, and finally retransmit everything.
TEST_F(LedgerCrash, KillNineMidStreamLosesNothingCountsNothingTwice)
{
	const size_t chunk = 6000;
	const double kill_at[] = {0.1, 0.5, 0.9};

	for (int cycle = 0; cycle < 3; cycle++) {
		size_t from = dons_.size();
		size_t target;

		make_donations(chunk);
		ASSERT_NO_FATAL_FAILURE(start_dataplane(ledger_));
		target = count_accepted() + (size_t)(chunk * kill_at[cycle]);
		// Stream: new donations and retransmits of everything not yet
		// answered; kill -9 once the kill point's worth was accepted.
		pump(0, from + chunk, now_ms() + 60000, [&] { return count_accepted() >= target; });
		ASSERT_GE(count_accepted(), target) << "the stream stalled before the kill point"
						    << dp_output(run_ - 1);
		dp_.signal(SIGKILL);
		ASSERT_TRUE(dp_.wait_exit(kExitMs));
		// ACKs already on the wire were sent, so they count as promises.
		while (drain_acks(200) > 0) {
		}
		for (const auto &d : dons_)
			if (d.acked_accepted)
				promised_before_kill_.insert(d.id);
		// What is promised so far is on disk, whatever else happened.
		ASSERT_NO_FATAL_FAILURE(check_ledger_matches(ledger_, false));
		EXPECT_GT(promised_before_kill_.size(), 0u);
	}

	// Restart, retransmit everything until each donation has its answer.
	ASSERT_NO_FATAL_FAILURE(start_dataplane(ledger_));
	std::string out = read_file(dir_ / ("dp" + std::to_string(run_ - 1) + ".out"));
	EXPECT_NE(out.find("within the dedupe retention restored"), std::string::npos) << out;
	for (auto &d : dons_)
		d.status = -1;  // ask again for every one
	promised_dup_ = 0;
	pump(0, dons_.size(), now_ms() + 90000, [] { return false; });
	stop_dataplane(SIGTERM);
	while (drain_acks(100) > 0) {
	}
	EXPECT_EQ(bad_acks_, 0u);
	// Every donation promised before a kill was answered DUPLICATE now.
	EXPECT_EQ(promised_dup_, promised_before_kill_.size());
	for (uint64_t id : promised_before_kill_)
		EXPECT_EQ(dons_[by_id_[id]].status, AMIL_ACK_DUPLICATE) << "donation " << id;
	ASSERT_NO_FATAL_FAILURE(check_ledger_matches(ledger_, true));
	std::printf("[ crash ] %zu donations, %zu acknowledged before a kill -9 (3 kills), "
		    "%llu frames sent, all in the ledger exactly once\n",
		    dons_.size(), promised_before_kill_.size(), (unsigned long long)sent_);
}

// Cut the last segment mid-record and corrupt the record before: recovery
// keeps the rest, saves the cut bytes, and the cut donations are new again.
TEST_F(LedgerCrash, TornAndCorruptTailIsCutRestIsKept)
{
	make_donations(2000);
	ASSERT_NO_FATAL_FAILURE(start_dataplane(ledger_));
	pump(0, dons_.size(), now_ms() + 60000, [] { return false; });
	stop_dataplane(SIGTERM);
	ASSERT_EQ(count_accepted(), dons_.size());

	// The newest segment; its last two records.
	std::string seg;
	for (const auto &e : std::filesystem::directory_iterator(ledger_))
		if (e.path().extension() == AMIL_LEDGER_SEG_SUFFIX && e.path().string() > seg &&
		    std::filesystem::file_size(e.path()) > AMIL_LEDGER_HDR_LEN)
			seg = e.path().string();
	ASSERT_FALSE(seg.empty());
	uint64_t size = std::filesystem::file_size(seg);
	ASSERT_EQ((size - AMIL_LEDGER_HDR_LEN) % AMIL_LEDGER_REC_LEN, 0u);
	uint64_t nrec = (size - AMIL_LEDGER_HDR_LEN) / AMIL_LEDGER_REC_LEN;
	ASSERT_GE(nrec, 3u);
	int fd = open(seg.c_str(), O_RDWR);
	ASSERT_GE(fd, 0);
	// Which donations the last two records hold.
	std::set<uint64_t> cut;
	for (uint64_t k = nrec - 2; k < nrec; k++) {
		uint8_t rec[AMIL_LEDGER_REC_LEN];
		struct amil_ledger_rec r;

		ASSERT_EQ(pread(fd, rec, sizeof(rec), (off_t)(AMIL_LEDGER_HDR_LEN + k * AMIL_LEDGER_REC_LEN)),
			  (ssize_t)sizeof(rec));
		ASSERT_EQ(amil_ledger_rec_decode(rec, &r), 0);
		cut.insert(r.donation_id);
	}
	// Flip a byte of the second-to-last record, tear the last in half.
	uint64_t flip = AMIL_LEDGER_HDR_LEN + (nrec - 2) * AMIL_LEDGER_REC_LEN + 20;
	uint8_t b;
	ASSERT_EQ(pread(fd, &b, 1, (off_t)flip), 1);
	b ^= 0x40;
	ASSERT_EQ(pwrite(fd, &b, 1, (off_t)flip), 1);
	ASSERT_EQ(ftruncate(fd, (off_t)(size - AMIL_LEDGER_REC_LEN / 2)), 0);
	close(fd);

	ASSERT_NO_FATAL_FAILURE(start_dataplane(ledger_));
	std::string out = read_file(dir_ / ("dp" + std::to_string(run_ - 1) + ".out"));
	EXPECT_NE(out.find("cut a torn tail of " + std::to_string(AMIL_LEDGER_REC_LEN * 3 / 2) +
			   " bytes"),
		  std::string::npos)
		<< out;
	EXPECT_NE(out.find(std::to_string(dons_.size() - 2) + " records"), std::string::npos) << out;
	EXPECT_EQ(std::filesystem::file_size(seg), size - AMIL_LEDGER_REC_LEN * 2);
	bool saved = false;
	for (const auto &e : std::filesystem::directory_iterator(ledger_))
		if (e.path().string().rfind(seg + ".tail-", 0) == 0) {
			saved = true;
			EXPECT_EQ(std::filesystem::file_size(e.path()), AMIL_LEDGER_REC_LEN * 3 / 2);
		}
	EXPECT_TRUE(saved) << "the cut bytes were not saved aside";

	// Retransmit all: kept ones DUPLICATE, cut ones ACCEPTED again.
	for (auto &d : dons_) {
		d.status = -1;
		d.acked_accepted = false;
	}
	pump(0, dons_.size(), now_ms() + 60000, [] { return false; });
	stop_dataplane(SIGTERM);
	for (const auto &d : dons_) {
		if (cut.count(d.id))
			EXPECT_EQ(d.status, AMIL_ACK_ACCEPTED) << "cut donation " << d.id;
		else
			EXPECT_EQ(d.status, AMIL_ACK_DUPLICATE) << "kept donation " << d.id;
	}
	ASSERT_NO_FATAL_FAILURE(check_ledger_matches(ledger_, true));
}

// The ledger on a small tmpfs: once it is full nothing more is ACCEPTED,
// the alarm is raised; when the tmpfs grows the same donations go through.
TEST_F(LedgerCrash, DiskFullAcksNothingUnrecordedAndResumes)
{
	mnt_ = dir_ / "small";
	ASSERT_EQ(mkdir(mnt_.c_str(), 0700), 0);
	// 256 KiB: the header and ~3270 records of 80 bytes.
	if (mount("amil-ledger-test", mnt_.c_str(), "tmpfs", 0, "size=256k,mode=0700") != 0)
		GTEST_SKIP() << "cannot mount a tmpfs here: " << strerror(errno);
	mounted_ = true;
	std::string ledger = mnt_ + "/ledger";

	make_donations(5000);
	ASSERT_NO_FATAL_FAILURE(start_dataplane(ledger, {"--ledger-batch", "256"}));
	// Every donation gets an answer (ACCEPTED or UNAVAILABLE), once.
	pump(0, dons_.size(), now_ms() + 60000, [] { return false; }, false);
	size_t accepted = count_accepted(), refused = 0;
	for (const auto &d : dons_)
		refused += d.status == AMIL_ACK_REJECTED;
	EXPECT_GT(accepted, 1000u);
	EXPECT_LT(accepted, dons_.size());
	EXPECT_GT(refused, 0u);
	EXPECT_EQ(accepted + refused, dons_.size());
	// While full: no ACCEPTED without its record.
	ASSERT_NO_FATAL_FAILURE(check_ledger_matches(ledger, false));

	// Room again: the refused donations are retried and accepted; the
	// ledger then holds every donation once.
	ASSERT_EQ(mount("amil-ledger-test", mnt_.c_str(), "tmpfs", MS_REMOUNT, "size=8m,mode=0700"), 0)
		<< strerror(errno);
	for (auto &d : dons_)
		if (d.status == AMIL_ACK_REJECTED)
			d.status = -1;
	pump(0, dons_.size(), now_ms() + 60000, [] { return false; });
	stop_dataplane(SIGTERM);
	for (const auto &d : dons_)
		EXPECT_TRUE(d.status == AMIL_ACK_ACCEPTED || d.status == AMIL_ACK_DUPLICATE)
			<< "donation " << d.id << " status " << d.status;
	ASSERT_NO_FATAL_FAILURE(check_ledger_matches(ledger, true));
	Json st = stats_of(run_ - 1);
	EXPECT_GT(num(st, "ledger.refused"), 0u);
	EXPECT_GT(num(st, "ledger.write_errors"), 0u);
	EXPECT_EQ(num(st, "ledger.last_errno"), (uint64_t)ENOSPC);
	EXPECT_EQ(num(st, "ledger.alarm"), 0u) << "the alarm did not clear after recovery";
	EXPECT_EQ(num(st, "ledger.records"), dons_.size());
	EXPECT_EQ(num(st, "total.rejected_by_reason.unavailable"), (uint64_t)refused);
}

} // namespace
