/*
 * side_mysql_target.c — the MySQL / MariaDB side of compare (cmp_side.h) as
 * a target: what a job with a mysql:// target wrote. As a source the
 * scheme is read by side_mysql.c, through the MySQL source plugin.
 *
 * Naming is the MariaDB sink's (mysink_tables.c NOTES 1): a URL that names a
 * database holds every table there under its own name; a URL without one
 * holds each table in the database named like its source schema. Column
 * names match case-insensitively, as MariaDB resolves them.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Values come back in the canonical text (cmp_side.h note 3), undoing
 *    what the sink did (docs/types-mariadb.md): a binary column's bytes
 *    become "\x" and hex; DATETIME, TIMESTAMP and TIME lose the trailing
 *    zeros of their fraction, and a DATETIME gets "+00" when the source
 *    column is a timestamp with a zone (the sink stored it in UTC); a FLOAT
 *    is read as the double it holds and printed as the shortest text that
 *    reads back to the same float (MariaDB prints 6 digits); CHAR(n) is
 *    padded to n as PostgreSQL's char(n) is; a BIT is its bits. A TINYINT(1)
 *    holding a boolean reads "1" / "0", which canon.c takes as t / f.
 * 2. Values going in (key bounds, keys, repaired rows) go through the sink's
 *    own conversion (ps__mys_convert), so they are compared and stored
 *    exactly as the sink would store them: "t" is 1, "\x00ff" is two bytes,
 *    "...+00" is a DATETIME in UTC. In a WHERE they are literals escaped for
 *    the connection (X'..' for bytes), CAST to the column's type as the sink
 *    does (mysink_typemap.c NOTES 4); repaired rows are bound parameters.
 * 3. Order. Keys are compared and ordered as the other side orders them: by
 *    value, and text by its bytes (CMP_SIDE_BYTE_ORDER). A text key whose
 *    collation is binary (tables the sink creates are utf8mb4_nopad_bin) is
 *    ordered by the column itself, so the index serves; another collation
 *    orders CAST(col AS BINARY). A UUID key is ordered by its text (MariaDB
 *    orders UUIDs by their time fields). Ranges are expanded to
 *    (k1 > a) OR (k1 = a AND k2 > b) ..., which MariaDB's range optimizer
 *    reads through the key's index.
 * 4. Digests: count and a sum of each row's MD5 halves over the QUOTE() of
 *    every value, computed inside MariaDB ("mysql-md5-quote"): two MariaDB
 *    sides compare chunks without moving rows; against another engine the
 *    driver reads the rows and compares them in C (their texts differ). A
 *    chunk whose digests differ only because the two servers' column types
 *    spell a value differently is bisected and then compared value by
 *    value, so it is never reported wrongly.
 * 5. Following a job (--job): this side reads the sink's checkpoint
 *    (_penstock_checkpoint). Against a MariaDB source (side_mysql.c, which
 *    names no digest) rows are read and compared in C; the digest is used
 *    between two sides that both name it.
 *
 * Per-table data (t->side[role]): the quoted name, and per compared column
 * how it is read, bound and ordered.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compare/cmp_side.h"
#include "compare/cmp_internal.h"
#include "penstock/change.h"
#include "sink/mysql/mysink.h"
#include "util/myconn.h"

#define SQL_LIMIT ((size_t)64 << 20)

enum { RD_RAW = 0, RD_BYTES, RD_TEMPORAL, RD_FLOAT };

typedef struct my_side {
	MYSQL *conn;
	bool per_schema;          /* the URL names no database */
	char db[130];             /* the URL's database */
	int64_t dig_count;        /* the last digest_send's result */
	char dig[CMP_DIGEST_MAX];
} my_side;

typedef struct my_tab {
	char *qname;              /* `db`.`name` */
	char *db, *name;
	mys_col *col;             /* per compared column: writing and comparing */
	uint8_t *read;            /* RD_* */
	char **qcol;              /* quoted target name of each column */
	char **expr;              /* the SELECT expression of each column */
	char **order;             /* key columns: the ORDER BY / range expression */
	int nqcol;                /* entries of qcol */
} my_tab;

static MYSQL *conn_of(const cmp_side *s)
{
	return ((const my_side *)s->impl)->conn;
}

static my_tab *tab_of(const cmp_side *s, const cmp_table *t)
{
	return t->side[s->role].data;
}

static void tab_free(void *p)
{
	my_tab *m = p;

	if (!m)
		return;
	free(m->qname);
	free(m->db);
	free(m->name);
	free(m->col);
	free(m->read);
	for (int i = 0; m->qcol && m->nqcol && i < m->nqcol; i++)
		free(m->qcol[i]);
	free(m->qcol);
	for (int i = 0; m->expr && m->expr[i]; i++)
		free(m->expr[i]);
	free(m->expr);
	for (int i = 0; m->order && m->order[i]; i++)
		free(m->order[i]);
	free(m->order);
	free(m);
}

