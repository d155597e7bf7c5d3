/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * UDP discovery beacons: "I am node N of cluster C, reach me at this
 * endpoint with this CURVE key", broadcast or multicast on the local
 * segment every few seconds, authenticated with HMAC-SHA-256 under the
 * 32-byte cluster secret.  A beacon only proposes a candidate peer to the
 * daemon; membership (membership.h) and CURVE decide what happens next, and
 * only the failure detector removes members.
 *
 * Three layers, usable separately:
 *   1. the codec: amil_beacon_encode() / amil_beacon_decode_verify(), pure,
 *      no allocation, safe from any thread;
 *   2. the replay filter (struct amil_beacon_replay): a timestamp window
 *      plus a bounded set of (node id, nonce) seen within it;
 *   3. the socket (struct amil_beacon_sock): a non-blocking UDP socket for
 *      broadcast or IPv4/IPv6 multicast whose fd the daemon polls, and
 *      amil_beacon_send() / amil_beacon_recv() which stamp, encode, decode,
 *      verify, filter and count every reason a datagram is dropped.
 *
 * Wire format, version 1: exactly AMIL_BEACON_LEN (176) bytes, integers
 * big-endian at fixed offsets (docs/discovery.md has the same table):
 *
 *     0  magic         u16  0x4142 "AB" (Amil Beacon)
 *     2  version       u8   1
 *     3  flags         u8   must be 0
 *     4  reserved      u32  must be 0
 *     8  cluster_id    u64  must equal the receiver's
 *    16  node_id       u64  never 0
 *    24  incarnation   u64  boot id / incarnation of the sender
 *    32  timestamp_ns  u64  CLOCK_REALTIME of the sender, ns since the epoch
 *    40  nonce         16   random per beacon (randombytes_buf)
 *    56  curve_public  32   raw CURVE (X25519) public key
 *    88  family        u8   4 (IPv4) or 6 (IPv6)
 *    89  reserved      u8   must be 0
 *    90  port          u16  not 0
 *    92  addr          16   IPv4: 4 bytes then 12 zero bytes; IPv6: 16
 *   108  name_len      u8   0..AMIL_BEACON_NAME_MAX
 *   109  reserved      3    must be 0
 *   112  name          32   name_len bytes (no NUL), then zero padding
 *   144  mac           32   HMAC-SHA-256(cluster secret, bytes 0..143)
 *
 * Fixed width on purpose: a length-checked fixed record has one valid size,
 * so there is no length arithmetic to get wrong, and 176 bytes fit any
 * datagram.  The packed structs below document the layout and are checked
 * by _Static_assert; the codec reads and writes the bytes at the offsets.
 */
#ifndef AMIL_BEACON_H
#define AMIL_BEACON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_BEACON_MAGIC       0x4142  /* "AB" */
#define AMIL_BEACON_VERSION     1
#define AMIL_BEACON_LEN         176
#define AMIL_BEACON_MAC_OFF     144     /* the MAC covers bytes [0, 144) */
#define AMIL_BEACON_MAC_LEN     32
#define AMIL_BEACON_NONCE_LEN   16
#define AMIL_BEACON_KEY_LEN     32      /* raw CURVE public key */
#define AMIL_BEACON_SECRET_LEN  32      /* cluster secret = HMAC key */
#define AMIL_BEACON_NAME_MAX    32      /* = AMIL_MEMBERSHIP_NAME_MAX */

#ifndef AMIL_DISC_ENDPOINT_DEFINED
#define AMIL_DISC_ENDPOINT_DEFINED
/*
 * A candidate peer's TCP endpoint, shared by the discovery modules
 * (identical definition in dns_disc.h, guarded).
 */
struct amil_disc_endpoint {
	uint8_t family;          /* AF_INET or AF_INET6 */
	uint16_t port;           /* host byte order, not 0 */
	uint8_t addr[16];        /* network order; IPv4 in [0..3], rest zero */
};
#endif

