// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Integration: the real amilctl binary (path in AMIL_AMILCTL; meson test sets
// it) against a fake amil-controlplane implemented here with libzmq: a REP
// socket on <tmp>/ctl.sock answering canned schema-1 JSON, and a PUB socket
// on <tmp>/events.sock.
//
// Checks what operators and their scripts rely on: the human output of every
// command (values, alignment, relative and RFC 3339 times, exact money),
// --json passing the daemon's reply through unchanged, --watch repeating on
// time, events --follow printing streamed events (once each), the exit codes
// (0, 1 daemon error, 64 usage, 69 unreachable, 76 malformed reply), that
// every wait is bounded by --timeout, and colours only on a TTY without
// NO_COLOR.  The output primitives (ctl_fmt.h) get unit tests at the end.
#include <pty.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <zmq.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cp_json.h"
#include "ctl_fmt.h"
#include "ctl_show.h"
#include "integration_child.h"

using namespace itest;

namespace {

const uint64_t kNs = UINT64_C(1000000000);

uint64_t now_realtime_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * kNs + (uint64_t)ts.tv_nsec;
}

// ---- the fake daemon ----------------------------------------------------------

class FakeDaemon {
public:
	FakeDaemon() = default;
	FakeDaemon(const FakeDaemon &) = delete;
	FakeDaemon &operator=(const FakeDaemon &) = delete;
	~FakeDaemon() { stop(); }

	// Reply @json to a request whose first word is @word (or to exactly
	// @word when the request has arguments and that full text is set).
	void set_reply(const std::string &word, const std::string &json)
	{
		std::lock_guard<std::mutex> g(mu_);
		replies_[word] = json;
	}

	// Bind both sockets in @dir.  @silent: bind ctl.sock but never read it
	// (a hung daemon).  Returns "" or the problem.
	std::string start(const std::string &dir, bool silent = false)
	{
		int zero = 0;

		ctx_ = zmq_ctx_new();
		rep_ = zmq_socket(ctx_, ZMQ_REP);
		pub_ = zmq_socket(ctx_, ZMQ_PUB);
		zmq_setsockopt(rep_, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(pub_, ZMQ_LINGER, &zero, sizeof(zero));
		if (zmq_bind(rep_, ("ipc://" + dir + "/ctl.sock").c_str()) != 0 ||
		    zmq_bind(pub_, ("ipc://" + dir + "/events.sock").c_str()) != 0)
			return std::string("bind: ") + zmq_strerror(zmq_errno());
		silent_ = silent;
		running_ = true;
		thread_ = std::thread(&FakeDaemon::loop, this);
		return "";
	}

	void stop()
	{
		if (running_.exchange(false) && thread_.joinable())
			thread_.join();
		if (rep_ != nullptr)
			zmq_close(rep_);
		if (pub_ != nullptr)
			zmq_close(pub_);
		if (ctx_ != nullptr)
			zmq_ctx_term(ctx_);
		rep_ = pub_ = ctx_ = nullptr;
	}

	// Queue @json for the PUB socket (sent by the daemon thread: libzmq
	// sockets are not thread-safe).
	void publish(const std::string &json)
	{
		std::lock_guard<std::mutex> g(mu_);
		outbox_.push_back(json);
	}

	std::vector<std::string> requests()
	{
		std::lock_guard<std::mutex> g(mu_);
		return requests_;
	}

private:
	void loop()
	{
		while (running_) {
			zmq_pollitem_t it = {rep_, 0, ZMQ_POLLIN, 0};
			int n = silent_ ? (sleep_ms(10), 0) : zmq_poll(&it, 1, 10);

			if (n > 0 && (it.revents & ZMQ_POLLIN)) {
				char buf[4096];
				int len = zmq_recv(rep_, buf, sizeof(buf), 0);
				std::string req(buf, len > 0 ? (size_t)std::min(len, (int)sizeof(buf)) : 0);
				std::string reply = R"({"schema":1,"error":"unknown command"})";

				{
					std::lock_guard<std::mutex> g(mu_);
					requests_.push_back(req);
					if (replies_.count(req))
						reply = replies_[req];
					else if (replies_.count(req.substr(0, req.find(' '))))
						reply = replies_[req.substr(0, req.find(' '))];
				}
				zmq_send(rep_, reply.data(), reply.size(), 0);
			}
			std::deque<std::string> out;
			{
				std::lock_guard<std::mutex> g(mu_);
				out.swap(outbox_);
			}
			for (const auto &m : out)
				zmq_send(pub_, m.data(), m.size(), 0);
		}
	}

	void *ctx_ = nullptr, *rep_ = nullptr, *pub_ = nullptr;
	bool silent_ = false;
	std::atomic<bool> running_{false};
	std::thread thread_;
	std::mutex mu_;
	std::map<std::string, std::string> replies_;
	std::vector<std::string> requests_;
	std::deque<std::string> outbox_;
};

// ---- canned replies ---------------------------------------------------------------

// Every reply carries members a future daemon might add; amilctl must ignore them.
std::string status_json(uint64_t now)
{
	std::ostringstream s;

	s << R"({"schema":1,"future_top":{"x":[1,2]},"node":{"id":1,"name":"jkt-1","region":"ID-JKT",)"
	  << R"("endpoint":"tcp://198.18.0.1:7200","public_key":"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",)"
	  << R"("incarnation":3,"started_ns":)" << now - 12 * kNs
	  << R"(,"uptime_s":12.5,"version":"0.1.0","new_field":true},)"
	  << R"("cluster":{"id":"00c0ffee12345678","members":5,"alive":4,"suspect":0,"dead":1,"left":0},)"
	  << R"("health":"degraded","dataplane":{"state":"up","since_ns":)" << now - 3 * kNs
	  << R"(,"last_seen_ns":)" << now - kNs / 5
	  << R"(},"counters":{"pings_sent":18446744073709551615,"acks_received":1234},)"
	  << R"("registry":{"mode":"cp","names":2001,"configured":5,"quorum":3,"reachable":4,)"
	  << R"("map_digest":"0011223344556677"}})";
	return s.str();
}

std::string nodes_json(uint64_t now)
{
	std::ostringstream s;

	s << R"({"schema":1,"nodes":[)"
	  << R"({"id":1,"name":"jkt-1","region":"ID-JKT","endpoint":"tcp://198.18.0.1:7200","state":"alive","incarnation":3,"since_ns":)"
	  << now - 65 * kNs << R"(,"is_self":true,"extra":"x"},)"
	  << R"({"id":2,"name":"sby-1","region":"ID-SBY","endpoint":"tcp://198.18.0.2:7200","state":"suspect","incarnation":1,"since_ns":)"
	  << now - 2 * kNs << R"(,"is_self":false},)"
	  << R"({"id":10,"name":"riyadh-long-name-1","region":"SA-RUH","endpoint":"tcp://[2001:db8::10]:7200","state":"dead","incarnation":12,"since_ns":)"
	  << now - 7300 * kNs << R"(,"is_self":false}]})";
	return s.str();
}

std::string event_json(const std::string &type, int node, const std::string &name, uint64_t at_ns,
		       int inc = 1)
{
	std::ostringstream s;

	s << R"({"schema":1,"type":")" << type << R"(","node_id":)" << node << R"(,"name":")" << name
	  << R"(","incarnation":)" << inc << R"(,"from_id":1,"at_ns":)" << at_ns
	  << R"(,"at":"2026-11-25T10:00:00.123Z","later_field":[]})";
	return s.str();
}

