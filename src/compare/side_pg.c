/*
 * side_pg.c — the PostgreSQL side of compare (cmp_side.h): a source or a
 * target, reached through libpq with the session settings of util/pgconn.h,
 * so that every value read is already in the canonical text form.
 *
 * Every statement names the table's columns explicitly (a target may have
 * more columns; they are not compared) and passes key values as untyped
 * parameters, so that the server reads them with the column's own type on
 * either side. Key ranges are row comparisons: lower < (k1, k2) <= upper, in
 * the order of the key; with byte_order (the other side orders text by
 * bytes, e.g. SQLite) text keys are ordered COLLATE "C".
 *
 * The digest of a range is count(*) and md5 over the rows' record text in
 * key order: computed inside each server, only 40 bytes travel per range.
 * Source and target digests are sent on their two connections before either
 * is waited for. The record text is PostgreSQL's, so these digests compare
 * only with another PostgreSQL side (ops->digest).
 *
 * Following a job: the source's position is its WAL insert LSN; a fence is
 * a transactional logical message ("penstock.fence"); a checkpoint (the
 * PostgreSQL sink's penstock.checkpoint) holds an LSN.
 *
 * Per-table data (t->side[role]): the quoted name, and on a source the oid
 * the catalogue found it by.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/cmp_side.h"
#include "compare/cmp_internal.h"
#include "util/pgconn.h"
#include "util/str.h"

#define SQL_LIMIT ((size_t)64 << 20)

typedef struct pg_side {
	PGconn *conn;
} pg_side;

typedef struct pg_table {
	char *qname;            /* "schema"."name" */
	char oid[16];           /* source: pg_class oid; "" on a target */
} pg_table;

static PGconn *conn_of(const cmp_side *s)
{
	return ((const pg_side *)s->impl)->conn;
}

static const char *qname_of(const cmp_side *s, const cmp_table *t)
{
	const pg_table *pt = t->side[s->role].data;

	return pt ? pt->qname : "";
}

static void pg_table_free(void *p)
{
	pg_table *pt = p;

	if (pt)
		free(pt->qname);
	free(pt);
}

/* Hangs a pg_table with the quoted name of t on t->side[s->role]. */
static int attach_table(cmp_side *s, cmp_table *t, const char *oid, ps_error *err)
{
	pg_table *pt = calloc(1, sizeof(*pt));
	ps_buf q;

	if (!pt)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_init(&q, 4096);
	ps_sql_quote_ident(&q, t->schema);
	ps_buf_putc(&q, '.');
	ps_sql_quote_ident(&q, t->name);
	pt->qname = ps_buf_detach(&q);
	snprintf(pt->oid, sizeof(pt->oid), "%s", oid ? oid : "");
	ps__cmp_table_set_side(t, s->role, pt, pg_table_free);
	return pt->qname ? PS_OK : ps_error_set(err, PS_ENOMEM, "out of memory");
}

/* ==== SQL pieces ========================================================== */

static void put_ident(ps_buf *b, const char *sep, const char *ident)
{
	ps_buf_puts(b, sep);
	ps_sql_quote_ident(b, ident);
}

/* "k1", "k2" — with COLLATE "C" on text keys when ordering by bytes. */
static void put_keys(ps_buf *b, const cmp_side *s, const cmp_table *t)
{
	for (int k = 0; k < t->nkey; k++) {
		int c = t->key[k];
		put_ident(b, k ? ", " : "", t->cols[c]);
		if (s->byte_order && t->collatable[c])
			ps_buf_puts(b, " COLLATE \"C\"");
	}
}

/* "k1", "k2" as they are (no collation) */
static void put_key_cols(ps_buf *b, const cmp_table *t)
{
	for (int k = 0; k < t->nkey; k++)
		put_ident(b, k ? ", " : "", t->cols[t->key[k]]);
}

static void put_cols(ps_buf *b, const cmp_table *t)
{
	for (int i = 0; i < t->ncols; i++)
		put_ident(b, i ? ", " : "", t->cols[i]);
}

