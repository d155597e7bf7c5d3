/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the DNS answer parser (controlplane/dns_disc.c,
 * amil_dns_parse_answer: libresolv's ns_initparse/ns_parserr/dn_expand
 * plus our rdata checks).  Input: one UDP DNS response as received.
 * Properties, checked with abort():
 *   - the result is 0 or -EBADMSG;
 *   - on success, every kept record is A/AAAA/SRV from the answer or
 *     additional section, names are NUL-terminated, lower case, no longer
 *     than AMIL_DNS_NAME_MAX and without a trailing dot, and the counts
 *     are within their bounds.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_disc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static void
check_name(const char *n)
{
	size_t l = strnlen(n, AMIL_DNS_NAME_MAX + 1);

	REQUIRE(l <= AMIL_DNS_NAME_MAX);
	REQUIRE(l == 0 || n[l - 1] != '.');
	for (size_t i = 0; i < l; i++)
		REQUIRE(!isupper((unsigned char)n[i]));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct amil_dns_answer a;
	int rc = amil_dns_parse_answer(size ? data : NULL, size, &a);

	REQUIRE(rc == 0 || rc == -EBADMSG);
	if (rc != 0)
		return 0;
	REQUIRE(a.n_rr <= AMIL_DNS_ANSWER_MAX);
	check_name(a.qname);
	for (unsigned i = 0; i < a.n_rr; i++) {
		const struct amil_dns_rr *r = &a.rr[i];

		REQUIRE(r->type == 1 || r->type == 28 || r->type == 33);
		REQUIRE(r->section == 1 || r->section == 3);
		check_name(r->owner);
		check_name(r->target);
		REQUIRE(r->type == 33 || r->target[0] == '\0');
	}
	return 0;
}
