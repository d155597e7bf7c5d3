/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-pktgen: an AMIL/1 load generator that trusts nothing it did not
 * check.
 *
 *   amil-pktgen [EAL options] -- --centers FILE --dst-ip ADDR [options]
 *
 * Lcore roles.  A TX lcore owns a share of the donation ids (first + t +
 * k*T), its pacing schedule (pace.h), its traffic mix (gen.h) and the table
 * of its outstanding donations (track.h); it transmits new frames on its
 * own TX queue and retransmits what timed out.  An RX lcore polls its own
 * RX queue and judges every ACK (match.h), recording latency in its own
 * histogram (hist.h).  One lcore may hold both roles (run to completion).
 * The main lcore, when it has no role, prints the live line and waits.
 *
 * End of a run.  A TX lcore stops generating at --count or --duration (or
 * on SIGINT), then keeps retransmitting until every donation it sent is
 * answered or lost.  RX lcores run until every TX lcore is done and every
 * ACK that can still come has come (or --ack-timeout has passed since).
 * A second SIGINT stops everything at once; what is still unanswered then
 * counts as lost.
 *
 * Counters are per lcore, written only by their lcore and summed by the
 * main lcore (a live line may see a torn sum; the final summary is read
 * after every lcore returned).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include "amil_centers.h"
#include "amil_frame.h"
#include "amil_wire.h"
#include "gen.h"
#include "hist.h"
#include "match.h"
#include "opts.h"
#include "pace.h"
#include "track.h"

#define PROG "amil-pktgen"
#define EXIT_LOST 1
#define EXIT_SETUP 2
#define STASH_MAX (2 * AMIL_PKTGEN_BURST_MAX)
#define DESC 1024

/* Per-lcore counters: written by the owning lcore only. */
struct counters {
	/* TX */
	uint64_t sent;                        /* every donation frame transmitted */
	uint64_t sent_gen;                    /* of which while generating */
	uint64_t sent_kind[AMIL_GEN_KINDS];   /* new frames by kind (first transmission) */
	uint64_t sent_dup;                    /* deliberate duplicates */
	uint64_t retransmits;
	uint64_t tx_busy;                     /* TX queue full: frames kept for later */
	uint64_t window_full;                 /* waits for a free tracking slot */
	uint64_t alloc_fail;
	uint64_t pace_skipped;                /* schedule slots dropped after a stall */
	/* RX */
	uint64_t rx;
	uint64_t not_ack;                     /* frames that are not AMIL/1 ACKs */
	uint64_t accepted, duplicate, rejected;
	uint64_t rejected_by[AMIL_REASON_MAX];
	uint64_t wait_acks;                   /* ACKs that ended a wait (amil_track_ack) */
	uint64_t mismatched, unexpected, late;
	uint64_t last_ack_tsc;
	const char *first_mismatch, *first_unexpected;
};

struct lcore {
	unsigned lcore_id;
	bool tx, rx;
	uint32_t t;                    /* TX index */
	uint16_t txq, rxq;
	/* TX state */
	struct amil_track *track;      /* NULL with --tx-only */
	struct amil_gen_plan plan;
	struct amil_pace pace;
	uint64_t frames_left;          /* --count share; UINT64_MAX with --duration */
	uint64_t k_next;
	uint32_t seq;
	bool generating;
	uint64_t gen_end_tsc;
	struct rte_mbuf *pend[AMIL_PKTGEN_BURST_MAX];
	uint16_t npend;
	struct rte_mbuf *stash[STASH_MAX];
	unsigned nstash;
	uint32_t tx_done;              /* release-stored once finished */
	/* RX state */
	struct amil_hist *hist;
	struct counters c;
} __rte_cache_aligned;

struct app {
	struct amil_pktgen_opts o;
	struct amil_centers *centers;
	struct amil_gen *gen;
	struct amil_track *tracks[AMIL_PKTGEN_MAX_LCORES];
	struct amil_match_ctx match;
	struct rte_mempool *pool;
	uint16_t port;
	uint64_t tsc_hz;
	uint64_t tsc0;                 /* ns clock origin */
	uint64_t ns_mult;              /* ns = (tsc - tsc0) * ns_mult >> 32 */
	uint64_t start_tsc, end_tsc, duration_tsc;
	uint32_t nb_tx, nb_rx, nb_lc;
	struct lcore lc[AMIL_PKTGEN_MAX_LCORES];
	uint8_t hdr[128];              /* Ethernet/IP/UDP of a 64-byte donation */
	unsigned hdr_len, csum_off;    /* csum_off: UDP checksum offset in hdr */
	uint16_t hdr_csum_base;        /* ~checksum of the header with a zero payload,
					* in memory byte order (see build_frame()) */
	bool started;
};

