/*
 * status.h — what a running job shows: phase, positions, lag, rates and
 * per-table load progress, published by the pipeline and read by whoever
 * watches it (the server's API and metrics, `penstock job show`).
 *
 * NOTES ON THE DESIGN
 *
 * The pipeline's threads write their own fields now and then (the reader its
 * read and acknowledged positions, the applier what it applied, the load
 * its tables), never per change: each publish takes the mutex, copies a few
 * fixed-size fields and leaves. Readers take the same mutex and copy out. No
 * field points into pipeline memory, so a status outlives the run that
 * filled it and the server can show the last run's figures after it ended.
 */
#ifndef PS_CORE_STATUS_H
#define PS_CORE_STATUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "penstock/change.h"

typedef enum ps_phase {
	PS_PHASE_NONE = 0,
	PS_PHASE_SNAPSHOT,      /* initial load under a snapshot */
	PS_PHASE_CATCHUP,       /* streaming, not yet at the log's end */
	PS_PHASE_STREAMING      /* at the log's end (or was a moment ago) */
} ps_phase;

/* The health of a run (ARCHITECTURE.md, Lifecycle): the server shows it as
 * the job's; its names are in server/lifecycle.c. */
typedef enum ps_health {
	PS_HEALTH_OK = 0,
	PS_HEALTH_DEGRADED,                 /* source unreachable; changes already read
	                                       are still being applied */
	PS_HEALTH_DEGRADED_LOG_FULLY_READ   /* ... and all of them are applied and
	                                       checkpointed; the run then ends failed */
} ps_health;

typedef struct ps_table_status {
	char schema[64];
	char name[64];
	long long rows_copied;
	long long rows_estimated;
	size_t units_done, units_total;
	bool finished;          /* keys and indexes built */
	bool insert_only;       /* only its inserts and truncates are captured (no key
	                           and no replica identity: tables.keyless) */
	/* Derived by ps_run_status_set_tables from successive publishes (the
	 * publisher leaves them 0): rows copied per second over the last few
	 * seconds, and the seconds left at that rate (-1 unknown: no estimate,
	 * no progress yet, or past the estimate; 0 when done). */
	double rows_per_sec;
	double eta_seconds;
	long long rate_rows;    /* bookkeeping of the rate: rows and time of */
	uint64_t rate_ns;       /* the window's start */
} ps_table_status;

/* Changes applied to one table, by operation (the apply path's counts, for
 * /metrics and the API). bytes is the changes' size in memory (values
 * included): a measure of volume, not of wire or disk bytes. */
enum { PS_OPS_INSERT, PS_OPS_UPDATE, PS_OPS_DELETE, PS_OPS_TRUNCATE, PS_OPS_N };
typedef struct ps_table_ops {
	char schema[64];
	char name[64];          /* "" with schema "": every table past the bound */
	uint64_t changes[PS_OPS_N];
	uint64_t bytes[PS_OPS_N];
} ps_table_ops;

/* At most this many tables are counted apart; the changes of the others
 * count under one row with empty names, so the figures stay bounded. */
#define PS_TABLE_OPS_MAX 512

/* The applier's own running counts (one thread; no lock), published into
 * a status now and then with ps_run_status_set_ops. */
typedef struct ps_op_counts {
	ps_table_ops *rows;
	size_t n, cap;
	size_t last;            /* index of the last table counted: a cheap cache */
	bool dirty;             /* changed since the last publish */
} ps_op_counts;

/* Counts one change of op (change.h ps_op; other kinds are not counted) of
 * bytes on schema.name. Out of memory: the change is not counted. */
void ps_op_counts_add(ps_op_counts *c, const char *schema, const char *name, int op,
                      size_t bytes);
void ps_op_counts_free(ps_op_counts *c);
/* The name of ops index i ("insert", ...). */
const char *ps_ops_name(int i);

/* Upper bounds, in seconds, of the apply batch latency histogram's buckets
 * (the last bucket, +Inf, is implied). */
#define PS_BATCH_BUCKETS 12
extern const double ps_batch_bucket_le[PS_BATCH_BUCKETS];

