/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * SipHash-2-4 known-answer tests for the tag primitive.
 *
 * The 64 vectors are the official ones of the SipHash reference
 * implementation: vectors_sip64[] in vectors.h of
 * https://github.com/veorq/SipHash (Aumasson & Bernstein; the same values
 * as Appendix A of the SipHash paper, https://131002.net/siphash/siphash.pdf).
 * Key 00 01 .. 0f, message i = the i bytes 00 01 .. (i-1), output bytes in
 * the order SipHash writes them (little-endian u64).  They were typed in
 * from that file and cross-checked against an independent transcription
 * as little-endian u64 constants.
 *
 * This binary deliberately never calls sodium_init(): the wire code calls
 * crypto_shorthash_siphash24() without it, so these tests prove that is safe.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <sodium/crypto_shorthash_siphash24.h>

#include "amil_wire.h"

namespace {

const uint8_t vectors_sip64[64][8] = {
	{0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}, /*  0 */
	{0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74}, /*  1 */
	{0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d}, /*  2 */
	{0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85}, /*  3 */
	{0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf}, /*  4 */
	{0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18}, /*  5 */
	{0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb}, /*  6 */
	{0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab}, /*  7 */
	{0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93}, /*  8 */
	{0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e}, /*  9 */
	{0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a}, /* 10 */
	{0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4}, /* 11 */
	{0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75}, /* 12 */
	{0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14}, /* 13 */
	{0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7}, /* 14 */
	{0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1}, /* 15 */
	{0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f}, /* 16 */
	{0x94, 0x47, 0xbe, 0x2c, 0xf5, 0xe9, 0x9a, 0x69}, /* 17 */
	{0x9c, 0xd3, 0x8d, 0x96, 0xf0, 0xb3, 0xc1, 0x4b}, /* 18 */
	{0xbd, 0x61, 0x79, 0xa7, 0x1d, 0xc9, 0x6d, 0xbb}, /* 19 */
	{0x98, 0xee, 0xa2, 0x1a, 0xf2, 0x5c, 0xd6, 0xbe}, /* 20 */
	{0xc7, 0x67, 0x3b, 0x2e, 0xb0, 0xcb, 0xf2, 0xd0}, /* 21 */
	{0x88, 0x3e, 0xa3, 0xe3, 0x95, 0x67, 0x53, 0x93}, /* 22 */
	{0xc8, 0xce, 0x5c, 0xcd, 0x8c, 0x03, 0x0c, 0xa8}, /* 23 */
	{0x94, 0xaf, 0x49, 0xf6, 0xc6, 0x50, 0xad, 0xb8}, /* 24 */
	{0xea, 0xb8, 0x85, 0x8a, 0xde, 0x92, 0xe1, 0xbc}, /* 25 */
	{0xf3, 0x15, 0xbb, 0x5b, 0xb8, 0x35, 0xd8, 0x17}, /* 26 */
	{0xad, 0xcf, 0x6b, 0x07, 0x63, 0x61, 0x2e, 0x2f}, /* 27 */
	{0xa5, 0xc9, 0x1d, 0xa7, 0xac, 0xaa, 0x4d, 0xde}, /* 28 */
	{0x71, 0x65, 0x95, 0x87, 0x66, 0x50, 0xa2, 0xa6}, /* 29 */
	{0x28, 0xef, 0x49, 0x5c, 0x53, 0xa3, 0x87, 0xad}, /* 30 */
	{0x42, 0xc3, 0x41, 0xd8, 0xfa, 0x92, 0xd8, 0x32}, /* 31 */
	{0xce, 0x7c, 0xf2, 0x72, 0x2f, 0x51, 0x27, 0x71}, /* 32 */
	{0xe3, 0x78, 0x59, 0xf9, 0x46, 0x23, 0xf3, 0xa7}, /* 33 */
	{0x38, 0x12, 0x05, 0xbb, 0x1a, 0xb0, 0xe0, 0x12}, /* 34 */
	{0xae, 0x97, 0xa1, 0x0f, 0xd4, 0x34, 0xe0, 0x15}, /* 35 */
	{0xb4, 0xa3, 0x15, 0x08, 0xbe, 0xff, 0x4d, 0x31}, /* 36 */
	{0x81, 0x39, 0x62, 0x29, 0xf0, 0x90, 0x79, 0x02}, /* 37 */
	{0x4d, 0x0c, 0xf4, 0x9e, 0xe5, 0xd4, 0xdc, 0xca}, /* 38 */
	{0x5c, 0x73, 0x33, 0x6a, 0x76, 0xd8, 0xbf, 0x9a}, /* 39 */
	{0xd0, 0xa7, 0x04, 0x53, 0x6b, 0xa9, 0x3e, 0x0e}, /* 40 */
	{0x92, 0x59, 0x58, 0xfc, 0xd6, 0x42, 0x0c, 0xad}, /* 41 */
	{0xa9, 0x15, 0xc2, 0x9b, 0xc8, 0x06, 0x73, 0x18}, /* 42 */
	{0x95, 0x2b, 0x79, 0xf3, 0xbc, 0x0a, 0xa6, 0xd4}, /* 43 */
	{0xf2, 0x1d, 0xf2, 0xe4, 0x1d, 0x45, 0x35, 0xf9}, /* 44 */
	{0x87, 0x57, 0x75, 0x19, 0x04, 0x8f, 0x53, 0xa9}, /* 45 */
	{0x10, 0xa5, 0x6c, 0xf5, 0xdf, 0xcd, 0x9a, 0xdb}, /* 46 */
	{0xeb, 0x75, 0x09, 0x5c, 0xcd, 0x98, 0x6c, 0xd0}, /* 47 */
	{0x51, 0xa9, 0xcb, 0x9e, 0xcb, 0xa3, 0x12, 0xe6}, /* 48 */
	{0x96, 0xaf, 0xad, 0xfc, 0x2c, 0xe6, 0x66, 0xc7}, /* 49 */
	{0x72, 0xfe, 0x52, 0x97, 0x5a, 0x43, 0x64, 0xee}, /* 50 */
	{0x5a, 0x16, 0x45, 0xb2, 0x76, 0xd5, 0x92, 0xa1}, /* 51 */
	{0xb2, 0x74, 0xcb, 0x8e, 0xbf, 0x87, 0x87, 0x0a}, /* 52 */
	{0x6f, 0x9b, 0xb4, 0x20, 0x3d, 0xe7, 0xb3, 0x81}, /* 53 */
	{0xea, 0xec, 0xb2, 0xa3, 0x0b, 0x22, 0xa8, 0x7f}, /* 54 */
	{0x99, 0x24, 0xa4, 0x3c, 0xc1, 0x31, 0x57, 0x24}, /* 55 */
	{0xbd, 0x83, 0x8d, 0x3a, 0xaf, 0xbf, 0x8d, 0xb7}, /* 56 */
	{0x0b, 0x1a, 0x2a, 0x32, 0x65, 0xd5, 0x1a, 0xea}, /* 57 */
	{0x13, 0x50, 0x79, 0xa3, 0x23, 0x1c, 0xe6, 0x60}, /* 58 */
	{0x93, 0x2b, 0x28, 0x46, 0xe4, 0xd7, 0x06, 0x66}, /* 59 */
	{0xe1, 0x91, 0x5f, 0x5c, 0xb1, 0xec, 0xa4, 0x6c}, /* 60 */
	{0xf3, 0x25, 0x96, 0x5c, 0xa1, 0x6d, 0x62, 0x9f}, /* 61 */
	{0x57, 0x5f, 0xf2, 0x8e, 0x60, 0x38, 0x1b, 0xe5}, /* 62 */
	{0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95}, /* 63 */
};

void
reference_key(uint8_t key[16])
{
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
}

} // namespace

