/*
 * sqlite.c — the SQLite sink: a transactional target in one database file.
 *
 * URL: sqlite:///absolute/path.db. The file is created if missing; its
 * directory must exist. Types: sqlite_typemap.c, docs/types-sqlite.md.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Durability (sink.h invariant 1). The database runs in WAL mode with
 *     synchronous=FULL, so a COMMIT has reached the disk, WAL fsynced, when
 *     it returns; flush is that COMMIT. A newly created file also gets its
 *     directory fsynced, so that its name survives a machine crash.
 *  2. One lazy target transaction. The first begin, write, checkpoint_store,
 *     checkpoint_delete, table_prepare or table_finish after a flush issues
 *     BEGIN IMMEDIATE (the write lock at once, waiting up to BUSY_TIMEOUT_MS
 *     for another writer rather than failing half-way through a batch);
 *     flush COMMITs. Many source transactions share it; nothing is committed
 *     before flush, and close rolls back whatever is still open.
 *  3. A transaction SQLite rolled back by itself (I/O error, disk full, out
 *     of memory) must not be followed by a fresh one that a later flush
 *     would commit as if the batch were whole: after any failed statement
 *     the sink compares its idea of the transaction with SQLite's
 *     (sqlite3_get_autocommit) and, if SQLite ended it, turns `broken`:
 *     every later call that would write or commit fails until close.
 *     A statement that merely fails (constraint, conversion) leaves the
 *     transaction open; the caller decides (normally: close, which rolls
 *     back, and retry from the checkpoint).
 *  4. The checkpoint row (_penstock_checkpoint, one row per job) is written
 *     with the data in the open transaction, so data and checkpoint commit
 *     or vanish together.
 *  5. Values reach SQL only as bound parameters; identifiers only through
 *     ps_sql_quote_ident. Statements are prepared once and reused (per table
 *     and column layout: sqlite_table.c), so the hot path is bind, step,
 *     reset, with no allocation for tables without bytea beyond what SQLite
 *     itself does.
 *
 * States: open (in_txn false) ─► in transaction (in_txn) ─► flush ─► open;
 *         any state ─► broken (note 3) ─► close.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "penstock/url.h"
#include "sink/sqlite/sqlite_internal.h"
#include "util/log.h"
#include "util/str.h"

#define BUSY_TIMEOUT_MS 30000

/* ==== shared helpers ====================================================== */

static int code_for(int sqlite_rc)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return PS_ETIMEOUT;
	case SQLITE_NOMEM: return PS_ENOMEM;
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_PERM: return PS_EIO;
	default: return PS_ESERVER;
	}
}

/* Note 3: did SQLite end the transaction we think is open? */
static void notice_rollback(ps_sink *k)
{
	if (k->in_txn && sqlite3_get_autocommit(k->db)) {
		k->in_txn = false;
		k->broken = true;
		ps_log_warn("sink sqlite: %s: SQLite rolled back the open transaction after an error; "
		            "nothing of it was committed", k->path);
	}
}

int ps__sqlite_fail(ps_sink *k, int sqlite_rc, ps_error *err, const char *fmt, ...)
{
	char what[512];
	char msg[PS_ERROR_MESSAGE_MAX];
	va_list ap;

	/* Copy the message before anything else touches the connection. */
	snprintf(msg, sizeof(msg), "%s", k->db ? sqlite3_errmsg(k->db) : sqlite3_errstr(sqlite_rc));
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (k->db)
		notice_rollback(k);
	if ((sqlite_rc & 0xff) == SQLITE_BUSY)
		return ps_error_set(err, PS_ETIMEOUT,
		                    "%s: %s (another connection held the database for more than %d s)",
		                    what, msg, BUSY_TIMEOUT_MS / 1000);
	return ps_error_set(err, code_for(sqlite_rc), "%s: %s (SQLite code %d)", what, msg, sqlite_rc);
}

int ps__sqlite_prepare(ps_sink *k, const ps_buf *b, bool persistent, sqlite3_stmt **out,
                       ps_error *err)
{
	int rc;

	*out = NULL;
	rc = sqlite3_prepare_v3(k->db, b->data, (int)b->len + 1,
	                        persistent ? SQLITE_PREPARE_PERSISTENT : 0, out, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(*out);
		*out = NULL;
		return ps__sqlite_fail(k, rc, err, "cannot prepare %.200s", b->data);
	}
	return 0;
}