#ifdef __cplusplus
#define AMIL_BEACON_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define AMIL_BEACON_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Layout documentation only; see the file comment. */
struct __attribute__((packed)) amil_beacon_layout {
	uint16_t magic;
	uint8_t version;
	uint8_t flags;
	uint32_t reserved0;
	uint64_t cluster_id;
	uint64_t node_id;
	uint64_t incarnation;
	uint64_t timestamp_ns;
	uint8_t nonce[AMIL_BEACON_NONCE_LEN];
	uint8_t curve_public[AMIL_BEACON_KEY_LEN];
	uint8_t family;
	uint8_t reserved1;
	uint16_t port;
	uint8_t addr[16];
	uint8_t name_len;
	uint8_t reserved2[3];
	uint8_t name[AMIL_BEACON_NAME_MAX];
	uint8_t mac[AMIL_BEACON_MAC_LEN];
};

AMIL_BEACON_STATIC_ASSERT(sizeof(struct amil_beacon_layout) == AMIL_BEACON_LEN, "beacon 176");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, cluster_id) == 8, "cluster at 8");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, node_id) == 16, "node at 16");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, incarnation) == 24, "inc at 24");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, timestamp_ns) == 32, "ts at 32");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, nonce) == 40, "nonce at 40");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, curve_public) == 56, "key at 56");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, family) == 88, "family at 88");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, port) == 90, "port at 90");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, addr) == 92, "addr at 92");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, name_len) == 108, "nlen at 108");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, name) == 112, "name at 112");
AMIL_BEACON_STATIC_ASSERT(offsetof(struct amil_beacon_layout, mac) == AMIL_BEACON_MAC_OFF, "mac at 144");

/* A beacon in host byte order. */
struct amil_beacon {
	uint64_t cluster_id;
	uint64_t node_id;                          /* never 0 */
	uint64_t incarnation;                      /* boot id or incarnation */
	uint64_t timestamp_ns;                     /* CLOCK_REALTIME, ns */
	uint8_t nonce[AMIL_BEACON_NONCE_LEN];
	uint8_t curve_public[AMIL_BEACON_KEY_LEN];
	struct amil_disc_endpoint endpoint;
	uint8_t name_len;                          /* 0..AMIL_BEACON_NAME_MAX */
	char name[AMIL_BEACON_NAME_MAX + 1];       /* NUL-terminated after decode */
};

/**
 * Encode @b into @out and append the MAC.  Timestamp and nonce are taken
 * from @b as they are (amil_beacon_send() sets them; tests fix them).
 *
 * @param secret  the cluster secret, AMIL_BEACON_SECRET_LEN bytes.
 * @return 0; -EINVAL when @b breaks a decode rule (node id 0, family not
 *   AF_INET/AF_INET6, port 0, IPv4 address with non-zero bytes past [3],
 *   name_len over the maximum, a NUL inside the name) - nothing useful is
 *   written then.
 */
int amil_beacon_encode(uint8_t out[AMIL_BEACON_LEN], const struct amil_beacon *b,
		       const uint8_t secret[AMIL_BEACON_SECRET_LEN]);

/**
 * Check and decode @len received bytes.  Checks run cheapest first, so
 * garbage and other clusters' beacons cost no HMAC:
 *   length < 4 or bad magic            -> -EBADMSG
 *   version != AMIL_BEACON_VERSION     -> -EPROTO
 *   length != AMIL_BEACON_LEN          -> -EBADMSG
 *   cluster id != @cluster_id          -> -EPROTO
 *   non-zero flags/reserved/padding, node id 0, bad family, port 0,
 *   name_len too long, NUL in the name -> -EBADMSG
 *   HMAC mismatch (constant time)      -> -EPERM
 * The cluster id is compared before the MAC because a beacon of another
 * cluster sharing the segment is a configuration fact worth its own
 * counter; an attacker who forges one only moves that counter.
 *
 * @param buf  may be NULL only when @len is 0; never read past @len.
 * @param out  filled on success only.
 * @return 0 or one of the negative errnos above.  Pure: safe from any
 *   thread.  Does not check freshness or replay (amil_beacon_replay_check).
 */
int amil_beacon_decode_verify(const uint8_t *buf, size_t len, uint64_t cluster_id,
			      const uint8_t secret[AMIL_BEACON_SECRET_LEN],
			      struct amil_beacon *out);

