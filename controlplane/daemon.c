/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-controlplane: one per appliance.  A single-threaded loop around
 * zmq_poll drives:
 *   - the transport (CURVE ROUTER + ZAP allow-list, DEALER per peer),
 *   - the membership core (SWIM + Lifeguard, timers from its deadline),
 *   - the operators' control socket (REP, ipc, file permissions) and the
 *     event stream (PUB, ipc),
 *   - the watch on the local data plane (REQ to its ipc control socket).
 * Nothing here ever waits on another appliance: every request of amilctl
 * is answered from local state, whatever the peers do.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#ifdef AMIL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#include <zmq.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "amil_ledger_format.h"
#include "awormap.h"
#include "beacon.h"
#include "cp_config.h"
#include "dns_disc.h"
#include "events.h"
#include "metrics.h"
#include "membership.h"
#include "transport.h"

#define PROG "amil-controlplane"
#define VERSION "0.1.0"
#define ALLOW_MAX 1024
#define DP_POLL_NS (250 * 1000000ull)

static volatile sig_atomic_t quit_requested;

static void
on_signal(int sig)
{
	(void)sig;
	quit_requested = 1;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum dp_state { DP_DISABLED, DP_UNKNOWN, DP_UP, DP_DOWN };
static const char *const dp_state_name[] = {"disabled", "unknown", "up", "down"};

struct daemon {
	struct amil_cp_config cfg;
	void *ctx;
	struct amil_transport *tr;
	struct amil_membership *m;
	struct amil_events *ev;
	void *ctl;                     /* REP, ipc://run_dir/ctl.sock */
	void *pub;                     /* PUB, ipc://run_dir/events.sock */
	char pub_key_z85[AMIL_CURVE_Z85_LEN + 1];
	uint64_t started_real_ns, started_mono_ns;
	uint64_t ctl_requests, ctl_bad;
	/* data-plane watch */
	void *dp;                      /* REQ, recreated after a timeout */
	enum dp_state dp_state;
	uint64_t dp_since_ns, dp_last_seen_ns;  /* realtime */
	uint64_t dp_sent_mono, dp_next_mono, dp_last_reply_mono;
	bool dp_waiting;
	char *dp_stats;                /* last stats JSON reply (malloc), or NULL */
	char *dp_metrics;              /* last Prometheus text of the data plane */
	int dp_expect;                 /* 1: stats, 2: metrics */
	uint64_t dp_polls, dp_replies, dp_timeouts;
	/* Prometheus endpoint */
	struct amil_metrics *metrics;
	uint64_t metrics_next_mono;
	/* beacons */
	struct amil_beacon_sock *beacons;
	struct amil_beacon self_beacon;
	uint64_t beacon_next_mono;
	uint64_t beacon_seeds, beacon_key_mismatch;
	/* DNS discovery: endpoints without node ids are asked who they are */
	struct amil_dns_disc *dns;
	uint64_t hello_next_mono;
	uint64_t ident_seeds;
	uint32_t saved_incarnation;
	bool incarnation_warned;
	/* Registry (AP mode): names -> (owner, value), a delta CRDT. */
	struct amil_awormap *reg;
	uint64_t reg_ae_next_mono;
	uint64_t reg_deltas_tx, reg_deltas_rx, reg_states_tx, reg_states_rx, reg_digests_tx,
		 reg_bad, reg_conflicts, reg_reaped;
	/* Names a join left in conflict with one of ours as the loser:
	 * resolved (and reported) after the join, not inside it. */
	char reg_lost[16][AMIL_AWORMAP_NAME_MAX + 1];
	uint64_t reg_lost_winner[16];
	unsigned reg_nlost;
	/* A broadcast waiting for its acknowledgements; the ctl reply is held
	 * (REP: one request at a time) until all answered or the timeout. */
	bool bc_pending;
	uint64_t bc_id, bc_deadline_mono;
	char bc_group[128];
	uint64_t bc_to[64];
	bool bc_acked[64];
	unsigned bc_n;
	uint64_t bc_received;
	/* Campaign totals: this node's, read from its data plane's ledger
	 * (exactly once by construction), published as registry entries
	 * "camp:<campaign>:<currency>:<exponent>:<node>" that only this node
	 * writes; every appliance sums them over nodes. */
	struct camp_total {
		uint32_t campaign;
		char currency[4];
		uint8_t exponent;
		uint64_t count;
		__int128 amount, levy;
		bool dirty;
	} camp[256];
	unsigned ncamp;
	char ledger_seg[64];           /* segment being read, "" before the first */
	uint64_t ledger_off;           /* next record's offset in it */
	uint64_t ledger_records;       /* records counted */
	uint64_t ledger_next_mono;
};

/* Registry messages over the CURVE connections start with one kind byte
 * (membership travels as datagrams, whose messages start with "AC"). */
#define REG_DELTA  'D'
#define REG_DIGEST 'G'
#define REG_STATE  'S'
#define REG_DIGEST_REPLY 'H'             /* our digest, answering theirs */
#define MSG_BROADCAST 'B'                /* id u64, group, message */
#define MSG_BROADCAST_ACK 'K'            /* id u64 */
#define GROUP_PREFIX "group:"            /* registry names "group:<name>:<node id>" */
#define CAMP_PREFIX "camp:"              /* registry names "camp:<c>:<cur>:<exp>:<node>" */
#define BC_TIMEOUT_NS (1000 * 1000000ull)
#define REG_AE_NS  (500 * 1000000ull)    /* anti-entropy round with one peer */

/* ---- membership glue ------------------------------------------------------ */

static void
mb_send(void *ctx, uint64_t to_id, const uint8_t *to_addr, size_t to_addr_len,
	const uint8_t *buf, size_t len)
{
	struct daemon *d = ctx;

	/* Datagrams: see transport.h for why not the CURVE connections. */
	amil_transport_send_dgram(d->tr, to_id, (const char *)to_addr, to_addr_len, buf, len);
}

static void
mb_event(void *ctx, const struct amil_membership_event *e)
{
	struct daemon *d = ctx;
	struct amil_event ev = {
		.node_id = e->node_id,
		.incarnation = e->incarnation,
		.from_id = e->from_id,
		.at_ns = real_ns(),
	};

	switch (e->type) {
	case AMIL_MEMBERSHIP_EV_NODEUP: ev.type = AMIL_EV_NODEUP; break;
	case AMIL_MEMBERSHIP_EV_SUSPECT: ev.type = AMIL_EV_SUSPECT; break;
	case AMIL_MEMBERSHIP_EV_UNSUSPECT: ev.type = AMIL_EV_UNSUSPECT; break;
	case AMIL_MEMBERSHIP_EV_NODEDOWN: ev.type = AMIL_EV_NODEDOWN; break;
	case AMIL_MEMBERSHIP_EV_LEFT: ev.type = AMIL_EV_LEFT; break;
	default: return;
	}
	snprintf(ev.name, sizeof(ev.name), "%s", e->name != NULL ? e->name : "");
	amil_events_add(d->ev, &ev);
}

/* ---- registry replication -------------------------------------------------- */

/* Send @kind + @buf to one member over its CURVE connection. */
static int
reg_send(struct daemon *d, uint64_t to, uint8_t kind, const uint8_t *buf, size_t len)
{
	struct amil_member_info mi;
	uint8_t *msg;
	int rc;

	if (amil_membership_lookup(d->m, to, &mi) != 0 || mi.is_self)
		return -ENOENT;
	msg = malloc(len + 1);
	if (msg == NULL)
		return -ENOMEM;
	msg[0] = kind;
	memcpy(msg + 1, buf, len);
	rc = amil_transport_send(d->tr, to, (const char *)mi.addr, mi.addr_len, msg, len + 1);
	free(msg);
	return rc;
}

struct push_ctx {
	struct daemon *d;
	uint8_t kind;
	const uint8_t *buf;
	size_t len;
	uint64_t pick, seen;           /* reservoir pick of one alive peer */
};

static int
push_one(void *ctx, const struct amil_member_info *mi)
{
	struct push_ctx *x = ctx;

	if (!mi->is_self && mi->state == AMIL_MEMBER_ALIVE)
		reg_send(x->d, mi->node_id, x->kind, x->buf, x->len);
	return 0;
}

/* A local change: push its delta to every alive member at once. */
static void
reg_push(struct daemon *d, const uint8_t *delta, size_t len)
{
	struct push_ctx x = {.d = d, .kind = REG_DELTA, .buf = delta, .len = len};

	amil_membership_foreach(d->m, push_one, &x);
	d->reg_deltas_tx++;
}

/* Pick one alive member at random, and keep a CURVE connection open to
 * every alive member (a message to a peer without one is dropped, so the
 * first delta after a member came up must not wait for a connection). */
static int
pick_one(void *ctx, const struct amil_member_info *mi)
{
	struct push_ctx *x = ctx;

	if (mi->is_self || mi->state != AMIL_MEMBER_ALIVE)
		return 0;
	amil_transport_connect(x->d->tr, mi->node_id, (const char *)mi->addr, mi->addr_len);
	if (randombytes_uniform((uint32_t)++x->seen) == 0)
		x->pick = mi->node_id;
	return 0;
}

/* Anti-entropy: our digest to one random alive member; it answers with
 * the buckets that differ (and its own digest, so both sides repair). */
static void
reg_anti_entropy(struct daemon *d)
{
	struct push_ctx x = {.d = d};
	struct amil_awormap_digest dg;
	uint8_t buf[AMIL_AWORMAP_DIGEST_LEN];

	amil_membership_foreach(d->m, pick_one, &x);
	if (x.pick == 0)
		return;
	amil_awormap_digest_get(d->reg, &dg);
	amil_awormap_digest_encode(&dg, buf);
	if (reg_send(d, x.pick, REG_DIGEST, buf, sizeof(buf)) == 0)
		d->reg_digests_tx++;
}

static void
reg_conflict(void *ctx, const struct amil_awormap_entry *winner,
	     const struct amil_awormap_entry *loser)
{
	struct daemon *d = ctx;

	d->reg_conflicts++;
	/* Our name lost: remember it; after the join we resolve it (remove
	 * our losing entry everywhere) and tell our operators. */
	if (loser->owner == d->cfg.node_id && winner->owner != d->cfg.node_id &&
	    d->reg_nlost < 16) {
		memcpy(d->reg_lost[d->reg_nlost], loser->name, loser->name_len);
		d->reg_lost[d->reg_nlost][loser->name_len] = '\0';
		d->reg_lost_winner[d->reg_nlost++] = winner->owner;
	}
}

/* After a join: resolve the conflicts our names lost (AP heal rule: the
 * greater (HLC, node id) wins everywhere) and emit name_conflict. */
static void
reg_settle_conflicts(struct daemon *d)
{
	for (unsigned i = 0; i < d->reg_nlost; i++) {
		const char *name = d->reg_lost[i];
		struct amil_event ev = {.type = AMIL_EV_NAME_CONFLICT,
					.node_id = d->reg_lost_winner[i],
					.from_id = d->cfg.node_id,
					.at_ns = real_ns()};
		uint8_t *delta = NULL;
		size_t dlen = 0;

		snprintf(ev.name, sizeof(ev.name), "%s", name);
		amil_events_add(d->ev, &ev);
		if (amil_awormap_resolve(d->reg, name, strlen(name), &delta, &dlen) == 0) {
			reg_push(d, delta, dlen);
			free(delta);
		}
	}
	d->reg_nlost = 0;
}

struct reap_ctx {
	struct daemon *d;
	uint64_t now_mono;
	char names[64][AMIL_AWORMAP_NAME_MAX + 1];
	unsigned n;
};

/* Names whose owner has been dead (or left) longer than the grace. */
static int
reap_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct reap_ctx *x = ctx;
	struct amil_member_info mi;

	if (e->owner == x->d->cfg.node_id || x->n == 64)
		return 0;
	if (amil_membership_lookup(x->d->m, e->owner, &mi) != 0 ||
	    (mi.state != AMIL_MEMBER_DEAD && mi.state != AMIL_MEMBER_LEFT) ||
	    x->now_mono - mi.since_ns < (uint64_t)x->d->cfg.registry_grace_ms * 1000000u)
		return 0;
	memcpy(x->names[x->n], e->name, e->name_len);
	x->names[x->n++][e->name_len] = '\0';
	return 0;
}

