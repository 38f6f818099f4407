/*
 * test_bad_input.c — what malformed input gets back, without servers
 * (docs/bad-input.md; the integration side is tests/integration/
 * test_bad_input.py):
 *
 *   bodies     the API's request body readers (the ones tests/fuzz/
 *              fuzz_api.c reaches): each refusal is a 400 naming the field,
 *              an accepted body fills the request, nothing is left to free
 *   one line   a message that echoes input (a field name, a JSON key) stays
 *              one line without control bytes, on the command line
 *              (ps_error_set) as in the API (ps_api_error)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare.h"
#include "core/spec.h"
#include "server/jobs_internal.h"
#include "server/recover.h"
#include "server/server.h"

static const char *msg_of(const ps_api_result *r)
{
	return json_string_value(json_object_get(json_object_get(r->body, "error"), "message"));
}

static const char *field_of(const ps_api_result *r)
{
	return json_string_value(json_object_get(json_object_get(r->body, "error"), "field"));
}

static void assert_one_line(const char *s)
{
	assert_non_null(s);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			fail_msg("control byte 0x%02x in '%s'", (unsigned char)*p, s);
}

/* Expects the 400 of a refused body, with its field, and clears r. */
static void expect_refused(ps_api_result *r, const char *code, const char *field,
                           const char *phrase)
{
	assert_int_equal(r->status, 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r->body, "error"),
	                                                      "code")), code);
	if (field)
		assert_string_equal(field_of(r), field);
	if (!strstr(msg_of(r), phrase))
		fail_msg("message '%s' lacks '%s'", msg_of(r), phrase);
	assert_one_line(msg_of(r));
	json_decref(r->body);
	r->body = NULL;
	r->status = 0;
}

#define BODY(s) (s), strlen(s)

static void test_action_bodies(void **state)
{
	ps_api_result r = {0, NULL};

	(void)state;
	assert_true(ps_api_action_body_ok(BODY(""), &r));
	assert_true(ps_api_action_body_ok(BODY("{\"reason\": \"maintenance\"}"), &r));
	assert_null(r.body);
	assert_false(ps_api_action_body_ok(BODY("reason=x"), &r));
	expect_refused(&r, "invalid_json", NULL, "request body:1:");
	assert_false(ps_api_action_body_ok(BODY("[1]"), &r));
	expect_refused(&r, "invalid_json", NULL, "request body: expected a JSON object");
	assert_false(ps_api_action_body_ok(BODY("{\"reason\": 5}"), &r));
	expect_refused(&r, "invalid_request", "reason", "reason: expected a string");
	assert_false(ps_api_action_body_ok(BODY("{\"force\": true}"), &r));
	expect_refused(&r, "invalid_request", "force", "force: unknown field; known: reason");
}

static void test_complete_bodies(void **state)
{
	ps_api_result r = {0, NULL};
	int mode = -1;

	(void)state;
	assert_true(ps__api_complete_body(BODY(""), &mode, &r));
	assert_int_equal(mode, 0);
	assert_true(ps__api_complete_body(BODY("{\"compare\": \"count\", \"reason\": \"x\"}"), &mode, &r));
	assert_int_equal(mode, PS_COMPARE_COUNT);
	assert_true(ps__api_complete_body(BODY("{\"compare\": true}"), &mode, &r));
	assert_int_equal(mode, PS_COMPARE_FULL);
	assert_null(r.body);
	assert_false(ps__api_complete_body(BODY("{\"compare\": \"thorough\"}"), &mode, &r));
	expect_refused(&r, "invalid_request", "compare", "expected \"count\", \"full\", \"sample\"");
	assert_false(ps__api_complete_body(BODY("{\"when\": \"now\"}"), &mode, &r));
	expect_refused(&r, "invalid_request", "when", "unknown field; known: compare, reason");
}

static void test_compare_bodies(void **state)
{
	static const struct {
		const char *body, *field;
	} bad[] = {
		{"{\"mode\": \"all\"}", "mode"},
		{"{\"sample_percent\": 0}", "sample_percent"},
		{"{\"sample_percent\": 101}", "sample_percent"},
		{"{\"chunk_rows\": 99}", "chunk_rows"},
		{"{\"max_report\": -1}", "max_report"},
		{"{\"repair\": \"yes\"}", "repair"},
		{"{\"tables\": []}", "tables"},
		{"{\"tables\": [\"public.a\", 1]}", "tables"},
		{"{\"colour\": 1}", "colour"},
	};
	ps_api_result r = {0, NULL};
	ps_compare_req q;

	(void)state;
	assert_true(ps__api_compare_body(BODY(""), &q, &r));
	assert_int_equal(q.mode, PS_COMPARE_FULL);
	assert_int_equal(q.sample_percent, 10);
	ps__api_compare_req_free(&q);
	assert_true(ps__api_compare_body(BODY("{\"mode\": \"sample\", \"sample_percent\": 5, "
	                                      "\"tables\": [\"public.*\", \"s.t\"], \"repair\": true}"),
	                                 &q, &r));
	assert_int_equal(q.mode, PS_COMPARE_SAMPLE);
	assert_int_equal(q.ntables, 2);
	assert_string_equal(q.tables[1], "s.t");
	assert_true(q.repair);
	ps__api_compare_req_free(&q);
	assert_null(r.body);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(ps__api_compare_body(BODY(bad[i].body), &q, &r));
		expect_refused(&r, "invalid_request", bad[i].field, bad[i].field);
	}
}

