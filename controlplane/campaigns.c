/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Campaign totals from the local ledger, summed over the cluster.  See
 * campaigns.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amil_ledger_format.h"
#include "campaigns.h"

#define CAMP_MAX 256                 /* local (campaign, currency) rows */
#define TICK_NS (250 * 1000000ull)

struct camp_total {
	uint32_t campaign;
	char currency[4];
	uint8_t exponent;
	uint64_t count;
	__int128 amount, levy;
	bool dirty;
};

struct amil_campaigns {
	struct amil_registry *reg;
	uint64_t node_id;
	char ledger_dir[PATH_MAX];
	struct camp_total camp[CAMP_MAX];
	unsigned ncamp;
	char ledger_seg[64];           /* segment being read, "" before the first */
	uint64_t ledger_off;           /* next record's offset in it */
	uint64_t ledger_records;       /* records counted */
	uint64_t next_mono;
};

static char *
i128_dec(__int128 v, char buf[48])
{
	char tmp[48];
	int n = 0, k = 0;
	bool neg = v < 0;
	unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;

	do {
		tmp[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u != 0);
	if (neg)
		buf[k++] = '-';
	while (n > 0)
		buf[k++] = tmp[--n];
	buf[k] = '\0';
	return buf;
}

static bool
i128_parse(const char *s, __int128 *out)
{
	bool neg = *s == '-';
	unsigned __int128 v = 0;

	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (unsigned)(*s - '0');
	*out = neg ? -(__int128)v : (__int128)v;
	return *s == '\0' || *s == ' ';
}

static void
camp_add(struct amil_campaigns *d, const struct amil_ledger_rec *r)
{
	struct camp_total *c = NULL;

	for (unsigned i = 0; i < d->ncamp; i++)
		if (d->camp[i].campaign == r->campaign_id && d->camp[i].exponent == r->exponent &&
		    memcmp(d->camp[i].currency, r->currency, 3) == 0) {
			c = &d->camp[i];
			break;
		}
	if (c == NULL) {
		if (d->ncamp == CAMP_MAX)
			return;        /* counted in ledger_records; beyond the table */
		c = &d->camp[d->ncamp++];
		memset(c, 0, sizeof(*c));
		c->campaign = r->campaign_id;
		memcpy(c->currency, r->currency, 3);
		c->exponent = r->exponent;
	}
	c->count++;
	c->amount += r->amount_minor;
	c->levy += r->levy_minor;
	c->dirty = true;
}

static int
seg_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* The segment after @cur in name (= sequence) order, or "" if none. */
static void
next_segment(const char *dir, const char *cur, char *out, size_t len)
{
	static char names[1024][64];
	struct dirent *de;
	unsigned n = 0;
	DIR *dd = opendir(dir);

	out[0] = '\0';
	if (dd == NULL)
		return;
	while ((de = readdir(dd)) != NULL && n < 1024)
		if (strncmp(de->d_name, AMIL_LEDGER_SEG_PREFIX, strlen(AMIL_LEDGER_SEG_PREFIX)) == 0 &&
		    strlen(de->d_name) < 64 && strstr(de->d_name, ".tail-") == NULL)
			memcpy(names[n++], de->d_name, strlen(de->d_name) + 1); /* < 64, checked */
	closedir(dd);
	qsort(names, n, sizeof(names[0]), seg_cmp);
	for (unsigned i = 0; i < n; i++)
		if (cur[0] == '\0' || strcmp(names[i], cur) > 0) {
			snprintf(out, len, "%s", names[i]);
			return;
		}
}

/* Read the records the data plane appended since the last call (read
 * only; a batch being written shows as a short or bad record at the end:
 * stop there and come back). */
static void
ledger_tail(struct amil_campaigns *d)
{
	char path[PATH_MAX + 80];
	static uint8_t buf[AMIL_LEDGER_REC_LEN * 512];
	int fd;

	if (d->ledger_dir[0] == '\0')
		return;
	for (int hop = 0; hop < 64; hop++) {
		ssize_t got;

		if (d->ledger_seg[0] == '\0') {
			next_segment(d->ledger_dir, "", d->ledger_seg, sizeof(d->ledger_seg));
			if (d->ledger_seg[0] == '\0')
				return;
			d->ledger_off = AMIL_LEDGER_HDR_LEN;
		}
		snprintf(path, sizeof(path), "%s/%s", d->ledger_dir, d->ledger_seg);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		while ((got = pread(fd, buf, sizeof(buf), (off_t)d->ledger_off)) >=
		       AMIL_LEDGER_REC_LEN) {
			size_t k;

			for (k = 0; k + AMIL_LEDGER_REC_LEN <= (size_t)got; k += AMIL_LEDGER_REC_LEN) {
				struct amil_ledger_rec r;

				if (amil_ledger_rec_decode(buf + k, &r) != 0)
					break;
				camp_add(d, &r);
				d->ledger_records++;
			}
			d->ledger_off += k;
			if (k < (size_t)got - (size_t)got % AMIL_LEDGER_REC_LEN)
				break;  /* a record not (yet) valid: come back later */
		}
		close(fd);
		{
			char nxt[64];

			next_segment(d->ledger_dir, d->ledger_seg, nxt, sizeof(nxt));
			if (nxt[0] == '\0')
				return;
			/* A newer segment exists: this one is complete. */
			memcpy(d->ledger_seg, nxt, sizeof(nxt));
			d->ledger_off = AMIL_LEDGER_HDR_LEN;
		}
	}
}

/* Publish the totals that changed (only this node writes its entries). */
static void
camp_publish(struct amil_campaigns *d)
{
	for (unsigned i = 0; i < d->ncamp; i++) {
		struct camp_total *c = &d->camp[i];
		char key[128], val[160], a[48], l[48];

		if (!c->dirty)
			continue;
		snprintf(key, sizeof(key), AMIL_REG_CAMP_PREFIX "%" PRIu32 ":%.3s:%u:%" PRIu64, c->campaign,
			 c->currency, c->exponent, d->node_id);
		snprintf(val, sizeof(val), "%" PRIu64 " %s %s", c->count, i128_dec(c->amount, a),
			 i128_dec(c->levy, l));
		if (amil_registry_map_put(d->reg, key, val) == 0)
			c->dirty = false;
	}
}

struct camp_sum {
	struct {
		uint32_t campaign;
		char currency[4];
		unsigned exponent;
		uint64_t count, nodes;
		__int128 amount, levy;
	} row[512];
	unsigned n;
};

static int
camp_one(void *ctx, const struct amil_awormap_entry *e)
{
	struct camp_sum *x = ctx;
	char name[AMIL_AWORMAP_NAME_MAX + 1], val[AMIL_AWORMAP_VALUE_MAX + 1], cur[4] = "";
	char a[64], l[64];
	unsigned long long count, node;
	unsigned campaign, exp, i;
	__int128 amount, levy;

	if (e->name_len <= strlen(AMIL_REG_CAMP_PREFIX) ||
	    memcmp(e->name, AMIL_REG_CAMP_PREFIX, strlen(AMIL_REG_CAMP_PREFIX)) != 0)
		return 0;
	memcpy(name, e->name, e->name_len);
	name[e->name_len] = '\0';
	memcpy(val, e->value, e->value_len);
	val[e->value_len] = '\0';
	if (sscanf(name, AMIL_REG_CAMP_PREFIX "%u:%3[A-Z]:%u:%llu", &campaign, cur, &exp, &node) != 4 ||
	    sscanf(val, "%llu %63s %63s", &count, a, l) != 3 || !i128_parse(a, &amount) ||
	    !i128_parse(l, &levy))
		return 0;
	for (i = 0; i < x->n; i++)
		if (x->row[i].campaign == campaign && x->row[i].exponent == exp &&
		    strcmp(x->row[i].currency, cur) == 0)
			break;
	if (i == x->n) {
		if (x->n == 512)
			return 0;
		memset(&x->row[i], 0, sizeof(x->row[i]));
		x->row[i].campaign = campaign;
		memcpy(x->row[i].currency, cur, 4);
		x->row[i].exponent = exp;
		x->n++;
	}
	x->row[i].count += count;
	x->row[i].amount += amount;
	x->row[i].levy += levy;
	x->row[i].nodes++;
	return 0;
}

void
amil_campaigns_json(struct amil_campaigns *d, FILE *f)
{
	static struct camp_sum x;
	char a[48], l[48];

	x.n = 0;
	amil_registry_map_foreach(d->reg, camp_one, &x);
	fputs("{\"schema\": 1, \"campaigns\": [", f);
	for (unsigned i = 0; i < x.n; i++)
		fprintf(f,
			"%s{\"campaign\": %" PRIu32 ", \"currency\": \"%s\", \"exponent\": %u"
			", \"count\": %" PRIu64 ", \"amount_minor\": \"%s\", \"levy_minor\": \"%s\""
			", \"nodes\": %" PRIu64 "}",
			i ? ", " : "", x.row[i].campaign, x.row[i].currency, x.row[i].exponent,
			x.row[i].count, i128_dec(x.row[i].amount, a), i128_dec(x.row[i].levy, l),
			x.row[i].nodes);
	fprintf(f, "], \"local_ledger_records\": %" PRIu64 "}", d->ledger_records);
}


void
amil_campaigns_tick(struct amil_campaigns *c, uint64_t now_mono_ns)
{
	if (now_mono_ns < c->next_mono)
		return;
	ledger_tail(c);
	camp_publish(c);
	c->next_mono = now_mono_ns + TICK_NS;
}

uint64_t
amil_campaigns_local_records(const struct amil_campaigns *c)
{
	return c->ledger_records;
}

struct amil_campaigns *
amil_campaigns_new(struct amil_registry *reg, uint64_t node_id, const char *ledger_dir)
{
	struct amil_campaigns *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->reg = reg;
	c->node_id = node_id;
	snprintf(c->ledger_dir, sizeof(c->ledger_dir), "%s", ledger_dir != NULL ? ledger_dir : "");
	return c;
}

void
amil_campaigns_destroy(struct amil_campaigns *c)
{
	free(c);
}
