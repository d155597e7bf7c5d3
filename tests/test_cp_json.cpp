// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Unit tests for the control plane's JSON reader (controlplane/cp_json.h):
// the RFC 8259 grammar accepted and refused exactly, numbers kept as text so
// u64 and 128-bit money totals survive, strings decoded (escapes, surrogate
// pairs), lookups that tolerate missing members, bounded nesting, error
// messages that name the offset, the compact writer round-tripping, and no
// crash on truncated or mutated input (run under ASan in the asan build).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "cp_json.h"

namespace {

struct Doc {
	struct amil_json *d = nullptr;
	char err[128] = "";

	explicit Doc(const std::string &s) { d = amil_json_parse(s.data(), s.size(), err, sizeof(err)); }
	~Doc() { amil_json_destroy(&d); }
	const struct amil_json_value *root() const { return amil_json_root(d); }
};

std::string written(const struct amil_json_value *v)
{
	char *buf = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	EXPECT_EQ(amil_json_write(v, f), 0);
	fclose(f);
	std::string s(buf, len);
	free(buf);
	return s;
}

TEST(CpJson, ParsesAStatusReply)
{
	Doc j(R"( {"schema": 1, "node": {"id": 1, "name": "jkt-1", "uptime_s": 12.5},
		  "cluster": {"members": 5}, "health": "ok", "ok": true, "no": false, "nil": null,
		  "list": [1, "two", [3], {}]} )");

	ASSERT_NE(j.d, nullptr) << j.err;
	const struct amil_json_value *r = j.root();
	EXPECT_EQ(amil_json_type(r), AMIL_JSON_OBJECT);
	EXPECT_EQ(amil_json_len(r), 8u);
	EXPECT_STREQ(amil_json_num(amil_json_get(r, "schema")), "1");
	EXPECT_STREQ(amil_json_str(amil_json_get(amil_json_get(r, "node"), "name")), "jkt-1");
	EXPECT_STREQ(amil_json_num(amil_json_get(amil_json_get(r, "node"), "uptime_s")), "12.5");
	EXPECT_TRUE(amil_json_is_true(amil_json_get(r, "ok")));
	EXPECT_FALSE(amil_json_is_true(amil_json_get(r, "no")));
	EXPECT_EQ(amil_json_type(amil_json_get(r, "no")), AMIL_JSON_FALSE);
	EXPECT_EQ(amil_json_type(amil_json_get(r, "nil")), AMIL_JSON_NULL);
	const struct amil_json_value *l = amil_json_get(r, "list");
	EXPECT_EQ(amil_json_len(l), 4u);
	EXPECT_STREQ(amil_json_str(amil_json_at(l, 1)), "two");
	EXPECT_EQ(amil_json_type(amil_json_at(l, 2)), AMIL_JSON_ARRAY);
	EXPECT_EQ(amil_json_type(amil_json_at(l, 3)), AMIL_JSON_OBJECT);
	EXPECT_EQ(amil_json_at(l, 4), nullptr);
	// Member order is kept, keys readable while walking.
	const struct amil_json_value *m = amil_json_first(r);
	EXPECT_STREQ(amil_json_key(m), "schema");
	m = amil_json_next(m);
	EXPECT_STREQ(amil_json_key(m), "node");
	EXPECT_EQ(amil_json_key(amil_json_first(l)), nullptr) << "array elements have no key";
}

TEST(CpJson, MissingMembersChainToNull)
{
	Doc j(R"({"a": {"b": 1}, "s": "x"})");

	ASSERT_NE(j.d, nullptr);
	EXPECT_EQ(amil_json_get(j.root(), "zzz"), nullptr);
	EXPECT_EQ(amil_json_get(amil_json_get(j.root(), "zzz"), "b"), nullptr);
	EXPECT_EQ(amil_json_type(nullptr), AMIL_JSON_NULL);
	EXPECT_EQ(amil_json_get(amil_json_get(j.root(), "s"), "b"), nullptr) << "a string has no members";
	EXPECT_EQ(amil_json_str(amil_json_get(j.root(), "a")), nullptr);
	EXPECT_EQ(amil_json_num(amil_json_get(j.root(), "s")), nullptr);
	EXPECT_EQ(amil_json_len(nullptr), 0u);
	EXPECT_EQ(amil_json_first(amil_json_get(j.root(), "s")), nullptr);
	EXPECT_EQ(amil_json_next(nullptr), nullptr);
	EXPECT_EQ(amil_json_at(j.root(), 0), nullptr) << "an object is not an array";
}

TEST(CpJson, DuplicateKeysFirstWins)
{
	Doc j(R"({"k": 1, "k": 2})");

	ASSERT_NE(j.d, nullptr);
	EXPECT_STREQ(amil_json_num(amil_json_get(j.root(), "k")), "1");
	EXPECT_EQ(amil_json_len(j.root()), 2u);
}

