// Scenario tests for the membership core over the deterministic simulator
// (controlplane/sim.h), each over many seeds.  Detection-time figures are
// printed (and recorded as test properties) for the LAN and WAN profiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sim.h"

namespace {

constexpr uint64_t kMs = 1000000ull;
constexpr uint64_t kSec = 1000 * kMs;

// Seeds per scenario; AMIL_SIM_SEEDS overrides (e.g. 1000 for a long run).
unsigned
Seeds(unsigned dflt = 200)
{
	const char *e = getenv("AMIL_SIM_SEEDS");
	return e ? (unsigned)atoi(e) : dflt;
}

uint64_t
All(uint32_t n)
{
	return n >= 64 ? ~0ull : (1ull << n) - 1;
}

struct SimPtr {
	amil_cpsim *s;
	explicit SimPtr(const amil_cpsim_config &c) : s(amil_cpsim_new(&c)) {}
	~SimPtr() { amil_cpsim_destroy(&s); }
	operator amil_cpsim *() const { return s; }
};

// Run until every node of @set sees every node of @subjects as @state, in
// steps of @step; return the time, or UINT64_MAX when @limit passes first.
uint64_t
RunUntilAllSee(amil_cpsim *s, uint64_t set, uint64_t subjects, amil_member_state state,
	       uint64_t limit, uint64_t step = 5 * kMs)
{
	while (!amil_cpsim_all_see(s, set, subjects, state)) {
		if (amil_cpsim_now(s) >= limit)
			return UINT64_MAX;
		amil_cpsim_run_for(s, step);
	}
	return amil_cpsim_now(s);
}

std::vector<amil_cpsim_event>
Events(amil_cpsim *s, uint8_t type, int subject = -1)
{
	size_t n;
	const amil_cpsim_event *t = amil_cpsim_trace(s, &n);
	std::vector<amil_cpsim_event> out;
	for (size_t i = 0; i < n; i++)
		if (t[i].type == type && (subject < 0 || t[i].subject == (uint32_t)subject))
			out.push_back(t[i]);
	return out;
}

struct Dist {
	std::vector<double> v;
	void Add(double x) { v.push_back(x); }
	double Pct(double p)
	{
		std::sort(v.begin(), v.end());
		size_t i = (size_t)(p / 100.0 * (double)(v.size() - 1) + 0.5);
		return v[std::min(i, v.size() - 1)];
	}
	std::string Str()
	{
		char b[160];
		snprintf(b, sizeof(b), "min %.0f p50 %.0f p99 %.0f max %.0f ms (n=%zu)", Pct(0),
			 Pct(50), Pct(99), Pct(100), v.size());
		return b;
	}
};

amil_cpsim_config
Cfg(uint32_t n, amil_membership_profile p, uint64_t seed, uint32_t loss_ppm = 0)
{
	amil_cpsim_config c;
	amil_cpsim_config_init(&c, n, p, seed);
	c.loss_ppm = loss_ppm;
	return c;
}

// ---------------------------------------------------------------------

TEST(MembershipSim, FiveNodesConvergeFromOneSeed)
{
	Dist join;
	for (unsigned seed = 1; seed <= Seeds(); seed++) {
		SimPtr s(Cfg(5, AMIL_MEMBERSHIP_LAN, seed));
		ASSERT_NE(s.s, nullptr);
		uint64_t t = RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, 5 * kSec, kMs);
		ASSERT_NE(t, UINT64_MAX) << "seed " << seed;
		join.Add((double)t / kMs);
		amil_cpsim_run_for(s, 2 * kSec);
		// With no loss nothing may ever be suspected.
		EXPECT_TRUE(Events(s, AMIL_MEMBERSHIP_EV_SUSPECT).empty()) << "seed " << seed;
		EXPECT_TRUE(amil_cpsim_all_see(s, All(5), All(5), AMIL_MEMBER_ALIVE));
	}
	printf("[ figures  ] LAN 5-node join from one seed: %s\n", join.Str().c_str());
	RecordProperty("lan_join_ms_p99", (int)join.Pct(99));
}

