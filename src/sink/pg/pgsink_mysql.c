/*
 * pgsink_mysql.c — tables of a MySQL/MariaDB source created in PostgreSQL:
 * column types, defaults and keys from the source's own spelling
 * (ps_table_def.engine "mysql"; docs/types-mysql.md is the table).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Types map so that every value the source can hold fits and reads back
 *    the same canonical text: unsigned types take the next wider type
 *    (BIGINT UNSIGNED numeric(20)), CHAR(n) becomes varchar(n) (MariaDB
 *    drops a CHAR's trailing spaces, a PostgreSQL char(n) would pad them
 *    back), TIME interval (it spans -838..838 hours), DATETIME timestamp,
 *    TIMESTAMP timestamptz, JSON json (not jsonb: the text stays as the
 *    source wrote it, so compare finds it equal), ENUM and SET text, UUID
 *    uuid, INET6 and INET4 inet, BIT(n) bit(n), spatial types bytea (their
 *    MariaDB internal form, SRID then WKB).
 * 2. Defaults are carried when they are a literal or the current time;
 *    any other expression, and a zero date, is left out and said so in the
 *    log: the target must never refuse a row the source took.
 * 3. Keys and indexes are made from the constraint's columns, named
 *    <table>_pkey, <table>_<index>_key and <table>_<index>_idx: MariaDB
 *    names every primary key PRIMARY, and PostgreSQL index names are per
 *    schema.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/log.h"
#include "util/pgconn.h"

static bool base_is(const char *base, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(base, *list) == 0)
			return true;
	return false;
}

/* The type's name ("int") and its parenthesised arguments ("10,2"). */
static void split_type(const char *t, char *base, size_t blen, char *args, size_t alen,
                       bool *is_unsigned)
{
	size_t i = 0;

	while (t[i] && (isalnum((unsigned char)t[i]) || t[i] == '_') && i + 1 < blen) {
		base[i] = (char)tolower((unsigned char)t[i]);
		i++;
	}
	base[i] = '\0';
	args[0] = '\0';
	if (t[i] == '(') {
		const char *close = strchr(t + i, ')');
		if (close && (size_t)(close - t - i - 1) < alen)
			snprintf(args, alen, "%.*s", (int)(close - t - i - 1), t + i + 1);
	}
	*is_unsigned = strstr(t, "unsigned") != NULL;
}

const char *pgs_mysql_type(const ps_column_def *cd, const ps_column *col, char *buf, size_t len)
{
	static const char *const bytes[] = {"binary", "varbinary", "tinyblob", "blob", "mediumblob",
	                                    "longblob", "geometry", "point", "linestring", "polygon",
	                                    "multipoint", "multilinestring", "multipolygon",
	                                    "geometrycollection", NULL};
	static const char *const texts[] = {"tinytext", "text", "mediumtext", "longtext", "enum",
	                                    "set", NULL};
	char base[32], args[64];
	bool u;

	if (!cd->sql_type || col->type_class == PS_TYPE_BOOL)
		return NULL;   /* a MySQL source never says bool: the class knows better */
	split_type(cd->sql_type, base, sizeof(base), args, sizeof(args), &u);
	if (strcmp(base, "tinyint") == 0)
		snprintf(buf, len, "smallint");
	else if (strcmp(base, "smallint") == 0)
		snprintf(buf, len, u ? "integer" : "smallint");
	else if (strcmp(base, "mediumint") == 0)
		snprintf(buf, len, "integer");
	else if (strcmp(base, "int") == 0)
		snprintf(buf, len, u ? "bigint" : "integer");
	else if (strcmp(base, "bigint") == 0)
		snprintf(buf, len, u && !cd->identity ? "numeric(20)" : "bigint");
	else if (strcmp(base, "decimal") == 0 || strcmp(base, "numeric") == 0)
		snprintf(buf, len, args[0] ? "numeric(%s)" : "numeric", args);
	else if (strcmp(base, "float") == 0)
		snprintf(buf, len, "real");
	else if (strcmp(base, "double") == 0)
		snprintf(buf, len, "double precision");
	else if (strcmp(base, "date") == 0)
		snprintf(buf, len, "date");
	else if (strcmp(base, "datetime") == 0)
		snprintf(buf, len, "timestamp(%s)", args[0] ? args : "0");
	else if (strcmp(base, "timestamp") == 0)
		snprintf(buf, len, "timestamp(%s) with time zone", args[0] ? args : "0");
	else if (strcmp(base, "time") == 0)
		snprintf(buf, len, "interval");
	else if (strcmp(base, "year") == 0)
		snprintf(buf, len, "smallint");
	else if (strcmp(base, "bit") == 0)
		snprintf(buf, len, "bit(%s)", args[0] ? args : "1");
	else if (strcmp(base, "char") == 0 || strcmp(base, "varchar") == 0)
		snprintf(buf, len, args[0] ? "varchar(%s)" : "text", args);
	else if (base_is(base, texts))
		snprintf(buf, len, "text");
	else if (base_is(base, bytes))
		snprintf(buf, len, "bytea");
	else if (strcmp(base, "json") == 0)
		snprintf(buf, len, "json");
	else if (strcmp(base, "uuid") == 0)
		snprintf(buf, len, "uuid");
	else if (strcmp(base, "inet6") == 0 || strcmp(base, "inet4") == 0)
		snprintf(buf, len, "inet");
	else
		return NULL;   /* the caller falls back to the type class */
	return buf;
}

