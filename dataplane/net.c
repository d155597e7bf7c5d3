/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Frame classification and in-place replies (see net.h for the contract).
 *
 * Design.  Every received frame passes through amil_net_classify() exactly
 * once, so the donation path (Ethernet -> IPv4/IPv6 -> UDP to our port ->
 * 64-byte AMIL/1 DONATION) is written as a straight line of bounds and
 * field checks with the error branches marked unlikely.  It never copies a
 * header, never loops over options and never writes to the frame: a
 * DONATION only sets mbuf metadata (l2_len, l3_len, packet_type, hash.usr).  The
 * neighbour protocols (ARP, NS) and echo are rare and answered by
 * rewriting the received mbuf, so nothing here allocates.
 *
 * Order of checks, and why.  Each layer checks "is this addressed to us"
 * before it checks integrity: the issue lists "not addressed to our IP and
 * port" first among the silent drops, and foreign traffic (which on a
 * shared segment is most of what arrives) should cost a compare, not a
 * checksum.  So a corrupted frame that is also not addressed to us counts
 * as not_ours.  Within our own traffic the order is: lengths (malformed),
 * IPv4 header checksum, fragments (unhandled), protocol, UDP port
 * (not_ours), UDP length (malformed), UDP checksum, payload length
 * (bad_len), AMIL/1 header (bad_header).  ICMP and ICMPv6: checksum
 * (malformed) before type (unhandled) and NS target (not_ours).  ARP:
 * format (malformed), then opcode and gratuitous announcements
 * (unhandled), then target address (not_ours).
 *
 * What we do not do, on purpose:
 *  - Multi-segment mbufs are MALFORMED: the port is configured without RX
 *    scatter, so a chained mbuf cannot carry a donation, and every header
 *    access below may then assume one contiguous buffer.
 *  - VLAN / QinQ tagged frames that pass the MAC filter are UNHANDLED: the
 *    data plane does not terminate VLANs.
 *  - IPv4 fragments and IPv6 extension headers are UNHANDLED: a 64-byte
 *    donation is never fragmented and never carries extension headers.
 *  - ND options in a solicitation are not parsed: the advertisement goes
 *    to the solicitation's Ethernet source, which is where a Source
 *    Link-Layer Address option would send it anyway in every sane network,
 *    and skipping the option walk keeps this code loop-free.
 *
 * RX checksum offload: for both the IPv4 header and L4 checksums, GOOD
 * and NONE ("the checksum field is not correct but the data's integrity
 * was verified", DPDK's definition) skip the software check, BAD drops,
 * UNKNOWN verifies in software.
 */

/* rte_ipv{4,6}_udptcp_cksum_verify() are still marked experimental in
 * DPDK 22.11 (they are plain static inlines, no ABI is involved). */
#define ALLOW_EXPERIMENTAL_API 1

#include "net.h"

#include <stddef.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "amil_wire.h"

#define ETH_HLEN        ((uint32_t)sizeof(struct rte_ether_hdr))   /* 14 */
#define IP4_HLEN_MIN    ((uint32_t)sizeof(struct rte_ipv4_hdr))    /* 20 */
#define IP6_HLEN        ((uint32_t)sizeof(struct rte_ipv6_hdr))    /* 40 */
#define UDP_HLEN        ((uint32_t)sizeof(struct rte_udp_hdr))     /* 8 */
#define ARP_FRAME_LEN   (ETH_HLEN + (uint32_t)sizeof(struct rte_arp_hdr)) /* 42 */
#define ETH_MIN_FRAME   60      /* minimum frame without FCS */
#define TTL_REPLY       64

#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY   129
#define ICMP6_ND_NS        135
#define ICMP6_ND_NA        136
#define ND_HOP_LIMIT       255
#define ND_NA_FLAG_S       0x40 /* first byte of the NA flags word: R=0x80 S=0x40 O=0x20 */
#define ND_NA_FLAG_O       0x20
#define ND_OPT_TLLA        2

/* ICMPv6 neighbour solicitation / advertisement body (RFC 4861 4.3, 4.4). */
struct nd_msg {
	uint8_t type;
	uint8_t code;
	rte_be16_t cksum;
	uint8_t flags;           /* NA: R S O; NS: reserved */
	uint8_t reserved[3];
	uint8_t target[16];
} __rte_packed;

/* Link-layer address option for Ethernet: type, length in 8-byte units. */
struct nd_opt_lla {
	uint8_t type;
	uint8_t len;
	struct rte_ether_addr mac;
} __rte_packed __rte_aligned(2);

#define ND_NS_LEN     ((uint32_t)sizeof(struct nd_msg))                    /* 24 */
#define ND_NA_LEN     ((uint32_t)(sizeof(struct nd_msg) + sizeof(struct nd_opt_lla))) /* 32 */
#define ND_NA_FRAME   (ETH_HLEN + IP6_HLEN + ND_NA_LEN)                    /* 86 */

_Static_assert(sizeof(struct nd_msg) == 24, "NS/NA body is 24 bytes");
_Static_assert(sizeof(struct nd_opt_lla) == 8, "Ethernet LLA option is 8 bytes");

/* Solicited-node multicast prefix ff02::1:ff00:0/104 (RFC 4291 2.7.1). */
static const uint8_t sn_prefix[13] = {
	0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff,
};
static const uint8_t all_nodes[16] = {
	0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
};
static const struct rte_ether_addr all_nodes_mac = {
	.addr_bytes = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01},
};

