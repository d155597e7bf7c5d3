/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Per-worker idempotency table (contract in dedupe.h).
 *
 * Design
 * ------
 * Two structures, both allocated once at creation on the worker's socket:
 *
 *  - an rte_hash (cuckoo, 16-byte key, rte_hash_crc, EXT_TABLE) that maps a
 *    key to a pointer to its entry.  Single writer: no MULTI_WRITER or
 *    RW_CONCURRENCY flag, so rte_hash takes no lock and keeps no per-lcore
 *    slot caches.  With EXT_TABLE a cuckoo path that fails spills into a
 *    linked extension bucket, so an add can only fail when @capacity keys
 *    are already present -- which this module never lets happen;
 *
 *  - an array of @capacity 64-byte entries (key, value, insert TSC) used as
 *    a circular FIFO: the live entries are the @count slots starting at
 *    @head, in insertion order, so the oldest is entries[head] -- O(1).
 *    Nothing is ever removed except the oldest (eviction), so the FIFO has
 *    no holes.  A new entry goes to slot (head + count) % capacity; when the
 *    table is full that is the slot just vacated by the eviction.
 *
 * The hash stores a pointer to the entry (rte_hash_add_key_data) rather than
 * the table using rte_hash's key position as an index: positions are
 * recycled by rte_hash_del_key in an order this module does not control,
 * while the FIFO order is ours.  The entry also keeps its key, which is
 * what rte_hash_del_key needs when the entry is evicted, and what lets the
 * burst code tell a live entry from a slot that was recycled earlier in the
 * same burst (below).
 *
 * Burst algorithm (amil_dedupe_record_burst)
 * ------------------------------------------
 * One rte_hash_lookup_bulk_data() for the whole burst, then the elements are
 * applied strictly in order, so the result is what n single calls would
 * give.  The bulk lookup is a snapshot taken before any insert or eviction
 * of this burst, so for element i:
 *
 *  - a hit whose entry still holds keys[i] is live: every slot that gets
 *    recycled is overwritten by its new key in the same step as the
 *    eviction, and a key is present at most once;
 *  - otherwise (a miss, or a hit whose slot was recycled by an eviction
 *    earlier in this burst) the key is present only if an earlier element
 *    of this burst inserted it: the NEW elements so far are scanned
 *    backwards for the same key (n <= 64, 16-byte compares), and the entry
 *    found is again checked to still hold the key.
 *
 * DUPLICATE/CONFLICT answers copy the stored value into a per-table scratch
 * array and point orig[i] there: an entry referenced by element i may be
 * evicted and overwritten by element j > i of the same burst, and the
 * header promises orig[i] stays valid until the next call.  The copy is 32
 * bytes; the alternative (scanning orig[] on every eviction) costs more once
 * the table is full, which is its steady state.
 *
 * Eviction happens only on insert into a full table, one entry per insert,
 * and only if now_tsc - insert_tsc >= retention_tsc; otherwise FULL.  A TSC
 * that went backwards (now < insert_tsc) counts as age 0: refuse rather than
 * forget a key early.
 *
 * Memory per entry (measured by tests/test_dedupe.cpp, MemoryPerEntry:
 * rte_malloc_get_socket_stats heap_allocsz_bytes before and after create,
 * so malloc element headers included; DPDK 22.11):
 *     64 B   entry (one cache line: key 16 + value 32 + tsc 8 + pad 8)
 *   + 32 B   rte_hash key store (8 B data pointer + 16 B key, 16-aligned)
 *   +  8 B   cuckoo buckets (64 B per 8 entries, 2^k of them)
 *   +  8 B   extension buckets (as many as the main buckets)
 *   +  4-8 B free-slot ring (4 B per slot, capacity + 1 rounded up to a
 *            power of two: 8 B when capacity is itself a power of two)
 *   +  0.5 B extension-bucket ring, plus fixed costs (~4 KB scratch etc.)
 * Measured: 118.0 B/entry at capacity 1000000 (118.0 MB in all, the
 * configured default of 1048576 = 2^20 gives 121.0 B/entry, 126.9 MB);
 * 121.1 B at 65536 (7.9 MB); 122.2 B at 4096 (0.5 MB).
 * A capacity just below a power of two is cheapest (cuckoo buckets and
 * the free-slot ring are both rounded up to powers of two).
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_prefetch.h>
#include <rte_ring.h>          /* RTE_RING_NAMESIZE */