/* ------------------------------------------------------------------ */
/* Replay filter                                                        */

struct amil_beacon_replay;

struct amil_beacon_replay_counters {
	uint64_t accepted;
	uint64_t stale;          /* timestamp outside now +- window */
	uint64_t replayed;       /* (node id, nonce) already seen in the window */
	uint64_t full;           /* refused: no free slot for a fresh entry */
};

/**
 * Create a replay filter.  All memory is allocated here; checks never
 * allocate.  The table has the power of two >= 2 x @capacity slots in
 * buckets of 8; an entry lives until its timestamp leaves the window.
 * Size @capacity for the beacons accepted in one window: nodes x
 * (2 x window / beacon interval), with room to spare.
 *
 * @param capacity   1..1<<20 entries.
 * @param window_ns  accepted clock difference, 1 ms..1 h.
 * @return the filter (caller owns it: amil_beacon_replay_destroy()), or
 *   NULL with errno EINVAL (bad argument) or ENOMEM.
 */
struct amil_beacon_replay *amil_beacon_replay_new(uint32_t capacity, uint64_t window_ns);

/** Free @*rp and set it to NULL.  Accepts NULL and a pointer to NULL. */
void amil_beacon_replay_destroy(struct amil_beacon_replay **rp);

/**
 * Accept a beacon's (node id, timestamp, nonce) at most once.
 *
 * @param now_ns  the receiver's CLOCK_REALTIME, ns.
 * @return 0 accepted (and remembered until now passes ts + window);
 *   -ESTALE when |ts - now| > window (exactly window is accepted);
 *   -EALREADY when the pair was accepted before and is still remembered;
 *   -ENOSPC when the pair is fresh but both candidate buckets are full of
 *   live entries: refused rather than forgetting a live entry (which would
 *   reopen the replay it guards).  Each outcome is counted.
 *
 * Clock steps: an entry is dropped once now > ts + window, after which
 * the same beacon is stale.  If the receiver's clock then steps back by
 * more than the window, a beacon captured before the step could be
 * accepted once more; a replayed beacon only re-proposes a peer that must
 * still pass CURVE, so this is accepted rather than blocking discovery
 * until the clock catches up.  Not thread-safe: one owner thread.
 */
int amil_beacon_replay_check(struct amil_beacon_replay *r, uint64_t now_ns, uint64_t node_id,
			     uint64_t timestamp_ns, const uint8_t nonce[AMIL_BEACON_NONCE_LEN]);

/** Number of live entries at @now_ns (a scan; for tests and stats). */
uint32_t amil_beacon_replay_live(const struct amil_beacon_replay *r, uint64_t now_ns);

/** Copy the counters. */
void amil_beacon_replay_get_counters(const struct amil_beacon_replay *r,
				     struct amil_beacon_replay_counters *out);

/* ------------------------------------------------------------------ */
/* Socket                                                              */

enum amil_beacon_mode {
	AMIL_BEACON_BROADCAST = 1,   /* IPv4 only: SO_BROADCAST */
	AMIL_BEACON_MULTICAST = 2,   /* IPv4 or IPv6 group */
};

struct amil_beacon_sock_config {
	uint64_t cluster_id;
	uint64_t self_id;            /* our own beacons are dropped (counted) */
	const uint8_t *secret;       /* AMIL_BEACON_SECRET_LEN bytes, copied */
	enum amil_beacon_mode mode;
	/* Destination: the broadcast address ("255.255.255.255", a directed
	 * broadcast such as "198.18.0.255", "127.255.255.255" on loopback)
	 * or the multicast group ("239.255.77.77", "ff15::4d41"); the family
	 * follows the text. */
	const char *group;
	uint16_t port;               /* UDP port, sent to and listened on */
	/* Interface, optional (NULL/0: the routing table decides).  By name
	 * or index (the name wins).  Multicast: join and send on it.
	 * Both: SO_BINDTODEVICE, so only datagrams arriving on it are read and
	 * "255.255.255.255" leaves through it. */
	const char *ifname;
	unsigned ifindex;
	uint8_t ttl;                 /* multicast TTL / hop limit; 0 means 1 */
	bool loop;                   /* multicast loopback to this host (tests) */
	uint64_t window_ns;          /* replay window; 0 means 30 s */
	uint32_t replay_capacity;    /* 0 means 4096 */
};

