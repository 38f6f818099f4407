/*
 * sinkcheck.c — drives any sink by URL from a JSON script on stdin, for the
 * integration tests. Goes through the core wrappers (core/plugin.h) exactly
 * as the pipeline does, and builds tables, definitions and changes with
 * core/change.c.
 *
 * Script:
 *   {"url": "postgresql://...", "job": "j", "password_env": "PW" (optional),
 *    "fail_fast": false,
 *    "tables": {"<key>": {"schema": "public", "name": "t", "engine": "postgresql",
 *                         "columns": [{"name": "id", "type": "integer", "oid": 23,
 *                                      "class": "integer", "key": true,
 *                                      "not_null": true, "default": null,
 *                                      "identity": "a"|"d", "sequence": "\"s\".\"q\"",
 *                                      "user_type": false}, ...],
 *                         "constraints": [{"name": "t_pkey", "kind": "p",
 *                                          "sql": "PRIMARY KEY (id)", "cols": [0]}]}},
 *    "steps": [...]}
 *
 * Steps (one key names the step):
 *   {"open": true}                 open again (the script starts open)
 *   {"close": true}                close without flush (also "close_without_flush")
 *   {"prepare": "<key>", "create": "if_missing"|"never"|"drop_and_create",
 *    "truncate": false}            table_prepare; prints "created"
 *   {"finish": "<key>"}            table_finish
 *   {"begin": {"reprocessing": false, "xid": 1, "position": "0/1"}}
 *   {"op": "c"|"u"|"d"|"t"|"r"|"m", "table": "<key>", "new": [...], "old": [...],
 *    "old_is_key": true, "truncate_flags": ["cascade", "restart_identity"], "lsn": 1}
 *                                  values: null = NULL, {"u": 1} = UNCHANGED,
 *                                  strings as they are, numbers and booleans as text
 *   {"generate": {"op": "r", "table": "<key>", "from": 1, "count": 1000,
 *                 "new": ["{i}", "name {i}", null], "old": [...]}}
 *                                  count changes, "{i}" replaced by the number
 *   {"commit": "0/10"}             commit of the current source transaction
 *   {"checkpoint": "<json text>"}  checkpoint_store
 *   {"delete_checkpoint": true}    checkpoint_delete
 *   {"load_checkpoint": true}      checkpoint_load; prints "checkpoint" (or null)
 *   {"flush": true}
 *   {"wait_for_file": "/path"}    prints {"step": n, "waiting": true} at once,
 *                                  then polls for the file (60 s at most), so a
 *                                  test can act on the target in between
 * Any step may say "expect_error": true.
 *
 * The sink is opened before the first step (unless that step is "open");
 * when that fails, one line {"step": -1, "ok": false, ...} and exit 1.
 *
 * Output: one JSON line per step: {"step": n, "ok": true|false, "ms": ...,
 * and "code", "sqlstate", "error" on failure}. Exit status 0, or 1 when
 * "fail_fast" is set and a step did not do what it expected; 2 for a bad
 * script.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/plugin.h"
#include "penstock/url.h"
#include "penstock/change.h"
#include "util/pgconn.h"
#include "penstock/sink.h"
#include "penstock/tabledef.h"
#include "util/buf.h"

typedef struct table_entry {
	const char *key;
	ps_table *table;
	ps_table_def *def;
} table_entry;

typedef struct driver {
	const ps_sink_ops *ops;
	ps_snk snk;
	bool open;
	ps_sink_config cfg;
	table_entry *tables;
	size_t ntables;
	ps_txn txn;
} driver;

static void die(const char *fmt, ...) PS_PRINTF(1, 2);

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sinkcheck: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *dup_or_null(json_t *v)
{
	const char *s = json_string_value(v);

	return s ? strdup(s) : NULL;
}

static uint8_t type_class(const char *name)
{
	static const struct { const char *name; uint8_t cls; } map[] = {
		{"bool", PS_TYPE_BOOL}, {"integer", PS_TYPE_INTEGER}, {"float", PS_TYPE_FLOAT},
		{"numeric", PS_TYPE_NUMERIC}, {"json", PS_TYPE_JSON}, {"bytes", PS_TYPE_BYTES},
		{"date", PS_TYPE_DATE}, {"time", PS_TYPE_TIME}, {"timestamp", PS_TYPE_TIMESTAMP},
		{"timestamptz", PS_TYPE_TIMESTAMPTZ}, {"uuid", PS_TYPE_UUID},
	};

	for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, name) == 0)
			return map[i].cls;
	return PS_TYPE_TEXT;
}

/* ==== tables ============================================================== */

