/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-controlplane configuration.  See cp_config.h.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cp_config.h"
#include "membership.h"

enum kind { K_U64, K_STR, K_PROFILE, K_SEED };

struct setting {
	const char *key;               /* YAML key and flag name (with - for _) */
	const char *flag;
	enum kind kind;
	size_t off, size;
	uint64_t min, max;
	const char *arg, *help;
};

#define F(f) offsetof(struct amil_cp_config, f), sizeof(((struct amil_cp_config *)0)->f)

static const struct setting settings[] = {
	{"node_id", "node-id", K_U64, F(node_id), 1, UINT64_MAX, "N", "this appliance's id (required)"},
	{"name", "name", K_STR, F(name), 0, 0, "NAME", "appliance name (default node-<id>)"},
	{"region", "region", K_STR, F(region), 0, 0, "REGION", "region, e.g. ID-JKT"},
	{"dataplane_addr", "dataplane-addr", K_STR, F(dataplane_addr), 0, 0, "IP:PORT",
	 "where centers send donations (identity)"},
	{"listen", "listen", K_STR, F(listen), 0, 0, "tcp://A:P", "where peers connect (required)"},
	{"advertise", "advertise", K_STR, F(advertise), 0, 0, "tcp://A:P",
	 "address told to peers (default: listen)"},
	{"keys", "keys", K_STR, F(keys_dir), 0, 0, "DIR", "curve.key + curve.pub (keygen)"},
	{"allow_list", "allow-list", K_STR, F(allow_list), 0, 0, "FILE",
	 "allowed appliances: '<Z85 key> <id> [name]'"},
	{"cluster_id", "cluster-id", K_U64, F(cluster_id), 1, UINT64_MAX, "N",
	 "cluster id in every message (default 1)"},
	{"profile", "profile", K_PROFILE, F(profile), 0, 0, "lan|wan",
	 "failure-detection timers (default lan)"},
	{"seeds", "seed", K_SEED, 0, 0, 0, 0, "ID@tcp://A:P", "a peer to join through (repeatable)"},
	{"run_dir", "run-dir", K_STR, F(run_dir), 0, 0, "DIR",
	 "ctl.sock, events.sock (default /run/amil)"},
	{"event_log", "event-log", K_STR, F(event_log), 0, 0, "FILE", "JSON-lines event log"},
	{"dataplane_ctl", "dataplane-ctl", K_STR, F(dataplane_ctl), 0, 0, "ipc://PATH",
	 "the local data plane's control socket"},
	{"dataplane_timeout_ms", "dataplane-timeout-ms", K_U64, F(dataplane_timeout_ms), 100,
	 600000, "MS", "data plane silent this long = down (default 1500)"},
	{"ledger_dir", "ledger-dir", K_STR, F(ledger_dir), 0, 0, "DIR",
	 "the data plane's ledger: campaign totals (read only)"},
	{"registry_grace_ms", "registry-grace-ms", K_U64, F(registry_grace_ms), 0, 86400000, "MS",
	 "names of a dead owner removed after (default 5000)"},
	{"registry_mode", "registry-mode", K_STR, F(registry_mode), 0, 0, "ap|cp",
	 "ap: serve on both sides of a split; cp: majority (default ap)"},
	{"metrics", "metrics", K_STR, F(metrics), 0, 0, "IP:PORT",
	 "Prometheus endpoint, GET /metrics"},
	{"cluster_secret", "cluster-secret", K_STR, F(cluster_secret), 0, 0, "FILE",
	 "beacon HMAC key: 64 hex characters"},
	{"beacon_mode", "beacon-mode", K_STR, F(beacon_mode), 0, 0, "MODE",
	 "broadcast or multicast (default multicast)"},
	{"beacon_group", "beacon-group", K_STR, F(beacon_group), 0, 0, "ADDR",
	 "beacon destination: group or broadcast address"},
	{"beacon_port", "beacon-port", K_U64, F(beacon_port), 1, 65535, "N",
	 "beacon UDP port (default 7201)"},
	{"beacon_ttl", "beacon-ttl", K_U64, F(beacon_ttl), 1, 255, "N",
	 "multicast TTL (default 1)"},
	{"beacon_interface", "beacon-interface", K_STR, F(beacon_interface), 0, 0, "IF",
	 "send and listen on this interface"},
	{"beacon_interval_ms", "beacon-interval-ms", K_U64, F(beacon_interval_ms), 50, 3600000,
	 "MS", "between beacons (default 1000)"},
	{"dns_name", "dns-name", K_STR, F(dns_name), 0, 0, "NAME",
	 "poll this name for appliances (fully qualified)"},
	{"dns_records", "dns-records", K_STR, F(dns_records), 0, 0, "LIST",
	 "A,AAAA (default) and/or SRV"},
	{"dns_port", "dns-port", K_U64, F(dns_port), 1, 65535, "N",
	 "port of A/AAAA answers (default: listen's)"},
	{"dns_interval_s", "dns-interval-s", K_U64, F(dns_interval_s), 1, 86400, "S",
	 "between DNS polls (default 10)"},
	{"dns_nameserver", "dns-nameserver", K_STR, F(dns_nameserver), 0, 0, "IP[:PORT]",
	 "ask this server (default: resolv.conf)"},
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static int
errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int
parse_seed(struct amil_cp_config *c, const char *v, char *why, size_t wl)
{
	const char *at = strchr(v, '@');
	char *end;
	unsigned long long id;

	if (at == NULL)
		return errf(why, wl, "'%.64s' is not ID@tcp://ADDR:PORT", v);
	errno = 0;
	id = strtoull(v, &end, 10);
	if (errno != 0 || end != at || id == 0)
		return errf(why, wl, "'%.64s': the node id before '@' must be 1 or more", v);
	if (strncmp(at + 1, "tcp://", 6) != 0 || strlen(at + 1) > AMIL_ENDPOINT_MAX ||
	    strlen(at + 1) < 8)
		return errf(why, wl, "'%.64s': the endpoint must be tcp://ADDR:PORT", v);
	if (c->nb_seeds == AMIL_CP_SEEDS_MAX)
		return errf(why, wl, "more than %d seeds", AMIL_CP_SEEDS_MAX);
	c->seeds[c->nb_seeds].node_id = id;
	snprintf(c->seeds[c->nb_seeds].endpoint, sizeof(c->seeds[0].endpoint), "%s", at + 1);
	c->nb_seeds++;
	return 0;
}

static int
set_value(struct amil_cp_config *c, const struct setting *s, const char *v, char *why, size_t wl)
{
	char *field = (char *)c + s->off;

	switch (s->kind) {
	case K_U64: {
		char *end;
		unsigned long long x;

		errno = 0;
		x = strtoull(v, &end, 0);
		if (errno != 0 || *end != '\0' || v[0] == '-' || v[0] == '\0' || x < s->min ||
		    x > s->max)
			return errf(why, wl, "'%.64s' is not an integer in %" PRIu64 "..%" PRIu64, v,
				    s->min, s->max);
		if (s->size == sizeof(uint64_t))
			*(uint64_t *)field = x;
		else
			*(uint32_t *)field = (uint32_t)x;
		return 0;
	}
	case K_STR:
		if (v[0] == '\0')
			return errf(why, wl, "must not be empty");
		if (strlen(v) >= s->size)
			return errf(why, wl, "longer than %zu bytes", s->size - 1);
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_PROFILE:
		if (strcmp(v, "lan") == 0)
			c->profile = AMIL_MEMBERSHIP_LAN;
		else if (strcmp(v, "wan") == 0)
			c->profile = AMIL_MEMBERSHIP_WAN;
		else
			return errf(why, wl, "'%.32s' is not lan or wan", v);
		return 0;
	case K_SEED:
		return parse_seed(c, v, why, wl);
	}
	return -EINVAL;
}

static const struct setting *
find_key(const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

static int
load_file(struct amil_cp_config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	char why[256];
	int rc = 0;

	if (f == NULL)
		return errf(err, errlen, "%s: %s", path, strerror(errno));
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = errf(err, errlen, "%s:%zu: %s", path, parser.problem_mark.line + 1,
			  parser.problem ? parser.problem : "YAML error");
		goto out_parser;
	}
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		goto out_doc;              /* empty file: defaults */
	if (root->type != YAML_MAPPING_NODE) {
		rc = errf(err, errlen, "%s:%zu: expected a mapping of settings", path,
			  root->start_mark.line + 1);
		goto out_doc;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);
		const struct setting *s;
		size_t line = k->start_mark.line + 1;

		if (k->type != YAML_SCALAR_NODE) {
			rc = errf(err, errlen, "%s:%zu: a key must be a plain word", path, line);
			goto out_doc;
		}
		s = find_key((const char *)k->data.scalar.value);
		if (s == NULL) {
			rc = errf(err, errlen, "%s:%zu: unknown key '%.40s'", path, line,
				  (const char *)k->data.scalar.value);
			goto out_doc;
		}
		if (s->kind == K_SEED) {
			if (v->type != YAML_SEQUENCE_NODE) {
				rc = errf(err, errlen, "%s:%zu: seeds: expected a list", path, line);
				goto out_doc;
			}
			for (yaml_node_item_t *it = v->data.sequence.items.start;
			     it < v->data.sequence.items.top; it++) {
				yaml_node_t *e = yaml_document_get_node(&doc, *it);

				if (e->type != YAML_SCALAR_NODE ||
				    set_value(c, s, (const char *)e->data.scalar.value, why,
					      sizeof(why)) != 0) {
					rc = errf(err, errlen, "%s:%zu: seeds: %s", path,
						  e->start_mark.line + 1,
						  e->type != YAML_SCALAR_NODE ? "expected ID@tcp://A:P"
									      : why);
					goto out_doc;
				}
			}
			continue;
		}
		if (v->type != YAML_SCALAR_NODE) {
			rc = errf(err, errlen, "%s:%zu: %s: expected a single value", path, line,
				  s->key);
			goto out_doc;
		}
		if (set_value(c, s, (const char *)v->data.scalar.value, why, sizeof(why)) != 0) {
			rc = errf(err, errlen, "%s:%zu: %s: %s", path, v->start_mark.line + 1, s->key,
				  why);
			goto out_doc;
		}
	}
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

void
amil_cp_config_usage(FILE *f)
{
	fprintf(f,
		"Usage: amil-controlplane run [--config FILE] [options]\n"
		"       amil-controlplane keygen --keys DIR\n"
		"\n"
		"The Amil control plane: finds the other appliances, agrees who is alive\n"
		"(SWIM with Lifeguard suspicion over ZeroMQ + CURVE) and watches the local\n"
		"data plane.  Settings: defaults, then the YAML file, then flags.\n"
		"\n"
		"Options (YAML key in brackets):\n"
		"  --config FILE                 YAML file with the keys below\n");
	for (size_t i = 0; i < N_SETTINGS; i++) {
		char opt[48];

		snprintf(opt, sizeof(opt), "--%s %s", settings[i].flag, settings[i].arg);
		fprintf(f, "  %-29s %s [%s]\n", opt, settings[i].help, settings[i].key);
	}
	fprintf(f, "  -h, --help                    this help\n"
		   "\n"
		   "SIGTERM/SIGINT: leave the cluster gracefully (members see 'left'), then exit.\n"
		   "Operators: amilctl status | nodes | events --follow | dataplane stats.\n");
}

int
amil_cp_config_parse(struct amil_cp_config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct option lo[N_SETTINGS + 3];
	const char *config = NULL;
	char why[256];
	int opt, rc;
	struct {
		int idx;
		const char *v;
	} *flags = calloc((size_t)argc + 1, sizeof(*flags));
	int nflags = 0;

	if (flags == NULL)
		return errf(err, errlen, "out of memory");
	memset(c, 0, sizeof(*c));
	c->cluster_id = 1;
	c->profile = AMIL_MEMBERSHIP_LAN;
	c->dataplane_timeout_ms = 1500;
	c->registry_grace_ms = 5000;
	snprintf(c->beacon_mode, sizeof(c->beacon_mode), "multicast");
	snprintf(c->registry_mode, sizeof(c->registry_mode), "ap");
	c->beacon_port = 7201;
	c->beacon_ttl = 1;
	c->beacon_interval_ms = 1000;
	snprintf(c->dns_records, sizeof(c->dns_records), "A,AAAA");
	c->dns_interval_s = 10;
	snprintf(c->run_dir, sizeof(c->run_dir), "/run/amil");

	lo[0] = (struct option){"config", required_argument, NULL, 'c'};
	lo[1] = (struct option){"help", no_argument, NULL, 'h'};
	for (size_t i = 0; i < N_SETTINGS; i++)
		lo[2 + i] = (struct option){settings[i].flag, required_argument, NULL, 256 + (int)i};
	lo[2 + N_SETTINGS] = (struct option){NULL, 0, NULL, 0};
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		if (opt == 'h') {
			amil_cp_config_usage(stdout);
			free(flags);
			return 1;
		}
		if (opt == ':' || opt == '?') {
			rc = errf(err, errlen, "%s '%s' (see --help)",
				  opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
			goto out;
		}
		if (opt == 'c') {
			config = optarg;
			continue;
		}
		flags[nflags].idx = opt - 256;
		flags[nflags++].v = optarg;
	}
	if (optind < argc) {
		rc = errf(err, errlen, "unexpected argument '%.64s'", argv[optind]);
		goto out;
	}
	if (config != NULL) {
		rc = load_file(c, config, err, errlen);
		if (rc != 0)
			goto out;
	}
	for (int i = 0; i < nflags; i++) {
		const struct setting *s = &settings[flags[i].idx];

		if (set_value(c, s, flags[i].v, why, sizeof(why)) != 0) {
			rc = errf(err, errlen, "--%s: %s", s->flag, why);
			goto out;
		}
	}
	rc = -EINVAL;
	if (c->node_id == 0)
		errf(err, errlen, "no node id: set --node-id or node_id:");
	else if (c->listen[0] == '\0' || strncmp(c->listen, "tcp://", 6) != 0)
		errf(err, errlen, "no listen endpoint: set --listen tcp://ADDR:PORT or listen:");
	else if (c->keys_dir[0] == '\0')
		errf(err, errlen, "no key directory: set --keys DIR (create it with "
				  "'amil-controlplane keygen --keys DIR')");
	else if (c->allow_list[0] == '\0')
		errf(err, errlen, "no allow-list: set --allow-list FILE or allow_list:");
	else if (c->beacon_group[0] != '\0' && c->cluster_secret[0] == '\0')
		errf(err, errlen, "beacons need the cluster secret: set --cluster-secret FILE");
	else if (strcmp(c->beacon_mode, "broadcast") != 0 && strcmp(c->beacon_mode, "multicast") != 0)
		errf(err, errlen, "--beacon-mode: '%s' is not broadcast or multicast", c->beacon_mode);
	else if (strcmp(c->registry_mode, "ap") != 0 && strcmp(c->registry_mode, "cp") != 0)
		errf(err, errlen, "--registry-mode: '%s' is not ap or cp", c->registry_mode);
	else
		rc = 0;
	if (rc == 0) {
		c->registry_cp = strcmp(c->registry_mode, "cp") == 0;
		if (c->advertise[0] == '\0')
			memcpy(c->advertise, c->listen, sizeof(c->advertise));
		if (c->dns_port == 0) {
			const char *colon = strrchr(c->listen, ':');

			c->dns_port = colon != NULL ? (uint32_t)atoi(colon + 1) : 0;
		}
		if (c->name[0] == '\0')
			snprintf(c->name, sizeof(c->name), "node-%" PRIu64, c->node_id);
		/* The same seed list on every appliance: our own entry is
		 * simply not a peer. */
		unsigned k = 0;

		for (unsigned i = 0; i < c->nb_seeds; i++)
			if (c->seeds[i].node_id != c->node_id)
				c->seeds[k++] = c->seeds[i];
		c->nb_seeds = k;
	}
out:
	free(flags);
	return rc;
}
