/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The registry's CP mode (see registry.h): the glue over caspaxos.h.  Its
 * callbacks (send, alive, done), the control requests that wait for their
 * rounds (held replies, sent through cfg.reply, "degraded" when no
 * majority answered), the batch pump that keeps a bounded number of
 * rounds in flight, and the CP paths of registry-register, -unregister,
 * -get and -list.  The state is struct amil_registry (registry_impl.h),
 * owned by registry.c, which parses the requests.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "caspaxos.h"
#include "registry.h"
#include "registry_impl.h"

/* CP batch: rounds in flight at once.  Each round is ~10 messages and a
 * group-committed fdatasync per loop turn; thousands at once would outrun
 * the 25 ms attempt window and retry in a storm. */
#define BATCH_INFLIGHT 128

/* ---- CP rounds ----------------------------------------------------------------- */

void
reg_cas_send(void *ctx, uint64_t to, const uint8_t *buf, size_t len)
{
	struct amil_registry *r = ctx;
	struct amil_member_info mi;

	/* caspaxos.c's messages already start with 'X'. */
	if (amil_membership_lookup(r->cfg.m, to, &mi) != 0 || mi.is_self)
		return;
	amil_transport_send(r->cfg.tr, to, (const char *)mi.addr, mi.addr_len, buf, len);
}

bool
reg_cas_alive(void *ctx, uint64_t node)
{
	struct amil_registry *r = ctx;
	struct amil_member_info mi;

	return amil_membership_lookup(r->cfg.m, node, &mi) == 0 && mi.state == AMIL_MEMBER_ALIVE;
}

static void
degraded_msg(const struct amil_registry *r, char *buf, size_t len)
{
	snprintf(buf, len,
		 "no majority of the configured cluster acknowledged (%u of %u needed): "
		 "this appliance is degraded",
		 amil_registry_quorum(r), amil_registry_cluster_size(r));
}

static void
cas_state_json(FILE *f, const char *name, size_t len, const struct amil_cas_state *st)
{
	char n[AMIL_CAS_NAME_MAX + 1], v[AMIL_CAS_VALUE_MAX + 1];

	memcpy(n, name, len);
	n[len] = '\0';
	memcpy(v, st->value, st->value_len);
	v[st->value_len] = '\0';
	fputs("{\"name\": ", f);
	amil_json_str(f, n);
	fprintf(f, ", \"owner\": %" PRIu64 ", \"value\": ", st->owner);
	amil_json_str(f, v);
	fprintf(f, ", \"version\": %" PRIu64 "}", st->version);
}

static void
send_held(struct amil_registry *r)
{
	char *out = NULL, msg[200];
	size_t olen = 0;
	FILE *f = open_memstream(&out, &olen);

	if (f == NULL)
		return;
	if (r->pending_batch) {
		fprintf(f,
			"{\"schema\": 1, \"ok\": %s, \"registered\": %" PRIu64
			", \"refused\": %" PRIu64 ", \"no_majority\": %" PRIu64,
			r->batch_refused + r->batch_timeout == 0 ? "true" : "false", r->batch_ok,
			r->batch_refused, r->batch_timeout);
		if (r->batch_first_error[0] != '\0') {
			fputs(", \"first_error\": ", f);
			amil_json_str(f, r->batch_first_error);
		}
		fprintf(f, ", \"names\": %zu}", amil_cas_count(r->cas));
	} else if (r->single_rc == 0) {
		fputs("{\"schema\": 1, \"ok\": true, \"entry\": ", f);
		if (r->single_st.present)
			cas_state_json(f, r->single_name, strlen(r->single_name), &r->single_st);
		else
			fputs("null", f);
		fprintf(f, ", \"names\": %zu}", amil_cas_count(r->cas));
	} else {
		switch (r->single_rc) {
		case -EEXIST:
		case -EPERM:
			snprintf(msg, sizeof(msg), "registered by node %" PRIu64, r->single_st.owner);
			break;
		case -ENOENT:
			snprintf(msg, sizeof(msg), "no such name");
			break;
		case -ETIMEDOUT:
			degraded_msg(r, msg, sizeof(msg));
			break;
		default:
			snprintf(msg, sizeof(msg), "%s", strerror(-r->single_rc));
		}
		fputs("{\"schema\": 1, \"error\": ", f);
		amil_json_str(f, msg);
		if (r->single_rc == -ETIMEDOUT)
			fputs(", \"degraded\": true", f);
		fputs("}", f);
	}
	if (fclose(f) == 0 && r->cfg.reply != NULL)
		r->cfg.reply(r->cfg.reply_ctx, out, olen);
	free(out);
	r->pending = false;
}

void
reg_cas_done(void *ctx, uint64_t op_id, int result, const char *name, size_t name_len,
	     const struct amil_cas_state *st)
{
	struct amil_registry *r = ctx;

	(void)name;
	(void)name_len;
	for (unsigned i = 0; i < r->nreap_ops; i++)
		if (r->reap_ops[i] == op_id) {
			if (result == 0)
				r->reaped++;
			r->reap_ops[i] = r->reap_ops[--r->nreap_ops];
			return;
		}
	if (!r->pending || r->pending_ops == 0)
		return;
	if (r->pending_batch) {
		if (result == 0) {
			r->batch_ok++;
		} else {
			if (result == -ETIMEDOUT)
				r->batch_timeout++;
			else
				r->batch_refused++;
			if (r->batch_first_error[0] == '\0') {
				char msg[120];

				if (result == -ETIMEDOUT)
					degraded_msg(r, msg, sizeof(msg));
				else
					snprintf(msg, sizeof(msg), "registered by node %" PRIu64,
						 st != NULL ? st->owner : 0);
				snprintf(r->batch_first_error, sizeof(r->batch_first_error),
					 "%.*s: %s", (int)(name_len > 32 ? 32 : name_len), name, msg);
			}
		}
	} else {
		r->single_rc = result;
		if (st != NULL)
			r->single_st = *st;
		else
			memset(&r->single_st, 0, sizeof(r->single_st));
	}
	if (--r->pending_ops == 0 && r->batch_cursor == NULL)
		send_held(r);
}

