/*
 * pgsink.c — the PostgreSQL sink: applies changes to a PostgreSQL target in
 * target transactions that also hold the job's checkpoint.
 *
 * This file holds the ops table, the connection and its session, target
 * transactions, the libpq pipeline of pending commands and the checkpoint
 * table. COPY is in pgsink_copy.c, the table cache and truncates in
 * pgsink_tables.c, statements in pgsink_apply.c, DDL in pgsink_ddl.c.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Values arrive as the source's canonical text in the settings of
 *     PG_SESSION_OPTIONS (ISO dates, UTC, hex bytea, exact floats), and the
 *     target session gets the same settings from pg_connect, so sending them
 *     as text parameters or COPY text round-trips every type exactly.
 *  2. The session runs with session_replication_role = replica: the rows we
 *     write were already checked by the source, and its triggers already ran
 *     there. Firing the target's triggers would apply their effects twice,
 *     and foreign-key checks would fail on rows of one transaction applied
 *     in a different order across tables (or on a child table loaded before
 *     its parent by parallel copy workers). Setting it needs superuser (or,
 *     from PostgreSQL 15, GRANT SET ON PARAMETER); without it we warn and
 *     carry on, with triggers and foreign keys active.
 *  3. One target transaction spans many source transactions. It opens
 *     lazily at the first begin / write / checkpoint_store / _delete /
 *     table_prepare / table_finish after a flush, and flush commits it. The
 *     checkpoint row is written in it, so data and checkpoint commit or
 *     vanish together (sink.h invariant 1).
 *  4. The connection is in one of three modes inside a transaction:
 *       pipeline  BEGIN, prepared statements, truncates, checkpoint writes
 *                 and COMMIT are sent without waiting; results are read at
 *                 a sync (PGS_PIPELINE_MAX in flight at most, so neither
 *                 side can fill its socket buffer while the other waits);
 *       copy      'r' rows stream into COPY ... FROM STDIN;
 *       plain     synchronous commands: catalog lookups and DDL.
 *     Switching syncs the pipeline (reading and checking every result) or
 *     ends the COPY first; pgs_settle is called at the top of every entry
 *     point so that a COPY or a batch of truncates never outlives the
 *     change that follows it.
 *  5. Every result is read and checked before flush returns: COMMIT is the
 *     last command of the pipeline, and when an earlier command failed the
 *     server skips it (PGRES_PIPELINE_ABORTED), so nothing of a failed batch
 *     commits. Update/delete results with 0 rows are counted as missing
 *     rows (warned about, rate-limited) unless reprocessing.
 *  6. A server error inside the transaction, a lost connection, or a write
 *     that could not be applied makes the sink FAILED: every later call
 *     but close is refused with the first error, so a flush can never
 *     report success for a batch that lost a change. The core closes the
 *     sink and opens a new one; close rolls back what is open.
 *  7. Asynchronous commits (sink.h, "Asynchronous durability"). A durable
 *     COMMIT costs the target a WAL flush (a disk sync) per batch, on the
 *     applier's path. PostgreSQL's own apply worker commits with
 *     synchronous_commit = off and tells the source as flushed only what
 *     its WAL flush has reached; so does this sink, by the target option
 *     async_commit ("auto", the default: on, unless the target server has
 *     synchronous standbys, whose confirmation their user wants before the
 *     source lets go; "on"; "off": the server's own setting). Right after
 *     each COMMIT, in the same pipeline sync (no extra round trip), it asks
 *     pg_current_wal_insert_lsn() and pg_current_wal_flush_lsn(). The
 *     insert position read after COMMIT is at or past the end of that
 *     commit's record, so the batch is durable once the flush position
 *     reaches it (a mark); the flush position read alongside tells which
 *     earlier batches are. durable(ASK) reads the flush position (one round
 *     trip); durable(WAIT) commits one small transaction synchronously (a
 *     row inserted and deleted in penstock.checkpoint: a transaction that
 *     writes no WAL does not wait for a flush), whose commit flushes the
 *     WAL up to itself, so every earlier commit of every session.
 *     checkpoint_load does that first (sink.h rule c): a run killed just
 *     after an asynchronous COMMIT leaves a checkpoint that is visible but
 *     maybe not durable. Whenever the session's synchronous_commit is off
 *     (also when the server's, database's or role's default is), marks are
 *     kept; otherwise every flush is durable when it returns. (`make chaos`
 *     found that a target whose default is off lost acknowledged commits in
 *     a crash before marks existed: test_recovery's
 *     test_target_with_synchronous_commit_off_loses_nothing_in_a_crash.)
 *
 * States:
 *
 *     idle ──(begin, write, checkpoint, DDL)──► in transaction ──flush──► idle
 *                                               (pipeline | copy | plain)
 *     any state ──error──► failed ──close──► (gone)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink/pg/pgsink.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/pgconn.h"
#include "util/str.h"

/* ==== failure ============================================================= */

