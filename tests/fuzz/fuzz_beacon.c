/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the discovery beacon codec (controlplane/beacon.c).
 *
 * Input: the bytes of a received datagram, decoded under a fixed cluster
 * id and secret.  Because a random input never carries a valid HMAC, the
 * input is also decoded a second time with its MAC recomputed (when it is
 * long enough), so the checks behind the MAC are reached too.  Properties,
 * checked with abort():
 *   - decode returns only 0, -EBADMSG, -EPERM or -EPROTO;
 *   - an accepted beacon re-encodes to exactly the same 176 bytes (one
 *     encoding per beacon: no unauthenticated slack);
 *   - the decoded name is NUL-terminated at name_len with no NUL before;
 *   - the replay filter accepts a fresh (node, nonce) once and then says
 *     -EALREADY.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "beacon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)
#define CLUSTER 0xC1u

static const uint8_t secret[AMIL_BEACON_SECRET_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

static void
check(const uint8_t *buf, size_t len)
{
	static struct amil_beacon_replay *replay;
	struct amil_beacon b;
	uint8_t re[AMIL_BEACON_LEN];
	int rc = amil_beacon_decode_verify(buf, len, CLUSTER, secret, &b);

	REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EPERM || rc == -EPROTO);
	if (rc != 0)
		return;
	REQUIRE(len == AMIL_BEACON_LEN);
	REQUIRE(b.node_id != 0 && b.endpoint.port != 0);
	REQUIRE(b.name_len <= AMIL_BEACON_NAME_MAX && b.name[b.name_len] == '\0');
	REQUIRE(strlen(b.name) == b.name_len);
	REQUIRE(amil_beacon_encode(re, &b, secret) == 0);
	REQUIRE(memcmp(re, buf, AMIL_BEACON_LEN) == 0);

	if (replay == NULL) {
		replay = amil_beacon_replay_new(64, 1000000000ull);
		REQUIRE(replay != NULL);
	}
	/* "now" = the beacon's own time: always within the window.  A fresh
	 * filter state per input would hide nothing; entries of earlier inputs
	 * may make it -EALREADY or -ENOSPC, never anything else. */
	rc = amil_beacon_replay_check(replay, b.timestamp_ns, b.node_id, b.timestamp_ns, b.nonce);
	REQUIRE(rc == 0 || rc == -EALREADY || rc == -ENOSPC);
	REQUIRE(amil_beacon_replay_check(replay, b.timestamp_ns, b.node_id, b.timestamp_ns,
					 b.nonce) != 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(size ? data : NULL, size);
	if (size >= AMIL_BEACON_MAC_OFF) {
		uint8_t copy[AMIL_BEACON_LEN];

		memset(copy, 0, sizeof(copy));
		memcpy(copy, data, AMIL_BEACON_MAC_OFF);
		crypto_auth_hmacsha256(copy + AMIL_BEACON_MAC_OFF, copy, AMIL_BEACON_MAC_OFF, secret);
		check(copy, sizeof(copy));
	}
	return 0;
}
