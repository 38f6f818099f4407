/*
 * mysink_precheck.c — the MySQL / MariaDB sink's prechecks (sink.h precheck,
 * penstock/check.h; every id is documented in docs/prechecks.md).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Read-only: one connection, settings and information_schema, and for a
 *    table that exists one `SELECT 1 ... LIMIT 1`. Nothing is created.
 * 2. What the sink will do decides what it needs (mysink*.c):
 *    - the checkpoint table in the URL's database (or penstock): CREATE
 *      there unless it exists, then SELECT, INSERT, UPDATE, DELETE;
 *    - a load creates each missing table (CREATE, and ALTER and INDEX for
 *      its keys afterwards), refuses one that holds rows unless
 *      truncate_before_load (TRUNCATE needs DROP), drops existing ones with
 *      drop_and_create (DROP); applying needs SELECT, INSERT, UPDATE and
 *      DELETE; a cdc job creates no table, so each must exist;
 *    - a created table's columns get types from mysink_typemap.c: a column
 *      with no exact MariaDB home is refused here, naming it and the fix;
 *    - InnoDB must be there (transactions), LOAD DATA LOCAL should be
 *      allowed (else the load uses slower INSERTs), and target triggers
 *      fire on replicated rows (MariaDB has no session switch for them).
 * 3. Privileges are read from information_schema (global, database and
 *    table grants of the current user and its roles): MariaDB has no
 *    has_table_privilege().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/mysql/mysink.h"
#include "util/buf.h"
#include "util/myconn.h"

#define LIST_SHOW 20
#define LIST_LIMIT ((size_t)8192)
#define PACKET_WANTED (64LL << 20)

typedef struct mk_list {
	ps_buf text, fix;
	size_t n;
} mk_list;

typedef struct mk_ctx {
	MYSQL *conn;
	ps_check_report *r;
	int rc;                           /* first PS_ENOMEM */
	bool per_schema;
	char ck_db[130];
	char user[300];                   /* 'user'@'host' */
	char grantees[1200];              /* quoted list for IN (...) */
	bool local_infile;
} mk_ctx;

static void mk_list_init(mk_list *l)
{
	ps_buf_init(&l->text, LIST_LIMIT);
	ps_buf_init(&l->fix, LIST_LIMIT);
	l->n = 0;
}

static void mk_list_free(mk_list *l)
{
	ps_buf_free(&l->text);
	ps_buf_free(&l->fix);
}

static void mk_list_add(mk_list *l, const char *what, const char *fix)
{
	if (l->n < LIST_SHOW) {
		ps_buf_printf(&l->text, "%s%s", l->n ? ", " : "", what);
		if (fix)
			ps_buf_printf(&l->fix, "%s%s", l->fix.len ? " " : "", fix);
	}
	l->n++;
}

static const char *mk_list_text(mk_list *l)
{
	if (l->n > LIST_SHOW) {
		ps_buf_printf(&l->text, " (and %zu more)", l->n - LIST_SHOW);
		l->n = LIST_SHOW;
	}
	return l->text.data ? l->text.data : "";
}

static void note(mk_ctx *c, int rc)
{
	if (rc != 0 && c->rc == 0)
		c->rc = rc;
}

#define ADD(c, ...) note((c), ps_check_add((c)->r, __VA_ARGS__))

/* One value of a query, "" when none. */
static void value(mk_ctx *c, const char *sql, char *buf, size_t len)
{
	ps_error qerr;
	bool found;

	ps_error_clear(&qerr);
	if (my_query_text(c->conn, sql, buf, len, &found, "reading a setting", &qerr) != PS_OK)
		buf[0] = '\0';
}

static void quote_lit(mk_ctx *c, ps_buf *b, const char *text)
{
	if (my_quote_literal(c->conn, b, text) != PS_OK)
		note(c, PS_ENOMEM);
}

/* ==== privileges (NOTES 3) ================================================== */

