/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amilctl: what network operators use to watch and steer an Amil cluster.
 * It talks to the local amil-controlplane over ipc sockets in the run
 * directory (ctl_ipc.h), whose file permissions decide who may.
 *
 * Shape of the program.  Everything a command is lives in one row of
 * commands[] below: its words ("dataplane stats"), the protocol request it
 * sends, its argument count, which options it takes, and its renderer.
 * main() parses the options, finds the row, checks the arguments, and runs
 * one of three loops: one request (the default), a request every
 * --watch SECONDS, or the event history followed by the event stream
 * (events --follow).  Adding a command is one row; a command without its
 * own renderer uses amil_ctl_show_generic().  The bash completion asks
 * `amilctl --list-commands`, so it needs no change either.
 *
 * Exit codes (sysexits.h): 0 ok; 1 the daemon answered with an error;
 * 64 usage error; 69 daemon unreachable (not running, permission denied,
 * stale socket, no answer within --timeout); 76 protocol error (a reply
 * that is not JSON or not schema 1).
 *
 * Output: --json prints the daemon's reply unchanged (the documented,
 * stable schema; docs/amilctl.md).  Human output is aligned tables, times in
 * RFC 3339 and relative, colours only when stdout is a TTY and NO_COLOR is
 * not set.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cp_json.h"
#include "ctl_fmt.h"
#include "ctl_ipc.h"
#include "ctl_show.h"

#ifndef AMIL_VERSION
#define AMIL_VERSION "0.1.0"
#endif

#define EX_DAEMON_ERROR 1
#define TIMEOUT_MS_DEFAULT 2000
#define TIMEOUT_MS_MAX 600000
#define WATCH_MS_MIN 100
#define WATCH_MS_MAX 86400000
#define EVENTS_MAX 100000
#define FOLLOW_HISTORY_DEFAULT "10"

enum {
	CMD_READ = 1 << 0,      /* takes --watch (every command takes --json) */
	CMD_FILE = 1 << 3,      /* the argument is a file sent as the request's lines */
	CMD_FOLLOW = 1 << 1,    /* takes --follow */
};

typedef int check_args_fn(int argc, char **argv, char *err, size_t errlen);

struct command {
	const char *word;       /* first word on the command line */
	const char *sub;        /* second word, or NULL */
	const char *request;    /* protocol command word */
	const char *args;       /* argument synopsis for help, "" for none */
	unsigned min_args, max_args;
	unsigned flags;         /* CMD_* */
	check_args_fn *check;   /* extra argument check, or NULL */
	amil_ctl_show_fn *show; /* human renderer */
	const char *summary;    /* one line for the command list */
	const char *help;       /* more for `amilctl CMD --help`, or NULL */
};

static check_args_fn check_count;