typedef struct ps_run_status {
	pthread_mutex_t mu;
	int phase;                          /* ps_phase */
	int cdc_state;                      /* ps_cdc_state (core/checkpoint.h) */
	char read[PS_POSITION_MAX];         /* last commit read from the source */
	char applied[PS_POSITION_MAX];      /* last commit durable in the target */
	char acked[PS_POSITION_MAX];        /* last position acknowledged to the source */
	char source_end[PS_POSITION_MAX];   /* the source log's end, sampled */
	long long lag_bytes;                /* source_end - applied; -1 unknown */
	double lag_seconds;                 /* age of the oldest change not yet applied */
	long long retained_bytes;           /* log the source keeps for us: end - acked */
	uint64_t changes_applied, txns_applied;
	double changes_per_sec;             /* over the last few seconds */
	int64_t last_commit_time_us;        /* source commit time of the last applied txn */
	ps_table_status *tables;            /* the load's tables; ntables entries */
	size_t ntables;
	char server_version[32];
	/* The source's own account of the log it keeps for the job (source.h
	 * log_retention), sampled every few seconds; -1 / "" unknown. */
	long long retention_limit_bytes;    /* the most it keeps for a reader */
	long long retention_safe_bytes;     /* log that may still be written before
	                                       the reader is at risk */
	char retention_status[24];          /* the engine's word (PG: wal_status) */
	/* Apply batches: how long each took to commit in the target with its
	 * checkpoint, as a histogram (per bucket, not cumulative). */
	uint64_t batch_buckets[PS_BATCH_BUCKETS + 1];
	uint64_t batch_count;
	double batch_seconds;
	/* Changes applied by table and operation (ps_run_status_set_ops); not
	 * copied by ps_run_status_copy, only by ps_run_status_copy_all. */
	ps_table_ops *table_ops;
	size_t ntable_ops;
	int health;                         /* ps_health */
	/* Optional, set by the watcher after init: called (outside mu, from the
	 * pipeline thread that changed it) when health changes. */
	void (*on_health)(int health, void *payload);
	void *health_payload;
	/* rate bookkeeping (publisher only) */
	uint64_t rate_changes;
	uint64_t rate_ns;
} ps_run_status;

void ps_run_status_init(ps_run_status *s);
void ps_run_status_destroy(ps_run_status *s);

/* Copies the status out (tables included: free out->tables; table_ops
 * left out: NULL). */
void ps_run_status_copy(ps_run_status *s, ps_run_status *out);
/* The same with table_ops; free both with ps_run_status_copy_free. */
void ps_run_status_copy_all(ps_run_status *s, ps_run_status *out);
void ps_run_status_copy_free(ps_run_status *copy);

/* Replaces the table list (locks). tables may be NULL to clear it. */
int ps_run_status_set_tables(ps_run_status *s, const ps_table_status *tables, size_t n);

/* Updates the applier's figures and derives rate and lag (locks). idle: the
 * reader found nothing new and nothing is queued, so nothing is behind. */
void ps_run_status_applied(ps_run_status *s, const char *applied, int cdc_state,
                           uint64_t changes, uint64_t txns, int64_t last_commit_time_us,
                           bool idle, int phase);

/* Publishes the applier's counts when they changed (locks); on out of
 * memory the last published ones stay. */
void ps_run_status_set_ops(ps_run_status *s, ps_op_counts *c);

/* One apply batch committed in seconds (locks). */
void ps_run_status_batch(ps_run_status *s, double seconds);

struct ps_log_retention;
/* The source's retention figures (source.h log_retention); a retained
 * byte count it gives replaces end - acknowledged (locks). */
void ps_run_status_set_retention(ps_run_status *s, const struct ps_log_retention *r);

/* Sets the run's health (locks); calls on_health when it changed. */
void ps_run_status_set_health(ps_run_status *s, int health);

/* {"phase", "cdc_state", "positions": {read, applied, acknowledged, source_end},
 *  "lag": {seconds, bytes}, "retained_bytes",
 *  "retention": {retained_bytes, limit_bytes, safe_bytes, status},
 *  "rates": {changes_per_sec, rows_per_sec},
 *  "counters": {changes_applied, txns_applied},
 *  "tables": [{..., rows_per_sec, eta_seconds}],
 *  "apply_batches": {count, seconds_sum, buckets: [{le, count}] (cumulative)},
 *  "table_changes": [{schema, name, insert, update, delete, truncate,
 *                     insert_bytes, ...}] (when copied with table_ops)}
 *  — of a copy. */
json_t *ps_run_status_json(const ps_run_status *copy);
const char *ps_phase_name(int phase);

#endif