static const char *const drop_names[AMIL_DROP_MAX] = {
	[AMIL_DROP_NOT_OURS] = "not_ours",
	[AMIL_DROP_UNHANDLED] = "unhandled",
	[AMIL_DROP_MALFORMED] = "malformed",
	[AMIL_DROP_BAD_IP_CSUM] = "bad_ip_csum",
	[AMIL_DROP_BAD_UDP_CSUM] = "bad_udp_csum",
	[AMIL_DROP_BAD_LEN] = "bad_len",
	[AMIL_DROP_BAD_HEADER] = "bad_header",
	[AMIL_DROP_UNKNOWN_CENTER] = "unknown_center",
	[AMIL_DROP_BAD_TAG] = "bad_tag",
};

const char *amil_net_drop_name(unsigned reason)
{
	if (reason >= AMIL_DROP_MAX || drop_names[reason] == NULL)
		return "unknown";
	return drop_names[reason];
}

/* Where the destination MAC put the frame. */
enum dst_mac {
	DST_OURS,
	DST_BCAST,
	DST_MCAST6, /* 33:33:xx:xx:xx:xx, IPv6 multicast */
};

static inline enum amil_net_verdict drop(uint8_t *reason, uint8_t why)
{
	*reason = why;
	return AMIL_NET_DROP;
}

static inline void set_len(struct rte_mbuf *m, uint32_t len)
{
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
}

/*
 * RFC 1624 eqn. 3: the checksum @hc after one 16-bit word changed from
 * @old_w to @new_w (all in host order).  Used for the echo replies, where
 * only the type byte changes and the pseudo-header (IPv6) is symmetric in
 * source and destination, so the whole message need not be summed again.
 */