static struct app app;
static volatile sig_atomic_t stop_gen, hard_stop;
static uint32_t tx_done_count;     /* TX lcores finished (atomic) */
static uint64_t tx_done_tsc;       /* when the last one finished */

static void
on_signal(int sig)
{
	(void)sig;
	if (stop_gen)
		hard_stop = 1;
	stop_gen = 1;
}

static inline uint64_t
tsc_to_ns(const struct app *a, uint64_t tsc)
{
	return (uint64_t)(((unsigned __int128)(tsc - a->tsc0) * a->ns_mult) >> 32);
}

/* ---- frames ---------------------------------------------------------------- */

/* Template for 64-byte donations: headers built once by amil_frame_build_udp()
 * over a zero payload; per frame only the payload and UDP checksum change.
 * The checksum is linear: sum(header with zero payload) + sum(payload). */
static int
build_template(struct app *a, uint16_t src_port)
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
static inline unsigned
build_frame(const struct app *a, struct lcore *l, uint8_t *buf, size_t room, uint64_t id,
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

static inline void
put_frame(const struct app *a, struct lcore *l, struct rte_mbuf **out, uint16_t *n, uint64_t id,
	  uint8_t kind, uint64_t now)
{
	struct rte_mbuf *m = l->stash[--l->nstash];
	unsigned len = build_frame(a, l, rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_tailroom(m),
				   id, kind, now);

	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	out[(*n)++] = m;
}

/* One TX round: flush what the queue refused, retransmit what timed out,
 * then as many new frames as the schedule allows. */
static void
tx_round(struct app *a, struct lcore *l, uint64_t now)
{
	struct rte_mbuf **out = l->pend;
	const uint32_t burst = a->o.burst;
	uint64_t retx[AMIL_PKTGEN_BURST_MAX];
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
				put_frame(a, l, out, &n, amil_match_id(&a->match, l->t, retx[i]),
					  info.kind, now);
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
						  kind, now);
					l->frames_left--;
				}
			}
		}
		if (n == 0)
			return;
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

static void live_line(struct app *a, uint64_t now);

static int
lcore_main(void *arg)
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
			live_line(a, now);
			next_live += a->tsc_hz;
		}
	}
	return 0;
}

/* ---- reporting ------------------------------------------------------------- */

static void
sum_counters(const struct app *a, struct counters *s)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		const struct counters *c = &a->lc[i].c;

		s->sent += c->sent;
		s->sent_gen += c->sent_gen;
		for (int k = 0; k < AMIL_GEN_KINDS; k++)
			s->sent_kind[k] += c->sent_kind[k];
		s->sent_dup += c->sent_dup;
		s->retransmits += c->retransmits;
		s->tx_busy += c->tx_busy;
		s->window_full += c->window_full;
		s->alloc_fail += c->alloc_fail;
		s->pace_skipped += c->pace_skipped;
		s->rx += c->rx;
		s->not_ack += c->not_ack;
		s->accepted += c->accepted;
		s->duplicate += c->duplicate;
		s->rejected += c->rejected;
		for (int r = 0; r < AMIL_REASON_MAX; r++)
			s->rejected_by[r] += c->rejected_by[r];
		s->wait_acks += c->wait_acks;
		s->mismatched += c->mismatched;
		s->unexpected += c->unexpected;
		s->late += c->late;
		if (c->last_ack_tsc > s->last_ack_tsc)
			s->last_ack_tsc = c->last_ack_tsc;
		if (s->first_mismatch == NULL)
			s->first_mismatch = c->first_mismatch;
		if (s->first_unexpected == NULL)
			s->first_unexpected = c->first_unexpected;
	}
}

static uint64_t
sum_lost(const struct app *a)
{
	uint64_t s = 0;

	for (uint32_t t = 0; t < a->nb_tx; t++)
		if (a->tracks[t] != NULL)
			s += amil_track_lost(a->tracks[t]);
	return s;
}

static bool live_on;

static void
live_line(struct app *a, uint64_t now)
{
	static uint64_t last_sent, last_acked, last_tsc;
	struct counters s;
	uint64_t acked, dt;

	if (!live_on)
		return;
	sum_counters(a, &s);
	acked = s.accepted + s.duplicate + s.rejected;
	dt = now - (last_tsc ? last_tsc : a->start_tsc);
	if (dt == 0)
		return;
	printf("\r%6.1fs  tx %9.0f pps  ack %9.0f pps  sent %" PRIu64 "  acked %" PRIu64
	       "  lost %" PRIu64 "  mismatched %" PRIu64 "   ",
	       (double)(now - a->start_tsc) / (double)a->tsc_hz,
	       (double)(s.sent - last_sent) * (double)a->tsc_hz / (double)dt,
	       (double)(acked - last_acked) * (double)a->tsc_hz / (double)dt, s.sent, acked,
	       sum_lost(a), s.mismatched);
	fflush(stdout);
	last_sent = s.sent;
	last_acked = acked;
	last_tsc = now;
}