/* ($n, $n+1, ...) taking params from bound */
static void put_params(ps_buf *b, const cmp_table *t, const cmp_bound *bd, const char **params,
                       int *np)
{
	ps_buf_putc(b, '(');
	for (int k = 0; k < t->nkey; k++) {
		params[*np] = bd->v[k];
		ps_buf_printf(b, "%s$%d", k ? ", " : "", ++*np);
	}
	ps_buf_putc(b, ')');
}

static void put_range(ps_buf *b, const cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                      const cmp_bound *hi, const char **params, int *np)
{
	if (lo) {
		ps_buf_puts(b, " WHERE (");
		put_keys(b, s, t);
		ps_buf_puts(b, ") > ");
		put_params(b, t, lo, params, np);
	}
	if (hi) {
		ps_buf_puts(b, lo ? " AND (" : " WHERE (");
		put_keys(b, s, t);
		ps_buf_puts(b, ") <= ");
		put_params(b, t, hi, params, np);
	}
}

static int built(ps_buf *b, ps_error *err)
{
	if (!b->data || b->len + 64 >= b->limit)
		return ps_error_set(err, PS_ETOOBIG, "statement text too long");
	return PS_OK;
}

static int fail(cmp_side *s, PGresult *res, const char *what, const cmp_table *t, ps_error *err)
{
	int rc = pg_result_error(err, conn_of(s), res, what);

	if (t)
		ps_error_add_context(err, "%s table %s", s->what, qname_of(s, t));
	return rc;
}

static int simple(cmp_side *s, const char *sql, const char *what, ps_error *err)
{
	int rc = pg_exec(conn_of(s), NULL, err, what, sql, 0, NULL);

	if (rc != PS_OK)
		ps_error_add_context(err, "%s", s->what);
	return rc;
}

/* Text of the first column of the first row of sql (params): malloc'd into
 * *out, NULL when there is no row or it is NULL. */
static int text_of(cmp_side *s, const char *sql, int nparams, const char *const *params,
                   char **out, const char *what, ps_error *err)
{
	PGresult *res = NULL;
	int rc;

	*out = NULL;
	rc = pg_exec(conn_of(s), &res, err, what, sql, nparams, params);
	if (rc != PS_OK) {
		ps_error_add_context(err, "%s", s->what);
		return rc;
	}
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		*out = strdup(PQgetvalue(res, 0, 0));
		if (!*out)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	PQclear(res);
	return rc;
}

/* ==== open, close ========================================================= */

static int pg_open(cmp_side *s, const char *url, const char *password, ps_error *err)
{
	pg_side *p = NULL;
	int rc;

	rc = ps__cmp_side_parse_url(s, url, err);
	if (rc != PS_OK)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = pg_connect(&p->conn, url, &s->url, password, false, "penstock compare", err);
	if (rc != PS_OK) {
		ps_error_add_context(err, "%s", s->what);
		free(p);
		return rc;
	}
	s->impl = p;
	return PS_OK;
}

static void pg_close(cmp_side *s)
{
	pg_side *p = s->impl;

	if (p && p->conn)
		PQfinish(p->conn);
	free(p);
	s->impl = NULL;
}

/* ==== the catalogue (source) ============================================== */

/* How a value of a type is made canonical, by its OID. */
static uint8_t kind_of_oid(uint32_t oid)
{
	switch (oid) {
	case 16: return CMP_BOOL;
	case 20: case 21: case 23: case 26: return CMP_INT;
	case 700: case 701: return CMP_FLOAT;
	case 1700: return CMP_NUMERIC;
	case 17: return CMP_BYTEA;
	case 1184: return CMP_TSTZ;
	default: return CMP_TEXT;
	}
}

