// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Data-plane configuration: defaults, the YAML file, the flags, and that
// every rejected input is reported as "file:line: problem" or
// "--flag: problem" naming the bad value.  No EAL needed.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "amil_centers.h"
#include "config.h"

namespace {

// A private temporary directory holding the files one test writes.
class ConfigTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/amil-test-config-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
		dir_ = tmpl;
		amil_config_defaults(&c_);
		err_[0] = '\0';
	}
	void TearDown() override
	{
		for (auto it = made_.rbegin(); it != made_.rend(); ++it)
			::remove(it->c_str());
		::rmdir(dir_.c_str());
	}

	// Write @text to @name (may contain one "sub/" level) in the temp dir.
	std::string write(const std::string &name, const std::string &text)
	{
		std::string path = dir_ + "/" + name;
		size_t slash = name.find('/');
		if (slash != std::string::npos) {
			std::string sub = dir_ + "/" + name.substr(0, slash);
			if (::mkdir(sub.c_str(), 0700) == 0)
				made_.push_back(sub);
		}
		std::ofstream(path) << text;
		made_.push_back(path);
		return path;
	}

	int load(const std::string &path)
	{
		return amil_config_load_file(&c_, path.c_str(), err_, sizeof(err_));
	}

	// Load @text as a file; return the rc, leave the message in err_.
	int load_text(const std::string &text, std::string *path_out = nullptr)
	{
		std::string p = write("c.yaml", text);
		if (path_out)
			*path_out = p;
		return load(p);
	}

	// Most tests are about other settings: no ledger unless they ask
	// (parse_raw).  First, so it cannot become another flag's value.
	int parse(std::vector<std::string> args)
	{
		args.insert(args.begin(), "--no-ledger");
		return parse_raw(args);
	}

	int parse_raw(std::vector<std::string> args)
	{
		args.insert(args.begin(), "amil-dataplane");
		std::vector<char *> argv;
		for (auto &a : args)
			argv.push_back(&a[0]);
		argv.push_back(nullptr);
		return amil_config_parse_args(&c_, (int)args.size(), argv.data(), err_,
					      sizeof(err_));
	}

	std::string dir_;
	std::vector<std::string> made_;
	struct amil_config c_;
	char err_[AMIL_CONFIG_ERR_LEN];
};

// Plain gtest (no gmock): substring checks that print both sides on failure.
#define EXPECT_HAS(hay, needle)                                                          \
	EXPECT_NE(std::string(hay).find(needle), std::string::npos)                      \
		<< "'" << (hay) << "' lacks '" << (needle) << "'"
#define EXPECT_STARTS(hay, prefix)                                                       \
	EXPECT_EQ(std::string(hay).rfind(prefix, 0), 0u)                                 \
		<< "'" << (hay) << "' does not start with '" << (prefix) << "'"

uint32_t ip4(const char *s)
{
	uint32_t v = 0;
	EXPECT_EQ(inet_pton(AF_INET, s, &v), 1);
	return v;
}

bool has_code(const struct amil_config &c, const char *code)
{
	return amil_currency_set_has(&c.currencies, code);
}

} // namespace

TEST_F(ConfigTest, Defaults)
{
	EXPECT_STREQ(c_.config_path, "");
	EXPECT_FALSE(c_.has_ip4);
	EXPECT_FALSE(c_.has_ip6);
	EXPECT_EQ(c_.udp_port, 7100);
	EXPECT_EQ(c_.node_id, 1u);
	EXPECT_STREQ(c_.centers_path, "");
	EXPECT_EQ(c_.rate_bp, 250u);
	EXPECT_TRUE(c_.currencies.any);
	EXPECT_STREQ(c_.stats_json, "");
	EXPECT_EQ(c_.dedupe_capacity, 1048576u);
	EXPECT_EQ(c_.dedupe_retention_s, 86400u);
	EXPECT_EQ(c_.burst, 32u);
	EXPECT_EQ(c_.ring_size, 4096u);
	EXPECT_EQ(c_.mbufs, 32767u);
	EXPECT_EQ(c_.ledger_batch, 4096u);
	EXPECT_EQ(c_.ledger_pending, 8192u) << "two batches: one fills while one is flushed";
	EXPECT_EQ(c_.rx_desc, 1024);
	EXPECT_EQ(c_.tx_desc, 1024);
}

