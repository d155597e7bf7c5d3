/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Data-plane configuration: defaults, YAML file, command-line flags.
 *
 * Every setting is described once, in the `settings` table below: its YAML
 * name, its flag, its kind and its range.  The file loader and the flag
 * parser both go through set_value(), so a value is checked the same way
 * whichever way it arrives, and the two only differ in how they prefix the
 * message ("path:line: port ..." versus "--port: ...").
 *
 * The file is read with libyaml's document API rather than the event API:
 * config files are a few hundred bytes, and having the whole tree lets us
 * detect duplicate keys and report the line of any key or value directly
 * from its node's start mark.  libyaml does not resolve implicit tags, so
 * every scalar arrives as a string and is checked here; `port: "7100"` is
 * therefore accepted like `port: 7100`.
 *
 * Both entry points work on a private copy and only write the caller's
 * struct on success, so a rejected file or command line leaves it as it was.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "amil_ledger_format.h"
#include "amil_levy.h"
#include "config.h"

/* A config file is a few hundred bytes; refuse anything absurd before the
 * document API builds it in memory. */
#define CONFIG_FILE_MAX_BYTES (1 << 20)

/* How much of an offending value is quoted back in a message. */
#define QUOTE_MAX 64

enum kind {
	K_UINT,   /* decimal integer in [min, max] */
	K_POW2,   /* as K_UINT, and a power of two */
	K_IP4,
	K_IP6,
	K_MAC,    /* Ethernet address xx:xx:xx:xx:xx:xx */
	K_PATH,   /* non-empty; relative to the file's directory when from a file */
	K_CURRENCIES,
};

struct setting {
	const char *section; /* NULL: top level; else the enclosing mapping's key */
	const char *key;     /* YAML key inside the section */
	const char *flag;    /* long option, without "--" */
	enum kind kind;
	uint64_t min, max;   /* K_UINT, K_POW2 */
	size_t off;          /* field in struct amil_config */
	size_t size;         /* its size: integer width, or path buffer size */
	const char *arg;     /* usage: argument name */
	const char *help;    /* usage: one line */
};

#define FIELD(f) offsetof(struct amil_config, f), sizeof(((struct amil_config *)0)->f)