TEST(SipHash, LibsodiumMatchesReferenceVectors)
{
	uint8_t key[16], msg[64], out[8];

	reference_key(key);
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (int len = 0; len < 64; len++) {
		memset(out, 0, sizeof(out));
		ASSERT_EQ(0, crypto_shorthash_siphash24(out, msg, (unsigned long long)len, key));
		EXPECT_EQ(0, memcmp(out, vectors_sip64[len], 8)) << "message length " << len;
	}
}

TEST(SipHash, WireSignIsSipHashOfFirst56Bytes)
{
	/* A 64-byte buffer 00 01 .. 3f signed with key 00 .. 0f: the tag covers
	 * bytes 0..55, i.e. exactly the reference message of length 56. */
	uint8_t key[16], buf[AMIL_WIRE_LEN], want[8];

	reference_key(key);
	for (int i = 0; i < AMIL_WIRE_LEN; i++)
		buf[i] = (uint8_t)i;
	amil_wire_sign(buf, key);
	EXPECT_EQ(0, memcmp(buf + AMIL_WIRE_TAG_OFF, vectors_sip64[56], 8));
	for (int i = 0; i < AMIL_WIRE_TAG_OFF; i++)
		EXPECT_EQ(i, buf[i]) << "sign must not touch the covered bytes";

	ASSERT_EQ(0, crypto_shorthash_siphash24(want, buf, AMIL_WIRE_TAG_OFF, key));
	EXPECT_EQ(0, memcmp(buf + AMIL_WIRE_TAG_OFF, want, 8));
	EXPECT_EQ(0, amil_wire_verify(buf, key));
}