/* 'user'@'host' of CURRENT_USER(), and the grantees whose privileges apply. */
static void read_grantees(mk_ctx *c)
{
	char cu[300], roles[800];
	const char *at;
	ps_buf g;

	value(c, "SELECT CURRENT_USER()", cu, sizeof(cu));
	at = strrchr(cu, '@');
	if (at)
		snprintf(c->user, sizeof(c->user), "'%.*s'@'%s'", (int)(at - cu), cu, at + 1);
	else
		snprintf(c->user, sizeof(c->user), "'%s'", cu);
	ps_buf_init(&g, sizeof(c->grantees));
	quote_lit(c, &g, c->user);
	value(c, "SELECT GROUP_CONCAT(ROLE_NAME SEPARATOR '\\n') FROM information_schema.ENABLED_ROLES",
	      roles, sizeof(roles));
	for (char *p = roles, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
		char role[300];

		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		snprintf(role, sizeof(role), "'%s'", p);
		ps_buf_puts(&g, ", ");
		quote_lit(c, &g, role);
		snprintf(role, sizeof(role), "'%s'@''", p);
		ps_buf_puts(&g, ", ");
		quote_lit(c, &g, role);
		if (!nl)
			break;
	}
	snprintf(c->grantees, sizeof(c->grantees), "%s", g.data ? g.data : "''");
	ps_buf_free(&g);
}

/* Whether the user holds priv on db (and, when table is set, on db.table). */
static bool has_priv(mk_ctx *c, const char *priv, const char *db, const char *table)
{
	ps_buf sql;
	char out[16];
	bool yes;

	ps_buf_init(&sql, 8192);
	ps_buf_printf(&sql, "SELECT COUNT(*) FROM (SELECT PRIVILEGE_TYPE FROM "
	              "information_schema.USER_PRIVILEGES WHERE GRANTEE IN (%s) "
	              "UNION ALL SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
	              "WHERE GRANTEE IN (%s) AND TABLE_SCHEMA = ", c->grantees, c->grantees);
	quote_lit(c, &sql, db);
	if (table) {
		ps_buf_printf(&sql, " UNION ALL SELECT PRIVILEGE_TYPE FROM "
		              "information_schema.TABLE_PRIVILEGES WHERE GRANTEE IN (%s) AND "
		              "TABLE_SCHEMA = ", c->grantees);
		quote_lit(c, &sql, db);
		ps_buf_puts(&sql, " AND TABLE_NAME = ");
		quote_lit(c, &sql, table);
	}
	ps_buf_puts(&sql, ") p WHERE PRIVILEGE_TYPE = ");
	quote_lit(c, &sql, priv);
	value(c, sql.data ? sql.data : "SELECT 0", out, sizeof(out));
	yes = out[0] && strcmp(out, "0") != 0;
	ps_buf_free(&sql);
	return yes;
}

/* The privileges of list that the user lacks on db (or db.table), into
 * missing ("CREATE, DROP"). */
static void lacking(mk_ctx *c, const char *const *list, const char *db, const char *table,
                    char *missing, size_t len)
{
	size_t used = 0;

	missing[0] = '\0';
	for (; *list; list++)
		if (!has_priv(c, *list, db, table))
			used += (size_t)snprintf(missing + used, used < len ? len - used : 0, "%s%s",
			                         used ? ", " : "", *list);
}

static void grant_fix(mk_ctx *c, char *fix, size_t len, const char *privs, const char *db,
                      const char *table)
{
	snprintf(fix, len, "GRANT %s ON `%s`.%s%s%s TO %s;", privs, db, table ? "`" : "*",
	         table ? table : "", table ? "`" : "", c->user);
}

/* ==== the parts ============================================================== */