int pgs_check_usable(ps_sink *s, ps_error *err)
{
	if (!s->failed)
		return PS_OK;
	/* The first error's code, so that a lost connection stays one. */
	return ps_error_set(err, s->failure_code, "the target transaction was abandoned after "
	                    "an earlier error (%s); the target must be reopened", s->failure);
}

/* pg_result_error already counts SQLSTATE classes 08 and 57P as lost
 * connections; a result read back from the pipeline may also fail before the
 * connection is found gone, so look again. An error without a SQLSTATE is
 * libpq's own: a command sent into a socket the server had closed reports
 * "server closed the connection" while the connection still looks OK (make
 * chaos: a crash of the target made such a job failed_permanently, class
 * internal), so read from it once: a closed socket then marks it bad.
 * Returns the (new) code. */
static int classify(const ps_sink *s, ps_error *err)
{
	if (err->code == PS_ESERVER && s->conn && !err->engine_code[0] &&
	    PQstatus(s->conn) == CONNECTION_OK)
		(void)PQconsumeInput(s->conn);
	if (err->code == PS_ESERVER && s->conn && PQstatus(s->conn) == CONNECTION_BAD)
		err->code = PS_ECONNECT;
	return err->code;
}

int pgs_fail(ps_sink *s, ps_error *err)
{
	classify(s, err);
	if (!s->failed) {
		s->failed = true;
		s->failure_code = err->code;
		ps_error_format(err, s->failure, sizeof(s->failure));
	}
	return err->code;
}

/* ==== pipeline ============================================================ */

static void pending_release(ps_sink *s)
{
	for (int i = 0; i < s->npending; i++)
		ps_table_unref(s->pending[i].table);
	s->npending = 0;
}

void pgs_pending_push(ps_sink *s, int kind, int op, bool count_missing,
                      ps_table *table, const char *what)
{
	pgs_pending *p = &s->pending[s->npending++];

	p->kind = (uint8_t)kind;
	p->op = (uint8_t)op;
	p->count_missing = count_missing;
	p->table = ps_table_ref(table);
	p->what = what;
}

/* A WAL position as the text of (lsn - '0/0'), a byte count. */
static int wal_bytes(const char *text, uint64_t *out, ps_error *err)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *end)
		return ps_error_set(err, PS_EPROTO, "the target returned '%.40s' as a WAL position",
		                    text);
	*out = v;
	return PS_OK;
}

/* The row of WAL_POSITIONS: insert and flush (NOTES 7). */
static int read_wal(ps_sink *s, PGresult *res, ps_error *err)
{
	int rc;

	if (PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, 0) ||
	    PQgetisnull(res, 0, 1))
		return ps_error_set(err, PS_EPROTO, "the target returned no WAL positions");
	rc = wal_bytes(PQgetvalue(res, 0, 0), &s->wal_insert, err);
	if (rc == PS_OK)
		rc = wal_bytes(PQgetvalue(res, 0, 1), &s->wal_flush, err);
	return rc;
}

#define WAL_POSITIONS "SELECT (pg_catalog.pg_current_wal_insert_lsn() - '0/0')::text, " \
                      "(pg_catalog.pg_current_wal_flush_lsn() - '0/0')::text"

/* One result of one pending command. */
static int check_result(ps_sink *s, const pgs_pending *p, PGresult *res, ps_error *err)
{
	ExecStatusType st = PQresultStatus(res);
	char what[320];

	if (p->table)
		snprintf(what, sizeof(what), "%s %s.%s", p->what, p->table->schema, p->table->name);
	else
		snprintf(what, sizeof(what), "%s", p->what);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (p->kind == PGS_P_CHANGE && p->count_missing && strcmp(PQcmdTuples(res), "0") == 0)
			pgs_note_missing(s, p->op, p->table);
		if (p->kind == PGS_P_COMMIT && strcmp(PQcmdStatus(res), "COMMIT") != 0)
			return ps_error_set(err, PS_ESERVER, "%s: the server rolled the target "
			                    "transaction back (%s)", what, PQcmdStatus(res));
		if (p->kind == PGS_P_WAL)
			return read_wal(s, res, err);
		return PS_OK;
	}
	if (st == PGRES_PIPELINE_ABORTED)
		return ps_error_set(err, PS_ESERVER, "%s: skipped after an earlier error", what);
	return pg_result_error(err, s->conn, res, what);
}