static void build_table(table_entry *e, const char *key, json_t *j, uint32_t id)
{
	json_t *cols = json_object_get(j, "columns");
	json_t *cons = json_object_get(j, "constraints");
	const char *schema = json_string_value(json_object_get(j, "schema"));
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *engine = json_string_value(json_object_get(j, "engine"));
	const char *ri = json_string_value(json_object_get(j, "replica_identity"));
	int n = (int)json_array_size(cols);
	ps_table_def *def;
	bool any_key = false;

	if (!schema || !name || !json_is_array(cols))
		die("table %s needs schema, name and columns", key);
	e->key = key;
	e->table = ps_table_new(id, n);
	def = calloc(1, sizeof(*def));
	if (!e->table || !def || ps_table_set_names(e->table, schema, name) != PS_OK)
		die("out of memory (%s)", key);
	if (ri)
		e->table->replica_identity = ri[0];
	e->table->engine = engine && strcmp(engine, "mysql") == 0 ? "mysql" : "postgresql";
	def->columns = calloc((size_t)n + 1, sizeof(ps_column_def));
	def->engine = strdup(engine ? engine : "postgresql");
	if (!def->columns || !def->engine)
		die("out of memory (%s)", key);
	for (int i = 0; i < n; i++) {
		json_t *c = json_array_get(cols, (size_t)i);
		const char *cname = json_string_value(json_object_get(c, "name"));
		const char *ident = json_string_value(json_object_get(c, "identity"));
		json_t *tm = json_object_get(c, "typmod");
		bool is_key = json_is_true(json_object_get(c, "key"));

		if (!cname)
			die("a column of table %s has no name", key);
		if (ps_table_set_column(e->table, i, cname,
		                        (uint32_t)json_integer_value(json_object_get(c, "oid")),
		                        tm ? (int32_t)json_integer_value(tm) : -1,
		                        type_class(json_string_value(json_object_get(c, "class"))),
		                        is_key) != PS_OK)
			die("out of memory (%s)", key);
		any_key = any_key || is_key;
		def->columns[i].sql_type = dup_or_null(json_object_get(c, "type"));
		def->columns[i].default_expr = dup_or_null(json_object_get(c, "default"));
		def->columns[i].sequence = dup_or_null(json_object_get(c, "sequence"));
		def->columns[i].not_null = json_is_true(json_object_get(c, "not_null"));
		def->columns[i].user_type = json_is_true(json_object_get(c, "user_type"));
		def->columns[i].identity = ident ? ident[0] : 0;
	}
	def->nconstraints = (int)json_array_size(cons);
	def->constraints = calloc((size_t)def->nconstraints + 1, sizeof(ps_constraint_def));
	if (!def->constraints)
		die("out of memory (%s)", key);
	for (int i = 0; i < def->nconstraints; i++) {
		json_t *c = json_array_get(cons, (size_t)i);
		json_t *cc = json_object_get(c, "cols");
		const char *kind = json_string_value(json_object_get(c, "kind"));
		ps_constraint_def *cd = &def->constraints[i];

		cd->name = dup_or_null(json_object_get(c, "name"));
		cd->sql = dup_or_null(json_object_get(c, "sql"));
		cd->kind = kind ? kind[0] : 0;
		cd->ncols = (int)json_array_size(cc);
		cd->cols = calloc((size_t)cd->ncols + 1, sizeof(int));
		if (!cd->cols)
			die("out of memory (%s)", key);
		for (int k = 0; k < cd->ncols; k++)
			cd->cols[k] = (int)json_integer_value(json_array_get(cc, (size_t)k));
	}
	def->has_primary_key = json_object_get(j, "has_primary_key")
	                       ? json_is_true(json_object_get(j, "has_primary_key")) : any_key;
	def->estimated_rows = -1;
	def->estimated_bytes = -1;
	def->table = ps_table_ref(e->table);
	e->def = def;
}

