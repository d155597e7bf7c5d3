/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Appliance-to-appliance transport of the control plane: ZeroMQ over TCP,
 * every connection encrypted and authenticated with CURVE, and, for the
 * failure detector's datagrams, UDP boxed with the same keys.
 *
 * Why two paths: SWIM needs datagrams.  Over TCP one lost segment holds
 * every later message of the connection for a retransmission timeout
 * (200 ms minimum on Linux, doubling), which a failure detector with a
 * 40 ms probe timeout reads as silence: measured with 10 % packet loss
 * between three appliances (tests/test_controlplane_netns.cpp), TCP gave
 * several false deaths in 20 s; UDP gives none, as SWIM was designed for.
 * The datagrams are crypto_box'ed (X25519 + XSalsa20-Poly1305, libsodium)
 * with the key shared by our CURVE secret key and the sender's allow-listed
 * CURVE public key, so they are as authenticated and confidential as the
 * CURVE connections; each carries the sender's id, a boot id and a counter
 * in its nonce, and a per-sender window (64 messages, as IPsec/WireGuard)
 * refuses replays.  The UDP socket uses the same address and port as the
 * TCP listener.  Messages that must arrive (later issues: registry deltas)
 * use the CURVE connections.
 *
 * Each appliance binds one ROUTER socket (CURVE server) and opens one
 * DEALER (CURVE client) per peer it talks to; all messages go DEALER ->
 * peer's ROUTER, so each direction has its own connection and nothing ever
 * waits for an answer.  A CURVE server admits any client that knows its
 * public key unless a ZAP handler says otherwise, so this module runs one:
 * a client is admitted only if its public key is on the cluster allow-list,
 * and the node id the allow-list gives that key becomes the connection's
 * ZAP User-Id.  A received message is attributed to that node id, never to
 * what the message claims, so one appliance cannot speak for another.
 *
 * Outgoing connections use the allow-list too: the public key a DEALER
 * expects from a peer is the one listed for its node id, whatever address
 * gossip or discovery supplied, so a false address can at worst fail to
 * connect.  Reconnection (with backoff from 100 ms to 5 s by default) is
 * ZeroMQ's own; a message to a peer without a live connection is dropped
 * and counted (ZMQ_IMMEDIATE), as the membership protocol expects loss.
 *
 * Single-threaded: the daemon's loop owns the instance and polls the
 * sockets amil_transport_pollitems() reports.
 */
#ifndef AMIL_TRANSPORT_H
#define AMIL_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <zmq.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CURVE_KEY_LEN   32        /* raw key bytes */
#define AMIL_CURVE_Z85_LEN   40        /* Z85 text, without NUL */
#define AMIL_TRANSPORT_DGRAM_MAX 4096  /* datagram payload, larger ones refused */
#define AMIL_TRANSPORT_MSG_MAX (16u << 20) /* CURVE message (registry states), larger refused */
#define AMIL_ENDPOINT_MAX    96        /* "tcp://[v6addr]:port", fits an address blob */
#define AMIL_NODE_NAME_MAX   32

/** One allow-listed appliance: its key, node id and name. */
struct amil_allow_entry {
	uint64_t node_id;
	uint8_t pub[AMIL_CURVE_KEY_LEN];
	char name[AMIL_NODE_NAME_MAX + 1];
};

struct amil_transport_params {
	void *zmq_ctx;                 /* shared with the daemon's other sockets */
	uint64_t self_id;
	const char *listen;            /* "tcp://ADDR:PORT" to bind */
	const char *advertise;         /* told to askers (hello); NULL: listen */
	uint8_t public_key[AMIL_CURVE_KEY_LEN];
	uint8_t secret_key[AMIL_CURVE_KEY_LEN];
	const struct amil_allow_entry *allow; /* copied */
	unsigned nb_allow;
	int reconnect_ivl_ms;          /* 0: 100 */
	int reconnect_ivl_max_ms;      /* 0: 5000 */
};

struct amil_transport_counters {
	uint64_t zap_allowed;          /* handshakes admitted */
	uint64_t zap_denied;           /* keys not on the allow-list (or bad requests) */
	uint64_t rx_msgs;              /* delivered to the callback */
	uint64_t rx_dropped;           /* bad framing, no/unknown User-Id, too long */
	uint64_t tx_msgs;
	uint64_t rx_bytes, tx_bytes;   /* payload bytes of rx_msgs / tx_msgs (CURVE adds ~40) */
	uint64_t tx_dropped;           /* no live connection / queue full */
	uint64_t tx_refused;           /* node id not on the allow-list, bad address */
	uint64_t peers;                /* DEALER connections open now */
	uint64_t dgram_rx;             /* datagrams delivered */
	uint64_t dgram_rx_bad;         /* malformed, unknown sender, failed box */
	uint64_t dgram_rx_replay;      /* old boot or counter outside/seen in window */
	uint64_t dgram_tx;
	uint64_t dgram_tx_dropped;     /* bad address or sendto failure */
	uint64_t hello_tx;             /* hellos sent to endpoints found by DNS */
	uint64_t hello_rx;             /* hellos received */
	uint64_t hello_replies;        /* identity replies sent */
	uint64_t hello_rate_limited;   /* hellos not answered: over the rate */
	uint64_t ident_rx;             /* identity replies received (authenticated) */
};

struct amil_transport;

/**
 * Bind the server socket and start the ZAP handler.
 * @return the transport, or NULL with a message in @err (bad endpoint,
 *   address in use, no ZAP support, ...).  ZAP requires that no other ZAP
 *   handler is bound in @p->zmq_ctx.
 */
