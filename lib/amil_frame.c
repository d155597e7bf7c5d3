/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Ethernet/IP/UDP framing without DPDK.  Plain byte offsets instead of the
 * system's netinet headers' structs: those differ between libcs in bitfield
 * layout and naming, and every access here goes through memcpy-based
 * loads and stores, so frames may sit at any alignment.
 */
#include "amil_bytes.h"
#include "amil_frame.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define ETH_HLEN        14
#define ETH_TYPE_IPV4   0x0800
#define ETH_TYPE_IPV6   0x86DD
#define IP4_HLEN        20
#define IP6_HLEN        40
#define UDP_HLEN        8
#define IPPROTO_UDP_    17
#define TTL_DEFAULT     64
#define IP4_FLAG_DF     0x4000
#define IP4_FRAG_MASK   0x3FFF   /* MF flag + fragment offset */

uint32_t
amil_frame_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t acc = sum;

	/* 64-bit accumulator: cannot overflow for any length a size_t holds
	 * below 2^48 bytes, so fold only once at the end. */
	while (len >= 2) {
		acc += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len == 1)
		acc += (uint32_t)p[0] << 8;
	while (acc > 0xFFFF)
		acc = (acc & 0xFFFF) + (acc >> 16);
	return (uint32_t)acc;
}

