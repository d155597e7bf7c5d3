// Unit tests for controlplane/membership.c: the SWIM/Lifeguard state
// machine driven by hand, one instance, messages built with the wire codec.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "membership.h"

namespace {

constexpr uint64_t kMs = 1000000ull;
constexpr uint64_t kCluster = 0xC1u;
constexpr uint64_t kSelf = 1;

struct Sent {
	uint64_t to;
	std::string to_addr;
	amil_mwire_msg msg;
};

struct Ev {
	uint8_t type;
	uint64_t node;
	uint32_t inc;
	uint64_t from;
	uint64_t at;
	std::string name;
};

class Harness {
public:
	explicit Harness(amil_membership_profile p = AMIL_MEMBERSHIP_LAN, uint64_t seed = 1)
	{
		EXPECT_EQ(amil_membership_config_init(&cfg, p), 0);
		cfg.cluster_id = kCluster;
		cfg.self_id = kSelf;
		cfg.name = "self";
		cfg.addr = (const uint8_t *)"addr-self";
		cfg.addr_len = 9;
		cfg.max_members = 8;
		cfg.seed = seed;
		cfg.send = OnSend;
		cfg.send_ctx = this;
		cfg.on_event = OnEvent;
		cfg.event_ctx = this;
	}
	~Harness() { amil_membership_destroy(&m); }

	void Create(uint64_t now = 0)
	{
		m = amil_membership_new(&cfg, now);
		ASSERT_NE(m, nullptr);
	}

	static void OnSend(void *ctx, uint64_t to, const uint8_t *addr, size_t addr_len,
			   const uint8_t *buf, size_t len)
	{
		auto *h = static_cast<Harness *>(ctx);
		Sent s;
		s.to = to;
		s.to_addr.assign((const char *)addr, addr ? addr_len : 0);
		// Everything the core sends must decode.
		EXPECT_EQ(amil_mwire_decode(buf, len, kCluster, &s.msg), 0);
		h->sent.push_back(s);
	}
	static void OnEvent(void *ctx, const amil_membership_event *ev)
	{
		auto *h = static_cast<Harness *>(ctx);
		h->events.push_back({ev->type, ev->node_id, ev->incarnation, ev->from_id, ev->at_ns,
				     ev->name ? ev->name : ""});
	}

	// Deliver a message from @from with the given updates.
	int Recv(uint64_t now, uint64_t from, uint8_t type, uint64_t target, uint32_t seq,
		 std::vector<amil_mwire_update> upd, uint64_t origin = 0)
	{
		amil_mwire_msg msg;
		memset(&msg, 0, sizeof(msg));
		msg.type = type;
		msg.cluster_id = kCluster;
		msg.sender = from;
		msg.target = target;
		msg.origin = origin;
		msg.seq = seq;
		for (auto &u : upd)
			msg.updates[msg.n_updates++] = u;
		uint8_t buf[AMIL_MWIRE_MSG_MAX];
		int n = amil_mwire_encode(&msg, buf, sizeof(buf));
		EXPECT_GT(n, 0);
		return amil_membership_receive(m, now, from, buf, (size_t)n);
	}

	// Learn peer @id (alive at @inc) by receiving its ACK-less NACK... no:
	// a PING from it carries its own record.
	void Learn(uint64_t now, uint64_t id, uint32_t inc = 0)
	{
		ASSERT_EQ(Recv(now, id, AMIL_MWIRE_PING, kSelf, 99, {Alive(id, inc)}), 0);
	}

	static amil_mwire_update U(uint64_t id, uint32_t inc, uint8_t state, uint64_t from)
	{
		amil_mwire_update u;
		memset(&u, 0, sizeof(u));
		u.node_id = id;
		u.from_id = from;
		u.incarnation = inc;
		u.state = state;
		return u;
	}
	static amil_mwire_update Alive(uint64_t id, uint32_t inc)
	{
		amil_mwire_update u = U(id, inc, AMIL_MEMBER_ALIVE, id);
		std::string name = "n" + std::to_string(id), addr = "a" + std::to_string(id);
		u.name_len = (uint8_t)name.size();
		memcpy(u.name, name.data(), name.size());
		u.addr_len = (uint8_t)addr.size();
		memcpy(u.addr, addr.data(), addr.size());
		return u;
	}