TEST(SipHash, WireVerifyAcceptsReferenceTag)
{
	/* Independent of amil_wire_sign(): place the published tag by hand. */
	uint8_t key[16], buf[AMIL_WIRE_LEN];

	reference_key(key);
	for (int i = 0; i < AMIL_WIRE_TAG_OFF; i++)
		buf[i] = (uint8_t)i;
	memcpy(buf + AMIL_WIRE_TAG_OFF, vectors_sip64[56], 8);
	EXPECT_EQ(0, amil_wire_verify(buf, key));
	memcpy(buf + AMIL_WIRE_TAG_OFF, vectors_sip64[55], 8);
	EXPECT_EQ(-EBADMSG, amil_wire_verify(buf, key));
}

/*
 * AVX2 four-lane SipHash (lib/amil_siphash_x4.c) and the burst API built on
 * it.  Everything is checked against libsodium, the reference the wire
 * format is defined by, and against the published vector for length 56.
 */
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include <endian.h>

#include "amil_siphash_x4.h"

namespace {

/* Restores the dispatch flag even when an assertion ends the test early. */
struct ForceScalar {
	explicit ForceScalar(bool on) { amil_siphash_x4_force_scalar(on); }
	~ForceScalar() { amil_siphash_x4_force_scalar(false); }
};

uint64_t
sodium_siphash56(const uint8_t *msg, const uint8_t *key)
{
	uint8_t out[8];
	uint64_t v;

	EXPECT_EQ(0, crypto_shorthash_siphash24(out, msg, 56, key));
	memcpy(&v, out, sizeof(v));
	return le64toh(v);
}

void
fill_random(std::mt19937_64 &rng, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng();
}

/* @n signed-able 64-byte messages at odd offsets in one arena (the data
 * plane's payloads sit at arbitrary alignment), with @n keys of which some
 * repeat. */
struct Burst {
	std::vector<uint8_t> arena;
	std::vector<uint8_t> keyspace;
	std::vector<void *> bufs;
	std::vector<const uint8_t *> keys;

	Burst(std::mt19937_64 &rng, unsigned n)
		: arena(n * 72 + 8), keyspace(3 * 16), bufs(n), keys(n)
	{
		fill_random(rng, arena.data(), arena.size());
		fill_random(rng, keyspace.data(), keyspace.size());
		for (unsigned i = 0; i < n; i++) {
			bufs[i] = arena.data() + i * 72 + (i % 8);
			keys[i] = keyspace.data() + 16 * (rng() % 3);
		}
	}
	const void *const *cbufs() const { return (const void *const *)bufs.data(); }
};

} // namespace

TEST(SipHashX4, DispatchMatchesCpuAndHonoursForceScalar)
{
	EXPECT_EQ((bool)__builtin_cpu_supports("avx2"), amil_siphash_x4_usable());
	{
		ForceScalar f(true);
		EXPECT_FALSE(amil_siphash_x4_usable());
	}
	EXPECT_EQ((bool)__builtin_cpu_supports("avx2"), amil_siphash_x4_usable());
}

