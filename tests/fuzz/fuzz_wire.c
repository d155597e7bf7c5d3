/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the AMIL/1 codec (lib/amil_wire.c).
 *
 * Input layout: bytes 0..15 are the SipHash key, the rest is the UDP
 * payload, so the fuzzer can reach verify/decode/validate with any length.
 * Besides "does not crash", it checks properties that must hold for every
 * input and aborts (a reported crash) when one does not:
 *   - a message accepted by amil_wire_check() re-encodes to the same bytes;
 *   - signing then verifying always succeeds, and verify agrees with a
 *     byte comparison of the tag;
 *   - the currency allow-list parser never reports success with a
 *     malformed set and always NUL-terminates the bad token.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amil_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static void
fuzz_donation(const uint8_t *msg, size_t len, const uint8_t *key)
{
	struct amil_donation d;
	struct amil_currency_set allow;
	uint8_t copy[AMIL_WIRE_LEN], re[AMIL_WIRE_LEN];
	uint8_t reason;
	int vrc;

	if (amil_wire_check(msg, len, AMIL_MSG_DONATION) != 0)
		return;
	(void)amil_wire_center_id(msg);
	vrc = amil_wire_verify(msg, key);
	memcpy(copy, msg, AMIL_WIRE_LEN);
	amil_wire_sign(copy, key);
	REQUIRE(amil_wire_verify(copy, key) == 0);
	/* verify must be exactly "the tag equals the recomputed one". */
	REQUIRE((vrc == 0) == (memcmp(copy + AMIL_WIRE_TAG_OFF, msg + AMIL_WIRE_TAG_OFF,
				      AMIL_TAG_LEN) == 0));
	/* The burst paths (AVX2, four lanes, plus the scalar remainder) give
	 * the same verdict and the same tag as the one-message calls. */
	{
		const void *vb[5] = {msg, copy, msg, copy, msg};
		const uint8_t *vk[5] = {key, key, key, key, key};
		uint8_t s4[4][AMIL_WIRE_LEN];
		void *sb[4] = {s4[0], s4[1], s4[2], s4[3]};
		int res[5];

		amil_wire_verify_burst(vb, vk, 5, res);
		for (int i = 0; i < 5; i++)
			REQUIRE(res[i] == (i & 1 ? 0 : vrc));
		for (int i = 0; i < 4; i++)
			memcpy(s4[i], msg, AMIL_WIRE_LEN);
		amil_wire_sign_burst(sb, vk, 4);
		for (int i = 0; i < 4; i++)
			REQUIRE(memcmp(s4[i], copy, AMIL_WIRE_LEN) == 0);
	}

	amil_wire_donation_decode(msg, &d);
	reason = amil_wire_donation_validate(&d, NULL);
	REQUIRE(reason < AMIL_REASON_MAX);
	REQUIRE(amil_reason_name(reason) != NULL);
	if (reason == AMIL_REASON_NONE) {
		REQUIRE(d.donation_id != 0);
		REQUIRE(d.amount_minor >= 1 && d.amount_minor <= AMIL_AMOUNT_MAX_MINOR);
		REQUIRE(d.exponent <= AMIL_EXPONENT_MAX && d.reserved == 0);
		REQUIRE(amil_currency_index(d.currency) >= 0);
	}
	amil_currency_set_init(&allow, false);
	if (amil_currency_set_parse(&allow, "USD,EUR,SAR", NULL, 0) == 0) {
		uint8_t r2 = amil_wire_donation_validate(&d, &allow);

		/* The allow-list can only turn a pass, or a failure of a later
		 * check, into BAD_CURRENCY; earlier failures stay. */
		REQUIRE(r2 == reason ||
			(r2 == AMIL_REASON_BAD_CURRENCY &&
			 (reason == AMIL_REASON_NONE || reason == AMIL_REASON_BAD_EXPONENT ||
			  reason == AMIL_REASON_RESERVED)));
	}
	amil_wire_donation_encode(re, &d);
	REQUIRE(memcmp(re, msg, AMIL_WIRE_TAG_OFF) == 0);
}

static void
fuzz_ack(const uint8_t *msg, size_t len, const uint8_t *key)
{
	struct amil_ack a;
	uint8_t re[AMIL_WIRE_LEN];

	if (amil_wire_check(msg, len, AMIL_MSG_ACK) != 0)
		return;
	(void)amil_wire_verify(msg, key);
	amil_wire_ack_decode(msg, &a);
	REQUIRE(amil_ack_status_name(a.status) != NULL);
	REQUIRE(amil_reason_name(a.reason) != NULL);
	amil_wire_ack_encode(re, &a);
	/* Everything but the reserved bytes (zeroed by encode) round-trips. */
	REQUIRE(memcmp(re, msg, 38) == 0);
	REQUIRE(memcmp(re + 40, msg + 40, 12) == 0);
}

static void
fuzz_currency_list(const uint8_t *data, size_t size)
{
	struct amil_currency_set s;
	char list[256], bad[8];
	size_t n = size < sizeof(list) - 1 ? size : sizeof(list) - 1;

	memcpy(list, data, n);
	list[n] = '\0';
	memset(bad, 'x', sizeof(bad));
	amil_currency_set_init(&s, false);
	if (amil_currency_set_parse(&s, list, bad, sizeof(bad)) == 0) {
		REQUIRE(!s.any);
	} else {
		REQUIRE(memchr(bad, '\0', sizeof(bad)) != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[AMIL_KEY_LEN] = {0};
	const uint8_t *msg = data;
	size_t len = size;

	/* Every length, including 0 with a NULL-like empty buffer. */
	(void)amil_wire_check(size ? data : NULL, size, AMIL_MSG_DONATION);
	fuzz_currency_list(data, size);
	if (size >= AMIL_KEY_LEN) {
		memcpy(key, data, AMIL_KEY_LEN);
		msg = data + AMIL_KEY_LEN;
		len = size - AMIL_KEY_LEN;
	}
	fuzz_donation(msg, len, key);
	fuzz_ack(msg, len, key);
	return 0;
}
