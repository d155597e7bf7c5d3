// Unit and property tests for controlplane/caspaxos.c, the CP-mode
// registry (one CASPaxos register per name).
//
// A deterministic in-test network simulator drives 3 and 5 nodes: a
// message queue ordered by a delivery time drawn from a seeded PRNG
// (reordering), loss, duplication, partitions (groups that cannot talk),
// crashes (the instance is destroyed with whatever it had not flushed) and
// restarts from the log file.  libsodium's randombytes is replaced by a
// seeded generator, so the module's backoffs and anti-entropy targets are
// deterministic too and a failing seed replays exactly.
//
// The safety test records every observed (name, version) -> state (from
// done callbacks and from scanning the nodes' learned views) and checks
// that a version never has two different states, that two successful
// operations never produce the same version, and that ownership never
// passes from one owner to another without an absent state between them.
#include <gtest/gtest.h>

#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "caspaxos.h"

namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kMs = 1000000ull;

// ---- deterministic randombytes ------------------------------------------

uint64_t g_rng = 0x9e3779b97f4a7c15ull;

uint64_t
SplitMix()
{
	uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

const char *DetName() { return "amil-test-det"; }
uint32_t DetRandom() { return (uint32_t)SplitMix(); }
void
DetBuf(void *const b, const size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)b)[i] = (uint8_t)SplitMix();
}

randombytes_implementation g_det = { DetName, DetRandom, nullptr, nullptr, DetBuf, nullptr };
// Before any sodium_init (the module calls it in amil_cas_new).
const int g_installed = [] { return randombytes_set_implementation(&g_det); }();

// ---- a state as a value --------------------------------------------------

struct State {
	bool present = false;
	uint64_t owner = 0, version = 0;
	std::string value;
	bool operator==(const State &o) const
	{
		return present == o.present && owner == o.owner && version == o.version &&
		       value == o.value;
	}
	bool operator!=(const State &o) const { return !(*this == o); }
};

State
FromC(const amil_cas_state *s)
{
	State r;
	r.present = s->present;
	r.owner = s->owner;
	r.version = s->version;
	r.value.assign((const char *)s->value, s->value_len);
	return r;
}

std::string
Show(const State &s)
{
	char b[128];
	snprintf(b, sizeof(b), "{%s owner=%llu v=%llu len=%zu}", s.present ? "present" : "absent",
		 (unsigned long long)s.owner, (unsigned long long)s.version, s.value.size());
	return b;
}

// ---- hand-made wire messages ----------------------------------------------

// The version byte every message of @type carries (DIGEST is at 2).
uint8_t
Version(uint8_t type)
{
	return type == AMIL_CAS_MSG_DIGEST ? AMIL_CAS_DIGEST_VERSION : AMIL_CAS_WIRE_VERSION;
}

struct Enc {
	Bytes b;
	explicit Enc(uint8_t type) { b = { 'X', type, Version(type) }; }
	Enc(uint8_t type, uint8_t version) { b = { 'X', type, version }; }
	Enc &u8(uint8_t v) { b.push_back(v); return *this; }
	Enc &u16(uint16_t v) { u8(v >> 8); return u8(v & 0xff); }
	Enc &u32(uint32_t v) { u16(v >> 16); return u16(v & 0xffff); }
	Enc &u64(uint64_t v) { u32(v >> 32); return u32((uint32_t)v); }
	Enc &name(const std::string &n) { u8((uint8_t)n.size()); b.insert(b.end(), n.begin(), n.end()); return *this; }
	Enc &ballot(uint64_t r, uint64_t n) { return u64(r).u64(n); }
	Enc &state(bool present, uint64_t owner, uint64_t version, const std::string &v)
	{
		u8(present).u64(owner).u64(version).u16((uint16_t)v.size());
		b.insert(b.end(), v.begin(), v.end());
		return *this;
	}
};

uint64_t
Ld64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

// ---- the simulator ------------------------------------------------------------

struct OpInfo {
	uint64_t node;
	amil_cas_op kind;
	uint64_t owner;
	std::string name, value;
};

struct Done {
	uint64_t node, epoch, op_id;
	int rc;
	std::string name;
	State st;
	OpInfo info;
};

class Sim;

struct Node {
	Sim *sim;
	uint64_t id;
	amil_cas *c = nullptr;
	uint64_t epoch = 0;   // incarnation: op ids restart at each amil_cas_new
	int group = 0;
	std::string log;
};

