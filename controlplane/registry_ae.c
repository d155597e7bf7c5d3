/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The registry's AP anti-entropy and healing (see registry.h): the digest
 * exchange that repairs what a push lost, the urgent rounds after a peer
 * came up (amil_registry_peer_up()), the conflict rule's aftermath
 * (name_conflict), reaping of dead owners' names (the map's, and the
 * start of CP REAP rounds), and the re-assertion of our own entries that
 * a reap by the other side of a partition removed.  The state is struct
 * amil_registry (registry_impl.h), owned by registry.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hlc.h"
#include "ownset.h"
#include "registry.h"
#include "registry_impl.h"

/* ---- AP: anti-entropy, conflicts, reaping ---------------------------------- */

struct pick_ctx {
	struct amil_registry *r;
	uint64_t pick, seen;           /* reservoir pick of one alive peer */
};

/* Pick one alive member at random, and keep a CURVE connection open to
 * every alive member (a message to a peer without one is dropped, so the
 * first delta after a member came up must not wait for a connection). */
static int
pick_one(void *ctx, const struct amil_member_info *mi)
{
	struct pick_ctx *x = ctx;

	if (mi->is_self || mi->state != AMIL_MEMBER_ALIVE)
		return 0;
	amil_transport_connect(x->r->cfg.tr, mi->node_id, (const char *)mi->addr, mi->addr_len);
	if (randombytes_uniform((uint32_t)++x->seen) == 0)
		x->pick = mi->node_id;
	return 0;
}

/* Our digest to one random alive member; it answers with the buckets that
 * differ (and its own digest, so both sides repair). */
void
reg_anti_entropy(struct amil_registry *r)
{
	struct pick_ctx x = {.r = r};
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
	r->urgent[i].resent = false;
}

/* Digests to peers just up: at 0, 10, 30, 70, 150, 310 ms. */
void
reg_urgent_rounds(struct amil_registry *r, uint64_t now_mono)
{
	bool any = false;

	for (unsigned i = 0; i < r->nurgent;) {
		uint64_t node = r->urgent[i].node;
		unsigned step = r->urgent[i].step;
		bool drop = false;

		if (now_mono < r->urgent[i].next_mono) {
			i++;
			continue;
		}
		/* First what it missed of ours, from the log: a few bytes per
		 * delta (-EAGAIN: its connection is not up yet, next step). */
		if (!r->urgent[i].resent) {
			int rc = reg_log_resend(r, node);

			if (rc == 0) {
				r->urgent[i].resent = true;
			} else if (rc != -EAGAIN) {
				/* Not in the log any more: only a digest exchange can
				 * repair it, now. */
				r->urgent[i].resent = true;
				digest_to(r, node);
			}
		}
		/* Resent, but not acknowledged 150 ms later: the connection is
		 * stuck (an old TCP connection in retransmission backoff after
		 * a cut that membership saw only as a suspicion): a new one,
		 * and again. */
		if (step == 4 && r->urgent[i].resent && !reg_log_caught_up(r, node)) {
			struct amil_member_info mi;

			if (amil_membership_lookup(r->cfg.m, node, &mi) == 0)
				amil_transport_reconnect(r->cfg.tr, node, (const char *)mi.addr,
							 mi.addr_len);
			r->urgent[i].resent = false;
		}
		/* No connection through the whole schedule (0, 10, 30, 70,
		 * 150, 310 ms): a digest, for the periodic rounds to finish.
		 * Otherwise what others wrote (and it lacks) comes from them
		 * the same way, or from the periodic digest rounds: an
		 * exchange now would race those resends and ship the same
		 * entries twice. */
		if (step == 5 && !r->urgent[i].resent)
			digest_to(r, node);
		any = true;
		r->urgent[i].next_mono = now_mono + (10ull << step) * 1000000u;
		if (++r->urgent[i].step == 6)
			drop = true;
		if (drop) {
			r->urgent[i] = r->urgent[--r->nurgent];
			continue;
		}
		i++;
	}
	/* A member came back: what its side removed of ours (a reap while we
	 * were cut off) arrives with these exchanges; put it back now rather
	 * than at the next periodic round. */
	if (any)
		reg_reassert(r);
}