static int fail(cmp_side *s, const cmp_table *t, const char *what, ps_error *err)
{
	int rc = my_error(err, conn_of(s), what);

	if (t)
		ps_error_add_context(err, "%s table %s", s->what, tab_of(s, t)->qname);
	else
		ps_error_add_context(err, "%s", s->what);
	return rc;
}

static int built(ps_buf *b, ps_error *err)
{
	if (!b->data || b->len + 64 >= b->limit)
		return ps_error_set(err, PS_ETOOBIG, "statement text too long");
	return PS_OK;
}

/* ==== open, close ========================================================= */

static int my_open(cmp_side *s, const char *url, const char *password, ps_error *err)
{
	my_connect_opts o = {.found_rows = true, .program = "penstock compare"};
	my_side *m = NULL;
	int rc;

	rc = ps__cmp_side_parse_url(s, url, err);
	if (rc != PS_OK)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	m->per_schema = s->url.dbname[0] == '\0';
	snprintf(m->db, sizeof(m->db), "%s", s->url.dbname);
	rc = my_connect(&m->conn, &s->url, password, &o, err);
	if (rc == PS_OK)
		rc = my_exec(m->conn, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,"
		             "NO_ENGINE_SUBSTITUTION', foreign_key_checks = 0, "
		             "group_concat_max_len = 1048576", "setting the session", err);
	if (rc != PS_OK) {
		ps_error_add_context(err, "%s", s->what);
		if (m->conn)
			mysql_close(m->conn);
		free(m);
		return rc;
	}
	s->impl = m;
	return PS_OK;
}

static void my_close(cmp_side *s)
{
	my_side *m = s->impl;

	if (m && m->conn)
		mysql_close(m->conn);
	free(m);
	s->impl = NULL;
}

/* ==== reading values (NOTES 1) ============================================= */

/* Trailing zeros of a fraction removed ("10:00:00.500000" -> "10:00:00.5"). */
static size_t trim_fraction(const char *v, size_t len)
{
	const char *dot = memchr(v, '.', len);

	if (!dot)
		return len;
	while (len > (size_t)(dot - v) + 1 && v[len - 1] == '0')
		len--;
	if (len == (size_t)(dot - v) + 1)
		len--;
	return len;
}

/* The shortest text that reads back to the float f. */
static int float_text(ps_buf *out, float f)
{
	char tmp[64];

	if (f == 0)
		return ps_buf_putc(out, '0');
	for (int p = 1; p <= 9; p++) {
		snprintf(tmp, sizeof(tmp), "%.*g", p, (double)f);
		if (strtof(tmp, NULL) == f)
			break;
	}
	return ps_buf_puts(out, tmp);
}

static int canon_value(uint8_t read, uint8_t kind, const char *v, size_t len, ps_buf *out)
{
	switch (read) {
	case RD_BYTES:
		if (ps_buf_puts(out, "\\x") != PS_OK)
			return PS_ENOMEM;
		for (size_t i = 0; i < len; i++)
			if (ps_buf_printf(out, "%02x", (unsigned char)v[i]) != PS_OK)
				return PS_ENOMEM;
		return PS_OK;
	case RD_TEMPORAL:
		if (ps_buf_append(out, v, trim_fraction(v, len)) != PS_OK)
			return PS_ENOMEM;
		if (kind == CMP_TSTZ && len >= 4 && memcmp(v, "0000", 4) != 0)
			return ps_buf_puts(out, "+00");
		return PS_OK;
	case RD_FLOAT: {
		char tmp[64];
		double d;

		if (len == 0 || len >= sizeof(tmp))
			return ps_buf_append(out, v, len);
		memcpy(tmp, v, len);
		tmp[len] = '\0';
		d = strtod(tmp, NULL);
		return float_text(out, (float)d);
	}
	default:
		return ps_buf_append(out, v, len);
	}
}

/* The current row as canonical text, handed to fn. */
static int read_row(const cmp_side *s, const cmp_table *t, MYSQL_ROW row, unsigned long *lens,
                    ps_buf *tmp, cmp_row_fn fn, void *payload, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	const char *vals[t->ncols > 0 ? t->ncols : 1];
	size_t vl[t->ncols > 0 ? t->ncols : 1], offs[t->ncols > 0 ? t->ncols : 1];
	int rc = PS_OK;

	ps_buf_reset(tmp);
	for (int c = 0; c < t->ncols && rc == PS_OK; c++) {
		offs[c] = tmp->len;
		vals[c] = row[c] ? "" : NULL;
		if (row[c])
			rc = canon_value(m->read[c], t->kind[c], row[c], lens[c], tmp);
		vl[c] = tmp->len - offs[c];
		if (rc == PS_OK)
			rc = ps_buf_putc(tmp, '\0');
	}
	if (rc != PS_OK)
		return ps_error_set(err, rc, "%s table %s: a row too large to read", s->what, m->qname);
	for (int c = 0; c < t->ncols; c++)
		if (vals[c])
			vals[c] = tmp->data + offs[c];
	return fn(t, vals, vl, payload, err);
}

