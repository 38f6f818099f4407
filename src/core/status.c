/*
 * status.c — a job's live figures (see status.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/plugin.h"
#include "core/status.h"
#include "penstock/source.h"

const double ps_batch_bucket_le[PS_BATCH_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

void ps_run_status_init(ps_run_status *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->lag_bytes = -1;
	s->retained_bytes = -1;
	s->retention_limit_bytes = -1;
	s->retention_safe_bytes = -1;
}

void ps_run_status_destroy(ps_run_status *s)
{
	free(s->tables);
	s->tables = NULL;
	free(s->table_ops);
	s->table_ops = NULL;
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
	out->table_ops = NULL;
	out->ntable_ops = 0;
	pthread_mutex_unlock(&s->mu);
}

void ps_run_status_copy_all(ps_run_status *s, ps_run_status *out)
{
	ps_run_status_copy(s, out);
	pthread_mutex_lock(&s->mu);
	if (s->ntable_ops) {
		out->table_ops = malloc(s->ntable_ops * sizeof(*s->table_ops));
		if (out->table_ops) {
			memcpy(out->table_ops, s->table_ops, s->ntable_ops * sizeof(*s->table_ops));
			out->ntable_ops = s->ntable_ops;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void ps_run_status_copy_free(ps_run_status *copy)
{
	free(copy->tables);
	free(copy->table_ops);
	copy->tables = NULL;
	copy->table_ops = NULL;
	copy->ntables = copy->ntable_ops = 0;
}

/* --- load progress: rate and ETA of each table ---------------------------- */

#define RATE_WINDOW_NS 2000000000ull

/* t's rate and ETA from the same table's previous entry (or none). */
static void table_rate(ps_table_status *t, const ps_table_status *prev, uint64_t now)
{
	long long left;

	if (!prev || t->rows_copied < prev->rate_rows) {
		t->rate_rows = t->rows_copied;
		t->rate_ns = now;
		t->rows_per_sec = 0;
	} else if (now - prev->rate_ns >= RATE_WINDOW_NS) {
		double window = (double)(t->rows_copied - prev->rate_rows) * 1e9 /
		                (double)(now - prev->rate_ns);
		/* half the last window, half the ones before: steady, yet a
		 * stalled copy shows within a few windows */
		t->rows_per_sec = prev->rows_per_sec > 0 ? (prev->rows_per_sec + window) / 2 : window;
		t->rate_rows = t->rows_copied;
		t->rate_ns = now;
	} else {
		t->rows_per_sec = prev->rows_per_sec;
		t->rate_rows = prev->rate_rows;
		t->rate_ns = prev->rate_ns;
	}
	left = t->rows_estimated - t->rows_copied;
	if (t->finished || (t->units_total && t->units_done >= t->units_total))
		t->eta_seconds = 0;
	else if (t->rows_estimated > 0 && left > 0 && t->rows_per_sec > 0)
		t->eta_seconds = (double)left / t->rows_per_sec;
	else
		t->eta_seconds = -1;
}

int ps_run_status_set_tables(ps_run_status *s, const ps_table_status *tables, size_t n)
{
	ps_table_status *copy = NULL;
	uint64_t now = ps_now_ns();

	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return PS_ENOMEM;
		memcpy(copy, tables, n * sizeof(*copy));
	}
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		const ps_table_status *prev = NULL;

		/* the same table is usually at the same index */
		if (i < s->ntables && strcmp(s->tables[i].name, copy[i].name) == 0 &&
		    strcmp(s->tables[i].schema, copy[i].schema) == 0)
			prev = &s->tables[i];
		for (size_t j = 0; !prev && j < s->ntables; j++)
			if (strcmp(s->tables[j].name, copy[i].name) == 0 &&
			    strcmp(s->tables[j].schema, copy[i].schema) == 0)
				prev = &s->tables[j];
		table_rate(&copy[i], prev, now);
	}
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

/* --- changes by table and operation --------------------------------------- */