/* The command table.  One row per command; see the file comment. */
static const struct command commands[] = {
	{"status", NULL, "status", "", 0, 0, CMD_READ, NULL, amil_ctl_show_status,
	 "this node, the cluster and the data plane at a glance", NULL},
	{"nodes", NULL, "nodes", "", 0, 0, CMD_READ, NULL, amil_ctl_show_nodes,
	 "every known cluster member, its state and since when", NULL},
	{"events", NULL, "events", "[N]", 0, 1, CMD_READ | CMD_FOLLOW, check_count,
	 amil_ctl_show_events, "the last N membership and data-plane events (default 100)",
	 "With --follow, print the last N events (default " FOLLOW_HISTORY_DEFAULT ") and then\n"
	 "every new event as it happens, one per line, until interrupted.  With\n"
	 "--json --follow each event is one JSON object per line."},
	{"dataplane", "stats", "dataplane-stats", "", 0, 0, CMD_READ, NULL,
	 amil_ctl_show_dataplane_stats,
	 "data-plane counters: donations, rejects, money totals, ledger, ports", NULL},
	{"registry", "list", "registry-list", "", 0, 0, CMD_READ, NULL, amil_ctl_show_generic,
	 "every registered name: owner, value (cluster-wide, from local state)", NULL},
	{"registry", "get", "registry-get", "NAME", 1, 1, CMD_READ, NULL, amil_ctl_show_generic,
	 "one name's owner and value", NULL},
	{"registry", "register", "registry-register", "NAME VALUE", 2, 2, 0, NULL,
	 amil_ctl_show_generic, "register NAME -> VALUE, owned by this appliance",
	 "AP mode (default): the name is visible here at once and is pushed to every\n"
	 "alive member; a concurrent registration elsewhere (a partition) is resolved\n"
	 "on heal by the greater (HLC, node id), the loser gets a name_conflict event.\n"
	 "CP mode: a majority of the configured cluster must acknowledge; without one\n"
	 "the registration is refused (\"degraded\") and no name ever has two owners."},
	{"registry", "unregister", "registry-unregister", "NAME", 1, 1, 0, NULL,
	 amil_ctl_show_generic, "remove NAME everywhere (only its owner may)", NULL},
	{"registry", "import", "registry-register-batch", "FILE", 1, 1, CMD_FILE, NULL,
	 amil_ctl_show_generic, "register every 'NAME VALUE' line of FILE ('-': stdin) at once",
	 "One request (at most 16 MiB): in AP mode the names are applied here and sent\n"
	 "to every member in one message; in CP mode each name is its own majority\n"
	 "round, all in flight together.  The reply counts registered and refused\n"
	 "names and shows the first refusal.  Default --timeout for this command: 60 s."},
	{"groups", NULL, "groups", "[NAME]", 0, 1, CMD_READ, NULL, amil_ctl_show_generic,
	 "group memberships (every group, or one), cluster-wide", NULL},
	{"group", "join", "group-join", "NAME", 1, 1, 0, NULL, amil_ctl_show_generic,
	 "this appliance joins group NAME (e.g. a region such as ID-JKT)", NULL},
	{"group", "leave", "group-leave", "NAME", 1, 1, 0, NULL, amil_ctl_show_generic,
	 "this appliance leaves group NAME", NULL},
	{"campaigns", NULL, "campaigns", "", 0, 0, CMD_READ, NULL, amil_ctl_show_generic,
	 "cluster-wide totals per campaign and currency: count, amount, levy (minor units)",
	 "Each appliance counts its own data plane's ledger (each donation exactly once)\n"
	 "and publishes its totals; every appliance sums them, converging after partitions."},
	{"broadcast", NULL, "broadcast", "GROUP MESSAGE", 2, 2, 0, NULL, amil_ctl_show_generic,
	 "deliver MESSAGE to every member of GROUP; report who acknowledged",
	 "Each member's control plane acknowledges; after 1 s the members that did not\n"
	 "are listed as missing."},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

struct options {
	const char *run_dir;
	int timeout_ms;
	int watch_ms;           /* 0: no --watch */
	bool json;
	bool follow;
	bool help;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Interrupt blocking calls (no SA_RESTART) so loops see @stop at once. */
static void
catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static uint64_t
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- usage and help ------------------------------------------------------- */

static void
command_name(const struct command *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s", c->word, c->sub ? " " : "", c->sub ? c->sub : "");
}

static void
print_help(FILE *f)
{
	char name[64];

	fprintf(f,
		"Usage: amilctl [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Watch and steer the Amil cluster through the local amil-controlplane.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char full[96];

		command_name(&commands[i], name, sizeof(name));
		snprintf(full, sizeof(full), "%s%s%s", name, commands[i].args[0] ? " " : "",
			 commands[i].args);
		fprintf(f, "  %-22s %s\n", full, commands[i].summary);
	}
	fprintf(f,
		"  %-22s %s\n"
		"\n"
		"Options:\n"
		"  -j, --json             print the daemon's JSON reply (schema 1, stable)\n"
		"  -w, --watch SECONDS    repeat every SECONDS (0.1 to 86400) until interrupted\n"
		"  -f, --follow           events: keep printing new events as they happen\n"
		"  -r, --run-dir DIR      the daemon's run directory (default $AMIL_RUN_DIR,\n"
		"                         else " AMIL_CTL_RUN_DIR_DEFAULT ")\n"
		"  -t, --timeout MS       give up on the daemon after MS milliseconds (default %d)\n"
		"  -h, --help             this help; `amilctl COMMAND --help` for one command\n"
		"  -V, --version          print the version\n"
		"\n"
		"Exit status: 0 ok, 1 the daemon reported an error, 64 usage error,\n"
		"69 daemon unreachable (not running, permission denied, timeout),\n"
		"76 malformed reply.  Colours only on a terminal and without NO_COLOR.\n"
		"See docs/amilctl.md for the JSON schema.\n",
		"help [COMMAND]", "help for a command", TIMEOUT_MS_DEFAULT);
}

static void
print_command_help(const struct command *c, FILE *f)
{
	char name[64];

	command_name(c, name, sizeof(name));
	fprintf(f, "Usage: amilctl %s%s%s%s%s [--run-dir DIR] [--timeout MS]\n\namilctl %s: %s.\n",
		name, c->args[0] ? " " : "", c->args,
		(c->flags & CMD_READ) ? " [--json] [--watch SECONDS]" : "",
		(c->flags & CMD_FOLLOW) ? " [--follow]" : "", name, c->summary);
	if (c->help != NULL)
		fprintf(f, "\n%s\n", c->help);
	fprintf(f, "\nSends \"%s%s%s\" to amil-controlplane; see `amilctl --help` for the common\n"
		   "options and exit codes.\n",
		c->request, c->args[0] ? " " : "", c->args);
}

/* Print "amilctl: <msg>" and the hint; return EX_USAGE. */
static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("amilctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'amilctl --help'.\n", stderr);
	return EX_USAGE;
}

/* ---- argument checks ------------------------------------------------------ */

/* A decimal integer lo..hi, nothing else. */
static int
parse_int(const char *s, long lo, long hi, long *out)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 12)
		return -EINVAL;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

