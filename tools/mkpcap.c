/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * amil-mkpcap: write AMIL/1 donation traffic to a pcap file, and summarise
 * the ACKs in a reply capture.  Used by the demo, the benchmark (replayed
 * with net_pcap infinite_rx=1) and by operators who want a capture to
 * replay.  Speaks AMIL/1 through lib/ only: no second wire implementation.
 *
 *   amil-mkpcap --out in.pcap --centers centers.txt --dst-mac 02:..:01 \
 *               --dst-ip 198.18.0.1 --count 1000 --dup-frac 0.05 --invalid-frac 0.02
 *   amil-mkpcap --summarize out.pcap --centers centers.txt [--json]
 *
 * Generated donations are deterministic for a given --seed.  Amounts are
 * integers in minor units; fractions only pick how many frames are
 * duplicates or invalid.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amil_centers.h"
#include "amil_frame.h"
#include "amil_levy.h"
#include "amil_wire.h"

#define PROG "amil-mkpcap"

enum invalid_kind { INV_BAD_TAG, INV_UNKNOWN_CENTER, INV_BAD_LEN, INV_BAD_AMOUNT, INV_BAD_CURRENCY,
		    INV_KINDS };

struct opts {
	const char *out, *summarize, *centers;
	uint64_t count, seed, first_id;
	double dup_frac, invalid_frac;
	struct amil_frame_addr addr;
	char currency[4];
	uint8_t exponent;
	int64_t amount_max;
	int json;
	int neighbour;             /* prepend an ARP request and an ICMP echo */
};

static uint64_t rng_state;

/* xorshift64*: reproducible traffic, not cryptography. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static double
rng_unit(void)
{
	return (double)(rng() >> 11) / (double)(UINT64_C(1) << 53);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " --out FILE --centers FILE [options]   write donations\n"
		"       " PROG " --summarize FILE --centers FILE [--json]   count ACKs in a capture\n"
		"\n"
		"  --out FILE           pcap to write (Ethernet, microsecond timestamps)\n"
		"  --centers FILE       centers file (<center_id> <32 hex key> per line)\n"
		"  --count N            donations to write (default 1000)\n"
		"  --first-id N         first donation_id (default 1)\n"
		"  --dup-frac F         fraction of frames that retransmit an earlier donation (default 0)\n"
		"  --invalid-frac F     fraction of invalid frames, spread over bad tag, unknown center,\n"
		"                       bad length, bad amount, bad currency (default 0)\n"
		"  --dst-mac MAC        appliance MAC (default 02:00:00:00:00:01)\n"
		"  --src-mac MAC        center MAC (default 02:00:00:00:00:02)\n"
		"  --dst-ip ADDR        appliance IPv4 or IPv6 address (default 198.18.0.1)\n"
		"  --src-ip ADDR        center address, same family (default 198.18.0.2)\n"
		"  --port N             appliance UDP port (default 7100)\n"
		"  --currency XXX       ISO 4217 code (default USD), --exponent N (default 2)\n"
		"  --amount-max N       amounts are uniform in 1..N minor units (default 1000000)\n"
		"  --neighbour          start with an ARP request (IPv4) and an echo request\n"
		"  --seed N             PRNG seed (default 1)\n"
		"  --json               summary as one JSON object\n"
		"  -h, --help           this text\n");
}

static int
parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

static int
parse_u64(const char *flag, const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '-' || *s == '\0' || *end != '\0' || errno != 0 || v > max) {
		fprintf(stderr, PROG ": %s: want an integer 0..%" PRIu64 ", got '%s'\n", flag, max, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int
parse_frac(const char *flag, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
		fprintf(stderr, PROG ": %s: want a fraction 0..1, got '%s'\n", flag, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int
parse_ip(const char *flag, const char *s, struct amil_frame_addr *a, int dst)
{
	uint32_t v4;
	uint8_t v6[16];

	if (inet_pton(AF_INET, s, &v4) == 1) {
		*(dst ? &a->dst_ip4 : &a->src_ip4) = v4;
		if (dst)
			a->ipv6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, s, v6) == 1) {
		memcpy(dst ? a->dst_ip6 : a->src_ip6, v6, 16);
		if (dst)
			a->ipv6 = true;
		return 0;
	}
	fprintf(stderr, PROG ": %s: not an IPv4 or IPv6 address: '%s'\n", flag, s);
	return -EINVAL;
}

static int
write_frame(pcap_dumper_t *d, const uint8_t *frame, int len, uint64_t n)
{
	struct pcap_pkthdr h;

	memset(&h, 0, sizeof(h));
	h.ts.tv_sec = (time_t)(n / 1000000);
	h.ts.tv_usec = (suseconds_t)(n % 1000000);
	h.caplen = h.len = (bpf_u_int32)len;
	pcap_dump((u_char *)d, &h, frame);
	return 0;
}

/* amil_frame_csum_fold() gives the checksum as a number: store it big-endian. */
static void
put_csum(uint8_t *at, uint16_t c)
{
	at[0] = (uint8_t)(c >> 8);
	at[1] = (uint8_t)c;
}

