/*
 * pgsrc_copy.c — the PostgreSQL source's initial-load workers: a copier is one
 * normal connection holding one transaction that imported the exported
 * snapshot; copy_unit streams a table, or a key range of it, out of that
 * transaction with COPY ... TO STDOUT and hands each row to the caller;
 * copy_unit_raw streams it as binary COPY bytes, undecoded.
 *
 * NOTES ON THE DESIGN
 *
 * 1. One copier, one connection, one transaction: BEGIN ISOLATION LEVEL
 *    REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '<name>'. Every
 *    unit copied by a copier therefore sees the same snapshot, and a copier
 *    stays valid after the exporting session let the snapshot go (source.h
 *    invariant 6).
 * 2. Thread safety (source.h invariant 7): copy_open reads only src's
 *    configuration fields, which are fixed at open; a copier is used by one
 *    thread at a time and shares nothing with other copiers.
 * 3. Values never go into SQL text. COPY takes no parameters, so a unit's
 *    key bounds are first stored in transaction-local settings with a
 *    parameterised `SELECT set_config('penstock.lo_1', $1, true), ...`, and
 *    the COPY's WHERE reads them back as
 *    `current_setting('penstock.lo_1')::<column type>`. The range is a row
 *    comparison on the primary key in key order, `(k1, k2) >= (lo1, lo2)
 *    AND (k1, k2) < (hi1, hi2)`, which is exactly the order split's bounds
 *    were sorted in, so the units of a table partition it.
 * 4. Rows are parsed in place, in the buffer libpq hands over for each row
 *    (no copy); the ps_value array is reused across rows and units.
 * 5. When the row callback fails, the COPY is cancelled (PQcancel) and what
 *    is left of it drained, so the connection is idle again. The
 *    transaction is then aborted or in doubt, so the copier is marked
 *    broken: later units are refused and the caller can only close it.
 *
 * 6. The raw path (copy_unit_raw) runs the same COPY with (FORMAT binary)
 *    and passes the bytes on undecoded. Binary values are the same in every
 *    database only for built-in types (OID below 16384) that have binary
 *    send and receive functions: arrays and records carry type OIDs, and a
 *    user type's OID differs between databases. copy_raw_format checks that
 *    and names the format with the server's major version
 *    ("postgresql-binary-copy/15"), so a sink can refuse what it cannot be
 *    sure to read; the column types themselves the sink compares with
 *    def->table's type_id/type_mod.
 * 7. The server sends one CopyData message per row (the header rides with
 *    the first, the trailer comes alone). Each message is walked
 *    (pg_binwalk.c: rows counted, shape checked) and gathered into pieces
 *    of up to RAW_PIECE bytes for the callback; a bigger message goes on as
 *    it is. The last piece goes on only once the server ended the COPY
 *    without error and the walk saw the trailer: a stream cut short would
 *    otherwise load as a shorter table.
 *
 * States of a copier: ready ─► (copy_unit, copy_unit_raw) copying ─► ready
 *                                                              └─► broken (error)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_binwalk.h"
#include "source/pg/pg_internal.h"
#include "util/buf.h"
#include "util/pgconn.h"
#include "util/str.h"

#define COPY_SQL_LIMIT ((size_t)4 << 20)
#define COPY_MAX_KEYS 32   /* PostgreSQL's INDEX_MAX_KEYS */
#define RAW_PIECE ((size_t)64 << 10)   /* bytes gathered before the raw callback */
#define PG_FIRST_NORMAL_OID 16384u     /* below: built in, the same in every database */
#define PG_RAW_FORMAT_PREFIX "postgresql-binary-copy/"

struct ps_copier {
	PGconn *conn;
	ps_value *values;       /* reused for every row (note 4) */
	int nvalues_cap;
	bool broken;            /* note 5 */
	ps_buf raw;             /* binary COPY messages gathered (note 7) */
	int64_t raw_rows;       /* rows that end in raw */
};

/* --- COPY text rows -------------------------------------------------------- */

static int octal_digit(char c)
{
	return (c >= '0' && c <= '7') ? c - '0' : -1;
}

/* Decodes the escape whose letter is line[*i - 1] (the backslash is before
 * it), advancing *i over any further digits it takes. */
