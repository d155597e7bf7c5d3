/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Per-worker idempotency table: (center_id, donation_id) -> what was
 * recorded, so that a retransmit is answered DUPLICATE with the original
 * amount and levy and counted once, and a reuse of the key with different
 * content is refused as CONFLICT.
 *
 * Ownership: one table per worker lcore, created on that worker's NUMA
 * socket.  Only the owning worker calls amil_dedupe_record_burst(); the
 * table is single-writer and takes no lock.  The consistent hash in route.h
 * guarantees a key always reaches the same worker.
 *
 * Memory is bounded: @capacity entries, allocated at creation, never grown.
 * Entries are kept in insertion (= time) order in a FIFO.  When the table is
 * full, the oldest entry is evicted only if it is older than the retention
 * window; otherwise the new donation is refused with FULL (the worker
 * answers REJECTED/UNAVAILABLE, "retry later") rather than evicting a key
 * that a center may still retransmit.  Consequence, documented for centers:
 * a retransmit is recognised as a duplicate as long as it arrives within the
 * retention window of the first transmission.
 */
#ifndef AMIL_DEDUPE_H
#define AMIL_DEDUPE_H

#include <stdint.h>

#include "amil_wire.h" /* AMIL_STATIC_ASSERT */

#ifdef __cplusplus
extern "C" {
#endif

struct amil_dedupe;

/* Hash key: 16 bytes so rte_hash compares two 8-byte words. */
struct amil_dedupe_key {
	uint32_t center_id;
	uint32_t zero;                 /* always 0 (padding, hashed) */
	uint64_t donation_id;
};
AMIL_STATIC_ASSERT(sizeof(struct amil_dedupe_key) == 16, "dedupe key is 16 bytes");

/* What was recorded: the fields that define "same donation", plus the levy. */
struct amil_dedupe_val {
	uint64_t donor_id;
	uint32_t campaign_id;
	char currency[3];
	uint8_t exponent;
	int64_t amount_minor;
	int64_t levy_minor;            /* not compared: derived from amount */
};
AMIL_STATIC_ASSERT(sizeof(struct amil_dedupe_val) == 32, "dedupe value is 32 bytes");

enum amil_dedupe_result {
	AMIL_DEDUPE_NEW = 0,           /* recorded now: answer ACCEPTED */
	AMIL_DEDUPE_DUPLICATE = 1,     /* same content seen: answer original */
	AMIL_DEDUPE_CONFLICT = 2,      /* same key, other content */
	AMIL_DEDUPE_FULL = 3,          /* no room within retention: UNAVAILABLE */
};

struct amil_dedupe_params {
	const char *name;              /* unique per process (rte_hash name) */
	uint32_t capacity;             /* entries, >= 8 */
	uint64_t retention_tsc;        /* min age before an entry may be evicted */
	int socket_id;                 /* NUMA socket of the owning worker */
};

/**
 * Create a table.  Allocates everything now, on @p->socket_id.
 * @return the table, or NULL with rte_errno/errno set (EINVAL for bad
 *   params, ENOMEM, EEXIST for a duplicate name).  Control path only.
 */
struct amil_dedupe *amil_dedupe_create(const struct amil_dedupe_params *p);

/** Free a table; NULL is a no-op.  Control path only. */
void amil_dedupe_free(struct amil_dedupe *d);

/**
 * Look up and record a burst.
 *
 * For each i < n: if keys[i] is present and vals[i] matches the stored
 * content (levy ignored) -> DUPLICATE and *orig[i] = stored value; present
 * with other content -> CONFLICT (orig[i] = stored value); absent -> insert
 * vals[i] (NEW), evicting the oldest entry only if older than the retention
 * window, else FULL.  Repeats of one key inside the same burst are handled
 * in order (the second sees the first).
 *
 * @param now_tsc  current TSC, monotonic.
 * @param result   out: enum amil_dedupe_result per element.
 * @param orig     out: pointer to the stored value (valid until the next
 *                 call on this table) for DUPLICATE/CONFLICT, else NULL.
 * @return number of NEW records.  Worker lcore that owns @d only; no
 *   allocation, no lock.  n <= AMIL_DEDUPE_BURST_MAX.
 */
#define AMIL_DEDUPE_BURST_MAX 64
unsigned amil_dedupe_record_burst(struct amil_dedupe *d,
				  const struct amil_dedupe_key *keys,
				  const struct amil_dedupe_val *vals, unsigned n,
				  uint64_t now_tsc, uint8_t *result,
				  const struct amil_dedupe_val **orig);

/**
 * Forget @key: a donation recorded as NEW whose ledger record was refused
 * (disk error), so a retransmit is treated as new.  The slot is reused when
 * it reaches the head of the FIFO.
 * @return 0, or -ENOENT if @key is not present.  Owning lcore only.
 */
int amil_dedupe_forget(struct amil_dedupe *d, const struct amil_dedupe_key *key);

/**
 * Start-up recovery: insert @key -> @val as recorded at @insert_tsc (the
 * record's age translated to this boot's TSC).  Call in ledger order; an
 * earlier entry of the same key is replaced; a time earlier than the
 * newest entry is raised to it (FIFO order).  When the table is full the
 * oldest entry is evicted whatever its age (the ledger holds more than the
 * table can: the newest records win).
 * @return 0, 1 when an entry was evicted for it, -EINVAL, or -ENOSPC
 *   (internal failure).  Before the owning worker starts.
 */
int amil_dedupe_restore(struct amil_dedupe *d, const struct amil_dedupe_key *key,
			const struct amil_dedupe_val *val, uint64_t insert_tsc);

/** Entries in use / capacity.  Exact on the owning lcore; a snapshot elsewhere. */
uint32_t amil_dedupe_count(const struct amil_dedupe *d);
uint32_t amil_dedupe_capacity(const struct amil_dedupe *d);
/** Entries evicted because they aged past the retention window. */
uint64_t amil_dedupe_evictions(const struct amil_dedupe *d);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_DEDUPE_H */
