/*
 * queue.h — the bounded queue between the reader and the applier.
 *
 * Single producer (reader thread), single consumer (applier thread). Bounded
 * by item count and by bytes (sum of change->mem_size plus the item itself):
 * a full queue blocks the producer, which is how a slow target slows the
 * reader instead of growing memory. One item larger than the byte bound is
 * still admitted when the queue is empty, so a huge row passes through
 * instead of deadlocking. The ring of items is allocated as the queue
 * deepens (doubling), not for the whole bound at once.
 *
 * Ownership: push takes ownership of item->change; pop hands it over.
 * After ps_queue_close, pushes fail and pops drain what is left, then report
 * PS_ESTOPPED.
 */
#ifndef PS_CORE_QUEUE_H
#define PS_CORE_QUEUE_H

#include <pthread.h>
#include <stddef.h>

#include "penstock/source.h"

typedef struct ps_queue {
	pthread_mutex_t mu;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	ps_read_item *ring;
	size_t slots;               /* allocated: grows by doubling up to cap */
	size_t cap, head, count;    /* cap: the item bound */
	size_t bytes, max_bytes;
	size_t peak_bytes;
	int closed;
} ps_queue;

int ps_queue_init(ps_queue *q, size_t max_items, size_t max_bytes);
/* Frees queued changes and the ring. */
void ps_queue_destroy(ps_queue *q);
/* PS_OK, PS_ETIMEOUT (item not taken, still the caller's), PS_ESTOPPED (closed),
 * PS_ENOMEM (the ring could not grow; the item is still the caller's). */
int ps_queue_push(ps_queue *q, ps_read_item *item, int timeout_ms);
/* PS_OK, PS_ETIMEOUT, or PS_ESTOPPED when closed and empty. */
int ps_queue_pop(ps_queue *q, ps_read_item *item, int timeout_ms);
void ps_queue_close(ps_queue *q);
size_t ps_queue_count(ps_queue *q);

#endif
