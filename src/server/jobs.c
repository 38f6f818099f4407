/*
 * jobs.c — the server's job table: API actions and each job's supervisor
 * thread (server.h notes 1-4; the states in lifecycle.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. An action is decided entirely under srv->mu: the state allows it or the
 *     answer is 409 with the state and the allowed actions, and nothing
 *     changed. An allowed action persists its transition first, then wakes
 *     or starts the supervisor, then answers with the job as it now is.
 *  2. The supervisor (job_main) loops on the job's state while it is active:
 *       checking  ─ run prechecks ─► ready | check_failed | (start) starting
 *       starting  ─ run the pipeline; its first phase ─► running
 *       running   ─ pipeline returns ─► paused (after pause: draining),
 *                   stopping (after stop), completed (snapshot job done),
 *                   failed / failed_permanently (error)
 *       stopping  ─ release slot, publication, checkpoint ─► stopped
 *       failed    ─ wait for the retry time ─► starting
 *       starting after recover skip/resync ─ prepare slot and checkpoint
 *                   (recover.c) ─► the pipeline | failed_permanently
 *     and ends in a resting state. The pipeline runs outside the lock; the
 *     API reaches it only through job->stop and job->status.
 *  3. Errors are retried when they can pass by themselves (lost or refused
 *     connections, timeouts, I/O, serialization failures, deadlocks, servers
 *     shutting down), with exponential backoff and jitter as the spec's
 *     retry section says (default 1 s to 60 s, forever); the others (bad
 *     spec, refused checkpoint, missing privilege, slot gone, incompatible
 *     target) and retries that ran out need an operator: failed_permanently,
 *     left by recover (recover.h). core/errclass.c decides which is which,
 *     by SQLSTATE, errno and code, and says what to do (the hint).
 *  4. Health follows the pipeline (status.h on_health): degraded while the
 *     changes read before the source was lost are applied, then
 *     degraded_log_fully_read until the job runs again.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/errclass.h"
#include "core/pipeline.h"
#include "compare/compare.h"
#include "core/precheck.h"
#include "server/recover.h"
#include "server/server.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"

/* ==== small helpers ======================================================= */

/* Makes s valid UTF-8 in place: jansson refuses anything else, and a
 * message may hold bytes from a URL or a server, or end in a character that
 * vsnprintf cut in half. Invalid bytes become '?'. */
static void utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
		        : (*p & 0xF8) == 0xF0 ? 4 : 0;
		bool ok = n > 0 && !(n == 2 && *p < 0xC2);
		for (int i = 1; ok && i < n; i++)
			ok = (p[i] & 0xC0) == 0x80;
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

