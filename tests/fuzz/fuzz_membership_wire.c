/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the membership wire codec (controlplane/
 * membership_wire.c) and the receive path of the membership core.
 *
 * Input layout: byte 0 picks the cluster id the receiver expects (so the
 * fuzzer can reach both the match and the mismatch), the rest is the
 * message.  Besides "does not crash", it aborts (a reported crash) when a
 * property that must hold for every input does not:
 *   - decode returns only 0, -EBADMSG, -EACCES or -EPROTONOSUPPORT;
 *   - a message decode accepts re-encodes to exactly the same bytes (one
 *     encoding per message, nothing ignored);
 *   - an accepted message's fields are within their documented bounds;
 *   - feeding the bytes to a membership instance (which applies the
 *     updates and may answer) returns the same verdict class as decode and
 *     everything it sends decodes again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"
#include "membership_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

#define CLUSTER 0x4143000000000001ull

static void
check_sent(void *ctx, uint64_t to_id, const uint8_t *addr, size_t addr_len,
	   const uint8_t *buf, size_t len)
{
	struct amil_mwire_msg m;

	(void)ctx;
	(void)addr;
	(void)addr_len;
	REQUIRE(to_id != 0);
	REQUIRE(len <= AMIL_MWIRE_MSG_MAX);
	REQUIRE(amil_mwire_decode(buf, len, CLUSTER, &m) == 0);
}

static struct amil_membership *
instance(void)
{
	static struct amil_membership *m;
	struct amil_membership_config c;

	/* One instance for the whole run: state accumulates across inputs,
	 * which explores more of the state machine than a fresh one. */
	if (m)
		return m;
	amil_membership_config_init(&c, AMIL_MEMBERSHIP_LAN);
	c.cluster_id = CLUSTER;
	c.self_id = 1;
	c.name = "fuzz";
	c.max_members = 16;
	c.seed = 1;
	c.send = check_sent;
	m = amil_membership_new(&c, 0);
	REQUIRE(m != NULL);
	return m;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t now;
	struct amil_mwire_msg msg;
	uint8_t re[AMIL_MWIRE_MSG_MAX];
	uint64_t cluster;
	const uint8_t *buf;
	size_t len;
	int rc, rc2, n;

	if (size == 0)
		return 0;
	cluster = data[0] & 1 ? CLUSTER : CLUSTER + data[0];
	buf = size > 1 ? data + 1 : NULL;
	len = size - 1;

	rc = amil_mwire_decode(buf, len, cluster, &msg);
	REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EACCES || rc == -EPROTONOSUPPORT);
	if (rc == 0) {
		REQUIRE(msg.type >= AMIL_MWIRE_PING && msg.type < AMIL_MWIRE_TYPE_MAX);
		REQUIRE(msg.n_updates <= AMIL_MWIRE_UPDATES_MAX);
		REQUIRE(msg.sender != 0 && msg.target != 0 && msg.cluster_id == cluster);
		for (unsigned i = 0; i < msg.n_updates; i++) {
			const struct amil_mwire_update *u = &msg.updates[i];

			REQUIRE(u->node_id != 0 && u->state < AMIL_MEMBER_STATE_MAX);
			REQUIRE(u->name_len <= AMIL_MEMBERSHIP_NAME_MAX);
			REQUIRE(u->addr_len <= AMIL_MEMBERSHIP_ADDR_MAX);
			REQUIRE(strlen(u->name) == u->name_len);
		}
		n = amil_mwire_encode(&msg, re, sizeof(re));
		REQUIRE(n > 0 && (size_t)n == len && memcmp(re, buf, len) == 0);
	}

	if (cluster == CLUSTER) {
		struct amil_membership *m = instance();

		now += 7000000;  /* 7 ms per input: timers fire along the way */
		rc2 = amil_membership_receive(m, now, rc == 0 ? msg.sender : 2, buf, len);
		if (rc == 0)
			REQUIRE(rc2 == 0 || rc2 == -EBADMSG);  /* -EBADMSG: from self */
		else
			REQUIRE(rc2 == rc);
		(void)amil_membership_tick(m, now);
		REQUIRE(amil_membership_next_deadline_ns(m) > now);
	}
	return 0;
}
