/*
 * mysink_tables.c — where a source table lands in a MySQL / MariaDB target,
 * and what the sink knows about it there.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Names. A MariaDB database is PostgreSQL's schema and database in one.
 *     A URL that names a database (mysql://host/app) puts every table there
 *     under its own name, whatever its source schema: public.orders becomes
 *     app.orders (the precheck refuses two selected tables of one name).
 *     A URL without a database (mysql://host/) puts each table in the
 *     database named like its source schema, created when missing; the
 *     checkpoint then lives in the database penstock. Compare's MariaDB side
 *     applies the same rule, from the URL alone.
 *  2. One cache entry per target table, keyed by database and name: the
 *     quoted names of the source's columns as found in the target (matched
 *     case-insensitively, as MariaDB does), how each is written and compared
 *     (mysink_typemap.c), the PRIMARY KEY as source column indexes, the
 *     other unique keys (re-processing must clear them, mysink_apply.c) and
 *     whether the table has triggers (net changes would reorder what they
 *     see). A new ps_table of the same relation with the same column names
 *     reuses the entry; different columns rebuild it. DDL on a table forgets it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/mysql/mysink.h"
#include "util/myconn.h"

/* ==== names =============================================================== */

void mys_target_names(const ps_sink *s, const char *schema, const char *name, char *db,
                      size_t db_len, char *table, size_t table_len)
{
	snprintf(db, db_len, "%s", s->per_schema ? schema : s->url.dbname);
	snprintf(table, table_len, "%s", name);
}

int mys_qualified(ps_buf *b, const char *db, const char *name)
{
	int rc = my_quote_ident(b, db);

	if (rc == PS_OK)
		rc = ps_buf_putc(b, '.');
	if (rc == PS_OK)
		rc = my_quote_ident(b, name);
	return rc;
}

/* ==== cache entries ======================================================= */

void mys_stmt_free(mys_stmt *st)
{
	if (!st)
		return;
	if (st->st)
		mysql_stmt_close(st->st);
	free(st->shape);
	free(st->params);
	free(st);
}

static void entry_free(mys_table *t)
{
	mys_stmt *st, *next;

	if (!t)
		return;
	for (st = t->stmts; st; st = next) {
		next = st->next;
		mys_stmt_free(st);
	}
	for (int i = 0; t->qcol && i < t->ncols; i++)
		free(t->qcol[i]);
	for (int i = 0; i < t->nuniq; i++) {
		free(t->uniq[i].name);
		free(t->uniq[i].cols);
	}
	free(t->uniq);
	free(t->qcol);
	free(t->col);
	free(t->key);
	free(t->is_pk);
	free(t->qname);
	free(t->db);
	free(t->name);
	ps_table_unref(t->src);
	free(t);
}

void mys_tables_free(ps_sink *s)
{
	mys_table *t, *next;

	for (t = s->tables; t; t = next) {
		next = t->next;
		entry_free(t);
	}
	s->tables = NULL;
}

bool mys_table_touched(const ps_sink *s, const char *db, const char *name)
{
	for (const mys_table *t = s->tables; t; t = t->next)
		if (t->touched && strcmp(t->db, db) == 0 && strcmp(t->name, name) == 0)
			return true;
	return false;
}

void mys_tables_untouch(ps_sink *s)
{
	for (mys_table *t = s->tables; t; t = t->next)
		t->touched = false;
}

void mys_table_forget(ps_sink *s, const char *db, const char *name)
{
	mys_table **pp = &s->tables;

	while (*pp) {
		mys_table *t = *pp;

		if (strcmp(t->db, db) == 0 && strcmp(t->name, name) == 0) {
			*pp = t->next;
			entry_free(t);
		} else {
			pp = &t->next;
		}
	}
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

/* The source column named name (case-insensitively, as MariaDB matches), or -1. */
static int source_column(const ps_table *src, const char *name)
{
	for (int i = 0; i < src->ncolumns; i++)
		if (strcasecmp(src->columns[i].name, name) == 0)
			return i;
	return -1;
}

int mys_catalog_query(MYSQL *conn, const char *head, const char *col_a, const char *a,
                      const char *col_b, const char *b, const char *tail, MYSQL_RES **res,
                      ps_error *err)
{
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, 16384);
	rc = ps_buf_printf(&sql, "%s%s = ", head, col_a);
	if (rc == PS_OK)
		rc = my_quote_literal(conn, &sql, a);
	if (rc == PS_OK)
		rc = ps_buf_printf(&sql, " AND %s = ", col_b);
	if (rc == PS_OK)
		rc = my_quote_literal(conn, &sql, b);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, tail);
	if (rc != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	else
		rc = my_query(conn, sql.data, res, "reading the target catalog", err);
	ps_buf_free(&sql);
	return rc;
}

