// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
//
// DNS discovery (controlplane/dns_disc.h): the answer parser on handmade
// messages (compression, every truncation, bad rdata), and the poller
// against a tiny DNS server in this test on 127.0.0.1:<random port> that
// answers A, AAAA and SRV and can be told to answer SERVFAIL or NXDOMAIN,
// stay silent, send garbage or a wrong id, or leave a record out.
//
// The test drives both sides from one thread: run() sends the queries, the
// server answers what is waiting, run() reads the answers.  Time is passed
// in explicitly, so timeouts and rounds are tested without sleeping; the
// wall-clock cost of every run() is measured to check that it never
// blocks.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

extern "C" {
#include "dns_disc.h"
}

namespace {

const uint64_t kSec = 1000000000ull;
const uint64_t kMs = 1000000ull;

uint64_t
mono_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * kSec + (uint64_t)ts.tv_nsec;
}

// ------------------------------------------------------------ message builder

void
put16(std::vector<uint8_t> &m, uint16_t v)
{
	m.push_back((uint8_t)(v >> 8));
	m.push_back((uint8_t)v);
}

void
put32(std::vector<uint8_t> &m, uint32_t v)
{
	put16(m, (uint16_t)(v >> 16));
	put16(m, (uint16_t)v);
}

void
put_name(std::vector<uint8_t> &m, const std::string &name)
{
	size_t start = 0;

	if (name == ".") {
		m.push_back(0);     // the root
		return;
	}
	while (start < name.size()) {
		size_t dot = name.find('.', start);
		if (dot == std::string::npos)
			dot = name.size();
		m.push_back((uint8_t)(dot - start));
		m.insert(m.end(), name.begin() + (long)start, name.begin() + (long)dot);
		start = dot + 1;
	}
	m.push_back(0);
}

struct Rec {
	uint16_t type;
	std::string owner;        // "" = compression pointer to the question
	std::string addr;         // A / AAAA text
	uint16_t prio, weight, port;
	std::string target;       // SRV
};

Rec
A(const std::string &ip, const std::string &owner = "")
{
	return Rec{ns_t_a, owner, ip, 0, 0, 0, ""};
}

Rec
AAAA(const std::string &ip, const std::string &owner = "")
{
	return Rec{ns_t_aaaa, owner, ip, 0, 0, 0, ""};
}

Rec
SRV(uint16_t port, const std::string &target)
{
	return Rec{ns_t_srv, "", "", 10, 50, port, target};
}

void
put_rec(std::vector<uint8_t> &m, const Rec &r)
{
	if (r.owner.empty())
		put16(m, 0xC00C);   // pointer to the question name
	else
		put_name(m, r.owner);
	put16(m, r.type);
	put16(m, ns_c_in);
	put32(m, 30);
	if (r.type == ns_t_a) {
		uint8_t a[4];
		inet_pton(AF_INET, r.addr.c_str(), a);
		put16(m, 4);
		m.insert(m.end(), a, a + 4);
	} else if (r.type == ns_t_aaaa) {
		uint8_t a[16];
		inet_pton(AF_INET6, r.addr.c_str(), a);
		put16(m, 16);
		m.insert(m.end(), a, a + 16);
	} else {
		std::vector<uint8_t> t;
		put_name(t, r.target);
		put16(m, (uint16_t)(6 + t.size()));
		put16(m, r.prio);
		put16(m, r.weight);
		put16(m, r.port);
		m.insert(m.end(), t.begin(), t.end());
	}
}

std::vector<uint8_t>
response(uint16_t id, const std::string &qname, uint16_t qtype, uint8_t rcode,
	 const std::vector<Rec> &an, const std::vector<Rec> &ar = {}, bool tc = false)
{
	std::vector<uint8_t> m;

	put16(m, id);
	m.push_back((uint8_t)(0x81 | (tc ? 0x02 : 0)));   // QR, RD (+TC)
	m.push_back((uint8_t)(0x80 | rcode));             // RA, rcode
	put16(m, 1);
	put16(m, (uint16_t)an.size());
	put16(m, 0);
	put16(m, (uint16_t)ar.size());
	put_name(m, qname);
	put16(m, qtype);
	put16(m, ns_c_in);
	for (const Rec &r : an)
		put_rec(m, r);
	for (const Rec &r : ar)
		put_rec(m, r);
	return m;
}

