/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Discovery beacons: codec, replay filter, socket.  The format and the
 * contracts are in beacon.h; the reasoning behind the window is in
 * docs/discovery.md.
 *
 * Replay table: buckets of 8 entries, two candidate buckets per key chosen
 * by SipHash (crypto_shorthash) under a random per-filter key, so a sender
 * cannot aim many keys at one bucket.  An entry is live while
 * now <= ts + window; an expired entry is simply a free slot, so there is
 * no deletion, no tombstone and no sweep.  A fresh key goes to the less
 * loaded of its two buckets (two-choice hashing keeps the fullest bucket
 * near the mean); when both are full of live entries the beacon is
 * refused.  Forgetting a live entry instead would let exactly that beacon
 * be replayed, which is what the table is for.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "beacon.h"

enum {
	OFF_MAGIC = 0, OFF_VERSION = 2, OFF_FLAGS = 3, OFF_RSVD0 = 4,
	OFF_CLUSTER = 8, OFF_NODE = 16, OFF_INC = 24, OFF_TS = 32,
	OFF_NONCE = 40, OFF_KEY = 56, OFF_FAMILY = 88, OFF_RSVD1 = 89,
	OFF_PORT = 90, OFF_ADDR = 92, OFF_NAMELEN = 108, OFF_RSVD2 = 109,
	OFF_NAME = 112,
};
_Static_assert(offsetof(struct amil_beacon_layout, reserved2) == OFF_RSVD2, "rsvd2");
_Static_assert(offsetof(struct amil_beacon_layout, reserved1) == OFF_RSVD1, "rsvd1");
_Static_assert(OFF_NAME + AMIL_BEACON_NAME_MAX == AMIL_BEACON_MAC_OFF, "name ends at mac");
_Static_assert(crypto_auth_hmacsha256_BYTES == AMIL_BEACON_MAC_LEN, "HMAC-SHA-256 is 32 bytes");
_Static_assert(crypto_auth_hmacsha256_KEYBYTES == AMIL_BEACON_SECRET_LEN, "key is 32 bytes");

#define WIRE_INET  4
#define RECV_BUDGET 64  /* datagrams read per amil_beacon_recv() call */
#define WIRE_INET6 6

static uint16_t
ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static uint64_t
ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static void
st16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static void
st64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* ------------------------------------------------------------------ */
/* Codec                                                               */

int
amil_beacon_encode(uint8_t out[AMIL_BEACON_LEN], const struct amil_beacon *b,
		   const uint8_t secret[AMIL_BEACON_SECRET_LEN])
{
	const struct amil_disc_endpoint *ep = &b->endpoint;
	uint8_t fam;

	if (b->node_id == 0 || ep->port == 0 || b->name_len > AMIL_BEACON_NAME_MAX ||
	    memchr(b->name, '\0', b->name_len) != NULL)
		return -EINVAL;
	if (ep->family == AF_INET && all_zero(ep->addr + 4, 12))
		fam = WIRE_INET;
	else if (ep->family == AF_INET6)
		fam = WIRE_INET6;
	else
		return -EINVAL;

	memset(out, 0, AMIL_BEACON_LEN);
	st16(out + OFF_MAGIC, AMIL_BEACON_MAGIC);
	out[OFF_VERSION] = AMIL_BEACON_VERSION;
	st64(out + OFF_CLUSTER, b->cluster_id);
	st64(out + OFF_NODE, b->node_id);
	st64(out + OFF_INC, b->incarnation);
	st64(out + OFF_TS, b->timestamp_ns);
	memcpy(out + OFF_NONCE, b->nonce, AMIL_BEACON_NONCE_LEN);
	memcpy(out + OFF_KEY, b->curve_public, AMIL_BEACON_KEY_LEN);
	out[OFF_FAMILY] = fam;
	st16(out + OFF_PORT, ep->port);
	memcpy(out + OFF_ADDR, ep->addr, 16);
	out[OFF_NAMELEN] = b->name_len;
	memcpy(out + OFF_NAME, b->name, b->name_len);
	crypto_auth_hmacsha256(out + AMIL_BEACON_MAC_OFF, out, AMIL_BEACON_MAC_OFF, secret);
	return 0;
}

/* Everything a valid beacon of our version must satisfy besides the MAC
 * and the cluster id. */
