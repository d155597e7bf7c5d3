/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * CP-mode registry: per-name CASPaxos registers.  See caspaxos.h for the
 * protocol, the change functions, durability and the wire format.
 *
 * Layout.  One record per name ever seen (struct rec, never freed: a name
 * costs ~170 bytes plus its values, and removing an acceptor's record
 * would forget its promise) in a chained, power-of-two hash table.  The
 * record holds the acceptor half (promised, accepted ballot + state), the
 * learner half (learned ballot + state) and a pointer to this node's
 * operation on the name, if any, which is how replies find their
 * operation: (name, ballot) identifies it, so messages carry no op id.
 * Records with a learned entry are also on their anti-entropy bucket's
 * list (struct amil_cas.blist), so an answer walks only the buckets that
 * differ; the 65536 leaf hashes (512 KiB) and 256 bucket hashes are sums
 * updated by learn(), the one place a learned entry changes.
 *
 * Self.  The proposer talks to its own acceptor through the same messages
 * as to the others, delivered through an inbox drained at the end of every
 * public call, never recursively: one code path for every acceptor, and a
 * self-promise is made durable before it counts, exactly like a remote one
 * (counting an unsynced local accept towards a majority would let a crash
 * lose a chosen value).
 *
 * Durability.  Log records are buffered in memory and written by
 * amil_cas_flush(), followed by one fdatasync(); PROMISE/ACCEPTED replies
 * and the PREPAREs of a freshly used round wait in the pending queue until
 * then.  The proposer's round is logged before its first PREPARE leaves,
 * so a restarted node never reuses a ballot with a different state.  A
 * NACK may leave at once: it makes no promise, and if it reports an
 * unsynced promise the worst effect is that a proposer picks a higher
 * round than needed.
 *
 * Log file: magic "AMILCAS" + version byte 1, then records
 *    len u32 (payload bytes), payload, crc32(payload) u32
 * payload = type u8, then
 *    1 ACCEPTOR  name, promised ballot, accepted ballot, accepted state
 *    2 LEARNED   name, ballot, state
 *    3 ROUND     round u64  (highest round this node used or saw)
 * (field encodings as on the wire).  Later records override earlier ones.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "caspaxos.h"

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline void st16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void st32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void st64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

#define NS_PER_MS        UINT64_C(1000000)
#define ATTEMPT_NS       (25 * NS_PER_MS)   /* no majority within: new round */
#define BACKOFF_MAX_MS   20                 /* backoff 1..20 ms */
#define ROUND_MAX        (UINT64_C(1) << 62)  /* refuse wilder rounds */
#define MSG_MAX          2048               /* any single-name message */
#define STATE_FIX        19                 /* present, owner, version, len */
#define LOG_REC_MAX      (1 + 1 + 255 + 32 + STATE_FIX + AMIL_CAS_VALUE_MAX)
#define BUCKETS          AMIL_CAS_BUCKETS
#define PER_BUCKET       AMIL_CAS_LEAVES_PER_BUCKET
#define LEAF_REC_MAX     (2 + 8 * PER_BUCKET)  /* bucket, kind, leaf hashes */

static const uint8_t log_magic[8] = { 'A', 'M', 'I', 'L', 'C', 'A', 'S', 1 };
static const uint8_t name_key[crypto_shorthash_siphash24_KEYBYTES] = "amil-cas-names!";
static const uint8_t entry_key[crypto_shorthash_siphash24_KEYBYTES] = "amil-cas-entry!";

struct ballot {
	uint64_t round, node;   /* (0, 0): none */
};

/* A state whose value is owned (malloc'd, NULL when empty). */
struct st {
	uint64_t owner, version;
	uint8_t *val;
	uint16_t len;
	bool present;
};

/* A state whose value points into someone else's bytes. */
struct sv {
	uint64_t owner, version;
	const uint8_t *val;
	uint16_t len;
	bool present;
};

struct op;

struct rec {
	struct rec *hnext;
	struct rec *bnext;       /* next learned entry of the same bucket */
	struct op *op;           /* this node's operation on the name, or NULL */
	struct ballot promised, accepted, learned;
	struct st acc, lrn;
	uint64_t h;              /* name hash: table slot (low bits), bucket/leaf (top) */
	uint8_t len;
	uint8_t name[];
};

enum phase { PH_PREPARE, PH_ACCEPT, PH_WAIT };