static inline uint16_t csum_replace(uint16_t hc, uint16_t old_w, uint16_t new_w)
{
	uint32_t s = (uint32_t)(uint16_t)~hc + (uint16_t)~old_w + new_w;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* True when the RX flags say the checksum needs no software check;
 * *bad is set when they say it is wrong. */
static inline bool rx_csum_known(uint64_t flags, uint64_t mask, uint64_t bad_flag, bool *bad)
{
	uint64_t f = flags & mask;

	*bad = (f == bad_flag);
	return f != 0; /* GOOD, BAD or NONE */
}

/* The shared tail of the IPv4 and IPv6 donation paths. */
static inline enum amil_net_verdict
donation(struct rte_mbuf *m, const uint8_t *frame, uint32_t l3_len, uint32_t udp_len,
	 uint32_t ptype, uint16_t *payload_off, uint8_t *reason)
{
	uint32_t off = ETH_HLEN + l3_len + UDP_HLEN;

	if (unlikely(udp_len - UDP_HLEN != AMIL_WIRE_LEN))
		return drop(reason, AMIL_DROP_BAD_LEN);
	if (unlikely(amil_wire_check(frame + off, AMIL_WIRE_LEN, AMIL_MSG_DONATION) != 0))
		return drop(reason, AMIL_DROP_BAD_HEADER);
	m->l2_len = ETH_HLEN;
	m->l3_len = l3_len;
	m->packet_type = RTE_PTYPE_L2_ETHER | ptype | RTE_PTYPE_L4_UDP;
	/* Also in the mbuf's first cache line (the RSS hash is of no further
	 * use): the worker finds the payload without touching the second
	 * line, where l2_len/l3_len live, so its prefetch does not stall. */
	m->hash.usr = off;
	*payload_off = (uint16_t)off;
	return AMIL_NET_DONATION;
}

/* ---- ARP ---------------------------------------------------------------- */

static enum amil_net_verdict
classify_arp(const struct amil_net_cfg *cfg, struct rte_mbuf *m, uint8_t *frame, uint32_t len,
	     uint8_t *reason)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(frame + ETH_HLEN);
	struct rte_arp_ipv4 *a = &arp->arp_data;

	if (!cfg->has_ip4)
		return drop(reason, AMIL_DROP_NOT_OURS);
	if (len < ARP_FRAME_LEN)
		return drop(reason, AMIL_DROP_MALFORMED);
	if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != sizeof(rte_be32_t))
		return drop(reason, AMIL_DROP_MALFORMED);
	/* Replies, RARP/InARP, and gratuitous announcements (sender IP ==
	 * target IP) ask nothing of us.  An ARP probe (sender 0.0.0.0) for
	 * our address is answered: RFC 5227 expects the owner to defend. */
	if (arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST) || a->arp_sip == a->arp_tip)
		return drop(reason, AMIL_DROP_UNHANDLED);
	if (a->arp_tip != cfg->ip4)
		return drop(reason, AMIL_DROP_NOT_OURS);

	arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
	rte_ether_addr_copy(&a->arp_sha, &a->arp_tha);
	a->arp_tip = a->arp_sip;
	rte_ether_addr_copy(&cfg->mac, &a->arp_sha);
	a->arp_sip = cfg->ip4;
	rte_ether_addr_copy(&a->arp_tha, &eth->dst_addr);
	rte_ether_addr_copy(&cfg->mac, &eth->src_addr);
	/* Keep the requester's minimum-size padding but do not send its
	 * bytes back, and drop anything beyond a minimum frame. */
	if (len > ETH_MIN_FRAME)
		len = ETH_MIN_FRAME;
	memset(frame + ARP_FRAME_LEN, 0, len - ARP_FRAME_LEN);
	set_len(m, len);
	return AMIL_NET_REPLY;
}

/* ---- the donation datagram's checksum ------------------------------------ */

/*
 * Every donation and every ACK is a 72-byte UDP datagram (8-byte header +
 * 64-byte AMIL/1 message), and each donation costs two UDP checksums: the
 * request's check and the ACK's.  DPDK's generic rte_ipv{4,6}_udptcp_cksum()
 * walk any length 16 bits at a time; with the length a compile-time
 * constant the sum below takes 32-bit words into a 64-bit accumulator,
 * which the compiler unrolls (at most 30 words of < 2^32 cannot overflow).
 * One's-complement sums do not depend on byte order, so everything is added
 * in memory order and the folded result is stored as is, like DPDK's.
 * Other lengths (never a donation) keep using DPDK's functions.
 */
#define DGRAM_LEN (UDP_HLEN + AMIL_WIRE_LEN)

static inline uint64_t sum32(const void *p, unsigned words)
{
	const uint8_t *b = p;
	uint64_t s = 0;

	for (unsigned i = 0; i < words; i++) {
		uint32_t w;

		memcpy(&w, b + 4 * i, 4);
		s += w;
	}
	return s;
}

