// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Integration test of the real amil-dataplane binary on net_pcap virtual
// devices.
//
// Each scenario writes an input capture (frames built with lib/amil_wire
// and lib/amil_frame, the project's only AMIL/1 implementation), starts
// the binary on it with its own EAL file prefix, waits through DPDK
// telemetry until every input frame was received and the output stopped
// growing, stops it with SIGTERM and then checks every frame of the output
// capture against what each input frame should have produced: an ARP /
// echo / neighbour reply, an ACK with exact fields, or nothing at all.
// Finally the stats JSON (and the telemetry counters) must add up to
// exactly what was sent.
//
// Expectations are written out per input frame by the scenario builders
// below (integration_traffic.h) rather than computed by a second model of
// the data plane: the levy is the one thing derived, with lib's
// amil_levy_minor(), pinned to hand-computed values in LevyAtTenPercent.
// The checks themselves live in integration_checks.h.
//
// The binary is found through $AMIL_DATAPLANE (set by meson).  Nothing
// here links DPDK.

#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/stat.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string>
#include <vector>

#include "amil_centers.h"
#include "amil_frame.h"
#include "amil_levy.h"
#include "amil_wire.h"
#include "integration_checks.h"
#include "integration_child.h"
#include "integration_frames.h"
#include "integration_json.h"
#include "integration_traffic.h"

using namespace itest;

