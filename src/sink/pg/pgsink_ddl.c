/*
 * pgsink_ddl.c — table_prepare and table_finish of the PostgreSQL sink.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Both run inside the open target transaction (pgsink.c NOTES 3), so a
 *     table created for a copy unit commits with the unit's rows and its
 *     checkpoint, or not at all.
 *  2. A def from a PostgreSQL source is recreated with full fidelity: the
 *     objects it needs first (its requires: types, sequences, collations,
 *     extensions, functions, pgsink_schema.c), then the column types
 *     exactly as the source spells them (format_type), collations, NOT
 *     NULL, DEFAULT expressions, identity columns with their sequence's
 *     name and options, generated columns in their place, CHECK
 *     constraints, the partition key, every partition (each in its own
 *     schema) and the comments. Sequences a serial default draws from are
 *     made OWNED BY their column afterwards. A type outside pg_catalog that
 *     is still missing (target.schema bare, or a kind penstock does not
 *     create) is refused, naming the column and type. A def from another
 *     engine gets a portable type per type class and no defaults or checks
 *     (their SQL is the other engine's).
 *  3. The primary key, unique and exclusion constraints and other indexes
 *     are added by table_finish, after the load: building them once over
 *     loaded rows is cheaper than maintaining them row by row; then the
 *     replica identity index, when the source has one. table_finish skips
 *     what already exists, so it can run again after a crash.
 *  4. Creation that another sink instance may race with (a schema, a
 *     sequence) runs under a savepoint: losing the race is not an error and
 *     leaves the transaction usable.
 *  5. Refusals that are the user's to fix (missing table with
 *     create_tables = never, missing columns, rows already there, missing
 *     user type) leave the target transaction usable; server errors make
 *     the sink failed (pgsink.c NOTES 6).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/pg/pgsink.h"
#include "util/pgconn.h"

/* ==== pure helpers ======================================================== */

/* Reads one identifier at *p into out (quoted: "" is ", case kept;
 * unquoted: folded to lower case). */
static int read_ident(const char **p, char *out, size_t len)
{
	const char *s = *p;
	size_t n = 0;

	if (*s == '"') {
		for (s++;; s++) {
			if (*s == '\0')
				return PS_EINVAL;
			if (*s == '"') {
				if (s[1] != '"')
					break;
				s++;
			}
			if (n + 1 >= len)
				return PS_EINVAL;
			out[n++] = *s;
		}
		s++;
	} else {
		while (*s && *s != '.' && *s != '"' && !isspace((unsigned char)*s)) {
			if (n + 1 >= len)
				return PS_EINVAL;
			out[n++] = (char)tolower((unsigned char)*s);
			s++;
		}
	}
	if (n == 0)
		return PS_EINVAL;
	out[n] = '\0';
	*p = s;
	return PS_OK;
}

int ps__pg_split_qualified(const char *text, char *schema, size_t schema_len,
                           char *name, size_t name_len)
{
	const char *p = text;

	if (!text || schema_len == 0 || name_len == 0)
		return PS_EINVAL;
	schema[0] = '\0';
	if (read_ident(&p, name, name_len) != PS_OK)
		return PS_EINVAL;
	if (*p == '\0')
		return PS_OK;                          /* unqualified */
	if (*p != '.')
		return PS_EINVAL;
	p++;
	if (strlen(name) >= schema_len)
		return PS_EINVAL;
	snprintf(schema, schema_len, "%s", name);
	if (read_ident(&p, name, name_len) != PS_OK || *p != '\0')
		return PS_EINVAL;
	return PS_OK;
}

/* The next word at *p (letters only), after white space; length or 0. */
static size_t next_word(const char **p)
{
	const char *s = *p;
	size_t n = 0;

	while (isspace((unsigned char)*s))
		s++;
	*p = s;
	while (isalpha((unsigned char)s[n]))
		n++;
	return n;
}