struct lowest_ctx {
	uint64_t lowest;
};

static int
lowest_alive(void *ctx, const struct amil_member_info *mi)
{
	struct lowest_ctx *x = ctx;

	if (mi->state == AMIL_MEMBER_ALIVE && (x->lowest == 0 || mi->node_id < x->lowest))
		x->lowest = mi->node_id;
	return 0;
}

/* The lowest alive node id removes a dead owner's names (one remover, so
 * one delta; a concurrent remove elsewhere would be harmless anyway). */
static void
reg_reap(struct daemon *d, uint64_t now_mono)
{
	struct lowest_ctx lc = {0};
	static struct reap_ctx x;

	amil_membership_foreach(d->m, lowest_alive, &lc);
	if (lc.lowest != d->cfg.node_id)
		return;
	x.d = d;
	x.now_mono = now_mono;
	x.n = 0;
	amil_awormap_foreach(d->reg, reap_one, &x);
	for (unsigned i = 0; i < x.n; i++) {
		uint8_t *delta = NULL;
		size_t dlen = 0;

		if (amil_awormap_remove(d->reg, x.names[i], strlen(x.names[i]), &delta, &dlen) == 0) {
			reg_push(d, delta, dlen);
			free(delta);
			d->reg_reaped++;
		}
	}
}

static void
reg_receive(struct daemon *d, uint64_t from, const uint8_t *buf, size_t len)
{
	if (buf[0] == REG_DELTA || buf[0] == REG_STATE) {
		if (amil_awormap_join(d->reg, real_ns(), buf + 1, len - 1, reg_conflict, d) != 0) {
			d->reg_bad++;
			return;
		}
		if (buf[0] == REG_DELTA)
			d->reg_deltas_rx++;
		else
			d->reg_states_rx++;
		reg_settle_conflicts(d);
	} else if (buf[0] == REG_DIGEST || buf[0] == REG_DIGEST_REPLY) {
		struct amil_awormap_digest theirs, ours;
		uint8_t mask[AMIL_AWORMAP_MASK_BYTES] = {0}, *st = NULL, dbuf[AMIL_AWORMAP_DIGEST_LEN];
		size_t stlen = 0;

		if (amil_awormap_digest_decode(buf + 1, len - 1, &theirs) != 0) {
			d->reg_bad++;
			return;
		}
		amil_awormap_digest_get(d->reg, &ours);
		if (ours.root == theirs.root)
			return;
		/* The buckets that differ (none: only the contexts differ, an
		 * empty mask still carries ours). */
		amil_awormap_digest_diff(&ours, &theirs, mask);
		if (amil_awormap_encode_state(d->reg, mask, &st, &stlen) == 0) {
			if (reg_send(d, from, REG_STATE, st, stlen) == 0)
				d->reg_states_tx++;
			free(st);
		}
		/* A digest that asked: ours back, so the asker sends what we
		 * lack.  One that answered ours: stop (no ping-pong). */
		if (buf[0] == REG_DIGEST) {
			amil_awormap_digest_encode(&ours, dbuf);
			reg_send(d, from, REG_DIGEST_REPLY, dbuf, sizeof(dbuf));
		}
	} else {
		d->reg_bad++;
	}
}

static void broadcast_receive(struct daemon *d, uint64_t from, const uint8_t *buf, size_t len);

static void
tr_recv(void *ctx, uint64_t from_id, const uint8_t *buf, size_t len)
{
	struct daemon *d = ctx;

	/* Registry messages come over CURVE with a kind byte; membership
	 * messages (datagrams) start with their magic "AC". */
	if (len >= 1 && (buf[0] == REG_DELTA || buf[0] == REG_DIGEST || buf[0] == REG_STATE ||
			 buf[0] == REG_DIGEST_REPLY)) {
		reg_receive(d, from_id, buf, len);
		return;
	}
	if (len >= 1 && (buf[0] == MSG_BROADCAST || buf[0] == MSG_BROADCAST_ACK)) {
		broadcast_receive(d, from_id, buf, len);
		return;
	}
	/* Errors are counted by membership (malformed, foreign, spoofed). */
	amil_membership_receive(d->m, mono_ns(), from_id, buf, len);
}

/* ---- operators' control socket ------------------------------------------- */

static const char *
state_name(uint8_t s)
{
	switch (s) {
	case AMIL_MEMBER_ALIVE: return "alive";
	case AMIL_MEMBER_SUSPECT: return "suspect";
	case AMIL_MEMBER_DEAD: return "dead";
	case AMIL_MEMBER_LEFT: return "left";
	}
	return "unknown";
}

struct nodes_ctx {
	struct daemon *d;
	FILE *f;
	int n;
	uint64_t now_mono;
};

static int
node_json(void *ctx, const struct amil_member_info *mi)
{
	struct nodes_ctx *x = ctx;
	const struct amil_allow_entry *a = amil_transport_allowed(x->d->tr, mi->node_id);
	char ep[AMIL_MEMBERSHIP_ADDR_MAX + 1];
	/* Membership times are monotonic: shown as realtime for operators. */
	uint64_t since = x->d->started_real_ns + (mi->since_ns - x->d->started_mono_ns);

	memcpy(ep, mi->addr, mi->addr_len);
	ep[mi->addr_len] = '\0';
	fprintf(x->f, "%s{\"id\": %" PRIu64 ", \"name\": ", x->n++ ? ", " : "", mi->node_id);
	amil_json_str(x->f, mi->name[0] ? mi->name : (a != NULL ? a->name : ""));
	fputs(", \"region\": ", x->f);
	amil_json_str(x->f, mi->is_self ? x->d->cfg.region : "");
	fputs(", \"endpoint\": ", x->f);
	amil_json_str(x->f, ep);
	fprintf(x->f,
		", \"state\": \"%s\", \"incarnation\": %" PRIu32 ", \"since_ns\": %" PRIu64
		", \"is_self\": %s}",
		state_name(mi->state), mi->incarnation, since, mi->is_self ? "true" : "false");
	return 0;
}

