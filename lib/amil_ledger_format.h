/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The donation ledger's on-disk format (docs/ledger.md), shared by the data
 * plane (writer and start-up recovery) and the amil-ledger tool.  No DPDK.
 *
 * A ledger is a directory of append-only segment files named
 * seg-<first_seq, 20 digits>.amil, so that name order is sequence order.
 * Each segment is a 64-byte header followed by 80-byte records; all
 * integers little-endian; every header and record ends with a CRC32C of
 * the bytes before it.  Sequence numbers are per appliance, start at 1 and
 * have no gaps across segments.
 */
#ifndef AMIL_LEDGER_FORMAT_H
#define AMIL_LEDGER_FORMAT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amil_wire.h" /* AMIL_STATIC_ASSERT, AMIL_CURRENCY_LEN */

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_LEDGER_MAGIC       "AMILLEDG"  /* 8 bytes, no NUL on disk */
#define AMIL_LEDGER_VERSION     1
#define AMIL_LEDGER_HDR_LEN     64
#define AMIL_LEDGER_REC_LEN     80
#define AMIL_LEDGER_REC_MAGIC   0x4452      /* "RD" little-endian: 'R','D' */
#define AMIL_LEDGER_REC_ACCEPTED 1          /* the only kind version 1 writes */
#define AMIL_LEDGER_SEG_PREFIX  "seg-"
#define AMIL_LEDGER_SEG_SUFFIX  ".amil"

/* Byte offsets of a record.  The writer patches seq, accepted_ns and crc
 * of records the workers encoded, so these are part of the contract. */
enum {
	AMIL_LEDGER_REC_OFF_MAGIC = 0,       /* u16 */
	AMIL_LEDGER_REC_OFF_KIND = 2,        /* u8 */
	AMIL_LEDGER_REC_OFF_EXPONENT = 3,    /* u8 */
	AMIL_LEDGER_REC_OFF_CENTER = 4,      /* u32 */
	AMIL_LEDGER_REC_OFF_DONATION = 8,    /* u64 */
	AMIL_LEDGER_REC_OFF_DONOR = 16,      /* u64 */
	AMIL_LEDGER_REC_OFF_CAMPAIGN = 24,   /* u32 */
	AMIL_LEDGER_REC_OFF_CURRENCY = 28,   /* 3 x ASCII, then one zero byte */
	AMIL_LEDGER_REC_OFF_AMOUNT = 32,     /* i64 */
	AMIL_LEDGER_REC_OFF_LEVY = 40,       /* i64 */
	AMIL_LEDGER_REC_OFF_SEQ = 48,        /* u64 */
	AMIL_LEDGER_REC_OFF_ACCEPTED = 56,   /* u64 ns since the Unix epoch */
	AMIL_LEDGER_REC_OFF_NODE = 64,       /* u32 */
	AMIL_LEDGER_REC_OFF_WORKER = 68,     /* u16 */
	AMIL_LEDGER_REC_OFF_RATE = 70,       /* u16 levy rate, basis points */
	AMIL_LEDGER_REC_OFF_RESERVED = 72,   /* u32, zero */
	AMIL_LEDGER_REC_OFF_CRC = 76,        /* u32 CRC32C of [0, 76) */
};

/* Header byte offsets. */
enum {
	AMIL_LEDGER_HDR_OFF_MAGIC = 0,       /* 8 bytes "AMILLEDG" */
	AMIL_LEDGER_HDR_OFF_VERSION = 8,     /* u16 */
	AMIL_LEDGER_HDR_OFF_HDR_LEN = 10,    /* u16 = 64 */
	AMIL_LEDGER_HDR_OFF_REC_LEN = 12,    /* u16 = 80 */
	AMIL_LEDGER_HDR_OFF_FLAGS = 14,      /* u16, zero */
	AMIL_LEDGER_HDR_OFF_NODE = 16,       /* u32 */
	AMIL_LEDGER_HDR_OFF_RESERVED0 = 20,  /* u32, zero */
	AMIL_LEDGER_HDR_OFF_CREATED = 24,    /* u64 ns since the Unix epoch */
	AMIL_LEDGER_HDR_OFF_FIRST_SEQ = 32,  /* u64 */
	AMIL_LEDGER_HDR_OFF_RESERVED1 = 40,  /* 20 bytes, zero */
	AMIL_LEDGER_HDR_OFF_CRC = 60,        /* u32 CRC32C of [0, 60) */
};

/** One accepted donation, decoded. */
struct amil_ledger_rec {
	uint32_t center_id;
	uint64_t donation_id;
	uint64_t donor_id;
	uint32_t campaign_id;
	char currency[AMIL_CURRENCY_LEN];
	uint8_t exponent;
	int64_t amount_minor;
	int64_t levy_minor;
	uint64_t seq;                  /* per appliance, from 1, no gaps */
	uint64_t accepted_ns;          /* CLOCK_REALTIME when made durable */
	uint32_t node_id;
	uint16_t worker;               /* worker index that accepted it */
	uint16_t rate_bp;              /* levy rate the levy was computed at */
};

/** A segment header, decoded. */
struct amil_ledger_hdr {
	uint16_t version;
	uint32_t node_id;
	uint64_t created_ns;
	uint64_t first_seq;
};

/**
 * Encode @r into AMIL_LEDGER_REC_LEN bytes at @buf, CRC included.
 * Thread-safe, no allocation.
 */