static int add_row(const cmp_table *t, const char *const *vals, const size_t *lens,
                   void *payload, ps_error *err)
{
	return ps__cmp_rows_add(payload, t, vals, lens, err);
}

/* Runs sql and hands every row to fn; streaming (use_result) or stored. */
static int run_rows(cmp_side *s, const cmp_table *t, const char *sql, bool stream,
                    cmp_row_fn fn, void *payload, const char *what, ps_error *err)
{
	MYSQL *conn = conn_of(s);
	MYSQL_RES *res;
	MYSQL_ROW row;
	ps_buf tmp;
	int rc = PS_OK;

	if (mysql_real_query(conn, sql, (unsigned long)strlen(sql)) != 0)
		return fail(s, t, what, err);
	res = stream ? mysql_use_result(conn) : mysql_store_result(conn);
	if (!res)
		return fail(s, t, what, err);
	if ((int)mysql_num_fields(res) != t->ncols) {
		unsigned int got = mysql_num_fields(res);

		mysql_free_result(res);
		return ps_error_set(err, PS_EPROTO, "%s: %u columns returned, expected %d", s->what,
		                    got, t->ncols);
	}
	ps_buf_init(&tmp, CMP_VALUE_MAX);
	while ((row = mysql_fetch_row(res)) != NULL) {
		if (rc == PS_OK)
			rc = read_row(s, t, row, mysql_fetch_lengths(res), &tmp, fn, payload, err);
	}
	if (rc == PS_OK && mysql_errno(conn))
		rc = fail(s, t, what, err);
	mysql_free_result(res);
	ps_buf_free(&tmp);
	return rc;
}

/* ==== the table's columns =================================================== */

/* pre + ident + post, malloc'd. */
static char *wrap(const char *pre, const char *ident, const char *post)
{
	char *out = NULL;

	if (asprintf(&out, "%s%s%s", pre, ident, post) < 0)
		out = NULL;
	return out;
}

static int class_of_kind(uint8_t kind)
{
	switch (kind) {
	case CMP_BOOL: return PS_TYPE_BOOL;
	case CMP_BYTEA: return PS_TYPE_BYTES;
	case CMP_TSTZ: return PS_TYPE_TIMESTAMPTZ;
	default: return PS_TYPE_TEXT;
	}
}

/* How column c of t is read, bound and ordered, from its catalog row
 * (COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME). */
static int fill_column(my_tab *m, const cmp_table *t, int c, MYSQL_ROW row)
{
	const char *type = row[1] ? row[1] : "", *ctype = row[2] ? row[2] : "";
	const char *coll = row[4] ? row[4] : "";
	const char *paren = strchr(ctype, '(');
	long width = paren ? strtol(paren + 1, NULL, 10) : 0;
	ps_buf q;
	char *qc;

	ps_buf_init(&q, 1024);
	if (my_quote_ident(&q, row[0]) != PS_OK)
		return PS_ENOMEM;
	qc = ps_buf_detach(&q);
	if (!qc)
		return PS_ENOMEM;
	ps__mys_col_from_catalog(&m->col[c], type, ctype, row[3], false, class_of_kind(t->kind[c]));
	m->read[c] = RD_RAW;
	if (m->col[c].binary)
		m->read[c] = RD_BYTES;
	else if (strcasecmp(type, "datetime") == 0 || strcasecmp(type, "timestamp") == 0 ||
	         strcasecmp(type, "time") == 0)
		m->read[c] = RD_TEMPORAL;
	else if (strcasecmp(type, "float") == 0)
		m->read[c] = RD_FLOAT;
	if (strcasecmp(type, "char") == 0 && width > 0) {
		char post[40];

		snprintf(post, sizeof(post), ", %ld, ' ')", width);
		m->expr[c] = wrap("RPAD(", qc, post);
	} else if (strcasecmp(type, "bit") == 0 && width > 0) {
		char post[40];

		snprintf(post, sizeof(post), "), %ld, '0')", width);
		m->expr[c] = wrap("LPAD(BIN(", qc, post);
	} else if (m->read[c] == RD_FLOAT) {
		m->expr[c] = wrap("CAST(", qc, " AS DOUBLE)");
	} else {
		m->expr[c] = strdup(qc);
	}
	/* the order of a key column (NOTES 3) */
	if (m->col[c].text && !strstr(coll, "_bin"))
		m->order[c] = wrap("CAST(", qc, " AS BINARY)");
	else if (strcasecmp(type, "uuid") == 0)
		m->order[c] = wrap("CAST(", qc, " AS CHAR)");
	else
		m->order[c] = strdup(qc);
	m->qcol[c] = qc;
	qc = NULL;
	return m->expr[c] && m->order[c] ? PS_OK : PS_ENOMEM;
}

