/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Campaign totals, cluster-wide.  Each appliance reads its own data
 * plane's ledger (read only, incrementally, following the segments in
 * sequence order) and keeps per (campaign, currency, exponent) the count,
 * amount and levy of the records: exactly once by construction, since the
 * ledger holds every accepted donation once.  It publishes them as map
 * entries "camp:<campaign>:<currency>:<exponent>:<node>" (registry.h)
 * that only it writes, i.e. one grow-only counter per node; any appliance
 * shows the global totals as the sum over nodes, which converges after a
 * partition and never counts a donation twice.
 *
 * Thread-safety: one thread (the daemon's loop).
 */
#ifndef AMIL_CAMPAIGNS_H
#define AMIL_CAMPAIGNS_H

#include <stdint.h>
#include <stdio.h>

#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

struct amil_campaigns;

/* New reader of @ledger_dir ("" or NULL: no local ledger, totals of the
 * others only) publishing into @reg (borrowed).  NULL + errno ENOMEM. */
struct amil_campaigns *amil_campaigns_new(struct amil_registry *reg, uint64_t node_id,
					  const char *ledger_dir);

/* Free @c (NULL: nothing). */
void amil_campaigns_destroy(struct amil_campaigns *c);

/* Read what the data plane appended and publish the totals that changed
 * (every 250 ms; cheap when nothing changed). */
void amil_campaigns_tick(struct amil_campaigns *c, uint64_t now_mono_ns);

/* The "campaigns" reply: cluster-wide sums, one row per (campaign,
 * currency, exponent), amounts as decimal strings (128-bit sums). */
void amil_campaigns_json(struct amil_campaigns *c, FILE *f);

/* Ledger records this node has counted. */
uint64_t amil_campaigns_local_records(const struct amil_campaigns *c);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_CAMPAIGNS_H */
