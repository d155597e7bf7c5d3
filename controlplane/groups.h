/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Process groups as Erlang's :pg has them, for appliances: a node joins
 * and leaves named groups (regions such as ID-JKT); memberships are
 * entries "group:<group>:<node>" of the replicated map (registry.h), each
 * written by its node only, so they need no conflict rule; a member that
 * dies leaves its groups when the registry reaps a dead owner's entries.
 *
 * broadcast GROUP MESSAGE: one CURVE message to every member's control
 * plane (this node's own delivery is local), each receiver records a
 * "broadcast" event and acknowledges; the operator's reply lists who
 * acknowledged and who did not within 1 s.
 *
 * Thread-safety: one thread (the daemon's loop).
 */
#ifndef AMIL_GROUPS_H
#define AMIL_GROUPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "events.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_GROUPS_MSG_BROADCAST     'B'   /* id u64, group NUL, message */
#define AMIL_GROUPS_MSG_BROADCAST_ACK 'K'   /* id u64 */
#define AMIL_GROUPS_MEMBERS_MAX 64           /* members a broadcast reaches */

struct amil_groups;

/*
 * New groups module over @reg (borrowed; the memberships live in its map).
 * Held broadcast replies go out through @reply.  NULL + errno ENOMEM.
 */
struct amil_groups *amil_groups_new(struct amil_registry *reg, struct amil_events *ev,
				    uint64_t node_id, amil_registry_reply_fn reply,
				    void *reply_ctx);

/* Free @g (NULL: nothing). */
void amil_groups_destroy(struct amil_groups *g);

/*
 * groups [NAME], group-join NAME, group-leave NAME, broadcast GROUP MESSAGE.
 * Writes the JSON reply to @f and returns 0; 1 when the reply is held (a
 * broadcast waits for its acknowledgements; sent through the reply
 * function); -ENOTSUP when @cmd is not one of these.
 */
int amil_groups_ctl(struct amil_groups *g, const char *cmd, const char *req, FILE *f);

/* A 'B' or 'K' message from @from: 0, or -ENOTSUP for other kinds. */
int amil_groups_receive(struct amil_groups *g, uint64_t from, const uint8_t *buf, size_t len);

/* Send a held broadcast reply once every member answered or at the
 * timeout.  Call every loop turn. */
void amil_groups_tick(struct amil_groups *g, uint64_t now_mono_ns);

/* True while a broadcast reply is held. */
bool amil_groups_pending(const struct amil_groups *g);

/* Broadcasts received from peers (counter). */
uint64_t amil_groups_received(const struct amil_groups *g);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_GROUPS_H */
