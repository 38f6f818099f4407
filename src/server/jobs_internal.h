/*
 * jobs_internal.h — what the files of the server's job table share. Not a
 * contract: server.h is (and its notes 1-4 hold for all of these files).
 *
 *   jobs.c        the table: a job's entry, its spec, persisting, state
 *                 changes and events, loading and shutdown; API errors
 *   supervisor.c  each job's supervisor thread (its notes: the states it
 *                 walks, the retry policy, health)
 *   job_json.c    the job object of the API, and the figures of its run
 *   job_api.c     the REST actions on jobs, and the readers of their
 *                 request bodies (pure: unit tests and tests/fuzz reach them)
 *
 * "srv->mu held" below means the caller holds the server's lock.
 */
#ifndef PS_SERVER_JOBS_INTERNAL_H
#define PS_SERVER_JOBS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/spec.h"
#include "penstock/error.h"
#include "server/recover.h"
#include "server/server.h"

/* --- jobs.c ---------------------------------------------------------------- */

/* j as compact JSON text (malloc'd), or NULL for NULL. */
char *ps__job_json_text(const json_t *j);

/* Persists the job and, when kind is set, one event of that kind (states
 * -1: none). Logs a failure and returns its code. srv->mu held. */
int ps__job_save(ps_server *srv, ps_job *job, const char *kind, const char *actor,
                 int from_state, int to_state, const char *reason);
/* Moves the job to state to, persisting it with its event (server.h note
 * 3), and wakes whoever waits on srv->changed. srv->mu held. */
void ps__job_transition(ps_server *srv, ps_job *job, int to, const char *actor,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Stores one event of kind by "job" in the job's history. srv->mu held. */
void ps__job_event(ps_server *srv, ps_job *job, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* An event whose from/to are positions of the source's log, not states:
 * a range of changes the job passed over (recover skip). srv->mu held. */
void ps__job_gap_event(ps_server *srv, ps_job *job, const char *actor, const char *from,
                       const char *to, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A new job, not yet in the table; it takes spec_text and spec (on success
 * only). NULL when out of memory. */
ps_job *ps__job_new(ps_server *srv, const char *id, char *spec_text, ps_spec *spec);
void ps__job_free(ps_job *job);
/* Adds job at the end of the table (creation order). */
void ps__job_append(ps_server *srv, ps_job *job);
/* Parses a spec document (origin names it in errors) into *spec, and its
 * compact form, the text stored and shown, into *stored (malloc'd). */
int ps__job_parse_spec(const char *text, size_t len, const char *origin, ps_spec **spec,
                       char **stored, ps_error *err);

/* --- supervisor.c ---------------------------------------------------------- */

/* What POST .../recover hands to the job's supervisor: the thread owns it
 * once it started (ps__job_recover_main frees it). */
typedef struct recover_start {
	ps_job *job;
	ps_recover_plan plan;
	char actor[40];
} recover_start;

/* Starts the job's supervisor thread unless one is at work or the server
 * is shutting down. srv->mu held. */
int ps__job_spawn(ps_server *srv, ps_job *job);
/* The same with fn(arg) as the thread's start (it ends in the supervisor's
 * loop); *started says whether a thread started. srv->mu held. */
int ps__job_spawn_with(ps_server *srv, ps_job *job, void *(*fn)(void *), void *arg,
                       bool *started);
/* A supervisor's start after recover skip or resync: arg is a recover_start
 * (freed here); runs the recover step (recover.h note 1), then the loop. */
void *ps__job_recover_main(void *arg);
/* A supervisor is reading job->spec right now (prechecks, releasing, the
 * cutover): a modification waits. srv->mu held. */
bool ps__job_spec_in_use(const ps_job *job);

/* --- job_api.c ------------------------------------------------------------- */

/* The job with this id or name, not being deleted, or NULL. srv->mu held. */
ps_job *ps__job_find(ps_server *srv, const char *id_or_name);

/* --- observe.c ------------------------------------------------------------- */

/* The webhook call of a transition from -> to (webhook.h), when the job's
 * spec names a webhook and `to` is failed, failed_permanently,
 * ready_to_complete or completed. srv->mu held. */
void ps__job_notify(ps_server *srv, ps_job *job, int from, int to, const char *actor,
                    const char *reason);
/* Keeps the summary of a compare report just stored as job->last_compare
 * (for /metrics). srv->mu held. */
void ps__job_compare_stored(ps_job *job, int64_t seq, int64_t at_ms, const json_t *report);
/* The same from the store's last compare of the job, at load. srv->mu held. */
void ps__job_compare_load(ps_server *srv, ps_job *job);

/* --- job_json.c ------------------------------------------------------------ */

/* The live figures of the job's pipeline, as JSON (a new reference). */
json_t *ps__job_status_snapshot(ps_job *job);
/* The actions the job allows now, as a JSON array. srv->mu held. */
json_t *ps__job_allowed_json(ps_job *job);
/* The job object of the API (docs/api.md). srv->mu held. */
json_t *ps__job_json(ps_job *job);

/* --- job_api.c: request bodies, read without touching the server --------- */

/* POST .../compare (docs/api.md): every field optional. */
typedef struct ps_compare_req {
	int mode;
	int sample_percent;
	long long chunk_rows;
	int max_report;
	bool repair;
	char **tables;
	size_t ntables;
} ps_compare_req;

/* Each reads a body of len bytes: true with the request filled, or false
 * with r set to the 400 the client is answered (and nothing to free). */
bool ps__api_complete_body(const char *body, size_t len, int *mode, ps_api_result *r);
bool ps__api_compare_body(const char *body, size_t len, ps_compare_req *q, ps_api_result *r);
void ps__api_compare_req_free(ps_compare_req *q);
/* r set to the 400 for a spec the parser refused (err, its origin), with
 * the field path when there is one. */
void ps__api_bad_spec(ps_api_result *r, const ps_error *err, const char *origin);
/* RFC 7386 JSON merge patch of target by patch (target is changed). */
void ps__json_merge_patch(json_t *target, json_t *patch);

/* jobs.c: what the job's source plugin says about its options and what the
 * job holds on the source. The option (by name) marked unique that two
 * jobs on the same source share, or NULL; the option marked restart whose
 * value differs between a and b, or NULL; what the job holds and how to
 * release it by hand (never empty: a generic phrase when the plugin says
 * nothing). */
const char *ps__job_shared_option(const ps_spec *a, const ps_spec *b);
const char *ps__job_changed_option(const ps_spec *a, const ps_spec *b);
void ps__job_source_held(const ps_spec *spec, ps_source_resources *out);

#endif
