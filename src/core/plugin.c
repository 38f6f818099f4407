/*
 * plugin.c — registry and call wrappers for source and sink plugins.
 *
 * The registry is three static tables: the URL syntaxes each engine
 * declares, the sources and the sinks. Adding an engine means its lines
 * here and its `const ps_*_ops` definitions in its own files; nothing else
 * in the core knows engine or plugin names.
 *
 * Tests may put other tables in place (ps__plugin_set_tables_for_tests):
 * the pipeline then runs against in-memory plugins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/plugin.h"
#include "util/buf.h"

extern const ps_source_ops ps_source_pg;
extern const ps_source_ops ps_source_mysql;
extern const ps_sink_ops ps_sink_jsonl;
extern const ps_sink_ops ps_sink_mysql;
extern const ps_sink_ops ps_sink_kafka;
extern const ps_sink_ops ps_sink_pg;
extern const ps_sink_ops ps_sink_sqlite;

extern const ps_url_syntax ps_pg_url_syntax[];      /* util/pgconn.c */
extern const ps_url_syntax ps_mysql_url_syntax[];   /* util/myconn.c */
extern const ps_url_syntax ps_sqlite_url_syntax[];  /* sink/sqlite/sqlite.c */
extern const ps_url_syntax ps_jsonl_url_syntax[];   /* sink/jsonl/jsonl.c */
extern const ps_url_syntax ps_kafka_url_syntax[];   /* sink/kafka/kafka_url.c */

static const ps_url_syntax *const builtin_syntaxes[] = {
	ps_pg_url_syntax, ps_mysql_url_syntax, ps_sqlite_url_syntax, ps_jsonl_url_syntax,
	ps_kafka_url_syntax, NULL
};
static const ps_source_ops *const builtin_sources[] = {&ps_source_pg, &ps_source_mysql, NULL};
static const ps_sink_ops *const builtin_sinks[] = {
	&ps_sink_jsonl, &ps_sink_pg, &ps_sink_sqlite, &ps_sink_mysql, &ps_sink_kafka, NULL
};

static const ps_url_syntax *const *syntax_table = builtin_syntaxes;
static const ps_source_ops *const *source_table = builtin_sources;
static const ps_sink_ops *const *sink_table = builtin_sinks;

void ps__plugin_set_tables_for_tests(const ps_url_syntax *const *syntaxes,
                                     const ps_source_ops *const *sources,
                                     const ps_sink_ops *const *sinks)
{
	syntax_table = syntaxes ? syntaxes : builtin_syntaxes;
	source_table = sources ? sources : builtin_sources;
	sink_table = sinks ? sinks : builtin_sinks;
}

/* --- URL syntaxes --------------------------------------------------------- */

const ps_url_syntax *ps_url_syntax_find(const char *scheme, size_t n)
{
	for (int i = 0; syntax_table[i]; i++)
		for (const ps_url_syntax *s = syntax_table[i]; s->scheme; s++)
			if (strlen(s->scheme) == n && strncasecmp(s->scheme, scheme, n) == 0)
				return s;
	return NULL;
}

void ps_url_schemes_list(char *buf, size_t len)
{
	size_t used = 0, count = 0, total = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (int i = 0; syntax_table[i]; i++)
		for (const ps_url_syntax *s = syntax_table[i]; s->scheme; s++)
			total += strcmp(s->scheme, s->canonical) == 0;
	for (int i = 0; syntax_table[i]; i++)
		for (const ps_url_syntax *s = syntax_table[i]; s->scheme && used < len; s++) {
			if (strcmp(s->scheme, s->canonical) != 0)
				continue;   /* an alias */
			count++;
			used += (size_t)snprintf(buf + used, len - used, "%s%s%s",
			                         count == 1 ? "" : count == total ? " or " : ", ",
			                         s->canonical,
			                         s->form == PS_URL_PATH && !s->stdout_ok ? ":///" : "://");
		}
}

static int has_scheme(const char *const *schemes, const char *scheme)
{
	for (; schemes && *schemes; schemes++)
		if (strcmp(*schemes, scheme) == 0)
			return 1;
	return 0;
}

static void list_schemes(ps_buf *b, const char *const *schemes)
{
	for (; schemes && *schemes; schemes++)
		ps_buf_printf(b, "%s%s://", b->len ? ", " : "", *schemes);
}

/* A plugin's option declarations: named, of a known kind, a CHOICE with
 * its choices and a default among them, bounds in order. */
