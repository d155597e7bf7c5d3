/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * AMIL/1 codec.  See amil_wire.h for the contract and docs/protocol.md for
 * the prose.
 *
 * Every multi-byte field is read and written through memcpy() plus an
 * explicit byte-order conversion: received payloads sit at arbitrary offsets
 * in packet buffers, and a cast to uint64_t * would be undefined behaviour
 * on an unaligned address even where the CPU tolerates it.  The compiler
 * turns each of these into a single load/store plus bswap.
 *
 * The tag is libsodium's crypto_shorthash_siphash24(), which is the plain
 * reference SipHash-2-4 with no CPU dispatch and no global state, so it is
 * safe to call without sodium_init() (tests/test_siphash.cpp relies on and
 * checks exactly that).
 */
#include "amil_bytes.h"
#include "amil_siphash_x4.h"
#include "amil_wire.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include <sodium/crypto_shorthash_siphash24.h>

_Static_assert(AMIL_SIPHASH_X4_MSG_LEN == AMIL_WIRE_TAG_OFF, "x4 hashes exactly the tagged bytes");
_Static_assert(crypto_shorthash_siphash24_BYTES == AMIL_TAG_LEN, "SipHash-2-4 gives 8 bytes");
_Static_assert(crypto_shorthash_siphash24_KEYBYTES == AMIL_KEY_LEN, "SipHash key is 16 bytes");

/* Field offsets shared by both messages. */
#define OFF_MAGIC     0
#define OFF_VERSION   2
#define OFF_TYPE      3
#define OFF_CENTER    4
#define OFF_DONATION  8

/* DONATION */
#define OFF_D_DONOR     16
#define OFF_D_CAMPAIGN  24
#define OFF_D_CURRENCY  28
#define OFF_D_EXPONENT  31
#define OFF_D_AMOUNT    32
#define OFF_D_SENT      40
#define OFF_D_SEQ       48
#define OFF_D_RESERVED  52

/* ACK */
#define OFF_A_LEVY      16
#define OFF_A_AMOUNT    24
#define OFF_A_NODE      32
#define OFF_A_STATUS    36
#define OFF_A_REASON    37
#define OFF_A_RESERVED1 38
#define OFF_A_SENT      40
#define OFF_A_SEQ       48
#define OFF_A_RESERVED2 52

static void
put_header(uint8_t *p, uint8_t type)
{
	st16(p + OFF_MAGIC, AMIL_WIRE_MAGIC);
	p[OFF_VERSION] = AMIL_WIRE_VERSION;
	p[OFF_TYPE] = type;
}

int
amil_wire_check(const void *buf, size_t len, uint8_t type)
{
	const uint8_t *p = buf;

	if (len != AMIL_WIRE_LEN || p == NULL)
		return -EMSGSIZE;
	if (ld16(p + OFF_MAGIC) != AMIL_WIRE_MAGIC || p[OFF_VERSION] != AMIL_WIRE_VERSION ||
	    p[OFF_TYPE] != type)
		return -EPROTO;
	return 0;
}

uint32_t
amil_wire_center_id(const void *buf)
{
	return ld32((const uint8_t *)buf + OFF_CENTER);
}

static void
compute_tag(const uint8_t *p, const uint8_t key[AMIL_KEY_LEN], uint8_t tag[AMIL_TAG_LEN])
{
	/* Cannot fail: the return value exists only for API uniformity. */
	(void)crypto_shorthash_siphash24(tag, p, AMIL_WIRE_TAG_OFF, key);
}

void
amil_wire_sign(void *buf, const uint8_t key[AMIL_KEY_LEN])
{
	uint8_t *p = buf;

	/* Output and input do not overlap: the tag covers [0, 56), lands in [56, 64). */
	compute_tag(p, key, p + AMIL_WIRE_TAG_OFF);
}