// ------------------------------------------------------------ test server

enum class Mode { Normal, ServFail, NxDomain, Silent, Garbage, WrongId, Truncated };

struct Query {
	uint16_t id;
	std::string name;
	uint16_t type;
};

class DnsServer {
public:
	DnsServer()
	{
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);

		fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bind(fd_, (struct sockaddr *)&sa, sizeof(sa));
		getsockname(fd_, (struct sockaddr *)&sa, &len);
		port_ = ntohs(sa.sin_port);
		addr_ = "127.0.0.1:" + std::to_string(port_);
	}
	~DnsServer() { close(fd_); }

	const char *addr() const { return addr_.c_str(); }

	// Records answered for (name, type); the SRV additional section too.
	std::map<std::pair<std::string, uint16_t>, std::vector<Rec>> zone;
	std::map<std::string, std::vector<Rec>> glue;
	Mode mode = Mode::Normal;
	std::vector<Query> seen;

	// Answer everything waiting (waiting up to @ms for the first one).
	int serve(int ms = 200)
	{
		struct pollfd p = {fd_, POLLIN, 0};
		int n = 0;

		poll(&p, 1, ms);
		for (;;) {
			uint8_t buf[512];
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t len = recvfrom(fd_, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

			if (len < 0)
				break;
			n++;
			Query q = parse_query(buf, (size_t)len);
			seen.push_back(q);
			std::vector<uint8_t> out = answer(q);
			if (!out.empty())
				sendto(fd_, out.data(), out.size(), 0, (struct sockaddr *)&from, fl);
		}
		return n;
	}

private:
	static Query parse_query(const uint8_t *b, size_t len)
	{
		Query q{0, "", 0};
		size_t pos = 12;

		EXPECT_GE(len, 17u);
		q.id = (uint16_t)(b[0] << 8 | b[1]);
		EXPECT_EQ(b[2] & 0x80, 0);               // a query
		EXPECT_EQ(b[11], 1);                     // ARCOUNT 1: EDNS OPT
		while (pos < len && b[pos] != 0) {
			if (!q.name.empty())
				q.name += '.';
			q.name.append((const char *)b + pos + 1, b[pos]);
			pos += 1 + b[pos];
		}
		pos++;
		q.type = (uint16_t)(b[pos] << 8 | b[pos + 1]);
		return q;
	}

	std::vector<uint8_t> answer(const Query &q)
	{
		switch (mode) {
		case Mode::Silent:
			return {};
		case Mode::ServFail:
			return response(q.id, q.name, q.type, ns_r_servfail, {});
		case Mode::NxDomain:
			return response(q.id, q.name, q.type, ns_r_nxdomain, {});
		case Mode::Garbage: {
			std::vector<uint8_t> g(40, 0xEE);
			g[0] = (uint8_t)(q.id >> 8);
			g[1] = (uint8_t)q.id;
			return g;
		}
		case Mode::WrongId:
			return response((uint16_t)(q.id + 1), q.name, q.type, 0,
					zone[{q.name, q.type}]);
		default:
			break;
		}
		std::vector<Rec> an = zone[{q.name, q.type}], ar;
		if (q.type == ns_t_srv)
			for (const Rec &s : an)
				for (const Rec &g : glue[s.target])
					ar.push_back(g);
		return response(q.id, q.name, q.type, 0, an, ar, mode == Mode::Truncated);
	}

	int fd_ = -1;
	uint16_t port_ = 0;
	std::string addr_;
};

const char kName[] = "amil.amil.svc.cluster.local";

struct amil_dns_disc_config
cfg(const DnsServer &srv, unsigned kinds)
{
	struct amil_dns_disc_config c;

	memset(&c, 0, sizeof(c));
	c.name = kName;
	c.kinds = kinds;
	c.port = 7400;
	c.interval_ns = 5 * kSec;
	c.timeout_ns = 500 * kMs;
	c.attempts = 2;
	c.nameserver = srv.addr();
	return c;
}

