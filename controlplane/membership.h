/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Cluster membership: one node's view of which amil-controlplane instances
 * are alive, after SWIM (Das, Gupta, Motivala 2002) with the Lifeguard
 * refinements (Dadgar et al. 2018) as HashiCorp memberlist implements them.
 *
 * This is the pure core: no I/O, no clock, no allocation after
 * amil_membership_new(), no global state.  The caller (the control-plane
 * actor thread, or the simulator in sim.h) passes the time in, hands over
 * received bytes, and gets outgoing bytes through a send callback and state
 * changes through an event callback.  Given the same inputs and seed it
 * produces the same outputs, which is what makes the simulator useful.
 *
 * Protocol, in one paragraph.  Every probe interval a node PINGs the next
 * member of a shuffled round-robin order.  With no ACK within the probe
 * timeout it PINGs again and asks k other members (PING_REQ) to probe on its
 * behalf; helpers forward the target's ACK or answer NACK.  With no ACK by
 * the end of the interval the target becomes SUSPECT.  A suspicion becomes
 * DEAD when its timeout passes; the timeout starts at max and shrinks
 * towards min as other members independently suspect the same incarnation
 * (Lifeguard dynamic suspicion).  A member refutes a suspicion about itself
 * by raising its incarnation and PINGing the accuser and k others with
 * its new record at once; ALIVE with a higher incarnation overrides
 * SUSPECT and DEAD, SUSPECT overrides ALIVE of the same incarnation, DEAD
 * overrides both, LEFT is only ever said by the node itself.  All state
 * changes travel piggybacked on PING/ACK (no separate broadcast): each
 * update is sent retransmit_mult * ceil(log10(n+1)) times, least-sent first.
 *
 * Lifeguard pieces: a local health multiplier (awareness, 0..max-1) grows
 * when our own probes fail or expected NACKs do not come (we are probably
 * the slow one) and when we must refute, and shrinks on each successful
 * probe; probe interval and timeout are multiplied by (awareness + 1).  The
 * buddy system: every message to a member we hold SUSPECT or DEAD carries
 * that claim, so the member learns of it (and refutes) on the first probe.
 * Every message also carries the sender's own record, which is how a node
 * joins (PING a seed) and how both sides of a healed partition, which
 * reconnect by pinging dead members every reconnect interval, learn that
 * they must refute.
 *
 * Threading: an instance is owned by one thread; no function may be called
 * concurrently on the same instance, and the callbacks must not call back
 * into the instance that invoked them.
 */
#ifndef AMIL_MEMBERSHIP_H
#define AMIL_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "membership_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

struct amil_membership;

enum amil_membership_profile {
	AMIL_MEMBERSHIP_LAN = 0,
	AMIL_MEMBERSHIP_WAN = 1,
};

/*
 * Timers and tunables.  amil_membership_config_init() fills them from a
 * profile; every field may be overridden afterwards.
 *
 *   field                    LAN       WAN      unit
 *   probe_interval_ns        100 ms    1 s
 *   probe_timeout_ns         40 ms     500 ms   must be < probe_interval_ns
 *   indirect_probes          3         3        helpers per failed probe
 *   suspicion_min_ns         150 ms    3 s      x max(1, log10(n))
 *   suspicion_max_mult       4         3        max timeout = mult x min
 *   suspicion_confirmations  3         3        capped at n - 2
 *   awareness_max            8         8        Lifeguard LHM ceiling
 *   retransmit_mult          4         4        x ceil(log10(n + 1))
 *   piggyback_max            6         6        1..AMIL_MWIRE_UPDATES_MAX
 *   reconnect_interval_ns    50 ms     5 s      ping a dead member; a seed that
 *                                                  has not answered: after 1, 2, 4,
 *                                                  then every 8 intervals (backoff)
 *   reap_ns                  60 s      10 min   dead/left record kept
 *   leave_linger_ns          500 ms    5 s      gossip after leave()
 *
 * LAN: a silent member is suspected within about two intervals and dead
 * after suspicion_min..max_mult x min: on 3-5 nodes every other member has
 * declared it dead 0.25-0.8 s after it stopped (simulated p99 0.73 s, with
 * or without 10 % loss; controlplane/README.md has the figures).  WAN:
 * RTTs to 300 ms; 4-12 s.
 */
struct amil_membership_timers {
	uint64_t probe_interval_ns;
	uint64_t probe_timeout_ns;
	uint32_t indirect_probes;
	uint64_t suspicion_min_ns;
	uint32_t suspicion_max_mult;
	uint32_t suspicion_confirmations;
	uint32_t awareness_max;
	uint32_t retransmit_mult;
	uint32_t piggyback_max;
	uint64_t reconnect_interval_ns;
	uint64_t reap_ns;
	uint64_t leave_linger_ns;
};