struct op {
	struct op *prev, *next;
	struct rec *r;
	uint64_t id, owner;
	uint64_t deadline_ns;    /* -ETIMEDOUT from then on */
	uint64_t attempt_end_ns; /* PREPARE/ACCEPT: no majority by then -> retry */
	uint64_t retry_at_ns;    /* WAIT: next attempt */
	struct ballot b;         /* current attempt */
	struct ballot best_b;    /* highest accepted ballot among promises */
	struct st best, out;     /* its state; the state we propose */
	uint64_t got;            /* members answered in this phase (bit = index) */
	enum phase phase;
	int result;
	enum amil_cas_op kind;
	uint16_t vlen;
	uint8_t val[];
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct amil_cas {
	uint64_t self;
	uint64_t members[AMIL_CAS_MEMBERS_MAX];
	size_t n_members, majority;
	uint64_t op_timeout_ns, ae_interval_ns;
	unsigned max_ops;
	amil_cas_send_fn send;
	amil_cas_alive_fn alive;
	amil_cas_done_fn done;
	void *ctx;

	struct rec **tab;
	size_t cap, n_recs;
	size_t n_present;        /* learned entries present */
	size_t n_learned;        /* learned entries with a ballot */
	/* Anti-entropy digest, kept up to date by learn(): sums mod 2^64 of
	 * entry hashes per leaf and per bucket, and per bucket the learned
	 * entries (a list through rec.bnext; never unlinked, as a learned
	 * entry stays learned) and their number. */
	uint64_t *leaf;          /* AMIL_CAS_LEAVES, leaf l in bucket l / 256 */
	uint64_t bucket[BUCKETS];
	struct rec *blist[BUCKETS];
	uint32_t bcount[BUCKETS];

	uint64_t max_round;      /* highest round seen or used */
	uint64_t now_ns;         /* last time a caller told us */
	uint64_t next_ae_ns;
	uint64_t next_op_id;

	struct op *ops;          /* in flight */
	unsigned n_ops;

	struct buf inbox;        /* to self: (u64 to, u32 len, bytes)* */
	struct buf pending;      /* waiting for the log sync, same format */
	struct buf logbuf;       /* records not yet written */
	bool draining;
	bool unsynced;           /* written but fdatasync failed */

	int log_fd;              /* -1: memory only */
	struct amil_cas_stats stats;
};

/* ---- small helpers ---------------------------------------------------- */

static int
bcmp_b(struct ballot a, struct ballot b)
{
	if (a.round != b.round)
		return a.round < b.round ? -1 : 1;
	if (a.node != b.node)
		return a.node < b.node ? -1 : 1;
	return 0;
}

static bool
bnone(struct ballot b)
{
	return b.round == 0 && b.node == 0;
}

static int
member_idx(const struct amil_cas *c, uint64_t id)
{
	for (size_t i = 0; i < c->n_members; i++)
		if (c->members[i] == id)
			return (int)i;
	return -1;
}

static void
see_round(struct amil_cas *c, uint64_t round)
{
	if (round > c->max_round)
		c->max_round = round;
}

static struct sv
sv_of(const struct st *s)
{
	return (struct sv){ .owner = s->owner, .version = s->version, .val = s->val,
			    .len = s->len, .present = s->present };
}

static bool
sv_eq(const struct sv *a, const struct sv *b)
{
	return a->present == b->present && a->owner == b->owner && a->version == b->version &&
	       a->len == b->len && (a->len == 0 || memcmp(a->val, b->val, a->len) == 0);
}

/* Copy @s into @d.  -ENOMEM leaves @d unchanged.  @s may alias @d. */
static int
st_set(struct st *d, const struct sv *s)
{
	uint8_t *v = NULL;

	if (s->len) {
		v = malloc(s->len);
		if (!v)
			return -ENOMEM;
		memcpy(v, s->val, s->len);
	}
	free(d->val);
	d->val = v;
	d->len = s->len;
	d->owner = s->owner;
	d->version = s->version;
	d->present = s->present;
	return 0;
}

static void
st_clear(struct st *d)
{
	free(d->val);
	memset(d, 0, sizeof(*d));
}

static void
st_export(const struct st *s, struct amil_cas_state *out)
{
	memset(out, 0, offsetof(struct amil_cas_state, value));
	out->present = s->present;
	out->owner = s->owner;
	out->version = s->version;
	out->value_len = s->len;
	if (s->len)
		memcpy(out->value, s->val, s->len);
}

static int
buf_reserve(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int
buf_put(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n))
		return -ENOMEM;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* Queue entry: to (native u64), len (native u32), bytes. */
static int
queue_put(struct buf *q, uint64_t to, const uint8_t *msg, size_t len)
{
	uint32_t l = (uint32_t)len;

	if (buf_reserve(q, 12 + len))
		return -ENOMEM;
	memcpy(q->p + q->len, &to, 8);
	memcpy(q->p + q->len + 8, &l, 4);
	memcpy(q->p + q->len + 12, msg, len);
	q->len += 12 + len;
	return 0;
}

/* CRC-32 (IEEE, reflected), four bits at a time: the log is small and
 * written in batches, so a 16-entry table is fast enough and needs no
 * start-up initialisation. */
static uint32_t
crc32_ieee(const uint8_t *p, size_t n)
{
	static const uint32_t nib[16] = {
		0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
		0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
		0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
	};
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ nib[crc & 15];
		crc = (crc >> 4) ^ nib[crc & 15];
	}
	return ~crc;
}

/* ---- encoding --------------------------------------------------------- */

struct wr {
	uint8_t *p;
	size_t n;
};

static void w8(struct wr *w, uint8_t v) { w->p[w->n++] = v; }
static void w64(struct wr *w, uint64_t v) { st64(w->p + w->n, v); w->n += 8; }
static void wbytes(struct wr *w, const void *p, size_t n) { if (n) memcpy(w->p + w->n, p, n); w->n += n; }

static void
wname(struct wr *w, const uint8_t *name, size_t len)
{
	w8(w, (uint8_t)len);
	wbytes(w, name, len);
}

static void
wballot(struct wr *w, struct ballot b)
{
	w64(w, b.round);
	w64(w, b.node);
}

static void
wstate(struct wr *w, const struct sv *s)
{
	w8(w, s->present ? 1 : 0);
	w64(w, s->owner);
	w64(w, s->version);
	st16(w->p + w->n, s->len);
	w->n += 2;
	wbytes(w, s->val, s->len);
}

/* The version byte of message @type: DIGEST changed format in version 2. */
static uint8_t
msg_version(unsigned type)
{
	return type == AMIL_CAS_MSG_DIGEST ? AMIL_CAS_DIGEST_VERSION : AMIL_CAS_WIRE_VERSION;
}

static void
whdr(struct wr *w, enum amil_cas_msg type)
{
	w8(w, AMIL_CAS_WIRE_MARK);
	w8(w, (uint8_t)type);
	w8(w, msg_version(type));
}

/* ---- decoding --------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n, off;
	bool bad;
};

static bool
need(struct rd *r, size_t k)
{
	if (r->bad || r->n - r->off < k) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint8_t r8(struct rd *r) { return need(r, 1) ? r->p[r->off++] : 0; }
static uint16_t r16(struct rd *r) { uint16_t v = need(r, 2) ? ld16(r->p + r->off) : 0; if (!r->bad) r->off += 2; return v; }
static uint32_t r32(struct rd *r) { uint32_t v = need(r, 4) ? ld32(r->p + r->off) : 0; if (!r->bad) r->off += 4; return v; }
static uint64_t r64(struct rd *r) { uint64_t v = need(r, 8) ? ld64(r->p + r->off) : 0; if (!r->bad) r->off += 8; return v; }

static const uint8_t *
rbytes(struct rd *r, size_t k)
{
	if (!need(r, k))
		return NULL;
	const uint8_t *p = r->p + r->off;
	r->off += k;
	return p;
}

static bool
name_ok(const uint8_t *name, size_t len)
{
	return len >= 1 && len <= AMIL_CAS_NAME_MAX && !memchr(name, 0, len);
}

static const uint8_t *
rname(struct rd *r, size_t *len)
{
	*len = r8(r);
	const uint8_t *p = rbytes(r, *len);
	if (p && !name_ok(p, *len))
		r->bad = true;
	return r->bad ? NULL : p;
}

static struct ballot
rballot(struct rd *r)
{
	struct ballot b;

	b.round = r64(r);
	b.node = r64(r);
	return b;
}

/* A ballot a proposer may have used: round in 1..ROUND_MAX, a member. */
static bool
ballot_ok(const struct amil_cas *c, struct ballot b)
{
	return b.round >= 1 && b.round <= ROUND_MAX && (!c || member_idx(c, b.node) >= 0);
}

static struct sv
rstate(struct rd *r)
{
	struct sv s;
	uint8_t present = r8(r);

	s.owner = r64(r);
	s.version = r64(r);
	s.len = r16(r);
	s.present = present == 1;
	if (r->bad || present > 1 || s.len > AMIL_CAS_VALUE_MAX ||
	    (s.present ? s.owner == 0 : (s.owner != 0 || s.len != 0))) {
		r->bad = true;
		s.val = NULL;
		s.len = 0;
		return s;
	}
	s.val = rbytes(r, s.len);
	return s;
}

/* ---- name table ------------------------------------------------------- */

static uint64_t
name_hash(const uint8_t *name, size_t len)
{
	uint8_t out[crypto_shorthash_siphash24_BYTES];

	crypto_shorthash_siphash24(out, name, len, name_key);
	return ld64(out);
}

