/*
 * snapdump.c — test driver for a source's initial load, through the core's
 * plugin wrappers (core/plugin.h), as the pipeline will use them.
 *
 *   snapdump URL [--chunk-rows N] [--tables pat,...] [--export] [--schema MODE] [--after]
 *
 * Opens the source (want_snapshot, job "snapdump", slot and publication
 * "snapdump_<pid>"), prepares it with PS_PREPARE_RECREATE, describes the
 * tables, splits each into units of about N rows (default 100000), copies
 * every unit with 2 worker threads (each its own copier), then drops the
 * slot and publication and closes. Output, JSON lines on stdout:
 *
 *   {"prepare":{"created":..,"point":..,"snapshot":..,"ntables":..}}
 *   {"export":{"name":..,"point":..}}                 (--export only)
 *   {"table":"s.t","def":{...}}                       one per table, with its
 *                                                     "requires" objects
 *   {"table":"s.t","unit":i,"row":["text",null,..]}   one per row
 *   {"after":[{...}, ...]}                            schema_after_load's objects
 *                                                     (--after only)
 *   {"done":{"units":n,"rows":n}}
 *
 * --schema tables|full|bare sets target.schema (default tables); --after
 * prints what the target gets after the load.
 *
 * --export releases prepare's snapshot, exports a new one with
 * snapshot_export and copies under that one instead.
 *
 * Environment:
 *   SNAPDUMP_PAUSE_FILE=path  after prepare (and export), write
 *       path.ready (the prepare/export lines) and wait, polling, until path
 *       exists — so a test can change the source while the snapshot holds.
 *   SNAPDUMP_FAIL_AFTER=n     the row callback fails on row n+1 of a unit
 *       (exercises cancelling a COPY); snapdump then exits 1.
 *
 * Exit status 0 on success, 1 on error (message on stderr), 2 on usage.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/plugin.h"
#include "penstock/url.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

#define NWORKERS 2
#define MAX_PATTERNS 32
#define PAUSE_TIMEOUT_S 300

typedef struct unit {
	const ps_table_def *def;
	int index;              /* within its table */
	ps_copy_range range;
} unit;

typedef struct dump {
	ps_src src;
	const char *snapshot;
	unit *units;
	size_t nunits;
	atomic_size_t next_unit;
	atomic_llong rows;
	atomic_bool failed;
	long fail_after;        /* -1: never */
	pthread_mutex_t out_lock;
	pthread_mutex_t err_lock;
	ps_error first_error;
} dump;

typedef struct worker {
	dump *d;
	const unit *u;
	long unit_rows;
	ps_buf line;
} worker;

/* --- output -------------------------------------------------------------- */

static void emit(dump *d, ps_buf *line)
{
	pthread_mutex_lock(&d->out_lock);
	fwrite(line->data, 1, line->len, stdout);
	pthread_mutex_unlock(&d->out_lock);
	ps_buf_reset(line);
}

static void put_str(ps_buf *b, const char *s)
{
	if (s)
		ps_json_append_string(b, s, strlen(s));
	else
		ps_buf_puts(b, "null");
}

static void put_qualified(ps_buf *b, const ps_table *t)
{
	char name[600];

	snprintf(name, sizeof(name), "%s.%s", t->schema, t->name);
	put_str(b, name);
}

static void put_col_names(ps_buf *b, const ps_table *t, const int *cols, int ncols)
{
	ps_buf_putc(b, '[');
	for (int i = 0; i < ncols; i++) {
		ps_buf_puts(b, i ? "," : "");
		put_str(b, t->columns[cols[i]].name);
	}
	ps_buf_putc(b, ']');
}

static void put_column(ps_buf *b, const ps_table *t, const ps_column_def *c, int i)
{
	char ident[2] = {c->identity, '\0'};

	ps_buf_puts(b, "{\"name\":");
	put_str(b, t->columns[i].name);
	ps_buf_printf(b, ",\"type_oid\":%u,\"type_mod\":%d,\"type_class\":%d,\"is_key\":%s",
	              t->columns[i].type_id, t->columns[i].type_mod, t->columns[i].type_class,
	              t->columns[i].is_key ? "true" : "false");
	ps_buf_puts(b, ",\"sql_type\":");
	put_str(b, c->sql_type);
	ps_buf_printf(b, ",\"user_type\":%s,\"not_null\":%s,\"default\":",
	              c->user_type ? "true" : "false", c->not_null ? "true" : "false");
	put_str(b, c->default_expr);
	ps_buf_puts(b, ",\"identity\":");
	put_str(b, c->identity ? ident : NULL);
	ps_buf_puts(b, ",\"sequence\":");
	put_str(b, c->sequence);
	ps_buf_putc(b, '}');
}

