/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The cluster registry in the daemon: replication of the AWOR map, the
 * AP conflict rule, reaping of dead owners' names, and the CP mode's
 * CASPaxos rounds.  See registry.h for the model.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "caspaxos.h"
#include "hlc.h"
#include "ownset.h"
#include "registry.h"

#define AE_INTERVAL_NS (500 * 1000000ull)   /* AP anti-entropy round with one peer */
#define LOST_MAX 16
#define REAP_MAX 64                          /* names reaped per round */
#define BATCH_MSG_MAX (4u << 20)             /* bytes of deltas per batch message */
/* CP batch: rounds in flight at once.  Each round is ~10 messages and a
 * group-committed fdatasync per loop turn; thousands at once would outrun
 * the 25 ms attempt window and retry in a storm. */
#define BATCH_INFLIGHT 128

struct amil_registry {
	struct amil_registry_config cfg;
	uint64_t *members;
	struct amil_awormap *map;
	struct amil_cas *cas;          /* CP mode only */
	/* What this node wrote into the map and still means (ownset.h): put
	 * back when a reap by the other side of a partition removed it. */
	struct amil_ownset *own;
	size_t own_checked_count;      /* map size at the last re-assertion scan */
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
	} urgent[8];
	unsigned nurgent;
	/* AP batch: deltas gathered for one message per peer */
	uint8_t *bbuf;
	size_t blen, bcap;
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool
amil_registry_is_internal(const uint8_t *name, size_t len)
{
	size_t g = strlen(AMIL_REG_GROUP_PREFIX), c = strlen(AMIL_REG_CAMP_PREFIX);

	return (len >= g && memcmp(name, AMIL_REG_GROUP_PREFIX, g) == 0) ||
	       (len >= c && memcmp(name, AMIL_REG_CAMP_PREFIX, c) == 0);
}

/* ---- sending --------------------------------------------------------------- */

int
amil_registry_send(struct amil_registry *r, uint64_t to, uint8_t kind, const uint8_t *buf,
		   size_t len)
{
	struct amil_member_info mi;
	uint8_t *msg;
	int rc;

	if (amil_membership_lookup(r->cfg.m, to, &mi) != 0 || mi.is_self)
		return -ENOENT;
	msg = malloc(len + 1);
	if (msg == NULL)
		return -ENOMEM;
	msg[0] = kind;
	memcpy(msg + 1, buf, len);
	rc = amil_transport_send(r->cfg.tr, to, (const char *)mi.addr, mi.addr_len, msg, len + 1);
	free(msg);
	return rc;
}

struct push_ctx {
	struct amil_registry *r;
	uint8_t kind;
	const uint8_t *buf;
	size_t len;
	uint64_t pick, seen;           /* reservoir pick of one alive peer */
};

static int
push_one(void *ctx, const struct amil_member_info *mi)
{
	struct push_ctx *x = ctx;

	if (!mi->is_self && mi->state == AMIL_MEMBER_ALIVE)
		amil_registry_send(x->r, mi->node_id, x->kind, x->buf, x->len);
	return 0;
}

/* A local change: its delta to every alive member at once. */
static void
push_delta(struct amil_registry *r, const uint8_t *delta, size_t len)
{
	struct push_ctx x = {.r = r, .kind = AMIL_REG_MSG_DELTA, .buf = delta, .len = len};

	amil_membership_foreach(r->cfg.m, push_one, &x);
	r->deltas_tx++;
}

/* AP batch: gather deltas, one message per peer at the end (a per-name
 * message costs a transport round each; 100k names must not). */
static int
batch_add(struct amil_registry *r, const uint8_t *delta, size_t len)
{
	if (r->blen + 4 + len > r->bcap) {
		size_t cap = r->bcap ? r->bcap * 2 : 65536;
		uint8_t *p;

		while (cap < r->blen + 4 + len)
			cap *= 2;
		p = realloc(r->bbuf, cap);
		if (p == NULL)
			return -ENOMEM;
		r->bbuf = p;
		r->bcap = cap;
	}
	r->bbuf[r->blen] = (uint8_t)(len >> 24);
	r->bbuf[r->blen + 1] = (uint8_t)(len >> 16);
	r->bbuf[r->blen + 2] = (uint8_t)(len >> 8);
	r->bbuf[r->blen + 3] = (uint8_t)len;
	memcpy(r->bbuf + r->blen + 4, delta, len);
	r->blen += 4 + len;
	return 0;
}

static void
batch_flush(struct amil_registry *r)
{
	struct push_ctx x = {.r = r, .kind = AMIL_REG_MSG_BATCH, .buf = r->bbuf, .len = r->blen};

	if (r->blen == 0)
		return;
	amil_membership_foreach(r->cfg.m, push_one, &x);
	r->batches_tx++;
	r->blen = 0;
}

int
amil_registry_map_put(struct amil_registry *r, const char *key, const char *value)
{
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int rc = amil_awormap_put(r->map, real_ns(), key, strlen(key), r->cfg.node_id, value,
				  strlen(value), &delta, &dlen);

	if (rc != 0)
		return rc;
	push_delta(r, delta, dlen);
	free(delta);
	amil_ownset_put(r->own, key, value);   /* -ENOMEM: only no re-assertion */
	return 0;
}

int
amil_registry_map_remove(struct amil_registry *r, const char *key)
{
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int rc = amil_awormap_remove(r->map, key, strlen(key), &delta, &dlen);

	amil_ownset_del(r->own, key);
	if (rc != 0)
		return rc;
	push_delta(r, delta, dlen);
	free(delta);
	return 0;
}

int
amil_registry_map_foreach(const struct amil_registry *r, amil_awormap_iter_fn fn, void *ctx)
{
	return amil_awormap_foreach(r->map, fn, ctx);
}

/* ---- AP: anti-entropy, conflicts, reaping ---------------------------------- */

/* Pick one alive member at random, and keep a CURVE connection open to
 * every alive member (a message to a peer without one is dropped, so the
 * first delta after a member came up must not wait for a connection). */
