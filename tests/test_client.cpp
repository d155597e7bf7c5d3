// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Unit tests of the reference center client (client/amil_client.h) and of
// amil-donate's input parsers (client/donate_input.h).
//
// The client is driven against a fake node: a thread with a UDP socket on
// loopback that follows a script per received request (drop it, answer
// with a bad tag, for another donation, from another port, ... or answer
// properly) and records every request it got, so a test can check what
// went on the wire: how many transmissions, and that they carried the same
// donation.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "amil_client.h"
#include "amil_levy.h"
#include "amil_wire.h"
#include "donate_input.h"

namespace {

const uint8_t kKey[AMIL_KEY_LEN] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
const uint32_t kCenter = 1001;
const uint32_t kNode = 7;
const uint32_t kRateBp = 250;

int64_t mono_ms()
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(
		       std::chrono::steady_clock::now().time_since_epoch())
		.count();
}

// ---- the fake node ----------------------------------------------------------

enum class Act {
	Drop,         // no reply
	Accept,       // proper ACCEPTED
	Duplicate,    // proper DUPLICATE
	Conflict,     // proper REJECTED / CONFLICT
	BadTag,       // ACCEPTED with one tag bit flipped
	WrongKey,     // ACCEPTED signed with another key
	WrongId,      // ACCEPTED for donation_id + 1
	WrongCenter,  // ACCEPTED for center_id + 1
	Short,        // the first 32 bytes of an ACCEPTED
	Echo,         // the DONATION itself sent back (right tag, wrong type)
	OldSeq,       // ACCEPTED echoing the seq of the first request ever seen
	OtherPort,    // proper ACCEPTED, but from another UDP port
};

struct Req {
	amil_donation d;
	bool tag_ok;
};

class FakeNode {
public:
	// @script[i]: replies to the i-th request; requests beyond it get @rest.
	FakeNode(std::vector<std::vector<Act>> script, std::vector<Act> rest = {Act::Accept})
		: script_(std::move(script)), rest_(std::move(rest))
	{
	}
	~FakeNode() { stop(); }

	// Bind to @addr (IPv4 or IPv6 loopback) on an ephemeral port.
	bool start(const char *addr = "127.0.0.1")
	{
		sockaddr_storage ss{};
		socklen_t len;
		bool v6 = strchr(addr, ':') != nullptr;

		if (v6) {
			auto *s6 = reinterpret_cast<sockaddr_in6 *>(&ss);
			s6->sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
				return false;
			len = sizeof(*s6);
		} else {
			auto *s4 = reinterpret_cast<sockaddr_in *>(&ss);
			s4->sin_family = AF_INET;
			if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
				return false;
			len = sizeof(*s4);
		}
		fd_ = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		other_fd_ = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd_ < 0 || other_fd_ < 0 || bind(fd_, (sockaddr *)&ss, len) != 0 ||
		    bind(other_fd_, (sockaddr *)&ss, len) != 0)
			return false;
		if (getsockname(fd_, (sockaddr *)&ss, &len) != 0)
			return false;
		port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
				 : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
		run_ = true;
		th_ = std::thread(&FakeNode::loop, this);
		return true;
	}
	void stop()
	{
		if (th_.joinable()) {
			run_ = false;
			th_.join();
		}
		if (fd_ >= 0)
			close(fd_);
		if (other_fd_ >= 0)
			close(other_fd_);
		fd_ = other_fd_ = -1;
	}
	uint16_t port() const { return port_; }
	std::vector<Req> reqs()
	{
		std::lock_guard<std::mutex> g(mu_);
		return reqs_;
	}

