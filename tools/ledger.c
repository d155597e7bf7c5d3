/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-ledger: verify, export and total a donation ledger, for operators
 * and auditors (docs/ledger.md).  Reads the ledger only through
 * lib/amil_ledger_format (amil_ledger_scan with repair_tail false), so it
 * checks exactly what the data plane's start-up recovery checks and never
 * writes to the ledger directory.
 *
 *   amil-ledger verify /var/lib/amil/ledger [--json] [--node-id 3]
 *   amil-ledger export /var/lib/amil/ledger --format csv --from 2026-11-25T00:00:00Z
 *   amil-ledger totals /var/lib/amil/ledger --campaign 7 --json
 *
 * Money is int64 minor units end to end; the decimal form ("123.45") is
 * made by placing the point among the digits, never through a double, and
 * totals are summed with overflow checks rather than left to wrap.
 *
 * Exit status (also in --help): 0 done and intact; 1 the ledger is damaged
 * (export and totals then cover the records before the damage); 2 usage
 * error; 3 the ledger or the output could not be read or written, or a
 * total overflows int64.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "amil_ledger_format.h"

#define PROG "amil-ledger"

enum {
	EXIT_INTACT = 0,
	EXIT_DAMAGED = 1,
	EXIT_USAGE = 2,
	EXIT_FAILED = 3,
};

#define NS_PER_S   UINT64_C(1000000000)
#define MONEY_LEN  48     /* sign, 20 digits, point, up to 20 leading zeros */
#define TIME_LEN   64     /* "2026-11-25T10:00:00.123456789Z" */

_Static_assert(AMIL_EXPONENT_MAX <= 20, "fmt_money pads at most 20 zeros");

/* Options of every subcommand; which ones a subcommand takes is in
 * cmd_opts_allowed(). */
enum opt_id {
	OPT_HELP = 'h',
	OPT_JSON = 256,
	OPT_FORMAT,
	OPT_FROM,
	OPT_TO,
	OPT_CENTER,
	OPT_CAMPAIGN,
	OPT_OUTPUT,
	OPT_NODE,
};

struct filter {
	uint64_t from_ns, to_ns;   /* accepted_ns in [from_ns, to_ns) */
	uint32_t center_id, campaign_id;
	bool has_from, has_to, has_center, has_campaign;
};

struct opts {
	const char *dir;
	const char *output;        /* export: NULL = stdout */
	uint32_t node_id;          /* 0 = any */
	bool json;                 /* verify, totals; export --format json */
	struct filter f;
};

/* ---- help --------------------------------------------------------- */

static const char exit_help[] =
	"Exit status:\n"
	"  0  done; the ledger is intact\n"
	"  1  the ledger is damaged: the place is printed (file, byte offset, record\n"
	"     index, kind); export and totals cover only the records before it\n"
	"  2  usage error (unknown command or option, bad value)\n"
	"  3  the ledger directory or a segment cannot be read, the output cannot be\n"
	"     written, or a total does not fit in int64\n";

static const char time_help[] =
	"Times T are RFC 3339 (2026-11-25T10:00:00Z, 2026-11-25T10:00:00.5+03:00) or\n"
	"integer nanoseconds since the Unix epoch.  --from is inclusive, --to exclusive.\n";

static void
help_main(FILE *f)
{
	fprintf(f,
		"usage: " PROG " verify DIR [--json] [--node-id N]\n"
		"       " PROG " export DIR [--format csv|json] [filters] [--output FILE] [--node-id N]\n"
		"       " PROG " totals DIR [--json] [filters] [--node-id N]\n"
		"       " PROG " COMMAND --help\n"
		"\n"
		"Reads a donation ledger directory (segment files seg-<first seq>.amil) and\n"
		"never modifies it.\n"
		"\n"
		"  verify   check segment headers, record CRCs and sequence continuity\n"
		"  export   write the records as CSV or JSON\n"
		"  totals   count, amount and levy per campaign and currency\n"
		"\n"
		"Filters (export, totals): --from T  --to T  --center ID  --campaign ID\n"
		"--node-id N: every segment and record must carry node id N (damage otherwise).\n"
		"\n"
		"%s\n%s",
		time_help, exit_help);
}

static void
help_verify(FILE *f)
{
	fprintf(f,
		"usage: " PROG " verify DIR [--json] [--node-id N]\n"
		"\n"
		"Checks every segment header (magic, version, CRC), every record (CRC, content),\n"
		"that sequence numbers run on by one within and across segments, and with\n"
		"--node-id the node id of each header and record.  Prints each segment, the\n"
		"record count and the first and last sequence number; on damage, the file,\n"
		"byte offset, record index (0-based within the segment), the kind, and for a\n"
		"sequence gap the expected and found sequence numbers.\n"
		"\n"
		"  --json        one JSON object instead of text\n"
		"  --node-id N   require node id N (1..4294967295)\n"
		"\n%s",
		exit_help);
}