static void
write_status(struct daemon *d, FILE *f)
{
	struct amil_membership_counters mc;
	struct amil_transport_counters tc;
	unsigned alive = amil_membership_count(d->m, AMIL_MEMBER_ALIVE);
	unsigned suspect = amil_membership_count(d->m, AMIL_MEMBER_SUSPECT);
	unsigned dead = amil_membership_count(d->m, AMIL_MEMBER_DEAD);
	unsigned left = amil_membership_count(d->m, AMIL_MEMBER_LEFT);
	const char *health = "ok";

	if (d->dp_state == DP_DOWN)
		health = "degraded";
	else if (alive <= 1)
		health = "alone";
	struct amil_beacon_counters bc = {0};
	struct amil_awormap_stats rs;

	amil_awormap_stats_get(d->reg, &rs);
	amil_membership_get_counters(d->m, &mc);
	amil_transport_get_counters(d->tr, &tc);
	if (d->beacons != NULL)
		amil_beacon_get_counters(d->beacons, &bc);
	fprintf(f, "{\"schema\": 1, \"node\": {\"id\": %" PRIu64 ", \"name\": ", d->cfg.node_id);
	amil_json_str(f, d->cfg.name);
	fputs(", \"region\": ", f);
	amil_json_str(f, d->cfg.region);
	fputs(", \"endpoint\": ", f);
	amil_json_str(f, d->cfg.advertise);
	fputs(", \"dataplane_addr\": ", f);
	amil_json_str(f, d->cfg.dataplane_addr);
	fprintf(f,
		", \"public_key\": \"%s\", \"incarnation\": %" PRIu32 ", \"started_ns\": %" PRIu64
		", \"uptime_s\": %.3f, \"version\": \"" VERSION "\"}",
		d->pub_key_z85, amil_membership_incarnation(d->m), d->started_real_ns,
		(double)(mono_ns() - d->started_mono_ns) / 1e9);
	fprintf(f,
		", \"cluster\": {\"id\": \"%016" PRIx64 "\", \"members\": %u, \"alive\": %u"
		", \"suspect\": %u, \"dead\": %u, \"left\": %u}, \"health\": \"%s\"",
		d->cfg.cluster_id, alive + suspect + dead + left, alive, suspect, dead, left, health);
	fprintf(f,
		", \"dataplane\": {\"state\": \"%s\", \"since_ns\": %" PRIu64
		", \"last_seen_ns\": %" PRIu64 "}",
		dp_state_name[d->dp_state], d->dp_since_ns, d->dp_last_seen_ns);
	fprintf(f,
		", \"counters\": {\"msgs_sent\": %" PRIu64 ", \"msgs_received\": %" PRIu64
		", \"probes_sent\": %" PRIu64 ", \"acks_received\": %" PRIu64
		", \"probe_failures\": %" PRIu64 ", \"indirect_probes_sent\": %" PRIu64
		", \"suspicions\": %" PRIu64 ", \"refutations\": %" PRIu64
		", \"false_suspicions\": %" PRIu64 ", \"deaths_declared\": %" PRIu64
		", \"malformed_dropped\": %" PRIu64 ", \"foreign_dropped\": %" PRIu64
		", \"zap_allowed\": %" PRIu64 ", \"zap_denied\": %" PRIu64
		", \"transport_rx\": %" PRIu64 ", \"transport_rx_dropped\": %" PRIu64
		", \"transport_tx\": %" PRIu64 ", \"transport_tx_dropped\": %" PRIu64
		", \"transport_tx_refused\": %" PRIu64 ", \"peers\": %" PRIu64
		", \"dgram_rx\": %" PRIu64 ", \"dgram_rx_bad\": %" PRIu64
		", \"dgram_rx_replay\": %" PRIu64 ", \"dgram_tx\": %" PRIu64
		", \"dgram_tx_dropped\": %" PRIu64 ", \"hello_tx\": %" PRIu64
		", \"hello_replies\": %" PRIu64 ", \"ident_rx\": %" PRIu64
		", \"discovery_seeds\": %" PRIu64
		", \"local_health\": %" PRIu32 ", \"events\": %" PRIu64
		", \"ctl_requests\": %" PRIu64 ", \"ctl_bad\": %" PRIu64
		", \"dataplane_polls\": %" PRIu64 ", \"dataplane_replies\": %" PRIu64
		", \"dataplane_timeouts\": %" PRIu64 ", \"beacon_sent\": %" PRIu64
		", \"beacon_accepted\": %" PRIu64 ", \"beacon_bad_mac\": %" PRIu64
		", \"beacon_replay\": %" PRIu64 ", \"beacon_stale\": %" PRIu64
		", \"beacon_foreign\": %" PRIu64 ", \"beacon_key_mismatch\": %" PRIu64
		", \"registry_names\": %zu, \"registry_deltas_tx\": %" PRIu64
		", \"registry_deltas_rx\": %" PRIu64 ", \"registry_states_tx\": %" PRIu64
		", \"registry_states_rx\": %" PRIu64 ", \"registry_bad\": %" PRIu64
		", \"registry_conflicts\": %" PRIu64 ", \"registry_reaped\": %" PRIu64
		", \"registry_memory_bytes\": %zu, \"registry_entries\": %zu}}",
		mc.msgs_sent, mc.msgs_received, mc.probes_sent, mc.acks_received,
		mc.probe_failures, mc.indirect_probes_sent, mc.suspicions, mc.refutations,
		mc.false_suspicions, mc.deaths_declared, mc.malformed_dropped, mc.foreign_dropped,
		tc.zap_allowed, tc.zap_denied, tc.rx_msgs, tc.rx_dropped, tc.tx_msgs, tc.tx_dropped,
		tc.tx_refused, tc.peers, tc.dgram_rx, tc.dgram_rx_bad, tc.dgram_rx_replay,
		tc.dgram_tx, tc.dgram_tx_dropped, tc.hello_tx, tc.hello_replies, tc.ident_rx,
		d->beacon_seeds + d->ident_seeds, amil_membership_health(d->m), amil_events_count(d->ev),
		d->ctl_requests, d->ctl_bad, d->dp_polls, d->dp_replies, d->dp_timeouts, bc.sent,
		bc.accepted, bc.bad_mac_dropped, bc.replay_dropped, bc.stale_dropped,
		bc.foreign_dropped, d->beacon_key_mismatch, amil_awormap_count(d->reg),
		d->reg_deltas_tx, d->reg_deltas_rx, d->reg_states_tx, d->reg_states_rx, d->reg_bad,
		d->reg_conflicts, d->reg_reaped, rs.memory_bytes, rs.entries);
}

struct list_ctx {
	FILE *f;
	int n;
};

static void
entry_json(FILE *f, const struct amil_awormap_entry *e)
{
	char name[AMIL_AWORMAP_NAME_MAX + 1], val[AMIL_AWORMAP_VALUE_MAX + 1];

	memcpy(name, e->name, e->name_len);
	name[e->name_len] = '\0';
	memcpy(val, e->value, e->value_len);
	val[e->value_len] = '\0';
	fputs("{\"name\": ", f);
	amil_json_str(f, name);
	fprintf(f, ", \"owner\": %" PRIu64 ", \"value\": ", e->owner);
	amil_json_str(f, val);
	fprintf(f, ", \"hlc\": %" PRIu64 "}", e->hlc);
}

static int
list_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct list_ctx *x = ctx;

	if ((e->name_len >= strlen(GROUP_PREFIX) &&
	     memcmp(e->name, GROUP_PREFIX, strlen(GROUP_PREFIX)) == 0) ||
	    (e->name_len >= strlen(CAMP_PREFIX) &&
	     memcmp(e->name, CAMP_PREFIX, strlen(CAMP_PREFIX)) == 0))
		return 0;          /* group memberships and campaign totals: own commands */
	if (x->n++)
		fputs(", ", x->f);
	entry_json(x->f, e);
	return 0;
}

/* registry-list | registry-get NAME | registry-register NAME VALUE |
 * registry-unregister NAME.  Names and values are single words (the
 * protocol splits on blanks). */
static void
reg_ctl(struct daemon *d, const char *cmd, const char *req, FILE *f)
{
	char name[AMIL_AWORMAP_NAME_MAX + 1] = "", value[AMIL_AWORMAP_VALUE_MAX + 1] = "";
	char fmt[48];
	struct amil_awormap_entry e;
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int k, rc;

	snprintf(fmt, sizeof(fmt), "%%*s %%%ds %%%ds", AMIL_AWORMAP_NAME_MAX, AMIL_AWORMAP_VALUE_MAX);
	k = sscanf(req, fmt, name, value);
	if (strcmp(cmd, "registry-list") == 0) {
		struct list_ctx x = {.f = f};

		fputs("{\"schema\": 1, \"names\": [", f);
		amil_awormap_foreach(d->reg, list_one, &x);
		fprintf(f, "], \"count\": %d}", x.n);
		return;
	}
	if (k < 1) {
		fputs("{\"schema\": 1, \"error\": \"a name is needed\"}", f);
		return;
	}
	if (strcmp(cmd, "registry-get") == 0) {
		if (amil_awormap_lookup(d->reg, name, strlen(name), &e) != 0) {
			fputs("{\"schema\": 1, \"error\": \"no such name\"}", f);
			return;
		}
		fputs("{\"schema\": 1, \"entry\": ", f);
		entry_json(f, &e);
		fputs("}", f);
		return;
	}
	if (strcmp(cmd, "registry-register") == 0) {
		/* Unique names: one owned by another appliance is refused (a
		 * registration made concurrently, across a partition, is the
		 * conflict the CRDT resolves on heal). */
		if (amil_awormap_lookup(d->reg, name, strlen(name), &e) == 0 &&
		    e.owner != d->cfg.node_id) {
			fprintf(f, "{\"schema\": 1, \"error\": \"registered by node %" PRIu64 "\"}",
				e.owner);
			return;
		}
		rc = amil_awormap_put(d->reg, real_ns(), name, strlen(name), d->cfg.node_id, value,
				      strlen(value), &delta, &dlen);
	}
	else if (strcmp(cmd, "registry-unregister") == 0)
		rc = amil_awormap_remove(d->reg, name, strlen(name), &delta, &dlen);
	else
		rc = -EOPNOTSUPP;
	if (rc != 0) {
		fputs("{\"schema\": 1, \"error\": ", f);
		amil_json_str(f, rc == -ENOENT ? "no such name" : strerror(-rc));
		fputs("}", f);
		return;
	}
	/* Read-your-writes here; the delta goes to every alive member now. */
	reg_push(d, delta, dlen);
	free(delta);
	fprintf(f, "{\"schema\": 1, \"ok\": true, \"names\": %zu}", amil_awormap_count(d->reg));
}

/* ---- groups (:pg) and broadcast ------------------------------------------ */

struct group_ctx {
	FILE *f;
	const char *only;              /* one group, or NULL */
	int n;
	uint64_t members[64];          /* collect mode (broadcast) */
	unsigned nm;
	bool collect;
};

/* Entries "group:<name>:<node>": members of <name>. */
static int
group_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct group_ctx *x = ctx;
	char name[AMIL_AWORMAP_NAME_MAX + 1], *g, *colon;

	if (e->name_len <= strlen(GROUP_PREFIX) ||
	    memcmp(e->name, GROUP_PREFIX, strlen(GROUP_PREFIX)) != 0)
		return 0;
	memcpy(name, e->name, e->name_len);
	name[e->name_len] = '\0';
	g = name + strlen(GROUP_PREFIX);
	colon = strrchr(g, ':');
	if (colon == NULL)
		return 0;
	*colon = '\0';
	if (x->only != NULL && strcmp(g, x->only) != 0)
		return 0;
	if (x->collect) {
		if (x->nm < 64)
			x->members[x->nm++] = e->owner;
		return 0;
	}
	if (x->n++)
		fputs(", ", x->f);
	fputs("{\"group\": ", x->f);
	amil_json_str(x->f, g);
	fprintf(x->f, ", \"node_id\": %" PRIu64 "}", e->owner);
	return 0;
}

