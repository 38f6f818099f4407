/*
 * observe.c — what the server tells an operator besides the job object:
 * each job's figures over the last hour (history.h), readiness (/readyz),
 * the webhook call of a transition (webhook.h) and the summary of the last
 * compare that /metrics shows. server.h notes 1-4 hold: srv->mu guards
 * every job field read or written here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/version.h"
#include "server/jobs_internal.h"
#include "server/server.h"
#include "util/log.h"

/* ==== history ============================================================== */

bool ps_jobs_sample(ps_server *srv)
{
	struct timespec until;
	int64_t now = ps_time_now_ms();

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	if (pthread_mutex_timedlock(&srv->mu, &until) != 0)
		return false;
	for (ps_job *job = srv->jobs; job; job = job->next) {
		ps_history_sample s;
		json_t *figures;

		if (!job->history)
			job->history = calloc(1, sizeof(*job->history));
		if (!job->history)
			continue;   /* out of memory: no history for now */
		figures = ps_job_figures(job);
		ps_history_sample_from(&s, now, job->state, figures, job->running);
		ps_history_add(job->history, &s);
		json_decref(figures);
	}
	pthread_mutex_unlock(&srv->mu);
	return true;
}

void ps_jobs_history(ps_server *srv, const char *id, int64_t since_ms, ps_api_result *r)
{
	ps_job *job;
	json_t *samples;

	pthread_mutex_lock(&srv->mu);
	job = ps__job_find(srv, id);
	if (!job) {
		pthread_mutex_unlock(&srv->mu);
		ps_api_error(r, 404, "not_found", "no job '%s'; `penstock job list` shows the jobs", id);
		return;
	}
	samples = job->history ? ps_history_json(job->history, since_ms) : json_array();
	r->status = 200;
	r->body = json_pack("{s:s, s:s, s:i, s:i, s:o}", "job", job->id, "name", job->spec->name,
	                    "interval_seconds", PS_HISTORY_INTERVAL_MS / 1000, "max_samples",
	                    PS_HISTORY_SAMPLES, "samples", samples);
	pthread_mutex_unlock(&srv->mu);
}

/* ==== readiness ============================================================ */

void ps_server_ready(ps_server *srv, ps_api_result *r)
{
	json_t *reasons = json_array();
	ps_error err;

	ps_error_clear(&err);
	if (ps_store_ping(srv->store, &err) != PS_OK)
		json_array_append_new(reasons, json_string(err.message));
	pthread_mutex_lock(&srv->mu);
	if (srv->shutting_down)
		json_array_append_new(reasons, json_string("the server is stopping"));
	else if (!srv->jobs_loaded)
		json_array_append_new(reasons, json_string("the jobs are not loaded yet"));
	for (ps_job *job = srv->jobs; job && srv->jobs_loaded && !srv->shutting_down; job = job->next)
		if (ps_job_state_active(job->state) && !job->thread_alive && !job->deleting) {
			char why[200];
			snprintf(why, sizeof(why), "job %s is %s but no supervisor works on it",
			         job->spec->name, ps_job_state_name(job->state));
			json_array_append_new(reasons, json_string(why));
		}
	pthread_mutex_unlock(&srv->mu);
	r->status = json_array_size(reasons) ? 503 : 200;
	r->body = json_pack("{s:b, s:o}", "ready", r->status == 200, "reasons", reasons);
}

/* ==== webhooks ============================================================= */

static bool notified_state(int state)
{
	return state == PS_JOB_FAILED || state == PS_JOB_FAILED_PERMANENTLY ||
	       state == PS_JOB_READY_TO_COMPLETE || state == PS_JOB_COMPLETED;
}

void ps__job_notify(ps_server *srv, ps_job *job, int from, int to, const char *actor,
                    const char *reason)
{
	char delivery[40], hex[40], at[40];
	ps_error err;
	json_t *body;
	char *text;

	if (!srv->webhooks || !job->spec->webhook_url_env || !notified_state(to))
		return;
	ps_error_clear(&err);
	if (ps_random_hex(hex, sizeof(hex), 12, &err) != PS_OK)
		snprintf(hex, sizeof(hex), "%llx", (unsigned long long)ps_time_now_ms());
	snprintf(delivery, sizeof(delivery), "whk_%s", hex);
	ps_time_iso(at, sizeof(at), job->updated_at);
	body = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:i, s:o, s:o, "
	                 "s:{s:s}}",
	                 "delivery", delivery, "event", ps_job_state_name(to), "at", at,
	                 "job", "id", job->id, "name", job->spec->name, "type",
	                 ps_job_type_name(job->spec->type),
	                 "from", ps_job_state_name(from), "to", ps_job_state_name(to), "actor", actor,
	                 "reason", reason, "attempts", job->attempts,
	                 "last_error", job->last_error ? json_incref(job->last_error) : json_null(),
	                 "allowed_actions", ps__job_allowed_json(job),
	                 "server", "version", PENSTOCK_VERSION);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (text)
		ps_webhooks_enqueue(srv->webhooks, job->spec->name, job->spec->webhook_url_env,
		                    job->spec->webhook_secret_env, ps_job_state_name(to), delivery, text);
	else
		ps_log_error("job %s: webhook (%s): out of memory; the %s call is lost", job->spec->name,
		             job->spec->webhook_url_env, ps_job_state_name(to));
	free(text);
	json_decref(body);
}

/* ==== the last compare ===================================================== */

/* "2026-11-21T04:28:31.123Z" (ps_time_iso) as ms since the epoch; 0 when
 * it is not. */
static int64_t iso_ms(const char *iso)
{
	struct tm tm;
	const char *rest;
	int ms = 0;

	memset(&tm, 0, sizeof(tm));
	rest = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!rest)
		return 0;
	if (rest[0] == '.')
		for (int i = 1; i <= 3 && rest[i] >= '0' && rest[i] <= '9'; i++)
			ms = ms * 10 + (rest[i] - '0');
	return (int64_t)timegm(&tm) * 1000 + ms;
}

void ps__job_compare_stored(ps_job *job, int64_t seq, int64_t at_ms, const json_t *report)
{
	json_t *tables = json_array(), *t;
	char at[40];
	size_t i;

	json_array_foreach(json_object_get(report, "tables"), i, t)
		json_array_append_new(tables, json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "table",
		                                        json_object_get(t, "table"), "equal",
		                                        json_object_get(t, "equal"), "missing_in_target",
		                                        json_object_get(t, "missing_in_target"),
		                                        "extra_in_target",
		                                        json_object_get(t, "extra_in_target"), "different",
		                                        json_object_get(t, "different")));
	ps_time_iso(at, sizeof(at), at_ms);
	json_decref(job->last_compare);
	job->last_compare = json_pack("{s:I, s:s, s:I, s:O?, s:b, s:o}", "seq", (json_int_t)seq, "at",
	                              at, "at_ms", (json_int_t)at_ms, "mode",
	                              json_object_get(report, "mode"), "consistent",
	                              json_is_true(json_object_get(report, "consistent")), "tables",
	                              tables);
}

void ps__job_compare_load(ps_server *srv, ps_job *job)
{
	ps_error err;
	json_t *list, *last;

	ps_error_clear(&err);
	list = ps_store_compares(srv->store, job->id, 1, &err);
	last = json_array_get(list, 0);
	if (last && json_is_object(json_object_get(last, "result")))
		ps__job_compare_stored(job, (int64_t)json_integer_value(json_object_get(last, "seq")),
		                       iso_ms(json_string_value(json_object_get(last, "at"))),
		                       json_object_get(last, "result"));
	json_decref(list);
}
