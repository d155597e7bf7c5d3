/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-dataplane: one appliance's donation data plane.
 *
 *   amil-dataplane [EAL options] -- [options]      (--help for the options)
 *
 * Lcore roles.  The main lcore is the I/O lcore: it polls RX queue 0 of
 * every port, classifies frames (net.h), answers ARP / NS / echo itself and
 * hands each donation to the worker that owns its (center_id, donation_id)
 * (route.h) through a single-producer/single-consumer ring on the worker's
 * socket.  Every other EAL lcore is a worker (worker.h).  With a single
 * lcore the main lcore does all of it, run-to-completion, with no ring.
 *
 * Workers transmit their ACKs on their own TX queue (1 + worker index) when
 * every port has that many TX queues; otherwise (net_pcap, some vdevs) they
 * pass ACKs back through a per-worker ring and the I/O lcore transmits.
 *
 * Shutdown (SIGINT/SIGTERM): the I/O lcore stops polling RX, workers drain
 * their rings and answer everything already received, the I/O lcore
 * transmits every pending ACK, ports are stopped and closed (flushing pcap
 * output), and the counters are written as JSON.  Nothing received before
 * the signal goes unanswered unless a queue was full (counted).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_ring.h>

#ifdef AMIL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "amil_centers.h"
#include "config.h"
#include "ctl.h"
#include "ledger.h"
#include "net.h"
#include "port.h"
#include "route.h"
#include "stats.h"
#include "worker.h"

#define PROG "amil-dataplane"
#define TX_WAIT_US 100                 /* how long a full TX queue may stall a burst */
#define TX_STALL_MS 50                 /* a TX queue taking nothing this long: peer gone */

/*
 * ACKs waiting for room in a TX queue.  A released ACK (its record is
 * durable) is not thrown away because a burst of them met a full queue:
 * the lcore keeps it here and offers it again on every turn, and takes no
 * more from the ledger until this is empty, so a slow peer holds ACKs
 * back (and, through the held queue, RX) instead of losing them.  Only a
 * queue that takes nothing for TX_STALL_MS (a peer gone away) has its
 * backlog dropped and counted in tx_full; the centers' retransmits then get
 * DUPLICATE.
 */
struct tx_backlog {
	struct rte_mbuf *m[AMIL_WORKER_BURST_MAX];
	uint16_t n;
	uint64_t stall_tsc;            /* since when nothing was taken, 0: moving */
};

struct worker_ctx {
	struct tx_backlog bl;          /* direct TX only */
	unsigned id;
	unsigned lcore_id;
	struct amil_worker *w;
	struct rte_ring *rx_ring;      /* I/O lcore -> worker, SP/SC */
	struct rte_ring *tx_ring;      /* worker -> I/O lcore (no direct TX), SP/SC */
	struct amil_lcore_stats *st;
	uint16_t txq;                  /* direct TX queue */
} __rte_cache_aligned;

struct app {
	struct amil_config cfg;
	struct amil_centers *centers;
	const struct amil_currency_set *currencies;
	uint16_t nb_ports;
	struct amil_net_cfg net[RTE_MAX_ETHPORTS];
	struct rte_mempool *pool[RTE_MAX_NUMA_NODES];
	struct amil_stats *stats;
	struct amil_lcore_stats *io_st;
	unsigned nb_workers;
	struct worker_ctx wk[RTE_MAX_LCORE];
	struct amil_worker *rtc;       /* run-to-completion worker (one lcore) */
	struct amil_ledger *ledger;    /* NULL with --no-ledger */
	struct amil_dp_ctl *ctl;       /* --ctl-sock, or NULL */
	bool direct_tx;
	uint16_t burst;
	bool ports_started[RTE_MAX_ETHPORTS];
	struct tx_backlog io_bl;       /* I/O lcore: run-to-completion or drained rings */
};

/* Set by the signal handler; polled by the I/O lcore. */
static volatile sig_atomic_t stop_rx;
/* Set (release) by the I/O lcore once RX stopped; workers drain and exit. */
static uint32_t stop_workers;
/* Workers that finished draining (release); the I/O lcore waits for all. */
static uint32_t workers_done;

static void
on_signal(int sig)
{
	(void)sig;
	stop_rx = 1;
}

/* TSC ticks of TX_WAIT_US and TX_STALL_MS, set once at start-up. */
static uint64_t tx_wait_tsc, tx_stall_tsc;