	int State(uint64_t id)
	{
		amil_member_info i;
		return amil_membership_lookup(m, id, &i) == 0 ? i.state : -1;
	}
	uint32_t Inc(uint64_t id)
	{
		amil_member_info i;
		EXPECT_EQ(amil_membership_lookup(m, id, &i), 0);
		return i.incarnation;
	}
	amil_membership_counters C()
	{
		amil_membership_counters c;
		amil_membership_get_counters(m, &c);
		return c;
	}
	// Tick at every deadline up to @until.
	void RunTo(uint64_t &now, uint64_t until)
	{
		for (;;) {
			uint64_t d = amil_membership_next_deadline_ns(m);
			if (d > until)
				break;
			now = d > now ? d : now;
			amil_membership_tick(m, now);
		}
		now = until;
	}
	std::vector<Sent> Take()
	{
		std::vector<Sent> s;
		s.swap(sent);
		return s;
	}
	size_t CountEv(uint8_t type, uint64_t node)
	{
		size_t n = 0;
		for (auto &e : events)
			n += e.type == type && e.node == node;
		return n;
	}

	amil_membership_config cfg;
	amil_membership *m = nullptr;
	std::vector<Sent> sent;
	std::vector<Ev> events;
};

const amil_mwire_update *
FindUpd(const amil_mwire_msg &msg, uint64_t id)
{
	for (unsigned i = 0; i < msg.n_updates; i++)
		if (msg.updates[i].node_id == id)
			return &msg.updates[i];
	return nullptr;
}

// ---------------------------------------------------------------------

TEST(Membership, ConfigProfilesHaveDocumentedValues)
{
	amil_membership_config c;
	ASSERT_EQ(amil_membership_config_init(&c, AMIL_MEMBERSHIP_LAN), 0);
	EXPECT_EQ(c.timers.probe_interval_ns, 100 * kMs);
	EXPECT_EQ(c.timers.probe_timeout_ns, 40 * kMs);
	EXPECT_EQ(c.timers.suspicion_min_ns, 150 * kMs);
	EXPECT_EQ(c.timers.suspicion_max_mult, 4u);
	ASSERT_EQ(amil_membership_config_init(&c, AMIL_MEMBERSHIP_WAN), 0);
	EXPECT_EQ(c.timers.probe_interval_ns, 1000 * kMs);
	EXPECT_EQ(c.timers.probe_timeout_ns, 500 * kMs);
	EXPECT_EQ(c.timers.suspicion_min_ns, 3000 * kMs);
	EXPECT_EQ(amil_membership_config_init(&c, (amil_membership_profile)7), -EINVAL);
}

TEST(Membership, NewRejectsBadConfigAndDestroyAcceptsNull)
{
	Harness h;
	auto bad = [&](void (*edit)(amil_membership_config *)) {
		amil_membership_config c = h.cfg;
		edit(&c);
		errno = 0;
		amil_membership *m = amil_membership_new(&c, 0);
		EXPECT_EQ(m, nullptr);
		EXPECT_EQ(errno, EINVAL);
		amil_membership_destroy(&m);
	};
	bad([](amil_membership_config *c) { c->self_id = 0; });
	bad([](amil_membership_config *c) { c->name = "123456789012345678901234567890123"; });
	bad([](amil_membership_config *c) { c->name = nullptr; });
	bad([](amil_membership_config *c) { c->addr_len = AMIL_MEMBERSHIP_ADDR_MAX + 1; });
	bad([](amil_membership_config *c) { c->send = nullptr; });
	bad([](amil_membership_config *c) { c->max_members = 1; });
	bad([](amil_membership_config *c) { c->timers.probe_timeout_ns = c->timers.probe_interval_ns; });
	bad([](amil_membership_config *c) { c->timers.piggyback_max = 0; });
	bad([](amil_membership_config *c) { c->timers.piggyback_max = AMIL_MWIRE_UPDATES_MAX + 1; });
	bad([](amil_membership_config *c) { c->timers.suspicion_min_ns = 0; });
	EXPECT_EQ(amil_membership_new(nullptr, 0), nullptr);
	amil_membership_destroy(nullptr);
	amil_membership *null = nullptr;
	amil_membership_destroy(&null);

	h.Create();
	amil_member_info self;
	ASSERT_EQ(amil_membership_lookup(h.m, kSelf, &self), 0);
	EXPECT_TRUE(self.is_self);
	EXPECT_STREQ(self.name, "self");
	EXPECT_EQ(self.state, AMIL_MEMBER_ALIVE);
	EXPECT_EQ(amil_membership_count(h.m, AMIL_MEMBER_ALIVE), 1u);
	amil_membership_destroy(&h.m);
	EXPECT_EQ(h.m, nullptr);
}

TEST(Membership, SeedIsPingedUntilItAnswersThenIsAMember)
{
	Harness h;
	h.Create();
	EXPECT_EQ(amil_membership_add_seed(h.m, 0, nullptr, 0), -EINVAL);
	EXPECT_EQ(amil_membership_add_seed(h.m, kSelf, nullptr, 0), -EINVAL);
	ASSERT_EQ(amil_membership_add_seed(h.m, 5, (const uint8_t *)"seed5", 5), 0);
	EXPECT_EQ(h.State(5), -1);  // not a member until it answers
	amil_membership_tick(h.m, 0);
	auto s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].to, 5u);
	EXPECT_EQ(s[0].to_addr, "seed5");
	EXPECT_EQ(s[0].msg.type, AMIL_MWIRE_PING);
	EXPECT_EQ(s[0].msg.target, 5u);
	// Our own record rides along: that is how the seed learns us.
	ASSERT_GE(s[0].msg.n_updates, 1);
	EXPECT_EQ(s[0].msg.updates[0].node_id, kSelf);
	EXPECT_STREQ(s[0].msg.updates[0].name, "self");
	EXPECT_EQ(s[0].msg.updates[0].state, AMIL_MEMBER_ALIVE);

	// Not answered: pinged again each reconnect interval.
	uint64_t now = 0;
	h.RunTo(now, h.cfg.timers.reconnect_interval_ns);
	size_t again = 0;
	for (auto &x : h.Take())
		again += x.to == 5 && x.msg.type == AMIL_MWIRE_PING;
	EXPECT_EQ(again, 1u);

	ASSERT_EQ(h.Recv(now, 5, AMIL_MWIRE_ACK, 5, s[0].msg.seq, {Harness::Alive(5, 3)}), 0);
	EXPECT_EQ(h.State(5), AMIL_MEMBER_ALIVE);
	EXPECT_EQ(h.Inc(5), 3u);
	ASSERT_EQ(h.events.size(), 1u);
	EXPECT_EQ(h.events[0].type, AMIL_MEMBERSHIP_EV_NODEUP);
	EXPECT_EQ(h.events[0].node, 5u);
	EXPECT_EQ(h.events[0].name, "n5");
	EXPECT_EQ(h.events[0].at, now);
}

