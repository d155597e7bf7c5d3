/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amil-pktgen: lcore roles, port, ARP, tables, pacing, --pcap-out.  See pktgen.h. */
#include "pktgen.h"

/* ---- set-up ---------------------------------------------------------------- */

static bool
lcore_listed(const unsigned *list, uint32_t n, unsigned id)
{
	for (uint32_t i = 0; i < n; i++)
		if (list[i] == id)
			return true;
	return false;
}

/* Decide each lcore's role from --tx-lcores/--rx-lcores or the default split. */
int
pktgen_assign_lcores(struct app *a)
{
	const struct amil_pktgen_opts *o = &a->o;
	unsigned lcore, workers[RTE_MAX_LCORE], nw = 0;

	RTE_LCORE_FOREACH_WORKER(lcore)
		workers[nw++] = lcore;
	if (o->nb_tx_lcores || o->nb_rx_lcores) {
		if (o->nb_tx_lcores == 0 || (o->nb_rx_lcores == 0 && !o->tx_only)) {
			fprintf(stderr, PROG ": give both --tx-lcores and --rx-lcores\n");
			return -EINVAL;
		}
		for (uint32_t i = 0; i < o->nb_tx_lcores; i++)
			if (!rte_lcore_is_enabled(o->tx_lcores[i]))
				goto not_enabled;
		for (uint32_t i = 0; i < o->nb_rx_lcores; i++)
			if (!rte_lcore_is_enabled(o->rx_lcores[i]))
				goto not_enabled;
		RTE_LCORE_FOREACH(lcore) {
			bool tx = lcore_listed(o->tx_lcores, o->nb_tx_lcores, lcore);
			bool rx = !o->tx_only && lcore_listed(o->rx_lcores, o->nb_rx_lcores, lcore);

			if (!tx && !rx)
				continue;
			a->lc[a->nb_lc++] = (struct lcore){.lcore_id = lcore, .tx = tx, .rx = rx};
		}
	} else if (nw <= 1) {
		a->lc[0] = (struct lcore){.lcore_id = nw ? workers[0] : rte_get_main_lcore(),
					  .tx = true, .rx = !o->tx_only};
		a->nb_lc = 1;
	} else {
		uint32_t ntx = o->tx_only ? nw : (nw + 1) / 2;

		for (uint32_t i = 0; i < nw && i < AMIL_PKTGEN_MAX_LCORES; i++)
			a->lc[a->nb_lc++] = (struct lcore){.lcore_id = workers[i], .tx = i < ntx,
							   .rx = i >= ntx};
	}
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		struct lcore *l = &a->lc[i];

		if (l->tx)
			l->txq = (uint16_t)(l->t = a->nb_tx++);
		if (l->rx)
			l->rxq = (uint16_t)a->nb_rx++;
	}
	return 0;

not_enabled:
	fprintf(stderr, PROG ": an lcore in --tx-lcores/--rx-lcores is not in the EAL lcore set (-l)\n");
	return -EINVAL;
}

