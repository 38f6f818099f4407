/*
 * precheck.c — runs a job's prechecks (see precheck.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. Order: source first, then target. The source's check lists the tables
 *     the job would select; the target's check needs them (is each table
 *     absent or empty, does the target have their types). When the source
 *     could not list them, the target's table items are skipped, not
 *     guessed.
 *  2. Failures are items, not errors. ps_precheck_run returns an error only
 *     when the checks could not run at all (no plugin for a URL, out of
 *     memory). An unreachable server, a password variable that is not set,
 *     a missing privilege: each is a failed item with a fix.
 *  3. checks.skip is applied after the checks ran, by rewriting the result
 *     of the listed items to skipped. The check still runs, so its message
 *     can tell the user what it found: skipping is a decision taken with
 *     the facts in view, not a way to hide them.
 *  4. The core knows check ids only as lists the plugins declare
 *     (check_ids in their ops), like an error-code table: the spec parser
 *     refuses a typo, and when a password cannot be resolved the core
 *     reports the plugin's items as skipped from its list. It never
 *     switches on a plugin name.
 */
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "core/precheck.h"
#include "util/str.h"

const char *ps_check_known_id(size_t i)
{
	const char *ids[PS_CHECK_IDS_MAX];
	size_t n = ps_plugin_check_ids(ids, PS_CHECK_IDS_MAX);

	return i < n ? ids[i] : NULL;
}

bool ps_check_id_known(const char *id)
{
	const char *ids[PS_CHECK_IDS_MAX];
	size_t n = ps_plugin_check_ids(ids, PS_CHECK_IDS_MAX);

	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

bool ps_check_id_skippable(const char *id)
{
	return ps_check_id_known(id) && strcmp(id, "source.connect") != 0 &&
	       strcmp(id, "target.connect") != 0;
}

/* The endpoint's password could not be resolved (variable unset, file
 * unreadable): its connect item fails with that message, and every other
 * item of the endpoint's plugin is skipped (design note 4). */
static int endpoint_unresolved(ps_check_report *r, const char *prefix,
                               const char *const *plugin_ids, const ps_error *perr)
{
	char connect_id[PS_CHECK_ID_MAX];
	char fix[160];
	size_t plen = strlen(prefix);
	int rc;

	snprintf(connect_id, sizeof(connect_id), "%sconnect", prefix);
	snprintf(fix, sizeof(fix), "set the variable named by %.*spassword_env, or make "
	         "%.*spassword_file readable", (int)plen, prefix, (int)plen, prefix);
	rc = ps_check_add(r, connect_id, PS_CHECK_ERROR, PS_CHECK_FAILED, fix, "%s",
	                  perr->message);
	for (size_t i = 0; rc == PS_OK && plugin_ids && plugin_ids[i]; i++) {
		const char *id = plugin_ids[i];

		if (strncmp(id, prefix, plen) != 0 || strcmp(id, connect_id) == 0)
			continue;
		rc = ps_check_add(r, id, PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		                  "not checked: %sconnect failed", prefix);
	}
	return rc;
}

static bool listed_in_skip(const ps_spec *spec, const char *id)
{
	for (size_t i = 0; i < spec->ncheck_skip; i++)
		if (strcmp(spec->check_skip[i], id) == 0)
			return true;
	return false;
}

/* Design note 3. */
static int apply_skip(const ps_spec *spec, ps_check_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		ps_check_item *it = &r->items[i];
		const char *found;
		char *msg;
		size_t len;

		if (!listed_in_skip(spec, it->id) || it->result == PS_CHECK_SKIPPED)
			continue;
		found = it->result == PS_CHECK_FAILED ? "would have failed" : "passed";
		len = strlen(it->message) + 64;
		msg = malloc(len);
		if (!msg)
			return PS_ENOMEM;
		snprintf(msg, len, "skipped by checks.skip (%s: %s)", found, it->message);
		free(it->message);
		it->message = msg;
		it->result = PS_CHECK_SKIPPED;
	}
	return PS_OK;
}

