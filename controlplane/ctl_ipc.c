/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amilctl <-> amil-controlplane over ipc sockets (see ctl_ipc.h). */
#include "ctl_ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

struct amil_ctl_ipc {
	void *ctx;                  /* libzmq context */
	void *sub;                  /* events subscriber, or NULL */
	int timeout_ms;             /* per request, send + reply */
	char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char events_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
join_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

struct amil_ctl_ipc *
amil_ctl_ipc_new(const char *run_dir, int timeout_ms)
{
	struct amil_ctl_ipc *c;

	if (run_dir == NULL || run_dir[0] == '\0' || timeout_ms <= 0) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	if (join_path(c->ctl_path, sizeof(c->ctl_path), run_dir, AMIL_CTL_SOCK) != 0 ||
	    join_path(c->events_path, sizeof(c->events_path), run_dir, AMIL_CTL_EVENTS_SOCK) != 0) {
		free(c);
		errno = ENAMETOOLONG;
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	c->ctx = zmq_ctx_new();
	if (c->ctx == NULL) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	/* No background I/O thread beyond the one the context needs; amilctl
	 * talks on two sockets at most. */
	zmq_ctx_set(c->ctx, ZMQ_IO_THREADS, 1);
	return c;
}

void
amil_ctl_ipc_destroy(struct amil_ctl_ipc **cp)
{
	struct amil_ctl_ipc *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	if (c->sub != NULL)
		zmq_close(c->sub);
	zmq_ctx_term(c->ctx);
	free(c);
	*cp = NULL;
}

/* The directory of @path, for messages ("/run/amil"). */
static void
dir_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 1 : (size_t)(slash - path);

	if (slash == NULL)
		snprintf(out, cap, ".");
	else
		snprintf(out, cap, "%.*s", (int)(n ? n : 1), path);
}

int
amil_ctl_ipc_check(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	char dir[sizeof(sun.sun_path)];
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long for a unix socket", path);
		return -ENAMETOOLONG;
	}
	dir_of(path, dir, sizeof(dir));
	if (stat(path, &st) != 0) {
		rc = -errno;
		if (rc == -ENOENT && access(dir, F_OK) != 0 && errno == ENOENT)
			snprintf(err, errlen,
				 "daemon not running: run directory %s does not exist "
				 "(is amil-controlplane running? see --run-dir / AMIL_RUN_DIR)",
				 dir);
		else if (rc == -ENOENT)
			snprintf(err, errlen,
				 "daemon not running: %s does not exist (is amil-controlplane running?)",
				 path);
		else if (rc == -EACCES)
			snprintf(err, errlen,
				 "permission denied: cannot enter %s (run as root or as a member of "
				 "group 'amil')",
				 dir);
		else
			snprintf(err, errlen, "cannot stat %s: %s", path, strerror(-rc));
		return rc;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s is not a socket", path);
		return -ENOTSOCK;
	}
	if (access(path, R_OK | W_OK) != 0) {
		rc = -errno;
		if (rc == -EACCES)
			snprintf(err, errlen,
				 "permission denied on %s (run as root or as a member of group "
				 "'amil')",
				 path);
		else
			snprintf(err, errlen, "cannot access %s: %s", path, strerror(-rc));
		return rc;
	}
	/* A socket file whose listener is gone still passes stat and access:
	 * only a connect tells.  Non-blocking, so a full backlog (EAGAIN) is
	 * answered at once; it means someone is listening. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-rc));
		return rc;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ? 0 : -errno;
	close(fd);
	if (rc == -EAGAIN || rc == -EINPROGRESS)
		rc = 0;
	if (rc == -ECONNREFUSED)
		snprintf(err, errlen,
			 "daemon not running: nothing listens on %s (stale socket: did "
			 "amil-controlplane exit?)",
			 path);
	else if (rc == -EACCES || rc == -EPERM)
		snprintf(err, errlen,
			 "permission denied on %s (run as root or as a member of group 'amil')",
			 path);
	else if (rc != 0)
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-rc));
	return rc;
}

/* Socket options every amilctl socket gets; see the header for why. */
static int
set_common(void *s, int timeout_ms)
{
	int zero = 0, one = 1;
	int64_t max = AMIL_CTL_MAX_REPLY_BYTES;

	if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max)) != 0)
		return -1;
	if (timeout_ms > 0 &&
	    (zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0 ||
	     zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms)) != 0 ||
	     zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms)) != 0))
		return -1;
	return 0;
}

/* Copy the rest of a multi-part message away; true if there was any. */
static int
drain_more(void *s)
{
	int more = 0, extra = 0;
	size_t sz = sizeof(more);
	zmq_msg_t m;

	for (;;) {
		if (zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz) != 0 || !more)
			return extra;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return extra;
		}
		zmq_msg_close(&m);
		extra = 1;
	}
}