int ps__sqlite_run(ps_sink *k, sqlite3_stmt *st, ps_error *err, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	return ps__sqlite_fail(k, rc, err, "%s", what);
}

int ps__sqlite_exec(ps_sink *k, const char *sql, ps_error *err, const char *what)
{
	int rc = sqlite3_exec(k->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return ps__sqlite_fail(k, rc, err, "%s", what);
	return 0;
}

static int refuse_broken(ps_sink *k, ps_error *err)
{
	return ps_error_set(err, PS_ERR,
	                    "%s: an earlier error made SQLite roll back the open transaction; "
	                    "close the target and resume from the checkpoint", k->path);
}

int ps__sqlite_txn(ps_sink *k, ps_error *err)
{
	int rc;

	if (k->broken)
		return refuse_broken(k, err);
	if (k->in_txn)
		return 0;
	rc = ps__sqlite_run(k, k->st_begin, err, "cannot begin a transaction");
	if (rc == 0)
		k->in_txn = true;
	return rc;
}

/* ==== open / close ======================================================== */

/* The directory holding path must exist: SQLite would only say "unable to
 * open database file". *dir gets it. */
static int check_directory(const char *path, char *dir, size_t len, ps_error *err)
{
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash || path[0] != '/')
		return ps_error_set(err, PS_EINVAL, "SQLite database path '%s' is not absolute", path);
	if (slash[1] == '\0')
		return ps_error_set(err, PS_EINVAL,
		                    "SQLite database path '%s' names a directory, not a file", path);
	if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT)
			return ps_error_set_errno(err, PS_EIO, errno,
			                          "cannot create SQLite database %s: directory %s does not exist",
			                          path, dir);
		return ps_error_set_errno(err, PS_EIO, errno,
		                          "cannot create SQLite database %s: cannot stat directory %s",
		                          path, dir);
	}
	if (!S_ISDIR(st.st_mode))
		return ps_error_set(err, PS_EINVAL,
		                    "cannot create SQLite database %s: %s is not a directory", path, dir);
	return 0;
}

static int prepare_text(ps_sink *k, const char *sql, sqlite3_stmt **out, ps_error *err)
{
	int rc = sqlite3_prepare_v3(k->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);

	if (rc != SQLITE_OK)
		return ps__sqlite_fail(k, rc, err, "cannot prepare %s", sql);
	return 0;
}

static int configure(ps_sink *k, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc;

	sqlite3_extended_result_codes(k->db, 1);
	sqlite3_busy_timeout(k->db, BUSY_TIMEOUT_MS);
	rc = prepare_text(k, "PRAGMA journal_mode=WAL", &st, err);
	if (rc != 0)
		goto cleanup;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = ps__sqlite_fail(k, rc, err, "cannot switch %s to WAL mode", k->path);
		goto cleanup;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		rc = ps_error_set(err, PS_EIO, "cannot switch %s to WAL mode: it stays in %s mode",
		                  k->path, mode ? mode : "an unknown");
		goto cleanup;
	}
	rc = ps__sqlite_exec(k, "PRAGMA synchronous=FULL", err, "cannot set synchronous=FULL");
	if (rc == 0)
		rc = ps__sqlite_exec(k, "PRAGMA foreign_keys=OFF", err, "cannot set foreign_keys=OFF");
	if (rc == 0)
		rc = ps__sqlite_exec(k,
		                     "CREATE TABLE IF NOT EXISTS " SQ_CHECKPOINT_TABLE
		                     " (job TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at TEXT NOT NULL)",
		                     err, "cannot create the checkpoint table " SQ_CHECKPOINT_TABLE);
	if (rc == 0)
		rc = ps__sqlite_registry_init(k, err);
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int prepare_fixed(ps_sink *k, ps_error *err)
{
	int rc = prepare_text(k, "BEGIN IMMEDIATE", &k->st_begin, err);

	if (rc == 0)
		rc = prepare_text(k, "COMMIT", &k->st_commit, err);
	if (rc == 0)
		rc = prepare_text(k, "SELECT body FROM " SQ_CHECKPOINT_TABLE " WHERE job = ?1",
		                  &k->st_ck_load, err);
	if (rc == 0)
		rc = prepare_text(k,
		                  "INSERT INTO " SQ_CHECKPOINT_TABLE " (job, body, updated_at) "
		                  "VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
		                  "ON CONFLICT (job) DO UPDATE SET body = excluded.body, "
		                  "updated_at = excluded.updated_at",
		                  &k->st_ck_store, err);
	if (rc == 0)
		rc = prepare_text(k, "DELETE FROM " SQ_CHECKPOINT_TABLE " WHERE job = ?1",
		                  &k->st_ck_delete, err);
	return rc;
}

