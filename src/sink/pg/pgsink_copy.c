/*
 * pgsink_copy.c — rows of the initial load through COPY ... FROM STDIN.
 *
 * NOTES ON THE DESIGN
 *
 *  1. A COPY starts at the first 'r' row of a table definition and runs
 *     until anything else happens on the connection (another table, another
 *     op, commit, checkpoint, flush, DDL): pgsink.c calls pgs_settle, which ends
 *     it. COPY is not allowed in pipeline mode, so starting one syncs the
 *     pipeline first.
 *  2. Text format: columns separated by tab, rows ended by newline, NULL
 *     written as \N; in a value, backslash, tab, newline and carriage return
 *     are escaped (\\ \t \n \r). Nothing else needs escaping: the session's
 *     client_encoding is UTF8, the encoding the values arrive in.
 *  3. Rows are gathered into one buffer and handed to PQputCopyData about
 *     every PGS_COPY_CHUNK bytes. A long value is escaped in slices so the
 *     buffer stays under PGS_COPY_BUF_LIMIT whatever the row size.
 *  4. The server reports bad data when the COPY ends; that error names the
 *     table and keeps the server's CONTEXT line (COPY t, line N, column c).
 *  5. The raw path (sink.h load_raw_*): a binary COPY stream from a
 *     PostgreSQL source goes into COPY t (cols) FROM STDIN (FORMAT binary)
 *     as it comes, gathered into PGS_COPY_CHUNK pieces (a bigger piece is
 *     sent as it is). It runs with copy_raw set and copy_src NULL, so any
 *     row that pgsink.c is given ends it first (a text row never joins a binary
 *     COPY). Binary input is only accepted (load_raw_accepts) when the
 *     stream is "postgresql-binary-copy/<this server's major version>" and
 *     every column's target type is the source's built-in type with the
 *     same modifier: binary values have no type name on them, so int4 bytes
 *     read as int8, or an array of another element type, would be refused at
 *     best. The row count comes from the server's COPY command tag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/pgconn.h"

#define ESCAPE_SLICE ((size_t)16 << 10)   /* input bytes escaped at a time */

size_t ps__pg_copy_escape(char *dst, const char *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		switch (c) {
		case '\\': dst[o++] = '\\'; dst[o++] = '\\'; break;
		case '\t': dst[o++] = '\\'; dst[o++] = 't'; break;
		case '\n': dst[o++] = '\\'; dst[o++] = 'n'; break;
		case '\r': dst[o++] = '\\'; dst[o++] = 'r'; break;
		default: dst[o++] = c; break;
		}
	}
	return o;
}

static void copy_what(const ps_sink *s, char *what, size_t len)
{
	const ps_table *t = s->copy_table ? s->copy_table->src : NULL;

	snprintf(what, len, "copying rows into %s.%s", t ? t->schema : "?", t ? t->name : "?");
}

static int send_buffer(ps_sink *s, ps_error *err)
{
	char what[320];

	if (s->copy_buf.len == 0)
		return PS_OK;
	if (PQputCopyData(s->conn, s->copy_buf.data, (int)s->copy_buf.len) != 1) {
		copy_what(s, what, sizeof(what));
		return pg_result_error(err, s->conn, NULL, what);
	}
	ps_buf_reset(&s->copy_buf);
	return PS_OK;
}

/* Starts COPY t FROM STDIN, text rows of src's definition or (src NULL) a
 * binary stream (NOTES 5). */
static int copy_start(ps_sink *s, pgs_table *t, ps_table *src, ps_error *err)
{
	PGresult *res = NULL;
	char what[320];
	int rc;

	rc = pgs_leave_pipeline(s, err);
	if (rc != PS_OK)
		return rc;
	ps_buf_reset(&s->sql);
	rc = ps_buf_printf(&s->sql, "COPY %s (", t->qname);
	for (int i = 0; rc == PS_OK && i < t->ncols; i++)
		rc = ps_buf_printf(&s->sql, "%s%s", i ? ", " : "", t->qcol[i]);
	if (rc == PS_OK)
		rc = ps_buf_puts(&s->sql, src ? ") FROM STDIN" : ") FROM STDIN (FORMAT binary)");
	if (rc != PS_OK)
		return ps_error_set(err, rc, "COPY statement for %s.%s too long", t->src->schema,
		                    t->src->name);
	s->copy_table = t;
	s->copy_src = src;
	res = PQexec(s->conn, s->sql.data);
	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		copy_what(s, what, sizeof(what));
		rc = pg_result_error(err, s->conn, res, what);
		s->copy_table = NULL;
		s->copy_src = NULL;
	} else {
		s->copying = true;
		s->copy_raw = src == NULL;
		s->copy_rows = 0;
		ps_buf_reset(&s->copy_buf);
	}
	PQclear(res);
	return rc;
}