TEST_F(ConfigTest, FullFileSetsEveryKey)
{
	std::string p = write("full.yaml",
			      "# every key\n"
			      "ip: 198.18.0.7\n"
			      "ip6: \"2001:2::7\"\n"
			      "port: 7200\n"
			      "node_id: 4294967295\n"
			      "centers: /etc/amil/centers\n"
			      "rate_bp: 10000\n"
			      "currencies:\n"
			      "  - USD\n"
			      "  - EUR\n"
			      "stats_json: /run/amil/stats.json\n"
			      "dedupe:\n"
			      "  capacity: 2147483648\n"
			      "  retention_s: 31536000\n"
			      "burst: 64\n"
			      "ring_size: 1048576\n"
			      "mbufs: 16777215\n"
			      "rx_desc: 16384\n"
			      "tx_desc: 64\n");
	ASSERT_EQ(load(p), 0) << err_;
	EXPECT_STREQ(c_.config_path, p.c_str());
	EXPECT_TRUE(c_.has_ip4);
	EXPECT_EQ(c_.ip4_be, ip4("198.18.0.7"));
	EXPECT_TRUE(c_.has_ip6);
	uint8_t want6[16];
	ASSERT_EQ(inet_pton(AF_INET6, "2001:2::7", want6), 1);
	EXPECT_EQ(memcmp(c_.ip6, want6, 16), 0);
	EXPECT_EQ(c_.udp_port, 7200);
	EXPECT_EQ(c_.node_id, 4294967295u);
	EXPECT_STREQ(c_.centers_path, "/etc/amil/centers");
	EXPECT_EQ(c_.rate_bp, 10000u);
	EXPECT_FALSE(c_.currencies.any);
	EXPECT_TRUE(has_code(c_, "USD"));
	EXPECT_TRUE(has_code(c_, "EUR"));
	EXPECT_FALSE(has_code(c_, "SAR"));
	EXPECT_STREQ(c_.stats_json, "/run/amil/stats.json");
	EXPECT_EQ(c_.dedupe_capacity, 2147483648u);
	EXPECT_EQ(c_.dedupe_retention_s, 31536000u);
	EXPECT_EQ(c_.burst, 64u);
	EXPECT_EQ(c_.ring_size, 1048576u);
	EXPECT_EQ(c_.mbufs, 16777215u);
	EXPECT_EQ(c_.rx_desc, 16384);
	EXPECT_EQ(c_.tx_desc, 64);
}

TEST_F(ConfigTest, LowerBoundsAccepted)
{
	ASSERT_EQ(load_text("node_id: 1\nport: 1\nrate_bp: 0\n"
			    "dedupe: {capacity: 8, retention_s: 1}\n"
			    "burst: 1\nring_size: 64\nmbufs: 1023\nrx_desc: 64\ntx_desc: 16384\n"),
		  0) << err_;
	EXPECT_EQ(c_.node_id, 1u);
	EXPECT_EQ(c_.udp_port, 1);
	EXPECT_EQ(c_.rate_bp, 0u);
	EXPECT_EQ(c_.dedupe_capacity, 8u);
	EXPECT_EQ(c_.dedupe_retention_s, 1u);
	EXPECT_EQ(c_.burst, 1u);
	EXPECT_EQ(c_.ring_size, 64u);
	EXPECT_EQ(c_.mbufs, 1023u);
	EXPECT_EQ(c_.rx_desc, 64);
	EXPECT_EQ(c_.tx_desc, 16384);
}

TEST_F(ConfigTest, CurrenciesAsCommaString)
{
	ASSERT_EQ(load_text("currencies: \"USD, EUR,SAR\"\n"), 0) << err_;
	EXPECT_FALSE(c_.currencies.any);
	EXPECT_TRUE(has_code(c_, "USD"));
	EXPECT_TRUE(has_code(c_, "EUR"));
	EXPECT_TRUE(has_code(c_, "SAR"));
	EXPECT_FALSE(has_code(c_, "GBP"));
}

TEST_F(ConfigTest, CurrenciesAsFlowList)
{
	ASSERT_EQ(load_text("currencies: [GBP, JPY]\n"), 0) << err_;
	EXPECT_TRUE(has_code(c_, "GBP"));
	EXPECT_TRUE(has_code(c_, "JPY"));
	EXPECT_FALSE(has_code(c_, "USD"));
}

TEST_F(ConfigTest, EmptyAndCommentOnlyFilesKeepDefaults)
{
	ASSERT_EQ(load_text(""), 0) << err_;
	EXPECT_EQ(c_.udp_port, 7100);
	EXPECT_EQ(c_.rate_bp, 250u);
	ASSERT_EQ(load_text("# nothing here\n\n# at all\n"), 0) << err_;
	EXPECT_EQ(c_.burst, 32u);
	EXPECT_TRUE(c_.currencies.any);
}

