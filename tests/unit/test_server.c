/*
 * test_server.c — unit tests for the server's pure parts and its store:
 *
 *   lifecycle   server/lifecycle.c: the allowed actions of each state, names
 *               and their parsing, the list shown in 409 answers.
 *   store       server/store.c: a job row and its event commit together, the
 *               walk in creation order, events after a sequence, delete.
 *   status      core/status.c: rate and lag derivation, JSON shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "server/lifecycle.h"
#include "server/server.h"
#include "server/store.h"

static void test_allowed_actions(void **state)
{
	(void)state;
	/* the refusals the API answers 409 for */
	assert_false(ps_job_allows(PS_JOB_CREATED, PS_ACT_PAUSE));
	assert_false(ps_job_allows(PS_JOB_CREATED, PS_ACT_RESUME));
	assert_false(ps_job_allows(PS_JOB_RUNNING, PS_ACT_START));
	assert_false(ps_job_allows(PS_JOB_RUNNING, PS_ACT_RESUME));
	assert_false(ps_job_allows(PS_JOB_PAUSED, PS_ACT_PAUSE));
	assert_false(ps_job_allows(PS_JOB_STOPPED, PS_ACT_STOP));
	assert_false(ps_job_allows(PS_JOB_CHECKING, PS_ACT_START));
	/* the transitions of the lifecycle */
	assert_true(ps_job_allows(PS_JOB_CREATED, PS_ACT_CHECK));
	assert_true(ps_job_allows(PS_JOB_CHECK_FAILED, PS_ACT_START));
	assert_true(ps_job_allows(PS_JOB_READY, PS_ACT_START));
	assert_true(ps_job_allows(PS_JOB_RUNNING, PS_ACT_PAUSE));
	assert_true(ps_job_allows(PS_JOB_PAUSED, PS_ACT_RESUME));
	assert_true(ps_job_allows(PS_JOB_FAILED_PERMANENTLY, PS_ACT_STOP));
	assert_true(ps_job_allows(PS_JOB_STOPPED, PS_ACT_START));
	/* delete and modify are accepted in every state */
	for (int s = 0; s < PS_JOB_NSTATES; s++) {
		assert_true(ps_job_allows(s, PS_ACT_DELETE));
		assert_true(ps_job_allows(s, PS_ACT_MODIFY));
	}
	assert_false(ps_job_allows(-1, PS_ACT_DELETE));
	assert_false(ps_job_allows(PS_JOB_NSTATES, PS_ACT_DELETE));
}

static void test_names_round_trip(void **state)
{
	char list[200];

	(void)state;
	for (int s = 0; s < PS_JOB_NSTATES; s++)
		assert_int_equal(ps_job_state_parse(ps_job_state_name(s)), s);
	for (int a = 0; a < PS_NACTIONS; a++)
		assert_int_equal(ps_job_action_parse(ps_job_action_name(a)), a);
	assert_int_equal(ps_job_state_parse("runnin"), -1);
	assert_int_equal(ps_job_action_parse("explode"), -1);
	assert_string_equal(ps_job_state_name(PS_JOB_FAILED_PERMANENTLY), "failed_permanently");
	assert_int_equal(ps_health_parse("degraded_log_fully_read"), PS_HEALTH_DEGRADED_LOG_FULLY_READ);
	ps_job_allowed_list(PS_JOB_PAUSED, list, sizeof(list));
	assert_string_equal(list, "resume, stop, delete, modify");
	assert_true(ps_job_state_active(PS_JOB_RUNNING));
	assert_false(ps_job_state_active(PS_JOB_PAUSED));
}

static int collect(const ps_store_job *j, void *payload)
{
	char *names = payload;

	strcat(names, j->name);
	strcat(names, ":");
	strcat(names, j->state);
	strcat(names, j->checks ? "+checks;" : ";");
	return 0;
}