static void
help_export(FILE *f)
{
	fprintf(f,
		"usage: " PROG " export DIR [--format csv|json] [--from T] [--to T] [--center ID]\n"
		"                           [--campaign ID] [--output FILE] [--node-id N]\n"
		"\n"
		"Writes the records that pass the filters, in sequence order.  CSV has a header\n"
		"row; JSON is one array of objects.  Amounts and levies appear twice: as integer\n"
		"minor units (amount_minor) and as exact decimals (amount, \"123.45\" for 12345\n"
		"with exponent 2).  On damage, the records before it are written, the damage\n"
		"goes to stderr and the exit status is 1.\n"
		"\n"
		"  --format F    csv (default) or json\n"
		"  --from T      only records accepted at or after T\n"
		"  --to T        only records accepted before T\n"
		"  --center ID   only this center\n"
		"  --campaign ID only this campaign\n"
		"  --output FILE write there instead of stdout (not inside DIR)\n"
		"  --node-id N   require node id N\n"
		"\n%s\n%s",
		time_help, exit_help);
}

static void
help_totals(FILE *f)
{
	fprintf(f,
		"usage: " PROG " totals DIR [--json] [--from T] [--to T] [--center ID]\n"
		"                           [--campaign ID] [--node-id N]\n"
		"\n"
		"Per campaign, currency and exponent: the number of donations and the exact\n"
		"sums of amount and levy (int64 minor units, shown as decimals).  A sum that\n"
		"would exceed int64 is reported as overflow (exit 3), never wrapped.  On damage\n"
		"the totals cover the records before it (exit 1).\n"
		"\n"
		"  --json        one JSON object instead of a table\n"
		"  --from T, --to T, --center ID, --campaign ID   as for export\n"
		"  --node-id N   require node id N\n"
		"\n%s\n%s",
		time_help, exit_help);
}

/* ---- parsing ------------------------------------------------------ */

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
			return -ERANGE;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Exactly @n decimal digits at *@p. */
static bool
digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* Days from 1970-01-01 to @y-@m-@d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil).  Written out rather than timegm() so the
 * result cannot depend on TZ or on how libc normalises bad fields: those
 * are rejected before we get here. */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned
