// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Unit tests of the control plane's transport (controlplane/transport.c):
// CURVE connections admitted by the allow-list ZAP handler, datagrams boxed
// with the same keys (replay window, forgery), the allow-list and key files.
// Everything in one process on 127.0.0.1; each transport has its own ZeroMQ
// context (one ZAP handler per context).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <zmq.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "transport.h"

namespace {

int free_udp_tcp_port()
{
	for (int tries = 0; tries < 50; tries++) {
		int s = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in a = {};
		socklen_t l = sizeof(a);
		int port = -1;

		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    getsockname(s, (struct sockaddr *)&a, &l) == 0 &&
		    bind(u, (struct sockaddr *)&a, sizeof(a)) == 0)
			port = ntohs(a.sin_port);
		close(s);
		close(u);
		if (port > 0)
			return port;
	}
	return -1;
}

struct Node {
	uint64_t id;
	void *ctx = nullptr;
	amil_transport *t = nullptr;
	uint8_t pub[32], sec[32];
	std::string ep;
	std::vector<std::pair<uint64_t, std::string>> got;
};

void on_msg(void *ctx, uint64_t from, const uint8_t *buf, size_t len)
{
	static_cast<Node *>(ctx)->got.emplace_back(from, std::string((const char *)buf, len));
}

class Transport : public ::testing::Test {
protected:
	void TearDown() override
	{
		for (auto &n : nodes_) {
			amil_transport_destroy(&n.t);
			if (n.ctx)
				zmq_ctx_term(n.ctx);
		}
	}

	Node &add(uint64_t id)
	{
		char zp[41], zs[41];
		Node n;

		n.id = id;
		EXPECT_EQ(zmq_curve_keypair(zp, zs), 0);
		zmq_z85_decode(n.pub, zp);
		zmq_z85_decode(n.sec, zs);
		n.ep = "tcp://127.0.0.1:" + std::to_string(free_udp_tcp_port());
		nodes_.push_back(n);
		return nodes_.back();
	}

	// Start node @i allowing the node ids in @allowed.
	void start(size_t i, const std::vector<uint64_t> &allowed)
	{
		std::vector<amil_allow_entry> al;
		amil_transport_params p = {};
		char err[256] = "";
		Node &n = nodes_[i];

		for (uint64_t id : allowed)
			for (auto &o : nodes_)
				if (o.id == id) {
					amil_allow_entry e = {};
					e.node_id = id;
					memcpy(e.pub, o.pub, 32);
					al.push_back(e);
				}
		n.ctx = zmq_ctx_new();
		p.zmq_ctx = n.ctx;
		p.self_id = n.id;
		p.listen = n.ep.c_str();
		memcpy(p.public_key, n.pub, 32);
		memcpy(p.secret_key, n.sec, 32);
		p.allow = al.data();
		p.nb_allow = (unsigned)al.size();
		p.reconnect_ivl_ms = 20;
		n.t = amil_transport_new(&p, err, sizeof(err));
		ASSERT_NE(n.t, nullptr) << err;
	}

	void pump(int ms)
	{
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
		while (std::chrono::steady_clock::now() < end) {
			for (auto &n : nodes_)
				if (n.t)
					amil_transport_process(n.t, on_msg, &n);
			usleep(1000);
		}
	}

	amil_transport_counters counters(size_t i)
	{
		amil_transport_counters c;
		amil_transport_get_counters(nodes_[i].t, &c);
		return c;
	}

	std::vector<Node> nodes_;
};