static bool
well_formed(const uint8_t *p)
{
	uint8_t nlen = p[OFF_NAMELEN];
	uint8_t fam = p[OFF_FAMILY];

	if (p[OFF_FLAGS] != 0 || !all_zero(p + OFF_RSVD0, 4) || p[OFF_RSVD1] != 0 ||
	    !all_zero(p + OFF_RSVD2, 3))
		return false;
	if (ld64(p + OFF_NODE) == 0 || ld16(p + OFF_PORT) == 0)
		return false;
	if (fam == WIRE_INET) {
		if (!all_zero(p + OFF_ADDR + 4, 12))
			return false;
	} else if (fam != WIRE_INET6) {
		return false;
	}
	if (nlen > AMIL_BEACON_NAME_MAX || memchr(p + OFF_NAME, '\0', nlen) != NULL)
		return false;
	/* Padding must be zero: otherwise bytes nobody reads would still be
	 * authenticated, and two encodings of one beacon could exist. */
	return all_zero(p + OFF_NAME + nlen, AMIL_BEACON_NAME_MAX - nlen);
}

int
amil_beacon_decode_verify(const uint8_t *buf, size_t len, uint64_t cluster_id,
			  const uint8_t secret[AMIL_BEACON_SECRET_LEN], struct amil_beacon *out)
{
	if (len < 4 || buf == NULL || ld16(buf + OFF_MAGIC) != AMIL_BEACON_MAGIC)
		return -EBADMSG;
	if (buf[OFF_VERSION] != AMIL_BEACON_VERSION)
		return -EPROTO;
	if (len != AMIL_BEACON_LEN)
		return -EBADMSG;
	if (ld64(buf + OFF_CLUSTER) != cluster_id)
		return -EPROTO;
	if (!well_formed(buf))
		return -EBADMSG;
	/* crypto_auth_hmacsha256_verify compares in constant time. */
	if (crypto_auth_hmacsha256_verify(buf + AMIL_BEACON_MAC_OFF, buf, AMIL_BEACON_MAC_OFF,
					  secret) != 0)
		return -EPERM;

	memset(out, 0, sizeof(*out));
	out->cluster_id = cluster_id;
	out->node_id = ld64(buf + OFF_NODE);
	out->incarnation = ld64(buf + OFF_INC);
	out->timestamp_ns = ld64(buf + OFF_TS);
	memcpy(out->nonce, buf + OFF_NONCE, AMIL_BEACON_NONCE_LEN);
	memcpy(out->curve_public, buf + OFF_KEY, AMIL_BEACON_KEY_LEN);
	out->endpoint.family = buf[OFF_FAMILY] == WIRE_INET ? AF_INET : AF_INET6;
	out->endpoint.port = ld16(buf + OFF_PORT);
	memcpy(out->endpoint.addr, buf + OFF_ADDR, 16);
	out->name_len = buf[OFF_NAMELEN];
	memcpy(out->name, buf + OFF_NAME, out->name_len);
	out->name[out->name_len] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Replay filter                                                       */

#define BUCKET_SLOTS 8

struct replay_entry {
	uint64_t node_id;
	uint64_t expires_ns;     /* ts + window, saturated; 0: never used */
	uint8_t nonce[AMIL_BEACON_NONCE_LEN];
};

struct amil_beacon_replay {
	uint64_t window_ns;
	uint32_t bucket_mask;    /* number of buckets - 1 */
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct amil_beacon_replay_counters c;
	struct replay_entry *slots;  /* (bucket_mask + 1) * BUCKET_SLOTS */
};

struct amil_beacon_replay *
amil_beacon_replay_new(uint32_t capacity, uint64_t window_ns)
{
	struct amil_beacon_replay *r;
	uint64_t nslots = BUCKET_SLOTS;

	if (capacity == 0 || capacity > (1u << 20) || window_ns < 1000000ull ||
	    window_ns > 3600ull * 1000000000ull) {
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		errno = ENOMEM;
		return NULL;
	}
	while (nslots < 2ull * capacity)
		nslots <<= 1;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto fail_alloc;
	r->slots = calloc(nslots, sizeof(*r->slots));
	if (r->slots == NULL)
		goto fail_slots;
	r->window_ns = window_ns;
	r->bucket_mask = (uint32_t)(nslots / BUCKET_SLOTS - 1);
	randombytes_buf(r->hash_key, sizeof(r->hash_key));
	return r;

fail_slots:
	free(r);
fail_alloc:
	errno = ENOMEM;
	return NULL;
}

void
amil_beacon_replay_destroy(struct amil_beacon_replay **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	free((*rp)->slots);
	free(*rp);
	*rp = NULL;
}

static bool
entry_live(const struct replay_entry *e, uint64_t now_ns)
{
	return e->expires_ns != 0 && now_ns <= e->expires_ns;
}

int
amil_beacon_replay_check(struct amil_beacon_replay *r, uint64_t now_ns, uint64_t node_id,
			 uint64_t timestamp_ns, const uint8_t nonce[AMIL_BEACON_NONCE_LEN])
{
	uint8_t key[8 + AMIL_BEACON_NONCE_LEN], h[crypto_shorthash_BYTES];
	struct replay_entry *b[2], *free_slot[2] = {NULL, NULL};
	unsigned used[2] = {0, 0};
	uint64_t hv, expires;
	int pick;

	/* Differences, not sums: a timestamp near UINT64_MAX must not wrap. */
	if ((timestamp_ns < now_ns && now_ns - timestamp_ns > r->window_ns) ||
	    (timestamp_ns > now_ns && timestamp_ns - now_ns > r->window_ns)) {
		r->c.stale++;
		return -ESTALE;
	}

	st64(key, node_id);
	memcpy(key + 8, nonce, AMIL_BEACON_NONCE_LEN);
	crypto_shorthash(h, key, sizeof(key), r->hash_key);
	memcpy(&hv, h, sizeof(hv));
	b[0] = &r->slots[(size_t)((uint32_t)hv & r->bucket_mask) * BUCKET_SLOTS];
	b[1] = &r->slots[(size_t)((uint32_t)(hv >> 32) & r->bucket_mask) * BUCKET_SLOTS];

	for (int k = 0; k < 2; k++) {
		if (k == 1 && b[1] == b[0]) {
			used[1] = used[0];
			break;
		}
		for (int i = 0; i < BUCKET_SLOTS; i++) {
			struct replay_entry *e = &b[k][i];

			if (!entry_live(e, now_ns)) {
				if (free_slot[k] == NULL)
					free_slot[k] = e;
				continue;
			}
			used[k]++;
			if (e->node_id == node_id &&
			    memcmp(e->nonce, nonce, AMIL_BEACON_NONCE_LEN) == 0) {
				r->c.replayed++;
				return -EALREADY;
			}
		}
	}
	if (free_slot[0] == NULL && free_slot[1] == NULL) {
		r->c.full++;
		return -ENOSPC;
	}
	if (free_slot[0] == NULL)
		pick = 1;
	else if (free_slot[1] == NULL)
		pick = 0;
	else
		pick = used[1] < used[0];
	expires = timestamp_ns > UINT64_MAX - r->window_ns ? UINT64_MAX
							   : timestamp_ns + r->window_ns;
	free_slot[pick]->node_id = node_id;
	free_slot[pick]->expires_ns = expires;
	memcpy(free_slot[pick]->nonce, nonce, AMIL_BEACON_NONCE_LEN);
	r->c.accepted++;
	return 0;
}

uint32_t
amil_beacon_replay_live(const struct amil_beacon_replay *r, uint64_t now_ns)
{
	size_t n = (size_t)(r->bucket_mask + 1) * BUCKET_SLOTS;
	uint32_t live = 0;

	for (size_t i = 0; i < n; i++)
		live += entry_live(&r->slots[i], now_ns);
	return live;
}

void
amil_beacon_replay_get_counters(const struct amil_beacon_replay *r,
				struct amil_beacon_replay_counters *out)
{
	*out = r->c;
}

/* ------------------------------------------------------------------ */
/* Socket                                                              */

struct amil_beacon_sock {
	int fd;
	uint64_t cluster_id;
	uint64_t self_id;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct amil_beacon_replay *replay;
	struct amil_beacon_counters c;
	uint8_t secret[AMIL_BEACON_SECRET_LEN];
};

static int
set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v)) == 0 ? 0 : -errno;
}

