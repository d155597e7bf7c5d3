// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
//
// Discovery beacons (controlplane/beacon.h): codec, every malformed length,
// every flipped bit, wrong key / cluster / version, the replay window at its
// edges, a full replay table, and real sockets: broadcast and multicast on
// loopback, and (as root) broadcast, IPv4 and IPv6 multicast between the
// two ends of a veth pair in a private network namespace, with forged,
// foreign, garbage, replayed and stale datagrams injected.
//
// The namespace: when running as root the whole test process moves into a
// fresh network namespace (unshare(CLONE_NEWNET)) before any test runs.
// It has no name and disappears with the process, so nothing can leak,
// and nothing here touches the host's interfaces.  Addresses:
// 198.18.0.1/24 (va) and 198.18.0.2/24 (vb), groups 239.255.77.77 and
// ff15::4d41.  Without root, the loopback tests run in the host namespace
// and the veth tests are skipped.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <string>
#include <vector>

extern "C" {
#include "beacon.h"
}

namespace {

const uint64_t kCluster = 0xC1u;
const uint64_t kSec = 1000000000ull;
uint8_t kSecret[32];
uint8_t kOtherSecret[32];
bool g_netns = false;

uint64_t
realtime_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * kSec + (uint64_t)ts.tv_nsec;
}

class DiscEnv : public ::testing::Environment {
public:
	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		for (int i = 0; i < 32; i++) {
			kSecret[i] = (uint8_t)(i * 7 + 1);
			kOtherSecret[i] = (uint8_t)(i * 7 + 2);
		}
		if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0)
			return;
		// DAD off so the link-local addresses IPv6 multicast needs are
		// usable at once.
		int rc = system("ip link set lo up && "
				"sysctl -qw net.ipv6.conf.default.accept_dad=0 && "
				"ip link add va type veth peer name vb && "
				"ip addr add 198.18.0.1/24 brd 198.18.0.255 dev va && "
				"ip addr add 198.18.0.2/24 brd 198.18.0.255 dev vb && "
				"ip link set va up && ip link set vb up && "
				// Both ends live in this one namespace, so a datagram
				// from va's address arriving on vb has a local source
				// address: accept it instead of dropping it as martian.
				"sysctl -qw net.ipv4.conf.all.rp_filter=0 "
				"net.ipv4.conf.va.rp_filter=0 net.ipv4.conf.vb.rp_filter=0 "
				"net.ipv4.conf.va.accept_local=1 net.ipv4.conf.vb.accept_local=1");
		g_netns = rc == 0;
	}
};

::testing::Environment *const g_env = ::testing::AddGlobalTestEnvironment(new DiscEnv);

struct amil_beacon
sample(uint64_t node, int family = AF_INET)
{
	struct amil_beacon b;

	memset(&b, 0, sizeof(b));
	b.cluster_id = kCluster;
	b.node_id = node;
	b.incarnation = 0x1122334455667788ull;
	b.timestamp_ns = 1700000000ull * kSec + 123;
	for (int i = 0; i < AMIL_BEACON_NONCE_LEN; i++)
		b.nonce[i] = (uint8_t)(0xA0 + i);
	for (int i = 0; i < AMIL_BEACON_KEY_LEN; i++)
		b.curve_public[i] = (uint8_t)(0x40 + i);
	b.endpoint.family = (uint8_t)family;
	b.endpoint.port = 7400;
	if (family == AF_INET)
		inet_pton(AF_INET, "198.18.0.1", b.endpoint.addr);
	else
		inet_pton(AF_INET6, "2001:db8::1", b.endpoint.addr);
	strcpy(b.name, "riyadh-1");
	b.name_len = 8;
	return b;
}

std::vector<uint8_t>
encoded(const struct amil_beacon &b, const uint8_t *secret = kSecret)
{
	std::vector<uint8_t> v(AMIL_BEACON_LEN);

	EXPECT_EQ(amil_beacon_encode(v.data(), &b, secret), 0);
	return v;
}

// Recompute the MAC after editing bytes, to reach the checks behind it.
void
resign(std::vector<uint8_t> &v, const uint8_t *secret = kSecret)
{
	crypto_auth_hmacsha256(v.data() + AMIL_BEACON_MAC_OFF, v.data(), AMIL_BEACON_MAC_OFF,
			       secret);
}