static void sqlite_close(ps_sink *k)
{
	if (!k)
		return;
	ps__sqlite_tables_free(k);
	if (k->db && !sqlite3_get_autocommit(k->db))
		sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(k->st_begin);
	sqlite3_finalize(k->st_commit);
	sqlite3_finalize(k->st_ck_load);
	sqlite3_finalize(k->st_ck_store);
	sqlite3_finalize(k->st_ck_delete);
	if (k->db)
		sqlite3_close_v2(k->db);
	if (k->missing_update.count || k->missing_delete.count)
		ps_log_warn("sink sqlite: %s: %llu updates and %llu deletes found no row in the target",
		            k->path ? k->path : "?", (unsigned long long)k->missing_update.count,
		            (unsigned long long)k->missing_delete.count);
	free(k->mask);
	free(k->where);
	ps_buf_free(&k->blob);
	ps_buf_free(&k->sql);
	free(k->path);
	free(k->job);
	free(k);
}

static int sqlite_open(ps_sink **out, const ps_sink_config *cfg, ps_error *err)
{
	char dir[PATH_MAX];
	ps_sink *k = NULL;
	ps_url url;
	struct stat st;
	bool existed;
	int rc;

	*out = NULL;
	if (!cfg || !cfg->url)
		return ps_error_set(err, PS_EINVAL, "sink sqlite needs a URL");
	if (!cfg->job_name || !cfg->job_name[0])
		return ps_error_set(err, PS_EINVAL, "sink sqlite needs a job name (the checkpoint key)");
	rc = ps_url_parse(&url, cfg->url, err);
	if (rc != 0)
		return rc;
	if (url.syntax != ps_sqlite_url_syntax)
		return ps_error_set(err, PS_EINVAL, "sink sqlite cannot write to '%s'", url.redacted);
	k = calloc(1, sizeof(*k));
	if (!k)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_init(&k->blob, SQ_SCRATCH_LIMIT);
	ps_buf_init(&k->sql, SQ_SQL_LIMIT);
	k->path = strdup(url.path);
	k->job = strdup(cfg->job_name);
	if (!k->path || !k->job) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = check_directory(k->path, dir, sizeof(dir), err);
	if (rc != 0)
		goto cleanup;
	existed = stat(k->path, &st) == 0;
	rc = sqlite3_open_v2(k->path, &k->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = ps__sqlite_fail(k, rc, err, "cannot open SQLite database %s", k->path);
		goto cleanup;
	}
	rc = configure(k, err);
	if (rc == 0 && !existed)
		rc = ps_fsync_dir(dir, err);
	if (rc == 0)
		rc = prepare_fixed(k, err);
cleanup:
	if (rc != 0) {
		sqlite_close(k);
		return rc;
	}
	ps_log_debug("sink sqlite: opened %s (WAL, synchronous=FULL)", k->path);
	*out = k;
	return 0;
}

/* ==== transactions ======================================================== */

static int sqlite_begin(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	(void)txn;
	return ps__sqlite_txn(k, err);
}

static int sqlite_commit(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	/* Source transactions end here; the target one ends at flush. */
	(void)txn;
	if (k->broken)
		return refuse_broken(k, err);
	return 0;
}

static int sqlite_flush(ps_sink *k, ps_error *err)
{
	int rc;

	if (k->broken)
		return refuse_broken(k, err);
	if (!k->in_txn)
		return 0;
	rc = sqlite3_step(k->st_commit);
	sqlite3_reset(k->st_commit);
	if (rc != SQLITE_DONE)
		return ps__sqlite_fail(k, rc, err, "cannot commit to %s", k->path);
	k->in_txn = false;
	return 0;
}