// The same seed gives the same trace, bit for bit.
TEST(MembershipSim, SameSeedSameTrace)
{
	std::vector<amil_cpsim_event> runs[2];
	for (auto &r : runs) {
		SimPtr s(Cfg(5, AMIL_MEMBERSHIP_LAN, 77, 50000));
		amil_cpsim_run_until(s, 3 * kSec);
		amil_cpsim_pause(s, 2);
		amil_cpsim_run_until(s, 6 * kSec);
		size_t n;
		const amil_cpsim_event *t = amil_cpsim_trace(s, &n);
		r.assign(t, t + n);
	}
	ASSERT_EQ(runs[0].size(), runs[1].size());
	ASSERT_GT(runs[0].size(), 20u);
	for (size_t i = 0; i < runs[0].size(); i++) {
		EXPECT_EQ(runs[0][i].at_ns, runs[1][i].at_ns);
		EXPECT_EQ(runs[0][i].observer, runs[1][i].observer);
		EXPECT_EQ(runs[0][i].subject, runs[1][i].subject);
		EXPECT_EQ(runs[0][i].type, runs[1][i].type);
	}
}

struct PauseResult {
	Dist first;  // first member to declare it dead
	Dist all;    // last of the others to declare it dead
	unsigned false_downs = 0;
};

// Pause one member of a converged cluster at a seed-dependent instant and
// check that every other member declares it dead, never before the pause
// and within @bound; no other member may be declared dead.
PauseResult
PauseScenario(uint32_t n, amil_membership_profile p, uint32_t loss_ppm, uint64_t warmup,
	      uint64_t bound, unsigned seeds)
{
	PauseResult r;
	for (unsigned seed = 1; seed <= seeds; seed++) {
		SimPtr s(Cfg(n, p, seed));
		EXPECT_NE(RunUntilAllSee(s, All(n), All(n), AMIL_MEMBER_ALIVE, warmup), UINT64_MAX)
			<< "seed " << seed;
		amil_cpsim_run_until(s, warmup);
		amil_cpsim_set_loss(s, loss_ppm);
		// Vary the phase relative to the probe schedules.
		amil_cpsim_run_for(s, (seed * 7919ull) % (p == AMIL_MEMBERSHIP_LAN ? 100 : 1000) * kMs);
		uint32_t victim = seed % n;
		uint64_t t0 = amil_cpsim_now(s);
		amil_cpsim_trace_clear(s);
		amil_cpsim_pause(s, victim);
		amil_cpsim_run_for(s, bound);

		uint64_t others = All(n) & ~(1ull << victim);
		uint64_t first = UINT64_MAX, last = 0;
		for (uint32_t o = 0; o < n; o++) {
			if (o == victim)
				continue;
			uint64_t t = UINT64_MAX;
			for (const auto &e : Events(s, AMIL_MEMBERSHIP_EV_NODEDOWN, (int)victim))
				if (e.observer == o) {
					t = e.at_ns;
					break;
				}
			EXPECT_NE(t, UINT64_MAX) << "seed " << seed << ": node " << o
						 << " never declared the paused node dead";
			if (t == UINT64_MAX)
				continue;
			EXPECT_GT(t, t0) << "seed " << seed << ": declared dead before the pause";
			first = std::min(first, t);
			last = std::max(last, t);
		}
		EXPECT_TRUE(amil_cpsim_all_see(s, others, 1ull << victim, AMIL_MEMBER_DEAD))
			<< "seed " << seed;
		for (const auto &e : Events(s, AMIL_MEMBERSHIP_EV_NODEDOWN))
			if (e.subject != victim)
				r.false_downs++;
		if (first != UINT64_MAX) {
			r.first.Add((double)(first - t0) / kMs);
			r.all.Add((double)(last - t0) / kMs);
		}
	}
	return r;
}

void
ReportPause(const char *name, PauseResult &r)
{
	printf("[ figures  ] %s: first declares dead %s\n", name, r.first.Str().c_str());
	printf("[ figures  ] %s: all declare dead   %s, false nodedowns %u\n", name,
	       r.all.Str().c_str(), r.false_downs);
}

TEST(MembershipSim, LanPausedMemberDeclaredDeadWellUnderOneSecond)
{
	PauseResult r = PauseScenario(5, AMIL_MEMBERSHIP_LAN, 0, 3 * kSec, 2 * kSec, Seeds());
	ReportPause("LAN 5 nodes, pause, no loss", r);
	EXPECT_EQ(r.false_downs, 0u);
	// Bound asserted per run: everyone within 1 s of the pause.
	EXPECT_LT(r.all.Pct(100), 1000.0);
	RecordProperty("lan_pause_all_ms_p99", (int)r.all.Pct(99));
}

