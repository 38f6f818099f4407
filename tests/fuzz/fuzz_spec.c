/*
 * fuzz_spec.c — libFuzzer entry point for the job spec parser
 * (src/core/spec.c) with the real plugin registry: the engines' URL syntaxes
 * and the option declarations of every source and sink (their defaults and
 * check functions included), as `penstock run SPEC`, `penstock check` and
 * POST /v1/jobs read a spec.
 *
 * Input: the spec document's bytes, as they would be in the file.
 *
 * What must hold, besides no crash, sanitizer report or leak:
 *   - a refused spec is PS_EINVAL (or PS_ENOMEM) with no spec, and a
 *     one-line message starting with the document's name (spec.h);
 *   - an accepted spec yields its identity (what the checkpoint's
 *     fingerprint is made of) and its canonical JSON (what a checkpoint
 *     keeps), and the canonical JSON, parsed as a spec, is accepted and
 *     gives the same canonical JSON again (when the URLs' redacted forms
 *     were not cut at their bound).
 *
 * Seeds: tests/fuzz/corpus/spec/ (make_corpus_text.py: the specs of the
 * docs, the unit tests and the integration tests' shapes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/spec.h"
#include "core/spec_json.h"
#include "util/log.h"

#define ORIGIN "spec.json"

/* No newline nor any other control byte (errors are one line). */
static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool redacted_cut(const ps_url *u)
{
	return strlen(u->redacted) + 1 >= sizeof(u->redacted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ps_spec *spec = NULL, *again = NULL;
	ps_identity id;
	ps_error err;
	char *text = NULL, *text2 = NULL;
	int rc;

	ps_error_clear(&err);
	rc = ps_spec_parse(&spec, (const char *)data, size, ORIGIN, &err);
	if (rc != PS_OK) {
		if ((rc != PS_EINVAL && rc != PS_ENOMEM) || spec || err.code != rc ||
		    strncmp(err.message, ORIGIN, strlen(ORIGIN)) != 0 || !one_line(err.message))
			abort();
		return 0;
	}
	if (!spec || !spec->name || spec->ninclude == 0 || !spec->source.options ||
	    !spec->target.options)
		abort();
	ps_identity_from_spec(&id, spec);
	if (strlen(id.fingerprint) != 16)
		abort();
	(void)ps_job_type_name(spec->type);
	(void)ps_resume_policy_name(spec->resume);
	text = ps_spec_to_json(spec);
	if (!text)
		abort();
	if (redacted_cut(&spec->source.parsed) || redacted_cut(&spec->target.parsed))
		goto cleanup;
	ps_error_clear(&err);
	if (ps_spec_parse(&again, text, strlen(text), "canonical", &err) != PS_OK) {
		ps_log_error("canonical spec %s refused: %s", text, err.message);
		abort();
	}
	text2 = ps_spec_to_json(again);
	if (!text2 || strcmp(text, text2) != 0) {
		ps_log_error("canonical spec %s became %s", text, text2 ? text2 : "(null)");
		abort();
	}
cleanup:
	free(text);
	free(text2);
	ps_spec_free(spec);
	ps_spec_free(again);
	return 0;
}
