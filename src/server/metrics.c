/*
 * metrics.c — GET /metrics: every job's figures in the Prometheus text
 * exposition format (version 0.0.4). docs/api.md lists the metrics;
 * contrib/prometheus/ and contrib/grafana/ use them.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Base units (seconds, bytes), the penstock_ prefix, counters end in
 *     _total; `promtool check metrics` passes on the output (a test runs it).
 *  2. Every family has its HELP and TYPE lines even without samples, so a
 *     dashboard or alert can be checked against the names a server exposes.
 *  3. States, phases and health are state sets: one sample per possible
 *     value, 1 for the current one, so an alert on a value is defined (0)
 *     before the value first happens.
 *  4. Label values are job names (the spec keeps them to [a-z0-9_-]) and
 *     table names, escaped (backslash, quote, newline) as the format wants.
 *  5. Everything is rendered under srv->mu from one copy of each job's
 *     figures; nothing here talks to a database.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errclass.h"
#include "core/plugin.h"
#include "core/version.h"
#include "server/jobs_internal.h"
#include "server/server.h"
#include "util/buf.h"

static void label_escaped(ps_buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			ps_buf_putc(b, '\\');
		if (*s == '\n') {
			ps_buf_puts(b, "\\n");
			continue;
		}
		ps_buf_putc(b, *s);
	}
}

static void help(ps_buf *b, const char *name, const char *type, const char *text)
{
	ps_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A number as the format writes it (integers without an exponent). */
static void value(ps_buf *b, double v)
{
	if (isnan(v))
		ps_buf_puts(b, " NaN\n");
	else if (v == floor(v) && fabs(v) < 1e15)
		ps_buf_printf(b, " %.0f\n", v);
	else
		ps_buf_printf(b, " %.9g\n", v);
}

static const json_t *path(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	return b ? json_object_get(v, b) : v;
}

/* One job and its figures, copied once per scrape (note 5). */
typedef struct jobfig {
	ps_job *job;
	json_t *fig;        /* ps_job_figures, or NULL: never ran */
} jobfig;

/* name{job="J"} value, for each job whose figure a.b is a number. */
static void per_job(ps_buf *b, const jobfig *jf, size_t n, const char *name, const char *type,
                    const char *text, const char *a, const char *k)
{
	help(b, name, type, text);
	for (size_t i = 0; i < n; i++) {
		const json_t *v = path(jf[i].fig, a, k);
		if (!json_is_number(v))
			continue;
		ps_buf_printf(b, "%s{job=\"%s\"}", name, jf[i].job->spec->name);
		value(b, json_number_value(v));
	}
}

static void table_label(ps_buf *b, const json_t *t)
{
	ps_buf_puts(b, "table=\"");
	label_escaped(b, json_string_value(json_object_get(t, "schema")));
	ps_buf_putc(b, '.');
	label_escaped(b, json_string_value(json_object_get(t, "name")));
	ps_buf_putc(b, '"');
}

/* name{job,table} for each table of each job's figure array `list`. */
static void per_table(ps_buf *b, const jobfig *jf, size_t n, const char *name, const char *type,
                      const char *text, const char *list, const char *key)
{
	help(b, name, type, text);
	for (size_t i = 0; i < n; i++) {
		const json_t *t;
		size_t k;

		json_array_foreach(json_object_get(jf[i].fig, list), k, t) {
			const json_t *v = json_object_get(t, key);
			if (!json_is_number(v))
				continue;
			ps_buf_printf(b, "%s{job=\"%s\",", name, jf[i].job->spec->name);
			table_label(b, t);
			ps_buf_putc(b, '}');
			value(b, json_number_value(v));
		}
	}
}

/* ==== state sets (note 3) ================================================= */

