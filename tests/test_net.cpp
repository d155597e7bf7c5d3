// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Unit tests for dataplane/net.c: frame classification, the in-place
// ARP / NA / echo replies, and the UDP reply rewrite.
//
// Frames are built by hand here, and every checksum is checked with an
// RFC 1071 implementation written in this file (not DPDK's), so that a bug
// shared by net.c and the DPDK helpers it calls cannot hide itself.  The
// truncation and random-frame tests put each frame in an external buffer of
// exactly the frame's length, so under AddressSanitizer any read past the
// end of the frame is reported (a mempool mbuf would hide it: its data room
// is one big allocation).

// rte_ipv{4,6}_udptcp_cksum_verify() are experimental in DPDK 22.11.
#define ALLOW_EXPERIMENTAL_API 1

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_udp.h>

#include "amil_wire.h"
#include "eal_env.h"
#include "net.h"

namespace {

using Bytes = std::vector<uint8_t>;

const uint8_t kOurMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const uint8_t kPeerMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};
const uint8_t kOtherMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x42};
const uint8_t kBcastMac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const uint8_t kOurIp4[4] = {10, 0, 0, 1};
const uint8_t kPeerIp4[4] = {10, 0, 0, 2};
const uint8_t kOtherIp4[4] = {10, 0, 0, 3};
const uint8_t kOurIp6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0x01};
const uint8_t kPeerIp6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};
const uint8_t kOtherIp6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03};
// ff02::1:ffab:cd01, the solicited-node group of kOurIp6.
const uint8_t kOurSn6[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0xab, 0xcd, 0x01};
const uint8_t kOurSnMac[6] = {0x33, 0x33, 0xff, 0xab, 0xcd, 0x01};
const uint8_t kAllNodes6[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
const uint8_t kAllNodesMac[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
const uint8_t kZero6[16] = {};
const uint16_t kPort = 7100;
const uint16_t kPeerPort = 40000;

amil_net_cfg make_cfg()
{
	amil_net_cfg c;
	memset(&c, 0, sizeof(c));
	memcpy(c.mac.addr_bytes, kOurMac, 6);
	c.has_ip4 = true;
	memcpy(&c.ip4, kOurIp4, 4);
	c.has_ip6 = true;
	memcpy(c.ip6, kOurIp6, 16);
	c.udp_port = rte_cpu_to_be_16(kPort);
	return c;
}

// ---- byte helpers and a reference checksum ------------------------------

void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
void append(Bytes &b, const void *p, size_t n)
{
	b.insert(b.end(), (const uint8_t *)p, (const uint8_t *)p + n);
}
void append16(Bytes &b, uint16_t v)
{
	b.push_back((uint8_t)(v >> 8));
	b.push_back((uint8_t)v);
}

uint32_t sum16(const uint8_t *p, size_t n, uint32_t s = 0)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}
uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

constexpr size_t kEth = 14;
constexpr size_t kIp6 = 40;

size_t ip4_hlen(const Bytes &f) { return (size_t)(f[kEth] & 0x0f) * 4; }
size_t ip4_total(const Bytes &f) { return get16(&f[kEth + 2]); }

// Pseudo-header sums (RFC 768 / RFC 8200 8.1).
uint32_t pseudo4(const uint8_t *ip, uint32_t l4len)
{
	return sum16(ip + 12, 8) + ip[9] + l4len;
}
uint32_t pseudo6(const uint8_t *ip6, uint32_t l4len, uint8_t nh)
{
	return sum16(ip6 + 8, 32) + (l4len >> 16) + (l4len & 0xffff) + nh;
}

bool ref_ip4_hdr_ok(const uint8_t *ip) { return fold(sum16(ip, (size_t)(ip[0] & 0x0f) * 4)) == 0xffff; }
bool ref_l4_ok4(const uint8_t *ip)
{
	size_t hl = (size_t)(ip[0] & 0x0f) * 4;
	uint32_t l4len = get16(ip + 2) - (uint32_t)hl;
	return fold(pseudo4(ip, l4len) + sum16(ip + hl, l4len)) == 0xffff;
}
bool ref_l4_ok6(const uint8_t *ip6)
{
	uint32_t l4len = get16(ip6 + 4);
	return fold(pseudo6(ip6, l4len, ip6[6]) + sum16(ip6 + kIp6, l4len)) == 0xffff;
}

// Recompute checksums after a test edited a frame.
void fix_ip4(Bytes &f)
{
	uint8_t *ip = &f[kEth];
	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~fold(sum16(ip, ip4_hlen(f))));
}
void fix_l4_4(Bytes &f, size_t csum_off)
{
	uint8_t *ip = &f[kEth];
	size_t hl = ip4_hlen(f);
	uint32_t l4len = (uint32_t)(ip4_total(f) - hl);
	put16(ip + hl + csum_off, 0);
	uint16_t c = (uint16_t)~fold(pseudo4(ip, l4len) + sum16(ip + hl, l4len));
	if (c == 0 && ip[9] == IPPROTO_UDP)
		c = 0xffff;
	put16(ip + hl + csum_off, c);
}
void fix_icmp4(Bytes &f)
{
	uint8_t *ip = &f[kEth];
	size_t hl = ip4_hlen(f);
	size_t n = ip4_total(f) - hl;
	put16(ip + hl + 2, 0);
	put16(ip + hl + 2, (uint16_t)~fold(sum16(ip + hl, n)));
}
void fix_l4_6(Bytes &f, size_t csum_off)
{
	uint8_t *ip6 = &f[kEth];
	uint32_t l4len = get16(ip6 + 4);
	put16(ip6 + kIp6 + csum_off, 0);
	uint16_t c = (uint16_t)~fold(pseudo6(ip6, l4len, ip6[6]) + sum16(ip6 + kIp6, l4len));
	if (c == 0 && ip6[6] == IPPROTO_UDP)
		c = 0xffff;
	put16(ip6 + kIp6 + csum_off, c);
}

// ---- frame builders ------------------------------------------------------

Bytes eth(const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	Bytes b;
	append(b, dst, 6);
	append(b, src, 6);
	append16(b, type);
	return b;
}

Bytes donation_payload(size_t len = AMIL_WIRE_LEN)
{
	Bytes p(len);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(0xa0 + i);
	if (len >= 4) {
		put16(&p[0], AMIL_WIRE_MAGIC);
		p[2] = AMIL_WIRE_VERSION;
		p[3] = AMIL_MSG_DONATION;
	}
	return p;
}

// IPv4 header + L4 bytes (checksum fields filled by the caller's fix_*).
Bytes ip4_frame(uint8_t proto, const Bytes &l4, const uint8_t dst_ip[4] = kOurIp4,
		const uint8_t dst_mac[6] = kOurMac, size_t opt_len = 0)
{
	Bytes f = eth(dst_mac, kPeerMac, RTE_ETHER_TYPE_IPV4);
	size_t hl = 20 + opt_len;
	f.push_back((uint8_t)(0x40 | (hl / 4)));
	f.push_back(0);                                 // TOS
	append16(f, (uint16_t)(hl + l4.size()));        // total length
	append16(f, 0x1234);                            // id
	append16(f, 0x4000);                            // DF
	f.push_back(17);                                // TTL, not 64 on purpose
	f.push_back(proto);
	append16(f, 0);                                 // checksum
	append(f, kPeerIp4, 4);
	append(f, dst_ip, 4);
	for (size_t i = 0; i < opt_len; i++)
		f.push_back(i + 1 == opt_len ? 0 : 1);      // NOPs then EOL
	append(f, l4.data(), l4.size());
	fix_ip4(f);
	return f;
}

