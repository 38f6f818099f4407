/*
 * recover.c — the recover action's request and its preparation of the next
 * run (see recover.h for the strategies and the design notes).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/errclass.h"
#include "core/plugin.h"
#include "server/recover.h"
#include "util/log.h"
#include "util/str.h"

#define TABLE_NAME_MAX 130   /* "schema.table", each part at most 63 bytes */

static const char *const STRATEGY_NAMES[] = {"retry", "skip", "resync"};

const char *ps_recover_strategy_name(int strategy)
{
	return strategy >= PS_RECOVER_RETRY && strategy <= PS_RECOVER_RESYNC
	       ? STRATEGY_NAMES[strategy] : "unknown";
}

void ps_recover_plan_free(ps_recover_plan *plan)
{
	for (size_t i = 0; i < plan->ntables; i++)
		free(plan->tables[i]);
	free(plan->tables);
	plan->tables = NULL;
	plan->ntables = 0;
}

/* ==== the request ========================================================== */

static bool printable_word(const char *s)
{
	for (; *s; s++)
		if (!isgraph((unsigned char)*s))
			return false;
	return true;
}

/* The value of "position" (skip), or a reason it is refused. */
static const char *parse_position(json_t *v, ps_recover_plan *plan)
{
	const char *s = json_string_value(v);

	if (!s)
		return "expected a string: a position of the source's log (e.g. \"0/16B3F10\") or "
		       "\"latest\"";
	if (strcmp(s, "latest") == 0)
		return NULL;   /* plan->position stays "" */
	if (!s[0] || strlen(s) >= sizeof(plan->position) || !printable_word(s))
		return "expected a position of the source's log (e.g. \"0/16B3F10\") or \"latest\"";
	snprintf(plan->position, sizeof(plan->position), "%s", s);
	return NULL;
}

/* The value of "tables" (resync): distinct "schema.table" names. */
static const char *parse_tables(json_t *v, ps_recover_plan *plan)
{
	size_t i, n = json_array_size(v);
	json_t *t;

	if (!json_is_array(v) || n == 0)
		return "expected a non-empty array of \"schema.table\" names (leave it out to load "
		       "every table again)";
	plan->tables = calloc(n, sizeof(char *));
	if (!plan->tables)
		return "out of memory";
	json_array_foreach(v, i, t) {
		const char *s = json_string_value(t);
		const char *dot = s ? strchr(s, '.') : NULL;

		if (!s || !dot || dot == s || !dot[1] || strlen(s) >= TABLE_NAME_MAX ||
		    strpbrk(s, "*?[") || !printable_word(s))
			return "expected \"schema.table\" names (not patterns)";
		for (size_t j = 0; j < plan->ntables; j++)
			if (strcmp(plan->tables[j], s) == 0)
				return "a table is named twice";
		plan->tables[plan->ntables] = strdup(s);
		if (!plan->tables[plan->ntables])
			return "out of memory";
		plan->ntables++;
	}
	return NULL;
}

bool ps_recover_parse(const char *body, size_t len, ps_recover_plan *plan, ps_api_result *r)
{
	json_t *doc = NULL, *v;
	const char *key, *bad = NULL, *why = NULL, *name;

	memset(plan, 0, sizeof(*plan));
	if (len == 0) {
		ps_api_bad_field(r, "strategy", "required field is missing; use \"retry\", \"skip\" or "
		          "\"resync\"");
		return false;
	}
	doc = ps_api_body_object(body, len, "expected a JSON object", r);
	if (!doc)
		return false;
	v = json_object_get(doc, "strategy");
	name = json_string_value(v);
	plan->strategy = -1;
	for (int s = PS_RECOVER_RETRY; name && s <= PS_RECOVER_RESYNC; s++)
		if (strcmp(name, STRATEGY_NAMES[s]) == 0)
			plan->strategy = s;
	if (!v) {
		bad = "strategy";
		why = "required field is missing; use \"retry\", \"skip\" or \"resync\"";
	} else if (plan->strategy < 0) {
		bad = "strategy";
		why = "expected \"retry\", \"skip\" or \"resync\"";
	}
	json_object_foreach(doc, key, v) {
		if (bad)
			break;
		if (strcmp(key, "strategy") == 0) {
			continue;
		} else if (strcmp(key, "position") == 0) {
			why = plan->strategy != PS_RECOVER_SKIP ? "only strategy \"skip\" takes a position"
			                                        : parse_position(v, plan);
		} else if (strcmp(key, "tables") == 0) {
			why = plan->strategy != PS_RECOVER_RESYNC ? "only strategy \"resync\" takes tables"
			                                          : parse_tables(v, plan);
		} else if (strcmp(key, "reason") == 0) {
			if (!json_is_string(v))
				why = "expected a string";
		} else {
			why = "unknown field; known: strategy, position (skip), tables (resync), reason";
		}
		if (why)
			bad = key;
	}
	if (bad) {
		ps_api_bad_field(r, bad, why);
		ps_recover_plan_free(plan);
	}
	json_decref(doc);
	return bad == NULL;
}

