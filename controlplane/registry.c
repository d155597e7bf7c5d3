/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The cluster registry in the daemon: the owner of struct amil_registry
 * (registry_impl.h).  Life cycle, sending (pushes to every alive member,
 * AP batches), the replicated map's put/remove, the dispatch of received
 * messages, the timers and stats, and the control requests.  AP
 * anti-entropy and healing are in registry_ae.c, the CP mode's CASPaxos
 * glue in registry_cp.c.  See registry.h for the model.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ownset.h"
#include "registry.h"
#include "registry_impl.h"

#define AE_INTERVAL_NS (500 * 1000000ull)   /* AP anti-entropy round with one peer */

uint64_t
reg_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
reg_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool
amil_registry_is_internal(const uint8_t *name, size_t len)
{
	size_t g = strlen(AMIL_REG_GROUP_PREFIX), c = strlen(AMIL_REG_CAMP_PREFIX);

	return (len >= g && memcmp(name, AMIL_REG_GROUP_PREFIX, g) == 0) ||
	       (len >= c && memcmp(name, AMIL_REG_CAMP_PREFIX, c) == 0);
}

/* ---- sending --------------------------------------------------------------- */

int
amil_registry_send(struct amil_registry *r, uint64_t to, uint8_t kind, const uint8_t *buf,
		   size_t len)
{
	struct amil_member_info mi;
	uint8_t *msg;
	int rc;

	if (amil_membership_lookup(r->cfg.m, to, &mi) != 0 || mi.is_self)
		return -ENOENT;
	msg = malloc(len + 1);
	if (msg == NULL)
		return -ENOMEM;
	msg[0] = kind;
	memcpy(msg + 1, buf, len);
	rc = amil_transport_send(r->cfg.tr, to, (const char *)mi.addr, mi.addr_len, msg, len + 1);
	free(msg);
	return rc;
}

struct push_ctx {
	struct amil_registry *r;
	uint8_t kind;
	const uint8_t *buf;
	size_t len;
};

static int
push_one(void *ctx, const struct amil_member_info *mi)
{
	struct push_ctx *x = ctx;

	if (!mi->is_self && mi->state == AMIL_MEMBER_ALIVE)
		amil_registry_send(x->r, mi->node_id, x->kind, x->buf, x->len);
	return 0;
}

/* A local change: its delta to every alive member at once (a batch of
 * one; inside an open batch, part of it). */
void
reg_push_delta(struct amil_registry *r, const uint8_t *delta, size_t len)
{
	bool open = r->blen > 0;

	r->deltas_tx++;
	if (reg_batch_add(r, delta, len) == 0 && !open)
		reg_batch_flush(r);
}

/* AP batch: gather deltas, one message per peer at the end (a per-name
 * message costs a transport round each; 100k names must not). */
int
reg_batch_add(struct amil_registry *r, const uint8_t *delta, size_t len)
{
	uint64_t seq;

	if (r->blen + 16 + 4 + len > r->bcap) {
		size_t cap = r->bcap ? r->bcap * 2 : 65536;
		uint8_t *p;

		while (cap < r->blen + 16 + 4 + len)
			cap *= 2;
		p = realloc(r->bbuf, cap);
		if (p == NULL)
			return -ENOMEM;
		r->bbuf = p;
		r->bcap = cap;
	}
	/* Numbered in the log first: what a peer misses now is resent from
	 * there when it is back (registry_log.c). */
	seq = reg_log_append(r, delta, len);
	if (r->blen == 0) {
		reg_st64(r->bbuf, r->cfg.writer_id);
		reg_st64(r->bbuf + 8, seq);
		r->blen = 16;
	}
	r->bbuf[r->blen] = (uint8_t)(len >> 24);
	r->bbuf[r->blen + 1] = (uint8_t)(len >> 16);
	r->bbuf[r->blen + 2] = (uint8_t)(len >> 8);
	r->bbuf[r->blen + 3] = (uint8_t)len;
	memcpy(r->bbuf + r->blen + 4, delta, len);
	r->blen += 4 + len;
	if (r->blen >= AMIL_REG_BATCH_MSG_MAX)
		reg_batch_flush(r);    /* the rest in the next message */
	return 0;
}