/* A catalog query on the data connection (a failure inside the open
 * transaction makes the sink failed). */
static int catalog_query(ps_sink *s, const char *head, const char *col_a, const char *a,
                         const char *col_b, const char *b, const char *tail, MYSQL_RES **res,
                         ps_error *err)
{
	int rc = mys_catalog_query(s->conn, head, col_a, a, col_b, b, tail, res, err);

	if (rc != PS_OK && (s->in_txn || rc == PS_ECONNECT))
		rc = mys_fail(s, err);
	return rc;
}

static char *quoted(const char *ident)
{
	ps_buf b;

	ps_buf_init(&b, 1024);
	if (my_quote_ident(&b, ident) != PS_OK) {
		ps_buf_free(&b);
		return NULL;
	}
	return ps_buf_detach(&b);
}

static int fill_columns(ps_sink *s, mys_table *t, ps_error *err)
{
	const ps_table *src = t->src;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf missing;
	int rc, nrows = 0;

	rc = catalog_query(s, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, IS_GENERATED FROM information_schema.COLUMNS WHERE ",
	                   "TABLE_SCHEMA", t->db, "TABLE_NAME", t->name,
	                   "", &res, err);
	if (rc != PS_OK)
		return rc;
	ps_buf_init(&missing, 4096);
	while ((row = mysql_fetch_row(res)) != NULL) {
		int i = row[0] ? source_column(src, row[0]) : -1;

		nrows++;
		if (i < 0 || t->qcol[i])
			continue;
		ps__mys_col_from_catalog(&t->col[i], row[1], row[2], row[3],
		                         row[4] && strcmp(row[4], "NEVER") != 0,
		                         src->columns[i].type_class);
		if (t->col[i].generated) {
			rc = ps_error_set(err, PS_EINVAL, "column %s of %s.%s is a generated column in "
			                  "the target, so the source's values cannot be written to it",
			                  src->columns[i].name, t->db, t->name);
			goto cleanup;
		}
		t->qcol[i] = quoted(row[0]);
		if (!t->qcol[i]) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (nrows == 0) {
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target; the "
		                  "initial load creates tables (see target.create_tables), or "
		                  "create it in the target first", t->db, t->name);
		goto cleanup;
	}
	for (int i = 0; i < t->ncols; i++)
		if (!t->qcol[i])
			ps_buf_printf(&missing, "%s%s", missing.len ? ", " : "", src->columns[i].name);
	if (missing.len)
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s in the target has no column %s, "
		                  "which the source sends; add it to the target table",
		                  t->db, t->name, missing.data);
cleanup:
	ps_buf_free(&missing);
	mysql_free_result(res);
	return rc;
}

