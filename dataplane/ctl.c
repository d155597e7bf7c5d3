/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Local control socket of the data plane.  See ctl.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_lcore.h>
#include <zmq.h>

#include "ctl.h"

struct amil_dp_ctl {
	void *ctx;
	void *rep;
	pthread_t th;
	uint32_t stop;
	uint32_t node_id;
	const struct amil_stats *stats;
	char path[PATH_MAX];
};

static void
answer(struct amil_dp_ctl *c, const char *req, size_t len)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);

	if (f == NULL) {
		zmq_send(c->rep, "{}", 2, 0);
		return;
	}
	if (len == 4 && memcmp(req, "ping", 4) == 0)
		fprintf(f, "{\"schema\": 1, \"ok\": true, \"node_id\": %" PRIu32 "}", c->node_id);
	else if (len == 5 && memcmp(req, "stats", 5) == 0)
		amil_stats_write_json(c->stats, f);  /* readers of relaxed counters */
	else if (len == 7 && memcmp(req, "metrics", 7) == 0)
		amil_stats_write_prometheus(c->stats, f);
	else
		fputs("{\"schema\": 1, \"error\": \"unknown request (ping, stats, metrics)\"}", f);
	if (fclose(f) == 0) {
		/* The stats writer ends with a newline: not part of the JSON. */
		while (blen > 0 && buf[blen - 1] == '\n' && buf[0] == '{')
			blen--;
		zmq_send(c->rep, buf, blen, 0);
	} else {
		zmq_send(c->rep, "{}", 2, 0);
	}
	free(buf);
}

static void *
ctl_main(void *arg)
{
	struct amil_dp_ctl *c = arg;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		zmq_pollitem_t it = {.socket = c->rep, .events = ZMQ_POLLIN};
		char req[64];
		int n, more = 0;
		size_t ml = sizeof(more);

		if (zmq_poll(&it, 1, 100) <= 0)
			continue;
		n = zmq_recv(c->rep, req, sizeof(req), ZMQ_DONTWAIT);
		if (n < 0)
			continue;
		zmq_getsockopt(c->rep, ZMQ_RCVMORE, &more, &ml);
		while (more) {
			zmq_recv(c->rep, req, sizeof(req), 0);
			zmq_getsockopt(c->rep, ZMQ_RCVMORE, &more, &ml);
			n = 0;
		}
		answer(c, req, n > (int)sizeof(req) ? sizeof(req) : (size_t)n);
	}
	return NULL;
}

struct amil_dp_ctl *
amil_dp_ctl_start(const char *path, const struct amil_stats *stats, uint32_t node_id, char *err,
		  size_t errlen)
{
	struct amil_dp_ctl *c = calloc(1, sizeof(*c));
	char ep[PATH_MAX + 8];
	int zero = 0, rc;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (strlen(path) >= 100 || strlen(path) >= sizeof(c->path)) {
		snprintf(err, errlen, "--ctl-sock %s: longer than a socket path may be", path);
		free(c);
		return NULL;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->stats = stats;
	c->node_id = node_id;
	c->ctx = zmq_ctx_new();
	c->rep = c->ctx != NULL ? zmq_socket(c->ctx, ZMQ_REP) : NULL;
	if (c->rep == NULL)
		goto fail_zmq;
	zmq_setsockopt(c->rep, ZMQ_LINGER, &zero, sizeof(zero));
	unlink(path);
	snprintf(ep, sizeof(ep), "ipc://%s", path);
	if (zmq_bind(c->rep, ep) != 0)
		goto fail_zmq;
	chmod(path, 0660);
	rc = rte_ctrl_thread_create(&c->th, "amil-ctl", NULL, ctl_main, c);
	if (rc != 0) {
		snprintf(err, errlen, "--ctl-sock: cannot start its thread: %s", strerror(rc));
		goto fail;
	}
	return c;

fail_zmq:
	snprintf(err, errlen, "--ctl-sock %s: %s", path, zmq_strerror(zmq_errno()));
fail:
	if (c->rep != NULL)
		zmq_close(c->rep);
	if (c->ctx != NULL)
		zmq_ctx_term(c->ctx);
	unlink(path);
	free(c);
	return NULL;
}

void
amil_dp_ctl_stop(struct amil_dp_ctl *c)
{
	if (c == NULL)
		return;
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	pthread_join(c->th, NULL);
	zmq_close(c->rep);
	zmq_ctx_term(c->ctx);
	unlink(c->path);
	free(c);
}
