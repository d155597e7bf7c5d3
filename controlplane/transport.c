/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * CURVE transport with an allow-list ZAP handler.  See transport.h.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "transport.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ALLOW_MAX    1024

/* Datagram header: magic "AU", version, flags, reserved, then the nonce
 * (sender id, boot id, counter: 24 bytes), then the box (MAC + message). */
#define DG_MAGIC0 'A'
#define DG_MAGIC1 'U'
#define DG_VERSION 1
#define DG_HDR 32
#define DG_WINDOW 64
/* First plaintext byte of a boxed datagram. */
#define DG_KIND_MEMBERSHIP 0
#define DG_KIND_IDENTITY   1           /* answer to a hello: our endpoint */
/* Hello: unboxed, "AH", version, 5 zero bytes, sender id.  It asks an
 * endpoint found by DNS which node it is; the answer is boxed for the
 * (allow-listed) asker, so only the asker can read or trust it. */
#define HELLO_LEN 16
#define HELLO_RATE_PER_S 20            /* identity replies, all askers together */
_Static_assert(DG_HDR == 8 + crypto_box_NONCEBYTES, "header is 8 bytes + the nonce");

struct peer {
	void *dealer;                  /* NULL: no connection */
	char endpoint[AMIL_ENDPOINT_MAX + 1];
	uint8_t box_key[crypto_box_BEFORENMBYTES]; /* ours x theirs */
	/* Replay window of what this peer sent us. */
	uint64_t rx_boot, rx_top;
	uint64_t rx_seen;              /* bit i: counter rx_top - i seen */
	/* Where its datagrams go (parsed from the last endpoint used). */
	char dg_endpoint[AMIL_ENDPOINT_MAX + 1];
	struct sockaddr_storage dg_addr;
	socklen_t dg_addr_len;
};

struct amil_transport {
	void *ctx;
	void *server;                  /* ROUTER, CURVE server */
	void *zap;                     /* REP on ZAP_ENDPOINT */
	uint64_t self_id;
	uint8_t pub[AMIL_CURVE_KEY_LEN];
	uint8_t sec[AMIL_CURVE_KEY_LEN];
	int reconnect_ivl_ms, reconnect_ivl_max_ms;
	unsigned nb_allow;
	struct amil_allow_entry *allow;
	struct peer *peer;             /* [nb_allow], same index as allow */
	int udp;                       /* datagram socket, -1 if none */
	uint64_t boot_id;              /* our start time: nonces of a new life are new */
	uint64_t tx_counter;
	char advertise[AMIL_ENDPOINT_MAX + 1]; /* told in identity replies */
	amil_transport_ident_fn ident_fn;
	void *ident_ctx;
	uint64_t hello_bucket_ns;      /* token bucket of identity replies */
	struct amil_transport_counters c;
};

