/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * What the generator sends: the content of every donation and the mix of
 * new, duplicate and invalid frames.
 *
 * Content is a pure function of (seed, donation_id): the center, donor,
 * campaign and amount are hashes of the id.  A retransmission or a
 * deliberate duplicate therefore carries the same content without storing
 * it, and the ACK checker recomputes the expected amount and levy from the
 * id alone.  The tracking table only keeps a byte of kind per donation.
 *
 * The mix is exact: with --count N, --dup-frac d and --invalid-frac v, the
 * plan sends round(N*d) duplicates and round(N*v) invalid frames (spread
 * over the five invalid kinds in turn), placed at random (selection
 * sampling: each frame is a duplicate with probability dups left / frames
 * left).  Exact counts are what lets a test say "every count exact".
 * Without a count (--duration) each frame is drawn independently.
 *
 * Everything here is read-only after amil_gen_create() (struct amil_gen) or
 * owned by one TX lcore (struct amil_gen_plan); no allocation after create.
 */
#ifndef AMIL_PKTGEN_GEN_H
#define AMIL_PKTGEN_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "amil_centers.h"
#include "amil_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of frame.  Expected node behaviour in amil_gen_expect(). */
enum amil_gen_kind {
	AMIL_GEN_VALID = 0,
	AMIL_GEN_BAD_TAG,        /* tag bit flipped: dropped, no answer */
	AMIL_GEN_UNKNOWN_CENTER, /* center not in the file: dropped, no answer */
	AMIL_GEN_TRUNCATED,      /* 63-byte payload: dropped, no answer */
	AMIL_GEN_BAD_AMOUNT,     /* amount 0 or negative: REJECTED / BAD_AMOUNT */
	AMIL_GEN_BAD_CURRENCY,   /* "us$": REJECTED / BAD_CURRENCY */
	AMIL_GEN_KINDS
};
#define AMIL_GEN_INVALID_KINDS (AMIL_GEN_KINDS - 1)

struct amil_gen_conf {
	const struct amil_centers *centers; /* every center is simulated */
	uint64_t seed;
	int64_t amount_min, amount_max;  /* uniform, minor units, 1..10^15 */
	uint32_t campaigns;              /* campaign ids 1..campaigns */
	double zipf_s;                   /* 0: uniform; else Zipf exponent */
	char currency[AMIL_CURRENCY_LEN];
	uint8_t exponent;
};

struct amil_gen;

/**
 * Build the generator: copies the centers' ids and keys (so no hash lookup
 * per frame), finds a center id absent from the file for the
 * unknown-center kind, and tabulates the Zipf distribution.
 * @return generator (caller owns it; amil_gen_free()), or NULL with errno
 *   EINVAL (bad amounts, 0 campaigns or more than 2^24, negative zipf_s) or
 *   ENOMEM.
 */
struct amil_gen *amil_gen_create(const struct amil_gen_conf *conf);

/** Free @g; NULL is a no-op. */
void amil_gen_free(struct amil_gen *g);

/**
 * Content of donation @donation_id of @kind (host order), sent_ns and seq
 * zero.  For BAD_AMOUNT / BAD_CURRENCY the invalid field is already in
 * place; for UNKNOWN_CENTER the center is the absent one.
 */
void amil_gen_donation(const struct amil_gen *g, uint64_t donation_id, uint8_t kind,
		       struct amil_donation *d);

/** Center that sends @donation_id when valid (the id's owner). */
uint32_t amil_gen_center(const struct amil_gen *g, uint64_t donation_id);

/**
 * Encode, sign and spoil (per @kind) the payload of @donation_id.
 * @param out  64 bytes.
 * @return payload length to send: 64, or 63 for TRUNCATED.  Fast path.
 */
unsigned amil_gen_payload(const struct amil_gen *g, uint64_t donation_id, uint8_t kind,
			  uint64_t sent_ns, uint32_t seq, uint8_t out[AMIL_WIRE_LEN]);

/**
 * The two halves of amil_gen_payload(), for callers that sign many
 * payloads in one amil_wire_sign_burst() call: encode bytes 0..55
 * (returns the length like amil_gen_payload() and the key to sign with in
 * *@key; bytes 56..63, the tag, are not written), then, once signed, spoil
 * the tag per @kind.  Bytes 0..55 are exactly those of
 * amil_wire_donation_encode() of amil_gen_donation() with @sent_ns and
 * @seq, written field by field without going through the struct.  Fast
 * path.
 */