TEST_F(Transport, AllowListedPeersTalkOverCurveAndDatagrams)
{
	add(1);
	add(2);
	nodes_.reserve(4);
	ASSERT_NO_FATAL_FAILURE(start(0, {1, 2}));
	ASSERT_NO_FATAL_FAILURE(start(1, {1, 2}));
	Node &a = nodes_[0], &b = nodes_[1];
	// CURVE: the first sends are dropped until the connection is up.
	for (int k = 0; k < 200 && b.got.empty(); k++) {
		amil_transport_send(a.t, 2, b.ep.c_str(), b.ep.size(), (const uint8_t *)"hello", 5);
		pump(10);
	}
	ASSERT_FALSE(b.got.empty()) << "nothing arrived over CURVE";
	EXPECT_EQ(b.got[0].first, 1u) << "attributed to the authenticated sender";
	EXPECT_EQ(b.got[0].second, "hello");
	EXPECT_GE(counters(1).zap_allowed, 1u);
	EXPECT_EQ(counters(1).zap_denied, 0u);

	b.got.clear();
	ASSERT_EQ(amil_transport_send_dgram(a.t, 2, b.ep.c_str(), b.ep.size(),
					    (const uint8_t *)"ping", 4),
		  0);
	pump(50);
	ASSERT_EQ(b.got.size(), 1u);
	EXPECT_EQ(b.got[0].first, 1u);
	EXPECT_EQ(b.got[0].second, "ping");
	// Not allow-listed, or ourselves: refused before anything is sent.
	EXPECT_EQ(amil_transport_send_dgram(a.t, 9, b.ep.c_str(), b.ep.size(),
					    (const uint8_t *)"x", 1),
		  -EPERM);
	EXPECT_EQ(amil_transport_send(a.t, 1, a.ep.c_str(), a.ep.size(), (const uint8_t *)"x", 1),
		  -EPERM);
	EXPECT_EQ(amil_transport_send(a.t, 2, "udp://x", 7, (const uint8_t *)"x", 1), -EINVAL);
}

TEST_F(Transport, KeyNotOnTheAllowListIsRefusedByZap)
{
	add(1);
	add(3);
	ASSERT_NO_FATAL_FAILURE(start(0, {1}));      // node 1 does not list 3
	ASSERT_NO_FATAL_FAILURE(start(1, {1, 3}));   // the intruder lists 1
	Node &a = nodes_[0], &c = nodes_[1];
	for (int k = 0; k < 100; k++) {
		amil_transport_send(c.t, 1, a.ep.c_str(), a.ep.size(), (const uint8_t *)"evil", 4);
		amil_transport_send_dgram(c.t, 1, a.ep.c_str(), a.ep.size(),
					  (const uint8_t *)"evil", 4);
		pump(10);
		if (counters(0).zap_denied > 0 && counters(0).dgram_rx_bad > 0)
			break;
	}
	EXPECT_TRUE(a.got.empty()) << "the intruder got a message through";
	EXPECT_GT(counters(0).zap_denied, 0u);
	EXPECT_GT(counters(0).dgram_rx_bad, 0u);
	EXPECT_EQ(counters(0).zap_allowed, 0u);
}

TEST_F(Transport, DatagramReplayAndForgeryAreRefused)
{
	add(1);
	add(2);
	ASSERT_NO_FATAL_FAILURE(start(0, {1, 2}));
	ASSERT_NO_FATAL_FAILURE(start(1, {1, 2}));
	Node &a = nodes_[0], &b = nodes_[1];
	// Capture what node 1 sends "to node 2" at an address we own.
	int cap = socket(AF_INET, SOCK_DGRAM, 0), out = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in ca = {}, bb = {};
	socklen_t cl = sizeof(ca);
	ca.sin_family = AF_INET;
	ca.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(cap, (struct sockaddr *)&ca, sizeof(ca)), 0);
	ASSERT_EQ(getsockname(cap, (struct sockaddr *)&ca, &cl), 0);
	std::string capep = "tcp://127.0.0.1:" + std::to_string(ntohs(ca.sin_port));
	std::vector<std::vector<uint8_t>> pkts;
	for (int k = 0; k < 3; k++) {
		uint8_t buf[2048];
		std::string m = "msg" + std::to_string(k);
		ASSERT_EQ(amil_transport_send_dgram(a.t, 2, capep.c_str(), capep.size(),
						    (const uint8_t *)m.data(), m.size()),
			  0);
		ssize_t n = recv(cap, buf, sizeof(buf), 0);
		ASSERT_GT(n, 0);
		pkts.emplace_back(buf, buf + n);
	}
	bb.sin_family = AF_INET;
	bb.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bb.sin_port = htons((uint16_t)std::stoi(b.ep.substr(b.ep.rfind(':') + 1)));
	auto deliver = [&](const std::vector<uint8_t> &p) {
		sendto(out, p.data(), p.size(), 0, (struct sockaddr *)&bb, sizeof(bb));
		pump(20);
	};
	// Out of order is fine (within the window), twice is not.
	deliver(pkts[2]);
	deliver(pkts[0]);
	deliver(pkts[0]);
	deliver(pkts[2]);
	deliver(pkts[1]);
	ASSERT_EQ(b.got.size(), 3u);
	EXPECT_EQ(b.got[0].second, "msg2");
	EXPECT_EQ(b.got[1].second, "msg0");
	EXPECT_EQ(b.got[2].second, "msg1");
	EXPECT_EQ(counters(1).dgram_rx_replay, 2u);
	// Any flipped bit: refused, and it does not move the window.
	for (size_t i = 0; i < pkts[1].size(); i += 7) {
		std::vector<uint8_t> f = pkts[1];
		f[i] ^= 0x10;
		deliver(f);
	}
	EXPECT_EQ(b.got.size(), 3u);
	EXPECT_GE(counters(1).dgram_rx_bad, pkts[1].size() / 7);
	close(cap);
	close(out);
}

