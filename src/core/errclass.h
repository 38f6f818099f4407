/*
 * errclass.h — which errors pass by themselves and which need an operator,
 * and how long to wait before trying again.
 *
 * NOTES ON THE DESIGN
 *
 *  1. One place decides. A run that ends with an error is retried when the
 *     error's class is retryable (ps_errclass_retryable) and stops for good
 *     otherwise; the server, the health of a run and `recover` all ask here.
 *  2. Only structured fields decide, never message text, in this order:
 *     the class the plugin gave the error when it copied its engine's code
 *     (a SQLSTATE, a MySQL errno, a Kafka error: the most specific thing a
 *     server says, and only its plugin knows what it means), then errno,
 *     then penstock's own code (penstock/error.h). A field that names no
 *     known condition hands the decision to the next one.
 *  3. Unknown means permanent: an error nobody foresaw is more likely a bug
 *     or a changed schema than weather, and retrying it forever would hide
 *     it. The exceptions are errors that by their nature are transport
 *     trouble (a lost connection without a SQLSTATE, a timeout).
 *  4. Pure functions; no state, no allocation.
 */
#ifndef PS_CORE_ERRCLASS_H
#define PS_CORE_ERRCLASS_H

#include <stdbool.h>
#include <stdint.h>

#include "penstock/error.h"

/* The classes (ps_errclass) are in penstock/error.h: plugins set them. */

/* The class of err (err->code must not be PS_OK). */
int ps_errclass_of(const ps_error *err);
bool ps_errclass_retryable(int cls);
/* Stable lower-case name, e.g. "connection", "slot_lost". */
const char *ps_errclass_name(int cls);
/* One sentence: what the operator should do (never NULL). */
const char *ps_errclass_hint(int cls);

/* Shorthand: ps_errclass_retryable(ps_errclass_of(err)). */
bool ps_error_retryable(const ps_error *err);

/*
 * The wait before retry number attempt (1 for the first retry): initial_ms
 * doubled per earlier attempt, capped at max_ms, then reduced by up to a
 * quarter by jitter (random: any 32-bit value; the same value gives the same
 * wait), so servers failing together do not retry in step. Never below 1 ms
 * and never above max_ms (or initial_ms, when that is the larger).
 */
int64_t ps_retry_backoff_ms(int64_t initial_ms, int64_t max_ms, int attempt, uint32_t random);

#endif