void amil_ledger_rec_encode(void *buf, const struct amil_ledger_rec *r);

/**
 * Set seq and accepted_ns of an encoded record and recompute its CRC: what
 * the ledger writer does to records the workers encoded.
 */
void amil_ledger_rec_seal(void *buf, uint64_t seq, uint64_t accepted_ns);

/**
 * Check and decode one record.
 * @return 0; -EBADMSG (CRC mismatch); -EPROTO (CRC right but magic, kind,
 *   reserved bytes or fields out of range: written by something else).
 */
int amil_ledger_rec_decode(const void *buf, struct amil_ledger_rec *r);

/** Encode a segment header into AMIL_LEDGER_HDR_LEN bytes, CRC included. */
void amil_ledger_hdr_encode(void *buf, const struct amil_ledger_hdr *h);

/**
 * Check and decode a segment header.
 * @return 0; -EBADMSG (magic or CRC wrong); -EPROTONOSUPPORT (a version,
 *   header or record length this code does not read, or nonzero flags or
 *   reserved bytes, which version 1 never writes).
 */
int amil_ledger_hdr_decode(const void *buf, struct amil_ledger_hdr *h);

/** File name of the segment starting at @first_seq into @buf (>= 32 bytes). */
void amil_ledger_seg_name(char *buf, size_t size, uint64_t first_seq);

/* --- Scanning a ledger directory ------------------------------------ */

enum amil_ledger_damage_kind {
	AMIL_LEDGER_INTACT = 0,
	AMIL_LEDGER_BAD_HEADER,        /* header short, CRC or magic wrong */
	AMIL_LEDGER_BAD_VERSION,       /* a format this code does not read */
	AMIL_LEDGER_TORN,              /* file ends inside a record */
	AMIL_LEDGER_BAD_CRC,           /* record CRC mismatch */
	AMIL_LEDGER_BAD_RECORD,        /* CRC right, content invalid */
	AMIL_LEDGER_SEQ_GAP,           /* seq not previous + 1 */
	AMIL_LEDGER_NODE_MISMATCH,     /* record or segment of another node */
	AMIL_LEDGER_IO_ERROR,          /* open/read failed (errno in .err) */
};

/** Where the first damage is.  offset is the byte offset in the file. */
struct amil_ledger_damage {
	enum amil_ledger_damage_kind kind;
	char path[PATH_MAX];
	uint64_t offset;
	uint64_t record_index;         /* 0-based within the segment */
	uint64_t expected_seq;         /* SEQ_GAP: what should have come */
	uint64_t found_seq;
	int err;                       /* IO_ERROR: positive errno */
	bool in_last_segment;
};

struct amil_ledger_scan_opts {
	/* Called for every intact record in sequence order; a nonzero return
	 * stops the scan and is returned by amil_ledger_scan(). */
	int (*on_record)(void *arg, const struct amil_ledger_rec *r);
	/* Called at the start of each segment with a valid header; optional. */
	int (*on_segment)(void *arg, const char *path, const struct amil_ledger_hdr *h,
			  uint64_t file_size);
	void *arg;
	/* Data-plane start-up: damage that runs to the end of the LAST segment
	 * (a write cut by a crash) is cut off.  The bytes cut are first copied
	 * to <segment>.tail-<ns> beside it, never silently destroyed.  Not cut
	 * even there: a node id mismatch, an unsupported version, and a header
	 * with a good CRC but the wrong first_seq (a missing segment, not a
	 * torn write). */
	bool repair_tail;
	/* Nonzero: every header and record must carry this node id. */
	uint32_t node_id;
};

struct amil_ledger_scan_result {
	unsigned segments;
	uint64_t records;              /* intact records passed to on_record */
	uint64_t first_seq, last_seq;  /* 0, 0 when there is none */
	uint64_t tail_cut_bytes;       /* repair_tail: bytes cut off */
	uint64_t tail_cut_records;     /* of which records that looked intact */
	char tail_saved[PATH_MAX];     /* where the cut bytes were saved, or "" */
	struct amil_ledger_damage damage; /* first damage not repaired */
};

/**
 * Read every segment of @dir in order, verifying headers, CRCs, sequence
 * continuity and (if set) node ids.  A missing or empty directory is an
 * empty ledger.
 *
 * Damage in the last segment is treated as a torn tail: after a crash the
 * bytes written since the last fdatasync may have reached the disk in any
 * page order, so intact-looking records can follow a bad one; none of them
 * was acknowledged.  With @o->repair_tail everything from the first damage
 * to the end of that segment is saved aside and truncated, and the scan
 * succeeds.  Damage in any earlier segment stops the scan: nothing after
 * it is trusted, and it is never repaired automatically.
 *
 * @return 0 (intact, possibly after a tail repair); -EBADMSG with
 *   @res->damage describing the first damage; -errno for I/O errors
 *   (res->damage.kind IO_ERROR, path set); or the callback's nonzero value.
 *   Not thread-safe with a writer on the same directory.
 */
int amil_ledger_scan(const char *dir, const struct amil_ledger_scan_opts *o,
		     struct amil_ledger_scan_result *res);

/** Human-readable name of a damage kind ("torn record", ...). */
const char *amil_ledger_damage_str(enum amil_ledger_damage_kind k);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_LEDGER_FORMAT_H */
