/*
 * my_catalog.c — which tables a job selects, and what information_schema
 * says of them: column types as MariaDB spells them, defaults, keys, and
 * the few facts the binlog cannot tell (a BINARY(16) that is a UUID, a
 * LONGTEXT that is JSON, a DATETIME's precision).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Three queries for every table at once (tables, columns, keys; a fourth
 *    for JSON check constraints), matched to the selected tables in C by
 *    exact name: information_schema sorts case-insensitively, so its order
 *    is not relied on.
 * 2. information_schema describes the tables as they are now. The stream
 *    decodes rows only from TABLE_MAP (my_stream.c) and uses what is read
 *    here only to enrich a shape whose columns match it by name and type.
 * 3. Tables of a storage engine without transactions are refused: their
 *    changes are not rolled back with a transaction and have no XID in the
 *    binlog, and a consistent snapshot cannot see them at one point.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "source/mysql/my_internal.h"
#include "util/myconn.h"

#define SYSTEM_DBS "'mysql', 'information_schema', 'performance_schema', 'sys', 'penstock'"

static bool matches_any(char *const *pats, size_t n, const char *qualified)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], qualified, 0) == 0)
			return true;
	return false;
}

bool my_selected(char *const *include, size_t ninclude, char *const *exclude, size_t nexclude,
                 const char *db, const char *name)
{
	char qualified[600];

	snprintf(qualified, sizeof(qualified), "%s.%s", db, name);
	return matches_any(include, ninclude, qualified) && !matches_any(exclude, nexclude, qualified);
}

void my_tableinfo_free(my_tableinfo *t)
{
	if (!t)
		return;
	for (int i = 0; t->cols && i < t->ncols; i++) {
		my_colinfo *c = &t->cols[i];
		free(c->name);
		free(c->data_type);
		free(c->column_type);
		free(c->default_expr);
		free(c->charset);
	}
	for (int i = 0; t->keys && i < t->nkeys; i++) {
		free(t->keys[i].name);
		free(t->keys[i].cols);
	}
	free(t->cols);
	free(t->keys);
	free(t->db);
	free(t->name);
	free(t->engine);
	free(t->auto_increment);
	memset(t, 0, sizeof(*t));
}

void my_tableinfos_free(my_tableinfo *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		my_tableinfo_free(&t[i]);
	free(t);
}

const my_colinfo *my_tableinfo_column(const my_tableinfo *t, const char *name)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return &t->cols[i];
	return NULL;
}

static bool is_one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

uint8_t my_class_of_info(const my_colinfo *c)
{
	static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int", "bigint",
	                                   "year", NULL};
	static const char *const bytes[] = {"binary", "varbinary", "tinyblob", "blob", "mediumblob",
	                                    "longblob", "geometry", "point", "linestring", "polygon",
	                                    "multipoint", "multilinestring", "multipolygon",
	                                    "geometrycollection", NULL};
	const char *t = c->data_type;

	if (is_one_of(t, ints))
		return PS_TYPE_INTEGER;
	if (strcmp(t, "float") == 0 || strcmp(t, "double") == 0)
		return PS_TYPE_FLOAT;
	if (strcmp(t, "decimal") == 0)
		return PS_TYPE_NUMERIC;
	if (strcmp(t, "date") == 0)
		return PS_TYPE_DATE;
	if (strcmp(t, "datetime") == 0)
		return PS_TYPE_TIMESTAMP;
	if (strcmp(t, "timestamp") == 0)
		return PS_TYPE_TIMESTAMPTZ;
	if (strcmp(t, "time") == 0)
		return PS_TYPE_TIME;
	if (strcmp(t, "uuid") == 0)
		return PS_TYPE_UUID;
	if (c->json)
		return PS_TYPE_JSON;
	if (is_one_of(t, bytes) || (c->charset && strcmp(c->charset, "binary") == 0))
		return PS_TYPE_BYTES;
	return PS_TYPE_TEXT;
}

/* --- loading ---------------------------------------------------------------- */