static void test_recover_bodies(void **state)
{
	ps_api_result r = {0, NULL};
	ps_recover_plan plan;

	(void)state;
	assert_true(ps_recover_parse(BODY("{\"strategy\": \"skip\", \"position\": \"0/16B3F10\"}"),
	                             &plan, &r));
	assert_int_equal(plan.strategy, PS_RECOVER_SKIP);
	assert_string_equal(plan.position, "0/16B3F10");
	ps_recover_plan_free(&plan);
	assert_false(ps_recover_parse(BODY(""), &plan, &r));
	expect_refused(&r, "invalid_request", "strategy", "required field is missing");
	assert_false(ps_recover_parse(BODY("{\"strategy\": \"resync\", \"tables\": [\"public.a\", "
	                                   "\"public.a\"]}"), &plan, &r));
	expect_refused(&r, "invalid_request", "tables", "a table is named twice");
	assert_null(plan.tables);
}

static void test_merge_patch(void **state)
{
	json_t *doc = json_loads("{\"a\": {\"b\": 1, \"c\": 2}, \"d\": 3}", 0, NULL);
	json_t *patch = json_loads("{\"a\": {\"b\": null, \"e\": 5}, \"d\": [1]}", 0, NULL);
	char *text;

	(void)state;
	ps__json_merge_patch(doc, patch);
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"a\":{\"c\":2,\"e\":5},\"d\":[1]}");
	free(text);
	json_decref(doc);
	json_decref(patch);
}

/* A refused spec's 400 carries the field path of the parser's message. */
static void test_bad_spec_answer(void **state)
{
	const char *text = "{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": \"x\"}}";
	ps_api_result r = {0, NULL};
	ps_spec *spec = NULL;
	char *stored = NULL;
	ps_error err;

	(void)state;
	ps_error_clear(&err);
	assert_int_equal(ps__job_parse_spec(BODY(text), "request body", &spec, &stored, &err),
	                 PS_EINVAL);
	assert_null(spec);
	assert_null(stored);
	ps__api_bad_spec(&r, &err, "request body");
	expect_refused(&r, "invalid_spec", "source.url", "request body: source.url: not a URL");
}

/* Found by tests/fuzz/fuzz_api.c: a body's field name went into the 400 as
 * it was, a newline or an ESC included, and `penstock job` prints that
 * message on the terminal. */
static void test_echoed_names_stay_one_line(void **state)
{
	const char *spec = "{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": "
	                   "\"postgresql://h/db\"}, \"target\": {\"url\": \"jsonl:-\"}, "
	                   "\"ta\\u001b[2Jb\\nles\": 1}";
	ps_api_result r = {0, NULL};
	ps_spec *out = NULL;
	ps_error err;
	int mode;

	(void)state;
	assert_false(ps_api_action_body_ok(BODY("{\"reaso\\n\": \"x\"}"), &r));
	expect_refused(&r, "invalid_request", "reaso\n", "request body: reaso?: unknown field");
	assert_false(ps__api_complete_body(BODY("{\"\\u001b[31mred\": 1}"), &mode, &r));
	expect_refused(&r, "invalid_request", "\x1b[31mred", "request body: ?[31mred: unknown");

	/* the same through the spec parser, on the command line */
	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&out, BODY(spec), "spec.json", &err), PS_EINVAL);
	assert_one_line(err.message);
	if (!strstr(err.message, "spec.json: ta?[2Jb; les: unknown field"))
		fail_msg("message '%s'", err.message);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_action_bodies),
		cmocka_unit_test(test_complete_bodies),
		cmocka_unit_test(test_compare_bodies),
		cmocka_unit_test(test_recover_bodies),
		cmocka_unit_test(test_merge_patch),
		cmocka_unit_test(test_bad_spec_answer),
		cmocka_unit_test(test_echoed_names_stay_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
