/*
 * my_snapshot.c — what the MySQL/MariaDB source tells the initial load: the
 * selected tables' definitions (describe), key ranges (split), consistent
 * snapshots and the copy workers' connections.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Snapshots. MariaDB cannot share one snapshot between sessions. Each
 *    copy worker opens its own with START TRANSACTION WITH CONSISTENT
 *    SNAPSHOT (REPEATABLE READ, InnoDB), which MariaDB aligns with the
 *    binlog: SHOW STATUS LIKE 'binlog_snapshot_%' gives the file and offset
 *    of exactly that snapshot (and BINLOG_GTID_POS its GTID state), with no
 *    global lock (what mariadb-dump --single-transaction does). The
 *    copier tells the load that point (source.h copy_point); every unit
 *    records the point it was read at, the stream starts at prepare's point,
 *    which is at or before every copier's, and the core applies each table's
 *    changes up to its newest unit point in re-processing mode and skips
 *    those at or before its oldest (seed 002's overlap, ILUPDATE). So there
 *    is neither a gap nor a lasting duplicate, with no FLUSH TABLES WITH
 *    READ LOCK and no RELOAD privilege.
 * 2. The "exported snapshot" of the contract is therefore a name only
 *    ("consistent-snapshot"); snapshot_export (a resumed load) just reads
 *    the binlog's end as the new point.
 * 3. split walks the primary key once in key order (an index-only scan,
 *    streamed with mysql_use_result) and keeps every chunk_rows-th key:
 *    exact bounds with one read of the index.
 * 4. Ranges are compared as row constructors ((k1, k2) >= (v1, v2)) with
 *    the bounds as literals of their type class: MariaDB uses the primary
 *    key for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/my_internal.h"
#include "util/log.h"
#include "util/myconn.h"

struct ps_copier {
	ps_source *src;           /* only its fixed configuration is read */
	MYSQL *conn;
	char point[PS_POSITION_MAX];
};

/* --- describe ------------------------------------------------------------------ */

static uint32_t type_code(const char *t)
{
	static const struct { const char *name; uint32_t code; } map[] = {
		{"tinyint", PS_MYSQL_TYPE_TINY}, {"smallint", PS_MYSQL_TYPE_SHORT},
		{"mediumint", PS_MYSQL_TYPE_INT24}, {"int", PS_MYSQL_TYPE_LONG},
		{"bigint", PS_MYSQL_TYPE_LONGLONG}, {"float", PS_MYSQL_TYPE_FLOAT},
		{"double", PS_MYSQL_TYPE_DOUBLE}, {"decimal", PS_MYSQL_TYPE_NEWDECIMAL},
		{"date", PS_MYSQL_TYPE_DATE}, {"time", PS_MYSQL_TYPE_TIME2},
		{"datetime", PS_MYSQL_TYPE_DATETIME2}, {"timestamp", PS_MYSQL_TYPE_TIMESTAMP2},
		{"year", PS_MYSQL_TYPE_YEAR}, {"bit", PS_MYSQL_TYPE_BIT},
		{"char", PS_MYSQL_TYPE_STRING}, {"binary", PS_MYSQL_TYPE_STRING},
		{"varchar", PS_MYSQL_TYPE_VARCHAR}, {"varbinary", PS_MYSQL_TYPE_VARCHAR},
		{"enum", PS_MYSQL_TYPE_ENUM}, {"set", PS_MYSQL_TYPE_SET},
		{"tinytext", PS_MYSQL_TYPE_TINY_BLOB}, {"tinyblob", PS_MYSQL_TYPE_TINY_BLOB},
		{"text", PS_MYSQL_TYPE_BLOB}, {"blob", PS_MYSQL_TYPE_BLOB},
		{"mediumtext", PS_MYSQL_TYPE_MEDIUM_BLOB}, {"mediumblob", PS_MYSQL_TYPE_MEDIUM_BLOB},
		{"longtext", PS_MYSQL_TYPE_LONG_BLOB}, {"longblob", PS_MYSQL_TYPE_LONG_BLOB},
		{"uuid", PS_MYSQL_TYPE_STRING}, {"inet6", PS_MYSQL_TYPE_STRING},
		{"inet4", PS_MYSQL_TYPE_STRING},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, t) == 0)
			return map[i].code;
	return PS_MYSQL_TYPE_GEOMETRY;   /* the spatial types */
}