TEST_F(ConfigTest, QuotedNumbersAccepted)
{
	// libyaml gives every scalar as text; quoting must not change meaning.
	ASSERT_EQ(load_text("port: \"7300\"\n"), 0) << err_;
	EXPECT_EQ(c_.udp_port, 7300);
}

TEST_F(ConfigTest, RelativePathsResolvedAgainstFileDir)
{
	std::string p = write("sub/dp.yaml", "centers: centers.txt\nstats_json: out/stats.json\n");
	ASSERT_EQ(load(p), 0) << err_;
	EXPECT_EQ(std::string(c_.centers_path), dir_ + "/sub/centers.txt");
	EXPECT_EQ(std::string(c_.stats_json), dir_ + "/sub/out/stats.json");

	p = write("abs.yaml", "centers: /srv/centers.txt\n");
	ASSERT_EQ(load(p), 0) << err_;
	EXPECT_STREQ(c_.centers_path, "/srv/centers.txt");
}

TEST_F(ConfigTest, RelativePathNextToFileWithoutDirectory)
{
	// A config named without a directory: paths stay relative to the cwd,
	// which is that file's directory.
	std::string p = write("here.yaml", "centers: centers.txt\n");
	char cwd[PATH_MAX];
	ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
	ASSERT_EQ(chdir(dir_.c_str()), 0);
	int rc = amil_config_load_file(&c_, "here.yaml", err_, sizeof(err_));
	ASSERT_EQ(chdir(cwd), 0);
	ASSERT_EQ(rc, 0) << err_;
	EXPECT_STREQ(c_.centers_path, "centers.txt");
	EXPECT_STREQ(c_.config_path, "here.yaml");
}

// ---- file errors: exact "path:line:" prefix and the problem named ---------

TEST_F(ConfigTest, UnknownKeyNamedWithLine)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\n# comment\nprot: 7101\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":3: unknown key 'prot'");
}

TEST_F(ConfigTest, UnknownNestedKeyNamedWithLine)
{
	std::string p;
	ASSERT_EQ(load_text("dedupe:\n  capacity: 64\n  retention: 5\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":3: unknown key 'dedupe.retention'");
}

TEST_F(ConfigTest, BadIntegerNamedWithLine)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\nnode_id: 2\n\n\n\n\nrate_bp: 300x\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":7: rate_bp must be an integer 0..10000, got '300x'");
}

TEST_F(ConfigTest, IntegersAreStrictDecimal)
{
	const char *bad[] = {"-1", "+5", "0x10", "1e3", "5.0", "''", "\"7100 \"", "7 100",
			     "99999999999999999999999"};
	for (const char *v : bad) {
		std::string p;
		ASSERT_EQ(load_text(std::string("\nport: ") + v + "\n", &p), -EINVAL) << v;
		EXPECT_STARTS(err_, p + ":2: port must be an integer 1..65535, got '")
			<< v;
	}
}

struct RangeCase {
	const char *yaml;      // the line to load
	const char *message;   // expected message after "path:1: "
};

class ConfigRangeTest : public ConfigTest, public ::testing::WithParamInterface<RangeCase> {};

TEST_P(ConfigRangeTest, OutOfRangeRejected)
{
	const RangeCase &rc = GetParam();
	std::string p;
	struct amil_config before = c_;

	ASSERT_EQ(load_text(std::string(rc.yaml) + "\n", &p), -EINVAL) << rc.yaml;
	EXPECT_EQ(std::string(err_), p + ":1: " + rc.message);
	// A rejected file leaves the configuration untouched.
	EXPECT_EQ(memcmp(&before, &c_, sizeof(c_)), 0);
}

