/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the CP-mode registry's receive path (controlplane/
 * caspaxos.c): every byte string a cluster member can send.
 *
 * Input: a sequence of records (sender selector u8, length u16 big-endian,
 * that many bytes), each handed to amil_cas_receive() of a 3-member
 * instance (memory only), with a tick and a flush after each, so that
 * sequences (a PREPARE then a PROMISE for our own operation, a SYNC then a
 * DIGEST, a DIGEST answered with LEAVES, a LEAVES answered with SYNC and
 * WANT, ...) are explored too.  An operation is started first, so
 * replies can find it.
 *
 * Besides "does not crash", it aborts when:
 *   - receive returns anything but 0, -EBADMSG or -EPERM;
 *   - a message rejected as -EBADMSG / -EPERM changed the learned view
 *     (count) or was not counted;
 *   - a done callback reports a result outside the documented set, or a
 *     state that is not canonical (absent with an owner or a value);
 *   - a message it sends has a wrong version byte or an impossible length
 *     (a DIGEST not AMIL_CAS_DIGEST_LEN bytes, a SYNC or LEAVES over
 *     AMIL_CAS_SYNC_MAX or with no record, a WANT whose length is not its
 *     count's).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caspaxos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static const uint64_t members[3] = { 1, 2, 3 };

static uint32_t
ld32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
on_send(void *ctx, uint64_t to, const uint8_t *buf, size_t len)
{
	(void)ctx;
	REQUIRE(to == 1 || to == 2);
	REQUIRE(len >= 3 && buf[0] == 'X');
	REQUIRE(buf[1] >= AMIL_CAS_MSG_PREPARE && buf[1] <= AMIL_CAS_MSG_WANT);
	REQUIRE(buf[2] == (buf[1] == AMIL_CAS_MSG_DIGEST ? AMIL_CAS_DIGEST_VERSION
							 : AMIL_CAS_WIRE_VERSION));
	switch (buf[1]) {
	case AMIL_CAS_MSG_DIGEST:
		REQUIRE(len == AMIL_CAS_DIGEST_LEN);
		break;
	case AMIL_CAS_MSG_SYNC:
		REQUIRE(len > 7 && len <= AMIL_CAS_SYNC_MAX && ld32(buf + 3) >= 1);
		break;
	case AMIL_CAS_MSG_LEAVES:
		REQUIRE(len > 5 && len <= AMIL_CAS_SYNC_MAX);
		REQUIRE((buf[3] << 8 | buf[4]) >= 1 && (buf[3] << 8 | buf[4]) <= AMIL_CAS_BUCKETS);
		break;
	case AMIL_CAS_MSG_WANT:
		REQUIRE(len >= 9 && len == 7 + 2 * (size_t)ld32(buf + 3));
		break;
	}
}

static void
on_done(void *ctx, uint64_t op_id, int rc, const char *name, size_t len,
	const struct amil_cas_state *st)
{
	(void)ctx;
	(void)op_id;
	REQUIRE(rc == 0 || rc == -EEXIST || rc == -ENOENT || rc == -EPERM || rc == -ETIMEDOUT);
	REQUIRE(name && len >= 1 && len <= AMIL_CAS_NAME_MAX);
	REQUIRE(st->value_len <= AMIL_CAS_VALUE_MAX);
	REQUIRE(st->present || (st->owner == 0 && st->value_len == 0));
}

static int
count_fn(void *ctx, const char *name, size_t len, const struct amil_cas_state *st)
{
	REQUIRE(st->present && len >= 1 && len <= AMIL_CAS_NAME_MAX && name);
	++*(size_t *)ctx;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct amil_cas_config cfg = {
		.self = 3, .members = members, .n_members = 3,
		.op_timeout_ns = 50000000, .ae_interval_ns = 1000000,
		.send = on_send, .done = on_done,
	};
	struct amil_cas *c = amil_cas_new(&cfg, 0);
	uint64_t now = 0;

	REQUIRE(c);
	REQUIRE(amil_cas_start(c, now, AMIL_CAS_REGISTER, "nm", 2, 3, "v", 1, NULL) == 0);
	while (size >= 3) {
		uint8_t sel = data[0];
		size_t len = (size_t)data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		/* 1, 2, 3 are members (3 = self, as the inbox would); 4 is not. */
		uint64_t from = 1 + sel % 4;
		struct amil_cas_stats a, b;
		size_t before = amil_cas_count(c);
		amil_cas_stats_get(c, &a);
		int rc = amil_cas_receive(c, now, from, data, len);
		amil_cas_stats_get(c, &b);
		REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EPERM);
		if (rc == -EBADMSG)
			REQUIRE(b.msgs_bad == a.msgs_bad + 1 && amil_cas_count(c) == before);
		if (rc == -EPERM)
			REQUIRE(from == 4 && b.msgs_foreign == a.msgs_foreign + 1 &&
				amil_cas_count(c) == before);
		now += (uint64_t)(sel >> 2) * 1000000;
		amil_cas_tick(c, now);
		REQUIRE(amil_cas_flush(c) == 0);
		data += len;
		size -= len;
	}
	size_t n = 0;
	REQUIRE(amil_cas_foreach(c, count_fn, &n) == 0);
	REQUIRE(n == amil_cas_count(c));
	amil_cas_destroy(c);
	return 0;
}
