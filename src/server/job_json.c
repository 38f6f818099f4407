/*
 * job_json.c — the job object of the API (docs/api.md) and the figures of
 * its run, rendered with srv->mu held (server.h note 1).
 *
 * NOTES ON THE DESIGN
 *
 *  1. The figures are the running pipeline's (job->status, copied under its
 *     own lock) while it runs, else those kept from the last run
 *     (job->last_status, stored, so possibly from another version: every
 *     key read from it may be missing).
 *  2. allowed_actions is what the state allows (lifecycle.h), less modify
 *     while a supervisor reads the spec and complete for a job that is not
 *     a migration.
 */
#include <stdlib.h>

#include "core/errclass.h"
#include "server/jobs_internal.h"
#include "server/server.h"

/* The live figures of the job's pipeline, as JSON. */
json_t *ps__job_status_snapshot(ps_job *job)
{
	ps_run_status copy;
	json_t *j;

	ps_run_status_copy_all(&job->status, &copy);
	j = ps_run_status_json(&copy);
	ps_run_status_copy_free(&copy);
	return j;
}

json_t *ps_job_figures(ps_job *job)
{
	return job->running ? ps__job_status_snapshot(job) : json_incref(job->last_status);
}

static json_t *time_json(int64_t ms)
{
	char buf[40];

	if (!ms)
		return json_null();
	ps_time_iso(buf, sizeof(buf), ms);
	return json_string(buf);
}

/* The actions the job's state allows now; modify waits while a supervisor
 * reads the spec. srv->mu held. */
json_t *ps__job_allowed_json(ps_job *job)
{
	json_t *list = json_array();

	for (int a = 0; a < PS_NACTIONS; a++)
		if (ps_job_allows(job->state, a) && !(a == PS_ACT_MODIFY && ps__job_spec_in_use(job)) &&
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

/* What the console and an operator read besides the core figures: the
 * source's retention, apply batch latency, changes by table, errors by
 * class and the last compare (docs/api.md). srv->mu held. */
static void figures_more_json(json_t *o, ps_job *job, json_t *figures)
{
	static const char *const keys[] = {"retention", "apply_batches", "table_changes"};
	json_t *errors = json_object();

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(figures, keys[i]);
		json_object_set(o, keys[i], v ? v : json_null());
	}
	for (int c = 0; c < PS_ERRCLASS_COUNT; c++)
		if (job->errors[c])
			json_object_set_new(errors, ps_errclass_name(c), json_integer((json_int_t)job->errors[c]));
	json_object_set_new(o, "errors", errors);
	json_object_set_new(o, "last_compare", job->last_compare ? json_incref(job->last_compare)
	                                                         : json_null());
}

/* The job object of the API (docs/api.md), srv->mu held. */
json_t *ps__job_json(ps_job *job)
{
	ps_source_resources held;
	json_t *o, *figures, *allowed = ps__job_allowed_json(job), *spec, *tables;
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
	ps__job_source_held(job->spec, &held);
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
	              "log_reader", json_string(held.log_reader),
	              "created_at", time_json(job->created_at), "updated_at", time_json(job->updated_at),
	              "spec", spec ? spec : json_null());
	/* the limits in force now: a PATCH changes them at once (ratelimit.h) */
	json_object_set_new(o, "limits",
	                    json_pack("{s:I, s:I, s:i}", "rows_per_sec",
	                              (json_int_t)atomic_load(&job->live.limits.rows_per_sec),
	                              "bytes_per_sec",
	                              (json_int_t)atomic_load(&job->live.limits.bytes_per_sec),
	                              "parallel", atomic_load(&job->live.limits.parallel)));
	retry_json(o, job);
	figures_more_json(o, job, figures);
	json_decref(figures);
	return o;
}