INSTANTIATE_TEST_SUITE_P(
	EveryKey, ConfigRangeTest,
	::testing::Values(
		RangeCase{"port: 0", "port must be an integer 1..65535, got '0'"},
		RangeCase{"port: 65536", "port must be an integer 1..65535, got '65536'"},
		RangeCase{"node_id: 0", "node_id must be an integer 1..4294967295, got '0'"},
		RangeCase{"node_id: 4294967296",
			  "node_id must be an integer 1..4294967295, got '4294967296'"},
		RangeCase{"rate_bp: 10001", "rate_bp must be an integer 0..10000, got '10001'"},
		RangeCase{"dedupe: {capacity: 7}",
			  "dedupe.capacity must be an integer 8..2147483648, got '7'"},
		RangeCase{"dedupe: {capacity: 2147483649}",
			  "dedupe.capacity must be an integer 8..2147483648, got '2147483649'"},
		RangeCase{"dedupe: {retention_s: 0}",
			  "dedupe.retention_s must be an integer 1..31536000, got '0'"},
		RangeCase{"dedupe: {retention_s: 31536001}",
			  "dedupe.retention_s must be an integer 1..31536000, got '31536001'"},
		RangeCase{"burst: 0", "burst must be an integer 1..64, got '0'"},
		RangeCase{"burst: 65", "burst must be an integer 1..64, got '65'"},
		RangeCase{"ring_size: 32", "ring_size must be a power of two 64..1048576, got '32'"},
		RangeCase{"ring_size: 2097152",
			  "ring_size must be a power of two 64..1048576, got '2097152'"},
		RangeCase{"ring_size: 1000",
			  "ring_size must be a power of two 64..1048576, got '1000'"},
		RangeCase{"mbufs: 1022", "mbufs must be an integer 1023..16777215, got '1022'"},
		RangeCase{"mbufs: 16777216",
			  "mbufs must be an integer 1023..16777215, got '16777216'"},
		RangeCase{"rx_desc: 63", "rx_desc must be an integer 64..16384, got '63'"},
		RangeCase{"rx_desc: 16385", "rx_desc must be an integer 64..16384, got '16385'"},
		RangeCase{"tx_desc: 63", "tx_desc must be an integer 64..16384, got '63'"},
		RangeCase{"tx_desc: 16385", "tx_desc must be an integer 64..16384, got '16385'"},
		RangeCase{"ip: 198.18.0", "ip must be an IPv4 address A.B.C.D, got '198.18.0'"},
		RangeCase{"ip: 256.1.1.1", "ip must be an IPv4 address A.B.C.D, got '256.1.1.1'"},
		RangeCase{"ip: \"2001:2::1\"",
			  "ip must be an IPv4 address A.B.C.D, got '2001:2::1'"},
		RangeCase{"ip6: \"2001:::1\"", "ip6 must be an IPv6 address, got '2001:::1'"},
		RangeCase{"ip6: 198.18.0.1", "ip6 must be an IPv6 address, got '198.18.0.1'"},
		RangeCase{"currencies: \"USD,EURO\"",
			  "currencies must be ISO 4217 codes like USD,EUR, got 'EURO'"},
		RangeCase{"currencies: \"usd\"",
			  "currencies must be ISO 4217 codes like USD,EUR, got 'usd'"},
		RangeCase{"currencies: \"USD,,EUR\"",
			  "currencies must be ISO 4217 codes like USD,EUR, got 'USD,,EUR'"},
		RangeCase{"currencies: []", "currencies must list at least one code"},
		RangeCase{"centers: ''", "centers must be a file name, got ''"},
		RangeCase{"stats_json: \"\"", "stats_json must be a file name, got ''"},
		RangeCase{"stats_json:",
			  "stats_json has no value (leave the key out for the default)"},
		RangeCase{"stats_json: ~",
			  "stats_json has no value (leave the key out for the default)"},
		RangeCase{"port: null", "port has no value (leave the key out for the default)"}));