TEST(CpJson, NumbersKeepTheirTextExactly)
{
	Doc j(R"([18446744073709551615, -9223372036854775808, 170141183460469231731687303715884105727,
		  0, -0, 1.5e-3, 2E+10, 0.25])");
	uint64_t u = 0;
	int64_t i = 0;

	ASSERT_NE(j.d, nullptr) << j.err;
	const struct amil_json_value *r = j.root();
	EXPECT_STREQ(amil_json_num(amil_json_at(r, 0)), "18446744073709551615");
	EXPECT_EQ(amil_json_u64(amil_json_at(r, 0), &u), 0);
	EXPECT_EQ(u, UINT64_MAX);
	EXPECT_EQ(amil_json_i64(amil_json_at(r, 0), &i), -ERANGE);
	EXPECT_EQ(amil_json_i64(amil_json_at(r, 1), &i), 0);
	EXPECT_EQ(i, INT64_MIN);
	EXPECT_EQ(amil_json_u64(amil_json_at(r, 1), &u), -ERANGE) << "negative into u64";
	EXPECT_STREQ(amil_json_num(amil_json_at(r, 2)), "170141183460469231731687303715884105727");
	EXPECT_EQ(amil_json_u64(amil_json_at(r, 2), &u), -ERANGE);
	EXPECT_EQ(amil_json_u64(amil_json_at(r, 4), &u), 0) << "-0 is zero";
	EXPECT_EQ(u, 0u);
	EXPECT_STREQ(amil_json_num(amil_json_at(r, 5)), "1.5e-3");
	u = 77;
	EXPECT_EQ(amil_json_u64(amil_json_at(r, 5), &u), -EINVAL) << "not an integer";
	EXPECT_EQ(amil_json_u64(amil_json_at(r, 6), &u), -EINVAL);
	EXPECT_EQ(u, 77u) << "untouched on error";
	EXPECT_EQ(amil_json_u64(nullptr, &u), -EINVAL);

	Doc k("[18446744073709551616, 9223372036854775808]");
	ASSERT_NE(k.d, nullptr);
	EXPECT_EQ(amil_json_u64(amil_json_at(k.root(), 0), &u), -ERANGE);
	EXPECT_EQ(amil_json_i64(amil_json_at(k.root(), 1), &i), -ERANGE);
}

TEST(CpJson, StringsAreDecoded)
{
	Doc j(R"(["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u20ac", "\ud83d\ude00", "caf\u00E9 ok", "raw é", "nul\u0000x", ""])");

	ASSERT_NE(j.d, nullptr) << j.err;
	const struct amil_json_value *r = j.root();
	EXPECT_STREQ(amil_json_str(amil_json_at(r, 0)), "a\"b\\c/d\b\f\n\r\t");
	EXPECT_STREQ(amil_json_str(amil_json_at(r, 1)), "\xc3\xa9\xe2\x82\xac");
	EXPECT_STREQ(amil_json_str(amil_json_at(r, 2)), "\xf0\x9f\x98\x80");
	EXPECT_STREQ(amil_json_str(amil_json_at(r, 3)), "caf\xc3\xa9 ok");
	EXPECT_STREQ(amil_json_str(amil_json_at(r, 4)), "raw \xc3\xa9");
	EXPECT_EQ(amil_json_len(amil_json_at(r, 5)), 5u) << "length counts the embedded NUL";
	EXPECT_EQ(memcmp(amil_json_str(amil_json_at(r, 5)), "nul\0x", 5), 0);
	EXPECT_STREQ(amil_json_str(amil_json_at(r, 6)), "");
	EXPECT_EQ(amil_json_len(amil_json_at(r, 6)), 0u);
}

TEST(CpJson, TopLevelScalars)
{
	Doc a("  42 ");
	ASSERT_NE(a.d, nullptr);
	EXPECT_STREQ(amil_json_num(a.root()), "42");
	Doc b("\"s\"");
	ASSERT_NE(b.d, nullptr);
	EXPECT_STREQ(amil_json_str(b.root()), "s");
	Doc c("null");
	ASSERT_NE(c.d, nullptr);
	EXPECT_EQ(amil_json_type(c.root()), AMIL_JSON_NULL);
}