namespace {

constexpr int kProcessMs = 30000;   // bound for "every input frame processed"
constexpr int kStableMs = 200;      // port_tx unchanged this long: done
constexpr int kExitMs = 20000;      // bound for exit after SIGTERM
constexpr int kConfigExitMs = 10000; // bound for a refused configuration
constexpr int kTestBudgetS = 150;   // watchdog: no test may take longer

// ---- scenarios -------------------------------------------------------------

const char *const kUsd = "USD";
const char *const kEur = "EUR";

// The main donation scenario: valid donations over IPv4 and IPv6, every
// centre, both allowed currencies and all exponents; retransmits; key
// reuse; every rejection reason; every silent drop.  Run with
// --currencies USD,EUR, default rate (250 bp), node 7.
Traffic donations_traffic()
{
	Traffic t(AMIL_LEVY_RATE_BP_DEFAULT);
	const int64_t special[] = {1, 39, 40, 41, 199, 200, 201, 9999, 10000, 10001, 123456789,
				   AMIL_AMOUNT_MAX_MINOR, AMIL_AMOUNT_MAX_MINOR - 1, 20, 60, 5};
	const size_t nspecial = sizeof(special) / sizeof(special[0]);
	std::vector<std::pair<amil_frame_addr, amil_donation>> first;
	auto valid = [&](unsigned i) {
		unsigned host = 1 + i % 3;
		amil_frame_addr a = i % 4 == 3 ? Traffic::flow6(host) : Traffic::flow4(host);
		int64_t amount = i < 2 * nspecial ? special[i % nspecial]
						  : 1 + (int64_t)((uint64_t)i * 104729u % 5000000u);
		amil_donation d = Traffic::don(kCenters[i % 3].id, 1000 + i, i % 2 ? kEur : kUsd,
					       (uint8_t)(i % (AMIL_EXPONENT_MAX + 1)), amount);

		t.accepted("valid donation " + std::to_string(i) + (a.ipv6 ? " (IPv6)" : " (IPv4)"),
			   a, d);
		first.push_back({a, d});
	};
	amil_frame_addr a4 = Traffic::flow4(1), a6 = Traffic::flow6(2);
	const uint8_t *k1001 = key_of(1001);

	for (unsigned i = 0; i < 180; i++)
		valid(i);

	// Edge values that are valid.
	t.accepted("donation_id 2^64-1, anonymous donor", a4, [] {
		amil_donation d = Traffic::don(1002, UINT64_MAX, "EUR", 2, 777);
		d.donor_id = 0;
		return d;
	}());
	t.accepted("largest center id", a6, Traffic::don(4000000000u, 1, "USD", 0, 1));
	t.accepted("same donation_id under another center is another donation", a4,
		   Traffic::don(1002, 1000, "USD", 2, 4242));
	{
		// UDP checksum 0 over IPv4 means "none" (RFC 768): accepted.
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(1001, 7001, "USD", 2, 12345);

		t.accepted("IPv4 donation without UDP checksum", a, d);
		put16(t.last_frame().data() + udp_off(a) + 6, 0);
	}

	// Silent drops, each under its reason.
	{
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(1001, 8001, "USD", 2, 100);

		memcpy(a.dst_mac, kOtherMac, 6);
		t.silent("wrong destination MAC", t.make(&a, &d), "not_ours");
	}
	{
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(1001, 8002, "USD", 2, 100);

		a.dst_ip4 = ip4("198.18.0.9");
		t.silent("wrong destination IPv4", t.make(&a, &d), "not_ours");
	}
	{
		amil_frame_addr a = a6;
		amil_donation d = Traffic::don(1001, 8003, "USD", 2, 100);

		ip6("2001:2::9", a.dst_ip6);
		t.silent("wrong destination IPv6", t.make(&a, &d), "not_ours");
	}
	{
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(1001, 8004, "USD", 2, 100);

		a.dst_port = AMIL_WIRE_PORT_DEFAULT + 1;
		t.silent("wrong UDP port", t.make(&a, &d), "not_ours");
	}
	{
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(1001, 8005, "USD", 2, 100);
		Bytes f = t.make(&a, &d);

		f[kEthHlen + 10] ^= 0x5a;
		t.silent("bad IPv4 header checksum", f, "bad_ip_csum");
	}
	for (bool v6 : {false, true}) {
		amil_frame_addr a = v6 ? a6 : a4;
		amil_donation d = Traffic::don(1001, v6 ? 8007 : 8006, "USD", 2, 100);
		Bytes f = t.make(&a, &d);
		uint8_t *c = f.data() + udp_off(a) + 6;

		put16(c, get16(c) == 0x1234 ? 0x4321 : 0x1234);
		t.silent(v6 ? "bad UDP checksum (IPv6)" : "bad UDP checksum (IPv4)", f, "bad_udp_csum");
	}
	{
		amil_frame_addr a = a6;
		amil_donation d = Traffic::don(1001, 8008, "USD", 2, 100);
		Bytes f = t.make(&a, &d);

		put16(f.data() + udp_off(a) + 6, 0);
		t.silent("UDP checksum 0 over IPv6", f, "bad_udp_csum");
	}
	for (size_t n : {AMIL_WIRE_LEN - 1, AMIL_WIRE_LEN + 1}) {
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(1001, 8009 + n, "USD", 2, 100);
		std::array<uint8_t, AMIL_WIRE_LEN + 1> p{};

		t.stamp(&a, &d);
		amil_wire_donation_encode(p.data(), &d);
		amil_wire_sign(p.data(), k1001);
		t.silent("payload of " + std::to_string(n) + " bytes", udp_frame(a, p.data(), n),
			 "bad_len");
	}
	for (int what = 0; what < 3; what++) {
		amil_frame_addr a = what == 1 ? a6 : a4;
		amil_donation d = Traffic::don(1001, 8100 + what, "USD", 2, 100);
		std::array<uint8_t, AMIL_WIRE_LEN> p{};
		const char *name = what == 0 ? "bad magic" : what == 1 ? "bad version" : "ACK sent to us";

		t.stamp(&a, &d);
		if (what == 2) {
			amil_ack k{};

			k.center_id = 1001;
			k.donation_id = 8102;
			k.amount_minor = 100;
			k.node_id = 3;
			amil_wire_ack_encode(p.data(), &k);
		} else {
			amil_wire_donation_encode(p.data(), &d);
			if (what == 0)
				p[0] ^= 0xff;
			else
				p[2] = AMIL_WIRE_VERSION + 1;
		}
		amil_wire_sign(p.data(), k1001);  // correctly signed: the header is what is wrong
		t.silent(name, udp_frame(a, p.data(), p.size()), "bad_header");
	}
	{
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(kUnknownCenter, 8200, "USD", 2, 100);

		t.silent("unknown center", t.make(&a, &d, k1001), "unknown_center");
	}
	{
		amil_frame_addr a = a6;
		amil_donation d = Traffic::don(1001, 8300, "USD", 2, 100);
		std::array<uint8_t, AMIL_WIRE_LEN> p{};

		t.stamp(&a, &d);
		amil_wire_donation_encode(p.data(), &d);
		amil_wire_sign(p.data(), k1001);
		p[AMIL_WIRE_LEN - 1] ^= 0x01;  // before the UDP checksum is computed
		t.silent("bad tag", udp_frame(a, p.data(), p.size()), "bad_tag");
		// Nothing was recorded for it: the real one is accepted, with its
		// own amount.
		t.accepted("the donation whose forgery was dropped", a4,
			   Traffic::don(1001, 8300, "USD", 2, 250));
	}
	{
		amil_frame_addr a = a4;
		amil_donation d = Traffic::don(1001, 8400, "USD", 2, 100);
		Bytes f = t.make(&a, &d);

		f.resize(60);
		t.silent("truncated frame (60 of 106 bytes)", f, "malformed");
	}

	// Every rejection reason, then keys that a rejection did not record.
	t.rejected("donation_id 0", a4, Traffic::don(1001, 0, "USD", 2, 100), AMIL_REASON_BAD_ID);
	t.rejected("amount 0", a4, Traffic::don(1001, 9001, "USD", 2, 0), AMIL_REASON_BAD_AMOUNT);
	t.rejected("amount 10^15+1", a6, Traffic::don(1002, 9002, "USD", 2, AMIL_AMOUNT_MAX_MINOR + 1),
		   AMIL_REASON_BAD_AMOUNT);
	t.rejected("amount -1", a4, Traffic::don(1001, 9003, "USD", 2, -1), AMIL_REASON_BAD_AMOUNT);
	t.rejected("currency \"usd\"", a4, Traffic::don(1001, 9004, "usd", 2, 100),
		   AMIL_REASON_BAD_CURRENCY);
	t.rejected("currency JPY not in --currencies", a6, Traffic::don(1001, 9005, "JPY", 0, 100),
		   AMIL_REASON_BAD_CURRENCY);
	t.rejected("exponent 5", a4, Traffic::don(4000000000u, 9006, "EUR", 5, 100),
		   AMIL_REASON_BAD_EXPONENT);
	{
		amil_donation d = Traffic::don(1001, 9007, "USD", 2, 100);

		d.reserved = 1;
		t.rejected("reserved != 0", a4, d, AMIL_REASON_RESERVED);
	}
	t.rejected("first failure wins: id 0 and amount 0", a4, Traffic::don(1001, 0, "usd", 9, 0),
		   AMIL_REASON_BAD_ID);
	t.accepted("same key as the rejected exponent-5 donation, now valid", a4,
		   Traffic::don(4000000000u, 9006, "EUR", 4, 100));
	t.rejected("the rejected exponent-5 donation again", a6,
		   Traffic::don(4000000000u, 9006, "EUR", 5, 100), AMIL_REASON_BAD_EXPONENT);

	for (unsigned i = 180; i < 360; i++)
		valid(i);

	// Retransmits (some over the other address family) and key reuse.
	for (size_t i = 0; i < first.size(); i += 9) {
		amil_frame_addr a = i % 2 ? (first[i].first.ipv6 ? a4 : a6) : first[i].first;

		t.duplicate("retransmit of valid donation " + std::to_string(i), a, first[i].second);
	}
	{
		amil_donation d = first[3].second;

		d.amount_minor += 1;
		t.rejected("donation 3's key with another amount", a4, d, AMIL_REASON_CONFLICT);
		d = first[3].second;
		memcpy(d.currency, d.currency[0] == 'U' ? "EUR" : "USD", 3);
		t.rejected("donation 3's key with another currency", a6, d, AMIL_REASON_CONFLICT);
		d = first[3].second;
		d.donor_id += 1;
		t.rejected("donation 3's key with another donor", a4, d, AMIL_REASON_CONFLICT);
		d = first[3].second;
		d.exponent = (uint8_t)((d.exponent + 1) % (AMIL_EXPONENT_MAX + 1));
		t.rejected("donation 3's key with another exponent", a4, d, AMIL_REASON_CONFLICT);
		t.duplicate("donation 3 retransmitted after the conflicts", first[3].first,
			    first[3].second);
	}
	for (size_t i = 1; i < first.size(); i += 37)
		t.duplicate("second retransmit of valid donation " + std::to_string(i), first[i].first,
			    first[i].second);
	return t;
}

// Rounding at 10 % (--rate-bp 1000), IPv4 only, any currency.
Traffic rate_traffic()
{
	Traffic t(1000);
	amil_frame_addr a4 = Traffic::flow4(1);
	const int64_t amounts[] = {1, 4, 5, 6, 14, 15, 16, 25, 10000, 123456789,
				   AMIL_AMOUNT_MAX_MINOR, AMIL_AMOUNT_MAX_MINOR - 5};

	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++)
		t.accepted("amount " + std::to_string(amounts[i]) + " at 10 %", a4,
			   Traffic::don(kCenters[i % 3].id, 100 + i, i % 3 == 2 ? "JPY" : "USD",
					i % 3 == 2 ? 0 : 2, amounts[i]));
	t.duplicate("retransmit of amount 5", a4, Traffic::don(kCenters[2].id, 102, "JPY", 0, 5));
	t.duplicate("retransmit of amount 10^15", a4,
		    Traffic::don(kCenters[1].id, 110, "USD", 2, AMIL_AMOUNT_MAX_MINOR));
	{
		amil_frame_addr a6 = Traffic::flow6(1);
		amil_donation d = Traffic::don(1001, 500, "USD", 2, 100);

		t.silent("IPv6 donation while no --ip6 is configured", t.make(&a6, &d), "not_ours");
	}
	return t;
}