/* ==== preparing the next run =============================================== */

typedef struct recover_ctx {
	const ps_spec *spec;
	const char *state_dir;
	const ps_recover_plan *plan;
	ps_recover_result *out;
	ps_src src;
	bool src_open;
	ps_snk snk;
	bool snk_open;
	ps_checkpoint ck;            /* the job's checkpoint, if found */
	bool found;
	ps_prepare_result res;
} recover_ctx;

static int open_sink(recover_ctx *c, ps_error *err)
{
	const ps_sink_ops *ops = ps_plugin_sink_for(c->spec->target.parsed.scheme_name, err);
	ps_sink_config cfg;
	char *password = NULL;
	int rc;

	if (!ops)
		return ps_error_add_context(err, "target.url");
	rc = ps_spec_sink_config(c->spec, &cfg, &password, err);
	if (rc == PS_OK)
		rc = ps_snk_open(&c->snk, ops, &cfg, err);
	ps_secret_free(password);
	c->snk_open = rc == PS_OK;
	return rc;
}

/* Connects to the source and prepares its slot in mode (ps_prepare_mode). */
static int open_source(recover_ctx *c, int mode, ps_error *err)
{
	const ps_source_ops *ops = ps_plugin_source_for(c->spec->source.parsed.scheme_name, err);
	ps_source_config cfg;
	char *password = NULL;
	int rc;

	if (!ops)
		return ps_error_add_context(err, "source.url");
	rc = ps_spec_source_config(c->spec, &cfg, &password, err);
	if (rc == PS_OK)
		rc = ps_src_open(&c->src, ops, &cfg, err);
	ps_secret_free(password);
	c->src_open = rc == PS_OK;
	if (rc == PS_OK)
		rc = ps_src_prepare(&c->src, mode, &c->res, err);
	if (rc == PS_OK && c->found && c->ck.source_server_id[0] &&
	    strcmp(c->ck.source_server_id, c->res.server_id) != 0)
		rc = ps_error_set(err, PS_ECHECKPOINT,
		                  "the source is a different server (system identifier %s) than the one "
		                  "the checkpoint was written for (%s); point source.url back, or stop "
		                  "the job and start it afresh", c->res.server_id,
		                  c->ck.source_server_id);
	c->out->slot_created = rc == PS_OK && c->res.created;
	return rc;
}

/* Whether preparing the source failed because its slot cannot deliver any
 * more (invalidated, or its WAL removed): skip then starts a new one. Asked
 * of the source's own answer, never of the error the job failed with, which
 * may have come from the target (42704 and 55000 are not only slot codes). */
static bool slot_unusable(const ps_error *err)
{
	int cls = ps_errclass_of(err);

	return cls == PS_ERRCLASS_SLOT_LOST || cls == PS_ERRCLASS_LOG_LOST;
}

/* --- skip ------------------------------------------------------------------ */

