/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Ledger on-disk format and directory scan.  See amil_ledger_format.h and
 * docs/ledger.md.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "amil_crc32c.h"
#include "amil_ledger_format.h"

#define REC_CRC_SPAN AMIL_LEDGER_REC_OFF_CRC
#define HDR_CRC_SPAN AMIL_LEDGER_HDR_OFF_CRC
#define SCAN_CHUNK   (1u << 20)   /* bytes read per read(2) */

_Static_assert(AMIL_LEDGER_REC_OFF_CRC + 4 == AMIL_LEDGER_REC_LEN, "crc ends the record");
_Static_assert(AMIL_LEDGER_HDR_OFF_CRC + 4 == AMIL_LEDGER_HDR_LEN, "crc ends the header");

static inline void
st16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static inline void
st32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void
st64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline uint16_t
ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t
ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t
ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

void
amil_ledger_rec_encode(void *buf, const struct amil_ledger_rec *r)
{
	uint8_t *p = buf;

	memset(p, 0, AMIL_LEDGER_REC_LEN);
	st16(p + AMIL_LEDGER_REC_OFF_MAGIC, AMIL_LEDGER_REC_MAGIC);
	p[AMIL_LEDGER_REC_OFF_KIND] = AMIL_LEDGER_REC_ACCEPTED;
	p[AMIL_LEDGER_REC_OFF_EXPONENT] = r->exponent;
	st32(p + AMIL_LEDGER_REC_OFF_CENTER, r->center_id);
	st64(p + AMIL_LEDGER_REC_OFF_DONATION, r->donation_id);
	st64(p + AMIL_LEDGER_REC_OFF_DONOR, r->donor_id);
	st32(p + AMIL_LEDGER_REC_OFF_CAMPAIGN, r->campaign_id);
	memcpy(p + AMIL_LEDGER_REC_OFF_CURRENCY, r->currency, AMIL_CURRENCY_LEN);
	st64(p + AMIL_LEDGER_REC_OFF_AMOUNT, (uint64_t)r->amount_minor);
	st64(p + AMIL_LEDGER_REC_OFF_LEVY, (uint64_t)r->levy_minor);
	st64(p + AMIL_LEDGER_REC_OFF_SEQ, r->seq);
	st64(p + AMIL_LEDGER_REC_OFF_ACCEPTED, r->accepted_ns);
	st32(p + AMIL_LEDGER_REC_OFF_NODE, r->node_id);
	st16(p + AMIL_LEDGER_REC_OFF_WORKER, r->worker);
	st16(p + AMIL_LEDGER_REC_OFF_RATE, r->rate_bp);
	st32(p + AMIL_LEDGER_REC_OFF_CRC, amil_crc32c(0, p, REC_CRC_SPAN));
}

void
amil_ledger_rec_seal(void *buf, uint64_t seq, uint64_t accepted_ns)
{
	uint8_t *p = buf;

	st64(p + AMIL_LEDGER_REC_OFF_SEQ, seq);
	st64(p + AMIL_LEDGER_REC_OFF_ACCEPTED, accepted_ns);
	st32(p + AMIL_LEDGER_REC_OFF_CRC, amil_crc32c(0, p, REC_CRC_SPAN));
}

static inline bool
is_upper(uint8_t c)
{
	return c >= 'A' && c <= 'Z';
}