struct Msg {
	uint64_t at, seq, from, to;
	Bytes b;
	bool operator>(const Msg &o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

class Sim {
public:
	Sim(size_t n, uint64_t seed, const std::string &dir = "", uint64_t op_timeout = 500 * kMs,
	    uint64_t ae = 100 * kMs)
	    : rng_(seed), dir_(dir), op_timeout_(op_timeout), ae_(ae)
	{
		g_rng = seed * 0x2545F4914F6CDD1Dull + 1;
		for (size_t i = 0; i < n; i++)
			ids_.push_back(100 + 7 * i);   // not 1..n: ids are opaque
		for (uint64_t id : ids_) {
			auto nd = std::make_unique<Node>();
			nd->sim = this;
			nd->id = id;
			if (!dir_.empty())
				nd->log = dir_ + "/node" + std::to_string(id) + ".log";
			nodes_.push_back(std::move(nd));
		}
		for (auto &nd : nodes_)
			Start(*nd);
	}
	~Sim()
	{
		for (auto &nd : nodes_)
			amil_cas_destroy(nd->c);
	}

	size_t Size() const { return nodes_.size(); }
	Node &N(size_t i) { return *nodes_[i]; }
	uint64_t Id(size_t i) const { return ids_[i]; }
	uint64_t Now() const { return now_; }
	std::mt19937_64 &Rng() { return rng_; }
	double U() { return std::uniform_real_distribution<double>(0, 1)(rng_); }

	double loss = 0, dup = 0, flush_p = 1.0;
	double crash_p = 0;      // per delivered message, before its flush
	size_t crashes = 0;
	uint64_t delay_min = 100000, delay_max = 3 * kMs;
	std::function<void()> every_ms;
	std::vector<Done> done;
	std::map<std::tuple<uint64_t, uint64_t, uint64_t>, OpInfo> inflight;  // node, epoch, op id

	void Start(Node &nd)
	{
		amil_cas_config cfg{};
		cfg.self = nd.id;
		cfg.members = ids_.data();
		cfg.n_members = ids_.size();
		cfg.log_path = nd.log.empty() ? nullptr : nd.log.c_str();
		cfg.op_timeout_ns = op_timeout_;
		cfg.ae_interval_ns = ae_;
		cfg.send = OnSend;
		cfg.alive = OnAlive;
		cfg.done = OnDone;
		cfg.ctx = &nd;
		nd.epoch++;
		nd.c = amil_cas_new(&cfg, now_);
		ASSERT_NE(nd.c, nullptr) << strerror(errno);
	}

	void Crash(Node &nd)
	{
		amil_cas_destroy(nd.c);
		nd.c = nullptr;
		for (auto it = inflight.begin(); it != inflight.end();)
			it = std::get<0>(it->first) == nd.id ? inflight.erase(it) : std::next(it);
	}

	void Partition(const std::vector<int> &groups)
	{
		for (size_t i = 0; i < nodes_.size(); i++)
			nodes_[i]->group = groups[i];
	}
	void Heal() { Partition(std::vector<int>(nodes_.size(), 0)); }

	int Op(size_t i, amil_cas_op kind, const std::string &name, uint64_t owner,
	       const std::string &value = "", uint64_t *id_out = nullptr)
	{
		Node &nd = *nodes_[i];
		uint64_t id = 0;
		int rc = amil_cas_start(nd.c, now_, kind, name.data(), name.size(), owner, value.data(),
					value.size(), &id);
		if (rc == 0) {
			inflight[{ nd.id, nd.epoch, id }] = OpInfo{ nd.id, kind, owner, name, value };
			amil_cas_flush(nd.c);
		}
		if (id_out)
			*id_out = id;
		return rc;
	}

	// Run until time @until: deliveries and 1 ms ticks, in time order.
	void RunUntil(uint64_t until)
	{
		for (;;) {
			if (!q_.empty() && q_.top().at <= next_tick_ && q_.top().at <= until) {
				Msg m = q_.top();
				q_.pop();
				now_ = m.at;
				Deliver(m);
				continue;
			}
			if (next_tick_ > until)
				break;
			now_ = next_tick_;
			next_tick_ += kMs;
			for (auto it = restart_at_.begin(); it != restart_at_.end();) {
				Node &nd = Find(it->first);
				if (it->second > now_ && !nd.c) {
					++it;
					continue;
				}
				if (!nd.c)
					Start(nd);
				it = restart_at_.erase(it);
			}
			for (auto &nd : nodes_) {
				if (!nd->c)
					continue;
				amil_cas_tick(nd->c, now_);
				EXPECT_EQ(amil_cas_flush(nd->c), 0);
			}
			if (every_ms)
				every_ms();
		}
		now_ = until;
	}
	void RunFor(uint64_t d) { RunUntil(now_ + d); }

	// The single Done for (node i, op id), running until it arrives.
	Done WaitDone(size_t i, uint64_t op_id, uint64_t max = 5000 * kMs)
	{
		uint64_t end = now_ + max;
		while (now_ < end) {
			for (const Done &d : done)
				if (d.node == ids_[i] && d.epoch == nodes_[i]->epoch && d.op_id == op_id)
					return d;
			RunFor(kMs);
		}
		ADD_FAILURE() << "no result for op " << op_id << " on node " << ids_[i];
		return Done{};
	}

	State Learned(size_t i, const std::string &name)
	{
		amil_cas_state s;
		amil_cas_lookup(nodes_[i]->c, name.data(), name.size(), &s);
		return FromC(&s);
	}

	bool CanTalk(uint64_t a, uint64_t b)
	{
		return Find(a).group == Find(b).group;
	}

	Node &Find(uint64_t id)
	{
		for (auto &nd : nodes_)
			if (nd->id == id)
				return *nd;
		abort();
	}

private:
	static void OnSend(void *ctx, uint64_t to, const uint8_t *b, size_t n)
	{
		Node *nd = (Node *)ctx;
		EXPECT_NE(to, nd->id) << "the module sends to self through the network";
		EXPECT_EQ(b[0], 'X');
		nd->sim->Enqueue(nd->id, to, b, n);
	}
	static bool OnAlive(void *ctx, uint64_t node)
	{
		Node *nd = (Node *)ctx;
		Node &o = nd->sim->Find(node);
		return o.c && o.group == nd->group;
	}
	static void OnDone(void *ctx, uint64_t op_id, int rc, const char *name, size_t len,
			   const amil_cas_state *st)
	{
		Node *nd = (Node *)ctx;
		Sim *s = nd->sim;
		Done d{ nd->id, nd->epoch, op_id, rc, std::string(name, len), FromC(st), {} };
		auto it = s->inflight.find({ nd->id, nd->epoch, op_id });
		EXPECT_TRUE(it != s->inflight.end()) << "done for an unknown op";
		if (it != s->inflight.end()) {
			d.info = it->second;
			EXPECT_EQ(d.name, d.info.name);
			s->inflight.erase(it);
		}
		s->done.push_back(d);
	}

	void Enqueue(uint64_t from, uint64_t to, const uint8_t *b, size_t n)
	{
		if (!CanTalk(from, to) || U() < loss)
			return;
		int copies = U() < dup ? 2 : 1;
		for (int k = 0; k < copies; k++) {
			uint64_t d = delay_min + rng_() % (delay_max - delay_min + 1);
			q_.push(Msg{ now_ + d, seq_++, from, to, Bytes(b, b + n) });
		}
	}

	void Deliver(const Msg &m)
	{
		Node &d = Find(m.to);
		if (!d.c || !CanTalk(m.from, m.to))
			return;
		EXPECT_EQ(amil_cas_receive(d.c, now_, m.from, m.b.data(), m.b.size()), 0);
		if (U() < crash_p) {
			// Between a receive and its flush: what was not synced is lost.
			Crash(d);
			crashes++;
			restart_at_[m.to] = now_ + rng_() % (4 * kMs);   // back quickly
			return;
		}
		if (U() < flush_p) {
			EXPECT_EQ(amil_cas_flush(d.c), 0);
		}
	}

	std::mt19937_64 rng_;
	std::string dir_;
	uint64_t op_timeout_, ae_;
	std::vector<uint64_t> ids_;
	std::vector<std::unique_ptr<Node>> nodes_;
	std::map<uint64_t, uint64_t> restart_at_;   // node -> time of its automatic restart
	std::priority_queue<Msg, std::vector<Msg>, std::greater<Msg>> q_;
	uint64_t now_ = 1000 * kMs, next_tick_ = 1001 * kMs, seq_ = 0;
};

// A temporary directory, removed (with its files) at the end.
struct TempDir {
	std::string path;
	explicit TempDir(const char *base = "/tmp")
	{
		std::string t = std::string(base) + "/amil-cas-XXXXXX";
		std::vector<char> b(t.begin(), t.end());
		b.push_back(0);
		EXPECT_NE(mkdtemp(b.data()), nullptr);
		path = b.data();
	}
	~TempDir()
	{
		std::string cmd = "rm -rf '" + path + "'";
		EXPECT_EQ(system(cmd.c_str()), 0);
	}
};

// Every node's learned state of every name in @names, identical?
void
ExpectConverged(Sim &s, const std::vector<std::string> &names)
{
	for (const auto &n : names) {
		State ref = s.Learned(0, n);
		for (size_t i = 1; i < s.Size(); i++)
			EXPECT_EQ(s.Learned(i, n), ref)
				<< n << ": node " << s.Id(i) << " " << Show(s.Learned(i, n))
				<< " vs node " << s.Id(0) << " " << Show(ref);
	}
	size_t c0 = amil_cas_count(s.N(0).c);
	for (size_t i = 1; i < s.Size(); i++)
		EXPECT_EQ(amil_cas_count(s.N(i).c), c0);
}

// ---- 1. healthy cluster ---------------------------------------------------

TEST(CasPaxos, RegisterRefuseUnregisterReregister)
{
	Sim s(3, 1);
	s.delay_max = 5 * kMs;   // reordering, no loss
	uint64_t id;

	ASSERT_EQ(s.Op(0, AMIL_CAS_REGISTER, "svc", s.Id(0), "v1", &id), 0);
	// One operation per name per node.
	EXPECT_EQ(s.Op(0, AMIL_CAS_REGISTER, "svc", s.Id(0), "v2"), -EBUSY);
	Done d = s.WaitDone(0, id);
	EXPECT_EQ(d.rc, 0);
	EXPECT_TRUE(d.st.present);
	EXPECT_EQ(d.st.owner, s.Id(0));
	EXPECT_EQ(d.st.version, 1u);
	EXPECT_EQ(d.st.value, "v1");
	// Read-your-writes on the proposer, then everywhere.
	EXPECT_EQ(s.Learned(0, "svc"), d.st);
	s.RunFor(50 * kMs);
	for (size_t i = 0; i < 3; i++) {
		EXPECT_EQ(s.Learned(i, "svc"), d.st) << "node " << i;
		EXPECT_EQ(amil_cas_count(s.N(i).c), 1u);
	}

	// Another node: refused, naming the first owner.
	ASSERT_EQ(s.Op(1, AMIL_CAS_REGISTER, "svc", s.Id(1), "mine", &id), 0);
	d = s.WaitDone(1, id);
	EXPECT_EQ(d.rc, -EEXIST);
	EXPECT_EQ(d.st.owner, s.Id(0));
	EXPECT_EQ(d.st.version, 1u);
	// Unregister by someone else: -EPERM.
	ASSERT_EQ(s.Op(2, AMIL_CAS_UNREGISTER, "svc", s.Id(2), "", &id), 0);
	EXPECT_EQ(s.WaitDone(2, id).rc, -EPERM);

	ASSERT_EQ(s.Op(0, AMIL_CAS_UNREGISTER, "svc", s.Id(0), "", &id), 0);
	d = s.WaitDone(0, id);
	EXPECT_EQ(d.rc, 0);
	EXPECT_FALSE(d.st.present);
	EXPECT_EQ(d.st.version, 2u);
	EXPECT_EQ(amil_cas_lookup(s.N(0).c, "svc", 3, nullptr), -ENOENT);

	ASSERT_EQ(s.Op(1, AMIL_CAS_REGISTER, "svc", s.Id(1), "mine", &id), 0);
	d = s.WaitDone(1, id);
	EXPECT_EQ(d.rc, 0);
	EXPECT_EQ(d.st.owner, s.Id(1));
	EXPECT_EQ(d.st.version, 3u);
	// Same owner again: value update, version + 1.
	ASSERT_EQ(s.Op(1, AMIL_CAS_REGISTER, "svc", s.Id(1), "mine2", &id), 0);
	d = s.WaitDone(1, id);
	EXPECT_EQ(d.rc, 0);
	EXPECT_EQ(d.st.version, 4u);
	EXPECT_EQ(d.st.value, "mine2");

	// Reap of a dead owner that is not the owner: -ENOENT; of the owner: gone.
	ASSERT_EQ(s.Op(2, AMIL_CAS_REAP, "svc", s.Id(0), "", &id), 0);
	EXPECT_EQ(s.WaitDone(2, id).rc, -ENOENT);
	ASSERT_EQ(s.Op(2, AMIL_CAS_REAP, "svc", s.Id(1), "", &id), 0);
	d = s.WaitDone(2, id);
	EXPECT_EQ(d.rc, 0);
	EXPECT_FALSE(d.st.present);
	EXPECT_EQ(d.st.version, 5u);
	ASSERT_EQ(s.Op(0, AMIL_CAS_UNREGISTER, "svc", s.Id(0), "", &id), 0);
	EXPECT_EQ(s.WaitDone(0, id).rc, -ENOENT);

	s.RunFor(300 * kMs);
	ExpectConverged(s, { "svc" });
	EXPECT_EQ(amil_cas_count(s.N(1).c), 0u);

	amil_cas_stats st;
	amil_cas_stats_get(s.N(0).c, &st);
	EXPECT_EQ(st.ops_started, 3u);   // the -EBUSY one did not start
	EXPECT_EQ(st.ops_ok, 2u);
	EXPECT_EQ(st.ops_refused, 1u);
	EXPECT_EQ(st.msgs_bad, 0u);
	EXPECT_GT(st.commits_tx, 0u);
}

TEST(CasPaxos, ArgumentsAndLimits)
{
	std::vector<uint64_t> m = { 5, 6, 7 };
	std::vector<Bytes> sent;
	amil_cas_config cfg{};
	cfg.self = 5;
	cfg.members = m.data();
	cfg.n_members = 3;
	cfg.max_ops = 2;
	cfg.send = [](void *ctx, uint64_t, const uint8_t *b, size_t n) {
		((std::vector<Bytes> *)ctx)->push_back(Bytes(b, b + n));
	};
	cfg.ctx = &sent;

	amil_cas_config bad = cfg;
	bad.self = 9;
	errno = 0;
	EXPECT_EQ(amil_cas_new(&bad, 0), nullptr);
	EXPECT_EQ(errno, EINVAL);
	std::vector<uint64_t> dupm = { 5, 5, 7 };
	bad = cfg;
	bad.members = dupm.data();
	EXPECT_EQ(amil_cas_new(&bad, 0), nullptr);
	bad = cfg;
	bad.send = nullptr;
	EXPECT_EQ(amil_cas_new(&bad, 0), nullptr);

	amil_cas *c = amil_cas_new(&cfg, 0);
	ASSERT_NE(c, nullptr);
	std::string big(AMIL_CAS_VALUE_MAX + 1, 'v'), ok(AMIL_CAS_VALUE_MAX, 'v');
	std::string longname(AMIL_CAS_NAME_MAX + 1, 'n');
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "a", 1, 5, big.data(), big.size(), nullptr), -EINVAL);
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "", 0, 5, "", 0, nullptr), -EINVAL);
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, longname.data(), longname.size(), 5, "", 0, nullptr), -EINVAL);
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "a\0b", 3, 5, "", 0, nullptr), -EINVAL);
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "a", 1, 0, "", 0, nullptr), -EINVAL);
	EXPECT_EQ(amil_cas_start(c, 0, (amil_cas_op)7, "a", 1, 5, "", 0, nullptr), -EINVAL);
	uint64_t id1 = 0, id2 = 0;
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "a", 1, 5, ok.data(), ok.size(), &id1), 0);
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, longname.data(), AMIL_CAS_NAME_MAX, 5, "", 0, &id2), 0);
	EXPECT_NE(id1, id2);
	EXPECT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "c", 1, 5, "", 0, nullptr), -EBUSY);  // max_ops
	// PREPAREs went to the two others (self is internal), none to self.
	EXPECT_EQ(sent.size(), 4u);
	EXPECT_EQ(amil_cas_lookup(c, "", 0, nullptr), -EINVAL);
	EXPECT_EQ(amil_cas_lookup(c, "zz", 2, nullptr), -ENOENT);
	amil_cas_destroy(c);
	amil_cas_destroy(nullptr);
}

