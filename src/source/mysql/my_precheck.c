/*
 * my_precheck.c — what a job needs from a MariaDB source, checked without
 * changing anything (penstock/check.h): the binlog's settings, privileges,
 * the tables (transactional engine, primary key, readable, no old temporal
 * format) and binlog retention. Each failed item carries the exact fix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "source/mysql/my_internal.h"
#include "util/myconn.h"

const char *const my_check_ids[] = {
	"source.version", "source.binlog", "source.binlog_format", "source.binlog_row_image",
	"source.binlog_row_metadata", "source.binlog_checksum", "source.binlog_retention",
	"source.replication_privilege", "source.tables", "source.storage_engine",
	"source.primary_key", "source.select_privilege", "source.temporal_format",
	"source.excess_privileges", NULL
};
#define EXCESS_ID "source.excess_privileges"   /* checked with the grants (index 7) */

typedef struct pc {
	ps_check_report *r;
	int rc;                   /* the first PS_ENOMEM */
} pc;

#define ADD(c, ...) note((c), ps_check_add((c)->r, __VA_ARGS__))

static void note(pc *c, int rc)
{
	if (rc != PS_OK && c->rc == PS_OK)
		c->rc = rc;
}

static void skip_from(pc *c, int first, const char *why)
{
	for (int i = first; my_check_ids[i]; i++) {
		bool excess = strcmp(my_check_ids[i], EXCESS_ID) == 0;
		if (excess && first > 7)
			continue;           /* check_grants gave it */
		ADD(c, my_check_ids[i], excess ? PS_CHECK_WARNING : PS_CHECK_ERROR, PS_CHECK_SKIPPED,
		    NULL, "not checked: %s", why);
	}
}

static void check_setting(pc *c, const char *id, const char *name, const char *value,
                          const char *want, int level, const char *fix)
{
	if (value && strcasecmp(value, want) == 0)
		ADD(c, id, level, PS_CHECK_PASSED, NULL, "%s is %s", name, value);
	else
		ADD(c, id, level, PS_CHECK_FAILED, fix, "%s is '%s'; penstock needs %s", name,
		    value ? value : "unset", want);
}

static bool check_settings(pc *c, MYSQL *conn)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_error e;

	if (my_query(conn, "SELECT VERSION(), @@log_bin, @@binlog_format, @@binlog_row_image, "
	             "@@binlog_row_metadata, @@binlog_checksum, @@binlog_expire_logs_seconds",
	             &res, "reading settings", &e) != PS_OK || !(row = mysql_fetch_row(res))) {
		if (res)
			mysql_free_result(res);
		skip_from(c, 0, "the server's settings could not be read");
		return false;
	}
	if (row[0] && strstr(row[0], "MariaDB"))
		ADD(c, "source.version", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL, "MariaDB %s", row[0]);
	else
		ADD(c, "source.version", PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "use MariaDB 10.5 or later; MySQL's own event formats stop the job", "%s is not "
		    "MariaDB: MySQL's GTID events, binary JSON and compressed transaction payloads are not supported yet",
		    row[0] ? row[0] : "?");
	check_setting(c, "source.binlog", "log_bin", row[1], "1", PS_CHECK_ERROR,
	              "start MariaDB with log_bin (e.g. log_bin=binlog under [mariadbd] in my.cnf) "
	              "and restart it");
	check_setting(c, "source.binlog_format", "binlog_format", row[2], "ROW", PS_CHECK_ERROR,
	              "SET GLOBAL binlog_format = 'ROW'; and binlog_format=ROW in my.cnf");
	check_setting(c, "source.binlog_row_image", "binlog_row_image", row[3], "FULL",
	              PS_CHECK_ERROR, "SET GLOBAL binlog_row_image = 'FULL'; and "
	              "binlog_row_image=FULL in my.cnf");
	check_setting(c, "source.binlog_row_metadata", "binlog_row_metadata", row[4], "FULL",
	              PS_CHECK_ERROR, "SET GLOBAL binlog_row_metadata = 'FULL'; and "
	              "binlog_row_metadata=FULL in my.cnf (MariaDB 10.5 or later)");
	check_setting(c, "source.binlog_checksum", "binlog_checksum", row[5], "CRC32",
	              PS_CHECK_WARNING, "SET GLOBAL binlog_checksum = 'CRC32'; and "
	              "binlog_checksum=CRC32 in my.cnf, so that a damaged event is found");
	if (row[6] && strtoll(row[6], NULL, 10) > 0 && strtoll(row[6], NULL, 10) < 86400)
		ADD(c, "source.binlog_retention", PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "SET GLOBAL binlog_expire_logs_seconds = 604800; (a week), longer than the job "
		    "may ever be stopped", "binlog_expire_logs_seconds is %s: a job stopped longer "
		    "than that finds its position purged and must load again", row[6]);
	else
		ADD(c, "source.binlog_retention", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "binlog_expire_logs_seconds is %s%s", row[6] ? row[6] : "?",
		    row[6] && strcmp(row[6], "0") == 0 ? " (binlogs kept until purged by hand)" : "");
	mysql_free_result(res);
	return true;
}