// --dedupe-capacity 8 on one worker, default retention (a day).
Traffic capacity_traffic()
{
	Traffic t(AMIL_LEVY_RATE_BP_DEFAULT);
	amil_frame_addr a4 = Traffic::flow4(1), a6 = Traffic::flow6(2);
	auto d = [](uint64_t id) { return Traffic::don(1001, id, "USD", 2, (int64_t)id * 1000 + 7); };

	for (uint64_t id = 1; id <= 8; id++)
		t.accepted("distinct donation " + std::to_string(id) + " of 8", id % 2 ? a4 : a6, d(id));
	t.rejected("9th distinct donation, table full", a4, d(9), AMIL_REASON_UNAVAILABLE);
	for (uint64_t id = 1; id <= 8; id++)
		t.duplicate("retransmit of " + std::to_string(id) + " with the table full", a6, d(id));
	t.rejected("the 9th again: still no room", a4, d(9), AMIL_REASON_UNAVAILABLE);
	t.rejected("a 10th distinct donation", a6, d(10), AMIL_REASON_UNAVAILABLE);
	{
		amil_donation c = d(4);

		c.amount_minor += 1;
		t.rejected("donation 4's key with another amount, table full", a4, c,
			   AMIL_REASON_CONFLICT);
	}
	t.duplicate("retransmit of 1 at the end", a4, d(1));
	return t;
}

