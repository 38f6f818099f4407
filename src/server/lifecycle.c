/*
 * lifecycle.c — the table of allowed actions per state (see lifecycle.h).
 */
#include <stdio.h>
#include <string.h>

#include "server/lifecycle.h"

static const char *const STATE_NAMES[PS_JOB_NSTATES] = {
	"created", "checking", "check_failed", "ready", "starting", "running", "draining",
	"paused", "ready_to_complete", "completing", "completed", "stopping", "stopped",
	"failed", "failed_permanently",
};

static const char *const ACTION_NAMES[PS_NACTIONS] = {
	"check", "start", "pause", "resume", "stop", "delete", "modify", "recover", "complete",
};

static const char *const HEALTH_NAMES[] = {"ok", "degraded", "degraded_log_fully_read"};

#define A(x) (1u << (x))
#define ANY_TIME (A(PS_ACT_DELETE) | A(PS_ACT_MODIFY))

/* Allowed actions per state. Resting states without a slot (created,
 * check_failed, ready, stopped, completed) may be checked and started afresh;
 * states with a slot and a checkpoint may be stopped, which releases them.
 * complete (a migration's cutover) is allowed in running and
 * ready_to_complete; the server also refuses it for other job types, and in
 * running unless the lag is under complete.max_lag_ms at that moment. */
static const unsigned ALLOWED[PS_JOB_NSTATES] = {
	[PS_JOB_CREATED] = A(PS_ACT_CHECK) | A(PS_ACT_START) | ANY_TIME,
	[PS_JOB_CHECKING] = ANY_TIME,
	[PS_JOB_CHECK_FAILED] = A(PS_ACT_CHECK) | A(PS_ACT_START) | ANY_TIME,
	[PS_JOB_READY] = A(PS_ACT_CHECK) | A(PS_ACT_START) | ANY_TIME,
	[PS_JOB_STARTING] = A(PS_ACT_PAUSE) | A(PS_ACT_STOP) | ANY_TIME,
	[PS_JOB_RUNNING] = A(PS_ACT_PAUSE) | A(PS_ACT_STOP) | A(PS_ACT_COMPLETE) | ANY_TIME,
	[PS_JOB_DRAINING] = A(PS_ACT_STOP) | ANY_TIME,
	[PS_JOB_PAUSED] = A(PS_ACT_RESUME) | A(PS_ACT_STOP) | ANY_TIME,
	[PS_JOB_READY_TO_COMPLETE] = A(PS_ACT_PAUSE) | A(PS_ACT_STOP) | A(PS_ACT_COMPLETE) | ANY_TIME,
	[PS_JOB_COMPLETING] = ANY_TIME,
	[PS_JOB_COMPLETED] = A(PS_ACT_CHECK) | A(PS_ACT_START) | ANY_TIME,
	[PS_JOB_STOPPING] = ANY_TIME,
	[PS_JOB_STOPPED] = A(PS_ACT_CHECK) | A(PS_ACT_START) | ANY_TIME,
	[PS_JOB_FAILED] = A(PS_ACT_PAUSE) | A(PS_ACT_STOP) | ANY_TIME,
	[PS_JOB_FAILED_PERMANENTLY] = A(PS_ACT_RECOVER) | A(PS_ACT_STOP) | ANY_TIME,
};

const char *ps_job_state_name(int state)
{
	return state >= 0 && state < PS_JOB_NSTATES ? STATE_NAMES[state] : "unknown";
}

int ps_job_state_parse(const char *name)
{
	for (int i = 0; i < PS_JOB_NSTATES; i++)
		if (strcmp(STATE_NAMES[i], name) == 0)
			return i;
	return -1;
}

const char *ps_job_action_name(int action)
{
	return action >= 0 && action < PS_NACTIONS ? ACTION_NAMES[action] : "unknown";
}

int ps_job_action_parse(const char *name)
{
	for (int i = 0; i < PS_NACTIONS; i++)
		if (strcmp(ACTION_NAMES[i], name) == 0)
			return i;
	return -1;
}

const char *ps_health_name(int health)
{
	return health >= 0 && health <= PS_HEALTH_DEGRADED_LOG_FULLY_READ ? HEALTH_NAMES[health] : "ok";
}

int ps_health_parse(const char *name)
{
	for (int i = 0; i <= PS_HEALTH_DEGRADED_LOG_FULLY_READ; i++)
		if (strcmp(HEALTH_NAMES[i], name) == 0)
			return i;
	return -1;
}

bool ps_job_allows(int state, int action)
{
	if (state < 0 || state >= PS_JOB_NSTATES || action < 0 || action >= PS_NACTIONS)
		return false;
	return (ALLOWED[state] & A(action)) != 0;
}

void ps_job_allowed_list(int state, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int a = 0; a < PS_NACTIONS && used < len; a++)
		if (ps_job_allows(state, a))
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
			                         ACTION_NAMES[a]);
}

bool ps_job_state_active(int state)
{
	switch (state) {
	case PS_JOB_CHECKING:
	case PS_JOB_STARTING:
	case PS_JOB_RUNNING:
	case PS_JOB_DRAINING:
	case PS_JOB_READY_TO_COMPLETE:
	case PS_JOB_COMPLETING:
	case PS_JOB_STOPPING:
	case PS_JOB_FAILED:
		return true;
	default:
		return false;
	}
}