static void
groups_ctl(struct daemon *d, const char *cmd, const char *req, FILE *f)
{
	char group[128] = "", key[AMIL_AWORMAP_NAME_MAX + 1];
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int rc;

	sscanf(req, "%*s %127s", group);
	if (strcmp(cmd, "groups") == 0) {
		struct group_ctx x = {.f = f, .only = group[0] ? group : NULL};

		fputs("{\"schema\": 1, \"memberships\": [", f);
		amil_awormap_foreach(d->reg, group_one, &x);
		fputs("]}", f);
		return;
	}
	if (group[0] == '\0' || strchr(group, ':') != NULL) {
		fputs("{\"schema\": 1, \"error\": \"a group name (no ':') is needed\"}", f);
		return;
	}
	snprintf(key, sizeof(key), GROUP_PREFIX "%s:%" PRIu64, group, d->cfg.node_id);
	if (strcmp(cmd, "group-join") == 0)
		rc = amil_awormap_put(d->reg, real_ns(), key, strlen(key), d->cfg.node_id, "", 0,
				      &delta, &dlen);
	else
		rc = amil_awormap_remove(d->reg, key, strlen(key), &delta, &dlen);
	if (rc != 0) {
		fputs("{\"schema\": 1, \"error\": ", f);
		amil_json_str(f, rc == -ENOENT ? "not a member" : strerror(-rc));
		fputs("}", f);
		return;
	}
	reg_push(d, delta, dlen);
	free(delta);
	fputs("{\"schema\": 1, \"ok\": true}", f);
}

/* Start a broadcast: one CURVE message to every member of the group (this
 * node included, delivered locally); the reply waits for the acks. */
static bool
broadcast_start(struct daemon *d, const char *req, FILE *f)
{
	char group[128] = "";
	const char *msg;
	struct group_ctx x = {.collect = true};
	uint8_t buf[8 + 128 + 1 + 1024];
	size_t len;
	int skip = 0;

	if (sscanf(req, "%*s %127s %n", group, &skip) < 1 || skip == 0 || req[skip] == '\0') {
		fputs("{\"schema\": 1, \"error\": \"broadcast GROUP MESSAGE\"}", f);
		return false;
	}
	msg = req + skip;
	if (strlen(msg) > 1024) {
		fputs("{\"schema\": 1, \"error\": \"message longer than 1024 bytes\"}", f);
		return false;
	}
	x.only = group;
	amil_awormap_foreach(d->reg, group_one, &x);
	d->bc_id = randombytes_random() | ((uint64_t)randombytes_random() << 32);
	memcpy(buf, &d->bc_id, 8);
	len = 8 + (size_t)snprintf((char *)buf + 8, sizeof(buf) - 8, "%s", group) + 1;
	memcpy(buf + len, msg, strlen(msg));
	len += strlen(msg);
	snprintf(d->bc_group, sizeof(d->bc_group), "%s", group);
	d->bc_n = x.nm;
	for (unsigned i = 0; i < x.nm; i++) {
		d->bc_to[i] = x.members[i];
		d->bc_acked[i] = false;
		if (x.members[i] == d->cfg.node_id) {
			d->bc_acked[i] = true;      /* delivered here */
			d->bc_received++;
			continue;
		}
		reg_send(d, x.members[i], MSG_BROADCAST, buf, len);
	}
	d->bc_pending = true;
	d->bc_deadline_mono = mono_ns() + BC_TIMEOUT_NS;
	return true;
}

/* All acked, or the timeout: send the held reply. */
static void
broadcast_check(struct daemon *d, bool force)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	bool all = true;
	int n = 0;

	if (!d->bc_pending)
		return;
	for (unsigned i = 0; i < d->bc_n; i++)
		all &= d->bc_acked[i];
	if (!all && !force && mono_ns() < d->bc_deadline_mono)
		return;
	f = open_memstream(&out, &len);
	if (f == NULL)
		return;
	fputs("{\"schema\": 1, \"group\": ", f);
	amil_json_str(f, d->bc_group);
	fputs(", \"delivered\": [", f);
	for (unsigned i = 0; i < d->bc_n; i++)
		if (d->bc_acked[i])
			fprintf(f, "%s%" PRIu64, n++ ? ", " : "", d->bc_to[i]);
	fputs("], \"missing\": [", f);
	n = 0;
	for (unsigned i = 0; i < d->bc_n; i++)
		if (!d->bc_acked[i])
			fprintf(f, "%s%" PRIu64, n++ ? ", " : "", d->bc_to[i]);
	fputs("]}", f);
	if (fclose(f) == 0)
		zmq_send(d->ctl, out, len, 0);
	free(out);
	d->bc_pending = false;
}

static void
broadcast_receive(struct daemon *d, uint64_t from, const uint8_t *buf, size_t len)
{
	struct amil_event ev = {.type = AMIL_EV_BROADCAST, .node_id = from, .from_id = from,
				.at_ns = real_ns()};
	const char *group;
	size_t glen;

	if (buf[0] == MSG_BROADCAST_ACK) {
		uint64_t id;

		if (len != 9)
			return;
		memcpy(&id, buf + 1, 8);
		for (unsigned i = 0; d->bc_pending && id == d->bc_id && i < d->bc_n; i++)
			if (d->bc_to[i] == from)
				d->bc_acked[i] = true;
		broadcast_check(d, false);
		return;
	}
	if (len < 1 + 8 + 2)
		return;
	group = (const char *)buf + 9;
	glen = strnlen(group, len - 9);
	if (glen == len - 9)
		return;                        /* no NUL: malformed */
	/* The event carries "<group>: <message>" (bounded). */
	snprintf(ev.name, sizeof(ev.name), "%s: %.*s", group, (int)(len - 9 - glen - 1),
		 group + glen + 1);
	amil_events_add(d->ev, &ev);
	d->bc_received++;
	{
		uint8_t ack[8];

		memcpy(ack, buf + 1, 8);
		reg_send(d, from, MSG_BROADCAST_ACK, ack, 8);
	}
}

/* ---- campaign totals -------------------------------------------------------- */