static inline uint16_t fold64(uint64_t s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* The pseudo headers' protocol and length words for a DGRAM_LEN datagram. */
static const uint8_t dgram_tail4[4] = {0, IPPROTO_UDP, 0, DGRAM_LEN};
static const uint8_t dgram_tail6[8] = {0, 0, 0, DGRAM_LEN, 0, 0, 0, IPPROTO_UDP};

/* Sum of the IPv4 pseudo header and a DGRAM_LEN datagram. */
static inline uint16_t dgram_sum4(const struct rte_ipv4_hdr *ip, const void *udp)
{
	uint64_t s = (uint64_t)ip->src_addr + ip->dst_addr + sum32(dgram_tail4, 1);

	return fold64(s + sum32(udp, DGRAM_LEN / 4));
}

/* Sum of the IPv6 pseudo header (RFC 8200 8.1) and a DGRAM_LEN datagram. */
static inline uint16_t dgram_sum6(const struct rte_ipv6_hdr *ip6, const void *udp)
{
	uint64_t s = sum32(ip6->src_addr, 4) + sum32(ip6->dst_addr, 4) + sum32(dgram_tail6, 2);

	return fold64(s + sum32(udp, DGRAM_LEN / 4));
}

_Static_assert(DGRAM_LEN % 4 == 0 && DGRAM_LEN < 256, "datagram sum takes whole words");

/*
 * UDP checksum of a reply, in two halves so that nothing just written is
 * read back in pieces: the part that a reply does not change (pseudo header
 * and UDP header with the checksum taken as 0; swapping addresses and ports
 * leaves a one's-complement sum as it was) is summed from the request
 * BEFORE the swap, and the new payload is summed in the 8-byte words in
 * which amil_wire_ack_encode() and amil_wire_sign() wrote it, so every load
 * is forwarded from a store of the same size.
 */
static inline uint64_t udp_hdr_sum(const struct rte_udp_hdr *udp)
{
	uint32_t ports;

	memcpy(&ports, udp, 4); /* src_port, dst_port */
	return (uint64_t)ports + udp->dgram_len;
}

static inline uint64_t sum64(const void *p, unsigned words)
{
	const uint8_t *b = p;
	uint64_t s = 0;

	for (unsigned i = 0; i < words; i++) {
		uint64_t w;

		memcpy(&w, b + 8 * i, 8);
		s += (w & 0xffffffff) + (w >> 32);
	}
	return s;
}

static inline rte_be16_t reply_csum_finish(uint64_t hdr_sum, const struct rte_udp_hdr *udp)
{
	uint16_t c = (uint16_t)~fold64(hdr_sum + sum64(udp + 1, AMIL_WIRE_LEN / 8));

	return c == 0 ? 0xffff : c; /* RFC 768: 0 would mean "no checksum" */
}

/* ---- IPv4 --------------------------------------------------------------- */

static enum amil_net_verdict
icmp4_echo(const struct amil_net_cfg *cfg, struct rte_mbuf *m, uint8_t *frame,
	   struct rte_ipv4_hdr *ip, uint32_t hlen, uint32_t tot, uint8_t *reason)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)((uint8_t *)ip + hlen);
	uint32_t icmp_len = tot - hlen;

	if (icmp_len < sizeof(*icmp) || rte_raw_cksum(icmp, icmp_len) != 0xffff)
		return drop(reason, AMIL_DROP_MALFORMED);
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0)
		return drop(reason, AMIL_DROP_UNHANDLED);

	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_cksum = rte_cpu_to_be_16(csum_replace(rte_be_to_cpu_16(icmp->icmp_cksum),
							 RTE_IP_ICMP_ECHO_REQUEST << 8,
							 RTE_IP_ICMP_ECHO_REPLY << 8));
	ip->dst_addr = ip->src_addr;
	ip->src_addr = cfg->ip4;
	ip->time_to_live = TTL_REPLY;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&cfg->mac, &eth->src_addr);
	set_len(m, ETH_HLEN + tot); /* drop Ethernet padding / trailer */
	return AMIL_NET_REPLY;
}

