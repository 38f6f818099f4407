/*
 * server.h — `penstock server`: the job table, its supervisors, the REST API.
 *
 * Files: jobs.c (the job table: entries, persisting, transitions and
 * events), supervisor.c (the supervisor thread of each job), job_api.c (the
 * REST actions), job_json.c (the job object), http.c (libmicrohttpd: routes,
 * requests, bodies, auth), metrics.c (Prometheus text), store.c
 * (persistence), token.c (the API token, shared with the CLI client),
 * lifecycle.c (states and actions), recover.c and cutover.c (the steps
 * before a recovered run and after a cutover's fence); for the operator:
 * console.c (the status page at /, its files compiled in from
 * src/server/console/), history.c (each job's figures over the last hour),
 * webhook.c (calls on some transitions), sdnotify.c (systemd's READY=1 and
 * watchdog).
 *
 * NOTES ON THE DESIGN
 *
 *  1. One mutex (srv->mu) guards the job table and every job's fields except
 *     those a pipeline writes (job->status has its own lock, job->stop is
 *     atomic). Nothing slow runs under srv->mu except the store's local
 *     SQLite write; connecting to databases, prechecks and pipelines run
 *     outside it, in the job's supervisor thread.
 *  2. A job has a supervisor thread exactly while its state is active
 *     (lifecycle.h: checking, starting, running, draining, stopping, failed
 *     waiting to retry). The API changes the state and wakes or starts the
 *     thread; the thread carries the job to the next resting state and ends.
 *  3. Every state change goes through ps__job_transition, which persists the job
 *     and its event in one store transaction before anyone can observe it,
 *     so a server killed at any instant restarts from a state it reported.
 *  4. A server stopping (SIGTERM) asks every pipeline to stop gracefully and
 *     leaves their states as they are: on the next start, jobs that were
 *     running run again and resume from their checkpoints.
 */
#ifndef PS_SERVER_SERVER_H
#define PS_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/pipeline.h"
#include "core/spec.h"
#include "core/status.h"
#include "penstock/error.h"
#include "penstock/error.h"
#include "server/history.h"
#include "server/lifecycle.h"
#include "server/store.h"
#include "server/webhook.h"

#define PS_API_BODY_MAX (1u << 20)      /* request bodies above this are 413 */

typedef struct ps_server ps_server;

typedef struct ps_job {
	ps_server *srv;             /* the server it belongs to */
	char id[24];
	char *spec_text;            /* the spec as stored and shown */
	ps_spec *spec;              /* parsed spec_text */
	int state;                  /* ps_job_state */
	int health;                 /* ps_health */
	int phase;                  /* ps_phase of the current or last run */
	json_t *checks;             /* last precheck report, or NULL */
	json_t *last_error;         /* {"code","message","class","retryable","at","hint", and the engine code under its kind, e.g. "sqlstate"}, or NULL */
	json_t *last_status;        /* figures at the end of the last run, or NULL */
	int64_t created_at, updated_at;
	int attempts;               /* consecutive failed runs */
	int64_t next_retry_ms;      /* when failed: the next attempt */
	bool start_after_check;     /* checking because of start */
	bool deleting;              /* DELETE in progress: invisible to other actions */

	bool thread_alive;          /* a supervisor works on the job (note 2) */
	bool running;               /* a pipeline is running: status is live */
	atomic_int stop;            /* the pipeline's stop flag */
	ps_run_status status;       /* live figures of the running pipeline */
	ps_live live;               /* live controls its pipelines read (limits, tables) */
	int cutover_compare;        /* complete: compare mode to run before releasing, 0: none */
	/* For the operator (since this server started; not persisted): */
	ps_history *history;        /* sampled figures of the last hour, or NULL before
	                               the first sample (history.h) */
	unsigned long long errors[PS_ERRCLASS_COUNT]; /* errors recorded, by class */
	unsigned long long retries_total;             /* retries scheduled */
	json_t *last_compare;       /* the last stored compare: {"seq", "at", "at_ms",
	                               "mode", "consistent", "tables": [...]}, or NULL */
	struct ps_job *next;
} ps_job;

struct ps_server {
	char state_dir[1024];
	char token[128];
	ps_store *store;
	pthread_mutex_t mu;
	pthread_cond_t changed;     /* a job's thread ended, or a retry may be due */
	ps_job *jobs;               /* in creation order */
	bool shutting_down;
	atomic_int cancel_compares;  /* set at shutdown: running compares stop */
	atomic_int loaded;           /* the stored jobs are loaded: the API may answer */
	int64_t started_ms;
	bool jobs_loaded;           /* the store was read and supervisors started */
	ps_webhooks *webhooks;      /* delivery of job webhooks, or NULL */
};

/* --- jobs.c, job_api.c, job_json.c ----------------------------------------- */