/* Appends one value, escaped, sending full chunks as it goes (NOTES 3). */
static int put_value(ps_sink *s, const char *data, size_t len, ps_error *err)
{
	ps_buf *b = &s->copy_buf;
	int rc = PS_OK;

	while (len > 0 && rc == PS_OK) {
		size_t n = len < ESCAPE_SLICE ? len : ESCAPE_SLICE;

		rc = ps_buf_reserve(b, 2 * n);
		if (rc != PS_OK)
			return ps_error_set(err, rc, "COPY buffer full");
		b->len += ps__pg_copy_escape(b->data + b->len, data, n);
		b->data[b->len] = '\0';
		data += n;
		len -= n;
		if (b->len >= PGS_COPY_CHUNK)
			rc = send_buffer(s, err);
	}
	return rc;
}

int pgs_copy_row(ps_sink *s, pgs_table *t, const ps_change *c, ps_error *err)
{
	const ps_value *v = c->new_values;
	int rc = PS_OK;

	if (!v)
		return ps_error_set(err, PS_EINVAL, "a row of the initial load without values");
	if (s->copying && s->copy_src != c->table)   /* pgsink.c settles first; never mix */
		return ps_error_set(err, PS_EINVAL, "a row of %s.%s while another COPY runs",
		                    c->table->schema, c->table->name);
	if (!s->copying)
		rc = copy_start(s, t, c->table, err);
	for (int i = 0; rc == PS_OK && i < t->ncols; i++) {
		if (i > 0)
			rc = ps_buf_putc(&s->copy_buf, '\t');
		if (rc != PS_OK)
			break;
		if (v[i].kind == PS_VALUE_NULL)
			rc = ps_buf_append(&s->copy_buf, "\\N", 2);
		else if (v[i].kind == PS_VALUE_TEXT)
			rc = put_value(s, v[i].data, v[i].len, err);
		else
			return ps_error_set(err, PS_EINVAL, "column %s of a row of the initial load "
			                    "has no value (unchanged)", c->table->columns[i].name);
	}
	if (rc == PS_OK)
		rc = ps_buf_putc(&s->copy_buf, '\n');
	if (rc == PS_ETOOBIG || rc == PS_ENOMEM)
		return ps_error_set(err, rc, "COPY buffer full");
	if (rc == PS_OK && s->copy_buf.len >= PGS_COPY_CHUNK)
		rc = send_buffer(s, err);
	if (rc == PS_OK)
		s->copy_rows++;
	return rc;
}