// Many names on a one-node cluster (majority 1: every operation completes
// inside amil_cas_start): the table scales and lookups find them all.
TEST(CasPaxos, HundredThousandNames)
{
	uint64_t self = 1;
	int done = 0;
	amil_cas_config cfg{};
	cfg.self = 1;
	cfg.members = &self;
	cfg.n_members = 1;
	cfg.max_ops = 8;
	cfg.send = [](void *, uint64_t, const uint8_t *, size_t) { ADD_FAILURE(); };
	cfg.done = [](void *ctx, uint64_t, int rc, const char *, size_t, const amil_cas_state *st) {
		EXPECT_EQ(rc, 0);
		EXPECT_EQ(st->version, 1u);
		++*(int *)ctx;
	};
	cfg.ctx = &done;
	amil_cas *c = amil_cas_new(&cfg, 0);
	ASSERT_NE(c, nullptr);
	const int n = 100000;
	for (int i = 0; i < n; i++) {
		std::string name = "service-" + std::to_string(i);
		ASSERT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, name.data(), name.size(), 1, "x", 1, nullptr), 0);
	}
	EXPECT_EQ(done, n);
	EXPECT_EQ(amil_cas_count(c), (size_t)n);
	amil_cas_state st;
	for (int i = 0; i < n; i += 997) {
		std::string name = "service-" + std::to_string(i);
		ASSERT_EQ(amil_cas_lookup(c, name.data(), name.size(), &st), 0);
		EXPECT_EQ(st.owner, 1u);
	}
	int seen = 0;
	EXPECT_EQ(amil_cas_foreach(c, [](void *ctx, const char *, size_t, const amil_cas_state *) {
		++*(int *)ctx;
		return 0;
	}, &seen), 0);
	EXPECT_EQ(seen, n);
	amil_cas_destroy(c);
}

// ---- 2. partition 2|3 ---------------------------------------------------------

TEST(CasPaxos, MinorityTimesOutMajorityWinsHealConverges)
{
	Sim s(5, 2, "", 400 * kMs, 100 * kMs);
	s.Partition({ 0, 0, 1, 1, 1 });
	uint64_t a, b, c2;
	ASSERT_EQ(s.Op(0, AMIL_CAS_REGISTER, "x", s.Id(0), "minority", &a), 0);
	ASSERT_EQ(s.Op(1, AMIL_CAS_REGISTER, "y", s.Id(1), "minority", &c2), 0);
	ASSERT_EQ(s.Op(2, AMIL_CAS_REGISTER, "y", s.Id(2), "majority", &b), 0);
	Done db = s.WaitDone(2, b);
	EXPECT_EQ(db.rc, 0);
	EXPECT_EQ(db.st.owner, s.Id(2));
	Done da = s.WaitDone(0, a), dc = s.WaitDone(1, c2);
	EXPECT_EQ(da.rc, -ETIMEDOUT);
	EXPECT_EQ(dc.rc, -ETIMEDOUT);
	EXPECT_FALSE(da.st.present);
	EXPECT_GE(s.Now(), 1400 * kMs);   // it took the whole timeout
	amil_cas_stats st;
	amil_cas_stats_get(s.N(0).c, &st);
	EXPECT_EQ(st.ops_timeout, 1u);
	EXPECT_GT(st.retries, 0u);

	// The minority does not see the majority's registration yet.
	EXPECT_EQ(amil_cas_lookup(s.N(0).c, "y", 1, nullptr), -ENOENT);
	s.Heal();
	s.RunFor(2000 * kMs);
	ExpectConverged(s, { "x", "y" });
	for (size_t i = 0; i < 5; i++) {
		EXPECT_EQ(s.Learned(i, "y"), db.st) << i;
		EXPECT_EQ(amil_cas_lookup(s.N(i).c, "x", 1, nullptr), -ENOENT);
	}
	amil_cas_stats_get(s.N(0).c, &st);
	EXPECT_GT(st.syncs_rx, 0u);
	// And the minority's node now learns the owner by asking too.
	ASSERT_EQ(s.Op(1, AMIL_CAS_REGISTER, "y", s.Id(1), "again", &a), 0);
	Done d = s.WaitDone(1, a);
	EXPECT_EQ(d.rc, -EEXIST);
	EXPECT_EQ(d.st.owner, s.Id(2));
}

// Anti-entropy moves more than one SYNC message when the view is big.
TEST(CasPaxos, AntiEntropyManySyncMessages)
{
	Sim s(3, 3, "", 500 * kMs, 50 * kMs);
	s.Partition({ 0, 0, 1 });
	std::string v(1000, 'v');
	for (int i = 0; i < 600; i++) {
		uint64_t id;
		std::string n = "n" + std::to_string(i);
		ASSERT_EQ(s.Op(0, AMIL_CAS_REGISTER, n, s.Id(0), v, &id), 0);
		if (i % 8 == 7)
			s.RunFor(20 * kMs);
	}
	s.RunFor(500 * kMs);
	EXPECT_EQ(amil_cas_count(s.N(0).c), 600u);
	EXPECT_EQ(amil_cas_count(s.N(2).c), 0u);
	s.Heal();
	s.RunFor(1000 * kMs);
	EXPECT_EQ(amil_cas_count(s.N(2).c), 600u);
	amil_cas_stats st;
	amil_cas_stats_get(s.N(2).c, &st);
	EXPECT_GE(st.syncs_rx, 3u);   // 600 KB of entries: at least 3 messages
}

