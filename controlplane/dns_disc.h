/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * DNS discovery: poll the A, AAAA and/or SRV records of one name (for
 * example a Kubernetes headless service) and keep the UNION of every
 * endpoint ever seen, with first- and last-seen times.
 *
 * An endpoint is never removed because an answer lacked it: DNS answers
 * are partial (round-robin truncation, pods not ready yet, a slow
 * endpoints controller, a resolver serving a stale cache), and discovery
 * only proposes candidates; the failure detector alone removes members.
 * The daemon may forget an endpoint explicitly (amil_dns_disc_forget())
 * once the failure detector has also declared the member behind it dead
 * for long; if DNS lists it again it comes back as a new addition.
 *
 * Never blocks.  The module owns one non-blocking UDP socket; the daemon
 * polls its fd and calls amil_dns_disc_run() when it is readable or when
 * amil_dns_disc_next_deadline_ns() has passed.  run() reads at most 64
 * datagrams and sends at most AMIL_DNS_QUERIES_MAX queries, no other
 * syscalls, so its cost is bounded whatever the network does; a lost or
 * slow server only costs a timeout, handled at a later run().  No thread.
 *
 * One poll round: queries for the configured kinds on the name; for each
 * SRV record, the target's A/AAAA from the additional section (glue), or,
 * without glue, follow-up A and AAAA queries for the target.  Each query
 * is tried up to @attempts times, rotating over the nameservers, with
 * @timeout_ns per attempt.  The next round starts @interval_ns after the
 * previous one started (or when it finishes, if later).  Answers are
 * matched by nameserver address, random 16-bit id, question name and type;
 * anything else is counted and dropped.  Queries carry EDNS0 (1232-byte
 * UDP payload); a truncated answer (TC) is used for the records it holds
 * and counted; there is no TCP fallback.
 *
 * Names: the configured name is used as given (fully qualified; a
 * trailing dot is optional); the resolv.conf search list is not applied.
 *
 * Threading: an instance is owned by one thread.  The answer parser
 * amil_dns_parse_answer() is pure and safe from any thread.
 */
#ifndef AMIL_DNS_DISC_H
#define AMIL_DNS_DISC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef AMIL_DISC_ENDPOINT_DEFINED
#define AMIL_DISC_ENDPOINT_DEFINED
/*
 * A candidate peer's TCP endpoint, shared by the discovery modules
 * (identical definition in beacon.h, guarded).
 */
struct amil_disc_endpoint {
	uint8_t family;          /* AF_INET or AF_INET6 */
	uint16_t port;           /* host byte order, not 0 */
	uint8_t addr[16];        /* network order; IPv4 in [0..3], rest zero */
};
#endif

#define AMIL_DNS_A     1u
#define AMIL_DNS_AAAA  2u
#define AMIL_DNS_SRV   4u

#define AMIL_DNS_NAME_MAX    253  /* text form, without the trailing dot */
#define AMIL_DNS_ANSWER_MAX  64   /* records kept from one answer */
#define AMIL_DNS_QUERIES_MAX 16   /* queries in flight in one round */
#define AMIL_DNS_SERVERS_MAX 3

/* ------------------------------------------------------------------ */
/* Answer parser                                                       */

/* One record of interest (class IN, type A, AAAA or SRV). */
struct amil_dns_rr {
	uint16_t type;           /* 1 A, 28 AAAA, 33 SRV */
	uint8_t section;         /* 1 answer, 3 additional (authority skipped) */
	uint8_t addr[16];        /* A: [0..3]; AAAA: all */
	uint16_t priority;       /* SRV */
	uint16_t weight;         /* SRV */
	uint16_t port;           /* SRV */
	char owner[AMIL_DNS_NAME_MAX + 1];   /* lower case, no trailing dot */
	char target[AMIL_DNS_NAME_MAX + 1];  /* SRV; "" for "." (no service) */
};

struct amil_dns_answer {
	uint16_t id;
	uint8_t rcode;           /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ... */
	bool truncated;          /* TC bit */
	uint16_t qtype;          /* the question echoed by the server */
	char qname[AMIL_DNS_NAME_MAX + 1];   /* lower case, no trailing dot */
	unsigned n_rr;
	unsigned n_skipped;      /* other types/classes, long names, over the cap */
	struct amil_dns_rr rr[AMIL_DNS_ANSWER_MAX];
};

/**
 * Parse one DNS response (RFC 1035 wire format, name compression
 * included) with glibc's libresolv (ns_initparse/ns_parserr/dn_expand).
 * Never reads outside [buf, buf+len).
 *
 * @param out  caller's scratch (about 33 KiB: keep one, do not put it on
 *             a small stack); filled on success, unspecified otherwise.
 * @return 0 (whatever the rcode: the caller interprets out->rcode);
 *   -EBADMSG when the bytes are not a response: unparseable, QR bit clear,
 *   opcode not QUERY, not exactly one question, an A/AAAA record whose
 *   rdata is not 4/16 bytes, an SRV record shorter than 7 bytes or whose
 *   target does not end exactly at the end of its rdata.
 */
int amil_dns_parse_answer(const uint8_t *buf, size_t len, struct amil_dns_answer *out);

/* ------------------------------------------------------------------ */
/* Poller                                                              */

/** Called once per endpoint newly added to the union; @ep valid during the call. */
typedef void (*amil_dns_disc_add_fn)(void *ctx, const struct amil_disc_endpoint *ep);

