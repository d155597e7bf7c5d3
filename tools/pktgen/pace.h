/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * TSC pacing: how many packets a generator may send now to hold an exact
 * average rate.
 *
 * The schedule is "packet n is due at base + n * tsc_hz / rate".  The period
 * is rarely a whole number of cycles (2.5 GHz / 15 Mpps = 166.67), and
 * rounding it would skew the rate by up to 1/period (0.4 % there), so the
 * next due time advances Bresenham-style: a whole-cycle quotient plus a
 * remainder that carries one extra cycle whenever it adds up to a full
 * @rate.  That is exact forever, with no floating point, no 128-bit divide
 * on the fast path and no overflow (all times are TSC values).
 *
 * After a stall (preemption, a full TX ring) the schedule would owe many
 * packets at once; sending them back-to-back keeps the average but is a
 * burst the lab did not ask for.  @max_lag_tsc bounds the debt: slots older
 * than that are skipped and counted, so the rate stays honest and the
 * skipped count says how far the generator fell behind.
 *
 * A struct amil_pace belongs to one lcore; nothing here is thread-safe and
 * nothing allocates.
 */
#ifndef AMIL_PKTGEN_PACE_H
#define AMIL_PKTGEN_PACE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct amil_pace {
	bool unlimited;        /* rate 0: everything is due at once */
	uint64_t next_tsc;     /* due time of the next packet */
	uint64_t period_q;     /* whole cycles per packet: tsc_hz / rate */
	uint64_t period_r;     /* remainder: tsc_hz % rate */
	uint64_t acc;          /* remainder accumulated, 0 .. rate-1 */
	uint64_t rate;         /* packets per second */
	uint64_t tsc_hz;
	uint64_t max_lag_tsc;  /* debt beyond this is skipped (0: never skip) */
	uint64_t skipped;      /* slots skipped because of @max_lag_tsc */
};

/**
 * Start a schedule at @now_tsc: the first packet is due immediately.
 *
 * @param rate_pps     packets per second; 0 means as fast as possible.
 * @param tsc_hz       TSC frequency (rte_get_tsc_hz()); must be > 0.
 * @param max_lag_tsc  how far behind the schedule may fall before slots are
 *                     skipped; 0 never skips.
 */
void amil_pace_init(struct amil_pace *p, uint64_t rate_pps, uint64_t tsc_hz, uint64_t now_tsc,
		    uint64_t max_lag_tsc);

/** Skip the slots due well before @until_tsc (internal; called by
 *  amil_pace_take() when the schedule is behind by more than max_lag). */
void amil_pace_skip(struct amil_pace *p, uint64_t until_tsc);

/**
 * Number of packets due at @now_tsc, at most @max; the caller must send
 * exactly that many (they are taken from the schedule).  Returns @max when
 * unlimited.  Fast path: no allocation, no system call.
 */
static inline uint32_t
amil_pace_take(struct amil_pace *p, uint64_t now_tsc, uint32_t max)
{
	uint32_t n = 0;

	if (p->unlimited)
		return max;
	if (p->max_lag_tsc != 0 && now_tsc > p->next_tsc + p->max_lag_tsc) {
		/* Too far behind: forget the slots before now - max_lag.  Rare
		 * (a stall), so one 128-bit division to jump most of the way is
		 * fine; the loop then lands exactly. */
		amil_pace_skip(p, now_tsc - p->max_lag_tsc);
		while (now_tsc > p->next_tsc + p->max_lag_tsc) {
			p->next_tsc += p->period_q;
			p->acc += p->period_r;
			if (p->acc >= p->rate) {
				p->acc -= p->rate;
				p->next_tsc++;
			}
			p->skipped++;
		}
	}
	while (n < max && p->next_tsc <= now_tsc) {
		p->next_tsc += p->period_q;
		p->acc += p->period_r;
		if (p->acc >= p->rate) {
			p->acc -= p->rate;
			p->next_tsc++;
		}
		n++;
	}
	return n;
}

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PKTGEN_PACE_H */
