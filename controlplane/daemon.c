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
#include "campaigns.h"
#include "beacon.h"
#include "cp_config.h"
#include "dns_disc.h"
#include "events.h"
#include "groups.h"
#include "metrics.h"
#include "registry.h"
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
	/* Registry (AP or CP), groups and campaign totals: their modules. */
	struct amil_registry *reg;
	struct amil_groups *groups;
	struct amil_campaigns *camps;
	bool ctl_held;                 /* a module holds the reply to the last request */
};

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
	/* Back (a heal, a restart): repair the registry with it at once. */
	if ((ev.type == AMIL_EV_NODEUP || ev.type == AMIL_EV_UNSUSPECT) && d->reg != NULL)
		amil_registry_peer_up(d->reg, e->node_id, mono_ns(), ev.type == AMIL_EV_NODEUP);
}

static void
tr_recv(void *ctx, uint64_t from_id, const uint8_t *buf, size_t len)
{
	struct daemon *d = ctx;

	/* Registry and group messages come over CURVE with a kind byte;
	 * membership messages (datagrams) start with their magic "AC". */
	if (amil_registry_receive(d->reg, from_id, buf, len) == 0 ||
	    amil_groups_receive(d->groups, from_id, buf, len) == 0)
		return;
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

	struct amil_beacon_counters bc = {0};
	struct amil_registry_stats rs;
	bool cp = amil_registry_mode(d->reg) == AMIL_REGISTRY_CP;

	/* CP mode: without a majority of the configured cluster this side
	 * refuses registrations, and says so here. */
	if (d->dp_state == DP_DOWN || (cp && alive < amil_registry_quorum(d->reg)))
		health = "degraded";
	else if (alive <= 1)
		health = "alone";
	amil_registry_stats_get(d->reg, &rs);
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
		", \"transport_tx\": %" PRIu64 ", \"transport_tx_bytes\": %" PRIu64
		", \"transport_rx_bytes\": %" PRIu64 ", \"transport_tx_dropped\": %" PRIu64
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
		", \"registry_memory_bytes\": %zu, \"registry_entries\": %zu"
		", \"registry_batches_tx\": %" PRIu64 ", \"registry_batches_rx\": %" PRIu64
		", \"registry_cp_ok\": %" PRIu64 ", \"registry_cp_refused\": %" PRIu64
		", \"registry_cp_no_majority\": %" PRIu64 ", \"registry_cp_nacks\": %" PRIu64
		", \"registry_cp_retries\": %" PRIu64 ", \"registry_cp_bad\": %" PRIu64
		", \"registry_reasserted\": %" PRIu64 ", \"registry_resent_deltas\": %" PRIu64
		", \"registry_resent_bytes\": %" PRIu64 ", \"registry_log_bytes\": %zu"
		", \"registry_log_deltas\": %zu}",
		mc.msgs_sent, mc.msgs_received, mc.probes_sent, mc.acks_received,
		mc.probe_failures, mc.indirect_probes_sent, mc.suspicions, mc.refutations,
		mc.false_suspicions, mc.deaths_declared, mc.malformed_dropped, mc.foreign_dropped,
		tc.zap_allowed, tc.zap_denied, tc.rx_msgs, tc.rx_dropped, tc.tx_msgs, tc.tx_bytes,
		tc.rx_bytes, tc.tx_dropped, tc.tx_refused, tc.peers, tc.dgram_rx, tc.dgram_rx_bad, tc.dgram_rx_replay,
		tc.dgram_tx, tc.dgram_tx_dropped, tc.hello_tx, tc.hello_replies, tc.ident_rx,
		d->beacon_seeds + d->ident_seeds, amil_membership_health(d->m), amil_events_count(d->ev),
		d->ctl_requests, d->ctl_bad, d->dp_polls, d->dp_replies, d->dp_timeouts, bc.sent,
		bc.accepted, bc.bad_mac_dropped, bc.replay_dropped, bc.stale_dropped,
		bc.foreign_dropped, d->beacon_key_mismatch, rs.names, rs.deltas_tx, rs.deltas_rx,
		rs.states_tx, rs.states_rx, rs.bad, rs.conflicts, rs.reaped, rs.map_memory_bytes,
		rs.map_entries, rs.batches_tx, rs.batches_rx, rs.cp_ops_ok, rs.cp_ops_refused,
		rs.cp_ops_timeout, rs.cp_nacks, rs.cp_retries, rs.cp_bad, rs.reasserted,
		rs.resent_deltas, rs.resent_bytes, rs.log_bytes, rs.log_deltas);
	fprintf(f,
		", \"registry\": {\"mode\": \"%s\", \"names\": %zu, \"configured\": %u"
		", \"quorum\": %u, \"reachable\": %u, \"map_digest\": \"%016" PRIx64 "\"}}",
		cp ? "cp" : "ap", rs.names, cp ? amil_registry_cluster_size(d->reg) : 0,
		cp ? amil_registry_quorum(d->reg) : 0, alive, rs.map_root);
}