/* Broadcast: bound to the wildcard (a socket bound to a unicast address
 * would not see broadcasts). */
static int
setup_broadcast(int fd, const struct amil_beacon_sock_config *cfg)
{
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(cfg->port)};
	int rc;

	if ((rc = set_int(fd, SOL_SOCKET, SO_BROADCAST, 1)) != 0)
		return rc;
	if (bind(fd, (struct sockaddr *)&any, sizeof(any)) != 0)
		return -errno;
	return 0;
}

static int
setup_mcast4(int fd, const struct amil_beacon_sock_config *cfg, const struct in_addr *grp,
	     unsigned ifindex)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cfg->port), .sin_addr = *grp};
	struct ip_mreqn mr = {.imr_multiaddr = *grp, .imr_ifindex = (int)ifindex};
	int rc;

	/* Bound to the group, not the wildcard: unicast and other groups on
	 * the same port never reach this socket. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0)
		return -errno;
	if (ifindex != 0 && setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) != 0)
		return -errno;
	if ((rc = set_int(fd, IPPROTO_IP, IP_MULTICAST_TTL, cfg->ttl ? cfg->ttl : 1)) != 0 ||
	    (rc = set_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP, cfg->loop)) != 0)
		return rc;
	/* Linux delivers every group joined by any socket on this port by
	 * default; only ours, please. */
	return set_int(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0);
}

