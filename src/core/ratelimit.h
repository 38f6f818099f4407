/*
 * ratelimit.h — rate limits that may change while a job runs.
 *
 * NOTES ON THE DESIGN
 *
 * 1. ps_limits is the small shared struct of the live limits: whoever starts
 *    a run owns it (the server's job; `penstock run` fills one from the
 *    spec), writes it when the spec changes, and the pipeline's threads read
 *    it with atomic loads at every decision, so a new value takes effect at
 *    once, without a restart. Each field is independent: no reader needs two
 *    of them to agree.
 * 2. ps_ratelimit is a token bucket per dimension (changes, bytes). Tokens
 *    flow in at the limit's rate up to a burst of a tenth of a second's worth
 *    (at least one change, or one byte). A take waits while a bucket is
 *    negative, then spends its whole cost, which may drive the bucket
 *    negative: an item costlier than the burst still passes, and pays for it
 *    by the wait of the next take. Over any stretch of time T at most
 *    rate * T + burst + one item pass.
 * 3. A limit of 0 means unlimited: takes pass without waiting and the bucket
 *    is emptied, so a limit set later starts from an empty bucket. When a
 *    limit changes, the balance is kept, capped at the new burst.
 * 4. Waiting is done in slices of at most 50 ms, re-reading the limits and
 *    the stop flag between them: lifting a limit frees a waiting take within
 *    a slice; a stop request (any level) lets it through, so a pause or stop
 *    drains what was already read without the limit.
 * 5. One bucket may be shared by several threads (the initial load's copy
 *    workers take from the job's one bucket): its mutex guards the balance;
 *    nobody sleeps while holding it.
 */
#ifndef PS_CORE_RATELIMIT_H
#define PS_CORE_RATELIMIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/spec.h"

typedef struct ps_limits {
	atomic_llong rows_per_sec;      /* changes (rows) per second; 0 = unlimited */
	atomic_llong bytes_per_sec;     /* change bytes per second; 0 = unlimited */
	atomic_int parallel;            /* initial-load copy workers (snapshot.parallel) */
} ps_limits;

/* Sets every limit from the spec (limits.*, snapshot.parallel). */
void ps_limits_set(ps_limits *l, const ps_spec *spec);

typedef struct ps_ratelimit {
	pthread_mutex_t mu;
	double rows, bytes;             /* balances; negative while in debt */
	uint64_t last_ns;               /* when the balances were last refilled; 0: never */
	atomic_bool used;               /* balances hold something to reset: while no limit
	                                   is set and this is false, a take costs no lock */
	atomic_ullong waited_ns;        /* time takes spent waiting, for figures */
} ps_ratelimit;

void ps_ratelimit_init(ps_ratelimit *rl);
void ps_ratelimit_destroy(ps_ratelimit *rl);

/*
 * The bucket's arithmetic, without waiting (the caller holds rl->mu, or is
 * the only user): refills the balances up to now_ns under the given rates
 * and returns how many nanoseconds must pass before a take may proceed (0:
 * now). A rate of 0 is unlimited.
 */
uint64_t ps_ratelimit_due(ps_ratelimit *rl, long long rows_per_sec, long long bytes_per_sec,
                          uint64_t now_ns);
/* Spends a take's cost (after ps_ratelimit_due returned 0). */
void ps_ratelimit_spend(ps_ratelimit *rl, long long rows_per_sec, long long bytes_per_sec,
                        uint64_t rows, uint64_t bytes);

/*
 * Waits until rows changes of bytes bytes may pass under the current limits
 * (note 4), then spends them. lim may be NULL (no limits); stop may be NULL.
 * Returns without waiting once *stop is non-zero.
 */
void ps_ratelimit_take(ps_ratelimit *rl, const ps_limits *lim, uint64_t rows, uint64_t bytes,
                       const atomic_int *stop);

#endif