static void state_sets(ps_buf *b, const jobfig *jf, size_t n)
{
	help(b, "penstock_job_state", "gauge", "1 for the job's current state, 0 for the others.");
	for (size_t i = 0; i < n; i++)
		for (int s = 0; s < PS_JOB_NSTATES; s++)
			ps_buf_printf(b, "penstock_job_state{job=\"%s\",state=\"%s\"} %d\n",
			              jf[i].job->spec->name, ps_job_state_name(s), jf[i].job->state == s);
	help(b, "penstock_job_phase", "gauge",
	     "1 for the running job's phase (snapshot, catchup, streaming); all 0 when no run.");
	for (size_t i = 0; i < n; i++)
		for (int p = PS_PHASE_SNAPSHOT; p <= PS_PHASE_STREAMING; p++)
			ps_buf_printf(b, "penstock_job_phase{job=\"%s\",phase=\"%s\"} %d\n",
			              jf[i].job->spec->name, ps_phase_name(p),
			              jf[i].job->running && jf[i].job->phase == p);
	help(b, "penstock_job_health", "gauge", "1 for the job's current health, 0 for the others.");
	for (size_t i = 0; i < n; i++)
		for (int h = PS_HEALTH_OK; h <= PS_HEALTH_DEGRADED_LOG_FULLY_READ; h++)
			ps_buf_printf(b, "penstock_job_health{job=\"%s\",health=\"%s\"} %d\n",
			              jf[i].job->spec->name, ps_health_name(h), jf[i].job->health == h);
	help(b, "penstock_job_healthy", "gauge", "1 when health is ok, 0 when degraded.");
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(b, "penstock_job_healthy{job=\"%s\",health=\"%s\"} %d\n",
		              jf[i].job->spec->name, ps_health_name(jf[i].job->health),
		              jf[i].job->health == PS_HEALTH_OK);
}

/* ==== retries and errors =================================================== */

static void failures(ps_buf *b, const jobfig *jf, size_t n)
{
	help(b, "penstock_job_retries", "gauge", "Consecutive failed runs being retried.");
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(b, "penstock_job_retries{job=\"%s\"} %d\n", jf[i].job->spec->name,
		              jf[i].job->attempts);
	help(b, "penstock_job_retries_total", "counter",
	     "Retries scheduled after a retryable error, since the server started.");
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(b, "penstock_job_retries_total{job=\"%s\"} %llu\n", jf[i].job->spec->name,
		              jf[i].job->retries_total);
	help(b, "penstock_job_errors_total", "counter",
	     "Errors that ended a run or a check, by class (retryable or not), since the server "
	     "started.");
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < PS_ERRCLASS_COUNT; c++)
			ps_buf_printf(b, "penstock_job_errors_total{job=\"%s\",class=\"%s\"} %llu\n",
			              jf[i].job->spec->name, ps_errclass_name(c), jf[i].job->errors[c]);
	help(b, "penstock_job_precheck_failures", "gauge",
	     "Failed items of the job's last precheck report, by level (error blocks the job).");
	for (size_t i = 0; i < n; i++) {
		int failed[2] = {0, 0};
		const json_t *it;
		size_t k;

		if (!jf[i].job->checks)
			continue;
		json_array_foreach(json_object_get(jf[i].job->checks, "items"), k, it) {
			const char *res = json_string_value(json_object_get(it, "result"));
			const char *lvl = json_string_value(json_object_get(it, "level"));
			if (res && strcmp(res, "failed") == 0)
				failed[lvl && strcmp(lvl, "error") == 0 ? 0 : 1]++;
		}
		ps_buf_printf(b, "penstock_job_precheck_failures{job=\"%s\",level=\"error\"} %d\n"
		              "penstock_job_precheck_failures{job=\"%s\",level=\"warning\"} %d\n",
		              jf[i].job->spec->name, failed[0], jf[i].job->spec->name, failed[1]);
	}
}

/* ==== the source's log ===================================================== */