static inline enum amil_net_verdict
classify_ip4(const struct amil_net_cfg *cfg, struct rte_mbuf *m, uint8_t *frame, uint32_t len,
	     uint16_t *payload_off, uint8_t *reason)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + ETH_HLEN);
	uint32_t hlen, tot;
	bool bad;

	if (unlikely(!cfg->has_ip4))
		return drop(reason, AMIL_DROP_NOT_OURS);
	if (unlikely(len < ETH_HLEN + IP4_HLEN_MIN))
		return drop(reason, AMIL_DROP_MALFORMED);
	if (unlikely(ip->dst_addr != cfg->ip4))
		return drop(reason, AMIL_DROP_NOT_OURS);
	hlen = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (unlikely((ip->version_ihl >> 4) != 4 || hlen < IP4_HLEN_MIN || tot < hlen ||
		     ETH_HLEN + tot > len))
		return drop(reason, AMIL_DROP_MALFORMED);
	if (likely(!rx_csum_known(m->ol_flags, RTE_MBUF_F_RX_IP_CKSUM_MASK,
				  RTE_MBUF_F_RX_IP_CKSUM_BAD, &bad)))
		bad = rte_raw_cksum(ip, hlen) != 0xffff;
	if (unlikely(bad))
		return drop(reason, AMIL_DROP_BAD_IP_CSUM);
	if (unlikely(ip->fragment_offset &
		     RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return drop(reason, AMIL_DROP_UNHANDLED);

	if (likely(ip->next_proto_id == IPPROTO_UDP)) {
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)((uint8_t *)ip + hlen);
		uint32_t udp_len = tot - hlen;

		if (unlikely(udp_len < UDP_HLEN))
			return drop(reason, AMIL_DROP_MALFORMED);
		if (unlikely(udp->dst_port != cfg->udp_port))
			return drop(reason, AMIL_DROP_NOT_OURS);
		if (unlikely(rte_be_to_cpu_16(udp->dgram_len) != udp_len))
			return drop(reason, AMIL_DROP_MALFORMED);
		/* 0 means "no checksum" over IPv4 (RFC 768); checked before the
		 * RX flags in case a NIC calls an absent checksum bad. */
		if (udp->dgram_cksum != 0) {
			if (likely(!rx_csum_known(m->ol_flags, RTE_MBUF_F_RX_L4_CKSUM_MASK,
						  RTE_MBUF_F_RX_L4_CKSUM_BAD, &bad)))
				bad = udp_len == DGRAM_LEN ? dgram_sum4(ip, udp) != 0xffff
							   : rte_ipv4_udptcp_cksum_verify(ip, udp) != 0;
			if (unlikely(bad))
				return drop(reason, AMIL_DROP_BAD_UDP_CSUM);
		}
		return donation(m, frame, hlen, udp_len, RTE_PTYPE_L3_IPV4, payload_off, reason);
	}
	if (ip->next_proto_id == IPPROTO_ICMP)
		return icmp4_echo(cfg, m, frame, ip, hlen, tot, reason);
	return drop(reason, AMIL_DROP_UNHANDLED);
}

/* ---- IPv6 --------------------------------------------------------------- */

static inline bool ip6_eq(const uint8_t a[16], const uint8_t b[16])
{
	return memcmp(a, b, 16) == 0;
}

/* True when @a is the solicited-node multicast group of @ours. */
static inline bool is_solicited_node(const uint8_t a[16], const uint8_t ours[16])
{
	return memcmp(a, sn_prefix, sizeof(sn_prefix)) == 0 && memcmp(a + 13, ours + 13, 3) == 0;
}

static inline bool ip6_is_unspecified(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0;
}

/* Rewrite a valid neighbour solicitation for our address into the
 * advertisement (RFC 4861 7.2.4). */
