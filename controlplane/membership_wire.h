/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Membership wire format ("mwire"): the binary encoding of the SWIM
 * messages exchanged by amil-controlplane instances (membership.h).
 *
 * A message is a fixed 44-byte header followed by 0..AMIL_MWIRE_UPDATES_MAX
 * gossip updates, each a fixed 24-byte part followed by the member's name
 * and address bytes.  Integers are big-endian at fixed offsets; the packed
 * structs below document the layout and are checked by _Static_assert, but
 * the codec reads and writes bytes at the offsets, never the structs, so
 * alignment and host byte order never matter.
 *
 *   header (44 bytes)
 *     0  magic      u16  0x4143 "AC" (Amil Cluster)
 *     2  version    u8   1
 *     3  type       u8   enum amil_mwire_type
 *     4  n_updates  u8   0..AMIL_MWIRE_UPDATES_MAX
 *     5  flags      u8   must be 0 (reserved for later versions)
 *     6  reserved   u16  must be 0
 *     8  cluster_id u64  must equal the receiver's cluster id
 *    16  sender     u64  node id of the sender, never 0
 *    24  target     u64  PING: the node addressed; PING_REQ: the node to
 *                        probe; ACK/NACK: the node whose liveness is answered
 *    32  origin     u64  node that started an indirect probe, 0 when direct
 *    40  seq        u32  probe sequence number, echoed by ACK/NACK
 *   update (24 bytes + name_len + addr_len)
 *     0  node_id     u64 subject of the update, never 0
 *     8  from_id     u64 node that declared this state (the suspector for
 *                        SUSPECT, the declarer for DEAD, the node for ALIVE)
 *    16  incarnation u32
 *    20  state       u8  enum amil_member_state
 *    21  name_len    u8  0..AMIL_MEMBERSHIP_NAME_MAX, no NUL inside
 *    22  addr_len    u8  0..AMIL_MEMBERSHIP_ADDR_MAX, opaque to this module
 *    23  reserved    u8  must be 0
 *    24  name, then addr
 *
 * Nothing may follow the last update.  There is no tag: authentication
 * (CURVE) is the transport's job, and the transport tells the receiver who
 * sent the bytes; membership checks that @sender matches it.
 *
 * No allocation, no global state: safe from any thread.
 */
#ifndef AMIL_MEMBERSHIP_WIRE_H
#define AMIL_MEMBERSHIP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_MWIRE_MAGIC        0x4143  /* "AC" */
#define AMIL_MWIRE_VERSION      1
#define AMIL_MWIRE_HDR_LEN      44
#define AMIL_MWIRE_UPD_LEN      24      /* fixed part of one update */
#define AMIL_MWIRE_UPDATES_MAX  8
#define AMIL_MEMBERSHIP_NAME_MAX 32     /* bytes, without a terminator */
#define AMIL_MEMBERSHIP_ADDR_MAX 96     /* e.g. endpoint + CURVE public key */
/* Largest encoded message: 1260 bytes, one datagram on any usual path. */
#define AMIL_MWIRE_MSG_MAX \
	(AMIL_MWIRE_HDR_LEN + AMIL_MWIRE_UPDATES_MAX * \
	 (AMIL_MWIRE_UPD_LEN + AMIL_MEMBERSHIP_NAME_MAX + AMIL_MEMBERSHIP_ADDR_MAX))

enum amil_mwire_type {
	AMIL_MWIRE_PING = 1,      /* are you alive? answered by ACK */
	AMIL_MWIRE_PING_REQ = 2,  /* please PING target for me */
	AMIL_MWIRE_ACK = 3,       /* target answered (direct or forwarded) */
	AMIL_MWIRE_NACK = 4,      /* helper got no answer from target in time */
	AMIL_MWIRE_TYPE_MAX
};

/* Member states.  Values are wire-visible. */
enum amil_member_state {
	AMIL_MEMBER_ALIVE = 0,
	AMIL_MEMBER_SUSPECT = 1,
	AMIL_MEMBER_DEAD = 2,
	AMIL_MEMBER_LEFT = 3,
	AMIL_MEMBER_STATE_MAX
};

#ifdef __cplusplus
#define AMIL_MWIRE_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define AMIL_MWIRE_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Layout documentation only; see the file comment. */
struct __attribute__((packed)) amil_mwire_hdr_layout {
	uint16_t magic;
	uint8_t version;
	uint8_t type;
	uint8_t n_updates;
	uint8_t flags;
	uint16_t reserved;
	uint64_t cluster_id;
	uint64_t sender;
	uint64_t target;
	uint64_t origin;
	uint32_t seq;
};

