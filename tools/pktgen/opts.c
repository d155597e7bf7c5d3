/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* amil-pktgen options.  See opts.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "amil_levy.h"
#include "opts.h"

#define PROG "amil-pktgen"

void
amil_pktgen_opts_usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [EAL options] -- --centers FILE --dst-ip ADDR [options]\n"
"\n"
"Sends AMIL/1 donations to an appliance, as every center of FILE, checks\n"
"each ACK (tag, levy, status) and reports sent/acked/lost/latency.\n"
"Exit status: 0 ok; 1 when lost or mismatched > 0; 2 on a setup error.\n"
"\n"
"addresses\n"
"  --dst-ip ADDR        appliance IPv4 or IPv6 address (required)\n"
"  --dst-port N         appliance UDP port (default 7100)\n"
"  --dst-mac MAC        appliance MAC; default: ARP for --dst-ip (IPv4 only)\n"
"  --src-ip ADDR        our address, same family (default 198.18.0.2 / 2001:2::2)\n"
"  --src-mac MAC        our MAC (default: the port's)\n"
"  --src-port N         our UDP port (default 40000)\n"
"  --port-id N          DPDK port to use (default 0)\n"
"traffic\n"
"  --centers FILE       centers file (<center_id> <32 hex key>); all are simulated\n"
"  --rate PPS           TSC-paced rate over all TX lcores; 0 = as fast as possible (default)\n"
"  --count N            frames to generate, duplicates and invalid included (default 1000)\n"
"  --duration S         generate for S seconds instead of --count\n"
"  --amount-min N, --amount-max N   amounts uniform in N..M minor units (default 1..1000000)\n"
"  --currency XXX       ISO 4217 code (default USD); --exponent N (default 2)\n"
"  --campaigns N        campaign ids 1..N (default 16); uniform unless --zipf S\n"
"  --zipf S             Zipf exponent over campaigns (campaign 1 most popular)\n"
"  --dup-frac F         fraction of frames re-sending an earlier valid donation\n"
"  --invalid-frac F     fraction of invalid frames, in turn: bad tag, unknown center,\n"
"                       truncated (no answer expected), bad amount, bad currency (REJECTED)\n"
"  --first-id N         first donation id (default 1); ids are allocated by the generator\n"
"  --seed N             reproducible traffic (default 1)\n"
"  --burst N            frames per TX/RX burst (default 32, max 256)\n"
"lcores (EAL -l picks the set; default split: one worker lcore does TX and RX,\n"
"two or more are split half TX, half RX; with no worker the main lcore does both)\n"
"  --tx-lcores LIST     lcores that transmit, e.g. 1,2\n"
"  --rx-lcores LIST     lcores that receive (one RX queue each)\n"
"acknowledgements\n"
"  --ack-timeout MS     retransmit an unanswered donation after MS (default 500)\n"
"  --retries N          retransmissions before a donation is lost (default 3)\n"
"  --rate-bp N          the appliance's levy rate, to check levies (default 250)\n"
"  --window N           outstanding donations per TX lcore, >= 8192 (default: --count, or\n"
"                       rate x timeout x attempts; the generator waits when full)\n"
"  --tx-only            no receive, no tracking: raw TX benchmark (lost is not known)\n"
"  --arp-timeout MS     give up ARP resolution after MS (default 5000)\n"
"  --link-timeout MS    wait for link up (default 10000)\n"
"output\n"
"  --pcap-out FILE      write the stream to FILE instead of a port (needs --dst-mac;\n"
"                       timestamps follow --rate, 1 us apart when --rate is 0)\n"
"  --json FILE          counters as JSON: sent, acked, accepted, duplicate, rejected,\n"
"                       lost, mismatched, unexpected, tx_pps, ack_pps, duration_s,\n"
"                       latency_ns {p50, p90, p99, p999, max}\n"
"  --live / --no-live   the once-a-second status line (default: when stdout is a tty)\n"
"  --mbufs N            mbuf pool size (default 16383)\n"
"  -h, --help           this text\n");
}

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
parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
	  size_t errlen)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v < min || v > max)
		return errf(err, errlen, "--%s: want an integer %" PRIu64 "..%" PRIu64 ", got '%s'",
			    flag, min, max, s);
	*out = v;
	return 0;
}

static int
parse_frac(const char *flag, const char *s, double *out, char *err, size_t errlen)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		return errf(err, errlen, "--%s: want a fraction 0..1, got '%s'", flag, s);
	*out = v;
	return 0;
}

