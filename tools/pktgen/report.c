/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amil-pktgen: live line, final summary, --json.  See pktgen.h. */
#include "pktgen.h"

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

bool pktgen_live_on;

void
pktgen_live_line(struct app *a, uint64_t now)
{
	static uint64_t last_sent, last_acked, last_tsc;
	struct counters s;
	uint64_t acked, dt;

	if (!pktgen_live_on)
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



void
pktgen_collect(struct app *a, struct result *r)
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

void
pktgen_print_summary(const struct result *r)
{
	const struct counters *c = &r->c;

	if (pktgen_live_on)
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

int
pktgen_write_json(const char *path, const struct result *r)
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

