/*
 * side_mysql.c — the MySQL/MariaDB side of compare (cmp_side.h), as a
 * source: it reads tables the way the MySQL source plugin copies them
 * (src/source/mysql/: the same catalogue, the same SELECT expressions and
 * the same canonical text), so a value compares equal to what the job
 * wrote into the target.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Key order is by bytes (CMP_SIDE_BYTE_ORDER): MariaDB's collations
 *    order text unlike PostgreSQL's or SQLite's, so text keys are ordered
 *    and compared as CONVERT(k USING utf8mb4) COLLATE utf8mb4_bin, which is
 *    code point order, the same as UTF-8 byte order.
 * 2. Key values cross as canonical text and go back into SQL as literals
 *    of their type class (my_put_literal); ranges are row comparisons,
 *    lower < (k1, k2) <= upper.
 * 3. Following a job (--job, the cutover's compare): the position is the
 *    binlog's end (file:offset/GTID list, the source plugin's form); a fence
 *    is a row of penstock.marks, whose transaction the job passes over; rows
 *    read by key are locked with LOCK IN SHARE MODE, a table with a locking
 *    read of all of it.
 * 4. No digest: rows are read and compared in C (the driver's default).
 *
 * Per-table data (t->side[role]): the source plugin's definition of the
 * table (ps_table_def), which says how each column is selected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/cmp_internal.h"
#include "compare/cmp_side.h"
#include "source/mysql/my_internal.h"
#include "util/myconn.h"

#define SQL_LIMIT ((size_t)64 << 20)

typedef struct my_side {
	MYSQL *conn;
} my_side;

static MYSQL *conn_of(const cmp_side *s)
{
	return ((const my_side *)s->impl)->conn;
}

static const ps_table_def *def_of(const cmp_side *s, const cmp_table *t)
{
	return t->side[s->role].data;
}

static void def_free(void *p)
{
	ps_table_def_free(p);
}

static int my_side_open(cmp_side *s, const char *url, const char *password, ps_error *err)
{
	my_side *m;
	my_connect_opts opts = {.program = "penstock compare"};
	int rc = ps__cmp_side_parse_url(s, url, err);

	if (rc != PS_OK)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = my_connect(&m->conn, &s->url, password, &opts, err);
	if (rc == PS_OK)
		rc = my_exec(m->conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		             "setting the isolation level", err);
	if (rc != PS_OK) {
		if (m->conn)
			mysql_close(m->conn);
		free(m);
		return ps_error_add_context(err, "--%s", s->what);
	}
	s->impl = m;
	return PS_OK;
}

static void my_side_close(cmp_side *s)
{
	my_side *m = s->impl;

	if (!m)
		return;
	mysql_close(m->conn);
	free(m);
	s->impl = NULL;
}

/* --- catalogue ------------------------------------------------------------------ */

static int my_list_tables(cmp_side *s, cmp_table **out, size_t *nout, ps_error *err)
{
	char *all[] = {"*"};
	my_tableinfo *infos = NULL;
	ps_table_def **defs = NULL;
	cmp_table *tables = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	rc = my_catalog_load(conn_of(s), all, 1, NULL, 0, &infos, &n, NULL, err);
	if (rc == PS_OK)
		rc = my_describe_infos(infos, n, &defs, err);
	if (rc == PS_OK) {
		tables = calloc(n + 1, sizeof(*tables));
		if (!tables)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == PS_OK && i < n; i++) {
		tables[i].schema = strdup(infos[i].db);
		tables[i].name = strdup(infos[i].name);
		if (!tables[i].schema || !tables[i].name)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		ps__cmp_table_set_side(&tables[i], s->role, defs[i], def_free);
		defs[i] = NULL;
	}
	for (size_t i = 0; defs && i < n; i++)
		ps_table_def_free(defs[i]);
	free(defs);
	my_tableinfos_free(infos, n);
	if (rc != PS_OK) {
		ps__cmp_tables_free(tables, n);
		return rc;
	}
	*out = tables;
	*nout = n;
	return PS_OK;
}