static struct rec *
rec_find(const struct amil_cas *c, const uint8_t *name, size_t len)
{
	uint64_t h = name_hash(name, len);

	for (struct rec *r = c->tab[h & (c->cap - 1)]; r; r = r->hnext)
		if (r->h == h && r->len == len && memcmp(r->name, name, len) == 0)
			return r;
	return NULL;
}

/* Grow at load 1; a failed grow only makes chains longer. */
static void
tab_grow(struct amil_cas *c)
{
	size_t cap = c->cap * 2;
	struct rec **t = calloc(cap, sizeof(*t));

	if (!t)
		return;
	for (size_t i = 0; i < c->cap; i++) {
		struct rec *r = c->tab[i], *next;
		for (; r; r = next) {
			next = r->hnext;
			r->hnext = t[r->h & (cap - 1)];
			t[r->h & (cap - 1)] = r;
		}
	}
	free(c->tab);
	c->tab = t;
	c->cap = cap;
}

static struct rec *
rec_get(struct amil_cas *c, const uint8_t *name, size_t len)
{
	struct rec *r = rec_find(c, name, len);

	if (r)
		return r;
	r = calloc(1, sizeof(*r) + len);
	if (!r)
		return NULL;
	r->h = name_hash(name, len);
	r->len = (uint8_t)len;
	memcpy(r->name, name, len);
	if (c->n_recs >= c->cap)
		tab_grow(c);
	r->hnext = c->tab[r->h & (c->cap - 1)];
	c->tab[r->h & (c->cap - 1)] = r;
	c->n_recs++;
	return r;
}

/* ---- log records ------------------------------------------------------ */

static bool
durable(const struct amil_cas *c)
{
	return c->log_fd >= 0;
}

/* Frame @payload/@n into @b: len, payload, crc. */
static int
log_frame(struct buf *b, const uint8_t *payload, size_t n)
{
	uint8_t x[4];

	if (buf_reserve(b, n + 8))
		return -ENOMEM;
	st32(x, (uint32_t)n);
	buf_put(b, x, 4);
	buf_put(b, payload, n);
	st32(x, crc32_ieee(payload, n));
	buf_put(b, x, 4);
	return 0;
}

static int
rec_acceptor(struct buf *b, const struct rec *r)
{
	uint8_t p[LOG_REC_MAX];
	struct wr w = { p, 0 };
	struct sv s = sv_of(&r->acc);

	w8(&w, 1);
	wname(&w, r->name, r->len);
	wballot(&w, r->promised);
	wballot(&w, r->accepted);
	wstate(&w, &s);
	return log_frame(b, p, w.n);
}

static int
rec_learned(struct buf *b, const struct rec *r)
{
	uint8_t p[LOG_REC_MAX];
	struct wr w = { p, 0 };
	struct sv s = sv_of(&r->lrn);

	w8(&w, 2);
	wname(&w, r->name, r->len);
	wballot(&w, r->learned);
	wstate(&w, &s);
	return log_frame(b, p, w.n);
}

static int
rec_round(struct buf *b, uint64_t round)
{
	uint8_t p[9];
	struct wr w = { p, 0 };

	w8(&w, 3);
	w64(&w, round);
	return log_frame(b, p, w.n);
}

/* ---- learned view and digest ----------------------------------------- */

static unsigned bucket_of(const struct rec *r) { return (unsigned)(r->h >> 56); }
static unsigned leaf_of(const struct rec *r) { return (unsigned)(r->h >> 48); }

/* The hash of learned entry (@r's name, @b); see caspaxos.h. */
static uint64_t
entry_hash(const struct rec *r, struct ballot b)
{
	uint8_t in[1 + 255 + 16], out[crypto_shorthash_siphash24_BYTES];
	struct wr w = { in, 0 };

	wname(&w, r->name, r->len);
	wballot(&w, b);
	crypto_shorthash_siphash24(out, in, w.n, entry_key);
	return ld64(out);
}

/* Take (@b, @s) as @r's learned entry if @b is greater.  Keeps the leaf
 * and bucket hashes (sums, so independent of order), the bucket lists
 * and the log up to date. */
static int
learn(struct amil_cas *c, struct rec *r, struct ballot b, const struct sv *s)
{
	unsigned bk = bucket_of(r), lf = leaf_of(r);
	bool had = !bnone(r->learned), was = r->lrn.present;
	uint64_t h;

	if (bcmp_b(b, r->learned) <= 0)
		return 0;
	if (st_set(&r->lrn, s))
		return -ENOMEM;
	if (had) {
		h = entry_hash(r, r->learned);
		c->leaf[lf] -= h;
		c->bucket[bk] -= h;
	} else {
		c->n_learned++;
		c->bcount[bk]++;
		r->bnext = c->blist[bk];
		c->blist[bk] = r;
	}
	r->learned = b;
	h = entry_hash(r, b);
	c->leaf[lf] += h;
	c->bucket[bk] += h;
	c->n_present += (size_t)r->lrn.present - (size_t)was;
	see_round(c, b.round);
	/* A lost learned record costs only a catch-up later: no sync needed. */
	if (durable(c))
		rec_learned(&c->logbuf, r);
	return 0;
}

/* ---- sending ---------------------------------------------------------- */

static void
send_to(struct amil_cas *c, uint64_t to, const uint8_t *msg, size_t len)
{
	if (to == c->self)
		queue_put(&c->inbox, to, msg, len);   /* ENOMEM: a lost message */
	else
		c->send(c->ctx, to, msg, len);
}

static void
send_all(struct amil_cas *c, const uint8_t *msg, size_t len, bool others_only)
{
	for (size_t i = 0; i < c->n_members; i++)
		if (!others_only || c->members[i] != c->self)
			send_to(c, c->members[i], msg, len);
}

/* A reply that promises something: after the log sync when durable. */
static void
send_durable(struct amil_cas *c, uint64_t to, const uint8_t *msg, size_t len)
{
	if (durable(c))
		queue_put(&c->pending, to, msg, len);
	else
		send_to(c, to, msg, len);
}

static void
send_nack(struct amil_cas *c, uint64_t to, const struct rec *r, struct ballot b)
{
	uint8_t m[MSG_MAX];
	struct wr w = { m, 0 };

	whdr(&w, AMIL_CAS_MSG_NACK);
	wname(&w, r->name, r->len);
	wballot(&w, b);
	wballot(&w, r->promised);
	send_to(c, to, m, w.n);
}

static void
send_ae(struct amil_cas *c, uint64_t to, const uint8_t *msg, size_t len)
{
	c->stats.ae_bytes_tx += len;
	send_to(c, to, msg, len);
}

static void
send_digest(struct amil_cas *c, uint64_t to)
{
	uint8_t m[AMIL_CAS_DIGEST_LEN];
	struct wr w = { m, 0 };

	whdr(&w, AMIL_CAS_MSG_DIGEST);
	w64(&w, c->n_learned);
	for (unsigned b = 0; b < BUCKETS; b++)
		w64(&w, c->bucket[b]);
	send_ae(c, to, m, w.n);
}

