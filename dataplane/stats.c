/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Counters registry, DPDK telemetry commands, final JSON and summary.
 * See stats.h for the ownership and memory-ordering rules.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_telemetry.h>

#include "stats.h"

struct lcore_entry {
	unsigned lcore_id;
	int worker_id;                 /* -1: not a worker */
	struct amil_lcore_stats *st;
};

struct amil_stats {
	uint32_t node_id;
	uint16_t nb_ports;
	char port_name[AMIL_MAX_PORTS][RTE_ETH_NAME_MAX_LEN];
	unsigned nb_lcores;
	struct lcore_entry lcore[RTE_MAX_LCORE];
	uint64_t hw_missed[AMIL_MAX_PORTS];  /* rte_eth_stats.imissed at snapshot */
	uint64_t hw_nombuf[AMIL_MAX_PORTS];  /* rte_eth_stats.rx_nombuf at snapshot */
	struct amil_ledger_counters ledger;  /* written by the ledger writer */
};

/* Name -> field of struct amil_ledger_counters, for JSON and telemetry. */
static const struct {
	const char *name;
	size_t off;
} ledger_fields[] = {
#define LF(f) {#f, offsetof(struct amil_ledger_counters, f)}
	LF(enabled), LF(records), LF(batches), LF(bytes), LF(refused), LF(write_errors),
	LF(alarm), LF(last_errno), LF(segments), LF(next_seq), LF(sync_ns_total),
	LF(sync_ns_max), LF(batch_max_seen), LF(recovered), LF(restored), LF(tail_cut_bytes),
#undef LF
};