/* Counters: monotonic since creation; every received datagram lands in
 * exactly one of accepted or the *_dropped fields. */
struct amil_beacon_counters {
	uint64_t sent;
	uint64_t send_errors;        /* sendto failed (errno in the return) */
	uint64_t received;           /* datagrams read */
	uint64_t accepted;
	uint64_t malformed_dropped;  /* -EBADMSG, oversize datagram included */
	uint64_t bad_mac_dropped;    /* -EPERM: wrong secret or forged */
	uint64_t foreign_dropped;    /* -EPROTO: other cluster or version */
	uint64_t stale_dropped;      /* -ESTALE: outside the time window */
	uint64_t replay_dropped;     /* -EALREADY */
	uint64_t replay_full_dropped;/* -ENOSPC: replay table full */
	uint64_t own_dropped;        /* our own node id (multicast loop) */
	uint64_t recv_errors;        /* recvfrom failed other than EAGAIN */
};

struct amil_beacon_sock;

/**
 * Open one non-blocking UDP socket that both sends and receives beacons:
 * bound to the port with SO_REUSEADDR (several listeners on one host),
 * broadcast: SO_BROADCAST, bound to the wildcard address;
 * multicast: bound to the group, joined on the interface, TTL/hop limit
 * and loop set, IP_MULTICAST_ALL off (only this group reaches the socket).
 *
 * @return the socket (caller owns it: amil_beacon_sock_destroy()), or NULL
 *   with errno: EINVAL (bad config: no secret, node id 0, port 0, address
 *   not parseable, broadcast with IPv6, multicast with a non-multicast
 *   address), ENODEV (unknown interface), ENOMEM, or the errno of the
 *   failing socket call.
 */
struct amil_beacon_sock *amil_beacon_sock_new(const struct amil_beacon_sock_config *cfg);

/** Close, wipe the secret, free @*sp and set it to NULL.  Accepts NULL. */
void amil_beacon_sock_destroy(struct amil_beacon_sock **sp);

/** The fd to poll for POLLIN (zmq_poll on a raw fd). */
int amil_beacon_sock_fd(const struct amil_beacon_sock *s);

/**
 * Send one beacon describing us: @self's identity, key, endpoint and name
 * are used; its timestamp is set to @now_realtime_ns and a fresh nonce is
 * drawn (randombytes_buf); cluster_id and node_id are taken from the
 * socket config.  Never blocks.
 * @return 0; -EINVAL when @self does not encode; the negative errno of
 *   sendto (EAGAIN when the socket buffer is full, ENETUNREACH...),
 *   counted in send_errors.
 */
int amil_beacon_send(struct amil_beacon_sock *s, const struct amil_beacon *self,
		     uint64_t now_realtime_ns);

/**
 * Read datagrams until one is an acceptable beacon or none is left.
 * Every datagram read is counted as accepted or under its drop reason.
 * Call it in a loop while it returns 0, then poll again.
 *
 * @param now_realtime_ns  CLOCK_REALTIME, ns (the window is about clocks).
 * @param out  the accepted beacon (fresh, authenticated, not a replay, not
 *             our own).
 * @param from optional: the datagram's source (struct sockaddr_storage
 *             sized), for logs; the beacon's endpoint is what to dial.
 * @return 0 with @out filled; -EAGAIN when nothing (more) is waiting, or
 *   after 64 dropped datagrams in this call (a flood must not hold the
 *   caller: poll again, the fd is still readable);
 *   another negative errno if recvfrom failed (counted in recv_errors).
 */
int amil_beacon_recv(struct amil_beacon_sock *s, uint64_t now_realtime_ns,
		     struct amil_beacon *out, void *from);

/** Copy the counters. */
void amil_beacon_get_counters(const struct amil_beacon_sock *s, struct amil_beacon_counters *out);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_BEACON_H */
