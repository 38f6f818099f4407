/*
 * mysink_ddl.c — table_prepare and table_finish of the MySQL / MariaDB sink.
 *
 * NOTES ON THE DESIGN
 *
 *  1. MariaDB commits around every DDL statement, so DDL here runs on the
 *     sink's second connection (mys_ddl_conn) in autocommit: the data
 *     connection's open transaction, holding rows and the checkpoint, is
 *     never committed by it (mysink.c NOTES 4). What a crash leaves behind
 *     is therefore a created table without the checkpoint that records it:
 *     a created table carries the comment "penstock: keys pending for job
 *     <job>" until table_finish has built its keys, so a run that finds
 *     such a table empty takes it as its own (*created, and table_finish
 *     later builds the keys) instead of leaving it without them.
 *  2. Created tables: ENGINE=InnoDB (transactions; mysink.c NOTES 3),
 *     DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_nopad_bin: case, accents and
 *     trailing spaces count, so what was unique in the source is unique
 *     here (MariaDB's default collation would refuse 'a' next to 'A').
 *     Column types come from mysink_typemap.c; NOT NULL is kept; defaults
 *     of a PostgreSQL source are carried over when they are constants (a
 *     number, a string, true/false) or the current time or date, and left
 *     out otherwise (logged); a MariaDB source's defaults and CHECK
 *     constraints are its own SQL and kept. The row-size limit (65,535
 *     bytes of VARCHAR) turns the widest non-key VARCHARs into TEXT.
 *  3. The primary key comes with the table, the other keys after the data.
 *     InnoDB stores rows in their primary key's order: adding the key after
 *     the load would copy the whole table once more, while loading into it
 *     (each copy unit a key range, in key order) appends. A one-column
 *     integer primary key that a sequence or an identity fed in the source
 *     gets AUTO_INCREMENT (explicit values still go in as they are, and
 *     move the counter past them). table_finish adds, in one ALTER TABLE,
 *     the unique keys and the plain-column indexes (text and blob columns
 *     of a non-unique index by a 255-character prefix): a sorted index
 *     build each, no table copy; and a primary key a table made by hand
 *     without one still lacks. Not translated, and
 *     logged: expression indexes, partial unique indexes (whole, they could
 *     refuse rows the source holds) and indexes of other methods (GIN,
 *     GiST: they index what MariaDB cannot). It skips what exists, so it can
 *     run again after a crash.
 *  4. DDL a killed run sent goes on in the server without it; the next run
 *     may collide with it, and then looks again (lost_race).
 *  5. An existing table must be InnoDB, hold every source column and be
 *     empty, or be emptied (truncate_before_load: DELETE inside the open
 *     target transaction, so that it commits with the load's checkpoint).
 *     DDL on a table the open transaction wrote would wait for it: that is
 *     refused at once (the core flushes a table's rows before finishing it).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/mysql/mysink.h"
#include "util/log.h"
#include "util/myconn.h"

#define ROW_VARCHAR_BYTES 65000          /* keep under MariaDB's 65,535 */

/* ==== helpers ============================================================= */

static bool marker_is_ours(const ps_sink *s, const char *comment)
{
	size_t n = strlen(MYS_KEYS_PENDING);

	return comment && strncmp(comment, MYS_KEYS_PENDING, n) == 0 && strcmp(comment + n, s->job) == 0;
}

static bool in_unique(const ps_table_def *def, int col)
{
	for (int i = 0; i < def->nconstraints; i++) {
		const ps_constraint_def *cd = &def->constraints[i];
		bool unique = cd->kind == PS_CONSTRAINT_PRIMARY || cd->kind == PS_CONSTRAINT_UNIQUE ||
		              (cd->kind == PS_CONSTRAINT_INDEX && cd->sql &&
		               strstr(cd->sql, "UNIQUE") != NULL);

		for (int k = 0; unique && k < cd->ncols; k++)
			if (cd->cols[k] == col)
				return true;
	}
	return def->table->columns[col].is_key && def->has_primary_key;
}