/* Sends a sync and reads every pending result up to it. The first failure
 * is reported; the rest are read and dropped. Stays in pipeline mode. */
static int drain(ps_sink *s, ps_error *err)
{
	PGresult *res;
	int rc = PS_OK;

	if (!s->pipeline)
		return PS_OK;
	if (PQpipelineSync(s->conn) != 1) {
		rc = pg_result_error(err, s->conn, NULL, "sending a pipeline sync");
		pending_release(s);
		return rc;
	}
	for (int i = 0; i < s->npending; i++) {
		while ((res = PQgetResult(s->conn)) != NULL) {
			if (rc == PS_OK)
				rc = check_result(s, &s->pending[i], res, err);
			PQclear(res);
		}
	}
	pending_release(s);
	res = PQgetResult(s->conn);
	if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		if (rc == PS_OK)
			rc = pg_result_error(err, s->conn, res, "reading the pipeline sync");
		/* Out of step with the server: nothing more can be trusted. */
		if (rc == PS_OK)
			rc = ps_error_set(err, PS_EPROTO, "pipeline out of step");
	}
	PQclear(res);
	return rc;
}

int pgs_pipeline_ready(ps_sink *s, ps_error *err)
{
	if (!s->pipeline) {
		if (PQenterPipelineMode(s->conn) != 1)
			return pg_result_error(err, s->conn, NULL, "entering pipeline mode");
		s->pipeline = true;
	}
	if (s->npending >= PGS_PIPELINE_MAX)
		return drain(s, err);
	return PS_OK;
}

int pgs_leave_pipeline(ps_sink *s, ps_error *err)
{
	int rc;

	if (!s->pipeline)
		return PS_OK;
	rc = drain(s, err);
	if (rc != PS_OK)
		return rc;
	if (PQexitPipelineMode(s->conn) != 1)
		return pg_result_error(err, s->conn, NULL, "leaving pipeline mode");
	s->pipeline = false;
	return PS_OK;
}

int pgs_send_query(ps_sink *s, const char *sql, int nparams, const char *const *params,
                   int kind, ps_table *table, const char *what, ps_error *err)
{
	int rc = pgs_pipeline_ready(s, err);

	if (rc != PS_OK)
		return rc;
	if (PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0) != 1)
		return pg_result_error(err, s->conn, NULL, what);
	pgs_pending_push(s, kind, 0, false, table, what);
	return PS_OK;
}

int pgs_exec(ps_sink *s, PGresult **out, ps_error *err, const char *what,
             const char *sql, int nparams, const char *const *params)
{
	int rc = pgs_leave_pipeline(s, err);

	if (out)
		*out = NULL;
	if (rc == PS_OK)
		rc = pg_exec(s->conn, out, err, what, sql, nparams, params);
	if (rc != PS_OK && (s->in_txn || classify(s, err) == PS_ECONNECT))
		rc = pgs_fail(s, err);
	return rc;
}

/* ==== transactions ======================================================== */

int pgs_settle(ps_sink *s, ps_error *err)
{
	int rc = pgs_net_flush(s, err);

	if (rc == PS_OK && s->copying)
		rc = pgs_copy_end(s, err);
	if (rc == PS_OK && s->ntrunc > 0)
		rc = pgs_truncate_send(s, err);
	return rc;
}

int pgs_ensure_txn(ps_sink *s, ps_error *err)
{
	int rc;

	if (s->in_txn)
		return PS_OK;
	rc = pgs_send_query(s, "BEGIN", 0, NULL, PGS_P_BEGIN, NULL, "begin", err);
	if (rc == PS_OK)
		s->in_txn = true;
	return rc;
}

/* Warns about missing rows not yet reported, at most every 10 s. */
static void report_missing(ps_sink *s)
{
	uint64_t now = ps_now_ns();

	if (s->missing_unreported == 0 ||
	    (s->missing_warned_ns && now - s->missing_warned_ns < PGS_WARN_INTERVAL_NS))
		return;
	ps_log_warn("target pg: %llu update(s)/delete(s) found no row in the target "
	            "(%llu in all; latest: %s): the target has diverged from the source",
	            (unsigned long long)s->missing_unreported,
	            (unsigned long long)s->missing_total, s->missing_last);
	s->missing_unreported = 0;
	s->missing_warned_ns = now;
}

