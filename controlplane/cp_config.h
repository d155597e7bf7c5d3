/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-controlplane configuration: defaults, then the YAML file of
 * --config, then flags.  Problems are reported as "file:line: problem" or
 * "--flag: problem" before anything starts.  Keys (YAML / flag):
 *
 *   node_id / --node-id N            this appliance's id (required, >= 1)
 *   name / --name NAME               default "node-<id>"
 *   region / --region REGION         e.g. ID-JKT
 *   dataplane_addr / --dataplane-addr A:P   the data plane's service address (shown)
 *   listen / --listen tcp://A:P      where peers connect (required)
 *   advertise / --advertise tcp://A:P  what peers are told (default: listen)
 *   keys / --keys DIR                curve.key + curve.pub (amil-controlplane keygen)
 *   allow_list / --allow-list FILE   "<Z85 key> <node id> [name]" per line (required)
 *   cluster_id / --cluster-id N      carried in every message (default 1)
 *   profile / --profile lan|wan      failure-detector timers (default lan)
 *   seeds: [ "ID@tcp://A:P", ... ] / --seed ID@tcp://A:P (repeatable)
 *   run_dir / --run-dir DIR          ctl.sock and events.sock (default /run/amil)
 *   event_log / --event-log FILE     JSON lines (default: none)
 *   dataplane_ctl / --dataplane-ctl ipc://PATH  the local data plane (default: none)
 *   dataplane_timeout_ms / --dataplane-timeout-ms N   default 1500
 *   metrics / --metrics IP:PORT       Prometheus text at /metrics (default: none)
 *   cluster_secret / --cluster-secret FILE   beacons' HMAC key (64 hex chars)
 *   beacon_mode, beacon_group, beacon_port, beacon_ttl, beacon_interface,
 *   beacon_interval_ms / --beacon-...  UDP beacons, on when a group is set
 *   dns_name, dns_records, dns_port, dns_interval_s, dns_nameserver /
 *   --dns-...                         DNS discovery, on when a name is set
 *
 * Control path only.
 */
#ifndef AMIL_CP_CONFIG_H
#define AMIL_CP_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CP_SEEDS_MAX 64
#define AMIL_CP_ERR_LEN 512

struct amil_cp_seed {
	uint64_t node_id;
	char endpoint[AMIL_ENDPOINT_MAX + 1];
};

struct amil_cp_config {
	uint64_t node_id;
	char name[AMIL_NODE_NAME_MAX + 1];
	char region[AMIL_NODE_NAME_MAX + 1];
	char listen[AMIL_ENDPOINT_MAX + 1];
	char advertise[AMIL_ENDPOINT_MAX + 1];
	char dataplane_addr[64];       /* where centers send donations, e.g. 198.18.0.1:7100 */
	char keys_dir[PATH_MAX];
	char allow_list[PATH_MAX];
	uint64_t cluster_id;
	int profile;                   /* enum amil_membership_profile */
	unsigned nb_seeds;
	struct amil_cp_seed seeds[AMIL_CP_SEEDS_MAX];
	char run_dir[PATH_MAX];
	char event_log[PATH_MAX];
	char dataplane_ctl[PATH_MAX];
	uint32_t dataplane_timeout_ms;
	uint32_t registry_grace_ms;    /* names of a dead owner removed after this */
	char registry_mode[8];         /* "ap" (default) or "cp" (registry.h) */
	bool registry_cp;              /* registry_mode is "cp" */
	char ledger_dir[PATH_MAX];     /* the local data plane's ledger, read for campaign totals */
	char metrics[64];              /* "IP:PORT" of the Prometheus endpoint, "" = none */
	/* Beacons (docs/discovery.md): on when beacon_group is set. */
	char cluster_secret[PATH_MAX]; /* file: 64 hex characters (32 bytes) */
	char beacon_mode[16];          /* broadcast | multicast */
	char beacon_group[64];         /* broadcast address or multicast group */
	uint32_t beacon_port;
	uint32_t beacon_ttl;
	char beacon_interface[32];
	uint32_t beacon_interval_ms;
	/* DNS discovery (docs/discovery.md): on when dns_name is set. */
	char dns_name[256];
	char dns_records[32];          /* "A,AAAA" (default), "SRV", any mix */
	uint32_t dns_port;             /* port for A/AAAA answers (default: listen's) */
	uint32_t dns_interval_s;       /* default 10 */
	char dns_nameserver[64];       /* "IP[:PORT]"; default /etc/resolv.conf */
};

/**
 * Parse @argv (after the command word; argv[0] is a program name).
 * @return 0; 1 for --help (usage printed); a negative errno with the
 *   problem in @err.
 */
int amil_cp_config_parse(struct amil_cp_config *c, int argc, char **argv, char *err,
			 size_t errlen);

void amil_cp_config_usage(FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CP_CONFIG_H */