void
reg_on_conflict(void *ctx, const struct amil_awormap_entry *winner,
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
void
reg_settle_conflicts(struct amil_registry *r)
{
	for (unsigned i = 0; i < r->nlost; i++) {
		const char *name = r->lost[i];
		struct amil_event ev = {.type = AMIL_EV_NAME_CONFLICT,
					.node_id = r->lost_winner[i],
					.from_id = r->cfg.node_id,
					.at_ns = reg_real_ns()};
		uint8_t *delta = NULL;
		size_t dlen = 0;

		snprintf(ev.name, sizeof(ev.name), "%s", name);
		amil_events_add(r->cfg.ev, &ev);
		amil_ownset_del(r->own, name);         /* the rule gave it away */
		if (amil_awormap_resolve(r->map, name, strlen(name), &delta, &dlen) == 0) {
			reg_push_delta(r, delta, dlen);
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
	*dead_real_ns = reg_real_ns() - (now_mono - mi.since_ns);
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
void
reg_reap(struct amil_registry *r, uint64_t now_mono)
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
		if (reg_batch_add(r, delta, dlen) != 0)
			reg_push_delta(r, delta, dlen);
		free(delta);
		r->reaped++;
	}
	reg_batch_flush(r);
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
void
reg_receive_unregister(struct amil_registry *r, const uint8_t *buf, size_t len)
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
	if (amil_awormap_put(r->map, reg_real_ns(), key, strlen(key), r->cfg.node_id, value,
			     strlen(value), &delta, &dlen) != 0)
		return 0;
	if (reg_batch_add(r, delta, dlen) != 0)
		reg_push_delta(r, delta, dlen);
	free(delta);
	r->reasserted++;
	return 0;
}

/* After a change of the map's size (a join removed something): put back
 * our own entries that a reap removed; forget those another node took
 * legitimately since (registered after the reap, or won a conflict). */
void
reg_reassert(struct amil_registry *r)
{
	static char gone[REAP_MAX][AMIL_AWORMAP_NAME_MAX + 1];
	struct reassert_ctx x = {.r = r, .gone = gone};
	size_t count = amil_awormap_count(r->map);
	uint64_t now = reg_mono_ns();

	/* When the map's size changed, and every 2 s whatever it did: an
	 * entry of ours can also go without the count moving (one removed,
	 * another added in the same join).  Defence in depth: whatever took
	 * a name of ours while we are alive, we put it back with a new dot.
	 * (It once healed a real bug, a restricted join that took the
	 * sender's whole context; fixed in awormap.c since.) */
	if (amil_ownset_count(r->own) == 0 ||
	    (count == r->own_checked_count && now < r->own_next_full)) {
		r->own_checked_count = count;
		return;
	}
	r->own_next_full = now + 2000 * 1000000ull;
	amil_ownset_foreach(r->own, reassert_one, &x);
	reg_batch_flush(r);
	for (unsigned i = 0; i < x.ngone; i++)
		amil_ownset_del(r->own, gone[i]);
	r->own_checked_count = amil_awormap_count(r->map);
}

/* ---- the digest exchange ------------------------------------------------------ */

/*
 * Anti-entropy exchange (A asks B), bytes proportional to what differs:
 *   A -> B  G  A's digest (256 bucket hashes)
 *   B -> A  L  B's leaf hashes of the buckets that differ (256 per bucket)
 *   A -> B  S  A's state restricted to the leaves that differ (kind 3)
 *   A -> B  Q  those leaves: B answers with its own restricted state (S)
 * When only the causal contexts differ (equal roots), B sends its context
 * (a kind-5 message, joined only while the stores are still equal) and its
 * digest back (H) so that A sends its own.
 */
static void
send_state(struct amil_registry *r, uint64_t to, const uint8_t *leaf_mask)
{
	uint8_t *st = NULL;
	size_t stlen = 0;

	if (amil_awormap_encode_state_leaves(r->map, leaf_mask, &st, &stlen) != 0)
		return;
	if (amil_registry_send(r, to, AMIL_REG_MSG_STATE, st, stlen) == 0)
		r->states_tx++;
	free(st);
}

void
reg_receive_digest(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	struct amil_awormap_digest theirs, ours;
	uint8_t mask[AMIL_AWORMAP_MASK_BYTES] = {0};
	uint8_t dbuf[AMIL_AWORMAP_DIGEST_LEN], *msg = NULL;
	size_t mlen = 0;

	if (amil_awormap_digest_decode(buf + 1, len - 1, &theirs) != 0) {
		r->bad++;
		return;
	}
	amil_awormap_digest_get(r->map, &ours);
	if (ours.root != theirs.root) {
		/* Buckets differ: our leaves of those, the asker narrows
		 * down. */
		amil_awormap_digest_diff(&ours, &theirs, mask);
		if (amil_awormap_leaves_encode(r->map, mask, &msg, &mlen) == 0) {
			amil_registry_send(r, from, AMIL_REG_MSG_LEAVES, msg, mlen);
			free(msg);
		}
		return;
	}
	if (ours.ctx == theirs.ctx)
		return;                /* the same */
	/* Equal stores, different contexts (one missed a put and its
	 * remove): our context (joined there only while the stores are still
	 * equal, awormap.h), and when asked our digest back so that the asker
	 * sends its own.  A reply to our digest stops here. */
	if (amil_awormap_encode_context(r->map, &msg, &mlen) == 0) {
		if (amil_registry_send(r, from, AMIL_REG_MSG_STATE, msg, mlen) == 0)
			r->states_tx++;
		free(msg);
	}
	if (buf[0] == AMIL_REG_MSG_DIGEST) {
		amil_awormap_digest_encode(&ours, dbuf);
		amil_registry_send(r, from, AMIL_REG_MSG_DIGEST_REPLY, dbuf, sizeof(dbuf));
	}
}

void
reg_receive_leaves(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
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
	send_state(r, from, leaf_mask);
	amil_registry_send(r, from, AMIL_REG_MSG_LEAF_REQ, leaf_mask, sizeof(leaf_mask));
}

void
reg_receive_leaf_req(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	if (len != 1 + AMIL_AWORMAP_LEAF_MASK_BYTES) {
		r->bad++;
		return;
	}
	send_state(r, from, buf + 1);
}

