/*
 * pgsink_precheck.c — the PostgreSQL sink's prechecks (sink.h precheck,
 * penstock/check.h; every id is documented in docs/prechecks.md).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Read-only: one connection, catalog queries and, for a table that
 *    exists, one `SELECT EXISTS (SELECT 1 FROM t)`. Nothing is created,
 *    truncated or locked beyond that read.
 * 2. What the sink will do decides what it needs (pgsink.c, pgsink_ddl.c):
 *    - the checkpoint lives in penstock.checkpoint: the table must be
 *      usable, or the schema creatable in, or the schema creatable;
 *    - a load (migration, sync, snapshot) creates each missing table unless
 *      create_tables is never (its schema too when missing), refuses a
 *      table that holds rows unless truncate_before_load (which needs
 *      TRUNCATE), and drops existing ones with drop_and_create (which needs
 *      ownership);
 *    - applying changes needs SELECT (the WHERE on the key), INSERT, UPDATE
 *      and DELETE on every table; a cdc job creates no table, so each must
 *      exist;
 *    - a created table uses the source's types: with target.schema bare a
 *      user-defined type (enum, domain, composite, range, or an array of
 *      one) must already exist in the target; otherwise penstock creates
 *      them, and only the objects it does not create must (target.types),
 *      and the extensions the tables need must be there or creatable
 *      (target.extensions: available on the server, and the role may
 *      create them).
 * 3. A standby (pg_is_in_recovery) or a database whose transactions are
 *    read-only by default cannot be written at all: target.writable fails
 *    and says which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/buf.h"
#include "util/pgconn.h"

#define LIST_SHOW 20
#define LIST_LIMIT ((size_t)8192)

typedef struct pk_ctx {
	PGconn *conn;
	ps_check_report *r;
	int rc;                 /* first PS_ENOMEM */
	char role[128], qrole[300], dbname[128];
	bool superuser, db_create;
} pk_ctx;

/* A bounded list for messages ("a, b (and 3 more)") and one for fixes. */
typedef struct pk_list {
	ps_buf text, fix;
	size_t n;
} pk_list;

static void list_init(pk_list *l)
{
	ps_buf_init(&l->text, LIST_LIMIT);
	ps_buf_init(&l->fix, LIST_LIMIT);
	l->n = 0;
}

static void list_free(pk_list *l)
{
	ps_buf_free(&l->text);
	ps_buf_free(&l->fix);
}

/* Adds name to the message list and fix (may be NULL) to the fixes. */
static void list_add(pk_list *l, const char *name, const char *fix)
{
	if (l->n < LIST_SHOW) {
		ps_buf_printf(&l->text, "%s%s", l->n ? ", " : "", name);
		if (fix)
			ps_buf_printf(&l->fix, "%s%s", l->fix.len ? " " : "", fix);
	}
	l->n++;
}

static const char *list_text(pk_list *l)
{
	if (l->n > LIST_SHOW) {
		ps_buf_printf(&l->text, " (and %zu more)", l->n - LIST_SHOW);
		if (l->fix.len)
			ps_buf_puts(&l->fix, " (and the same for the other tables named)");
		l->n = LIST_SHOW;
	}
	return l->text.data ? l->text.data : "";
}

static const char *list_fix(pk_list *l)
{
	list_text(l);
	return l->fix.data;
}

static void note(pk_ctx *c, int rc)
{
	if (rc != 0 && c->rc == 0)
		c->rc = rc;
}

#define ADD(c, ...) note((c), ps_check_add((c)->r, __VA_ARGS__))

static void quote(PGconn *conn, char *out, size_t len, const char *ident)
{
	ps_buf b;

	ps_buf_init(&b, 1024);
	pg_quote_ident(conn, &b, ident);
	snprintf(out, len, "%s", b.data ? b.data : ident);
	ps_buf_free(&b);
}

/* --- the checkpoint table, and the target as a whole ----------------------- */