TEST_F(ConfigTest, BadCurrencyInListNamesItsLine)
{
	std::string p;
	ASSERT_EQ(load_text("currencies:\n  - USD\n  - EURO\n  - SAR\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_),
		  p + ":3: currencies must be ISO 4217 codes like USD,EUR, got 'EURO'");
}

TEST_F(ConfigTest, NestedListInCurrenciesRejected)
{
	std::string p;
	ASSERT_EQ(load_text("currencies:\n  - USD\n  - [EUR]\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":3: currencies entries must be codes, got a list");
}

TEST_F(ConfigTest, DuplicateKeyRejected)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\nnode_id: 3\nport: 7200\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":3: duplicate key 'port' (first on line 1)");
	EXPECT_EQ(c_.udp_port, 7100); // unchanged default
}

TEST_F(ConfigTest, DuplicateNestedKeyRejected)
{
	std::string p;
	ASSERT_EQ(load_text("dedupe:\n  capacity: 64\n  capacity: 128\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":3: duplicate key 'dedupe.capacity' (first on line 2)");
}

TEST_F(ConfigTest, ListWhereScalarRejected)
{
	std::string p;
	ASSERT_EQ(load_text("node_id: 2\nport: [7100, 7101]\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":2: port must be a single value, got a list");
}

TEST_F(ConfigTest, MappingWhereScalarRejected)
{
	std::string p;
	ASSERT_EQ(load_text("ip:\n  a: 1\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":2: ip must be a single value, got a mapping");
}

TEST_F(ConfigTest, ScalarWhereMappingRejected)
{
	std::string p;
	ASSERT_EQ(load_text("dedupe: 1024\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":1: dedupe must be a mapping, got a scalar");
}

TEST_F(ConfigTest, NonScalarKeyRejected)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\n? [a, b]\n: 1\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":2: keys must be names, got a list");
}

TEST_F(ConfigTest, SyntaxErrorReportsLibyamlProblemAndLine)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\nnode_id: 2\n  bad: indentation\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_),
		  p + ":3: YAML syntax error: mapping values are not allowed in this context");
}

TEST_F(ConfigTest, UnterminatedQuoteReportsContext)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\nip: \"198.18.0.1\n", &p), -EINVAL);
	EXPECT_STARTS(err_, p + ":3: YAML syntax error: ");
	EXPECT_HAS(err_, "quoted scalar on line 2");
}

TEST_F(ConfigTest, TopLevelMustBeMapping)
{
	std::string p;
	ASSERT_EQ(load_text("# a list\n- port\n- 7100\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":2: top level must be a mapping of key: value, got a list");
	ASSERT_EQ(load_text("7100\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_),
		  p + ":1: top level must be a mapping of key: value, got a scalar");
}

TEST_F(ConfigTest, SecondDocumentRejected)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\n---\nport: 7200\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":3: only one YAML document is allowed");
	EXPECT_EQ(c_.udp_port, 7100);
}

TEST_F(ConfigTest, MissingFileReportsErrnoAndPath)
{
	std::string p = dir_ + "/does-not-exist.yaml";
	ASSERT_EQ(load(p), -ENOENT);
	EXPECT_STARTS(err_, p + ": ");
	EXPECT_HAS(err_, strerror(ENOENT));
}

TEST_F(ConfigTest, DirectoryRejected)
{
	ASSERT_EQ(load(dir_), -EISDIR);
	EXPECT_STARTS(err_, dir_ + ": ");
	EXPECT_HAS(err_, strerror(EISDIR));
}

TEST_F(ConfigTest, OversizedFileRejected)
{
	std::string p = write("big.yaml", std::string((1 << 20) + 1, '#'));
	ASSERT_EQ(load(p), -EFBIG);
	EXPECT_STARTS(err_, p + ": ");
}

TEST_F(ConfigTest, ControlCharactersNotEchoed)
{
	std::string p;
	ASSERT_EQ(load_text("port: \"7\\e[31m\"\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":1: port must be an integer 1..65535, got '7?[31m'");
}

// ---- flags ------------------------------------------------------------------

TEST_F(ConfigTest, FlagsAlone)
{
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c.txt", "--port", "7101",
			 "--node-id", "9", "--rate-bp", "100", "--currencies", "USD,EUR",
			 "--stats-json", "s.json", "--dedupe-capacity", "4096",
			 "--dedupe-retention", "60", "--burst", "16", "--ring-size", "1024",
			 "--mbufs", "8191", "--rx-desc", "512", "--tx-desc=256",
			 "--ip6", "2001:2::1"}),
		  0)
		<< err_;
	EXPECT_EQ(c_.ip4_be, ip4("198.18.0.1"));
	EXPECT_TRUE(c_.has_ip6);
	EXPECT_STREQ(c_.centers_path, "c.txt"); // flags stay relative to the cwd
	EXPECT_EQ(c_.udp_port, 7101);
	EXPECT_EQ(c_.node_id, 9u);
	EXPECT_EQ(c_.rate_bp, 100u);
	EXPECT_TRUE(has_code(c_, "EUR"));
	EXPECT_FALSE(has_code(c_, "GBP"));
	EXPECT_STREQ(c_.stats_json, "s.json");
	EXPECT_EQ(c_.dedupe_capacity, 4096u);
	EXPECT_EQ(c_.dedupe_retention_s, 60u);
	EXPECT_EQ(c_.burst, 16u);
	EXPECT_EQ(c_.ring_size, 1024u);
	EXPECT_EQ(c_.mbufs, 8191u);
	EXPECT_EQ(c_.rx_desc, 512);
	EXPECT_EQ(c_.tx_desc, 256);
	EXPECT_STREQ(c_.config_path, "");
}

TEST_F(ConfigTest, FlagsOverrideFile)
{
	std::string p = write("dp.yaml", "ip: 198.18.0.1\nport: 7100\nrate_bp: 300\n"
					 "centers: centers.txt\n");
	ASSERT_EQ(parse({"--config", p, "--port", "7200"}), 0) << err_;
	EXPECT_EQ(c_.udp_port, 7200);       // flag wins
	EXPECT_EQ(c_.rate_bp, 300u);        // file value kept
	EXPECT_EQ(std::string(c_.centers_path), dir_ + "/centers.txt");
	EXPECT_EQ(std::string(c_.config_path), p);
}

TEST_F(ConfigTest, ConfigPositionDoesNotMatter)
{
	std::string p = write("dp.yaml", "ip: 198.18.0.1\nport: 7100\ncenters: c.txt\n");
	ASSERT_EQ(parse({"--port", "7200", "--config", p}), 0) << err_;
	EXPECT_EQ(c_.udp_port, 7200);
	amil_config_defaults(&c_);
	ASSERT_EQ(parse({"--port", "7201", "--centers", "/x", "--config", p, "--burst", "8"}), 0)
		<< err_;
	EXPECT_EQ(c_.udp_port, 7201);
	EXPECT_STREQ(c_.centers_path, "/x");
	EXPECT_EQ(c_.burst, 8u);
}

TEST_F(ConfigTest, FileSuppliesRequiredSettings)
{
	std::string p = write("dp.yaml", "ip6: \"2001:2::1\"\ncenters: c.txt\n");
	ASSERT_EQ(parse({"--config", p}), 0) << err_;
	EXPECT_FALSE(c_.has_ip4);
	EXPECT_TRUE(c_.has_ip6);
}

TEST_F(ConfigTest, LaterFlagWins)
{
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--port", "1", "--port", "2"}), 0)
		<< err_;
	EXPECT_EQ(c_.udp_port, 2);
}

TEST_F(ConfigTest, ParseAppliesDefaultsFirst)
{
	c_.burst = 3; // stale value from an earlier use of the struct
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c"}), 0) << err_;
	EXPECT_EQ(c_.burst, 32u);
}

TEST_F(ConfigTest, FlagBadValueNamesFlagAndValue)
{
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--port", "70000"}), -EINVAL);
	EXPECT_STREQ(err_, "--port: must be an integer 1..65535, got '70000'");
	ASSERT_EQ(parse({"--ip", "198.18.0", "--centers", "c"}), -EINVAL);
	EXPECT_STREQ(err_, "--ip: must be an IPv4 address A.B.C.D, got '198.18.0'");
	ASSERT_EQ(parse({"--ip6", "zz::1", "--centers", "c"}), -EINVAL);
	EXPECT_STREQ(err_, "--ip6: must be an IPv6 address, got 'zz::1'");
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--currencies", "USD,X"}),
		  -EINVAL);
	EXPECT_STREQ(err_, "--currencies: must be ISO 4217 codes like USD,EUR, got 'X'");
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--ring-size", "100"}), -EINVAL);
	EXPECT_STREQ(err_, "--ring-size: must be a power of two 64..1048576, got '100'");
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--node-id", "-1"}), -EINVAL);
	EXPECT_STREQ(err_, "--node-id: must be an integer 1..4294967295, got '-1'");
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", ""}), -EINVAL);
	EXPECT_STREQ(err_, "--centers: must be a file name, got ''");
}

