/*
 * side_sqlite.c — the SQLite side of compare (cmp_side.h): a target, the
 * file a job with an sqlite:// target writes.
 *
 * Naming is the SQLite sink's (docs/types-sqlite.md): public.t is the table
 * t, s.t is the table "s.t"; column names match case-insensitively, as
 * SQLite resolves them. Each column's storage class comes from the source
 * column's type through the sink's own type map (ps_typemap_sqlite).
 *
 * Values come back in the canonical text form, undoing what the sink did on
 * the way in: an INTEGER in a boolean column is "t"/"f", a BLOB is "\x" and
 * hex, a REAL is printed with 17 significant digits (canon.c then compares
 * the double it stands for). Key bounds and repaired rows go in through the
 * sink's conversion (ps_typemap_sqlite_convert), so they are stored exactly
 * as a load would have stored them.
 *
 * SQLite orders text by its bytes (CMP_SIDE_BYTE_ORDER) and computes no
 * digest: the driver reads each range from both sides and compares in C.
 *
 * Per-table data (t->side[CMP_TARGET]): the quoted name and the storage
 * class of each column.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compare/cmp_side.h"
#include "penstock/change.h"
#include "sink/sqlite/sqlite_typemap.h"

#define SQL_LIMIT ((size_t)64 << 20)

typedef struct lite_side {
	sqlite3 *db;
} lite_side;

typedef struct lite_table {
	char *qname;            /* "t" or "s.t", quoted */
	uint8_t *storage;       /* ps_sqlite_storage of each column */
} lite_table;

static sqlite3 *db_of(const cmp_side *s)
{
	return ((const lite_side *)s->impl)->db;
}

static const lite_table *table_of(const cmp_side *s, const cmp_table *t)
{
	return t->side[s->role].data;
}

static void lite_table_free(void *p)
{
	lite_table *lt = p;

	if (lt) {
		free(lt->qname);
		free(lt->storage);
	}
	free(lt);
}

static int lite_fail(cmp_side *s, const char *what, const cmp_table *t, ps_error *err)
{
	ps_error_set(err, PS_ESERVER, "%s: %s", what, sqlite3_errmsg(db_of(s)));
	if (t)
		ps_error_add_context(err, "%s table %s", s->what, t->target);
	return PS_ESERVER;
}

static int prepare(cmp_side *s, const ps_buf *b, sqlite3_stmt **st, const cmp_table *t,
                   ps_error *err)
{
	*st = NULL;
	if (!b->data)
		return ps_error_set(err, PS_ENOMEM, "out of memory building a statement");
	if (sqlite3_prepare_v2(db_of(s), b->data, (int)b->len, st, NULL) != SQLITE_OK)
		return lite_fail(s, "preparing a statement", t, err);
	return PS_OK;
}

/* Binds canonical text v to parameter i as the column's storage dictates.
 * scratch receives a BLOB's bytes (SQLITE_TRANSIENT copies them). */
static int bind_text(cmp_side *s, sqlite3_stmt *st, int i, const cmp_table *t, int col,
                     const char *v, ps_error *err)
{
	uint8_t storage = table_of(s, t)->storage[col];
	ps_value val = {PS_VALUE_TEXT, 0, v};
	ps_sqlite_datum d;
	unsigned char *scratch = NULL;
	const char *why = NULL;
	int rc = SQLITE_OK;

	if (!v)
		return sqlite3_bind_null(st, i) == SQLITE_OK ? PS_OK
		       : lite_fail(s, "binding a value", t, err);
	val.len = (uint32_t)strlen(v);
	scratch = malloc(ps_typemap_sqlite_scratch(storage, &val) + 1);
	if (!scratch)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (ps_typemap_sqlite_convert(storage, &val, scratch, &d, &why) != PS_OK) {
		free(scratch);
		return ps_error_set(err, PS_EINVAL, "target table %s: column %s: value %s",
		                    t->target, t->cols[col], why ? why : "cannot be converted");
	}
	switch (d.type) {
	case PS_DATUM_NULL: rc = sqlite3_bind_null(st, i); break;
	case PS_DATUM_INTEGER: rc = sqlite3_bind_int64(st, i, d.i); break;
	case PS_DATUM_REAL: rc = sqlite3_bind_double(st, i, d.r); break;
	case PS_DATUM_BLOB: rc = sqlite3_bind_blob64(st, i, d.p, d.n, SQLITE_TRANSIENT); break;
	default: rc = sqlite3_bind_text64(st, i, d.p, d.n, SQLITE_TRANSIENT, SQLITE_UTF8); break;
	}
	free(scratch);
	return rc == SQLITE_OK ? PS_OK : lite_fail(s, "binding a value", t, err);
}

