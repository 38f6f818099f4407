/*
 * test_console.c — unit tests for what an operator sees (issue 20), no
 * servers:
 *
 *   status     core/status.c: changes by table and operation stay bounded,
 *              the batch histogram's buckets, a table's rate and ETA, the
 *              source's retention figures in the JSON.
 *   history    server/history.c: the ring keeps the last hour, unknown
 *              figures are null, since= filters.
 *   webhook    server/webhook.c: the signature is HMAC-SHA256 (RFC 4231
 *              test case 2) as "sha256=<hex>".
 *   sdnotify   server/sdnotify.c: a datagram reaches the socket named by
 *              NOTIFY_SOCKET (a path and an abstract name); the watchdog
 *              period is read only for this process.
 *   progress   cli/progress.c: the terminal block's lines for a load and a
 *              stream, cut to the width.
 *   console    server/console.c: which compiled-in file a URL names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"
#include "core/status.h"
#include "penstock/change.h"
#include "penstock/source.h"
#include "server/console.h"
#include "server/history.h"
#include "server/lifecycle.h"
#include "server/sdnotify.h"
#include "server/webhook.h"

static void test_op_counts_bounded(void **state)
{
	ps_op_counts c;
	ps_run_status s;
	ps_run_status copy;
	char name[32];
	json_t *j, *last;

	(void)state;
	memset(&c, 0, sizeof(c));
	ps_op_counts_add(&c, "public", "a", PS_OP_INSERT, 100);
	ps_op_counts_add(&c, "public", "a", PS_OP_INSERT, 50);
	ps_op_counts_add(&c, "public", "a", PS_OP_DELETE, 10);
	ps_op_counts_add(&c, "public", "b", PS_OP_UPDATE, 7);
	ps_op_counts_add(&c, "public", "b", PS_OP_MESSAGE, 7);   /* not counted */
	assert_int_equal(c.n, 2);
	assert_int_equal(c.rows[0].changes[PS_OPS_INSERT], 2);
	assert_int_equal(c.rows[0].bytes[PS_OPS_INSERT], 150);
	assert_int_equal(c.rows[0].changes[PS_OPS_DELETE], 1);
	assert_int_equal(c.rows[1].changes[PS_OPS_UPDATE], 1);
	/* past the bound, every other table shares one row with empty names */
	for (int i = 0; i < PS_TABLE_OPS_MAX + 100; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		ps_op_counts_add(&c, "s", name, PS_OP_INSERT, 1);
	}
	assert_int_equal(c.n, PS_TABLE_OPS_MAX + 1);
	assert_string_equal(c.rows[c.n - 1].name, "");
	assert_int_equal(c.rows[c.n - 1].changes[PS_OPS_INSERT], 102);
	ps_op_counts_add(&c, "public", "a", PS_OP_INSERT, 1);   /* known tables still count apart */
	assert_int_equal(c.rows[0].changes[PS_OPS_INSERT], 3);

	ps_run_status_init(&s);
	ps_run_status_set_ops(&s, &c);
	assert_false(c.dirty);
	ps_run_status_copy(&s, &copy);
	assert_null(copy.table_ops);   /* only copy_all carries them */
	ps_run_status_copy_free(&copy);
	ps_run_status_copy_all(&s, &copy);
	assert_int_equal(copy.ntable_ops, PS_TABLE_OPS_MAX + 1);
	j = ps_run_status_json(&copy);
	ps_run_status_copy_free(&copy);
	assert_int_equal(json_array_size(json_object_get(j, "table_changes")), PS_TABLE_OPS_MAX + 1);
	last = json_array_get(json_object_get(j, "table_changes"), 0);
	assert_int_equal(json_integer_value(json_object_get(last, "insert")), 3);
	assert_int_equal(json_integer_value(json_object_get(last, "insert_bytes")), 151);
	json_decref(j);
	ps_run_status_destroy(&s);
	ps_op_counts_free(&c);
}