Bytes udp_hdr(size_t payload_len, uint16_t dport = kPort)
{
	Bytes u;
	append16(u, kPeerPort);
	append16(u, dport);
	append16(u, (uint16_t)(8 + payload_len));
	append16(u, 0);
	return u;
}

Bytes udp4(const Bytes &payload = donation_payload(), uint16_t dport = kPort,
	   const uint8_t dst_ip[4] = kOurIp4, const uint8_t dst_mac[6] = kOurMac, size_t opt_len = 0)
{
	Bytes l4 = udp_hdr(payload.size(), dport);
	append(l4, payload.data(), payload.size());
	Bytes f = ip4_frame(IPPROTO_UDP, l4, dst_ip, dst_mac, opt_len);
	fix_l4_4(f, 6);
	return f;
}

Bytes ip6_frame(uint8_t nh, const Bytes &l4, const uint8_t src[16], const uint8_t dst[16],
		const uint8_t dst_mac[6], uint8_t hop = 17)
{
	Bytes f = eth(dst_mac, kPeerMac, RTE_ETHER_TYPE_IPV6);
	const uint8_t vtc[4] = {0x60, 0x01, 0x23, 0x45};   // TC/flow label non-zero
	append(f, vtc, 4);
	append16(f, (uint16_t)l4.size());
	f.push_back(nh);
	f.push_back(hop);
	append(f, src, 16);
	append(f, dst, 16);
	append(f, l4.data(), l4.size());
	return f;
}

Bytes udp6(const Bytes &payload = donation_payload(), uint16_t dport = kPort,
	   const uint8_t dst_ip[16] = kOurIp6, const uint8_t dst_mac[6] = kOurMac)
{
	Bytes l4 = udp_hdr(payload.size(), dport);
	append(l4, payload.data(), payload.size());
	Bytes f = ip6_frame(IPPROTO_UDP, l4, kPeerIp6, dst_ip, dst_mac);
	fix_l4_6(f, 6);
	return f;
}

Bytes echo_body(uint8_t type, size_t data_len)
{
	Bytes b;
	b.push_back(type);
	b.push_back(0);
	append16(b, 0);
	append16(b, 0xbeef);   // id
	append16(b, 0x0102);   // seq
	for (size_t i = 0; i < data_len; i++)
		b.push_back((uint8_t)(i * 7 + 3));
	return b;
}

Bytes icmp4_echo(size_t data_len = 56)
{
	Bytes f = ip4_frame(IPPROTO_ICMP, echo_body(8, data_len));
	fix_icmp4(f);
	return f;
}

Bytes icmp6_echo(const uint8_t dst[16] = kOurIp6, const uint8_t dst_mac[6] = kOurMac)
{
	Bytes f = ip6_frame(IPPROTO_ICMPV6, echo_body(128, 56), kPeerIp6, dst, dst_mac, 64);
	fix_l4_6(f, 2);
	return f;
}

// A neighbour solicitation for @target; with a Source Link-Layer Address
// option unless @src is :: (DAD forbids it).
Bytes ns_frame(const uint8_t target[16] = kOurIp6, const uint8_t src[16] = kPeerIp6,
	       const uint8_t dst[16] = kOurSn6, const uint8_t dst_mac[6] = kOurSnMac,
	       uint8_t hop = 255)
{
	Bytes b = {135, 0, 0, 0, 0, 0, 0, 0};
	append(b, target, 16);
	if (memcmp(src, kZero6, 16) != 0) {
		b.push_back(1);
		b.push_back(1);
		append(b, kPeerMac, 6);
	}
	Bytes f = ip6_frame(IPPROTO_ICMPV6, b, src, dst, dst_mac, hop);
	fix_l4_6(f, 2);
	return f;
}

Bytes arp_frame(uint16_t op, const uint8_t sip[4], const uint8_t tip[4],
		const uint8_t dst_mac[6] = kBcastMac, bool pad = true)
{
	Bytes f = eth(dst_mac, kPeerMac, RTE_ETHER_TYPE_ARP);
	append16(f, 1);
	append16(f, RTE_ETHER_TYPE_IPV4);
	f.push_back(6);
	f.push_back(4);
	append16(f, op);
	append(f, kPeerMac, 6);
	append(f, sip, 4);
	const uint8_t zero_mac[6] = {};
	append(f, zero_mac, 6);
	append(f, tip, 4);
	while (pad && f.size() < 60)
		f.push_back(0x5a);   // junk padding, must not be echoed
	return f;
}

// ---- mbufs ---------------------------------------------------------------

struct MbufFree {
	void operator()(rte_mbuf *m) const { rte_pktmbuf_free(m); }
};
using Mbuf = std::unique_ptr<rte_mbuf, MbufFree>;

