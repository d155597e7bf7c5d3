/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-donate's input parsers (contract in donate_input.h).
 *
 * The CSV reader works line by line on a NUL-free copy of one line at a
 * time: rows are short (six numbers and a code), so a 4 KiB line limit is
 * generous and keeps every cell in a fixed buffer.
 */
#include "donate_input.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium/utils.h>

#define LINE_MAX_BYTES 4096
#define SHOW_MAX 40     /* bytes of a bad value echoed in a message */
#define KEY_FILE_MAX 4096

static const char *const field_names[AMIL_DONATE_FIELD_MAX] = {
	[AMIL_DONATE_DONATION_ID] = "donation_id",
	[AMIL_DONATE_AMOUNT] = "amount",
	[AMIL_DONATE_CURRENCY] = "currency",
	[AMIL_DONATE_EXPONENT] = "exponent",
	[AMIL_DONATE_CAMPAIGN] = "campaign",
	[AMIL_DONATE_DONOR] = "donor",
};

const char *
amil_donate_field_name(unsigned field)
{
	return field < AMIL_DONATE_FIELD_MAX ? field_names[field] : "?";
}

static void
msg(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;

	if (out == NULL || outlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
}

/* @v as it may appear in a message: printable, at most SHOW_MAX bytes. */
static void
show(char out[SHOW_MAX + 4], const char *v)
{
	size_t i;

	for (i = 0; v[i] != '\0' && i < SHOW_MAX; i++)
		out[i] = isprint((unsigned char)v[i]) ? v[i] : '?';
	if (v[i] != '\0') {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

/* Decimal digits only (no sign, no spaces, no "0x"): strtoull() would
 * accept " +12" and "-1" (as a huge value), which we want to refuse. */
static int
parse_u64(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		unsigned dgt;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		dgt = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - dgt) / 10)
			return -ERANGE;
		x = x * 10 + dgt;
	}
	*v = x;
	return 0;
}

void
amil_donate_defaults(struct amil_donation *d)
{
	memset(d, 0, sizeof(*d));
	d->exponent = AMIL_DONATE_EXPONENT_DEFAULT;
}

static int
set_amount(struct amil_donation *d, const char *value, const char *shown, char *why,
	   size_t whylen)
{
	const char *digits = value[0] == '-' ? value + 1 : value;
	uint64_t v = 0;             /* set by parse_u64 on success; quiets -Wmaybe-uninitialized */
	int r = parse_u64(digits, &v);

	if (r == -EINVAL) {
		msg(why, whylen, "'%s' is not an integer number of minor units", shown);
		return -EINVAL;
	}
	if (r != 0 || digits != value || v < (uint64_t)AMIL_AMOUNT_MIN_MINOR ||
	    v > (uint64_t)AMIL_AMOUNT_MAX_MINOR) {
		msg(why, whylen, "'%s' is out of range %" PRId64 "..%" PRId64 " minor units", shown,
		    (int64_t)AMIL_AMOUNT_MIN_MINOR, (int64_t)AMIL_AMOUNT_MAX_MINOR);
		return -EINVAL;
	}
	d->amount_minor = (int64_t)v;
	return 0;
}

int
amil_donate_field_set(struct amil_donation *d, unsigned field, const char *value, char *why,
		      size_t whylen)
{
	char shown[SHOW_MAX + 4];
	uint64_t v;

	show(shown, value);
	if (value[0] == '\0' && field < AMIL_DONATE_FIELD_MAX) {
		msg(why, whylen, "is empty");
		return -EINVAL;
	}
	switch (field) {
	case AMIL_DONATE_DONATION_ID:
		if (parse_u64(value, &v) != 0 || v == 0) {
			msg(why, whylen, "'%s' is not a donation id 1..%" PRIu64, shown, UINT64_MAX);
			return -EINVAL;
		}
		d->donation_id = v;
		return 0;
	case AMIL_DONATE_AMOUNT:
		return set_amount(d, value, shown, why, whylen);
	case AMIL_DONATE_CURRENCY:
		if (strlen(value) != AMIL_CURRENCY_LEN || amil_currency_index(value) < 0) {
			msg(why, whylen, "'%s' is not an ISO 4217 code of three capitals (e.g. SAR)",
			    shown);
			return -EINVAL;
		}
		memcpy(d->currency, value, AMIL_CURRENCY_LEN);
		return 0;
	case AMIL_DONATE_EXPONENT:
		if (parse_u64(value, &v) != 0 || v > AMIL_EXPONENT_MAX) {
			msg(why, whylen, "'%s' is not an exponent 0..%d", shown, AMIL_EXPONENT_MAX);
			return -EINVAL;
		}
		d->exponent = (uint8_t)v;
		return 0;
	case AMIL_DONATE_CAMPAIGN:
		if (parse_u64(value, &v) != 0 || v > UINT32_MAX) {
			msg(why, whylen, "'%s' is not a campaign id 0..%" PRIu32, shown, UINT32_MAX);
			return -EINVAL;
		}
		d->campaign_id = (uint32_t)v;
		return 0;
	case AMIL_DONATE_DONOR:
		if (parse_u64(value, &v) != 0) {
			msg(why, whylen, "'%s' is not a donor id 0..%" PRIu64 " (0 = anonymous)", shown,
			    UINT64_MAX);
			return -EINVAL;
		}
		d->donor_id = v;
		return 0;
	default:
		msg(why, whylen, "unknown field %u", field);
		return -EINVAL;
	}
}