/* Builds t's side data from the catalog of db.name; *exists / has_col as
 * map_table says (has_col may be NULL: every column must be there). */
static int attach(cmp_side *s, cmp_table *t, const char *db, const char *name, bool *exists,
                  bool *has_col, ps_error *err)
{
	my_tab *m = calloc(1, sizeof(*m));
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf q;
	int rc;

	if (!m)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps__cmp_table_set_side(t, s->role, m, tab_free);
	ps_buf_init(&q, 2048);
	if (mys_qualified(&q, db, name) == PS_OK)
		m->qname = ps_buf_detach(&q);
	ps_buf_free(&q);
	m->db = strdup(db);
	m->name = strdup(name);
	m->col = calloc((size_t)t->ncols + 1, sizeof(mys_col));
	m->read = calloc((size_t)t->ncols + 1, 1);
	m->expr = calloc((size_t)t->ncols + 1, sizeof(char *));
	m->order = calloc((size_t)t->ncols + 1, sizeof(char *));
	m->qcol = calloc((size_t)t->ncols + 1, sizeof(char *));
	m->nqcol = t->ncols;
	if (!m->qname || !m->db || !m->name || !m->col || !m->read || !m->expr || !m->order ||
	    !m->qcol)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = mys_catalog_query(conn_of(s), "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, "
	                       "CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
	                       "WHERE ", "TABLE_SCHEMA", db, "TABLE_NAME", name, "", &res, err);
	if (rc != PS_OK) {
		ps_error_add_context(err, "%s", s->what);
		return rc;
	}
	*exists = mysql_num_rows(res) > 0;
	for (int c = 0; c < t->ncols; c++)
		if (has_col)
			has_col[c] = false;
	while (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		for (int c = 0; c < t->ncols && rc == PS_OK; c++) {
			if (!row[0] || strcasecmp(row[0], t->cols[c]) != 0 || m->expr[c])
				continue;
			if (has_col)
				has_col[c] = true;
			if (fill_column(m, t, c, row) != PS_OK)
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		}
	}
	mysql_free_result(res);
	/* columns the target lacks are reported by the driver; give them
	 * placeholders so that nothing here reads a NULL */
	for (int c = 0; rc == PS_OK && c < t->ncols; c++) {
		if (m->expr[c])
			continue;
		m->expr[c] = strdup("NULL");
		m->order[c] = strdup("NULL");
		m->qcol[c] = strdup("NULL");
		if (!m->expr[c] || !m->order[c] || !m->qcol[c])
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	return rc;
}

/* ==== the catalogue (target) ================================================ */

static int my_map_table(cmp_side *s, cmp_table *t, bool *exists, bool *has_col, ps_error *err)
{
	const my_side *m = s->impl;
	const char *db = m->per_schema ? t->schema : m->db;

	free(t->target);
	if (asprintf(&t->target, "%s.%s", db, t->name) < 0) {
		t->target = NULL;
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	return attach(s, t, db, t->name, exists, has_col, err);
}

/* ==== SQL pieces ============================================================== */

static void put_cols(ps_buf *b, const my_tab *m, const cmp_table *t)
{
	for (int i = 0; i < t->ncols; i++)
		ps_buf_printf(b, "%s%s", i ? ", " : "", m->expr[i]);
}

static void put_order(ps_buf *b, const my_tab *m, const cmp_table *t)
{
	for (int k = 0; k < t->nkey; k++)
		ps_buf_printf(b, "%s%s", k ? ", " : "", m->order[t->key[k]]);
}

/* A canonical value of column c as a MariaDB literal, as the column's WHERE
 * expression takes it (NOTES 2). */
static int put_literal(cmp_side *s, ps_buf *b, const cmp_table *t, int c, const char *v,
                       bool ordered, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	const mys_col *col = &m->col[c];
	size_t len = strlen(v), out_len = 0;
	char *scratch = malloc(ps__mys_scratch_len(len));
	const char *out = NULL, *why = NULL, *q;
	ps_buf lit;
	int rc = PS_OK;

	if (!scratch)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (ps__mys_convert(col, v, len, scratch, &out, &out_len, &why) != PS_OK) {
		free(scratch);
		return ps_error_set(err, PS_EINVAL, "%s table %s, column %s: the value '%.60s' %s",
		                    s->what, m->qname, t->cols[c], v, why);
	}
	ps_buf_init(&lit, SQL_LIMIT);
	if (col->binary) {
		ps_buf_puts(&lit, "X'");
		for (size_t i = 0; i < out_len; i++)
			ps_buf_printf(&lit, "%02x", (unsigned char)out[i]);
		ps_buf_putc(&lit, '\'');
	} else {
		char *copy = strndup(out, out_len);

		if (!copy || my_quote_literal(conn_of(s), &lit, copy) != PS_OK)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		free(copy);
	}
	free(scratch);
	if (rc == PS_OK && !lit.data)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc != PS_OK) {
		ps_buf_free(&lit);
		return rc;
	}
	/* the column's expression with the literal for its '?' */
	if (ordered && strncmp(m->order[c], "CAST(", 5) == 0 && strstr(m->order[c], "BINARY")) {
		rc = ps_buf_printf(b, "CAST(CONVERT(%s USING %s) AS BINARY)", lit.data, col->charset);
	} else if (ordered && strncmp(m->order[c], "CAST(", 5) == 0) {
		rc = ps_buf_printf(b, "CAST(%s AS CHAR)", lit.data);
	} else {
		q = strchr(col->where, '?');
		rc = q ? ps_buf_printf(b, "%.*s%s%s", (int)(q - col->where), col->where, lit.data, q + 1)
		       : ps_buf_puts(b, lit.data);
	}
	ps_buf_free(&lit);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "statement text too long");
}