static void check_writable_base(pk_ctx *c, ps_buf *problems, ps_buf *fixes)
{
	PGresult *res = NULL;
	ps_error qerr;
	char qdb[300];

	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "reading the target's settings",
	            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
	            "  (SELECT has_schema_privilege(n.oid, 'CREATE') AND has_schema_privilege(n.oid, 'USAGE') "
	            "   FROM pg_namespace n WHERE n.nspname = 'penstock'), "
	            "  (SELECT has_table_privilege(k.oid, 'SELECT') AND has_table_privilege(k.oid, 'INSERT') "
	            "     AND has_table_privilege(k.oid, 'UPDATE') AND has_table_privilege(k.oid, 'DELETE') "
	            "   FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace "
	            "   WHERE n.nspname = 'penstock' AND k.relname = 'checkpoint')",
	            0, NULL) != PS_OK) {
		ps_buf_printf(problems, "could not check: %s", qerr.message);
		return;
	}
	quote(c->conn, qdb, sizeof(qdb), c->dbname);
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		ps_buf_puts(problems, "the target is a standby in recovery: it cannot be written");
		ps_buf_puts(fixes, "point target.url at the primary server");
	} else if (strcmp(PQgetvalue(res, 0, 1), "on") == 0) {
		ps_buf_puts(problems, "transactions are read-only by default (default_transaction_read_only)");
		ps_buf_printf(fixes, "ALTER DATABASE %s SET default_transaction_read_only = off;", qdb);
	} else if (!PQgetisnull(res, 0, 3)) {
		if (PQgetvalue(res, 0, 3)[0] != 't') {
			ps_buf_printf(problems, "role %s may not read and write penstock.checkpoint", c->role);
			ps_buf_printf(fixes, "GRANT USAGE ON SCHEMA penstock TO %s; GRANT SELECT, INSERT, "
			              "UPDATE, DELETE ON penstock.checkpoint TO %s;", c->qrole, c->qrole);
		}
	} else if (!PQgetisnull(res, 0, 2)) {
		if (PQgetvalue(res, 0, 2)[0] != 't') {
			ps_buf_printf(problems, "role %s may not create the table penstock.checkpoint in "
			              "schema penstock", c->role);
			ps_buf_printf(fixes, "GRANT USAGE, CREATE ON SCHEMA penstock TO %s;", c->qrole);
		}
	} else if (!c->db_create) {
		ps_buf_printf(problems, "role %s may not create the schema penstock (for the "
		              "checkpoint) in database %s", c->role, c->dbname);
		ps_buf_printf(fixes, "GRANT CREATE ON DATABASE %s TO %s; (or CREATE SCHEMA penstock "
		              "AUTHORIZATION %s;)", qdb, c->qrole, c->qrole);
	}
	PQclear(res);
}

/* --- tables ----------------------------------------------------------------- */

typedef struct pk_table_lists {
	pk_list priv;           /* target.writable: missing privileges */
	pk_list nonempty;       /* target.tables: hold rows */
	pk_list missing;        /* target.tables: absent, and nothing will create them */
	pk_list unreadable;     /* target.tables: the row check failed */
	pk_list types;          /* target.types: missing types */
	pk_list exts;           /* target.extensions: missing and not creatable */
	pk_list unfillable;     /* target.tables: a target-only NOT NULL column without default */
	size_t created, dropped, nexts;
} pk_table_lists;

/* An extension a created table needs (target.extensions): there, or to be
 * created by penstock — which needs it available on the server and the
 * right to create it (superuser, or a trusted extension and CREATE on the
 * database). */