static enum amil_net_verdict
ns_to_na(const struct amil_net_cfg *cfg, struct rte_mbuf *m, uint8_t *frame,
	 struct rte_ipv6_hdr *ip6, bool to_sn, uint32_t plen, uint8_t *reason)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct nd_msg *nd = (struct nd_msg *)(ip6 + 1);
	struct nd_opt_lla *opt = (struct nd_opt_lla *)(nd + 1);
	bool dad;

	if (plen < ND_NS_LEN || nd->code != 0 || ip6->hop_limits != ND_HOP_LIMIT)
		return drop(reason, AMIL_DROP_MALFORMED);
	if (!ip6_eq(nd->target, cfg->ip6))
		return drop(reason, AMIL_DROP_NOT_OURS);
	dad = ip6_is_unspecified(ip6->src_addr);
	/* RFC 4861 7.1.1: a DAD probe must go to the solicited-node group;
	 * a multicast source is never valid. */
	if ((dad && !to_sn) || ip6->src_addr[0] == 0xff)
		return drop(reason, AMIL_DROP_MALFORMED);
	/* A DAD NS without options (78 bytes) grows to 86. */
	if (ND_NA_FRAME > (uint32_t)m->buf_len - m->data_off)
		return drop(reason, AMIL_DROP_UNHANDLED);

	if (dad) {
		memcpy(ip6->dst_addr, all_nodes, 16);
		rte_ether_addr_copy(&all_nodes_mac, &eth->dst_addr);
	} else {
		memcpy(ip6->dst_addr, ip6->src_addr, 16);
		rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	}
	rte_ether_addr_copy(&cfg->mac, &eth->src_addr);
	memcpy(ip6->src_addr, cfg->ip6, 16);
	ip6->vtc_flow = RTE_BE32(UINT32_C(6) << 28);
	ip6->payload_len = RTE_BE16(ND_NA_LEN);
	ip6->hop_limits = ND_HOP_LIMIT;
	nd->type = ICMP6_ND_NA;
	nd->code = 0;
	nd->cksum = 0;
	nd->flags = (dad ? 0 : ND_NA_FLAG_S) | ND_NA_FLAG_O;
	memset(nd->reserved, 0, sizeof(nd->reserved));
	memcpy(nd->target, cfg->ip6, 16);
	opt->type = ND_OPT_TLLA;
	opt->len = 1;
	rte_ether_addr_copy(&cfg->mac, &opt->mac);
	set_len(m, ND_NA_FRAME);
	nd->cksum = rte_ipv6_udptcp_cksum(ip6, nd);
	return AMIL_NET_REPLY;
}

static enum amil_net_verdict
classify_icmp6(const struct amil_net_cfg *cfg, struct rte_mbuf *m, uint8_t *frame,
	       struct rte_ipv6_hdr *ip6, bool to_sn, uint32_t plen, uint8_t *reason)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(ip6 + 1);

	if (plen < 4 || rte_ipv6_udptcp_cksum_verify(ip6, icmp) != 0)
		return drop(reason, AMIL_DROP_MALFORMED);
	if (icmp->icmp_type == ICMP6_ND_NS)
		return ns_to_na(cfg, m, frame, ip6, to_sn, plen, reason);
	/* Only solicitations are accepted on the solicited-node group. */
	if (to_sn)
		return drop(reason, AMIL_DROP_NOT_OURS);
	if (icmp->icmp_type != ICMP6_ECHO_REQUEST || icmp->icmp_code != 0)
		return drop(reason, AMIL_DROP_UNHANDLED);
	if (plen < sizeof(*icmp))
		return drop(reason, AMIL_DROP_MALFORMED);

	icmp->icmp_type = ICMP6_ECHO_REPLY;
	icmp->icmp_cksum = rte_cpu_to_be_16(csum_replace(rte_be_to_cpu_16(icmp->icmp_cksum),
							 ICMP6_ECHO_REQUEST << 8,
							 ICMP6_ECHO_REPLY << 8));
	memcpy(ip6->dst_addr, ip6->src_addr, 16);
	memcpy(ip6->src_addr, cfg->ip6, 16);
	ip6->hop_limits = TTL_REPLY;
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&cfg->mac, &eth->src_addr);
	set_len(m, ETH_HLEN + IP6_HLEN + plen);
	return AMIL_NET_REPLY;
}

