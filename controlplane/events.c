/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Cluster events.  See events.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "events.h"

struct amil_events {
	FILE *log;
	void *pub;
	uint64_t total;                /* events ever added; ring index = total % RING */
	struct amil_event ring[AMIL_EVENTS_RING];
};

static const char *const names[AMIL_EV_MAX] = {
	[AMIL_EV_NODEUP] = "nodeup",
	[AMIL_EV_SUSPECT] = "suspect",
	[AMIL_EV_UNSUSPECT] = "unsuspect",
	[AMIL_EV_NODEDOWN] = "nodedown",
	[AMIL_EV_LEFT] = "left",
	[AMIL_EV_DATAPLANE_UP] = "dataplane_up",
	[AMIL_EV_DATAPLANE_DOWN] = "dataplane_down",
	[AMIL_EV_NAME_CONFLICT] = "name_conflict",
	[AMIL_EV_BROADCAST] = "broadcast",
};

const char *
amil_event_type_name(unsigned type)
{
	return type < AMIL_EV_MAX && names[type] != NULL ? names[type] : "unknown";
}

struct amil_events *
amil_events_new(const char *log_path, void *pub)
{
	struct amil_events *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	e->pub = pub;
	if (log_path != NULL && log_path[0] != '\0') {
		e->log = fopen(log_path, "a");
		if (e->log == NULL) {
			int err = errno;

			free(e);
			errno = err;
			return NULL;
		}
	}
	return e;
}

void
amil_events_destroy(struct amil_events **ep)
{
	if (ep == NULL || *ep == NULL)
		return;
	if ((*ep)->log != NULL)
		fclose((*ep)->log);
	free(*ep);
	*ep = NULL;
}

void
amil_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void
amil_event_write_json(const struct amil_event *ev, FILE *f)
{
	time_t sec = (time_t)(ev->at_ns / 1000000000u);
	struct tm tm;
	char when[40];

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "{\"schema\": 1, \"type\": \"%s\", \"node_id\": %" PRIu64 ", \"name\": ",
		amil_event_type_name(ev->type), ev->node_id);
	amil_json_str(f, ev->name);
	fprintf(f,
		", \"incarnation\": %" PRIu32 ", \"from_id\": %" PRIu64 ", \"at_ns\": %" PRIu64
		", \"at\": \"%s.%03uZ\"}",
		ev->incarnation, ev->from_id, ev->at_ns, when,
		(unsigned)(ev->at_ns % 1000000000u / 1000000u));
}

void
amil_events_add(struct amil_events *e, const struct amil_event *ev)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	e->ring[e->total % AMIL_EVENTS_RING] = *ev;
	e->total++;
	m = open_memstream(&buf, &len);
	if (m == NULL)
		return;
	amil_event_write_json(ev, m);
	if (fclose(m) != 0) {
		free(buf);
		return;
	}
	if (e->log != NULL) {
		/* One line per event, flushed: the log is read while we run. */
		fprintf(e->log, "%s\n", buf);
		fflush(e->log);
	}
	if (e->pub != NULL)
		zmq_send(e->pub, buf, len, ZMQ_DONTWAIT);
	free(buf);
}

void
amil_events_write_json(const struct amil_events *e, unsigned n, FILE *f)
{
	uint64_t have = e->total < AMIL_EVENTS_RING ? e->total : AMIL_EVENTS_RING;
	uint64_t first = e->total - (n < have ? n : have);

	fputc('[', f);
	for (uint64_t i = first; i < e->total; i++) {
		if (i != first)
			fputs(", ", f);
		amil_event_write_json(&e->ring[i % AMIL_EVENTS_RING], f);
	}
	fputc(']', f);
}

uint64_t
amil_events_count(const struct amil_events *e)
{
	return e->total;
}
