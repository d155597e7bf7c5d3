/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Data-plane configuration: defaults, then the YAML file named by --config,
 * then command-line flags (flags override the file).  Everything is checked
 * here, before EAL ports start, and a problem is reported as
 * "file:line: what is wrong" (or "--flag: what is wrong").
 *
 * YAML keys (all optional; see configs/amil-dataplane.yaml):
 *   ip: 198.18.0.1            ip6: "2001:2::1"         port: 7100
 *   mac: 02:00:00:00:00:01    (sets every port's MAC; default: the device's)
 *   node_id: 1                centers: centers.txt     rate_bp: 250
 *   currencies: [USD, EUR]    (or "USD,EUR")            stats_json: /path
 *   ctl_sock: /run/amil/dataplane.sock   (ipc control socket; default none)
 *   dedupe: { capacity: 1048576, retention_s: 86400 }
 *   ledger: { dir: /var/lib/amil/ledger, batch: 4096, max_wait_us: 100,
 *             segment_mb: 64, pending: 8192 }   (--no-ledger: no ledger)
 *   burst: 32   ring_size: 4096   mbufs: 32767   rx_desc: 1024   tx_desc: 1024
 * A relative `centers` or `stats_json` path in the file is taken relative
 * to the file's directory.  An unknown key is an error (catches typos).
 *
 * Control path only; not thread-safe.
 */
#ifndef AMIL_CONFIG_H
#define AMIL_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include "amil_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CONFIG_ERR_LEN 512

struct amil_config {
	char config_path[PATH_MAX];    /* "" when no file */
	bool has_ip4;
	uint32_t ip4_be;               /* network byte order */
	bool has_ip6;
	uint8_t ip6[16];
	bool has_mac;
	uint8_t mac[6];                /* port MAC to set; default: device's own */
	uint16_t udp_port;             /* default 7100 */
	uint32_t node_id;              /* default 1 */
	char centers_path[PATH_MAX];   /* required */
	uint32_t rate_bp;              /* 0..10000, default 250 */
	struct amil_currency_set currencies; /* default: any */
	char stats_json[PATH_MAX];     /* "" = none */
	char ctl_sock[PATH_MAX];       /* "" = none: ipc socket for the control plane */
	uint32_t dedupe_capacity;      /* entries per worker, default 1048576 */
	uint64_t dedupe_retention_s;   /* default 86400 */
	char ledger_dir[PATH_MAX];     /* required unless no_ledger */
	bool no_ledger;                /* --no-ledger: ACKs from memory */
	uint32_t ledger_batch;         /* records per commit, default 4096 */
	uint32_t ledger_wait_us;       /* default 100 */
	uint32_t ledger_segment_mb;    /* default 64 */
	uint32_t ledger_pending;       /* held ACKs per worker, power of 2, default 8192 */
	uint32_t burst;                /* 1..64, default 32 */
	uint32_t ring_size;            /* power of two, default 4096 */
	uint32_t mbufs;                /* per socket, default 32767 (held ACKs + rings) */
	uint16_t rx_desc;              /* default 1024 */
	uint16_t tx_desc;              /* default 1024 */
};

/** Fill @c with defaults. */
void amil_config_defaults(struct amil_config *c);

/**
 * Load a YAML config file over @c.
 * @return 0, or a negative errno with "path:line: problem" in @err.
 */
int amil_config_load_file(struct amil_config *c, const char *path, char *err, size_t errlen);

/**
 * Parse the application arguments (those after EAL's "--"; argv[0] is the
 * program name).  Applies defaults, then --config FILE if given (wherever it
 * appears), then every other flag in order, then checks the result (e.g. an
 * IPv4 or IPv6 address and a centers file are required).
 * @return 0; 1 when --help was given (usage printed to stdout, caller exits
 *   0); or a negative errno with the problem in @err.
 */
int amil_config_parse_args(struct amil_config *c, int argc, char **argv, char *err,
			   size_t errlen);

/** Print usage to @f. */
void amil_config_usage(FILE *f, const char *prog);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CONFIG_H */
