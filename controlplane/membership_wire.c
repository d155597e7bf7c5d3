/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Membership wire codec.  The layout is in membership_wire.h.
 *
 * Decode walks the buffer with an explicit remaining length and checks it
 * before every read, and validates each field as it goes, so a rejected
 * message never leaves half-trusted data behind for the caller: on failure
 * the caller drops the whole message and counts it.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "membership_wire.h"

/* Header field offsets (checked against the layout struct in the header). */
enum {
	OFF_MAGIC = 0, OFF_VERSION = 2, OFF_TYPE = 3, OFF_NUPD = 4, OFF_FLAGS = 5,
	OFF_RSVD = 6, OFF_CLUSTER = 8, OFF_SENDER = 16, OFF_TARGET = 24,
	OFF_ORIGIN = 32, OFF_SEQ = 40,
};
enum {
	U_NODE = 0, U_FROM = 8, U_INC = 16, U_STATE = 20, U_NAMELEN = 21,
	U_ADDRLEN = 22, U_RSVD = 23,
};
_Static_assert(offsetof(struct amil_mwire_hdr_layout, n_updates) == OFF_NUPD, "nupd");
_Static_assert(offsetof(struct amil_mwire_hdr_layout, reserved) == OFF_RSVD, "rsvd");
_Static_assert(offsetof(struct amil_mwire_upd_layout, name_len) == U_NAMELEN, "namelen");

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline void st16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void st32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void st64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

static int
update_ok(const struct amil_mwire_update *u)
{
	return u->node_id != 0 && u->state < AMIL_MEMBER_STATE_MAX &&
	       u->name_len <= AMIL_MEMBERSHIP_NAME_MAX &&
	       u->addr_len <= AMIL_MEMBERSHIP_ADDR_MAX &&
	       memchr(u->name, '\0', u->name_len) == NULL;
}

static int
header_ok(uint8_t type, uint8_t n_updates, uint64_t sender, uint64_t target)
{
	return type >= AMIL_MWIRE_PING && type < AMIL_MWIRE_TYPE_MAX &&
	       n_updates <= AMIL_MWIRE_UPDATES_MAX && sender != 0 && target != 0;
}

int
amil_mwire_encode(const struct amil_mwire_msg *msg, uint8_t *buf, size_t cap)
{
	size_t need = AMIL_MWIRE_HDR_LEN, off;

	if (msg == NULL || buf == NULL ||
	    !header_ok(msg->type, msg->n_updates, msg->sender, msg->target))
		return -EINVAL;
	for (unsigned i = 0; i < msg->n_updates; i++) {
		if (!update_ok(&msg->updates[i]))
			return -EINVAL;
		need += amil_mwire_update_len(&msg->updates[i]);
	}
	if (need > cap)
		return -EMSGSIZE;

	st16(buf + OFF_MAGIC, AMIL_MWIRE_MAGIC);
	buf[OFF_VERSION] = AMIL_MWIRE_VERSION;
	buf[OFF_TYPE] = msg->type;
	buf[OFF_NUPD] = msg->n_updates;
	buf[OFF_FLAGS] = 0;
	st16(buf + OFF_RSVD, 0);
	st64(buf + OFF_CLUSTER, msg->cluster_id);
	st64(buf + OFF_SENDER, msg->sender);
	st64(buf + OFF_TARGET, msg->target);
	st64(buf + OFF_ORIGIN, msg->origin);
	st32(buf + OFF_SEQ, msg->seq);
	off = AMIL_MWIRE_HDR_LEN;
	for (unsigned i = 0; i < msg->n_updates; i++) {
		const struct amil_mwire_update *u = &msg->updates[i];
		uint8_t *p = buf + off;

		st64(p + U_NODE, u->node_id);
		st64(p + U_FROM, u->from_id);
		st32(p + U_INC, u->incarnation);
		p[U_STATE] = u->state;
		p[U_NAMELEN] = u->name_len;
		p[U_ADDRLEN] = u->addr_len;
		p[U_RSVD] = 0;
		memcpy(p + AMIL_MWIRE_UPD_LEN, u->name, u->name_len);
		memcpy(p + AMIL_MWIRE_UPD_LEN + u->name_len, u->addr, u->addr_len);
		off += amil_mwire_update_len(u);
	}
	return (int)off;
}