static unsigned char decode_escape(const char *line, size_t end, size_t *i, char c)
{
	int v, d;

	switch (c) {
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'v': return '\v';
	case 'x':
		if (*i >= end || ps_hex_value(line[*i]) < 0)
			return 'x';   /* \x without a digit is a plain x, as COPY FROM reads it */
		v = ps_hex_value(line[(*i)++]);
		if (*i < end && ps_hex_value(line[*i]) >= 0)
			v = v * 16 + ps_hex_value(line[(*i)++]);
		return (unsigned char)v;
	default:
		break;
	}
	v = octal_digit(c);
	if (v < 0)
		return (unsigned char)c;   /* any other character stands for itself */
	for (int k = 0; k < 2 && *i < end && (d = octal_digit(line[*i])) >= 0; k++) {
		v = v * 8 + d;
		(*i)++;
	}
	return (unsigned char)(v & 0xff);
}

int pg_copy_parse_row(char *line, size_t len, ps_value *values, int nvalues, ps_error *err)
{
	size_t end = len, i = 0, w = 0;
	int field = 0;

	if (end > 0 && line[end - 1] == '\n')
		end--;
	if (nvalues == 0) {
		if (end == 0)
			return PS_OK;
		return ps_error_set(err, PS_EPROTO, "COPY row has data but the table has no columns");
	}
	for (;;) {
		if (field >= nvalues)
			return ps_error_set(err, PS_EPROTO, "COPY row has more than the %d fields expected",
			                    nvalues);
		if (end - i >= 2 && line[i] == '\\' && line[i + 1] == 'N' &&
		    (i + 2 == end || line[i + 2] == '\t')) {
			values[field].kind = PS_VALUE_NULL;
			values[field].len = 0;
			values[field].data = NULL;
			i += 2;
		} else {
			size_t start = w;

			/* w <= i throughout: decoding only ever shrinks the text. */
			while (i < end && line[i] != '\t') {
				char c = line[i++];
				unsigned char b;

				if (c != '\\') {
					b = (unsigned char)c;
				} else if (i >= end) {
					return ps_error_set(err, PS_EPROTO,
					                    "COPY row ends with a backslash in field %d", field + 1);
				} else {
					c = line[i++];
					b = decode_escape(line, end, &i, c);
				}
				if (b == 0)
					return ps_error_set(err, PS_EPROTO, "COPY row has a NUL byte in field %d",
					                    field + 1);
				line[w++] = (char)b;
			}
			/* i == end, or line[i] is the tab: both already judged below
			 * from i, so the NUL may overwrite the tab. */
			values[field].kind = PS_VALUE_TEXT;
			values[field].len = (uint32_t)(w - start);
			values[field].data = line + start;
			line[w++] = '\0';
		}
		field++;
		if (i >= end)
			break;
		i++;   /* the tab; a tab ending the row leaves an empty last field */
	}
	if (field != nvalues)
		return ps_error_set(err, PS_EPROTO, "COPY row has %d fields, expected %d", field,
		                    nvalues);
	return PS_OK;
}

/* --- opening and closing ------------------------------------------------- */