/* Parse "tcp://ADDR:PORT" or "tcp://[V6]:PORT" into a socket address. */
static int
endpoint_addr(const char *ep, size_t len, struct sockaddr_storage *sa, socklen_t *salen)
{
	char host[AMIL_ENDPOINT_MAX + 1], *colon, *h = host;
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;

	if (len < 7 || len > AMIL_ENDPOINT_MAX || strncmp(ep, "tcp://", 6) != 0)
		return -EINVAL;
	memcpy(host, ep + 6, len - 6);
	host[len - 6] = '\0';
	colon = strrchr(host, ':');
	if (colon == NULL)
		return -EINVAL;
	*colon = '\0';
	if (h[0] == '[') {
		size_t hl = strlen(h);

		if (hl < 2 || h[hl - 1] != ']')
			return -EINVAL;
		h[hl - 1] = '\0';
		h++;
	}
	if (getaddrinfo(h, colon + 1, &hints, &res) != 0 || res == NULL)
		return -EINVAL;
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*salen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
allow_index(const struct amil_transport *t, uint64_t node_id)
{
	for (unsigned i = 0; i < t->nb_allow; i++)
		if (t->allow[i].node_id == node_id)
			return (int)i;
	return -1;
}

static int
allow_index_by_key(const struct amil_transport *t, const uint8_t *key)
{
	for (unsigned i = 0; i < t->nb_allow; i++)
		if (memcmp(t->allow[i].pub, key, AMIL_CURVE_KEY_LEN) == 0)
			return (int)i;
	return -1;
}

struct amil_transport *
amil_transport_new(const struct amil_transport_params *p, char *err, size_t errlen)
{
	struct amil_transport *t;
	int one = 1, zero = 0, maxmsg_ok;
	int64_t maxmsg = AMIL_TRANSPORT_MSG_MAX + 64;

	if (p == NULL || p->zmq_ctx == NULL || p->listen == NULL || p->self_id == 0 ||
	    p->nb_allow > ALLOW_MAX) {
		set_err(err, errlen, "transport: invalid parameters");
		return NULL;
	}
	if (!zmq_has("curve")) {
		set_err(err, errlen, "libzmq was built without CURVE (libsodium) support");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto nomem;
	t->udp = -1;
	t->ctx = p->zmq_ctx;
	snprintf(t->advertise, sizeof(t->advertise), "%s",
		 p->advertise != NULL ? p->advertise : p->listen);
	t->self_id = p->self_id;
	memcpy(t->pub, p->public_key, sizeof(t->pub));
	memcpy(t->sec, p->secret_key, sizeof(t->sec));
	t->reconnect_ivl_ms = p->reconnect_ivl_ms > 0 ? p->reconnect_ivl_ms : 100;
	t->reconnect_ivl_max_ms = p->reconnect_ivl_max_ms > 0 ? p->reconnect_ivl_max_ms : 5000;
	t->nb_allow = p->nb_allow;
	t->allow = calloc(p->nb_allow ? p->nb_allow : 1, sizeof(*t->allow));
	t->peer = calloc(p->nb_allow ? p->nb_allow : 1, sizeof(*t->peer));
	if (t->allow == NULL || t->peer == NULL)
		goto nomem;
	if (p->nb_allow)
		memcpy(t->allow, p->allow, p->nb_allow * sizeof(*t->allow));

	/* The ZAP handler first: the server consults it from its first
	 * handshake on. */
	t->zap = zmq_socket(t->ctx, ZMQ_REP);
	if (t->zap == NULL || zmq_setsockopt(t->zap, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(t->zap, ZAP_ENDPOINT) != 0) {
		set_err(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	t->server = zmq_socket(t->ctx, ZMQ_ROUTER);
	maxmsg_ok = t->server != NULL &&
		    zmq_setsockopt(t->server, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) == 0;
	if (!maxmsg_ok || zmq_setsockopt(t->server, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(t->server, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(t->server, ZMQ_CURVE_SECRETKEY, t->sec, sizeof(t->sec)) != 0 ||
	    zmq_setsockopt(t->server, ZMQ_ZAP_DOMAIN, "amil", 4) != 0) {
		set_err(err, errlen, "cannot create the server socket: %s",
			zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (zmq_bind(t->server, p->listen) != 0) {
		set_err(err, errlen, "cannot listen on %s: %s", p->listen, zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (sodium_init() < 0) {
		set_err(err, errlen, "libsodium failed to initialise");
		goto fail;
	}
	for (unsigned i = 0; i < t->nb_allow; i++)
		if (crypto_box_beforenm(t->peer[i].box_key, t->allow[i].pub, t->sec) != 0) {
			set_err(err, errlen, "allow-list: key of node %" PRIu64 " is not usable",
				t->allow[i].node_id);
			goto fail;
		}
	{
		struct sockaddr_storage sa;
		socklen_t sl;
		struct timespec ts;
		int buf = 1 << 20;

		if (endpoint_addr(p->listen, strlen(p->listen), &sa, &sl) != 0) {
			set_err(err, errlen, "%s: datagrams need a numeric address and port",
				p->listen);
			goto fail;
		}
		t->udp = socket(sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (t->udp < 0 || bind(t->udp, (struct sockaddr *)&sa, sl) != 0) {
			set_err(err, errlen, "cannot bind UDP on %s: %s", p->listen, strerror(errno));
			goto fail;
		}
		setsockopt(t->udp, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		clock_gettime(CLOCK_REALTIME, &ts);
		t->boot_id = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	return t;

nomem:
	set_err(err, errlen, "out of memory");
fail:
	amil_transport_destroy(&t);
	return NULL;
}

void
amil_transport_destroy(struct amil_transport **tp)
{
	struct amil_transport *t;

	if (tp == NULL || *tp == NULL)
		return;
	t = *tp;
	for (unsigned i = 0; t->peer != NULL && i < t->nb_allow; i++)
		if (t->peer[i].dealer != NULL)
			zmq_close(t->peer[i].dealer);
	if (t->server != NULL)
		zmq_close(t->server);
	if (t->zap != NULL)
		zmq_close(t->zap);
	if (t->udp >= 0)
		close(t->udp);
	if (t->peer != NULL)
		sodium_memzero(t->peer, t->nb_allow * sizeof(*t->peer));
	free(t->allow);
	free(t->peer);
	explicit_bzero(t->sec, sizeof(t->sec));
	free(t);
	*tp = NULL;
}

int
amil_transport_pollitems(struct amil_transport *t, zmq_pollitem_t *items, int max)
{
	if (max < 3)
		return 0;
	items[0] = (zmq_pollitem_t){.socket = t->server, .events = ZMQ_POLLIN};
	items[1] = (zmq_pollitem_t){.socket = t->zap, .events = ZMQ_POLLIN};
	items[2] = (zmq_pollitem_t){.socket = NULL, .fd = t->udp, .events = ZMQ_POLLIN};
	return 3;
}

/* Receive every frame of one message into @f (up to @max frames, the rest
 * discarded).  @return the number of frames, or -1 when nothing waits. */
static int
recv_frames(void *s, zmq_msg_t *f, int max)
{
	int n = 0, more;
	size_t ml = sizeof(more);

	for (;;) {
		zmq_msg_t tmp, *m = n < max ? &f[n] : &tmp;

		zmq_msg_init(m);
		if (zmq_msg_recv(m, s, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(m);
			return n == 0 ? -1 : n;
		}
		more = 0;
		zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
		if (m == &tmp)
			zmq_msg_close(m);
		else
			n++;
		if (!more)
			return n;
	}
}

static void
close_frames(zmq_msg_t *f, int n)
{
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
}

static void
send_str(void *s, const char *str, size_t len, bool more)
{
	zmq_send(s, str, len, more ? ZMQ_SNDMORE : 0);
}

/*
 * One ZAP request (RFC 27): version, request id, domain, address,
 * identity, mechanism, credentials.  Only CURVE from an allow-listed key
 * is admitted; its node id becomes the User-Id of every message on that
 * connection.
 */
static void
zap_one(struct amil_transport *t)
{
	zmq_msg_t f[8];
	int n = recv_frames(t->zap, f, 8), idx = -1;
	char uid[24] = "";
	bool ok = false;

	if (n < 0)
		return;
	if (n >= 7 && zmq_msg_size(&f[0]) == 3 && memcmp(zmq_msg_data(&f[0]), "1.0", 3) == 0 &&
	    zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
	    zmq_msg_size(&f[6]) == AMIL_CURVE_KEY_LEN) {
		idx = allow_index_by_key(t, zmq_msg_data(&f[6]));
		ok = idx >= 0;
	}
	if (ok) {
		snprintf(uid, sizeof(uid), "%" PRIu64, t->allow[idx].node_id);
		t->c.zap_allowed++;
	} else {
		t->c.zap_denied++;
	}
	/* A REP socket must answer every request, even a malformed one. */
	send_str(t->zap, "1.0", 3, true);
	if (n >= 2)
		zmq_send(t->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
	else
		send_str(t->zap, "", 0, true);
	send_str(t->zap, ok ? "200" : "400", 3, true);
	send_str(t->zap, ok ? "OK" : "not on the allow-list", ok ? 2 : 21, true);
	send_str(t->zap, uid, strlen(uid), true);
	send_str(t->zap, "", 0, false);
	close_frames(f, n);
}

static inline void
st64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t
ld64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Anti-replay: a newer boot resets the window; within a boot, a counter
 * above the top moves the window, one inside it must not have been seen. */
static bool
replay_check_and_set(struct peer *p, uint64_t boot, uint64_t ctr)
{
	if (boot < p->rx_boot)
		return false;
	if (boot > p->rx_boot) {
		p->rx_boot = boot;
		p->rx_top = ctr;
		p->rx_seen = 1;
		return true;
	}
	if (ctr > p->rx_top) {
		uint64_t shift = ctr - p->rx_top;

		p->rx_seen = shift >= DG_WINDOW ? 1 : (p->rx_seen << shift) | 1;
		p->rx_top = ctr;
		return true;
	}
	if (p->rx_top - ctr >= DG_WINDOW || (p->rx_seen >> (p->rx_top - ctr)) & 1)
		return false;
	p->rx_seen |= UINT64_C(1) << (p->rx_top - ctr);
	return true;
}

/* Box @len bytes of @kind + @buf for @p and send them to @sa. */
static int
send_boxed(struct amil_transport *t, struct peer *p, uint8_t kind, const uint8_t *buf, size_t len,
	   const struct sockaddr *sa, socklen_t salen)
{
	static uint8_t pkt[DG_HDR + crypto_box_MACBYTES + 1 + AMIL_TRANSPORT_DGRAM_MAX];
	static uint8_t plain[1 + AMIL_TRANSPORT_DGRAM_MAX];

	if (len > AMIL_TRANSPORT_DGRAM_MAX)
		return -EINVAL;
	plain[0] = kind;
	memcpy(plain + 1, buf, len);
	pkt[0] = DG_MAGIC0;
	pkt[1] = DG_MAGIC1;
	pkt[2] = DG_VERSION;
	memset(pkt + 3, 0, 5);
	st64le(pkt + 8, t->self_id);
	st64le(pkt + 16, t->boot_id);
	st64le(pkt + 24, ++t->tx_counter);
	crypto_box_easy_afternm(pkt + DG_HDR, plain, len + 1, pkt + 8, p->box_key);
	if (sendto(t->udp, pkt, DG_HDR + crypto_box_MACBYTES + 1 + len, MSG_DONTWAIT, sa, salen) < 0)
		return -EAGAIN;
	return 0;
}

static uint64_t
now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A hello from an allow-listed asker: tell it who we are, boxed for it,
 * at the address it came from.  Rate-limited: hellos are not
 * authenticated, so they must not make us a reflector. */
static void
answer_hello(struct amil_transport *t, const uint8_t *pkt, const struct sockaddr *sa,
	     socklen_t salen)
{
	uint64_t from = ld64le(pkt + 8), now = now_mono_ns();
	const uint64_t cost = 1000000000ull / HELLO_RATE_PER_S;
	int idx = allow_index(t, from);

	t->c.hello_rx++;
	if (from == t->self_id)
		return;                /* DNS lists us too: we asked ourselves */
	if (idx < 0) {
		t->c.dgram_rx_bad++;
		return;
	}
	/* Token bucket: at most one second's worth of burst. */
	if (t->hello_bucket_ns + 1000000000ull < now)
		t->hello_bucket_ns = now - 1000000000ull;
	if (t->hello_bucket_ns + cost > now) {
		t->c.hello_rate_limited++;
		return;
	}
	t->hello_bucket_ns += cost;
	if (send_boxed(t, &t->peer[idx], DG_KIND_IDENTITY, (const uint8_t *)t->advertise,
		       strlen(t->advertise), sa, salen) == 0)
		t->c.hello_replies++;
}

static int
dgram_process(struct amil_transport *t, amil_transport_recv_fn fn, void *ctx)
{
	static uint8_t pkt[DG_HDR + crypto_box_MACBYTES + 1 + AMIL_TRANSPORT_DGRAM_MAX + 1];
	static uint8_t msg[1 + AMIL_TRANSPORT_DGRAM_MAX];
	int delivered = 0;

	for (int k = 0; k < 1024 && t->udp >= 0; k++) {
		struct sockaddr_storage src;
		socklen_t sl = sizeof(src);
		ssize_t n = recvfrom(t->udp, pkt, sizeof(pkt), MSG_DONTWAIT, (struct sockaddr *)&src,
				     &sl);
		uint64_t from, boot, ctr;
		size_t plen;
		struct peer *p;
		int idx;

		if (n < 0)
			break;
		if (n == HELLO_LEN && pkt[0] == 'A' && pkt[1] == 'H' && pkt[2] == DG_VERSION) {
			answer_hello(t, pkt, (struct sockaddr *)&src, sl);
			continue;
		}
		if ((size_t)n < DG_HDR + crypto_box_MACBYTES + 1 || (size_t)n == sizeof(pkt) ||
		    pkt[0] != DG_MAGIC0 || pkt[1] != DG_MAGIC1 || pkt[2] != DG_VERSION) {
			t->c.dgram_rx_bad++;
			continue;
		}
		from = ld64le(pkt + 8);
		boot = ld64le(pkt + 16);
		ctr = ld64le(pkt + 24);
		idx = allow_index(t, from);
		if (idx < 0 || from == t->self_id) {
			t->c.dgram_rx_bad++;
			continue;
		}
		p = &t->peer[idx];
		/* Authenticate before touching the replay window: a forged
		 * packet must not move it. */
		if (crypto_box_open_easy_afternm(msg, pkt + DG_HDR, (size_t)n - DG_HDR, pkt + 8,
						 p->box_key) != 0) {
			t->c.dgram_rx_bad++;
			continue;
		}
		if (!replay_check_and_set(p, boot, ctr)) {
			t->c.dgram_rx_replay++;
			continue;
		}
		plen = (size_t)n - DG_HDR - crypto_box_MACBYTES - 1;
		if (msg[0] == DG_KIND_IDENTITY) {
			char ep[AMIL_ENDPOINT_MAX + 1];

			if (plen == 0 || plen > AMIL_ENDPOINT_MAX) {
				t->c.dgram_rx_bad++;
				continue;
			}
			memcpy(ep, msg + 1, plen);
			ep[plen] = '\0';
			t->c.ident_rx++;
			if (t->ident_fn != NULL)
				t->ident_fn(t->ident_ctx, from, ep);
			continue;
		}
		if (msg[0] != DG_KIND_MEMBERSHIP || plen == 0) {
			t->c.dgram_rx_bad++;
			continue;
		}
		t->c.dgram_rx++;
		delivered++;
		fn(ctx, from, msg + 1, plen);
	}
	return delivered;
}

int
amil_transport_hello(struct amil_transport *t, const struct sockaddr *sa, socklen_t salen)
{
	uint8_t pkt[HELLO_LEN] = {'A', 'H', DG_VERSION};

	st64le(pkt + 8, t->self_id);
	if (sendto(t->udp, pkt, sizeof(pkt), MSG_DONTWAIT, sa, salen) < 0) {
		t->c.dgram_tx_dropped++;
		return -errno;
	}
	t->c.hello_tx++;
	return 0;
}

void
amil_transport_set_ident_fn(struct amil_transport *t, amil_transport_ident_fn fn, void *ctx)
{
	t->ident_fn = fn;
	t->ident_ctx = ctx;
}

int
amil_transport_send_dgram(struct amil_transport *t, uint64_t to_id, const char *endpoint,
			  size_t endpoint_len, const uint8_t *buf, size_t len)
{
	int idx = allow_index(t, to_id);
	struct peer *p;

	if (idx < 0 || to_id == t->self_id) {
		t->c.tx_refused++;
		return -EPERM;
	}
	endpoint_len = strnlen(endpoint, endpoint_len);
	if (len == 0 || len > AMIL_TRANSPORT_DGRAM_MAX || endpoint_len > AMIL_ENDPOINT_MAX) {
		t->c.dgram_tx_dropped++;
		return -EINVAL;
	}
	p = &t->peer[idx];
	if (strlen(p->dg_endpoint) != endpoint_len ||
	    memcmp(p->dg_endpoint, endpoint, endpoint_len) != 0) {
		if (endpoint_addr(endpoint, endpoint_len, &p->dg_addr, &p->dg_addr_len) != 0) {
			t->c.dgram_tx_dropped++;
			return -EINVAL;
		}
		memcpy(p->dg_endpoint, endpoint, endpoint_len);
		p->dg_endpoint[endpoint_len] = '\0';
	}
	if (send_boxed(t, p, DG_KIND_MEMBERSHIP, buf, len, (struct sockaddr *)&p->dg_addr,
		       p->dg_addr_len) != 0) {
		t->c.dgram_tx_dropped++;
		return -EAGAIN;
	}
	t->c.dgram_tx++;
	return 0;
}

int
amil_transport_process(struct amil_transport *t, amil_transport_recv_fn fn, void *ctx)
{
	int delivered = dgram_process(t, fn, ctx);

	/* ZAP first: pending handshakes should not wait for a message burst. */
	for (int k = 0; k < 64; k++) {
		int ev = 0;
		size_t el = sizeof(ev);

		zmq_getsockopt(t->zap, ZMQ_EVENTS, &ev, &el);
		if (!(ev & ZMQ_POLLIN))
			break;
		zap_one(t);
	}
	/* Bounded, so a flood cannot starve the timers. */
	for (int k = 0; k < 1024; k++) {
		zmq_msg_t f[3];
		int n = recv_frames(t->server, f, 3);
		const char *uid;
		char *end;
		uint64_t from;

		if (n < 0)
			break;
		/* [routing id][payload] and nothing else. */
		if (n != 2 || zmq_msg_size(&f[1]) == 0 || zmq_msg_size(&f[1]) > AMIL_TRANSPORT_MSG_MAX) {
			t->c.rx_dropped++;
			close_frames(f, n);
			continue;
		}
		uid = zmq_msg_gets(&f[1], "User-Id");
		errno = 0;
		from = uid != NULL ? strtoull(uid, &end, 10) : 0;
		if (uid == NULL || errno != 0 || *end != '\0' || from == 0 || from == t->self_id ||
		    allow_index(t, from) < 0) {
			t->c.rx_dropped++;
			close_frames(f, n);
			continue;
		}
		t->c.rx_msgs++;
		t->c.rx_bytes += zmq_msg_size(&f[1]);
		delivered++;
		fn(ctx, from, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]));
		close_frames(f, n);
	}
	return delivered;
}

static bool
endpoint_ok(const char *e, size_t len)
{
	if (len < 7 || len > AMIL_ENDPOINT_MAX || strncmp(e, "tcp://", 6) != 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)e[i]))
			return false;
	return true;
}

static void *
open_dealer(struct amil_transport *t, const struct amil_allow_entry *a, const char *endpoint)
{
	void *s = zmq_socket(t->ctx, ZMQ_DEALER);
	int one = 1, zero = 0, hwm = 100000, hs = 2000;

	if (s == NULL)
		return NULL;
	if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &hs, sizeof(hs)) != 0 ||
	    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &t->reconnect_ivl_ms, sizeof(int)) != 0 ||
	    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &t->reconnect_ivl_max_ms, sizeof(int)) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, a->pub, AMIL_CURVE_KEY_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, t->pub, AMIL_CURVE_KEY_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, t->sec, AMIL_CURVE_KEY_LEN) != 0 ||
	    zmq_connect(s, endpoint) != 0) {
		zmq_close(s);
		return NULL;
	}
	return s;
}

/* The peer's connection, opened (or re-targeted) as needed; NULL on error
 * (counted). */
static struct peer *
peer_connect(struct amil_transport *t, uint64_t to_id, const char *endpoint, size_t endpoint_len)
{
	char ep[AMIL_ENDPOINT_MAX + 1];
	struct peer *p;
	int idx = allow_index(t, to_id);

	if (idx < 0 || to_id == t->self_id) {
		t->c.tx_refused++;
		return NULL;
	}
	endpoint_len = strnlen(endpoint, endpoint_len);
	if (!endpoint_ok(endpoint, endpoint_len)) {
		t->c.tx_refused++;
		return NULL;
	}
	memcpy(ep, endpoint, endpoint_len);
	ep[endpoint_len] = '\0';
	p = &t->peer[idx];
	if (p->dealer != NULL && strcmp(p->endpoint, ep) != 0) {
		zmq_close(p->dealer);
		p->dealer = NULL;
		t->c.peers--;
	}
	if (p->dealer == NULL) {
		p->dealer = open_dealer(t, &t->allow[idx], ep);
		if (p->dealer == NULL) {
			t->c.tx_refused++;
			return NULL;
		}
		memcpy(p->endpoint, ep, endpoint_len + 1);
		t->c.peers++;
	}
	return p;
}

int
amil_transport_connect(struct amil_transport *t, uint64_t to_id, const char *endpoint,
		       size_t endpoint_len)
{
	return peer_connect(t, to_id, endpoint, endpoint_len) != NULL ? 0 : -EINVAL;
}

int
amil_transport_reconnect(struct amil_transport *t, uint64_t to_id, const char *endpoint,
			 size_t endpoint_len)
{
	int idx = allow_index(t, to_id);

	if (idx >= 0 && t->peer[idx].dealer != NULL) {
		zmq_close(t->peer[idx].dealer);
		t->peer[idx].dealer = NULL;
		t->c.peers--;
	}
	return amil_transport_connect(t, to_id, endpoint, endpoint_len);
}

int
amil_transport_send(struct amil_transport *t, uint64_t to_id, const char *endpoint,
		    size_t endpoint_len, const uint8_t *buf, size_t len)
{
	struct peer *p;

	if (len == 0 || len > AMIL_TRANSPORT_MSG_MAX) {
		t->c.tx_refused++;
		return -EINVAL;
	}
	if (allow_index(t, to_id) < 0 || to_id == t->self_id) {
		t->c.tx_refused++;
		return -EPERM;
	}
	p = peer_connect(t, to_id, endpoint, endpoint_len);
	if (p == NULL)
		return -EINVAL;
	if (zmq_send(p->dealer, buf, len, ZMQ_DONTWAIT) < 0) {
		t->c.tx_dropped++;
		return -EAGAIN;
	}
	t->c.tx_msgs++;
	t->c.tx_bytes += len;
	return 0;
}

void
amil_transport_forget(struct amil_transport *t, uint64_t node_id)
{
	int idx = allow_index(t, node_id);

	if (idx < 0 || t->peer[idx].dealer == NULL)
		return;
	zmq_close(t->peer[idx].dealer);
	t->peer[idx].dealer = NULL;
	t->peer[idx].endpoint[0] = '\0';
	t->c.peers--;
}

const struct amil_allow_entry *
amil_transport_allowed(const struct amil_transport *t, uint64_t node_id)
{
	int idx = allow_index(t, node_id);

	return idx < 0 ? NULL : &t->allow[idx];
}

void
amil_transport_get_counters(const struct amil_transport *t, struct amil_transport_counters *out)
{
	*out = t->c;
}

/* --- keys and allow-list --------------------------------------------------- */

static int
z85_decode(const char *s, uint8_t key[AMIL_CURVE_KEY_LEN])
{
	char buf[AMIL_CURVE_Z85_LEN + 1];

	if (strlen(s) != AMIL_CURVE_Z85_LEN)
		return -EINVAL;
	memcpy(buf, s, sizeof(buf));
	return zmq_z85_decode(key, buf) != NULL ? 0 : -EINVAL;
}

int
amil_allow_list_load(const char *path, struct amil_allow_entry *out, unsigned max, char *err,
		     size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[512];
	unsigned n = 0, lineno = 0;

	if (f == NULL) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char key[64], name[64] = "", extra[8];
		unsigned long long id;
		char *hash = line;
		int k;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			set_err(err, errlen, "%s:%u: line too long", path, lineno);
			goto bad;
		}
		/* '#' after a blank starts a comment; so does one at the start
		 * of a line unless the line starts with a key: Z85 keys may
		 * contain (and begin with) '#', but never a blank. */
		{
			const char *b = line + strspn(line, " \t");
			size_t tok = strcspn(b, " \t\r\n");
			uint8_t probe[AMIL_CURVE_KEY_LEN];
			char kb[AMIL_CURVE_Z85_LEN + 1];
			bool key_first = false;

			if (tok == AMIL_CURVE_Z85_LEN) {
				memcpy(kb, b, tok);
				kb[tok] = '\0';
				key_first = z85_decode(kb, probe) == 0;
			}
			if (*b == '#' && !key_first)
				continue;
			hash = line + (b - line) + (key_first ? tok : 0);
		}
		while ((hash = strchr(hash, '#')) != NULL) {
			if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
				*hash = '\0';
				break;
			}
			hash++;
		}
		k = sscanf(line, "%63s %llu %63s %7s", key, &id, name, extra);
		if (k <= 0)
			continue;
		if (k == 1 || k == 4) {
			set_err(err, errlen,
				"%s:%u: expected '<Z85 public key> <node id> [name]'", path, lineno);
			goto bad;
		}
		if (id == 0) {
			set_err(err, errlen, "%s:%u: node id must be 1 or more", path, lineno);
			goto bad;
		}
		if (strlen(name) > AMIL_NODE_NAME_MAX) {
			set_err(err, errlen, "%s:%u: name longer than %d bytes", path, lineno,
				AMIL_NODE_NAME_MAX);
			goto bad;
		}
		if (n == max) {
			set_err(err, errlen, "%s:%u: more than %u appliances", path, lineno, max);
			goto bad;
		}
		if (z85_decode(key, out[n].pub) != 0) {
			set_err(err, errlen, "%s:%u: '%.48s' is not a 40-character Z85 public key", path,
				lineno, key);
			goto bad;
		}
		for (unsigned i = 0; i < n; i++) {
			if (out[i].node_id == id) {
				set_err(err, errlen, "%s:%u: node id %llu listed twice", path, lineno, id);
				goto bad;
			}
			if (memcmp(out[i].pub, out[n].pub, AMIL_CURVE_KEY_LEN) == 0) {
				set_err(err, errlen, "%s:%u: key listed twice", path, lineno);
				goto bad;
			}
		}
		out[n].node_id = id;
		memcpy(out[n].name, name, strlen(name) + 1); /* length checked above */
		n++;
	}
	fclose(f);
	return (int)n;
bad:
	fclose(f);
	return -EINVAL;
}

int
amil_curve_key_load(const char *path, bool secret, uint8_t key[AMIL_CURVE_KEY_LEN], char *err,
		    size_t errlen)
{
	char buf[128];
	struct stat st;
	size_t len;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (secret && fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
		fclose(f);
		set_err(err, errlen, "%s: a secret key must not be readable by others (chmod 600)",
			path);
		return -EPERM;
	}
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (z85_decode(buf, key) != 0) {
		set_err(err, errlen, "%s: not a 40-character Z85 key", path);
		return -EINVAL;
	}
	return 0;
}

int
amil_curve_keygen(const char *dir, char z85_pub[AMIL_CURVE_Z85_LEN + 1], char *err,
		  size_t errlen)
{
	char sec[AMIL_CURVE_Z85_LEN + 1], path[4096];
	int fd, rc = 0;
	FILE *f;

	if (zmq_curve_keypair(z85_pub, sec) != 0) {
		set_err(err, errlen, "cannot create a key pair: %s", zmq_strerror(zmq_errno()));
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "%s/curve.key", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "%s: %s%s", path, strerror(errno),
			errno == EEXIST ? " (an identity exists; it is never overwritten)" : "");
		goto out;
	}
	if (write(fd, sec, AMIL_CURVE_Z85_LEN) != AMIL_CURVE_Z85_LEN || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		rc = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s/curve.pub", dir);
	f = fopen(path, "w");
	if (f == NULL || fprintf(f, "%s\n", z85_pub) < 0 || fclose(f) != 0) {
		rc = -EIO;
		set_err(err, errlen, "%s: cannot write", path);
	}
out:
	explicit_bzero(sec, sizeof(sec));
	return rc;
}