static uint8_t kind_of_class(int cls)
{
	switch (cls) {
	case PS_TYPE_BOOL: return CMP_BOOL;
	case PS_TYPE_INTEGER: return CMP_INT;
	case PS_TYPE_FLOAT: return CMP_FLOAT;
	case PS_TYPE_NUMERIC: return CMP_NUMERIC;
	case PS_TYPE_BYTES: return CMP_BYTEA;
	case PS_TYPE_TIMESTAMPTZ: return CMP_TSTZ;
	default: return CMP_TEXT;
	}
}

static int my_describe_table(cmp_side *s, cmp_table *t, ps_error *err)
{
	const ps_table_def *def = def_of(s, t);
	const ps_table *pt = def->table;
	int n = pt->ncolumns;

	t->ncols = n;
	t->engine = "mysql";
	t->cols = calloc((size_t)n + 1, sizeof(char *));
	t->type_id = calloc((size_t)n + 1, sizeof(uint32_t));
	t->kind = calloc((size_t)n + 1, sizeof(uint8_t));
	t->collatable = calloc((size_t)n + 1, sizeof(bool));
	if (!t->cols || !t->type_id || !t->kind || !t->collatable)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		t->cols[i] = strdup(pt->columns[i].name);
		if (!t->cols[i])
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		t->type_id[i] = pt->columns[i].type_id;
		t->kind[i] = kind_of_class(pt->columns[i].type_class);
		t->collatable[i] = pt->columns[i].type_class == PS_TYPE_TEXT;
	}
	for (int c = 0; c < def->nconstraints; c++) {
		const ps_constraint_def *cd = &def->constraints[c];
		if (cd->kind != PS_CONSTRAINT_PRIMARY || cd->ncols == 0)
			continue;
		t->key = malloc((size_t)cd->ncols * sizeof(int));
		t->key_source = strdup("primary key");
		if (!t->key || !t->key_source)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		memcpy(t->key, cd->cols, (size_t)cd->ncols * sizeof(int));
		t->nkey = cd->ncols;
		break;
	}
	return PS_OK;
}

/* --- SQL pieces ------------------------------------------------------------------ */

static int put_table(ps_buf *b, const cmp_table *t)
{
	int rc = my_quote_ident(b, t->schema);

	if (rc == PS_OK)
		rc = ps_buf_putc(b, '.');
	return rc == PS_OK ? my_quote_ident(b, t->name) : rc;
}

/* The key column as it is ordered and compared (note 1). */
static int put_key(ps_buf *b, const cmp_table *t, int k)
{
	int c = t->key[k], rc;

	if (!t->collatable[c])
		return my_quote_ident(b, t->cols[c]);
	rc = ps_buf_puts(b, "CONVERT(");
	if (rc == PS_OK)
		rc = my_quote_ident(b, t->cols[c]);
	return rc == PS_OK ? ps_buf_puts(b, " USING utf8mb4) COLLATE utf8mb4_bin") : rc;
}

static int put_keys(ps_buf *b, const cmp_table *t)
{
	int rc = PS_OK;

	for (int k = 0; rc == PS_OK && k < t->nkey; k++) {
		if (k)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = put_key(b, t, k);
	}
	return rc;
}

static int put_values(cmp_side *s, ps_buf *b, const cmp_table *t, char **v)
{
	const ps_table *pt = def_of(s, t)->table;
	int rc = ps_buf_putc(b, '(');

	for (int k = 0; rc == PS_OK && k < t->nkey; k++) {
		int c = t->key[k];
		if (k)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK && t->collatable[c]) {
			rc = ps_buf_puts(b, "_utf8mb4");
			if (rc == PS_OK)
				rc = my_quote_literal(conn_of(s), b, v[k]);
			if (rc == PS_OK)
				rc = ps_buf_puts(b, " COLLATE utf8mb4_bin");
		} else if (rc == PS_OK) {
			rc = my_put_literal(conn_of(s), b, pt->columns[c].type_class, v[k]);
		}
	}
	return rc == PS_OK ? ps_buf_putc(b, ')') : rc;
}

static int put_range(cmp_side *s, ps_buf *b, const cmp_table *t, const cmp_bound *lo,
                     const cmp_bound *hi)
{
	int rc = PS_OK;

	if (lo) {
		rc = ps_buf_puts(b, " WHERE (");
		if (rc == PS_OK)
			rc = put_keys(b, t);
		if (rc == PS_OK)
			rc = ps_buf_puts(b, ") > ");
		if (rc == PS_OK)
			rc = put_values(s, b, t, lo->v);
	}
	if (rc == PS_OK && hi) {
		rc = ps_buf_puts(b, lo ? " AND (" : " WHERE (");
		if (rc == PS_OK)
			rc = put_keys(b, t);
		if (rc == PS_OK)
			rc = ps_buf_puts(b, ") <= ");
		if (rc == PS_OK)
			rc = put_values(s, b, t, hi->v);
	}
	return rc;
}