static inline enum amil_net_verdict
classify_ip6(const struct amil_net_cfg *cfg, struct rte_mbuf *m, uint8_t *frame, uint32_t len,
	     bool mcast_mac, uint16_t *payload_off, uint8_t *reason)
{
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(frame + ETH_HLEN);
	uint32_t plen;
	bool to_sn;
	bool bad;

	if (unlikely(!cfg->has_ip6))
		return drop(reason, AMIL_DROP_NOT_OURS);
	if (unlikely(len < ETH_HLEN + IP6_HLEN))
		return drop(reason, AMIL_DROP_MALFORMED);
	/* A 33:33 destination MAC is only accepted together with our
	 * solicited-node group; our unicast address needs our MAC. */
	if (likely(!mcast_mac && ip6_eq(ip6->dst_addr, cfg->ip6)))
		to_sn = false;
	else if (is_solicited_node(ip6->dst_addr, cfg->ip6))
		to_sn = true;
	else
		return drop(reason, AMIL_DROP_NOT_OURS);
	plen = rte_be_to_cpu_16(ip6->payload_len);
	if (unlikely((frame[ETH_HLEN] >> 4) != 6 || ETH_HLEN + IP6_HLEN + plen > len))
		return drop(reason, AMIL_DROP_MALFORMED);

	if (likely(ip6->proto == IPPROTO_UDP)) {
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);

		if (unlikely(to_sn))
			return drop(reason, AMIL_DROP_NOT_OURS);
		if (unlikely(plen < UDP_HLEN))
			return drop(reason, AMIL_DROP_MALFORMED);
		if (unlikely(udp->dst_port != cfg->udp_port))
			return drop(reason, AMIL_DROP_NOT_OURS);
		if (unlikely(rte_be_to_cpu_16(udp->dgram_len) != plen))
			return drop(reason, AMIL_DROP_MALFORMED);
		/* The UDP checksum is mandatory over IPv6 (RFC 8200 8.1). */
		if (unlikely(udp->dgram_cksum == 0))
			return drop(reason, AMIL_DROP_BAD_UDP_CSUM);
		if (likely(!rx_csum_known(m->ol_flags, RTE_MBUF_F_RX_L4_CKSUM_MASK,
					  RTE_MBUF_F_RX_L4_CKSUM_BAD, &bad)))
			bad = plen == DGRAM_LEN ? dgram_sum6(ip6, udp) != 0xffff
						: rte_ipv6_udptcp_cksum_verify(ip6, udp) != 0;
		if (unlikely(bad))
			return drop(reason, AMIL_DROP_BAD_UDP_CSUM);
		return donation(m, frame, IP6_HLEN, plen, RTE_PTYPE_L3_IPV6, payload_off, reason);
	}
	if (ip6->proto == IPPROTO_ICMPV6)
		return classify_icmp6(cfg, m, frame, ip6, to_sn, plen, reason);
	/* Extension headers, TCP, ...: nothing for us on the group. */
	return drop(reason, to_sn ? AMIL_DROP_NOT_OURS : AMIL_DROP_UNHANDLED);
}

/* ---- entry points -------------------------------------------------------- */

enum amil_net_verdict amil_net_classify(const struct amil_net_cfg *cfg, struct rte_mbuf *m,
					uint16_t *payload_off, uint8_t *reason)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)frame;
	enum dst_mac dst;

	if (unlikely(m->nb_segs != 1 || len < ETH_HLEN))
		return drop(reason, AMIL_DROP_MALFORMED);
	if (likely(rte_is_same_ether_addr(&eth->dst_addr, &cfg->mac)))
		dst = DST_OURS;
	else if (rte_is_broadcast_ether_addr(&eth->dst_addr))
		dst = DST_BCAST;
	else if (eth->dst_addr.addr_bytes[0] == 0x33 && eth->dst_addr.addr_bytes[1] == 0x33)
		dst = DST_MCAST6;
	else
		return drop(reason, AMIL_DROP_NOT_OURS);

	switch (eth->ether_type) {
	case RTE_BE16(RTE_ETHER_TYPE_IPV4):
		if (unlikely(dst != DST_OURS))
			return drop(reason, AMIL_DROP_NOT_OURS);
		return classify_ip4(cfg, m, frame, len, payload_off, reason);
	case RTE_BE16(RTE_ETHER_TYPE_IPV6):
		if (unlikely(dst == DST_BCAST))
			return drop(reason, AMIL_DROP_NOT_OURS);
		return classify_ip6(cfg, m, frame, len, dst == DST_MCAST6, payload_off, reason);
	case RTE_BE16(RTE_ETHER_TYPE_ARP):
		if (dst == DST_MCAST6)
			return drop(reason, AMIL_DROP_NOT_OURS);
		return classify_arp(cfg, m, frame, len, reason);
	case RTE_BE16(RTE_ETHER_TYPE_VLAN):
	case RTE_BE16(RTE_ETHER_TYPE_QINQ):
	case RTE_BE16(RTE_ETHER_TYPE_QINQ1):
		return drop(reason, AMIL_DROP_UNHANDLED);
	default:
		return drop(reason, AMIL_DROP_NOT_OURS);
	}
}

