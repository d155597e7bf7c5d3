/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * The data plane's local control socket, for the control plane on the same
 * appliance (controlplane/daemon.c watches it): a ZeroMQ REP socket on
 * ipc://PATH, served by a DPDK control thread, never by a polling lcore.
 * Requests (one frame): "ping" -> {"schema": 1, "ok": true, "node_id": N};
 * "stats" -> the --stats-json object (amil_stats_write_json); "metrics" ->
 * the counters in the Prometheus text format.  The socket
 * file is mode 0660: the appliance's operators' group, nobody else.
 * A data plane that stops answering (hung, killed) is what the control
 * plane reports as down.
 */
#ifndef AMIL_DP_CTL_H
#define AMIL_DP_CTL_H

#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

struct amil_dp_ctl;

/**
 * Bind ipc://@path (a stale socket file is replaced) and start the thread.
 * @return NULL with a message in @err.  Control path.
 */
struct amil_dp_ctl *amil_dp_ctl_start(const char *path, const struct amil_stats *stats,
				      uint32_t node_id, char *err, size_t errlen);

/** Stop the thread, close and remove the socket; NULL is a no-op. */
void amil_dp_ctl_stop(struct amil_dp_ctl *c);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_DP_CTL_H */