static const struct setting settings[] = {
	{NULL, "ip", "ip", K_IP4, 0, 0, FIELD(ip4_be), "A.B.C.D",
	 "IPv4 address the data plane answers on"},
	{NULL, "ip6", "ip6", K_IP6, 0, 0, FIELD(ip6), "ADDR",
	 "IPv6 address the data plane answers on"},
	{NULL, "mac", "mac", K_MAC, 0, 0, FIELD(mac), "MAC",
	 "set the port's MAC (default: the device's own)"},
	{NULL, "port", "port", K_UINT, 1, 65535, FIELD(udp_port), "N",
	 "UDP port of AMIL/1"},
	{NULL, "node_id", "node-id", K_UINT, 1, UINT32_MAX, FIELD(node_id), "N",
	 "this appliance's id, echoed in every ACK"},
	{NULL, "centers", "centers", K_PATH, 0, 0, FIELD(centers_path), "FILE",
	 "centers file: center ids and their keys"},
	{NULL, "rate_bp", "rate-bp", K_UINT, 0, 10000, FIELD(rate_bp), "N",
	 "levy rate in basis points (250 = 2.5%)"},
	{NULL, "currencies", "currencies", K_CURRENCIES, 0, 0, FIELD(currencies), "LIST",
	 "accepted ISO 4217 codes, e.g. USD,EUR"},
	{NULL, "ctl_sock", "ctl-sock", K_PATH, 0, 0, FIELD(ctl_sock), "PATH",
	 "local control socket for amil-controlplane"},
	{NULL, "stats_json", "stats-json", K_PATH, 0, 0, FIELD(stats_json), "FILE",
	 "write counters as JSON to FILE"},
	{"dedupe", "capacity", "dedupe-capacity", K_UINT, 8, UINT64_C(1) << 31,
	 FIELD(dedupe_capacity), "N", "duplicate-detection entries per worker"},
	{"dedupe", "retention_s", "dedupe-retention", K_UINT, 1, 31536000,
	 FIELD(dedupe_retention_s), "S", "seconds a donation id is remembered"},
	{"ledger", "dir", "ledger-dir", K_PATH, 0, 0, FIELD(ledger_dir), "DIR",
	 "ledger directory (required unless --no-ledger)"},
	{"ledger", "batch", "ledger-batch", K_UINT, 1, 65536, FIELD(ledger_batch), "N",
	 "records per group commit, at most"},
	{"ledger", "max_wait_us", "ledger-wait-us", K_UINT, 0, 1000000, FIELD(ledger_wait_us),
	 "US", "longest wait for a batch to fill"},
	{"ledger", "segment_mb", "ledger-segment-mb", K_UINT, 1, 65536, FIELD(ledger_segment_mb),
	 "MB", "new segment file past this size"},
	{"ledger", "pending", "ledger-pending", K_POW2, 128, 1048576, FIELD(ledger_pending), "N",
	 "ACKs a worker holds for the disk"},
	{NULL, "burst", "burst", K_UINT, 1, 64, FIELD(burst), "N",
	 "packets per rx/tx burst"},
	{NULL, "ring_size", "ring-size", K_POW2, 64, 1048576, FIELD(ring_size), "N",
	 "entries of each ring between lcores"},
	{NULL, "mbufs", "mbufs", K_UINT, 1023, 16777215, FIELD(mbufs), "N",
	 "mbufs per socket (best 2^n - 1)"},
	{NULL, "rx_desc", "rx-desc", K_UINT, 64, 16384, FIELD(rx_desc), "N",
	 "rx descriptors per queue"},
	{NULL, "tx_desc", "tx-desc", K_UINT, 64, 16384, FIELD(tx_desc), "N",
	 "tx descriptors per queue"},
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* getopt_long values: settings are 256 + their index, so no clash with
 * short options. */
enum {
	OPT_HELP = 'h',
	OPT_NO_LEDGER = 254,
	OPT_CONFIG = 255,
	OPT_SETTING = 256,
};

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Write a message into @err (if any) and return @rc, so callers can
 * `return errf(...)`. */
static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Copy @s for quoting in a message: at most QUOTE_MAX characters, control
 * and non-ASCII bytes shown as '?', so a binary file cannot garble a log. */
static const char *quote(const char *s, char out[QUOTE_MAX + 4])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < QUOTE_MAX; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

/* Parse a decimal integer in [min, max].  Only digits: no sign, no
 * whitespace, no 0x, nothing after.  (strtoull alone would accept " 7",
 * "+7" and "-1", the last as 2^64 - 1.) */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static void store_uint(struct amil_config *c, const struct setting *s, uint64_t v)
{
	char *p = (char *)c + s->off;

	switch (s->size) {
	case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
	default: memcpy(p, &v, 8); break;
	}
}

static uint64_t fetch_uint(const struct amil_config *c, const struct setting *s)
{
	const char *p = (const char *)c + s->off;

	switch (s->size) {
	case 2: { uint16_t x; memcpy(&x, p, 2); return x; }
	case 4: { uint32_t x; memcpy(&x, p, 4); return x; }
	default: { uint64_t x; memcpy(&x, p, 8); return x; }
	}
}

/*
 * Check @val for setting @s and store it in @c.  @base is the directory
 * prefix for relative paths (including its trailing '/'), or "" for none.
 * On failure @why receives the problem without the setting's name, e.g.
 * "must be an integer 1..65535, got '70000'", so the caller can prefix it
 * with a file position or a flag.
 * @return 0, -EINVAL, or -ENAMETOOLONG.
 */
static int set_value(struct amil_config *c, const struct setting *s, const char *val,
		     const char *base, char *why, size_t whylen)
{
	char q[QUOTE_MAX + 4], bad[32];
	uint64_t v;
	int rc;

	switch (s->kind) {
	case K_UINT:
	case K_POW2:
		if (parse_uint(val, s->min, s->max, &v) < 0 ||
		    (s->kind == K_POW2 && (v & (v - 1)) != 0))
			return errf(why, whylen, -EINVAL,
				    "must be %s %" PRIu64 "..%" PRIu64 ", got '%s'",
				    s->kind == K_POW2 ? "a power of two" : "an integer",
				    s->min, s->max, quote(val, q));
		store_uint(c, s, v);
		return 0;
	case K_IP4:
		if (inet_pton(AF_INET, val, &c->ip4_be) != 1)
			return errf(why, whylen, -EINVAL,
				    "must be an IPv4 address A.B.C.D, got '%s'", quote(val, q));
		c->has_ip4 = true;
		return 0;
	case K_IP6:
		if (inet_pton(AF_INET6, val, c->ip6) != 1)
			return errf(why, whylen, -EINVAL,
				    "must be an IPv6 address, got '%s'", quote(val, q));
		c->has_ip6 = true;
		return 0;
	case K_MAC: {
		unsigned b[6];
		char tail;

		if (strlen(val) != 17 ||
		    sscanf(val, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
			   &b[5], &tail) != 6)
			return errf(why, whylen, -EINVAL,
				    "must be a MAC address xx:xx:xx:xx:xx:xx, got '%s'",
				    quote(val, q));
		if (b[0] & 1)
			return errf(why, whylen, -EINVAL,
				    "must be a unicast MAC address, got '%s'", quote(val, q));
		for (int i = 0; i < 6; i++)
			c->mac[i] = (uint8_t)b[i];
		c->has_mac = true;
		return 0;
	}
	case K_PATH: {
		char *dst = (char *)c + s->off;
		const char *pre = val[0] == '/' ? "" : base;

		if (val[0] == '\0')
			return errf(why, whylen, -EINVAL, "must be a file name, got ''");
		if (strlen(pre) + strlen(val) >= s->size)
			return errf(why, whylen, -ENAMETOOLONG, "path is too long (%zu bytes max)",
				    s->size - 1);
		snprintf(dst, s->size, "%s%s", pre, val);
		return 0;
	}
	case K_CURRENCIES:
		bad[0] = '\0';
		rc = amil_currency_set_parse(&c->currencies, val, bad, sizeof(bad));
		if (rc < 0)
			return errf(why, whylen, -EINVAL,
				    "must be ISO 4217 codes like USD,EUR, got '%s'",
				    quote(bad[0] != '\0' || val[0] == '\0' ? bad : val, q));
		return 0;
	}
	return errf(why, whylen, -EINVAL, "internal error: unknown kind");
}

static const struct setting *find_setting(const char *section, const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		if ((section == NULL) != (s->section == NULL))
			continue;
		if (section != NULL && strcmp(section, s->section) != 0)
			continue;
		if (strcmp(key, s->key) == 0)
			return s;
	}
	return NULL;
}

