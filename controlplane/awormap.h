/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The cluster registry's replicated state: an add-wins observed-remove map
 * (AWOR-map) as a delta-state CRDT (Almeida, Shoker, Baquero, "Delta State
 * Replicated Data Types", 2018), mapping a name to (owner node id, value
 * of at most 1 KiB, HLC timestamp).
 *
 * Model.  A replica holds a dot store and a causal context.  Every put
 * creates a new dot (writer node, counter) carrying the entry; a put or a
 * remove "observes" the dots of the name it replaces, and the causal
 * context records every dot the replica has ever seen.  Joining state X
 * into Y keeps a dot that is in both stores, or in one store and not yet
 * in the other's context; a dot in the other's context but not in its
 * store was removed there, and goes.  Add wins: a put concurrent with a
 * remove keeps its dot because the remove did not observe it.
 *
 * Conflicts (AP mode heal).  Two concurrent puts of one name leave two
 * dots.  The deterministic rule every replica applies: the entry with the
 * greater (HLC timestamp, writer node id) wins, lookups return it, and
 * amil_awormap_join() reports each loser to the caller's callback (the
 * daemon emits name_conflict to the loser's owner).  The losers stay in
 * the store until a node calls amil_awormap_resolve(), an ordinary
 * observed-remove of the losing dots, so the rule never needs a second
 * round of agreement and the join stays a lattice join.
 *
 * Garbage.  There are no per-name tombstones: a removed dot lives on only
 * in the causal context, which is a version vector (per node, every
 * counter up to max has been seen) plus a dot cloud for the counters seen
 * beyond a gap.  A cloud dot that becomes contiguous is folded into the
 * vector, so once a node's dots are causally stable here (none missing)
 * they cost 16 bytes per writer node in total.  Gaps appear only when
 * deltas are lost.  The anti-entropy closes those of entries that still
 * exist (it ships them); the gap of an entry put and removed while both
 * its deltas were lost closes only with a delta, a full state or a
 * context message that covers its dot (see "Restricted joins" and
 * "Context messages"), and until then every dot of that writer above the
 * gap costs 8 bytes in the cloud.
 *
 * Replication.  Each mutation returns a delta (encoded bytes) to push to
 * every peer; amil_awormap_join() applies a delta or a state.  Anti-
 * entropy: peers exchange amil_awormap_digest_get() (a hash per name bucket,
 * 256 buckets, and a root over the buckets), and each sends
 * amil_awormap_encode_state() restricted to the buckets
 * amil_awormap_digest_diff() reports.  A bucket-restricted state join
 * only touches names in those buckets; it is exact when the other buckets
 * are equal, and anything it misses shows up in the next digest.
 *
 * Leaves.  With 100k names and a few hundred writes on each side of a
 * partition nearly every bucket differs, and the bucket exchange ships
 * nearly the whole registry.  So a bucket is split again into 256 leaves
 * (65536 in all; a name's leaf is the top 16 bits of its hash: the bucket
 * bits, then 8 more), and a bucket hash is the sum of its leaves' hashes,
 * which are the sums of their entries' hashes.  The heal then runs:
 *   A -> B  digest;
 *   B -> A  amil_awormap_leaves_encode() for the buckets that differ
 *           (2 KiB per bucket: 256 leaf hashes);
 *   A       amil_awormap_leaves_diff() -> the leaves that differ;
 *   A -> B  amil_awormap_encode_state_leaves() for those leaves (kind 3);
 *   B -> A  its own kind-3 state for the same leaves (B reads them off
 *           A's message with amil_awormap_state_leaf_mask()).
 * A kind-3 join is a kind-2 join at leaf granularity: it only touches
 * names in the covered leaves and is exact when the other leaves are
 * equal.  The names in a differing leaf travel whole (about 1.5 names per
 * leaf at 100k names), so a heal ships a few entries per write, not the
 * registry.
 *
 * Restricted joins.  A restricted state (kind 2 with a partial bucket
 * mask, or kind 3 short of all 65536 leaves) carries its sender's whole
 * causal context but only the entries of the names it covers.  Joining
 * it touches only those names: it adds their entries this replica has
 * not seen, removes their entries the sender saw and no longer has, and
 * grows the context ONLY by the dots it added and removed.  It must not
 * take the rest of the sender's context: a dot of an uncovered name that
 * this replica lacks (its delta still in flight) would read as "seen and
 * removed", so the entry would be refused when it arrives and this
 * replica's next restricted state would remove it from its peers (names
 * were lost that way, bench/registry-partition-bench.sh, 2026-11-26).
 * Deltas and full states (every bucket, or every leaf) join their whole
 * context: a delta's context is only what its operation observed, and a
 * full state's context describes its whole store.
 *   The price: a replica learns the dots of entries that were put and
 * removed elsewhere while it was away only from a delta or a full state,
 * so the contexts of replicas with equal stores may differ.  What they
 * show is the same, and the digest root covers the buckets only, so they
 * compare equal.  If such an entry's put delta arrives late and its
 * remove's delta was lost, the entry shows here until the next exchange
 * with a replica that saw the remove (its restricted state removes it;
 * it never comes back there, whose context covers its dot).
 *
 * Context messages.  The gaps restricted joins leave are closed by a
 * context message (amil_awormap_encode_context(), kind 5): the sender's
 * digest root and its whole causal context, no entries.  The receiver
 * merges that context only when its own current root equals the
 * message's; otherwise the join is -ESTALE and changes nothing.  The
 * anti-entropy sends one when the digests it exchanged show equal roots
 * but different context hashes (the stores agree, the contexts do not).
 * Why merging is safe then:
 *   - every dot in any replica's context is in its store or was removed
 *     (observed by a put, remove or resolve that replaced it): a delta's
 *     context is the dots its operation observed plus its new dot; a
 *     full state's or a context message's context satisfies this at its
 *     sender; a restricted join adds only dots it stored or removed
 *     (that is why it must not take the rest, "Restricted joins");
 *   - equal roots mean equal stores (up to a 64-bit hash collision), so a
 *     dot in the sender's context that the receiver's lacks is not in the
 *     sender's store (the receiver's would hold it, and every stored dot
 *     is in its holder's context): it belongs to an entry both removed;
 *   - marking a removed dot seen loses nothing: the entry it named is
 *     dead everywhere the removal reaches, and its put delta, if it
 *     arrives late, is refused as the reference model says it must be.
 * The root is the sender's at encode time; a message that arrives late
 * is still safe (a receiver whose store equals the sender's store then
 * may take the sender's context then), it just matches less often.
 * Never merge a context whose root differs: a dot of an entry the
 * receiver lacks (its delta in flight) would read as "removed" (the bug
 * "Restricted joins" describes).
 *
 * Node ids: a node id must never write again with a fresh (empty) state
 * after it has written: its counters would restart and collide with dots
 * the cluster already saw.  The daemon uses a new id per process start
 * (or joins a full state from a peer before its first write).
 *
 * Wire format (all integers big-endian, version 1); the same codec
 * carries deltas (kind 1), states (kind 2), leaf-restricted states
 * (kind 3) and context messages (kind 5):
 *
 *    0  magic     u16  0x4152 "AR" (Amil Registry)
 *    2  version   u8   1
 *    3  kind      u8   1 delta, 2 state, 3 leaf state, 5 context
 *    4  reserved  u32  0
 *    8  root      kind 5 only: u64, the sender's digest root
 *       mask      kind 2 only: 32 bytes, bit b set = bucket b included
 *                 (bit b is bit b % 8 of byte b / 8, as in every mask)
 *       leaves    kind 3 only: n_leaves u32 (0..65536), then
 *                 n_leaves < 4096: n_leaves x leaf index u16, strictly
 *                 ascending (shorter than the bitmap);
 *                 n_leaves >= 4096: the 8192-byte leaf bitmap, bit l =
 *                 leaf l, exactly n_leaves bits set
 *       n_vv      u32, then n_vv x (node u64 != 0, max u64 != 0),
 *                 nodes strictly ascending; always 0 in a delta
 *       n_cloud   u32, then n_cloud x (node u64 != 0, ctr u64 != 0),
 *                 (node, ctr) strictly ascending; in a state or a
 *                 context message also ctr > vv(node) + 1 (compacted).
 *                 A delta lists each of its (few) context dots, so
 *                 joining it costs O(its dots), never a walk over the
 *                 store.
 *       n_names   u32 (absent in kind 5, which ends after its cloud),
 *                 then per name:
 *                 name_len u8 (1..255), name bytes,
 *                 n_items u16 (>= 1), then per item (dots strictly
 *                 ascending, each covered by this message's context):
 *                 node u64 != 0, ctr u64 != 0, owner u64 != 0, hlc u64,
 *                 value_len u16 (<= 1024), value bytes
 *       names strictly ascending (bytewise, a prefix first); no dot
 *       twice in a message; in a kind-2 state each name's bucket is in
 *       the mask, in a kind-3 state each name's leaf is in the leaves;
 *       nothing after the last name.
 * A kind-3 state carries the whole causal context, as kind 2 does; a
 * restricted join uses it only to decide what the covered names lost
 * (see "Restricted joins").
 * A message has exactly one encoding, so equal states encode to equal
 * bytes on every replica.  A kind-5 message is therefore
 *    0  header (kind 5), 8 root u64, 16 n_vv u32 ..., n_cloud u32 ...
 * and nothing after the cloud.
 *
 * Leaves message (amil_awormap_leaves_encode; not joinable, kind 4):
 *
 *    0  magic     u16  0x4152
 *    2  version   u8   1
 *    3  kind      u8   4
 *    4  reserved  u32  0
 *    8  n_buckets u16  0..256
 *   10  n_buckets x (bucket u8, 256 x leaf hash u64), buckets strictly
 *       ascending; nothing after.  Length 10 + 2049 x n_buckets.
 * A leaf hash is the sum mod 2^64 of its entries' hashes (0: empty).
 *
 * Threads: an amil_awormap belongs to one thread (the daemon's actor);
 * none of the calls lock.  The codec checks (amil_awormap_check) touch no
 * state and are safe anywhere.  Allocation: control path only.
 */
#ifndef AMIL_AWORMAP_H
#define AMIL_AWORMAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_AWORMAP_MAGIC      0x4152  /* "AR" */
#define AMIL_AWORMAP_VERSION    1
#define AMIL_AWORMAP_NAME_MAX   255     /* bytes; names are opaque bytes */
#define AMIL_AWORMAP_VALUE_MAX  1024    /* bytes */
#define AMIL_AWORMAP_BUCKETS    256
#define AMIL_AWORMAP_MASK_BYTES (AMIL_AWORMAP_BUCKETS / 8)
/* Encoded digest: root, context hash (information only), one hash per
 * bucket. */
#define AMIL_AWORMAP_DIGEST_LEN (8 + 8 + 8 * AMIL_AWORMAP_BUCKETS)
/* Second level: a name's leaf is the top 16 bits of its hash, so leaf l
 * lies in bucket l / 256 and a bucket's leaves are consecutive. */
#define AMIL_AWORMAP_LEAVES_PER_BUCKET 256
#define AMIL_AWORMAP_LEAVES (AMIL_AWORMAP_BUCKETS * AMIL_AWORMAP_LEAVES_PER_BUCKET)
#define AMIL_AWORMAP_LEAF_MASK_BYTES (AMIL_AWORMAP_LEAVES / 8)
/* Encoded leaves message carrying @n buckets. */
#define AMIL_AWORMAP_LEAVES_LEN(n) (10 + (size_t)(n) * (1 + 8 * AMIL_AWORMAP_LEAVES_PER_BUCKET))

enum amil_awormap_kind {
	AMIL_AWORMAP_DELTA = 1,
	AMIL_AWORMAP_STATE = 2,
	AMIL_AWORMAP_STATE_LEAVES = 3,  /* state restricted to leaves */
	AMIL_AWORMAP_LEAF_HASHES = 4,   /* leaves message: compared, never joined */
	AMIL_AWORMAP_CONTEXT = 5,       /* root + causal context ("Context messages") */
};

struct amil_awormap;

/* One registry entry as the map holds it.  Pointers are into the map and
 * valid until its next mutation or join. */
struct amil_awormap_entry {
	const uint8_t *name;
	size_t name_len;
	uint64_t owner;          /* node that owns the name */
	const uint8_t *value;
	size_t value_len;        /* <= AMIL_AWORMAP_VALUE_MAX */
	uint64_t hlc;            /* HLC timestamp of the put (hlc.h) */
	uint64_t dot_node;       /* writer node id: the HLC tie-break */
	uint64_t dot_ctr;        /* writer's counter */
};

/* Anti-entropy digest.  Equal stores have equal roots and bucket hashes
 * (whatever their contexts); a bucket hash covers the entries of the
 * names hashed into that bucket, and is the sum (mod 2^64) of its 256
 * leaf hashes (amil_awormap_leaves_encode). */
struct amil_awormap_digest {
	uint64_t root;           /* hash of every bucket hash (not of ctx) */
	uint64_t ctx;            /* hash of the causal context: information
				  * only, it may differ between replicas
				  * with equal stores ("Restricted joins") */
	uint64_t bucket[AMIL_AWORMAP_BUCKETS];
};

/* Called by amil_awormap_join() once per (name, losing entry) when the
 * join leaves a name with concurrent entries and added one of them. */
typedef void (*amil_awormap_conflict_fn)(void *ctx,
					 const struct amil_awormap_entry *winner,
					 const struct amil_awormap_entry *loser);

/* Called by the iterators; return non-zero to stop (that value is
 * returned by the iterator). */
typedef int (*amil_awormap_iter_fn)(void *ctx, const struct amil_awormap_entry *e);

/*
 * New empty replica for node @self_id (!= 0).  @max_drift_ns bounds how
 * far ahead of local time a received HLC may pull the local clock
 * (hlc.h; 0: unbounded).  Returns NULL with errno EINVAL or ENOMEM.
 * Caller owns the result: amil_awormap_destroy().
 */
struct amil_awormap *amil_awormap_new(uint64_t self_id, uint64_t max_drift_ns);

/* Free *@mp and set it to NULL.  Accepts NULL and a pointer to NULL. */
void amil_awormap_destroy(struct amil_awormap **mp);

/*
 * Register or update @name (1..AMIL_AWORMAP_NAME_MAX bytes) -> (@owner
 * != 0, @value of @value_len <= AMIL_AWORMAP_VALUE_MAX bytes) at local
 * physical time @now_ns.  Replaces every entry of @name this replica has
 * seen (including concurrent losers).  Visible to amil_awormap_lookup()
 * on return (read-your-writes).
 *
 * On success *@delta (malloc'd, caller frees) holds the delta to push to
 * every peer, *@delta_len its length.
 * Returns 0, -EINVAL (bad length or zero owner), -ENOMEM (map unchanged).
 */
int amil_awormap_put(struct amil_awormap *m, uint64_t now_ns,
		     const void *name, size_t name_len, uint64_t owner,
		     const void *value, size_t value_len,
		     uint8_t **delta, size_t *delta_len);

/*
 * Unregister @name: removes every entry of it this replica has seen (an
 * entry put concurrently elsewhere survives: add wins).  Delta as for put.
 * Returns 0, -ENOENT (no such name; no delta), -EINVAL, -ENOMEM.
 */
int amil_awormap_remove(struct amil_awormap *m, const void *name, size_t name_len,
			uint8_t **delta, size_t *delta_len);

/*
 * Apply the conflict rule to @name for good: remove its losing entries
 * (all but the greatest (HLC, node id)), keeping the winner.  Delta as for
 * put.  Returns 0, -ENOENT (no name or no conflict; no delta), -EINVAL,
 * -ENOMEM.
 */
int amil_awormap_resolve(struct amil_awormap *m, const void *name, size_t name_len,
			 uint8_t **delta, size_t *delta_len);

/*
 * The winning entry of @name into *@out.  Returns 0 or -ENOENT.
 */
int amil_awormap_lookup(const struct amil_awormap *m, const void *name,
			size_t name_len, struct amil_awormap_entry *out);

/* Call @fn with each name's winning entry, in no particular order.
 * Returns 0 or the first non-zero value @fn returned.  @fn must not
 * mutate @m. */
int amil_awormap_foreach(const struct amil_awormap *m, amil_awormap_iter_fn fn, void *ctx);

/* As amil_awormap_foreach() but every entry, losers included. */
int amil_awormap_foreach_entry(const struct amil_awormap *m, amil_awormap_iter_fn fn,
			       void *ctx);

/* Number of names (not entries). */
size_t amil_awormap_count(const struct amil_awormap *m);

/*
 * Join a delta, a (possibly bucket-restricted) state, a leaf-restricted
 * state or a context message received from a peer, at local physical
 * time @now_ns (the local HLC advances past the entries' timestamps
 * within the drift bound).  @conflict may be NULL.  A leaves message
 * (kind 4) is -EBADMSG here.  A delta or a full state joins its whole
 * causal context; a restricted state grows the context only by the dots
 * the join added or removed (see "Restricted joins" above).  A context
 * message (kind 5) joins its whole context when this replica's current
 * digest root equals the message's, and is -ESTALE otherwise ("Context
 * messages"); it never changes the store, the HLC or the digest, and
 * never calls @conflict.
 *
 * The message is checked completely before anything changes.
 * Returns 0; -EBADMSG (malformed), -EPROTONOSUPPORT (unknown version),
 * -ESTALE (kind 5 with another root; not an error, the caller ignores
 * it): map unchanged; -ENOMEM: the map is unchanged or holds part of the
 * join (still a valid state; anti-entropy repairs it; for kind 5, part
 * of the context, which is as safe as all of it).
 */
int amil_awormap_join(struct amil_awormap *m, uint64_t now_ns, const uint8_t *buf,
		      size_t len, amil_awormap_conflict_fn conflict, void *ctx);

/*
 * Check an encoded joinable message (kinds 1, 2, 3 and 5) without a map.
 * Returns 0 and its kind in *@kind (may be NULL), -EBADMSG,
 * -EPROTONOSUPPORT, or -ENOMEM (the duplicate-dot check sorts a copy of
 * the dots: 16 bytes per entry).  A kind-5 message checks without a root
 * comparison: that needs the map (amil_awormap_join()).
 */
int amil_awormap_check(const uint8_t *buf, size_t len, int *kind);

/*
 * Encode the state: the causal context and the names whose bucket bit is
 * set in @mask (AMIL_AWORMAP_MASK_BYTES; NULL = all buckets).
 * *@out is malloc'd (caller frees).  Returns 0 or -ENOMEM.
 */
int amil_awormap_encode_state(const struct amil_awormap *m, const uint8_t *mask,
			      uint8_t **out, size_t *out_len);

/*
 * Encode the state restricted to the leaves set in @leaf_mask
 * (AMIL_AWORMAP_LEAF_MASK_BYTES; NULL = all leaves) as a kind-3 message:
 * the whole causal context and the names whose leaf is set.  The leaf set
 * travels as a list of indices while that is shorter than the bitmap.
 * Cost: a walk of the buckets holding a set leaf.  *@out is malloc'd
 * (caller frees).  Returns 0 or -ENOMEM.
 */
int amil_awormap_encode_state_leaves(const struct amil_awormap *m, const uint8_t *leaf_mask,
				     uint8_t **out, size_t *len);

/*
 * Encode a context message (kind 5): this replica's digest root and its
 * whole causal context, no entries (see "Context messages").  Send it to
 * a peer whose digest root equals ours; its join merges the context and
 * closes the gaps that restricted joins left.  Size: 16 bytes + 16 per
 * writer node + 16 per cloud dot.  Cost: O(buckets + context).
 * *@out is malloc'd (caller frees).  Returns 0 or -ENOMEM.
 */
int amil_awormap_encode_context(const struct amil_awormap *m, uint8_t **out, size_t *len);

/*
 * The leaves a state message covers, into @leaf_mask
 * (AMIL_AWORMAP_LEAF_MASK_BYTES, every byte written): for a kind-3 state
 * its leaves, for a kind-2 state every leaf of its buckets.  The answering
 * side of a leaf exchange uses it to send its own state for the same
 * leaves.  The whole message is checked as by amil_awormap_check().
 * Returns 0; -EBADMSG (malformed, a delta or a context message),
 * -EPROTONOSUPPORT, -ENOMEM: @leaf_mask unchanged.
 */
int amil_awormap_state_leaf_mask(const uint8_t *buf, size_t len, uint8_t *leaf_mask);

/*
 * The leaf hashes of the buckets set in @bucket_mask
 * (AMIL_AWORMAP_MASK_BYTES; NULL = all buckets), encoded as a leaves
 * message (see the wire format above; AMIL_AWORMAP_LEAVES_LEN(buckets)
 * bytes) for a peer's amil_awormap_leaves_diff().  Maps above a few
 * thousand names keep the leaf hashes up to date (512 KiB); smaller ones
 * sum them from the bucket lists here.  *@out is malloc'd (caller frees).
 * Returns 0 or -ENOMEM.
 */
int amil_awormap_leaves_encode(const struct amil_awormap *m, const uint8_t *bucket_mask,
			       uint8_t **out, size_t *len);

/*
 * Compare a peer's leaves message (from amil_awormap_leaves_encode) with
 * this replica's leaves: set in @leaf_mask (AMIL_AWORMAP_LEAF_MASK_BYTES;
 * the caller zeroes it, bits are only set) every leaf of the message's
 * buckets whose hash differs.  The message is checked completely first.
 * Returns the number of differing leaves; -EBADMSG (malformed) or
 * -EPROTONOSUPPORT (unknown version): nothing set.
 */
int amil_awormap_leaves_diff(const struct amil_awormap *m, const uint8_t *buf, size_t len,
			     uint8_t *leaf_mask);

/* The digest of the current state into *@d: the bucket hashes, the root
 * over them, and the context hash (information only: it may differ
 * between replicas with equal stores).  O(buckets + context). */
void amil_awormap_digest_get(const struct amil_awormap *m, struct amil_awormap_digest *d);

/*
 * Set in @mask (AMIL_AWORMAP_MASK_BYTES) the buckets whose hashes differ
 * between @a and @b.  Returns the number of such buckets: 0 exactly when
 * the roots are equal (but for a 64-bit hash collision).  The context
 * hashes are not compared: a context-only difference needs no exchange.
 */
int amil_awormap_digest_diff(const struct amil_awormap_digest *a,
			     const struct amil_awormap_digest *b, uint8_t *mask);

/* Digest to/from AMIL_AWORMAP_DIGEST_LEN big-endian bytes.  Decode
 * returns 0 or -EBADMSG (wrong length). */
void amil_awormap_digest_encode(const struct amil_awormap_digest *d,
				uint8_t out[AMIL_AWORMAP_DIGEST_LEN]);
int amil_awormap_digest_decode(const uint8_t *buf, size_t len,
			       struct amil_awormap_digest *d);

/* Bookkeeping, for metrics and tests. */
struct amil_awormap_stats {
	size_t names;            /* names with at least one entry */
	size_t entries;          /* entries, losers included */
	size_t ctx_nodes;        /* writer nodes in the version vector */
	size_t ctx_cloud;        /* dots beyond a gap (lost deltas) */
	size_t memory_bytes;     /* malloc'd bytes, tables too; no allocator overhead */
	uint64_t hlc;            /* local HLC's last timestamp */
	uint64_t hlc_rejected;   /* received timestamps refused for drift */
};
void amil_awormap_stats_get(const struct amil_awormap *m, struct amil_awormap_stats *s);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_AWORMAP_H */