rte_mempool *pool()
{
	static rte_mempool *p = rte_pktmbuf_pool_create("test_net", 255, 0, 0,
							RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	return p;
}

// A pool mbuf holding a copy of @f.
Mbuf load(const Bytes &f)
{
	rte_mbuf *m = rte_pktmbuf_alloc(pool());
	if (m == nullptr)
		return Mbuf();
	char *d = rte_pktmbuf_append(m, (uint16_t)f.size());
	if (d == nullptr && !f.empty()) {
		rte_pktmbuf_free(m);
		return Mbuf();
	}
	if (!f.empty())
		memcpy(d, f.data(), f.size());
	return Mbuf(m);
}

// An mbuf whose buffer is a malloc() block of exactly @n bytes holding
// @f[0..n): ASan reports any access past the frame.
Mbuf load_exact(const uint8_t *f, size_t n)
{
	rte_mbuf *m = rte_pktmbuf_alloc(pool());
	if (m == nullptr)
		return Mbuf();
	auto *buf = (uint8_t *)malloc(n ? n : 1);
	if (n)
		memcpy(buf, f, n);
	auto *shinfo = (rte_mbuf_ext_shared_info *)malloc(sizeof(rte_mbuf_ext_shared_info));
	shinfo->free_cb = [](void *addr, void *opaque) {
		free(addr);
		free(opaque);
	};
	shinfo->fcb_opaque = shinfo;
	rte_mbuf_ext_refcnt_set(shinfo, 1);
	rte_pktmbuf_attach_extbuf(m, buf, 0, (uint16_t)n, shinfo);
	m->data_len = (uint16_t)n;
	m->pkt_len = (uint32_t)n;
	return Mbuf(m);
}

Bytes bytes_of(const rte_mbuf *m)
{
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	return Bytes(d, d + rte_pktmbuf_data_len(m));
}

struct Result {
	amil_net_verdict v;
	uint8_t reason;
	uint16_t off;
};

Result classify(const amil_net_cfg &cfg, rte_mbuf *m)
{
	Result r{AMIL_NET_DROP, 0xee, 0xeeee};
	r.v = amil_net_classify(&cfg, m, &r.off, &r.reason);
	return r;
}

// Classify @f and expect a drop for @reason with the frame left untouched.
void expect_drop(const Bytes &f, uint8_t reason, const amil_net_cfg &cfg = make_cfg(),
		 uint64_t ol_flags = 0)
{
	Mbuf m = load(f);
	ASSERT_TRUE(m);
	m->ol_flags |= ol_flags;
	Result r = classify(cfg, m.get());
	EXPECT_EQ(r.v, AMIL_NET_DROP);
	EXPECT_EQ(r.reason, reason) << "got " << amil_net_drop_name(r.reason) << ", want "
				    << amil_net_drop_name(reason);
	EXPECT_EQ(bytes_of(m.get()), f) << "a dropped frame must be left unchanged";
}

// Classify @f, expect DONATION, and return the mbuf.
Mbuf expect_donation(const Bytes &f, uint16_t want_off, uint64_t ol_flags = 0,
		     const amil_net_cfg &cfg = make_cfg())
{
	Mbuf m = load(f);
	EXPECT_TRUE(m);
	if (!m)
		return m;
	m->ol_flags |= ol_flags;
	Result r = classify(cfg, m.get());
	EXPECT_EQ(r.v, AMIL_NET_DONATION) << "dropped as " << amil_net_drop_name(r.reason);
	EXPECT_EQ(r.off, want_off);
	EXPECT_EQ(bytes_of(m.get()), f) << "classification must not touch the frame";
	return m;
}

Bytes resize_ip4_payload(size_t n)
{
	return udp4(donation_payload(n));
}

// ---- names -----------------------------------------------------------------

TEST(NetNames, EveryReasonHasItsJsonName)
{
	const char *want[] = {"not_ours", "unhandled", "malformed", "bad_ip_csum", "bad_udp_csum",
			      "bad_len", "bad_header", "unknown_center", "bad_tag"};
	static_assert(sizeof(want) / sizeof(want[0]) == AMIL_DROP_MAX, "one name per reason");
	for (unsigned i = 0; i < AMIL_DROP_MAX; i++)
		EXPECT_STREQ(amil_net_drop_name(i), want[i]);
	EXPECT_STREQ(amil_net_drop_name(AMIL_DROP_MAX), "unknown");
	EXPECT_STREQ(amil_net_drop_name(~0u), "unknown");
}

// ---- ARP -------------------------------------------------------------------

void check_arp_reply(const Bytes &r)
{
	ASSERT_GE(r.size(), 42u);
	EXPECT_EQ(0, memcmp(&r[0], kPeerMac, 6)) << "Ethernet dst = requester";
	EXPECT_EQ(0, memcmp(&r[6], kOurMac, 6)) << "Ethernet src = our MAC";
	EXPECT_EQ(get16(&r[12]), RTE_ETHER_TYPE_ARP);
	EXPECT_EQ(get16(&r[14]), 1);
	EXPECT_EQ(get16(&r[16]), RTE_ETHER_TYPE_IPV4);
	EXPECT_EQ(r[18], 6);
	EXPECT_EQ(r[19], 4);
	EXPECT_EQ(get16(&r[20]), 2) << "opcode reply";
	EXPECT_EQ(0, memcmp(&r[22], kOurMac, 6)) << "sender MAC";
	EXPECT_EQ(0, memcmp(&r[28], kOurIp4, 4)) << "sender IP";
	EXPECT_EQ(0, memcmp(&r[32], kPeerMac, 6)) << "target MAC";
	EXPECT_EQ(0, memcmp(&r[38], kPeerIp4, 4)) << "target IP";
}

TEST(NetArp, RequestForOurAddressIsAnsweredInPlace)
{
	Bytes f = arp_frame(1, kPeerIp4, kOurIp4);
	ASSERT_EQ(f.size(), 60u);
	Mbuf m = load(f);
	Result r = classify(make_cfg(), m.get());
	ASSERT_EQ(r.v, AMIL_NET_REPLY);
	Bytes out = bytes_of(m.get());
	check_arp_reply(out);
	EXPECT_EQ(out.size(), 60u);
	EXPECT_EQ(m->pkt_len, 60u);
	for (size_t i = 42; i < out.size(); i++)
		EXPECT_EQ(out[i], 0) << "padding byte " << i << " not cleared";
}

TEST(NetArp, UnicastUnpaddedAndOverlongRequestsAreAnswered)
{
	Bytes f = arp_frame(1, kPeerIp4, kOurIp4, kOurMac, false);
	ASSERT_EQ(f.size(), 42u);
	Mbuf m = load(f);
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	check_arp_reply(bytes_of(m.get()));
	EXPECT_EQ(m->data_len, 42);

	// ARP probe (RFC 5227): sender IP 0.0.0.0 is still answered.
	const uint8_t zero_ip[4] = {};
	Bytes probe = arp_frame(1, zero_ip, kOurIp4);
	m = load(probe);
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	EXPECT_EQ(0, memcmp(rte_pktmbuf_mtod_offset(m.get(), uint8_t *, 38), zero_ip, 4));

	Bytes big = arp_frame(1, kPeerIp4, kOurIp4);
	big.resize(100, 0x77);
	m = load(big);
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	check_arp_reply(bytes_of(m.get()));
	EXPECT_EQ(m->data_len, 60) << "trimmed to a minimum frame";
	EXPECT_EQ(m->pkt_len, 60u);
}

TEST(NetArp, OtherAddressesRepliesAndAnnouncementsAreDropped)
{
	expect_drop(arp_frame(1, kPeerIp4, kOtherIp4), AMIL_DROP_NOT_OURS);
	expect_drop(arp_frame(2, kPeerIp4, kOurIp4, kOurMac), AMIL_DROP_UNHANDLED);  // reply
	expect_drop(arp_frame(1, kPeerIp4, kPeerIp4), AMIL_DROP_UNHANDLED);  // gratuitous
	expect_drop(arp_frame(2, kPeerIp4, kPeerIp4), AMIL_DROP_UNHANDLED);  // gratuitous reply
	expect_drop(arp_frame(3, kPeerIp4, kOurIp4), AMIL_DROP_UNHANDLED);   // RARP op
	expect_drop(arp_frame(1, kPeerIp4, kOurIp4, kOtherMac), AMIL_DROP_NOT_OURS);
	expect_drop(arp_frame(1, kPeerIp4, kOurIp4, kOurSnMac), AMIL_DROP_NOT_OURS);
	amil_net_cfg no4 = make_cfg();
	no4.has_ip4 = false;
	expect_drop(arp_frame(1, kPeerIp4, kOurIp4), AMIL_DROP_NOT_OURS, no4);
}

TEST(NetArp, ShortOrNonEthernetIpv4ArpIsMalformed)
{
	Bytes f = arp_frame(1, kPeerIp4, kOurIp4, kBcastMac, false);
	f.pop_back();
	expect_drop(f, AMIL_DROP_MALFORMED);
	Bytes ok = arp_frame(1, kPeerIp4, kOurIp4);
	for (size_t at : {14u, 16u, 18u, 19u}) {   // htype, ptype, hlen, plen
		Bytes bad = ok;
		bad[at + (at < 18 ? 1 : 0)] ^= 0x08;
		expect_drop(bad, AMIL_DROP_MALFORMED);
	}
}

// ---- IPv4 ------------------------------------------------------------------

TEST(NetIp4, DonationIsClassified)
{
	Bytes f = udp4();
	ASSERT_EQ(f.size(), 14u + 20 + 8 + 64);
	Mbuf m = expect_donation(f, 42);
	ASSERT_TRUE(m);
	EXPECT_EQ(m->l2_len, 14u);
	EXPECT_EQ(m->l3_len, 20u);
	EXPECT_EQ(m->packet_type, RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_UDP);
	// The worker and the reply read the payload offset from here.
	EXPECT_EQ(m->hash.usr, 42u);
}

TEST(NetIp4, DonationWithOptionsOrTrailerIsClassified)
{
	Mbuf m = expect_donation(udp4(donation_payload(), kPort, kOurIp4, kOurMac, 8), 50);
	ASSERT_TRUE(m);
	EXPECT_EQ(m->l3_len, 28u);
	Bytes trailer = udp4();
	trailer.insert(trailer.end(), {1, 2, 3, 4});   // e.g. an FCS left on
	m = expect_donation(trailer, 42);
	ASSERT_TRUE(m);
	EXPECT_EQ(m->l3_len, 20u);
}

TEST(NetIp4, UdpChecksumZeroMeansNone)
{
	Bytes f = udp4();
	put16(&f[14 + 20 + 6], 0);
	expect_donation(f, 42);
}

TEST(NetIp4, BadChecksumsAreCounted)
{
	Bytes f = udp4();
	f[14 + 8] ^= 0x01;   // TTL, header checksum not fixed
	expect_drop(f, AMIL_DROP_BAD_IP_CSUM);
	Bytes g = udp4();
	g.back() ^= 0x01;    // payload, UDP checksum not fixed
	expect_drop(g, AMIL_DROP_BAD_UDP_CSUM);
}

TEST(NetIp4, RxChecksumFlagsAreHonoured)
{
	Bytes bad_ip = udp4();
	bad_ip[14 + 8] ^= 0x01;
	expect_donation(bad_ip, 42, RTE_MBUF_F_RX_IP_CKSUM_GOOD);
	expect_donation(bad_ip, 42, RTE_MBUF_F_RX_IP_CKSUM_NONE);
	expect_drop(udp4(), AMIL_DROP_BAD_IP_CSUM, make_cfg(), RTE_MBUF_F_RX_IP_CKSUM_BAD);

	Bytes bad_udp = udp4();
	bad_udp.back() ^= 0x01;
	expect_donation(bad_udp, 42, RTE_MBUF_F_RX_L4_CKSUM_GOOD);
	expect_drop(udp4(), AMIL_DROP_BAD_UDP_CSUM, make_cfg(), RTE_MBUF_F_RX_L4_CKSUM_BAD);

	Bytes zero = udp4();
	put16(&zero[14 + 20 + 6], 0);
	expect_donation(zero, 42, RTE_MBUF_F_RX_L4_CKSUM_BAD);   // absent, whatever the NIC says
}

TEST(NetIp4, ForeignTrafficIsNotOurs)
{
	expect_drop(udp4(donation_payload(), kPort, kOtherIp4), AMIL_DROP_NOT_OURS);
	expect_drop(udp4(donation_payload(), kPort + 1), AMIL_DROP_NOT_OURS);
	expect_drop(udp4(donation_payload(), kPort, kOurIp4, kOtherMac), AMIL_DROP_NOT_OURS);
	expect_drop(udp4(donation_payload(), kPort, kOurIp4, kBcastMac), AMIL_DROP_NOT_OURS);
	const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
	expect_drop(udp4(donation_payload(), kPort, kOurIp4, mcast), AMIL_DROP_NOT_OURS);
	Bytes lldp = udp4();
	put16(&lldp[12], RTE_ETHER_TYPE_LLDP);
	expect_drop(lldp, AMIL_DROP_NOT_OURS);
	amil_net_cfg no4 = make_cfg();
	no4.has_ip4 = false;
	expect_drop(udp4(), AMIL_DROP_NOT_OURS, no4);
	// Foreign traffic is rejected before its checksum is looked at.
	Bytes foreign_bad = udp4(donation_payload(), kPort, kOtherIp4);
	foreign_bad[14 + 8] ^= 1;
	expect_drop(foreign_bad, AMIL_DROP_NOT_OURS);
}

TEST(NetIp4, PayloadOtherThan64BytesIsBadLen)
{
	expect_drop(resize_ip4_payload(63), AMIL_DROP_BAD_LEN);
	expect_drop(resize_ip4_payload(65), AMIL_DROP_BAD_LEN);
	expect_drop(resize_ip4_payload(0), AMIL_DROP_BAD_LEN);
}

TEST(NetIp4, BadMagicVersionOrTypeIsBadHeader)
{
	for (size_t at : {0u, 1u, 2u, 3u}) {
		Bytes p = donation_payload();
		p[at] ^= (at == 3) ? 0x03 : 0x01;   // type 1 -> 2 (ACK)
		expect_drop(udp4(p), AMIL_DROP_BAD_HEADER);
	}
}

TEST(NetIp4, InconsistentHeadersAreMalformed)
{
	Bytes v = udp4();
	v[14] = 0x55;   // version 5
	fix_ip4(v);
	expect_drop(v, AMIL_DROP_MALFORMED);
	Bytes ihl = udp4();
	ihl[14] = 0x44;  // IHL 4
	expect_drop(ihl, AMIL_DROP_MALFORMED);
	Bytes longer = udp4();
	put16(&longer[16], (uint16_t)(ip4_total(longer) + 1));   // beyond the frame
	fix_ip4(longer);
	expect_drop(longer, AMIL_DROP_MALFORMED);
	Bytes udp_len = udp4();
	put16(&udp_len[14 + 20 + 4], 8 + 63);
	fix_l4_4(udp_len, 6);
	expect_drop(udp_len, AMIL_DROP_MALFORMED);
	Bytes no_udp = ip4_frame(IPPROTO_UDP, Bytes{0x9c, 0x40, 0x1b});   // 3 bytes of UDP
	expect_drop(no_udp, AMIL_DROP_MALFORMED);
}

TEST(NetIp4, FragmentsAndOtherProtocolsAreUnhandled)
{
	Bytes mf = udp4();
	put16(&mf[14 + 6], 0x2000);   // MF
	fix_ip4(mf);
	expect_drop(mf, AMIL_DROP_UNHANDLED);
	Bytes off = udp4();
	put16(&off[14 + 6], 0x0001);  // offset 8
	fix_ip4(off);
	expect_drop(off, AMIL_DROP_UNHANDLED);
	Bytes tcp = ip4_frame(IPPROTO_TCP, Bytes(20, 0));
	expect_drop(tcp, AMIL_DROP_UNHANDLED);
	Bytes vlan = udp4();
	put16(&vlan[12], RTE_ETHER_TYPE_VLAN);
	expect_drop(vlan, AMIL_DROP_UNHANDLED);
	put16(&vlan[12], RTE_ETHER_TYPE_QINQ);
	expect_drop(vlan, AMIL_DROP_UNHANDLED);
}

TEST(NetIp4, EchoRequestIsAnsweredInPlace)
{
	Bytes f = icmp4_echo();
	size_t n = f.size();
	f.resize(n + 6, 0xcc);   // Ethernet trailer: must not be echoed
	Mbuf m = load(f);
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	Bytes r = bytes_of(m.get());
	ASSERT_EQ(r.size(), n);
	EXPECT_EQ(m->pkt_len, n);
	EXPECT_EQ(0, memcmp(&r[0], kPeerMac, 6));
	EXPECT_EQ(0, memcmp(&r[6], kOurMac, 6));
	const uint8_t *ip = &r[14];
	EXPECT_TRUE(ref_ip4_hdr_ok(ip));
	EXPECT_EQ(rte_ipv4_cksum((const rte_ipv4_hdr *)ip), 0) << "DPDK agrees";
	EXPECT_EQ(ip[8], 64) << "TTL";
	EXPECT_EQ(0, memcmp(ip + 12, kOurIp4, 4));
	EXPECT_EQ(0, memcmp(ip + 16, kPeerIp4, 4));
	EXPECT_EQ(get16(ip + 4), 0x1234) << "id kept";
	const uint8_t *icmp = ip + 20;
	EXPECT_EQ(icmp[0], 0) << "echo reply";
	EXPECT_EQ(icmp[1], 0);
	EXPECT_EQ(fold(sum16(icmp, n - 34)), 0xffff) << "ICMP checksum";
	EXPECT_EQ(0, memcmp(icmp + 4, &f[34 + 4], n - 34 - 4)) << "id, seq and data echoed";
}

TEST(NetIp4, OddLengthEchoIsAnswered)
{
	Bytes f = icmp4_echo(37);
	Mbuf m = load(f);
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	Bytes r = bytes_of(m.get());
	EXPECT_EQ(fold(sum16(&r[34], r.size() - 34)), 0xffff);
}

TEST(NetIp4, BadOrOtherIcmpIsDropped)
{
	Bytes bad = icmp4_echo();
	bad.back() ^= 0x10;
	expect_drop(bad, AMIL_DROP_MALFORMED);
	Bytes ts = ip4_frame(IPPROTO_ICMP, echo_body(13, 12));   // timestamp request
	fix_icmp4(ts);
	expect_drop(ts, AMIL_DROP_UNHANDLED);
	Bytes reply = ip4_frame(IPPROTO_ICMP, echo_body(0, 8));
	fix_icmp4(reply);
	expect_drop(reply, AMIL_DROP_UNHANDLED);
	Bytes tiny = ip4_frame(IPPROTO_ICMP, Bytes{8, 0, 0xf7});
	expect_drop(tiny, AMIL_DROP_MALFORMED);
}

// ---- IPv6 ------------------------------------------------------------------

TEST(NetIp6, DonationIsClassified)
{
	Bytes f = udp6();
	ASSERT_EQ(f.size(), 14u + 40 + 8 + 64);
	Mbuf m = expect_donation(f, 62);
	ASSERT_TRUE(m);
	EXPECT_EQ(m->l2_len, 14u);
	EXPECT_EQ(m->l3_len, 40u);
	EXPECT_EQ(m->packet_type, RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV6 | RTE_PTYPE_L4_UDP);
}

TEST(NetIp6, UdpChecksumIsMandatory)
{
	Bytes f = udp6();
	put16(&f[14 + 40 + 6], 0);
	expect_drop(f, AMIL_DROP_BAD_UDP_CSUM);
	expect_drop(f, AMIL_DROP_BAD_UDP_CSUM, make_cfg(), RTE_MBUF_F_RX_L4_CKSUM_GOOD);
	Bytes g = udp6();
	g.back() ^= 0x80;
	expect_drop(g, AMIL_DROP_BAD_UDP_CSUM);
	expect_donation(g, 62, RTE_MBUF_F_RX_L4_CKSUM_GOOD);
	expect_drop(udp6(), AMIL_DROP_BAD_UDP_CSUM, make_cfg(), RTE_MBUF_F_RX_L4_CKSUM_BAD);
}

TEST(NetIp6, LengthsHeadersAndAddresses)
{
	expect_drop(udp6(donation_payload(63)), AMIL_DROP_BAD_LEN);
	expect_drop(udp6(donation_payload(65)), AMIL_DROP_BAD_LEN);
	Bytes p = donation_payload();
	p[0] = 0;
	expect_drop(udp6(p), AMIL_DROP_BAD_HEADER);
	expect_drop(udp6(donation_payload(), kPort, kOtherIp6), AMIL_DROP_NOT_OURS);
	expect_drop(udp6(donation_payload(), kPort + 1), AMIL_DROP_NOT_OURS);
	expect_drop(udp6(donation_payload(), kPort, kOurIp6, kOtherMac), AMIL_DROP_NOT_OURS);
	expect_drop(udp6(donation_payload(), kPort, kOurIp6, kOurSnMac), AMIL_DROP_NOT_OURS);
	expect_drop(udp6(donation_payload(), kPort, kOurSn6, kOurSnMac), AMIL_DROP_NOT_OURS);
	amil_net_cfg no6 = make_cfg();
	no6.has_ip6 = false;
	expect_drop(udp6(), AMIL_DROP_NOT_OURS, no6);
	expect_drop(ns_frame(), AMIL_DROP_NOT_OURS, no6);

	Bytes ver = udp6();
	ver[14] = 0x40;
	expect_drop(ver, AMIL_DROP_MALFORMED);
	Bytes plen = udp6();
	put16(&plen[18], (uint16_t)(get16(&plen[18]) + 1));
	expect_drop(plen, AMIL_DROP_MALFORMED);
	Bytes ulen = udp6();
	put16(&ulen[14 + 40 + 4], 70);
	fix_l4_6(ulen, 6);
	expect_drop(ulen, AMIL_DROP_MALFORMED);
	// Hop-by-hop options header: extension headers are not parsed.
	Bytes hbh = udp6();
	hbh[20] = 0;
	expect_drop(hbh, AMIL_DROP_UNHANDLED);
	Bytes trailer = udp6();
	trailer.insert(trailer.end(), 8, 0xee);
	expect_donation(trailer, 62);
}

void check_na(const Bytes &r, const uint8_t eth_dst[6], const uint8_t ip_dst[16], uint8_t flags)
{
	ASSERT_EQ(r.size(), 86u);
	EXPECT_EQ(0, memcmp(&r[0], eth_dst, 6));
	EXPECT_EQ(0, memcmp(&r[6], kOurMac, 6));
	EXPECT_EQ(get16(&r[12]), RTE_ETHER_TYPE_IPV6);
	const uint8_t *ip6 = &r[14];
	EXPECT_EQ(ip6[0], 0x60);
	EXPECT_EQ(get16(ip6 + 4), 32) << "payload length";
	EXPECT_EQ(ip6[6], IPPROTO_ICMPV6);
	EXPECT_EQ(ip6[7], 255) << "hop limit";
	EXPECT_EQ(0, memcmp(ip6 + 8, kOurIp6, 16)) << "source";
	EXPECT_EQ(0, memcmp(ip6 + 24, ip_dst, 16)) << "destination";
	const uint8_t *na = ip6 + 40;
	EXPECT_EQ(na[0], 136);
	EXPECT_EQ(na[1], 0);
	EXPECT_EQ(na[4], flags) << "R S O flags";
	EXPECT_EQ(na[5] | na[6] | na[7], 0) << "reserved";
	EXPECT_EQ(0, memcmp(na + 8, kOurIp6, 16)) << "target";
	EXPECT_EQ(na[24], 2) << "Target Link-Layer Address option";
	EXPECT_EQ(na[25], 1);
	EXPECT_EQ(0, memcmp(na + 26, kOurMac, 6));
	EXPECT_TRUE(ref_l4_ok6(ip6)) << "ICMPv6 checksum";
	EXPECT_EQ(rte_ipv6_udptcp_cksum_verify((const rte_ipv6_hdr *)ip6, na), 0) << "DPDK agrees";
}

TEST(NetIp6, SolicitationIsAnsweredWithAdvertisement)
{
	Mbuf m = load(ns_frame());
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	check_na(bytes_of(m.get()), kPeerMac, kPeerIp6, 0x60);
	EXPECT_EQ(m->pkt_len, 86u);

	// Unicast solicitation (neighbour unreachability detection).
	m = load(ns_frame(kOurIp6, kPeerIp6, kOurIp6, kOurMac));
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	check_na(bytes_of(m.get()), kPeerMac, kPeerIp6, 0x60);
}

TEST(NetIp6, DadSolicitationIsAnsweredToAllNodes)
{
	Bytes f = ns_frame(kOurIp6, kZero6);
	ASSERT_EQ(f.size(), 78u) << "no source link-layer option";
	Mbuf m = load(f);
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	check_na(bytes_of(m.get()), kAllNodesMac, kAllNodes6, 0x20);
	EXPECT_EQ(m->data_len, 86) << "grew by the option";
	EXPECT_EQ(m->pkt_len, 86u);
}

TEST(NetIp6, InvalidOrForeignSolicitationsAreDropped)
{
	expect_drop(ns_frame(kOtherIp6), AMIL_DROP_NOT_OURS);
	expect_drop(ns_frame(kOurIp6, kPeerIp6, kOurSn6, kOurSnMac, 64), AMIL_DROP_MALFORMED);
	Bytes bad = ns_frame();
	bad.back() ^= 1;
	expect_drop(bad, AMIL_DROP_MALFORMED);
	// DAD must go to the solicited-node group.
	expect_drop(ns_frame(kOurIp6, kZero6, kOurIp6, kOurMac), AMIL_DROP_MALFORMED);
	// Another host's group, or a group with the wrong MAC prefix.
	const uint8_t other_sn[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0x03};
	expect_drop(ns_frame(kOurIp6, kPeerIp6, other_sn, kOurSnMac), AMIL_DROP_NOT_OURS);
	expect_drop(ns_frame(kOurIp6, kPeerIp6, kOurSn6, kBcastMac), AMIL_DROP_NOT_OURS);
	expect_drop(ns_frame(kOurIp6, kPeerIp6, kOurSn6, kOtherMac), AMIL_DROP_NOT_OURS);
	// Truncated body: header says 24 bytes of ICMPv6, carries 16.
	Bytes small = ns_frame();
	small.resize(14 + 40 + 16);
	put16(&small[18], 16);
	fix_l4_6(small, 2);
	expect_drop(small, AMIL_DROP_MALFORMED);
}

TEST(NetIp6, EchoRequestIsAnsweredInPlace)
{
	Bytes f = icmp6_echo();
	Mbuf m = load(f);
	ASSERT_EQ(classify(make_cfg(), m.get()).v, AMIL_NET_REPLY);
	Bytes r = bytes_of(m.get());
	ASSERT_EQ(r.size(), f.size());
	EXPECT_EQ(0, memcmp(&r[0], kPeerMac, 6));
	EXPECT_EQ(0, memcmp(&r[6], kOurMac, 6));
	const uint8_t *ip6 = &r[14];
	EXPECT_EQ(ip6[7], 64) << "hop limit";
	EXPECT_EQ(0, memcmp(ip6 + 8, kOurIp6, 16));
	EXPECT_EQ(0, memcmp(ip6 + 24, kPeerIp6, 16));
	EXPECT_EQ(ip6[40], 129);
	EXPECT_EQ(ip6[41], 0);
	EXPECT_TRUE(ref_l4_ok6(ip6)) << "ICMPv6 checksum";
	EXPECT_EQ(0, memcmp(ip6 + 44, &f[14 + 44], f.size() - 58)) << "id, seq and data";

	expect_drop(icmp6_echo(kOurSn6, kOurSnMac), AMIL_DROP_NOT_OURS);
	Bytes bad = icmp6_echo();
	bad[60] ^= 0x40;
	expect_drop(bad, AMIL_DROP_MALFORMED);
	Bytes na = icmp6_echo();
	na[14 + 40] = 136;   // unsolicited advertisement: not ours to answer
	fix_l4_6(na, 2);
	expect_drop(na, AMIL_DROP_UNHANDLED);
}

// ---- single-segment contract -------------------------------------------------

TEST(NetMbuf, ChainedMbufIsMalformed)
{
	// The first segment alone holds a whole valid donation: only the
	// segment count can make this a drop.
	Mbuf a = load(udp4());
	rte_mbuf *b = load(Bytes{1, 2, 3, 4}).release();
	ASSERT_TRUE(a && b);
	ASSERT_EQ(rte_pktmbuf_chain(a.get(), b), 0);
	Result r = classify(make_cfg(), a.get());
	EXPECT_EQ(r.v, AMIL_NET_DROP);
	EXPECT_EQ(r.reason, AMIL_DROP_MALFORMED);
}

// Every prefix of every frame we answer or accept: no crash, no read past
// the end (ASan), never a DONATION, and a REPLY only where the prefix still
// holds a whole message (an ARP request cut inside its padding).
TEST(NetMbuf, TruncatedFramesNeverPass)
{
	const amil_net_cfg cfg = make_cfg();
	std::vector<Bytes> frames = {udp4(), udp6(), arp_frame(1, kPeerIp4, kOurIp4), icmp4_echo(),
				     icmp6_echo(), ns_frame(), ns_frame(kOurIp6, kZero6),
				     udp4(donation_payload(), kPort, kOurIp4, kOurMac, 8)};
	for (const Bytes &f : frames) {
		Mbuf whole = load(f);   // room for the DAD solicitation's NA
		ASSERT_NE(classify(cfg, whole.get()).v, AMIL_NET_DROP) << "the full frame is accepted";
		for (size_t len = 0; len < f.size(); len++) {
			Mbuf m = load_exact(f.data(), len);
			ASSERT_TRUE(m);
			Result r = classify(cfg, m.get());
			ASSERT_NE(r.v, AMIL_NET_DONATION) << "len " << len;
			bool arp = get16(&f[12]) == RTE_ETHER_TYPE_ARP;
			if (r.v == AMIL_NET_REPLY) {
				EXPECT_TRUE(arp && len >= 42) << "len " << len;
			} else {
				EXPECT_LT(r.reason, AMIL_DROP_UNKNOWN_CENTER);
				if (len < 14) {
					EXPECT_EQ(r.reason, AMIL_DROP_MALFORMED);
				}
			}
		}
	}
}

// ---- UDP reply -------------------------------------------------------------

void write_ack(rte_mbuf *m, uint16_t off)
{
	uint8_t *p = rte_pktmbuf_mtod_offset(m, uint8_t *, off);
	for (int i = 0; i < AMIL_WIRE_LEN; i++)
		p[i] = (uint8_t)(0x30 + 3 * i);
	put16(p, AMIL_WIRE_MAGIC);
	p[2] = AMIL_WIRE_VERSION;
	p[3] = AMIL_MSG_ACK;
}

void check_reply_addrs(const Bytes &r, bool v6)
{
	EXPECT_EQ(0, memcmp(&r[0], kPeerMac, 6));
	EXPECT_EQ(0, memcmp(&r[6], kOurMac, 6));
	size_t l4 = 14 + (v6 ? 40 : 20);
	if (v6) {
		EXPECT_EQ(r[14 + 7], 64) << "hop limit";
		EXPECT_EQ(0, memcmp(&r[14 + 8], kOurIp6, 16));
		EXPECT_EQ(0, memcmp(&r[14 + 24], kPeerIp6, 16));
		EXPECT_EQ(get16(&r[18]), 72);
	} else {
		EXPECT_EQ(r[14 + 8], 64) << "TTL";
		EXPECT_EQ(0, memcmp(&r[14 + 12], kOurIp4, 4));
		EXPECT_EQ(0, memcmp(&r[14 + 16], kPeerIp4, 4));
		EXPECT_EQ(get16(&r[14 + 2]), 92) << "total length";
		EXPECT_EQ(get16(&r[14 + 4]), 0x1234) << "id kept";
		EXPECT_EQ(get16(&r[14 + 6]), 0x4000) << "DF kept";
	}
	EXPECT_EQ(get16(&r[l4]), kPort);
	EXPECT_EQ(get16(&r[l4 + 2]), kPeerPort);
	EXPECT_EQ(get16(&r[l4 + 4]), 72);
	EXPECT_EQ(r[l4 + 8 + 3], AMIL_MSG_ACK) << "the ACK is left alone";
	EXPECT_EQ(r.size(), l4 + 72);
}

TEST(NetReply, Ipv4InSoftware)
{
	amil_net_cfg cfg = make_cfg();
	Bytes f = udp4();
	f.insert(f.end(), 4, 0xdd);   // trailer, must not be sent back
	Mbuf m = expect_donation(f, 42, 0, cfg);
	ASSERT_TRUE(m);
	write_ack(m.get(), 42);
	amil_net_reply_udp(&cfg, m.get());
	Bytes r = bytes_of(m.get());
	check_reply_addrs(r, false);
	EXPECT_EQ(m->pkt_len, r.size());
	EXPECT_TRUE(ref_ip4_hdr_ok(&r[14]));
	EXPECT_TRUE(ref_l4_ok4(&r[14]));
	auto *ip = rte_pktmbuf_mtod_offset(m.get(), const rte_ipv4_hdr *, 14);
	EXPECT_EQ(rte_ipv4_cksum(ip), 0);
	EXPECT_EQ(rte_ipv4_udptcp_cksum_verify(ip, ip + 1), 0);
	EXPECT_NE(get16(&r[14 + 20 + 6]), 0) << "checksum present";
	EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u) << "nothing offloaded";
}