/* ==== checkpoints ========================================================= */

static int sqlite_checkpoint_load(ps_sink *k, char **json, ps_error *err)
{
	const unsigned char *body;
	int rc;

	*json = NULL;
	rc = sqlite3_bind_text(k->st_ck_load, 1, k->job, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(k->st_ck_load);
	if (rc == SQLITE_ROW) {
		body = sqlite3_column_text(k->st_ck_load, 0);
		if (body) {
			*json = strdup((const char *)body);
			if (!*json) {
				sqlite3_reset(k->st_ck_load);
				return ps_error_set(err, PS_ENOMEM, "out of memory");
			}
		}
		rc = SQLITE_DONE;
	}
	sqlite3_reset(k->st_ck_load);
	if (rc != SQLITE_DONE)
		return ps__sqlite_fail(k, rc, err, "cannot read the checkpoint of job %s from %s",
		                       k->job, k->path);
	return 0;
}

static int sqlite_checkpoint_store(ps_sink *k, const char *json, ps_error *err)
{
	int rc;

	if (!json)
		return ps_error_set(err, PS_EINVAL, "checkpoint_store needs a body");
	rc = ps__sqlite_txn(k, err);
	if (rc != 0)
		return rc;
	if (sqlite3_bind_text(k->st_ck_store, 1, k->job, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(k->st_ck_store, 2, json, -1, SQLITE_STATIC) != SQLITE_OK)
		return ps__sqlite_fail(k, sqlite3_errcode(k->db), err, "cannot bind the checkpoint");
	rc = ps__sqlite_run(k, k->st_ck_store, err, "cannot store the checkpoint");
	sqlite3_clear_bindings(k->st_ck_store);   /* json is the caller's */
	return rc;
}

static int sqlite_checkpoint_delete(ps_sink *k, ps_error *err)
{
	int rc = ps__sqlite_txn(k, err);

	if (rc != 0)
		return rc;
	if (sqlite3_bind_text(k->st_ck_delete, 1, k->job, -1, SQLITE_STATIC) != SQLITE_OK)
		return ps__sqlite_fail(k, sqlite3_errcode(k->db), err, "cannot bind the job name");
	return ps__sqlite_run(k, k->st_ck_delete, err, "cannot delete the checkpoint");
}

/* ==== the plugin ========================================================== */

static int sqlite_write(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	return ps__sqlite_write(k, txn, c, err);
}

static int sqlite_table_prepare(ps_sink *k, const ps_table_def *def,
                                const ps_table_options *opt, bool *created, ps_error *err)
{
	return ps__sqlite_table_prepare(k, def, opt, created, err);
}

static int sqlite_table_finish(ps_sink *k, const ps_table_def *def, ps_error *err)
{
	return ps__sqlite_table_finish(k, def, err);
}

static int sqlite_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                               const ps_table_options *opt, bool *backfill, ps_error *err)
{
	return ps__sqlite_table_change(k, txn, tc, opt, backfill, err);
}

static const char *const schemes[] = {"sqlite", NULL};
static const char *const check_ids[] = {"target.writable", "target.tables", NULL};

const ps_url_syntax ps_sqlite_url_syntax[] = {
	{"sqlite", "sqlite", PS_URL_PATH, 0, false, false, "database path",
	 "sqlite:///absolute/path.db (three slashes: an empty host, then the absolute path)"},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};

const ps_sink_ops ps_sink_sqlite = {
	.abi_version = PS_SINK_ABI_VERSION,
	.name = "sqlite",
	.url_schemes = schemes,
	.max_writers = 1,
	.check_ids = check_ids,
	.open = sqlite_open,
	.begin = sqlite_begin,
	.write = sqlite_write,
	.commit = sqlite_commit,
	.flush = sqlite_flush,
	.checkpoint_load = sqlite_checkpoint_load,
	.checkpoint_store = sqlite_checkpoint_store,
	.checkpoint_delete = sqlite_checkpoint_delete,
	.table_prepare = sqlite_table_prepare,
	.table_finish = sqlite_table_finish,
	.close = sqlite_close,
	.precheck = ps__sqlite_precheck,
	.no_sequences = "an INTEGER PRIMARY KEY takes the value after the largest by itself",
	.table_change = sqlite_table_change,
};
