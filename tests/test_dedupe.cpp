// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Tests for dataplane/dedupe.h: the per-worker idempotency table.
// The table decides whether a donation is counted, so every answer is
// checked: NEW / DUPLICATE / CONFLICT / FULL, the original value handed back,
// the FIFO eviction rule, and a long randomized run against a reference
// model written from the header's contract alone.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dedupe.h"
#include "eal_env.h"

namespace {

using Key = amil_dedupe_key;
using Val = amil_dedupe_val;

Key key(uint32_t center, uint64_t donation)
{
	Key k;
	memset(&k, 0, sizeof(k));
	k.center_id = center;
	k.donation_id = donation;
	return k;
}

Val val(int64_t amount, uint64_t donor = 7, uint32_t campaign = 3, const char *cur = "USD",
	uint8_t exponent = 2, int64_t levy = -1)
{
	Val v;
	memset(&v, 0, sizeof(v));
	v.donor_id = donor;
	v.campaign_id = campaign;
	memcpy(v.currency, cur, 3);
	v.exponent = exponent;
	v.amount_minor = amount;
	v.levy_minor = levy >= 0 ? levy : amount / 40; // 2.5 %, any derived value
	return v;
}

bool val_eq(const Val &a, const Val &b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

std::string unique_name()
{
	static unsigned n;
	return "dd_t" + std::to_string(n++);
}

// One table per test, freed even when an assertion fails.
class Dedupe : public ::testing::Test {
protected:
	void make(uint32_t capacity, uint64_t retention_tsc)
	{
		amil_dedupe_free(d_);
		name_ = unique_name();
		amil_dedupe_params p = {name_.c_str(), capacity, retention_tsc, (int)rte_socket_id()};
		d_ = amil_dedupe_create(&p);
		ASSERT_NE(d_, nullptr) << "errno " << rte_errno;
	}
	void TearDown() override { amil_dedupe_free(d_); }

	// Record a burst; returns the results, fills orig_.
	std::vector<uint8_t> burst(const std::vector<Key> &k, const std::vector<Val> &v, uint64_t now,
				   unsigned *nb_new = nullptr)
	{
		std::vector<uint8_t> r(k.size(), 0xff);
		orig_.assign(k.size(), reinterpret_cast<const Val *>(this)); // poison
		unsigned got = amil_dedupe_record_burst(d_, k.data(), v.data(), (unsigned)k.size(), now,
							 r.data(), orig_.data());
		if (nb_new)
			*nb_new = got;
		return r;
	}
	uint8_t one(const Key &k, const Val &v, uint64_t now)
	{
		return burst({k}, {v}, now)[0];
	}

	amil_dedupe *d_ = nullptr;
	std::string name_;
	std::vector<const Val *> orig_;
};

} // namespace

TEST_F(Dedupe, NewThenDuplicateReturnsOriginal)
{
	make(64, 1000);
	Val first = val(10000, 7, 3, "USD", 2, 250);
	unsigned nb_new = 99;
	auto r = burst({key(1, 100)}, {first}, 10, &nb_new);
	EXPECT_EQ(r[0], AMIL_DEDUPE_NEW);
	EXPECT_EQ(nb_new, 1u);
	EXPECT_EQ(orig_[0], nullptr);
	EXPECT_EQ(amil_dedupe_count(d_), 1u);

	// Retransmit: same content; the levy the sender computes is ignored and
	// the original levy comes back.
	Val again = first;
	again.levy_minor = 999;
	r = burst({key(1, 100)}, {again}, 20, &nb_new);
	EXPECT_EQ(r[0], AMIL_DEDUPE_DUPLICATE);
	EXPECT_EQ(nb_new, 0u);
	ASSERT_NE(orig_[0], nullptr);
	EXPECT_EQ(orig_[0]->amount_minor, 10000);
	EXPECT_EQ(orig_[0]->levy_minor, 250);
	EXPECT_TRUE(val_eq(*orig_[0], first));
	EXPECT_EQ(amil_dedupe_count(d_), 1u);
	EXPECT_EQ(amil_dedupe_capacity(d_), 64u);
	EXPECT_EQ(amil_dedupe_evictions(d_), 0u);
}

TEST_F(Dedupe, SameKeyOtherContentIsConflict)
{
	make(64, 1000);
	const Val first = val(5000, 7, 3, "EUR", 2, 125);
	ASSERT_EQ(one(key(2, 9), first, 1), AMIL_DEDUPE_NEW);

	struct {
		const char *what;
		Val v;
	} const changed[] = {
		{"amount", val(5001, 7, 3, "EUR", 2, 125)},
		{"donor", val(5000, 8, 3, "EUR", 2, 125)},
		{"campaign", val(5000, 7, 4, "EUR", 2, 125)},
		{"currency", val(5000, 7, 3, "EUS", 2, 125)},
		{"exponent", val(5000, 7, 3, "EUR", 3, 125)},
		{"amount sign", val(-5000, 7, 3, "EUR", 2, 125)},
	};
	for (const auto &c : changed) {
		SCOPED_TRACE(c.what);
		unsigned nb_new = 99;
		auto r = burst({key(2, 9)}, {c.v}, 2, &nb_new);
		EXPECT_EQ(r[0], AMIL_DEDUPE_CONFLICT);
		EXPECT_EQ(nb_new, 0u);
		ASSERT_NE(orig_[0], nullptr);
		EXPECT_TRUE(val_eq(*orig_[0], first)) << "orig must be the stored value";
	}
	// The conflicts did not replace anything.
	EXPECT_EQ(amil_dedupe_count(d_), 1u);
	EXPECT_EQ(one(key(2, 9), first, 3), AMIL_DEDUPE_DUPLICATE);
	EXPECT_TRUE(val_eq(*orig_[0], first));
}

TEST_F(Dedupe, KeyIsCenterAndDonation)
{
	make(64, 1000);
	const Val a = val(100), b = val(200, 9);
	EXPECT_EQ(one(key(1, 42), a, 1), AMIL_DEDUPE_NEW);
	// Same donation id from another center: a different donation.
	EXPECT_EQ(one(key(2, 42), b, 1), AMIL_DEDUPE_NEW);
	EXPECT_EQ(one(key(1, 43), b, 1), AMIL_DEDUPE_NEW);
	EXPECT_EQ(amil_dedupe_count(d_), 3u);
	EXPECT_EQ(one(key(1, 42), a, 2), AMIL_DEDUPE_DUPLICATE);
	EXPECT_TRUE(val_eq(*orig_[0], a));
	EXPECT_EQ(one(key(2, 42), b, 2), AMIL_DEDUPE_DUPLICATE);
	EXPECT_TRUE(val_eq(*orig_[0], b));
	// Large ids and centers are keys like any other.
	EXPECT_EQ(one(key(UINT32_MAX, UINT64_MAX), a, 3), AMIL_DEDUPE_NEW);
	EXPECT_EQ(one(key(UINT32_MAX, UINT64_MAX), a, 3), AMIL_DEDUPE_DUPLICATE);
}

TEST_F(Dedupe, RepeatsInsideOneBurst)
{
	make(64, 1000);
	const Val a = val(100), a2 = val(101);
	unsigned nb_new = 0;
	auto r = burst({key(1, 1), key(1, 1), key(1, 2), key(1, 2), key(1, 1)},
		       {a, a, a, a2, a2}, 5, &nb_new);
	EXPECT_EQ(r[0], AMIL_DEDUPE_NEW);
	EXPECT_EQ(r[1], AMIL_DEDUPE_DUPLICATE);
	EXPECT_EQ(r[2], AMIL_DEDUPE_NEW);
	EXPECT_EQ(r[3], AMIL_DEDUPE_CONFLICT);
	EXPECT_EQ(r[4], AMIL_DEDUPE_CONFLICT);
	EXPECT_EQ(nb_new, 2u);
	EXPECT_EQ(orig_[0], nullptr);
	EXPECT_EQ(orig_[2], nullptr);
	for (int i : {1, 3, 4}) {
		ASSERT_NE(orig_[i], nullptr) << i;
		EXPECT_TRUE(val_eq(*orig_[i], a)) << i;
	}
	EXPECT_EQ(amil_dedupe_count(d_), 2u);
}

TEST_F(Dedupe, FullBurstOf64)
{
	make(1024, 1000);
	std::vector<Key> k;
	std::vector<Val> v;
	for (unsigned i = 0; i < AMIL_DEDUPE_BURST_MAX; i++) {
		k.push_back(key(3, 1000 + i));
		v.push_back(val(i + 1));
	}
	unsigned nb_new = 0;
	auto r = burst(k, v, 1, &nb_new);
	EXPECT_EQ(nb_new, 64u);
	for (unsigned i = 0; i < 64; i++)
		EXPECT_EQ(r[i], AMIL_DEDUPE_NEW) << i;
	r = burst(k, v, 2, &nb_new);
	EXPECT_EQ(nb_new, 0u);
	for (unsigned i = 0; i < 64; i++) {
		EXPECT_EQ(r[i], AMIL_DEDUPE_DUPLICATE) << i;
		EXPECT_EQ(orig_[i]->amount_minor, int64_t(i + 1)) << i;
	}
	// n = 0 is a no-op.
	EXPECT_EQ(amil_dedupe_record_burst(d_, k.data(), v.data(), 0, 3, nullptr, nullptr), 0u);
	EXPECT_EQ(amil_dedupe_count(d_), 64u);
}

TEST_F(Dedupe, FullWithinRetentionRefusesAndLosesNothing)
{
	const uint32_t cap = 16;
	make(cap, 1000);
	for (uint32_t i = 0; i < cap; i++)
		ASSERT_EQ(one(key(1, i), val(i + 1), i), AMIL_DEDUPE_NEW) << i;
	ASSERT_EQ(amil_dedupe_count(d_), cap);

	// Oldest is 999 - 0 < 1000 old: nothing may go.
	unsigned nb_new = 99;
	auto r = burst({key(1, 100), key(2, 0), key(1, 100)}, {val(5), val(6), val(5)}, 999, &nb_new);
	EXPECT_EQ(r[0], AMIL_DEDUPE_FULL);
	EXPECT_EQ(r[1], AMIL_DEDUPE_FULL);
	EXPECT_EQ(r[2], AMIL_DEDUPE_FULL); // refused, so still absent, not a duplicate
	EXPECT_EQ(nb_new, 0u);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(orig_[i], nullptr);
	EXPECT_EQ(amil_dedupe_count(d_), cap);
	EXPECT_EQ(amil_dedupe_evictions(d_), 0u);

	// A TSC that went backwards does not make anything old.
	EXPECT_EQ(one(key(1, 101), val(5), 0), AMIL_DEDUPE_FULL);

	// Every recorded donation is still known, with its content.
	for (uint32_t i = 0; i < cap; i++) {
		ASSERT_EQ(one(key(1, i), val(i + 1), 999), AMIL_DEDUPE_DUPLICATE) << i;
		EXPECT_EQ(orig_[0]->amount_minor, int64_t(i + 1));
	}
	EXPECT_EQ(amil_dedupe_count(d_), cap);
}

// Documented consequence: once evicted, a retransmit is NEW again.
TEST_F(Dedupe, EvictsOldestOnlyWhenOlderThanRetention)
{
	const uint32_t cap = 8;
	make(cap, 100);
	for (uint32_t i = 0; i < cap; i++) // key i recorded at tsc i
		ASSERT_EQ(one(key(1, i), val(i + 1), i), AMIL_DEDUPE_NEW);

	// At 100, key 0 is exactly 100 old: evicted to make room.
	EXPECT_EQ(one(key(1, 50), val(50), 100), AMIL_DEDUPE_NEW);
	EXPECT_EQ(amil_dedupe_evictions(d_), 1u);
	EXPECT_EQ(amil_dedupe_count(d_), cap);
	EXPECT_EQ(one(key(1, 1), val(2), 100), AMIL_DEDUPE_DUPLICATE) << "only the oldest goes";

	// Key 0 comes back at 100: key 1 (99 old) is now the oldest -> FULL.
	EXPECT_EQ(one(key(1, 0), val(1), 100), AMIL_DEDUPE_FULL);
	// At 101 key 1 may go, and key 0 is recorded as NEW again.
	EXPECT_EQ(one(key(1, 0), val(1), 101), AMIL_DEDUPE_NEW);
	EXPECT_EQ(amil_dedupe_evictions(d_), 2u);
	EXPECT_EQ(one(key(1, 1), val(2), 101), AMIL_DEDUPE_FULL) << "key 1 was evicted";
	EXPECT_EQ(one(key(1, 0), val(1), 101), AMIL_DEDUPE_DUPLICATE);
	EXPECT_EQ(amil_dedupe_count(d_), cap);
}

// Regression guard for the in-burst cases of eviction: an entry answered
// earlier in a burst may be evicted (and its slot reused) later in the same
// burst.  orig[] must still show the value answered, and a key evicted
// earlier in the burst must not be found through the stale lookup.
TEST_F(Dedupe, EvictionInsideABurst)
{
	const uint32_t cap = 8;
	make(cap, 10);
	for (uint32_t i = 0; i < cap; i++)
		ASSERT_EQ(one(key(1, i), val(i + 1), 0), AMIL_DEDUPE_NEW);

	// At 10 everything is evictable.  0 answered, then evicted by 100, then
	// 0 again (now absent: NEW, evicting 1), then 1 (absent: NEW).
	unsigned nb_new = 0;
	auto r = burst({key(1, 0), key(1, 100), key(1, 0), key(1, 1), key(1, 2)},
		       {val(1), val(100), val(1), val(2), val(3)}, 10, &nb_new);
	EXPECT_EQ(r[0], AMIL_DEDUPE_DUPLICATE);
	EXPECT_EQ(r[1], AMIL_DEDUPE_NEW);
	EXPECT_EQ(r[2], AMIL_DEDUPE_NEW);
	EXPECT_EQ(r[3], AMIL_DEDUPE_NEW);
	EXPECT_EQ(r[4], AMIL_DEDUPE_NEW);
	EXPECT_EQ(nb_new, 4u);
	ASSERT_NE(orig_[0], nullptr);
	EXPECT_EQ(orig_[0]->amount_minor, 1) << "orig[0] overwritten by a later eviction";
	EXPECT_EQ(amil_dedupe_evictions(d_), 4u);
	EXPECT_EQ(amil_dedupe_count(d_), cap);

	// Retention 0: every insert into the full table evicts the oldest, all
	// inside one burst, so slots answered earlier are reused later.
	make(cap, 0);
	const uint64_t seq[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 1, 3, 2, 3, 0, 4, 5};
	const uint8_t N = AMIL_DEDUPE_NEW, D = AMIL_DEDUPE_DUPLICATE;
	const uint8_t expect[] = {N, N, N, N, N, N, N, N, N, D, N, N, D, N, N, D, N, N};
	std::vector<Key> k;
	std::vector<Val> v;
	for (uint64_t id : seq) {
		k.push_back(key(4, id));
		v.push_back(val(int64_t(id) + 1));
	}
	r = burst(k, v, 0, &nb_new);
	for (size_t i = 0; i < k.size(); i++) {
		EXPECT_EQ(r[i], expect[i]) << i;
		if (expect[i] == D) {
			ASSERT_NE(orig_[i], nullptr) << i;
			EXPECT_EQ(orig_[i]->amount_minor, int64_t(seq[i]) + 1) << i;
		}
	}
	EXPECT_EQ(nb_new, 15u);
	EXPECT_EQ(amil_dedupe_evictions(d_), 7u);
	EXPECT_EQ(amil_dedupe_count(d_), cap);
}

TEST_F(Dedupe, MinimumCapacityWorks)
{
	make(8, 0);
	for (uint32_t i = 0; i < 100; i++)
		ASSERT_EQ(one(key(9, i), val(1), i), AMIL_DEDUPE_NEW) << i;
	EXPECT_EQ(amil_dedupe_count(d_), 8u);
	EXPECT_EQ(amil_dedupe_evictions(d_), 92u);
	for (uint32_t i = 92; i < 100; i++)
		EXPECT_EQ(one(key(9, i), val(1), 200), AMIL_DEDUPE_DUPLICATE) << i;
}

TEST(DedupeCreate, BadParams)
{
	const int s = (int)rte_socket_id();
	amil_dedupe_params p = {"dd_bad", 0, 100, s};

	errno = 0;
	EXPECT_EQ(amil_dedupe_create(nullptr), nullptr);
	EXPECT_EQ(errno, EINVAL);

	EXPECT_EQ(amil_dedupe_create(&p), nullptr) << "capacity 0";
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(rte_errno, EINVAL);
	p.capacity = 7;
	EXPECT_EQ(amil_dedupe_create(&p), nullptr) << "capacity below 8";
	EXPECT_EQ(errno, EINVAL);

	p.capacity = 64;
	p.name = nullptr;
	errno = 0;
	EXPECT_EQ(amil_dedupe_create(&p), nullptr) << "NULL name";
	EXPECT_EQ(errno, EINVAL);
	p.name = "";
	EXPECT_EQ(amil_dedupe_create(&p), nullptr) << "empty name";
	p.name = "dd_name_of_22_chars_xx";
	ASSERT_EQ(strlen(p.name), 22u);
	errno = 0;
	EXPECT_EQ(amil_dedupe_create(&p), nullptr) << "name too long for rte_hash's rings";
	EXPECT_EQ(errno, EINVAL);

	p.name = "dd_bad";
	p.socket_id = 1000;
	errno = 0;
	EXPECT_EQ(amil_dedupe_create(&p), nullptr) << "socket";
	EXPECT_EQ(errno, EINVAL);

	// The longest accepted name, to show the limit is where it claims.
	p.socket_id = s;
	p.name = "dd_name_of_21_chars_x";
	amil_dedupe *d = amil_dedupe_create(&p);
	EXPECT_NE(d, nullptr);
	amil_dedupe_free(d);

	amil_dedupe_free(nullptr); // no-op, must not crash
}

TEST(DedupeCreate, DuplicateName)
{
	amil_dedupe_params p = {"dd_dup", 64, 100, (int)rte_socket_id()};
	amil_dedupe *a = amil_dedupe_create(&p);
	ASSERT_NE(a, nullptr);
	errno = 0;
	EXPECT_EQ(amil_dedupe_create(&p), nullptr);
	EXPECT_EQ(errno, EEXIST);
	EXPECT_EQ(rte_errno, EEXIST);
	amil_dedupe_free(a);
	// The name is free again.
	amil_dedupe *b = amil_dedupe_create(&p);
	EXPECT_NE(b, nullptr);
	amil_dedupe_free(b);
}

// Measures the memory per entry quoted in dedupe.c's file comment, and
// checks that free gives all of it back.
TEST(DedupeCreate, MemoryPerEntry)
{
	const int s = (int)rte_socket_id();
	for (uint32_t cap : {4096u, 65536u, 1000000u, 1048576u}) {
		rte_malloc_socket_stats before, after, freed;
		ASSERT_EQ(rte_malloc_get_socket_stats(s, &before), 0);
		amil_dedupe_params p = {"dd_mem", cap, 100, s};
		amil_dedupe *d = amil_dedupe_create(&p);
		ASSERT_NE(d, nullptr) << cap;
		ASSERT_EQ(rte_malloc_get_socket_stats(s, &after), 0);
		amil_dedupe_free(d);
		ASSERT_EQ(rte_malloc_get_socket_stats(s, &freed), 0);

		double bytes = double(after.heap_allocsz_bytes - before.heap_allocsz_bytes);
		double per_entry = bytes / cap;
		std::cout << "[ memory   ] capacity " << cap << ": " << bytes / 1e6 << " MB, "
			  << per_entry << " B/entry (rte_hash included)\n";
		::testing::Test::RecordProperty("bytes_per_entry_" + std::to_string(cap),
						std::to_string(per_entry));
		// 64 B entry + at least 32 B key store; and the figure the comment
		// quotes (118-122.2 B) so that a layout change is noticed.
		EXPECT_GE(per_entry, 96.0) << cap;
		EXPECT_LE(per_entry, 124.0) << cap;
		EXPECT_EQ(freed.heap_allocsz_bytes, before.heap_allocsz_bytes) << "leak, cap " << cap;
	}
}

// ---------------------------------------------------------------------------
// Randomized comparison with a reference model built from the header only.

namespace {

struct KeyLess {
	bool operator()(const Key &a, const Key &b) const
	{
		return std::tie(a.center_id, a.zero, a.donation_id) <
		       std::tie(b.center_id, b.zero, b.donation_id);
	}
};

bool same_content(const Val &a, const Val &b)
{
	return a.donor_id == b.donor_id && a.campaign_id == b.campaign_id &&
	       memcmp(a.currency, b.currency, 3) == 0 && a.exponent == b.exponent &&
	       a.amount_minor == b.amount_minor;
}

class Model {
public:
	Model(uint32_t cap, uint64_t retention) : cap_(cap), retention_(retention) {}