TEST(CpJson, RefusesWhatRfc8259Refuses)
{
	const std::pair<const char *, const char *> bad[] = {
		{"", "offset 0: unexpected end"},
		{"   ", "offset 3"},
		{"{", "offset 1"},
		{"{\"a\" 1}", "expected ':'"},
		{"{\"a\":1,}", "expected a string key"},
		{"[1,]", "expected a value"},
		{"[1 2]", "expected ',' or ']'"},
		{"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
		{"{a:1}", "expected a string key"},
		{"01", "leading zero"},
		{"-", "expected a digit"},
		{"1.", "after '.'"},
		{".5", "expected a value"},
		{"1e", "exponent"},
		{"+1", "expected a value"},
		{"tru", "expected a value"},
		{"nul", "expected a value"},
		{"\"abc", "unterminated string"},
		{"\"a\tb\"", "control character"},
		{"\"\\x\"", "invalid escape"},
		{"\"\\u12g4\"", "bad hex digit"},
		{"\"\\u12\"", "\\u escape"},
		{"\"\\ud800\"", "high surrogate"},
		{"\"\\ud800\\u0041\"", "low surrogate"},
		{"\"\\udc00\"", "lone low surrogate"},
		{"{} {}", "unexpected data after"},
		{"[1] x", "offset 4"},
		{"// c\n1", "expected a value"},
		{"NaN", "expected a value"},
	};

	for (const auto &b : bad) {
		Doc j(b.first);
		EXPECT_EQ(j.d, nullptr) << b.first;
		EXPECT_EQ(errno, EBADMSG) << b.first;
		EXPECT_NE(std::string(j.err).find(b.second), std::string::npos)
			<< "input " << b.first << " -> " << j.err;
		EXPECT_EQ(std::string(j.err).rfind("offset ", 0), 0u) << j.err;
	}
}

TEST(CpJson, NestingIsBounded)
{
	std::string ok = std::string(AMIL_JSON_MAX_DEPTH, '[') + std::string(AMIL_JSON_MAX_DEPTH, ']');
	std::string deep = std::string(AMIL_JSON_MAX_DEPTH + 2, '[') +
			   std::string(AMIL_JSON_MAX_DEPTH + 2, ']');
	std::string huge(1 << 20, '[');  // would overflow the stack without the bound

	Doc a(ok);
	EXPECT_NE(a.d, nullptr) << a.err;
	Doc b(deep);
	EXPECT_EQ(b.d, nullptr);
	EXPECT_NE(std::string(b.err).find("nesting"), std::string::npos) << b.err;
	Doc c(huge);
	EXPECT_EQ(c.d, nullptr);
}

TEST(CpJson, BadArguments)
{
	char err[64];

	errno = 0;
	EXPECT_EQ(amil_json_parse(nullptr, 3, err, sizeof(err)), nullptr);
	EXPECT_EQ(errno, EINVAL);
	// No error buffer is fine.
	EXPECT_EQ(amil_json_parse("[", 1, nullptr, 0), nullptr);
	EXPECT_EQ(errno, EBADMSG);
	amil_json_destroy(nullptr);
	struct amil_json *none = nullptr;
	amil_json_destroy(&none);
	EXPECT_EQ(amil_json_root(nullptr), nullptr);
	// Not NUL-terminated: only len bytes are read.
	const char buf[] = {'[', '1', ']', 'x'};
	struct amil_json *d = amil_json_parse(buf, 3, err, sizeof(err));
	ASSERT_NE(d, nullptr) << err;
	amil_json_destroy(&d);
	EXPECT_EQ(d, nullptr);
}

TEST(CpJson, WriterRoundTrips)
{
	const char *in = R"( { "a" : [ 1 , -2.5e3 , "x\"y\n\u0001\u00e9" , true , false , null ] ,
			       "b" : { } , "c" : [ ] , "nul\u0000key" : 18446744073709551615 } )";
	Doc j(in);

	ASSERT_NE(j.d, nullptr) << j.err;
	std::string once = written(j.root());
	EXPECT_EQ(once, "{\"a\":[1,-2.5e3,\"x\\\"y\\n\\u0001\xc3\xa9\",true,false,null],\"b\":{},"
			"\"c\":[],\"nul\\u0000key\":18446744073709551615}");
	Doc k(once);
	ASSERT_NE(k.d, nullptr) << k.err;
	EXPECT_EQ(written(k.root()), once);
}

// Every prefix of a valid document, and random byte mutations of it, must
// either parse or fail cleanly (ASan/UBSan catch the rest).
TEST(CpJson, TruncationsAndMutationsNeverCrash)
{
	const std::string doc =
		R"({"schema":1,"events":[{"type":"nodeup","node_id":2,"name":"s\u00e9y","at_ns":1795600800123456789,)"
		R"("x":[true,false,null,-1.5E+2,"\ud83d\ude00"]}],"k":{"a":{}}})";
	std::mt19937 rng(12345);
	size_t parsed = 0;

	for (size_t n = 0; n < doc.size(); n++) {
		Doc j(doc.substr(0, n));
		EXPECT_EQ(j.d, nullptr) << "a strict prefix is never a document: " << n;
	}
	for (int i = 0; i < 20000; i++) {
		std::string m = doc;
		int edits = 1 + (int)(rng() % 4);

		for (int e = 0; e < edits; e++)
			m[rng() % m.size()] = (char)(rng() % 256);
		Doc j(m);
		if (j.d != nullptr) {
			parsed++;
			(void)written(j.root());
		} else {
			EXPECT_NE(j.err[0], '\0');
		}
	}
	EXPECT_GT(parsed, 0u) << "some mutations (inside strings) stay valid";
}

}  // namespace