// Run one exchange: queries out, answers in, until nothing is in flight
// (or @rounds exchanges).  Checks the wall-clock bound of every run().
void
pump(struct amil_dns_disc *d, DnsServer &srv, uint64_t now, int rounds = 6)
{
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = mono_ns();
		amil_dns_disc_run(d, now);
		EXPECT_LT(mono_ns() - t0, 50 * kMs) << "run() must not block";
		if (!amil_dns_disc_busy(d))
			return;
		if (srv.serve() == 0)
			return;
		struct pollfd p = {amil_dns_disc_fd(d), POLLIN, 0};
		poll(&p, 1, 200);
	}
}

std::string
ep_text(const struct amil_disc_endpoint &ep)
{
	char b[INET6_ADDRSTRLEN];

	inet_ntop(ep.family, ep.addr, b, sizeof(b));
	return (ep.family == AF_INET6 ? "[" + std::string(b) + "]" : std::string(b)) + ":" +
	       std::to_string(ep.port);
}

std::vector<std::string>
endpoints(const struct amil_dns_disc *d)
{
	std::vector<std::string> v;

	amil_dns_disc_foreach(d, [](void *ctx, const struct amil_dns_disc_entry *e) {
		static_cast<std::vector<std::string> *>(ctx)->push_back(ep_text(e->ep));
		return 0;
	}, &v);
	std::sort(v.begin(), v.end());
	return v;
}

struct amil_disc_endpoint
ep4(const char *ip, uint16_t port)
{
	struct amil_disc_endpoint e;

	memset(&e, 0, sizeof(e));
	e.family = AF_INET;
	e.port = port;
	inet_pton(AF_INET, ip, e.addr);
	return e;
}

struct amil_dns_disc_counters
counters(const struct amil_dns_disc *d)
{
	struct amil_dns_disc_counters c;

	amil_dns_disc_get_counters(d, &c);
	return c;
}

} // namespace

// ------------------------------------------------------------------ parser

TEST(DnsParse, AddressesAndSrvWithCompression)
{
	std::vector<uint8_t> m = response(0x1234, "svc.example", ns_t_srv, 0,
					  {SRV(7400, "n1.svc.example"), SRV(7401, ".")},
					  {A("198.18.0.1", "n1.svc.example"),
					   AAAA("2001:db8::1", "N1.SVC.example")});
	static struct amil_dns_answer a;

	ASSERT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), 0);
	EXPECT_EQ(a.id, 0x1234);
	EXPECT_EQ(a.rcode, 0);
	EXPECT_FALSE(a.truncated);
	EXPECT_EQ(a.qtype, ns_t_srv);
	EXPECT_STREQ(a.qname, "svc.example");
	ASSERT_EQ(a.n_rr, 4u);
	EXPECT_EQ(a.rr[0].type, ns_t_srv);
	EXPECT_EQ(a.rr[0].section, 1);
	EXPECT_EQ(a.rr[0].port, 7400);
	EXPECT_EQ(a.rr[0].priority, 10);
	EXPECT_EQ(a.rr[0].weight, 50);
	EXPECT_STREQ(a.rr[0].owner, "svc.example");
	EXPECT_STREQ(a.rr[0].target, "n1.svc.example");
	EXPECT_STREQ(a.rr[1].target, "");          // "." = no service
	EXPECT_EQ(a.rr[2].type, ns_t_a);
	EXPECT_EQ(a.rr[2].section, 3);
	EXPECT_EQ(a.rr[2].addr[0], 198);
	EXPECT_STREQ(a.rr[3].owner, "n1.svc.example");   // lower-cased
}

TEST(DnsParse, EveryTruncationIsMalformed)
{
	std::vector<uint8_t> m = response(7, "svc.example", ns_t_srv, 0,
					  {SRV(7400, "n1.svc.example")},
					  {A("198.18.0.1", "n1.svc.example")});
	static struct amil_dns_answer a;

	for (size_t len = 0; len < m.size(); len++)
		EXPECT_EQ(amil_dns_parse_answer(m.data(), len, &a), -EBADMSG) << "len " << len;
	EXPECT_EQ(amil_dns_parse_answer(NULL, 0, &a), -EBADMSG);
	// Trailing bytes after the last record are refused too.
	m.push_back(0);
	EXPECT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), -EBADMSG);
}