// A seed that stays down is asked with backoff: 1, 2, 4, then every 8
// reconnect intervals, not hammered; a new address is asked at once.
TEST(Membership, SilentSeedIsAskedWithBackoff)
{
	Harness h;
	h.Create();
	const uint64_t iv = h.cfg.timers.reconnect_interval_ns;
	ASSERT_EQ(amil_membership_add_seed(h.m, 5, (const uint8_t *)"seed5", 5), 0);
	std::vector<uint64_t> at;
	for (uint64_t now = 0; now <= 40 * iv; now += iv / 10) {
		amil_membership_tick(h.m, now);
		for (auto &x : h.Take())
			if (x.to == 5 && x.msg.type == AMIL_MWIRE_PING)
				at.push_back(now / iv);
	}
	// Pings at 0, 1, 3, 7, 15, 23, 31, 39 intervals.
	const std::vector<uint64_t> want = {0, 1, 3, 7, 15, 23, 31, 39};
	EXPECT_EQ(at, want);
	// The seed moved: asked at once, backoff restarted.
	ASSERT_EQ(amil_membership_add_seed(h.m, 5, (const uint8_t *)"seed5b", 6), 0);
	amil_membership_tick(h.m, 41 * iv);
	size_t now_pings = 0;
	for (auto &x : h.Take())
		now_pings += x.to == 5 && x.to_addr == "seed5b";
	EXPECT_EQ(now_pings, 1u);
}

TEST(Membership, PingIsAnsweredWithAckEchoingSeq)
{
	Harness h;
	h.Create();
	ASSERT_EQ(h.Recv(10, 7, AMIL_MWIRE_PING, kSelf, 1234, {Harness::Alive(7, 0)}, 9), 0);
	auto s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].to, 7u);
	EXPECT_EQ(s[0].to_addr, "a7");
	EXPECT_EQ(s[0].msg.type, AMIL_MWIRE_ACK);
	EXPECT_EQ(s[0].msg.seq, 1234u);
	EXPECT_EQ(s[0].msg.target, kSelf);
	EXPECT_EQ(s[0].msg.origin, 9u);
	EXPECT_EQ(h.State(7), AMIL_MEMBER_ALIVE);

	// A PING meant for another node id is not answered.
	ASSERT_EQ(h.Recv(11, 7, AMIL_MWIRE_PING, 42, 1235, {}), 0);
	EXPECT_TRUE(h.Take().empty());
	EXPECT_EQ(h.C().misaddressed_dropped, 1u);
}