unsigned amil_gen_payload_unsigned(const struct amil_gen *g, uint64_t donation_id, uint8_t kind,
				   uint64_t sent_ns, uint32_t seq, uint8_t out[AMIL_WIRE_LEN],
				   const uint8_t **key);
void amil_gen_payload_finish(uint8_t kind, uint8_t out[AMIL_WIRE_LEN]);

/**
 * amil_gen_payload_unsigned() of @n donations in one call, for the TX
 * loop: out[i] receives bytes 0..55 of donation ids[i] of kinds[i] with
 * @sent_ns and seq @seq0 + i, keys[i] its signing key.  A TRUNCATED kind
 * is encoded like the others; the caller sends only its first 63 bytes
 * (after signing).  @out is typed like amil_wire_sign_burst()'s @bufs so
 * one array serves both calls.  The @out buffers must not overlap each
 * other or the other arrays.  Fast path.
 */
void amil_gen_payload_burst(const struct amil_gen *g, const uint64_t ids[], const uint8_t kinds[],
			    unsigned n, uint64_t sent_ns, uint32_t seq0, void *const out[],
			    const uint8_t *keys[]);

/**
 * Expected answer to @kind: false when the node must stay silent;
 * otherwise @status and @reason (ACCEPTED/NONE for VALID - or DUPLICATE
 * for a repeat).
 */
bool amil_gen_expect(uint8_t kind, uint8_t *status, uint8_t *reason);

/* ---- the mix, per TX lcore ---------------------------------------------- */

#define AMIL_GEN_RECENT 4096  /* duplicates re-send one of the last N valid */

enum amil_gen_pick { AMIL_GEN_PICK_NEW, AMIL_GEN_PICK_DUP, AMIL_GEN_PICK_INVALID };

struct amil_gen_plan {
	bool exact;            /* frames known: exact counts */
	uint64_t frames_left;  /* exact: frames still to plan */
	uint64_t dups_left, invalid_left;
	double dup_frac, invalid_frac;  /* not exact: per-frame probabilities */
	uint64_t dup_below, invalid_below; /* the same as thresholds on a 53-bit
					    * draw: dup below the first, invalid
					    * from it to below the second */
	uint64_t rng;          /* xorshift64* state */
	uint32_t next_invalid; /* round robin over the invalid kinds */
	uint64_t recent[AMIL_GEN_RECENT]; /* local indices of valid donations */
	uint64_t nrecent;      /* valid donations noted (ring position) */
};

/**
 * Plan @frames frames (0 = unbounded, probabilistic) with the given
 * fractions (0..1, their sum at most 1).  @seed makes it reproducible.
 * @return 0 or -EINVAL.
 */
int amil_gen_plan_init(struct amil_gen_plan *p, uint64_t frames, double dup_frac,
		       double invalid_frac, uint64_t seed);

/**
 * Decide the next frame.  NEW: the caller sends a new valid donation and
 * calls amil_gen_plan_note_valid().  DUP: re-send local index *@k.
 * INVALID: a new donation of kind *@kind.  Never DUP before a valid one was
 * noted.  A pick is final: check that a new index fits the window
 * (amil_track_can_add()) before asking.  Fast path.
 */
enum amil_gen_pick amil_gen_plan_next(struct amil_gen_plan *p, uint64_t *k, uint8_t *kind);

/**
 * True when every pick from now on is NEW: no duplicate or invalid frame is
 * left to plan (with a count) or both fractions are 0 (without).  The TX
 * loop then skips amil_gen_plan_next() and amil_gen_plan_note_valid()
 * altogether (nothing can repeat a noted donation any more).  Fast path.
 */
static inline bool
amil_gen_plan_all_new(const struct amil_gen_plan *p)
{
	if (p->exact)
		return p->dups_left == 0 && p->invalid_left == 0;
	return p->dup_frac == 0.0 && p->invalid_frac == 0.0;
}

/** Remember local index @k as a valid donation that duplicates may repeat. */
static inline void
amil_gen_plan_note_valid(struct amil_gen_plan *p, uint64_t k)
{
	p->recent[p->nrecent++ % AMIL_GEN_RECENT] = k;
}

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PKTGEN_GEN_H */