/* Identifier limits (64 characters), with the fix. */
static int check_names(const ps_sink *s, const ps_table_def *def, const char *db,
                       const char *name, ps_error *err)
{
	const ps_table *t = def->table;

	if (s->per_schema && !ps__mys_ident_ok(db))
		return ps_error_set(err, PS_EINVAL, "schema %s of %s.%s is not a valid MariaDB "
		                    "database name (64 characters at most, no trailing space); "
		                    "rename it in the source, or name a database in target.url",
		                    t->schema, t->schema, t->name);
	if (!ps__mys_ident_ok(name))
		return ps_error_set(err, PS_EINVAL, "table name %s.%s is not a valid MariaDB name (64 "
		                    "characters at most, no trailing space); rename it in the source",
		                    t->schema, t->name);
	for (int i = 0; i < t->ncolumns; i++)
		if (!ps__mys_ident_ok(t->columns[i].name))
			return ps_error_set(err, PS_EINVAL, "column %s of %s.%s is not a valid MariaDB "
			                    "name (64 characters at most, no trailing space); rename it in "
			                    "the source", t->columns[i].name, t->schema, t->name);
	return PS_OK;
}

/* ==== defaults (NOTES 2) ==================================================== */

static bool is_number(const char *p)
{
	if (*p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

/* A PostgreSQL default as MariaDB SQL into out, or false when it is not one
 * we carry over. type is the created column's MariaDB type. */
static bool pg_default(const char *expr, const char *type, char *out, size_t len)
{
	char tmp[512];
	size_t n;
	const char *cast;

	snprintf(tmp, sizeof(tmp), "%s", expr);
	if (tmp[0] == '(' && tmp[strlen(tmp) - 1] == ')') {   /* (-1) */
		memmove(tmp, tmp + 1, strlen(tmp));
		tmp[strlen(tmp) - 1] = '\0';
	}
	if (strncasecmp(type, "DATETIME", 8) == 0 &&
	    (strcasecmp(tmp, "now()") == 0 || strcasecmp(tmp, "CURRENT_TIMESTAMP") == 0 ||
	     strcasecmp(tmp, "transaction_timestamp()") == 0 ||
	     strcasecmp(tmp, "statement_timestamp()") == 0 || strcasecmp(tmp, "LOCALTIMESTAMP") == 0)) {
		snprintf(out, len, "CURRENT_TIMESTAMP%s", strchr(type, '(') ? strchr(type, '(') : "");
		return true;
	}
	if (strcasecmp(type, "DATE") == 0 && strcasecmp(tmp, "CURRENT_DATE") == 0) {
		snprintf(out, len, "(CURRENT_DATE)");
		return true;
	}
	if (strcasecmp(type, "UUID") == 0 &&
	    (strcasecmp(tmp, "gen_random_uuid()") == 0 || strcasecmp(tmp, "uuid_generate_v4()") == 0 ||
	     strcasecmp(tmp, "uuid_generate_v1()") == 0)) {
		snprintf(out, len, "(UUID())");   /* a fresh unique value: MariaDB's is version 1 */
		return true;
	}
	if (strcasecmp(type, "TINYINT(1)") == 0 && (strcmp(tmp, "true") == 0 || strcmp(tmp, "false") == 0)) {
		snprintf(out, len, "%s", tmp[0] == 't' ? "1" : "0");
		return true;
	}
	if (is_number(tmp)) {
		snprintf(out, len, "%s", tmp);
		return true;
	}
	/* 'text'::type: the literal, when it holds no backslash (MariaDB reads
	 * one as an escape, PostgreSQL does not) */
	cast = strstr(tmp, "'::");
	n = cast ? (size_t)(cast - tmp) + 1 : strlen(tmp);
	if (tmp[0] == '\'' && n >= 2 && tmp[n - 1] == '\'' && !memchr(tmp, '\\', n) && n < len) {
		for (size_t i = 1; i + 1 < n; i++)
			if (tmp[i] == '\'' && tmp[i + 1] != '\'' && tmp[i - 1] != '\'')
				return false;             /* not one literal */
		if (strncasecmp(type, "TINYINT(1)", 10) == 0 && n == 3)
			return false;
		memcpy(out, tmp, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

/* ==== creating tables ====================================================== */

typedef struct col_plan {
	char type[128];
	bool key;
} col_plan;

/* The column types of def, with the row-size rule of NOTES 2. */
static int plan_columns(const ps_table_def *def, col_plan *plan, ps_error *err)
{
	const ps_table *t = def->table;
	long total = 0;

	for (int i = 0; i < t->ncolumns; i++) {
		mys_type_in in = {def->engine, def->columns[i].sql_type, t->columns[i].type_class,
		                  def->columns[i].user_type, in_unique(def, i)};
		char why[300];

		plan[i].key = in.in_unique;
		if (ps__mys_type_for(&in, plan[i].type, sizeof(plan[i].type), why, sizeof(why)) != PS_OK)
			return ps_error_set(err, PS_EINVAL, "column %s of %s.%s: %s; give it a type MariaDB "
			                    "can hold in the source, or create the table in the target "
			                    "yourself with a column type of your choice (a text type keeps "
			                    "every value exactly) and start the job again",
			                    t->columns[i].name, t->schema, t->name, why);
		if (strncasecmp(plan[i].type, "VARCHAR(", 8) == 0)
			total += 4 * strtol(plan[i].type + 8, NULL, 10) + 2;
	}
	while (total > ROW_VARCHAR_BYTES) {
		long widest = 0;
		int at = -1;

		for (int i = 0; i < t->ncolumns; i++) {
			long w;

			if (plan[i].key || strncasecmp(plan[i].type, "VARCHAR(", 8) != 0)
				continue;
			w = strtol(plan[i].type + 8, NULL, 10);
			if (w > widest) {
				widest = w;
				at = i;
			}
		}
		if (at < 0)
			break;             /* keys alone: MariaDB will say */
		snprintf(plan[at].type, sizeof(plan[at].type), "%s",
		         widest <= 16383 ? "TEXT" : "MEDIUMTEXT");
		total -= 4 * widest + 2;
	}
	return PS_OK;
}

static int column_sql(MYSQL *ddl, ps_buf *b, const ps_table_def *def, int i, const col_plan *p,
                      bool auto_inc)
{
	const ps_column_def *cd = &def->columns[i];
	const ps_column *col = &def->table->columns[i];
	char dflt[600];
	int rc = my_quote_ident(b, col->name);

	(void)ddl;
	if (rc == PS_OK)
		rc = ps_buf_printf(b, " %s", p->type);
	if (rc == PS_OK && (cd->not_null || auto_inc))
		rc = ps_buf_puts(b, " NOT NULL");
	if (rc == PS_OK && auto_inc)
		rc = ps_buf_puts(b, " AUTO_INCREMENT");
	if (rc == PS_OK && (dflt[0] = '\0', mys_default_sql(def, i, p->type, dflt, sizeof(dflt))))
		rc = ps_buf_printf(b, " DEFAULT %s", dflt);
	/* the column's record (mysink_follow.c NOTES 1) */
	if (rc == PS_OK && cd->ordinal > 0)
		rc = ps_buf_printf(b, " COMMENT '" MYS_COL_MARK " #%d'", cd->ordinal);
	else if (rc == PS_OK)
		rc = ps_buf_puts(b, " COMMENT '" MYS_COL_MARK "'");
	return rc;
}

bool mys_default_sql(const ps_table_def *def, int i, const char *type, char *out, size_t len)
{
	const ps_column_def *cd = &def->columns[i];
	const ps_column *col = &def->table->columns[i];
	bool mysql = def->engine && strcmp(def->engine, "mysql") == 0;

	if (!cd->default_expr || cd->identity || cd->sequence)
		return false;
	if (mysql) {
		if (strcasecmp(cd->default_expr, "NULL") == 0 || strchr(cd->default_expr, ';'))
			return false;
		snprintf(out, len, "%s", cd->default_expr);
		return true;
	}
	if (pg_default(cd->default_expr, type, out, len))
		return true;
	ps_log_info("target mysql: %s.%s: the default of column %s (%s) has no MariaDB "
	            "spelling and is left out", def->table->schema, def->table->name,
	            col->name, cd->default_expr);
	return false;
}

int mys_column_sql(ps_buf *b, const ps_table_def *def, int i, char *type, size_t type_len,
                   ps_error *err)
{
	mys_type_in in = {def->engine, def->columns[i].sql_type, def->table->columns[i].type_class,
	                  def->columns[i].user_type, in_unique(def, i)};
	col_plan p;
	char why[300];

	memset(&p, 0, sizeof(p));
	p.key = in.in_unique;
	if (ps__mys_type_for(&in, p.type, sizeof(p.type), why, sizeof(why)) != PS_OK)
		return ps_error_set(err, PS_EINVAL, "column %s: %s", def->table->columns[i].name, why);
	snprintf(type, type_len, "%s", p.type);
	if (column_sql(NULL, b, def, i, &p, false) != PS_OK)
		return ps_error_set(err, PS_ETOOBIG, "column definition too long");
	return PS_OK;
}

/* The primary key on plain columns, or NULL. */
static const ps_constraint_def *primary_of(const ps_table_def *def)
{
	for (int i = 0; i < def->nconstraints; i++)
		if (def->constraints[i].kind == PS_CONSTRAINT_PRIMARY && def->constraints[i].ncols > 0)
			return &def->constraints[i];
	return NULL;
}

/* The column that gets AUTO_INCREMENT (NOTES 3): a one-column integer
 * primary key fed by a sequence or an identity; -1 when none. */
static int auto_inc_column(const ps_table_def *def, const ps_constraint_def *pk,
                           const col_plan *plan)
{
	static const char *const ints[] = {"TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT",
	                                   "INT UNSIGNED", NULL};
	int c;

	if (!pk || pk->ncols != 1)
		return -1;
	c = pk->cols[0];
	if (!def->columns[c].identity && !def->columns[c].sequence)
		return -1;
	for (int i = 0; ints[i]; i++)
		if (strcasecmp(plan[c].type, ints[i]) == 0)
			return c;
	return -1;
}

/* (`a`, `b`) of a key's columns. */
static int key_list(ps_buf *b, const ps_table_def *def, const ps_constraint_def *cd)
{
	int rc = ps_buf_putc(b, '(');

	for (int k = 0; rc == PS_OK && k < cd->ncols; k++) {
		if (k)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = my_quote_ident(b, def->table->columns[cd->cols[k]].name);
	}
	return rc == PS_OK ? ps_buf_putc(b, ')') : rc;
}

static int create_table(ps_sink *s, MYSQL *ddl, const ps_table_def *def, const char *qname,
                        ps_error *err)
{
	const ps_table *t = def->table;
	bool mysql = def->engine && strcmp(def->engine, "mysql") == 0;
	col_plan *plan = calloc((size_t)t->ncolumns + 1, sizeof(*plan));
	const ps_constraint_def *pk;
	char what[300], marker[400];
	ps_buf sql;
	int rc;

	if (!plan)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_init(&sql, MYS_SQL_LIMIT);
	rc = plan_columns(def, plan, err);
	if (rc != PS_OK)
		goto cleanup;
	pk = primary_of(def);
	rc = ps_buf_printf(&sql, "CREATE TABLE %s (", qname);
	for (int i = 0; rc == PS_OK && i < t->ncolumns; i++) {
		rc = ps_buf_puts(&sql, i ? ",\n  " : "\n  ");
		if (rc == PS_OK)
			rc = column_sql(ddl, &sql, def, i, &plan[i], auto_inc_column(def, pk, plan) == i);
	}
	if (rc == PS_OK && pk) {
		rc = ps_buf_puts(&sql, ",\n  PRIMARY KEY ");
		if (rc == PS_OK)
			rc = key_list(&sql, def, pk);
	}
	for (int i = 0; rc == PS_OK && mysql && i < def->nconstraints; i++) {
		const ps_constraint_def *cd = &def->constraints[i];

		if (cd->kind != PS_CONSTRAINT_CHECK || !cd->sql || !cd->name)
			continue;
		rc = ps_buf_puts(&sql, ",\n  CONSTRAINT ");
		if (rc == PS_OK)
			rc = my_quote_ident(&sql, cd->name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, " %s", cd->sql);
	}
	snprintf(marker, sizeof(marker), "%s%s", MYS_KEYS_PENDING, s->job);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
		                 "COLLATE=utf8mb4_nopad_bin COMMENT=");
	if (rc == PS_OK)
		rc = my_quote_literal(ddl, &sql, marker);
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "CREATE TABLE statement for %s.%s too long", t->schema,
		                  t->name);
		goto cleanup;
	}
	snprintf(what, sizeof(what), "creating table %s", qname);
	rc = my_exec(ddl, sql.data, what, err);
cleanup:
	ps_buf_free(&sql);
	free(plan);
	return rc;
}

/* ==== existing tables (NOTES 4) ============================================ */

static int check_columns(MYSQL *ddl, const ps_table_def *def, const char *db, const char *name,
                         ps_error *err)
{
	const ps_table *t = def->table;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf missing;
	bool *found = calloc((size_t)t->ncolumns + 1, sizeof(bool));
	int rc;

	if (!found)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = mys_catalog_query(ddl, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE ",
	                       "TABLE_SCHEMA", db, "TABLE_NAME", name,
	                       "", &res, err);
	if (rc != PS_OK) {
		free(found);
		return rc;
	}
	while ((row = mysql_fetch_row(res)) != NULL)
		for (int i = 0; i < t->ncolumns; i++)
			if (row[0] && strcasecmp(row[0], t->columns[i].name) == 0)
				found[i] = true;
	mysql_free_result(res);
	ps_buf_init(&missing, 8192);
	for (int i = 0; i < t->ncolumns; i++)
		if (!found[i])
			ps_buf_printf(&missing, "%s%s", missing.len ? ", " : "", t->columns[i].name);
	if (missing.len)
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s exists in the target but has no "
		                  "column %s; add the missing columns or let the load create the "
		                  "table (target.create_tables)", db, name, missing.data);
	ps_buf_free(&missing);
	free(found);
	return rc;
}

/* Empty, or emptied with DELETE inside the open target transaction, so
 * that the emptied table commits with the checkpoint of the load that
 * follows (TRUNCATE would commit by itself). */
static int check_empty(ps_sink *s, MYSQL *ddl, const ps_table_options *opt, const char *db,
                       const char *name, const char *qname, ps_error *err)
{
	char sql[1200], what[400];
	bool has_rows = false;
	char one[8];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 1", qname);
	rc = my_query_text(ddl, sql, one, sizeof(one), &has_rows, "checking the target table is "
	                   "empty", err);
	if (rc != PS_OK || !has_rows)
		return rc;
	if (!opt->truncate_before_load)
		return ps_error_set(err, PS_EINVAL, "table %s.%s in the target already holds rows; "
		                    "empty it, or set target.truncate_before_load to have the load "
		                    "empty it", db, name);
	snprintf(sql, sizeof(sql), "DELETE FROM %s", qname);
	snprintf(what, sizeof(what), "emptying %s.%s", db, name);
	rc = mys_ensure_txn(s, err);
	if (rc == PS_OK)
		rc = mys_exec(s, sql, what, err);
	return rc;
}

/* DDL on a table that the open target transaction wrote would wait for that
 * transaction, which cannot end before flush: refused at once. */
static int refuse_touched(const ps_sink *s, const char *db, const char *name, ps_error *err)
{
	if (!mys_table_touched(s, db, name))
		return PS_OK;
	return ps_error_set(err, PS_EINVAL, "table %s.%s holds rows of the open target "
	                    "transaction, and MariaDB's DDL on it would wait for that transaction "
	                    "to end: flush before creating, emptying or finishing it", db, name);
}

/* ==== table_prepare / table_finish ========================================= */

static int prepare_once(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                        bool *created, ps_error *err)
{
	const ps_table *t = def->table;
	char db[256], name[256], sql[1200], what[600], engine[64] = "", comment[2100] = "";
	bool exists = false;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	MYSQL *ddl = NULL;
	ps_buf qname;
	int rc;

	*created = false;
	mys_target_names(s, t->schema, t->name, db, sizeof(db), name, sizeof(name));
	rc = refuse_touched(s, db, name, err);
	if (rc != PS_OK)
		return rc;
	mys_table_forget(s, db, name);
	ps_buf_init(&qname, 2048);
	rc = check_names(s, def, db, name, err);
	if (rc == PS_OK && mys_qualified(&qname, db, name) != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == PS_OK)
		rc = mys_ddl_conn(s, &ddl, err);
	if (rc == PS_OK && s->per_schema) {
		ps_buf q;

		ps_buf_init(&q, 1024);
		rc = ps_buf_puts(&q, "CREATE DATABASE IF NOT EXISTS ");
		if (rc == PS_OK)
			rc = my_quote_ident(&q, db);
		snprintf(what, sizeof(what), "creating database %s", db);
		if (rc == PS_OK)
			rc = my_exec(ddl, q.data, what, err);
		ps_buf_free(&q);
	}
	if (rc == PS_OK)
		rc = mys_catalog_query(ddl, "SELECT ENGINE, TABLE_COMMENT, TABLE_TYPE FROM information_schema.TABLES WHERE ",
		                       "TABLE_SCHEMA", db, "TABLE_NAME", name,
		                       "", &res, err);
	if (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		exists = true;
		snprintf(engine, sizeof(engine), "%s", row[0] ? row[0] : "");
		snprintf(comment, sizeof(comment), "%s", row[1] ? row[1] : "");
		if (!row[2] || strcmp(row[2], "BASE TABLE") != 0)
			rc = ps_error_set(err, PS_EINVAL, "%s.%s in the target is a %s, not a table",
			                  db, name, row[2] ? row[2] : "?");
	}
	mysql_free_result(res);
	if (rc == PS_OK && exists && opt->create == PS_CREATE_DROP_AND_CREATE) {
		snprintf(sql, sizeof(sql), "DROP TABLE %s", qname.data);
		snprintf(what, sizeof(what), "dropping table %s.%s", db, name);
		rc = my_exec(ddl, sql, what, err);
		exists = false;
	}
	if (rc != PS_OK)
		goto cleanup;
	if (!exists) {
		if (opt->create == PS_CREATE_NEVER) {
			rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target and "
			                  "target.create_tables says never; create it in the target or "
			                  "let the load create it (target.create_tables)", db, name);
			goto cleanup;
		}
		rc = create_table(s, ddl, def, qname.data, err);
		*created = rc == PS_OK;
		goto cleanup;
	}
	if (strcasecmp(engine, "InnoDB") != 0) {
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s in the target uses the %s engine; "
		                  "penstock needs InnoDB, whose transactions keep rows and "
		                  "checkpoint together (ALTER TABLE %s ENGINE=InnoDB)", db, name,
		                  engine[0] ? engine : "(unknown)", qname.data);
		goto cleanup;
	}
	rc = check_columns(ddl, def, db, name, err);
	if (rc == PS_OK)
		rc = check_empty(s, ddl, opt, db, name, qname.data, err);
	if (rc == PS_OK && marker_is_ours(s, comment))
		*created = true;                 /* NOTES 1: ours, keys still to build */