static int
msg_copy(zmq_msg_t *m, char **out, size_t *out_len)
{
	size_t n = zmq_msg_size(m);
	char *p = malloc(n + 1);

	if (p == NULL)
		return -ENOMEM;
	memcpy(p, zmq_msg_data(m), n);
	p[n] = '\0';
	*out = p;
	*out_len = n;
	return 0;
}

int
amil_ctl_ipc_request(struct amil_ctl_ipc *c, const char *request, char **reply,
		     size_t *reply_len, char *err, size_t errlen)
{
	int64_t deadline = mono_ms() + c->timeout_ms;
	int rc, left;
	void *s;
	zmq_msg_t m;

	rc = amil_ctl_ipc_check(c->ctl_path, err, errlen);
	if (rc != 0)
		return rc;
	s = zmq_socket(c->ctx, ZMQ_REQ);
	if (s == NULL) {
		snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(zmq_errno()));
		return -EIO;
	}
	char ep[sizeof(c->ctl_path) + 8];

	snprintf(ep, sizeof(ep), "ipc://%s", c->ctl_path);
	if (set_common(s, c->timeout_ms) != 0 || zmq_connect(s, ep) != 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", ep, zmq_strerror(zmq_errno()));
		rc = -EIO;
		goto close_socket;
	}
	if (zmq_send(s, request, strlen(request), 0) < 0) {
		rc = zmq_errno() == EINTR ? -EINTR : -ETIMEDOUT;
		if (rc == -ETIMEDOUT)
			snprintf(err, errlen,
				 "amil-controlplane did not accept the request on %s within %d ms "
				 "(--timeout)",
				 c->ctl_path, c->timeout_ms);
		else
			snprintf(err, errlen, "interrupted");
		goto close_socket;
	}
	/* One deadline for both halves: the reply gets what the send left. */
	left = (int)(deadline - mono_ms());
	if (left < 1)
		left = 1;
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &left, sizeof(left));
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s, 0) < 0) {
		int e = zmq_errno();

		zmq_msg_close(&m);
		if (e == EINTR) {
			snprintf(err, errlen, "interrupted");
			rc = -EINTR;
		} else if (e == EAGAIN) {
			snprintf(err, errlen, "amil-controlplane did not answer within %d ms (--timeout)",
				 c->timeout_ms);
			rc = -ETIMEDOUT;
		} else {
			snprintf(err, errlen, "receiving the reply: %s", zmq_strerror(e));
			rc = -EIO;
		}
		goto close_socket;
	}
	if (drain_more(s)) {
		zmq_msg_close(&m);
		snprintf(err, errlen, "malformed reply from amil-controlplane: more than one frame");
		rc = -EBADMSG;
		goto close_socket;
	}
	rc = msg_copy(&m, reply, reply_len);
	zmq_msg_close(&m);
	if (rc != 0)
		snprintf(err, errlen, "out of memory");
close_socket:
	zmq_close(s);
	return rc;
}

int
amil_ctl_ipc_subscribe(struct amil_ctl_ipc *c, char *err, size_t errlen)
{
	char ep[sizeof(c->events_path) + 8];
	int rc;

	if (c->sub != NULL)
		return -EALREADY;
	rc = amil_ctl_ipc_check(c->events_path, err, errlen);
	if (rc != 0)
		return rc;
	c->sub = zmq_socket(c->ctx, ZMQ_SUB);
	if (c->sub == NULL) {
		snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(zmq_errno()));
		return -EIO;
	}
	snprintf(ep, sizeof(ep), "ipc://%s", c->events_path);
	if (set_common(c->sub, 0) != 0 || zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, "", 0) != 0 ||
	    zmq_connect(c->sub, ep) != 0) {
		snprintf(err, errlen, "cannot subscribe to %s: %s", ep, zmq_strerror(zmq_errno()));
		zmq_close(c->sub);
		c->sub = NULL;
		return -EIO;
	}
	return 0;
}

int
amil_ctl_ipc_next_event(struct amil_ctl_ipc *c, int wait_ms, char **msg, size_t *msg_len,
			char *err, size_t errlen)
{
	zmq_pollitem_t it;
	zmq_msg_t m;
	int rc;

	if (c->sub == NULL)
		return -ENOTCONN;
	it = (zmq_pollitem_t){.socket = c->sub, .events = ZMQ_POLLIN};
	rc = zmq_poll(&it, 1, wait_ms);
	if (rc < 0) {
		if (zmq_errno() == EINTR)
			return -EINTR;
		snprintf(err, errlen, "zmq_poll: %s", zmq_strerror(zmq_errno()));
		return -EIO;
	}
	if (rc == 0)
		return 0;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, c->sub, ZMQ_DONTWAIT) < 0) {
		int e = zmq_errno();

		zmq_msg_close(&m);
		if (e == EAGAIN)
			return 0;
		if (e == EINTR)
			return -EINTR;
		snprintf(err, errlen, "receiving an event: %s", zmq_strerror(e));
		return -EIO;
	}
	drain_more(c->sub);
	rc = msg_copy(&m, msg, msg_len);
	zmq_msg_close(&m);
	return rc == 0 ? 1 : rc;
}
