/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for lib/amil_frame.c: Ethernet/IPv4/IPv6/UDP build and parse. */
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "amil_frame.h"

namespace {

amil_frame_addr
addr4()
{
	amil_frame_addr a;

	memset(&a, 0, sizeof(a));
	const uint8_t smac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
	const uint8_t dmac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
	memcpy(a.src_mac, smac, 6);
	memcpy(a.dst_mac, dmac, 6);
	a.ipv6 = false;
	a.src_ip4 = htonl(0xC0000201);   /* 192.0.2.1 */
	a.dst_ip4 = htonl(0xC6336402);   /* 198.51.100.2 */
	a.src_port = 40000;
	a.dst_port = 7100;
	return a;
}

amil_frame_addr
addr6()
{
	amil_frame_addr a = addr4();

	a.ipv6 = true;
	a.src_ip4 = a.dst_ip4 = 0;
	inet_pton(AF_INET6, "2001:db8::1", a.src_ip6);
	inet_pton(AF_INET6, "2001:db8:ffff::2", a.dst_ip6);
	return a;
}

std::vector<uint8_t>
payload64()
{
	std::vector<uint8_t> p(64);

	for (size_t i = 0; i < p.size(); i++)
		p[i] = (uint8_t)(i * 7 + 1);
	return p;
}

std::vector<uint8_t>
build(const amil_frame_addr &a, const std::vector<uint8_t> &pl)
{
	std::vector<uint8_t> f(AMIL_FRAME_MAX);
	int n = amil_frame_build_udp(f.data(), f.size(), &a, pl.data(), pl.size());

	EXPECT_GT(n, 0);
	f.resize(n > 0 ? (size_t)n : 0);
	return f;
}

/* Independent RFC 1071 sum, written differently from the library's on
 * purpose (byte pairs via ntohs on a copied word). */
uint16_t
ref_csum(const std::vector<uint8_t> &data)
{
	uint64_t sum = 0;

	for (size_t i = 0; i + 1 < data.size(); i += 2) {
		uint16_t w;

		memcpy(&w, &data[i], 2);
		sum += ntohs(w);
	}
	if (data.size() % 2)
		sum += (uint32_t)data.back() << 8;
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)~sum;
}

int
parse(const std::vector<uint8_t> &f, bool check, amil_frame_addr *out, const uint8_t **pl,
      size_t *pl_len)
{
	return amil_frame_parse_udp(f.data(), f.size(), check, out, pl, pl_len);
}

void
expect_addr_eq(const amil_frame_addr &a, const amil_frame_addr &b)
{
	EXPECT_EQ(0, memcmp(a.src_mac, b.src_mac, 6));
	EXPECT_EQ(0, memcmp(a.dst_mac, b.dst_mac, 6));
	EXPECT_EQ(a.ipv6, b.ipv6);
	if (a.ipv6) {
		EXPECT_EQ(0, memcmp(a.src_ip6, b.src_ip6, 16));
		EXPECT_EQ(0, memcmp(a.dst_ip6, b.dst_ip6, 16));
	} else {
		EXPECT_EQ(a.src_ip4, b.src_ip4);
		EXPECT_EQ(a.dst_ip4, b.dst_ip4);
	}
	EXPECT_EQ(a.src_port, b.src_port);
	EXPECT_EQ(a.dst_port, b.dst_port);
}

} // namespace

TEST(FrameCsum, KnownIpv4HeaderVector)
{
	/* The classic worked example (RFC 1071 style; also the Wikipedia
	 * "IPv4 header checksum" example): 192.168.0.1 -> 192.168.0.199,
	 * checksum 0xB861. */
	uint8_t hdr[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			   0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

	EXPECT_EQ(0xB861, amil_frame_csum_fold(amil_frame_csum_add(0, hdr, sizeof(hdr))));
	hdr[10] = 0xB8;
	hdr[11] = 0x61;
	EXPECT_EQ(0, amil_frame_csum_fold(amil_frame_csum_add(0, hdr, sizeof(hdr))));
}

TEST(FrameCsum, ChainingAndOddLength)
{
	const uint8_t data[] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde};
	uint32_t whole = amil_frame_csum_add(0, data, sizeof(data));
	uint32_t chained = amil_frame_csum_add(amil_frame_csum_add(0, data, 4), data + 4, 3);

	EXPECT_EQ(amil_frame_csum_fold(whole), amil_frame_csum_fold(chained));
	EXPECT_EQ(ref_csum(std::vector<uint8_t>(data, data + sizeof(data))),
		  amil_frame_csum_fold(whole));
	EXPECT_EQ(0xFFFF, amil_frame_csum_fold(amil_frame_csum_add(0, nullptr, 0)));
	/* Carries: many 0xFFFF words must fold without overflow. */
	std::vector<uint8_t> ff(200000, 0xFF);
	EXPECT_EQ(0, ref_csum(ff));
	EXPECT_EQ(0, amil_frame_csum_fold(amil_frame_csum_add(0, ff.data(), ff.size())));
	std::vector<uint8_t> mixed(200001);
	for (size_t i = 0; i < mixed.size(); i++)
		mixed[i] = (uint8_t)(i * 131 + 7);
	EXPECT_EQ(ref_csum(mixed),
		  amil_frame_csum_fold(amil_frame_csum_add(0, mixed.data(), mixed.size())));
}