TEST(MembershipSim, LanPausedMemberDeclaredDeadUnderTenPercentLoss)
{
	PauseResult r = PauseScenario(5, AMIL_MEMBERSHIP_LAN, 100000, 3 * kSec, 5 * kSec, Seeds());
	ReportPause("LAN 5 nodes, pause, 10% loss", r);
	EXPECT_EQ(r.false_downs, 0u);
	EXPECT_LT(r.all.Pct(100), 2500.0);
}

TEST(MembershipSim, LanThreeNodesPausedMember)
{
	PauseResult r = PauseScenario(3, AMIL_MEMBERSHIP_LAN, 0, 3 * kSec, 2 * kSec, Seeds());
	ReportPause("LAN 3 nodes, pause, no loss", r);
	EXPECT_EQ(r.false_downs, 0u);
	EXPECT_LT(r.all.Pct(100), 1000.0);
}

TEST(MembershipSim, WanPausedMemberDeclaredDead)
{
	PauseResult r = PauseScenario(5, AMIL_MEMBERSHIP_WAN, 0, 20 * kSec, 20 * kSec, Seeds());
	ReportPause("WAN 5 nodes, pause, no loss", r);
	EXPECT_EQ(r.false_downs, 0u);
	// Probed within ~2 intervals, suspicion at most 3 x 3 s, then one
	// gossip hop: 12 s covers the worst case with no confirmations.
	EXPECT_LT(r.all.Pct(100), 12000.0);
}

TEST(MembershipSim, WanPausedMemberDeclaredDeadUnderTenPercentLoss)
{
	PauseResult r = PauseScenario(5, AMIL_MEMBERSHIP_WAN, 100000, 20 * kSec, 40 * kSec, Seeds());
	ReportPause("WAN 5 nodes, pause, 10% loss", r);
	EXPECT_EQ(r.false_downs, 0u);
	EXPECT_LT(r.all.Pct(100), 25000.0);
}

// Random loss alone must not kill anyone.
void
LossScenario(amil_membership_profile p, uint32_t loss_ppm, uint64_t duration, unsigned seeds,
	     const char *name)
{
	unsigned downs = 0, suspects = 0, runs_with_down = 0;
	for (unsigned seed = 1; seed <= seeds; seed++) {
		SimPtr s(Cfg(5, p, seed));
		uint64_t warm = p == AMIL_MEMBERSHIP_LAN ? 3 * kSec : 20 * kSec;
		ASSERT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, warm), UINT64_MAX);
		amil_cpsim_trace_clear(s);
		amil_cpsim_set_loss(s, loss_ppm);
		amil_cpsim_run_for(s, duration);
		auto d = Events(s, AMIL_MEMBERSHIP_EV_NODEDOWN);
		downs += (unsigned)d.size();
		runs_with_down += !d.empty();
		suspects += (unsigned)Events(s, AMIL_MEMBERSHIP_EV_SUSPECT).size();
		EXPECT_TRUE(d.empty()) << "seed " << seed << ": " << d.size()
				       << " false nodedown events, first at "
				       << (d.empty() ? 0 : d[0].at_ns / kMs) << " ms";
		// Whatever was suspected was refuted: all alive at the end.
		amil_cpsim_set_loss(s, 0);
		amil_cpsim_run_for(s, p == AMIL_MEMBERSHIP_LAN ? 2 * kSec : 20 * kSec);
		EXPECT_TRUE(amil_cpsim_all_see(s, All(5), All(5), AMIL_MEMBER_ALIVE)) << "seed " << seed;
	}
	printf("[ figures  ] %s: %u seeds x %" PRIu64 " s: %u false suspicions (all refuted), "
	       "%u false nodedowns in %u runs\n",
	       name, seeds, duration / kSec, suspects, downs, runs_with_down);
}

TEST(MembershipSim, LanTenPercentLossSixtySecondsNoFalseDeath)
{
	LossScenario(AMIL_MEMBERSHIP_LAN, 100000, 60 * kSec, Seeds(), "LAN 10% loss");
}

TEST(MembershipSim, WanTenPercentLossNoFalseDeath)
{
	LossScenario(AMIL_MEMBERSHIP_WAN, 100000, 300 * kSec, Seeds(50), "WAN 10% loss");
}

// A link cut between two members (both keep running, as when a firewall
// drops one path) must not kill either: indirect probes go around it.
TEST(MembershipSim, SingleCutLinkIsRoutedAroundByIndirectProbes)
{
	for (unsigned seed = 1; seed <= Seeds(); seed++) {
		SimPtr s(Cfg(5, AMIL_MEMBERSHIP_LAN, seed));
		ASSERT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, 3 * kSec), UINT64_MAX);
		amil_cpsim_trace_clear(s);
		amil_cpsim_cut_link(s, 1, 3, true);
		amil_cpsim_run_for(s, 20 * kSec);
		EXPECT_TRUE(Events(s, AMIL_MEMBERSHIP_EV_NODEDOWN).empty()) << "seed " << seed;
	}
}