void
reg_batch_flush(struct amil_registry *r)
{
	struct push_ctx x = {.r = r, .kind = AMIL_REG_MSG_BATCH, .buf = r->bbuf, .len = r->blen};

	if (r->blen == 0)
		return;
	amil_membership_foreach(r->cfg.m, push_one, &x);
	r->batches_tx++;
	r->blen = 0;
}


int
amil_registry_map_put(struct amil_registry *r, const char *key, const char *value)
{
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int rc = amil_awormap_put(r->map, reg_real_ns(), key, strlen(key), r->cfg.node_id, value,
				  strlen(value), &delta, &dlen);

	if (rc != 0)
		return rc;
	reg_push_delta(r, delta, dlen);
	free(delta);
	amil_ownset_put(r->own, key, value);   /* -ENOMEM: only no re-assertion */
	return 0;
}

int
amil_registry_map_remove(struct amil_registry *r, const char *key)
{
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int rc = amil_awormap_remove(r->map, key, strlen(key), &delta, &dlen);

	amil_ownset_del(r->own, key);
	if (rc != 0)
		return rc;
	reg_push_delta(r, delta, dlen);
	free(delta);
	return 0;
}

int
amil_registry_map_foreach(const struct amil_registry *r, amil_awormap_iter_fn fn, void *ctx)
{
	return amil_awormap_foreach(r->map, fn, ctx);
}

/* ---- receiving ---------------------------------------------------------------- */

/* 'M': writer id, first seq, then n x (u32 length, delta). */
static void
receive_batch(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	uint64_t writer, seq;
	size_t off = 17;

	if (len < 17) {
		r->bad++;
		return;
	}
	writer = reg_ld64(buf + 1);
	seq = reg_ld64(buf + 9);
	r->batches_rx++;
	while (off + 4 <= len) {
		size_t n = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 |
			   (size_t)buf[off + 2] << 8 | buf[off + 3];

		off += 4;
		if (n > len - off) {
			r->bad++;
			break;
		}
		if (amil_awormap_join(r->map, reg_real_ns(), buf + off, n, reg_on_conflict, r) != 0) {
			r->bad++;
		} else {
			r->deltas_rx++;
			reg_log_received(r, from, writer, seq);
		}
		seq++;
		off += n;
	}
	if (off != len)
		r->bad++;
	reg_settle_conflicts(r);
}