int
decode(const std::vector<uint8_t> &v, struct amil_beacon *out, uint64_t cluster = kCluster,
       const uint8_t *secret = kSecret)
{
	return amil_beacon_decode_verify(v.data(), v.size(), cluster, secret, out);
}

} // namespace

// ------------------------------------------------------------------ codec

TEST(BeaconCodec, RoundTripIpv4AndIpv6)
{
	for (int fam : {AF_INET, AF_INET6}) {
		struct amil_beacon b = sample(42, fam), d;
		std::vector<uint8_t> v = encoded(b);

		ASSERT_EQ(decode(v, &d), 0);
		EXPECT_EQ(d.cluster_id, kCluster);
		EXPECT_EQ(d.node_id, 42u);
		EXPECT_EQ(d.incarnation, b.incarnation);
		EXPECT_EQ(d.timestamp_ns, b.timestamp_ns);
		EXPECT_EQ(memcmp(d.nonce, b.nonce, sizeof(d.nonce)), 0);
		EXPECT_EQ(memcmp(d.curve_public, b.curve_public, sizeof(d.curve_public)), 0);
		EXPECT_EQ(d.endpoint.family, fam);
		EXPECT_EQ(d.endpoint.port, 7400);
		EXPECT_EQ(memcmp(d.endpoint.addr, b.endpoint.addr, 16), 0);
		EXPECT_EQ(d.name_len, 8);
		EXPECT_STREQ(d.name, "riyadh-1");
	}
}

TEST(BeaconCodec, WireLayoutIsBigEndianAtDocumentedOffsets)
{
	struct amil_beacon b = sample(0x0102030405060708ull);
	std::vector<uint8_t> v = encoded(b);

	EXPECT_EQ(v[0], 0x41);
	EXPECT_EQ(v[1], 0x42);
	EXPECT_EQ(v[2], AMIL_BEACON_VERSION);
	EXPECT_EQ(v[16], 0x01);
	EXPECT_EQ(v[23], 0x08);
	EXPECT_EQ(v[88], 4);                       // IPv4
	EXPECT_EQ(v[90], 7400 >> 8);
	EXPECT_EQ(v[91], 7400 & 0xff);
	EXPECT_EQ(v[92], 198);
	EXPECT_EQ(v[108], 8);
	EXPECT_EQ(memcmp(&v[112], "riyadh-1", 8), 0);
	EXPECT_EQ(v[120], 0);                      // padding
}

TEST(BeaconCodec, MaxNameAndEmptyName)
{
	struct amil_beacon b = sample(7), d;

	memset(b.name, 'n', 32);
	b.name[32] = '\0';
	b.name_len = 32;
	ASSERT_EQ(decode(encoded(b), &d), 0);
	EXPECT_EQ(strlen(d.name), 32u);
	b.name_len = 0;
	ASSERT_EQ(decode(encoded(b), &d), 0);
	EXPECT_STREQ(d.name, "");
}

TEST(BeaconCodec, EncodeRefusesWhatDecodeWouldRefuse)
{
	uint8_t out[AMIL_BEACON_LEN];
	struct amil_beacon b;

	b = sample(0);
	EXPECT_EQ(amil_beacon_encode(out, &b, kSecret), -EINVAL);
	b = sample(1);
	b.endpoint.port = 0;
	EXPECT_EQ(amil_beacon_encode(out, &b, kSecret), -EINVAL);
	b = sample(1);
	b.endpoint.family = 99;
	EXPECT_EQ(amil_beacon_encode(out, &b, kSecret), -EINVAL);
	b = sample(1);
	b.endpoint.addr[10] = 1;                   // IPv4 with junk after [3]
	EXPECT_EQ(amil_beacon_encode(out, &b, kSecret), -EINVAL);
	b = sample(1);
	b.name_len = 33;
	EXPECT_EQ(amil_beacon_encode(out, &b, kSecret), -EINVAL);
	b = sample(1);
	b.name[3] = '\0';                          // NUL inside name_len
	EXPECT_EQ(amil_beacon_encode(out, &b, kSecret), -EINVAL);
}