/*
 * Transmit all of @n frames on (port, queue).  A full queue is retried for
 * up to TX_WAIT_US: long enough to ride out a peer that is briefly slow to
 * drain (memif, a busy link), short enough that RX is not starved.  What
 * still does not fit is freed and counted in tx_full; the center's
 * retransmit then gets a DUPLICATE answer, so no donation is lost, only an
 * ACK.
 */
static void
tx_all(uint16_t port, uint16_t queue, struct rte_mbuf **m, uint16_t n,
       struct amil_port_counters *pc)
{
	uint16_t sent = rte_eth_tx_burst(port, queue, m, n);

	if (unlikely(sent < n)) {
		uint64_t deadline = rte_rdtsc() + tx_wait_tsc;

		do {
			rte_pause();
			sent += rte_eth_tx_burst(port, queue, m + sent, n - sent);
		} while (sent < n && rte_rdtsc() < deadline);
	}
	AMIL_STAT_ADD(pc->tx, sent);
	if (unlikely(sent < n)) {
		rte_pktmbuf_free_bulk(m + sent, n - sent);
		AMIL_STAT_ADD(pc->tx_full, n - sent);
	}
}

/* Transmit ACKs grouped by their port, runs kept in order. */
static void
tx_by_port(struct amil_lcore_stats *st, uint16_t queue, struct rte_mbuf **m, uint16_t n)
{
	uint16_t i = 0;

	while (i < n) {
		uint16_t port = m[i]->port, j = i + 1;

		while (j < n && m[j]->port == port)
			j++;
		tx_all(port, queue, m + i, j - i, &st->port[port]);
		i = j;
	}
}

/*
 * Offer the backlog to the devices, runs of the same port in order; keep
 * what they do not take.  @return true when the backlog is empty.
 */
static bool
backlog_flush(struct tx_backlog *b, struct amil_lcore_stats *st, uint16_t queue)
{
	uint16_t i = 0;

	while (i < b->n) {
		uint16_t port = b->m[i]->port, j = i + 1, sent;

		while (j < b->n && b->m[j]->port == port)
			j++;
		sent = rte_eth_tx_burst(port, queue, b->m + i, j - i);
		AMIL_STAT_ADD(st->port[port].tx, sent);
		i += sent;
		if (i < j)
			break;
	}
	if (i > 0) {
		b->n -= i;
		memmove(b->m, b->m + i, b->n * sizeof(b->m[0]));
		b->stall_tsc = 0;
	} else if (b->n > 0) {
		uint64_t now = rte_rdtsc();

		if (b->stall_tsc == 0) {
			b->stall_tsc = now;
		} else if (now - b->stall_tsc > tx_stall_tsc) {
			for (uint16_t k = 0; k < b->n; k++)
				AMIL_STAT_ADD(st->port[b->m[k]->port].tx_full, 1);
			rte_pktmbuf_free_bulk(b->m, b->n);
			b->n = 0;
			b->stall_tsc = 0;
		}
	}
	return b->n == 0;
}

/* Append @n mbufs (n <= room) and offer them at once. */
static void
backlog_send(struct tx_backlog *b, struct amil_lcore_stats *st, uint16_t queue,
	     struct rte_mbuf **m, uint16_t n)
{
	RTE_ASSERT(b->n + n <= AMIL_WORKER_BURST_MAX);
	memcpy(b->m + b->n, m, n * sizeof(m[0]));
	b->n += n;
	backlog_flush(b, st, queue);
}

/* Send a worker's ACKs: on its own TX queue, or through the I/O lcore. */
static void
worker_emit(struct worker_ctx *c, bool direct, struct rte_mbuf **out, uint16_t nout)
{
	unsigned done = 0;

	if (nout == 0)
		return;
	if (direct) {
		tx_by_port(c->st, c->txq, out, nout);
		return;
	}
	/* The I/O lcore keeps draining until every worker is done, so this
	 * wait is bounded. */
	while (done < nout) {
		done += rte_ring_enqueue_burst(c->tx_ring, (void **)out + done, nout - done, NULL);
		if (done < nout)
			rte_pause();
	}
}