/* Loads the jobs from the store and restarts those that were active. */
int ps_server_jobs_load(ps_server *srv, ps_error *err);
/* Asks every pipeline to stop gracefully and waits for every supervisor. */
void ps_server_jobs_shutdown(ps_server *srv);
/* Frees the job table, once no request can reach it any more. */
void ps_server_jobs_free(ps_server *srv);

/* The result of an API call on jobs: HTTP status and body (owned). */
typedef struct ps_api_result {
	int status;
	json_t *body;
} ps_api_result;

void ps_api_error(ps_api_result *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Adds key (taking value) to the error object of r. */
void ps_api_error_detail(ps_api_result *r, const char *key, json_t *value);

/* 400 invalid_request "request body: field: why", with the field named in
 * the error's details. */
void ps_api_bad_field(ps_api_result *r, const char *field, const char *why);

/* A request body parsed as a JSON object (a new reference), or NULL with r
 * set to 400 invalid_json; expected names what was expected. */
json_t *ps_api_body_object(const char *body, size_t len, const char *expected,
                           ps_api_result *r);

void ps_jobs_create(ps_server *srv, const char *body, size_t len, const char *actor,
                    ps_api_result *r);
void ps_jobs_list(ps_server *srv, ps_api_result *r);
void ps_jobs_get(ps_server *srv, const char *id, ps_api_result *r);
void ps_jobs_action(ps_server *srv, const char *id, int action, const char *actor,
                    ps_api_result *r);
void ps_jobs_modify(ps_server *srv, const char *id, const char *body, size_t len,
                    const char *actor, ps_api_result *r);
void ps_jobs_delete(ps_server *srv, const char *id, const char *actor, ps_api_result *r);
/* POST /v1/jobs/{id}/compare: runs penstock compare on the job's source and
 * target (synchronously) and stores the result; GET .../compares lists them. */
void ps_jobs_compare(ps_server *srv, const char *id, const char *body, size_t len,
                     const char *actor, ps_api_result *r);
void ps_jobs_compares(ps_server *srv, const char *id, int limit, ps_api_result *r);
void ps_jobs_events(ps_server *srv, const char *id, int64_t after, int limit, ps_api_result *r);
/* The figures of the job's running pipeline, else of its last run, else
 * NULL: ps_run_status_json's shape (a new reference). srv->mu held. */
json_t *ps_job_figures(ps_job *job);
/* Prometheus text exposition of every job (malloc'd). */
char *ps_jobs_metrics(ps_server *srv);
/* GET /v1/jobs/{id}/history?since=MS: the job's sampled figures. */
void ps_jobs_history(ps_server *srv, const char *id, int64_t since_ms, ps_api_result *r);
/* Samples every job's figures into its history (history.h); skipped when
 * srv->mu cannot be had within a second. Returns false then. */
bool ps_jobs_sample(ps_server *srv);
/* GET /readyz: 200 when the store answers, the jobs are loaded and every
 * job in an active state has its supervisor; else 503 with the reasons. */
void ps_server_ready(ps_server *srv, ps_api_result *r);

/* POST /v1/jobs/{id}/complete (a migration's cutover; body: optional
 * {"compare": "count"|"full"|"sample"|true|false, "reason"}). */
void ps_jobs_complete(ps_server *srv, const char *id, const char *body, size_t len,
                      const char *actor, ps_api_result *r);

/* --- cutover.c: the steps of complete after the fence was applied -------- */

struct ps_compare_report;
/* Sets every target sequence owned by a selected table to the source's
 * value; summary says what was done (or why it does not apply). */
int ps_cutover_sequences(const ps_spec *spec, char *summary, size_t len, ps_error *err);
/* Compares every selected table (mode: ps_compare_mode) into *rep. */
int ps_cutover_compare(const ps_spec *spec, int mode, atomic_int *cancel,
                       struct ps_compare_report *rep, ps_error *err);

/* --- http.c --------------------------------------------------------------- */

/* Binds listen ("127.0.0.1:7654"), loads the jobs from the store (restarting
 * those that were active), serves the API until *stop is set, then stops
 * every job gracefully. */
int ps_http_serve(ps_server *srv, const char *listen, atomic_int *stop, ps_error *err);

/* --- token.c -------------------------------------------------------------- */

/*
 * The API token: PENSTOCK_API_TOKEN when set, else the file api-token in the
 * state directory. create: generate the file (0600, 32 random bytes as hex)
 * when it does not exist (the server); otherwise its absence is an error that
 * says how to get one (the client).
 */
int ps_api_token(char *buf, size_t len, const char *state_dir, bool create, ps_error *err);
/* nbytes (at most 64) random bytes from /dev/urandom as lower-case hex
 * into buf (at least 2 * nbytes + 1). */
int ps_random_hex(char *buf, size_t len, size_t nbytes, ps_error *err);

#endif
