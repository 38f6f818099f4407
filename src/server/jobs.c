/*
 * jobs.c — the server's job table (server.h notes 1-4; the states in
 * lifecycle.h): a job's entry and the spec parsed into it, its persistence,
 * its state changes and events, loading at start and the shutdown; and the
 * error answers every API call shares (ps_api_error...).
 *
 * The other files of the job table (jobs_internal.h: what they share):
 *   supervisor.c  each job's supervisor thread: prechecks, runs of the
 *                 pipeline, retries, release, cutover, the recover step
 *   job_json.c    the job object of the API, and the figures of its run
 *   job_api.c     the REST actions on jobs
 *
 * NOTES ON THE DESIGN
 *
 *  1. Every state change goes through ps__job_transition, with srv->mu held:
 *     it persists the job and its event in one store transaction before
 *     anyone can observe the new state (server.h note 3).
 *  2. A server stopping asks every pipeline to stop gracefully and leaves
 *     the states as they are; loading moves each job that was active back
 *     to where its supervisor starts again (starting, from the checkpoint;
 *     checking; a draining job is paused) and starts the supervisor
 *     (server.h note 4).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "server/jobs_internal.h"
#include "server/server.h"
#include "util/log.h"
#include "util/str.h"

/* ==== small helpers ======================================================= */