static int
pick_one(void *ctx, const struct amil_member_info *mi)
{
	struct push_ctx *x = ctx;

	if (mi->is_self || mi->state != AMIL_MEMBER_ALIVE)
		return 0;
	amil_transport_connect(x->r->cfg.tr, mi->node_id, (const char *)mi->addr, mi->addr_len);
	if (randombytes_uniform((uint32_t)++x->seen) == 0)
		x->pick = mi->node_id;
	return 0;
}

/* Our digest to one random alive member; it answers with the buckets that
 * differ (and its own digest, so both sides repair). */
static void
anti_entropy(struct amil_registry *r)
{
	struct push_ctx x = {.r = r};
	struct amil_awormap_digest dg;
	uint8_t buf[AMIL_AWORMAP_DIGEST_LEN];

	amil_membership_foreach(r->cfg.m, pick_one, &x);
	if (x.pick == 0)
		return;
	amil_awormap_digest_get(r->map, &dg);
	amil_awormap_digest_encode(&dg, buf);
	if (amil_registry_send(r, x.pick, AMIL_REG_MSG_DIGEST, buf, sizeof(buf)) == 0)
		r->digests_tx++;
}

static void
digest_to(struct amil_registry *r, uint64_t node)
{
	struct amil_awormap_digest dg;
	uint8_t buf[AMIL_AWORMAP_DIGEST_LEN];
	struct amil_member_info mi;

	if (amil_membership_lookup(r->cfg.m, node, &mi) != 0 || mi.is_self)
		return;
	amil_transport_connect(r->cfg.tr, node, (const char *)mi.addr, mi.addr_len);
	amil_awormap_digest_get(r->map, &dg);
	amil_awormap_digest_encode(&dg, buf);
	if (amil_registry_send(r, node, AMIL_REG_MSG_DIGEST, buf, sizeof(buf)) == 0)
		r->digests_tx++;
}

void
amil_registry_peer_up(struct amil_registry *r, uint64_t node, uint64_t now_mono_ns,
		      bool was_dead)
{
	struct amil_member_info mi;
	unsigned i;

	if (was_dead && amil_membership_lookup(r->cfg.m, node, &mi) == 0 && !mi.is_self)
		amil_transport_reconnect(r->cfg.tr, node, (const char *)mi.addr, mi.addr_len);

	for (i = 0; i < r->nurgent && r->urgent[i].node != node; i++)
		;
	if (i == r->nurgent) {
		if (r->nurgent == sizeof(r->urgent) / sizeof(r->urgent[0]))
			return;        /* many at once: the periodic rounds cover them */
		r->nurgent++;
	}
	r->urgent[i].node = node;
	r->urgent[i].next_mono = now_mono_ns;
	r->urgent[i].step = 0;
}

/* Digests to peers just up: at 0, 10, 30, 70, 150, 310 ms. */
static void reassert(struct amil_registry *r);

static void
urgent_rounds(struct amil_registry *r, uint64_t now_mono)
{
	bool any = false;

	for (unsigned i = 0; i < r->nurgent;) {
		if (now_mono < r->urgent[i].next_mono) {
			i++;
			continue;
		}
		digest_to(r, r->urgent[i].node);
		any = true;
		r->urgent[i].next_mono = now_mono + (10ull << r->urgent[i].step) * 1000000u;
		if (++r->urgent[i].step == 6) {
			r->urgent[i] = r->urgent[--r->nurgent];
			continue;
		}
		i++;
	}
	/* A member came back: what its side removed of ours (a reap while we
	 * were cut off) arrives with these exchanges; put it back now rather
	 * than at the next periodic round. */
	if (any)
		reassert(r);
}

static void
on_conflict(void *ctx, const struct amil_awormap_entry *winner,
	    const struct amil_awormap_entry *loser)
{
	struct amil_registry *r = ctx;

	r->conflicts++;
	/* Our name lost: remember it; after the join we resolve it (remove
	 * our losing entry everywhere) and tell our operators. */
	if (loser->owner == r->cfg.node_id && winner->owner != r->cfg.node_id &&
	    r->nlost < LOST_MAX) {
		memcpy(r->lost[r->nlost], loser->name, loser->name_len);
		r->lost[r->nlost][loser->name_len] = '\0';
		r->lost_winner[r->nlost++] = winner->owner;
	}
}

/* After a join: resolve the conflicts our names lost (AP heal rule: the
 * greater (HLC, writer) wins everywhere) and emit name_conflict. */
static void
settle_conflicts(struct amil_registry *r)
{
	for (unsigned i = 0; i < r->nlost; i++) {
		const char *name = r->lost[i];
		struct amil_event ev = {.type = AMIL_EV_NAME_CONFLICT,
					.node_id = r->lost_winner[i],
					.from_id = r->cfg.node_id,
					.at_ns = real_ns()};
		uint8_t *delta = NULL;
		size_t dlen = 0;

		snprintf(ev.name, sizeof(ev.name), "%s", name);
		amil_events_add(r->cfg.ev, &ev);
		amil_ownset_del(r->own, name);         /* the rule gave it away */
		if (amil_awormap_resolve(r->map, name, strlen(name), &delta, &dlen) == 0) {
			push_delta(r, delta, dlen);
			free(delta);
		}
	}
	r->nlost = 0;
}

/*
 * Is @owner dead (or gone) for longer than the grace?  *@dead_real_ns: when
 * it was declared so, in wall-clock time.
 */
static bool
owner_expired(const struct amil_registry *r, uint64_t owner, uint64_t now_mono,
	      uint64_t *dead_real_ns)
{
	struct amil_member_info mi;

	if (owner == r->cfg.node_id || amil_membership_lookup(r->cfg.m, owner, &mi) != 0)
		return false;
	*dead_real_ns = real_ns() - (now_mono - mi.since_ns);
	return (mi.state == AMIL_MEMBER_DEAD || mi.state == AMIL_MEMBER_LEFT) &&
	       now_mono - mi.since_ns >= (uint64_t)r->cfg.grace_ms * 1000000u;
}

struct reap_ctx {
	struct amil_registry *r;
	uint64_t now_mono;
	char names[REAP_MAX][AMIL_AWORMAP_NAME_MAX + 1];
	uint64_t owners[REAP_MAX];
	unsigned n;
	/* AP: every expired name, NUL-separated (malloc'd) */
	char *all;
	size_t len, cap;
	bool oom;
};