static bool is_section(const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (settings[i].section != NULL && strcmp(settings[i].section, key) == 0)
			return true;
	return false;
}

/* ---- YAML file ---------------------------------------------------------- */

/* State of one file load, so helpers can format "path:line:" messages. */
struct loader {
	yaml_document_t *doc;
	const char *path;
	char base[PATH_MAX];   /* the file's directory with trailing '/', or "" */
	char *err;
	size_t errlen;
};

static unsigned long line_of(const yaml_node_t *n)
{
	return (unsigned long)n->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

/* The scalar's text, or NULL when it holds a NUL byte (which would make
 * the C string silently shorter than the YAML value). */
static const char *scalar(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	return strlen(v) == n->data.scalar.length ? v : NULL;
}

/* `key:`, `key: ~` and `key: null` are YAML's null, not the text "null":
 * an unquoted null is a missing value, never a file named "~". */
static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	const char *v = (const char *)n->data.scalar.value;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(v, nulls[i]) == 0)
			return true;
	return false;
}

static int load_error(struct loader *ld, const yaml_node_t *n, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int load_error(struct loader *ld, const yaml_node_t *n, int rc, const char *fmt, ...)
{
	char msg[AMIL_CONFIG_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errf(ld->err, ld->errlen, rc, "%s:%lu: %s", ld->path, line_of(n), msg);
}

/* Full name of a key for messages: "port" or "dedupe.capacity". */
static void key_name(char *out, size_t len, const char *section, const char *key)
{
	char q[QUOTE_MAX + 4];

	if (section != NULL)
		snprintf(out, len, "%s.%s", section, quote(key, q));
	else
		snprintf(out, len, "%s", quote(key, q));
}

/* `currencies:` as a YAML list.  Each entry is checked on its own first so
 * an error points at the entry's line; then the joined list is parsed. */
static int load_currency_list(struct loader *ld, struct amil_config *c,
			      const struct setting *s, yaml_node_t *seq)
{
	char why[AMIL_CONFIG_ERR_LEN], bad[32], q[QUOTE_MAX + 4];
	struct amil_currency_set one;
	yaml_node_item_t *it;
	char *joined = NULL;
	size_t len = 1;
	int rc;

	if (seq->data.sequence.items.top == seq->data.sequence.items.start)
		return load_error(ld, seq, -EINVAL, "currencies must list at least one code");
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *n = yaml_document_get_node(ld->doc, *it);
		const char *v;

		if (n->type != YAML_SCALAR_NODE)
			return load_error(ld, n, -EINVAL,
					  "currencies entries must be codes, got %s", node_kind(n));
		v = scalar(n);
		if (v == NULL)
			return load_error(ld, n, -EINVAL, "currencies entry contains a NUL byte");
		/* Parsed into a scratch set only to locate a bad entry. */
		bad[0] = '\0';
		if (amil_currency_set_parse(&one, v, bad, sizeof(bad)) < 0)
			return load_error(ld, n, -EINVAL,
					  "currencies must be ISO 4217 codes like USD,EUR, got '%s'",
					  quote(bad[0] != '\0' ? bad : v, q));
		len += n->data.scalar.length + 1;
	}
	joined = malloc(len);
	if (joined == NULL)
		return load_error(ld, seq, -ENOMEM, "out of memory");
	joined[0] = '\0';
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *n = yaml_document_get_node(ld->doc, *it);

		if (joined[0] != '\0')
			strcat(joined, ",");
		strcat(joined, (const char *)n->data.scalar.value);
	}
	rc = set_value(c, s, joined, ld->base, why, sizeof(why));
	free(joined);
	if (rc < 0)
		return load_error(ld, seq, rc, "currencies %s", why);
	return 0;
}

