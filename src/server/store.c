/*
 * store.c — the job store in SQLite (see store.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. One connection, one mutex: the store is small and written a few times
 *     a second at most (transitions, events, figures every few seconds), so
 *     serialising calls costs nothing and keeps SQLite's locking out of the
 *     picture. WAL with synchronous=FULL: a transition the API answered is on
 *     disk, so a server killed right after still knows it.
 *  2. Values are bound parameters; the SQL is fixed text.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "server/store.h"

struct ps_store {
	sqlite3 *db;
	pthread_mutex_t mu;
};

static const char SCHEMA[] =
	"PRAGMA journal_mode = WAL;"
	"PRAGMA synchronous = FULL;"
	"CREATE TABLE IF NOT EXISTS jobs ("
	"  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL,"
	"  state TEXT NOT NULL, health TEXT NOT NULL, checks TEXT, last_error TEXT,"
	"  status TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS events ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, at INTEGER NOT NULL,"
	"  kind TEXT NOT NULL, actor TEXT NOT NULL, from_state TEXT, to_state TEXT, reason TEXT);"
	"CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);"
	"CREATE TABLE IF NOT EXISTS compares ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, at INTEGER NOT NULL,"
	"  result TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS compares_by_job ON compares (job_id, seq);";

int64_t ps_time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ps_time_iso(char *buf, size_t len, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char day[24];

	gmtime_r(&secs, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

static int db_error(ps_error *err, sqlite3 *db, const char *what)
{
	return ps_error_set(err, PS_EIO, "job store: %s: %s", what, sqlite3_errmsg(db));
}

int ps_store_open(ps_store **out, const char *path, ps_error *err)
{
	ps_store *s = calloc(1, sizeof(*s));
	char *msg = NULL;
	int rc = PS_OK;

	*out = NULL;
	if (!s)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	                    NULL) != SQLITE_OK) {
		rc = ps_error_set(err, PS_EIO, "cannot open the job store %s: %s", path,
		                  s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto cleanup;
	}
	sqlite3_busy_timeout(s->db, 10000);
	if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
		rc = ps_error_set(err, PS_EIO, "cannot set up the job store %s: %s (is another server "
		                  "using this state directory?)", path, msg ? msg : "?");
		goto cleanup;
	}
	*out = s;
	s = NULL;
cleanup:
	sqlite3_free(msg);
	ps_store_close(s);
	return rc;
}

void ps_store_close(ps_store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Runs one statement with text parameters (NULL binds NULL). */
static int exec_params(ps_store *s, const char *sql, const char *const *params, int n,
                       const int64_t *ints, int nints, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = PS_OK;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(err, s->db, "preparing a statement");
	for (int i = 0; i < n; i++)
		bind_text(st, i + 1, params[i]);
	for (int i = 0; i < nints; i++)
		sqlite3_bind_int64(st, n + i + 1, ints[i]);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(err, s->db, "writing");
	sqlite3_finalize(st);
	return rc;
}

static int insert_event(ps_store *s, const char *job_id, const ps_store_event *ev, ps_error *err)
{
	const char *p[6] = {job_id, ev->kind, ev->actor, ev->from_state, ev->to_state, ev->reason};
	int64_t at = ev->at ? ev->at : ps_time_now_ms();

	return exec_params(s,
	                   "INSERT INTO events (job_id, kind, actor, from_state, to_state, reason, at) "
	                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
	                   p, 6, &at, 1, err);
}

