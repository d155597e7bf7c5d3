/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Donation worker.  See worker.h for the contract.
 *
 * The burst is handled in three passes so that the dedupe table sees one
 * bulk lookup per burst instead of one per frame:
 *   1. authenticate and validate every frame (drop or stage),
 *   2. record the staged donations in the dedupe table in one call,
 *   3. write and sign every ACK, in input order.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_debug.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "amil_levy.h"
#include "dedupe.h"
#include "worker.h"

_Static_assert(AMIL_WORKER_BURST_MAX <= AMIL_DEDUPE_BURST_MAX, "worker burst fits dedupe burst");

/* An ACK waiting for the ledger (durable acknowledgement). */
struct held {
	struct rte_mbuf *m;            /* ACK written and signed, not turned around */
	uint64_t wait;                 /* release once the lane settled this far */
	uint64_t wseq;                 /* ACCEPTED: its own record's wseq; else 0 */
	int64_t amount_minor;          /* for totals, counted at release */
	int64_t levy_minor;
	int16_t cur_idx;
	uint8_t exponent;
	uint8_t status;
	uint8_t reason;
};

#define REFUSED_CACHE 64

struct amil_worker {
	struct amil_worker_conf conf;
	struct amil_dedupe *dedupe;
	/* Ledger mode only: held ACKs, a power-of-2 ring of conf.held_capacity. */
	struct held *held;
	uint32_t held_mask;
	uint32_t held_head;            /* free-running indexes */
	uint32_t held_tail;
	uint32_t held_dep;             /* held DUPLICATE/CONFLICT answers */
	uint64_t submitted;            /* lane wseq of the last record submitted */
	uint64_t refused[REFUSED_CACHE]; /* refusals taken off the lane, ascending */
	unsigned refused_i, refused_n;
};