static char *
i128_dec(__int128 v, char buf[48])
{
	char tmp[48];
	int n = 0, k = 0;
	bool neg = v < 0;
	unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;

	do {
		tmp[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u != 0);
	if (neg)
		buf[k++] = '-';
	while (n > 0)
		buf[k++] = tmp[--n];
	buf[k] = '\0';
	return buf;
}

static bool
i128_parse(const char *s, __int128 *out)
{
	bool neg = *s == '-';
	unsigned __int128 v = 0;

	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (unsigned)(*s - '0');
	*out = neg ? -(__int128)v : (__int128)v;
	return *s == '\0' || *s == ' ';
}

static void
camp_add(struct daemon *d, const struct amil_ledger_rec *r)
{
	struct camp_total *c = NULL;

	for (unsigned i = 0; i < d->ncamp; i++)
		if (d->camp[i].campaign == r->campaign_id && d->camp[i].exponent == r->exponent &&
		    memcmp(d->camp[i].currency, r->currency, 3) == 0) {
			c = &d->camp[i];
			break;
		}
	if (c == NULL) {
		if (d->ncamp == 256)
			return;        /* counted in ledger_records; beyond the table */
		c = &d->camp[d->ncamp++];
		memset(c, 0, sizeof(*c));
		c->campaign = r->campaign_id;
		memcpy(c->currency, r->currency, 3);
		c->exponent = r->exponent;
	}
	c->count++;
	c->amount += r->amount_minor;
	c->levy += r->levy_minor;
	c->dirty = true;
}

static int
seg_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* The segment after @cur in name (= sequence) order, or "" if none. */
static void
next_segment(const char *dir, const char *cur, char *out, size_t len)
{
	static char names[1024][64];
	struct dirent *de;
	unsigned n = 0;
	DIR *dd = opendir(dir);

	out[0] = '\0';
	if (dd == NULL)
		return;
	while ((de = readdir(dd)) != NULL && n < 1024)
		if (strncmp(de->d_name, AMIL_LEDGER_SEG_PREFIX, strlen(AMIL_LEDGER_SEG_PREFIX)) == 0 &&
		    strlen(de->d_name) < 64 && strstr(de->d_name, ".tail-") == NULL)
			memcpy(names[n++], de->d_name, strlen(de->d_name) + 1); /* < 64, checked */
	closedir(dd);
	qsort(names, n, sizeof(names[0]), seg_cmp);
	for (unsigned i = 0; i < n; i++)
		if (cur[0] == '\0' || strcmp(names[i], cur) > 0) {
			snprintf(out, len, "%s", names[i]);
			return;
		}
}

/* Read the records the data plane appended since the last call (read
 * only; a batch being written shows as a short or bad record at the end:
 * stop there and come back). */
static void
ledger_tail(struct daemon *d)
{
	char path[PATH_MAX + 80];
	static uint8_t buf[AMIL_LEDGER_REC_LEN * 512];
	int fd;

	if (d->cfg.ledger_dir[0] == '\0')
		return;
	for (int hop = 0; hop < 64; hop++) {
		ssize_t got;

		if (d->ledger_seg[0] == '\0') {
			next_segment(d->cfg.ledger_dir, "", d->ledger_seg, sizeof(d->ledger_seg));
			if (d->ledger_seg[0] == '\0')
				return;
			d->ledger_off = AMIL_LEDGER_HDR_LEN;
		}
		snprintf(path, sizeof(path), "%s/%s", d->cfg.ledger_dir, d->ledger_seg);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		while ((got = pread(fd, buf, sizeof(buf), (off_t)d->ledger_off)) >=
		       AMIL_LEDGER_REC_LEN) {
			size_t k;

			for (k = 0; k + AMIL_LEDGER_REC_LEN <= (size_t)got; k += AMIL_LEDGER_REC_LEN) {
				struct amil_ledger_rec r;

				if (amil_ledger_rec_decode(buf + k, &r) != 0)
					break;
				camp_add(d, &r);
				d->ledger_records++;
			}
			d->ledger_off += k;
			if (k < (size_t)got - (size_t)got % AMIL_LEDGER_REC_LEN)
				break;  /* a record not (yet) valid: come back later */
		}
		close(fd);
		{
			char nxt[64];

			next_segment(d->cfg.ledger_dir, d->ledger_seg, nxt, sizeof(nxt));
			if (nxt[0] == '\0')
				return;
			/* A newer segment exists: this one is complete. */
			memcpy(d->ledger_seg, nxt, sizeof(nxt));
			d->ledger_off = AMIL_LEDGER_HDR_LEN;
		}
	}
}

/* Publish the totals that changed (only this node writes its entries). */
static void
camp_publish(struct daemon *d)
{
	for (unsigned i = 0; i < d->ncamp; i++) {
		struct camp_total *c = &d->camp[i];
		char key[128], val[160], a[48], l[48];
		uint8_t *delta = NULL;
		size_t dlen = 0;

		if (!c->dirty)
			continue;
		snprintf(key, sizeof(key), CAMP_PREFIX "%" PRIu32 ":%.3s:%u:%" PRIu64, c->campaign,
			 c->currency, c->exponent, d->cfg.node_id);
		snprintf(val, sizeof(val), "%" PRIu64 " %s %s", c->count, i128_dec(c->amount, a),
			 i128_dec(c->levy, l));
		if (amil_awormap_put(d->reg, real_ns(), key, strlen(key), d->cfg.node_id, val,
				     strlen(val), &delta, &dlen) == 0) {
			reg_push(d, delta, dlen);
			free(delta);
			c->dirty = false;
		}
	}
}

struct camp_sum {
	struct {
		uint32_t campaign;
		char currency[4];
		unsigned exponent;
		uint64_t count, nodes;
		__int128 amount, levy;
	} row[512];
	unsigned n;
};

static int
camp_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct camp_sum *x = ctx;
	char name[AMIL_AWORMAP_NAME_MAX + 1], val[AMIL_AWORMAP_VALUE_MAX + 1], cur[4] = "";
	char a[64], l[64];
	unsigned long long count, node;
	unsigned campaign, exp, i;
	__int128 amount, levy;

	if (e->name_len <= strlen(CAMP_PREFIX) ||
	    memcmp(e->name, CAMP_PREFIX, strlen(CAMP_PREFIX)) != 0)
		return 0;
	memcpy(name, e->name, e->name_len);
	name[e->name_len] = '\0';
	memcpy(val, e->value, e->value_len);
	val[e->value_len] = '\0';
	if (sscanf(name, CAMP_PREFIX "%u:%3[A-Z]:%u:%llu", &campaign, cur, &exp, &node) != 4 ||
	    sscanf(val, "%llu %63s %63s", &count, a, l) != 3 || !i128_parse(a, &amount) ||
	    !i128_parse(l, &levy))
		return 0;
	for (i = 0; i < x->n; i++)
		if (x->row[i].campaign == campaign && x->row[i].exponent == exp &&
		    strcmp(x->row[i].currency, cur) == 0)
			break;
	if (i == x->n) {
		if (x->n == 512)
			return 0;
		memset(&x->row[i], 0, sizeof(x->row[i]));
		x->row[i].campaign = campaign;
		memcpy(x->row[i].currency, cur, 4);
		x->row[i].exponent = exp;
		x->n++;
	}
	x->row[i].count += count;
	x->row[i].amount += amount;
	x->row[i].levy += levy;
	x->row[i].nodes++;
	return 0;
}

static void
campaigns_ctl(struct daemon *d, FILE *f)
{
	static struct camp_sum x;
	char a[48], l[48];

	x.n = 0;
	amil_awormap_foreach(d->reg, camp_one, &x);
	fputs("{\"schema\": 1, \"campaigns\": [", f);
	for (unsigned i = 0; i < x.n; i++)
		fprintf(f,
			"%s{\"campaign\": %" PRIu32 ", \"currency\": \"%s\", \"exponent\": %u"
			", \"count\": %" PRIu64 ", \"amount_minor\": \"%s\", \"levy_minor\": \"%s\""
			", \"nodes\": %" PRIu64 "}",
			i ? ", " : "", x.row[i].campaign, x.row[i].currency, x.row[i].exponent,
			x.row[i].count, i128_dec(x.row[i].amount, a), i128_dec(x.row[i].levy, l),
			x.row[i].nodes);
	fprintf(f, "], \"local_ledger_records\": %" PRIu64 "}", d->ledger_records);
}

static void
ctl_answer(struct daemon *d, const char *req)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	char cmd[32] = "";
	unsigned n = 100;

	if (f == NULL)
		return;
	sscanf(req, "%31s %u", cmd, &n);
	d->ctl_requests++;
	if (strcmp(cmd, "status") == 0) {
		write_status(d, f);
	} else if (strcmp(cmd, "nodes") == 0) {
		struct nodes_ctx x = {.d = d, .f = f};

		fputs("{\"schema\": 1, \"nodes\": [", f);
		amil_membership_foreach(d->m, node_json, &x);
		fputs("]}", f);
	} else if (strcmp(cmd, "events") == 0) {
		fputs("{\"schema\": 1, \"events\": ", f);
		amil_events_write_json(d->ev, n, f);
		fputs("}", f);
	} else if (strncmp(cmd, "registry-", 9) == 0) {
		reg_ctl(d, cmd, req, f);
	} else if (strcmp(cmd, "groups") == 0 || strcmp(cmd, "group-join") == 0 ||
		   strcmp(cmd, "group-leave") == 0) {
		groups_ctl(d, cmd, req, f);
	} else if (strcmp(cmd, "campaigns") == 0) {
		campaigns_ctl(d, f);
	} else if (strcmp(cmd, "broadcast") == 0) {
		if (broadcast_start(d, req, f)) {
			/* The reply is sent by broadcast_check(). */
			fclose(f);
			free(buf);
			broadcast_check(d, false);
			return;
		}
	} else if (strcmp(cmd, "dataplane-stats") == 0) {
		fprintf(f, "{\"schema\": 1, \"state\": \"%s\", \"stats\": %s}",
			dp_state_name[d->dp_state], d->dp_stats != NULL ? d->dp_stats : "null");
	} else {
		d->ctl_bad++;
		fputs("{\"schema\": 1, \"error\": ", f);
		amil_json_str(f, "unknown command (status, nodes, events [N], dataplane-stats)");
		fputs("}", f);
	}
	if (fclose(f) == 0)
		zmq_send(d->ctl, buf, len, 0);
	free(buf);
}

static void
ctl_process(struct daemon *d)
{
	for (int k = 0; k < 64 && !d->bc_pending; k++) {
		char req[2048];
		int n = zmq_recv(d->ctl, req, sizeof(req) - 1, ZMQ_DONTWAIT);
		int more = 0;
		size_t ml = sizeof(more);

		if (n < 0)
			return;
		zmq_getsockopt(d->ctl, ZMQ_RCVMORE, &more, &ml);
		while (more) {         /* one-frame requests only: drain the rest */
			char sink[64];

			zmq_recv(d->ctl, sink, sizeof(sink), 0);
			zmq_getsockopt(d->ctl, ZMQ_RCVMORE, &more, &ml);
			n = -2;
		}
		if (n < 0 || (size_t)n >= sizeof(req) - 1) {
			d->ctl_bad++;
			zmq_send(d->ctl, "{\"schema\": 1, \"error\": \"malformed request\"}", 42, 0);
			continue;
		}
		req[n] = '\0';
		ctl_answer(d, req);
	}
}

/* ---- the local data plane ------------------------------------------------ */

static void
dp_set_state(struct daemon *d, enum dp_state s)
{
	struct amil_event ev = {.node_id = d->cfg.node_id, .at_ns = real_ns()};

	if (d->dp_state == s)
		return;
	d->dp_state = s;
	d->dp_since_ns = ev.at_ns;
	ev.type = s == DP_UP ? AMIL_EV_DATAPLANE_UP : AMIL_EV_DATAPLANE_DOWN;
	snprintf(ev.name, sizeof(ev.name), "%s", d->cfg.name);
	amil_events_add(d->ev, &ev);
}

static int
dp_open(struct daemon *d)
{
	int zero = 0, one = 1;

	d->dp = zmq_socket(d->ctx, ZMQ_REQ);
	if (d->dp == NULL)
		return -1;
	zmq_setsockopt(d->dp, ZMQ_LINGER, &zero, sizeof(zero));
	/* A lost reply must not wedge REQ: relaxed + correlated. */
	zmq_setsockopt(d->dp, ZMQ_REQ_RELAXED, &one, sizeof(one));
	zmq_setsockopt(d->dp, ZMQ_REQ_CORRELATE, &one, sizeof(one));
	return zmq_connect(d->dp, d->cfg.dataplane_ctl);
}

static void
dp_tick(struct daemon *d, uint64_t now)
{
	uint64_t timeout = (uint64_t)d->cfg.dataplane_timeout_ms * 1000000u;

	if (d->dp == NULL)
		return;
	if (d->dp_waiting && now - d->dp_sent_mono > timeout) {
		d->dp_timeouts++;
		d->dp_waiting = false;
	}
	if (now - d->dp_last_reply_mono > timeout && d->dp_state != DP_DOWN &&
	    now - d->started_mono_ns > timeout)
		dp_set_state(d, DP_DOWN);
	if (!d->dp_waiting && now >= d->dp_next_mono) {
		if (zmq_send(d->dp, "stats", 5, ZMQ_DONTWAIT) == 5) {
			d->dp_polls++;
			d->dp_waiting = true;
			d->dp_expect = 1;
			d->dp_sent_mono = now;
		}
		d->dp_next_mono = now + DP_POLL_NS;
	}
}