/* SECONDS as "2" or "0.5" (at most 3 decimals) into milliseconds. */
static int
parse_seconds_ms(const char *s, long *ms)
{
	const char *dot = strchr(s, '.');
	char whole[16] = "", frac[4] = "000"; /* right-padded: "0.5" is 500 ms */
	long w, f;
	size_t nw = dot ? (size_t)(dot - s) : strlen(s), nf = dot ? strlen(dot + 1) : 0;

	if (nw == 0 || nw >= sizeof(whole) || (dot && (nf == 0 || nf > 3)))
		return -EINVAL;
	memcpy(whole, s, nw);
	if (dot)
		memcpy(frac, dot + 1, nf);
	if (parse_int(whole, 0, WATCH_MS_MAX / 1000, &w) != 0 || parse_int(frac, 0, 999, &f) != 0)
		return -EINVAL;
	*ms = w * 1000 + f;
	return *ms >= WATCH_MS_MIN && *ms <= WATCH_MS_MAX ? 0 : -ERANGE;
}

static int
check_count(int argc, char **argv, char *err, size_t errlen)
{
	long n;

	if (argc >= 1 && parse_int(argv[0], 1, EVENTS_MAX, &n) != 0) {
		snprintf(err, errlen, "N must be a whole number from 1 to %d, not '%s'", EVENTS_MAX,
			 argv[0]);
		return -EINVAL;
	}
	return 0;
}

/* ---- talking and printing ------------------------------------------------- */

/* The request line: the protocol word and the arguments. */
#define REQUEST_FILE_MAX (16u << 20)   /* the daemon's request bound */

