/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the registry CRDT codec and join (controlplane/
 * awormap.c): every byte string a peer can send as a delta or a state.
 *
 * Besides "does not crash", it aborts (a reported crash) when a property
 * that must hold for every input does not:
 *   - check and join return only 0, -EBADMSG or -EPROTONOSUPPORT (no
 *     allocation fails here), and agree with each other;
 *   - a rejected message leaves the map byte-for-byte unchanged;
 *   - a full-mask state joined into an empty map re-encodes to exactly
 *     the input (one encoding per state, nothing ignored);
 *   - whatever a map holds after a join encodes to a state that checks,
 *     and joining that state back is a no-op (idempotence);
 *   - a long-lived map fed every input stays internally consistent the
 *     same way (state accumulates, which explores more of the join).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "awormap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static void
state(const struct amil_awormap *m, uint8_t **s, size_t *n)
{
	REQUIRE(amil_awormap_encode_state(m, NULL, s, n) == 0);
	REQUIRE(amil_awormap_check(*s, *n, NULL) == 0);
}

static void
no_conflict_check(void *ctx, const struct amil_awormap_entry *w,
		  const struct amil_awormap_entry *l)
{
	(void)ctx;
	/* the rule: the winner orders after the loser */
	REQUIRE(w->hlc > l->hlc || (w->hlc == l->hlc && w->dot_node >= l->dot_node));
	REQUIRE(w->name_len == l->name_len && memcmp(w->name, l->name, w->name_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct amil_awormap *acc;
	static unsigned inputs;
	struct amil_awormap *m;
	uint8_t *s1, *s2;
	size_t n1, n2;
	int kind = 0, rc;

	rc = amil_awormap_check(data, size, &kind);
	REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);

	m = amil_awormap_new(0xf0220001, 0);
	REQUIRE(m != NULL);
	REQUIRE(amil_awormap_join(m, 0, data, size, no_conflict_check, NULL) == rc);
	state(m, &s1, &n1);
	if (rc == 0 && kind == AMIL_AWORMAP_STATE && size >= 8 + AMIL_AWORMAP_MASK_BYTES) {
		static const uint8_t all[AMIL_AWORMAP_MASK_BYTES] = {
			[0 ... AMIL_AWORMAP_MASK_BYTES - 1] = 0xff };

		if (memcmp(data + 8, all, sizeof(all)) == 0)
			REQUIRE(n1 == size && memcmp(s1, data, size) == 0);
	}
	/* idempotent: joining its own state changes nothing */
	REQUIRE(amil_awormap_join(m, 0, s1, n1, NULL, NULL) == 0);
	state(m, &s2, &n2);
	REQUIRE(n1 == n2 && memcmp(s1, s2, n1) == 0);
	free(s2);
	free(s1);
	amil_awormap_destroy(&m);

	/* the long-lived replica; renewed now and then to bound memory */
	if (acc == NULL || ++inputs % 4096 == 0) {
		amil_awormap_destroy(&acc);
		acc = amil_awormap_new(0xf0220002, 0);
		REQUIRE(acc != NULL);
	}
	state(acc, &s1, &n1);
	REQUIRE(amil_awormap_join(acc, 0, data, size, no_conflict_check, NULL) == rc);
	state(acc, &s2, &n2);
	if (rc != 0)
		REQUIRE(n1 == n2 && memcmp(s1, s2, n1) == 0);
	free(s1);
	free(s2);
	return 0;
}
