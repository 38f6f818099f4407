/*
 * side_sqlite.c — reading (and repairing) an SQLite target.
 *
 * Values come back in PostgreSQL's text form, undoing what the SQLite sink
 * did on the way in (docs/types-sqlite.md): an INTEGER in a boolean column
 * is "t"/"f", a BLOB is "\x" and hex, a REAL is printed with 17 significant
 * digits (canon.c then compares the double it stands for). Key bounds and
 * repaired rows go in through the sink's own conversion
 * (ps_typemap_sqlite_convert), so they are stored exactly as a load would
 * have stored them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/cmp_internal.h"
#include "sink/sqlite/sqlite_typemap.h"

#define SQL_LIMIT ((size_t)64 << 20)

static int lite_fail(cmp_end *e, const char *what, const cmp_table *t, ps_error *err)
{
	ps_error_set(err, PS_ESERVER, "%s: %s", what, sqlite3_errmsg(e->lite));
	if (t)
		ps_error_add_context(err, "target table %s", t->target);
	return PS_ESERVER;
}

static int prepare(cmp_end *e, const ps_buf *b, sqlite3_stmt **st, const cmp_table *t,
                   ps_error *err)
{
	*st = NULL;
	if (!b->data)
		return ps_error_set(err, PS_ENOMEM, "out of memory building a statement");
	if (sqlite3_prepare_v2(e->lite, b->data, (int)b->len, st, NULL) != SQLITE_OK)
		return lite_fail(e, "preparing a statement", t, err);
	return PS_OK;
}

/* Binds PostgreSQL text v to parameter i as the column's storage dictates.
 * scratch receives a BLOB's bytes (SQLITE_TRANSIENT copies them). */
static int bind_text(cmp_end *e, sqlite3_stmt *st, int i, const cmp_table *t, int col,
                     const char *v, ps_error *err)
{
	ps_value val = {PS_VALUE_TEXT, 0, v};
	ps_sqlite_datum d;
	unsigned char *scratch = NULL;
	const char *why = NULL;
	int rc = SQLITE_OK;

	if (!v)
		return sqlite3_bind_null(st, i) == SQLITE_OK ? PS_OK
		       : lite_fail(e, "binding a value", t, err);
	val.len = (uint32_t)strlen(v);
	scratch = malloc(ps_typemap_sqlite_scratch(t->storage[col], &val) + 1);
	if (!scratch)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (ps_typemap_sqlite_convert(t->storage[col], &val, scratch, &d, &why) != PS_OK) {
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
	return rc == SQLITE_OK ? PS_OK : lite_fail(e, "binding a value", t, err);
}

/* The current row of st (columns in t's order) into out. */
static int read_row(cmp_end *e, sqlite3_stmt *st, const cmp_table *t, ps_buf *tmp,
                    cmp_rows *out, uint64_t hash[2], ps_buf *scratch, ps_error *err)
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
	if (hash) {
		ps__cmp_row_hash(t, vals, lens, scratch, hash);
		return PS_OK;
	}
	(void)e;
	return ps__cmp_rows_add(out, t, vals, lens, err);
}

static void put_cols(ps_buf *b, const cmp_table *t)
{
	for (int i = 0; i < t->ncols; i++)
		ps_buf_printf(b, "%s%s", i ? ", " : "", t->qcols[i]);
}

static void put_key_tuple(ps_buf *b, const cmp_table *t)
{
	ps_buf_putc(b, '(');
	for (int k = 0; k < t->nkey; k++)
		ps_buf_printf(b, "%s%s", k ? ", " : "", t->qcols[t->key[k]]);
	ps_buf_putc(b, ')');
}

static void put_qmarks(ps_buf *b, int n)
{
	ps_buf_putc(b, '(');
	for (int k = 0; k < n; k++)
		ps_buf_puts(b, k ? ", ?" : "?");
	ps_buf_putc(b, ')');
}

static int step_rows(cmp_end *e, sqlite3_stmt *st, const cmp_table *t, cmp_rows *out,
                     ps_error *err)
{
	ps_buf tmp;
	int rc = PS_OK, s;

	ps_buf_init(&tmp, CMP_VALUE_MAX);
	while (rc == PS_OK && (s = sqlite3_step(st)) == SQLITE_ROW)
		rc = read_row(e, st, t, &tmp, out, NULL, NULL, err);
	if (rc == PS_OK && s != SQLITE_DONE)
		rc = lite_fail(e, "reading rows", t, err);
	ps_buf_free(&tmp);
	return rc;
}

int ps__cmp_lite_count(cmp_end *e, const cmp_table *t, int64_t *n, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_printf(&b, "SELECT count(*) FROM %s", t->qtarget);
	rc = prepare(e, &b, &st, t, err);
	if (rc == PS_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			*n = sqlite3_column_int64(st, 0);
		else
			rc = lite_fail(e, "counting rows", t, err);
	}
	sqlite3_finalize(st);
	ps_buf_free(&b);
	return rc;
}

int ps__cmp_lite_fetch_range(cmp_end *e, const cmp_table *t, const cmp_bound *lo,
                             const cmp_bound *hi, cmp_rows *out, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b;
	int rc, np = 0;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", t->qtarget);
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
	for (int k = 0; k < t->nkey; k++)
		ps_buf_printf(&b, "%s%s", k ? ", " : "", t->qcols[t->key[k]]);
	rc = prepare(e, &b, &st, t, err);
	for (int k = 0; rc == PS_OK && lo && k < t->nkey; k++)
		rc = bind_text(e, st, ++np, t, t->key[k], lo->v[k], err);
	for (int k = 0; rc == PS_OK && hi && k < t->nkey; k++)
		rc = bind_text(e, st, ++np, t, t->key[k], hi->v[k], err);
	if (rc == PS_OK)
		rc = step_rows(e, st, t, out, err);
	sqlite3_finalize(st);
	ps_buf_free(&b);
	return rc;
}