static int
worker_main(void *arg)
{
	struct worker_ctx *c = arg;
	struct rte_mbuf *in[AMIL_WORKER_BURST_MAX], *out[AMIL_WORKER_BURST_MAX];
	const unsigned burst = AMIL_WORKER_BURST_MAX;
	const bool direct = c->tx_ring == NULL;

	for (;;) {
		unsigned n = 0;
		uint16_t nout, nrel;

		/* Held ACKs (ledger) bound what may be taken: a worker the
		 * disk holds back leaves frames in its ring, and the ring full
		 * stops the I/O lcore's RX (backpressure, nothing dropped). */
		if (amil_worker_room(c->w) >= burst)
			n = rte_ring_dequeue_burst(c->rx_ring, (void **)in, burst, NULL);
		nout = n > 0 ? amil_worker_process(c->w, in, (uint16_t)n, out, rte_rdtsc()) : 0;
		worker_emit(c, direct, out, nout);
		nrel = 0;
		if (!direct) {
			nrel = amil_worker_release(c->w, out, AMIL_WORKER_BURST_MAX);
			worker_emit(c, direct, out, nrel);
		} else if (backlog_flush(&c->bl, c->st, c->txq)) {
			nrel = amil_worker_release(c->w, out, AMIL_WORKER_BURST_MAX);
			if (nrel > 0)
				backlog_send(&c->bl, c->st, c->txq, out, nrel);
		}
		if (n == 0 && nrel == 0) {
			/* Acquire pairs with the I/O lcore's release: once the flag
			 * is seen, no more frames will be enqueued, so an empty
			 * ring, nothing held and nothing waiting to be sent means
			 * done. */
			if (__atomic_load_n(&stop_workers, __ATOMIC_ACQUIRE) &&
			    rte_ring_empty(c->rx_ring) && amil_worker_held(c->w) == 0 &&
			    c->bl.n == 0)
				break;
			rte_pause();
		}
	}
	__atomic_fetch_add(&workers_done, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Drain every worker's TX ring onto queue 0 (no direct TX), through the
 * I/O lcore's backlog: a ring is read only as fast as the queue takes. */
static void
drain_tx_rings(struct app *a)
{
	struct rte_mbuf *m[AMIL_WORKER_BURST_MAX];

	for (unsigned w = 0; w < a->nb_workers; w++) {
		unsigned n;

		while (backlog_flush(&a->io_bl, a->io_st, 0) &&
		       (n = rte_ring_dequeue_burst(a->wk[w].tx_ring, (void **)m,
						   AMIL_WORKER_BURST_MAX, NULL)) > 0)
			backlog_send(&a->io_bl, a->io_st, 0, m, (uint16_t)n);
	}
}

/* One RX burst of one port: classify, answer, dispatch. */
static inline void
io_poll_port(struct app *a, uint16_t port)
{
	struct rte_mbuf *rx[AMIL_WORKER_BURST_MAX], *reply[AMIL_WORKER_BURST_MAX];
	struct rte_mbuf *drop[AMIL_WORKER_BURST_MAX], *don[AMIL_WORKER_BURST_MAX];
	struct rte_mbuf *wq[RTE_MAX_LCORE > 64 ? 64 : RTE_MAX_LCORE][AMIL_WORKER_BURST_MAX];
	uint16_t wn[64];
	struct amil_port_counters *pc = &a->io_st->port[port];
	const struct amil_net_cfg *net = &a->net[port];
	uint64_t dropcnt[AMIL_DROP_MAX] = {0};
	uint16_t n, nr = 0, nd = 0, ndon = 0;

	n = rte_eth_rx_burst(port, 0, rx, a->burst);
	if (n == 0)
		return;
	AMIL_STAT_ADD(pc->rx, n);
	if (a->rtc == NULL)
		memset(wn, 0, sizeof(wn[0]) * a->nb_workers);

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = rx[i];
		uint16_t off;
		uint8_t reason;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void *));
		switch (amil_net_classify(net, m, &off, &reason)) {
		case AMIL_NET_DONATION:
			if (a->rtc != NULL) {
				don[ndon++] = m;
			} else {
				const uint8_t *p = rte_pktmbuf_mtod_offset(m, const uint8_t *, off);
				uint64_t did;
				uint32_t w;

				/* donation_id at bytes 8..15, big-endian; the route
				 * only needs the key, not an authenticated message. */
				memcpy(&did, p + 8, sizeof(did));
				w = amil_route_worker(amil_wire_center_id(p), rte_be_to_cpu_64(did),
						      a->nb_workers);
				wq[w][wn[w]++] = m;
			}
			break;
		case AMIL_NET_REPLY:
			reply[nr++] = m;
			break;
		default:
			dropcnt[reason < AMIL_DROP_MAX ? reason : AMIL_DROP_MALFORMED]++;
			drop[nd++] = m;
			break;
		}
	}

	if (unlikely(nd > 0)) {
		rte_pktmbuf_free_bulk(drop, nd);
		for (unsigned r = 0; r < AMIL_DROP_MAX; r++)
			if (dropcnt[r])
				AMIL_STAT_ADD(pc->drop[r], dropcnt[r]);
	}
	if (unlikely(nr > 0)) {
		AMIL_STAT_ADD(pc->replies, nr);
		tx_all(port, 0, reply, nr, pc);
	}
	if (a->rtc != NULL) {
		if (ndon > 0) {
			struct rte_mbuf *out[AMIL_WORKER_BURST_MAX];
			uint16_t nout = amil_worker_process(a->rtc, don, ndon, out, rte_rdtsc());

			if (nout > 0)
				tx_all(port, 0, out, nout, pc);
		}
		return;
	}
	for (unsigned w = 0; w < a->nb_workers; w++) {
		unsigned k;

		if (wn[w] == 0)
			continue;
		k = rte_ring_enqueue_burst(a->wk[w].rx_ring, (void **)wq[w], wn[w], NULL);
		if (unlikely(k < wn[w])) {
			rte_pktmbuf_free_bulk(wq[w] + k, wn[w] - k);
			AMIL_STAT_ADD(pc->ring_full, wn[w] - k);
		}
	}
}

