// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// CRC32C (lib/amil_crc32c): published check values, the SSE4.2 path equal
// to the table path for every length and alignment, and incremental use
// equal to one call.  Every ledger header and record depends on these
// values staying exactly the standard CRC32C: a different CRC would make
// old ledgers unreadable.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "amil_crc32c.h"

namespace {

// Restores the hardware path however the test ends.
struct ForceTable {
	explicit ForceTable(int on) { amil_crc32c_force_table(on); }
	~ForceTable() { amil_crc32c_force_table(0); }
};

// A value computed with both implementations; they must agree.
uint32_t crc_both(const void *buf, size_t len)
{
	uint32_t hw, tab;

	hw = amil_crc32c(0, buf, len);
	{
		ForceTable t(1);
		tab = amil_crc32c(0, buf, len);
	}
	EXPECT_EQ(hw, tab) << "hardware and table paths differ at length " << len;
	return tab;
}

TEST(Crc32c, CheckValue)
{
	const char s[] = "123456789";

	EXPECT_EQ(crc_both(s, 9), 0xE3069283u);
}

TEST(Crc32c, EmptyAndSingleByte)
{
	EXPECT_EQ(crc_both("", 0), 0u);
	// Continuing with nothing changes nothing.
	EXPECT_EQ(amil_crc32c(0xE3069283u, "", 0), 0xE3069283u);
	EXPECT_EQ(crc_both("a", 1), 0xC1D04330u);
}

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32c, Rfc3720Vectors)
{
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(crc_both(buf, 32), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	EXPECT_EQ(crc_both(buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	EXPECT_EQ(crc_both(buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	EXPECT_EQ(crc_both(buf, 32), 0x113FDB5Cu);

	// An iSCSI read command PDU.
	const uint8_t pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	EXPECT_EQ(crc_both(pdu, sizeof(pdu)), 0xD9963A56u);
}

// The hardware path eats 8 bytes per instruction then single bytes: every
// length 0..300 at every start alignment 0..7 exercises both loops and
// their hand-over.
TEST(Crc32c, HardwareEqualsTableEveryLengthAndAlignment)
{
	std::mt19937_64 rng(20261125);
	std::vector<uint8_t> buf(300 + 8);

	for (size_t len = 0; len <= 300; len++) {
		for (auto &b : buf)
			b = (uint8_t)rng();
		for (size_t align = 0; align < 8; align++) {
			uint32_t hw = amil_crc32c(0, buf.data() + align, len);
			uint32_t tab;
			{
				ForceTable t(1);
				tab = amil_crc32c(0, buf.data() + align, len);
			}
			ASSERT_EQ(hw, tab) << "len " << len << " align " << align;
		}
	}
}

// The table path against a bit-at-a-time reference straight from the
// definition (reflected polynomial 0x82F63B78, init and final xor ~0).
TEST(Crc32c, TableEqualsBitwiseReference)
{
	std::mt19937 rng(7);
	std::vector<uint8_t> buf(257);
	ForceTable t(1);

	for (auto &b : buf)
		b = (uint8_t)rng();
	for (size_t len = 0; len <= buf.size(); len += 17) {
		uint32_t c = ~0u;

		for (size_t i = 0; i < len; i++) {
			c ^= buf[i];
			for (int k = 0; k < 8; k++)
				c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
		}
		EXPECT_EQ(amil_crc32c(0, buf.data(), len), ~c) << "len " << len;
	}
}

TEST(Crc32c, IncrementalEqualsOneShot)
{
	std::mt19937_64 rng(42);
	std::vector<uint8_t> buf(200);

	for (auto &b : buf)
		b = (uint8_t)rng();
	for (int table = 0; table <= 1; table++) {
		ForceTable t(table);
		uint32_t whole = amil_crc32c(0, buf.data(), buf.size());

		// Every two-way split.
		for (size_t cut = 0; cut <= buf.size(); cut++) {
			uint32_t c = amil_crc32c(0, buf.data(), cut);

			c = amil_crc32c(c, buf.data() + cut, buf.size() - cut);
			ASSERT_EQ(c, whole) << "cut " << cut << " table " << table;
		}
		// Byte by byte.
		uint32_t c = 0;
		for (size_t i = 0; i < buf.size(); i++)
			c = amil_crc32c(c, &buf[i], 1);
		EXPECT_EQ(c, whole);
		// Three pieces at random places.
		for (int i = 0; i < 100; i++) {
			size_t a = rng() % (buf.size() + 1), b = rng() % (buf.size() + 1);
			if (a > b)
				std::swap(a, b);
			uint32_t x = amil_crc32c(0, buf.data(), a);
			x = amil_crc32c(x, buf.data() + a, b - a);
			x = amil_crc32c(x, buf.data() + b, buf.size() - b);
			ASSERT_EQ(x, whole) << a << " " << b;
		}
	}
	// The check value in two pieces.
	EXPECT_EQ(amil_crc32c(amil_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

// A flipped bit anywhere changes the CRC (CRCs detect every 1-bit error),
// which the ledger's torn-write detection relies on.
TEST(Crc32c, EverySingleBitFlipDetected)
{
	uint8_t rec[76];

	for (size_t i = 0; i < sizeof(rec); i++)
		rec[i] = (uint8_t)(i * 37 + 11);
	uint32_t good = crc_both(rec, sizeof(rec));
	for (size_t bit = 0; bit < sizeof(rec) * 8; bit++) {
		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ASSERT_NE(amil_crc32c(0, rec, sizeof(rec)), good) << "bit " << bit;
		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

}  // namespace
