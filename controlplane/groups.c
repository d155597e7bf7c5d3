/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Groups (:pg) and broadcast over the registry's map and connections.
 * See groups.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "groups.h"

#define BC_TIMEOUT_NS (1000 * 1000000ull)

struct amil_groups {
	struct amil_registry *reg;
	struct amil_events *ev;
	uint64_t node_id;
	amil_registry_reply_fn reply;
	void *reply_ctx;
	/* A broadcast waiting for its acknowledgements; the ctl reply is held
	 * (REP: one request at a time) until all answered or the timeout. */
	bool pending;
	uint64_t id, deadline_mono;
	char group[128];
	uint64_t to[AMIL_GROUPS_MEMBERS_MAX];
	bool acked[AMIL_GROUPS_MEMBERS_MAX];
	unsigned n;
	uint64_t received;
};

static uint64_t
clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct group_ctx {
	FILE *f;
	const char *only;              /* one group, or NULL */
	int n;
	uint64_t members[AMIL_GROUPS_MEMBERS_MAX];   /* collect mode (broadcast) */
	unsigned nm;
	bool collect;
};

/* Entries "group:<name>:<node>": members of <name>. */
static int
group_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct group_ctx *x = ctx;
	char name[AMIL_AWORMAP_NAME_MAX + 1], *g, *colon;

	if (e->name_len <= strlen(AMIL_REG_GROUP_PREFIX) ||
	    memcmp(e->name, AMIL_REG_GROUP_PREFIX, strlen(AMIL_REG_GROUP_PREFIX)) != 0)
		return 0;
	memcpy(name, e->name, e->name_len);
	name[e->name_len] = '\0';
	g = name + strlen(AMIL_REG_GROUP_PREFIX);
	colon = strrchr(g, ':');
	if (colon == NULL)
		return 0;
	*colon = '\0';
	if (x->only != NULL && strcmp(g, x->only) != 0)
		return 0;
	if (x->collect) {
		if (x->nm < AMIL_GROUPS_MEMBERS_MAX)
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

/* Start a broadcast: one CURVE message to every member of the group (this
 * node included, delivered locally); the reply waits for the acks. */
static bool
broadcast_start(struct amil_groups *g, const char *req, FILE *f)
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
	amil_registry_map_foreach(g->reg, group_one, &x);
	g->id = randombytes_random() | ((uint64_t)randombytes_random() << 32);
	memcpy(buf, &g->id, 8);
	len = 8 + (size_t)snprintf((char *)buf + 8, sizeof(buf) - 8, "%s", group) + 1;
	memcpy(buf + len, msg, strlen(msg));
	len += strlen(msg);
	snprintf(g->group, sizeof(g->group), "%s", group);
	g->n = x.nm;
	for (unsigned i = 0; i < x.nm; i++) {
		g->to[i] = x.members[i];
		g->acked[i] = false;
		if (x.members[i] == g->node_id) {
			g->acked[i] = true;      /* delivered here */
			g->received++;
			continue;
		}
		amil_registry_send(g->reg, x.members[i], AMIL_GROUPS_MSG_BROADCAST, buf, len);
	}
	g->pending = true;
	g->deadline_mono = clock_ns(CLOCK_MONOTONIC) + BC_TIMEOUT_NS;
	return true;
}

/* All acked, or the timeout: send the held reply. */
static void
broadcast_check(struct amil_groups *g, uint64_t now_mono)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	bool all = true;
	int n = 0;

	if (!g->pending)
		return;
	for (unsigned i = 0; i < g->n; i++)
		all &= g->acked[i];
	if (!all && now_mono < g->deadline_mono)
		return;
	f = open_memstream(&out, &len);
	if (f == NULL)
		return;
	fputs("{\"schema\": 1, \"group\": ", f);
	amil_json_str(f, g->group);
	fputs(", \"delivered\": [", f);
	for (unsigned i = 0; i < g->n; i++)
		if (g->acked[i])
			fprintf(f, "%s%" PRIu64, n++ ? ", " : "", g->to[i]);
	fputs("], \"missing\": [", f);
	n = 0;
	for (unsigned i = 0; i < g->n; i++)
		if (!g->acked[i])
			fprintf(f, "%s%" PRIu64, n++ ? ", " : "", g->to[i]);
	fputs("]}", f);
	if (fclose(f) == 0)
		g->reply(g->reply_ctx, out, len);
	free(out);
	g->pending = false;
}