/*
 * Backpressure: pull a burst from the ports only when every worker ring can
 * take a whole one.  A slow worker then leaves frames in the device, where
 * the device counts what it cannot hold (imissed) and lossless vdevs
 * (pcap, memif, ring) simply wait, instead of frames being received and
 * dropped here.  ring_full stays as a guard for what this cannot foresee.
 */
static inline bool
rings_have_room(const struct app *a)
{
	if (a->rtc != NULL)
		return amil_worker_room(a->rtc) >= a->burst;
	for (unsigned w = 0; w < a->nb_workers; w++)
		if (rte_ring_free_count(a->wk[w].rx_ring) < a->burst)
			return false;
	return true;
}

/* Run-to-completion: transmit the ACKs the ledger let go, no faster than
 * the queue takes them. */
static uint16_t
rtc_release(struct app *a)
{
	struct rte_mbuf *out[AMIL_WORKER_BURST_MAX];
	uint16_t n;

	if (!backlog_flush(&a->io_bl, a->io_st, 0))
		return 0;
	n = amil_worker_release(a->rtc, out, AMIL_WORKER_BURST_MAX);
	if (n > 0)
		backlog_send(&a->io_bl, a->io_st, 0, out, n);
	return n;
}

static bool
tx_rings_empty(const struct app *a)
{
	for (unsigned w = 0; w < a->nb_workers; w++)
		if (!rte_ring_empty(a->wk[w].tx_ring))
			return false;
	return true;
}

static void
io_main(struct app *a)
{
	while (!stop_rx) {
		if (rings_have_room(a))
			for (uint16_t p = 0; p < a->nb_ports; p++)
				io_poll_port(a, p);
		else
			rte_pause();
		if (a->rtc != NULL)
			rtc_release(a);
		else if (!a->direct_tx)
			drain_tx_rings(a);
	}
	/* Run-to-completion: every held ACK goes out before we stop. */
	if (a->rtc != NULL)
		while (amil_worker_held(a->rtc) > 0 || a->io_bl.n > 0)
			if (rtc_release(a) == 0)
				rte_pause();
	/* RX stopped: let workers finish what they hold and keep moving their
	 * ACKs out until every one of them is done. */
	__atomic_store_n(&stop_workers, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < a->nb_workers) {
		if (!a->direct_tx)
			drain_tx_rings(a);
		rte_pause();
	}
	if (!a->direct_tx && a->rtc == NULL)
		while (a->io_bl.n > 0 || !tx_rings_empty(a))
			drain_tx_rings(a);
}

/* ---- start-up ------------------------------------------------------------ */

static void
die_usage_hint(const char *msg)
{
	fprintf(stderr, PROG ": %s\n" PROG ": try '" PROG " -- --help'\n", msg);
}

/* Split argv at the first "--": EAL options before, ours after. */
static int
split_args(int argc, char **argv, int *eal_argc, char ***app_argv, int *app_argc)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			*eal_argc = i;
			/* Reuse argv[i] as the program name of our own argv. */
			argv[i] = argv[0];
			*app_argv = argv + i;
			*app_argc = argc - i;
			return 0;
		}
	}
	*eal_argc = argc;
	*app_argv = NULL;
	*app_argc = 0;
	return 0;
}

static struct rte_mempool *
pool_for_socket(struct app *a, int socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	unsigned idx = socket < 0 ? 0 : (unsigned)socket;

	if (idx >= RTE_MAX_NUMA_NODES)
		idx = 0;
	if (a->pool[idx] != NULL)
		return a->pool[idx];
	snprintf(name, sizeof(name), "amil_mbuf_s%u", idx);
	a->pool[idx] = rte_pktmbuf_pool_create(name, a->cfg.mbufs, 256, 0,
					       RTE_MBUF_DEFAULT_BUF_SIZE,
					       socket < 0 ? SOCKET_ID_ANY : socket);
	return a->pool[idx];
}

