/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amil-pktgen: arguments, signals and the order of a run; the design is
 * described in pktgen.h. */
#include "pktgen.h"

struct app app;
volatile sig_atomic_t stop_gen, hard_stop;
uint32_t tx_done_count;     /* TX lcores finished (atomic) */
uint64_t tx_done_tsc;       /* when the last one finished */

static void
on_signal(int sig)
{
	(void)sig;
	if (stop_gen)
		hard_stop = 1;
	stop_gen = 1;
}

/* Split argv at the first "--": EAL options before, ours after. */
static void
split_args(int argc, char **argv, int *eal_argc, char ***app_argv, int *app_argc)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			*eal_argc = i;
			argv[i] = argv[0];
			*app_argv = argv + i;
			*app_argc = argc - i;
			return;
		}
	}
	*eal_argc = argc;
	*app_argv = NULL;
	*app_argc = 0;
}

int
main(int argc, char **argv)
{
	struct app *a = &app;
	struct result res;
	char err[512];
	char **app_argv;
	int eal_argc, app_argc, rc, status = EXIT_SETUP;

	split_args(argc, argv, &eal_argc, &app_argv, &app_argc);
	if (app_argv == NULL) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
				amil_pktgen_opts_usage(stdout);
				return 0;
			}
		fprintf(stderr, PROG ": missing '--' and the generator options; try '" PROG
				" -- --help'\n");
		return EXIT_SETUP;
	}
	rc = amil_pktgen_opts_parse(&a->o, app_argc, app_argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc < 0) {
		fprintf(stderr, PROG ": %s\n" PROG ": try '" PROG " -- --help'\n", err);
		return EXIT_SETUP;
	}
	a->port = a->o.port_id;
	a->centers = amil_centers_load(a->o.centers, err, sizeof(err));
	if (a->centers == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_SETUP;
	}
	a->gen = amil_gen_create(&(struct amil_gen_conf){
		.centers = a->centers, .seed = a->o.seed, .amount_min = a->o.amount_min,
		.amount_max = a->o.amount_max, .campaigns = a->o.campaigns, .zipf_s = a->o.zipf_s,
		.currency = {a->o.currency[0], a->o.currency[1], a->o.currency[2]},
		.exponent = a->o.exponent});
	if (a->gen == NULL) {
		fprintf(stderr, PROG ": cannot set up the traffic generator: %s\n", strerror(errno));
		goto out_centers;
	}

	rc = rte_eal_init(eal_argc, argv);
	if (rc < 0) {
		fprintf(stderr, PROG ": EAL initialisation failed: %s\n", rte_strerror(rte_errno));
		goto out_gen;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	a->tsc_hz = rte_get_tsc_hz();
	a->tsc0 = rte_rdtsc();
	a->ns_mult = (uint64_t)(((unsigned __int128)1000000000 << 32) / a->tsc_hz);
	a->duration_tsc = a->o.duration_ms * a->tsc_hz / 1000;
	pktgen_live_on = a->o.live == 1 || (a->o.live == -1 && isatty(STDOUT_FILENO));

	if (a->o.pcap_out != NULL) {
		a->o.tx_only = true;
		a->lc[0] = (struct lcore){.lcore_id = rte_get_main_lcore(), .tx = true};
		a->nb_lc = a->nb_tx = 1;
	} else if (pktgen_assign_lcores(a) != 0) {
		goto out_eal;
	}
	a->match = (struct amil_match_ctx){.centers = a->centers, .gen = a->gen,
					   .track = a->tracks, .nb_tx = a->nb_tx,
					   .first_id = a->o.first_id, .rate_bp = a->o.rate_bp};
	if (pktgen_setup_lcores(a) != 0)
		goto out_lcores;

	if (a->o.pcap_out != NULL) {
		if (!a->o.has_src_mac)
			memcpy(a->o.addr.src_mac, (uint8_t[]){2, 0, 0, 0, 0, 2}, 6);
		if (pktgen_build_template(a, a->o.addr.src_port) != 0 || pktgen_run_pcap(a) != 0)
			goto out_lcores;
	} else {
		if (pktgen_setup_port(a) != 0)
			goto out_port;
		if (!a->o.has_dst_mac && pktgen_resolve_arp(a) != 0)
			goto out_port;
		/* One template: every TX lcore uses the same source port, so
		 * frames of one flow stay in order on RSS devices. */
		if (pktgen_build_template(a, a->o.addr.src_port) != 0)
			goto out_port;
		printf(PROG ": %u TX lcore(s), %u RX lcore(s), %u centers, %s %" PRIu64 "%s at %s\n",
		       a->nb_tx, a->nb_rx, amil_centers_count(a->centers),
		       a->o.count ? "count" : "duration",
		       a->o.count ? a->o.count : a->o.duration_ms / 1000, a->o.count ? "" : " s",
		       a->o.rate_pps ? "a paced rate" : "full speed");
		fflush(stdout);
		a->start_tsc = rte_rdtsc();
		pktgen_start_pacing(a);
		for (uint32_t i = 0; i < a->nb_lc; i++)
			if (a->lc[i].lcore_id != rte_get_main_lcore())
				rte_eal_remote_launch(pktgen_lcore_main, &a->lc[i], a->lc[i].lcore_id);
		{
			struct lcore *mine = NULL;

			for (uint32_t i = 0; i < a->nb_lc; i++)
				if (a->lc[i].lcore_id == rte_get_main_lcore())
					mine = &a->lc[i];
			if (mine != NULL) {
				pktgen_lcore_main(mine);
			} else {
				/* Main lcore: live line, then wait. */
				uint32_t running;

				do {
					rte_delay_us_sleep(100000);
					pktgen_live_line(a, rte_rdtsc());
					running = 0;
					for (uint32_t i = 0; i < a->nb_lc; i++)
						if (rte_eal_get_lcore_state(a->lc[i].lcore_id) == RUNNING)
							running++;
				} while (running > 0);
			}
		}
		rte_eal_mp_wait_lcore();
		a->end_tsc = rte_rdtsc();
		for (uint32_t t = 0; t < a->nb_tx; t++)
			if (a->tracks[t] != NULL)
				amil_track_abandon(a->tracks[t]);  /* after a hard stop */
	}

	pktgen_collect(a, &res);
	pktgen_print_summary(&res);
	fflush(stdout);
	status = (res.lost > 0 || res.c.mismatched > 0) ? EXIT_LOST : EXIT_SUCCESS;
	if (a->o.json != NULL && pktgen_write_json(a->o.json, &res) != 0)
		status = EXIT_SETUP;

out_port:
	if (a->started) {
		(void)rte_eth_dev_stop(a->port);
		(void)rte_eth_dev_close(a->port);
	}
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		struct lcore *l = &a->lc[i];

		rte_pktmbuf_free_bulk(l->stash, l->nstash);
		rte_pktmbuf_free_bulk(l->pend, l->npend);
		l->nstash = l->npend = 0;
	}
	rte_mempool_free(a->pool);
out_lcores:
	for (uint32_t i = 0; i < a->nb_lc; i++) {
		amil_track_free(a->lc[i].track);
		amil_hist_free(a->lc[i].hist);
	}
out_eal:
	rte_eal_cleanup();
out_gen:
	amil_gen_free(a->gen);
out_centers:
	amil_centers_free(a->centers);
	return status;
}