TEST(NetReply, Ipv4Offloaded)
{
	amil_net_cfg cfg = make_cfg();
	cfg.tx_ip_csum_offload = true;
	cfg.tx_udp_csum_offload = true;
	Mbuf m = expect_donation(udp4(), 42, RTE_MBUF_F_RX_IP_CKSUM_GOOD, cfg);
	ASSERT_TRUE(m);
	write_ack(m.get(), 42);
	amil_net_reply_udp(&cfg, m.get());
	Bytes r = bytes_of(m.get());
	check_reply_addrs(r, false);
	EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK,
		  RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM);
	EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_GOOD) << "RX bits are not ours to clear";
	EXPECT_EQ(m->l2_len, 14u);
	EXPECT_EQ(m->l3_len, 20u);
	EXPECT_EQ(get16(&r[14 + 10]), 0) << "IP checksum left to the NIC";
	// Pseudo-header sum, not complemented, as the NIC expects.
	EXPECT_EQ(get16(&r[14 + 20 + 6]), fold(pseudo4(&r[14], 72)));
}

TEST(NetReply, Ipv4PartlyOffloaded)
{
	amil_net_cfg cfg = make_cfg();
	cfg.tx_ip_csum_offload = true;
	Mbuf m = expect_donation(udp4(), 42, 0, cfg);
	ASSERT_TRUE(m);
	write_ack(m.get(), 42);
	amil_net_reply_udp(&cfg, m.get());
	Bytes r = bytes_of(m.get());
	EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK,
		  RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM);
	EXPECT_TRUE(ref_l4_ok4(&r[14])) << "UDP in software";

	cfg.tx_ip_csum_offload = false;
	cfg.tx_udp_csum_offload = true;
	m = expect_donation(udp4(), 42, 0, cfg);
	ASSERT_TRUE(m);
	amil_net_reply_udp(&cfg, m.get());
	r = bytes_of(m.get());
	EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK,
		  RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM);
	EXPECT_TRUE(ref_ip4_hdr_ok(&r[14])) << "IP header in software";
	EXPECT_EQ(get16(&r[14 + 20 + 6]), fold(pseudo4(&r[14], 72)));
}