static void test_batch_histogram(void **state)
{
	ps_run_status s;
	json_t *j, *buckets;

	(void)state;
	ps_run_status_init(&s);
	ps_run_status_batch(&s, 0.0005);   /* le 0.001 */
	ps_run_status_batch(&s, 0.001);    /* le 0.001: the bound is inclusive */
	ps_run_status_batch(&s, 0.3);      /* le 0.5 */
	ps_run_status_batch(&s, 60);       /* +Inf */
	j = ps_run_status_json(&s);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "apply_batches"),
	                                                    "count")), 4);
	assert_true(fabs(json_real_value(json_object_get(json_object_get(j, "apply_batches"),
	                                                 "seconds_sum")) - 60.3015) < 1e-9);
	buckets = json_object_get(json_object_get(j, "apply_batches"), "buckets");
	assert_int_equal(json_array_size(buckets), PS_BATCH_BUCKETS + 1);
	/* cumulative, as Prometheus wants them */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(buckets, 0), "count")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(buckets, 7), "count")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(buckets, 8), "count")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(buckets, 11), "count")), 3);
	assert_true(json_is_null(json_object_get(json_array_get(buckets, 12), "le")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(buckets, 12), "count")), 4);
	json_decref(j);
	ps_run_status_destroy(&s);
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void test_table_rate_eta(void **state)
{
	ps_run_status s, copy;
	ps_table_status t;
	json_t *j, *jt;

	(void)state;
	ps_run_status_init(&s);
	memset(&t, 0, sizeof(t));
	snprintf(t.schema, sizeof(t.schema), "public");
	snprintf(t.name, sizeof(t.name), "orders");
	t.rows_estimated = 10000;
	t.units_total = 4;
	ps_run_status_set_tables(&s, &t, 1);
	ps_run_status_copy(&s, &copy);
	assert_true(copy.tables[0].eta_seconds < 0);   /* no rate yet: unknown */
	ps_run_status_copy_free(&copy);
	/* the rate needs a window of at least 2 s: publish until it shows
	 * (polled, with a deadline), then check what it must be whatever the
	 * window's length was */
	t.rows_copied = 4000;
	t.units_done = 1;
	for (int tries = 0;; tries++) {
		ps_run_status_set_tables(&s, &t, 1);
		ps_run_status_copy(&s, &copy);
		if (copy.tables[0].rows_per_sec > 0)
			break;
		ps_run_status_copy_free(&copy);
		assert_true(tries < 600);   /* 60 s */
		nap_ms(100);
	}
	assert_true(copy.tables[0].rows_per_sec <= 4000 / 2.0);   /* 4000 rows in >= 2 s */
	assert_true(fabs(copy.tables[0].eta_seconds - 6000 / copy.tables[0].rows_per_sec) < 1e-6);
	j = ps_run_status_json(&copy);
	ps_run_status_copy_free(&copy);
	jt = json_array_get(json_object_get(j, "tables"), 0);
	assert_true(json_is_real(json_object_get(jt, "eta_seconds")));
	assert_true(json_real_value(json_object_get(json_object_get(j, "rates"), "rows_per_sec")) > 1000);
	json_decref(j);
	/* done: ETA 0 */
	t.units_done = 4;
	t.finished = true;
	t.rows_copied = 10000;
	ps_run_status_set_tables(&s, &t, 1);
	ps_run_status_copy(&s, &copy);
	assert_true(copy.tables[0].eta_seconds == 0);
	ps_run_status_copy_free(&copy);
	/* no estimate: unknown */
	t.units_done = 1;
	t.finished = false;
	t.rows_estimated = -1;
	ps_run_status_set_tables(&s, &t, 1);
	ps_run_status_copy(&s, &copy);
	assert_true(copy.tables[0].eta_seconds < 0);
	ps_run_status_copy_free(&copy);
	ps_run_status_destroy(&s);
}

static void test_retention_json(void **state)
{
	ps_run_status s;
	ps_log_retention r = {.retained_bytes = 4096, .limit_bytes = -1, .safe_bytes = -1};
	json_t *j, *ret;

	(void)state;
	ps_run_status_init(&s);
	j = ps_run_status_json(&s);
	ret = json_object_get(j, "retention");
	assert_true(json_is_null(json_object_get(ret, "retained_bytes")));
	assert_true(json_is_null(json_object_get(ret, "status")));
	json_decref(j);
	snprintf(r.status, sizeof(r.status), "reserved");
	ps_run_status_set_retention(&s, &r);
	j = ps_run_status_json(&s);
	ret = json_object_get(j, "retention");
	assert_int_equal(json_integer_value(json_object_get(ret, "retained_bytes")), 4096);
	assert_int_equal(json_integer_value(json_object_get(j, "retained_bytes")), 4096);
	assert_true(json_is_null(json_object_get(ret, "limit_bytes")));
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "reserved");
	json_decref(j);
	/* a source that cannot tell what it keeps leaves end - acknowledged */
	s.retained_bytes = 77;
	r.retained_bytes = -1;
	r.limit_bytes = 1 << 30;
	ps_run_status_set_retention(&s, &r);
	j = ps_run_status_json(&s);
	assert_int_equal(json_integer_value(json_object_get(j, "retained_bytes")), 77);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "retention"),
	                                                    "limit_bytes")), 1 << 30);
	json_decref(j);
	ps_run_status_destroy(&s);
}