static int check_options(const ps_option_def *defs, const char *what, const char *name,
                         ps_error *err)
{
	for (const ps_option_def *d = defs; d && d->name; d++) {
		bool ok = d->kind >= PS_OPTION_STRING && d->kind <= PS_OPTION_CHOICE;

		if (d->kind == PS_OPTION_CHOICE) {
			bool has_default = !d->default_text;
			ok = ok && d->choices && d->choices[0];
			for (const char *const *c = d->choices; ok && *c && d->default_text; c++)
				has_default |= strcmp(*c, d->default_text) == 0;
			ok = ok && has_default;
		}
		if (d->kind == PS_OPTION_INTEGER)
			ok = ok && d->min <= d->max && d->default_int >= d->min &&
			     d->default_int <= d->max;
		if (!ok)
			return ps_error_set(err, PS_EINVAL, "%s plugin %s declares option %s badly",
			                    what, name ? name : "?", d->name);
	}
	return PS_OK;
}

/* A plugin's fault points are its own: "<name>.<...>". */
static int check_fault_points(const char *const *points, const char *what, const char *name,
                              ps_error *err)
{
	size_t n = name ? strlen(name) : 0;

	for (size_t i = 0; points && points[i]; i++)
		if (!n || strncmp(points[i], name, n) != 0 || points[i][n] != '.' || !points[i][n + 1] ||
		    strlen(points[i]) >= 64)
			return ps_error_set(err, PS_EINVAL, "%s plugin %s declares fault point '%s', which "
			                    "is not %s.<point> (at most 63 characters)", what,
			                    name ? name : "?", points[i], name ? name : "?");
	return PS_OK;
}

int ps_plugin_check_source(const ps_source_ops *ops, ps_error *err)
{
	const char *missing = NULL;

	if (ops->abi_version != PS_SOURCE_ABI_VERSION)
		return ps_error_set(err, PS_EINVAL,
		                    "source plugin %s has ABI version %d, this build needs %d",
		                    ops->name ? ops->name : "?", ops->abi_version,
		                    PS_SOURCE_ABI_VERSION);
	if (!ops->open) missing = "open";
	else if (!ops->prepare) missing = "prepare";
	else if (!ops->start) missing = "start";
	else if (!ops->read) missing = "read";
	else if (!ops->ack) missing = "ack";
	else if (!ops->position_compare) missing = "position_compare";
	else if (!ops->close) missing = "close";
	else if (!ops->name || !ops->connector || !ops->url_schemes) missing = "name/connector/url_schemes";
	else if (ops->describe && (!ops->split || !ops->snapshot_export || !ops->snapshot_release ||
	                           !ops->copy_open || !ops->copy_unit || !ops->copy_close))
		missing = "initial-load group (describe, split, snapshot_export, snapshot_release, "
		          "copy_open, copy_unit, copy_close)";
	else if (!ops->copy_raw_format != !ops->copy_unit_raw ||
	         (ops->copy_unit_raw && !ops->describe))
		missing = "raw initial-load pair (copy_raw_format, copy_unit_raw, with describe)";
	else if (!ops->retable != !ops->mark || !ops->retable != !ops->chunk_read ||
	         (ops->chunk_read && !ops->describe))
		missing = "live table group (retable, mark, chunk_read, with describe)";
	else if ((ops->selection_check || ops->redescribe) && !ops->retable)
		missing = "retable (selection_check and redescribe need the live table group)";
	if (missing)
		return ps_error_set(err, PS_EINVAL, "source plugin %s lacks required callback %s",
		                    ops->name ? ops->name : "?", missing);
	if (check_fault_points(ops->fault_points, "source", ops->name, err) != PS_OK)
		return PS_EINVAL;
	return check_options(ops->options, "source", ops->name, err);
}

int ps_plugin_check_sink(const ps_sink_ops *ops, ps_error *err)
{
	const char *missing = NULL;

	if (ops->abi_version != PS_SINK_ABI_VERSION)
		return ps_error_set(err, PS_EINVAL,
		                    "sink plugin %s has ABI version %d, this build needs %d",
		                    ops->name ? ops->name : "?", ops->abi_version,
		                    PS_SINK_ABI_VERSION);
	if (!ops->open) missing = "open";
	else if (!ops->write) missing = "write";
	else if (!ops->flush) missing = "flush";
	else if (!ops->close) missing = "close";
	else if (!ops->name || !ops->url_schemes) missing = "name/url_schemes";
	else if (!ops->checkpoint_load != !ops->checkpoint_store ||
	         !ops->checkpoint_load != !ops->checkpoint_delete)
		missing = "checkpoint_load/_store/_delete set";
	else if (!ops->load_raw_accepts != !ops->load_raw_begin ||
	         !ops->load_raw_accepts != !ops->load_raw_write ||
	         !ops->load_raw_accepts != !ops->load_raw_end)
		missing = "load_raw_accepts/_begin/_write/_end set";
	else if (!ops->state_save != !ops->state_restore)
		missing = "state_save/_restore pair";
	else if (ops->checkpoint_kept && !ops->checkpoint_load)
		missing = "checkpoint_load/_store/_delete set (checkpoint_kept needs them)";
	if (missing)
		return ps_error_set(err, PS_EINVAL, "sink plugin %s lacks required callback %s",
		                    ops->name ? ops->name : "?", missing);
	if (check_fault_points(ops->fault_points, "sink", ops->name, err) != PS_OK)
		return PS_EINVAL;
	return check_options(ops->options, "sink", ops->name, err);
}