TEST(NetReply, Ipv4ChecksumOfZeroIsSentAsFfff)
{
	amil_net_cfg cfg = make_cfg();
	Mbuf m = expect_donation(udp4(), 42, 0, cfg);
	ASSERT_TRUE(m);
	write_ack(m.get(), 42);
	// Choose the ACK's last word so the UDP sum is 0xffff: the complement,
	// i.e. the checksum, is then 0, which must go out as 0xffff.
	uint8_t *p = rte_pktmbuf_mtod(m.get(), uint8_t *);
	put16(p + 42 + 62, 0);
	put16(p + 14 + 20 + 6, 0);
	uint16_t s = fold(pseudo4(p + 14, 72) + sum16(p + 34, 72));
	put16(p + 42 + 62, (uint16_t)(0xffff - s));
	amil_net_reply_udp(&cfg, m.get());
	Bytes r = bytes_of(m.get());
	EXPECT_EQ(get16(&r[14 + 20 + 6]), 0xffff);
	EXPECT_TRUE(ref_l4_ok4(&r[14]));
}

TEST(NetReply, Ipv6InSoftwareAndOffloaded)
{
	amil_net_cfg cfg = make_cfg();
	Mbuf m = expect_donation(udp6(), 62, 0, cfg);
	ASSERT_TRUE(m);
	write_ack(m.get(), 62);
	amil_net_reply_udp(&cfg, m.get());
	Bytes r = bytes_of(m.get());
	check_reply_addrs(r, true);
	EXPECT_TRUE(ref_l4_ok6(&r[14]));
	auto *ip6 = rte_pktmbuf_mtod_offset(m.get(), const rte_ipv6_hdr *, 14);
	EXPECT_EQ(rte_ipv6_udptcp_cksum_verify(ip6, ip6 + 1), 0);
	EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u);

	cfg.tx_ip_csum_offload = true;   // meaningless for IPv6: must not set IP_CKSUM
	cfg.tx_udp_csum_offload = true;
	Bytes g = udp6();
	Mbuf e = load_exact(g.data(), g.size());   // external buffer: flag must survive
	ASSERT_TRUE(e);
	Result res = classify(cfg, e.get());
	ASSERT_EQ(res.v, AMIL_NET_DONATION);
	write_ack(e.get(), res.off);
	amil_net_reply_udp(&cfg, e.get());
	r = bytes_of(e.get());
	check_reply_addrs(r, true);
	EXPECT_EQ(e->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK,
		  RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM);
	EXPECT_TRUE(e->ol_flags & RTE_MBUF_F_EXTERNAL);
	EXPECT_EQ(e->l2_len, 14u);
	EXPECT_EQ(e->l3_len, 40u);
	EXPECT_EQ(get16(&r[14 + 40 + 6]), fold(pseudo6(&r[14], 72, IPPROTO_UDP)));
}