/**
 * Outgoing message.  @buf (@len bytes, at most AMIL_MWIRE_MSG_MAX) is only
 * valid during the call: copy it.  @to_addr is the address blob the member
 * announced (or was given to amil_membership_add_seed()); the transport
 * interprets it.  Delivery is best effort: the protocol expects loss.
 */
typedef void (*amil_membership_send_fn)(void *ctx, uint64_t to_id,
					const uint8_t *to_addr, size_t to_addr_len,
					const uint8_t *buf, size_t len);

enum amil_membership_event_type {
	AMIL_MEMBERSHIP_EV_NODEUP = 1,    /* new, or back from dead/left */
	AMIL_MEMBERSHIP_EV_SUSPECT = 2,   /* alive -> suspect */
	AMIL_MEMBERSHIP_EV_UNSUSPECT = 3, /* suspect -> alive: suspicion refuted */
	AMIL_MEMBERSHIP_EV_NODEDOWN = 4,  /* -> dead */
	AMIL_MEMBERSHIP_EV_LEFT = 5,      /* -> left (graceful) */
	AMIL_MEMBERSHIP_EV_MAX
};

struct amil_membership_event {
	uint8_t type;              /* enum amil_membership_event_type */
	uint64_t node_id;          /* the member concerned, never self */
	uint32_t incarnation;      /* its incarnation after the change */
	uint64_t from_id;          /* who declared it (suspector, declarer) */
	uint64_t at_ns;            /* the now_ns of the call that caused it */
	const char *name;          /* member name, valid during the call */
};

/** Event notification; @ev is only valid during the call. */
typedef void (*amil_membership_event_fn)(void *ctx, const struct amil_membership_event *ev);

struct amil_membership_config {
	uint64_t cluster_id;       /* carried in every message, must match */
	uint64_t self_id;          /* not 0; unique in the cluster */
	const char *name;          /* up to AMIL_MEMBERSHIP_NAME_MAX bytes; copied */
	const uint8_t *addr;       /* our address blob, copied; may be NULL if 0 */
	size_t addr_len;           /* 0..AMIL_MEMBERSHIP_ADDR_MAX */
	uint32_t max_members;      /* table size, self included; 2..65535 */
	uint64_t seed;             /* probe order, sequence numbers, helpers */
	/* Start incarnation.  A restarted node should start above its last
	 * life (persisted counter or wall-clock seconds) so that its ALIVE
	 * overrides the DEAD the cluster holds; if it does not, it still
	 * recovers by refuting the first DEAD claim it hears. */
	uint32_t initial_incarnation;
	struct amil_membership_timers timers;
	amil_membership_send_fn send;       /* required */
	void *send_ctx;
	amil_membership_event_fn on_event;  /* may be NULL */
	void *event_ctx;
};

/*
 * Counters: monotonic since creation.  "Probe" means this node's own
 * failure-detection probe; "served" means work done for another prober.
 */
struct amil_membership_counters {
	uint64_t msgs_sent;
	uint64_t msgs_received;           /* decoded and accepted */
	uint64_t probes_sent;             /* direct PINGs of own probes (re-ping included) */
	uint64_t acks_received;           /* ACKs that completed an own probe */
	uint64_t probe_failures;          /* own probes with no ACK at all */
	uint64_t indirect_probes_sent;    /* PING_REQs sent */
	uint64_t indirect_probes_served;  /* PING_REQs relayed for others */
	uint64_t nacks_sent;
	uint64_t nacks_received;
	uint64_t suspicions;              /* members moved alive -> suspect here */
	uint64_t suspicions_raised;       /* ... of which by an own failed probe */
	uint64_t confirmations;           /* independent suspicions counted */
	uint64_t refutations;             /* claims about self refuted */
	uint64_t false_suspicions;        /* suspect -> alive of another member */
	uint64_t deaths_declared;         /* own suspicion timers that expired */
	uint64_t reconnect_pings;
	uint64_t updates_received;        /* gossip updates decoded */
	uint64_t malformed_dropped;       /* -EBADMSG, sender mismatch, from self */
	uint64_t foreign_dropped;         /* other cluster id or other version */
	uint64_t misaddressed_dropped;    /* PING meant for another node id */
	uint64_t table_full_dropped;      /* a new member found no free slot */
	uint64_t send_errors;             /* could not encode (a bug if > 0) */
};

/* A member as seen by this node. */
struct amil_member_info {
	uint64_t node_id;
	uint32_t incarnation;
	uint8_t state;                    /* enum amil_member_state */
	bool is_self;
	uint64_t since_ns;                /* time of the last state change */
	char name[AMIL_MEMBERSHIP_NAME_MAX + 1];
	uint8_t addr_len;
	uint8_t addr[AMIL_MEMBERSHIP_ADDR_MAX];
};