cleanup:
	ps_buf_free(&qname);
	return rc;
}

/* The columns of an index key: `a`, `b`(255) ... into b. */
static int key_columns(ps_buf *b, const ps_table_def *def, const ps_constraint_def *cd,
                       bool unique, MYSQL_RES *cols)
{
	int rc = ps_buf_putc(b, '(');

	for (int k = 0; rc == PS_OK && k < cd->ncols; k++) {
		const char *name = def->table->columns[cd->cols[k]].name;
		bool prefix = false;
		MYSQL_ROW row;

		mysql_data_seek(cols, 0);
		while ((row = mysql_fetch_row(cols)) != NULL)
			if (row[0] && strcasecmp(row[0], name) == 0 && row[1])
				prefix = !unique && (strstr(row[1], "text") || strstr(row[1], "blob"));
		if (k)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = my_quote_ident(b, name);
		if (rc == PS_OK && prefix)
			rc = ps_buf_puts(b, "(255)");
	}
	return rc == PS_OK ? ps_buf_putc(b, ')') : rc;
}

static bool index_exists(MYSQL_RES *idx, const char *name)
{
	MYSQL_ROW row;

	mysql_data_seek(idx, 0);
	while ((row = mysql_fetch_row(idx)) != NULL)
		if (row[0] && strcasecmp(row[0], name) == 0)
			return true;
	return false;
}

