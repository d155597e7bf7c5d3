/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Centers table: parse once at start-up, then read-only lookups from every
 * worker.
 *
 * Layout.  The centers live in an array in file order (which
 * amil_centers_get() exposes).  The hash is a separate array of 8-byte slots
 * {center_id, index + 1}, open addressing with linear probing, sized to a
 * power of two at least twice the number of centers, so the expected probe
 * length stays near one and a lookup reads one slot line plus one entry
 * line.  Keeping the 16-byte keys out of the slots keeps the probed array
 * small (16 MiB of slots for the 1,000,000-center limit instead of 48 MiB).
 *
 * The hash is built while parsing (doubling when half full) rather than
 * after, so a duplicate id is reported at its line before any later syntax
 * error: the first problem in the file is the one reported.
 */
#include "amil_centers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS_MIN 16u
#define TOKEN_SHOWN_MAX 40   /* characters of a bad token quoted in a message */

struct entry {
	uint32_t id;
	uint32_t line;            /* 1-based line of the definition, for messages */
	uint8_t key[AMIL_KEY_LEN];
};

struct slot {
	uint32_t id;
	uint32_t idx1;            /* index into entries + 1; 0 = empty */
};

struct amil_centers {
	uint32_t count;
	uint32_t cap;             /* entries allocated */
	uint32_t mask;            /* slot count - 1 (power of two) */
	uint32_t shift;           /* 64 - log2(slot count), for the hash */
	struct entry *entries;    /* file order */
	struct slot *slots;
};

/* Fibonacci hashing: multiply by 2^64/phi, keep the top bits.  Sequential
 * center ids (the common case) spread evenly over the table. */
static inline uint32_t
slot_of(const struct amil_centers *c, uint32_t id)
{
	return (uint32_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> c->shift);
}

static struct slot *
find_slot(const struct amil_centers *c, uint32_t id)
{
	uint32_t i = slot_of(c, id);

	/* Terminates: the table is never more than half full. */
	for (;;) {
		struct slot *s = &c->slots[i];

		if (s->idx1 == 0 || s->id == id)
			return s;
		i = (i + 1) & c->mask;
	}
}

static int
resize_slots(struct amil_centers *c, uint32_t nslots)
{
	struct slot *old = c->slots;
	uint32_t oldn = old != NULL ? c->mask + 1 : 0;
	uint32_t bits = 0;

	while ((1u << bits) < nslots)
		bits++;
	c->slots = calloc(nslots, sizeof(*c->slots));
	if (c->slots == NULL) {
		c->slots = old;
		return -ENOMEM;
	}
	c->mask = nslots - 1;
	c->shift = 64 - bits;
	for (uint32_t i = 0; i < oldn; i++)
		if (old[i].idx1 != 0)
			*find_slot(c, old[i].id) = old[i];
	free(old);
	return 0;
}