struct result {
	struct counters c;
	uint64_t acked, lost, silent;
	double tx_pps, ack_pps, duration_s;
	uint64_t p50, p90, p99, p999, max;
};

static void
collect(struct app *a, struct result *r)
{
	struct amil_hist *h = amil_hist_create();
	uint64_t gen_end = a->start_tsc;
	double gen_s, ack_s;

	memset(r, 0, sizeof(*r));
	sum_counters(a, &r->c);
	r->acked = r->c.accepted + r->c.duplicate + r->c.rejected;
	r->lost = sum_lost(a);
	r->silent = r->c.sent_kind[AMIL_GEN_BAD_TAG] + r->c.sent_kind[AMIL_GEN_UNKNOWN_CENTER] +
		    r->c.sent_kind[AMIL_GEN_TRUNCATED];
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		if (a->lc[i].tx && a->lc[i].gen_end_tsc > gen_end)
			gen_end = a->lc[i].gen_end_tsc;
		if (h != NULL && a->lc[i].hist != NULL)
			amil_hist_merge(h, a->lc[i].hist);
	}
	gen_s = (double)(gen_end - a->start_tsc) / (double)a->tsc_hz;
	ack_s = r->c.last_ack_tsc > a->start_tsc
			? (double)(r->c.last_ack_tsc - a->start_tsc) / (double)a->tsc_hz
			: 0.0;
	r->duration_s = (double)(a->end_tsc - a->start_tsc) / (double)a->tsc_hz;
	r->tx_pps = gen_s > 0 ? (double)r->c.sent_gen / gen_s : 0.0;
	r->ack_pps = ack_s > 0 ? (double)r->acked / ack_s : 0.0;
	if (h != NULL) {
		r->p50 = amil_hist_quantile(h, 500000);
		r->p90 = amil_hist_quantile(h, 900000);
		r->p99 = amil_hist_quantile(h, 990000);
		r->p999 = amil_hist_quantile(h, 999000);
		r->max = amil_hist_max(h);
	}
	amil_hist_free(h);
}

static void
print_summary(const struct result *r)
{
	const struct counters *c = &r->c;

	if (live_on)
		printf("\n");
	printf(PROG " summary (%.3f s)\n", r->duration_s);
	printf("  sent %" PRIu64 " frames: %" PRIu64 " new valid, %" PRIu64 " duplicates, %" PRIu64
	       " retransmits; invalid: %" PRIu64 " bad tag, %" PRIu64 " unknown center, %" PRIu64
	       " truncated, %" PRIu64 " bad amount, %" PRIu64 " bad currency\n",
	       c->sent, c->sent_kind[AMIL_GEN_VALID], c->sent_dup, c->retransmits,
	       c->sent_kind[AMIL_GEN_BAD_TAG], c->sent_kind[AMIL_GEN_UNKNOWN_CENTER],
	       c->sent_kind[AMIL_GEN_TRUNCATED], c->sent_kind[AMIL_GEN_BAD_AMOUNT],
	       c->sent_kind[AMIL_GEN_BAD_CURRENCY]);
	printf("  acked %" PRIu64 ": accepted %" PRIu64 ", duplicate %" PRIu64 " (late %" PRIu64
	       "), rejected %" PRIu64 "\n",
	       r->acked, c->accepted, c->duplicate, c->late, c->rejected);
	for (int k = 1; k < AMIL_REASON_MAX; k++)
		if (c->rejected_by[k])
			printf("      rejected %-13s %" PRIu64 "\n", amil_reason_name((uint8_t)k),
			       c->rejected_by[k]);
	printf("  expected-silent (no ACK by design) %" PRIu64 "; lost %" PRIu64 "; mismatched %" PRIu64
	       "%s%s%s; unexpected %" PRIu64 "%s%s%s\n",
	       r->silent, r->lost, c->mismatched, c->first_mismatch ? " (first: " : "",
	       c->first_mismatch ? c->first_mismatch : "", c->first_mismatch ? ")" : "",
	       c->unexpected, c->first_unexpected ? " (first: " : "",
	       c->first_unexpected ? c->first_unexpected : "", c->first_unexpected ? ")" : "");
	printf("  rates: tx %.0f pps while generating, ack %.0f pps\n", r->tx_pps, r->ack_pps);
	printf("  latency ns: p50 %" PRIu64 ", p90 %" PRIu64 ", p99 %" PRIu64 ", p99.9 %" PRIu64
	       ", max %" PRIu64 "\n",
	       r->p50, r->p90, r->p99, r->p999, r->max);
	printf("  other: rx %" PRIu64 " frames (%" PRIu64 " not ACKs), tx queue full %" PRIu64
	       " times, window full %" PRIu64 " times, mbuf alloc failures %" PRIu64
	       ", pacing slots skipped %" PRIu64 "\n",
	       c->rx, c->not_ack, c->tx_busy, c->window_full, c->alloc_fail, c->pace_skipped);
}

