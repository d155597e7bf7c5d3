/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Prometheus text endpoint of the control plane (GET /metrics), served by
 * libmicrohttpd on its own thread.  The daemon's loop owns all state and
 * publishes a rendered snapshot with amil_metrics_publish(); the HTTP
 * thread only copies the latest snapshot under a mutex, so a scrape never
 * touches live state and never waits on the loop (or on another
 * appliance).
 */
#ifndef AMIL_METRICS_H
#define AMIL_METRICS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct amil_metrics;

/**
 * Listen on @addr ("IP:PORT", IPv4 or [IPv6]:PORT).
 * @return NULL with a message in @err (bad address, port in use).
 */
struct amil_metrics *amil_metrics_start(const char *addr, char *err, size_t errlen);

/** Replace the snapshot served (copied).  Daemon thread. */
void amil_metrics_publish(struct amil_metrics *m, const char *text, size_t len);

/** Stop the server; accepts NULL and a pointer to NULL. */
void amil_metrics_stop(struct amil_metrics **mp);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_METRICS_H */