static bool word_is(const char *p, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

char *ps__pg_index_if_not_exists(const char *sql)
{
	const char *p = sql, *cut_from, *rest;
	size_t n;
	ps_buf b;

	n = next_word(&p);
	if (!word_is(p, n, "create"))
		return NULL;
	p += n;
	n = next_word(&p);
	if (word_is(p, n, "unique")) {
		p += n;
		n = next_word(&p);
	}
	if (!word_is(p, n, "index"))
		return NULL;
	p += n;
	cut_from = p;                          /* after INDEX */
	n = next_word(&p);
	if (word_is(p, n, "concurrently")) {   /* not allowed in a transaction */
		p += n;
		n = next_word(&p);
	}
	rest = p;
	ps_buf_init(&b, strlen(sql) + 64);
	if (ps_buf_append(&b, sql, (size_t)(cut_from - sql)) != PS_OK)
		goto fail;
	if (word_is(p, n, "if") || word_is(p, n, "on")) {
		/* Already idempotent, or no name (IF NOT EXISTS needs one): as is. */
		if (ps_buf_putc(&b, ' ') != PS_OK)
			goto fail;
	} else if (ps_buf_puts(&b, " IF NOT EXISTS ") != PS_OK) {
		goto fail;
	}
	if (ps_buf_puts(&b, rest) != PS_OK)
		goto fail;
	return ps_buf_detach(&b);
fail:
	ps_buf_free(&b);
	return NULL;
}

/* ==== SQL helpers ========================================================= */

int pgs_qualified(ps_sink *s, ps_buf *b, const char *schema, const char *name)
{
	int rc = pg_quote_ident(s->conn, b, schema);

	if (rc == PS_OK)
		rc = ps_buf_putc(b, '.');
	if (rc == PS_OK)
		rc = pg_quote_ident(s->conn, b, name);
	return rc;
}

/* Runs sql under a savepoint; losing a creation race is fine (NOTES 4). */
int pgs_exec_may_race(ps_sink *s, const char *sql, const char *what, ps_error *err)
{
	PGresult *res = NULL;
	const char *state;
	int rc = pgs_exec(s, NULL, err, "setting a savepoint", "SAVEPOINT penstock_ddl", 0, NULL);

	if (rc != PS_OK)
		return rc;
	res = PQexec(s->conn, sql);
	if (res && (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)) {
		PQclear(res);
		return pgs_exec(s, NULL, err, "releasing a savepoint", "RELEASE SAVEPOINT penstock_ddl",
		                0, NULL);
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state && (strcmp(state, "23505") == 0 || strcmp(state, "42P06") == 0 ||
	              strcmp(state, "42P07") == 0 || strcmp(state, "42710") == 0)) {
		PQclear(res);
		return pgs_exec(s, NULL, err, "rolling back to a savepoint",
		                "ROLLBACK TO SAVEPOINT penstock_ddl", 0, NULL);
	}
	pg_result_error(err, s->conn, res, what);
	PQclear(res);
	return pgs_fail(s, err);
}

int pgs_ensure_schema(ps_sink *s, const char *schema, ps_error *err)
{
	const char *params[1] = {schema};
	PGresult *res = NULL;
	char what[200];
	ps_buf sql;
	int rc;

	rc = pgs_exec(s, &res, err, "looking up a schema",
	              "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, params);
	if (rc != PS_OK || PQntuples(res) > 0) {
		PQclear(res);
		return rc;
	}
	PQclear(res);
	ps_buf_init(&sql, 4096);
	rc = ps_buf_puts(&sql, "CREATE SCHEMA IF NOT EXISTS ");
	if (rc == PS_OK)
		rc = pg_quote_ident(s->conn, &sql, schema);
	snprintf(what, sizeof(what), "creating schema %s", schema);
	if (rc == PS_OK)
		rc = pgs_exec_may_race(s, sql.data, what, err);
	else
		rc = ps_error_set(err, rc, "schema name too long");
	ps_buf_free(&sql);
	return rc;
}

/* The table's OID as text into oid (empty when there is no such table). */
int pgs_find_table(ps_sink *s, const ps_table *t, char *oid, size_t len, ps_error *err)
{
	const char *params[2] = {t->schema, t->name};
	PGresult *res = NULL;
	int rc;

	oid[0] = '\0';
	rc = pgs_exec(s, &res, err, "looking up a table",
	              "SELECT c.oid FROM pg_catalog.pg_class c "
	              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	              "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
	              2, params);
	if (rc == PS_OK && PQntuples(res) == 1)
		snprintf(oid, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* ==== existing tables ===================================================== */

static int check_columns(ps_sink *s, const ps_table_def *def, const char *oid, ps_error *err)
{
	const ps_table *t = def->table;
	const char *params[1] = {oid};
	PGresult *res = NULL;
	ps_buf missing, unfillable;
	int rc;

	rc = pgs_exec(s, &res, err, "reading the target's columns",
	              "SELECT a.attname, a.attnotnull AND d.oid IS NULL AND a.attidentity = '' "
	              "  AND a.attgenerated = '' "
	              "FROM pg_catalog.pg_attribute a "
	              "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
	              "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped", 1, params);
	if (rc != PS_OK)
		return rc;
	ps_buf_init(&missing, 8192);
	ps_buf_init(&unfillable, 8192);
	for (int i = 0; i < t->ncolumns; i++) {
		bool found = false;

		for (int r = 0; r < PQntuples(res) && !found; r++)
			found = strcmp(PQgetvalue(res, r, 0), t->columns[i].name) == 0;
		if (!found)
			ps_buf_printf(&missing, "%s%s", missing.len ? ", " : "", t->columns[i].name);
	}
	/* a column only the target has is left to its default: it needs one, or
	 * to accept NULL (the same as precheck target.tables) */
	for (int r = 0; r < PQntuples(res); r++) {
		bool sent = false;

		for (int i = 0; i < t->ncolumns && !sent; i++)
			sent = strcmp(PQgetvalue(res, r, 0), t->columns[i].name) == 0;
		for (int g = 0; g < def->ngenerated && !sent; g++)
			sent = def->generated[g].name && strcmp(PQgetvalue(res, r, 0), def->generated[g].name) == 0;
		if (!sent && PQgetvalue(res, r, 1)[0] == 't')
			ps_buf_printf(&unfillable, "%s%s", unfillable.len ? ", " : "", PQgetvalue(res, r, 0));
	}
	if (missing.len)
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s exists in the target but has no "
		                  "column %s; add the missing columns or let the load create the "
		                  "table (target.create_tables)", t->schema, t->name, missing.data);
	else if (unfillable.len)
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s in the target has column %s, which the "
		                  "source does not send and which is NOT NULL without a default: give "
		                  "it a default (ALTER TABLE ... ALTER COLUMN ... SET DEFAULT) or drop "
		                  "NOT NULL", t->schema, t->name, unfillable.data);
	ps_buf_free(&unfillable);
	ps_buf_free(&missing);
	PQclear(res);
	return rc;
}

static int check_empty(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                       const char *qname, ps_error *err)
{
	const ps_table *t = def->table;
	PGresult *res = NULL;
	ps_buf sql;
	bool has_rows;
	int rc;

	ps_buf_init(&sql, PGS_SQL_LIMIT);
	rc = ps_buf_printf(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", qname);
	if (rc == PS_OK)
		rc = pgs_exec(s, &res, err, "checking the target table is empty", sql.data, 0, NULL);
	if (rc != PS_OK)
		goto cleanup;
	has_rows = PQgetvalue(res, 0, 0)[0] == 't';
	if (has_rows && !opt->truncate_before_load) {
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s in the target already holds rows; "
		                  "empty it, or set target.truncate_before_load to have the load "
		                  "empty it", t->schema, t->name);
		goto cleanup;
	}
	if (has_rows) {
		ps_buf_reset(&sql);
		rc = ps_buf_printf(&sql, "TRUNCATE %s", qname);
		if (rc == PS_OK)
			rc = pgs_exec(s, NULL, err, "emptying the target table", sql.data, 0, NULL);
	}
cleanup:
	PQclear(res);
	ps_buf_free(&sql);
	return rc;
}

/* ==== creating tables ===================================================== */

static const char *portable_type(int type_class)
{
	switch (type_class) {
	case PS_TYPE_BOOL: return "boolean";
	case PS_TYPE_INTEGER: return "bigint";
	case PS_TYPE_FLOAT: return "double precision";
	case PS_TYPE_NUMERIC: return "numeric";
	case PS_TYPE_JSON: return "jsonb";
	case PS_TYPE_BYTES: return "bytea";
	default: return "text";
	}
}

int pgs_check_user_types(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	const ps_table *t = def->table;

	for (int i = 0; i < t->ncolumns; i++) {
		const char *params[1] = {def->columns[i].sql_type};
		PGresult *res = NULL;
		bool missing;
		int rc;

		if (!def->columns[i].user_type || !def->columns[i].sql_type)
			continue;
		rc = pgs_exec(s, &res, err, "looking up a type", "SELECT to_regtype($1) IS NULL",
		              1, params);
		if (rc != PS_OK)
			return rc;
		missing = PQgetvalue(res, 0, 0)[0] == 't';
		PQclear(res);
		if (missing)
			return ps_error_set(err, PS_EINVAL, "column %s of %s.%s has type %s, which does "
			                    "not exist in the target; create the type in the target "
			                    "first", t->columns[i].name, t->schema, t->name,
			                    def->columns[i].sql_type);
	}
	return PS_OK;
}

/* CREATE SEQUENCE IF NOT EXISTS for every column's sequence; when owned_by
 * is set, ALTER SEQUENCE ... OWNED BY the column instead. */
int pgs_sequences(ps_sink *s, const ps_table_def *def, const char *qname, bool owned_by,
                  ps_error *err)
{
	const ps_table *t = def->table;
	char schema[256], name[256], what[600];
	ps_buf sql;
	int rc = PS_OK;

	ps_buf_init(&sql, 8192);
	for (int i = 0; rc == PS_OK && i < t->ncolumns; i++) {
		const char *seq = def->columns[i].sequence;

		if (!seq)
			continue;
		if (ps__pg_split_qualified(seq, schema, sizeof(schema), name, sizeof(name)) != PS_OK) {
			rc = ps_error_set(err, PS_EINVAL, "column %s of %s.%s: sequence name %s is not "
			                  "a quoted \"schema\".\"name\"", t->columns[i].name, t->schema,
			                  t->name, seq);
			break;
		}
		if (!schema[0])
			snprintf(schema, sizeof(schema), "%s", t->schema);
		ps_buf_reset(&sql);
		rc = ps_buf_puts(&sql, owned_by ? "ALTER SEQUENCE " : "CREATE SEQUENCE IF NOT EXISTS ");
		if (rc == PS_OK)
			rc = pgs_qualified(s, &sql, schema, name);
		if (rc == PS_OK && owned_by)
			rc = ps_buf_printf(&sql, " OWNED BY %s.", qname);
		if (rc == PS_OK && owned_by)
			rc = pg_quote_ident(s->conn, &sql, t->columns[i].name);
		if (rc != PS_OK) {
			rc = ps_error_set(err, rc, "sequence statement too long");
			break;
		}
		snprintf(what, sizeof(what), "%s sequence %s.%s", owned_by ? "owning" : "creating",
		         schema, name);
		if (owned_by) {
			rc = pgs_exec(s, NULL, err, what, sql.data, 0, NULL);
		} else {
			rc = pgs_ensure_schema(s, schema, err);
			if (rc == PS_OK)
				rc = pgs_exec_may_race(s, sql.data, what, err);
		}
	}
	ps_buf_free(&sql);
	return rc;
}

int pgs_column_sql(ps_sink *s, ps_buf *b, const ps_table_def *def, int i, bool pg)
{
	const ps_column_def *cd = &def->columns[i];
	const ps_column *col = &def->table->columns[i];
	bool my = def->engine && strcmp(def->engine, "mysql") == 0;
	char mytype[64];
	const char *mapped = my ? pgs_mysql_type(cd, col, mytype, sizeof(mytype)) : NULL;
	int rc = pg_quote_ident(s->conn, b, col->name);

	if (rc == PS_OK)
		rc = ps_buf_printf(b, " %s", pg && cd->sql_type ? cd->sql_type
		                             : mapped           ? mapped
		                                                : portable_type(col->type_class));
	if (rc == PS_OK && pg && cd->collation)
		rc = ps_buf_printf(b, " COLLATE %s", cd->collation);
	if (rc == PS_OK && cd->identity == 'a')
		rc = ps_buf_puts(b, " GENERATED ALWAYS AS IDENTITY");
	else if (rc == PS_OK && cd->identity == 'd')
		rc = ps_buf_puts(b, " GENERATED BY DEFAULT AS IDENTITY");
	else if (rc == PS_OK && pg && cd->default_expr)
		rc = ps_buf_printf(b, " DEFAULT %s", cd->default_expr);
	else if (rc == PS_OK && my && cd->default_expr)
		rc = pgs_mysql_default(s, def->table, cd, col, b);
	/* the identity's sequence as on the source: name, start, bounds */
	if (rc == PS_OK && pg && cd->identity && cd->identity_options)
		rc = ps_buf_printf(b, " (%s)", cd->identity_options);
	if (rc == PS_OK && cd->not_null)
		rc = ps_buf_puts(b, " NOT NULL");
	return rc;
}

/* A generated column (PostgreSQL definitions only). */
static int generated_sql(ps_sink *s, ps_buf *b, const ps_generated_def *g)
{
	int rc = pg_quote_ident(s->conn, b, g->name);

	if (rc == PS_OK)
		rc = ps_buf_printf(b, " %s", g->sql_type);
	if (rc == PS_OK && g->collation)
		rc = ps_buf_printf(b, " COLLATE %s", g->collation);
	if (rc == PS_OK)
		rc = ps_buf_printf(b, " GENERATED ALWAYS AS (%s) STORED", g->expr);
	return rc;
}

/* The generated columns that come before copied column `position` (all
 * of them left when position is ncolumns). */
static int put_generated(ps_sink *s, ps_buf *b, const ps_table_def *def, int position,
                         bool *first)
{
	int rc = PS_OK;

	for (int g = 0; rc == PS_OK && g < def->ngenerated; g++) {
		const ps_generated_def *gd = &def->generated[g];

		if (gd->position != position || !gd->name || !gd->sql_type || !gd->expr)
			continue;
		rc = ps_buf_puts(b, *first ? "\n  " : ",\n  ");
		if (rc == PS_OK)
			rc = generated_sql(s, b, gd);
		*first = false;
	}
	return rc;
}

/* COMMENT ON ... IS 'text' for the table, its columns and its generated
 * columns. */
int pgs_put_literal(ps_sink *s, ps_buf *b, const char *text)
{
	char *lit = PQescapeLiteral(s->conn, text, strlen(text));
	int rc;

	if (!lit)
		return PS_ENOMEM;
	rc = ps_buf_puts(b, lit);
	PQfreemem(lit);
	return rc;
}

int pgs_comment_one(ps_sink *s, const char *on, const char *qname, const char *column,
                    const char *text, const char *what, ps_error *err)
{
	ps_buf sql;
	int rc;

	if (!text)
		return PS_OK;
	ps_buf_init(&sql, PGS_SQL_LIMIT);
	rc = ps_buf_printf(&sql, "COMMENT ON %s %s", on, qname);
	if (rc == PS_OK && column) {
		rc = ps_buf_putc(&sql, '.');
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, column);
	}
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " IS ");
	if (rc == PS_OK)
		rc = pgs_put_literal(s, &sql, text);
	if (rc == PS_OK)
		rc = pgs_exec(s, NULL, err, what, sql.data, 0, NULL);
	else
		rc = ps_error_set(err, rc, "comment too long");
	ps_buf_free(&sql);
	return rc;
}