TEST_F(Transport, HelloIsAnsweredWithAnAuthenticatedIdentity)
{
	add(1);
	add(2);
	add(7);
	ASSERT_NO_FATAL_FAILURE(start(0, {1, 2}));
	ASSERT_NO_FATAL_FAILURE(start(1, {1, 2}));
	ASSERT_NO_FATAL_FAILURE(start(2, {1, 2, 7}));   // 7 is not on 2's list
	struct Got {
		std::vector<std::pair<uint64_t, std::string>> v;
	} got1, got7;
	auto fn = [](void *ctx, uint64_t id, const char *ep) {
		static_cast<Got *>(ctx)->v.emplace_back(id, ep);
	};
	amil_transport_set_ident_fn(nodes_[0].t, fn, &got1);
	amil_transport_set_ident_fn(nodes_[2].t, fn, &got7);
	struct sockaddr_in sb = {};
	sb.sin_family = AF_INET;
	sb.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sb.sin_port = htons((uint16_t)std::stoi(nodes_[1].ep.substr(nodes_[1].ep.rfind(':') + 1)));
	ASSERT_EQ(amil_transport_hello(nodes_[0].t, (struct sockaddr *)&sb, sizeof(sb)), 0);
	ASSERT_EQ(amil_transport_hello(nodes_[2].t, (struct sockaddr *)&sb, sizeof(sb)), 0);
	pump(100);
	ASSERT_EQ(got1.v.size(), 1u);
	EXPECT_EQ(got1.v[0].first, 2u);
	EXPECT_EQ(got1.v[0].second, nodes_[1].ep);
	EXPECT_TRUE(got7.v.empty()) << "an asker not on the allow-list got an answer";
	EXPECT_EQ(counters(1).hello_rx, 2u);
	EXPECT_EQ(counters(1).hello_replies, 1u);
	// Unauthenticated hellos must not make a reflector: rate-limited.
	for (int k = 0; k < 200; k++)
		amil_transport_hello(nodes_[0].t, (struct sockaddr *)&sb, sizeof(sb));
	pump(100);
	EXPECT_GT(counters(1).hello_rate_limited, 100u);
	EXPECT_LE(counters(1).hello_replies, 25u);
}

std::string tmpdir()
{
	char t[] = "/tmp/amil-transport-XXXXXX";
	return mkdtemp(t) != nullptr ? t : "";
}

void write(const std::string &p, const std::string &s)
{
	FILE *f = fopen(p.c_str(), "w");
	ASSERT_NE(f, nullptr);
	fputs(s.c_str(), f);
	fclose(f);
}