days_in_month(int y, int m)
{
	static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* RFC 3339 date-time (seconds 00..59, optional fraction of 1..9 digits, Z
 * or +hh:mm / -hh:mm) or integer ns since the epoch, into ns since the
 * epoch.  Returns 0 or -EINVAL (malformed) / -ERANGE (before 1970 or past
 * what a u64 of ns holds, year 2554). */
static int
parse_time(const char *s, uint64_t *ns)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	uint64_t frac = 0, total;
	const char *p = s;
	int64_t secs;

	if (*s >= '0' && *s <= '9' && strchr(s, '-') == NULL && strchr(s, ':') == NULL)
		return parse_u64(s, UINT64_MAX, ns);
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
		return -EINVAL;
	p++;
	if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
	    !digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, n++) {
			if (n == 9)
				return -EINVAL;   /* finer than the ledger's ns */
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
		if (n == 0)
			return -EINVAL;
		for (; n < 9; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	if (secs < 0 || __builtin_mul_overflow((uint64_t)secs, NS_PER_S, &total) ||
	    __builtin_add_overflow(total, frac, &total))
		return -ERANGE;
	*ns = total;
	return 0;
}

/* ---- formatting --------------------------------------------------- */

/* "-123.45" from -12345 and exponent 2, "0.05" from 5: the point is placed
 * among the decimal digits of the integer, so the text is exact. */
static const char *
fmt_money(char buf[static MONEY_LEN], int64_t v, unsigned exp)
{
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	char d[24];
	char *p = buf;
	unsigned n = (unsigned)snprintf(d, sizeof(d), "%" PRIu64, mag);

	if (v < 0)
		*p++ = '-';
	if (exp == 0) {
		memcpy(p, d, n + 1);
	} else if (n <= exp) {
		*p++ = '0';
		*p++ = '.';
		for (unsigned i = n; i < exp; i++)
			*p++ = '0';
		memcpy(p, d, n + 1);
	} else {
		memcpy(p, d, n - exp);
		p += n - exp;
		*p++ = '.';
		memcpy(p, d + n - exp, exp + 1);
	}
	return buf;
}

/* RFC 3339 UTC with all nine fraction digits, so it round-trips exactly. */
static const char *
fmt_time(char buf[static TIME_LEN], uint64_t ns)
{
	time_t s = (time_t)(ns / NS_PER_S);
	struct tm tm;

	if (gmtime_r(&s, &tm) == NULL) {
		snprintf(buf, TIME_LEN, "%" PRIu64 "ns", ns);
		return buf;
	}
	snprintf(buf, TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRIu64 "Z", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % NS_PER_S);
	return buf;
}

/* A JSON string: quotes, backslashes and control bytes escaped; other
 * bytes (file names need not be UTF-8) pass through. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

/* Stable, machine-readable names for --json (the library's strings are
 * for people and may change). */
static const char *
damage_id(enum amil_ledger_damage_kind k)
{
	switch (k) {
	case AMIL_LEDGER_INTACT: return "intact";
	case AMIL_LEDGER_BAD_HEADER: return "bad_header";
	case AMIL_LEDGER_BAD_VERSION: return "bad_version";
	case AMIL_LEDGER_TORN: return "torn";
	case AMIL_LEDGER_BAD_CRC: return "bad_crc";
	case AMIL_LEDGER_BAD_RECORD: return "bad_record";
	case AMIL_LEDGER_SEQ_GAP: return "seq_gap";
	case AMIL_LEDGER_NODE_MISMATCH: return "node_mismatch";
	case AMIL_LEDGER_IO_ERROR: return "io_error";
	}
	return "unknown";
}

/* Would the data plane's start-up recovery cut this as a torn tail?  Mirrors
 * amil_ledger_scan(): damage in the last segment, except a foreign node, an
 * unknown version or a good header with the wrong first_seq (offset 0),
 * which it refuses like damage anywhere else. */
static bool
damage_repairable(const struct amil_ledger_damage *d)
{
	switch (d->kind) {
	case AMIL_LEDGER_BAD_HEADER:
	case AMIL_LEDGER_TORN:
	case AMIL_LEDGER_BAD_CRC:
	case AMIL_LEDGER_BAD_RECORD:
		return d->in_last_segment;
	case AMIL_LEDGER_SEQ_GAP:
		return d->in_last_segment && d->offset != 0;
	default:
		return false;
	}
}

/* One line naming the exact place, for stderr. */
static void
damage_line(FILE *f, const struct amil_ledger_damage *d)
{
	fprintf(f, PROG ": damage: %s: %s at byte offset %" PRIu64 " (record index %" PRIu64 ")",
		d->path, amil_ledger_damage_str(d->kind), d->offset, d->record_index);
	if (d->kind == AMIL_LEDGER_SEQ_GAP)
		fprintf(f, ": expected seq %" PRIu64 ", found %" PRIu64, d->expected_seq,
			d->found_seq);
	fputc('\n', f);
}

/* ---- the ledger directory ----------------------------------------- */

/* Refuse a missing or unreadable directory here: amil_ledger_scan() treats
 * a missing one as an empty ledger (right for a first start), which for an
 * auditor would turn a typo into "intact, 0 records". */
static int
check_dir(const char *dir)
{
	struct stat st;
	DIR *d;

	if (stat(dir, &st) != 0) {
		fprintf(stderr, PROG ": ledger directory %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": %s is not a directory\n", dir);
		return -1;
	}
	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, PROG ": cannot read ledger directory %s: %s\n", dir, strerror(errno));
		return -1;
	}
	closedir(d);
	return 0;
}

/* Names in @dir that a past recovery left: "<segment>.tail-<ns>". */
static unsigned
list_tails(const char *dir, FILE *f, bool json)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, AMIL_LEDGER_SEG_PREFIX, strlen(AMIL_LEDGER_SEG_PREFIX)) != 0 ||
		    strstr(de->d_name, AMIL_LEDGER_SEG_SUFFIX ".tail-") == NULL)
			continue;
		if (f != NULL) {
			if (json) {
				fputs(n ? ", " : "", f);
				json_str(f, de->d_name);
			} else {
				fprintf(f, "saved tail: %s (bytes a start-up recovery cut off)\n",
					de->d_name);
			}
		}
		n++;
	}
	closedir(d);
	return n;
}

/* Map a scan result to the exit status, printing what went wrong. */
static int
scan_status(int ret, const struct amil_ledger_scan_result *res, bool print_damage)
{
	if (ret == 0)
		return EXIT_INTACT;
	if (ret == -EBADMSG) {
		if (print_damage)
			damage_line(stderr, &res->damage);
		return EXIT_DAMAGED;
	}
	if (ret > 0)
		return EXIT_FAILED;   /* a callback failed and said why */
	fprintf(stderr, PROG ": cannot read %s: %s\n",
		res->damage.path[0] != '\0' ? res->damage.path : "the ledger",
		strerror(res->damage.err != 0 ? res->damage.err : -ret));
	return EXIT_FAILED;
}

static bool
filter_pass(const struct filter *f, const struct amil_ledger_rec *r)
{
	return (!f->has_from || r->accepted_ns >= f->from_ns) &&
	       (!f->has_to || r->accepted_ns < f->to_ns) &&
	       (!f->has_center || r->center_id == f->center_id) &&
	       (!f->has_campaign || r->campaign_id == f->campaign_id);
}

/* ---- verify ------------------------------------------------------- */