TEST(Frame, Ipv4RoundTripAndHeaderBytes)
{
	amil_frame_addr a = addr4(), got;
	std::vector<uint8_t> pl = payload64();
	std::vector<uint8_t> f = build(a, pl);
	const uint8_t *p = nullptr;
	size_t plen = 0;

	ASSERT_EQ(14u + 20 + 8 + 64, f.size());
	/* Ethernet: dst, src, type. */
	EXPECT_EQ(0, memcmp(&f[0], a.dst_mac, 6));
	EXPECT_EQ(0, memcmp(&f[6], a.src_mac, 6));
	EXPECT_EQ(0x08, f[12]);
	EXPECT_EQ(0x00, f[13]);
	/* IPv4 header. */
	EXPECT_EQ(0x45, f[14]);
	EXPECT_EQ(0, f[15]);
	EXPECT_EQ(0, f[16]);
	EXPECT_EQ(20 + 8 + 64, f[17]);
	EXPECT_EQ(0x40, f[20]);     /* DF */
	EXPECT_EQ(0x00, f[21]);
	EXPECT_EQ(64, f[22]);       /* TTL */
	EXPECT_EQ(17, f[23]);       /* UDP */
	EXPECT_EQ(0, memcmp(&f[26], &a.src_ip4, 4));
	EXPECT_EQ(0, memcmp(&f[30], &a.dst_ip4, 4));
	std::vector<uint8_t> iph(f.begin() + 14, f.begin() + 34);
	EXPECT_EQ(0, ref_csum(iph));
	/* UDP header: ports, length, checksum verified independently. */
	EXPECT_EQ(40000, f[34] << 8 | f[35]);
	EXPECT_EQ(7100, f[36] << 8 | f[37]);
	EXPECT_EQ(72, f[38] << 8 | f[39]);
	std::vector<uint8_t> pseudo(f.begin() + 26, f.begin() + 34);   /* src, dst */
	pseudo.insert(pseudo.end(), {0, 17, 0, 72});
	pseudo.insert(pseudo.end(), f.begin() + 34, f.end());
	EXPECT_EQ(0, ref_csum(pseudo));
	EXPECT_NE(0, f[40] | f[41]);
	EXPECT_EQ(0, memcmp(&f[42], pl.data(), 64));

	ASSERT_EQ(0, parse(f, true, &got, &p, &plen));
	expect_addr_eq(a, got);
	ASSERT_EQ(64u, plen);
	EXPECT_EQ(&f[42], p);
	EXPECT_EQ(0, memcmp(p, pl.data(), 64));
}

TEST(Frame, Ipv6RoundTripAndHeaderBytes)
{
	amil_frame_addr a = addr6(), got;
	std::vector<uint8_t> pl = payload64();
	std::vector<uint8_t> f = build(a, pl);
	const uint8_t *p = nullptr;
	size_t plen = 0;

	ASSERT_EQ(14u + 40 + 8 + 64, f.size());
	EXPECT_EQ(0x86, f[12]);
	EXPECT_EQ(0xDD, f[13]);
	EXPECT_EQ(0x60, f[14]);
	EXPECT_EQ(0, f[15] | f[16] | f[17]);
	EXPECT_EQ(72, f[18] << 8 | f[19]);   /* payload length */
	EXPECT_EQ(17, f[20]);                /* next header UDP */
	EXPECT_EQ(64, f[21]);                /* hop limit */
	EXPECT_EQ(0, memcmp(&f[22], a.src_ip6, 16));
	EXPECT_EQ(0, memcmp(&f[38], a.dst_ip6, 16));
	std::vector<uint8_t> pseudo(f.begin() + 22, f.begin() + 54);
	pseudo.insert(pseudo.end(), {0, 0, 0, 72, 0, 0, 0, 17});
	pseudo.insert(pseudo.end(), f.begin() + 54, f.end());
	EXPECT_EQ(0, ref_csum(pseudo));

	ASSERT_EQ(0, parse(f, true, &got, &p, &plen));
	expect_addr_eq(a, got);
	ASSERT_EQ(64u, plen);
	EXPECT_EQ(0, memcmp(p, pl.data(), 64));
}

