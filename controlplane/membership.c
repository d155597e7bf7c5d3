/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * SWIM + Lifeguard membership core.  The protocol is described in
 * membership.h; this file is organised as: state, helpers (random, table,
 * gossip), message building, the state machine (apply one update), probes,
 * receive, tick, public accessors.
 *
 * Sizes: the member table is max_members slots, slot 0 is always this node.
 * Everything is scanned linearly: a cluster is a handful to a few dozen
 * appliances, and a scan of 64 records per message costs less than the
 * bookkeeping an index would need.  The relay table (indirect probes we run
 * for others) has max_members slots; when full the oldest is dropped, which
 * only costs the asker a NACK.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"

#define CONFIRM_MAX 8   /* distinct confirmers remembered per suspicion */

struct member {
	uint64_t id;                 /* 0: free slot */
	uint64_t from_id;            /* who declared the current state */
	uint64_t since_ns;           /* last state change */
	uint64_t suspect_start_ns;   /* valid in SUSPECT */
	uint64_t confirmers[CONFIRM_MAX];
	uint32_t incarnation;
	uint8_t state;               /* enum amil_member_state */
	uint8_t pending;             /* seed that never answered: not a member yet */
	uint8_t seed;                /* from add_seed(): reverts to pending when reaped */
	uint8_t n_confirm;           /* confirmers used */
	uint8_t gossip_left;         /* piggyback transmissions still due */
	uint8_t name_len;
	uint8_t addr_len;
	char name[AMIL_MEMBERSHIP_NAME_MAX + 1];
	uint8_t addr[AMIL_MEMBERSHIP_ADDR_MAX];
	/* A seed that does not answer is asked again with backoff. */
	uint64_t seed_next_ns;
	uint8_t seed_backoff;        /* next wait: reconnect_interval << this */
};

/* Seeds that do not answer: 1, 2, 4, 8, 8, ... reconnect intervals apart. */
#define SEED_BACKOFF_MAX 3

struct probe {
	bool active;
	bool acked;
	bool indirect_sent;
	uint32_t seq;
	uint64_t target;
	uint64_t indirect_at_ns;     /* direct timeout: re-ping + PING_REQs */
	uint32_t expected_nacks;
	uint32_t nacks;
};

/* An indirect probe we run for another member. */
struct relay {
	bool used;
	uint32_t seq;                /* our PING's seq */
	uint32_t origin_seq;         /* the asker's probe seq, echoed back */
	uint64_t origin;
	uint64_t target;
	uint64_t deadline_ns;        /* NACK the asker if no ACK by then */
};

struct amil_membership {
	uint64_t cluster_id;
	uint64_t self_id;
	struct amil_membership_timers t;
	amil_membership_send_fn send;
	void *send_ctx;
	amil_membership_event_fn on_event;
	void *event_ctx;

	struct member *mem;          /* max slots, [0] = self */
	uint32_t max;
	uint32_t *order;             /* probe order: slot numbers, no self */
	uint32_t order_n;
	uint32_t order_idx;
	struct relay *relays;        /* max entries */

	struct probe probe;
	uint64_t next_probe_ns;
	uint64_t next_reconnect_ns;
	uint64_t rng;
	uint32_t seq;
	uint32_t awareness;          /* Lifeguard LHM, 0..awareness_max-1 */
	bool leaving;
	bool quiet;
	uint64_t leave_deadline_ns;

