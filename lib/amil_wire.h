/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * AMIL/1 wire format: the one implementation of the donation and
 * acknowledgement messages, shared by the data plane, the packet generator,
 * the reference client and the tests.  docs/protocol.md is the prose form.
 *
 * Every message is exactly AMIL_WIRE_LEN (64) bytes of UDP payload, integers
 * big-endian, and ends in an 8-byte SipHash-2-4 tag computed with the
 * sending center's 16-byte key over bytes 0..55.
 *
 * This module has no DPDK dependency: the client library links it on plain
 * kernel sockets.  Nothing here allocates, locks or makes a system call, so
 * every function is safe on the data-plane fast path and from any thread.
 *
 * Decoding is split in two steps on purpose: amil_wire_check() looks only at
 * length and the 4-byte header (cheap, before any key is looked up), and the
 * tag is verified before a single field is trusted.  Only an authenticated
 * message is decoded and validated.
 */
#ifndef AMIL_WIRE_H
#define AMIL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_WIRE_PORT_DEFAULT 7100
#define AMIL_WIRE_LEN          64      /* UDP payload bytes, exactly */
#define AMIL_WIRE_MAGIC        0x414D  /* "AM" */
#define AMIL_WIRE_VERSION      1
#define AMIL_WIRE_TAG_OFF      56      /* tag covers bytes [0, 56) */
#define AMIL_KEY_LEN           16
#define AMIL_TAG_LEN           8
#define AMIL_CURRENCY_LEN      3
#define AMIL_EXPONENT_MAX      4
#define AMIL_AMOUNT_MIN_MINOR  1
#define AMIL_AMOUNT_MAX_MINOR  INT64_C(1000000000000000)  /* 10^15 */

enum amil_msg_type {
	AMIL_MSG_DONATION = 1,
	AMIL_MSG_ACK = 2,
};

enum amil_ack_status {
	AMIL_ACK_ACCEPTED = 0,
	AMIL_ACK_DUPLICATE = 1,
	AMIL_ACK_REJECTED = 2,
	AMIL_ACK_STATUS_MAX
};

/* Rejection reasons carried in ACK byte 37.  Values are wire-visible. */
enum amil_reason {
	AMIL_REASON_NONE = 0,
	AMIL_REASON_BAD_CURRENCY = 1,
	AMIL_REASON_BAD_AMOUNT = 2,
	AMIL_REASON_BAD_EXPONENT = 3,
	AMIL_REASON_CONFLICT = 4,
	AMIL_REASON_RESERVED = 5,
	AMIL_REASON_BAD_ID = 6,
	AMIL_REASON_UNAVAILABLE = 7,  /* retry later: e.g. dedupe table full */
	AMIL_REASON_MAX
};

/* Wire layouts.  Fields are big-endian on the wire; use the codec below,
 * never these structs' integer fields directly. */
struct __attribute__((packed)) amil_wire_donation {
	uint16_t magic;
	uint8_t version;
	uint8_t type;
	uint32_t center_id;
	uint64_t donation_id;
	uint64_t donor_id;
	uint32_t campaign_id;
	char currency[AMIL_CURRENCY_LEN];
	uint8_t exponent;
	int64_t amount;
	uint64_t sent_ns;
	uint32_t seq;
	uint32_t reserved;
	uint8_t tag[AMIL_TAG_LEN];
};

struct __attribute__((packed)) amil_wire_ack {
	uint16_t magic;
	uint8_t version;
	uint8_t type;
	uint32_t center_id;
	uint64_t donation_id;
	int64_t levy;
	int64_t amount;
	uint32_t node_id;
	uint8_t status;
	uint8_t reason;
	uint16_t reserved1;
	uint64_t sent_ns;
	uint32_t seq;
	uint32_t reserved2;
	uint8_t tag[AMIL_TAG_LEN];
};

/* _Static_assert is C11 only; the Google Test files include this header as
 * C++, where the same check is spelled static_assert. */
#ifdef __cplusplus
#define AMIL_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define AMIL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