int
amil_wire_verify(const void *buf, const uint8_t key[AMIL_KEY_LEN])
{
	const uint8_t *p = buf;
	uint8_t tag[AMIL_TAG_LEN];
	uint8_t diff = 0;

	compute_tag(p, key, tag);
	/* Constant time: no early exit, so the time taken does not tell an
	 * attacker how many leading tag bytes were right. */
	for (size_t i = 0; i < AMIL_TAG_LEN; i++)
		diff |= (uint8_t)(tag[i] ^ p[AMIL_WIRE_TAG_OFF + i]);
	return diff == 0 ? 0 : -EBADMSG;
}

/*
 * Burst forms.  The vector path computes four tags in about the time of
 * two scalar ones (measured ~70 ns per group of four against ~40 ns per
 * scalar tag); see amil_siphash_x4.c.  The remainder (n % 4) goes through
 * the scalar code so the x4 kernel only ever sees four real messages;
 * padding a remainder of 2 or 3 into one vector call would be a little
 * faster and is the obvious next step if small bursts dominate.
 */
/* SipHash of the four messages bufs[0..3] under keys[0..3]. */
static inline void
x4_group(const void *const bufs[], const uint8_t *const keys[], uint64_t h[AMIL_SIPHASH_X4_LANES])
{
	const uint8_t *msg[AMIL_SIPHASH_X4_LANES];

	for (unsigned j = 0; j < AMIL_SIPHASH_X4_LANES; j++)
		msg[j] = bufs[j];
	amil_siphash_x4_hash56(h, msg, keys);
}

void
amil_wire_sign_burst(void *const bufs[], const uint8_t *const keys[], unsigned n)
{
	unsigned i = 0;

	if (n >= AMIL_SIPHASH_X4_LANES && amil_siphash_x4_usable()) {
		for (; i + AMIL_SIPHASH_X4_LANES <= n; i += AMIL_SIPHASH_X4_LANES) {
			uint64_t h[AMIL_SIPHASH_X4_LANES];

			x4_group((const void *const *)&bufs[i], &keys[i], h);
			/* All four hashes are read before any tag is written,
			 * so a buffer repeated within the group is fine. */
			for (unsigned j = 0; j < AMIL_SIPHASH_X4_LANES; j++) {
				uint64_t t = htole64(h[j]);

				memcpy((uint8_t *)bufs[i + j] + AMIL_WIRE_TAG_OFF, &t, AMIL_TAG_LEN);
			}
		}
	}
	for (; i < n; i++)
		amil_wire_sign(bufs[i], keys[i]);
}

/* 0 when @diff is 0, else -EBADMSG, without a data-dependent branch. */
static inline int
diff_result(uint64_t diff)
{
	uint64_t nonzero = (diff | (0 - diff)) >> 63;

	return -EBADMSG & -(int)nonzero;
}

void
amil_wire_verify_burst(const void *const bufs[], const uint8_t *const keys[], unsigned n,
		       int results[])
{
	unsigned i = 0;

	if (n >= AMIL_SIPHASH_X4_LANES && amil_siphash_x4_usable()) {
		for (; i + AMIL_SIPHASH_X4_LANES <= n; i += AMIL_SIPHASH_X4_LANES) {
			uint64_t h[AMIL_SIPHASH_X4_LANES];

			x4_group(&bufs[i], &keys[i], h);
			/* Whole-word compare: constant time like the byte loop
			 * in amil_wire_verify(), with the same verdicts. */
			for (unsigned j = 0; j < AMIL_SIPHASH_X4_LANES; j++) {
				uint64_t tag;

				memcpy(&tag, (const uint8_t *)bufs[i + j] + AMIL_WIRE_TAG_OFF,
				       sizeof(tag));
				results[i + j] = diff_result(le64toh(tag) ^ h[j]);
			}
		}
	}
	for (; i < n; i++)
		results[i] = amil_wire_verify(bufs[i], keys[i]);
}