static void check_extension(pk_ctx *c, const ps_schema_object *o, const char *qualified,
                            pk_table_lists *L)
{
	const char *params[1] = {o->name};
	PGresult *res = NULL;
	ps_error qerr;
	char what[700], fix[700];

	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "looking up an extension",
	            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1), "
	            "  EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1), "
	            "  coalesce((SELECT bool_or(trusted) FROM pg_available_extension_versions "
	            "    WHERE name = $1), false)", 1, params) != PS_OK) {
		snprintf(what, sizeof(what), "extension %s (of %s: %s)", o->name, qualified, qerr.message);
		list_add(&L->exts, what, NULL);
		return;
	}
	L->nexts++;
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		PQclear(res);
		return;
	}
	snprintf(what, sizeof(what), "extension %s (needed by %s)", o->name, qualified);
	if (o->must_exist) {
		snprintf(fix, sizeof(fix), "CREATE EXTENSION \"%s\"; in the target (or set \"target\": "
		         "{\"create_extensions\": true})", o->name);
		list_add(&L->exts, what, fix);
	} else if (PQgetvalue(res, 0, 1)[0] != 't') {
		snprintf(fix, sizeof(fix), "install the package that provides extension %s on the "
		         "target server (e.g. postgresql-15-%s, or the contrib package)", o->name, o->name);
		list_add(&L->exts, what, fix);
	} else if (!c->superuser && !(PQgetvalue(res, 0, 2)[0] == 't' && c->db_create)) {
		snprintf(fix, sizeof(fix), "CREATE EXTENSION \"%s\"; in the target as a superuser",
		         o->name);
		list_add(&L->exts, what, fix);
	}
	PQclear(res);
}

/* A table that exists and has a column the source does not send: the rows
 * penstock writes leave it to its default, so it must have one or accept
 * NULL (target.tables). */
static void check_extra_columns(pk_ctx *c, const ps_check_table *t, const char *qname,
                                const char *qualified, pk_table_lists *L)
{
	const char *params[1] = {qname};
	PGresult *res = NULL;
	ps_error qerr;
	char what[700], fix[900];

	if (!t->columns_listed)
		return;
	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "reading the target's columns",
	            "SELECT a.attname FROM pg_attribute a "
	            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
	            "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
	            "  AND a.attnotnull AND d.oid IS NULL AND a.attidentity = '' "
	            "  AND a.attgenerated = '' ORDER BY a.attnum", 1, params) != PS_OK) {
		snprintf(what, sizeof(what), "%s (%s)", qualified, qerr.message);
		list_add(&L->unreadable, what, NULL);
		return;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		const char *col = PQgetvalue(res, row, 0);
		bool sent = false;
		char qcol[300];

		for (size_t k = 0; k < t->ncolumns && !sent; k++)
			sent = strcmp(t->columns[k], col) == 0;
		if (sent)
			continue;
		quote(c->conn, qcol, sizeof(qcol), col);
		snprintf(what, sizeof(what), "column %s of %s (only in the target, NOT NULL, no "
		         "default)", col, qualified);
		snprintf(fix, sizeof(fix), "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT <value>; or "
		         "ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL;", qname, qcol, qname, qcol);
		list_add(&L->unfillable, what, fix);
	}
	PQclear(res);
}

/* An object penstock does not create must be in the target (target.types). */
static void check_need(pk_ctx *c, const ps_schema_object *o, const char *qualified,
                       pk_table_lists *L)
{
	const char *params[2], *sql;
	PGresult *res = NULL;
	ps_error qerr;
	char what[900];
	int n;

	ps_error_clear(&qerr);
	if (pgs_object_probe(o, &sql, params, &n, &qerr) != PS_OK ||
	    pg_exec(c->conn, &res, &qerr, "looking up an object", sql, n, params) != PS_OK) {
		snprintf(what, sizeof(what), "%s (of %s: %s)", o->what, qualified, qerr.message);
		list_add(&L->types, what, NULL);
		return;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		snprintf(what, sizeof(what), "%s (needed by %s)", o->what, qualified);
		list_add(&L->types, what, NULL);
	}
	PQclear(res);
}