void pgs_note_missing(ps_sink *s, int op, const ps_table *t)
{
	s->missing_total++;
	s->missing_unreported++;
	snprintf(s->missing_last, sizeof(s->missing_last), "%s of a row of %s.%s",
	         op == PS_OP_DELETE ? "delete" : "update", t ? t->schema : "?", t ? t->name : "?");
	report_missing(s);
}

/* ==== open / close ======================================================== */

/* Creation that may race with another instance doing the same. */
static int exec_tolerating_race(PGconn *conn, const char *sql, const char *what, ps_error *err)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	int rc = PS_OK;

	if (st != PGRES_COMMAND_OK &&
	    !(state && (strcmp(state, "23505") == 0 ||      /* unique_violation */
	                strcmp(state, "42710") == 0 ||      /* duplicate_object */
	                strcmp(state, "42P06") == 0 ||      /* duplicate_schema */
	                strcmp(state, "42P07") == 0)))      /* duplicate_table */
		rc = pg_result_error(err, conn, res, what);
	PQclear(res);
	return rc;
}

/* Server notices ("schema penstock already exists, skipping") are not for
 * the user's terminal; they go to the debug log. */
static void on_notice(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
		n--;
	ps_log_debug("target pg: server notice: %.*s", (int)n, message);
}

static int setup_session(ps_sink *s, ps_error *err)
{
	PGresult *res = NULL;
	const char *state;
	int rc;

	PQsetNoticeProcessor(s->conn, on_notice, NULL);
	rc = exec_tolerating_race(s->conn, "CREATE SCHEMA IF NOT EXISTS penstock",
	                          "creating schema penstock", err);
	if (rc == PS_OK)
		rc = exec_tolerating_race(s->conn,
		                          "CREATE TABLE IF NOT EXISTS penstock.checkpoint ("
		                          "job text PRIMARY KEY, body text NOT NULL, "
		                          "updated_at timestamptz NOT NULL DEFAULT now())",
		                          "creating table penstock.checkpoint", err);
	/* the target tables penstock created (pgsink_follow.c NOTES 1) */
	if (rc == PS_OK)
		rc = exec_tolerating_race(s->conn,
		                          "CREATE TABLE IF NOT EXISTS penstock.tables ("
		                          "relid oid PRIMARY KEY, name text NOT NULL, job text NOT NULL, "
		                          "columns text NOT NULL, source bigint NOT NULL DEFAULT 0, "
		                          "updated_at timestamptz NOT NULL DEFAULT now())",
		                          "creating table penstock.tables", err);
	if (rc != PS_OK)
		return rc;
	/* NOTES 2. */
	res = PQexec(s->conn, "SET session_replication_role = replica");
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		s->replica = true;
		return PS_OK;
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state && strcmp(state, "42501") == 0) {         /* insufficient_privilege */
		ps_log_warn("target pg: cannot set session_replication_role = replica (needs "
		            "superuser or GRANT SET ON PARAMETER session_replication_role): "
		            "target triggers and foreign-key checks will fire on replicated rows");
		rc = PS_OK;
	} else {
		rc = pg_result_error(err, s->conn, res, "setting session_replication_role");
	}
	PQclear(res);
	return rc;
}

/* NOTES 7: how this session commits. */
static int setup_commits(ps_sink *s, const char *mode, ps_error *err)
{
	PGresult *res = NULL;
	bool want = strcmp(mode, "on") == 0;
	int rc = PS_OK;

	if (strcmp(mode, "auto") == 0) {
		rc = pg_exec(s->conn, &res, err, "reading synchronous_standby_names",
		             "SHOW synchronous_standby_names", 0, NULL);
		if (rc != PS_OK)
			return rc;
		want = PQgetvalue(res, 0, 0)[0] == '\0';
		if (!want)
			ps_log_info("target pg: the server has synchronous standbys "
			            "(synchronous_standby_names = '%s'): batches commit with the "
			            "server's synchronous_commit (target async_commit \"auto\")",
			            PQgetvalue(res, 0, 0));
		PQclear(res);
		res = NULL;
	}
	if (want)
		rc = pg_exec(s->conn, NULL, err, "setting synchronous_commit",
		             "SET synchronous_commit = off", 0, NULL);
	if (rc == PS_OK)
		rc = pg_exec(s->conn, &res, err, "reading synchronous_commit",
		             "SHOW synchronous_commit", 0, NULL);
	if (rc == PS_OK)
		s->async = strcmp(PQgetvalue(res, 0, 0), "off") == 0;
	PQclear(res);
	res = NULL;
	/* the functions the marks need, and where the WAL stands */
	if (rc == PS_OK && s->async)
		rc = pg_exec(s->conn, &res, err, "reading the WAL positions", WAL_POSITIONS, 0, NULL);
	if (rc == PS_OK && s->async)
		rc = read_wal(s, res, err);
	PQclear(res);
	return rc;
}

