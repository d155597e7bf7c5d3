/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014)
 * for the control-plane registry (awormap.h).
 *
 * Why not the monotonic clock: per-node monotonic clocks are not
 * comparable across nodes, so last-write-wins decided by them is
 * arbitrary.  Why not plain wall time: it can step backwards and two
 * events in the same tick would tie.  An HLC timestamp stays within the
 * bounded drift of wall time, never goes backwards on one node, and
 * orders every send before its receive.
 *
 * A timestamp is one uint64_t: the upper 48 bits are physical time in
 * units of 2^16 ns (65.536 us; 48 bits cover 584 years from the Unix
 * epoch), the lower 16 bits a logical counter.  Packing makes "advance the
 * logical part" a plain +1 whose overflow carries into the physical part,
 * so the clock never stalls and comparison is integer comparison.  Ties
 * between equal timestamps from different nodes are broken by node id
 * (amil_hlc_cmp); one node never issues the same timestamp twice.
 *
 * Bounded drift: amil_hlc_update() refuses (-ERANGE, clock unchanged) a
 * remote timestamp whose physical part is more than max_drift_ns ahead of
 * the local physical time, so one node with a wild clock cannot drag every
 * clock in the cluster into the future.  The caller still accepts the
 * data it came with; only the clock ignores it.  max_drift_ns = 0 turns
 * the check off.
 *
 * Pure: the caller passes the physical time (CLOCK_REALTIME ns); nothing
 * here reads a clock.  Not thread-safe: one owner per struct amil_hlc.
 */
#ifndef AMIL_HLC_H
#define AMIL_HLC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_HLC_LOGICAL_BITS 16
#define AMIL_HLC_LOGICAL_MASK ((UINT64_C(1) << AMIL_HLC_LOGICAL_BITS) - 1)

/*
 * The clock of one node.  A plain struct (not opaque) because it is a
 * 24-byte value embedded in its owner; touch it only through the calls.
 */
struct amil_hlc {
	uint64_t last;          /* last timestamp issued or received */
	uint64_t max_drift_ns;  /* 0: no drift check */
	uint64_t rejected;      /* remote timestamps refused for drift */
};

/* Packed timestamp of physical time @phys_ns with logical counter 0. */
static inline uint64_t
amil_hlc_from_ns(uint64_t phys_ns)
{
	return phys_ns & ~AMIL_HLC_LOGICAL_MASK;
}

/* Physical part of @ts in ns (a multiple of 65536). */
static inline uint64_t
amil_hlc_physical_ns(uint64_t ts)
{
	return ts & ~AMIL_HLC_LOGICAL_MASK;
}

/* Logical part of @ts. */
static inline uint32_t
amil_hlc_logical(uint64_t ts)
{
	return (uint32_t)(ts & AMIL_HLC_LOGICAL_MASK);
}

/*
 * Start a clock at 0 with drift bound @max_drift_ns (0: unbounded).
 * Never fails.
 */
void amil_hlc_init(struct amil_hlc *h, uint64_t max_drift_ns);

/*
 * Timestamp for a local event (or a send) at physical time @phys_ns:
 * max(last + 1, phys).  Strictly greater than every timestamp this clock
 * issued or accepted before.  Never fails.
 */
uint64_t amil_hlc_now(struct amil_hlc *h, uint64_t phys_ns);

/*
 * Account for a received timestamp @remote at local physical time
 * @phys_ns: the clock becomes max(last, remote, phys) so the next
 * amil_hlc_now() orders after @remote.
 *
 * Returns 0, or -ERANGE when @remote is more than max_drift_ns ahead of
 * @phys_ns (the clock is left unchanged and h->rejected counts it).
 */
int amil_hlc_update(struct amil_hlc *h, uint64_t phys_ns, uint64_t remote);

/*
 * Total order over (timestamp, node id): negative, 0 or positive as
 * (@a, @a_node) is less than, equal to or greater than (@b, @b_node).
 */
static inline int
amil_hlc_cmp(uint64_t a, uint64_t a_node, uint64_t b, uint64_t b_node)
{
	if (a != b)
		return a < b ? -1 : 1;
	if (a_node != b_node)
		return a_node < b_node ? -1 : 1;
	return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* AMIL_HLC_H */