/* Apply one `key: value` pair of mapping @section (NULL for top level). */
static int load_pair(struct loader *ld, struct amil_config *c, const char *section,
		     const char *key, yaml_node_t *kn, yaml_node_t *vn);

/* Walk a mapping: reject non-scalar and duplicate keys, apply each pair. */
static int load_mapping(struct loader *ld, struct amil_config *c, const char *section,
			yaml_node_t *map)
{
	yaml_node_pair_t *p, *q;
	char name[128];
	int rc;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
		const char *key;

		if (kn->type != YAML_SCALAR_NODE)
			return load_error(ld, kn, -EINVAL, "keys must be names, got %s",
					  node_kind(kn));
		key = scalar(kn);
		if (key == NULL)
			return load_error(ld, kn, -EINVAL, "key contains a NUL byte");
		/* libyaml keeps duplicates; a second `port:` silently winning is
		 * exactly the kind of mistake a config check should catch. */
		for (q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *prev = yaml_document_get_node(ld->doc, q->key);

			if (prev->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)prev->data.scalar.value, key) == 0) {
				key_name(name, sizeof(name), section, key);
				return load_error(ld, kn, -EINVAL,
						  "duplicate key '%s' (first on line %lu)", name,
						  line_of(prev));
			}
		}
		rc = load_pair(ld, c, section, key, kn, vn);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int load_pair(struct loader *ld, struct amil_config *c, const char *section,
		     const char *key, yaml_node_t *kn, yaml_node_t *vn)
{
	char why[AMIL_CONFIG_ERR_LEN], name[128];
	const struct setting *s;
	const char *v;
	int rc;

	key_name(name, sizeof(name), section, key);
	if (section == NULL && is_section(key)) {
		if (vn->type != YAML_MAPPING_NODE)
			return load_error(ld, vn, -EINVAL, "%s must be a mapping, got %s", name,
					  node_kind(vn));
		return load_mapping(ld, c, key, vn);
	}
	s = find_setting(section, key);
	if (s == NULL)
		return load_error(ld, kn, -EINVAL, "unknown key '%s'", name);
	if (s->kind == K_CURRENCIES && vn->type == YAML_SEQUENCE_NODE)
		return load_currency_list(ld, c, s, vn);
	if (vn->type != YAML_SCALAR_NODE)
		return load_error(ld, vn, -EINVAL, "%s must be a single value, got %s", name,
				  node_kind(vn));
	v = scalar(vn);
	if (v == NULL)
		return load_error(ld, vn, -EINVAL, "%s contains a NUL byte", name);
	if (is_null(vn))
		return load_error(ld, vn, -EINVAL,
				  "%s has no value (leave the key out for the default)", name);
	rc = set_value(c, s, v, ld->base, why, sizeof(why));
	if (rc < 0)
		return load_error(ld, vn, rc, "%s %s", name, why);
	return 0;
}