static int
setup_mcast6(int fd, const struct amil_beacon_sock_config *cfg, const struct in6_addr *grp,
	     unsigned ifindex)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(cfg->port),
				  .sin6_addr = *grp};
	struct ipv6_mreq mr = {.ipv6mr_multiaddr = *grp, .ipv6mr_interface = ifindex};
	int rc;

	/* Link-local scoped groups (ff02::) need the interface as scope. */
	if (IN6_IS_ADDR_MC_LINKLOCAL(grp))
		sa.sin6_scope_id = ifindex;
	if ((rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) != 0)
		return rc;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)) != 0)
		return -errno;
	if (ifindex != 0 && (rc = set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)ifindex)) != 0)
		return rc;
	if ((rc = set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, cfg->ttl ? cfg->ttl : 1)) != 0 ||
	    (rc = set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, cfg->loop)) != 0)
		return rc;
	return set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0);
}

struct amil_beacon_sock *
amil_beacon_sock_new(const struct amil_beacon_sock_config *cfg)
{
	struct amil_beacon_sock *s;
	struct in_addr a4;
	struct in6_addr a6;
	unsigned ifindex = cfg->ifindex;
	const char *ifname = cfg->ifname;
	char ifbuf[IF_NAMESIZE];
	int family, rc;

	if (cfg->secret == NULL || cfg->self_id == 0 || cfg->port == 0 || cfg->group == NULL ||
	    (cfg->mode != AMIL_BEACON_BROADCAST && cfg->mode != AMIL_BEACON_MULTICAST)) {
		errno = EINVAL;
		return NULL;
	}
	if (inet_pton(AF_INET, cfg->group, &a4) == 1) {
		family = AF_INET;
		if (cfg->mode == AMIL_BEACON_MULTICAST && !IN_MULTICAST(ntohl(a4.s_addr))) {
			errno = EINVAL;
			return NULL;
		}
	} else if (inet_pton(AF_INET6, cfg->group, &a6) == 1) {
		family = AF_INET6;
		/* IPv6 has no broadcast. */
		if (cfg->mode != AMIL_BEACON_MULTICAST || !IN6_IS_ADDR_MULTICAST(&a6)) {
			errno = EINVAL;
			return NULL;
		}
	} else {
		errno = EINVAL;
		return NULL;
	}
	if (ifname != NULL && ifname[0] != '\0') {
		ifindex = if_nametoindex(ifname);
		if (ifindex == 0) {
			errno = ENODEV;
			return NULL;
		}
	} else if (ifindex != 0) {
		if (if_indextoname(ifindex, ifbuf) == NULL) {
			errno = ENODEV;
			return NULL;
		}
		ifname = ifbuf;
	} else {
		ifname = NULL;
	}

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rc = -ENOMEM;
		goto fail_alloc;
	}
	s->replay = amil_beacon_replay_new(cfg->replay_capacity ? cfg->replay_capacity : 4096,
					   cfg->window_ns ? cfg->window_ns : 30ull * 1000000000ull);
	if (s->replay == NULL) {
		rc = -errno;
		goto fail_replay;
	}
	s->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = -errno;
		goto fail_socket;
	}
	/* Several daemons (or tests) on one host share the port. */
	if ((rc = set_int(s->fd, SOL_SOCKET, SO_REUSEADDR, 1)) != 0)
		goto fail_setup;
	/* With an interface, only datagrams that arrived on it are read and
	 * "255.255.255.255" leaves through it.  For IPv6 multicast this is
	 * the only per-interface filter: Linux matches IPv6 group membership
	 * by address alone, so a socket joined on one interface would also
	 * read the group's traffic arriving on another. */
	if (ifname != NULL && setsockopt(s->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname,
					 (socklen_t)strlen(ifname)) != 0) {
		rc = -errno;
		goto fail_setup;
	}
	if (cfg->mode == AMIL_BEACON_BROADCAST)
		rc = setup_broadcast(s->fd, cfg);
	else if (family == AF_INET)
		rc = setup_mcast4(s->fd, cfg, &a4, ifindex);
	else
		rc = setup_mcast6(s->fd, cfg, &a6, ifindex);
	if (rc != 0)
		goto fail_setup;

	if (family == AF_INET) {
		struct sockaddr_in *d = (struct sockaddr_in *)&s->dst;

		d->sin_family = AF_INET;
		d->sin_port = htons(cfg->port);
		d->sin_addr = a4;
		s->dst_len = sizeof(*d);
	} else {
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&s->dst;

		d->sin6_family = AF_INET6;
		d->sin6_port = htons(cfg->port);
		d->sin6_addr = a6;
		d->sin6_scope_id = IN6_IS_ADDR_MC_LINKLOCAL(&a6) ? ifindex : 0;
		s->dst_len = sizeof(*d);
	}
	s->cluster_id = cfg->cluster_id;
	s->self_id = cfg->self_id;
	memcpy(s->secret, cfg->secret, AMIL_BEACON_SECRET_LEN);
	return s;