struct __attribute__((packed)) amil_mwire_upd_layout {
	uint64_t node_id;
	uint64_t from_id;
	uint32_t incarnation;
	uint8_t state;
	uint8_t name_len;
	uint8_t addr_len;
	uint8_t reserved;
};

AMIL_MWIRE_STATIC_ASSERT(sizeof(struct amil_mwire_hdr_layout) == AMIL_MWIRE_HDR_LEN, "header 44");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_hdr_layout, cluster_id) == 8, "cluster at 8");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_hdr_layout, sender) == 16, "sender at 16");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_hdr_layout, target) == 24, "target at 24");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_hdr_layout, origin) == 32, "origin at 32");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_hdr_layout, seq) == 40, "seq at 40");
AMIL_MWIRE_STATIC_ASSERT(sizeof(struct amil_mwire_upd_layout) == AMIL_MWIRE_UPD_LEN, "update 24");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_upd_layout, from_id) == 8, "from at 8");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_upd_layout, incarnation) == 16, "inc at 16");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_upd_layout, state) == 20, "state at 20");
AMIL_MWIRE_STATIC_ASSERT(offsetof(struct amil_mwire_upd_layout, reserved) == 23, "rsvd at 23");
AMIL_MWIRE_STATIC_ASSERT(AMIL_MWIRE_MSG_MAX <= 1400, "a message fits a 1400-byte datagram");

/* One gossip update in host byte order. */
struct amil_mwire_update {
	uint64_t node_id;        /* never 0 */
	uint64_t from_id;        /* declarer, see the file comment */
	uint32_t incarnation;
	uint8_t state;           /* enum amil_member_state */
	uint8_t name_len;        /* bytes used in @name */
	uint8_t addr_len;        /* bytes used in @addr */
	char name[AMIL_MEMBERSHIP_NAME_MAX + 1];  /* NUL-terminated after decode */
	uint8_t addr[AMIL_MEMBERSHIP_ADDR_MAX];
};

/* A whole message in host byte order. */
struct amil_mwire_msg {
	uint8_t type;            /* enum amil_mwire_type */
	uint8_t n_updates;       /* 0..AMIL_MWIRE_UPDATES_MAX */
	uint32_t seq;
	uint64_t cluster_id;
	uint64_t sender;         /* never 0 */
	uint64_t target;         /* never 0 */
	uint64_t origin;         /* 0: direct */
	struct amil_mwire_update updates[AMIL_MWIRE_UPDATES_MAX];
};

/** Encoded size of one update (fixed part plus name and address). */
static inline size_t
amil_mwire_update_len(const struct amil_mwire_update *u)
{
	return AMIL_MWIRE_UPD_LEN + (size_t)u->name_len + (size_t)u->addr_len;
}

/**
 * Encode @msg into @buf.
 *
 * @param msg  message; the same rules as decode apply (type known, sender
 *             and target not 0, n_updates and the lengths within bounds,
 *             every update's node_id not 0, state known, no NUL in a name).
 * @param buf  output, @cap bytes; AMIL_MWIRE_MSG_MAX always suffices.
 * @return the encoded length (> 0); -EINVAL when @msg breaks a rule
 *   (nothing useful is written); -EMSGSIZE when @cap is too small.
 */
int amil_mwire_encode(const struct amil_mwire_msg *msg, uint8_t *buf, size_t cap);

/**
 * Decode and validate @len bytes into @out.  Every field is bounds-checked
 * before it is read; no input can make this read outside [buf, buf+len).
 *
 * @param buf         received bytes; may be NULL only when @len is 0.
 * @param cluster_id  the receiver's cluster id.
 * @param out         filled on success; unspecified on failure.
 * @return 0; -EBADMSG when the bytes are not a well-formed message (short,
 *   bad magic, unknown type, non-zero reserved bits, zero sender/target/node
 *   id, unknown state, a length over its maximum, a NUL in a name,
 *   truncated update, trailing bytes); -EPROTONOSUPPORT for a well-magicked
 *   message of another version; -EACCES when the cluster id differs.
 */
int amil_mwire_decode(const uint8_t *buf, size_t len, uint64_t cluster_id,
		      struct amil_mwire_msg *out);

/** Static name of a message type ("ping", ...), "?" when unknown. */
const char *amil_mwire_type_name(unsigned type);

/** Static name of a member state ("alive", ...), "?" when unknown. */
const char *amil_member_state_name(unsigned state);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_MEMBERSHIP_WIRE_H */