private:
	void reply(Act act, const amil_donation &d, const amil_donation &first,
		   const sockaddr_storage &peer, socklen_t plen)
	{
		static const uint8_t other_key[AMIL_KEY_LEN] = {0xff};
		amil_ack a{};
		uint8_t buf[AMIL_WIRE_LEN];
		size_t len = sizeof(buf);
		int fd = fd_;

		a.center_id = d.center_id;
		a.donation_id = d.donation_id;
		a.amount_minor = d.amount_minor;
		a.levy_minor = amil_levy_minor(d.amount_minor, kRateBp);
		a.node_id = kNode;
		a.status = AMIL_ACK_ACCEPTED;
		a.sent_ns = d.sent_ns;
		a.seq = d.seq;
		switch (act) {
		case Act::Drop:
			return;
		case Act::Duplicate:
			a.status = AMIL_ACK_DUPLICATE;
			break;
		case Act::Conflict:
			a.status = AMIL_ACK_REJECTED;
			a.reason = AMIL_REASON_CONFLICT;
			a.amount_minor = a.levy_minor = 0;
			break;
		case Act::WrongId:
			a.donation_id++;
			break;
		case Act::WrongCenter:
			a.center_id++;
			break;
		case Act::OldSeq:
			a.seq = first.seq;
			a.sent_ns = first.sent_ns;
			break;
		case Act::OtherPort:
			fd = other_fd_;
			break;
		case Act::Short:
			len = 32;
			break;
		default:
			break;
		}
		if (act == Act::Echo) {
			amil_wire_donation_encode(buf, &d);
		} else {
			amil_wire_ack_encode(buf, &a);
		}
		amil_wire_sign(buf, act == Act::WrongKey ? other_key : kKey);
		if (act == Act::BadTag)
			buf[AMIL_WIRE_TAG_OFF + 3] ^= 0x10;
		(void)!sendto(fd, buf, len, 0, (const sockaddr *)&peer, plen);
	}

	void loop()
	{
		while (run_) {
			pollfd p = {fd_, POLLIN, 0};
			uint8_t buf[256];
			sockaddr_storage peer{};
			socklen_t plen = sizeof(peer);

			if (poll(&p, 1, 10) <= 0)
				continue;
			ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, (sockaddr *)&peer, &plen);
			if (n != AMIL_WIRE_LEN || amil_wire_check(buf, (size_t)n, AMIL_MSG_DONATION) != 0)
				continue;
			Req r{};
			r.tag_ok = amil_wire_verify(buf, kKey) == 0;
			amil_wire_donation_decode(buf, &r.d);
			std::vector<Act> acts;
			amil_donation first;
			{
				std::lock_guard<std::mutex> g(mu_);
				size_t i = reqs_.size();

				reqs_.push_back(r);
				first = reqs_[0].d;
				acts = i < script_.size() ? script_[i] : rest_;
			}
			for (Act a : acts)
				reply(a, r.d, first, peer, plen);
		}
	}

	std::vector<std::vector<Act>> script_;
	std::vector<Act> rest_;
	int fd_ = -1, other_fd_ = -1;
	uint16_t port_ = 0;
	std::atomic<bool> run_{false};
	std::thread th_;
	std::mutex mu_;
	std::vector<Req> reqs_;
};

amil_client_opts fast_opts(const char *server, uint16_t port, uint32_t attempts)
{
	amil_client_opts o{};

	o.server = server;
	o.port = port;
	o.center_id = kCenter;
	memcpy(o.key, kKey, sizeof(kKey));
	o.timeout_ms = 30;
	o.timeout_max_ms = 200;
	o.jitter_pct = AMIL_CLIENT_JITTER_NONE;
	o.max_attempts = attempts;
	return o;
}

amil_donation donation(uint64_t id, int64_t amount)
{
	amil_donation d{};

	d.donation_id = id;
	d.donor_id = 77;
	d.campaign_id = 3;
	memcpy(d.currency, "SAR", 3);
	d.exponent = 2;
	d.amount_minor = amount;
	d.center_id = 0xdeadbeef;  // the client must put its own
	d.seq = 12345;             // ... and its own seq
	return d;
}

// Same donation identity and content (what the node compares).
void expect_same_content(const amil_donation &a, const amil_donation &b)
{
	EXPECT_EQ(a.center_id, b.center_id);
	EXPECT_EQ(a.donation_id, b.donation_id);
	EXPECT_EQ(a.donor_id, b.donor_id);
	EXPECT_EQ(a.campaign_id, b.campaign_id);
	EXPECT_EQ(0, memcmp(a.currency, b.currency, 3));
	EXPECT_EQ(a.exponent, b.exponent);
	EXPECT_EQ(a.amount_minor, b.amount_minor);
	EXPECT_EQ(a.reserved, 0u);
}

}  // namespace

// ---- retransmission schedule --------------------------------------------------

TEST(ClientBackoff, DoublesUpToTheCapWithoutJitter)
{
	const uint32_t want[] = {200, 400, 800, 1600, 2000, 2000, 2000, 2000};

	for (uint32_t i = 0; i < 8; i++)
		EXPECT_EQ(amil_client_backoff_ms(i, 200, 2, 2000, 0, 0xffffffffu), want[i]) << i;
	// Jitter given but rnd 0: nothing taken off.
	for (uint32_t i = 0; i < 8; i++)
		EXPECT_EQ(amil_client_backoff_ms(i, 200, 2, 2000, 20, 0), want[i]) << i;
}

TEST(ClientBackoff, NoOverflowForLargeAttemptsOrFactors)
{
	EXPECT_EQ(amil_client_backoff_ms(1000, 200, 2, 2000, 0, 0), 2000u);
	EXPECT_EQ(amil_client_backoff_ms(UINT32_MAX, 1, 10, 3600000, 0, 0), 3600000u);
	EXPECT_EQ(amil_client_backoff_ms(3, UINT32_MAX, UINT32_MAX, UINT32_MAX, 0, 0), UINT32_MAX);
	EXPECT_EQ(amil_client_backoff_ms(5, UINT32_MAX, 2, UINT32_MAX, 100, UINT32_MAX), 1u);
}