/* ---- control requests ---------------------------------------------------------- */

struct list_ctx {
	FILE *f;
	size_t n;
};

static int
list_cas_one(void *ctx, const char *name, size_t len, const struct amil_cas_state *st)
{
	struct list_ctx *x = ctx;

	if (x->n++)
		fputs(", ", x->f);
	cas_state_json(x->f, name, len, st);
	return 0;
}

size_t
reg_cp_list(struct amil_registry *r, FILE *f)
{
	struct list_ctx x = {.f = f};

	amil_cas_foreach(r->cas, list_cas_one, &x);
	return x.n;
}

int
reg_cp_get(struct amil_registry *r, const char *name, FILE *f)
{
	struct amil_cas_state st;

	if (amil_cas_lookup(r->cas, name, strlen(name), &st) != 0) {
		reg_error_json(f, "no such name");
		return 0;
	}
	fputs("{\"schema\": 1, \"entry\": ", f);
	cas_state_json(f, name, strlen(name), &st);
	fputs("}", f);
	return 0;
}

int
reg_cp_change(struct amil_registry *r, bool reg, const char *name, const char *value, FILE *f)
{
	struct amil_cas_state st;
	uint64_t owner, op;
	int rc;

	/* Unregister from any appliance, as in AP mode: a compare-and-
	 * remove of the owner this appliance knows (refused if the name
	 * changed hands meanwhile). */
	owner = r->cfg.node_id;
	if (!reg && amil_cas_lookup(r->cas, name, strlen(name), &st) == 0)
		owner = st.owner;
	rc = amil_cas_start(r->cas, reg_mono_ns(), reg ? AMIL_CAS_REGISTER : AMIL_CAS_UNREGISTER,
			    name, strlen(name), owner, value, strlen(value), &op);
	if (rc != 0) {
		reg_error_json(f, rc == -EBUSY ? "too many registrations in flight, try again"
					       : strerror(-rc));
		return 0;
	}
	snprintf(r->single_name, sizeof(r->single_name), "%.255s", name);
	r->pending = true;
	r->pending_batch = false;
	r->pending_ops = 1;
	return 1;
}

/* CP: start rounds for the batch's next lines until caspaxos.c's in-flight
 * bound; called again from the tick as rounds finish.  True when every
 * line has been started. */
static bool
batch_pump(struct amil_registry *r)
{
	while (r->batch_cursor != NULL && *r->batch_cursor != '\0') {
		char name[AMIL_AWORMAP_NAME_MAX + 2], value[AMIL_AWORMAP_VALUE_MAX + 2];
		const char *p = r->batch_cursor, *end = strchr(p, '\n');
		size_t ll = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *why;
		uint64_t op;
		int rc;

		if (r->pending_ops >= BATCH_INFLIGHT)
			return false;          /* more as rounds finish */
		if (ll > 0) {
			why = reg_batch_line(p, ll, name, value);
			if (why != NULL) {
				reg_batch_refuse(r, name, why);
			} else {
				rc = amil_cas_start(r->cas, reg_mono_ns(), AMIL_CAS_REGISTER, name,
						    strlen(name), r->cfg.node_id, value,
						    strlen(value), &op);
				if (rc == -EBUSY)
					return false;      /* more when rounds finish */
				if (rc != 0)
					reg_batch_refuse(r, name, strerror(-rc));
				else
					r->pending_ops++;
			}
		}
		r->batch_cursor = end != NULL ? end + 1 : p + ll;
	}
	free(r->batch_req);
	r->batch_req = NULL;
	r->batch_cursor = NULL;
	return true;
}

int
reg_cp_batch(struct amil_registry *r, const char *lines, FILE *f)
{
	r->batch_req = strdup(lines);
	if (r->batch_req == NULL) {
		reg_error_json(f, strerror(ENOMEM));
		return 0;
	}
	r->batch_cursor = r->batch_req;
	r->pending = true;
	r->pending_batch = true;
	if (batch_pump(r) && r->pending_ops == 0)
		send_held(r);      /* nothing started: answer now */
	return 1;
}

void
reg_cp_tick(struct amil_registry *r, uint64_t now_mono)
{
	amil_cas_tick(r->cas, now_mono);
	if (r->pending && r->batch_cursor != NULL && batch_pump(r) && r->pending_ops == 0)
		send_held(r);
}

bool
amil_registry_busy(const struct amil_registry *r)
{
	struct amil_cas_stats cs;

	if (r->cas == NULL)
		return false;
	amil_cas_stats_get(r->cas, &cs);
	return r->pending || r->nreap_ops > 0 ||
	       cs.ops_started > cs.ops_ok + cs.ops_refused + cs.ops_timeout;
}
