/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * What amil-donate reads from the user: donation fields (from flags or CSV
 * cells), a donations CSV file and a key file.  Separate from donate.c so
 * that the unit tests can feed it bad input from memory.
 *
 * Every parser refuses bad input with a message that names where it is and
 * what is wrong, e.g.
 *     "donations.csv:7: amount: '12.5' is not an integer number of minor units"
 * Keys are never echoed in messages: they are secrets and messages end up
 * in logs.
 *
 * CSV format (RFC 4180 subset):
 *   - the first non-blank line is a header naming the columns, in any order:
 *     donation_id, amount, currency (required), exponent (default 2),
 *     campaign (default 0), donor (default 0 = anonymous);
 *   - one donation per line after it; blank lines and lines starting with
 *     '#' are skipped; CRLF line ends and a UTF-8 byte-order mark are fine;
 *   - cells may be surrounded by spaces and by double quotes ("" inside
 *     quotes is a quote); a cell cannot span lines;
 *   - a donation_id may appear only once per file (a second use would be
 *     answered CONFLICT or DUPLICATE and is almost certainly a mistake).
 * Line numbers in messages count every line of the file from 1.
 *
 * Field checks mirror amil_wire_donation_validate() (without a currency
 * allow-list, which only the node knows), so a batch is refused before any
 * of it is sent rather than half-rejected by the node.
 *
 * Pure functions on memory, except the _load() variants that read a file.
 * No global state; safe from any thread.
 */
#ifndef AMIL_DONATE_INPUT_H
#define AMIL_DONATE_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "amil_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_DONATE_CSV_MAX_BYTES (64u << 20)
#define AMIL_DONATE_CSV_MAX_ROWS  1000000u
#define AMIL_DONATE_EXPONENT_DEFAULT 2

/* Donation fields a user supplies, in CSV column order. */
enum amil_donate_field {
	AMIL_DONATE_DONATION_ID,
	AMIL_DONATE_AMOUNT,
	AMIL_DONATE_CURRENCY,
	AMIL_DONATE_EXPONENT,
	AMIL_DONATE_CAMPAIGN,
	AMIL_DONATE_DONOR,
	AMIL_DONATE_FIELD_MAX
};

/* One donation of a CSV file. */
struct amil_donate_row {
	unsigned line;              /* its line in the file, from 1 */
	struct amil_donation d;     /* center_id, sent_ns, seq, reserved 0 */
};

/** Column/field name ("donation_id", "amount", ...); "?" when out of range. */
const char *amil_donate_field_name(unsigned field);

/**
 * Parse @value into field @field of @d.
 * @param why  on error receives the problem without the field name, e.g.
 *             "'12.5' is not an integer number of minor units".
 * @return 0, or -EINVAL (unknown field or bad value).
 */
int amil_donate_field_set(struct amil_donation *d, unsigned field, const char *value,
			  char *why, size_t whylen);

/** A donation with the defaults: exponent 2, everything else 0. */
void amil_donate_defaults(struct amil_donation *d);

/**
 * Parse a donations CSV held in memory (@text need not be NUL-terminated).
 * @param name  file name used in messages.
 * @param rows  on 0, an array of *@nrows rows (at least one); the caller
 *              owns it and frees it with free().  NULL on error.
 * @param err   on error, "name:line: field: problem" (NUL-terminated).
 * @return 0; -EINVAL for bad content; -EFBIG above the size or row limits;
 *   -ENOMEM.
 */
int amil_donate_csv_parse(const char *text, size_t len, const char *name,
			  struct amil_donate_row **rows, size_t *nrows, char *err,
			  size_t errlen);

/** Read @path and amil_donate_csv_parse() it.  A file that cannot be read
 *  gives "path: strerror" and its negative errno. */
int amil_donate_csv_load(const char *path, struct amil_donate_row **rows, size_t *nrows,
			 char *err, size_t errlen);

/**
 * Parse a key file: exactly one line holding 32 hex digits (either case),
 * optionally surrounded by spaces; blank lines and '#' comment lines are
 * ignored.  A centers-file line ("<center_id> <key>") is refused with a
 * message saying so.
 * @return 0 with @key filled, or -EINVAL with @err ("name:line: problem",
 *   never containing key material).
 */
int amil_donate_key_parse(const char *text, size_t len, const char *name,
			  uint8_t key[AMIL_KEY_LEN], char *err, size_t errlen);

/** Read @path (at most 4 KiB) and amil_donate_key_parse() it. */
int amil_donate_key_load(const char *path, uint8_t key[AMIL_KEY_LEN], char *err,
			 size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_DONATE_INPUT_H */
