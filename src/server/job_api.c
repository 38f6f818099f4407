/*
 * job_api.c — the REST actions on jobs (docs/api.md): create, list, get,
 * events, the lifecycle actions, complete, recover, compare, modify and
 * delete (server.h notes 1-2; the states in lifecycle.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. An action is decided entirely under srv->mu: the state allows it or the
 *     answer is 409 with the state and the allowed actions, and nothing
 *     changed. An allowed action persists its transition first, then wakes
 *     or starts the supervisor, then answers with the job as it now is.
 *  2. A job being deleted (job->deleting) is invisible to the other
 *     actions (find_job does not return it), though its name and slot stay
 *     taken until it is gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare.h"
#include "core/checkpoint.h"
#include "server/jobs_internal.h"
#include "server/recover.h"
#include "server/server.h"
#include "util/log.h"
#include "util/str.h"

/* ==== finding a job, answering with it ===================================== */

static ps_job *find_job(ps_server *srv, const char *id_or_name)
{
	for (ps_job *j = srv->jobs; j; j = j->next)
		if (!j->deleting && (strcmp(j->id, id_or_name) == 0 || strcmp(j->spec->name, id_or_name) == 0))
			return j;
	return NULL;
}

ps_job *ps__job_find(ps_server *srv, const char *id_or_name)
{
	return find_job(srv, id_or_name);
}

static void not_found(ps_api_result *r, const char *id)
{
	ps_api_error(r, 404, "not_found", "no job '%s'; `penstock job list` shows the jobs", id);
}