TEST_F(ConfigTest, FlagErrorLeavesConfigUntouched)
{
	c_.udp_port = 1234;
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--burst", "65"}), -EINVAL);
	EXPECT_EQ(c_.udp_port, 1234);
}

TEST_F(ConfigTest, UnknownFlagRejected)
{
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--bogus", "1"}), -EINVAL);
	EXPECT_STREQ(err_, "unknown option '--bogus' (see --help)");
	ASSERT_EQ(parse({"-x"}), -EINVAL);
	EXPECT_STREQ(err_, "unknown option '-x' (see --help)");
	ASSERT_EQ(parse({"--help=yes"}), -EINVAL);
	EXPECT_STREQ(err_, "unknown option '--help=yes' (see --help)");
}

TEST_F(ConfigTest, MissingFlagValueRejected)
{
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--port"}), -EINVAL);
	EXPECT_STREQ(err_, "--port: missing value");
	ASSERT_EQ(parse({"--config"}), -EINVAL);
	EXPECT_STREQ(err_, "--config: missing value");
}

TEST_F(ConfigTest, PositionalArgumentRejected)
{
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "stray", "--centers", "c"}), -EINVAL);
	EXPECT_STARTS(err_, "unexpected argument 'stray'");
	// After a "--" too: nothing is taken as positional input.
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--", "more"}), -EINVAL);
	EXPECT_STARTS(err_, "unexpected argument 'more'");
}

