/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-donate: report donations to an Amil node with the reference client
 * (amil_client.h) and print each answer.  One donation from flags, or many
 * from a CSV file, sent one after the other.
 *
 * Exit status (for scripts):
 *   0  every donation answered ACCEPTED or DUPLICATE (recorded once);
 *   1  at least one REJECTED (or answered with another amount than sent);
 *   2  usage, key file or CSV errors: nothing was sent;
 *   3  at least one donation went unanswered (it may or may not have been
 *      recorded: send it again later with the same content).
 * When several apply, the highest wins.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium/utils.h>

#include "amil_client.h"
#include "donate_input.h"

#define PROG "amil-donate"

enum {
	EXIT_ALL_OK = 0,
	EXIT_REJECTED = 1,
	EXIT_USAGE = 2,
	EXIT_UNANSWERED = 3,
};

static void
usage(FILE *f)
{
	fprintf(f,
"Usage: " PROG " --server ADDR --center ID --key-file FILE [options] \\\n"
"           --donation-id N --amount MINOR --currency CCC [--exponent E]\n"
"           [--campaign N] [--donor N]\n"
"       " PROG " --server ADDR --center ID --key-file FILE [options] --csv FILE\n"
"\n"
"Reports donations to an Amil node over AMIL/1 (UDP) and prints the node's\n"
"answer for each: ACCEPTED or DUPLICATE with the levy, or REJECTED with the\n"
"reason.  A donation is retransmitted with the same content until a reply\n"
"signed with the center's key arrives; nothing is reported as recorded\n"
"without one.\n"
"\n"
"Connection:\n"
"  --server ADDR        node address, numeric IPv4 or IPv6 (required)\n"
"  --port N             UDP port (default %d)\n"
"  --center ID          this center's id, 0..4294967295 (required)\n"
"  --key-file FILE      file holding this center's key: one line of 32 hex\n"
"                       digits (required; keep it mode 0600)\n"
"  --timeout-ms N       wait after the first transmission (default %d)\n"
"  --timeout-max-ms N   longest wait; each wait doubles up to it (default %d)\n"
"  --attempts N         transmissions per donation, 1..%d (default %d)\n"
"  --deadline-ms N      give up on a donation after N ms in all (default: none)\n"
"\n"
"One donation:\n"
"  --donation-id N      1..2^64-1, unique per center (required)\n"
"  --amount MINOR       integer amount in minor units, e.g. 1000 for SAR 10.00\n"
"                       (required; 1..10^15)\n"
"  --currency CCC       ISO 4217 code, e.g. SAR (required)\n"
"  --exponent E         minor-unit exponent 0..4 (default 2)\n"
"  --campaign N         campaign id (default 0)\n"
"  --donor N            donor id (default 0 = anonymous)\n"
"\n"
"Many donations:\n"
"  --csv FILE           CSV with a header row naming its columns:\n"
"                       donation_id,amount,currency,exponent,campaign,donor\n"
"                       (exponent, campaign, donor optional); each donation\n"
"                       is sent in turn; the file is checked first\n"
"\n"
"Output:\n"
"  --json               one JSON object per donation instead of words\n"
"  -h, --help           this help\n"
"\n"
"Exit status: 0 all ACCEPTED or DUPLICATE; 1 any REJECTED; 2 bad usage,\n"
"key file or CSV (nothing sent); 3 any donation unanswered.\n"
"\n"
"Example:\n"
"  " PROG " --server 198.18.0.1 --center 1001 --key-file center.key \\\n"
"      --donation-id 42 --amount 1000 --currency SAR\n"
"  donation 42: ACCEPTED, levy 25 of 1000 (minor units), node 1\n",
		AMIL_WIRE_PORT_DEFAULT, AMIL_CLIENT_TIMEOUT_MS_DEFAULT,
		AMIL_CLIENT_TIMEOUT_MAX_MS_DEFAULT, AMIL_CLIENT_ATTEMPTS_MAX,
		AMIL_CLIENT_ATTEMPTS_DEFAULT);
}

static int
bad_usage(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
	return EXIT_USAGE;
}

/* Decimal unsigned in lo..hi, digits only. */
static int
parse_uint(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p == '\0')
		goto bad;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr, PROG ": %s: '%s' is not an integer in %" PRIu64 "..%" PRIu64
		"\nTry '" PROG " --help'.\n", flag, s, lo, hi);
	return -EINVAL;
}