int
amil_ledger_rec_decode(const void *buf, struct amil_ledger_rec *r)
{
	const uint8_t *p = buf;

	if (amil_crc32c(0, p, REC_CRC_SPAN) != ld32(p + AMIL_LEDGER_REC_OFF_CRC))
		return -EBADMSG;
	if (ld16(p + AMIL_LEDGER_REC_OFF_MAGIC) != AMIL_LEDGER_REC_MAGIC ||
	    p[AMIL_LEDGER_REC_OFF_KIND] != AMIL_LEDGER_REC_ACCEPTED ||
	    p[AMIL_LEDGER_REC_OFF_CURRENCY + 3] != 0 ||
	    ld32(p + AMIL_LEDGER_REC_OFF_RESERVED) != 0)
		return -EPROTO;
	r->exponent = p[AMIL_LEDGER_REC_OFF_EXPONENT];
	r->center_id = ld32(p + AMIL_LEDGER_REC_OFF_CENTER);
	r->donation_id = ld64(p + AMIL_LEDGER_REC_OFF_DONATION);
	r->donor_id = ld64(p + AMIL_LEDGER_REC_OFF_DONOR);
	r->campaign_id = ld32(p + AMIL_LEDGER_REC_OFF_CAMPAIGN);
	memcpy(r->currency, p + AMIL_LEDGER_REC_OFF_CURRENCY, AMIL_CURRENCY_LEN);
	r->amount_minor = (int64_t)ld64(p + AMIL_LEDGER_REC_OFF_AMOUNT);
	r->levy_minor = (int64_t)ld64(p + AMIL_LEDGER_REC_OFF_LEVY);
	r->seq = ld64(p + AMIL_LEDGER_REC_OFF_SEQ);
	r->accepted_ns = ld64(p + AMIL_LEDGER_REC_OFF_ACCEPTED);
	r->node_id = ld32(p + AMIL_LEDGER_REC_OFF_NODE);
	r->worker = ld16(p + AMIL_LEDGER_REC_OFF_WORKER);
	r->rate_bp = ld16(p + AMIL_LEDGER_REC_OFF_RATE);
	/* What the data plane can have accepted (amil_wire validation). */
	if (r->donation_id == 0 || r->seq == 0 ||
	    r->exponent > AMIL_EXPONENT_MAX ||
	    r->amount_minor < AMIL_AMOUNT_MIN_MINOR || r->amount_minor > AMIL_AMOUNT_MAX_MINOR ||
	    r->levy_minor < 0 || r->levy_minor > r->amount_minor || r->rate_bp > 10000 ||
	    !is_upper((uint8_t)r->currency[0]) || !is_upper((uint8_t)r->currency[1]) ||
	    !is_upper((uint8_t)r->currency[2]))
		return -EPROTO;
	return 0;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

void
amil_ledger_hdr_encode(void *buf, const struct amil_ledger_hdr *h)
{
	uint8_t *p = buf;

	memset(p, 0, AMIL_LEDGER_HDR_LEN);
	memcpy(p + AMIL_LEDGER_HDR_OFF_MAGIC, AMIL_LEDGER_MAGIC, 8);
	st16(p + AMIL_LEDGER_HDR_OFF_VERSION, AMIL_LEDGER_VERSION);
	st16(p + AMIL_LEDGER_HDR_OFF_HDR_LEN, AMIL_LEDGER_HDR_LEN);
	st16(p + AMIL_LEDGER_HDR_OFF_REC_LEN, AMIL_LEDGER_REC_LEN);
	st32(p + AMIL_LEDGER_HDR_OFF_NODE, h->node_id);
	st64(p + AMIL_LEDGER_HDR_OFF_CREATED, h->created_ns);
	st64(p + AMIL_LEDGER_HDR_OFF_FIRST_SEQ, h->first_seq);
	st32(p + AMIL_LEDGER_HDR_OFF_CRC, amil_crc32c(0, p, HDR_CRC_SPAN));
}

int
amil_ledger_hdr_decode(const void *buf, struct amil_ledger_hdr *h)
{
	const uint8_t *p = buf;

	if (memcmp(p + AMIL_LEDGER_HDR_OFF_MAGIC, AMIL_LEDGER_MAGIC, 8) != 0 ||
	    amil_crc32c(0, p, HDR_CRC_SPAN) != ld32(p + AMIL_LEDGER_HDR_OFF_CRC))
		return -EBADMSG;
	h->version = ld16(p + AMIL_LEDGER_HDR_OFF_VERSION);
	if (h->version != AMIL_LEDGER_VERSION ||
	    ld16(p + AMIL_LEDGER_HDR_OFF_HDR_LEN) != AMIL_LEDGER_HDR_LEN ||
	    ld16(p + AMIL_LEDGER_HDR_OFF_REC_LEN) != AMIL_LEDGER_REC_LEN)
		return -EPROTONOSUPPORT;
	/* Version 1 writes flags and reserved bytes as zero.  Anything else
	 * came from a writer that gave them a meaning this code does not know
	 * (a flag changes how records are read), so refuse rather than
	 * misread; it also keeps decode/encode an exact round trip. */
	if (ld16(p + AMIL_LEDGER_HDR_OFF_FLAGS) != 0 ||
	    ld32(p + AMIL_LEDGER_HDR_OFF_RESERVED0) != 0 ||
	    !all_zero(p + AMIL_LEDGER_HDR_OFF_RESERVED1, HDR_CRC_SPAN - AMIL_LEDGER_HDR_OFF_RESERVED1))
		return -EPROTONOSUPPORT;
	h->node_id = ld32(p + AMIL_LEDGER_HDR_OFF_NODE);
	h->created_ns = ld64(p + AMIL_LEDGER_HDR_OFF_CREATED);
	h->first_seq = ld64(p + AMIL_LEDGER_HDR_OFF_FIRST_SEQ);
	return 0;
}

void
amil_ledger_seg_name(char *buf, size_t size, uint64_t first_seq)
{
	snprintf(buf, size, AMIL_LEDGER_SEG_PREFIX "%020" PRIu64 AMIL_LEDGER_SEG_SUFFIX, first_seq);
}

const char *
amil_ledger_damage_str(enum amil_ledger_damage_kind k)
{
	switch (k) {
	case AMIL_LEDGER_INTACT: return "intact";
	case AMIL_LEDGER_BAD_HEADER: return "bad segment header";
	case AMIL_LEDGER_BAD_VERSION: return "unsupported segment version";
	case AMIL_LEDGER_TORN: return "torn record (file ends inside it)";
	case AMIL_LEDGER_BAD_CRC: return "record CRC mismatch";
	case AMIL_LEDGER_BAD_RECORD: return "invalid record content";
	case AMIL_LEDGER_SEQ_GAP: return "sequence gap";
	case AMIL_LEDGER_NODE_MISMATCH: return "record of another node";
	case AMIL_LEDGER_IO_ERROR: return "I/O error";
	}
	return "unknown damage";
}

/* --- scan ---------------------------------------------------------- */

/* A segment file name: prefix, exactly 20 digits, suffix. */
static bool
is_seg_name(const char *n)
{
	size_t pl = strlen(AMIL_LEDGER_SEG_PREFIX), sl = strlen(AMIL_LEDGER_SEG_SUFFIX);

	if (strlen(n) != pl + 20 + sl || strncmp(n, AMIL_LEDGER_SEG_PREFIX, pl) != 0 ||
	    strcmp(n + pl + 20, AMIL_LEDGER_SEG_SUFFIX) != 0)
		return false;
	for (size_t i = pl; i < pl + 20; i++)
		if (n[i] < '0' || n[i] > '9')
			return false;
	return true;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of segment names in @dir.  *names NULL and *n 0 when the
 * directory does not exist. */
static int
list_segments(const char *dir, char ***names, size_t *n)
{
	struct dirent *de;
	size_t cap = 0, cnt = 0;
	char **v = NULL;
	DIR *d;
	int err;

	*names = NULL;
	*n = 0;
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!is_seg_name(de->d_name))
			continue;
		if (cnt == cap) {
			char **nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				err = -ENOMEM;
				goto fail;
			}
			v = nv;
		}
		v[cnt] = strdup(de->d_name);
		if (v[cnt] == NULL) {
			err = -ENOMEM;
			goto fail;
		}
		cnt++;
	}
	if (errno != 0) {
		err = -errno;
		goto fail;
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_names);
	*names = v;
	*n = cnt;
	return 0;

