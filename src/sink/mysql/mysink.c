/*
 * mysink.c — the MySQL / MariaDB sink: applies changes to a MariaDB (or
 * MySQL) target in InnoDB transactions that also hold the job's checkpoint.
 *
 * This file holds the ops table, the connections and their sessions, target
 * transactions, failure and the checkpoint table. Rows of the initial load
 * are in mysink_load.c, statements in mysink_apply.c and mysink_net.c, the
 * table cache in mysink_tables.c, DDL in mysink_ddl.c.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Values arrive as canonical text (penstock/change.h) and the session
 *     speaks utf8mb4 in UTC (util/myconn.c), so text parameters and LOAD
 *     DATA fields round-trip every type once mysink_typemap.c has turned
 *     the few that differ (t/f, \x hex, +00) into MariaDB's spelling.
 *  2. The session: sql_mode STRICT_ALL_TABLES (a value that does not fit is
 *     an error, not a warning), NO_AUTO_VALUE_ON_ZERO (a 0 in an
 *     AUTO_INCREMENT column is the value 0), foreign_key_checks = 0 (rows of
 *     one source transaction arrive table by table, and parallel copy
 *     workers load a child before its parent; with the checks off InnoDB
 *     also performs no cascades, whose effects the source already sent),
 *     autocommit off, lock waits bounded. MariaDB has no session switch for
 *     triggers: a target table's triggers fire on replicated rows (the
 *     precheck target.triggers warns, docs/types-mariadb.md says what to
 *     do).
 *  3. One target transaction spans many source transactions. It opens
 *     lazily at the first begin / write / checkpoint write after a flush,
 *     and flush commits it. The checkpoint row is written in it, so data
 *     and checkpoint commit or vanish together (sink.h invariant 1). InnoDB
 *     is required: a table of another engine does not roll back
 *     (mysink_ddl.c refuses one).
 *  4. Nothing on the data connection commits by itself: DDL does in
 *     MariaDB (an implicit COMMIT before and after), so table_prepare and
 *     table_finish run on a second connection (mysink_ddl.c), and a
 *     truncate of the source is applied as DELETE, not TRUNCATE.
 *  5. Statements are synchronous: each one's result is read and checked
 *     before the next is sent, so when COMMIT goes out every statement of
 *     the batch, the checkpoint's upsert included, has succeeded. A server
 *     error inside the transaction (which may have rolled back the whole
 *     transaction: a deadlock does), a lost connection, or a change that
 *     could not be applied makes the sink FAILED: every later call but
 *     close is refused with the first error, so a flush can never commit a
 *     batch that lost a change. The core closes the sink and opens a new
 *     one; close rolls back.
 *  6. A commit still in flight when penstock is killed (the server got
 *     COMMIT and is still writing it: a slow disk, a semi-synchronous
 *     replica's acknowledgement) must not be overtaken by the next run
 *     reading the older checkpoint: that run would apply the batch again.
 *     The checkpoint is read with LOCK IN SHARE MODE: the earlier session
 *     wrote the checkpoint row before it sent COMMIT (note 5), so it holds
 *     that row's exclusive lock until its commit is done or rolled back,
 *     and the read waits for exactly that. Every session of a job (the
 *     applier, each copy worker) writes the same row. Opening runs no DDL
 *     once the checkpoint table exists, so nothing queues the read behind
 *     what holds the commit. (tests/integration/test_mysql_target.py holds
 *     a commit with semi-sync AFTER_SYNC and kills penstock.)
 *
 * States:
 *
 *     idle ──(begin, write, checkpoint)──► in transaction ──flush──► idle
 *     any state ──error──► failed ──close──► (gone)
 */
#include <errno.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/mysql/mysink.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/myconn.h"
#include "util/str.h"

/* ==== failure ============================================================= */

int mys_check_usable(ps_sink *s, ps_error *err)
{
	if (!s->failed)
		return PS_OK;
	return ps_error_set(err, s->failure_code, "the target transaction was abandoned after "
	                    "an earlier error (%s); the target must be reopened", s->failure);
}

int mys_fail(ps_sink *s, ps_error *err)
{
	if (!s->failed) {
		s->failed = true;
		s->failure_code = err->code;
		ps_error_format(err, s->failure, sizeof(s->failure));
	}
	return err->code;
}

