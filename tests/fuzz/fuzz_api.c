/*
 * fuzz_api.c — libFuzzer entry point for the readers of the API's request
 * bodies (src/server/job_api.c, jobs.c, recover.c; routes in docs/api.md),
 * each called as its route calls it, without a server:
 *
 *   0  POST /v1/jobs              the spec (ps__job_parse_spec), and the 400
 *                                 a refused one gets (ps__api_bad_spec)
 *   1  PATCH /v1/jobs/{id}        a JSON merge patch on a stored spec, the
 *                                 patched spec parsed, what of it changed
 *   2  POST .../{action}          {"reason": ...} (ps_api_action_body_ok)
 *   3  POST .../complete          ps__api_complete_body
 *   4  POST .../recover           ps_recover_parse
 *   5  POST .../compare           ps__api_compare_body
 *
 * Input: one byte, the route (byte % 6; for PATCH, (byte / 6) % 3 picks the
 * stored spec), then the body.
 *
 * What must hold, besides no crash, sanitizer report or leak:
 *   - a refused body is answered 400 with {"error": {"code": ..., "message":
 *     ...}} that serialises (a body jansson cannot dump would reach the
 *     client as a 500 "out of memory"), its message on one line;
 *   - an accepted body leaves the answer untouched and gives a request
 *     within the documented bounds; a created job's stored text parses
 *     again as the same spec.
 *
 * Seeds: tests/fuzz/corpus/api/ (make_corpus_text.py: docs/api.md's
 * bodies and the specs of the spec corpus).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare.h"
#include "core/checkpoint.h"
#include "core/spec_json.h"
#include "server/jobs_internal.h"
#include "server/recover.h"
#include "server/server.h"

/* No newline nor any other control byte (errors are one line). */
static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static const char *const STORED[] = {
	"{\"name\":\"orders\",\"type\":\"cdc\",\"source\":{\"url\":\"postgresql://repl@db1:5432/app\","
	"\"password_env\":\"SRC_PW\"},\"target\":{\"url\":\"jsonl:///var/lib/out\"}}",
	"{\"name\":\"move\",\"type\":\"migration\",\"source\":{\"url\":\"postgresql://repl@db1/app\"},"
	"\"target\":{\"url\":\"postgresql://app@db2:5433/app\",\"password_file\":\"/run/pw\","
	"\"create_tables\":\"never\"},\"tables\":{\"include\":[\"public.*\"],\"exclude\":"
	"[\"public.audit_*\"]},\"snapshot\":{\"parallel\":2,\"chunk_rows\":1000},\"complete\":"
	"{\"max_lag_ms\":100},\"retry\":{\"max_attempts\":3},\"limits\":{\"rows_per_sec\":10}}",
	"{\"name\":\"lite\",\"type\":\"sync\",\"source\":{\"url\":\"postgres://[::1]:5432/app\"},"
	"\"target\":{\"url\":\"sqlite:///srv/app.db\",\"truncate_before_load\":true},"
	"\"resume\":\"always\",\"checks\":{\"skip\":[\"source.slots\"]}}",
};