TEST(ClientBackoff, FactorOneIsConstantAndCapBelowInitialWins)
{
	for (uint32_t i = 0; i < 5; i++)
		EXPECT_EQ(amil_client_backoff_ms(i, 150, 1, 2000, 0, 0), 150u);
	EXPECT_EQ(amil_client_backoff_ms(0, 500, 2, 300, 0, 0), 300u);
	EXPECT_EQ(amil_client_backoff_ms(0, 0, 2, 300, 0, 0), 0u);
	// Factor 0 is taken as 1, never as "wait 0".
	EXPECT_EQ(amil_client_backoff_ms(4, 100, 0, 2000, 0, 0), 100u);
}

TEST(ClientBackoff, JitterOnlyShortensAndStaysInBounds)
{
	// Exact values at the ends: floor(1000 * 20 / 100 * rnd / 2^32).
	EXPECT_EQ(amil_client_backoff_ms(0, 1000, 2, 8000, 20, UINT32_MAX), 801u);
	EXPECT_EQ(amil_client_backoff_ms(0, 1000, 2, 8000, 20, 0x80000000u), 900u);
	EXPECT_EQ(amil_client_backoff_ms(0, 1000, 2, 8000, 150, UINT32_MAX),
		  amil_client_backoff_ms(0, 1000, 2, 8000, 100, UINT32_MAX));
	EXPECT_EQ(amil_client_backoff_ms(0, 1000, 2, 8000, 100, UINT32_MAX), 1u);

	std::mt19937 rng(42);
	for (int i = 0; i < 100000; i++) {
		uint32_t attempt = rng() % 12, init = 1 + rng() % 5000, cap = init + rng() % 60000;
		uint32_t factor = 1 + rng() % 4, jit = rng() % 101, rnd = (uint32_t)rng();
		uint64_t t = init;

		for (uint32_t k = 0; k < attempt && t < cap; k++)
			t *= factor;
		t = std::min<uint64_t>(t, cap);
		uint32_t w = amil_client_backoff_ms(attempt, init, factor, cap, jit, rnd);
		ASSERT_LE(w, t) << attempt << " " << init << " " << cap << " " << jit;
		ASSERT_GE((uint64_t)w * 100, t * (100 - jit)) << attempt << " " << init << " " << jit;
		ASSERT_GE(w, 1u);
	}
}

// ---- construction -------------------------------------------------------------

TEST(ClientNew, RefusesBadOptions)
{
	amil_client_opts o = fast_opts("127.0.0.1", 7100, 3);

	errno = 0;
	EXPECT_EQ(amil_client_new(nullptr), nullptr);
	EXPECT_EQ(errno, EINVAL);
	for (const char *bad : {"", "localhost", "198.18.0", "198.18.0.1.2", "::g", "1.2.3.4:7100"}) {
		o.server = bad;
		errno = 0;
		EXPECT_EQ(amil_client_new(&o), nullptr) << bad;
		EXPECT_EQ(errno, EINVAL) << bad;
	}
	o = fast_opts("127.0.0.1", 7100, AMIL_CLIENT_ATTEMPTS_MAX + 1);
	EXPECT_EQ(amil_client_new(&o), nullptr);
	EXPECT_EQ(errno, EINVAL);
	o = fast_opts("127.0.0.1", 7100, 3);
	o.timeout_ms = 500;
	o.timeout_max_ms = 100;  // cap below the first wait
	EXPECT_EQ(amil_client_new(&o), nullptr);
	EXPECT_EQ(errno, EINVAL);
	o = fast_opts("127.0.0.1", 7100, 3);
	o.jitter_pct = 101;
	EXPECT_EQ(amil_client_new(&o), nullptr);
	EXPECT_EQ(errno, EINVAL);
	o = fast_opts("127.0.0.1", 7100, 3);
	o.timeout_ms = AMIL_CLIENT_TIMEOUT_MAX_MS + 1;
	EXPECT_EQ(amil_client_new(&o), nullptr);
	EXPECT_EQ(errno, EINVAL);
}

TEST(ClientNew, DestroyNullsAndAcceptsNull)
{
	amil_client_opts o = fast_opts("127.0.0.1", 7100, 3);
	amil_client *c = amil_client_new(&o);

	ASSERT_NE(c, nullptr);
	amil_client_destroy(&c);
	EXPECT_EQ(c, nullptr);
	amil_client_destroy(&c);
	amil_client_destroy(nullptr);
}

TEST(ClientNew, ExplicitLongFirstWaitRaisesTheDefaultCap)
{
	amil_client_opts o{};

	o.server = "127.0.0.1";
	o.timeout_ms = 5000;  // above the 2000 ms default cap, none given
	amil_client *c = amil_client_new(&o);
	EXPECT_NE(c, nullptr);
	amil_client_destroy(&c);
}