int pg_copy_open(ps_source *src, const char *snapshot, ps_copier **out, ps_error *err)
{
	ps_copier *c = calloc(1, sizeof(*c));
	char app[96];
	ps_buf sql;
	int rc;

	*out = NULL;
	ps_buf_init(&sql, 1024);
	if (!c) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	ps_buf_init(&c->raw, RAW_PIECE);
	snprintf(app, sizeof(app), "penstock copy %s", src->job_name);
	rc = pg_connect(&c->conn, src->url, &src->parsed, src->password, false, app, err);
	if (rc != PS_OK)
		goto cleanup;
	rc = pg_exec(c->conn, NULL, err, "starting the copy transaction",
	             "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL);
	if (rc != PS_OK || !snapshot || !*snapshot)
		goto cleanup;
	ps_buf_puts(&sql, "SET TRANSACTION SNAPSHOT ");
	rc = pg_quote_literal(c->conn, &sql, snapshot);
	if (rc != PS_OK) {
		ps_error_set(err, rc, "snapshot name too long");
		goto cleanup;
	}
	rc = pg_exec(c->conn, NULL, err, "importing the exported snapshot", sql.data, 0, NULL);
	if (rc != PS_OK)
		ps_error_add_context(err, "snapshot %s", snapshot);
cleanup:
	ps_buf_free(&sql);
	if (rc != PS_OK) {
		pg_copy_close(c);
		return rc;
	}
	*out = c;
	return PS_OK;
}

void pg_copy_close(ps_copier *c)
{
	if (!c)
		return;
	if (c->conn) {
		PGTransactionStatusType st = PQtransactionStatus(c->conn);

		if (st == PQTRANS_INTRANS || st == PQTRANS_INERROR)
			PQclear(PQexec(c->conn, "ROLLBACK"));
		PQfinish(c->conn);
	}
	free(c->values);
	ps_buf_free(&c->raw);
	free(c);
}

/* --- building the unit's SQL ---------------------------------------------- */

void pg_put(int *rc, ps_buf *b, const char *s)
{
	if (*rc == PS_OK)
		*rc = ps_buf_puts(b, s);
}

void pg_put_ident(int *rc, PGconn *conn, ps_buf *b, const char *ident)
{
	if (*rc == PS_OK)
		*rc = pg_quote_ident(conn, b, ident);
}

void pg_put_columns(int *rc, PGconn *conn, ps_buf *b, const ps_table *t, const int *cols,
                    int ncols)
{
	for (int i = 0; i < ncols; i++) {
		pg_put(rc, b, i ? ", " : "");
		pg_put_ident(rc, conn, b, t->columns[cols ? cols[i] : i].name);
	}
}

void pg_put_table(int *rc, PGconn *conn, ps_buf *b, const ps_table *t)
{
	pg_put_ident(rc, conn, b, t->schema);
	pg_put(rc, b, ".");
	pg_put_ident(rc, conn, b, t->name);
}

/* "(k1, k2) <op> (current_setting('penstock.<tag>_1')::type1, ...)" */
static void put_key_compare(int *rc, PGconn *conn, ps_buf *b, const ps_table_def *def,
                            const int *keys, int nkeys, const char *op, const char *tag)
{
	char name[64];

	pg_put(rc, b, "(");
	pg_put_columns(rc, conn, b, def->table, keys, nkeys);
	pg_put(rc, b, ") ");
	pg_put(rc, b, op);
	pg_put(rc, b, " (");
	for (int k = 0; k < nkeys; k++) {
		snprintf(name, sizeof(name), "%scurrent_setting('penstock.%s_%d')::", k ? ", " : "",
		         tag, k + 1);
		pg_put(rc, b, name);
		pg_put(rc, b, def->columns[keys[k]].sql_type);
	}
	pg_put(rc, b, ")");
}

/* The partition a unit is narrowed to (tabledef.h ps_copy_range), or NULL. */
static const ps_partition_def *unit_partition(const ps_table_def *def, const ps_copy_range *range)
{
	char qualified[300];

	for (int i = 0; range && range->partition && i < def->npartitions; i++) {
		snprintf(qualified, sizeof(qualified), "%s.%s", def->partitions[i].schema,
		         def->partitions[i].name);
		if (strcmp(qualified, range->partition) == 0)
			return &def->partitions[i];
	}
	return NULL;
}

static int build_copy_sql(PGconn *conn, ps_buf *sql, const ps_table_def *def,
                          const ps_copy_range *range, const int *keys, int nkeys, bool binary)
{
	const ps_table *t = def->table;
	const ps_partition_def *part = unit_partition(def, range);
	bool lower = range && range->lower, upper = range && range->upper;
	/* COPY cannot read a partitioned table itself, only a query on it */
	bool query = lower || upper || t->ncolumns == 0 || (def->partition_by && !part);
	int rc = PS_OK;

	if (range && range->partition && !part)
		return PS_EINVAL;
	pg_put(&rc, sql, query ? "COPY (SELECT " : "COPY ");
	if (!query && part) {
		pg_put_ident(&rc, conn, sql, part->schema);
		pg_put(&rc, sql, ".");
		pg_put_ident(&rc, conn, sql, part->name);
		pg_put(&rc, sql, " (");
	} else if (!query) {
		pg_put_table(&rc, conn, sql, t);
		pg_put(&rc, sql, " (");
	}
	pg_put_columns(&rc, conn, sql, t, NULL, t->ncolumns);
	if (!query) {
		pg_put(&rc, sql, binary ? ") TO STDOUT (FORMAT binary)" : ") TO STDOUT");
		return rc;
	}
	pg_put(&rc, sql, " FROM ");
	if (part) {
		pg_put(&rc, sql, "ONLY ");
		pg_put_ident(&rc, conn, sql, part->schema);
		pg_put(&rc, sql, ".");
		pg_put_ident(&rc, conn, sql, part->name);
	} else {
		pg_put_table(&rc, conn, sql, t);
	}
	if (lower || upper)
		pg_put(&rc, sql, " WHERE ");
	if (lower)
		put_key_compare(&rc, conn, sql, def, keys, nkeys, ">=", "lo");
	if (lower && upper)
		pg_put(&rc, sql, " AND ");
	if (upper)
		put_key_compare(&rc, conn, sql, def, keys, nkeys, "<", "hi");
	pg_put(&rc, sql, binary ? ") TO STDOUT (FORMAT binary)" : ") TO STDOUT");
	return rc;
}

/* Stores the range's bound values in transaction-local settings (note 3). */
static int set_range_params(ps_copier *c, const ps_copy_range *range, int nkeys, ps_error *err)
{
	const char *params[2 * COPY_MAX_KEYS];
	const ps_key_bound *b[2] = {range->lower, range->upper};
	const char *tag[2] = {"lo", "hi"};
	char piece[96];
	ps_buf sql;
	int n = 0, rc = PS_OK;

	ps_buf_init(&sql, 64u << 10);
	pg_put(&rc, &sql, "SELECT ");
	for (int side = 0; side < 2; side++) {
		for (int k = 0; b[side] && k < nkeys; k++) {
			params[n] = b[side]->values[k];
			snprintf(piece, sizeof(piece), "%sset_config('penstock.%s_%d', $%d, true)",
			         n ? ", " : "", tag[side], k + 1, n + 1);
			pg_put(&rc, &sql, piece);
			n++;
		}
	}
	if (rc != PS_OK)
		ps_error_set(err, rc, "key range statement too long");
	else
		rc = pg_exec(c->conn, NULL, err, "setting the key range", sql.data, n, params);
	ps_buf_free(&sql);
	return rc;
}

static int check_range(const ps_table_def *def, const ps_copy_range *range, int nkeys,
                       ps_error *err)
{
	const ps_key_bound *b[2] = {range->lower, range->upper};

	if (!range->lower && !range->upper)
		return PS_OK;
	if (nkeys == 0 || nkeys > COPY_MAX_KEYS)
		return ps_error_set(err, PS_EINVAL, "a key range needs a primary key, and %s.%s has "
		                    "no usable one", def->table->schema, def->table->name);
	for (int side = 0; side < 2; side++) {
		if (!b[side])
			continue;
		if (b[side]->nvalues != nkeys)
			return ps_error_set(err, PS_EINVAL, "key bound has %d values, the primary key "
			                    "has %d columns", b[side]->nvalues, nkeys);
		for (int k = 0; k < nkeys; k++)
			if (!b[side]->values || !b[side]->values[k])
				return ps_error_set(err, PS_EINVAL, "key bound value %d is missing", k + 1);
	}
	return PS_OK;
}

/* --- streaming the rows ------------------------------------------------------ */

/* Reads the results that follow a COPY until libpq has none left; the first
 * one tells whether the COPY succeeded. */
static int finish_copy(ps_copier *c, ps_error *err)
{
	PGresult *r = PQgetResult(c->conn);
	int rc = PS_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = pg_result_error(err, c->conn, r, "COPY");
		c->broken = true;
	}
	PQclear(r);
	while ((r = PQgetResult(c->conn)) != NULL)
		PQclear(r);
	return rc;
}