/* The answer to a refused body. */
static void check_refused(ps_api_result *r)
{
	json_t *e = json_object_get(r->body, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	char *text;

	if (r->status != 400 || !json_string_value(json_object_get(e, "code")) || !msg ||
	    !one_line(msg))
		abort();
	text = json_dumps(r->body, JSON_COMPACT);
	if (!text)
		abort();
	free(text);
	json_decref(r->body);
	r->body = NULL;
}

static void check_ok(const ps_api_result *r)
{
	if (r->status != 0 || r->body)
		abort();
}

static void create(const char *body, size_t len, ps_api_result *r)
{
	ps_spec *spec = NULL, *again = NULL;
	char *stored = NULL, *a, *b;
	ps_error err;

	ps_error_clear(&err);
	if (ps__job_parse_spec(body, len, "request body", &spec, &stored, &err) != PS_OK) {
		if (spec || stored)
			abort();
		ps__api_bad_spec(r, &err, "request body");
		check_refused(r);
		return;
	}
	/* what the store keeps is what the server parses at its next start */
	if (ps_spec_parse(&again, stored, strlen(stored), "stored", &err) != PS_OK)
		abort();
	a = ps_spec_to_json(spec);
	b = ps_spec_to_json(again);
	if (!a || !b || strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
	ps_spec_free(again);
	ps_spec_free(spec);
	free(stored);
}

static void modify(const char *stored_text, const char *body, size_t len, ps_api_result *r)
{
	json_t *patch, *doc;
	ps_spec *stored = NULL, *spec = NULL;
	char *merged, *text = NULL, *ignored = NULL;
	ps_identity a, b;
	ps_error err;

	patch = ps_api_body_object(body, len, "expected a JSON object (a merge patch of the spec)", r);
	if (!patch) {
		check_refused(r);
		return;
	}
	if (ps__job_parse_spec(stored_text, strlen(stored_text), "stored", &stored, &ignored,
	                       &err) != PS_OK)
		abort();
	free(ignored);
	doc = json_loads(stored_text, JSON_PRESERVE_ORDER, NULL);
	if (!doc)
		abort();
	ps__json_merge_patch(doc, patch);
	merged = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	ps_error_clear(&err);
	if (!merged ||
	    ps__job_parse_spec(merged, strlen(merged), "spec after the patch", &spec, &text,
	                       &err) != PS_OK) {
		ps__api_bad_spec(r, &err, "spec after the patch");
		check_refused(r);
	} else {
		ps_identity_from_spec(&a, stored);
		ps_identity_from_spec(&b, spec);
		(void)ps__job_changed_option(stored, spec);
		(void)ps__job_shared_option(stored, spec);
	}
	free(merged);
	free(text);
	json_decref(doc);
	json_decref(patch);
	ps_spec_free(spec);
	ps_spec_free(stored);
}

static void recover(const char *body, size_t len, ps_api_result *r)
{
	ps_recover_plan plan;

	if (!ps_recover_parse(body, len, &plan, r)) {
		if (plan.tables || plan.ntables)
			abort();
		check_refused(r);
		return;
	}
	check_ok(r);
	if (plan.strategy < PS_RECOVER_RETRY || plan.strategy > PS_RECOVER_RESYNC)
		abort();
	if (plan.strategy != PS_RECOVER_SKIP && plan.position[0])
		abort();
	if (plan.strategy != PS_RECOVER_RESYNC && plan.ntables)
		abort();
	for (size_t i = 0; i < plan.ntables; i++) {
		if (!strchr(plan.tables[i], '.'))
			abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(plan.tables[i], plan.tables[j]) == 0)
				abort();
	}
	ps_recover_plan_free(&plan);
}

static void compare(const char *body, size_t len, ps_api_result *r)
{
	ps_compare_req q;

	if (!ps__api_compare_body(body, len, &q, r)) {
		check_refused(r);
		return;
	}
	check_ok(r);
	if (q.sample_percent < 1 || q.sample_percent > 100 || q.chunk_rows < 100 ||
	    q.max_report < 0 || q.max_report > 100000 || (q.ntables && !q.tables))
		abort();
	for (size_t i = 0; i < q.ntables; i++)
		if (!q.tables[i])
			abort();
	ps__api_compare_req_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ps_api_result r = {0, NULL};
	const char *body;
	char *copy;
	size_t len;
	int mode;

	if (size < 1)
		return 0;
	/* an exact-size copy: ASan sees a read past the body */
	len = size - 1;
	copy = malloc(len ? len : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, len);
	body = copy;
	switch (data[0] % 6) {
	case 0:
		create(body, len, &r);
		break;
	case 1:
		modify(STORED[(data[0] / 6) % 3], body, len, &r);
		break;
	case 2:
		if (ps_api_action_body_ok(body, len, &r))
			check_ok(&r);
		else
			check_refused(&r);
		break;
	case 3:
		if (ps__api_complete_body(body, len, &mode, &r))
			check_ok(&r);
		else
			check_refused(&r);
		break;
	case 4:
		recover(body, len, &r);
		break;
	default:
		compare(body, len, &r);
		break;
	}
	json_decref(r.body);
	free(copy);
	return 0;
}
