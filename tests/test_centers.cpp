/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Unit tests for lib/amil_centers.c: the centers file parser and table. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include "amil_centers.h"

namespace {

struct Parsed {
	amil_centers *c = nullptr;
	int err_no = 0;
	std::string msg;

	~Parsed() { amil_centers_free(c); }
};

void
parse(Parsed &p, const std::string &text, const char *name = "centers.txt")
{
	char err[256];

	memset(err, 'x', sizeof(err));
	errno = 0;
	p.c = amil_centers_parse(text.data(), text.size(), name, err, sizeof(err));
	p.err_no = errno;
	p.msg = err;
}

/* Parse @text, expect failure with EINVAL and exactly @msg. */
void
expect_error(const std::string &text, const std::string &msg)
{
	Parsed p;

	parse(p, text);
	EXPECT_EQ(nullptr, p.c) << "accepted:\n" << text;
	EXPECT_EQ(EINVAL, p.err_no) << text;
	EXPECT_EQ(msg, p.msg) << text;
}

std::string
key_hex(uint32_t seed)
{
	char buf[33];

	snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", seed, seed ^ 0xdeadbeefu, ~seed,
		 seed * 2654435761u);
	return buf;
}

const char kKeyA[] = "000102030405060708090a0b0c0d0e0f";

} // namespace

TEST(Centers, GoodFileWithCommentsBlankLinesCrlfAndMixedCase)
{
	const std::string text =
		"# Amil centers\n"
		"\n"
		"   \t\n"
		"1 000102030405060708090a0b0c0d0e0f\n"
		"  2\t00112233445566778899AABBCCDDEEFF   # Riyadh, upper case\r\n"
		"4294967295 fFeEdDcCbBaA99887766554433221100\r\n"
		"# 5 deadbeefdeadbeefdeadbeefdeadbeef   (commented out)\n"
		"0 0123456789abcdef0123456789ABCDEF#no space before comment\n"
		"  # indented comment\r\n"
		"\r\n"
		"77 ffffffffffffffffffffffffffffffff";   /* no final newline */
	Parsed p;

	parse(p, text);
	ASSERT_NE(nullptr, p.c) << p.msg;
	EXPECT_EQ(5u, amil_centers_count(p.c));

	const uint8_t *k = amil_centers_key(p.c, 1);
	ASSERT_NE(nullptr, k);
	for (int i = 0; i < 16; i++)
		EXPECT_EQ(i, k[i]);
	k = amil_centers_key(p.c, 2);
	ASSERT_NE(nullptr, k);
	for (int i = 0; i < 16; i++)
		EXPECT_EQ(i * 0x11, k[i]);
	k = amil_centers_key(p.c, 4294967295u);
	ASSERT_NE(nullptr, k);
	EXPECT_EQ(0xFF, k[0]);
	EXPECT_EQ(0xEE, k[1]);
	EXPECT_EQ(0x00, k[15]);
	k = amil_centers_key(p.c, 0);
	ASSERT_NE(nullptr, k);
	EXPECT_EQ(0x01, k[0]);
	EXPECT_EQ(0xEF, k[15]);
	k = amil_centers_key(p.c, 77);
	ASSERT_NE(nullptr, k);
	EXPECT_EQ(0xFF, k[7]);

	/* Misses, including the commented-out center 5. */
	for (uint32_t id : {3u, 5u, 76u, 78u, 4294967294u, 100000u})
		EXPECT_EQ(nullptr, amil_centers_key(p.c, id)) << id;
}

TEST(Centers, GetReturnsFileOrder)
{
	const uint32_t ids[] = {900, 3, 4294967295u, 0, 17};
	std::string text;
	Parsed p;

	for (uint32_t id : ids)
		text += std::to_string(id) + " " + key_hex(id) + "\n";
	parse(p, text);
	ASSERT_NE(nullptr, p.c) << p.msg;
	ASSERT_EQ(5u, amil_centers_count(p.c));
	for (uint32_t i = 0; i < 5; i++) {
		uint32_t id = 0xAAAAAAAA;
		uint8_t key[AMIL_KEY_LEN];

		ASSERT_EQ(0, amil_centers_get(p.c, i, &id, key));
		EXPECT_EQ(ids[i], id);
		EXPECT_EQ(0, memcmp(key, amil_centers_key(p.c, ids[i]), AMIL_KEY_LEN));
	}
	uint32_t id;
	uint8_t key[AMIL_KEY_LEN];
	EXPECT_EQ(-ERANGE, amil_centers_get(p.c, 5, &id, key));
	EXPECT_EQ(-ERANGE, amil_centers_get(p.c, UINT32_MAX, &id, key));
}

TEST(Centers, FreeNullIsNoop)
{
	amil_centers_free(nullptr);
	EXPECT_EQ(0u, amil_centers_count(nullptr));
	EXPECT_EQ(nullptr, amil_centers_key(nullptr, 1));
}

/* ---- error messages: exact "name:line: problem" ------------------------- */