static int ops_index(int op)
{
	switch (op) {
	case PS_OP_INSERT: return PS_OPS_INSERT;
	case PS_OP_UPDATE: return PS_OPS_UPDATE;
	case PS_OP_DELETE: return PS_OPS_DELETE;
	case PS_OP_TRUNCATE: return PS_OPS_TRUNCATE;
	default: return -1;
	}
}

const char *ps_ops_name(int i)
{
	static const char *const names[PS_OPS_N] = {"insert", "update", "delete", "truncate"};

	return i >= 0 && i < PS_OPS_N ? names[i] : "?";
}

static bool ops_row_is(const ps_table_ops *r, const char *schema, const char *name)
{
	return strcmp(r->name, name) == 0 && strcmp(r->schema, schema) == 0;
}

void ps_op_counts_add(ps_op_counts *c, const char *schema, const char *name, int op,
                      size_t bytes)
{
	int k = ops_index(op);
	ps_table_ops *row = NULL;

	if (k < 0)
		return;
	schema = schema ? schema : "";
	name = name ? name : "";
	if (c->last < c->n && ops_row_is(&c->rows[c->last], schema, name))
		row = &c->rows[c->last];
	for (size_t i = 0; !row && i < c->n; i++)
		if (ops_row_is(&c->rows[i], schema, name)) {
			row = &c->rows[i];
			c->last = i;
		}
	if (!row && c->n >= PS_TABLE_OPS_MAX) {
		/* past the bound: the shared row with empty names, kept last */
		schema = name = "";
		row = ops_row_is(&c->rows[c->n - 1], "", "") ? &c->rows[c->n - 1] : NULL;
	}
	if (!row) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 16;
			ps_table_ops *rows = realloc(c->rows, (cap > PS_TABLE_OPS_MAX + 1 ? PS_TABLE_OPS_MAX + 1
			                                                                  : cap) * sizeof(*rows));
			if (!rows)
				return;
			c->rows = rows;
			c->cap = cap > PS_TABLE_OPS_MAX + 1 ? PS_TABLE_OPS_MAX + 1 : cap;
		}
		row = &c->rows[c->n];
		memset(row, 0, sizeof(*row));
		snprintf(row->schema, sizeof(row->schema), "%s", schema);
		snprintf(row->name, sizeof(row->name), "%s", name);
		c->last = c->n++;
	}
	row->changes[k]++;
	row->bytes[k] += bytes;
	c->dirty = true;
}

void ps_op_counts_free(ps_op_counts *c)
{
	free(c->rows);
	memset(c, 0, sizeof(*c));
}

void ps_run_status_set_ops(ps_run_status *s, ps_op_counts *c)
{
	ps_table_ops *copy;

	if (!c->dirty || !c->n)
		return;
	copy = malloc(c->n * sizeof(*copy));
	if (!copy)
		return;
	memcpy(copy, c->rows, c->n * sizeof(*copy));
	pthread_mutex_lock(&s->mu);
	free(s->table_ops);
	s->table_ops = copy;
	s->ntable_ops = c->n;
	pthread_mutex_unlock(&s->mu);
	c->dirty = false;
}

void ps_run_status_batch(ps_run_status *s, double seconds)
{
	size_t b = 0;

	while (b < PS_BATCH_BUCKETS && seconds > ps_batch_bucket_le[b])
		b++;
	pthread_mutex_lock(&s->mu);
	s->batch_buckets[b]++;
	s->batch_count++;
	s->batch_seconds += seconds;
	pthread_mutex_unlock(&s->mu);
}