/* CMD_FILE: the protocol word, a newline, and the file's bytes. */
static char *
build_file_request(const struct command *c, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	size_t cap = 1 << 16, n, got;
	char *r, *p;

	if (f == NULL) {
		fprintf(stderr, "amilctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	n = strlen(c->request);
	r = malloc(cap);
	if (r == NULL)
		goto fail;
	memcpy(r, c->request, n);
	r[n++] = '\n';
	while ((got = fread(r + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (n > REQUEST_FILE_MAX) {
			fprintf(stderr, "amilctl: %s: more than 16 MiB; split it into several files\n",
				path);
			goto fail;
		}
		if (cap - n - 1 == 0) {
			p = realloc(r, cap * 2);
			if (p == NULL)
				goto fail;
			r = p;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "amilctl: %s: %s\n", path, strerror(errno));
		goto fail;
	}
	if (memchr(r, '\0', n) != NULL) {
		fprintf(stderr, "amilctl: %s: not a text file (NUL byte)\n", path);
		goto fail;
	}
	r[n] = '\0';
	if (f != stdin)
		fclose(f);
	return r;
fail:
	free(r);
	if (f != stdin)
		fclose(f);
	errno = 0;
	return NULL;
}

static char *
build_request(const struct command *c, int argc, char **argv)
{
	size_t n = strlen(c->request) + 1;
	char *r;

	if (c->flags & CMD_FILE)
		return build_file_request(c, argv[0]);

	for (int i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	r = malloc(n);
	if (r == NULL)
		return NULL;
	strcpy(r, c->request);
	for (int i = 0; i < argc; i++) {
		strcat(r, " ");
		strcat(r, argv[i]);
	}
	return r;
}

static int
exit_code_for_ipc(int rc)
{
	switch (rc) {
	case -ENAMETOOLONG: return EX_USAGE;
	case -EBADMSG: return EX_PROTOCOL;
	case -ENOMEM: return EX_OSERR;
	default: return EX_UNAVAILABLE;
	}
}

/* Ask once and print, as the options say, to @f.  Returns an exit code. */
static int
ask_and_print(struct amil_ctl_ipc *ipc, const struct command *c, const char *request,
	      const struct options *opt, FILE *f, bool colour)
{
	char err[512], perr[160];
	struct amil_json *doc = NULL;
	char *reply = NULL;
	size_t len = 0;
	int rc, code;

	rc = amil_ctl_ipc_request(ipc, request, &reply, &len, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "amilctl: %s\n", err);
		return exit_code_for_ipc(rc);
	}
	doc = amil_json_parse(reply, len, perr, sizeof(perr));
	if (doc == NULL) {
		fprintf(stderr, "amilctl: malformed reply from amil-controlplane to \"%s\": %s\n",
			request, errno == EBADMSG ? perr : strerror(errno));
		code = errno == EBADMSG ? EX_PROTOCOL : EX_OSERR;
		goto free_reply;
	}
	rc = amil_ctl_reply_check(amil_json_root(doc), err, sizeof(err));
	code = rc == 0 ? EX_OK : rc == -EREMOTEIO ? EX_DAEMON_ERROR : EX_PROTOCOL;
	/* A batch that refused some of its lines answered, but not all went
	 * through: exit 1, and say which line first. */
	if (rc == 0 && amil_json_type(amil_json_get(amil_json_root(doc), "ok")) == AMIL_JSON_FALSE) {
		const char *first = amil_json_str(amil_json_get(amil_json_root(doc), "first_error"));

		code = EX_DAEMON_ERROR;
		fprintf(stderr, "amilctl: not every line went through%s%s\n",
			first != NULL ? "; first refused: " : "", first != NULL ? first : "");
	}
	if (opt->json) {
		/* The reply as the daemon wrote it; under --watch one compact
		 * line per refresh, so the output is a JSON-lines stream. */
		if (opt->watch_ms) {
			amil_json_write(amil_json_root(doc), f);
			fputc('\n', f);
		} else {
			fwrite(reply, 1, len, f);
			if (len == 0 || reply[len - 1] != '\n')
				fputc('\n', f);
		}
		if (rc != 0)
			fprintf(stderr, "amilctl: %s\n", err);
		goto destroy_doc;
	}
	if (rc != 0) {
		fprintf(stderr, "amilctl: %s\n", err);
		goto destroy_doc;
	}
	struct amil_ctl_out o = {.f = f, .colour = colour, .now_ns = realtime_ns()};

	rc = c->show(amil_json_root(doc), &o, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "amilctl: %s\n", rc == -EBADMSG ? err : strerror(-rc));
		code = rc == -EBADMSG ? EX_PROTOCOL : EX_OSERR;
	}
destroy_doc:
	amil_json_destroy(&doc);
free_reply:
	free(reply);
	return code;
}

/* Sleep until @until_ms (monotonic) or a signal. */
static void
sleep_until(int64_t until_ms)
{
	for (;;) {
		int64_t left = until_ms - mono_ms();
		struct timespec ts;

		if (stop || left <= 0)
			return;
		if (left > 100)
			left = 100;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000;
		nanosleep(&ts, NULL);
	}
}

/*
 * --watch: refresh every watch_ms on a fixed grid (no drift from the time a
 * request takes).  Each screen is rendered into memory first and written at
 * once, so a terminal does not flicker.  A failing first refresh ends the
 * run with its exit code (a wrong --run-dir should not loop forever);
 * later failures are shown and the loop goes on, since a daemon restart is
 * exactly what an operator watches for.  Ends with 0 on SIGINT/SIGTERM.
 */
static int
run_watch(struct amil_ctl_ipc *ipc, const struct command *c, const char *request,
	  const struct options *opt, bool tty, bool colour)
{
	char cmdname[64], now[AMIL_CTL_TIME_LEN], every[32];
	int64_t start = mono_ms();
	int code = EX_OK;

	command_name(c, cmdname, sizeof(cmdname));
	/* "1", "0.5", "2.25": the interval as the operator wrote it. */
	if (opt->watch_ms % 1000 == 0) {
		snprintf(every, sizeof(every), "%d", opt->watch_ms / 1000);
	} else {
		snprintf(every, sizeof(every), "%d.%03d", opt->watch_ms / 1000, opt->watch_ms % 1000);
		while (every[strlen(every) - 1] == '0')
			every[strlen(every) - 1] = '\0';
	}
	catch_signals();
	for (uint64_t k = 0; !stop; k++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&buf, &len);

		if (mem == NULL)
			return EX_OSERR;
		if (!opt->json) {
			if (tty)
				fputs("\033[H\033[2J", mem);
			else if (k > 0)
				fputc('\n', mem);
			fprintf(mem, "Every %ss: amilctl %s    %s\n\n", every, cmdname,
				amil_ctl_rfc3339(realtime_ns(), now));
		}
		code = ask_and_print(ipc, c, request, opt, mem, colour);
		fclose(mem);
		if (stop || (code != EX_OK && k == 0)) {
			free(buf);
			break;
		}
		fwrite(buf, 1, len, stdout);
		free(buf);
		if (fflush(stdout) != 0 || ferror(stdout))
			return EX_IOERR;
		sleep_until(start + (int64_t)(k + 1) * opt->watch_ms);
	}
	return stop ? EX_OK : code;
}

/* Identity of an event, to drop a streamed copy of one already printed
 * from the history. */
struct event_id {
	uint64_t at_ns, node_id, incarnation;
	char type[24];
};

static void
event_id_of(const struct amil_json_value *ev, struct event_id *id)
{
	const char *t = amil_json_str(amil_json_get(ev, "type"));

	memset(id, 0, sizeof(*id));
	amil_json_u64(amil_json_get(ev, "at_ns"), &id->at_ns);
	amil_json_u64(amil_json_get(ev, "node_id"), &id->node_id);
	amil_json_u64(amil_json_get(ev, "incarnation"), &id->incarnation);
	snprintf(id->type, sizeof(id->type), "%s", t != NULL ? t : "");
}

static bool
event_id_eq(const struct event_id *a, const struct event_id *b)
{
	return a->at_ns == b->at_ns && a->node_id == b->node_id &&
	       a->incarnation == b->incarnation && strcmp(a->type, b->type) == 0;
}

#define SEEN_MAX 16

/*
 * events --follow.  Subscribe first, then fetch the history, so an event
 * that happens in between is not lost; it may then arrive twice (in the
 * history and on the stream), so streamed events no newer than the newest
 * history event are compared with the history's last few and dropped when
 * equal.  A malformed streamed event is reported and skipped: one bad
 * message must not end a session an operator is watching.
 */
static int
run_follow(struct amil_ctl_ipc *ipc, const char *request, const struct options *opt, bool colour)
{
	struct amil_ctl_out o = {.f = stdout, .colour = colour};
	struct event_id seen[SEEN_MAX], id;
	size_t nseen = 0;
	uint64_t newest = 0;
	struct amil_json *doc = NULL;
	char err[512], perr[160];
	char *reply = NULL;
	size_t len;
	int rc, code = EX_OK;

	rc = amil_ctl_ipc_subscribe(ipc, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "amilctl: %s\n", err);
		return exit_code_for_ipc(rc);
	}
	rc = amil_ctl_ipc_request(ipc, request, &reply, &len, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "amilctl: %s\n", err);
		return exit_code_for_ipc(rc);
	}
	doc = amil_json_parse(reply, len, perr, sizeof(perr));
	free(reply);
	if (doc == NULL) {
		fprintf(stderr, "amilctl: malformed reply from amil-controlplane to \"%s\": %s\n",
			request, perr);
		return EX_PROTOCOL;
	}
	rc = amil_ctl_reply_check(amil_json_root(doc), err, sizeof(err));
	if (rc == 0 && amil_json_type(amil_json_get(amil_json_root(doc), "events")) != AMIL_JSON_ARRAY) {
		snprintf(err, sizeof(err), "malformed events reply: no \"events\" array");
		rc = -EPROTO;
	}
	if (rc != 0) {
		fprintf(stderr, "amilctl: %s\n", err);
		amil_json_destroy(&doc);
		return rc == -EREMOTEIO ? EX_DAEMON_ERROR : EX_PROTOCOL;
	}
	if (!opt->json)
		amil_ctl_show_event_header(&o);
	for (const struct amil_json_value *e = amil_json_first(
		     amil_json_get(amil_json_root(doc), "events"));
	     e != NULL; e = amil_json_next(e)) {
		event_id_of(e, &id);
		if (id.at_ns > newest)
			newest = id.at_ns;
		seen[nseen++ % SEEN_MAX] = id;
		if (opt->json) {
			amil_json_write(e, stdout);
			fputc('\n', stdout);
		} else {
			amil_ctl_show_event_line(e, &o);
		}
	}
	amil_json_destroy(&doc);
	if (nseen > SEEN_MAX)
		nseen = SEEN_MAX;
	if (fflush(stdout) != 0)
		return EX_IOERR;

	catch_signals();
	while (!stop) {
		char *msg = NULL;
		size_t mlen = 0;
		bool dup = false;

		rc = amil_ctl_ipc_next_event(ipc, 200, &msg, &mlen, err, sizeof(err));
		if (rc == 0 || rc == -EINTR)
			continue;
		if (rc < 0) {
			fprintf(stderr, "amilctl: %s\n", err);
			code = EX_UNAVAILABLE;
			break;
		}
		doc = amil_json_parse(msg, mlen, perr, sizeof(perr));
		if (doc == NULL || amil_json_type(amil_json_root(doc)) != AMIL_JSON_OBJECT) {
			fprintf(stderr, "amilctl: skipped a malformed event from amil-controlplane: %s\n",
				doc == NULL ? perr : "not a JSON object");
			amil_json_destroy(&doc);
			free(msg);
			continue;
		}
		event_id_of(amil_json_root(doc), &id);
		if (id.at_ns != 0 && id.at_ns <= newest)
			for (size_t i = 0; i < nseen && !dup; i++)
				dup = event_id_eq(&id, &seen[i]);
		if (!dup) {
			if (opt->json) {
				while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == '\r'))
					mlen--;
				/* One line per event even if the daemon pretty-printed. */
				if (memchr(msg, '\n', mlen) != NULL)
					amil_json_write(amil_json_root(doc), stdout);
				else
					fwrite(msg, 1, mlen, stdout);
				fputc('\n', stdout);
			} else {
				amil_ctl_show_event_line(amil_json_root(doc), &o);
			}
		}
		amil_json_destroy(&doc);
		free(msg);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			code = EX_IOERR;
			break;
		}
	}
	return code;
}

