/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amil-pktgen: frames, TX and RX rounds, the lcore loop.  See pktgen.h. */
#include "pktgen.h"

/* ---- frames ---------------------------------------------------------------- */

/* Template for 64-byte donations: headers built once by amil_frame_build_udp()
 * over a zero payload; per frame only the payload and UDP checksum change,
 * and the checksum is the template's partial sum plus the payload's (csum.h). */
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
	if (a->hdr_len > PKTGEN_HDR_COPY)
		return -EINVAL;        /* Ethernet + IPv6 + UDP is 62: cannot happen */
	a->csum_off = a->hdr_len - 2;
	memset(a->hdr, 0, sizeof(a->hdr));
	memcpy(a->hdr, frame, a->hdr_len);
	a->hdr_csum_base = pktgen_csum_base(frame + a->csum_off);
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
	c = pktgen_csum_udp64(a->hdr_csum_base, pl);
	memcpy(buf + a->csum_off, &c, 2);
	return a->hdr_len + AMIL_WIRE_LEN;
}

/* ---- TX -------------------------------------------------------------------- */

/* Keep at least @want mbufs at hand, taken raw from the pool (their
 * rte_pktmbuf_reset() is done in build_frames(), next to the other writes
 * to the same mbuf: resetting 32 mbufs in a row stalled on their header
 * lines: about +10 % when moved).  Allocated in chunks of @want (at
 * most the burst), well below the mempool cache size: a bulk get as large
 * as the cache bypasses it and takes cold mbufs from the ring, which cost
 * a third of the TX rate when measured. */
static inline bool
stash_fill(struct app *a, struct lcore *l, unsigned want)
{
	if (l->nstash >= want)
		return true;
	if (rte_mempool_get_bulk(a->pool, (void **)(l->stash + l->nstash), want) != 0) {
		l->c.alloc_fail++;
		return l->nstash >= want;
	}
	l->nstash += want;
	return true;
}

/* A truncated frame (63-byte payload, rare): other IP and UDP lengths, so
 * the full builder over the signed payload. */
static __rte_noinline unsigned
rebuild_truncated(const struct app *a, struct rte_mbuf *m, const uint8_t *pl)
{
	uint8_t copy[AMIL_WIRE_LEN];

	memcpy(copy, pl, sizeof(copy));
	return (unsigned)amil_frame_build_udp(rte_pktmbuf_mtod(m, uint8_t *),
					      rte_pktmbuf_tailroom(m), &a->o.addr, copy,
					      AMIL_WIRE_LEN - 1);
}

/*
 * Frame the @nf donations ids[i] of kinds[i] into stashed mbufs, appended
 * to @out: header template and mbuf fields per frame, the payloads in one
 * amil_gen_payload_burst() call, their tags in one amil_wire_sign_burst()
 * call (four at a time with AVX2), then spoil and UDP checksum per frame.
 * Each frame takes the next seq; all carry the round's clock @now.
 * The caller made sure the stash holds @nf mbufs.
 */
static void
build_frames(const struct app *a, struct lcore *l, const uint64_t ids[], const uint8_t kinds[],
	     unsigned nf, struct rte_mbuf **out, uint64_t now)
{
	void *pl[AMIL_PKTGEN_BURST_MAX];         /* payloads, in the mbufs */
	const uint8_t *key[AMIL_PKTGEN_BURST_MAX];
	const unsigned hdr_len = a->hdr_len, csum_off = a->csum_off;
	const uint16_t len = (uint16_t)(hdr_len + AMIL_WIRE_LEN), base = a->hdr_csum_base;
	unsigned nstash = l->nstash;

	for (unsigned i = 0; i < nf; i++) {
		struct rte_mbuf *m = l->stash[--nstash];
		uint8_t *buf;

		rte_pktmbuf_reset(m);
		buf = rte_pktmbuf_mtod(m, uint8_t *);
		/* A constant 64 bytes, inlined as a few vector moves, rather
		 * than a memcpy() call of hdr_len: what lies past the header
		 * is the payload's place, written next. */
		memcpy(buf, a->hdr, PKTGEN_HDR_COPY);
		m->data_len = len;
		m->pkt_len = len;
		pl[i] = buf + hdr_len;
		out[i] = m;
	}
	l->nstash = nstash;
	amil_gen_payload_burst(a->gen, ids, kinds, nf, tsc_to_ns(a, now), l->seq, pl, key);
	l->seq += nf;
	amil_wire_sign_burst(pl, key, nf);
	for (unsigned i = 0; i < nf; i++) {
		uint16_t c;

		if (unlikely(kinds[i] != AMIL_GEN_VALID)) {
			if (kinds[i] == AMIL_GEN_TRUNCATED) {
				unsigned tl = rebuild_truncated(a, out[i], pl[i]);

				out[i]->data_len = (uint16_t)tl;
				out[i]->pkt_len = tl;
				continue;
			}
			amil_gen_payload_finish(kinds[i], (uint8_t *)pl[i]);
		}
		c = pktgen_csum_udp64(base, pl[i]);
		memcpy((uint8_t *)pl[i] - hdr_len + csum_off, &c, 2);
	}
}