AMIL_STATIC_ASSERT(sizeof(struct amil_wire_donation) == AMIL_WIRE_LEN, "donation is 64 bytes");
AMIL_STATIC_ASSERT(sizeof(struct amil_wire_ack) == AMIL_WIRE_LEN, "ack is 64 bytes");
AMIL_STATIC_ASSERT(offsetof(struct amil_wire_donation, currency) == 28, "currency at 28");
AMIL_STATIC_ASSERT(offsetof(struct amil_wire_donation, amount) == 32, "amount at 32");
AMIL_STATIC_ASSERT(offsetof(struct amil_wire_donation, tag) == AMIL_WIRE_TAG_OFF, "tag at 56");
AMIL_STATIC_ASSERT(offsetof(struct amil_wire_ack, node_id) == 32, "node_id at 32");
AMIL_STATIC_ASSERT(offsetof(struct amil_wire_ack, status) == 36, "status at 36");
AMIL_STATIC_ASSERT(offsetof(struct amil_wire_ack, sent_ns) == 40, "sent_ns at 40");
AMIL_STATIC_ASSERT(offsetof(struct amil_wire_ack, tag) == AMIL_WIRE_TAG_OFF, "tag at 56");

/* A donation in host byte order. */
struct amil_donation {
	uint32_t center_id;
	uint64_t donation_id;          /* 0 is invalid (BAD_ID) */
	uint64_t donor_id;             /* 0 = anonymous */
	uint32_t campaign_id;
	char currency[AMIL_CURRENCY_LEN]; /* ISO 4217, not NUL-terminated */
	uint8_t exponent;              /* minor-unit exponent, 0..4 */
	int64_t amount_minor;          /* valid range 1..10^15 */
	uint64_t sent_ns;              /* sender's clock, echoed */
	uint32_t seq;                  /* sender's sequence, echoed */
	uint32_t reserved;             /* must be 0 */
};

/* An acknowledgement in host byte order. */
struct amil_ack {
	uint32_t center_id;
	uint64_t donation_id;
	int64_t levy_minor;            /* 0 when rejected */
	int64_t amount_minor;          /* accepted amount; DUPLICATE: original */
	uint32_t node_id;
	uint8_t status;                /* enum amil_ack_status */
	uint8_t reason;                /* enum amil_reason */
	uint64_t sent_ns;
	uint32_t seq;
};

/* Allow-list of ISO 4217 codes: one bit per three-capital code (26^3). */
#define AMIL_CURRENCY_CODES (26 * 26 * 26)
struct amil_currency_set {
	bool any;   /* true: every three-capital code is allowed */
	uint8_t bits[(AMIL_CURRENCY_CODES + 7) / 8];
};

/**
 * Check length and header of a received payload.
 *
 * @param buf   UDP payload; may be NULL only when @len is 0.
 * @param len   payload length in bytes.
 * @param type  expected enum amil_msg_type.
 * @return 0 when the payload is 64 bytes with our magic, version and @type;
 *   -EMSGSIZE when the length is not 64; -EPROTO for a bad magic, version or
 *   type.  Does not look at the tag.
 */
int amil_wire_check(const void *buf, size_t len, uint8_t type);

/**
 * Read the center id of a payload that passed amil_wire_check().  Used to
 * select the key before the tag can be verified.
 */
uint32_t amil_wire_center_id(const void *buf);

/** Write the SipHash-2-4 tag of bytes 0..55 of @buf with @key into bytes 56..63. */
void amil_wire_sign(void *buf, const uint8_t key[AMIL_KEY_LEN]);

/**
 * Verify the tag of a 64-byte message in constant time.
 * @return 0 when the tag matches, -EBADMSG otherwise.
 */
int amil_wire_verify(const void *buf, const uint8_t key[AMIL_KEY_LEN]);