static bool listed(const char **ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

static void add_ids(const char **ids, size_t *n, size_t cap, const char *const *more)
{
	for (; more && *more && *n < cap; more++)
		if (!listed(ids, *n, *more))
			ids[(*n)++] = *more;
}

size_t ps_plugin_check_ids(const char **ids, size_t cap)
{
	static const char *const core_ids[] = {"source.connect", "target.connect", NULL};
	size_t n = 0;

	add_ids(ids, &n, cap, core_ids);
	for (size_t i = 0; source_table[i]; i++)
		add_ids(ids, &n, cap, source_table[i]->check_ids);
	for (size_t i = 0; sink_table[i]; i++)
		add_ids(ids, &n, cap, sink_table[i]->check_ids);
	return n;
}

const char *ps_plugin_fault_point(size_t i)
{
	for (int p = 0; source_table[p]; p++)
		for (const char *const *f = source_table[p]->fault_points; f && *f; f++)
			if (i-- == 0)
				return *f;
	for (int p = 0; sink_table[p]; p++)
		for (const char *const *f = sink_table[p]->fault_points; f && *f; f++)
			if (i-- == 0)
				return *f;
	return NULL;
}

const char *ps_plugin_source_name(size_t i)
{
	for (size_t k = 0; source_table[k]; k++)
		if (k == i)
			return source_table[k]->url_schemes[0];
	return NULL;
}

const ps_source_ops *ps_plugin_source_for(const char *scheme, ps_error *err)
{
	ps_buf known;

	for (int i = 0; source_table[i]; i++) {
		if (!has_scheme(source_table[i]->url_schemes, scheme))
			continue;
		if (ps_plugin_check_source(source_table[i], err) != PS_OK)
			return NULL;
		return source_table[i];
	}
	ps_buf_init(&known, 1024);
	for (int i = 0; source_table[i]; i++)
		list_schemes(&known, source_table[i]->url_schemes);
	ps_error_set(err, PS_EINVAL, "%s:// sources are not supported by this build; supported: %s",
	             scheme, known.data ? known.data : "none");
	ps_buf_free(&known);
	return NULL;
}

const ps_sink_ops *ps_plugin_sink_for(const char *scheme, ps_error *err)
{
	ps_buf known;

	for (int i = 0; sink_table[i]; i++) {
		if (!has_scheme(sink_table[i]->url_schemes, scheme))
			continue;
		if (ps_plugin_check_sink(sink_table[i], err) != PS_OK)
			return NULL;
		return sink_table[i];
	}
	ps_buf_init(&known, 1024);
	for (int i = 0; sink_table[i]; i++)
		list_schemes(&known, sink_table[i]->url_schemes);
	ps_error_set(err, PS_EINVAL, "%s:// targets are not supported by this build; supported: %s",
	             scheme, known.data ? known.data : "none");
	ps_buf_free(&known);
	return NULL;
}

/* --- source wrappers ------------------------------------------------------ */

#define SRC_CTX(s, err) ps_error_add_context((err), "source %s", (s)->ops->name)
#define SNK_CTX(k, err) ps_error_add_context((err), "target %s", (k)->ops->name)

static void timed(ps_plugin_timing *t, uint64_t start)
{
	t->calls++;
	t->total_ns += ps_now_ns() - start;
}

int ps_src_open(ps_src *s, const ps_source_ops *ops, const ps_source_config *cfg,
                ps_error *err)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->ops = ops;
	rc = ops->open(&s->impl, cfg, err);
	if (rc != PS_OK) {
		s->impl = NULL;
		SRC_CTX(s, err);
	}
	return rc;
}