// A member whose every link is cut (process alive, connections open, but
// nothing gets through) is a silent failure like a pause.
TEST(MembershipSim, IsolatedMemberIsDeclaredDeadAndRejoinsAfterwards)
{
	for (unsigned seed = 1; seed <= Seeds(); seed++) {
		SimPtr s(Cfg(5, AMIL_MEMBERSHIP_LAN, seed));
		ASSERT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, 3 * kSec), UINT64_MAX);
		uint32_t v = 1 + seed % 4;
		for (uint32_t j = 0; j < 5; j++)
			if (j != v)
				amil_cpsim_cut_link(s, v, j, true);
		uint64_t t0 = amil_cpsim_now(s);
		uint64_t others = All(5) & ~(1ull << v);
		uint64_t t = RunUntilAllSee(s, others, 1ull << v, AMIL_MEMBER_DEAD, t0 + 2 * kSec);
		ASSERT_NE(t, UINT64_MAX) << "seed " << seed;
		EXPECT_LT(t - t0, 1000 * kMs);
		for (uint32_t j = 0; j < 5; j++)
			amil_cpsim_cut_link(s, v, j, false);
		EXPECT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, t + 5 * kSec),
			  UINT64_MAX) << "seed " << seed;
		auto ms = amil_cpsim_node(s, v);
		EXPECT_GT(amil_membership_incarnation(ms), 0u);  // it refuted its death
	}
}

TEST(MembershipSim, PartitionTwoThreeThenHeal)
{
	Dist split, heal;
	for (unsigned seed = 1; seed <= Seeds(); seed++) {
		SimPtr s(Cfg(5, AMIL_MEMBERSHIP_LAN, seed));
		ASSERT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, 3 * kSec), UINT64_MAX);
		const uint32_t group[5] = {0, 0, 1, 1, 1};
		uint64_t a = 0x03, b = 0x1C;
		amil_cpsim_partition(s, group);
		uint64_t t0 = amil_cpsim_now(s);
		uint64_t t1 = UINT64_MAX;
		while (amil_cpsim_now(s) < t0 + 5 * kSec) {
			amil_cpsim_run_for(s, 5 * kMs);
			if (amil_cpsim_all_see(s, a, b, AMIL_MEMBER_DEAD) &&
			    amil_cpsim_all_see(s, b, a, AMIL_MEMBER_DEAD)) {
				t1 = amil_cpsim_now(s);
				break;
			}
		}
		ASSERT_NE(t1, UINT64_MAX) << "seed " << seed << ": sides did not see each other dead";
		// Inside each side everybody stays alive.
		EXPECT_TRUE(amil_cpsim_all_see(s, a, a, AMIL_MEMBER_ALIVE));
		EXPECT_TRUE(amil_cpsim_all_see(s, b, b, AMIL_MEMBER_ALIVE));
		split.Add((double)(t1 - t0) / kMs);
		amil_cpsim_run_for(s, 5 * kSec);  // stay split a while
		amil_cpsim_heal(s);
		uint64_t h0 = amil_cpsim_now(s);
		uint64_t h1 = RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, h0 + 10 * kSec);
		ASSERT_NE(h1, UINT64_MAX) << "seed " << seed << ": no convergence after heal";
		heal.Add((double)(h1 - h0) / kMs);
		// And it stays converged.
		amil_cpsim_trace_clear(s);
		amil_cpsim_run_for(s, 3 * kSec);
		EXPECT_TRUE(Events(s, AMIL_MEMBERSHIP_EV_NODEDOWN).empty()) << "seed " << seed;
	}
	printf("[ figures  ] LAN partition 2|3: both sides see the other dead %s\n", split.Str().c_str());
	printf("[ figures  ] LAN partition heal: all alive again %s\n", heal.Str().c_str());
}