// Once converged, anti-entropy costs one DIGEST per round and nothing else.
TEST(CasPaxos, ConvergedAntiEntropySendsOnlyDigests)
{
	Sim s(3, 8, "", 500 * kMs, 20 * kMs);
	s.Partition({ 0, 0, 1 });
	for (int i = 0; i < 300; i++) {
		uint64_t id;
		ASSERT_EQ(s.Op(i % 2, AMIL_CAS_REGISTER, "c" + std::to_string(i), s.Id(i % 2), "v", &id), 0);
		if (i % 8 == 7)
			s.RunFor(20 * kMs);
	}
	s.RunFor(500 * kMs);
	s.Heal();
	s.RunFor(500 * kMs);
	ASSERT_EQ(amil_cas_count(s.N(2).c), 300u);
	amil_cas_stats before[3], after[3];
	for (size_t i = 0; i < 3; i++)
		amil_cas_stats_get(s.N(i).c, &before[i]);
	s.RunFor(1000 * kMs);   // about 50 rounds per node
	for (size_t i = 0; i < 3; i++) {
		amil_cas_stats_get(s.N(i).c, &after[i]);
		uint64_t bytes = after[i].ae_bytes_tx - before[i].ae_bytes_tx;
		EXPECT_EQ(after[i].syncs_tx, before[i].syncs_tx) << i;
		EXPECT_EQ(after[i].leaves_tx, before[i].leaves_tx) << i;
		EXPECT_EQ(after[i].wants_tx, before[i].wants_tx) << i;
		EXPECT_GT(bytes, 0u);
		EXPECT_EQ(bytes % AMIL_CAS_DIGEST_LEN, 0u) << "only digests: " << bytes;
	}
}

// ---- 2b. anti-entropy proportional to the difference ----------------------------

// Two members, driven by hand: views are loaded through SYNC messages (as
// if learned before a partition), then exactly one anti-entropy exchange
// runs (one DIGEST and everything it causes) and every message is counted.
class AePair {
public:
	static constexpr uint64_t kA = 100, kB = 107;

	AePair()
	{
		for (int i = 0; i < 2; i++) {
			ctx_[i] = { this, ids_[i] };
			amil_cas_config cfg{};
			cfg.self = ids_[i];
			cfg.members = ids_;
			cfg.n_members = 2;
			cfg.ae_interval_ns = 100 * kMs;
			cfg.send = OnSend;
			cfg.ctx = &ctx_[i];
			c[i] = amil_cas_new(&cfg, 0);
			EXPECT_NE(c[i], nullptr);
		}
	}
	~AePair()
	{
		amil_cas_destroy(c[0]);
		amil_cas_destroy(c[1]);
	}

	// One learned entry, as a SYNC entry.
	struct Entry {
		std::string name;
		uint64_t round, node;
		State st;
	};

	// Load @es into node @i in SYNC messages of <= 1000 entries.
	void Load(int i, const std::vector<Entry> &es)
	{
		for (size_t k = 0; k < es.size(); k += 1000) {
			size_t n = std::min<size_t>(1000, es.size() - k);
			Enc e(AMIL_CAS_MSG_SYNC);
			e.u32((uint32_t)n);
			for (size_t j = k; j < k + n; j++)
				e.name(es[j].name).ballot(es[j].round, es[j].node)
					.state(es[j].st.present, es[j].st.owner, es[j].st.version, es[j].st.value);
			ASSERT_EQ(amil_cas_receive(c[i], 0, ids_[1 - i], e.b.data(), e.b.size()), 0);
		}
	}

	// Node @asker's next anti-entropy round, then every message it causes.
	void Exchange(int asker)
	{
		now_ += 100 * kMs;
		amil_cas_tick(c[asker], now_);
		ASSERT_EQ(amil_cas_flush(c[asker]), 0);
		while (!q_.empty()) {
			Msg m = std::move(q_.front());
			q_.erase(q_.begin());
			int to = m.to == ids_[0] ? 0 : 1;
			ASSERT_EQ(amil_cas_receive(c[to], now_, m.from, m.b.data(), m.b.size()), 0);
			ASSERT_EQ(amil_cas_flush(c[to]), 0);
		}
	}

	// How many of @es node @i does not hold exactly (name -> state).
	size_t Mismatches(int i, const std::vector<Entry> &es)
	{
		size_t bad = 0;
		amil_cas_state st;
		for (const Entry &e : es) {
			amil_cas_lookup(c[i], e.name.data(), e.name.size(), &st);
			bad += FromC(&st) != e.st;
		}
		return bad;
	}

	amil_cas *c[2];
	std::map<uint8_t, uint64_t> bytes, msgs;   // per message type, both directions
	uint64_t entries = 0;                      // SYNC entries, both directions

private:
	struct Ctx {
		AePair *p;
		uint64_t self;
	};
	struct Msg {
		uint64_t from, to;
		Bytes b;
	};
	static void OnSend(void *ctx, uint64_t to, const uint8_t *b, size_t n)
	{
		Ctx *x = (Ctx *)ctx;
		EXPECT_GE(n, 3u);
		EXPECT_LE(n, (size_t)AMIL_CAS_SYNC_MAX);
		x->p->bytes[b[1]] += n;
		x->p->msgs[b[1]]++;
		if (b[1] == AMIL_CAS_MSG_SYNC && n >= 7)
			x->p->entries += Ld64(b + 3) >> 32;
		x->p->q_.push_back(Msg{ x->self, to, Bytes(b, b + n) });
	}

	uint64_t ids_[2] = { kA, kB };
	Ctx ctx_[2];
	std::vector<Msg> q_;
	uint64_t now_ = 0;
};

struct AeCase {
	const char *what;
	int asker;               // 0: A sends the digest, 1: B does
	size_t b_missing;        // names A has and B lacks
	size_t b_stale;          // names B has at an older ballot than A
	size_t a_missing;        // names B has and A lacks
};

// 100k common names; B missing 10 or 1000 of them (it was partitioned
// while they were registered), or a mix of differences both ways: after
// one exchange both views are identical, and what travelled is close to
// the difference, nowhere near the 100k-name view.
TEST(CasPaxos, AntiEntropyProportionalToDifference)
{
	const size_t n = 100000;
	const AeCase cases[] = {
		{ "B lacks 10, A asks", 0, 10, 0, 0 },
		{ "B lacks 10, B asks", 1, 10, 0, 0 },
		{ "B lacks 1000, A asks", 0, 1000, 0, 0 },
		{ "mixed 1000: B lacks 400 + 300 stale, A lacks 300", 1, 400, 300, 300 },
	};
	for (const AeCase &k : cases) {
		SCOPED_TRACE(k.what);
		AePair p;
		std::vector<AePair::Entry> a, b, all;   // A's, B's, the newest of each name
		size_t view_bytes = 0;
		for (size_t i = 0; i < n; i++) {
			char name[32], val[32];
			snprintf(name, sizeof(name), "svc-%06zu.cluster", i);
			snprintf(val, sizeof(val), "10.%zu.%zu.%zu:8080", i >> 16, (i >> 8) & 255, i & 255);
			uint64_t node = i % 2 ? AePair::kA : AePair::kB;
			AePair::Entry e{ name, 2 + i % 7, node, State{ true, node, 1 + i % 3, val } };
			AePair::Entry older = e;   // the same name one round earlier
			older.round--;
			older.st.value = "stale";
			// Which names differ: spread over the whole range by a
			// permutation of 0..n-1 (7919 is prime, n = 2^5 5^5).
			size_t idx = (i * 7919) % n;
			view_bytes += 1 + e.name.size() + 16 + 19 + e.st.value.size();
			all.push_back(e);
			if (idx < k.b_missing) {
				a.push_back(e);
			} else if (idx < k.b_missing + k.b_stale) {
				a.push_back(e);
				b.push_back(older);
			} else if (idx < k.b_missing + k.b_stale + k.a_missing) {
				b.push_back(e);
			} else {
				a.push_back(e);
				b.push_back(e);
			}
		}
		p.Load(0, a);
		p.Load(1, b);
		if (::testing::Test::HasFatalFailure())
			return;
		size_t diff = k.b_missing + k.b_stale + k.a_missing;
		EXPECT_EQ(p.Mismatches(0, all), k.a_missing);
		EXPECT_EQ(p.Mismatches(1, all), k.b_missing + k.b_stale);

		p.Exchange(k.asker);
		if (::testing::Test::HasFatalFailure())
			return;
		// Both hold every name at its newest state, and nothing else.
		EXPECT_EQ(p.Mismatches(0, all), 0u);
		EXPECT_EQ(p.Mismatches(1, all), 0u);
		EXPECT_EQ(amil_cas_count(p.c[0]), n);
		EXPECT_EQ(amil_cas_count(p.c[1]), n);

		uint64_t total = 0, n_msgs = 0;
		for (auto &[t, v] : p.bytes)
			total += v;
		for (auto &[t, v] : p.msgs)
			n_msgs += v;
		printf("[ ae ] %-50s diff %4zu: %" PRIu64 " msgs, %" PRIu64 " bytes (digest %" PRIu64
		       ", leaves %" PRIu64 " in %" PRIu64 ", want %" PRIu64 ", sync %" PRIu64 " in %" PRIu64
		       " with %" PRIu64 " entries); the whole view is %zu bytes\n",
		       k.what, diff, n_msgs, total, p.bytes[AMIL_CAS_MSG_DIGEST],
		       p.bytes[AMIL_CAS_MSG_LEAVES], p.msgs[AMIL_CAS_MSG_LEAVES], p.bytes[AMIL_CAS_MSG_WANT],
		       p.bytes[AMIL_CAS_MSG_SYNC], p.msgs[AMIL_CAS_MSG_SYNC], p.entries, view_bytes);
		// One digest; the entries of the differing leaves (~1.5 names per
		// leaf besides the different one) once or twice each.
		EXPECT_EQ(p.msgs[AMIL_CAS_MSG_DIGEST], 1u);
		EXPECT_GE(p.entries, diff);
		EXPECT_LE(p.entries, 6 * diff + 20);
		// 2 KiB of leaf hashes per differing bucket (at most 256) + entries.
		EXPECT_LE(total, AMIL_CAS_DIGEST_LEN + 256 * (2 + 8 * 256) + 3 * 5 + 16 + 2 * diff +
				 p.entries * (1 + 18 + 16 + 19 + 20) + 7 * p.msgs[AMIL_CAS_MSG_SYNC]);
		EXPECT_LT(total, view_bytes / 4);
		if (diff <= 10) {
			EXPECT_LE(p.msgs[AMIL_CAS_MSG_LEAVES], 1u);
			EXPECT_LT(total, 32u * 1024);
		}
		amil_cas_stats sa, sb;
		amil_cas_stats_get(p.c[0], &sa);
		amil_cas_stats_get(p.c[1], &sb);
		EXPECT_EQ(sa.sync_entries_tx + sb.sync_entries_tx, p.entries);
		EXPECT_EQ(sa.ae_bytes_tx + sb.ae_bytes_tx, total);
		EXPECT_EQ(sa.msgs_bad + sb.msgs_bad, 0u);

		// Converged: the next exchange, either way, is one digest.
		p.bytes.clear();
		p.msgs.clear();
		p.Exchange(0);
		p.Exchange(1);
		EXPECT_EQ(p.msgs.size(), 1u);
		EXPECT_EQ(p.msgs[AMIL_CAS_MSG_DIGEST], 2u);
	}
}