static void
dp_process(struct daemon *d)
{
	for (;;) {
		zmq_msg_t msg;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, d->dp, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			return;
		}
		if (zmq_msg_size(&msg) > 0 && d->dp_waiting) {
			char *s = malloc(zmq_msg_size(&msg) + 1);

			if (s != NULL) {
				memcpy(s, zmq_msg_data(&msg), zmq_msg_size(&msg));
				s[zmq_msg_size(&msg)] = '\0';
				if (d->dp_expect == 1 && s[0] == '{') {
					free(d->dp_stats);
					d->dp_stats = s;
				} else if (d->dp_expect == 2) {
					free(d->dp_metrics);
					d->dp_metrics = s;
				} else {
					free(s);
				}
			}
			d->dp_replies++;
			d->dp_waiting = false;
			d->dp_last_reply_mono = mono_ns();
			d->dp_last_seen_ns = real_ns();
			dp_set_state(d, DP_UP);
			/* With a metrics endpoint, the counters in Prometheus form
			 * right after the JSON ones. */
			if (d->dp_expect == 1 && d->metrics != NULL &&
			    zmq_send(d->dp, "metrics", 7, ZMQ_DONTWAIT) == 7) {
				d->dp_waiting = true;
				d->dp_expect = 2;
				d->dp_sent_mono = mono_ns();
			}
		}
		zmq_msg_close(&msg);
	}
}

/* ---- Prometheus ----------------------------------------------------------- */

struct prom_ctx {
	FILE *f;
};

static int
member_metric(void *ctx, const struct amil_member_info *mi)
{
	struct prom_ctx *x = ctx;

	fprintf(x->f, "amil_member_state{node_id=\"%" PRIu64 "\",state=\"%s\"} 1\n", mi->node_id,
		state_name(mi->state));
	return 0;
}

static void
publish_metrics(struct daemon *d)
{
	struct amil_membership_counters mc;
	struct amil_transport_counters tc;
	struct prom_ctx x;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	static const char *const st[] = {"alive", "suspect", "dead", "left"};

	if (f == NULL)
		return;
	x.f = f;
	amil_membership_get_counters(d->m, &mc);
	amil_transport_get_counters(d->tr, &tc);
	fprintf(f, "# HELP amil_node_info This appliance.\n# TYPE amil_node_info gauge\n"
		   "amil_node_info{node_id=\"%" PRIu64 "\",name=\"%s\",region=\"%s\",version=\"" VERSION
		   "\"} 1\n",
		d->cfg.node_id, d->cfg.name, d->cfg.region);
	fputs("# HELP amil_cluster_members Members by state, as this appliance sees them.\n"
	      "# TYPE amil_cluster_members gauge\n", f);
	for (unsigned k = 0; k < 4; k++)
		fprintf(f, "amil_cluster_members{state=\"%s\"} %u\n", st[k],
			amil_membership_count(d->m, (enum amil_member_state)k));
	fputs("# HELP amil_member_state State of each member (1 for its current state).\n"
	      "# TYPE amil_member_state gauge\n", f);
	amil_membership_foreach(d->m, member_metric, &x);
	fputs("# HELP amil_membership_total Failure-detector counters.\n"
	      "# TYPE amil_membership_total counter\n", f);
#define MC(n) fprintf(f, "amil_membership_total{counter=\"" #n "\"} %" PRIu64 "\n", mc.n)
	MC(msgs_sent); MC(msgs_received); MC(probes_sent); MC(acks_received); MC(probe_failures);
	MC(indirect_probes_sent); MC(indirect_probes_served); MC(suspicions); MC(refutations);
	MC(false_suspicions); MC(deaths_declared); MC(malformed_dropped); MC(foreign_dropped);
#undef MC
	fprintf(f, "# HELP amil_local_health Lifeguard local health score (0 is best).\n"
		   "# TYPE amil_local_health gauge\namil_local_health %" PRIu32 "\n",
		amil_membership_health(d->m));
	fputs("# HELP amil_transport_total Transport counters (ZAP, CURVE, datagrams).\n"
	      "# TYPE amil_transport_total counter\n", f);
#define TC(n) fprintf(f, "amil_transport_total{counter=\"" #n "\"} %" PRIu64 "\n", tc.n)
	TC(zap_allowed); TC(zap_denied); TC(rx_msgs); TC(rx_dropped); TC(tx_msgs); TC(tx_dropped);
	TC(tx_refused); TC(dgram_rx); TC(dgram_rx_bad); TC(dgram_rx_replay); TC(dgram_tx);
	TC(dgram_tx_dropped);
#undef TC
	if (d->beacons != NULL) {
		struct amil_beacon_counters bc;

		amil_beacon_get_counters(d->beacons, &bc);
		fputs("# HELP amil_beacon_total Discovery beacon counters.\n"
		      "# TYPE amil_beacon_total counter\n", f);
#define BC(n) fprintf(f, "amil_beacon_total{counter=\"" #n "\"} %" PRIu64 "\n", bc.n)
		BC(sent); BC(received); BC(accepted); BC(malformed_dropped); BC(bad_mac_dropped);
		BC(foreign_dropped); BC(stale_dropped); BC(replay_dropped);
#undef BC
	}
	fprintf(f, "# HELP amil_dataplane_up 1 while the local data plane answers.\n"
		   "# TYPE amil_dataplane_up gauge\namil_dataplane_up %d\n",
		d->dp_state == DP_UP);
	if (d->dp_state == DP_UP && d->dp_metrics != NULL)
		fputs(d->dp_metrics, f);
	if (fclose(f) == 0)
		amil_metrics_publish(d->metrics, buf, len);
	free(buf);
}

/* ---- beacons ------------------------------------------------------------- */

static int
load_secret(const char *path, uint8_t out[AMIL_BEACON_SECRET_LEN], char *err, size_t errlen)
{
	char hex[128];
	struct stat st;
	size_t n, bin = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
		fclose(f);
		snprintf(err, errlen, "%s: the cluster secret must not be readable by others (chmod 600)",
			 path);
		return -EPERM;
	}
	n = fread(hex, 1, sizeof(hex) - 1, f);
	fclose(f);
	hex[n] = '\0';
	while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == ' ' || hex[n - 1] == '\r'))
		hex[--n] = '\0';
	if (n != 2 * AMIL_BEACON_SECRET_LEN ||
	    sodium_hex2bin(out, AMIL_BEACON_SECRET_LEN, hex, n, NULL, &bin, NULL) != 0 ||
	    bin != AMIL_BEACON_SECRET_LEN) {
		snprintf(err, errlen, "%s: expected %d hex characters (e.g. from 'openssl rand -hex 32')",
			 path, 2 * AMIL_BEACON_SECRET_LEN);
		return -EINVAL;
	}
	return 0;
}

