/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Hybrid logical clock: see hlc.h for the encoding and the drift rule. */
#include <errno.h>

#include "hlc.h"

void
amil_hlc_init(struct amil_hlc *h, uint64_t max_drift_ns)
{
	h->last = 0;
	h->max_drift_ns = max_drift_ns;
	h->rejected = 0;
}

uint64_t
amil_hlc_now(struct amil_hlc *h, uint64_t phys_ns)
{
	uint64_t pt = amil_hlc_from_ns(phys_ns);

	/* last + 1 either bumps the logical counter or, when it is full,
	 * carries into the physical part: both keep the order strict. */
	h->last = pt > h->last ? pt : h->last + 1;
	return h->last;
}

int
amil_hlc_update(struct amil_hlc *h, uint64_t phys_ns, uint64_t remote)
{
	uint64_t pt = amil_hlc_from_ns(phys_ns);

	if (h->max_drift_ns != 0 && amil_hlc_physical_ns(remote) > pt &&
	    amil_hlc_physical_ns(remote) - pt > h->max_drift_ns) {
		h->rejected++;
		return -ERANGE;
	}
	if (remote > h->last)
		h->last = remote;
	if (pt > h->last)
		h->last = pt;
	return 0;
}
