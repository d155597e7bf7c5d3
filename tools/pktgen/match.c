/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* ACK matching and checking.  See match.h. */
#include "amil_levy.h"
#include "match.h"

static enum amil_match_result
bad(struct amil_match_out *o, enum amil_match_result r, const char *why)
{
	o->why = why;
	return r;
}

enum amil_match_result
amil_match_ack(const struct amil_match_ctx *c, const uint8_t *payload, size_t len,
	       struct amil_match_out *o)
{
	struct amil_track_info info;
	struct amil_donation d;
	struct amil_ack a;
	const uint8_t *key;
	uint64_t rel, k;
	uint32_t t;
	uint8_t want_status, want_reason;
	int64_t before;

	o->reason = AMIL_REASON_NONE;
	o->late = false;
	o->sent_ns = 0;
	o->why = NULL;
	if (amil_wire_check(payload, len, AMIL_MSG_ACK) != 0)
		return AMIL_MATCH_NOT_ACK;
	key = amil_centers_key(c->centers, amil_wire_center_id(payload));
	if (key == NULL)
		return bad(o, AMIL_MATCH_UNEXPECTED, "ACK from a center we do not simulate");
	if (amil_wire_verify(payload, key) != 0)
		return bad(o, AMIL_MATCH_MISMATCHED, "ACK tag does not verify with the center's key");
	amil_wire_ack_decode(payload, &a);
	o->sent_ns = a.sent_ns;

	if (a.donation_id < c->first_id)
		return bad(o, AMIL_MATCH_UNEXPECTED, "donation id below the first we send");
	rel = a.donation_id - c->first_id;
	t = (uint32_t)(rel % c->nb_tx);
	k = rel / c->nb_tx;
	if (amil_track_lookup(c->track[t], k, &info) != 0)
		return bad(o, AMIL_MATCH_UNEXPECTED, "no such donation sent (or its slot was reused)");
	if (a.center_id != amil_gen_center(c->gen, a.donation_id))
		return bad(o, AMIL_MATCH_UNEXPECTED, "donation id sent by another center");
	if (!amil_gen_expect(info.kind, &want_status, &want_reason))
		return bad(o, AMIL_MATCH_MISMATCHED, "node answered a frame it must drop");
	if (info.kind == AMIL_GEN_VALID && a.status == AMIL_ACK_REJECTED &&
	    a.reason == AMIL_REASON_UNAVAILABLE) {
		/* Not recorded, retry later: judged, but the wait goes on. */
		if (a.amount_minor != 0 || a.levy_minor != 0)
			return bad(o, AMIL_MATCH_MISMATCHED, "REJECTED with a nonzero amount or levy");
		o->reason = a.reason;
		return AMIL_MATCH_REJECTED;
	}

	if (info.kind == AMIL_GEN_VALID) {
		amil_gen_donation(c->gen, a.donation_id, info.kind, &d);
		if (a.status != AMIL_ACK_ACCEPTED && a.status != AMIL_ACK_DUPLICATE)
			return bad(o, AMIL_MATCH_MISMATCHED, "valid donation not ACCEPTED/DUPLICATE");
		if (a.reason != AMIL_REASON_NONE)
			return bad(o, AMIL_MATCH_MISMATCHED, "reason set on an ACCEPTED/DUPLICATE");
		if (a.amount_minor != d.amount_minor)
			return bad(o, AMIL_MATCH_MISMATCHED, "amount differs from the one sent");
		if (a.levy_minor != amil_levy_minor(d.amount_minor, c->rate_bp))
			return bad(o, AMIL_MATCH_MISMATCHED, "levy differs from amil_levy_minor()");
		if (a.status == AMIL_ACK_DUPLICATE && info.sends < 2)
			return bad(o, AMIL_MATCH_MISMATCHED, "DUPLICATE for a donation sent once");
		if (a.status == AMIL_ACK_ACCEPTED && amil_track_accept(c->track[t], k))
			return bad(o, AMIL_MATCH_MISMATCHED, "second ACCEPTED for the same donation");
	} else {
		if (a.status != want_status || a.reason != want_reason)
			return bad(o, AMIL_MATCH_MISMATCHED, "wrong status or reason for an invalid kind");
		if (a.amount_minor != 0 || a.levy_minor != 0)
			return bad(o, AMIL_MATCH_MISMATCHED, "REJECTED with a nonzero amount or levy");
		o->reason = a.reason;
	}
	before = amil_track_ack(c->track[t], k);
	o->late = before >= 1 + (int64_t)info.copies;
	switch (a.status) {
	case AMIL_ACK_ACCEPTED:
		return AMIL_MATCH_ACCEPTED;
	case AMIL_ACK_DUPLICATE:
		return AMIL_MATCH_DUPLICATE;
	default:
		return AMIL_MATCH_REJECTED;
	}
}