static int
setup_ports(struct app *a)
{
	char err[256];
	uint16_t port;

	a->direct_tx = a->nb_workers > 0;
	RTE_ETH_FOREACH_DEV(port) {
		struct amil_port_conf pc;
		char name[RTE_ETH_NAME_MAX_LEN];
		uint16_t ntxq;
		int rc;

		if (port >= AMIL_MAX_PORTS) {
			fprintf(stderr, PROG ": at most %d ports are supported\n", AMIL_MAX_PORTS);
			return -E2BIG;
		}
		pc = (struct amil_port_conf){
			.nb_txq_wanted = (uint16_t)(1 + a->nb_workers),
			.rx_desc = a->cfg.rx_desc,
			.tx_desc = a->cfg.tx_desc,
			.mp = pool_for_socket(a, rte_eth_dev_socket_id(port)),
			.mac = a->cfg.has_mac ? (const struct rte_ether_addr *)a->cfg.mac : NULL,
			.want_ip6 = a->cfg.has_ip6,
		};
		if (pc.mp == NULL) {
			fprintf(stderr,
				PROG ": cannot create a pool of %u mbufs for port %u: %s "
				     "(give EAL more memory with -m, or lower --mbufs)\n",
				a->cfg.mbufs, port, rte_strerror(rte_errno));
			return -ENOMEM;
		}
		a->net[port] = (struct amil_net_cfg){
			.has_ip4 = a->cfg.has_ip4,
			.ip4 = a->cfg.ip4_be,
			.has_ip6 = a->cfg.has_ip6,
			.udp_port = rte_cpu_to_be_16(a->cfg.udp_port),
		};
		memcpy(a->net[port].ip6, a->cfg.ip6, 16);
		rc = amil_port_start(port, &pc, &a->net[port], &ntxq, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, PROG ": %s\n", err);
			return rc;
		}
		a->ports_started[port] = true;
		if (ntxq < 1 + a->nb_workers)
			a->direct_tx = false;
		rte_eth_dev_get_name_by_port(port, name);
		amil_stats_port_name(a->stats, port, name);
		printf(PROG ": port %u %s mac " RTE_ETHER_ADDR_PRT_FMT
		       " socket %d txq %u csum-offload ip %s udp %s\n",
		       port, name, RTE_ETHER_ADDR_BYTES(&a->net[port].mac),
		       rte_eth_dev_socket_id(port), ntxq,
		       a->net[port].tx_ip_csum_offload ? "yes" : "no",
		       a->net[port].tx_udp_csum_offload ? "yes" : "no");
		a->nb_ports = (uint16_t)(port + 1);
	}
	return 0;
}

