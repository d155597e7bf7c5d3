// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// The data-plane integration test's scenarios as data: who we are, the
// centers and their keys, and a builder that records every input frame
// together with what it must produce (an ACK with exact fields, a
// neighbour/echo reply, or nothing, counted under a drop reason), from
// which the expected counters follow.
//
// Donations are encoded and signed only through lib/amil_wire.h and framed
// through lib/amil_frame.h.  Expected outcomes are written out by the
// caller, not derived from a second model of the data plane; the levy is
// the one derived value (lib's amil_levy_minor()).
#ifndef AMIL_TESTS_INTEGRATION_TRAFFIC_H
#define AMIL_TESTS_INTEGRATION_TRAFFIC_H

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "amil_frame.h"
#include "amil_levy.h"
#include "amil_wire.h"
#include "integration_frames.h"

namespace itest {

// net_pcap in DPDK 22.11 gives port N the MAC 02:70:63:61:70:0N.
const uint8_t kOurMac[6] = {0x02, 0x70, 0x63, 0x61, 0x70, 0x00};
const uint8_t kOtherMac[6] = {0x02, 0x70, 0x63, 0x61, 0x70, 0x01};
const char *const kOurIp4 = "198.18.0.1";
const char *const kOurIp6 = "2001:2::1";
constexpr uint32_t kNodeId = 7;

struct Center {
	uint32_t id;
	uint8_t key[AMIL_KEY_LEN];
};

const Center kCenters[] = {
	{1001, {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
		0x0d, 0x0e, 0x0f}},
	{1002, {0x5d, 0x8e, 0x1f, 0x3a, 0x94, 0xc2, 0x7b, 0x60, 0xe1, 0xa4, 0xf0, 0x9c, 0x3b,
		0x7d, 0x2e, 0x58}},
	{4000000000u, {0xc7, 0xa2, 0x96, 0x4e, 0x0b, 0x5f, 0x18, 0xd3, 0xa9, 0x6e, 0x47, 0xb2,
		       0x1f, 0x0c, 0x85, 0xd4}},
};
constexpr uint32_t kUnknownCenter = 999;

inline const uint8_t *key_of(uint32_t center_id)
{
	for (const auto &c : kCenters)
		if (c.id == center_id)
			return c.key;
	return nullptr;
}

inline std::string centers_text()
{
	std::string s = "# integration test centers\n\n";
	char hex[3];

	for (const auto &c : kCenters) {
		s += std::to_string(c.id) + " ";
		for (uint8_t b : c.key) {
			snprintf(hex, sizeof(hex), "%02x", b);
			s += hex;
		}
		s += "   # test key\n";
	}
	return s;
}

// JSON names of the drop reasons (dataplane/net.h order) and of the
// rejection reasons (lower-case amil_reason_name()).  Spelled out here: the
// JSON layout is a contract the test checks, not something it derives.
const char *const kDropNames[] = {"not_ours",     "unhandled", "malformed",
				  "bad_ip_csum",  "bad_udp_csum", "bad_len",
				  "bad_header",   "unknown_center", "bad_tag"};

inline const char *reason_json(uint8_t r)
{
	switch (r) {
	case AMIL_REASON_BAD_CURRENCY: return "bad_currency";
	case AMIL_REASON_BAD_AMOUNT: return "bad_amount";
	case AMIL_REASON_BAD_EXPONENT: return "bad_exponent";
	case AMIL_REASON_CONFLICT: return "conflict";
	case AMIL_REASON_RESERVED: return "reserved";
	case AMIL_REASON_BAD_ID: return "bad_id";
	case AMIL_REASON_UNAVAILABLE: return "unavailable";
	default: return "?";
	}
}

inline bool mac_eq(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 6) == 0;
}

inline std::string mac_str(const uint8_t *m)
{
	char b[18];

	snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return b;
}

// ---- what goes in and what must come out ----------------------------------

enum class Expect { Silent, ArpReply, Echo4Reply, Echo6Reply, NaReply, Ack, Unknown };

