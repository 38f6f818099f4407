/*
 * penstock/options.h — options a plugin declares for its end of a job.
 *
 * A source or sink lists the fields it accepts in the spec's "source" or
 * "target" object besides the core's own (url, password_env, password_file,
 * and for targets create_tables, truncate_before_load). The core parses
 * them with the same rules and messages as every other field (the field
 * path, what is wrong, what to write), fills defaults, and hands the plugin
 * the result as a JSON object (ps_source_config.options,
 * ps_sink_config.options) holding every declared option that has a value.
 * Unknown fields stay errors: the message lists the core's fields and the
 * plugin's.
 *
 * Example (the PostgreSQL source):
 *
 *   "source": {"url": "postgresql://repl@db1/app",
 *              "slot": "penstock_orders",           declared by the plugin
 *              "publication": "penstock_orders"}     declared by the plugin
 */
#ifndef PENSTOCK_OPTIONS_H
#define PENSTOCK_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum ps_option_kind {
	PS_OPTION_STRING = 1,
	PS_OPTION_INTEGER,
	PS_OPTION_BOOL,
	PS_OPTION_CHOICE       /* a string that must be one of choices */
} ps_option_kind;

#define PS_OPTION_TEXT_MAX 256   /* longest string option value */

typedef struct ps_option_def {
	const char *name;              /* field name; NULL ends a plugin's list */
	int kind;                      /* ps_option_kind */
	const char *const *choices;    /* CHOICE: NULL-terminated */
	long long min, max;            /* INTEGER: inclusive bounds */
	long long default_int;         /* INTEGER, BOOL (0/1): the default */
	const char *default_text;      /* STRING, CHOICE: the default, or NULL */
	/* STRING: writes the default for this job into buf (NUL-terminated);
	 * used instead of default_text when set. */
	void (*default_fn)(const char *job_name, char *buf, size_t len);
	/* STRING: NULL when value is valid, else what is wrong and what to
	 * write instead (the core puts the field path in front). */
	const char *(*check)(const char *value);
	bool restart;                  /* changing it needs the job started afresh
	                                  (it names something the job created) */
	bool unique;                   /* no two jobs on the same source may share
	                                  its value (it names what the job holds) */
	const char *doc;               /* one line: what it is */
} ps_option_def;

/* Reading options a plugin was given (NULL opts: none). The value of name,
 * or NULL / dflt when it has none. */
const char *ps_option_str(const json_t *opts, const char *name);
long long ps_option_int(const json_t *opts, const char *name, long long dflt);
bool ps_option_bool(const json_t *opts, const char *name, bool dflt);

#endif