/* The types of a table that will be created must exist in the target. */
static void check_types(pk_ctx *c, const ps_check_table *t, const char *qualified,
                        pk_table_lists *L)
{
	for (size_t i = 0; i < t->nuser_types; i++) {
		const char *params[1] = {t->user_types[i]};
		PGresult *res = NULL;
		ps_error qerr;
		char what[600];

		ps_error_clear(&qerr);
		if (pg_exec(c->conn, &res, &qerr, "looking up a type", "SELECT to_regtype($1) IS NULL",
		            1, params) != PS_OK) {
			snprintf(what, sizeof(what), "%s (type %s: %s)", qualified, t->user_types[i],
			         qerr.message);
			list_add(&L->types, what, NULL);
			continue;
		}
		if (PQgetvalue(res, 0, 0)[0] == 't') {
			snprintf(what, sizeof(what), "type %s (of %s)", t->user_types[i], qualified);
			list_add(&L->types, what, NULL);
		}
		PQclear(res);
	}
	for (size_t i = 0; i < t->nneeds; i++) {
		if (t->needs[i].kind == PS_OBJECT_EXTENSION)
			check_extension(c, &t->needs[i], qualified, L);
		else if (t->needs[i].must_exist)
			check_need(c, &t->needs[i], qualified, L);
	}
}

/* Whether an existing table holds rows: 1, 0, or -1 when it could not be
 * read (the reason goes to L->unreadable). */
static int has_rows(pk_ctx *c, const char *qname, const char *qualified, pk_table_lists *L)
{
	PGresult *res = NULL;
	ps_error qerr;
	ps_buf sql;
	char what[1400];
	int out = -1;

	ps_buf_init(&sql, 2048);
	ps_buf_printf(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", qname);
	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "reading the table", sql.data, 0, NULL) != PS_OK) {
		snprintf(what, sizeof(what), "%s (%s)", qualified, qerr.message);
		list_add(&L->unreadable, what, NULL);
	} else {
		out = PQgetvalue(res, 0, 0)[0] == 't';
	}
	PQclear(res);
	ps_buf_free(&sql);
	return out;
}

enum { T_SCHEMA, T_SCHEMA_CREATE, T_EXISTS, T_SELECT, T_INSERT, T_UPDATE, T_DELETE,
       T_TRUNCATE, T_OWNER };

static void check_table(pk_ctx *c, const ps_check_table *t, const ps_table_options *opt,
                        bool loads, pk_table_lists *L)
{
	const char *params[2] = {t->schema, t->name};
	PGresult *res = NULL;
	ps_error qerr;
	char qualified[300], qname[700], qschema[300], fix[1200], what[1400];
	bool exists, will_create, will_drop;

	snprintf(qualified, sizeof(qualified), "%s.%s", t->schema, t->name);
	quote(c->conn, qschema, sizeof(qschema), t->schema);
	quote(c->conn, fix, sizeof(fix), t->name);
	snprintf(qname, sizeof(qname), "%s.%s", qschema, fix);
	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "looking up the table",
	            "SELECT n.oid IS NOT NULL, "
	            "  coalesce(has_schema_privilege(n.oid, 'CREATE') AND "
	            "           has_schema_privilege(n.oid, 'USAGE'), false), "
	            "  k.oid IS NOT NULL, "
	            "  coalesce(has_table_privilege(k.oid, 'SELECT'), false), "
	            "  coalesce(has_table_privilege(k.oid, 'INSERT'), false), "
	            "  coalesce(has_table_privilege(k.oid, 'UPDATE'), false), "
	            "  coalesce(has_table_privilege(k.oid, 'DELETE'), false), "
	            "  coalesce(has_table_privilege(k.oid, 'TRUNCATE'), false), "
	            "  coalesce(pg_has_role(k.relowner, 'USAGE'), false) "
	            "FROM (SELECT $1::name AS s, $2::name AS t) x "
	            "LEFT JOIN pg_namespace n ON n.nspname = x.s "
	            "LEFT JOIN pg_class k ON k.relnamespace = n.oid AND k.relname = x.t "
	            "  AND k.relkind IN ('r', 'p')", 2, params) != PS_OK) {
		snprintf(what, sizeof(what), "%s (%s)", qualified, qerr.message);
		list_add(&L->unreadable, what, NULL);
		return;
	}