/*
 * A SYNC or LEAVES answer being filled: records go into one buffer of
 * AMIL_CAS_SYNC_MAX bytes, sent whenever the next record would not fit.
 * The buffer is allocated at the first record; without memory the answer
 * is dropped, like a lost message (the next round asks again).
 */
struct batch {
	struct amil_cas *c;
	uint64_t to;
	enum amil_cas_msg type;  /* SYNC (count u32) or LEAVES (count u16) */
	uint8_t *m;
	struct wr w;
	uint32_t n;              /* records in m */
	bool failed;
};

static size_t
batch_hdr(const struct batch *b)
{
	return b->type == AMIL_CAS_MSG_SYNC ? 3 + 4 : 3 + 2;
}

static void
batch_send(struct batch *b)
{
	if (!b->n)
		return;
	if (b->type == AMIL_CAS_MSG_SYNC) {
		st32(b->m + 3, b->n);
		b->c->stats.syncs_tx++;
		b->c->stats.sync_entries_tx += b->n;
	} else {
		st16(b->m + 3, (uint16_t)b->n);
		b->c->stats.leaves_tx++;
	}
	send_ae(b->c, b->to, b->m, b->w.n);
	b->w.n = batch_hdr(b);
	b->n = 0;
}

/* Room for a record of @need bytes, or NULL (out of memory). */
static struct wr *
batch_room(struct batch *b, size_t need)
{
	if (!b->m && !b->failed) {
		b->m = malloc(AMIL_CAS_SYNC_MAX);
		b->failed = !b->m;
		b->w = (struct wr){ b->m, 0 };
		if (b->m) {
			whdr(&b->w, b->type);
			b->w.n = batch_hdr(b);
		}
	}
	if (!b->m)
		return NULL;
	if (b->w.n + need > AMIL_CAS_SYNC_MAX)
		batch_send(b);
	b->n++;
	return &b->w;
}

static void
batch_end(struct batch *b)
{
	if (b->m)
		batch_send(b);
	free(b->m);
	b->m = NULL;
}

/* @r's learned entry into SYNC batch @b. */
static void
sync_add(struct batch *b, const struct rec *r)
{
	struct wr *w = batch_room(b, 1 + r->len + 16 + STATE_FIX + r->lrn.len);
	struct sv s = sv_of(&r->lrn);

	if (!w)
		return;
	wname(w, r->name, r->len);
	wballot(w, r->learned);
	wstate(w, &s);
}

/* The learned entries of bucket @bk whose leaf (0..255 within the
 * bucket) is set in @mask (NULL: all of them) into SYNC batch @b. */
static void
sync_bucket(struct amil_cas *c, struct batch *b, unsigned bk, const uint8_t mask[PER_BUCKET / 8])
{
	for (const struct rec *r = c->blist[bk]; r; r = r->bnext) {
		unsigned l = leaf_of(r) % PER_BUCKET;
		if (!mask || mask[l / 8] & (1u << l % 8))
			sync_add(b, r);
	}
}

/* ---- proposer --------------------------------------------------------- */

static uint64_t
backoff_ns(void)
{
	return (1 + (uint64_t)randombytes_uniform(BACKOFF_MAX_MS)) * NS_PER_MS;
}

static void
op_unlink(struct amil_cas *c, struct op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		c->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->r->op = NULL;
	c->n_ops--;
}

static void
op_free(struct op *op)
{
	st_clear(&op->best);
	st_clear(&op->out);
	free(op);
}

/* Remove @op and report @result with state @s. */
static void
op_end(struct amil_cas *c, struct op *op, int result, const struct st *s)
{
	struct amil_cas_state out;
	struct rec *r = op->r;
	uint64_t id = op->id;

	op_unlink(c, op);
	if (c->done) {
		st_export(s, &out);
		c->done(c->ctx, id, result, (const char *)r->name, r->len, &out);
	}
	op_free(op);
}

/* Phase 1 of a new attempt with a fresh ballot. */
static void
op_attempt(struct amil_cas *c, struct op *op)
{
	uint8_t m[MSG_MAX];
	struct wr w = { m, 0 };

	see_round(c, c->max_round + 1);
	op->b = (struct ballot){ c->max_round, c->self };
	op->best_b = (struct ballot){ 0, 0 };
	st_clear(&op->best);
	op->got = 0;
	op->phase = PH_PREPARE;
	op->attempt_end_ns = c->now_ns + ATTEMPT_NS;

	whdr(&w, AMIL_CAS_MSG_PREPARE);
	wname(&w, op->r->name, op->r->len);
	wballot(&w, op->b);
	if (durable(c)) {
		/* The round must be on disk before any acceptor sees it. */
		rec_round(&c->logbuf, op->b.round);
		for (size_t i = 0; i < c->n_members; i++)
			queue_put(&c->pending, c->members[i], m, w.n);
	} else {
		send_all(c, m, w.n, false);
	}
}

static void
op_backoff(struct amil_cas *c, struct op *op)
{
	op->phase = PH_WAIT;
	op->retry_at_ns = c->now_ns + backoff_ns();
}

/* The change function on @op->best into @op->out; sets @op->result. */
static int
op_apply(struct op *op)
{
	const struct st *s = &op->best;
	struct sv n = sv_of(s);

	op->result = 0;
	switch (op->kind) {
	case AMIL_CAS_REGISTER:
		if (s->present && s->owner != op->owner) {
			op->result = -EEXIST;
			break;
		}
		n = (struct sv){ .owner = op->owner, .version = s->version + 1, .val = op->val,
				 .len = op->vlen, .present = true };
		break;
	case AMIL_CAS_UNREGISTER:
		if (!s->present)
			op->result = -ENOENT;
		else if (s->owner != op->owner)
			op->result = -EPERM;
		else
			n = (struct sv){ .version = s->version + 1 };
		break;
	case AMIL_CAS_REAP:
		if (!s->present || s->owner != op->owner)
			op->result = -ENOENT;
		else
			n = (struct sv){ .version = s->version + 1 };
		break;
	}
	return st_set(&op->out, &n);
}

static void
op_phase2(struct amil_cas *c, struct op *op)
{
	uint8_t m[MSG_MAX];
	struct wr w = { m, 0 };

	if (op_apply(op)) {
		op_backoff(c, op);   /* ENOMEM: try again later */
		return;
	}
	struct sv s = sv_of(&op->out);
	op->phase = PH_ACCEPT;
	op->got = 0;
	op->attempt_end_ns = c->now_ns + ATTEMPT_NS;
	whdr(&w, AMIL_CAS_MSG_ACCEPT);
	wname(&w, op->r->name, op->r->len);
	wballot(&w, op->b);
	wstate(&w, &s);
	send_all(c, m, w.n, false);
}