int pgs_copy_end(ps_sink *s, ps_error *err)
{
	PGresult *res;
	char what[320];
	int rc;

	if (!s->copying)
		return PS_OK;
	copy_what(s, what, sizeof(what));
	rc = send_buffer(s, err);
	s->copying = false;
	s->copy_raw = false;
	s->copy_table = NULL;
	s->copy_src = NULL;
	if (PQputCopyEnd(s->conn, rc == PS_OK ? NULL : "penstock: sending rows failed") != 1) {
		/* The connection is gone: libpq would report COPY_IN forever. */
		if (rc == PS_OK)
			rc = pg_result_error(err, s->conn, NULL, what);
		return rc;
	}
	while ((res = PQgetResult(s->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (rc == PS_OK && st != PGRES_COMMAND_OK)
			rc = pg_result_error(err, s->conn, res, what);
		if (rc == PS_OK && st == PGRES_COMMAND_OK)
			s->copy_rows = strtoull(PQcmdTuples(res), NULL, 10);   /* the server's count */
		PQclear(res);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
			break;
	}
	return rc;
}

void pgs_copy_abort(ps_sink *s)
{
	PGresult *res;

	if (!s->copying)
		return;
	s->copying = false;
	s->copy_raw = false;
	s->copy_table = NULL;
	s->copy_src = NULL;
	ps_buf_reset(&s->copy_buf);
	if (PQputCopyEnd(s->conn, "penstock: sink closed") != 1)
		return;
	while ((res = PQgetResult(s->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		PQclear(res);
		if (st == PGRES_COPY_IN)
			break;
	}
}

/* ==== the raw path: binary COPY passthrough (NOTES 5) ===================== */

#define PGS_FIRST_NORMAL_OID 16384u   /* below: built in, the same in every database */

/* The binary format this server reads as its own: the name the PostgreSQL
 * source gives binary COPY of the same major version. */
static void own_raw_format(const ps_sink *s, char *buf, size_t len)
{
	int v = PQserverVersion(s->conn);

	snprintf(buf, len, "postgresql-binary-copy/%d", v >= 100000 ? v / 10000 : v / 100);
}

static const char *const TARGET_TYPES_SQL =
	"SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod) "
	"FROM pg_catalog.pg_attribute a "
	"JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	"WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') "
	"  AND a.attnum > 0 AND NOT a.attisdropped";

/* Whether every source column has the same built-in type in the target;
 * why says which does not. */
static void compare_types(const ps_table_def *def, const PGresult *res, bool *same,
                          char *why, size_t why_len)
{
	const ps_table *t = def->table;
	int nrows = PQntuples(res);

	*same = false;
	if (nrows == 0) {
		snprintf(why, why_len, "the target has no table %s.%s", t->schema, t->name);
		return;
	}
	for (int i = 0; i < t->ncolumns; i++) {
		const ps_column *col = &t->columns[i];
		int row = -1;
		unsigned long oid;
		long mod;

		for (int r = 0; r < nrows && row < 0; r++)
			if (strcmp(PQgetvalue(res, r, 0), col->name) == 0)
				row = r;
		if (row < 0) {
			snprintf(why, why_len, "the target has no column %s", col->name);
			return;
		}
		oid = strtoul(PQgetvalue(res, row, 1), NULL, 10);
		mod = strtol(PQgetvalue(res, row, 2), NULL, 10);
		if (oid >= PGS_FIRST_NORMAL_OID || oid != col->type_id || mod != col->type_mod) {
			snprintf(why, why_len, "column %s is %s in the target, %s in the source",
			         col->name, PQgetvalue(res, row, 3),
			         def->columns && def->columns[i].sql_type ? def->columns[i].sql_type
			                                                  : "another type");
			return;
		}
	}
	*same = true;
}

int pgs_raw_accepts(ps_sink *s, const ps_table_def *def, const char *format, bool *accepted,
                    char *why, size_t why_len, ps_error *err)
{
	const char *params[2] = {def->table->schema, def->table->name};
	char own[64];
	PGresult *res = NULL;
	int rc;

	*accepted = false;
	rc = pgs_check_usable(s, err);
	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc != PS_OK)
		return pgs_fail(s, err);
	own_raw_format(s, own, sizeof(own));
	if (!format || strcmp(format, own) != 0) {
		snprintf(why, why_len, "the source sends %s, the target reads %s",
		         format && *format ? format : "no raw format", own);
		return PS_OK;
	}
	rc = pgs_exec(s, &res, err, "reading the target's column types", TARGET_TYPES_SQL, 2,
	              params);
	if (rc == PS_OK)
		compare_types(def, res, accepted, why, why_len);
	PQclear(res);
	return rc;
}

int pgs_raw_begin(ps_sink *s, const ps_table_def *def, const char *format, ps_error *err)
{
	pgs_table *t = NULL;
	char own[64];
	int rc = pgs_check_usable(s, err);

	if (rc != PS_OK)
		return rc;
	own_raw_format(s, own, sizeof(own));
	if (!format || strcmp(format, own) != 0) {
		ps_error_set(err, PS_EINVAL, "raw load of %s.%s in format %s, which this target "
		             "does not read (%s)", def->table->schema, def->table->name,
		             format ? format : "(none)", own);
		return pgs_fail(s, err);
	}
	rc = pgs_settle(s, err);
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc == PS_OK)
		rc = pgs_table_get(s, def->table, &t, err);
	if (rc == PS_OK)
		rc = copy_start(s, t, NULL, err);
	if (rc != PS_OK)
		rc = pgs_fail(s, err);
	return rc;
}

int pgs_raw_write(ps_sink *s, const char *data, size_t len, ps_error *err)
{
	char what[320];
	int rc = pgs_check_usable(s, err);

	if (rc != PS_OK)
		return rc;
	if (!s->copying || !s->copy_raw) {
		ps_error_set(err, PS_EINVAL, "raw data without a raw load begun");
		return pgs_fail(s, err);
	}
	if (s->copy_buf.len + len > PGS_COPY_CHUNK)
		rc = send_buffer(s, err);
	if (rc == PS_OK && len >= PGS_COPY_CHUNK) {
		/* Big enough to go as it is, without a copy. */
		if (len > (size_t)INT32_MAX || PQputCopyData(s->conn, data, (int)len) != 1) {
			copy_what(s, what, sizeof(what));
			rc = len > (size_t)INT32_MAX ? ps_error_set(err, PS_ETOOBIG, "%s: piece too big", what)
			                             : pg_result_error(err, s->conn, NULL, what);
		}
	} else if (rc == PS_OK) {
		rc = ps_buf_append(&s->copy_buf, data, len);
		if (rc != PS_OK)
			ps_error_set(err, rc, "COPY buffer full");
	}
	if (rc != PS_OK)
		rc = pgs_fail(s, err);
	return rc;
}

int pgs_raw_end(ps_sink *s, int64_t *rows, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	*rows = 0;
	if (rc != PS_OK)
		return rc;
	if (!s->copying || !s->copy_raw) {
		ps_error_set(err, PS_EINVAL, "end of a raw load that was not begun");
		return pgs_fail(s, err);
	}
	rc = pgs_copy_end(s, err);
	if (rc != PS_OK)
		return pgs_fail(s, err);
	*rows = (int64_t)s->copy_rows;
	return PS_OK;
}