void ps_api_error(ps_api_result *r, int status, const char *code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_fix(msg);
	r->status = status;
	json_decref(r->body);
	r->body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

void ps_api_error_detail(ps_api_result *r, const char *key, json_t *value)
{
	json_object_set_new(json_object_get(r->body, "error"), key, value);
}

void ps_api_bad_field(ps_api_result *r, const char *field, const char *why)
{
	ps_api_error(r, 400, "invalid_request", "request body: %s: %s", field, why);
	ps_api_error_detail(r, "field", json_string(field));
}

json_t *ps_api_body_object(const char *body, size_t len, const char *expected,
                           ps_api_result *r)
{
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

	if (doc && json_is_object(doc))
		return doc;
	ps_api_error(r, 400, "invalid_json", "request body:%d:%d: %s", jerr.line, jerr.column,
	             doc ? expected : jerr.text);
	json_decref(doc);
	return NULL;
}

static ps_job *find_job(ps_server *srv, const char *id_or_name)
{
	for (ps_job *j = srv->jobs; j; j = j->next)
		if (!j->deleting && (strcmp(j->id, id_or_name) == 0 || strcmp(j->spec->name, id_or_name) == 0))
			return j;
	return NULL;
}

static void not_found(ps_api_result *r, const char *id)
{
	ps_api_error(r, 404, "not_found", "no job '%s'; `penstock job list` shows the jobs", id);
}

static char *json_text(const json_t *j)
{
	return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

/* Persists the job and, when to_state >= 0 or reason is set, one event. */
static int job_save(ps_server *srv, ps_job *job, const char *kind, const char *actor,
                    int from_state, int to_state, const char *reason)
{
	char *checks = json_text(job->checks), *last_error = json_text(job->last_error);
	char *status = json_text(job->last_status);
	ps_store_job row = {
		.id = job->id, .name = job->spec->name, .spec = job->spec_text,
		.state = ps_job_state_name(job->state), .health = ps_health_name(job->health),
		.checks = checks, .last_error = last_error, .status = status,
		.created_at = job->created_at, .updated_at = job->updated_at,
	};
	ps_store_event ev = {
		.kind = kind, .actor = actor,
		.from_state = from_state >= 0 ? ps_job_state_name(from_state) : NULL,
		.to_state = to_state >= 0 ? ps_job_state_name(to_state) : NULL,
		.reason = reason, .at = job->updated_at,
	};
	ps_error err;
	int rc;

	ps_error_clear(&err);
	rc = ps_store_put(srv->store, &row, kind ? &ev : NULL, &err);
	if (rc != PS_OK)
		ps_log_error("job %s: %s", job->spec->name, err.message);
	free(checks);
	free(last_error);
	free(status);
	return rc;
}

/* Moves the job to state, persisting it with its event (server.h note 3).
 * Called with srv->mu held. */
static void job_transition(ps_server *srv, ps_job *job, int to, const char *actor,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void job_transition(ps_server *srv, ps_job *job, int to, const char *actor,
                           const char *fmt, ...)
{
	char reason[1200];
	int from = job->state;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	utf8_fix(reason);
	job->state = to;
	job->updated_at = ps_time_now_ms();
	job_save(srv, job, "transition", actor, from, to, reason);
	ps_log_info("job %s: %s -> %s (%s): %s", job->spec->name, ps_job_state_name(from),
	            ps_job_state_name(to), actor, reason);
	pthread_cond_broadcast(&srv->changed);
}

/* Stores ev, its reason formatted from fmt into ev->reason's buffer. */
static void event_vadd(ps_server *srv, ps_job *job, ps_store_event *ev, char *reason,
                       size_t len, const char *fmt, va_list ap)
{
	ps_error err;

	vsnprintf(reason, len, fmt, ap);
	utf8_fix(reason);
	ev->reason = reason;
	ps_error_clear(&err);
	if (ps_store_event_add(srv->store, job->id, ev, &err) != PS_OK)
		ps_log_error("job %s: %s", job->spec->name, err.message);
}

static void job_event(ps_server *srv, ps_job *job, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void job_event(ps_server *srv, ps_job *job, const char *kind, const char *fmt, ...)
{
	char reason[1200];
	ps_store_event ev = {.kind = kind, .actor = "job", .at = ps_time_now_ms()};
	va_list ap;

	va_start(ap, fmt);
	event_vadd(srv, job, &ev, reason, sizeof(reason), fmt, ap);
	va_end(ap);
}

/* An event whose from/to are positions of the source's log, not states:
 * a range of changes the job passed over (recover skip). */
static void job_gap_event(ps_server *srv, ps_job *job, const char *actor, const char *from,
                          const char *to, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void job_gap_event(ps_server *srv, ps_job *job, const char *actor, const char *from,
                          const char *to, const char *fmt, ...)
{
	char reason[1200];
	ps_store_event ev = {.kind = "gap", .actor = actor, .from_state = from, .to_state = to,
	                     .at = ps_time_now_ms()};
	va_list ap;

	va_start(ap, fmt);
	event_vadd(srv, job, &ev, reason, sizeof(reason), fmt, ap);
	va_end(ap);
	ps_log_warn("job %s: %s", job->spec->name, reason);
}

/* ==== error classes ======================================================== */

/* Design note 3: core/errclass.c decides, by SQLSTATE, errno and code. */
static bool error_retryable(const ps_error *err)
{
	return ps_error_retryable(err);
}

/* Records err as the job's last error. retryable says what the job does
 * about it (a retryable error whose attempts ran out is not retried); hint
 * replaces the class's advice when given. */
static void set_last_error_hint(ps_job *job, const ps_error *err, bool retryable,
                                const char *hint)
{
	char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 4], at[40];
	int cls = ps_errclass_of(err);

	if (!hint && retryable == ps_errclass_retryable(cls))
		hint = ps_errclass_hint(cls);
	else if (!hint)
		hint = "read the message, fix the cause, then `penstock job recover JOB --strategy "
		       "retry` (or stop the job and start it afresh)";
	ps_error_format(err, msg, sizeof(msg));
	utf8_fix(msg);
	ps_time_iso(at, sizeof(at), ps_time_now_ms());
	json_decref(job->last_error);
	job->last_error = json_pack("{s:s, s:s, s:o, s:b, s:s, s:s, s:s}", "code",
	                            ps_error_code_name(err->code), "message", msg, "sqlstate",
	                            err->sqlstate[0] ? json_string(err->sqlstate) : json_null(),
	                            "retryable", retryable, "class", ps_errclass_name(cls),
	                            "at", at, "hint", hint);
}

static void set_last_error(ps_job *job, const ps_error *err, bool retryable)
{
	set_last_error_hint(job, err, retryable, NULL);
}

/* ==== the supervisor thread ================================================ */

static int parse_spec(const char *text, size_t len, const char *origin, ps_spec **spec,
                      char **stored, ps_error *err);

typedef struct phase_ctx {
	ps_server *srv;
	ps_job *job;
	int64_t low_lag_since_ms;   /* on_tick: lag under complete.max_lag_ms since; 0: not */
} phase_ctx;

#define READY_AFTER_MS 3000   /* lag under the limit this long: ready_to_complete */

/* A migration is ready_to_complete while it streams with its lag under
 * complete.max_lag_ms (for READY_AFTER_MS in a row) and no table is being
 * added; back to running when that ends. Called by the pipeline's applier
 * (pipeline.h on_tick); reads job->spec under the lock, so a PATCH of
 * complete.max_lag_ms counts at once. */
static void on_tick(void *payload)
{
	phase_ctx *c = payload;
	ps_server *srv = c->srv;
	ps_job *job = c->job;
	double lag;
	int phase;
	bool ok;

	pthread_mutex_lock(&srv->mu);
	if (job->spec->type != PS_JOB_MIGRATION ||
	    (job->state != PS_JOB_RUNNING && job->state != PS_JOB_READY_TO_COMPLETE)) {
		c->low_lag_since_ms = 0;
		pthread_mutex_unlock(&srv->mu);
		return;
	}
	pthread_mutex_lock(&job->status.mu);
	lag = job->status.lag_seconds;
	phase = job->status.phase;
	pthread_mutex_unlock(&job->status.mu);
	ok = phase == PS_PHASE_STREAMING && lag * 1000.0 < (double)job->spec->complete_max_lag_ms &&
	     !atomic_load(&job->live.busy);
	if (job->state == PS_JOB_RUNNING) {
		int64_t now = ps_time_now_ms();
		if (!ok)
			c->low_lag_since_ms = 0;
		else if (!c->low_lag_since_ms)
			c->low_lag_since_ms = now;
		else if (now - c->low_lag_since_ms >= READY_AFTER_MS)
			job_transition(srv, job, PS_JOB_READY_TO_COMPLETE, "job",
			               "lag under complete.max_lag_ms (%lld ms) for %d s: ready to complete",
			               job->spec->complete_max_lag_ms, READY_AFTER_MS / 1000);
	} else if (!ok) {
		c->low_lag_since_ms = 0;
		job_transition(srv, job, PS_JOB_RUNNING, "job", "not ready to complete any more: %s",
		               atomic_load(&job->live.busy) ? "a table is being added"
		               : phase != PS_PHASE_STREAMING ? "the job is catching up"
		               : "the lag grew over complete.max_lag_ms");
	}
	pthread_mutex_unlock(&srv->mu);
}

static void on_phase(int phase, void *payload)
{
	phase_ctx *c = payload;
	ps_server *srv = c->srv;
	ps_job *job = c->job;

	pthread_mutex_lock(&srv->mu);
	job->phase = phase;
	if (job->state == PS_JOB_STARTING) {
		job->health = PS_HEALTH_OK;   /* the source answers again */
		job_transition(srv, job, PS_JOB_RUNNING, "job", "%s phase began", ps_phase_name(phase));
	} else {
		job_event(srv, job, "phase", "%s phase began", ps_phase_name(phase));
	}
	if (phase == PS_PHASE_STREAMING)
		job->attempts = 0;
	pthread_mutex_unlock(&srv->mu);
}

/* A table change took effect in the pipeline, or a backfill ended. */
static void on_pipeline_event(const char *text, void *payload)
{
	phase_ctx *c = payload;

	pthread_mutex_lock(&c->srv->mu);
	job_event(c->srv, c->job, "tables", "%s", text);
	pthread_mutex_unlock(&c->srv->mu);
}

/* The pipeline's health changed (status.h on_health), from one of its
 * threads: the job's health follows, persisted with an event. */
static void on_health(int health, void *payload)
{
	ps_job *job = payload;
	ps_server *srv = job->srv;

	pthread_mutex_lock(&srv->mu);
	if (job->health != health) {
		job->health = health;
		job->updated_at = ps_time_now_ms();
		job_save(srv, job, "health", "job", -1, -1,
		         health == PS_HEALTH_DEGRADED
		         ? "degraded: the source is unreachable; the changes already read are being applied"
		         : health == PS_HEALTH_DEGRADED_LOG_FULLY_READ
		         ? "degraded_log_fully_read: every change read before the source became "
		           "unreachable is applied and checkpointed; the job fails and retries"
		         : "ok");
		pthread_cond_broadcast(&srv->changed);
	}
	pthread_mutex_unlock(&srv->mu);
}

/* Checking (note 2): runs the prechecks outside the lock. */
static void run_checks(ps_server *srv, ps_job *job)
{
	ps_check_report rep;
	ps_error err;
	json_t *report;
	bool passed;
	int rc;

	memset(&rep, 0, sizeof(rep));
	ps_error_clear(&err);
	pthread_mutex_unlock(&srv->mu);
	rc = ps_precheck_run(job->spec, &rep, &err);
	report = rc == PS_OK ? ps_check_report_json(&rep) : NULL;
	passed = rc == PS_OK && ps_check_report_passed(&rep);
	ps_check_report_free(&rep);
	pthread_mutex_lock(&srv->mu);
	if (job->state != PS_JOB_CHECKING) {   /* deleted or shutting down meanwhile */
		json_decref(report);
		return;
	}
	json_decref(job->checks);
	job->checks = report;
	if (rc != PS_OK) {
		set_last_error_hint(job, &err, false, "fix what the message names, then check or start "
		                    "the job again");
		job_transition(srv, job, PS_JOB_CHECK_FAILED, "job", "the prechecks could not run: %s",
		               err.message);
	} else if (!passed) {
		char failed[600] = "";
		size_t used = 0, n = json_array_size(json_object_get(report, "items"));

		for (size_t i = 0; i < n && used < sizeof(failed); i++) {
			json_t *it = json_array_get(json_object_get(report, "items"), i);
			if (strcmp(json_string_value(json_object_get(it, "result")), "failed") == 0 &&
			    strcmp(json_string_value(json_object_get(it, "level")), "error") == 0)
				used += (size_t)snprintf(failed + used, sizeof(failed) - used, "%s%s",
				                         used ? ", " : "",
				                         json_string_value(json_object_get(it, "id")));
		}
		job_transition(srv, job, PS_JOB_CHECK_FAILED, "job",
		               "blocking prechecks failed: %s; `penstock job show` lists the fixes", failed);
	} else if (job->start_after_check) {
		job_transition(srv, job, PS_JOB_STARTING, "job", "prechecks passed; starting");
	} else {
		job_transition(srv, job, PS_JOB_READY, "job", "prechecks passed");
	}
	job->start_after_check = false;
}

/* The live figures of the job's pipeline, as JSON. */
static json_t *status_snapshot(ps_job *job)
{
	ps_run_status copy;
	json_t *j;

	ps_run_status_copy(&job->status, &copy);
	j = ps_run_status_json(&copy);
	free(copy.tables);
	return j;
}

static const char *applied_text(ps_job *job)
{
	const char *v = json_string_value(
		json_object_get(json_object_get(job->last_status, "positions"), "applied"));
	return v ? v : "the start";
}

/* Completing failed (ARCHITECTURE.md: to failed, with the reason). Nothing
 * was released, so the job runs again from its checkpoint after a short
 * wait, and may be completed again once ready. err may be NULL. */
static void cutover_failed(ps_server *srv, ps_job *job, const ps_error *err, const char *what)
{
	if (err)
		set_last_error(job, err, true);
	job->next_retry_ms = ps_time_now_ms() + job->spec->retry_initial_backoff_ms;
	job_transition(srv, job, PS_JOB_FAILED, "job",
	               "completing failed: %s%s%s; nothing was released: the job streams again from "
	               "its checkpoint, complete it again once ready", what, err ? ": " : "",
	               err ? err->message : "");
}

/* A run ended with err: failed with the next attempt scheduled (note 3,
 * the spec's retry section), or failed_permanently when err needs an
 * operator or the attempts ran out. attempts counts consecutive failed runs;
 * retry.max_attempts of them are retried. */
static void schedule_retry(ps_server *srv, ps_job *job, const ps_error *err)
{
	const ps_spec *spec = job->spec;
	char of[40] = "";
	int64_t backoff;

	if (!error_retryable(err)) {
		set_last_error(job, err, false);
		job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job", "%s", err->message);
		return;
	}
	job->attempts++;
	if (spec->retry_max_attempts > 0 && job->attempts > spec->retry_max_attempts) {
		char hint[300];

		snprintf(hint, sizeof(hint), "the error did not pass in %lld retries "
		         "(retry.max_attempts): fix its cause, then `penstock job recover %s --strategy "
		         "retry`", spec->retry_max_attempts, spec->name);
		set_last_error_hint(job, err, false, hint);
		job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job",
		               "%s (gave up: %lld retries failed, retry.max_attempts)", err->message,
		               spec->retry_max_attempts);
		return;
	}
	set_last_error(job, err, true);
	backoff = ps_retry_backoff_ms(spec->retry_initial_backoff_ms, spec->retry_max_backoff_ms,
	                              job->attempts, (uint32_t)rand());
	job->next_retry_ms = ps_time_now_ms() + backoff;
	if (spec->retry_max_attempts > 0)
		snprintf(of, sizeof(of), " of %lld", spec->retry_max_attempts);
	job_transition(srv, job, PS_JOB_FAILED, "job", "%s (retry %d%s in %.1f s)", err->message,
	               job->attempts, of, (double)backoff / 1000.0);
}

/* Starting / running (note 2): one run of the pipeline, then the state its
 * end leads to. */
static void run_pipeline(ps_server *srv, ps_job *job)
{
	ps_pipeline_config cfg;
	phase_ctx pc = {srv, job, 0};
	ps_error err;
	ps_spec *spec = NULL;
	char *text = NULL;
	bool completed = false;
	int rc;

	/* The run reads its own copy of the spec: a PATCH may replace job->spec
	 * meanwhile, and reaches the run through job->live (note 4). */
	ps_error_clear(&err);
	if (parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text,
	               &err) != PS_OK) {
		set_last_error(job, &err, false);
		job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job", "%s", err.message);
		return;
	}
	free(text);
	ps_live_update(&job->live, spec);
	ps_pipeline_config_defaults(&cfg);
	cfg.spec = spec;
	cfg.live = &job->live;
	cfg.state_dir = srv->state_dir;
	cfg.status = &job->status;
	cfg.on_phase = on_phase;
	cfg.on_tick = on_tick;
	cfg.on_event = on_pipeline_event;
	cfg.payload = &pc;
	cfg.completed = &completed;
	atomic_store(&job->live.complete, 0);   /* a cutover is asked for during a run */
	atomic_store(&job->live.fenced, 0);
	ps_run_status_destroy(&job->status);
	ps_run_status_init(&job->status);
	job->status.on_health = on_health;
	job->status.health_payload = job;
	atomic_store(&job->stop, 0);
	job->running = true;
	job->phase = PS_PHASE_NONE;
	ps_error_clear(&err);
	pthread_mutex_unlock(&srv->mu);
	rc = ps_pipeline_run(&cfg, &job->stop, &err);
	ps_spec_free(spec);
	pthread_mutex_lock(&srv->mu);
	job->running = false;
	json_decref(job->last_status);
	job->last_status = status_snapshot(job);

	if (rc == PS_ESTOPPED && atomic_load(&job->stop))
		rc = PS_OK;
	if (job->deleting) {
		/* DELETE releases what is left and removes the job */
	} else if (completed) {
		/* checked first: the snapshot job ended by itself, even if a pause
		 * or stop arrived meanwhile; nothing is left on the source */
		json_decref(job->last_error);
		job->last_error = NULL;
		job_transition(srv, job, PS_JOB_COMPLETED, "job",
		               "the snapshot is loaded; slot, publication and checkpoint removed");
	} else if (job->state == PS_JOB_COMPLETING) {
		if (rc == PS_OK && atomic_load(&job->live.fenced))
			;   /* the cutover continues in job_main */
		else if (!(rc == PS_OK && srv->shutting_down))
			cutover_failed(srv, job, rc == PS_OK ? NULL : &err,
			               "the run ended before everything up to the fence was applied");
	} else if (rc == PS_OK && job->state == PS_JOB_DRAINING) {
		job_transition(srv, job, PS_JOB_PAUSED, "job",
		               "drained: every change read was applied and checkpointed at %s; slot %s kept",
		               applied_text(job), job->spec->source.slot);
	} else if (rc == PS_OK && (job->state == PS_JOB_STOPPING || srv->shutting_down)) {
		/* stopping continues in job_main; a server shutdown keeps the state */
	} else if (rc == PS_OK) {
		job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job",
		               "the pipeline ended without being asked to");
	} else if (job->state == PS_JOB_STOPPING || job->state == PS_JOB_DRAINING) {
		/* failed while stopping or draining: the request still holds */
		set_last_error(job, &err, error_retryable(&err));
		if (job->state == PS_JOB_DRAINING)
			job_transition(srv, job, PS_JOB_PAUSED, "job",
			               "paused; the run ended with an error: %s (the checkpoint holds "
			               "everything applied)", err.message);
	} else {
		schedule_retry(srv, job, &err);
	}
}

/* Stopping (note 2): releases slot, publication and checkpoint. */
static void run_release(ps_server *srv, ps_job *job)
{
	char done[600];
	ps_error err;
	int rc;

	ps_error_clear(&err);
	pthread_mutex_unlock(&srv->mu);
	rc = ps_pipeline_release(job->spec, srv->state_dir, done, sizeof(done), &err);
	pthread_mutex_lock(&srv->mu);
	if (job->state != PS_JOB_STOPPING)
		return;
	if (rc == PS_OK) {
		json_decref(job->last_error);
		job->last_error = NULL;
		job_transition(srv, job, PS_JOB_STOPPED, "job", "%s; target data left as it is", done);
		return;
	}
	set_last_error(job, &err, error_retryable(&err));
	job_transition(srv, job, PS_JOB_STOPPED, "job",
	               "stopped, but not everything was released: %s. Drop by hand on the source: "
	               "SELECT pg_drop_replication_slot('%s'); DROP PUBLICATION IF EXISTS \"%s\";",
	               err.message, job->spec->source.slot, job->spec->source.publication);
}

/* Completing, after the pipeline applied everything up to the fence:
 * sequences, the compare when asked, then release slot, publication and
 * checkpoint (cutover.c). Runs outside the lock on a copy of the spec. */
static void run_cutover(ps_server *srv, ps_job *job)
{
	char fence[PS_POSITION_MAX], seqs[1500], done[600] = "", compared[200] = "", job_id[24];
	int mode = job->cutover_compare;
	ps_compare_report rep;
	ps_spec *spec = NULL;
	char *text = NULL, *result = NULL;
	ps_error err;
	json_t *report = NULL;
	int rc;

	memset(&rep, 0, sizeof(rep));
	ps_error_clear(&err);
	seqs[0] = '\0';
	pthread_mutex_lock(&job->live.mu);
	snprintf(fence, sizeof(fence), "%s", job->live.fence);
	pthread_mutex_unlock(&job->live.mu);
	snprintf(job_id, sizeof(job_id), "%s", job->id);
	rc = parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text, &err);
	pthread_mutex_unlock(&srv->mu);
	if (rc == PS_OK)
		rc = ps_cutover_sequences(spec, seqs, sizeof(seqs), &err);
	if (rc == PS_OK && mode) {
		rc = ps_cutover_compare(spec, mode, &srv->cancel_compares, &rep, &err);
		report = rc == PS_OK ? ps_compare_report_json(&rep) : NULL;
		result = report ? json_text(report) : NULL;
		if (result)
			ps_store_compare_add(srv->store, job_id, ps_time_now_ms(), result, &err);
		if (rc == PS_OK && !rep.consistent)
			rc = ps_error_set(&err, PS_EINVAL, "the %s compare found differences (`penstock job "
			                  "compares` has them)", ps_compare_mode_name(mode));
		snprintf(compared, sizeof(compared), "; %s compare: equal", ps_compare_mode_name(mode));
	}
	if (rc == PS_OK)
		rc = ps_pipeline_release(spec, srv->state_dir, done, sizeof(done), &err);
	pthread_mutex_lock(&srv->mu);
	if (job->state == PS_JOB_COMPLETING && !job->deleting) {
		if (rc == PS_OK) {
			json_decref(job->last_error);
			job->last_error = NULL;
			job->attempts = 0;
			job_transition(srv, job, PS_JOB_COMPLETED, "job",
			               "migration complete: everything up to the fence %s applied; %s%s; %s",
			               fence, seqs, compared, done);
		} else {
			cutover_failed(srv, job, &err, "the cutover's last steps");
		}
	}
	json_decref(report);
	free(result);
	ps_compare_report_free(&rep);
	ps_spec_free(spec);
	free(text);
}