// ARP, ICMP echo, ICMPv6 echo and neighbour solicitation, with a donation
// among them.  Run with --burst 1 so the output order is the input order.
Traffic neighbour_traffic()
{
	Traffic t(AMIL_LEVY_RATE_BP_DEFAULT);
	const uint8_t host_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x20, 0x01};
	const uint8_t host2_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x20, 0x02};
	uint8_t ours6[16], host6[16], ll6[16];
	Bytes data;

	ip6(kOurIp6, ours6);
	ip6("2001:2::50", host6);
	ip6("fe80::ff:fe00:2001", ll6);
	for (int i = 0; i < 40; i++)
		data.push_back((uint8_t)(i * 7 + 3));

	t.neighbour("ARP request for our address", arp_request(host_mac, ip4("198.18.0.50"), ip4(kOurIp4)),
		    Expect::ArpReply);
	t.silent("ARP request for another address",
		 arp_request(host_mac, ip4("198.18.0.50"), ip4("198.18.0.99")), "not_ours");
	t.neighbour("ICMP echo request",
		    icmp4_echo(host_mac, kOurMac, ip4("198.18.0.50"), ip4(kOurIp4), 0x1234, 7, data),
		    Expect::Echo4Reply);
	t.accepted("a donation between the neighbour frames", Traffic::flow4(1),
		   Traffic::don(1001, 42, "USD", 2, 1999));
	t.neighbour("ICMPv6 echo request",
		    icmp6_echo(host_mac, kOurMac, host6, ours6, 0xbeef, 0x0102, data),
		    Expect::Echo6Reply);
	t.neighbour("neighbour solicitation for our address to its solicited-node group",
		    icmp6_ns(host2_mac, ll6, ours6), Expect::NaReply);
	t.accepted("an IPv6 donation after the solicitation", Traffic::flow6(2),
		   Traffic::don(1002, 43, "EUR", 2, 5000));
	t.neighbour("ARP request for our address from another host",
		    arp_request(host2_mac, ip4("198.18.0.51"), ip4(kOurIp4)), Expect::ArpReply);
	return t;
}