static void pg_close(ps_sink *s)
{
	ps_error ignored;

	if (!s)
		return;
	if (s->ncommits)
		ps_log_debug("target pg: %llu commits (%s), %llu asked for the WAL flush position, "
		             "%llu waited for it", (unsigned long long)s->ncommits,
		             s->async ? "asynchronous" : "synchronous", (unsigned long long)s->nasks,
		             (unsigned long long)s->nwaits);
	if (s->conn) {
		if (s->copying)
			pgs_copy_abort(s);
		if (s->pipeline) {
			drain(s, &ignored);
			PQexitPipelineMode(s->conn);
		}
		if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
			PQclear(PQexec(s->conn, "ROLLBACK"));
		PQfinish(s->conn);
	}
	if (s->side)
		PQfinish(s->side);
	pending_release(s);
	pgs_net_free(s);
	pgs_tables_free(s);
	ps_table_unref(s->trunc_first);
	ps_buf_free(&s->copy_buf);
	ps_buf_free(&s->trunc_sql);
	ps_buf_free(&s->sql);
	free(s->values);
	free(s->keyv);
	free(s->shape);
	free(s->job);
	free(s->url_text);
	ps_secret_free(s->password);
	free(s);
}

static const char *async_mode(const json_t *options)
{
	const char *v = ps_option_str(options, "async_commit");

	return v ? v : "auto";
}

static int pg_open(ps_sink **out, const ps_sink_config *cfg, ps_error *err)
{
	ps_sink *s = NULL;
	char app[128];
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_init(&s->copy_buf, PGS_COPY_BUF_LIMIT);
	ps_buf_init(&s->trunc_sql, PGS_SQL_LIMIT);
	ps_buf_init(&s->sql, PGS_SQL_LIMIT);
	ps_buf_init(&s->net_key, PGS_SQL_LIMIT);
	ps_buf_init(&s->net_key2, PGS_SQL_LIMIT);
	s->job = strdup(cfg->job_name ? cfg->job_name : "");
	s->url_text = strdup(cfg->url);
	s->password = cfg->password ? strdup(cfg->password) : NULL;
	if (!s->job || !s->url_text || (cfg->password && !s->password)) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = ps_url_parse(&s->url, cfg->url, err);
	if (rc != PS_OK)
		goto cleanup;
	snprintf(app, sizeof(app), "penstock sink %s", s->job);
	rc = pg_connect(&s->conn, cfg->url, &s->url, cfg->password, false, app, err);
	if (rc != PS_OK)
		goto cleanup;
	rc = setup_session(s, err);
	if (rc == PS_OK)
		rc = setup_commits(s, async_mode(cfg->options), err);
	if (rc != PS_OK)
		goto cleanup;
	*out = s;
	s = NULL;
cleanup:
	pg_close(s);
	return rc;
}

/* ==== applying ============================================================ */

static int pg_begin(ps_sink *s, const ps_txn *txn, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	(void)txn;
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc != PS_OK)
		rc = pgs_fail(s, err);
	return rc;
}

static int pg_write(ps_sink *s, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	pgs_table *t = NULL;
	int rc = pgs_check_usable(s, err);

	if (rc != PS_OK)
		return rc;
	if (c->op == PS_OP_MESSAGE)
		return PS_OK;
	if (!c->table) {
		ps_error_set(err, PS_EINVAL, "a change without a table");
		return pgs_fail(s, err);
	}
	/* A COPY continues only with rows of the same definition; truncates
	 * collect until something else comes (pgs_truncate_add); held net
	 * changes stay held for inserts, updates and deletes (pgsink_net.c). */
	if (c->op == PS_OP_TRUNCATE) {
		rc = pgs_net_flush(s, err);   /* it may cascade to any table */
		if (rc == PS_OK && s->copying)
			rc = pgs_copy_end(s, err);
	} else if (c->op == PS_OP_READ) {
		if (s->copy_src != c->table || s->net_items > 0)
			rc = pgs_settle(s, err);
	} else if (s->copying || s->ntrunc > 0) {
		rc = pgs_settle(s, err);
	}
	if (rc == PS_OK && c->op == PS_OP_TRUNCATE)
		rc = pgs_truncate_add(s, c, err);
	else if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc == PS_OK && c->op != PS_OP_TRUNCATE)
		rc = pgs_table_get(s, c->table, &t, err);
	if (rc == PS_OK && c->op == PS_OP_READ)
		rc = pgs_copy_row(s, t, c, err);
	else if (rc == PS_OK && c->op != PS_OP_TRUNCATE)
		rc = pgs_net_write(s, t, txn, c, err);
	if (rc != PS_OK)
		rc = pgs_fail(s, err);
	return rc;
}