void
amil_wire_donation_encode(void *buf, const struct amil_donation *d)
{
	uint8_t *p = buf;

	memset(p, 0, AMIL_WIRE_LEN);
	put_header(p, AMIL_MSG_DONATION);
	st32(p + OFF_CENTER, d->center_id);
	st64(p + OFF_DONATION, d->donation_id);
	st64(p + OFF_D_DONOR, d->donor_id);
	st32(p + OFF_D_CAMPAIGN, d->campaign_id);
	memcpy(p + OFF_D_CURRENCY, d->currency, AMIL_CURRENCY_LEN);
	p[OFF_D_EXPONENT] = d->exponent;
	st64s(p + OFF_D_AMOUNT, d->amount_minor);
	st64(p + OFF_D_SENT, d->sent_ns);
	st32(p + OFF_D_SEQ, d->seq);
	/* Encoded as given (not forced to 0) so tests and the generator can
	 * produce the RESERVED rejection on purpose. */
	st32(p + OFF_D_RESERVED, d->reserved);
}

void
amil_wire_donation_decode(const void *buf, struct amil_donation *d)
{
	const uint8_t *p = buf;

	d->center_id = ld32(p + OFF_CENTER);
	d->donation_id = ld64(p + OFF_DONATION);
	d->donor_id = ld64(p + OFF_D_DONOR);
	d->campaign_id = ld32(p + OFF_D_CAMPAIGN);
	memcpy(d->currency, p + OFF_D_CURRENCY, AMIL_CURRENCY_LEN);
	d->exponent = p[OFF_D_EXPONENT];
	d->amount_minor = ld64s(p + OFF_D_AMOUNT);
	d->sent_ns = ld64(p + OFF_D_SENT);
	d->seq = ld32(p + OFF_D_SEQ);
	d->reserved = ld32(p + OFF_D_RESERVED);
}

void
amil_wire_ack_encode(void *buf, const struct amil_ack *a)
{
	/*
	 * Eight whole 64-bit stores, one per 8-byte column of the layout, and
	 * no byte stores: the tag (amil_wire_sign) and the UDP checksum read
	 * the message back right away in 8-byte words, and a load that spans
	 * several smaller pending stores cannot be forwarded from the store
	 * buffer (it stalls until they reach the cache).  Reserved bytes and
	 * the tag are zero.
	 */
	uint64_t w[AMIL_WIRE_LEN / 8] = {
		(uint64_t)AMIL_WIRE_MAGIC << 48 | (uint64_t)AMIL_WIRE_VERSION << 40 |
			(uint64_t)AMIL_MSG_ACK << 32 | a->center_id,
		a->donation_id,
		(uint64_t)a->levy_minor,
		(uint64_t)a->amount_minor,
		(uint64_t)a->node_id << 32 | (uint64_t)a->status << 24 | (uint64_t)a->reason << 16,
		a->sent_ns,
		(uint64_t)a->seq << 32,
		0,
	};
	uint8_t *p = buf;

	_Static_assert(OFF_A_NODE == 32 && OFF_A_STATUS == 36 && OFF_A_REASON == 37 &&
			       OFF_A_SENT == 40 && OFF_A_SEQ == 48,
		       "ACK columns as encoded above");
	for (unsigned i = 0; i < AMIL_WIRE_LEN / 8; i++)
		st64(p + 8 * i, w[i]);
}

void
amil_wire_ack_decode(const void *buf, struct amil_ack *a)
{
	const uint8_t *p = buf;

	a->center_id = ld32(p + OFF_CENTER);
	a->donation_id = ld64(p + OFF_DONATION);
	a->levy_minor = ld64s(p + OFF_A_LEVY);
	a->amount_minor = ld64s(p + OFF_A_AMOUNT);
	a->node_id = ld32(p + OFF_A_NODE);
	a->status = p[OFF_A_STATUS];
	a->reason = p[OFF_A_REASON];
	a->sent_ns = ld64(p + OFF_A_SENT);
	a->seq = ld32(p + OFF_A_SEQ);
}

uint8_t
amil_wire_donation_validate(const struct amil_donation *d, const struct amil_currency_set *allow)
{
	if (d->donation_id == 0)
		return AMIL_REASON_BAD_ID;
	if (d->amount_minor < AMIL_AMOUNT_MIN_MINOR || d->amount_minor > AMIL_AMOUNT_MAX_MINOR)
		return AMIL_REASON_BAD_AMOUNT;
	if (!amil_currency_set_has(allow, d->currency))
		return AMIL_REASON_BAD_CURRENCY;
	if (d->exponent > AMIL_EXPONENT_MAX)
		return AMIL_REASON_BAD_EXPONENT;
	if (d->reserved != 0)
		return AMIL_REASON_RESERVED;
	return AMIL_REASON_NONE;
}