	uint8_t record(const Key &k, const Val &v, uint64_t now, Val *orig)
	{
		auto it = map_.find(k);
		if (it != map_.end()) {
			*orig = it->second.v;
			return same_content(it->second.v, v) ? AMIL_DEDUPE_DUPLICATE
							    : AMIL_DEDUPE_CONFLICT;
		}
		if (map_.size() == cap_) {
			const Key &old = fifo_.front();
			uint64_t t = map_.at(old).tsc;
			if (now < t || now - t < retention_)
				return AMIL_DEDUPE_FULL;
			map_.erase(old);
			fifo_.pop_front();
			evictions_++;
		}
		map_[k] = {v, now};
		fifo_.push_back(k);
		return AMIL_DEDUPE_NEW;
	}
	size_t count() const { return map_.size(); }
	uint64_t evictions() const { return evictions_; }
	const std::deque<Key> &fifo() const { return fifo_; }
	const Val &at(const Key &k) const { return map_.at(k).v; }

private:
	struct Rec {
		Val v;
		uint64_t tsc;
	};
	uint32_t cap_;
	uint64_t retention_;
	std::map<Key, Rec, KeyLess> map_;
	std::deque<Key> fifo_;
	uint64_t evictions_ = 0;
};

// Content a center would send for a key (so that most repeats are true
// retransmits), optionally with one field changed.
Val content_for(const Key &k, std::mt19937_64 &rng, bool change)
{
	uint64_t h = k.donation_id * 0x9E3779B97F4A7C15ULL ^ k.center_id;
	Val v = val(int64_t(h % 100000) + 1, h >> 40, uint32_t(h >> 20) % 50,
		    (h & 1) ? "USD" : "EUR", 2, 0);
	v.levy_minor = int64_t(rng() % 1000); // never compared
	if (change) {
		switch (rng() % 5) {
		case 0: v.amount_minor += 1 + int64_t(rng() % 10); break;
		case 1: v.donor_id ^= 1 + rng() % 7; break;
		case 2: v.campaign_id += 1; break;
		case 3: v.currency[rng() % 3] ^= 0x20; break;
		case 4: v.exponent = uint8_t(v.exponent + 1); break;
		}
	}
	return v;
}

} // namespace

// Three shapes: a roomy table where FULL and ageing both happen; a tiny
// table with retention 0, where entries are inserted, evicted and re-sent
// inside one burst; and a tiny table where most bursts hit FULL.
TEST_F(Dedupe, RandomizedAgainstReferenceModel)
{
	struct Shape {
		uint32_t capacity;
		uint64_t retention_tsc;
		uint32_t centers, ids; // key space: centers x ids
		uint64_t ops;
		bool expect_full;      // FULL is impossible with retention 0
	} const shapes[] = {
		{4096, 5000, 4, 1500, 200000, true},
		{16, 0, 3, 12, 100000, false},
		{16, 30, 3, 12, 100000, true},
	};
	std::mt19937_64 rng(20240611);

	for (const Shape &sh : shapes) {
		SCOPED_TRACE(testing::Message() << "capacity " << sh.capacity << " retention "
						<< sh.retention_tsc);
		make(sh.capacity, sh.retention_tsc);
		Model model(sh.capacity, sh.retention_tsc);

		uint64_t now = 1, ops = 0, seen[4] = {0, 0, 0, 0};
		std::vector<Key> k;
		std::vector<Val> v;
		uint8_t res[AMIL_DEDUPE_BURST_MAX], want[AMIL_DEDUPE_BURST_MAX];
		const Val *orig[AMIL_DEDUPE_BURST_MAX];
		Val want_orig[AMIL_DEDUPE_BURST_MAX];

		while (ops < sh.ops) {
			unsigned n = 1 + unsigned(rng() % AMIL_DEDUPE_BURST_MAX);
			k.clear();
			v.clear();
			for (unsigned i = 0; i < n; i++) {
				Key kk;
				if (i > 0 && rng() % 8 == 0)
					kk = k[rng() % i]; // repeat inside the burst
				else
					kk = key(uint32_t(rng() % sh.centers), rng() % sh.ids);
				k.push_back(kk);
				v.push_back(content_for(kk, rng, rng() % 6 == 0));
			}
			// Time: mostly small steps, sometimes a long pause.
			now += rng() % 20;
			if (rng() % 200 == 0)
				now += sh.retention_tsc + rng() % (2 * sh.retention_tsc + 1);

			unsigned want_new = 0;
			for (unsigned i = 0; i < n; i++) {
				want[i] = model.record(k[i], v[i], now, &want_orig[i]);
				want_new += want[i] == AMIL_DEDUPE_NEW;
			}
			unsigned got_new = amil_dedupe_record_burst(d_, k.data(), v.data(), n, now,
								     res, orig);
			ASSERT_EQ(got_new, want_new) << "op " << ops;
			// orig[] is checked after the whole burst: valid until the next call.
			for (unsigned i = 0; i < n; i++) {
				ASSERT_EQ(res[i], want[i]) << "op " << ops + i << " (burst elem " << i << ")";
				seen[res[i]]++;
				if (want[i] == AMIL_DEDUPE_DUPLICATE || want[i] == AMIL_DEDUPE_CONFLICT) {
					ASSERT_NE(orig[i], nullptr) << "op " << ops + i;
					ASSERT_TRUE(val_eq(*orig[i], want_orig[i])) << "op " << ops + i;
				} else {
					ASSERT_EQ(orig[i], nullptr) << "op " << ops + i;
				}
			}
			ASSERT_EQ(amil_dedupe_count(d_), model.count()) << "op " << ops;
			ASSERT_EQ(amil_dedupe_evictions(d_), model.evictions()) << "op " << ops;
			ops += n;
		}

		std::cout << "[ random   ] capacity " << sh.capacity << " retention " << sh.retention_tsc
			  << ", " << ops << " ops: NEW " << seen[0] << ", DUPLICATE " << seen[1]
			  << ", CONFLICT " << seen[2] << ", FULL " << seen[3] << ", evictions "
			  << model.evictions() << "\n";
		// The run must have exercised every path, or it proves little.
		const uint64_t enough = ops / 100;
		for (int r = 0; r < 4; r++) {
			if (r == AMIL_DEDUPE_FULL && !sh.expect_full)
				continue;
			EXPECT_GT(seen[r], enough) << "result " << r << " too rare";
		}
		EXPECT_GT(model.evictions(), enough);

		// Finally everything the model holds is in the table, with its value.
		std::vector<Key> all(model.fifo().begin(), model.fifo().end());
		for (size_t off = 0; off < all.size(); off += AMIL_DEDUPE_BURST_MAX) {
			unsigned n = unsigned(std::min<size_t>(AMIL_DEDUPE_BURST_MAX, all.size() - off));
			v.assign(n, Val());
			for (unsigned i = 0; i < n; i++)
				v[i] = model.at(all[off + i]);
			ASSERT_EQ(amil_dedupe_record_burst(d_, &all[off], v.data(), n, now, res, orig),
				  0u);
			for (unsigned i = 0; i < n; i++) {
				ASSERT_EQ(res[i], AMIL_DEDUPE_DUPLICATE);
				ASSERT_TRUE(val_eq(*orig[i], v[i]));
			}
		}
	}
}

AMIL_TEST_MAIN_WITH_EAL("dedupe")

namespace {
int forget(amil_dedupe *d, Key k)
{
	return amil_dedupe_forget(d, &k);
}

int restore(amil_dedupe *d, Key k, Val v, uint64_t tsc)
{
	return amil_dedupe_restore(d, &k, &v, tsc);
}
} // namespace

// A NEW donation whose ledger record the disk refused is forgotten: the
// retransmit is NEW again; the forgotten slot leaves the FIFO at the head
// without an age check and without touching a live key.
TEST_F(Dedupe, ForgetMakesTheRetransmitNewAndFreesItsSlot)
{
	make(8, 1000);
	for (uint32_t i = 0; i < 8; i++)
		ASSERT_EQ(one(key(1, i), val(i + 1), 10), AMIL_DEDUPE_NEW);
	EXPECT_EQ(forget(d_, key(1, 0) /* oldest */), 0);
	EXPECT_EQ(forget(d_, key(1, 0)), -ENOENT);
	EXPECT_EQ(forget(d_, key(9, 9)), -ENOENT);
	// Full and nothing is old enough, but the head is forgotten: taken.
	EXPECT_EQ(one(key(2, 1), val(50), 11), AMIL_DEDUPE_NEW);
	EXPECT_EQ(amil_dedupe_evictions(d_), 0u);
	// The table is full again with live entries: FULL, not an eviction.
	EXPECT_EQ(one(key(1, 0), val(1), 12), AMIL_DEDUPE_FULL);
	for (uint32_t i = 1; i < 8; i++)
		EXPECT_EQ(one(key(1, i), val(i + 1), 12), AMIL_DEDUPE_DUPLICATE) << i;
	EXPECT_EQ(one(key(2, 1), val(50), 12), AMIL_DEDUPE_DUPLICATE);

	// A forgotten key in the middle: its retransmit is NEW once there is room.
	EXPECT_EQ(forget(d_, key(1, 4)), 0);
	EXPECT_EQ(one(key(1, 4), val(5), 2000), AMIL_DEDUPE_NEW);  // evicts the aged head
	EXPECT_EQ(one(key(1, 4), val(5), 2000), AMIL_DEDUPE_DUPLICATE);
}

// Start-up recovery: records come back in ledger order with their age;
// a later record of a key replaces an earlier one; a full table gives up
// its oldest entries whatever their age; time never runs backwards.
TEST_F(Dedupe, RestoreRebuildsInLedgerOrder)
{
	make(8, 1000);
	EXPECT_EQ(restore(d_, key(1, 1), val(100, 7, 3, "USD", 2, 3), 500), 0);
	EXPECT_EQ(restore(d_, key(1, 2), val(200), 400), 0);  // clock stepped back
	EXPECT_EQ(restore(d_, key(1, 1), val(101, 7, 3, "USD", 2, 9), 600), 0);
	for (uint64_t id = 3; id <= 7; id++)
		EXPECT_EQ(restore(d_, key(1, id), val((int64_t)id * 100), 700), 0) << id;
	// Eight slots used, the first one forgotten (replaced): the next
	// restore drops that slot, the one after evicts key 1/2 (the oldest
	// live entry) although it is young.
	EXPECT_EQ(restore(d_, key(1, 8), val(800), 900), 0);
	EXPECT_EQ(restore(d_, key(1, 9), val(900), 900), 1);
	Key bad = key(1, 10);
	bad.zero = 1;
	EXPECT_EQ(restore(d_, bad, val(1), 900), -EINVAL);

	EXPECT_EQ(one(key(1, 1), val(101), 950), AMIL_DEDUPE_DUPLICATE);
	EXPECT_EQ(orig_[0]->levy_minor, 9) << "the later record's levy";
	EXPECT_EQ(one(key(1, 2), val(200), 950), AMIL_DEDUPE_FULL) << "evicted, and no room";
	for (uint64_t id = 3; id <= 9; id++)
		EXPECT_EQ(one(key(1, id), val((int64_t)id * 100), 950), AMIL_DEDUPE_DUPLICATE) << id;
}
