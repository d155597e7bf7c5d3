/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-ledger-bench: what the durable ledger costs, on this machine's disk.
 *
 *   amil-ledger-bench [EAL options] -- raw    DIR SECONDS BATCH
 *   amil-ledger-bench [EAL options] -- writer DIR SECONDS BATCH WAIT_US LANES PENDING [RATE]
 *
 * raw:    append BATCH records of 80 bytes with pwrite() and fdatasync()
 *         after each, for SECONDS: the disk's append+fdatasync bandwidth at
 *         that batch size, nothing of ours in the way.
 * writer: the data plane's ledger writer (dataplane/ledger.c) with LANES
 *         producer threads standing in for workers, each keeping up to
 *         PENDING records in flight (as a worker holds ACKs), for SECONDS:
 *         durable records per second, and the time from submit to durable
 *         (what an ACK waits), p50/p99/max over every record.  With RATE
 *         (records/s over all lanes) the producers offer that rate instead
 *         of as many as the window allows: latency at a given load.
 * One JSON line on stdout.  bench/ledger-bench.sh runs both and compares.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_pause.h>

#include "amil_ledger_format.h"
#include "ledger.h"
#include "stats.h"

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
sample_record(uint8_t *buf, uint64_t i, unsigned lane)
{
	const struct amil_ledger_rec r = {
		.center_id = 1001,
		.donation_id = i + 1,
		.donor_id = 7,
		.campaign_id = 3,
		.currency = {'U', 'S', 'D'},
		.exponent = 2,
		.amount_minor = 10000 + (int64_t)(i % 1000),
		.levy_minor = 250,
		.node_id = 1,
		.worker = (uint16_t)lane,
		.rate_bp = 250,
	};

	amil_ledger_rec_encode(buf, &r);
}

#define HIST_US 100000
static uint64_t pct(const uint64_t *h, uint64_t total, double q);

static int
run_raw(const char *dir, double secs, unsigned batch)
{
	static uint64_t hist[HIST_US + 1];
	char path[4096];
	size_t len = (size_t)batch * AMIL_LEDGER_REC_LEN;
	uint8_t *buf = malloc(len);
	uint64_t t0, end, off = 0, commits = 0, max_ns = 0;
	int fd;

	if (buf == NULL)
		return 1;
	for (unsigned i = 0; i < batch; i++)
		sample_record(buf + (size_t)i * AMIL_LEDGER_REC_LEN, i, 0);
	snprintf(path, sizeof(path), "%s/raw-bench.dat", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		free(buf);
		return 1;
	}
	t0 = mono_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	while (mono_ns() < end) {
		uint64_t a = mono_ns();

		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len || fdatasync(fd) != 0) {
			fprintf(stderr, "write: %s\n", strerror(errno));
			break;
		}
		a = mono_ns() - a;
		if (a > max_ns)
			max_ns = a;
		hist[a / 1000 < HIST_US ? a / 1000 : HIST_US]++;
		off += len;
		commits++;
	}
	t0 = mono_ns() - t0;
	close(fd);
	unlink(path);
	free(buf);
	printf("{\"mode\": \"raw\", \"batch\": %u, \"seconds\": %.3f, \"commits\": %" PRIu64
	       ", \"records_per_s\": %.0f, \"mb_per_s\": %.2f, \"commit_ms_mean\": %.3f"
	       ", \"commit_ms_max\": %.3f, \"commit_us\": {\"p50\": %" PRIu64 ", \"p99\": %" PRIu64
	       "}}\n",
	       batch, t0 / 1e9, commits, (double)commits * batch / (t0 / 1e9),
	       (double)off / (t0 / 1e9) / 1e6, commits ? t0 / 1e6 / (double)commits : 0.0,
	       max_ns / 1e6, pct(hist, commits, 0.5), pct(hist, commits, 0.99));
	return 0;
}

/* Latency histograms: 1 us buckets up to 100 ms (HIST_US). */

struct producer {
	struct amil_ledger *l;
	unsigned lane;
	uint32_t pending;
	uint64_t gap_ns;               /* between bursts of 32; 0: unpaced */
	uint64_t refused;
	volatile int *stop;
	uint64_t *submit_ns;           /* [pending] by wseq % pending */
	uint64_t *hist;                /* [HIST_US + 1] */
	uint64_t durable;
	pthread_t th;
};

static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	uint8_t recs[32][AMIL_LEDGER_REC_LEN];
	uint64_t submitted = 0, seen = 0, i = (uint64_t)p->lane << 40, due = mono_ns();

	for (unsigned k = 0; k < 32; k++)
		sample_record(recs[k], i + k, p->lane);
	while (!*p->stop || seen < submitted) {
		uint64_t settled = amil_ledger_settled(p->l, p->lane), now = mono_ns();

		/* Every record settled since last time: its latency. */
		for (; seen < settled; seen++) {
			uint64_t us = (now - p->submit_ns[(seen + 1) % p->pending]) / 1000;

			p->hist[us < HIST_US ? us : HIST_US]++;
		}
		/* As a worker: keep at most @pending records in flight. */
		while (p->refused < UINT64_MAX &&
		       amil_ledger_refused(p->l, p->lane, &i, 1) == 1)
			p->refused++;
		if (!*p->stop && submitted - seen + 32 <= p->pending &&
		    (p->gap_ns == 0 || now >= due)) {
			uint64_t w = amil_ledger_submit(p->l, p->lane, recs, 32);

			if (w != 0) {
				for (uint64_t k = w - 31; k <= w; k++)
					p->submit_ns[k % p->pending] = now;
				submitted = w;
				due += p->gap_ns;
				continue;
			}
		}
		rte_pause();
	}
	p->durable = seen;
	return NULL;
}