/* Failed: waits for the retry time, a request, or shutdown. */
static void wait_retry(ps_server *srv, ps_job *job)
{
	while (job->state == PS_JOB_FAILED && !srv->shutting_down && !job->deleting) {
		int64_t now = ps_time_now_ms();
		struct timespec until;

		if (now >= job->next_retry_ms) {
			job_transition(srv, job, PS_JOB_STARTING, "job", "retry %d", job->attempts);
			return;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (job->next_retry_ms - now) / 1000;
		until.tv_nsec += ((job->next_retry_ms - now) % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&srv->changed, &srv->mu, &until);
	}
}

static void *job_main(void *arg)
{
	ps_job *job = arg;
	ps_server *srv = job->srv;

	pthread_mutex_lock(&srv->mu);
	while (!srv->shutting_down && !job->deleting) {
		if (job->state == PS_JOB_CHECKING)
			run_checks(srv, job);
		else if (job->state == PS_JOB_STARTING || job->state == PS_JOB_RUNNING)
			run_pipeline(srv, job);
		else if (job->state == PS_JOB_STOPPING)
			run_release(srv, job);
		else if (job->state == PS_JOB_COMPLETING)
			run_cutover(srv, job);
		else if (job->state == PS_JOB_FAILED)
			wait_retry(srv, job);
		else if (job->state == PS_JOB_DRAINING)
			job_transition(srv, job, PS_JOB_PAUSED, "job", "nothing was running; paused");
		else
			break;   /* a resting state */
	}
	job->thread_alive = false;
	pthread_cond_broadcast(&srv->changed);
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* Starts the job's supervisor, fn(arg), unless one is at work (srv->mu
 * held); *started says whether it did. fn ends in job_main. */
static int job_spawn_with(ps_server *srv, ps_job *job, void *(*fn)(void *), void *arg,
                          bool *started)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	*started = false;
	if (job->thread_alive || srv->shutting_down)
		return PS_OK;   /* shutting down: the next server start picks the state up */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	job->thread_alive = true;
	rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		job->thread_alive = false;
		ps_log_error("job %s: cannot start its supervisor thread: %s", job->spec->name,
		             strerror(rc));
		return PS_ERR;
	}
	*started = true;
	return PS_OK;
}