static int put_select(cmp_side *s, ps_buf *b, const cmp_table *t)
{
	const ps_table_def *def = def_of(s, t);
	int rc = ps_buf_puts(b, "SELECT ");

	for (int i = 0; rc == PS_OK && i < t->ncols; i++) {
		if (i)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = my_select_expr(b, def, i);
	}
	if (rc == PS_OK)
		rc = ps_buf_puts(b, " FROM ");
	return rc == PS_OK ? put_table(b, t) : rc;
}

static int built(int rc, ps_error *err)
{
	return rc == PS_OK ? PS_OK : ps_error_set(err, PS_ETOOBIG, "statement text too long");
}

/* Runs sql and hands each row, made canonical, to fn (or adds it to out). */
static int each_row(cmp_side *s, const cmp_table *t, const char *sql, cmp_row_fn fn,
                    void *payload, cmp_rows *out, ps_error *err)
{
	const ps_table_def *def = def_of(s, t);
	MYSQL *conn = conn_of(s);
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	const char **vals = calloc((size_t)t->ncols + 1, sizeof(char *));
	size_t *lens = calloc((size_t)t->ncols + 1, sizeof(size_t));
	size_t *offs = calloc((size_t)t->ncols + 1, sizeof(size_t));
	bool *nulls = calloc((size_t)t->ncols + 1, sizeof(bool));
	ps_buf text;
	int rc = PS_OK;

	ps_buf_init(&text, CMP_VALUE_MAX);
	if (!vals || !lens || !offs || !nulls) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (mysql_real_query(conn, sql, strlen(sql)) != 0 || !(res = mysql_use_result(conn))) {
		rc = my_error(err, conn, "reading rows");
		ps_error_add_context(err, "%s table %s.%s", s->what, t->schema, t->name);
		goto cleanup;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *l = mysql_fetch_lengths(res);

		if (rc != PS_OK)
			continue;   /* read the rest: the connection is usable only then */
		ps_buf_reset(&text);
		for (int c = 0; rc == PS_OK && c < t->ncols; c++) {
			nulls[c] = !row[c];
			offs[c] = text.len;
			if (row[c])
				rc = my_value_canon(def, c, row[c], l[c], &text, &nulls[c], false, err);
			lens[c] = text.len - offs[c];
		}
		if (rc != PS_OK)
			continue;
		for (int c = 0; c < t->ncols; c++)
			vals[c] = nulls[c] ? NULL : text.data ? text.data + offs[c] : "";
		rc = fn ? fn(t, vals, lens, payload, err) : ps__cmp_rows_add(out, t, vals, lens, err);
	}
	if (rc == PS_OK && mysql_errno(conn))
		rc = my_error(err, conn, "reading rows");
cleanup:
	if (res)
		mysql_free_result(res);
	free(vals);
	free(lens);
	free(offs);
	free(nulls);
	ps_buf_free(&text);
	return rc;
}

/* --- reading ----------------------------------------------------------------------- */

static int my_count(cmp_side *s, const cmp_table *t, int64_t *n, ps_error *err)
{
	ps_buf b;
	char v[32];
	bool found;
	int rc;

	ps_buf_init(&b, 4096);
	rc = ps_buf_puts(&b, "SELECT COUNT(*) FROM ");
	if (rc == PS_OK)
		rc = put_table(&b, t);
	rc = built(rc, err);
	if (rc == PS_OK)
		rc = my_query_text(conn_of(s), b.data, v, sizeof(v), &found, "counting rows", err);
	*n = rc == PS_OK ? strtoll(v, NULL, 10) : 0;
	ps_buf_free(&b);
	return rc;
}

