// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// The registry's own-entries map (controlplane/ownset.c) against std::map.
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <random>
#include <string>

extern "C" {
#include "ownset.h"
}

TEST(Ownset, PutGetDelReplace)
{
	struct amil_ownset *s = amil_ownset_new();
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(amil_ownset_get(s, "a"), nullptr);
	EXPECT_EQ(amil_ownset_put(s, "a", "1"), 0);
	EXPECT_STREQ(amil_ownset_get(s, "a"), "1");
	EXPECT_EQ(amil_ownset_put(s, "a", "2"), 0);
	EXPECT_STREQ(amil_ownset_get(s, "a"), "2");
	EXPECT_EQ(amil_ownset_count(s), 1u);
	EXPECT_EQ(amil_ownset_put(s, "", "x"), -EINVAL);
	EXPECT_EQ(amil_ownset_put(s, std::string(256, 'k').c_str(), "x"), -EINVAL);
	EXPECT_EQ(amil_ownset_put(s, "b", std::string(1025, 'v').c_str()), -EINVAL);
	EXPECT_EQ(amil_ownset_put(s, "b", std::string(1024, 'v').c_str()), 0);
	EXPECT_EQ(amil_ownset_del(s, "a"), 0);
	EXPECT_EQ(amil_ownset_del(s, "a"), -ENOENT);
	EXPECT_EQ(amil_ownset_get(s, "a"), nullptr);
	EXPECT_EQ(amil_ownset_count(s), 1u);
	amil_ownset_destroy(s);
	amil_ownset_destroy(nullptr);
}

TEST(Ownset, RandomOperationsMatchAReferenceMap)
{
	for (unsigned seed = 1; seed <= 20; seed++) {
		std::mt19937_64 rng(seed);
		std::map<std::string, std::string> ref;
		struct amil_ownset *s = amil_ownset_new();
		ASSERT_NE(s, nullptr);
		for (int i = 0; i < 20000; i++) {
			std::string k = "k" + std::to_string(rng() % 3000);
			if (rng() % 3 == 0) {
				EXPECT_EQ(amil_ownset_del(s, k.c_str()), ref.erase(k) ? 0 : -ENOENT);
			} else {
				std::string v = "v" + std::to_string(rng());
				ASSERT_EQ(amil_ownset_put(s, k.c_str(), v.c_str()), 0);
				ref[k] = v;
			}
		}
		ASSERT_EQ(amil_ownset_count(s), ref.size()) << "seed " << seed;
		std::map<std::string, std::string> seen;
		amil_ownset_foreach(s, [](void *ctx, const char *k, const char *v) {
			(*(std::map<std::string, std::string> *)ctx)[k] = v;
			return 0;
		}, &seen);
		EXPECT_EQ(seen, ref) << "seed " << seed;
		for (const auto &kv : ref)
			EXPECT_STREQ(amil_ownset_get(s, kv.first.c_str()), kv.second.c_str());
		amil_ownset_destroy(s);
	}
}

TEST(Ownset, ForeachStopsOnNonZero)
{
	struct amil_ownset *s = amil_ownset_new();
	for (int i = 0; i < 100; i++)
		amil_ownset_put(s, ("n" + std::to_string(i)).c_str(), "v");
	int calls = 0;
	EXPECT_EQ(amil_ownset_foreach(s, [](void *ctx, const char *, const char *) {
		return ++*(int *)ctx == 7 ? 42 : 0;
	}, &calls), 42);
	EXPECT_EQ(calls, 7);
	amil_ownset_destroy(s);
}