static int add_unique(mys_table *t, const char *name, ps_error *err)
{
	mys_unique *u = realloc(t->uniq, (size_t)(t->nuniq + 1) * sizeof(*u));

	if (!u)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	t->uniq = u;
	u = &t->uniq[t->nuniq];
	memset(u, 0, sizeof(*u));
	u->name = strdup(name);
	u->cols = calloc((size_t)t->ncols + 1, sizeof(int));
	if (!u->name || !u->cols) {
		free(u->name);
		free(u->cols);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	t->nuniq++;
	return PS_OK;
}

/* The primary key and the other unique keys, as source column indexes. A
 * unique key over a column the source does not send cannot be cleared by
 * re-processing, nor the primary key find rows: both are refused. */
static int fill_keys(ps_sink *s, mys_table *t, ps_error *err)
{
	const ps_table *src = t->src;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	rc = catalog_query(s, "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS WHERE ",
	                   "TABLE_SCHEMA", t->db, "TABLE_NAME", t->name,
	                   " AND NON_UNIQUE = 0 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX", &res, err);
	if (rc != PS_OK)
		return rc;
	while (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		bool primary = strcmp(row[0], "PRIMARY") == 0;
		long seq = strtol(row[1], NULL, 10);
		int col = row[2] ? source_column(src, row[2]) : -1;

		if (col < 0) {
			rc = ps_error_set(err, PS_EINVAL, "%s %s of %s.%s in the target covers column "
			                  "%s, which the source does not send, so rows cannot be %s",
			                  primary ? "primary key" : "unique key", row[0], t->db, t->name,
			                  row[2] ? row[2] : "(an expression)",
			                  primary ? "found by key" : "applied again safely");
			break;
		}
		if (seq < 1 || seq > t->ncols) {
			rc = ps_error_set(err, PS_EPROTO, "key %s of %s.%s: bad position", row[0],
			                  t->db, t->name);
			break;
		}
		if (primary) {
			t->key[seq - 1] = col;
			t->is_pk[col] = true;
			if (seq > t->nkey)
				t->nkey = (int)seq;
			continue;
		}
		if (t->nuniq == 0 || strcmp(t->uniq[t->nuniq - 1].name, row[0]) != 0)
			rc = add_unique(t, row[0], err);
		if (rc == PS_OK) {
			mys_unique *u = &t->uniq[t->nuniq - 1];
			u->cols[u->ncols++] = col;
		}
	}
	mysql_free_result(res);
	if (rc != PS_OK)
		return rc;
	rc = catalog_query(s, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE ", "EVENT_OBJECT_SCHEMA", t->db, "EVENT_OBJECT_TABLE", t->name, "",
	                   &res, err);
	if (rc != PS_OK)
		return rc;
	row = mysql_fetch_row(res);
	t->triggers = row && row[0] && strcmp(row[0], "0") != 0;
	mysql_free_result(res);
	return PS_OK;
}

static int entry_build(ps_sink *s, ps_table *src, mys_table **out, ps_error *err)
{
	char db[256], name[256];
	mys_table *t = NULL;
	ps_buf qn;
	int rc;

	*out = NULL;
	mys_target_names(s, src->schema, src->name, db, sizeof(db), name, sizeof(name));
	t = calloc(1, sizeof(*t));
	if (!t)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	t->src = ps_table_ref(src);
	t->ncols = src->ncolumns;
	t->db = strdup(db);
	t->name = strdup(name);
	t->qcol = calloc((size_t)t->ncols + 1, sizeof(char *));
	t->col = calloc((size_t)t->ncols + 1, sizeof(mys_col));
	t->key = calloc((size_t)t->ncols + 1, sizeof(int));
	t->is_pk = calloc((size_t)t->ncols + 1, sizeof(bool));
	ps_buf_init(&qn, 2048);
	if (mys_qualified(&qn, db, name) == PS_OK)
		t->qname = ps_buf_detach(&qn);
	ps_buf_free(&qn);
	if (!t->db || !t->name || !t->qcol || !t->col || !t->key || !t->is_pk || !t->qname) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = fill_columns(s, t, err);
	if (rc == PS_OK)
		rc = fill_keys(s, t, err);
	if (rc != PS_OK)
		goto cleanup;
	*out = t;
	t = NULL;
cleanup:
	entry_free(t);
	return rc;
}

int mys_table_get(ps_sink *s, ps_table *src, mys_table **out, ps_error *err)
{
	mys_table *t, *prev = NULL;
	int rc;

	*out = NULL;
	for (t = s->tables; t; prev = t, t = t->next) {
		if (t->src == src)
			break;
		if (strcmp(t->src->schema, src->schema) != 0 || strcmp(t->src->name, src->name) != 0)
			continue;
		if (same_columns(t->src, src)) {
			ps_table_unref(t->src);
			t->src = ps_table_ref(src);
			break;
		}
		/* re-described with other columns */
		if (prev)
			prev->next = t->next;
		else
			s->tables = t->next;
		entry_free(t);
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
