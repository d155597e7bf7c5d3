// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Frames and pcap files for the data-plane integration tests.
//
// AMIL/1 donations are built only through lib/ (amil_wire.h encodes and
// signs, amil_frame.h wraps Ethernet/IP/UDP): the tests must not carry a
// second codec.  The neighbour protocols (ARP, ICMP echo, ICMPv6 echo and
// neighbour solicitation) have no builder in lib/, so they are written here
// byte by byte, with lib's RFC 1071 checksum.
#ifndef AMIL_TESTS_INTEGRATION_FRAMES_H
#define AMIL_TESTS_INTEGRATION_FRAMES_H

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "amil_frame.h"
#include "amil_wire.h"

namespace itest {

using Bytes = std::vector<uint8_t>;

constexpr size_t kEthHlen = 14;
constexpr size_t kIp4Hlen = 20;
constexpr size_t kIp6Hlen = 40;
constexpr size_t kUdpHlen = 8;
constexpr uint16_t kEtherIp4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIp6 = 0x86dd;

inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

inline uint32_t ip4(const char *s)
{
	uint32_t a = 0;

	inet_pton(AF_INET, s, &a);
	return a;  // network byte order
}

inline void ip6(const char *s, uint8_t out[16])
{
	inet_pton(AF_INET6, s, out);
}

inline void eth_header(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
}

// True when the 16-bit one's complement sum of @len bytes (which include a
// checksum field) verifies.
inline bool csum_ok(const void *p, size_t len, uint32_t seed = 0)
{
	return amil_frame_csum_fold(amil_frame_csum_add(seed, p, len)) == 0;
}

// Sum of the IPv6 pseudo-header (RFC 8200 8.1) for chaining.
inline uint32_t ip6_pseudo(const uint8_t src[16], const uint8_t dst[16], uint32_t len, uint8_t nh)
{
	uint8_t tail[8] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			   (uint8_t)len, 0, 0, 0, nh};
	uint32_t s = amil_frame_csum_add(0, src, 16);

	s = amil_frame_csum_add(s, dst, 16);
	return amil_frame_csum_add(s, tail, sizeof(tail));
}

// ARP request "who has @tip, tell @sip" from @sha, padded to 60 bytes.
inline Bytes arp_request(const uint8_t sha[6], uint32_t sip_be, uint32_t tip_be)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	Bytes f(60, 0);
	uint8_t *a = f.data() + kEthHlen;

	eth_header(f.data(), bcast, sha, kEtherArp);
	put16(a, 1);          // Ethernet
	put16(a + 2, kEtherIp4);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);      // request
	memcpy(a + 8, sha, 6);
	memcpy(a + 14, &sip_be, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &tip_be, 4);
	return f;
}

// ICMP echo request, IPv4, with @data as payload.
inline Bytes icmp4_echo(const uint8_t src_mac[6], const uint8_t dst_mac[6], uint32_t src_be,
			uint32_t dst_be, uint16_t id, uint16_t seq, const Bytes &data)
{
	size_t icmp_len = 8 + data.size();
	Bytes f(kEthHlen + kIp4Hlen + icmp_len, 0);
	uint8_t *ip = f.data() + kEthHlen, *icmp = ip + kIp4Hlen;

	eth_header(f.data(), dst_mac, src_mac, kEtherIp4);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(kIp4Hlen + icmp_len));
	put16(ip + 6, 0x4000);  // DF
	ip[8] = 64;
	ip[9] = 1;              // ICMP
	memcpy(ip + 12, &src_be, 4);
	memcpy(ip + 16, &dst_be, 4);
	put16(ip + 10, amil_frame_csum_fold(amil_frame_csum_add(0, ip, kIp4Hlen)));
	icmp[0] = 8;            // echo request
	put16(icmp + 4, id);
	put16(icmp + 6, seq);
	memcpy(icmp + 8, data.data(), data.size());
	put16(icmp + 2, amil_frame_csum_fold(amil_frame_csum_add(0, icmp, icmp_len)));
	return f;
}

