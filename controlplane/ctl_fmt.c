/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amilctl output primitives (see ctl_fmt.h). */
#include "ctl_fmt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
amil_ctl_put(const struct amil_ctl_out *o, const char *sgr, const char *text)
{
	if (o->colour && sgr != NULL && sgr[0] != '\0')
		fprintf(o->f, "%s%s%s", sgr, text, AMIL_CTL_RESET);
	else
		fputs(text, o->f);
}

const char *
amil_ctl_state_colour(const char *s)
{
	static const struct {
		const char *word, *sgr;
	} map[] = {
		{"alive", AMIL_CTL_GREEN},    {"ok", AMIL_CTL_GREEN},
		{"up", AMIL_CTL_GREEN},       {"nodeup", AMIL_CTL_GREEN},
		{"unsuspect", AMIL_CTL_GREEN}, {"dataplane_up", AMIL_CTL_GREEN},
		{"suspect", AMIL_CTL_YELLOW}, {"degraded", AMIL_CTL_YELLOW},
		{"unknown", AMIL_CTL_YELLOW}, {"dead", AMIL_CTL_RED},
		{"down", AMIL_CTL_RED},       {"alone", AMIL_CTL_RED},
		{"nodedown", AMIL_CTL_RED},   {"dataplane_down", AMIL_CTL_RED},
		{"left", AMIL_CTL_DIM},       {"disabled", AMIL_CTL_DIM},
	};

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].word) == 0)
			return map[i].sgr;
	return NULL;
}

size_t
amil_ctl_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

char *
amil_ctl_rfc3339(uint64_t ns, char buf[AMIL_CTL_TIME_LEN])
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (gmtime_r(&sec, &tm) == NULL) {
		snprintf(buf, AMIL_CTL_TIME_LEN, "?");
		return buf;
	}
	snprintf(buf, AMIL_CTL_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ns % 1000000000u / 1000000u));
	return buf;
}

