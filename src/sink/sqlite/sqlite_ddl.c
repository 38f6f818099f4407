/*
 * sqlite_ddl.c — the SQLite sink's table_prepare and table_finish: creating,
 * checking and emptying target tables before the initial load, and adding
 * their indexes after it (docs/types-sqlite.md lists what is carried over).
 *
 * Both run inside the open target transaction (SQLite's DDL is
 * transactional), so a failed load leaves no half-made table behind once
 * the sink is closed without a flush. Both drop the sink's cache entries for
 * the table they touch (sqlite_table.c note 5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/sqlite/sqlite_typemap.h"
#include "sink/sqlite/sqlite_internal.h"
#include "util/log.h"

#define COUNT_CAP 1000000   /* rows counted before saying "more than" */

/* ==== table_prepare ======================================================= */

/* Source column numbers of the primary key, in key order; how many.
 * Without one, the columns of the source's REPLICA IDENTITY USING INDEX
 * index (unique, on NOT NULL columns) stand for it: rows are found by
 * them, as the source's changes identify rows by them. */
static int def_key(const ps_table_def *def, int *cols)
{
	const ps_table *t = def->table;
	int n = 0;

	if (!def->has_primary_key && def->identity_index) {
		for (int i = 0; i < t->ncolumns; i++)
			if (t->columns[i].is_key)
				cols[n++] = i;
		return n;
	}
	if (!def->has_primary_key)
		return 0;
	for (int c = 0; c < def->nconstraints; c++) {
		const ps_constraint_def *con = &def->constraints[c];
		bool ok = con->kind == PS_CONSTRAINT_PRIMARY && con->ncols > 0 &&
		          con->ncols <= t->ncolumns;

		for (int j = 0; ok && j < con->ncols; j++)
			ok = con->cols[j] >= 0 && con->cols[j] < t->ncolumns;
		if (ok) {
			memcpy(cols, con->cols, (size_t)con->ncols * sizeof(*cols));
			return con->ncols;
		}
	}
	for (int i = 0; i < t->ncolumns; i++)
		if (t->columns[i].is_key)
			cols[n++] = i;
	return n;
}

int ps__sqlite_create_table(ps_sink *k, const ps_table_def *def, const char *target,
                            ps_error *err)
{
	const ps_table *t = def->table;
	sq_sql o = {&k->sql, 0};
	int *key = NULL, nkey, rc;

	key = calloc((size_t)t->ncolumns + 1, sizeof(*key));
	if (!key)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	nkey = def_key(def, key);
	ps_buf_reset(&k->sql);
	sq_put(&o, "CREATE TABLE ");
	if (o.rc == 0)
		o.rc = ps_sql_quote_ident(&k->sql, target);
	sq_put(&o, " (");
	for (int i = 0; i < t->ncolumns; i++) {
		const ps_column_def *cd = def->columns ? &def->columns[i] : NULL;
		bool in_key = false;

		sq_put(&o, i ? ", " : "");
		if (o.rc == 0)
			o.rc = ps_sql_quote_ident(&k->sql, t->columns[i].name ? t->columns[i].name : "");
		sq_put(&o, " ");
		sq_put(&o, ps_typemap_sqlite_decl(ps_typemap_sqlite(def->engine, &t->columns[i], cd)));
		/* a case-insensitive collation is SQLite's NOCASE (ASCII letters
		 * only); another language's order has no SQLite equivalent: byte
		 * order, said once (docs/types-sqlite.md) */
		if (cd && cd->collation_class == PS_COLLATION_CASE_INSENSITIVE)
			sq_put(&o, " COLLATE NOCASE");
		else if (cd && cd->collation_class == PS_COLLATION_OTHER)
			ps_log_warn("sink sqlite: column %s of %s has collation %s, which SQLite does not "
			            "have: it compares and sorts by bytes (BINARY)", t->columns[i].name,
			            target, cd->collation ? cd->collation : "?");
		for (int j = 0; j < nkey; j++)
			in_key |= key[j] == i;
		/* SQLite lets NULL into a key column unless told otherwise. */
		if ((cd && cd->not_null) || in_key)
			sq_put(&o, " NOT NULL");
	}
	if (nkey > 0) {
		sq_put(&o, ", PRIMARY KEY (");
		for (int j = 0; j < nkey; j++) {
			sq_put(&o, j ? ", " : "");
			if (o.rc == 0)
				o.rc = ps_sql_quote_ident(&k->sql, t->columns[key[j]].name);
		}
		sq_put(&o, ")");
	}
	sq_put(&o, ")");
	free(key);
	if (o.rc != 0)
		return ps_error_set(err, o.rc, "table %s: cannot build CREATE TABLE", target);
	rc = ps__sqlite_exec(k, k->sql.data, err, "cannot create the table");
	if (rc == 0)
		ps_log_info("sink sqlite: created table %s in %s", target, k->path);
	return rc;
}