/* (k1 op a) OR (k1 = a AND k2 op b) ... [OR (every key equal) when or_equal] */
static int put_bound(cmp_side *s, ps_buf *b, const cmp_table *t, const cmp_bound *bd,
                     const char *op, bool or_equal, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	int rc = ps_buf_putc(b, '(');

	for (int k = 0; rc == PS_OK && k < t->nkey + (or_equal ? 1 : 0); k++) {
		int last = k < t->nkey ? k : t->nkey - 1;

		rc = ps_buf_puts(b, k ? " OR (" : "(");
		for (int j = 0; rc == PS_OK && j <= last; j++) {
			int c = t->key[j];
			bool eq = j < k || k == t->nkey;

			rc = ps_buf_printf(b, "%s%s %s ", j ? " AND " : "", m->order[c], eq ? "=" : op);
			if (rc == PS_OK)
				rc = put_literal(s, b, t, c, bd->v[j], true, err);
		}
		if (rc == PS_OK)
			rc = ps_buf_putc(b, ')');
	}
	if (rc == PS_OK)
		rc = ps_buf_putc(b, ')');
	return rc;
}

static int put_range(cmp_side *s, ps_buf *b, const cmp_table *t, const cmp_bound *lo,
                     const cmp_bound *hi, ps_error *err)
{
	int rc = PS_OK;

	if (lo) {
		rc = ps_buf_puts(b, " WHERE ");
		if (rc == PS_OK)
			rc = put_bound(s, b, t, lo, ">", false, err);
	}
	if (rc == PS_OK && hi) {
		rc = ps_buf_puts(b, lo ? " AND " : " WHERE ");
		if (rc == PS_OK)
			rc = put_bound(s, b, t, hi, "<", true, err);
	}
	return rc;
}

/* ==== reading ================================================================= */

static int my_count(cmp_side *s, const cmp_table *t, int64_t *n, ps_error *err)
{
	char sql[1200], out[32];
	bool found = false;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tab_of(s, t)->qname);
	rc = my_query_text(conn_of(s), sql, out, sizeof(out), &found, "counting rows", err);
	if (rc != PS_OK)
		ps_error_add_context(err, "%s table %s", s->what, tab_of(s, t)->qname);
	else
		*n = strtoll(out, NULL, 10);
	return rc;
}

static int my_fetch_range(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                          const cmp_bound *hi, cmp_rows *out, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, m, t);
	ps_buf_printf(&b, " FROM %s", m->qname);
	rc = put_range(s, &b, t, lo, hi, err);
	if (rc == PS_OK && t->nkey) {
		ps_buf_puts(&b, " ORDER BY ");
		put_order(&b, m, t);
	}
	if (rc == PS_OK)
		rc = built(&b, err);
	if (rc == PS_OK)
		rc = run_rows(s, t, b.data, false, add_row, out, "reading rows", err);
	ps_buf_free(&b);
	return rc;
}

