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

struct amil_worker {
	struct amil_worker_conf conf;
	struct amil_dedupe *dedupe;
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
	return w;

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
				amil_totals_add(tot, amil_currency_index(d->currency), d->exponent,
						a.amount_minor, a.levy_minor);
				accepted++;
				break;
			case AMIL_DEDUPE_DUPLICATE:
				a.status = AMIL_ACK_DUPLICATE;
				a.amount_minor = dorig[s]->amount_minor;
				a.levy_minor = dorig[s]->levy_minor;
				duplicate++;
				break;
			case AMIL_DEDUPE_CONFLICT:
				a.reason = AMIL_REASON_CONFLICT;
				break;
			default:
				a.reason = AMIL_REASON_UNAVAILABLE;
				break;
			}
		}
		if (a.status == AMIL_ACK_REJECTED)
			rejected[a.reason]++;
		p = payload_of(m);
		amil_wire_ack_encode(p, &a);
		sbuf[nout] = p;
		skey[nout] = key[i];
		out[nout++] = m;
	}
	amil_totals_end(tot);
	amil_wire_sign_burst(sbuf, skey, nout);
	for (unsigned k = 0; k < nout; k++)
		amil_net_reply_udp(&c->net[out[k]->port], out[k]);

	if (nd > 0)
		rte_pktmbuf_free_bulk(dropped, nd);

	/* Counters once per burst, not per frame. */
	AMIL_STAT_ADD(wc->rx, n);
	AMIL_STAT_ADD(wc->tx, nout);
	if (accepted)
		AMIL_STAT_ADD(wc->accepted, accepted);
	if (duplicate)
		AMIL_STAT_ADD(wc->duplicate, duplicate);
	if (unlikely(nout != accepted + duplicate))
		for (unsigned r = 1; r < AMIL_REASON_MAX; r++)
			if (rejected[r])
				AMIL_STAT_ADD(wc->rejected[r], rejected[r]);
	if (unlikely(nd > 0)) {
		AMIL_STAT_ADD(wc->drop[AMIL_DROP_UNKNOWN_CENTER], drop_center);
		AMIL_STAT_ADD(wc->drop[AMIL_DROP_BAD_TAG], drop_tag);
	}
	return (uint16_t)nout;
}