/* "path:line: YAML syntax error: problem (context)" from a failed load. */
static int syntax_error(struct loader *ld, const yaml_parser_t *parser)
{
	unsigned long line = (unsigned long)parser->problem_mark.line + 1;
	const char *problem = parser->problem ? parser->problem : "unknown problem";

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		return errf(ld->err, ld->errlen, -ENOMEM, "%s: out of memory reading YAML",
			    ld->path);
	case YAML_READER_ERROR:
		/* The reader (encoding) stage has no line, only a byte offset. */
		return errf(ld->err, ld->errlen, -EINVAL, "%s: YAML read error at byte %zu: %s",
			    ld->path, parser->problem_offset, problem);
	default:
		if (parser->context != NULL)
			return errf(ld->err, ld->errlen, -EINVAL,
				    "%s:%lu: YAML syntax error: %s (%s on line %lu)", ld->path,
				    line, problem, parser->context,
				    (unsigned long)parser->context_mark.line + 1);
		return errf(ld->err, ld->errlen, -EINVAL, "%s:%lu: YAML syntax error: %s",
			    ld->path, line, problem);
	}
}

/* Open @path for reading, refusing directories and oversized files.
 * @return the stream, or NULL with *@rc and @err set. */
static FILE *open_config(const char *path, char *err, size_t errlen, int *rc)
{
	struct stat st;
	FILE *f;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	else if (S_ISREG(st.st_mode) && st.st_size > CONFIG_FILE_MAX_BYTES)
		e = EFBIG;
	else if ((f = fdopen(fd, "r")) == NULL)
		e = errno;
	else
		return f;
	close(fd);
fail:
	*rc = errf(err, errlen, -e, "%s: cannot read config: %s", path, strerror(e));
	return NULL;
}