// ---- random frames -----------------------------------------------------------

// An independent check of what a DONATION or REPLY verdict claims.
void check_accepted(const Bytes &in, const Bytes &out, const Result &r, bool v6_reply_grows)
{
	if (r.v == AMIL_NET_DONATION) {
		ASSERT_EQ(in, out);
		ASSERT_EQ(0, memcmp(&in[0], kOurMac, 6));
		uint16_t type = get16(&in[12]);
		ASSERT_TRUE(type == RTE_ETHER_TYPE_IPV4 || type == RTE_ETHER_TYPE_IPV6);
		const uint8_t *ip = &in[14];
		size_t l3 = type == RTE_ETHER_TYPE_IPV4 ? (size_t)(ip[0] & 0xf) * 4 : 40;
		ASSERT_EQ(r.off, 14 + l3 + 8);
		ASSERT_LE((size_t)r.off + 64, in.size());
		const uint8_t *udp = ip + l3;
		ASSERT_EQ(get16(udp + 2), kPort);
		ASSERT_EQ(get16(udp + 4), 72);
		if (type == RTE_ETHER_TYPE_IPV4) {
			ASSERT_EQ(0, memcmp(ip + 16, kOurIp4, 4));
			ASSERT_TRUE(ref_ip4_hdr_ok(ip));
			ASSERT_EQ(get16(ip + 2), l3 + 72);
			ASSERT_TRUE(get16(udp + 6) == 0 || ref_l4_ok4(ip));
		} else {
			ASSERT_EQ(0, memcmp(ip + 24, kOurIp6, 16));
			ASSERT_EQ(get16(ip + 4), 72);
			ASSERT_TRUE(ref_l4_ok6(ip));
		}
		ASSERT_EQ(amil_wire_check(&in[r.off], 64, AMIL_MSG_DONATION), 0);
		return;
	}
	ASSERT_EQ(r.v, AMIL_NET_REPLY);
	ASSERT_GE(out.size(), 42u);
	ASSERT_EQ(0, memcmp(&out[6], kOurMac, 6)) << "a reply comes from our MAC";
	uint16_t type = get16(&out[12]);
	if (type == RTE_ETHER_TYPE_ARP) {
		ASSERT_EQ(get16(&out[20]), 2);
		ASSERT_EQ(0, memcmp(&out[28], kOurIp4, 4));
		ASSERT_EQ(0, memcmp(&in[38], kOurIp4, 4)) << "asked for our address";
	} else if (type == RTE_ETHER_TYPE_IPV4) {
		ASSERT_TRUE(ref_ip4_hdr_ok(&out[14]));
		ASSERT_EQ(out[14 + 9], IPPROTO_ICMP);
		ASSERT_EQ(fold(sum16(&out[14 + ip4_hlen(out)], ip4_total(out) - ip4_hlen(out))), 0xffff);
	} else {
		ASSERT_EQ(type, RTE_ETHER_TYPE_IPV6);
		ASSERT_EQ(out[14 + 6], IPPROTO_ICMPV6);
		ASSERT_TRUE(ref_l4_ok6(&out[14]));
		uint8_t t = out[14 + 40];
		ASSERT_TRUE(t == 129 || t == 136);
		ASSERT_TRUE(v6_reply_grows || out.size() <= in.size());
	}
}