#define YES(col) (PQgetvalue(res, 0, (col))[0] == 't')
	exists = YES(T_EXISTS);
	will_drop = loads && exists && opt->create == PS_CREATE_DROP_AND_CREATE;
	will_create = loads && opt->create != PS_CREATE_NEVER && (!exists || will_drop);

	/* target.writable: what the sink will do to this table */
	if (will_drop && !YES(T_OWNER) && !c->superuser) {
		snprintf(what, sizeof(what), "%s (drop_and_create needs its owner)", qualified);
		snprintf(fix, sizeof(fix), "ALTER TABLE %s OWNER TO %s;", qname, c->qrole);
		list_add(&L->priv, what, fix);
	}
	if (will_create && !will_drop && !YES(T_SCHEMA) && !c->db_create) {
		snprintf(what, sizeof(what), "%s (schema %s must be created)", qualified, t->schema);
		snprintf(fix, sizeof(fix), "CREATE SCHEMA %s AUTHORIZATION %s;", qschema, c->qrole);
		list_add(&L->priv, what, fix);
	} else if (will_create && YES(T_SCHEMA) && !YES(T_SCHEMA_CREATE)) {
		snprintf(what, sizeof(what), "%s (no CREATE on schema %s)", qualified, t->schema);
		snprintf(fix, sizeof(fix), "GRANT USAGE, CREATE ON SCHEMA %s TO %s;", qschema, c->qrole);
		list_add(&L->priv, what, fix);
	}
	if (exists && !will_drop && (!YES(T_SELECT) || !YES(T_INSERT) || !YES(T_UPDATE) ||
	                             !YES(T_DELETE) ||
	                             (loads && opt->truncate_before_load && !YES(T_TRUNCATE)))) {
		bool trunc = loads && opt->truncate_before_load;

		snprintf(what, sizeof(what), "%s (needs SELECT, INSERT, UPDATE, DELETE%s)", qualified,
		         trunc ? ", TRUNCATE" : "");
		snprintf(fix, sizeof(fix), "GRANT SELECT, INSERT, UPDATE, DELETE%s ON %s TO %s;",
		         trunc ? ", TRUNCATE" : "", qname, c->qrole);
		list_add(&L->priv, what, fix);
	}
#undef YES
	PQclear(res);

	/* target.tables and target.types */
	if (will_create) {
		if (will_drop)
			L->dropped++;
		else
			L->created++;
		check_types(c, t, qualified, L);
		return;
	}
	if (!exists) {
		snprintf(fix, sizeof(fix), "create %s in the target%s", qualified,
		         loads ? ", or set \"target\": {\"create_tables\": \"if_missing\"}" : "");
		list_add(&L->missing, qualified, fix);
		return;
	}
	check_extra_columns(c, t, qname, qualified, L);
	if (loads && has_rows(c, qname, qualified, L) == 1 && !opt->truncate_before_load) {
		snprintf(fix, sizeof(fix), "TRUNCATE %s;", qname);
		list_add(&L->nonempty, qualified, fix);
	}
}

