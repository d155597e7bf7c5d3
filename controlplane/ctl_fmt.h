/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amilctl's human output primitives: aligned tables, times (RFC 3339 and
 * "3.2s ago"), exact decimal money, and ANSI colours that are used only
 * when the caller says so (stdout is a TTY and NO_COLOR is unset: decided
 * once in amilctl.c).
 *
 * Widths count UTF-8 code points, not bytes, so a node named "Zürich-1"
 * still lines up; colour escapes are kept apart from the text so they never
 * count either.
 */
#ifndef AMIL_CTL_FMT_H
#define AMIL_CTL_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the buffers the time formatters write. */
#define AMIL_CTL_TIME_LEN 48

/* ANSI SGR sequences; "" for none. */
#define AMIL_CTL_GREEN  "\033[32m"
#define AMIL_CTL_YELLOW "\033[33m"
#define AMIL_CTL_RED    "\033[31m"
#define AMIL_CTL_DIM    "\033[2m"
#define AMIL_CTL_BOLD   "\033[1m"
#define AMIL_CTL_RESET  "\033[0m"

/* Where and how a renderer writes. */
struct amil_ctl_out {
	FILE *f;
	bool colour;        /* emit ANSI colours */
	uint64_t now_ns;    /* CLOCK_REALTIME, for "ago" (one value per screen) */
};

/** Write @text to @o, wrapped in @sgr when colours are on and @sgr is not
 *  NULL or "". */
void amil_ctl_put(const struct amil_ctl_out *o, const char *sgr, const char *text);

/** The colour for a state word: alive/ok/up green, suspect/degraded/unknown
 *  yellow, dead/down/alone red, left/disabled dim; NULL for anything else. */
const char *amil_ctl_state_colour(const char *state);

/** Display width of UTF-8 @s: code points, not bytes. */
size_t amil_ctl_width(const char *s);

/** "2026-11-25T10:00:00.123Z" for @ns since the epoch (UTC, milliseconds).
 *  @return @buf. */
char *amil_ctl_rfc3339(uint64_t ns, char buf[AMIL_CTL_TIME_LEN]);

/**
 * Age of @then_ns at @now_ns: "0.4s ago", "3.2s ago", "4m12s ago",
 * "2h03m ago", "3d04h ago"; "in 1.5s" for a time in the future (clock
 * skew between nodes).  @return @buf.
 */
char *amil_ctl_ago(uint64_t then_ns, uint64_t now_ns, char buf[AMIL_CTL_TIME_LEN]);

/** A duration of @ns: "850ms", "12.5s", "4m12s", "2h03m", "3d04h".
 *  @return @buf. */
char *amil_ctl_duration(uint64_t ns, char buf[AMIL_CTL_TIME_LEN]);

/**
 * "123456" at @exponent 2 -> "1234.56"; "-5" at 2 -> "-0.05".  Exact: works
 * on the digits, so 128-bit totals print without rounding.
 * @return 0, or -EINVAL when @minor is not an optional '-' and 1..40
 *   digits or @exponent > 18 (then @buf holds @minor unchanged, cut to fit).
 */
int amil_ctl_money(const char *minor, unsigned exponent, char *buf, size_t cap);

/* An aligned table: headers, then rows of cells, printed with two spaces
 * between columns.  A header starting with '>' right-aligns that column
 * (the '>' is not printed): use it for numbers. */
struct amil_ctl_table;

/** @return a table of @ncols columns (caller owns it:
 *  amil_ctl_table_destroy()), or NULL with errno ENOMEM/EINVAL.  Headers are
 *  copied. */
struct amil_ctl_table *amil_ctl_table_new(unsigned ncols, const char *const *headers);

/** Free @*tp and set it to NULL; accepts NULL. */
void amil_ctl_table_destroy(struct amil_ctl_table **tp);

/**
 * Add a row: @cells[ncols] texts (NULL prints as "-"; copied), @sgr[ncols]
 * colours or NULL for none (an entry may be NULL; the pointers are kept, so
 * pass the AMIL_CTL_* constants or other static strings).
 * @return 0 or -ENOMEM.
 */
int amil_ctl_table_add(struct amil_ctl_table *t, const char *const *cells, const char *const *sgr);

/** Rows added so far. */
size_t amil_ctl_table_rows(const struct amil_ctl_table *t);

/** Print the header (bold when colours are on) and the rows, each line
 *  starting with @indent. */
void amil_ctl_table_print(const struct amil_ctl_table *t, const struct amil_ctl_out *o,
			  const char *indent);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CTL_FMT_H */