// An ICMPv6 message @body (checksum bytes 2..3 ignored and computed here).
inline Bytes icmp6_frame(const uint8_t src_mac[6], const uint8_t dst_mac[6],
			 const uint8_t src[16], const uint8_t dst[16], uint8_t hop_limit, Bytes body)
{
	Bytes f(kEthHlen + kIp6Hlen + body.size(), 0);
	uint8_t *ip = f.data() + kEthHlen;

	eth_header(f.data(), dst_mac, src_mac, kEtherIp6);
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)body.size());
	ip[6] = 58;             // ICMPv6
	ip[7] = hop_limit;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	body[2] = body[3] = 0;
	put16(body.data() + 2,
	      amil_frame_csum_fold(amil_frame_csum_add(ip6_pseudo(src, dst, (uint32_t)body.size(), 58),
						       body.data(), body.size())));
	memcpy(ip + kIp6Hlen, body.data(), body.size());
	return f;
}

inline Bytes icmp6_echo(const uint8_t src_mac[6], const uint8_t dst_mac[6], const uint8_t src[16],
			const uint8_t dst[16], uint16_t id, uint16_t seq, const Bytes &data)
{
	Bytes body(8, 0);

	body[0] = 128;          // echo request
	put16(body.data() + 4, id);
	put16(body.data() + 6, seq);
	body.insert(body.end(), data.begin(), data.end());
	return icmp6_frame(src_mac, dst_mac, src, dst, 64, body);
}

// Neighbour solicitation for @target, sent to its solicited-node group
// (ff02::1:ffXX:XXXX, MAC 33:33:ff:XX:XX:XX), with a source link-layer
// address option.
inline Bytes icmp6_ns(const uint8_t src_mac[6], const uint8_t src[16], const uint8_t target[16])
{
	uint8_t group[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
	uint8_t mac[6] = {0x33, 0x33, 0xff, target[13], target[14], target[15]};
	Bytes body(32, 0);

	memcpy(group + 13, target + 13, 3);
	body[0] = 135;          // neighbour solicitation
	memcpy(body.data() + 8, target, 16);
	body[24] = 1;           // source link-layer address
	body[25] = 1;           // 8 bytes
	memcpy(body.data() + 26, src_mac, 6);
	return icmp6_frame(src_mac, mac, src, group, 255, body);
}

// Ethernet/IP/UDP frame around @payload, through lib/amil_frame.
inline Bytes udp_frame(const amil_frame_addr &a, const void *payload, size_t len)
{
	Bytes f(AMIL_FRAME_MAX);
	int n = amil_frame_build_udp(f.data(), f.size(), &a, payload, len);

	f.resize(n > 0 ? (size_t)n : 0);
	return f;
}

// Offset of the UDP header in a frame built by udp_frame().
inline size_t udp_off(const amil_frame_addr &a)
{
	return kEthHlen + (a.ipv6 ? kIp6Hlen : kIp4Hlen);
}

// Write @frames as an Ethernet pcap; "" on success, else the problem.
inline std::string write_pcap(const std::string &path, const std::vector<Bytes> &frames)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d;
	std::string err;

	if (p == nullptr)
		return "pcap_open_dead failed";
	d = pcap_dump_open(p, path.c_str());
	if (d == nullptr) {
		err = std::string("pcap_dump_open: ") + pcap_geterr(p);
		pcap_close(p);
		return err;
	}
	for (size_t i = 0; i < frames.size(); i++) {
		struct pcap_pkthdr h;

		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = 1700000000;
		h.ts.tv_usec = (suseconds_t)i;
		h.caplen = h.len = (bpf_u_int32)frames[i].size();
		pcap_dump((u_char *)d, &h, frames[i].data());
	}
	if (pcap_dump_flush(d) != 0)
		err = "pcap_dump_flush failed";
	pcap_dump_close(d);
	pcap_close(p);
	return err;
}

// Read every frame of a pcap; "" on success, else the problem.  A frame
// captured shorter than it was sent is an error: the writer is ours.
inline std::string read_pcap(const std::string &path, std::vector<Bytes> *frames)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path.c_str(), errbuf);
	struct pcap_pkthdr *h;
	const u_char *data;
	std::string err;
	int rc = PCAP_ERROR_BREAK;

	if (p == nullptr)
		return std::string("pcap_open_offline: ") + errbuf;
	if (pcap_datalink(p) != DLT_EN10MB)
		err = "link type is not Ethernet";
	while (err.empty() && (rc = pcap_next_ex(p, &h, &data)) == 1) {
		if (h->caplen != h->len)
			err = "frame " + std::to_string(frames->size()) + " truncated in capture";
		frames->emplace_back(data, data + h->caplen);
	}
	if (err.empty() && rc != PCAP_ERROR_BREAK)
		err = std::string("pcap_next_ex: ") + pcap_geterr(p);
	pcap_close(p);
	return err;
}

}  // namespace itest

#endif