static void report_tables(pk_ctx *c, const ps_check_tables *tables, const ps_table_options *opt,
                          bool loads, ps_buf *problems, ps_buf *fixes)
{
	pk_table_lists L;
	ps_buf fix;

	memset(&L, 0, sizeof(L));
	list_init(&L.priv);
	list_init(&L.nonempty);
	list_init(&L.missing);
	list_init(&L.unreadable);
	list_init(&L.types);
	list_init(&L.exts);
	list_init(&L.unfillable);
	ps_buf_init(&fix, 3 * LIST_LIMIT);
	for (size_t i = 0; i < tables->n; i++)
		check_table(c, &tables->items[i], opt, loads, &L);

	if (L.priv.n) {
		ps_buf_printf(problems, "%srole %s lacks what the job needs on: %s",
		              problems->len ? "; " : "", c->role, list_text(&L.priv));
		ps_buf_printf(fixes, "%s%s", fixes->len ? " " : "", list_fix(&L.priv));
	}

	if (L.nonempty.n || L.missing.n || L.unreadable.n || L.unfillable.n) {
		ps_buf msg;

		ps_buf_init(&msg, 3 * LIST_LIMIT);
		if (L.nonempty.n) {
			ps_buf_printf(&msg, "%s already hold%s rows and the load would refuse %s",
			              list_text(&L.nonempty), L.nonempty.n == 1 ? "s" : "",
			              L.nonempty.n == 1 ? "it" : "them");
			ps_buf_printf(&fix, "%s or set \"target\": {\"truncate_before_load\": true}",
			              list_fix(&L.nonempty));
		}
		if (L.missing.n) {
			ps_buf_printf(&msg, "%s%s %s not exist in the target%s", msg.len ? "; " : "",
			              list_text(&L.missing), L.missing.n == 1 ? "does" : "do",
			              loads ? " and create_tables is never" : " and a cdc job creates no table");
			ps_buf_printf(&fix, "%s%s", fix.len ? "; " : "", list_fix(&L.missing));
		}
		if (L.unfillable.n) {
			ps_buf_printf(&msg, "%s%s: the rows from the source leave %s empty, which %s NOT "
			              "NULL refuses", msg.len ? "; " : "", list_text(&L.unfillable),
			              L.unfillable.n == 1 ? "it" : "them",
			              L.unfillable.n == 1 ? "its" : "their");
			ps_buf_printf(&fix, "%s%s", fix.len ? "; " : "", list_fix(&L.unfillable));
		}
		if (L.unreadable.n)
			ps_buf_printf(&msg, "%scould not check %s", msg.len ? "; " : "",
			              list_text(&L.unreadable));
		ADD(c, "target.tables", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.len ? fix.data : NULL,
		    "%s", msg.data);
		ps_buf_free(&msg);
	} else {
		ADD(c, "target.tables", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "%zu table%s: %zu to create, %zu to drop and create, the others exist%s",
		    tables->n, tables->n == 1 ? "" : "s", L.created, L.dropped,
		    !loads ? "" : opt->truncate_before_load ? " (emptied before the load)"
		                                            : " and are empty");
	}

	if (L.types.n)
		ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "create the types in the target first, as in the source (pg_dump --schema-only "
		    "--section=pre-data of the source shows their CREATE TYPE / CREATE DOMAIN)",
		    "%s %s not exist in the target, and creating the table needs %s",
		    list_text(&L.types), L.types.n == 1 ? "does" : "do", L.types.n == 1 ? "it" : "them");
	else if (L.created + L.dropped == 0)
		ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "no table is created, so existing target columns decide the types");
	else
		ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "every type the created tables use exists in the target or is created with them");

	if (L.exts.n)
		ADD(c, "target.extensions", PS_CHECK_ERROR, PS_CHECK_FAILED, list_fix(&L.exts),
		    "%s %s not in the target and cannot be created there by penstock",
		    list_text(&L.exts), L.exts.n == 1 ? "is" : "are");
	else if (L.nexts)
		ADD(c, "target.extensions", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "the extensions the created tables need are in the target or will be created");
	else
		ADD(c, "target.extensions", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "the created tables need no extension");
	ps_buf_free(&fix);
	list_free(&L.exts);
	list_free(&L.unfillable);
	list_free(&L.priv);
	list_free(&L.nonempty);
	list_free(&L.missing);
	list_free(&L.unreadable);
	list_free(&L.types);
}

/* --- entry point ------------------------------------------------------------- */