/* Stops a COPY whose rows are no longer wanted (note 5). */
static void cancel_copy(ps_copier *c)
{
	PGcancel *cancel = PQgetCancel(c->conn);
	char errbuf[256];
	char *row = NULL;

	if (cancel) {
		PQcancel(cancel, errbuf, sizeof(errbuf));
		PQfreeCancel(cancel);
	}
	while (PQgetCopyData(c->conn, &row, 0) > 0) {
		PQfreemem(row);
		row = NULL;
	}
	finish_copy(c, NULL);
	c->broken = true;
}

/* Makes sure a failing callback left an error message. */
static int callback_failed(int rc, ps_error *err)
{
	if (rc != PS_OK && err && err->code == PS_OK)
		ps_error_set(err, rc, "the copy callback failed (%s)", ps_error_code_name(rc));
	return rc;
}

static int read_rows(ps_copier *c, const ps_table_def *def, ps_row_fn fn, void *ctx,
                     ps_error *err)
{
	int ncols = def->table->ncolumns;

	for (;;) {
		char *row = NULL;
		int n = PQgetCopyData(c->conn, &row, 0);
		int rc;

		if (n == -1)
			return finish_copy(c, err);
		if (n < 0) {
			rc = pg_result_error(err, c->conn, NULL, "reading COPY data");
			finish_copy(c, NULL);
			c->broken = true;
			return rc;
		}
		rc = pg_copy_parse_row(row, (size_t)n, c->values, ncols, err);
		if (rc == PS_OK)
			rc = callback_failed(fn(ctx, def->table, c->values, err), err);
		PQfreemem(row);
		if (rc != PS_OK) {
			cancel_copy(c);
			return rc;
		}
	}
}

