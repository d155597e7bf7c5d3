/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Recursive-descent JSON reader (see cp_json.h for the contract).
 *
 * Memory: values live in one array that grows by doubling while parsing;
 * children and siblings are linked by index during the parse (the array may
 * move) and turned into pointers once at the end.  Decoded strings, keys and
 * number texts go to one arena allocated up front with 2 * len + 2 bytes,
 * which always suffices: every token decodes to at most its own length
 * (an escape never grows: "\u00e9" is 6 bytes in, 2 out; a surrogate pair 12
 * in, 4 out) plus one NUL, and there are at most len + 1 tokens.  So the
 * arena never moves and its pointers are stable from the start.
 */
#include "cp_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

struct amil_json_value {
	uint8_t type;                       /* enum amil_json_type */
	uint32_t len;                       /* string bytes, or element count */
	const char *text;                   /* string or number text, in the arena */
	const char *key;                    /* member key, or NULL */
	uint32_t klen;                      /* its decoded length */
	uint32_t first_i, next_i;           /* links by index while parsing */
	const struct amil_json_value *first, *next;  /* the same links, after */
};

struct amil_json {
	struct amil_json_value *v;          /* v[0] is the root */
	uint32_t n, cap;
	char *arena;
};

struct parser {
	const char *s;                      /* input */
	size_t len, pos;
	struct amil_json *doc;
	char *out;                          /* next free byte of the arena */
	char *err;
	size_t errlen;
	bool failed;
	bool nomem;
};

static void
fail(struct parser *p, const char *what)
{
	if (p->failed)
		return;
	p->failed = true;
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "offset %zu: %s", p->pos, what);
}

static uint32_t
new_value(struct parser *p, enum amil_json_type t)
{
	struct amil_json *d = p->doc;

	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 16;
		struct amil_json_value *nv = realloc(d->v, (size_t)cap * sizeof(*nv));

		if (nv == NULL) {
			p->nomem = true;
			fail(p, "out of memory");
			return NONE;
		}
		d->v = nv;
		d->cap = cap;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[0]));
	d->v[d->n].type = (uint8_t)t;
	d->v[d->n].first_i = NONE;
	d->v[d->n].next_i = NONE;
	return d->n++;
}

static void
skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		p->pos++;
	}
}

static int
hex4(struct parser *p, uint32_t *out)
{
	uint32_t v = 0;

	if (p->len - p->pos < 4) {
		fail(p, "truncated \\u escape");
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos + (size_t)i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else {
			fail(p, "bad hex digit in \\u escape");
			return -1;
		}
	}
	p->pos += 4;
	*out = v;
	return 0;
}

static void
put_utf8(char **o, uint32_t cp)
{
	char *q = *o;

	if (cp < 0x80) {
		*q++ = (char)cp;
	} else if (cp < 0x800) {
		*q++ = (char)(0xc0 | (cp >> 6));
		*q++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*q++ = (char)(0xe0 | (cp >> 12));
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*q++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*q++ = (char)(0xf0 | (cp >> 18));
		*q++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*q++ = (char)(0x80 | (cp & 0x3f));
	}
	*o = q;
}

/* Parse a string literal at p->pos (on the opening quote) into the arena.
 * Raw bytes >= 0x80 are copied as they are: the daemon writes UTF-8 and
 * amilctl only prints it back, so validating it buys nothing. */