/* The current row of st (columns in t's order), as canonical text, handed
 * to fn (with payload). */
static int read_row(sqlite3_stmt *st, const cmp_table *t, ps_buf *tmp, cmp_row_fn fn,
                    void *payload, ps_error *err)
{
	const char *vals[t->ncols > 0 ? t->ncols : 1];
	size_t lens[t->ncols > 0 ? t->ncols : 1], offs[t->ncols > 0 ? t->ncols : 1];
	int rc = PS_OK;

	ps_buf_reset(tmp);
	for (int c = 0; c < t->ncols && rc == PS_OK; c++) {
		int type = sqlite3_column_type(st, c);

		offs[c] = tmp->len;
		vals[c] = type == SQLITE_NULL ? NULL : "";
		if (type == SQLITE_INTEGER) {
			sqlite3_int64 n = sqlite3_column_int64(st, c);
			if (t->kind[c] == CMP_BOOL)
				rc = ps_buf_puts(tmp, n ? "t" : "f");
			else
				rc = ps_buf_printf(tmp, "%lld", (long long)n);
		} else if (type == SQLITE_FLOAT) {
			rc = ps_buf_printf(tmp, "%.17g", sqlite3_column_double(st, c));
		} else if (type == SQLITE_BLOB) {
			const unsigned char *p = sqlite3_column_blob(st, c);
			int n = sqlite3_column_bytes(st, c);
			rc = ps_buf_puts(tmp, "\\x");
			for (int i = 0; rc == PS_OK && i < n; i++)
				rc = ps_buf_printf(tmp, "%02x", p[i]);
		} else if (type == SQLITE_TEXT) {
			const unsigned char *p = sqlite3_column_text(st, c);
			rc = ps_buf_append(tmp, p, (size_t)sqlite3_column_bytes(st, c));
		}
		lens[c] = tmp->len - offs[c];
		/* keep every value NUL-separated in tmp */
		if (rc == PS_OK)
			rc = ps_buf_putc(tmp, '\0');
	}
	if (rc != PS_OK)
		return ps_error_set(err, rc, "target table %s: a row too large to read", t->target);
	for (int c = 0; c < t->ncols; c++)
		if (vals[c])
			vals[c] = tmp->data + offs[c];
	return fn(t, vals, lens, payload, err);
}

static int add_row(const cmp_table *t, const char *const *vals, const size_t *lens,
                   void *payload, ps_error *err)
{
	return ps__cmp_rows_add(payload, t, vals, lens, err);
}

static void put_cols(ps_buf *b, const cmp_table *t)
{
	for (int i = 0; i < t->ncols; i++) {
		if (i)
			ps_buf_puts(b, ", ");
		ps_sql_quote_ident(b, t->cols[i]);
	}
}

static void put_key_tuple(ps_buf *b, const cmp_table *t)
{
	ps_buf_putc(b, '(');
	for (int k = 0; k < t->nkey; k++) {
		if (k)
			ps_buf_puts(b, ", ");
		ps_sql_quote_ident(b, t->cols[t->key[k]]);
	}
	ps_buf_putc(b, ')');
}

static void put_qmarks(ps_buf *b, int n)
{
	ps_buf_putc(b, '(');
	for (int k = 0; k < n; k++)
		ps_buf_puts(b, k ? ", ?" : "?");
	ps_buf_putc(b, ')');
}

