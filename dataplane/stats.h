/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Data-plane counters: per port and per worker, plus exact money totals.
 *
 * Every lcore owns one struct amil_lcore_stats, allocated on its own NUMA
 * socket, and is its only writer: no atomics read-modify-write, no shared
 * cache lines between lcores.  Readers (DPDK telemetry, the final JSON and
 * summary) sum over lcores.  A 64-bit counter is written with a relaxed
 * atomic store and read with a relaxed atomic load, so a reader never sees
 * a torn value; it may see a counter a burst behind, which is fine.
 *
 * Money totals are 128-bit (10^15 per donation overflows int64 after ~9200
 * donations), which x86-64 cannot store atomically, so each lcore's totals
 * carry a sequence count (seqlock): the writer makes it odd before a burst's
 * updates and even after; a reader retries until it sees the same even
 * value before and after copying.
 */
#ifndef AMIL_STATS_H
#define AMIL_STATS_H

#include <stdint.h>
#include <stdio.h>

#include <rte_common.h>

#include "amil_wire.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_MAX_PORTS   8
#define AMIL_TOTALS_SLOTS 64     /* distinct (currency, exponent) pairs per lcore */

/* Single-writer counter update and tear-free read. */
#define AMIL_STAT_ADD(c, n) __atomic_store_n(&(c), (c) + (n), __ATOMIC_RELAXED)
#define AMIL_STAT_GET(c)    __atomic_load_n(&(c), __ATOMIC_RELAXED)

struct amil_port_counters {
	uint64_t rx;                   /* frames received */
	uint64_t tx;                   /* frames transmitted (acks and replies) */
	uint64_t tx_full;              /* frames dropped: TX queue stayed full */
	uint64_t replies;              /* ARP/NA/echo replies sent */
	uint64_t ring_full;            /* donations dropped: worker ring full */
	uint64_t drop[AMIL_DROP_MAX];  /* dropped without reply, by reason */
};

struct amil_worker_counters {
	uint64_t rx;                   /* donations handed to this worker */
	uint64_t tx;                   /* acks produced */
	uint64_t accepted;
	uint64_t duplicate;
	uint64_t rejected[AMIL_REASON_MAX];
	uint64_t drop[AMIL_DROP_MAX];  /* unknown_center, bad_tag */
};

/* Exact sums for one (currency, exponent). */
struct amil_total {
	uint16_t currency_idx;         /* amil_currency_index() */
	uint8_t exponent;
	uint8_t used;
	uint64_t count;                /* accepted donations */
	__int128 amount_minor;
	__int128 levy_minor;
};

struct amil_totals {
	uint64_t seq;                  /* seqlock: odd while the owner writes */
	uint64_t overflow;             /* accepted in a currency that found no slot */
	struct amil_total slot[AMIL_TOTALS_SLOTS];
};

/* The ledger writer's counters (dataplane/ledger.h); written by the writer
 * thread only, read with AMIL_STAT_GET. */
struct amil_ledger_counters {
	uint64_t enabled;              /* 1 when a ledger is configured */
	uint64_t records;              /* made durable since start */
	uint64_t batches;              /* durable batches (one fdatasync each) */
	uint64_t bytes;                /* record bytes made durable */
	uint64_t refused;              /* records refused on a disk error */
	uint64_t write_errors;         /* batches that failed */
	uint64_t alarm;                /* 1 while the disk refuses writes */
	uint64_t last_errno;           /* errno of the last failure, 0 if none */
	uint64_t segments;             /* segments opened since start */
	uint64_t next_seq;             /* sequence number of the next record */
	uint64_t sync_ns_total;        /* time in write + fdatasync */
	uint64_t sync_ns_max;
	uint64_t batch_max_seen;       /* largest batch, records */
	uint64_t recovered;            /* intact records read at start-up */
	uint64_t restored;             /* of which put back in dedupe tables */
	uint64_t tail_cut_bytes;       /* cut from a torn tail at start-up */
};

struct amil_lcore_stats {
	struct amil_port_counters port[AMIL_MAX_PORTS];
	struct amil_worker_counters worker;
	struct amil_totals totals;
} __rte_cache_aligned;

struct amil_stats;

/**
 * Create the registry.  Per-lcore blocks are added with amil_stats_lcore_add().
 * @return NULL with rte_errno set (EINVAL, ENOMEM).  Control path only.
 */
struct amil_stats *amil_stats_create(uint16_t nb_ports, uint32_t node_id);

/** Free the registry and every lcore block; NULL is a no-op.  Only after
 *  all lcores stopped and telemetry was unregistered (process exit). */
void amil_stats_free(struct amil_stats *s);

/** Name a port for reports (e.g. its device name).  Control path. */
void amil_stats_port_name(struct amil_stats *s, uint16_t port, const char *name);

/**
 * Add the counters block of an lcore, zeroed, on @socket_id.
 * @param worker_id  worker index, or -1 for an lcore that is no worker.
 * @return the block (owned by @s), or NULL (ENOMEM).  Control path only.
 */
struct amil_lcore_stats *amil_stats_lcore_add(struct amil_stats *s, unsigned lcore_id,
					      int worker_id, int socket_id);

/**
 * Add an accepted donation to @t.  Called by the owning lcore between
 * amil_totals_begin() and amil_totals_end().  @cur_idx from
 * amil_currency_index() (valid: the donation passed validation).
 */
void amil_totals_add(struct amil_totals *t, int cur_idx, uint8_t exponent,
		     int64_t amount_minor, int64_t levy_minor);

static inline void
amil_totals_begin(struct amil_totals *t)
{
	/* Odd: readers retry.  The release fence orders this store before the
	 * slot updates that follow. */
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void
amil_totals_end(struct amil_totals *t)
{
	/* Even again, after (release) every slot update of the burst. */
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELEASE);
}

/** Register /amil/stats, /amil/ports, /amil/workers and /amil/totals with DPDK
 *  telemetry.  One registry per process.  @return 0 or negative errno. */
/** The ledger counters, for the ledger writer to update and main to fill
 * in at recovery.  Lives as long as @s. */
struct amil_ledger_counters *amil_stats_ledger(struct amil_stats *s);

int amil_stats_telemetry_register(struct amil_stats *s);

/**
 * Read each port's device counters (rte_eth_stats: frames the device
 * dropped because RX was not polled fast enough, "imissed", and RX mbuf
 * allocation failures) into @s for the JSON and the summary.  Call before
 * the ports are closed.  Control path (main lcore) only.
 */
void amil_stats_hw_snapshot(struct amil_stats *s);

/** Write every counter and total as one JSON object.  @return 0 or -EIO. */
int amil_stats_write_json(const struct amil_stats *s, FILE *f);

/** Print a human summary (counts, levies per currency, rejects, drops). */
void amil_stats_print_summary(const struct amil_stats *s, FILE *f);

/**
 * The counters in the Prometheus text format (names amil_dataplane_*),
 * for the control plane's /metrics.  Any thread (a snapshot of relaxed
 * counters).  @return 0 or -EIO.
 */
int amil_stats_write_prometheus(const struct amil_stats *s, FILE *f);

/** Sum of one port's counters / all workers' counters (for tests and reports). */
void amil_stats_port_sum(const struct amil_stats *s, uint16_t port, struct amil_port_counters *out);
void amil_stats_worker_sum(const struct amil_stats *s, struct amil_worker_counters *out);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_STATS_H */
