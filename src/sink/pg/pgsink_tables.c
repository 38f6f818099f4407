/*
 * pgsink_tables.c — what the PostgreSQL sink knows about target tables, and
 * truncates.
 *
 * NOTES ON THE DESIGN
 *
 *  1. One entry per target table, keyed by schema and name,
 *     holding the quoted names of the source's columns as found in the
 *     target (matched by name), their target types, and the target's
 *     PRIMARY KEY (pg_index.indisprimary) as source column indexes — or,
 *     without one, its REPLICA IDENTITY USING INDEX index, which is unique
 *     on NOT NULL columns just the same. A new
 *     ps_table of the same relation (re-described mid-stream) with the same
 *     column names reuses the entry; different columns rebuild it. DDL on a
 *     table through this sink (table_prepare, table_finish) forgets it.
 *  2. Truncates of one source statement (same LSN and flags, consecutive)
 *     become one TRUNCATE a, b, ...: tables that reference each other can
 *     only be truncated together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/pgconn.h"

/* ==== table cache ========================================================= */

static void entry_free(pgs_table *t)
{
	pgs_stmt *st, *next;

	if (!t)
		return;
	for (st = t->stmts; st; st = next) {
		next = st->next;
		pgs_stmt_free(st);
	}
	for (int i = 0; t->qcol && i < t->ncols; i++)
		free(t->qcol[i]);
	for (int i = 0; t->coltype && i < t->ncols; i++)
		free(t->coltype[i]);
	for (int i = 0; t->basetype && i < t->ncols; i++)
		free(t->basetype[i]);
	free(t->basetype);
	free(t->qcol);
	free(t->coltype);
	free(t->key);
	free(t->is_pk);
	free(t->qname);
	ps_table_unref(t->src);
	free(t);
}

