/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amil-pktgen: frames, TX and RX rounds, the lcore loop.  See pktgen.h. */
#include "pktgen.h"

/* ---- frames ---------------------------------------------------------------- */

/* Template for 64-byte donations: headers built once by amil_frame_build_udp()
 * over a zero payload; per frame only the payload and UDP checksum change.
 * The checksum is linear: sum(header with zero payload) + sum(payload). */
int
pktgen_build_template(struct app *a, uint16_t src_port)
{
	uint8_t zero[AMIL_WIRE_LEN] = {0}, frame[AMIL_FRAME_MAX];
	struct amil_frame_addr addr = a->o.addr;
	int len;

	addr.src_port = src_port;
	len = amil_frame_build_udp(frame, sizeof(frame), &addr, zero, sizeof(zero));
	if (len < 0)
		return len;
	a->hdr_len = (unsigned)len - AMIL_WIRE_LEN;
	a->csum_off = a->hdr_len - 2;
	memcpy(a->hdr, frame, a->hdr_len);
	memcpy(&a->hdr_csum_base, frame + a->csum_off, 2);
	a->hdr_csum_base = (uint16_t)~a->hdr_csum_base;
	return 0;
}

/* Write donation @id of @kind into @buf; returns the frame length. */
unsigned
pktgen_build_frame(const struct app *a, struct lcore *l, uint8_t *buf, size_t room, uint64_t id,
	    uint8_t kind, uint64_t now_tsc)
{
	uint8_t pl[AMIL_WIRE_LEN];
	unsigned plen = amil_gen_payload(a->gen, id, kind, tsc_to_ns(a, now_tsc), l->seq++, pl);
	uint16_t c;

	if (unlikely(plen != AMIL_WIRE_LEN)) {
		/* Truncated: a different length, so the full builder (rare). */
		return (unsigned)amil_frame_build_udp(buf, room, &a->o.addr, pl, plen);
	}
	memcpy(buf, a->hdr, a->hdr_len);
	memcpy(buf + a->hdr_len, pl, AMIL_WIRE_LEN);
	/* One's-complement sums commute with byte swapping, so the sum can be
	 * taken on words in memory order (DPDK's word-at-a-time
	 * rte_raw_cksum(), several times faster than a byte loop) and stored
	 * as is. */
	c = (uint16_t)~__rte_raw_cksum_reduce(__rte_raw_cksum(pl, AMIL_WIRE_LEN, a->hdr_csum_base));
	if (c == 0)
		c = 0xffff;            /* UDP: 0 would mean "no checksum" */
	memcpy(buf + a->csum_off, &c, 2);
	return a->hdr_len + AMIL_WIRE_LEN;
}

/* ---- TX -------------------------------------------------------------------- */

/* Keep at least @want mbufs at hand.  Allocated in chunks of @want (at
 * most the burst), well below the mempool cache size: a bulk get as large
 * as the cache bypasses it and takes cold mbufs from the ring, which cost
 * a third of the TX rate when measured. */
static inline bool
stash_fill(struct app *a, struct lcore *l, unsigned want)
{
	if (l->nstash >= want)
		return true;
	if (rte_pktmbuf_alloc_bulk(a->pool, l->stash + l->nstash, want) != 0) {
		l->c.alloc_fail++;
		return l->nstash >= want;
	}
	l->nstash += want;
	return true;
}

/* Frames of this round whose tag is still to be written: signed together
 * in one amil_wire_sign_burst() call (four at a time with AVX2), then
 * spoiled per kind and checksummed. */
struct sign_batch {
	void *payload[AMIL_PKTGEN_BURST_MAX];
	const uint8_t *key[AMIL_PKTGEN_BURST_MAX];
	uint8_t *csum[AMIL_PKTGEN_BURST_MAX];
	uint8_t kind[AMIL_PKTGEN_BURST_MAX];
	unsigned n;
};

static inline void
put_frame(const struct app *a, struct lcore *l, struct rte_mbuf **out, uint16_t *n, uint64_t id,
	  uint8_t kind, uint64_t now, struct sign_batch *b)
{
	struct rte_mbuf *m = l->stash[--l->nstash];
	uint8_t *buf = rte_pktmbuf_mtod(m, uint8_t *);
	uint8_t *pl = buf + a->hdr_len;
	const uint8_t *key;
	unsigned len;

	if (unlikely(amil_gen_payload_unsigned(a->gen, id, kind, tsc_to_ns(a, now), l->seq,
					       pl, &key) != AMIL_WIRE_LEN)) {
		/* Truncated (rare): the one-by-one builder. */
		len = pktgen_build_frame(a, l, buf, rte_pktmbuf_tailroom(m), id, kind, now);
	} else {
		l->seq++;
		memcpy(buf, a->hdr, a->hdr_len);
		len = a->hdr_len + AMIL_WIRE_LEN;
		b->payload[b->n] = pl;
		b->key[b->n] = key;
		b->csum[b->n] = buf + a->csum_off;
		b->kind[b->n++] = kind;
	}
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	out[(*n)++] = m;
}