static int
setup_workers(struct app *a)
{
	uint64_t retention_tsc = a->cfg.dedupe_retention_s * rte_get_tsc_hz();
	unsigned lcore, id = 0;
	struct amil_worker_conf wc = {
		.centers = a->centers,
		.currencies = a->currencies,
		.rate_bp = a->cfg.rate_bp,
		.node_id = a->cfg.node_id,
		.net = a->net,
		.nb_ports = a->nb_ports,
		.dedupe_capacity = a->cfg.dedupe_capacity,
		.dedupe_retention_tsc = retention_tsc,
		.ledger = a->ledger,
		.held_capacity = a->cfg.ledger_pending,
	};

	if (a->nb_workers == 0) {
		wc.worker_id = 0;
		wc.socket_id = (int)rte_socket_id();
		wc.stats = a->io_st;
		a->rtc = amil_worker_create(&wc);
		if (a->rtc == NULL) {
			fprintf(stderr,
				PROG ": cannot create the worker (dedupe table of %u entries): %s "
				     "(give EAL more memory with -m, or lower --dedupe-capacity)\n",
				a->cfg.dedupe_capacity, rte_strerror(rte_errno));
			return -ENOMEM;
		}
		printf(PROG ": run-to-completion on lcore %u (socket %u)\n", rte_lcore_id(),
		       rte_socket_id());
		return 0;
	}

	RTE_LCORE_FOREACH_WORKER(lcore) {
		struct worker_ctx *c = &a->wk[id];
		int socket = (int)rte_lcore_to_socket_id(lcore);
		char name[RTE_RING_NAMESIZE];

		c->id = id;
		c->lcore_id = lcore;
		c->txq = (uint16_t)(1 + id);
		c->st = amil_stats_lcore_add(a->stats, lcore, (int)id, socket);
		if (c->st == NULL)
			return -ENOMEM;
		snprintf(name, sizeof(name), "amil_rx_%u", id);
		c->rx_ring = rte_ring_create(name, a->cfg.ring_size, socket,
					     RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (c->rx_ring == NULL)
			goto fail_alloc;
		if (!a->direct_tx) {
			snprintf(name, sizeof(name), "amil_tx_%u", id);
			c->tx_ring = rte_ring_create(name, a->cfg.ring_size, socket,
						     RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (c->tx_ring == NULL)
				goto fail_alloc;
		}
		wc.worker_id = id;
		wc.lane = id;
		wc.socket_id = socket;
		wc.stats = c->st;
		c->w = amil_worker_create(&wc);
		if (c->w == NULL)
			goto fail_alloc;
		printf(PROG ": worker %u on lcore %u (socket %d), %s\n", id, lcore, socket,
		       a->direct_tx ? "transmits on its own queue" : "acks via the I/O lcore");
		id++;
	}
	return 0;

fail_alloc:
	fprintf(stderr,
		PROG ": cannot create worker %u (ring of %u, dedupe table of %u entries): %s "
		     "(give EAL more memory with -m, or lower --dedupe-capacity/--ring-size)\n",
		id, a->cfg.ring_size, a->cfg.dedupe_capacity, rte_strerror(rte_errno));
	return -ENOMEM;
}

/* Create the ledger's lanes (before the workers, which hold a lane each). */
static int
setup_ledger(struct app *a)
{
	struct amil_ledger_params lp = {
		.dir = a->cfg.ledger_dir,
		.node_id = a->cfg.node_id,
		.nb_lanes = a->nb_workers ? a->nb_workers : 1,
		.lane_size = a->cfg.ledger_pending,
		.batch_max = a->cfg.ledger_batch,
		.max_wait_ns = (uint64_t)a->cfg.ledger_wait_us * 1000,
		.segment_bytes = (uint64_t)a->cfg.ledger_segment_mb << 20,
		.counters = amil_stats_ledger(a->stats),
	};

	if (a->cfg.no_ledger) {
		printf(PROG ": ledger: OFF (--no-ledger): ACCEPTED acks are sent before "
			    "anything is on disk, a restart forgets every donation\n");
		return 0;
	}
	a->ledger = amil_ledger_create(&lp);
	if (a->ledger == NULL) {
		fprintf(stderr, PROG ": ledger directory %s: %s\n", a->cfg.ledger_dir,
			rte_strerror(rte_errno));
		return -rte_errno;
	}
	return 0;
}

struct restore_ctx {
	struct app *a;
	uint64_t now_ns, now_tsc, hz, retention_ns;
	uint64_t recovered, restored, evicted;
};

/* One intact ledger record at start-up: back into the dedupe table of the
 * worker its key routes to, dated by its age, if still within retention. */
static int
restore_record(void *arg, const struct amil_ledger_rec *r)
{
	struct restore_ctx *x = arg;
	struct app *a = x->a;
	struct amil_worker *w;
	uint64_t age_ns, age_tsc, when;
	int rc;

	x->recovered++;
	age_ns = x->now_ns > r->accepted_ns ? x->now_ns - r->accepted_ns : 0;
	if (age_ns >= x->retention_ns)
		return 0;
	age_tsc = (uint64_t)((unsigned __int128)age_ns * x->hz / 1000000000u);
	when = x->now_tsc > age_tsc ? x->now_tsc - age_tsc : 0;
	w = a->rtc != NULL ? a->rtc
			   : a->wk[amil_route_worker(r->center_id, r->donation_id,
						     a->nb_workers)].w;
	rc = amil_worker_restore(w, r, when);
	if (rc < 0)
		return rc;
	x->restored++;
	x->evicted += (uint64_t)rc;
	return 0;
}

/*
 * Start-up recovery, then the writer: verify every segment, cut a torn
 * tail, rebuild the dedupe tables so that a retransmit of anything the
 * ledger holds is answered DUPLICATE with its original levy.
 */
static int
recover_ledger(struct app *a)
{
	struct amil_ledger_counters *lc = amil_stats_ledger(a->stats);
	struct amil_ledger_recovery rec;
	struct restore_ctx x = {
		.a = a,
		.now_tsc = rte_rdtsc(),
		.hz = rte_get_tsc_hz(),
		.retention_ns = a->cfg.dedupe_retention_s * UINT64_C(1000000000),
	};
	struct timespec ts;
	int rc;

	if (a->ledger == NULL)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	x.now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	rc = amil_ledger_recover(a->cfg.ledger_dir, a->cfg.node_id, restore_record, &x, &rec);
	if (rc != 0) {
		const struct amil_ledger_damage *d = &rec.scan.damage;

		if (d->kind == AMIL_LEDGER_INTACT)
			fprintf(stderr, PROG ": ledger %s: recovery failed: %s\n", a->cfg.ledger_dir,
				strerror(-rc));
		else
			fprintf(stderr,
				PROG ": ledger %s: %s at %s byte %" PRIu64 " (record %" PRIu64 ")%s; "
				"refusing to start: check it with 'amil-ledger verify %s'\n",
				a->cfg.ledger_dir, amil_ledger_damage_str(d->kind), d->path, d->offset,
				d->record_index,
				d->kind == AMIL_LEDGER_IO_ERROR ? strerror(d->err) : "",
				a->cfg.ledger_dir);
		return rc;
	}
	AMIL_STAT_ADD(lc->recovered, x.recovered);
	AMIL_STAT_ADD(lc->restored, x.restored);
	AMIL_STAT_ADD(lc->tail_cut_bytes, rec.scan.tail_cut_bytes);
	printf(PROG ": ledger %s: %u segment(s), %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64
	       "), %" PRIu64 " within the dedupe retention restored%s\n",
	       a->cfg.ledger_dir, rec.scan.segments, rec.scan.records, rec.scan.first_seq,
	       rec.scan.last_seq, x.restored,
	       x.evicted ? " (some evicted: dedupe capacity below what the ledger holds)" : "");
	if (rec.scan.tail_cut_bytes > 0)
		printf(PROG ": ledger: cut a torn tail of %" PRIu64 " bytes (%" PRIu64
		       " intact-looking records, never acknowledged); saved to %s\n",
		       rec.scan.tail_cut_bytes, rec.scan.tail_cut_records, rec.scan.tail_saved);
	rc = amil_ledger_start(a->ledger, rec.next_seq);
	if (rc != 0) {
		fprintf(stderr, PROG ": ledger %s: cannot start a segment at seq %" PRIu64 ": %s\n",
			a->cfg.ledger_dir, rec.next_seq, strerror(-rc));
		return rc;
	}
	printf(PROG ": ledger: group commit up to %u records or %u us, %u acks held per worker "
	       "at most, segments of %u MiB\n",
	       a->cfg.ledger_batch, a->cfg.ledger_wait_us, a->cfg.ledger_pending,
	       a->cfg.ledger_segment_mb);
	return 0;
}

static int
write_stats_json(const struct app *a)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int rc;

	if (a->cfg.stats_json[0] == '\0')
		return 0;
	/* Write then rename: a reader never sees half a file. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->cfg.stats_json);
	f = fopen(tmp, "w");
	if (f == NULL)
		goto fail;
	rc = amil_stats_write_json(a->stats, f);
	if (fclose(f) != 0 || rc != 0)
		goto fail;
	if (rename(tmp, a->cfg.stats_json) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, PROG ": cannot write %s: %s\n", a->cfg.stats_json, strerror(errno));
	unlink(tmp);
	return -EIO;
}

static void
teardown(struct app *a)
{
	/* First: it reads the counters the rest of teardown frees. */
	amil_dp_ctl_stop(a->ctl);
	a->ctl = NULL;
	for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; p++)
		if (a->ports_started[p])
			amil_port_close(p);
	for (unsigned w = 0; w < a->nb_workers; w++) {
		amil_worker_free(a->wk[w].w);
		rte_ring_free(a->wk[w].rx_ring);
		rte_ring_free(a->wk[w].tx_ring);
	}
	amil_worker_free(a->rtc);
	amil_ledger_free(a->ledger);
	a->ledger = NULL;
	for (unsigned s = 0; s < RTE_MAX_NUMA_NODES; s++)
		rte_mempool_free(a->pool[s]);
}