int
pktgen_setup_port(struct app *a)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_eth_link link;
	uint16_t rxd = DESC, txd = DESC, nrxq = a->nb_rx ? (uint16_t)a->nb_rx : 1;
	int socket, rc;
	uint64_t deadline;

	if (!rte_eth_dev_is_valid_port(a->port)) {
		fprintf(stderr, PROG ": no DPDK port %u: add a device, e.g. --vdev "
				"net_memif0,role=client,socket=/tmp/amil.sock\n", a->port);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(a->port, &info);
	if (rc != 0)
		goto fail;
	if (info.max_tx_queues < a->nb_tx || info.max_rx_queues < nrxq) {
		fprintf(stderr, PROG ": port %u has %u TX / %u RX queues; %u TX and %u RX lcores "
				"need one each\n", a->port, info.max_tx_queues, info.max_rx_queues,
			a->nb_tx, nrxq);
		return -ENOTSUP;
	}
	socket = rte_eth_dev_socket_id(a->port);
	a->pool = rte_pktmbuf_pool_create("pktgen_mbufs", a->o.mbufs, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE,
					  socket < 0 ? SOCKET_ID_ANY : socket);
	if (a->pool == NULL) {
		fprintf(stderr, PROG ": cannot create %u mbufs: %s (more EAL memory with -m, or "
				"lower --mbufs)\n", a->o.mbufs, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	memset(&conf, 0, sizeof(conf));
	conf.txmode.offloads = info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	rc = rte_eth_dev_configure(a->port, nrxq, (uint16_t)a->nb_tx, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(a->port, &rxd, &txd);
	for (uint16_t q = 0; rc == 0 && q < nrxq; q++)
		rc = rte_eth_rx_queue_setup(a->port, q, rxd, (unsigned)socket, NULL, a->pool);
	for (uint16_t q = 0; rc == 0 && q < a->nb_tx; q++)
		rc = rte_eth_tx_queue_setup(a->port, q, txd, (unsigned)socket, NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(a->port);
	if (rc != 0)
		goto fail;
	a->started = true;
	(void)rte_eth_promiscuous_enable(a->port);
	if (!a->o.has_src_mac) {
		struct rte_ether_addr mac;

		rc = rte_eth_macaddr_get(a->port, &mac);
		if (rc != 0)
			goto fail;
		memcpy(a->o.addr.src_mac, mac.addr_bytes, AMIL_ETH_ALEN);
	}
	/* memif connects asynchronously: wait for the peer. */
	deadline = rte_get_timer_cycles() + a->o.link_timeout_ms * rte_get_timer_hz() / 1000;
	for (;;) {
		memset(&link, 0, sizeof(link));
		rte_eth_link_get_nowait(a->port, &link);
		if (link.link_status == RTE_ETH_LINK_UP)
			break;
		if (rte_get_timer_cycles() > deadline || stop_gen) {
			fprintf(stderr, PROG ": port %u: link still down after %" PRIu64 " ms\n",
				a->port, a->o.link_timeout_ms);
			return -ETIMEDOUT;
		}
		rte_delay_ms(10);
	}
	return 0;
fail:
	/* Drivers return -1 as often as an errno (memif: no server yet). */
	fprintf(stderr, PROG ": port %u: set-up failed (%d%s%s)\n", a->port, rc,
		rc < -1 ? ": " : "", rc < -1 ? strerror(-rc) : "");
	return rc;
}

/* ARP for --dst-ip: request every 250 ms until a reply names its MAC. */
int
pktgen_resolve_arp(struct app *a)
{
	const struct amil_frame_addr *ad = &a->o.addr;
	uint64_t hz = rte_get_timer_hz();
	uint64_t deadline = rte_get_timer_cycles() + a->o.arp_timeout_ms * hz / 1000, next = 0;
	char ip[16];

	while (rte_get_timer_cycles() < deadline && !stop_gen) {
		struct rte_mbuf *rx[32];

		if (rte_get_timer_cycles() >= next) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(a->pool);
			uint8_t *f;

			if (m == NULL)
				return -ENOMEM;
			f = (uint8_t *)rte_pktmbuf_append(m, 60);
			if (f == NULL) {
				rte_pktmbuf_free(m);
				return -ENOMEM;
			}
			memset(f, 0, 60);
			memset(f, 0xff, 6);
			memcpy(f + 6, ad->src_mac, 6);
			f[12] = 0x08, f[13] = 0x06;
			f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0, f[18] = 6, f[19] = 4;
			f[20] = 0, f[21] = 1;                      /* request */
			memcpy(f + 22, ad->src_mac, 6);
			memcpy(f + 28, &ad->src_ip4, 4);
			memcpy(f + 38, &ad->dst_ip4, 4);
			if (rte_eth_tx_burst(a->port, 0, &m, 1) != 1)
				rte_pktmbuf_free(m);
			next = rte_get_timer_cycles() + hz / 4;
		}
		for (uint16_t q = 0; q < (a->nb_rx ? a->nb_rx : 1); q++) {
			uint16_t n = rte_eth_rx_burst(a->port, q, rx, 32);

			for (uint16_t i = 0; i < n; i++) {
				const uint8_t *f = rte_pktmbuf_mtod(rx[i], const uint8_t *);

				if (rte_pktmbuf_data_len(rx[i]) >= 42 && f[12] == 0x08 && f[13] == 0x06 &&
				    f[20] == 0 && f[21] == 2 && memcmp(f + 28, &ad->dst_ip4, 4) == 0) {
					memcpy(a->o.addr.dst_mac, f + 22, 6);
					a->o.has_dst_mac = true;
				}
			}
			rte_pktmbuf_free_bulk(rx, n);
		}
		if (a->o.has_dst_mac) {
			inet_ntop(AF_INET, &ad->dst_ip4, ip, sizeof(ip));
			printf(PROG ": ARP: %s is at %02x:%02x:%02x:%02x:%02x:%02x\n", ip,
			       ad->dst_mac[0], ad->dst_mac[1], ad->dst_mac[2], ad->dst_mac[3],
			       ad->dst_mac[4], ad->dst_mac[5]);
			return 0;
		}
		rte_delay_us_sleep(1000);
	}
	inet_ntop(AF_INET, &ad->dst_ip4, ip, sizeof(ip));
	fprintf(stderr, PROG ": no ARP reply for %s within %" PRIu64 " ms (give --dst-mac?)\n", ip,
		a->o.arp_timeout_ms);
	return -ETIMEDOUT;
}

/* Tracking slots per TX lcore: its whole share with --count (no reuse),
 * otherwise what can be outstanding at the rate over all attempts, x2.
 * Never below 8192 (opts.c): duplicates re-send one of the last
 * AMIL_GEN_RECENT (4096) donations, whose slots must not be reused yet. */
static uint32_t
window_size(const struct app *a, uint64_t share)
{
	uint64_t w;

	if (a->o.window)
		return a->o.window;
	if (share > 0 && share <= AMIL_TRACK_CAPACITY_MAX)
		return share < 8192 ? 8192 : (uint32_t)share;
	if (a->o.rate_pps == 0)
		w = UINT64_C(1) << 22;
	else
		w = 2 * a->o.rate_pps / a->nb_tx * a->o.ack_timeout_ms * (a->o.retries + 1) / 1000;
	if (w < 65536)
		w = 65536;
	if (w > AMIL_TRACK_CAPACITY_MAX)
		w = AMIL_TRACK_CAPACITY_MAX;
	return (uint32_t)w;
}

int
pktgen_setup_lcores(struct app *a)
{
	uint64_t timeout_tsc = a->o.ack_timeout_ms * a->tsc_hz / 1000;

	for (uint32_t i = 0; i < a->nb_lc; i++) {
		struct lcore *l = &a->lc[i];

		if (l->rx) {
			l->hist = amil_hist_create();
			if (l->hist == NULL)
				return -ENOMEM;
		}
		if (l->tx) {
			uint64_t share = a->o.count / a->nb_tx + (l->t < a->o.count % a->nb_tx);

			if (a->o.count == 0)
				share = 0;
			if (amil_gen_plan_init(&l->plan, share, a->o.dup_frac, a->o.invalid_frac,
					       a->o.seed + l->t) != 0)
				return -EINVAL;
			l->frames_left = a->o.count ? share : UINT64_MAX;
			l->generating = true;
			if (!a->o.tx_only) {
				l->track = amil_track_create(window_size(a, share), timeout_tsc,
							     a->o.retries);
				if (l->track == NULL) {
					fprintf(stderr, PROG ": cannot allocate %u tracking slots\n",
						window_size(a, share));
					return -ENOMEM;
				}
			}
			a->tracks[l->t] = l->track;
		}
	}
	return 0;
}

void
pktgen_start_pacing(struct app *a)
{
	/* Each TX lcore paces its share of the rate.  Up to 10 ms of debt is
	 * caught up (a preempted generator on a shared machine keeps its
	 * average); older slots are skipped and counted (pace.h). */
	for (uint32_t i = 0; i < a->nb_lc; i++)
		if (a->lc[i].tx)
			amil_pace_init(&a->lc[i].pace, a->o.rate_pps / a->nb_tx +
					       (a->lc[i].t < a->o.rate_pps % a->nb_tx),
				       a->tsc_hz, a->start_tsc, a->tsc_hz / 100);
}

/* --pcap-out: the same stream, written to a file by the main lcore; no
 * port, no ACKs.  Timestamps follow the rate (1 us apart at rate 0). */
int
pktgen_run_pcap(struct app *a)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d;
	struct lcore *l = &a->lc[0];
	uint64_t period_ns = a->o.rate_pps ? 1000000000 / a->o.rate_pps : 1000, i = 0;
	uint8_t frame[AMIL_FRAME_MAX];

	if (p == NULL)
		return -ENOMEM;
	d = pcap_dump_open(p, a->o.pcap_out);
	if (d == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", a->o.pcap_out, pcap_geterr(p));
		pcap_close(p);
		return -EIO;
	}
	a->start_tsc = rte_rdtsc();
	while (l->frames_left > 0 && !stop_gen &&
	       !(a->duration_tsc && i * period_ns >= a->o.duration_ms * 1000000)) {
		struct pcap_pkthdr h;
		uint64_t k, ns = i * period_ns;
		uint8_t kind;
		enum amil_gen_pick pick = amil_gen_plan_next(&l->plan, &k, &kind);
		unsigned len;

		if (pick == AMIL_GEN_PICK_DUP) {
			l->c.sent_dup++;
		} else {
			k = l->k_next++;
			if (pick == AMIL_GEN_PICK_NEW)
				amil_gen_plan_note_valid(&l->plan, k);
			l->c.sent_kind[kind]++;
		}
		len = pktgen_build_frame(a, l, frame, sizeof(frame), amil_match_id(&a->match, 0, k), kind,
				  a->tsc0 + ns * a->tsc_hz / 1000000000);
		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = (time_t)(ns / 1000000000);
		h.ts.tv_usec = (suseconds_t)(ns % 1000000000 / 1000);
		h.caplen = h.len = len;
		pcap_dump((u_char *)d, &h, frame);
		l->c.sent++;
		l->c.sent_gen++;
		l->frames_left--;
		i++;
	}
	a->end_tsc = l->gen_end_tsc = rte_rdtsc();
	pcap_dump_close(d);
	pcap_close(p);
	printf(PROG ": wrote %s: %" PRIu64 " frames\n", a->o.pcap_out, i);
	return 0;
}
