/*
 * load.h — the initial load of a job: copy units under an exported snapshot,
 * in parallel, into the target, each unit committed with the checkpoint.
 */
#ifndef PS_CORE_LOAD_H
#define PS_CORE_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/checkpoint.h"
#include "core/plugin.h"
#include "core/ratelimit.h"
#include "core/spec.h"
#include "core/status.h"

typedef struct ps_load_config {
	const ps_spec *spec;
	ps_src *src;                  /* prepared source; snapshot exported */
	ps_snk *snk;                  /* the job's main sink: DDL, finishing, checkpoints */
	const ps_sink_config *sink_cfg; /* to open one more sink per copy worker */
	ps_checkpoint *ck;            /* in/out */
	const char *state_dir;
	const char *snapshot;         /* exported snapshot the workers import */
	const char *point;            /* its position */
	bool fresh;                   /* plan the load; else continue ck->tables */
	atomic_int *stop;             /* non-zero: abandon unfinished units */
	int progress_interval_ms;     /* log period when stderr is not a terminal */
	long long batch_rows;         /* units a worker marks done in one checkpoint: while
	                                 their estimated rows stay under this (load.c NOTES 9) */
	ps_run_status *status;        /* optional: per-table progress for a watcher */
	const ps_limits *limits;      /* optional: live rate limits and copy workers (they may
	                                 change while the load runs); NULL: spec's parallel */
	ps_ratelimit *rl;             /* with limits: the job's bucket, shared by the workers */
} ps_load_config;

/*
 * Runs the load to the end: on success every unit is done, every table
 * finished (keys, indexes) and the checkpoint says ILEND. PS_ESTOPPED when
 * *stop was raised (the checkpoint keeps what finished). On a fresh load the
 * tables are prepared in the target (created, checked, emptied) in one target
 * transaction with the first checkpoint (ILSTART), so a refusal changes
 * nothing.
 */
int ps_load_run(const ps_load_config *cfg, ps_error *err);

#endif