int
main(int argc, char **argv)
{
	static struct app app;     /* large: keep it off the stack */
	struct app *a = &app;
	char err[AMIL_CONFIG_ERR_LEN];
	int eal_argc, app_argc, rc, status = EXIT_FAILURE;
	char **app_argv;
	unsigned lcore;

	split_args(argc, argv, &eal_argc, &app_argv, &app_argc);
	if (app_argv == NULL) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
				amil_config_usage(stdout, PROG);
				return 0;
			}
		die_usage_hint("missing '--' and the appliance options (at least --ip or "
			       "--ip6, and --centers)");
		return EXIT_FAILURE;
	}

	/* Configuration and keys are checked before EAL touches any device. */
	rc = amil_config_parse_args(&a->cfg, app_argc, app_argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc < 0) {
		die_usage_hint(err);
		return EXIT_FAILURE;
	}
	a->centers = amil_centers_load(a->cfg.centers_path, err, sizeof(err));
	if (a->centers == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_FAILURE;
	}
	a->currencies = a->cfg.currencies.any ? NULL : &a->cfg.currencies;
	a->burst = (uint16_t)a->cfg.burst;

	rc = rte_eal_init(eal_argc, argv);
	if (rc < 0) {
		fprintf(stderr, PROG ": EAL initialisation failed: %s\n", rte_strerror(rte_errno));
		goto out_centers;
	}
	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, PROG ": no DPDK port: add a PCI device (-a) or a virtual one "
				"(--vdev net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap)\n");
		goto out_eal;
	}
	RTE_LCORE_FOREACH_WORKER(lcore)
		a->nb_workers++;
	if (a->nb_workers > 64) {
		fprintf(stderr, PROG ": at most 64 worker lcores are supported\n");
		goto out_eal;
	}

	a->stats = amil_stats_create((uint16_t)rte_eth_dev_count_avail(), a->cfg.node_id);
	if (a->stats == NULL)
		goto out_eal;
	a->io_st = amil_stats_lcore_add(a->stats, rte_lcore_id(), a->nb_workers == 0 ? 0 : -1,
					(int)rte_socket_id());
	if (a->io_st == NULL)
		goto out_stats;
	if (setup_ports(a) != 0 || setup_ledger(a) != 0 || setup_workers(a) != 0 ||
	    recover_ledger(a) != 0)
		goto out_teardown;
	if (amil_stats_telemetry_register(a->stats) != 0)
		fprintf(stderr, PROG ": warning: telemetry commands not registered\n");
	if (a->cfg.ctl_sock[0] != '\0') {
		a->ctl = amil_dp_ctl_start(a->cfg.ctl_sock, a->stats, a->cfg.node_id, err,
					   sizeof(err));
		if (a->ctl == NULL) {
			fprintf(stderr, PROG ": %s\n", err);
			goto out_teardown;
		}
		printf(PROG ": control socket ipc://%s\n", a->cfg.ctl_sock);
	}

	tx_wait_tsc = rte_get_tsc_hz() / 1000000 * TX_WAIT_US;
	tx_stall_tsc = rte_get_tsc_hz() / 1000 * TX_STALL_MS;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf(PROG ": memory: %s\n",
	       rte_eal_has_hugepages() ? "hugepages" : "no hugepages (--no-huge)");
	printf(PROG ": node %" PRIu32 " serving %u centers on UDP port %u, %u worker(s); "
	       "stop with SIGINT/SIGTERM\n",
	       a->cfg.node_id, amil_centers_count(a->centers), a->cfg.udp_port,
	       a->nb_workers ? a->nb_workers : 1);
	fflush(stdout);