int mys_stmt_error(ps_error *err, MYSQL_STMT *st, const char *what)
{
	unsigned int e = mysql_stmt_errno(st);
	char code[16];
	int rc = (e >= 2000 && e < 3000) || e == ER_CONNECTION_KILLED || e == ER_SERVER_SHUTDOWN
	         ? PS_ECONNECT : PS_ESERVER;

	ps_error_set(err, rc, "%s: %s", what, *mysql_stmt_error(st) ? mysql_stmt_error(st)
	                                                            : "unknown error");
	if (e) {
		snprintf(code, sizeof(code), "%u", e);
		ps_error_set_engine(err, MY_CODE_KIND, code, my_errclass_of(e));
	}
	return rc;
}

int mys_exec(ps_sink *s, const char *sql, const char *what, ps_error *err)
{
	int rc = my_exec(s->conn, sql, what, err);

	if (rc != PS_OK && (s->in_txn || rc == PS_ECONNECT))
		rc = mys_fail(s, err);
	return rc;
}

/* ==== transactions ======================================================== */

int mys_settle(ps_sink *s, ps_error *err)
{
	int rc = mys_net_flush(s, err);

	if (rc == PS_OK)
		rc = mys_load_end(s, err);
	return rc;
}

int mys_ensure_txn(ps_sink *s, ps_error *err)
{
	int rc;

	if (s->in_txn)
		return PS_OK;
	rc = my_exec(s->conn, "START TRANSACTION", "starting a transaction", err);
	if (rc == PS_OK)
		s->in_txn = true;
	return rc;
}

/* Warns about missing rows not yet reported, at most every 10 s. */
static void report_missing(ps_sink *s)
{
	uint64_t now = ps_now_ns();

	if (s->missing_unreported == 0 ||
	    (s->missing_warned_ns && now - s->missing_warned_ns < MYS_WARN_INTERVAL_NS))
		return;
	ps_log_warn("target mysql: %llu update(s)/delete(s) found no row in the target "
	            "(%llu in all; latest: %s): the target has diverged from the source",
	            (unsigned long long)s->missing_unreported,
	            (unsigned long long)s->missing_total, s->missing_last);
	s->missing_unreported = 0;
	s->missing_warned_ns = now;
}

void mys_note_missing(ps_sink *s, int op, const ps_table *t, uint64_t n)
{
	if (n == 0)
		return;
	s->missing_total += n;
	s->missing_unreported += n;
	snprintf(s->missing_last, sizeof(s->missing_last), "%s of a row of %s.%s",
	         op == PS_OP_DELETE ? "delete" : "update", t ? t->schema : "?", t ? t->name : "?");
	report_missing(s);
}

/* ==== connections ========================================================= */

/* The session of note 2 on a new connection. */
static int setup_session(MYSQL *conn, bool data, ps_error *err)
{
	char sql[256];
	int rc;

	rc = my_exec(conn, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,"
	             "NO_ENGINE_SUBSTITUTION'", "setting sql_mode", err);
	snprintf(sql, sizeof(sql), "SET SESSION innodb_lock_wait_timeout = %d, "
	         "lock_wait_timeout = %d", MYS_LOCK_WAIT_S, MYS_LOCK_WAIT_S);
	if (rc == PS_OK)
		rc = my_exec(conn, sql, "setting lock timeouts", err);
	if (rc == PS_OK && data)
		rc = my_exec(conn, "SET SESSION autocommit = 0, foreign_key_checks = 0, "
		             "max_error_count = 65535", "setting autocommit and foreign_key_checks",
		             err);
	return rc;
}

static int connect_to(ps_sink *s, MYSQL **out, bool data, ps_error *err)
{
	char program[160];
	my_connect_opts o = {.local_infile = data, .found_rows = true, .program = program};
	int rc;

	snprintf(program, sizeof(program), "penstock sink %s%s", s->job, data ? "" : " (ddl)");
	rc = my_connect(out, &s->url, s->password, &o, err);
	if (rc == PS_OK)
		rc = setup_session(*out, data, err);
	if (rc != PS_OK && *out) {
		mysql_close(*out);
		*out = NULL;
	}
	return rc;
}