static uint64_t
ledger_get(const struct amil_stats *s, size_t i)
{
	const uint64_t *p = (const uint64_t *)((const char *)&s->ledger + ledger_fields[i].off);

	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

struct amil_ledger_counters *
amil_stats_ledger(struct amil_stats *s)
{
	return &s->ledger;
}

/* Telemetry callbacks carry no user pointer in DPDK 22.11. */
static struct amil_stats *tel_stats;

struct amil_stats *
amil_stats_create(uint16_t nb_ports, uint32_t node_id)
{
	struct amil_stats *s;

	if (nb_ports > AMIL_MAX_PORTS) {
		rte_errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	s->nb_ports = nb_ports;
	s->node_id = node_id;
	for (uint16_t p = 0; p < nb_ports; p++)
		snprintf(s->port_name[p], sizeof(s->port_name[p]), "port%u", p);
	return s;
}

void
amil_stats_free(struct amil_stats *s)
{
	if (s == NULL)
		return;
	if (tel_stats == s)
		tel_stats = NULL;
	for (unsigned i = 0; i < s->nb_lcores; i++)
		rte_free(s->lcore[i].st);
	free(s);
}

void
amil_stats_port_name(struct amil_stats *s, uint16_t port, const char *name)
{
	if (port < s->nb_ports)
		snprintf(s->port_name[port], sizeof(s->port_name[port]), "%s", name);
}

struct amil_lcore_stats *
amil_stats_lcore_add(struct amil_stats *s, unsigned lcore_id, int worker_id, int socket_id)
{
	struct amil_lcore_stats *st;

	if (s->nb_lcores >= RTE_MAX_LCORE) {
		rte_errno = ENOSPC;
		return NULL;
	}
	st = rte_zmalloc_socket("amil_lcore_stats", sizeof(*st), RTE_CACHE_LINE_SIZE, socket_id);
	if (st == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	s->lcore[s->nb_lcores++] = (struct lcore_entry){lcore_id, worker_id, st};
	return st;
}

void
amil_stats_hw_snapshot(struct amil_stats *s)
{
	for (uint16_t p = 0; p < s->nb_ports; p++) {
		struct rte_eth_stats es;

		if (rte_eth_stats_get(p, &es) == 0) {
			s->hw_missed[p] = es.imissed;
			s->hw_nombuf[p] = es.rx_nombuf;
		}
	}
}

void
amil_totals_add(struct amil_totals *t, int cur_idx, uint8_t exponent, int64_t amount_minor,
		int64_t levy_minor)
{
	/* Linear probing from a hash of (currency, exponent).  A handful of
	 * currencies is the norm; the table holds 64 and counts the rest as
	 * overflow rather than growing on the fast path. */
	unsigned h = ((unsigned)cur_idx * 5u + exponent) * 2654435761u >> 26;

	for (unsigned i = 0; i < AMIL_TOTALS_SLOTS; i++) {
		struct amil_total *e = &t->slot[(h + i) & (AMIL_TOTALS_SLOTS - 1)];

		if (!e->used) {
			e->currency_idx = (uint16_t)cur_idx;
			e->exponent = exponent;
			e->used = 1;
		} else if (e->currency_idx != cur_idx || e->exponent != exponent) {
			continue;
		}
		e->count++;
		e->amount_minor += amount_minor;
		e->levy_minor += levy_minor;
		return;
	}
	t->overflow++;
}

/* Copy one lcore's totals consistently (seqlock read side). */
static void
totals_read(const struct amil_totals *t, struct amil_totals *out)
{
	uint64_t s1, s2;

	do {
		s1 = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
		memcpy(out, t, sizeof(*out));
		/* Order the copy before the second read of seq. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&t->seq, __ATOMIC_RELAXED);
	} while ((s1 & 1) || s1 != s2);
}

/* Merge every lcore's totals into @out (slots may be in any order). */
static void
totals_merge(const struct amil_stats *s, struct amil_totals *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < s->nb_lcores; i++) {
		struct amil_totals t;

		totals_read(&s->lcore[i].st->totals, &t);
		out->overflow += t.overflow;
		for (unsigned k = 0; k < AMIL_TOTALS_SLOTS; k++) {
			const struct amil_total *e = &t.slot[k];
			unsigned j;

			if (!e->used)
				continue;
			for (j = 0; j < AMIL_TOTALS_SLOTS; j++) {
				struct amil_total *o = &out->slot[j];

				if (!o->used) {
					*o = *e;
					break;
				}
				if (o->currency_idx == e->currency_idx && o->exponent == e->exponent) {
					o->count += e->count;
					o->amount_minor += e->amount_minor;
					o->levy_minor += e->levy_minor;
					break;
				}
			}
			if (j == AMIL_TOTALS_SLOTS)
				out->overflow += e->count;
		}
	}
}

static void
port_add(struct amil_port_counters *out, const struct amil_port_counters *c)
{
	out->rx += AMIL_STAT_GET(c->rx);
	out->tx += AMIL_STAT_GET(c->tx);
	out->tx_full += AMIL_STAT_GET(c->tx_full);
	out->replies += AMIL_STAT_GET(c->replies);
	out->ring_full += AMIL_STAT_GET(c->ring_full);
	for (unsigned r = 0; r < AMIL_DROP_MAX; r++)
		out->drop[r] += AMIL_STAT_GET(c->drop[r]);
}

void
amil_stats_port_sum(const struct amil_stats *s, uint16_t port, struct amil_port_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (port >= s->nb_ports)
		return;
	for (unsigned i = 0; i < s->nb_lcores; i++)
		port_add(out, &s->lcore[i].st->port[port]);
}

static void
worker_add(struct amil_worker_counters *out, const struct amil_worker_counters *c)
{
	out->rx += AMIL_STAT_GET(c->rx);
	out->tx += AMIL_STAT_GET(c->tx);
	out->accepted += AMIL_STAT_GET(c->accepted);
	out->duplicate += AMIL_STAT_GET(c->duplicate);
	for (unsigned r = 0; r < AMIL_REASON_MAX; r++)
		out->rejected[r] += AMIL_STAT_GET(c->rejected[r]);
	for (unsigned r = 0; r < AMIL_DROP_MAX; r++)
		out->drop[r] += AMIL_STAT_GET(c->drop[r]);
}

void
amil_stats_worker_sum(const struct amil_stats *s, struct amil_worker_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < s->nb_lcores; i++)
		worker_add(out, &s->lcore[i].st->worker);
}

static uint64_t
rejected_sum(const struct amil_worker_counters *w)
{
	uint64_t n = 0;

	for (unsigned r = 0; r < AMIL_REASON_MAX; r++)
		n += w->rejected[r];
	return n;
}

/* Exact decimal of a 128-bit integer. */
static const char *
i128_str(__int128 v, char buf[48])
{
	char tmp[48];
	unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
	int n = 0, k = 0;

	do {
		tmp[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u != 0);
	if (v < 0)
		buf[k++] = '-';
	while (n > 0)
		buf[k++] = tmp[--n];
	buf[k] = '\0';
	return buf;
}

/* "123456" at exponent 2 -> "1234.56": money shown in major units, exactly. */
static const char *
i128_major(__int128 v, uint8_t exponent, char buf[64])
{
	char digits[48];
	int len, k = 0, neg = v < 0;
	const char *d = i128_str(neg ? -v : v, digits);

	len = (int)strlen(d);
	if (neg)
		buf[k++] = '-';
	if (exponent == 0) {
		strcpy(buf + k, d);
		return buf;
	}
	if (len <= exponent) {
		buf[k++] = '0';
		buf[k++] = '.';
		for (int i = 0; i < exponent - len; i++)
			buf[k++] = '0';
		strcpy(buf + k, d);
		return buf;
	}
	memcpy(buf + k, d, (size_t)(len - exponent));
	k += len - exponent;
	buf[k++] = '.';
	strcpy(buf + k, d + len - exponent);
	return buf;
}

static void
currency_code(uint16_t idx, char out[4])
{
	out[0] = (char)('A' + idx / (26 * 26));
	out[1] = (char)('A' + idx / 26 % 26);
	out[2] = (char)('A' + idx % 26);
	out[3] = '\0';
}

static void
lower(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
}

static void
json_drops(FILE *f, const uint64_t drop[AMIL_DROP_MAX])
{
	fputs("{", f);
	for (unsigned r = 0; r < AMIL_DROP_MAX; r++)
		fprintf(f, "%s\"%s\": %" PRIu64, r ? ", " : "", amil_net_drop_name(r), drop[r]);
	fputs("}", f);
}

static void
json_rejects(FILE *f, const uint64_t rej[AMIL_REASON_MAX])
{
	char name[32];

	fputs("{", f);
	for (unsigned r = 1; r < AMIL_REASON_MAX; r++) {
		lower(amil_reason_name((uint8_t)r), name, sizeof(name));
		fprintf(f, "%s\"%s\": %" PRIu64, r > 1 ? ", " : "", name, rej[r]);
	}
	fputs("}", f);
}

int
amil_stats_write_json(const struct amil_stats *s, FILE *f)
{
	struct amil_worker_counters w;
	struct amil_port_counters p, ptot;
	struct amil_totals t;
	char b1[48], b2[48], code[4];
	int first;

	memset(&ptot, 0, sizeof(ptot));
	fprintf(f, "{\"node_id\": %" PRIu32 ", \"ports\": [", s->node_id);
	for (uint16_t i = 0; i < s->nb_ports; i++) {
		amil_stats_port_sum(s, i, &p);
		port_add(&ptot, &p);
		fprintf(f,
			"%s{\"port\": %u, \"name\": \"%s\", \"rx\": %" PRIu64 ", \"tx\": %" PRIu64
			", \"tx_full\": %" PRIu64 ", \"replies\": %" PRIu64 ", \"ring_full\": %" PRIu64
			", \"rx_missed\": %" PRIu64 ", \"rx_nombuf\": %" PRIu64 ", \"dropped\": ",
			i ? ", " : "", i, s->port_name[i], p.rx, p.tx, p.tx_full, p.replies, p.ring_full,
			s->hw_missed[i], s->hw_nombuf[i]);
		json_drops(f, p.drop);
		fputs("}", f);
	}
	fputs("], \"workers\": [", f);
	first = 1;
	for (unsigned i = 0; i < s->nb_lcores; i++) {
		const struct lcore_entry *e = &s->lcore[i];

		if (e->worker_id < 0)
			continue;
		memset(&w, 0, sizeof(w));
		worker_add(&w, &e->st->worker);
		fprintf(f,
			"%s{\"worker\": %d, \"lcore\": %u, \"rx\": %" PRIu64 ", \"tx\": %" PRIu64
			", \"accepted\": %" PRIu64 ", \"duplicate\": %" PRIu64 ", \"rejected\": ",
			first ? "" : ", ", e->worker_id, e->lcore_id, w.rx, w.tx, w.accepted,
			w.duplicate);
		json_rejects(f, w.rejected);
		fputs(", \"dropped\": ", f);
		json_drops(f, w.drop);
		fputs("}", f);
		first = 0;
	}
	amil_stats_worker_sum(s, &w);
	for (unsigned r = 0; r < AMIL_DROP_MAX; r++)
		ptot.drop[r] += w.drop[r];
	fprintf(f,
		"], \"total\": {\"rx\": %" PRIu64 ", \"tx\": %" PRIu64 ", \"donations\": %" PRIu64
		", \"accepted\": %" PRIu64 ", \"duplicate\": %" PRIu64 ", \"rejected\": %" PRIu64
		", \"ring_full\": %" PRIu64 ", \"tx_full\": %" PRIu64 ", \"replies\": %" PRIu64
		", \"rejected_by_reason\": ",
		ptot.rx, ptot.tx, w.rx, w.accepted, w.duplicate, rejected_sum(&w), ptot.ring_full,
		ptot.tx_full, ptot.replies);
	json_rejects(f, w.rejected);
	fputs(", \"dropped_by_reason\": ", f);
	json_drops(f, ptot.drop);
	totals_merge(s, &t);
	fprintf(f, "}, \"totals_overflow\": %" PRIu64 ", \"currencies\": [", t.overflow);
	first = 1;
	for (unsigned k = 0; k < AMIL_TOTALS_SLOTS; k++) {
		const struct amil_total *e = &t.slot[k];

		if (!e->used)
			continue;
		currency_code(e->currency_idx, code);
		fprintf(f,
			"%s{\"currency\": \"%s\", \"exponent\": %u, \"accepted\": %" PRIu64
			", \"amount_minor\": %s, \"levy_minor\": %s}",
			first ? "" : ", ", code, e->exponent, e->count,
			i128_str(e->amount_minor, b1), i128_str(e->levy_minor, b2));
		first = 0;
	}
	fputs("], \"ledger\": {", f);
	for (size_t i = 0; i < RTE_DIM(ledger_fields); i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", ledger_fields[i].name,
			ledger_get(s, i));
	fputs("}}\n", f);
	return ferror(f) ? -EIO : 0;
}

int
amil_stats_write_prometheus(const struct amil_stats *s, FILE *f)
{
	static const char *const pc_names[] = {"rx", "tx", "tx_full", "replies", "ring_full"};
	struct amil_worker_counters w;
	struct amil_port_counters p;
	struct amil_totals t;
	char b1[48], b2[48], code[4], name[32];

	fputs("# HELP amil_dataplane_port_frames_total Frames per port and direction or fate.\n"
	      "# TYPE amil_dataplane_port_frames_total counter\n", f);
	for (uint16_t i = 0; i < s->nb_ports; i++) {
		uint64_t v[] = {0, 0, 0, 0, 0};

		amil_stats_port_sum(s, i, &p);
		v[0] = p.rx, v[1] = p.tx, v[2] = p.tx_full, v[3] = p.replies, v[4] = p.ring_full;
		for (unsigned k = 0; k < RTE_DIM(pc_names); k++)
			fprintf(f, "amil_dataplane_port_frames_total{port=\"%u\",name=\"%s\",kind=\"%s\"} %" PRIu64 "\n",
				i, s->port_name[i], pc_names[k], v[k]);
	}
	amil_stats_worker_sum(s, &w);
	fputs("# HELP amil_dataplane_donations_total Donations answered, by status.\n"
	      "# TYPE amil_dataplane_donations_total counter\n", f);
	fprintf(f, "amil_dataplane_donations_total{status=\"accepted\"} %" PRIu64 "\n", w.accepted);
	fprintf(f, "amil_dataplane_donations_total{status=\"duplicate\"} %" PRIu64 "\n", w.duplicate);
	fputs("# HELP amil_dataplane_rejected_total REJECTED answers by reason.\n"
	      "# TYPE amil_dataplane_rejected_total counter\n", f);
	for (unsigned r = 1; r < AMIL_REASON_MAX; r++) {
		lower(amil_reason_name((uint8_t)r), name, sizeof(name));
		fprintf(f, "amil_dataplane_rejected_total{reason=\"%s\"} %" PRIu64 "\n", name,
			w.rejected[r]);
	}
	totals_merge(s, &t);
	fputs("# HELP amil_dataplane_accepted_minor_total Accepted amount and levy in minor units.\n"
	      "# TYPE amil_dataplane_accepted_minor_total counter\n", f);
	for (unsigned k = 0; k < AMIL_TOTALS_SLOTS; k++) {
		const struct amil_total *e = &t.slot[k];

		if (!e->used)
			continue;
		currency_code(e->currency_idx, code);
		fprintf(f,
			"amil_dataplane_accepted_minor_total{currency=\"%s\",exponent=\"%u\",what=\"amount\"} %s\n"
			"amil_dataplane_accepted_minor_total{currency=\"%s\",exponent=\"%u\",what=\"levy\"} %s\n",
			code, e->exponent, i128_str(e->amount_minor, b1), code, e->exponent,
			i128_str(e->levy_minor, b2));
	}
	fputs("# HELP amil_dataplane_ledger Ledger writer counters (alarm: 1 while the disk refuses writes).\n"
	      "# TYPE amil_dataplane_ledger gauge\n", f);
	for (size_t i = 0; i < RTE_DIM(ledger_fields); i++)
		fprintf(f, "amil_dataplane_ledger{counter=\"%s\"} %" PRIu64 "\n", ledger_fields[i].name,
			ledger_get(s, i));
	return ferror(f) ? -EIO : 0;
}

void
amil_stats_print_summary(const struct amil_stats *s, FILE *f)
{
	struct amil_worker_counters w;
	struct amil_port_counters p;
	struct amil_totals t;
	char a[64], l[64], code[4];
	uint64_t dropped = 0;

	amil_stats_worker_sum(s, &w);
	fprintf(f, "amil-dataplane node %" PRIu32 " summary\n", s->node_id);
	for (uint16_t i = 0; i < s->nb_ports; i++) {
		amil_stats_port_sum(s, i, &p);
		fprintf(f,
			"  port %u (%s): rx %" PRIu64 ", tx %" PRIu64 ", neighbour/echo replies %" PRIu64
			", ring-full drops %" PRIu64 ", tx-full drops %" PRIu64
			", missed by the device %" PRIu64 "\n",
			i, s->port_name[i], p.rx, p.tx, p.replies, p.ring_full, p.tx_full,
			s->hw_missed[i]);
		for (unsigned r = 0; r < AMIL_DROP_MAX; r++) {
			dropped += p.drop[r];
			if (p.drop[r])
				fprintf(f, "      dropped %-14s %" PRIu64 "\n", amil_net_drop_name(r),
					p.drop[r]);
		}
	}
	for (unsigned r = 0; r < AMIL_DROP_MAX; r++) {
		dropped += w.drop[r];
		if (w.drop[r])
			fprintf(f, "      dropped %-14s %" PRIu64 "\n", amil_net_drop_name(r), w.drop[r]);
	}
	fprintf(f,
		"  donations: %" PRIu64 " authenticated+checked, %" PRIu64 " accepted, %" PRIu64
		" duplicate, %" PRIu64 " rejected; %" PRIu64 " frames dropped without reply\n",
		w.rx - w.drop[AMIL_DROP_UNKNOWN_CENTER] - w.drop[AMIL_DROP_BAD_TAG], w.accepted,
		w.duplicate, rejected_sum(&w), dropped);
	for (unsigned r = 1; r < AMIL_REASON_MAX; r++)
		if (w.rejected[r])
			fprintf(f, "      rejected %-13s %" PRIu64 "\n", amil_reason_name((uint8_t)r),
				w.rejected[r]);
	totals_merge(s, &t);
	for (unsigned k = 0; k < AMIL_TOTALS_SLOTS; k++) {
		const struct amil_total *e = &t.slot[k];

		if (!e->used)
			continue;
		currency_code(e->currency_idx, code);
		fprintf(f, "  %s (exponent %u): %" PRIu64 " accepted, amount %s, levy %s\n", code,
			e->exponent, e->count, i128_major(e->amount_minor, e->exponent, a),
			i128_major(e->levy_minor, e->exponent, l));
	}
	if (t.overflow)
		fprintf(f, "  %" PRIu64 " accepted donations in currencies beyond the %d tracked\n",
			t.overflow, AMIL_TOTALS_SLOTS);
	if (!s->ledger.enabled) {
		fprintf(f, "  ledger: off (--no-ledger): ACKs were sent from memory\n");
		return;
	}
	fprintf(f,
		"  ledger: %" PRIu64 " records durable in %" PRIu64 " batches (largest %" PRIu64
		"), write+fdatasync mean %.3f ms max %.3f ms; next seq %" PRIu64 "\n",
		s->ledger.records, s->ledger.batches, s->ledger.batch_max_seen,
		s->ledger.batches ? (double)s->ledger.sync_ns_total / (double)s->ledger.batches / 1e6
				  : 0.0,
		(double)s->ledger.sync_ns_max / 1e6, s->ledger.next_seq);
	if (s->ledger.refused || s->ledger.write_errors)
		fprintf(f,
			"  ledger: %" PRIu64 " records REFUSED (answered UNAVAILABLE) in %" PRIu64
			" failed batches, last error %s%s\n",
			s->ledger.refused, s->ledger.write_errors, strerror((int)s->ledger.last_errno),
			s->ledger.alarm ? "; ALARM still raised" : "");
}

/* ---- DPDK telemetry ------------------------------------------------------ */

static void
tel_drops(struct rte_tel_data *d, const uint64_t drop[AMIL_DROP_MAX])
{
	char key[48];

	for (unsigned r = 0; r < AMIL_DROP_MAX; r++) {
		snprintf(key, sizeof(key), "drop_%s", amil_net_drop_name(r));
		rte_tel_data_add_dict_u64(d, key, drop[r]);
	}
}

static void
tel_worker(struct rte_tel_data *d, const struct amil_worker_counters *w)
{
	char key[48], name[32];

	rte_tel_data_add_dict_u64(d, "rx", w->rx);
	rte_tel_data_add_dict_u64(d, "tx", w->tx);
	rte_tel_data_add_dict_u64(d, "accepted", w->accepted);
	rte_tel_data_add_dict_u64(d, "duplicate", w->duplicate);
	rte_tel_data_add_dict_u64(d, "rejected", rejected_sum(w));
	for (unsigned r = 1; r < AMIL_REASON_MAX; r++) {
		lower(amil_reason_name((uint8_t)r), name, sizeof(name));
		snprintf(key, sizeof(key), "rejected_%s", name);
		rte_tel_data_add_dict_u64(d, key, w->rejected[r]);
	}
	tel_drops(d, w->drop);
}

static void
tel_port(struct rte_tel_data *d, const struct amil_port_counters *p)
{
	rte_tel_data_add_dict_u64(d, "rx", p->rx);
	rte_tel_data_add_dict_u64(d, "tx", p->tx);
	rte_tel_data_add_dict_u64(d, "tx_full", p->tx_full);
	rte_tel_data_add_dict_u64(d, "replies", p->replies);
	rte_tel_data_add_dict_u64(d, "ring_full", p->ring_full);
	tel_drops(d, p->drop);
}

/* /amil/stats: appliance-wide sums. */
static int
tel_cmd_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct amil_worker_counters w;
	struct amil_port_counters p, sum;
	struct amil_stats *s = tel_stats;

	if (s == NULL)
		return -ENODEV;
	memset(&sum, 0, sizeof(sum));
	for (uint16_t i = 0; i < s->nb_ports; i++) {
		amil_stats_port_sum(s, i, &p);
		port_add(&sum, &p);
	}
	amil_stats_worker_sum(s, &w);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "node_id", s->node_id);
	rte_tel_data_add_dict_u64(d, "port_rx", sum.rx);
	rte_tel_data_add_dict_u64(d, "port_tx", sum.tx);
	rte_tel_data_add_dict_u64(d, "tx_full", sum.tx_full);
	rte_tel_data_add_dict_u64(d, "replies", sum.replies);
	rte_tel_data_add_dict_u64(d, "ring_full", sum.ring_full);
	for (unsigned r = 0; r < AMIL_DROP_MAX; r++)
		w.drop[r] += sum.drop[r];
	tel_worker(d, &w);
	return 0;
}

static int
tel_param_index(const char *params, unsigned limit)
{
	char *end;
	unsigned long v;

	if (params == NULL || *params == '\0')
		return -EINVAL;
	errno = 0;
	v = strtoul(params, &end, 10);
	if (errno != 0 || *end != '\0' || v >= limit)
		return -EINVAL;
	return (int)v;
}

/* /amil/port,<id> */
static int
tel_cmd_port(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct amil_port_counters p;
	struct amil_stats *s = tel_stats;
	int id;

	if (s == NULL)
		return -ENODEV;
	id = tel_param_index(params, s->nb_ports);
	if (id < 0)
		return id;
	amil_stats_port_sum(s, (uint16_t)id, &p);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", s->port_name[id]);
	tel_port(d, &p);
	{
		struct rte_eth_stats es;

		/* Live device counters; the port is running while telemetry is. */
		if (rte_eth_stats_get((uint16_t)id, &es) == 0) {
			rte_tel_data_add_dict_u64(d, "rx_missed", es.imissed);
			rte_tel_data_add_dict_u64(d, "rx_nombuf", es.rx_nombuf);
		}
	}
	return 0;
}

/* /amil/worker,<id> */
static int
tel_cmd_worker(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct amil_worker_counters w;
	struct amil_stats *s = tel_stats;
	int id;

	if (s == NULL)
		return -ENODEV;
	id = tel_param_index(params, RTE_MAX_LCORE);
	if (id < 0)
		return id;
	for (unsigned i = 0; i < s->nb_lcores; i++) {
		if (s->lcore[i].worker_id != id)
			continue;
		memset(&w, 0, sizeof(w));
		worker_add(&w, &s->lcore[i].st->worker);
		rte_tel_data_start_dict(d);
		rte_tel_data_add_dict_int(d, "lcore", (int)s->lcore[i].lcore_id);
		tel_worker(d, &w);
		return 0;
	}
	return -EINVAL;
}

/* /amil/ports and /amil/workers: ids to pass to the commands above. */
static int
tel_cmd_list(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct amil_stats *s = tel_stats;

	if (s == NULL)
		return -ENODEV;
	rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
	if (strcmp(cmd, "/amil/ports") == 0) {
		for (uint16_t i = 0; i < s->nb_ports; i++)
			rte_tel_data_add_array_int(d, i);
	} else {
		for (unsigned i = 0; i < s->nb_lcores; i++)
			if (s->lcore[i].worker_id >= 0)
				rte_tel_data_add_array_int(d, s->lcore[i].worker_id);
	}
	return 0;
}

/* /amil/totals: "USD/2" -> {accepted, amount_minor, levy_minor} (strings:
 * 128-bit values do not fit telemetry's u64). */
static int
tel_cmd_ledger(const char *cmd, const char *params, struct rte_tel_data *d)
{
	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	if (tel_stats == NULL)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	for (size_t i = 0; i < RTE_DIM(ledger_fields); i++)
		rte_tel_data_add_dict_u64(d, ledger_fields[i].name, ledger_get(tel_stats, i));
	return 0;
}

static int
tel_cmd_totals(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct amil_stats *s = tel_stats;
	struct amil_totals t;
	char key[16], code[4], b[48];

	if (s == NULL)
		return -ENODEV;
	totals_merge(s, &t);
	rte_tel_data_start_dict(d);
	for (unsigned k = 0; k < AMIL_TOTALS_SLOTS; k++) {
		const struct amil_total *e = &t.slot[k];
		struct rte_tel_data *c;

		if (!e->used)
			continue;
		c = rte_tel_data_alloc();
		if (c == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(c);
		rte_tel_data_add_dict_u64(c, "accepted", e->count);
		rte_tel_data_add_dict_string(c, "amount_minor", i128_str(e->amount_minor, b));
		rte_tel_data_add_dict_string(c, "levy_minor", i128_str(e->levy_minor, b));
		currency_code(e->currency_idx, code);
		snprintf(key, sizeof(key), "%s/%u", code, e->exponent);
		rte_tel_data_add_dict_container(d, key, c, 0);
	}
	return 0;
}

int
amil_stats_telemetry_register(struct amil_stats *s)
{
	int rc = 0;

	tel_stats = s;
	rc |= rte_telemetry_register_cmd("/amil/stats", tel_cmd_stats,
					 "Appliance-wide AMIL counters. No parameters");
	rc |= rte_telemetry_register_cmd("/amil/ports", tel_cmd_list, "AMIL port ids. No parameters");
	rc |= rte_telemetry_register_cmd("/amil/port", tel_cmd_port,
					 "Counters of one AMIL port. Parameters: int port_id");
	rc |= rte_telemetry_register_cmd("/amil/workers", tel_cmd_list,
					 "AMIL worker ids. No parameters");
	rc |= rte_telemetry_register_cmd("/amil/worker", tel_cmd_worker,
					 "Counters of one AMIL worker. Parameters: int worker_id");
	rc |= rte_telemetry_register_cmd("/amil/ledger", tel_cmd_ledger,
					 "Ledger writer counters. No parameters");
	rc |= rte_telemetry_register_cmd("/amil/totals", tel_cmd_totals,
					 "Accepted amounts and levies per currency/exponent. No parameters");
	return rc ? -EEXIST : 0;
}
