/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * What this appliance wrote into the replicated map and still means:
 * key -> value, for the registry's re-assertion (registry.c).  When the
 * other side of a partition declared us dead and removed our names after
 * the grace, the removal reaches us with the heal; we are alive, so we put
 * back what we still hold here.  A plain string map: chained hashing,
 * grows by doubling, O(1) expected per call.
 *
 * Thread-safety: none (one thread).  Keys are 1..255 bytes, values up to
 * 1024 bytes (the map's limits), both without NUL.
 */
#ifndef AMIL_OWNSET_H
#define AMIL_OWNSET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct amil_ownset;

/* Empty set; NULL with errno ENOMEM. */
struct amil_ownset *amil_ownset_new(void);

/* Free @s (NULL: nothing). */
void amil_ownset_destroy(struct amil_ownset *s);

/* Insert or replace @key -> @value (copied).  0, -EINVAL (empty or too
 * long), -ENOMEM (set unchanged). */
int amil_ownset_put(struct amil_ownset *s, const char *key, const char *value);

/* Remove @key.  0, or -ENOENT. */
int amil_ownset_del(struct amil_ownset *s, const char *key);

/* The value of @key (owned by the set, valid until the next put/del of
 * that key), or NULL. */
const char *amil_ownset_get(const struct amil_ownset *s, const char *key);

size_t amil_ownset_count(const struct amil_ownset *s);

/* Call @fn for every entry (unspecified order); a non-zero return stops
 * and is returned.  @fn must not change the set. */
int amil_ownset_foreach(const struct amil_ownset *s,
			int (*fn)(void *ctx, const char *key, const char *value), void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* AMIL_OWNSET_H */