/**
 * Zero @cfg and fill its timers from @profile.  The caller then sets the
 * identity fields and callbacks.
 * @return 0, or -EINVAL for an unknown profile (@cfg zeroed).
 */
int amil_membership_config_init(struct amil_membership_config *cfg,
				enum amil_membership_profile profile);

/**
 * Create one node's membership view.  All memory (member table, probe order,
 * relay table) is allocated here, sized by cfg->max_members; nothing is
 * allocated afterwards.  Sends nothing: add seeds, then call tick.
 *
 * @param now_ns  current time, any monotonic origin (also for later calls).
 * @return the instance (caller owns it: amil_membership_destroy()), or NULL
 *   with errno EINVAL (self_id 0, name too long, addr too long, no send
 *   callback, max_members < 2, a timer of 0, probe_timeout >= interval,
 *   piggyback_max out of 1..AMIL_MWIRE_UPDATES_MAX) or ENOMEM.
 */
struct amil_membership *amil_membership_new(const struct amil_membership_config *cfg,
					    uint64_t now_ns);

/** Free @*mp and set it to NULL.  Accepts NULL and a pointer to NULL. */
void amil_membership_destroy(struct amil_membership **mp);

/**
 * Make a peer known as a seed: it is pinged every reconnect interval until
 * it answers (then it is an ordinary member), and again whenever it is dead.
 * It is not reported by lookup/foreach until it has answered.
 *
 * @return 0 (also when already known: the address is refreshed for a seed
 *   that has not answered); -EINVAL for id 0, our own id, or addr too long;
 *   -ENOSPC when the table is full.
 */
int amil_membership_add_seed(struct amil_membership *m, uint64_t node_id,
			     const uint8_t *addr, size_t addr_len);

/**
 * Process one received message.
 *
 * @param from_id  the sender as authenticated by the transport; must equal
 *                 the sender field in the message.
 * @return 0 when processed (possibly sending replies and raising events);
 *   -EBADMSG malformed or sender mismatch (malformed_dropped counted);
 *   -EPROTONOSUPPORT / -EACCES other version / other cluster
 *   (foreign_dropped); -ESHUTDOWN after leave() once the linger is over.
 */
int amil_membership_receive(struct amil_membership *m, uint64_t now_ns, uint64_t from_id,
			    const uint8_t *buf, size_t len);

/**
 * Run the timers due at @now_ns: probes, indirect probes, relay NACKs,
 * suspicion expiry, reconnect pings, reaping.  Call at
 * amil_membership_next_deadline_ns() or more often; @now_ns must not go
 * backwards across calls.
 * @return 0, or -ESHUTDOWN after leave() once the linger is over.
 */
int amil_membership_tick(struct amil_membership *m, uint64_t now_ns);

/** The earliest time at which tick has work to do (UINT64_MAX: none). */
uint64_t amil_membership_next_deadline_ns(const struct amil_membership *m);

/**
 * Leave gracefully: our record becomes LEFT with a higher incarnation and
 * is announced at once to up to indirect_probes members, then piggybacked
 * as usual for leave_linger_ns, after which the instance goes quiet
 * (tick/receive return -ESHUTDOWN) and may be destroyed.
 * @return 0, or -EALREADY when already leaving.
 */
int amil_membership_leave(struct amil_membership *m, uint64_t now_ns);

/** True once leave() was called and leave_linger_ns has passed. */
bool amil_membership_is_quiet(const struct amil_membership *m);

/**
 * Look up a member (self included).
 * @return 0 with @out filled; -ENOENT when unknown or a seed that has
 *   not answered yet.
 */
int amil_membership_lookup(const struct amil_membership *m, uint64_t node_id,
			   struct amil_member_info *out);

/**
 * Call @fn for every known member (self first), stopping early when it
 * returns non-zero.  @fn must not call into @m.
 * @return the number of members visited.
 */
unsigned amil_membership_foreach(const struct amil_membership *m,
				 int (*fn)(void *ctx, const struct amil_member_info *info),
				 void *ctx);

/** Number of members (self included) in @state. */
unsigned amil_membership_count(const struct amil_membership *m, enum amil_member_state state);

/** Our current incarnation. */
uint32_t amil_membership_incarnation(const struct amil_membership *m);

/** Current local health (awareness) score, 0..awareness_max-1. */
uint32_t amil_membership_health(const struct amil_membership *m);

/** Copy the counters (a function named like the struct would hide it in C++). */
void amil_membership_get_counters(const struct amil_membership *m,
			      struct amil_membership_counters *out);

/** Static name of an event type ("nodeup", ...), "?" when unknown. */
const char *amil_membership_event_name(unsigned type);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_MEMBERSHIP_H */