static void source_log(ps_buf *b, const jobfig *jf, size_t n)
{
	static const char *const positions[] = {"read", "applied", "acknowledged", "source_end"};

	per_job(b, jf, n, "penstock_job_lag_seconds", "gauge",
	        "Age of the last applied commit while changes wait; 0 when nothing waits.", "lag",
	        "seconds");
	per_job(b, jf, n, "penstock_job_lag_bytes", "gauge",
	        "Source log between the applied position and its end.", "lag", "bytes");
	per_job(b, jf, n, "penstock_job_slot_retained_bytes", "gauge",
	        "Source log kept for the job (PostgreSQL: WAL held by the slot).", "retained_bytes",
	        NULL);
	per_job(b, jf, n, "penstock_job_slot_retention_limit_bytes", "gauge",
	        "The most log the source keeps for a reader before giving it up (PostgreSQL: "
	        "max_slot_wal_keep_size); absent when unlimited.", "retention", "limit_bytes");
	per_job(b, jf, n, "penstock_job_slot_safe_bytes", "gauge",
	        "Log that may still be written before the job's reader is at risk (PostgreSQL: "
	        "safe_wal_size); absent when unlimited.", "retention", "safe_bytes");
	help(b, "penstock_job_slot_status", "gauge",
	     "1 with the source's word for its reader's state (PostgreSQL wal_status: reserved, "
	     "extended, unreserved, lost).");
	for (size_t i = 0; i < n; i++) {
		const char *st = json_string_value(path(jf[i].fig, "retention", "status"));
		if (st) {
			ps_buf_printf(b, "penstock_job_slot_status{job=\"%s\",status=\"", jf[i].job->spec->name);
			label_escaped(b, st);
			ps_buf_puts(b, "\"} 1\n");
		}
	}
	help(b, "penstock_job_position_bytes", "gauge",
	     "The job's positions as byte offsets in the source's log, where the source numbers "
	     "its log so (PostgreSQL: the LSN).");
	for (size_t i = 0; i < n; i++) {
		ps_error ignored;
		const ps_source_ops *ops;

		ps_error_clear(&ignored);
		ops = ps_plugin_source_for(jf[i].job->spec->source.parsed.scheme_name, &ignored);
		for (size_t p = 0; p < 4; p++) {
			long long off = ps_plugin_position_offset(
				ops, json_string_value(path(jf[i].fig, "positions", positions[p])));
			if (off >= 0)
				ps_buf_printf(b, "penstock_job_position_bytes{job=\"%s\",position=\"%s\"} %lld\n",
				              jf[i].job->spec->name, positions[p], off);
		}
	}
}

/* ==== applying changes ===================================================== */

static void table_ops(ps_buf *b, const jobfig *jf, size_t n, const char *name, const char *text,
                      const char *suffix)
{
	static const char *const ops[] = {"insert", "update", "delete", "truncate"};

	help(b, name, "counter", text);
	for (size_t i = 0; i < n; i++) {
		const json_t *t;
		size_t k;

		json_array_foreach(json_object_get(jf[i].fig, "table_changes"), k, t)
			for (size_t o = 0; o < 4; o++) {
				char key[32];
				const json_t *v;

				snprintf(key, sizeof(key), "%s%s", ops[o], suffix);
				v = json_object_get(t, key);
				ps_buf_printf(b, "%s{job=\"%s\",", name, jf[i].job->spec->name);
				if (json_string_length(json_object_get(t, "name")))
					table_label(b, t);
				else
					ps_buf_puts(b, "table=\"(other)\"");
				ps_buf_printf(b, ",op=\"%s\"} %.0f\n", ops[o],
				              json_is_number(v) ? json_number_value(v) : 0.0);
			}
	}
}

