/*
 * report.c — the compare report as JSON and as text, and freeing it.
 *
 * JSON (stable field names; the control plane stores it as it is):
 *   {"mode": "full", "equal": false, "consistent": false, "repair": false,
 *    "job": null, "seconds": 1.23, "source": "...", "target": "...",
 *    "tables": [{"table": "public.t", "target_table": "public.t",
 *      "key": ["id"], "key_source": "primary key",   (key null: no usable key)
 *      "source_rows": 10, "target_rows": 10, "chunks": 1, "chunks_checked": 1,
 *      "chunks_different": 1, "missing_in_target": 1, "extra_in_target": 0,
 *      "different": 1, "equal": false, "settled": 0,
 *      "differences": [{"kind": "different", "key": {"id": "7"},
 *                       "columns": ["v"]}, ...],      (at most --max-report)
 *      "differences_truncated": false,
 *      "multiset": {"equal": true},                 (tables without a key)
 *      "note": "...",
 *      "repair": {"rows_written": 2, "rows_deleted": 1, "remaining": 0}}]}
 */
#include <stdlib.h>
#include <string.h>

#include "compare/compare.h"

static const char *const NO_KEY_NOTE =
	"no primary key or unique not-null key: compared by count and a full-row multiset "
	"hash; keys of differing rows cannot be named";

const char *ps_compare_mode_name(int mode)
{
	switch (mode) {
	case PS_COMPARE_COUNT: return "count";
	case PS_COMPARE_FULL: return "full";
	case PS_COMPARE_SAMPLE: return "sample";
	default: return "?";
	}
}

int ps_compare_mode_parse(const char *s, int *mode)
{
	for (int m = PS_COMPARE_COUNT; m <= PS_COMPARE_SAMPLE; m++)
		if (strcmp(s, ps_compare_mode_name(m)) == 0) {
			*mode = m;
			return PS_OK;
		}
	return PS_EINVAL;
}

const char *ps_compare_diff_kind_name(int kind)
{
	switch (kind) {
	case PS_DIFF_MISSING_IN_TARGET: return "missing_in_target";
	case PS_DIFF_EXTRA_IN_TARGET: return "extra_in_target";
	case PS_DIFF_DIFFERENT: return "different";
	default: return "?";
	}
}

static int64_t listed_total(const ps_compare_table *t)
{
	return t->missing + t->extra + t->different;
}

static json_t *table_json(const ps_compare_report *rep, const ps_compare_table *t)
{
	json_t *o = json_object(), *diffs = json_array(), *key = NULL;
	char full[1024];

	if (!o || !diffs) {
		json_decref(o);
		json_decref(diffs);
		return NULL;
	}
	snprintf(full, sizeof(full), "%s.%s", t->schema, t->name);
	json_object_set_new(o, "table", json_string(full));
	json_object_set_new(o, "target_table", json_string(t->target));
	if (t->nkey > 0) {
		key = json_array();
		for (int k = 0; key && k < t->nkey; k++)
			json_array_append_new(key, json_string(t->key_names[k]));
		json_object_set_new(o, "key", key ? key : json_null());
		json_object_set_new(o, "key_source", t->key_source ? json_string(t->key_source)
		                                                   : json_null());
	} else {
		json_object_set_new(o, "key", json_null());
	}
	json_object_set_new(o, "source_rows", t->source_rows >= 0 ? json_integer(t->source_rows)
	                                                          : json_null());
	json_object_set_new(o, "target_rows", t->target_rows >= 0 ? json_integer(t->target_rows)
	                                                          : json_null());
	json_object_set_new(o, "chunks", json_integer(t->chunks));
	json_object_set_new(o, "chunks_checked", json_integer(t->chunks_checked));
	json_object_set_new(o, "chunks_different", json_integer(t->chunks_different));
	json_object_set_new(o, "missing_in_target", json_integer(t->missing));
	json_object_set_new(o, "extra_in_target", json_integer(t->extra));
	json_object_set_new(o, "different", json_integer(t->different));
	json_object_set_new(o, "equal", json_boolean(t->equal));
	json_object_set_new(o, "settled", json_integer(t->settled));
	for (size_t i = 0; i < t->ndiffs; i++) {
		const ps_compare_diff *d = &t->diffs[i];
		json_t *dj = json_object(), *kj = json_object(), *cj = json_array();

		if (!dj || !kj || !cj) {
			json_decref(dj);
			json_decref(kj);
			json_decref(cj);
			continue;
		}
		json_object_set_new(dj, "kind", json_string(ps_compare_diff_kind_name(d->kind)));
		for (int k = 0; k < t->nkey; k++)
			json_object_set_new(kj, t->key_names[k], json_string(d->key[k]));
		json_object_set_new(dj, "key", kj);
		for (int c = 0; c < d->ncolumns; c++)
			json_array_append_new(cj, json_string(t->column_names[d->columns[c]]));
		if (d->kind == PS_DIFF_DIFFERENT)
			json_object_set_new(dj, "columns", cj);
		else
			json_decref(cj);
		json_array_append_new(diffs, dj);
	}
	json_object_set_new(o, "differences", diffs);
	json_object_set_new(o, "differences_truncated",
	                    json_boolean(listed_total(t) > (int64_t)t->ndiffs));
	if (t->multiset_checked) {
		json_t *m = json_object();
		json_object_set_new(m, "equal", json_boolean(t->multiset_equal));
		json_object_set_new(o, "multiset", m);
	}
	if (t->nkey == 0)
		json_object_set_new(o, "note", json_string(NO_KEY_NOTE));
	if (rep->repair) {
		json_t *r = json_object();
		json_object_set_new(r, "rows_written", json_integer(t->repair_written));
		json_object_set_new(r, "rows_deleted", json_integer(t->repair_deleted));
		json_object_set_new(r, "remaining", t->nkey > 0 ? json_integer(t->repair_remaining)
		                                                 : json_null());
		if (t->nkey == 0 && !t->equal)
			json_object_set_new(r, "note", json_string("not repaired: rows without a key "
			                                           "cannot be named"));
		json_object_set_new(o, "repair", r);
	}
	return o;
}

