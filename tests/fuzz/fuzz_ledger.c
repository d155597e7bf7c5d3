/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the ledger's on-disk codec (lib/amil_ledger_format.c)
 * and its checksum (lib/amil_crc32c.c).  Everything stays in memory.
 *
 * The input is decoded twice as a record (first AMIL_LEDGER_REC_LEN bytes)
 * and as a segment header (first AMIL_LEDGER_HDR_LEN bytes): once as it
 * is, and once with its CRC recomputed, because random bytes almost never
 * carry a matching CRC32C and the content checks behind it would go
 * unexplored.  Besides crashes and sanitizer reports, it aborts when a
 * property fails:
 *   - decode returns -EBADMSG exactly when the stored CRC is wrong (records)
 *     and only 0, -EBADMSG, -EPROTO / -EPROTONOSUPPORT otherwise;
 *   - a decoded record or header re-encodes to the same bytes, and sealing
 *     a record with its own seq and time changes nothing;
 *   - a decoded record holds only what the data plane can accept;
 *   - the SSE4.2 and table CRCs agree, and incremental equals one call.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amil_crc32c.h"
#include "amil_ledger_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static uint32_t
ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
st32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static void
check_record(const uint8_t *in)
{
	uint8_t re[AMIL_LEDGER_REC_LEN];
	struct amil_ledger_rec r;
	bool crc_ok = amil_crc32c(0, in, AMIL_LEDGER_REC_OFF_CRC) ==
		      ld32(in + AMIL_LEDGER_REC_OFF_CRC);
	int rc = amil_ledger_rec_decode(in, &r);

	REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
	REQUIRE((rc == -EBADMSG) == !crc_ok);
	if (rc != 0)
		return;
	REQUIRE(r.donation_id != 0 && r.seq != 0);
	REQUIRE(r.exponent <= AMIL_EXPONENT_MAX);
	REQUIRE(r.amount_minor >= AMIL_AMOUNT_MIN_MINOR && r.amount_minor <= AMIL_AMOUNT_MAX_MINOR);
	REQUIRE(r.levy_minor >= 0 && r.levy_minor <= r.amount_minor && r.rate_bp <= 10000);
	for (int i = 0; i < AMIL_CURRENCY_LEN; i++)
		REQUIRE(r.currency[i] >= 'A' && r.currency[i] <= 'Z');
	amil_ledger_rec_encode(re, &r);
	REQUIRE(memcmp(re, in, AMIL_LEDGER_REC_LEN) == 0);
	amil_ledger_rec_seal(re, r.seq, r.accepted_ns);
	REQUIRE(memcmp(re, in, AMIL_LEDGER_REC_LEN) == 0);
}

static void
check_header(const uint8_t *in)
{
	uint8_t re[AMIL_LEDGER_HDR_LEN];
	struct amil_ledger_hdr h;
	bool crc_ok = amil_crc32c(0, in, AMIL_LEDGER_HDR_OFF_CRC) ==
		      ld32(in + AMIL_LEDGER_HDR_OFF_CRC);
	int rc = amil_ledger_hdr_decode(in, &h);

	REQUIRE(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);
	if (!crc_ok || memcmp(in, AMIL_LEDGER_MAGIC, 8) != 0)
		REQUIRE(rc == -EBADMSG);
	if (rc != 0)
		return;
	REQUIRE(h.version == AMIL_LEDGER_VERSION);
	amil_ledger_hdr_encode(re, &h);
	REQUIRE(memcmp(re, in, AMIL_LEDGER_HDR_LEN) == 0);
}

static void
check_crc(const uint8_t *data, size_t size)
{
	uint32_t hw, tab, inc;
	size_t cut = size ? data[0] % (size + 1) : 0;

	hw = amil_crc32c(0, data, size);
	amil_crc32c_force_table(1);
	tab = amil_crc32c(0, data, size);
	amil_crc32c_force_table(0);
	REQUIRE(hw == tab);
	inc = amil_crc32c(amil_crc32c(0, data, cut), data + cut, size - cut);
	REQUIRE(inc == hw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[AMIL_LEDGER_REC_LEN];

	check_crc(data, size);
	if (size >= AMIL_LEDGER_HDR_LEN) {
		/* In place at the very end of the input, any alignment: a read
		 * past the header lands in ASan's redzone.  Then a copy with
		 * the CRC recomputed, to reach the checks behind it. */
		check_header(data + size - AMIL_LEDGER_HDR_LEN);
		memcpy(buf, data, AMIL_LEDGER_HDR_LEN);
		check_header(buf);
		st32(buf + AMIL_LEDGER_HDR_OFF_CRC, amil_crc32c(0, buf, AMIL_LEDGER_HDR_OFF_CRC));
		check_header(buf);
	}
	if (size >= AMIL_LEDGER_REC_LEN) {
		check_record(data + size - AMIL_LEDGER_REC_LEN);
		memcpy(buf, data, AMIL_LEDGER_REC_LEN);
		st32(buf + AMIL_LEDGER_REC_OFF_CRC, amil_crc32c(0, buf, AMIL_LEDGER_REC_OFF_CRC));
		check_record(buf);
	}
	return 0;
}