int mys_ddl_conn(ps_sink *s, MYSQL **out, ps_error *err)
{
	int rc = PS_OK;

	if (!s->ddl)
		rc = connect_to(s, &s->ddl, false, err);
	*out = s->ddl;
	return rc;
}

/* What the server can do (bulk execution, LOAD DATA LOCAL). */
static int probe_server(ps_sink *s, ps_error *err)
{
	const char *info = mysql_get_server_info(s->conn);
	unsigned long caps = 0;
	char value[32];
	bool found = false;
	int rc;

	s->mariadb = info && strstr(info, "MariaDB") != NULL;
	if (mariadb_get_infov(s->conn, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &caps) == 0)
		s->bulk = (caps & (unsigned long)(MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
	rc = my_query_text(s->conn, "SELECT @@global.local_infile", value, sizeof(value), &found,
	                   "reading local_infile", err);
	if (rc != PS_OK)
		return rc;
	s->local_infile = found && (strcmp(value, "1") == 0 || strcasecmp(value, "ON") == 0);
	rc = my_query_text(s->conn, "SELECT @@max_allowed_packet", value, sizeof(value), &found,
	                   "reading max_allowed_packet", err);
	if (rc != PS_OK)
		return rc;
	/* an array-bound execution travels as one packet: a quarter of the
	 * limit leaves room for lengths and indicators */
	s->bulk_bytes = MYS_BULK_BYTES;
	if (found && strtoull(value, NULL, 10) / 4 < s->bulk_bytes)
		s->bulk_bytes = strtoull(value, NULL, 10) / 4;
	if (!s->local_infile)
		ps_log_warn("target mysql: the server does not allow LOAD DATA LOCAL INFILE "
		            "(local_infile is OFF): the initial load uses batched INSERTs, which "
		            "are slower (SET GLOBAL local_infile = ON on the target to use it)");
	return PS_OK;
}

/* The checkpoint table (note 3), created when missing. When it exists no
 * DDL runs at all: a run that starts while an earlier session's commit is
 * held (note 6) must get to the checkpoint's read, and DDL would queue
 * behind what holds that commit. */
static int setup_checkpoint(ps_sink *s, ps_error *err)
{
	MYSQL_RES *res = NULL;
	char sql[600];
	bool exists;
	ps_buf q;
	int rc;

	ps_buf_init(&q, 1024);
	if (mys_qualified(&q, s->ck_db, MYS_CHECKPOINT_TABLE) != PS_OK) {
		ps_buf_free(&q);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	s->ck_qname = ps_buf_detach(&q);
	rc = mys_catalog_query(s->conn, "SELECT 1 FROM information_schema.TABLES WHERE ",
	                       "TABLE_SCHEMA", s->ck_db, "TABLE_NAME", MYS_CHECKPOINT_TABLE, "",
	                       &res, err);
	if (rc != PS_OK)
		return rc;
	exists = mysql_num_rows(res) > 0;
	mysql_free_result(res);
	if (exists)
		return PS_OK;
	if (s->per_schema) {
		rc = my_exec(s->conn, "CREATE DATABASE IF NOT EXISTS `" MYS_CHECKPOINT_DB "`",
		             "creating database " MYS_CHECKPOINT_DB " (for the checkpoint)", err);
		if (rc != PS_OK)
			return rc;
	}
	snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s (job VARCHAR(255) NOT NULL "
	         "PRIMARY KEY, body LONGTEXT NOT NULL, updated_at DATETIME(6) NOT NULL) "
	         "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin", s->ck_qname);
	return my_exec(s->conn, sql, "creating the checkpoint table " MYS_CHECKPOINT_TABLE, err);
}

static void my_sink_close(ps_sink *s)
{
	if (!s)
		return;
	mys_load_abandon(s);                         /* the connection is ours again */
	if (s->conn) {
		if (s->in_txn)
			mysql_query(s->conn, "ROLLBACK");
	}
	mys_load_free(s);
	mys_net_free(s);
	mys_tables_free(s);
	mys_bulk_free(&s->bulk_scratch);
	if (s->conn)
		mysql_close(s->conn);
	if (s->ddl)
		mysql_close(s->ddl);
	if (s->missing_unreported)
		ps_log_warn("target mysql: %llu more update(s)/delete(s) without a row in the "
		            "target since the last warning (%llu in all; latest: %s)",
		            (unsigned long long)s->missing_unreported,
		            (unsigned long long)s->missing_total, s->missing_last);
	ps_buf_free(&s->sql);
	ps_buf_free(&s->net_key);
	ps_buf_free(&s->net_key2);
	free(s->keyv);
	free(s->shape);
	free(s->ck_qname);
	ps_secret_free(s->password);
	free(s->job);
	free(s);
}

static int my_sink_open(ps_sink **out, const ps_sink_config *cfg, ps_error *err)
{
	ps_sink *s = NULL;
	int rc;

	*out = NULL;
	if (!cfg || !cfg->url)
		return ps_error_set(err, PS_EINVAL, "sink mysql needs a URL");
	s = calloc(1, sizeof(*s));
	if (!s)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_init(&s->sql, MYS_SQL_LIMIT);
	ps_buf_init(&s->net_key, MYS_SQL_LIMIT);
	ps_buf_init(&s->net_key2, MYS_SQL_LIMIT);
	mys_load_init(s);
	ps_buf_init(&s->bulk_scratch.arena, (size_t)1 << 31);
	s->job = strdup(cfg->job_name ? cfg->job_name : "");
	s->password = cfg->password ? strdup(cfg->password) : NULL;
	if (!s->job || (cfg->password && !s->password)) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = ps_url_parse(&s->url, cfg->url, err);
	if (rc != PS_OK)
		goto cleanup;
	s->per_schema = s->url.dbname[0] == '\0';
	snprintf(s->ck_db, sizeof(s->ck_db), "%s", s->per_schema ? MYS_CHECKPOINT_DB : s->url.dbname);
	rc = connect_to(s, &s->conn, true, err);
	if (rc == PS_OK)
		rc = probe_server(s, err);
	if (rc == PS_OK)
		rc = setup_checkpoint(s, err);
	if (rc == PS_OK)
		s->fk_off = true;
	if (rc != PS_OK)
		goto cleanup;
	ps_log_debug("sink mysql: connected to %s (%s%s%s)", s->url.redacted,
	             mysql_get_server_info(s->conn), s->bulk ? ", bulk execution" : "",
	             s->local_infile ? ", LOAD DATA LOCAL" : "");
	*out = s;
	s = NULL;
cleanup:
	my_sink_close(s);
	return rc;
}

/* ==== applying ============================================================ */

static int my_sink_begin(ps_sink *s, const ps_txn *txn, ps_error *err)
{
	int rc = mys_check_usable(s, err);

	(void)txn;
	if (rc == PS_OK)
		rc = mys_ensure_txn(s, err);
	if (rc != PS_OK)
		rc = mys_fail(s, err);
	return rc;
}

static int my_sink_write(ps_sink *s, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	mys_table *t = NULL;
	int rc = mys_check_usable(s, err);

	if (rc != PS_OK)
		return rc;
	if (c->op == PS_OP_MESSAGE)
		return PS_OK;
	if (!c->table) {
		ps_error_set(err, PS_EINVAL, "a change without a table");
		return mys_fail(s, err);
	}
	/* Load rows gather until another table or anything else comes; held
	 * net changes stay held for inserts, updates and deletes. */
	if (c->op == PS_OP_READ) {
		if (s->load.src != c->table || s->net_items > 0)
			rc = mys_settle(s, err);
	} else if (c->op == PS_OP_TRUNCATE || s->load.table) {
		rc = mys_settle(s, err);
	}
	if (rc == PS_OK)
		rc = mys_ensure_txn(s, err);
	if (rc == PS_OK)
		rc = mys_table_get(s, c->table, &t, err);
	if (rc == PS_OK) {
		t->touched = true;
		if (c->op == PS_OP_READ)
			rc = mys_load_row(s, t, c, err);
		else if (c->op == PS_OP_TRUNCATE)
			rc = mys_apply_truncate(s, c, err);
		else
			rc = mys_net_write(s, t, txn, c, err);
	}
	if (rc != PS_OK)
		rc = mys_fail(s, err);
	return rc;
}

static int my_sink_commit(ps_sink *s, const ps_txn *txn, ps_error *err)
{
	(void)txn;
	/* Net changes and load rows stay gathered across source commits. */
	return mys_check_usable(s, err);
}

static int my_sink_flush(ps_sink *s, ps_error *err)
{
	int rc = mys_check_usable(s, err);

	if (rc == PS_OK)
		rc = mys_settle(s, err);
	if (rc == PS_OK && s->in_txn) {
		rc = my_exec(s->conn, "COMMIT", "commit", err);
		if (rc == PS_OK) {
			s->in_txn = false;
			mys_tables_untouch(s);
		}
	}
	if (rc == PS_OK)
		report_missing(s);
	if (rc != PS_OK)
		rc = mys_fail(s, err);
	return rc;
}

/* ==== checkpoints ========================================================= */

/* Runs sql with n text parameters on the data connection; with body, the
 * first column of the first row into *body (malloc'd, NULL when none). */
static int run_params(ps_sink *s, const char *sql, int n, const char *const *params,
                      char **body, const char *what, ps_error *err)
{
	MYSQL_STMT *st = mysql_stmt_init(s->conn);
	MYSQL_BIND bind[4], res;
	unsigned long lens[4], rlen = 0;
	my_bool is_null = 0;
	int rc = PS_OK;

	if (body)
		*body = NULL;
	if (!st)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	memset(bind, 0, sizeof(bind));
	for (int i = 0; i < n; i++) {
		lens[i] = (unsigned long)strlen(params[i]);
		bind[i].buffer_type = MYSQL_TYPE_STRING;
		bind[i].buffer = (void *)params[i];
		bind[i].buffer_length = lens[i];
		bind[i].length = &lens[i];
	}
	if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0 ||
	    mysql_stmt_bind_param(st, bind) != 0 || mysql_stmt_execute(st) != 0) {
		rc = mys_stmt_error(err, st, what);
		goto cleanup;
	}
	if (!body)
		goto cleanup;
	memset(&res, 0, sizeof(res));
	res.buffer_type = MYSQL_TYPE_STRING;
	res.length = &rlen;
	res.is_null = &is_null;
	if (mysql_stmt_bind_result(st, &res) != 0) {
		rc = mys_stmt_error(err, st, what);
		goto cleanup;
	}
	int f = mysql_stmt_fetch(st);
	if (f == 0 || f == MYSQL_DATA_TRUNCATED) {
		if (!is_null) {
			*body = malloc(rlen + 1);
			if (!*body) {
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
				goto cleanup;
			}
			res.buffer = *body;
			res.buffer_length = rlen + 1;
			if (rlen > 0 && mysql_stmt_fetch_column(st, &res, 0, 0) != 0) {
				rc = mys_stmt_error(err, st, what);
				goto cleanup;
			}
			(*body)[rlen] = '\0';
		}
		while (mysql_stmt_fetch(st) == 0)
			;
	} else if (f != MYSQL_NO_DATA) {
		rc = mys_stmt_error(err, st, what);
	}
cleanup:
	if (rc != PS_OK && body) {
		free(*body);
		*body = NULL;
	}
	mysql_stmt_close(st);
	return rc;
}

static int my_checkpoint_load(ps_sink *s, char **json, ps_error *err)
{
	const char *params[1] = {s->job};
	bool own_txn;
	int rc;

	*json = NULL;
	rc = mys_check_usable(s, err);
	if (rc == PS_OK)
		rc = mys_settle(s, err);
	if (rc != PS_OK)
		return rc;
	own_txn = !s->in_txn;
	ps_buf_reset(&s->sql);
	rc = ps_buf_printf(&s->sql, "SELECT body FROM %s WHERE job = ? LOCK IN SHARE MODE",
	                   s->ck_qname);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	rc = mys_ensure_txn(s, err);
	if (rc == PS_OK)
		rc = run_params(s, s->sql.data, 1, params, json, "reading " MYS_CHECKPOINT_TABLE, err);
	if (rc != PS_OK && err->engine_code[0] && strcmp(err->engine_code, "1205") == 0)
		ps_error_add_context(err, "waiting for another session of job '%s' that wrote the "
		                     "checkpoint and has not committed (a penstock killed while "
		                     "committing, or another penstock running this job)", s->job);
	if (rc == PS_OK && own_txn) {
		rc = my_exec(s->conn, "COMMIT", "commit", err);
		if (rc == PS_OK)
			s->in_txn = false;
	}
	if (rc != PS_OK) {
		free(*json);
		*json = NULL;
		rc = mys_fail(s, err);
	}
	return rc;
}

static int checkpoint_send(ps_sink *s, const char *sql, int n, const char *const *params,
                           const char *what, ps_error *err)
{
	int rc = mys_check_usable(s, err);

	if (rc == PS_OK)
		rc = mys_settle(s, err);
	if (rc == PS_OK)
		rc = mys_ensure_txn(s, err);
	if (rc == PS_OK)
		rc = run_params(s, sql, n, params, NULL, what, err);
	if (rc != PS_OK)
		rc = mys_fail(s, err);
	return rc;
}

static int my_checkpoint_store(ps_sink *s, const char *json, ps_error *err)
{
	const char *params[2] = {s->job, json};
	char sql[400];

	if (!json)
		return ps_error_set(err, PS_EINVAL, "checkpoint_store needs a body");
	/* The table's only unique key is its primary key: the upsert cannot
	 * meet another row (the trouble with ON DUPLICATE KEY UPDATE). */
	snprintf(sql, sizeof(sql), "INSERT INTO %s (job, body, updated_at) VALUES (?, ?, "
	         "UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE body = VALUES(body), "
	         "updated_at = VALUES(updated_at)", s->ck_qname);
	return checkpoint_send(s, sql, 2, params, "writing " MYS_CHECKPOINT_TABLE, err);
}

static int my_checkpoint_delete(ps_sink *s, ps_error *err)
{
	const char *params[1] = {s->job};
	char sql[300];

	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE job = ?", s->ck_qname);
	return checkpoint_send(s, sql, 1, params, "deleting from " MYS_CHECKPOINT_TABLE, err);
}

/* ==== tables ============================================================== */

static int my_table_prepare(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                            bool *created, ps_error *err)
{
	int rc = mys_check_usable(s, err);

	*created = false;
	if (rc == PS_OK)
		rc = mys_settle(s, err);
	if (rc != PS_OK)
		return mys_fail(s, err);
	return mys_table_prepare(s, def, opt, created, err);
}

static int my_table_finish(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	int rc = mys_check_usable(s, err);

	if (rc == PS_OK)
		rc = mys_settle(s, err);
	if (rc != PS_OK)
		return mys_fail(s, err);
	return mys_table_finish(s, def, err);
}

static int my_table_change(ps_sink *s, const ps_txn *txn, const ps_table_change *tc,
                           const ps_table_options *opt, bool *backfill, ps_error *err)
{
	int rc = mys_check_usable(s, err);

	*backfill = false;
	if (rc == PS_OK)
		rc = mys_table_change(s, txn, tc, opt, backfill, err);
	return rc;
}

/* ==== the plugin ========================================================== */

static const char *const schemes[] = {"mysql", NULL};
static const char *const check_ids[] = {
	"target.writable", "target.tables", "target.types", "target.settings",
	"target.local_infile", "target.triggers", NULL
};

const ps_sink_ops ps_sink_mysql = {
	.abi_version = PS_SINK_ABI_VERSION,
	.name = "mysql",
	.url_schemes = schemes,
	.max_writers = 0,
	.check_ids = check_ids,
	.open = my_sink_open,
	.begin = my_sink_begin,
	.write = my_sink_write,
	.commit = my_sink_commit,
	.flush = my_sink_flush,
	.checkpoint_load = my_checkpoint_load,
	.checkpoint_store = my_checkpoint_store,
	.checkpoint_delete = my_checkpoint_delete,
	.table_prepare = my_table_prepare,
	.table_finish = my_table_finish,
	.close = my_sink_close,
	.precheck = mys_precheck,
	.sequences_set = mys_sequences_set,
	.table_change = my_table_change,
	.ddl_commits = true,
};
