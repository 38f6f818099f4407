/*
 * side_pg.c — the SQL compare sends to PostgreSQL, as source or as target.
 *
 * Every statement names the table's columns explicitly (a target may have
 * more columns; they are not compared) and passes key values as untyped
 * parameters, so that the server reads them with the column's own type on
 * either side. Key ranges are row comparisons: lower < (k1, k2) <= upper, in
 * the order of the key; against an SQLite target the source orders text keys
 * COLLATE "C", the byte order SQLite uses.
 *
 * The digest of a range is count(*) and md5 over the rows' record text in
 * key order: computed inside each server, only 40 bytes travel per range.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/cmp_internal.h"
#include "util/pgconn.h"

#define SQL_LIMIT ((size_t)64 << 20)

int ps__cmp_quote(ps_buf *b, const char *ident)
{
	int rc = ps_buf_putc(b, '"');

	for (const char *p = ident; rc == PS_OK && *p; p++)
		rc = *p == '"' ? ps_buf_puts(b, "\"\"") : ps_buf_putc(b, *p);
	return rc == PS_OK ? ps_buf_putc(b, '"') : rc;
}

static const char *table_name(const cmp_table *t, bool target)
{
	return target ? t->qtarget : t->qname;
}

/* "k1", "k2" — with COLLATE "C" on text keys when ordering for SQLite. */
static void put_keys(ps_buf *b, const cmp_end *e, const cmp_table *t)
{
	for (int k = 0; k < t->nkey; k++) {
		int c = t->key[k];
		ps_buf_printf(b, "%s%s%s", k ? ", " : "", t->qcols[c],
		              e->collate_c && t->collatable[c] ? " COLLATE \"C\"" : "");
	}
}

