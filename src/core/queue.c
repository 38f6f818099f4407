/*
 * queue.c — bounded SPSC queue with a mutex and two condition variables (see
 * queue.h). Items are copied into a ring; changes are moved by pointer.
 *
 * The ring starts small and doubles when it is full, up to the item bound.
 * A ring of the whole bound allocated at once (65,536 items of ~190 bytes,
 * 12 MiB) is untouched at first, but the head and tail walk through all of
 * it, so every job's resident memory grew by ~1 KB a transaction until it
 * held the whole 12 MiB, however short its queue ever was: 50 jobs of a
 * server were headed for 600 MiB (bench/many_jobs.py). Grown on demand, a
 * ring holds what the queue's deepest moment needed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/queue.h"

#define QUEUE_FIRST_SLOTS 256

static size_t item_bytes(const ps_read_item *it)
{
	return sizeof(*it) + (it->change ? it->change->mem_size : 0);
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int ps_queue_init(ps_queue *q, size_t max_items, size_t max_bytes)
{
	memset(q, 0, sizeof(*q));
	if (max_items == 0)
		max_items = 1;
	q->slots = max_items < QUEUE_FIRST_SLOTS ? max_items : QUEUE_FIRST_SLOTS;
	q->ring = calloc(q->slots, sizeof(*q->ring));
	if (!q->ring)
		return PS_ENOMEM;
	q->cap = max_items;
	q->max_bytes = max_bytes;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	return PS_OK;
}

void ps_queue_destroy(ps_queue *q)
{
	if (!q->ring)
		return;
	while (q->count) {
		ps_change_free(q->ring[q->head].change);
		free(q->ring[q->head].state);
		ps_table_change_free(q->ring[q->head].table_change);
		q->head = (q->head + 1) % q->slots;
		q->count--;
	}
	free(q->ring);
	q->ring = NULL;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
}

/* A full ring (count == slots < cap) doubles, the items laid out again
 * from its start. */
static int grow(ps_queue *q)
{
	size_t slots = q->slots * 2 < q->cap ? q->slots * 2 : q->cap;
	ps_read_item *ring = malloc(slots * sizeof(*ring));

	if (!ring)
		return PS_ENOMEM;
	for (size_t i = 0; i < q->count; i++)
		ring[i] = q->ring[(q->head + i) % q->slots];
	memset(ring + q->count, 0, (slots - q->count) * sizeof(*ring));
	free(q->ring);
	q->ring = ring;
	q->slots = slots;
	q->head = 0;
	return PS_OK;
}

static int has_room(const ps_queue *q, size_t need)
{
	if (q->count == q->cap)
		return 0;
	return q->count == 0 || q->bytes + need <= q->max_bytes;
}

int ps_queue_push(ps_queue *q, ps_read_item *item, int timeout_ms)
{
	size_t need = item_bytes(item);
	struct timespec deadline;
	int rc = PS_OK;

	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&q->mu);
	while (!q->closed && !has_room(q, need)) {
		if (pthread_cond_timedwait(&q->not_full, &q->mu, &deadline) == ETIMEDOUT) {
			rc = PS_ETIMEOUT;
			goto cleanup;
		}
	}
	if (q->closed) {
		rc = PS_ESTOPPED;
		goto cleanup;
	}
	if (q->count == q->slots && (rc = grow(q)) != PS_OK)
		goto cleanup;   /* the item is still the caller's */
	q->ring[(q->head + q->count) % q->slots] = *item;
	q->count++;
	q->bytes += need;
	if (q->bytes > q->peak_bytes)
		q->peak_bytes = q->bytes;
	item->change = NULL;
	pthread_cond_signal(&q->not_empty);
cleanup:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int ps_queue_pop(ps_queue *q, ps_read_item *item, int timeout_ms)
{
	struct timespec deadline;
	int rc = PS_OK;

	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&q->mu);
	while (q->count == 0 && !q->closed) {
		if (pthread_cond_timedwait(&q->not_empty, &q->mu, &deadline) == ETIMEDOUT) {
			rc = PS_ETIMEOUT;
			goto cleanup;
		}
	}
	if (q->count == 0) {
		rc = PS_ESTOPPED;
		goto cleanup;
	}
	*item = q->ring[q->head];
	q->ring[q->head].change = NULL;
	q->head = (q->head + 1) % q->slots;
	q->count--;
	q->bytes -= item_bytes(item);
	pthread_cond_signal(&q->not_full);
cleanup:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void ps_queue_close(ps_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->mu);
}

size_t ps_queue_count(ps_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = q->count;
	pthread_mutex_unlock(&q->mu);
	return n;
}