static void check_writable(mk_ctx *c, ps_buf *problems, ps_buf *fixes)
{
	static const char *const rw[] = {"SELECT", "INSERT", "UPDATE", "DELETE", NULL};
	static const char *const create[] = {"CREATE", NULL};
	char ro[16], exists[16], missing[200], fix[600];
	ps_buf sql;

	value(c, "SELECT @@read_only", ro, sizeof(ro));
	if (strcmp(ro, "1") == 0 || strcasecmp(ro, "ON") == 0) {
		ps_buf_puts(problems, "the server is read-only (read_only = ON; a replica?)");
		ps_buf_puts(fixes, "point target.url at the primary server, or SET GLOBAL read_only = OFF;");
	}
	ps_buf_init(&sql, 2048);
	ps_buf_puts(&sql, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
	quote_lit(c, &sql, c->ck_db);
	ps_buf_puts(&sql, " AND TABLE_NAME = '" MYS_CHECKPOINT_TABLE "'");
	value(c, sql.data ? sql.data : "SELECT 0", exists, sizeof(exists));
	ps_buf_free(&sql);
	if (strcmp(exists, "1") != 0) {
		lacking(c, create, c->ck_db, NULL, missing, sizeof(missing));
		if (missing[0]) {
			ps_buf_printf(problems, "%suser %s may not create the checkpoint table %s.%s",
			              problems->len ? "; " : "", c->user, c->ck_db, MYS_CHECKPOINT_TABLE);
			grant_fix(c, fix, sizeof(fix), "CREATE", c->ck_db, NULL);
			ps_buf_printf(fixes, "%s%s", fixes->len ? " " : "", fix);
		}
		lacking(c, rw, c->ck_db, NULL, missing, sizeof(missing));
	} else {
		lacking(c, rw, c->ck_db, MYS_CHECKPOINT_TABLE, missing, sizeof(missing));
	}
	if (missing[0]) {
		ps_buf_printf(problems, "%suser %s lacks %s on the checkpoint table %s.%s",
		              problems->len ? "; " : "", c->user, missing, c->ck_db,
		              MYS_CHECKPOINT_TABLE);
		grant_fix(c, fix, sizeof(fix), "SELECT, INSERT, UPDATE, DELETE", c->ck_db, NULL);
		ps_buf_printf(fixes, "%s%s", fixes->len ? " " : "", fix);
	}
}

static void check_settings(mk_ctx *c, bool loads)
{
	char innodb[32], engine[64], mode[600], charset[64] = "", packet[32], infile[16];
	ps_buf sql, soft, fix;
	long long pk;

	value(c, "SELECT SUPPORT FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB'", innodb,
	      sizeof(innodb));
	value(c, "SELECT @@default_storage_engine", engine, sizeof(engine));
	value(c, "SELECT @@global.sql_mode", mode, sizeof(mode));
	value(c, "SELECT @@max_allowed_packet", packet, sizeof(packet));
	value(c, "SELECT @@global.local_infile", infile, sizeof(infile));
	ps_buf_init(&sql, 2048);
	ps_buf_puts(&sql, "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
	            "WHERE SCHEMA_NAME = ");
	quote_lit(c, &sql, c->ck_db);
	if (!c->per_schema)
		value(c, sql.data ? sql.data : "SELECT ''", charset, sizeof(charset));
	ps_buf_free(&sql);
	pk = strtoll(packet, NULL, 10);
	if (strcasecmp(innodb, "YES") != 0 && strcasecmp(innodb, "DEFAULT") != 0) {
		ADD(c, "target.settings", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "start the server with InnoDB (remove skip-innodb / ignore-builtin-innodb)",
		    "InnoDB is not available (SUPPORT = %s): penstock keeps rows and checkpoint "
		    "together in InnoDB transactions", innodb[0] ? innodb : "absent");
		return;
	}
	ps_buf_init(&soft, 4096);
	ps_buf_init(&fix, 4096);
	if (charset[0] && strcasecmp(charset, "utf8mb4") != 0) {
		ps_buf_printf(&soft, "database %s's default character set is %s, not utf8mb4 (tables "
		              "penstock creates are utf8mb4; existing %s columns refuse characters "
		              "outside %s)", c->ck_db, charset, charset, charset);
		ps_buf_printf(&fix, "ALTER DATABASE `%s` CHARACTER SET utf8mb4 COLLATE "
		              "utf8mb4_nopad_bin;", c->ck_db);
	}
	if (pk > 0 && pk < PACKET_WANTED) {
		ps_buf_printf(&soft, "%smax_allowed_packet is %lld bytes: a row or a value larger than "
		              "that cannot be written", soft.len ? "; " : "", pk);
		ps_buf_printf(&fix, "%sSET GLOBAL max_allowed_packet = 1073741824;", fix.len ? " " : "");
	}
	if (soft.len)
		ADD(c, "target.settings", PS_CHECK_WARNING, PS_CHECK_FAILED, fix.data, "%s (InnoDB is "
		    "available; penstock's sessions set sql_mode STRICT_ALL_TABLES themselves)",
		    soft.data);
	else
		ADD(c, "target.settings", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "InnoDB is available (default engine %s; tables penstock creates say "
		    "ENGINE=InnoDB), max_allowed_packet %lld bytes%s%s, and penstock's sessions "
		    "set sql_mode STRICT_ALL_TABLES themselves (global sql_mode: %s)", engine, pk,
		    charset[0] ? ", database character set " : "", charset, mode[0] ? mode : "empty");
	ps_buf_free(&soft);
	ps_buf_free(&fix);
	c->local_infile = strcmp(infile, "1") == 0 || strcasecmp(infile, "ON") == 0;
	if (!loads)
		ADD(c, "target.local_infile", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "not needed: the job copies no initial load");
	else if (c->local_infile)
		ADD(c, "target.local_infile", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "the initial load uses LOAD DATA LOCAL INFILE (local_infile = ON)");
	else
		ADD(c, "target.local_infile", PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "SET GLOBAL local_infile = ON; (LOAD DATA LOCAL needs no FILE privilege)",
		    "local_infile is OFF: the initial load falls back to batched INSERTs, which "
		    "are slower than LOAD DATA LOCAL INFILE");
}

typedef struct mk_tables {
	mk_list priv, nonempty, missing, unreadable, engine, names, clash, types, triggers, kept,
	        required;
	size_t created, dropped, columns;
	bool no_columns;
} mk_tables;

/* The types of a table that will be created (target.types). */
static void check_types(mk_ctx *c, const ps_check_table *t, mk_tables *L)
{
	(void)c;
	if (!t->engine && t->ncolumn_types == 0) {
		L->no_columns = true;
		return;
	}
	for (size_t i = 0; i < t->ncolumn_types; i++) {
		const ps_check_column *col = &t->column_types[i];
		mys_type_in in = {t->engine, col->sql_type, col->type_class, col->user_type, false};
		char type[128], why[300], what[900];

		L->columns++;
		if (!ps__mys_ident_ok(col->name)) {
			snprintf(what, sizeof(what), "%s.%s.%s (the name is over 64 characters)",
			         t->schema, t->name, col->name);
			mk_list_add(&L->types, what, NULL);
			continue;
		}
		if (ps__mys_type_for(&in, type, sizeof(type), why, sizeof(why)) != PS_OK) {
			snprintf(what, sizeof(what), "%s.%s.%s: %s", t->schema, t->name, col->name, why);
			mk_list_add(&L->types, what, NULL);
			continue;
		}
		if (col->sql_type && (strstr(col->sql_type, "[]") || col->user_type ||
		                      strncmp(col->sql_type, "interval", 8) == 0 ||
		                      strcmp(col->sql_type, "inet") == 0 ||
		                      strcmp(col->sql_type, "cidr") == 0 ||
		                      (strstr(col->sql_type, "with time zone") &&
		                       !strstr(type, "DATETIME"))) &&
		    (strstr(type, "TEXT") || strstr(type, "VARCHAR"))) {
			snprintf(what, sizeof(what), "%s.%s.%s (%s as %s)", t->schema, t->name, col->name,
			         col->sql_type, type);
			mk_list_add(&L->kept, what, NULL);
		}
	}
}

static int has_rows(mk_ctx *c, const char *qname, const char *qualified, mk_tables *L)
{
	ps_error qerr;
	char sql[1200], one[8], what[1400];
	bool found = false;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 1", qname);
	ps_error_clear(&qerr);
	if (my_query_text(c->conn, sql, one, sizeof(one), &found, "reading the table", &qerr) != PS_OK) {
		snprintf(what, sizeof(what), "%s (%s)", qualified, qerr.message);
		mk_list_add(&L->unreadable, what, NULL);
		return -1;
	}
	return found;
}

/* A column only the target has must take rows without it: a default, NULL,
 * AUTO_INCREMENT or a generated value. */
static void check_target_only(mk_ctx *c, const ps_check_table *t, const char *db,
                              const char *name, mk_tables *L)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_error qerr;

	if (!t->columns_listed)
		return;
	ps_error_clear(&qerr);
	if (mys_catalog_query(c->conn, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
	                      "WHERE IS_NULLABLE = 'NO' AND COLUMN_DEFAULT IS NULL AND EXTRA NOT "
	                      "LIKE '%auto_increment%' AND IS_GENERATED = 'NEVER' AND ",
	                      "TABLE_SCHEMA", db, "TABLE_NAME", name, "", &res, &qerr) != PS_OK)
		return;
	while ((row = mysql_fetch_row(res)) != NULL) {
		bool sent = false;
		char what[900], fix[900];

		for (size_t k = 0; k < t->ncolumns && !sent; k++)
			sent = strcasecmp(t->columns[k], row[0]) == 0;
		if (sent)
			continue;
		snprintf(what, sizeof(what), "%s.%s.%s", db, name, row[0]);
		snprintf(fix, sizeof(fix), "ALTER TABLE `%s`.`%s` MODIFY `%s` %s NULL;", db, name, row[0],
		         row[1] ? row[1] : "");
		mk_list_add(&L->required, what, fix);
	}
	mysql_free_result(res);
}

