/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-registry-bench: how fast a name registered on one appliance is seen
 * on the others, through the daemons' own control sockets.
 *
 *   amil-registry-bench RUN_DIR_1 RUN_DIR_2 [RUN_DIR_3 ...] SINGLE BULK
 *
 * 1. SINGLE times: register a fresh name on node 1, then ask every other
 *    node for it in a loop until all have it: latency p50/p99/max.
 * 2. BULK names registered on node 1 in one batch request (amilctl
 *    registry import); time until every other node's registry holds them
 *    all (status counter registry_names), from the request and from its
 *    reply; then each node's registry memory (registry_memory_bytes).
 * One JSON line per part on stdout.
 *
 * Helpers for the partition benchmark (bench/registry-partition-bench.sh):
 *   amil-registry-bench batch RUN_DIR PREFIX N     register PREFIX-0..N-1
 *   amil-registry-bench converge TIMEOUT_MS NAME RUN_DIR...
 *       ms until every node has NAME with one and the same owner
 *   amil-registry-bench equal TIMEOUT_MS RUN_DIR...
 *       ms until every node's registry digest (status) is the same
 *   amil-registry-bench sum COUNTER RUN_DIR...    sum of a status counter
 * Exit 1 on a timeout or a failed request.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

static void *ctx;

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
ctl_open(const char *run_dir)
{
	char ep[4200];
	void *s = zmq_socket(ctx, ZMQ_REQ);
	int zero = 0, to = 120000;   /* a CP batch of 100k names takes seconds */

	snprintf(ep, sizeof(ep), "ipc://%s/ctl.sock", run_dir);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
	if (zmq_connect(s, ep) != 0) {
		fprintf(stderr, "connect %s: %s\n", ep, zmq_strerror(zmq_errno()));
		exit(1);
	}
	return s;
}

/* One request; the reply into a static buffer (NUL-terminated). */
static const char *
ask(void *s, const char *req)
{
	static char buf[1 << 20];
	int n;

	if (zmq_send(s, req, strlen(req), 0) < 0 || (n = zmq_recv(s, buf, sizeof(buf) - 1, 0)) < 0) {
		fprintf(stderr, "request '%.60s' failed: %s\n", req, zmq_strerror(zmq_errno()));
		exit(1);
	}
	buf[n < (int)sizeof(buf) - 1 ? n : (int)sizeof(buf) - 1] = '\0';
	return buf;
}

static uint64_t
counter(void *s, const char *name)
{
	const char *r = ask(s, "status");
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"%s\": ", name);
	p = strstr(r, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static const char *
str_field(void *s, const char *req, const char *name, char *out, size_t len)
{
	const char *r = ask(s, req);
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\"%s\": ", name);
	p = strstr(r, key);
	out[0] = '\0';
	if (p == NULL)
		return out;
	p += strlen(key);
	if (*p == '"')
		p++;
	e = p + strcspn(p, "\",}");
	snprintf(out, len, "%.*s", (int)(e - p), p);
	return out;
}

/* One request registering PREFIX-0 .. PREFIX-(n-1) -> "v<k>". */
static char *
batch_request(const char *prefix, unsigned n)
{
	size_t cap = 64 + (size_t)n * (strlen(prefix) + 32), off;
	char *req = malloc(cap);

	if (req == NULL)
		exit(1);
	off = (size_t)snprintf(req, cap, "registry-register-batch\n");
	for (unsigned k = 0; k < n; k++)
		off += (size_t)snprintf(req + off, cap - off, "%s-%08u value-%u\n", prefix, k, k);
	return req;
}