/* Unlinks t from the cache, deallocates its statements and frees it. */
static int entry_drop(ps_sink *s, pgs_table *t, ps_error *err)
{
	pgs_table **pp;
	int rc = PS_OK;

	for (pp = &s->tables; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	for (pgs_stmt *st = t->stmts; st && rc == PS_OK; st = st->next)
		rc = pgs_stmt_deallocate(s, st, err);
	entry_free(t);
	return rc;
}

void pgs_tables_free(ps_sink *s)
{
	pgs_table *t, *next;

	for (t = s->tables; t; t = next) {
		next = t->next;
		entry_free(t);
	}
	s->tables = NULL;
}

static bool same_names(const ps_table *a, const ps_table *b)
{
	return strcmp(a->schema, b->schema) == 0 && strcmp(a->name, b->name) == 0;
}

static bool same_columns(const ps_table *a, const ps_table *b)
{
	if (a->ncolumns != b->ncolumns)
		return false;
	for (int i = 0; i < a->ncolumns; i++)
		if (strcmp(a->columns[i].name, b->columns[i].name) != 0)
			return false;
	return true;
}

static char *quoted(PGconn *conn, const char *ident)
{
	ps_buf b;

	ps_buf_init(&b, 4096);
	if (pg_quote_ident(conn, &b, ident) != PS_OK) {
		ps_buf_free(&b);
		return NULL;
	}
	return ps_buf_detach(&b);
}

static const char *const CATALOG_SQL =
	"SELECT c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), "
	"       (SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n) "
	"        WHERE k.att = a.attnum), a.attgenerated <> '', "
	"       EXISTS (SELECT 1 FROM pg_catalog.pg_index u WHERE u.indrelid = c.oid "
	"               AND (u.indisunique OR u.indisexclusion) "
	"               AND u.indexrelid IS DISTINCT FROM i.indexrelid), "
	"       format_type(a.atttypid, NULL) "
	"FROM pg_catalog.pg_class c "
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	"JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
	"     AND NOT a.attisdropped "
	/* the key: the primary key, else the REPLICA IDENTITY USING INDEX index
	 * (unique, not partial, on NOT NULL columns) */
	"LEFT JOIN LATERAL (SELECT x.indexrelid, x.indkey FROM pg_catalog.pg_index x "
	"     WHERE x.indrelid = c.oid AND (x.indisprimary OR (x.indisreplident "
	"     AND c.relreplident = 'i')) ORDER BY x.indisprimary DESC LIMIT 1) i ON true "
	"WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') "
	"ORDER BY a.attnum";

/* Matches the source's columns to the target's (catalog rows in res). */
static int entry_fill(ps_sink *s, pgs_table *t, const PGresult *res, ps_error *err)
{
	const ps_table *src = t->src;
	int nrows = PQntuples(res);
	ps_buf missing;
	int rc = PS_OK;

	ps_buf_init(&missing, 4096);
	t->relkind = PQgetvalue(res, 0, 0)[0];
	t->other_unique = PQgetvalue(res, 0, 5)[0] == 't';
	for (int i = 0; i < t->ncols; i++) {
		int row = -1;

		for (int r = 0; r < nrows && row < 0; r++)
			if (strcmp(PQgetvalue(res, r, 1), src->columns[i].name) == 0)
				row = r;
		if (row < 0) {
			ps_buf_printf(&missing, "%s%s", missing.len ? ", " : "", src->columns[i].name);
			continue;
		}
		if (PQgetvalue(res, row, 4)[0] == 't') {
			rc = ps_error_set(err, PS_EINVAL, "column %s of %s.%s is a generated column "
			                  "in the target, so the source's values cannot be written "
			                  "to it", src->columns[i].name, src->schema, src->name);
			goto cleanup;
		}
		t->qcol[i] = quoted(s->conn, src->columns[i].name);
		t->coltype[i] = strdup(PQgetvalue(res, row, 2));
		t->basetype[i] = strdup(PQgetvalue(res, row, 6));
		if (!t->qcol[i] || !t->coltype[i] || !t->basetype[i]) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (missing.len) {
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s in the target has no column %s, "
		                  "which the source sends; add it to the target table",
		                  src->schema, src->name, missing.data);
		goto cleanup;
	}
	/* The primary key, in key order, as source column indexes. */
	for (int r = 0; r < nrows; r++) {
		int pos, col = -1;

		if (PQgetisnull(res, r, 3))
			continue;
		pos = (int)strtol(PQgetvalue(res, r, 3), NULL, 10) - 1;
		for (int i = 0; i < t->ncols && col < 0; i++)
			if (strcmp(PQgetvalue(res, r, 1), src->columns[i].name) == 0)
				col = i;
		if (col < 0) {
			rc = ps_error_set(err, PS_EINVAL, "primary key column %s of %s.%s in the "
			                  "target is not sent by the source, so rows cannot be "
			                  "found by key", PQgetvalue(res, r, 1), src->schema, src->name);
			goto cleanup;
		}
		if (pos < 0 || pos >= t->ncols) {
			rc = ps_error_set(err, PS_EPROTO, "primary key of %s.%s: bad position",
			                  src->schema, src->name);
			goto cleanup;
		}
		t->key[pos] = col;
		t->is_pk[col] = true;
		if (pos + 1 > t->nkey)
			t->nkey = pos + 1;
	}
cleanup:
	ps_buf_free(&missing);
	return rc;
}

static int entry_build(ps_sink *s, ps_table *src, pgs_table **out, ps_error *err)
{
	const char *params[2] = {src->schema, src->name};
	pgs_table *t = NULL;
	PGresult *res = NULL;
	ps_buf qn;
	int rc;

	*out = NULL;
	ps_buf_init(&qn, 4096);
	rc = pgs_exec(s, &res, err, "reading the target catalog", CATALOG_SQL, 2, params);
	if (rc != PS_OK)
		goto cleanup;
	if (PQntuples(res) == 0) {
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target; the "
		                  "initial load creates tables (see target.create_tables), or "
		                  "create it in the target first", src->schema, src->name);
		goto cleanup;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	t->src = ps_table_ref(src);
	t->ncols = src->ncolumns;
	t->qcol = calloc((size_t)t->ncols + 1, sizeof(char *));
	t->coltype = calloc((size_t)t->ncols + 1, sizeof(char *));
	t->basetype = calloc((size_t)t->ncols + 1, sizeof(char *));
	t->key = calloc((size_t)t->ncols + 1, sizeof(int));
	t->is_pk = calloc((size_t)t->ncols + 1, sizeof(bool));
	if (pg_quote_ident(s->conn, &qn, src->schema) == PS_OK && ps_buf_putc(&qn, '.') == PS_OK &&
	    pg_quote_ident(s->conn, &qn, src->name) == PS_OK)
		t->qname = ps_buf_detach(&qn);
	if (!t->qcol || !t->coltype || !t->basetype || !t->key || !t->is_pk || !t->qname) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = entry_fill(s, t, res, err);
	if (rc != PS_OK)
		goto cleanup;
	*out = t;
	t = NULL;
cleanup:
	entry_free(t);
	PQclear(res);
	ps_buf_free(&qn);
	return rc;
}

int pgs_table_get(ps_sink *s, ps_table *src, pgs_table **out, ps_error *err)
{
	pgs_table *t, *prev = NULL;
	int rc;

	*out = NULL;
	for (t = s->tables; t; prev = t, t = t->next) {
		if (t->src == src)
			break;
		if (!same_names(t->src, src))
			continue;
		if (same_columns(t->src, src)) {
			ps_table_unref(t->src);
			t->src = ps_table_ref(src);
			break;
		}
		rc = entry_drop(s, t, err);     /* re-described with other columns */
		if (rc != PS_OK)
			return rc;
		t = NULL;
		break;
	}
	if (t) {
		if (prev) {                     /* most recently used first */
			prev->next = t->next;
			t->next = s->tables;
			s->tables = t;
		}
		*out = t;
		return PS_OK;
	}
	rc = entry_build(s, src, &t, err);
	if (rc != PS_OK)
		return rc;
	t->next = s->tables;
	s->tables = t;
	*out = t;
	return PS_OK;
}

int pgs_table_forget(ps_sink *s, const char *schema, const char *name, ps_error *err)
{
	for (pgs_table *t = s->tables; t; t = t->next)
		if (strcmp(t->src->schema, schema) == 0 && strcmp(t->src->name, name) == 0)
			return entry_drop(s, t, err);
	return PS_OK;
}

/* ==== truncate ============================================================ */

int pgs_truncate_add(ps_sink *s, const ps_change *c, ps_error *err)
{
	pgs_table *t = NULL;
	int rc;

	if (s->ntrunc > 0 && (c->truncate_flags != s->trunc_flags || c->lsn == 0 ||
	                      c->lsn != s->trunc_lsn)) {
		rc = pgs_truncate_send(s, err);
		if (rc != PS_OK)
			return rc;
	}
	rc = pgs_table_get(s, c->table, &t, err);
	if (rc != PS_OK)
		return rc;
	if (s->ntrunc == 0) {
		ps_buf_reset(&s->trunc_sql);
		rc = ps_buf_puts(&s->trunc_sql, "TRUNCATE ");
		s->trunc_flags = c->truncate_flags;
		s->trunc_lsn = c->lsn;
		s->trunc_first = ps_table_ref(c->table);
	} else {
		rc = ps_buf_puts(&s->trunc_sql, ", ");
	}
	if (rc == PS_OK)
		rc = ps_buf_puts(&s->trunc_sql, t->qname);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "TRUNCATE statement too long");
	s->ntrunc++;
	return PS_OK;
}

int pgs_truncate_send(ps_sink *s, ps_error *err)
{
	int rc = PS_OK;

	if (s->ntrunc == 0)
		return PS_OK;
	if (s->trunc_flags & PS_TRUNCATE_RESTART_IDENTITY)
		rc = ps_buf_puts(&s->trunc_sql, " RESTART IDENTITY");
	if (rc == PS_OK && (s->trunc_flags & PS_TRUNCATE_CASCADE))
		rc = ps_buf_puts(&s->trunc_sql, " CASCADE");
	if (rc != PS_OK)
		rc = ps_error_set(err, rc, "TRUNCATE statement too long");
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc == PS_OK)
		rc = pgs_send_query(s, s->trunc_sql.data, 0, NULL, PGS_P_OTHER, s->trunc_first,
		                    s->ntrunc > 1 ? "truncate (with others) of" : "truncate of", err);
	s->ntrunc = 0;
	ps_table_unref(s->trunc_first);
	s->trunc_first = NULL;
	return rc;
}
