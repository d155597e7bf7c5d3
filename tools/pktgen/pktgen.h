/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-pktgen's shared state, private to tools/pktgen/: the per-lcore and
 * per-run structures and the functions its files call across each other.
 *   main.c     arguments, signals, the order of a run
 *   setup.c    lcore roles, the port, ARP, tracking tables, pacing, --pcap-out
 *   traffic.c  frames, the TX and RX rounds, the lcore loop
 *   report.c   live line, summary, --json
 * Modules with their own contracts: gen, hist, match, opts, pace, track.
 */
#ifndef AMIL_PKTGEN_H
#define AMIL_PKTGEN_H

/*
 * amil-pktgen: an AMIL/1 load generator that trusts nothing it did not
 * check.
 *
 *   amil-pktgen [EAL options] -- --centers FILE --dst-ip ADDR [options]
 *
 * Lcore roles.  A TX lcore owns a share of the donation ids (first + t +
 * k*T), its pacing schedule (pace.h), its traffic mix (gen.h) and the table
 * of its outstanding donations (track.h); it transmits new frames on its
 * own TX queue and retransmits what timed out.  An RX lcore polls its own
 * RX queue and judges every ACK (match.h), recording latency in its own
 * histogram (hist.h).  One lcore may hold both roles (run to completion).
 * The main lcore, when it has no role, prints the live line and waits.
 *
 * End of a run.  A TX lcore stops generating at --count or --duration (or
 * on SIGINT), then keeps retransmitting until every donation it sent is
 * answered or lost.  RX lcores run until every TX lcore is done and every
 * ACK that can still come has come (or --ack-timeout has passed since).
 * A second SIGINT stops everything at once; what is still unanswered then
 * counts as lost.
 *
 * Counters are per lcore, written only by their lcore and summed by the
 * main lcore (a live line may see a torn sum; the final summary is read
 * after every lcore returned).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include "amil_centers.h"
#include "amil_frame.h"
#include "amil_wire.h"
#include "csum.h"
#include "gen.h"
#include "hist.h"
#include "match.h"
#include "opts.h"
#include "pace.h"
#include "track.h"

#define PROG "amil-pktgen"
#define EXIT_LOST 1
#define EXIT_SETUP 2
#define STASH_MAX (2 * AMIL_PKTGEN_BURST_MAX)
#define DESC 1024
/* Bytes of the header template copied per frame: a constant, so the copy
 * is a few inlined vector moves; covers the longest header (Ethernet +
 * IPv6 + UDP, 62 bytes), and every frame is longer (header + 64-byte
 * payload), so the bytes past the header land where the payload goes. */
#define PKTGEN_HDR_COPY 64

/* Per-lcore counters: written by the owning lcore only. */
struct counters {
	/* TX */
	uint64_t sent;                        /* every donation frame transmitted */
	uint64_t sent_gen;                    /* of which while generating */
	uint64_t sent_kind[AMIL_GEN_KINDS];   /* new frames by kind (first transmission) */
	uint64_t sent_dup;                    /* deliberate duplicates */
	uint64_t retransmits;
	uint64_t tx_busy;                     /* TX queue full: frames kept for later */
	uint64_t window_full;                 /* waits for a free tracking slot */
	uint64_t alloc_fail;
	uint64_t pace_skipped;                /* schedule slots dropped after a stall */
	/* RX */
	uint64_t rx;
	uint64_t not_ack;                     /* frames that are not AMIL/1 ACKs */
	uint64_t accepted, duplicate, rejected;
	uint64_t rejected_by[AMIL_REASON_MAX];
	uint64_t wait_acks;                   /* ACKs that ended a wait (amil_track_ack) */
	uint64_t mismatched, unexpected, late;
	uint64_t last_ack_tsc;
	const char *first_mismatch, *first_unexpected;
};