TEST(Membership, MalformedForeignAndSpoofedAreCountedAndDropped)
{
	Harness h;
	h.Create();
	const uint8_t junk[5] = {1, 2, 3, 4, 5};
	EXPECT_EQ(amil_membership_receive(h.m, 0, 7, junk, sizeof(junk)), -EBADMSG);
	EXPECT_EQ(amil_membership_receive(h.m, 0, 7, nullptr, 0), -EBADMSG);

	amil_mwire_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = AMIL_MWIRE_PING;
	msg.cluster_id = kCluster + 1;
	msg.sender = 7;
	msg.target = kSelf;
	uint8_t buf[AMIL_MWIRE_MSG_MAX];
	int n = amil_mwire_encode(&msg, buf, sizeof(buf));
	EXPECT_EQ(amil_membership_receive(h.m, 0, 7, buf, (size_t)n), -EACCES);
	buf[2] = 9;  // version
	EXPECT_EQ(amil_membership_receive(h.m, 0, 7, buf, (size_t)n), -EPROTONOSUPPORT);

	// The transport says 8 sent it, the message says 7.
	EXPECT_EQ(h.Recv(0, 7, AMIL_MWIRE_PING, kSelf, 1, {}), 0);
	h.Take();
	msg.cluster_id = kCluster;
	n = amil_mwire_encode(&msg, buf, sizeof(buf));
	EXPECT_EQ(amil_membership_receive(h.m, 0, 8, buf, (size_t)n), -EBADMSG);
	// From ourselves (a loop or a forgery).
	msg.sender = kSelf;
	n = amil_mwire_encode(&msg, buf, sizeof(buf));
	EXPECT_EQ(amil_membership_receive(h.m, 0, kSelf, buf, (size_t)n), -EBADMSG);

	auto c = h.C();
	EXPECT_EQ(c.malformed_dropped, 4u);
	EXPECT_EQ(c.foreign_dropped, 2u);
	EXPECT_EQ(c.msgs_received, 1u);
	EXPECT_TRUE(h.Take().empty());
}

TEST(Membership, SuspectThenRefutedByHigherIncarnation)
{
	Harness h;
	h.Create();
	h.Learn(0, 2, 4);
	h.Learn(0, 3, 0);
	h.events.clear();
	// 3 says 2 is suspect at incarnation 4.
	ASSERT_EQ(h.Recv(10, 3, AMIL_MWIRE_ACK, 3, 0,
			 {Harness::U(2, 4, AMIL_MEMBER_SUSPECT, 3)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_SUSPECT);
	ASSERT_EQ(h.events.size(), 1u);
	EXPECT_EQ(h.events[0].type, AMIL_MEMBERSHIP_EV_SUSPECT);
	EXPECT_EQ(h.events[0].from, 3u);
	// A stale suspicion (lower incarnation) and an ALIVE at the same
	// incarnation change nothing: SUSPECT(i) beats ALIVE(i).
	ASSERT_EQ(h.Recv(11, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::Alive(2, 4)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_SUSPECT);
	// 2 refutes with 5.
	ASSERT_EQ(h.Recv(20, 2, AMIL_MWIRE_ACK, 2, 0, {Harness::Alive(2, 5)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_ALIVE);
	EXPECT_EQ(h.Inc(2), 5u);
	ASSERT_EQ(h.events.size(), 2u);
	EXPECT_EQ(h.events[1].type, AMIL_MEMBERSHIP_EV_UNSUSPECT);
	EXPECT_EQ(h.events[1].inc, 5u);
	EXPECT_EQ(h.C().false_suspicions, 1u);
	EXPECT_EQ(h.C().suspicions, 1u);
	// The refuted suspicion's timer (600 ms: n = 3, no confirmation) no
	// longer runs.  (Later our own unanswered probes would suspect 2
	// afresh: nothing answers them here.)
	uint64_t now = 20;
	h.RunTo(now, 650 * kMs);
	EXPECT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_NODEDOWN, 2), 0u);
}

TEST(Membership, SelfSuspicionIsRefutedAndTheRefutationIsSent)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Take();
	EXPECT_EQ(amil_membership_incarnation(h.m), 0u);
	ASSERT_EQ(h.Recv(5, 2, AMIL_MWIRE_ACK, 2, 0,
			 {Harness::U(kSelf, 0, AMIL_MEMBER_SUSPECT, 2)}), 0);
	EXPECT_EQ(amil_membership_incarnation(h.m), 1u);
	EXPECT_EQ(h.C().refutations, 1u);
	EXPECT_EQ(amil_membership_health(h.m), 1u);  // Lifeguard: refuting costs health
	// The accuser (from_id 2) hears the refutation at once.
	auto r = h.Take();
	ASSERT_EQ(r.size(), 1u);
	EXPECT_EQ(r[0].to, 2u);
	EXPECT_EQ(r[0].msg.type, AMIL_MWIRE_PING);
	ASSERT_NE(FindUpd(r[0].msg, kSelf), nullptr);
	EXPECT_EQ(FindUpd(r[0].msg, kSelf)->incarnation, 1u);
	// A DEAD claim at a higher incarnation is outbid as well.
	ASSERT_EQ(h.Recv(6, 2, AMIL_MWIRE_ACK, 2, 0, {Harness::U(kSelf, 6, AMIL_MEMBER_DEAD, 2)}), 0);
	EXPECT_EQ(amil_membership_incarnation(h.m), 7u);
	// Stale claims are ignored.
	ASSERT_EQ(h.Recv(7, 2, AMIL_MWIRE_ACK, 2, 0, {Harness::U(kSelf, 3, AMIL_MEMBER_DEAD, 2)}), 0);
	EXPECT_EQ(amil_membership_incarnation(h.m), 7u);
	EXPECT_EQ(h.C().refutations, 2u);
	h.Take();
	// The next message carries ALIVE(7) about us.
	ASSERT_EQ(h.Recv(8, 2, AMIL_MWIRE_PING, kSelf, 77, {}), 0);
	auto s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	const amil_mwire_update *u = FindUpd(s[0].msg, kSelf);
	ASSERT_NE(u, nullptr);
	EXPECT_EQ(u->state, AMIL_MEMBER_ALIVE);
	EXPECT_EQ(u->incarnation, 7u);
}

// n = 3 (self, 2, 3): Lifeguard expects min(3, n - 2) = 1 confirmation, so
// an unconfirmed suspicion lasts max = 4 x 150 ms and a confirmed one min.
TEST(Membership, SuspicionBecomesDeadAfterTheTimeoutNotBefore)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Learn(0, 3);
	uint64_t t0 = 1000 * kMs;
	ASSERT_EQ(h.Recv(t0, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 0, AMIL_MEMBER_SUSPECT, 3)}), 0);
	EXPECT_EQ(amil_membership_next_deadline_ns(h.m) <= t0 + 600 * kMs, true);
	amil_membership_tick(h.m, t0 + 600 * kMs - 1);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_SUSPECT);
	amil_membership_tick(h.m, t0 + 600 * kMs);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_DEAD);
	ASSERT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_NODEDOWN, 2), 1u);
	EXPECT_EQ(h.events.back().from, kSelf);
	EXPECT_EQ(h.events.back().at, t0 + 600 * kMs);
	EXPECT_EQ(h.C().deaths_declared, 1u);
}