static int drop_table(ps_sink *k, const char *target, ps_error *err)
{
	ps_buf_reset(&k->sql);
	if (ps_buf_puts(&k->sql, "DROP TABLE IF EXISTS ") != 0 ||
	    ps_sql_quote_ident(&k->sql, target) != 0)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	return ps__sqlite_exec(k, k->sql.data, err, "cannot drop the table");
}

/* Rows in target, counted up to COUNT_CAP + 1. */
static int count_rows(ps_sink *k, const char *target, long long *rows, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	ps_buf_reset(&k->sql);
	if (ps_buf_puts(&k->sql, "SELECT count(*) FROM (SELECT 1 FROM ") != 0 ||
	    ps_sql_quote_ident(&k->sql, target) != 0 ||
	    ps_buf_printf(&k->sql, " LIMIT %d)", COUNT_CAP + 1) != 0)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = ps__sqlite_prepare(k, &k->sql, false, &st, err);
	if (rc != 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*rows = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = ps__sqlite_fail(k, rc, err, "cannot count the rows of the table");
	}
	sqlite3_finalize(st);
	return rc;
}

static int empty_table(ps_sink *k, const char *target, ps_error *err)
{
	ps_buf_reset(&k->sql);
	if (ps_buf_puts(&k->sql, "DELETE FROM ") != 0 || ps_sql_quote_ident(&k->sql, target) != 0)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	return ps__sqlite_exec(k, k->sql.data, err, "cannot empty the table");
}

/* An existing table: every source column there, and empty or emptied. */
static int check_existing(ps_sink *k, const ps_table_def *def, const char *target,
                          const sq_target_cols *tc, const ps_table_options *opt, ps_error *err)
{
	ps_buf missing;
	long long rows = 0;
	int rc;

	ps_buf_init(&missing, 64 << 10);
	if (ps__sqlite_list_missing(def->table, tc, &missing) > 0) {
		rc = ps_error_set(err, PS_EINVAL,
		                  "table %s exists in the target without column(s) %s of the source; "
		                  "add them, or drop the table and let the load create it "
		                  "(target.create_tables)", target, missing.data);
		ps_buf_free(&missing);
		return rc;
	}
	ps_buf_free(&missing);
	rc = count_rows(k, target, &rows, err);
	if (rc != 0 || rows == 0)
		return rc;
	if (!opt->truncate_before_load) {
		if (rows > COUNT_CAP)
			return ps_error_set(err, PS_EINVAL,
			                    "table %s in the target already holds more than %d rows; "
			                    "empty it, or set target.truncate_before_load to let the load "
			                    "empty it", target, COUNT_CAP);
		return ps_error_set(err, PS_EINVAL,
		                    "table %s in the target already holds %lld row%s; empty it, or set "
		                    "target.truncate_before_load to let the load empty it",
		                    target, rows, rows == 1 ? "" : "s");
	}
	ps_log_info("sink sqlite: emptying table %s before the load (target.truncate_before_load)",
	            target);
	return empty_table(k, target, err);
}

static int def_check(const ps_table_def *def, ps_error *err)
{
	if (!def || !def->table)
		return ps_error_set(err, PS_EINVAL, "no table definition given");
	if (def->table->ncolumns <= 0)
		return ps_error_set(err, PS_EINVAL,
		                    "table %s.%s has no columns, and SQLite cannot create such a table",
		                    def->table->schema ? def->table->schema : "",
		                    def->table->name ? def->table->name : "");
	return 0;
}

int ps__sqlite_table_prepare(ps_sink *k, const ps_table_def *def,
                             const ps_table_options *opt, bool *created, ps_error *err)
{
	static const ps_table_options defaults = {.create = PS_CREATE_IF_MISSING};
	sq_target_cols tc = {0};
	char *target = NULL;
	int rc;

	*created = false;
	if (!opt)
		opt = &defaults;
	rc = def_check(def, err);
	if (rc != 0)
		return rc;
	target = ps__sqlite_target_name(def->table->schema, def->table->name);
	if (!target)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (sqlite3_stricmp(target, SQ_CHECKPOINT_TABLE) == 0) {
		rc = ps_error_set(err, PS_EINVAL, "table %s would be the sink's own checkpoint table",
		                  target);
		goto cleanup;
	}
	rc = ps__sqlite_txn(k, err);
	if (rc != 0)
		goto cleanup;
	ps__sqlite_forget_target(k, target);
	rc = ps__sqlite_read_target(k, target, &tc, err);
	if (rc == 0 && tc.n == 0 && opt->rejoin) {
		/* joining a running job under a new name (issue 15) */
		bool found = false;
		rc = ps__sqlite_renamed_from(k, def, target, &found, err);
		if (rc == 0 && found)
			rc = ps__sqlite_read_target(k, target, &tc, err);
	}
	if (rc != 0)
		goto cleanup;
	if (opt->create == PS_CREATE_DROP_AND_CREATE) {
		if (tc.n > 0)
			rc = drop_table(k, target, err);
		if (rc == 0)
			rc = ps__sqlite_create_table(k, def, target, err);
		if (rc == 0)
			rc = ps__sqlite_registry_store(k, target, def, def->table->id, err);
		*created = rc == 0;
	} else if (tc.n == 0 && opt->create == PS_CREATE_NEVER) {
		rc = ps_error_set(err, PS_EINVAL,
		                  "table %s does not exist in the target, and target.create_tables "
		                  "says never to create tables; create it first or change "
		                  "target.create_tables", target);
	} else if (tc.n == 0) {
		rc = ps__sqlite_create_table(k, def, target, err);
		if (rc == 0)
			rc = ps__sqlite_registry_store(k, target, def, def->table->id, err);
		*created = rc == 0;
	} else {
		bool done = false;
		/* a table joining a running job that penstock made (issue 15) */
		if (opt->rejoin)
			rc = ps__sqlite_rejoin(k, def, target, &done, err);
		if (rc == 0 && !done)
			rc = check_existing(k, def, target, &tc, opt, err);
	}
cleanup:
	if (rc != 0)
		ps_error_add_context(err, "table %s", target ? target : "?");
	ps__sqlite_target_cols_free(&tc);
	free(target);
	return rc;
}