struct amil_worker *
amil_worker_create(const struct amil_worker_conf *c)
{
	struct amil_dedupe_params dp;
	struct amil_worker *w;
	char name[32];

	if (c == NULL || c->centers == NULL || c->net == NULL || c->stats == NULL ||
	    c->rate_bp > AMIL_LEVY_RATE_BP_MAX) {
		rte_errno = EINVAL;
		return NULL;
	}
	w = rte_zmalloc_socket("amil_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, c->socket_id);
	if (w == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	w->conf = *c;
	snprintf(name, sizeof(name), "amil_dedupe_%u", c->worker_id);
	dp = (struct amil_dedupe_params){
		.name = name,
		.capacity = c->dedupe_capacity,
		.retention_tsc = c->dedupe_retention_tsc,
		.socket_id = c->socket_id,
	};
	w->dedupe = amil_dedupe_create(&dp);
	if (w->dedupe == NULL)
		goto fail_dedupe;
	if (c->ledger != NULL) {
		if (c->held_capacity < 2 * AMIL_WORKER_BURST_MAX ||
		    !rte_is_power_of_2(c->held_capacity)) {
			rte_errno = EINVAL;
			goto fail_held;
		}
		w->held = rte_zmalloc_socket("amil_held", (size_t)c->held_capacity * sizeof(struct held),
					     RTE_CACHE_LINE_SIZE, c->socket_id);
		if (w->held == NULL) {
			rte_errno = ENOMEM;
			goto fail_held;
		}
		w->held_mask = c->held_capacity - 1;
	}
	return w;

fail_held:
	amil_dedupe_free(w->dedupe);
fail_dedupe:
	rte_free(w);
	return NULL;
}

void
amil_worker_free(struct amil_worker *w)
{
	if (w == NULL)
		return;
	amil_dedupe_free(w->dedupe);
	if (w->held != NULL)
		for (uint32_t i = w->held_head; i != w->held_tail; i++)
			rte_pktmbuf_free(w->held[i & w->held_mask].m);
	rte_free(w->held);
	rte_free(w);
}

uint32_t
amil_worker_dedupe_count(const struct amil_worker *w)
{
	return amil_dedupe_count(w->dedupe);
}

static inline uint8_t *
payload_of(struct rte_mbuf *m)
{
	/* Set by amil_net_classify(); in the first cache line, unlike l2_len. */
	return rte_pktmbuf_mtod_offset(m, uint8_t *, m->hash.usr);
}

#define PREFETCH_AHEAD 4

static inline void
prefetch_frame(struct rte_mbuf *m)
{
	const uint8_t *p = payload_of(m);

	rte_prefetch0(p);
	rte_prefetch0(p + AMIL_WIRE_LEN - 1);
}

/* The ledger record of a NEW donation; seq and time come from the writer. */
static inline void
encode_record(const struct amil_worker *w, uint8_t *buf, const struct amil_donation *d,
	      const struct amil_dedupe_val *v)
{
	const struct amil_ledger_rec r = {
		.center_id = d->center_id,
		.donation_id = d->donation_id,
		.donor_id = d->donor_id,
		.campaign_id = d->campaign_id,
		.currency = {d->currency[0], d->currency[1], d->currency[2]},
		.exponent = d->exponent,
		.amount_minor = v->amount_minor,
		.levy_minor = v->levy_minor,
		.node_id = w->conf.node_id,
		.worker = (uint16_t)w->conf.worker_id,
		.rate_bp = (uint16_t)w->conf.rate_bp,
	};

	amil_ledger_rec_encode(buf, &r);
}

/* Rewrite a held ACK as REJECTED/UNAVAILABLE ("retry later"), re-signed. */
static void
make_unavailable(const struct amil_worker *w, struct held *h)
{
	uint8_t *p = payload_of(h->m);
	struct amil_ack a;

	amil_wire_ack_decode(p, &a);
	a.status = AMIL_ACK_REJECTED;
	a.reason = AMIL_REASON_UNAVAILABLE;
	a.amount_minor = 0;
	a.levy_minor = 0;
	amil_wire_ack_encode(p, &a);
	amil_wire_sign(p, amil_centers_key(w->conf.centers, a.center_id));
	h->status = AMIL_ACK_REJECTED;
	h->reason = AMIL_REASON_UNAVAILABLE;
	h->wseq = 0;
}

static inline bool
is_dependent(const struct held *h)
{
	return h->status == AMIL_ACK_DUPLICATE ||
	       (h->status == AMIL_ACK_REJECTED && h->reason == AMIL_REASON_CONFLICT);
}

/*
 * Queue a burst's ACKs behind the ledger.  The NEW records are submitted in
 * one call; every ACK of the burst waits until the lane settled the last of
 * them, so a DUPLICATE never leaves before the original it vouches for is
 * durable.  A lane without room (only if the caller ignored
 * amil_worker_room) refuses the NEW ones as UNAVAILABLE.
 */
static void
hold_burst(struct amil_worker *w, struct held *hinfo, const uint8_t *rec_of, unsigned n,
	   uint8_t (*recs)[AMIL_LEDGER_REC_LEN], unsigned nrec)
{
	uint64_t last = w->submitted, first;

	if (nrec > 0) {
		last = amil_ledger_submit(w->conf.ledger, w->conf.lane, recs, nrec);
		if (unlikely(last == 0)) {
			for (unsigned k = 0; k < n; k++)
				if (rec_of[k] != 0xff) {
					struct amil_ack a;
					struct amil_dedupe_key key;

					amil_wire_ack_decode(payload_of(hinfo[k].m), &a);
					key = (struct amil_dedupe_key){a.center_id, 0, a.donation_id};
					amil_dedupe_forget(w->dedupe, &key);
					make_unavailable(w, &hinfo[k]);
				}
			last = w->submitted;
			nrec = 0;
		}
		w->submitted = last;
	}
	first = last - nrec + 1;
	for (unsigned k = 0; k < n; k++) {
		struct held *h = &w->held[w->held_tail++ & w->held_mask];

		*h = hinfo[k];
		h->wait = last;
		h->wseq = nrec > 0 && rec_of[k] != 0xff ? first + rec_of[k] : 0;
		if (is_dependent(h))
			w->held_dep++;
	}
}

/* The next refused wseq of our lane, 0 if none is known yet. */
static inline uint64_t
next_refused(struct amil_worker *w)
{
	if (w->refused_i == w->refused_n) {
		w->refused_i = 0;
		w->refused_n = amil_ledger_refused(w->conf.ledger, w->conf.lane, w->refused,
						   REFUSED_CACHE);
		if (w->refused_n == 0)
			return 0;
	}
	return w->refused[w->refused_i];
}

/* The record of @h was refused: answer UNAVAILABLE, forget the donation,
 * and change the held answers that vouched for it. */
static void
refuse(struct amil_worker *w, uint32_t idx)
{
	struct held *h = &w->held[idx & w->held_mask];
	struct amil_dedupe_key key;
	struct amil_ack a;

	amil_wire_ack_decode(payload_of(h->m), &a);
	key = (struct amil_dedupe_key){a.center_id, 0, a.donation_id};
	amil_dedupe_forget(w->dedupe, &key);
	make_unavailable(w, h);
	if (w->held_dep == 0)
		return;
	for (uint32_t i = idx + 1; i != w->held_tail; i++) {
		struct held *o = &w->held[i & w->held_mask];
		struct amil_ack b;

		if (!is_dependent(o))
			continue;
		amil_wire_ack_decode(payload_of(o->m), &b);
		if (b.center_id == a.center_id && b.donation_id == a.donation_id) {
			w->held_dep--;
			make_unavailable(w, o);
		}
	}
}

uint16_t
amil_worker_release(struct amil_worker *w, struct rte_mbuf **out, uint16_t max)
{
	const struct amil_worker_conf *c = &w->conf;
	struct amil_worker_counters *wc = &c->stats->worker;
	uint64_t accepted = 0, duplicate = 0, rejected = 0, settled;
	uint16_t nout = 0;

	if (w->held == NULL || w->held_head == w->held_tail)
		return 0;
	settled = amil_ledger_settled(c->ledger, c->lane);
	amil_totals_begin(&c->stats->totals);
	while (nout < max && w->held_head != w->held_tail) {
		uint32_t idx = w->held_head;
		struct held *h = &w->held[idx & w->held_mask];

		if (h->wait > settled)
			break;
		if (h->wseq != 0) {
			uint64_t r = next_refused(w);

			/* Ascending, one per refused record: a smaller one
			 * would be a record we never held (defensive). */
			while (r != 0 && r < h->wseq) {
				w->refused_i++;
				r = next_refused(w);
			}
			if (r == h->wseq) {
				w->refused_i++;
				refuse(w, idx);
			}
		}
		switch (h->status) {
		case AMIL_ACK_ACCEPTED:
			amil_totals_add(&c->stats->totals, h->cur_idx, h->exponent, h->amount_minor,
					h->levy_minor);
			accepted++;
			break;
		case AMIL_ACK_DUPLICATE:
			duplicate++;
			break;
		default:
			rejected++;
			AMIL_STAT_ADD(wc->rejected[h->reason < AMIL_REASON_MAX ? h->reason : 0], 1);
			break;
		}
		if (is_dependent(h))
			w->held_dep--;
		amil_net_reply_udp(&c->net[h->m->port], h->m);
		out[nout++] = h->m;
		w->held_head++;
	}
	amil_totals_end(&c->stats->totals);
	if (nout > 0) {
		AMIL_STAT_ADD(wc->tx, nout);
		if (accepted)
			AMIL_STAT_ADD(wc->accepted, accepted);
		if (duplicate)
			AMIL_STAT_ADD(wc->duplicate, duplicate);
	}
	RTE_SET_USED(rejected);
	return nout;
}

uint32_t
amil_worker_room(const struct amil_worker *w)
{
	if (w->held == NULL)
		return UINT32_MAX;
	return w->held_mask + 1 - (w->held_tail - w->held_head);
}

uint32_t
amil_worker_held(const struct amil_worker *w)
{
	return w->held == NULL ? 0 : w->held_tail - w->held_head;
}

int
amil_worker_restore(struct amil_worker *w, const struct amil_ledger_rec *r, uint64_t insert_tsc)
{
	const struct amil_dedupe_key key = {r->center_id, 0, r->donation_id};
	const struct amil_dedupe_val val = {
		.donor_id = r->donor_id,
		.campaign_id = r->campaign_id,
		.currency = {r->currency[0], r->currency[1], r->currency[2]},
		.exponent = r->exponent,
		.amount_minor = r->amount_minor,
		.levy_minor = r->levy_minor,
	};

	return amil_dedupe_restore(w->dedupe, &key, &val, insert_tsc);
}

uint16_t
amil_worker_process(struct amil_worker *w, struct rte_mbuf **pkts, uint16_t n,
		    struct rte_mbuf **out, uint64_t now_tsc)
{
	const struct amil_worker_conf *c = &w->conf;
	struct amil_worker_counters *wc = &c->stats->worker;
	struct amil_totals *tot = &c->stats->totals;
	/* Per-burst scratch on the stack: no allocation on this path. */
	struct amil_donation don[AMIL_WORKER_BURST_MAX];
	const uint8_t *key[AMIL_WORKER_BURST_MAX];
	uint8_t reason[AMIL_WORKER_BURST_MAX];
	uint8_t keep[AMIL_WORKER_BURST_MAX];
	struct amil_dedupe_key dkey[AMIL_WORKER_BURST_MAX];
	struct amil_dedupe_val dval[AMIL_WORKER_BURST_MAX];
	uint8_t dres[AMIL_WORKER_BURST_MAX];
	const struct amil_dedupe_val *dorig[AMIL_WORKER_BURST_MAX];
	uint8_t stage_of[AMIL_WORKER_BURST_MAX];
	struct rte_mbuf *dropped[AMIL_WORKER_BURST_MAX];
	/* Ledger mode: one record per NEW donation, and per ACK what release
	 * needs to count it. */
	uint8_t recs[AMIL_WORKER_BURST_MAX][AMIL_LEDGER_REC_LEN];
	uint8_t rec_of[AMIL_WORKER_BURST_MAX];     /* out index -> record, or 0xff */
	struct held hinfo[AMIL_WORKER_BURST_MAX];
	const bool hold = w->held != NULL;
	unsigned nrec = 0;
	const void *vbuf[AMIL_WORKER_BURST_MAX];     /* frames to verify */
	const uint8_t *vkey[AMIL_WORKER_BURST_MAX];
	int vres[AMIL_WORKER_BURST_MAX];
	uint8_t vidx[AMIL_WORKER_BURST_MAX];
	void *sbuf[AMIL_WORKER_BURST_MAX];           /* ACKs to sign */
	const uint8_t *skey[AMIL_WORKER_BURST_MAX];
	uint64_t accepted = 0, duplicate = 0, rejected[AMIL_REASON_MAX] = {0};
	uint64_t drop_center = 0, drop_tag = 0;
	unsigned nd = 0, ns = 0, nv = 0, nout = 0;

	if (unlikely(n > AMIL_WORKER_BURST_MAX))
		n = AMIL_WORKER_BURST_MAX;
	/* With an I/O lcore every mbuf and frame was last written by another
	 * core.  Mbuf headers are fetched 2 x PREFETCH_AHEAD ahead (the payload
	 * address is read from them), frames PREFETCH_AHEAD ahead: the 64-byte
	 * message straddles two cache lines.  Not the whole burst at once: more
	 * misses in flight than the core has fill buffers stall the prefetches
	 * themselves. */
	for (unsigned i = 0; i < n && i < 2 * PREFETCH_AHEAD; i++)
		rte_prefetch0(pkts[i]);
	for (unsigned i = 0; i < n && i < PREFETCH_AHEAD; i++)
		prefetch_frame(pkts[i]);

	/* Pass 1a: the key of every frame's center. */
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *p = payload_of(pkts[i]);

		if (i + 2 * PREFETCH_AHEAD < n)
			rte_prefetch0(pkts[i + 2 * PREFETCH_AHEAD]);
		if (i + PREFETCH_AHEAD < n)
			prefetch_frame(pkts[i + PREFETCH_AHEAD]);
		keep[i] = 0;
		key[i] = amil_centers_key(c->centers, amil_wire_center_id(p));
		if (unlikely(key[i] == NULL)) {
			drop_center++;
			dropped[nd++] = pkts[i];
			continue;
		}
		vbuf[nv] = p;
		vkey[nv] = key[i];
		vidx[nv++] = (uint8_t)i;
	}

	/* Pass 1b: every tag in one call (four at a time where the CPU has
	 * AVX2), then decode and validate what is authentic. */
	if (likely(nv > 0))
		amil_wire_verify_burst(vbuf, vkey, nv, vres);
	for (unsigned v = 0; v < nv; v++) {
		unsigned i = vidx[v];

		if (unlikely(vres[v] != 0)) {
			drop_tag++;
			dropped[nd++] = pkts[i];
			continue;
		}
		keep[i] = 1;
		amil_wire_donation_decode(vbuf[v], &don[i]);
		reason[i] = amil_wire_donation_validate(&don[i], c->currencies);
		if (unlikely(reason[i] != AMIL_REASON_NONE))
			continue;
		dkey[ns] = (struct amil_dedupe_key){don[i].center_id, 0, don[i].donation_id};
		dval[ns] = (struct amil_dedupe_val){
			.donor_id = don[i].donor_id,
			.campaign_id = don[i].campaign_id,
			.currency = {don[i].currency[0], don[i].currency[1], don[i].currency[2]},
			.exponent = don[i].exponent,
			.amount_minor = don[i].amount_minor,
			.levy_minor = amil_levy_minor(don[i].amount_minor, c->rate_bp),
		};
		stage_of[i] = (uint8_t)ns++;
	}

	/* Pass 2: record once. */
	if (ns > 0)
		amil_dedupe_record_burst(w->dedupe, dkey, dval, ns, now_tsc, dres, dorig);

	/* Pass 3: write every ACK, sign them in one call, then turn each frame
	 * around (its UDP checksum covers the tag). */
	amil_totals_begin(tot);
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const struct amil_donation *d = &don[i];
		struct amil_ack a;
		uint8_t *p;

		if (!keep[i])
			continue;
		RTE_ASSERT(m->port < c->nb_ports); /* set by RX; indexes c->net */
		a = (struct amil_ack){
			.center_id = d->center_id,
			.donation_id = d->donation_id,
			.node_id = c->node_id,
			.status = AMIL_ACK_REJECTED,
			.reason = reason[i],
			.sent_ns = d->sent_ns,
			.seq = d->seq,
		};
		if (likely(reason[i] == AMIL_REASON_NONE)) {
			unsigned s = stage_of[i];

			switch (dres[s]) {
			case AMIL_DEDUPE_NEW:
				a.status = AMIL_ACK_ACCEPTED;
				a.amount_minor = dval[s].amount_minor;
				a.levy_minor = dval[s].levy_minor;
				if (hold) {
					/* Counted when durable, in release. */
					encode_record(w, recs[nrec], d, &dval[s]);
					rec_of[nout] = (uint8_t)nrec++;
					break;
				}
				amil_totals_add(tot, amil_currency_index(d->currency), d->exponent,
						a.amount_minor, a.levy_minor);
				accepted++;
				break;
			case AMIL_DEDUPE_DUPLICATE:
				a.status = AMIL_ACK_DUPLICATE;
				a.amount_minor = dorig[s]->amount_minor;
				a.levy_minor = dorig[s]->levy_minor;
				break;
			case AMIL_DEDUPE_CONFLICT:
				a.reason = AMIL_REASON_CONFLICT;
				break;
			default:
				a.reason = AMIL_REASON_UNAVAILABLE;
				break;
			}
		}
		if (hold) {
			if (a.status != AMIL_ACK_ACCEPTED)
				rec_of[nout] = 0xff;
			hinfo[nout] = (struct held){
				.m = m,
				.amount_minor = a.amount_minor,
				.levy_minor = a.levy_minor,
				.cur_idx = (int16_t)amil_currency_index(d->currency),
				.exponent = d->exponent,
				.status = a.status,
				.reason = a.reason,
			};
		} else if (a.status == AMIL_ACK_DUPLICATE) {
			duplicate++;
		} else if (a.status == AMIL_ACK_REJECTED) {
			rejected[a.reason]++;
		}
		p = payload_of(m);
		amil_wire_ack_encode(p, &a);
		sbuf[nout] = p;
		skey[nout] = key[i];
		out[nout++] = m;
	}
	amil_totals_end(tot);
	amil_wire_sign_burst(sbuf, skey, nout);
	if (hold) {
		hold_burst(w, hinfo, rec_of, nout, recs, nrec);
		nout = 0;
	} else {
		for (unsigned k = 0; k < nout; k++)
			amil_net_reply_udp(&c->net[out[k]->port], out[k]);
	}

	if (nd > 0)
		rte_pktmbuf_free_bulk(dropped, nd);

	/* Counters once per burst, not per frame. */
	AMIL_STAT_ADD(wc->rx, n);
	if (nout == 0)
		goto out_drops;
	AMIL_STAT_ADD(wc->tx, nout);
	if (accepted)
		AMIL_STAT_ADD(wc->accepted, accepted);
	if (duplicate)
		AMIL_STAT_ADD(wc->duplicate, duplicate);
	if (unlikely(nout != accepted + duplicate))
		for (unsigned r = 1; r < AMIL_REASON_MAX; r++)
			if (rejected[r])
				AMIL_STAT_ADD(wc->rejected[r], rejected[r]);
out_drops:
	if (unlikely(nd > 0)) {
		AMIL_STAT_ADD(wc->drop[AMIL_DROP_UNKNOWN_CENTER], drop_center);
		AMIL_STAT_ADD(wc->drop[AMIL_DROP_BAD_TAG], drop_tag);
	}
	return (uint16_t)nout;
}
