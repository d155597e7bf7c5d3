/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Donation content and traffic mix.  See gen.h. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

#define CAMPAIGNS_MAX (1u << 24)

/* gen.c builds without DPDK (the unit tests link it alone). */
#define unlikely_gen(x) __builtin_expect(!!(x), 0)

struct center {
	uint32_t id;
	uint8_t key[AMIL_KEY_LEN];
};

struct amil_gen {
	uint64_t seed_a, seed_b;   /* the two per-donation hashes' keys (see hashes()) */
	int64_t amount_min;
	uint64_t amount_span;      /* amount_max - amount_min + 1 */
	uint32_t campaigns;
	uint64_t *zipf_cdf;        /* NULL: uniform; else cdf[i] of rank i+1, scaled to 2^63 */
	char currency[AMIL_CURRENCY_LEN];
	uint8_t exponent;
	/* Constant payload words in wire order, taken from
	 * amil_wire_donation_encode() at create time so the header bytes
	 * come from lib/ and are not restated here. */
	uint32_t head_wire;        /* bytes 0..3: magic, version, type */
	uint32_t cur_wire;         /* bytes 28..31: currency, exponent */
	uint32_t bad_cur_wire;     /* same with "us$" (BAD_CURRENCY) */
	uint32_t unknown_center;   /* an id absent from the centers file */
	uint8_t unknown_key[AMIL_KEY_LEN];
	uint32_t nb_centers;
	struct center *center;
};

/* splitmix64 finaliser: a good 64-bit mix. */
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

/*
 * The two hashes every field of donation @id comes from: a = mix(seed_a ^
 * id*C), b = mix(seed_b ^ id*C).  Two mixes rather than one per field
 * (there were five per frame): the fields only need to look independent
 * for traffic shaping, and the two mixes have no data dependency on each
 * other, so they run side by side.  Which bits feed which field:
 *   a, all 64 bits: amount (multiply-high range, dominated by the top bits)
 *   a, bits 0..31:  donor (bits 0..1 anonymous or not, the rest the id)
 *   b, bits 0..31:  center
 *   b, bits 32..63: campaign (uniform or Zipf)
 */
static inline void
hashes(const struct amil_gen *g, uint64_t id, uint64_t *a, uint64_t *b)
{
	uint64_t x = id * UINT64_C(0x9e3779b97f4a7c15);

	*a = mix(g->seed_a ^ x);
	*b = mix(g->seed_b ^ x);
}

/* A uniform 64-bit @u mapped onto 0..n-1 by a multiply-high (Lemire's
 * "fastrange") instead of u % n: a 64-bit division costs tens of cycles
 * and this runs per field per frame on the TX fast path. */
static inline uint64_t
range(uint64_t u, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)u * n) >> 64);
}

/* The same for a 32-bit @u and n < 2^32: one 64-bit multiply.  Bias at
 * most n / 2^32, far below what traffic shaping can notice. */