static void check_table(mk_ctx *c, const ps_check_table *t, const ps_check_tables *all, size_t at,
                        const ps_table_options *opt, bool loads, mk_tables *L)
{
	static const char *const rw[] = {"SELECT", "INSERT", "UPDATE", "DELETE", NULL};
	static const char *const create[] = {"CREATE", "ALTER", "INDEX", NULL};
	char db[256], name[256], qualified[600], qname[700], what[1400], fix[1400], missing[200];
	char engine[64] = "", triggers[16] = "0";
	ps_buf sql;
	bool exists, will_create, will_drop;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_error qerr;

	snprintf(db, sizeof(db), "%s", c->per_schema ? t->schema : c->ck_db);
	snprintf(name, sizeof(name), "%s", t->name);
	snprintf(qualified, sizeof(qualified), "%s.%s", db, name);
	snprintf(qname, sizeof(qname), "`%s`.`%s`", db, name);
	for (size_t i = 0; i < at; i++)
		if (strcmp(all->items[i].name, t->name) == 0 &&
		    (!c->per_schema || strcmp(all->items[i].schema, t->schema) == 0)) {
			snprintf(what, sizeof(what), "%s.%s and %s.%s (both %s)", all->items[i].schema,
			         all->items[i].name, t->schema, t->name, qualified);
			mk_list_add(&L->clash, what, NULL);
			return;          /* the first of them is checked, once */
		}
	if (!ps__mys_ident_ok(name) || (c->per_schema && !ps__mys_ident_ok(db)) ||
	    strchr(db, '`') || strchr(name, '`')) {
		snprintf(what, sizeof(what), "%s.%s", t->schema, t->name);
		mk_list_add(&L->names, what, NULL);
		return;
	}
	ps_buf_init(&sql, 4096);
	ps_buf_puts(&sql, "SELECT ENGINE, (SELECT COUNT(*) FROM information_schema.TRIGGERS g WHERE "
	            "g.EVENT_OBJECT_SCHEMA = TABLE_SCHEMA AND g.EVENT_OBJECT_TABLE = TABLE_NAME) "
	            "FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA = ");
	quote_lit(c, &sql, db);
	ps_buf_puts(&sql, " AND TABLE_NAME = ");
	quote_lit(c, &sql, name);
	ps_error_clear(&qerr);
	if (my_query(c->conn, sql.data ? sql.data : "", &res, "looking up the table", &qerr) != PS_OK) {
		snprintf(what, sizeof(what), "%s (%s)", qualified, qerr.message);
		mk_list_add(&L->unreadable, what, NULL);
		ps_buf_free(&sql);
		return;
	}
	ps_buf_free(&sql);
	row = mysql_fetch_row(res);
	exists = row != NULL;
	if (row) {
		snprintf(engine, sizeof(engine), "%s", row[0] ? row[0] : "");
		snprintf(triggers, sizeof(triggers), "%s", row[1] ? row[1] : "0");
	}
	mysql_free_result(res);
	will_drop = loads && exists && opt->create == PS_CREATE_DROP_AND_CREATE;
	will_create = loads && opt->create != PS_CREATE_NEVER && (!exists || will_drop);

	/* target.writable: what the sink will do to this table */
	if (will_create) {
		lacking(c, create, db, NULL, missing, sizeof(missing));
		if (will_drop && !has_priv(c, "DROP", db, name))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%sDROP",
			         missing[0] ? ", " : "");
		if (missing[0]) {
			snprintf(what, sizeof(what), "%s (creating it needs %s)", qualified, missing);
			grant_fix(c, fix, sizeof(fix), will_drop ? "CREATE, ALTER, INDEX, DROP"
			                                           : "CREATE, ALTER, INDEX", db, NULL);
			mk_list_add(&L->priv, what, fix);
		}
	}
	if (exists && !will_drop) {
		lacking(c, rw, db, name, missing, sizeof(missing));
		if (loads && opt->truncate_before_load && !has_priv(c, "DROP", db, name))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
			         "%sDROP (for TRUNCATE)", missing[0] ? ", " : "");
		if (missing[0]) {
			snprintf(what, sizeof(what), "%s (needs %s)", qualified, missing);
			grant_fix(c, fix, sizeof(fix), loads && opt->truncate_before_load
			          ? "SELECT, INSERT, UPDATE, DELETE, DROP" : "SELECT, INSERT, UPDATE, DELETE",
			          db, name);
			mk_list_add(&L->priv, what, fix);
		}
	} else if (!exists || will_drop) {
		lacking(c, rw, db, NULL, missing, sizeof(missing));
		if (missing[0] && will_create) {
			snprintf(what, sizeof(what), "%s (needs %s)", qualified, missing);
			grant_fix(c, fix, sizeof(fix), "SELECT, INSERT, UPDATE, DELETE", db, NULL);
			mk_list_add(&L->priv, what, fix);
		}
	}

	if (exists && !will_drop && strcmp(triggers, "0") != 0) {
		snprintf(what, sizeof(what), "%s (%s trigger%s)", qualified, triggers,
		         strcmp(triggers, "1") == 0 ? "" : "s");
		mk_list_add(&L->triggers, what, NULL);
	}
	if (will_create) {
		if (will_drop)
			L->dropped++;
		else
			L->created++;
		check_types(c, t, L);
		return;
	}
	if (!exists) {
		snprintf(fix, sizeof(fix), "create %s in the target%s", qualified,
		         loads ? ", or set \"target\": {\"create_tables\": \"if_missing\"}" : "");
		mk_list_add(&L->missing, qualified, fix);
		return;
	}
	check_target_only(c, t, db, name, L);
	if (strcasecmp(engine, "InnoDB") != 0) {
		snprintf(what, sizeof(what), "%s (%s)", qualified, engine[0] ? engine : "no engine");
		snprintf(fix, sizeof(fix), "ALTER TABLE %s ENGINE=InnoDB;", qname);
		mk_list_add(&L->engine, what, fix);
	}
	if (loads && has_rows(c, qname, qualified, L) == 1 && !opt->truncate_before_load) {
		snprintf(fix, sizeof(fix), "TRUNCATE TABLE %s;", qname);
		mk_list_add(&L->nonempty, qualified, fix);
	}
}