static int pg_list_tables(cmp_side *s, cmp_table **out, size_t *nout, ps_error *err)
{
	PGresult *res = NULL;
	cmp_table *tables = NULL;
	int rc, rows;

	*out = NULL;
	*nout = 0;
	rc = pg_exec(conn_of(s), &res, err, "listing tables",
	             "SELECT c.oid, n.nspname, c.relname FROM pg_class c "
	             "JOIN pg_namespace n ON n.oid = c.relnamespace "
	             "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
	             "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'penstock') "
	             "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 2, 3", 0, NULL);
	if (rc != PS_OK)
		return rc;
	rows = PQntuples(res);
	tables = calloc((size_t)rows + 1, sizeof(*tables));
	if (!tables)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int r = 0; rc == PS_OK && r < rows; r++) {
		cmp_table *t = &tables[r];

		t->schema = strdup(PQgetvalue(res, r, 1));
		t->name = strdup(PQgetvalue(res, r, 2));
		if (!t->schema || !t->name)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = attach_table(s, t, PQgetvalue(res, r, 0), err);
	}
	PQclear(res);
	if (rc != PS_OK) {
		ps__cmp_tables_free(tables, (size_t)rows);
		return rc;
	}
	*out = tables;
	*nout = (size_t)rows;
	return PS_OK;
}

static int load_columns(cmp_side *s, cmp_table *t, const char *oid, ps_error *err)
{
	const char *params[1] = {oid};
	PGresult *res = NULL;
	int rc, n;

	rc = pg_exec(conn_of(s), &res, err, "reading columns",
	             "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
	             "CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, "
	             "a.attcollation <> 0, a.attnum "
	             "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
	             "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
	             "AND a.attgenerated = '' ORDER BY a.attnum", 1, params);
	if (rc != PS_OK)
		return rc;
	n = PQntuples(res);
	t->cols = calloc((size_t)n + 1, sizeof(char *));
	t->engine = "postgresql";
	t->type_id = calloc((size_t)n + 1, sizeof(uint32_t));
	t->kind = calloc((size_t)n + 1, 1);
	t->collatable = calloc((size_t)n + 1, sizeof(bool));
	if (!t->cols || !t->type_id || !t->kind || !t->collatable) {
		PQclear(res);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	t->ncols = n;
	for (int i = 0; i < n; i++) {
		t->cols[i] = strdup(PQgetvalue(res, i, 0));
		t->type_id[i] = (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10);
		t->kind[i] = kind_of_oid(t->type_id[i]);
		t->collatable[i] = PQgetvalue(res, i, 3)[0] == 't';
		if (!t->cols[i]) {
			PQclear(res);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
	}
	PQclear(res);
	return PS_OK;
}

/* attnum -> column index, by name (columns were read in attnum order). */
static int load_key(cmp_side *s, cmp_table *t, const char *oid, ps_error *err)
{
	const char *params[1] = {oid};
	PGresult *res = NULL;
	int rc, n;
	char *names, *next = NULL, *tok;

	rc = pg_exec(conn_of(s), &res, err, "reading the key",
	             "SELECT i.indisprimary, ci.relname, "
	             "(SELECT string_agg(a.attname, E'\\x1f' ORDER BY k.ord) "
	             "   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
	             "   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	             "   WHERE k.ord <= i.indnkeyatts) "
	             "FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid "
	             "WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid "
	             "AND i.indpred IS NULL AND i.indexprs IS NULL "
	             "AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
	             "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	             "  WHERE k.ord <= i.indnkeyatts AND (NOT a.attnotnull OR a.attgenerated <> '')) "
	             "ORDER BY i.indisprimary DESC, i.indnkeyatts, ci.relname LIMIT 1", 1, params);
	if (rc != PS_OK)
		return rc;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 2)) {
		PQclear(res);
		return PS_OK;
	}
	names = strdup(PQgetvalue(res, 0, 2));
	t->key = calloc((size_t)t->ncols + 1, sizeof(int));
	if (PQgetvalue(res, 0, 0)[0] == 't')
		t->key_source = strdup("primary key");
	else if (asprintf(&t->key_source, "unique index %s", PQgetvalue(res, 0, 1)) < 0)
		t->key_source = NULL;
	PQclear(res);
	if (!names || !t->key || !t->key_source) {
		free(names);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	n = 0;
	for (tok = names; tok; tok = next) {
		int c = -1;

		next = strchr(tok, '\x1f');
		if (next)
			*next++ = '\0';
		for (int i = 0; i < t->ncols; i++)
			if (strcmp(t->cols[i], tok) == 0)
				c = i;
		if (c < 0 || n >= t->ncols) {
			n = 0;
			break;
		}
		t->key[n++] = c;
	}
	t->nkey = n;
	free(names);
	return PS_OK;
}