/* ARP who-has for the appliance and an ICMP echo request, so a capture
 * also shows the neighbour answers. */
static void
write_neighbour(pcap_dumper_t *d, const struct opts *o, uint64_t *n)
{
	uint8_t f[128];
	const struct amil_frame_addr *a = &o->addr;
	uint32_t sum;

	if (a->ipv6)
		return;
	memset(f, 0, sizeof(f));
	memset(f, 0xff, 6);
	memcpy(f + 6, a->src_mac, 6);
	f[12] = 0x08, f[13] = 0x06;                 /* ARP */
	f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0, f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;
	memcpy(f + 22, a->src_mac, 6);
	memcpy(f + 28, &a->src_ip4, 4);
	memcpy(f + 38, &a->dst_ip4, 4);
	write_frame(d, f, 60, (*n)++);

	/* Echo request: IPv4 header + ICMP 8/0 with 8 bytes of data. */
	memset(f, 0, sizeof(f));
	memcpy(f, a->dst_mac, 6);
	memcpy(f + 6, a->src_mac, 6);
	f[12] = 0x08, f[13] = 0x00;
	f[14] = 0x45, f[17] = 20 + 16, f[22] = 64, f[23] = 1;
	memcpy(f + 26, &a->src_ip4, 4);
	memcpy(f + 30, &a->dst_ip4, 4);
	sum = amil_frame_csum_add(0, f + 14, 20);
	put_csum(f + 24, amil_frame_csum_fold(sum));
	f[34] = 8, f[38] = 0x12, f[39] = 0x34, f[40] = 0, f[41] = 1;
	memcpy(f + 42, "amil-png", 8);
	put_csum(f + 36, amil_frame_csum_fold(amil_frame_csum_add(0, f + 34, 16)));
	write_frame(d, f, 14 + 20 + 16, (*n)++);
}

static int
generate(const struct opts *o, const struct amil_centers *c)
{
	uint32_t nc = amil_centers_count(c);
	struct amil_donation *sent;
	pcap_t *p;
	pcap_dumper_t *d;
	uint64_t nframes = 0, ndup = 0, ninv = 0, nnew = 0;
	uint8_t frame[AMIL_FRAME_MAX], payload[AMIL_WIRE_LEN], key[AMIL_KEY_LEN];
	uint32_t cid;

	sent = calloc(o->count ? o->count : 1, sizeof(*sent));
	p = pcap_open_dead(DLT_EN10MB, 65535);
	if (sent == NULL || p == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		free(sent);
		return -ENOMEM;
	}
	d = pcap_dump_open(p, o->out);
	if (d == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", o->out, pcap_geterr(p));
		pcap_close(p);
		free(sent);
		return -EIO;
	}
	if (o->neighbour)
		write_neighbour(d, o, &nframes);

	for (uint64_t i = 0; i < o->count; i++) {
		struct amil_donation dn;
		double u = rng_unit();
		int kind = -1, len;
		size_t plen = AMIL_WIRE_LEN;

		if (nnew > 0 && u < o->dup_frac) {
			/* Retransmit: same content, new sent_ns/seq, re-signed. */
			dn = sent[rng() % nnew];
			ndup++;
		} else {
			amil_centers_get(c, (uint32_t)(rng() % nc), &cid, key);
			dn = (struct amil_donation){
				.center_id = cid,
				.donation_id = o->first_id + nnew,
				.donor_id = rng() % 4 == 0 ? 0 : 1 + rng() % 100000,
				.campaign_id = 1 + (uint32_t)(rng() % 16),
				.currency = {o->currency[0], o->currency[1], o->currency[2]},
				.exponent = o->exponent,
				.amount_minor = 1 + (int64_t)(rng() % (uint64_t)o->amount_max),
			};
			if (rng_unit() < o->invalid_frac) {
				kind = (int)(rng() % INV_KINDS);
				ninv++;
			} else {
				sent[nnew++] = dn;
			}
		}
		dn.sent_ns = i * 1000;
		dn.seq = (uint32_t)i;
		if (kind == INV_BAD_AMOUNT)
			dn.amount_minor = 0;
		if (kind == INV_BAD_CURRENCY)
			memcpy(dn.currency, "us$", 3);
		amil_wire_donation_encode(payload, &dn);
		if (kind == INV_UNKNOWN_CENTER) {
			/* Sign with a key nobody has, under an id no one was given. */
			uint32_t bogus = htonl(0xFFFFFFF0u - (uint32_t)(rng() % 15));
			memcpy(payload + 4, &bogus, 4);
			memset(key, 0xA5, sizeof(key));
		} else {
			memcpy(key, amil_centers_key(c, dn.center_id), sizeof(key));
		}
		amil_wire_sign(payload, key);
		if (kind == INV_BAD_TAG)
			payload[AMIL_WIRE_TAG_OFF] ^= 0x01;
		if (kind == INV_BAD_LEN)
			plen = AMIL_WIRE_LEN - 1;
		len = amil_frame_build_udp(frame, sizeof(frame), &o->addr, payload, plen);
		if (len < 0)
			break;
		write_frame(d, frame, len, nframes++);
	}
	pcap_dump_close(d);
	pcap_close(p);
	free(sent);
	printf(PROG ": wrote %s: %" PRIu64 " frames (%" PRIu64 " new donations, %" PRIu64
	       " retransmits, %" PRIu64 " invalid%s)\n",
	       o->out, nframes, nnew, ndup, ninv, o->neighbour ? ", ARP + echo first" : "");
	return 0;
}