#ifdef AMIL_HAVE_SYSTEMD
	/* Type=notify: ready once ports, ledger and workers are up (no-op
	 * outside systemd). */
	sd_notifyf(0, "READY=1\nSTATUS=serving %u centers, %u worker(s)",
		   amil_centers_count(a->centers), a->nb_workers ? a->nb_workers : 1);
#endif

	for (unsigned w = 0; w < a->nb_workers; w++) {
		rc = rte_eal_remote_launch(worker_main, &a->wk[w], a->wk[w].lcore_id);
		if (rc != 0) {
			fprintf(stderr, PROG ": cannot launch worker %u: %s\n", w, strerror(-rc));
			stop_rx = 1;
			break;
		}
	}
	io_main(a);
#ifdef AMIL_HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	rte_eal_mp_wait_lcore();
	/* Every worker released every held ACK, so the writer has settled
	 * all it was given: stop it before the counters are read. */
	amil_ledger_stop(a->ledger);

	/* Closing the ports flushes what drivers buffer (pcap output). */
	amil_stats_hw_snapshot(a->stats);
	for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; p++)
		if (a->ports_started[p]) {
			amil_port_close(p);
			a->ports_started[p] = false;
		}
	status = write_stats_json(a) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	amil_stats_print_summary(a->stats, stdout);
	fflush(stdout);

out_teardown:
	teardown(a);
out_stats:
	amil_stats_free(a->stats);
out_eal:
	rte_eal_cleanup();
out_centers:
	amil_centers_free(a->centers);
	return status;
}