static int prepare_skip(recover_ctx *c, ps_error *err)
{
	const ps_recover_plan *plan = c->plan;
	char end[PS_POSITION_MAX], to[PS_POSITION_MAX];
	int rc;

	if (!c->found)
		return ps_error_set(err, PS_EINVAL, "job '%s' has no checkpoint, so there is nothing "
		                    "to skip from: recover with strategy \"retry\" (a fresh start)",
		                    c->spec->name);
	if (c->ck.cdc_state == PS_CDC_INITIAL || c->ck.cdc_state == PS_CDC_ILSTART)
		return ps_error_set(err, PS_EINVAL, "the initial load of job '%s' did not finish (CDC "
		                    "%s): skipping changes cannot complete it; recover with strategy "
		                    "\"resync\"", c->spec->name, ps_cdc_state_name(c->ck.cdc_state));
	/* A missing slot is created; an existing, healthy one is kept (it still
	 * holds every change); an invalidated one is replaced. */
	rc = open_source(c, PS_PREPARE_CREATE_OR_USE, err);
	if (rc != PS_OK && c->src_open && slot_unusable(err)) {
		ps_log_info("job %s: %s cannot deliver changes any more (%s); replacing it",
		            c->spec->name, c->res.log_reader[0] ? c->res.log_reader : "the log reader",
		            err->message);
		ps_src_close(&c->src);
		c->src_open = false;
		ps_error_clear(err);
		rc = open_source(c, PS_PREPARE_RECREATE, err);
	}
	if (rc == PS_OK)
		rc = ps_src_current_position(&c->src, end, sizeof(end), err);
	if (rc != PS_OK)
		return rc;
	if (!end[0])
		return ps_error_set(err, PS_EINVAL, "source %s cannot tell its log's end; give the "
		                    "position to skip to", c->src.ops->name);
	snprintf(to, sizeof(to), "%s", plan->position[0] ? plan->position : end);
	if (plan->position[0] && ps_src_compare(&c->src, to, c->ck.position) <= 0)
		return ps_error_set(err, PS_EINVAL, "position %s is not after the checkpoint's %s: "
		                    "nothing would be skipped", to, c->ck.position);
	if (plan->position[0] && ps_src_compare(&c->src, to, end) > 0)
		return ps_error_set(err, PS_EINVAL, "position %s is past the end of the source's log "
		                    "(%s)", to, end);
	if (ps_src_compare(&c->src, to, c->ck.position) < 0)
		snprintf(to, sizeof(to), "%s", c->ck.position);
	/* A slot created now holds nothing older than its own point. */
	if (c->res.created && ps_src_compare(&c->src, to, c->res.start_position) < 0)
		snprintf(to, sizeof(to), "%s", c->res.start_position);

	snprintf(c->out->from, sizeof(c->out->from), "%s", c->ck.position);
	snprintf(c->out->to, sizeof(c->out->to), "%s", to);
	snprintf(c->ck.position, sizeof(c->ck.position), "%s", to);
	if (c->ck.cdc_state == PS_CDC_ILEND || c->ck.cdc_state == PS_CDC_ILUPDATE) {
		/* the load's re-processing windows lie before the new position */
		ps_checkpoint_clear_tables(&c->ck);
		c->ck.cdc_state = PS_CDC_TFSTART;
	}
	if (!c->ck.source_server_id[0])
		snprintf(c->ck.source_server_id, sizeof(c->ck.source_server_id), "%s", c->res.server_id);
	return ps_checkpoint_commit(&c->ck, &c->snk, c->state_dir, err);
}

/* --- resync ---------------------------------------------------------------- */

static bool named(const ps_recover_plan *plan, const ps_table *t)
{
	char name[TABLE_NAME_MAX + 4];

	if (plan->ntables == 0)
		return true;
	snprintf(name, sizeof(name), "%s.%s", t->schema, t->name);
	for (size_t i = 0; i < plan->ntables; i++)
		if (strcmp(plan->tables[i], name) == 0)
			return true;
	return false;
}

/* Every named table must be one the job selects. */
static int check_named(recover_ctx *c, ps_table_def **defs, size_t n, ps_error *err)
{
	for (size_t i = 0; i < c->plan->ntables; i++) {
		const char *want = c->plan->tables[i];
		bool found = false;

		for (size_t j = 0; j < n && !found; j++) {
			char name[TABLE_NAME_MAX + 4];
			snprintf(name, sizeof(name), "%s.%s", defs[j]->table->schema, defs[j]->table->name);
			found = strcmp(name, want) == 0;
		}
		if (!found)
			return ps_error_set(err, PS_EINVAL, "tables: %s is not one of the %zu tables job "
			                    "'%s' selects on the source", want, n, c->spec->name);
	}
	return PS_OK;
}

/* One table of the checkpoint: a named one is emptied (created if
 * missing) in the target's open transaction and left with every unit to
 * copy; another counts as loaded at the new slot's point. */
static int plan_table(recover_ctx *c, ps_table_def *def, ps_ck_table *t, ps_error *err)
{
	ps_table_options opt = {
		.create = c->spec->target.create_tables,
		.truncate_before_load = true,
	};
	int rc;

	t->schema = strdup(def->table->schema);
	t->name = strdup(def->table->name);
	if (!t->schema || !t->name)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	t->estimated_rows = def->estimated_rows;
	if (!named(c->plan, def->table)) {
		t->units = calloc(1, sizeof(ps_ck_unit));
		if (!t->units)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		t->nunits = 1;
		t->units[0].done = true;
		snprintf(t->units[0].point, sizeof(t->units[0].point), "%s", c->res.start_position);
		t->finished = true;
		c->out->tables_kept++;
		return PS_OK;
	}
	rc = ps_snk_table_prepare(&c->snk, def, &opt, &t->created, err);
	if (rc == PS_OK && def->has_primary_key && def->estimated_rows > c->spec->snapshot_chunk_rows)
		rc = ps_src_split(&c->src, def, c->spec->snapshot_chunk_rows, &t->bounds, &t->nbounds, err);
	if (rc != PS_OK)
		return rc;
	t->nunits = t->nbounds + 1;
	t->units = calloc(t->nunits, sizeof(ps_ck_unit));
	if (!t->units)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	c->out->tables_loaded++;
	return PS_OK;
}