int amil_config_load_file(struct amil_config *c, const char *path, char *err, size_t errlen)
{
	struct amil_config *work;
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root;
	struct loader ld = {.doc = &doc, .path = path, .err = err, .errlen = errlen};
	const char *slash;
	FILE *f;
	int rc = 0;

	errf(err, errlen, 0, "%s", "");
	if (strlen(path) >= sizeof(c->config_path))
		return errf(err, errlen, -ENAMETOOLONG, "%.64s...: config path too long", path);
	slash = strrchr(path, '/');
	if (slash != NULL)
		snprintf(ld.base, sizeof(ld.base), "%.*s", (int)(slash - path + 1), path);

	work = malloc(sizeof(*work));
	if (work == NULL)
		return errf(err, errlen, -ENOMEM, "%s: out of memory", path);
	*work = *c;

	f = open_config(path, err, errlen, &rc);
	if (f == NULL)
		goto out_work;
	if (!yaml_parser_initialize(&parser)) {
		rc = errf(err, errlen, -ENOMEM, "%s: out of memory", path);
		goto out_file;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = syntax_error(&ld, &parser);
		goto out_parser;
	}

	root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		/* Empty file (or only comments): everything stays default. */
	} else if (root->type != YAML_MAPPING_NODE) {
		rc = load_error(&ld, root, -EINVAL, "top level must be a mapping of key: value, got %s",
				node_kind(root));
	} else {
		rc = load_mapping(&ld, work, NULL, root);
	}
	if (rc == 0) {
		/* A second document ("---") would otherwise be ignored silently. */
		if (!yaml_parser_load(&parser, &extra)) {
			rc = syntax_error(&ld, &parser);
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&extra);

			if (r2 != NULL)
				rc = load_error(&ld, r2, -EINVAL,
						"only one YAML document is allowed");
			yaml_document_delete(&extra);
		}
	}
	if (rc == 0) {
		snprintf(work->config_path, sizeof(work->config_path), "%s", path);
		*c = *work;
	}
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
out_file:
	fclose(f);
out_work:
	free(work);
	return rc;
}

/* ---- defaults, flags, usage --------------------------------------------- */

void amil_config_defaults(struct amil_config *c)
{
	memset(c, 0, sizeof(*c));
	c->udp_port = AMIL_WIRE_PORT_DEFAULT;
	c->node_id = 1;
	c->rate_bp = AMIL_LEVY_RATE_BP_DEFAULT;
	amil_currency_set_init(&c->currencies, true);
	c->dedupe_capacity = 1048576;
	c->dedupe_retention_s = 86400;
	c->ledger_batch = 4096;
	c->ledger_wait_us = 100;
	c->ledger_segment_mb = 64;
	c->ledger_pending = 8192;
	c->burst = 32;
	c->ring_size = 4096;
	c->mbufs = 32767;
	c->rx_desc = 1024;
	c->tx_desc = 1024;
}

/* Long option name for a getopt value, for "missing value" messages. */
static const char *opt_name(int val)
{
	if (val == OPT_CONFIG)
		return "config";
	if (val >= OPT_SETTING && val < OPT_SETTING + (int)N_SETTINGS)
		return settings[val - OPT_SETTING].flag;
	return NULL;
}

static void fill_longopts(struct option *lo)
{
	size_t i;

	lo[0] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
	lo[1] = (struct option){"help", no_argument, NULL, OPT_HELP};
	lo[2] = (struct option){"no-ledger", no_argument, NULL, OPT_NO_LEDGER};
	for (i = 0; i < N_SETTINGS; i++)
		lo[3 + i] = (struct option){settings[i].flag, required_argument, NULL,
					    OPT_SETTING + (int)i};
	lo[3 + i] = (struct option){NULL, 0, NULL, 0};
}

/* One flag seen on the command line, applied after --config. */
struct flag_arg {
	int setting;       /* index into settings[] */
	const char *value;
};

