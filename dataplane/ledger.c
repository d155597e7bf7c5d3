/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Ledger writer.  See ledger.h for the contract and docs/ledger.md for the
 * format and the reasoning.
 *
 * Why plain pwrite() + fdatasync() and not io_uring: the writer has one
 * outstanding batch at a time by design (a batch is acknowledged only when
 * its fdatasync returns, and the next batch forms while it runs), so there
 * is no queue depth for io_uring to exploit; the cost per batch is the
 * device flush, not the system calls (two per batch, a few microseconds
 * against a flush of ~0.4 ms or more).  bench/ledger-bench.sh measures the
 * result against raw append+fdatasync of the same disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_ring_elem.h>

#include "ledger.h"

#define IDLE_SLEEP_NS   20000      /* writer nap when every lane is empty */
#define FILL_SLEEP_NS   10000      /* nap while a batch waits to fill */

_Static_assert(AMIL_LEDGER_REC_LEN % 4 == 0, "rte_ring element size is a multiple of 4");

struct lane {
	struct rte_ring *recs;         /* worker -> writer, AMIL_LEDGER_REC_LEN elements */
	struct rte_ring *refused;      /* writer -> worker, uint64_t wseq */
	uint64_t submitted;            /* worker only: last wseq handed out */
	/* Writer only: wseq of the last record taken off @recs. */
	uint64_t taken __rte_cache_aligned;
	/* Writer stores (release), worker loads (acquire). */
	uint64_t settled __rte_cache_aligned;
} __rte_cache_aligned;

/* One group commit.  The writer fills and seals it; the I/O thread writes
 * and syncs it; the writer settles it. */
struct batch {
	uint8_t *buf;                  /* batch_max records */
	uint32_t n;
	uint32_t lane_n[AMIL_LEDGER_LANES_MAX]; /* records per lane, for settle */
	uint64_t first_ns;             /* when its first record was taken */
	uint64_t sealed_seq;           /* seq its records were sealed from, 0: not sealed */
	int result;                    /* 0 or -errno, from the I/O thread */
};