uint16_t
amil_frame_csum_fold(uint32_t sum)
{
	while (sum > 0xFFFF)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One's-complement sum of the UDP pseudo header (RFC 768 / RFC 8200 8.1). */
static uint32_t
pseudo_sum(bool ipv6, const uint8_t *src, const uint8_t *dst, uint16_t udp_len)
{
	uint8_t tail[4] = { 0, IPPROTO_UDP_, (uint8_t)(udp_len >> 8), (uint8_t)udp_len };
	size_t alen = ipv6 ? 16 : 4;
	uint32_t sum;

	sum = amil_frame_csum_add(0, src, alen);
	sum = amil_frame_csum_add(sum, dst, alen);
	if (ipv6) {
		/* 32-bit length and 24 zero bits + next header: same sum. */
		uint8_t t6[8] = { 0, 0, (uint8_t)(udp_len >> 8), (uint8_t)udp_len,
				  0, 0, 0, IPPROTO_UDP_ };

		return amil_frame_csum_add(sum, t6, sizeof(t6));
	}
	return amil_frame_csum_add(sum, tail, sizeof(tail));
}

int
amil_frame_build_udp(uint8_t *out, size_t outlen, const struct amil_frame_addr *a,
		     const void *payload, size_t payload_len)
{
	size_t iphl = a->ipv6 ? IP6_HLEN : IP4_HLEN;
	size_t need = ETH_HLEN + iphl + UDP_HLEN + payload_len;
	size_t udp_len = UDP_HLEN + payload_len;
	uint8_t *ip = out + ETH_HLEN;
	uint8_t *udp = ip + iphl;
	const uint8_t *src, *dst;
	uint32_t sum;
	uint16_t csum;

	/* IPv4 total length and the UDP length are 16-bit fields. */
	if (payload_len > 0xFFFF || udp_len > 0xFFFF || (!a->ipv6 && IP4_HLEN + udp_len > 0xFFFF))
		return -EMSGSIZE;
	if (outlen < need || need > (size_t)INT32_MAX)
		return -ENOSPC;

	memcpy(out, a->dst_mac, AMIL_ETH_ALEN);
	memcpy(out + AMIL_ETH_ALEN, a->src_mac, AMIL_ETH_ALEN);
	st16(out + 12, a->ipv6 ? ETH_TYPE_IPV6 : ETH_TYPE_IPV4);

	if (a->ipv6) {
		ip[0] = 0x60;                     /* version 6, traffic class 0 */
		ip[1] = ip[2] = ip[3] = 0;        /* flow label 0 */
		st16(ip + 4, (uint16_t)udp_len);  /* payload length */
		ip[6] = IPPROTO_UDP_;
		ip[7] = TTL_DEFAULT;
		memcpy(ip + 8, a->src_ip6, 16);
		memcpy(ip + 24, a->dst_ip6, 16);
		src = a->src_ip6;
		dst = a->dst_ip6;
	} else {
		ip[0] = 0x45;                     /* version 4, IHL 5 */
		ip[1] = 0;
		st16(ip + 2, (uint16_t)(IP4_HLEN + udp_len));
		st16(ip + 4, 0);                  /* identification: DF, never fragmented */
		st16(ip + 6, IP4_FLAG_DF);
		ip[8] = TTL_DEFAULT;
		ip[9] = IPPROTO_UDP_;
		st16(ip + 10, 0);
		memcpy(ip + 12, &a->src_ip4, 4);  /* already network order */
		memcpy(ip + 16, &a->dst_ip4, 4);
		st16(ip + 10, amil_frame_csum_fold(amil_frame_csum_add(0, ip, IP4_HLEN)));
		src = ip + 12;
		dst = ip + 16;
	}

	st16(udp + 0, a->src_port);
	st16(udp + 2, a->dst_port);
	st16(udp + 4, (uint16_t)udp_len);
	st16(udp + 6, 0);
	if (payload_len > 0)
		memcpy(udp + UDP_HLEN, payload, payload_len);
	sum = pseudo_sum(a->ipv6, src, dst, (uint16_t)udp_len);
	sum = amil_frame_csum_add(sum, udp, udp_len);
	csum = amil_frame_csum_fold(sum);
	/* 0 on the wire means "no checksum" (IPv4) or is invalid (IPv6);
	 * RFC 768 sends a computed 0 as its one's-complement twin 0xFFFF. */
	st16(udp + 6, csum == 0 ? 0xFFFF : csum);
	return (int)need;
}

int
amil_frame_parse_udp(const uint8_t *frame, size_t len, bool check_csum, struct amil_frame_addr *a,
		     const uint8_t **payload, size_t *payload_len)
{
	const uint8_t *ip, *udp;
	size_t avail, iphl, ip_payload;
	uint16_t ethertype, udp_len, udp_csum;

	if (len < ETH_HLEN)
		return -EBADMSG;
	ethertype = ld16(frame + 12);
	if (ethertype != ETH_TYPE_IPV4 && ethertype != ETH_TYPE_IPV6)
		return -EPROTONOSUPPORT;
	memset(a, 0, sizeof(*a));
	memcpy(a->dst_mac, frame, AMIL_ETH_ALEN);
	memcpy(a->src_mac, frame + AMIL_ETH_ALEN, AMIL_ETH_ALEN);
	ip = frame + ETH_HLEN;
	avail = len - ETH_HLEN;

	if (ethertype == ETH_TYPE_IPV4) {
		size_t tot_len;

		if (avail < IP4_HLEN || ip[0] >> 4 != 4)
			return -EBADMSG;
		iphl = (size_t)(ip[0] & 0x0F) * 4;
		tot_len = ld16(ip + 2);
		if (iphl < IP4_HLEN || iphl > avail || tot_len < iphl || tot_len > avail)
			return -EBADMSG;
		if (check_csum && amil_frame_csum_fold(amil_frame_csum_add(0, ip, iphl)) != 0)
			return -EILSEQ;
		/* A fragment's UDP header may be elsewhere or absent. */
		if ((ld16(ip + 6) & IP4_FRAG_MASK) != 0 || ip[9] != IPPROTO_UDP_)
			return -EPROTONOSUPPORT;
		ip_payload = tot_len - iphl;
		memcpy(&a->src_ip4, ip + 12, 4);
		memcpy(&a->dst_ip4, ip + 16, 4);
	} else {
		if (avail < IP6_HLEN || ip[0] >> 4 != 6)
			return -EBADMSG;
		iphl = IP6_HLEN;
		ip_payload = ld16(ip + 4);
		if (ip_payload > avail - IP6_HLEN)
			return -EBADMSG;
		if (ip[6] != IPPROTO_UDP_)        /* extension headers: not ours */
			return -EPROTONOSUPPORT;
		a->ipv6 = true;
		memcpy(a->src_ip6, ip + 8, 16);
		memcpy(a->dst_ip6, ip + 24, 16);
	}

	udp = ip + iphl;
	if (ip_payload < UDP_HLEN)
		return -EBADMSG;
	udp_len = ld16(udp + 4);
	if (udp_len != ip_payload)
		return -EBADMSG;
	udp_csum = ld16(udp + 6);
	if (check_csum && (udp_csum != 0 || a->ipv6)) {
		uint32_t sum = pseudo_sum(a->ipv6, a->ipv6 ? ip + 8 : ip + 12,
					  a->ipv6 ? ip + 24 : ip + 16, udp_len);

		if (udp_csum == 0 || amil_frame_csum_fold(amil_frame_csum_add(sum, udp, udp_len)) != 0)
			return -EILSEQ;
	}
	a->src_port = ld16(udp);
	a->dst_port = ld16(udp + 2);
	*payload = udp + UDP_HLEN;
	*payload_len = (size_t)udp_len - UDP_HLEN;
	return 0;
}