void amil_net_reply_udp(const struct amil_net_cfg *cfg, struct rte_mbuf *m)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	/* Offsets from m->hash.usr (see donation()): first cache line only. */
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(frame + m->hash.usr - UDP_HLEN);
	/* Donations are the only datagrams answered; anything else takes
	 * DPDK's generic checksum. */
	const bool fast = !cfg->tx_udp_csum_offload && udp->dgram_len == RTE_BE16(DGRAM_LEN);
	rte_be16_t port = udp->src_port;
	uint64_t tx = 0, hsum = 0;

	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&cfg->mac, &eth->src_addr);

	if ((m->packet_type & RTE_PTYPE_L3_MASK) == RTE_PTYPE_L3_IPV4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + ETH_HLEN);
		uint16_t ttl_proto = (uint16_t)(ip->time_to_live << 8 | ip->next_proto_id);

		if (fast)
			hsum = (uint64_t)ip->src_addr + ip->dst_addr + sum32(dgram_tail4, 1) +
			       udp_hdr_sum(udp);
		/* Packet id and flags are kept: DF or not, the reply is
		 * exactly as large as the request that got here. */
		ip->dst_addr = ip->src_addr;
		ip->src_addr = cfg->ip4;  /* the request's destination */
		ip->time_to_live = TTL_REPLY;
		if (cfg->tx_ip_csum_offload) {
			tx |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
			ip->hdr_checksum = 0;
		} else {
			/* Swapped addresses leave the sum as it was; only the
			 * TTL word changed (RFC 1624).  The request's checksum
			 * was verified on RX. */
			ip->hdr_checksum = rte_cpu_to_be_16(csum_replace(
				rte_be_to_cpu_16(ip->hdr_checksum), ttl_proto,
				(uint16_t)(TTL_REPLY << 8 | ip->next_proto_id)));
		}
		if (cfg->tx_udp_csum_offload) {
			tx |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
			udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, tx);
		} else if (fast) {
			udp->dgram_cksum = reply_csum_finish(hsum, udp);
		} else {
			udp->dgram_cksum = 0;
			udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp); /* 0 sent as 0xffff */
		}
	} else {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(frame + ETH_HLEN);

		if (fast)
			hsum = sum32(ip6->src_addr, 4) + sum32(ip6->dst_addr, 4) +
			       sum32(dgram_tail6, 2) + udp_hdr_sum(udp);
		memcpy(ip6->dst_addr, ip6->src_addr, 16);
		memcpy(ip6->src_addr, cfg->ip6, 16);
		ip6->hop_limits = TTL_REPLY;
		if (cfg->tx_udp_csum_offload) {
			tx |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
			udp->dgram_cksum = rte_ipv6_phdr_cksum(ip6, tx);
		} else if (fast) {
			udp->dgram_cksum = reply_csum_finish(hsum, udp);
		} else {
			udp->dgram_cksum = 0;
			udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);
		}
	}
	udp->src_port = udp->dst_port;
	udp->dst_port = port;
	/* Replace only the TX request bits: the RX bits are harmless on TX,
	 * and EXTERNAL / INDIRECT describe the buffer and must stay. */
	m->ol_flags = (m->ol_flags & ~RTE_MBUF_F_TX_OFFLOAD_MASK) | tx;
	set_len(m, m->hash.usr - UDP_HLEN + rte_be_to_cpu_16(udp->dgram_len));
}
