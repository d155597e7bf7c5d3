/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Cluster events of the control plane (nodeup, nodedown, suspect,
 * unsuspect, left, dataplane_up, dataplane_down): kept in a bounded ring
 * for `amilctl events`, appended as JSON lines to the structured event log,
 * and published to `amilctl events --follow` subscribers.  Schema in
 * docs/amilctl.md.  Single-threaded (the daemon's loop).
 */
#ifndef AMIL_EVENTS_H
#define AMIL_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_EVENTS_RING 1024

enum amil_event_type {
	AMIL_EV_NODEUP = 1,
	AMIL_EV_SUSPECT,
	AMIL_EV_UNSUSPECT,
	AMIL_EV_NODEDOWN,
	AMIL_EV_LEFT,
	AMIL_EV_DATAPLANE_UP,
	AMIL_EV_DATAPLANE_DOWN,
	AMIL_EV_NAME_CONFLICT,         /* node_id: the winner's owner; name: the name */
	AMIL_EV_BROADCAST,             /* node_id: the sender; name: "<group>: <message>" */
	AMIL_EV_MAX
};

struct amil_event {
	uint8_t type;                  /* enum amil_event_type */
	uint64_t node_id;
	uint32_t incarnation;
	uint64_t from_id;
	uint64_t at_ns;                /* CLOCK_REALTIME */
	char name[256];                /* member name, or the registry name */
};

struct amil_events;

/**
 * @log_path: JSON-lines file appended to ("" or NULL: none).  @pub: a
 * ZMQ PUB socket to publish on (NULL: none; not owned).
 * @return NULL with errno set (ENOMEM, or the log file's open error).
 */
struct amil_events *amil_events_new(const char *log_path, void *pub);

void amil_events_destroy(struct amil_events **ep);

/** Record, log and publish one event. */
void amil_events_add(struct amil_events *e, const struct amil_event *ev);

/** Write the last @n events as a JSON array (oldest first) to @f. */
void amil_events_write_json(const struct amil_events *e, unsigned n, FILE *f);

/** One event as a JSON object (no newline) to @f. */
void amil_event_write_json(const struct amil_event *ev, FILE *f);

const char *amil_event_type_name(unsigned type);

/** Write @s as a JSON string literal (quotes, escapes) to @f. */
void amil_json_str(FILE *f, const char *s);

/** Total events recorded since start. */
uint64_t amil_events_count(const struct amil_events *e);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_EVENTS_H */
