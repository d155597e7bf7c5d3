/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the registry CRDT codec and join (controlplane/
 * awormap.c): every byte string a peer can send as a delta, a state
 * (bucket- or leaf-restricted), a leaves message or a context message.
 *
 * Besides "does not crash", it aborts (a reported crash) when a property
 * that must hold for every input does not:
 *   - check and join return only 0, -EBADMSG or -EPROTONOSUPPORT (no
 *     allocation fails here), and agree with each other, except that a
 *     well-formed context message (kind 5) joins as 0 exactly when its
 *     root is the map's and as -ESTALE otherwise;
 *   - a well-formed context message, its root set to that of an empty
 *     map, leaves that map a context of exactly the message's (the state
 *     carries the same context bytes); set to the long-lived map's root,
 *     it changes that map's store in no way;
 *   - every map's own context message checks as kind 5 with its digest
 *     root, joins into itself as a no-op, and the long-lived map's joins
 *     into the per-input map as 0 or -ESTALE by the roots, -ESTALE
 *     changing nothing and 0 changing no entry;
 *   - a rejected message leaves the map byte-for-byte unchanged;
 *   - a full-mask state joined into an empty map re-encodes to exactly
 *     the input (one encoding per state, nothing ignored); so does a
 *     kind-3 state of all leaves; a kind-3 state with any other leaf set,
 *     encoded for the leaves it covers, re-encodes to exactly its names
 *     and entries;
 *   - a restricted state (partial bucket mask, or a kind-3 state short
 *     of all leaves) joined into an empty map leaves a context of exactly
 *     the dots of the entries it added: a restricted join does not take
 *     its sender's context (awormap.h, "Restricted joins");
 *   - amil_awormap_leaves_diff returns only a count, -EBADMSG or
 *     -EPROTONOSUPPORT; on error it sets no bit, else exactly count bits,
 *     and against an empty map exactly the non-zero leaf hashes differ;
 *     a leaves message is never a joinable message;
 *   - the leaves an accepted leaves message flags, encoded as a kind-3
 *     state of the long-lived map, check and re-encode exactly;
 *   - whatever a map holds after a join encodes to a state that checks,
 *     and joining that state back is a no-op (idempotence);
 *   - a long-lived map fed every input stays internally consistent the
 *     same way (state accumulates, which explores more of the join).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "awormap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint64_t
root(const struct amil_awormap *m)
{
	struct amil_awormap_digest d;

	amil_awormap_digest_get(m, &d);
	return d.root;
}

/* What joining the checked message @data (check result @rc, kind @kind)
 * into @m must return: a context message depends on the roots. */
static int
join_rc(const struct amil_awormap *m, const uint8_t *data, int rc, int kind)
{
	if (rc != 0 || kind != AMIL_AWORMAP_CONTEXT)
		return rc;
	return be64(data + 8) == root(m) ? 0 : -ESTALE;
}

static unsigned
popcount(const uint8_t *p, size_t n)
{
	unsigned c = 0;

	for (size_t i = 0; i < n; i++)
		c += (unsigned)__builtin_popcount(p[i]);
	return c;
}

/* Offset of the name count in a checked kind-2 or kind-3 state: what
 * follows is the store part, the context lies before it. */
static size_t
names_off(const uint8_t *s)
{
	size_t off = 8;
	uint32_t n;

	if (s[3] == AMIL_AWORMAP_STATE) {
		off += AMIL_AWORMAP_MASK_BYTES;
	} else {
		n = be32(s + off);
		off += 4 + (n < AMIL_AWORMAP_LEAF_MASK_BYTES / 2 ? 2 * (size_t)n
								 : AMIL_AWORMAP_LEAF_MASK_BYTES);
	}
	off += 4 + 16 * (size_t)be32(s + off);  /* vector */
	off += 4 + 16 * (size_t)be32(s + off);  /* cloud */
	return off;
}

/* Dots a checked state's context covers (saturating), from its vector
 * maxima and its cloud. */