fail_setup:
	close(s->fd);
fail_socket:
	amil_beacon_replay_destroy(&s->replay);
fail_replay:
	free(s);
fail_alloc:
	errno = -rc;
	return NULL;
}

void
amil_beacon_sock_destroy(struct amil_beacon_sock **sp)
{
	struct amil_beacon_sock *s;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	close(s->fd);
	amil_beacon_replay_destroy(&s->replay);
	sodium_memzero(s->secret, sizeof(s->secret));
	free(s);
	*sp = NULL;
}

int
amil_beacon_sock_fd(const struct amil_beacon_sock *s)
{
	return s->fd;
}

int
amil_beacon_send(struct amil_beacon_sock *s, const struct amil_beacon *self,
		 uint64_t now_realtime_ns)
{
	struct amil_beacon b = *self;
	uint8_t buf[AMIL_BEACON_LEN];
	int rc;

	b.cluster_id = s->cluster_id;
	b.node_id = s->self_id;
	b.timestamp_ns = now_realtime_ns;
	randombytes_buf(b.nonce, sizeof(b.nonce));
	rc = amil_beacon_encode(buf, &b, s->secret);
	if (rc != 0) {
		s->c.send_errors++;
		return rc;
	}
	if (sendto(s->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&s->dst,
		   s->dst_len) != (ssize_t)sizeof(buf)) {
		rc = errno ? -errno : -EIO;
		s->c.send_errors++;
		return rc;
	}
	s->c.sent++;
	return 0;
}

int
amil_beacon_recv(struct amil_beacon_sock *s, uint64_t now_realtime_ns, struct amil_beacon *out,
		 void *from)
{
	/* One byte more than a beacon: a longer datagram is seen as such
	 * (MSG_TRUNC returns the real length) and refused. */
	uint8_t buf[AMIL_BEACON_LEN + 1];
	struct sockaddr_storage ss;
	struct amil_beacon b;

	/* A bounded number of reads per call, so a flood of junk cannot hold
	 * the daemon's loop; the fd stays readable and the next poll returns. */
	for (unsigned budget = RECV_BUDGET; budget > 0; budget--) {
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(s->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&ss, &sl);
		int rc;

		if (n < 0) {
			if (errno == EINTR)
				continue;  /* costs budget: fine, the fd stays readable */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			s->c.recv_errors++;
			return -errno;
		}
		s->c.received++;
		if ((size_t)n > AMIL_BEACON_LEN) {
			s->c.malformed_dropped++;
			continue;
		}
		rc = amil_beacon_decode_verify(buf, (size_t)n, s->cluster_id, s->secret, &b);
		if (rc == -EBADMSG) {
			s->c.malformed_dropped++;
			continue;
		}
		if (rc == -EPROTO) {
			s->c.foreign_dropped++;
			continue;
		}
		if (rc != 0) {
			s->c.bad_mac_dropped++;
			continue;
		}
		/* Own beacons come back with multicast loop or broadcast; they
		 * are dropped before the replay table so they take no slot. */
		if (b.node_id == s->self_id) {
			s->c.own_dropped++;
			continue;
		}
		rc = amil_beacon_replay_check(s->replay, now_realtime_ns, b.node_id,
					      b.timestamp_ns, b.nonce);
		if (rc == -ESTALE) {
			s->c.stale_dropped++;
			continue;
		}
		if (rc == -EALREADY) {
			s->c.replay_dropped++;
			continue;
		}
		if (rc != 0) {
			s->c.replay_full_dropped++;
			continue;
		}
		s->c.accepted++;
		*out = b;
		if (from != NULL)
			memcpy(from, &ss, sizeof(ss));
		return 0;
	}
	return -EAGAIN;
}

void
amil_beacon_get_counters(const struct amil_beacon_sock *s, struct amil_beacon_counters *out)
{
	*out = s->c;
}