static void put_cols(ps_buf *b, const cmp_table *t)
{
	for (int i = 0; i < t->ncols; i++)
		ps_buf_printf(b, "%s%s", i ? ", " : "", t->qcols[i]);
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

static void put_range(ps_buf *b, const cmp_end *e, const cmp_table *t, const cmp_bound *lo,
                      const cmp_bound *hi, const char **params, int *np)
{
	if (lo) {
		ps_buf_puts(b, " WHERE (");
		put_keys(b, e, t);
		ps_buf_puts(b, ") > ");
		put_params(b, t, lo, params, np);
	}
	if (hi) {
		ps_buf_puts(b, lo ? " AND (" : " WHERE (");
		put_keys(b, e, t);
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

static int fail(cmp_end *e, PGresult *res, const char *what, const cmp_table *t, ps_error *err)
{
	int rc = pg_result_error(err, e->pg, res, what);

	if (t)
		ps_error_add_context(err, "%s table %s", e->what, t->qname);
	return rc;
}

int ps__cmp_pg_simple(cmp_end *e, const char *sql, const char *what, ps_error *err)
{
	int rc = pg_exec(e->pg, NULL, err, what, sql, 0, NULL);

	if (rc != PS_OK)
		ps_error_add_context(err, "%s", e->what);
	return rc;
}

int ps__cmp_pg_text(cmp_end *e, const char *sql, int nparams, const char *const *params,
                    char **out, const char *what, ps_error *err)
{
	PGresult *res = NULL;
	int rc;

	*out = NULL;
	rc = pg_exec(e->pg, &res, err, what, sql, nparams, params);
	if (rc != PS_OK) {
		ps_error_add_context(err, "%s", e->what);
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

int ps__cmp_pg_count(cmp_end *e, const cmp_table *t, bool target, int64_t *n, ps_error *err)
{
	ps_buf b;
	char *v = NULL;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_printf(&b, "SELECT count(*) FROM %s", table_name(t, target));
	rc = built(&b, err);
	if (rc == PS_OK)
		rc = ps__cmp_pg_text(e, b.data, 0, NULL, &v, "counting rows", err);
	if (rc == PS_OK)
		*n = v ? strtoll(v, NULL, 10) : 0;
	free(v);
	ps_buf_free(&b);
	return rc;
}

int ps__cmp_pg_key_at(cmp_end *e, const cmp_table *t, bool target, const cmp_bound *lo,
                      const cmp_bound *hi, int64_t off, cmp_bound *out, bool *found,
                      ps_error *err)
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
	for (int k = 0; k < t->nkey; k++)
		ps_buf_printf(&b, "%s%s", k ? ", " : "", t->qcols[t->key[k]]);
	ps_buf_printf(&b, " FROM %s", table_name(t, target));
	put_range(&b, e, t, lo, hi, params, &np);
	ps_buf_puts(&b, " ORDER BY ");
	put_keys(&b, e, t);
	snprintf(offtext, sizeof(offtext), "%lld", (long long)off);
	params[np] = offtext;
	ps_buf_printf(&b, " OFFSET $%d LIMIT 1", ++np);
	rc = built(&b, err);
	if (rc != PS_OK)
		goto cleanup;
	rc = pg_exec(e->pg, &res, err, "finding a chunk boundary", b.data, np, params);
	if (rc != PS_OK) {
		ps_error_add_context(err, "%s table %s", e->what, t->qname);
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

int ps__cmp_pg_digest_send(cmp_end *e, const cmp_table *t, bool target, const cmp_bound *lo,
                           const cmp_bound *hi, ps_error *err)
{
	const char *params[2 * t->nkey + 1];
	ps_buf b;
	int np = 0, rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT count(*), md5(string_agg(ROW(");
	put_cols(&b, t);
	ps_buf_puts(&b, ")::text, E'\\n' ORDER BY ");
	put_keys(&b, e, t);
	ps_buf_printf(&b, ")) FROM %s", table_name(t, target));
	put_range(&b, e, t, lo, hi, params, &np);
	rc = built(&b, err);
	if (rc == PS_OK && !PQsendQueryParams(e->pg, b.data, np, NULL, params, NULL, NULL, 0))
		rc = fail(e, NULL, "sending a chunk digest", t, err);
	ps_buf_free(&b);
	return rc;
}

int ps__cmp_pg_digest_get(cmp_end *e, int64_t *count, char *md5, size_t md5_len,
                          ps_error *err)
{
	PGresult *res;
	int rc = PS_OK;
	bool got = false;

	while ((res = PQgetResult(e->pg)) != NULL) {
		if (rc == PS_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = pg_result_error(err, e->pg, res, "computing a chunk digest");
			ps_error_add_context(err, "%s", e->what);
		} else if (rc == PS_OK && PQntuples(res) == 1) {
			*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			snprintf(md5, md5_len, "%s", PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
			got = true;
		}
		PQclear(res);
	}
	if (rc == PS_OK && !got)
		rc = ps_error_set(err, PS_EPROTO, "%s: no chunk digest returned", e->what);
	return rc;
}

int ps__cmp_pg_multiset(cmp_end *e, const cmp_table *t, bool target, int64_t *count,
                        char *sum, size_t sum_len, ps_error *err)
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
	ps_buf_printf(&b, ")::text) AS h FROM %s) s", table_name(t, target));
	rc = built(&b, err);
	if (rc == PS_OK) {
		rc = pg_exec(e->pg, &res, err, "computing the multiset digest", b.data, 0, NULL);
		if (rc != PS_OK)
			ps_error_add_context(err, "%s table %s", e->what, t->qname);
	}
	if (rc == PS_OK) {
		*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(sum, sum_len, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	ps_buf_free(&b);
	return rc;
}

static int add_result_rows(cmp_end *e, const cmp_table *t, PGresult *res, cmp_rows *out,
                           ps_error *err)
{
	const char *vals[t->ncols > 0 ? t->ncols : 1];
	size_t lens[t->ncols > 0 ? t->ncols : 1];
	int rc = PS_OK;

	if (PQnfields(res) != t->ncols)
		return ps_error_set(err, PS_EPROTO, "%s: %d columns returned, expected %d", e->what,
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

int ps__cmp_pg_fetch_range(cmp_end *e, const cmp_table *t, bool target, const cmp_bound *lo,
                           const cmp_bound *hi, int64_t limit, cmp_rows *out, ps_error *err)
{
	const char *params[2 * t->nkey + 1];
	PGresult *res = NULL;
	ps_buf b;
	int np = 0, rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", table_name(t, target));
	put_range(&b, e, t, lo, hi, params, &np);
	ps_buf_puts(&b, " ORDER BY ");
	put_keys(&b, e, t);
	if (limit > 0)
		ps_buf_printf(&b, " LIMIT %lld", (long long)limit);
	rc = built(&b, err);
	if (rc == PS_OK) {
		rc = pg_exec(e->pg, &res, err, "reading rows", b.data, np, params);
		if (rc != PS_OK)
			ps_error_add_context(err, "%s table %s", e->what, t->qname);
	}
	if (rc == PS_OK)
		rc = add_result_rows(e, t, res, out, err);
	PQclear(res);
	ps_buf_free(&b);
	return rc;
}

int ps__cmp_pg_fetch_keys(cmp_end *e, const cmp_table *t, bool target, char ***keys,
                          size_t nkeys, bool for_share, cmp_rows *out, ps_error *err)
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
		ps_buf_printf(&b, " FROM %s WHERE (", table_name(t, target));
		for (int k = 0; k < t->nkey; k++)
			ps_buf_printf(&b, "%s%s", k ? ", " : "", t->qcols[t->key[k]]);
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
			rc = pg_exec(e->pg, &res, err, "reading rows by key", b.data, np, params);
			if (rc != PS_OK)
				ps_error_add_context(err, "%s table %s", e->what, t->qname);
		}
		if (rc == PS_OK)
			rc = add_result_rows(e, t, res, out, err);
		PQclear(res);
		res = NULL;
	}
	free(params);
	ps_buf_free(&b);
	return rc;
}

int ps__cmp_pg_multiset_c(cmp_end *e, const cmp_table *t, int64_t *count, uint64_t sum[2],
                          ps_error *err)
{
	const char *vals[t->ncols > 0 ? t->ncols : 1];
	size_t lens[t->ncols > 0 ? t->ncols : 1];
	PGresult *res = NULL;
	ps_buf b, scratch;
	int rc = PS_OK;

	*count = 0;
	sum[0] = sum[1] = 0;
	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_init(&scratch, CMP_VALUE_MAX);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, t);
	ps_buf_printf(&b, " FROM %s", t->qname);
	rc = built(&b, err);
	if (rc != PS_OK)
		goto cleanup;
	if (!PQsendQueryParams(e->pg, b.data, 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(e->pg)) {
		rc = fail(e, NULL, "reading rows", t, err);
		goto cleanup;
	}
	while ((res = PQgetResult(e->pg)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (rc == PS_OK && st == PGRES_SINGLE_TUPLE) {
			uint64_t h[2];
			for (int c = 0; c < t->ncols; c++) {
				vals[c] = PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
				lens[c] = (size_t)PQgetlength(res, 0, c);
			}
			ps__cmp_row_hash(t, vals, lens, &scratch, h);
			sum[0] += h[0];
			sum[1] += h[1];
			++*count;
		} else if (rc == PS_OK && st != PGRES_TUPLES_OK) {
			rc = fail(e, res, "reading rows", t, err);
		}
		PQclear(res);
	}
cleanup:
	ps_buf_free(&scratch);
	ps_buf_free(&b);
	return rc;
}

static int run_params(cmp_end *e, const cmp_table *t, const char *sql, int np,
                      const char *const *params, const char *what, ps_error *err)
{
	int rc = pg_exec(e->pg, NULL, err, what, sql, np, params);

	if (rc != PS_OK)
		ps_error_add_context(err, "%s table %s", e->what, t->qtarget);
	return rc;
}

static int delete_key(cmp_end *e, const cmp_table *t, ps_buf *b, char **key, ps_error *err)
{
	const char *params[t->nkey + 1];
	cmp_bound bd = {key};
	int np = 0;

	ps_buf_reset(b);
	ps_buf_printf(b, "DELETE FROM %s WHERE (", t->qtarget);
	for (int k = 0; k < t->nkey; k++)
		ps_buf_printf(b, "%s%s", k ? ", " : "", t->qcols[t->key[k]]);
	ps_buf_puts(b, ") = ");
	put_params(b, t, &bd, params, &np);
	if (built(b, err) != PS_OK)
		return err->code;
	return run_params(e, t, b->data, np, params, "deleting a row", err);
}

int ps__cmp_pg_repair(cmp_end *e, const cmp_table *t, char ***del, size_t ndel,
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
	rc = ps__cmp_pg_simple(e, "BEGIN", "starting the repair transaction", err);
	open = rc == PS_OK;
	for (size_t i = 0; rc == PS_OK && i < ndel; i++)
		rc = delete_key(e, t, &b, del[i], err);
	for (size_t i = 0; rc == PS_OK && i < nput; i++) {
		/* Delete, then insert: needs no unique constraint on the target. */
		for (int k = 0; k < t->nkey; k++)
			key[k] = put[i]->val[t->key[k]];
		rc = delete_key(e, t, &b, key, err);
		if (rc != PS_OK)
			break;
		ps_buf_reset(&b);
		ps_buf_printf(&b, "INSERT INTO %s (", t->qtarget);
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
			rc = run_params(e, t, b.data, t->ncols, params, "inserting a row", err);
	}
	if (rc == PS_OK) {
		rc = ps__cmp_pg_simple(e, "COMMIT", "committing the repair", err);
		open = false;
	}
cleanup:
	if (open)
		pg_exec(e->pg, NULL, NULL, "rolling back", "ROLLBACK", 0, NULL);
	free(key);
	ps_buf_free(&b);
	return rc;
}