/* Chosen: learn it, tell everyone, report. */
static void
op_chosen(struct amil_cas *c, struct op *op)
{
	uint8_t m[MSG_MAX];
	struct wr w = { m, 0 };
	struct sv s = sv_of(&op->out);

	learn(c, op->r, op->b, &s);
	whdr(&w, AMIL_CAS_MSG_COMMIT);
	wname(&w, op->r->name, op->r->len);
	wballot(&w, op->b);
	wstate(&w, &s);
	send_all(c, m, w.n, true);
	c->stats.commits_tx += c->n_members - 1;
	if (op->result == 0)
		c->stats.ops_ok++;
	else
		c->stats.ops_refused++;
	op_end(c, op, op->result, &op->out);
}

/* The operation this reply (for @name, @b) belongs to, or NULL. */
static struct op *
op_for(struct amil_cas *c, const uint8_t *name, size_t len, struct ballot b, enum phase ph)
{
	struct rec *r = rec_find(c, name, len);

	if (!r || !r->op || r->op->phase != ph || bcmp_b(r->op->b, b) != 0)
		return NULL;
	return r->op;
}

/* Count member @from's answer; true when it completes a majority. */
static bool
op_count(struct amil_cas *c, struct op *op, uint64_t from)
{
	uint64_t bit = UINT64_C(1) << member_idx(c, from);

	if (op->got & bit)
		return false;
	op->got |= bit;
	return (size_t)__builtin_popcountll(op->got) == c->majority;
}

/* ---- message handlers ------------------------------------------------- */

static int
on_prepare(struct amil_cas *c, uint64_t from, struct rd *r)
{
	size_t len;
	const uint8_t *name = rname(r, &len);
	struct ballot b = rballot(r);

	if (r->bad || r->off != r->n || !ballot_ok(c, b) || b.node != from)
		return -EBADMSG;
	see_round(c, b.round);
	struct rec *x = rec_get(c, name, len);
	if (!x)
		return -ENOMEM;
	if (bcmp_b(b, x->promised) <= 0) {
		send_nack(c, from, x, b);
		return 0;
	}
	x->promised = b;
	if (durable(c))
		rec_acceptor(&c->logbuf, x);

	uint8_t m[MSG_MAX];
	struct wr w = { m, 0 };
	struct sv s = sv_of(&x->acc);
	whdr(&w, AMIL_CAS_MSG_PROMISE);
	wname(&w, x->name, x->len);
	wballot(&w, b);
	wballot(&w, x->accepted);
	wstate(&w, &s);
	send_durable(c, from, m, w.n);
	return 0;
}

static int
on_accept(struct amil_cas *c, uint64_t from, struct rd *r)
{
	size_t len;
	const uint8_t *name = rname(r, &len);
	struct ballot b = rballot(r);
	struct sv s = rstate(r);

	if (r->bad || r->off != r->n || !ballot_ok(c, b) || b.node != from)
		return -EBADMSG;
	see_round(c, b.round);
	struct rec *x = rec_get(c, name, len);
	if (!x)
		return -ENOMEM;
	if (bcmp_b(b, x->promised) < 0) {
		send_nack(c, from, x, b);
		return 0;
	}
	struct sv cur = sv_of(&x->acc);
	if (bcmp_b(x->promised, b) != 0 || bcmp_b(x->accepted, b) != 0 || !sv_eq(&cur, &s)) {
		if (st_set(&x->acc, &s))
			return -ENOMEM;
		x->promised = x->accepted = b;
		if (durable(c))
			rec_acceptor(&c->logbuf, x);
	}

	uint8_t m[MSG_MAX];
	struct wr w = { m, 0 };
	whdr(&w, AMIL_CAS_MSG_ACCEPTED);
	wname(&w, x->name, x->len);
	wballot(&w, b);
	send_durable(c, from, m, w.n);
	return 0;
}

static int
on_promise(struct amil_cas *c, uint64_t from, struct rd *r)
{
	size_t len;
	const uint8_t *name = rname(r, &len);
	struct ballot b = rballot(r), ab = rballot(r);
	struct sv s = rstate(r);

	if (r->bad || r->off != r->n || !ballot_ok(c, b) ||
	    (bnone(ab) ? (s.present || s.version != 0) : !ballot_ok(NULL, ab)))
		return -EBADMSG;
	see_round(c, ab.round);
	struct op *op = op_for(c, name, len, b, PH_PREPARE);
	if (!op)
		return 0;   /* stale or duplicate: nothing to do */
	if (bcmp_b(ab, op->best_b) > 0) {
		if (st_set(&op->best, &s))
			return -ENOMEM;
		op->best_b = ab;
	}
	if (op_count(c, op, from))
		op_phase2(c, op);
	return 0;
}

static int
on_accepted(struct amil_cas *c, uint64_t from, struct rd *r)
{
	size_t len;
	const uint8_t *name = rname(r, &len);
	struct ballot b = rballot(r);

	if (r->bad || r->off != r->n || !ballot_ok(c, b))
		return -EBADMSG;
	struct op *op = op_for(c, name, len, b, PH_ACCEPT);
	if (op && op_count(c, op, from))
		op_chosen(c, op);
	return 0;
}

static int
on_nack(struct amil_cas *c, struct rd *r)
{
	size_t len;
	const uint8_t *name = rname(r, &len);
	struct ballot b = rballot(r), p = rballot(r);

	if (r->bad || r->off != r->n || !ballot_ok(c, b) || (!bnone(p) && !ballot_ok(NULL, p)))
		return -EBADMSG;
	see_round(c, p.round);
	struct op *op = op_for(c, name, len, b, PH_PREPARE);
	if (!op)
		op = op_for(c, name, len, b, PH_ACCEPT);
	if (op) {
		c->stats.nacks++;
		op_backoff(c, op);
	}
	return 0;
}

static int
on_commit(struct amil_cas *c, uint64_t from, struct rd *r)
{
	size_t len;
	const uint8_t *name = rname(r, &len);
	struct ballot b = rballot(r);
	struct sv s = rstate(r);

	if (r->bad || r->off != r->n || !ballot_ok(c, b) || b.node != from)
		return -EBADMSG;
	see_round(c, b.round);
	struct rec *x = rec_get(c, name, len);
	if (!x)
		return -ENOMEM;
	return learn(c, x, b, &s);
}

/* DIGEST from @from: answer each bucket that differs (caspaxos.h). */
static int
on_digest(struct amil_cas *c, uint64_t from, struct rd *r)
{
	r64(r);   /* count: informational */
	const uint8_t *h = rbytes(r, 8 * BUCKETS);
	struct batch sync = { .c = c, .to = from, .type = AMIL_CAS_MSG_SYNC };
	struct batch leaves = { .c = c, .to = from, .type = AMIL_CAS_MSG_LEAVES };

	if (r->bad || r->off != r->n)
		return -EBADMSG;
	if (from == c->self)
		return 0;
	for (unsigned bk = 0; bk < BUCKETS; bk++) {
		uint64_t theirs = ld64(h + 8 * bk);
		if (theirs == c->bucket[bk])
			continue;
		if (theirs == 0) {
			/* They have nothing there: all of ours is news. */
			sync_bucket(c, &sync, bk, NULL);
			continue;
		}
		bool empty = c->bcount[bk] == 0;
		struct wr *w = batch_room(&leaves, empty ? 2 : LEAF_REC_MAX);
		if (!w)
			break;
		w8(w, (uint8_t)bk);
		w8(w, empty ? 0 : 1);
		for (unsigned l = 0; !empty && l < PER_BUCKET; l++)
			w64(w, c->leaf[bk * PER_BUCKET + l]);
	}
	batch_end(&sync);
	batch_end(&leaves);
	return 0;
}