TEST(Membership, ConfirmationShortensTheSuspicionToTheMinimum)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Learn(0, 3);
	h.Learn(0, 4);  // n = 4: expect min(3, 2) = 2 confirmations
	uint64_t t0 = 1000 * kMs;
	ASSERT_EQ(h.Recv(t0, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 0, AMIL_MEMBER_SUSPECT, 3)}), 0);
	// The same suspector again does not count; 4 does, and 3 + 4 = 2.
	ASSERT_EQ(h.Recv(t0 + 1, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 0, AMIL_MEMBER_SUSPECT, 3)}), 0);
	EXPECT_EQ(h.C().confirmations, 0u);
	ASSERT_EQ(h.Recv(t0 + 2, 4, AMIL_MWIRE_ACK, 4, 0, {Harness::U(2, 0, AMIL_MEMBER_SUSPECT, 4)}), 0);
	EXPECT_EQ(h.C().confirmations, 1u);
	// One of two: 600 - 450 * log(2)/log(3) = 316 ms.
	amil_membership_tick(h.m, t0 + 300 * kMs);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_SUSPECT);
	amil_membership_tick(h.m, t0 + 320 * kMs);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_DEAD);
}

TEST(Membership, DeadMemberRejoinsOnlyWithAHigherIncarnation)
{
	Harness h;
	h.Create();
	h.Learn(0, 2, 3);
	h.Learn(0, 3);
	ASSERT_EQ(h.Recv(10, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 3, AMIL_MEMBER_DEAD, 3)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_DEAD);
	EXPECT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_NODEDOWN, 2), 1u);
	// A SUSPECT or ALIVE at the same incarnation cannot undo DEAD.
	ASSERT_EQ(h.Recv(11, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 3, AMIL_MEMBER_SUSPECT, 3)}), 0);
	ASSERT_EQ(h.Recv(12, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::Alive(2, 3)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_DEAD);
	// A message from 2 itself at the old incarnation: we answer with the
	// DEAD claim (buddy system) so that it refutes.
	h.Take();
	ASSERT_EQ(h.Recv(13, 2, AMIL_MWIRE_PING, kSelf, 5, {Harness::Alive(2, 3)}), 0);
	auto s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	const amil_mwire_update *claim = FindUpd(s[0].msg, 2);
	ASSERT_NE(claim, nullptr);
	EXPECT_EQ(claim->state, AMIL_MEMBER_DEAD);
	EXPECT_EQ(claim->incarnation, 3u);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_DEAD);
	// The refutation brings it back.
	ASSERT_EQ(h.Recv(14, 2, AMIL_MWIRE_PING, kSelf, 6, {Harness::Alive(2, 4)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_ALIVE);
	EXPECT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_NODEUP, 2), 2u);
	EXPECT_EQ(h.events.back().inc, 4u);
}