std::string events_json(uint64_t now)
{
	return R"({"schema":1,"events":[)" + event_json("nodeup", 2, "sby-1", now - 30 * kNs) + "," +
	       event_json("suspect", 2, "sby-1", now - 20 * kNs) + "," +
	       event_json("nodedown", 10, "riyadh-long-name-1", now - 10 * kNs, 12) + "]}";
}

// The data plane's own stats object, shaped as amil_stats_write_json() writes it.
const char *kStats =
	R"({"node_id": 1, "ports": [{"port": 0, "name": "net_af_packet0", "rx": 2000, "tx": 1239, "tx_full": 0, "replies": 4, "ring_full": 1, "rx_missed": 7, "rx_nombuf": 0, "dropped": {"not_ours": 3, "unhandled": 0, "malformed": 2, "bad_ip_csum": 0, "bad_udp_csum": 0, "bad_len": 0, "bad_header": 0, "unknown_center": 0, "bad_tag": 0}}], )"
	R"("workers": [{"worker": 0, "lcore": 1, "rx": 1241, "tx": 1239, "accepted": 1234, "duplicate": 5, "rejected": {"bad_amount": 2, "bad_currency": 0}, "dropped": {"unknown_center": 0, "bad_tag": 0}}], )"
	R"("total": {"rx": 2000, "tx": 1239, "donations": 1241, "accepted": 1234, "duplicate": 5, "rejected": 2, "ring_full": 1, "tx_full": 0, "replies": 4, "rejected_by_reason": {"bad_amount": 2, "bad_currency": 0}, "dropped_by_reason": {"not_ours": 3, "malformed": 2, "bad_tag": 0}}, )"
	R"("totals_overflow": 0, "currencies": [{"currency": "IDR", "exponent": 0, "accepted": 1200, "amount_minor": 987654321, "levy_minor": 24691358}, )"
	R"({"currency": "SAR", "exponent": 2, "accepted": 34, "amount_minor": 123456789012345678901234567, "levy_minor": 5}], )"
	R"("ledger": {"enabled": 1, "records": 1234, "batches": 100, "bytes": 157952, "refused": 0, "write_errors": 0, "alarm": 0, "last_errno": 0, "segments": 1, "next_seq": 1235, "sync_ns_total": 12345600, "sync_ns_max": 1500000, "batch_max_seen": 32, "recovered": 0, "restored": 0, "tail_cut_bytes": 0}})";

std::string dp_json()
{
	return std::string(R"({"schema":1,"state":"up","stats":)") + kStats + "}";
}

// ---- running amilctl ---------------------------------------------------------------

struct Result {
	int code = -1;          // exit code, or -signal
	std::string out, err;
	int64_t ms = 0;         // wall time
};

class Amilctl : public ::testing::Test {
protected:
	void SetUp() override
	{
		const char *p = getenv("AMIL_AMILCTL");

		if (p == nullptr || access(p, X_OK) != 0)
			GTEST_SKIP() << "AMIL_AMILCTL is not set to the amilctl binary";
		bin_ = p;
		Watchdog::get().arm(60, ::testing::UnitTest::GetInstance()->current_test_info()->name());
		ASSERT_TRUE(dir_.create("amilctl"));
		ASSERT_TRUE(out_.create("amilctl-out"));
		unsetenv("AMIL_RUN_DIR");
		unsetenv("NO_COLOR");
	}
	void TearDown() override
	{
		daemon_.stop();
		Watchdog::get().disarm();
	}

	void start_daemon(bool silent = false)
	{
		uint64_t now = now_realtime_ns();

		daemon_.set_reply("status", status_json(now));
		daemon_.set_reply("nodes", nodes_json(now));
		daemon_.set_reply("events", events_json(now));
		daemon_.set_reply("dataplane-stats", dp_json());
		ASSERT_EQ(daemon_.start(dir_.path(), silent), "");
	}

	// Start amilctl with @args (after the binary, with --run-dir unless
	// @no_run_dir); @prefix goes before the binary (setpriv ...).
	void spawn(Child &c, const std::vector<std::string> &args, bool no_run_dir = false,
		   const std::vector<std::string> &prefix = {})
	{
		std::vector<std::string> av = prefix;

		av.push_back(bin_);
		if (!no_run_dir) {
			av.push_back("--run-dir");
			av.push_back(dir_.path());
		}
		av.insert(av.end(), args.begin(), args.end());
		ASSERT_EQ(c.start(av, out_ / "stdout", out_ / "stderr"), "");
	}

	Result finish(Child &c, int64_t t0, int timeout_ms = 15000)
	{
		Result r;

		EXPECT_TRUE(c.wait_exit(timeout_ms)) << "amilctl did not exit";
		c.kill_hard();
		r.ms = now_ms() - t0;
		if (WIFEXITED(c.status()))
			r.code = WEXITSTATUS(c.status());
		else if (WIFSIGNALED(c.status()))
			r.code = -WTERMSIG(c.status());
		r.out = read_file(out_ / "stdout");
		r.err = read_file(out_ / "stderr");
		return r;
	}