/* One TX round: flush what the queue refused, retransmit what timed out,
 * then as many new frames as the schedule allows. */
static void
tx_round(struct app *a, struct lcore *l, uint64_t now)
{
	struct rte_mbuf **out = l->pend;
	const uint32_t burst = a->o.burst;
	uint64_t retx[AMIL_PKTGEN_BURST_MAX], ids[AMIL_PKTGEN_BURST_MAX];
	uint8_t kinds[AMIL_PKTGEN_BURST_MAX];
	uint16_t n = l->npend, sent;
	unsigned nr = 0;

	if (n == 0) {
		if (!stash_fill(a, l, burst))
			return;
		if (l->track != NULL) {
			nr = amil_track_due(l->track, now, retx, burst);
			for (unsigned i = 0; i < nr; i++) {
				struct amil_track_info info;

				amil_track_lookup(l->track, retx[i], &info);
				ids[n] = amil_match_id(&a->match, l->t, retx[i]);
				kinds[n++] = info.kind;
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
				/* No duplicate or invalid frame left to plan (the
				 * plain --tx-only run): skip the draw per frame. */
				const bool all_new = amil_gen_plan_all_new(&l->plan);

				if (room > l->frames_left)
					room = (uint32_t)l->frames_left;
				due = amil_pace_take(&l->pace, now, room);
				if (all_new && l->track == NULL) {
					/* Nothing to decide or record per frame:
					 * consecutive local indices, all valid. */
					for (uint32_t i = 0; i < due; i++) {
						ids[n] = amil_match_id(&a->match, l->t, l->k_next + i);
						kinds[n++] = AMIL_GEN_VALID;
					}
					l->k_next += due;
					l->c.sent_kind[AMIL_GEN_VALID] += due;
					l->frames_left -= due;
					due = 0;
				}
				for (uint32_t i = 0; i < due; i++) {
					uint64_t k = 0;
					uint8_t kind = AMIL_GEN_VALID;
					enum amil_gen_pick pick = AMIL_GEN_PICK_NEW;

					if (l->track != NULL && !amil_track_can_add(l->track, l->k_next)) {
						/* Window full: these slots of the schedule
						 * are gone; the pacer's debt bound keeps the
						 * catch-up honest. */
						l->c.window_full++;
						break;
					}
					if (!all_new)
						pick = amil_gen_plan_next(&l->plan, &k, &kind);
					if (pick == AMIL_GEN_PICK_DUP) {
						if (l->track != NULL)
							amil_track_add_copy(l->track, k);
						l->c.sent_dup++;
					} else {
						k = l->k_next++;
						if (l->track != NULL) {
							uint8_t st, rs;
							bool expect = amil_gen_expect(kind, &st, &rs);

							amil_track_add(l->track, k, kind, expect, now);
						}
						if (pick == AMIL_GEN_PICK_NEW && !all_new)
							amil_gen_plan_note_valid(&l->plan, k);
						l->c.sent_kind[kind]++;
					}
					ids[n] = amil_match_id(&a->match, l->t, k);
					kinds[n++] = kind;
					l->frames_left--;
				}
			}
		}
		if (n == 0)
			return;
		build_frames(a, l, ids, kinds, n, out, now);
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