// ---- the fixture: run the binary on a capture ---------------------------------

struct RunConf {
	std::vector<std::string> eal{"-l", "0"};
	std::vector<std::string> memory{"--no-huge", "-m", "512"};  // EAL memory options
	std::vector<std::string> args;  // appended after the common options
	bool ip6 = true;
};

struct RunOut {
	std::vector<Bytes> frames;
	Json stats;        // the --stats-json file
	Json tel;          // last /amil/stats reply
	Json tel_totals;   // /amil/totals reply
};

class DataplanePcap : public ::testing::Test {
protected:
	void SetUp() override
	{
		const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
		const char *b = getenv("AMIL_DATAPLANE");

		Watchdog::get().arm(kTestBudgetS, std::string(info->test_suite_name()) + "." +
							  info->name());
		ASSERT_NE(b, nullptr) << "set AMIL_DATAPLANE to the amil-dataplane binary";
		bin_ = b;
		ASSERT_EQ(access(bin_.c_str(), X_OK), 0) << bin_ << " is not executable";
		ASSERT_TRUE(dir_.create("itest-dp"));
		centers_ = dir_ / "centers.txt";
		ASSERT_TRUE(write_file(centers_, centers_text()));
	}

	void TearDown() override
	{
		child_.kill_hard();
		tel_.close_fd();
		for (const auto &p : prefixes_) {
			std::error_code ec;
			std::filesystem::remove_all(dpdk_run_dir(p), ec);
		}
		dir_.remove();
		Watchdog::get().disarm();
	}

	std::string new_prefix()
	{
		std::string p = "amil-itest-" + std::to_string(getpid()) + "-" + std::to_string(runs_++);

		prefixes_.push_back(p);
		Watchdog::get().add_path(dpdk_run_dir(p));
		return p;
	}

	// EAL options for one run reading @rx and writing @tx.
	std::vector<std::string> eal_argv(const std::vector<std::string> &lcores,
					  const std::string &prefix, const std::string &rx,
					  const std::string &tx,
					  const std::vector<std::string> &memory = {"--no-huge", "-m",
										    "512"})
	{
		std::vector<std::string> v{bin_};

		v.insert(v.end(), lcores.begin(), lcores.end());
		v.insert(v.end(), memory.begin(), memory.end());
		v.insert(v.end(), {"--no-pci", "--file-prefix", prefix,
				   "--vdev", "net_pcap0,rx_pcap=" + rx + ",tx_pcap=" + tx});
		return v;
	}

	std::string child_output()
	{
		return "\n--- stdout ---\n" + read_file(dir_ / "stdout.txt") + "--- stderr ---\n" +
		       read_file(dir_ / "stderr.txt");
	}