TEST(DnsParse, BadHeadersAndRdata)
{
	static struct amil_dns_answer a;
	std::vector<uint8_t> m;

	m = response(7, "x.example", ns_t_a, 0, {A("198.18.0.1")});
	m[2] &= 0x7f;                               // QR clear: a query
	EXPECT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), -EBADMSG);
	m = response(7, "x.example", ns_t_a, 0, {A("198.18.0.1")});
	m[2] |= 0x10;                               // opcode 2 (STATUS)
	EXPECT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), -EBADMSG);
	m = response(7, "x.example", ns_t_a, 0, {});
	m[5] = 0;                                   // no question
	m.resize(12);
	EXPECT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), -EBADMSG);

	// A record with rdlength 5 (one byte added at the end, length patched).
	m = response(7, "x.example", ns_t_a, 0, {A("198.18.0.1")});
	m.push_back(9);
	m[m.size() - 6] = 5;
	EXPECT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), -EBADMSG);
	// SRV whose target runs past its rdata: rdlength one short.
	m = response(7, "x.example", ns_t_srv, 0, {SRV(1, "t.example")});
	size_t rdlen_off = m.size() - (6 + 11) - 2;
	ASSERT_EQ(m[rdlen_off + 1], 17);
	m[rdlen_off + 1] = 16;
	m.pop_back();
	EXPECT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), -EBADMSG);
	// A compression pointer loop in an owner name.
	m = response(7, "x.example", ns_t_a, 0, {A("198.18.0.1")});
	size_t rr = 12 + 11 + 4;
	m[rr] = 0xC0;
	m[rr + 1] = (uint8_t)rr;
	EXPECT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), -EBADMSG);
}

TEST(DnsParse, OtherTypesAreSkippedNotFatal)
{
	static struct amil_dns_answer a;
	std::vector<uint8_t> m = response(7, "x.example", ns_t_a, 0, {A("198.18.0.1")});

	m[12 + 11 + 4 + 3] = ns_t_txt;              // the A record becomes TXT
	ASSERT_EQ(amil_dns_parse_answer(m.data(), m.size(), &a), 0);
	EXPECT_EQ(a.n_rr, 0u);
	EXPECT_EQ(a.n_skipped, 1u);
}

// ------------------------------------------------------------------ poller

TEST(DnsDisc, ConfigErrors)
{
	DnsServer srv;
	struct amil_dns_disc_config c;
	const char *bad_names[] = {"", ".", "a..b", "-.", nullptr};
	std::string long_label(64, 'a');

	for (const char **n = bad_names; *n; n++) {
		c = cfg(srv, AMIL_DNS_A);
		c.name = *n;
		if (strcmp(*n, "-.") == 0)
			continue;                   // a legal (if odd) name
		errno = 0;
		EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr) << *n;
		EXPECT_EQ(errno, EINVAL);
	}
	c = cfg(srv, AMIL_DNS_A);
	c.name = long_label.c_str();
	EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr);
	c = cfg(srv, 0);
	EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr);
	c = cfg(srv, 8);
	EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr);
	c = cfg(srv, AMIL_DNS_A);
	c.port = 0;
	EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr);
	for (const char *ns : {"127.0.0.1:0", "127.0.0.1:65536", "1.2.3", "[::1", "[::1]x",
			       "host.example:53", "127.0.0.1:"}) {
		c = cfg(srv, AMIL_DNS_A);
		c.nameserver = ns;
		errno = 0;
		EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr) << ns;
		EXPECT_EQ(errno, EINVAL) << ns;
	}
	// SRV alone needs no port.
	c = cfg(srv, AMIL_DNS_SRV);
	c.port = 0;
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	EXPECT_NE(d, nullptr);
	amil_dns_disc_destroy(&d);
	EXPECT_EQ(d, nullptr);
	amil_dns_disc_destroy(nullptr);
}

TEST(DnsDisc, ResolvConf)
{
	DnsServer srv;
	char path[] = "/tmp/amil-resolv-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	const char text[] = "# test\nsearch example\nnameserver fe80::1%eth0\nnameserver 127.0.0.1\n";
	ASSERT_EQ(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);

	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	c.nameserver = NULL;
	c.resolv_conf = path;
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	EXPECT_NE(d, nullptr);
	amil_dns_disc_destroy(&d);

	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "search x\n", 9), 9);
	close(fd);
	errno = 0;
	EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr);
	EXPECT_EQ(errno, ENOENT);
	unlink(path);
	c.resolv_conf = "/nonexistent/resolv.conf";
	EXPECT_EQ(amil_dns_disc_new(&c, 0), nullptr);
}