	Result run(const std::vector<std::string> &args, bool no_run_dir = false,
		   const std::vector<std::string> &prefix = {})
	{
		Child c;
		int64_t t0 = now_ms();

		spawn(c, args, no_run_dir, prefix);
		return finish(c, t0);
	}

	// Run until @ms have passed, then SIGINT.
	Result run_for(const std::vector<std::string> &args, int ms)
	{
		Child c;
		int64_t t0 = now_ms();

		spawn(c, args);
		sleep_ms(ms);
		c.signal(SIGINT);
		return finish(c, t0);
	}

	std::string bin_;
	TempDir dir_, out_;
	FakeDaemon daemon_;
};

std::vector<std::string> lines_of(const std::string &s)
{
	std::vector<std::string> v;
	std::istringstream in(s);
	std::string l;

	while (std::getline(in, l))
		v.push_back(l);
	return v;
}

size_t count_of(const std::string &hay, const std::string &needle)
{
	size_t n = 0;

	for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
		n++;
	return n;
}

// Does @s contain an RFC 3339 UTC time with milliseconds ("2026-11-25T10:00:00.123Z")?
bool has_rfc3339(const std::string &s)
{
	const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t n = strlen(pat);

	for (size_t i = 0; i + n <= s.size(); i++) {
		size_t k = 0;

		while (k < n && (pat[k] == 'd' ? isdigit((unsigned char)s[i + k]) != 0 : s[i + k] == pat[k]))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

// ---- help and usage -----------------------------------------------------------------

TEST_F(Amilctl, HelpListsEveryCommandAndOption)
{
	Result r = run({"--help"}, true);

	EXPECT_EQ(r.code, 0) << r.err;
	for (const char *w : {"status", "nodes", "events [N]", "dataplane stats", "--json", "--watch",
			      "--follow", "--run-dir", "--timeout", "64", "69"})
		EXPECT_NE(r.out.find(w), std::string::npos) << w << "\n" << r.out;
}

TEST_F(Amilctl, HelpPerCommand)
{
	Result r = run({"dataplane", "stats", "--help"}, true);
	EXPECT_EQ(r.code, 0);
	EXPECT_NE(r.out.find("Usage: amilctl dataplane stats"), std::string::npos) << r.out;

	r = run({"help", "events"}, true);
	EXPECT_EQ(r.code, 0);
	EXPECT_NE(r.out.find("--follow"), std::string::npos) << r.out;

	r = run({"status", "-h"}, true);
	EXPECT_EQ(r.code, 0);
	EXPECT_NE(r.out.find("Usage: amilctl status"), std::string::npos) << r.out;
	EXPECT_EQ(r.out.find("--follow"), std::string::npos) << "status does not take --follow";
}

TEST_F(Amilctl, ListCommandsFeedsTheCompletion)
{
	Result r = run({"--list-commands"}, true);

	EXPECT_EQ(r.code, 0);
	EXPECT_EQ(r.out, "status\nnodes\nevents\ndataplane stats\nregistry list\nregistry get\n"
			 "registry register\nregistry unregister\nregistry import\ngroups\ngroup join\n"
			 "group leave\n"
			 "campaigns\nbroadcast\nhelp\n");
}

// registry import FILE: the file's lines, after the protocol word, as one
// request; a missing file is a clear error (66) without asking the daemon;
// --json works for commands that change things too.
TEST_F(Amilctl, RegistryImportSendsTheFileAsOneRequest)
{
	ASSERT_NO_FATAL_FAILURE(start_daemon());
	std::string path = out_ / "names.txt";
	ASSERT_TRUE(write_file(path, "jkt/a 1\njkt/b 2\n"));
	daemon_.set_reply("registry-register-batch\njkt/a 1\njkt/b 2\n",
			  R"({"schema":1,"ok":true,"registered":2,"refused":0,"no_majority":0,"names":2})");
	Result r = run({"--json", "registry", "import", path});
	EXPECT_EQ(r.code, 0) << r.err;
	EXPECT_NE(r.out.find("\"registered\":2"), std::string::npos) << r.out;
	ASSERT_FALSE(daemon_.requests().empty());
	EXPECT_EQ(daemon_.requests().back(), "registry-register-batch\njkt/a 1\njkt/b 2\n");
	size_t asked = daemon_.requests().size();

	ASSERT_TRUE(write_file(path, "jkt/a 1\ngroup:x 2\n"));
	daemon_.set_reply("registry-register-batch\njkt/a 1\ngroup:x 2\n",
			  R"({"schema":1,"ok":false,"registered":1,"refused":1,"no_majority":0,)"
			  R"("first_error":"group:x: reserved","names":1})");
	r = run({"registry", "import", path});
	EXPECT_EQ(r.code, 1) << "a refused line is an error";
	EXPECT_NE(r.err.find("first refused: group:x: reserved"), std::string::npos) << r.err;
	asked = daemon_.requests().size();

	r = run({"registry", "import", out_ / "no-such-file"});
	EXPECT_EQ(r.code, 66);
	EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;
	EXPECT_EQ(daemon_.requests().size(), asked) << "the daemon was asked anyway";

	daemon_.set_reply("registry-register", R"({"schema":1,"ok":true,"names":3})");
	r = run({"--json", "registry", "register", "jkt/c", "3"});
	EXPECT_EQ(r.code, 0) << r.err;
	EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos) << r.out;
	r = run({"--watch", "1", "registry", "register", "jkt/c", "3"});
	EXPECT_EQ(r.code, 64);
	EXPECT_NE(r.err.find("does not take --watch"), std::string::npos) << r.err;
}

TEST_F(Amilctl, UsageErrorsExit64WithoutAskingTheDaemon)
{
	const std::vector<std::vector<std::string>> bad = {
		{},
		{"bogus"},
		{"--bogus", "status"},
		{"--watch", "0", "status"},
		{"--watch", "-1", "status"},
		{"--watch", "abc", "status"},
		{"--watch", "0.05", "status"},
		{"--watch"},
		{"--timeout", "0", "status"},
		{"--timeout", "x", "status"},
		{"status", "extra"},
		{"nodes", "1"},
		{"events", "0"},
		{"events", "abc"},
		{"events", "1", "2"},
		{"events", "-5"},
		{"status", "--follow"},
		{"events", "--follow", "--watch", "1"},
		{"dataplane"},
		{"dataplane", "nope"},
		{"--run-dir", "", "status"},
		{"--run-dir", std::string(200, 'd'), "status"},
	};

	start_daemon();
	for (const auto &args : bad) {
		std::string what;
		for (const auto &a : args)
			what += a + " ";
		// --run-dir is given by run() too; the later one wins (getopt).
		Result r = run(args);
		EXPECT_EQ(r.code, 64) << what << "\n" << r.err;
		EXPECT_NE(r.err.find("amilctl"), std::string::npos) << what;
		EXPECT_NE(r.err.find("--help"), std::string::npos) << what << r.err;
		EXPECT_TRUE(r.out.empty()) << what << r.out;
	}
	EXPECT_TRUE(daemon_.requests().empty()) << "a usage error reached the daemon";
}

// ---- each command -------------------------------------------------------------------

TEST_F(Amilctl, StatusHuman)
{
	start_daemon();
	Result r = run({"status"});

	ASSERT_EQ(r.code, 0) << r.err;
	EXPECT_EQ(daemon_.requests(), std::vector<std::string>{"status"});
	for (const char *w :
	     {"jkt-1 (id 1, region ID-JKT)", "tcp://198.18.0.1:7200", "0.1.0, incarnation 3",
	      "uptime 12.5s", "degraded", "00c0ffee12345678: 5 members: 4 alive, 0 suspect, 1 dead, 0 left",
	      "up since", "12.", "s ago", "18446744073709551615", "acks_received", "COUNTER",
	      "cp, 2001 names; 4 of 5 configured appliances reachable, 3 needed"})
		EXPECT_NE(r.out.find(w), std::string::npos) << w << "\n" << r.out;
	EXPECT_TRUE(has_rfc3339(r.out)) << r.out;
	EXPECT_EQ(r.out.find('\033'), std::string::npos) << "colour on a non-TTY";
	EXPECT_EQ(r.out.find("future_top"), std::string::npos) << "unknown fields are ignored";
	// Key column aligned: every value starts at the same column.
	for (const auto &l : lines_of(r.out)) {
		if (l.rfind("node ", 0) == 0 || l.rfind("health ", 0) == 0 ||
		    l.rfind("cluster ", 0) == 0) {
			ASSERT_GT(l.size(), 12u);
			EXPECT_NE(l[12], ' ') << l;
			EXPECT_EQ(l[11], ' ') << l;
		}
	}
}

TEST_F(Amilctl, JsonPassesTheReplyThroughForEveryReadCommand)
{
	start_daemon();
	uint64_t now = now_realtime_ns();
	// Fixed replies so the expected text is known.
	daemon_.set_reply("status", status_json(now));
	daemon_.set_reply("nodes", nodes_json(now));
	daemon_.set_reply("events", events_json(now));
	const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
		{{"status", "--json"}, status_json(now)},
		{{"--json", "nodes"}, nodes_json(now)},
		{{"events", "-j", "3"}, events_json(now)},
		{{"dataplane", "stats", "--json"}, dp_json()},
	};

	for (const auto &c : cases) {
		Result r = run(c.first);
		EXPECT_EQ(r.code, 0) << c.first[0] << r.err;
		EXPECT_EQ(r.out, c.second + "\n") << c.first[0];
	}
	auto reqs = daemon_.requests();
	ASSERT_EQ(reqs.size(), 4u);
	EXPECT_EQ(reqs[2], "events 3");
	EXPECT_EQ(reqs[3], "dataplane-stats");
}