static int comments(ps_sink *s, const ps_table_def *def, const char *qname, ps_error *err)
{
	char what[300];
	int rc;

	snprintf(what, sizeof(what), "commenting on %s.%s", def->table->schema, def->table->name);
	rc = pgs_comment_one(s, "TABLE", qname, NULL, def->comment, what, err);
	for (int i = 0; rc == PS_OK && i < def->table->ncolumns; i++)
		rc = pgs_comment_one(s, "COLUMN", qname, def->table->columns[i].name,
		                 def->columns[i].comment, what, err);
	for (int g = 0; rc == PS_OK && g < def->ngenerated; g++)
		rc = pgs_comment_one(s, "COLUMN", qname, def->generated[g].name, def->generated[g].comment,
		                 what, err);
	return rc;
}

/* Every partition under a partitioned table, parents first, each in its
 * own schema: CREATE TABLE ... PARTITION OF parent FOR VALUES ... */
static int create_partitions(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	char what[400];
	ps_buf sql, qname;
	int rc = PS_OK;

	ps_buf_init(&sql, PGS_SQL_LIMIT);
	ps_buf_init(&qname, 4096);
	for (int i = 0; rc == PS_OK && i < def->npartitions; i++) {
		const ps_partition_def *p = &def->partitions[i];

		if (!p->schema || !p->name || !p->parent_schema || !p->parent_name || !p->bound) {
			rc = ps_error_set(err, PS_EINVAL, "partition %d of %s.%s is not fully described",
			                  i, def->table->schema, def->table->name);
			break;
		}
		ps_buf_reset(&sql);
		ps_buf_reset(&qname);
		rc = pgs_ensure_schema(s, p->schema, err);
		if (rc != PS_OK)
			break;
		rc = pgs_qualified(s, &qname, p->schema, p->name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, "CREATE TABLE %s PARTITION OF ", qname.data);
		if (rc == PS_OK)
			rc = pgs_qualified(s, &sql, p->parent_schema, p->parent_name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, " %s", p->bound);
		if (rc == PS_OK && p->partition_by)
			rc = ps_buf_printf(&sql, " PARTITION BY %s", p->partition_by);
		if (rc != PS_OK) {
			rc = ps_error_set(err, rc, "partition statement too long");
			break;
		}
		snprintf(what, sizeof(what), "creating partition %s.%s of %s.%s", p->schema, p->name,
		         p->parent_schema, p->parent_name);
		rc = pgs_exec(s, NULL, err, what, sql.data, 0, NULL);
		if (rc == PS_OK)
			rc = pgs_comment_one(s, "TABLE", qname.data, NULL, p->comment, what, err);
	}
	ps_buf_free(&sql);
	ps_buf_free(&qname);
	return rc;
}