static bool grants_have(const char *grants, const char *what)
{
	return strcasestr(grants, what) != NULL;
}

static void check_grants(pc *c, MYSQL *conn)
{
	static const char *const beyond[] = {
		"ALL PRIVILEGES", "SUPER", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER",
		"INDEX", "SHUTDOWN", "FILE", "RELOAD", NULL
	};
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	ps_buf all, excess;
	ps_error e;
	bool repl, monitor;

	if (my_query(conn, "SHOW GRANTS FOR CURRENT_USER()", &res, "reading grants", &e) != PS_OK) {
		ADD(c, "source.replication_privilege", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: %s", e.message);
		ADD(c, EXCESS_ID, PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL, "not checked: %s",
		    e.message);
		return;
	}
	ps_buf_init(&all, 1 << 20);
	ps_buf_init(&excess, 4096);
	while ((row = mysql_fetch_row(res)) != NULL) {
		const char *on = row[0] ? strstr(row[0], " ON *.* ") : NULL;
		if (!on)
			continue;
		ps_buf_printf(&all, "%s\n", row[0]);
		/* global privileges beyond reading (docs/privileges.md); the
		 * marker database's own grants are not ON *.* */
		for (size_t i = 0; beyond[i]; i++) {
			const char *at = strcasestr(row[0], beyond[i]);
			if (at && at < on && !(excess.data && strcasestr(excess.data, beyond[i])))
				ps_buf_printf(&excess, "%s%s", excess.len ? ", " : "", beyond[i]);
		}
		if (strstr(on, "WITH GRANT OPTION") && !(excess.data && strstr(excess.data, "GRANT")))
			ps_buf_printf(&excess, "%sGRANT OPTION", excess.len ? ", " : "");
	}
	mysql_free_result(res);
	if (excess.len)
		ADD(c, EXCESS_ID, PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '<user>'@'<host>'; GRANT REPLICATION "
		    "SLAVE, BINLOG MONITOR, SELECT ON *.* TO '<user>'@'<host>'; GRANT CREATE, INSERT, "
		    "DELETE ON `" MY_MARKS_DB "`.* TO '<user>'@'<host>';",
		    "the user holds more than the job needs on every database: %s. A job reads "
		    "with REPLICATION SLAVE, BINLOG MONITOR and SELECT, and writes only its markers "
		    "into " MY_MARKS_DB " (docs/privileges.md)", excess.data);
	else
		ADD(c, EXCESS_ID, PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "the user holds no global privilege beyond what the job needs");
	ps_buf_free(&excess);
	repl = grants_have(all.data ? all.data : "", "ALL PRIVILEGES") ||
	       grants_have(all.data ? all.data : "", "REPLICATION SLAVE") ||
	       grants_have(all.data ? all.data : "", "REPLICATION REPLICA");
	monitor = grants_have(all.data ? all.data : "", "ALL PRIVILEGES") ||
	          grants_have(all.data ? all.data : "", "BINLOG MONITOR") ||
	          grants_have(all.data ? all.data : "", "REPLICATION CLIENT") ||
	          grants_have(all.data ? all.data : "", "SUPER");
	if (repl && monitor)
		ADD(c, "source.replication_privilege", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "the user may read the binlog (REPLICATION SLAVE) and its position (BINLOG "
		    "MONITOR)");
	else
		ADD(c, "source.replication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO '<user>'@'<host>';",
		    "the user lacks %s%s%s", repl ? "" : "REPLICATION SLAVE (reading the binlog)",
		    !repl && !monitor ? " and " : "",
		    monitor ? "" : "BINLOG MONITOR (SHOW MASTER STATUS, SHOW BINARY LOGS)");
	ps_buf_free(&all);
}

static void check_tables(pc *c, const ps_source_config *cfg, MYSQL *conn,
                         ps_check_tables *tables)
{
	my_tableinfo *t = NULL;
	size_t n = 0;
	ps_buf refused, keyless, unreadable, old;
	ps_error e;

	ps_buf_init(&refused, 1 << 16);
	ps_buf_init(&keyless, 1 << 16);
	ps_buf_init(&unreadable, 1 << 16);
	ps_buf_init(&old, 1 << 16);
	if (my_catalog_load(conn, (char *const *)cfg->include, cfg->ninclude,
	                    (char *const *)cfg->exclude, cfg->nexclude, &t, &n, &refused, &e) != PS_OK) {
		ADD(c, "source.tables", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL, "cannot list tables: %s",
		    e.message);
		skip_from(c, 9, "the tables could not be listed");
		goto cleanup;
	}
	tables->listed = true;
	if (n == 0 && !refused.len)
		ADD(c, "source.tables", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "fix tables.include (database.table globs); list the tables with SELECT "
		    "CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES",
		    "tables.include matches no table");
	else
		ADD(c, "source.tables", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL, "%zu tables selected", n);
	if (refused.len)
		ADD(c, "source.storage_engine", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "ALTER TABLE <table> ENGINE=InnoDB; for each, or add them to tables.exclude",
		    "tables without transactions (their changes have no transaction boundary in the "
		    "binlog and no consistent snapshot): %s", refused.data);
	else
		ADD(c, "source.storage_engine", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "every selected table is InnoDB");
	for (size_t i = 0; i < n; i++) {
		ps_buf sql;
		ps_error qe;
		MYSQL_RES *res = NULL;

		note(c, ps_check_tables_add(tables, t[i].db, t[i].name));
		if (!t[i].has_pk)
			ps_buf_printf(&keyless, "%s%s.%s", keyless.len ? ", " : "", t[i].db, t[i].name);
		for (int j = 0; j < t[i].ncols; j++) {
			const char *dt = t[i].cols[j].data_type;
			if (t[i].cols[j].precision > 0 && (strcmp(dt, "datetime") == 0 ||
			    strcmp(dt, "time") == 0 || strcmp(dt, "timestamp") == 0) &&
			    t[i].cols[j].column_type && strstr(t[i].cols[j].column_type, "/* mariadb-5.3 */"))
				ps_buf_printf(&old, "%s%s.%s.%s", old.len ? ", " : "", t[i].db, t[i].name,
				              t[i].cols[j].name);
		}
		ps_buf_init(&sql, 4096);
		ps_buf_puts(&sql, "SELECT 1 FROM ");
		my_quote_ident(&sql, t[i].db);
		ps_buf_putc(&sql, '.');
		my_quote_ident(&sql, t[i].name);
		ps_buf_puts(&sql, " LIMIT 0");
		if (sql.data && my_query(conn, sql.data, &res, "reading", &qe) != PS_OK)
			ps_buf_printf(&unreadable, "%s%s.%s", unreadable.len ? ", " : "", t[i].db,
			              t[i].name);
		if (res)
			mysql_free_result(res);
		ps_buf_free(&sql);
	}
	if (keyless.len)
		ADD(c, "source.primary_key",
		    cfg->keyless == PS_KEYLESS_REFUSE ? PS_CHECK_ERROR : PS_CHECK_WARNING,
		    PS_CHECK_FAILED, "ALTER TABLE <table> ADD PRIMARY KEY (...); or exclude the table",
		    "tables without a primary key: %s. %s; they cannot be added to a running job",
		    keyless.data, cfg->keyless == PS_KEYLESS_REFUSE ? "tables.keyless is refuse"
		    : cfg->keyless == PS_KEYLESS_INSERT_ONLY
		    ? "Only their inserts and truncates are captured (tables.keyless insert_only)"
		    : "Their updates and deletes are matched on every column");
	else
		ADD(c, "source.primary_key", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "every selected table has a primary key");
	if (unreadable.len)
		ADD(c, "source.select_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "GRANT SELECT ON <database>.* TO '<user>'@'<host>';",
		    "the user cannot read %s", unreadable.data);
	else
		ADD(c, "source.select_privilege", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "the user can read every selected table");
	if (old.len)
		ADD(c, "source.temporal_format", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "ALTER TABLE <table> FORCE; rewrites the columns in the current format",
		    "columns in the old temporal format with fractional seconds (the binlog does not "
		    "carry their fraction): %s", old.data);
	else
		ADD(c, "source.temporal_format", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "no column in the old temporal format");
cleanup:
	my_tableinfos_free(t, n);
	ps_buf_free(&refused);
	ps_buf_free(&keyless);
	ps_buf_free(&unreadable);
	ps_buf_free(&old);
}

int my_precheck(const ps_source_config *cfg, ps_check_report *report, ps_check_tables *tables,
                ps_error *err)
{
	pc c = {.r = report, .rc = PS_OK};
	ps_url url;
	ps_error e;
	MYSQL *conn = NULL;
	char where[300], prog[200];
	my_connect_opts opts = {.program = prog};

	ps_error_clear(&e);
	if (ps_url_parse(&url, cfg->url, &e) != PS_OK) {
		ADD(&c, "source.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, "fix source.url", "%s",
		    e.message);
		skip_from(&c, 0, "source.connect failed");
		goto cleanup;
	}
	snprintf(prog, sizeof(prog), "penstock precheck %s", cfg->job_name ? cfg->job_name : "");
	ps_url_host_port(&url, where, sizeof(where));
	if (my_connect(&conn, &url, cfg->password, &opts, &e) != PS_OK) {
		ADD(&c, "source.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "check source.url (host, port, user), the password in source.password_env or "
		    "source.password_file, and that the user may connect from this host", "%s",
		    e.message);
		skip_from(&c, 0, "source.connect failed");
		goto cleanup;
	}
	ADD(&c, "source.connect", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL, "connected to %s as %s",
	    where, url.user[0] ? url.user : "(default user)");
	if (check_settings(&c, conn)) {
		check_grants(&c, conn);
		check_tables(&c, cfg, conn, tables);
	}
cleanup:
	if (conn)
		mysql_close(conn);
	if (c.rc != PS_OK)
		return ps_error_set(err, c.rc, "prechecks: out of memory");
	return PS_OK;
}