struct tally {
	unsigned accepted, duplicate, rejected, unanswered, mismatched;
};

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
report(const struct amil_donation *d, unsigned line, int rc, const struct amil_ack *a,
       const struct amil_client_stats *st, bool json, struct tally *t)
{
	char cur[AMIL_CURRENCY_LEN + 1];
	bool other_amount = rc == 0 && a->status != AMIL_ACK_REJECTED &&
			    a->amount_minor != d->amount_minor;

	memcpy(cur, d->currency, AMIL_CURRENCY_LEN);
	cur[AMIL_CURRENCY_LEN] = '\0';
	if (rc != 0)
		t->unanswered++;
	else if (a->status == AMIL_ACK_ACCEPTED)
		t->accepted++;
	else if (a->status == AMIL_ACK_DUPLICATE)
		t->duplicate++;
	else
		t->rejected++;
	if (other_amount)
		t->mismatched++;

	if (json) {
		printf("{\"donation_id\": %" PRIu64, d->donation_id);
		if (line != 0)
			printf(", \"line\": %u", line);
		if (rc != 0) {
			printf(", \"status\": \"UNANSWERED\", \"error\": ");
			json_str(strerror(-rc));
			printf(", \"attempts\": %" PRIu32 "}\n", st->last_attempts);
			return;
		}
		printf(", \"status\": \"%s\", \"reason\": \"%s\", \"amount_minor\": %" PRId64
		       ", \"levy_minor\": %" PRId64 ", \"currency\": \"%s\", \"exponent\": %u"
		       ", \"node_id\": %" PRIu32 ", \"attempts\": %" PRIu32 ", \"rtt_us\": %" PRIu64
		       "}\n",
		       amil_ack_status_name(a->status), amil_reason_name(a->reason), a->amount_minor,
		       a->levy_minor, cur, d->exponent, a->node_id, st->last_attempts,
		       st->last_rtt_ns / 1000);
		return;
	}
	if (rc == -ETIMEDOUT) {
		printf("donation %" PRIu64 ": NO ANSWER after %" PRIu32 " attempt%s; not known to "
		       "be recorded: send it again later with the same content\n",
		       d->donation_id, st->last_attempts, st->last_attempts == 1 ? "" : "s");
	} else if (rc != 0) {
		printf("donation %" PRIu64 ": NOT SENT: %s\n", d->donation_id, strerror(-rc));
	} else if (a->status == AMIL_ACK_REJECTED) {
		printf("donation %" PRIu64 ": REJECTED (%s), node %" PRIu32 "\n", d->donation_id,
		       amil_reason_name(a->reason), a->node_id);
	} else {
		printf("donation %" PRIu64 ": %s, levy %" PRId64 " of %" PRId64
		       " (minor units), node %" PRIu32 "%s\n",
		       d->donation_id, amil_ack_status_name(a->status), a->levy_minor,
		       a->amount_minor, a->node_id,
		       a->status == AMIL_ACK_DUPLICATE ? " (recorded earlier; original amount and levy)"
						       : "");
	}
	if (other_amount)
		fprintf(stderr, PROG ": donation %" PRIu64 ": node answered amount %" PRId64
			" but we sent %" PRId64 "\n", d->donation_id, a->amount_minor,
			d->amount_minor);
}

