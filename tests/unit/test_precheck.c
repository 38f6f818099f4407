/*
 * test_precheck.c — unit tests for the precheck report (core/check.c), its
 * JSON form (core/precheck.c), the check id list and the spec field
 * checks.skip (core/spec.c). No servers: the checks themselves are covered
 * by tests/integration/test_precheck.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/precheck.h"
#include "core/spec.h"

#define BASE "\"name\": \"j\", \"type\": \"sync\", " \
             "\"source\": {\"url\": \"postgresql://repl@db1:5432/app\"}, " \
             "\"target\": {\"url\": \"jsonl:///var/out\"}"

static void test_add_and_passed(void **state)
{
	ps_check_report r;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_true(ps_check_report_passed(&r));   /* empty: nothing failed */
	assert_int_equal(ps_check_add(&r, "source.wal_level", PS_CHECK_ERROR, PS_CHECK_PASSED,
	                              NULL, "wal_level is %s", "logical"), 0);
	assert_int_equal(ps_check_add(&r, "source.encoding", PS_CHECK_WARNING, PS_CHECK_FAILED,
	                              "use UTF8", "encoding is %s", "LATIN1"), 0);
	/* a failed warning does not block */
	assert_true(ps_check_report_passed(&r));
	assert_int_equal(ps_check_add(&r, "source.tables", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
	                              "not checked"), 0);
	assert_true(ps_check_report_passed(&r));
	assert_int_equal(ps_check_add(&r, "target.tables", PS_CHECK_ERROR, PS_CHECK_FAILED,
	                              "TRUNCATE \"public\".\"t\";", "%d rows", 3), 0);
	assert_false(ps_check_report_passed(&r));

	assert_int_equal(r.n, 4);
	assert_string_equal(r.items[0].message, "wal_level is logical");
	assert_null(r.items[0].fix);
	assert_string_equal(r.items[1].fix, "use UTF8");
	assert_string_equal(r.items[3].message, "3 rows");
	assert_ptr_equal(ps_check_find(&r, "target.tables"), &r.items[3]);
	assert_null(ps_check_find(&r, "target.types"));
	ps_check_report_free(&r);
	assert_int_equal(r.n, 0);
	assert_null(r.items);
	ps_check_report_free(&r);   /* twice is fine */
}

static void test_bounds(void **state)
{
	ps_check_report r;
	char *big = malloc(3 * PS_CHECK_TEXT_MAX);
	char longid[100];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_non_null(big);
	memset(big, 'x', 3 * PS_CHECK_TEXT_MAX - 1);
	big[3 * PS_CHECK_TEXT_MAX - 1] = '\0';
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(ps_check_add(&r, longid, PS_CHECK_ERROR, PS_CHECK_FAILED, big, "%s", big), 0);
	assert_int_equal(strlen(r.items[0].id), PS_CHECK_ID_MAX - 1);
	assert_int_equal(strlen(r.items[0].message), PS_CHECK_TEXT_MAX - 1);
	assert_string_equal(r.items[0].message + PS_CHECK_TEXT_MAX - 4, "...");
	assert_int_equal(strlen(r.items[0].fix), PS_CHECK_TEXT_MAX - 1);
	/* many items grow the array */
	for (int i = 0; i < 100; i++)
		assert_int_equal(ps_check_add(&r, "x", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL, "%d", i), 0);
	assert_int_equal(r.n, 101);
	assert_string_equal(r.items[100].message, "99");
	ps_check_report_free(&r);
	free(big);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(ps_check_level_name(PS_CHECK_ERROR), "error");
	assert_string_equal(ps_check_level_name(PS_CHECK_WARNING), "warning");
	assert_string_equal(ps_check_level_name(0), "?");
	assert_string_equal(ps_check_result_name(PS_CHECK_PASSED), "passed");
	assert_string_equal(ps_check_result_name(PS_CHECK_FAILED), "failed");
	assert_string_equal(ps_check_result_name(PS_CHECK_SKIPPED), "skipped");
	assert_string_equal(ps_check_result_name(9), "?");
}

static void test_json(void **state)
{
	ps_check_report r;
	json_t *j, *items, *it;

	(void)state;
	memset(&r, 0, sizeof(r));
	ps_check_add(&r, "source.wal_level", PS_CHECK_ERROR, PS_CHECK_FAILED,
	             "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
	             "wal_level is '%s'", "replica");
	ps_check_add(&r, "source.encoding", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL, "UTF8");
	ps_check_add(&r, "source.output_plugin", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
	             "bad byte \xff here");
	j = ps_check_report_json(&r);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "passed")));
	items = json_object_get(j, "items");
	assert_int_equal(json_array_size(items), 3);
	it = json_array_get(items, 0);
	assert_int_equal(json_object_size(it), 5);
	assert_string_equal(json_string_value(json_object_get(it, "id")), "source.wal_level");
	assert_string_equal(json_string_value(json_object_get(it, "level")), "error");
	assert_string_equal(json_string_value(json_object_get(it, "result")), "failed");
	assert_string_equal(json_string_value(json_object_get(it, "message")), "wal_level is 'replica'");
	assert_string_equal(json_string_value(json_object_get(it, "fix")),
	                    "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL");
	it = json_array_get(items, 1);
	assert_string_equal(json_string_value(json_object_get(it, "level")), "warning");
	assert_string_equal(json_string_value(json_object_get(it, "result")), "passed");
	assert_true(json_is_null(json_object_get(it, "fix")));
	/* bytes that are not UTF-8 are replaced, never make the JSON fail */
	it = json_array_get(items, 2);
	assert_string_equal(json_string_value(json_object_get(it, "result")), "skipped");
	assert_string_equal(json_string_value(json_object_get(it, "message")), "bad byte ? here");
	json_decref(j);

	r.items[0].result = PS_CHECK_PASSED;
	j = ps_check_report_json(&r);
	assert_true(json_is_true(json_object_get(j, "passed")));
	json_decref(j);
	ps_check_report_free(&r);

	j = ps_check_report_json(&r);   /* empty report */
	assert_true(json_is_true(json_object_get(j, "passed")));
	assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
	json_decref(j);
}