TEST_F(Amilctl, NodesTableIsAligned)
{
	start_daemon();
	Result r = run({"nodes"});

	ASSERT_EQ(r.code, 0) << r.err;
	auto ls = lines_of(r.out);
	ASSERT_GE(ls.size(), 5u) << r.out;
	size_t state_col = ls[0].find("STATE"), ep_col = ls[0].find("ENDPOINT");
	ASSERT_NE(state_col, std::string::npos) << ls[0];
	const char *states[] = {"alive", "suspect", "dead"};
	const char *eps[] = {"tcp://198.18.0.1:7200", "tcp://198.18.0.2:7200", "tcp://[2001:db8::10]:7200"};
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(ls[1 + i].find(states[i]), state_col) << ls[1 + i];
		EXPECT_EQ(ls[1 + i].find(eps[i]), ep_col) << ls[1 + i];
		EXPECT_TRUE(has_rfc3339(ls[1 + i])) << ls[1 + i];
	}
	EXPECT_NE(ls[1].find("jkt-1 (self)"), std::string::npos) << ls[1];
	EXPECT_NE(ls[1].find("1m05s ago"), std::string::npos) << ls[1];
	EXPECT_NE(ls[3].find("2h01m ago"), std::string::npos) << ls[3];
	// IDs right-aligned: "10" ends where "1" ends.
	EXPECT_EQ(ls[1].find("1 "), ls[3].find("10 ") + 1) << ls[1] << "\n" << ls[3];
	EXPECT_NE(r.out.find("3 nodes: 1 alive, 1 suspect, 1 dead, 0 left"), std::string::npos) << r.out;
}

TEST_F(Amilctl, EventsTable)
{
	start_daemon();
	Result r = run({"events", "5"});

	ASSERT_EQ(r.code, 0) << r.err;
	EXPECT_EQ(daemon_.requests(), std::vector<std::string>{"events 5"});
	auto ls = lines_of(r.out);
	ASSERT_EQ(ls.size(), 4u) << r.out;
	EXPECT_NE(ls[0].find("EVENT"), std::string::npos);
	EXPECT_NE(ls[1].find("nodeup"), std::string::npos);
	EXPECT_NE(ls[1].find("sby-1 (2)"), std::string::npos);
	EXPECT_NE(ls[1].find("30.0s ago"), std::string::npos) << ls[1];
	EXPECT_NE(ls[3].find("riyadh-long-name-1 (10)"), std::string::npos);
	EXPECT_EQ(ls[1].find("nodeup"), ls[3].find("nodedown")) << "EVENT column aligned";

	r = run({"events"});
	EXPECT_EQ(r.code, 0);
	EXPECT_EQ(daemon_.requests().back(), "events") << "no N: the daemon's default";
}