TEST(DnsDisc, AAndAaaaGiveEndpointsOnTheConfiguredPort)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.1"), A("198.18.0.2")};
	srv.zone[{kName, ns_t_aaaa}] = {AAAA("2001:db8::1")};
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A | AMIL_DNS_AAAA);
	std::vector<std::string> added;
	c.on_add = [](void *ctx, const struct amil_disc_endpoint *ep) {
		static_cast<std::vector<std::string> *>(ctx)->push_back(ep_text(*ep));
	};
	c.ctx = &added;
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 1000);
	ASSERT_NE(d, nullptr);

	EXPECT_EQ(amil_dns_disc_next_deadline_ns(d), 1000u);
	pump(d, srv, 1000);
	std::vector<std::string> want = {"198.18.0.1:7400", "198.18.0.2:7400",
					 "[2001:db8::1]:7400"};
	EXPECT_EQ(endpoints(d), want);
	std::sort(added.begin(), added.end());
	EXPECT_EQ(added, want);
	struct amil_dns_disc_counters k = counters(d);
	EXPECT_EQ(k.rounds, 1u);
	EXPECT_EQ(k.queries, 2u);
	EXPECT_EQ(k.answers, 2u);
	EXPECT_EQ(k.records, 3u);
	EXPECT_EQ(k.endpoints_added, 3u);
	EXPECT_EQ(k.failed + k.malformed + k.mismatched + k.timeouts, 0u);
	// Idle until the next round, interval after the first one started.
	EXPECT_FALSE(amil_dns_disc_busy(d));
	EXPECT_EQ(amil_dns_disc_next_deadline_ns(d), 1000u + 5 * kSec);
	amil_dns_disc_run(d, 1000 + 4 * kSec);
	EXPECT_FALSE(amil_dns_disc_busy(d));
	amil_dns_disc_destroy(&d);
}

// The point of the module: an endpoint missing from one answer stays.
TEST(DnsDisc, UnionKeepsWhatOneAnswerLacks)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.1"), A("198.18.0.2"), A("198.18.0.3")};
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	int adds = 0;
	c.on_add = [](void *ctx, const struct amil_disc_endpoint *) { ++*static_cast<int *>(ctx); };
	c.ctx = &adds;
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);
	const uint64_t t1 = 10 * kSec, t2 = t1 + 5 * kSec, t3 = t2 + 5 * kSec;

	pump(d, srv, t1);
	EXPECT_EQ(amil_dns_disc_count(d), 3u);
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.1"), A("198.18.0.2")};    // .3 dropped
	pump(d, srv, t2);
	EXPECT_EQ(amil_dns_disc_count(d), 3u);
	struct amil_dns_disc_entry e;
	struct amil_disc_endpoint three = ep4("198.18.0.3", 7400), one = ep4("198.18.0.1", 7400);
	ASSERT_EQ(amil_dns_disc_lookup(d, &three, &e), 0);
	EXPECT_EQ(e.first_seen_ns, t1);
	EXPECT_EQ(e.last_seen_ns, t1);          // not refreshed
	ASSERT_EQ(amil_dns_disc_lookup(d, &one, &e), 0);
	EXPECT_EQ(e.last_seen_ns, t2);
	EXPECT_EQ(adds, 3);

	// An empty answer (NOERROR, no records) removes nothing either.
	srv.zone[{kName, ns_t_a}] = {};
	pump(d, srv, t3);
	EXPECT_EQ(amil_dns_disc_count(d), 3u);

	// The daemon forgets .3; when DNS lists it again, it is new again.
	EXPECT_EQ(amil_dns_disc_forget(d, &three), 0);
	EXPECT_EQ(amil_dns_disc_forget(d, &three), -ENOENT);
	EXPECT_EQ(amil_dns_disc_lookup(d, &three, &e), -ENOENT);
	EXPECT_EQ(amil_dns_disc_count(d), 2u);
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.3")};
	pump(d, srv, t3 + 5 * kSec);
	EXPECT_EQ(amil_dns_disc_count(d), 3u);
	EXPECT_EQ(adds, 4);
	EXPECT_EQ(counters(d).rounds, 4u);
	amil_dns_disc_destroy(&d);
}