// ---- 3. safety over many seeds ------------------------------------------

struct Checker {
	// name -> version -> the state observed at that version.
	std::map<std::string, std::map<uint64_t, State>> obs;
	std::map<std::string, std::set<uint64_t>> ok_versions;
	uint64_t seed = 0;
	size_t pred_checked = 0;

	void Observe(const std::string &name, const State &s, const char *src)
	{
		if (s.version == 0) {
			EXPECT_FALSE(s.present) << "seed " << seed;
			return;
		}
		auto &m = obs[name];
		auto it = m.find(s.version);
		if (it == m.end())
			m[s.version] = s;
		else
			EXPECT_EQ(it->second, s) << "seed " << seed << " " << name << " v" << s.version
						 << " two states: " << Show(it->second) << " / " << Show(s)
						 << " (" << src << ")";
	}

	void OnDone(const Done &d)
	{
		const OpInfo &op = d.info;
		if (d.rc == -ETIMEDOUT)
			return;
		Observe(d.name, d.st, "done");
		switch (d.rc) {
		case 0:
			EXPECT_GE(d.st.version, 1u);
			EXPECT_TRUE(ok_versions[d.name].insert(d.st.version).second)
				<< "seed " << seed << ": two successful ops made " << d.name << " v"
				<< d.st.version;
			if (op.kind == AMIL_CAS_REGISTER) {
				EXPECT_TRUE(d.st.present && d.st.owner == op.owner && d.st.value == op.value);
			} else {
				EXPECT_FALSE(d.st.present);
			}
			break;
		case -EEXIST:
			EXPECT_EQ(op.kind, AMIL_CAS_REGISTER);
			EXPECT_TRUE(d.st.present && d.st.owner != op.owner) << "seed " << seed;
			break;
		case -EPERM:
			EXPECT_EQ(op.kind, AMIL_CAS_UNREGISTER);
			EXPECT_TRUE(d.st.present && d.st.owner != op.owner) << "seed " << seed;
			break;
		case -ENOENT:
			EXPECT_NE(op.kind, AMIL_CAS_REGISTER);
			EXPECT_TRUE(!d.st.present || (op.kind == AMIL_CAS_REAP && d.st.owner != op.owner))
				<< "seed " << seed;
			break;
		default:
			ADD_FAILURE() << "seed " << seed << " unexpected result " << d.rc;
		}
	}

	// After the run: every successful op's predecessor (when observed) is
	// one it may apply to, and consecutive versions never switch owners.
	void Final(const std::vector<Done> &all)
	{
		for (const Done &d : all) {
			if (d.rc != 0)
				continue;
			auto &m = obs[d.name];
			auto it = m.find(d.st.version - 1);
			if (it == m.end())
				continue;
			const State &p = it->second;
			pred_checked++;
			switch (d.info.kind) {
			case AMIL_CAS_REGISTER:
				EXPECT_TRUE(!p.present || p.owner == d.info.owner)
					<< "seed " << seed << ": REGISTER by " << d.info.owner << " of "
					<< d.name << " applied to " << Show(p);
				break;
			case AMIL_CAS_UNREGISTER:
			case AMIL_CAS_REAP:
				EXPECT_TRUE(p.present && p.owner == d.info.owner)
					<< "seed " << seed << ": removal of " << d.name << " applied to "
					<< Show(p);
				break;
			}
		}
		for (auto &[name, m] : obs) {
			for (auto it = m.begin(); it != m.end(); ++it) {
				auto nx = std::next(it);
				if (nx == m.end() || nx->first != it->first + 1)
					continue;
				if (it->second.present && nx->second.present) {
					EXPECT_EQ(it->second.owner, nx->second.owner)
						<< "seed " << seed << " " << name << ": owner changed from v"
						<< it->first << " to v" << nx->first << " without a removal";
				}
			}
		}
	}
};

struct SafetyTotals {
	size_t ok = 0, refused = 0, timeout = 0, pred = 0, crashes = 0;
};

