/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Centers file: which donation centers may talk to us and with which key.
 *
 * Format, one center per line:
 *
 *     # comment
 *     <center_id> <32 hex digits>      # trailing comments allowed
 *
 * center_id is decimal 0..4294967295; the key is the 16-byte SipHash key in
 * hex (either case).  Blank lines and '#' comments are ignored.  Any other
 * content, a duplicate center_id, or a file with no center is an error, and
 * the error message names the file, the line and the problem, e.g.
 * "centers.txt:7: key must be 32 hex digits, got 31".
 *
 * Limits: a file of at most AMIL_CENTERS_FILE_MAX_BYTES (64 MiB, errno
 * EFBIG beyond) and at most AMIL_CENTERS_MAX (1,000,000) centers (EINVAL).
 * A key with a non-hex digit is reported by column, never echoed: the
 * message may end up in a log and the key is a secret.
 *
 * The table is read-only once loaded: lookups are lock-free from any number
 * of threads.  It is an open-addressing hash sized at load time, so a lookup
 * touches one or two cache lines and never allocates.
 */
#ifndef AMIL_CENTERS_H
#define AMIL_CENTERS_H

#include <stddef.h>
#include <stdint.h>

#include "amil_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMIL_CENTERS_MAX            1000000u
#define AMIL_CENTERS_FILE_MAX_BYTES (64u << 20)

struct amil_centers;

/**
 * Load a centers file.
 * @param path    file to read.
 * @param err     receives "path:line: problem" on failure (NUL-terminated).
 * @param errlen  size of @err.
 * @return the table (caller owns it; free with amil_centers_free()), or NULL
 *   with errno set (ENOENT/EACCES..., EINVAL for bad content, EFBIG for a
 *   file over the size limit, ENOMEM) and @err filled; for a file that
 *   cannot be opened or read the message is "path: strerror(errno)".
 */
struct amil_centers *amil_centers_load(const char *path, char *err, size_t errlen);

/**
 * Parse centers from memory (tests, fuzzing).  @name is used in messages in
 * place of the path.  Same contract as amil_centers_load(); @text need not
 * be NUL-terminated.
 */
struct amil_centers *amil_centers_parse(const char *text, size_t len, const char *name,
					char *err, size_t errlen);

/** Free a table; NULL is a no-op. */
void amil_centers_free(struct amil_centers *c);

/** Number of centers in the table. */
uint32_t amil_centers_count(const struct amil_centers *c);

/**
 * Key of @center_id, or NULL when the center is unknown.  The pointer is
 * valid until amil_centers_free().  Thread-safe, no allocation.
 */
const uint8_t *amil_centers_key(const struct amil_centers *c, uint32_t center_id);

/**
 * The @i-th center (0 <= i < count) in file order, for generators that
 * simulate every center.  @return 0, or -ERANGE.
 */
int amil_centers_get(const struct amil_centers *c, uint32_t i, uint32_t *center_id,
		     uint8_t key[AMIL_KEY_LEN]);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_CENTERS_H */
