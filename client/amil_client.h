/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Reference AMIL/1 center client: what a donation center's kiosk embeds to
 * report a donation to an Amil node and get its levy back.  Plain kernel
 * UDP sockets, no DPDK; the wire format is lib/amil_wire.h (docs/protocol.md).
 *
 * One call, amil_client_donate(), does the whole exchange:
 *
 *   1. encode the donation and sign it with the center's key (lib);
 *   2. send it on a UDP socket connect()ed to the node, so that the kernel
 *      discards datagrams from any other address or port;
 *   3. poll() for the reply until the attempt's timeout;
 *   4. drop (and count) replies that are not a 64-byte ACK, whose tag does
 *      not verify with our key, or that answer another donation or an older
 *      exchange;
 *   5. on timeout send the SAME donation again (same donation_id, donor,
 *      campaign, currency, exponent, amount; only the echoed sent_ns and
 *      seq change, and it is re-signed), waiting longer each time:
 *      exponential backoff with jitter, capped (amil_client_backoff_ms());
 *   6. stop at the first verified matching ACK, after the last attempt, or
 *      at the overall deadline.
 *
 * Retransmitting the same content is what makes this safe: the node records
 * (center_id, donation_id) once and answers later copies DUPLICATE with the
 * original levy, so a lost ACK never turns into a second donation.
 *
 * The client never reports success without an ACK whose tag verified with
 * the center's key and that names our center and donation.
 *
 * Threads: a client is used by one thread at a time (one client per
 * thread; no internal locking).  Distinct clients are independent.
 * amil_client_backoff_ms() is pure and safe anywhere.
 *
 * Errors follow the project convention: functions return 0 or a negative
 * errno; amil_client_new() returns NULL and sets errno.
 */
#ifndef AMIL_CLIENT_H
#define AMIL_CLIENT_H

#include <stdint.h>

#include "amil_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CLIENT_TIMEOUT_MS_DEFAULT     200   /* first attempt's wait */
#define AMIL_CLIENT_TIMEOUT_MAX_MS_DEFAULT 2000  /* cap on any one wait */
#define AMIL_CLIENT_BACKOFF_DEFAULT        2     /* wait multiplier per attempt */
#define AMIL_CLIENT_ATTEMPTS_DEFAULT       8     /* transmissions per donation */
#define AMIL_CLIENT_JITTER_PCT_DEFAULT     20    /* waits shortened by up to 20 % */
#define AMIL_CLIENT_ATTEMPTS_MAX           1000
#define AMIL_CLIENT_TIMEOUT_MAX_MS         3600000u  /* 1 h: sanity bound on waits */

/*
 * Options of amil_client_new().  Zero-initialise, then fill in at least
 * server, center_id and key; a zero numeric field means its default.
 */
struct amil_client_opts {
	const char *server;           /* node address, numeric IPv4 or IPv6
				       * ("198.18.0.1", "2001:2::1", "fe80::1%eth0");
				       * no DNS lookup.  Copied; may be freed after new. */
	uint16_t port;                /* UDP port; 0 = AMIL_WIRE_PORT_DEFAULT (7100) */
	uint32_t center_id;           /* our center id, as in the node's centers file */
	uint8_t key[AMIL_KEY_LEN];    /* our 16-byte SipHash key; copied, and wiped
				       * from the client on destroy */
	uint32_t timeout_ms;          /* wait after the first transmission; 0 = 200 */
	uint32_t timeout_max_ms;      /* cap on any wait; 0 = 2000 (>= timeout_ms) */
	uint32_t backoff;             /* each wait is the previous times this; 0 = 2 */
	uint32_t jitter_pct;          /* waits shortened by a random 0..jitter_pct %,
				       * so many kiosks do not retransmit in step;
				       * 0 = 20; AMIL_CLIENT_JITTER_NONE for none */
	uint32_t max_attempts;        /* transmissions per donation, 1..1000; 0 = 8 */
	uint32_t deadline_ms;         /* overall bound per donation, whatever the
				       * attempts; 0 = none (attempts decide) */
};

#define AMIL_CLIENT_JITTER_NONE UINT32_MAX  /* jitter_pct value: no jitter */

/* Counters of one client since amil_client_new().  Ignored replies are
 * counted, never reported as answers. */