static uint64_t
ctx_dots(const uint8_t *s)
{
	size_t off = names_off(s), p = 8;
	uint64_t n = 0;
	uint32_t n_vv;

	if (s[3] == AMIL_AWORMAP_STATE) {
		p += AMIL_AWORMAP_MASK_BYTES;
	} else {
		uint32_t l = be32(s + p);

		p += 4 + (l < AMIL_AWORMAP_LEAF_MASK_BYTES / 2 ? 2 * (size_t)l
							       : AMIL_AWORMAP_LEAF_MASK_BYTES);
	}
	n_vv = be32(s + p);
	p += 4;
	for (uint32_t i = 0; i < n_vv; i++, p += 16) {
		uint64_t max = (uint64_t)be32(s + p + 8) << 32 | be32(s + p + 12);

		n = n + max < n ? UINT64_MAX : n + max;
	}
	n = n + be32(s + p) < n ? UINT64_MAX : n + be32(s + p);  /* cloud dots */
	REQUIRE(p + 4 + 16 * (size_t)be32(s + p) == off);
	return n;
}

/* @m joined a restricted state into an empty map: its context holds
 * exactly its entries' dots (it covers them all, so equal counts mean
 * equal sets). */
static void
ctx_is_store(const struct amil_awormap *m)
{
	struct amil_awormap_stats st;
	uint8_t *s;
	size_t n;

	amil_awormap_stats_get(m, &st);
	REQUIRE(amil_awormap_encode_state(m, NULL, &s, &n) == 0);
	REQUIRE(ctx_dots(s) == st.entries);
	free(s);
}

/* Equal store parts (everything from the name count on). */
static bool
same_names(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
	size_t oa = names_off(a), ob = names_off(b);

	return na - oa == nb - ob && memcmp(a + oa, b + ob, na - oa) == 0;
}

/* A kind-3 state of @m for @lm, joined into an empty map, re-encodes to
 * the same names and entries (to itself when it covers every leaf), and
 * leaves the map a context of its entries' dots only. */
static void
leaf_state_round_trip(const struct amil_awormap *m, const uint8_t *lm)
{
	static uint8_t back[AMIL_AWORMAP_LEAF_MASK_BYTES];
	struct amil_awormap *e = amil_awormap_new(0xf0220003, 0);
	uint8_t *s1, *s2;
	size_t n1, n2;
	int kind = 0;

	REQUIRE(e != NULL);
	REQUIRE(amil_awormap_encode_state_leaves(m, lm, &s1, &n1) == 0);
	REQUIRE(amil_awormap_check(s1, n1, &kind) == 0 && kind == AMIL_AWORMAP_STATE_LEAVES);
	REQUIRE(amil_awormap_state_leaf_mask(s1, n1, back) == 0);
	REQUIRE(memcmp(back, lm, sizeof(back)) == 0);
	REQUIRE(amil_awormap_join(e, 0, s1, n1, NULL, NULL) == 0);
	REQUIRE(amil_awormap_encode_state_leaves(e, lm, &s2, &n2) == 0);
	if (popcount(lm, AMIL_AWORMAP_LEAF_MASK_BYTES) == AMIL_AWORMAP_LEAVES) {
		REQUIRE(n1 == n2 && memcmp(s1, s2, n1) == 0);
	} else {
		REQUIRE(same_names(s1, n1, s2, n2));
		ctx_is_store(e);
	}
	free(s1);
	free(s2);
	amil_awormap_destroy(&e);
}

/* The leaves-message properties (see the top) for @data. */
static void
leaves(const struct amil_awormap *acc, const struct amil_awormap *empty,
       const uint8_t *data, size_t size)
{
	static uint8_t lm[AMIL_AWORMAP_LEAF_MASK_BYTES];
	unsigned nonzero = 0;
	int rc;

	memset(lm, 0, sizeof(lm));
	rc = amil_awormap_leaves_diff(empty, data, size, lm);
	REQUIRE(rc >= 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);
	REQUIRE(popcount(lm, sizeof(lm)) == (unsigned)(rc > 0 ? rc : 0));
	if (rc < 0)
		return;
	REQUIRE(amil_awormap_check(data, size, NULL) == -EBADMSG);
	REQUIRE(size == AMIL_AWORMAP_LEAVES_LEN((size - 10) / (1 + 8 * AMIL_AWORMAP_LEAVES_PER_BUCKET)));
	for (size_t i = 10; i < size; i += 1 + 8 * AMIL_AWORMAP_LEAVES_PER_BUCKET)
		for (size_t l = 0; l < AMIL_AWORMAP_LEAVES_PER_BUCKET; l++)
			for (size_t k = 0; k < 8; k++)
				if (data[i + 1 + 8 * l + k]) {
					nonzero++;
					break;
				}
	REQUIRE((unsigned)rc == nonzero);
	/* the long-lived map: a well-formed message diffs with the same
	 * result codes, and its flagged leaves make a valid kind-3 state */
	memset(lm, 0, sizeof(lm));
	rc = amil_awormap_leaves_diff(acc, data, size, lm);
	REQUIRE(rc >= 0 && popcount(lm, sizeof(lm)) == (unsigned)rc);
	leaf_state_round_trip(acc, lm);
}

