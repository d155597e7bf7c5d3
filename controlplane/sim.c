/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Deterministic network simulator (see sim.h).
 *
 * Messages in flight sit in a binary min-heap keyed by (delivery time,
 * send order); the send order breaks ties so equal-time deliveries happen
 * in a fixed order.  Node deadlines are asked of each instance after every
 * call into it and cached, so finding the next event is one scan of N.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct flight {
	uint64_t at_ns;
	uint64_t order;
	uint32_t from;
	uint32_t to;
	uint32_t len;
	uint8_t data[AMIL_MWIRE_MSG_MAX];
};

struct node {
	struct amil_cpsim *sim;
	uint32_t idx;
	struct amil_membership *m;   /* NULL while crashed */
	bool paused;
	uint32_t last_incarnation;   /* kept across a crash */
	uint32_t generation;         /* restarts, for the probe seed */
	uint64_t deadline_ns;        /* cached next_deadline */
};

struct amil_cpsim {
	struct amil_cpsim_config cfg;
	uint64_t now_ns;
	uint64_t rng;
	struct node nodes[AMIL_CPSIM_MAX_NODES];
	uint64_t base_delay[AMIL_CPSIM_MAX_NODES][AMIL_CPSIM_MAX_NODES];
	uint32_t loss[AMIL_CPSIM_MAX_NODES][AMIL_CPSIM_MAX_NODES];
	bool cut[AMIL_CPSIM_MAX_NODES][AMIL_CPSIM_MAX_NODES];
	uint32_t group[AMIL_CPSIM_MAX_NODES];

	struct flight **heap;        /* min-heap of owned messages */
	size_t heap_n, heap_cap;
	uint64_t order;

	struct amil_cpsim_event *trace;
	size_t trace_n, trace_cap;
	struct amil_cpsim_stats st;
};

static uint64_t
rnd(struct amil_cpsim *s)
{
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t
rnd_range(struct amil_cpsim *s, uint64_t lo, uint64_t hi)
{
	return hi > lo ? lo + rnd(s) % (hi - lo + 1) : lo;
}

/* ---- heap ---- */

static bool
before(const struct flight *a, const struct flight *b)
{
	return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->order < b->order);
}