static table_entry *find_table(driver *d, const char *key)
{
	for (size_t i = 0; key && i < d->ntables; i++)
		if (strcmp(d->tables[i].key, key) == 0)
			return &d->tables[i];
	return NULL;
}

static table_entry *need_table(driver *d, json_t *v)
{
	table_entry *e = find_table(d, json_string_value(v));

	if (!e)
		die("unknown table %s", json_string_value(v) ? json_string_value(v) : "(none)");
	return e;
}

/* ==== values ============================================================== */

/* Text of a scalar, with "{i}" replaced by n when subst; into b. */
static const char *value_text(json_t *v, bool subst, long long n, ps_buf *b)
{
	char tmp[64];
	const char *s, *hit;

	ps_buf_reset(b);
	if (json_is_integer(v)) {
		snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
		ps_buf_puts(b, tmp);
	} else if (json_is_real(v)) {
		snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(v));
		ps_buf_puts(b, tmp);
	} else if (json_is_boolean(v)) {
		ps_buf_puts(b, json_is_true(v) ? "t" : "f");
	} else {
		s = json_string_value(v);
		if (!subst)
			return s;
		snprintf(tmp, sizeof(tmp), "%lld", n);
		while ((hit = strstr(s, "{i}")) != NULL) {
			ps_buf_append(b, s, (size_t)(hit - s));
			ps_buf_puts(b, tmp);
			s = hit + 3;
		}
		ps_buf_puts(b, s);
	}
	return b->data ? b->data : "";
}

/* Fills n values from a JSON array (NULL when the array is absent). Texts
 * live in bufs (one per column) until the next call. */
static ps_value *fill_values(json_t *arr, int n, ps_value *vals, ps_buf *bufs, bool subst,
                             long long i)
{
	if (!json_is_array(arr))
		return NULL;
	if ((int)json_array_size(arr) != n)
		die("a value array has the wrong length (%s)", "new/old");
	for (int c = 0; c < n; c++) {
		json_t *v = json_array_get(arr, (size_t)c);

		memset(&vals[c], 0, sizeof(vals[c]));
		if (json_is_null(v)) {
			vals[c].kind = PS_VALUE_NULL;
		} else if (json_is_object(v)) {
			vals[c].kind = PS_VALUE_UNCHANGED;
		} else {
			const char *t = value_text(v, subst, i, &bufs[c]);

			if (json_is_string(v))
				vals[c].len = subst ? (uint32_t)bufs[c].len : (uint32_t)json_string_length(v);
			else
				vals[c].len = (uint32_t)bufs[c].len;
			vals[c].kind = PS_VALUE_TEXT;
			vals[c].data = t;
		}
	}
	return vals;
}

static uint32_t truncate_flags(json_t *f)
{
	uint32_t flags = 0;
	size_t i;
	json_t *v;

	if (json_is_integer(f))
		return (uint32_t)json_integer_value(f);
	json_array_foreach(f, i, v) {
		if (json_string_value(v) && strcmp(json_string_value(v), "cascade") == 0)
			flags |= PS_TRUNCATE_CASCADE;
		if (json_string_value(v) && strcmp(json_string_value(v), "restart_identity") == 0)
			flags |= PS_TRUNCATE_RESTART_IDENTITY;
	}
	return flags;
}