TEST_F(ConfigTest, MissingAddressRejected)
{
	ASSERT_EQ(parse({"--centers", "c"}), -EINVAL);
	EXPECT_STREQ(err_, "no address: set --ip/--ip6 or ip:/ip6: in the config");
}

TEST_F(ConfigTest, MissingCentersRejected)
{
	ASSERT_EQ(parse({"--ip6", "2001:2::1"}), -EINVAL);
	EXPECT_STREQ(err_, "no centers file: set --centers or centers: in the config");
	ASSERT_EQ(parse({}), -EINVAL); // no arguments at all: the address comes first
	EXPECT_STREQ(err_, "no address: set --ip/--ip6 or ip:/ip6: in the config");
}

TEST_F(ConfigTest, ConfigFileErrorPassedThrough)
{
	std::string p = write("bad.yaml", "ip: 198.18.0.1\nburst: 0\n");
	ASSERT_EQ(parse({"--config", p, "--centers", "c"}), -EINVAL);
	EXPECT_EQ(std::string(err_), p + ":2: burst must be an integer 1..64, got '0'");
	std::string missing = dir_ + "/nope.yaml";
	ASSERT_EQ(parse({"--config", missing}), -ENOENT);
	EXPECT_STARTS(err_, missing + ": ");
}

TEST_F(ConfigTest, ConfigGivenTwiceRejected)
{
	std::string p = write("dp.yaml", "ip: 198.18.0.1\ncenters: c\n");
	ASSERT_EQ(parse({"--config", p, "--config", p}), -EINVAL);
	EXPECT_STREQ(err_, "--config: given more than once");
}

TEST_F(ConfigTest, ParseIsRepeatable)
{
	// getopt keeps global state; a failed parse mid-way must not leak into
	// the next call.  (Regression guard for the optind reset.)
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--bogus"}), -EINVAL);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c", "--port",
				 std::to_string(7000 + i)}),
			  0)
			<< err_;
		EXPECT_EQ(c_.udp_port, 7000 + i);
	}
}

TEST_F(ConfigTest, HelpPrintsUsageAndReturnsOne)
{
	::testing::internal::CaptureStdout();
	int rc = parse({"--port", "7100", "--help"});
	std::string out = ::testing::internal::GetCapturedStdout();
	EXPECT_EQ(rc, 1);
	EXPECT_HAS(out, "Usage: amil-dataplane [EAL options] -- [options]");
	::testing::internal::CaptureStdout();
	rc = parse({"-h"});
	out = ::testing::internal::GetCapturedStdout();
	EXPECT_EQ(rc, 1);
	EXPECT_HAS(out, "--centers FILE");
}

TEST_F(ConfigTest, UsageListsEveryFlagWithDefault)
{
	char *buf = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ASSERT_NE(f, nullptr);
	amil_config_usage(f, "/usr/bin/amil-dataplane"); // shown by its name
	ASSERT_EQ(fclose(f), 0);
	std::string u(buf, len);
	free(buf);

	EXPECT_STARTS(u, "Usage: amil-dataplane [EAL options] -- [options]\n");
	for (const char *flag : {"--config FILE", "--ip A.B.C.D", "--ip6 ADDR", "--port N",
				 "--node-id N", "--centers FILE", "--rate-bp N", "--currencies LIST",
				 "--stats-json FILE", "--dedupe-capacity N", "--dedupe-retention S",
				 "--burst N", "--ring-size N", "--mbufs N", "--rx-desc N",
				 "--tx-desc N", "-h, --help"})
		EXPECT_HAS(u, flag);
	for (const char *def : {"ip: none", "port: 7100 (1..65535)", "node_id: 1 (1..4294967295)",
				"rate_bp: 250 (0..10000)", "currencies: any", "centers: required",
				"stats_json: none", "dedupe.capacity: 1048576 (8..2147483648)",
				"dedupe.retention_s: 86400 (1..31536000)", "burst: 32 (1..64)",
				"ring_size: 4096 (power of two 64..1048576)",
				"mbufs: 32767 (1023..16777215)", "rx_desc: 1024 (64..16384)",
				"tx_desc: 1024 (64..16384)"})
		EXPECT_HAS(u, def);
	EXPECT_HAS(u, "--no-huge");
	EXPECT_HAS(u, "--vdev net_pcap0,");
	// Every line fits a terminal.
	size_t start = 0, nl;
	while ((nl = u.find('\n', start)) != std::string::npos) {
		EXPECT_LE(nl - start, 80u) << u.substr(start, nl - start);
		start = nl + 1;
	}
}

