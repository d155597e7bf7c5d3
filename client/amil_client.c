/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Reference AMIL/1 center client (see amil_client.h for the contract).
 *
 * The design is a plain stop-and-wait loop: one donation in flight per
 * client, one connected UDP socket, poll() with a deadline per attempt.
 * A kiosk reports a handful of donations a minute, so throughput is not
 * the concern; never losing or double-counting one is.  Pipelining belongs
 * to amil-pktgen, not here.
 *
 * Replies are matched by (center_id, donation_id) and by seq: every
 * transmission takes the next value of a per-client counter that starts at
 * a random point, and an ACK counts only if it echoes a seq of the current
 * exchange.  (center_id, donation_id) alone is not enough: a kiosk that
 * reports donation 42, gets a late ACK for its first copy after the second
 * one was answered, then sends a corrected donation 42 (after a REJECTED)
 * must not take the stale ACK for the new answer.
 */
#include "amil_client.h"

#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium/core.h>
#include <sodium/randombytes.h>
#include <sodium/utils.h>

#define NS_PER_MS 1000000ull
#define RX_BUF 256  /* larger than any ACK, so an oversized reply is seen as such */

struct amil_client {
	int fd;                        /* UDP socket connect()ed to the node */
	uint32_t center_id;
	uint8_t key[AMIL_KEY_LEN];     /* wiped on destroy */
	uint32_t timeout_ms;           /* first wait */
	uint32_t timeout_max_ms;       /* cap on any wait */
	uint32_t backoff;              /* multiplier per attempt, >= 1 */
	uint32_t jitter_pct;           /* 0..100 */
	uint32_t max_attempts;         /* 1..AMIL_CLIENT_ATTEMPTS_MAX */
	uint32_t deadline_ms;          /* 0 = none */
	uint32_t seq;                  /* next transmission's seq (wraps) */
	struct amil_client_stats st;
};

uint32_t
amil_client_backoff_ms(uint32_t attempt, uint32_t initial_ms, uint32_t backoff,
		       uint32_t cap_ms, uint32_t jitter_pct, uint32_t rnd)
{
	uint64_t t = initial_ms, m, cut;

	if (backoff == 0)
		backoff = 1;
	if (jitter_pct > 100)
		jitter_pct = 100;
	/* Multiply step by step and stop at the cap: initial * backoff^attempt
	 * would overflow long before attempt reaches its limit. */
	for (uint32_t i = 0; i < attempt && t < cap_ms && backoff > 1; i++)
		t *= backoff;
	if (t > cap_ms)
		t = cap_ms;
	/* cut = floor(m * rnd / 100 / 2^32) with m = t * jitter_pct < 2^39.
	 * m * rnd needs 71 bits, so split m = 100 q + r: q * rnd < 2^64 and
	 * the sum below stays under 2^64 while remaining exact. */
	m = t * jitter_pct;
	cut = ((m / 100) * rnd + (m % 100) * rnd / 100) >> 32;
	t -= cut;
	if (t == 0 && initial_ms > 0)
		t = 1;
	return (uint32_t)t;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Errors after which trying again later can work: the network, the peer
 * or the neighbour entry may come back.  Anything else is our own fault. */
static bool
transient(int err)
{
	switch (err) {
	case ECONNREFUSED:  /* ICMP port unreachable from an earlier datagram */
	case EHOSTUNREACH:  /* ARP/ND failed, or ICMP host unreachable */
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
	case ENOBUFS:
	case EAGAIN:
	case EINTR:
		return true;
	default:
		return false;
	}
}

static int
check_opts(const struct amil_client_opts *o, struct amil_client *c)
{
	c->center_id = o->center_id;
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : AMIL_CLIENT_TIMEOUT_MS_DEFAULT;
	c->timeout_max_ms = o->timeout_max_ms ? o->timeout_max_ms
					      : AMIL_CLIENT_TIMEOUT_MAX_MS_DEFAULT;
	/* A default cap below an explicit larger first wait would refuse a
	 * sensible "--timeout-ms 5000": the cap then follows the first wait. */
	if (o->timeout_max_ms == 0 && c->timeout_max_ms < c->timeout_ms)
		c->timeout_max_ms = c->timeout_ms;
	c->backoff = o->backoff ? o->backoff : AMIL_CLIENT_BACKOFF_DEFAULT;
	c->jitter_pct = o->jitter_pct == AMIL_CLIENT_JITTER_NONE ? 0
		      : o->jitter_pct ? o->jitter_pct : AMIL_CLIENT_JITTER_PCT_DEFAULT;
	c->max_attempts = o->max_attempts ? o->max_attempts : AMIL_CLIENT_ATTEMPTS_DEFAULT;
	c->deadline_ms = o->deadline_ms;
	if (c->timeout_ms > AMIL_CLIENT_TIMEOUT_MAX_MS ||
	    c->timeout_max_ms > AMIL_CLIENT_TIMEOUT_MAX_MS ||
	    c->timeout_max_ms < c->timeout_ms || c->jitter_pct > 100 ||
	    c->max_attempts > AMIL_CLIENT_ATTEMPTS_MAX)
		return -EINVAL;
	return 0;
}

/* Resolve the numeric address and connect a fresh UDP socket to it. */
static int
open_socket(const char *server, uint16_t port)
{
	struct addrinfo hints, *ai = NULL;
	struct in_addr a4;
	char serv[8];
	int fd, err;

	memset(&hints, 0, sizeof(hints));
	/* IPv4 only as a dotted quad: getaddrinfo() also takes inet_aton()'s
	 * legacy forms, so "198.18.0" would quietly mean 198.18.0.0.  IPv6
	 * goes through getaddrinfo() for its "%scope" suffix. */
	if (strchr(server, ':') == NULL) {
		if (inet_pton(AF_INET, server, &a4) != 1)
			return -EINVAL;
		hints.ai_family = AF_INET;
	} else {
		hints.ai_family = AF_INET6;
	}
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	/* Numeric only: a kiosk must not depend on (or leak to) DNS, and a
	 * name that resolves differently later would split a donation's
	 * retransmissions across nodes. */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	err = getaddrinfo(server, serv, &hints, &ai);
	if (err != 0)
		return err == EAI_MEMORY ? -ENOMEM : err == EAI_SYSTEM ? -errno : -EINVAL;
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_UDP);
	if (fd < 0) {
		err = -errno;
		goto fail_socket;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		err = -errno;
		goto fail_connect;
	}
	freeaddrinfo(ai);
	return fd;

fail_connect:
	close(fd);
fail_socket:
	freeaddrinfo(ai);
	return err;
}