static void test_store(void **state)
{
	char dir[] = "/tmp/penstock-store-XXXXXX", path[100], names[200] = "";
	ps_store *s = NULL;
	ps_error err;
	json_t *ev;
	ps_store_job a = {.id = "job_a", .name = "a", .spec = "{}", .state = "created",
	                  .health = "ok", .created_at = 1000, .updated_at = 1000};
	ps_store_job b = {.id = "job_b", .name = "b", .spec = "{}", .state = "created",
	                  .health = "ok", .created_at = 2000, .updated_at = 2000};
	ps_store_event created = {.kind = "transition", .actor = "api", .to_state = "created",
	                          .reason = "created"};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/penstock.db", dir);
	ps_error_clear(&err);
	assert_int_equal(ps_store_open(&s, path, &err), PS_OK);
	assert_int_equal(ps_store_put(s, &b, &created, &err), PS_OK);
	assert_int_equal(ps_store_put(s, &a, &created, &err), PS_OK);
	a.state = "ready";
	a.checks = "{\"passed\":true}";
	created.from_state = "checking";
	created.to_state = "ready";
	assert_int_equal(ps_store_put(s, &a, &created, &err), PS_OK);
	/* a name is unique: a second job with it is refused, and nothing is kept */
	ps_store_job dup = b;
	dup.id = "job_c";
	assert_int_not_equal(ps_store_put(s, &dup, &created, &err), PS_OK);
	assert_non_null(strstr(err.message, "UNIQUE"));
	ps_store_close(s);

	/* reopened: the rows as last written, in creation order */
	assert_int_equal(ps_store_open(&s, path, &err), PS_OK);
	assert_int_equal(ps_store_each(s, collect, names, &err), PS_OK);
	assert_string_equal(names, "a:ready+checks;b:created;");
	ev = ps_store_events(s, "job_a", 0, 100, &err);
	assert_non_null(ev);
	assert_int_equal(json_array_size(ev), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 1), "to")), "ready");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 1), "from")), "checking");
	json_int_t first = json_integer_value(json_object_get(json_array_get(ev, 0), "seq"));
	json_decref(ev);
	ev = ps_store_events(s, "job_a", first, 100, &err);
	assert_int_equal(json_array_size(ev), 1);
	json_decref(ev);
	/* events of job_c were rolled back with its row */
	ev = ps_store_events(s, "job_c", 0, 100, &err);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	assert_int_equal(ps_store_delete(s, "job_a", &err), PS_OK);
	names[0] = '\0';
	assert_int_equal(ps_store_each(s, collect, names, &err), PS_OK);
	assert_string_equal(names, "b:created;");
	ev = ps_store_events(s, "job_a", 0, 100, &err);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	ps_store_close(s);
	unlink(path);
	snprintf(path, sizeof(path), "%s/penstock.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/penstock.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

static void test_status(void **state)
{
	ps_run_status s, copy;
	ps_table_status t = {.schema = "public", .name = "orders", .rows_copied = 10,
	                     .rows_estimated = 100, .units_done = 1, .units_total = 4};
	json_t *j;

	(void)state;
	ps_run_status_init(&s);
	assert_int_equal(ps_run_status_set_tables(&s, &t, 1), PS_OK);
	/* idle: nothing behind */
	ps_run_status_applied(&s, "0/10", 4, 5, 1, 1, true, PS_PHASE_STREAMING);
	ps_run_status_copy(&s, &copy);
	j = ps_run_status_json(&copy);
	free(copy.tables);
	assert_string_equal(json_string_value(json_object_get(j, "phase")), "streaming");
	assert_string_equal(json_string_value(json_object_get(j, "cdc_state")), "TFSTART");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "positions"), "applied")), "0/10");
	assert_true(json_is_null(json_object_get(json_object_get(j, "positions"), "read")));
	assert_true(json_real_value(json_object_get(json_object_get(j, "lag"), "seconds")) == 0.0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "lag"), "bytes")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(j, "tables"), 0), "units_total")), 4);
	json_decref(j);
	/* behind: lag is the age of the last applied commit (here from 1970) */
	ps_run_status_applied(&s, "0/20", 4, 6, 2, 1000000, false, PS_PHASE_CATCHUP);
	assert_true(s.lag_seconds > 1e9);
	ps_run_status_destroy(&s);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* --tls-cert / --tls-key files: a key others can read is refused with the
 * chmod that fixes it, and its content is never in the message; a file
 * that is not PEM is refused naming the option; a good one is read whole. */
static void test_tls_files(void **state)
{
	char dir[] = "/tmp/ps-tls-XXXXXX", path[300];
	const char *key = "-----BEGIN PRIVATE KEY-----\nTUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFFRg==\n"
	                  "-----END PRIVATE KEY-----\n";
	char *text = NULL;
	ps_error err;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.key", dir);

	write_file(path, key, 0644);
	ps_error_clear(&err);
	assert_int_not_equal(ps_tls_file_read(&text, path, "--tls-key", true, &err), PS_OK);
	assert_null(text);
	assert_non_null(strstr(err.message, "chmod 600"));
	assert_non_null(strstr(err.message, "--tls-key"));
	assert_null(strstr(err.message, "TUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFFRg"));

	assert_int_equal(chmod(path, 0640), 0);   /* a group of its own: allowed */
	assert_int_equal(ps_tls_file_read(&text, path, "--tls-key", true, &err), PS_OK);
	assert_string_equal(text, key);
	free(text);
	text = NULL;

	/* a certificate may be readable by all; it must still be PEM */
	write_file(path, "not a certificate\n", 0644);
	assert_int_not_equal(ps_tls_file_read(&text, path, "--tls-cert", false, &err), PS_OK);
	assert_non_null(strstr(err.message, "PEM"));
	assert_non_null(strstr(err.message, "--tls-cert"));
	assert_null(text);

	unlink(path);
	assert_int_not_equal(ps_tls_file_read(&text, path, "--tls-cert", false, &err), PS_OK);
	assert_non_null(strstr(err.message, path));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed_actions),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_tls_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