static const char *
parse_string(struct parser *p, uint32_t *out_len)
{
	char *start = p->out, *o = p->out;

	p->pos++; /* opening quote */
	for (;;) {
		if (p->pos >= p->len) {
			fail(p, "unterminated string");
			return NULL;
		}
		unsigned char c = (unsigned char)p->s[p->pos];

		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			fail(p, "control character in string");
			return NULL;
		}
		if (c != '\\') {
			*o++ = (char)c;
			p->pos++;
			continue;
		}
		p->pos++;
		if (p->pos >= p->len) {
			fail(p, "unterminated escape");
			return NULL;
		}
		c = (unsigned char)p->s[p->pos++];
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			uint32_t cp, lo;

			if (hex4(p, &cp) != 0)
				return NULL;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail(p, "lone low surrogate in \\u escape");
				return NULL;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
					fail(p, "high surrogate not followed by \\u low surrogate");
					return NULL;
				}
				p->pos += 2;
				if (hex4(p, &lo) != 0)
					return NULL;
				if (lo < 0xdc00 || lo > 0xdfff) {
					fail(p, "high surrogate not followed by a low surrogate");
					return NULL;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			put_utf8(&o, cp);
			break;
		}
		default:
			p->pos--;
			fail(p, "invalid escape");
			return NULL;
		}
	}
	*o++ = '\0';
	p->out = o;
	*out_len = (uint32_t)(o - start - 1);
	return start;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The RFC 8259 number grammar, checked exactly: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *
parse_number(struct parser *p)
{
	size_t b = p->pos;
	char *o = p->out;

	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
		fail(p, "expected a digit");
		return NULL;
	}
	if (p->s[p->pos] == '0') {
		p->pos++;
		if (p->pos < p->len && is_digit(p->s[p->pos])) {
			fail(p, "leading zero in number");
			return NULL;
		}
	} else {
		while (p->pos < p->len && is_digit(p->s[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
			fail(p, "expected a digit after '.'");
			return NULL;
		}
		while (p->pos < p->len && is_digit(p->s[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
			fail(p, "expected a digit in exponent");
			return NULL;
		}
		while (p->pos < p->len && is_digit(p->s[p->pos]))
			p->pos++;
	}
	memcpy(o, p->s + b, p->pos - b);
	o[p->pos - b] = '\0';
	p->out = o + (p->pos - b) + 1;
	return o;
}

static bool
literal(struct parser *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return false;
	p->pos += n;
	return true;
}

static uint32_t parse_value(struct parser *p, unsigned depth);

/* Append @child to @parent's list; @last is the previous child or NONE. */
static void
link_child(struct parser *p, uint32_t parent, uint32_t *last, uint32_t child)
{
	if (*last == NONE)
		p->doc->v[parent].first_i = child;
	else
		p->doc->v[*last].next_i = child;
	*last = child;
	p->doc->v[parent].len++;
}

static uint32_t
parse_array(struct parser *p, unsigned depth)
{
	uint32_t self = new_value(p, AMIL_JSON_ARRAY), last = NONE, child;

	if (self == NONE)
		return NONE;
	p->pos++; /* [ */
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ']') {
		p->pos++;
		return self;
	}
	for (;;) {
		child = parse_value(p, depth + 1);
		if (child == NONE)
			return NONE;
		link_child(p, self, &last, child);
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == ']') {
			p->pos++;
			return self;
		}
		fail(p, "expected ',' or ']' in array");
		return NONE;
	}
}

static uint32_t
parse_object(struct parser *p, unsigned depth)
{
	uint32_t self = new_value(p, AMIL_JSON_OBJECT), last = NONE, child, klen;
	const char *key;

	if (self == NONE)
		return NONE;
	p->pos++; /* { */
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		return self;
	}
	for (;;) {
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != '"') {
			fail(p, "expected a string key in object");
			return NONE;
		}
		key = parse_string(p, &klen);
		if (key == NULL)
			return NONE;
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			fail(p, "expected ':' after object key");
			return NONE;
		}
		p->pos++;
		child = parse_value(p, depth + 1);
		if (child == NONE)
			return NONE;
		p->doc->v[child].key = key;
		p->doc->v[child].klen = klen;
		link_child(p, self, &last, child);
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			return self;
		}
		fail(p, "expected ',' or '}' in object");
		return NONE;
	}
}