/* errno-style result; the caller turns it into a message. */
static int
add_center(struct amil_centers *c, uint32_t id, const uint8_t key[AMIL_KEY_LEN], uint32_t line,
	   uint32_t *prev_line)
{
	struct slot *s;
	struct entry *e;

	s = find_slot(c, id);
	if (s->idx1 != 0) {
		*prev_line = c->entries[s->idx1 - 1].line;
		return -EEXIST;
	}
	if (c->count >= AMIL_CENTERS_MAX)
		return -E2BIG;
	if (c->count == c->cap) {
		uint32_t ncap = c->cap ? c->cap * 2 : 64;
		struct entry *ne;

		if (ncap > AMIL_CENTERS_MAX)
			ncap = AMIL_CENTERS_MAX;
		ne = realloc(c->entries, (size_t)ncap * sizeof(*ne));
		if (ne == NULL)
			return -ENOMEM;
		c->entries = ne;
		c->cap = ncap;
	}
	e = &c->entries[c->count];
	e->id = id;
	e->line = line;
	memcpy(e->key, key, AMIL_KEY_LEN);
	s->id = id;
	s->idx1 = ++c->count;
	/* Keep slots >= 2 * count: the invariant the lookup cost relies on. */
	if ((uint64_t)c->count * 2 > (uint64_t)c->mask + 1)
		return resize_slots(c, (c->mask + 1) * 2);
	return 0;
}

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Quote a token from untrusted input: bounded, non-printables as '?'. */
static const char *
shown(char *out, const char *tok, size_t len)
{
	size_t n = len < TOKEN_SHOWN_MAX ? len : TOKEN_SHOWN_MAX;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)tok[i];

		out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	if (len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static bool
is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool
parse_id(const char *tok, size_t len, uint32_t *id)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)      /* 4294967295 has ten digits */
		return false;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(tok[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Split one line (comment already cut off) into at most 3 tokens; returns
 * how many were found, 3 meaning "three or more". */
static int
split(const char *p, const char *end, const char *tok[3], size_t toklen[3])
{
	int n = 0;

	while (n < 3) {
		while (p < end && is_space(*p))
			p++;
		if (p == end)
			break;
		tok[n] = p;
		while (p < end && !is_space(*p))
			p++;
		toklen[n] = (size_t)(p - tok[n]);
		n++;
	}
	return n;
}

/* Parse one non-comment line.  Returns 0, or -EINVAL / -ENOMEM with @err set. */
static int
parse_line(struct amil_centers *c, const char *p, const char *end, const char *name,
	   uint32_t line, char *err, size_t errlen)
{
	char q[TOKEN_SHOWN_MAX + 4];
	const char *tok[3];
	size_t toklen[3];
	uint8_t key[AMIL_KEY_LEN];
	uint32_t id, prev_line = 0;
	int n, rc;

	n = split(p, end, tok, toklen);
	if (n == 0)
		return 0;
	if (!parse_id(tok[0], toklen[0], &id)) {
		set_err(err, errlen, "%s:%u: bad center_id '%s' (want decimal 0..4294967295)", name,
			line, shown(q, tok[0], toklen[0]));
		return -EINVAL;
	}
	if (n < 2) {
		set_err(err, errlen, "%s:%u: center %u has no key (want 32 hex digits)", name, line,
			id);
		return -EINVAL;
	}
	if (toklen[1] != 2 * AMIL_KEY_LEN) {
		set_err(err, errlen, "%s:%u: key must be 32 hex digits, got %zu", name, line,
			toklen[1]);
		return -EINVAL;
	}
	for (size_t i = 0; i < 2 * AMIL_KEY_LEN; i++) {
		int v = hexval(tok[1][i]);

		if (v < 0) {
			/* Name the column, not the key: it is a secret. */
			set_err(err, errlen, "%s:%u: key has a non-hex digit at position %zu", name,
				line, i + 1);
			return -EINVAL;
		}
		if (i % 2 == 0)
			key[i / 2] = (uint8_t)(v << 4);
		else
			key[i / 2] |= (uint8_t)v;
	}
	if (n > 2) {
		set_err(err, errlen, "%s:%u: unexpected '%s' after the key (one center per line)",
			name, line, shown(q, tok[2], toklen[2]));
		return -EINVAL;
	}
	rc = add_center(c, id, key, line, &prev_line);
	switch (rc) {
	case 0:
		return 0;
	case -EEXIST:
		set_err(err, errlen, "%s:%u: center %u already defined on line %u", name, line, id,
			prev_line);
		return -EINVAL;
	case -E2BIG:
		set_err(err, errlen, "%s:%u: too many centers (limit %u)", name, line,
			AMIL_CENTERS_MAX);
		return -EINVAL;
	default:
		set_err(err, errlen, "%s:%u: out of memory", name, line);
		return rc;
	}
}

struct amil_centers *
amil_centers_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
	struct amil_centers *c;
	const char *p = text, *end = text + len;
	uint32_t line = 0;
	int rc;

	if (name == NULL)
		name = "centers";
	set_err(err, errlen, "%s", "");
	if (len > AMIL_CENTERS_FILE_MAX_BYTES) {
		set_err(err, errlen, "%s: too large (%zu bytes, limit %u)", name, len,
			AMIL_CENTERS_FILE_MAX_BYTES);
		errno = EFBIG;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail_nomem;
	if (resize_slots(c, SLOTS_MIN) != 0)
		goto fail_nomem;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol != NULL ? eol + 1 : end;
		const char *hash;

		if (eol == NULL)
			eol = end;
		line++;
		if (eol > p && eol[-1] == '\r')     /* CRLF */
			eol--;
		hash = memchr(p, '#', (size_t)(eol - p));
		if (hash != NULL)
			eol = hash;
		rc = parse_line(c, p, eol, name, line, err, errlen);
		if (rc != 0) {
			amil_centers_free(c);
			errno = -rc;
			return NULL;
		}
		p = next;
	}
	if (c->count == 0) {
		set_err(err, errlen, "%s: no centers defined", name);
		amil_centers_free(c);
		errno = EINVAL;
		return NULL;
	}
	return c;

fail_nomem:
	set_err(err, errlen, "%s: out of memory", name);
	amil_centers_free(c);
	errno = ENOMEM;
	return NULL;
}

/* Read a whole file of at most AMIL_CENTERS_FILE_MAX_BYTES.  Returns 0 or a
 * negative errno. */
static int
read_file(const char *path, char **buf_out, size_t *len_out)
{
	struct stat st;
	size_t cap, len = 0;
	char *buf = NULL;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto close_fd;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto close_fd;
	}
	if (S_ISREG(st.st_mode) && st.st_size > (off_t)AMIL_CENTERS_FILE_MAX_BYTES) {
		rc = -EFBIG;
		goto close_fd;
	}
	/* Read up to one byte past the limit, which catches files that grew
	 * since fstat() and pipes whose size fstat() does not know. */
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	buf = malloc(cap);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto close_fd;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t ncap = cap * 2;
			char *nb;

			if (cap > AMIL_CENTERS_FILE_MAX_BYTES) {
				rc = -EFBIG;
				goto free_buf;
			}
			if (ncap > (size_t)AMIL_CENTERS_FILE_MAX_BYTES + 1)
				ncap = (size_t)AMIL_CENTERS_FILE_MAX_BYTES + 1;
			nb = realloc(buf, ncap);
			if (nb == NULL) {
				rc = -ENOMEM;
				goto free_buf;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto free_buf;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > AMIL_CENTERS_FILE_MAX_BYTES) {
		rc = -EFBIG;
		goto free_buf;
	}
	close(fd);
	*buf_out = buf;
	*len_out = len;
	return 0;

free_buf:
	free(buf);
close_fd:
	close(fd);
	return rc;
}