json_t *ps_compare_report_json(const ps_compare_report *rep)
{
	json_t *o = json_object(), *tables = json_array();

	if (!o || !tables) {
		json_decref(o);
		json_decref(tables);
		return NULL;
	}
	json_object_set_new(o, "mode", json_string(ps_compare_mode_name(rep->mode)));
	json_object_set_new(o, "equal", json_boolean(rep->equal));
	json_object_set_new(o, "consistent", json_boolean(rep->consistent));
	json_object_set_new(o, "repair", json_boolean(rep->repair));
	json_object_set_new(o, "job", rep->job[0] ? json_string(rep->job) : json_null());
	json_object_set_new(o, "seconds", json_real(rep->seconds));
	json_object_set_new(o, "source", json_string(rep->source));
	json_object_set_new(o, "target", json_string(rep->target));
	for (size_t i = 0; i < rep->ntables; i++) {
		json_t *t = table_json(rep, &rep->tables[i]);
		if (t)
			json_array_append_new(tables, t);
	}
	json_object_set_new(o, "tables", tables);
	return o;
}

static void print_rows(FILE *f, const char *label, int64_t n)
{
	if (n >= 0)
		fprintf(f, "%s %lld", label, (long long)n);
	else
		fprintf(f, "%s ?", label);
}

void ps_compare_report_print(const ps_compare_report *rep, FILE *f)
{
	for (size_t i = 0; i < rep->ntables; i++) {
		const ps_compare_table *t = &rep->tables[i];

		fprintf(f, "%s.%s: %s (", t->schema, t->name, t->equal ? "equal" : "DIFFERENT");
		print_rows(f, "source rows", t->source_rows);
		print_rows(f, ", target rows", t->target_rows);
		fprintf(f, ", %lld of %lld chunks checked", (long long)t->chunks_checked,
		        (long long)t->chunks);
		if (t->chunks_different)
			fprintf(f, ", %lld differing", (long long)t->chunks_different);
		fputs(")\n", f);
		if (t->nkey == 0)
			fprintf(f, "  note: %s\n", NO_KEY_NOTE);
		if (t->multiset_checked && !t->multiset_equal)
			fputs("  the rows differ as a multiset\n", f);
		if (listed_total(t) > 0)
			fprintf(f, "  missing_in_target %lld, extra_in_target %lld, different %lld\n",
			        (long long)t->missing, (long long)t->extra, (long long)t->different);
		for (size_t d = 0; d < t->ndiffs; d++) {
			const ps_compare_diff *df = &t->diffs[d];

			fprintf(f, "  %-17s ", ps_compare_diff_kind_name(df->kind));
			for (int k = 0; k < t->nkey; k++)
				fprintf(f, "%s%s=%s", k ? ", " : "", t->key_names[k], df->key[k]);
			for (int c = 0; c < df->ncolumns; c++)
				fprintf(f, "%s%s", c ? ", " : "  columns: ", t->column_names[df->columns[c]]);
			fputc('\n', f);
		}
		if (listed_total(t) > (int64_t)t->ndiffs)
			fprintf(f, "  ... %lld more not listed (--max-report)\n",
			        (long long)(listed_total(t) - (int64_t)t->ndiffs));
		if (t->settled)
			fprintf(f, "  %lld difference(s) went away once the job's target caught up\n",
			        (long long)t->settled);
		if (rep->repair && t->repaired)
			fprintf(f, "  repair: %lld row(s) written, %lld deleted; %lld still differ\n",
			        (long long)t->repair_written, (long long)t->repair_deleted,
			        (long long)t->repair_remaining);
		else if (rep->repair && !t->equal && t->nkey == 0)
			fputs("  repair: not possible without a key\n", f);
	}
	fprintf(f, "%s compare of %zu table(s) in %.2f s: %s\n", ps_compare_mode_name(rep->mode),
	        rep->ntables, rep->seconds,
	        rep->equal ? "equal"
	        : rep->consistent ? "differences found and repaired"
	                          : "DIFFERENT");
}

void ps_compare_report_free(ps_compare_report *rep)
{
	for (size_t i = 0; rep->tables && i < rep->ntables + 1; i++) {
		ps_compare_table *t = &rep->tables[i];

		for (size_t d = 0; t->diffs && d < t->ndiffs; d++) {
			for (int k = 0; t->diffs[d].key && k < t->nkey; k++)
				free(t->diffs[d].key[k]);
			free(t->diffs[d].key);
			free(t->diffs[d].columns);
		}
		free(t->diffs);
		for (int c = 0; t->column_names && c < t->ncolumns; c++)
			free(t->column_names[c]);
		free(t->column_names);
		for (int k = 0; t->key_names && k < t->nkey; k++)
			free(t->key_names[k]);
		free(t->key_names);
		free(t->key_source);
		free(t->schema);
		free(t->name);
		free(t->target);
	}
	free(rep->tables);
	memset(rep, 0, sizeof(*rep));
}