/* ==== table_finish ======================================================== */

/* Whether a constraint becomes an index here, and whether a UNIQUE one. */
static bool index_wanted(const ps_constraint_def *con, int ncolumns, bool *unique)
{
	if (con->ncols <= 0 || !con->cols)
		return false;                   /* expression index or none */
	for (int j = 0; j < con->ncols; j++)
		if (con->cols[j] < 0 || con->cols[j] >= ncolumns)
			return false;
	if (con->kind == PS_CONSTRAINT_UNIQUE) {
		*unique = true;
		return true;
	}
	if (con->kind != PS_CONSTRAINT_INDEX || !con->sql)
		return false;
	/* A partial index would wrongly constrain every row; other access
	 * methods (gin, gist, brin...) are not B-tree lookups. */
	if (strstr(con->sql, " WHERE "))
		return false;
	if (strstr(con->sql, " USING ") &&
	    !(strstr(con->sql, " USING btree ") || strstr(con->sql, " USING hash ")))
		return false;
	*unique = strncmp(con->sql, "CREATE UNIQUE INDEX", 19) == 0;
	return true;
}

static int create_index(ps_sink *k, const ps_table_def *def, const ps_constraint_def *con,
                        const char *target, bool unique, ps_error *err)
{
	sq_sql o = {&k->sql, 0};
	char *iname = ps__sqlite_join_dot(target, con->name ? con->name : "index");
	int rc;

	if (!iname)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_reset(&k->sql);
	sq_put(&o, unique ? "CREATE UNIQUE INDEX IF NOT EXISTS " : "CREATE INDEX IF NOT EXISTS ");
	if (o.rc == 0)
		o.rc = ps_sql_quote_ident(&k->sql, iname);
	sq_put(&o, " ON ");
	if (o.rc == 0)
		o.rc = ps_sql_quote_ident(&k->sql, target);
	sq_put(&o, " (");
	for (int j = 0; j < con->ncols; j++) {
		sq_put(&o, j ? ", " : "");
		if (o.rc == 0)
			o.rc = ps_sql_quote_ident(&k->sql, def->table->columns[con->cols[j]].name);
	}
	sq_put(&o, ")");
	if (o.rc != 0)
		rc = ps_error_set(err, o.rc, "cannot build CREATE INDEX %s", iname);
	else
		rc = ps__sqlite_exec(k, k->sql.data, err, "cannot create index");
	if (rc != 0)
		ps_error_add_context(err, "index %s", iname);
	free(iname);
	return rc;
}

int ps__sqlite_table_finish(ps_sink *k, const ps_table_def *def, ps_error *err)
{
	sq_target_cols tc = {0};
	char *target = NULL;
	int rc;

	rc = def_check(def, err);
	if (rc != 0)
		return rc;
	target = ps__sqlite_target_name(def->table->schema, def->table->name);
	if (!target)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = ps__sqlite_txn(k, err);
	if (rc == 0)
		rc = ps__sqlite_read_target(k, target, &tc, err);
	if (rc == 0 && tc.n == 0)
		rc = ps_error_set(err, PS_EINVAL, "table %s does not exist in the target", target);
	for (int c = 0; rc == 0 && c < def->nconstraints; c++) {
		const ps_constraint_def *con = &def->constraints[c];
		bool unique = false;

		if (con->kind == PS_CONSTRAINT_PRIMARY)
			continue;               /* part of CREATE TABLE (SQLite cannot add one) */
		if (!index_wanted(con, def->table->ncolumns, &unique)) {
			ps_log_debug("sink sqlite: table %s: %s %s is not carried over to SQLite",
			             target, con->kind == PS_CONSTRAINT_CHECK ? "check" : "index",
			             con->name ? con->name : "?");
			continue;
		}
		rc = create_index(k, def, con, target, unique, err);
	}
	ps__sqlite_forget_target(k, target);
	if (rc != 0)
		ps_error_add_context(err, "table %s", target);
	ps__sqlite_target_cols_free(&tc);
	free(target);
	return rc;
}
