/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Donation content and traffic mix.  See gen.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

#define CAMPAIGNS_MAX (1u << 24)

struct center {
	uint32_t id;
	uint8_t key[AMIL_KEY_LEN];
};

struct amil_gen {
	uint64_t seed;
	int64_t amount_min;
	uint64_t amount_span;      /* amount_max - amount_min + 1 */
	uint32_t campaigns;
	uint64_t *zipf_cdf;        /* NULL: uniform; else cdf[i] of rank i+1, scaled to 2^63 */
	char currency[AMIL_CURRENCY_LEN];
	uint8_t exponent;
	uint32_t unknown_center;   /* an id absent from the centers file */
	uint8_t unknown_key[AMIL_KEY_LEN];
	uint32_t nb_centers;
	struct center *center;
};

/* splitmix64 finaliser: a good 64-bit mix, so field i of donation d is
 * mix(seed ^ d * C ^ salt_i), independent enough for traffic shaping. */
static inline uint64_t
mix(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static inline uint64_t
field(const struct amil_gen *g, uint64_t id, uint64_t salt)
{
	return mix(g->seed ^ (id * UINT64_C(0x9e3779b97f4a7c15)) ^ (salt << 56));
}

/* A uniform 64-bit @u mapped onto 0..n-1 by a multiply-high (Lemire's
 * "fastrange") instead of u % n: a 64-bit division costs tens of cycles
 * and there are four per donation on the TX fast path. */
static inline uint64_t
range(uint64_t u, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)u * n) >> 64);
}

static int
build_zipf(struct amil_gen *g, double s)
{
	double total = 0.0, cum = 0.0;

	g->zipf_cdf = malloc(sizeof(*g->zipf_cdf) * g->campaigns);
	if (g->zipf_cdf == NULL)
		return -ENOMEM;
	for (uint32_t r = 1; r <= g->campaigns; r++)
		total += pow((double)r, -s);
	for (uint32_t r = 1; r <= g->campaigns; r++) {
		cum += pow((double)r, -s);
		g->zipf_cdf[r - 1] = (uint64_t)(cum / total * 9223372036854775808.0);
	}
	/* Rounding must not leave the top unreachable. */
	g->zipf_cdf[g->campaigns - 1] = UINT64_C(1) << 63;
	return 0;
}

