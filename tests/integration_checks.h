// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Checks of the data plane's output against a scenario (integration_traffic.h):
// every reply frame, field by field and in order, then the stats JSON and
// the telemetry counters against the totals of what was sent.
#ifndef AMIL_TESTS_INTEGRATION_CHECKS_H
#define AMIL_TESTS_INTEGRATION_CHECKS_H

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "amil_frame.h"
#include "amil_wire.h"
#include "integration_frames.h"
#include "integration_json.h"
#include "integration_traffic.h"

namespace itest {

// ---- checking one reply ------------------------------------------------------

inline Expect kind_of(const Bytes &f)
{
	if (f.size() < kEthHlen)
		return Expect::Unknown;
	switch (get16(f.data() + 12)) {
	case kEtherArp:
		return Expect::ArpReply;
	case kEtherIp4:
		if (f.size() < kEthHlen + kIp4Hlen)
			return Expect::Unknown;
		if (f[kEthHlen + 9] == 1)
			return Expect::Echo4Reply;
		return f[kEthHlen + 9] == 17 ? Expect::Ack : Expect::Unknown;
	case kEtherIp6:
		if (f.size() < kEthHlen + kIp6Hlen + 1)
			return Expect::Unknown;
		if (f[kEthHlen + 6] == 17)
			return Expect::Ack;
		if (f[kEthHlen + 6] != 58)
			return Expect::Unknown;
		if (f[kEthHlen + kIp6Hlen] == 129)
			return Expect::Echo6Reply;
		return f[kEthHlen + kIp6Hlen] == 136 ? Expect::NaReply : Expect::Unknown;
	default:
		return Expect::Unknown;
	}
}

inline void check_arp_reply(const Bytes &q, const Bytes &r)
{
	const uint8_t *qa = q.data() + kEthHlen, *a = r.data() + kEthHlen;

	ASSERT_EQ(r.size(), q.size()) << "ARP reply keeps the minimum frame size";
	EXPECT_TRUE(mac_eq(r.data(), q.data() + 6)) << "to the requester: " << mac_str(r.data());
	EXPECT_TRUE(mac_eq(r.data() + 6, kOurMac)) << "from us: " << mac_str(r.data() + 6);
	EXPECT_EQ(get16(r.data() + 12), kEtherArp);
	EXPECT_EQ(get16(a), 1) << "hardware type Ethernet";
	EXPECT_EQ(get16(a + 2), kEtherIp4) << "protocol IPv4";
	EXPECT_EQ(a[4], 6);
	EXPECT_EQ(a[5], 4);
	EXPECT_EQ(get16(a + 6), 2) << "opcode reply";
	EXPECT_TRUE(mac_eq(a + 8, kOurMac)) << "sender MAC is ours";
	EXPECT_EQ(memcmp(a + 14, qa + 24, 4), 0) << "sender IP is the address asked for";
	EXPECT_TRUE(mac_eq(a + 18, qa + 8)) << "target MAC is the requester's";
	EXPECT_EQ(memcmp(a + 24, qa + 14, 4), 0) << "target IP is the requester's";
	for (size_t i = kEthHlen + 28; i < r.size(); i++)
		EXPECT_EQ(r[i], 0) << "padding byte " << i;
}

inline void check_echo4_reply(const Bytes &q, const Bytes &r)
{
	const uint8_t *qip = q.data() + kEthHlen, *ip = r.data() + kEthHlen;
	size_t icmp_len = q.size() - kEthHlen - kIp4Hlen;

	ASSERT_EQ(r.size(), q.size());
	EXPECT_TRUE(mac_eq(r.data(), q.data() + 6)) << "to the requester";
	EXPECT_TRUE(mac_eq(r.data() + 6, kOurMac)) << "from us";
	EXPECT_EQ(ip[0], 0x45);
	EXPECT_TRUE(csum_ok(ip, kIp4Hlen)) << "IPv4 header checksum";
	EXPECT_EQ(get16(ip + 2), get16(qip + 2)) << "total length";
	EXPECT_GT(ip[8], 0) << "TTL";
	EXPECT_EQ(ip[9], 1);
	EXPECT_EQ(memcmp(ip + 12, qip + 16, 4), 0) << "source is our address";
	EXPECT_EQ(memcmp(ip + 16, qip + 12, 4), 0) << "destination is the requester";
	EXPECT_EQ(ip[kIp4Hlen], 0) << "type echo reply";
	EXPECT_EQ(ip[kIp4Hlen + 1], 0) << "code";
	EXPECT_TRUE(csum_ok(ip + kIp4Hlen, icmp_len)) << "ICMP checksum";
	EXPECT_EQ(memcmp(ip + kIp4Hlen + 4, qip + kIp4Hlen + 4, icmp_len - 4), 0)
		<< "identifier, sequence and data echoed";
}

inline void check_echo6_reply(const Bytes &q, const Bytes &r)
{
	const uint8_t *qip = q.data() + kEthHlen, *ip = r.data() + kEthHlen;
	size_t icmp_len = q.size() - kEthHlen - kIp6Hlen;

	ASSERT_EQ(r.size(), q.size());
	EXPECT_TRUE(mac_eq(r.data(), q.data() + 6)) << "to the requester";
	EXPECT_TRUE(mac_eq(r.data() + 6, kOurMac)) << "from us";
	EXPECT_EQ(ip[0] >> 4, 6);
	EXPECT_EQ(get16(ip + 4), icmp_len) << "payload length";
	EXPECT_EQ(ip[6], 58);
	EXPECT_GT(ip[7], 0) << "hop limit";
	EXPECT_EQ(memcmp(ip + 8, qip + 24, 16), 0) << "source is our address";
	EXPECT_EQ(memcmp(ip + 24, qip + 8, 16), 0) << "destination is the requester";
	EXPECT_EQ(ip[kIp6Hlen], 129) << "type echo reply";
	EXPECT_EQ(ip[kIp6Hlen + 1], 0) << "code";
	EXPECT_TRUE(csum_ok(ip + kIp6Hlen, icmp_len, ip6_pseudo(ip + 8, ip + 24, (uint32_t)icmp_len, 58)))
		<< "ICMPv6 checksum";
	EXPECT_EQ(memcmp(ip + kIp6Hlen + 4, qip + kIp6Hlen + 4, icmp_len - 4), 0)
		<< "identifier, sequence and data echoed";
}

inline void check_na(const Bytes &q, const Bytes &r)
{
	const uint8_t *qip = q.data() + kEthHlen, *ip = r.data() + kEthHlen;
	const uint8_t *na = ip + kIp6Hlen;
	uint8_t ours[16];

	ip6(kOurIp6, ours);
	ASSERT_EQ(r.size(), kEthHlen + kIp6Hlen + 32) << "NA with one 8-byte option";
	EXPECT_TRUE(mac_eq(r.data(), q.data() + 6)) << "to the soliciting node";
	EXPECT_TRUE(mac_eq(r.data() + 6, kOurMac)) << "from us";
	EXPECT_EQ(ip[0] >> 4, 6);
	EXPECT_EQ(get16(ip + 4), 32) << "payload length";
	EXPECT_EQ(ip[6], 58);
	EXPECT_EQ(ip[7], 255) << "ND hop limit (RFC 4861 7.1.2)";
	EXPECT_EQ(memcmp(ip + 8, ours, 16), 0) << "source is our address";
	EXPECT_EQ(memcmp(ip + 24, qip + 8, 16), 0) << "destination is the soliciting node";
	EXPECT_EQ(na[0], 136) << "type NA";
	EXPECT_EQ(na[1], 0) << "code";
	EXPECT_TRUE(csum_ok(na, 32, ip6_pseudo(ip + 8, ip + 24, 32, 58))) << "ICMPv6 checksum";
	EXPECT_EQ(na[4] & 0x80, 0) << "R flag: we are not a router";
	EXPECT_EQ(na[4] & 0x40, 0x40) << "S flag: answer to a unicast-source solicitation";
	EXPECT_EQ(memcmp(na + 8, ours, 16), 0) << "target is our address";
	EXPECT_EQ(na[24], 2) << "target link-layer address option";
	EXPECT_EQ(na[25], 1) << "option length 8 bytes";
	EXPECT_TRUE(mac_eq(na + 26, kOurMac)) << "option carries our MAC: " << mac_str(na + 26);
}

// The ACK's payload, authenticated, or nullptr.
inline const uint8_t *ack_payload(const Bytes &f, amil_ack *a)
{
	amil_frame_addr fa;
	const uint8_t *p;
	size_t len;
	const uint8_t *key;

	if (amil_frame_parse_udp(f.data(), f.size(), false, &fa, &p, &len) != 0 ||
	    len != AMIL_WIRE_LEN || amil_wire_check(p, len, AMIL_MSG_ACK) != 0)
		return nullptr;
	key = key_of(amil_wire_center_id(p));
	if (key == nullptr || amil_wire_verify(p, key) != 0)
		return nullptr;
	amil_wire_ack_decode(p, a);
	return p;
}

inline void check_ack(const Bytes &f, const Input &in)
{
	const amil_frame_addr &q = in.addr;
	amil_frame_addr a;
	const uint8_t *p, *ip = f.data() + kEthHlen, *udp = f.data() + udp_off(q);
	size_t len;
	amil_ack k;
	uint32_t seed;

	ASSERT_EQ(amil_frame_parse_udp(f.data(), f.size(), true, &a, &p, &len), 0)
		<< "the ACK frame must parse with valid IP and UDP checksums";
	ASSERT_EQ(f.size(), udp_off(q) + kUdpHlen + AMIL_WIRE_LEN) << "frame length";
	ASSERT_EQ(a.ipv6, q.ipv6);
	EXPECT_TRUE(mac_eq(a.src_mac, kOurMac)) << "source MAC " << mac_str(a.src_mac);
	EXPECT_TRUE(mac_eq(a.dst_mac, q.src_mac)) << "destination MAC " << mac_str(a.dst_mac);
	if (!q.ipv6) {
		EXPECT_EQ(a.src_ip4, q.dst_ip4) << "source IP is ours";
		EXPECT_EQ(a.dst_ip4, q.src_ip4) << "destination IP is the center's";
		EXPECT_EQ(ip[0], 0x45);
		EXPECT_EQ(get16(ip + 2), kIp4Hlen + kUdpHlen + AMIL_WIRE_LEN);
		EXPECT_GT(ip[8], 0) << "TTL";
		EXPECT_EQ(ip[9], 17);
		EXPECT_TRUE(csum_ok(ip, kIp4Hlen)) << "IPv4 header checksum";
		uint8_t ph[4] = {0, 17, 0, (uint8_t)(kUdpHlen + AMIL_WIRE_LEN)};
		seed = amil_frame_csum_add(amil_frame_csum_add(0, ip + 12, 8), ph, 4);
	} else {
		EXPECT_EQ(memcmp(a.src_ip6, q.dst_ip6, 16), 0) << "source IP is ours";
		EXPECT_EQ(memcmp(a.dst_ip6, q.src_ip6, 16), 0) << "destination IP is the center's";
		EXPECT_EQ(ip[0] >> 4, 6);
		EXPECT_EQ(get16(ip + 4), kUdpHlen + AMIL_WIRE_LEN);
		EXPECT_EQ(ip[6], 17);
		EXPECT_GT(ip[7], 0) << "hop limit";
		seed = ip6_pseudo(ip + 8, ip + 24, kUdpHlen + AMIL_WIRE_LEN, 17);
	}
	EXPECT_NE(get16(udp + 6), 0) << "the ACK must carry a UDP checksum";
	EXPECT_TRUE(csum_ok(udp, kUdpHlen + AMIL_WIRE_LEN, seed)) << "UDP checksum";
	EXPECT_EQ(a.src_port, q.dst_port) << "source port is the AMIL/1 port";
	EXPECT_EQ(a.dst_port, q.src_port) << "destination port is the center's";
	ASSERT_EQ(len, AMIL_WIRE_LEN);
	EXPECT_EQ(amil_wire_check(p, len, AMIL_MSG_ACK), 0) << "AMIL/1 ACK header";
	EXPECT_EQ(amil_wire_verify(p, key_of(in.don.center_id)), 0)
		<< "ACK tag must verify with the center's key";
	amil_wire_ack_decode(p, &k);
	EXPECT_EQ(k.center_id, in.don.center_id);
	EXPECT_EQ(k.donation_id, in.don.donation_id);
	EXPECT_EQ(k.node_id, kNodeId);
	EXPECT_EQ(k.status, in.status) << "got " << amil_ack_status_name(k.status) << " want "
				       << amil_ack_status_name(in.status);
	EXPECT_EQ(k.reason, in.reason) << "got " << amil_reason_name(k.reason) << " want "
				       << amil_reason_name(in.reason);
	EXPECT_EQ(k.amount_minor, in.amount);
	EXPECT_EQ(k.levy_minor, in.levy);
	EXPECT_EQ(k.sent_ns, in.don.sent_ns) << "sent_ns echoed";
	EXPECT_EQ(k.seq, in.don.seq) << "seq echoed";
	EXPECT_EQ(p[38], 0) << "reserved1";
	EXPECT_EQ(p[39], 0) << "reserved1";
	for (int i = 52; i < 56; i++)
		EXPECT_EQ(p[i], 0) << "reserved2 byte " << i;
}

enum class Order {
	Strict,   // output in exactly the input order (--burst 1, one lcore)
	PerClass, // neighbour replies in order, ACKs in order (one lcore)
	PerKey,   // ACKs of one (center, donation) in order (several workers)
};

inline size_t failures_so_far()
{
	return (size_t)::testing::UnitTest::GetInstance()->current_test_info()->result()
		->total_part_count();
}

// Check every output frame against the inputs, in order.
inline void check_replies(const Traffic &t, const std::vector<Bytes> &out, Order order)
{
	const auto &in = t.inputs();
	std::vector<size_t> neigh;
	std::map<uint32_t, size_t> by_seq;
	std::vector<bool> answered(in.size(), false);
	std::vector<long> seen_at;   // input index of each output frame
	std::map<DonKey, long> last_of_key;
	size_t nk = 0, want = 0, fail0 = failures_so_far();

	for (size_t i = 0; i < in.size(); i++) {
		if (in[i].expect == Expect::Ack)
			by_seq[in[i].don.seq] = i;
		else if (in[i].expect != Expect::Silent)
			neigh.push_back(i);
		want += in[i].expect != Expect::Silent;
	}
	EXPECT_EQ(out.size(), want) << "one output frame per answered input, none for the rest";

	for (size_t j = 0; j < out.size(); j++) {
		Expect kind = kind_of(out[j]);
		long idx = -1;

		SCOPED_TRACE("output frame " + std::to_string(j));
		if (failures_so_far() > fail0 + 20) {
			ADD_FAILURE() << "too many bad reply frames; not checking the rest";
			return;
		}
		if (kind == Expect::Ack) {
			amil_ack k;

			if (ack_payload(out[j], &k) == nullptr) {
				ADD_FAILURE() << "an AMIL/1 reply that is not an ACK signed by a known center";
				continue;
			}
			auto it = by_seq.find(k.seq);
			if (it == by_seq.end()) {
				ADD_FAILURE() << "an ACK for seq " << k.seq << ", which expects no ACK";
				continue;
			}
			idx = (long)it->second;
			SCOPED_TRACE("answer to input " + std::to_string(idx) + ": " + in[idx].what);
			check_ack(out[j], in[idx]);
			if (order != Order::Strict) {
				DonKey key{k.center_id, k.donation_id};
				auto last = last_of_key.find(key);

				if (last != last_of_key.end()) {
					EXPECT_LT(last->second, idx) << "ACKs of one donation out of order";
				}
				last_of_key[key] = idx;
			}
		} else if (kind != Expect::Unknown) {
			if (nk >= neigh.size()) {
				ADD_FAILURE() << "an unexpected " << expect_name(kind);
				continue;
			}
			idx = (long)neigh[nk++];
			SCOPED_TRACE("answer to input " + std::to_string(idx) + ": " + in[idx].what);
			EXPECT_EQ(expect_name(kind), expect_name(in[idx].expect));
			if (kind == in[idx].expect) {
				if (kind == Expect::ArpReply)
					check_arp_reply(in[idx].frame, out[j]);
				else if (kind == Expect::Echo4Reply)
					check_echo4_reply(in[idx].frame, out[j]);
				else if (kind == Expect::Echo6Reply)
					check_echo6_reply(in[idx].frame, out[j]);
				else
					check_na(in[idx].frame, out[j]);
			}
		} else {
			ADD_FAILURE() << "an output frame of unknown kind, " << out[j].size() << " bytes";
			continue;
		}
		if (answered[idx])
			ADD_FAILURE() << "input " << idx << " (" << in[idx].what << ") answered twice";
		answered[idx] = true;
		if (order == Order::Strict && !seen_at.empty()) {
			EXPECT_LT(seen_at.back(), idx) << "output out of input order";
		}
		if (order == Order::PerClass && kind == Expect::Ack) {
			for (auto s = seen_at.rbegin(); s != seen_at.rend(); ++s)
				if (in[*s].expect == Expect::Ack) {
					EXPECT_LT(*s, idx) << "ACKs out of input order";
					break;
				}
		}
		seen_at.push_back(idx);
	}
	for (size_t i = 0, missing = 0; i < in.size(); i++) {
		if (in[i].expect == Expect::Silent || answered[i])
			continue;
		if (++missing > 20) {
			ADD_FAILURE() << "and more inputs without a reply";
			break;
		}
		ADD_FAILURE() << "no " << expect_name(in[i].expect) << " for input " << i << ": "
			      << in[i].what;
	}
}

// (center_id, donation_id, status) of every ACK, as a sorted multiset.
using AckKey = std::tuple<uint32_t, uint64_t, uint8_t>;

inline std::multiset<AckKey> ack_multiset(const std::vector<Bytes> &out)
{
	std::multiset<AckKey> s;
	amil_ack k;

	for (const auto &f : out)
		if (kind_of(f) == Expect::Ack && ack_payload(f, &k) != nullptr)
			s.insert(AckKey{k.center_id, k.donation_id, k.status});
	return s;
}

inline std::multiset<AckKey> ack_multiset(const Traffic &t)
{
	std::multiset<AckKey> s;

	for (const auto &in : t.inputs())
		if (in.expect == Expect::Ack)
			s.insert(AckKey{in.don.center_id, in.don.donation_id, in.status});
	return s;
}

// ---- checking the counters -------------------------------------------------------

// The number at @path as written, or a marker that cannot equal a number.
inline std::string jnum(const Json &j, const std::string &path)
{
	const Json *v = j.path(path);

	if (v == nullptr)
		return "<missing " + path + ">";
	if (v->type != Json::NUM)
		return "<not a number: " + path + ">";
	return v->text;
}

// The unsigned number at @path; a failure (and 0) when there is none.
inline uint64_t ju64(const Json &j, const std::string &path)
{
	std::string s = jnum(j, path);

	if (s.empty() || s[0] < '0' || s[0] > '9') {
		ADD_FAILURE() << s;
		return 0;
	}
	return std::stoull(s);
}

inline std::string S(uint64_t v)
{
	return std::to_string(v);
}

inline std::string S64(int64_t v)
{
	return std::to_string(v);
}

inline void check_stats_json(const Json &st, const Traffic &t, unsigned nb_workers)
{
	Counts c = count(t);
	const Json *cur = st.path("currencies"), *workers = st.path("workers");
	uint64_t wsum_acc = 0, wsum_dup = 0, wsum_rx = 0;

	EXPECT_EQ(jnum(st, "node_id"), S(kNodeId));
	EXPECT_EQ(jnum(st, "total.rx"), S(c.frames));
	EXPECT_EQ(jnum(st, "ports.0.rx"), S(c.frames));
	EXPECT_EQ(jnum(st, "total.tx"), S(c.acks + c.replies));
	EXPECT_EQ(jnum(st, "total.replies"), S(c.replies));
	EXPECT_EQ(jnum(st, "total.donations"), S(c.donations));
	EXPECT_EQ(jnum(st, "total.accepted"), S(c.accepted));
	EXPECT_EQ(jnum(st, "total.duplicate"), S(c.duplicate));
	EXPECT_EQ(jnum(st, "total.rejected"), S(c.rejected));
	EXPECT_EQ(jnum(st, "total.ring_full"), "0");
	EXPECT_EQ(jnum(st, "total.tx_full"), "0");
	EXPECT_EQ(jnum(st, "totals_overflow"), "0");
	for (const auto &r : c.rejected_by)
		EXPECT_EQ(jnum(st, "total.rejected_by_reason." + r.first), S(r.second)) << r.first;
	for (const auto &d : c.dropped_by)
		EXPECT_EQ(jnum(st, "total.dropped_by_reason." + d.first), S(d.second)) << d.first;

	ASSERT_TRUE(workers != nullptr && workers->type == Json::ARR) << "workers array";
	EXPECT_EQ(workers->arr.size(), nb_workers);
	for (size_t i = 0; i < workers->arr.size(); i++) {
		const Json &w = workers->arr[i];

		wsum_acc += ju64(w, "accepted");
		wsum_dup += ju64(w, "duplicate");
		wsum_rx += ju64(w, "rx");
		if (nb_workers > 1) {
			EXPECT_NE(jnum(w, "rx"), "0") << "worker " << i << " got no donation at all";
		}
	}
	EXPECT_EQ(wsum_acc, c.accepted) << "per-worker accepted add up";
	EXPECT_EQ(wsum_dup, c.duplicate) << "per-worker duplicate add up";
	EXPECT_EQ(wsum_rx, c.donations) << "per-worker rx add up";

	ASSERT_TRUE(cur != nullptr && cur->type == Json::ARR) << "currencies array";
	EXPECT_EQ(cur->arr.size(), c.totals.size()) << "one entry per (currency, exponent) accepted";
	for (const auto &e : c.totals) {
		const Json *found = nullptr;

		for (const auto &j : cur->arr) {
			const Json *code = j.get("currency");

			if (code != nullptr && code->text == e.first.first &&
			    jnum(j, "exponent") == S(e.first.second))
				found = &j;
		}
		if (found == nullptr) {
			ADD_FAILURE() << "no currencies entry for " << e.first.first << "/" << e.first.second;
			continue;
		}
		SCOPED_TRACE(e.first.first + "/" + S(e.first.second));
		EXPECT_EQ(jnum(*found, "accepted"), S(e.second.count));
		EXPECT_EQ(jnum(*found, "amount_minor"), S64(e.second.amount));
		EXPECT_EQ(jnum(*found, "levy_minor"), S64(e.second.levy));
	}
}

// The last /amil/stats and /amil/totals telemetry replies.
inline void check_telemetry(const Json &tel, const Json &totals, const Traffic &t)
{
	Counts c = count(t);
	const Json *s = tel.get("/amil/stats"), *tt = totals.get("/amil/totals");

	ASSERT_NE(s, nullptr) << "/amil/stats reply";
	EXPECT_EQ(jnum(*s, "node_id"), S(kNodeId));
	EXPECT_EQ(jnum(*s, "port_rx"), S(c.frames));
	EXPECT_EQ(jnum(*s, "port_tx"), S(c.acks + c.replies));
	EXPECT_EQ(jnum(*s, "replies"), S(c.replies));
	EXPECT_EQ(jnum(*s, "rx"), S(c.donations));
	EXPECT_EQ(jnum(*s, "tx"), S(c.acks));
	EXPECT_EQ(jnum(*s, "accepted"), S(c.accepted));
	EXPECT_EQ(jnum(*s, "duplicate"), S(c.duplicate));
	EXPECT_EQ(jnum(*s, "rejected"), S(c.rejected));
	for (const auto &r : c.rejected_by)
		EXPECT_EQ(jnum(*s, "rejected_" + r.first), S(r.second)) << r.first;
	for (const auto &d : c.dropped_by)
		EXPECT_EQ(jnum(*s, "drop_" + d.first), S(d.second)) << d.first;

	ASSERT_NE(tt, nullptr) << "/amil/totals reply";
	EXPECT_EQ(tt->obj.size(), c.totals.size());
	for (const auto &e : c.totals) {
		std::string k = e.first.first + "/" + S(e.first.second);
		const Json *v = tt->get(k);

		if (v == nullptr) {
			ADD_FAILURE() << "/amil/totals has no " << k;
			continue;
		}
		EXPECT_EQ(jnum(*v, "accepted"), S(e.second.count)) << k;
		ASSERT_NE(v->get("amount_minor"), nullptr) << k;
		ASSERT_NE(v->get("levy_minor"), nullptr) << k;
		EXPECT_EQ(v->get("amount_minor")->text, S64(e.second.amount)) << k;
		EXPECT_EQ(v->get("levy_minor")->text, S64(e.second.levy)) << k;
	}
}

}  // namespace itest

#endif
