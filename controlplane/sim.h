/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Deterministic network simulator for the membership core (tests only).
 *
 * N amil_membership instances share a virtual clock.  The simulator is a
 * discrete-event loop: the next thing to happen is either the earliest
 * message delivery or the earliest node deadline
 * (amil_membership_next_deadline_ns), so timers fire at their exact time
 * and nothing depends on the host's speed.  Every random choice (link
 * delays, jitter, loss, each node's probe seed) comes from the one seed
 * given at creation: the same seed and the same calls give the same trace.
 *
 * The network: each unordered pair of nodes has a base one-way delay drawn
 * once in [delay_min_ns, delay_max_ns]; each message adds jitter in
 * [0, jitter_ns] (so messages may be reordered) and is lost with the
 * link's probability.  A partition assigns nodes to groups; messages
 * between groups are dropped, at send and at delivery.  A paused node
 * (SIGSTOP) neither ticks nor receives: messages arriving while it is
 * paused are dropped, as a full socket buffer would.  A crashed node's
 * instance is destroyed; restart creates a new instance whose initial
 * incarnation is one above the last one the old instance had.
 *
 * Node i (0-based) has node id i + 1, name "n<i>", address "sim:<i>".
 *
 * Not thread-safe; allocates freely (it is a test tool, not the product).
 */
#ifndef AMIL_CPSIM_H
#define AMIL_CPSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "membership.h"

#ifdef __cplusplus
extern "C" {
#endif

struct amil_cpsim;

#define AMIL_CPSIM_MAX_NODES 64
#define AMIL_CPSIM_CLUSTER_ID 0xA3117E57ull

struct amil_cpsim_config {
	uint32_t n_nodes;              /* 1..AMIL_CPSIM_MAX_NODES */
	uint32_t n_seeds;              /* nodes 0..n_seeds-1 are every node's seeds */
	uint64_t seed;                 /* everything random derives from this */
	enum amil_membership_profile profile;
	struct amil_membership_timers timers;  /* used when override_timers */
	bool override_timers;
	uint32_t max_members;          /* per instance; 0: n_nodes + 4 */
	uint64_t delay_min_ns;         /* base one-way delay range per link */
	uint64_t delay_max_ns;
	uint64_t jitter_ns;            /* extra per message, uniform */
	uint32_t loss_ppm;             /* loss per message, parts per million */
};

/* One membership event, as seen by @observer. */
struct amil_cpsim_event {
	uint64_t at_ns;                /* virtual time */
	uint32_t observer;             /* node index */
	uint32_t subject;              /* node index (node_id - 1) */
	uint8_t type;                  /* enum amil_membership_event_type */
	uint32_t incarnation;
};

struct amil_cpsim_stats {
	uint64_t sent;
	uint64_t delivered;
	uint64_t lost;                 /* random loss */
	uint64_t partitioned;          /* dropped by a partition or a cut link */
	uint64_t to_down;              /* dropped: receiver paused or crashed */
};

/**
 * Fill @cfg for @n nodes with @profile, node 0 as the only seed, and a LAN
 * (0.1-0.5 ms, jitter 0.2 ms) or WAN (20-150 ms, jitter 10 ms) network,
 * no loss.
 */
void amil_cpsim_config_init(struct amil_cpsim_config *cfg, uint32_t n,
			    enum amil_membership_profile profile, uint64_t seed);

/** Create the simulator and its N nodes, all running, at time 0.
 *  @return NULL with errno EINVAL or ENOMEM. */
struct amil_cpsim *amil_cpsim_new(const struct amil_cpsim_config *cfg);

/** Destroy everything; accepts NULL and a pointer to NULL. */
void amil_cpsim_destroy(struct amil_cpsim **sp);

/** Run events up to and including @t_ns; the clock then reads @t_ns.
 *  @return 0, or -EINVAL if @t_ns is in the past. */
int amil_cpsim_run_until(struct amil_cpsim *s, uint64_t t_ns);

/** Run for @d_ns more. */
int amil_cpsim_run_for(struct amil_cpsim *s, uint64_t d_ns);

uint64_t amil_cpsim_now(const struct amil_cpsim *s);
uint32_t amil_cpsim_size(const struct amil_cpsim *s);

/** Loss for every link (ppm), replacing per-link values. */
void amil_cpsim_set_loss(struct amil_cpsim *s, uint32_t ppm);
/** Loss for the link a<->b (ppm). */
void amil_cpsim_set_link_loss(struct amil_cpsim *s, uint32_t a, uint32_t b, uint32_t ppm);
/** Cut or restore the link a<->b (a cut link drops everything, like a
 *  silent firewall, while both ends keep running). */
void amil_cpsim_cut_link(struct amil_cpsim *s, uint32_t a, uint32_t b, bool cut);

/** Partition: @group[i] is node i's group; only same-group nodes talk. */
void amil_cpsim_partition(struct amil_cpsim *s, const uint32_t *group);
/** Remove the partition (all in one group). */
void amil_cpsim_heal(struct amil_cpsim *s);

/** Pause (SIGSTOP) / resume node @i.  @return 0, -EINVAL, -EALREADY. */
int amil_cpsim_pause(struct amil_cpsim *s, uint32_t i);
int amil_cpsim_resume(struct amil_cpsim *s, uint32_t i);

/** Crash node @i (instance destroyed).  @return 0, -EINVAL, -EALREADY. */
int amil_cpsim_crash(struct amil_cpsim *s, uint32_t i);
/** Restart a crashed node: new instance, incarnation above its last, same
 *  seeds, a new probe seed.  @return 0, -EINVAL, -EALREADY, -ENOMEM. */
int amil_cpsim_restart(struct amil_cpsim *s, uint32_t i);

/** Node @i leaves gracefully (amil_membership_leave at the current time). */
int amil_cpsim_leave(struct amil_cpsim *s, uint32_t i);

/** Node @i's instance, NULL while crashed.  Owned by the simulator. */
struct amil_membership *amil_cpsim_node(struct amil_cpsim *s, uint32_t i);

bool amil_cpsim_is_running(const struct amil_cpsim *s, uint32_t i);  /* not crashed, not paused */

/**
 * State of node @subject in @observer's view: enum amil_member_state, or -1
 * when the observer does not know it (or is crashed).
 */
int amil_cpsim_view(const struct amil_cpsim *s, uint32_t observer, uint32_t subject);

/**
 * True when every node in @set (bit i = node i) sees every node in
 * @subjects other than itself as @state.
 */
bool amil_cpsim_all_see(const struct amil_cpsim *s, uint64_t set, uint64_t subjects,
			enum amil_member_state state);

/** The event trace so far (valid until the next call into @s). */
const struct amil_cpsim_event *amil_cpsim_trace(const struct amil_cpsim *s, size_t *n);
void amil_cpsim_trace_clear(struct amil_cpsim *s);

void amil_cpsim_stats(const struct amil_cpsim *s, struct amil_cpsim_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_CPSIM_H */