static void
state(const struct amil_awormap *m, uint8_t **s, size_t *n)
{
	REQUIRE(amil_awormap_encode_state(m, NULL, s, n) == 0);
	REQUIRE(amil_awormap_check(*s, *n, NULL) == 0);
}

static void
no_conflict_check(void *ctx, const struct amil_awormap_entry *w,
		  const struct amil_awormap_entry *l)
{
	(void)ctx;
	/* the rule: the winner orders after the loser */
	REQUIRE(w->hlc > l->hlc || (w->hlc == l->hlc && w->dot_node >= l->dot_node));
	REQUIRE(w->name_len == l->name_len && memcmp(w->name, l->name, w->name_len) == 0);
}

/* A well-formed context message @data: with an empty map's root it gives
 * that map exactly its context; with @acc's root it merges into @acc and
 * leaves @acc's entries as they were. */
static void
context_forged(struct amil_awormap *acc, const uint8_t *data, size_t size)
{
	struct amil_awormap *e = amil_awormap_new(0xf0220004, 0);
	uint8_t *msg = malloc(size), *s1, *s2;
	size_t n1, n2, off;
	uint64_t r;

	REQUIRE(e != NULL && msg != NULL);
	memcpy(msg, data, size);
	r = root(e);
	for (int k = 0; k < 8; k++)
		msg[8 + k] = (uint8_t)(r >> (56 - 8 * k));
	REQUIRE(amil_awormap_join(e, 0, msg, size, NULL, NULL) == 0);
	state(e, &s1, &n1);
	/* an empty store: the state is header, mask, context, 0 names */
	off = 8 + AMIL_AWORMAP_MASK_BYTES;
	REQUIRE(names_off(s1) == n1 - 4 && n1 - 4 - off == size - 16);
	REQUIRE(memcmp(s1 + off, msg + 16, size - 16) == 0);
	free(s1);
	/* idempotent */
	REQUIRE(amil_awormap_join(e, 0, msg, size, NULL, NULL) == 0);
	state(e, &s2, &n2);
	REQUIRE(n2 == n1);
	free(s2);

	r = root(acc);
	for (int k = 0; k < 8; k++)
		msg[8 + k] = (uint8_t)(r >> (56 - 8 * k));
	state(acc, &s1, &n1);
	REQUIRE(amil_awormap_join(acc, 0, msg, size, NULL, NULL) == 0);
	state(acc, &s2, &n2);
	REQUIRE(same_names(s1, n1, s2, n2));
	REQUIRE(root(acc) == r);
	free(s1);
	free(s2);
	free(msg);
	amil_awormap_destroy(&e);
}