/* [{"kind":k,"what":..,"must_exist":..,"sql":..}, ...] */
static void put_objects(ps_buf *b, const ps_schema_object *v, size_t n)
{
	ps_buf_putc(b, '[');
	for (size_t i = 0; i < n; i++) {
		ps_buf_printf(b, "%s{\"kind\":%d,\"must_exist\":%s,\"what\":", i ? "," : "",
		              v[i].kind, v[i].must_exist ? "true" : "false");
		put_str(b, v[i].what);
		ps_buf_puts(b, ",\"sql\":");
		put_str(b, v[i].sql);
		ps_buf_putc(b, '}');
	}
	ps_buf_putc(b, ']');
}

static void put_def(ps_buf *b, const ps_table_def *def, const ps_key_bound *bounds,
                    size_t nbounds)
{
	const ps_table *t = def->table;
	char ri[2] = {t->replica_identity, '\0'};

	ps_buf_puts(b, "{\"table\":");
	put_qualified(b, t);
	ps_buf_printf(b, ",\"def\":{\"oid\":%u,\"engine\":", t->id);
	put_str(b, def->engine);
	ps_buf_puts(b, ",\"replica_identity\":");
	put_str(b, ri);
	ps_buf_printf(b, ",\"has_primary_key\":%s,\"estimated_rows\":%lld,\"estimated_bytes\":%lld",
	              def->has_primary_key ? "true" : "false", (long long)def->estimated_rows,
	              (long long)def->estimated_bytes);
	ps_buf_puts(b, ",\"columns\":[");
	for (int i = 0; i < t->ncolumns; i++) {
		ps_buf_puts(b, i ? "," : "");
		put_column(b, t, &def->columns[i], i);
	}
	ps_buf_puts(b, "],\"key\":");
	for (int i = 0, done = 0; i <= def->nconstraints && !done; i++) {
		if (i == def->nconstraints) {
			ps_buf_puts(b, "[]");
		} else if (def->constraints[i].kind == PS_CONSTRAINT_PRIMARY && def->has_primary_key) {
			put_col_names(b, t, def->constraints[i].cols, def->constraints[i].ncols);
			done = 1;
		}
	}
	ps_buf_puts(b, ",\"constraints\":[");
	for (int i = 0; i < def->nconstraints; i++) {
		const ps_constraint_def *k = &def->constraints[i];
		char kind[2] = {k->kind, '\0'};

		ps_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		put_str(b, k->name);
		ps_buf_puts(b, ",\"kind\":");
		put_str(b, kind);
		ps_buf_puts(b, ",\"sql\":");
		put_str(b, k->sql);
		ps_buf_puts(b, ",\"cols\":");
		put_col_names(b, t, k->cols, k->ncols);
		ps_buf_putc(b, '}');
	}
	ps_buf_puts(b, "],\"requires\":");
	put_objects(b, def->requires, def->nrequires);
	ps_buf_printf(b, ",\"ngenerated\":%d,\"npartitions\":%d,\"identity_index\":",
	              def->ngenerated, def->npartitions);
	put_str(b, def->identity_index);
	ps_buf_printf(b, ",\"insert_only\":%s", def->insert_only ? "true" : "false");
	ps_buf_puts(b, ",\"bounds\":[");
	for (size_t i = 0; i < nbounds; i++) {
		ps_buf_puts(b, i ? ",[" : "[");
		for (int k = 0; k < bounds[i].nvalues; k++) {
			ps_buf_puts(b, k ? "," : "");
			put_str(b, bounds[i].values[k]);
		}
		ps_buf_putc(b, ']');
	}
	ps_buf_puts(b, "]}}\n");
}

/* --- copying ------------------------------------------------------------- */

static void keep_error(dump *d, const ps_error *err)
{
	pthread_mutex_lock(&d->err_lock);
	if (!atomic_exchange(&d->failed, true))
		d->first_error = *err;
	pthread_mutex_unlock(&d->err_lock);
}

