/*
 * pg_copy.c — rows of the initial load through COPY ... FROM STDIN.
 *
 * NOTES ON THE DESIGN
 *
 *  1. A COPY starts at the first 'r' row of a table definition and runs
 *     until anything else happens on the connection (another table, another
 *     op, commit, checkpoint, flush, DDL): pg.c calls pgs_settle, which ends
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
 */
#include <stdio.h>
#include <string.h>

#include "sink/pg_sink.h"
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

static int copy_start(ps_sink *s, pgs_table *t, const ps_change *c, ps_error *err)
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
		rc = ps_buf_puts(&s->sql, ") FROM STDIN");
	if (rc != PS_OK)
		return ps_error_set(err, rc, "COPY statement for %s.%s too long", c->table->schema,
		                    c->table->name);
	s->copy_table = t;
	s->copy_src = c->table;
	res = PQexec(s->conn, s->sql.data);
	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		copy_what(s, what, sizeof(what));
		rc = pg_result_error(err, s->conn, res, what);
		s->copy_table = NULL;
		s->copy_src = NULL;
	} else {
		s->copying = true;
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
	if (!s->copying || s->copy_src != c->table)
		rc = copy_start(s, t, c, err);
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