TEST_F(Amilctl, EventsEmpty)
{
	start_daemon();
	daemon_.set_reply("events", R"({"schema":1,"events":[]})");
	Result r = run({"events"});

	EXPECT_EQ(r.code, 0);
	EXPECT_EQ(r.out, "no events\n");
}

TEST_F(Amilctl, DataplaneStatsHumanIsExact)
{
	start_daemon();
	Result r = run({"dataplane", "stats"});

	ASSERT_EQ(r.code, 0) << r.err;
	for (const char *w : {"1241 received: 1234 accepted, 5 duplicate, 2 rejected",
			      "bad_amount 2", "not_ours 3, malformed 2",
			      "1234 records durable in 100 batches (largest 32)",
			      "mean 0.123 ms, max 1.500 ms; next seq 1235", "CURRENCY", "IDR",
			      "987654321", "1234567890123456789012345.67", "0.05", "net_af_packet0",
			      "WORKER"})
		EXPECT_NE(r.out.find(w), std::string::npos) << w << "\n" << r.out;
	EXPECT_EQ(r.out.find("bad_currency"), std::string::npos) << "zero reasons are left out";
}

TEST_F(Amilctl, DataplaneDownHasNoStats)
{
	start_daemon();
	daemon_.set_reply("dataplane-stats", R"({"schema":1,"state":"down","stats":null})");
	Result r = run({"dataplane", "stats"});

	EXPECT_EQ(r.code, 0) << r.err;
	EXPECT_NE(r.out.find("down"), std::string::npos);
	EXPECT_NE(r.out.find("no statistics"), std::string::npos) << r.out;
}

TEST_F(Amilctl, RunDirFromEnvironmentAndOptionWins)
{
	start_daemon();
	setenv("AMIL_RUN_DIR", dir_.path().c_str(), 1);
	Result r = run({"status"}, true);
	EXPECT_EQ(r.code, 0) << r.err;

	setenv("AMIL_RUN_DIR", "/nonexistent-amil", 1);
	r = run({"status"}, false);  // --run-dir given: wins over the environment
	EXPECT_EQ(r.code, 0) << r.err;

	r = run({"status"}, true);
	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("/nonexistent-amil"), std::string::npos) << r.err;
	unsetenv("AMIL_RUN_DIR");
	EXPECT_EQ(daemon_.requests().size(), 2u);
}

// ---- --watch and --follow -----------------------------------------------------------

TEST_F(Amilctl, WatchRepeatsEverySecond)
{
	start_daemon();
	Result r = run_for({"--watch", "1", "status"}, 2500);

	EXPECT_EQ(r.code, 0) << "SIGINT ends a watch cleanly: " << r.err;
	size_t screens = count_of(r.out, "Every 1s: amilctl status");
	size_t asked = daemon_.requests().size();
	// Refreshes at 0, 1 and 2 s; allow one fewer for a slow start.
	EXPECT_GE(screens, 2u) << r.out;
	EXPECT_LE(screens, 3u) << r.out;
	EXPECT_EQ(count_of(r.out, "jkt-1 (id 1"), screens);
	EXPECT_GE(asked, screens);
	EXPECT_LE(asked, screens + 1);  // SIGINT may land during a request
}

TEST_F(Amilctl, WatchJsonIsOneLinePerRefresh)
{
	start_daemon();
	Result r = run_for({"--watch", "0.5", "--json", "nodes"}, 1300);

	EXPECT_EQ(r.code, 0) << r.err;
	auto ls = lines_of(r.out);
	EXPECT_GE(ls.size(), 2u) << r.out;
	EXPECT_LE(ls.size(), 3u) << r.out;
	for (const auto &l : ls) {
		char err[128];
		struct amil_json *d = amil_json_parse(l.data(), l.size(), err, sizeof(err));
		ASSERT_NE(d, nullptr) << err << ": " << l;
		EXPECT_EQ(amil_json_len(amil_json_get(amil_json_root(d), "nodes")), 3u);
		amil_json_destroy(&d);
	}
}

TEST_F(Amilctl, WatchKeepsGoingWhenTheDaemonErrsLater)
{
	start_daemon();
	Child c;
	int64_t t0 = now_ms();

	spawn(c, {"--watch", "0.3", "status"});
	sleep_ms(500);
	daemon_.set_reply("status", R"({"schema":1,"error":"shutting down"})");
	sleep_ms(700);
	EXPECT_FALSE(c.poll_exit()) << "a later failure must not end the watch";
	c.signal(SIGINT);
	Result r = finish(c, t0);
	EXPECT_EQ(r.code, 0);
	EXPECT_NE(r.err.find("shutting down"), std::string::npos) << r.err;
}

TEST_F(Amilctl, WatchEndsAtOnceWhenFirstRefreshFails)
{
	Result r = run({"--watch", "1", "status"});

	EXPECT_EQ(r.code, 69) << r.err;
	EXPECT_LT(r.ms, 3000);
}

// Publish @ev until it shows in the output file (the SUB socket joins late:
// the slow-joiner problem), up to 5 s.
bool publish_until_seen(FakeDaemon &d, const std::string &ev, const std::string &file,
			const std::string &needle)
{
	for (int i = 0; i < 50; i++) {
		if (read_file(file).find(needle) != std::string::npos)
			return true;
		d.publish(ev);
		sleep_ms(100);
	}
	return read_file(file).find(needle) != std::string::npos;
}