static char *dup_field(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = PS_ENOMEM;
	return d;
}

static int cmp_info(const void *a, const void *b)
{
	const my_tableinfo *x = a, *y = b;
	int c = strcmp(x->db, y->db);

	return c ? c : strcmp(x->name, y->name);
}

static my_tableinfo *find_info(my_tableinfo *t, size_t n, const char *db, const char *name)
{
	my_tableinfo key = {.db = (char *)db, .name = (char *)name};

	return bsearch(&key, t, n, sizeof(*t), cmp_info);
}

static bool is_transactional(const char *engine)
{
	return engine && (strcasecmp(engine, "InnoDB") == 0 || strcasecmp(engine, "RocksDB") == 0);
}

/* Appends " AND TABLE_SCHEMA = 'db' AND TABLE_NAME = 'name'" for one table. */
static int one_table_filter(MYSQL *conn, ps_buf *sql, const char *db, const char *name)
{
	int rc = ps_buf_puts(sql, " AND TABLE_SCHEMA = ");

	if (rc == PS_OK)
		rc = my_quote_literal(conn, sql, db);
	if (rc == PS_OK)
		rc = ps_buf_puts(sql, " AND TABLE_NAME = ");
	if (rc == PS_OK)
		rc = my_quote_literal(conn, sql, name);
	return rc;
}

