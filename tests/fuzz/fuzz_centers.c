/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * libFuzzer target for the centers file parser (lib/amil_centers.c).
 *
 * The input is the file content, not NUL-terminated (the parser must not
 * read past @len; ASan catches it if it does).  On success every center
 * returned by amil_centers_get() must be found by amil_centers_key() with
 * the same key; on failure the message must be NUL-terminated and start
 * with the name.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amil_centers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160];
	struct amil_centers *c;
	char *text;

	/* An exact-size heap copy, so any over-read hits ASan's redzone. */
	text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	memset(err, 'x', sizeof(err));
	c = amil_centers_parse(text, size, "fuzz", err, sizeof(err));
	if (c == NULL) {
		REQUIRE(memchr(err, '\0', sizeof(err)) != NULL);
		REQUIRE(strncmp(err, "fuzz", 4) == 0);
	} else {
		uint32_t n = amil_centers_count(c);

		REQUIRE(n >= 1 && n <= AMIL_CENTERS_MAX);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id;
			uint8_t key[AMIL_KEY_LEN];
			const uint8_t *k;

			REQUIRE(amil_centers_get(c, i, &id, key) == 0);
			k = amil_centers_key(c, id);
			REQUIRE(k != NULL && memcmp(k, key, AMIL_KEY_LEN) == 0);
		}
		REQUIRE(amil_centers_get(c, n, NULL, NULL) == -ERANGE);
	}
	amil_centers_free(c);
	free(text);
	return 0;
}
