/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-pktgen's options (everything after the EAL's "--"): parsing,
 * defaults and --help.  Control path only.
 */
#ifndef AMIL_PKTGEN_OPTS_H
#define AMIL_PKTGEN_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "amil_frame.h"
#include "amil_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_PKTGEN_MAX_LCORES 64
#define AMIL_PKTGEN_BURST_MAX  256

struct amil_pktgen_opts {
	struct amil_frame_addr addr;   /* src_mac valid only when has_src_mac */
	bool has_dst_mac, has_src_mac, has_src_ip;
	const char *centers;
	uint64_t rate_pps;             /* 0: as fast as possible */
	uint64_t count;                /* frames to generate (0 with duration) */
	uint64_t duration_ms;          /* 0 with count */
	int64_t amount_min, amount_max;
	char currency[AMIL_CURRENCY_LEN];
	uint8_t exponent;
	uint32_t campaigns;
	double zipf_s;                 /* 0: uniform campaigns */
	double dup_frac, invalid_frac;
	uint32_t burst;
	uint32_t nb_tx_lcores, nb_rx_lcores;  /* 0: default split */
	unsigned tx_lcores[AMIL_PKTGEN_MAX_LCORES], rx_lcores[AMIL_PKTGEN_MAX_LCORES];
	uint64_t ack_timeout_ms;
	uint32_t retries;
	uint32_t rate_bp;              /* the node's levy rate */
	const char *pcap_out;
	const char *json;
	uint64_t seed;
	uint64_t first_id;
	uint16_t port_id;
	bool tx_only;                  /* no RX, no tracking: TX benchmark */
	uint32_t window;               /* tracking slots per TX lcore; 0: sized */
	uint32_t mbufs;
	uint64_t arp_timeout_ms;
	uint64_t link_timeout_ms;
	int live;                      /* -1 auto (tty), 0 off, 1 on */
};

/**
 * Parse @argc/@argv (argv[0] is the program name) into @o, defaults first.
 * The string fields (centers, pcap_out, json) point into @argv, which must
 * outlive @o.
 * @return 0; 1 when --help was printed to stdout; -EINVAL with a message
 *   naming the flag and the bad value in @err.
 */
int amil_pktgen_opts_parse(struct amil_pktgen_opts *o, int argc, char **argv, char *err,
			   size_t errlen);

/** Print --help to @f. */
void amil_pktgen_opts_usage(FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PKTGEN_OPTS_H */