TEST(Membership, LeftIsNotDeadAndOnlyTheNodeCanSayIt)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Learn(0, 3);
	// 3 claims 2 left: ignored.
	ASSERT_EQ(h.Recv(5, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 1, AMIL_MEMBER_LEFT, 3)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_ALIVE);
	// 2's own LEFT, relayed by 3: left.
	ASSERT_EQ(h.Recv(6, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 1, AMIL_MEMBER_LEFT, 2)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_LEFT);
	EXPECT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_LEFT, 2), 1u);
	EXPECT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_NODEDOWN, 2), 0u);
	// A later DEAD does not turn a leave into a failure.
	ASSERT_EQ(h.Recv(7, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 1, AMIL_MEMBER_DEAD, 3)}), 0);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_LEFT);
	EXPECT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_NODEDOWN, 2), 0u);
	// Left members are not probed.
	h.Take();
	uint64_t now = 7;
	h.RunTo(now, 2000 * kMs);
	for (auto &s : h.Take())
		EXPECT_NE(s.to, 2u);
}

TEST(Membership, OwnLeaveIsAnnouncedThenGoesQuiet)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Learn(0, 3);
	h.Take();
	uint32_t inc = amil_membership_incarnation(h.m);
	ASSERT_EQ(amil_membership_leave(h.m, 100), 0);
	EXPECT_EQ(amil_membership_leave(h.m, 100), -EALREADY);
	EXPECT_EQ(amil_membership_incarnation(h.m), inc + 1);
	auto s = h.Take();
	ASSERT_EQ(s.size(), 2u);  // announced to the two members at once
	for (auto &x : s) {
		EXPECT_EQ(x.msg.updates[0].node_id, kSelf);
		EXPECT_EQ(x.msg.updates[0].state, AMIL_MEMBER_LEFT);
		EXPECT_EQ(x.msg.updates[0].incarnation, inc + 1);
	}
	// Someone still saying we are alive does not make us rejoin.
	ASSERT_EQ(h.Recv(200, 2, AMIL_MWIRE_PING, kSelf, 1, {Harness::U(kSelf, inc + 1, AMIL_MEMBER_SUSPECT, 2)}), 0);
	amil_member_info self;
	ASSERT_EQ(amil_membership_lookup(h.m, kSelf, &self), 0);
	EXPECT_EQ(self.state, AMIL_MEMBER_LEFT);
	EXPECT_EQ(h.C().refutations, 0u);
	EXPECT_FALSE(amil_membership_is_quiet(h.m));
	EXPECT_EQ(amil_membership_tick(h.m, 100 + h.cfg.timers.leave_linger_ns), -ESHUTDOWN);
	EXPECT_TRUE(amil_membership_is_quiet(h.m));
	EXPECT_EQ(amil_membership_next_deadline_ns(h.m), UINT64_MAX);
	EXPECT_EQ(h.Recv(200 + h.cfg.timers.leave_linger_ns, 2, AMIL_MWIRE_PING, kSelf, 2, {}), -ESHUTDOWN);
}

// One probe, start to end: PING; at the timeout a second PING and PING_REQs
// to helpers; with no ACK by the end of the interval, SUSPECT.
TEST(Membership, FailedProbeGoesIndirectThenSuspects)
{
	Harness h;
	h.cfg.timers.indirect_probes = 2;
	h.Create();
	for (uint64_t id = 2; id <= 5; id++)
		h.Learn(0, id);
	h.Take();
	h.events.clear();
	uint64_t now = 0;
	// Run to the first probe.
	while (h.sent.empty()) {
		now = amil_membership_next_deadline_ns(h.m);
		amil_membership_tick(h.m, now);
	}
	auto s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	ASSERT_EQ(s[0].msg.type, AMIL_MWIRE_PING);
	uint64_t target = s[0].to;
	uint32_t seq = s[0].msg.seq;
	uint64_t start = now;
	// The probe timeout is due at +40 ms (the reconnect timer, 50 ms
	// apart, may come first: it wakes the loop, sends nothing here).
	EXPECT_LE(amil_membership_next_deadline_ns(h.m), start + 40 * kMs);
	EXPECT_GT(amil_membership_next_deadline_ns(h.m), start);
	amil_membership_tick(h.m, start + 40 * kMs);
	s = h.Take();
	unsigned pings = 0, reqs = 0;
	for (auto &x : s) {
		if (x.msg.type == AMIL_MWIRE_PING) {
			pings++;
			EXPECT_EQ(x.to, target);
			EXPECT_EQ(x.msg.seq, seq);
		} else if (x.msg.type == AMIL_MWIRE_PING_REQ) {
			reqs++;
			EXPECT_NE(x.to, target);
			EXPECT_EQ(x.msg.target, target);
			EXPECT_EQ(x.msg.seq, seq);
		}
	}
	EXPECT_EQ(pings, 1u);
	EXPECT_EQ(reqs, 2u);
	// One helper answers NACK; the other stays silent.
	ASSERT_EQ(h.Recv(start + 60 * kMs, s.back().to, AMIL_MWIRE_NACK, target, seq, {}), 0);
	amil_membership_tick(h.m, start + 100 * kMs);
	EXPECT_EQ(h.State(target), AMIL_MEMBER_SUSPECT);
	ASSERT_EQ(h.CountEv(AMIL_MEMBERSHIP_EV_SUSPECT, target), 1u);
	auto c = h.C();
	EXPECT_EQ(c.probe_failures, 1u);
	EXPECT_EQ(c.suspicions_raised, 1u);
	EXPECT_EQ(c.indirect_probes_sent, 2u);
	EXPECT_EQ(c.nacks_received, 1u);
	// Lifeguard: one of two expected NACKs missing -> health 1, and the
	// next probe interval is doubled.
	EXPECT_EQ(amil_membership_health(h.m), 1u);
	// Any message to the suspect carries the suspicion (buddy system), so
	// it can refute at once: here, our ACK to its PING.
	h.Take();
	ASSERT_EQ(h.Recv(start + 101 * kMs, target, AMIL_MWIRE_PING, kSelf, 9, {}), 0);
	s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	const amil_mwire_update *claim = FindUpd(s[0].msg, target);
	ASSERT_NE(claim, nullptr);
	EXPECT_EQ(claim->state, AMIL_MEMBER_SUSPECT);
	EXPECT_EQ(claim->from_id, kSelf);
}

