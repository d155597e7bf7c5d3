// Unit tests for controlplane/membership_wire.c: round trips, exact byte
// layout, and every way a message can be malformed.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "membership_wire.h"

namespace {

constexpr uint64_t kCluster = 0x0102030405060708ull;

amil_mwire_update
Upd(uint64_t id, uint32_t inc, uint8_t state, const char *name, const char *addr)
{
	amil_mwire_update u;
	memset(&u, 0, sizeof(u));
	u.node_id = id;
	u.from_id = id;
	u.incarnation = inc;
	u.state = state;
	u.name_len = (uint8_t)strlen(name);
	memcpy(u.name, name, u.name_len);
	u.addr_len = (uint8_t)strlen(addr);
	memcpy(u.addr, addr, u.addr_len);
	return u;
}

amil_mwire_msg
Msg(uint8_t type, unsigned n_updates)
{
	amil_mwire_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.cluster_id = kCluster;
	m.sender = 0x1111;
	m.target = 0x2222;
	m.origin = 0x3333;
	m.seq = 0xDEADBEEF;
	for (unsigned i = 0; i < n_updates; i++)
		m.updates[m.n_updates++] = Upd(100 + i, 7 + i, (uint8_t)(i % 4), "node", "tcp://10.0.0.1:7200");
	return m;
}

std::vector<uint8_t>
Encode(const amil_mwire_msg &m)
{
	std::vector<uint8_t> b(AMIL_MWIRE_MSG_MAX);
	int n = amil_mwire_encode(&m, b.data(), b.size());
	EXPECT_GT(n, 0);
	b.resize(n > 0 ? (size_t)n : 0);
	return b;
}

int
Decode(const std::vector<uint8_t> &b, amil_mwire_msg *out = nullptr)
{
	amil_mwire_msg tmp;
	return amil_mwire_decode(b.data(), b.size(), kCluster, out ? out : &tmp);
}

TEST(MembershipWire, RoundTripEveryTypeAndUpdateCount)
{
	for (uint8_t type = AMIL_MWIRE_PING; type < AMIL_MWIRE_TYPE_MAX; type++) {
		for (unsigned n = 0; n <= AMIL_MWIRE_UPDATES_MAX; n++) {
			amil_mwire_msg m = Msg(type, n), d;
			auto b = Encode(m);
			ASSERT_EQ(b.size(), AMIL_MWIRE_HDR_LEN + n * (AMIL_MWIRE_UPD_LEN + 4 + 19));
			ASSERT_EQ(Decode(b, &d), 0);
			EXPECT_EQ(d.type, type);
			EXPECT_EQ(d.n_updates, n);
			EXPECT_EQ(d.cluster_id, kCluster);
			EXPECT_EQ(d.sender, 0x1111u);
			EXPECT_EQ(d.target, 0x2222u);
			EXPECT_EQ(d.origin, 0x3333u);
			EXPECT_EQ(d.seq, 0xDEADBEEFu);
			for (unsigned i = 0; i < n; i++) {
				EXPECT_EQ(d.updates[i].node_id, 100u + i);
				EXPECT_EQ(d.updates[i].from_id, 100u + i);
				EXPECT_EQ(d.updates[i].incarnation, 7u + i);
				EXPECT_EQ(d.updates[i].state, i % 4);
				EXPECT_STREQ(d.updates[i].name, "node");
				ASSERT_EQ(d.updates[i].addr_len, 19);
				EXPECT_EQ(memcmp(d.updates[i].addr, "tcp://10.0.0.1:7200", 19), 0);
			}
			// Decode then encode gives the same bytes.
			auto again = Encode(d);
			EXPECT_EQ(again, b);
		}
	}
}

TEST(MembershipWire, ByteLayoutIsBigEndianAtDocumentedOffsets)
{
	amil_mwire_msg m = Msg(AMIL_MWIRE_PING_REQ, 1);
	m.updates[0].from_id = 0xAABB;
	auto b = Encode(m);
	ASSERT_EQ(b.size(), 44u + 24 + 4 + 19);
	const uint8_t hdr[] = {0x41, 0x43, 1, AMIL_MWIRE_PING_REQ, 1, 0, 0, 0,
			       1, 2, 3, 4, 5, 6, 7, 8,
			       0, 0, 0, 0, 0, 0, 0x11, 0x11,
			       0, 0, 0, 0, 0, 0, 0x22, 0x22,
			       0, 0, 0, 0, 0, 0, 0x33, 0x33,
			       0xDE, 0xAD, 0xBE, 0xEF};
	EXPECT_EQ(memcmp(b.data(), hdr, sizeof(hdr)), 0);
	const uint8_t upd[] = {0, 0, 0, 0, 0, 0, 0, 100,
			       0, 0, 0, 0, 0, 0, 0xAA, 0xBB,
			       0, 0, 0, 7, AMIL_MEMBER_ALIVE, 4, 19, 0, 'n', 'o', 'd', 'e', 't'};
	EXPECT_EQ(memcmp(b.data() + 44, upd, sizeof(upd)), 0);
}

TEST(MembershipWire, MaximalMessageFitsTheBound)
{
	amil_mwire_msg m = Msg(AMIL_MWIRE_ACK, 0);
	char name[AMIL_MEMBERSHIP_NAME_MAX + 1];
	memset(name, 'x', AMIL_MEMBERSHIP_NAME_MAX);
	name[AMIL_MEMBERSHIP_NAME_MAX] = 0;
	for (unsigned i = 0; i < AMIL_MWIRE_UPDATES_MAX; i++) {
		m.updates[i] = Upd(i + 1, i, AMIL_MEMBER_ALIVE, name, "");
		m.updates[i].addr_len = AMIL_MEMBERSHIP_ADDR_MAX;
		memset(m.updates[i].addr, 0xAB, AMIL_MEMBERSHIP_ADDR_MAX);
	}
	m.n_updates = AMIL_MWIRE_UPDATES_MAX;
	std::vector<uint8_t> b(AMIL_MWIRE_MSG_MAX);
	ASSERT_EQ(amil_mwire_encode(&m, b.data(), b.size()), AMIL_MWIRE_MSG_MAX);
	EXPECT_EQ(amil_mwire_encode(&m, b.data(), b.size() - 1), -EMSGSIZE);
	amil_mwire_msg d;
	EXPECT_EQ(amil_mwire_decode(b.data(), b.size(), kCluster, &d), 0);
	EXPECT_EQ(d.updates[7].addr[95], 0xAB);
}

TEST(MembershipWire, EncodeRejectsInvalidMessages)
{
	uint8_t b[AMIL_MWIRE_MSG_MAX];
	amil_mwire_msg m;

	m = Msg(0, 0);
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_TYPE_MAX, 0);
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 0);
	m.sender = 0;
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 0);
	m.target = 0;
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 1);
	m.updates[0].node_id = 0;
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 1);
	m.updates[0].state = AMIL_MEMBER_STATE_MAX;
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 1);
	m.updates[0].name_len = AMIL_MEMBERSHIP_NAME_MAX + 1;
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 1);
	m.updates[0].addr_len = AMIL_MEMBERSHIP_ADDR_MAX + 1;
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 1);
	m.updates[0].name[1] = '\0';
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 0);
	m.n_updates = AMIL_MWIRE_UPDATES_MAX + 1;
	EXPECT_EQ(amil_mwire_encode(&m, b, sizeof(b)), -EINVAL);
	m = Msg(AMIL_MWIRE_PING, 0);
	EXPECT_EQ(amil_mwire_encode(&m, b, AMIL_MWIRE_HDR_LEN - 1), -EMSGSIZE);
	EXPECT_EQ(amil_mwire_encode(nullptr, b, sizeof(b)), -EINVAL);
	EXPECT_EQ(amil_mwire_encode(&m, nullptr, sizeof(b)), -EINVAL);
}