TEST(DnsDisc, SrvWithGlueUsesSrvPorts)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_srv}] = {SRV(7401, "p1.amil.svc.cluster.local"),
				       SRV(7402, "p2.amil.svc.cluster.local"),
				       SRV(7403, ".")};
	srv.glue["p1.amil.svc.cluster.local"] = {A("198.18.0.11", "p1.amil.svc.cluster.local")};
	srv.glue["p2.amil.svc.cluster.local"] = {AAAA("2001:db8::12", "p2.amil.svc.cluster.local")};
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_SRV);
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	pump(d, srv, 0);
	std::vector<std::string> want = {"198.18.0.11:7401", "[2001:db8::12]:7402"};
	EXPECT_EQ(endpoints(d), want);
	EXPECT_EQ(counters(d).queries, 1u);     // glue: no follow-up queries
	amil_dns_disc_destroy(&d);
}

TEST(DnsDisc, SrvWithoutGlueAsksForTheTargets)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_srv}] = {SRV(7401, "p1.example"), SRV(7402, "p2.example")};
	srv.zone[{"p1.example", ns_t_a}] = {A("198.18.0.21", "p1.example")};
	srv.zone[{"p2.example", ns_t_aaaa}] = {AAAA("2001:db8::22", "p2.example")};
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_SRV);
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	pump(d, srv, 0);
	std::vector<std::string> want = {"198.18.0.21:7401", "[2001:db8::22]:7402"};
	EXPECT_EQ(endpoints(d), want);
	struct amil_dns_disc_counters k = counters(d);
	EXPECT_EQ(k.queries, 5u);               // SRV + A/AAAA for two targets
	EXPECT_EQ(k.answers, 5u);
	EXPECT_FALSE(amil_dns_disc_busy(d));
	amil_dns_disc_destroy(&d);
}

TEST(DnsDisc, ServfailRetriesThenFails)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.1")};
	srv.mode = Mode::ServFail;
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	pump(d, srv, 0);
	struct amil_dns_disc_counters k = counters(d);
	EXPECT_EQ(k.servfail, 2u);              // both attempts
	EXPECT_EQ(k.retries, 1u);
	EXPECT_EQ(k.failed, 1u);
	EXPECT_EQ(amil_dns_disc_count(d), 0u);
	EXPECT_FALSE(amil_dns_disc_busy(d));
	// The server recovers; the next round finds the endpoint.
	srv.mode = Mode::Normal;
	pump(d, srv, 5 * kSec);
	EXPECT_EQ(amil_dns_disc_count(d), 1u);
	amil_dns_disc_destroy(&d);
}

TEST(DnsDisc, NxdomainFailsWithoutRetry)
{
	DnsServer srv;
	srv.mode = Mode::NxDomain;
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A | AMIL_DNS_SRV);
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	pump(d, srv, 0);
	struct amil_dns_disc_counters k = counters(d);
	EXPECT_EQ(k.nxdomain, 2u);
	EXPECT_EQ(k.retries, 0u);
	EXPECT_EQ(k.failed, 2u);
	amil_dns_disc_destroy(&d);
}

// A silent server costs timeouts, never a blocked loop: run() returns at
// once, the deadline says when to come back, and after the last attempt
// the query is given up.
TEST(DnsDisc, TimeoutsAreBoundedAndNonBlocking)
{
	DnsServer srv;
	srv.mode = Mode::Silent;
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	c.timeout_ns = 300 * kMs;
	c.attempts = 3;
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);
	uint64_t now = 0;

	for (int attempt = 1; attempt <= 3; attempt++) {
		uint64_t t0 = mono_ns();
		amil_dns_disc_run(d, now);
		EXPECT_LT(mono_ns() - t0, 20 * kMs);
		EXPECT_TRUE(amil_dns_disc_busy(d));
		EXPECT_EQ(srv.serve(), 1);              // the attempt went out
		EXPECT_EQ(amil_dns_disc_next_deadline_ns(d), now + 300 * kMs);
		amil_dns_disc_run(d, now + 299 * kMs);  // not yet
		EXPECT_EQ(counters(d).timeouts, (uint64_t)attempt - 1);
		now += 300 * kMs;
	}
	amil_dns_disc_run(d, now);
	struct amil_dns_disc_counters k = counters(d);
	EXPECT_EQ(k.timeouts, 3u);
	EXPECT_EQ(k.retries, 2u);
	EXPECT_EQ(k.failed, 1u);
	EXPECT_EQ(k.queries, 3u);
	EXPECT_FALSE(amil_dns_disc_busy(d));
	EXPECT_EQ(amil_dns_disc_next_deadline_ns(d), 5 * kSec);  // next round
	// Every attempt carried a fresh id.
	ASSERT_EQ(srv.seen.size(), 3u);
	EXPECT_NE(srv.seen[0].id, srv.seen[1].id);
	EXPECT_NE(srv.seen[1].id, srv.seen[2].id);
	amil_dns_disc_destroy(&d);
}