TEST(BeaconCodec, EveryOtherLengthIsRefused)
{
	std::vector<uint8_t> v = encoded(sample(5));
	struct amil_beacon d;

	v.resize(AMIL_BEACON_LEN + 64, 0);
	EXPECT_EQ(amil_beacon_decode_verify(NULL, 0, kCluster, kSecret, &d), -EBADMSG);
	for (size_t len = 0; len <= v.size(); len++) {
		if (len == AMIL_BEACON_LEN)
			continue;
		EXPECT_EQ(amil_beacon_decode_verify(v.data(), len, kCluster, kSecret, &d), -EBADMSG)
			<< "len " << len;
	}
	EXPECT_EQ(amil_beacon_decode_verify(v.data(), AMIL_BEACON_LEN, kCluster, kSecret, &d), 0);
}

TEST(BeaconCodec, WrongKeyClusterVersionMagic)
{
	std::vector<uint8_t> v = encoded(sample(5));
	struct amil_beacon d;

	EXPECT_EQ(decode(v, &d, kCluster, kOtherSecret), -EPERM);
	EXPECT_EQ(decode(v, &d, kCluster + 1), -EPROTO);
	// Another cluster's beacon, properly signed with its own secret.
	struct amil_beacon o = sample(5);
	o.cluster_id = 0xD2;
	EXPECT_EQ(decode(encoded(o, kOtherSecret), &d), -EPROTO);
	// A future version with another length is "foreign", not "malformed".
	std::vector<uint8_t> v2 = v;
	v2[2] = 2;
	v2.resize(200);
	EXPECT_EQ(decode(v2, &d), -EPROTO);
	std::vector<uint8_t> v3 = v;
	v3[0] = 'X';
	EXPECT_EQ(decode(v3, &d), -EBADMSG);
}

// A bit flipped anywhere in the 176 bytes is refused, with the reason the
// byte's field implies.
TEST(BeaconCodec, FlippedBitAnywhereIsRefused)
{
	std::vector<uint8_t> v = encoded(sample(5));
	struct amil_beacon d;

	for (size_t i = 0; i < v.size(); i++) {
		for (int bit = 0; bit < 8; bit++) {
			std::vector<uint8_t> f = v;
			int rc;

			f[i] ^= (uint8_t)(1u << bit);
			rc = decode(f, &d);
			ASSERT_NE(rc, 0) << "byte " << i << " bit " << bit;
			if (i == 2 || (i >= 8 && i < 16))
				EXPECT_EQ(rc, -EPROTO) << "byte " << i;
			else if (i < 2)
				EXPECT_EQ(rc, -EBADMSG) << "byte " << i;
			else
				EXPECT_TRUE(rc == -EPERM || rc == -EBADMSG) << "byte " << i << " rc " << rc;
		}
	}
}

// Rules behind the MAC: with a valid MAC over bad content, decode still
// refuses (the sender has a bug, or the secret leaked to a fuzzer).
TEST(BeaconCodec, SignedButMalformedIsRefused)
{
	struct amil_beacon d;
	struct {
		size_t off;
		uint8_t val;
	} cases[] = {
		{3, 1},                 // flags
		{5, 1},                 // reserved0
		{89, 1},                // reserved1
		{110, 1},               // reserved2
		{88, 5},                // family
		{100, 1},               // IPv4 address tail
		{108, 33},              // name_len
		{113, 0},               // NUL inside the name
		{130, 'x'},             // padding after the name
	};

	for (const auto &c : cases) {
		std::vector<uint8_t> v = encoded(sample(5));

		v[c.off] = c.val;
		resign(v);
		EXPECT_EQ(decode(v, &d), -EBADMSG) << "offset " << c.off;
	}
	std::vector<uint8_t> v = encoded(sample(5));
	memset(&v[16], 0, 8);                      // node id 0
	resign(v);
	EXPECT_EQ(decode(v, &d), -EBADMSG);
	v = encoded(sample(5));
	memset(&v[90], 0, 2);                      // port 0
	resign(v);
	EXPECT_EQ(decode(v, &d), -EBADMSG);
}

// ------------------------------------------------------------------ replay

