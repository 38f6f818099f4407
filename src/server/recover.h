/*
 * recover.h — `recover` for a job that failed permanently (issue 5):
 * POST /v1/jobs/{id}/recover {"strategy": "retry" | "skip" | "resync", ...}.
 *
 *   retry   run again from the checkpoint (the operator fixed the cause).
 *   skip    continue from a later position of the source's log (a given
 *           one, or the log's end): the slot is created again when it is
 *           gone or unusable, the checkpoint moves to the position, and the
 *           job's history records the gap (from, to) as acknowledged loss.
 *   resync  a new slot, then a fresh snapshot of every table or of the named
 *           ones (emptied in the target first; the others keep their data
 *           and continue from the new slot's point), then streaming.
 *
 * NOTES ON THE DESIGN
 *
 *  1. The API checks the request and the state (job_api.c: ps_jobs_recover),
 *     records the transition to starting and hands the plan to the job's
 *     supervisor thread, which runs ps_recover_prepare outside the server's
 *     lock before the pipeline starts. retry needs no preparation.
 *  2. ps_recover_prepare only rewrites what the next run reads: the slot on
 *     the source and the checkpoint (with, for resync, the emptied tables in
 *     the same target transaction). The run itself is the ordinary
 *     pipeline: resync leaves a checkpoint of an initial load in progress
 *     (CDC ILSTART) whose units of the other tables are already done, so
 *     the resumed load copies exactly the named tables under a new snapshot
 *     and streaming skips, per table, what that snapshot holds.
 *  3. Plugin-neutral: it talks to the source and the target only through
 *     the core wrappers (core/plugin.h); positions stay opaque text ordered
 *     by the source.
 */
#ifndef PS_SERVER_RECOVER_H
#define PS_SERVER_RECOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/spec.h"
#include "penstock/change.h"
#include "penstock/error.h"
#include "server/server.h"

typedef enum ps_recover_strategy {
	PS_RECOVER_RETRY = 0,
	PS_RECOVER_SKIP,
	PS_RECOVER_RESYNC
} ps_recover_strategy;

typedef struct ps_recover_plan {
	int strategy;                   /* ps_recover_strategy */
	char position[PS_POSITION_MAX]; /* skip: where to continue; "" = the log's end ("latest") */
	char **tables;                  /* resync: "schema.table" names; none = every table */
	size_t ntables;
} ps_recover_plan;

typedef struct ps_recover_result {
	char from[PS_POSITION_MAX];     /* the checkpoint's position before ("" without one) */
	char to[PS_POSITION_MAX];       /* where the next run continues */
	bool slot_created;              /* the slot was (re)created */
	size_t tables_loaded;           /* resync: tables emptied and loaded again */
	size_t tables_kept;             /* resync: tables whose target data stays */
} ps_recover_result;

const char *ps_recover_strategy_name(int strategy);

/* Parses the body of POST .../recover into plan (docs/api.md). On a bad
 * body answers 400 in r, naming the field, and returns false; plan then
 * holds nothing to free. */
bool ps_recover_parse(const char *body, size_t len, ps_recover_plan *plan, ps_api_result *r);
void ps_recover_plan_free(ps_recover_plan *plan);

/* Prepares the next run of spec's job for plan (design note 2): connects to
 * source and target, recreates the slot where the plan needs it, rewrites
 * the checkpoint. Slow: call it without the server's lock. */
int ps_recover_prepare(const ps_spec *spec, const char *state_dir, const ps_recover_plan *plan,
                       ps_recover_result *out, ps_error *err);

/* --- job_api.c, supervisor.c ----------------------------------------------- */

/* POST /v1/jobs/{id}/recover: 202 with the job (state starting), 400 for a
 * bad body, 409 unless the job is failed_permanently. */
void ps_jobs_recover(ps_server *srv, const char *id, const char *body, size_t len,
                     const char *actor, ps_api_result *r);

#endif