static int pg_commit(ps_sink *s, const ps_txn *txn, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	(void)txn;
	/* Net changes stay held across source commits, until the flush. */
	if (rc == PS_OK && (s->copying || s->ntrunc > 0))
		rc = pgs_settle(s, err);
	if (rc != PS_OK)
		rc = pgs_fail(s, err);
	return rc;
}

/* NOTES 7: flush number `flush` is durable once the WAL is flushed to lsn.
 * Past PGS_MARKS_MAX the newest mark takes the later position: that flush
 * is then reported a little later, never too early. */
static void mark_commit(ps_sink *s, uint64_t flush, uint64_t lsn)
{
	struct pgs_mark *m = &s->marks[s->nmarks < PGS_MARKS_MAX ? s->nmarks++ : PGS_MARKS_MAX - 1];

	m->flush = flush;
	m->lsn = lsn;
}

/* The number of the last flush durable as far as the WAL flush position
 * last read says (sink.h rule a: flushes without a commit count too). */
static uint64_t durable_through(ps_sink *s)
{
	int n = 0;

	while (n < s->nmarks && s->marks[n].lsn <= s->wal_flush)
		n++;
	memmove(s->marks, s->marks + n, (size_t)(s->nmarks - n) * sizeof(s->marks[0]));
	s->nmarks -= n;
	return s->nmarks ? s->marks[0].flush - 1 : s->nflush;
}

static int pg_flush(ps_sink *s, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc == PS_OK && s->in_txn) {
		rc = pgs_pipeline_ready(s, err);
		if (rc == PS_OK && PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1)
			rc = pg_result_error(err, s->conn, NULL, "commit");
		if (rc == PS_OK)
			pgs_pending_push(s, PGS_P_COMMIT, 0, false, NULL, "commit");
		/* NOTES 7: where the commit's record ends at the latest, and how
		 * far the WAL is flushed; read with the COMMIT's result */
		if (rc == PS_OK && s->async)
			rc = pgs_send_query(s, WAL_POSITIONS, 0, NULL, PGS_P_WAL, NULL,
			                    "reading the WAL positions", err);
		if (rc == PS_OK)
			rc = pgs_leave_pipeline(s, err);
		if (rc == PS_OK) {
			s->in_txn = false;
			s->ncommits++;
			if (s->async)
				mark_commit(s, s->nflush + 1, s->wal_insert);
		}
	}
	if (rc == PS_OK) {
		s->nflush++;
		report_missing(s);      /* what the last 10 s held back */
	}
	if (rc != PS_OK)
		rc = pgs_fail(s, err);
	return rc;
}

/* ==== durability (NOTES 7) =============================================== */

/* One small transaction committed synchronously: its commit record is
 * flushed before COMMIT returns, and with it all WAL before it. It must
 * write WAL to wait for the flush, hence a row that comes and goes; its
 * key is no job's name (spec.c: [a-z0-9_-]). */
static int commit_durably(ps_sink *s, ps_error *err)
{
	char key[128];
	const char *params[1] = {key};
	int rc;

	if (s->in_txn)
		return ps_error_set(err, PS_EINVAL, "asked to make commits durable inside an open "
		                    "target transaction");
	snprintf(key, sizeof(key), "durability mark of %s", s->job);
	rc = pgs_send_query(s, "BEGIN", 0, NULL, PGS_P_BEGIN, NULL, "begin", err);
	if (rc == PS_OK)
		rc = pgs_send_query(s, "SET LOCAL synchronous_commit = on", 0, NULL, PGS_P_OTHER, NULL,
		                    "setting synchronous_commit", err);
	if (rc == PS_OK)
		rc = pgs_send_query(s, "INSERT INTO penstock.checkpoint (job, body) VALUES ($1, '')", 1,
		                    params, PGS_P_OTHER, NULL, "writing a durability mark", err);
	if (rc == PS_OK)
		rc = pgs_send_query(s, "DELETE FROM penstock.checkpoint WHERE job = $1", 1, params,
		                    PGS_P_OTHER, NULL, "removing the durability mark", err);
	if (rc == PS_OK)
		rc = pgs_send_query(s, "COMMIT", 0, NULL, PGS_P_COMMIT, NULL, "commit", err);
	if (rc == PS_OK)
		rc = pgs_send_query(s, WAL_POSITIONS, 0, NULL, PGS_P_WAL, NULL,
		                    "reading the WAL positions", err);
	if (rc == PS_OK)
		rc = pgs_leave_pipeline(s, err);
	return rc;
}

