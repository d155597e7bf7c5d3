/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Matching an ACK to what was sent, and judging it.
 *
 * An ACK is trusted only after its tag verifies with the key of the center
 * it names.  It is then matched by (center_id, donation_id): the id gives
 * the TX lcore and the slot (ids are allocated as first + t + k*T), the
 * slot must hold that donation, and the center must be the one the
 * generator used for that id.  The expected answer is recomputed from
 * scratch - content from the id (gen.h), levy with amil_levy_minor() at the
 * node's rate - never copied from the ACK.
 *
 *   ACCEPTED   first answer for a valid donation; amount and levy exact.
 *              A second ACCEPTED for the same key is mismatched.
 *   DUPLICATE  a valid donation sent more than once (a --dup-frac copy or
 *              a retransmission); the original amount and levy.
 *   REJECTED   the reason the invalid kind must produce, amount and levy 0;
 *              or UNAVAILABLE for any donation (retry later: it does not
 *              end the wait, so the donation is retransmitted).
 *   mismatched a verified ACK whose content is wrong, an answer to a frame
 *              the node must drop, or an ACK whose tag does not verify.
 *   unexpected a verified ACK for no donation we sent.
 *
 * An ACK beyond the number of copies we sent on purpose (e.g. the answer to
 * a retransmission that crossed the first ACK) is still judged as above
 * and flagged late: not unexpected.
 *
 * Thread-safe for any number of RX lcores (see track.h); no allocation.
 */
#ifndef AMIL_PKTGEN_MATCH_H
#define AMIL_PKTGEN_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amil_centers.h"
#include "gen.h"
#include "track.h"

#ifdef __cplusplus
extern "C" {
#endif

enum amil_match_result {
	AMIL_MATCH_ACCEPTED,
	AMIL_MATCH_DUPLICATE,
	AMIL_MATCH_REJECTED,
	AMIL_MATCH_MISMATCHED,
	AMIL_MATCH_UNEXPECTED,
	AMIL_MATCH_NOT_ACK,    /* not an AMIL/1 ACK at all: ignored */
};

struct amil_match_ctx {
	const struct amil_centers *centers;
	const struct amil_gen *gen;
	struct amil_track *const *track;  /* one per TX lcore */
	uint32_t nb_tx;
	uint64_t first_id;                /* donation id of (t 0, k 0) */
	uint32_t rate_bp;                 /* the node's levy rate */
};

struct amil_match_out {
	uint8_t reason;        /* REJECTED: the reason */
	bool late;             /* more ACKs than deliberate copies */
	uint64_t sent_ns;      /* echoed, for latency (verified ACKs) */
	const char *why;       /* MISMATCHED / UNEXPECTED: a static explanation */
};

/** Donation id of local index @k of TX lcore @t. */
static inline uint64_t
amil_match_id(const struct amil_match_ctx *c, uint32_t t, uint64_t k)
{
	return c->first_id + t + k * c->nb_tx;
}

/**
 * Judge one received UDP payload (@len bytes).
 * @return the verdict; @o filled (why set for MISMATCHED/UNEXPECTED,
 *   sent_ns for every verified ACK).
 */
enum amil_match_result amil_match_ack(const struct amil_match_ctx *c, const uint8_t *payload,
				      size_t len, struct amil_match_out *o);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PKTGEN_MATCH_H */