static void answer_job(ps_api_result *r, int status, ps_job *job)
{
	r->status = status;
	json_decref(r->body);
	r->body = ps__job_json(job);
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

void ps_jobs_create(ps_server *srv, const char *body, size_t len, const char *actor,
                    ps_api_result *r)
{
	ps_spec *spec = NULL;
	char *text = NULL, id[24];
	ps_job *job;
	ps_error err;

	ps_error_clear(&err);
	if (ps__job_parse_spec(body, len, "request body", &spec, &text, &err) != PS_OK) {
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
	for (ps_job *j = srv->jobs; j; j = j->next) {
		const char *field = ps__job_shared_option(j->spec, spec);

		if (field) {
			ps_api_error(r, 409, "conflict", "job '%s' already uses %s %s on this source; "
			             "set source.%s to another name", j->spec->name, field,
			             ps_option_str(spec->source.options, field), field);
			goto cleanup;
		}
	}
	new_id(id, sizeof(id));
	job = ps__job_new(srv, id, text, spec);
	if (!job) {
		ps_api_error(r, 500, "internal", "out of memory");
		goto cleanup;
	}
	text = NULL;
	spec = NULL;
	job->created_at = job->updated_at = ps_time_now_ms();
	job->state = PS_JOB_CREATED;
	if (ps__job_save(srv, job, "transition", actor, -1, PS_JOB_CREATED, "created") != PS_OK) {
		ps_api_error(r, 500, "internal", "cannot store the job (the server log says why); "
		             "nothing was created");
		ps__job_free(job);
		goto cleanup;
	}
	ps__job_append(srv, job);
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
			json_array_append_new(jobs, ps__job_json(j));
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
	json_t *list = ps__job_allowed_json(job);

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
	ps_source_resources held;
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
		ps__job_transition(srv, job, PS_JOB_CHECKING, actor, "check requested");
		break;
	case PS_ACT_START:
		json_decref(job->last_error);
		job->last_error = NULL;
		job->attempts = 0;
		if (job->state == PS_JOB_READY) {
			ps__job_transition(srv, job, PS_JOB_STARTING, actor, "start requested; prechecks passed");
		} else {
			job->start_after_check = true;
			ps__job_transition(srv, job, PS_JOB_CHECKING, actor,
			                   "start requested; running the prechecks first");
		}
		break;
	case PS_ACT_PAUSE:
		if (job->running) {
			ps__job_transition(srv, job, PS_JOB_DRAINING, actor,
			                   "pause requested: no new reads; applying what was read");
			atomic_store(&job->stop, 1);
		} else {
			ps__job_transition(srv, job, PS_JOB_PAUSED, actor, "pause requested; nothing was running");
		}
		break;
	case PS_ACT_RESUME:
		job->attempts = 0;
		ps__job_transition(srv, job, PS_JOB_STARTING, actor, "resume requested");
		break;
	case PS_ACT_STOP:
		ps__job_source_held(job->spec, &held);
		ps__job_transition(srv, job, PS_JOB_STOPPING, actor,
		                   "stop requested: draining, then releasing %s", held.held);
		atomic_store(&job->stop, 1);
		break;
	default:
		refuse(r, job, action);
		goto cleanup;
	}
	if (ps_job_state_active(job->state) && ps__job_spawn(srv, job) != PS_OK) {
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
	ps_source_resources held;
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
		ps_api_error_detail(r, "allowed_actions", ps__job_allowed_json(job));
		goto cleanup;
	}
	job->cutover_compare = mode;
	ps__job_source_held(job->spec, &held);
	ps__job_transition(srv, job, PS_JOB_COMPLETING, actor,
	                   "complete requested: fencing at the source's current position, applying up "
	                   "to it, then syncing sequences%s and releasing %s and the checkpoint",
	                   mode ? ", comparing" : "", held.held);
	atomic_store(&job->live.complete, 1);
	answer_job(r, 202, job);
cleanup:
	pthread_mutex_unlock(&srv->mu);
}

/* ==== API: recover ========================================================= */

void ps_jobs_recover(ps_server *srv, const char *id, const char *body, size_t len,
                     const char *actor, ps_api_result *r)
{
	ps_source_resources held;
	recover_start *rs = calloc(1, sizeof(*rs));
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
	rs->job = job;
	json_decref(job->last_error);
	job->last_error = NULL;
	job->attempts = 0;
	ps__job_source_held(job->spec, &held);
	job->health = PS_HEALTH_OK;
	if (rs->plan.strategy == PS_RECOVER_SKIP)
		ps__job_transition(srv, job, PS_JOB_STARTING, actor, "recover skip requested: continuing "
		                   "from %s; the changes in between are skipped",
		                   rs->plan.position[0] ? rs->plan.position : "the end of the source's log");
	else if (rs->plan.strategy == PS_RECOVER_RESYNC)
		ps__job_transition(srv, job, PS_JOB_STARTING, actor, "recover resync requested: a new %s "
		                   "and a new snapshot of %s", held.log_reader,
		                   rs->plan.ntables ? "the named tables" : "every table");
	else
		ps__job_transition(srv, job, PS_JOB_STARTING, actor, "recover retry requested: running "
		                   "again from the checkpoint");
	if (rs->plan.strategy == PS_RECOVER_RETRY) {
		if (ps__job_spawn(srv, job) != PS_OK) {
			ps_api_error(r, 500, "internal", "cannot start the job's supervisor thread");
			goto cleanup;
		}
	} else {
		if (ps__job_spawn_with(srv, job, ps__job_recover_main, rs, &started) != PS_OK) {
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
	int64_t seq, compared_at;
	int rc = PS_OK;

	memset(&rep, 0, sizeof(rep));
	ps_error_clear(&err);
	if (!parse_compare_req(body, len, &q, r))
		return;
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, id);
	if (job) {
		/* a private copy: the job may be modified or deleted meanwhile */
		rc = ps__job_parse_spec(job->spec_text, strlen(job->spec_text), job->spec->name, &spec, &text, &err);
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
	o.exclude = (const char *const *)spec->exclude;
	o.nexclude = spec->nexclude;
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
	result = ps__job_json_text(report);
	compared_at = ps_time_now_ms();
	seq = result ? ps_store_compare_add(srv->store, job_id, compared_at, result, &err) : -1;
	if (seq < 0) {
		ps_api_error(r, 500, "internal", "cannot store the compare result: %s", err.message);
		goto cleanup;
	}
	pthread_mutex_lock(&srv->mu);
	job = find_job(srv, job_id);
	if (job)
		ps__job_compare_stored(job, seq, compared_at, report);
	if (job)
		ps__job_event(srv, job, "compare", "%s compare by %s: %s%s", ps_compare_mode_name(q.mode),
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

/* What may not change while the job holds a checkpoint: what the
 * checkpoint's fingerprint and the slot stand for. The source and the target
 * are compared as the checkpoint identifies them (scheme, host, port,
 * database), so the user or connection parameters may change. NULL when
 * nothing. */
static const char *identity_change(const ps_spec *a, const ps_spec *b, char *changed, size_t len)
{
	ps_identity ia, ib;
	const char *field;

	if (a->type != b->type)
		return "type";
	ps_identity_from_spec(&ia, a);
	ps_identity_from_spec(&ib, b);
	if (strcmp(ia.source, ib.source) != 0)
		return "source.url";
	field = ps__job_changed_option(a, b);
	if (field) {
		snprintf(changed, len, "source.%s", field);
		return changed;
	}
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
	char changed_field[96];
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
	if (!merged || ps__job_parse_spec(merged, strlen(merged), "spec after the patch", &spec, &text, &err) != PS_OK) {
		bad_spec(r, &err, "spec after the patch");
		goto cleanup;
	}
	if (strcmp(spec->name, job->spec->name) != 0) {
		ps_api_error(r, 400, "invalid_spec", "name: a job's name cannot change; create a new job");
		ps_api_error_detail(r, "field", json_string("name"));
		goto cleanup;
	}
	changed = identity_change(job->spec, spec, changed_field, sizeof(changed_field));
	if (changed && holds_checkpoint(job->state)) {
		ps_api_error(r, 409, "invalid_state",
		             "%s cannot change while job '%s' is %s: its checkpoint and what it holds on "
		             "the source belong to the current value. Stop the job (which releases "
		             "them), then modify it and start it afresh",
		             changed, job->spec->name, ps_job_state_name(job->state));
		ps_api_error_detail(r, "field", json_string(changed));
		goto cleanup;
	}
	if (ps__job_spec_in_use(job)) {
		ps_api_error(r, 409, "invalid_state",
		             "job '%s' is %s and its supervisor is reading the spec: modify it once "
		             "it settles", job->spec->name, ps_job_state_name(job->state));
		ps_api_error_detail(r, "state", json_string(ps_job_state_name(job->state)));
		ps_api_error_detail(r, "allowed_actions", ps__job_allowed_json(job));
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
		ps__job_transition(srv, job, PS_JOB_CREATED, actor, "spec modified; check again");
	} else {
		char reason[400];

		snprintf(reason, sizeof(reason), "spec modified%s%s",
		         live[0] && job->running ? "; in effect at once: " : "",
		         live[0] && job->running ? live : "");
		job->updated_at = ps_time_now_ms();
		ps__job_save(srv, job, "modify", actor, -1, -1, reason);
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
	char none[400];
	ps_source_resources held;
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
	ps__job_source_held(job->spec, &held);
	snprintf(none, sizeof(none), "the job held no %s and no checkpoint", held.held);
	r->body = json_pack("{s:s, s:s, s:s, s:s}", "deleted", job->id, "name", name, "removed",
	                    release ? (done[0] ? done : "nothing on the source could be released")
	                            : none,
	                    "target_data", "left as it is");
	if (rc != PS_OK) {
		char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 4];
		ps_error_format(&err, msg, sizeof(msg));
		ps__job_source_held(job->spec, &held);
		json_object_set_new(r->body, "warning",
		                    json_sprintf("%s.%s%s", msg, held.release[0] ? " Drop what is left "
		                                 "by hand on the source: " : "", held.release));
	}
	ps_log_info("job %s deleted: %s", name, json_string_value(json_object_get(r->body, "removed")));
	ps__job_free(job);
}