static uint32_t
parse_value(struct parser *p, unsigned depth)
{
	uint32_t self;
	const char *t;
	uint32_t slen;

	if (depth > AMIL_JSON_MAX_DEPTH) {
		fail(p, "nesting deeper than AMIL_JSON_MAX_DEPTH");
		return NONE;
	}
	skip_ws(p);
	if (p->pos >= p->len) {
		fail(p, "unexpected end of input, expected a value");
		return NONE;
	}
	switch (p->s[p->pos]) {
	case '{':
		return parse_object(p, depth);
	case '[':
		return parse_array(p, depth);
	case '"':
		t = parse_string(p, &slen);
		if (t == NULL)
			return NONE;
		self = new_value(p, AMIL_JSON_STRING);
		if (self != NONE) {
			p->doc->v[self].text = t;
			p->doc->v[self].len = slen;
		}
		return self;
	case 't':
		if (literal(p, "true"))
			return new_value(p, AMIL_JSON_TRUE);
		break;
	case 'f':
		if (literal(p, "false"))
			return new_value(p, AMIL_JSON_FALSE);
		break;
	case 'n':
		if (literal(p, "null"))
			return new_value(p, AMIL_JSON_NULL);
		break;
	default:
		if (p->s[p->pos] == '-' || is_digit(p->s[p->pos])) {
			t = parse_number(p);
			if (t == NULL)
				return NONE;
			self = new_value(p, AMIL_JSON_NUMBER);
			if (self != NONE)
				p->doc->v[self].text = t;
			return self;
		}
		break;
	}
	fail(p, "expected a value");
	return NONE;
}

struct amil_json *
amil_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct parser p = {.s = text, .len = len, .err = err, .errlen = errlen};
	struct amil_json *doc;
	uint32_t root;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL || len > (1u << 30)) {
		errno = EINVAL;
		return NULL;
	}
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL)
		goto fail_doc;
	doc->arena = malloc(2 * len + 2);
	if (doc->arena == NULL)
		goto fail_arena;
	p.doc = doc;
	p.out = doc->arena;
	root = parse_value(&p, 0);
	if (root != NONE) {
		skip_ws(&p);
		if (p.pos != p.len)
			fail(&p, "unexpected data after the JSON value");
	}
	if (p.failed) {
		errno = p.nomem ? ENOMEM : EBADMSG;
		goto fail_parse;
	}
	/* root is v[0]: the first value created is the outermost one. */
	for (uint32_t i = 0; i < doc->n; i++) {
		struct amil_json_value *v = &doc->v[i];

		v->first = v->first_i == NONE ? NULL : &doc->v[v->first_i];
		v->next = v->next_i == NONE ? NULL : &doc->v[v->next_i];
	}
	return doc;

fail_parse:
	free(doc->v);
	free(doc->arena);
fail_arena:
	free(doc);
fail_doc:
	if (errno != EBADMSG) {
		errno = ENOMEM;
		if (err != NULL && errlen > 0 && err[0] == '\0')
			snprintf(err, errlen, "out of memory");
	}
	return NULL;
}

void
amil_json_destroy(struct amil_json **docp)
{
	if (docp == NULL || *docp == NULL)
		return;
	free((*docp)->v);
	free((*docp)->arena);
	free(*docp);
	*docp = NULL;
}

const struct amil_json_value *
amil_json_root(const struct amil_json *doc)
{
	return doc != NULL ? &doc->v[0] : NULL;
}

enum amil_json_type
amil_json_type(const struct amil_json_value *v)
{
	return v != NULL ? (enum amil_json_type)v->type : AMIL_JSON_NULL;
}