static inline uint32_t
range32(uint32_t u, uint32_t n)
{
	return (uint32_t)(((uint64_t)u * n) >> 32);
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

/* The payload bytes that are the same in every donation, as lib/'s encoder
 * writes them (see struct amil_gen). */
static void
wire_constants(struct amil_gen *g)
{
	struct amil_donation d = {0};
	uint8_t p[AMIL_WIRE_LEN];

	memcpy(d.currency, g->currency, AMIL_CURRENCY_LEN);
	d.exponent = g->exponent;
	amil_wire_donation_encode(p, &d);
	memcpy(&g->head_wire, p, 4);
	memcpy(&g->cur_wire, p + offsetof(struct amil_wire_donation, currency), 4);
	memcpy(d.currency, "us$", AMIL_CURRENCY_LEN);
	amil_wire_donation_encode(p, &d);
	memcpy(&g->bad_cur_wire, p + offsetof(struct amil_wire_donation, currency), 4);
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
	g->seed_a = mix(c->seed + 1);
	g->seed_b = mix(c->seed + 2);
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
	wire_constants(g);
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

/* Index of the center that owns donation @id, from hash b. */
static inline uint32_t
center_index(const struct amil_gen *g, uint64_t b)
{
	return range32((uint32_t)b, g->nb_centers);
}

uint32_t
amil_gen_center(const struct amil_gen *g, uint64_t donation_id)
{
	uint64_t a, b;

	hashes(g, donation_id, &a, &b);
	return g->center[center_index(g, b)].id;
}

static inline uint32_t
campaign_of(const struct amil_gen *g, uint64_t b)
{
	uint32_t u32 = (uint32_t)(b >> 32);
	uint64_t u;
	uint32_t lo = 0, hi;

	if (g->zipf_cdf == NULL)
		return 1 + range32(u32, g->campaigns);
	/* First rank whose cumulative share exceeds u (u in [0, 2^63)). */
	u = (uint64_t)u32 << 31;
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

/* Donor id from hash a: a quarter anonymous (0), else 1..10^6. */
static inline uint64_t
donor_of(uint64_t a)
{
	return (a & 3) == 0 ? 0 : 1 + range32((uint32_t)a, 1000000);
}

/* Amount of donation @id of @kind: BAD_AMOUNT alternates 0 and negative. */
static inline int64_t
amount_of(const struct amil_gen *g, uint64_t id, uint8_t kind, uint64_t a)
{
	int64_t v = g->amount_min + (int64_t)range(a, g->amount_span);

	if (unlikely_gen(kind == AMIL_GEN_BAD_AMOUNT))
		v = (id & 1) ? 0 : -v;
	return v;
}

void
amil_gen_donation(const struct amil_gen *g, uint64_t id, uint8_t kind, struct amil_donation *d)
{
	uint64_t a, b;

	hashes(g, id, &a, &b);
	memset(d, 0, sizeof(*d));
	d->center_id = kind == AMIL_GEN_UNKNOWN_CENTER ? g->unknown_center
						       : g->center[center_index(g, b)].id;
	d->donation_id = id;
	d->donor_id = donor_of(a);
	d->campaign_id = campaign_of(g, b);
	memcpy(d->currency, kind == AMIL_GEN_BAD_CURRENCY ? "us$" : g->currency,
	       AMIL_CURRENCY_LEN);
	d->exponent = g->exponent;
	d->amount_minor = amount_of(g, id, kind, a);
}

/* Big-endian stores at a payload offset (any alignment). */
static inline void
put32(uint8_t *p, size_t off, uint32_t v)
{
	v = htobe32(v);
	memcpy(p + off, &v, sizeof(v));
}

static inline void
put64(uint8_t *p, size_t off, uint64_t v)
{
	v = htobe64(v);
	memcpy(p + off, &v, sizeof(v));
}

#define OFF(f) offsetof(struct amil_wire_donation, f)

/*
 * The TX fast path: the bytes of amil_wire_donation_encode(amil_gen_donation())
 * written field by field, straight into @out, without the intermediate
 * struct or the encoder's memset.  Offsets come from lib/'s struct
 * amil_wire_donation and the constant words from its encoder (see
 * wire_constants()); the unit tests compare the two byte for byte for
 * every kind.  Bytes 56..63 (the tag) are left as they were.
 */
static inline __attribute__((always_inline)) unsigned
payload_unsigned(const struct amil_gen *g, uint64_t id, uint8_t kind, uint64_t sent_ns,
		 uint32_t seq, uint8_t *out, const uint8_t **key)
{
	const struct center *c;
	uint32_t center_id;
	uint64_t a, b;

	hashes(g, id, &a, &b);
	c = &g->center[center_index(g, b)];
	center_id = c->id;
	*key = c->key;
	if (unlikely_gen(kind == AMIL_GEN_UNKNOWN_CENTER)) {
		center_id = g->unknown_center;
		*key = g->unknown_key;
	}
	memcpy(out, &g->head_wire, 4);
	put32(out, OFF(center_id), center_id);
	put64(out, OFF(donation_id), id);
	put64(out, OFF(donor_id), donor_of(a));
	put32(out, OFF(campaign_id), campaign_of(g, b));
	memcpy(out + OFF(currency),
	       unlikely_gen(kind == AMIL_GEN_BAD_CURRENCY) ? &g->bad_cur_wire : &g->cur_wire, 4);
	put64(out, OFF(amount), (uint64_t)amount_of(g, id, kind, a));
	put64(out, OFF(sent_ns), sent_ns);
	put32(out, OFF(seq), seq);
	put32(out, OFF(reserved), 0);
	return unlikely_gen(kind == AMIL_GEN_TRUNCATED) ? AMIL_WIRE_LEN - 1 : AMIL_WIRE_LEN;
}

#undef OFF

unsigned
amil_gen_payload_unsigned(const struct amil_gen *g, uint64_t id, uint8_t kind, uint64_t sent_ns,
			  uint32_t seq, uint8_t out[AMIL_WIRE_LEN], const uint8_t **key)
{
	return payload_unsigned(g, id, kind, sent_ns, seq, out, key);
}

void
amil_gen_payload_burst(const struct amil_gen *g, const uint64_t ids[], const uint8_t kinds[],
		       unsigned n, uint64_t sent_ns, uint32_t seq0, void *const out[],
		       const uint8_t *keys[])
{
	for (unsigned i = 0; i < n; i++)
		(void)payload_unsigned(g, ids[i], kinds[i], sent_ns, seq0 + i, out[i], &keys[i]);
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

	memset(out + AMIL_WIRE_TAG_OFF, 0, AMIL_TAG_LEN);
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
	/* u < f with u = x / 2^53 (x a 53-bit integer) is x < f * 2^53, and
	 * for an integer x that is x < ceil(f * 2^53): the same draws as
	 * comparing doubles, without converting one per frame.  The
	 * scaling by 2^53 is exact. */
	p->dup_below = (uint64_t)ceil(dup_frac * 9007199254740992.0);
	p->invalid_below = (uint64_t)ceil((dup_frac + invalid_frac) * 9007199254740992.0);
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

	*k = p->recent[range(rng(p), n)];
	return AMIL_GEN_PICK_DUP;
}

enum amil_gen_pick
amil_gen_plan_next(struct amil_gen_plan *p, uint64_t *k, uint8_t *kind)
{
	*kind = AMIL_GEN_VALID;
	if (!p->exact) {
		uint64_t u = rng(p) >> 11;  /* 53 bits */

		if (u < p->dup_below && p->nrecent > 0)
			return pick_dup(p, k);
		if (u >= p->dup_below && u < p->invalid_below)
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