static int pg_durable(ps_sink *s, int how, uint64_t *through, ps_error *err)
{
	PGresult *res = NULL;
	int rc = pgs_check_usable(s, err);

	*through = 0;
	if (rc != PS_OK)
		return rc;
	if (s->in_txn && how == PS_DURABLE_WAIT)
		return ps_error_set(err, PS_EINVAL, "asked to make commits durable inside an open "
		                    "target transaction");
	/* inside one, asking would need a sync of the pipeline: say what is known */
	if (!s->in_txn && s->nmarks > 0 && how == PS_DURABLE_ASK && durable_through(s) < s->nflush) {
		s->nasks++;
		rc = pgs_exec(s, &res, err, "reading the WAL positions", WAL_POSITIONS, 0, NULL);
		if (rc == PS_OK)
			rc = read_wal(s, res, err);
		PQclear(res);
	}
	if (rc == PS_OK && s->nmarks > 0 && how == PS_DURABLE_WAIT &&
	    durable_through(s) < s->nflush) {
		s->nwaits++;
		rc = commit_durably(s, err);
	}
	if (rc != PS_OK)
		return pgs_fail(s, err);
	*through = durable_through(s);
	if (how == PS_DURABLE_WAIT && *through < s->nflush)
		return ps_error_set(err, PS_EPROTO, "the WAL is flushed to %llu after a synchronous "
		                    "commit, short of %llu", (unsigned long long)s->wal_flush,
		                    (unsigned long long)s->marks[0].lsn);
	return PS_OK;
}

/* ==== checkpoints ========================================================= */

#define EARLIER_SESSIONS_WAIT_S 30

/* A penstock killed just after it sent COMMIT leaves a backend that may
 * commit that batch, with its checkpoint, after the next run has read the
 * older checkpoint: the next run would then apply the batch again (rows
 * twice in a table without a key). So the checkpoint is read only once no
 * other session of this job's sink (application_name) is inside a
 * transaction; a dead client's backend finishes or rolls back and leaves
 * within moments. Idle sessions (a check running alongside) do not count. */
static int wait_for_earlier_sessions(ps_sink *s, ps_error *err)
{
	char app[128];
	const char *params[1] = {app};
	uint64_t deadline = ps_now_ns() + (uint64_t)EARLIER_SESSIONS_WAIT_S * 1000000000ull;
	int rc;

	snprintf(app, sizeof(app), "penstock sink %s", s->job);
	for (;;) {
		PGresult *res = NULL;
		char pid[32] = "";

		rc = pgs_exec(s, &res, err, "looking for earlier sessions of this job",
		              "SELECT pid FROM pg_catalog.pg_stat_activity WHERE application_name = $1 "
		              "AND pid <> pg_catalog.pg_backend_pid() AND datname = current_database() "
		              "AND state IN ('active', 'idle in transaction', "
		              "'idle in transaction (aborted)', 'fastpath function call')", 1, params);
		if (rc == PS_OK && PQntuples(res) > 0)
			snprintf(pid, sizeof(pid), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		if (rc != PS_OK || !pid[0])
			return rc;
		if (ps_now_ns() >= deadline)
			return ps_error_set(err, PS_ETIMEOUT, "another session of job '%s' (backend pid %s) "
			                    "is still inside a transaction in the target after %d s; is "
			                    "another penstock running this job? Stop it, or end that "
			                    "session (pg_terminate_backend(%s))", s->job, pid,
			                    EARLIER_SESSIONS_WAIT_S, pid);
		struct timespec pause = {0, 10 * 1000000L};
		nanosleep(&pause, NULL);
	}
}

static int pg_checkpoint_load(ps_sink *s, char **json, ps_error *err)
{
	const char *params[1] = {s->job};
	PGresult *res = NULL;
	int rc;

	*json = NULL;
	rc = pgs_check_usable(s, err);
	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc == PS_OK)
		rc = wait_for_earlier_sessions(s, err);
	/* sink.h rule c: what an earlier run committed asynchronously (NOTES 7) */
	if (rc == PS_OK && !s->in_txn)
		rc = commit_durably(s, err);
	if (rc != PS_OK && !s->failed)
		rc = pgs_fail(s, err);
	if (rc == PS_OK)
		rc = pgs_exec(s, &res, err, "reading penstock.checkpoint",
		              "SELECT body FROM penstock.checkpoint WHERE job = $1", 1, params);
	if (rc == PS_OK && PQntuples(res) == 1) {
		*json = strdup(PQgetvalue(res, 0, 0));
		if (!*json)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	PQclear(res);
	return rc;
}

static int checkpoint_send(ps_sink *s, const char *sql, int nparams, const char *const *params,
                           const char *what, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc == PS_OK)
		rc = pgs_send_query(s, sql, nparams, params, PGS_P_OTHER, NULL, what, err);
	if (rc != PS_OK)
		rc = pgs_fail(s, err);
	return rc;
}