TEST(Frame, EmptyAndOddPayloads)
{
	for (bool v6 : {false, true}) {
		for (size_t n : {0u, 1u, 63u, 65u, 1000u}) {
			amil_frame_addr a = v6 ? addr6() : addr4(), got;
			std::vector<uint8_t> pl(n, 0xA5);
			std::vector<uint8_t> f = build(a, pl);
			const uint8_t *p;
			size_t plen;

			ASSERT_EQ(0, parse(f, true, &got, &p, &plen)) << n << " v6=" << v6;
			EXPECT_EQ(n, plen);
		}
	}
}

TEST(Frame, NoSpace)
{
	amil_frame_addr a4 = addr4(), a6 = addr6();
	std::vector<uint8_t> pl = payload64();
	uint8_t out[AMIL_FRAME_MAX];

	EXPECT_EQ(-ENOSPC, amil_frame_build_udp(out, 14 + 20 + 8 + 63, &a4, pl.data(), 64));
	EXPECT_EQ(106, amil_frame_build_udp(out, 14 + 20 + 8 + 64, &a4, pl.data(), 64));
	EXPECT_EQ(-ENOSPC, amil_frame_build_udp(out, 14 + 40 + 8 + 63, &a6, pl.data(), 64));
	EXPECT_EQ(126, amil_frame_build_udp(out, 14 + 40 + 8 + 64, &a6, pl.data(), 64));
	EXPECT_EQ(-ENOSPC, amil_frame_build_udp(out, 0, &a4, pl.data(), 64));
	EXPECT_EQ(-EMSGSIZE, amil_frame_build_udp(out, sizeof(out), &a4, pl.data(), 65536));
}

TEST(Frame, ChecksumDetectsFlippedBytes)
{
	for (bool v6 : {false, true}) {
		amil_frame_addr a = v6 ? addr6() : addr4(), got;
		std::vector<uint8_t> f = build(a, payload64());
		size_t ip_end = v6 ? 54 : 34;
		const uint8_t *p;
		size_t plen;

		/* Every byte from the IP source address to the end of the UDP
		 * payload is covered by a checksum (the IPv6 addresses only by
		 * the UDP one). */
		for (size_t i = v6 ? 22 : 14 + 12; i < f.size(); i++) {
			std::vector<uint8_t> bad = f;

			bad[i] ^= 0x01;
			if (i >= ip_end + 4 && i < ip_end + 6)
				continue;   /* UDP length: a length mismatch, tested below */
			EXPECT_EQ(-EILSEQ, parse(bad, true, &got, &p, &plen))
				<< "v6=" << v6 << " byte " << i;
			/* Without checking, the same frame parses. */
			EXPECT_EQ(0, parse(bad, false, &got, &p, &plen)) << "v6=" << v6 << " byte " << i;
		}
	}
}

TEST(Frame, Ipv4HeaderChecksumByteFlip)
{
	amil_frame_addr a = addr4(), got;
	std::vector<uint8_t> f = build(a, payload64());
	const uint8_t *p;
	size_t plen;

	f[24] ^= 0xFF;   /* the IPv4 header checksum itself */
	EXPECT_EQ(-EILSEQ, parse(f, true, &got, &p, &plen));
	f[24] ^= 0xFF;
	f[22] = 63;      /* TTL: only the header checksum covers it */
	EXPECT_EQ(-EILSEQ, parse(f, true, &got, &p, &plen));
	EXPECT_EQ(0, parse(f, false, &got, &p, &plen));
}

TEST(Frame, ZeroUdpChecksum)
{
	const uint8_t *p;
	size_t plen;
	amil_frame_addr got;

	std::vector<uint8_t> f4 = build(addr4(), payload64());
	f4[40] = f4[41] = 0;   /* IPv4: "no checksum" is legal */
	EXPECT_EQ(0, parse(f4, true, &got, &p, &plen));

	std::vector<uint8_t> f6 = build(addr6(), payload64());
	f6[60] = f6[61] = 0;   /* IPv6: a zero UDP checksum is invalid */
	EXPECT_EQ(-EILSEQ, parse(f6, true, &got, &p, &plen));
	EXPECT_EQ(0, parse(f6, false, &got, &p, &plen));
}

TEST(Frame, TruncationIsAnError)
{
	for (bool v6 : {false, true}) {
		std::vector<uint8_t> f = build(v6 ? addr6() : addr4(), payload64());

		for (size_t len = 0; len < f.size(); len++) {
			amil_frame_addr got;
			const uint8_t *p;
			size_t plen;

			EXPECT_EQ(-EBADMSG, amil_frame_parse_udp(f.data(), len, true, &got, &p, &plen))
				<< "v6=" << v6 << " len " << len;
			EXPECT_EQ(-EBADMSG, amil_frame_parse_udp(f.data(), len, false, &got, &p, &plen))
				<< "v6=" << v6 << " len " << len;
		}
	}
}

