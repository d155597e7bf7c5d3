/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The cluster registry's CP mode: one CASPaxos register per name (Rystsov,
 * "CASPaxos: Replicated State Machines without logs", 2018).  A
 * registration needs a majority of the configured cluster; a minority side
 * times out (-ETIMEDOUT, which the daemon reports as "no majority:
 * degraded"); no two owners of a name are ever chosen, under any partition,
 * loss, duplication, reordering or crash/restart (with the log).
 *
 * Protocol.  Every node is acceptor, proposer and learner.  The acceptors
 * are the configured member list (fixed at creation, self included); a
 * majority is n/2+1.  A ballot is (round, proposer node id), compared
 * lexicographically; a proposer uses round = the highest round it has seen
 * anywhere + 1.  One operation (REGISTER, UNREGISTER, REAP) is:
 *   1. PREPARE(b) to every member; an acceptor with promised < b promises
 *      b and answers PROMISE(accepted ballot, accepted state), else NACK;
 *   2. with a majority of promises the proposer takes the state with the
 *      highest accepted ballot, applies the change function (below) and
 *      sends ACCEPT(b, new state); an acceptor with promised <= b accepts;
 *   3. with a majority of ACCEPTED the state is chosen: the proposer calls
 *      the done callback and sends COMMIT(b, state) to everyone, which
 *      updates their learned view (lookup/foreach/count read the learned
 *      view; the proposer's own view at once: read-your-writes).
 * A NACK, or no majority within an attempt window (25 ms), restarts the
 * operation with a higher round after a random 1..20 ms backoff, until its
 * deadline (op_timeout_ns): then it ends -ETIMEDOUT.  A timed-out operation
 * may still have been chosen (its ACCEPTs were in flight); the next
 * operation on the name finds it.
 *
 * Change functions (state = {present, owner, version, value}):
 *   REGISTER(o, v):  absent -> present(o, v), version+1;  owned by o ->
 *                    value v, version+1;  owned by another -> -EEXIST.
 *   UNREGISTER(o):   owned by o -> absent, version+1;  absent -> -ENOENT;
 *                    owned by another -> -EPERM.
 *   REAP(d):         owned by d -> absent, version+1;  else -ENOENT.
 * A refusal still runs phase 2 with the unchanged state, so a half-accepted
 * state is finalised before the refusal (naming the current owner) is
 * reported.
 *
 * Learned-view catch-up (anti-entropy), proportional to the difference.
 * A learned entry's bucket is the top 8 bits of a 64-bit hash of its name
 * and its leaf the top 16 bits (the bucket, then 8 more: 256 leaves per
 * bucket, 65536 in all); a leaf hash is the sum mod 2^64 of a 64-bit hash
 * of (name, learned ballot) over the leaf's entries (0: empty) and a bucket
 * hash the sum of its leaves.  Both are kept up to date on every
 * learned-view change, never recomputed per round.  One exchange:
 *   A -> B  DIGEST: every ae_interval_ns amil_cas_tick() sends the count
 *           and the 256 bucket hashes to one random member the alive
 *           callback reports alive;
 *   B -> A  for each bucket that differs: where A's bucket hash is 0 (A
 *           has nothing there) B's entries of the bucket (SYNC); else
 *           B's 256 leaf hashes of the bucket, or "empty" (LEAVES);
 *   A -> B  for each leaf that differs: A's entries of the leaf (SYNC),
 *           and the list of those differing leaves where B has entries
 *           (WANT);
 *   B -> A  B's entries of the wanted leaves (SYNC).
 * So both views converge in one exchange, and what travels is 2 KiB per
 * differing bucket plus the entries of the differing leaves (about 1.5
 * names per leaf at 100k names), not the view.  A SYNC entry replaces a
 * learned entry only with a greater ballot.  Learned entries are only ever
 * states a majority accepted.  (A bucket whose entry hashes sum to 0 by
 * chance, probability 2^-64, is taken for empty by a peer.)  The hashes
 * are part of the protocol: the name hash is SipHash-2-4 of the name bytes
 * under the 16-byte key "amil-cas-names!\0", the entry hash SipHash-2-4 of
 * (name_len u8, name, ballot) as on the wire under "amil-cas-entry!\0",
 * both outputs read as big-endian u64.
 *
 * Durability.  An acceptor must not forget a promise or an accept.  With a
 * log_path the acceptor state, the learned view and the proposer's highest
 * used round are appended to a log (records with a CRC32); every reply
 * that depends on acceptor state (PROMISE, ACCEPTED) and every PREPARE
 * that uses a new round is queued and sent only by amil_cas_flush(), after
 * one fdatasync() for the whole batch (group commit).  Messages to self go
 * through the same path.  amil_cas_new() loads the log, cuts it at the
 * first torn or corrupt record, and rewrites it compacted (temp + fsync +
 * rename + fsync of the directory).  The log is compacted only then.
 *
 * Concurrency of operations: up to max_ops operations in flight; one per
 * name per node (a second operation on a name this node is already working
 * on gets -EBUSY; the caller retries after the first one's done callback).
 *
 * Wire format (integers big-endian).  Every message:
 *    0 'X' (0x58)   1 type   2 version (1; DIGEST: 2)
 * then per type ("name" = name_len u8 (1..255) + name bytes without NUL;
 * "ballot" = round u64 (1..2^62) + node u64 (a member); "state" = present
 * u8 (0/1), owner u64 (0 iff absent), version u64, value_len u16 (<= 1024,
 * 0 if absent), value bytes):
 *    1 PREPARE   name, ballot                  (ballot.node == sender)
 *    2 PROMISE   name, ballot, accepted ballot (or all zero), state
 *    3 ACCEPT    name, ballot, state           (ballot.node == sender)
 *    4 ACCEPTED  name, ballot
 *    5 NACK      name, ballot, promised ballot
 *    6 COMMIT    name, ballot, state           (ballot.node == sender)
 *    7 DIGEST    (version 2) count u64 (learned entries), 256 x bucket
 *                hash u64 (bucket 0 first); 2059 bytes in all.  Version
 *                1 (count + one 32-byte hash) is refused (-EBADMSG), so
 *                during a rolling upgrade old and new nodes do not catch
 *                up with each other; every other message is unchanged.
 *                The count is informational (a view's size at a glance).
 *    8 SYNC      n u32, n x (name, ballot, state)
 *    9 LEAVES    n u16 (1..256), n x (bucket u8, kind u8: 0 = empty, no
 *                more; 1 = 256 x leaf hash u64 follow), buckets strictly
 *                ascending
 *   10 WANT      n u32 (1..65536), n x leaf u16, strictly ascending
 * nothing after the last field.  Anything else is -EBADMSG and counted.
 * SYNC and LEAVES messages are at most AMIL_CAS_SYNC_MAX bytes each (an
 * answer is split over as many as it needs).
 *
 * Threads: an amil_cas belongs to one thread (the daemon's actor); no call
 * locks.  The callbacks run on that thread, from inside the calls named in
 * struct amil_cas_config; they must not call amil_cas_destroy(); the done
 * callback may call amil_cas_start() and the read calls.
 * Allocation: control path only.  Nothing blocks except the fdatasync()
 * in amil_cas_flush() and the log load/rewrite in amil_cas_new().
 */
#ifndef AMIL_CASPAXOS_H
#define AMIL_CASPAXOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CAS_NAME_MAX     255       /* bytes, 1..255, no NUL */
#define AMIL_CAS_VALUE_MAX    1024      /* bytes */
#define AMIL_CAS_MEMBERS_MAX  64        /* configured cluster size */
#define AMIL_CAS_WIRE_MARK    'X'       /* first byte of every message */
#define AMIL_CAS_WIRE_VERSION 1
#define AMIL_CAS_DIGEST_VERSION 2       /* DIGEST only: bucketed */
#define AMIL_CAS_SYNC_MAX     (256 * 1024)  /* bytes per SYNC / LEAVES message */
#define AMIL_CAS_BUCKETS      256       /* anti-entropy buckets (top 8 bits) */
#define AMIL_CAS_LEAVES_PER_BUCKET 256  /* leaves per bucket (next 8 bits) */
#define AMIL_CAS_LEAVES       (AMIL_CAS_BUCKETS * AMIL_CAS_LEAVES_PER_BUCKET)
#define AMIL_CAS_DIGEST_LEN   (3 + 8 + 8 * AMIL_CAS_BUCKETS)   /* bytes */

enum amil_cas_msg {
	AMIL_CAS_MSG_PREPARE = 1,
	AMIL_CAS_MSG_PROMISE = 2,
	AMIL_CAS_MSG_ACCEPT = 3,
	AMIL_CAS_MSG_ACCEPTED = 4,
	AMIL_CAS_MSG_NACK = 5,
	AMIL_CAS_MSG_COMMIT = 6,
	AMIL_CAS_MSG_DIGEST = 7,
	AMIL_CAS_MSG_SYNC = 8,
	AMIL_CAS_MSG_LEAVES = 9,
	AMIL_CAS_MSG_WANT = 10,
};

struct amil_cas;

/* One register's state.  Absent: owner 0, value_len 0; version counts
 * every change ever made (it survives an unregister). */
struct amil_cas_state {
	bool present;
	uint64_t owner, version;
	uint16_t value_len;
	uint8_t value[AMIL_CAS_VALUE_MAX];
};

enum amil_cas_op {
	AMIL_CAS_REGISTER,
	AMIL_CAS_UNREGISTER,
	AMIL_CAS_REAP,
};

/* Send @len bytes at @buf to member @to (never self).  The buffer is only
 * valid during the call (copy it).  Must not block; dropping is allowed. */
typedef void (*amil_cas_send_fn)(void *ctx, uint64_t to, const uint8_t *buf, size_t len);

/* Whether @node is believed alive (anti-entropy target choice only). */
typedef bool (*amil_cas_alive_fn)(void *ctx, uint64_t node);

/*
 * An operation ended.  @result: 0 (changed), -EEXIST, -ENOENT, -EPERM
 * (refused; @st is the chosen, current state, e.g. the owner), or
 * -ETIMEDOUT (@st is this node's learned view, possibly stale or absent
 * with version 0).  @name/@st are valid only during the call.
 */
typedef void (*amil_cas_done_fn)(void *ctx, uint64_t op_id, int result, const char *name,
				 size_t name_len, const struct amil_cas_state *st);

struct amil_cas_config {
	uint64_t self;               /* != 0, one of members */
	const uint64_t *members;     /* distinct, != 0, self included; copied */
	size_t n_members;            /* 1..AMIL_CAS_MEMBERS_MAX */
	const char *log_path;        /* NULL: memory only (tests) */
	uint64_t op_timeout_ns;      /* default 1 s when 0 */
	uint64_t ae_interval_ns;     /* default 1 s when 0 */
	unsigned max_ops;            /* default 4096 when 0 */
	amil_cas_send_fn send;       /* required */
	amil_cas_alive_fn alive;     /* NULL: every member alive */
	amil_cas_done_fn done;       /* NULL: results are not reported */
	void *ctx;                   /* passed to the callbacks */
};

/*
 * New node at monotonic time @now_ns.  With cfg->log_path: loads the log
 * (created if missing; a torn or corrupt tail is cut) and rewrites it
 * compacted.  Calls no callback.
 * Returns NULL with errno: EINVAL (bad config), ENOMEM, EBADMSG (the file
 * exists but is not a CAS log: left untouched), or the errno of a failed
 * open/read/write/fsync/rename.  Caller owns the result: amil_cas_destroy().
 */
struct amil_cas *amil_cas_new(const struct amil_cas_config *cfg, uint64_t now_ns);

/* Free @c (NULL ok).  Operations in flight end without a done callback;
 * queued replies and unflushed log records are dropped (as in a crash:
 * nothing unflushed was promised to anyone). */
void amil_cas_destroy(struct amil_cas *c);

/*
 * Start operation @op on @name (1..AMIL_CAS_NAME_MAX bytes, no NUL) for
 * @owner (!= 0; for REAP the dead owner) with @value (REGISTER only,
 * <= AMIL_CAS_VALUE_MAX bytes; ignored otherwise) at time @now_ns.  The
 * result comes through the done callback with *@op_id (may be NULL; ids
 * count from 1 per amil_cas_new, so they repeat after a restart); usually
 * later, but from inside this call when self alone is a majority (a
 * one-member cluster without a log).  May call send.
 * Returns 0, -EINVAL (bad argument), -EBUSY (max_ops in flight, or this
 * node already has an operation on @name), -ENOMEM.
 */
int amil_cas_start(struct amil_cas *c, uint64_t now_ns, enum amil_cas_op op, const char *name,
		   size_t name_len, uint64_t owner, const void *value, size_t value_len,
		   uint64_t *op_id);

/*
 * Handle one message @buf/@len from node @from.  May call send and done.
 * Returns 0, -EPERM (@from is not a member; counted msgs_foreign),
 * -EBADMSG (malformed; counted msgs_bad; nothing changed), -ENOMEM.
 */
int amil_cas_receive(struct amil_cas *c, uint64_t now_ns, uint64_t from, const uint8_t *buf,
		     size_t len);

/* Attempt retries, operation deadlines (-ETIMEDOUT) and anti-entropy.
 * Call at least every few ms.  May call send and done. */
void amil_cas_tick(struct amil_cas *c, uint64_t now_ns);

/*
 * Write the pending log records, fdatasync() the log once, then send the
 * queued replies (and handle those addressed to self, which may call done).
 * Call after every batch of receive/start/tick.  Without a log it only
 * handles self-addressed messages.  Returns 0, or the negative errno of a
 * failed write/fdatasync: the records and replies stay queued for the
 * next call.
 */
int amil_cas_flush(struct amil_cas *c);

/*
 * The learned state of @name into *@out (may be NULL).  Returns 0
 * (present), -ENOENT (absent; *@out, if given, holds present = false and
 * the version of the last unregister, 0 if never known), -EINVAL (bad
 * length).
 */
int amil_cas_lookup(const struct amil_cas *c, const char *name, size_t len,
		    struct amil_cas_state *out);

/* Call @fn for every present learned entry, in no particular order.
 * Returns 0 or the first non-zero value @fn returned.  @fn must not
 * change @c. */
int amil_cas_foreach(const struct amil_cas *c,
		     int (*fn)(void *ctx, const char *name, size_t len,
			       const struct amil_cas_state *st),
		     void *ctx);

/* Number of present learned entries. */
size_t amil_cas_count(const struct amil_cas *c);

struct amil_cas_stats {
	uint64_t ops_started, ops_ok, ops_refused, ops_timeout;
	uint64_t nacks;          /* NACKs received for a current ballot */
	uint64_t retries;        /* attempts restarted with a higher round */
	uint64_t msgs_rx, msgs_bad, msgs_foreign;
	uint64_t commits_tx;     /* COMMIT messages sent */
	uint64_t syncs_tx, syncs_rx;  /* SYNC messages */
	uint64_t log_bytes;      /* current log file size */
	uint64_t log_syncs;      /* fdatasync() calls */
	uint64_t sync_entries_tx, sync_entries_rx;  /* entries in SYNC messages */
	uint64_t leaves_tx, wants_tx;  /* LEAVES / WANT messages sent */
	uint64_t ae_bytes_tx;    /* DIGEST + SYNC + LEAVES + WANT bytes sent */
};
void amil_cas_stats_get(const struct amil_cas *c, struct amil_cas_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_CASPAXOS_H */