int
amil_currency_index(const char code[AMIL_CURRENCY_LEN])
{
	int idx = 0;

	for (int i = 0; i < AMIL_CURRENCY_LEN; i++) {
		unsigned char c = (unsigned char)code[i];

		if (c < 'A' || c > 'Z')
			return -1;
		idx = idx * 26 + (c - 'A');
	}
	return idx;
}

void
amil_currency_set_init(struct amil_currency_set *s, bool any)
{
	memset(s, 0, sizeof(*s));
	s->any = any;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void
copy_token(char *bad, size_t badlen, const char *tok, size_t toklen)
{
	if (bad == NULL || badlen == 0)
		return;
	if (toklen > badlen - 1)
		toklen = badlen - 1;
	memcpy(bad, tok, toklen);
	bad[toklen] = '\0';
}

int
amil_currency_set_parse(struct amil_currency_set *s, const char *list, char *bad, size_t badlen)
{
	struct amil_currency_set tmp;
	const char *p = list;

	copy_token(bad, badlen, "", 0);
	if (list == NULL)
		return -EINVAL;
	/* Parse into a scratch set so @s is untouched when the list is bad. */
	amil_currency_set_init(&tmp, false);
	for (;;) {
		const char *end = strchr(p, ',');
		const char *tok_end = end != NULL ? end : p + strlen(p);
		const char *tok = p;
		int idx;

		while (tok < tok_end && is_blank(*tok))
			tok++;
		while (tok_end > tok && is_blank(tok_end[-1]))
			tok_end--;
		/* An empty token ("", "USD,,EUR", "USD,") is an error rather
		 * than skipped: it is almost always a typo in the config. */
		idx = tok_end - tok == AMIL_CURRENCY_LEN ? amil_currency_index(tok) : -1;
		if (idx < 0) {
			copy_token(bad, badlen, tok, (size_t)(tok_end - tok));
			return -EINVAL;
		}
		tmp.bits[idx / 8] |= (uint8_t)(1u << (idx % 8));
		if (end == NULL)
			break;
		p = end + 1;
	}
	*s = tmp;
	return 0;
}

bool
amil_currency_set_has(const struct amil_currency_set *s, const char code[AMIL_CURRENCY_LEN])
{
	int idx = amil_currency_index(code);

	if (idx < 0)
		return false;
	if (s == NULL || s->any)
		return true;
	return (s->bits[idx / 8] >> (idx % 8)) & 1;
}

const char *
amil_ack_status_name(uint8_t status)
{
	static const char *const names[AMIL_ACK_STATUS_MAX] = {
		[AMIL_ACK_ACCEPTED] = "ACCEPTED",
		[AMIL_ACK_DUPLICATE] = "DUPLICATE",
		[AMIL_ACK_REJECTED] = "REJECTED",
	};

	return status < AMIL_ACK_STATUS_MAX ? names[status] : "UNKNOWN";
}

const char *
amil_reason_name(uint8_t reason)
{
	static const char *const names[AMIL_REASON_MAX] = {
		[AMIL_REASON_NONE] = "NONE",
		[AMIL_REASON_BAD_CURRENCY] = "BAD_CURRENCY",
		[AMIL_REASON_BAD_AMOUNT] = "BAD_AMOUNT",
		[AMIL_REASON_BAD_EXPONENT] = "BAD_EXPONENT",
		[AMIL_REASON_CONFLICT] = "CONFLICT",
		[AMIL_REASON_RESERVED] = "RESERVED",
		[AMIL_REASON_BAD_ID] = "BAD_ID",
		[AMIL_REASON_UNAVAILABLE] = "UNAVAILABLE",
	};

	return reason < AMIL_REASON_MAX ? names[reason] : "UNKNOWN";
}