int amil_config_parse_args(struct amil_config *c, int argc, char **argv, char *err,
			   size_t errlen)
{
	struct option longopts[N_SETTINGS + 4];
	const char *prog = argc > 0 && argv[0] != NULL ? argv[0] : "amil-dataplane";
	const char *config = NULL, *name;
	char why[AMIL_CONFIG_ERR_LEN];
	struct flag_arg *flags = NULL;
	struct amil_config *work = NULL;
	int nflags = 0, opt, rc = 0;
	bool no_ledger = false;

	errf(err, errlen, 0, "%s", "");
	if (argc < 1)
		argc = 1; /* nothing but (maybe) a program name */
	fill_longopts(longopts);
	flags = calloc((size_t)argc, sizeof(*flags));
	work = malloc(sizeof(*work));
	if (flags == NULL || work == NULL) {
		rc = errf(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}

	/*
	 * getopt keeps its position in globals.  glibc only forgets a half-
	 * scanned "-abc" cluster when optind is 0; elsewhere 1 is the reset.
	 * "+" stops at the first non-option instead of permuting argv (which
	 * would reorder the caller's array), so a stray positional argument
	 * is left at argv[optind] to be reported; ":" makes a missing value
	 * distinguishable from an unknown option.  opterr = 0: we report.
	 */
#ifdef __GLIBC__
	optind = 0;
#else
	optind = 1;
#endif
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_HELP:
			amil_config_usage(stdout, prog);
			fflush(stdout);
			rc = 1;
			goto out;
		case ':':
			name = opt_name(optopt);
			if (name != NULL)
				rc = errf(err, errlen, -EINVAL, "--%s: missing value", name);
			else
				rc = errf(err, errlen, -EINVAL, "%s: missing value", argv[optind - 1]);
			goto out;
		case '?': {
			const char *a = argv[optind - 1];
			char q[QUOTE_MAX + 4];

			if (strncmp(a, "--", 2) != 0 && optopt > 0x20 && optopt < 0x7f)
				rc = errf(err, errlen, -EINVAL,
					  "unknown option '-%c' (see --help)", optopt);
			else
				rc = errf(err, errlen, -EINVAL,
					  "unknown option '%s' (see --help)", quote(a, q));
			goto out;
		}
		case OPT_NO_LEDGER:
			no_ledger = true;
			break;
		case OPT_CONFIG:
			if (config != NULL) {
				rc = errf(err, errlen, -EINVAL, "--config: given more than once");
				goto out;
			}
			config = optarg;
			break;
		default:
			flags[nflags++] = (struct flag_arg){opt - OPT_SETTING, optarg};
			break;
		}
	}
	if (optind < argc) {
		char q[QUOTE_MAX + 4];

		rc = errf(err, errlen, -EINVAL,
			  "unexpected argument '%s' (every option takes the form --name value)",
			  quote(argv[optind], q));
		goto out;
	}

	/* The file first, wherever --config appeared, so any flag overrides it. */
	amil_config_defaults(work);
	if (config != NULL) {
		if (config[0] == '\0') {
			rc = errf(err, errlen, -EINVAL, "--config: must be a file name, got ''");
			goto out;
		}
		rc = amil_config_load_file(work, config, err, errlen);
		if (rc < 0)
			goto out;
	}
	for (int i = 0; i < nflags; i++) {
		const struct setting *s = &settings[flags[i].setting];

		/* Flags are relative to the working directory: base "". */
		rc = set_value(work, s, flags[i].value, "", why, sizeof(why));
		if (rc < 0) {
			errf(err, errlen, rc, "--%s: %s", s->flag, why);
			goto out;
		}
	}

	if (!work->has_ip4 && !work->has_ip6) {
		rc = errf(err, errlen, -EINVAL,
			  "no address: set --ip/--ip6 or ip:/ip6: in the config");
		goto out;
	}
	if (work->centers_path[0] == '\0') {
		rc = errf(err, errlen, -EINVAL,
			  "no centers file: set --centers or centers: in the config");
		goto out;
	}
	if (no_ledger) {
		work->ledger_dir[0] = '\0';
		work->no_ledger = true;
	} else if (work->ledger_dir[0] == '\0') {
		rc = errf(err, errlen, -EINVAL,
			  "no ledger directory: set --ledger-dir or ledger.dir in the config "
			  "(an ACCEPTED ack is sent only once the donation is on disk there), or "
			  "--no-ledger to acknowledge from memory (tests, benchmarks)");
		goto out;
	}
	if ((uint64_t)work->ledger_segment_mb << 20 <
	    AMIL_LEDGER_HDR_LEN + (uint64_t)work->ledger_batch * AMIL_LEDGER_REC_LEN) {
		rc = errf(err, errlen, -EINVAL,
			  "ledger.segment_mb (%" PRIu32 ") is smaller than one batch of "
			  "ledger.batch (%" PRIu32 ") records of %d bytes",
			  work->ledger_segment_mb, work->ledger_batch, AMIL_LEDGER_REC_LEN);
		goto out;
	}
	*c = *work;
