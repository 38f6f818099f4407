/*
 * store.h — the server's job store: one SQLite file in the state directory
 * (penstock.db) holding every job's spec, state and last figures, and the
 * event history of each job.
 *
 * The store is write-through persistence for the server's in-memory job
 * table: the server reads it once at start, then writes every change. A
 * state change and its event commit in one SQLite transaction, so the history
 * never disagrees with the state. Safe to call from several threads.
 */
#ifndef PS_SERVER_STORE_H
#define PS_SERVER_STORE_H

#include <stdint.h>

#include <jansson.h>

#include "penstock/error.h"

typedef struct ps_store ps_store;

/* One job row. Strings are borrowed (by put) or valid only during the
 * callback (each); the JSON columns may be NULL. Times are ms since epoch. */
typedef struct ps_store_job {
	const char *id;
	const char *name;
	const char *spec;        /* the spec as JSON text */
	const char *state;
	const char *health;
	const char *checks;      /* last precheck report, JSON */
	const char *last_error;  /* {"code","message",...,"sqlstate"|"mysql_error"...,"at"}, JSON */
	const char *status;      /* last run's figures (ps_run_status_json), JSON */
	int64_t created_at;
	int64_t updated_at;
} ps_store_job;

/* One history record; from/to are NULL for events that are not transitions. */
typedef struct ps_store_event {
	const char *kind;        /* "transition", "phase", "check", "error", "retry", ... */
	const char *actor;       /* "api", "cli", "server", "job" */
	const char *from_state;
	const char *to_state;
	const char *reason;
	int64_t at;
} ps_store_event;

typedef int (*ps_store_job_fn)(const ps_store_job *job, void *payload);

int ps_store_open(ps_store **out, const char *path, ps_error *err);
void ps_store_close(ps_store *s);

/* Inserts or replaces the job row and, when ev is not NULL, appends the
 * event, both in one transaction. */
int ps_store_put(ps_store *s, const ps_store_job *job, const ps_store_event *ev, ps_error *err);
/* Appends an event only. */
int ps_store_event_add(ps_store *s, const char *job_id, const ps_store_event *ev, ps_error *err);
/* Removes the job and its history. */
int ps_store_delete(ps_store *s, const char *job_id, ps_error *err);
/* Calls fn for every job, oldest first; a non-zero return stops the walk and
 * is returned. */
int ps_store_each(ps_store *s, ps_store_job_fn fn, void *payload, ps_error *err);
/* The job's events with seq > after, oldest first, at most limit:
 * [{"seq","at","kind","actor","from","to","reason"}]. NULL on error. */
json_t *ps_store_events(ps_store *s, const char *job_id, int64_t after, int limit, ps_error *err);

/* Reads the job table once: PS_OK when the store answers (/readyz). */
int ps_store_ping(ps_store *s, ps_error *err);

/* Stores the result of a compare run (JSON text); returns its sequence
 * number, -1 on error. */
int64_t ps_store_compare_add(ps_store *s, const char *job_id, int64_t at, const char *result,
                             ps_error *err);
/* The job's last limit compare results, oldest first:
 * [{"seq", "at", "result"}]. NULL on error. */
json_t *ps_store_compares(ps_store *s, const char *job_id, int limit, ps_error *err);

/* "2026-11-21T04:28:31.123Z" into buf (at least 32 bytes). */
void ps_time_iso(char *buf, size_t len, int64_t ms);
int64_t ps_time_now_ms(void);

#endif