static int create_table(ps_sink *s, const ps_table_def *def, const char *qname, ps_error *err)
{
	const ps_table *t = def->table;
	bool pg = def->engine && strcmp(def->engine, "postgresql") == 0;
	bool first = true;
	char what[300];
	ps_buf sql;
	int rc;

	/* what the table needs: types, sequences, collations, extensions ...
	 * (pgsink_schema.c) */
	snprintf(what, sizeof(what), "table %s.%s needs", t->schema, t->name);
	rc = pg ? pgs_ensure_objects(s, def->requires, def->nrequires, what, NULL, err) : PS_OK;
	if (rc == PS_OK)
		rc = pgs_ensure_schema(s, t->schema, err);
	if (rc == PS_OK)
		rc = pgs_check_user_types(s, def, err);
	if (rc == PS_OK && pg)
		rc = pgs_sequences(s, def, qname, false, err);
	if (rc != PS_OK)
		return rc;
	ps_buf_init(&sql, PGS_SQL_LIMIT);
	rc = ps_buf_printf(&sql, "CREATE TABLE %s (", qname);
	for (int i = 0; rc == PS_OK && i < t->ncolumns; i++) {
		if (pg)
			rc = put_generated(s, &sql, def, i, &first);
		if (rc == PS_OK)
			rc = ps_buf_puts(&sql, first ? "\n  " : ",\n  ");
		if (rc == PS_OK)
			rc = pgs_column_sql(s, &sql, def, i, pg);
		first = false;
	}
	if (rc == PS_OK && pg)
		rc = put_generated(s, &sql, def, t->ncolumns, &first);
	for (int i = 0; rc == PS_OK && pg && i < def->nconstraints; i++) {
		const ps_constraint_def *cd = &def->constraints[i];

		if (cd->kind != PS_CONSTRAINT_CHECK || !cd->sql)
			continue;
		rc = ps_buf_puts(&sql, first ? "\n  CONSTRAINT " : ",\n  CONSTRAINT ");
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, cd->name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, " %s", cd->sql);
		first = false;
	}
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, "\n)");
	if (rc == PS_OK && pg && def->partition_by)
		rc = ps_buf_printf(&sql, " PARTITION BY %s", def->partition_by);
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "CREATE TABLE statement for %s.%s too long", t->schema,
		                  t->name);
		goto cleanup;
	}
	snprintf(what, sizeof(what), "creating table %s.%s", t->schema, t->name);
	rc = pgs_exec(s, NULL, err, what, sql.data, 0, NULL);
	if (rc == PS_OK && pg)
		rc = pgs_sequences(s, def, qname, true, err);
	if (rc == PS_OK && pg)
		rc = create_partitions(s, def, err);
	if (rc == PS_OK && pg)
		rc = comments(s, def, qname, err);
