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
} ps_table_status;

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

/* Copies the whole status out (tables included: free out->tables). */
void ps_run_status_copy(ps_run_status *s, ps_run_status *out);

/* Replaces the table list (locks). tables may be NULL to clear it. */
int ps_run_status_set_tables(ps_run_status *s, const ps_table_status *tables, size_t n);

/* Updates the applier's figures and derives rate and lag (locks). idle: the
 * reader found nothing new and nothing is queued, so nothing is behind. */
void ps_run_status_applied(ps_run_status *s, const char *applied, int cdc_state,
                           uint64_t changes, uint64_t txns, int64_t last_commit_time_us,
                           bool idle, int phase);

/* Sets the run's health (locks); calls on_health when it changed. */
void ps_run_status_set_health(ps_run_status *s, int health);

/* {"phase", "cdc_state", "positions": {read, applied, acknowledged, source_end},
 *  "lag": {seconds, bytes}, "retained_bytes", "rates": {changes_per_sec},
 *  "counters": {changes_applied, txns_applied}, "tables": [...]} — a copy. */
json_t *ps_run_status_json(const ps_run_status *copy);
const char *ps_phase_name(int phase);

#endif