/* Tag, spoil and checksum every frame of @b (see pktgen_build_frame() for
 * the checksum: template sum plus payload sum, stored in memory order). */
static void
sign_batch_finish(const struct app *a, struct sign_batch *b)
{
	amil_wire_sign_burst(b->payload, b->key, b->n);
	for (unsigned i = 0; i < b->n; i++) {
		uint16_t c;

		amil_gen_payload_finish(b->kind[i], b->payload[i]);
		c = (uint16_t)~__rte_raw_cksum_reduce(
			__rte_raw_cksum(b->payload[i], AMIL_WIRE_LEN, a->hdr_csum_base));
		if (c == 0)
			c = 0xffff;            /* UDP: 0 would mean "no checksum" */
		memcpy(b->csum[i], &c, 2);
	}
	b->n = 0;
}

/* One TX round: flush what the queue refused, retransmit what timed out,
 * then as many new frames as the schedule allows. */
static void
tx_round(struct app *a, struct lcore *l, uint64_t now)
{
	struct rte_mbuf **out = l->pend;
	const uint32_t burst = a->o.burst;
	uint64_t retx[AMIL_PKTGEN_BURST_MAX];
	struct sign_batch b;
	uint16_t n = l->npend, sent;
	unsigned nr = 0;

	b.n = 0;
	if (n == 0) {
		if (!stash_fill(a, l, burst))
			return;
		if (l->track != NULL) {
			nr = amil_track_due(l->track, now, retx, burst);
			for (unsigned i = 0; i < nr; i++) {
				struct amil_track_info info;

				amil_track_lookup(l->track, retx[i], &info);
				put_frame(a, l, out, &n, amil_match_id(&a->match, l->t, retx[i]),
					  info.kind, now, &b);
			}
			l->c.retransmits += nr;
		}
		if (l->generating) {
			uint32_t due;

			if (stop_gen || l->frames_left == 0 ||
			    (a->duration_tsc && now - a->start_tsc >= a->duration_tsc)) {
				l->generating = false;
				l->gen_end_tsc = now;
				l->c.pace_skipped = l->pace.skipped;
			} else {
				uint32_t room = burst - n;

				if (room > l->frames_left)
					room = (uint32_t)l->frames_left;
				due = amil_pace_take(&l->pace, now, room);
				for (uint32_t i = 0; i < due; i++) {
					uint64_t k;
					uint8_t kind;
					enum amil_gen_pick pick;

					if (l->track != NULL && !amil_track_can_add(l->track, l->k_next)) {
						/* Window full: these slots of the schedule
						 * are gone; the pacer's debt bound keeps the
						 * catch-up honest. */
						l->c.window_full++;
						break;
					}
					pick = amil_gen_plan_next(&l->plan, &k, &kind);
					if (pick == AMIL_GEN_PICK_DUP) {
						if (l->track != NULL)
							amil_track_add_copy(l->track, k);
						l->c.sent_dup++;
					} else {
						bool expect;
						uint8_t st, rs;

						k = l->k_next++;
						expect = amil_gen_expect(kind, &st, &rs);
						if (l->track != NULL)
							amil_track_add(l->track, k, kind, expect, now);
						if (pick == AMIL_GEN_PICK_NEW)
							amil_gen_plan_note_valid(&l->plan, k);
						l->c.sent_kind[kind]++;
					}
					put_frame(a, l, out, &n, amil_match_id(&a->match, l->t, k),
						  kind, now, &b);
					l->frames_left--;
				}
			}
		}
		if (n == 0)
			return;
		sign_batch_finish(a, &b);
	}
	sent = rte_eth_tx_burst(a->port, l->txq, out, n);
	l->c.sent += sent;
	if (l->generating)
		l->c.sent_gen += sent;
	if (unlikely(sent < n)) {
		/* Lossless devices (memif) push back: keep the rest, retry
		 * next round, and let RX run meanwhile. */
		memmove(out, out + sent, sizeof(out[0]) * (n - sent));
		l->c.tx_busy++;
	}
	l->npend = (uint16_t)(n - sent);
}

/* ---- RX -------------------------------------------------------------------- */