static int my_fetch_keys(cmp_side *s, const cmp_table *t, char ***keys, size_t nkeys,
                         bool for_share, cmp_rows *out, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	ps_buf b;
	int rc = PS_OK;

	ps_buf_init(&b, SQL_LIMIT);
	for (size_t at = 0; rc == PS_OK && at < nkeys; at += CMP_KEYS_PER_QUERY) {
		size_t n = nkeys - at < CMP_KEYS_PER_QUERY ? nkeys - at : CMP_KEYS_PER_QUERY;

		ps_buf_reset(&b);
		ps_buf_puts(&b, "SELECT ");
		put_cols(&b, m, t);
		ps_buf_printf(&b, " FROM %s WHERE ", m->qname);
		for (size_t i = 0; rc == PS_OK && i < n; i++) {
			rc = ps_buf_puts(&b, i ? " OR (" : "(");
			for (int k = 0; rc == PS_OK && k < t->nkey; k++) {
				int c = t->key[k];

				rc = ps_buf_printf(&b, "%s%s = ", k ? " AND " : "", m->order[c]);
				if (rc == PS_OK)
					rc = put_literal(s, &b, t, c, keys[at + i][k], true, err);
			}
			if (rc == PS_OK)
				rc = ps_buf_putc(&b, ')');
		}
		if (rc == PS_OK && for_share)
			rc = ps_buf_puts(&b, " LOCK IN SHARE MODE");
		if (rc == PS_OK)
			rc = built(&b, err);
		if (rc == PS_OK)
			rc = run_rows(s, t, b.data, false, add_row, out, "reading rows by key", err);
	}
	ps_buf_free(&b);
	return rc;
}

static int my_scan(cmp_side *s, const cmp_table *t, cmp_row_fn fn, void *payload, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, m, t);
	ps_buf_printf(&b, " FROM %s", m->qname);
	rc = built(&b, err);
	if (rc == PS_OK)
		rc = run_rows(s, t, b.data, true, fn, payload, "reading rows", err);
	ps_buf_free(&b);
	return rc;
}

/* The key values of the first row of a result, as canonical text. */
typedef struct key_grab {
	cmp_bound *out;
	bool *found;
} key_grab;

static int grab_key(const cmp_table *t, const char *const *vals, const size_t *lens,
                    void *payload, ps_error *err)
{
	key_grab *g = payload;

	if (*g->found)
		return PS_OK;
	g->out->v = calloc((size_t)t->nkey + 1, sizeof(char *));
	if (!g->out->v)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int k = 0; k < t->nkey; k++) {
		const char *v = vals[t->key[k]];

		g->out->v[k] = v ? strndup(v, lens[t->key[k]]) : NULL;
		if (v && !g->out->v[k]) {
			ps__cmp_bound_free(g->out);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
	}
	*g->found = true;
	return PS_OK;
}

static int my_key_at(cmp_side *s, const cmp_table *t, const cmp_bound *lo, const cmp_bound *hi,
                     int64_t off, cmp_bound *out, bool *found, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	key_grab g = {out, found};
	ps_buf b;
	int rc;

	*found = false;
	out->v = NULL;
	ps_buf_init(&b, SQL_LIMIT);
	ps_buf_puts(&b, "SELECT ");
	put_cols(&b, m, t);
	ps_buf_printf(&b, " FROM %s", m->qname);
	rc = put_range(s, &b, t, lo, hi, err);
	if (rc == PS_OK) {
		ps_buf_puts(&b, " ORDER BY ");
		put_order(&b, m, t);
		ps_buf_printf(&b, " LIMIT 1 OFFSET %lld", (long long)off);
		rc = built(&b, err);
	}
	if (rc == PS_OK)
		rc = run_rows(s, t, b.data, false, grab_key, &g, "finding a chunk boundary", err);
	ps_buf_free(&b);
	return rc;
}

/* ==== digests (NOTES 4) ======================================================= */

/* count, and the sums of both 64-bit halves of each row's MD5 */
static int digest_sql(cmp_side *s, const cmp_table *t, ps_buf *b)
{
	const my_tab *m = tab_of(s, t);
	int rc = ps_buf_puts(b, "SELECT COUNT(*), CONCAT(COALESCE(SUM(CAST(CONV(SUBSTR(h, 1, 16), "
	                     "16, 10) AS UNSIGNED)), 0), '/', COALESCE(SUM(CAST(CONV(SUBSTR(h, 17, 16), "
	                     "16, 10) AS UNSIGNED)), 0)) FROM (SELECT MD5(CONCAT_WS(','");

	for (int i = 0; rc == PS_OK && i < t->ncols; i++)
		rc = ps_buf_printf(b, ", QUOTE(%s)", m->expr[i]);
	if (rc == PS_OK)
		rc = ps_buf_printf(b, ")) AS h FROM %s", m->qname);
	return rc;
}

