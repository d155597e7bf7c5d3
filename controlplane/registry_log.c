/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The registry's own deltas, numbered and kept until every peer has them
 * (the acknowledged delta propagation of Almeida, Shoker and Baquero,
 * "Delta State Replicated Data Types", algorithm 2).
 *
 * Every delta this node pushes gets the next sequence number of this
 * process life (writer id) and stays in a bounded log.  Each peer tells us,
 * every anti-entropy round, how far it has all of ours ('V': writer, seq).
 * A peer that comes back after a partition or a restart, or whose
 * acknowledgement stalls, gets what it lacks from the log again: exactly
 * the deltas it missed, a few bytes each, instead of an anti-entropy
 * exchange of everything that differs (that stays as the fallback when the
 * log no longer holds them, and for what others wrote).
 *
 * Deltas are idempotent: a resent one that arrived after all does no harm.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry_impl.h"

#define LOG_BYTES_MAX (64u << 20)          /* deltas kept, bytes */
#define STALL_NS (2000 * 1000000ull)        /* acknowledgement stuck this long: resend */

/* The peer record of @node, made on first use (NULL: table full). */
static struct reg_peer *
peer_of(struct amil_registry *r, uint64_t node)
{
	for (unsigned i = 0; i < r->npeers; i++)
		if (r->peers[i].node == node)
			return &r->peers[i];
	if (r->npeers == REG_PEERS_MAX)
		return NULL;
	memset(&r->peers[r->npeers], 0, sizeof(r->peers[0]));
	r->peers[r->npeers].node = node;
	return &r->peers[r->npeers++];
}

static void
drop_oldest(struct amil_registry *r)
{
	struct reg_logrec *rec = &r->log[r->log_head];

	r->log_bytes -= rec->len;
	free(rec->d);
	r->log_head = (r->log_head + 1) & (r->log_cap - 1);
	r->log_n--;
	r->log_base++;
}

uint64_t
reg_log_append(struct amil_registry *r, const uint8_t *delta, size_t len)
{
	uint64_t seq = r->log_base + r->log_n;
	struct reg_logrec *rec;
	uint8_t *copy;

	/* Within the byte budget: drop the oldest (peers that still lack them
	 * get an anti-entropy exchange instead). */
	while (r->log_n > 0 && r->log_bytes + len > LOG_BYTES_MAX)
		drop_oldest(r);
	if (r->log_n == r->log_cap) {
		size_t cap = r->log_cap ? r->log_cap * 2 : 1024;
		struct reg_logrec *nl = malloc(cap * sizeof(*nl));

		if (nl == NULL)
			goto lost;
		for (size_t i = 0; i < r->log_n; i++)
			nl[i] = r->log[(r->log_head + i) & (r->log_cap - 1)];
		free(r->log);
		r->log = nl;
		r->log_cap = cap;
		r->log_head = 0;
	}
	copy = malloc(len);
	if (copy == NULL)
		goto lost;
	memcpy(copy, delta, len);
	rec = &r->log[(r->log_head + r->log_n) & (r->log_cap - 1)];
	rec->d = copy;
	rec->len = (uint32_t)len;
	r->log_n++;
	r->log_bytes += len;
	return seq;
lost:
	/* No memory: forget the log (the numbering goes on); whoever lacks
	 * something is repaired by anti-entropy. */
	while (r->log_n > 0)
		drop_oldest(r);
	r->log_base = seq + 1;
	return seq;
}

void
reg_log_free(struct amil_registry *r)
{
	for (size_t i = 0; i < r->log_n; i++)
		free(r->log[(r->log_head + i) & (r->log_cap - 1)].d);
	free(r->log);
	r->log = NULL;
	r->log_n = r->log_cap = 0;
}

void
reg_log_received(struct amil_registry *r, uint64_t from, uint64_t writer, uint64_t seq)
{
	struct reg_peer *p = peer_of(r, from);

	if (p == NULL)
		return;
	if (p->their_writer != writer) {
		/* A new life of that node: its numbering starts again. */
		p->their_writer = writer;
		p->have = 0;
	}
	if (seq == p->have + 1)
		p->have = seq;
	/* Older: a resend we did not need.  Newer: a gap (lost while it was
	 * away); joined anyway, acknowledged once the gap is resent. */
}

void
reg_log_receive_ack(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	struct reg_peer *p;
	uint64_t writer, seq;

	if (len != 1 + 16) {
		r->bad++;
		return;
	}
	writer = reg_ld64(buf + 1);
	seq = reg_ld64(buf + 9);
	p = peer_of(r, from);
	if (p == NULL || writer != r->cfg.writer_id)
		return;                /* about an earlier life of ours */
	if (seq != p->acked)
		p->acked_since = reg_mono_ns();
	/* Not max(): a peer that restarted starts from nothing again. */
	p->acked = seq;
}

struct ack_ctx {
	struct amil_registry *r;
};

static int
ack_one(void *ctx, const struct amil_member_info *mi)
{
	struct ack_ctx *x = ctx;
	struct reg_peer *p;
	uint8_t buf[16];

	if (mi->is_self || mi->state != AMIL_MEMBER_ALIVE)
		return 0;
	p = peer_of(x->r, mi->node_id);
	if (p == NULL || p->their_writer == 0)
		return 0;
	reg_st64(buf, p->their_writer);
	reg_st64(buf + 8, p->have);
	if (amil_registry_send(x->r, mi->node_id, AMIL_REG_MSG_ACK, buf, sizeof(buf)) == 0) {
		p->have_sent = p->have;
		p->ack_ns = reg_mono_ns();
	}
	return 0;
}