static bool job_loads(const ps_spec *spec)
{
	return spec->type != PS_JOB_CDC;
}

int ps_precheck_run(const ps_spec *spec, ps_check_report *out, ps_error *err)
{
	const ps_source_ops *src_ops = NULL;
	const ps_sink_ops *snk_ops = NULL;
	ps_source_config scfg;
	ps_sink_config kcfg;
	ps_table_options opt;
	ps_check_tables tables;
	ps_error perr;
	char *src_password = NULL, *snk_password = NULL;
	int rc;

	memset(&tables, 0, sizeof(tables));
	src_ops = ps_plugin_source_for(spec->source.parsed.scheme_name, err);
	if (!src_ops) {
		rc = ps_error_add_context(err, "source.url");
		goto cleanup;
	}
	snk_ops = ps_plugin_sink_for(spec->target.parsed.scheme_name, err);
	if (!snk_ops) {
		rc = ps_error_add_context(err, "target.url");
		goto cleanup;
	}

	ps_error_clear(&perr);
	if (ps_spec_source_config(spec, &scfg, &src_password, &perr) != PS_OK) {
		if (perr.code == PS_ENOMEM) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
		rc = endpoint_unresolved(out, "source.", src_ops->check_ids, &perr);
	} else {
		scfg.want_snapshot = job_loads(spec);
		rc = ps_src_precheck(src_ops, &scfg, out, &tables, err);
	}
	if (rc != PS_OK) {
		if (rc == PS_ENOMEM && err->code != PS_ENOMEM)
			ps_error_set(err, PS_ENOMEM, "prechecks: out of memory");
		goto cleanup;
	}

	ps_error_clear(&perr);
	if (ps_spec_sink_config(spec, &kcfg, &snk_password, &perr) != PS_OK) {
		if (perr.code == PS_ENOMEM) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
		rc = endpoint_unresolved(out, "target.", snk_ops->check_ids, &perr);
	} else {
		opt.create = spec->target.create_tables;
		opt.truncate_before_load = spec->target.truncate_before_load;
		rc = ps_snk_precheck(snk_ops, &kcfg, &opt, job_loads(spec),
		                     tables.listed ? &tables : NULL, out, err);
	}
	if (rc == PS_OK)
		rc = apply_skip(spec, out);
	if (rc == PS_ENOMEM && err->code != PS_ENOMEM)
		ps_error_set(err, PS_ENOMEM, "prechecks: out of memory");

cleanup:
	ps_secret_free(src_password);
	ps_secret_free(snk_password);
	ps_check_tables_free(&tables);
	return rc;
}

/* --- JSON ----------------------------------------------------------------- */

/* A JSON string of s; a server message in another encoding can hold bytes
 * that are not UTF-8, which jansson refuses: those become '?'. */
static json_t *text_json(const char *s)
{
	json_t *v = json_string(s);
	char *copy;

	if (v)
		return v;
	copy = strdup(s);
	if (!copy)
		return NULL;
	ps_utf8_sanitize(copy);
	v = json_string(copy);
	free(copy);
	return v;
}

static json_t *item_json(const ps_check_item *it)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o}",
	                 "id", it->id,
	                 "level", ps_check_level_name(it->level),
	                 "result", ps_check_result_name(it->result),
	                 "message", text_json(it->message ? it->message : ""),
	                 "fix", it->fix ? text_json(it->fix) : json_null());
}

json_t *ps_check_report_json(const ps_check_report *r)
{
	json_t *root = NULL, *items = json_array();

	if (!items)
		return NULL;
	for (size_t i = 0; i < r->n; i++) {
		json_t *it = item_json(&r->items[i]);

		if (!it || json_array_append_new(items, it) != 0) {
			json_decref(items);
			return NULL;
		}
	}
	root = json_pack("{s:b, s:o}", "passed", ps_check_report_passed(r), "items", items);
	return root;
}