TEST(BeaconReplay, RejectsBadArguments)
{
	errno = 0;
	EXPECT_EQ(amil_beacon_replay_new(0, kSec), nullptr);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(amil_beacon_replay_new(16, 0), nullptr);
	EXPECT_EQ(amil_beacon_replay_new((1u << 20) + 1, kSec), nullptr);
	amil_beacon_replay_destroy(nullptr);
	struct amil_beacon_replay *r = nullptr;
	amil_beacon_replay_destroy(&r);
	EXPECT_EQ(r, nullptr);
}

TEST(BeaconReplay, WindowEdges)
{
	const uint64_t w = 30 * kSec, now = 1700000000ull * kSec;
	struct amil_beacon_replay *r = amil_beacon_replay_new(64, w);
	uint8_t n[16] = {1};

	ASSERT_NE(r, nullptr);
	n[1] = 1;
	EXPECT_EQ(amil_beacon_replay_check(r, now, 9, now - w, n), 0);
	n[1] = 2;
	EXPECT_EQ(amil_beacon_replay_check(r, now, 9, now - w - 1, n), -ESTALE);
	n[1] = 3;
	EXPECT_EQ(amil_beacon_replay_check(r, now, 9, now + w, n), 0);
	n[1] = 4;
	EXPECT_EQ(amil_beacon_replay_check(r, now, 9, now + w + 1, n), -ESTALE);
	// Extremes must not wrap around.
	EXPECT_EQ(amil_beacon_replay_check(r, now, 9, UINT64_MAX, n), -ESTALE);
	EXPECT_EQ(amil_beacon_replay_check(r, now, 9, 0, n), -ESTALE);
	EXPECT_EQ(amil_beacon_replay_check(r, 5, 9, UINT64_MAX - 1, n), -ESTALE);
	struct amil_beacon_replay_counters c;
	amil_beacon_replay_get_counters(r, &c);
	EXPECT_EQ(c.accepted, 2u);
	EXPECT_EQ(c.stale, 5u);
	amil_beacon_replay_destroy(&r);
	EXPECT_EQ(r, nullptr);
}

TEST(BeaconReplay, ReplayRefusedUntilItIsStale)
{
	const uint64_t w = 10 * kSec, t0 = 1700000000ull * kSec;
	struct amil_beacon_replay *r = amil_beacon_replay_new(64, w);
	uint8_t n[16] = {7, 7, 7};
	uint8_t n2[16] = {7, 7, 8};

	ASSERT_NE(r, nullptr);
	EXPECT_EQ(amil_beacon_replay_check(r, t0, 1, t0, n), 0);
	EXPECT_EQ(amil_beacon_replay_check(r, t0, 1, t0, n), -EALREADY);
	EXPECT_EQ(amil_beacon_replay_check(r, t0 + w, 1, t0, n), -EALREADY);  // last instant
	EXPECT_EQ(amil_beacon_replay_check(r, t0, 2, t0, n), 0);     // same nonce, other node
	EXPECT_EQ(amil_beacon_replay_check(r, t0, 1, t0, n2), 0);    // same node, other nonce
	EXPECT_EQ(amil_beacon_replay_live(r, t0), 3u);
	// One ns after the window the entry is gone and the beacon is stale,
	// never accepted again.
	EXPECT_EQ(amil_beacon_replay_check(r, t0 + w + 1, 1, t0, n), -ESTALE);
	EXPECT_EQ(amil_beacon_replay_live(r, t0 + w + 1), 0u);
	struct amil_beacon_replay_counters c;
	amil_beacon_replay_get_counters(r, &c);
	EXPECT_EQ(c.replayed, 2u);
	EXPECT_EQ(c.accepted, 3u);
	amil_beacon_replay_destroy(&r);
}