/* ---- CSV ----------------------------------------------------------------- */

struct csv {
	const char *name;
	char *err;
	size_t errlen;
	unsigned line;
	int col[AMIL_DONATE_FIELD_MAX];  /* column index of each field, -1 = absent */
	unsigned ncols;
	struct amil_donate_row *rows;
	size_t nrows, cap;
};

static bool
blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0';
}

/*
 * Split @line (modified in place) into at most @max cells, trimmed and
 * unquoted.  @return the number of cells, or -1 with the message set.
 * More than @max cells still counts them (cells beyond @max are dropped)
 * so the caller can report "expected 6, got 7".
 */
static int
split(struct csv *c, char *line, char **cells, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *start, *w;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"') {
			start = w = ++p;
			for (;;) {
				if (*p == '\0') {
					msg(c->err, c->errlen, "%s:%u: field %d: unterminated quote",
					    c->name, c->line, n + 1);
					return -1;
				}
				if (*p == '"' && p[1] == '"') {
					*w++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*w++ = *p++;
				}
			}
			*w = '\0';
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != ',' && *p != '\0') {
				msg(c->err, c->errlen,
				    "%s:%u: field %d: text after the closing quote", c->name,
				    c->line, n + 1);
				return -1;
			}
		} else {
			char *end;

			start = p;
			while (*p != ',' && *p != '\0')
				p++;
			end = p;
			while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (memchr(start, '"', (size_t)(end - start)) != NULL) {
				msg(c->err, c->errlen,
				    "%s:%u: field %d: a quote inside an unquoted field", c->name,
				    c->line, n + 1);
				return -1;
			}
			w = end;
		}
		{
			bool more = *p == ',';

			*w = '\0';
			if (n < max)
				cells[n] = start;
			n++;
			if (!more)
				return n;
			p++;
		}
	}
}

static int
header(struct csv *c, char *line)
{
	char *cells[AMIL_DONATE_FIELD_MAX + 1];
	int n = split(c, line, cells, AMIL_DONATE_FIELD_MAX + 1);

	if (n < 0)
		return -EINVAL;
	for (unsigned f = 0; f < AMIL_DONATE_FIELD_MAX; f++)
		c->col[f] = -1;
	if (n > AMIL_DONATE_FIELD_MAX) {
		msg(c->err, c->errlen, "%s:%u: header has %d columns, at most %d are known",
		    c->name, c->line, n, AMIL_DONATE_FIELD_MAX);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		char shown[SHOW_MAX + 4];
		unsigned f;

		for (char *q = cells[i]; *q != '\0'; q++)
			*q = (char)tolower((unsigned char)*q);
		for (f = 0; f < AMIL_DONATE_FIELD_MAX; f++)
			if (strcmp(cells[i], field_names[f]) == 0)
				break;
		show(shown, cells[i]);
		if (f == AMIL_DONATE_FIELD_MAX) {
			msg(c->err, c->errlen,
			    "%s:%u: unknown column '%s' (known: donation_id, amount, currency, "
			    "exponent, campaign, donor)", c->name, c->line, shown);
			return -EINVAL;
		}
		if (c->col[f] >= 0) {
			msg(c->err, c->errlen, "%s:%u: column '%s' appears twice", c->name, c->line,
			    shown);
			return -EINVAL;
		}
		c->col[f] = i;
	}
	for (unsigned f = 0; f <= AMIL_DONATE_CURRENCY; f++) {
		if (c->col[f] < 0) {
			msg(c->err, c->errlen,
			    "%s:%u: header lacks the required column '%s' (header row: "
			    "donation_id,amount,currency,exponent,campaign,donor)",
			    c->name, c->line, field_names[f]);
			return -EINVAL;
		}
	}
	c->ncols = (unsigned)n;
	return 0;
}