void
RunSafetySeed(uint64_t seed, const std::string &dir, SafetyTotals &tot)
{
	size_t n = seed % 2 ? 5 : 3;
	Sim s(n, seed, dir, 300 * kMs, 100 * kMs);
	Checker chk;
	chk.seed = seed;
	s.loss = 0.1 + 0.2 * s.U();
	s.dup = 0.05;
	s.delay_min = 50000;
	s.delay_max = 8 * kMs;
	s.flush_p = 0.3;
	s.crash_p = 0.002;
	const std::vector<std::string> names = { "a", "b", "c" };
	size_t ticks = 0;
	bool chaos = true;
	// (node, name) -> (incarnation, learned version): per incarnation, since
	// a learned record lost in a crash may set a restarted node back.
	std::map<std::pair<size_t, size_t>, std::pair<uint64_t, uint64_t>> last_version;

	auto scan = [&] {
		for (size_t i = 0; i < n; i++) {
			if (!s.N(i).c)
				continue;
			for (size_t k = 0; k < names.size(); k++) {
				State st = s.Learned(i, names[k]);
				chk.Observe(names[k], st, "learned");
				// A learned view only moves forward (while the node is up).
				auto &lv = last_version[{ i, k }];
				if (lv.first == s.N(i).epoch) {
					EXPECT_GE(st.version, lv.second) << "seed " << seed;
				}
				lv = { s.N(i).epoch, st.version };
			}
		}
	};
	s.every_ms = [&] {
		ticks++;
		if (ticks % 10 == 0)
			scan();
		if (!chaos)
			return;
		std::mt19937_64 &r = s.Rng();
		if (s.U() < 0.06) {
			size_t i = r() % n;
			if (s.N(i).c) {
				amil_cas_op kind = (amil_cas_op)(r() % 3);
				uint64_t owner = kind == AMIL_CAS_REAP ? s.Id(r() % n) : s.Id(i);
				std::string v = "v" + std::to_string(r() % 1000);
				s.Op(i, kind, names[r() % names.size()], owner, v);
			}
		}
		if (s.U() < 0.003) {
			std::vector<int> g(n);
			bool split = s.U() < 0.6;
			for (auto &x : g)
				x = split ? (int)(r() % 2) : 0;
			s.Partition(g);
		}
		if (s.U() < 0.001) {
			size_t i = r() % n;
			if (s.N(i).c) {
				s.Crash(s.N(i));
				tot.crashes++;
			}
		}
		if (s.U() < 0.01) {
			size_t i = r() % n;
			if (!s.N(i).c)
				s.Start(s.N(i));
		}
	};
	s.RunFor(3000 * kMs);

	// Heal everything, let in-flight operations end.
	chaos = false;
	s.crash_p = 0;
	tot.crashes += s.crashes;
	s.Heal();
	s.loss = 0;
	s.dup = 0;
	for (size_t i = 0; i < n; i++)
		if (!s.N(i).c)
			s.Start(s.N(i));
	s.RunFor(600 * kMs);
	EXPECT_TRUE(s.inflight.empty()) << "seed " << seed;

	// Read-repair: a no-op REAP of an owner that never exists finalises and
	// commits whatever was chosen last, then anti-entropy spreads it.
	std::map<std::string, State> final_state;
	for (size_t k = 0; k < names.size(); k++) {
		uint64_t id;
		ASSERT_EQ(s.Op(k % n, AMIL_CAS_REAP, names[k], 0xdead, "", &id), 0);
		Done d = s.WaitDone(k % n, id);
		EXPECT_EQ(d.rc, -ENOENT) << "seed " << seed;
		final_state[names[k]] = d.st;
	}
	s.RunFor(1500 * kMs);
	scan();

	for (const Done &d : s.done) {
		chk.OnDone(d);
		tot.ok += d.rc == 0;
		tot.refused += d.rc != 0 && d.rc != -ETIMEDOUT;
		tot.timeout += d.rc == -ETIMEDOUT;
	}
	chk.Final(s.done);
	tot.pred += chk.pred_checked;
	for (const auto &nm : names) {
		const State &f = final_state[nm];
		auto &okv = chk.ok_versions[nm];
		if (!okv.empty()) {
			EXPECT_GE(f.version, *okv.rbegin()) << "seed " << seed << " " << nm;
		}
		for (size_t i = 0; i < n; i++)
			EXPECT_EQ(s.Learned(i, nm), f) << "seed " << seed << " node " << i << " " << nm;
	}
	ExpectConverged(s, names);
}

TEST(CasPaxos, SafetyManySeeds)
{
	// tmpfs when there is one: thousands of fdatasync() calls per seed.
	TempDir dir(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	SafetyTotals tot;
	const uint64_t seeds = 200;
	for (uint64_t seed = 1; seed <= seeds; seed++) {
		std::string d = dir.path + "/s" + std::to_string(seed);
		ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
		RunSafetySeed(seed, d, tot);
		if (HasFailure()) {
			ADD_FAILURE() << "first failing seed " << seed;
			break;
		}
	}
	// The run must have exercised what it claims to.
	printf("ok %zu refused %zu timeout %zu predecessor-checked %zu crashes %zu\n", tot.ok,
	       tot.refused, tot.timeout, tot.pred, tot.crashes);
	EXPECT_GT(tot.ok, seeds * 10);
	EXPECT_GT(tot.refused, seeds * 5);
	EXPECT_GT(tot.timeout, seeds);
	EXPECT_GT(tot.pred, tot.ok / 2);
	EXPECT_GT(tot.crashes, seeds / 2);
}

// ---- 4. durability --------------------------------------------------------------

struct Capture {
	std::vector<std::pair<uint64_t, Bytes>> sent;
	std::vector<std::pair<int, State>> done;
};

amil_cas *
NewDurable(const std::string &path, Capture *cap, uint64_t self = 3)
{
	static const uint64_t members[3] = { 1, 2, 3 };
	amil_cas_config cfg{};
	cfg.self = self;
	cfg.members = members;
	cfg.n_members = 3;
	cfg.log_path = path.c_str();
	cfg.send = [](void *ctx, uint64_t to, const uint8_t *b, size_t n) {
		((Capture *)ctx)->sent.push_back({ to, Bytes(b, b + n) });
	};
	cfg.done = [](void *ctx, uint64_t, int rc, const char *, size_t, const amil_cas_state *st) {
		((Capture *)ctx)->done.push_back({ rc, FromC(st) });
	};
	cfg.ctx = cap;
	return amil_cas_new(&cfg, 0);
}

// The last message's type and (for NACK) the promised ballot it reports.
struct Reply {
	uint8_t type = 0;
	uint64_t round = 0, node = 0;   // NACK: promised ballot
};

Reply
Last(const Capture &cap, size_t name_len)
{
	Reply r;
	if (cap.sent.empty())
		return r;
	const Bytes &b = cap.sent.back().second;
	r.type = b[1];
	if (r.type == AMIL_CAS_MSG_NACK && b.size() == 3 + 1 + name_len + 32) {
		r.round = Ld64(&b[4 + name_len + 16]);
		r.node = Ld64(&b[4 + name_len + 24]);
	}
	return r;
}

off_t
FileSize(const std::string &p)
{
	struct stat sb;
	return stat(p.c_str(), &sb) == 0 ? sb.st_size : -1;
}

TEST(CasPaxos, RestartKeepsPromisesAndAccepts)
{
	TempDir dir;
	std::string log = dir.path + "/cas.log";
	Capture cap;
	amil_cas *c = NewDurable(log, &cap);
	ASSERT_NE(c, nullptr);

	Bytes prep = Enc(AMIL_CAS_MSG_PREPARE).name("a").ballot(5, 1).b;
	ASSERT_EQ(amil_cas_receive(c, 0, 1, prep.data(), prep.size()), 0);
	EXPECT_TRUE(cap.sent.empty()) << "a PROMISE left before the log sync";
	ASSERT_EQ(amil_cas_flush(c), 0);
	ASSERT_EQ(cap.sent.size(), 1u);
	EXPECT_EQ(Last(cap, 1).type, AMIL_CAS_MSG_PROMISE);
	Bytes acc = Enc(AMIL_CAS_MSG_ACCEPT).name("b").ballot(9, 2).state(true, 2, 1, "val").b;
	ASSERT_EQ(amil_cas_receive(c, 0, 2, acc.data(), acc.size()), 0);
	ASSERT_EQ(amil_cas_flush(c), 0);
	EXPECT_EQ(Last(cap, 1).type, AMIL_CAS_MSG_ACCEPTED);
	amil_cas_stats st;
	amil_cas_stats_get(c, &st);
	EXPECT_EQ(st.log_syncs, 2u);
	EXPECT_EQ((off_t)st.log_bytes, FileSize(log));
	amil_cas_destroy(c);

	cap = Capture();
	c = NewDurable(log, &cap);
	ASSERT_NE(c, nullptr);
	// A lower (and an equal) ballot is refused by the restarted acceptor.
	Bytes low = Enc(AMIL_CAS_MSG_PREPARE).name("a").ballot(3, 2).b;
	ASSERT_EQ(amil_cas_receive(c, 0, 2, low.data(), low.size()), 0);
	Reply r = Last(cap, 1);
	EXPECT_EQ(r.type, AMIL_CAS_MSG_NACK);
	EXPECT_EQ(r.round, 5u);
	EXPECT_EQ(r.node, 1u);
	ASSERT_EQ(amil_cas_receive(c, 0, 1, prep.data(), prep.size()), 0);
	EXPECT_EQ(Last(cap, 1).type, AMIL_CAS_MSG_NACK);
	Bytes acc_low = Enc(AMIL_CAS_MSG_ACCEPT).name("a").ballot(4, 2).state(true, 2, 1, "x").b;
	ASSERT_EQ(amil_cas_receive(c, 0, 2, acc_low.data(), acc_low.size()), 0);
	EXPECT_EQ(Last(cap, 1).type, AMIL_CAS_MSG_NACK);
	// The accepted state of "b" survived: a higher PREPARE gets it back.
	Bytes prep_b = Enc(AMIL_CAS_MSG_PREPARE).name("b").ballot(10, 1).b;
	ASSERT_EQ(amil_cas_receive(c, 0, 1, prep_b.data(), prep_b.size()), 0);
	ASSERT_EQ(amil_cas_flush(c), 0);
	Bytes want = Enc(AMIL_CAS_MSG_PROMISE).name("b").ballot(10, 1).ballot(9, 2).state(true, 2, 1, "val").b;
	EXPECT_EQ(cap.sent.back().second, want);

	// Its own proposals use a round above everything it saw before.
	uint64_t id;
	ASSERT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "c", 1, 3, "", 0, &id), 0);
	size_t before = cap.sent.size();
	ASSERT_EQ(amil_cas_flush(c), 0);
	ASSERT_GT(cap.sent.size(), before);
	const Bytes &p = cap.sent.back().second;
	ASSERT_EQ(p[1], AMIL_CAS_MSG_PREPARE);
	uint64_t round = Ld64(&p[5]);
	EXPECT_GT(round, 10u);
	amil_cas_destroy(c);

	// ...and after another restart, above that one even though no other
	// acceptor ever saw it (the round was logged before the PREPARE left).
	cap = Capture();
	c = NewDurable(log, &cap);
	ASSERT_NE(c, nullptr);
	ASSERT_EQ(amil_cas_start(c, 0, AMIL_CAS_REGISTER, "d", 1, 3, "", 0, &id), 0);
	ASSERT_EQ(amil_cas_flush(c), 0);
	ASSERT_FALSE(cap.sent.empty());
	EXPECT_GT(Ld64(&cap.sent.back().second[5]), round);
	amil_cas_destroy(c);
}