/* ---- main ------------------------------------------------------------------ */

/* Find the command named by @argv; on success *@used is how many words
 * named it.  Prints the usage error itself and returns NULL otherwise. */
static const struct command *
find_command(int argc, char **argv, int *used, int *code)
{
	bool group = false;

	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];

		if (strcmp(argv[0], c->word) != 0)
			continue;
		if (c->sub == NULL) {
			*used = 1;
			return c;
		}
		group = true;
		if (argc >= 2 && strcmp(argv[1], c->sub) == 0) {
			*used = 2;
			return c;
		}
	}
	if (!group) {
		*code = usage_error("unknown command '%s'", argv[0]);
		return NULL;
	}
	fprintf(stderr, "amilctl: %s '%s'; %s takes one of:",
		argc >= 2 ? "unknown subcommand" : "missing subcommand for", argc >= 2 ? argv[1] : argv[0],
		argv[0]);
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[0], commands[i].word) == 0 && commands[i].sub != NULL)
			fprintf(stderr, " %s", commands[i].sub);
	fputs("\nTry 'amilctl --help'.\n", stderr);
	*code = EX_USAGE;
	return NULL;
}

/* For the bash completion: every command, one per line ("dataplane stats"). */
static void
list_commands(void)
{
	char name[64];

	for (size_t i = 0; i < NCOMMANDS; i++) {
		command_name(&commands[i], name, sizeof(name));
		puts(name);
	}
	puts("help");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"watch", required_argument, NULL, 'w'},
		{"follow", no_argument, NULL, 'f'},
		{"run-dir", required_argument, NULL, 'r'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"list-commands", no_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	struct options opt = {.timeout_ms = TIMEOUT_MS_DEFAULT};
	const struct command *c;
	struct amil_ctl_ipc *ipc = NULL;
	char err[256], *request;
	const char *nc;
	bool tty, colour;
	int ch, used = 0, code = EX_OK;
	long v;

	opterr = 1;
	while ((ch = getopt_long(argc, argv, "jw:fr:t:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': opt.json = true; break;
		case 'f': opt.follow = true; break;
		case 'h': opt.help = true; break;
		case 'r': opt.run_dir = optarg; break;
		case 'V':
			printf("amilctl %s (control protocol schema %d)\n", AMIL_VERSION, AMIL_CTL_SCHEMA);
			return EX_OK;
		case 'L': list_commands(); return EX_OK;
		case 'w':
			if (parse_seconds_ms(optarg, &v) != 0)
				return usage_error("--watch wants SECONDS from 0.1 to 86400 (at most 3 "
						   "decimals), not '%s'", optarg);
			opt.watch_ms = (int)v;
			break;
		case 't':
			if (parse_int(optarg, 1, TIMEOUT_MS_MAX, &v) != 0)
				return usage_error("--timeout wants milliseconds from 1 to %d, not '%s'",
						   TIMEOUT_MS_MAX, optarg);
			opt.timeout_ms = (int)v;
			break;
		default: /* getopt named the problem */
			fputs("Try 'amilctl --help'.\n", stderr);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 0 && strcmp(argv[0], "help") == 0) {
		opt.help = true;
		argc--;
		argv++;
	}
	if (argc == 0) {
		if (opt.help) {
			print_help(stdout);
			return EX_OK;
		}
		return usage_error("no command given");
	}
	c = find_command(argc, argv, &used, &code);
	if (c == NULL)
		return code;
	if (opt.help) {
		print_command_help(c, stdout);
		return EX_OK;
	}
	argc -= used;
	argv += used;
	if ((unsigned)argc < c->min_args || (unsigned)argc > c->max_args)
		return usage_error("%s takes %s%s", c->word,
				   c->max_args ? "arguments " : "no arguments", c->args);
	for (int i = 0; i < argc; i++)
		/* The protocol separates arguments with spaces. */
		if (argv[i][0] == '\0' || strpbrk(argv[i], " \t\r\n") != NULL)
			return usage_error("argument '%s' is empty or contains blanks", argv[i]);
	if (c->check != NULL && c->check(argc, argv, err, sizeof(err)) != 0)
		return usage_error("%s", err);
	/* Every reply is JSON (--json prints it as is); only reads repeat. */
	if (opt.watch_ms && !(c->flags & CMD_READ))
		return usage_error("%s%s%s does not take --watch", c->word, c->sub ? " " : "",
				   c->sub ? c->sub : "");
	if (opt.follow && !(c->flags & CMD_FOLLOW))
		return usage_error("only events takes --follow");
	if (opt.follow && opt.watch_ms)
		return usage_error("--follow and --watch do not go together");

	if (opt.run_dir == NULL)
		opt.run_dir = getenv("AMIL_RUN_DIR");
	if (opt.run_dir == NULL)
		opt.run_dir = AMIL_CTL_RUN_DIR_DEFAULT;
	if (opt.run_dir[0] == '\0')
		return usage_error("the run directory is empty (--run-dir / AMIL_RUN_DIR)");

	tty = isatty(STDOUT_FILENO) == 1;
	nc = getenv("NO_COLOR");
	colour = tty && nc == NULL;

	if (opt.follow && argc == 0) {
		static char *hist[] = {FOLLOW_HISTORY_DEFAULT};

		argc = 1;
		argv = hist;
	}
	request = build_request(c, argc, argv);
	if (request == NULL && (c->flags & CMD_FILE)) {
		code = EX_NOINPUT;     /* said why */
		goto free_all;
	}
	if ((c->flags & CMD_FILE) && opt.timeout_ms == TIMEOUT_MS_DEFAULT)
		opt.timeout_ms = 60000;
	ipc = amil_ctl_ipc_new(opt.run_dir, opt.timeout_ms);
	if (request == NULL || ipc == NULL) {
		if (ipc == NULL && errno == ENAMETOOLONG)
			code = usage_error("run directory '%s' is too long for a unix socket path",
					   opt.run_dir);
		else {
			fprintf(stderr, "amilctl: %s\n", strerror(errno));
			code = EX_OSERR;
		}
		goto free_all;
	}
	if (opt.follow)
		code = run_follow(ipc, request, &opt, colour);
	else if (opt.watch_ms)
		code = run_watch(ipc, c, request, &opt, tty, colour);
	else
		code = ask_and_print(ipc, c, request, &opt, stdout, colour);
	if (fflush(stdout) != 0 && code == EX_OK)
		code = EX_IOERR;
free_all:
	amil_ctl_ipc_destroy(&ipc);
	free(request);
	return code;
}