/* What an index of the source becomes (NOTES 3): 'u' unique, 'i' plain, 0
 * left out (why says why). */
static char index_kind(const ps_constraint_def *cd, const char **why)
{
	const char *using = cd->sql ? strstr(cd->sql, " USING ") : NULL;
	bool unique = cd->kind == PS_CONSTRAINT_UNIQUE ||
	              (cd->sql && strncasecmp(cd->sql, "CREATE UNIQUE", 13) == 0);

	*why = NULL;
	if (cd->kind == PS_CONSTRAINT_INDEX && cd->sql && strstr(cd->sql, " WHERE ")) {
		*why = unique ? "it is a partial unique index, which MariaDB cannot express (whole, "
		                "it could refuse rows the source holds)"
		              : "it is a partial index, which MariaDB does not have";
		return 0;
	}
	if (cd->ncols == 0) {
		*why = "it indexes an expression";
		return 0;
	}
	if (cd->kind == PS_CONSTRAINT_INDEX && using && strncasecmp(using + 7, "btree", 5) != 0) {
		*why = "its method is not btree";
		return 0;
	}
	return unique ? 'u' : 'i';
}

/* AUTO_INCREMENT for a one-column integer primary key a sequence or an
 * identity fed: "MODIFY `id` BIGINT NOT NULL AUTO_INCREMENT" into b. */