// Write "a" promised (5,1), restart (compaction), then "b" promised (7,1)
// as the last record; @damage ruins that record; the restart must keep "a"
// and cut "b".
void
DamagedTail(const std::function<void(const std::string &, off_t before, off_t after)> &damage)
{
	TempDir dir;
	std::string log = dir.path + "/cas.log";
	Capture cap;
	amil_cas *c = NewDurable(log, &cap);
	ASSERT_NE(c, nullptr);
	Bytes pa = Enc(AMIL_CAS_MSG_PREPARE).name("a").ballot(5, 1).b;
	ASSERT_EQ(amil_cas_receive(c, 0, 1, pa.data(), pa.size()), 0);
	ASSERT_EQ(amil_cas_flush(c), 0);
	amil_cas_destroy(c);
	c = NewDurable(log, &cap);
	ASSERT_NE(c, nullptr);
	off_t before = FileSize(log);
	Bytes pb = Enc(AMIL_CAS_MSG_PREPARE).name("b").ballot(7, 1).b;
	ASSERT_EQ(amil_cas_receive(c, 0, 1, pb.data(), pb.size()), 0);
	ASSERT_EQ(amil_cas_flush(c), 0);
	off_t after = FileSize(log);
	ASSERT_GT(after, before);
	amil_cas_destroy(c);

	damage(log, before, after);

	cap = Capture();
	c = NewDurable(log, &cap);
	ASSERT_NE(c, nullptr) << strerror(errno);
	EXPECT_EQ(FileSize(log), before) << "the damaged tail was not cut";
	Bytes la = Enc(AMIL_CAS_MSG_PREPARE).name("a").ballot(4, 2).b;
	ASSERT_EQ(amil_cas_receive(c, 0, 2, la.data(), la.size()), 0);
	EXPECT_EQ(Last(cap, 1).type, AMIL_CAS_MSG_NACK);
	EXPECT_EQ(Last(cap, 1).round, 5u);
	Bytes lb = Enc(AMIL_CAS_MSG_PREPARE).name("b").ballot(6, 2).b;
	ASSERT_EQ(amil_cas_receive(c, 0, 2, lb.data(), lb.size()), 0);
	ASSERT_EQ(amil_cas_flush(c), 0);
	EXPECT_EQ(Last(cap, 1).type, AMIL_CAS_MSG_PROMISE);
	amil_cas_destroy(c);
}

TEST(CasPaxos, TornTailIsCut)
{
	DamagedTail([](const std::string &log, off_t, off_t after) {
		ASSERT_EQ(truncate(log.c_str(), after - 3), 0);
	});
	DamagedTail([](const std::string &log, off_t before, off_t) {
		ASSERT_EQ(truncate(log.c_str(), before + 2), 0);   // only half a length field
	});
}