static int job_spawn(ps_server *srv, ps_job *job)
{
	bool started;

	return job_spawn_with(srv, job, job_main, job, &started);
}

/* ==== rendering ============================================================ */

json_t *ps_job_figures(ps_job *job)
{
	return job->running ? status_snapshot(job) : json_incref(job->last_status);
}

static json_t *time_json(int64_t ms)
{
	char buf[40];

	if (!ms)
		return json_null();
	ps_time_iso(buf, sizeof(buf), ms);
	return json_string(buf);
}

/* A supervisor is reading job->spec right now (prechecks, releasing, the
 * cutover): a modification waits. A pipeline reads its own copy and gets
 * the live parts through job->live. srv->mu held. */
static bool spec_in_use(const ps_job *job)
{
	return job->thread_alive && (job->state == PS_JOB_CHECKING || job->state == PS_JOB_STOPPING ||
	                             job->state == PS_JOB_COMPLETING);
}

/* The actions the job's state allows now; modify waits while a supervisor
 * reads the spec. srv->mu held. */
static json_t *allowed_json(ps_job *job)
{
	json_t *list = json_array();

	for (int a = 0; a < PS_NACTIONS; a++)
		if (ps_job_allows(job->state, a) && !(a == PS_ACT_MODIFY && spec_in_use(job)) &&
		    !(a == PS_ACT_COMPLETE && job->spec->type != PS_JOB_MIGRATION))
			json_array_append_new(list, json_string(ps_job_action_name(a)));
	return list;
}

/* The retry figures (docs/api.md): attempts and next_retry_at at the top,
 * and the retry object with the policy in force. */
static void retry_json(json_t *o, ps_job *job)
{
	json_t *retry = json_object_get(o, "retry");
	json_t *next = job->state == PS_JOB_FAILED ? time_json(job->next_retry_ms) : json_null();

	json_object_set_new(o, "attempts", json_integer(job->attempts));
	json_object_set(o, "next_retry_at", next);
	if (json_is_object(retry)) {
		json_object_set_new(retry, "max_attempts", json_integer(job->spec->retry_max_attempts));
		json_object_set_new(retry, "initial_backoff_ms",
		                    json_integer(job->spec->retry_initial_backoff_ms));
		json_object_set_new(retry, "max_backoff_ms", json_integer(job->spec->retry_max_backoff_ms));
	}
	json_decref(next);
}

/* The job object of the API (docs/api.md), srv->mu held. */
static json_t *job_json(ps_job *job)
{
	json_t *o, *figures, *allowed = allowed_json(job), *spec, *tables;
	json_error_t jerr;

	figures = ps_job_figures(job);
	if (!figures) {
		ps_run_status empty;
		ps_run_status_init(&empty);
		figures = ps_run_status_json(&empty);
		ps_run_status_destroy(&empty);
	}
	tables = json_object_get(figures, "tables");
	tables = json_is_array(tables) ? json_incref(tables) : json_array();
	spec = json_loads(job->spec_text, 0, &jerr);
	/* o? everywhere figures are read: a stored status from another version
	 * may lack a key, and one missing value must not blank the whole job */
	o = json_pack("{s:s, s:s, s:s, s:s, s:o?, s:s, s:o?, s:o?, s:o?, s:o?, s:o?, s:o?, s:o, s:o, s:o,"
	              " s:o, s:{s:i, s:o}, s:o, s:o, s:o, s:o}",
	              "id", job->id, "name", job->spec->name, "type", ps_job_type_name(job->spec->type),
	              "state", ps_job_state_name(job->state),
	              "phase", job->running || job->state == PS_JOB_RUNNING || job->state == PS_JOB_DRAINING
	                               ? json_incref(json_object_get(figures, "phase"))
	                               : json_null(),
	              "health", ps_health_name(job->health),
	              "cdc_state", json_incref(json_object_get(figures, "cdc_state")),
	              "positions", json_incref(json_object_get(figures, "positions")),
	              "lag", json_incref(json_object_get(figures, "lag")),
	              "rates", json_incref(json_object_get(figures, "rates")),
	              "counters", json_incref(json_object_get(figures, "counters")),
	              "retained_bytes", json_incref(json_object_get(figures, "retained_bytes")),
	              "tables", tables,
	              "last_error", job->last_error ? json_incref(job->last_error) : json_null(),
	              "checks", job->checks ? json_incref(job->checks) : json_null(),
	              "allowed_actions", allowed,
	              "retry", "attempts", job->attempts, "next_at",
	              job->state == PS_JOB_FAILED ? time_json(job->next_retry_ms) : json_null(),
	              "slot", json_string(job->spec->source.slot),
	              "created_at", time_json(job->created_at), "updated_at", time_json(job->updated_at),
	              "spec", spec ? spec : json_null());
	json_decref(figures);
	/* the limits in force now: a PATCH changes them at once (ratelimit.h) */
	json_object_set_new(o, "limits",
	                    json_pack("{s:I, s:I, s:i}", "rows_per_sec",
	                              (json_int_t)atomic_load(&job->live.limits.rows_per_sec),
	                              "bytes_per_sec",
	                              (json_int_t)atomic_load(&job->live.limits.bytes_per_sec),
	                              "parallel", atomic_load(&job->live.limits.parallel)));
	retry_json(o, job);
	return o;
}

static void answer_job(ps_api_result *r, int status, ps_job *job)
{
	r->status = status;
	json_decref(r->body);
	r->body = job_json(job);
}

/* ==== API: create, list, get ============================================== */

static bool json_field_path(const char *msg, const char *origin, char *field, size_t len)
{
	size_t olen = strlen(origin);
	const char *end;

	field[0] = '\0';
	if (strncmp(msg, origin, olen) != 0 || strncmp(msg + olen, ": ", 2) != 0)
		return false;
	msg += olen + 2;
	end = strstr(msg, ": ");
	if (!end || (size_t)(end - msg) >= len)
		return false;
	snprintf(field, len, "%.*s", (int)(end - msg), msg);
	return true;
}

/* 400 for a spec the parser refused, with the field path when there is one. */
static void bad_spec(ps_api_result *r, const ps_error *err, const char *origin)
{
	char field[200];

	ps_api_error(r, 400, "invalid_spec", "%s", err->message);
	if (json_field_path(err->message, origin, field, sizeof(field)))
		ps_api_error_detail(r, "field", json_string(field));
}

static ps_job *job_new(ps_server *srv, const char *id, char *spec_text, ps_spec *spec)
{
	ps_job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	job->srv = srv;
	snprintf(job->id, sizeof(job->id), "%s", id);
	job->spec_text = spec_text;
	job->spec = spec;
	atomic_init(&job->stop, 0);
	ps_run_status_init(&job->status);
	ps_live_init(&job->live, spec);
	return job;
}

static void job_free(ps_job *job)
{
	if (!job)
		return;
	free(job->spec_text);
	ps_spec_free(job->spec);
	json_decref(job->checks);
	json_decref(job->last_error);
	json_decref(job->last_status);
	ps_run_status_destroy(&job->status);
	ps_live_destroy(&job->live);
	free(job);
}

static void job_append(ps_server *srv, ps_job *job)
{
	ps_job **pp = &srv->jobs;

	while (*pp)
		pp = &(*pp)->next;
	*pp = job;
}

static void new_id(char *buf, size_t len)
{
	char hex[13];
	ps_error err;

	ps_error_clear(&err);
	if (ps_random_hex(hex, sizeof(hex), 6, &err) != PS_OK)   /* unique enough without it */
		snprintf(hex, sizeof(hex), "%012llx",
		         (unsigned long long)(ps_time_now_ms() ^ ((int64_t)rand() << 20)) & 0xffffffffffffull);
	snprintf(buf, len, "job_%s", hex);
}

/* Parses a spec document; the stored text is its compact form. */
static int parse_spec(const char *text, size_t len, const char *origin, ps_spec **spec,
                      char **stored, ps_error *err)
{
	json_error_t jerr;
	json_t *doc;
	int rc;

	*spec = NULL;
	*stored = NULL;
	rc = ps_spec_parse(spec, text, len, origin, err);
	if (rc != PS_OK)
		return rc;
	doc = json_loadb(text, len, 0, &jerr);
	*stored = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!*stored) {
		ps_spec_free(*spec);
		*spec = NULL;
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	return PS_OK;
}