TEST(SipHashX4, EqualsLibsodiumOn200kRandomQuadruples)
{
	if (!amil_siphash_x4_usable())
		GTEST_SKIP() << "no AVX2 on this CPU: the x4 kernel cannot run";

	std::mt19937_64 rng(0x5195a54);
	/* 4 lanes x (56 bytes + up to 7 of misalignment), keys likewise. */
	uint8_t mbuf[4][64], kbuf[4][24];
	unsigned mismatches = 0;

	for (int iter = 0; iter < 200000; iter++) {
		const uint8_t *msg[4], *key[4];
		uint64_t got[4];
		int kind = iter % 8;

		for (int l = 0; l < 4; l++) {
			msg[l] = mbuf[l] + (iter + l) % 8;
			key[l] = kbuf[l] + (iter + 3 * l) % 8;
			fill_random(rng, (uint8_t *)msg[l], 56);
			fill_random(rng, (uint8_t *)key[l], 16);
		}
		switch (kind) {
		case 0: /* one key in all lanes */
			key[1] = key[2] = key[3] = key[0];
			break;
		case 1: /* two keys, interleaved */
			key[2] = key[0];
			key[3] = key[1];
			break;
		case 2: /* all-zero data and keys in some lanes */
			memset((uint8_t *)msg[iter / 8 % 4], 0, 56);
			memset((uint8_t *)key[(iter / 8 + 1) % 4], 0, 16);
			break;
		case 3: /* all-0xff data and keys in some lanes */
			memset((uint8_t *)msg[iter / 8 % 4], 0xff, 56);
			memset((uint8_t *)key[(iter / 8 + 2) % 4], 0xff, 16);
			break;
		case 4: /* the same message (pointer) in every lane, keys differ */
			msg[1] = msg[2] = msg[3] = msg[0];
			break;
		default:
			break;
		}
		if (iter == 0 || iter == 1) { /* whole quadruple all 0x00 / all 0xff */
			for (int l = 0; l < 4; l++) {
				memset((uint8_t *)msg[l], iter == 0 ? 0x00 : 0xff, 56);
				memset((uint8_t *)key[l], iter == 0 ? 0x00 : 0xff, 16);
			}
		}
		amil_siphash_x4_hash56(got, msg, key);
		for (int l = 0; l < 4; l++) {
			uint64_t want = sodium_siphash56(msg[l], key[l]);

			if (got[l] != want && mismatches++ < 10)
				ADD_FAILURE() << "iteration " << iter << " lane " << l << ": got "
					      << std::hex << got[l] << " want " << want;
		}
	}
	EXPECT_EQ(0u, mismatches);
}

TEST(SipHashX4, ReadsExactly56Bytes)
{
	/* The kernel's second load starts at byte 24 so it never reads past
	 * byte 55: messages ending at the very end of an allocation are safe
	 * (ASan would flag an overread here), and bytes 56.. do not matter. */
	if (!amil_siphash_x4_usable())
		GTEST_SKIP() << "no AVX2";
	std::vector<uint8_t *> heap;
	const uint8_t *msg[4], *key[4];
	uint8_t k[16];
	uint64_t got[4];

	reference_key(k);
	for (int l = 0; l < 4; l++) {
		uint8_t *m = new uint8_t[56];

		for (int i = 0; i < 56; i++)
			m[i] = (uint8_t)i;
		heap.push_back(m);
		msg[l] = m;
		key[l] = k;
	}
	amil_siphash_x4_hash56(got, msg, key);
	for (int l = 0; l < 4; l++) {
		uint64_t t = htole64(got[l]);

		EXPECT_EQ(0, memcmp(&t, vectors_sip64[56], 8)) << "lane " << l;
	}
	for (uint8_t *m : heap)
		delete[] m;
}