TEST_F(Amilctl, FollowPrintsHistoryThenStreamedEvents)
{
	start_daemon();
	Child c;
	int64_t t0 = now_ms();
	uint64_t now = now_realtime_ns();

	spawn(c, {"events", "--follow"});
	EXPECT_TRUE(publish_until_seen(daemon_, event_json("unsuspect", 2, "sby-1", now, 2),
				       out_ / "stdout", "unsuspect"));
	EXPECT_TRUE(publish_until_seen(daemon_,
				       event_json("dataplane_down", 1, "jkt-1", now + kNs, 3),
				       out_ / "stdout", "dataplane_down"));
	// Not JSON, then a non-object: reported, skipped, the stream goes on.
	daemon_.publish("{broken");
	daemon_.publish("[1]");
	EXPECT_TRUE(publish_until_seen(daemon_, event_json("left", 10, "riyadh-long-name-1", now + 2 * kNs),
				       out_ / "stdout", "left"));
	c.signal(SIGINT);
	Result r = finish(c, t0);

	EXPECT_EQ(r.code, 0) << r.err;
	EXPECT_EQ(daemon_.requests()[0], "events 10") << "history: the last 10 by default";
	auto ls = lines_of(r.out);
	ASSERT_GE(ls.size(), 7u) << r.out;
	EXPECT_NE(ls[0].find("TIME"), std::string::npos);
	EXPECT_NE(ls[1].find("nodeup"), std::string::npos);
	EXPECT_NE(ls[3].find("nodedown"), std::string::npos);
	EXPECT_NE(ls[4].find("unsuspect"), std::string::npos);
	EXPECT_NE(r.err.find("malformed event"), std::string::npos) << r.err;
	// Fixed columns: the node column starts at the same place on every line.
	size_t node_col = ls[0].find("NODE");
	for (size_t i = 1; i < ls.size(); i++)
		EXPECT_EQ(ls[i].find_first_not_of(' ', node_col - 1), node_col) << ls[i];
}

TEST_F(Amilctl, FollowDropsAStreamedCopyOfAHistoryEvent)
{
	start_daemon();
	uint64_t now = now_realtime_ns();
	std::string last = event_json("nodedown", 10, "riyadh-long-name-1", now - 10 * kNs, 12);
	daemon_.set_reply("events", R"({"schema":1,"events":[)" + last + "]}");
	Child c;
	int64_t t0 = now_ms();

	spawn(c, {"events", "--follow", "--json", "5"});
	// The copy first, then a new event, together each round: once the
	// new one is seen, the copy was delivered too and must have been dropped.
	bool seen = false;
	for (int i = 0; i < 50 && !seen; i++) {
		daemon_.publish(last);
		daemon_.publish(event_json("nodeup", 10, "riyadh-long-name-1", now, 13));
		sleep_ms(100);
		seen = read_file(out_ / "stdout").find("\"nodeup\"") != std::string::npos;
	}
	c.signal(SIGINT);
	Result r = finish(c, t0);

	EXPECT_TRUE(seen);
	EXPECT_EQ(count_of(r.out, "\"nodedown\""), 1u) << r.out;
	EXPECT_EQ(daemon_.requests()[0], "events 5");
	// --json --follow: one JSON object per line, streamed ones verbatim.
	auto ls = lines_of(r.out);
	ASSERT_GE(ls.size(), 2u);
	EXPECT_EQ(ls[1], event_json("nodeup", 10, "riyadh-long-name-1", now, 13));
	for (const auto &l : ls) {
		struct amil_json *d = amil_json_parse(l.data(), l.size(), nullptr, 0);
		EXPECT_NE(d, nullptr) << l;
		amil_json_destroy(&d);
	}
}

TEST_F(Amilctl, FollowWithoutEventsSocketExits69)
{
	start_daemon();
	ASSERT_EQ(unlink((dir_ / "events.sock").c_str()), 0);
	Result r = run({"events", "--follow"});

	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("events.sock"), std::string::npos) << r.err;
}

// ---- unreachable daemon -------------------------------------------------------------

TEST_F(Amilctl, NoRunDirExits69Fast)
{
	Result r = run({"--run-dir", "/nonexistent/amil", "status"}, true);

	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
	EXPECT_LT(r.ms, 1500);
}

TEST_F(Amilctl, NoSocketExits69Fast)
{
	Result r = run({"nodes"});

	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("ctl.sock does not exist"), std::string::npos) << r.err;
	EXPECT_LT(r.ms, 1500);
}

TEST_F(Amilctl, StaleSocketExits69Fast)
{
	// A socket file nobody listens on: what a crashed daemon leaves.
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = {};
	std::string p = dir_ / "ctl.sock";

	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, p.c_str(), sizeof(sun.sun_path) - 1);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	Result r = run({"status", "--timeout", "5000"});

	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("stale"), std::string::npos) << r.err;
	EXPECT_LT(r.ms, 1500) << "detected without waiting for the timeout";
}

TEST_F(Amilctl, NotASocketExits69)
{
	ASSERT_TRUE(write_file(dir_ / "ctl.sock", "x"));
	Result r = run({"status"});

	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("not a socket"), std::string::npos) << r.err;
}

TEST_F(Amilctl, PermissionDeniedExits69)
{
	if (geteuid() != 0 && getuid() != 0) {
		// Not root: mode 000 is enough to lock us out.
		start_daemon();
		ASSERT_EQ(chmod((dir_ / "ctl.sock").c_str(), 0), 0);
		Result r = run({"status"});
		EXPECT_EQ(r.code, 69);
		EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
		return;
	}
	// Root ignores modes: run amilctl as nobody through setpriv.
	if (access("/usr/bin/setpriv", X_OK) != 0)
		GTEST_SKIP() << "running as root and no setpriv to drop privileges";
	start_daemon();
	std::vector<std::string> nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
					   "--clear-groups", "--"};
	ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
	ASSERT_EQ(chmod(out_.path().c_str(), 0777), 0);

	ASSERT_EQ(chmod((dir_ / "ctl.sock").c_str(), 0666), 0);
	Result r = run({"status"}, false, nobody);
	if (r.code == 127 || r.err.find("setpriv") != std::string::npos)
		GTEST_SKIP() << "setpriv cannot switch to nobody here: " << r.err;
	ASSERT_EQ(r.code, 0) << "control: nobody can use a 0666 socket: " << r.err;

	ASSERT_EQ(chmod((dir_ / "ctl.sock").c_str(), 0), 0);
	r = run({"status"}, false, nobody);
	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("permission denied on " + (dir_ / "ctl.sock")), std::string::npos) << r.err;
	EXPECT_LT(r.ms, 1500);

	// The daemon's layout: run dir 0750, not ours: we cannot even look in.
	ASSERT_EQ(chmod((dir_ / "ctl.sock").c_str(), 0660), 0);
	ASSERT_EQ(chmod(dir_.path().c_str(), 0750), 0);
	r = run({"nodes"}, false, nobody);
	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("group 'amil'"), std::string::npos) << r.err;
	EXPECT_EQ(daemon_.requests().size(), 1u) << "only the control run reached the daemon";
}