static int on_row(void *ctx, ps_table *t, const ps_value *values, ps_error *err)
{
	worker *w = ctx;

	if (atomic_load(&w->d->failed))
		return ps_error_set(err, PS_ESTOPPED, "another worker failed");
	if (w->d->fail_after >= 0 && w->unit_rows >= w->d->fail_after)
		return ps_error_set(err, PS_EFAULT, "SNAPDUMP_FAIL_AFTER: failing on row %ld",
		                    w->unit_rows + 1);
	w->unit_rows++;
	ps_buf_puts(&w->line, "{\"table\":");
	put_qualified(&w->line, t);
	ps_buf_printf(&w->line, ",\"unit\":%d,\"row\":[", w->u->index);
	for (int i = 0; i < t->ncolumns; i++) {
		ps_buf_puts(&w->line, i ? "," : "");
		if (values[i].kind == PS_VALUE_TEXT)
			ps_json_append_string(&w->line, values[i].data, values[i].len);
		else
			ps_buf_puts(&w->line, "null");
	}
	if (ps_buf_puts(&w->line, "]}\n") != PS_OK)
		return ps_error_set(err, PS_ETOOBIG, "row too big to print");
	emit(w->d, &w->line);
	atomic_fetch_add(&w->d->rows, 1);
	return PS_OK;
}

static void *work(void *arg)
{
	dump *d = arg;
	worker w = {.d = d};
	ps_copier *copier = NULL;
	ps_error err;
	int rc;

	ps_error_clear(&err);
	ps_buf_init(&w.line, (size_t)256 << 20);
	rc = ps_src_copy_open(&d->src, d->snapshot, &copier, &err);
	while (rc == PS_OK && !atomic_load(&d->failed)) {
		size_t i = atomic_fetch_add(&d->next_unit, 1);

		if (i >= d->nunits)
			break;
		w.u = &d->units[i];
		w.unit_rows = 0;
		rc = ps_src_copy_unit(&d->src, copier, w.u->def, &w.u->range, on_row, &w, &err);
	}
	if (rc != PS_OK)
		keep_error(d, &err);
	ps_src_copy_close(&d->src, copier);
	ps_buf_free(&w.line);
	return NULL;
}

/* --- setup --------------------------------------------------------------- */

/* Splits "a,b,c" into at most MAX_PATTERNS patterns, in place. */
static size_t split_patterns(char *list, const char **out)
{
	size_t n = 0;
	char *p = list;

	while (p && *p && n < MAX_PATTERNS) {
		char *comma = strchr(p, ',');

		if (comma)
			*comma = '\0';
		if (*p)
			out[n++] = p;
		p = comma ? comma + 1 : NULL;
	}
	return n;
}

static int wait_for_file(const char *path, ps_error *err)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	time_t deadline = time(NULL) + PAUSE_TIMEOUT_S;

	while (access(path, F_OK) != 0) {
		if (time(NULL) > deadline)
			return ps_error_set(err, PS_ETIMEOUT, "%s did not appear within %d s", path,
			                    PAUSE_TIMEOUT_S);
		nanosleep(&tick, NULL);
	}
	return PS_OK;
}

/* Writes text to path.ready (through a temporary name, so a reader never
 * sees half of it), then waits for path. */
static int pause_point(const char *path, const char *text, ps_error *err)
{
	char ready[4096], tmp[4200];
	FILE *f;

	snprintf(ready, sizeof(ready), "%s.ready", path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
	f = fopen(tmp, "w");
	if (!f)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot write %s", tmp);
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, ready) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot write %s", ready);
	return wait_for_file(path, err);
}

/* Describes and splits; fills d->units (one per range) and prints the defs. */
static int plan(dump *d, int64_t chunk_rows, ps_table_def ***defs, size_t *ndefs,
                ps_key_bound ***bounds, size_t **nbounds, ps_error *err)
{
	ps_buf line;
	size_t cap = 0;
	int rc;

	ps_buf_init(&line, (size_t)64 << 20);
	rc = ps_src_describe(&d->src, defs, ndefs, err);
	if (rc == PS_OK) {
		*bounds = calloc(*ndefs + 1, sizeof(**bounds));
		*nbounds = calloc(*ndefs + 1, sizeof(**nbounds));
		if (!*bounds || !*nbounds)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == PS_OK && i < *ndefs; i++) {
		rc = ps_src_split(&d->src, (*defs)[i], chunk_rows, &(*bounds)[i], &(*nbounds)[i], err);
		if (rc == PS_OK) {
			put_def(&line, (*defs)[i], (*bounds)[i], (*nbounds)[i]);
			emit(d, &line);
			cap += (*nbounds)[i] + 1;
		}
	}
	if (rc == PS_OK) {
		d->units = calloc(cap + 1, sizeof(unit));
		if (!d->units)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == PS_OK && i < *ndefs; i++) {
		const ps_key_bound *b = (*bounds)[i];
		size_t nb = (*nbounds)[i];

		for (size_t k = 0; k <= nb; k++) {
			unit *u = &d->units[d->nunits++];

			u->def = (*defs)[i];
			u->index = (int)k;
			u->range.lower = k > 0 ? &b[k - 1] : NULL;
			u->range.upper = k < nb ? &b[k] : NULL;
		}
	}
	ps_buf_free(&line);
	return rc;
}