struct lcore {
	unsigned lcore_id;
	bool tx, rx;
	uint32_t t;                    /* TX index */
	uint16_t txq, rxq;
	/* TX state */
	struct amil_track *track;      /* NULL with --tx-only */
	struct amil_gen_plan plan;
	struct amil_pace pace;
	uint64_t frames_left;          /* --count share; UINT64_MAX with --duration */
	uint64_t k_next;
	uint32_t seq;
	bool generating;
	uint64_t gen_end_tsc;
	struct rte_mbuf *pend[AMIL_PKTGEN_BURST_MAX];
	uint16_t npend;
	struct rte_mbuf *stash[STASH_MAX];
	unsigned nstash;
	uint32_t tx_done;              /* release-stored once finished */
	/* RX state */
	struct amil_hist *hist;
	struct counters c;
} __rte_cache_aligned;

struct app {
	struct amil_pktgen_opts o;
	struct amil_centers *centers;
	struct amil_gen *gen;
	struct amil_track *tracks[AMIL_PKTGEN_MAX_LCORES];
	struct amil_match_ctx match;
	struct rte_mempool *pool;
	uint16_t port;
	uint64_t tsc_hz;
	uint64_t tsc0;                 /* ns clock origin */
	uint64_t ns_mult;              /* ns = (tsc - tsc0) * ns_mult >> 32 */
	uint64_t start_tsc, end_tsc, duration_tsc;
	uint32_t nb_tx, nb_rx, nb_lc;
	struct lcore lc[AMIL_PKTGEN_MAX_LCORES];
	uint8_t hdr[128];              /* Ethernet/IP/UDP of a 64-byte donation, zero
					* past hdr_len; copied PKTGEN_HDR_COPY at a time */
	unsigned hdr_len, csum_off;    /* csum_off: UDP checksum offset in hdr */
	uint16_t hdr_csum_base;        /* ~checksum of the header with a zero payload,
					* in memory byte order (csum.h) */
	bool started;
};



/* Totals of a finished run (report.c). */
struct result {
	struct counters c;
	uint64_t acked, lost, silent;
	double tx_pps, ack_pps, duration_s;
	uint64_t p50, p90, p99, p999, max;
};

/* The run (main.c); lcores reach it through here. */
extern struct app app;
/* Whether the once-a-second live line is printed (report.c; set by main). */
extern bool pktgen_live_on;

/* Process-wide flags (main.c): set by SIGINT, read by every lcore. */
extern volatile sig_atomic_t stop_gen, hard_stop;
extern uint32_t tx_done_count;     /* TX lcores finished (atomic) */
extern uint64_t tx_done_tsc;       /* when the last one finished */

static inline uint64_t
tsc_to_ns(const struct app *a, uint64_t tsc)
{
	return (uint64_t)(((unsigned __int128)(tsc - a->tsc0) * a->ns_mult) >> 32);
}

/* traffic.c: the frame template and frames; the loop every role lcore runs. */
int pktgen_build_template(struct app *a, uint16_t src_port);
unsigned pktgen_build_frame(const struct app *a, struct lcore *l, uint8_t *buf, size_t room, uint64_t id,
	    uint8_t kind, uint64_t now_tsc);
int pktgen_lcore_main(void *arg);
/* report.c: main lcore only. */
void pktgen_live_line(struct app *a, uint64_t now);
void pktgen_collect(struct app *a, struct result *r);
void pktgen_print_summary(const struct result *r);
int pktgen_write_json(const char *path, const struct result *r);
/* setup.c: control path, before any lcore is launched; 0 or negative errno
 * with the problem printed. */
int pktgen_assign_lcores(struct app *a);
int pktgen_setup_port(struct app *a);
int pktgen_resolve_arp(struct app *a);
int pktgen_setup_lcores(struct app *a);
void pktgen_start_pacing(struct app *a);
int pktgen_run_pcap(struct app *a);

#endif /* AMIL_PKTGEN_H */