void ps_jobs_create(ps_server *srv, const char *body, size_t len, const char *actor,
                    ps_api_result *r)
{
	ps_spec *spec = NULL;
	char *text = NULL, id[24];
	ps_job *job;
	ps_error err;

	ps_error_clear(&err);
	if (parse_spec(body, len, "request body", &spec, &text, &err) != PS_OK) {
		bad_spec(r, &err, "request body");
		return;
	}
	pthread_mutex_lock(&srv->mu);
	for (ps_job *j = srv->jobs; j; j = j->next)
		if (strcmp(j->spec->name, spec->name) == 0) {
			ps_api_error(r, 409, "conflict", "a job named '%s' %s; pick another name, or delete "
			             "that job first", spec->name,
			             j->deleting ? "is being deleted" : "exists already");
			goto cleanup;
		}
	for (ps_job *j = srv->jobs; j; j = j->next)
		if (strcmp(j->spec->source.slot, spec->source.slot) == 0 &&
		    strcmp(j->spec->source.parsed.redacted, spec->source.parsed.redacted) == 0) {
			ps_api_error(r, 409, "conflict", "job '%s' already uses slot %s on this source; "
			             "set source.slot to another name", j->spec->name, spec->source.slot);
			goto cleanup;
		}
	new_id(id, sizeof(id));
	job = job_new(srv, id, text, spec);
	if (!job) {
		ps_api_error(r, 500, "internal", "out of memory");
		goto cleanup;
	}
	text = NULL;
	spec = NULL;
	job->created_at = job->updated_at = ps_time_now_ms();
	job->state = PS_JOB_CREATED;
	if (job_save(srv, job, "transition", actor, -1, PS_JOB_CREATED, "created") != PS_OK) {
		ps_api_error(r, 500, "internal", "cannot store the job (the server log says why); "
		             "nothing was created");
		job_free(job);
		goto cleanup;
	}
	job_append(srv, job);
	answer_job(r, 201, job);
cleanup:
	pthread_mutex_unlock(&srv->mu);
	ps_spec_free(spec);
	free(text);
}

void ps_jobs_list(ps_server *srv, ps_api_result *r)
{
	json_t *jobs = json_array();

	pthread_mutex_lock(&srv->mu);
	for (ps_job *j = srv->jobs; j; j = j->next)
		if (!j->deleting)
			json_array_append_new(jobs, job_json(j));
	pthread_mutex_unlock(&srv->mu);
	r->status = 200;
	r->body = json_pack("{s:o}", "jobs", jobs);
}

void ps_jobs_get(ps_server *srv, const char *id, ps_api_result *r)
{
	ps_job *job;

	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (job)
		answer_job(r, 200, job);
	else
		not_found(r, id);
	pthread_mutex_unlock(&srv->mu);
}

/* The id of the job named or numbered id, for calls that then only read
 * the store (the job may be deleted meanwhile); else answers 404. */
static bool job_id_of(ps_server *srv, const char *id, char *job_id, size_t len, ps_api_result *r)
{
	ps_job *job;

	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (job)
		snprintf(job_id, len, "%s", job->id);
	pthread_mutex_unlock(&srv->mu);
	if (!job)
		not_found(r, id);
	return job != NULL;
}

void ps_jobs_events(ps_server *srv, const char *id, int64_t after, int limit, ps_api_result *r)
{
	char job_id[24];
	json_t *events;
	ps_error err;

	if (!job_id_of(srv, id, job_id, sizeof(job_id), r))
		return;
	ps_error_clear(&err);
	events = ps_store_events(srv->store, job_id, after, limit, &err);
	if (!events) {
		ps_api_error(r, 500, "internal", "%s", err.message);
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:s, s:o}", "job", job_id, "events", events);
}

/* ==== API: actions ========================================================= */

static void refuse(ps_api_result *r, ps_job *job, int action)
{
	char allowed[200];
	json_t *list = allowed_json(job);

	ps_job_allowed_list(job->state, allowed, sizeof(allowed));
	ps_api_error(r, 409, "invalid_state", "job '%s' is %s: %s is not allowed now; allowed: %s",
	             job->spec->name, ps_job_state_name(job->state), ps_job_action_name(action),
	             allowed);
	ps_api_error_detail(r, "state", json_string(ps_job_state_name(job->state)));
	ps_api_error_detail(r, "allowed_actions", list);
}

void ps_jobs_action(ps_server *srv, const char *id, int action, const char *actor,
                    ps_api_result *r)
{
	ps_job *job;

	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (!job) {
		not_found(r, id);
		goto cleanup;
	}
	if (!ps_job_allows(job->state, action)) {
		refuse(r, job, action);
		goto cleanup;
	}
	if (action == PS_ACT_START || action == PS_ACT_RESUME || action == PS_ACT_STOP)
		job->health = PS_HEALTH_OK;   /* a degraded run's health ends with it */
	switch (action) {
	case PS_ACT_CHECK:
		job->start_after_check = false;
		job_transition(srv, job, PS_JOB_CHECKING, actor, "check requested");
		break;
	case PS_ACT_START:
		json_decref(job->last_error);
		job->last_error = NULL;
		job->attempts = 0;
		if (job->state == PS_JOB_READY) {
			job_transition(srv, job, PS_JOB_STARTING, actor, "start requested; prechecks passed");
		} else {
			job->start_after_check = true;
			job_transition(srv, job, PS_JOB_CHECKING, actor,
			               "start requested; running the prechecks first");
		}
		break;
	case PS_ACT_PAUSE:
		if (job->running) {
			job_transition(srv, job, PS_JOB_DRAINING, actor,
			               "pause requested: no new reads; applying what was read");
			atomic_store(&job->stop, 1);
		} else {
			job_transition(srv, job, PS_JOB_PAUSED, actor, "pause requested; nothing was running");
		}
		break;
	case PS_ACT_RESUME:
		job->attempts = 0;
		job_transition(srv, job, PS_JOB_STARTING, actor, "resume requested");
		break;
	case PS_ACT_STOP:
		job_transition(srv, job, PS_JOB_STOPPING, actor,
		               "stop requested: draining, then dropping slot %s and publication %s",
		               job->spec->source.slot, job->spec->source.publication);
		atomic_store(&job->stop, 1);
		break;
	default:
		refuse(r, job, action);
		goto cleanup;
	}
	if (ps_job_state_active(job->state) && job_spawn(srv, job) != PS_OK) {
		ps_api_error(r, 500, "internal", "cannot start the job's supervisor thread");
		goto cleanup;
	}
	answer_job(r, 202, job);
cleanup:
	pthread_mutex_unlock(&srv->mu);
}

/* ==== API: complete ======================================================== */

/* The body of POST .../complete: empty, or {"compare": mode | true | false,
 * "reason": "..."}; *mode is 0 when no compare is asked for. */
static bool parse_complete_req(const char *body, size_t len, int *mode, ps_api_result *r)
{
	json_t *doc, *v;
	const char *key, *bad = NULL, *why = NULL;

	*mode = 0;
	if (len == 0)
		return true;
	doc = ps_api_body_object(body, len, "expected a JSON object", r);
	if (!doc)
		return false;
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "compare") == 0) {
			if (json_is_boolean(v))
				*mode = json_is_true(v) ? PS_COMPARE_FULL : 0;
			else if (!json_is_string(v) || ps_compare_mode_parse(json_string_value(v), mode) != PS_OK)
				why = "expected \"count\", \"full\", \"sample\", true or false";
		} else if (strcmp(key, "reason") == 0) {
			if (!json_is_string(v))
				why = "expected a string";
		} else {
			why = "unknown field; known: compare, reason";
		}
		if (why) {
			bad = key;
			break;
		}
	}
	if (bad)
		ps_api_bad_field(r, bad, why);
	json_decref(doc);
	return bad == NULL;
}

/* Why a job that the lifecycle lets complete cannot do it right now, or
 * NULL. srv->mu held. */
static const char *complete_blocker(ps_job *job, char *buf, size_t len)
{
	double lag;
	int phase;

	if (job->spec->type != PS_JOB_MIGRATION) {
		snprintf(buf, len, "only a migration job completes; job '%s' is a %s job (stop it "
		         "instead)", job->spec->name, ps_job_type_name(job->spec->type));
		return buf;
	}
	if (!job->running) {
		snprintf(buf, len, "job '%s' has no running pipeline to fence", job->spec->name);
		return buf;
	}
	if (atomic_load(&job->live.busy)) {
		snprintf(buf, len, "a table is being added to job '%s' (backfill under way); complete it "
		         "once that is done", job->spec->name);
		return buf;
	}
	if (job->state == PS_JOB_READY_TO_COMPLETE)
		return NULL;
	pthread_mutex_lock(&job->status.mu);
	lag = job->status.lag_seconds;
	phase = job->status.phase;
	pthread_mutex_unlock(&job->status.mu);
	if (phase != PS_PHASE_STREAMING) {
		snprintf(buf, len, "job '%s' is still in its %s phase; complete it once it streams",
		         job->spec->name, ps_phase_name(phase) ? ps_phase_name(phase) : "first");
		return buf;
	}
	if (lag * 1000.0 >= (double)job->spec->complete_max_lag_ms) {
		snprintf(buf, len, "job '%s' lags %.1f s behind the source, over complete.max_lag_ms "
		         "(%lld ms); wait for ready_to_complete", job->spec->name, lag,
		         job->spec->complete_max_lag_ms);
		return buf;
	}
	return NULL;
}