static int my_fetch_range(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                          const cmp_bound *hi, cmp_rows *out, ps_error *err)
{
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	rc = put_select(s, &b, t);
	if (rc == PS_OK)
		rc = put_range(s, &b, t, lo, hi);
	if (rc == PS_OK && t->nkey) {
		rc = ps_buf_puts(&b, " ORDER BY ");
		if (rc == PS_OK)
			rc = put_keys(&b, t);
	}
	rc = built(rc, err);
	if (rc == PS_OK)
		rc = each_row(s, t, b.data, NULL, NULL, out, err);
	ps_buf_free(&b);
	return rc;
}

static int my_fetch_keys(cmp_side *s, const cmp_table *t, char ***keys, size_t nkeys,
                         bool for_share, cmp_rows *out, ps_error *err)
{
	ps_buf b;
	int rc = PS_OK;

	ps_buf_init(&b, SQL_LIMIT);
	for (size_t at = 0; rc == PS_OK && at < nkeys; at += CMP_KEYS_PER_QUERY) {
		size_t n = nkeys - at < CMP_KEYS_PER_QUERY ? nkeys - at : CMP_KEYS_PER_QUERY;

		ps_buf_reset(&b);
		rc = put_select(s, &b, t);
		if (rc == PS_OK)
			rc = ps_buf_puts(&b, " WHERE (");
		if (rc == PS_OK)
			rc = put_keys(&b, t);
		if (rc == PS_OK)
			rc = ps_buf_puts(&b, ") IN (");
		for (size_t i = 0; rc == PS_OK && i < n; i++) {
			if (i)
				rc = ps_buf_puts(&b, ", ");
			if (rc == PS_OK)
				rc = put_values(s, &b, t, keys[at + i]);
		}
		if (rc == PS_OK)
			rc = ps_buf_puts(&b, for_share ? ") LOCK IN SHARE MODE" : ")");
		rc = built(rc, err);
		if (rc == PS_OK)
			rc = each_row(s, t, b.data, NULL, NULL, out, err);
	}
	ps_buf_free(&b);
	return rc;
}

static int my_scan(cmp_side *s, const cmp_table *t, cmp_row_fn fn, void *payload, ps_error *err)
{
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	rc = built(put_select(s, &b, t), err);
	if (rc == PS_OK)
		rc = each_row(s, t, b.data, fn, payload, NULL, err);
	ps_buf_free(&b);
	return rc;
}

typedef struct key_ctx {
	cmp_bound *out;
	bool found;
} key_ctx;

static int take_key(const cmp_table *t, const char *const *vals, const size_t *lens,
                    void *payload, ps_error *err)
{
	key_ctx *k = payload;

	k->out->v = calloc((size_t)t->nkey + 1, sizeof(char *));
	if (!k->out->v)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; i < t->nkey; i++) {
		const char *v = vals[t->key[i]];
		k->out->v[i] = v ? strndup(v, lens[t->key[i]]) : strdup("");
		if (!k->out->v[i]) {
			ps__cmp_bound_free(k->out);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
	}
	k->found = true;
	return PS_OK;
}

static int my_key_at(cmp_side *s, const cmp_table *t, const cmp_bound *lo, const cmp_bound *hi,
                     int64_t off, cmp_bound *out, bool *found, ps_error *err)
{
	key_ctx k = {out, false};
	ps_buf b;
	int rc;

	*found = false;
	out->v = NULL;
	ps_buf_init(&b, SQL_LIMIT);
	/* the whole row is selected (each_row makes every column canonical);
	 * only the key is kept */
	rc = put_select(s, &b, t);
	if (rc == PS_OK)
		rc = put_range(s, &b, t, lo, hi);
	if (rc == PS_OK)
		rc = ps_buf_puts(&b, " ORDER BY ");
	if (rc == PS_OK)
		rc = put_keys(&b, t);
	if (rc == PS_OK)
		rc = ps_buf_printf(&b, " LIMIT 1 OFFSET %lld", (long long)off);
	rc = built(rc, err);
	if (rc == PS_OK)
		rc = each_row(s, t, b.data, take_key, &k, NULL, err);
	*found = rc == PS_OK && k.found;
	ps_buf_free(&b);
	return rc;
}

/* --- following a job ------------------------------------------------------------- */

static int my_txn_begin(cmp_side *s, ps_error *err)
{
	return my_exec(conn_of(s), "START TRANSACTION", "starting a transaction", err);
}

