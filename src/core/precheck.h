/*
 * precheck.h — running a job's prechecks: what the job needs from its
 * source and target, checked before it starts (`penstock check`, and the
 * server's `checking` state).
 *
 * The checks themselves live in the plugins (the precheck callbacks of
 * penstock/source.h and penstock/sink.h); this module builds their
 * configurations from the spec, runs source then target, applies the
 * spec's checks.skip and renders the report as JSON. It also keeps the list
 * of every check id a plugin may report, so that the spec parser can refuse
 * an id that names no check (docs/prechecks.md documents each).
 */
#ifndef PS_CORE_PRECHECK_H
#define PS_CORE_PRECHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/spec.h"
#include "penstock/check.h"
#include "penstock/error.h"

/*
 * Runs the prechecks of spec into out (which must be empty or zeroed; the
 * caller frees it with ps_check_report_free, also after an error). Returns
 * PS_OK whenever the checks ran, whatever they found: failures are items
 * (see ps_check_report_passed). A source that cannot be reached is the item
 * source.connect failed and the items that need it skipped; the same for
 * the target. An item whose id is in spec->check_skip is reported with
 * result skipped and its message says what it found. Errors: PS_EINVAL
 * when no plugin handles a URL, PS_ENOMEM.
 */
int ps_precheck_run(const ps_spec *spec, ps_check_report *out, ps_error *err);

/*
 * {"passed": bool, "items": [{"id", "level", "result", "message", "fix"}]}
 * with level "error" | "warning", result "passed" | "failed" | "skipped",
 * fix null when there is none. A new reference, NULL on OOM.
 */
json_t *ps_check_report_json(const ps_check_report *r);

#define PS_CHECK_IDS_MAX 128

/* Check id number i of those the plugins of this build may report
 * (core/plugin.h ps_plugin_check_ids), NULL past the last. */
const char *ps_check_known_id(size_t i);
/* The id names a check (one of ps_check_known_id). */
bool ps_check_id_known(const char *id);
/* The id may be listed in checks.skip: known, and not a connection check
 * (nothing can be checked, nor the job run, without the connection). */
bool ps_check_id_skippable(const char *id);

#endif