static int
write_json(const char *path, const struct result *r)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		goto fail;
	fprintf(f,
		"{\"sent\": %" PRIu64 ", \"acked\": %" PRIu64 ", \"accepted\": %" PRIu64
		", \"duplicate\": %" PRIu64 ", \"rejected\": %" PRIu64 ", \"lost\": %" PRIu64
		", \"mismatched\": %" PRIu64 ", \"unexpected\": %" PRIu64 ", \"tx_pps\": %.0f"
		", \"ack_pps\": %.0f, \"duration_s\": %.6f, \"latency_ns\": {\"p50\": %" PRIu64
		", \"p90\": %" PRIu64 ", \"p99\": %" PRIu64 ", \"p999\": %" PRIu64
		", \"max\": %" PRIu64 "}}\n",
		r->c.sent, r->acked, r->c.accepted, r->c.duplicate, r->c.rejected, r->lost,
		r->c.mismatched, r->c.unexpected, r->tx_pps, r->ack_pps, r->duration_s, r->p50,
		r->p90, r->p99, r->p999, r->max);
	if (fclose(f) != 0)
		goto fail;
	/* Write then rename: a reader never sees half a file. */
	if (rename(tmp, path) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
	unlink(tmp);
	return -EIO;
}

/* ---- set-up ---------------------------------------------------------------- */

static bool
lcore_listed(const unsigned *list, uint32_t n, unsigned id)
{
	for (uint32_t i = 0; i < n; i++)
		if (list[i] == id)
			return true;
	return false;
}

/* Decide each lcore's role from --tx-lcores/--rx-lcores or the default split. */
static int
assign_lcores(struct app *a)
{
	const struct amil_pktgen_opts *o = &a->o;
	unsigned lcore, workers[RTE_MAX_LCORE], nw = 0;

	RTE_LCORE_FOREACH_WORKER(lcore)
		workers[nw++] = lcore;
	if (o->nb_tx_lcores || o->nb_rx_lcores) {
		if (o->nb_tx_lcores == 0 || (o->nb_rx_lcores == 0 && !o->tx_only)) {
			fprintf(stderr, PROG ": give both --tx-lcores and --rx-lcores\n");
			return -EINVAL;
		}
		for (uint32_t i = 0; i < o->nb_tx_lcores; i++)
			if (!rte_lcore_is_enabled(o->tx_lcores[i]))
				goto not_enabled;
		for (uint32_t i = 0; i < o->nb_rx_lcores; i++)
			if (!rte_lcore_is_enabled(o->rx_lcores[i]))
				goto not_enabled;
		RTE_LCORE_FOREACH(lcore) {
			bool tx = lcore_listed(o->tx_lcores, o->nb_tx_lcores, lcore);
			bool rx = !o->tx_only && lcore_listed(o->rx_lcores, o->nb_rx_lcores, lcore);

			if (!tx && !rx)
				continue;
			a->lc[a->nb_lc++] = (struct lcore){.lcore_id = lcore, .tx = tx, .rx = rx};
		}
	} else if (nw <= 1) {
		a->lc[0] = (struct lcore){.lcore_id = nw ? workers[0] : rte_get_main_lcore(),
					  .tx = true, .rx = !o->tx_only};
		a->nb_lc = 1;
	} else {
		uint32_t ntx = o->tx_only ? nw : (nw + 1) / 2;

		for (uint32_t i = 0; i < nw && i < AMIL_PKTGEN_MAX_LCORES; i++)
			a->lc[a->nb_lc++] = (struct lcore){.lcore_id = workers[i], .tx = i < ntx,
							   .rx = i >= ntx};
	}
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		struct lcore *l = &a->lc[i];

		if (l->tx)
			l->txq = (uint16_t)(l->t = a->nb_tx++);
		if (l->rx)
			l->rxq = (uint16_t)a->nb_rx++;
	}
	return 0;