static int
parse_mac(const char *flag, const char *s, uint8_t mac[AMIL_ETH_ALEN], char *err, size_t errlen)
{
	unsigned b[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return errf(err, errlen, "--%s: not a MAC address (xx:xx:xx:xx:xx:xx): '%s'", flag, s);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

/* @family: AF_INET or AF_INET6 the address turned out to be. */
static int
parse_ip(const char *flag, const char *s, uint32_t *v4, uint8_t v6[16], int *family, char *err,
	 size_t errlen)
{
	if (inet_pton(AF_INET, s, v4) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, v6) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return errf(err, errlen, "--%s: not an IPv4 or IPv6 address: '%s'", flag, s);
}

static int
parse_lcores(const char *flag, const char *s, unsigned *out, uint32_t *n, char *err,
	     size_t errlen)
{
	const char *p = s;

	*n = 0;
	while (*p != '\0') {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(p, &end, 10);
		if (end == p || errno != 0 || v >= 1024 || (*end != ',' && *end != '\0'))
			return errf(err, errlen, "--%s: want a list of lcore ids like 1,2, got '%s'",
				    flag, s);
		if (*n == AMIL_PKTGEN_MAX_LCORES)
			return errf(err, errlen, "--%s: at most %d lcores", flag,
				    AMIL_PKTGEN_MAX_LCORES);
		out[(*n)++] = (unsigned)v;
		p = *end == ',' ? end + 1 : end;
	}
	if (*n == 0)
		return errf(err, errlen, "--%s: empty list", flag);
	return 0;
}

enum {
	O_DST_IP = 256, O_DST_PORT, O_DST_MAC, O_SRC_IP, O_SRC_MAC, O_SRC_PORT, O_PORT_ID,
	O_CENTERS, O_RATE, O_COUNT, O_DURATION, O_AMIN, O_AMAX, O_CURRENCY, O_EXPONENT,
	O_CAMPAIGNS, O_ZIPF, O_DUP, O_INVALID, O_FIRST_ID, O_SEED, O_BURST, O_TXL, O_RXL,
	O_ACK_TIMEOUT, O_RETRIES, O_RATE_BP, O_WINDOW, O_TX_ONLY, O_ARP_TIMEOUT,
	O_LINK_TIMEOUT, O_PCAP_OUT, O_JSON, O_LIVE, O_NO_LIVE, O_MBUFS,
};

int
amil_pktgen_opts_parse(struct amil_pktgen_opts *o, int argc, char **argv, char *err,
		       size_t errlen)
{
	static const struct option lo[] = {
		{"dst-ip", required_argument, NULL, O_DST_IP},
		{"dst-port", required_argument, NULL, O_DST_PORT},
		{"dst-mac", required_argument, NULL, O_DST_MAC},
		{"src-ip", required_argument, NULL, O_SRC_IP},
		{"src-mac", required_argument, NULL, O_SRC_MAC},
		{"src-port", required_argument, NULL, O_SRC_PORT},
		{"port-id", required_argument, NULL, O_PORT_ID},
		{"centers", required_argument, NULL, O_CENTERS},
		{"rate", required_argument, NULL, O_RATE},
		{"count", required_argument, NULL, O_COUNT},
		{"duration", required_argument, NULL, O_DURATION},
		{"amount-min", required_argument, NULL, O_AMIN},
		{"amount-max", required_argument, NULL, O_AMAX},
		{"currency", required_argument, NULL, O_CURRENCY},
		{"exponent", required_argument, NULL, O_EXPONENT},
		{"campaigns", required_argument, NULL, O_CAMPAIGNS},
		{"zipf", required_argument, NULL, O_ZIPF},
		{"dup-frac", required_argument, NULL, O_DUP},
		{"invalid-frac", required_argument, NULL, O_INVALID},
		{"first-id", required_argument, NULL, O_FIRST_ID},
		{"seed", required_argument, NULL, O_SEED},
		{"burst", required_argument, NULL, O_BURST},
		{"tx-lcores", required_argument, NULL, O_TXL},
		{"rx-lcores", required_argument, NULL, O_RXL},
		{"ack-timeout", required_argument, NULL, O_ACK_TIMEOUT},
		{"retries", required_argument, NULL, O_RETRIES},
		{"rate-bp", required_argument, NULL, O_RATE_BP},
		{"window", required_argument, NULL, O_WINDOW},
		{"tx-only", no_argument, NULL, O_TX_ONLY},
		{"arp-timeout", required_argument, NULL, O_ARP_TIMEOUT},
		{"link-timeout", required_argument, NULL, O_LINK_TIMEOUT},
		{"pcap-out", required_argument, NULL, O_PCAP_OUT},
		{"json", required_argument, NULL, O_JSON},
		{"live", no_argument, NULL, O_LIVE},
		{"no-live", no_argument, NULL, O_NO_LIVE},
		{"mbufs", required_argument, NULL, O_MBUFS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool has_dst_ip = false, has_count = false;
	int dst_family = AF_INET, src_family = AF_INET, opt, rc;
	uint64_t v = 0;
	uint32_t v4;
	uint8_t v6[16];
	double d;

	memset(o, 0, sizeof(*o));
	o->addr.dst_port = AMIL_WIRE_PORT_DEFAULT;
	o->addr.src_port = 40000;
	inet_pton(AF_INET, "198.18.0.2", &o->addr.src_ip4);
	inet_pton(AF_INET6, "2001:2::2", o->addr.src_ip6);
	o->count = 1000;
	o->amount_min = 1;
	o->amount_max = 1000000;
	memcpy(o->currency, "USD", 3);
	o->exponent = 2;
	o->campaigns = 16;
	o->burst = 32;
	o->ack_timeout_ms = 500;
	o->retries = 3;
	o->rate_bp = AMIL_LEVY_RATE_BP_DEFAULT;
	o->seed = 1;
	o->first_id = 1;
	o->mbufs = 16383;
	o->arp_timeout_ms = 5000;
	o->link_timeout_ms = 10000;
	o->live = -1;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		rc = 0;
		switch (opt) {
		case O_DST_IP:
			rc = parse_ip("dst-ip", optarg, &v4, v6, &dst_family, err, errlen);
			if (rc == 0 && dst_family == AF_INET)
				o->addr.dst_ip4 = v4;
			else if (rc == 0)
				memcpy(o->addr.dst_ip6, v6, 16);
			has_dst_ip = true;
			break;
		case O_SRC_IP:
			rc = parse_ip("src-ip", optarg, &v4, v6, &src_family, err, errlen);
			if (rc == 0 && src_family == AF_INET)
				o->addr.src_ip4 = v4;
			else if (rc == 0)
				memcpy(o->addr.src_ip6, v6, 16);
			o->has_src_ip = true;
			break;
		case O_DST_PORT:
		case O_SRC_PORT:
			rc = parse_u64(opt == O_DST_PORT ? "dst-port" : "src-port", optarg, 1, 65535, &v,
				       err, errlen);
			*(opt == O_DST_PORT ? &o->addr.dst_port : &o->addr.src_port) = (uint16_t)v;
			break;
		case O_DST_MAC:
			rc = parse_mac("dst-mac", optarg, o->addr.dst_mac, err, errlen);
			o->has_dst_mac = true;
			break;
		case O_SRC_MAC:
			rc = parse_mac("src-mac", optarg, o->addr.src_mac, err, errlen);
			o->has_src_mac = true;
			break;
		case O_PORT_ID:
			rc = parse_u64("port-id", optarg, 0, 1023, &v, err, errlen);
			o->port_id = (uint16_t)v;
			break;
		case O_CENTERS: o->centers = optarg; break;
		case O_RATE:
			rc = parse_u64("rate", optarg, 0, UINT64_C(1000000000), &o->rate_pps, err, errlen);
			break;
		case O_COUNT:
			rc = parse_u64("count", optarg, 1, UINT64_C(1) << 48, &o->count, err, errlen);
			has_count = true;
			break;
		case O_DURATION:
			rc = parse_u64("duration", optarg, 1, 31536000, &v, err, errlen);
			o->duration_ms = v * 1000;
			break;
		case O_AMIN:
		case O_AMAX:
			rc = parse_u64(opt == O_AMIN ? "amount-min" : "amount-max", optarg, 1,
				       (uint64_t)AMIL_AMOUNT_MAX_MINOR, &v, err, errlen);
			*(opt == O_AMIN ? &o->amount_min : &o->amount_max) = (int64_t)v;
			break;
		case O_CURRENCY:
			if (strlen(optarg) != 3 || amil_currency_index(optarg) < 0)
				rc = errf(err, errlen, "--currency: want three capitals like USD, got '%s'",
					  optarg);
			else
				memcpy(o->currency, optarg, 3);
			break;
		case O_EXPONENT:
			rc = parse_u64("exponent", optarg, 0, AMIL_EXPONENT_MAX, &v, err, errlen);
			o->exponent = (uint8_t)v;
			break;
		case O_CAMPAIGNS:
			rc = parse_u64("campaigns", optarg, 1, 1u << 24, &v, err, errlen);
			o->campaigns = (uint32_t)v;
			break;
		case O_ZIPF: {
			char *end;

			d = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !(d > 0.0 && d <= 10.0))
				rc = errf(err, errlen, "--zipf: want an exponent in (0, 10], got '%s'",
					  optarg);
			o->zipf_s = d;
			break;
		}
		case O_DUP: rc = parse_frac("dup-frac", optarg, &o->dup_frac, err, errlen); break;
		case O_INVALID:
			rc = parse_frac("invalid-frac", optarg, &o->invalid_frac, err, errlen);
			break;
		case O_FIRST_ID:
			rc = parse_u64("first-id", optarg, 1, UINT64_C(1) << 62, &o->first_id, err,
				       errlen);
			break;
		case O_SEED: rc = parse_u64("seed", optarg, 0, UINT64_MAX, &o->seed, err, errlen); break;
		case O_BURST:
			rc = parse_u64("burst", optarg, 1, AMIL_PKTGEN_BURST_MAX, &v, err, errlen);
			o->burst = (uint32_t)v;
			break;
		case O_TXL:
			rc = parse_lcores("tx-lcores", optarg, o->tx_lcores, &o->nb_tx_lcores, err,
					  errlen);
			break;
		case O_RXL:
			rc = parse_lcores("rx-lcores", optarg, o->rx_lcores, &o->nb_rx_lcores, err,
					  errlen);
			break;
		case O_ACK_TIMEOUT:
			rc = parse_u64("ack-timeout", optarg, 1, 3600000, &o->ack_timeout_ms, err,
				       errlen);
			break;
		case O_RETRIES:
			rc = parse_u64("retries", optarg, 0, 100, &v, err, errlen);
			o->retries = (uint32_t)v;
			break;
		case O_RATE_BP:
			rc = parse_u64("rate-bp", optarg, 0, 10000, &v, err, errlen);
			o->rate_bp = (uint32_t)v;
			break;
		case O_WINDOW:
			rc = parse_u64("window", optarg, 8192, (1u << 26), &v, err, errlen);
			o->window = (uint32_t)v;
			break;
		case O_TX_ONLY: o->tx_only = true; break;
		case O_ARP_TIMEOUT:
		case O_LINK_TIMEOUT:
			rc = parse_u64(opt == O_ARP_TIMEOUT ? "arp-timeout" : "link-timeout", optarg, 1,
				       600000, &v, err, errlen);
			*(opt == O_ARP_TIMEOUT ? &o->arp_timeout_ms : &o->link_timeout_ms) = v;
			break;
		case O_PCAP_OUT: o->pcap_out = optarg; break;
		case O_JSON: o->json = optarg; break;
		case O_LIVE: o->live = 1; break;
		case O_NO_LIVE: o->live = 0; break;
		case O_MBUFS:
			rc = parse_u64("mbufs", optarg, 1023, 16777215, &v, err, errlen);
			o->mbufs = (uint32_t)v;
			break;
		case 'h':
			amil_pktgen_opts_usage(stdout);
			return 1;
		default:
			return errf(err, errlen, "unknown option '%s'", argv[optind - 1]);
		}
		if (rc != 0)
			return rc;
	}
	if (optind < argc)
		return errf(err, errlen, "unexpected argument '%s'", argv[optind]);
	if (o->centers == NULL)
		return errf(err, errlen, "--centers FILE is required");
	if (!has_dst_ip)
		return errf(err, errlen, "--dst-ip ADDR is required");
	if (o->has_src_ip && src_family != dst_family)
		return errf(err, errlen, "--src-ip and --dst-ip must be the same family");
	o->addr.ipv6 = dst_family == AF_INET6;
	if (o->duration_ms != 0 && has_count)
		return errf(err, errlen, "give --count or --duration, not both");
	if (o->duration_ms != 0)
		o->count = 0;
	if (o->amount_min > o->amount_max)
		return errf(err, errlen, "--amount-min %" PRId64 " is above --amount-max %" PRId64,
			    o->amount_min, o->amount_max);
	if (o->dup_frac + o->invalid_frac > 1.0)
		return errf(err, errlen, "--dup-frac + --invalid-frac must not exceed 1");
	if (o->pcap_out != NULL && !o->has_dst_mac)
		return errf(err, errlen, "--pcap-out needs --dst-mac (no ARP without a port)");
	if (o->addr.ipv6 && !o->has_dst_mac && o->pcap_out == NULL)
		return errf(err, errlen, "IPv6: give --dst-mac (neighbour discovery is not implemented)");
	return 0;
}
