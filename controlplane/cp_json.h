/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * A compact JSON (RFC 8259) reader for the control plane: amilctl parses the
 * daemon's replies with it, and the daemon may parse requests with it.
 *
 * Parsing builds a read-only tree in two allocations: an array of values and
 * one text arena.  Strings are decoded (escapes, \u surrogate pairs) into
 * the arena, NUL-terminated; a string containing \u0000 keeps its true
 * length in amil_json_len() but is cut short for C string users.  Numbers
 * are NOT converted: their text is kept exactly as written, because the
 * daemon's counters are u64 and money totals are 128-bit, which a double
 * would round.  amil_json_u64()/amil_json_i64() convert with range checks
 * when a caller wants an integer.
 *
 * Strict by design (these are machine-written messages, and a lenient
 * reader hides bugs): no comments, no trailing commas, no leading zeros, no
 * raw control characters in strings, no lone surrogates, no trailing data
 * after the top-level value.  Nesting is limited to AMIL_JSON_MAX_DEPTH so a
 * hostile peer cannot exhaust the stack.  Errors name the byte offset and
 * what was expected there.
 *
 * Object members keep their order; a duplicate key is kept, and
 * amil_json_get() returns the first.  Unknown members are simply never
 * looked up, which is how amilctl ignores fields a newer daemon adds.
 *
 * Threading: a parsed document is immutable; any number of threads may read
 * it.  Nothing here has global state.
 */
#ifndef AMIL_CP_JSON_H
#define AMIL_CP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_JSON_MAX_DEPTH 64

enum amil_json_type {
	AMIL_JSON_NULL = 0,
	AMIL_JSON_FALSE,
	AMIL_JSON_TRUE,
	AMIL_JSON_NUMBER,
	AMIL_JSON_STRING,
	AMIL_JSON_ARRAY,
	AMIL_JSON_OBJECT,
};

/* One value of a parsed document.  Read the fields through the functions
 * below; the layout is private and may change. */
struct amil_json_value;

/* A parsed document: owns every value and string in it. */
struct amil_json;

/**
 * Parse @len bytes at @text (need not be NUL-terminated) as one JSON value.
 *
 * @param err, errlen  on failure receives "offset N: what went wrong"
 *   (may be NULL / 0).
 * @return the document (caller owns it: amil_json_destroy()), or NULL with
 *   errno EBADMSG (not JSON; @err says where), ENOMEM, or EINVAL (@text NULL,
 *   or @len above 1 GiB).
 */
struct amil_json *amil_json_parse(const char *text, size_t len, char *err, size_t errlen);

/** Free @*docp and set it to NULL.  Accepts NULL and a pointer to NULL.
 *  Every value pointer taken from the document becomes invalid. */
void amil_json_destroy(struct amil_json **docp);

/** The top-level value; never NULL for a parsed document. */
const struct amil_json_value *amil_json_root(const struct amil_json *doc);

/** Type of @v.  NULL @v reads as AMIL_JSON_NULL, so lookups can be chained
 *  without checks and a missing member behaves like a null one. */
enum amil_json_type amil_json_type(const struct amil_json_value *v);

/** "null", "false", "true", "number", "string", "array" or "object". */
const char *amil_json_type_name(enum amil_json_type t);

/**
 * Member @key of object @obj (first one when repeated), or NULL when @obj
 * is NULL, not an object, or has no such member.
 */
const struct amil_json_value *amil_json_get(const struct amil_json_value *obj, const char *key);

/** Element @i of array @arr, or NULL (not an array, out of range).  O(i):
 *  to walk an array use amil_json_first()/amil_json_next(). */
const struct amil_json_value *amil_json_at(const struct amil_json_value *arr, size_t i);

/**
 * First element of an array or member of an object, and the one after @v
 * within the same container.  NULL at the end or when @container is not an
 * array or object.
 */
const struct amil_json_value *amil_json_first(const struct amil_json_value *container);
const struct amil_json_value *amil_json_next(const struct amil_json_value *v);

/** The key of @v when @v is an object member, else NULL. */
const char *amil_json_key(const struct amil_json_value *v);

/**
 * Number of elements (array), members (object) or bytes (string; the
 * decoded length, which counts an embedded \u0000).  0 for other types.
 */
size_t amil_json_len(const struct amil_json_value *v);

/** Decoded UTF-8 text of a string, or NULL when @v is not a string. */
const char *amil_json_str(const struct amil_json_value *v);

/** Text of a number exactly as written ("18446744073709551615", "-1.5e3"),
 *  or NULL when @v is not a number. */
const char *amil_json_num(const struct amil_json_value *v);

/**
 * Convert a number to an integer.  @return 0; -EINVAL when @v is not a
 * number or not an integer (fraction or exponent); -ERANGE when it does not
 * fit (negative for the u64 form).  @out is untouched on error.
 */
int amil_json_u64(const struct amil_json_value *v, uint64_t *out);
int amil_json_i64(const struct amil_json_value *v, int64_t *out);

/** True for JSON true; false for anything else (including NULL). */
bool amil_json_is_true(const struct amil_json_value *v);

/**
 * Write @v compactly (no spaces, one line) to @f: a valid JSON text that
 * parses back to an equal value, numbers as written.
 * @return 0 or -EIO (a write failed).
 */
int amil_json_write(const struct amil_json_value *v, FILE *f);

/**
 * Write @len bytes at @s to @f as a JSON string literal with quotes,
 * escaping '"', '\\' and control characters.  @return 0 or -EIO.
 */
int amil_json_write_string(const char *s, size_t len, FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CP_JSON_H */