struct amil_gen *
amil_gen_create(const struct amil_gen_conf *c)
{
	struct amil_gen *g;
	uint32_t n = c->centers ? amil_centers_count(c->centers) : 0;

	if (n == 0 || c->amount_min > c->amount_max || c->campaigns == 0 ||
	    c->campaigns > CAMPAIGNS_MAX || !(c->zipf_s >= 0.0) || c->amount_min < 1 ||
	    c->amount_max > AMIL_AMOUNT_MAX_MINOR) {
		errno = EINVAL;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		goto fail_gen;
	g->seed = mix(c->seed + 1);
	g->amount_min = c->amount_min;
	g->amount_span = (uint64_t)(c->amount_max - c->amount_min) + 1;
	g->campaigns = c->campaigns;
	memcpy(g->currency, c->currency, AMIL_CURRENCY_LEN);
	g->exponent = c->exponent;
	g->nb_centers = n;
	g->center = calloc(n, sizeof(*g->center));
	if (g->center == NULL)
		goto fail_centers;
	for (uint32_t i = 0; i < n; i++)
		amil_centers_get(c->centers, i, &g->center[i].id, g->center[i].key);
	/* Highest ids first: files usually number centers from small ids. */
	g->unknown_center = UINT32_MAX;
	while (amil_centers_key(c->centers, g->unknown_center) != NULL)
		g->unknown_center--;
	memset(g->unknown_key, 0xA5, sizeof(g->unknown_key));
	if (c->zipf_s > 0.0 && build_zipf(g, c->zipf_s) != 0)
		goto fail_zipf;
	return g;

fail_zipf:
	free(g->center);
fail_centers:
	free(g);
fail_gen:
	errno = ENOMEM;
	return NULL;
}

void
amil_gen_free(struct amil_gen *g)
{
	if (g == NULL)
		return;
	free(g->zipf_cdf);
	free(g->center);
	free(g);
}

static inline const struct center *
center_of(const struct amil_gen *g, uint64_t id)
{
	return &g->center[range(field(g, id, 1), g->nb_centers)];
}

uint32_t
amil_gen_center(const struct amil_gen *g, uint64_t donation_id)
{
	return center_of(g, donation_id)->id;
}

static inline uint32_t
campaign_of(const struct amil_gen *g, uint64_t id)
{
	uint64_t u = field(g, id, 3);
	uint32_t lo = 0, hi;

	if (g->zipf_cdf == NULL)
		return 1 + (uint32_t)range(u, g->campaigns);
	/* First rank whose cumulative share exceeds u (u in [0, 2^63)). */
	u >>= 1;
	hi = g->campaigns - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (g->zipf_cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo + 1;
}

void
amil_gen_donation(const struct amil_gen *g, uint64_t id, uint8_t kind, struct amil_donation *d)
{
	uint64_t donor = field(g, id, 2);

	memset(d, 0, sizeof(*d));
	d->center_id = kind == AMIL_GEN_UNKNOWN_CENTER ? g->unknown_center : center_of(g, id)->id;
	d->donation_id = id;
	d->donor_id = (donor & 3) == 0 ? 0 : 1 + range(donor, 1000000);  /* 1/4 anonymous */
	d->campaign_id = campaign_of(g, id);
	memcpy(d->currency, g->currency, AMIL_CURRENCY_LEN);
	d->exponent = g->exponent;
	d->amount_minor = g->amount_min + (int64_t)range(field(g, id, 4), g->amount_span);
	if (kind == AMIL_GEN_BAD_AMOUNT)
		d->amount_minor = (id & 1) ? 0 : -d->amount_minor;
	if (kind == AMIL_GEN_BAD_CURRENCY)
		memcpy(d->currency, "us$", AMIL_CURRENCY_LEN);
}

unsigned
amil_gen_payload_unsigned(const struct amil_gen *g, uint64_t id, uint8_t kind, uint64_t sent_ns,
			  uint32_t seq, uint8_t out[AMIL_WIRE_LEN], const uint8_t **key)
{
	const struct center *c = center_of(g, id);
	struct amil_donation d;

	amil_gen_donation(g, id, kind, &d);
	d.sent_ns = sent_ns;
	d.seq = seq;
	amil_wire_donation_encode(out, &d);
	*key = kind == AMIL_GEN_UNKNOWN_CENTER ? g->unknown_key : c->key;
	return kind == AMIL_GEN_TRUNCATED ? AMIL_WIRE_LEN - 1 : AMIL_WIRE_LEN;
}

void
amil_gen_payload_finish(uint8_t kind, uint8_t out[AMIL_WIRE_LEN])
{
	if (kind == AMIL_GEN_BAD_TAG)
		out[AMIL_WIRE_TAG_OFF] ^= 0x01;
}

unsigned
amil_gen_payload(const struct amil_gen *g, uint64_t id, uint8_t kind, uint64_t sent_ns,
		 uint32_t seq, uint8_t out[AMIL_WIRE_LEN])
{
	const uint8_t *key;
	unsigned len = amil_gen_payload_unsigned(g, id, kind, sent_ns, seq, out, &key);

	amil_wire_sign(out, key);
	amil_gen_payload_finish(kind, out);
	return len;
}

bool
amil_gen_expect(uint8_t kind, uint8_t *status, uint8_t *reason)
{
	switch (kind) {
	case AMIL_GEN_VALID:
		*status = AMIL_ACK_ACCEPTED;
		*reason = AMIL_REASON_NONE;
		return true;
	case AMIL_GEN_BAD_AMOUNT:
		*status = AMIL_ACK_REJECTED;
		*reason = AMIL_REASON_BAD_AMOUNT;
		return true;
	case AMIL_GEN_BAD_CURRENCY:
		*status = AMIL_ACK_REJECTED;
		*reason = AMIL_REASON_BAD_CURRENCY;
		return true;
	default:
		return false;
	}
}

/* ---- the mix ------------------------------------------------------------- */

static inline uint64_t
rng(struct amil_gen_plan *p)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * UINT64_C(2685821657736338717);
}

int
amil_gen_plan_init(struct amil_gen_plan *p, uint64_t frames, double dup_frac,
		   double invalid_frac, uint64_t seed)
{
	if (!(dup_frac >= 0.0 && invalid_frac >= 0.0 && dup_frac + invalid_frac <= 1.0))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->exact = frames > 0;
	p->frames_left = frames;
	/* Rounded to nearest: 100000 * 0.05 is 5000 whatever the binary
	 * representation of 0.05. */
	p->dups_left = (uint64_t)llround((double)frames * dup_frac);
	p->invalid_left = (uint64_t)llround((double)frames * invalid_frac);
	if (p->dups_left + p->invalid_left > frames)
		p->dups_left = frames - p->invalid_left;
	p->dup_frac = dup_frac;
	p->invalid_frac = invalid_frac;
	p->rng = mix(seed ^ UINT64_C(0x5851f42d4c957f2d)) | 1;
	return 0;
}

static inline enum amil_gen_pick
pick_invalid(struct amil_gen_plan *p, uint8_t *kind)
{
	*kind = (uint8_t)(1 + p->next_invalid);
	p->next_invalid = (p->next_invalid + 1) % AMIL_GEN_INVALID_KINDS;
	return AMIL_GEN_PICK_INVALID;
}

static inline enum amil_gen_pick
pick_dup(struct amil_gen_plan *p, uint64_t *k)
{
	uint64_t n = p->nrecent < AMIL_GEN_RECENT ? p->nrecent : AMIL_GEN_RECENT;

	*k = p->recent[rng(p) % n];
	return AMIL_GEN_PICK_DUP;
}

enum amil_gen_pick
amil_gen_plan_next(struct amil_gen_plan *p, uint64_t *k, uint8_t *kind)
{
	*kind = AMIL_GEN_VALID;
	if (!p->exact) {
		double u = (double)(rng(p) >> 11) / 9007199254740992.0;

		if (u < p->dup_frac && p->nrecent > 0)
			return pick_dup(p, k);
		if (u >= p->dup_frac && u < p->dup_frac + p->invalid_frac)
			return pick_invalid(p, kind);
		return AMIL_GEN_PICK_NEW;
	}
	if (p->frames_left == 0)
		return AMIL_GEN_PICK_NEW;  /* past the plan: all new */
	{
		/* Selection sampling: u uniform in [0, frames_left), by
		 * multiply-high rather than a 64-bit division per frame. */
		uint64_t u = range(rng(p), p->frames_left);
		bool can_dup = p->nrecent > 0;

		p->frames_left--;
		/* Until the first valid one, no duplicate is possible; keep
		 * the counts exact by making this frame new unless only
		 * planned frames remain. */
		if (u < p->dups_left && can_dup) {
			p->dups_left--;
			return pick_dup(p, k);
		}
		if ((u >= p->dups_left && u < p->dups_left + p->invalid_left) ||
		    (!can_dup && p->invalid_left > 0 &&
		     p->frames_left + 1 == p->dups_left + p->invalid_left)) {
			p->invalid_left--;
			return pick_invalid(p, kind);
		}
		return AMIL_GEN_PICK_NEW;
	}
}