static bool is_number(const char *s)
{
	char *end = NULL;

	if (!*s)
		return false;
	strtod(s, &end);
	return end && !*end;
}

int pgs_mysql_default(ps_sink *s, const ps_table *t, const ps_column_def *cd,
                      const ps_column *col, ps_buf *b)
{
	const char *d = cd->default_expr;
	char pgtype[64];
	const char *type = pgs_mysql_type(cd, col, pgtype, sizeof(pgtype));
	bool bytes = type && strcmp(type, "bytea") == 0;

	(void)s;
	if (!d || cd->identity)
		return PS_OK;
	if (strncmp(d, "current_timestamp", 17) == 0 || strcmp(d, "now()") == 0)
		return ps_buf_puts(b, " DEFAULT CURRENT_TIMESTAMP");
	if (is_number(d) && !bytes && col->type_class != PS_TYPE_TEXT)
		return ps_buf_printf(b, " DEFAULT %s", d);
	if ((d[0] == 'b' || d[0] == 'B') && d[1] == '\'' && type && strncmp(type, "bit", 3) == 0)
		return ps_buf_printf(b, " DEFAULT B%s", d + 1);
	if (d[0] == '\'' && d[strlen(d) - 1] == '\'' && strlen(d) >= 2 && !strchr(d, '\\') &&
	    !bytes && strncmp(d, "'0000-00-00", 11) != 0)
		return ps_buf_printf(b, " DEFAULT %s", d);
	if (is_number(d) && col->type_class == PS_TYPE_TEXT)
		return ps_buf_printf(b, " DEFAULT '%s'", d);   /* ENUM/SET/BIT defaults print bare */
	ps_log_warn("column %s of %s.%s: its default %s is not carried to the target table "
	            "(not a literal PostgreSQL reads the same way)", col->name, t->schema, t->name,
	            d);
	return PS_OK;
}

/* "a", "b" of the constraint's columns. */
static int put_cols(ps_sink *s, ps_buf *b, const ps_table *t, const ps_constraint_def *cd)
{
	int rc = PS_OK;

	for (int i = 0; rc == PS_OK && i < cd->ncols; i++) {
		if (i)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, b, t->columns[cd->cols[i]].name);
	}
	return rc;
}

int pgs_mysql_constraint(ps_sink *s, const ps_table_def *def, const ps_constraint_def *cd,
                         const char *qname, const PGresult *existing, ps_error *err)
{
	const ps_table *t = def->table;
	char name[64], what[400];
	ps_buf sql;
	int rc;

	if (cd->ncols == 0)
		return PS_OK;
	if (cd->kind == PS_CONSTRAINT_PRIMARY)
		snprintf(name, sizeof(name), "%.58s_pkey", t->name);
	else
		snprintf(name, sizeof(name), "%.30s_%.27s_%s", t->name, cd->name,
		         cd->kind == PS_CONSTRAINT_UNIQUE ? "key" : "idx");
	for (int r = 0; existing && r < PQntuples(existing); r++)
		if (strcmp(PQgetvalue(existing, r, 0), name) == 0 ||
		    (cd->kind == PS_CONSTRAINT_PRIMARY && PQgetvalue(existing, r, 1)[0] == 'p'))
			return PS_OK;
	ps_buf_init(&sql, 1 << 20);
	if (cd->kind == PS_CONSTRAINT_INDEX) {
		rc = ps_buf_puts(&sql, "CREATE INDEX IF NOT EXISTS ");
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, " ON %s (", qname);
	} else {
		rc = ps_buf_printf(&sql, "ALTER TABLE %s ADD CONSTRAINT ", qname);
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, name);
		if (rc == PS_OK)
			rc = ps_buf_puts(&sql, cd->kind == PS_CONSTRAINT_PRIMARY ? " PRIMARY KEY ("
			                                                           : " UNIQUE (");
	}
	if (rc == PS_OK)
		rc = put_cols(s, &sql, t, cd);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, ")");
	snprintf(what, sizeof(what), "adding %s %s to %s.%s", cd->kind == PS_CONSTRAINT_INDEX ?
	         "index" : "constraint", name, t->schema, t->name);
	rc = rc == PS_OK ? pgs_exec(s, NULL, err, what, sql.data, 0, NULL)
	                 : ps_error_set(err, rc, "constraint statement too long");
	ps_buf_free(&sql);
	return rc;
}
