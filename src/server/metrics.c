/*
 * metrics.c — GET /metrics: every job's figures in the Prometheus text
 * exposition format (version 0.0.4). docs/api.md lists the metrics.
 *
 * Label values are job and table names: the spec restricts job names to
 * [a-z0-9_-], and table names are escaped (backslash, quote, newline) as the
 * format requires.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static double num(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (b)
		v = json_object_get(v, b);
	return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* A figure name a sink reported (sink.h figures): [a-z0-9_]+. */
static bool figure_name_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* The target's own figures (sink.h figures), one metric family per name:
 * penstock_target_<name>, a counter's with _total; whatever a sink calls
 * them, the core names no engine. srv->mu held. */
static void target_figures(ps_buf *b, ps_server *srv)
{
	json_t *families = json_object(), *fam, *fig;
	const char *name;

	for (ps_job *j = srv->jobs; j; j = j->next) {
		json_t *f = ps_job_figures(j);

		json_object_foreach(json_object_get(f, "target_figures"), name, fig) {
			json_t *value = json_object_get(fig, "value");
			const char *type = json_string_value(json_object_get(fig, "type"));
			bool counter = type && strcmp(type, "counter") == 0;

			if (!figure_name_ok(name) || !json_is_number(value) ||
			    (!counter && !(type && strcmp(type, "gauge") == 0)))
				continue;
			fam = json_object_get(families, name);
			if (!fam) {
				const char *h = json_string_value(json_object_get(fig, "help"));
				fam = json_pack("{s:b, s:s, s:[]}", "counter", counter, "help",
				                h ? h : "A figure of the job's target.", "samples");
				json_object_set_new(families, name, fam);
			}
			json_array_append_new(json_object_get(fam, "samples"),
			                      json_pack("[s, f]", j->spec->name, json_number_value(value)));
		}
		json_decref(f);
	}
	json_object_foreach(families, name, fam) {
		char metric[160], help_text[512];
		bool counter = json_is_true(json_object_get(fam, "counter"));
		size_t n = strlen(name), i;
		json_t *sample;
		const char *h = json_string_value(json_object_get(fam, "help"));

		snprintf(metric, sizeof(metric), "penstock_target_%s%s", name,
		         counter && !(n > 6 && strcmp(name + n - 6, "_total") == 0) ? "_total" : "");
		/* HELP text: one line, backslashes escaped as the format wants */
		snprintf(help_text, sizeof(help_text), "%s", h);
		for (char *c = help_text; *c; c++)
			if (*c == '\n' || *c == '\\')
				*c = ' ';
		help(b, metric, counter ? "counter" : "gauge", help_text);
		json_array_foreach(json_object_get(fam, "samples"), i, sample)
			ps_buf_printf(b, "%s{job=\"%s\"} %.10g\n", metric,
			              json_string_value(json_array_get(sample, 0)),
			              json_number_value(json_array_get(sample, 1)));
	}
	json_decref(families);
}

char *ps_jobs_metrics(ps_server *srv)
{
	ps_buf b;
	static const char *const gauges[][4] = {
		{"penstock_job_lag_seconds", "lag", "seconds", "Age of the oldest change not yet applied."},
		{"penstock_job_lag_bytes", "lag", "bytes", "Source log between the applied position and its end."},
		{"penstock_job_slot_retained_bytes", "retained_bytes", NULL,
		 "Source log kept for the job: its end minus the acknowledged position."},
		{"penstock_job_changes_per_second", "rates", "changes_per_sec", "Changes applied per second."},
	};

	ps_buf_init(&b, 64u << 20);
	pthread_mutex_lock(&srv->mu);
	help(&b, "penstock_job_state", "gauge", "1 for the job's current state.");
	for (ps_job *j = srv->jobs; j; j = j->next)
		ps_buf_printf(&b, "penstock_job_state{job=\"%s\",state=\"%s\"} 1\n", j->spec->name,
		              ps_job_state_name(j->state));
	help(&b, "penstock_job_phase", "gauge", "1 for the running job's phase.");
	for (ps_job *j = srv->jobs; j; j = j->next)
		if (j->running && ps_phase_name(j->phase))
			ps_buf_printf(&b, "penstock_job_phase{job=\"%s\",phase=\"%s\"} 1\n", j->spec->name,
			              ps_phase_name(j->phase));
	help(&b, "penstock_job_healthy", "gauge", "1 when health is ok, 0 when degraded.");
	for (ps_job *j = srv->jobs; j; j = j->next)
		ps_buf_printf(&b, "penstock_job_healthy{job=\"%s\",health=\"%s\"} %d\n", j->spec->name,
		              ps_health_name(j->health), j->health == PS_HEALTH_OK);
	help(&b, "penstock_job_retries", "gauge", "Consecutive failed runs being retried.");
	for (ps_job *j = srv->jobs; j; j = j->next)
		ps_buf_printf(&b, "penstock_job_retries{job=\"%s\"} %d\n", j->spec->name, j->attempts);

	for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		help(&b, gauges[g][0], "gauge", gauges[g][3]);
		for (ps_job *j = srv->jobs; j; j = j->next) {
			json_t *f = ps_job_figures(j);
			json_t *v = json_object_get(f, gauges[g][1]);
			if (gauges[g][2])
				v = json_object_get(v, gauges[g][2]);
			if (json_is_number(v))
				ps_buf_printf(&b, "%s{job=\"%s\"} %.6g\n", gauges[g][0], j->spec->name,
				              json_number_value(v));
			json_decref(f);
		}
	}
	{
		static const char *const counters[][3] = {
			{"penstock_job_changes_applied_total", "changes_applied",
			 "Changes applied in the current or last run."},
			{"penstock_job_transactions_applied_total", "txns_applied",
			 "Source transactions applied in the current or last run."},
		};
		for (size_t c = 0; c < 2; c++) {
			help(&b, counters[c][0], "counter", counters[c][2]);
			for (ps_job *j = srv->jobs; j; j = j->next) {
				json_t *f = ps_job_figures(j);
				if (f)
					ps_buf_printf(&b, "%s{job=\"%s\"} %.0f\n", counters[c][0], j->spec->name,
					              num(f, "counters", counters[c][1]));
				json_decref(f);
			}
		}
	}
	{
		static const char *const cols[][3] = {
			{"penstock_snapshot_rows_copied", "rows_copied", "Rows of the table copied by the initial load."},
			{"penstock_snapshot_rows_estimated", "rows_estimated", "The source's estimate of the table's rows."},
			{"penstock_snapshot_units_done", "units_done", "Copy units of the table done."},
			{"penstock_snapshot_units_total", "units_total", "Copy units of the table."},
		};
		for (size_t c = 0; c < 4; c++) {
			help(&b, cols[c][0], "gauge", cols[c][2]);
			for (ps_job *j = srv->jobs; j; j = j->next) {
				json_t *f = ps_job_figures(j), *t;
				size_t i;
				json_array_foreach(json_object_get(f, "tables"), i, t) {
					ps_buf_printf(&b, "%s{job=\"%s\",table=\"", cols[c][0], j->spec->name);
					label_escaped(&b, json_string_value(json_object_get(t, "schema")));
					ps_buf_putc(&b, '.');
					label_escaped(&b, json_string_value(json_object_get(t, "name")));
					ps_buf_printf(&b, "\"} %.0f\n", num(t, cols[c][1], NULL));
				}
				json_decref(f);
			}
		}
	}
	target_figures(&b, srv);
	pthread_mutex_unlock(&srv->mu);
	return ps_buf_detach(&b);   /* the limit is far above any real job table */
}