int
amil_mwire_decode(const uint8_t *buf, size_t len, uint64_t cluster_id,
		  struct amil_mwire_msg *out)
{
	size_t off;

	if (buf == NULL || out == NULL || len < AMIL_MWIRE_HDR_LEN)
		return -EBADMSG;
	if (ld16(buf + OFF_MAGIC) != AMIL_MWIRE_MAGIC)
		return -EBADMSG;
	/* A later version may lay the rest out differently: say so rather
	 * than call it garbage, so an operator sees a version skew. */
	if (buf[OFF_VERSION] != AMIL_MWIRE_VERSION)
		return -EPROTONOSUPPORT;
	out->type = buf[OFF_TYPE];
	out->n_updates = buf[OFF_NUPD];
	out->cluster_id = ld64(buf + OFF_CLUSTER);
	out->sender = ld64(buf + OFF_SENDER);
	out->target = ld64(buf + OFF_TARGET);
	out->origin = ld64(buf + OFF_ORIGIN);
	out->seq = ld32(buf + OFF_SEQ);
	if (!header_ok(out->type, out->n_updates, out->sender, out->target) ||
	    buf[OFF_FLAGS] != 0 || ld16(buf + OFF_RSVD) != 0)
		return -EBADMSG;
	if (out->cluster_id != cluster_id)
		return -EACCES;

	off = AMIL_MWIRE_HDR_LEN;
	for (unsigned i = 0; i < out->n_updates; i++) {
		struct amil_mwire_update *u = &out->updates[i];
		const uint8_t *p = buf + off;

		if (len - off < AMIL_MWIRE_UPD_LEN)
			return -EBADMSG;
		u->node_id = ld64(p + U_NODE);
		u->from_id = ld64(p + U_FROM);
		u->incarnation = ld32(p + U_INC);
		u->state = p[U_STATE];
		u->name_len = p[U_NAMELEN];
		u->addr_len = p[U_ADDRLEN];
		if (p[U_RSVD] != 0 || u->name_len > AMIL_MEMBERSHIP_NAME_MAX ||
		    u->addr_len > AMIL_MEMBERSHIP_ADDR_MAX)
			return -EBADMSG;
		if (len - off - AMIL_MWIRE_UPD_LEN < (size_t)u->name_len + u->addr_len)
			return -EBADMSG;
		memcpy(u->name, p + AMIL_MWIRE_UPD_LEN, u->name_len);
		u->name[u->name_len] = '\0';
		memcpy(u->addr, p + AMIL_MWIRE_UPD_LEN + u->name_len, u->addr_len);
		if (!update_ok(u))
			return -EBADMSG;
		off += amil_mwire_update_len(u);
	}
	/* Trailing bytes would be a second, unauthenticated-by-structure
	 * payload riding along; a strict decoder keeps the format honest. */
	if (off != len)
		return -EBADMSG;
	return 0;
}

const char *
amil_mwire_type_name(unsigned type)
{
	static const char *const names[AMIL_MWIRE_TYPE_MAX] = {
		[AMIL_MWIRE_PING] = "ping", [AMIL_MWIRE_PING_REQ] = "ping-req",
		[AMIL_MWIRE_ACK] = "ack", [AMIL_MWIRE_NACK] = "nack",
	};

	return type < AMIL_MWIRE_TYPE_MAX && names[type] ? names[type] : "?";
}

const char *
amil_member_state_name(unsigned state)
{
	static const char *const names[AMIL_MEMBER_STATE_MAX] = {
		[AMIL_MEMBER_ALIVE] = "alive", [AMIL_MEMBER_SUSPECT] = "suspect",
		[AMIL_MEMBER_DEAD] = "dead", [AMIL_MEMBER_LEFT] = "left",
	};

	return state < AMIL_MEMBER_STATE_MAX ? names[state] : "?";
}