struct amil_client_stats {
	uint64_t donations;           /* amil_client_donate() calls that sent something */
	uint64_t answered;            /* ... that got a verified ACK (returned 0) */
	uint64_t unanswered;          /* ... that returned -ETIMEDOUT */
	uint64_t sent;                /* datagrams sent, retransmissions included */
	uint64_t retransmits;         /* of which retransmissions */
	uint64_t send_errors;         /* transient socket errors, from send() or
				       * reported while waiting: ECONNREFUSED (ICMP
				       * port unreachable), EHOSTUNREACH (no ARP/ND
				       * answer), ENOBUFS...; the exchange goes on */
	uint64_t rx_malformed;        /* replies not 64 bytes or not an AMIL/1 ACK */
	uint64_t rx_bad_tag;          /* ACKs whose tag did not verify with our key */
	uint64_t rx_mismatched;       /* verified ACKs for another center or donation,
				       * or for an earlier exchange (stale seq) */
	/* The last amil_client_donate() call: */
	uint32_t last_attempts;       /* transmissions it made */
	uint64_t last_rtt_ns;         /* from the transmission that was answered to
				       * its ACK (0 when unanswered) */
};

struct amil_client;

/**
 * Create a client: validate @opts, resolve the numeric address, open a UDP
 * socket and connect() it to the node.  No datagram is sent.
 *
 * IPv4 must be a full dotted quad: inet_aton()'s short forms ("198.18.0")
 * are refused rather than silently taken as another address.
 *
 * @return the client (caller owns it; amil_client_destroy()), or NULL with
 *   errno: EINVAL for a NULL @opts, a missing or non-numeric server address,
 *   or an option out of range (a wait above AMIL_CLIENT_TIMEOUT_MAX_MS, a
 *   cap below the first wait, max_attempts above AMIL_CLIENT_ATTEMPTS_MAX,
 *   jitter_pct above 100); ENOMEM; EIO when libsodium cannot initialise; or
 *   the errno of socket()/connect() (e.g. ENETUNREACH, EAFNOSUPPORT).
 */
struct amil_client *amil_client_new(const struct amil_client_opts *opts);

/** Close the socket, wipe the key, free the client and set *@cp to NULL.
 *  @cp or *@cp NULL is a no-op. */
void amil_client_destroy(struct amil_client **cp);

/**
 * Report one donation and wait for its verified ACK (see the file comment).
 *
 * @param d    the donation.  center_id, sent_ns and seq are the client's to
 *             fill (the values in @d are ignored); every other field is sent
 *             as given, including fields the node will reject (the node is
 *             the authority and answers REJECTED with a reason).  Not
 *             modified.
 * @param ack  on 0, the node's verified answer: status ACCEPTED, DUPLICATE
 *             (amount and levy are the original's) or REJECTED (reason says
 *             why; amount and levy 0).  All three mean "answered".  On any
 *             other return, zeroed.
 * @return 0 when a verified matching ACK arrived;
 *   -ETIMEDOUT when none did within max_attempts transmissions (or the
 *    deadline) although at least one was sent: the donation may or may not
 *    have been recorded; retry later with the same content;
 *   -EINVAL for NULL arguments;
 *   the negative errno of send() when no transmission left the host at all
 *    (e.g. -ENETUNREACH, -EHOSTUNREACH), of poll()/recv() failures other
 *    than EINTR, or of clock_gettime().
 * Blocks for at most the sum of the waits (bounded by deadline_ms if set).
 */
int amil_client_donate(struct amil_client *c, const struct amil_donation *d,
		       struct amil_ack *ack);

/** Copy the client's counters into @out. */
void amil_client_stats_get(const struct amil_client *c, struct amil_client_stats *out);

/**
 * The retransmission schedule, as a pure function (testable, no clock, no
 * randomness of its own).
 *
 * The nominal wait after transmission number @attempt (0 = the first) is
 *     t = min(cap_ms, initial_ms * backoff^attempt)
 * computed without overflow.  Jitter then shortens it by a fraction of up
 * to @jitter_pct percent chosen by @rnd (a uniform random 32-bit value:
 * 0 shortens by nothing, UINT32_MAX by almost jitter_pct %):
 *     wait = t - floor(t * jitter_pct / 100 * rnd / 2^32)
 * so a wait never exceeds the cap and never falls below
 * t * (100 - jitter_pct) / 100.  Shortening rather than lengthening keeps
 * the cap a true upper bound on how long a kiosk waits.
 *
 * @param backoff  multiplier >= 1 (1 = constant waits).
 * @param jitter_pct  0..100; larger values are taken as 100.
 * @return the wait in milliseconds; at least 1 whenever initial_ms >= 1.
 */
uint32_t amil_client_backoff_ms(uint32_t attempt, uint32_t initial_ms, uint32_t backoff,
				uint32_t cap_ms, uint32_t jitter_pct, uint32_t rnd);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CLIENT_H */
