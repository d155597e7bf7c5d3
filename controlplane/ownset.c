/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* A string -> string map for the registry's own entries.  See ownset.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ownset.h"

#define KEY_MAX 255
#define VALUE_MAX 1024

struct node {
	struct node *next;
	uint64_t h;
	char *value;                   /* separate: replaced on put */
	char key[];
};

struct amil_ownset {
	struct node **b;
	size_t nb, n;
};

/* FNV-1a: keys are ours (not attacker-chosen), a plain hash is enough. */
static uint64_t
hash(const char *k)
{
	uint64_t h = 14695981039346656037ull;

	for (; *k; k++)
		h = (h ^ (uint8_t)*k) * 1099511628211ull;
	return h;
}

struct amil_ownset *
amil_ownset_new(void)
{
	struct amil_ownset *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->nb = 64;
	s->b = calloc(s->nb, sizeof(*s->b));
	if (s->b == NULL) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

void
amil_ownset_destroy(struct amil_ownset *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nb; i++)
		for (struct node *n = s->b[i], *nx; n != NULL; n = nx) {
			nx = n->next;
			free(n->value);
			free(n);
		}
	free(s->b);
	free(s);
}

static struct node **
slot(const struct amil_ownset *s, const char *key, uint64_t h)
{
	struct node **p = &s->b[h & (s->nb - 1)];

	while (*p != NULL && ((*p)->h != h || strcmp((*p)->key, key) != 0))
		p = &(*p)->next;
	return p;
}

/* Double the table when it is full on average (keeps chains short). */
static void
grow(struct amil_ownset *s)
{
	size_t nb = s->nb * 2;
	struct node **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return;                /* keep working, slower */
	for (size_t i = 0; i < s->nb; i++)
		for (struct node *n = s->b[i], *nx; n != NULL; n = nx) {
			nx = n->next;
			n->next = b[n->h & (nb - 1)];
			b[n->h & (nb - 1)] = n;
		}
	free(s->b);
	s->b = b;
	s->nb = nb;
}

int
amil_ownset_put(struct amil_ownset *s, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);
	uint64_t h = hash(key);
	struct node **p, *n;
	char *v;

	if (kl == 0 || kl > KEY_MAX || vl > VALUE_MAX)
		return -EINVAL;
	v = malloc(vl + 1);
	if (v == NULL)
		return -ENOMEM;
	memcpy(v, value, vl + 1);
	p = slot(s, key, h);
	if (*p != NULL) {
		free((*p)->value);
		(*p)->value = v;
		return 0;
	}
	n = malloc(sizeof(*n) + kl + 1);
	if (n == NULL) {
		free(v);
		return -ENOMEM;
	}
	n->h = h;
	n->value = v;
	memcpy(n->key, key, kl + 1);
	n->next = NULL;
	*p = n;
	if (++s->n > s->nb)
		grow(s);
	return 0;
}

int
amil_ownset_del(struct amil_ownset *s, const char *key)
{
	struct node **p = slot(s, key, hash(key)), *n = *p;

	if (n == NULL)
		return -ENOENT;
	*p = n->next;
	free(n->value);
	free(n);
	s->n--;
	return 0;
}

const char *
amil_ownset_get(const struct amil_ownset *s, const char *key)
{
	struct node *n = *slot(s, key, hash(key));

	return n != NULL ? n->value : NULL;
}

size_t
amil_ownset_count(const struct amil_ownset *s)
{
	return s->n;
}

int
amil_ownset_foreach(const struct amil_ownset *s,
		    int (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
	for (size_t i = 0; i < s->nb; i++)
		for (const struct node *n = s->b[i]; n != NULL; n = n->next) {
			int rc = fn(ctx, n->key, n->value);

			if (rc != 0)
				return rc;
		}
	return 0;
}