static void report_tables(mk_ctx *c, const ps_check_tables *tables, const ps_table_options *opt,
                          bool loads, ps_buf *problems, ps_buf *fixes)
{
	mk_tables L;
	mk_list *lists[] = {&L.priv, &L.nonempty, &L.missing, &L.unreadable, &L.engine, &L.names,
	                    &L.clash, &L.types, &L.triggers, &L.kept, &L.required};
	ps_buf msg, fix;

	memset(&L, 0, sizeof(L));
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		mk_list_init(lists[i]);
	ps_buf_init(&msg, 4 * LIST_LIMIT);
	ps_buf_init(&fix, 4 * LIST_LIMIT);
	for (size_t i = 0; i < tables->n; i++)
		check_table(c, &tables->items[i], tables, i, opt, loads, &L);

	if (L.priv.n) {
		ps_buf_printf(problems, "%suser %s lacks what the job needs on: %s",
		              problems->len ? "; " : "", c->user, mk_list_text(&L.priv));
		ps_buf_printf(fixes, "%s%s", fixes->len ? " " : "", L.priv.fix.data ? L.priv.fix.data : "");
	}
	if (L.nonempty.n) {
		ps_buf_printf(&msg, "%s already hold%s rows and the load would refuse %s",
		              mk_list_text(&L.nonempty), L.nonempty.n == 1 ? "s" : "",
		              L.nonempty.n == 1 ? "it" : "them");
		ps_buf_printf(&fix, "%s or set \"target\": {\"truncate_before_load\": true}",
		              L.nonempty.fix.data ? L.nonempty.fix.data : "");
	}
	if (L.missing.n) {
		ps_buf_printf(&msg, "%s%s %s not exist in the target%s", msg.len ? "; " : "",
		              mk_list_text(&L.missing), L.missing.n == 1 ? "does" : "do",
		              loads ? " and create_tables is never" : " and a cdc job creates no table");
		ps_buf_printf(&fix, "%s%s", fix.len ? "; " : "", L.missing.fix.data ? L.missing.fix.data : "");
	}
	if (L.engine.n) {
		ps_buf_printf(&msg, "%s%s %s not InnoDB (their writes would not roll back with the "
		              "checkpoint)", msg.len ? "; " : "", mk_list_text(&L.engine),
		              L.engine.n == 1 ? "is" : "are");
		ps_buf_printf(&fix, "%s%s", fix.len ? " " : "", L.engine.fix.data ? L.engine.fix.data : "");
	}
	if (L.required.n) {
		ps_buf_printf(&msg, "%s%s: only the target has %s, NOT NULL without a default, so the "
		              "source's rows cannot fill %s", msg.len ? "; " : "",
		              mk_list_text(&L.required), L.required.n == 1 ? "this column" : "these columns",
		              L.required.n == 1 ? "it" : "them");
		ps_buf_printf(&fix, "%s%s (or give it a DEFAULT)", fix.len ? " " : "",
		              L.required.fix.data ? L.required.fix.data : "");
	}
	if (L.clash.n) {
		ps_buf_printf(&msg, "%s%s: two source tables would land in one target table",
		              msg.len ? "; " : "", mk_list_text(&L.clash));
		ps_buf_printf(&fix, "%sexclude one of them (tables.exclude), or leave the database out "
		              "of target.url so that each source schema gets its own database",
		              fix.len ? "; " : "");
	}
	if (L.names.n) {
		ps_buf_printf(&msg, "%s%s: the name is not a valid MariaDB name (64 characters at most)",
		              msg.len ? "; " : "", mk_list_text(&L.names));
		ps_buf_printf(&fix, "%srename them in the source, or exclude them", fix.len ? "; " : "");
	}
	if (L.unreadable.n)
		ps_buf_printf(&msg, "%scould not check %s", msg.len ? "; " : "", mk_list_text(&L.unreadable));
	if (msg.len)
		ADD(c, "target.tables", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.len ? fix.data : NULL,
		    "%s", msg.data);
	else {
		size_t exist = tables->n - L.created - L.dropped;
		ps_buf parts;

		ps_buf_init(&parts, 512);

		if (L.created)
			ps_buf_printf(&parts, "%zu to create", L.created);
		if (L.dropped)
			ps_buf_printf(&parts, "%s%zu to drop and create", parts.len ? ", " : "", L.dropped);
		if (exist)
			ps_buf_printf(&parts, "%s%zu exist%s%s", parts.len ? ", " : "", exist,
			              exist == 1 ? "s" : "",
			              !loads ? "" : opt->truncate_before_load ? " (emptied before the load)"
			                          : exist == 1 ? " and is empty" : " and are empty");
		ADD(c, "target.tables", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL, "%zu table%s: %s",
		    tables->n, tables->n == 1 ? "" : "s", parts.len ? parts.data : "none selected");
		ps_buf_free(&parts);
	}

	if (L.types.n)
		ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "give the column a type MariaDB can hold in the source (for numeric: a precision "
		    "and scale, ALTER TABLE ... ALTER COLUMN ... TYPE numeric(p,s)), or create the "
		    "target table yourself with column types of your choice (a text type keeps every "
		    "value exactly) and let the job use it",
		    "%s: no exact MariaDB type for %s", mk_list_text(&L.types),
		    L.types.n == 1 ? "this column" : "these columns");
	else if (L.created + L.dropped == 0)
		ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "no table is created, so existing target columns decide the types");
	else if (L.no_columns)
		ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source does not describe its columns before the job starts; "
		    "the load refuses a column without a MariaDB type when it creates the table");
	else
		ADD(c, "target.types", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "every one of the %zu columns of the created tables has a MariaDB type "
		    "(docs/types-mariadb.md)%s%s", L.columns,
		    L.kept.n ? "; kept as their source text: " : "", L.kept.n ? mk_list_text(&L.kept) : "");

	if (L.triggers.n)
		ADD(c, "target.triggers", PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "drop the triggers while the job runs and create them again at the cutover "
		    "(SHOW CREATE TRIGGER gives their text)",
		    "%s: MariaDB has no session setting that keeps triggers from firing, so they "
		    "will fire on the rows penstock writes (their effects came from the source "
		    "already)", mk_list_text(&L.triggers));
	else
		ADD(c, "target.triggers", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "no selected table in the target has a trigger");
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		mk_list_free(lists[i]);
	ps_buf_free(&msg);
	ps_buf_free(&fix);
}