struct seg_info {
	char name[64];
	struct amil_ledger_hdr h;
	uint64_t bytes, records;
};

struct verify_state {
	struct seg_info *segs;
	size_t n, cap;
	bool name_mismatch;
};

static int
verify_on_segment(void *arg, const char *path, const struct amil_ledger_hdr *h, uint64_t size)
{
	struct verify_state *v = arg;
	struct seg_info *s;

	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct seg_info *ns = realloc(v->segs, cap * sizeof(*ns));

		if (ns == NULL) {
			fprintf(stderr, PROG ": out of memory\n");
			return 1;
		}
		v->segs = ns;
		v->cap = cap;
	}
	s = &v->segs[v->n++];
	snprintf(s->name, sizeof(s->name), "%s", base_name(path));
	s->h = *h;
	s->bytes = size;
	s->records = 0;
	return 0;
}

static int
verify_on_record(void *arg, const struct amil_ledger_rec *r)
{
	struct verify_state *v = arg;

	(void)r;
	v->segs[v->n - 1].records++;
	return 0;
}

static void
verify_text(const struct opts *o, const struct verify_state *v,
	    const struct amil_ledger_scan_result *res, int status)
{
	const struct amil_ledger_damage *d = &res->damage;
	char t[TIME_LEN];

	printf("ledger: %s\n", o->dir);
	for (size_t i = 0; i < v->n; i++) {
		const struct seg_info *s = &v->segs[i];
		char want[64];

		printf("segment %s: node %" PRIu32 ", first_seq %" PRIu64 ", %" PRIu64
		       " records, %" PRIu64 " bytes, created %s\n",
		       s->name, s->h.node_id, s->h.first_seq, s->records, s->bytes,
		       fmt_time(t, s->h.created_ns));
		amil_ledger_seg_name(want, sizeof(want), s->h.first_seq);
		if (strcmp(want, s->name) != 0)
			printf("warning: %s: header says first_seq %" PRIu64 ", so it should be named %s\n",
			       s->name, s->h.first_seq, want);
	}
	list_tails(o->dir, stdout, false);
	printf("segments: %u\n", res->segments);
	printf("records: %" PRIu64 "\n", res->records);
	printf("first_seq: %" PRIu64 "\n", res->first_seq);
	printf("last_seq: %" PRIu64 "\n", res->last_seq);
	if (status == EXIT_INTACT) {
		printf("status: intact\n");
		return;
	}
	if (status != EXIT_DAMAGED)
		return;
	printf("status: DAMAGED (counts above stop at the damage)\n");
	printf("damage: %s\n", amil_ledger_damage_str(d->kind));
	printf("  file: %s\n", d->path);
	printf("  byte offset: %" PRIu64 "\n", d->offset);
	printf("  record index: %" PRIu64 " (0-based, within the segment)\n", d->record_index);
	if (d->kind == AMIL_LEDGER_SEQ_GAP) {
		printf("  expected seq: %" PRIu64 "\n", d->expected_seq);
		printf("  found seq: %" PRIu64 "\n", d->found_seq);
	}
	printf("  in last segment: %s\n", d->in_last_segment ? "yes" : "no");
	if (damage_repairable(d))
		printf("  recovery: the data plane would cut this segment at byte %" PRIu64
		       " on start-up and save the cut bytes to %s.tail-<ns>\n",
		       d->offset, base_name(d->path));
	else
		printf("  recovery: the data plane refuses to start on this; an operator must decide\n");
}

static void
verify_json(const struct opts *o, const struct verify_state *v,
	    const struct amil_ledger_scan_result *res, int status)
{
	const struct amil_ledger_damage *d = &res->damage;

	printf("{\"dir\": ");
	json_str(stdout, o->dir);
	printf(", \"status\": \"%s\", \"segments\": %u, \"records\": %" PRIu64
	       ", \"first_seq\": %" PRIu64 ", \"last_seq\": %" PRIu64 ",\n \"segment_list\": [",
	       status == EXIT_INTACT ? "intact" : status == EXIT_DAMAGED ? "damaged" : "error",
	       res->segments, res->records, res->first_seq, res->last_seq);
	for (size_t i = 0; i < v->n; i++) {
		const struct seg_info *s = &v->segs[i];
		char want[64];

		amil_ledger_seg_name(want, sizeof(want), s->h.first_seq);
		printf("%s\n  {\"file\": ", i ? "," : "");
		json_str(stdout, s->name);
		printf(", \"node_id\": %" PRIu32 ", \"first_seq\": %" PRIu64 ", \"records\": %" PRIu64
		       ", \"bytes\": %" PRIu64 ", \"created_ns\": %" PRIu64 ", \"name_matches\": %s}",
		       s->h.node_id, s->h.first_seq, s->records, s->bytes, s->h.created_ns,
		       strcmp(want, s->name) == 0 ? "true" : "false");
	}
	printf("],\n \"saved_tails\": [");
	list_tails(o->dir, stdout, true);
	printf("],\n \"damage\": ");
	if (status != EXIT_DAMAGED) {
		printf("null}\n");
		return;
	}
	printf("{\"kind\": \"%s\", \"description\": ", damage_id(d->kind));
	json_str(stdout, amil_ledger_damage_str(d->kind));
	printf(", \"file\": ");
	json_str(stdout, d->path);
	printf(", \"offset\": %" PRIu64 ", \"record_index\": %" PRIu64, d->offset, d->record_index);
	if (d->kind == AMIL_LEDGER_SEQ_GAP)
		printf(", \"expected_seq\": %" PRIu64 ", \"found_seq\": %" PRIu64, d->expected_seq,
		       d->found_seq);
	printf(", \"in_last_segment\": %s, \"repaired_at_start\": %s}}\n",
	       d->in_last_segment ? "true" : "false", damage_repairable(d) ? "true" : "false");
}