static int
sub_main(int argc, char **argv)
{
	const char *cmd = argv[1];
	uint64_t t0 = mono_ns(), deadline;
	void *s[16];
	int nodes;

	if (strcmp(cmd, "batch") == 0 && argc == 5) {
		char *req = batch_request(argv[3], (unsigned)atoi(argv[4]));
		const char *r;

		s[0] = ctl_open(argv[2]);
		r = ask(s[0], req);
		printf("%.3f %s\n", (mono_ns() - t0) / 1e6, r);
		free(req);
		return strstr(r, "\"ok\": true") != NULL ? 0 : 1;
	}
	if (strcmp(cmd, "sum") == 0 && argc >= 4) {
		uint64_t sum = 0;

		nodes = argc - 3;
		for (int i = 0; i < nodes && i < 16; i++) {
			s[i] = ctl_open(argv[3 + i]);
			sum += counter(s[i], argv[2]);
		}
		printf("%" PRIu64 "\n", sum);
		return 0;
	}
	if (strcmp(cmd, "converge") == 0 && argc >= 5) {
		char req[400], own[16][32];

		deadline = t0 + strtoull(argv[2], NULL, 10) * 1000000u;
		nodes = argc - 4;
		snprintf(req, sizeof(req), "registry-get %s", argv[3]);
		for (int i = 0; i < nodes && i < 16; i++)
			s[i] = ctl_open(argv[4 + i]);
		while (mono_ns() < deadline) {
			bool same = true;

			for (int i = 0; i < nodes && i < 16; i++) {
				str_field(s[i], req, "owner", own[i], sizeof(own[i]));
				same &= own[i][0] != '\0' && strcmp(own[i], own[0]) == 0;
			}
			if (same) {
				printf("%.3f %s\n", (mono_ns() - t0) / 1e6, own[0]);
				return 0;
			}
		}
		printf("timeout");
		for (int i = 0; i < nodes && i < 16; i++)
			printf(" %s", own[i][0] ? own[i] : "-");
		printf("\n");
		return 1;
	}
	if (strcmp(cmd, "equal") == 0 && argc >= 4) {
		char dg[16][32];

		deadline = t0 + strtoull(argv[2], NULL, 10) * 1000000u;
		nodes = argc - 3;
		for (int i = 0; i < nodes && i < 16; i++)
			s[i] = ctl_open(argv[3 + i]);
		while (mono_ns() < deadline) {
			bool same = true;

			for (int i = 0; i < nodes && i < 16; i++) {
				str_field(s[i], "status", "map_digest", dg[i], sizeof(dg[i]));
				same &= dg[i][0] != '\0' && strcmp(dg[i], dg[0]) == 0;
			}
			if (same) {
				printf("%.3f\n", (mono_ns() - t0) / 1e6);
				return 0;
			}
		}
		printf("timeout\n");
		return 1;
	}
	fprintf(stderr, "amil-registry-bench: bad subcommand (see the file comment)\n");
	return 64;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int nodes = argc - 3;
	void *s[16];
	unsigned single, bulk;
	uint64_t *lat, base, t0, t_last, t_all;
	char req[256];

	if (argc >= 2 && (strcmp(argv[1], "batch") == 0 || strcmp(argv[1], "sum") == 0 ||
			  strcmp(argv[1], "converge") == 0 || strcmp(argv[1], "equal") == 0)) {
		ctx = zmq_ctx_new();
		return sub_main(argc, argv);
	}
	if (argc < 5 || nodes > 16) {
		fprintf(stderr, "usage: amil-registry-bench RUN_DIR_1 RUN_DIR_2 [...] SINGLE BULK\n");
		return 64;
	}
	single = (unsigned)atoi(argv[argc - 2]);
	bulk = (unsigned)atoi(argv[argc - 1]);
	ctx = zmq_ctx_new();
	for (int i = 0; i < nodes; i++)
		s[i] = ctl_open(argv[1 + i]);
	lat = calloc(single ? single : 1, sizeof(*lat));
	for (unsigned k = 0; k < single; k++) {
		snprintf(req, sizeof(req), "registry-register bench/single-%u v", k);
		t0 = mono_ns();
		if (strstr(ask(s[0], req), "\"ok\"") == NULL)
			return 1;
		for (int i = 1; i < nodes; i++) {
			snprintf(req, sizeof(req), "registry-get bench/single-%u", k);
			while (strstr(ask(s[i], req), "\"entry\"") == NULL)
				;
		}
		lat[k] = mono_ns() - t0;
	}
	if (single > 0) {
		qsort(lat, single, sizeof(*lat), cmp_u64);
		printf("{\"part\": \"single\", \"names\": %u, \"nodes\": %d, \"p50_ms\": %.3f, \"p99_ms\": %.3f,"
		       " \"max_ms\": %.3f}\n",
		       single, nodes, lat[single / 2] / 1e6, lat[single * 99 / 100] / 1e6,
		       lat[single - 1] / 1e6);
		fflush(stdout);
	}
	base = counter(s[0], "registry_names");
	{
		char *breq = batch_request("bench/bulk", bulk);

		t0 = mono_ns();
		if (strstr(ask(s[0], breq), "\"ok\": true") == NULL)
			return 1;
		t_last = mono_ns();
		free(breq);
	}
	for (int i = 1; i < nodes; i++)
		while (counter(s[i], "registry_names") < base + bulk)
			;
	t_all = mono_ns();
	printf("{\"part\": \"bulk\", \"names\": %u, \"register_s\": %.3f, \"visible_everywhere_s\": %.3f,"
	       " \"after_last_register_ms\": %.1f",
	       bulk, (t_last - t0) / 1e9, (t_all - t0) / 1e9, (t_all - t_last) / 1e6);
	for (int i = 0; i < nodes; i++)
		printf(", \"node%d_registry_mib\": %.1f", i + 1,
		       counter(s[i], "registry_memory_bytes") / 1048576.0);
	printf("}\n");
	for (int i = 0; i < nodes; i++)
		zmq_close(s[i]);
	zmq_ctx_term(ctx);
	free(lat);
	return 0;
}
