/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amilctl renderers for the schema-1 replies (see ctl_show.h). */
#include "ctl_show.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define KEY_WIDTH 12 /* "public key" and friends, then two spaces */

/* Text of a scalar for display: strings and numbers as they are, literals
 * by name, a missing value as "-"; containers compact JSON, cut to fit. */
static const char *
txt(const struct amil_json_value *v, char *buf, size_t cap)
{
	FILE *f;

	switch (amil_json_type(v)) {
	case AMIL_JSON_STRING: return amil_json_str(v);
	case AMIL_JSON_NUMBER: return amil_json_num(v);
	case AMIL_JSON_TRUE: return "true";
	case AMIL_JSON_FALSE: return "false";
	case AMIL_JSON_NULL: return "-";
	default: break;
	}
	f = fmemopen(buf, cap, "w");
	if (f == NULL)
		return "?";
	amil_json_write(v, f);
	fclose(f);
	buf[cap - 1] = '\0';
	return buf;
}

static const char *
member_txt(const struct amil_json_value *obj, const char *key, char *buf, size_t cap)
{
	return txt(amil_json_get(obj, key), buf, cap);
}

/* u64 member, or @dflt when absent or not an unsigned integer. */
static uint64_t
member_u64(const struct amil_json_value *obj, const char *key, uint64_t dflt)
{
	uint64_t x;

	return amil_json_u64(amil_json_get(obj, key), &x) == 0 ? x : dflt;
}

static void
key(const struct amil_ctl_out *o, const char *k)
{
	fprintf(o->f, "%-*s", KEY_WIDTH, k);
}