static int auto_increment(ps_buf *b, const ps_table_def *def, const ps_constraint_def *pk,
                          MYSQL_RES *cols, bool *added)
{
	static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int", "bigint", NULL};
	const ps_column_def *cd;
	const char *name;
	MYSQL_ROW row;

	*added = false;
	if (!pk || pk->ncols != 1)
		return PS_OK;
	cd = &def->columns[pk->cols[0]];
	if (!cd->identity && !cd->sequence)
		return PS_OK;
	name = def->table->columns[pk->cols[0]].name;
	mysql_data_seek(cols, 0);
	while ((row = mysql_fetch_row(cols)) != NULL) {
		bool is_int = false;

		if (!row[0] || strcasecmp(row[0], name) != 0 || !row[1] || !row[2])
			continue;
		for (int i = 0; ints[i]; i++)
			is_int |= strcasecmp(row[1], ints[i]) == 0;
		if (!is_int || (row[3] && strstr(row[3], "auto_increment")))
			return PS_OK;
		*added = true;
		if (ps_buf_puts(b, b->len ? ", MODIFY " : "MODIFY ") != PS_OK ||
		    my_quote_ident(b, name) != PS_OK)
			return PS_ETOOBIG;
		return ps_buf_printf(b, " %s NOT NULL AUTO_INCREMENT", row[2]);
	}
	return PS_OK;
}