/* LEAVES from @from (the peer we sent our digest to): send our entries of
 * every leaf that differs, and ask for theirs where they have any. */
static int
on_leaves(struct amil_cas *c, uint64_t from, struct rd *r)
{
	uint16_t n = r16(r);
	size_t start = r->off;
	int prev = -1;

	/* Check all before answering anything. */
	for (uint16_t i = 0; i < n && !r->bad; i++) {
		uint8_t bk = r8(r), kind = r8(r);
		if (r->bad || (int)bk <= prev || kind > 1)
			r->bad = true;
		prev = bk;
		if (kind == 1)
			rbytes(r, 8 * PER_BUCKET);
	}
	if (r->bad || n == 0 || r->off != r->n)
		return -EBADMSG;
	if (from == c->self)
		return 0;

	/* At most n x 256 leaves wanted: 2 bytes each after the header. */
	uint8_t *want = malloc(3 + 4 + 2 * (size_t)n * PER_BUCKET);
	struct wr ww = { want, 3 + 4 };
	struct batch sync = { .c = c, .to = from, .type = AMIL_CAS_MSG_SYNC };

	if (!want)
		return 0;   /* dropped, like a lost message */
	r->off = start;
	for (uint16_t i = 0; i < n; i++) {
		uint8_t bk = r8(r), kind = r8(r);
		uint8_t mask[PER_BUCKET / 8] = { 0 };
		if (kind == 0) {
			sync_bucket(c, &sync, bk, NULL);
			continue;
		}
		bool any = false;
		for (unsigned l = 0; l < PER_BUCKET; l++) {
			uint64_t theirs = r64(r);
			if (theirs == c->leaf[bk * PER_BUCKET + l])
				continue;
			mask[l / 8] |= (uint8_t)(1u << l % 8);
			any = true;
			if (theirs != 0) {
				st16(want + ww.n, (uint16_t)(bk * PER_BUCKET + l));
				ww.n += 2;
			}
		}
		if (any && c->bcount[bk])
			sync_bucket(c, &sync, bk, mask);
	}
	batch_end(&sync);
	if (ww.n > 3 + 4) {
		uint32_t k = (uint32_t)(ww.n - 3 - 4) / 2;
		ww.n = 0;
		whdr(&ww, AMIL_CAS_MSG_WANT);
		st32(want + 3, k);
		c->stats.wants_tx++;
		send_ae(c, from, want, 3 + 4 + 2 * (size_t)k);
	}
	free(want);
	return 0;
}

/* WANT from @from: our entries of the leaves listed. */
static int
on_want(struct amil_cas *c, uint64_t from, struct rd *r)
{
	uint32_t n = r32(r);
	size_t start = r->off;
	int prev = -1;

	if (r->bad || n == 0 || n > AMIL_CAS_LEAVES || r->n - r->off != 2 * (size_t)n)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		int l = r16(r);
		if (l <= prev)
			return -EBADMSG;
		prev = l;
	}
	if (from == c->self)
		return 0;

	struct batch sync = { .c = c, .to = from, .type = AMIL_CAS_MSG_SYNC };
	uint8_t mask[PER_BUCKET / 8];
	r->off = start;
	/* Ascending, so each bucket's leaves are consecutive: one walk each. */
	for (uint32_t i = 0; i < n;) {
		unsigned bk = ld16(r->p + r->off) / PER_BUCKET;
		memset(mask, 0, sizeof(mask));
		for (; i < n && ld16(r->p + r->off) / PER_BUCKET == bk; i++) {
			unsigned l = r16(r) % PER_BUCKET;
			mask[l / 8] |= (uint8_t)(1u << l % 8);
		}
		sync_bucket(c, &sync, bk, mask);
	}
	batch_end(&sync);
	return 0;
}

static int
on_sync(struct amil_cas *c, struct rd *r)
{
	uint32_t n = r32(r);
	size_t start = r->off;

	/* Check all before changing anything. */
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		size_t len;
		rname(r, &len);
		struct ballot b = rballot(r);
		rstate(r);
		if (!r->bad && !ballot_ok(c, b))
			r->bad = true;
	}
	if (r->bad || r->off != r->n)
		return -EBADMSG;
	c->stats.syncs_rx++;
	c->stats.sync_entries_rx += n;
	r->off = start;
	for (uint32_t i = 0; i < n; i++) {
		size_t len;
		const uint8_t *name = rname(r, &len);
		struct ballot b = rballot(r);
		struct sv s = rstate(r);
		see_round(c, b.round);
		struct rec *x = rec_get(c, name, len);
		if (!x || learn(c, x, b, &s))
			return -ENOMEM;
	}
	return 0;
}

static int
handle(struct amil_cas *c, uint64_t from, const uint8_t *buf, size_t len)
{
	struct rd r = { buf, len, 3, false };

	if (len < 3 || buf[0] != AMIL_CAS_WIRE_MARK || buf[2] != msg_version(buf[1]))
		return -EBADMSG;
	switch (buf[1]) {
	case AMIL_CAS_MSG_PREPARE: return on_prepare(c, from, &r);
	case AMIL_CAS_MSG_PROMISE: return on_promise(c, from, &r);
	case AMIL_CAS_MSG_ACCEPT: return on_accept(c, from, &r);
	case AMIL_CAS_MSG_ACCEPTED: return on_accepted(c, from, &r);
	case AMIL_CAS_MSG_NACK: return on_nack(c, &r);
	case AMIL_CAS_MSG_COMMIT: return on_commit(c, from, &r);
	case AMIL_CAS_MSG_DIGEST: return on_digest(c, from, &r);
	case AMIL_CAS_MSG_SYNC: return on_sync(c, &r);
	case AMIL_CAS_MSG_LEAVES: return on_leaves(c, from, &r);
	case AMIL_CAS_MSG_WANT: return on_want(c, from, &r);
	default: return -EBADMSG;
	}
}

/* Handle everything addressed to self, including what that produces.
 * Not re-entrant: a done callback that starts an operation only queues. */
static void
drain(struct amil_cas *c)
{
	if (c->draining)
		return;
	c->draining = true;
	while (c->inbox.len) {
		struct buf q = c->inbox;
		c->inbox = (struct buf){ 0 };
		for (size_t off = 0; off < q.len;) {
			uint32_t l;
			memcpy(&l, q.p + off + 8, 4);
			handle(c, c->self, q.p + off + 12, l);
			off += 12 + l;
		}
		/* Reuse the larger buffer. */
		if (!c->inbox.p) {
			q.len = 0;
			c->inbox = q;
		} else {
			free(q.p);
		}
	}
	c->draining = false;
}