void ps_jobs_complete(ps_server *srv, const char *id, const char *body, size_t len,
                      const char *actor, ps_api_result *r)
{
	char why[300];
	const char *blocker;
	ps_job *job;
	int mode;

	if (!parse_complete_req(body, len, &mode, r))
		return;
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (!job) {
		not_found(r, id);
		goto cleanup;
	}
	if (!ps_job_allows(job->state, PS_ACT_COMPLETE)) {
		refuse(r, job, PS_ACT_COMPLETE);
		goto cleanup;
	}
	blocker = complete_blocker(job, why, sizeof(why));
	if (blocker) {
		ps_api_error(r, 409, "invalid_state", "%s", blocker);
		ps_api_error_detail(r, "state", json_string(ps_job_state_name(job->state)));
		ps_api_error_detail(r, "allowed_actions", allowed_json(job));
		goto cleanup;
	}
	job->cutover_compare = mode;
	job_transition(srv, job, PS_JOB_COMPLETING, actor,
	               "complete requested: fencing at the source's current position, applying up to "
	               "it, then syncing sequences%s and releasing slot %s, publication %s and the "
	               "checkpoint", mode ? ", comparing" : "", job->spec->source.slot,
	               job->spec->source.publication);
	atomic_store(&job->live.complete, 1);
	answer_job(r, 202, job);
cleanup:
	pthread_mutex_unlock(&srv->mu);
}

/* ==== API: recover ========================================================= */

typedef struct recover_start {
	ps_job *job;
	ps_recover_plan plan;
	char actor[40];
} recover_start;

/* The recover step of a supervisor (recover.h note 1), srv->mu held: runs
 * ps_recover_prepare outside the lock and records what it did; on failure
 * the job is failed_permanently again with the reason. */
static void run_recover(ps_server *srv, ps_job *job, const recover_start *rs)
{
	const char *name = ps_recover_strategy_name(rs->plan.strategy);
	ps_recover_result res;
	ps_spec *spec = NULL;
	char *text = NULL;
	ps_error err;
	int rc;

	/* a copy: a PATCH may replace job->spec while the job is starting */
	ps_error_clear(&err);
	rc = parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text, &err);
	pthread_mutex_unlock(&srv->mu);
	if (rc == PS_OK)
		rc = ps_recover_prepare(spec, srv->state_dir, &rs->plan, &res, &err);
	ps_spec_free(spec);
	free(text);
	pthread_mutex_lock(&srv->mu);
	if (rc == PS_OK && rs->plan.strategy == PS_RECOVER_SKIP) {
		job_gap_event(srv, job, rs->actor, res.from, res.to,
		              "recover skip: the changes committed after %s up to %s were skipped and "
		              "are not in the target%s", res.from, res.to,
		              res.slot_created ? " (the slot was created again)" : "");
	} else if (rc == PS_OK) {
		job_event(srv, job, "resync", "recover resync: new slot at %s; %zu table%s emptied in "
		          "the target and loaded again from a new snapshot, %zu kept", res.to,
		          res.tables_loaded, res.tables_loaded == 1 ? "" : "s", res.tables_kept);
		if (res.tables_kept && res.from[0])
			job_gap_event(srv, job, rs->actor, res.from, res.to,
			              "recover resync: the changes of the %zu table%s not loaded again, "
			              "committed after %s up to %s, were skipped and are not in the target",
			              res.tables_kept, res.tables_kept == 1 ? "" : "s", res.from, res.to);
	}
	if (job->state != PS_JOB_STARTING || job->deleting)
		return;   /* stopped, paused or deleted meanwhile: that request holds */
	if (rc != PS_OK) {
		set_last_error_hint(job, &err, false, "the recover step failed before the job ran: "
		                    "fix what the message names, then recover again");
		job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job", "recover %s failed: %s",
		               name, err.message);
	}
}

static void *recover_main(void *arg)
{
	recover_start *rs = arg;
	ps_job *job = rs->job;
	ps_server *srv = job->srv;

	pthread_mutex_lock(&srv->mu);
	if (job->state == PS_JOB_STARTING && !job->deleting && !srv->shutting_down)
		run_recover(srv, job, rs);
	pthread_mutex_unlock(&srv->mu);
	ps_recover_plan_free(&rs->plan);
	free(rs);
	return job_main(job);
}

void ps_jobs_recover(ps_server *srv, const char *id, const char *body, size_t len,
                     const char *actor, ps_api_result *r)
{
	recover_start *rs = calloc(1, sizeof(*rs));
	const char *sqlstate;
	bool started = false;
	ps_job *job;

	if (!rs) {
		ps_api_error(r, 500, "internal", "out of memory");
		return;
	}
	if (!ps_recover_parse(body, len, &rs->plan, r)) {
		free(rs);
		return;
	}
	snprintf(rs->actor, sizeof(rs->actor), "%s", actor);
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (!job) {
		not_found(r, id);
		goto cleanup;
	}
	/* a request that can never apply to this job is bad whatever the state */
	if (rs->plan.strategy == PS_RECOVER_RESYNC && job->spec->type == PS_JOB_CDC) {
		ps_api_error(r, 400, "invalid_request", "request body: strategy: job '%s' is of type "
		             "cdc, which copies no snapshot; use \"retry\" or \"skip\"", job->spec->name);
		ps_api_error_detail(r, "field", json_string("strategy"));
		goto cleanup;
	}
	if (!ps_job_allows(job->state, PS_ACT_RECOVER) || job->thread_alive) {
		refuse(r, job, PS_ACT_RECOVER);
		goto cleanup;
	}
	sqlstate = json_string_value(json_object_get(job->last_error, "sqlstate"));
	snprintf(rs->plan.last_sqlstate, sizeof(rs->plan.last_sqlstate), "%s", sqlstate ? sqlstate : "");
	rs->job = job;
	json_decref(job->last_error);
	job->last_error = NULL;
	job->attempts = 0;
	job->health = PS_HEALTH_OK;
	if (rs->plan.strategy == PS_RECOVER_SKIP)
		job_transition(srv, job, PS_JOB_STARTING, actor, "recover skip requested: continuing "
		               "from %s; the changes in between are skipped",
		               rs->plan.position[0] ? rs->plan.position : "the end of the source's log");
	else if (rs->plan.strategy == PS_RECOVER_RESYNC)
		job_transition(srv, job, PS_JOB_STARTING, actor, "recover resync requested: a new slot "
		               "and a new snapshot of %s", rs->plan.ntables ? "the named tables"
		                                                            : "every table");
	else
		job_transition(srv, job, PS_JOB_STARTING, actor, "recover retry requested: running "
		               "again from the checkpoint");
	if (rs->plan.strategy == PS_RECOVER_RETRY) {
		if (job_spawn(srv, job) != PS_OK) {
			ps_api_error(r, 500, "internal", "cannot start the job's supervisor thread");
			goto cleanup;
		}
	} else {
		if (job_spawn_with(srv, job, recover_main, rs, &started) != PS_OK) {
			ps_api_error(r, 500, "internal", "cannot start the job's supervisor thread");
			goto cleanup;
		}
		if (started)
			rs = NULL;   /* the supervisor owns it */
	}
	answer_job(r, 202, job);
cleanup:
	pthread_mutex_unlock(&srv->mu);
	if (rs) {
		ps_recover_plan_free(&rs->plan);
		free(rs);
	}
}

/* ==== API: compare ========================================================= */

typedef struct compare_req {
	int mode;
	int sample_percent;
	long long chunk_rows;
	int max_report;
	bool repair;
	char **tables;
	size_t ntables;
} compare_req;

static void compare_req_free(compare_req *q)
{
	for (size_t i = 0; i < q->ntables; i++)
		free(q->tables[i]);
	free(q->tables);
}