static int pg_describe(cmp_side *s, cmp_table *t, ps_error *err)
{
	const pg_table *pt = t->side[s->role].data;
	int rc;

	if (!pt || !pt->oid[0])
		return ps_error_set(err, PS_EINVAL, "not a table this side listed");
	rc = load_columns(s, t, pt->oid, err);
	if (rc == PS_OK)
		rc = load_key(s, t, pt->oid, err);
	return rc;
}

/* ==== the catalogue (target) ============================================== */

static int pg_map_table(cmp_side *s, cmp_table *t, bool *exists, bool *has_col, ps_error *err)
{
	const char *params[1];
	PGresult *res = NULL;
	int rc;

	free(t->target);
	if (asprintf(&t->target, "%s.%s", t->schema, t->name) < 0) {
		t->target = NULL;
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	rc = attach_table(s, t, NULL, err);
	if (rc != PS_OK)
		return rc;
	params[0] = qname_of(s, t);
	rc = pg_exec(conn_of(s), &res, err, "reading the target's columns",
	             "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) "
	             "AND attnum > 0 AND NOT attisdropped", 1, params);
	if (rc != PS_OK)
		return rc;
	*exists = PQntuples(res) > 0;
	for (int c = 0; c < t->ncols; c++) {
		has_col[c] = false;
		for (int i = 0; i < PQntuples(res) && !has_col[c]; i++)
			has_col[c] = strcmp(PQgetvalue(res, i, 0), t->cols[c]) == 0;
	}
	PQclear(res);
	return PS_OK;
}

/* ==== reading ============================================================= */

static int pg_count(cmp_side *s, const cmp_table *t, int64_t *n, ps_error *err)
{
	ps_buf b;
	char *v = NULL;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_printf(&b, "SELECT count(*) FROM %s", qname_of(s, t));
	rc = built(&b, err);
	if (rc == PS_OK)
		rc = text_of(s, b.data, 0, NULL, &v, "counting rows", err);
	if (rc == PS_OK)
		*n = v ? strtoll(v, NULL, 10) : 0;
	free(v);
	ps_buf_free(&b);
	return rc;
}

static int pg_key_at(cmp_side *s, const cmp_table *t, const cmp_bound *lo, const cmp_bound *hi,
                     int64_t off, cmp_bound *out, bool *found, ps_error *err)
{
	const char *params[2 * t->nkey + 1];
	char offtext[32];
	PGresult *res = NULL;
	ps_buf b;
	int np = 0, rc;

	*found = false;
	out->v = NULL;
	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_key_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", qname_of(s, t));
	put_range(&b, s, t, lo, hi, params, &np);
	ps_buf_puts(&b, " ORDER BY ");
	put_keys(&b, s, t);
	snprintf(offtext, sizeof(offtext), "%lld", (long long)off);
	params[np] = offtext;
	ps_buf_printf(&b, " OFFSET $%d LIMIT 1", ++np);
	rc = built(&b, err);
	if (rc != PS_OK)
		goto cleanup;
	rc = pg_exec(conn_of(s), &res, err, "finding a chunk boundary", b.data, np, params);
	if (rc != PS_OK) {
		ps_error_add_context(err, "%s table %s", s->what, qname_of(s, t));
		goto cleanup;
	}
	if (PQntuples(res) == 0)
		goto cleanup;
	out->v = calloc((size_t)t->nkey + 1, sizeof(char *));
	if (!out->v) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (int k = 0; k < t->nkey; k++) {
		out->v[k] = strdup(PQgetvalue(res, 0, k));
		if (!out->v[k]) {
			ps__cmp_bound_free(out);
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	*found = true;
cleanup:
	PQclear(res);
	ps_buf_free(&b);
	return rc;
}

static int add_result_rows(cmp_side *s, const cmp_table *t, PGresult *res, cmp_rows *out,
                           ps_error *err)
{
	const char *vals[t->ncols > 0 ? t->ncols : 1];
	size_t lens[t->ncols > 0 ? t->ncols : 1];
	int rc = PS_OK;

	if (PQnfields(res) != t->ncols)
		return ps_error_set(err, PS_EPROTO, "%s: %d columns returned, expected %d", s->what,
		                    PQnfields(res), t->ncols);
	for (int r = 0; rc == PS_OK && r < PQntuples(res); r++) {
		for (int c = 0; c < t->ncols; c++) {
			vals[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
			lens[c] = (size_t)PQgetlength(res, r, c);
		}
		rc = ps__cmp_rows_add(out, t, vals, lens, err);
	}
	return rc;
}

static int pg_fetch_range(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                          const cmp_bound *hi, cmp_rows *out, ps_error *err)
{
	const char *params[2 * t->nkey + 1];
	PGresult *res = NULL;
	ps_buf b;
	int np = 0, rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", qname_of(s, t));
	put_range(&b, s, t, lo, hi, params, &np);
	ps_buf_puts(&b, " ORDER BY ");
	put_keys(&b, s, t);
	rc = built(&b, err);
	if (rc == PS_OK) {
		rc = pg_exec(conn_of(s), &res, err, "reading rows", b.data, np, params);
		if (rc != PS_OK)
			ps_error_add_context(err, "%s table %s", s->what, qname_of(s, t));
	}
	if (rc == PS_OK)
		rc = add_result_rows(s, t, res, out, err);
	PQclear(res);
	ps_buf_free(&b);
	return rc;
}

static int pg_fetch_keys(cmp_side *s, const cmp_table *t, char ***keys, size_t nkeys,
                         bool for_share, cmp_rows *out, ps_error *err)
{
	const char **params = NULL;
	PGresult *res = NULL;
	ps_buf b;
	int rc = PS_OK;

	ps_buf_init(&b, SQL_LIMIT);
	params = calloc((size_t)CMP_KEYS_PER_QUERY * (size_t)t->nkey + 1, sizeof(*params));
	if (!params)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t at = 0; rc == PS_OK && at < nkeys; at += CMP_KEYS_PER_QUERY) {
		size_t n = nkeys - at < CMP_KEYS_PER_QUERY ? nkeys - at : CMP_KEYS_PER_QUERY;
		int np = 0;

		ps_buf_reset(&b);
		ps_buf_puts(&b, "SELECT ");
		put_cols(&b, t);
		ps_buf_printf(&b, " FROM %s WHERE (", qname_of(s, t));
		put_key_cols(&b, t);
		ps_buf_puts(&b, ") IN (");
		for (size_t i = 0; i < n; i++) {
			cmp_bound bd = {keys[at + i]};
			if (i)
				ps_buf_puts(&b, ", ");
			put_params(&b, t, &bd, params, &np);
		}
		ps_buf_puts(&b, for_share ? ") FOR SHARE" : ")");
		rc = built(&b, err);
		if (rc == PS_OK) {
			rc = pg_exec(conn_of(s), &res, err, "reading rows by key", b.data, np, params);
			if (rc != PS_OK)
				ps_error_add_context(err, "%s table %s", s->what, qname_of(s, t));
		}
		if (rc == PS_OK)
			rc = add_result_rows(s, t, res, out, err);
		PQclear(res);
		res = NULL;
	}
	free(params);
	ps_buf_free(&b);
	return rc;
}

/* Every row, one at a time (single-row mode: the table is never all in memory). */
static int pg_scan(cmp_side *s, const cmp_table *t, cmp_row_fn fn, void *payload, ps_error *err)
{
	const char *vals[t->ncols > 0 ? t->ncols : 1];
	size_t lens[t->ncols > 0 ? t->ncols : 1];
	PGconn *conn = conn_of(s);
	PGresult *res = NULL;
	ps_buf b;
	int rc = PS_OK;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", qname_of(s, t));
	rc = built(&b, err);
	if (rc != PS_OK)
		goto cleanup;
	if (!PQsendQueryParams(conn, b.data, 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(conn)) {
		rc = fail(s, NULL, "reading rows", t, err);
		goto cleanup;
	}
	/* read every result, even after a failure, so the connection is idle */
	while ((res = PQgetResult(conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (rc == PS_OK && st == PGRES_SINGLE_TUPLE) {
			for (int c = 0; c < t->ncols; c++) {
				vals[c] = PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
				lens[c] = (size_t)PQgetlength(res, 0, c);
			}
			rc = fn(t, vals, lens, payload, err);
		} else if (rc == PS_OK && st != PGRES_TUPLES_OK) {
			rc = fail(s, res, "reading rows", t, err);
		}
		PQclear(res);
	}
cleanup:
	ps_buf_free(&b);
	return rc;
}

/* ==== digests ============================================================= */

static int pg_digest_send(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                          const cmp_bound *hi, ps_error *err)
{
	const char *params[2 * t->nkey + 1];
	ps_buf b;
	int np = 0, rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT count(*), md5(string_agg(ROW(");
	put_cols(&b, t);
	ps_buf_puts(&b, ")::text, E'\\n' ORDER BY ");
	put_keys(&b, s, t);
	ps_buf_printf(&b, ")) FROM %s", qname_of(s, t));
	put_range(&b, s, t, lo, hi, params, &np);
	rc = built(&b, err);
	if (rc == PS_OK && !PQsendQueryParams(conn_of(s), b.data, np, NULL, params, NULL, NULL, 0))
		rc = fail(s, NULL, "sending a chunk digest", t, err);
	ps_buf_free(&b);
	return rc;
}

static int pg_digest_get(cmp_side *s, int64_t *count, char *md5, size_t md5_len, ps_error *err)
{
	PGconn *conn = conn_of(s);
	PGresult *res;
	int rc = PS_OK;
	bool got = false;

	while ((res = PQgetResult(conn)) != NULL) {
		if (rc == PS_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = pg_result_error(err, conn, res, "computing a chunk digest");
			ps_error_add_context(err, "%s", s->what);
		} else if (rc == PS_OK && PQntuples(res) == 1) {
			*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			snprintf(md5, md5_len, "%s", PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
			got = true;
		}
		PQclear(res);
	}
	if (rc == PS_OK && !got)
		rc = ps_error_set(err, PS_EPROTO, "%s: no chunk digest returned", s->what);
	return rc;
}

static int pg_multiset(cmp_side *s, const cmp_table *t, int64_t *count, char *sum,
                       size_t sum_len, ps_error *err)
{
	PGresult *res = NULL;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	/* Sums of the two 64-bit halves of each row's md5: the same for the same
	 * rows in any order, duplicates counted. */
	ps_buf_puts(&b, "SELECT count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint"
	                "::numeric), 0)::text || '/' || coalesce(sum(('x' || substr(h, 17, 16))"
	                "::bit(64)::bigint::numeric), 0)::text FROM (SELECT md5(ROW(");
	put_cols(&b, t);
	ps_buf_printf(&b, ")::text) AS h FROM %s) s", qname_of(s, t));
	rc = built(&b, err);
	if (rc == PS_OK) {
		rc = pg_exec(conn_of(s), &res, err, "computing the multiset digest", b.data, 0, NULL);
		if (rc != PS_OK)
			ps_error_add_context(err, "%s table %s", s->what, qname_of(s, t));
	}
	if (rc == PS_OK) {
		*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(sum, sum_len, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	ps_buf_free(&b);
	return rc;
}

/* ==== repair (target) ===================================================== */

static int run_params(cmp_side *s, const cmp_table *t, const char *sql, int np,
                      const char *const *params, const char *what, ps_error *err)
{
	int rc = pg_exec(conn_of(s), NULL, err, what, sql, np, params);

	if (rc != PS_OK)
		ps_error_add_context(err, "%s table %s", s->what, qname_of(s, t));
	return rc;
}

static int delete_key(cmp_side *s, const cmp_table *t, ps_buf *b, char **key, ps_error *err)
{
	const char *params[t->nkey + 1];
	cmp_bound bd = {key};
	int np = 0;

	ps_buf_reset(b);
	ps_buf_printf(b, "DELETE FROM %s WHERE (", qname_of(s, t));
	put_key_cols(b, t);
	ps_buf_puts(b, ") = ");
	put_params(b, t, &bd, params, &np);
	if (built(b, err) != PS_OK)
		return err->code;
	return run_params(s, t, b->data, np, params, "deleting a row", err);
}

static int pg_repair(cmp_side *s, const cmp_table *t, char ***del, size_t ndel,
                     const cmp_row *const *put, size_t nput, ps_error *err)
{
	const char *params[t->ncols + 1];
	char **key = NULL;
	bool open = false;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	key = calloc((size_t)t->nkey + 1, sizeof(char *));
	if (!key) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = simple(s, "BEGIN", "starting the repair transaction", err);
	open = rc == PS_OK;
	for (size_t i = 0; rc == PS_OK && i < ndel; i++)
		rc = delete_key(s, t, &b, del[i], err);
	for (size_t i = 0; rc == PS_OK && i < nput; i++) {
		/* Delete, then insert: needs no unique constraint on the target. */
		for (int k = 0; k < t->nkey; k++)
			key[k] = put[i]->val[t->key[k]];
		rc = delete_key(s, t, &b, key, err);
		if (rc != PS_OK)
			break;
		ps_buf_reset(&b);
		ps_buf_printf(&b, "INSERT INTO %s (", qname_of(s, t));
		put_cols(&b, t);
		/* Identity columns GENERATED ALWAYS take the source's value too. */
		ps_buf_puts(&b, ") OVERRIDING SYSTEM VALUE VALUES (");
		for (int c = 0; c < t->ncols; c++) {
			params[c] = put[i]->val[c];
			ps_buf_printf(&b, "%s$%d", c ? ", " : "", c + 1);
		}
		ps_buf_putc(&b, ')');
		rc = built(&b, err);
		if (rc == PS_OK)
			rc = run_params(s, t, b.data, t->ncols, params, "inserting a row", err);
	}
	if (rc == PS_OK) {
		rc = simple(s, "COMMIT", "committing the repair", err);
		open = false;
	}
cleanup:
	if (open)
		pg_exec(conn_of(s), NULL, NULL, "rolling back", "ROLLBACK", 0, NULL);
	free(key);
	ps_buf_free(&b);
	return rc;
}

/* The PostgreSQL sink's checkpoint table, when there is one. */
static int pg_checkpoint(cmp_side *s, const char *job, char **body, bool *found, ps_error *err)
{
	const char *params[1] = {job};
	int rc;

	*found = false;
	rc = text_of(s, "SELECT to_regclass('penstock.checkpoint')::text", 0, NULL, body,
	             "looking for penstock.checkpoint", err);
	if (rc == PS_OK && *body) {
		free(*body);
		rc = text_of(s, "SELECT body FROM penstock.checkpoint WHERE job = $1", 1, params, body,
		             "reading the job's checkpoint", err);
	}
	*found = rc == PS_OK && *body != NULL;
	return rc;
}

/* ==== following a job (source) ============================================ */

static int pg_txn_begin(cmp_side *s, ps_error *err)
{
	return simple(s, "BEGIN", "starting a transaction", err);
}

static int pg_txn_end(cmp_side *s, bool commit, ps_error *err)
{
	return simple(s, commit ? "COMMIT" : "ROLLBACK", "ending a transaction", err);
}

/* SHARE mode: writers of the table wait, readers (and the job's snapshot) do not. */
static int pg_lock_table(cmp_side *s, const cmp_table *t, ps_error *err)
{
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, 4096);
	ps_buf_printf(&sql, "LOCK TABLE %s IN SHARE MODE", qname_of(s, t));
	rc = simple(s, sql.data ? sql.data : "", "locking the table", err);
	ps_buf_free(&sql);
	return rc;
}

int ps__cmp_parse_lsn(const char *s, uint64_t *out)
{
	uint64_t hi = 0, lo = 0;
	size_t i = 0, nhi = 0, nlo = 0;
	int v;

	for (; s[i] && s[i] != '/'; i++, nhi++) {
		v = ps_hex_value(s[i]);
		if (v < 0 || nhi >= 8)
			return PS_EINVAL;
		hi = hi << 4 | (uint64_t)v;
	}
	if (s[i] != '/' || nhi == 0)
		return PS_EINVAL;
	for (i++; s[i]; i++, nlo++) {
		v = ps_hex_value(s[i]);
		if (v < 0 || nlo >= 8)
			return PS_EINVAL;
		lo = lo << 4 | (uint64_t)v;
	}
	if (nlo == 0)
		return PS_EINVAL;
	*out = hi << 32 | lo;
	return PS_OK;
}

static int pg_log_position(cmp_side *s, char *pos, size_t len, ps_error *err)
{
	char *text = NULL;
	uint64_t lsn;
	int rc;

	rc = text_of(s, "SELECT pg_current_wal_insert_lsn()::text", 0, NULL, &text,
	             "reading the WAL position", err);
	if (rc == PS_OK && (!text || ps__cmp_parse_lsn(text, &lsn) != PS_OK))
		rc = ps_error_set(err, PS_EPROTO, "unexpected WAL position '%s'", text ? text : "");
	if (rc == PS_OK)
		snprintf(pos, len, "%s", text);
	free(text);
	return rc;
}

static int pg_position_reached(const char *applied, const char *wanted, bool *reached,
                               ps_error *err)
{
	uint64_t a = 0, w = 0;

	*reached = false;
	if (ps__cmp_parse_lsn(applied, &a) != PS_OK)
		return ps_error_set(err, PS_ECHECKPOINT, "checkpoint position '%s' is not a "
		                    "PostgreSQL LSN", applied);
	if (wanted && ps__cmp_parse_lsn(wanted, &w) != PS_OK)
		return ps_error_set(err, PS_EPROTO, "unexpected WAL position '%s'", wanted);
	*reached = a >= w;
	return PS_OK;
}

static int pg_fence(cmp_side *s, ps_error *err)
{
	return simple(s, "SELECT pg_logical_emit_message(true, 'penstock.fence', '')",
	              "writing a fence message", err);
}

/* ==== the ops ============================================================= */

static const char *const pg_schemes[] = {"postgresql", "postgres", NULL};

const cmp_side_ops ps__cmp_side_pg = {
	.version = CMP_SIDE_OPS_VERSION,
	.name = "PostgreSQL",
	.schemes = pg_schemes,
	.roles = CMP_ROLE(CMP_SOURCE) | CMP_ROLE(CMP_TARGET),
	.flags = 0,
	.digest = "postgresql-md5-record",
	.open = pg_open,
	.close = pg_close,
	.count = pg_count,
	.fetch_range = pg_fetch_range,
	.fetch_keys = pg_fetch_keys,
	.scan = pg_scan,
	.key_at = pg_key_at,
	.list_tables = pg_list_tables,
	.describe = pg_describe,
	.map_table = pg_map_table,
	.repair = pg_repair,
	.checkpoint = pg_checkpoint,
	.digest_send = pg_digest_send,
	.digest_get = pg_digest_get,
	.multiset = pg_multiset,
	.txn_begin = pg_txn_begin,
	.lock_table = pg_lock_table,
	.txn_end = pg_txn_end,
	.log_position = pg_log_position,
	.position_reached = pg_position_reached,
	.fence = pg_fence,
};