TEST(SipHashX4, BurstGivesReferenceVector56)
{
	/* The published vector for length 56 (message 00..37, key 00..0f)
	 * through both burst calls: 7 messages = one AVX2 group + 3 scalar. */
	for (bool scalar : {false, true}) {
		ForceScalar f(scalar);
		uint8_t key[16], buf[7][AMIL_WIRE_LEN];
		void *bufs[7];
		const uint8_t *keys[7];
		int res[7];

		reference_key(key);
		for (int m = 0; m < 7; m++) {
			for (int i = 0; i < AMIL_WIRE_LEN; i++)
				buf[m][i] = (uint8_t)i;
			bufs[m] = buf[m];
			keys[m] = key;
		}
		/* Verify first: the bytes 38..3f sitting in the tag are wrong. */
		amil_wire_verify_burst((const void *const *)bufs, keys, 7, res);
		for (int m = 0; m < 7; m++)
			EXPECT_EQ(-EBADMSG, res[m]) << "scalar=" << scalar << " message " << m;
		amil_wire_sign_burst(bufs, keys, 7);
		for (int m = 0; m < 7; m++) {
			EXPECT_EQ(0, memcmp(buf[m] + AMIL_WIRE_TAG_OFF, vectors_sip64[56], 8))
				<< "scalar=" << scalar << " message " << m;
			for (int i = 0; i < AMIL_WIRE_TAG_OFF; i++)
				ASSERT_EQ(i, buf[m][i]) << "sign must not touch the covered bytes";
		}
		amil_wire_verify_burst((const void *const *)bufs, keys, 7, res);
		for (int m = 0; m < 7; m++)
			EXPECT_EQ(0, res[m]) << "scalar=" << scalar << " message " << m;
	}
}

TEST(SipHashX4, SignThenVerifyBurstRoundTripForEveryCount)
{
	std::mt19937_64 rng(13);

	for (unsigned n = 0; n <= 13; n++) {
		Burst b(rng, n);
		std::vector<uint8_t> want(b.arena);
		std::vector<int> res(n + 2, 12345);

		/* Expected tags from the one-message scalar call. */
		for (unsigned i = 0; i < n; i++)
			amil_wire_sign(want.data() + ((uint8_t *)b.bufs[i] - b.arena.data()), b.keys[i]);
		amil_wire_sign_burst(b.bufs.data(), b.keys.data(), n);
		EXPECT_EQ(want, b.arena) << "n=" << n;
		amil_wire_verify_burst(b.cbufs(), b.keys.data(), n, res.data());
		for (unsigned i = 0; i < n; i++)
			EXPECT_EQ(0, res[i]) << "n=" << n << " i=" << i;
		EXPECT_EQ(12345, res[n]) << "wrote past results[n - 1]";
		EXPECT_EQ(12345, res[n + 1]);
	}
}

TEST(SipHashX4, SignBurstWithNullArraysAndZeroCountIsANoOp)
{
	int res = 7;

	amil_wire_sign_burst(nullptr, nullptr, 0);
	amil_wire_verify_burst(nullptr, nullptr, 0, &res);
	EXPECT_EQ(7, res);
}

TEST(SipHashX4, VerifyBurstFlagsExactlyTheCorruptedOnes)
{
	std::mt19937_64 rng(77);

	for (bool scalar : {false, true}) {
		ForceScalar f(scalar);

		for (int round = 0; round < 300; round++) {
			unsigned n = 1 + (unsigned)(rng() % 13);
			Burst b(rng, n);
			std::vector<int> res(n);
			std::vector<bool> bad(n);

			amil_wire_sign_burst(b.bufs.data(), b.keys.data(), n);
			for (unsigned i = 0; i < n; i++) {
				uint8_t *p = (uint8_t *)b.bufs[i];

				bad[i] = rng() % 3 == 0;
				if (!bad[i])
					continue;
				/* One flipped bit anywhere: covered bytes or tag;
				 * or, one time in 8, the right bytes under a
				 * different key. */
				if (rng() % 8 == 0) {
					static const uint8_t other[16] = {1};
					b.keys[i] = other;
				} else {
					unsigned bit = (unsigned)(rng() % (AMIL_WIRE_LEN * 8));
					p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				}
			}
			amil_wire_verify_burst(b.cbufs(), b.keys.data(), n, res.data());
			for (unsigned i = 0; i < n; i++) {
				EXPECT_EQ(bad[i] ? -EBADMSG : 0, res[i])
					<< "scalar=" << scalar << " round " << round << " i=" << i;
				EXPECT_EQ(res[i], amil_wire_verify(b.bufs[i], b.keys[i]));
			}
		}
	}
}