static void
ctl_answer(struct daemon *d, const char *req)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	char cmd[32] = "";
	unsigned n = 100;
	int rc;

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
	} else if (strcmp(cmd, "campaigns") == 0) {
		amil_campaigns_json(d->camps, f);
	} else if ((rc = amil_registry_ctl(d->reg, cmd, req, f)) != -ENOTSUP ||
		   (rc = amil_groups_ctl(d->groups, cmd, req, f)) != -ENOTSUP) {
		if (rc == 1) {
			/* Held: the module sends the reply (ctl_reply). */
			d->ctl_held = true;
			fclose(f);
			free(buf);
			return;
		}
	} else if (strcmp(cmd, "dataplane-stats") == 0) {
		fprintf(f, "{\"schema\": 1, \"state\": \"%s\", \"stats\": %s}",
			dp_state_name[d->dp_state], d->dp_stats != NULL ? d->dp_stats : "null");
	} else {
		d->ctl_bad++;
		fputs("{\"schema\": 1, \"error\": ", f);
		amil_json_str(f, "unknown command (status, nodes, events [N], dataplane-stats, "
				 "registry-*, groups, group-join, group-leave, broadcast, campaigns)");
		fputs("}", f);
	}
	if (fclose(f) == 0)
		zmq_send(d->ctl, buf, len, 0);
	free(buf);
}

/* A module's held reply (a broadcast's acks, CP rounds): the REP socket
 * owes exactly this one. */
static void
ctl_reply(void *ctx, const char *buf, size_t len)
{
	struct daemon *d = ctx;

	if (!d->ctl_held)
		return;
	zmq_send(d->ctl, buf, len, 0);
	d->ctl_held = false;
}

/* Requests are one frame of at most 16 MiB: a batch registration carries
 * one "NAME VALUE" line per name. */
#define CTL_REQ_MAX (16u << 20)

static void
ctl_process(struct daemon *d)
{
	for (int k = 0; k < 64 && !d->ctl_held; k++) {
		zmq_msg_t msg;
		int more = 0, n;
		size_t ml = sizeof(more);
		char *req;

		zmq_msg_init(&msg);
		n = zmq_msg_recv(&msg, d->ctl, ZMQ_DONTWAIT);
		if (n < 0) {
			zmq_msg_close(&msg);
			return;
		}
		zmq_getsockopt(d->ctl, ZMQ_RCVMORE, &more, &ml);
		while (more) {         /* one-frame requests only: drain the rest */
			char sink[64];

			zmq_recv(d->ctl, sink, sizeof(sink), 0);
			zmq_getsockopt(d->ctl, ZMQ_RCVMORE, &more, &ml);
			n = -2;
		}
		req = n >= 0 && (size_t)n <= CTL_REQ_MAX ? malloc((size_t)n + 1) : NULL;
		if (req == NULL) {
			zmq_msg_close(&msg);
			d->ctl_bad++;
			zmq_send(d->ctl, "{\"schema\": 1, \"error\": \"malformed request\"}", 42, 0);
			continue;
		}
		memcpy(req, zmq_msg_data(&msg), (size_t)n);
		req[n] = '\0';
		zmq_msg_close(&msg);
		ctl_answer(d, req);
		free(req);
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
	TC(rx_bytes); TC(tx_bytes);
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

/* The registry, groups and campaign totals.  CP mode: the configured
 * cluster is this node and its allow-list; the acceptor log lives with the
 * keys (it must survive restarts like the incarnation). */
static int
registry_start(struct daemon *d, const struct amil_allow_entry *allow, int nallow,
	       uint64_t writer)
{
	static uint64_t members[ALLOW_MAX + 1];
	char log[PATH_MAX + 32];
	size_t n = 0;
	struct amil_registry_config rc = {
		.node_id = d->cfg.node_id,
		.writer_id = writer,
		.mode = d->cfg.registry_cp ? AMIL_REGISTRY_CP : AMIL_REGISTRY_AP,
		.grace_ms = d->cfg.registry_grace_ms,
		.m = d->m,
		.tr = d->tr,
		.ev = d->ev,
		.reply = ctl_reply,
		.reply_ctx = d,
	};

	members[n++] = d->cfg.node_id;
	for (int i = 0; i < nallow; i++)
		if (allow[i].node_id != d->cfg.node_id)
			members[n++] = allow[i].node_id;
	rc.members = members;
	rc.n_members = n;
	snprintf(log, sizeof(log), "%s/registry-cp.log", d->cfg.keys_dir);
	rc.cp_log = log;
	d->reg = amil_registry_new(&rc, mono_ns());
	if (d->reg == NULL) {
		if (d->cfg.registry_cp)
			fprintf(stderr, PROG ": registry (cp mode), acceptor log %s: %s\n", log,
				strerror(errno));
		else
			fprintf(stderr, PROG ": registry: %s\n", strerror(errno));
		return -1;
	}
	d->groups = amil_groups_new(d->reg, d->ev, d->cfg.node_id, ctl_reply, d);
	d->camps = amil_campaigns_new(d->reg, d->cfg.node_id, d->cfg.ledger_dir);
	if (d->groups == NULL || d->camps == NULL) {
		fprintf(stderr, PROG ": registry: %s\n", strerror(ENOMEM));
		return -1;
	}
	return 0;
}

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
		rc = registry_start(d, allow, nallow, writer ? writer : 1);
		if (rc != 0)
			goto out;
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

		/* A held reply: no new request until it is sent. */
		if (!d->ctl_held)
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
		if (timeout_ms > 2 && amil_registry_busy(d->reg))
			timeout_ms = 2;    /* CP round attempts, backoffs */
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
		amil_groups_tick(d->groups, now);
		if (!leaving) {
			amil_campaigns_tick(d->camps, now);
			amil_registry_tick(d->reg, now);
		}
		/* CP acceptor state durable before its replies leave (one
		 * fdatasync per loop turn, whatever it received). */
		amil_registry_flush(d->reg);
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
	amil_campaigns_destroy(d->camps);
	amil_groups_destroy(d->groups);
	amil_registry_destroy(d->reg);
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