static int copy_all(dump *d, ps_error *err)
{
	pthread_t threads[NWORKERS];
	int started = 0;

	for (int i = 0; i < NWORKERS; i++) {
		if (pthread_create(&threads[i], NULL, work, d) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (started == 0)
		return ps_error_set(err, PS_ERR, "cannot start worker threads");
	if (atomic_load(&d->failed)) {
		*err = d->first_error;
		return err->code ? err->code : PS_ERR;
	}
	return PS_OK;
}

typedef struct options {
	const char *url;
	const char *patterns[MAX_PATTERNS];
	size_t npatterns;
	int64_t chunk_rows;
	bool export_mode;
	const char *pause_file;
	int schema;                   /* --schema: ps_schema_mode */
	bool after;                   /* --after */
} options;

static void usage(void)
{
	fprintf(stderr, "usage: snapdump URL [--chunk-rows N] [--tables pat,...] [--export] "
	        "[--schema tables|full|bare] [--after]\n");
}

static int parse_args(int argc, char **argv, options *o)
{
	o->patterns[0] = "*";
	o->npatterns = 1;
	o->chunk_rows = 100000;
	o->pause_file = getenv("SNAPDUMP_PAUSE_FILE");
	for (int i = 1; i < argc; i++) {
		char *end = NULL;

		if (strcmp(argv[i], "--chunk-rows") == 0 && i + 1 < argc) {
			errno = 0;
			o->chunk_rows = strtoll(argv[++i], &end, 10);
			if (errno || *end || o->chunk_rows <= 0)
				return PS_EINVAL;
		} else if (strcmp(argv[i], "--tables") == 0 && i + 1 < argc) {
			o->npatterns = split_patterns(argv[++i], o->patterns);
		} else if (strcmp(argv[i], "--export") == 0) {
			o->export_mode = true;
		} else if (strcmp(argv[i], "--after") == 0) {
			o->after = true;
		} else if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc) {
			i++;
			o->schema = strcmp(argv[i], "full") == 0 ? PS_SCHEMA_FULL
			          : strcmp(argv[i], "bare") == 0 ? PS_SCHEMA_BARE : PS_SCHEMA_TABLES;
		} else if (!o->url && argv[i][0] != '-') {
			o->url = argv[i];
		} else {
			return PS_EINVAL;
		}
	}
	return (o->url && o->npatterns > 0) ? PS_OK : PS_EINVAL;
}

/* The snapshot the copies use (prepare's, or with --export a new one),
 * announced on stdout and, at the pause point, in the ready file. */
static int choose_snapshot(dump *d, const options *o, const ps_prepare_result *res,
                           char *exported, size_t exported_len, ps_error *err)
{
	char point[PS_POSITION_MAX];
	ps_buf info;
	int rc = PS_OK;

	ps_buf_init(&info, 1 << 16);
	ps_buf_printf(&info, "{\"prepare\":{\"created\":%s,\"point\":", res->created ? "true" : "false");
	put_str(&info, res->start_position);
	ps_buf_puts(&info, ",\"snapshot\":");
	put_str(&info, res->snapshot);
	ps_buf_printf(&info, ",\"ntables\":%zu}}\n", res->ntables);
	d->snapshot = res->snapshot;
	if (o->export_mode) {
		rc = ps_src_snapshot_release(&d->src, err);
		if (rc == PS_OK)
			rc = ps_src_snapshot_export(&d->src, exported, exported_len, point, sizeof(point),
			                            err);
		if (rc != PS_OK)
			goto cleanup;
		ps_buf_puts(&info, "{\"export\":{\"name\":");
		put_str(&info, exported);
		ps_buf_puts(&info, ",\"point\":");
		put_str(&info, point);
		ps_buf_puts(&info, "}}\n");
		d->snapshot = exported;
	}
	fputs(info.data, stdout);
	fflush(stdout);
	if (o->pause_file)
		rc = pause_point(o->pause_file, info.data, err);
cleanup:
	ps_buf_free(&info);
	return rc;
}

typedef struct plan_out {
	ps_table_def **defs;
	size_t ndefs;
	ps_key_bound **bounds;
	size_t *nbounds;
} plan_out;

static void plan_free(plan_out *p)
{
	for (size_t i = 0; i < p->ndefs; i++) {
		for (size_t k = 0; p->bounds && k < p->nbounds[i]; k++)
			ps_key_bound_clear(&p->bounds[i][k]);
		if (p->bounds)
			free(p->bounds[i]);
		ps_table_def_free(p->defs[i]);
	}
	free(p->defs);
	free(p->bounds);
	free(p->nbounds);
}

/* Everything after open: prepare, snapshot, plan, copy, release. */
static int run(dump *d, const options *o, plan_out *plan_, ps_error *err)
{
	ps_prepare_result res;
	char exported[64];
	int rc;

	if (!ps_src_can_snapshot(&d->src))
		return ps_error_set(err, PS_EINVAL, "source %s has no initial load", d->src.ops->name);
	rc = ps_src_prepare(&d->src, PS_PREPARE_RECREATE, &res, err);
	if (rc == PS_OK)
		rc = choose_snapshot(d, o, &res, exported, sizeof(exported), err);
	if (rc == PS_OK)
		rc = plan(d, o->chunk_rows, &plan_->defs, &plan_->ndefs, &plan_->bounds,
		          &plan_->nbounds, err);
	if (rc == PS_OK)
		rc = copy_all(d, err);
	if (rc == PS_OK)
		rc = ps_src_snapshot_release(&d->src, err);
	if (rc == PS_OK && o->after) {
		ps_schema *after = NULL;
		ps_buf b;

		rc = ps_src_schema_after_load(&d->src, &after, err);
		ps_buf_init(&b, 64u << 20);
		ps_buf_puts(&b, "{\"after\":");
		put_objects(&b, after ? after->objects : NULL, after ? after->n : 0);
		ps_buf_puts(&b, "}\n");
		if (rc == PS_OK)
			fputs(b.data, stdout);
		ps_buf_free(&b);
		ps_schema_free(after);
	}
	if (rc == PS_OK)
		printf("{\"done\":{\"units\":%zu,\"rows\":%lld}}\n", d->nunits,
		       (long long)atomic_load(&d->rows));
	return rc;
}

int main(int argc, char **argv)
{
	static dump d;
	const char *fail_after = getenv("SNAPDUMP_FAIL_AFTER");
	options o = {0};
	plan_out planned = {0};
	ps_source_config cfg = {0};
	const ps_source_ops *ops = NULL;
	char slot[64], msg[2048], done[512];
	json_t *src_options = NULL;
	ps_url parsed;
	ps_error err;
	int rc;

	if (parse_args(argc, argv, &o) != PS_OK) {
		usage();
		return 2;
	}
	d.fail_after = fail_after ? strtol(fail_after, NULL, 10) : -1;
	pthread_mutex_init(&d.out_lock, NULL);
	pthread_mutex_init(&d.err_lock, NULL);
	ps_log_configure(PS_LOG_INFO, PS_LOG_TEXT);
	ps_error_clear(&err);
	snprintf(slot, sizeof(slot), "snapdump_%ld", (long)getpid());
	rc = ps_url_parse(&parsed, o.url, &err);
	if (rc == PS_OK) {
		ops = ps_plugin_source_for(parsed.scheme_name, &err);
		rc = ops ? PS_OK : err.code;
	}
	cfg.job_name = "snapdump";
	cfg.url = o.url;
	src_options = json_pack("{s:s, s:s}", "slot", slot, "publication", slot);
	cfg.options = src_options;
	cfg.include = o.patterns;
	cfg.ninclude = o.npatterns;
	cfg.want_snapshot = true;
	cfg.schema = o.schema;
	if (rc == PS_OK)
		rc = ps_src_open(&d.src, ops, &cfg, &err);
	if (rc == PS_OK) {
		ps_error drop_err;

		rc = run(&d, &o, &planned, &err);
		ps_error_clear(&drop_err);
		if (ps_src_drop(&d.src, done, sizeof(done), &drop_err) != PS_OK) {
			if (rc == PS_OK) {          /* reported below */
				err = drop_err;
				rc = drop_err.code;
			} else {                    /* reported now; the first error below */
				ps_error_format(&drop_err, msg, sizeof(msg));
				fprintf(stderr, "snapdump: dropping slot and publication: %s\n", msg);
			}
		}
		ps_src_close(&d.src);
	}
	if (rc != PS_OK) {
		ps_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "snapdump: %s\n", msg);
	}
	plan_free(&planned);
	free(d.units);
	json_decref(src_options);
	return rc == PS_OK ? 0 : 1;
}