TEST(CentersErrors, BadId)
{
	expect_error("1 " + std::string(kKeyA) + "\n\nabc " + kKeyA + "\n",
		     "centers.txt:3: bad center_id 'abc' (want decimal 0..4294967295)");
	expect_error("12x " + std::string(kKeyA) + "\n",
		     "centers.txt:1: bad center_id '12x' (want decimal 0..4294967295)");
	expect_error("0x10 " + std::string(kKeyA) + "\n",
		     "centers.txt:1: bad center_id '0x10' (want decimal 0..4294967295)");
}

TEST(CentersErrors, IdOverflow)
{
	expect_error("4294967296 " + std::string(kKeyA) + "\n",
		     "centers.txt:1: bad center_id '4294967296' (want decimal 0..4294967295)");
	expect_error("99999999999999999999999 " + std::string(kKeyA) + "\n",
		     "centers.txt:1: bad center_id '99999999999999999999999' (want decimal "
		     "0..4294967295)");
}

TEST(CentersErrors, NegativeId)
{
	expect_error("# x\n-1 " + std::string(kKeyA) + "\n",
		     "centers.txt:2: bad center_id '-1' (want decimal 0..4294967295)");
	expect_error("+1 " + std::string(kKeyA) + "\n",
		     "centers.txt:1: bad center_id '+1' (want decimal 0..4294967295)");
}

TEST(CentersErrors, ShortAndLongKey)
{
	expect_error("1 000102030405060708090a0b0c0d0e0f\n"
		     "2 0001020304\n",
		     "centers.txt:2: key must be 32 hex digits, got 10");
	expect_error("1 000102030405060708090a0b0c0d0e\n",
		     "centers.txt:1: key must be 32 hex digits, got 30");
	expect_error("1 000102030405060708090a0b0c0d0e0f0\n",
		     "centers.txt:1: key must be 32 hex digits, got 33");
	expect_error("1 000102030405060708090a0b0c0d0e0f0011\r\n",
		     "centers.txt:1: key must be 32 hex digits, got 36");
}

TEST(CentersErrors, MissingKey)
{
	expect_error("1 " + std::string(kKeyA) + "\n42\n",
		     "centers.txt:2: center 42 has no key (want 32 hex digits)");
	expect_error("42   # key forgotten\n",
		     "centers.txt:1: center 42 has no key (want 32 hex digits)");
}

TEST(CentersErrors, NonHexKeyNamesPositionNotKey)
{
	Parsed p;

	parse(p, "1 000102030405060708090a0b0c0d0e0g\n");
	EXPECT_EQ(nullptr, p.c);
	EXPECT_EQ(EINVAL, p.err_no);
	EXPECT_EQ("centers.txt:1: key has a non-hex digit at position 32", p.msg);
	/* The key is a secret: no part of it appears in the message. */
	EXPECT_EQ(std::string::npos, p.msg.find("0e0g"));
	expect_error("1 z00102030405060708090a0b0c0d0e0f\n",
		     "centers.txt:1: key has a non-hex digit at position 1");
}

TEST(CentersErrors, ExtraToken)
{
	expect_error("1 " + std::string(kKeyA) + " extra\n",
		     "centers.txt:1: unexpected 'extra' after the key (one center per line)");
	expect_error("1 " + std::string(kKeyA) + " 2 " + kKeyA + "\n",
		     "centers.txt:1: unexpected '2' after the key (one center per line)");
}

TEST(CentersErrors, DuplicateId)
{
	expect_error("# centers\n"
		     "7 " + std::string(kKeyA) + "\n"
		     "8 " + kKeyA + "\n"
		     "42 " + kKeyA + "\n"
		     "9 " + kKeyA + "\n"
		     "\n"
		     "\n"
		     "\n"
		     "42 " + kKeyA + "\n",
		     "centers.txt:9: center 42 already defined on line 4");
}

TEST(CentersErrors, DuplicateReportedBeforeLaterSyntaxError)
{
	expect_error("5 " + std::string(kKeyA) + "\n5 " + kKeyA + "\nbogus\n",
		     "centers.txt:2: center 5 already defined on line 1");
}

TEST(CentersErrors, EmptyFile)
{
	expect_error("", "centers.txt: no centers defined");
	expect_error("# only comments\n\n   \r\n# 1 " + std::string(kKeyA) + "\n",
		     "centers.txt: no centers defined");
}

TEST(CentersErrors, NameUsedInMessage)
{
	Parsed p;

	parse(p, "x\n", "/etc/amil/centers.conf");
	EXPECT_EQ(nullptr, p.c);
	EXPECT_EQ("/etc/amil/centers.conf:1: bad center_id 'x' (want decimal 0..4294967295)",
		  p.msg);
}

TEST(CentersErrors, UnprintableBytesAreNotEchoedRaw)
{
	const std::string text = std::string("\x01\x1b[31m ") + kKeyA + "\n";
	Parsed p;

	parse(p, text);
	EXPECT_EQ(nullptr, p.c);
	EXPECT_EQ("centers.txt:1: bad center_id '??[31m' (want decimal 0..4294967295)", p.msg);
}

