/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* TSC pacing.  See pace.h. */
#include <string.h>

#include "pace.h"

void
amil_pace_init(struct amil_pace *p, uint64_t rate_pps, uint64_t tsc_hz, uint64_t now_tsc,
	       uint64_t max_lag_tsc)
{
	memset(p, 0, sizeof(*p));
	p->unlimited = rate_pps == 0;
	p->rate = rate_pps;
	p->next_tsc = now_tsc;
	p->tsc_hz = tsc_hz;
	p->max_lag_tsc = max_lag_tsc;
	if (!p->unlimited) {
		p->period_q = tsc_hz / rate_pps;
		p->period_r = tsc_hz % rate_pps;
	}
}

void
amil_pace_skip(struct amil_pace *p, uint64_t until_tsc)
{
	unsigned __int128 k, r;

	if (p->unlimited || until_tsc <= p->next_tsc)
		return;
	/* Whole slots between next and until, rounded down so we never jump
	 * past @until_tsc. */
	k = (unsigned __int128)(until_tsc - p->next_tsc) * p->rate / p->tsc_hz;
	if (k == 0)
		return;
	r = (unsigned __int128)p->acc + k * p->period_r;
	p->next_tsc += (uint64_t)(k * p->period_q + r / p->rate);
	p->acc = (uint64_t)(r % p->rate);
	p->skipped += (uint64_t)k;
}