	// Run the binary on @t's frames until all are processed, stop it, and
	// collect the output capture and the counters.
	void run(const Traffic &t, const RunConf &rc, RunOut *out)
	{
		std::string rx = dir_ / "in.pcap", tx = dir_ / "out.pcap", js = dir_ / "stats.json";
		std::string prefix = new_prefix(), err;
		std::string sock = dpdk_run_dir(prefix) + "/dpdk_telemetry.v2";
		std::vector<Bytes> in = t.frames();
		std::vector<std::string> argv = eal_argv(rc.eal, prefix, rx, tx, rc.memory);
		uint64_t last_tx = 0;
		int64_t end = now_ms() + kProcessMs, since = -1;
		std::string last = "(none)";

		std::remove(tx.c_str());
		std::remove(js.c_str());
		ASSERT_EQ(write_pcap(rx, in), "");
		// A ledger of its own per run: each run starts from nothing.
		argv.insert(argv.end(), {"--", "--ip", kOurIp4, "--centers", centers_, "--stats-json",
					 js, "--node-id", std::to_string(kNodeId), "--ledger-dir",
					 dir_ / ("ledger-" + prefix)});
		if (rc.ip6)
			argv.insert(argv.end(), {"--ip6", kOurIp6});
		argv.insert(argv.end(), rc.args.begin(), rc.args.end());
		ASSERT_EQ(child_.start(argv, dir_ / "stdout.txt", dir_ / "stderr.txt"), "");

		// Wait for port_rx == frames, then for port_tx to settle.
		for (;;) {
			Json j;
			const Json *s;

			ASSERT_LT(now_ms(), end) << "not all " << in.size() << " frames processed within "
						 << kProcessMs << " ms; last /amil/stats: " << last
						 << child_output();
			ASSERT_FALSE(child_.poll_exit()) << "amil-dataplane exited early ("
							 << child_.describe() << ")" << child_output();
			if (!tel_.connected() && !tel_.connect_to(sock).empty()) {
				sleep_ms(20);
				continue;
			}
			std::string r = tel_.query("/amil/stats");
			if (r.empty() || !JsonParser::parse(r, &j, &err) ||
			    (s = j.get("/amil/stats")) == nullptr || s->get("port_rx") == nullptr ||
			    s->get("port_tx") == nullptr) {
				sleep_ms(20);
				continue;  // not registered yet
			}
			last = r;
			uint64_t prx = std::stoull(s->get("port_rx")->text);
			uint64_t ptx = std::stoull(s->get("port_tx")->text);

			ASSERT_LE(prx, in.size()) << "more frames received than sent: " << r;
			if (prx == in.size()) {
				if (since < 0 || ptx != last_tx) {
					last_tx = ptx;
					since = now_ms();
				} else if (now_ms() - since >= kStableMs) {
					out->tel = j;
					break;
				}
			}
			sleep_ms(20);
		}
		std::string totals = tel_.query("/amil/totals");
		ASSERT_TRUE(JsonParser::parse(totals, &out->tel_totals, &err)) << err << ": " << totals;
		tel_.close_fd();

		child_.signal(SIGTERM);
		if (!child_.wait_exit(kExitMs)) {
			child_.kill_hard();
			FAIL() << "amil-dataplane did not exit within " << kExitMs << " ms of SIGTERM"
			       << child_output();
		}
		ASSERT_TRUE(WIFEXITED(child_.status()) && WEXITSTATUS(child_.status()) == 0)
			<< "amil-dataplane: " << child_.describe() << child_output();

		ASSERT_EQ(read_pcap(tx, &out->frames), "");
		std::string sj = read_file(js);
		ASSERT_TRUE(JsonParser::parse(sj, &out->stats, &err)) << err << ":\n" << sj;
	}

	// Run a configuration that must be refused; returns stderr.
	void run_refused(const std::vector<std::string> &app_args, std::string *stderr_text)
	{
		std::string rx = dir_ / "in.pcap", tx = dir_ / "out.pcap";
		std::vector<std::string> argv = eal_argv({"-l", "0"}, new_prefix(), rx, tx);

		ASSERT_EQ(write_pcap(rx, neighbour_traffic().frames()), "");
		argv.push_back("--");
		argv.push_back("--no-ledger"); // the refusal under test comes first
		argv.insert(argv.end(), app_args.begin(), app_args.end());
		ASSERT_EQ(child_.start(argv, dir_ / "stdout.txt", dir_ / "stderr.txt"), "");
		if (!child_.wait_exit(kConfigExitMs)) {
			child_.kill_hard();
			FAIL() << "a refused configuration did not exit within " << kConfigExitMs << " ms"
			       << child_output();
		}
		EXPECT_TRUE(WIFEXITED(child_.status()) && WEXITSTATUS(child_.status()) != 0)
			<< "want a nonzero exit, got " << child_.describe() << child_output();
		EXPECT_FALSE(file_exists(tx)) << "the TX capture was created: a port was started";
		*stderr_text = read_file(dir_ / "stderr.txt");
	}

	std::string bin_;
	std::string centers_;
	TempDir dir_;
	Child child_;
	Telemetry tel_;
	std::vector<std::string> prefixes_;
	unsigned runs_ = 0;
};