struct amil_ledger {
	struct amil_ledger_params p;
	char dir[PATH_MAX];
	struct amil_ledger_counters own; /* when p.counters is NULL */
	struct amil_ledger_counters *c;
	int dir_fd;
	int fd;                        /* current segment, -1 when none is usable */
	uint64_t seg_size;             /* durable size of the current segment */
	uint64_t next_seq;             /* I/O thread: seq of the next durable record */
	struct batch b[2];             /* double buffer: one in I/O, one filling */
	/* Writer -> I/O thread hand-off of one batch at a time. */
	pthread_mutex_t mu;
	pthread_cond_t cv_job, cv_done;
	struct batch *job;             /* submitted, not yet taken */
	bool job_done;                 /* the last submitted batch completed */
	bool io_quit;
	bool sync_init;                /* mu and the condvars exist */
	pthread_t thread, io_thread;
	bool running;
	uint32_t stop;                 /* set (release) by amil_ledger_stop */
	uint32_t fail_batches;         /* test hook: fail this many commits */
	int fail_err;
	struct lane lane[AMIL_LEDGER_LANES_MAX];
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
nap(long ns)
{
	struct timespec ts = {0, ns};

	nanosleep(&ts, NULL);
}

/* Write all of @len bytes at @off; -errno on failure (ENOSPC for a short
 * write that made no progress). */
static int
pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -ENOSPC;
		buf += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/*
 * Open a new segment starting at l->next_seq: create it exclusively, write
 * and sync the header, sync the directory so the file itself survives a
 * crash.  On failure nothing is left behind.
 */
static int
segment_open(struct amil_ledger *l)
{
	uint8_t hdr[AMIL_LEDGER_HDR_LEN];
	struct amil_ledger_hdr h = {
		.version = AMIL_LEDGER_VERSION,
		.node_id = l->p.node_id,
		.created_ns = real_ns(),
		.first_seq = l->next_seq,
	};
	char name[64];
	int fd, err;

	amil_ledger_seg_name(name, sizeof(name), l->next_seq);
	/* A segment with this name exists only when a previous attempt
	 * created it and then failed: it holds no record, replace it. */
	unlinkat(l->dir_fd, name, 0);
	fd = openat(l->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	amil_ledger_hdr_encode(hdr, &h);
	err = pwrite_all(fd, hdr, sizeof(hdr), 0);
	if (err == 0 && fdatasync(fd) != 0)
		err = -errno;
	if (err == 0 && fsync(l->dir_fd) != 0)
		err = -errno;
	if (err != 0) {
		close(fd);
		unlinkat(l->dir_fd, name, 0);
		return err;
	}
	l->fd = fd;
	l->seg_size = AMIL_LEDGER_HDR_LEN;
	AMIL_STAT_ADD(l->c->segments, 1);
	return 0;
}

static void
segment_close(struct amil_ledger *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

struct amil_ledger *
amil_ledger_create(const struct amil_ledger_params *p)
{
	struct amil_ledger *l;
	int err;

	if (p == NULL || p->dir == NULL || p->dir[0] == '\0' || p->node_id == 0 ||
	    p->nb_lanes == 0 || p->nb_lanes > AMIL_LEDGER_LANES_MAX ||
	    p->lane_size < 2 || !rte_is_power_of_2(p->lane_size) || p->batch_max == 0 ||
	    p->segment_bytes < AMIL_LEDGER_HDR_LEN + (uint64_t)p->batch_max * AMIL_LEDGER_REC_LEN) {
		rte_errno = EINVAL;
		return NULL;
	}
	l = rte_zmalloc("amil_ledger", sizeof(*l), RTE_CACHE_LINE_SIZE);
	if (l == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	l->p = *p;
	l->c = p->counters != NULL ? p->counters : &l->own;
	l->fd = -1;
	l->dir_fd = -1;
	if ((size_t)snprintf(l->dir, sizeof(l->dir), "%s", p->dir) >= sizeof(l->dir)) {
		err = ENAMETOOLONG;
		goto fail;
	}
	l->p.dir = l->dir;
	for (int k = 0; k < 2; k++) {
		l->b[k].buf = rte_malloc("amil_ledger_batch",
					 (size_t)p->batch_max * AMIL_LEDGER_REC_LEN, RTE_CACHE_LINE_SIZE);
		if (l->b[k].buf == NULL) {
			err = ENOMEM;
			goto fail;
		}
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv_job, NULL);
	pthread_cond_init(&l->cv_done, NULL);
	l->sync_init = true;
	for (unsigned i = 0; i < p->nb_lanes; i++) {
		char name[RTE_RING_NAMESIZE];

		/* Ring names are process-global: make them unique per
		 * ledger instance so a test can hold two. */
		snprintf(name, sizeof(name), "lgr%" PRIxPTR "_%u", (uintptr_t)l & 0xffffffu, i);
		l->lane[i].recs = rte_ring_create_elem(name, AMIL_LEDGER_REC_LEN, p->lane_size,
						       SOCKET_ID_ANY,
						       RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
		snprintf(name, sizeof(name), "lgf%" PRIxPTR "_%u", (uintptr_t)l & 0xffffffu, i);
		l->lane[i].refused = rte_ring_create_elem(name, sizeof(uint64_t), p->lane_size,
							  SOCKET_ID_ANY,
							  RING_F_SP_ENQ | RING_F_SC_DEQ |
							  RING_F_EXACT_SZ);
		if (l->lane[i].recs == NULL || l->lane[i].refused == NULL) {
			err = rte_errno ? rte_errno : ENOMEM;
			goto fail;
		}
	}
	if (mkdir(l->dir, 0750) != 0 && errno != EEXIST) {
		err = errno;
		goto fail;
	}
	l->dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dir_fd < 0) {
		err = errno;
		goto fail;
	}
	AMIL_STAT_ADD(l->c->enabled, 1);
	return l;

fail:
	amil_ledger_free(l);
	rte_errno = err;
	return NULL;
}

/* Take what the lanes hold, up to batch_max, fairly: each lane in turn
 * gets an equal share first, then whatever room is left. */
static uint32_t
gather(struct amil_ledger *l, struct batch *b)
{
	const unsigned nl = l->p.nb_lanes;
	uint32_t have = b->n, room = l->p.batch_max - have;

	for (int pass = 0; pass < 2 && room > 0; pass++) {
		uint32_t share = pass == 0 ? RTE_MAX(room / nl, 1u) : room;

		for (unsigned i = 0; i < nl && room > 0; i++) {
			uint32_t want = RTE_MIN(share, room);
			unsigned got = rte_ring_dequeue_burst_elem(
				l->lane[i].recs, b->buf + (size_t)have * AMIL_LEDGER_REC_LEN,
				AMIL_LEDGER_REC_LEN, want, NULL);

			/* The batch interleaves lanes; what settle() needs is
			 * how many records of each lane it holds (a lane's
			 * records are taken in its order). */
			b->lane_n[i] += got;
			have += got;
			room -= got;
		}
	}
	if (b->n == 0 && have > 0)
		b->first_ns = mono_ns();
	b->n = have;
	return have;
}

/* Publish the outcome of the batch to every lane that had records in it. */
static void
settle(struct amil_ledger *l, struct batch *b, bool durable)
{
	for (unsigned i = 0; i < l->p.nb_lanes; i++) {
		struct lane *ln = &l->lane[i];
		uint32_t k = b->lane_n[i];

		if (k == 0)
			continue;
		if (!durable)
			for (uint32_t j = 1; j <= k; j++) {
				uint64_t w = ln->taken + j;

				/* Cannot fail: at most lane_size records of a
				 * lane are unsettled, so at most that many
				 * refusals are waiting. */
				if (rte_ring_enqueue_elem(ln->refused, &w, sizeof(w)) != 0)
					RTE_VERIFY(0 && "refusal ring overflow");
			}
		ln->taken += k;
		/* Release: the refusals above are visible before the worker
		 * sees the new settled mark. */
		__atomic_store_n(&ln->settled, ln->taken, __ATOMIC_RELEASE);
		b->lane_n[i] = 0;
	}
}

/* Seal every record of @b: sequence numbers from @first, the time now. */
static void
seal(struct batch *b, uint64_t first)
{
	uint64_t now = real_ns();

	for (uint32_t i = 0; i < b->n; i++)
		amil_ledger_rec_seal(b->buf + (size_t)i * AMIL_LEDGER_REC_LEN, first + i, now);
	b->sealed_seq = first;
}

/* I/O thread: write and sync @b.  0, or -errno with the segment cut back. */
static int
commit(struct amil_ledger *l, struct batch *b)
{
	const uint32_t n = b->n;
	const size_t len = (size_t)n * AMIL_LEDGER_REC_LEN;
	uint64_t t0;
	int err;

	if (unlikely(__atomic_load_n(&l->fail_batches, __ATOMIC_ACQUIRE) > 0)) {
		__atomic_fetch_sub(&l->fail_batches, 1, __ATOMIC_RELEASE);
		return -l->fail_err;
	}

	if (l->fd >= 0 && l->seg_size + len > l->p.segment_bytes) {
		segment_close(l);
		err = segment_open(l);
		if (err != 0)
			return err;
	}
	if (l->fd < 0) {
		err = segment_open(l);
		if (err != 0)
			return err;
	}
	/* Sealed ahead assuming the batch before succeeds; if it did not,
	 * its sequence numbers are free again: the ledger has no gaps. */
	if (b->sealed_seq != l->next_seq)
		seal(b, l->next_seq);
	t0 = mono_ns();
	err = pwrite_all(l->fd, b->buf, len, l->seg_size);
	if (err == 0 && fdatasync(l->fd) != 0) {
		err = -errno;
		/* After a failed fdatasync the page cache may have dropped
		 * the dirty pages and will not report it again: this file
		 * is never appended to again. */
		if (ftruncate(l->fd, (off_t)l->seg_size) == 0)
			(void)fdatasync(l->fd);
		segment_close(l);
		return err;
	}
	if (err != 0) {
		/* A short or failed write: cut back to the durable size so
		 * the file never holds a record that was refused. */
		if (ftruncate(l->fd, (off_t)l->seg_size) != 0 || fdatasync(l->fd) != 0)
			segment_close(l);
		return err;
	}
	t0 = mono_ns() - t0;
	l->seg_size += len;
	l->next_seq += n;
	AMIL_STAT_ADD(l->c->records, n);
	AMIL_STAT_ADD(l->c->batches, 1);
	AMIL_STAT_ADD(l->c->bytes, len);
	AMIL_STAT_ADD(l->c->sync_ns_total, t0);
	if (t0 > l->c->sync_ns_max)
		AMIL_STAT_ADD(l->c->sync_ns_max, t0 - l->c->sync_ns_max);
	if (n > l->c->batch_max_seen)
		AMIL_STAT_ADD(l->c->batch_max_seen, n - l->c->batch_max_seen);
	__atomic_store_n(&l->c->next_seq, l->next_seq, __ATOMIC_RELAXED);
	return 0;
}

static bool
lanes_empty(const struct amil_ledger *l)
{
	for (unsigned i = 0; i < l->p.nb_lanes; i++)
		if (!rte_ring_empty(l->lane[i].recs))
			return false;
	return true;
}

/* The I/O thread: one batch at a time, write + fdatasync. */
static void *
io_main(void *arg)
{
	struct amil_ledger *l = arg;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct batch *b;

		while (l->job == NULL && !l->io_quit)
			pthread_cond_wait(&l->cv_job, &l->mu);
		if (l->job == NULL)
			break;
		b = l->job;
		l->job = NULL;
		pthread_mutex_unlock(&l->mu);
		b->result = commit(l, b);
		pthread_mutex_lock(&l->mu);
		l->job_done = true;
		pthread_cond_signal(&l->cv_done);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void
submit(struct amil_ledger *l, struct batch *b)
{
	pthread_mutex_lock(&l->mu);
	l->job = b;
	l->job_done = false;
	pthread_cond_signal(&l->cv_job);
	pthread_mutex_unlock(&l->mu);
}

static bool
io_done(struct amil_ledger *l, bool wait)
{
	bool done;

	pthread_mutex_lock(&l->mu);
	while (wait && !l->job_done)
		pthread_cond_wait(&l->cv_done, &l->mu);
	done = l->job_done;
	pthread_mutex_unlock(&l->mu);
	return done;
}

/* The outcome of a batch the I/O thread finished, to its lanes. */
static void
finish(struct amil_ledger *l, struct batch *b)
{
	if (b->result == 0) {
		if (AMIL_STAT_GET(l->c->alarm))
			AMIL_STAT_ADD(l->c->alarm, -1);
		settle(l, b, true);
	} else {
		AMIL_STAT_ADD(l->c->write_errors, 1);
		AMIL_STAT_ADD(l->c->refused, b->n);
		__atomic_store_n(&l->c->last_errno, (uint64_t)-b->result, __ATOMIC_RELAXED);
		if (!AMIL_STAT_GET(l->c->alarm))
			AMIL_STAT_ADD(l->c->alarm, 1);
		settle(l, b, false);
	}
	b->n = 0;
	b->sealed_seq = 0;
}

/*
 * The writer: a two-stage pipeline.  While the I/O thread writes and
 * syncs batch N, this thread gathers batch N+1 from the lanes and, once it
 * is full, seals it (sequence numbers, time, CRC32C), so the CPU work of a
 * batch overlaps the previous batch's flush instead of adding to it.  One
 * batch is in the I/O thread at a time: a batch is acknowledged when its
 * own fdatasync returns, and batches reach the disk in sequence order.
 */
static void *
writer_main(void *arg)
{
	struct amil_ledger *l = arg;
	struct batch *inflight = NULL;
	uint64_t pred_next = l->next_seq;  /* seq after everything submitted */
	int cur = 0;

	/* Naps of tens of microseconds must not become the default 50 us
	 * timer slack on top. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	for (;;) {
		struct batch *b = &l->b[cur];
		bool full;

		gather(l, b);
		full = b->n == l->p.batch_max;
		if (inflight != NULL) {
			if (full && b->sealed_seq == 0)
				seal(b, pred_next);   /* overlaps the flush */
			if (!io_done(l, full))
				goto nap;
			if (inflight->result != 0)
				pred_next -= inflight->n;  /* its seqs are free again */
			finish(l, inflight);
			if (inflight->result != 0)
				nap(1000000);  /* a full disk: refuse in batches, do not spin */
			inflight = NULL;
			continue;
		}
		if (b->n == 0) {
			if (__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) && lanes_empty(l))
				break;
			nap(IDLE_SLEEP_NS);
			continue;
		}
		if (!full && l->p.max_wait_ns > 0 && mono_ns() - b->first_ns < l->p.max_wait_ns)
			goto nap;
		if (b->sealed_seq != pred_next)
			seal(b, pred_next);
		pred_next += b->n;
		submit(l, b);
		inflight = b;
		cur ^= 1;
		continue;
nap:
		nap(FILL_SLEEP_NS);
	}
	return NULL;
}

int
amil_ledger_start(struct amil_ledger *l, uint64_t next_seq)
{
	int rc;

	if (l == NULL || l->running || next_seq == 0)
		return -EINVAL;
	l->next_seq = next_seq;
	rc = segment_open(l);
	if (rc != 0)
		return rc;
	__atomic_store_n(&l->c->next_seq, l->next_seq, __ATOMIC_RELAXED);
	rc = rte_ctrl_thread_create(&l->io_thread, "amil-ledger-io", NULL, io_main, l);
	if (rc != 0)
		return -rc;
	rc = rte_ctrl_thread_create(&l->thread, "amil-ledger", NULL, writer_main, l);
	if (rc != 0) {
		pthread_mutex_lock(&l->mu);
		l->io_quit = true;
		pthread_cond_signal(&l->cv_job);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->io_thread, NULL);
		return -rc;
	}
	l->running = true;
	return 0;
}

int
amil_ledger_stop(struct amil_ledger *l)
{
	if (l == NULL)
		return -EINVAL;
	if (l->running) {
		/* The writer returns once every submitted record is settled. */
		__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
		pthread_join(l->thread, NULL);
		pthread_mutex_lock(&l->mu);
		l->io_quit = true;
		pthread_cond_signal(&l->cv_job);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->io_thread, NULL);
		l->running = false;
	}
	segment_close(l);
	return 0;
}