static int
summarize(const struct opts *o, const struct amil_centers *c)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t frames = 0, acks = 0, bad_tag = 0, other = 0, arp = 0, icmp = 0;
	uint64_t status[AMIL_ACK_STATUS_MAX] = {0}, reason[AMIL_REASON_MAX] = {0};
	int64_t levy = 0, amount = 0;
	pcap_t *p = pcap_open_offline(o->summarize, errbuf);

	if (p == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", o->summarize, errbuf);
		return -EIO;
	}
	while (pcap_next_ex(p, &h, &data) == 1) {
		struct amil_frame_addr a;
		const uint8_t *pl;
		size_t plen;
		const uint8_t *key;
		struct amil_ack ack;

		frames++;
		if (h->caplen >= 14 && data[12] == 0x08 && data[13] == 0x06) {
			arp++;
			continue;
		}
		if (amil_frame_parse_udp(data, h->caplen, true, &a, &pl, &plen) != 0) {
			if (h->caplen >= 34 && data[12] == 0x08 && data[13] == 0 && data[23] == 1)
				icmp++;
			else if (h->caplen >= 54 && data[12] == 0x86 && data[13] == 0xdd && data[20] == 58)
				icmp++;
			else
				other++;
			continue;
		}
		if (amil_wire_check(pl, plen, AMIL_MSG_ACK) != 0) {
			other++;
			continue;
		}
		key = amil_centers_key(c, amil_wire_center_id(pl));
		if (key == NULL || amil_wire_verify(pl, key) != 0) {
			bad_tag++;
			continue;
		}
		amil_wire_ack_decode(pl, &ack);
		acks++;
		if (ack.status < AMIL_ACK_STATUS_MAX)
			status[ack.status]++;
		if (ack.status == AMIL_ACK_REJECTED && ack.reason < AMIL_REASON_MAX)
			reason[ack.reason]++;
		if (ack.status == AMIL_ACK_ACCEPTED) {
			levy += ack.levy_minor;
			amount += ack.amount_minor;
		}
	}
	pcap_close(p);
	if (o->json) {
		printf("{\"frames\": %" PRIu64 ", \"acks\": %" PRIu64 ", \"accepted\": %" PRIu64
		       ", \"duplicate\": %" PRIu64 ", \"rejected\": %" PRIu64
		       ", \"bad_ack_tag\": %" PRIu64 ", \"arp\": %" PRIu64 ", \"icmp\": %" PRIu64
		       ", \"other\": %" PRIu64 ", \"accepted_amount_minor\": %" PRId64
		       ", \"accepted_levy_minor\": %" PRId64 ", \"rejected_by_reason\": {",
		       frames, acks, status[0], status[1], status[2], bad_tag, arp, icmp, other, amount,
		       levy);
		for (int r = 1; r < AMIL_REASON_MAX; r++)
			printf("%s\"%s\": %" PRIu64, r > 1 ? ", " : "", amil_reason_name((uint8_t)r),
			       reason[r]);
		printf("}}\n");
	} else {
		printf("%s: %" PRIu64 " frames: %" PRIu64 " verified ACKs (%" PRIu64 " accepted, %" PRIu64
		       " duplicate, %" PRIu64 " rejected), %" PRIu64 " ARP, %" PRIu64 " ICMP, %" PRIu64
		       " other, %" PRIu64 " ACKs failing verification\n",
		       o->summarize, frames, acks, status[0], status[1], status[2], arp, icmp, other,
		       bad_tag);
		printf("  accepted amount %" PRId64 " minor units, levy %" PRId64 " minor units\n",
		       amount, levy);
		for (int r = 1; r < AMIL_REASON_MAX; r++)
			if (reason[r])
				printf("  rejected %-13s %" PRIu64 "\n", amil_reason_name((uint8_t)r),
				       reason[r]);
	}
	return bad_tag ? -EBADMSG : 0;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"out", required_argument, NULL, 'o'},      {"summarize", required_argument, NULL, 'S'},
		{"centers", required_argument, NULL, 'c'},  {"count", required_argument, NULL, 'n'},
		{"first-id", required_argument, NULL, 'F'}, {"dup-frac", required_argument, NULL, 'd'},
		{"invalid-frac", required_argument, NULL, 'i'},
		{"dst-mac", required_argument, NULL, 'M'},  {"src-mac", required_argument, NULL, 'm'},
		{"dst-ip", required_argument, NULL, 'D'},   {"src-ip", required_argument, NULL, 's'},
		{"port", required_argument, NULL, 'p'},     {"currency", required_argument, NULL, 'C'},
		{"exponent", required_argument, NULL, 'e'}, {"amount-max", required_argument, NULL, 'A'},
		{"seed", required_argument, NULL, 'r'},     {"json", no_argument, NULL, 'j'},
		{"neighbour", no_argument, NULL, 'N'},      {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {
		.count = 1000, .seed = 1, .first_id = 1, .currency = "USD", .exponent = 2,
		.amount_max = 1000000,
		.addr = {.src_mac = {2, 0, 0, 0, 0, 2}, .dst_mac = {2, 0, 0, 0, 0, 1},
			 .src_port = 40000, .dst_port = AMIL_WIRE_PORT_DEFAULT},
	};
	struct amil_centers *c;
	char err[512];
	uint64_t v;
	int opt, rc;

	inet_pton(AF_INET, "198.18.0.1", &o.addr.dst_ip4);
	inet_pton(AF_INET, "198.18.0.2", &o.addr.src_ip4);
	inet_pton(AF_INET6, "2001:2::2", o.addr.src_ip6);
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		rc = 0;
		switch (opt) {
		case 'o': o.out = optarg; break;
		case 'S': o.summarize = optarg; break;
		case 'c': o.centers = optarg; break;
		case 'n': rc = parse_u64("--count", optarg, 100000000, &o.count); break;
		case 'F': rc = parse_u64("--first-id", optarg, UINT64_MAX / 2, &o.first_id); break;
		case 'd': rc = parse_frac("--dup-frac", optarg, &o.dup_frac); break;
		case 'i': rc = parse_frac("--invalid-frac", optarg, &o.invalid_frac); break;
		case 'M':
		case 'm':
			rc = parse_mac(optarg, opt == 'M' ? o.addr.dst_mac : o.addr.src_mac);
			if (rc)
				fprintf(stderr, PROG ": --%s: not a MAC address: '%s'\n",
					opt == 'M' ? "dst-mac" : "src-mac", optarg);
			break;
		case 'D': rc = parse_ip("--dst-ip", optarg, &o.addr, 1); break;
		case 's': rc = parse_ip("--src-ip", optarg, &o.addr, 0); break;
		case 'p':
			rc = parse_u64("--port", optarg, 65535, &v);
			o.addr.dst_port = (uint16_t)v;
			break;
		case 'C':
			if (strlen(optarg) != 3 || amil_currency_index(optarg) < 0) {
				fprintf(stderr, PROG ": --currency: want three capitals, got '%s'\n", optarg);
				rc = -EINVAL;
			}
			memcpy(o.currency, optarg, 3);
			break;
		case 'e':
			rc = parse_u64("--exponent", optarg, AMIL_EXPONENT_MAX, &v);
			o.exponent = (uint8_t)v;
			break;
		case 'A':
			rc = parse_u64("--amount-max", optarg, (uint64_t)AMIL_AMOUNT_MAX_MINOR, &v);
			if (rc == 0 && v == 0) {
				fprintf(stderr, PROG ": --amount-max: must be at least 1\n");
				rc = -EINVAL;
			}
			o.amount_max = (int64_t)v;
			break;
		case 'r': rc = parse_u64("--seed", optarg, UINT64_MAX, &o.seed); break;
		case 'j': o.json = 1; break;
		case 'N': o.neighbour = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (rc)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if ((o.out == NULL) == (o.summarize == NULL) || o.centers == NULL) {
		fprintf(stderr, PROG ": give --centers and exactly one of --out or --summarize\n");
		usage(stderr);
		return 2;
	}
	rng_state = o.seed ? o.seed : 1;
	c = amil_centers_load(o.centers, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	rc = o.out ? generate(&o, c) : summarize(&o, c);
	amil_centers_free(c);
	return rc == 0 ? 0 : 1;
}