TEST(DnsDisc, GarbageAndWrongIdAreCountedAndIgnored)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.1")};
	srv.mode = Mode::Garbage;
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	c.attempts = 1;
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	pump(d, srv, 0, 2);
	EXPECT_EQ(counters(d).malformed, 1u);
	EXPECT_TRUE(amil_dns_disc_busy(d));      // still waiting for a real answer
	amil_dns_disc_run(d, 500 * kMs);
	EXPECT_EQ(counters(d).timeouts, 1u);
	EXPECT_EQ(counters(d).failed, 1u);

	srv.mode = Mode::WrongId;
	pump(d, srv, 5 * kSec, 2);
	EXPECT_EQ(counters(d).mismatched, 1u);
	EXPECT_EQ(amil_dns_disc_count(d), 0u);   // a wrong-id answer adds nothing
	amil_dns_disc_destroy(&d);
}

// An answer from an address that is not the nameserver is ignored even
// with the right id and question.
TEST(DnsDisc, AnswerFromAnotherSourceIsMismatched)
{
	DnsServer srv;
	srv.mode = Mode::Silent;
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	amil_dns_disc_run(d, 0);
	ASSERT_EQ(srv.serve(), 1);
	// Find our socket's port and answer from a different socket.
	struct sockaddr_in6 me;
	socklen_t ml = sizeof(me);
	ASSERT_EQ(getsockname(amil_dns_disc_fd(d), (struct sockaddr *)&me, &ml), 0);
	struct sockaddr_in to;
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = me.sin6_port;               // same offset in both structs
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	std::vector<uint8_t> forged = response(srv.seen[0].id, kName, ns_t_a, 0, {A("198.18.6.6")});
	ASSERT_EQ(sendto(fd, forged.data(), forged.size(), 0, (struct sockaddr *)&to, sizeof(to)),
		  (ssize_t)forged.size());
	close(fd);
	struct pollfd p = {amil_dns_disc_fd(d), POLLIN, 0};
	poll(&p, 1, 500);
	amil_dns_disc_run(d, 1);
	EXPECT_EQ(counters(d).mismatched, 1u);
	EXPECT_EQ(amil_dns_disc_count(d), 0u);
	amil_dns_disc_destroy(&d);
}

TEST(DnsDisc, FullUnionRefusesAndCounts)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.1"), A("198.18.0.2"), A("198.18.0.3")};
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	c.max_endpoints = 2;
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	pump(d, srv, 0);
	EXPECT_EQ(amil_dns_disc_count(d), 2u);
	EXPECT_EQ(counters(d).table_full, 1u);
	amil_dns_disc_destroy(&d);
}

TEST(DnsDisc, TruncatedAnswerIsUsedAndCounted)
{
	DnsServer srv;
	srv.zone[{kName, ns_t_a}] = {A("198.18.0.1")};
	srv.mode = Mode::Truncated;
	struct amil_dns_disc_config c = cfg(srv, AMIL_DNS_A);
	struct amil_dns_disc *d = amil_dns_disc_new(&c, 0);
	ASSERT_NE(d, nullptr);

	pump(d, srv, 0);
	EXPECT_EQ(counters(d).truncated, 1u);
	EXPECT_EQ(amil_dns_disc_count(d), 1u);
	amil_dns_disc_destroy(&d);
}