/* Builds and writes count changes of one step. */
static int write_changes(driver *d, json_t *spec, bool generate, long long *written,
                         ps_error *err)
{
	const char *op = json_string_value(json_object_get(spec, "op"));
	table_entry *e = find_table(d, json_string_value(json_object_get(spec, "table")));
	long long from = json_integer_value(json_object_get(spec, "from"));
	long long count = generate ? json_integer_value(json_object_get(spec, "count")) : 1;
	ps_value *nv = NULL, *ov = NULL;
	ps_buf *nb = NULL, *ob = NULL;
	int n, rc = PS_OK;

	if (!op)
		die("a change step needs \"op\"");
	if (op[0] == PS_OP_MESSAGE) {
		ps_change *m = ps_change_new_message(true, "sinkcheck", "hello", 5, 0);

		rc = m ? ps_snk_write(&d->snk, &d->txn, m, err) : PS_ENOMEM;
		ps_change_free(m);
		*written = 1;
		return rc;
	}
	if (!e)
		need_table(d, json_object_get(spec, "table"));      /* dies */
	n = e->table->ncolumns;
	nv = calloc((size_t)n + 1, sizeof(*nv));
	ov = calloc((size_t)n + 1, sizeof(*ov));
	nb = calloc((size_t)n + 1, sizeof(*nb));
	ob = calloc((size_t)n + 1, sizeof(*ob));
	if (!nv || !ov || !nb || !ob)
		die("out of memory");
	for (int c = 0; c < n; c++) {
		ps_buf_init(&nb[c], (size_t)1 << 30);
		ps_buf_init(&ob[c], (size_t)1 << 30);
	}
	*written = 0;
	for (long long i = from; rc == PS_OK && i < from + count; i++) {
		ps_value *newp = fill_values(json_object_get(spec, "new"), n, nv, nb, generate, i);
		ps_value *oldp = fill_values(json_object_get(spec, "old"), n, ov, ob, generate, i);
		ps_change *c = ps_change_new((uint8_t)op[0], e->table, newp, oldp,
		                             json_is_true(json_object_get(spec, "old_is_key")),
		                             (uint64_t)json_integer_value(json_object_get(spec, "lsn")));

		if (!c)
			die("out of memory");
		c->truncate_flags = truncate_flags(json_object_get(spec, "truncate_flags"));
		rc = ps_snk_write(&d->snk, &d->txn, c, err);
		ps_change_free(c);
		if (rc == PS_OK)
			(*written)++;
	}
	for (int c = 0; c < n; c++) {
		ps_buf_free(&nb[c]);
		ps_buf_free(&ob[c]);
	}
	free(nv);
	free(ov);
	free(nb);
	free(ob);
	return rc;
}

/* ==== steps =============================================================== */

static int open_sink(driver *d, ps_error *err)
{
	int rc = ps_snk_open(&d->snk, d->ops, &d->cfg, err);

	d->open = rc == PS_OK;
	return rc;
}

static void close_sink(driver *d)
{
	if (d->open)
		ps_snk_close(&d->snk);
	d->open = false;
}

static int create_mode(const char *s)
{
	if (!s || strcmp(s, "if_missing") == 0)
		return PS_CREATE_IF_MISSING;
	if (strcmp(s, "never") == 0)
		return PS_CREATE_NEVER;
	if (strcmp(s, "drop_and_create") == 0)
		return PS_CREATE_DROP_AND_CREATE;
	die("unknown create mode %s", s);
	return -1;
}