// When the table is full it refuses fresh beacons (counted) and keeps
// refusing replays of what it holds; once entries expire it accepts again.
TEST(BeaconReplay, FullTableRefusesRatherThanForgets)
{
	const uint64_t w = kSec, t0 = 1700000000ull * kSec;
	struct amil_beacon_replay *r = amil_beacon_replay_new(8, w);   // 16 slots
	uint8_t n[16] = {0};
	unsigned accepted = 0, full = 0;
	uint32_t i;

	ASSERT_NE(r, nullptr);
	for (i = 0; i < 200; i++) {
		memcpy(n, &i, sizeof(i));
		int rc = amil_beacon_replay_check(r, t0, 3, t0, n);
		if (rc == 0)
			accepted++;
		else if (rc == -ENOSPC)
			full++;
		else
			ADD_FAILURE() << "rc " << rc;
	}
	EXPECT_GE(accepted, 8u);
	EXPECT_LE(accepted, 16u);
	EXPECT_EQ(accepted + full, 200u);
	EXPECT_EQ(amil_beacon_replay_live(r, t0), accepted);
	// Every accepted nonce is still refused as a replay, none forgotten.
	unsigned replays = 0;
	for (i = 0; i < 200; i++) {
		memcpy(n, &i, sizeof(i));
		replays += amil_beacon_replay_check(r, t0, 3, t0, n) == -EALREADY;
	}
	EXPECT_EQ(replays, accepted);
	struct amil_beacon_replay_counters c;
	amil_beacon_replay_get_counters(r, &c);
	EXPECT_GE(c.full, (uint64_t)full);
	// After the window, fresh beacons fit again.
	i = 1000;
	memcpy(n, &i, sizeof(i));
	EXPECT_EQ(amil_beacon_replay_check(r, t0 + w + 1, 3, t0 + w + 1, n), 0);
	amil_beacon_replay_destroy(&r);
}

// ------------------------------------------------------------------ sockets

namespace {

struct SockPair {
	struct amil_beacon_sock *a = nullptr, *b = nullptr;
	~SockPair()
	{
		amil_beacon_sock_destroy(&a);
		amil_beacon_sock_destroy(&b);
	}
};

uint16_t
test_port()
{
	return (uint16_t)(20000 + (getpid() * 7 + rand()) % 20000);
}

struct amil_beacon_sock_config
sock_cfg(uint64_t self, enum amil_beacon_mode mode, const char *group, uint16_t port,
	 const char *ifname)
{
	struct amil_beacon_sock_config c;

	memset(&c, 0, sizeof(c));
	c.cluster_id = kCluster;
	c.self_id = self;
	c.secret = kSecret;
	c.mode = mode;
	c.group = group;
	c.port = port;
	c.ifname = ifname;
	c.ttl = 1;
	c.loop = true;
	c.window_ns = 30 * kSec;
	c.replay_capacity = 64;
	return c;
}

// Wait up to @ms for one accepted beacon.
int
recv_one(struct amil_beacon_sock *s, struct amil_beacon *out, int ms = 1000)
{
	struct pollfd p = {amil_beacon_sock_fd(s), POLLIN, 0};
	int rc = amil_beacon_recv(s, realtime_ns(), out, NULL);

	while (rc == -EAGAIN && ms > 0) {
		poll(&p, 1, 50);
		ms -= 50;
		rc = amil_beacon_recv(s, realtime_ns(), out, NULL);
	}
	return rc;
}

// Drain for @ms so every injected datagram has been counted.
void
drain(struct amil_beacon_sock *s, int ms = 300)
{
	struct amil_beacon out;

	for (int t = 0; t < ms; t += 50) {
		struct pollfd p = {amil_beacon_sock_fd(s), POLLIN, 0};

		poll(&p, 1, 50);
		while (amil_beacon_recv(s, realtime_ns(), &out, NULL) == 0)
			ADD_FAILURE() << "unexpected beacon from " << out.node_id;
	}
}

// A raw sender, standing for an attacker or another cluster on the segment.
void
inject(const char *group, uint16_t port, const char *ifname, const std::vector<uint8_t> &bytes)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (strchr(group, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		int idx = ifname ? (int)if_nametoindex(ifname) : 0;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, group, &s6->sin6_addr);
		len = sizeof(*s6);
		fd = socket(AF_INET6, SOCK_DGRAM, 0);
		ASSERT_GE(fd, 0);
		if (idx)
			setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		int one = 1;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, group, &s4->sin_addr);
		len = sizeof(*s4);
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		ASSERT_GE(fd, 0);
		setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
		if (ifname) {
			struct ip_mreqn mr;

			memset(&mr, 0, sizeof(mr));
			mr.imr_ifindex = (int)if_nametoindex(ifname);
			setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr));
			setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname));
		}
	}
	EXPECT_EQ(sendto(fd, bytes.data(), bytes.size(), 0, (struct sockaddr *)&ss, len),
		  (ssize_t)bytes.size());
	close(fd);
}