static int my_digest_send(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                          const cmp_bound *hi, ps_error *err)
{
	my_side *m = s->impl;
	char out[2 * CMP_DIGEST_MAX];
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf b;
	int rc;

	m->dig_count = 0;
	m->dig[0] = '\0';
	ps_buf_init(&b, SQL_LIMIT);
	rc = digest_sql(s, t, &b);
	if (rc == PS_OK)
		rc = put_range(s, &b, t, lo, hi, err);
	if (rc == PS_OK && ps_buf_puts(&b, ") d") != PS_OK)
		rc = PS_ETOOBIG;
	if (rc == PS_OK)
		rc = built(&b, err);
	if (rc == PS_OK && (rc = my_query(m->conn, b.data, &res, "computing a chunk digest",
	                                  err)) != PS_OK)
		ps_error_add_context(err, "%s table %s", s->what, tab_of(s, t)->qname);
	if (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		m->dig_count = row[0] ? strtoll(row[0], NULL, 10) : 0;
		snprintf(out, sizeof(out), "%s", row[1] ? row[1] : "");
		snprintf(m->dig, sizeof(m->dig), "%s", out);
	}
	mysql_free_result(res);
	ps_buf_free(&b);
	return rc;
}

static int my_digest_get(cmp_side *s, int64_t *count, char *digest, size_t len, ps_error *err)
{
	const my_side *m = s->impl;

	(void)err;
	*count = m->dig_count;
	snprintf(digest, len, "%s", m->dig);
	return PS_OK;
}

static int my_multiset(cmp_side *s, const cmp_table *t, int64_t *count, char *sum, size_t len,
                       ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf b;
	int rc;

	ps_buf_init(&b, SQL_LIMIT);
	rc = digest_sql(s, t, &b);
	if (rc == PS_OK && ps_buf_puts(&b, ") d") != PS_OK)
		rc = PS_ETOOBIG;
	if (rc == PS_OK)
		rc = built(&b, err);
	if (rc == PS_OK && (rc = my_query(conn_of(s), b.data, &res, "computing the multiset digest",
	                                  err)) != PS_OK)
		ps_error_add_context(err, "%s table %s", s->what, tab_of(s, t)->qname);
	if (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		*count = row[0] ? strtoll(row[0], NULL, 10) : 0;
		snprintf(sum, len, "%s", row[1] ? row[1] : "");
	}
	mysql_free_result(res);
	ps_buf_free(&b);
	return rc;
}

/* ==== repair (target) ========================================================= */

/* Runs a prepared statement of n text parameters (vals[i] NULL: NULL),
 * each converted for column cols[i] (NOTES 2). */
static int run_stmt(cmp_side *s, const cmp_table *t, const char *sql, int n, const int *cols,
                    const char *const *vals, const char *what, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	MYSQL_STMT *st = mysql_stmt_init(conn_of(s));
	MYSQL_BIND *bind = calloc((size_t)n + 1, sizeof(*bind));
	unsigned long *lens = calloc((size_t)n + 1, sizeof(*lens));
	my_bool *nulls = calloc((size_t)n + 1, sizeof(*nulls));
	char **scratch = calloc((size_t)n + 1, sizeof(*scratch));
	int rc = PS_OK;

	if (!st || !bind || !lens || !nulls || !scratch) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (int i = 0; rc == PS_OK && i < n; i++) {
		const mys_col *col = &m->col[cols[i]];
		const char *out = NULL, *why = NULL;
		size_t len, out_len = 0;

		bind[i].buffer_type = col->binary ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
		bind[i].is_null = &nulls[i];
		bind[i].length = &lens[i];
		if (!vals[i]) {
			nulls[i] = 1;
			continue;
		}
		len = strlen(vals[i]);
		scratch[i] = malloc(ps__mys_scratch_len(len));
		if (!scratch[i]) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		if (ps__mys_convert(col, vals[i], len, scratch[i], &out, &out_len, &why) != PS_OK) {
			rc = ps_error_set(err, PS_EINVAL, "%s table %s, column %s: the value '%.60s' %s",
			                  s->what, m->qname, t->cols[cols[i]], vals[i], why);
			break;
		}
		bind[i].buffer = (void *)out;
		bind[i].buffer_length = out_len;
		lens[i] = out_len;
	}
	if (rc == PS_OK && (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0 ||
	                    mysql_stmt_bind_param(st, bind) != 0 || mysql_stmt_execute(st) != 0)) {
		rc = mys_stmt_error(err, st, what);
		ps_error_add_context(err, "%s table %s", s->what, m->qname);
	}
cleanup:
	for (int i = 0; scratch && i < n; i++)
		free(scratch[i]);
	free(scratch);
	free(nulls);
	free(lens);
	free(bind);
	if (st)
		mysql_stmt_close(st);
	return rc;
}