void ps_run_status_set_retention(ps_run_status *s, const ps_log_retention *r)
{
	pthread_mutex_lock(&s->mu);
	if (r->retained_bytes >= 0)
		s->retained_bytes = r->retained_bytes;
	s->retention_limit_bytes = r->limit_bytes;
	s->retention_safe_bytes = r->safe_bytes;
	snprintf(s->retention_status, sizeof(s->retention_status), "%s", r->status);
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

static json_t *count_or_null(long long n)
{
	return n >= 0 ? json_integer(n) : json_null();
}

/* {count, seconds_sum, buckets: [{le, count}]}, the counts cumulative as
 * Prometheus wants them; the last le is null (+Inf). */
static json_t *batches_json(const ps_run_status *c)
{
	json_t *buckets = json_array();
	uint64_t sum = 0;

	for (size_t b = 0; b <= PS_BATCH_BUCKETS; b++) {
		sum += c->batch_buckets[b];
		json_array_append_new(buckets, json_pack("{s:o, s:I}", "le",
		                                         b < PS_BATCH_BUCKETS
		                                         ? json_real(ps_batch_bucket_le[b]) : json_null(),
		                                         "count", (json_int_t)sum));
	}
	return json_pack("{s:I, s:f, s:o}", "count", (json_int_t)c->batch_count, "seconds_sum",
	                 c->batch_seconds, "buckets", buckets);
}

static json_t *table_changes_json(const ps_run_status *c)
{
	json_t *list = json_array();

	for (size_t i = 0; i < c->ntable_ops; i++) {
		const ps_table_ops *t = &c->table_ops[i];
		json_t *o = json_pack("{s:s, s:s}", "schema", t->schema, "name", t->name);
		char key[32];

		for (int k = 0; k < PS_OPS_N; k++) {
			json_object_set_new(o, ps_ops_name(k), json_integer((json_int_t)t->changes[k]));
			snprintf(key, sizeof(key), "%s_bytes", ps_ops_name(k));
			json_object_set_new(o, key, json_integer((json_int_t)t->bytes[k]));
		}
		json_array_append_new(list, o);
	}
	return list;
}

json_t *ps_run_status_json(const ps_run_status *c)
{
	json_t *tables = json_array(), *o;
	const char *phase = ps_phase_name(c->phase);
	double rows_per_sec = 0;

	for (size_t i = 0; i < c->ntables; i++) {
		const ps_table_status *t = &c->tables[i];
		json_array_append_new(
			tables, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:b, s:f, s:o}", "schema",
			                  t->schema, "name", t->name, "rows_copied", (json_int_t)t->rows_copied,
			                  "rows_estimated", (json_int_t)t->rows_estimated, "units_done",
			                  (json_int_t)t->units_done, "units_total", (json_int_t)t->units_total,
			                  "finished", t->finished, "insert_only", t->insert_only,
			                  "rows_per_sec", t->rows_per_sec,
			                  "eta_seconds", t->eta_seconds >= 0 ? json_real(t->eta_seconds)
			                                                     : json_null()));
		rows_per_sec += t->rows_per_sec;
	}
	o = json_pack(
		"{s:o, s:s, s:{s:o, s:o, s:o, s:o}, s:{s:f, s:o}, s:o, s:{s:f, s:f}, s:{s:I, s:I}, s:o}",
		"phase", phase ? json_string(phase) : json_null(),
		"cdc_state", ps_cdc_state_name(c->cdc_state),
		"positions", "read", position_or_null(c->read), "applied", position_or_null(c->applied),
		"acknowledged", position_or_null(c->acked), "source_end", position_or_null(c->source_end),
		"lag", "seconds", c->lag_seconds, "bytes",
		c->lag_bytes >= 0 ? json_integer(c->lag_bytes) : json_null(),
		"retained_bytes", c->retained_bytes >= 0 ? json_integer(c->retained_bytes) : json_null(),
		"rates", "changes_per_sec", c->changes_per_sec, "rows_per_sec", rows_per_sec,
		"counters", "changes_applied", (json_int_t)c->changes_applied, "txns_applied",
		(json_int_t)c->txns_applied,
		"tables", tables);
	if (!o)
		return NULL;
	json_object_set_new(o, "retention",
	                    json_pack("{s:o, s:o, s:o, s:o}", "retained_bytes",
	                              count_or_null(c->retained_bytes), "limit_bytes",
	                              count_or_null(c->retention_limit_bytes), "safe_bytes",
	                              count_or_null(c->retention_safe_bytes), "status",
	                              c->retention_status[0] ? json_string(c->retention_status)
	                                                     : json_null()));
	json_object_set_new(o, "apply_batches", batches_json(c));
	if (c->table_ops)
		json_object_set_new(o, "table_changes", table_changes_json(c));
	return o;
}