// Every truncation of a valid message is rejected, never read past.
TEST(MembershipWire, EveryTruncationIsBadMessage)
{
	auto b = Encode(Msg(AMIL_MWIRE_ACK, 3));
	for (size_t len = 0; len < b.size(); len++) {
		std::vector<uint8_t> t(b.begin(), b.begin() + len);
		amil_mwire_msg d;
		// A heap copy of exactly @len bytes lets ASan catch an over-read.
		EXPECT_EQ(amil_mwire_decode(len ? t.data() : nullptr, len, kCluster, &d), -EBADMSG)
			<< "len " << len;
	}
}

TEST(MembershipWire, TrailingBytesAreBadMessage)
{
	auto b = Encode(Msg(AMIL_MWIRE_PING, 2));
	b.push_back(0);
	EXPECT_EQ(Decode(b), -EBADMSG);
}

struct Corruption {
	const char *what;
	size_t off;
	uint8_t value;
	int expect;
};

TEST(MembershipWire, EachCorruptFieldIsRejectedWithItsCode)
{
	// Offsets into a 2-update PING; update 0 starts at 44, update 1 at
	// 44 + 24 + 4 + 19 = 91.
	const Corruption cases[] = {
		{"magic hi", 0, 0x00, -EBADMSG},
		{"magic lo", 1, 0x44, -EBADMSG},
		{"version 0", 2, 0, -EPROTONOSUPPORT},
		{"version 2", 2, 2, -EPROTONOSUPPORT},
		{"type 0", 3, 0, -EBADMSG},
		{"type 5", 3, 5, -EBADMSG},
		{"type 255", 3, 255, -EBADMSG},
		{"n_updates over max", 4, AMIL_MWIRE_UPDATES_MAX + 1, -EBADMSG},
		{"n_updates more than present", 4, 3, -EBADMSG},
		{"n_updates fewer than present", 4, 1, -EBADMSG},  // trailing bytes
		{"flags", 5, 1, -EBADMSG},
		{"reserved hi", 6, 1, -EBADMSG},
		{"reserved lo", 7, 0x80, -EBADMSG},
		{"cluster id", 15, 0x09, -EACCES},
		{"upd0 state", 44 + 20, AMIL_MEMBER_STATE_MAX, -EBADMSG},
		{"upd0 name_len over max", 44 + 21, AMIL_MEMBERSHIP_NAME_MAX + 1, -EBADMSG},
		{"upd0 name_len longer", 44 + 21, 30, -EBADMSG},
		{"upd0 addr_len over max", 44 + 22, AMIL_MEMBERSHIP_ADDR_MAX + 1, -EBADMSG},
		{"upd0 addr_len 255", 44 + 22, 255, -EBADMSG},
		{"upd0 reserved", 44 + 23, 1, -EBADMSG},
		{"upd0 NUL in name", 44 + 24 + 1, 0, -EBADMSG},
		{"upd1 state", 91 + 20, 0xFF, -EBADMSG},
		{"upd1 reserved", 91 + 23, 0x10, -EBADMSG},
	};
	auto good = Encode(Msg(AMIL_MWIRE_PING, 2));
	ASSERT_EQ(good.size(), 138u);
	ASSERT_EQ(Decode(good), 0);
	for (const auto &c : cases) {
		auto b = good;
		ASSERT_LT(c.off, b.size());
		b[c.off] = c.value;
		EXPECT_EQ(Decode(b), c.expect) << c.what;
	}
}

