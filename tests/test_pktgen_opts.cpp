/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for tools/pktgen/opts.h: defaults, flags, and errors that name
 * the flag and the bad value. */
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <string>
#include <vector>

#include "opts.h"

namespace {

/* The parsed options point into argv (opts.h), so the strings live here. */
struct Parsed {
	std::vector<std::string> args;
	amil_pktgen_opts o{};
	int rc = 0;
	std::string err;
};

void parse_into(Parsed &p, std::vector<std::string> args)
{
	std::vector<char *> argv;
	char err[512] = "";

	p.args = std::move(args);
	p.args.insert(p.args.begin(), "amil-pktgen");
	for (auto &a : p.args)
		argv.push_back(&a[0]);
	argv.push_back(nullptr);
	p.rc = amil_pktgen_opts_parse(&p.o, (int)p.args.size(), argv.data(), err, sizeof(err));
	p.err = err;
}

#define PARSE(p, args) \
	Parsed p;      \
	parse_into(p, args)

/* For the error cases, where nothing points into argv afterwards. */
int parse_rc(std::vector<std::string> args, std::string *err)
{
	Parsed p;

	parse_into(p, std::move(args));
	*err = p.err;
	return p.rc;
}

const std::vector<std::string> kMin = {"--centers", "c.txt", "--dst-ip", "198.18.0.1"};

std::vector<std::string> with(std::vector<std::string> extra)
{
	std::vector<std::string> v = kMin;
	v.insert(v.end(), extra.begin(), extra.end());
	return v;
}

} // namespace

TEST(PktgenOpts, Defaults)
{
	PARSE(p, kMin);

	ASSERT_EQ(0, p.rc) << p.err;
	EXPECT_EQ(1000u, p.o.count);
	EXPECT_EQ(0u, p.o.rate_pps);
	EXPECT_EQ(7100, p.o.addr.dst_port);
	EXPECT_EQ(500u, p.o.ack_timeout_ms);
	EXPECT_EQ(3u, p.o.retries);
	EXPECT_EQ(250u, p.o.rate_bp);
	EXPECT_EQ(32u, p.o.burst);
	EXPECT_FALSE(p.o.has_dst_mac);   /* ARP */
	EXPECT_FALSE(p.o.addr.ipv6);
	EXPECT_EQ(-1, p.o.live);
	uint32_t ip;
	inet_pton(AF_INET, "198.18.0.1", &ip);
	EXPECT_EQ(ip, p.o.addr.dst_ip4);
}

TEST(PktgenOpts, TrafficFlags)
{
	PARSE(p, with({"--rate", "50000", "--count", "100000", "--dup-frac", "0.05",
			       "--invalid-frac", "0.02", "--zipf", "1.1", "--campaigns", "100",
			       "--amount-min", "5", "--amount-max", "9", "--currency", "SAR",
			       "--dst-mac", "02:00:00:00:00:01", "--tx-lcores", "1,2",
			       "--rx-lcores", "3", "--json", "out.json", "--seed", "7"}));

	ASSERT_EQ(0, p.rc) << p.err;
	EXPECT_EQ(50000u, p.o.rate_pps);
	EXPECT_EQ(100000u, p.o.count);
	EXPECT_DOUBLE_EQ(0.05, p.o.dup_frac);
	EXPECT_DOUBLE_EQ(1.1, p.o.zipf_s);
	EXPECT_EQ(5, p.o.amount_min);
	EXPECT_EQ(9, p.o.amount_max);
	EXPECT_EQ(0, memcmp(p.o.currency, "SAR", 3));
	EXPECT_TRUE(p.o.has_dst_mac);
	EXPECT_EQ(0x01, p.o.addr.dst_mac[5]);
	ASSERT_EQ(2u, p.o.nb_tx_lcores);
	EXPECT_EQ(2u, p.o.tx_lcores[1]);
	EXPECT_EQ(1u, p.o.nb_rx_lcores);
	EXPECT_STREQ("out.json", p.o.json);
	EXPECT_EQ(7u, p.o.seed);
}

TEST(PktgenOpts, DurationReplacesCount)
{
	PARSE(p, with({"--duration", "5"}));
	std::string err;
	ASSERT_EQ(0, p.rc) << p.err;
	EXPECT_EQ(0u, p.o.count);
	EXPECT_EQ(5000u, p.o.duration_ms);
	EXPECT_EQ(-EINVAL, parse_rc(with({"--duration", "5", "--count", "9"}), &err));
	EXPECT_NE(std::string::npos, err.find("not both"));
}

TEST(PktgenOpts, ErrorsNameTheFlagAndValue)
{
	struct {
		std::vector<std::string> args;
		const char *want;
	} cases[] = {
		{with({"--rate", "fast"}), "--rate: want an integer"},
		{with({"--rate", "-5"}), "got '-5'"},
		{with({"--dup-frac", "1.5"}), "--dup-frac: want a fraction 0..1, got '1.5'"},
		{with({"--dup-frac", "0.6", "--invalid-frac", "0.6"}), "must not exceed 1"},
		{with({"--dst-mac", "02:00:00:00:00"}), "--dst-mac: not a MAC address"},
		{with({"--currency", "us$"}), "--currency: want three capitals like USD, got 'us$'"},
		{with({"--amount-min", "10", "--amount-max", "9"}), "above --amount-max"},
		{with({"--burst", "0"}), "--burst"},
		{with({"--tx-lcores", "1,x"}), "--tx-lcores"},
		{with({"--window", "100"}), "--window"},
		{with({"--src-ip", "2001:2::2"}), "same family"},
		{with({"--pcap-out", "x.pcap"}), "--pcap-out needs --dst-mac"},
		{with({"--bogus"}), "unknown option '--bogus'"},
		{{"--dst-ip", "198.18.0.1"}, "--centers FILE is required"},
		{{"--centers", "c"}, "--dst-ip ADDR is required"},
		{with({"--dst-ip", "2001:2::1"}), "IPv6: give --dst-mac"},
	};
	for (auto &c : cases) {
		std::string err;
		EXPECT_EQ(-EINVAL, parse_rc(c.args, &err)) << c.want;
		EXPECT_NE(std::string::npos, err.find(c.want)) << "got: " << err;
	}
}