char *
amil_ctl_duration(uint64_t ns, char buf[AMIL_CTL_TIME_LEN])
{
	uint64_t ms = ns / 1000000u, s = ns / 1000000000u;

	if (ms < 1000)
		snprintf(buf, AMIL_CTL_TIME_LEN, "%" PRIu64 "ms", ms);
	else if (s < 60)
		snprintf(buf, AMIL_CTL_TIME_LEN, "%" PRIu64 ".%" PRIu64 "s", s, ms % 1000 / 100);
	else if (s < 3600)
		snprintf(buf, AMIL_CTL_TIME_LEN, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, AMIL_CTL_TIME_LEN, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, AMIL_CTL_TIME_LEN, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

char *
amil_ctl_ago(uint64_t then_ns, uint64_t now_ns, char buf[AMIL_CTL_TIME_LEN])
{
	char d[AMIL_CTL_TIME_LEN];
	uint64_t delta = now_ns >= then_ns ? now_ns - then_ns : then_ns - now_ns;

	/* Below a second, "ms" reads oddly for an age: show tenths of a second. */
	if (delta < 1000000000u)
		snprintf(d, sizeof(d), "0.%" PRIu64 "s", delta / 100000000u);
	else
		amil_ctl_duration(delta, d);
	if (now_ns >= then_ns)
		snprintf(buf, AMIL_CTL_TIME_LEN, "%.40s ago", d);
	else
		snprintf(buf, AMIL_CTL_TIME_LEN, "in %.40s", d);
	return buf;
}

int
amil_ctl_money(const char *minor, unsigned exponent, char *buf, size_t cap)
{
	const char *d = minor;
	size_t nd, k = 0;
	bool neg = false;

	if (cap == 0)
		return -EINVAL;
	if (*d == '-') {
		neg = true;
		d++;
	}
	nd = strlen(d);
	if (nd == 0 || nd > 40 || exponent > 18 || strspn(d, "0123456789") != nd ||
	    nd + exponent + 4 > cap) {
		snprintf(buf, cap, "%s", minor);
		return -EINVAL;
	}
	/* Drop leading zeros but keep one digit. */
	while (nd > 1 && *d == '0') {
		d++;
		nd--;
	}
	if (neg && !(nd == 1 && *d == '0'))
		buf[k++] = '-';
	if (exponent == 0) {
		memcpy(buf + k, d, nd);
		buf[k + nd] = '\0';
		return 0;
	}
	if (nd <= exponent) {
		buf[k++] = '0';
		buf[k++] = '.';
		for (size_t i = 0; i < exponent - nd; i++)
			buf[k++] = '0';
		memcpy(buf + k, d, nd);
		buf[k + nd] = '\0';
		return 0;
	}
	memcpy(buf + k, d, nd - exponent);
	k += nd - exponent;
	buf[k++] = '.';
	memcpy(buf + k, d + nd - exponent, exponent);
	buf[k + exponent] = '\0';
	return 0;
}

struct amil_ctl_table {
	unsigned ncols;
	char **head;            /* [ncols], without the '>' */
	bool *right;            /* [ncols] */
	char **cell;            /* [rows * ncols] */
	const char **sgr;       /* [rows * ncols], static strings */
	size_t rows, cap;
};

struct amil_ctl_table *
amil_ctl_table_new(unsigned ncols, const char *const *headers)
{
	struct amil_ctl_table *t;

	if (ncols == 0 || headers == NULL) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto fail_table;
	t->ncols = ncols;
	t->head = calloc(ncols, sizeof(*t->head));
	t->right = calloc(ncols, sizeof(*t->right));
	if (t->head == NULL || t->right == NULL)
		goto fail_cols;
	for (unsigned i = 0; i < ncols; i++) {
		const char *h = headers[i] != NULL ? headers[i] : "";

		t->right[i] = h[0] == '>';
		t->head[i] = strdup(h + t->right[i]);
		if (t->head[i] == NULL)
			goto fail_cols;
	}
	return t;

fail_cols:
	amil_ctl_table_destroy(&t);
fail_table:
	errno = ENOMEM;
	return NULL;
}

void
amil_ctl_table_destroy(struct amil_ctl_table **tp)
{
	struct amil_ctl_table *t;

	if (tp == NULL || *tp == NULL)
		return;
	t = *tp;
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		free(t->cell[i]);
	for (unsigned i = 0; t->head != NULL && i < t->ncols; i++)
		free(t->head[i]);
	free(t->cell);
	free(t->sgr);
	free(t->head);
	free(t->right);
	free(t);
	*tp = NULL;
}

int
amil_ctl_table_add(struct amil_ctl_table *t, const char *const *cells, const char *const *sgr)
{
	size_t base = t->rows * t->ncols;

	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cell, cap * t->ncols * sizeof(*nc));

		if (nc == NULL)
			return -ENOMEM;
		t->cell = nc;
		const char **ns = realloc(t->sgr, cap * t->ncols * sizeof(*ns));

		if (ns == NULL)
			return -ENOMEM;
		t->sgr = ns;
		t->cap = cap;
	}
	for (unsigned i = 0; i < t->ncols; i++) {
		t->cell[base + i] = strdup(cells[i] != NULL ? cells[i] : "-");
		t->sgr[base + i] = sgr != NULL ? sgr[i] : NULL;
		if (t->cell[base + i] == NULL) {
			while (i-- > 0)
				free(t->cell[base + i]);
			return -ENOMEM;
		}
	}
	t->rows++;
	return 0;
}

size_t
amil_ctl_table_rows(const struct amil_ctl_table *t)
{
	return t->rows;
}

static void
print_cell(const struct amil_ctl_out *o, const char *text, const char *sgr, size_t width,
	   bool right, bool last)
{
	size_t pad = width - amil_ctl_width(text);

	if (right)
		fprintf(o->f, "%*s", (int)pad, "");
	amil_ctl_put(o, sgr, text);
	/* No trailing blanks after the last column: they upset diff and grep. */
	if (!right && !last)
		fprintf(o->f, "%*s", (int)pad, "");
}

void
amil_ctl_table_print(const struct amil_ctl_table *t, const struct amil_ctl_out *o,
		     const char *indent)
{
	size_t *w = calloc(t->ncols, sizeof(*w));

	if (w == NULL)
		return;
	for (unsigned c = 0; c < t->ncols; c++) {
		w[c] = amil_ctl_width(t->head[c]);
		for (size_t r = 0; r < t->rows; r++) {
			size_t x = amil_ctl_width(t->cell[r * t->ncols + c]);

			if (x > w[c])
				w[c] = x;
		}
	}
	fputs(indent, o->f);
	for (unsigned c = 0; c < t->ncols; c++) {
		if (c)
			fputs("  ", o->f);
		print_cell(o, t->head[c], AMIL_CTL_BOLD, w[c], t->right[c], c + 1 == t->ncols);
	}
	fputc('\n', o->f);
	for (size_t r = 0; r < t->rows; r++) {
		fputs(indent, o->f);
		for (unsigned c = 0; c < t->ncols; c++) {
			if (c)
				fputs("  ", o->f);
			print_cell(o, t->cell[r * t->ncols + c], t->sgr[r * t->ncols + c], w[c],
				   t->right[c], c + 1 == t->ncols);
		}
		fputc('\n', o->f);
	}
	free(w);
}
