/*
 * history.h — the figures the server samples from each job every few
 * seconds, kept for the last hour: what the status page draws (lag over the
 * last hour, throughput) and GET /v1/jobs/{id}/history answers.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Bounded: a ring of PS_HISTORY_SAMPLES samples per job, the oldest
 *     overwritten; nothing else grows. Not persisted: a restarted server
 *     starts a new hour.
 *  2. A sample is plain numbers, copied out of the job's figures under the
 *     server's lock by the one thread that samples (http.c's main loop);
 *     readers copy samples out under the same lock.
 *  3. A figure that was unknown (no pipeline running, no source end yet) is
 *     stored as NaN / -1 and answered null, so a chart shows a gap rather
 *     than a made-up zero.
 */
#ifndef PS_SERVER_HISTORY_H
#define PS_SERVER_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PS_HISTORY_INTERVAL_MS 5000
#define PS_HISTORY_SAMPLES 720          /* an hour at PS_HISTORY_INTERVAL_MS */

typedef struct ps_history_sample {
	int64_t at_ms;              /* wall clock, ms since the epoch */
	int state;                  /* ps_job_state */
	double lag_seconds;         /* NaN: unknown */
	long long lag_bytes;        /* -1: unknown */
	long long retained_bytes;   /* -1: unknown */
	double changes_per_sec;     /* NaN: no run */
	double rows_per_sec;        /* NaN: no run */
	long long changes_applied;  /* -1: no run */
	long long rows_copied;      /* the load's rows over every table; -1: none */
} ps_history_sample;

typedef struct ps_history {
	ps_history_sample ring[PS_HISTORY_SAMPLES];
	size_t next;                /* where the next sample goes */
	size_t n;                   /* samples held (<= PS_HISTORY_SAMPLES) */
} ps_history;

/* Appends one sample, overwriting the oldest when full. */
void ps_history_add(ps_history *h, const ps_history_sample *s);

/* Fills a sample from a job's figures (ps_run_status_json's shape, or NULL
 * when the job never ran); running says whether they are live. */
void ps_history_sample_from(ps_history_sample *s, int64_t at_ms, int state, const json_t *figures,
                            int running);

/* The samples taken after since_ms (0: all), oldest first:
 * [{"at", "state", "lag_seconds", "lag_bytes", "retained_bytes",
 *   "changes_per_sec", "rows_per_sec", "changes_applied", "rows_copied"}]. */
json_t *ps_history_json(const ps_history *h, int64_t since_ms);

#endif