const char *
amil_json_type_name(enum amil_json_type t)
{
	static const char *const names[] = {"null",   "false", "true",  "number",
					    "string", "array", "object"};

	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

const struct amil_json_value *
amil_json_get(const struct amil_json_value *obj, const char *key)
{
	if (amil_json_type(obj) != AMIL_JSON_OBJECT || key == NULL)
		return NULL;
	for (const struct amil_json_value *m = obj->first; m != NULL; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

const struct amil_json_value *
amil_json_at(const struct amil_json_value *arr, size_t i)
{
	const struct amil_json_value *e;

	if (amil_json_type(arr) != AMIL_JSON_ARRAY)
		return NULL;
	for (e = arr->first; e != NULL && i > 0; e = e->next)
		i--;
	return e;
}

const struct amil_json_value *
amil_json_first(const struct amil_json_value *c)
{
	enum amil_json_type t = amil_json_type(c);

	return t == AMIL_JSON_ARRAY || t == AMIL_JSON_OBJECT ? c->first : NULL;
}

const struct amil_json_value *
amil_json_next(const struct amil_json_value *v)
{
	return v != NULL ? v->next : NULL;
}

const char *
amil_json_key(const struct amil_json_value *v)
{
	return v != NULL ? v->key : NULL;
}

size_t
amil_json_len(const struct amil_json_value *v)
{
	switch (amil_json_type(v)) {
	case AMIL_JSON_STRING:
	case AMIL_JSON_ARRAY:
	case AMIL_JSON_OBJECT:
		return v->len;
	default:
		return 0;
	}
}

const char *
amil_json_str(const struct amil_json_value *v)
{
	return amil_json_type(v) == AMIL_JSON_STRING ? v->text : NULL;
}

const char *
amil_json_num(const struct amil_json_value *v)
{
	return amil_json_type(v) == AMIL_JSON_NUMBER ? v->text : NULL;
}

/* Magnitude of an integer number text (sign already skipped); -EINVAL for
 * a fraction or exponent, -ERANGE above UINT64_MAX. */
static int
magnitude(const char *t, uint64_t *out)
{
	uint64_t v = 0;

	if (*t == '\0')
		return -EINVAL;
	for (; *t != '\0'; t++) {
		if (!is_digit(*t))
			return -EINVAL;
		unsigned d = (unsigned)(*t - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int
amil_json_u64(const struct amil_json_value *v, uint64_t *out)
{
	const char *t = amil_json_num(v);
	uint64_t m;
	int rc;

	if (t == NULL)
		return -EINVAL;
	if (*t == '-') {
		rc = magnitude(t + 1, &m);
		if (rc != 0)
			return rc;
		if (m != 0)
			return -ERANGE;
	} else {
		rc = magnitude(t, &m);
		if (rc != 0)
			return rc;
	}
	*out = m;
	return 0;
}

int
amil_json_i64(const struct amil_json_value *v, int64_t *out)
{
	const char *t = amil_json_num(v);
	bool neg;
	uint64_t m;
	int rc;

	if (t == NULL)
		return -EINVAL;
	neg = *t == '-';
	rc = magnitude(t + neg, &m);
	if (rc != 0)
		return rc;
	if (neg ? m > (uint64_t)INT64_MAX + 1 : m > (uint64_t)INT64_MAX)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}

bool
amil_json_is_true(const struct amil_json_value *v)
{
	return amil_json_type(v) == AMIL_JSON_TRUE;
}

int
amil_json_write_string(const char *s, size_t len, FILE *f)
{
	static const char hex[] = "0123456789abcdef";

	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			putc('\\', f);
			putc(c, f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		} else {
			putc(c, f);
		}
	}
	putc('"', f);
	return ferror(f) ? -EIO : 0;
}

int
amil_json_write(const struct amil_json_value *v, FILE *f)
{
	const struct amil_json_value *e;

	switch (amil_json_type(v)) {
	case AMIL_JSON_NULL: fputs("null", f); break;
	case AMIL_JSON_FALSE: fputs("false", f); break;
	case AMIL_JSON_TRUE: fputs("true", f); break;
	case AMIL_JSON_NUMBER: fputs(v->text, f); break;
	case AMIL_JSON_STRING: amil_json_write_string(v->text, v->len, f); break;
	case AMIL_JSON_ARRAY:
		putc('[', f);
		for (e = v->first; e != NULL; e = e->next) {
			if (e != v->first)
				putc(',', f);
			amil_json_write(e, f);
		}
		putc(']', f);
		break;
	case AMIL_JSON_OBJECT:
		putc('{', f);
		for (e = v->first; e != NULL; e = e->next) {
			if (e != v->first)
				putc(',', f);
			amil_json_write_string(e->key, e->klen, f);
			putc(':', f);
			amil_json_write(e, f);
		}
		putc('}', f);
		break;
	}
	return ferror(f) ? -EIO : 0;
}