static int
row(struct csv *c, char *line)
{
	char *cells[AMIL_DONATE_FIELD_MAX + 1], why[160];
	struct amil_donate_row *r;
	int n = split(c, line, cells, AMIL_DONATE_FIELD_MAX + 1);

	if (n < 0)
		return -EINVAL;
	if ((unsigned)n != c->ncols) {
		msg(c->err, c->errlen, "%s:%u: expected %u fields as in the header, got %d", c->name,
		    c->line, c->ncols, n);
		return -EINVAL;
	}
	if (c->nrows == AMIL_DONATE_CSV_MAX_ROWS) {
		msg(c->err, c->errlen, "%s:%u: more than %u donations in one file", c->name, c->line,
		    AMIL_DONATE_CSV_MAX_ROWS);
		return -EFBIG;
	}
	if (c->nrows == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct amil_donate_row *nr = realloc(c->rows, cap * sizeof(*nr));

		if (nr == NULL) {
			msg(c->err, c->errlen, "%s: out of memory", c->name);
			return -ENOMEM;
		}
		c->rows = nr;
		c->cap = cap;
	}
	r = &c->rows[c->nrows];
	r->line = c->line;
	amil_donate_defaults(&r->d);
	for (unsigned f = 0; f < AMIL_DONATE_FIELD_MAX; f++) {
		if (c->col[f] < 0)
			continue;
		if (amil_donate_field_set(&r->d, f, cells[c->col[f]], why, sizeof(why)) != 0) {
			msg(c->err, c->errlen, "%s:%u: %s: %s", c->name, c->line, field_names[f], why);
			return -EINVAL;
		}
	}
	c->nrows++;
	return 0;
}

struct id_line {
	uint64_t id;
	unsigned line;
};