static void skip_rest(pk_ctx *c, const char *why)
{
	ADD(c, "target.writable", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL, "not checked: %s", why);
	ADD(c, "target.tables", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL, "not checked: %s", why);
	ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL, "not checked: %s", why);
	ADD(c, "target.extensions", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL, "not checked: %s", why);
}

static int read_role(pk_ctx *c, ps_error *qerr)
{
	PGresult *res = NULL;
	int rc;

	rc = pg_exec(c->conn, &res, qerr, "reading the role",
	             "SELECT current_user, r.rolsuper, "
	             "  has_database_privilege(current_database(), 'CREATE'), current_database() "
	             "FROM pg_roles r WHERE r.rolname = current_user", 0, NULL);
	if (rc != PS_OK)
		return rc;
	snprintf(c->role, sizeof(c->role), "%s", PQgetvalue(res, 0, 0));
	c->superuser = PQgetvalue(res, 0, 1)[0] == 't';
	c->db_create = PQgetvalue(res, 0, 2)[0] == 't';
	snprintf(c->dbname, sizeof(c->dbname), "%s", PQgetvalue(res, 0, 3));
	quote(c->conn, c->qrole, sizeof(c->qrole), c->role);
	PQclear(res);
	return PS_OK;
}

int pgs_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                 const ps_check_tables *tables, ps_check_report *report, ps_error *err)
{
	pk_ctx c;
	ps_url parsed;
	ps_error cerr;
	ps_buf problems, fixes;
	char where[300];
	size_t first_table_item = 0;

	memset(&c, 0, sizeof(c));
	c.r = report;
	ps_buf_init(&problems, 4 * LIST_LIMIT);
	ps_buf_init(&fixes, 4 * LIST_LIMIT);
	ps_error_clear(&cerr);
	if (ps_url_parse(&parsed, cfg->url, &cerr) != PS_OK) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, "fix target.url", "%s",
		    cerr.message);
		skip_rest(&c, "target.connect failed");
		goto cleanup;
	}
	ps_url_host_port(&parsed, where, sizeof(where));
	if (pg_connect(&c.conn, cfg->url, &parsed, cfg->password, false, "penstock_precheck",
	               &cerr) != PS_OK) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "check target.url (host, port, database, user), the password in "
		    "target.password_env or target.password_file, and that pg_hba.conf admits "
		    "this client", "%s", cerr.message);
		skip_rest(&c, "target.connect failed");
		goto cleanup;
	}
	if (read_role(&c, &cerr) != PS_OK) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "connected to %s, but reading the role failed: %s", where, cerr.message);
		skip_rest(&c, "the target's role could not be read");
		goto cleanup;
	}
	ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
	    "connected to %s, database %s, as %s", where, c.dbname, c.role);
	check_writable_base(&c, &problems, &fixes);
	first_table_item = report->n;
	if (tables) {
		report_tables(&c, tables, opt, loads, &problems, &fixes);
	} else {
		ADD(&c, "target.tables", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source's tables are not known");
		ADD(&c, "target.types", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source's tables are not known");
		ADD(&c, "target.extensions", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source's tables are not known");
	}
	if (problems.len)
		ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    fixes.len ? fixes.data : NULL, "%s", problems.data);
	else
		ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "role %s may write the checkpoint%s", c.role,
		    tables ? " and the selected tables" : " (the tables were not checked: the "
		    "source's tables are not known)");
	/* target.writable gathers problems from the table checks too, so it is
	 * added last; it reads better before them. */
	if (c.rc == 0 && report->n > first_table_item + 1) {
		ps_check_item w = report->items[report->n - 1];

		memmove(&report->items[first_table_item + 1], &report->items[first_table_item],
		        (report->n - 1 - first_table_item) * sizeof(w));
		report->items[first_table_item] = w;
	}
cleanup:
	if (c.conn)
		PQfinish(c.conn);
	ps_buf_free(&problems);
	ps_buf_free(&fixes);
	if (c.rc != 0)
		return ps_error_set(err, c.rc, "out of memory");
	return PS_OK;
}