static void put_key_where(ps_buf *b, const cmp_table *t)
{
	for (int k = 0; k < t->nkey; k++)
		ps_buf_printf(b, "%s%s = ?", k ? " AND " : " WHERE ", t->qcols[t->key[k]]);
}

int ps__cmp_lite_fetch_keys(cmp_end *e, const cmp_table *t, char ***keys, size_t nkeys,
                            cmp_rows *out, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", t->qtarget);
	put_key_where(&b, t);
	rc = prepare(e, &b, &st, t, err);
	for (size_t i = 0; rc == PS_OK && i < nkeys; i++) {
		sqlite3_reset(st);
		for (int k = 0; rc == PS_OK && k < t->nkey; k++)
			rc = bind_text(e, st, k + 1, t, t->key[k], keys[i][k], err);
		if (rc == PS_OK)
			rc = step_rows(e, st, t, out, err);
	}
	sqlite3_finalize(st);
	ps_buf_free(&b);
	return rc;
}

int ps__cmp_lite_multiset(cmp_end *e, const cmp_table *t, int64_t *count, uint64_t sum[2],
                          ps_error *err)
{
	sqlite3_stmt *st = NULL;
	ps_buf b, tmp, scratch;
	int rc, s = SQLITE_DONE;

	*count = 0;
	sum[0] = sum[1] = 0;
	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_init(&tmp, CMP_VALUE_MAX);
	ps_buf_init(&scratch, CMP_VALUE_MAX);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", t->qtarget);
	rc = prepare(e, &b, &st, t, err);
	while (rc == PS_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t h[2];
		rc = read_row(e, st, t, &tmp, NULL, h, &scratch, err);
		sum[0] += h[0];
		sum[1] += h[1];
		++*count;
	}
	if (rc == PS_OK && s != SQLITE_DONE)
		rc = lite_fail(e, "reading rows", t, err);
	sqlite3_finalize(st);
	ps_buf_free(&scratch);
	ps_buf_free(&tmp);
	ps_buf_free(&b);
	return rc;
}

static int run_stmt(cmp_end *e, sqlite3_stmt *st, const cmp_table *t, const char *what,
                    ps_error *err)
{
	int s = sqlite3_step(st);

	sqlite3_reset(st);
	return s == SQLITE_DONE ? PS_OK : lite_fail(e, what, t, err);
}

int ps__cmp_lite_repair(cmp_end *e, const cmp_table *t, char ***del, size_t ndel,
                        const cmp_row *const *put, size_t nput, ps_error *err)
{
	sqlite3_stmt *sdel = NULL, *sins = NULL;
	bool open = false;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_printf(&b, "DELETE FROM %s", t->qtarget);
	put_key_where(&b, t);
	rc = prepare(e, &b, &sdel, t, err);
	if (rc == PS_OK) {
		ps_buf_reset(&b);
		ps_buf_printf(&b, "INSERT INTO %s (", t->qtarget);
		put_cols(&b, t);
		ps_buf_puts(&b, ") VALUES ");
		put_qmarks(&b, t->ncols);
		rc = prepare(e, &b, &sins, t, err);
	}
	if (rc == PS_OK) {
		if (sqlite3_exec(e->lite, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			rc = lite_fail(e, "starting the repair transaction", t, err);
		open = rc == PS_OK;
	}
	for (size_t i = 0; rc == PS_OK && i < ndel + nput; i++) {
		const cmp_row *r = i < ndel ? NULL : put[i - ndel];
		for (int k = 0; rc == PS_OK && k < t->nkey; k++)
			rc = bind_text(e, sdel, k + 1, t, t->key[k],
			               r ? r->val[t->key[k]] : del[i][k], err);
		if (rc == PS_OK)
			rc = run_stmt(e, sdel, t, "deleting a row", err);
		for (int c = 0; rc == PS_OK && r && c < t->ncols; c++)
			rc = bind_text(e, sins, c + 1, t, c, r->val[c], err);
		if (rc == PS_OK && r)
			rc = run_stmt(e, sins, t, "inserting a row", err);
	}
	if (rc == PS_OK) {
		if (sqlite3_exec(e->lite, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			rc = lite_fail(e, "committing the repair", t, err);
		else
			open = false;
	}
	if (open)
		sqlite3_exec(e->lite, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(sdel);
	sqlite3_finalize(sins);
	ps_buf_free(&b);
	return rc;
}

int ps__cmp_lite_checkpoint(cmp_end *e, const char *job, char **body, bool *found,
                            ps_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = PS_OK, s;

	*body = NULL;
	*found = false;
	if (sqlite3_prepare_v2(e->lite, "SELECT body FROM _penstock_checkpoint WHERE job = ?", -1,
	                       &st, NULL) != SQLITE_OK) {
		/* no checkpoint table: no job has written here */
		sqlite3_finalize(st);
		return PS_OK;
	}
	sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*body = strdup((const char *)sqlite3_column_text(st, 0));
		if (!*body)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		*found = *body != NULL;
	} else if (s != SQLITE_ROW && s != SQLITE_DONE) {
		rc = lite_fail(e, "reading _penstock_checkpoint", NULL, err);
	}
	sqlite3_finalize(st);
	return rc;
}

int ps__cmp_lite_columns(cmp_end *e, const char *table, char ***names, int *n, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	int rc = PS_OK, cap = 0, s;
	ps_buf b;

	*names = NULL;
	*n = 0;
	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "PRAGMA table_info(");
	ps__cmp_quote(&b, table);
	ps_buf_putc(&b, ')');
	rc = prepare(e, &b, &st, NULL, err);
	while (rc == PS_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
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
