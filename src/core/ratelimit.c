/*
 * ratelimit.c — live limits and their token buckets (see ratelimit.h).
 */
#include <time.h>

#include "core/plugin.h"
#include "core/ratelimit.h"

#define SLICE_NS (50ull * 1000000ull)

void ps_limits_set(ps_limits *l, const ps_spec *spec)
{
	atomic_store(&l->rows_per_sec, spec->limit_rows_per_sec);
	atomic_store(&l->bytes_per_sec, spec->limit_bytes_per_sec);
	atomic_store(&l->parallel, spec->snapshot_parallel > 0 ? spec->snapshot_parallel : 1);
}

void ps_ratelimit_init(ps_ratelimit *rl)
{
	pthread_mutex_init(&rl->mu, NULL);
	rl->rows = 0;
	rl->bytes = 0;
	rl->last_ns = 0;
	atomic_init(&rl->used, false);
	atomic_init(&rl->waited_ns, 0);
}

void ps_ratelimit_destroy(ps_ratelimit *rl)
{
	pthread_mutex_destroy(&rl->mu);
}

/* A tenth of a second's worth, at least one unit (note 2). */
static double burst(long long rate)
{
	double b = (double)rate / 10.0;

	return b < 1.0 ? 1.0 : b;
}

/* Refills one balance over dt seconds; 0 (unlimited) empties it (note 3). */
static void refill(double *balance, long long rate, double dt)
{
	if (rate <= 0) {
		*balance = 0;
		return;
	}
	*balance += (double)rate * dt;
	if (*balance > burst(rate))
		*balance = burst(rate);
}

/* Nanoseconds until a negative balance is back at zero. */
static uint64_t until_zero(double balance, long long rate)
{
	double ns;

	if (rate <= 0 || balance >= 0)
		return 0;
	ns = -balance / (double)rate * 1e9;
	return ns < 1.0 ? 1 : (uint64_t)ns;
}

uint64_t ps_ratelimit_due(ps_ratelimit *rl, long long rows_per_sec, long long bytes_per_sec,
                          uint64_t now_ns)
{
	double dt = rl->last_ns && now_ns > rl->last_ns ? (double)(now_ns - rl->last_ns) / 1e9 : 0;
	uint64_t a, b;

	if (now_ns > rl->last_ns)
		rl->last_ns = now_ns;
	refill(&rl->rows, rows_per_sec, dt);
	refill(&rl->bytes, bytes_per_sec, dt);
	a = until_zero(rl->rows, rows_per_sec);
	b = until_zero(rl->bytes, bytes_per_sec);
	return a > b ? a : b;
}

void ps_ratelimit_spend(ps_ratelimit *rl, long long rows_per_sec, long long bytes_per_sec,
                        uint64_t rows, uint64_t bytes)
{
	if (rows_per_sec > 0)
		rl->rows -= (double)rows;
	if (bytes_per_sec > 0)
		rl->bytes -= (double)bytes;
}

void ps_ratelimit_take(ps_ratelimit *rl, const ps_limits *lim, uint64_t rows, uint64_t bytes,
                       const atomic_int *stop)
{
	uint64_t started = 0;

	for (;;) {
		long long rr = lim ? atomic_load(&lim->rows_per_sec) : 0;
		long long br = lim ? atomic_load(&lim->bytes_per_sec) : 0;
		uint64_t now, wait;

		/* unlimited, the common case: every change passes here */
		if (rr <= 0 && br <= 0 && !atomic_load_explicit(&rl->used, memory_order_relaxed))
			break;
		pthread_mutex_lock(&rl->mu);
		if (rr <= 0 && br <= 0) {
			/* unlimited: a limit set later starts from an empty bucket */
			rl->rows = rl->bytes = 0;
			rl->last_ns = 0;
			atomic_store_explicit(&rl->used, false, memory_order_relaxed);
			pthread_mutex_unlock(&rl->mu);
			break;
		}
		atomic_store_explicit(&rl->used, true, memory_order_relaxed);
		now = ps_now_ns();
		wait = ps_ratelimit_due(rl, rr, br, now);
		if (wait == 0 || (stop && atomic_load(stop))) {
			ps_ratelimit_spend(rl, rr, br, rows, bytes);
			pthread_mutex_unlock(&rl->mu);
			break;
		}
		pthread_mutex_unlock(&rl->mu);
		if (!started)
			started = now;
		if (wait > SLICE_NS)
			wait = SLICE_NS;
		struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
		nanosleep(&ts, NULL);
	}
	if (started)
		atomic_fetch_add(&rl->waited_ns, ps_now_ns() - started);
}