TEST(ClientDonate, NullArguments)
{
	amil_client_opts o = fast_opts("127.0.0.1", 7100, 1);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(1, 100);
	amil_ack a;

	ASSERT_NE(c, nullptr);
	EXPECT_EQ(amil_client_donate(nullptr, &d, &a), -EINVAL);
	EXPECT_EQ(amil_client_donate(c, nullptr, &a), -EINVAL);
	EXPECT_EQ(amil_client_donate(c, &d, nullptr), -EINVAL);
	amil_client_destroy(&c);
}

// ---- exchanges with the fake node ------------------------------------------

TEST(ClientDonate, AcceptedAtOnceWithLevy)
{
	FakeNode node({});
	ASSERT_TRUE(node.start());
	amil_client_opts o = fast_opts("127.0.0.1", node.port(), 3);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(42, 1000);
	amil_ack a;
	amil_client_stats st;

	ASSERT_NE(c, nullptr);
	ASSERT_EQ(amil_client_donate(c, &d, &a), 0);
	EXPECT_EQ(a.status, AMIL_ACK_ACCEPTED);
	EXPECT_EQ(a.center_id, kCenter);
	EXPECT_EQ(a.donation_id, 42u);
	EXPECT_EQ(a.amount_minor, 1000);
	EXPECT_EQ(a.levy_minor, 25);
	EXPECT_EQ(a.node_id, kNode);
	amil_client_stats_get(c, &st);
	EXPECT_EQ(st.sent, 1u);
	EXPECT_EQ(st.retransmits, 0u);
	EXPECT_EQ(st.answered, 1u);
	EXPECT_EQ(st.last_attempts, 1u);
	EXPECT_GT(st.last_rtt_ns, 0u);
	auto reqs = node.reqs();
	ASSERT_EQ(reqs.size(), 1u);
	EXPECT_TRUE(reqs[0].tag_ok);
	EXPECT_EQ(reqs[0].d.center_id, kCenter);  // not the caller's 0xdeadbeef
	EXPECT_EQ(reqs[0].d.donor_id, 77u);
	EXPECT_EQ(reqs[0].d.campaign_id, 3u);
	amil_client_destroy(&c);
}

// The scenario of the brief: drop the first K requests, then answer with a
// bad tag, a wrong id and a wrong center before the right answer.
TEST(ClientDonate, RetransmitsSameContentAndIgnoresBadReplies)
{
	const int K = 3;
	std::vector<std::vector<Act>> script(K, {Act::Drop});
	script.push_back({Act::BadTag, Act::WrongKey, Act::WrongId, Act::WrongCenter, Act::Short,
			  Act::Echo, Act::OtherPort, Act::Duplicate});
	FakeNode node(script);
	ASSERT_TRUE(node.start());
	amil_client_opts o = fast_opts("127.0.0.1", node.port(), 8);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(9, 123456);
	amil_ack a;
	amil_client_stats st;

	ASSERT_NE(c, nullptr);
	int64_t t0 = mono_ms();
	ASSERT_EQ(amil_client_donate(c, &d, &a), 0);
	int64_t took = mono_ms() - t0;
	EXPECT_EQ(a.status, AMIL_ACK_DUPLICATE);
	EXPECT_EQ(a.donation_id, 9u);
	EXPECT_EQ(a.amount_minor, 123456);
	EXPECT_EQ(a.levy_minor, amil_levy_minor(123456, kRateBp));
	// Waits 30, 60, 120 ms before the fourth transmission (no jitter).
	EXPECT_GE(took, 30 + 60 + 120);
	EXPECT_LT(took, 30 + 60 + 120 + 2000);

	amil_client_stats_get(c, &st);
	EXPECT_EQ(st.sent, (uint64_t)K + 1);
	EXPECT_EQ(st.retransmits, (uint64_t)K);
	EXPECT_EQ(st.last_attempts, (uint32_t)K + 1);
	EXPECT_EQ(st.rx_bad_tag, 2u);       // BadTag, WrongKey
	EXPECT_EQ(st.rx_mismatched, 2u);    // WrongId, WrongCenter
	EXPECT_EQ(st.rx_malformed, 2u);     // Short, Echo
	// OtherPort never reached us: the connected socket filters it.
	EXPECT_EQ(st.answered, 1u);

	auto reqs = node.reqs();
	ASSERT_EQ(reqs.size(), (size_t)K + 1);
	for (size_t i = 0; i < reqs.size(); i++) {
		EXPECT_TRUE(reqs[i].tag_ok) << i;
		expect_same_content(reqs[i].d, reqs[0].d);
		if (i > 0) {
			EXPECT_EQ(reqs[i].d.seq, reqs[i - 1].d.seq + 1) << i;
			EXPECT_GE(reqs[i].d.sent_ns, reqs[i - 1].d.sent_ns) << i;
		}
	}
	amil_client_destroy(&c);
}