cleanup:
	ps_buf_free(&sql);
	return rc;
}

/* ==== table_prepare / table_finish ======================================== */

int pgs_table_prepare(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                      bool *created, ps_error *err)
{
	const ps_table *t = def->table;
	char oid[32], what[300];
	ps_buf qname, sql;
	int rc;

	*created = false;
	ps_buf_init(&qname, 4096);
	ps_buf_init(&sql, 8192);
	rc = pgs_table_forget(s, t->schema, t->name, err);
	if (rc == PS_OK && pgs_qualified(s, &qname, t->schema, t->name) != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == PS_OK)
		rc = pgs_find_table(s, t, oid, sizeof(oid), err);
	if (rc == PS_OK && oid[0] && opt->create == PS_CREATE_DROP_AND_CREATE) {
		snprintf(what, sizeof(what), "dropping table %s.%s", t->schema, t->name);
		rc = ps_buf_printf(&sql, "DROP TABLE IF EXISTS %s CASCADE", qname.data);
		if (rc == PS_OK)
			rc = pgs_exec(s, NULL, err, what, sql.data, 0, NULL);
		oid[0] = '\0';
	}
	/* a table joining a running job under a new name: the one penstock made
	 * for it under its former name follows (issue 15) */
	if (rc == PS_OK && !oid[0] && opt->rejoin)
		rc = pgs_renamed_from(s, def, oid, sizeof(oid), err);
	if (rc != PS_OK)
		goto cleanup;
	if (!oid[0]) {
		if (opt->create == PS_CREATE_NEVER) {
			rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target and "
			                  "target.create_tables says never; create it in the target or "
			                  "let the load create it (target.create_tables)",
			                  t->schema, t->name);
			goto cleanup;
		}
		rc = create_table(s, def, qname.data, err);
		if (rc == PS_OK)
			rc = pgs_registry_created(s, def, err);
		*created = rc == PS_OK;
		goto cleanup;
	}
	if (opt->rejoin) {
		/* a table penstock made, holding a former state of this one */
		bool done = false;
		rc = pgs_rejoin(s, def, oid, qname.data, &done, err);
		if (rc != PS_OK || done)
			goto cleanup;
	}
	rc = check_columns(s, def, oid, err);
	if (rc == PS_OK)
		rc = check_empty(s, def, opt, qname.data, err);