TEST(Membership, AckedProbeIsSuccess)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Take();
	uint64_t now = 0;
	while (h.sent.empty()) {
		now = amil_membership_next_deadline_ns(h.m);
		amil_membership_tick(h.m, now);
	}
	auto s = h.Take();
	ASSERT_EQ(s[0].to, 2u);
	// A wrong seq is not an answer; the right one is.
	ASSERT_EQ(h.Recv(now + 1, 2, AMIL_MWIRE_ACK, 2, s[0].msg.seq + 1, {}), 0);
	EXPECT_EQ(h.C().acks_received, 0u);
	ASSERT_EQ(h.Recv(now + 2, 2, AMIL_MWIRE_ACK, 2, s[0].msg.seq, {}), 0);
	EXPECT_EQ(h.C().acks_received, 1u);
	amil_membership_tick(h.m, now + 40 * kMs);
	EXPECT_TRUE(h.Take().empty());  // no indirect probe after an ACK
	amil_membership_tick(h.m, now + 100 * kMs);
	EXPECT_EQ(h.State(2), AMIL_MEMBER_ALIVE);
	EXPECT_EQ(h.C().probe_failures, 0u);
}

TEST(Membership, RelaysIndirectProbeAndForwardsAckOrNacks)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Learn(0, 3);
	h.Take();
	// 3 asks us to probe 2 for its probe #500.
	ASSERT_EQ(h.Recv(10, 3, AMIL_MWIRE_PING_REQ, 2, 500, {}), 0);
	auto s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].to, 2u);
	EXPECT_EQ(s[0].msg.type, AMIL_MWIRE_PING);
	EXPECT_EQ(s[0].msg.origin, 3u);
	uint32_t relay_seq = s[0].msg.seq;
	// 2 answers; we forward to 3 with 3's seq.
	ASSERT_EQ(h.Recv(20, 2, AMIL_MWIRE_ACK, 2, relay_seq, {}, 3), 0);
	s = h.Take();
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].to, 3u);
	EXPECT_EQ(s[0].msg.type, AMIL_MWIRE_ACK);
	EXPECT_EQ(s[0].msg.seq, 500u);
	EXPECT_EQ(s[0].msg.target, 2u);
	// A duplicate ACK is not forwarded twice.
	ASSERT_EQ(h.Recv(21, 2, AMIL_MWIRE_ACK, 2, relay_seq, {}, 3), 0);
	EXPECT_TRUE(h.Take().empty());

	// Again, with no answer: NACK at the probe timeout.
	ASSERT_EQ(h.Recv(100, 3, AMIL_MWIRE_PING_REQ, 2, 501, {}), 0);
	h.Take();
	amil_membership_tick(h.m, 100 + 40 * kMs);
	bool nack = false;
	for (auto &x : h.Take())
		nack |= x.to == 3 && x.msg.type == AMIL_MWIRE_NACK && x.msg.seq == 501 &&
			x.msg.target == 2;
	EXPECT_TRUE(nack);
	EXPECT_EQ(h.C().indirect_probes_served, 2u);
	EXPECT_EQ(h.C().nacks_sent, 1u);
}