TEST(ClientDonate, TimesOutAfterMaxAttemptsWithTheSameDonation)
{
	FakeNode node({}, {Act::Drop});
	ASSERT_TRUE(node.start());
	amil_client_opts o = fast_opts("127.0.0.1", node.port(), 4);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(5, 999);
	amil_ack a;
	amil_client_stats st;

	ASSERT_NE(c, nullptr);
	memset(&a, 0xab, sizeof(a));
	int64_t t0 = mono_ms();
	EXPECT_EQ(amil_client_donate(c, &d, &a), -ETIMEDOUT);
	int64_t took = mono_ms() - t0;
	EXPECT_GE(took, 30 + 60 + 120 + 200);  // the last wait is capped at 200
	EXPECT_LT(took, 30 + 60 + 120 + 200 + 2000);
	// Never a half-filled answer.
	amil_ack zero{};
	EXPECT_EQ(0, memcmp(&a, &zero, sizeof(a)));
	amil_client_stats_get(c, &st);
	EXPECT_EQ(st.sent, 4u);
	EXPECT_EQ(st.unanswered, 1u);
	EXPECT_EQ(st.answered, 0u);
	auto reqs = node.reqs();
	ASSERT_EQ(reqs.size(), 4u);
	for (const auto &r : reqs)
		expect_same_content(r.d, reqs[0].d);
	amil_client_destroy(&c);
}

// Only bad answers, forever: never success.
TEST(ClientDonate, NeverSucceedsWithoutAVerifiedMatchingAck)
{
	FakeNode node({}, {Act::BadTag, Act::WrongKey, Act::WrongId, Act::WrongCenter,
			   Act::Short, Act::Echo, Act::OtherPort});
	ASSERT_TRUE(node.start());
	amil_client_opts o = fast_opts("127.0.0.1", node.port(), 3);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(6, 1000);
	amil_ack a;
	amil_client_stats st;

	ASSERT_NE(c, nullptr);
	EXPECT_EQ(amil_client_donate(c, &d, &a), -ETIMEDOUT);
	amil_client_stats_get(c, &st);
	EXPECT_EQ(st.rx_bad_tag, 6u);
	EXPECT_EQ(st.rx_mismatched, 6u);
	EXPECT_EQ(st.rx_malformed, 6u);
	EXPECT_EQ(st.answered, 0u);
	amil_client_destroy(&c);
}

// Regression guard for matching by (center, donation) only: a late ACK of
// an earlier exchange for the same donation_id must not answer a new one.
TEST(ClientDonate, StaleAckOfAnEarlierExchangeIsIgnored)
{
	// Request 0: dropped.  Request 1: answered.  Request 2 (the corrected
	// donation): first the ACK of request 0 arrives late, then CONFLICT.
	FakeNode node({{Act::Drop}, {Act::Accept}, {Act::OldSeq, Act::Conflict}});
	ASSERT_TRUE(node.start());
	amil_client_opts o = fast_opts("127.0.0.1", node.port(), 4);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(42, 1000);
	amil_ack a;
	amil_client_stats st;

	ASSERT_NE(c, nullptr);
	ASSERT_EQ(amil_client_donate(c, &d, &a), 0);
	EXPECT_EQ(a.status, AMIL_ACK_ACCEPTED);
	d.amount_minor = 2000;
	ASSERT_EQ(amil_client_donate(c, &d, &a), 0);
	EXPECT_EQ(a.status, AMIL_ACK_REJECTED);
	EXPECT_EQ(a.reason, AMIL_REASON_CONFLICT);
	EXPECT_EQ(a.levy_minor, 0);
	amil_client_stats_get(c, &st);
	EXPECT_EQ(st.rx_mismatched, 1u);
	EXPECT_EQ(st.answered, 2u);
	amil_client_destroy(&c);
}

TEST(ClientDonate, RejectedIsAnAnswer)
{
	FakeNode node({}, {Act::Conflict});
	ASSERT_TRUE(node.start());
	amil_client_opts o = fast_opts("127.0.0.1", node.port(), 3);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(8, 10);
	amil_ack a;

	ASSERT_NE(c, nullptr);
	ASSERT_EQ(amil_client_donate(c, &d, &a), 0);
	EXPECT_EQ(a.status, AMIL_ACK_REJECTED);
	EXPECT_EQ(a.reason, AMIL_REASON_CONFLICT);
	EXPECT_EQ(node.reqs().size(), 1u);
	amil_client_destroy(&c);
}