TEST(CentersErrors, TextNeedNotBeNulTerminated)
{
	/* The parser must stop at @len even though more bytes follow. */
	std::string text = "1 " + std::string(kKeyA) + "\nGARBAGE";
	Parsed p;
	char err[128];

	p.c = amil_centers_parse(text.data(), 2 + 32 + 1, "n", err, sizeof(err));
	ASSERT_NE(nullptr, p.c) << err;
	EXPECT_EQ(1u, amil_centers_count(p.c));
}

/* ---- loading from a file ------------------------------------------------ */

TEST(CentersLoad, MissingFile)
{
	char err[256];
	const char *path = "/nonexistent-amil-dir/centers.txt";

	errno = 0;
	EXPECT_EQ(nullptr, amil_centers_load(path, err, sizeof(err)));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(std::string(path) + ": " + strerror(ENOENT), err);
}

TEST(CentersLoad, Directory)
{
	char err[256];

	errno = 0;
	EXPECT_EQ(nullptr, amil_centers_load("/tmp", err, sizeof(err)));
	EXPECT_EQ(EISDIR, errno);
	EXPECT_EQ(std::string("/tmp: ") + strerror(EISDIR), err);
}

TEST(CentersLoad, RealFileAndErrorNamesPath)
{
	char path[] = "/tmp/amil-centers-test-XXXXXX";
	int fd = mkstemp(path);
	char err[256];

	ASSERT_GE(fd, 0);
	std::string text = "10 " + std::string(kKeyA) + "\r\n11 " + key_hex(11) + "\n";
	ASSERT_EQ((ssize_t)text.size(), write(fd, text.data(), text.size()));
	close(fd);

	amil_centers *c = amil_centers_load(path, err, sizeof(err));
	ASSERT_NE(nullptr, c) << err;
	EXPECT_EQ(2u, amil_centers_count(c));
	ASSERT_NE(nullptr, amil_centers_key(c, 10));
	EXPECT_EQ(0x0f, amil_centers_key(c, 10)[15]);
	amil_centers_free(c);

	FILE *f = fopen(path, "a");
	ASSERT_NE(nullptr, f);
	fputs("10 " "ffffffffffffffffffffffffffffffff\n", f);
	fclose(f);
	errno = 0;
	EXPECT_EQ(nullptr, amil_centers_load(path, err, sizeof(err)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(std::string(path) + ":3: center 10 already defined on line 1", err);
	unlink(path);
}

TEST(CentersLoad, TooLargeFileRefused)
{
	char path[] = "/tmp/amil-centers-big-XXXXXX";
	int fd = mkstemp(path);
	char err[256];

	ASSERT_GE(fd, 0);
	/* Sparse: one byte over the limit without writing 64 MiB. */
	ASSERT_EQ(0, ftruncate(fd, (off_t)AMIL_CENTERS_FILE_MAX_BYTES + 1));
	close(fd);
	errno = 0;
	EXPECT_EQ(nullptr, amil_centers_load(path, err, sizeof(err)));
	EXPECT_EQ(EFBIG, errno);
	EXPECT_EQ(std::string(path) + ": too large (limit 67108864 bytes)", err);
	unlink(path);
}

/* ---- scale -------------------------------------------------------------- */

TEST(CentersScale, HundredThousandCenters)
{
	const uint32_t n = 100000;
	std::string text;
	Parsed p;

	text.reserve((size_t)n * 48);
	/* Strided ids so they are neither dense nor sequential. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = i * 40503u + 7;

		text += std::to_string(id) + " " + key_hex(id) + "\n";
	}
	parse(p, text);
	ASSERT_NE(nullptr, p.c) << p.msg;
	ASSERT_EQ(n, amil_centers_count(p.c));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = i * 40503u + 7, got;
		uint8_t want[AMIL_KEY_LEN], key[AMIL_KEY_LEN];
		std::string h = key_hex(id);

		for (int b = 0; b < AMIL_KEY_LEN; b++)
			want[b] = (uint8_t)strtoul(h.substr((size_t)b * 2, 2).c_str(), nullptr, 16);
		const uint8_t *k = amil_centers_key(p.c, id);
		ASSERT_NE(nullptr, k) << id;
		ASSERT_EQ(0, memcmp(want, k, AMIL_KEY_LEN)) << id;
		ASSERT_EQ(0, amil_centers_get(p.c, i, &got, key));
		ASSERT_EQ(id, got);
		/* Misses next to every hit. */
		ASSERT_EQ(nullptr, amil_centers_key(p.c, id + 1)) << id + 1;
	}
}

TEST(CentersScale, CenterLimit)
{
	std::string text;
	Parsed p;

	text.reserve((size_t)(AMIL_CENTERS_MAX + 1) * 45);
	for (uint32_t i = 0; i <= AMIL_CENTERS_MAX; i++)
		text += std::to_string(i) + " " + kKeyA + "\n";
	parse(p, text);
	EXPECT_EQ(nullptr, p.c);
	EXPECT_EQ(EINVAL, p.err_no);
	EXPECT_EQ("centers.txt:1000001: too many centers (limit 1000000)", p.msg);
}