static int
reap_map_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct reap_ctx *x = ctx;
	uint64_t dead_real = 0;

	if (!owner_expired(x->r, e->owner, x->now_mono, &dead_real))
		return 0;
	/* Only what the owner wrote before it was declared dead: an entry it
	 * wrote later (on its side of a partition, arriving with the heal)
	 * proves it alive, and our membership view is merely behind. */
	if (amil_hlc_physical_ns(e->hlc) >= amil_hlc_from_ns(dead_real))
		return 0;
	if (x->len + e->name_len + 1 > x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 4096;
		char *p;

		while (cap < x->len + e->name_len + 1)
			cap *= 2;
		p = realloc(x->all, cap);
		if (p == NULL) {
			x->oom = true;
			return 1;      /* the rest next round */
		}
		x->all = p;
		x->cap = cap;
	}
	memcpy(x->all + x->len, e->name, e->name_len);
	x->all[x->len + e->name_len] = '\0';
	x->len += e->name_len + 1;
	return 0;
}

struct lowest_ctx {
	uint64_t lowest;
};

static int
lowest_alive(void *ctx, const struct amil_member_info *mi)
{
	struct lowest_ctx *x = ctx;

	if (mi->state == AMIL_MEMBER_ALIVE && (x->lowest == 0 || mi->node_id < x->lowest))
		x->lowest = mi->node_id;
	return 0;
}

static int
reap_cas_one(void *ctx, const char *name, size_t len, const struct amil_cas_state *st)
{
	struct reap_ctx *x = ctx;
	uint64_t dead_real;

	/* (A REAP round is a compare-and-remove agreed by a majority: it
	 * removes the name only if that owner still holds it.) */
	if (x->n == REAP_MAX || !owner_expired(x->r, st->owner, x->now_mono, &dead_real))
		return 0;
	memcpy(x->names[x->n], name, len);
	x->names[x->n][len] = '\0';
	x->owners[x->n++] = st->owner;
	return 0;
}

struct expired_ctx {
	const struct amil_registry *r;
	uint64_t now_mono;
	bool any;
};

static int
expired_one(void *ctx, const struct amil_member_info *mi)
{
	struct expired_ctx *x = ctx;
	uint64_t dead_real;

	x->any |= owner_expired(x->r, mi->node_id, x->now_mono, &dead_real);
	return 0;
}

/* Is any member dead for longer than the grace? */
static bool
any_expired(const struct amil_registry *r, uint64_t now_mono)
{
	struct expired_ctx x = {.r = r, .now_mono = now_mono};

	amil_membership_foreach(r->cfg.m, expired_one, &x);
	return x.any;
}

/* The lowest alive node id removes a dead owner's names: in the map (one
 * remover, one delta; a concurrent remove elsewhere is harmless) and, in
 * CP mode, through REAP rounds (a majority must agree, so a minority
 * side never reaps). */
static void
reap(struct amil_registry *r, uint64_t now_mono)
{
	static struct reap_ctx x;
	struct lowest_ctx lc = {0};

	amil_membership_foreach(r->cfg.m, lowest_alive, &lc);
	if (lc.lowest != r->cfg.node_id)
		return;
	if (!any_expired(r, now_mono))
		return;                /* the common case: no scan at all */
	x.r = r;
	x.now_mono = now_mono;
	x.len = 0;
	x.oom = false;
	/* Every expired name in one pass, the removals in one message per
	 * peer. */
	amil_awormap_foreach(r->map, reap_map_one, &x);
	for (size_t off = 0; off < x.len; off += strlen(x.all + off) + 1) {
		uint8_t *delta = NULL;
		size_t dlen = 0;

		if (amil_awormap_remove(r->map, x.all + off, strlen(x.all + off), &delta, &dlen) != 0)
			continue;
		if (batch_add(r, delta, dlen) != 0)
			push_delta(r, delta, dlen);
		free(delta);
		r->reaped++;
	}
	batch_flush(r);
	if (r->cas == NULL || r->nreap_ops > 0)
		return;                /* one reaping round at a time */
	x.n = 0;
	amil_cas_foreach(r->cas, reap_cas_one, &x);
	for (unsigned i = 0; i < x.n && r->nreap_ops < REAP_MAX; i++) {
		uint64_t op;

		if (amil_cas_start(r->cas, now_mono, AMIL_CAS_REAP, x.names[i], strlen(x.names[i]),
				   x.owners[i], NULL, 0, &op) == 0)
			r->reap_ops[r->nreap_ops++] = op;
	}
}

/* 'U' from @from: an operator there unregistered one of our names. */
static void
receive_unregister(struct amil_registry *r, const uint8_t *buf, size_t len)
{
	char name[AMIL_AWORMAP_NAME_MAX + 1];
	struct amil_awormap_entry e;

	if (len < 2 || len - 1 > AMIL_AWORMAP_NAME_MAX || memchr(buf + 1, '\0', len - 1) != NULL) {
		r->bad++;
		return;
	}
	memcpy(name, buf + 1, len - 1);
	name[len - 1] = '\0';
	amil_ownset_del(r->own, name);
	if (amil_awormap_lookup(r->map, name, len - 1, &e) == 0 && e.owner == r->cfg.node_id)
		amil_registry_map_remove(r, name);
}

struct reassert_ctx {
	struct amil_registry *r;
	char (*gone)[AMIL_AWORMAP_NAME_MAX + 1];   /* taken by another since */
	unsigned ngone;
};

static int
reassert_one(void *ctx, const char *key, const char *value)
{
	struct reassert_ctx *x = ctx;
	struct amil_registry *r = x->r;
	struct amil_awormap_entry e;
	uint8_t *delta = NULL;
	size_t dlen = 0;

	if (amil_awormap_lookup(r->map, key, strlen(key), &e) == 0) {
		if (e.owner != r->cfg.node_id && x->ngone < REAP_MAX)
			snprintf(x->gone[x->ngone++], AMIL_AWORMAP_NAME_MAX + 1, "%s", key);
		return 0;
	}
	/* Ours, alive, and gone from the map: reaped by a side that thought
	 * us dead.  Put it back (one message per peer for all of them). */
	if (amil_awormap_put(r->map, real_ns(), key, strlen(key), r->cfg.node_id, value,
			     strlen(value), &delta, &dlen) != 0)
		return 0;
	if (batch_add(r, delta, dlen) != 0)
		push_delta(r, delta, dlen);
	free(delta);
	r->reasserted++;
	return 0;
}