TEST(ClientDonate, DeadlineBoundsTheWholeExchange)
{
	FakeNode node({}, {Act::Drop});
	ASSERT_TRUE(node.start());
	amil_client_opts o = fast_opts("127.0.0.1", node.port(), 100);
	o.deadline_ms = 100;
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(11, 1000);
	amil_ack a;
	amil_client_stats st;

	ASSERT_NE(c, nullptr);
	int64_t t0 = mono_ms();
	EXPECT_EQ(amil_client_donate(c, &d, &a), -ETIMEDOUT);
	int64_t took = mono_ms() - t0;
	EXPECT_GE(took, 100);
	EXPECT_LT(took, 100 + 1000);
	amil_client_stats_get(c, &st);
	// 30 + 60 ms waits, then the third wait is cut at the deadline.
	EXPECT_EQ(st.last_attempts, 3u);
	amil_client_destroy(&c);
}

TEST(ClientDonate, PortUnreachableIsRetriedThenTimesOut)
{
	// A port nobody listens on: find one by binding and closing.
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	sockaddr_in sa{};
	socklen_t len = sizeof(sa);

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, (sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_EQ(getsockname(fd, (sockaddr *)&sa, &len), 0);
	close(fd);

	amil_client_opts o = fast_opts("127.0.0.1", ntohs(sa.sin_port), 3);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(12, 1000);
	amil_ack a;
	amil_client_stats st;

	ASSERT_NE(c, nullptr);
	EXPECT_EQ(amil_client_donate(c, &d, &a), -ETIMEDOUT);
	amil_client_stats_get(c, &st);
	EXPECT_EQ(st.last_attempts, 3u);
	EXPECT_GE(st.send_errors, 1u);  // ECONNREFUSED from the ICMP errors
	amil_client_destroy(&c);
}

TEST(ClientDonate, Ipv6Loopback)
{
	FakeNode node({});
	if (!node.start("::1"))
		GTEST_SKIP() << "no IPv6 loopback here";
	amil_client_opts o = fast_opts("::1", node.port(), 3);
	amil_client *c = amil_client_new(&o);
	amil_donation d = donation(13, 20);
	amil_ack a;

	ASSERT_NE(c, nullptr);
	ASSERT_EQ(amil_client_donate(c, &d, &a), 0);
	EXPECT_EQ(a.status, AMIL_ACK_ACCEPTED);
	EXPECT_EQ(a.levy_minor, 1);  // 20 * 2.5 % = 0.5, rounded half up
	amil_client_destroy(&c);
}

// ---- amil-donate input: fields, CSV, key file -----------------------------------

namespace {

struct Csv {
	int rc;
	std::string err;
	std::vector<amil_donate_row> rows;
};

Csv parse_csv(const std::string &text)
{
	Csv out;
	amil_donate_row *rows = nullptr;
	size_t n = 0;
	char err[512] = "";

	out.rc = amil_donate_csv_parse(text.data(), text.size(), "donations.csv", &rows, &n, err,
				       sizeof(err));
	out.err = err;
	if (out.rc == 0)
		out.rows.assign(rows, rows + n);
	else
		EXPECT_EQ(rows, nullptr);
	free(rows);
	return out;
}

const char kHeader[] = "donation_id,amount,currency,exponent,campaign,donor\n";

}  // namespace

TEST(DonateCsv, ParsesAWellFormedFile)
{
	Csv c = parse_csv(std::string("\xEF\xBB\xBF") +
			  "donation_id, amount ,currency,exponent,campaign,donor\r\n"
			  "# a comment\r\n"
			  "1,1000,SAR,2,3,77\r\n"
			  "\r\n"
			  "  2 , \"25\" ,\"USD\",2,0,0\r\n"
			  "18446744073709551615,1000000000000000,KWD,3,4294967295,18446744073709551615");

	ASSERT_EQ(c.rc, 0) << c.err;
	ASSERT_EQ(c.rows.size(), 3u);
	EXPECT_EQ(c.rows[0].line, 3u);
	EXPECT_EQ(c.rows[0].d.donation_id, 1u);
	EXPECT_EQ(c.rows[0].d.amount_minor, 1000);
	EXPECT_EQ(0, memcmp(c.rows[0].d.currency, "SAR", 3));
	EXPECT_EQ(c.rows[0].d.exponent, 2);
	EXPECT_EQ(c.rows[0].d.campaign_id, 3u);
	EXPECT_EQ(c.rows[0].d.donor_id, 77u);
	EXPECT_EQ(c.rows[1].line, 5u);
	EXPECT_EQ(c.rows[1].d.amount_minor, 25);
	EXPECT_EQ(0, memcmp(c.rows[1].d.currency, "USD", 3));
	EXPECT_EQ(c.rows[2].d.donation_id, UINT64_MAX);
	EXPECT_EQ(c.rows[2].d.amount_minor, AMIL_AMOUNT_MAX_MINOR);
	EXPECT_EQ(c.rows[2].d.exponent, 3);
	EXPECT_EQ(c.rows[2].d.campaign_id, UINT32_MAX);
	EXPECT_EQ(c.rows[2].d.donor_id, UINT64_MAX);
}

TEST(DonateCsv, ColumnsInAnyOrderAndOptionalOnes)
{
	Csv c = parse_csv("Currency,Amount,Donation_ID\nEUR,5,10\n");

	ASSERT_EQ(c.rc, 0) << c.err;
	ASSERT_EQ(c.rows.size(), 1u);
	EXPECT_EQ(c.rows[0].d.donation_id, 10u);
	EXPECT_EQ(c.rows[0].d.amount_minor, 5);
	EXPECT_EQ(0, memcmp(c.rows[0].d.currency, "EUR", 3));
	EXPECT_EQ(c.rows[0].d.exponent, AMIL_DONATE_EXPONENT_DEFAULT);
	EXPECT_EQ(c.rows[0].d.campaign_id, 0u);
	EXPECT_EQ(c.rows[0].d.donor_id, 0u);
}

TEST(DonateCsv, ErrorsNameTheLineAndField)
{
	std::string rows = "1,100,SAR,2,0,0\n2,100,SAR,2,0,0\n3,100,SAR,2,0,0\n"
			   "4,100,SAR,2,0,0\n5,100,SAR,2,0,0\n";
	Csv c = parse_csv(kHeader + rows + "6,12.5,SAR,2,0,0\n");

	EXPECT_EQ(c.rc, -EINVAL);
	EXPECT_EQ(c.err, "donations.csv:7: amount: '12.5' is not an integer number of minor units");

	struct {
		std::string row, want;
	} cases[] = {
		{"1,100,SAR,2,0", "donations.csv:2: expected 6 fields as in the header, got 5"},
		{"1,100,SAR,2,0,0,9", "donations.csv:2: expected 6 fields as in the header, got 7"},
		{"0,100,SAR,2,0,0", "donations.csv:2: donation_id: '0' is not a donation id"},
		{"x1,100,SAR,2,0,0", "donations.csv:2: donation_id: 'x1' is not a donation id"},
		{"18446744073709551616,100,SAR,2,0,0",
		 "donations.csv:2: donation_id: '18446744073709551616' is not a donation id"},
		{"1,0,SAR,2,0,0", "donations.csv:2: amount: '0' is out of range 1..1000000000000000"},
		{"1,-5,SAR,2,0,0", "donations.csv:2: amount: '-5' is out of range"},
		{"1,1000000000000001,SAR,2,0,0", "donations.csv:2: amount: '1000000000000001' is out"},
		{"1,99999999999999999999,SAR,2,0,0", "donations.csv:2: amount: '99999999999999999999' is out"},
		{"1,1e3,SAR,2,0,0", "donations.csv:2: amount: '1e3' is not an integer"},
		{"1,,SAR,2,0,0", "donations.csv:2: amount: is empty"},
		{"1,+5,SAR,2,0,0", "donations.csv:2: amount: '+5' is not an integer"},
		{"1,100,sar,2,0,0", "donations.csv:2: currency: 'sar' is not an ISO 4217 code"},
		{"1,100,SARR,2,0,0", "donations.csv:2: currency: 'SARR' is not"},
		{"1,100,SAR,5,0,0", "donations.csv:2: exponent: '5' is not an exponent 0..4"},
		{"1,100,SAR,2,4294967296,0", "donations.csv:2: campaign: '4294967296' is not"},
		{"1,100,SAR,2,0,-1", "donations.csv:2: donor: '-1' is not a donor id"},
		{"1,100,\"SAR,2,0,0", "donations.csv:2: field 3: unterminated quote"},
		{"1,100,\"SAR\"x,2,0,0", "donations.csv:2: field 3: text after the closing quote"},
		{"1,10\"0,SAR,2,0,0", "donations.csv:2: field 2: a quote inside an unquoted field"},
	};
	for (const auto &k : cases) {
		Csv e = parse_csv(kHeader + k.row + "\n");

		EXPECT_EQ(e.rc, -EINVAL) << k.row;
		EXPECT_EQ(e.err.rfind(k.want, 0), 0u) << k.row << " gave: " << e.err;
	}
}

TEST(DonateCsv, HeaderErrors)
{
	struct {
		std::string text, want;
	} cases[] = {
		{"", "donations.csv: no header row"},
		{"\n\n# only comments\n", "donations.csv: no header row"},
		{kHeader, "donations.csv: no donations after the header"},
		{"donation_id,amout,currency\n1,2,SAR\n", "donations.csv:1: unknown column 'amout'"},
		{"donation_id,amount,amount,currency\n", "donations.csv:1: column 'amount' appears twice"},
		{"donation_id,amount\n1,2\n", "donations.csv:1: header lacks the required column 'currency'"},
		{"a,b,c,d,e,f,g\n", "donations.csv:1: header has 7 columns"},
	};
	for (const auto &k : cases) {
		Csv e = parse_csv(k.text);

		EXPECT_EQ(e.rc, -EINVAL) << k.text;
		EXPECT_EQ(e.err.rfind(k.want, 0), 0u) << k.text << " gave: " << e.err;
	}
}

TEST(DonateCsv, DonationIdUsedTwiceNamesBothLines)
{
	Csv c = parse_csv(std::string(kHeader) + "7,1,SAR,2,0,0\n8,1,SAR,2,0,0\n\n7,2,SAR,2,0,0\n"
			  "8,1,SAR,2,0,0\n");

	EXPECT_EQ(c.rc, -EINVAL);
	EXPECT_EQ(c.err, "donations.csv:5: donation_id: 7 already used on line 2");
}

TEST(DonateCsv, LongLineAndNulAreRefused)
{
	Csv c = parse_csv(std::string(kHeader) + "1,1,SAR,2,0," + std::string(5000, '1') + "\n");
	EXPECT_EQ(c.rc, -EINVAL);
	EXPECT_NE(c.err.find("donations.csv:2: line longer than"), std::string::npos) << c.err;
	c = parse_csv(std::string(kHeader) + std::string("1,1,SAR\0,2,0,0\n", 15));
	EXPECT_EQ(c.rc, -EINVAL);
	EXPECT_NE(c.err.find("donations.csv:2: NUL byte"), std::string::npos) << c.err;
}

TEST(DonateField, UnknownFieldAndNames)
{
	amil_donation d;
	char why[128];

	amil_donate_defaults(&d);
	EXPECT_EQ(amil_donate_field_set(&d, AMIL_DONATE_FIELD_MAX, "1", why, sizeof(why)), -EINVAL);
	EXPECT_STREQ(amil_donate_field_name(AMIL_DONATE_AMOUNT), "amount");
	EXPECT_STREQ(amil_donate_field_name(99), "?");
	// A long bad value is cut in the message.
	std::string big(300, 'z');
	EXPECT_EQ(amil_donate_field_set(&d, AMIL_DONATE_AMOUNT, big.c_str(), why, sizeof(why)),
		  -EINVAL);
	EXPECT_LT(strlen(why), 100u);
	EXPECT_NE(strstr(why, "..."), nullptr);
}

namespace {

int parse_key(const std::string &text, uint8_t key[AMIL_KEY_LEN], std::string *err)
{
	char e[256] = "";
	int rc = amil_donate_key_parse(text.data(), text.size(), "center.key", key, e, sizeof(e));

	*err = e;
	return rc;
}

}  // namespace

TEST(DonateKey, OneLineOf32HexDigits)
{
	uint8_t key[AMIL_KEY_LEN];
	std::string err;

	ASSERT_EQ(parse_key("000102030405060708090a0b0c0d0e0f\n", key, &err), 0) << err;
	EXPECT_EQ(0, memcmp(key, kKey, sizeof(key)));
	ASSERT_EQ(parse_key("# center 1001\n\n  000102030405060708090A0B0C0D0E0F  \r\n\n", key, &err),
		  0)
		<< err;
	EXPECT_EQ(0, memcmp(key, kKey, sizeof(key)));
}

TEST(DonateKey, ClearErrorsThatNeverEchoTheKey)
{
	uint8_t key[AMIL_KEY_LEN];
	std::string err;

	EXPECT_EQ(parse_key("", key, &err), -EINVAL);
	EXPECT_EQ(err, "center.key: no key (expected one line of 32 hex digits)");
	EXPECT_EQ(parse_key("000102030405060708090a0b0c0d0e0\n", key, &err), -EINVAL);
	EXPECT_EQ(err, "center.key:1: key must be 32 hex digits, got 31");
	EXPECT_EQ(parse_key("\n00010203040506070809Xa0b0c0d0e0f\n", key, &err), -EINVAL);
	EXPECT_EQ(err, "center.key:2: key has a non-hex character at column 21");
	EXPECT_EQ(parse_key("1001 000102030405060708090a0b0c0d0e0f\n", key, &err), -EINVAL);
	EXPECT_NE(err.find("centers-file line"), std::string::npos) << err;
	EXPECT_EQ(err.find("0001020304"), std::string::npos) << err;
	EXPECT_EQ(parse_key("000102030405060708090a0b0c0d0e0f\n000102030405060708090a0b0c0d0e0f\n",
			    key, &err),
		  -EINVAL);
	EXPECT_EQ(err.rfind("center.key:2: a second line", 0), 0u) << err;
	EXPECT_EQ(parse_key("key = 000102030405060708090a0b0c0d0e0f\n", key, &err), -EINVAL);
	EXPECT_EQ(err.find("0001020304"), std::string::npos) << err;
}