int ps_src_prepare(ps_src *s, int mode, ps_prepare_result *res, ps_error *err)
{
	int rc;

	ps_prepare_result_clear(res);
	rc = s->ops->prepare(s->impl, mode, res, err);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

int ps_src_start(ps_src *s, const char *position, const char *redo_until, const char *state,
                 ps_error *err)
{
	int rc = s->ops->start(s->impl, position, redo_until, state, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, position %s", s->ops->name,
		                     position && *position ? position : "(slot)");
	return rc;
}

int ps_src_read(ps_src *s, ps_read_item *item, int timeout_ms, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	memset(item, 0, sizeof(*item));
	rc = s->ops->read(s->impl, item, timeout_ms, err);
	timed(&s->read_time, t0);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

int ps_src_ack(ps_src *s, const char *position, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc = s->ops->ack(s->impl, position, err);

	timed(&s->ack_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, acknowledging %s", s->ops->name,
		                     position && *position ? position : "(none)");
	return rc;
}

int ps_src_compare(const ps_src *s, const char *a, const char *b)
{
	return s->ops->position_compare(a, b);
}

int ps_src_position_check(const ps_src *s, const char *text, ps_error *err)
{
	if (!text || !*text)
		return ps_error_set(err, PS_EINVAL, "a position of source %s cannot be empty",
		                    s->ops->name);
	if (!s->ops->position_check)
		return PS_OK;
	return s->ops->position_check(text, err);
}

int ps_src_current_position(ps_src *s, char *buf, size_t len, ps_error *err)
{
	int rc;

	if (len)
		buf[0] = '\0';
	if (!s->ops->current_position)
		return PS_OK;
	rc = s->ops->current_position(s->impl, buf, len, err);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

long long ps_src_distance(const ps_src *s, const char *from, const char *to)
{
	if (!s->ops->position_distance || !from || !to || !*from || !*to)
		return -1;
	return s->ops->position_distance(from, to);
}

int ps_src_log_retention(ps_src *s, ps_log_retention *out, ps_error *err)
{
	int rc;

	out->retained_bytes = out->limit_bytes = out->safe_bytes = -1;
	out->status[0] = '\0';
	if (!s->ops->log_retention)
		return PS_OK;
	rc = s->ops->log_retention(s->impl, out, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, reading what the log keeps for the job",
		                     s->ops->name);
	out->status[sizeof(out->status) - 1] = '\0';
	return rc;
}

long long ps_plugin_position_offset(const ps_source_ops *ops, const char *pos)
{
	if (!ops || !ops->position_offset || !pos || !*pos)
		return -1;
	return ops->position_offset(pos);
}

int ps_src_fence(ps_src *s, char *pos, size_t len, ps_error *err)
{
	int rc;

	if (len)
		pos[0] = '\0';
	if (!s->ops->fence)
		return ps_error_set(err, PS_EINVAL, "source %s cannot mark a position in its log",
		                    s->ops->name);
	rc = s->ops->fence(s->impl, pos, len, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, writing a fence", s->ops->name);
	return rc;
}

int ps_src_drop(ps_src *s, char *done, size_t done_len, ps_error *err)
{
	int rc;

	if (done_len)
		done[0] = '\0';
	if (!s->ops->drop)
		return PS_OK;
	rc = s->ops->drop(s->impl, done, done_len, err);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

/* --- live table changes --------------------------------------------------- */

int ps_src_can_retable(const ps_src *s)
{
	return s->ops->retable != NULL;
}

int ps_src_retable(ps_src *s, const char *const *include, size_t ninclude,
                   const char *const *exclude, size_t nexclude, bool with_key,
                   const char *mark, ps_retable_result *res, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	memset(res, 0, sizeof(*res));
	if (!s->ops->retable)
		return ps_error_set(err, PS_EINVAL, "source %s cannot change its tables while it runs; "
		                    "stop the job and start it again", s->ops->name);
	rc = s->ops->retable(s->impl, include, ninclude, exclude, nexclude, with_key, mark, res, err);
	timed(&s->live_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, changing the tables", s->ops->name);
	return rc;
}

int ps_src_mark(ps_src *s, const char *content, char *pos, size_t len, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	if (len)
		pos[0] = '\0';
	if (!s->ops->mark)
		return ps_error_set(err, PS_EINVAL, "source %s cannot write markers", s->ops->name);
	rc = s->ops->mark(s->impl, content, pos, len, err);
	timed(&s->live_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, writing a watermark", s->ops->name);
	return rc;
}

int ps_src_chunk_read(ps_src *s, const ps_table_def *def, const ps_key_bound *after,
                      int max_rows, ps_row_fn fn, void *ctx, int *nrows, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	*nrows = 0;
	if (!s->ops->chunk_read)
		return ps_error_set(err, PS_EINVAL, "source %s cannot read a table in chunks",
		                    s->ops->name);
	rc = s->ops->chunk_read(s->impl, def, after, max_rows, fn, ctx, nrows, err);
	timed(&s->live_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, backfill of %s.%s", s->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

/* --- cutover -------------------------------------------------------------- */

int ps_src_sequences(ps_src *s, ps_sequence **seqs, size_t *n, ps_error *err)
{
	int rc;

	*seqs = NULL;
	*n = 0;
	if (!s->ops->sequences)
		return PS_OK;
	rc = s->ops->sequences(s->impl, seqs, n, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, reading sequences", s->ops->name);
	return rc;
}

int ps_snk_sequences_set(ps_snk *k, const ps_sequence *seqs, size_t n, char *summary,
                         size_t len, ps_error *err)
{
	int rc;

	if (len)
		summary[0] = '\0';
	if (!k->ops->sequences_set) {
		snprintf(summary, len, "not applicable (a %s target has no sequences%s%s)",
		         k->ops->name, k->ops->no_sequences ? "; " : "",
		         k->ops->no_sequences ? k->ops->no_sequences : "");
		return PS_OK;
	}
	rc = k->ops->sequences_set(k->impl, seqs, n, summary, len, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, setting sequences", k->ops->name);
	return rc;
}

/* --- engine state --------------------------------------------------------- */

int ps_snk_state_save(ps_snk *k, char **json, ps_error *err)
{
	int rc;

	*json = NULL;
	if (!k->ops->state_save)
		return PS_OK;
	rc = k->ops->state_save(k->impl, json, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, saving its state", k->ops->name);
	return rc;
}

int ps_snk_state_restore(ps_snk *k, const char *json, ps_error *err)
{
	int rc;

	if (!k->ops->state_restore)
		return PS_OK;
	rc = k->ops->state_restore(k->impl, json, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, restoring its state", k->ops->name);
	return rc;
}

int ps_snk_range(ps_snk *k, const char *from, const char *to, bool *hold, ps_error *err)
{
	int rc;

	*hold = false;
	if (!k->ops->range)
		return PS_OK;
	rc = k->ops->range(k->impl, from, to, hold, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, processing range (%s, %s]", k->ops->name,
		                     from ? from : "", to ? to : "");
	if (!to)
		*hold = false;
	return rc;
}

/* --- what identifies an end, what it holds -------------------------------- */

void ps_plugin_source_identity(const ps_source_ops *ops, const ps_url *url,
                               const json_t *options, char *buf, size_t len)
{
	if (ops && ops->identity)
		ops->identity(url, options, buf, len);
	else
		ps_url_identity(url, buf, len);
}

void ps_plugin_sink_identity(const ps_sink_ops *ops, const ps_url *url, const json_t *options,
                             char *buf, size_t len)
{
	if (ops && ops->identity)
		ops->identity(url, options, buf, len);
	else
		ps_url_identity(url, buf, len);
}

void ps_plugin_source_resources(const ps_source_ops *ops, const json_t *options,
                                ps_source_resources *out)
{
	memset(out, 0, sizeof(*out));
	if (ops && ops->resources)
		ops->resources(options, out);
}

void ps_prepare_result_clear(ps_prepare_result *res)
{
	free(res->state);
	memset(res, 0, sizeof(*res));
}

void ps_sequences_free(ps_sequence *seqs, size_t n)
{
	for (size_t i = 0; seqs && i < n; i++) {
		free(seqs[i].schema);
		free(seqs[i].name);
		free(seqs[i].table_schema);
		free(seqs[i].table_name);
		free(seqs[i].column);
		free(seqs[i].last_value);
	}
	free(seqs);
}

void ps_src_close(ps_src *s)
{
	if (s->ops && s->impl)
		s->ops->close(s->impl);
	s->impl = NULL;
}

/* --- sink wrappers -------------------------------------------------------- */

int ps_snk_open(ps_snk *k, const ps_sink_ops *ops, const ps_sink_config *cfg,
                ps_error *err)
{
	int rc;

	memset(k, 0, sizeof(*k));
	k->ops = ops;
	rc = ops->open(&k->impl, cfg, err);
	if (rc != PS_OK) {
		k->impl = NULL;
		SNK_CTX(k, err);
	}
	return rc;
}

int ps_snk_begin(ps_snk *k, const ps_txn *txn, ps_error *err)
{
	int rc;

	if (!k->ops->begin)
		return PS_OK;
	rc = k->ops->begin(k->impl, txn, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, transaction %llu", k->ops->name,
		                     (unsigned long long)txn->xid);
	return rc;
}

int ps_snk_write(ps_snk *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc = k->ops->write(k->impl, txn, c, err);

	timed(&k->write_time, t0);
	if (rc != PS_OK) {
		if (c->table)
			ps_error_add_context(err, "target %s, table %s.%s, transaction %llu",
			                     k->ops->name, c->table->schema, c->table->name,
			                     (unsigned long long)txn->xid);
		else
			SNK_CTX(k, err);
	}
	return rc;
}

int ps_snk_commit(ps_snk *k, const ps_txn *txn, ps_error *err)
{
	int rc;

	if (!k->ops->commit)
		return PS_OK;
	rc = k->ops->commit(k->impl, txn, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, commit at %s", k->ops->name, txn->position);
	return rc;
}

int ps_snk_flush(ps_snk *k, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc = k->ops->flush(k->impl, err);

	timed(&k->flush_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, flush", k->ops->name);
	else
		k->flushes++;
	return rc;
}

bool ps_snk_has_durable(const ps_snk *k)
{
	return k->ops->durable != NULL;
}

int ps_snk_durable(ps_snk *k, int how, uint64_t *through, ps_error *err)
{
	int rc;

	if (!k->ops->durable) {
		*through = k->flushes;
		return PS_OK;
	}
	*through = 0;
	rc = k->ops->durable(k->impl, how, through, err);
	if (rc != PS_OK) {
		ps_error_add_context(err, "target %s, %s", k->ops->name,
		                     how == PS_DURABLE_WAIT ? "making the last commits durable"
		                                            : "asking which commits are durable");
		return rc;
	}
	if (*through > k->flushes)   /* a sink cannot know more flushes than it made */
		return ps_error_set(err, PS_EPROTO, "target %s reports flush %llu durable after "
		                    "%llu flushes", k->ops->name, (unsigned long long)*through,
		                    (unsigned long long)k->flushes);
	return PS_OK;
}

int ps_snk_make_durable(ps_snk *k, ps_error *err)
{
	uint64_t through;
	int rc;

	if (!k->ops->durable)
		return PS_OK;
	rc = ps_snk_durable(k, PS_DURABLE_WAIT, &through, err);
	if (rc == PS_OK && through != k->flushes)
		rc = ps_error_set(err, PS_EPROTO, "target %s made %llu of %llu flushes durable when "
		                  "asked to make all", k->ops->name, (unsigned long long)through,
		                  (unsigned long long)k->flushes);
	return rc;
}

int ps_snk_has_checkpoint_store(const ps_snk *k)
{
	if (!k->ops->checkpoint_store)
		return 0;
	return !k->ops->checkpoint_kept || !k->impl || k->ops->checkpoint_kept(k->impl);
}

int ps_snk_idle(ps_snk *k, ps_error *err)
{
	int rc;

	if (!k->ops->idle || !k->impl)
		return PS_OK;
	rc = k->ops->idle(k->impl, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, idle", k->ops->name);
	return rc;
}

int ps_snk_figures(ps_snk *k, char *buf, size_t len, ps_error *err)
{
	json_t *figures = NULL;
	char *text = NULL;
	int rc;

	if (len)
		buf[0] = '\0';
	if (!k->ops || !k->ops->figures || !k->impl)
		return PS_OK;
	rc = k->ops->figures(k->impl, &figures, err);
	if (rc != PS_OK)
		return ps_error_add_context(err, "target %s, figures", k->ops->name);
	if (json_is_object(figures))
		text = json_dumps(figures, JSON_COMPACT);
	json_decref(figures);
	if (text && strlen(text) < len)
		snprintf(buf, len, "%s", text);
	else if (text)
		rc = ps_error_set(err, PS_ETOOBIG, "target %s reports more figures than %zu bytes hold",
		                  k->ops->name, len);
	free(text);
	return rc;
}

void ps_snk_close(ps_snk *k)
{
	if (k->ops && k->impl)
		k->ops->close(k->impl);
	k->impl = NULL;
}

int ps_snk_checkpoint_load(ps_snk *k, char **json, ps_error *err)
{
	int rc;

	*json = NULL;
	if (!k->ops->checkpoint_load)
		return PS_OK;
	rc = k->ops->checkpoint_load(k->impl, json, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, loading the checkpoint", k->ops->name);
	return rc;
}

int ps_snk_checkpoint_store(ps_snk *k, const char *json, ps_error *err)
{
	int rc = k->ops->checkpoint_store(k->impl, json, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, storing the checkpoint", k->ops->name);
	return rc;
}

int ps_snk_checkpoint_delete(ps_snk *k, ps_error *err)
{
	int rc;

	if (!k->ops->checkpoint_delete)
		return PS_OK;
	rc = k->ops->checkpoint_delete(k->impl, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, removing the checkpoint", k->ops->name);
	return rc;
}

int ps_snk_table_prepare(ps_snk *k, const ps_table_def *def, const ps_table_options *opt,
                         bool *created, ps_error *err)
{
	int rc;

	*created = false;
	if (!k->ops->table_prepare)
		return PS_OK;
	rc = k->ops->table_prepare(k->impl, def, opt, created, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, table %s.%s", k->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

int ps_snk_table_finish(ps_snk *k, const ps_table_def *def, ps_error *err)
{
	int rc;

	if (!k->ops->table_finish)
		return PS_OK;
	rc = k->ops->table_finish(k->impl, def, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, indexes of %s.%s", k->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

int ps_snk_max_writers(const ps_snk *k)
{
	return k->ops->max_writers;
}

/* --- initial-load wrappers ------------------------------------------------ */

int ps_src_can_snapshot(const ps_src *s)
{
	return s->ops->describe != NULL;
}

int ps_src_describe(ps_src *s, ps_table_def ***defs, size_t *n, ps_error *err)
{
	int rc;

	*defs = NULL;
	*n = 0;
	rc = s->ops->describe(s->impl, defs, n, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, describing tables", s->ops->name);
	return rc;
}

int ps_src_split(ps_src *s, const ps_table_def *def, int64_t chunk_rows, ps_key_bound **bounds,
                 size_t *nbounds, ps_error *err)
{
	int rc;

	*bounds = NULL;
	*nbounds = 0;
	rc = s->ops->split(s->impl, def, chunk_rows, bounds, nbounds, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, splitting %s.%s", s->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

int ps_src_snapshot_export(ps_src *s, char *name, size_t name_len, char *point,
                           size_t point_len, ps_error *err)
{
	int rc = s->ops->snapshot_export(s->impl, name, name_len, point, point_len, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, exporting a snapshot", s->ops->name);
	return rc;
}

int ps_src_snapshot_release(ps_src *s, ps_error *err)
{
	int rc;

	if (!s->ops->snapshot_release)
		return PS_OK;
	rc = s->ops->snapshot_release(s->impl, err);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

int ps_src_copy_open(ps_src *s, const char *snapshot, ps_copier **out, ps_error *err)
{
	int rc;

	*out = NULL;
	rc = s->ops->copy_open(s->impl, snapshot, out, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, opening a copy connection", s->ops->name);
	return rc;
}

int ps_src_copy_unit(ps_src *s, ps_copier *c, const ps_table_def *def,
                     const ps_copy_range *range, ps_row_fn fn, void *ctx, ps_error *err)
{
	int rc = s->ops->copy_unit(c, def, range, fn, ctx, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, copying %s.%s", s->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

void ps_src_copy_close(ps_src *s, ps_copier *c)
{
	if (c)
		s->ops->copy_close(c);
}

void ps_src_copy_point(ps_src *s, ps_copier *c, const char *dflt, char *point, size_t len)
{
	if (!s->ops->copy_point || !c || s->ops->copy_point(c, point, len) != 1 || !point[0])
		snprintf(point, len, "%s", dflt);
}

/* --- prechecks ------------------------------------------------------------ */

int ps_src_precheck(const ps_source_ops *ops, const ps_source_config *cfg,
                    ps_check_report *report, ps_check_tables *tables, ps_error *err)
{
	int rc;

	if (!ops->precheck)
		return PS_OK;
	rc = ops->precheck(cfg, report, tables, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, prechecks", ops->name);
	return rc;
}

int ps_snk_precheck(const ps_sink_ops *ops, const ps_sink_config *cfg,
                    const ps_table_options *opt, bool loads, const ps_check_tables *tables,
                    ps_check_report *report, ps_error *err)
{
	int rc;

	if (!ops->precheck)
		return PS_OK;
	rc = ops->precheck(cfg, opt, loads, tables, report, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, prechecks", ops->name);
	return rc;
}

/* --- raw initial load ----------------------------------------------------- */

int ps_src_can_copy_raw(const ps_src *s)
{
	return s->ops->copy_unit_raw != NULL;
}

int ps_snk_can_load_raw(const ps_snk *k)
{
	return k->ops->load_raw_begin != NULL;
}

int ps_src_copy_raw_format(ps_src *s, ps_copier *c, const ps_table_def *def, char *format,
                           size_t format_len, char *why, size_t why_len, ps_error *err)
{
	int rc;

	if (format_len)
		format[0] = '\0';
	if (why_len)
		why[0] = '\0';
	if (!s->ops->copy_raw_format) {
		snprintf(why, why_len, "source %s has no raw copy", s->ops->name);
		return PS_OK;
	}
	rc = s->ops->copy_raw_format(c, def, format, format_len, why, why_len, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, raw copy format of %s.%s", s->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

int ps_src_copy_unit_raw(ps_src *s, ps_copier *c, const ps_table_def *def,
                         const ps_copy_range *range, ps_raw_fn fn, void *ctx, ps_error *err)
{
	int rc = s->ops->copy_unit_raw(c, def, range, fn, ctx, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, copying %s.%s raw", s->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

int ps_snk_load_raw_accepts(ps_snk *k, const ps_table_def *def, const char *format,
                            bool *accepted, char *why, size_t why_len, ps_error *err)
{
	int rc;

	*accepted = false;
	if (why_len)
		why[0] = '\0';
	if (!k->ops->load_raw_accepts) {
		snprintf(why, why_len, "target %s has no raw load", k->ops->name);
		return PS_OK;
	}
	rc = k->ops->load_raw_accepts(k->impl, def, format, accepted, why, why_len, err);
	if (rc != PS_OK) {
		*accepted = false;
		ps_error_add_context(err, "target %s, table %s.%s", k->ops->name,
		                     def->table->schema, def->table->name);
	}
	return rc;
}

int ps_snk_load_raw_begin(ps_snk *k, const ps_table_def *def, const char *format,
                          ps_error *err)
{
	int rc = k->ops->load_raw_begin(k->impl, def, format, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, table %s.%s", k->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

int ps_snk_load_raw_write(ps_snk *k, const char *data, size_t len, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc = k->ops->load_raw_write(k->impl, data, len, err);

	timed(&k->write_time, t0);
	if (rc != PS_OK)
		SNK_CTX(k, err);
	return rc;
}

int ps_snk_load_raw_end(ps_snk *k, int64_t *rows, ps_error *err)
{
	int rc;

	*rows = 0;
	rc = k->ops->load_raw_end(k->impl, rows, err);
	if (rc != PS_OK)
		SNK_CTX(k, err);
	return rc;
}

/* --- schema (penstock/schema.h; issue 14) --------------------------------- */

int ps_src_schema_after_load(ps_src *s, ps_schema **out, ps_error *err)
{
	int rc;

	*out = NULL;
	if (!s->ops->schema_after_load)
		return PS_OK;
	rc = s->ops->schema_after_load(s->impl, out, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, describing the objects to create after the load",
		                     s->ops->name);
	return rc;
}

int ps_snk_schema_apply(ps_snk *k, const ps_schema *schema, size_t *applied, ps_error *err)
{
	int rc;

	*applied = 0;
	if (!schema || schema->n == 0 || !k->ops->schema_apply)
		return PS_OK;
	rc = k->ops->schema_apply(k->impl, schema, applied, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, creating the objects of the schema", k->ops->name);
	return rc;
}

int ps_snk_can_apply_schema(const ps_snk *k)
{
	return k->ops->schema_apply != NULL;
}

bool ps_snk_ddl_commits(const ps_snk *k)
{
	return k->ops->ddl_commits && k->ops->table_change;
}

/* --- schema changes (issue 15) -------------------------------------------- */

int ps_src_can_check_selection(const ps_src *s)
{
	return s->ops->selection_check != NULL;
}

int ps_src_selection_check(ps_src *s, bool *changed, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	*changed = false;
	if (!s->ops->selection_check)
		return PS_OK;
	rc = s->ops->selection_check(s->impl, changed, err);
	timed(&s->live_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, looking for tables that came into or left the "
		                     "selection", s->ops->name);
	return rc;
}

int ps_src_redescribe(ps_src *s, const ps_table_def *def, ps_table_def **out, bool *gone,
                      ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	*out = NULL;
	*gone = false;
	if (!s->ops->redescribe)
		return PS_OK;
	rc = s->ops->redescribe(s->impl, def, out, gone, err);
	timed(&s->live_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, describing %s.%s again", s->ops->name,
		                     def->table->schema, def->table->name);
	return rc;
}

int ps_snk_table_change(ps_snk *k, const ps_txn *txn, const ps_table_change *tc,
                        const ps_table_options *opt, bool *backfill, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	*backfill = false;
	if (!k->ops->table_change)
		return PS_OK;
	rc = k->ops->table_change(k->impl, txn, tc, opt, backfill, err);
	timed(&k->write_time, t0);
	if (rc != PS_OK)   /* the plugin's message names the table and the position */
		ps_error_add_context(err, "target %s", k->ops->name);
	return rc;
}