/* While a public call walks the operation list or handles a message, the
 * done callback may start an operation; its self-addressed messages must
 * wait (handling them could end an operation the caller still holds), so
 * the outermost call drains the inbox at its end. */
static bool
hold(struct amil_cas *c)
{
	bool outer = !c->draining;

	c->draining = true;
	return outer;
}

static void
release(struct amil_cas *c, bool outer)
{
	if (!outer)
		return;
	c->draining = false;
	drain(c);
}

/* ---- log load and rewrite -------------------------------------------- */

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Apply one log record payload; false if it does not parse. */
static bool
log_apply(struct amil_cas *c, const uint8_t *p, size_t n)
{
	struct rd r = { p, n, 1, false };
	size_t len;
	const uint8_t *name;
	struct rec *x;

	if (n < 1)
		return false;
	switch (p[0]) {
	case 1: {
		name = rname(&r, &len);
		struct ballot pb = rballot(&r), ab = rballot(&r);
		struct sv s = rstate(&r);
		if (r.bad || r.off != n || pb.round > ROUND_MAX || ab.round > ROUND_MAX ||
		    bcmp_b(ab, pb) > 0)
			return false;
		x = rec_get(c, name, len);
		if (!x || st_set(&x->acc, &s))
			return false;
		x->promised = pb;
		x->accepted = ab;
		see_round(c, pb.round);
		return true;
	}
	case 2: {
		name = rname(&r, &len);
		struct ballot b = rballot(&r);
		struct sv s = rstate(&r);
		if (r.bad || r.off != n || !ballot_ok(NULL, b))
			return false;
		x = rec_get(c, name, len);
		return x && learn(c, x, b, &s) == 0;
	}
	case 3: {
		uint64_t round = r64(&r);
		if (r.bad || r.off != n || round > ROUND_MAX)
			return false;
		see_round(c, round);
		return true;
	}
	default:
		return false;
	}
}

static int
log_read(const char *path, uint8_t **out, size_t *out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct buf b = { 0 };

	*out = NULL;
	*out_len = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (;;) {
		if (buf_reserve(&b, 65536)) {
			close(fd);
			free(b.p);
			return -ENOMEM;
		}
		ssize_t k = read(fd, b.p + b.len, b.cap - b.len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = -errno;
			close(fd);
			free(b.p);
			return e;
		}
		if (k == 0)
			break;
		b.len += (size_t)k;
	}
	close(fd);
	*out = b.p;
	*out_len = b.len;
	return 0;
}

static int
fsync_dir(const char *path)
{
	char *d = strdup(path);
	int rc = 0;

	if (!d)
		return -ENOMEM;
	char *slash = strrchr(d, '/');
	const char *dir = ".";
	if (slash == d)
		dir = "/";
	else if (slash) {
		*slash = 0;
		dir = d;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(d);
	return rc;
}

/* Load @path into @c, then rewrite it compacted and open it for append. */
static int
log_open(struct amil_cas *c, const char *path)
{
	uint8_t *data;
	size_t n, off = sizeof(log_magic);
	int rc = log_read(path, &data, &n);

	if (rc)
		return rc;
	/* Shorter than the magic: a torn first write (or a new file). */
	if (n && memcmp(data, log_magic, n < sizeof(log_magic) ? n : sizeof(log_magic)) != 0) {
		free(data);
		return -EBADMSG;
	}
	/* Records up to the first torn or corrupt one; the rest is cut. */
	while (n >= sizeof(log_magic) && n - off >= 8) {
		uint32_t l = ld32(data + off);
		if (l == 0 || l > LOG_REC_MAX || n - off - 8 < l)
			break;
		if (crc32_ieee(data + off + 4, l) != ld32(data + off + 4 + l))
			break;
		if (!log_apply(c, data + off + 4, l))
			break;
		off += 8 + (size_t)l;
	}
	free(data);

	/* Compacted rewrite: one ACCEPTOR and one LEARNED record per name. */
	struct buf b = { 0 };
	char *tmp = malloc(strlen(path) + 5);
	int fd = -1;
	rc = -ENOMEM;
	if (!tmp || buf_put(&b, log_magic, sizeof(log_magic)) || rec_round(&b, c->max_round))
		goto fail;
	for (size_t i = 0; i < c->cap; i++) {
		for (const struct rec *r = c->tab[i]; r; r = r->hnext) {
			if (!bnone(r->promised) && rec_acceptor(&b, r))
				goto fail;
			if (!bnone(r->learned) && rec_learned(&b, r))
				goto fail;
		}
	}
	strcpy(tmp, path);
	strcat(tmp, ".tmp");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = write_all(fd, b.p, b.len)))
		goto fail_unlink;
	if (fsync(fd)) {
		rc = -errno;
		goto fail_unlink;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path)) {
		rc = -errno;
		goto fail_unlink;
	}
	if ((rc = fsync_dir(path)))
		goto fail;
	c->log_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (c->log_fd < 0) {
		rc = -errno;
		goto fail;
	}
	c->stats.log_bytes = b.len;
	free(b.p);
	free(tmp);
	return 0;

fail_unlink:
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp);
fail:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(b.p);
	return rc;
}

/* ---- public ----------------------------------------------------------- */