struct amil_client *
amil_client_new(const struct amil_client_opts *opts)
{
	struct amil_client *c;
	int err;

	if (opts == NULL || opts->server == NULL || opts->server[0] == '\0') {
		errno = EINVAL;
		return NULL;
	}
	/* randombytes_random() below wants the library initialised; the
	 * call is idempotent and thread-safe. */
	if (sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;  /* errno ENOMEM */
	err = check_opts(opts, c);
	if (err != 0)
		goto fail_opts;
	memcpy(c->key, opts->key, AMIL_KEY_LEN);
	c->fd = open_socket(opts->server, opts->port ? opts->port : AMIL_WIRE_PORT_DEFAULT);
	if (c->fd < 0) {
		err = c->fd;
		goto fail_socket;
	}
	/* A random start makes a stale ACK from an earlier process that had
	 * the same source port (unlikely, but ports are reused) not match. */
	c->seq = randombytes_random();
	return c;

fail_socket:
	sodium_memzero(c->key, sizeof(c->key));
fail_opts:
	free(c);
	errno = -err;
	return NULL;
}

void
amil_client_destroy(struct amil_client **cp)
{
	struct amil_client *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	close(c->fd);
	sodium_memzero(c->key, sizeof(c->key));
	free(c);
	*cp = NULL;
}

void
amil_client_stats_get(const struct amil_client *c, struct amil_client_stats *out)
{
	*out = c->st;
}

/*
 * Take every datagram waiting on the socket; stop at the first verified ACK
 * of this exchange (seqs first_seq .. c->seq - 1, modulo 2^32).
 * @return 0 with @ack filled, -EAGAIN when the socket is drained without
 *   one, -ECONNREFUSED & co. (transient) when the kernel reported an ICMP
 *   error, or another negative errno.
 */
static int
drain(struct amil_client *c, const struct amil_donation *d, uint32_t first_seq,
      struct amil_ack *ack)
{
	uint8_t buf[RX_BUF];
	struct amil_ack a;

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (amil_wire_check(buf, (size_t)n, AMIL_MSG_ACK) != 0) {
			c->st.rx_malformed++;
			continue;
		}
		/* Nothing in the reply is believed before the tag verifies. */
		if (amil_wire_verify(buf, c->key) != 0) {
			c->st.rx_bad_tag++;
			continue;
		}
		amil_wire_ack_decode(buf, &a);
		if (a.center_id != c->center_id || a.donation_id != d->donation_id ||
		    (uint32_t)(a.seq - first_seq) >= (uint32_t)(c->seq - first_seq)) {
			c->st.rx_mismatched++;
			continue;
		}
		*ack = a;
		return 0;
	}
}