static char *dupstr(const char *s, int *rc)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*rc = PS_ENOMEM;
	return d;
}

/* "PRIMARY KEY (`a`, `b`)" / "UNIQUE (`a`)": MariaDB's own spelling. */
static char *key_sql(const my_tableinfo *t, const my_keyinfo *k)
{
	ps_buf b;

	ps_buf_init(&b, 1 << 16);
	ps_buf_puts(&b, k->kind == 'p' ? "PRIMARY KEY (" : "UNIQUE (");
	for (int i = 0; i < k->ncols; i++) {
		if (i)
			ps_buf_puts(&b, ", ");
		my_quote_ident(&b, t->cols[k->cols[i]].name);
	}
	ps_buf_puts(&b, ")");
	return ps_buf_detach(&b);
}

static int describe_one(const my_tableinfo *t, ps_table_def **out, ps_error *err)
{
	ps_table_def *def = calloc(1, sizeof(*def));
	const my_keyinfo *pk = t->has_pk ? &t->keys[0] : NULL;
	int rc = PS_OK;

	*out = NULL;
	if (!def)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	def->table = ps_table_new(0, t->ncols);   /* no stable identity (change.h) */
	def->engine = strdup("mysql");
	def->columns = calloc((size_t)t->ncols + 1, sizeof(ps_column_def));
	def->constraints = calloc((size_t)t->nkeys + 1, sizeof(ps_constraint_def));
	if (!def->table || !def->engine || !def->columns || !def->constraints ||
	    ps_table_set_names(def->table, t->db, t->name) != PS_OK) {
		ps_table_def_free(def);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	def->table->engine = "mysql";
	for (int i = 0; rc == PS_OK && i < t->ncols; i++) {
		const my_colinfo *c = &t->cols[i];
		bool key = false;
		for (int j = 0; pk && j < pk->ncols; j++)
			key |= pk->cols[j] == i;
		rc = ps_table_set_column(def->table, i, c->name, type_code(c->data_type),
		                         c->is_unsigned ? 1 : -1, c->type_class, key);
		def->columns[i].sql_type = dupstr(c->json ? "json" : c->column_type, &rc);
		def->columns[i].default_expr = dupstr(c->default_expr, &rc);
		def->columns[i].not_null = !c->nullable;
		def->columns[i].identity = c->auto_increment ? 'd' : 0;
	}
	for (int k = 0; rc == PS_OK && k < t->nkeys; k++) {
		const my_keyinfo *ki = &t->keys[k];
		ps_constraint_def *cd = &def->constraints[def->nconstraints];

		cd->kind = ki->kind == 'p' ? PS_CONSTRAINT_PRIMARY
		           : ki->kind == 'u' ? PS_CONSTRAINT_UNIQUE : PS_CONSTRAINT_INDEX;
		cd->name = dupstr(ki->name, &rc);
		cd->sql = ki->kind == 'i' ? NULL : key_sql(t, ki);
		cd->cols = malloc(((size_t)ki->ncols + 1) * sizeof(int));
		if (!cd->cols || (ki->kind != 'i' && !cd->sql)) {
			rc = PS_ENOMEM;
			break;
		}
		memcpy(cd->cols, ki->cols, (size_t)ki->ncols * sizeof(int));
		cd->ncols = ki->ncols;
		def->nconstraints++;
	}
	def->has_primary_key = pk != NULL;
	def->estimated_rows = t->rows;
	def->estimated_bytes = t->bytes;
	if (rc != PS_OK) {
		ps_table_def_free(def);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	*out = def;
	return PS_OK;
}

int my_describe_infos(const my_tableinfo *infos, size_t n, ps_table_def ***defs, ps_error *err)
{
	ps_table_def **out = calloc(n + 1, sizeof(*out));
	int rc = PS_OK;

	*defs = NULL;
	if (!out)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t i = 0; rc == PS_OK && i < n; i++)
		rc = describe_one(&infos[i], &out[i], err);
	if (rc != PS_OK) {
		for (size_t i = 0; i < n; i++)
			ps_table_def_free(out[i]);
		free(out);
		return rc;
	}
	*defs = out;
	return PS_OK;
}

int my_describe_infos_keyless(const my_tableinfo *infos, size_t n, int keyless,
                              ps_table_def ***defs, ps_error *err)
{
	int rc = my_describe_infos(infos, n, defs, err);

	for (size_t i = 0; rc == PS_OK && i < n; i++)
		(*defs)[i]->insert_only = !infos[i].has_pk && keyless == PS_KEYLESS_INSERT_ONLY;
	return rc;
}

int my_describe(ps_source *src, ps_table_def ***defs, size_t *n, ps_error *err)
{
	int rc = my_describe_infos_keyless(src->tables, src->ntables, src->keyless, defs, err);

	*n = rc == PS_OK ? src->ntables : 0;
	return rc;
}

/* --- key ranges ---------------------------------------------------------------- */

static void primary_key(const ps_table_def *def, const int **keys, int *nkeys)
{
	*keys = NULL;
	*nkeys = 0;
	for (int i = 0; def->has_primary_key && i < def->nconstraints; i++)
		if (def->constraints[i].kind == PS_CONSTRAINT_PRIMARY) {
			*keys = def->constraints[i].cols;
			*nkeys = def->constraints[i].ncols;
			return;
		}
}

static int put_table(ps_buf *b, const ps_table *t)
{
	int rc = my_quote_ident(b, t->schema);

	if (rc == PS_OK)
		rc = ps_buf_putc(b, '.');
	if (rc == PS_OK)
		rc = my_quote_ident(b, t->name);
	return rc;
}

int my_put_literal(MYSQL *conn, ps_buf *b, int cls, const char *text)
{
	size_t n = strlen(text);

	switch (cls) {
	case PS_TYPE_INTEGER:
	case PS_TYPE_NUMERIC:
	case PS_TYPE_FLOAT:
		for (size_t i = 0; i < n; i++)
			if (!strchr("0123456789-+.eE", text[i]))
				return PS_EINVAL;
		return ps_buf_append(b, text, n);
	case PS_TYPE_BYTES:
		if (n < 2 || text[0] != '\\' || text[1] != 'x')
			return PS_EINVAL;
		for (size_t i = 2; i < n; i++)
			if (!strchr("0123456789abcdefABCDEF", text[i]))
				return PS_EINVAL;
		return ps_buf_printf(b, "X'%s'", text + 2);
	case PS_TYPE_TIMESTAMPTZ: {
		char tmp[64];
		snprintf(tmp, sizeof(tmp), "%s", text);
		if (n > 3 && strcmp(tmp + strlen(tmp) - 3, "+00") == 0)
			tmp[strlen(tmp) - 3] = '\0';
		return my_quote_literal(conn, b, tmp);
	}
	default:
		return my_quote_literal(conn, b, text);
	}
}

static int put_key_cols(ps_buf *b, const ps_table *t, const int *keys, int nkeys)
{
	int rc = ps_buf_puts(b, nkeys > 1 ? "(" : "");

	for (int i = 0; rc == PS_OK && i < nkeys; i++) {
		if (i)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = my_quote_ident(b, t->columns[keys[i]].name);
	}
	if (rc == PS_OK && nkeys > 1)
		rc = ps_buf_puts(b, ")");
	return rc;
}

static int put_bound(MYSQL *conn, ps_buf *b, const ps_table *t, const int *keys, int nkeys,
                     const char *op, const ps_key_bound *k)
{
	int rc = put_key_cols(b, t, keys, nkeys);

	if (rc == PS_OK)
		rc = ps_buf_printf(b, " %s %s", op, nkeys > 1 ? "(" : "");
	for (int i = 0; rc == PS_OK && i < nkeys && i < k->nvalues; i++) {
		if (i)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = my_put_literal(conn, b, t->columns[keys[i]].type_class, k->values[i]);
	}
	if (rc == PS_OK && nkeys > 1)
		rc = ps_buf_puts(b, ")");
	return rc;
}

int my_split(ps_source *src, const ps_table_def *def, int64_t chunk_rows, ps_key_bound **bounds,
             size_t *nbounds, ps_error *err)
{
	const ps_table *t = def->table;
	const int *keys;
	int nkeys, rc;
	ps_buf sql, val;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_key_bound *out = NULL;
	size_t n = 0, cap = 0;
	int64_t seen = 0;

	*bounds = NULL;
	*nbounds = 0;
	primary_key(def, &keys, &nkeys);
	if (nkeys == 0 || chunk_rows <= 0)
		return PS_OK;
	ps_buf_init(&sql, 1 << 16);
	ps_buf_init(&val, 1 << 24);
	rc = ps_buf_puts(&sql, "SELECT ");
	for (int i = 0; rc == PS_OK && i < nkeys; i++) {
		if (i)
			rc = ps_buf_puts(&sql, ", ");
		if (rc == PS_OK)
			rc = my_select_expr(&sql, def, keys[i]);
	}
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " FROM ");
	if (rc == PS_OK)
		rc = put_table(&sql, t);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " ORDER BY ");
	for (int i = 0; rc == PS_OK && i < nkeys; i++) {
		if (i)
			rc = ps_buf_puts(&sql, ", ");
		if (rc == PS_OK)
			rc = my_quote_ident(&sql, t->columns[keys[i]].name);
	}
	if (rc != PS_OK) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (mysql_real_query(src->sql, sql.data, sql.len) != 0 ||
	    !(res = mysql_use_result(src->sql))) {
		rc = my_error(err, src->sql, "reading the primary key to split the table");
		goto cleanup;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *lens = mysql_fetch_lengths(res);
		ps_key_bound *kb;

		if (++seen % chunk_rows != 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			ps_key_bound *g = realloc(out, ncap * sizeof(*out));
			if (!g) {
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
				break;
			}
			out = g;
			cap = ncap;
		}
		kb = &out[n];
		kb->nvalues = nkeys;
		kb->values = calloc((size_t)nkeys, sizeof(char *));
		if (!kb->values) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		n++;
		for (int i = 0; rc == PS_OK && i < nkeys; i++) {
			bool is_null = false;
			ps_buf_reset(&val);
			rc = my_value_canon(def, keys[i], row[i] ? row[i] : "", lens[i], &val, &is_null,
			                    false, err);
			if (rc == PS_OK && !(kb->values[i] = strdup(val.data ? val.data : "")))
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		if (rc != PS_OK)
			break;
	}
	if (rc == PS_OK && mysql_errno(src->sql))
		rc = my_error(err, src->sql, "reading the primary key to split the table");
	/* a bound at the very last key would leave an empty last unit: harmless */
cleanup:
	if (res)
		mysql_free_result(res);
	ps_buf_free(&sql);
	ps_buf_free(&val);
	if (rc != PS_OK) {
		for (size_t i = 0; i < n; i++) {
			ps_key_bound_clear(&out[i]);
		}
		free(out);
		return rc;
	}
	*bounds = out;
	*nbounds = n;
	return PS_OK;
}