static int finish_once(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	const ps_table *t = def->table;
	const ps_constraint_def *pk = NULL;
	char db[256], name[256], comment[2100] = "", what[600];
	MYSQL_RES *idx = NULL, *cols = NULL, *res = NULL;
	MYSQL_ROW row;
	MYSQL *ddl = NULL;
	ps_buf qname, alter;
	bool has_pk, added;
	int rc;

	mys_target_names(s, t->schema, t->name, db, sizeof(db), name, sizeof(name));
	rc = refuse_touched(s, db, name, err);
	if (rc != PS_OK)
		return rc;
	mys_table_forget(s, db, name);
	ps_buf_init(&qname, 2048);
	ps_buf_init(&alter, MYS_SQL_LIMIT);
	rc = mys_qualified(&qname, db, name) == PS_OK ? PS_OK
	     : ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == PS_OK)
		rc = mys_ddl_conn(s, &ddl, err);
	if (rc == PS_OK)
		rc = mys_catalog_query(ddl, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE ",
		                       "TABLE_SCHEMA", db, "TABLE_NAME", name,
		                       "", &res, err);
	if (rc == PS_OK) {
		row = mysql_fetch_row(res);
		if (!row)
			rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target",
			                  db, name);
		else
			snprintf(comment, sizeof(comment), "%s", row[0] ? row[0] : "");
	}
	mysql_free_result(res);
	if (rc == PS_OK)
		rc = mys_catalog_query(ddl, "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE ",
		                       "TABLE_SCHEMA", db, "TABLE_NAME", name,
		                       "", &idx, err);
	if (rc == PS_OK)
		rc = mys_catalog_query(ddl, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS WHERE ",
		                       "TABLE_SCHEMA", db, "TABLE_NAME", name,
		                       "", &cols, err);
	if (rc != PS_OK)
		goto cleanup;
	has_pk = index_exists(idx, "PRIMARY");
	for (int i = 0; i < def->nconstraints; i++)
		if (def->constraints[i].kind == PS_CONSTRAINT_PRIMARY && def->constraints[i].ncols > 0)
			pk = &def->constraints[i];
	if (pk && !has_pk) {
		rc = ps_buf_puts(&alter, "ADD PRIMARY KEY ");
		if (rc == PS_OK)
			rc = key_columns(&alter, def, pk, true, cols);
	}
	if (rc == PS_OK)
		rc = auto_increment(&alter, def, pk, cols, &added);
	for (int i = 0; rc == PS_OK && i < def->nconstraints; i++) {
		const ps_constraint_def *cd = &def->constraints[i];
		const char *why = NULL;
		char kind;

		if (cd->kind != PS_CONSTRAINT_UNIQUE && cd->kind != PS_CONSTRAINT_INDEX)
			continue;
		kind = index_kind(cd, &why);
		if (!kind) {
			ps_log_info("target mysql: %s.%s: index %s is not created: %s (%s)", db, name,
			            cd->name ? cd->name : "?", why, cd->sql ? cd->sql : "");
			continue;
		}
		if (!cd->name || index_exists(idx, cd->name) || strcasecmp(cd->name, "PRIMARY") == 0)
			continue;
		rc = ps_buf_printf(&alter, "%sADD %s ", alter.len ? ", " : "",
		                   kind == 'u' ? "UNIQUE KEY" : "KEY");
		if (rc == PS_OK)
			rc = my_quote_ident(&alter, cd->name);
		if (rc == PS_OK)
			rc = ps_buf_putc(&alter, ' ');
		if (rc == PS_OK)
			rc = key_columns(&alter, def, cd, kind == 'u', cols);
	}
	if (rc == PS_OK && marker_is_ours(s, comment)) {
		char mark[400];

		snprintf(mark, sizeof(mark), "%s%s", MYS_CREATED_BY, s->job);
		rc = ps_buf_printf(&alter, "%sCOMMENT = ", alter.len ? ", " : "");
		if (rc == PS_OK)
			rc = my_quote_literal(ddl, &alter, mark);
	}
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "ALTER TABLE statement for %s.%s too long", db, name);
		goto cleanup;
	}
	if (alter.len) {
		ps_buf sql;

		ps_buf_init(&sql, MYS_SQL_LIMIT + 4096);
		rc = ps_buf_printf(&sql, "ALTER TABLE %s %s", qname.data, alter.data);
		snprintf(what, sizeof(what), "adding keys and indexes to %s.%s", db, name);
		if (rc == PS_OK)
			rc = my_exec(ddl, sql.data, what, err);
		else
			rc = ps_error_set(err, rc, "ALTER TABLE statement for %s.%s too long", db, name);
		ps_buf_free(&sql);
	}
cleanup:
	mysql_free_result(idx);
	mysql_free_result(cols);
	ps_buf_free(&alter);
	ps_buf_free(&qname);
	return rc;
}

/* DDL that a killed run sent keeps running in the server after the client
 * is gone: the next run may find the table half way (not there yet, keys
 * not yet built) and then collide with it once MariaDB's metadata lock lets
 * it through ("already exists", "multiple primary key", "duplicate key
 * name"). By then the earlier statement has finished, so looking again is
 * enough. */
static bool lost_race(const ps_error *err)
{
	return strcmp(err->engine_code, "1050") == 0 || strcmp(err->engine_code, "1068") == 0 ||
	       strcmp(err->engine_code, "1061") == 0;
}

int mys_table_prepare(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                      bool *created, ps_error *err)
{
	int rc = prepare_once(s, def, opt, created, err);

	for (int again = 0; rc != PS_OK && again < 2 && lost_race(err); again++)
		rc = prepare_once(s, def, opt, created, err);
	return rc;
}

int mys_table_finish(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	int rc = finish_once(s, def, err);

	for (int again = 0; rc != PS_OK && again < 2 && lost_race(err); again++)
		rc = finish_once(s, def, err);
	return rc;
}