static void test_history(void **state)
{
	ps_history *h = calloc(1, sizeof(*h));
	ps_history_sample s;
	json_t *fig, *list;

	(void)state;
	fig = json_pack("{s:{s:f, s:I}, s:I, s:{s:f, s:f}, s:{s:I}, s:[{s:I}, {s:I}]}", "lag",
	                "seconds", 1.5, "bytes", (json_int_t)2048, "retained_bytes", (json_int_t)4096,
	                "rates", "changes_per_sec", 10.0, "rows_per_sec", 0.0, "counters",
	                "changes_applied", (json_int_t)99, "tables", "rows_copied", (json_int_t)5,
	                "rows_copied", (json_int_t)7);
	for (int i = 0; i < PS_HISTORY_SAMPLES + 10; i++) {
		ps_history_sample_from(&s, 1000 + i, PS_JOB_RUNNING, fig, i % 2 == 0);
		ps_history_add(h, &s);
	}
	assert_int_equal(h->n, PS_HISTORY_SAMPLES);
	list = ps_history_json(h, 0);
	assert_int_equal(json_array_size(list), PS_HISTORY_SAMPLES);
	/* the oldest ten are gone; the first kept is sample 10 (running) */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "at_ms")), 1010);
	assert_true(json_real_value(json_object_get(json_array_get(list, 0), "lag_seconds")) == 1.5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "rows_copied")), 12);
	/* not running: unknown figures are null; what the source keeps is not */
	assert_true(json_is_null(json_object_get(json_array_get(list, 1), "lag_seconds")));
	assert_true(json_is_null(json_object_get(json_array_get(list, 1), "changes_applied")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "retained_bytes")),
	                 4096);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "state")),
	                    "running");
	json_decref(list);
	list = ps_history_json(h, 1000 + PS_HISTORY_SAMPLES + 7);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
	json_decref(fig);
	free(h);
}

static void test_webhook_signature(void **state)
{
	char sig[PS_WEBHOOK_SIGNATURE_MAX];
	const char *body = "what do ya want for nothing?";

	(void)state;
	/* RFC 4231, test case 2 */
	assert_int_equal(ps_webhook_sign(sig, sizeof(sig), "Jefe", body, strlen(body)), PS_OK);
	assert_string_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	assert_int_equal(ps_webhook_sign(sig, 10, "Jefe", body, strlen(body)), PS_EINVAL);
}

static void receive_one(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_sd_notify(void **state)
{
	struct sockaddr_un sa;
	char dir[] = "/tmp/ps-notify-XXXXXX", path[128], env[64];
	int fd;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(ps_sd_notify("READY=1"), 0);   /* not under a manager: nothing */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(ps_sd_notify("READY=1\nSTATUS=serving"), 1);
	receive_one(fd, "READY=1\nSTATUS=serving");
	close(fd);
	unlink(path);
	rmdir(dir);

	/* the abstract namespace: "@name" */
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(env, sizeof(env), "@ps-test-%d", (int)getpid());
	memcpy(sa.sun_path + 1, env + 1, strlen(env) - 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
	                      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(env))), 0);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(ps_sd_notify("WATCHDOG=1"), 1);
	receive_one(fd, "WATCHDOG=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");

	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(ps_sd_watchdog_usec(), 30000000);
	setenv("WATCHDOG_PID", "1", 1);   /* meant for another process */
	assert_int_equal(ps_sd_watchdog_usec(), 0);
	snprintf(env, sizeof(env), "%d", (int)getpid());
	setenv("WATCHDOG_PID", env, 1);
	assert_int_equal(ps_sd_watchdog_usec(), 30000000);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(ps_sd_watchdog_usec(), 0);
}