cleanup:
	ps_buf_free(&qname);
	ps_buf_free(&sql);
	return rc;
}

static bool has_constraint(const PGresult *res, const char *name, char kind)
{
	for (int r = 0; r < PQntuples(res); r++) {
		if (strcmp(PQgetvalue(res, r, 0), name) == 0)
			return true;
		if (kind == PS_CONSTRAINT_PRIMARY && PQgetvalue(res, r, 1)[0] == 'p')
			return true;                       /* one primary key per table */
	}
	return false;
}

static int add_constraint(ps_sink *s, const ps_table_def *def, const ps_constraint_def *cd,
                          const char *qname, ps_error *err)
{
	char what[400];
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, PGS_SQL_LIMIT);
	rc = ps_buf_printf(&sql, "ALTER TABLE %s ADD CONSTRAINT ", qname);
	if (rc == PS_OK)
		rc = pg_quote_ident(s->conn, &sql, cd->name);
	if (rc == PS_OK)
		rc = ps_buf_printf(&sql, " %s", cd->sql);
	snprintf(what, sizeof(what), "adding constraint %s to %s.%s", cd->name,
	         def->table->schema, def->table->name);
	if (rc == PS_OK)
		rc = pgs_exec(s, NULL, err, what, sql.data, 0, NULL);
	else
		rc = ps_error_set(err, rc, "constraint statement too long");
	ps_buf_free(&sql);
	return rc;
}