// One scenario on any transport: B hears A (and A drops its own beacon
// when it loops back); forged, foreign, garbage, replayed, stale and
// oversize datagrams are counted at B and never surface.
void
exchange(enum amil_beacon_mode mode, const char *group, const char *if_a, const char *if_b,
	 bool a_hears_itself)
{
	uint16_t port = test_port();
	SockPair p;
	struct amil_beacon_sock_config ca = sock_cfg(1, mode, group, port, if_a);
	struct amil_beacon_sock_config cb = sock_cfg(2, mode, group, port, if_b);
	struct amil_beacon me = sample(1), got;
	struct amil_beacon_counters c;

	p.a = amil_beacon_sock_new(&ca);
	ASSERT_NE(p.a, nullptr) << strerror(errno);
	p.b = amil_beacon_sock_new(&cb);
	ASSERT_NE(p.b, nullptr) << strerror(errno);

	ASSERT_EQ(amil_beacon_send(p.a, &me, realtime_ns()), 0);
	ASSERT_EQ(recv_one(p.b, &got), 0);
	EXPECT_EQ(got.node_id, 1u);
	EXPECT_STREQ(got.name, "riyadh-1");
	EXPECT_EQ(got.endpoint.port, 7400);
	if (a_hears_itself) {
		drain(p.a);
		amil_beacon_get_counters(p.a, &c);
		EXPECT_EQ(c.own_dropped, 1u);
		EXPECT_EQ(c.accepted, 0u);
	}
	amil_beacon_get_counters(p.a, &c);
	EXPECT_EQ(c.sent, 1u);

	// Injections, each must be counted under its reason at B.
	struct amil_beacon x = sample(3);
	x.timestamp_ns = realtime_ns();
	randombytes_buf(x.nonce, sizeof(x.nonce));
	std::vector<uint8_t> good = encoded(x);
	inject(group, port, if_a, encoded(x, kOtherSecret));       // forged: bad MAC
	struct amil_beacon f = x;
	f.cluster_id = 0xD2;
	inject(group, port, if_a, encoded(f, kOtherSecret));       // other cluster
	inject(group, port, if_a, std::vector<uint8_t>(AMIL_BEACON_LEN, 0x41));  // garbage
	inject(group, port, if_a, std::vector<uint8_t>(1500, 0));  // oversize
	struct amil_beacon s = x;
	s.timestamp_ns -= 3600 * kSec;
	inject(group, port, if_a, encoded(s));                     // stale
	drain(p.b);
	inject(group, port, if_a, good);                           // first: accepted
	ASSERT_EQ(recv_one(p.b, &got), 0);
	EXPECT_EQ(got.node_id, 3u);
	inject(group, port, if_a, good);                           // replay
	drain(p.b);

	amil_beacon_get_counters(p.b, &c);
	EXPECT_EQ(c.accepted, 2u);
	EXPECT_EQ(c.bad_mac_dropped, 1u);
	EXPECT_EQ(c.foreign_dropped, 1u);
	EXPECT_EQ(c.malformed_dropped, 2u);
	EXPECT_EQ(c.stale_dropped, 1u);
	EXPECT_EQ(c.replay_dropped, 1u);
	EXPECT_EQ(c.received, 8u);
	EXPECT_EQ(c.recv_errors, 0u);
}

} // namespace