/* --- snapshots ------------------------------------------------------------------ */

int my_snapshot_export(ps_source *src, char *name, size_t name_len, char *point,
                       size_t point_len, ps_error *err)
{
	int rc = my_current_position(src, src->snap_point, sizeof(src->snap_point), err);

	if (rc != PS_OK)
		return rc;
	src->snap_exported = true;
	snprintf(name, name_len, "consistent-snapshot");
	snprintf(point, point_len, "%s", src->snap_point);
	return PS_OK;
}

int my_snapshot_release(ps_source *src, ps_error *err)
{
	(void)err;
	src->snap_exported = false;
	return PS_OK;
}

int my_copy_open(ps_source *src, const char *snapshot, ps_copier **out, ps_error *err)
{
	ps_copier *c = calloc(1, sizeof(*c));
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	char file[MY_FILE_MAX] = "", gtid[PS_POSITION_MAX] = "";
	unsigned long long off = 0;
	ps_buf sql;
	bool found;
	int rc;

	(void)snapshot;
	*out = NULL;
	if (!c)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	c->src = src;
	rc = my_source_connect(src, &c->conn, "copy", 0, err);
	if (rc == PS_OK)
		rc = my_exec(c->conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		             "setting the isolation level", err);
	if (rc == PS_OK)
		rc = my_exec(c->conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
		             "starting a consistent snapshot", err);
	if (rc == PS_OK)
		rc = my_query(c->conn, "SHOW STATUS LIKE 'binlog_snapshot_%'", &r,
		              "reading the snapshot's binlog position", err);
	while (rc == PS_OK && (row = mysql_fetch_row(r)) != NULL) {
		if (row[0] && row[1] && strcmp(row[0], "Binlog_snapshot_file") == 0)
			snprintf(file, sizeof(file), "%s", row[1]);
		else if (row[0] && row[1] && strcmp(row[0], "Binlog_snapshot_position") == 0)
			off = strtoull(row[1], NULL, 10);
	}
	if (r)
		mysql_free_result(r);
	if (rc == PS_OK && !file[0])
		rc = ps_error_set(err, PS_EINVAL, "the server gives no binlog position for a "
		                  "consistent snapshot (Binlog_snapshot_file is empty): is log_bin on?");
	if (rc == PS_OK) {
		ps_buf_init(&sql, 1024);
		ps_buf_puts(&sql, "SELECT BINLOG_GTID_POS(");
		my_quote_literal(c->conn, &sql, file);
		ps_buf_printf(&sql, ", %llu)", off);
		rc = sql.data ? my_query_text(c->conn, sql.data, gtid, sizeof(gtid), &found,
		                              "reading the snapshot's GTID state", err)
		              : ps_error_set(err, PS_ENOMEM, "out of memory");
		ps_buf_free(&sql);
	}
	if (rc != PS_OK) {
		my_copy_close(c);
		return rc;
	}
	my_pos_format(c->point, sizeof(c->point), file, off, gtid);
	*out = c;
	return PS_OK;
}

