/*
 * fault.h — named fault points, for tests that prove resume at every boundary.
 *
 *   PENSTOCK_FAULT=<point>:<action>[@<n>][,<point>:<action>[@<n>]...]
 *
 * action `error` makes ps_fault_hit return PS_EFAULT (the caller fails as it
 * would on a real error); `crash` kills the process at once with SIGKILL, as
 * a power cut would (no flush, no atexit). n (default 1) is which hit fires.
 * Points: the core's source.read, apply.batch.before_commit,
 * apply.batch.after_commit, snapshot.unit.commit, checkpoint.after_flush (a
 * non-transactional target's files are flushed, its checkpoint is not yet
 * written), and each point a registered plugin declares in its ops
 * (fault_points: "<plugin>.<point>"; docs/plugins.md). A point nobody
 * declared is refused, and the message lists every known one.
 */
#ifndef PS_CORE_FAULT_H
#define PS_CORE_FAULT_H

#include "penstock/error.h"

/* Parses PENSTOCK_FAULT; PS_EINVAL with the reason on a bad value. */
int ps_fault_init(ps_error *err);
/* PS_OK, or PS_EFAULT when an `error` fault fires here; never returns when a
 * `crash` fault fires. Thread-safe. */
int ps_fault_hit(const char *point, ps_error *err);

#endif
