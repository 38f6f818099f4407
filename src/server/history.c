/*
 * history.c — a job's sampled figures over the last hour (history.h).
 */
#include <math.h>
#include <string.h>

#include "server/history.h"
#include "server/lifecycle.h"
#include "server/store.h"

void ps_history_add(ps_history *h, const ps_history_sample *s)
{
	h->ring[h->next] = *s;
	h->next = (h->next + 1) % PS_HISTORY_SAMPLES;
	if (h->n < PS_HISTORY_SAMPLES)
		h->n++;
}

static double real_or_nan(const json_t *v)
{
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static long long int_or_unknown(const json_t *v)
{
	return json_is_number(v) ? (long long)json_number_value(v) : -1;
}

void ps_history_sample_from(ps_history_sample *s, int64_t at_ms, int state, const json_t *figures,
                            int running)
{
	const json_t *lag = json_object_get(figures, "lag");
	const json_t *t;
	size_t i;

	memset(s, 0, sizeof(*s));
	s->at_ms = at_ms;
	s->state = state;
	s->lag_seconds = NAN;
	s->changes_per_sec = s->rows_per_sec = NAN;
	s->lag_bytes = s->retained_bytes = s->changes_applied = s->rows_copied = -1;
	if (!figures)
		return;
	/* what the source keeps is true while paused too (the last run's
	 * figure); the rest only means something while a pipeline runs */
	s->retained_bytes = int_or_unknown(json_object_get(figures, "retained_bytes"));
	if (!running)
		return;
	s->lag_seconds = real_or_nan(json_object_get(lag, "seconds"));
	s->lag_bytes = int_or_unknown(json_object_get(lag, "bytes"));
	s->changes_per_sec = real_or_nan(json_object_get(json_object_get(figures, "rates"),
	                                                 "changes_per_sec"));
	s->rows_per_sec = real_or_nan(json_object_get(json_object_get(figures, "rates"),
	                                              "rows_per_sec"));
	s->changes_applied = int_or_unknown(json_object_get(json_object_get(figures, "counters"),
	                                                    "changes_applied"));
	json_array_foreach(json_object_get(figures, "tables"), i, t) {
		long long rows = int_or_unknown(json_object_get(t, "rows_copied"));
		if (rows >= 0)
			s->rows_copied = (s->rows_copied < 0 ? 0 : s->rows_copied) + rows;
	}
}

static json_t *real_json(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

static json_t *int_json(long long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

json_t *ps_history_json(const ps_history *h, int64_t since_ms)
{
	json_t *list = json_array();
	size_t first = (h->next + PS_HISTORY_SAMPLES - h->n) % PS_HISTORY_SAMPLES;

	for (size_t k = 0; k < h->n; k++) {
		const ps_history_sample *s = &h->ring[(first + k) % PS_HISTORY_SAMPLES];
		char at[40];

		if (s->at_ms <= since_ms)
			continue;
		ps_time_iso(at, sizeof(at), s->at_ms);
		json_array_append_new(
			list, json_pack("{s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "at", at, "at_ms",
			                (json_int_t)s->at_ms, "state", ps_job_state_name(s->state),
			                "lag_seconds", real_json(s->lag_seconds), "lag_bytes",
			                int_json(s->lag_bytes), "retained_bytes", int_json(s->retained_bytes),
			                "changes_per_sec", real_json(s->changes_per_sec), "rows_per_sec",
			                real_json(s->rows_per_sec), "changes_applied",
			                int_json(s->changes_applied), "rows_copied", int_json(s->rows_copied)));
	}
	return list;
}