inline const char *expect_name(Expect e)
{
	switch (e) {
	case Expect::Silent: return "nothing";
	case Expect::ArpReply: return "ARP reply";
	case Expect::Echo4Reply: return "ICMP echo reply";
	case Expect::Echo6Reply: return "ICMPv6 echo reply";
	case Expect::NaReply: return "neighbour advertisement";
	case Expect::Ack: return "ACK";
	default: return "unknown frame";
	}
}

struct Input {
	std::string what;
	Bytes frame;
	Expect expect = Expect::Silent;
	std::string drop;           // Silent: total.dropped_by_reason.<drop>
	amil_frame_addr addr{};     // Ack: the request's addressing
	amil_donation don{};        // Ack: the request as sent
	uint8_t status = 0;         // Ack: expected fields
	uint8_t reason = 0;
	int64_t amount = 0;
	int64_t levy = 0;
};

using DonKey = std::pair<uint32_t, uint64_t>;

// Builds a scenario: input frames, each with what it must produce.
class Traffic {
public:
	explicit Traffic(uint32_t rate_bp) : rate_bp_(rate_bp) {}

	// A center's flow to us; the source port is set per frame.
	static amil_frame_addr flow4(unsigned host)
	{
		amil_frame_addr a{};
		const uint8_t src[6] = {0x02, 0x00, 0x00, 0x00, 0x10, (uint8_t)host};

		memcpy(a.src_mac, src, 6);
		memcpy(a.dst_mac, kOurMac, 6);
		a.src_ip4 = ip4(("198.18.0." + std::to_string(10 + host)).c_str());
		a.dst_ip4 = ip4(kOurIp4);
		a.dst_port = AMIL_WIRE_PORT_DEFAULT;
		return a;
	}
	static amil_frame_addr flow6(unsigned host)
	{
		amil_frame_addr a = flow4(host);

		a.ipv6 = true;
		ip6(("2001:2::" + std::to_string(10 + host)).c_str(), a.src_ip6);
		ip6(kOurIp6, a.dst_ip6);
		return a;
	}
	static amil_donation don(uint32_t center, uint64_t id, const char *cur, uint8_t exponent,
				 int64_t amount)
	{
		amil_donation d{};

		d.center_id = center;
		d.donation_id = id;
		d.donor_id = id * 2654435761u % 1000000007u;
		d.campaign_id = center % 50 + 1;
		memcpy(d.currency, cur, AMIL_CURRENCY_LEN);
		d.exponent = exponent;
		d.amount_minor = amount;
		return d;
	}

	// Give the frame a fresh seq, sent_ns and source port (every frame is
	// told apart by its seq) and build it, signed with @key.
	Bytes make(amil_frame_addr *a, amil_donation *d, const uint8_t *key = nullptr)
	{
		std::array<uint8_t, AMIL_WIRE_LEN> p{};

		stamp(a, d);
		amil_wire_donation_encode(p.data(), d);
		amil_wire_sign(p.data(), key != nullptr ? key : key_of(d->center_id));
		return udp_frame(*a, p.data(), p.size());
	}
	void stamp(amil_frame_addr *a, amil_donation *d)
	{
		d->seq = seq_;
		d->sent_ns = UINT64_C(1700000000000000000) + (uint64_t)seq_ * 1000003u;
		a->src_port = (uint16_t)(20000 + seq_ % 30000);
		seq_++;
	}