	struct amil_membership_counters c;
	/* Scratch, so nothing is allocated per message.  Separate in and out
	 * buffers: replies are built while the received message is in use. */
	struct amil_mwire_msg in;
	struct amil_mwire_msg out;
	uint8_t buf[AMIL_MWIRE_MSG_MAX];
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* splitmix64: tiny, seedable with any value (0 included), good enough to
 * spread probes; not for anything secret. */
static uint64_t
rnd(struct amil_membership *m)
{
	uint64_t z = (m->rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t
rnd_below(struct amil_membership *m, uint32_t n)
{
	return n ? (uint32_t)(rnd(m) % n) : 0;
}

static struct member *
self(struct amil_membership *m)
{
	return &m->mem[0];
}

static struct member *
find(const struct amil_membership *m, uint64_t id)
{
	for (uint32_t i = 0; i < m->max; i++)
		if (m->mem[i].id == id)
			return &m->mem[i];
	return NULL;
}

/* A member that takes part in probing and counts towards n. */
static bool
live(const struct member *r)
{
	return r->id != 0 && !r->pending &&
	       (r->state == AMIL_MEMBER_ALIVE || r->state == AMIL_MEMBER_SUSPECT);
}

static uint32_t
live_count(const struct amil_membership *m)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->max; i++)
		n += live(&m->mem[i]);
	return n;
}

static uint8_t
retransmit_limit(const struct amil_membership *m)
{
	uint32_t n = live_count(m) + 1, lg = 0, lim;

	for (uint32_t p = 1; p < n; p *= 10)   /* ceil(log10(n + 1)) */
		lg++;
	lim = m->t.retransmit_mult * (lg ? lg : 1);
	return lim > 255 ? 255 : (uint8_t)lim;
}

static void
gossip(struct amil_membership *m, struct member *r)
{
	r->gossip_left = retransmit_limit(m);
}

static uint64_t
scaled(const struct amil_membership *m, uint64_t ns)
{
	return ns * (m->awareness + 1);
}

static void
health(struct amil_membership *m, int delta)
{
	int64_t a = (int64_t)m->awareness + delta;

	if (a < 0)
		a = 0;
	if (a > (int64_t)m->t.awareness_max - 1)
		a = (int64_t)m->t.awareness_max - 1;
	m->awareness = (uint32_t)a;
}

static void
emit(struct amil_membership *m, uint64_t now, uint8_t type, const struct member *r)
{
	struct amil_membership_event ev = {
		.type = type, .node_id = r->id, .incarnation = r->incarnation,
		.from_id = r->from_id, .at_ns = now, .name = r->name,
	};

	if (m->on_event)
		m->on_event(m->event_ctx, &ev);
}

static void
set_state(struct member *r, uint64_t now, uint8_t state, uint32_t inc, uint64_t from)
{
	r->state = state;
	r->incarnation = inc;
	r->from_id = from;
	r->since_ns = now;
	r->n_confirm = 0;
	if (state == AMIL_MEMBER_SUSPECT)
		r->suspect_start_ns = now;
}

static void
order_remove(struct amil_membership *m, uint32_t slot)
{
	for (uint32_t i = 0; i < m->order_n; i++) {
		if (m->order[i] != slot)
			continue;
		memmove(&m->order[i], &m->order[i + 1], (m->order_n - i - 1) * sizeof(*m->order));
		m->order_n--;
		if (i < m->order_idx)
			m->order_idx--;
		return;
	}
}

/* SWIM: a new member goes to a random place in the rest of this round, so
 * it is probed within one round without biasing the order. */
static void
order_insert(struct amil_membership *m, uint32_t slot)
{
	uint32_t j;

	m->order[m->order_n++] = slot;
	j = m->order_idx + rnd_below(m, m->order_n - m->order_idx);
	m->order[m->order_n - 1] = m->order[j];
	m->order[j] = slot;
}

static struct member *
alloc_slot(struct amil_membership *m, uint64_t id)
{
	for (uint32_t i = 1; i < m->max; i++) {
		struct member *r = &m->mem[i];

		if (r->id != 0)
			continue;
		memset(r, 0, sizeof(*r));
		r->id = id;
		order_insert(m, i);
		return r;
	}
	m->c.table_full_dropped++;
	return NULL;
}

static void
free_slot(struct amil_membership *m, struct member *r)
{
	order_remove(m, (uint32_t)(r - m->mem));
	memset(r, 0, sizeof(*r));
}

static void
copy_identity(struct member *r, const struct amil_mwire_update *u)
{
	memcpy(r->name, u->name, u->name_len);
	r->name[u->name_len] = '\0';
	r->name_len = u->name_len;
	memcpy(r->addr, u->addr, u->addr_len);
	r->addr_len = u->addr_len;
}

/* ------------------------------------------------------------------ */
/* Building and sending messages                                       */

static void
put_update(struct amil_mwire_update *u, const struct member *r)
{
	u->node_id = r->id;
	u->from_id = r->from_id;
	u->incarnation = r->incarnation;
	u->state = r->state;
	/* Identity matters only to learn a member; SUSPECT/DEAD claims are
	 * about one we must already know, so they travel without it. */
	if (r->state == AMIL_MEMBER_ALIVE || r->state == AMIL_MEMBER_LEFT) {
		u->name_len = r->name_len;
		memcpy(u->name, r->name, r->name_len);
		u->addr_len = r->addr_len;
		memcpy(u->addr, r->addr, r->addr_len);
	} else {
		u->name_len = 0;
		u->addr_len = 0;
	}
}


/* Fill the updates: our own record (how peers learn us and our
 * refutations), then our non-alive claim about the recipient (Lifeguard's
 * buddy system: the one concerned hears it first), then queued gossip,
 * least-sent first. */
static void
piggyback(struct amil_membership *m, struct amil_mwire_msg *msg, const struct member *to)
{
	const struct member *chosen[AMIL_MWIRE_UPDATES_MAX];
	uint32_t n_chosen = 0, cap = m->t.piggyback_max;

	msg->n_updates = 0;
	put_update(&msg->updates[msg->n_updates++], self(m));
	if (to && !to->pending && to->state != AMIL_MEMBER_ALIVE && msg->n_updates < cap)
		put_update(&msg->updates[msg->n_updates++], to);
	while (msg->n_updates < cap) {
		struct member *best = NULL;

		for (uint32_t i = 1; i < m->max; i++) {
			struct member *r = &m->mem[i];
			bool dup = false;

			if (r->id == 0 || r->pending || r->gossip_left == 0 || r == to)
				continue;
			for (uint32_t j = 0; j < n_chosen; j++)
				dup |= chosen[j] == r;
			if (!dup && (!best || r->gossip_left > best->gossip_left))
				best = r;
		}
		if (!best)
			break;
		best->gossip_left--;
		chosen[n_chosen++] = best;
		put_update(&msg->updates[msg->n_updates++], best);
	}
}

/* Send to @to_id; @to is its record when we have one (for the address and
 * the buddy claim), NULL otherwise (the transport resolves the id). */
static void
send_msg(struct amil_membership *m, uint64_t to_id, const struct member *to, uint8_t type,
	 uint64_t target, uint64_t origin, uint32_t seq)
{
	struct amil_mwire_msg *msg = &m->out;
	int len;

	msg->type = type;
	msg->cluster_id = m->cluster_id;
	msg->sender = m->self_id;
	msg->target = target;
	msg->origin = origin;
	msg->seq = seq;
	piggyback(m, msg, to);
	len = amil_mwire_encode(msg, m->buf, sizeof(m->buf));
	if (len < 0) {
		m->c.send_errors++;
		return;
	}
	m->c.msgs_sent++;
	m->send(m->send_ctx, to_id, to ? to->addr : NULL, to ? to->addr_len : 0, m->buf,
		(size_t)len);
}

static void
send_to(struct amil_membership *m, const struct member *to, uint8_t type, uint64_t target,
	uint64_t origin, uint32_t seq)
{
	send_msg(m, to->id, to, type, target, origin, seq);
}

/* Choose up to @k distinct ALIVE members other than @exclude, uniformly
 * (selection sampling, Knuth's algorithm S: one pass, no scratch). */
static uint32_t
pick_alive(struct amil_membership *m, uint64_t exclude, uint32_t k, struct member **out)
{
	uint32_t cand = 0, got = 0;

	for (uint32_t i = 1; i < m->max; i++) {
		const struct member *r = &m->mem[i];

		cand += live(r) && r->state == AMIL_MEMBER_ALIVE && r->id != exclude;
	}
	for (uint32_t i = 1; i < m->max && got < k && cand > 0; i++) {
		struct member *r = &m->mem[i];

		if (!(live(r) && r->state == AMIL_MEMBER_ALIVE && r->id != exclude))
			continue;
		if (rnd_below(m, cand) < k - got)
			out[got++] = r;
		cand--;
	}
	return got;
}

/* ------------------------------------------------------------------ */
/* State machine                                                       */

static uint64_t
suspicion_timeout(const struct amil_membership *m, const struct member *r)
{
	uint32_t n = live_count(m), k = m->t.suspicion_confirmations;
	double scale = n > 10 ? log10((double)n) : 1.0;
	double min = (double)m->t.suspicion_min_ns * scale;
	double max = min * m->t.suspicion_max_mult, t;

	/* Lifeguard: expect at most n - 2 confirmations (everyone but us and
	 * the suspect); with none possible the minimum is all we can do. */
	if (k > (n >= 2 ? n - 2 : 0))
		k = n >= 2 ? n - 2 : 0;
	if (k == 0 || r->n_confirm >= k)
		return (uint64_t)min;
	t = max - (max - min) * log(r->n_confirm + 1.0) / log(k + 1.0);
	return t < min ? (uint64_t)min : (uint64_t)t;
}

static void
suspect(struct amil_membership *m, uint64_t now, struct member *r, uint32_t inc, uint64_t from)
{
	bool was_alive = r->state == AMIL_MEMBER_ALIVE;

	set_state(r, now, AMIL_MEMBER_SUSPECT, inc, from);
	gossip(m, r);
	if (!was_alive)
		return;
	m->c.suspicions++;
	if (from == m->self_id)
		m->c.suspicions_raised++;
	emit(m, now, AMIL_MEMBERSHIP_EV_SUSPECT, r);
}

static bool
confirm(struct amil_membership *m, struct member *r, uint64_t from)
{
	if (from == r->from_id || from == r->id || r->n_confirm == CONFIRM_MAX)
		return false;
	for (uint32_t i = 0; i < r->n_confirm; i++)
		if (r->confirmers[i] == from)
			return false;
	r->confirmers[r->n_confirm++] = from;
	m->c.confirmations++;
	return true;
}

/* Our own probe failed on a member someone else already suspects.  We
 * become the suspicion's declarer in what we gossip and keep the earlier
 * declarer as a confirmer: with one gossip entry per member, this is how
 * our independent confirmation reaches the others' timers. */
static void
confirm_own(struct amil_membership *m, struct member *r)
{
	uint64_t prev = r->from_id;
	bool had_self = false;

	if (prev == m->self_id)
		return;
	for (uint32_t i = 0; i < r->n_confirm; i++) {
		if (r->confirmers[i] == m->self_id) {
			r->confirmers[i] = prev;
			had_self = true;
		}
	}
	r->from_id = m->self_id;
	if (!had_self && r->n_confirm < CONFIRM_MAX) {
		r->confirmers[r->n_confirm++] = prev;
		m->c.confirmations++;
	}
	gossip(m, r);
}

static void
declare_dead(struct amil_membership *m, uint64_t now, struct member *r, uint32_t inc,
	     uint64_t from)
{
	set_state(r, now, AMIL_MEMBER_DEAD, inc, from);
	gossip(m, r);
	emit(m, now, AMIL_MEMBERSHIP_EV_NODEDOWN, r);
}

/* A claim about ourselves: outbid it with a higher incarnation.  While
 * leaving we outbid too, but keep saying LEFT. */
static void
apply_self(struct amil_membership *m, const struct amil_mwire_update *u)
{
	struct member *s = self(m), *accuser, *to[16];
	uint32_t k = m->t.indirect_probes < 16 ? m->t.indirect_probes : 16, n;

	if (u->incarnation < s->incarnation)
		return;
	if (u->incarnation == s->incarnation && u->state == s->state)
		return;
	s->incarnation = u->incarnation + 1;
	if (m->leaving)
		return;
	m->c.refutations++;
	/* Lifeguard: having to refute means others could not reach us in
	 * time; we may be the slow one, so probe more gently. */
	health(m, +1);
	/* Tell the accuser and k others at once rather than wait for gossip:
	 * every member that heard the claim runs its own timer, the accuser's
	 * first, and in a small cluster we may not exchange a message with
	 * it for a whole round.  The ACKs are ignored; the PINGs carry our
	 * new record, and each receiver gossips it on.  Refutations are
	 * rare, so the extra messages cost nothing in steady state. */
	accuser = find(m, u->from_id);
	if (accuser && accuser != s && live(accuser))
		send_to(m, accuser, AMIL_MWIRE_PING, accuser->id, 0, ++m->seq);
	n = pick_alive(m, accuser ? accuser->id : 0, k, to);
	for (uint32_t i = 0; i < n; i++)
		send_to(m, to[i], AMIL_MWIRE_PING, to[i]->id, 0, ++m->seq);
}

static void
apply(struct amil_membership *m, uint64_t now, const struct amil_mwire_update *u)
{
	struct member *r;
	uint8_t prev;

	m->c.updates_received++;
	if (u->node_id == m->self_id) {
		apply_self(m, u);
		return;
	}
	r = find(m, u->node_id);
	if (r == NULL || r->pending) {
		/* Members are learned from their own ALIVE only: a rumour of
		 * the death of a node we never knew tells us nothing useful. */
		if (u->state != AMIL_MEMBER_ALIVE)
			return;
		if (r == NULL && (r = alloc_slot(m, u->node_id)) == NULL)
			return;
		r->pending = 0;
		copy_identity(r, u);
		set_state(r, now, AMIL_MEMBER_ALIVE, u->incarnation, u->node_id);
		gossip(m, r);
		emit(m, now, AMIL_MEMBERSHIP_EV_NODEUP, r);
		return;
	}
	switch (u->state) {
	case AMIL_MEMBER_ALIVE:
		if (u->incarnation <= r->incarnation)
			return;
		prev = r->state;
		copy_identity(r, u);
		set_state(r, now, AMIL_MEMBER_ALIVE, u->incarnation, u->node_id);
		gossip(m, r);
		if (prev == AMIL_MEMBER_SUSPECT) {
			m->c.false_suspicions++;
			emit(m, now, AMIL_MEMBERSHIP_EV_UNSUSPECT, r);
		} else if (prev != AMIL_MEMBER_ALIVE) {
			emit(m, now, AMIL_MEMBERSHIP_EV_NODEUP, r);
		}
		return;
	case AMIL_MEMBER_SUSPECT:
		if (r->state == AMIL_MEMBER_DEAD || r->state == AMIL_MEMBER_LEFT ||
		    u->incarnation < r->incarnation)
			return;
		if (r->state == AMIL_MEMBER_SUSPECT && u->incarnation == r->incarnation) {
			confirm(m, r, u->from_id);
			return;
		}
		suspect(m, now, r, u->incarnation, u->from_id);
		return;
	case AMIL_MEMBER_DEAD:
		if (r->state == AMIL_MEMBER_LEFT || u->incarnation < r->incarnation)
			return;
		if (r->state == AMIL_MEMBER_DEAD) {
			r->incarnation = u->incarnation;
			return;
		}
		declare_dead(m, now, r, u->incarnation, u->from_id);
		return;
	case AMIL_MEMBER_LEFT:
		/* Only a node can say it left; anyone else's LEFT is a lie or
		 * a bug, and would silence a live member for good. */
		if (u->from_id != u->node_id || r->state == AMIL_MEMBER_LEFT ||
		    u->incarnation < r->incarnation)
			return;
		set_state(r, now, AMIL_MEMBER_LEFT, u->incarnation, u->node_id);
		gossip(m, r);
		emit(m, now, AMIL_MEMBERSHIP_EV_LEFT, r);
		return;
	default:
		return;  /* decode rejects unknown states */
	}
}

/* ------------------------------------------------------------------ */
/* Probing                                                             */

static struct member *
next_target(struct amil_membership *m)
{
	for (int pass = 0; pass < 2; pass++) {
		while (m->order_idx < m->order_n) {
			struct member *r = &m->mem[m->order[m->order_idx++]];

			if (live(r))
				return r;
		}
		/* End of a round: a fresh shuffle (Fisher-Yates), so every
		 * member is probed once per round in an order no observer
		 * can predict, which bounds the worst-case detection time. */
		for (uint32_t i = m->order_n; i > 1; i--) {
			uint32_t j = rnd_below(m, i), tmp = m->order[i - 1];

			m->order[i - 1] = m->order[j];
			m->order[j] = tmp;
		}
		m->order_idx = 0;
	}
	return NULL;
}

static void
finish_probe(struct amil_membership *m, uint64_t now)
{
	struct probe *p = &m->probe;
	struct member *r;

	if (!p->active)
		return;
	p->active = false;
	if (p->acked)
		return;
	m->c.probe_failures++;
	/* Lifeguard: helpers that stayed silent too suggest the problem is
	 * on our side; with no helper asked, count the failure itself. */
	if (p->expected_nacks > 0)
		health(m, (int)(p->expected_nacks - (p->nacks < p->expected_nacks ?
						      p->nacks : p->expected_nacks)));
	else
		health(m, +1);
	r = find(m, p->target);
	if (r == NULL || !live(r) || m->leaving)
		return;
	if (r->state == AMIL_MEMBER_ALIVE)
		suspect(m, now, r, r->incarnation, m->self_id);
	else
		confirm_own(m, r);
}

static void
start_probe(struct amil_membership *m, uint64_t now)
{
	struct probe *p = &m->probe;
	struct member *r = next_target(m);

	m->next_probe_ns = now + scaled(m, m->t.probe_interval_ns);
	if (r == NULL)
		return;
	memset(p, 0, sizeof(*p));
	p->active = true;
	p->seq = ++m->seq;
	p->target = r->id;
	p->indirect_at_ns = now + scaled(m, m->t.probe_timeout_ns);
	m->c.probes_sent++;
	send_to(m, r, AMIL_MWIRE_PING, r->id, 0, p->seq);
}

/* Direct timeout: ping once more (a single lost datagram should not cost a
 * suspicion) and ask k helpers, whose path to the target may be fine. */
static void
probe_indirect(struct amil_membership *m)
{
	struct probe *p = &m->probe;
	struct member *helpers[16], *r = find(m, p->target);
	uint32_t k = m->t.indirect_probes < 16 ? m->t.indirect_probes : 16, n;

	p->indirect_sent = true;
	if (r == NULL || !live(r))
		return;
	m->c.probes_sent++;
	send_to(m, r, AMIL_MWIRE_PING, r->id, 0, p->seq);
	n = pick_alive(m, r->id, k, helpers);
	for (uint32_t i = 0; i < n; i++) {
		m->c.indirect_probes_sent++;
		p->expected_nacks++;
		send_to(m, helpers[i], AMIL_MWIRE_PING_REQ, r->id, 0, p->seq);
	}
}

static void
relay_start(struct amil_membership *m, uint64_t now, uint64_t origin, uint64_t target,
	    uint32_t origin_seq)
{
	struct member *t = find(m, target);
	struct relay *rl = NULL;

	if (t == NULL || target == m->self_id)
		return;
	for (uint32_t i = 0; i < m->max; i++) {
		struct relay *x = &m->relays[i];

		if (!x->used) {
			rl = x;
			break;
		}
		if (rl == NULL || x->deadline_ns < rl->deadline_ns)
			rl = x;  /* full: replace the oldest */
	}
	rl->used = true;
	rl->seq = ++m->seq;
	rl->origin_seq = origin_seq;
	rl->origin = origin;
	rl->target = target;
	rl->deadline_ns = now + m->t.probe_timeout_ns;
	m->c.indirect_probes_served++;
	send_to(m, t, AMIL_MWIRE_PING, target, origin, rl->seq);
}

static void
on_ack(struct amil_membership *m, uint64_t from, const struct amil_mwire_msg *msg)
{
	struct probe *p = &m->probe;

	if (p->active && !p->acked && msg->seq == p->seq && msg->target == p->target) {
		p->acked = true;
		m->c.acks_received++;
		health(m, -1);
		return;
	}
	for (uint32_t i = 0; i < m->max; i++) {
		struct relay *rl = &m->relays[i];
		struct member *o;

		if (!rl->used || rl->seq != msg->seq || rl->target != msg->target ||
		    from != rl->target)
			continue;
		rl->used = false;
		o = find(m, rl->origin);
		send_msg(m, rl->origin, o, AMIL_MWIRE_ACK, rl->target, rl->origin, rl->origin_seq);
		return;
	}
}

static void
on_nack(struct amil_membership *m, const struct amil_mwire_msg *msg)
{
	struct probe *p = &m->probe;

	m->c.nacks_received++;
	if (p->active && msg->seq == p->seq && msg->target == p->target)
		p->nacks++;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

int
amil_membership_config_init(struct amil_membership_config *cfg,
			    enum amil_membership_profile profile)
{
	const uint64_t ms = 1000000ull;

	memset(cfg, 0, sizeof(*cfg));
	switch (profile) {
	case AMIL_MEMBERSHIP_LAN:
		cfg->timers = (struct amil_membership_timers){
			.probe_interval_ns = 100 * ms, .probe_timeout_ns = 40 * ms,
			.indirect_probes = 3, .suspicion_min_ns = 150 * ms,
			.suspicion_max_mult = 4, .suspicion_confirmations = 3,
			.awareness_max = 8, .retransmit_mult = 4, .piggyback_max = 6,
			.reconnect_interval_ns = 50 * ms, .reap_ns = 60000 * ms,
			.leave_linger_ns = 500 * ms,
		};
		break;
	case AMIL_MEMBERSHIP_WAN:
		cfg->timers = (struct amil_membership_timers){
			.probe_interval_ns = 1000 * ms, .probe_timeout_ns = 500 * ms,
			.indirect_probes = 3, .suspicion_min_ns = 3000 * ms,
			.suspicion_max_mult = 3, .suspicion_confirmations = 3,
			.awareness_max = 8, .retransmit_mult = 4, .piggyback_max = 6,
			.reconnect_interval_ns = 5000 * ms, .reap_ns = 600000 * ms,
			.leave_linger_ns = 5000 * ms,
		};
		break;
	default:
		return -EINVAL;
	}
	cfg->max_members = 64;
	return 0;
}

static bool
config_ok(const struct amil_membership_config *c)
{
	const struct amil_membership_timers *t = &c->timers;

	return c->self_id != 0 && c->name != NULL && strlen(c->name) <= AMIL_MEMBERSHIP_NAME_MAX &&
	       c->addr_len <= AMIL_MEMBERSHIP_ADDR_MAX && (c->addr != NULL || c->addr_len == 0) &&
	       c->send != NULL && c->max_members >= 2 && c->max_members <= 65535 &&
	       t->probe_interval_ns > 0 && t->probe_timeout_ns > 0 &&
	       t->probe_timeout_ns < t->probe_interval_ns && t->suspicion_min_ns > 0 &&
	       t->suspicion_max_mult >= 1 && t->awareness_max >= 1 && t->retransmit_mult >= 1 &&
	       t->piggyback_max >= 1 && t->piggyback_max <= AMIL_MWIRE_UPDATES_MAX &&
	       t->reconnect_interval_ns > 0 && t->reap_ns > 0;
}

struct amil_membership *
amil_membership_new(const struct amil_membership_config *cfg, uint64_t now_ns)
{
	struct amil_membership *m;
	struct member *s;

	if (cfg == NULL || !config_ok(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto fail_self;
	m->mem = calloc(cfg->max_members, sizeof(*m->mem));
	if (m->mem == NULL)
		goto fail_mem;
	m->order = calloc(cfg->max_members, sizeof(*m->order));
	if (m->order == NULL)
		goto fail_order;
	m->relays = calloc(cfg->max_members, sizeof(*m->relays));
	if (m->relays == NULL)
		goto fail_relays;

	m->cluster_id = cfg->cluster_id;
	m->self_id = cfg->self_id;
	m->t = cfg->timers;
	m->send = cfg->send;
	m->send_ctx = cfg->send_ctx;
	m->on_event = cfg->on_event;
	m->event_ctx = cfg->event_ctx;
	m->max = cfg->max_members;
	m->rng = cfg->seed;
	m->seq = (uint32_t)rnd(m);

	s = self(m);
	s->id = cfg->self_id;
	s->from_id = cfg->self_id;
	s->incarnation = cfg->initial_incarnation;
	s->state = AMIL_MEMBER_ALIVE;
	s->since_ns = now_ns;
	s->name_len = (uint8_t)strlen(cfg->name);
	memcpy(s->name, cfg->name, s->name_len);
	s->addr_len = (uint8_t)cfg->addr_len;
	if (cfg->addr_len)
		memcpy(s->addr, cfg->addr, cfg->addr_len);

	/* A random first probe time keeps nodes started together from
	 * probing in lockstep. */
	m->next_probe_ns = now_ns + rnd_below(m, (uint32_t)(m->t.probe_interval_ns > UINT32_MAX ?
							    UINT32_MAX : m->t.probe_interval_ns));
	m->next_reconnect_ns = now_ns;
	return m;

fail_relays:
	free(m->order);
fail_order:
	free(m->mem);
fail_mem:
	free(m);
fail_self:
	errno = ENOMEM;
	return NULL;
}

void
amil_membership_destroy(struct amil_membership **mp)
{
	struct amil_membership *m;

	if (mp == NULL || *mp == NULL)
		return;
	m = *mp;
	free(m->relays);
	free(m->order);
	free(m->mem);
	free(m);
	*mp = NULL;
}

int
amil_membership_add_seed(struct amil_membership *m, uint64_t node_id, const uint8_t *addr,
			 size_t addr_len)
{
	struct member *r;

	if (node_id == 0 || node_id == m->self_id || addr_len > AMIL_MEMBERSHIP_ADDR_MAX ||
	    (addr == NULL && addr_len > 0))
		return -EINVAL;
	r = find(m, node_id);
	if (r == NULL) {
		r = alloc_slot(m, node_id);
		if (r == NULL)
			return -ENOSPC;
		r->pending = 1;
	}
	r->seed = 1;
	if (r->pending) {
		/* A new or changed address is worth asking at once. */
		if (r->addr_len != addr_len || (addr_len && memcmp(r->addr, addr, addr_len) != 0)) {
			r->seed_next_ns = 0;
			r->seed_backoff = 0;
		}
		r->addr_len = (uint8_t)addr_len;
		if (addr_len)
			memcpy(r->addr, addr, addr_len);
	}
	return 0;
}

int
amil_membership_receive(struct amil_membership *m, uint64_t now_ns, uint64_t from_id,
			const uint8_t *buf, size_t len)
{
	struct amil_mwire_msg *in = &m->in;
	int rc;

	if (m->quiet)
		return -ESHUTDOWN;
	rc = amil_mwire_decode(buf, len, m->cluster_id, in);
	if (rc == -EACCES || rc == -EPROTONOSUPPORT) {
		m->c.foreign_dropped++;
		return rc;
	}
	if (rc < 0 || in->sender != from_id || in->sender == m->self_id) {
		m->c.malformed_dropped++;
		return -EBADMSG;
	}
	m->c.msgs_received++;
	for (unsigned i = 0; i < in->n_updates; i++)
		apply(m, now_ns, &in->updates[i]);

	switch (in->type) {
	case AMIL_MWIRE_PING:
		if (in->target != m->self_id) {
			/* An address reused by another node: answering would
			 * vouch for the wrong member. */
			m->c.misaddressed_dropped++;
			return 0;
		}
		send_msg(m, in->sender, find(m, in->sender), AMIL_MWIRE_ACK, m->self_id,
			 in->origin, in->seq);
		break;
	case AMIL_MWIRE_PING_REQ:
		relay_start(m, now_ns, in->sender, in->target, in->seq);
		break;
	case AMIL_MWIRE_ACK:
		on_ack(m, in->sender, in);
		break;
	case AMIL_MWIRE_NACK:
		on_nack(m, in);
		break;
	default:
		break;
	}
	return 0;
}

/* Dead members pinged per reconnect interval: after a heal every member
 * finds every other within an interval or two, not one by one. */
#define RECONNECT_PICKS 3

static void
reconnect(struct amil_membership *m, uint64_t now_ns)
{
	struct member *pick[RECONNECT_PICKS] = {NULL};
	uint32_t n = 0;

	for (uint32_t i = 1; i < m->max; i++) {
		struct member *r = &m->mem[i];

		if (r->id == 0)
			continue;
		if (r->pending) {
			/* Seeds are few; ask them all until they answer, backing
			 * off (a seed that is down for long is not hammered). */
			if (now_ns < r->seed_next_ns)
				continue;
			m->c.reconnect_pings++;
			send_to(m, r, AMIL_MWIRE_PING, r->id, 0, ++m->seq);
			r->seed_next_ns = now_ns + (m->t.reconnect_interval_ns << r->seed_backoff);
			if (r->seed_backoff < SEED_BACKOFF_MAX)
				r->seed_backoff++;
		} else if (r->state == AMIL_MEMBER_DEAD) {
			/* reservoir sample of RECONNECT_PICKS */
			if (n < RECONNECT_PICKS) {
				pick[n++] = r;
			} else {
				uint32_t k = rnd_below(m, ++n);

				if (k < RECONNECT_PICKS)
					pick[k] = r;
			}
		}
	}
	/* A few dead members per interval: after a partition heals, one
	 * answer is enough for the refutations to spread by gossip, but a
	 * direct answer from each is faster than gossip. */
	for (unsigned k = 0; k < RECONNECT_PICKS; k++)
		if (pick[k] != NULL) {
			m->c.reconnect_pings++;
			send_to(m, pick[k], AMIL_MWIRE_PING, pick[k]->id, 0, ++m->seq);
		}
}

/* A death lowers n and with it the confirmations the other suspicions
 * wait for, which can make one of them overdue: go round until a pass
 * declares nobody, so that after a tick no deadline is in the past. */
static void
expire_suspicions(struct amil_membership *m, uint64_t now_ns)
{
	bool again = true;

	while (again) {
		again = false;
		for (uint32_t i = 1; i < m->max; i++) {
			struct member *r = &m->mem[i];

			if (r->id == 0 || r->pending || r->state != AMIL_MEMBER_SUSPECT ||
			    now_ns < r->suspect_start_ns + suspicion_timeout(m, r))
				continue;
			m->c.deaths_declared++;
			declare_dead(m, now_ns, r, r->incarnation, m->self_id);
			again = true;
		}
	}
}

int
amil_membership_tick(struct amil_membership *m, uint64_t now_ns)
{
	if (m->quiet)
		return -ESHUTDOWN;
	if (m->leaving && now_ns >= m->leave_deadline_ns) {
		m->quiet = true;
		return -ESHUTDOWN;
	}
	for (uint32_t i = 0; i < m->max; i++) {
		struct relay *rl = &m->relays[i];

		if (!rl->used || now_ns < rl->deadline_ns)
			continue;
		rl->used = false;
		m->c.nacks_sent++;
		send_msg(m, rl->origin, find(m, rl->origin), AMIL_MWIRE_NACK, rl->target,
			 rl->origin, rl->origin_seq);
	}
	if (m->probe.active && !m->probe.acked && !m->probe.indirect_sent &&
	    now_ns >= m->probe.indirect_at_ns)
		probe_indirect(m);
	if (now_ns >= m->next_probe_ns) {
		finish_probe(m, now_ns);
		start_probe(m, now_ns);
	}
	expire_suspicions(m, now_ns);
	for (uint32_t i = 1; i < m->max; i++) {
		struct member *r = &m->mem[i];

		if (r->id == 0 || r->pending)
			continue;
		if ((r->state == AMIL_MEMBER_DEAD || r->state == AMIL_MEMBER_LEFT) &&
		    now_ns >= r->since_ns + m->t.reap_ns) {
			if (r->seed) {
				r->pending = 1;   /* keep asking the configured seed */
				r->seed_next_ns = 0;
				r->seed_backoff = 0;
				r->gossip_left = 0;
			} else {
				free_slot(m, r);
			}
		}
	}
	if (now_ns >= m->next_reconnect_ns) {
		m->next_reconnect_ns = now_ns + m->t.reconnect_interval_ns;
		if (!m->leaving)
			reconnect(m, now_ns);
	}
	return 0;
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t
amil_membership_next_deadline_ns(const struct amil_membership *m)
{
	uint64_t d;

	if (m->quiet)
		return UINT64_MAX;
	d = min_u64(m->next_probe_ns, m->next_reconnect_ns);
	if (m->leaving)
		d = min_u64(d, m->leave_deadline_ns);
	if (m->probe.active && !m->probe.acked && !m->probe.indirect_sent)
		d = min_u64(d, m->probe.indirect_at_ns);
	for (uint32_t i = 0; i < m->max; i++) {
		const struct relay *rl = &m->relays[i];
		const struct member *r = &m->mem[i];

		if (rl->used)
			d = min_u64(d, rl->deadline_ns);
		if (i == 0 || r->id == 0 || r->pending)
			continue;
		if (r->state == AMIL_MEMBER_SUSPECT)
			d = min_u64(d, r->suspect_start_ns + suspicion_timeout(m, r));
		else if (r->state == AMIL_MEMBER_DEAD || r->state == AMIL_MEMBER_LEFT)
			d = min_u64(d, r->since_ns + m->t.reap_ns);
	}
	return d;
}

int
amil_membership_leave(struct amil_membership *m, uint64_t now_ns)
{
	struct member *s = self(m), *to[16];
	uint32_t k = m->t.indirect_probes < 16 ? m->t.indirect_probes : 16, n;

	if (m->leaving)
		return -EALREADY;
	m->leaving = true;
	set_state(s, now_ns, AMIL_MEMBER_LEFT, s->incarnation + 1, m->self_id);
	m->leave_deadline_ns = now_ns + m->t.leave_linger_ns;
	n = pick_alive(m, 0, k, to);
	for (uint32_t i = 0; i < n; i++)
		send_to(m, to[i], AMIL_MWIRE_PING, to[i]->id, 0, ++m->seq);
	return 0;
}

bool
amil_membership_is_quiet(const struct amil_membership *m)
{
	return m->quiet;
}

static void
fill_info(const struct amil_membership *m, const struct member *r, struct amil_member_info *out)
{
	memset(out, 0, sizeof(*out));
	out->node_id = r->id;
	out->incarnation = r->incarnation;
	out->state = r->state;
	out->is_self = r == &m->mem[0];
	out->since_ns = r->since_ns;
	memcpy(out->name, r->name, r->name_len);
	out->addr_len = r->addr_len;
	memcpy(out->addr, r->addr, r->addr_len);
}

int
amil_membership_lookup(const struct amil_membership *m, uint64_t node_id,
		       struct amil_member_info *out)
{
	const struct member *r = node_id ? find(m, node_id) : NULL;

	if (r == NULL || r->pending)
		return -ENOENT;
	fill_info(m, r, out);
	return 0;
}

unsigned
amil_membership_foreach(const struct amil_membership *m,
			int (*fn)(void *ctx, const struct amil_member_info *info), void *ctx)
{
	struct amil_member_info info;
	unsigned n = 0;

	for (uint32_t i = 0; i < m->max; i++) {
		const struct member *r = &m->mem[i];

		if (r->id == 0 || r->pending)
			continue;
		fill_info(m, r, &info);
		n++;
		if (fn(ctx, &info) != 0)
			break;
	}
	return n;
}

unsigned
amil_membership_count(const struct amil_membership *m, enum amil_member_state state)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < m->max; i++)
		n += m->mem[i].id != 0 && !m->mem[i].pending && m->mem[i].state == state;
	return n;
}

uint32_t
amil_membership_incarnation(const struct amil_membership *m)
{
	return m->mem[0].incarnation;
}

uint32_t
amil_membership_health(const struct amil_membership *m)
{
	return m->awareness;
}

void
amil_membership_get_counters(const struct amil_membership *m, struct amil_membership_counters *out)
{
	*out = m->c;
}

const char *
amil_membership_event_name(unsigned type)
{
	static const char *const names[AMIL_MEMBERSHIP_EV_MAX] = {
		[AMIL_MEMBERSHIP_EV_NODEUP] = "nodeup", [AMIL_MEMBERSHIP_EV_SUSPECT] = "suspect",
		[AMIL_MEMBERSHIP_EV_UNSUSPECT] = "unsuspect",
		[AMIL_MEMBERSHIP_EV_NODEDOWN] = "nodedown", [AMIL_MEMBERSHIP_EV_LEFT] = "left",
	};

	return type < AMIL_MEMBERSHIP_EV_MAX && names[type] ? names[type] : "?";
}