const std::vector<std::string> kMainArgs = {"--currencies", "USD,EUR", "--dedupe-capacity",
					    "65536"};

TEST_F(DataplanePcap, NeighbourAndEchoRepliesInOrder)
{
	Traffic t = neighbour_traffic();
	RunConf rc;
	RunOut out;

	// Strict order needs ACKs to leave as they are made: with the ledger an
	// ACK waits for the disk while neighbour replies do not (by design).
	rc.args = {"--burst", "1", "--dedupe-capacity", "1024", "--no-ledger"};
	ASSERT_NO_FATAL_FAILURE(run(t, rc, &out));
	check_replies(t, out.frames, Order::Strict);
	check_stats_json(out.stats, t, 1);
	check_telemetry(out.tel, out.tel_totals, t);
}

TEST_F(DataplanePcap, DonationsSingleLcore)
{
	Traffic t = donations_traffic();
	RunConf rc;
	RunOut out;

	rc.args = kMainArgs;
	ASSERT_NO_FATAL_FAILURE(run(t, rc, &out));
	check_replies(t, out.frames, Order::PerClass);
	check_stats_json(out.stats, t, 1);
	check_telemetry(out.tel, out.tel_totals, t);
}

TEST_F(DataplanePcap, DonationsThreeWorkers)
{
	Traffic t = donations_traffic();
	RunConf rc;
	RunOut out;

	// Four lcores on two CPUs: lcore 0 is the I/O lcore, 1..3 are workers.
	rc.eal = {"--lcores", "0@0,1@1,2@0,3@1"};
	rc.args = kMainArgs;
	ASSERT_NO_FATAL_FAILURE(run(t, rc, &out));
	// The same replies as on one lcore; ACK order may differ across workers.
	EXPECT_EQ(ack_multiset(out.frames), ack_multiset(t))
		<< "ACKs as a multiset of (center_id, donation_id, status)";
	check_replies(t, out.frames, Order::PerKey);
	check_stats_json(out.stats, t, 3);
	check_telemetry(out.tel, out.tel_totals, t);
}

// Hugepages for one test: reserves 2 MiB pages (root) and mounts a private
// hugetlbfs, then gives both back, so the run below uses real hugepage
// memory and not --no-huge.
class Hugepages {
public:
	bool setup(const std::string &dir, std::string *why)
	{
		before_ = read_file(kNr);
		long have = before_.empty() ? -1 : std::stol(before_);
		if (have < 0) {
			*why = "cannot read " + std::string(kNr);
			return false;
		}
		if (have < 256 && !write_file(kNr, std::to_string(have + 256) + "\n")) {
			*why = "cannot reserve hugepages through " + std::string(kNr);
			return false;
		}
		raised_ = have < 256;
		dir_ = dir;
		mkdir(dir.c_str(), 0700);
		if (mount("nodev", dir.c_str(), "hugetlbfs", 0, "pagesize=2M") != 0) {
			*why = "cannot mount hugetlbfs: " + std::string(strerror(errno));
			return false;
		}
		mounted_ = true;
		return true;
	}
	~Hugepages()
	{
		if (mounted_)
			umount2(dir_.c_str(), MNT_DETACH);
		if (raised_)
			write_file(kNr, before_);
	}

private:
	static constexpr const char *kNr = "/proc/sys/vm/nr_hugepages";
	std::string before_, dir_;
	bool raised_ = false, mounted_ = false;
};

TEST_F(DataplanePcap, DonationsWithHugepages)
{
	Traffic t = donations_traffic();
	RunConf rc;
	RunOut out;
	Hugepages hp;
	std::string why, dir = dir_ / "huge";

	if (geteuid() != 0)
		GTEST_SKIP() << "reserving hugepages needs root";
	ASSERT_TRUE(hp.setup(dir, &why)) << why;
	rc.eal = {"-l", "0-1"};
	rc.memory = {"-m", "256", "--huge-dir", dir};
	rc.args = kMainArgs;
	ASSERT_NO_FATAL_FAILURE(run(t, rc, &out));
	EXPECT_EQ(ack_multiset(out.frames), ack_multiset(t));
	check_replies(t, out.frames, Order::PerKey);
	check_stats_json(out.stats, t, 1);
	EXPECT_NE(read_file(dir_ / "stdout.txt").find("memory: hugepages\n"), std::string::npos)
		<< child_output();
}