struct amil_transport *amil_transport_new(const struct amil_transport_params *p, char *err,
					  size_t errlen);

/** Close every socket; accepts NULL and a pointer to NULL. */
void amil_transport_destroy(struct amil_transport **tp);

/**
 * The sockets to poll for ZMQ_POLLIN: writes up to @max items, returns
 * how many (3: the server, the ZAP handler and the datagram socket).
 */
int amil_transport_pollitems(struct amil_transport *t, zmq_pollitem_t *items, int max);

/** A received message, attributed to its authenticated sender. */
typedef void (*amil_transport_recv_fn)(void *ctx, uint64_t from_id, const uint8_t *buf,
				       size_t len);

/**
 * Answer pending ZAP requests and deliver every waiting message (CURVE
 * connections and datagrams alike) to @fn.  Never blocks.
 * @return the number of messages delivered.
 */
int amil_transport_process(struct amil_transport *t, amil_transport_recv_fn fn, void *ctx);

/**
 * Send @buf to node @to_id at @endpoint (a NUL-terminated "tcp://..."
 * string, or the address blob membership carries: up to
 * AMIL_ENDPOINT_MAX bytes, not NUL-terminated), expecting the allow-listed
 * key of @to_id.  Opens (or re-targets) the peer's connection as needed.
 * @return 0 when queued; -EAGAIN dropped (no live connection yet, queue
 *   full); -EPERM @to_id is not allow-listed; -EINVAL bad endpoint.
 */
int amil_transport_send(struct amil_transport *t, uint64_t to_id, const char *endpoint,
			size_t endpoint_len, const uint8_t *buf, size_t len);

/**
 * Send @buf to node @to_id as one boxed UDP datagram to the host and port
 * of @endpoint ("tcp://ADDR:PORT", as for amil_transport_send).  Best
 * effort, never blocks.
 * @return 0; -EPERM not allow-listed; -EINVAL bad endpoint or size;
 *   -EAGAIN the kernel refused it (counted).
 */
int amil_transport_send_dgram(struct amil_transport *t, uint64_t to_id, const char *endpoint,
			      size_t endpoint_len, const uint8_t *buf, size_t len);

/**
 * Ask the appliance at @sa (a UDP address found by DNS, without a node id)
 * who it is: a small unauthenticated hello.  An allow-listed appliance
 * answers with an identity datagram boxed for us (rate-limited), which
 * amil_transport_process() hands to the identity callback as (its node
 * id, its advertised endpoint): authenticated, so a forged answer cannot
 * point us anywhere.  @return 0 or a negative errno.
 */
int amil_transport_hello(struct amil_transport *t, const struct sockaddr *sa, socklen_t salen);

typedef void (*amil_transport_ident_fn)(void *ctx, uint64_t node_id, const char *endpoint);

/** Where identity answers go (NULL: dropped after counting). */
void amil_transport_set_ident_fn(struct amil_transport *t, amil_transport_ident_fn fn, void *ctx);

/**
 * Open the CURVE connection to @to_id at @endpoint ahead of the first
 * message (a message to a peer without a live connection is dropped:
 * connecting when a member comes up means the first delta gets through).
 * @return 0, or -EINVAL (not allow-listed, bad endpoint).
 */
int amil_transport_connect(struct amil_transport *t, uint64_t to_id, const char *endpoint,
			   size_t endpoint_len);

/**
 * As amil_transport_connect(), but a connection already open is closed
 * first (what it had queued is dropped) and a new one made: after a
 * partition the old TCP connection may sit in retransmission backoff for
 * seconds, a new handshake takes milliseconds.  For a member that came
 * back from dead, not for every message.
 * @return 0, or -EINVAL (not allow-listed, bad endpoint).
 */
int amil_transport_reconnect(struct amil_transport *t, uint64_t to_id, const char *endpoint,
			     size_t endpoint_len);

/** Close the connection to @node_id (dead for long, or left). */
void amil_transport_forget(struct amil_transport *t, uint64_t node_id);

/** The allow-list entry of @node_id, or NULL. */
const struct amil_allow_entry *amil_transport_allowed(const struct amil_transport *t,
						      uint64_t node_id);

void amil_transport_get_counters(const struct amil_transport *t,
				 struct amil_transport_counters *out);

/* --- keys and the allow-list file ---------------------------------------- */

/**
 * Parse an allow-list: one appliance per line, "<Z85 public key> <node id>
 * [name]"; '#' at the start of a line or after a blank starts a comment
 * (Z85 keys may contain '#', never after a blank); blank lines are ignored.  A key or node id
 * listed twice is an error.
 * @return the number of entries (>= 0) written to @out (at most @max), or
 *   a negative errno with "path:line: problem" in @err.
 */
int amil_allow_list_load(const char *path, struct amil_allow_entry *out, unsigned max, char *err,
			 size_t errlen);

/**
 * Read a Z85 key file (40 characters, optional trailing newline).  A
 * secret key file must not be readable by group or others.
 * @return 0, or a negative errno with the problem in @err.
 */
int amil_curve_key_load(const char *path, bool secret, uint8_t key[AMIL_CURVE_KEY_LEN], char *err,
			size_t errlen);

/**
 * Create a key pair: @dir/curve.key (secret, mode 0600, created
 * exclusively: an existing identity is never overwritten) and
 * @dir/curve.pub; @z85_pub receives the public key text.
 * @return 0, -EEXIST, or a negative errno with the problem in @err.
 */
int amil_curve_keygen(const char *dir, char z85_pub[AMIL_CURVE_Z85_LEN + 1], char *err,
		      size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_TRANSPORT_H */
