/*
 * errclass.c — classifying errors and the retry backoff (see errclass.h).
 */
#include <errno.h>
#include <string.h>

#include "core/errclass.h"

static int class_of_errno(int e)
{
	switch (e) {
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EPIPE:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case ENETRESET:
	case EHOSTDOWN:
	case ENOTCONN:
		return PS_ERRCLASS_CONNECTION;
	case ETIMEDOUT:
		return PS_ERRCLASS_TIMEOUT;
	case ENOSPC:
	case EDQUOT:
	case EAGAIN:
	case EINTR:
	case EBUSY:
	case EMFILE:
	case ENFILE:
	case EIO:
		return PS_ERRCLASS_RESOURCES;
	case EACCES:
	case EPERM:
	case EROFS:
		return PS_ERRCLASS_PERMISSION;
	default:
		return -1;
	}
}

static int class_of_code(int code)
{
	switch (code) {
	case PS_ECONNECT:
	case PS_EIO:              /* a socket or file gone without an errno we know */
		return PS_ERRCLASS_CONNECTION;
	case PS_ETIMEOUT:
		return PS_ERRCLASS_TIMEOUT;
	case PS_ESTOPPED:
		return PS_ERRCLASS_INTERRUPTED;
	case PS_EFAULT:
		return PS_ERRCLASS_INJECTED;
	case PS_ECHECKPOINT:
		return PS_ERRCLASS_CHECKPOINT;
	case PS_EINVAL:
		return PS_ERRCLASS_INVALID;
	default:                  /* PS_ERR, PS_EPROTO, PS_ENOMEM, PS_ETOOBIG, PS_ESERVER */
		return PS_ERRCLASS_INTERNAL;
	}
}

int ps_errclass_of(const ps_error *err)
{
	int cls;

	/* An injected fault or an interruption says what it is whatever else
	 * the error carries. */
	if (err->code == PS_EFAULT || err->code == PS_ESTOPPED)
		return class_of_code(err->code);
	cls = err->errclass > 0 && err->errclass <= PS_ERRCLASS_COUNT ? err->errclass - 1 : -1;
	if (cls < 0 && err->sys_errno)
		cls = class_of_errno(err->sys_errno);
	if (cls < 0)
		cls = class_of_code(err->code);
	return cls;
}

bool ps_errclass_retryable(int cls)
{
	return cls >= PS_ERRCLASS_CONNECTION && cls <= PS_ERRCLASS_INJECTED;
}

bool ps_error_retryable(const ps_error *err)
{
	return ps_errclass_retryable(ps_errclass_of(err));
}

const char *ps_errclass_name(int cls)
{
	static const char *const NAMES[PS_ERRCLASS_COUNT] = {
		"connection", "timeout", "conflict", "resources", "interrupted", "injected",
		"slot_lost", "log_lost", "permission", "schema", "checkpoint", "invalid", "internal",
	};

	return cls >= 0 && cls < PS_ERRCLASS_COUNT ? NAMES[cls] : "internal";
}

const char *ps_errclass_hint(int cls)
{
	switch (cls) {
	case PS_ERRCLASS_CONNECTION:
	case PS_ERRCLASS_TIMEOUT:
		return "penstock retries by itself with backoff; if it keeps failing, check that both "
		       "servers are up and reachable";
	case PS_ERRCLASS_CONFLICT:
		return "penstock retries by itself with backoff; if it keeps failing, look for "
		       "sessions holding locks on the target tables or on the source's log reader "
		       "(the message names it)";
	case PS_ERRCLASS_RESOURCES:
		return "penstock retries by itself with backoff; free disk space, memory or "
		       "connections on the server named in the message";
	case PS_ERRCLASS_INTERRUPTED:
	case PS_ERRCLASS_INJECTED:
		return "penstock retries by itself with backoff";
	case PS_ERRCLASS_SLOT_LOST:
	case PS_ERRCLASS_LOG_LOST:
		return "the source no longer holds the changes since the checkpoint: `penstock job "
		       "recover JOB --strategy resync` loads the tables again from a new snapshot, "
		       "or `--strategy skip` continues from now and records the gap";
	case PS_ERRCLASS_PERMISSION:
		return "grant the privilege the message names (see docs/prechecks.md), then "
		       "`penstock job recover JOB --strategy retry`";
	case PS_ERRCLASS_SCHEMA:
		return "make the target table match the source (the message names it), then "
		       "`penstock job recover JOB --strategy retry`; `--strategy skip` passes over the "
		       "change, `--strategy resync --tables T` loads the table again";
	case PS_ERRCLASS_CHECKPOINT:
		return "the checkpoint cannot be used: if the source no longer holds the changes since "
		       "it (the message says), `penstock job recover JOB --strategy resync` (a new "
		       "snapshot) or `--strategy skip` (accept the gap); if it "
		       "was written for other servers, point the job back at them, or stop the job and "
		       "start it afresh";
	case PS_ERRCLASS_INVALID:
		return "fix the spec (PATCH /v1/jobs/{id}), then `penstock job recover JOB --strategy "
		       "retry`";
	default:
		return "read the message, fix the cause, then `penstock job recover JOB --strategy "
		       "retry` (or stop the job and start it afresh)";
	}
}

int64_t ps_retry_backoff_ms(int64_t initial_ms, int64_t max_ms, int attempt, uint32_t random)
{
	int64_t wait = initial_ms > 0 ? initial_ms : 1;
	int64_t cap = max_ms >= wait ? max_ms : wait;

	for (int i = 1; i < attempt && wait < cap; i++)
		wait = wait > cap / 2 ? cap : wait * 2;
	if (wait > cap)
		wait = cap;
	wait -= (int64_t)(random % (uint32_t)(wait / 4 + 1));
	return wait > 0 ? wait : 1;
}
