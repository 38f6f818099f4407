/*
 * supervisor.c — each job's supervisor thread (server.h note 2; the states
 * in lifecycle.h): it carries the job from an active state to the next
 * resting one, outside srv->mu for everything slow.
 *
 * NOTES ON THE DESIGN
 *
 *  1. The supervisor (job_main) loops on the job's state while it is active:
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
 *  2. Errors are retried when they can pass by themselves (lost or refused
 *     connections, timeouts, I/O, serialization failures, deadlocks, servers
 *     shutting down), with exponential backoff and jitter as the spec's
 *     retry section says (default 1 s to 60 s, forever); the others (bad
 *     spec, refused checkpoint, missing privilege, slot gone, incompatible
 *     target) and retries that ran out need an operator: failed_permanently,
 *     left by recover (recover.h). core/errclass.c decides which is which,
 *     by SQLSTATE, errno and code, and says what to do (the hint).
 *  3. Health follows the pipeline (status.h on_health): degraded while the
 *     changes read before the source was lost are applied, then
 *     degraded_log_fully_read until the job runs again.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare/compare.h"
#include "core/errclass.h"
#include "core/pipeline.h"
#include "core/precheck.h"
#include "server/jobs_internal.h"
#include "server/recover.h"
#include "server/server.h"
#include "util/log.h"
#include "util/str.h"

/* ==== error classes ======================================================== */

/* Design note 2: core/errclass.c decides, by SQLSTATE, errno and code. */
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
	char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 4], at[40], key[PS_ENGINE_CODE_MAX];
	int cls = ps_errclass_of(err);

	if (!hint && retryable == ps_errclass_retryable(cls))
		hint = ps_errclass_hint(cls);
	else if (!hint)
		hint = "read the message, fix the cause, then `penstock job recover JOB --strategy "
		       "retry` (or stop the job and start it afresh)";
	ps_error_format(err, msg, sizeof(msg));
	ps_utf8_sanitize(msg);
	ps_time_iso(at, sizeof(at), ps_time_now_ms());
	if (cls >= 0 && cls < PS_ERRCLASS_COUNT)
		job->errors[cls]++;   /* /metrics: penstock_job_errors_total */
	json_decref(job->last_error);
	job->last_error = json_pack("{s:s, s:s, s:b, s:s, s:s, s:s}", "code",
	                            ps_error_code_name(err->code), "message", msg,
	                            "retryable", retryable, "class", ps_errclass_name(cls),
	                            "at", at, "hint", hint);
	/* The engine's own code under its kind ("sqlstate": "23505"), and the
	 * kind as shown to users. */
	ps_error_engine_key(err, key, sizeof(key));
	if (job->last_error && key[0]) {
		json_object_set_new(job->last_error, key, json_string(err->engine_code));
		json_object_set_new(job->last_error, "engine_code_kind",
		                    json_string(err->engine_code_kind));
	}
}

static void set_last_error(ps_job *job, const ps_error *err, bool retryable)
{
	set_last_error_hint(job, err, retryable, NULL);
}