static void put_key_where(ps_buf *b, const cmp_table *t)
{
	for (int k = 0; k < t->nkey; k++) {
		ps_buf_puts(b, k ? " AND " : " WHERE ");
		ps_sql_quote_ident(b, t->cols[t->key[k]]);
		ps_buf_puts(b, " = ?");
	}
}

/* Steps st to the end, each row to fn. */
static int step_rows(cmp_side *s, sqlite3_stmt *st, const cmp_table *t, cmp_row_fn fn,
                     void *payload, ps_error *err)
{
	ps_buf tmp;
	int rc = PS_OK, step = SQLITE_DONE;

	ps_buf_init(&tmp, CMP_VALUE_MAX);
	while (rc == PS_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
		rc = read_row(st, t, &tmp, fn, payload, err);
	if (rc == PS_OK && step != SQLITE_DONE)
		rc = lite_fail(s, "reading rows", t, err);
	ps_buf_free(&tmp);
	return rc;
}

/* ==== open, close, the catalogue ========================================== */

static int lite_open(cmp_side *s, const char *url, const char *password, ps_error *err)
{
	lite_side *l = NULL;
	int rc;

	(void)password;
	rc = ps__cmp_side_parse_url(s, url, err);
	if (rc != PS_OK)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (sqlite3_open_v2(s->url.path, &l->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		rc = ps_error_set(err, PS_EINVAL, "--%s: cannot open SQLite database %s: %s", s->what,
		                  s->url.path, l->db ? sqlite3_errmsg(l->db) : "out of memory");
		sqlite3_close(l->db);
		free(l);
		return rc;
	}
	sqlite3_busy_timeout(l->db, 10000);
	s->impl = l;
	return PS_OK;
}

static void lite_close(cmp_side *s)
{
	lite_side *l = s->impl;

	if (l)
		sqlite3_close(l->db);
	free(l);
	s->impl = NULL;
}

/* Column names of a table (n = 0: no such table). */
static int table_columns(cmp_side *s, const char *table, char ***names, int *n, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	int rc = PS_OK, cap = 0, step;
	ps_buf b;

	*names = NULL;
	*n = 0;
	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "PRAGMA table_info(");
	ps_sql_quote_ident(&b, table);
	ps_buf_putc(&b, ')');
	rc = prepare(s, &b, &st, NULL, err);
	while (rc == PS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			char **nv = realloc(v, (size_t)(cap = cap ? cap * 2 : 16) * sizeof(*nv));
			if (!nv) {
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
				break;
			}
			v = nv;
		}
		v[*n] = strdup((const char *)sqlite3_column_text(st, 1));
		if (!v[*n]) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		++*n;
	}
	sqlite3_finalize(st);
	ps_buf_free(&b);
	if (rc != PS_OK) {
		for (int i = 0; i < *n; i++)
			free(v[i]);
		free(v);
		*n = 0;
		return rc;
	}
	*names = v;
	return PS_OK;
}