/* After a change of the map's size (a join removed something): put back
 * our own entries that a reap removed; forget those another node took
 * legitimately since (registered after the reap, or won a conflict). */
static void
reassert(struct amil_registry *r)
{
	static char gone[REAP_MAX][AMIL_AWORMAP_NAME_MAX + 1];
	struct reassert_ctx x = {.r = r, .gone = gone};
	size_t count = amil_awormap_count(r->map);

	if (count == r->own_checked_count || amil_ownset_count(r->own) == 0) {
		r->own_checked_count = count;
		return;
	}
	amil_ownset_foreach(r->own, reassert_one, &x);
	batch_flush(r);
	for (unsigned i = 0; i < x.ngone; i++)
		amil_ownset_del(r->own, gone[i]);
	r->own_checked_count = amil_awormap_count(r->map);
}

/* ---- receiving ---------------------------------------------------------------- */

/*
 * Anti-entropy exchange (A asks B), bytes proportional to what differs:
 *   A -> B  G  A's digest (256 bucket hashes)
 *   B -> A  L  B's leaf hashes of the buckets that differ (256 per bucket)
 *   A -> B  S  A's state restricted to the leaves that differ (kind 3)
 *   A -> B  Q  those leaves: B answers with its own restricted state (S)
 * When only the causal contexts differ (no bucket does), the states carry
 * an empty mask (kind 2) and the contexts; B then also sends its digest
 * back (H) so that A sends what B lacks.
 */
static void
send_state(struct amil_registry *r, uint64_t to, const uint8_t *bucket_mask,
	   const uint8_t *leaf_mask)
{
	uint8_t *st = NULL;
	size_t stlen = 0;
	int rc = leaf_mask != NULL ? amil_awormap_encode_state_leaves(r->map, leaf_mask, &st, &stlen)
				   : amil_awormap_encode_state(r->map, bucket_mask, &st, &stlen);

	if (rc != 0)
		return;
	if (amil_registry_send(r, to, AMIL_REG_MSG_STATE, st, stlen) == 0)
		r->states_tx++;
	free(st);
}

static void
receive_digest(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	struct amil_awormap_digest theirs, ours;
	uint8_t mask[AMIL_AWORMAP_MASK_BYTES] = {0}, zero[AMIL_AWORMAP_MASK_BYTES] = {0};
	uint8_t dbuf[AMIL_AWORMAP_DIGEST_LEN], *lv = NULL;
	size_t lvlen = 0;

	if (amil_awormap_digest_decode(buf + 1, len - 1, &theirs) != 0) {
		r->bad++;
		return;
	}
	amil_awormap_digest_get(r->map, &ours);
	if (ours.root == theirs.root)
		return;
	amil_awormap_digest_diff(&ours, &theirs, mask);
	if (memcmp(mask, zero, sizeof(mask)) != 0) {
		/* Buckets differ: our leaves of those, the asker narrows down. */
		if (amil_awormap_leaves_encode(r->map, mask, &lv, &lvlen) == 0) {
			amil_registry_send(r, from, AMIL_REG_MSG_LEAVES, lv, lvlen);
			free(lv);
		}
		return;
	}
	/* Only the contexts differ: ours, and (when asked) our digest back so
	 * that the asker sends its context too.  A reply to our digest
	 * stops here (no ping-pong). */
	send_state(r, from, zero, NULL);
	if (buf[0] == AMIL_REG_MSG_DIGEST) {
		amil_awormap_digest_encode(&ours, dbuf);
		amil_registry_send(r, from, AMIL_REG_MSG_DIGEST_REPLY, dbuf, sizeof(dbuf));
	}
}

static void
receive_leaves(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	static uint8_t leaf_mask[AMIL_AWORMAP_LEAF_MASK_BYTES];
	int n;

	memset(leaf_mask, 0, sizeof(leaf_mask));
	n = amil_awormap_leaves_diff(r->map, buf + 1, len - 1, leaf_mask);
	if (n < 0) {
		r->bad++;
		return;
	}
	if (n == 0)
		return;                /* equal since: nothing to do */
	send_state(r, from, NULL, leaf_mask);
	amil_registry_send(r, from, AMIL_REG_MSG_LEAF_REQ, leaf_mask, sizeof(leaf_mask));
}

static void
receive_leaf_req(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	if (len != 1 + AMIL_AWORMAP_LEAF_MASK_BYTES) {
		r->bad++;
		return;
	}
	send_state(r, from, NULL, buf + 1);
}

static void
receive_batch(struct amil_registry *r, const uint8_t *buf, size_t len)
{
	size_t off = 1;

	r->batches_rx++;
	while (off + 4 <= len) {
		size_t n = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 |
			   (size_t)buf[off + 2] << 8 | buf[off + 3];

		off += 4;
		if (n > len - off) {
			r->bad++;
			return;
		}
		if (amil_awormap_join(r->map, real_ns(), buf + off, n, on_conflict, r) != 0)
			r->bad++;
		else
			r->deltas_rx++;
		off += n;
	}
	if (off != len)
		r->bad++;
	settle_conflicts(r);
}