/* "tcp://A:P" -> the beacon's endpoint fields. */
static int
endpoint_to_disc(const char *ep, struct amil_disc_endpoint *out)
{
	char host[AMIL_ENDPOINT_MAX + 1], *colon;

	if (strncmp(ep, "tcp://", 6) != 0 || strlen(ep + 6) >= sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%s", ep + 6);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return -EINVAL;
	*colon = '\0';
	memset(out, 0, sizeof(*out));
	out->port = (uint16_t)atoi(colon + 1);
	if (host[0] == '[') {
		host[strlen(host) - 1] = '\0';
		out->family = AF_INET6;
		return inet_pton(AF_INET6, host + 1, out->addr) == 1 ? 0 : -EINVAL;
	}
	out->family = AF_INET;
	return inet_pton(AF_INET, host, out->addr) == 1 ? 0 : -EINVAL;
}

static void
beacons_process(struct daemon *d)
{
	struct amil_beacon b;

	while (amil_beacon_recv(d->beacons, real_ns(), &b, NULL) == 0) {
		const struct amil_allow_entry *a = amil_transport_allowed(d->tr, b.node_id);
		char host[INET6_ADDRSTRLEN], ep[AMIL_ENDPOINT_MAX + 1];

		/* Authentic (cluster secret), but only an allow-listed node
		 * with the key the allow-list gives it becomes a seed. */
		if (a == NULL || memcmp(a->pub, b.curve_public, AMIL_CURVE_KEY_LEN) != 0 ||
		    inet_ntop(b.endpoint.family, b.endpoint.addr, host, sizeof(host)) == NULL) {
			d->beacon_key_mismatch++;
			continue;
		}
		if (b.endpoint.family == AF_INET6)
			snprintf(ep, sizeof(ep), "tcp://[%s]:%u", host, b.endpoint.port);
		else
			snprintf(ep, sizeof(ep), "tcp://%s:%u", host, b.endpoint.port);
		if (amil_membership_lookup(d->m, b.node_id, &(struct amil_member_info){0}) != 0 &&
		    amil_membership_add_seed(d->m, b.node_id, (const uint8_t *)ep, strlen(ep)) == 0)
			d->beacon_seeds++;
	}
}

static int
beacons_start(struct daemon *d, const uint8_t pub[AMIL_CURVE_KEY_LEN], char *err, size_t errlen)
{
	uint8_t secret[AMIL_BEACON_SECRET_LEN];
	struct amil_beacon_sock_config bc = {0};
	int rc;

	rc = load_secret(d->cfg.cluster_secret, secret, err, errlen);
	if (rc != 0)
		return rc;
	bc.cluster_id = d->cfg.cluster_id;
	bc.self_id = d->cfg.node_id;
	bc.secret = secret;
	bc.mode = strcmp(d->cfg.beacon_mode, "broadcast") == 0 ? AMIL_BEACON_BROADCAST
							       : AMIL_BEACON_MULTICAST;
	bc.group = d->cfg.beacon_group;
	bc.port = (uint16_t)d->cfg.beacon_port;
	bc.ifname = d->cfg.beacon_interface[0] ? d->cfg.beacon_interface : NULL;
	bc.ttl = (uint8_t)d->cfg.beacon_ttl;
	bc.loop = true;                /* several appliances may share a host (labs) */
	d->beacons = amil_beacon_sock_new(&bc);
	sodium_memzero(secret, sizeof(secret));
	if (d->beacons == NULL) {
		snprintf(err, errlen, "beacons on %s port %u: %s", d->cfg.beacon_group,
			 d->cfg.beacon_port, strerror(errno));
		return -errno;
	}
	d->self_beacon = (struct amil_beacon){
		.cluster_id = d->cfg.cluster_id,
		.node_id = d->cfg.node_id,
		.incarnation = d->started_real_ns,
	};
	memcpy(d->self_beacon.curve_public, pub, AMIL_CURVE_KEY_LEN);
	if (endpoint_to_disc(d->cfg.advertise, &d->self_beacon.endpoint) != 0) {
		snprintf(err, errlen, "beacons: the advertised endpoint %s must be tcp://IP:PORT",
			 d->cfg.advertise);
		return -EINVAL;
	}
	d->self_beacon.name_len = (uint8_t)strlen(d->cfg.name);
	memcpy(d->self_beacon.name, d->cfg.name, d->self_beacon.name_len);
	return 0;
}

/* ---- DNS discovery -------------------------------------------------------- */

static void
disc_to_sockaddr(const struct amil_disc_endpoint *ep, struct sockaddr_storage *ss, socklen_t *sl)
{
	memset(ss, 0, sizeof(*ss));
	if (ep->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(ep->port);
		memcpy(&s6->sin6_addr, ep->addr, 16);
		*sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(ep->port);
		memcpy(&s4->sin_addr, ep->addr, 4);
		*sl = sizeof(*s4);
	}
}

/* A new endpoint in the DNS union: ask it who it is. */
static void
dns_added(void *ctx, const struct amil_disc_endpoint *ep)
{
	struct daemon *d = ctx;
	struct sockaddr_storage ss;
	socklen_t sl;

	disc_to_sockaddr(ep, &ss, &sl);
	amil_transport_hello(d->tr, (struct sockaddr *)&ss, sl);
}

static int
dns_rehello(void *ctx, const struct amil_dns_disc_entry *e)
{
	dns_added(ctx, &e->ep);
	return 0;
}

/* An authenticated answer to a hello: that node is at that endpoint. */
static void
on_identity(void *ctx, uint64_t node_id, const char *endpoint)
{
	struct daemon *d = ctx;
	struct amil_member_info mi;

	/* Members already alive need no seed; the DNS answer that led here
	 * never removes anything (union semantics), only adds. */
	if (amil_membership_lookup(d->m, node_id, &mi) == 0 && mi.state == AMIL_MEMBER_ALIVE)
		return;
	if (amil_membership_add_seed(d->m, node_id, (const uint8_t *)endpoint, strlen(endpoint)) == 0)
		d->ident_seeds++;
}

static int
dns_start(struct daemon *d, char *err, size_t errlen)
{
	struct amil_dns_disc_config dc = {0};
	unsigned kinds = 0;

	if (strstr(d->cfg.dns_records, "AAAA") != NULL)
		kinds |= AMIL_DNS_AAAA;
	if (strstr(d->cfg.dns_records, "SRV") != NULL)
		kinds |= AMIL_DNS_SRV;
	if (strstr(d->cfg.dns_records, "A,") != NULL || strcmp(d->cfg.dns_records, "A") == 0 ||
	    (strlen(d->cfg.dns_records) >= 2 &&
	     strcmp(d->cfg.dns_records + strlen(d->cfg.dns_records) - 2, ",A") == 0))
		kinds |= AMIL_DNS_A;
	if (kinds == 0) {
		snprintf(err, errlen, "--dns-records '%s': a list of A, AAAA, SRV", d->cfg.dns_records);
		return -EINVAL;
	}
	dc.name = d->cfg.dns_name;
	dc.kinds = kinds;
	dc.port = (uint16_t)d->cfg.dns_port;
	dc.interval_ns = (uint64_t)d->cfg.dns_interval_s * 1000000000u;
	dc.nameserver = d->cfg.dns_nameserver[0] ? d->cfg.dns_nameserver : NULL;
	dc.on_add = dns_added;
	dc.ctx = d;
	d->dns = amil_dns_disc_new(&dc, mono_ns());
	if (d->dns == NULL) {
		snprintf(err, errlen, "DNS discovery of %s: %s", d->cfg.dns_name, strerror(errno));
		return -errno;
	}
	amil_transport_set_ident_fn(d->tr, on_identity, d);
	return 0;
}

/* ---- incarnation across restarts --------------------------------------- */

/*
 * The cluster believes a member's ALIVE only with an incarnation above the
 * DEAD it holds.  Wall-clock seconds alone are not enough: every refutation
 * adds one, so a member suspected often (lossy links) can be ahead of the
 * clock when it restarts.  The last incarnation is kept in
 * <keys>/incarnation and a new life starts above both.
 */
static uint32_t
incarnation_load(const struct daemon *d)
{
	char path[PATH_MAX + 32];
	unsigned long v = 0;
	uint32_t now = (uint32_t)(time(NULL) - 1577836800);   /* seconds since 2020 */
	FILE *f;

	snprintf(path, sizeof(path), "%s/incarnation", d->cfg.keys_dir);
	f = fopen(path, "r");
	if (f != NULL) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v >= now && v < UINT32_MAX ? (uint32_t)v + 1 : now;
}

static void
incarnation_save(struct daemon *d)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
	uint32_t inc = amil_membership_incarnation(d->m);
	FILE *f;

	if (inc == d->saved_incarnation)
		return;
	snprintf(path, sizeof(path), "%s/incarnation", d->cfg.keys_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%" PRIu32 "\n", inc) < 0 || fclose(f) != 0 ||
	    rename(tmp, path) != 0) {
		if (!d->incarnation_warned)
			fprintf(stderr, PROG ": warning: cannot keep the incarnation in %s: %s\n", path,
				strerror(errno));
		d->incarnation_warned = true;
		d->saved_incarnation = inc;   /* do not retry every turn */
		return;
	}
	d->saved_incarnation = inc;
}

/* ---- start-up ---------------------------------------------------------- */

static int
bind_ipc(void *s, const char *dir, const char *name, char *endpoint, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (strlen(path) >= 100) {     /* sun_path */
		errno = ENAMETOOLONG;
		return -1;
	}
	unlink(path);                  /* a stale socket of a previous run */
	snprintf(endpoint, len, "ipc://%s", path);
	if (zmq_bind(s, endpoint) != 0)
		return -1;
	/* Operators in the amil group, nobody else. */
	return chmod(path, 0660);
}