static int lite_map_table(cmp_side *s, cmp_table *t, bool *exists, bool *has_col, ps_error *err)
{
	lite_table *lt = NULL;
	char **names = NULL;
	int n = 0, rc;
	ps_buf q;

	/* the SQLite sink's naming: public.t -> t, s.t -> "s.t" */
	free(t->target);
	if (strcmp(t->schema, "public") == 0)
		t->target = strdup(t->name);
	else if (asprintf(&t->target, "%s.%s", t->schema, t->name) < 0)
		t->target = NULL;
	lt = calloc(1, sizeof(*lt));
	if (!t->target || !lt) {
		free(lt);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	ps__cmp_table_set_side(t, s->role, lt, lite_table_free);
	ps_buf_init(&q, 4096);
	ps_sql_quote_ident(&q, t->target);
	lt->qname = ps_buf_detach(&q);
	lt->storage = calloc((size_t)t->ncols + 1, 1);
	if (!lt->qname || !lt->storage)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int c = 0; c < t->ncols; c++) {
		ps_column col = {.name = t->cols[c], .type_id = t->type_id ? t->type_id[c] : 0,
		                 .type_mod = -1, .type_class = PS_TYPE_TEXT, .is_key = false};
		lt->storage[c] = ps_typemap_sqlite(t->engine, &col, NULL);
	}
	rc = table_columns(s, t->target, &names, &n, err);
	if (rc != PS_OK)
		return rc;
	*exists = n > 0;
	for (int c = 0; c < t->ncols; c++) {
		has_col[c] = false;
		for (int i = 0; i < n && !has_col[c]; i++)
			has_col[c] = names[i] && strcasecmp(names[i], t->cols[c]) == 0;
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return PS_OK;
}

/* ==== reading ============================================================= */

static int lite_count(cmp_side *s, const cmp_table *t, int64_t *n, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_printf(&b, "SELECT count(*) FROM %s", table_of(s, t)->qname);
	rc = prepare(s, &b, &st, t, err);
	if (rc == PS_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			*n = sqlite3_column_int64(st, 0);
		else
			rc = lite_fail(s, "counting rows", t, err);
	}
	sqlite3_finalize(st);
	ps_buf_free(&b);
	return rc;
}

static int lite_fetch_range(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                            const cmp_bound *hi, cmp_rows *out, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b;
	int rc, np = 0;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", table_of(s, t)->qname);
	if (lo) {
		ps_buf_puts(&b, " WHERE ");
		put_key_tuple(&b, t);
		ps_buf_puts(&b, " > ");
		put_qmarks(&b, t->nkey);
	}
	if (hi) {
		ps_buf_puts(&b, lo ? " AND " : " WHERE ");
		put_key_tuple(&b, t);
		ps_buf_puts(&b, " <= ");
		put_qmarks(&b, t->nkey);
	}
	ps_buf_puts(&b, " ORDER BY ");
	for (int k = 0; k < t->nkey; k++) {
		if (k)
			ps_buf_puts(&b, ", ");
		ps_sql_quote_ident(&b, t->cols[t->key[k]]);
	}
	rc = prepare(s, &b, &st, t, err);
	for (int k = 0; rc == PS_OK && lo && k < t->nkey; k++)
		rc = bind_text(s, st, ++np, t, t->key[k], lo->v[k], err);
	for (int k = 0; rc == PS_OK && hi && k < t->nkey; k++)
		rc = bind_text(s, st, ++np, t, t->key[k], hi->v[k], err);
	if (rc == PS_OK)
		rc = step_rows(s, st, t, add_row, out, err);
	sqlite3_finalize(st);
	ps_buf_free(&b);
	return rc;
}

/* One statement, run once per key (SQLite is in-process: no round trips). */
static int lite_fetch_keys(cmp_side *s, const cmp_table *t, char ***keys, size_t nkeys,
                           bool for_share, cmp_rows *out, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b;
	int rc;

	(void)for_share;   /* a target is never locked */
	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", table_of(s, t)->qname);
	put_key_where(&b, t);
	rc = prepare(s, &b, &st, t, err);
	for (size_t i = 0; rc == PS_OK && i < nkeys; i++) {
		sqlite3_reset(st);
		for (int k = 0; rc == PS_OK && k < t->nkey; k++)
			rc = bind_text(s, st, k + 1, t, t->key[k], keys[i][k], err);
		if (rc == PS_OK)
			rc = step_rows(s, st, t, add_row, out, err);
	}
	sqlite3_finalize(st);
	ps_buf_free(&b);
	return rc;
}

static int lite_scan(cmp_side *s, const cmp_table *t, cmp_row_fn fn, void *payload,
                     ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", table_of(s, t)->qname);
	rc = prepare(s, &b, &st, t, err);
	if (rc == PS_OK)
		rc = step_rows(s, st, t, fn, payload, err);
	sqlite3_finalize(st);
	ps_buf_free(&b);
	return rc;
}

/* ==== repair, the job's checkpoint ======================================== */

static int run_stmt(cmp_side *s, sqlite3_stmt *st, const cmp_table *t, const char *what,
                    ps_error *err)
{
	int step = sqlite3_step(st);

	sqlite3_reset(st);
	return step == SQLITE_DONE ? PS_OK : lite_fail(s, what, t, err);
}

static int lite_repair(cmp_side *s, const cmp_table *t, char ***del, size_t ndel,
                       const cmp_row *const *put, size_t nput, ps_error *err)
{
	sqlite3_stmt *sdel = NULL, *sins = NULL;
	bool open = false;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_printf(&b, "DELETE FROM %s", table_of(s, t)->qname);
	put_key_where(&b, t);
	rc = prepare(s, &b, &sdel, t, err);
	if (rc == PS_OK) {
		ps_buf_reset(&b);
		ps_buf_printf(&b, "INSERT INTO %s (", table_of(s, t)->qname);
		put_cols(&b, t);
		ps_buf_puts(&b, ") VALUES ");
		put_qmarks(&b, t->ncols);
		rc = prepare(s, &b, &sins, t, err);
	}
	if (rc == PS_OK) {
		if (sqlite3_exec(db_of(s), "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			rc = lite_fail(s, "starting the repair transaction", t, err);
		open = rc == PS_OK;
	}
	for (size_t i = 0; rc == PS_OK && i < ndel + nput; i++) {
		const cmp_row *r = i < ndel ? NULL : put[i - ndel];
		for (int k = 0; rc == PS_OK && k < t->nkey; k++)
			rc = bind_text(s, sdel, k + 1, t, t->key[k],
			               r ? r->val[t->key[k]] : del[i][k], err);
		if (rc == PS_OK)
			rc = run_stmt(s, sdel, t, "deleting a row", err);
		for (int c = 0; rc == PS_OK && r && c < t->ncols; c++)
			rc = bind_text(s, sins, c + 1, t, c, r->val[c], err);
		if (rc == PS_OK && r)
			rc = run_stmt(s, sins, t, "inserting a row", err);
	}
	if (rc == PS_OK) {
		if (sqlite3_exec(db_of(s), "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			rc = lite_fail(s, "committing the repair", t, err);
		else
			open = false;
	}
	if (open)
		sqlite3_exec(db_of(s), "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(sdel);
	sqlite3_finalize(sins);
	ps_buf_free(&b);
	return rc;
}

/* The SQLite sink's checkpoint table, when there is one. */
static int lite_checkpoint(cmp_side *s, const char *job, char **body, bool *found,
                           ps_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = PS_OK, step;

	*body = NULL;
	*found = false;
	if (sqlite3_prepare_v2(db_of(s), "SELECT body FROM _penstock_checkpoint WHERE job = ?", -1,
	                       &st, NULL) != SQLITE_OK) {
		/* no checkpoint table: no job has written here */
		sqlite3_finalize(st);
		return PS_OK;
	}
	sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*body = strdup((const char *)sqlite3_column_text(st, 0));
		if (!*body)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		*found = *body != NULL;
	} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = lite_fail(s, "reading _penstock_checkpoint", NULL, err);
	}
	sqlite3_finalize(st);
	return rc;
}

/* ==== the ops ============================================================= */

static const char *const lite_schemes[] = {"sqlite", NULL};

const cmp_side_ops ps__cmp_side_sqlite = {
	.version = CMP_SIDE_OPS_VERSION,
	.name = "SQLite",
	.schemes = lite_schemes,
	.roles = CMP_ROLE(CMP_TARGET),
	.flags = CMP_SIDE_BYTE_ORDER,
	.digest = NULL,
	.open = lite_open,
	.close = lite_close,
	.count = lite_count,
	.fetch_range = lite_fetch_range,
	.fetch_keys = lite_fetch_keys,
	.scan = lite_scan,
	.map_table = lite_map_table,
	.repair = lite_repair,
	.checkpoint = lite_checkpoint,
};
