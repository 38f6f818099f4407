/*
 * lifecycle.h — a job's states and the actions each allows (ARCHITECTURE.md,
 * Lifecycle; docs/lifecycle.md draws the diagram).
 *
 *   created ─check─► checking ─► ready | check_failed
 *   created | ready | check_failed | stopped | completed
 *           ─start─► [checking ─►] starting ─► running (phase snapshot, catchup, streaming)
 *   running ─pause─► draining ─► paused ─resume─► starting ─► running
 *   starting | running | draining | paused | failed | failed_permanently
 *           ─stop─► stopping ─► stopped        (slot and publication dropped)
 *   running ─error─► failed ─(retry)─► starting ...   permanent ─► failed_permanently
 *   failed_permanently ─recover (retry | skip | resync)─► starting ...
 *   snapshot job ─load done─► completed
 *   migration running ─lag under complete.max_lag_ms for 3 s─► ready_to_complete
 *           ─lag grows─► running
 *   running | ready_to_complete ─complete─► completing (fence, apply up to it,
 *           sequences, compare?, release) ─► completed      any failure ─► failed
 *   any ─delete─► (gone)
 *
 * Pure functions: the server applies them under its lock.
 */
#ifndef PS_SERVER_LIFECYCLE_H
#define PS_SERVER_LIFECYCLE_H

#include <stdbool.h>

#include "core/status.h"   /* ps_health: the pipeline sets it, the server shows it */

typedef enum ps_job_state {
	PS_JOB_CREATED = 0,
	PS_JOB_CHECKING,
	PS_JOB_CHECK_FAILED,
	PS_JOB_READY,
	PS_JOB_STARTING,
	PS_JOB_RUNNING,
	PS_JOB_DRAINING,
	PS_JOB_PAUSED,
	PS_JOB_READY_TO_COMPLETE,
	PS_JOB_COMPLETING,
	PS_JOB_COMPLETED,
	PS_JOB_STOPPING,
	PS_JOB_STOPPED,
	PS_JOB_FAILED,
	PS_JOB_FAILED_PERMANENTLY,
	PS_JOB_NSTATES
} ps_job_state;

typedef enum ps_job_action {
	PS_ACT_CHECK = 0,
	PS_ACT_START,
	PS_ACT_PAUSE,
	PS_ACT_RESUME,
	PS_ACT_STOP,
	PS_ACT_DELETE,
	PS_ACT_MODIFY,
	PS_ACT_RECOVER,             /* failed_permanently: retry, skip or resync */
	PS_ACT_COMPLETE,            /* migration cutover */
	PS_NACTIONS
} ps_job_action;

const char *ps_job_state_name(int state);
int ps_job_state_parse(const char *name);      /* -1 when unknown */
const char *ps_job_action_name(int action);
int ps_job_action_parse(const char *name);     /* -1 when unknown */
const char *ps_health_name(int health);
int ps_health_parse(const char *name);

/* Whether state allows action. */
bool ps_job_allows(int state, int action);
/* The allowed actions' names, comma-separated, into buf. */
void ps_job_allowed_list(int state, char *buf, size_t len);
/* A state in which a supervisor thread works on the job. */
bool ps_job_state_active(int state);

#endif