int ps_store_put(ps_store *s, const ps_store_job *j, const ps_store_event *ev, ps_error *err)
{
	const char *p[8] = {j->id, j->name, j->spec, j->state, j->health, j->checks, j->last_error,
	                    j->status};
	int64_t times[2] = {j->created_at, j->updated_at};
	int rc;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(err, s->db, "beginning a transaction");
		goto cleanup;
	}
	rc = exec_params(s,
	                 "INSERT INTO jobs (id, name, spec, state, health, checks, last_error,"
	                 " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	                 " ON CONFLICT (id) DO UPDATE SET name = excluded.name, spec = excluded.spec,"
	                 " state = excluded.state, health = excluded.health, checks = excluded.checks,"
	                 " last_error = excluded.last_error, status = excluded.status,"
	                 " updated_at = excluded.updated_at",
	                 p, 8, times, 2, err);
	if (rc == PS_OK && ev)
		rc = insert_event(s, j->id, ev, err);
	if (rc == PS_OK && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_error(err, s->db, "committing");
	if (rc != PS_OK)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
cleanup:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int ps_store_event_add(ps_store *s, const char *job_id, const ps_store_event *ev, ps_error *err)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = insert_event(s, job_id, ev, err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int ps_store_delete(ps_store *s, const char *job_id, ps_error *err)
{
	const char *p[1] = {job_id};
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
	             ? PS_OK : db_error(err, s->db, "beginning a transaction");
	if (rc == PS_OK)
		rc = exec_params(s, "DELETE FROM events WHERE job_id = ?", p, 1, NULL, 0, err);
	if (rc == PS_OK)
		rc = exec_params(s, "DELETE FROM compares WHERE job_id = ?", p, 1, NULL, 0, err);
	if (rc == PS_OK)
		rc = exec_params(s, "DELETE FROM jobs WHERE id = ?", p, 1, NULL, 0, err);
	if (rc == PS_OK && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_error(err, s->db, "committing");
	if (rc != PS_OK)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

int ps_store_each(ps_store *s, ps_store_job_fn fn, void *payload, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = PS_OK, step;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT id, name, spec, state, health, checks, last_error, status, "
	                       "created_at, updated_at FROM jobs ORDER BY created_at, id",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_error(err, s->db, "reading jobs");
		goto cleanup;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		ps_store_job j = {
			.id = col_text(st, 0), .name = col_text(st, 1), .spec = col_text(st, 2),
			.state = col_text(st, 3), .health = col_text(st, 4), .checks = col_text(st, 5),
			.last_error = col_text(st, 6), .status = col_text(st, 7),
			.created_at = sqlite3_column_int64(st, 8), .updated_at = sqlite3_column_int64(st, 9),
		};
		rc = fn(&j, payload);
		if (rc != PS_OK)
			goto cleanup;
	}
	if (step != SQLITE_DONE)
		rc = db_error(err, s->db, "reading jobs");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static json_t *text_or_null(sqlite3_stmt *st, int i)
{
	const char *v = col_text(st, i);
	return v ? json_string(v) : json_null();
}

json_t *ps_store_events(ps_store *s, const char *job_id, int64_t after, int limit, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	json_t *out = json_array();
	char at[40];
	int step;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT seq, at, kind, actor, from_state, to_state, reason FROM events "
	                       "WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
	                       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int(st, 3, limit);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		ps_time_iso(at, sizeof(at), sqlite3_column_int64(st, 1));
		json_array_append_new(out, json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:o}", "seq",
		                                     (json_int_t)sqlite3_column_int64(st, 0), "at", at,
		                                     "kind", col_text(st, 2), "actor", col_text(st, 3),
		                                     "from", text_or_null(st, 4), "to", text_or_null(st, 5),
		                                     "reason", text_or_null(st, 6)));
	}
	if (step != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return out;
fail:
	db_error(err, s->db, "reading events");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	json_decref(out);
	return NULL;
}

int ps_store_ping(ps_store *s, ps_error *err)
{
	int rc = PS_OK;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_exec(s->db, "SELECT count(*) FROM jobs", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_error(err, s->db, "reading the jobs");
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int64_t ps_store_compare_add(ps_store *s, const char *job_id, int64_t at, const char *result,
                             ps_error *err)
{
	const char *p[2] = {job_id, result};
	int64_t seq = -1;

	pthread_mutex_lock(&s->mu);
	if (exec_params(s, "INSERT INTO compares (job_id, result, at) VALUES (?, ?, ?)", p, 2, &at, 1,
	                err) == PS_OK)
		seq = sqlite3_last_insert_rowid(s->db);
	pthread_mutex_unlock(&s->mu);
	return seq;
}

json_t *ps_store_compares(ps_store *s, const char *job_id, int limit, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	json_t *out = json_array();
	json_error_t jerr;
	char at[40];
	int step;

	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT seq, at, result FROM (SELECT seq, at, result FROM compares "
	                       "WHERE job_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
	                       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, limit);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *result = json_loads(col_text(st, 2), 0, &jerr);
		ps_time_iso(at, sizeof(at), sqlite3_column_int64(st, 1));
		json_array_append_new(out, json_pack("{s:I, s:s, s:o}", "seq",
		                                     (json_int_t)sqlite3_column_int64(st, 0), "at", at,
		                                     "result", result ? result : json_null()));
	}
	if (step != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return out;
fail:
	db_error(err, s->db, "reading compare results");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	json_decref(out);
	return NULL;
}