static void
rx_round(struct app *a, struct lcore *l, uint64_t now)
{
	struct rte_mbuf *m[AMIL_PKTGEN_BURST_MAX];
	uint16_t n = rte_eth_rx_burst(a->port, l->rxq, m, (uint16_t)a->o.burst);
	uint64_t now_ns;

	if (n == 0)
		return;
	now_ns = tsc_to_ns(a, now);
	l->c.rx += n;
	for (uint16_t i = 0; i < n; i++) {
		struct amil_frame_addr fa;
		struct amil_match_out mo;
		const uint8_t *pl;
		size_t plen;
		enum amil_match_result r;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(m[i + 1], void *));
		if (amil_frame_parse_udp(rte_pktmbuf_mtod(m[i], const uint8_t *),
					 rte_pktmbuf_data_len(m[i]), true, &fa, &pl, &plen) != 0) {
			l->c.not_ack++;
			continue;
		}
		r = amil_match_ack(&a->match, pl, plen, &mo);
		switch (r) {
		case AMIL_MATCH_ACCEPTED:
			l->c.accepted++;
			break;
		case AMIL_MATCH_DUPLICATE:
			l->c.duplicate++;
			break;
		case AMIL_MATCH_REJECTED:
			l->c.rejected++;
			l->c.rejected_by[mo.reason < AMIL_REASON_MAX ? mo.reason : 0]++;
			break;
		case AMIL_MATCH_MISMATCHED:
			l->c.mismatched++;
			if (l->c.first_mismatch == NULL)
				l->c.first_mismatch = mo.why;
			continue;
		case AMIL_MATCH_UNEXPECTED:
			l->c.unexpected++;
			if (l->c.first_unexpected == NULL)
				l->c.first_unexpected = mo.why;
			continue;
		default:
			l->c.not_ack++;
			continue;
		}
		if (!(r == AMIL_MATCH_REJECTED && mo.reason == AMIL_REASON_UNAVAILABLE))
			l->c.wait_acks++;
		l->c.late += mo.late;
		l->c.last_ack_tsc = now;
		if (mo.sent_ns <= now_ns)
			amil_hist_record(l->hist, now_ns - mo.sent_ns);
	}
	rte_pktmbuf_free_bulk(m, n);
}

/* ---- lcore loop ------------------------------------------------------------ */

static uint64_t
sum_wait_acks(const struct app *a)
{
	uint64_t s = 0;

	for (uint32_t i = 0; i < a->nb_lc; i++)
		s += __atomic_load_n(&a->lc[i].c.wait_acks, __ATOMIC_RELAXED);
	return s;
}

static uint64_t
sum_expected_acks(const struct app *a)
{
	uint64_t s = 0;

	for (uint32_t t = 0; t < a->nb_tx; t++)
		if (a->tracks[t] != NULL)
			s += amil_track_expected_acks(a->tracks[t]);
	return s;
}

/* An RX role ends when every TX lcore is done and either every ACK that
 * can come has come or --ack-timeout passed since the last TX finished. */
static bool
rx_finished(const struct app *a, uint64_t now)
{
	uint64_t done_at;

	if (__atomic_load_n(&tx_done_count, __ATOMIC_ACQUIRE) < a->nb_tx)
		return false;
	done_at = __atomic_load_n(&tx_done_tsc, __ATOMIC_RELAXED);
	if (now - done_at > a->o.ack_timeout_ms * a->tsc_hz / 1000)
		return true;
	return sum_wait_acks(a) >= sum_expected_acks(a);
}


int
pktgen_lcore_main(void *arg)
{
	struct lcore *l = arg;
	struct app *a = &app;
	uint64_t next_live = a->start_tsc + a->tsc_hz;
	bool is_main = rte_lcore_id() == rte_get_main_lcore();

	for (;;) {
		uint64_t now = rte_rdtsc();

		if (hard_stop)
			break;
		if (l->tx && !l->tx_done) {
			tx_round(a, l, now);
			if (!l->generating && l->npend == 0 &&
			    (l->track == NULL || amil_track_idle(l->track))) {
				__atomic_store_n(&l->tx_done, 1, __ATOMIC_RELAXED);
				__atomic_store_n(&tx_done_tsc, now, __ATOMIC_RELAXED);
				/* Release: the counters and tx_done_tsc above are
				 * visible to whoever sees the count. */
				__atomic_fetch_add(&tx_done_count, 1, __ATOMIC_RELEASE);
			}
		}
		if (l->rx) {
			rx_round(a, l, now);
			if (rx_finished(a, now))
				break;
		} else if (l->tx_done) {
			break;
		}
		if (is_main && now >= next_live) {
			pktgen_live_line(a, now);
			next_live += a->tsc_hz;
		}
	}
	return 0;
}

