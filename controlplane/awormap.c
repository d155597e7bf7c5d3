/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Add-wins observed-remove map, delta-state CRDT: see awormap.h for the
 * model, the conflict rule and the wire format.
 *
 * Layout.  A name record (struct rec) holds the name and a short list of
 * entries (struct item), one per dot, sorted by dot; usually one, more
 * only while a concurrent-register conflict is unresolved (at most one per
 * writer node, because a node's put replaces everything it has seen).
 * Three indexes point into the same records: the name table (chained,
 * power-of-two), the dot table (chained, so a remove or a join finds an
 * entry by dot in O(1)), and a list per digest bucket (so a bucket-
 * restricted state encodes or joins without walking the other 255).
 * Bucket hashes are kept incrementally as the sum of the entries' hashes,
 * which is independent of insertion order, so equal stores have equal
 * digests whatever the history.
 *
 * Leaves (the second anti-entropy level) have no lists of their own: a
 * leaf-restricted state walks the buckets that hold a wanted leaf and
 * filters by leaf, which costs CPU but no memory per leaf.  Their hashes
 * (sums like the buckets') are an array of 65536, kept incrementally once
 * the map passes LHASH_MIN_NAMES names; a smaller map sums them from its
 * bucket lists when asked, because 512 KiB would dwarf it.
 *
 * Every local mutation is written as a delta first and then joined into
 * the local replica like any received delta: one code path decides what
 * a delta means, so the origin and its peers cannot disagree about it.
 *
 * Tables grow and never shrink: under register/unregister churn of the
 * same names their size stays at the high-water mark, which is the
 * memory bound the tests check.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "awormap.h"
#include "hlc.h"

/* Big-endian at any alignment.  Local copies (as in membership_wire.c):
 * lib/amil_bytes.h is internal to lib/ and controlplane/ does not use it. */
static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline void st16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void st32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void st64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

#define HDR_LEN     8
#define VV_LEN      16
#define ITEM_FIX    34   /* node, ctr, owner, hlc, value_len */
#define NAME_MIN    (1 + 1 + 2 + ITEM_FIX)
/* Leaf sets of a kind-3 state: a u16 list below this count, else the
 * bitmap (the list would be as long or longer). */
#define LEAF_LIST_MAX (AMIL_AWORMAP_LEAF_MASK_BYTES / 2)
#define LEAF_BUCKET_BYTES (AMIL_AWORMAP_LEAVES_PER_BUCKET / 8)
/* Leaves message: header, n_buckets, then per bucket its id and hashes. */
#define LEAVES_HDR  (HDR_LEN + 2)
#define LEAVES_REC  (1 + 8 * AMIL_AWORMAP_LEAVES_PER_BUCKET)
/* Names from which the leaf hashes are kept as an array (see the top). */
#define LHASH_MIN_NAMES 4096

struct rec;

struct item {
	struct item *dnext;      /* dot table chain */
	struct item *next;       /* next entry of the same name, dot order */
	struct rec *rec;
	uint64_t node, ctr;      /* the dot */
	uint64_t owner, hlc;
	uint64_t hash;           /* this entry's share of its bucket hash */
	uint64_t epoch;          /* last join that saw this dot in the message */
	uint16_t value_len;
	uint8_t value[];
};

struct rec {
	struct rec *hnext;       /* name table chain */
	struct rec *bprev, *bnext;  /* digest bucket list */
	struct item *items;      /* >= 1 while the record exists */
	uint64_t h;              /* name hash; top 8 bits: bucket */
	uint64_t ins_epoch;      /* last join that added an entry here */
	unsigned n_items;
	uint8_t len;
	uint8_t name[];
};

/* Causal context of one writer node: every counter <= max, plus cloud. */
struct cnode {
	uint64_t node, max;
	uint64_t *cloud;         /* sorted, each > max + 1 */
	size_t n, cap;
};

struct cctx {
	struct cnode *v;         /* sorted by node */
	size_t n, cap;
	size_t *mem;             /* the owner's memory counter, or NULL */
};

struct amil_awormap {
	uint64_t self;
	struct amil_hlc hlc;
	struct rec **ntab;
	size_t ntab_cap, n_names;
	struct item **dtab;
	size_t dtab_cap, n_items;
	struct rec *bucket[AMIL_AWORMAP_BUCKETS];
	uint64_t bhash[AMIL_AWORMAP_BUCKETS];
	uint64_t *lhash;         /* AMIL_AWORMAP_LEAVES sums, or NULL (small map) */
	struct cctx ctx;
	uint64_t epoch;
	size_t mem;
};

/* Fixed, public SipHash keys: digests must agree across nodes, and peers
 * are authenticated by the transport, so the key is not a secret. */
static const uint8_t name_key[crypto_shorthash_siphash24_KEYBYTES] = "amil-reg-names!";
static const uint8_t item_key[crypto_shorthash_siphash24_KEYBYTES] = "amil-reg-items!";

static uint64_t
sip(const uint8_t *key, const void *p, size_t len)
{
	uint8_t out[crypto_shorthash_siphash24_BYTES];

	crypto_shorthash_siphash24(out, p, len, key);
	return ld64(out);
}

static uint64_t
name_hash(const uint8_t *name, size_t len)
{
	return sip(name_key, name, len);
}

static unsigned
bucket_of(uint64_t h)
{
	return (unsigned)(h >> 56);
}

/* Leaf index: the bucket bits, then the next 8. */
static unsigned
leaf_of(uint64_t h)
{
	return (unsigned)(h >> 48);
}

static bool
mask_has(const uint8_t *mask, unsigned b)
{
	return mask == NULL || (mask[b / 8] >> (b % 8)) & 1;
}

/* Does leaf mask @lm (NULL: all) have any leaf of bucket @b? */
static bool
lmask_bucket(const uint8_t *lm, unsigned b)
{
	if (lm == NULL)
		return true;
	for (unsigned i = 0; i < LEAF_BUCKET_BYTES; i++)
		if (lm[b * LEAF_BUCKET_BYTES + i])
			return true;
	return false;
}

static uint64_t
dot_hash(uint64_t node, uint64_t ctr)
{
	/* splitmix64 finaliser: the table is internal, no need for SipHash */
	uint64_t z = node * 0x9e3779b97f4a7c15ull ^ ctr;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int
dot_cmp(uint64_t an, uint64_t ac, uint64_t bn, uint64_t bc)
{
	if (an != bn)
		return an < bn ? -1 : 1;
	if (ac != bc)
		return ac < bc ? -1 : 1;
	return 0;
}

static int
name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

/* ---- causal context ---------------------------------------------------- */

static void
ctx_free(struct cctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->mem)
			*c->mem -= c->v[i].cap * sizeof(uint64_t);
		free(c->v[i].cloud);
	}
	if (c->mem)
		*c->mem -= c->cap * sizeof(*c->v);
	free(c->v);
	c->v = NULL;
	c->n = c->cap = 0;
}

static struct cnode *
ctx_find(const struct cctx *c, uint64_t node)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->v[mid].node == node)
			return &c->v[mid];
		if (c->v[mid].node < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct cnode *
ctx_get(struct cctx *c, uint64_t node)
{
	size_t i;
	struct cnode *cn = ctx_find(c, node);

	if (cn)
		return cn;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4;
		struct cnode *v = realloc(c->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		if (c->mem)
			*c->mem += (cap - c->cap) * sizeof(*v);
		c->v = v;
		c->cap = cap;
	}
	for (i = c->n; i > 0 && c->v[i - 1].node > node; i--)
		c->v[i] = c->v[i - 1];
	memset(&c->v[i], 0, sizeof(c->v[i]));
	c->v[i].node = node;
	c->n++;
	return &c->v[i];
}

static bool
ctx_covers(const struct cctx *c, uint64_t node, uint64_t ctr)
{
	const struct cnode *cn = ctx_find(c, node);
	size_t lo = 0, hi;

	if (cn == NULL)
		return false;
	if (ctr <= cn->max)
		return true;
	hi = cn->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (cn->cloud[mid] == ctr)
			return true;
		if (cn->cloud[mid] < ctr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Fold cloud dots that became contiguous into max, and drop those <= max:
 * this is the compaction that keeps removed dots from costing memory. */
static void
cnode_fold(struct cctx *c, struct cnode *cn)
{
	size_t k = 0;

	while (k < cn->n && cn->cloud[k] <= cn->max + 1) {
		if (cn->cloud[k] == cn->max + 1)
			cn->max++;
		k++;
	}
	if (k) {
		memmove(cn->cloud, cn->cloud + k, (cn->n - k) * sizeof(uint64_t));
		cn->n -= k;
	}
	/* A gap that closed gives its storage back: after a burst of lost
	 * deltas the cloud would otherwise keep its peak size for good. */
	if (cn->n == 0 && cn->cap) {
		if (c->mem)
			*c->mem -= cn->cap * sizeof(uint64_t);
		free(cn->cloud);
		cn->cloud = NULL;
		cn->cap = 0;
	}
}

static int
ctx_raise(struct cctx *c, uint64_t node, uint64_t max)
{
	struct cnode *cn = ctx_get(c, node);

	if (cn == NULL)
		return -ENOMEM;
	if (max > cn->max) {
		cn->max = max;
		cnode_fold(c, cn);
	}
	return 0;
}

static int
ctx_add(struct cctx *c, uint64_t node, uint64_t ctr)
{
	struct cnode *cn = ctx_get(c, node);
	size_t lo = 0, hi;

	if (cn == NULL)
		return -ENOMEM;
	if (ctr <= cn->max)
		return 0;
	if (ctr == cn->max + 1) {
		cn->max++;
		cnode_fold(c, cn);
		return 0;
	}
	hi = cn->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (cn->cloud[mid] == ctr)
			return 0;
		if (cn->cloud[mid] < ctr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (cn->n == cn->cap) {
		size_t cap = cn->cap ? cn->cap * 2 : 4;
		uint64_t *v = realloc(cn->cloud, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		if (c->mem)
			*c->mem += (cap - cn->cap) * sizeof(*v);
		cn->cloud = v;
		cn->cap = cap;
	}
	memmove(cn->cloud + lo + 1, cn->cloud + lo, (cn->n - lo) * sizeof(uint64_t));
	cn->cloud[lo] = ctr;
	cn->n++;
	return 0;
}

/*
 * Encoded context.  A state sends the compact form (vector + cloud); a
 * delta sends its few dots one by one (@dots_only), so that joining a
 * delta never has to walk a version-vector range over the whole store.
 */
static size_t
ctx_enc_len(const struct cctx *c, bool dots_only)
{
	size_t len = 8;

	for (size_t i = 0; i < c->n; i++)
		len += (dots_only ? c->v[i].max : c->v[i].max != 0) * VV_LEN +
		       c->v[i].n * VV_LEN;
	return len;
}

static uint8_t *
ctx_enc(const struct cctx *c, uint8_t *p, bool dots_only)
{
	uint32_t n_vv = 0, n_cloud = 0;
	uint8_t *start = p;

	p += 4;
	for (size_t i = 0; i < c->n && !dots_only; i++) {
		if (c->v[i].max == 0)
			continue;
		st64(p, c->v[i].node);
		st64(p + 8, c->v[i].max);
		p += VV_LEN;
		n_vv++;
	}
	st32(start, n_vv);
	start = p;
	p += 4;
	for (size_t i = 0; i < c->n; i++) {
		for (uint64_t ctr = 1; dots_only && ctr <= c->v[i].max; ctr++) {
			st64(p, c->v[i].node);
			st64(p + 8, ctr);
			p += VV_LEN;
			n_cloud++;
		}
		for (size_t j = 0; j < c->v[i].n; j++) {
			st64(p, c->v[i].node);
			st64(p + 8, c->v[i].cloud[j]);
			p += VV_LEN;
			n_cloud++;
		}
	}
	st32(start, n_cloud);
	return p;
}

/* ---- tables ------------------------------------------------------------- */

static struct rec *
nfind(const struct amil_awormap *m, const uint8_t *name, size_t len, uint64_t h)
{
	struct rec *r;

	for (r = m->ntab[h & (m->ntab_cap - 1)]; r; r = r->hnext)
		if (r->h == h && r->len == len && memcmp(r->name, name, len) == 0)
			return r;
	return NULL;
}

static struct item *
dfind(const struct amil_awormap *m, uint64_t node, uint64_t ctr)
{
	struct item *it;

	for (it = m->dtab[dot_hash(node, ctr) & (m->dtab_cap - 1)]; it; it = it->dnext)
		if (it->node == node && it->ctr == ctr)
			return it;
	return NULL;
}

/* Double a chained table when it is full; failure only costs speed. */
static void
ntab_grow(struct amil_awormap *m)
{
	size_t cap = m->ntab_cap * 2;
	struct rec **t;

	if (m->n_names < m->ntab_cap || (t = calloc(cap, sizeof(*t))) == NULL)
		return;
	for (size_t i = 0; i < m->ntab_cap; i++) {
		struct rec *r, *nx;

		for (r = m->ntab[i]; r; r = nx) {
			nx = r->hnext;
			r->hnext = t[r->h & (cap - 1)];
			t[r->h & (cap - 1)] = r;
		}
	}
	free(m->ntab);
	m->mem += (cap - m->ntab_cap) * sizeof(*t);
	m->ntab = t;
	m->ntab_cap = cap;
}

static void
dtab_grow(struct amil_awormap *m)
{
	size_t cap = m->dtab_cap * 2;
	struct item **t;

	if (m->n_items < m->dtab_cap || (t = calloc(cap, sizeof(*t))) == NULL)
		return;
	for (size_t i = 0; i < m->dtab_cap; i++) {
		struct item *it, *nx;

		for (it = m->dtab[i]; it; it = nx) {
			size_t b = dot_hash(it->node, it->ctr) & (cap - 1);

			nx = it->dnext;
			it->dnext = t[b];
			t[b] = it;
		}
	}
	free(m->dtab);
	m->mem += (cap - m->dtab_cap) * sizeof(*t);
	m->dtab = t;
	m->dtab_cap = cap;
}

/* Start keeping the leaf hashes as an array; failure only costs speed
 * (leaf_hashes() then sums them from the bucket lists). */
static void
lhash_build(struct amil_awormap *m)
{
	uint64_t *l = calloc(AMIL_AWORMAP_LEAVES, sizeof(*l));

	if (l == NULL)
		return;
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		for (const struct rec *r = m->bucket[b]; r; r = r->bnext)
			for (const struct item *it = r->items; it; it = it->next)
				l[leaf_of(r->h)] += it->hash;
	m->lhash = l;
	m->mem += AMIL_AWORMAP_LEAVES * sizeof(*l);
}

/* The 256 leaf hashes of bucket @b into @out. */
static void
leaf_hashes(const struct amil_awormap *m, unsigned b,
	    uint64_t out[AMIL_AWORMAP_LEAVES_PER_BUCKET])
{
	if (m->lhash) {
		memcpy(out, m->lhash + (size_t)b * AMIL_AWORMAP_LEAVES_PER_BUCKET,
		       AMIL_AWORMAP_LEAVES_PER_BUCKET * sizeof(*out));
		return;
	}
	memset(out, 0, AMIL_AWORMAP_LEAVES_PER_BUCKET * sizeof(*out));
	for (const struct rec *r = m->bucket[b]; r; r = r->bnext)
		for (const struct item *it = r->items; it; it = it->next)
			out[leaf_of(r->h) % AMIL_AWORMAP_LEAVES_PER_BUCKET] += it->hash;
}

static struct rec *
rec_new(struct amil_awormap *m, const uint8_t *name, size_t len, uint64_t h)
{
	struct rec *r = calloc(1, sizeof(*r) + len);
	unsigned b = bucket_of(h);

	if (r == NULL)
		return NULL;
	m->mem += sizeof(*r) + len;
	r->h = h;
	r->len = (uint8_t)len;
	memcpy(r->name, name, len);
	r->hnext = m->ntab[h & (m->ntab_cap - 1)];
	m->ntab[h & (m->ntab_cap - 1)] = r;
	r->bnext = m->bucket[b];
	if (r->bnext)
		r->bnext->bprev = r;
	m->bucket[b] = r;
	m->n_names++;
	ntab_grow(m);
	if (m->lhash == NULL && m->n_names >= LHASH_MIN_NAMES)
		lhash_build(m);
	return r;
}

static void
rec_free(struct amil_awormap *m, struct rec *r)
{
	struct rec **pp = &m->ntab[r->h & (m->ntab_cap - 1)];

	while (*pp != r)
		pp = &(*pp)->hnext;
	*pp = r->hnext;
	if (r->bprev)
		r->bprev->bnext = r->bnext;
	else
		m->bucket[bucket_of(r->h)] = r->bnext;
	if (r->bnext)
		r->bnext->bprev = r->bprev;
	m->n_names--;
	m->mem -= sizeof(*r) + r->len;
	free(r);
}

static uint64_t
item_hash(const struct rec *r, const struct item *it)
{
	uint8_t buf[1 + AMIL_AWORMAP_NAME_MAX + ITEM_FIX + AMIL_AWORMAP_VALUE_MAX];
	uint8_t *p = buf;

	*p++ = r->len;
	memcpy(p, r->name, r->len);
	p += r->len;
	st64(p, it->node);
	st64(p + 8, it->ctr);
	st64(p + 16, it->owner);
	st64(p + 24, it->hlc);
	st16(p + 32, it->value_len);
	p += ITEM_FIX;
	memcpy(p, it->value, it->value_len);
	return sip(item_key, buf, (size_t)(p - buf) + it->value_len);
}

static struct item *
item_new(struct amil_awormap *m, struct rec *r, uint64_t node, uint64_t ctr,
	 uint64_t owner, uint64_t hlc, const uint8_t *value, uint16_t vlen)
{
	struct item *it = calloc(1, sizeof(*it) + vlen), **pp;
	size_t b;

	if (it == NULL)
		return NULL;
	m->mem += sizeof(*it) + vlen;
	it->rec = r;
	it->node = node;
	it->ctr = ctr;
	it->owner = owner;
	it->hlc = hlc;
	it->value_len = vlen;
	memcpy(it->value, value, vlen);
	it->hash = item_hash(r, it);
	m->bhash[bucket_of(r->h)] += it->hash;
	if (m->lhash)
		m->lhash[leaf_of(r->h)] += it->hash;
	for (pp = &r->items; *pp && dot_cmp((*pp)->node, (*pp)->ctr, node, ctr) < 0;
	     pp = &(*pp)->next)
		;
	it->next = *pp;
	*pp = it;
	r->n_items++;
	b = dot_hash(node, ctr) & (m->dtab_cap - 1);
	it->dnext = m->dtab[b];
	m->dtab[b] = it;
	m->n_items++;
	dtab_grow(m);
	return it;
}

/* Unlink and free @it; frees its record too when it was the last entry. */
static void
item_free(struct amil_awormap *m, struct item *it)
{
	struct rec *r = it->rec;
	struct item **pp = &m->dtab[dot_hash(it->node, it->ctr) & (m->dtab_cap - 1)];

	while (*pp != it)
		pp = &(*pp)->dnext;
	*pp = it->dnext;
	for (pp = &r->items; *pp != it; pp = &(*pp)->next)
		;
	*pp = it->next;
	r->n_items--;
	m->n_items--;
	m->bhash[bucket_of(r->h)] -= it->hash;
	if (m->lhash)
		m->lhash[leaf_of(r->h)] -= it->hash;
	m->mem -= sizeof(*it) + it->value_len;
	free(it);
	if (r->items == NULL)
		rec_free(m, r);
}

/* The conflict rule: greatest (HLC, writer node id), then counter. */
static const struct item *
winner(const struct rec *r)
{
	const struct item *w = r->items;

	for (const struct item *it = w->next; it; it = it->next) {
		int c = amil_hlc_cmp(it->hlc, it->node, w->hlc, w->node);

		if (c > 0 || (c == 0 && it->ctr > w->ctr))
			w = it;
	}
	return w;
}

static void
to_entry(const struct item *it, struct amil_awormap_entry *e)
{
	e->name = it->rec->name;
	e->name_len = it->rec->len;
	e->owner = it->owner;
	e->value = it->value;
	e->value_len = it->value_len;
	e->hlc = it->hlc;
	e->dot_node = it->node;
	e->dot_ctr = it->ctr;
}

/* ---- lifetime ----------------------------------------------------------- */

struct amil_awormap *
amil_awormap_new(uint64_t self_id, uint64_t max_drift_ns)
{
	struct amil_awormap *m;

	if (self_id == 0) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto fail_map;
	m->self = self_id;
	amil_hlc_init(&m->hlc, max_drift_ns);
	m->ntab_cap = m->dtab_cap = 64;
	m->ntab = calloc(m->ntab_cap, sizeof(*m->ntab));
	if (m->ntab == NULL)
		goto fail_ntab;
	m->dtab = calloc(m->dtab_cap, sizeof(*m->dtab));
	if (m->dtab == NULL)
		goto fail_dtab;
	m->ctx.mem = &m->mem;
	m->mem = sizeof(*m) + (m->ntab_cap + m->dtab_cap) * sizeof(void *);
	return m;

fail_dtab:
	free(m->ntab);
fail_ntab:
	free(m);
fail_map:
	errno = ENOMEM;
	return NULL;
}

void
amil_awormap_destroy(struct amil_awormap **mp)
{
	struct amil_awormap *m;

	if (mp == NULL || *mp == NULL)
		return;
	m = *mp;
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		while (m->bucket[b])
			item_free(m, m->bucket[b]->items);
	ctx_free(&m->ctx);
	free(m->lhash);
	free(m->dtab);
	free(m->ntab);
	free(m);
	*mp = NULL;
}

/* ---- decoding ------------------------------------------------------------ */

/* A checked message: where each section starts. */
struct msg {
	int kind;
	uint64_t root;           /* kind 5: the sender's digest root */
	const uint8_t *mask;     /* kind 2: bucket mask; kind 3: leaf bitmap or NULL */
	const uint8_t *llist;    /* kind 3 below LEAF_LIST_MAX leaves: the u16 list */
	uint32_t n_leaves;       /* kind 3: leaves covered */
	const uint8_t *vv, *cloud, *names, *end;
	uint32_t n_vv, n_cloud, n_names;
};

/* First index in the kind-3 leaf list that is >= @leaf. */
static uint32_t
llist_lower(const struct msg *g, unsigned leaf)
{
	uint32_t lo = 0, hi = g->n_leaves;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (ld16(g->llist + 2 * (size_t)mid) < leaf)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Does the message cover the name with hash @h (a delta covers all)? */
static bool
msg_name(const struct msg *g, uint64_t h)
{
	uint32_t i;

	switch (g->kind) {
	case AMIL_AWORMAP_STATE:
		return mask_has(g->mask, bucket_of(h));
	case AMIL_AWORMAP_STATE_LEAVES:
		if (g->llist == NULL)
			return mask_has(g->mask, leaf_of(h));
		i = llist_lower(g, leaf_of(h));
		return i < g->n_leaves && ld16(g->llist + 2 * (size_t)i) == leaf_of(h);
	default:
		return true;
	}
}

/* Does the message cover any name of bucket @b? */
static bool
msg_bucket(const struct msg *g, unsigned b)
{
	uint32_t i;

	switch (g->kind) {
	case AMIL_AWORMAP_STATE:
		return mask_has(g->mask, b);
	case AMIL_AWORMAP_STATE_LEAVES:
		if (g->llist == NULL)
			return lmask_bucket(g->mask, b);
		i = llist_lower(g, b * AMIL_AWORMAP_LEAVES_PER_BUCKET);
		return i < g->n_leaves &&
		       ld16(g->llist + 2 * (size_t)i) / AMIL_AWORMAP_LEAVES_PER_BUCKET == b;
	default:
		return true;
	}
}

static unsigned
popcount_bytes(const uint8_t *p, size_t n)
{
	unsigned c = 0;

	for (size_t i = 0; i < n; i++)
		c += (unsigned)__builtin_popcount(p[i]);
	return c;
}

static uint64_t
msg_vv(const struct msg *g, uint64_t node)
{
	uint32_t lo = 0, hi = g->n_vv;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		uint64_t n = ld64(g->vv + (size_t)mid * VV_LEN);

		if (n == node)
			return ld64(g->vv + (size_t)mid * VV_LEN + 8);
		if (n < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static bool
msg_covers(const struct msg *g, uint64_t node, uint64_t ctr)
{
	uint32_t lo = 0, hi = g->n_cloud;

	if (ctr <= msg_vv(g, node))
		return true;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		const uint8_t *p = g->cloud + (size_t)mid * VV_LEN;
		int c = dot_cmp(ld64(p), ld64(p + 8), node, ctr);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int
dot_order(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return dot_cmp(x[0], x[1], y[0], y[1]);
}

/*
 * A dot names one entry: the same dot under two names (or twice) is not a
 * state any replica can hold, and joining it would make the result depend
 * on which copy came first.  Dots ascend within a name, not across names,
 * so this needs a sorted copy.
 */
static int
unique_dots(const struct msg *g, size_t total)
{
	const uint8_t *p = g->names;
	uint64_t *v;
	size_t k = 0;
	int rc = 0;

	if (total < 2)
		return 0;
	v = malloc(total * 2 * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->n_names; i++) {
		unsigned n_items;

		p += 1 + *p;
		n_items = ld16(p);
		p += 2;
		for (unsigned j = 0; j < n_items; j++, p += ITEM_FIX + ld16(p + 32)) {
			v[2 * k] = ld64(p);
			v[2 * k + 1] = ld64(p + 8);
			k++;
		}
	}
	qsort(v, k, 2 * sizeof(*v), dot_order);
	for (size_t i = 1; i < k && rc == 0; i++)
		if (v[2 * i] == v[2 * i - 2] && v[2 * i + 1] == v[2 * i - 1])
			rc = -EBADMSG;
	free(v);
	return rc;
}

/* Check everything awormap.h promises about a message, touching nothing. */
static int
parse(const uint8_t *buf, size_t len, struct msg *g)
{
	const uint8_t *p = buf, *end = buf + len, *prev_name = NULL;
	size_t prev_len = 0, total = 0;

	if (buf == NULL || len < HDR_LEN || ld16(p) != AMIL_AWORMAP_MAGIC)
		return -EBADMSG;
	if (p[2] != AMIL_AWORMAP_VERSION)
		return -EPROTONOSUPPORT;
	g->kind = p[3];
	if ((g->kind != AMIL_AWORMAP_DELTA && g->kind != AMIL_AWORMAP_STATE &&
	     g->kind != AMIL_AWORMAP_STATE_LEAVES && g->kind != AMIL_AWORMAP_CONTEXT) ||
	    ld32(p + 4))
		return -EBADMSG;
	p += HDR_LEN;
	g->mask = g->llist = NULL;
	g->n_leaves = 0;
	g->root = 0;
	if (g->kind == AMIL_AWORMAP_CONTEXT) {
		if (end - p < 8)
			return -EBADMSG;
		g->root = ld64(p);
		p += 8;
	} else if (g->kind == AMIL_AWORMAP_STATE) {
		if ((size_t)(end - p) < AMIL_AWORMAP_MASK_BYTES)
			return -EBADMSG;
		g->mask = p;
		p += AMIL_AWORMAP_MASK_BYTES;
	} else if (g->kind == AMIL_AWORMAP_STATE_LEAVES) {
		if (end - p < 4)
			return -EBADMSG;
		g->n_leaves = ld32(p);
		p += 4;
		if (g->n_leaves > AMIL_AWORMAP_LEAVES)
			return -EBADMSG;
		if (g->n_leaves < LEAF_LIST_MAX) {
			/* the shorter form is the only form: one encoding */
			if ((size_t)(end - p) / 2 < g->n_leaves)
				return -EBADMSG;
			g->llist = p;
			for (uint32_t i = 1; i < g->n_leaves; i++)
				if (ld16(p + 2 * (size_t)i) <= ld16(p + 2 * (size_t)i - 2))
					return -EBADMSG;
			p += 2 * (size_t)g->n_leaves;
		} else {
			if ((size_t)(end - p) < AMIL_AWORMAP_LEAF_MASK_BYTES ||
			    popcount_bytes(p, AMIL_AWORMAP_LEAF_MASK_BYTES) != g->n_leaves)
				return -EBADMSG;
			g->mask = p;
			p += AMIL_AWORMAP_LEAF_MASK_BYTES;
		}
	}

	if (end - p < 4)
		return -EBADMSG;
	g->n_vv = ld32(p);
	p += 4;
	if ((size_t)(end - p) / VV_LEN < g->n_vv)
		return -EBADMSG;
	g->vv = p;
	if (g->kind == AMIL_AWORMAP_DELTA && g->n_vv)
		return -EBADMSG;
	for (uint32_t i = 0; i < g->n_vv; i++, p += VV_LEN)
		if (ld64(p) == 0 || ld64(p + 8) == 0 || (i && ld64(p) <= ld64(p - VV_LEN)))
			return -EBADMSG;

	if (end - p < 4)
		return -EBADMSG;
	g->n_cloud = ld32(p);
	p += 4;
	if ((size_t)(end - p) / VV_LEN < g->n_cloud)
		return -EBADMSG;
	g->cloud = p;
	for (uint32_t i = 0; i < g->n_cloud; i++, p += VV_LEN) {
		uint64_t node = ld64(p), ctr = ld64(p + 8), max = msg_vv(g, node);

		/* canonical state: a dot next to the vector would have been
		 * folded into it; a delta lists its dots as they are */
		if (node == 0 || ctr == 0)
			return -EBADMSG;
		if (g->kind != AMIL_AWORMAP_DELTA && (max == UINT64_MAX || ctr <= max + 1))
			return -EBADMSG;
		if (i && dot_cmp(ld64(p - VV_LEN), ld64(p - VV_LEN + 8), node, ctr) >= 0)
			return -EBADMSG;
	}

	/* a context message ends with its cloud: no name count, so that
	 * nobody mistakes it for a state of an empty store */
	if (g->kind == AMIL_AWORMAP_CONTEXT) {
		if (p != end)
			return -EBADMSG;
		g->n_names = 0;
		g->names = g->end = end;
		return 0;
	}

	if (end - p < 4)
		return -EBADMSG;
	g->n_names = ld32(p);
	p += 4;
	if ((size_t)(end - p) / NAME_MIN < g->n_names)
		return -EBADMSG;
	g->names = p;
	for (uint32_t i = 0; i < g->n_names; i++) {
		size_t nlen;
		unsigned n_items;
		const uint8_t *name;
		uint64_t pn = 0, pc = 0;

		if (end - p < 1 || (nlen = *p) == 0 || (size_t)(end - p) < 1 + nlen + 2)
			return -EBADMSG;
		name = p + 1;
		if (prev_name && name_cmp(prev_name, prev_len, name, nlen) >= 0)
			return -EBADMSG;
		if (!msg_name(g, name_hash(name, nlen)))
			return -EBADMSG;
		prev_name = name;
		prev_len = nlen;
		p += 1 + nlen;
		n_items = ld16(p);
		p += 2;
		if (n_items == 0)
			return -EBADMSG;
		total += n_items;
		for (unsigned j = 0; j < n_items; j++) {
			uint64_t node, ctr;
			size_t vlen;

			if ((size_t)(end - p) < ITEM_FIX)
				return -EBADMSG;
			node = ld64(p);
			ctr = ld64(p + 8);
			vlen = ld16(p + 32);
			if (node == 0 || ctr == 0 || ld64(p + 16) == 0 ||
			    vlen > AMIL_AWORMAP_VALUE_MAX ||
			    (size_t)(end - p) - ITEM_FIX < vlen)
				return -EBADMSG;
			if (j && dot_cmp(pn, pc, node, ctr) >= 0)
				return -EBADMSG;
			if (!msg_covers(g, node, ctr))
				return -EBADMSG;
			pn = node;
			pc = ctr;
			p += ITEM_FIX + vlen;
		}
	}
	if (p != end)
		return -EBADMSG;
	g->end = end;
	return unique_dots(g, total);
}

int
amil_awormap_check(const uint8_t *buf, size_t len, int *kind)
{
	struct msg g;
	int rc = parse(buf, len, &g);

	if (rc == 0 && kind)
		*kind = g.kind;
	return rc;
}

/* ---- join --------------------------------------------------------------- */

static void
report(struct amil_awormap *m, const struct msg *g, amil_awormap_conflict_fn fn, void *ctx)
{
	const uint8_t *p = g->names;

	for (uint32_t i = 0; i < g->n_names; i++) {
		size_t nlen = *p;
		const uint8_t *name = p + 1;
		unsigned n_items;
		struct rec *r;

		p += 1 + nlen;
		n_items = ld16(p);
		p += 2;
		for (unsigned j = 0; j < n_items; j++)
			p += ITEM_FIX + ld16(p + 32);
		r = nfind(m, name, nlen, name_hash(name, nlen));
		if (r && r->ins_epoch == m->epoch && r->n_items >= 2) {
			const struct item *w = winner(r);
			struct amil_awormap_entry we, le;

			to_entry(w, &we);
			for (const struct item *it = r->items; it; it = it->next) {
				if (it == w)
					continue;
				to_entry(it, &le);
				fn(ctx, &we, &le);
			}
		}
	}
}

/*
 * Does the message cover every name?  A delta's context holds only the
 * dots it observed or created, and a full state's context describes its
 * whole store, so either may be joined whole.  A restricted state's
 * context also describes names it does not carry (see the join, step 3).
 */
static bool
msg_covers_all(const struct msg *g)
{
	static const uint8_t all[AMIL_AWORMAP_MASK_BYTES] = {
		[0 ... AMIL_AWORMAP_MASK_BYTES - 1] = 0xff };

	switch (g->kind) {
	case AMIL_AWORMAP_STATE:
		return memcmp(g->mask, all, sizeof(all)) == 0;
	case AMIL_AWORMAP_STATE_LEAVES:
		return g->n_leaves == AMIL_AWORMAP_LEAVES;
	default:
		return true;
	}
}

/* Take the message's whole context (vector and cloud) into ours. */
static int
ctx_join(struct amil_awormap *m, const struct msg *g)
{
	for (uint32_t i = 0; i < g->n_vv; i++) {
		const uint8_t *q = g->vv + (size_t)i * VV_LEN;

		if (ctx_raise(&m->ctx, ld64(q), ld64(q + 8)))
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < g->n_cloud; i++) {
		const uint8_t *q = g->cloud + (size_t)i * VV_LEN;

		if (ctx_add(&m->ctx, ld64(q), ld64(q + 8)))
			return -ENOMEM;
	}
	return 0;
}

/* The digest root: a hash over the bucket hashes, not over the context,
 * so that equal stores have equal roots whatever their contexts. */
static uint64_t
root_of(const struct amil_awormap *m)
{
	uint8_t buf[8 * AMIL_AWORMAP_BUCKETS];

	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		st64(buf + 8 * b, m->bhash[b]);
	return sip(name_key, buf, sizeof(buf));
}

/* Step 2 of the join: @it's dot is covered by the sender's context but
 * not by its store, so @it was removed there.  Its dot stays in the
 * context as "seen and removed"; every stored dot is already in it, so
 * the ctx_add() only guards that invariant (and allocates nothing while
 * it holds).  Returns 0 or -ENOMEM (then @it stays). */
static int
drop(struct amil_awormap *m, struct item *it)
{
	if (ctx_add(&m->ctx, it->node, it->ctr))
		return -ENOMEM;
	item_free(m, it);
	return 0;
}

int
amil_awormap_join(struct amil_awormap *m, uint64_t now_ns, const uint8_t *buf,
		  size_t len, amil_awormap_conflict_fn conflict, void *ctx)
{
	struct msg g;
	const uint8_t *p;
	int rc = parse(buf, len, &g);

	if (rc)
		return rc;
	/* A context message: equal roots mean equal stores, so every dot of
	 * the sender's context that ours lacks is of an entry both removed
	 * (awormap.h, "Context messages").  With another root a lacking dot
	 * may be an entry still in flight to us: take nothing. */
	if (g.kind == AMIL_AWORMAP_CONTEXT)
		return root_of(m) == g.root ? ctx_join(m, &g) : -ESTALE;
	m->epoch++;

	/* 1. Entries in the message: keep what both have, add what this
	 *    replica has not seen, skip what it saw and removed. */
	p = g.names;
	for (uint32_t i = 0; i < g.n_names; i++) {
		size_t nlen = *p;
		const uint8_t *name = p + 1;
		uint64_t h = name_hash(name, nlen);
		struct rec *r = nfind(m, name, nlen, h);
		unsigned n_items;

		p += 1 + nlen;
		n_items = ld16(p);
		p += 2;
		for (unsigned j = 0; j < n_items; j++, p += ITEM_FIX + ld16(p + 32)) {
			uint64_t node = ld64(p), ctr = ld64(p + 8), hlc = ld64(p + 24);
			struct item *it = dfind(m, node, ctr);

			if (it) {
				it->epoch = m->epoch;
				continue;
			}
			if (ctx_covers(&m->ctx, node, ctr))
				continue;
			if (r == NULL && (r = rec_new(m, name, nlen, h)) == NULL)
				return -ENOMEM;
			it = item_new(m, r, node, ctr, ld64(p + 16), hlc, p + ITEM_FIX,
				      ld16(p + 32));
			if (it == NULL) {
				if (r->items == NULL)
					rec_free(m, r);
				return -ENOMEM;
			}
			/* every stored dot is in the context (a dot in the
			 * context but not the store means "removed"), so the
			 * entry goes again if its dot cannot be recorded */
			if (ctx_add(&m->ctx, node, ctr)) {
				item_free(m, it);
				return -ENOMEM;
			}
			it->epoch = m->epoch;
			r->ins_epoch = m->epoch;
			(void)amil_hlc_update(&m->hlc, now_ns, hlc);
		}
	}

	/* 2. Entries here that the sender saw (its context) but no longer
	 *    has: removed there, so removed here.  Cloud dots by index;
	 *    vector ranges by walking the buckets the message covers (for a
	 *    kind-3 state, only the names in its leaves). */
	for (uint32_t i = 0; i < g.n_cloud; i++) {
		const uint8_t *q = g.cloud + (size_t)i * VV_LEN;
		struct item *it = dfind(m, ld64(q), ld64(q + 8));

		if (it && it->epoch != m->epoch && msg_name(&g, it->rec->h) && drop(m, it))
			return -ENOMEM;
	}
	if (g.n_vv) {
		for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++) {
			struct rec *r, *rnext;

			if (!msg_bucket(&g, b))
				continue;
			for (r = m->bucket[b]; r; r = rnext) {
				struct item *it, *inext;

				/* drop() may free r: read what we need first */
				rnext = r->bnext;
				if (g.kind == AMIL_AWORMAP_STATE_LEAVES && !msg_name(&g, r->h))
					continue;
				for (it = r->items; it; it = inext) {
					inext = it->next;
					if (it->epoch != m->epoch &&
					    it->ctr <= msg_vv(&g, it->node)) {
						bool last = r->n_items == 1;

						if (drop(m, it))
							return -ENOMEM;
						if (last)
							break;
					}
				}
			}
		}
	}

	/* 3. The contexts join, for a delta or a full state only.  A
	 *    restricted state carries its sender's whole context but only
	 *    the entries of the covered names: a dot of an uncovered name
	 *    that this replica lacks (its delta still in flight) would turn
	 *    into "seen and removed" here, so the entry would be refused on
	 *    arrival and our next restricted state would remove it from our
	 *    peers.  So a restricted join grows the context only by what it
	 *    integrated: the dots it added (step 1) and removed (step 2,
	 *    already in the context).  Contexts may then differ between
	 *    replicas with equal stores; the digest root ignores them. */
	if (msg_covers_all(&g) && ctx_join(m, &g))
		return -ENOMEM;

	if (conflict)
		report(m, &g, conflict, ctx);
	return 0;
}

/* ---- local mutations ------------------------------------------------------ */

static uint8_t *
put_hdr(uint8_t *p, int kind)
{
	st16(p, AMIL_AWORMAP_MAGIC);
	p[2] = AMIL_AWORMAP_VERSION;
	p[3] = (uint8_t)kind;
	st32(p + 4, 0);
	return p + HDR_LEN;
}

static uint8_t *
put_item(uint8_t *p, uint64_t node, uint64_t ctr, uint64_t owner, uint64_t hlc,
	 const void *value, size_t vlen)
{
	st64(p, node);
	st64(p + 8, ctr);
	st64(p + 16, owner);
	st64(p + 24, hlc);
	st16(p + 32, (uint16_t)vlen);
	if (vlen)
		memcpy(p + ITEM_FIX, value, vlen);
	return p + ITEM_FIX + vlen;
}

/*
 * Build the delta "context @dc, and (when @name_len) one name with one new
 * entry", join it locally, hand it to the caller.
 */
static int
emit(struct amil_awormap *m, uint64_t now_ns, struct cctx *dc, const void *name,
     size_t name_len, uint64_t ctr, uint64_t owner, uint64_t hlc, const void *value,
     size_t vlen, uint8_t **delta, size_t *delta_len)
{
	size_t len = HDR_LEN + ctx_enc_len(dc, true) + 4 +
		     (name_len ? 1 + name_len + 2 + ITEM_FIX + vlen : 0);
	uint8_t *buf = malloc(len), *p;
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	p = put_hdr(buf, AMIL_AWORMAP_DELTA);
	p = ctx_enc(dc, p, true);
	st32(p, name_len ? 1 : 0);
	p += 4;
	if (name_len) {
		*p++ = (uint8_t)name_len;
		memcpy(p, name, name_len);
		p += name_len;
		st16(p, 1);
		p = put_item(p + 2, m->self, ctr, owner, hlc, value, vlen);
	}
	rc = amil_awormap_join(m, now_ns, buf, len, NULL, NULL);
	if (rc) {
		free(buf);
		return rc;
	}
	*delta = buf;
	*delta_len = len;
	return 0;
}

static int
check_name(const void *name, size_t name_len)
{
	return name == NULL || name_len == 0 || name_len > AMIL_AWORMAP_NAME_MAX ? -EINVAL : 0;
}

int
amil_awormap_put(struct amil_awormap *m, uint64_t now_ns, const void *name,
		 size_t name_len, uint64_t owner, const void *value, size_t value_len,
		 uint8_t **delta, size_t *delta_len)
{
	struct cctx dc = { 0 };
	const struct cnode *self;
	struct rec *r;
	uint64_t ctr;
	int rc;

	if (check_name(name, name_len) || owner == 0 || value_len > AMIL_AWORMAP_VALUE_MAX ||
	    (value == NULL && value_len))
		return -EINVAL;
	/* the next own counter: own dots are contiguous unless a peer sent
	 * dots of an earlier life of this id (see awormap.h, node ids) */
	self = ctx_find(&m->ctx, m->self);
	ctr = self ? (self->n ? self->cloud[self->n - 1] : self->max) + 1 : 1;
	r = nfind(m, name, name_len, name_hash(name, name_len));
	for (const struct item *it = r ? r->items : NULL; it; it = it->next)
		if ((rc = ctx_add(&dc, it->node, it->ctr)))
			goto out;
	if ((rc = ctx_add(&dc, m->self, ctr)))
		goto out;
	rc = emit(m, now_ns, &dc, name, name_len, ctr, owner, amil_hlc_now(&m->hlc, now_ns),
		  value, value_len, delta, delta_len);
out:
	ctx_free(&dc);
	return rc;
}

/* Observed-remove of @name's entries: all of them, or only the losers. */
static int
remove_dots(struct amil_awormap *m, const void *name, size_t name_len, bool losers,
	    uint8_t **delta, size_t *delta_len)
{
	struct cctx dc = { 0 };
	const struct item *w;
	struct rec *r;
	int rc;

	if (check_name(name, name_len))
		return -EINVAL;
	r = nfind(m, name, name_len, name_hash(name, name_len));
	if (r == NULL || (losers && r->n_items < 2))
		return -ENOENT;
	w = losers ? winner(r) : NULL;
	for (const struct item *it = r->items; it; it = it->next)
		if (it != w && (rc = ctx_add(&dc, it->node, it->ctr)))
			goto out;
	rc = emit(m, 0, &dc, NULL, 0, 0, 0, 0, NULL, 0, delta, delta_len);
out:
	ctx_free(&dc);
	return rc;
}

int
amil_awormap_remove(struct amil_awormap *m, const void *name, size_t name_len,
		    uint8_t **delta, size_t *delta_len)
{
	return remove_dots(m, name, name_len, false, delta, delta_len);
}

int
amil_awormap_resolve(struct amil_awormap *m, const void *name, size_t name_len,
		     uint8_t **delta, size_t *delta_len)
{
	return remove_dots(m, name, name_len, true, delta, delta_len);
}

/* ---- reads ------------------------------------------------------------------ */

int
amil_awormap_lookup(const struct amil_awormap *m, const void *name, size_t name_len,
		    struct amil_awormap_entry *out)
{
	const struct rec *r;

	if (check_name(name, name_len))
		return -ENOENT;
	r = nfind(m, name, name_len, name_hash(name, name_len));
	if (r == NULL)
		return -ENOENT;
	to_entry(winner(r), out);
	return 0;
}

static int
walk(const struct amil_awormap *m, bool all, amil_awormap_iter_fn fn, void *ctx)
{
	struct amil_awormap_entry e;
	int rc;

	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++) {
		for (const struct rec *r = m->bucket[b]; r; r = r->bnext) {
			if (!all) {
				to_entry(winner(r), &e);
				if ((rc = fn(ctx, &e)))
					return rc;
				continue;
			}
			for (const struct item *it = r->items; it; it = it->next) {
				to_entry(it, &e);
				if ((rc = fn(ctx, &e)))
					return rc;
			}
		}
	}
	return 0;
}

int
amil_awormap_foreach(const struct amil_awormap *m, amil_awormap_iter_fn fn, void *ctx)
{
	return walk(m, false, fn, ctx);
}

int
amil_awormap_foreach_entry(const struct amil_awormap *m, amil_awormap_iter_fn fn, void *ctx)
{
	return walk(m, true, fn, ctx);
}

size_t
amil_awormap_count(const struct amil_awormap *m)
{
	return m->n_names;
}

void
amil_awormap_stats_get(const struct amil_awormap *m, struct amil_awormap_stats *s)
{
	s->names = m->n_names;
	s->entries = m->n_items;
	s->ctx_nodes = 0;
	s->ctx_cloud = 0;
	for (size_t i = 0; i < m->ctx.n; i++) {
		s->ctx_nodes += m->ctx.v[i].max != 0;
		s->ctx_cloud += m->ctx.v[i].n;
	}
	s->memory_bytes = m->mem;
	s->hlc = m->hlc.last;
	s->hlc_rejected = m->hlc.rejected;
}

/* ---- state and digest ------------------------------------------------------- */

static int
rec_order(const void *a, const void *b)
{
	const struct rec *x = *(const struct rec *const *)a, *y = *(const struct rec *const *)b;

	return name_cmp(x->name, x->len, y->name, y->len);
}

/* Which names a state of @kind with @mask (bucket mask for kind 2, leaf
 * mask for kind 3; NULL: all) carries, per bucket and per name. */
static bool
enc_bucket(int kind, const uint8_t *mask, unsigned b)
{
	return kind == AMIL_AWORMAP_STATE ? mask_has(mask, b) : lmask_bucket(mask, b);
}

static bool
enc_name(int kind, const uint8_t *mask, uint64_t h)
{
	return kind == AMIL_AWORMAP_STATE || mask_has(mask, leaf_of(h));
}

/* The kind-3 leaf set: count, then the list or the bitmap (awormap.h). */
static size_t
leaves_enc_len(const uint8_t *lm, uint32_t *n)
{
	*n = lm ? popcount_bytes(lm, AMIL_AWORMAP_LEAF_MASK_BYTES) : AMIL_AWORMAP_LEAVES;
	return 4 + (*n < LEAF_LIST_MAX ? 2 * (size_t)*n : AMIL_AWORMAP_LEAF_MASK_BYTES);
}

static uint8_t *
leaves_enc(const uint8_t *lm, uint32_t n, uint8_t *p)
{
	st32(p, n);
	p += 4;
	if (n >= LEAF_LIST_MAX) {
		if (lm)
			memcpy(p, lm, AMIL_AWORMAP_LEAF_MASK_BYTES);
		else
			memset(p, 0xff, AMIL_AWORMAP_LEAF_MASK_BYTES);
		return p + AMIL_AWORMAP_LEAF_MASK_BYTES;
	}
	for (unsigned i = 0; i < AMIL_AWORMAP_LEAF_MASK_BYTES; i++) {
		for (unsigned bit = 0; lm[i] >> bit; bit++) {
			if ((lm[i] >> bit) & 1) {
				st16(p, (uint16_t)(8 * i + bit));
				p += 2;
			}
		}
	}
	return p;
}

static int
encode(const struct amil_awormap *m, int kind, const uint8_t *mask, uint8_t **out,
       size_t *out_len)
{
	size_t n = 0, len = HDR_LEN + ctx_enc_len(&m->ctx, false) + 4;
	uint32_t n_leaves = 0;
	struct rec **v = NULL;
	uint8_t *buf, *p;

	len += kind == AMIL_AWORMAP_STATE ? AMIL_AWORMAP_MASK_BYTES : leaves_enc_len(mask, &n_leaves);
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++) {
		if (!enc_bucket(kind, mask, b))
			continue;
		for (const struct rec *r = m->bucket[b]; r; r = r->bnext) {
			if (!enc_name(kind, mask, r->h))
				continue;
			n++;
			len += 1 + r->len + 2;
			for (const struct item *it = r->items; it; it = it->next)
				len += ITEM_FIX + it->value_len;
		}
	}
	if (n && (v = malloc(n * sizeof(*v))) == NULL)
		goto fail_vec;
	buf = malloc(len);
	if (buf == NULL)
		goto fail_buf;
	n = 0;
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		if (enc_bucket(kind, mask, b))
			for (struct rec *r = m->bucket[b]; r; r = r->bnext)
				if (enc_name(kind, mask, r->h))
					v[n++] = r;
	if (n)
		qsort(v, n, sizeof(*v), rec_order);

	p = put_hdr(buf, kind);
	if (kind == AMIL_AWORMAP_STATE_LEAVES) {
		p = leaves_enc(mask, n_leaves, p);
	} else {
		if (mask)
			memcpy(p, mask, AMIL_AWORMAP_MASK_BYTES);
		else
			memset(p, 0xff, AMIL_AWORMAP_MASK_BYTES);
		p += AMIL_AWORMAP_MASK_BYTES;
	}
	p = ctx_enc(&m->ctx, p, false);
	st32(p, (uint32_t)n);
	p += 4;
	for (size_t i = 0; i < n; i++) {
		*p++ = v[i]->len;
		memcpy(p, v[i]->name, v[i]->len);
		p += v[i]->len;
		st16(p, (uint16_t)v[i]->n_items);
		p += 2;
		for (const struct item *it = v[i]->items; it; it = it->next)
			p = put_item(p, it->node, it->ctr, it->owner, it->hlc, it->value,
				     it->value_len);
	}
	free(v);
	*out = buf;
	*out_len = len;
	return 0;

fail_buf:
	free(v);
fail_vec:
	return -ENOMEM;
}

int
amil_awormap_encode_state(const struct amil_awormap *m, const uint8_t *mask,
			  uint8_t **out, size_t *out_len)
{
	return encode(m, AMIL_AWORMAP_STATE, mask, out, out_len);
}

int
amil_awormap_encode_state_leaves(const struct amil_awormap *m, const uint8_t *leaf_mask,
				 uint8_t **out, size_t *len)
{
	return encode(m, AMIL_AWORMAP_STATE_LEAVES, leaf_mask, out, len);
}

int
amil_awormap_state_leaf_mask(const uint8_t *buf, size_t len, uint8_t *leaf_mask)
{
	struct msg g;
	int rc = parse(buf, len, &g);

	if (rc)
		return rc;
	switch (g.kind) {
	case AMIL_AWORMAP_STATE:
		for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
			memset(leaf_mask + b * LEAF_BUCKET_BYTES, mask_has(g.mask, b) ? 0xff : 0,
			       LEAF_BUCKET_BYTES);
		return 0;
	case AMIL_AWORMAP_STATE_LEAVES:
		if (g.mask) {
			memcpy(leaf_mask, g.mask, AMIL_AWORMAP_LEAF_MASK_BYTES);
			return 0;
		}
		memset(leaf_mask, 0, AMIL_AWORMAP_LEAF_MASK_BYTES);
		for (uint32_t i = 0; i < g.n_leaves; i++) {
			unsigned l = ld16(g.llist + 2 * (size_t)i);

			leaf_mask[l / 8] |= (uint8_t)(1u << (l % 8));
		}
		return 0;
	default:
		return -EBADMSG;  /* a delta or a context covers no leaf set */
	}
}

/* ---- leaves ------------------------------------------------------------------ */

int
amil_awormap_leaves_encode(const struct amil_awormap *m, const uint8_t *bucket_mask,
			   uint8_t **out, size_t *len)
{
	uint64_t h[AMIL_AWORMAP_LEAVES_PER_BUCKET];
	unsigned n = 0;
	uint8_t *buf, *p;

	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		n += mask_has(bucket_mask, b);
	buf = malloc(AMIL_AWORMAP_LEAVES_LEN(n));
	if (buf == NULL)
		return -ENOMEM;
	p = put_hdr(buf, AMIL_AWORMAP_LEAF_HASHES);
	st16(p, (uint16_t)n);
	p += 2;
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++) {
		if (!mask_has(bucket_mask, b))
			continue;
		leaf_hashes(m, b, h);
		*p++ = (uint8_t)b;
		for (unsigned l = 0; l < AMIL_AWORMAP_LEAVES_PER_BUCKET; l++, p += 8)
			st64(p, h[l]);
	}
	*out = buf;
	*len = AMIL_AWORMAP_LEAVES_LEN(n);
	return 0;
}

/* Check a leaves message; its bucket count into *@n. */
static int
leaves_parse(const uint8_t *buf, size_t len, unsigned *n)
{
	if (buf == NULL || len < LEAVES_HDR || ld16(buf) != AMIL_AWORMAP_MAGIC)
		return -EBADMSG;
	if (buf[2] != AMIL_AWORMAP_VERSION)
		return -EPROTONOSUPPORT;
	if (buf[3] != AMIL_AWORMAP_LEAF_HASHES || ld32(buf + 4))
		return -EBADMSG;
	*n = ld16(buf + HDR_LEN);
	if (*n > AMIL_AWORMAP_BUCKETS || len != AMIL_AWORMAP_LEAVES_LEN(*n))
		return -EBADMSG;
	for (unsigned i = 1; i < *n; i++)
		if (buf[LEAVES_HDR + i * LEAVES_REC] <= buf[LEAVES_HDR + (i - 1) * LEAVES_REC])
			return -EBADMSG;
	return 0;
}

int
amil_awormap_leaves_diff(const struct amil_awormap *m, const uint8_t *buf, size_t len,
			 uint8_t *leaf_mask)
{
	uint64_t h[AMIL_AWORMAP_LEAVES_PER_BUCKET];
	unsigned n;
	int diff = 0, rc = leaves_parse(buf, len, &n);

	if (rc)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *p = buf + LEAVES_HDR + (size_t)i * LEAVES_REC;
		unsigned base = p[0] * AMIL_AWORMAP_LEAVES_PER_BUCKET;

		leaf_hashes(m, p[0], h);
		p++;
		for (unsigned l = 0; l < AMIL_AWORMAP_LEAVES_PER_BUCKET; l++, p += 8) {
			if (ld64(p) != h[l]) {
				leaf_mask[(base + l) / 8] |= (uint8_t)(1u << ((base + l) % 8));
				diff++;
			}
		}
	}
	return diff;
}

int
amil_awormap_encode_context(const struct amil_awormap *m, uint8_t **out, size_t *len)
{
	size_t n = HDR_LEN + 8 + ctx_enc_len(&m->ctx, false);
	uint8_t *buf = malloc(n), *p;

	if (buf == NULL)
		return -ENOMEM;
	p = put_hdr(buf, AMIL_AWORMAP_CONTEXT);
	st64(p, root_of(m));
	ctx_enc(&m->ctx, p + 8, false);
	*out = buf;
	*len = n;
	return 0;
}

void
amil_awormap_digest_get(const struct amil_awormap *m, struct amil_awormap_digest *d)
{
	size_t clen = ctx_enc_len(&m->ctx, false);
	uint8_t small[256], *cbuf = clen <= sizeof(small) ? small : malloc(clen);

	/* The context hash is for information only (see awormap.h: replicas
	 * with equal stores may hold different contexts).  It is hashed
	 * through its encoding; if that buffer cannot be had, its size
	 * stands in. */
	if (cbuf) {
		ctx_enc(&m->ctx, cbuf, false);
		d->ctx = sip(item_key, cbuf, clen);
		if (cbuf != small)
			free(cbuf);
	} else {
		d->ctx = clen;
	}
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		d->bucket[b] = m->bhash[b];
	d->root = root_of(m);
}

int
amil_awormap_digest_diff(const struct amil_awormap_digest *a,
			 const struct amil_awormap_digest *b, uint8_t *mask)
{
	int n = 0;

	memset(mask, 0, AMIL_AWORMAP_MASK_BYTES);
	for (unsigned i = 0; i < AMIL_AWORMAP_BUCKETS; i++) {
		if (a->bucket[i] != b->bucket[i]) {
			mask[i / 8] |= (uint8_t)(1u << (i % 8));
			n++;
		}
	}
	return n;
}

void
amil_awormap_digest_encode(const struct amil_awormap_digest *d,
			   uint8_t out[AMIL_AWORMAP_DIGEST_LEN])
{
	st64(out, d->root);
	st64(out + 8, d->ctx);
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		st64(out + 16 + 8 * b, d->bucket[b]);
}

int
amil_awormap_digest_decode(const uint8_t *buf, size_t len, struct amil_awormap_digest *d)
{
	if (buf == NULL || len != AMIL_AWORMAP_DIGEST_LEN)
		return -EBADMSG;
	d->root = ld64(buf);
	d->ctx = ld64(buf + 8);
	for (unsigned b = 0; b < AMIL_AWORMAP_BUCKETS; b++)
		d->bucket[b] = ld64(buf + 16 + 8 * b);
	return 0;
}