not_enabled:
	fprintf(stderr, PROG ": an lcore in --tx-lcores/--rx-lcores is not in the EAL lcore set (-l)\n");
	return -EINVAL;
}

static int
setup_port(struct app *a)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_eth_link link;
	uint16_t rxd = DESC, txd = DESC, nrxq = a->nb_rx ? (uint16_t)a->nb_rx : 1;
	int socket, rc;
	uint64_t deadline;

	if (!rte_eth_dev_is_valid_port(a->port)) {
		fprintf(stderr, PROG ": no DPDK port %u: add a device, e.g. --vdev "
				"net_memif0,role=client,socket=/tmp/amil.sock\n", a->port);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(a->port, &info);
	if (rc != 0)
		goto fail;
	if (info.max_tx_queues < a->nb_tx || info.max_rx_queues < nrxq) {
		fprintf(stderr, PROG ": port %u has %u TX / %u RX queues; %u TX and %u RX lcores "
				"need one each\n", a->port, info.max_tx_queues, info.max_rx_queues,
			a->nb_tx, nrxq);
		return -ENOTSUP;
	}
	socket = rte_eth_dev_socket_id(a->port);
	a->pool = rte_pktmbuf_pool_create("pktgen_mbufs", a->o.mbufs, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE,
					  socket < 0 ? SOCKET_ID_ANY : socket);
	if (a->pool == NULL) {
		fprintf(stderr, PROG ": cannot create %u mbufs: %s (more EAL memory with -m, or "
				"lower --mbufs)\n", a->o.mbufs, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	memset(&conf, 0, sizeof(conf));
	conf.txmode.offloads = info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	rc = rte_eth_dev_configure(a->port, nrxq, (uint16_t)a->nb_tx, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(a->port, &rxd, &txd);
	for (uint16_t q = 0; rc == 0 && q < nrxq; q++)
		rc = rte_eth_rx_queue_setup(a->port, q, rxd, (unsigned)socket, NULL, a->pool);
	for (uint16_t q = 0; rc == 0 && q < a->nb_tx; q++)
		rc = rte_eth_tx_queue_setup(a->port, q, txd, (unsigned)socket, NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(a->port);
	if (rc != 0)
		goto fail;
	a->started = true;
	(void)rte_eth_promiscuous_enable(a->port);
	if (!a->o.has_src_mac) {
		struct rte_ether_addr mac;

		rc = rte_eth_macaddr_get(a->port, &mac);
		if (rc != 0)
			goto fail;
		memcpy(a->o.addr.src_mac, mac.addr_bytes, AMIL_ETH_ALEN);
	}
	/* memif connects asynchronously: wait for the peer. */
	deadline = rte_get_timer_cycles() + a->o.link_timeout_ms * rte_get_timer_hz() / 1000;
	for (;;) {
		memset(&link, 0, sizeof(link));
		rte_eth_link_get_nowait(a->port, &link);
		if (link.link_status == RTE_ETH_LINK_UP)
			break;
		if (rte_get_timer_cycles() > deadline || stop_gen) {
			fprintf(stderr, PROG ": port %u: link still down after %" PRIu64 " ms\n",
				a->port, a->o.link_timeout_ms);
			return -ETIMEDOUT;
		}
		rte_delay_ms(10);
	}
	return 0;
fail:
	/* Drivers return -1 as often as an errno (memif: no server yet). */
	fprintf(stderr, PROG ": port %u: set-up failed (%d%s%s)\n", a->port, rc,
		rc < -1 ? ": " : "", rc < -1 ? strerror(-rc) : "");
	return rc;
}

/* ARP for --dst-ip: request every 250 ms until a reply names its MAC. */
static int
resolve_arp(struct app *a)
{
	const struct amil_frame_addr *ad = &a->o.addr;
	uint64_t hz = rte_get_timer_hz();
	uint64_t deadline = rte_get_timer_cycles() + a->o.arp_timeout_ms * hz / 1000, next = 0;
	char ip[16];

	while (rte_get_timer_cycles() < deadline && !stop_gen) {
		struct rte_mbuf *rx[32];

		if (rte_get_timer_cycles() >= next) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(a->pool);
			uint8_t *f;

			if (m == NULL)
				return -ENOMEM;
			f = (uint8_t *)rte_pktmbuf_append(m, 60);
			if (f == NULL) {
				rte_pktmbuf_free(m);
				return -ENOMEM;
			}
			memset(f, 0, 60);
			memset(f, 0xff, 6);
			memcpy(f + 6, ad->src_mac, 6);
			f[12] = 0x08, f[13] = 0x06;
			f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0, f[18] = 6, f[19] = 4;
			f[20] = 0, f[21] = 1;                      /* request */
			memcpy(f + 22, ad->src_mac, 6);
			memcpy(f + 28, &ad->src_ip4, 4);
			memcpy(f + 38, &ad->dst_ip4, 4);
			if (rte_eth_tx_burst(a->port, 0, &m, 1) != 1)
				rte_pktmbuf_free(m);
			next = rte_get_timer_cycles() + hz / 4;
		}
		for (uint16_t q = 0; q < (a->nb_rx ? a->nb_rx : 1); q++) {
			uint16_t n = rte_eth_rx_burst(a->port, q, rx, 32);

			for (uint16_t i = 0; i < n; i++) {
				const uint8_t *f = rte_pktmbuf_mtod(rx[i], const uint8_t *);

				if (rte_pktmbuf_data_len(rx[i]) >= 42 && f[12] == 0x08 && f[13] == 0x06 &&
				    f[20] == 0 && f[21] == 2 && memcmp(f + 28, &ad->dst_ip4, 4) == 0) {
					memcpy(a->o.addr.dst_mac, f + 22, 6);
					a->o.has_dst_mac = true;
				}
			}
			rte_pktmbuf_free_bulk(rx, n);
		}
		if (a->o.has_dst_mac) {
			inet_ntop(AF_INET, &ad->dst_ip4, ip, sizeof(ip));
			printf(PROG ": ARP: %s is at %02x:%02x:%02x:%02x:%02x:%02x\n", ip,
			       ad->dst_mac[0], ad->dst_mac[1], ad->dst_mac[2], ad->dst_mac[3],
			       ad->dst_mac[4], ad->dst_mac[5]);
			return 0;
		}
		rte_delay_us_sleep(1000);
	}
	inet_ntop(AF_INET, &ad->dst_ip4, ip, sizeof(ip));
	fprintf(stderr, PROG ": no ARP reply for %s within %" PRIu64 " ms (give --dst-mac?)\n", ip,
		a->o.arp_timeout_ms);
	return -ETIMEDOUT;
}

/* Tracking slots per TX lcore: its whole share with --count (no reuse),
 * otherwise what can be outstanding at the rate over all attempts, x2.
 * Never below 8192 (opts.c): duplicates re-send one of the last
 * AMIL_GEN_RECENT (4096) donations, whose slots must not be reused yet. */
static uint32_t
window_size(const struct app *a, uint64_t share)
{
	uint64_t w;

	if (a->o.window)
		return a->o.window;
	if (share > 0 && share <= AMIL_TRACK_CAPACITY_MAX)
		return share < 8192 ? 8192 : (uint32_t)share;
	if (a->o.rate_pps == 0)
		w = UINT64_C(1) << 22;
	else
		w = 2 * a->o.rate_pps / a->nb_tx * a->o.ack_timeout_ms * (a->o.retries + 1) / 1000;
	if (w < 65536)
		w = 65536;
	if (w > AMIL_TRACK_CAPACITY_MAX)
		w = AMIL_TRACK_CAPACITY_MAX;
	return (uint32_t)w;
}

static int
setup_lcores(struct app *a)
{
	uint64_t timeout_tsc = a->o.ack_timeout_ms * a->tsc_hz / 1000;

	for (uint32_t i = 0; i < a->nb_lc; i++) {
		struct lcore *l = &a->lc[i];

		if (l->rx) {
			l->hist = amil_hist_create();
			if (l->hist == NULL)
				return -ENOMEM;
		}
		if (l->tx) {
			uint64_t share = a->o.count / a->nb_tx + (l->t < a->o.count % a->nb_tx);

			if (a->o.count == 0)
				share = 0;
			if (amil_gen_plan_init(&l->plan, share, a->o.dup_frac, a->o.invalid_frac,
					       a->o.seed + l->t) != 0)
				return -EINVAL;
			l->frames_left = a->o.count ? share : UINT64_MAX;
			l->generating = true;
			if (!a->o.tx_only) {
				l->track = amil_track_create(window_size(a, share), timeout_tsc,
							     a->o.retries);
				if (l->track == NULL) {
					fprintf(stderr, PROG ": cannot allocate %u tracking slots\n",
						window_size(a, share));
					return -ENOMEM;
				}
			}
			a->tracks[l->t] = l->track;
		}
	}
	return 0;
}

static void
start_pacing(struct app *a)
{
	/* Each TX lcore paces its share of the rate.  Up to 10 ms of debt is
	 * caught up (a preempted generator on a shared machine keeps its
	 * average); older slots are skipped and counted (pace.h). */
	for (uint32_t i = 0; i < a->nb_lc; i++)
		if (a->lc[i].tx)
			amil_pace_init(&a->lc[i].pace, a->o.rate_pps / a->nb_tx +
					       (a->lc[i].t < a->o.rate_pps % a->nb_tx),
				       a->tsc_hz, a->start_tsc, a->tsc_hz / 100);
}

/* --pcap-out: the same stream, written to a file by the main lcore; no
 * port, no ACKs.  Timestamps follow the rate (1 us apart at rate 0). */
static int
run_pcap(struct app *a)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d;
	struct lcore *l = &a->lc[0];
	uint64_t period_ns = a->o.rate_pps ? 1000000000 / a->o.rate_pps : 1000, i = 0;
	uint8_t frame[AMIL_FRAME_MAX];

	if (p == NULL)
		return -ENOMEM;
	d = pcap_dump_open(p, a->o.pcap_out);
	if (d == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", a->o.pcap_out, pcap_geterr(p));
		pcap_close(p);
		return -EIO;
	}
	a->start_tsc = rte_rdtsc();
	while (l->frames_left > 0 && !stop_gen &&
	       !(a->duration_tsc && i * period_ns >= a->o.duration_ms * 1000000)) {
		struct pcap_pkthdr h;
		uint64_t k, ns = i * period_ns;
		uint8_t kind;
		enum amil_gen_pick pick = amil_gen_plan_next(&l->plan, &k, &kind);
		unsigned len;

		if (pick == AMIL_GEN_PICK_DUP) {
			l->c.sent_dup++;
		} else {
			k = l->k_next++;
			if (pick == AMIL_GEN_PICK_NEW)
				amil_gen_plan_note_valid(&l->plan, k);
			l->c.sent_kind[kind]++;
		}
		len = build_frame(a, l, frame, sizeof(frame), amil_match_id(&a->match, 0, k), kind,
				  a->tsc0 + ns * a->tsc_hz / 1000000000);
		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = (time_t)(ns / 1000000000);
		h.ts.tv_usec = (suseconds_t)(ns % 1000000000 / 1000);
		h.caplen = h.len = len;
		pcap_dump((u_char *)d, &h, frame);
		l->c.sent++;
		l->c.sent_gen++;
		l->frames_left--;
		i++;
	}
	a->end_tsc = l->gen_end_tsc = rte_rdtsc();
	pcap_dump_close(d);
	pcap_close(p);
	printf(PROG ": wrote %s: %" PRIu64 " frames\n", a->o.pcap_out, i);
	return 0;
}

/* Split argv at the first "--": EAL options before, ours after. */
static void
split_args(int argc, char **argv, int *eal_argc, char ***app_argv, int *app_argc)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			*eal_argc = i;
			argv[i] = argv[0];
			*app_argv = argv + i;
			*app_argc = argc - i;
			return;
		}
	}
	*eal_argc = argc;
	*app_argv = NULL;
	*app_argc = 0;
}