static int
cmp_id_line(const void *a, const void *b)
{
	const struct id_line *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Refuse a donation_id used twice, naming the earliest second use. */
static int
unique_ids(struct csv *c)
{
	struct id_line *v = malloc(c->nrows * sizeof(*v));
	unsigned bad = 0, first = 0;
	uint64_t id = 0;

	if (v == NULL) {
		msg(c->err, c->errlen, "%s: out of memory", c->name);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->nrows; i++)
		v[i] = (struct id_line){c->rows[i].d.donation_id, c->rows[i].line};
	qsort(v, c->nrows, sizeof(*v), cmp_id_line);
	for (size_t i = 1; i < c->nrows; i++) {
		if (v[i].id == v[i - 1].id && (bad == 0 || v[i].line < bad)) {
			/* v[i - 1] may itself be a repeat: find the first use. */
			size_t j = i - 1;

			while (j > 0 && v[j - 1].id == v[i].id)
				j--;
			bad = v[i].line;
			first = v[j].line;
			id = v[i].id;
		}
	}
	free(v);
	if (bad != 0) {
		msg(c->err, c->errlen, "%s:%u: donation_id: %" PRIu64 " already used on line %u",
		    c->name, bad, id, first);
		return -EINVAL;
	}
	return 0;
}

int
amil_donate_csv_parse(const char *text, size_t len, const char *name,
		      struct amil_donate_row **rows, size_t *nrows, char *err, size_t errlen)
{
	struct csv c = {.name = name, .err = err, .errlen = errlen};
	char line[LINE_MAX_BYTES + 1];
	size_t pos = 0;
	bool have_header = false;
	int rc = 0;

	*rows = NULL;
	*nrows = 0;
	if (len > AMIL_DONATE_CSV_MAX_BYTES) {
		msg(err, errlen, "%s: larger than %u bytes", name, AMIL_DONATE_CSV_MAX_BYTES);
		return -EFBIG;
	}
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;  /* spreadsheet exports start with a UTF-8 BOM */
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len, n = end - pos;

		c.line++;
		if (n > 0 && text[end - 1] == '\r')
			n--;
		if (n > LINE_MAX_BYTES) {
			msg(err, errlen, "%s:%u: line longer than %d bytes", name, c.line,
			    LINE_MAX_BYTES);
			rc = -EINVAL;
			goto fail;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos = end + 1;
		if (strlen(line) != n) {
			msg(err, errlen, "%s:%u: NUL byte in the line", name, c.line);
			rc = -EINVAL;
			goto fail;
		}
		if (blank(line) || line[strspn(line, " \t")] == '#')
			continue;
		rc = have_header ? row(&c, line) : header(&c, line);
		if (rc != 0)
			goto fail;
		have_header = true;
	}
	if (!have_header) {
		msg(err, errlen, "%s: no header row (expected e.g. "
		    "donation_id,amount,currency,exponent,campaign,donor)", name);
		rc = -EINVAL;
		goto fail;
	}
	if (c.nrows == 0) {
		msg(err, errlen, "%s: no donations after the header", name);
		rc = -EINVAL;
		goto fail;
	}
	rc = unique_ids(&c);
	if (rc != 0)
		goto fail;
	*rows = c.rows;
	*nrows = c.nrows;
	return 0;

fail:
	free(c.rows);
	return rc;
}

/* Read a whole small file; @max bounds it.  *@buf is the caller's. */
static int
slurp(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *b = NULL;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		msg(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		msg(err, errlen, "%s: %s", path, strerror(errno));
		goto fail_stat;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		rc = -EINVAL;
		msg(err, errlen, "%s: not a regular file", path);
		goto fail_stat;
	}
	b = malloc(max + 1);
	if (b == NULL) {
		rc = -ENOMEM;
		msg(err, errlen, "%s: out of memory", path);
		goto fail_stat;
	}
	for (;;) {
		ssize_t n = read(fd, b + got, max + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			msg(err, errlen, "%s: %s", path, strerror(errno));
			goto fail_read;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > max) {
			rc = -EFBIG;
			msg(err, errlen, "%s: larger than %zu bytes", path, max);
			goto fail_read;
		}
	}
	close(fd);
	*buf = b;
	*len = got;
	return 0;

fail_read:
	free(b);
fail_stat:
	close(fd);
	return rc;
}

int
amil_donate_csv_load(const char *path, struct amil_donate_row **rows, size_t *nrows,
		     char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	*rows = NULL;
	*nrows = 0;
	rc = slurp(path, AMIL_DONATE_CSV_MAX_BYTES, &buf, &len, err, errlen);
	if (rc != 0)
		return rc;
	rc = amil_donate_csv_parse(buf, len, path, rows, nrows, err, errlen);
	free(buf);
	return rc;
}

/* ---- key file ------------------------------------------------------------ */

static bool
all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

int
amil_donate_key_parse(const char *text, size_t len, const char *name,
		      uint8_t key[AMIL_KEY_LEN], char *err, size_t errlen)
{
	unsigned line = 0, key_line = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		const char *ls = text + pos, *s = ls, *e = text + end, *t;

		line++;
		pos = end + 1;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e || *s == '#')
			continue;
		if (key_line != 0) {
			msg(err, errlen,
			    "%s:%u: a second line; a key file holds only the key (32 hex digits, "
			    "first on line %u)", name, line, key_line);
			return -EINVAL;
		}
		key_line = line;
		for (t = s; t < e && !isspace((unsigned char)*t); t++)
			;
		if (t < e) {
			const char *k = t;

			while (k < e && isspace((unsigned char)*k))
				k++;
			if (e - k == 2 * AMIL_KEY_LEN && all_hex(k, (size_t)(e - k)))
				msg(err, errlen,
				    "%s:%u: this is a centers-file line ('<center_id> <key>'); the "
				    "key file holds only the 32 hex digits of this center's key",
				    name, line);
			else
				msg(err, errlen,
				    "%s:%u: expected only the key, 32 hex digits, on the line",
				    name, line);
			return -EINVAL;
		}
		if (e - s != 2 * AMIL_KEY_LEN) {
			msg(err, errlen, "%s:%u: key must be %d hex digits, got %td", name, line,
			    2 * AMIL_KEY_LEN, e - s);
			return -EINVAL;
		}
		for (t = s; t < e; t++) {
			if (!isxdigit((unsigned char)*t)) {
				/* By column, never echoed: it is (part of) a secret. */
				msg(err, errlen, "%s:%u: key has a non-hex character at column %td",
				    name, line, t - ls + 1);
				return -EINVAL;
			}
		}
		if (sodium_hex2bin(key, AMIL_KEY_LEN, s, (size_t)(e - s), NULL, NULL, NULL) != 0) {
			msg(err, errlen, "%s:%u: key is not 32 hex digits", name, line);
			return -EINVAL;
		}
	}
	if (key_line == 0) {
		msg(err, errlen, "%s: no key (expected one line of 32 hex digits)", name);
		return -EINVAL;
	}
	return 0;
}

int
amil_donate_key_load(const char *path, uint8_t key[AMIL_KEY_LEN], char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	rc = slurp(path, KEY_FILE_MAX, &buf, &len, err, errlen);
	if (rc != 0)
		return rc;
	rc = amil_donate_key_parse(buf, len, path, key, err, errlen);
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}
