/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The ledger writer: makes every ACCEPTED donation durable before its ACK
 * leaves (docs/ledger.md, "Group commit and acknowledgements").
 *
 * Workers encode one record per NEW donation and submit it on their own
 * lane (an SP/SC ring, no lock); one writer thread, off the polling cores
 * (a DPDK control thread), drains every lane, gives the records their
 * per-appliance sequence numbers, appends them to the current segment and
 * fdatasync()s the whole batch at once (group commit).  It then publishes,
 * per lane, how many of the lane's records are settled.  A record is
 * settled when it is durable, or when it was refused because the disk
 * failed (ENOSPC, EIO, ...): refused records are also listed, in order, on
 * the lane's refusal ring, so the worker answers them REJECTED/UNAVAILABLE
 * instead of ACCEPTED.  Refused records take no sequence number: the
 * ledger stays gapless.
 *
 * Worker-side sequence ("wseq"): the n-th record a lane submits has wseq n
 * (from 1).  A worker holds each ACK until amil_ledger_settled() reaches
 * the wseq it waits for.
 *
 * On a write or fdatasync failure the writer cuts the segment back to its
 * last durable size, raises the alarm and refuses the batch; after an
 * fdatasync failure it never appends to that file again (the kernel may
 * have dropped the dirty pages) and starts a new segment.  Every later
 * batch tries again, so the ledger resumes by itself once the disk takes
 * writes; the alarm clears on the first durable batch.
 */
#ifndef AMIL_LEDGER_H
#define AMIL_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ring_elem.h>

#include "amil_ledger_format.h"
#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_LEDGER_LANES_MAX 64

struct amil_ledger;

struct amil_ledger_params {
	const char *dir;               /* created if missing (one level) */
	uint32_t node_id;              /* in every header and record, != 0 */
	unsigned nb_lanes;             /* one per worker, 1..AMIL_LEDGER_LANES_MAX */
	uint32_t lane_size;            /* records in flight per lane, power of 2 */
	uint32_t batch_max;            /* records per commit, >= 1 */
	uint64_t max_wait_ns;          /* longest a record waits for its batch to fill */
	uint64_t segment_bytes;        /* rotate past this; >= header + batch_max records */
	struct amil_ledger_counters *counters; /* written by the writer; may be NULL */
};

/**
 * Create the lanes and the directory (if missing).  Nothing is written
 * until amil_ledger_start(), so recovery can run in between.
 * @return NULL with rte_errno set: EINVAL (bad params), ENOMEM, or the
 *   errno of creating or opening the directory (e.g. EACCES).  Control path.
 */
struct amil_ledger *amil_ledger_create(const struct amil_ledger_params *p);

/**
 * Open a new segment starting at @next_seq (last recovered seq + 1, or 1),
 * its header and directory entry durable before this returns, and start
 * the writer thread (a DPDK control thread named "amil-ledger").
 * @return 0 or a negative errno (e.g. -ENOSPC, -EACCES).  Control path, once.
 */
int amil_ledger_start(struct amil_ledger *l, uint64_t next_seq);

/**
 * Stop the writer after it has settled every record already submitted
 * (call once the workers stopped submitting), close the segment.
 * @return 0 or a negative errno.  Control path; idempotent.
 */
int amil_ledger_stop(struct amil_ledger *l);

/** Stop if running and free; NULL is a no-op. */
void amil_ledger_free(struct amil_ledger *l);

/* --- worker side: one lane per worker, single producer ------------------ */

/**
 * Submit @n encoded records (AMIL_LEDGER_REC_LEN bytes each, as
 * amil_ledger_rec_encode() writes them; seq and time are filled by the
 * writer) on @lane, all or nothing.
 * @return the wseq of the last record, or 0 when the lane has no room for
 *   all @n (nothing submitted).  Owning worker only; no lock, no syscall.
 */
uint64_t amil_ledger_submit(struct amil_ledger *l, unsigned lane, const void *recs, unsigned n);

/** wseq up to which @lane's records are settled (durable or refused). */
uint64_t amil_ledger_settled(const struct amil_ledger *l, unsigned lane);

/**
 * Take up to @max refused wseqs of @lane, ascending.  Every refused wseq
 * is listed before amil_ledger_settled() passes it.
 * @return the number written to @wseq.  Owning worker only.
 */
unsigned amil_ledger_refused(struct amil_ledger *l, unsigned lane, uint64_t *wseq, unsigned max);

/** Records @lane can still take. */
unsigned amil_ledger_lane_room(const struct amil_ledger *l, unsigned lane);

/**
 * Test hook: the next @batches commits fail with @err (positive errno) as
 * a full or failing disk would, without touching the file.  Any thread.
 */
void amil_ledger_fail_next(struct amil_ledger *l, int err, unsigned batches);

/* --- recovery ------------------------------------------------------------ */

struct amil_ledger_recovery {
	uint64_t next_seq;             /* what amil_ledger_params.next_seq wants */
	struct amil_ledger_scan_result scan;
};

/**
 * Start-up recovery of @dir: verify every segment, cut a torn or corrupt
 * tail of the last one (saved aside, see amil_ledger_scan), and call
 * @on_record for every intact record in order (to rebuild dedupe state).
 * @return 0, or a negative errno with @out->scan.damage saying where
 *   (-EBADMSG: damage before the last segment, the data plane must not
 *   start).  Control path, before amil_ledger_create() on the same dir.
 */
int amil_ledger_recover(const char *dir, uint32_t node_id,
			int (*on_record)(void *arg, const struct amil_ledger_rec *r), void *arg,
			struct amil_ledger_recovery *out);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_LEDGER_H */
