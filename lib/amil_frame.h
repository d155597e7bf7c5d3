/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Ethernet + IPv4/IPv6 + UDP framing in plain C, without DPDK, for the tools
 * and tests that write or read whole frames (pcap writers, the generator's
 * templates, frame checkers).  The data plane uses DPDK's own headers on
 * mbufs; both agree on the bytes, which the integration tests check.
 */
#ifndef AMIL_FRAME_H
#define AMIL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_ETH_ALEN 6
#define AMIL_FRAME_MAX 1514

/* Addresses of one UDP flow.  IPv4 addresses in network byte order. */
struct amil_frame_addr {
	uint8_t src_mac[AMIL_ETH_ALEN];
	uint8_t dst_mac[AMIL_ETH_ALEN];
	bool ipv6;
	uint32_t src_ip4;               /* network byte order */
	uint32_t dst_ip4;               /* network byte order */
	uint8_t src_ip6[16];
	uint8_t dst_ip6[16];
	uint16_t src_port;              /* host byte order */
	uint16_t dst_port;              /* host byte order */
};

/**
 * Build an Ethernet/IP/UDP frame carrying @payload into @out with correct
 * IPv4 header checksum and UDP checksum (IPv4 TTL/IPv6 hop limit 64).
 * IPv4 headers are 20 bytes (no options), identification 0, DF set; IPv6
 * has no extension headers, traffic class and flow label 0.
 * @return frame length, or -ENOSPC when @outlen is too small, or -EMSGSIZE
 *   when @payload_len does not fit a UDP datagram's 16-bit length fields.
 */
int amil_frame_build_udp(uint8_t *out, size_t outlen, const struct amil_frame_addr *a,
			 const void *payload, size_t payload_len);

/**
 * Parse an Ethernet/IPv4-or-IPv6/UDP frame.  Fills @a (as seen in the frame)
 * and points @payload/@payload_len at the UDP payload.
 * IPv4 headers with options (IHL > 5) are accepted; IPv4 fragments, IPv6
 * extension headers and VLAN tags are not (-EPROTONOSUPPORT).  Bytes after
 * the IP datagram (Ethernet padding) are ignored.  The UDP length must equal
 * the IP payload length.
 * @param check_csum  when true, verify IPv4 header and UDP checksums (an
 *   IPv4 UDP checksum of 0 means "none" and passes; over IPv6 it fails).
 * @return 0; -EPROTONOSUPPORT when not IP/UDP; -EBADMSG on truncation or
 *   length mismatch (or an IP version field not matching the EtherType);
 *   -EILSEQ on a bad checksum.
 */
int amil_frame_parse_udp(const uint8_t *frame, size_t len, bool check_csum,
			 struct amil_frame_addr *a, const uint8_t **payload,
			 size_t *payload_len);

/**
 * Internet checksum (RFC 1071) in two steps.
 *
 * amil_frame_csum_add() adds @len bytes, as big-endian 16-bit words, to the
 * running one's-complement sum @sum (start from 0) and returns it partly
 * folded.  An odd trailing byte is padded with zero, so only the last piece
 * of a chained sum may have an odd length.
 *
 * amil_frame_csum_fold() folds @sum to 16 bits and complements it: the
 * checksum field value in host byte order (store it with htons()).  Over
 * data that already contains a correct checksum the result is 0.
 */
uint32_t amil_frame_csum_add(uint32_t sum, const void *buf, size_t len);
uint16_t amil_frame_csum_fold(uint32_t sum);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_FRAME_H */