/* The body of POST .../compare: every field optional (docs/api.md). */
static bool parse_compare_req(const char *body, size_t len, compare_req *q, ps_api_result *r)
{
	json_t *doc = NULL, *v;
	const char *key, *bad = NULL, *why = NULL;

	memset(q, 0, sizeof(*q));
	q->mode = PS_COMPARE_FULL;
	q->sample_percent = 10;
	q->chunk_rows = 10000;
	q->max_report = 100;
	if (len == 0)
		return true;
	doc = ps_api_body_object(body, len, "expected a JSON object", r);
	if (!doc)
		return false;
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "mode") == 0) {
			if (!json_is_string(v) || ps_compare_mode_parse(json_string_value(v), &q->mode) != PS_OK)
				why = "expected \"count\", \"full\" or \"sample\"";
		} else if (strcmp(key, "sample_percent") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100)
				why = "expected an integer from 1 to 100";
			else
				q->sample_percent = (int)json_integer_value(v);
		} else if (strcmp(key, "chunk_rows") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 100)
				why = "expected an integer >= 100";
			else
				q->chunk_rows = json_integer_value(v);
		} else if (strcmp(key, "max_report") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000)
				why = "expected an integer from 0 to 100000";
			else
				q->max_report = (int)json_integer_value(v);
		} else if (strcmp(key, "repair") == 0) {
			if (!json_is_boolean(v))
				why = "expected true or false";
			else
				q->repair = json_is_true(v);
		} else if (strcmp(key, "tables") == 0) {
			size_t i;
			json_t *t;
			if (!json_is_array(v) || json_array_size(v) == 0) {
				why = "expected a non-empty array of \"schema.table\" patterns";
			} else {
				q->tables = calloc(json_array_size(v), sizeof(char *));
				json_array_foreach(v, i, t) {
					if (!json_is_string(t)) {
						why = "expected strings";
						break;
					}
					q->tables[q->ntables++] = strdup(json_string_value(t));
				}
			}
		} else if (strcmp(key, "reason") != 0) {
			why = "unknown field; known: mode, tables, sample_percent, chunk_rows, max_report, "
			      "repair, reason";
		}
		if (why) {
			bad = key;
			break;
		}
	}
	if (bad) {
		ps_api_bad_field(r, bad, why);
		compare_req_free(q);
	}
	json_decref(doc);
	return bad == NULL;
}

void ps_jobs_compare(ps_server *srv, const char *id, const char *body, size_t len,
                     const char *actor, ps_api_result *r)
{
	compare_req q;
	ps_compare_opts o;
	ps_compare_report rep;
	ps_spec *spec = NULL;
	char *text = NULL, *src_pw = NULL, *dst_pw = NULL, *result = NULL, job_id[24];
	bool running = false;
	ps_job *job;
	ps_error err;
	json_t *report = NULL;
	int64_t seq;
	int rc = PS_OK;

	memset(&rep, 0, sizeof(rep));
	ps_error_clear(&err);
	if (!parse_compare_req(body, len, &q, r))
		return;
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (job) {
		/* a private copy: the job may be modified or deleted meanwhile */
		rc = parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text, &err);
		snprintf(job_id, sizeof(job_id), "%s", job->id);
		running = job->state == PS_JOB_RUNNING && job->phase == PS_PHASE_STREAMING;
	}
	pthread_mutex_unlock(&srv->mu);
	if (!job) {
		not_found(r, id);
		goto cleanup;
	}
	if (rc != PS_OK) {
		ps_api_error(r, 500, "internal", "%s", err.message);
		goto cleanup;
	}
	if (!q.ntables && spec->nexclude) {
		ps_api_error(r, 400, "invalid_request", "job '%s' excludes tables (tables.exclude), so "
		             "its include patterns do not say what to compare; name the tables: "
		             "{\"tables\": [\"public.orders\", ...]}", spec->name);
		goto cleanup;
	}
	if (ps_spec_password(&spec->source, "source", &src_pw, &err) != PS_OK ||
	    ps_spec_password(&spec->target, "target", &dst_pw, &err) != PS_OK) {
		ps_api_error(r, 400, "invalid_spec", "%s", err.message);
		goto cleanup;
	}
	ps_compare_opts_defaults(&o);
	o.source_url = spec->source.url;
	o.source_password = src_pw;
	o.target_url = spec->target.url;
	o.target_password = dst_pw;
	o.tables = q.ntables ? (const char *const *)q.tables : (const char *const *)spec->include;
	o.ntables = q.ntables ? q.ntables : spec->ninclude;
	o.mode = q.mode;
	o.sample_percent = q.sample_percent;
	o.chunk_rows = q.chunk_rows;
	o.max_report = q.max_report;
	o.repair = q.repair;
	o.job = running ? spec->name : NULL;   /* lag is waited out only while it streams */
	o.cancel = &srv->cancel_compares;      /* a server stopping ends it */
	ps_log_info("job %s: compare (%s%s) requested by %s", spec->name, ps_compare_mode_name(q.mode),
	            q.repair ? ", repair" : "", actor);
	rc = ps_compare_run(&o, &rep, &err);
	if (rc != PS_OK) {
		char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 4];
		ps_error_format(&err, msg, sizeof(msg));
		ps_api_error(r, rc == PS_EINVAL ? 400 : 502, rc == PS_EINVAL ? "invalid_request" : "compare_failed",
		             "compare: %s", msg);
		goto cleanup;
	}
	report = ps_compare_report_json(&rep);
	result = json_text(report);
	seq = result ? ps_store_compare_add(srv->store, job_id, ps_time_now_ms(), result, &err) : -1;
	if (seq < 0) {
		ps_api_error(r, 500, "internal", "cannot store the compare result: %s", err.message);
		goto cleanup;
	}
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, job_id);
	if (job)
		job_event(srv, job, "compare", "%s compare by %s: %s%s", ps_compare_mode_name(q.mode),
		          actor, rep.equal ? "equal" : rep.consistent ? "differences repaired" : "DIFFERENT",
		          q.repair ? " (repair asked)" : "");
	pthread_mutex_unlock(&srv->mu);
	r->status = 200;
	r->body = json_pack("{s:I, s:O}", "seq", (json_int_t)seq, "compare", report);
cleanup:
	json_decref(report);
	free(result);
	ps_compare_report_free(&rep);
	ps_secret_free(src_pw);
	ps_secret_free(dst_pw);
	ps_spec_free(spec);
	free(text);
	compare_req_free(&q);
}

void ps_jobs_compares(ps_server *srv, const char *id, int limit, ps_api_result *r)
{
	char job_id[24];
	json_t *list;
	ps_error err;

	if (!job_id_of(srv, id, job_id, sizeof(job_id), r))
		return;
	ps_error_clear(&err);
	list = ps_store_compares(srv->store, job_id, limit, &err);
	if (!list) {
		ps_api_error(r, 500, "internal", "%s", err.message);
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:s, s:o}", "job", job_id, "compares", list);
}

/* ==== API: modify and delete ============================================== */

/* RFC 7386 JSON merge patch of target by patch (target is changed). */
static void merge_patch(json_t *target, json_t *patch)
{
	const char *key;
	json_t *value;

	json_object_foreach(patch, key, value) {
		json_t *cur = json_object_get(target, key);
		if (json_is_null(value))
			json_object_del(target, key);
		else if (json_is_object(value) && json_is_object(cur))
			merge_patch(cur, value);
		else
			json_object_set(target, key, value);
	}
}