static void
reg_log_ack_all(struct amil_registry *r)
{
	struct ack_ctx x = {.r = r};

	amil_membership_foreach(r->cfg.m, ack_one, &x);
}

int
reg_log_resend(struct amil_registry *r, uint64_t node)
{
	struct reg_peer *p = peer_of(r, node);
	uint64_t last = r->log_base + r->log_n - 1, from;
	uint8_t *msg = NULL;
	size_t cap = 0;
	int rc = 0;

	if (p == NULL || r->log_n == 0)
		return 0;
	from = p->acked + 1;
	if (from > last)
		return 0;              /* it has everything */
	if (from < r->log_base)
		return -ENOENT;        /* beyond the log: anti-entropy's job */
	while (from <= last && rc == 0) {
		size_t len = 16, n = 0;

		for (uint64_t s = from; s <= last && len < AMIL_REG_BATCH_MSG_MAX; s++, n++) {
			const struct reg_logrec *rec =
				&r->log[(r->log_head + (s - r->log_base)) & (r->log_cap - 1)];

			if (len + 4 + rec->len > cap) {
				size_t nc = cap ? cap * 2 : 65536;
				uint8_t *nm;

				while (nc < len + 4 + rec->len)
					nc *= 2;
				nm = realloc(msg, nc);
				if (nm == NULL) {
					free(msg);
					return -ENOMEM;
				}
				msg = nm;
				cap = nc;
			}
			msg[len] = (uint8_t)(rec->len >> 24);
			msg[len + 1] = (uint8_t)(rec->len >> 16);
			msg[len + 2] = (uint8_t)(rec->len >> 8);
			msg[len + 3] = (uint8_t)rec->len;
			memcpy(msg + len + 4, rec->d, rec->len);
			len += 4 + rec->len;
		}
		reg_st64(msg, r->cfg.writer_id);
		reg_st64(msg + 8, from);
		rc = amil_registry_send(r, node, AMIL_REG_MSG_BATCH, msg, len);
		if (rc == 0) {
			r->resent_deltas += n;
			r->resent_bytes += len;
		}
		from += n;
	}
	free(msg);
	/* Sent is not received: the acknowledgement will tell; until then
	 * the stall timer starts again from now. */
	p->acked_since = reg_mono_ns();
	return rc;
}

bool
reg_log_caught_up(struct amil_registry *r, uint64_t node)
{
	struct reg_peer *p = peer_of(r, node);

	return p == NULL || r->log_n == 0 || p->acked >= r->log_base + r->log_n - 1;
}

struct stall_ctx {
	struct amil_registry *r;
	uint64_t now;
};

static int
stall_one(void *ctx, const struct amil_member_info *mi)
{
	struct stall_ctx *x = ctx;
	struct amil_registry *r = x->r;
	struct reg_peer *p;

	if (mi->is_self || mi->state != AMIL_MEMBER_ALIVE || r->log_n == 0)
		return 0;
	p = peer_of(r, mi->node_id);
	if (p == NULL || p->acked >= r->log_base + r->log_n - 1)
		return 0;
	if (p->acked_since == 0) {
		p->acked_since = x->now;
		return 0;
	}
	if (x->now - p->acked_since >= STALL_NS)
		reg_log_resend(r, mi->node_id);
	return 0;
}

void
reg_log_ack_due(struct amil_registry *r, uint64_t now_mono)
{
	for (unsigned i = 0; i < r->npeers; i++) {
		struct reg_peer *p = &r->peers[i];
		uint8_t buf[16];

		if (p->have == p->have_sent || p->their_writer == 0 ||
		    now_mono - p->ack_ns < 20 * 1000000ull)
			continue;
		reg_st64(buf, p->their_writer);
		reg_st64(buf + 8, p->have);
		if (amil_registry_send(r, p->node, AMIL_REG_MSG_ACK, buf, sizeof(buf)) == 0) {
			p->have_sent = p->have;
			p->ack_ns = now_mono;
		}
	}
}

/* Forget what every peer has: the log holds only what someone may still
 * need (a peer that left, or that membership forgot after its reap time,
 * needs nothing; one that is dead keeps its part, within the budget). */
static void
trim(struct amil_registry *r)
{
	uint64_t min = UINT64_MAX;

	for (unsigned i = 0; i < r->npeers; i++) {
		struct amil_member_info mi;

		if (amil_membership_lookup(r->cfg.m, r->peers[i].node, &mi) != 0 ||
		    mi.state == AMIL_MEMBER_LEFT)
			continue;
		if (r->peers[i].acked < min)
			min = r->peers[i].acked;
	}
	while (r->log_n > 0 && r->log_base <= min)
		drop_oldest(r);
}

void
reg_log_tick(struct amil_registry *r, uint64_t now_mono)
{
	struct stall_ctx x = {.r = r, .now = now_mono};

	reg_log_ack_all(r);
	amil_membership_foreach(r->cfg.m, stall_one, &x);
	trim(r);
}