static int
heap_push(struct amil_cpsim *s, struct flight *f)
{
	size_t i;

	if (s->heap_n == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
		struct flight **h = realloc(s->heap, cap * sizeof(*h));

		if (h == NULL)
			return -ENOMEM;
		s->heap = h;
		s->heap_cap = cap;
	}
	i = s->heap_n++;
	s->heap[i] = f;
	while (i > 0 && before(s->heap[i], s->heap[(i - 1) / 2])) {
		struct flight *t = s->heap[i];

		s->heap[i] = s->heap[(i - 1) / 2];
		s->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	return 0;
}

static struct flight *
heap_pop(struct amil_cpsim *s)
{
	struct flight *top = s->heap[0];
	size_t i = 0;

	s->heap[0] = s->heap[--s->heap_n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->heap_n && before(s->heap[l], s->heap[m]))
			m = l;
		if (r < s->heap_n && before(s->heap[r], s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct flight *t = s->heap[i];

		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
	return top;
}

/* ---- callbacks from the instances ---- */

static bool
blocked(const struct amil_cpsim *s, uint32_t a, uint32_t b)
{
	return s->group[a] != s->group[b] || s->cut[a][b];
}

static void
on_send(void *ctx, uint64_t to_id, const uint8_t *to_addr, size_t to_addr_len,
	const uint8_t *buf, size_t len)
{
	struct node *n = ctx;
	struct amil_cpsim *s = n->sim;
	struct flight *f;
	uint32_t to;

	s->st.sent++;
	if (to_id == 0 || to_id > s->cfg.n_nodes || len > AMIL_MWIRE_MSG_MAX)
		return;
	to = (uint32_t)(to_id - 1);
	if (blocked(s, n->idx, to)) {
		s->st.partitioned++;
		return;
	}
	if (rnd(s) % 1000000 < s->loss[n->idx][to]) {
		s->st.lost++;
		return;
	}
	f = malloc(sizeof(*f));
	if (f == NULL)
		return;
	f->at_ns = s->now_ns + s->base_delay[n->idx][to] + rnd_range(s, 0, s->cfg.jitter_ns);
	f->order = s->order++;
	f->from = n->idx;
	f->to = to;
	f->len = (uint32_t)len;
	memcpy(f->data, buf, len);
	if (heap_push(s, f) != 0)
		free(f);
}

static void
on_event(void *ctx, const struct amil_membership_event *ev)
{
	struct node *n = ctx;
	struct amil_cpsim *s = n->sim;

	if (s->trace_n == s->trace_cap) {
		size_t cap = s->trace_cap ? s->trace_cap * 2 : 256;
		struct amil_cpsim_event *t = realloc(s->trace, cap * sizeof(*t));

		if (t == NULL)
			return;
		s->trace = t;
		s->trace_cap = cap;
	}
	s->trace[s->trace_n++] = (struct amil_cpsim_event){
		.at_ns = s->now_ns, .observer = n->idx, .subject = (uint32_t)(ev->node_id - 1),
		.type = ev->type, .incarnation = ev->incarnation,
	};
}

/* ---- nodes ---- */

static void
refresh(struct node *n)
{
	n->deadline_ns = n->m ? amil_membership_next_deadline_ns(n->m) : UINT64_MAX;
	/* A deadline in the past would spin the loop; the core never reports
	 * one after a tick, but the simulator must not hang if it did. */
	if (n->deadline_ns <= n->sim->now_ns && n->deadline_ns != UINT64_MAX)
		n->deadline_ns = n->sim->now_ns + 1;
}

static int
start_node(struct amil_cpsim *s, struct node *n, uint32_t incarnation)
{
	struct amil_membership_config c;
	char name[16], addr[16];

	amil_membership_config_init(&c, s->cfg.profile);
	if (s->cfg.override_timers)
		c.timers = s->cfg.timers;
	snprintf(name, sizeof(name), "n%u", n->idx);
	snprintf(addr, sizeof(addr), "sim:%u", n->idx);
	c.cluster_id = AMIL_CPSIM_CLUSTER_ID;
	c.self_id = n->idx + 1;
	c.name = name;
	c.addr = (const uint8_t *)addr;
	c.addr_len = strlen(addr);
	c.max_members = s->cfg.max_members ? s->cfg.max_members : s->cfg.n_nodes + 4;
	c.seed = s->cfg.seed * 1000003ull + n->idx * 7919ull + n->generation * 104729ull + 1;
	c.initial_incarnation = incarnation;
	c.send = on_send;
	c.send_ctx = n;
	c.on_event = on_event;
	c.event_ctx = n;
	n->m = amil_membership_new(&c, s->now_ns);
	if (n->m == NULL)
		return -errno;
	for (uint32_t j = 0; j < s->cfg.n_seeds && j < s->cfg.n_nodes; j++) {
		char a[16];

		if (j == n->idx)
			continue;
		snprintf(a, sizeof(a), "sim:%u", j);
		amil_membership_add_seed(n->m, j + 1, (const uint8_t *)a, strlen(a));
	}
	refresh(n);
	return 0;
}

void
amil_cpsim_config_init(struct amil_cpsim_config *cfg, uint32_t n,
		       enum amil_membership_profile profile, uint64_t seed)
{
	const uint64_t us = 1000;

	memset(cfg, 0, sizeof(*cfg));
	cfg->n_nodes = n;
	cfg->n_seeds = 1;
	cfg->seed = seed;
	cfg->profile = profile;
	if (profile == AMIL_MEMBERSHIP_WAN) {
		cfg->delay_min_ns = 20000 * us;
		cfg->delay_max_ns = 150000 * us;
		cfg->jitter_ns = 10000 * us;
	} else {
		cfg->delay_min_ns = 100 * us;
		cfg->delay_max_ns = 500 * us;
		cfg->jitter_ns = 200 * us;
	}
}

struct amil_cpsim *
amil_cpsim_new(const struct amil_cpsim_config *cfg)
{
	struct amil_cpsim *s;

	if (cfg == NULL || cfg->n_nodes == 0 || cfg->n_nodes > AMIL_CPSIM_MAX_NODES ||
	    cfg->delay_max_ns < cfg->delay_min_ns || cfg->loss_ppm > 1000000) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	s->rng = cfg->seed ^ 0x5EEDF00Dull;
	for (uint32_t a = 0; a < cfg->n_nodes; a++) {
		for (uint32_t b = a; b < cfg->n_nodes; b++) {
			uint64_t d = rnd_range(s, cfg->delay_min_ns, cfg->delay_max_ns);

			s->base_delay[a][b] = s->base_delay[b][a] = d;
			s->loss[a][b] = s->loss[b][a] = cfg->loss_ppm;
		}
	}
	for (uint32_t i = 0; i < cfg->n_nodes; i++) {
		s->nodes[i].sim = s;
		s->nodes[i].idx = i;
		if (start_node(s, &s->nodes[i], 0) != 0) {
			int e = errno;

			amil_cpsim_destroy(&s);
			errno = e;
			return NULL;
		}
	}
	return s;
}

void
amil_cpsim_destroy(struct amil_cpsim **sp)
{
	struct amil_cpsim *s;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	for (uint32_t i = 0; i < AMIL_CPSIM_MAX_NODES; i++)
		amil_membership_destroy(&s->nodes[i].m);
	for (size_t i = 0; i < s->heap_n; i++)
		free(s->heap[i]);
	free(s->heap);
	free(s->trace);
	free(s);
	*sp = NULL;
}

static bool
up(const struct node *n)
{
	return n->m != NULL && !n->paused;
}

int
amil_cpsim_run_until(struct amil_cpsim *s, uint64_t t_ns)
{
	if (t_ns < s->now_ns)
		return -EINVAL;
	for (;;) {
		uint64_t t_msg = s->heap_n ? s->heap[0]->at_ns : UINT64_MAX, t_node = UINT64_MAX;
		struct node *next = NULL;

		for (uint32_t i = 0; i < s->cfg.n_nodes; i++) {
			struct node *n = &s->nodes[i];

			if (up(n) && n->deadline_ns < t_node) {
				t_node = n->deadline_ns;
				next = n;
			}
		}
		if (t_msg <= t_node) {
			struct flight *f;
			struct node *dst;

			if (t_msg > t_ns)
				break;
			f = heap_pop(s);
			s->now_ns = f->at_ns;
			dst = &s->nodes[f->to];
			if (!up(dst)) {
				s->st.to_down++;
			} else if (blocked(s, f->from, f->to)) {
				s->st.partitioned++;
			} else {
				s->st.delivered++;
				amil_membership_receive(dst->m, s->now_ns, f->from + 1, f->data, f->len);
				refresh(dst);
			}
			free(f);
		} else {
			if (t_node > t_ns)
				break;
			s->now_ns = t_node;
			amil_membership_tick(next->m, s->now_ns);
			refresh(next);
		}
	}
	s->now_ns = t_ns;
	return 0;
}

int
amil_cpsim_run_for(struct amil_cpsim *s, uint64_t d_ns)
{
	return amil_cpsim_run_until(s, s->now_ns + d_ns);
}

uint64_t
amil_cpsim_now(const struct amil_cpsim *s)
{
	return s->now_ns;
}

uint32_t
amil_cpsim_size(const struct amil_cpsim *s)
{
	return s->cfg.n_nodes;
}

void
amil_cpsim_set_loss(struct amil_cpsim *s, uint32_t ppm)
{
	for (uint32_t a = 0; a < AMIL_CPSIM_MAX_NODES; a++)
		for (uint32_t b = 0; b < AMIL_CPSIM_MAX_NODES; b++)
			s->loss[a][b] = ppm;
}

void
amil_cpsim_set_link_loss(struct amil_cpsim *s, uint32_t a, uint32_t b, uint32_t ppm)
{
	if (a < AMIL_CPSIM_MAX_NODES && b < AMIL_CPSIM_MAX_NODES)
		s->loss[a][b] = s->loss[b][a] = ppm;
}

void
amil_cpsim_cut_link(struct amil_cpsim *s, uint32_t a, uint32_t b, bool cut)
{
	if (a < AMIL_CPSIM_MAX_NODES && b < AMIL_CPSIM_MAX_NODES)
		s->cut[a][b] = s->cut[b][a] = cut;
}

void
amil_cpsim_partition(struct amil_cpsim *s, const uint32_t *group)
{
	for (uint32_t i = 0; i < s->cfg.n_nodes; i++)
		s->group[i] = group[i];
}

void
amil_cpsim_heal(struct amil_cpsim *s)
{
	memset(s->group, 0, sizeof(s->group));
}

int
amil_cpsim_pause(struct amil_cpsim *s, uint32_t i)
{
	if (i >= s->cfg.n_nodes || s->nodes[i].m == NULL)
		return -EINVAL;
	if (s->nodes[i].paused)
		return -EALREADY;
	s->nodes[i].paused = true;
	return 0;
}

int
amil_cpsim_resume(struct amil_cpsim *s, uint32_t i)
{
	if (i >= s->cfg.n_nodes || s->nodes[i].m == NULL)
		return -EINVAL;
	if (!s->nodes[i].paused)
		return -EALREADY;
	s->nodes[i].paused = false;
	/* Like a resumed process: overdue timers fire at once. */
	refresh(&s->nodes[i]);
	return 0;
}

int
amil_cpsim_crash(struct amil_cpsim *s, uint32_t i)
{
	struct node *n;

	if (i >= s->cfg.n_nodes)
		return -EINVAL;
	n = &s->nodes[i];
	if (n->m == NULL)
		return -EALREADY;
	n->last_incarnation = amil_membership_incarnation(n->m);
	amil_membership_destroy(&n->m);
	n->paused = false;
	n->deadline_ns = UINT64_MAX;
	return 0;
}

int
amil_cpsim_restart(struct amil_cpsim *s, uint32_t i)
{
	struct node *n;

	if (i >= s->cfg.n_nodes)
		return -EINVAL;
	n = &s->nodes[i];
	if (n->m != NULL)
		return -EALREADY;
	n->generation++;
	return start_node(s, n, n->last_incarnation + 1);
}

int
amil_cpsim_leave(struct amil_cpsim *s, uint32_t i)
{
	int rc;

	if (i >= s->cfg.n_nodes || s->nodes[i].m == NULL)
		return -EINVAL;
	rc = amil_membership_leave(s->nodes[i].m, s->now_ns);
	refresh(&s->nodes[i]);
	return rc;
}

struct amil_membership *
amil_cpsim_node(struct amil_cpsim *s, uint32_t i)
{
	return i < s->cfg.n_nodes ? s->nodes[i].m : NULL;
}

bool
amil_cpsim_is_running(const struct amil_cpsim *s, uint32_t i)
{
	return i < s->cfg.n_nodes && up(&s->nodes[i]);
}

int
amil_cpsim_view(const struct amil_cpsim *s, uint32_t observer, uint32_t subject)
{
	struct amil_member_info info;

	if (observer >= s->cfg.n_nodes || s->nodes[observer].m == NULL ||
	    amil_membership_lookup(s->nodes[observer].m, subject + 1, &info) != 0)
		return -1;
	return info.state;
}

bool
amil_cpsim_all_see(const struct amil_cpsim *s, uint64_t set, uint64_t subjects,
		   enum amil_member_state state)
{
	for (uint32_t o = 0; o < s->cfg.n_nodes; o++) {
		if (!(set >> o & 1))
			continue;
		for (uint32_t j = 0; j < s->cfg.n_nodes; j++)
			if ((subjects >> j & 1) && j != o && amil_cpsim_view(s, o, j) != (int)state)
				return false;
	}
	return true;
}

const struct amil_cpsim_event *
amil_cpsim_trace(const struct amil_cpsim *s, size_t *n)
{
	*n = s->trace_n;
	return s->trace;
}

void
amil_cpsim_trace_clear(struct amil_cpsim *s)
{
	s->trace_n = 0;
}

void
amil_cpsim_stats(const struct amil_cpsim *s, struct amil_cpsim_stats *out)
{
	*out = s->st;
}