TEST(MembershipSim, GracefulLeaveIsSeenAsLeftEverywhere)
{
	for (unsigned seed = 1; seed <= Seeds(); seed++) {
		SimPtr s(Cfg(5, AMIL_MEMBERSHIP_LAN, seed, seed % 2 ? 0 : 100000));
		amil_cpsim_set_loss(s, 0);
		ASSERT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, 3 * kSec), UINT64_MAX);
		amil_cpsim_set_loss(s, seed % 2 ? 0 : 100000);
		uint32_t v = seed % 5;
		amil_cpsim_trace_clear(s);
		ASSERT_EQ(amil_cpsim_leave(s, v), 0);
		EXPECT_EQ(amil_cpsim_leave(s, v), -EALREADY);
		amil_cpsim_run_for(s, 1 * kSec);  // the 500 ms linger, then quiet
		EXPECT_TRUE(amil_membership_is_quiet(amil_cpsim_node(s, v)));
		amil_cpsim_crash(s, v);  // the process exits
		amil_cpsim_run_for(s, 5 * kSec);
		uint64_t others = All(5) & ~(1ull << v);
		EXPECT_TRUE(amil_cpsim_all_see(s, others, 1ull << v, AMIL_MEMBER_LEFT)) << "seed " << seed;
		EXPECT_TRUE(Events(s, AMIL_MEMBERSHIP_EV_NODEDOWN).empty()) << "seed " << seed;
		EXPECT_EQ(Events(s, AMIL_MEMBERSHIP_EV_LEFT, (int)v).size(), 4u) << "seed " << seed;
	}
}

TEST(MembershipSim, CrashThenRestartRejoinsWithHigherIncarnation)
{
	for (unsigned seed = 1; seed <= Seeds(); seed++) {
		SimPtr s(Cfg(5, AMIL_MEMBERSHIP_LAN, seed));
		ASSERT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, 3 * kSec), UINT64_MAX);
		uint32_t v = seed % 5;  // the seed node (0) included
		uint32_t inc = amil_membership_incarnation(amil_cpsim_node(s, v));
		amil_cpsim_crash(s, v);
		uint64_t others = All(5) & ~(1ull << v);
		uint64_t t = RunUntilAllSee(s, others, 1ull << v, AMIL_MEMBER_DEAD,
					    amil_cpsim_now(s) + 2 * kSec);
		ASSERT_NE(t, UINT64_MAX) << "seed " << seed;
		ASSERT_EQ(amil_cpsim_restart(s, v), 0);
		EXPECT_GT(amil_membership_incarnation(amil_cpsim_node(s, v)), inc);
		ASSERT_NE(RunUntilAllSee(s, All(5), All(5), AMIL_MEMBER_ALIVE, t + 5 * kSec), UINT64_MAX)
			<< "seed " << seed;
		auto ups = Events(s, AMIL_MEMBERSHIP_EV_NODEUP, (int)v);
		ASSERT_FALSE(ups.empty());
		EXPECT_GT(ups.back().incarnation, inc);
	}
}

// Piggybacked dissemination: in a 32-node cluster a leave reaches every
// member in O(log n) probe intervals (SWIM's epidemic bound), with the
// retransmit limit retransmit_mult * ceil(log10(n + 1)) = 8 sends.
TEST(MembershipSim, DisseminationReachesAllInLogRounds)
{
	const uint32_t n = 32;
	Dist rounds;
	for (unsigned seed = 1; seed <= Seeds(50); seed++) {
		amil_cpsim_config c = Cfg(n, AMIL_MEMBERSHIP_LAN, seed);
		c.n_seeds = 3;
		SimPtr s(c);
		ASSERT_NE(RunUntilAllSee(s, All(n), All(n), AMIL_MEMBER_ALIVE, 20 * kSec, 10 * kMs),
			  UINT64_MAX) << "seed " << seed;
		amil_cpsim_run_for(s, 5 * kSec);  // let join gossip die down
		amil_cpsim_trace_clear(s);
		uint64_t t0 = amil_cpsim_now(s);
		uint32_t v = seed % n;
		ASSERT_EQ(amil_cpsim_leave(s, v), 0);
		amil_cpsim_run_for(s, 3 * kSec);
		auto left = Events(s, AMIL_MEMBERSHIP_EV_LEFT, (int)v);
		ASSERT_EQ(left.size(), n - 1) << "seed " << seed;
		uint64_t last = 0;
		for (const auto &e : left)
			last = std::max(last, e.at_ns);
		double r = (double)(last - t0) / (100.0 * kMs);
		rounds.Add(r * 100);
		// log2(32) = 5; allow 2 x log2(n) intervals.
		EXPECT_LE(r, 10.0) << "seed " << seed;
	}
	printf("[ figures  ] LAN 32 nodes, leave reaches all: %s (interval 100 ms)\n",
	       rounds.Str().c_str());
}

}  // namespace
