/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Frame classification and in-place replies for the data plane.
 *
 * The RX path calls amil_net_classify() once per received frame.  It checks
 * what the issue calls "dropped without any reply" up to the AMIL/1 header
 * (addressing, IPv4 header checksum, UDP checksum, payload length, magic /
 * version / type) and answers the neighbour protocols itself: ARP requests
 * for our IPv4 address, IPv6 neighbour solicitations for our IPv6 address,
 * ICMP and ICMPv6 echo requests.  Replies are written into the received
 * mbuf, so the fast path never allocates: the caller transmits the same
 * mbuf.  Center lookup and tag verification happen later, on the worker
 * that owns the donation (they need the key table and cost a SipHash).
 *
 * amil_net_reply_udp() turns a donation frame whose payload the worker has
 * overwritten with an ACK into the reply: MACs, IPs and ports swapped,
 * lengths unchanged, checksums recomputed or offloaded.
 *
 * Thread-safety: pure functions of the frame and a read-only config; call
 * from any lcore.  No allocation, no locks, no syscalls, no logging.
 */
#ifndef AMIL_NET_H
#define AMIL_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What one appliance port answers to.  Read-only after start-up. */
struct amil_net_cfg {
	struct rte_ether_addr mac;     /* the port's MAC */
	bool has_ip4;
	rte_be32_t ip4;                /* our IPv4 address */
	bool has_ip6;
	uint8_t ip6[16];               /* our IPv6 address */
	rte_be16_t udp_port;           /* AMIL/1 port, network order */
	bool tx_ip_csum_offload;       /* port computes IPv4 header checksum */
	bool tx_udp_csum_offload;      /* port computes UDP checksum */
};

enum amil_net_verdict {
	AMIL_NET_DROP = 0,             /* free it; *reason says why */
	AMIL_NET_DONATION = 1,         /* AMIL/1 DONATION header ok: to a worker */
	AMIL_NET_REPLY = 2,            /* rewritten in place: transmit it */
};

/* Reasons a frame is dropped without reply.  Order is the JSON order. */
enum amil_drop_reason {
	AMIL_DROP_NOT_OURS = 0,        /* other MAC/IP/port, or not IPv4/IPv6/ARP */
	AMIL_DROP_UNHANDLED,           /* to us, but a protocol/type we do not answer */
	AMIL_DROP_MALFORMED,           /* truncated or inconsistent headers */
	AMIL_DROP_BAD_IP_CSUM,
	AMIL_DROP_BAD_UDP_CSUM,
	AMIL_DROP_BAD_LEN,             /* UDP payload not exactly 64 bytes */
	AMIL_DROP_BAD_HEADER,          /* bad magic, version or type */
	AMIL_DROP_UNKNOWN_CENTER,      /* (worker) center_id not in centers file */
	AMIL_DROP_BAD_TAG,             /* (worker) SipHash tag mismatch */
	AMIL_DROP_MAX
};

/** snake_case name of a drop reason ("bad_udp_csum"); never NULL. */
const char *amil_net_drop_name(unsigned reason);

/**
 * Classify one frame (data starting at the Ethernet header, single segment).
 *
 * On AMIL_NET_DONATION: m->l2_len and m->l3_len are set, m->packet_type
 * says IPv4 or IPv6 (RTE_PTYPE_L3_IPV4 / RTE_PTYPE_L3_IPV6), and
 * *payload_off is the offset of the 64-byte payload from the frame start;
 * m->hash.usr holds the same offset (first cache line: the worker and
 * amil_net_reply_udp() use it instead of l2_len/l3_len).
 * On AMIL_NET_REPLY: the frame is now the answer, ready to transmit; its
 * data_len/pkt_len may have changed (trailing padding is dropped, and a
 * neighbour advertisement is 86 bytes, longer than a DAD solicitation: it
 * is built only when the buffer has room, else the NS is UNHANDLED).
 * On AMIL_NET_DROP: *reason is an enum amil_drop_reason; frame unchanged.
 *
 * Honours RX checksum flags in m->ol_flags when the port set them (GOOD
 * skips the software check, BAD drops); otherwise verifies in software.
 * An IPv4 UDP checksum of 0 means "none" (RFC 768) and is accepted; over
 * IPv6 it is a bad checksum (RFC 8200).
 */
enum amil_net_verdict amil_net_classify(const struct amil_net_cfg *cfg, struct rte_mbuf *m,
					uint16_t *payload_off, uint8_t *reason);

/**
 * Make a classified DONATION frame into its reply after the caller wrote
 * the 64-byte ACK at @payload_off: swap MACs, IP addresses (our address
 * becomes the source) and UDP ports, set TTL / hop limit to 64, and
 * recompute the IPv4 header and UDP checksums in software or request the
 * offload per @cfg.  Uses m->hash.usr and m->packet_type as set by
 * amil_net_classify() (and m->l2_len/l3_len for the offload).  Bytes after the UDP datagram are trimmed.  Only the
 * TX offload bits of m->ol_flags are replaced (cleared when @cfg asks for
 * no offload); RX and buffer flags are kept.
 */
void amil_net_reply_udp(const struct amil_net_cfg *cfg, struct rte_mbuf *m);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_NET_H */