struct amil_centers *
amil_centers_load(const char *path, char *err, size_t errlen)
{
	struct amil_centers *c;
	char *buf = NULL;
	size_t len = 0;
	int rc, saved;

	rc = read_file(path, &buf, &len);
	if (rc != 0) {
		if (rc == -EFBIG)
			set_err(err, errlen, "%s: too large (limit %u bytes)", path,
				AMIL_CENTERS_FILE_MAX_BYTES);
		else
			set_err(err, errlen, "%s: %s", path, strerror(-rc));
		errno = -rc;
		return NULL;
	}
	c = amil_centers_parse(buf, len, path, err, errlen);
	saved = errno;
	/* The buffer held every key in hex: clear it before giving it back. */
	explicit_bzero(buf, len);
	free(buf);
	errno = saved;
	return c;
}

void
amil_centers_free(struct amil_centers *c)
{
	int saved = errno;

	if (c == NULL)
		return;
	if (c->entries != NULL)
		explicit_bzero(c->entries, (size_t)c->cap * sizeof(*c->entries));
	free(c->entries);
	free(c->slots);
	free(c);
	errno = saved;   /* callers set errno just before freeing on error paths */
}

uint32_t
amil_centers_count(const struct amil_centers *c)
{
	return c != NULL ? c->count : 0;
}

const uint8_t *
amil_centers_key(const struct amil_centers *c, uint32_t center_id)
{
	const struct slot *s;

	if (c == NULL)
		return NULL;
	s = find_slot(c, center_id);
	return s->idx1 != 0 ? c->entries[s->idx1 - 1].key : NULL;
}

int
amil_centers_get(const struct amil_centers *c, uint32_t i, uint32_t *center_id,
		 uint8_t key[AMIL_KEY_LEN])
{
	if (c == NULL || i >= c->count)
		return -ERANGE;
	if (center_id != NULL)
		*center_id = c->entries[i].id;
	if (key != NULL)
		memcpy(key, c->entries[i].key, AMIL_KEY_LEN);
	return 0;
}