out:
	free(work);
	free(flags);
	return rc;
}

void amil_config_usage(FILE *f, const char *prog)
{
	struct amil_config d;

	if (prog == NULL || prog[0] == '\0')
		prog = "amil-dataplane";
	else if (strrchr(prog, '/') != NULL)
		prog = strrchr(prog, '/') + 1; /* argv[0] may be a full path */
	amil_config_defaults(&d);
	fprintf(f,
		"Usage: %s [EAL options] -- [options]\n"
		"\n"
		"The Amil data plane: answers AMIL/1 donations (UDP) on DPDK ports.\n"
		"Settings are the defaults, then the YAML file of --config, then the\n"
		"flags below; a flag always overrides the file, wherever --config is.\n"
		"\n"
		"Options, each with its YAML key: default (range):\n"
		"  --config FILE              YAML config file, e.g.\n"
		"                             configs/amil-dataplane.yaml\n",
		prog);
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		char opt[40], key[40], def[32], range[48] = "";

		snprintf(opt, sizeof(opt), "--%s %s", s->flag, s->arg);
		if (s->section != NULL)
			snprintf(key, sizeof(key), "%s.%s", s->section, s->key);
		else
			snprintf(key, sizeof(key), "%s", s->key);
		switch (s->kind) {
		case K_UINT:
		case K_POW2:
			snprintf(def, sizeof(def), "%" PRIu64, fetch_uint(&d, s));
			snprintf(range, sizeof(range), " (%s%" PRIu64 "..%" PRIu64 ")",
				 s->kind == K_POW2 ? "power of two " : "", s->min, s->max);
			break;
		case K_CURRENCIES:
			snprintf(def, sizeof(def), "any");
			break;
		case K_PATH:
			snprintf(def, sizeof(def), s->off == offsetof(struct amil_config,
								       centers_path) ?
							  "required" : "none");
			break;
		default:
			snprintf(def, sizeof(def), "none");
			break;
		}
		fprintf(f, "  %-26s %s\n  %-26s %s: %s%s\n", opt, s->help, "", key, def, range);
	}
	fprintf(f,
		"  --no-ledger                acknowledge from memory, write no ledger\n"
		"                             (tests and benchmarks; a restart forgets)\n"
		"  -h, --help                 print this help and exit\n"
		"\n"
		"Integers are decimal.  An address (--ip and/or --ip6), a centers file\n"
		"and a ledger directory (or --no-ledger) are required.  Relative paths in\n"
		"the config file are taken relative to the file's directory; relative\n"
		"paths in flags to the working directory.\n"
		"\n"
		"Example, without hugepages or a NIC, replaying a capture:\n"
		"  %s --no-huge -m 256 --no-pci -l 0-1 \\\n"
		"      --vdev net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap -- \\\n"
		"      --ip 198.18.0.1 --centers configs/centers.example --rate-bp 250 \\\n"
		"      --ledger-dir /var/lib/amil/ledger\n"
		"Or with a config file, overriding its port:\n"
		"  %s [EAL options] -- \\\n"
		"      --config configs/amil-dataplane.yaml --port 7101\n",
		prog, prog);
}