/* Sets the unit's range and starts its COPY ... TO STDOUT, text or binary. */
static int start_copy(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                      bool binary, ps_error *err)
{
	const int *keys = NULL;
	int nkeys = 0, rc;
	PGresult *r = NULL;
	ps_buf sql;

	if (c->broken)
		return ps_error_set(err, PS_EINVAL, "this copier failed earlier; close it and open "
		                    "another");
	pg_primary_key(def, &keys, &nkeys);
	rc = check_range(def, range, nkeys, err);
	if (rc != PS_OK)
		return rc;
	if (range->lower || range->upper) {
		rc = set_range_params(c, range, nkeys, err);
		if (rc != PS_OK) {
			c->broken = true;   /* the transaction is aborted */
			return rc;
		}
	}
	ps_buf_init(&sql, COPY_SQL_LIMIT);
	rc = build_copy_sql(c->conn, &sql, def, range, keys, nkeys, binary);
	if (rc == PS_EINVAL) {
		ps_buf_free(&sql);
		return ps_error_set(err, rc, "%s is not a partition of %s.%s any more; start the load "
		                    "over with \"resume\": \"never\"", range->partition,
		                    def->table->schema, def->table->name);
	}
	if (rc != PS_OK) {
		ps_buf_free(&sql);
		return ps_error_set(err, rc, "COPY statement too long");
	}
	r = PQexec(c->conn, sql.data);
	ps_buf_free(&sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		rc = pg_result_error(err, c->conn, r, "starting COPY");
		PQclear(r);
		c->broken = true;
		return rc;
	}
	PQclear(r);
	return PS_OK;
}

int pg_copy_unit(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                 ps_row_fn fn, void *ctx, ps_error *err)
{
	static const ps_copy_range whole = {NULL, NULL, NULL};
	int ncols = def->table->ncolumns, rc;

	if (!range)
		range = &whole;
	if (ncols > c->nvalues_cap) {
		ps_value *v = realloc(c->values, (size_t)ncols * sizeof(*v));

		if (!v)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		c->values = v;
		c->nvalues_cap = ncols;
	}
	rc = start_copy(c, def, range, false, err);
	if (rc != PS_OK)
		return rc;
	return read_rows(c, def, fn, ctx, err);
}

/* --- the raw path: binary COPY passed through ------------------------------ */

/* "postgresql-binary-copy/<major>": binary COPY as this server's major
 * version writes it (note 6). */
static void raw_format_name(PGconn *conn, char *buf, size_t len)
{
	int v = PQserverVersion(conn);

	snprintf(buf, len, "%s%d", PG_RAW_FORMAT_PREFIX, v >= 100000 ? v / 10000 : v / 100);
}

/* Types of def's columns that binary COPY cannot carry between databases:
 * no binary send or receive function, or an array of a type that is not
 * built in (array values carry their element type's OID). */
static const char *const UNFIT_TYPES_SQL =
	"SELECT format_type(t.oid, NULL) FROM pg_catalog.pg_type t "
	"LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typlen = -1 "
	"WHERE t.oid = ANY($1::oid[]) AND (t.typsend = 0 OR t.typreceive = 0 "
	"  OR e.oid >= 16384 OR e.typsend = 0 OR e.typreceive = 0) "
	"ORDER BY 1 LIMIT 1";