/* "2026-11-25T10:00:00.123Z (3.2s ago)", or "-" when @ns is 0/absent. */
static const char *
when(const struct amil_ctl_out *o, uint64_t ns, char *buf, size_t cap)
{
	char a[AMIL_CTL_TIME_LEN], b[AMIL_CTL_TIME_LEN];

	if (ns == 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%s (%s)", amil_ctl_rfc3339(ns, a), amil_ctl_ago(ns, o->now_ns, b));
	return buf;
}

int
amil_ctl_reply_check(const struct amil_json_value *r, char *err, size_t errlen)
{
	const struct amil_json_value *e = amil_json_get(r, "error");
	uint64_t schema;

	if (amil_json_type(r) != AMIL_JSON_OBJECT) {
		snprintf(err, errlen, "malformed reply from amil-controlplane: a JSON %s, not an object",
			 amil_json_type_name(amil_json_type(r)));
		return -EPROTO;
	}
	if (amil_json_u64(amil_json_get(r, "schema"), &schema) != 0) {
		snprintf(err, errlen, "malformed reply from amil-controlplane: no numeric \"schema\"");
		return -EPROTO;
	}
	/* An error reply is understood whatever its schema: its text is the
	 * most useful thing we can show. */
	if (e != NULL) {
		char b[256];

		snprintf(err, errlen, "amil-controlplane: %s", txt(e, b, sizeof(b)));
		return -EREMOTEIO;
	}
	if (schema != AMIL_CTL_SCHEMA) {
		snprintf(err, errlen,
			 "amil-controlplane speaks schema %" PRIu64 "; this amilctl understands %d "
			 "(use --json, or an amilctl of the same release)",
			 schema, AMIL_CTL_SCHEMA);
		return -EPROTO;
	}
	return 0;
}

/* ---- status ---------------------------------------------------------------- */

int
amil_ctl_show_status(const struct amil_json_value *r, const struct amil_ctl_out *o, char *err,
		     size_t errlen)
{
	const struct amil_json_value *node = amil_json_get(r, "node");
	const struct amil_json_value *cl = amil_json_get(r, "cluster");
	const struct amil_json_value *dp = amil_json_get(r, "dataplane");
	const struct amil_json_value *ctr = amil_json_get(r, "counters");
	const char *health, *state;
	char b1[128], b2[128], b3[128], b4[128], b5[128], t[96];
	uint64_t started;

	if (amil_json_type(node) != AMIL_JSON_OBJECT) {
		snprintf(err, errlen, "malformed status reply: no \"node\" object");
		return -EBADMSG;
	}
	key(o, "node");
	fprintf(o->f, "%s (id %s, region %s)\n", member_txt(node, "name", b1, sizeof(b1)),
		member_txt(node, "id", b2, sizeof(b2)), member_txt(node, "region", b3, sizeof(b3)));
	key(o, "endpoint");
	fprintf(o->f, "%s\n", member_txt(node, "endpoint", b1, sizeof(b1)));
	key(o, "public key");
	fprintf(o->f, "%s\n", member_txt(node, "public_key", b1, sizeof(b1)));
	key(o, "version");
	fprintf(o->f, "%s, incarnation %s\n", member_txt(node, "version", b1, sizeof(b1)),
		member_txt(node, "incarnation", b2, sizeof(b2)));
	started = member_u64(node, "started_ns", 0);
	key(o, "started");
	fprintf(o->f, "%s", when(o, started, t, sizeof(t)));
	/* uptime_s is the daemon's own (monotonic) figure: show it as sent,
	 * not recomputed from started_ns, which is wall-clock. */
	if (amil_json_num(amil_json_get(node, "uptime_s")) != NULL)
		fprintf(o->f, ", uptime %ss", amil_json_num(amil_json_get(node, "uptime_s")));
	fputc('\n', o->f);

	health = amil_json_str(amil_json_get(r, "health"));
	key(o, "health");
	amil_ctl_put(o, amil_ctl_state_colour(health), health != NULL ? health : "?");
	fputc('\n', o->f);

	key(o, "cluster");
	fprintf(o->f, "%s: %s members: %s alive, %s suspect, %s dead, %s left\n",
		member_txt(cl, "id", t, sizeof(t)), member_txt(cl, "members", b1, sizeof(b1)),
		member_txt(cl, "alive", b2, sizeof(b2)), member_txt(cl, "suspect", b3, sizeof(b3)),
		member_txt(cl, "dead", b4, sizeof(b4)), member_txt(cl, "left", b5, sizeof(b5)));

	state = amil_json_str(amil_json_get(dp, "state"));
	key(o, "dataplane");
	amil_ctl_put(o, amil_ctl_state_colour(state), state != NULL ? state : "?");
	if (member_u64(dp, "since_ns", 0) != 0)
		fprintf(o->f, " since %s", when(o, member_u64(dp, "since_ns", 0), t, sizeof(t)));
	if (member_u64(dp, "last_seen_ns", 0) != 0)
		fprintf(o->f, "; last seen %s",
			amil_ctl_ago(member_u64(dp, "last_seen_ns", 0), o->now_ns, b1));
	fputc('\n', o->f);

	/* The registry line (daemons before it sent none: skipped). */
	if (amil_json_type(amil_json_get(r, "registry")) == AMIL_JSON_OBJECT) {
		const struct amil_json_value *rg = amil_json_get(r, "registry");
		const char *mode = amil_json_str(amil_json_get(rg, "mode"));

		key(o, "registry");
		if (mode != NULL && strcmp(mode, "cp") == 0)
			fprintf(o->f, "cp, %s names; %s of %s configured appliances reachable, %s needed\n",
				member_txt(rg, "names", b1, sizeof(b1)),
				member_txt(rg, "reachable", b2, sizeof(b2)),
				member_txt(rg, "configured", b3, sizeof(b3)),
				member_txt(rg, "quorum", b4, sizeof(b4)));
		else
			fprintf(o->f, "%s, %s names\n", mode != NULL ? mode : "?",
				member_txt(rg, "names", b1, sizeof(b1)));
	}

	if (amil_json_len(ctr) > 0 && amil_json_type(ctr) == AMIL_JSON_OBJECT) {
		static const char *const hdr[] = {"COUNTER", ">VALUE"};
		struct amil_ctl_table *tb = amil_ctl_table_new(2, hdr);

		if (tb == NULL)
			return -ENOMEM;
		for (const struct amil_json_value *c = amil_json_first(ctr); c != NULL;
		     c = amil_json_next(c)) {
			const char *row[2] = {amil_json_key(c), txt(c, b1, sizeof(b1))};

			amil_ctl_table_add(tb, row, NULL);
		}
		fputs("counters\n", o->f);
		amil_ctl_table_print(tb, o, "  ");
		amil_ctl_table_destroy(&tb);
	}
	return 0;
}

/* ---- nodes ----------------------------------------------------------------- */

int
amil_ctl_show_nodes(const struct amil_json_value *r, const struct amil_ctl_out *o, char *err,
		    size_t errlen)
{
	static const char *const hdr[] = {">ID",   "NAME", "REGION", "STATE", ">INC",
					  "SINCE", "AGO",  "ENDPOINT"};
	static const char *const states[] = {"alive", "suspect", "dead", "left"};
	const struct amil_json_value *nodes = amil_json_get(r, "nodes");
	struct amil_ctl_table *tb;
	size_t count[4] = {0}, other = 0;
	int rc = 0;

	if (amil_json_type(nodes) != AMIL_JSON_ARRAY) {
		snprintf(err, errlen, "malformed nodes reply: no \"nodes\" array");
		return -EBADMSG;
	}
	tb = amil_ctl_table_new(8, hdr);
	if (tb == NULL)
		return -ENOMEM;
	for (const struct amil_json_value *n = amil_json_first(nodes); n != NULL;
	     n = amil_json_next(n)) {
		char id[32], name[160], region[64], inc[32], since[AMIL_CTL_TIME_LEN], ago[AMIL_CTL_TIME_LEN], ep[160];
		const char *state = amil_json_str(amil_json_get(n, "state"));
		uint64_t sns = member_u64(n, "since_ns", 0);
		bool counted = false;

		snprintf(name, sizeof(name), "%s%s", member_txt(n, "name", ep, sizeof(ep)),
			 amil_json_is_true(amil_json_get(n, "is_self")) ? " (self)" : "");
		const char *row[8] = {member_txt(n, "id", id, sizeof(id)),
				      name,
				      member_txt(n, "region", region, sizeof(region)),
				      state != NULL ? state : "?",
				      member_txt(n, "incarnation", inc, sizeof(inc)),
				      sns ? amil_ctl_rfc3339(sns, since) : "-",
				      sns ? amil_ctl_ago(sns, o->now_ns, ago) : "-",
				      member_txt(n, "endpoint", ep, sizeof(ep))};
		const char *sgr[8] = {NULL, NULL, NULL, amil_ctl_state_colour(state)};

		rc = amil_ctl_table_add(tb, row, sgr);
		if (rc != 0)
			goto destroy_table;
		for (size_t i = 0; i < 4; i++)
			if (state != NULL && strcmp(state, states[i]) == 0) {
				count[i]++;
				counted = true;
			}
		other += !counted;
	}
	amil_ctl_table_print(tb, o, "");
	fprintf(o->f, "%zu nodes: %zu alive, %zu suspect, %zu dead, %zu left", amil_ctl_table_rows(tb),
		count[0], count[1], count[2], count[3]);
	if (other)
		fprintf(o->f, ", %zu in another state", other);
	fputc('\n', o->f);
destroy_table:
	amil_ctl_table_destroy(&tb);
	return rc;
}

/* ---- events ---------------------------------------------------------------- */

/* "sby-1 (2)" */
static const char *
event_node(const struct amil_json_value *ev, char *buf, size_t cap)
{
	char a[96], b[32];

	snprintf(buf, cap, "%s (%s)", member_txt(ev, "name", a, sizeof(a)),
		 member_txt(ev, "node_id", b, sizeof(b)));
	return buf;
}

/* The event's time: at_ns when present, else the daemon's "at" text. */
static const char *
event_time(const struct amil_json_value *ev, char buf[AMIL_CTL_TIME_LEN])
{
	uint64_t ns = member_u64(ev, "at_ns", 0);
	const char *at = amil_json_str(amil_json_get(ev, "at"));

	if (ns != 0)
		return amil_ctl_rfc3339(ns, buf);
	return at != NULL ? at : "-";
}

int
amil_ctl_show_events(const struct amil_json_value *r, const struct amil_ctl_out *o, char *err,
		     size_t errlen)
{
	static const char *const hdr[] = {"TIME", "AGO", "EVENT", "NODE", ">INC", ">FROM"};
	const struct amil_json_value *evs = amil_json_get(r, "events");
	struct amil_ctl_table *tb;
	int rc = 0;

	if (amil_json_type(evs) != AMIL_JSON_ARRAY) {
		snprintf(err, errlen, "malformed events reply: no \"events\" array");
		return -EBADMSG;
	}
	if (amil_json_len(evs) == 0) {
		fputs("no events\n", o->f);
		return 0;
	}
	tb = amil_ctl_table_new(6, hdr);
	if (tb == NULL)
		return -ENOMEM;
	for (const struct amil_json_value *e = amil_json_first(evs); e != NULL; e = amil_json_next(e)) {
		char tm[AMIL_CTL_TIME_LEN], ago[AMIL_CTL_TIME_LEN], node[160], inc[32], from[32], ty[64];
		uint64_t ns = member_u64(e, "at_ns", 0);
		const char *type = member_txt(e, "type", ty, sizeof(ty));
		const char *row[6] = {event_time(e, tm),
				      ns ? amil_ctl_ago(ns, o->now_ns, ago) : "-",
				      type,
				      event_node(e, node, sizeof(node)),
				      member_txt(e, "incarnation", inc, sizeof(inc)),
				      member_txt(e, "from_id", from, sizeof(from))};
		const char *sgr[6] = {NULL, NULL, amil_ctl_state_colour(type)};

		rc = amil_ctl_table_add(tb, row, sgr);
		if (rc != 0)
			goto destroy_table;
	}
	amil_ctl_table_print(tb, o, "");
destroy_table:
	amil_ctl_table_destroy(&tb);
	return rc;
}

/* Fixed widths for the streaming form: RFC 3339 with ms is 24 columns, the
 * longest event type ("dataplane_down") 14. */
#define EV_FMT "%-24s  %-14s  %-24s  %5s  %5s\n"

void
amil_ctl_show_event_header(const struct amil_ctl_out *o)
{
	char line[128];

	snprintf(line, sizeof(line), EV_FMT, "TIME", "EVENT", "NODE", "INC", "FROM");
	amil_ctl_put(o, AMIL_CTL_BOLD, line);
}

int
amil_ctl_show_event_line(const struct amil_json_value *ev, const struct amil_ctl_out *o)
{
	char tm[AMIL_CTL_TIME_LEN], node[160], inc[32], from[32], ty[64], typad[32];
	const char *type;

	if (amil_json_type(ev) != AMIL_JSON_OBJECT)
		return -EBADMSG;
	type = member_txt(ev, "type", ty, sizeof(ty));
	/* Pad outside the colour so the escape does not count as width. */
	snprintf(typad, sizeof(typad), "%-14s", type);
	fprintf(o->f, "%-24s  ", event_time(ev, tm));
	amil_ctl_put(o, amil_ctl_state_colour(type), typad);
	fprintf(o->f, "  %-24s  %5s  %5s\n", event_node(ev, node, sizeof(node)),
		member_txt(ev, "incarnation", inc, sizeof(inc)),
		member_txt(ev, "from_id", from, sizeof(from)));
	return 0;
}

/* ---- dataplane stats ------------------------------------------------------- */

/* "name 3, other 1" for the non-zero members of a counter object; returns
 * false when all are zero (or @obj is not an object). */
static bool
nonzero_list(const struct amil_json_value *obj, FILE *f)
{
	bool any = false;

	for (const struct amil_json_value *c = amil_json_first(obj); c != NULL; c = amil_json_next(c)) {
		uint64_t x;

		if (amil_json_u64(c, &x) != 0 || x == 0)
			continue;
		fprintf(f, "%s%s %" PRIu64, any ? ", " : "", amil_json_key(c), x);
		any = true;
	}
	return any;
}

static int
show_currencies(const struct amil_json_value *cur, const struct amil_ctl_out *o)
{
	static const char *const hdr[] = {"CURRENCY", ">ACCEPTED", ">AMOUNT", ">LEVY"};
	struct amil_ctl_table *tb;
	int rc = 0;

	if (amil_json_len(cur) == 0 || amil_json_type(cur) != AMIL_JSON_ARRAY)
		return 0;
	tb = amil_ctl_table_new(4, hdr);
	if (tb == NULL)
		return -ENOMEM;
	for (const struct amil_json_value *c = amil_json_first(cur); c != NULL; c = amil_json_next(c)) {
		char code[16], acc[32], amount[64], levy[64];
		uint64_t e = member_u64(c, "exponent", 0);
		const char *am = amil_json_num(amil_json_get(c, "amount_minor"));
		const char *lv = amil_json_num(amil_json_get(c, "levy_minor"));

		/* Money in major units by moving the decimal point in the
		 * digits: the totals are 128-bit and must print exactly. */
		if (am == NULL || amil_ctl_money(am, (unsigned)e, amount, sizeof(amount)) != 0)
			snprintf(amount, sizeof(amount), "%s", am != NULL ? am : "-");
		if (lv == NULL || amil_ctl_money(lv, (unsigned)e, levy, sizeof(levy)) != 0)
			snprintf(levy, sizeof(levy), "%s", lv != NULL ? lv : "-");
		const char *row[4] = {member_txt(c, "currency", code, sizeof(code)),
				      member_txt(c, "accepted", acc, sizeof(acc)), amount, levy};

		rc = amil_ctl_table_add(tb, row, NULL);
		if (rc != 0)
			goto destroy_table;
	}
	fputs("currencies\n", o->f);
	amil_ctl_table_print(tb, o, "  ");
destroy_table:
	amil_ctl_table_destroy(&tb);
	return rc;
}

static int
show_ports(const struct amil_json_value *ports, const struct amil_ctl_out *o)
{
	static const char *const hdr[] = {">PORT",     "NAME",     ">RX",     ">TX",    ">REPLIES",
					  ">RING_FULL", ">TX_FULL", ">MISSED", ">NOMBUF"};
	static const char *const keys[] = {"port",     "name",    "rx",        "tx",       "replies",
					   "ring_full", "tx_full", "rx_missed", "rx_nombuf"};
	struct amil_ctl_table *tb;
	int rc = 0;

	if (amil_json_len(ports) == 0 || amil_json_type(ports) != AMIL_JSON_ARRAY)
		return 0;
	tb = amil_ctl_table_new(9, hdr);
	if (tb == NULL)
		return -ENOMEM;
	for (const struct amil_json_value *p = amil_json_first(ports); p != NULL; p = amil_json_next(p)) {
		char b[9][64];
		const char *row[9];

		for (int i = 0; i < 9; i++)
			row[i] = member_txt(p, keys[i], b[i], sizeof(b[i]));
		rc = amil_ctl_table_add(tb, row, NULL);
		if (rc != 0)
			goto destroy_table;
	}
	fputs("ports\n", o->f);
	amil_ctl_table_print(tb, o, "  ");
destroy_table:
	amil_ctl_table_destroy(&tb);
	return rc;
}

static int
show_workers(const struct amil_json_value *ws, const struct amil_ctl_out *o)
{
	static const char *const hdr[] = {">WORKER", ">LCORE", ">RX", ">ACCEPTED", ">DUPLICATE",
					  ">REJECTED"};
	struct amil_ctl_table *tb;
	int rc = 0;

	if (amil_json_len(ws) == 0 || amil_json_type(ws) != AMIL_JSON_ARRAY)
		return 0;
	tb = amil_ctl_table_new(6, hdr);
	if (tb == NULL)
		return -ENOMEM;
	for (const struct amil_json_value *w = amil_json_first(ws); w != NULL; w = amil_json_next(w)) {
		char b[5][64], rej[32];
		uint64_t sum = 0, x;

		/* Per worker the daemon sends rejects by reason only. */
		for (const struct amil_json_value *r = amil_json_first(amil_json_get(w, "rejected"));
		     r != NULL; r = amil_json_next(r))
			if (amil_json_u64(r, &x) == 0)
				sum += x;
		snprintf(rej, sizeof(rej), "%" PRIu64, sum);
		const char *row[6] = {member_txt(w, "worker", b[0], 64), member_txt(w, "lcore", b[1], 64),
				      member_txt(w, "rx", b[2], 64),     member_txt(w, "accepted", b[3], 64),
				      member_txt(w, "duplicate", b[4], 64), rej};

		rc = amil_ctl_table_add(tb, row, NULL);
		if (rc != 0)
			goto destroy_table;
	}
	fputs("workers\n", o->f);
	amil_ctl_table_print(tb, o, "  ");
destroy_table:
	amil_ctl_table_destroy(&tb);
	return rc;
}

/* "1.234 ms" from nanoseconds, in integers. */
static const char *
ms3(uint64_t ns, char buf[32])
{
	snprintf(buf, 32, "%" PRIu64 ".%03" PRIu64 " ms", ns / 1000000u, ns % 1000000u / 1000u);
	return buf;
}

static void
show_ledger(const struct amil_json_value *l, const struct amil_ctl_out *o)
{
	uint64_t batches = member_u64(l, "batches", 0), errnum = member_u64(l, "last_errno", 0);
	char a[32], b[32];

	if (amil_json_type(l) != AMIL_JSON_OBJECT)
		return;
	key(o, "ledger");
	if (member_u64(l, "enabled", 0) == 0) {
		amil_ctl_put(o, AMIL_CTL_YELLOW, "off");
		fputs(" (--no-ledger: ACKs are sent from memory)\n", o->f);
		return;
	}
	amil_ctl_put(o, AMIL_CTL_GREEN, "on");
	fprintf(o->f,
		": %" PRIu64 " records durable in %" PRIu64 " batches (largest %" PRIu64
		"), write+fdatasync mean %s, max %s; next seq %" PRIu64 "\n",
		member_u64(l, "records", 0), batches, member_u64(l, "batch_max_seen", 0),
		ms3(batches ? member_u64(l, "sync_ns_total", 0) / batches : 0, a),
		ms3(member_u64(l, "sync_ns_max", 0), b), member_u64(l, "next_seq", 0));
	if (member_u64(l, "refused", 0) || member_u64(l, "write_errors", 0)) {
		char line[256];

		key(o, "");
		snprintf(line, sizeof(line),
			 "%s%" PRIu64 " records REFUSED in %" PRIu64 " failed batches, last error %s",
			 member_u64(l, "alarm", 0) ? "ALARM: " : "", member_u64(l, "refused", 0),
			 member_u64(l, "write_errors", 0), errnum ? strerror((int)errnum) : "-");
		amil_ctl_put(o, AMIL_CTL_RED, line);
		fputc('\n', o->f);
	}
}

int
amil_ctl_show_dataplane_stats(const struct amil_json_value *r, const struct amil_ctl_out *o,
			      char *err, size_t errlen)
{
	const struct amil_json_value *st = amil_json_get(r, "stats");
	const struct amil_json_value *tot = amil_json_get(st, "total");
	const char *state = amil_json_str(amil_json_get(r, "state"));
	int rc;

	(void)err;
	(void)errlen;
	key(o, "dataplane");
	amil_ctl_put(o, amil_ctl_state_colour(state), state != NULL ? state : "?");
	fputc('\n', o->f);
	if (amil_json_type(st) != AMIL_JSON_OBJECT) {
		fputs("no statistics (the data plane has not reported any)\n", o->f);
		return 0;
	}
	key(o, "donations");
	fprintf(o->f,
		"%" PRIu64 " received: %" PRIu64 " accepted, %" PRIu64 " duplicate, %" PRIu64
		" rejected\n",
		member_u64(tot, "donations", 0), member_u64(tot, "accepted", 0),
		member_u64(tot, "duplicate", 0), member_u64(tot, "rejected", 0));
	key(o, "rejected");
	if (!nonzero_list(amil_json_get(tot, "rejected_by_reason"), o->f))
		fputs("none", o->f);
	fputc('\n', o->f);
	key(o, "dropped");
	if (!nonzero_list(amil_json_get(tot, "dropped_by_reason"), o->f))
		fputs("none", o->f);
	fputc('\n', o->f);
	key(o, "frames");
	fprintf(o->f,
		"rx %" PRIu64 ", tx %" PRIu64 ", neighbour/echo replies %" PRIu64
		", ring-full drops %" PRIu64 ", tx-full drops %" PRIu64 "\n",
		member_u64(tot, "rx", 0), member_u64(tot, "tx", 0), member_u64(tot, "replies", 0),
		member_u64(tot, "ring_full", 0), member_u64(tot, "tx_full", 0));
	if (member_u64(st, "totals_overflow", 0) != 0) {
		key(o, "");
		fprintf(o->f, "%" PRIu64 " accepted in currencies beyond the tracked ones\n",
			member_u64(st, "totals_overflow", 0));
	}
	show_ledger(amil_json_get(st, "ledger"), o);
	rc = show_currencies(amil_json_get(st, "currencies"), o);
	if (rc == 0)
		rc = show_ports(amil_json_get(st, "ports"), o);
	if (rc == 0)
		rc = show_workers(amil_json_get(st, "workers"), o);
	return rc;
}

/* ---- any reply ------------------------------------------------------------- */

static void
generic(const struct amil_json_value *v, const struct amil_ctl_out *o, int indent)
{
	char b[256];

	for (const struct amil_json_value *c = amil_json_first(v); c != NULL; c = amil_json_next(c)) {
		const char *k = amil_json_key(c);
		enum amil_json_type t = amil_json_type(c);

		if (indent == 0 && k != NULL && strcmp(k, "schema") == 0)
			continue;
		fprintf(o->f, "%*s", indent, "");
		if (k != NULL)
			fprintf(o->f, "%s:", k);
		else
			fputs("-", o->f);
		if ((t == AMIL_JSON_OBJECT || t == AMIL_JSON_ARRAY) && amil_json_len(c) > 0) {
			fputc('\n', o->f);
			generic(c, o, indent + 2);
		} else {
			fprintf(o->f, " %s\n", txt(c, b, sizeof(b)));
		}
	}
}

int
amil_ctl_show_generic(const struct amil_json_value *r, const struct amil_ctl_out *o, char *err,
		      size_t errlen)
{
	(void)err;
	(void)errlen;
	generic(r, o, 0);
	return 0;
}