/**
 * Sign @n messages: amil_wire_sign(bufs[i], keys[i]) for every i < @n, with
 * the same result bit for bit, four at a time with AVX2 where the CPU has it
 * (checked once at run time) and libsodium's scalar code otherwise and for
 * the last n % 4.
 *
 * @param bufs  @n 64-byte messages, any alignment; bytes 0..55 are read and
 *              56..63 written.  A pointer may repeat (same result twice).
 * @param keys  @n 16-byte keys, keys[i] for bufs[i]; pointers may repeat
 *              (several messages of one center).
 * @param n     any count, 0 included.
 *
 * No allocation, locks or system calls; no state other than the cached CPU
 * check: thread-safe and fit for the fast path.
 */
void amil_wire_sign_burst(void *const bufs[], const uint8_t *const keys[], unsigned n);

/**
 * Verify @n messages: results[i] = amil_wire_verify(bufs[i], keys[i]), i.e.
 * 0 when the tag matches and -EBADMSG otherwise, computed as in
 * amil_wire_sign_burst().  Each tag is compared in constant time (all 8
 * bytes, no early exit); the outcome of one message does not change the
 * work done for another.
 *
 * @param bufs     @n 64-byte messages, read only; pointers may repeat.
 * @param keys     @n 16-byte keys; pointers may repeat.
 * @param n        any count, 0 included.
 * @param results  @n ints, written for every i < @n.
 *
 * Same thread-safety and fast-path guarantees as amil_wire_sign_burst().
 */
void amil_wire_verify_burst(const void *const bufs[], const uint8_t *const keys[], unsigned n,
			    int results[]);

/** Encode @d into @buf (64 bytes), header included, tag left zero: call
 *  amil_wire_sign() afterwards. */
void amil_wire_donation_encode(void *buf, const struct amil_donation *d);

/** Decode a 64-byte DONATION into @d.  Does no validation: only call on a
 *  payload that passed amil_wire_check() and amil_wire_verify(). */
void amil_wire_donation_decode(const void *buf, struct amil_donation *d);

/** Encode @a into @buf (64 bytes) as an ACK, reserved bytes zero, tag zero. */
void amil_wire_ack_encode(void *buf, const struct amil_ack *a);

/** Decode a 64-byte ACK into @a.  Same preconditions as donation decode. */
void amil_wire_ack_decode(const void *buf, struct amil_ack *a);

/**
 * Validate an authenticated donation's fields.
 *
 * Checks in this order and returns the first failure: donation_id 0
 * (BAD_ID), amount outside 1..10^15 (BAD_AMOUNT), currency not three ASCII
 * capitals or not in @allow (BAD_CURRENCY), exponent > 4 (BAD_EXPONENT),
 * reserved != 0 (RESERVED).
 *
 * @param allow  allow-list, or NULL for "any three capitals".
 * @return AMIL_REASON_NONE when valid, otherwise the enum amil_reason.
 */
uint8_t amil_wire_donation_validate(const struct amil_donation *d,
				    const struct amil_currency_set *allow);

/**
 * Index of a currency code in 0..AMIL_CURRENCY_CODES-1, or -1 when the three
 * bytes are not all ASCII 'A'..'Z'.
 */
int amil_currency_index(const char code[AMIL_CURRENCY_LEN]);

/** Empty the set; @any sets "every code allowed". */
void amil_currency_set_init(struct amil_currency_set *s, bool any);

/**
 * Parse a comma-separated list ("USD,EUR, SAR") into @s (replacing it).
 * Spaces around codes are ignored; an empty list is an error.
 * @param bad  on error, receives the offending token (NUL-terminated,
 *             truncated to @badlen - 1); may be NULL.
 * @return 0, or -EINVAL naming the bad token in @bad.
 */
int amil_currency_set_parse(struct amil_currency_set *s, const char *list,
			    char *bad, size_t badlen);

/** True when @code is allowed by @s (NULL means any valid code). */
bool amil_currency_set_has(const struct amil_currency_set *s,
			   const char code[AMIL_CURRENCY_LEN]);

/** Printable names, for logs and JSON ("ACCEPTED", "BAD_CURRENCY", ...).
 *  Never NULL: out-of-range values give "UNKNOWN". */
const char *amil_ack_status_name(uint8_t status);
const char *amil_reason_name(uint8_t reason);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_WIRE_H */