// Each update is piggybacked a bounded number of times, least-sent first,
// and a message never lists one member twice.
TEST(Membership, GossipIsRetransmittedABoundedNumberOfTimes)
{
	Harness h;
	h.Create();
	h.Learn(0, 2);
	h.Learn(0, 3);
	h.Take();
	// Drain what the joins queued.
	for (int i = 0; i < 50; i++)
		ASSERT_EQ(h.Recv(1, 2, AMIL_MWIRE_PING, kSelf, (uint32_t)i, {}), 0);
	h.Take();
	ASSERT_EQ(h.Recv(2, 2, AMIL_MWIRE_ACK, 2, 0, {Harness::U(3, 0, AMIL_MEMBER_SUSPECT, 2)}), 0);
	unsigned carried = 0;
	for (int i = 0; i < 50; i++) {
		ASSERT_EQ(h.Recv(3, 2, AMIL_MWIRE_PING, kSelf, (uint32_t)i, {}), 0);
		auto s = h.Take();
		ASSERT_EQ(s.size(), 1u);
		const amil_mwire_msg &msg = s[0].msg;
		for (unsigned a = 0; a < msg.n_updates; a++)
			for (unsigned b = a + 1; b < msg.n_updates; b++)
				EXPECT_NE(msg.updates[a].node_id, msg.updates[b].node_id);
		carried += FindUpd(msg, 3) != nullptr;
	}
	// n = 3: retransmit_mult 4 x ceil(log10(4)) = 4.
	EXPECT_EQ(carried, 4u);
}

TEST(Membership, ForeachAndCountSeeEveryKnownMember)
{
	Harness h;
	h.Create();
	ASSERT_EQ(amil_membership_add_seed(h.m, 9, (const uint8_t *)"s", 1), 0);
	h.Learn(0, 2);
	h.Learn(0, 3);
	ASSERT_EQ(h.Recv(5, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 0, AMIL_MEMBER_DEAD, 3)}), 0);
	std::vector<uint64_t> ids;
	unsigned n = amil_membership_foreach(
		h.m,
		[](void *ctx, const amil_member_info *i) {
			static_cast<std::vector<uint64_t> *>(ctx)->push_back(i->node_id);
			return 0;
		},
		&ids);
	EXPECT_EQ(n, 3u);  // the unanswered seed is not a member
	ASSERT_EQ(ids.size(), 3u);
	EXPECT_EQ(ids[0], kSelf);
	EXPECT_EQ(amil_membership_count(h.m, AMIL_MEMBER_ALIVE), 2u);
	EXPECT_EQ(amil_membership_count(h.m, AMIL_MEMBER_DEAD), 1u);
	// Early stop.
	n = amil_membership_foreach(h.m, [](void *, const amil_member_info *) { return 1; }, nullptr);
	EXPECT_EQ(n, 1u);
	EXPECT_STREQ(amil_membership_event_name(AMIL_MEMBERSHIP_EV_NODEDOWN), "nodedown");
	EXPECT_STREQ(amil_membership_event_name(0), "?");
}

TEST(Membership, FullTableDropsNewMembersAndCountsThem)
{
	Harness h;
	h.cfg.max_members = 3;
	h.Create();
	h.Learn(0, 2);
	h.Learn(0, 3);
	ASSERT_EQ(h.Recv(1, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::Alive(4, 0)}), 0);
	EXPECT_EQ(h.State(4), -1);
	EXPECT_EQ(h.C().table_full_dropped, 1u);
	EXPECT_EQ(amil_membership_add_seed(h.m, 5, nullptr, 0), -ENOSPC);
}

// Dead records are reaped after reap_ns; a reaped seed goes back to being
// pinged as a seed.
TEST(Membership, DeadRecordsAreReaped)
{
	Harness h;
	h.cfg.timers.reap_ns = 1000 * kMs;
	h.Create();
	ASSERT_EQ(amil_membership_add_seed(h.m, 2, (const uint8_t *)"s2", 2), 0);
	h.Learn(0, 2);
	h.Learn(0, 3);
	ASSERT_EQ(h.Recv(5, 2, AMIL_MWIRE_ACK, 2, 0, {Harness::U(3, 0, AMIL_MEMBER_DEAD, 2)}), 0);
	ASSERT_EQ(h.Recv(5, 3, AMIL_MWIRE_ACK, 3, 0, {Harness::U(2, 0, AMIL_MEMBER_DEAD, 3)}), 0);
	uint64_t now = 5;
	h.RunTo(now, 1100 * kMs);
	EXPECT_EQ(h.State(3), -1);
	EXPECT_EQ(h.State(2), -1);
	h.Take();
	h.RunTo(now, 2000 * kMs);
	bool seed_pinged = false;
	for (auto &s : h.Take())
		seed_pinged |= s.to == 2 && s.to_addr == "a2";
	EXPECT_TRUE(seed_pinged);
}

}  // namespace