TEST(MembershipWire, ZeroIdsAreRejected)
{
	auto good = Encode(Msg(AMIL_MWIRE_ACK, 1));
	auto b = good;
	memset(&b[16], 0, 8);  // sender
	EXPECT_EQ(Decode(b), -EBADMSG);
	b = good;
	memset(&b[24], 0, 8);  // target
	EXPECT_EQ(Decode(b), -EBADMSG);
	b = good;
	memset(&b[44], 0, 8);  // update node id
	EXPECT_EQ(Decode(b), -EBADMSG);
	b = good;
	memset(&b[32], 0, 8);  // origin 0 is fine: a direct probe
	EXPECT_EQ(Decode(b), 0);
}

TEST(MembershipWire, OtherClusterIsAccessDenied)
{
	auto b = Encode(Msg(AMIL_MWIRE_PING, 0));
	amil_mwire_msg d;
	EXPECT_EQ(amil_mwire_decode(b.data(), b.size(), kCluster + 1, &d), -EACCES);
	EXPECT_EQ(amil_mwire_decode(b.data(), b.size(), kCluster, nullptr), -EBADMSG);
}

// A deterministic random-bytes sweep: whatever decode accepts re-encodes to
// the same bytes (the format has one encoding per message).
TEST(MembershipWire, RandomMutationsNeverCrashAndAcceptedOnesRoundTrip)
{
	auto good = Encode(Msg(AMIL_MWIRE_NACK, 3));
	uint64_t x = 42;
	unsigned accepted = 0;
	for (int iter = 0; iter < 20000; iter++) {
		auto b = good;
		int flips = 1 + iter % 4;
		for (int f = 0; f < flips; f++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			b[(x >> 33) % b.size()] = (uint8_t)(x >> 17);
		}
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		if ((x >> 40) % 5 == 0)
			b.resize((x >> 20) % (b.size() + 1));
		amil_mwire_msg d;
		int rc = amil_mwire_decode(b.data(), b.size(), kCluster, &d);
		ASSERT_TRUE(rc == 0 || rc == -EBADMSG || rc == -EACCES || rc == -EPROTONOSUPPORT);
		if (rc == 0) {
			accepted++;
			std::vector<uint8_t> re(AMIL_MWIRE_MSG_MAX);
			int n = amil_mwire_encode(&d, re.data(), re.size());
			ASSERT_EQ(n, (int)b.size());
			re.resize(n);
			ASSERT_EQ(re, b);
		}
	}
	EXPECT_GT(accepted, 100u);  // the sweep did reach the accept path
}

TEST(MembershipWire, Names)
{
	EXPECT_STREQ(amil_mwire_type_name(AMIL_MWIRE_PING_REQ), "ping-req");
	EXPECT_STREQ(amil_mwire_type_name(0), "?");
	EXPECT_STREQ(amil_mwire_type_name(99), "?");
	EXPECT_STREQ(amil_member_state_name(AMIL_MEMBER_LEFT), "left");
	EXPECT_STREQ(amil_member_state_name(4), "?");
}

}  // namespace
