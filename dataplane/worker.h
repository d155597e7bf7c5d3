/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The donation worker: authenticates, validates, levies, records once and
 * answers, a burst at a time.
 *
 * A worker owns its idempotency table (dedupe.h) and its counters, both on
 * its NUMA socket.  It receives frames that amil_net_classify() judged to
 * be AMIL/1 DONATIONs addressed to us, and only frames whose
 * (center_id, donation_id) routes to it (route.h), so no state is shared
 * between workers and nothing on this path takes a lock or allocates.
 *
 * Per frame: unknown center or bad tag -> dropped, no reply (no reflection
 * of unauthenticated input); invalid fields -> REJECTED ack with the
 * reason; otherwise the levy is computed and the dedupe table decides
 * ACCEPTED (first time), DUPLICATE (same content: original amount and
 * levy), REJECTED/CONFLICT (same key, other content) or REJECTED/UNAVAILABLE
 * (table full within the retention window: retry later).  The ACK replaces
 * the request's payload in the same mbuf and is signed with the center's key.
 */
#ifndef AMIL_WORKER_H
#define AMIL_WORKER_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "amil_centers.h"
#include "amil_ledger_format.h"
#include "amil_wire.h"
#include "ledger.h"
#include "net.h"
#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_WORKER_BURST_MAX 64

struct amil_worker;

struct amil_worker_conf {
	unsigned worker_id;            /* 0..nb_workers-1, also names the dedupe table */
	int socket_id;                 /* NUMA socket of the worker lcore */
	const struct amil_centers *centers;      /* read-only, shared */
	const struct amil_currency_set *currencies; /* NULL: any three capitals */
	uint32_t rate_bp;              /* levy rate, 0..10000 */
	uint32_t node_id;              /* carried in every ACK */
	const struct amil_net_cfg *net; /* per port, indexed by mbuf->port */
	uint16_t nb_ports;
	uint32_t dedupe_capacity;      /* entries */
	uint64_t dedupe_retention_tsc;
	struct amil_lcore_stats *stats; /* this worker lcore's counters */
	/* Durable acknowledgements (ledger.h).  NULL: ACKs leave at once and
	 * nothing is written (--no-ledger). */
	struct amil_ledger *ledger;
	unsigned lane;                 /* this worker's ledger lane */
	uint32_t held_capacity;        /* ACKs held at most; power of 2, >= 2 bursts */
};

/**
 * Create a worker and its dedupe table on @c->socket_id.
 * @return NULL with rte_errno set (EINVAL, ENOMEM, EEXIST).  Control path.
 */
struct amil_worker *amil_worker_create(const struct amil_worker_conf *c);

/** Free a worker; NULL is a no-op.  After its lcore stopped. */
void amil_worker_free(struct amil_worker *w);

/**
 * Process up to AMIL_WORKER_BURST_MAX classified DONATION frames.
 *
 * Frames answered (ACCEPTED, DUPLICATE, REJECTED) are rewritten into their
 * ACK; frames dropped (unknown center, bad tag) are freed and counted.
 * Without a ledger the ACKs are stored in @out in input order, ready to
 * transmit on mbuf->port.  With a ledger every ACK is held (in order) and
 * nothing is stored in @out: amil_worker_release() hands them out once the
 * records they depend on are durable.  The caller must not pass more
 * frames than amil_worker_room().
 * @return the number of frames in @out.  Owning lcore only.
 */
uint16_t amil_worker_process(struct amil_worker *w, struct rte_mbuf **pkts, uint16_t n,
			     struct rte_mbuf **out, uint64_t now_tsc);

/**
 * Hand out up to @max held ACKs whose records are settled, in order: an
 * ACCEPTED whose record is durable as ACCEPTED; one whose record the disk
 * refused as REJECTED/UNAVAILABLE (and the donation forgotten, so a
 * retransmit is new; DUPLICATE/CONFLICT answers held for the same
 * donation change the same way).  Counters and totals count an ACK here,
 * when its answer is final.  Call on every poll, also when idle.
 * @return the number stored in @out (0 without a ledger).  Owning lcore.
 */
uint16_t amil_worker_release(struct amil_worker *w, struct rte_mbuf **out, uint16_t max);

/** Frames amil_worker_process() can take now (held ACK room). */
uint32_t amil_worker_room(const struct amil_worker *w);

/** ACKs held, waiting for the ledger. */
uint32_t amil_worker_held(const struct amil_worker *w);

/**
 * Start-up recovery: put a ledger record back in this worker's dedupe
 * table, dated @insert_tsc.  @return as amil_dedupe_restore().
 */
int amil_worker_restore(struct amil_worker *w, const struct amil_ledger_rec *r,
			uint64_t insert_tsc);

/** Entries in the worker's dedupe table (snapshot). */
uint32_t amil_worker_dedupe_count(const struct amil_worker *w);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_WORKER_H */