void
amil_ledger_free(struct amil_ledger *l)
{
	if (l == NULL)
		return;
	amil_ledger_stop(l);
	for (unsigned i = 0; i < AMIL_LEDGER_LANES_MAX; i++) {
		rte_ring_free(l->lane[i].recs);
		rte_ring_free(l->lane[i].refused);
	}
	if (l->dir_fd >= 0)
		close(l->dir_fd);
	rte_free(l->b[0].buf);
	rte_free(l->b[1].buf);
	if (l->sync_init) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv_job);
		pthread_cond_destroy(&l->cv_done);
	}
	rte_free(l);
}

uint64_t
amil_ledger_submit(struct amil_ledger *l, unsigned lane, const void *recs, unsigned n)
{
	struct lane *ln = &l->lane[lane];

	if (n == 0 ||
	    rte_ring_enqueue_bulk_elem(ln->recs, recs, AMIL_LEDGER_REC_LEN, n, NULL) != n)
		return 0;
	ln->submitted += n;
	return ln->submitted;
}

uint64_t
amil_ledger_settled(const struct amil_ledger *l, unsigned lane)
{
	return __atomic_load_n(&l->lane[lane].settled, __ATOMIC_ACQUIRE);
}

unsigned
amil_ledger_refused(struct amil_ledger *l, unsigned lane, uint64_t *wseq, unsigned max)
{
	return rte_ring_dequeue_burst_elem(l->lane[lane].refused, wseq, sizeof(uint64_t), max,
					   NULL);
}