TEST_F(DataplanePcap, LevyAtTenPercent)
{
	Traffic t = rate_traffic();
	RunConf rc;
	RunOut out;

	// The expectations use lib's levy; pin it to hand-computed values at
	// this rate first, so a wrong helper cannot hide a wrong binary.
	ASSERT_EQ(amil_levy_minor(4, 1000), 0);
	ASSERT_EQ(amil_levy_minor(5, 1000), 1);
	ASSERT_EQ(amil_levy_minor(15, 1000), 2);
	ASSERT_EQ(amil_levy_minor(14, 1000), 1);
	ASSERT_EQ(amil_levy_minor(AMIL_AMOUNT_MAX_MINOR, 1000), AMIL_AMOUNT_MAX_MINOR / 10);
	rc.ip6 = false;
	rc.args = {"--rate-bp", "1000", "--dedupe-capacity", "1024"};
	ASSERT_NO_FATAL_FAILURE(run(t, rc, &out));
	check_replies(t, out.frames, Order::PerClass);
	check_stats_json(out.stats, t, 1);
	check_telemetry(out.tel, out.tel_totals, t);
}

TEST_F(DataplanePcap, DedupeCapacityFullAnswersUnavailable)
{
	Traffic t = capacity_traffic();
	RunConf rc;
	RunOut out;

	// One worker: the capacity is per worker.
	rc.args = {"--dedupe-capacity", "8"};
	ASSERT_NO_FATAL_FAILURE(run(t, rc, &out));
	check_replies(t, out.frames, Order::PerClass);
	check_stats_json(out.stats, t, 1);
	check_telemetry(out.tel, out.tel_totals, t);
}

TEST_F(DataplanePcap, BadCentersLineIsRefusedBeforeAnyPort)
{
	std::string bad = dir_ / "bad-centers.txt", err, lib_err(256, '\0');

	ASSERT_TRUE(write_file(bad, "# two good lines, then a short key\n"
				    "1001 000102030405060708090a0b0c0d0e0f\n"
				    "1002 00112233445566778899aabbccddeeff00\n"));
	ASSERT_NO_FATAL_FAILURE(run_refused({"--ip", kOurIp4, "--centers", bad}, &err));
	EXPECT_NE(err.find(bad + ":3:"), std::string::npos) << "stderr must name file:line:\n" << err;
	// And say what lib says about that line.
	struct amil_centers *c = amil_centers_load(bad.c_str(), &lib_err[0], lib_err.size());
	EXPECT_EQ(c, nullptr);
	amil_centers_free(c);
	lib_err.resize(strlen(lib_err.c_str()));
	EXPECT_NE(err.find(lib_err), std::string::npos) << "want '" << lib_err << "' in:\n" << err;
}

TEST_F(DataplanePcap, MissingCentersIsRefusedWithAMessage)
{
	std::string err;

	ASSERT_NO_FATAL_FAILURE(run_refused({"--ip", kOurIp4}, &err));
	EXPECT_NE(err.find("centers"), std::string::npos) << "stderr must say what is missing:\n"
							  << err;
}

TEST_F(DataplanePcap, HelpExitsZeroWithUsage)
{
	std::vector<std::string> argv{bin_, "--", "--help"};
	std::string text;

	ASSERT_EQ(child_.start(argv, dir_ / "stdout.txt", dir_ / "stderr.txt"), "");
	ASSERT_TRUE(child_.wait_exit(kConfigExitMs)) << "--help did not exit";
	EXPECT_TRUE(WIFEXITED(child_.status()) && WEXITSTATUS(child_.status()) == 0)
		<< child_.describe() << child_output();
	text = read_file(dir_ / "stdout.txt");
	EXPECT_NE(text.find("Usage:"), std::string::npos) << text;
	for (const char *opt : {"--ip", "--ip6", "--centers", "--rate-bp", "--currencies",
				"--dedupe-capacity", "--stats-json", "--node-id"})
		EXPECT_NE(text.find(opt), std::string::npos) << "usage lists " << opt;
}

}  // namespace