static void test_tables(void **state)
{
	ps_check_tables t;

	(void)state;
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "t%d", i);
		assert_int_equal(ps_check_tables_add(&t, "public", name), 0);
	}
	assert_int_equal(t.n, 20);
	assert_string_equal(t.items[19].name, "t19");
	assert_int_equal(ps_check_table_add_type(&t.items[3], "mood"), 0);
	assert_int_equal(ps_check_table_add_type(&t.items[3], "mood[]"), 0);
	assert_int_equal(ps_check_table_add_type(&t.items[3], "mood"), 0);   /* once each */
	assert_int_equal(t.items[3].nuser_types, 2);
	assert_string_equal(t.items[3].user_types[1], "mood[]");
	ps_check_tables_free(&t);
	assert_int_equal(t.n, 0);
	assert_false(t.listed);
}

static void test_known_ids(void **state)
{
	size_t n = 0;

	(void)state;
	for (; ps_check_known_id(n); n++) {
		const char *id = ps_check_known_id(n);

		assert_true(strncmp(id, "source.", 7) == 0 || strncmp(id, "target.", 7) == 0);
		assert_true(strlen(id) < PS_CHECK_ID_MAX);
		for (size_t k = 0; k < n; k++)
			assert_string_not_equal(ps_check_known_id(k), id);
	}
	assert_true(n >= 14);
	assert_true(ps_check_id_known("source.replica_identity"));
	assert_true(ps_check_id_skippable("source.replica_identity"));
	assert_true(ps_check_id_known("source.connect"));
	assert_false(ps_check_id_skippable("source.connect"));
	assert_false(ps_check_id_skippable("target.connect"));
	assert_false(ps_check_id_known("source.nope"));
	assert_false(ps_check_id_skippable("source.nope"));
}

static ps_spec *parse(const char *text, ps_error *err)
{
	ps_spec *spec = NULL;

	ps_error_clear(err);
	ps_spec_parse(&spec, text, strlen(text), "t.json", err);
	return spec;
}

static void test_spec_skip(void **state)
{
	ps_spec *spec;
	ps_error err;

	(void)state;
	spec = parse("{" BASE "}", &err);
	assert_non_null(spec);
	assert_int_equal(spec->ncheck_skip, 0);
	assert_null(spec->check_skip);
	ps_spec_free(spec);

	spec = parse("{" BASE ", \"checks\": {}}", &err);
	assert_non_null(spec);
	assert_int_equal(spec->ncheck_skip, 0);
	ps_spec_free(spec);

	spec = parse("{" BASE ", \"checks\": {\"skip\": [\"source.replica_identity\", "
	             "\"target.tables\"]}}", &err);
	assert_non_null(spec);
	assert_int_equal(spec->ncheck_skip, 2);
	assert_string_equal(spec->check_skip[0], "source.replica_identity");
	assert_string_equal(spec->check_skip[1], "target.tables");
	ps_spec_free(spec);
}

static void expect_fail(const char *text, const char *want_prefix)
{
	ps_spec *spec;
	ps_error err;

	spec = parse(text, &err);
	assert_null(spec);
	assert_int_equal(err.code, PS_EINVAL);
	if (strncmp(err.message, want_prefix, strlen(want_prefix)) != 0)
		fail_msg("message\n  got:  %s\n  want: %s...", err.message, want_prefix);
}

static void test_spec_skip_errors(void **state)
{
	ps_spec *spec;
	ps_error err;

	(void)state;
	expect_fail("{" BASE ", \"checks\": {\"skip\": [\"source.slots\", \"x\"]}}",
	            "t.json: checks.skip[1]: unknown check \"x\"; known: source.version, ");
	/* the list of known ids names every skippable one, and no connect check */
	spec = parse("{" BASE ", \"checks\": {\"skip\": [\"nope\"]}}", &err);
	assert_null(spec);
	for (size_t i = 0; ps_check_known_id(i); i++) {
		if (ps_check_id_skippable(ps_check_known_id(i)))
			assert_non_null(strstr(err.message, ps_check_known_id(i)));
	}
	assert_null(strstr(err.message, "source.connect"));
	expect_fail("{" BASE ", \"checks\": {\"skip\": [\"source.connect\"]}}",
	            "t.json: checks.skip[0]: check \"source.connect\" cannot be skipped");
	expect_fail("{" BASE ", \"checks\": {\"skip\": [\"source.slots\", 3]}}",
	            "t.json: checks.skip[1]: expected a string, got number");
	expect_fail("{" BASE ", \"checks\": {\"skip\": \"source.slots\"}}",
	            "t.json: checks.skip: expected an array, got string");
	expect_fail("{" BASE ", \"checks\": []}", "t.json: checks: expected an object, got array");
	expect_fail("{" BASE ", \"checks\": {\"skipp\": []}}",
	            "t.json: checks.skipp: unknown field; known fields are skip");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_passed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_known_ids),
		cmocka_unit_test(test_spec_skip),
		cmocka_unit_test(test_spec_skip_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