TEST(SipHashX4, ForcedScalarPathAgreesWithVectorPath)
{
	if (!__builtin_cpu_supports("avx2"))
		GTEST_SKIP() << "no AVX2: only the scalar path exists here";

	std::mt19937_64 rng(4242);

	for (int round = 0; round < 200; round++) {
		unsigned n = (unsigned)(rng() % 40);
		Burst vec(rng, n);
		Burst sca = vec;
		std::vector<int> rv(n), rs(n);

		/* Burst's copy keeps pointers into the original: repoint. */
		for (unsigned i = 0; i < n; i++) {
			sca.bufs[i] = sca.arena.data() + ((uint8_t *)vec.bufs[i] - vec.arena.data());
			sca.keys[i] = sca.keyspace.data() + (vec.keys[i] - vec.keyspace.data());
		}
		ASSERT_TRUE(amil_siphash_x4_usable());
		amil_wire_sign_burst(vec.bufs.data(), vec.keys.data(), n);
		{
			ForceScalar f(true);
			ASSERT_FALSE(amil_siphash_x4_usable());
			amil_wire_sign_burst(sca.bufs.data(), sca.keys.data(), n);
		}
		ASSERT_EQ(sca.arena, vec.arena) << "round " << round << " n=" << n;

		/* Break some tags, then both paths must give the same verdicts. */
		for (unsigned i = 0; i < n; i++) {
			if (rng() % 2) {
				((uint8_t *)vec.bufs[i])[rng() % 64] ^= 0x10;
				memcpy(sca.bufs[i], vec.bufs[i], AMIL_WIRE_LEN);
			}
		}
		amil_wire_verify_burst(vec.cbufs(), vec.keys.data(), n, rv.data());
		{
			ForceScalar f(true);
			amil_wire_verify_burst(sca.cbufs(), sca.keys.data(), n, rs.data());
		}
		EXPECT_EQ(rs, rv) << "round " << round;
	}
}

/*
 * Not a test: a micro-benchmark, run on demand in a release build with
 *   build-rel/tests/test_siphash --gtest_also_run_disabled_tests \
 *       --gtest_filter='*Benchmark*'
 * It prints ns per message for the scalar and the AVX2 path (sign and
 * verify, bursts of 32 over 4096 cached messages) and asserts only that
 * both paths produced the same tags; timings are not asserted.
 */
TEST(SipHashX4, DISABLED_BenchmarkScalarVsX4)
{
	const unsigned pool = 4096, burst = 32;
	const unsigned long total = 10000000;
	std::mt19937_64 rng(1);
	Burst b(rng, pool);
	std::vector<int> res(burst);
	uint64_t check[2] = {0, 0};
	volatile int sink = 0;

	for (int scalar = 1; scalar >= 0; scalar--) {
		ForceScalar f(scalar != 0);

		for (int op = 0; op < 2; op++) {
			auto t0 = std::chrono::steady_clock::now();

			for (unsigned long done = 0; done < total; done += burst) {
				unsigned at = (unsigned)(done % pool);

				if (op == 0) {
					amil_wire_sign_burst(&b.bufs[at], &b.keys[at], burst);
				} else {
					amil_wire_verify_burst(b.cbufs() + at, &b.keys[at], burst,
							       res.data());
					sink += res[0];
				}
			}
			auto t1 = std::chrono::steady_clock::now();
			double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();

			printf("[ bench    ] %-6s %-6s %7.2f ns/message (%lu messages)\n",
			       op == 0 ? "sign" : "verify", scalar ? "scalar" : "avx2x4", ns / total,
			       total);
			if (op == 0) {
				uint64_t h = 0;

				for (unsigned i = 0; i < pool; i++) {
					uint64_t t;

					memcpy(&t, (uint8_t *)b.bufs[i] + AMIL_WIRE_TAG_OFF, 8);
					h = h * 31 + t;
				}
				check[scalar] = h;
			}
		}
	}
	EXPECT_EQ(check[0], check[1]);
	EXPECT_EQ(0, sink) << "every message was signed just before it was verified";
}