static int add_index(ps_sink *s, const ps_table_def *def, const ps_constraint_def *cd,
                     ps_error *err)
{
	char *sql = ps__pg_index_if_not_exists(cd->sql);
	char what[400];
	int rc;

	if (!sql)
		return ps_error_set(err, PS_EINVAL, "index %s of %s.%s: not a CREATE INDEX "
		                    "statement: %s", cd->name, def->table->schema, def->table->name,
		                    cd->sql);
	snprintf(what, sizeof(what), "creating index %s on %s.%s", cd->name, def->table->schema,
	         def->table->name);
	rc = pgs_exec(s, NULL, err, what, sql, 0, NULL);
	free(sql);
	return rc;
}

int pgs_table_finish(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	const ps_table *t = def->table;
	const char *params[1];
	PGresult *existing = NULL;
	char oid[32];
	ps_buf qname;
	int rc;

	ps_buf_init(&qname, 4096);
	rc = pgs_table_forget(s, t->schema, t->name, err);
	if (rc == PS_OK && pgs_qualified(s, &qname, t->schema, t->name) != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == PS_OK)
		rc = pgs_find_table(s, t, oid, sizeof(oid), err);
	if (rc == PS_OK && !oid[0])
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target",
		                  t->schema, t->name);
	params[0] = oid;
	if (rc == PS_OK)
		rc = pgs_exec(s, &existing, err, "reading the target's constraints",
		              "SELECT conname, contype FROM pg_catalog.pg_constraint "
		              "WHERE conrelid = $1::oid", 1, params);
	for (int i = 0; rc == PS_OK && i < def->nconstraints; i++) {
		const ps_constraint_def *cd = &def->constraints[i];

		if (def->engine && strcmp(def->engine, "mysql") == 0 && cd->kind != PS_CONSTRAINT_CHECK) {
			rc = pgs_mysql_constraint(s, def, cd, qname.data, existing, err);
			continue;
		}
		if (!cd->sql || !cd->name)
			continue;
		if (cd->kind == PS_CONSTRAINT_PRIMARY || cd->kind == PS_CONSTRAINT_UNIQUE ||
		    cd->kind == PS_CONSTRAINT_EXCLUSION) {
			if (!has_constraint(existing, cd->name, cd->kind))
				rc = add_constraint(s, def, cd, qname.data, err);
		} else if (cd->kind == PS_CONSTRAINT_INDEX) {
			rc = add_index(s, def, cd, err);
		}
	}
	/* REPLICA IDENTITY USING INDEX as on the source: the sink finds rows by
	 * that index when there is no primary key (pgsink_tables.c) */
	if (rc == PS_OK && def->identity_index) {
		ps_buf sql;
		char what[300];

		ps_buf_init(&sql, 8192);
		rc = ps_buf_printf(&sql, "ALTER TABLE %s REPLICA IDENTITY USING INDEX ", qname.data);
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, def->identity_index);
		snprintf(what, sizeof(what), "setting the replica identity of %s.%s", t->schema, t->name);
		if (rc == PS_OK)
			rc = pgs_exec(s, NULL, err, what, sql.data, 0, NULL);
		else
			rc = ps_error_set(err, rc, "statement too long");
		ps_buf_free(&sql);
	}
	PQclear(existing);
	ps_buf_free(&qname);
	return rc;
}