TEST(BeaconSock, ConfigErrors)
{
	struct amil_beacon_sock_config c = sock_cfg(1, AMIL_BEACON_MULTICAST, "198.18.0.1", 7, NULL);

	errno = 0;
	EXPECT_EQ(amil_beacon_sock_new(&c), nullptr);    // not a group
	EXPECT_EQ(errno, EINVAL);
	c = sock_cfg(1, AMIL_BEACON_BROADCAST, "ff15::1", 7, NULL);
	EXPECT_EQ(amil_beacon_sock_new(&c), nullptr);    // no IPv6 broadcast
	c = sock_cfg(0, AMIL_BEACON_BROADCAST, "127.255.255.255", 7, NULL);
	EXPECT_EQ(amil_beacon_sock_new(&c), nullptr);    // node id 0
	c = sock_cfg(1, AMIL_BEACON_BROADCAST, "not-an-address", 7, NULL);
	EXPECT_EQ(amil_beacon_sock_new(&c), nullptr);
	c = sock_cfg(1, AMIL_BEACON_MULTICAST, "239.255.77.77", 7, "nosuchif0");
	errno = 0;
	EXPECT_EQ(amil_beacon_sock_new(&c), nullptr);
	EXPECT_EQ(errno, ENODEV);
	c = sock_cfg(1, AMIL_BEACON_BROADCAST, "127.255.255.255", 7, NULL);
	c.secret = NULL;
	EXPECT_EQ(amil_beacon_sock_new(&c), nullptr);
	amil_beacon_sock_destroy(nullptr);
}

TEST(BeaconSock, SendRefusesUnencodableSelf)
{
	struct amil_beacon_sock_config c =
		sock_cfg(1, AMIL_BEACON_BROADCAST, "127.255.255.255", test_port(), NULL);
	struct amil_beacon_sock *s = amil_beacon_sock_new(&c);
	struct amil_beacon me = sample(1);
	struct amil_beacon_counters k;

	ASSERT_NE(s, nullptr);
	me.endpoint.port = 0;
	EXPECT_EQ(amil_beacon_send(s, &me, realtime_ns()), -EINVAL);
	amil_beacon_get_counters(s, &k);
	EXPECT_EQ(k.send_errors, 1u);
	EXPECT_EQ(k.sent, 0u);
	amil_beacon_sock_destroy(&s);
	EXPECT_EQ(s, nullptr);
}

TEST(BeaconSock, LoopbackBroadcast)
{
	exchange(AMIL_BEACON_BROADCAST, "127.255.255.255", NULL, NULL, true);
}

TEST(BeaconSock, LoopbackMulticastIpv4)
{
	exchange(AMIL_BEACON_MULTICAST, "239.255.77.77", "lo", "lo", true);
}

TEST(BeaconSock, VethBroadcast)
{
	if (!g_netns)
		GTEST_SKIP() << "needs root for a private network namespace";
	exchange(AMIL_BEACON_BROADCAST, "198.18.0.255", "va", "vb", true);
}

TEST(BeaconSock, VethMulticastIpv4)
{
	if (!g_netns)
		GTEST_SKIP() << "needs root for a private network namespace";
	exchange(AMIL_BEACON_MULTICAST, "239.255.77.78", "va", "vb", false);
}

TEST(BeaconSock, VethMulticastIpv6)
{
	if (!g_netns)
		GTEST_SKIP() << "needs root for a private network namespace";
	exchange(AMIL_BEACON_MULTICAST, "ff15::4d41", "va", "vb", false);
}

// A flood of junk must not hold the caller: one recv() call reads a
// bounded number of datagrams and returns -EAGAIN with the rest waiting.
TEST(BeaconSock, RecvIsBoundedUnderFlood)
{
	uint16_t port = test_port();
	struct amil_beacon_sock_config c = sock_cfg(2, AMIL_BEACON_BROADCAST, "127.255.255.255",
						    port, NULL);
	struct amil_beacon_sock *s = amil_beacon_sock_new(&c);
	struct amil_beacon out;
	struct amil_beacon_counters k;

	ASSERT_NE(s, nullptr);
	for (int i = 0; i < 100; i++)
		inject("127.255.255.255", port, NULL, std::vector<uint8_t>(10, (uint8_t)i));
	usleep(100000);
	EXPECT_EQ(amil_beacon_recv(s, realtime_ns(), &out, NULL), -EAGAIN);
	amil_beacon_get_counters(s, &k);
	EXPECT_EQ(k.received, 64u);
	EXPECT_EQ(amil_beacon_recv(s, realtime_ns(), &out, NULL), -EAGAIN);
	amil_beacon_get_counters(s, &k);
	EXPECT_EQ(k.received, 100u);
	EXPECT_EQ(k.malformed_dropped, 100u);
	amil_beacon_sock_destroy(&s);
}
