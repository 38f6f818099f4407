/*
 * test_ratelimit.c — unit tests for live rate limits:
 *
 *   bucket      core/ratelimit.c: the token bucket's arithmetic on a fake
 *               clock (ps_ratelimit_due / _spend): the long-run rate, the
 *               burst, debt from a costly item, two dimensions, a limit
 *               changed or lifted between takes.
 *   take        ps_ratelimit_take on the real clock: a limit holds takes
 *               back (lower bound only), a limit lifted from another thread
 *               frees a waiting take, a stop request lets it through.
 *   spec        core/spec.c: the limits and complete sections, their
 *               defaults, bounds and field paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/plugin.h"
#include "core/ratelimit.h"
#include "core/spec.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* Takes n single changes of `bytes` bytes as fast as a fake clock allows:
 * each take advances the clock by exactly the wait the bucket asks for.
 * Returns the fake time the n takes needed. */
static uint64_t drive(ps_ratelimit *rl, long long rows_rate, long long bytes_rate, int n,
                      uint64_t bytes, uint64_t start)
{
	uint64_t now = start;

	for (int i = 0; i < n; i++) {
		uint64_t wait = ps_ratelimit_due(rl, rows_rate, bytes_rate, now);
		now += wait;
		assert_int_equal(ps_ratelimit_due(rl, rows_rate, bytes_rate, now), 0);
		ps_ratelimit_spend(rl, rows_rate, bytes_rate, 1, bytes);
	}
	return now - start;
}

static void test_bucket_rate(void **state)
{
	ps_ratelimit rl;
	uint64_t t, later;

	(void)state;
	ps_ratelimit_init(&rl);
	/* from an empty bucket: 1000 changes at 200/s take 999/200 s */
	t = drive(&rl, 200, 0, 1000, 10, 1 * SEC);
	assert_true(t >= 4990 * MS && t <= 5000 * MS);
	/* idle for a minute: only the burst (200/10 = 20) accumulates; 21 pass
	 * at once (the last one from a zero balance), the 22nd waits 5 ms */
	later = 1 * SEC + t + 60 * SEC;
	t = drive(&rl, 200, 0, 21, 10, later);
	assert_int_equal(t, 0);
	t = drive(&rl, 200, 0, 1, 10, later);
	assert_true(t >= 4 * MS && t <= 6 * MS);
	ps_ratelimit_destroy(&rl);
}

static void test_bucket_bytes_and_debt(void **state)
{
	ps_ratelimit rl;
	uint64_t now = 5 * SEC, wait;

	(void)state;
	ps_ratelimit_init(&rl);
	/* 1000 bytes/s: one 5000-byte change passes at once, and the next one
	 * waits for the debt (5 s) */
	assert_int_equal(ps_ratelimit_due(&rl, 0, 1000, now), 0);
	ps_ratelimit_spend(&rl, 0, 1000, 1, 5000);
	wait = ps_ratelimit_due(&rl, 0, 1000, now);
	assert_true(wait >= 4999 * MS && wait <= 5000 * MS);
	/* both dimensions: the slower one decides */
	now += wait;
	assert_int_equal(ps_ratelimit_due(&rl, 1000000, 1000, now), 0);
	ps_ratelimit_spend(&rl, 1000000, 1000, 1, 100);
	wait = ps_ratelimit_due(&rl, 1000000, 1000, now);
	assert_true(wait >= 99 * MS && wait <= 100 * MS);
	ps_ratelimit_destroy(&rl);
}

static void test_bucket_live_change(void **state)
{
	ps_ratelimit rl;
	uint64_t now = SEC, wait;

	(void)state;
	ps_ratelimit_init(&rl);
	drive(&rl, 10, 0, 5, 1, now);
	now = SEC + 400 * MS;
	ps_ratelimit_spend(&rl, 10, 0, 1, 1);
	wait = ps_ratelimit_due(&rl, 10, 0, now);
	assert_true(wait > 0);
	/* raised to 10000/s: the same debt (2 changes) is paid a thousand times
	 * faster: 0.2 ms instead of 200 ms */
	assert_true(wait >= 199 * MS && wait <= 200 * MS);
	wait = ps_ratelimit_due(&rl, 10000, 0, now);
	assert_true(wait >= 199000 && wait <= 200000);
	/* lifted (0): nothing to wait for, and the balance is forgotten */
	assert_int_equal(ps_ratelimit_due(&rl, 0, 0, now), 0);
	assert_true(rl.rows == 0 && rl.bytes == 0);
	ps_ratelimit_destroy(&rl);
}

static void test_take_waits(void **state)
{
	ps_ratelimit rl;
	ps_limits lim;
	uint64_t t0;

	(void)state;
	ps_ratelimit_init(&rl);
	atomic_init(&lim.rows_per_sec, 100);
	atomic_init(&lim.bytes_per_sec, 0);
	atomic_init(&lim.parallel, 1);
	t0 = ps_now_ns();
	for (int i = 0; i < 21; i++)
		ps_ratelimit_take(&rl, &lim, 1, 10, NULL);
	/* 21 takes from an empty bucket at 100/s: at least 200 ms */
	assert_true(ps_now_ns() - t0 >= 195 * MS);
	assert_true(atomic_load(&rl.waited_ns) >= 150 * MS);
	/* no limits: no wait at all, and a NULL limits pointer is no limit */
	atomic_store(&lim.rows_per_sec, 0);
	ps_ratelimit_take(&rl, &lim, 1000000, 1000000, NULL);
	ps_ratelimit_take(&rl, NULL, 1, 1, NULL);
	ps_ratelimit_destroy(&rl);
}

