/*
 * spec_json.h — the canonical JSON form of a parsed spec, with defaults
 * filled in and no secrets (a spec only ever holds the *names* of password
 * variables and files). Used for the checkpoint's "options in force".
 */
#ifndef PS_CORE_SPEC_JSON_H
#define PS_CORE_SPEC_JSON_H

#include "core/spec.h"

/* malloc'd compact JSON with sorted keys, or NULL on OOM. */
char *ps_spec_to_json(const ps_spec *spec);

#endif