static void applying(ps_buf *b, const jobfig *jf, size_t n)
{
	per_job(b, jf, n, "penstock_job_changes_per_second", "gauge",
	        "Changes applied per second over the last few seconds.", "rates", "changes_per_sec");
	per_job(b, jf, n, "penstock_job_rows_per_second", "gauge",
	        "Rows copied per second by the initial load (or a table's backfill).", "rates",
	        "rows_per_sec");
	per_job(b, jf, n, "penstock_job_changes_applied_total", "counter",
	        "Changes applied in the current or last run.", "counters", "changes_applied");
	per_job(b, jf, n, "penstock_job_transactions_applied_total", "counter",
	        "Source transactions applied in the current or last run.", "counters", "txns_applied");
	table_ops(b, jf, n, "penstock_table_changes_total",
	          "Changes applied in the current or last run, by table and operation.", "");
	table_ops(b, jf, n, "penstock_table_change_bytes_total",
	          "Bytes of the changes applied (their values' size in memory) in the current or "
	          "last run, by table and operation.", "_bytes");

	help(b, "penstock_job_apply_batch_duration_seconds", "histogram",
	     "Time to commit one apply batch in the target with its checkpoint, current or last run.");
	for (size_t i = 0; i < n; i++) {
		const json_t *hist = json_object_get(jf[i].fig, "apply_batches"), *bk;
		const char *name = jf[i].job->spec->name;
		size_t k;

		if (!json_is_object(hist))
			continue;
		json_array_foreach(json_object_get(hist, "buckets"), k, bk) {
			const json_t *le = json_object_get(bk, "le");
			ps_buf_printf(b, "penstock_job_apply_batch_duration_seconds_bucket{job=\"%s\",le=\"",
			              name);
			if (json_is_number(le))
				ps_buf_printf(b, "%g", json_number_value(le));
			else
				ps_buf_puts(b, "+Inf");
			ps_buf_puts(b, "\"}");
			value(b, json_number_value(json_object_get(bk, "count")));
		}
		ps_buf_printf(b, "penstock_job_apply_batch_duration_seconds_sum{job=\"%s\"}", name);
		value(b, json_number_value(json_object_get(hist, "seconds_sum")));
		ps_buf_printf(b, "penstock_job_apply_batch_duration_seconds_count{job=\"%s\"}", name);
		value(b, json_number_value(json_object_get(hist, "count")));
	}
}

/* ==== the initial load ===================================================== */

static void snapshot(ps_buf *b, const jobfig *jf, size_t n)
{
	per_table(b, jf, n, "penstock_snapshot_rows_copied", "gauge",
	          "Rows of the table copied by the initial load (or its backfill).", "tables",
	          "rows_copied");
	per_table(b, jf, n, "penstock_snapshot_rows_estimated", "gauge",
	          "The source's estimate of the table's rows (-1 without statistics).", "tables",
	          "rows_estimated");
	per_table(b, jf, n, "penstock_snapshot_units_done", "gauge", "Copy units of the table done.",
	          "tables", "units_done");
	per_table(b, jf, n, "penstock_snapshot_units_planned", "gauge",
	          "Copy units the table is split into (until issue 20: penstock_snapshot_units_total).",
	          "tables", "units_total");
	per_table(b, jf, n, "penstock_snapshot_rows_per_second", "gauge",
	          "Rows of the table copied per second over the last few seconds.", "tables",
	          "rows_per_sec");
	per_table(b, jf, n, "penstock_snapshot_eta_seconds", "gauge",
	          "Seconds left to copy the table at the current rate (absent when unknown).",
	          "tables", "eta_seconds");
}

/* ==== compare ============================================================== */