static int my_txn_end(cmp_side *s, bool commit, ps_error *err)
{
	ps_error ignored;

	return my_exec(conn_of(s), commit ? "COMMIT" : "ROLLBACK", "ending a transaction",
	               err ? err : &ignored);
}

static int my_lock_table(cmp_side *s, const cmp_table *t, ps_error *err)
{
	MYSQL_RES *res = NULL;
	ps_buf b;
	int rc;

	ps_buf_init(&b, 4096);
	rc = ps_buf_puts(&b, "SELECT COUNT(*) FROM ");
	if (rc == PS_OK)
		rc = put_table(&b, t);
	if (rc == PS_OK)
		rc = ps_buf_puts(&b, " LOCK IN SHARE MODE");
	rc = built(rc, err);
	if (rc == PS_OK)
		rc = my_query(conn_of(s), b.data, &res, "locking the table", err);
	if (res)
		mysql_free_result(res);
	ps_buf_free(&b);
	return rc;
}

static int my_log_position(cmp_side *s, char *pos, size_t len, ps_error *err)
{
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	int rc = my_query(conn_of(s), "SHOW MASTER STATUS", &r, "reading the binlog position", err);

	if (rc != PS_OK)
		return rc;
	row = mysql_fetch_row(r);
	if (row && row[0] && row[1])
		my_pos_format(pos, len, row[0], strtoull(row[1], NULL, 10), NULL);
	else
		rc = ps_error_set(err, PS_EINVAL, "SHOW MASTER STATUS returned nothing: the binlog "
		                  "is off");
	mysql_free_result(r);
	return rc;
}

static int my_position_reached(const char *applied, const char *wanted, bool *reached,
                               ps_error *err)
{
	my_pos a;

	*reached = false;
	if (my_pos_parse(applied, &a, err) != PS_OK || !a.file[0])
		return ps_error_set(err, PS_ECHECKPOINT, "the checkpoint's position '%s' is not a "
		                    "binlog position (file:offset)", applied ? applied : "");
	*reached = !wanted || my_pos_compare(applied, wanted) >= 0;
	return PS_OK;
}

static int my_fence(cmp_side *s, ps_error *err)
{
	int rc = my_exec(conn_of(s), "CREATE DATABASE IF NOT EXISTS `" MY_MARKS_DB "`",
	                 "writing a fence", err);

	if (rc == PS_OK)
		rc = my_exec(conn_of(s), "CREATE TABLE IF NOT EXISTS `" MY_MARKS_DB "`.`"
		             MY_MARKS_TABLE "` (id BIGINT AUTO_INCREMENT PRIMARY KEY, job VARCHAR(200) "
		             "NOT NULL, prefix VARCHAR(64) NOT NULL, content LONGTEXT NOT NULL, "
		             "at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY (job)) "
		             "ENGINE=InnoDB", "writing a fence", err);
	if (rc == PS_OK)
		rc = my_exec(conn_of(s), "INSERT INTO `" MY_MARKS_DB "`.`" MY_MARKS_TABLE "` (job, "
		             "prefix, content) VALUES ('penstock compare', '" MY_FENCE_PREFIX "', '')",
		             "writing a fence", err);
	if (rc == PS_OK)
		rc = my_exec(conn_of(s), "DELETE FROM `" MY_MARKS_DB "`.`" MY_MARKS_TABLE "` WHERE "
		             "job = 'penstock compare'", "writing a fence", err);
	return rc;
}

static const char *const my_schemes[] = {"mysql", "mariadb", NULL};

const cmp_side_ops ps__cmp_side_mysql = {
	.version = CMP_SIDE_OPS_VERSION,
	.name = "MariaDB",
	.schemes = my_schemes,
	.roles = CMP_ROLE(CMP_SOURCE),
	.flags = CMP_SIDE_BYTE_ORDER,
	.digest = NULL,
	.open = my_side_open,
	.close = my_side_close,
	.count = my_count,
	.fetch_range = my_fetch_range,
	.fetch_keys = my_fetch_keys,
	.scan = my_scan,
	.key_at = my_key_at,
	.list_tables = my_list_tables,
	.describe = my_describe_table,
	.txn_begin = my_txn_begin,
	.lock_table = my_lock_table,
	.txn_end = my_txn_end,
	.log_position = my_log_position,
	.position_reached = my_position_reached,
	.fence = my_fence,
};