TEST_F(Amilctl, HungDaemonTimesOutWithinTheBound)
{
	start_daemon(true);
	Result r = run({"status", "--timeout", "300"});

	EXPECT_EQ(r.code, 69);
	EXPECT_NE(r.err.find("did not answer within 300 ms"), std::string::npos) << r.err;
	EXPECT_GE(r.ms, 250);
	EXPECT_LT(r.ms, 2000);

	r = run({"nodes"});  // the default, 2000 ms
	EXPECT_EQ(r.code, 69);
	EXPECT_GE(r.ms, 1900);
	EXPECT_LT(r.ms, 4500);
}

// ---- bad replies ------------------------------------------------------------------

TEST_F(Amilctl, MalformedRepliesAreClearErrorsNotCrashes)
{
	start_daemon();
	const std::vector<std::pair<std::string, std::string>> bad = {
		{"{not json", "offset 1"},
		{"", "offset 0"},
		{R"({"schema":1,"nodes":[)", "offset"},
		{R"({"schema":1} trailing)", "after the JSON value"},
		{R"([1,2])", "not an object"},
		{R"({"nodes":[]})", "schema"},
		{R"({"schema":"1","nodes":[]})", "schema"},
		{R"({"schema":2,"nodes":[]})", "schema 2"},
		{R"({"schema":1,"nodes":{}})", "no \"nodes\" array"},
		{std::string(70, '[') + std::string(70, ']'), "nesting"},
	};

	for (const auto &b : bad) {
		daemon_.set_reply("nodes", b.first);
		Result r = run({"nodes"});
		EXPECT_EQ(r.code, 76) << b.first << "\n" << r.err;
		EXPECT_NE(r.err.find(b.second), std::string::npos) << b.first << "\n" << r.err;
		EXPECT_TRUE(r.out.empty()) << b.first;
	}
	// Fields of the wrong type are shown as they are, not trusted or crashed on.
	daemon_.set_reply("status", R"({"schema":1,"node":{"id":"one","name":7,"started_ns":-1},)"
				    R"("cluster":[],"health":null,"dataplane":"up","counters":{"a":{"b":1}}})");
	Result r = run({"status"});
	EXPECT_EQ(r.code, 0) << r.err;
	EXPECT_NE(r.out.find("7 (id one"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("{\"b\":1}"), std::string::npos) << r.out;
}

TEST_F(Amilctl, DaemonErrorExits1)
{
	start_daemon();
	daemon_.set_reply("status", R"({"schema":1,"error":"not ready: joining the cluster"})");
	Result r = run({"status"});

	EXPECT_EQ(r.code, 1);
	EXPECT_NE(r.err.find("not ready: joining the cluster"), std::string::npos) << r.err;
	EXPECT_TRUE(r.out.empty());

	r = run({"status", "--json"});
	EXPECT_EQ(r.code, 1);
	EXPECT_EQ(r.out, R"({"schema":1,"error":"not ready: joining the cluster"})" "\n");
}

// ---- colours ------------------------------------------------------------------------

// Run amilctl with its stdout on a pseudo-terminal; return what it wrote.
std::string run_on_pty(const std::string &bin, const std::vector<std::string> &args, bool no_color)
{
	std::vector<std::string> av = {bin};
	std::vector<char *> cav;
	std::string out;
	int master;

	av.insert(av.end(), args.begin(), args.end());
	for (auto &a : av)
		cav.push_back(const_cast<char *>(a.c_str()));
	cav.push_back(nullptr);
	if (no_color)
		setenv("NO_COLOR", "1", 1);
	fflush(nullptr);
	pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
	if (pid == 0) {
		execv(cav[0], cav.data());
		_exit(127);
	}
	unsetenv("NO_COLOR");
	if (pid < 0)
		return "forkpty failed";
	Watchdog::get().add_pid(pid);
	for (;;) {
		char buf[4096];
		ssize_t n = read(master, buf, sizeof(buf));

		if (n <= 0)  // EIO once the child has exited and closed its side
			break;
		out.append(buf, (size_t)n);
	}
	waitpid(pid, nullptr, 0);
	Watchdog::get().remove_pid(pid);
	close(master);
	return out;
}

TEST_F(Amilctl, ColoursOnlyOnATerminalWithoutNoColor)
{
	start_daemon();
	std::vector<std::string> args = {"--run-dir", dir_.path(), "nodes"};
	std::string tty = run_on_pty(bin_, args, false);

	EXPECT_NE(tty.find(std::string(AMIL_CTL_YELLOW) + "suspect"), std::string::npos) << tty;
	EXPECT_NE(tty.find(std::string(AMIL_CTL_GREEN) + "alive"), std::string::npos) << tty;

	std::string plain = run_on_pty(bin_, args, true);
	EXPECT_NE(plain.find("suspect"), std::string::npos) << plain;
	EXPECT_EQ(plain.find('\033'), std::string::npos) << "NO_COLOR must win: " << plain;
}

// ---- output primitives (ctl_fmt.h) --------------------------------------------------

TEST(CtlFmt, MoneyIsExact)
{
	char b[80];

	EXPECT_EQ(amil_ctl_money("123456", 2, b, sizeof(b)), 0);
	EXPECT_STREQ(b, "1234.56");
	EXPECT_EQ(amil_ctl_money("-5", 2, b, sizeof(b)), 0);
	EXPECT_STREQ(b, "-0.05");
	EXPECT_EQ(amil_ctl_money("0", 3, b, sizeof(b)), 0);
	EXPECT_STREQ(b, "0.000");
	EXPECT_EQ(amil_ctl_money("-0", 0, b, sizeof(b)), 0);
	EXPECT_STREQ(b, "0");
	EXPECT_EQ(amil_ctl_money("170141183460469231731687303715884105727", 4, b, sizeof(b)), 0);
	EXPECT_STREQ(b, "17014118346046923173168730371588410.5727");
	EXPECT_EQ(amil_ctl_money("007", 0, b, sizeof(b)), 0);
	EXPECT_STREQ(b, "7");
	EXPECT_EQ(amil_ctl_money("1.5", 2, b, sizeof(b)), -EINVAL);
	EXPECT_STREQ(b, "1.5") << "refused input is shown unchanged";
	EXPECT_EQ(amil_ctl_money("", 2, b, sizeof(b)), -EINVAL);
	EXPECT_EQ(amil_ctl_money("12", 19, b, sizeof(b)), -EINVAL);
	EXPECT_EQ(amil_ctl_money("123456", 2, b, 6), -EINVAL) << "too small a buffer";
}

TEST(CtlFmt, Times)
{
	char b[AMIL_CTL_TIME_LEN];
	uint64_t t = UINT64_C(1795600800) * kNs + 123456789;  // 2026-11-25T10:00:00.123456789Z

	EXPECT_STREQ(amil_ctl_rfc3339(t, b), "2026-11-25T10:00:00.123Z");
	EXPECT_STREQ(amil_ctl_ago(t, t + 3 * kNs + 250000000, b), "3.2s ago");
	EXPECT_STREQ(amil_ctl_ago(t, t + 400000000, b), "0.4s ago");
	EXPECT_STREQ(amil_ctl_ago(t, t + 252 * kNs, b), "4m12s ago");
	EXPECT_STREQ(amil_ctl_ago(t, t + 7380 * kNs, b), "2h03m ago");
	EXPECT_STREQ(amil_ctl_ago(t, t + (3 * 86400 + 4 * 3600) * kNs, b), "3d04h ago");
	EXPECT_STREQ(amil_ctl_ago(t + 1500000000, t, b), "in 1.5s");
	EXPECT_STREQ(amil_ctl_duration(850000000, b), "850ms");
	EXPECT_STREQ(amil_ctl_duration(12 * kNs + 500000000, b), "12.5s");
}

TEST(CtlFmt, TableAlignsUtf8AndRightColumns)
{
	const char *hdr[] = {"NAME", ">COUNT", "NOTE"};
	const char *r1[] = {"Zürich-1", "5", "a"};
	const char *r2[] = {"x", "12345", nullptr};
	struct amil_ctl_table *t = amil_ctl_table_new(3, hdr);
	char *buf = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_NE(t, nullptr);
	ASSERT_EQ(amil_ctl_table_add(t, r1, nullptr), 0);
	ASSERT_EQ(amil_ctl_table_add(t, r2, nullptr), 0);
	EXPECT_EQ(amil_ctl_table_rows(t), 2u);
	struct amil_ctl_out o = {f, false, 0};
	amil_ctl_table_print(t, &o, "  ");
	fclose(f);
	EXPECT_EQ(std::string(buf), "  NAME      COUNT  NOTE\n"
				    "  Zürich-1      5  a\n"
				    "  x         12345  -\n");
	free(buf);
	amil_ctl_table_destroy(&t);
	EXPECT_EQ(t, nullptr);
	amil_ctl_table_destroy(&t);  // NULL is fine
	EXPECT_EQ(amil_ctl_width("Zürich"), 6u);
}

// ---- renderers without a daemon (ctl_show.h) -----------------------------------------

std::string render(amil_ctl_show_fn *fn, const std::string &json, int *rc)
{
	struct amil_json *d = amil_json_parse(json.data(), json.size(), nullptr, 0);
	char *buf = nullptr, err[128] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct amil_ctl_out o = {f, false, 0};

	*rc = d != nullptr ? fn(amil_json_root(d), &o, err, sizeof(err)) : -999;
	fclose(f);
	std::string s(buf, len);
	free(buf);
	amil_json_destroy(&d);
	return s;
}

// A future command (registry list, ...) starts with the generic renderer.
TEST(CtlShow, GenericRendersAnyReply)
{
	int rc;
	std::string s = render(amil_ctl_show_generic,
			       R"({"schema":1,"centers":[{"id":7,"name":"Masjid Istiqlal"}],"n":1,"e":{}})", &rc);

	EXPECT_EQ(rc, 0);
	EXPECT_EQ(s, "centers:\n  -\n    id: 7\n    name: Masjid Istiqlal\nn: 1\ne: {}\n");
}

TEST(CtlShow, ReplyEnvelope)
{
	const std::pair<const char *, int> cases[] = {
		{R"({"schema":1,"x":1})", 0},
		{R"({"schema":1,"error":"no such node"})", -EREMOTEIO},
		{R"({"schema":9,"error":"old amilctl"})", -EREMOTEIO},
		{R"({"schema":2})", -EPROTO},
		{R"({"schema":"1"})", -EPROTO},
		{R"({})", -EPROTO},
		{R"("status")", -EPROTO},
	};

	for (const auto &c : cases) {
		struct amil_json *d = amil_json_parse(c.first, strlen(c.first), nullptr, 0);
		char err[128] = "";

		ASSERT_NE(d, nullptr);
		EXPECT_EQ(amil_ctl_reply_check(amil_json_root(d), err, sizeof(err)), c.second) << c.first;
		if (c.second == -EREMOTEIO) {
			EXPECT_NE(std::string(err).find("amil-controlplane: "), std::string::npos) << err;
		}
		amil_json_destroy(&d);
	}
}

TEST(CtlShow, RenderersRefuseAReplyWithoutTheirMember)
{
	int rc;

	render(amil_ctl_show_nodes, R"({"schema":1})", &rc);
	EXPECT_EQ(rc, -EBADMSG);
	render(amil_ctl_show_events, R"({"schema":1,"events":{}})", &rc);
	EXPECT_EQ(rc, -EBADMSG);
	render(amil_ctl_show_status, R"({"schema":1,"node":[]})", &rc);
	EXPECT_EQ(rc, -EBADMSG);
	std::string s = render(amil_ctl_show_dataplane_stats, R"({"schema":1,"state":"disabled"})", &rc);
	EXPECT_EQ(rc, 0);
	EXPECT_NE(s.find("no statistics"), std::string::npos) << s;
}

}  // namespace