static void compares(ps_buf *b, const jobfig *jf, size_t n)
{
	static const char *const kinds[] = {"missing_in_target", "extra_in_target", "different"};

	help(b, "penstock_job_compare_consistent", "gauge",
	     "1 when the job's last compare found the target equal to the source (or repaired it).");
	for (size_t i = 0; i < n; i++) {
		const json_t *c = jf[i].job->last_compare;
		if (!c)
			continue;
		ps_buf_printf(b, "penstock_job_compare_consistent{job=\"%s\",mode=\"%s\"} %d\n",
		              jf[i].job->spec->name, json_string_value(json_object_get(c, "mode"))
		              ? json_string_value(json_object_get(c, "mode")) : "",
		              json_is_true(json_object_get(c, "consistent")));
	}
	help(b, "penstock_job_compare_timestamp_seconds", "gauge",
	     "When the job's last compare finished, in seconds since the epoch.");
	for (size_t i = 0; i < n; i++) {
		const json_t *c = jf[i].job->last_compare;
		if (c)
			ps_buf_printf(b, "penstock_job_compare_timestamp_seconds{job=\"%s\"} %.3f\n",
			              jf[i].job->spec->name,
			              (double)json_integer_value(json_object_get(c, "at_ms")) / 1000.0);
	}
	help(b, "penstock_job_compare_rows", "gauge",
	     "Rows the job's last compare found missing in the target, extra in it, or different, "
	     "by table.");
	for (size_t i = 0; i < n; i++) {
		const json_t *t;
		size_t k;

		if (!jf[i].job->last_compare)
			continue;
		json_array_foreach(json_object_get(jf[i].job->last_compare, "tables"), k, t)
			for (size_t d = 0; d < 3; d++) {
				const json_t *v = json_object_get(t, kinds[d]);
				ps_buf_printf(b, "penstock_job_compare_rows{job=\"%s\",table=\"",
				              jf[i].job->spec->name);
				label_escaped(b, json_string_value(json_object_get(t, "table")));
				ps_buf_printf(b, "\",result=\"%s\"} %.0f\n", kinds[d],
				              json_is_number(v) ? json_number_value(v) : 0.0);
			}
	}
}

/* ==== the whole page ====================================================== */

char *ps_jobs_metrics(ps_server *srv)
{
	jobfig *jf = NULL;
	size_t n = 0, cap = 0;
	bool oom = false;
	ps_buf b;

	ps_buf_init(&b, 256u << 20);   /* far above any real job table */
	pthread_mutex_lock(&srv->mu);
	for (ps_job *j = srv->jobs; j; j = j->next) {
		if (n == cap) {
			jobfig *grown = realloc(jf, (cap ? cap * 2 : 16) * sizeof(*jf));
			if (!grown) {
				oom = true;
				goto done;
			}
			jf = grown;
			cap = cap ? cap * 2 : 16;
		}
		jf[n].job = j;
		jf[n].fig = ps_job_figures(j);
		n++;
	}
	help(&b, "penstock_build_info", "gauge", "1, labelled with the running penstock's version.");
	ps_buf_printf(&b, "penstock_build_info{version=\"%s\"} 1\n", PENSTOCK_VERSION);
	help(&b, "penstock_server_start_time_seconds", "gauge",
	     "When the server started, in seconds since the epoch.");
	ps_buf_printf(&b, "penstock_server_start_time_seconds %.3f\n",
	              (double)srv->started_ms / 1000.0);
	help(&b, "penstock_job_info", "gauge", "1 for each job, labelled with its id, type and the "
	     "URL schemes of its source and target.");
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(&b, "penstock_job_info{job=\"%s\",id=\"%s\",type=\"%s\",source=\"%s\","
		              "target=\"%s\"} 1\n", jf[i].job->spec->name, jf[i].job->id,
		              ps_job_type_name(jf[i].job->spec->type),
		              jf[i].job->spec->source.parsed.scheme_name,
		              jf[i].job->spec->target.parsed.scheme_name);
	state_sets(&b, jf, n);
	failures(&b, jf, n);
	source_log(&b, jf, n);
	applying(&b, jf, n);
	snapshot(&b, jf, n);
	compares(&b, jf, n);
	ps_webhooks_metrics(srv->webhooks, &b);
done:
	pthread_mutex_unlock(&srv->mu);
	for (size_t i = 0; i < n; i++)
		json_decref(jf[i].fig);
	free(jf);
	if (oom || !b.data) {   /* a truncated page would lie: none at all */
		ps_buf_free(&b);
		return NULL;
	}
	return ps_buf_detach(&b);
}