static int
run(int argc, char **argv)
{
	static struct amil_allow_entry allow[ALLOW_MAX];
	struct daemon dd = {0}, *d = &dd;
	struct amil_membership_config mc;
	struct amil_transport_params tp = {0};
	char err[AMIL_CP_ERR_LEN], path[PATH_MAX + 16], ep[PATH_MAX + 8];
	uint8_t pub[AMIL_CURVE_KEY_LEN], sec[AMIL_CURVE_KEY_LEN];
	int nallow, rc, status = EXIT_FAILURE, zero = 0;
	bool leaving = false;
	uint64_t rnd = 0;

	rc = amil_cp_config_parse(&d->cfg, argc, argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 64;
	}
	snprintf(path, sizeof(path), "%s/curve.key", d->cfg.keys_dir);
	if (amil_curve_key_load(path, true, sec, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_FAILURE;
	}
	snprintf(path, sizeof(path), "%s/curve.pub", d->cfg.keys_dir);
	if (amil_curve_key_load(path, false, pub, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_FAILURE;
	}
	zmq_z85_encode(d->pub_key_z85, pub, sizeof(pub));
	nallow = amil_allow_list_load(d->cfg.allow_list, allow, ALLOW_MAX, err, sizeof(err));
	if (nallow < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_FAILURE;
	}
	for (unsigned i = 0; i < d->cfg.nb_seeds; i++) {
		bool found = false;

		for (int k = 0; k < nallow; k++)
			found |= allow[k].node_id == d->cfg.seeds[i].node_id;
		if (!found) {
			fprintf(stderr, PROG ": seed %" PRIu64 "@%s is not on the allow-list %s\n",
				d->cfg.seeds[i].node_id, d->cfg.seeds[i].endpoint, d->cfg.allow_list);
			return EXIT_FAILURE;
		}
	}
	if (mkdir(d->cfg.run_dir, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": run directory %s: %s\n", d->cfg.run_dir, strerror(errno));
		return EXIT_FAILURE;
	}

	d->ctx = zmq_ctx_new();
	d->started_real_ns = real_ns();
	d->started_mono_ns = mono_ns();
	tp = (struct amil_transport_params){
		.zmq_ctx = d->ctx,
		.self_id = d->cfg.node_id,
		.listen = d->cfg.listen,
		.advertise = d->cfg.advertise,
		.allow = allow,
		.nb_allow = (unsigned)nallow,
	};
	memcpy(tp.public_key, pub, sizeof(pub));
	memcpy(tp.secret_key, sec, sizeof(sec));
	explicit_bzero(sec, sizeof(sec));
	d->tr = amil_transport_new(&tp, err, sizeof(err));
	explicit_bzero(tp.secret_key, sizeof(tp.secret_key));
	if (d->tr == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}

	d->ctl = zmq_socket(d->ctx, ZMQ_REP);
	d->pub = zmq_socket(d->ctx, ZMQ_PUB);
	zmq_setsockopt(d->ctl, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(d->pub, ZMQ_LINGER, &zero, sizeof(zero));
	if (bind_ipc(d->ctl, d->cfg.run_dir, "ctl.sock", ep, sizeof(ep)) != 0 ||
	    bind_ipc(d->pub, d->cfg.run_dir, "events.sock", ep, sizeof(ep)) != 0) {
		fprintf(stderr, PROG ": cannot open the control sockets in %s: %s\n",
			d->cfg.run_dir, zmq_strerror(zmq_errno()));
		goto out;
	}
	d->ev = amil_events_new(d->cfg.event_log, d->pub);
	if (d->ev == NULL) {
		fprintf(stderr, PROG ": event log %s: %s\n", d->cfg.event_log, strerror(errno));
		goto out;
	}

	amil_membership_config_init(&mc, (enum amil_membership_profile)d->cfg.profile);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = mono_ns();
	mc.cluster_id = d->cfg.cluster_id;
	mc.self_id = d->cfg.node_id;
	mc.name = d->cfg.name;
	mc.addr = (const uint8_t *)d->cfg.advertise;
	mc.addr_len = strlen(d->cfg.advertise);
	mc.max_members = (uint32_t)nallow + 1;
	if (mc.max_members < 2)
		mc.max_members = 2;
	mc.seed = rnd;
	/* Above any earlier life of this node, so the cluster believes our
	 * ALIVE over the DEAD it may still hold. */
	mc.initial_incarnation = incarnation_load(d);
	mc.send = mb_send;
	mc.send_ctx = d;
	mc.on_event = mb_event;
	mc.event_ctx = d;
	d->m = amil_membership_new(&mc, mono_ns());
	if (d->m == NULL) {
		fprintf(stderr, PROG ": membership: %s\n", strerror(errno));
		goto out;
	}
	{
		/* The registry's writer id must be new for every life of the
		 * process (a restarted writer must not reuse its dots): node id
		 * and this life's incarnation, hashed. */
		static const uint8_t k[crypto_shorthash_KEYBYTES] = "amil-reg-writer";
		uint8_t in[12], out[crypto_shorthash_BYTES];
		uint64_t writer;

		memcpy(in, &d->cfg.node_id, 8);
		memcpy(in + 8, &mc.initial_incarnation, 4);
		crypto_shorthash(out, in, sizeof(in), k);
		memcpy(&writer, out, 8);
		d->reg = amil_awormap_new(writer ? writer : 1, 5ull * 1000000000ull);
		if (d->reg == NULL) {
			fprintf(stderr, PROG ": registry: %s\n", strerror(errno));
			goto out;
		}
	}
	for (unsigned i = 0; i < d->cfg.nb_seeds; i++)
		amil_membership_add_seed(d->m, d->cfg.seeds[i].node_id,
					 (const uint8_t *)d->cfg.seeds[i].endpoint,
					 strlen(d->cfg.seeds[i].endpoint));
	if (d->cfg.dataplane_ctl[0] != '\0') {
		d->dp_state = DP_UNKNOWN;
		d->dp_last_reply_mono = mono_ns();
		if (dp_open(d) != 0) {
			fprintf(stderr, PROG ": data plane %s: %s\n", d->cfg.dataplane_ctl,
				zmq_strerror(zmq_errno()));
			goto out;
		}
	}

	if (d->cfg.metrics[0] != '\0') {
		d->metrics = amil_metrics_start(d->cfg.metrics, err, sizeof(err));
		if (d->metrics == NULL) {
			fprintf(stderr, PROG ": %s\n", err);
			goto out;
		}
	}
	if (d->cfg.beacon_group[0] != '\0' && beacons_start(d, pub, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (d->cfg.dns_name[0] != '\0' && dns_start(d, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	printf(PROG ": node %" PRIu64 " (%s) listening on %s, %d allow-listed, %u seed(s), "
	       "profile %s, public key %s; control %s/ctl.sock\n",
	       d->cfg.node_id, d->cfg.name, d->cfg.listen, nallow, d->cfg.nb_seeds,
	       d->cfg.profile == AMIL_MEMBERSHIP_WAN ? "wan" : "lan", d->pub_key_z85,
	       d->cfg.run_dir);
	fflush(stdout);
#ifdef AMIL_HAVE_SYSTEMD
	sd_notifyf(0, "READY=1\nSTATUS=node %" PRIu64 " listening on %s", d->cfg.node_id,
		   d->cfg.listen);
#endif

	for (;;) {
		zmq_pollitem_t items[8];
		int n = amil_transport_pollitems(d->tr, items, 8);
		int ctl_i = n, dp_i = -1, bc_i = -1, dns_i = -1;
		uint64_t now = mono_ns(), next = amil_membership_next_deadline_ns(d->m);
		long timeout_ms;

		/* A held broadcast reply: no new request until it is sent. */
		if (!d->bc_pending)
			items[n++] = (zmq_pollitem_t){.socket = d->ctl, .events = ZMQ_POLLIN};
		else
			ctl_i = -1;
		if (d->dp != NULL) {
			dp_i = n;
			items[n++] = (zmq_pollitem_t){.socket = d->dp, .events = ZMQ_POLLIN};
		}
		if (d->dns != NULL) {
			dns_i = n;
			items[n++] = (zmq_pollitem_t){.fd = amil_dns_disc_fd(d->dns),
						      .events = ZMQ_POLLIN};
		}
		if (d->beacons != NULL) {
			bc_i = n;
			items[n++] = (zmq_pollitem_t){.fd = amil_beacon_sock_fd(d->beacons),
						      .events = ZMQ_POLLIN};
		}
		timeout_ms = next <= now ? 0 : (long)((next - now + 999999) / 1000000);
		if (timeout_ms > 50)
			timeout_ms = 50;   /* signals, the data-plane watch */
		if (zmq_poll(items, n, timeout_ms) < 0 && zmq_errno() != EINTR)
			break;
		if ((items[0].revents | items[1].revents | items[2].revents) & ZMQ_POLLIN)
			amil_transport_process(d->tr, tr_recv, d);
		if (ctl_i >= 0 && (items[ctl_i].revents & ZMQ_POLLIN))
			ctl_process(d);
		if (dp_i >= 0 && (items[dp_i].revents & ZMQ_POLLIN))
			dp_process(d);
		if (bc_i >= 0 && (items[bc_i].revents & ZMQ_POLLIN))
			beacons_process(d);
		now = mono_ns();
		if (d->dns != NULL && ((dns_i >= 0 && (items[dns_i].revents & ZMQ_POLLIN)) ||
				       now >= amil_dns_disc_next_deadline_ns(d->dns)))
			amil_dns_disc_run(d->dns, now);
		/* Endpoints whose identity we still lack (or lost): ask again. */
		if (d->dns != NULL && now >= d->hello_next_mono && !leaving) {
			amil_dns_disc_foreach(d->dns, dns_rehello, d);
			d->hello_next_mono = now + (uint64_t)d->cfg.dns_interval_s * 1000000000u;
		}
		if (d->beacons != NULL && now >= d->beacon_next_mono && !leaving) {
			amil_beacon_send(d->beacons, &d->self_beacon, real_ns());
			d->beacon_next_mono = now + (uint64_t)d->cfg.beacon_interval_ms * 1000000u;
		}
		if (d->metrics != NULL && now >= d->metrics_next_mono) {
			publish_metrics(d);
			d->metrics_next_mono = now + 500 * 1000000ull;
		}
		if (amil_membership_tick(d->m, now) == -ESHUTDOWN && leaving)
			break;
		dp_tick(d, now);
		incarnation_save(d);
		broadcast_check(d, false);
		if (now >= d->ledger_next_mono && !leaving) {
			ledger_tail(d);
			camp_publish(d);
			d->ledger_next_mono = now + 250 * 1000000ull;
		}
		if (now >= d->reg_ae_next_mono && !leaving) {
			reg_anti_entropy(d);
			reg_reap(d, now);
			d->reg_ae_next_mono = now + REG_AE_NS;
		}
		if (quit_requested && !leaving) {
			/* Graceful: members see LEFT, not DEAD. */
			leaving = true;
#ifdef AMIL_HAVE_SYSTEMD
			sd_notify(0, "STOPPING=1\nSTATUS=leaving the cluster");
#endif
			amil_membership_leave(d->m, now);
			printf(PROG ": leaving the cluster\n");
			fflush(stdout);
		}
		if (leaving && amil_membership_is_quiet(d->m))
			break;
	}
	status = EXIT_SUCCESS;
out:
	amil_membership_destroy(&d->m);
	amil_events_destroy(&d->ev);
	amil_transport_destroy(&d->tr);
	if (d->ctl != NULL)
		zmq_close(d->ctl);
	if (d->pub != NULL)
		zmq_close(d->pub);
	if (d->dp != NULL)
		zmq_close(d->dp);
	free(d->dp_stats);
	free(d->dp_metrics);
	amil_metrics_stop(&d->metrics);
	amil_beacon_sock_destroy(&d->beacons);
	amil_dns_disc_destroy(&d->dns);
	amil_awormap_destroy(&d->reg);
	if (d->ctx != NULL)
		zmq_ctx_term(d->ctx);
	return status;
}

static int
keygen(int argc, char **argv)
{
	static const struct option lo[] = {
		{"keys", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	char z85[AMIL_CURVE_Z85_LEN + 1], err[512];
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		if (opt == 'k') {
			dir = optarg;
		} else if (opt == 'h') {
			printf("Usage: " PROG " keygen --keys DIR\n"
			       "Create this appliance's CURVE key pair: DIR/curve.key (secret, 0600)\n"
			       "and DIR/curve.pub.  An existing key is never overwritten.  Add the\n"
			       "printed public key, with the node id, to every appliance's allow-list.\n");
			return 0;
		} else {
			fprintf(stderr, PROG " keygen: bad option '%s' (see --help)\n", argv[optind - 1]);
			return 64;
		}
	}
	if (dir == NULL || optind < argc) {
		fprintf(stderr, PROG " keygen: usage: " PROG " keygen --keys DIR\n");
		return 64;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, PROG " keygen: %s: %s\n", dir, strerror(errno));
		return EXIT_FAILURE;
	}
	if (amil_curve_keygen(dir, z85, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG " keygen: %s\n", err);
		return EXIT_FAILURE;
	}
	printf("%s\n", z85);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return keygen(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
			  strcmp(argv[1], "help") == 0)) {
		amil_cp_config_usage(stdout);
		return 0;
	}
	fprintf(stderr, PROG ": usage: " PROG " run [options] | keygen --keys DIR (see --help)\n");
	return 64;
}