	// A donation that must be answered ACCEPTED, and recorded.
	void accepted(const std::string &what, amil_frame_addr a, amil_donation d)
	{
		Bytes f = make(&a, &d);
		int64_t levy = amil_levy_minor(d.amount_minor, rate_bp_);

		rec_[{d.center_id, d.donation_id}] = {d, levy};
		ack(what, f, a, d, AMIL_ACK_ACCEPTED, AMIL_REASON_NONE, d.amount_minor, levy);
	}
	// A retransmit of @d (same content; new seq and sent_ns): DUPLICATE
	// carrying the original amount and levy.
	void duplicate(const std::string &what, amil_frame_addr a, amil_donation d)
	{
		auto it = rec_.find({d.center_id, d.donation_id});
		Bytes f = make(&a, &d);

		if (it == rec_.end()) {
			ADD_FAILURE() << "test bug: " << what << " retransmits nothing recorded";
			return;
		}
		ack(what, f, a, d, AMIL_ACK_DUPLICATE, AMIL_REASON_NONE, it->second.d.amount_minor,
		    it->second.levy);
	}
	// REJECTED with @reason: no amount, no levy.
	void rejected(const std::string &what, amil_frame_addr a, amil_donation d, uint8_t reason)
	{
		Bytes f = make(&a, &d);

		ack(what, f, a, d, AMIL_ACK_REJECTED, reason, 0, 0);
	}
	// A frame that must produce no output at all, counted under @drop.
	void silent(const std::string &what, Bytes f, const std::string &drop)
	{
		Input in;

		in.what = what;
		in.frame = std::move(f);
		in.expect = Expect::Silent;
		in.drop = drop;
		in_.push_back(std::move(in));
	}
	// An ARP / ICMP / ND request answered by the I/O lcore.
	void neighbour(const std::string &what, Bytes f, Expect e)
	{
		Input in;

		in.what = what;
		in.frame = std::move(f);
		in.expect = e;
		in_.push_back(std::move(in));
	}

	const std::vector<Input> &inputs() const { return in_; }
	// The frame just added, for a change the builders do not offer.
	Bytes &last_frame() { return in_.back().frame; }
	uint32_t rate_bp() const { return rate_bp_; }
	std::vector<Bytes> frames() const
	{
		std::vector<Bytes> v;

		for (const auto &i : in_)
			v.push_back(i.frame);
		return v;
	}

private:
	struct Rec {
		amil_donation d;  // as first accepted
		int64_t levy;
	};

	void ack(const std::string &what, Bytes f, const amil_frame_addr &a, const amil_donation &d,
		 uint8_t status, uint8_t reason, int64_t amount, int64_t levy)
	{
		Input in;

		in.what = what;
		in.frame = std::move(f);
		in.expect = Expect::Ack;
		in.addr = a;
		in.don = d;
		in.status = status;
		in.reason = reason;
		in.amount = amount;
		in.levy = levy;
		in_.push_back(std::move(in));
	}

	uint32_t rate_bp_;
	uint32_t seq_ = 1;
	std::vector<Input> in_;
	std::map<DonKey, Rec> rec_;
};

// Totals the stats must show for a scenario.
struct Counts {
	uint64_t frames = 0, replies = 0, acks = 0, donations = 0;
	uint64_t accepted = 0, duplicate = 0, rejected = 0;
	std::map<std::string, uint64_t> rejected_by, dropped_by;
	struct Tot {
		uint64_t count = 0;
		int64_t amount = 0, levy = 0;
	};
	std::map<std::pair<std::string, unsigned>, Tot> totals;  // (currency, exponent)
};

inline Counts count(const Traffic &t)
{
	Counts c;

	for (uint8_t r = 1; r < AMIL_REASON_MAX; r++)
		c.rejected_by[reason_json(r)] = 0;
	for (const char *n : kDropNames)
		c.dropped_by[n] = 0;
	for (const auto &in : t.inputs()) {
		c.frames++;
		switch (in.expect) {
		case Expect::Silent:
			c.dropped_by[in.drop]++;
			if (in.drop == "unknown_center" || in.drop == "bad_tag")
				c.donations++;
			break;
		case Expect::Ack:
			c.acks++;
			c.donations++;
			if (in.status == AMIL_ACK_ACCEPTED) {
				auto &tot = c.totals[{std::string(in.don.currency, 3), in.don.exponent}];

				c.accepted++;
				tot.count++;
				tot.amount += in.amount;
				tot.levy += in.levy;
			} else if (in.status == AMIL_ACK_DUPLICATE) {
				c.duplicate++;
			} else {
				c.rejected++;
				c.rejected_by[reason_json(in.reason)]++;
			}
			break;
		default:
			c.replies++;
			break;
		}
	}
	return c;
}

}  // namespace itest

#endif