fail:
	for (size_t i = 0; i < cnt; i++)
		free(v[i]);
	free(v);
	closedir(d);
	return err;
}

static void
set_damage(struct amil_ledger_damage *d, enum amil_ledger_damage_kind kind, const char *path,
	   uint64_t off, uint64_t idx, bool last)
{
	d->kind = kind;
	snprintf(d->path, sizeof(d->path), "%s", path);
	d->offset = off;
	d->record_index = idx;
	d->in_last_segment = last;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Copy [off, size) of @fd to <path>.tail-<ns>, make it durable, then cut. */
static int
save_and_cut(int fd, const char *dir, const char *path, uint64_t off, uint64_t size,
	     struct amil_ledger_scan_result *res)
{
	char side[PATH_MAX];
	struct timespec ts;
	uint8_t buf[65536];
	uint64_t pos = off;
	int out, err = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if ((size_t)snprintf(side, sizeof(side), "%s.tail-%" PRIu64, path,
			     (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) >= sizeof(side))
		return -ENAMETOOLONG;
	out = open(side, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0)
		return -errno;
	while (pos < size) {
		size_t want = size - pos < sizeof(buf) ? (size_t)(size - pos) : sizeof(buf);
		ssize_t r = pread(fd, buf, want, (off_t)pos);

		if (r <= 0) {
			err = r < 0 ? -errno : -EIO;
			break;
		}
		if (write(out, buf, (size_t)r) != r) {
			err = -EIO;
			break;
		}
		pos += (uint64_t)r;
	}
	if (err == 0 && fsync(out) != 0)
		err = -errno;
	close(out);
	if (err != 0) {
		unlink(side);
		return err;
	}
	if (ftruncate(fd, (off_t)off) != 0 || fdatasync(fd) != 0)
		return -errno;
	err = fsync_dir(dir);
	if (err != 0)
		return err;
	res->tail_cut_bytes = size - off;
	memcpy(res->tail_saved, side, sizeof(side));
	return 0;
}

/* Count the whole records after @off that decode intact (how much the cut
 * removed that looked valid: reported, see the header). */
static uint64_t
count_intact_after(int fd, uint64_t off, uint64_t size)
{
	uint8_t rec[AMIL_LEDGER_REC_LEN];
	struct amil_ledger_rec r;
	uint64_t n = 0;

	for (uint64_t p = off; p + AMIL_LEDGER_REC_LEN <= size; p += AMIL_LEDGER_REC_LEN)
		if (pread(fd, rec, sizeof(rec), (off_t)p) == (ssize_t)sizeof(rec) &&
		    amil_ledger_rec_decode(rec, &r) == 0)
			n++;
	return n;
}

/* Scan one segment.  *next_seq is the sequence the next record must carry
 * (0: not known yet, the first segment sets it). */
static int
scan_segment(const char *dir, const char *path, bool last, const struct amil_ledger_scan_opts *o,
	     struct amil_ledger_scan_result *res, uint64_t *next_seq, uint8_t *chunk)
{
	struct amil_ledger_damage *dmg = &res->damage;
	uint8_t hb[AMIL_LEDGER_HDR_LEN];
	struct amil_ledger_hdr h;
	uint64_t size, off, idx = 0;
	enum amil_ledger_damage_kind kind = AMIL_LEDGER_INTACT;
	struct stat st;
	int fd, ret = 0;

	fd = open(path, (o->repair_tail && last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		ret = -errno;
		set_damage(dmg, AMIL_LEDGER_IO_ERROR, path, 0, 0, last);
		dmg->err = -ret;
		goto out;
	}
	size = (uint64_t)st.st_size;
	if (pread(fd, hb, sizeof(hb), 0) != (ssize_t)sizeof(hb)) {
		kind = AMIL_LEDGER_BAD_HEADER;
	} else {
		int hr = amil_ledger_hdr_decode(hb, &h);

		if (hr == -EPROTONOSUPPORT)
			kind = AMIL_LEDGER_BAD_VERSION;
		else if (hr != 0)
			kind = AMIL_LEDGER_BAD_HEADER;
		else if (o->node_id != 0 && h.node_id != o->node_id)
			kind = AMIL_LEDGER_NODE_MISMATCH;
		else if (*next_seq != 0 && h.first_seq != *next_seq)
			kind = AMIL_LEDGER_SEQ_GAP;
	}
	if (kind != AMIL_LEDGER_INTACT) {
		/* A last segment whose header never became durable holds no
		 * acknowledged record (the header is synced before any record
		 * is written): the whole file is its torn tail.  A header that
		 * did become durable (good CRC) is not torn: with a wrong
		 * first_seq, a segment before it is missing (removed by hand?)
		 * and its records may have been acknowledged, so it is refused
		 * like a version or node it does not know, never removed. */
		set_damage(dmg, kind, path, 0, 0, last);
		if (kind == AMIL_LEDGER_SEQ_GAP) {
			dmg->expected_seq = *next_seq;
			dmg->found_seq = h.first_seq;
		}
		if (last && o->repair_tail && kind == AMIL_LEDGER_BAD_HEADER) {
			/* Reported: whole records after a torn header that still
			 * look intact (none, if the writer synced the header). */
			res->tail_cut_records = count_intact_after(fd, AMIL_LEDGER_HDR_LEN, size);
			ret = save_and_cut(fd, dir, path, 0, size, res);
			if (ret == 0) {
				close(fd);
				fd = -1;
				if (unlink(path) != 0 || fsync_dir(dir) != 0)
					ret = -errno;
				if (ret == 0)
					memset(dmg, 0, sizeof(*dmg));
			}
		} else {
			ret = -EBADMSG;
		}
		goto out;
	}
	if (*next_seq == 0)
		*next_seq = h.first_seq;
	res->segments++;
	if (o->on_segment != NULL) {
		ret = o->on_segment(o->arg, path, &h, size);
		if (ret != 0)
			goto out;
	}

	off = AMIL_LEDGER_HDR_LEN;
	while (off < size && kind == AMIL_LEDGER_INTACT) {
		size_t want = size - off < SCAN_CHUNK ? (size_t)(size - off) : SCAN_CHUNK;
		ssize_t got = pread(fd, chunk, want, (off_t)off);
		size_t p = 0;

		if (got <= 0) {
			ret = got < 0 ? -errno : -EIO;
			set_damage(dmg, AMIL_LEDGER_IO_ERROR, path, off, idx, last);
			dmg->err = -ret;
			goto out;
		}
		for (; p + AMIL_LEDGER_REC_LEN <= (size_t)got; p += AMIL_LEDGER_REC_LEN, idx++) {
			struct amil_ledger_rec r;
			int dr = amil_ledger_rec_decode(chunk + p, &r);

			if (dr == -EBADMSG)
				kind = AMIL_LEDGER_BAD_CRC;
			else if (dr != 0)
				kind = AMIL_LEDGER_BAD_RECORD;
			else if (o->node_id != 0 && r.node_id != o->node_id)
				kind = AMIL_LEDGER_NODE_MISMATCH;
			else if (r.seq != *next_seq)
				kind = AMIL_LEDGER_SEQ_GAP;
			if (kind != AMIL_LEDGER_INTACT) {
				set_damage(dmg, kind, path, off + p, idx, last);
				if (kind == AMIL_LEDGER_SEQ_GAP) {
					dmg->expected_seq = *next_seq;
					dmg->found_seq = r.seq;
				}
				break;
			}
			if (res->records == 0)
				res->first_seq = r.seq;
			res->last_seq = r.seq;
			res->records++;
			(*next_seq)++;
			if (o->on_record != NULL) {
				ret = o->on_record(o->arg, &r);
				if (ret != 0)
					goto out;
			}
		}
		off += p;
		if (kind == AMIL_LEDGER_INTACT && p < (size_t)got) {
			/* Fewer than AMIL_LEDGER_REC_LEN bytes left in this chunk:
			 * either the next chunk continues it, or the file ends. */
			if (off + AMIL_LEDGER_REC_LEN > size) {
				kind = AMIL_LEDGER_TORN;
				set_damage(dmg, kind, path, off, idx, last);
			}
		}
	}
	if (kind == AMIL_LEDGER_INTACT)
		goto out;
	if (last && o->repair_tail && kind != AMIL_LEDGER_NODE_MISMATCH) {
		uint64_t cut_at = dmg->offset;

		res->tail_cut_records = count_intact_after(fd, cut_at, size);
		ret = save_and_cut(fd, dir, path, cut_at, size, res);
		if (ret == 0)
			memset(dmg, 0, sizeof(*dmg));
		else {
			set_damage(dmg, AMIL_LEDGER_IO_ERROR, path, cut_at, idx, last);
			dmg->err = -ret;
		}
	} else {
		ret = -EBADMSG;
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

int
amil_ledger_scan(const char *dir, const struct amil_ledger_scan_opts *o,
		 struct amil_ledger_scan_result *res)
{
	char **names = NULL;
	uint64_t next_seq = 0;
	uint8_t *chunk = NULL;
	size_t n = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = list_segments(dir, &names, &n);
	if (ret != 0) {
		set_damage(&res->damage, AMIL_LEDGER_IO_ERROR, dir, 0, 0, false);
		res->damage.err = -ret;
		return ret;
	}
	if (n > 0) {
		chunk = malloc(SCAN_CHUNK);
		if (chunk == NULL) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path)) {
			ret = -ENAMETOOLONG;
			set_damage(&res->damage, AMIL_LEDGER_IO_ERROR, dir, 0, 0, false);
			res->damage.err = ENAMETOOLONG;
			goto out;
		}
		ret = scan_segment(dir, path, i + 1 == n, o, res, &next_seq, chunk);
		if (ret != 0)
			goto out;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(chunk);
	return ret;
}