static int prepare_resync(recover_ctx *c, ps_error *err)
{
	ps_table_def **defs = NULL;
	size_t n = 0;
	int rc;

	if (c->spec->type == PS_JOB_CDC)
		return ps_error_set(err, PS_EINVAL, "job '%s' is of type cdc, which copies no "
		                    "snapshot: recover with strategy \"skip\" or \"retry\"", c->spec->name);
	if (c->found)
		snprintf(c->out->from, sizeof(c->out->from), "%s", c->ck.position);
	rc = open_source(c, PS_PREPARE_RECREATE, err);
	if (rc == PS_OK)
		rc = ps_src_describe(&c->src, &defs, &n, err);
	if (rc == PS_OK)
		rc = check_named(c, defs, n, err);
	if (rc != PS_OK)
		goto cleanup;

	/* A new checkpoint: an initial load in progress from the new slot's point. */
	ps_checkpoint_free(&c->ck);
	memset(&c->ck, 0, sizeof(c->ck));
	snprintf(c->ck.job, sizeof(c->ck.job), "%s", c->spec->name);
	ps_identity_from_spec(&c->ck.identity, c->spec);
	snprintf(c->ck.source_server_id, sizeof(c->ck.source_server_id), "%s", c->res.server_id);
	if (c->res.state && ps_checkpoint_set_text(&c->ck.source_state, c->res.state) != PS_OK) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	c->ck.cdc_state = PS_CDC_ILSTART;
	snprintf(c->ck.position, sizeof(c->ck.position), "%s", c->res.start_position);
	snprintf(c->out->to, sizeof(c->out->to), "%s", c->res.start_position);
	c->ck.tables = calloc(n ? n : 1, sizeof(ps_ck_table));
	if (!c->ck.tables) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < n && rc == PS_OK; i++) {
		c->ck.ntables = i + 1;
		rc = plan_table(c, defs[i], &c->ck.tables[i], err);
	}
	/* the emptied tables and the checkpoint commit together */
	if (rc == PS_OK)
		rc = ps_checkpoint_commit(&c->ck, &c->snk, c->state_dir, err);
cleanup:
	for (size_t i = 0; i < n; i++)
		ps_table_def_free(defs[i]);
	free(defs);
	return rc;
}

int ps_recover_prepare(const ps_spec *spec, const char *state_dir, const ps_recover_plan *plan,
                       ps_recover_result *out, ps_error *err)
{
	recover_ctx c;
	ps_identity id;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(out, 0, sizeof(*out));
	c.spec = spec;
	c.state_dir = state_dir;
	c.plan = plan;
	c.out = out;
	if (plan->strategy == PS_RECOVER_RETRY)
		return PS_OK;   /* nothing to prepare: the run resumes from the checkpoint */
	rc = ps_state_dir_ensure(state_dir, err);
	if (rc == PS_OK)
		rc = open_sink(&c, err);
	if (rc == PS_OK)
		rc = ps_checkpoint_fetch(&c.ck, &c.found, &c.snk, state_dir, spec->name, err);
	if (rc == PS_OK && c.found) {
		ps_identity_from_spec(&id, spec);
		rc = ps_checkpoint_match(&c.ck, &id, err);
	}
	if (rc == PS_OK)
		rc = plan->strategy == PS_RECOVER_SKIP ? prepare_skip(&c, err) : prepare_resync(&c, err);
	if (rc == PS_OK)
		ps_log_info("job %s: recover %s prepared: continuing at %s%s%s", spec->name,
		            ps_recover_strategy_name(plan->strategy), out->to,
		            out->slot_created ? " from a new " : "",
		            out->slot_created ? c.res.log_reader : "");
	else
		ps_error_add_context(err, "recover %s", ps_recover_strategy_name(plan->strategy));
	if (c.snk_open)
		ps_snk_close(&c.snk);
	if (c.src_open)
		ps_src_close(&c.src);
	ps_checkpoint_free(&c.ck);
	ps_prepare_result_clear(&c.res);
	return rc;
}
