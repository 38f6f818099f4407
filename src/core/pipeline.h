/*
 * pipeline.h — one run of one job: source -> reader thread -> bounded queue ->
 * applier -> sink, with checkpoints and acknowledgements.
 */
#ifndef PS_CORE_PIPELINE_H
#define PS_CORE_PIPELINE_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/ratelimit.h"
#include "penstock/change.h"
#include "core/spec.h"
#include "core/status.h"
#include "penstock/error.h"

/*
 * Live controls of a run: owned by whoever starts runs (the server keeps one
 * per job, for the job's life), changed by it at any time (a PATCH of a
 * running job), read by the pipeline's threads while a run goes on. Every
 * field is an atomic or guarded by mu; the pipeline never frees it.
 */
typedef struct ps_live {
	ps_limits limits;           /* rate limits and load parallelism (ratelimit.h) */
	pthread_mutex_t mu;         /* guards what is not atomic */
	/* Cutover (a migration's complete): the owner sets `complete`; the reader
	 * then writes a fence into the source's log at its current end (once no
	 * table change or backfill is under way), the applier applies up to it,
	 * sets `fenced` with the fence in `fence` (mu) and the run stops. */
	atomic_int complete;
	atomic_int fenced;
	char fence[PS_POSITION_MAX];
	atomic_int busy;            /* table changes or backfills under way: not ready
	                               to complete (the pipeline writes it) */
	/* The table patterns asked for (mu): ps_live_update copies the spec's
	 * when they differ and bumps tables_gen; a running pipeline then changes
	 * its tables to them (core/backfill.h). */
	char **include, **exclude;
	size_t ninclude, nexclude;
	unsigned tables_gen;
} ps_live;

void ps_live_init(ps_live *l, const ps_spec *spec);
void ps_live_destroy(ps_live *l);
/* The spec of the job changed (or a run begins with it): its live parts take
 * effect at once. */
void ps_live_update(ps_live *l, const ps_spec *spec);

typedef struct ps_pipeline_config {
	const ps_spec *spec;
	const char *state_dir;
	size_t queue_max_bytes;     /* default 64 MiB */
	size_t queue_max_items;     /* default 65536 */
	int batch_max_txns;         /* flush after this many transactions (default 1000) */
	size_t batch_max_bytes;     /* ... or this many change bytes (default 16 MiB) */
	int batch_max_ms;           /* ... or this long since the batch began (default 500) */
	int progress_interval_ms;   /* status line period (default 10000) */
	long long load_batch_rows;  /* a copy worker marks units done one checkpoint a batch,
	                               while their estimated rows stay under this (default 0:
	                               the spec's snapshot.chunk_rows; load.c NOTES 9) */
	ps_run_status *status;      /* optional: live figures for a watcher (server) */
	/* Optional: called when the run enters a phase (ps_phase: snapshot, catchup,
	 * streaming), from whichever pipeline thread noticed; must not block long. */
	void (*on_phase)(int phase, void *payload);
	void *payload;
	bool *completed;            /* optional out: set when a snapshot job finished
	                               (what it held on the source and its checkpoint removed) */
	ps_live *live;              /* optional: live controls; NULL: the spec's, fixed */
	/* Optional: called now and then (up to 4 times a second, also while idle)
	 * from the applier after it published cfg->status; must not block long. */
	void (*on_tick)(void *payload);
	/* Optional: a table change took effect or a backfill ended (a sentence
	 * for the job's history), from the applier; must not block long. */
	void (*on_event)(const char *text, void *payload);
	/* Optional: a bounded run (a trickle feed's processing range, `penstock
	 * run --until`): the changes committed up to this position are applied,
	 * none after it, then the run stops cleanly. "caught-up": the source's
	 * log end when the run starts. NULL: run until stopped. */
	const char *until;
} ps_pipeline_config;

void ps_pipeline_config_defaults(ps_pipeline_config *cfg);

/*
 * stop is a lock-free atomic, so a signal handler may set it and both threads
 * may read it.
 *
 * Runs the job until *stop becomes non-zero (1: graceful — finish the
 * transaction being read, flush, checkpoint; 2: at once — flush what is
 * complete, checkpoint) or an error happens. Returns PS_OK after a graceful
 * stop, else the error.
 */
int ps_pipeline_run(const ps_pipeline_config *cfg, atomic_int *stop, ps_error *err);

/*
 * Releases what a job holds outside the target's tables: the slot and the
 * publication on the source, and the checkpoint (in the target or the state
 * directory). Target data is left alone. Each part is attempted even when
 * another fails; the first error is returned. What was done is described in
 * done (e.g. "dropped slot penstock_x and publication penstock_x; removed the
 * checkpoint").
 */
int ps_pipeline_release(const ps_spec *spec, const char *state_dir, char *done, size_t len,
                        ps_error *err);

#endif
