/*
 * fuzz_checkpoint.c — libFuzzer entry point for the checkpoint reader
 * (ps_checkpoint_from_text, src/core/checkpoint.c): the text of a
 * checkpoint as it comes from <state-dir>/jobs/<job>/checkpoint.json or from
 * the checkpoint row of a PostgreSQL or SQLite target, then what a run does
 * with it before it touches a server: the identity check, the CDC marker's
 * transitions, whether only the tables changed (core/backfill.c), and
 * writing it back.
 *
 * Input: the checkpoint's text (cut at the first NUL, as a file read into a
 * C string is).
 *
 * What must hold, besides no crash, sanitizer report or leak:
 *   - a refused checkpoint is PS_ECHECKPOINT (or PS_ENOMEM) with a one-line
 *     message naming where it came from, and nothing to free;
 *   - an accepted one has its CDC marker in range, and for each table of the
 *     initial load one unit more than key bounds, or one unit per partition;
 *   - written back (ps_checkpoint_to_text) and read again, it is the same
 *     checkpoint, field by field (updated_at aside: writing stamps it; and a
 *     range without its end is not written, as the pipeline never makes one);
 *     the spec object is kept as it came, with what core/backfill.c keeps
 *     in it (issue 15: "tables_in_force", and "backfill", the unfinished
 *     backfills with their last key), which the next run reads.
 *
 * Seeds: tests/fuzz/corpus/checkpoint/ (make_corpus_text.py: checkpoints
 * of real runs against PostgreSQL 15 — JSON lines and SQLite targets, a
 * load cut short mid-table, a bounded run, the tables in force, and a
 * backfill under way derived from them — and the unit tests').
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backfill.h"
#include "core/checkpoint.h"
#include "util/log.h"

#define ORIGIN "of job 'fuzz' in the target"

/* No newline nor any other control byte (errors are one line). */
static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static const char *opt(const char *s)
{
	return s ? s : "";
}

static void same(const ps_checkpoint *a, const ps_checkpoint *b)
{
	if (strcmp(a->job, b->job) || strcmp(a->identity.source, b->identity.source) ||
	    strcmp(a->identity.target, b->identity.target) ||
	    strcmp(a->identity.tables, b->identity.tables) ||
	    strcmp(a->identity.fingerprint, b->identity.fingerprint) ||
	    strcmp(a->source_server_id, b->source_server_id) || a->cdc_state != b->cdc_state ||
	    strcmp(a->position, b->position) || strcmp(opt(a->source_state), opt(b->source_state)) ||
	    strcmp(opt(a->target_state), opt(b->target_state)) ||
	    strcmp(opt(a->spec_json), opt(b->spec_json)) ||
	    strcmp(a->range_to, b->range_to) ||
	    (a->range_to[0] && strcmp(a->range_from, b->range_from)) ||
	    a->ntables != b->ntables) {
		ps_log_error("checkpoint changed when written back: job '%s'/'%s' position '%s'/'%s'",
		             a->job, b->job, a->position, b->position);
		abort();
	}
	for (size_t i = 0; i < a->ntables; i++) {
		const ps_ck_table *x = &a->tables[i], *y = &b->tables[i];

		if (strcmp(x->schema, y->schema) || strcmp(x->name, y->name) ||
		    x->created != y->created || x->finished != y->finished ||
		    x->estimated_rows != y->estimated_rows || x->nbounds != y->nbounds ||
		    x->nunits != y->nunits || !x->parts != !y->parts)
			abort();
		for (size_t j = 0; x->parts && j < x->nunits; j++)
			if (strcmp(x->parts[j], y->parts[j]))
				abort();
		for (size_t j = 0; j < x->nbounds; j++) {
			if (x->bounds[j].nvalues != y->bounds[j].nvalues)
				abort();
			for (int k = 0; k < x->bounds[j].nvalues; k++)
				if (strcmp(x->bounds[j].values[k], y->bounds[j].values[k]))
					abort();
		}
		/* a unit not done is written as {}: its point and rows mean nothing */
		for (size_t j = 0; j < x->nunits; j++)
			if (x->units[j].done != y->units[j].done ||
			    (x->units[j].done && (strcmp(x->units[j].point, y->units[j].point) ||
			                          x->units[j].rows != y->units[j].rows)))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ps_checkpoint ck, back;
	ps_identity id;
	ps_error err;
	char *text, *written;
	int rc;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	ps_error_clear(&err);
	rc = ps_checkpoint_from_text(&ck, text, ORIGIN, &err);
	free(text);
	if (rc != PS_OK) {
		if ((rc != PS_ECHECKPOINT && rc != PS_ENOMEM) || err.code != rc ||
		    !strstr(err.message, ORIGIN) || !one_line(err.message) ||
		    ck.tables || ck.spec_json || ck.source_state || ck.target_state)
			abort();
		return 0;
	}
	if (ck.cdc_state < PS_CDC_INITIAL || ck.cdc_state > PS_CDC_ERROR)
		abort();
	for (size_t i = 0; i < ck.ntables; i++) {
		const ps_ck_table *t = &ck.tables[i];

		/* key ranges: one unit more than bounds; partitions: a unit each */
		if (!t->schema || !t->name ||
		    (t->parts ? t->nbounds != 0 || t->nunits == 0 : t->nunits != t->nbounds + 1))
			abort();
		for (size_t j = 0; t->parts && j < t->nunits; j++)
			if (!t->parts[j])
				abort();
	}
	for (int to = PS_CDC_INITIAL; to <= PS_CDC_ERROR; to++)
		(void)ps_cdc_transition(ck.cdc_state, to);

	/* an identity that is the checkpoint's own, and one that differs */
	id = ck.identity;
	if (ps_checkpoint_match(&ck, &id, &err) != PS_OK)
		abort();
	(void)ps_backfill_tables_only(&ck, &id);
	snprintf(id.tables, sizeof(id.tables), "include=public.other;exclude=");
	snprintf(id.fingerprint, sizeof(id.fingerprint), "%s",
	         strcmp(ck.identity.fingerprint, "0000000000000000") ? "0000000000000000"
	                                                             : "1111111111111111");
	if (ps_checkpoint_match(&ck, &id, &err) != PS_ECHECKPOINT || strchr(err.message, '\n'))
		abort();
	(void)ps_backfill_tables_only(&ck, &id);

	written = ps_checkpoint_to_text(&ck);
	if (!written)
		abort();
	ps_error_clear(&err);
	if (ps_checkpoint_from_text(&back, written, "written back", &err) != PS_OK) {
		ps_log_error("a checkpoint written back does not read: %s: %s", err.message, written);
		abort();
	}
	same(&ck, &back);
	free(written);
	ps_checkpoint_free(&back);
	ps_checkpoint_free(&ck);
	return 0;
}