int
amil_registry_receive(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	if (len < 1)
		return -ENOTSUP;
	switch (buf[0]) {
	case AMIL_REG_MSG_DELTA:
	case AMIL_REG_MSG_STATE:
		if (amil_awormap_join(r->map, real_ns(), buf + 1, len - 1, on_conflict, r) != 0) {
			r->bad++;
			return 0;
		}
		if (buf[0] == AMIL_REG_MSG_DELTA)
			r->deltas_rx++;
		else
			r->states_rx++;
		settle_conflicts(r);
		return 0;
	case AMIL_REG_MSG_DIGEST:
	case AMIL_REG_MSG_DIGEST_REPLY:
		receive_digest(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_BATCH:
		receive_batch(r, buf, len);
		return 0;
	case AMIL_REG_MSG_LEAVES:
		receive_leaves(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_UNREGISTER:
		receive_unregister(r, buf, len);
		return 0;
	case AMIL_REG_MSG_LEAF_REQ:
		receive_leaf_req(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_CAS:
		/* Errors (malformed, foreign) are counted by caspaxos.c. */
		if (r->cas != NULL)
			amil_cas_receive(r->cas, mono_ns(), from, buf, len);
		else
			r->bad++;      /* a CP peer in an AP cluster: a configuration error */
		return 0;
	}
	return -ENOTSUP;
}

/* ---- CP rounds ----------------------------------------------------------------- */

static void
cas_send(void *ctx, uint64_t to, const uint8_t *buf, size_t len)
{
	struct amil_registry *r = ctx;
	struct amil_member_info mi;

	/* caspaxos.c's messages already start with 'X'. */
	if (amil_membership_lookup(r->cfg.m, to, &mi) != 0 || mi.is_self)
		return;
	amil_transport_send(r->cfg.tr, to, (const char *)mi.addr, mi.addr_len, buf, len);
}

static bool
cas_alive(void *ctx, uint64_t node)
{
	struct amil_registry *r = ctx;
	struct amil_member_info mi;

	return amil_membership_lookup(r->cfg.m, node, &mi) == 0 && mi.state == AMIL_MEMBER_ALIVE;
}

static void
degraded_msg(const struct amil_registry *r, char *buf, size_t len)
{
	snprintf(buf, len,
		 "no majority of the configured cluster acknowledged (%u of %u needed): "
		 "this appliance is degraded",
		 amil_registry_quorum(r), amil_registry_cluster_size(r));
}

static void
cas_state_json(FILE *f, const char *name, size_t len, const struct amil_cas_state *st)
{
	char n[AMIL_CAS_NAME_MAX + 1], v[AMIL_CAS_VALUE_MAX + 1];

	memcpy(n, name, len);
	n[len] = '\0';
	memcpy(v, st->value, st->value_len);
	v[st->value_len] = '\0';
	fputs("{\"name\": ", f);
	amil_json_str(f, n);
	fprintf(f, ", \"owner\": %" PRIu64 ", \"value\": ", st->owner);
	amil_json_str(f, v);
	fprintf(f, ", \"version\": %" PRIu64 "}", st->version);
}

static void
send_held(struct amil_registry *r)
{
	char *out = NULL, msg[200];
	size_t olen = 0;
	FILE *f = open_memstream(&out, &olen);

	if (f == NULL)
		return;
	if (r->pending_batch) {
		fprintf(f,
			"{\"schema\": 1, \"ok\": %s, \"registered\": %" PRIu64
			", \"refused\": %" PRIu64 ", \"no_majority\": %" PRIu64,
			r->batch_refused + r->batch_timeout == 0 ? "true" : "false", r->batch_ok,
			r->batch_refused, r->batch_timeout);
		if (r->batch_first_error[0] != '\0') {
			fputs(", \"first_error\": ", f);
			amil_json_str(f, r->batch_first_error);
		}
		fprintf(f, ", \"names\": %zu}", amil_cas_count(r->cas));
	} else if (r->single_rc == 0) {
		fputs("{\"schema\": 1, \"ok\": true, \"entry\": ", f);
		if (r->single_st.present)
			cas_state_json(f, r->single_name, strlen(r->single_name), &r->single_st);
		else
			fputs("null", f);
		fprintf(f, ", \"names\": %zu}", amil_cas_count(r->cas));
	} else {
		switch (r->single_rc) {
		case -EEXIST:
		case -EPERM:
			snprintf(msg, sizeof(msg), "registered by node %" PRIu64, r->single_st.owner);
			break;
		case -ENOENT:
			snprintf(msg, sizeof(msg), "no such name");
			break;
		case -ETIMEDOUT:
			degraded_msg(r, msg, sizeof(msg));
			break;
		default:
			snprintf(msg, sizeof(msg), "%s", strerror(-r->single_rc));
		}
		fputs("{\"schema\": 1, \"error\": ", f);
		amil_json_str(f, msg);
		if (r->single_rc == -ETIMEDOUT)
			fputs(", \"degraded\": true", f);
		fputs("}", f);
	}
	if (fclose(f) == 0 && r->cfg.reply != NULL)
		r->cfg.reply(r->cfg.reply_ctx, out, olen);
	free(out);
	r->pending = false;
}

static void
cas_done(void *ctx, uint64_t op_id, int result, const char *name, size_t name_len,
	 const struct amil_cas_state *st)
{
	struct amil_registry *r = ctx;

	(void)name;
	(void)name_len;
	for (unsigned i = 0; i < r->nreap_ops; i++)
		if (r->reap_ops[i] == op_id) {
			if (result == 0)
				r->reaped++;
			r->reap_ops[i] = r->reap_ops[--r->nreap_ops];
			return;
		}
	if (!r->pending || r->pending_ops == 0)
		return;
	if (r->pending_batch) {
		if (result == 0) {
			r->batch_ok++;
		} else {
			if (result == -ETIMEDOUT)
				r->batch_timeout++;
			else
				r->batch_refused++;
			if (r->batch_first_error[0] == '\0') {
				char msg[120];

				if (result == -ETIMEDOUT)
					degraded_msg(r, msg, sizeof(msg));
				else
					snprintf(msg, sizeof(msg), "registered by node %" PRIu64,
						 st != NULL ? st->owner : 0);
				snprintf(r->batch_first_error, sizeof(r->batch_first_error),
					 "%.*s: %s", (int)(name_len > 32 ? 32 : name_len), name, msg);
			}
		}
	} else {
		r->single_rc = result;
		if (st != NULL)
			r->single_st = *st;
		else
			memset(&r->single_st, 0, sizeof(r->single_st));
	}
	if (--r->pending_ops == 0 && r->batch_cursor == NULL)
		send_held(r);
}

/* ---- control requests ---------------------------------------------------------- */

static void
entry_json(FILE *f, const struct amil_awormap_entry *e)
{
	char name[AMIL_AWORMAP_NAME_MAX + 1], val[AMIL_AWORMAP_VALUE_MAX + 1];

	memcpy(name, e->name, e->name_len);
	name[e->name_len] = '\0';
	memcpy(val, e->value, e->value_len);
	val[e->value_len] = '\0';
	fputs("{\"name\": ", f);
	amil_json_str(f, name);
	fprintf(f, ", \"owner\": %" PRIu64 ", \"value\": ", e->owner);
	amil_json_str(f, val);
	fprintf(f, ", \"hlc\": %" PRIu64 "}", e->hlc);
}

struct list_ctx {
	FILE *f;
	size_t n;
};

static int
list_map_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct list_ctx *x = ctx;

	if (amil_registry_is_internal(e->name, e->name_len))
		return 0;          /* group memberships and campaign totals: own commands */
	if (x->n++)
		fputs(", ", x->f);
	entry_json(x->f, e);
	return 0;
}

static int
list_cas_one(void *ctx, const char *name, size_t len, const struct amil_cas_state *st)
{
	struct list_ctx *x = ctx;

	if (x->n++)
		fputs(", ", x->f);
	cas_state_json(x->f, name, len, st);
	return 0;
}

static void
error_json(FILE *f, const char *msg)
{
	fputs("{\"schema\": 1, \"error\": ", f);
	amil_json_str(f, msg);
	fputs("}", f);
}

/* Names: 1..255 bytes, no blanks (the protocol splits on them), not a
 * reserved prefix. */
static const char *
name_problem(const char *name)
{
	if (name[0] == '\0')
		return "a name is needed";
	if (strlen(name) > AMIL_AWORMAP_NAME_MAX)
		return "the name is longer than 255 bytes";
	if (amil_registry_is_internal((const uint8_t *)name, strlen(name)))
		return "names starting with 'group:' or 'camp:' are reserved";
	return NULL;
}

/* AP: register one name here; refuse one another appliance owns (a
 * registration made concurrently across a partition is the conflict the
 * map resolves on heal). */
static int
ap_register(struct amil_registry *r, const char *name, const char *value, bool batch,
	    uint64_t *owner)
{
	struct amil_awormap_entry e;
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int rc;

	if (amil_awormap_lookup(r->map, name, strlen(name), &e) == 0 && e.owner != r->cfg.node_id) {
		*owner = e.owner;
		return -EEXIST;
	}
	rc = amil_awormap_put(r->map, real_ns(), name, strlen(name), r->cfg.node_id, value,
			      strlen(value), &delta, &dlen);
	if (rc != 0)
		return rc;
	if (batch) {
		rc = batch_add(r, delta, dlen);
		if (rc == 0 && r->blen >= BATCH_MSG_MAX)
			batch_flush(r);
	} else {
		push_delta(r, delta, dlen);
	}
	free(delta);
	if (rc == 0)
		amil_ownset_put(r->own, name, value);
	return rc;
}

/* One line of a batch: "NAME VALUE".  Returns NULL and fills @name and
 * @value, or why the line is refused. */
static const char *
batch_line(const char *p, size_t ll, char *name, char *value)
{
	char line[1400];
	const char *why;

	name[0] = value[0] = '\0';
	if (ll >= sizeof(line))
		return "a line longer than 1399 bytes";
	memcpy(line, p, ll);
	line[ll] = '\0';
	sscanf(line, "%256s %1025s", name, value);
	why = name_problem(name);
	if (why == NULL && strlen(value) > AMIL_AWORMAP_VALUE_MAX)
		why = "the value is longer than 1024 bytes";
	return why;
}

static void
batch_refuse(struct amil_registry *r, const char *name, const char *why)
{
	r->batch_refused++;
	if (r->batch_first_error[0] == '\0')
		snprintf(r->batch_first_error, sizeof(r->batch_first_error), "%.32s: %s", name, why);
}

/* CP: start rounds for the batch's next lines until caspaxos.c's in-flight
 * bound; called again from the tick as rounds finish.  True when every
 * line has been started. */
static bool
batch_pump(struct amil_registry *r)
{
	while (r->batch_cursor != NULL && *r->batch_cursor != '\0') {
		char name[AMIL_AWORMAP_NAME_MAX + 2], value[AMIL_AWORMAP_VALUE_MAX + 2];
		const char *p = r->batch_cursor, *end = strchr(p, '\n');
		size_t ll = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *why;
		uint64_t op;
		int rc;

		if (r->pending_ops >= BATCH_INFLIGHT)
			return false;          /* more as rounds finish */
		if (ll > 0) {
			why = batch_line(p, ll, name, value);
			if (why != NULL) {
				batch_refuse(r, name, why);
			} else {
				rc = amil_cas_start(r->cas, mono_ns(), AMIL_CAS_REGISTER, name,
						    strlen(name), r->cfg.node_id, value,
						    strlen(value), &op);
				if (rc == -EBUSY)
					return false;      /* more when rounds finish */
				if (rc != 0)
					batch_refuse(r, name, strerror(-rc));
				else
					r->pending_ops++;
			}
		}
		r->batch_cursor = end != NULL ? end + 1 : p + ll;
	}
	free(r->batch_req);
	r->batch_req = NULL;
	r->batch_cursor = NULL;
	return true;
}

/*
 * AP unregister.  Our own name: removed, pushed.  Another appliance's:
 * removed here and the owner told ('U'), so that it forgets the name too
 * and does not put it back when it re-asserts its names after a heal; an
 * owner that is not alive cannot be told and the name is refused (it goes
 * by the grace rule if the owner stays dead).  Returns 1 when it wrote
 * the reply itself.
 */
static int
ap_unregister(struct amil_registry *r, const char *name, FILE *f)
{
	struct amil_awormap_entry e;
	struct amil_member_info mi;
	uint64_t owner;

	if (amil_awormap_lookup(r->map, name, strlen(name), &e) != 0 || e.owner == r->cfg.node_id)
		return amil_registry_map_remove(r, name);
	owner = e.owner;
	if (amil_membership_lookup(r->cfg.m, owner, &mi) != 0 || mi.state != AMIL_MEMBER_ALIVE) {
		fprintf(f,
			"{\"schema\": 1, \"error\": \"registered by node %" PRIu64 ", which is not "
			"reachable now: its names go when it has been dead for the grace\"}",
			owner);
		return 1;
	}
	amil_registry_send(r, owner, AMIL_REG_MSG_UNREGISTER, (const uint8_t *)name, strlen(name));
	amil_registry_map_remove(r, name);
	fprintf(f, "{\"schema\": 1, \"ok\": true, \"owner_told\": %" PRIu64 ", \"names\": %zu}",
		owner, amil_awormap_count(r->map));
	return 1;
}

/* "registry-register-batch\nNAME VALUE\n...": many names in one request.
 * AP: applied at once, one message per peer.  CP: one round per name, as
 * many in flight as caspaxos.c allows; the reply waits for the last. */
static int
ctl_batch(struct amil_registry *r, const char *req, FILE *f)
{
	const char *p = strchr(req, '\n');

	r->batch_ok = r->batch_refused = r->batch_timeout = 0;
	r->batch_first_error[0] = '\0';
	r->pending_ops = 0;
	if (r->cas != NULL) {
		r->batch_req = strdup(p != NULL ? p + 1 : "");
		if (r->batch_req == NULL) {
			error_json(f, strerror(ENOMEM));
			return 0;
		}
		r->batch_cursor = r->batch_req;
		r->pending = true;
		r->pending_batch = true;
		if (batch_pump(r) && r->pending_ops == 0)
			send_held(r);      /* nothing started: answer now */
		return 1;
	}
	while (p != NULL && *p != '\0') {
		char name[AMIL_AWORMAP_NAME_MAX + 2], value[AMIL_AWORMAP_VALUE_MAX + 2];
		const char *line = p + 1, *end = strchr(line, '\n');
		size_t ll = end != NULL ? (size_t)(end - line) : strlen(line);
		const char *why;
		uint64_t owner = 0;
		int rc;

		p = end;
		if (ll == 0)
			continue;
		why = batch_line(line, ll, name, value);
		if (why != NULL) {
			batch_refuse(r, name, why);
			continue;
		}
		rc = ap_register(r, name, value, true, &owner);
		if (rc == -EEXIST) {
			char msg[64];

			snprintf(msg, sizeof(msg), "registered by node %" PRIu64, owner);
			batch_refuse(r, name, msg);
		} else if (rc != 0) {
			batch_refuse(r, name, strerror(-rc));
		} else {
			r->batch_ok++;
		}
	}
	batch_flush(r);
	fprintf(f,
		"{\"schema\": 1, \"ok\": %s, \"registered\": %" PRIu64 ", \"refused\": %" PRIu64
		", \"no_majority\": 0",
		r->batch_refused == 0 ? "true" : "false", r->batch_ok, r->batch_refused);
	if (r->batch_first_error[0] != '\0') {
		fputs(", \"first_error\": ", f);
		amil_json_str(f, r->batch_first_error);
	}
	fprintf(f, ", \"names\": %zu}", amil_awormap_count(r->map));
	return 0;
}

int
amil_registry_ctl(struct amil_registry *r, const char *cmd, const char *req, FILE *f)
{
	char name[AMIL_AWORMAP_NAME_MAX + 2] = "", value[AMIL_AWORMAP_VALUE_MAX + 2] = "";
	const char *why;
	uint64_t owner = 0, op;
	int rc;

	if (strncmp(cmd, "registry-", 9) != 0)
		return -ENOTSUP;
	if (strcmp(cmd, "registry-register-batch") == 0)
		return ctl_batch(r, req, f);
	sscanf(req, "%*s %256s %1025s", name, value);
	if (strcmp(cmd, "registry-list") == 0) {
		struct list_ctx x = {.f = f};

		fprintf(f, "{\"schema\": 1, \"mode\": \"%s\", \"names\": [",
			r->cas != NULL ? "cp" : "ap");
		if (r->cas != NULL)
			amil_cas_foreach(r->cas, list_cas_one, &x);
		else
			amil_awormap_foreach(r->map, list_map_one, &x);
		fprintf(f, "], \"count\": %zu}", x.n);
		return 0;
	}
	if (strcmp(cmd, "registry-get") != 0 && strcmp(cmd, "registry-register") != 0 &&
	    strcmp(cmd, "registry-unregister") != 0) {
		error_json(f, "unknown registry command (registry-list, registry-get, "
			      "registry-register, registry-unregister, registry-register-batch)");
		return 0;
	}
	why = name_problem(name);
	if (why != NULL) {
		error_json(f, why);
		return 0;
	}
	if (strlen(value) > AMIL_AWORMAP_VALUE_MAX) {
		error_json(f, "the value is longer than 1024 bytes");
		return 0;
	}
	if (strcmp(cmd, "registry-get") == 0) {
		if (r->cas != NULL) {
			struct amil_cas_state st;

			if (amil_cas_lookup(r->cas, name, strlen(name), &st) != 0) {
				error_json(f, "no such name");
				return 0;
			}
			fputs("{\"schema\": 1, \"entry\": ", f);
			cas_state_json(f, name, strlen(name), &st);
			fputs("}", f);
		} else {
			struct amil_awormap_entry e;

			if (amil_awormap_lookup(r->map, name, strlen(name), &e) != 0) {
				error_json(f, "no such name");
				return 0;
			}
			fputs("{\"schema\": 1, \"entry\": ", f);
			entry_json(f, &e);
			fputs("}", f);
		}
		return 0;
	}
	if (r->cas != NULL) {
		bool reg = strcmp(cmd, "registry-register") == 0;
		struct amil_cas_state st;

		/* Unregister from any appliance, as in AP mode: a compare-and-
		 * remove of the owner this appliance knows (refused if the name
		 * changed hands meanwhile). */
		owner = r->cfg.node_id;
		if (!reg && amil_cas_lookup(r->cas, name, strlen(name), &st) == 0)
			owner = st.owner;
		rc = amil_cas_start(r->cas, mono_ns(), reg ? AMIL_CAS_REGISTER : AMIL_CAS_UNREGISTER, name,
				    strlen(name), owner, value, strlen(value), &op);
		if (rc != 0) {
			error_json(f, rc == -EBUSY ? "too many registrations in flight, try again"
						   : strerror(-rc));
			return 0;
		}
		snprintf(r->single_name, sizeof(r->single_name), "%.255s", name);
		r->pending = true;
		r->pending_batch = false;
		r->pending_ops = 1;
		return 1;
	}
	if (strcmp(cmd, "registry-register") == 0) {
		rc = ap_register(r, name, value, false, &owner);
		if (rc == -EEXIST) {
			fprintf(f, "{\"schema\": 1, \"error\": \"registered by node %" PRIu64 "\"}",
				owner);
			return 0;
		}
	} else {
		rc = ap_unregister(r, name, f);
		if (rc == 1)
			return 0;          /* answered */
	}
	if (rc != 0) {
		error_json(f, rc == -ENOENT ? "no such name" : strerror(-rc));
		return 0;
	}
	/* Read-your-writes here; the delta went to every alive member. */
	fprintf(f, "{\"schema\": 1, \"ok\": true, \"names\": %zu}", amil_awormap_count(r->map));
	return 0;
}

bool
amil_registry_pending(const struct amil_registry *r)
{
	return r->pending;
}

bool
amil_registry_busy(const struct amil_registry *r)
{
	struct amil_cas_stats cs;

	if (r->cas == NULL)
		return false;
	amil_cas_stats_get(r->cas, &cs);
	return r->pending || r->nreap_ops > 0 ||
	       cs.ops_started > cs.ops_ok + cs.ops_refused + cs.ops_timeout;
}

/* ---- life cycle ------------------------------------------------------------------ */

struct amil_registry *
amil_registry_new(const struct amil_registry_config *cfg, uint64_t now_mono_ns)
{
	struct amil_registry *r;
	int err = ENOMEM;

	if (cfg->node_id == 0 || cfg->writer_id == 0 ||
	    (cfg->mode == AMIL_REGISTRY_CP && (cfg->members == NULL || cfg->n_members == 0))) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto fail;
	r->cfg = *cfg;
	/* A received HLC may pull the local clock at most 5 s ahead. */
	r->map = amil_awormap_new(cfg->writer_id, 5ull * 1000000000ull);
	if (r->map == NULL)
		goto fail_reg;
	r->own = amil_ownset_new();
	if (r->own == NULL)
		goto fail_map;
	if (cfg->mode == AMIL_REGISTRY_CP) {
		struct amil_cas_config cc = {
			.self = cfg->node_id,
			.members = cfg->members,
			.n_members = cfg->n_members,
			.log_path = cfg->cp_log,
			.send = cas_send,
			.alive = cas_alive,
			.done = cas_done,
			.ctx = r,
		};

		r->members = malloc(cfg->n_members * sizeof(uint64_t));
		if (r->members == NULL)
			goto fail_map;
		memcpy(r->members, cfg->members, cfg->n_members * sizeof(uint64_t));
		r->cfg.members = r->members;
		r->cas = amil_cas_new(&cc, now_mono_ns);
		if (r->cas == NULL) {
			err = errno;
			goto fail_members;
		}
	}
	r->cfg.cp_log = NULL;          /* not kept: the caller's string */
	return r;

fail_members:
	free(r->members);
fail_map:
	amil_ownset_destroy(r->own);
	amil_awormap_destroy(&r->map);
fail_reg:
	free(r);
fail:
	errno = err;
	return NULL;
}

void
amil_registry_destroy(struct amil_registry *r)
{
	if (r == NULL)
		return;
	amil_cas_destroy(r->cas);
	amil_awormap_destroy(&r->map);
	amil_ownset_destroy(r->own);
	free(r->members);
	free(r->bbuf);
	free(r->batch_req);
	free(r);
}

enum amil_registry_mode
amil_registry_mode(const struct amil_registry *r)
{
	return r->cas != NULL ? AMIL_REGISTRY_CP : AMIL_REGISTRY_AP;
}

unsigned
amil_registry_cluster_size(const struct amil_registry *r)
{
	return (unsigned)r->cfg.n_members;
}

unsigned
amil_registry_quorum(const struct amil_registry *r)
{
	return (unsigned)r->cfg.n_members / 2 + 1;
}

void
amil_registry_tick(struct amil_registry *r, uint64_t now_mono_ns)
{
	if (r->cas != NULL) {
		amil_cas_tick(r->cas, now_mono_ns);
		if (r->pending && r->batch_cursor != NULL && batch_pump(r) && r->pending_ops == 0)
			send_held(r);
	}
	urgent_rounds(r, now_mono_ns);
	if (now_mono_ns < r->ae_next_mono)
		return;
	anti_entropy(r);
	reap(r, now_mono_ns);
	reassert(r);
	r->ae_next_mono = now_mono_ns + AE_INTERVAL_NS;
}

int
amil_registry_flush(struct amil_registry *r)
{
	return r->cas != NULL ? amil_cas_flush(r->cas) : 0;
}

void
amil_registry_stats_get(const struct amil_registry *r, struct amil_registry_stats *out)
{
	struct amil_awormap_stats ms;
	struct amil_awormap_digest dg;

	memset(out, 0, sizeof(*out));
	amil_awormap_stats_get(r->map, &ms);
	amil_awormap_digest_get(r->map, &dg);
	out->map_root = dg.root;
	if (r->cas != NULL) {
		struct amil_cas_stats cs;

		amil_cas_stats_get(r->cas, &cs);
		out->names = amil_cas_count(r->cas);
		out->cp_ops_ok = cs.ops_ok;
		out->cp_ops_refused = cs.ops_refused;
		out->cp_ops_timeout = cs.ops_timeout;
		out->cp_nacks = cs.nacks;
		out->cp_retries = cs.retries;
		out->cp_bad = cs.msgs_bad + cs.msgs_foreign;
	} else {
		out->names = ms.names;     /* groups and totals included */
	}
	out->map_entries = ms.entries;
	out->map_memory_bytes = ms.memory_bytes;
	out->deltas_tx = r->deltas_tx;
	out->deltas_rx = r->deltas_rx;
	out->states_tx = r->states_tx;
	out->states_rx = r->states_rx;
	out->digests_tx = r->digests_tx;
	out->batches_tx = r->batches_tx;
	out->batches_rx = r->batches_rx;
	out->bad = r->bad;
	out->conflicts = r->conflicts;
	out->reaped = r->reaped;
	out->reasserted = r->reasserted;
}