static int pg_checkpoint_store(ps_sink *s, const char *json, ps_error *err)
{
	const char *params[2] = {s->job, json};

	return checkpoint_send(s, "INSERT INTO penstock.checkpoint (job, body, updated_at) "
	                       "VALUES ($1, $2, now()) ON CONFLICT (job) DO UPDATE "
	                       "SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at",
	                       2, params, "writing penstock.checkpoint", err);
}

static int pg_checkpoint_delete(ps_sink *s, ps_error *err)
{
	const char *params[1] = {s->job};

	return checkpoint_send(s, "DELETE FROM penstock.checkpoint WHERE job = $1", 1, params,
	                       "deleting from penstock.checkpoint", err);
}

/* ==== tables ============================================================== */

static int pg_table_prepare(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                            bool *created, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	*created = false;
	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc != PS_OK)
		return pgs_fail(s, err);
	/* Validation errors leave the transaction usable; server errors have
	 * already marked the sink failed in pgs_exec. */
	return pgs_table_prepare(s, def, opt, created, err);
}

static int pg_table_finish(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc != PS_OK)
		return pgs_fail(s, err);
	return pgs_table_finish(s, def, err);
}

static int pg_table_change(ps_sink *s, const ps_txn *txn, const ps_table_change *tc,
                           const ps_table_options *opt, bool *backfill, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	*backfill = false;
	if (rc == PS_OK)
		rc = pgs_settle(s, err);   /* what is held was made for the old definition */
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc != PS_OK)
		return pgs_fail(s, err);
	return pgs_table_change(s, txn, tc, opt, backfill, err);
}

static const char *const schemes[] = {"postgresql", "postgres", NULL};
static const char *const async_modes[] = {"auto", "on", "off", NULL};
static const ps_option_def pg_sink_options[] = {
	{.name = "async_commit", .kind = PS_OPTION_CHOICE, .choices = async_modes,
	 .default_text = "auto",
	 .doc = "commit batches without waiting for the disk and acknowledge the source only "
	        "what the target has flushed (\"auto\": unless the target has synchronous "
	        "standbys)"},
	{.name = NULL},
};
static const char *const check_ids[] = {"target.writable", "target.tables", "target.types",
                                        "target.extensions", NULL};

const ps_sink_ops ps_sink_pg = {
	.abi_version = PS_SINK_ABI_VERSION,
	.name = "pg",
	.url_schemes = schemes,
	.max_writers = 0,
	.check_ids = check_ids,
	.options = pg_sink_options,
	.open = pg_open,
	.begin = pg_begin,
	.write = pg_write,
	.commit = pg_commit,
	.flush = pg_flush,
	.checkpoint_load = pg_checkpoint_load,
	.checkpoint_store = pg_checkpoint_store,
	.checkpoint_delete = pg_checkpoint_delete,
	.table_prepare = pg_table_prepare,
	.table_finish = pg_table_finish,
	.close = pg_close,
	.precheck = pgs_precheck,
	.load_raw_accepts = pgs_raw_accepts,
	.load_raw_begin = pgs_raw_begin,
	.load_raw_write = pgs_raw_write,
	.load_raw_end = pgs_raw_end,
	.sequences_set = pgs_sequences_set,
	.schema_apply = pgs_schema_apply,
	.table_change = pg_table_change,
	.durable = pg_durable,
};
