/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Outstanding-donation table with retransmit deadlines.  See track.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "track.h"

struct slot {
	/* Written by the TX owner, read by RX lcores. */
	uint64_t key;          /* k + 1; 0 = never used.  Release-published. */
	uint8_t kind;
	uint8_t expect_ack;
	uint8_t done;          /* TX only: finished, slot may be reused */
	uint8_t pad;
	uint32_t attempts;     /* TX only: transmissions of the original */
	uint64_t deadline_tsc; /* TX only */
	/* Shared: TX adds to sends/copies, RX to acks/accepted. */
	uint32_t sends;
	uint32_t copies;
	uint32_t acks;
	uint32_t accepted;
};

struct amil_track {
	uint32_t capacity;     /* power of two */
	uint32_t mask;
	uint64_t timeout_tsc;
	uint32_t retries;
	uint64_t head, tail;   /* FIFO positions; fifo[pos & mask] */
	uint64_t lost;         /* TX only, read after it stopped */
	uint64_t retransmits;  /* TX only */
	uint64_t expected_acks; /* atomically updated by TX, read by anyone */
	uint32_t *fifo;        /* slot indices, sorted by deadline */
	struct slot *slot;
};

static uint32_t
pow2_ceil(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

struct amil_track *
amil_track_create(uint32_t capacity, uint64_t timeout_tsc, uint32_t retries)
{
	struct amil_track *t;

	if (capacity == 0 || capacity > AMIL_TRACK_CAPACITY_MAX) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto fail_table;
	t->capacity = pow2_ceil(capacity);
	t->mask = t->capacity - 1;
	t->timeout_tsc = timeout_tsc;
	t->retries = retries;
	t->slot = calloc(t->capacity, sizeof(*t->slot));
	if (t->slot == NULL)
		goto fail_slots;
	/* Each slot is in the FIFO at most once, so capacity entries suffice. */
	t->fifo = calloc(t->capacity, sizeof(*t->fifo));
	if (t->fifo == NULL)
		goto fail_fifo;
	return t;

fail_fifo:
	free(t->slot);
fail_slots:
	free(t);
fail_table:
	errno = ENOMEM;
	return NULL;
}

void
amil_track_free(struct amil_track *t)
{
	if (t == NULL)
		return;
	free(t->fifo);
	free(t->slot);
	free(t);
}

uint32_t
amil_track_capacity(const struct amil_track *t)
{
	return t->capacity;
}

int
amil_track_add(struct amil_track *t, uint64_t k, uint8_t kind, bool expect_ack, uint64_t now_tsc)
{
	uint32_t i = (uint32_t)(k & t->mask);
	struct slot *s = &t->slot[i];
	uint64_t key = __atomic_load_n(&s->key, __ATOMIC_RELAXED); /* TX wrote it */

	if (key == k + 1)
		return -EEXIST;
	if (key != 0 && !s->done)
		return -EBUSY;
	/* Unpublish first, so an RX lcore never pairs the new fields with the
	 * old key.  Release orders the field writes below after it for any
	 * reader that acquires the new key. */
	__atomic_store_n(&s->key, 0, __ATOMIC_RELAXED);
	s->kind = kind;
	s->expect_ack = expect_ack;
	s->done = !expect_ack;
	s->attempts = 1;
	s->deadline_tsc = now_tsc + t->timeout_tsc;
	__atomic_store_n(&s->sends, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->copies, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->acks, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->accepted, 0, __ATOMIC_RELAXED);
	/* Publish: pairs with the acquire in lookup(). */
	__atomic_store_n(&s->key, k + 1, __ATOMIC_RELEASE);
	if (expect_ack) {
		t->fifo[t->tail++ & t->mask] = i;
		__atomic_fetch_add(&t->expected_acks, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

bool
amil_track_can_add(const struct amil_track *t, uint64_t k)
{
	const struct slot *s = &t->slot[k & t->mask];

	return s->key == 0 || s->done || s->key == k + 1;
}

int
amil_track_add_copy(struct amil_track *t, uint64_t k)
{
	struct slot *s = &t->slot[k & t->mask];

	if (__atomic_load_n(&s->key, __ATOMIC_RELAXED) != k + 1)
		return -ENOENT;
	/* Release: an RX lcore that sees the copy's ACK and then reads these
	 * counts must see them raised; the frame leaves after this store. */
	__atomic_fetch_add(&s->copies, 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&s->sends, 1, __ATOMIC_RELEASE);
	if (s->expect_ack)
		__atomic_fetch_add(&t->expected_acks, 1, __ATOMIC_RELAXED);
	return 0;
}

unsigned
amil_track_due(struct amil_track *t, uint64_t now_tsc, uint64_t *retx, unsigned max)
{
	unsigned n = 0;

	while (t->head != t->tail && n < max) {
		uint32_t i = t->fifo[t->head & t->mask];
		struct slot *s = &t->slot[i];

		if (s->deadline_tsc > now_tsc)
			break;
		t->head++;
		/* Acquire pairs with the RX lcore's release in amil_track_ack():
		 * an ACK counted before now is seen. */
		if (__atomic_load_n(&s->acks, __ATOMIC_ACQUIRE) > 0) {
			s->done = 1;
			continue;
		}
		if (s->attempts <= t->retries) {
			s->attempts++;
			s->deadline_tsc = now_tsc + t->timeout_tsc;
			__atomic_fetch_add(&s->sends, 1, __ATOMIC_RELEASE);
			__atomic_fetch_add(&t->expected_acks, 1, __ATOMIC_RELAXED);
			t->fifo[t->tail++ & t->mask] = i;
			t->retransmits++;
			retx[n++] = s->key - 1;
			continue;
		}
		s->done = 1;
		t->lost++;
	}
	return n;
}

bool
amil_track_idle(const struct amil_track *t)
{
	return t->head == t->tail;
}

uint64_t
amil_track_lost(const struct amil_track *t)
{
	return t->lost;
}

uint64_t
amil_track_retransmits(const struct amil_track *t)
{
	return t->retransmits;
}

uint64_t
amil_track_expected_acks(const struct amil_track *t)
{
	return __atomic_load_n(&t->expected_acks, __ATOMIC_RELAXED);
}

void
amil_track_abandon(struct amil_track *t)
{
	while (t->head != t->tail) {
		struct slot *s = &t->slot[t->fifo[t->head++ & t->mask]];

		if (__atomic_load_n(&s->acks, __ATOMIC_ACQUIRE) == 0)
			t->lost++;
		s->done = 1;
	}
}

int
amil_track_lookup(const struct amil_track *t, uint64_t k, struct amil_track_info *info)
{
	const struct slot *s = &t->slot[k & t->mask];

	/* Acquire pairs with the release in amil_track_add(). */
	if (__atomic_load_n(&s->key, __ATOMIC_ACQUIRE) != k + 1)
		return -ENOENT;
	info->kind = s->kind;
	info->expect_ack = s->expect_ack;
	info->sends = __atomic_load_n(&s->sends, __ATOMIC_ACQUIRE);
	info->copies = __atomic_load_n(&s->copies, __ATOMIC_ACQUIRE);
	info->acks = __atomic_load_n(&s->acks, __ATOMIC_RELAXED);
	return 0;
}

int64_t
amil_track_ack(struct amil_track *t, uint64_t k)
{
	struct slot *s = &t->slot[k & t->mask];

	if (__atomic_load_n(&s->key, __ATOMIC_ACQUIRE) != k + 1)
		return -ENOENT;
	/* Release pairs with the TX owner's acquire in amil_track_due(). */
	return __atomic_fetch_add(&s->acks, 1, __ATOMIC_RELEASE);
}

bool
amil_track_accept(struct amil_track *t, uint64_t k)
{
	return __atomic_exchange_n(&t->slot[k & t->mask].accepted, 1, __ATOMIC_RELAXED) != 0;
}