static void
warn_key_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		fprintf(stderr, PROG ": warning: %s is readable by others; chmod 600 it\n", path);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"server", required_argument, NULL, 's'},
		{"port", required_argument, NULL, 'p'},
		{"center", required_argument, NULL, 'c'},
		{"key-file", required_argument, NULL, 'k'},
		{"donation-id", required_argument, NULL, 'D'},
		{"amount", required_argument, NULL, 'A'},
		{"currency", required_argument, NULL, 'C'},
		{"exponent", required_argument, NULL, 'E'},
		{"campaign", required_argument, NULL, 'G'},
		{"donor", required_argument, NULL, 'N'},
		{"csv", required_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"timeout-max-ms", required_argument, NULL, 'T'},
		{"attempts", required_argument, NULL, 'a'},
		{"deadline-ms", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	/* Field flags in enum amil_donate_field order. */
	static const char *const field_flag[AMIL_DONATE_FIELD_MAX] = {
		"--donation-id", "--amount", "--currency", "--exponent", "--campaign", "--donor",
	};
	struct amil_client_opts o = {0};
	struct amil_client *c = NULL;
	struct amil_donate_row one, *rows = NULL;
	struct tally t = {0};
	const char *key_file = NULL, *csv = NULL;
	bool json = false, have_center = false, have_field[AMIL_DONATE_FIELD_MAX] = {false};
	char err[512];
	size_t nrows = 0;
	uint64_t v;
	int opt, status = EXIT_USAGE;

	memset(&one, 0, sizeof(one));
	amil_donate_defaults(&one.d);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		unsigned field = AMIL_DONATE_FIELD_MAX;

		switch (opt) {
		case 's': o.server = optarg; break;
		case 'k': key_file = optarg; break;
		case 'f': csv = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return EXIT_ALL_OK;
		case 'p':
			if (parse_uint("--port", optarg, 1, 65535, &v) != 0)
				return EXIT_USAGE;
			o.port = (uint16_t)v;
			break;
		case 'c':
			if (parse_uint("--center", optarg, 0, UINT32_MAX, &v) != 0)
				return EXIT_USAGE;
			o.center_id = (uint32_t)v;
			have_center = true;
			break;
		case 't':
			if (parse_uint("--timeout-ms", optarg, 1, AMIL_CLIENT_TIMEOUT_MAX_MS, &v) != 0)
				return EXIT_USAGE;
			o.timeout_ms = (uint32_t)v;
			break;
		case 'T':
			if (parse_uint("--timeout-max-ms", optarg, 1, AMIL_CLIENT_TIMEOUT_MAX_MS,
				       &v) != 0)
				return EXIT_USAGE;
			o.timeout_max_ms = (uint32_t)v;
			break;
		case 'a':
			if (parse_uint("--attempts", optarg, 1, AMIL_CLIENT_ATTEMPTS_MAX, &v) != 0)
				return EXIT_USAGE;
			o.max_attempts = (uint32_t)v;
			break;
		case 'd':
			if (parse_uint("--deadline-ms", optarg, 1, UINT32_MAX, &v) != 0)
				return EXIT_USAGE;
			o.deadline_ms = (uint32_t)v;
			break;
		case 'D': field = AMIL_DONATE_DONATION_ID; break;
		case 'A': field = AMIL_DONATE_AMOUNT; break;
		case 'C': field = AMIL_DONATE_CURRENCY; break;
		case 'E': field = AMIL_DONATE_EXPONENT; break;
		case 'G': field = AMIL_DONATE_CAMPAIGN; break;
		case 'N': field = AMIL_DONATE_DONOR; break;
		case ':':
			return bad_usage("%s needs a value", argv[optind - 1], "");
		default:
			return bad_usage("unknown option '%s'", argv[optind - 1], "");
		}
		if (field != AMIL_DONATE_FIELD_MAX) {
			char why[160];

			if (amil_donate_field_set(&one.d, field, optarg, why, sizeof(why)) != 0)
				return bad_usage("%s: %s", field_flag[field], why);
			have_field[field] = true;
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind], "");
	if (o.server == NULL)
		return bad_usage("--server is required (the node's IPv4 or IPv6 address)", "", "");
	if (!have_center)
		return bad_usage("--center is required (this center's id)", "", "");
	if (key_file == NULL)
		return bad_usage("--key-file is required (a file with the center's key, 32 hex "
				 "digits)", "", "");
	if (o.timeout_max_ms != 0 && o.timeout_ms > o.timeout_max_ms)
		return bad_usage("--timeout-ms must not exceed --timeout-max-ms", "", "");
	if (csv != NULL) {
		for (unsigned f = 0; f < AMIL_DONATE_FIELD_MAX; f++)
			if (have_field[f])
				return bad_usage("%s cannot be combined with --csv (the CSV "
						 "holds the donations)", field_flag[f], "");
	} else {
		for (unsigned f = 0; f <= AMIL_DONATE_CURRENCY; f++)
			if (!have_field[f])
				return bad_usage("%s is required (or give --csv FILE)",
						 field_flag[f], "");
	}

	if (amil_donate_key_load(key_file, o.key, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_USAGE;
	}
	warn_key_mode(key_file);
	if (csv != NULL) {
		if (amil_donate_csv_load(csv, &rows, &nrows, err, sizeof(err)) != 0) {
			fprintf(stderr, PROG ": %s\n", err);
			goto out;
		}
	} else {
		rows = &one;
		nrows = 1;
	}

	c = amil_client_new(&o);
	if (c == NULL) {
		if (errno == EINVAL)
			fprintf(stderr, PROG ": --server: '%s' is not a numeric IPv4 or IPv6 "
				"address\n", o.server);
		else
			fprintf(stderr, PROG ": cannot reach %s: %s\n", o.server, strerror(errno));
		status = errno == EINVAL ? EXIT_USAGE : EXIT_UNANSWERED;
		goto out;
	}
	for (size_t i = 0; i < nrows; i++) {
		struct amil_client_stats st;
		struct amil_ack a;
		int rc = amil_client_donate(c, &rows[i].d, &a);

		amil_client_stats_get(c, &st);
		report(&rows[i].d, csv != NULL ? rows[i].line : 0, rc, &a, &st, json, &t);
		fflush(stdout);
	}
	if (csv != NULL) {
		struct amil_client_stats st;

		amil_client_stats_get(c, &st);
		fprintf(stderr,
			PROG ": %zu donations: %u accepted, %u duplicate, %u rejected, %u "
			"unanswered; %" PRIu64 " datagrams sent (%" PRIu64 " retransmissions), %"
			PRIu64 " replies ignored\n",
			nrows, t.accepted, t.duplicate, t.rejected, t.unanswered, st.sent,
			st.retransmits, st.rx_malformed + st.rx_bad_tag + st.rx_mismatched);
	}
	status = t.unanswered ? EXIT_UNANSWERED
	       : (t.rejected || t.mismatched) ? EXIT_REJECTED : EXIT_ALL_OK;

out:
	amil_client_destroy(&c);
	if (rows != &one)
		free(rows);
	sodium_memzero(o.key, sizeof(o.key));
	return status;
}