static int
cmd_verify(const struct opts *o)
{
	struct verify_state v = {0};
	struct amil_ledger_scan_opts so = {
		.on_record = verify_on_record,
		.on_segment = verify_on_segment,
		.arg = &v,
		.repair_tail = false,
		.node_id = o->node_id,
	};
	struct amil_ledger_scan_result res;
	int ret, status;

	ret = amil_ledger_scan(o->dir, &so, &res);
	status = scan_status(ret, &res, true);
	if (o->json)
		verify_json(o, &v, &res, status);
	else
		verify_text(o, &v, &res, status);
	free(v.segs);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the report: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	return status;
}

/* ---- export ------------------------------------------------------- */

struct export_state {
	FILE *out;
	const struct filter *f;
	bool json;
	uint64_t rows;
};

static int
export_on_record(void *arg, const struct amil_ledger_rec *r)
{
	struct export_state *e = arg;
	char amount[MONEY_LEN], levy[MONEY_LEN], t[TIME_LEN];

	if (!filter_pass(e->f, r))
		return 0;
	fmt_money(amount, r->amount_minor, r->exponent);
	fmt_money(levy, r->levy_minor, r->exponent);
	fmt_time(t, r->accepted_ns);
	if (e->json)
		fprintf(e->out,
			"%s\n {\"seq\": %" PRIu64 ", \"accepted_ns\": %" PRIu64 ", \"accepted\": \"%s\""
			", \"node_id\": %" PRIu32 ", \"worker\": %u, \"center_id\": %" PRIu32
			", \"donation_id\": %" PRIu64 ", \"donor_id\": %" PRIu64
			", \"campaign_id\": %" PRIu32 ", \"currency\": \"%.3s\", \"exponent\": %u"
			", \"amount_minor\": %" PRId64 ", \"amount\": \"%s\", \"levy_minor\": %" PRId64
			", \"levy\": \"%s\", \"rate_bp\": %u}",
			e->rows ? "," : "", r->seq, r->accepted_ns, t, r->node_id, r->worker,
			r->center_id, r->donation_id, r->donor_id, r->campaign_id, r->currency,
			r->exponent, r->amount_minor, amount, r->levy_minor, levy, r->rate_bp);
	else
		fprintf(e->out,
			"%" PRIu64 ",%" PRIu64 ",%s,%" PRIu32 ",%u,%" PRIu32 ",%" PRIu64 ",%" PRIu64
			",%" PRIu32 ",%.3s,%u,%" PRId64 ",%s,%" PRId64 ",%s,%u\n",
			r->seq, r->accepted_ns, t, r->node_id, r->worker, r->center_id,
			r->donation_id, r->donor_id, r->campaign_id, r->currency, r->exponent,
			r->amount_minor, amount, r->levy_minor, levy, r->rate_bp);
	e->rows++;
	/* Stop at the first failed write (disk full) instead of scanning on. */
	if (ferror(e->out)) {
		fprintf(stderr, PROG ": writing the export: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/* Refuse an output inside the ledger directory: one mistyped name there
 * (a segment's) would overwrite the ledger this tool must never modify. */
static int
check_output(const char *dir, const char *output)
{
	char *copy = strdup(output), *slash, *out_dir, *led_dir;
	int ret = 0;

	if (copy == NULL)
		return -1;
	slash = strrchr(copy, '/');
	if (slash == NULL)
		out_dir = realpath(".", NULL);
	else if (slash == copy)
		out_dir = realpath("/", NULL);
	else {
		*slash = '\0';
		out_dir = realpath(copy, NULL);
	}
	led_dir = realpath(dir, NULL);
	if (out_dir == NULL) {
		fprintf(stderr, PROG ": --output %s: directory: %s\n", output, strerror(errno));
		ret = -1;
	} else if (led_dir != NULL && strcmp(out_dir, led_dir) == 0) {
		fprintf(stderr, PROG ": --output %s is inside the ledger directory; write it elsewhere\n",
			output);
		ret = -1;
	}
	free(led_dir);
	free(out_dir);
	free(copy);
	return ret;
}

static int
cmd_export(const struct opts *o)
{
	struct export_state e = {.out = stdout, .f = &o->f, .json = o->json};
	struct amil_ledger_scan_opts so = {
		.on_record = export_on_record,
		.arg = &e,
		.repair_tail = false,
		.node_id = o->node_id,
	};
	struct amil_ledger_scan_result res;
	int ret, status;

	if (o->output != NULL) {
		int fd;

		if (check_output(o->dir, o->output) != 0)
			return EXIT_FAILED;
		fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		if (fd < 0 || (e.out = fdopen(fd, "w")) == NULL) {
			fprintf(stderr, PROG ": --output %s: %s\n", o->output, strerror(errno));
			if (fd >= 0)
				close(fd);
			return EXIT_FAILED;
		}
	}
	if (o->json)
		fputc('[', e.out);
	else
		fputs("seq,accepted_ns,accepted,node_id,worker,center_id,donation_id,donor_id,"
		      "campaign_id,currency,exponent,amount_minor,amount,levy_minor,levy,rate_bp\n",
		      e.out);
	ret = amil_ledger_scan(o->dir, &so, &res);
	status = scan_status(ret, &res, true);
	/* Close the array even after damage: what was written stays valid JSON. */
	if (o->json)
		fputs(e.rows ? "\n]\n" : "]\n", e.out);
	if (fflush(e.out) != 0 || ferror(e.out)) {
		fprintf(stderr, PROG ": writing the export: %s\n", strerror(errno));
		status = EXIT_FAILED;
	}
	if (e.out != stdout && fclose(e.out) != 0) {
		fprintf(stderr, PROG ": closing %s: %s\n", o->output, strerror(errno));
		status = EXIT_FAILED;
	}
	if (status == EXIT_DAMAGED)
		fprintf(stderr, PROG ": exported %" PRIu64 " records from before the damage\n", e.rows);
	return status;
}

/* ---- totals ------------------------------------------------------- */

/* One (campaign, currency, exponent).  The key packs them in that order,
 * so sorting by key sorts the report. */
struct group {
	uint64_t key;
	uint32_t campaign_id;
	char currency[AMIL_CURRENCY_LEN];
	uint8_t exponent;
	uint64_t count;
	int64_t amount_minor, levy_minor;
	bool amount_overflow, levy_overflow;
};

struct totals_state {
	const struct filter *f;
	struct group *g;           /* sorted by key */
	size_t n, cap;
	uint64_t records;
	bool overflow;
};

static uint64_t
group_key(const struct amil_ledger_rec *r)
{
	return (uint64_t)r->campaign_id << 32 | (uint64_t)(uint8_t)r->currency[0] << 24 |
	       (uint64_t)(uint8_t)r->currency[1] << 16 | (uint64_t)(uint8_t)r->currency[2] << 8 |
	       r->exponent;
}

/* The group of @r, inserted in key order if new; NULL when out of memory.
 * Groups are few (campaigns x currencies), so a sorted array with binary
 * search is enough. */
static struct group *
group_get(struct totals_state *t, const struct amil_ledger_rec *r)
{
	uint64_t key = group_key(r);
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->g[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->n && t->g[lo].key == key)
		return &t->g[lo];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct group *ng = realloc(t->g, cap * sizeof(*ng));

		if (ng == NULL)
			return NULL;
		t->g = ng;
		t->cap = cap;
	}
	memmove(&t->g[lo + 1], &t->g[lo], (t->n - lo) * sizeof(*t->g));
	t->n++;
	t->g[lo] = (struct group){
		.key = key, .campaign_id = r->campaign_id, .exponent = r->exponent,
	};
	memcpy(t->g[lo].currency, r->currency, AMIL_CURRENCY_LEN);
	return &t->g[lo];
}

static int
totals_on_record(void *arg, const struct amil_ledger_rec *r)
{
	struct totals_state *t = arg;
	struct group *g;

	if (!filter_pass(t->f, r))
		return 0;
	g = group_get(t, r);
	if (g == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	t->records++;
	g->count++;
	/* Once a sum overflowed it stays flagged; its value is meaningless. */
	if (!g->amount_overflow &&
	    __builtin_add_overflow(g->amount_minor, r->amount_minor, &g->amount_minor))
		g->amount_overflow = t->overflow = true;
	if (!g->levy_overflow && __builtin_add_overflow(g->levy_minor, r->levy_minor, &g->levy_minor))
		g->levy_overflow = t->overflow = true;
	return 0;
}

static void
totals_text(const struct totals_state *t)
{
	printf("%-10s %-8s %-8s %12s %24s %24s\n", "campaign", "currency", "exponent", "count",
	       "amount", "levy");
	for (size_t i = 0; i < t->n; i++) {
		const struct group *g = &t->g[i];
		char a[MONEY_LEN], l[MONEY_LEN];

		printf("%-10" PRIu32 " %-8.3s %-8u %12" PRIu64 " %24s %24s\n", g->campaign_id,
		       g->currency, g->exponent, g->count,
		       g->amount_overflow ? "OVERFLOW" : fmt_money(a, g->amount_minor, g->exponent),
		       g->levy_overflow ? "OVERFLOW" : fmt_money(l, g->levy_minor, g->exponent));
	}
	printf("records: %" PRIu64 "\n", t->records);
}

static void
json_money(const char *name, int64_t v, unsigned exp, bool overflow)
{
	char m[MONEY_LEN];

	if (overflow)
		printf(", \"%s_minor\": null, \"%s\": null", name, name);
	else
		printf(", \"%s_minor\": %" PRId64 ", \"%s\": \"%s\"", name, v, name,
		       fmt_money(m, v, exp));
}

static void
totals_json(const struct totals_state *t, int status)
{
	printf("{\"records\": %" PRIu64 ", \"complete\": %s, \"overflow\": %s, \"groups\": [",
	       t->records, status == EXIT_DAMAGED ? "false" : "true", t->overflow ? "true" : "false");
	for (size_t i = 0; i < t->n; i++) {
		const struct group *g = &t->g[i];

		printf("%s\n  {\"campaign_id\": %" PRIu32 ", \"currency\": \"%.3s\", \"exponent\": %u"
		       ", \"count\": %" PRIu64,
		       i ? "," : "", g->campaign_id, g->currency, g->exponent, g->count);
		json_money("amount", g->amount_minor, g->exponent, g->amount_overflow);
		json_money("levy", g->levy_minor, g->exponent, g->levy_overflow);
		printf(", \"overflow\": %s}", g->amount_overflow || g->levy_overflow ? "true" : "false");
	}
	printf("%s]}\n", t->n ? "\n " : "");
}

static int
cmd_totals(const struct opts *o)
{
	struct totals_state t = {.f = &o->f};
	struct amil_ledger_scan_opts so = {
		.on_record = totals_on_record,
		.arg = &t,
		.repair_tail = false,
		.node_id = o->node_id,
	};
	struct amil_ledger_scan_result res;
	int ret, status;

	ret = amil_ledger_scan(o->dir, &so, &res);
	status = scan_status(ret, &res, true);
	if (status == EXIT_INTACT || status == EXIT_DAMAGED) {
		if (o->json)
			totals_json(&t, status);
		else
			totals_text(&t);
	}
	for (size_t i = 0; i < t.n; i++) {
		const struct group *g = &t.g[i];

		if (g->amount_overflow || g->levy_overflow)
			fprintf(stderr, PROG ": campaign %" PRIu32 " %.3s exponent %u: the %s sum exceeds "
				"int64 (%" PRId64 " minor units); not shown, other totals are exact\n",
				g->campaign_id, g->currency, g->exponent,
				g->amount_overflow ? "amount" : "levy", INT64_MAX);
	}
	if (t.overflow && status == EXIT_INTACT)
		status = EXIT_FAILED;
	free(t.g);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the totals: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	return status;
}

/* ---- command line ------------------------------------------------- */

enum cmd { CMD_VERIFY, CMD_EXPORT, CMD_TOTALS };

static const struct option long_opts[] = {
	{"help", no_argument, NULL, OPT_HELP},
	{"json", no_argument, NULL, OPT_JSON},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"from", required_argument, NULL, OPT_FROM},
	{"to", required_argument, NULL, OPT_TO},
	{"center", required_argument, NULL, OPT_CENTER},
	{"campaign", required_argument, NULL, OPT_CAMPAIGN},
	{"output", required_argument, NULL, OPT_OUTPUT},
	{"node-id", required_argument, NULL, OPT_NODE},
	{NULL, 0, NULL, 0},
};

/* "--from" for OPT_FROM: argv[optind - 1] is the value, not the flag,
 * once getopt has consumed a separate argument. */
static const char *
opt_name(int opt)
{
	static char buf[32];

	for (const struct option *lo = long_opts; lo->name != NULL; lo++)
		if (lo->val == opt) {
			snprintf(buf, sizeof(buf), "--%s", lo->name);
			return buf;
		}
	return "?";
}

static bool
cmd_takes(enum cmd c, int opt)
{
	switch (opt) {
	case OPT_HELP:
	case OPT_NODE:
		return true;
	case OPT_JSON:
		return c != CMD_EXPORT;
	case OPT_FORMAT:
	case OPT_OUTPUT:
		return c == CMD_EXPORT;
	default:
		return c != CMD_VERIFY;   /* the filters */
	}
}

static void
help_cmd(enum cmd c, FILE *f)
{
	if (c == CMD_VERIFY)
		help_verify(f);
	else if (c == CMD_EXPORT)
		help_export(f);
	else
		help_totals(f);
}

static int __attribute__((format(printf, 2, 3)))
usage_error(const char *cmd_name, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG " %s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see " PROG " %s --help)\n", cmd_name);
	return EXIT_USAGE;
}

/* Parse the options of subcommand @c (argv[0] is its name).  Returns -1
 * when parsed, or the exit status to leave with (help, usage error). */
static int
parse_cmd(enum cmd c, int argc, char **argv, struct opts *o)
{
	const char *name = argv[0];
	uint64_t v;
	int opt, rc;

	opterr = 0;   /* our messages name the command and the bad value */
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		const char *flag = argv[optind - 1];

		/* Before a value is consumed argv[optind - 1] is the option. */
		if (opt == '?')
			return usage_error(name, "unknown option %s", flag);
		if (opt == ':')
			return usage_error(name, "option %s needs a value", flag);
		flag = opt_name(opt);
		if (!cmd_takes(c, opt))
			return usage_error(name, "option %s does not apply to this command", flag);
		switch (opt) {
		case OPT_HELP:
			help_cmd(c, stdout);
			return EXIT_INTACT;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "csv") == 0)
				o->json = false;
			else if (strcmp(optarg, "json") == 0)
				o->json = true;
			else
				return usage_error(name, "--format %s: expected csv or json", optarg);
			break;
		case OPT_FROM:
		case OPT_TO:
			rc = parse_time(optarg, &v);
			if (rc == -ERANGE)
				return usage_error(name, "%s %s: out of range (1970 to 2554)",
						   flag, optarg);
			if (rc != 0)
				return usage_error(name, "%s %s: expected RFC 3339 (2026-11-25T10:00:00Z)"
						   " or integer ns since the epoch",
						   flag, optarg);
			if (opt == OPT_FROM) {
				o->f.from_ns = v;
				o->f.has_from = true;
			} else {
				o->f.to_ns = v;
				o->f.has_to = true;
			}
			break;
		case OPT_CENTER:
		case OPT_CAMPAIGN:
		case OPT_NODE:
			if (parse_u64(optarg, UINT32_MAX, &v) != 0 || (opt == OPT_NODE && v == 0))
				return usage_error(name, "%s %s: expected an integer %s..4294967295",
						   flag, optarg, opt == OPT_NODE ? "1" : "0");
			if (opt == OPT_CENTER) {
				o->f.center_id = (uint32_t)v;
				o->f.has_center = true;
			} else if (opt == OPT_CAMPAIGN) {
				o->f.campaign_id = (uint32_t)v;
				o->f.has_campaign = true;
			} else {
				o->node_id = (uint32_t)v;
			}
			break;
		case OPT_OUTPUT:
			if (optarg[0] == '\0')
				return usage_error(name, "--output needs a file name");
			o->output = optarg;
			break;
		}
	}
	if (optind >= argc)
		return usage_error(name, "missing the ledger directory DIR");
	if (optind + 1 < argc)
		return usage_error(name, "unexpected argument %s (only one DIR)",
				   argv[optind + 1]);
	o->dir = argv[optind];
	if (o->f.has_from && o->f.has_to && o->f.from_ns >= o->f.to_ns)
		return usage_error(name, "--from must be before --to (the range is [from, to))");
	return -1;
}