/* Wait until @until_ns (monotonic) for the ACK.  @return 0, -ETIMEDOUT, a
 * transient errno reported by the socket (the caller retransmits), or
 * another negative errno. */
static int
await_ack(struct amil_client *c, const struct amil_donation *d, uint32_t first_seq,
	  uint64_t until_ns, struct amil_ack *ack)
{
	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		uint64_t now = now_ns(), left_ms;
		int r;

		if (now >= until_ns)
			return -ETIMEDOUT;
		/* Round up, so poll() does not return a hair early and spin. */
		left_ms = (until_ns - now + NS_PER_MS - 1) / NS_PER_MS;
		r = poll(&p, 1, left_ms > INT_MAX ? INT_MAX : (int)left_ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			continue;  /* the clock check above decides */
		r = drain(c, d, first_seq, ack);
		if (r == 0)
			return 0;
		if (r == -EAGAIN || r == -EWOULDBLOCK)
			continue;
		if (transient(-r)) {
			c->st.send_errors++;
			continue;  /* keep waiting: an ACK may still come */
		}
		return r;
	}
}

int
amil_client_donate(struct amil_client *c, const struct amil_donation *d, struct amil_ack *ack)
{
	uint8_t buf[AMIL_WIRE_LEN];
	struct amil_donation w;
	uint64_t start, deadline;
	uint32_t first_seq, attempt;
	bool any_sent = false;
	int last_err = ETIMEDOUT, rc = -ETIMEDOUT;

	if (ack != NULL)
		memset(ack, 0, sizeof(*ack));
	if (c == NULL || d == NULL || ack == NULL)
		return -EINVAL;
	w = *d;
	w.center_id = c->center_id;
	first_seq = c->seq;
	start = now_ns();
	deadline = c->deadline_ms ? start + c->deadline_ms * NS_PER_MS : UINT64_MAX;
	c->st.last_attempts = 0;
	c->st.last_rtt_ns = 0;

	for (attempt = 0; attempt < c->max_attempts; attempt++) {
		uint64_t now = now_ns(), until;
		uint32_t wait_ms;

		if (now >= deadline)
			break;
		/* Same content every time; only the echoed fields change, and
		 * the new bytes are signed again. */
		w.sent_ns = now;
		w.seq = c->seq++;
		amil_wire_donation_encode(buf, &w);
		amil_wire_sign(buf, c->key);
		c->st.last_attempts++;
		if (send(c->fd, buf, sizeof(buf), MSG_NOSIGNAL) == (ssize_t)sizeof(buf)) {
			if (!any_sent)
				c->st.donations++;
			any_sent = true;
			c->st.sent++;
			if (attempt > 0)
				c->st.retransmits++;
		} else {
			int err = errno;

			c->st.send_errors++;
			if (!transient(err)) {
				rc = -err;
				goto out;
			}
			last_err = err;
		}
		wait_ms = amil_client_backoff_ms(attempt, c->timeout_ms, c->backoff,
						 c->timeout_max_ms, c->jitter_pct,
						 c->jitter_pct ? randombytes_random() : 0);
		until = now + wait_ms * NS_PER_MS;
		if (until > deadline)
			until = deadline;
		rc = await_ack(c, &w, first_seq, until, ack);
		if (rc == 0) {
			uint64_t t = now_ns();

			/* sent_ns is our monotonic clock, echoed under the tag. */
			c->st.last_rtt_ns = ack->sent_ns <= t ? t - ack->sent_ns : 0;
			c->st.answered++;
			return 0;
		}
		if (rc != -ETIMEDOUT && !transient(-rc))
			goto out;
	}
	if (any_sent) {
		c->st.unanswered++;
		rc = -ETIMEDOUT;
	} else {
		rc = -last_err;
	}
out:
	memset(ack, 0, sizeof(*ack));
	return rc;
}