unsigned
amil_ledger_lane_room(const struct amil_ledger *l, unsigned lane)
{
	return rte_ring_free_count(l->lane[lane].recs);
}

struct recover_ctx {
	int (*on_record)(void *arg, const struct amil_ledger_rec *r);
	void *arg;
	uint64_t last_first_seq;       /* first_seq of the last intact header */
};

static int
recover_segment(void *arg, const char *path, const struct amil_ledger_hdr *h, uint64_t size)
{
	struct recover_ctx *x = arg;

	RTE_SET_USED(path);
	RTE_SET_USED(size);
	x->last_first_seq = h->first_seq;
	return 0;
}

static int
recover_record(void *arg, const struct amil_ledger_rec *r)
{
	struct recover_ctx *x = arg;

	return x->on_record != NULL ? x->on_record(x->arg, r) : 0;
}

int
amil_ledger_recover(const char *dir, uint32_t node_id,
		    int (*on_record)(void *arg, const struct amil_ledger_rec *r), void *arg,
		    struct amil_ledger_recovery *out)
{
	struct recover_ctx x = {.on_record = on_record, .arg = arg};
	struct amil_ledger_scan_opts o = {
		.on_record = recover_record,
		.on_segment = recover_segment,
		.arg = &x,
		.repair_tail = true,
		.node_id = node_id,
	};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = amil_ledger_scan(dir, &o, &out->scan);
	if (rc != 0)
		return rc < 0 ? rc : -ECANCELED;
	/* The sequence goes on after the last record; a ledger whose newest
	 * segments hold no record (older ones archived) goes on from where
	 * the last header says, never back to 1. */
	out->next_seq = out->scan.last_seq + 1;
	if (x.last_first_seq > out->next_seq)
		out->next_seq = x.last_first_seq;
	return 0;
}

void
amil_ledger_fail_next(struct amil_ledger *l, int err, unsigned batches)
{
	l->fail_err = err;
	__atomic_store_n(&l->fail_batches, batches, __ATOMIC_RELEASE);
}