struct amil_dns_disc_config {
	const char *name;            /* e.g. "amil.amil.svc.cluster.local" */
	unsigned kinds;              /* AMIL_DNS_A | AMIL_DNS_AAAA | AMIL_DNS_SRV, not 0 */
	uint16_t port;               /* endpoint port for A/AAAA; needed with those */
	uint64_t interval_ns;        /* round start to round start; 0: 10 s */
	uint64_t timeout_ns;         /* per attempt; 0: 1 s */
	unsigned attempts;           /* per query, 1..8; 0: 2 */
	/* "192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:5353";
	 * NULL: the nameserver lines of @resolv_conf (up to 3). */
	const char *nameserver;
	const char *resolv_conf;     /* NULL: /etc/resolv.conf */
	uint32_t max_endpoints;      /* union size; 0: 256; full -> counted, never evicts */
	amil_dns_disc_add_fn on_add; /* may be NULL */
	void *ctx;
};

/* Counters: monotonic since creation. */
struct amil_dns_disc_counters {
	uint64_t rounds;             /* poll rounds started */
	uint64_t queries;            /* datagrams sent, retries included */
	uint64_t retries;            /* attempts after the first */
	uint64_t answers;            /* responses matched to a query (any rcode) */
	uint64_t timeouts;           /* attempts with no answer in time */
	uint64_t servfail;           /* rcode 2 */
	uint64_t nxdomain;           /* rcode 3 */
	uint64_t other_rcode;        /* FORMERR, NOTIMP, REFUSED, ... */
	uint64_t failed;             /* queries given up: no usable answer after all attempts */
	uint64_t malformed;          /* amil_dns_parse_answer() said -EBADMSG */
	uint64_t mismatched;         /* well-formed, but no query waits for it
					(unknown source, id or question: late or spoofed) */
	uint64_t truncated;          /* TC set */
	uint64_t records;            /* A/AAAA/SRV records used */
	uint64_t endpoints_added;    /* new endpoints in the union */
	uint64_t table_full;         /* new endpoint refused: union full */
	uint64_t followups_dropped;  /* SRV targets not queried: no query slot */
	uint64_t send_errors;
	uint64_t recv_errors;
};

/* One union entry as reported by amil_dns_disc_foreach(). */
struct amil_dns_disc_entry {
	struct amil_disc_endpoint ep;
	uint64_t first_seen_ns;      /* now_ns of the run() that added it */
	uint64_t last_seen_ns;       /* now_ns of the last answer listing it */
};

struct amil_dns_disc;

/**
 * Create a poller.  Reads resolv.conf (when no nameserver is given) and
 * opens the socket here; allocates everything here.  The first round
 * starts at the first run() at or after @now_ns.
 *
 * @return the poller (caller owns it: amil_dns_disc_destroy()), or NULL
 *   with errno EINVAL (name empty or over 253 bytes or with an empty or
 *   over-63-byte label, kinds 0 or unknown bits, A/AAAA without a port,
 *   attempts over 8, nameserver not parseable), ENOENT (no nameserver in
 *   resolv.conf, or the file cannot be read), ENOMEM, or a socket errno.
 */
struct amil_dns_disc *amil_dns_disc_new(const struct amil_dns_disc_config *cfg, uint64_t now_ns);

/** Close, free @*dp and set it to NULL.  Accepts NULL and a pointer to NULL. */
void amil_dns_disc_destroy(struct amil_dns_disc **dp);

/** The fd to poll for POLLIN; stable for the poller's life. */
int amil_dns_disc_fd(const struct amil_dns_disc *d);

/**
 * Do what is due: read and process waiting answers (at most 64), resend
 * or give up timed-out queries, start a round when due.  Never blocks.
 * @param now_ns  monotonic time (CLOCK_MONOTONIC), must not go backwards.
 * @return the number of endpoints newly added by this call (>= 0).
 */
int amil_dns_disc_run(struct amil_dns_disc *d, uint64_t now_ns);

/** When run() next has work besides reading the fd (a timeout or a round). */
uint64_t amil_dns_disc_next_deadline_ns(const struct amil_dns_disc *d);

/** True while a round has queries in flight. */
bool amil_dns_disc_busy(const struct amil_dns_disc *d);

/**
 * Call @fn for every endpoint in the union, stopping early when it returns
 * non-zero.  @fn must not call into @d.
 * @return the number of entries visited.
 */
unsigned amil_dns_disc_foreach(const struct amil_dns_disc *d,
			       int (*fn)(void *ctx, const struct amil_dns_disc_entry *e),
			       void *ctx);

/** Look up one endpoint.  @return 0 with @out filled, or -ENOENT. */
int amil_dns_disc_lookup(const struct amil_dns_disc *d, const struct amil_disc_endpoint *ep,
			 struct amil_dns_disc_entry *out);

/**
 * Forget one endpoint (the daemon's decision: the failure detector has
 * declared its member dead and DNS has not listed it for long).
 * @return 0, or -ENOENT when not in the union.
 */
int amil_dns_disc_forget(struct amil_dns_disc *d, const struct amil_disc_endpoint *ep);

/** Number of endpoints in the union. */
unsigned amil_dns_disc_count(const struct amil_dns_disc *d);

/** Copy the counters. */
void amil_dns_disc_get_counters(const struct amil_dns_disc *d,
				struct amil_dns_disc_counters *out);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_DNS_DISC_H */
