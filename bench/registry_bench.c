/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-registry-bench: how fast a name registered on one appliance is seen
 * on the others, through the daemons' own control sockets.
 *
 *   amil-registry-bench RUN_DIR_1 RUN_DIR_2 [RUN_DIR_3 ...] SINGLE BULK
 *
 * 1. SINGLE times: register a fresh name on node 1, then ask every other
 *    node for it in a loop until all have it: latency p50/p99/max.
 * 2. BULK names registered on node 1 back to back; time until every other
 *    node's registry holds them all (status counter registry_names), from
 *    the first registration and from the last; then each node's registry
 *    memory (status registry_memory_bytes) and the daemon's VmRSS.
 * One JSON line per part on stdout.
 */
#include <inttypes.h>
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
	int zero = 0, to = 5000;

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
	static char buf[1 << 16];
	int n;

	if (zmq_send(s, req, strlen(req), 0) < 0 || (n = zmq_recv(s, buf, sizeof(buf) - 1, 0)) < 0) {
		fprintf(stderr, "request '%s' failed: %s\n", req, zmq_strerror(zmq_errno()));
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
	t0 = mono_ns();
	for (unsigned k = 0; k < bulk; k++) {
		snprintf(req, sizeof(req), "registry-register bench/bulk-%08u node-1-value-%u", k, k);
		if (strstr(ask(s[0], req), "\"ok\"") == NULL)
			return 1;
	}
	t_last = mono_ns();
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