/* ==== entry point ============================================================ */

static void skip_rest(mk_ctx *c, const char *why)
{
	static const char *const ids[] = {"target.writable", "target.settings",
	                                   "target.local_infile", "target.tables", "target.types",
	                                   "target.triggers", NULL};

	for (int i = 0; ids[i]; i++)
		ADD(c, ids[i], strcmp(ids[i], "target.local_infile") == 0 ||
		    strcmp(ids[i], "target.triggers") == 0 ? PS_CHECK_WARNING : PS_CHECK_ERROR,
		    PS_CHECK_SKIPPED, NULL, "not checked: %s", why);
}

int mys_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                 const ps_check_tables *tables, ps_check_report *report, ps_error *err)
{
	my_connect_opts o = {.program = "penstock precheck"};
	mk_ctx c;
	ps_url parsed;
	ps_error cerr;
	ps_buf problems, fixes;
	char where[300], version[120];
	size_t writable_at;

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
	c.per_schema = parsed.dbname[0] == '\0';
	snprintf(c.ck_db, sizeof(c.ck_db), "%s", c.per_schema ? MYS_CHECKPOINT_DB : parsed.dbname);
	ps_url_host_port(&parsed, where, sizeof(where));
	if (my_connect(&c.conn, &parsed, cfg->password, &o, &cerr) != PS_OK) {
		bool no_db = strcmp(cerr.engine_code, "1049") == 0;
		char fix[400];

		snprintf(fix, sizeof(fix), no_db ? "CREATE DATABASE `%s` CHARACTER SET utf8mb4; (or name "
		         "an existing database in target.url)" : "%scheck target.url (host, port, "
		         "database, user), the password in target.password_env or "
		         "target.password_file, and that the user may connect from this host",
		         no_db ? parsed.dbname : "");
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, fix, "%s", cerr.message);
		skip_rest(&c, "target.connect failed");
		goto cleanup;
	}
	read_grantees(&c);
	value(&c, "SELECT VERSION()", version, sizeof(version));
	ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
	    "connected to %s (%s %s), %s%s, as %s", where,
	    strstr(version, "MariaDB") ? "MariaDB" : "MySQL", version,
	    c.per_schema ? "each source schema into the database of its name" : "database ",
	    c.per_schema ? "" : parsed.dbname, c.user);
	check_writable(&c, &problems, &fixes);
	writable_at = report->n;
	check_settings(&c, loads);
	if (tables) {
		report_tables(&c, tables, opt, loads, &problems, &fixes);
	} else {
		ADD(&c, "target.tables", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source's tables are not known");
		ADD(&c, "target.types", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source's tables are not known");
		ADD(&c, "target.triggers", PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source's tables are not known");
	}
	if (problems.len)
		ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    fixes.len ? fixes.data : NULL, "%s", problems.data);
	else
		ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "user %s may write the checkpoint%s", c.user,
		    tables ? " and the selected tables" : " (the tables were not checked: the "
		    "source's tables are not known)");
	/* target.writable gathers the table checks' problems too: it is added
	 * last and moved up to where it reads best, after target.connect */
	if (c.rc == 0 && report->n > writable_at + 1) {
		ps_check_item w = report->items[report->n - 1];

		memmove(&report->items[writable_at + 1], &report->items[writable_at],
		        (report->n - 1 - writable_at) * sizeof(w));
		report->items[writable_at] = w;
	}
cleanup:
	if (c.conn)
		mysql_close(c.conn);
	ps_buf_free(&problems);
	ps_buf_free(&fixes);
	if (c.rc != 0)
		return ps_error_set(err, c.rc, "out of memory");
	return PS_OK;
}