/* The job holds a slot and a checkpoint in these states. */
static bool holds_checkpoint(int state)
{
	switch (state) {
	case PS_JOB_CREATED:
	case PS_JOB_CHECKING:
	case PS_JOB_CHECK_FAILED:
	case PS_JOB_READY:
	case PS_JOB_STOPPED:
	case PS_JOB_COMPLETED:
		return false;
	default:
		return true;
	}
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What may not change while the job holds a checkpoint: what the
 * checkpoint's fingerprint and the slot stand for. The source and the target
 * are compared as the checkpoint identifies them (scheme, host, port,
 * database), so the user or connection parameters may change. NULL when
 * nothing. */
static const char *identity_change(const ps_spec *a, const ps_spec *b)
{
	ps_identity ia, ib;

	if (a->type != b->type)
		return "type";
	ps_identity_from_spec(&ia, a);
	ps_identity_from_spec(&ib, b);
	if (strcmp(ia.source, ib.source) != 0)
		return "source.url";
	if (!same_str(a->source.slot, b->source.slot))
		return "source.slot";
	if (!same_str(a->source.publication, b->source.publication))
		return "source.publication";
	if (strcmp(ia.target, ib.target) != 0)
		return "target.url";
	return NULL;   /* tables may change: a running job adds and removes them live */
}

/* What of a modification reaches a running pipeline at once (pipeline.h
 * ps_live), for the event; "" when nothing. */
static void live_changes(const ps_spec *a, const ps_spec *b, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	if (a->limit_rows_per_sec != b->limit_rows_per_sec)
		used += (size_t)snprintf(buf + used, len - used, "%slimits.rows_per_sec %lld -> %lld",
		                         used ? ", " : "", a->limit_rows_per_sec, b->limit_rows_per_sec);
	if (used < len && a->limit_bytes_per_sec != b->limit_bytes_per_sec)
		used += (size_t)snprintf(buf + used, len - used, "%slimits.bytes_per_sec %lld -> %lld",
		                         used ? ", " : "", a->limit_bytes_per_sec, b->limit_bytes_per_sec);
	if (used < len && a->snapshot_parallel != b->snapshot_parallel)
		used += (size_t)snprintf(buf + used, len - used, "%ssnapshot.parallel %d -> %d",
		                         used ? ", " : "", a->snapshot_parallel, b->snapshot_parallel);
	if (used < len && a->complete_max_lag_ms != b->complete_max_lag_ms)
		used += (size_t)snprintf(buf + used, len - used, "%scomplete.max_lag_ms %lld -> %lld",
		                         used ? ", " : "", a->complete_max_lag_ms, b->complete_max_lag_ms);
	if (used < len && !(ps_strv_equal(a->include, a->ninclude, b->include, b->ninclude) &&
	                    ps_strv_equal(a->exclude, a->nexclude, b->exclude, b->nexclude)))
		snprintf(buf + used, len - used, "%stables (the job's events say when each change takes "
		         "effect)", used ? ", " : "");
}

void ps_jobs_modify(ps_server *srv, const char *id, const char *body, size_t len,
                    const char *actor, ps_api_result *r)
{
	json_t *patch = NULL, *doc = NULL;
	json_error_t jerr;
	char *merged = NULL, *text = NULL, live[300];
	ps_spec *spec = NULL;
	const char *changed;
	ps_job *job;
	ps_error err;

	ps_error_clear(&err);
	patch = ps_api_body_object(body, len, "expected a JSON object (a merge patch of the spec)", r);
	if (!patch)
		return;
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (!job) {
		not_found(r, id);
		goto cleanup;
	}
	if (!ps_job_allows(job->state, PS_ACT_MODIFY)) {
		refuse(r, job, PS_ACT_MODIFY);
		goto cleanup;
	}
	doc = json_loads(job->spec_text, JSON_PRESERVE_ORDER, &jerr);
	if (!doc) {
		ps_api_error(r, 500, "internal", "the stored spec does not parse: %s", jerr.text);
		goto cleanup;
	}
	merge_patch(doc, patch);
	merged = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!merged || parse_spec(merged, strlen(merged), "spec after the patch", &spec, &text, &err) != PS_OK) {
		bad_spec(r, &err, "spec after the patch");
		goto cleanup;
	}
	if (strcmp(spec->name, job->spec->name) != 0) {
		ps_api_error(r, 400, "invalid_spec", "name: a job's name cannot change; create a new job");
		ps_api_error_detail(r, "field", json_string("name"));
		goto cleanup;
	}
	changed = identity_change(job->spec, spec);
	if (changed && holds_checkpoint(job->state)) {
		ps_api_error(r, 409, "invalid_state",
		             "%s cannot change while job '%s' is %s: its checkpoint and slot belong to "
		             "the current value. Stop the job (which releases them), then modify it and "
		             "start it afresh",
		             changed, job->spec->name, ps_job_state_name(job->state));
		ps_api_error_detail(r, "field", json_string(changed));
		goto cleanup;
	}
	if (spec_in_use(job)) {
		ps_api_error(r, 409, "invalid_state",
		             "job '%s' is %s and its supervisor is reading the spec: modify it once "
		             "it settles", job->spec->name, ps_job_state_name(job->state));
		ps_api_error_detail(r, "state", json_string(ps_job_state_name(job->state)));
		ps_api_error_detail(r, "allowed_actions", allowed_json(job));
		goto cleanup;
	}
	live_changes(job->spec, spec, live, sizeof(live));
	ps_spec_free(job->spec);
	free(job->spec_text);
	job->spec = spec;
	job->spec_text = text;
	spec = NULL;
	text = NULL;
	ps_live_update(&job->live, job->spec);   /* a running pipeline sees it at once */
	if (job->state == PS_JOB_READY || job->state == PS_JOB_CHECK_FAILED) {
		job_transition(srv, job, PS_JOB_CREATED, actor, "spec modified; check again");
	} else {
		char reason[400];

		snprintf(reason, sizeof(reason), "spec modified%s%s",
		         live[0] && job->running ? "; in effect at once: " : "",
		         live[0] && job->running ? live : "");
		job->updated_at = ps_time_now_ms();
		job_save(srv, job, "modify", actor, -1, -1, reason);
	}
	answer_job(r, 200, job);
cleanup:
	pthread_mutex_unlock(&srv->mu);
	json_decref(patch);
	json_decref(doc);
	free(merged);
	free(text);
	ps_spec_free(spec);
}

void ps_jobs_delete(ps_server *srv, const char *id, const char *actor, ps_api_result *r)
{
	char done[600] = "", name[64];
	ps_error err;
	bool release;
	ps_job *job, **pp;
	int rc = PS_OK;

	(void)actor;
	ps_error_clear(&err);
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (!job) {
		pthread_mutex_unlock(&srv->mu);
		not_found(r, id);
		return;
	}
	job->deleting = true;
	release = holds_checkpoint(job->state);
	atomic_store(&job->stop, 2);
	pthread_cond_broadcast(&srv->changed);
	while (job->thread_alive)
		pthread_cond_wait(&srv->changed, &srv->mu);
	pthread_mutex_unlock(&srv->mu);

	if (release)
		rc = ps_pipeline_release(job->spec, srv->state_dir, done, sizeof(done), &err);
	snprintf(name, sizeof(name), "%s", job->spec->name);

	pthread_mutex_lock(&srv->mu);
	for (pp = &srv->jobs; *pp && *pp != job; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = job->next;
	pthread_mutex_unlock(&srv->mu);
	if (ps_store_delete(srv->store, job->id, &err) != PS_OK && rc == PS_OK)
		rc = err.code;
	r->status = 200;
	r->body = json_pack("{s:s, s:s, s:s, s:s}", "deleted", job->id, "name", name, "removed",
	                    release ? (done[0] ? done : "nothing on the source could be released")
	                            : "the job held no slot, publication or checkpoint",
	                    "target_data", "left as it is");
	if (rc != PS_OK) {
		char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 4];
		ps_error_format(&err, msg, sizeof(msg));
		json_object_set_new(r->body, "warning",
		                    json_sprintf("%s. Drop what is left by hand on the source: SELECT "
		                                 "pg_drop_replication_slot('%s'); DROP PUBLICATION IF "
		                                 "EXISTS \"%s\";", msg, job->spec->source.slot,
		                                 job->spec->source.publication));
	}
	ps_log_info("job %s deleted: %s", name, json_string_value(json_object_get(r->body, "removed")));
	job_free(job);
}

/* ==== loading and shutdown ================================================= */

static int load_one(const ps_store_job *row, void *payload)
{
	ps_server *srv = payload;
	ps_spec *spec = NULL;
	char *text = NULL;
	ps_job *job;
	ps_error err;
	json_error_t jerr;
	int state = ps_job_state_parse(row->state);

	ps_error_clear(&err);
	if (parse_spec(row->spec, strlen(row->spec), row->name, &spec, &text, &err) != PS_OK) {
		ps_log_error("job store: job %s: its spec no longer parses (%s); left out", row->name,
		             err.message);
		return PS_OK;
	}
	job = job_new(srv, row->id, text, spec);
	if (!job) {
		ps_spec_free(spec);
		free(text);
		return PS_ENOMEM;
	}
	job->state = state < 0 ? PS_JOB_FAILED_PERMANENTLY : state;
	job->health = ps_health_parse(row->health) < 0 ? PS_HEALTH_OK : ps_health_parse(row->health);
	job->checks = row->checks ? json_loads(row->checks, 0, &jerr) : NULL;
	job->last_error = row->last_error ? json_loads(row->last_error, 0, &jerr) : NULL;
	job->last_status = row->status ? json_loads(row->status, 0, &jerr) : NULL;
	job->created_at = row->created_at;
	job->updated_at = row->updated_at;
	job_append(srv, job);
	return PS_OK;
}

int ps_server_jobs_load(ps_server *srv, ps_error *err)
{
	int rc = ps_store_each(srv->store, load_one, srv, err);

	if (rc != PS_OK)
		return rc;
	pthread_mutex_lock(&srv->mu);
	for (ps_job *job = srv->jobs; job; job = job->next) {
		switch (job->state) {
		case PS_JOB_STARTING:
		case PS_JOB_RUNNING:
		case PS_JOB_FAILED:
		case PS_JOB_READY_TO_COMPLETE:
		case PS_JOB_COMPLETING:
			job_transition(srv, job, PS_JOB_STARTING, "server",
			               "the server started; resuming from the checkpoint");
			break;
		case PS_JOB_CHECKING:
			job_transition(srv, job, PS_JOB_CHECKING, "server",
			               "the server started; running the prechecks again");
			break;
		case PS_JOB_DRAINING:
			job_transition(srv, job, PS_JOB_PAUSED, "server",
			               "the server stopped while the job drained; the checkpoint holds "
			               "everything applied, the slot everything after it");
			break;
		default:
			break;
		}
		if (ps_job_state_active(job->state))
			job_spawn(srv, job);
	}
	pthread_mutex_unlock(&srv->mu);
	return PS_OK;
}

void ps_server_jobs_shutdown(ps_server *srv)
{
	bool busy = true;

	pthread_mutex_lock(&srv->mu);
	srv->shutting_down = true;
	atomic_store(&srv->cancel_compares, 1);
	for (ps_job *job = srv->jobs; job; job = job->next)
		if (job->running)
			atomic_store(&job->stop, 1);
	pthread_cond_broadcast(&srv->changed);
	while (busy) {
		busy = false;
		for (ps_job *job = srv->jobs; job; job = job->next)
			busy = busy || job->thread_alive;
		if (busy)
			pthread_cond_wait(&srv->changed, &srv->mu);
	}
	for (ps_job *job = srv->jobs; job; job = job->next)
		job_save(srv, job, NULL, NULL, -1, -1, NULL);   /* the last figures */
	pthread_mutex_unlock(&srv->mu);
}

void ps_server_jobs_free(ps_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	while (srv->jobs) {
		ps_job *next = srv->jobs->next;
		job_free(srv->jobs);
		srv->jobs = next;
	}
	pthread_mutex_unlock(&srv->mu);
}