/* Polls for path every 10 ms, for 60 s at most. */
static int wait_for_file(const char *path, long long step, ps_error *err)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	double deadline = now_ms() + 60000;

	if (!path)
		die("\"wait_for_file\" takes a path");
	printf("{\"step\":%lld,\"waiting\":true}\n", step);
	fflush(stdout);
	while (access(path, F_OK) != 0) {
		if (now_ms() > deadline)
			return ps_error_set(err, PS_ETIMEOUT, "%s did not appear within 60 s", path);
		nanosleep(&tick, NULL);
	}
	return PS_OK;
}

static int run_step(driver *d, json_t *step, json_t *out, ps_error *err)
{
	json_t *v;
	int rc = PS_OK;

	if (json_object_get(step, "open")) {
		close_sink(d);
		return open_sink(d, err);
	}
	if (json_object_get(step, "close") || json_object_get(step, "close_without_flush")) {
		close_sink(d);
		return PS_OK;
	}
	if (!d->open)
		return ps_error_set(err, PS_EINVAL, "the sink is not open");
	if ((v = json_object_get(step, "prepare")) != NULL) {
		table_entry *e = need_table(d, v);
		ps_table_options opt = {
			.create = create_mode(json_string_value(json_object_get(step, "create"))),
			.truncate_before_load = json_is_true(json_object_get(step, "truncate")),
		};
		bool created = false;

		rc = ps_snk_table_prepare(&d->snk, e->def, &opt, &created, err);
		json_object_set_new(out, "created", json_boolean(created));
	} else if ((v = json_object_get(step, "finish")) != NULL) {
		rc = ps_snk_table_finish(&d->snk, need_table(d, v)->def, err);
	} else if ((v = json_object_get(step, "begin")) != NULL) {
		const char *pos = json_string_value(json_object_get(v, "position"));

		memset(&d->txn, 0, sizeof(d->txn));
		d->txn.reprocessing = json_is_true(json_object_get(v, "reprocessing"));
		d->txn.xid = (uint64_t)json_integer_value(json_object_get(v, "xid"));
		snprintf(d->txn.position, sizeof(d->txn.position), "%s", pos ? pos : "0/0");
		rc = ps_snk_begin(&d->snk, &d->txn, err);
	} else if (json_object_get(step, "op")) {
		long long n = 0;

		rc = write_changes(d, step, false, &n, err);
	} else if ((v = json_object_get(step, "generate")) != NULL) {
		long long n = 0;

		rc = write_changes(d, v, true, &n, err);
		json_object_set_new(out, "written", json_integer(n));
	} else if ((v = json_object_get(step, "commit")) != NULL) {
		snprintf(d->txn.position, sizeof(d->txn.position), "%s",
		         json_string_value(v) ? json_string_value(v) : "0/0");
		rc = ps_snk_commit(&d->snk, &d->txn, err);
	} else if ((v = json_object_get(step, "checkpoint")) != NULL) {
		if (!json_is_string(v))
			die("\"checkpoint\" takes the checkpoint's text");
		rc = ps_snk_checkpoint_store(&d->snk, json_string_value(v), err);
	} else if (json_object_get(step, "delete_checkpoint")) {
		rc = ps_snk_checkpoint_delete(&d->snk, err);
	} else if (json_object_get(step, "load_checkpoint")) {
		char *body = NULL;

		rc = ps_snk_checkpoint_load(&d->snk, &body, err);
		json_object_set_new(out, "checkpoint", body ? json_string(body) : json_null());
		free(body);
	} else if (json_object_get(step, "flush")) {
		rc = ps_snk_flush(&d->snk, err);
	} else if ((v = json_object_get(step, "wait_for_file")) != NULL) {
		rc = wait_for_file(json_string_value(v), json_integer_value(json_object_get(out, "step")),
		                   err);
	} else {
		char *text = json_dumps(step, JSON_COMPACT);

		die("unknown step %s", text ? text : "?");
	}
	return rc;
}

static json_t *read_script(void)
{
	json_error_t jerr;
	json_t *script = json_loadf(stdin, 0, &jerr);

	if (!script) {
		fprintf(stderr, "sinkcheck: script line %d: %s\n", jerr.line, jerr.text);
		exit(2);
	}
	return script;
}