static uint64_t
pct(const uint64_t *h, uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)total), acc = 0;

	for (unsigned us = 0; us <= HIST_US; us++) {
		acc += h[us];
		if (acc > want)
			return us;
	}
	return HIST_US;
}

static int
run_writer(const char *dir, double secs, unsigned batch, unsigned wait_us, unsigned lanes,
	   unsigned pending, double rate)
{
	static struct amil_ledger_counters lc;
	struct amil_ledger_params lp = {
		.dir = dir,
		.node_id = 1,
		.nb_lanes = lanes,
		.lane_size = pending,
		.batch_max = batch,
		.max_wait_ns = (uint64_t)wait_us * 1000,
		.segment_bytes = 1ull << 30,
		.counters = &lc,
	};
	struct producer p[AMIL_LEDGER_LANES_MAX];
	uint64_t *hist = calloc(HIST_US + 1, sizeof(*hist)), total = 0, durable = 0, refused = 0, t0;
	volatile int stop = 0;
	struct amil_ledger *l;
	unsigned maxus = 0;

	if (hist == NULL || lanes == 0 || lanes > AMIL_LEDGER_LANES_MAX)
		return 1;
	l = amil_ledger_create(&lp);
	if (l == NULL || amil_ledger_start(l, 1) != 0) {
		fprintf(stderr, "ledger: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	t0 = mono_ns();
	for (unsigned i = 0; i < lanes; i++) {
		p[i] = (struct producer){.l = l, .lane = i, .pending = pending, .stop = &stop,
					 .gap_ns = rate > 0 ? (uint64_t)(32e9 * lanes / rate) : 0};
		p[i].submit_ns = calloc(pending, sizeof(uint64_t));
		p[i].hist = calloc(HIST_US + 1, sizeof(uint64_t));
		if (p[i].submit_ns == NULL || p[i].hist == NULL)
			return 1;
		pthread_create(&p[i].th, NULL, producer_main, &p[i]);
	}
	usleep((useconds_t)(secs * 1e6));
	stop = 1;
	for (unsigned i = 0; i < lanes; i++) {
		pthread_join(p[i].th, NULL);
		durable += p[i].durable;
		refused += p[i].refused;
		for (unsigned us = 0; us <= HIST_US; us++)
			hist[us] += p[i].hist[us];
	}
	t0 = mono_ns() - t0;
	amil_ledger_stop(l);
	for (unsigned us = 0; us <= HIST_US; us++) {
		total += hist[us];
		if (hist[us])
			maxus = us;
	}
	durable -= refused;
	printf("{\"mode\": \"writer\", \"batch\": %u, \"wait_us\": %u, \"lanes\": %u, \"pending\": %u"
	       ", \"offered_per_s\": %.0f, \"refused\": %" PRIu64
	       ", \"seconds\": %.3f, \"durable\": %" PRIu64 ", \"records_per_s\": %.0f"
	       ", \"mb_per_s\": %.2f, \"batches\": %" PRIu64 ", \"mean_batch\": %.0f"
	       ", \"latency_us\": {\"p50\": %" PRIu64 ", \"p99\": %" PRIu64 ", \"max\": %u}}\n",
	       batch, wait_us, lanes, pending, rate, refused, t0 / 1e9, durable, (double)durable / (t0 / 1e9),
	       (double)durable * AMIL_LEDGER_REC_LEN / (t0 / 1e9) / 1e6, lc.batches,
	       lc.batches ? (double)lc.records / (double)lc.batches : 0.0, pct(hist, total, 0.50),
	       pct(hist, total, 0.99), maxus);
	amil_ledger_free(l);
	for (unsigned i = 0; i < lanes; i++) {
		free(p[i].submit_ns);
		free(p[i].hist);
	}
	free(hist);
	return 0;
}

int
main(int argc, char **argv)
{
	int n = rte_eal_init(argc, argv);

	if (n < 0) {
		fprintf(stderr, "EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= n;
	argv += n;
	if (argc >= 5 && strcmp(argv[1], "raw") == 0)
		return run_raw(argv[2], atof(argv[3]), (unsigned)atoi(argv[4]));
	if (argc >= 8 && strcmp(argv[1], "writer") == 0)
		return run_writer(argv[2], atof(argv[3]), (unsigned)atoi(argv[4]),
				  (unsigned)atoi(argv[5]), (unsigned)atoi(argv[6]),
				  (unsigned)atoi(argv[7]), argc >= 9 ? atof(argv[8]) : 0);
	fprintf(stderr,
		"usage: amil-ledger-bench [EAL] -- raw DIR SECONDS BATCH\n"
		"       amil-ledger-bench [EAL] -- writer DIR SECONDS BATCH WAIT_US LANES PENDING "
		"[RATE]\n");
	return 64;
}