TEST(Frame, EthernetPaddingIgnored)
{
	/* A 2-byte payload gives a 44-byte frame; NICs pad it to 60. */
	std::vector<uint8_t> pl = {0xAB, 0xCD};
	std::vector<uint8_t> f = build(addr4(), pl);
	amil_frame_addr got;
	const uint8_t *p;
	size_t plen;

	f.resize(60, 0);
	ASSERT_EQ(0, parse(f, true, &got, &p, &plen));
	EXPECT_EQ(2u, plen);
	EXPECT_EQ(0xAB, p[0]);
}

TEST(Frame, LengthMismatches)
{
	amil_frame_addr got;
	const uint8_t *p;
	size_t plen;

	std::vector<uint8_t> f = build(addr4(), payload64());
	std::vector<uint8_t> bad = f;
	bad[39] -= 1;    /* UDP length shorter than the IP payload */
	EXPECT_EQ(-EBADMSG, parse(bad, false, &got, &p, &plen));
	bad = f;
	bad[17] += 1;    /* IPv4 total length past the frame */
	EXPECT_EQ(-EBADMSG, parse(bad, false, &got, &p, &plen));
	bad = f;
	bad[14] = 0x44;  /* IHL 4 < 5 */
	EXPECT_EQ(-EBADMSG, parse(bad, false, &got, &p, &plen));
	bad = f;
	bad[14] = 0x65;  /* version 6 under EtherType IPv4 */
	EXPECT_EQ(-EBADMSG, parse(bad, false, &got, &p, &plen));

	std::vector<uint8_t> f6 = build(addr6(), payload64());
	bad = f6;
	bad[19] += 1;    /* IPv6 payload length past the frame */
	EXPECT_EQ(-EBADMSG, parse(bad, false, &got, &p, &plen));
	bad = f6;
	bad[59] += 1;    /* UDP length longer than the IPv6 payload */
	EXPECT_EQ(-EBADMSG, parse(bad, false, &got, &p, &plen));
}

TEST(Frame, NotIpUdp)
{
	amil_frame_addr got;
	const uint8_t *p;
	size_t plen;
	std::vector<uint8_t> f = build(addr4(), payload64());
	std::vector<uint8_t> bad = f;

	bad[12] = 0x08;
	bad[13] = 0x06;  /* ARP */
	EXPECT_EQ(-EPROTONOSUPPORT, parse(bad, true, &got, &p, &plen));
	bad = f;
	bad[12] = 0x81;
	bad[13] = 0x00;  /* VLAN tag */
	EXPECT_EQ(-EPROTONOSUPPORT, parse(bad, true, &got, &p, &plen));
	bad = f;
	bad[23] = 6;     /* TCP */
	EXPECT_EQ(-EPROTONOSUPPORT, parse(bad, false, &got, &p, &plen));
	bad = f;
	bad[20] = 0x20;  /* MF: first fragment */
	EXPECT_EQ(-EPROTONOSUPPORT, parse(bad, false, &got, &p, &plen));
	bad = f;
	bad[21] = 0x01;  /* non-zero fragment offset */
	EXPECT_EQ(-EPROTONOSUPPORT, parse(bad, false, &got, &p, &plen));

	std::vector<uint8_t> f6 = build(addr6(), payload64());
	bad = f6;
	bad[20] = 0;     /* hop-by-hop extension header */
	EXPECT_EQ(-EPROTONOSUPPORT, parse(bad, false, &got, &p, &plen));
	bad[20] = 58;    /* ICMPv6 */
	EXPECT_EQ(-EPROTONOSUPPORT, parse(bad, false, &got, &p, &plen));
}

TEST(Frame, Ipv4OptionsAccepted)
{
	/* Insert 4 bytes of options (NOP x3 + EOL) after a built header and fix
	 * IHL, total length and header checksum; the UDP checksum does not
	 * cover the IP header, so it stays valid. */
	std::vector<uint8_t> f = build(addr4(), payload64());
	amil_frame_addr got;
	const uint8_t *p;
	size_t plen;

	f.insert(f.begin() + 34, {0x01, 0x01, 0x01, 0x00});
	f[14] = 0x46;
	f[17] += 4;
	f[24] = f[25] = 0;
	uint16_t c = amil_frame_csum_fold(amil_frame_csum_add(0, &f[14], 24));
	f[24] = (uint8_t)(c >> 8);
	f[25] = (uint8_t)c;
	ASSERT_EQ(0, parse(f, true, &got, &p, &plen));
	EXPECT_EQ(64u, plen);
	EXPECT_EQ(&f[14 + 24 + 8], p);
	EXPECT_EQ(7100, got.dst_port);
}
