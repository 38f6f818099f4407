/*
 * options.c — reading the options a plugin declared (penstock/options.h).
 * Parsing them is the spec's (core/spec.c), with every other field.
 */
#include "penstock/options.h"

const char *ps_option_str(const json_t *opts, const char *name)
{
	return opts ? json_string_value(json_object_get(opts, name)) : NULL;
}

long long ps_option_int(const json_t *opts, const char *name, long long dflt)
{
	const json_t *v = opts ? json_object_get(opts, name) : NULL;

	return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

bool ps_option_bool(const json_t *opts, const char *name, bool dflt)
{
	const json_t *v = opts ? json_object_get(opts, name) : NULL;

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}
