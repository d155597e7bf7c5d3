/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Private to the registry's three files (not for daemon.c): the state and
 * the functions they share.
 *
 *   registry.c     the owner: life cycle, sending (pushes and AP batches),
 *                  receive dispatch, timers, stats, control requests
 *   registry_ae.c  AP anti-entropy and healing: digest exchange, urgent
 *                  rounds after a peer came up, conflicts, reaping,
 *                  re-assertion of our own entries
 *   registry_cp.c  CP mode over caspaxos.h: its callbacks, held replies,
 *                  the batch pump, the CP control paths
 *
 * Thread-safety: as registry.h (the daemon's loop only).
 */
#ifndef AMIL_REGISTRY_IMPL_H
#define AMIL_REGISTRY_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "awormap.h"
#include "caspaxos.h"
#include "registry.h"

struct amil_ownset;

#define LOST_MAX 16
#define REAP_MAX 64                          /* names reaped per round */
#define REG_PEERS_MAX 64                     /* peers with delta-log state */
#define AMIL_REG_BATCH_MSG_MAX (4u << 20)    /* bytes of deltas per batch message */

/* One delta of ours in the log (registry_log.c). */
struct reg_logrec {
	uint8_t *d;
	uint32_t len;
};

/* What a peer has of ours, and we of it (registry_log.c). */
struct reg_peer {
	uint64_t node;
	uint64_t their_writer;         /* its writer id (process life) */
	uint64_t have;                 /* its deltas we have, all up to this seq */
	uint64_t acked;                /* ours it has, all up to this seq */
	uint64_t acked_since;          /* monotonic ns of the last change of acked */
	uint64_t have_sent, ack_ns;    /* our last acknowledgement to it, and when */
};

struct amil_registry {
	struct amil_registry_config cfg;
	uint64_t *members;
	struct amil_awormap *map;
	struct amil_cas *cas;          /* CP mode only */
	/* What this node wrote into the map and still means (ownset.h): put
	 * back when a reap by the other side of a partition removed it. */
	struct amil_ownset *own;
	size_t own_checked_count;      /* map size at the last re-assertion scan */
	uint64_t own_next_full;        /* monotonic ns of the next scan regardless */
	uint64_t reasserted;
	uint64_t ae_next_mono;
	uint64_t deltas_tx, deltas_rx, states_tx, states_rx, digests_tx, batches_tx, batches_rx;
	uint64_t bad, conflicts, reaped;
	/* Names a join left in conflict with one of ours as the loser:
	 * resolved (and reported) after the join, not inside it. */
	char lost[LOST_MAX][AMIL_AWORMAP_NAME_MAX + 1];
	uint64_t lost_winner[LOST_MAX];
	unsigned nlost;
	/* CP: the control request whose reply waits for its rounds. */
	bool pending;
	bool pending_batch;
	unsigned pending_ops;
	int single_rc;
	char single_name[AMIL_CAS_NAME_MAX + 1];
	struct amil_cas_state single_st;
	uint64_t batch_ok, batch_refused, batch_timeout;
	char *batch_req;               /* CP batch: the lines not started yet */
	const char *batch_cursor;
	char batch_first_error[160];
	uint64_t reap_ops[REAP_MAX];
	unsigned nreap_ops;
	/* Peers just seen alive again (a heal, a restart): digests to them
	 * at once and a few times after (the CURVE connection may still be
	 * coming up, and a message to a peer without one is dropped). */
	struct {
		uint64_t node, next_mono;
		unsigned step;
		bool resent;           /* its missed deltas went out */
	} urgent[8];
	unsigned nurgent;
	/* AP batch: deltas gathered for one message per peer; the first 16
	 * bytes are (writer id, first seq) once a delta is in */
	uint8_t *bbuf;
	size_t blen, bcap;
	/* Our deltas, numbered, until the peers acknowledge them (a ring of
	 * log_cap records from log_head; log_base = seq of the oldest) */
	struct reg_logrec *log;
	size_t log_cap, log_head, log_n, log_bytes;
	uint64_t log_base;
	struct reg_peer peers[REG_PEERS_MAX];
	unsigned npeers;
	uint64_t resent_deltas, resent_bytes;
};

/* Big-endian u64 in the registry's own message headers (batch, ack). */
static inline void
reg_st64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t
reg_ld64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- registry.c -------------------------------------------------------------- */

/* Clocks: monotonic (timers, CP rounds) and wall-clock (HLC, dead since). */
uint64_t reg_mono_ns(void);
uint64_t reg_real_ns(void);

/* A local change: @delta (@len bytes) to every alive member at once. */
void reg_push_delta(struct amil_registry *r, const uint8_t *delta, size_t len);

/* AP batch: append @delta to the batch buffer (0 or -ENOMEM: the caller
 * then pushes it alone); reg_batch_flush() sends the batch, one message
 * per alive member, and empties it. */
int reg_batch_add(struct amil_registry *r, const uint8_t *delta, size_t len);
void reg_batch_flush(struct amil_registry *r);

/* One line (@p, @ll bytes) of a registry-register-batch request: returns
 * NULL having filled @name (AMIL_AWORMAP_NAME_MAX + 2 bytes) and @value
 * (AMIL_AWORMAP_VALUE_MAX + 2 bytes), or why the line is refused. */
const char *reg_batch_line(const char *p, size_t ll, char *name, char *value);

/* Count a refused batch line; the first one names the reply's first_error. */
void reg_batch_refuse(struct amil_registry *r, const char *name, const char *why);

/* A control reply {"schema": 1, "error": @msg} to @f. */
void reg_error_json(FILE *f, const char *msg);

/* ---- registry_log.c (our deltas until every peer has them) --------------------- */

/* Number @delta and keep a copy; returns its seq (always: without memory
 * the log is emptied and the peers that lack it use anti-entropy). */
uint64_t reg_log_append(struct amil_registry *r, const uint8_t *delta, size_t len);
void reg_log_free(struct amil_registry *r);

/* A delta of @from's life @writer numbered @seq was joined. */
void reg_log_received(struct amil_registry *r, uint64_t from, uint64_t writer, uint64_t seq);

/* 'V' from @from: (our writer id, seq): it has all of ours up to seq. */
void reg_log_receive_ack(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len);

/* Send @node what it has not acknowledged, from the log, as batch
 * messages.  0 (sent, or nothing to send), -ENOENT (the log no longer
 * holds it: anti-entropy), -EAGAIN (no connection yet), -ENOMEM. */
int reg_log_resend(struct amil_registry *r, uint64_t node);

/* Has @node acknowledged everything in our log? */
bool reg_log_caught_up(struct amil_registry *r, uint64_t node);

/* Every AE round: our acknowledgements to every alive peer, and a resend
 * to a peer whose acknowledgement is stuck behind our log. */
void reg_log_tick(struct amil_registry *r, uint64_t now_mono);

/* Every loop turn: acknowledge what arrived since our last
 * acknowledgement to that peer, at most every 20 ms per peer (so that a
 * partition right after a burst does not make its sender resend it). */
void reg_log_ack_due(struct amil_registry *r, uint64_t now_mono);

/* ---- registry_ae.c (AP anti-entropy and healing) ------------------------------ */

/* Join callback (amil_awormap_join(), ctx @r): note the names of ours that
 * lost; reg_settle_conflicts() after the join resolves them and emits
 * name_conflict. */
void reg_on_conflict(void *ctx, const struct amil_awormap_entry *winner,
		     const struct amil_awormap_entry *loser);
void reg_settle_conflicts(struct amil_registry *r);

/* Messages 'G'/'H', 'L', 'Q' and 'U' (@buf includes the kind byte). */
void reg_receive_digest(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len);
void reg_receive_leaves(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len);
void reg_receive_leaf_req(struct amil_registry *r, uint64_t from, const uint8_t *buf,
			  size_t len);
void reg_receive_unregister(struct amil_registry *r, const uint8_t *buf, size_t len);

/* Timers (amil_registry_tick()): digests to peers just up (every tick);
 * then, every AE round: our digest to one random peer, reaping of dead
 * owners' names, re-assertion of our own entries. */
void reg_urgent_rounds(struct amil_registry *r, uint64_t now_mono);
void reg_anti_entropy(struct amil_registry *r);
void reg_reap(struct amil_registry *r, uint64_t now_mono);
void reg_reassert(struct amil_registry *r);

/* ---- registry_cp.c (CP mode) ---------------------------------------------------- */

/* caspaxos.h callbacks (ctx: the registry). */
void reg_cas_send(void *ctx, uint64_t to, const uint8_t *buf, size_t len);
bool reg_cas_alive(void *ctx, uint64_t node);
void reg_cas_done(void *ctx, uint64_t op_id, int result, const char *name, size_t name_len,
		  const struct amil_cas_state *st);

/* CP part of the tick: caspaxos.c's timers, then more of a held batch. */
void reg_cp_tick(struct amil_registry *r, uint64_t now_mono);

/* CP control paths, each with a checked @name (and @value).  They write
 * the reply to @f and return 0, or return 1 when it is held (sent by
 * cfg.reply when the rounds are done).  reg_cp_list() writes the entries
 * only and returns how many. */
size_t reg_cp_list(struct amil_registry *r, FILE *f);
int reg_cp_get(struct amil_registry *r, const char *name, FILE *f);
int reg_cp_change(struct amil_registry *r, bool reg, const char *name, const char *value,
		  FILE *f);
/* registry-register-batch: @lines, one "NAME VALUE" a line (the batch
 * counters were reset by the caller). */
int reg_cp_batch(struct amil_registry *r, const char *lines, FILE *f);

#endif /* AMIL_REGISTRY_IMPL_H */