int
main(int argc, char **argv)
{
	static const char *const names[] = {"verify", "export", "totals"};
	struct opts o = {0};
	enum cmd c;
	int rc;

	if (argc < 2) {
		help_main(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		for (c = CMD_VERIFY; argc > 2 && c <= CMD_TOTALS; c++)
			if (strcmp(argv[2], names[c]) == 0) {
				help_cmd(c, stdout);
				return EXIT_INTACT;
			}
		if (argc > 2) {
			fprintf(stderr, PROG ": no command %s (verify, export, totals)\n", argv[2]);
			return EXIT_USAGE;
		}
		help_main(stdout);
		return EXIT_INTACT;
	}
	for (c = CMD_VERIFY; c <= CMD_TOTALS; c++)
		if (strcmp(argv[1], names[c]) == 0)
			break;
	if (c > CMD_TOTALS) {
		fprintf(stderr, PROG ": unknown command %s (verify, export, totals; see --help)\n",
			argv[1]);
		return EXIT_USAGE;
	}
	rc = parse_cmd(c, argc - 1, argv + 1, &o);
	if (rc >= 0)
		return rc;
	if (check_dir(o.dir) != 0)
		return EXIT_FAILED;
	switch (c) {
	case CMD_VERIFY:
		return cmd_verify(&o);
	case CMD_EXPORT:
		return cmd_export(&o);
	case CMD_TOTALS:
		return cmd_totals(&o);
	}
	return EXIT_USAGE;
}