int
amil_groups_ctl(struct amil_groups *g, const char *cmd, const char *req, FILE *f)
{
	char group[128] = "", key[AMIL_AWORMAP_NAME_MAX + 1];
	int rc;

	if (strcmp(cmd, "broadcast") == 0) {
		if (!broadcast_start(g, req, f))
			return 0;
		broadcast_check(g, clock_ns(CLOCK_MONOTONIC));
		return 1;              /* sent by broadcast_check(), now or later */
	}
	if (strcmp(cmd, "groups") != 0 && strcmp(cmd, "group-join") != 0 &&
	    strcmp(cmd, "group-leave") != 0)
		return -ENOTSUP;
	sscanf(req, "%*s %127s", group);
	if (strcmp(cmd, "groups") == 0) {
		struct group_ctx x = {.f = f, .only = group[0] ? group : NULL};

		fputs("{\"schema\": 1, \"memberships\": [", f);
		amil_registry_map_foreach(g->reg, group_one, &x);
		fputs("]}", f);
		return 0;
	}
	if (group[0] == '\0' || strchr(group, ':') != NULL) {
		fputs("{\"schema\": 1, \"error\": \"a group name (no ':') is needed\"}", f);
		return 0;
	}
	snprintf(key, sizeof(key), AMIL_REG_GROUP_PREFIX "%s:%" PRIu64, group, g->node_id);
	if (strcmp(cmd, "group-join") == 0)
		rc = amil_registry_map_put(g->reg, key, "");
	else
		rc = amil_registry_map_remove(g->reg, key);
	if (rc != 0) {
		fputs("{\"schema\": 1, \"error\": ", f);
		amil_json_str(f, rc == -ENOENT ? "not a member" : strerror(-rc));
		fputs("}", f);
		return 0;
	}
	fputs("{\"schema\": 1, \"ok\": true}", f);
	return 0;
}

int
amil_groups_receive(struct amil_groups *g, uint64_t from, const uint8_t *buf, size_t len)
{
	struct amil_event ev = {.type = AMIL_EV_BROADCAST, .node_id = from, .from_id = from,
				.at_ns = clock_ns(CLOCK_REALTIME)};
	const char *group;
	size_t glen;
	uint8_t ack[8];

	if (len < 1 || (buf[0] != AMIL_GROUPS_MSG_BROADCAST && buf[0] != AMIL_GROUPS_MSG_BROADCAST_ACK))
		return -ENOTSUP;
	if (buf[0] == AMIL_GROUPS_MSG_BROADCAST_ACK) {
		uint64_t id;

		if (len != 9)
			return 0;
		memcpy(&id, buf + 1, 8);
		for (unsigned i = 0; g->pending && id == g->id && i < g->n; i++)
			if (g->to[i] == from)
				g->acked[i] = true;
		broadcast_check(g, clock_ns(CLOCK_MONOTONIC));
		return 0;
	}
	if (len < 1 + 8 + 2)
		return 0;
	group = (const char *)buf + 9;
	glen = strnlen(group, len - 9);
	if (glen == len - 9)
		return 0;                      /* no NUL: malformed */
	/* The event carries "<group>: <message>" (bounded). */
	snprintf(ev.name, sizeof(ev.name), "%s: %.*s", group, (int)(len - 9 - glen - 1),
		 group + glen + 1);
	amil_events_add(g->ev, &ev);
	g->received++;
	memcpy(ack, buf + 1, 8);
	amil_registry_send(g->reg, from, AMIL_GROUPS_MSG_BROADCAST_ACK, ack, 8);
	return 0;
}

void
amil_groups_tick(struct amil_groups *g, uint64_t now_mono_ns)
{
	broadcast_check(g, now_mono_ns);
}

bool
amil_groups_pending(const struct amil_groups *g)
{
	return g->pending;
}

uint64_t
amil_groups_received(const struct amil_groups *g)
{
	return g->received;
}

struct amil_groups *
amil_groups_new(struct amil_registry *reg, struct amil_events *ev, uint64_t node_id,
		amil_registry_reply_fn reply, void *reply_ctx)
{
	struct amil_groups *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->reg = reg;
	g->ev = ev;
	g->node_id = node_id;
	g->reply = reply;
	g->reply_ctx = reply_ctx;
	return g;
}

void
amil_groups_destroy(struct amil_groups *g)
{
	free(g);
}