int
amil_registry_receive(struct amil_registry *r, uint64_t from, const uint8_t *buf, size_t len)
{
	if (len < 1)
		return -ENOTSUP;
	switch (buf[0]) {
	case AMIL_REG_MSG_STATE: {
		int rc = amil_awormap_join(r->map, reg_real_ns(), buf + 1, len - 1, reg_on_conflict,
					   r);

		/* -ESTALE: a context message that came after our store
		 * changed: nothing to do, the next digest round decides. */
		if (rc != 0) {
			if (rc != -ESTALE)
				r->bad++;
			return 0;
		}
		r->states_rx++;
		reg_settle_conflicts(r);
		return 0;
	}
	case AMIL_REG_MSG_DIGEST:
	case AMIL_REG_MSG_DIGEST_REPLY:
		reg_receive_digest(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_BATCH:
		receive_batch(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_ACK:
		reg_log_receive_ack(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_LEAVES:
		reg_receive_leaves(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_UNREGISTER:
		reg_receive_unregister(r, buf, len);
		return 0;
	case AMIL_REG_MSG_LEAF_REQ:
		reg_receive_leaf_req(r, from, buf, len);
		return 0;
	case AMIL_REG_MSG_CAS:
		/* Errors (malformed, foreign) are counted by caspaxos.c. */
		if (r->cas != NULL)
			amil_cas_receive(r->cas, reg_mono_ns(), from, buf, len);
		else
			r->bad++;      /* a CP peer in an AP cluster: a configuration error */
		return 0;
	}
	return -ENOTSUP;
}

/* ---- control requests ---------------------------------------------------------- */

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

struct list_ctx {
	FILE *f;
	size_t n;
};

static int
list_map_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct list_ctx *x = ctx;

	if (amil_registry_is_internal(e->name, e->name_len))
		return 0;          /* group memberships and campaign totals: own commands */
	if (x->n++)
		fputs(", ", x->f);
	entry_json(x->f, e);
	return 0;
}

void
reg_error_json(FILE *f, const char *msg)
{
	fputs("{\"schema\": 1, \"error\": ", f);
	amil_json_str(f, msg);
	fputs("}", f);
}

/* Names: 1..255 bytes, no blanks (the protocol splits on them), not a
 * reserved prefix. */
static const char *
name_problem(const char *name)
{
	if (name[0] == '\0')
		return "a name is needed";
	if (strlen(name) > AMIL_AWORMAP_NAME_MAX)
		return "the name is longer than 255 bytes";
	if (amil_registry_is_internal((const uint8_t *)name, strlen(name)))
		return "names starting with 'group:' or 'camp:' are reserved";
	return NULL;
}

/* AP: register one name here; refuse one another appliance owns (a
 * registration made concurrently across a partition is the conflict the
 * map resolves on heal). */
static int
ap_register(struct amil_registry *r, const char *name, const char *value, bool batch,
	    uint64_t *owner)
{
	struct amil_awormap_entry e;
	uint8_t *delta = NULL;
	size_t dlen = 0;
	int rc;

	if (amil_awormap_lookup(r->map, name, strlen(name), &e) == 0 && e.owner != r->cfg.node_id) {
		*owner = e.owner;
		return -EEXIST;
	}
	rc = amil_awormap_put(r->map, reg_real_ns(), name, strlen(name), r->cfg.node_id, value,
			      strlen(value), &delta, &dlen);
	if (rc != 0)
		return rc;
	if (batch) {
		rc = reg_batch_add(r, delta, dlen);
	} else {
		reg_push_delta(r, delta, dlen);
	}
	free(delta);
	if (rc == 0)
		amil_ownset_put(r->own, name, value);
	return rc;
}

/* One line of a batch: "NAME VALUE".  Returns NULL and fills @name and
 * @value, or why the line is refused. */
const char *
reg_batch_line(const char *p, size_t ll, char *name, char *value)
{
	char line[1400];
	const char *why;

	name[0] = value[0] = '\0';
	if (ll >= sizeof(line))
		return "a line longer than 1399 bytes";
	memcpy(line, p, ll);
	line[ll] = '\0';
	sscanf(line, "%256s %1025s", name, value);
	why = name_problem(name);
	if (why == NULL && strlen(value) > AMIL_AWORMAP_VALUE_MAX)
		why = "the value is longer than 1024 bytes";
	return why;
}

void
reg_batch_refuse(struct amil_registry *r, const char *name, const char *why)
{
	r->batch_refused++;
	if (r->batch_first_error[0] == '\0')
		snprintf(r->batch_first_error, sizeof(r->batch_first_error), "%.32s: %s", name, why);
}

/*
 * AP unregister.  Our own name: removed, pushed.  Another appliance's:
 * removed here and the owner told ('U'), so that it forgets the name too
 * and does not put it back when it re-asserts its names after a heal; an
 * owner that is not alive cannot be told and the name is refused (it goes
 * by the grace rule if the owner stays dead).  Returns 1 when it wrote
 * the reply itself.
 */
static int
ap_unregister(struct amil_registry *r, const char *name, FILE *f)
{
	struct amil_awormap_entry e;
	struct amil_member_info mi;
	uint64_t owner;

	if (amil_awormap_lookup(r->map, name, strlen(name), &e) != 0 || e.owner == r->cfg.node_id)
		return amil_registry_map_remove(r, name);
	owner = e.owner;
	if (amil_membership_lookup(r->cfg.m, owner, &mi) != 0 || mi.state != AMIL_MEMBER_ALIVE) {
		fprintf(f,
			"{\"schema\": 1, \"error\": \"registered by node %" PRIu64 ", which is not "
			"reachable now: its names go when it has been dead for the grace\"}",
			owner);
		return 1;
	}
	amil_registry_send(r, owner, AMIL_REG_MSG_UNREGISTER, (const uint8_t *)name, strlen(name));
	amil_registry_map_remove(r, name);
	fprintf(f, "{\"schema\": 1, \"ok\": true, \"owner_told\": %" PRIu64 ", \"names\": %zu}",
		owner, amil_awormap_count(r->map));
	return 1;
}

/* "registry-register-batch\nNAME VALUE\n...": many names in one request.
 * AP: applied at once, one message per peer.  CP: one round per name, as
 * many in flight as caspaxos.c allows; the reply waits for the last. */
static int
ctl_batch(struct amil_registry *r, const char *req, FILE *f)
{
	const char *p = strchr(req, '\n');

	r->batch_ok = r->batch_refused = r->batch_timeout = 0;
	r->batch_first_error[0] = '\0';
	r->pending_ops = 0;
	if (r->cas != NULL)
		return reg_cp_batch(r, p != NULL ? p + 1 : "", f);
	while (p != NULL && *p != '\0') {
		char name[AMIL_AWORMAP_NAME_MAX + 2], value[AMIL_AWORMAP_VALUE_MAX + 2];
		const char *line = p + 1, *end = strchr(line, '\n');
		size_t ll = end != NULL ? (size_t)(end - line) : strlen(line);
		const char *why;
		uint64_t owner = 0;
		int rc;

		p = end;
		if (ll == 0)
			continue;
		why = reg_batch_line(line, ll, name, value);
		if (why != NULL) {
			reg_batch_refuse(r, name, why);
			continue;
		}
		rc = ap_register(r, name, value, true, &owner);
		if (rc == -EEXIST) {
			char msg[64];

			snprintf(msg, sizeof(msg), "registered by node %" PRIu64, owner);
			reg_batch_refuse(r, name, msg);
		} else if (rc != 0) {
			reg_batch_refuse(r, name, strerror(-rc));
		} else {
			r->batch_ok++;
		}
	}
	reg_batch_flush(r);
	fprintf(f,
		"{\"schema\": 1, \"ok\": %s, \"registered\": %" PRIu64 ", \"refused\": %" PRIu64
		", \"no_majority\": 0",
		r->batch_refused == 0 ? "true" : "false", r->batch_ok, r->batch_refused);
	if (r->batch_first_error[0] != '\0') {
		fputs(", \"first_error\": ", f);
		amil_json_str(f, r->batch_first_error);
	}
	fprintf(f, ", \"names\": %zu}", amil_awormap_count(r->map));
	return 0;
}

int
amil_registry_ctl(struct amil_registry *r, const char *cmd, const char *req, FILE *f)
{
	char name[AMIL_AWORMAP_NAME_MAX + 2] = "", value[AMIL_AWORMAP_VALUE_MAX + 2] = "";
	const char *why;
	uint64_t owner = 0;
	int rc;

	if (strncmp(cmd, "registry-", 9) != 0)
		return -ENOTSUP;
	if (strcmp(cmd, "registry-register-batch") == 0)
		return ctl_batch(r, req, f);
	sscanf(req, "%*s %256s %1025s", name, value);
	if (strcmp(cmd, "registry-list") == 0) {
		struct list_ctx x = {.f = f};

		fprintf(f, "{\"schema\": 1, \"mode\": \"%s\", \"names\": [",
			r->cas != NULL ? "cp" : "ap");
		if (r->cas != NULL)
			x.n = reg_cp_list(r, f);
		else
			amil_awormap_foreach(r->map, list_map_one, &x);
		fprintf(f, "], \"count\": %zu}", x.n);
		return 0;
	}
	if (strcmp(cmd, "registry-get") != 0 && strcmp(cmd, "registry-register") != 0 &&
	    strcmp(cmd, "registry-unregister") != 0) {
		reg_error_json(f, "unknown registry command (registry-list, registry-get, "
			       "registry-register, registry-unregister, registry-register-batch)");
		return 0;
	}
	why = name_problem(name);
	if (why != NULL) {
		reg_error_json(f, why);
		return 0;
	}
	if (strlen(value) > AMIL_AWORMAP_VALUE_MAX) {
		reg_error_json(f, "the value is longer than 1024 bytes");
		return 0;
	}
	if (strcmp(cmd, "registry-get") == 0) {
		struct amil_awormap_entry e;

		if (r->cas != NULL)
			return reg_cp_get(r, name, f);
		if (amil_awormap_lookup(r->map, name, strlen(name), &e) != 0) {
			reg_error_json(f, "no such name");
			return 0;
		}
		fputs("{\"schema\": 1, \"entry\": ", f);
		entry_json(f, &e);
		fputs("}", f);
		return 0;
	}
	if (r->cas != NULL)
		return reg_cp_change(r, strcmp(cmd, "registry-register") == 0, name, value, f);
	if (strcmp(cmd, "registry-register") == 0) {
		rc = ap_register(r, name, value, false, &owner);
		if (rc == -EEXIST) {
			fprintf(f, "{\"schema\": 1, \"error\": \"registered by node %" PRIu64 "\"}",
				owner);
			return 0;
		}
	} else {
		rc = ap_unregister(r, name, f);
		if (rc == 1)
			return 0;          /* answered */
	}
	if (rc != 0) {
		reg_error_json(f, rc == -ENOENT ? "no such name" : strerror(-rc));
		return 0;
	}
	/* Read-your-writes here; the delta went to every alive member. */
	fprintf(f, "{\"schema\": 1, \"ok\": true, \"names\": %zu}", amil_awormap_count(r->map));
	return 0;
}

bool
amil_registry_pending(const struct amil_registry *r)
{
	return r->pending;
}

/* ---- life cycle ------------------------------------------------------------------ */

struct amil_registry *
amil_registry_new(const struct amil_registry_config *cfg, uint64_t now_mono_ns)
{
	struct amil_registry *r;
	int err = ENOMEM;

	if (cfg->node_id == 0 || cfg->writer_id == 0 ||
	    (cfg->mode == AMIL_REGISTRY_CP && (cfg->members == NULL || cfg->n_members == 0))) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto fail;
	r->cfg = *cfg;
	/* A received HLC may pull the local clock at most 5 s ahead. */
	r->map = amil_awormap_new(cfg->writer_id, 5ull * 1000000000ull);
	if (r->map == NULL)
		goto fail_reg;
	r->log_base = 1;
	r->own = amil_ownset_new();
	if (r->own == NULL)
		goto fail_map;
	if (cfg->mode == AMIL_REGISTRY_CP) {
		struct amil_cas_config cc = {
			.self = cfg->node_id,
			.members = cfg->members,
			.n_members = cfg->n_members,
			.log_path = cfg->cp_log,
			.send = reg_cas_send,
			.alive = reg_cas_alive,
			.done = reg_cas_done,
			.ctx = r,
		};

		r->members = malloc(cfg->n_members * sizeof(uint64_t));
		if (r->members == NULL)
			goto fail_map;
		memcpy(r->members, cfg->members, cfg->n_members * sizeof(uint64_t));
		r->cfg.members = r->members;
		r->cas = amil_cas_new(&cc, now_mono_ns);
		if (r->cas == NULL) {
			err = errno;
			goto fail_members;
		}
	}
	r->cfg.cp_log = NULL;          /* not kept: the caller's string */
	return r;

fail_members:
	free(r->members);
fail_map:
	amil_ownset_destroy(r->own);
	amil_awormap_destroy(&r->map);
fail_reg:
	free(r);
fail:
	errno = err;
	return NULL;
}

void
amil_registry_destroy(struct amil_registry *r)
{
	if (r == NULL)
		return;
	amil_cas_destroy(r->cas);
	amil_awormap_destroy(&r->map);
	amil_ownset_destroy(r->own);
	free(r->members);
	free(r->bbuf);
	reg_log_free(r);
	free(r->batch_req);
	free(r);
}

enum amil_registry_mode
amil_registry_mode(const struct amil_registry *r)
{
	return r->cas != NULL ? AMIL_REGISTRY_CP : AMIL_REGISTRY_AP;
}

unsigned
amil_registry_cluster_size(const struct amil_registry *r)
{
	return (unsigned)r->cfg.n_members;
}

unsigned
amil_registry_quorum(const struct amil_registry *r)
{
	return (unsigned)r->cfg.n_members / 2 + 1;
}

void
amil_registry_tick(struct amil_registry *r, uint64_t now_mono_ns)
{
	if (r->cas != NULL)
		reg_cp_tick(r, now_mono_ns);
	reg_urgent_rounds(r, now_mono_ns);
	reg_log_ack_due(r, now_mono_ns);
	if (now_mono_ns < r->ae_next_mono)
		return;
	reg_log_tick(r, now_mono_ns);
	reg_anti_entropy(r);
	reg_reap(r, now_mono_ns);
	reg_reassert(r);
	r->ae_next_mono = now_mono_ns + AE_INTERVAL_NS;
}

int
amil_registry_flush(struct amil_registry *r)
{
	return r->cas != NULL ? amil_cas_flush(r->cas) : 0;
}

void
amil_registry_stats_get(const struct amil_registry *r, struct amil_registry_stats *out)
{
	struct amil_awormap_stats ms;
	struct amil_awormap_digest dg;

	memset(out, 0, sizeof(*out));
	amil_awormap_stats_get(r->map, &ms);
	amil_awormap_digest_get(r->map, &dg);
	out->map_root = dg.root;
	if (r->cas != NULL) {
		struct amil_cas_stats cs;

		amil_cas_stats_get(r->cas, &cs);
		out->names = amil_cas_count(r->cas);
		out->cp_ops_ok = cs.ops_ok;
		out->cp_ops_refused = cs.ops_refused;
		out->cp_ops_timeout = cs.ops_timeout;
		out->cp_nacks = cs.nacks;
		out->cp_retries = cs.retries;
		out->cp_bad = cs.msgs_bad + cs.msgs_foreign;
	} else {
		out->names = ms.names;     /* groups and totals included */
	}
	out->map_entries = ms.entries;
	out->map_memory_bytes = ms.memory_bytes;
	out->deltas_tx = r->deltas_tx;
	out->deltas_rx = r->deltas_rx;
	out->states_tx = r->states_tx;
	out->states_rx = r->states_rx;
	out->digests_tx = r->digests_tx;
	out->batches_tx = r->batches_tx;
	out->batches_rx = r->batches_rx;
	out->bad = r->bad;
	out->conflicts = r->conflicts;
	out->reaped = r->reaped;
	out->reasserted = r->reasserted;
	out->resent_deltas = r->resent_deltas;
	out->resent_bytes = r->resent_bytes;
	out->log_bytes = r->log_bytes + r->log_cap * sizeof(*r->log);
	out->log_deltas = r->log_n;
}