static int my_repair(cmp_side *s, const cmp_table *t, char ***del, size_t ndel,
                     const cmp_row *const *put, size_t nput, ps_error *err)
{
	const my_tab *m = tab_of(s, t);
	int *kcols = calloc((size_t)t->nkey + 1, sizeof(int));
	int *all = calloc((size_t)t->ncols + 1, sizeof(int));
	const char **vals = calloc((size_t)t->ncols + (size_t)t->nkey + 1, sizeof(char *));
	ps_buf dsql, isql;
	bool open = false;
	int rc = PS_OK;

	ps_buf_init(&dsql, SQL_LIMIT);
	ps_buf_init(&isql, SQL_LIMIT);
	if (!kcols || !all || !vals) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	ps_buf_printf(&dsql, "DELETE FROM %s WHERE ", m->qname);
	for (int k = 0; k < t->nkey; k++) {
		kcols[k] = t->key[k];
		ps_buf_printf(&dsql, "%s%s = %s", k ? " AND " : "", m->qcol[t->key[k]],
		              m->col[t->key[k]].where);
	}
	ps_buf_printf(&isql, "INSERT INTO %s (", m->qname);
	for (int c = 0; c < t->ncols; c++) {
		all[c] = c;
		ps_buf_puts(&isql, c ? ", " : "");
		my_quote_ident(&isql, t->cols[c]);
	}
	ps_buf_puts(&isql, ") VALUES (");
	for (int c = 0; c < t->ncols; c++)
		ps_buf_printf(&isql, "%s%s", c ? ", " : "", m->col[c].param);
	ps_buf_putc(&isql, ')');
	rc = built(&dsql, err);
	if (rc == PS_OK)
		rc = built(&isql, err);
	if (rc == PS_OK)
		rc = my_exec(conn_of(s), "START TRANSACTION", "starting the repair transaction", err);
	open = rc == PS_OK;
	for (size_t i = 0; rc == PS_OK && i < ndel; i++)
		rc = run_stmt(s, t, dsql.data, t->nkey, kcols, (const char *const *)del[i],
		              "deleting a row", err);
	for (size_t i = 0; rc == PS_OK && i < nput; i++) {
		/* delete, then insert: needs no unique key on the target */
		for (int k = 0; k < t->nkey; k++)
			vals[k] = put[i]->val[t->key[k]];
		rc = run_stmt(s, t, dsql.data, t->nkey, kcols, vals, "deleting a row", err);
		if (rc == PS_OK)
			rc = run_stmt(s, t, isql.data, t->ncols, all, (const char *const *)put[i]->val,
			              "inserting a row", err);
	}
	if (rc == PS_OK) {
		rc = my_exec(conn_of(s), "COMMIT", "committing the repair", err);
		open = false;
	}
cleanup:
	if (open)
		mysql_query(conn_of(s), "ROLLBACK");
	free(kcols);
	free(all);
	free(vals);
	ps_buf_free(&dsql);
	ps_buf_free(&isql);
	return rc;
}

/* The MariaDB sink's checkpoint table, when there is one. */
static int my_checkpoint(cmp_side *s, const char *job, char **body, bool *found, ps_error *err)
{
	const my_side *m = s->impl;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf sql;
	int rc;

	*body = NULL;
	*found = false;
	ps_buf_init(&sql, 4096);
	rc = ps_buf_puts(&sql, "SELECT body FROM ");
	if (rc == PS_OK)
		rc = mys_qualified(&sql, m->per_schema ? MYS_CHECKPOINT_DB : m->db, MYS_CHECKPOINT_TABLE);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " WHERE job = ");
	if (rc == PS_OK)
		rc = my_quote_literal(m->conn, &sql, job);
	if (rc != PS_OK) {
		ps_buf_free(&sql);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (mysql_real_query(m->conn, sql.data, (unsigned long)sql.len) != 0) {
		/* no checkpoint table: no job has written here */
		rc = mysql_errno(m->conn) == 1146 ? PS_OK : fail(s, NULL, "reading the checkpoint", err);
		ps_buf_free(&sql);
		return rc;
	}
	ps_buf_free(&sql);
	res = mysql_store_result(m->conn);
	if (!res)
		return fail(s, NULL, "reading the checkpoint", err);
	row = mysql_fetch_row(res);
	if (row && row[0]) {
		*body = strdup(row[0]);
		if (!*body)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		*found = *body != NULL;
	}
	mysql_free_result(res);
	return rc;
}

/* ==== the ops ================================================================= */

static const char *const my_schemes[] = {"mysql", "mariadb", NULL};

const cmp_side_ops ps__cmp_side_mysql_target = {
	.version = CMP_SIDE_OPS_VERSION,
	.name = "MariaDB",
	.schemes = my_schemes,
	.roles = CMP_ROLE(CMP_TARGET),
	.flags = CMP_SIDE_BYTE_ORDER,
	.digest = "mysql-md5-quote",
	.open = my_open,
	.close = my_close,
	.count = my_count,
	.fetch_range = my_fetch_range,
	.fetch_keys = my_fetch_keys,
	.scan = my_scan,
	.key_at = my_key_at,
	.map_table = my_map_table,
	.repair = my_repair,
	.checkpoint = my_checkpoint,
	.digest_send = my_digest_send,
	.digest_get = my_digest_get,
	.multiset = my_multiset,
};