static int list_tables(MYSQL *conn, const char *db, const char *name, char *const *include,
                       size_t ninclude, char *const *exclude, size_t nexclude,
                       my_tableinfo **out, size_t *n, ps_buf *refused, ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	my_tableinfo *t = NULL;
	ps_buf sql;
	int rc;

	*out = NULL;
	*n = 0;
	ps_buf_init(&sql, 1 << 16);
	rc = ps_buf_puts(&sql, "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, TABLE_ROWS, DATA_LENGTH, "
	                 "AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' "
	                 "AND TABLE_SCHEMA NOT IN (" SYSTEM_DBS ")");
	if (rc == PS_OK && db)
		rc = one_table_filter(conn, &sql, db, name);
	if (rc != PS_OK) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = my_query(conn, sql.data, &res, "listing tables", err);
	if (rc != PS_OK)
		goto cleanup;
	t = calloc(mysql_num_rows(res) + 1, sizeof(*t));
	if (!t) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	while (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		my_tableinfo *ti = &t[*n];

		if (!db && !my_selected(include, ninclude, exclude, nexclude, row[0], row[1]))
			continue;
		if (!db && !is_transactional(row[2])) {
			if (refused)
				ps_buf_printf(refused, "%s%s.%s (engine %s)", refused->len ? ", " : "",
				              row[0], row[1], row[2] ? row[2] : "unknown");
			continue;
		}
		ti->db = dup_field(row[0], &rc);
		ti->name = dup_field(row[1], &rc);
		ti->engine = dup_field(row[2], &rc);
		ti->rows = row[3] ? strtoll(row[3], NULL, 10) : -1;
		ti->bytes = row[4] ? strtoll(row[4], NULL, 10) : -1;
		ti->auto_increment = dup_field(row[5], &rc);
		(*n)++;
	}
	if (rc != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	else
		qsort(t, *n, sizeof(*t), cmp_info);
cleanup:
	if (res)
		mysql_free_result(res);
	ps_buf_free(&sql);
	if (rc != PS_OK) {
		my_tableinfos_free(t, *n);
		*n = 0;
		t = NULL;
	}
	*out = t;
	return rc;
}

static int load_columns(MYSQL *conn, const char *db, const char *name, my_tableinfo *t,
                        size_t n, ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, 1 << 16);
	rc = ps_buf_puts(&sql, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, "
	                 "COLUMN_DEFAULT, IS_NULLABLE, DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA, "
	                 "ORDINAL_POSITION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN ("
	                 SYSTEM_DBS ")");
	if (rc == PS_OK && db)
		rc = one_table_filter(conn, &sql, db, name);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION");
	if (rc != PS_OK) {
		ps_buf_free(&sql);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	rc = my_query(conn, sql.data, &res, "describing columns", err);
	ps_buf_free(&sql);
	if (rc != PS_OK)
		return rc;
	/* first count, then fill: a table's columns are one array */
	while ((row = mysql_fetch_row(res)) != NULL) {
		my_tableinfo *ti = find_info(t, n, row[0], row[1]);
		if (ti)
			ti->ncols++;
	}
	for (size_t i = 0; rc == PS_OK && i < n; i++) {
		t[i].cols = calloc((size_t)t[i].ncols + 1, sizeof(my_colinfo));
		if (!t[i].cols)
			rc = PS_ENOMEM;
		t[i].ncols = 0;
	}
	mysql_data_seek(res, 0);
	while (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		my_tableinfo *ti = find_info(t, n, row[0], row[1]);
		my_colinfo *c;
		const char *extra = row[9] ? row[9] : "";

		if (!ti)
			continue;
		c = &ti->cols[ti->ncols++];
		c->name = dup_field(row[2], &rc);
		c->data_type = dup_field(row[3], &rc);
		c->column_type = dup_field(row[4], &rc);
		c->default_expr = row[5] && strcmp(row[5], "NULL") != 0 ? dup_field(row[5], &rc) : NULL;
		c->nullable = row[6] && strcmp(row[6], "YES") == 0;
		c->precision = row[7] ? (int)strtol(row[7], NULL, 10) : -1;
		c->charset = dup_field(row[8], &rc);
		c->generated = strstr(extra, "GENERATED") != NULL;
		c->auto_increment = strstr(extra, "auto_increment") != NULL;
		c->is_unsigned = row[4] && strstr(row[4], "unsigned") != NULL;
		if (rc == PS_OK) {
			for (char *p = c->data_type; p && *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			c->ext = strcmp(c->data_type, "uuid") == 0    ? PS_BINLOG_EXT_UUID
			         : strcmp(c->data_type, "inet6") == 0 ? PS_BINLOG_EXT_INET6
			         : strcmp(c->data_type, "inet4") == 0 ? PS_BINLOG_EXT_INET4
			                                              : PS_BINLOG_EXT_NONE;
		}
	}
	mysql_free_result(res);
	return rc == PS_OK ? PS_OK : ps_error_set(err, PS_ENOMEM, "out of memory");
}

/* MariaDB's JSON is LONGTEXT with CHECK (json_valid(`col`)), named after
 * the column. */
static int load_json(MYSQL *conn, my_tableinfo *t, size_t n, ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc = my_query(conn, "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE "
	                  "FROM information_schema.CHECK_CONSTRAINTS "
	                  "WHERE CHECK_CLAUSE LIKE 'json_valid(%'", &res, "reading JSON columns", err);

	if (rc != PS_OK)
		return rc;
	while ((row = mysql_fetch_row(res)) != NULL) {
		my_tableinfo *ti = find_info(t, n, row[0], row[1]);
		char want[400];

		if (!ti || !row[2] || !row[3])
			continue;
		snprintf(want, sizeof(want), "json_valid(`%s`)", row[2]);
		if (strcmp(row[3], want) != 0)
			continue;
		for (int i = 0; i < ti->ncols; i++)
			if (strcmp(ti->cols[i].name, row[2]) == 0 &&
			    strcmp(ti->cols[i].data_type, "longtext") == 0)
				ti->cols[i].json = true;
	}
	mysql_free_result(res);
	return PS_OK;
}

static int column_index(const my_tableinfo *t, const char *name)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return i;
	return -1;
}

static int load_keys(MYSQL *conn, const char *db, const char *name, my_tableinfo *t, size_t n,
                     ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf sql;
	my_tableinfo *last_t = NULL;
	my_keyinfo *k = NULL;
	bool skip = false;
	int rc;

	ps_buf_init(&sql, 1 << 16);
	rc = ps_buf_puts(&sql, "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, "
	                 "COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
	                 "WHERE TABLE_SCHEMA NOT IN (" SYSTEM_DBS ")");
	if (rc == PS_OK && db)
		rc = one_table_filter(conn, &sql, db, name);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, "
		                 "INDEX_NAME, SEQ_IN_INDEX");
	if (rc != PS_OK) {
		ps_buf_free(&sql);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	rc = my_query(conn, sql.data, &res, "describing keys", err);
	ps_buf_free(&sql);
	if (rc != PS_OK)
		return rc;
	while (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		my_tableinfo *ti = find_info(t, n, row[0], row[1]);
		int col;

		if (!ti || !row[2])
			continue;
		if (ti != last_t || !k || strcmp(k->name, row[2]) != 0) {
			my_keyinfo *grown;
			if (k && skip) {   /* an expression or prefix key: not described */
				free(k->name);
				free(k->cols);
				last_t->nkeys--;
			}
			grown = realloc(ti->keys, ((size_t)ti->nkeys + 1) * sizeof(my_keyinfo));
			if (!grown) {
				rc = PS_ENOMEM;
				break;
			}
			ti->keys = grown;
			k = &ti->keys[ti->nkeys++];
			memset(k, 0, sizeof(*k));
			k->name = dup_field(row[2], &rc);
			k->kind = strcmp(row[2], "PRIMARY") == 0 ? 'p' : row[3] && strcmp(row[3], "0") == 0
			          ? 'u' : 'i';
			if (k->kind == 'p')
				ti->has_pk = true;
			skip = false;
			last_t = ti;
		}
		col = row[5] ? column_index(ti, row[5]) : -1;
		if (col < 0 || (row[6] && k->kind != 'p')) {
			skip = true;
			continue;
		}
		int *cols = realloc(k->cols, ((size_t)k->ncols + 1) * sizeof(int));
		if (!cols) {
			rc = PS_ENOMEM;
			break;
		}
		k->cols = cols;
		k->cols[k->ncols++] = col;
	}
	if (rc == PS_OK && k && skip) {
		free(k->name);
		free(k->cols);
		last_t->nkeys--;
	}
	mysql_free_result(res);
	return rc == PS_OK ? PS_OK : ps_error_set(err, PS_ENOMEM, "out of memory");
}

static int load_details(MYSQL *conn, const char *db, const char *name, my_tableinfo *t, size_t n,
                        ps_error *err)
{
	int rc = load_columns(conn, db, name, t, n, err);

	if (rc == PS_OK)
		rc = load_json(conn, t, n, err);
	if (rc == PS_OK)
		rc = load_keys(conn, db, name, t, n, err);
	for (size_t i = 0; rc == PS_OK && i < n; i++)
		for (int j = 0; j < t[i].ncols; j++)
			t[i].cols[j].type_class = my_class_of_info(&t[i].cols[j]);
	return rc;
}

int my_catalog_load(MYSQL *conn, char *const *include, size_t ninclude, char *const *exclude,
                    size_t nexclude, my_tableinfo **out, size_t *n, ps_buf *refused,
                    ps_error *err)
{
	int rc = list_tables(conn, NULL, NULL, include, ninclude, exclude, nexclude, out, n, refused,
	                     err);

	if (rc == PS_OK && *n)
		rc = load_details(conn, NULL, NULL, *out, *n, err);
	if (rc != PS_OK) {
		my_tableinfos_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int my_catalog_table(MYSQL *conn, const char *db, const char *name, my_tableinfo **out,
                     ps_error *err)
{
	size_t n = 0;
	int rc = list_tables(conn, db, name, NULL, 0, NULL, 0, out, &n, NULL, err);

	if (rc == PS_OK && n)
		rc = load_details(conn, db, name, *out, n, err);
	if (rc != PS_OK || n == 0) {
		my_tableinfos_free(*out, n);
		*out = NULL;
	}
	return rc;
}