int pg_copy_raw_format(ps_copier *c, const ps_table_def *def, char *format, size_t format_len,
                       char *why, size_t why_len, ps_error *err)
{
	const ps_table *t = def->table;
	const char *params[1];
	PGresult *r = NULL;
	ps_buf oids;
	int rc = PS_OK;

	format[0] = '\0';
	if (c->broken)
		return ps_error_set(err, PS_EINVAL, "this copier failed earlier; close it and open "
		                    "another");
	if (t->ncolumns == 0) {
		snprintf(why, why_len, "it has no columns");
		return PS_OK;
	}
	for (int i = 0; i < t->ncolumns; i++) {
		if (t->columns[i].type_id < PG_FIRST_NORMAL_OID)
			continue;
		snprintf(why, why_len, "column %s has type %s, which is not built in (its binary "
		         "form names type numbers that differ between databases)",
		         t->columns[i].name, def->columns[i].sql_type ? def->columns[i].sql_type : "?");
		return PS_OK;
	}
	ps_buf_init(&oids, (size_t)t->ncolumns * 12 + 16);
	rc = ps_buf_putc(&oids, '{');
	for (int i = 0; rc == PS_OK && i < t->ncolumns; i++)
		rc = ps_buf_printf(&oids, "%s%u", i ? "," : "", t->columns[i].type_id);
	if (rc == PS_OK)
		rc = ps_buf_putc(&oids, '}');
	if (rc != PS_OK) {
		ps_buf_free(&oids);
		return ps_error_set(err, rc, "out of memory");
	}
	params[0] = oids.data;
	rc = pg_exec(c->conn, &r, err, "checking column types for binary COPY", UNFIT_TYPES_SQL,
	             1, params);
	ps_buf_free(&oids);
	if (rc != PS_OK) {
		c->broken = true;   /* the transaction is aborted */
		return rc;
	}
	if (PQntuples(r) > 0)
		snprintf(why, why_len, "type %s has no binary form that can move between "
		         "databases", PQgetvalue(r, 0, 0));
	else
		raw_format_name(c->conn, format, format_len);
	PQclear(r);
	return PS_OK;
}

/* Hands what the copier gathered to fn (note 7). */
static int raw_flush(ps_copier *c, ps_raw_fn fn, void *ctx, ps_error *err)
{
	int rc;

	if (c->raw.len == 0)
		return PS_OK;
	rc = callback_failed(fn(ctx, c->raw.data, c->raw.len, c->raw_rows, err), err);
	ps_buf_reset(&c->raw);
	c->raw_rows = 0;
	return rc;
}

/* One CopyData message: walked (rows counted, shape checked), then gathered
 * or, when big, handed on as it is. */
static int raw_take(ps_copier *c, pg_binwalk *walk, const char *data, size_t len,
                    ps_raw_fn fn, void *ctx, ps_error *err)
{
	int64_t rows = 0;
	int rc = pg_binwalk_feed(walk, data, len, &rows, err);

	if (rc == PS_OK && c->raw.len + len > RAW_PIECE)
		rc = raw_flush(c, fn, ctx, err);
	if (rc != PS_OK)
		return rc;
	if (len >= RAW_PIECE)
		return callback_failed(fn(ctx, data, len, rows, err), err);
	rc = ps_buf_append(&c->raw, data, len);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	c->raw_rows += rows;
	return PS_OK;
}

int pg_copy_unit_raw(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                     ps_raw_fn fn, void *ctx, ps_error *err)
{
	static const ps_copy_range whole = {NULL, NULL, NULL};
	pg_binwalk walk;
	int rc;

	if (!range)
		range = &whole;
	ps_buf_reset(&c->raw);
	c->raw_rows = 0;
	rc = start_copy(c, def, range, true, err);
	if (rc != PS_OK)
		return rc;
	pg_binwalk_init(&walk, def->table->ncolumns);
	for (;;) {
		char *data = NULL;
		int n = PQgetCopyData(c->conn, &data, 0);

		if (n == -1) {
			rc = finish_copy(c, err);
			break;
		}
		if (n < 0) {
			rc = pg_result_error(err, c->conn, NULL, "reading COPY data");
			finish_copy(c, NULL);
			c->broken = true;
			return rc;
		}
		rc = raw_take(c, &walk, data, (size_t)n, fn, ctx, err);
		PQfreemem(data);
		if (rc != PS_OK) {
			cancel_copy(c);
			return rc;
		}
	}
	/* The server's COPY is over: hand on the rest only if it succeeded and
	 * the stream is whole (a stream cut short would load as a short one). */
	if (rc == PS_OK)
		rc = pg_binwalk_finish(&walk, err);
	if (rc == PS_OK)
		rc = raw_flush(c, fn, ctx, err);
	ps_buf_reset(&c->raw);
	c->raw_rows = 0;
	return rc;
}