void ps_api_error(ps_api_result *r, int status, const char *code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ps_utf8_sanitize(msg);
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

char *ps__job_json_text(const json_t *j)
{
	return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

/* ==== persisting, transitions and events =================================== */

/* Persists the job and, when to_state >= 0 or reason is set, one event. */
int ps__job_save(ps_server *srv, ps_job *job, const char *kind, const char *actor,
                 int from_state, int to_state, const char *reason)
{
	char *checks = ps__job_json_text(job->checks), *last_error = ps__job_json_text(job->last_error);
	char *status = ps__job_json_text(job->last_status);
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
void ps__job_transition(ps_server *srv, ps_job *job, int to, const char *actor,
                        const char *fmt, ...)
{
	char reason[1200];
	int from = job->state;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	ps_utf8_sanitize(reason);
	job->state = to;
	job->updated_at = ps_time_now_ms();
	ps__job_save(srv, job, "transition", actor, from, to, reason);
	ps_log_info("job %s: %s -> %s (%s): %s", job->spec->name, ps_job_state_name(from),
	            ps_job_state_name(to), actor, reason);
	ps__job_notify(srv, job, from, to, actor, reason);
	pthread_cond_broadcast(&srv->changed);
}

/* Stores ev, its reason formatted from fmt into ev->reason's buffer. */
static void event_vadd(ps_server *srv, ps_job *job, ps_store_event *ev, char *reason,
                       size_t len, const char *fmt, va_list ap)
{
	ps_error err;

	vsnprintf(reason, len, fmt, ap);
	ps_utf8_sanitize(reason);
	ev->reason = reason;
	ps_error_clear(&err);
	if (ps_store_event_add(srv->store, job->id, ev, &err) != PS_OK)
		ps_log_error("job %s: %s", job->spec->name, err.message);
}

void ps__job_event(ps_server *srv, ps_job *job, const char *kind, const char *fmt, ...)
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
void ps__job_gap_event(ps_server *srv, ps_job *job, const char *actor, const char *from,
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

/* ==== the job table ======================================================== */

ps_job *ps__job_new(ps_server *srv, const char *id, char *spec_text, ps_spec *spec)
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

void ps__job_free(ps_job *job)
{
	if (!job)
		return;
	free(job->spec_text);
	ps_spec_free(job->spec);
	json_decref(job->checks);
	json_decref(job->last_error);
	json_decref(job->last_status);
	json_decref(job->last_compare);
	free(job->history);
	ps_run_status_destroy(&job->status);
	ps_live_destroy(&job->live);
	free(job);
}

void ps__job_append(ps_server *srv, ps_job *job)
{
	ps_job **pp = &srv->jobs;

	while (*pp)
		pp = &(*pp)->next;
	*pp = job;
}

/* Parses a spec document; the stored text is its compact form. */
int ps__job_parse_spec(const char *text, size_t len, const char *origin, ps_spec **spec,
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
	if (ps__job_parse_spec(row->spec, strlen(row->spec), row->name, &spec, &text, &err) != PS_OK) {
		ps_log_error("job store: job %s: its spec no longer parses (%s); left out", row->name,
		             err.message);
		return PS_OK;
	}
	job = ps__job_new(srv, row->id, text, spec);
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
	ps__job_append(srv, job);
	return PS_OK;
}

int ps_server_jobs_load(ps_server *srv, ps_error *err)
{
	ps_source_resources held;
	int rc = ps_store_each(srv->store, load_one, srv, err);

	if (rc != PS_OK)
		return rc;
	pthread_mutex_lock(&srv->mu);
	for (ps_job *job = srv->jobs; job; job = job->next) {
		ps__job_compare_load(srv, job);   /* for /metrics */
		switch (job->state) {
		case PS_JOB_STARTING:
		case PS_JOB_RUNNING:
		case PS_JOB_FAILED:
		case PS_JOB_READY_TO_COMPLETE:
		case PS_JOB_COMPLETING:
			ps__job_transition(srv, job, PS_JOB_STARTING, "server",
			                   "the server started; resuming from the checkpoint");
			break;
		case PS_JOB_CHECKING:
			ps__job_transition(srv, job, PS_JOB_CHECKING, "server",
			                   "the server started; running the prechecks again");
			break;
		case PS_JOB_DRAINING:
			ps__job_source_held(job->spec, &held);
			ps__job_transition(srv, job, PS_JOB_PAUSED, "server",
			                   "the server stopped while the job drained; the checkpoint holds "
			                   "everything applied, and %s everything after it",
			                   held.log_reader);
			break;
		default:
			break;
		}
		if (ps_job_state_active(job->state))
			ps__job_spawn(srv, job);
	}
	srv->jobs_loaded = true;
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
		ps__job_save(srv, job, NULL, NULL, -1, -1, NULL);   /* the last figures */
	pthread_mutex_unlock(&srv->mu);
}

void ps_server_jobs_free(ps_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	while (srv->jobs) {
		ps_job *next = srv->jobs->next;
		ps__job_free(srv->jobs);
		srv->jobs = next;
	}
	pthread_mutex_unlock(&srv->mu);
}

/* ==== what a job's source plugin says ====================================== */

/* The source plugin's declared options of spec (none when this build has no
 * plugin for its URL). */
static const ps_option_def *source_options(const ps_spec *spec)
{
	ps_error ignored;
	const ps_source_ops *ops;

	ps_error_clear(&ignored);
	ops = ps_plugin_source_for(spec->source.parsed.scheme_name, &ignored);
	return ops ? ops->options : NULL;
}

static bool same_option(const ps_spec *a, const ps_spec *b, const char *name)
{
	const json_t *x = json_object_get(a->source.options, name);
	const json_t *y = json_object_get(b->source.options, name);

	return (!x && !y) || (x && y && json_equal(x, y));
}

const char *ps__job_shared_option(const ps_spec *a, const ps_spec *b)
{
	if (strcmp(a->source.parsed.redacted, b->source.parsed.redacted) != 0)
		return NULL;
	for (const ps_option_def *d = source_options(a); d && d->name; d++)
		if (d->unique && json_object_get(a->source.options, d->name) &&
		    same_option(a, b, d->name))
			return d->name;
	return NULL;
}

const char *ps__job_changed_option(const ps_spec *a, const ps_spec *b)
{
	for (const ps_option_def *d = source_options(a); d && d->name; d++)
		if (d->restart && !same_option(a, b, d->name))
			return d->name;
	return NULL;
}

void ps__job_source_held(const ps_spec *spec, ps_source_resources *out)
{
	ps_error ignored;

	ps_error_clear(&ignored);
	ps_plugin_source_resources(ps_plugin_source_for(spec->source.parsed.scheme_name, &ignored),
	                           spec->source.options, out);
	if (!out->held[0])
		snprintf(out->held, sizeof(out->held), "what the job holds on the source");
	if (!out->log_reader[0])
		snprintf(out->log_reader, sizeof(out->log_reader), "the source's log reader");
}
