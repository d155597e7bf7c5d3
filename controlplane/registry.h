/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The cluster registry as the daemon runs it: names -> (owner node,
 * value), replicated between the appliances' control planes over their
 * CURVE connections.
 *
 * Two modes, chosen per cluster (every appliance must use the same):
 *
 *  AP (default)  The names live in the add-wins observed-remove map
 *                (awormap.h).  Every appliance serves registrations on its
 *                side of a partition; a name registered on both sides is
 *                resolved on heal by the map's rule (greater (HLC, writer)
 *                wins), the loser's owner removes its entry and gets a
 *                name_conflict event naming the winner.
 *  CP            A registration is a CASPaxos round (caspaxos.h) over the
 *                configured cluster (this node and its allow-list): it
 *                succeeds only with a majority's acknowledgement, so a
 *                minority side refuses ("no majority: degraded") and no name
 *                ever has two owners.  Reads come from the local learned
 *                view (read-your-writes on the registering appliance).
 *
 * Whatever the mode, the same map carries group memberships and campaign
 * totals (groups.h, campaigns.h): those are CRDTs by nature, each entry is
 * written by one node only.
 *
 * Anti-entropy (AP map: every 500 ms a digest to one random alive peer;
 * CP learned view: caspaxos.c's own round) repairs anything a push lost.
 * Names of an owner dead (or left) for longer than the grace are removed:
 * in AP mode by the lowest alive node id (only what it wrote before it was
 * declared dead), in CP mode by a REAP round that needs a majority like
 * any other change.  An owner that was only cut off (a partition longer
 * than the grace) puts its entries back when the removal reaches it with
 * the heal (AP; it keeps what it wrote in ownset.h), so nothing an alive
 * appliance registered is lost.
 *
 * Thread-safety: one thread (the daemon's loop).
 */
#ifndef AMIL_REGISTRY_H
#define AMIL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "awormap.h"
#include "events.h"
#include "membership.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* First byte of the messages this module owns on the CURVE connections
 * (membership datagrams start with "AC"; groups.h owns 'B' and 'K'). */
#define AMIL_REG_MSG_DIGEST       'G'
#define AMIL_REG_MSG_STATE        'S'
#define AMIL_REG_MSG_DIGEST_REPLY 'H'
#define AMIL_REG_MSG_BATCH        'M'   /* writer u64, first seq u64, n x (u32 length, delta) */
#define AMIL_REG_MSG_ACK          'V'   /* writer u64, seq u64: all of its deltas up to seq */
#define AMIL_REG_MSG_LEAVES       'L'   /* leaf hashes of differing buckets */
#define AMIL_REG_MSG_LEAF_REQ     'Q'   /* leaf mask: send your state of these */
#define AMIL_REG_MSG_UNREGISTER   'U'   /* name: an operator elsewhere removed it */
#define AMIL_REG_MSG_CAS          'X'   /* caspaxos.c */

/* Map keys reserved for groups ("group:<group>:<node>") and campaign
 * totals ("camp:<campaign>:<currency>:<exponent>:<node>"); operators'
 * names may not start with them. */
#define AMIL_REG_GROUP_PREFIX "group:"
#define AMIL_REG_CAMP_PREFIX  "camp:"

enum amil_registry_mode { AMIL_REGISTRY_AP, AMIL_REGISTRY_CP };

/* Send a held control reply (see amil_registry_ctl()). */
typedef void (*amil_registry_reply_fn)(void *ctx, const char *buf, size_t len);

struct amil_registry_config {
	uint64_t node_id;
	uint64_t writer_id;            /* the map's dot writer: new per process life */
	enum amil_registry_mode mode;
	uint32_t grace_ms;             /* dead owner's names removed after this */
	const uint64_t *members;       /* CP: the configured cluster, self included */
	size_t n_members;
	const char *cp_log;            /* CP: acceptor log file (NULL: memory only) */
	struct amil_membership *m;     /* borrowed */
	struct amil_transport *tr;     /* borrowed */
	struct amil_events *ev;        /* borrowed */
	amil_registry_reply_fn reply;
	void *reply_ctx;
};

struct amil_registry;

/* Counters for status and Prometheus. */
struct amil_registry_stats {
	size_t names;                  /* registry names (mode's view; groups/totals excluded) */
	size_t map_entries, map_memory_bytes;
	uint64_t deltas_tx, deltas_rx, states_tx, states_rx, digests_tx, batches_tx, batches_rx;
	uint64_t bad, conflicts, reaped;
	uint64_t reasserted;           /* own entries put back after a reap by the other side */
	uint64_t resent_deltas, resent_bytes;  /* deltas a peer had missed, sent again */
	size_t log_bytes, log_deltas;  /* our deltas kept until acknowledged */
	uint64_t map_root;             /* the map's digest root: equal maps, equal roots */
	/* CP mode only */
	uint64_t cp_ops_ok, cp_ops_refused, cp_ops_timeout, cp_nacks, cp_retries, cp_bad;
};

/*
 * New registry.  @cfg is copied (members too).  Returns NULL with errno:
 * EINVAL (zero ids, CP without members), ENOMEM, or the CP log's error
 * (it is loaded here).  Caller owns the result: amil_registry_destroy().
 */
struct amil_registry *amil_registry_new(const struct amil_registry_config *cfg,
					uint64_t now_mono_ns);

/* Free @r (NULL: nothing). */
void amil_registry_destroy(struct amil_registry *r);

/* The mode, and for CP the majority and the configured cluster size. */
enum amil_registry_mode amil_registry_mode(const struct amil_registry *r);
unsigned amil_registry_quorum(const struct amil_registry *r);
unsigned amil_registry_cluster_size(const struct amil_registry *r);

/*
 * Send @kind followed by @buf to member @to over its CURVE connection.
 * Returns 0, -ENOENT (not a known peer), -ENOMEM, or the transport's error.
 */
int amil_registry_send(struct amil_registry *r, uint64_t to, uint8_t kind,
		       const uint8_t *buf, size_t len);

/*
 * Put @key -> @value owned by this node into the replicated map and push
 * the delta to every alive member (groups, campaign totals: always the
 * map, whatever the mode).  Returns 0 or the map's negative errno.
 */
int amil_registry_map_put(struct amil_registry *r, const char *key, const char *value);

/* Remove @key from the map and push the delta.  0, -ENOENT, -ENOMEM. */
int amil_registry_map_remove(struct amil_registry *r, const char *key);

/* Iterate the replicated map (every entry, groups and totals included). */
int amil_registry_map_foreach(const struct amil_registry *r, amil_awormap_iter_fn fn, void *ctx);

/*
 * A message whose first byte is one of AMIL_REG_MSG_* from member @from.
 * Returns 0 when handled (bad ones are counted), -ENOTSUP when the kind is
 * not this module's.
 */
int amil_registry_receive(struct amil_registry *r, uint64_t from, const uint8_t *buf,
			  size_t len);

/* Member @node was just seen alive (nodeup, unsuspect): exchange digests
 * with it now and a few times in the next 300 ms, so a heal converges in
 * milliseconds rather than at the next random round.  @was_dead (nodeup):
 * its CURVE connection is made anew first (transport.h). */
void amil_registry_peer_up(struct amil_registry *r, uint64_t node, uint64_t now_mono_ns,
			   bool was_dead);

/* Timers: anti-entropy, reaping of dead owners' names, CP retries and
 * deadlines.  Call every loop turn. */
void amil_registry_tick(struct amil_registry *r, uint64_t now_mono_ns);

/* After a loop turn's receives: make CP acceptor state durable and send
 * the replies that waited for it (group commit).  0 or -errno. */
int amil_registry_flush(struct amil_registry *r);

/*
 * Answer a control request: registry-list, registry-get NAME,
 * registry-register NAME VALUE, registry-unregister NAME,
 * registry-register-batch (then one "NAME VALUE" per line).  Writes the
 * JSON reply to @f and returns 0, or returns 1 when the reply is held
 * (CP rounds in flight): it is sent later through cfg.reply, and no other
 * request may be read before (REP socket).  -ENOTSUP: not a registry
 * command.
 */
int amil_registry_ctl(struct amil_registry *r, const char *cmd, const char *req, FILE *f);

/* True while a held reply is outstanding. */
bool amil_registry_pending(const struct amil_registry *r);

/* True while CP rounds are in flight: the loop should then turn every few
 * milliseconds (round attempts time out after 25 ms). */
bool amil_registry_busy(const struct amil_registry *r);

void amil_registry_stats_get(const struct amil_registry *r, struct amil_registry_stats *out);

/* True if @name (@len bytes) is an internal key of the map (groups,
 * campaign totals), not an operator's registry name. */
bool amil_registry_is_internal(const uint8_t *name, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_REGISTRY_H */