/* Prints one result line: out plus ok, ms and the error when rc != 0. */
static void print_result(json_t *out, int rc, const ps_error *err, double t0)
{
	char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 4];
	char *line;

	json_object_set_new(out, "ok", json_boolean(rc == PS_OK));
	if (t0 >= 0)
		json_object_set_new(out, "ms", json_real(now_ms() - t0));
	if (rc != PS_OK) {
		ps_error_format(err, msg, sizeof(msg));
		json_object_set_new(out, "code", json_string(ps_error_code_name(rc)));
		json_object_set_new(out, "sqlstate", json_string(pg_sqlstate(err)));
		json_object_set_new(out, "engine_code", json_string(err->engine_code));
		json_object_set_new(out, "error", json_string(msg));
	}
	line = json_dumps(out, JSON_COMPACT);
	printf("%s\n", line ? line : "{}");
	fflush(stdout);
	free(line);
	json_decref(out);
}

/* Runs every step; 1 when fail_fast and a step did not go as expected. */
static int run_steps(driver *d, json_t *steps, bool fail_fast)
{
	ps_error err;
	json_t *v;
	size_t i;

	ps_error_clear(&err);
	if (!json_object_get(json_array_get(steps, 0), "open") && open_sink(d, &err) != PS_OK) {
		json_t *out = json_object();

		json_object_set_new(out, "step", json_integer(-1));
		print_result(out, err.code, &err, -1);
		return 1;
	}
	json_array_foreach(steps, i, v) {
		json_t *out = json_object();
		bool expect_error = json_is_true(json_object_get(v, "expect_error"));
		double t0 = now_ms();
		int rc;

		ps_error_clear(&err);
		json_object_set_new(out, "step", json_integer((json_int_t)i));
		rc = run_step(d, v, out, &err);
		print_result(out, rc, &err, t0);
		if (fail_fast && (rc != PS_OK) != expect_error)
			return 1;
	}
	return 0;
}

int main(void)
{
	json_t *script = read_script();
	json_t *tables = json_object_get(script, "tables");
	json_t *steps = json_object_get(script, "steps");
	const char *url = json_string_value(json_object_get(script, "url"));
	const char *pw_env = json_string_value(json_object_get(script, "password_env"));
	driver d;
	ps_url parsed;
	ps_error err;
	const char *key;
	json_t *v;
	int status = 2;

	memset(&d, 0, sizeof(d));
	if (!url || !json_is_array(steps))
		die("the script needs \"url\" and \"steps\"");
	d.cfg.job_name = json_string_value(json_object_get(script, "job"));
	if (!d.cfg.job_name)
		d.cfg.job_name = "sinkcheck";
	d.cfg.url = url;
	d.cfg.password = pw_env ? getenv(pw_env) : NULL;
	d.cfg.connector = "postgresql";
	d.cfg.source_db = "sinkcheck";
	d.tables = calloc(json_object_size(tables) + 1, sizeof(table_entry));
	if (!d.tables)
		die("out of memory");
	json_object_foreach(tables, key, v) {
		build_table(&d.tables[d.ntables], key, v, (uint32_t)(16384 + d.ntables));
		d.ntables++;
	}
	ps_error_clear(&err);
	if (ps_url_parse(&parsed, url, &err) != PS_OK ||
	    !(d.ops = ps_plugin_sink_for(parsed.scheme_name, &err)))
		fprintf(stderr, "sinkcheck: %s\n", err.message);
	else
		status = run_steps(&d, steps, json_is_true(json_object_get(script, "fail_fast")));
	close_sink(&d);
	for (size_t t = 0; t < d.ntables; t++) {
		ps_table_def_free(d.tables[t].def);
		ps_table_unref(d.tables[t].table);
	}
	free(d.tables);
	json_decref(script);
	return status;
}