/* @from's own context message, joined into @to. */
static void
context_between(const struct amil_awormap *from, struct amil_awormap *to)
{
	uint8_t *c, *s1, *s2;
	size_t n, n1, n2;
	int kind = 0, want = root(from) == root(to) ? 0 : -ESTALE;

	REQUIRE(amil_awormap_encode_context(from, &c, &n) == 0);
	REQUIRE(amil_awormap_check(c, n, &kind) == 0 && kind == AMIL_AWORMAP_CONTEXT);
	REQUIRE(be64(c + 8) == root(from));
	state(to, &s1, &n1);
	REQUIRE(amil_awormap_join(to, 0, c, n, NULL, NULL) == want);
	state(to, &s2, &n2);
	if (want)
		REQUIRE(n1 == n2 && memcmp(s1, s2, n1) == 0);
	else if (from == to)
		REQUIRE(n1 == n2 && memcmp(s1, s2, n1) == 0);  /* its own: a no-op */
	else
		REQUIRE(same_names(s1, n1, s2, n2));
	free(s1);
	free(s2);
	free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct amil_awormap *acc;
	static unsigned inputs;
	struct amil_awormap *m;
	uint8_t *s1, *s2;
	size_t n1, n2;
	int kind = 0, rc, arc;

	/* the long-lived replica; renewed now and then to bound memory */
	if (acc == NULL || ++inputs % 4096 == 0) {
		amil_awormap_destroy(&acc);
		acc = amil_awormap_new(0xf0220002, 0);
		REQUIRE(acc != NULL);
	}

	rc = amil_awormap_check(data, size, &kind);
	REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);

	m = amil_awormap_new(0xf0220001, 0);
	REQUIRE(m != NULL);
	REQUIRE(amil_awormap_join(m, 0, data, size, no_conflict_check, NULL) ==
		join_rc(m, data, rc, kind));
	if (rc == 0 && kind == AMIL_AWORMAP_CONTEXT)
		context_forged(acc, data, size);
	context_between(m, m);
	state(m, &s1, &n1);
	if (rc == 0 && kind == AMIL_AWORMAP_STATE && size >= 8 + AMIL_AWORMAP_MASK_BYTES) {
		static const uint8_t all[AMIL_AWORMAP_MASK_BYTES] = {
			[0 ... AMIL_AWORMAP_MASK_BYTES - 1] = 0xff };

		if (memcmp(data + 8, all, sizeof(all)) == 0)
			REQUIRE(n1 == size && memcmp(s1, data, size) == 0);
	}
	{
		/* a state's leaf set: there for kinds 2 and 3, and a kind-3
		 * state re-encodes exactly for its own leaves */
		static uint8_t lm[AMIL_AWORMAP_LEAF_MASK_BYTES];
		int lrc = amil_awormap_state_leaf_mask(data, size, lm);

		REQUIRE(lrc == (rc == 0 && (kind == AMIL_AWORMAP_DELTA ||
					    kind == AMIL_AWORMAP_CONTEXT) ? -EBADMSG : rc));
		bool all = lrc == 0 && popcount(lm, sizeof(lm)) == AMIL_AWORMAP_LEAVES;

		if (lrc == 0 && kind == AMIL_AWORMAP_STATE_LEAVES) {
			uint8_t *s3;
			size_t n3;

			REQUIRE(amil_awormap_encode_state_leaves(m, lm, &s3, &n3) == 0);
			if (all)
				REQUIRE(n3 == size && memcmp(s3, data, size) == 0);
			else
				REQUIRE(same_names(s3, n3, data, size));
			free(s3);
		}
		/* a restricted state gave m no dot but those it added */
		if (lrc == 0 && !all)
			ctx_is_store(m);
	}
	/* m is empty here when the input is a leaves message (it did not
	 * join); only kind-4 headers go there, to keep the rate up */
	if (size >= 4 && data[3] == AMIL_AWORMAP_LEAF_HASHES)
		leaves(acc, m, data, size);
	/* idempotent: joining its own state changes nothing */
	REQUIRE(amil_awormap_join(m, 0, s1, n1, NULL, NULL) == 0);
	state(m, &s2, &n2);
	REQUIRE(n1 == n2 && memcmp(s1, s2, n1) == 0);
	free(s2);
	free(s1);
	/* last: it may give m acc's context, which the checks above exclude */
	context_between(acc, m);
	amil_awormap_destroy(&m);

	state(acc, &s1, &n1);
	arc = join_rc(acc, data, rc, kind);
	REQUIRE(amil_awormap_join(acc, 0, data, size, no_conflict_check, NULL) == arc);
	state(acc, &s2, &n2);
	if (arc != 0)
		REQUIRE(n1 == n2 && memcmp(s1, s2, n1) == 0);
	free(s1);
	free(s2);
	return 0;
}