TEST(AllowList, ParsesAndRefusesWithFileAndLine)
{
	std::string d = tmpdir(), p = d + "/allow.txt";
	amil_allow_entry e[4];
	char err[256];
	// Z85 keys with '#' inside must survive comment stripping (never as the
	// first character of a 5-character group: '#' is digit 84, above
	// 2^32 / 85^4): real keys, found by trying.
	std::string hash_in, other, third;
	for (int i = 0; i < 100000 && (hash_in.empty() || other.empty() || third.empty()); i++) {
		char zp[41], zs[41];
		zmq_curve_keypair(zp, zs);
		std::string k(zp);
		if (k.find('#') != std::string::npos && hash_in.empty())
			hash_in = k;
		else if (other.empty())
			other = k;
		else if (third.empty())
			third = k;
	}
	ASSERT_FALSE(hash_in.empty() || other.empty() || third.empty());
	const char *k1 = hash_in.c_str(), *k2 = other.c_str(), *k3 = third.c_str();

	write(p, std::string("# appliances\n") + k1 + " 1 jkt-1   # Jakarta\n\n" + k2 + " 2\n" + k3 +
			 " 3 sby\n");
	ASSERT_EQ(amil_allow_list_load(p.c_str(), e, 4, err, sizeof(err)), 3) << err;
	EXPECT_EQ(e[0].node_id, 1u);
	EXPECT_STREQ(e[0].name, "jkt-1");
	EXPECT_EQ(e[2].node_id, 3u);
	EXPECT_STREQ(e[2].name, "sby");

	write(p, std::string(k1) + " 1\n" + k2 + " 1\n");
	EXPECT_EQ(amil_allow_list_load(p.c_str(), e, 4, err, sizeof(err)), -EINVAL);
	EXPECT_NE(std::string(err).find("allow.txt:2: node id 1 listed twice"), std::string::npos) << err;
	write(p, std::string(k1) + " 1\n" + k1 + " 2\n");
	EXPECT_EQ(amil_allow_list_load(p.c_str(), e, 4, err, sizeof(err)), -EINVAL);
	EXPECT_NE(std::string(err).find(":2: key listed twice"), std::string::npos) << err;
	write(p, "short-key 1\n");
	EXPECT_EQ(amil_allow_list_load(p.c_str(), e, 4, err, sizeof(err)), -EINVAL);
	EXPECT_NE(std::string(err).find(":1: 'short-key' is not a 40-character Z85"), std::string::npos)
		<< err;
	write(p, std::string(k1) + " 0\n");
	EXPECT_EQ(amil_allow_list_load(p.c_str(), e, 4, err, sizeof(err)), -EINVAL);
	write(p, std::string(k1) + "\n");
	EXPECT_EQ(amil_allow_list_load(p.c_str(), e, 4, err, sizeof(err)), -EINVAL);
	write(p, std::string(k1) + " 1\n" + k2 + " 2\n");
	EXPECT_EQ(amil_allow_list_load(p.c_str(), e, 1, err, sizeof(err)), -EINVAL) << "over max";
	EXPECT_LT(amil_allow_list_load((d + "/missing").c_str(), e, 4, err, sizeof(err)), 0);
	std::filesystem::remove_all(d);
}

TEST(Keys, KeygenNeverOverwritesAndSecretsStayPrivate)
{
	std::string d = tmpdir();
	char z[41], err[256];
	uint8_t pub[32], sec[32], derived[32];
	struct stat st;

	ASSERT_EQ(amil_curve_keygen(d.c_str(), z, err, sizeof(err)), 0) << err;
	EXPECT_EQ(strlen(z), 40u);
	ASSERT_EQ(stat((d + "/curve.key").c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0600u);
	EXPECT_EQ(amil_curve_keygen(d.c_str(), z, err, sizeof(err)), -EEXIST);
	ASSERT_EQ(amil_curve_key_load((d + "/curve.key").c_str(), true, sec, err, sizeof(err)), 0) << err;
	ASSERT_EQ(amil_curve_key_load((d + "/curve.pub").c_str(), false, pub, err, sizeof(err)), 0) << err;
	char zs[41], zd[41];
	zmq_z85_encode(zs, sec, 32);
	ASSERT_EQ(zmq_curve_public(zd, zs), 0);
	zmq_z85_decode(derived, zd);
	EXPECT_EQ(memcmp(derived, pub, 32), 0) << "the pair does not match";
	chmod((d + "/curve.key").c_str(), 0640);
	EXPECT_EQ(amil_curve_key_load((d + "/curve.key").c_str(), true, sec, err, sizeof(err)), -EPERM);
	write(d + "/bad.pub", "not-z85\n");
	EXPECT_EQ(amil_curve_key_load((d + "/bad.pub").c_str(), false, pub, err, sizeof(err)), -EINVAL);
	std::filesystem::remove_all(d);
}

} // namespace