TEST(NetFuzz, RandomFramesAreHandledSafely)
{
	const amil_net_cfg cfg = make_cfg();
	std::mt19937 rng(20240611);
	auto rnd = [&](uint32_t n) { return (uint32_t)(rng() % n); };
	const Bytes seeds[] = {udp4(), udp6(), arp_frame(1, kPeerIp4, kOurIp4), icmp4_echo(),
			       icmp6_echo(), ns_frame(), ns_frame(kOurIp6, kZero6),
			       udp4(donation_payload(63)), udp4(donation_payload(65))};
	unsigned counts[3] = {};
	unsigned reasons[AMIL_DROP_MAX] = {};

	for (int iter = 0; iter < 100000; iter++) {
		Bytes f;
		switch (iter % 4) {
		case 0: {   // random bytes, random length
			f.resize(rnd(160));
			for (auto &b : f)
				b = (uint8_t)rng();
			if (f.size() >= 6 && rnd(2))
				memcpy(&f[0], kOurMac, 6);
			break;
		}
		case 1: {   // valid Ethernet header, random rest
			static const uint16_t types[] = {RTE_ETHER_TYPE_IPV4, RTE_ETHER_TYPE_IPV6,
							 RTE_ETHER_TYPE_ARP};
			const uint8_t *dsts[] = {kOurMac, kBcastMac, kOurSnMac};
			f = eth(dsts[rnd(3)], kPeerMac, types[rnd(3)]);
			f.resize(14 + rnd(140));
			for (size_t i = 14; i < f.size(); i++)
				f[i] = (uint8_t)rng();
			if (f.size() > 34 && get16(&f[12]) == RTE_ETHER_TYPE_IPV4 && rnd(2)) {
				f[14] = 0x45;
				f[14 + 6] &= 0x40;   // DF at most: no fragments
				f[14 + 7] = 0;
				memcpy(&f[14 + 16], kOurIp4, 4);
				uint16_t tot = (uint16_t)(f.size() - 14 - rnd(4));
				put16(&f[16], tot);
				if (rnd(2))
					f[14 + 9] = (uint8_t)(rnd(2) ? (int)IPPROTO_UDP : (int)IPPROTO_ICMP);
				if (f.size() > 42 && f[14 + 9] == IPPROTO_UDP && rnd(2)) {
					put16(&f[34 + 2], kPort);
					put16(&f[34 + 4], (uint16_t)(tot - 20));
				}
				fix_ip4(f);
			}
			if (f.size() > 54 && get16(&f[12]) == RTE_ETHER_TYPE_IPV6 && rnd(2)) {
				f[14] = 0x60;
				memcpy(&f[14 + 24], rnd(2) ? kOurIp6 : kOurSn6, 16);
				put16(&f[18], (uint16_t)(f.size() - 54 - rnd(3)));
				f[20] = (uint8_t)(rnd(2) ? (int)IPPROTO_UDP : (int)IPPROTO_ICMPV6);
			}
			break;
		}
		default: {  // a good frame with a few bytes changed, maybe cut
			f = seeds[rnd(sizeof(seeds) / sizeof(seeds[0]))];
			int flips = 1 + (int)rnd(3);
			for (int i = 0; i < flips; i++)
				f[rnd((uint32_t)f.size())] ^= (uint8_t)(1 + rnd(255));
			if (rnd(4) == 0)
				f.resize(rnd((uint32_t)f.size() + 1));
			if (iter % 8 == 3 && f.size() > 34 && get16(&f[12]) == RTE_ETHER_TYPE_IPV4 &&
			    (f[14] & 0xf) == 5 && ip4_total(f) + 14 <= f.size()) {
				fix_ip4(f);   // get past the header checksum more often
				if (f[14 + 9] == IPPROTO_UDP && ip4_total(f) >= 28)
					fix_l4_4(f, 6);
			}
			break;
		}
		}
		// Half in exact-size external buffers (ASan sees overreads), half
		// in pool mbufs (room to grow a DAD solicitation into an NA).
		bool exact = iter & 1;
		Mbuf m = exact ? load_exact(f.data(), f.size()) : load(f);
		ASSERT_TRUE(m);
		Result r = classify(cfg, m.get());
		Bytes out = bytes_of(m.get());
		ASSERT_TRUE(r.v == AMIL_NET_DROP || r.v == AMIL_NET_DONATION || r.v == AMIL_NET_REPLY);
		counts[r.v]++;
		if (r.v == AMIL_NET_DROP) {
			ASSERT_LT(r.reason, AMIL_DROP_UNKNOWN_CENTER) << "worker reasons come from the worker";
			ASSERT_EQ(out, f) << "dropped frame changed, iter " << iter;
			reasons[r.reason]++;
		} else {
			check_accepted(f, out, r, !exact);
			if (HasFatalFailure())
				FAIL() << "iter " << iter;
		}
	}
	// The generator must reach every outcome, or this test proves little.
	EXPECT_GT(counts[AMIL_NET_DONATION], 100u);
	EXPECT_GT(counts[AMIL_NET_REPLY], 100u);
	for (unsigned i = 0; i < AMIL_DROP_UNKNOWN_CENTER; i++)
		EXPECT_GT(reasons[i], 10u) << amil_net_drop_name(i);
}

}  // namespace

AMIL_TEST_MAIN_WITH_EAL("net")