#include "dedupe.h"

/*
 * rte_hash_create names its extension-bucket ring "HT_EXT_<name>" and
 * silently truncates it to RTE_RING_NAMESIZE - 1 characters, so two long
 * names with a common prefix would collide (EEXIST) for no visible reason.
 * Refuse such names up front instead.
 */
#define NAME_MAX_LEN (RTE_RING_NAMESIZE - 1 - (sizeof("HT_EXT_") - 1))

/* dedupe.h's minimum; also rte_hash's (one bucket of 8 entries). */
#define CAPACITY_MIN 8

/* key.zero of a forgotten entry (amil_dedupe_forget): real keys have 0
 * there, so a tombstone never compares equal to one. */
#define TOMBSTONE 1u

/* One cache line: everything an answer or an eviction needs. */
struct entry {
	struct amil_dedupe_key key;    /* for rte_hash_del_key on eviction */
	struct amil_dedupe_val val;    /* what was recorded (levy included) */
	uint64_t insert_tsc;           /* now_tsc of the NEW record */
} __rte_cache_aligned;
_Static_assert(sizeof(struct entry) == RTE_CACHE_LINE_SIZE, "entry is one cache line");

struct amil_dedupe {
	struct rte_hash *hash;         /* key -> struct entry * */
	struct entry *entries;         /* [capacity], circular FIFO */
	uint32_t capacity;             /* entries, 8 .. RTE_HASH_ENTRIES_MAX */
	uint32_t head;                 /* slot of the oldest live entry */
	uint32_t count;                /* live entries; written by the owner only */
	uint64_t retention_tsc;        /* min age before eviction, TSC cycles */
	uint64_t evictions;            /* written by the owner only */
	/* orig[] targets of the last burst, see the file comment. */
	struct amil_dedupe_val orig_buf[AMIL_DEDUPE_BURST_MAX] __rte_cache_aligned;
};

static inline bool
key_eq(const struct amil_dedupe_key *a, const struct amil_dedupe_key *b)
{
	return ((a->center_id ^ b->center_id) | (a->zero ^ b->zero) |
		(a->donation_id ^ b->donation_id)) == 0;
}

/* "Same donation": everything but the levy, which is derived. */
static inline bool
same_content(const struct amil_dedupe_val *a, const struct amil_dedupe_val *b)
{
	return a->donor_id == b->donor_id && a->campaign_id == b->campaign_id &&
	       memcmp(a->currency, b->currency, sizeof(a->currency)) == 0 &&
	       a->exponent == b->exponent && a->amount_minor == b->amount_minor;
}