struct amil_cas *
amil_cas_new(const struct amil_cas_config *cfg, uint64_t now_ns)
{
	struct amil_cas *c;
	int rc;

	if (!cfg || !cfg->send || cfg->self == 0 || cfg->n_members == 0 ||
	    cfg->n_members > AMIL_CAS_MEMBERS_MAX || !cfg->members) {
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		errno = ENOMEM;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	c->log_fd = -1;
	for (size_t i = 0; i < cfg->n_members; i++) {
		uint64_t id = cfg->members[i];
		if (id == 0 || member_idx(c, id) >= 0) {
			rc = -EINVAL;
			goto fail_cfg;
		}
		c->members[c->n_members++] = id;
	}
	if (member_idx(c, cfg->self) < 0) {
		rc = -EINVAL;
		goto fail_cfg;
	}
	c->self = cfg->self;
	c->majority = c->n_members / 2 + 1;
	c->op_timeout_ns = cfg->op_timeout_ns ? cfg->op_timeout_ns : 1000 * NS_PER_MS;
	c->ae_interval_ns = cfg->ae_interval_ns ? cfg->ae_interval_ns : 1000 * NS_PER_MS;
	c->max_ops = cfg->max_ops ? cfg->max_ops : 4096;
	c->send = cfg->send;
	c->alive = cfg->alive;
	c->done = cfg->done;
	c->ctx = cfg->ctx;
	c->now_ns = now_ns;
	c->next_ae_ns = now_ns + c->ae_interval_ns;
	c->next_op_id = 1;
	c->cap = 64;
	c->tab = calloc(c->cap, sizeof(*c->tab));
	c->leaf = calloc(AMIL_CAS_LEAVES, sizeof(*c->leaf));
	if (!c->tab || !c->leaf) {
		rc = -ENOMEM;
		goto fail_cfg;
	}
	if (cfg->log_path && (rc = log_open(c, cfg->log_path)))
		goto fail_log;
	return c;

fail_log:
fail_cfg:
	amil_cas_destroy(c);
	errno = -rc;
	return NULL;
}

void
amil_cas_destroy(struct amil_cas *c)
{
	if (!c)
		return;
	while (c->ops) {
		struct op *op = c->ops;
		op_unlink(c, op);
		op_free(op);
	}
	for (size_t i = 0; c->tab && i < c->cap; i++) {
		struct rec *r = c->tab[i], *next;
		for (; r; r = next) {
			next = r->hnext;
			st_clear(&r->acc);
			st_clear(&r->lrn);
			free(r);
		}
	}
	free(c->tab);
	free(c->leaf);
	free(c->inbox.p);
	free(c->pending.p);
	free(c->logbuf.p);
	if (c->log_fd >= 0)
		close(c->log_fd);
	free(c);
}

int
amil_cas_start(struct amil_cas *c, uint64_t now_ns, enum amil_cas_op op, const char *name,
	       size_t name_len, uint64_t owner, const void *value, size_t value_len,
	       uint64_t *op_id)
{
	const uint8_t *nm = (const uint8_t *)name;

	if (!c || !name || !name_ok(nm, name_len) || owner == 0 ||
	    (op != AMIL_CAS_REGISTER && op != AMIL_CAS_UNREGISTER && op != AMIL_CAS_REAP))
		return -EINVAL;
	if (op != AMIL_CAS_REGISTER)
		value_len = 0;
	if (value_len > AMIL_CAS_VALUE_MAX || (value_len && !value))
		return -EINVAL;
	c->now_ns = now_ns;
	if (c->n_ops >= c->max_ops)
		return -EBUSY;
	struct rec *r = rec_get(c, nm, name_len);
	if (!r)
		return -ENOMEM;
	if (r->op)
		return -EBUSY;
	struct op *o = calloc(1, sizeof(*o) + value_len);
	if (!o)
		return -ENOMEM;
	o->r = r;
	o->id = c->next_op_id++;
	o->owner = owner;
	o->kind = op;
	o->vlen = (uint16_t)value_len;
	if (value_len)
		memcpy(o->val, value, value_len);
	o->deadline_ns = now_ns + c->op_timeout_ns;
	o->next = c->ops;
	if (c->ops)
		c->ops->prev = o;
	c->ops = o;
	c->n_ops++;
	r->op = o;
	c->stats.ops_started++;
	if (op_id)
		*op_id = o->id;
	bool outer = hold(c);
	op_attempt(c, o);
	release(c, outer);
	return 0;
}

int
amil_cas_receive(struct amil_cas *c, uint64_t now_ns, uint64_t from, const uint8_t *buf,
		 size_t len)
{
	int rc;

	c->now_ns = now_ns;
	c->stats.msgs_rx++;
	if (member_idx(c, from) < 0) {
		c->stats.msgs_foreign++;
		return -EPERM;
	}
	if (!buf)
		len = 0;
	bool outer = hold(c);
	rc = handle(c, from, buf, len);
	if (rc == -EBADMSG)
		c->stats.msgs_bad++;
	release(c, outer);
	return rc;
}

void
amil_cas_tick(struct amil_cas *c, uint64_t now_ns)
{
	struct op *op, *next;

	c->now_ns = now_ns;
	bool outer = hold(c);
	for (op = c->ops; op; op = next) {
		next = op->next;
		if (now_ns >= op->deadline_ns) {
			c->stats.ops_timeout++;
			op_end(c, op, -ETIMEDOUT, &op->r->lrn);
		} else if (op->phase == PH_WAIT) {
			if (now_ns >= op->retry_at_ns) {
				c->stats.retries++;
				op_attempt(c, op);
			}
		} else if (now_ns >= op->attempt_end_ns) {
			op_backoff(c, op);
		}
	}
	if (c->n_members > 1 && now_ns >= c->next_ae_ns) {
		c->next_ae_ns = now_ns + c->ae_interval_ns;
		size_t start = randombytes_uniform((uint32_t)c->n_members);
		for (size_t k = 0; k < c->n_members; k++) {
			uint64_t id = c->members[(start + k) % c->n_members];
			if (id != c->self && (!c->alive || c->alive(c->ctx, id))) {
				send_digest(c, id);
				break;
			}
		}
	}
	release(c, outer);
}

int
amil_cas_flush(struct amil_cas *c)
{
	if (durable(c) && (c->logbuf.len || c->unsynced)) {
		size_t done = 0;
		int rc = 0;
		while (done < c->logbuf.len) {
			ssize_t k = write(c->log_fd, c->logbuf.p + done, c->logbuf.len - done);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				rc = -errno;
				break;
			}
			done += (size_t)k;
		}
		if (done) {
			memmove(c->logbuf.p, c->logbuf.p + done, c->logbuf.len - done);
			c->logbuf.len -= done;
			c->stats.log_bytes += done;
			c->unsynced = true;
		}
		if (rc)
			return rc;
		if (fdatasync(c->log_fd))
			return -errno;
		c->unsynced = false;
		c->stats.log_syncs++;
	}
	struct buf q = c->pending;
	c->pending = (struct buf){ 0 };
	for (size_t off = 0; off < q.len;) {
		uint64_t to;
		uint32_t l;
		memcpy(&to, q.p + off, 8);
		memcpy(&l, q.p + off + 8, 4);
		send_to(c, to, q.p + off + 12, l);
		off += 12 + l;
	}
	free(q.p);
	drain(c);
	return 0;
}

int
amil_cas_lookup(const struct amil_cas *c, const char *name, size_t len,
		struct amil_cas_state *out)
{
	if (!name || !name_ok((const uint8_t *)name, len))
		return -EINVAL;
	const struct rec *r = rec_find(c, (const uint8_t *)name, len);
	if (out) {
		if (r)
			st_export(&r->lrn, out);
		else
			memset(out, 0, offsetof(struct amil_cas_state, value));
	}
	return r && r->lrn.present ? 0 : -ENOENT;
}

int
amil_cas_foreach(const struct amil_cas *c,
		 int (*fn)(void *ctx, const char *name, size_t len,
			   const struct amil_cas_state *st),
		 void *ctx)
{
	struct amil_cas_state s;

	for (size_t i = 0; i < c->cap; i++) {
		for (const struct rec *r = c->tab[i]; r; r = r->hnext) {
			if (!r->lrn.present)
				continue;
			st_export(&r->lrn, &s);
			int rc = fn(ctx, (const char *)r->name, r->len, &s);
			if (rc)
				return rc;
		}
	}
	return 0;
}

size_t
amil_cas_count(const struct amil_cas *c)
{
	return c->n_present;
}

void
amil_cas_stats_get(const struct amil_cas *c, struct amil_cas_stats *out)
{
	*out = c->stats;
}