// ---- the shipped examples -------------------------------------------------

namespace {

// configs/ of the source tree, found from this file's path (absolute, or
// relative to the build root, which is the test binary's parent's parent).
std::string configs_dir()
{
	std::string src = __FILE__;
	std::string tests = src.substr(0, src.rfind('/') + 1);
	std::vector<std::string> cands = {tests + "../configs"};
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0 && src[0] != '/') {
		exe[n] = '\0';
		std::string e(exe);
		std::string build_root = e.substr(0, e.rfind('/')) + "/..";
		cands.push_back(build_root + "/" + tests + "../configs");
	}
	for (auto &c : cands)
		if (access((c + "/amil-dataplane.yaml").c_str(), R_OK) == 0)
			return c;
	return "";
}

} // namespace

TEST_F(ConfigTest, ShippedExampleConfigLoads)
{
	std::string d = configs_dir();
	if (d.empty())
		GTEST_SKIP() << "configs/ not found from " << __FILE__;
	std::string p = d + "/amil-dataplane.yaml";
	ASSERT_EQ(parse({"--config", p}), 0) << err_;
	EXPECT_EQ(c_.ip4_be, ip4("198.18.0.1"));
	EXPECT_TRUE(c_.has_ip6);
	EXPECT_EQ(c_.udp_port, 7100);
	EXPECT_EQ(c_.node_id, 1u);
	EXPECT_EQ(std::string(c_.centers_path), d + "/centers.example");
	// Everything else is documented at its default.
	struct amil_config def;
	amil_config_defaults(&def);
	EXPECT_EQ(c_.rate_bp, def.rate_bp);
	EXPECT_EQ(c_.dedupe_capacity, def.dedupe_capacity);
	EXPECT_EQ(c_.dedupe_retention_s, def.dedupe_retention_s);
	EXPECT_EQ(c_.burst, def.burst);
	EXPECT_EQ(c_.ring_size, def.ring_size);
	EXPECT_EQ(c_.mbufs, def.mbufs);
	EXPECT_EQ(c_.rx_desc, def.rx_desc);
	EXPECT_EQ(c_.tx_desc, def.tx_desc);
	EXPECT_TRUE(c_.currencies.any);

	// ... and the centers file it names is valid.
	struct amil_centers *ctr = amil_centers_load(c_.centers_path, err_, sizeof(err_));
	ASSERT_NE(ctr, nullptr) << err_;
	EXPECT_EQ(amil_centers_count(ctr), 3u);
	for (uint32_t id : {1001u, 1002u, 1003u})
		EXPECT_NE(amil_centers_key(ctr, id), nullptr) << id;
	static const uint8_t first[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	EXPECT_EQ(memcmp(amil_centers_key(ctr, 1001), first, 16), 0);
	amil_centers_free(ctr);
}

// --mac / mac: was added after the first version of this file: it sets the
// port MAC, and tests and demos on net_pcap rely on it being parsed exactly.
TEST_F(ConfigTest, MacFromFlagAndFile)
{
	std::string p;
	ASSERT_EQ(parse({"--ip", "198.18.0.1", "--centers", "c.txt", "--mac", "02:0A:bc:00:00:01"}), 0)
		<< err_;
	EXPECT_TRUE(c_.has_mac);
	const uint8_t want[6] = {0x02, 0x0a, 0xbc, 0, 0, 1};
	EXPECT_EQ(0, memcmp(c_.mac, want, 6));

	ASSERT_EQ(load_text("mac: 02:00:00:00:00:07\n", &p), 0) << err_;
	EXPECT_EQ(c_.mac[5], 7);
}

TEST_F(ConfigTest, BadMacRejected)
{
	std::string p;
	ASSERT_EQ(load_text("port: 7100\nmac: 02:00:00:00:00\n", &p), -EINVAL);
	EXPECT_EQ(std::string(err_),
		  p + ":2: mac must be a MAC address xx:xx:xx:xx:xx:xx, got '02:00:00:00:00'");
	ASSERT_EQ(load_text("mac: 01:00:5e:00:00:01\n", &p), -EINVAL);
	EXPECT_HAS(err_, "must be a unicast MAC address");
	EXPECT_LT(parse({"--ip", "198.18.0.1", "--centers", "c.txt", "--mac", "zz:00:00:00:00:01"}), 0);
	EXPECT_HAS(err_, "--mac:");
}