struct amil_dedupe *
amil_dedupe_create(const struct amil_dedupe_params *p)
{
	struct rte_hash_parameters hp;
	struct amil_dedupe *d;
	int err;

	if (p == NULL || p->name == NULL || p->name[0] == '\0' ||
	    strnlen(p->name, NAME_MAX_LEN + 1) > NAME_MAX_LEN ||
	    p->capacity < CAPACITY_MIN || p->capacity > RTE_HASH_ENTRIES_MAX ||
	    (p->socket_id != SOCKET_ID_ANY &&
	     (p->socket_id < 0 || p->socket_id >= RTE_MAX_NUMA_NODES))) {
		err = EINVAL;
		goto fail;
	}
	/* rte_hash_create would also fail, but only after logging a ring error. */
	if (rte_hash_find_existing(p->name) != NULL) {
		err = EEXIST;
		goto fail;
	}

	d = rte_zmalloc_socket("amil_dedupe", sizeof(*d), RTE_CACHE_LINE_SIZE, p->socket_id);
	if (d == NULL) {
		err = ENOMEM;
		goto fail;
	}
	d->capacity = p->capacity;
	d->retention_tsc = p->retention_tsc;

	d->entries = rte_zmalloc_socket("amil_dedupe_entries",
					(size_t)p->capacity * sizeof(struct entry),
					RTE_CACHE_LINE_SIZE, p->socket_id);
	if (d->entries == NULL) {
		err = ENOMEM;
		goto fail_entries;
	}

	hp = (struct rte_hash_parameters){
		.name = p->name,
		.entries = p->capacity,
		.key_len = sizeof(struct amil_dedupe_key),
		.hash_func = rte_hash_crc,
		.hash_func_init_val = 0,
		.socket_id = p->socket_id,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	d->hash = rte_hash_create(&hp);
	if (d->hash == NULL) {
		err = rte_errno != 0 ? rte_errno : ENOMEM;
		goto fail_hash;
	}
	return d;

fail_hash:
	rte_free(d->entries);
fail_entries:
	rte_free(d);
fail:
	rte_errno = err;
	errno = err;
	return NULL;
}

void
amil_dedupe_free(struct amil_dedupe *d)
{
	if (d == NULL)
		return;
	rte_hash_free(d->hash);
	rte_free(d->entries);
	rte_free(d);
}

/*
 * Insert @key -> @val as the newest entry, evicting the oldest one first if
 * the table is full and that entry has aged past the retention window.
 * @return the new entry, or NULL (FULL).
 */
static inline struct entry *
insert(struct amil_dedupe *d, const struct amil_dedupe_key *key,
       const struct amil_dedupe_val *val, uint64_t now_tsc, bool force)
{
	uint32_t count = d->count, slot;
	struct entry *e;
	int32_t ret;

	if (count == d->capacity) {
		e = &d->entries[d->head];
		if (unlikely(e->key.zero == TOMBSTONE)) {
			/* Forgotten: already out of the hash, nothing to age. */
		} else {
			if (!force && (now_tsc < e->insert_tsc ||
				       now_tsc - e->insert_tsc < d->retention_tsc))
				return NULL;
			ret = rte_hash_del_key(d->hash, &e->key);
			assert(ret >= 0);      /* every live FIFO entry is in the hash */
			RTE_SET_USED(ret);
			/* Relaxed: a statistic read from other lcores; only we write it. */
			__atomic_store_n(&d->evictions, d->evictions + 1, __ATOMIC_RELAXED);
		}
		d->head = d->head + 1 == d->capacity ? 0 : d->head + 1;
		count--;
	}

	slot = d->head + count;
	if (slot >= d->capacity)
		slot -= d->capacity;
	e = &d->entries[slot];
	e->key = *key;
	e->val = *val;
	e->insert_tsc = now_tsc;
	/*
	 * Cannot fail: fewer than @capacity keys are present and EXT_TABLE
	 * removes cuckoo-path failures.  If it ever did, the slot is left
	 * outside the FIFO (count unchanged) and the donation is refused.
	 */
	ret = rte_hash_add_key_data(d->hash, key, e);
	if (unlikely(ret < 0)) {
		assert(0 && "rte_hash_add_key_data failed below capacity");
		__atomic_store_n(&d->count, count, __ATOMIC_RELAXED);
		return NULL;
	}
	__atomic_store_n(&d->count, count + 1, __ATOMIC_RELAXED);
	return e;
}

unsigned
amil_dedupe_record_burst(struct amil_dedupe *d, const struct amil_dedupe_key *keys,
			 const struct amil_dedupe_val *vals, unsigned n, uint64_t now_tsc,
			 uint8_t *result, const struct amil_dedupe_val **orig)
{
	const void *kp[AMIL_DEDUPE_BURST_MAX];
	void *data[AMIL_DEDUPE_BURST_MAX];
	/* The NEW elements of this burst so far: index and entry. */
	uint8_t new_idx[AMIL_DEDUPE_BURST_MAX];
	struct entry *new_e[AMIL_DEDUPE_BURST_MAX];
	unsigned i, nb_new = 0;
	uint64_t hits = 0;

	assert(n <= AMIL_DEDUPE_BURST_MAX);
	if (unlikely(n > AMIL_DEDUPE_BURST_MAX)) {
		/* Contract violation in a release build: refuse the excess. */
		for (i = AMIL_DEDUPE_BURST_MAX; i < n; i++) {
			result[i] = AMIL_DEDUPE_FULL;
			orig[i] = NULL;
		}
		n = AMIL_DEDUPE_BURST_MAX;
	}
	if (unlikely(n == 0))
		return 0;

	for (i = 0; i < n; i++)
		kp[i] = &keys[i];
	rte_hash_lookup_bulk_data(d->hash, kp, n, &hits, data);
	for (i = 0; i < n; i++)
		if (hits & (UINT64_C(1) << i))
			rte_prefetch0(data[i]);

	for (i = 0; i < n; i++) {
		struct entry *e = NULL;

		if (hits & (UINT64_C(1) << i)) {
			e = data[i];
			if (unlikely(!key_eq(&e->key, &keys[i])))
				e = NULL;      /* evicted earlier in this burst */
		}
		if (e == NULL) {
			unsigned j = nb_new;

			while (j-- > 0) {
				if (key_eq(&keys[new_idx[j]], &keys[i])) {
					if (key_eq(&new_e[j]->key, &keys[i]))
						e = new_e[j];
					break;
				}
			}
		}

		if (e != NULL) {
			d->orig_buf[i] = e->val;
			orig[i] = &d->orig_buf[i];
			result[i] = same_content(&e->val, &vals[i]) ? AMIL_DEDUPE_DUPLICATE
								    : AMIL_DEDUPE_CONFLICT;
			continue;
		}

		orig[i] = NULL;
		e = insert(d, &keys[i], &vals[i], now_tsc, false);
		if (e == NULL) {
			result[i] = AMIL_DEDUPE_FULL;
			continue;
		}
		result[i] = AMIL_DEDUPE_NEW;
		new_idx[nb_new] = (uint8_t)i;
		new_e[nb_new] = e;
		nb_new++;
	}
	return nb_new;
}

uint32_t
amil_dedupe_count(const struct amil_dedupe *d)
{
	return __atomic_load_n(&d->count, __ATOMIC_RELAXED);
}

uint32_t
amil_dedupe_capacity(const struct amil_dedupe *d)
{
	return d->capacity;
}

uint64_t
amil_dedupe_evictions(const struct amil_dedupe *d)
{
	return __atomic_load_n(&d->evictions, __ATOMIC_RELAXED);
}

int
amil_dedupe_forget(struct amil_dedupe *d, const struct amil_dedupe_key *key)
{
	void *data = NULL;
	struct entry *e;

	if (rte_hash_lookup_data(d->hash, key, &data) < 0)
		return -ENOENT;
	e = data;
	if (!key_eq(&e->key, key))
		return -ENOENT;
	rte_hash_del_key(d->hash, key);
	/* The slot stays in the FIFO (no holes to compact) until it reaches
	 * the head, where insert() drops it without an age check. */
	e->key.zero = TOMBSTONE;
	return 0;
}

int
amil_dedupe_restore(struct amil_dedupe *d, const struct amil_dedupe_key *key,
		    const struct amil_dedupe_val *val, uint64_t insert_tsc)
{
	uint64_t newest = 0;
	bool evicted;
	uint64_t ev0 = d->evictions;
	struct entry *e;

	if (key->zero != 0)
		return -EINVAL;
	/* A later record of the same key (accepted again after the first
	 * aged out) replaces the earlier one. */
	amil_dedupe_forget(d, key);
	if (d->count > 0) {
		uint32_t last = d->head + d->count - 1;

		if (last >= d->capacity)
			last -= d->capacity;
		newest = d->entries[last].insert_tsc;
	}
	/* The FIFO must stay in time order even if the wall clock that dated
	 * the records stepped back. */
	if (insert_tsc < newest)
		insert_tsc = newest;
	e = insert(d, key, val, insert_tsc, true);
	if (e == NULL)
		return -ENOSPC;
	evicted = d->evictions != ev0;
	return evicted ? 1 : 0;
}