int my_copy_point(ps_copier *c, char *point, size_t len)
{
	snprintf(point, len, "%s", c->point);
	return 1;
}

void my_copy_close(ps_copier *c)
{
	if (!c)
		return;
	if (c->conn)
		mysql_close(c->conn);
	free(c);
}

/* --- reading rows --------------------------------------------------------------- */

int my_select_rows(MYSQL *conn, const ps_table_def *def, const ps_copy_range *range,
                   const ps_key_bound *after, int limit, bool zero_dates_null, ps_row_fn fn,
                   void *ctx, int *nrows, ps_error *err)
{
	const ps_table *t = def->table;
	const int *keys;
	int nkeys, rc, count = 0;
	bool where = false;
	ps_buf sql, text;
	size_t *offs = NULL;
	ps_value *vals = NULL;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;

	if (nrows)
		*nrows = 0;
	primary_key(def, &keys, &nkeys);
	ps_buf_init(&sql, 1 << 20);
	ps_buf_init(&text, (size_t)1 << 31);
	vals = calloc((size_t)t->ncolumns + 1, sizeof(ps_value));
	offs = calloc((size_t)t->ncolumns + 1, sizeof(size_t));
	if (!vals || !offs) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = ps_buf_puts(&sql, "SELECT ");
	for (int i = 0; rc == PS_OK && i < t->ncolumns; i++) {
		if (i)
			rc = ps_buf_puts(&sql, ", ");
		if (rc == PS_OK)
			rc = my_select_expr(&sql, def, i);
	}
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " FROM ");
	if (rc == PS_OK)
		rc = put_table(&sql, t);
	if (rc == PS_OK && nkeys && range && range->lower) {
		rc = ps_buf_puts(&sql, " WHERE ");
		if (rc == PS_OK)
			rc = put_bound(conn, &sql, t, keys, nkeys, ">=", range->lower);
		where = true;
	}
	if (rc == PS_OK && nkeys && range && range->upper) {
		rc = ps_buf_puts(&sql, where ? " AND " : " WHERE ");
		if (rc == PS_OK)
			rc = put_bound(conn, &sql, t, keys, nkeys, "<", range->upper);
		where = true;
	}
	if (rc == PS_OK && nkeys && after) {
		rc = ps_buf_puts(&sql, where ? " AND " : " WHERE ");
		if (rc == PS_OK)
			rc = put_bound(conn, &sql, t, keys, nkeys, ">", after);
	}
	if (rc == PS_OK && nkeys && limit > 0) {
		rc = ps_buf_puts(&sql, " ORDER BY ");
		for (int i = 0; rc == PS_OK && i < nkeys; i++) {
			if (i)
				rc = ps_buf_puts(&sql, ", ");
			if (rc == PS_OK)
				rc = my_quote_ident(&sql, t->columns[keys[i]].name);
		}
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, " LIMIT %d", limit);
	}
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc == PS_EINVAL ? PS_EINVAL : PS_ENOMEM,
		                  "cannot write the SELECT for %s.%s (a key bound that is not of its "
		                  "column's type, or too long)", t->schema, t->name);
		goto cleanup;
	}
	if (mysql_real_query(conn, sql.data, sql.len) != 0 || !(res = mysql_use_result(conn))) {
		rc = my_error(err, conn, "reading rows");
		goto cleanup;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *lens = mysql_fetch_lengths(res);

		ps_buf_reset(&text);
		for (int i = 0; rc == PS_OK && i < t->ncolumns; i++) {
			bool is_null = !row[i];
			offs[i] = text.len;
			if (!is_null)
				rc = my_value_canon(def, i, row[i], lens[i], &text, &is_null, zero_dates_null,
				                    err);
			if (rc == PS_OK)
				rc = ps_buf_putc(&text, '\0');
			vals[i].kind = is_null ? PS_VALUE_NULL : PS_VALUE_TEXT;
			vals[i].len = is_null ? 0 : (uint32_t)(text.len - 1 - offs[i]);
		}
		if (rc != PS_OK) {
			if (rc == PS_ENOMEM || rc == PS_ETOOBIG)
				rc = ps_error_set(err, rc, "a row of %s.%s is too big", t->schema, t->name);
			break;
		}
		for (int i = 0; i < t->ncolumns; i++)
			vals[i].data = vals[i].kind == PS_VALUE_TEXT ? text.data + offs[i] : NULL;
		rc = fn(ctx, (ps_table *)t, vals, err);
		if (rc != PS_OK)
			break;
		count++;
	}
	if (rc == PS_OK && mysql_errno(conn))
		rc = my_error(err, conn, "reading rows");
	if (nrows)
		*nrows = count;
cleanup:
	if (res) {
		while (rc != PS_OK && mysql_fetch_row(res))
			;   /* the connection is usable only once the result is read */
		mysql_free_result(res);
	}
	free(vals);
	free(offs);
	ps_buf_free(&sql);
	ps_buf_free(&text);
	return rc;
}

int my_copy_unit(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                 ps_row_fn fn, void *ctx, ps_error *err)
{
	return my_select_rows(c->conn, def, range, NULL, 0, c->src->zero_dates_null, fn, ctx, NULL,
	                      err);
}
