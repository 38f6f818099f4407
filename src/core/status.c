/*
 * status.c — a job's live figures (see status.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/plugin.h"
#include "core/status.h"

void ps_run_status_init(ps_run_status *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->lag_bytes = -1;
	s->retained_bytes = -1;
}

void ps_run_status_destroy(ps_run_status *s)
{
	free(s->tables);
	s->tables = NULL;
	pthread_mutex_destroy(&s->mu);
}

void ps_run_status_copy(ps_run_status *s, ps_run_status *out)
{
	pthread_mutex_lock(&s->mu);
	*out = *s;
	out->tables = NULL;
	if (s->ntables) {
		out->tables = malloc(s->ntables * sizeof(*s->tables));
		if (out->tables)
			memcpy(out->tables, s->tables, s->ntables * sizeof(*s->tables));
		else
			out->ntables = 0;
	}
	pthread_mutex_unlock(&s->mu);
}

int ps_run_status_set_tables(ps_run_status *s, const ps_table_status *tables, size_t n)
{
	ps_table_status *copy = NULL;

	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return PS_ENOMEM;
		memcpy(copy, tables, n * sizeof(*copy));
	}
	pthread_mutex_lock(&s->mu);
	free(s->tables);
	s->tables = copy;
	s->ntables = n;
	pthread_mutex_unlock(&s->mu);
	return PS_OK;
}

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ps_run_status_applied(ps_run_status *s, const char *applied, int cdc_state,
                           uint64_t changes, uint64_t txns, int64_t last_commit_time_us,
                           bool idle, int phase)
{
	uint64_t now = ps_now_ns();

	pthread_mutex_lock(&s->mu);
	if (applied && applied[0])
		snprintf(s->applied, sizeof(s->applied), "%s", applied);
	s->cdc_state = cdc_state;
	s->phase = phase;
	if (s->rate_ns == 0 || changes < s->rate_changes) {
		s->rate_ns = now;
		s->rate_changes = changes;
	} else if (now - s->rate_ns >= 2000000000ull) {
		s->changes_per_sec = (double)(changes - s->rate_changes) * 1e9 / (double)(now - s->rate_ns);
		s->rate_ns = now;
		s->rate_changes = changes;
	}
	s->changes_applied = changes;
	s->txns_applied = txns;
	s->last_commit_time_us = last_commit_time_us;
	if (idle || !last_commit_time_us)
		s->lag_seconds = 0;
	else {
		double lag = (double)(wall_us() - last_commit_time_us) / 1e6;
		s->lag_seconds = lag < 0 ? 0 : lag;
	}
	if (idle)
		s->lag_bytes = 0;
	pthread_mutex_unlock(&s->mu);
}

void ps_run_status_set_health(ps_run_status *s, int health)
{
	void (*hook)(int, void *);
	void *payload;
	bool changed;

	pthread_mutex_lock(&s->mu);
	changed = s->health != health;
	s->health = health;
	hook = s->on_health;
	payload = s->health_payload;
	pthread_mutex_unlock(&s->mu);
	if (changed && hook)
		hook(health, payload);
}

const char *ps_phase_name(int phase)
{
	switch (phase) {
	case PS_PHASE_SNAPSHOT: return "snapshot";
	case PS_PHASE_CATCHUP: return "catchup";
	case PS_PHASE_STREAMING: return "streaming";
	default: return NULL;
	}
}

static json_t *position_or_null(const char *p)
{
	return p[0] ? json_string(p) : json_null();
}

json_t *ps_run_status_json(const ps_run_status *c)
{
	json_t *tables = json_array();
	const char *phase = ps_phase_name(c->phase);

	for (size_t i = 0; i < c->ntables; i++) {
		const ps_table_status *t = &c->tables[i];
		json_array_append_new(
			tables, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:b}", "schema", t->schema,
			                  "name", t->name, "rows_copied", (json_int_t)t->rows_copied,
			                  "rows_estimated", (json_int_t)t->rows_estimated,
			                  "units_done", (json_int_t)t->units_done,
			                  "units_total", (json_int_t)t->units_total, "finished", t->finished,
			                  "insert_only", t->insert_only));
	}
	return json_pack(
		"{s:o, s:s, s:{s:o, s:o, s:o, s:o}, s:{s:f, s:o}, s:o, s:{s:f}, s:{s:I, s:I}, s:o}",
		"phase", phase ? json_string(phase) : json_null(),
		"cdc_state", ps_cdc_state_name(c->cdc_state),
		"positions", "read", position_or_null(c->read), "applied", position_or_null(c->applied),
		"acknowledged", position_or_null(c->acked), "source_end", position_or_null(c->source_end),
		"lag", "seconds", c->lag_seconds, "bytes",
		c->lag_bytes >= 0 ? json_integer(c->lag_bytes) : json_null(),
		"retained_bytes", c->retained_bytes >= 0 ? json_integer(c->retained_bytes) : json_null(),
		"rates", "changes_per_sec", c->changes_per_sec,
		"counters", "changes_applied", (json_int_t)c->changes_applied, "txns_applied",
		(json_int_t)c->txns_applied,
		"tables", tables);
}