typedef struct lifter {
	ps_limits *lim;
	atomic_int *stop;
} lifter;

static void *lift_later(void *arg)
{
	lifter *l = arg;
	struct timespec ts = {0, 150 * 1000000L};

	nanosleep(&ts, NULL);
	if (l->lim)
		atomic_store(&l->lim->rows_per_sec, 0);
	if (l->stop)
		atomic_store(l->stop, 1);
	return NULL;
}

static void test_take_lifted_or_stopped(void **state)
{
	ps_ratelimit rl;
	ps_limits lim;
	atomic_int stop;
	pthread_t t;
	lifter l;
	uint64_t t0;

	(void)state;
	ps_ratelimit_init(&rl);
	atomic_init(&lim.rows_per_sec, 1);
	atomic_init(&lim.bytes_per_sec, 0);
	atomic_init(&lim.parallel, 1);
	atomic_init(&stop, 0);
	/* at 1 change/s the second take would wait a second: lifting the
	 * limit from another thread frees it well before */
	ps_ratelimit_take(&rl, &lim, 1, 1, &stop);
	l = (lifter){&lim, NULL};
	pthread_create(&t, NULL, lift_later, &l);
	t0 = ps_now_ns();
	ps_ratelimit_take(&rl, &lim, 1, 1, &stop);
	pthread_join(t, NULL);
	assert_true(ps_now_ns() - t0 >= 100 * MS);
	assert_true(ps_now_ns() - t0 < 900 * MS);
	/* same with a stop request */
	atomic_store(&lim.rows_per_sec, 1);
	ps_ratelimit_take(&rl, &lim, 1, 1, &stop);
	l = (lifter){NULL, &stop};
	pthread_create(&t, NULL, lift_later, &l);
	t0 = ps_now_ns();
	ps_ratelimit_take(&rl, &lim, 1, 1, &stop);
	pthread_join(t, NULL);
	assert_true(ps_now_ns() - t0 < 900 * MS);
	ps_ratelimit_destroy(&rl);
}

/* --- spec --------------------------------------------------------------- */

static int parse(const char *extra, const char *type, ps_spec **out, ps_error *err)
{
	char doc[1024];

	snprintf(doc, sizeof(doc),
	         "{\"name\": \"j\", \"type\": \"%s\", \"source\": {\"url\": \"postgresql://h/db\"}, "
	         "\"target\": {\"url\": \"jsonl:///tmp/x\"}%s}", type, extra);
	ps_error_clear(err);
	return ps_spec_parse(out, doc, strlen(doc), "spec.json", err);
}

static void test_spec_limits(void **state)
{
	ps_spec *s = NULL;
	ps_limits lim;
	ps_error err;

	(void)state;
	assert_int_equal(parse("", "sync", &s, &err), PS_OK);
	assert_int_equal(s->limit_rows_per_sec, 0);
	assert_int_equal(s->limit_bytes_per_sec, 0);
	assert_int_equal(s->complete_max_lag_ms, 5000);
	ps_spec_free(s);
	assert_int_equal(parse(", \"limits\": {\"rows_per_sec\": 200, \"bytes_per_sec\": 1048576}, "
	                       "\"snapshot\": {\"parallel\": 3}", "sync", &s, &err), PS_OK);
	ps_limits_set(&lim, s);
	assert_int_equal(atomic_load(&lim.rows_per_sec), 200);
	assert_int_equal(atomic_load(&lim.bytes_per_sec), 1048576);
	assert_int_equal(atomic_load(&lim.parallel), 3);
	ps_spec_free(s);

	assert_int_equal(parse(", \"limits\": {\"rows_per_sec\": -1}", "sync", &s, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "spec.json: limits.rows_per_sec: -1 is out of range"));
	assert_int_equal(parse(", \"limits\": {\"bytes_per_sec\": \"fast\"}", "sync", &s, &err),
	                 PS_EINVAL);
	assert_non_null(strstr(err.message, "limits.bytes_per_sec: expected an integer"));
	assert_int_equal(parse(", \"limits\": {\"row_per_sec\": 1}", "sync", &s, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "limits.row_per_sec: unknown field"));
	assert_int_equal(parse(", \"limits\": 5", "sync", &s, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "limits: expected an object"));
}

static void test_spec_complete(void **state)
{
	ps_spec *s = NULL;
	ps_error err;

	(void)state;
	assert_int_equal(parse(", \"complete\": {\"max_lag_ms\": 750}", "migration", &s, &err), PS_OK);
	assert_int_equal(s->complete_max_lag_ms, 750);
	ps_spec_free(s);
	assert_int_equal(parse(", \"complete\": {\"max_lag_ms\": 750}", "sync", &s, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "complete: only a migration job completes"));
	assert_int_equal(parse(", \"complete\": {\"max_lag_ms\": 0}", "migration", &s, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "complete.max_lag_ms: 0 is out of range"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_rate),
		cmocka_unit_test(test_bucket_bytes_and_debt),
		cmocka_unit_test(test_bucket_live_change),
		cmocka_unit_test(test_take_waits),
		cmocka_unit_test(test_take_lifted_or_stopped),
		cmocka_unit_test(test_spec_limits),
		cmocka_unit_test(test_spec_complete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
