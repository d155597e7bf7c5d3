// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Starts DPDK's EAL once per test binary, without hugepages, PCI or any
// device, under a file prefix unique to this process so test binaries can
// run side by side.  Include from exactly one .cpp per test binary and
// call amil_test_eal_init() from main() or a gtest Environment.
#ifndef AMIL_TESTS_EAL_ENV_H
#define AMIL_TESTS_EAL_ENV_H

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

class AmilEalEnvironment : public ::testing::Environment {
public:
	explicit AmilEalEnvironment(const char *name) : name_(name) {}
	void SetUp() override
	{
		prefix_ = "amil-test-" + name_ + "-" + std::to_string(getpid());
		std::string prefix = "--file-prefix=" + prefix_;
		std::vector<std::string> args = {"test", "-l", "0", "--no-huge", "-m", "256",
						 "--no-pci", "--no-shconf", "--log-level=lib.eal:error",
						 prefix};
		std::vector<char *> argv;
		for (auto &a : args)
			argv.push_back(&a[0]);
		ASSERT_GE(rte_eal_init((int)argv.size(), argv.data()), 0) << "rte_eal_init failed";
	}
	void TearDown() override
	{
		std::error_code ec;

		rte_eal_cleanup();
		/* EAL leaves its runtime directory behind even with --no-shconf. */
		std::filesystem::remove_all("/var/run/dpdk/" + prefix_, ec);
	}

private:
	std::string name_, prefix_;
};

// Use in a test file instead of gtest_main's main().
#define AMIL_TEST_MAIN_WITH_EAL(name)                                              \
	int main(int argc, char **argv)                                            \
	{                                                                          \
		::testing::InitGoogleTest(&argc, argv);                            \
		::testing::AddGlobalTestEnvironment(new AmilEalEnvironment(name)); \
		return RUN_ALL_TESTS();                                            \
	}

#endif
