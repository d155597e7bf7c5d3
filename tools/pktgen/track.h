/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Outstanding donations of one TX lcore: which donation was sent, how many
 * ACKs it still expects, when to retransmit it, and when to give up.
 *
 * Keying.  The generator allocates donation ids itself, so the id decides
 * the slot: TX lcore t of T owns ids first + t + k*T, and k (the lcore's
 * local index) selects slot k mod capacity.  A lookup is an index, not a
 * hash probe, and the (center_id, donation_id) key is checked against the
 * slot (the caller compares the center, which the generator derives from
 * the id).  Capacity is a power of two fixed at creation: --count (then no
 * slot is ever reused) or rate x timeout x attempts (a sliding window).  A
 * slot is reused only once its donation is finished (acknowledged, or lost
 * after the last retry); until then amil_track_add() says -EBUSY and the
 * generator waits, which is the flow control of a center with bounded
 * memory.
 *
 * Retransmission.  Every donation that expects an answer sits in a FIFO
 * with deadline "last transmission + timeout".  The timeout is the same for
 * every entry, so the FIFO is sorted by deadline and amil_track_due() only
 * looks at its head: O(1) per expiry, no timer wheel.  (A backoff that grows
 * per attempt would break that order; a center that wants backoff can use
 * a larger --ack-timeout.)  At its deadline an entry is finished when
 * acknowledged, retransmitted (same content) when attempts remain, or
 * counted lost.
 *
 * Threads.  One TX lcore owns a table: it calls add/add_copy/due/abandon.
 * RX lcores call lookup/ack/accept concurrently; the fields they share are
 * C11 atomics, each with its order documented at the access.  Slots are
 * reused only after capacity newer ids, so an RX lcore racing a reuse
 * would need an ACK older than the whole window; such an ACK may then be
 * misattributed (documented limit, not a memory-safety issue).
 *
 * Nothing here allocates after amil_track_create().
 */
#ifndef AMIL_PKTGEN_TRACK_H
#define AMIL_PKTGEN_TRACK_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_TRACK_CAPACITY_MAX (1u << 26)

struct amil_track;

/** What a slot knows about one donation, as seen by an RX lcore. */
struct amil_track_info {
	uint8_t kind;      /* the caller's kind, stored by amil_track_add() */
	bool expect_ack;   /* false for kinds the node must not answer */
	uint32_t sends;    /* transmissions: original + copies + retransmits */
	uint32_t copies;   /* deliberate duplicates (amil_track_add_copy()) */
	uint32_t acks;     /* ACKs counted with amil_track_ack() so far */
};

/**
 * Create a table.
 * @param capacity     slots; rounded up to a power of two, 1 ..
 *                     AMIL_TRACK_CAPACITY_MAX.
 * @param timeout_tsc  time from a transmission to its retransmission.
 * @param retries      retransmissions before a donation is lost.
 * @return the table (caller owns it; amil_track_free()), or NULL with errno
 *   EINVAL (capacity out of range) or ENOMEM.
 */
struct amil_track *amil_track_create(uint32_t capacity, uint64_t timeout_tsc, uint32_t retries);

/** Free @t; NULL is a no-op. */
void amil_track_free(struct amil_track *t);

/** Number of slots (a power of two). */
uint32_t amil_track_capacity(const struct amil_track *t);

/**
 * Record the first transmission of local index @k at @now_tsc.
 * @param expect_ack  false for donations the node must drop silently: they
 *                    are not retransmitted and never count as lost.
 * @return 0; -EBUSY when the slot still holds an unfinished donation (the
 *   window is full: send it later); -EEXIST when @k is already recorded.
 * TX owner only.
 */
int amil_track_add(struct amil_track *t, uint64_t k, uint8_t kind, bool expect_ack,
		   uint64_t now_tsc);

/** True when amil_track_add() of @k would not say -EBUSY.  TX owner only. */
bool amil_track_can_add(const struct amil_track *t, uint64_t k);

/**
 * Record a deliberate duplicate transmission of @k (same content): one more
 * ACK is expected.  @return 0, or -ENOENT when the slot no longer holds @k.
 * TX owner only.
 */
int amil_track_add_copy(struct amil_track *t, uint64_t k);

/**
 * Expire the FIFO head up to @now_tsc.  Each entry at or past its deadline
 * is finished when acknowledged, retransmitted when attempts remain (its
 * index goes to @retx, the caller must send it again with the same
 * content, and its deadline restarts at @now_tsc), or counted lost.
 * Stops after @max retransmissions.
 * @return number of indices written to @retx.  TX owner only.
 */
unsigned amil_track_due(struct amil_track *t, uint64_t now_tsc, uint64_t *retx, unsigned max);

/** True when no donation waits for an answer (the FIFO is empty). */
bool amil_track_idle(const struct amil_track *t);

/** Donations lost so far: no ACK after the last retry (or abandoned). */
uint64_t amil_track_lost(const struct amil_track *t);

/** Retransmissions handed out by amil_track_due() so far. */
uint64_t amil_track_retransmits(const struct amil_track *t);

/** Total transmissions that expect an ACK (original, copies, retransmits). */
uint64_t amil_track_expected_acks(const struct amil_track *t);

/**
 * Give up on everything still waiting (a hard stop): unacknowledged ones
 * count as lost.  TX owner only, or any thread after the owner stopped.
 */
void amil_track_abandon(struct amil_track *t);

/**
 * Look @k up for an ACK.  @return 0 with @info filled, or -ENOENT when the
 * slot does not hold @k (never sent, or reused).  Any thread.
 */
int amil_track_lookup(const struct amil_track *t, uint64_t k, struct amil_track_info *info);

/**
 * Count one ACK for @k (an answer that ends the wait; a REJECTED /
 * UNAVAILABLE is not one).  @return the number counted before this one, or
 * -ENOENT.  Any thread.
 */
int64_t amil_track_ack(struct amil_track *t, uint64_t k);

/**
 * Note an ACCEPTED answer for @k.  @return true when one was noted before
 * (a second ACCEPTED for the same key is a node bug).  Any thread; call
 * only after amil_track_lookup() found @k.
 */
bool amil_track_accept(struct amil_track *t, uint64_t k);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PKTGEN_TRACK_H */