int
main(int argc, char **argv)
{
	struct app *a = &app;
	struct result res;
	char err[512];
	char **app_argv;
	int eal_argc, app_argc, rc, status = EXIT_SETUP;

	split_args(argc, argv, &eal_argc, &app_argv, &app_argc);
	if (app_argv == NULL) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
				amil_pktgen_opts_usage(stdout);
				return 0;
			}
		fprintf(stderr, PROG ": missing '--' and the generator options; try '" PROG
				" -- --help'\n");
		return EXIT_SETUP;
	}
	rc = amil_pktgen_opts_parse(&a->o, app_argc, app_argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc < 0) {
		fprintf(stderr, PROG ": %s\n" PROG ": try '" PROG " -- --help'\n", err);
		return EXIT_SETUP;
	}
	a->port = a->o.port_id;
	a->centers = amil_centers_load(a->o.centers, err, sizeof(err));
	if (a->centers == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_SETUP;
	}
	a->gen = amil_gen_create(&(struct amil_gen_conf){
		.centers = a->centers, .seed = a->o.seed, .amount_min = a->o.amount_min,
		.amount_max = a->o.amount_max, .campaigns = a->o.campaigns, .zipf_s = a->o.zipf_s,
		.currency = {a->o.currency[0], a->o.currency[1], a->o.currency[2]},
		.exponent = a->o.exponent});
	if (a->gen == NULL) {
		fprintf(stderr, PROG ": cannot set up the traffic generator: %s\n", strerror(errno));
		goto out_centers;
	}

	rc = rte_eal_init(eal_argc, argv);
	if (rc < 0) {
		fprintf(stderr, PROG ": EAL initialisation failed: %s\n", rte_strerror(rte_errno));
		goto out_gen;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	a->tsc_hz = rte_get_tsc_hz();
	a->tsc0 = rte_rdtsc();
	a->ns_mult = (uint64_t)(((unsigned __int128)1000000000 << 32) / a->tsc_hz);
	a->duration_tsc = a->o.duration_ms * a->tsc_hz / 1000;
	live_on = a->o.live == 1 || (a->o.live == -1 && isatty(STDOUT_FILENO));

	if (a->o.pcap_out != NULL) {
		a->o.tx_only = true;
		a->lc[0] = (struct lcore){.lcore_id = rte_get_main_lcore(), .tx = true};
		a->nb_lc = a->nb_tx = 1;
	} else if (assign_lcores(a) != 0) {
		goto out_eal;
	}
	a->match = (struct amil_match_ctx){.centers = a->centers, .gen = a->gen,
					   .track = a->tracks, .nb_tx = a->nb_tx,
					   .first_id = a->o.first_id, .rate_bp = a->o.rate_bp};
	if (setup_lcores(a) != 0)
		goto out_lcores;

	if (a->o.pcap_out != NULL) {
		if (!a->o.has_src_mac)
			memcpy(a->o.addr.src_mac, (uint8_t[]){2, 0, 0, 0, 0, 2}, 6);
		if (build_template(a, a->o.addr.src_port) != 0 || run_pcap(a) != 0)
			goto out_lcores;
	} else {
		if (setup_port(a) != 0)
			goto out_port;
		if (!a->o.has_dst_mac && resolve_arp(a) != 0)
			goto out_port;
		/* One template: every TX lcore uses the same source port, so
		 * frames of one flow stay in order on RSS devices. */
		if (build_template(a, a->o.addr.src_port) != 0)
			goto out_port;
		printf(PROG ": %u TX lcore(s), %u RX lcore(s), %u centers, %s %" PRIu64 "%s at %s\n",
		       a->nb_tx, a->nb_rx, amil_centers_count(a->centers),
		       a->o.count ? "count" : "duration",
		       a->o.count ? a->o.count : a->o.duration_ms / 1000, a->o.count ? "" : " s",
		       a->o.rate_pps ? "a paced rate" : "full speed");
		fflush(stdout);
		a->start_tsc = rte_rdtsc();
		start_pacing(a);
		for (uint32_t i = 0; i < a->nb_lc; i++)
			if (a->lc[i].lcore_id != rte_get_main_lcore())
				rte_eal_remote_launch(lcore_main, &a->lc[i], a->lc[i].lcore_id);
		{
			struct lcore *mine = NULL;

			for (uint32_t i = 0; i < a->nb_lc; i++)
				if (a->lc[i].lcore_id == rte_get_main_lcore())
					mine = &a->lc[i];
			if (mine != NULL) {
				lcore_main(mine);
			} else {
				/* Main lcore: live line, then wait. */
				uint32_t running;

				do {
					rte_delay_us_sleep(100000);
					live_line(a, rte_rdtsc());
					running = 0;
					for (uint32_t i = 0; i < a->nb_lc; i++)
						if (rte_eal_get_lcore_state(a->lc[i].lcore_id) == RUNNING)
							running++;
				} while (running > 0);
			}
		}
		rte_eal_mp_wait_lcore();
		a->end_tsc = rte_rdtsc();
		for (uint32_t t = 0; t < a->nb_tx; t++)
			if (a->tracks[t] != NULL)
				amil_track_abandon(a->tracks[t]);  /* after a hard stop */
	}

	collect(a, &res);
	print_summary(&res);
	fflush(stdout);
	status = (res.lost > 0 || res.c.mismatched > 0) ? EXIT_LOST : EXIT_SUCCESS;
	if (a->o.json != NULL && write_json(a->o.json, &res) != 0)
		status = EXIT_SETUP;

out_port:
	if (a->started) {
		(void)rte_eth_dev_stop(a->port);
		(void)rte_eth_dev_close(a->port);
	}
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		struct lcore *l = &a->lc[i];

		rte_pktmbuf_free_bulk(l->stash, l->nstash);
		rte_pktmbuf_free_bulk(l->pend, l->npend);
		l->nstash = l->npend = 0;
	}
	rte_mempool_free(a->pool);
out_lcores:
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		amil_track_free(a->lc[i].track);
		amil_hist_free(a->lc[i].hist);
	}
out_eal:
	rte_eal_cleanup();
out_gen:
	amil_gen_free(a->gen);
out_centers:
	amil_centers_free(a->centers);
	return status;
}