static void test_progress_render(void **state)
{
	ps_run_status s;
	ps_table_status t[2];
	ps_progress_block b;

	(void)state;
	ps_run_status_init(&s);
	ps_progress_render(&s, 100, 10, &b);
	assert_int_equal(b.n, 1);
	assert_non_null(strstr(b.line[0], "starting"));

	memset(t, 0, sizeof(t));
	snprintf(t[0].schema, sizeof(t[0].schema), "public");
	snprintf(t[0].name, sizeof(t[0].name), "orders");
	t[0].rows_copied = 1234567;
	t[0].rows_estimated = 2000000;
	t[0].units_total = 8;
	t[0].units_done = 4;
	t[0].rows_per_sec = 50000;
	t[0].eta_seconds = 15.3;
	snprintf(t[1].schema, sizeof(t[1].schema), "public");
	snprintf(t[1].name, sizeof(t[1].name), "items");
	t[1].rows_copied = 500;
	t[1].rows_estimated = 500;
	t[1].units_total = t[1].units_done = 1;
	t[1].finished = true;
	s.tables = t;
	s.ntables = 2;
	ps_progress_render(&s, 200, 10, &b);
	assert_int_equal(b.n, 3);
	assert_non_null(strstr(b.line[0], "1/2 tables"));
	assert_non_null(strstr(b.line[0], "1,235,067/~2,000,500 rows"));
	assert_non_null(strstr(b.line[0], "50,000 rows/s"));
	assert_non_null(strstr(b.line[1], "public.orders"));
	assert_non_null(strstr(b.line[1], "[############--------]"));
	assert_non_null(strstr(b.line[1], "ETA 0:15"));
	assert_non_null(strstr(b.line[2], "1 table done"));
	/* cut to the width: a line never wraps */
	ps_progress_render(&s, 40, 10, &b);
	for (int i = 0; i < b.n; i++)
		assert_true(strlen(b.line[i]) <= 40);

	/* the stream: lag afterwards */
	t[0].finished = true;
	t[0].units_done = 8;
	s.phase = PS_PHASE_STREAMING;
	s.lag_seconds = 0.25;
	s.lag_bytes = 2048;
	s.changes_applied = 12345;
	snprintf(s.applied, sizeof(s.applied), "0/1A2B3C8");
	ps_progress_render(&s, 200, 10, &b);
	assert_int_equal(b.n, 1);
	assert_non_null(strstr(b.line[0], "streaming  lag 0.2 s (2.0 KiB behind)"));
	assert_non_null(strstr(b.line[0], "12,345 changes"));
	assert_non_null(strstr(b.line[0], "checkpoint 0/1A2B3C8"));
	s.tables = NULL;
	s.ntables = 0;
	ps_run_status_destroy(&s);

	assert_int_equal(ps_progress_mode_parse("auto"), PS_PROGRESS_AUTO);
	assert_int_equal(ps_progress_mode_parse("always"), PS_PROGRESS_ALWAYS);
	assert_int_equal(ps_progress_mode_parse("never"), PS_PROGRESS_NEVER);
	assert_int_equal(ps_progress_mode_parse("yes"), -1);
	assert_false(ps_progress_wanted(PS_PROGRESS_NEVER));
	assert_true(ps_progress_wanted(PS_PROGRESS_ALWAYS));
}

static void test_console_files(void **state)
{
	const ps_console_asset *a;

	(void)state;
	a = ps_console_find("/");
	assert_non_null(a);
	assert_string_equal(a->name, "index.html");
	assert_non_null(strstr(a->type, "text/html"));
	assert_non_null(strstr((const char *)a->data, "/ui/app.js"));
	assert_int_equal(a->data[a->len], '\0');
	a = ps_console_find("/ui/app.js");
	assert_non_null(a);
	assert_non_null(strstr(a->type, "javascript"));
	assert_non_null(ps_console_find("/ui/app.css"));
	assert_null(ps_console_find("/ui/"));
	assert_null(ps_console_find("/ui/../penstock.db"));
	assert_null(ps_console_find("/ui/nothing.js"));
	assert_null(ps_console_find("/v1/jobs"));
	assert_null(ps_console_find("/metrics"));
	/* the page loads nothing from elsewhere, and keeps the token in the
	 * tab's session only */
	for (a = ps_console_assets; a->name; a++) {
		static const char *const banned[] = {"src=\"http", "href=\"http", "@import", "url(http",
		                                     "fetch('http", "localStorage", "document.cookie"};
		for (size_t k = 0; k < sizeof(banned) / sizeof(banned[0]); k++)
			if (strstr((const char *)a->data, banned[k]))
				fail_msg("%s holds %s", a->name, banned[k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op_counts_bounded),
		cmocka_unit_test(test_batch_histogram),
		cmocka_unit_test(test_table_rate_eta),
		cmocka_unit_test(test_retention_json),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_webhook_signature),
		cmocka_unit_test(test_sd_notify),
		cmocka_unit_test(test_progress_render),
		cmocka_unit_test(test_console_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