TEST(CasPaxos, CorruptTailIsCut)
{
	DamagedTail([](const std::string &log, off_t before, off_t after) {
		int fd = open(log.c_str(), O_RDWR);
		ASSERT_GE(fd, 0);
		uint8_t x;
		off_t at = before + (after - before) / 2;
		ASSERT_EQ(pread(fd, &x, 1, at), 1);
		x ^= 0x40;
		ASSERT_EQ(pwrite(fd, &x, 1, at), 1);
		close(fd);
	});
	// Garbage appended after a good record.
	DamagedTail([](const std::string &log, off_t before, off_t after) {
		ASSERT_EQ(truncate(log.c_str(), before), 0);
		int fd = open(log.c_str(), O_WRONLY | O_APPEND);
		ASSERT_GE(fd, 0);
		const char junk[] = "\x00\x00\x00\x05junkjunk";
		ASSERT_EQ(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
		close(fd);
		(void)after;
	});
}

TEST(CasPaxos, NotALogFileIsLeftAlone)
{
	TempDir dir;
	std::string log = dir.path + "/cas.log";
	FILE *f = fopen(log.c_str(), "w");
	ASSERT_NE(f, nullptr);
	fputs("this is somebody's config file\n", f);
	fclose(f);
	off_t size = FileSize(log);
	Capture cap;
	errno = 0;
	EXPECT_EQ(NewDurable(log, &cap), nullptr);
	EXPECT_EQ(errno, EBADMSG);
	EXPECT_EQ(FileSize(log), size);
	// A missing directory: the open's errno.
	errno = 0;
	EXPECT_EQ(NewDurable(dir.path + "/no/such/dir/log", &cap), nullptr);
	EXPECT_EQ(errno, ENOENT);
}

// A durable cluster survives a full restart of every node with its registry.
TEST(CasPaxos, DurableClusterRestart)
{
	TempDir dir;
	Sim s(3, 4, dir.path);
	s.flush_p = 0.3;
	uint64_t id;
	ASSERT_EQ(s.Op(0, AMIL_CAS_REGISTER, "svc", s.Id(0), "v", &id), 0);
	Done d = s.WaitDone(0, id);
	ASSERT_EQ(d.rc, 0);
	s.RunFor(50 * kMs);
	for (size_t i = 0; i < 3; i++)
		s.Crash(s.N(i));
	for (size_t i = 0; i < 3; i++)
		s.Start(s.N(i));
	for (size_t i = 0; i < 3; i++)
		EXPECT_EQ(s.Learned(i, "svc"), d.st);
	ASSERT_EQ(s.Op(2, AMIL_CAS_REGISTER, "svc", s.Id(2), "w", &id), 0);
	d = s.WaitDone(2, id);
	EXPECT_EQ(d.rc, -EEXIST);
	EXPECT_EQ(d.st.owner, s.Id(0));
	amil_cas_stats st;
	amil_cas_stats_get(s.N(0).c, &st);
	EXPECT_GT(st.log_syncs, 0u);
}

// ---- 5. malformed and foreign input ---------------------------------------------

// One message of every type, taken from a real exchange.
std::map<uint8_t, Bytes>
SampleMessages()
{
	std::map<uint8_t, Bytes> out;
	Sim s(3, 5, "", 500 * kMs, 20 * kMs);
	s.Partition({ 0, 0, 1 });   // so that anti-entropy has something to sync later
	uint64_t id;
	EXPECT_EQ(s.Op(0, AMIL_CAS_REGISTER, "nm", s.Id(0), "value", &id), 0);
	s.WaitDone(0, id);
	s.Heal();
	s.RunFor(200 * kMs);
	EXPECT_EQ(s.Op(1, AMIL_CAS_REGISTER, "nm", s.Id(1), "other", &id), 0);
	s.WaitDone(1, id);
	// Fill in from hand-made ones for types an exchange may not show.
	out[AMIL_CAS_MSG_PREPARE] = Enc(AMIL_CAS_MSG_PREPARE).name("nm").ballot(3, 100).b;
	out[AMIL_CAS_MSG_PROMISE] = Enc(AMIL_CAS_MSG_PROMISE).name("nm").ballot(3, 100).ballot(2, 107).state(true, 107, 4, "val").b;
	out[AMIL_CAS_MSG_ACCEPT] = Enc(AMIL_CAS_MSG_ACCEPT).name("nm").ballot(3, 100).state(true, 100, 1, "v").b;
	out[AMIL_CAS_MSG_ACCEPTED] = Enc(AMIL_CAS_MSG_ACCEPTED).name("nm").ballot(3, 100).b;
	out[AMIL_CAS_MSG_NACK] = Enc(AMIL_CAS_MSG_NACK).name("nm").ballot(3, 100).ballot(4, 107).b;
	out[AMIL_CAS_MSG_COMMIT] = Enc(AMIL_CAS_MSG_COMMIT).name("nm").ballot(3, 100).state(false, 0, 2, "").b;
	out[AMIL_CAS_MSG_DIGEST] = Enc(AMIL_CAS_MSG_DIGEST).u64(1).b;
	out[AMIL_CAS_MSG_DIGEST].resize(AMIL_CAS_DIGEST_LEN, 0xab);
	out[AMIL_CAS_MSG_SYNC] = Enc(AMIL_CAS_MSG_SYNC).u32(2).name("nm").ballot(3, 100).state(true, 100, 1, "v")
				 .name("z").ballot(1, 107).state(false, 0, 3, "").b;
	// Bucket 3 empty, bucket 7 with 256 leaf hashes.
	Enc lv(AMIL_CAS_MSG_LEAVES);
	lv.u16(2).u8(3).u8(0).u8(7).u8(1);
	for (int l = 0; l < AMIL_CAS_LEAVES_PER_BUCKET; l++)
		lv.u64(l % 3 ? 0 : 0x1234567890abcdefull * (l + 1));
	out[AMIL_CAS_MSG_LEAVES] = lv.b;
	out[AMIL_CAS_MSG_WANT] = Enc(AMIL_CAS_MSG_WANT).u32(3).u16(5).u16(300).u16(65535).b;
	return out;
}

TEST(CasPaxos, MalformedAndForeignMessages)
{
	std::map<uint8_t, Bytes> msgs = SampleMessages();
	ASSERT_EQ(msgs.size(), 10u);
	std::vector<uint64_t> m = { 100, 107, 114 };
	amil_cas_config cfg{};
	cfg.self = 114;
	cfg.members = m.data();
	cfg.n_members = 3;
	cfg.send = [](void *, uint64_t, const uint8_t *, size_t) {};
	amil_cas *c = amil_cas_new(&cfg, 0);
	ASSERT_NE(c, nullptr);
	uint64_t bad = 0;

	for (auto &[type, b] : msgs) {
		// Every truncation and one trailing byte: -EBADMSG.
		for (size_t k = 0; k < b.size(); k++) {
			EXPECT_EQ(amil_cas_receive(c, 0, 100, b.data(), k), -EBADMSG) << int(type) << " len " << k;
			bad++;
		}
		Bytes longer = b;
		longer.push_back(0);
		EXPECT_EQ(amil_cas_receive(c, 0, 100, longer.data(), longer.size()), -EBADMSG) << int(type);
		bad++;
		// Wrong mark, wrong version.
		Bytes x = b;
		x[0] = 'Y';
		EXPECT_EQ(amil_cas_receive(c, 0, 100, x.data(), x.size()), -EBADMSG);
		x = b;
		x[2] = Version(type) + 1;
		EXPECT_EQ(amil_cas_receive(c, 0, 100, x.data(), x.size()), -EBADMSG);
		bad += 2;
		// From a stranger: -EPERM before anything is parsed.
		EXPECT_EQ(amil_cas_receive(c, 0, 999, b.data(), b.size()), -EPERM);
	}
	// Well-formed ones are taken (from the ballot's own node).
	EXPECT_EQ(amil_cas_receive(c, 0, 100, msgs[AMIL_CAS_MSG_PREPARE].data(), msgs[AMIL_CAS_MSG_PREPARE].size()), 0);
	EXPECT_EQ(amil_cas_receive(c, 0, 100, msgs[AMIL_CAS_MSG_SYNC].data(), msgs[AMIL_CAS_MSG_SYNC].size()), 0);
	for (uint8_t t : { AMIL_CAS_MSG_DIGEST, AMIL_CAS_MSG_LEAVES, AMIL_CAS_MSG_WANT })
		EXPECT_EQ(amil_cas_receive(c, 0, 100, msgs[t].data(), msgs[t].size()), 0) << int(t);
	amil_cas_state st;
	EXPECT_EQ(amil_cas_lookup(c, "nm", 2, &st), 0);
	EXPECT_EQ(st.owner, 100u);

	// Field-level checks.
	std::vector<Bytes> wrong = {
		Enc(AMIL_CAS_MSG_PREPARE).name("nm").ballot(3, 107).b,     // ballot of another node
		Enc(AMIL_CAS_MSG_PREPARE).name("nm").ballot(0, 100).b,     // round 0
		Enc(AMIL_CAS_MSG_PREPARE).name("nm").ballot(UINT64_MAX, 100).b,  // wild round
		Enc(AMIL_CAS_MSG_PREPARE).name(std::string("n\0m", 3)).ballot(3, 100).b,  // NUL
		Enc(AMIL_CAS_MSG_PREPARE).name("").ballot(3, 100).b,       // empty name
		Enc(AMIL_CAS_MSG_ACCEPT).name("nm").ballot(3, 100).u8(2).u64(100).u64(1).u16(0).b,  // present = 2
		Enc(AMIL_CAS_MSG_ACCEPT).name("nm").ballot(3, 100).state(false, 100, 1, "").b,  // absent with owner
		Enc(AMIL_CAS_MSG_ACCEPT).name("nm").ballot(3, 100).state(false, 0, 1, "v").b,   // absent with value
		Enc(AMIL_CAS_MSG_ACCEPT).name("nm").ballot(3, 100).state(true, 0, 1, "v").b,    // present, owner 0
		Enc(AMIL_CAS_MSG_COMMIT).name("nm").ballot(3, 999).state(true, 100, 1, "v").b,  // foreign ballot
		Enc(AMIL_CAS_MSG_PROMISE).name("nm").ballot(3, 100).ballot(0, 0).state(true, 1, 1, "").b,
		Enc(AMIL_CAS_MSG_SYNC).u32(3).name("nm").ballot(3, 100).state(true, 100, 1, "v").b,  // count
		Enc(AMIL_CAS_MSG_SYNC).u32(1).name("q").ballot(3, 999).state(true, 100, 1, "v").b,   // ballot
		// The version 1 digest (flags, count, one 32-byte hash): refused.
		Bytes([] { Bytes d = Enc(AMIL_CAS_MSG_DIGEST, 1).u8(0).u64(1).b; d.resize(44, 0xab); return d; }()),
		// The version 2 length under version 1.
		Bytes([] { Bytes d = Enc(AMIL_CAS_MSG_DIGEST, 1).u64(1).b; d.resize(AMIL_CAS_DIGEST_LEN); return d; }()),
		Enc(AMIL_CAS_MSG_LEAVES).u16(0).b,                                     // no bucket
		Enc(AMIL_CAS_MSG_LEAVES).u16(2).u8(3).u8(0).u8(3).u8(0).b,             // bucket twice
		Enc(AMIL_CAS_MSG_LEAVES).u16(2).u8(4).u8(0).u8(3).u8(0).b,             // descending
		Enc(AMIL_CAS_MSG_LEAVES).u16(1).u8(4).u8(2).b,                         // kind 2
		Enc(AMIL_CAS_MSG_LEAVES).u16(1).u8(4).u8(1).u64(1).b,                  // 1 leaf of 256
		Enc(AMIL_CAS_MSG_WANT).u32(0).b,                                       // none wanted
		Enc(AMIL_CAS_MSG_WANT).u32(2).u16(9).u16(9).b,                         // leaf twice
		Enc(AMIL_CAS_MSG_WANT).u32(2).u16(9).u16(8).b,                         // descending
		Enc(AMIL_CAS_MSG_WANT).u32(AMIL_CAS_LEAVES + 1).u16(1).b,              // n too big
		Enc(11).name("nm").b,                                                                  // type
		Enc(0).b,
	};
	Bytes hugev = Enc(AMIL_CAS_MSG_ACCEPT).name("nm").ballot(3, 100).u8(1).u64(100).u64(1).u16(1025).b;
	hugev.resize(hugev.size() + 1025, 'v');
	wrong.push_back(hugev);
	for (size_t i = 0; i < wrong.size(); i++) {
		EXPECT_EQ(amil_cas_receive(c, 0, 100, wrong[i].data(), wrong[i].size()), -EBADMSG) << i;
		bad++;
	}
	EXPECT_EQ(amil_cas_receive(c, 0, 100, nullptr, 0), -EBADMSG);
	bad++;
	// A rejected SYNC changed nothing ("q" is not there).
	EXPECT_EQ(amil_cas_lookup(c, "q", 1, nullptr), -ENOENT);

	// Random bytes behind a valid header: never a crash.
	std::mt19937_64 r(6);
	for (int i = 0; i < 20000; i++) {
		Bytes b(3 + r() % 80);
		for (auto &x : b)
			x = (uint8_t)r();
		b[0] = 'X';
		b[1] = 1 + r() % 10;
		b[2] = Version(b[1]);
		if (b[1] == AMIL_CAS_MSG_DIGEST && r() % 2)
			b.resize(AMIL_CAS_DIGEST_LEN);   // a random digest of the right length
		int rc = amil_cas_receive(c, 0, m[r() % 2], b.data(), b.size());
		EXPECT_TRUE(rc == 0 || rc == -EBADMSG) << rc;
		bad += rc == -EBADMSG;
		amil_cas_tick(c, (uint64_t)i * kMs);
		EXPECT_EQ(amil_cas_flush(c), 0);
	}
	amil_cas_stats st2;
	amil_cas_stats_get(c, &st2);
	EXPECT_EQ(st2.msgs_bad, bad);
	EXPECT_EQ(st2.msgs_foreign, msgs.size());
	amil_cas_destroy(c);
}

}  // namespace