/* ==== the supervisor thread ================================================ */

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
			ps__job_transition(srv, job, PS_JOB_READY_TO_COMPLETE, "job",
			                   "lag under complete.max_lag_ms (%lld ms) for %d s: ready to complete",
			                   job->spec->complete_max_lag_ms, READY_AFTER_MS / 1000);
	} else if (!ok) {
		c->low_lag_since_ms = 0;
		ps__job_transition(srv, job, PS_JOB_RUNNING, "job", "not ready to complete any more: %s",
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
		ps__job_transition(srv, job, PS_JOB_RUNNING, "job", "%s phase began", ps_phase_name(phase));
	} else {
		ps__job_event(srv, job, "phase", "%s phase began", ps_phase_name(phase));
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
	ps__job_event(c->srv, c->job, "tables", "%s", text);
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
		ps__job_save(srv, job, "health", "job", -1, -1,
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

/* Checking (note 1): runs the prechecks outside the lock. */
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
		ps__job_transition(srv, job, PS_JOB_CHECK_FAILED, "job", "the prechecks could not run: %s",
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
		ps__job_transition(srv, job, PS_JOB_CHECK_FAILED, "job",
		                   "blocking prechecks failed: %s; `penstock job show` lists the fixes", failed);
	} else if (job->start_after_check) {
		ps__job_transition(srv, job, PS_JOB_STARTING, "job", "prechecks passed; starting");
	} else {
		ps__job_transition(srv, job, PS_JOB_READY, "job", "prechecks passed");
	}
	job->start_after_check = false;
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
	ps__job_transition(srv, job, PS_JOB_FAILED, "job",
	                   "completing failed: %s%s%s; nothing was released: the job streams again from "
	                   "its checkpoint, complete it again once ready", what, err ? ": " : "",
	                   err ? err->message : "");
}

/* A run ended with err: failed with the next attempt scheduled (note 2,
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
		ps__job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job", "%s", err->message);
		return;
	}
	job->attempts++;
	if (spec->retry_max_attempts > 0 && job->attempts > spec->retry_max_attempts) {
		char hint[300];

		snprintf(hint, sizeof(hint), "the error did not pass in %lld retries "
		         "(retry.max_attempts): fix its cause, then `penstock job recover %s --strategy "
		         "retry`", spec->retry_max_attempts, spec->name);
		set_last_error_hint(job, err, false, hint);
		ps__job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job",
		                   "%s (gave up: %lld retries failed, retry.max_attempts)", err->message,
		                   spec->retry_max_attempts);
		return;
	}
	set_last_error(job, err, true);
	job->retries_total++;
	backoff = ps_retry_backoff_ms(spec->retry_initial_backoff_ms, spec->retry_max_backoff_ms,
	                              job->attempts, (uint32_t)rand());
	job->next_retry_ms = ps_time_now_ms() + backoff;
	if (spec->retry_max_attempts > 0)
		snprintf(of, sizeof(of), " of %lld", spec->retry_max_attempts);
	ps__job_transition(srv, job, PS_JOB_FAILED, "job", "%s (retry %d%s in %.1f s)", err->message,
	                   job->attempts, of, (double)backoff / 1000.0);
}

/* Starting / running (note 1): one run of the pipeline, then the state its
 * end leads to. */
static void run_pipeline(ps_server *srv, ps_job *job)
{
	ps_source_resources held;
	ps_pipeline_config cfg;
	phase_ctx pc = {srv, job, 0};
	ps_error err;
	ps_spec *spec = NULL;
	char *text = NULL;
	bool completed = false;
	int rc;

	/* The run reads its own copy of the spec: a PATCH may replace job->spec
	 * meanwhile, and reaches the run through job->live (note 3). */
	ps_error_clear(&err);
	if (ps__job_parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text,
	                       &err) != PS_OK) {
		set_last_error(job, &err, false);
		ps__job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job", "%s", err.message);
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
	job->last_status = ps__job_status_snapshot(job);

	if (rc == PS_ESTOPPED && atomic_load(&job->stop))
		rc = PS_OK;
	if (job->deleting) {
		/* DELETE releases what is left and removes the job */
	} else if (completed) {
		/* checked first: the snapshot job ended by itself, even if a pause
		 * or stop arrived meanwhile; nothing is left on the source */
		json_decref(job->last_error);
		job->last_error = NULL;
		ps__job_source_held(job->spec, &held);
		ps__job_transition(srv, job, PS_JOB_COMPLETED, "job",
		                   "the snapshot is loaded; %s and the checkpoint removed", held.held);
	} else if (job->state == PS_JOB_COMPLETING) {
		if (rc == PS_OK && atomic_load(&job->live.fenced))
			;   /* the cutover continues in job_main */
		else if (!(rc == PS_OK && srv->shutting_down))
			cutover_failed(srv, job, rc == PS_OK ? NULL : &err,
			               "the run ended before everything up to the fence was applied");
	} else if (rc == PS_OK && job->state == PS_JOB_DRAINING) {
		ps__job_source_held(job->spec, &held);
		ps__job_transition(srv, job, PS_JOB_PAUSED, "job",
		                   "drained: every change read was applied and checkpointed at %s; %s kept",
		                   applied_text(job), held.log_reader);
	} else if (rc == PS_OK && (job->state == PS_JOB_STOPPING || srv->shutting_down)) {
		/* stopping continues in job_main; a server shutdown keeps the state */
	} else if (rc == PS_OK) {
		ps__job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job",
		                   "the pipeline ended without being asked to");
	} else if (job->state == PS_JOB_STOPPING || job->state == PS_JOB_DRAINING) {
		/* failed while stopping or draining: the request still holds */
		set_last_error(job, &err, error_retryable(&err));
		if (job->state == PS_JOB_DRAINING)
			ps__job_transition(srv, job, PS_JOB_PAUSED, "job",
			                   "paused; the run ended with an error: %s (the checkpoint holds "
			                   "everything applied)", err.message);
	} else {
		schedule_retry(srv, job, &err);
	}
}

/* Stopping (note 1): releases slot, publication and checkpoint. */
static void run_release(ps_server *srv, ps_job *job)
{
	ps_source_resources held;
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
		ps__job_transition(srv, job, PS_JOB_STOPPED, "job", "%s; target data left as it is", done);
		return;
	}
	set_last_error(job, &err, error_retryable(&err));
	ps__job_source_held(job->spec, &held);
	ps__job_transition(srv, job, PS_JOB_STOPPED, "job",
	                   "stopped, but not everything was released: %s.%s%s", err.message,
	                   held.release[0] ? " Drop by hand on the source: " : "", held.release);
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
	int64_t compare_seq = -1, compared_at = 0;
	int rc;

	memset(&rep, 0, sizeof(rep));
	ps_error_clear(&err);
	seqs[0] = '\0';
	pthread_mutex_lock(&job->live.mu);
	snprintf(fence, sizeof(fence), "%s", job->live.fence);
	pthread_mutex_unlock(&job->live.mu);
	snprintf(job_id, sizeof(job_id), "%s", job->id);
	rc = ps__job_parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text, &err);
	pthread_mutex_unlock(&srv->mu);
	if (rc == PS_OK)
		rc = ps_cutover_sequences(spec, seqs, sizeof(seqs), &err);
	if (rc == PS_OK && mode) {
		rc = ps_cutover_compare(spec, mode, &srv->cancel_compares, &rep, &err);
		report = rc == PS_OK ? ps_compare_report_json(&rep) : NULL;
		result = report ? ps__job_json_text(report) : NULL;
		compared_at = ps_time_now_ms();
		if (result)
			compare_seq = ps_store_compare_add(srv->store, job_id, compared_at, result, &err);
		if (rc == PS_OK && !rep.consistent)
			rc = ps_error_set(&err, PS_EINVAL, "the %s compare found differences (`penstock job "
			                  "compares` has them)", ps_compare_mode_name(mode));
		snprintf(compared, sizeof(compared), "; %s compare: equal", ps_compare_mode_name(mode));
	}
	if (rc == PS_OK)
		rc = ps_pipeline_release(spec, srv->state_dir, done, sizeof(done), &err);
	pthread_mutex_lock(&srv->mu);
	if (report && compare_seq >= 0)
		ps__job_compare_stored(job, compare_seq, compared_at, report);
	if (job->state == PS_JOB_COMPLETING && !job->deleting) {
		if (rc == PS_OK) {
			json_decref(job->last_error);
			job->last_error = NULL;
			job->attempts = 0;
			ps__job_transition(srv, job, PS_JOB_COMPLETED, "job",
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
			ps__job_transition(srv, job, PS_JOB_STARTING, "job", "retry %d", job->attempts);
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
			ps__job_transition(srv, job, PS_JOB_PAUSED, "job", "nothing was running; paused");
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
int ps__job_spawn_with(ps_server *srv, ps_job *job, void *(*fn)(void *), void *arg,
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

int ps__job_spawn(ps_server *srv, ps_job *job)
{
	bool started;

	return ps__job_spawn_with(srv, job, job_main, job, &started);
}

/* A supervisor is reading job->spec right now (prechecks, releasing, the
 * cutover): a modification waits. A pipeline reads its own copy and gets
 * the live parts through job->live. srv->mu held. */
bool ps__job_spec_in_use(const ps_job *job)
{
	return job->thread_alive && (job->state == PS_JOB_CHECKING || job->state == PS_JOB_STOPPING ||
	                             job->state == PS_JOB_COMPLETING);
}

/* ==== recover: the step before the run ===================================== */

/* The recover step of a supervisor (recover.h note 1), srv->mu held: runs
 * ps_recover_prepare outside the lock and records what it did; on failure
 * the job is failed_permanently again with the reason. */
static void run_recover(ps_server *srv, ps_job *job, const recover_start *rs)
{
	ps_source_resources held;
	const char *name = ps_recover_strategy_name(rs->plan.strategy);
	ps_recover_result res;
	ps_spec *spec = NULL;
	char *text = NULL;
	ps_error err;
	int rc;

	/* a copy: a PATCH may replace job->spec while the job is starting */
	ps_error_clear(&err);
	rc = ps__job_parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text, &err);
	pthread_mutex_unlock(&srv->mu);
	if (rc == PS_OK)
		rc = ps_recover_prepare(spec, srv->state_dir, &rs->plan, &res, &err);
	ps_spec_free(spec);
	free(text);
	pthread_mutex_lock(&srv->mu);
	ps__job_source_held(job->spec, &held);
	if (rc == PS_OK && rs->plan.strategy == PS_RECOVER_SKIP) {
		ps__job_gap_event(srv, job, rs->actor, res.from, res.to,
		                  "recover skip: the changes committed after %s up to %s were skipped and "
		                  "are not in the target%s%s%s", res.from, res.to,
		                  res.slot_created ? " (a new " : "", res.slot_created ? held.log_reader : "",
		                  res.slot_created ? " was created)" : "");
	} else if (rc == PS_OK) {
		ps__job_event(srv, job, "resync", "recover resync: new %s at %s; %zu table%s emptied in "
		              "the target and loaded again from a new snapshot, %zu kept", held.log_reader, res.to,
		              res.tables_loaded, res.tables_loaded == 1 ? "" : "s", res.tables_kept);
		if (res.tables_kept && res.from[0])
			ps__job_gap_event(srv, job, rs->actor, res.from, res.to,
			                  "recover resync: the changes of the %zu table%s not loaded again, "
			                  "committed after %s up to %s, were skipped and are not in the target",
			                  res.tables_kept, res.tables_kept == 1 ? "" : "s", res.from, res.to);
	}
	if (job->state != PS_JOB_STARTING || job->deleting)
		return;   /* stopped, paused or deleted meanwhile: that request holds */
	if (rc != PS_OK) {
		set_last_error_hint(job, &err, false, "the recover step failed before the job ran: "
		                    "fix what the message names, then recover again");
		ps__job_transition(srv, job, PS_JOB_FAILED_PERMANENTLY, "job", "recover %s failed: %s",
		                   name, err.message);
	}
}

void *ps__job_recover_main(void *arg)
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

