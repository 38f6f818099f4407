/*
 * spec.h — the job spec: one JSON document, the same for files and the API.
 *
 *   {
 *     "name": "orders",                          required, [a-z0-9][a-z0-9_-]{0,47}
 *     "type": "cdc",                             required: migration | sync | snapshot | cdc
 *     "source": {"url": "postgresql://repl@db1:5432/app",   required
 *                "password_env": "SRC_PW",       optional, or
 *                "password_file": "/run/secrets/src",       optional (not both)
 *                ...},                           the source plugin's options
 *                                                (penstock/options.h), e.g. PostgreSQL's
 *                                                "slot" and "publication"
 *     "target": {"url": "jsonl:///var/lib/out",  required
 *                "password_env": ..., "password_file": ...,
 *                "create_tables": "if_missing",  optional: if_missing | never | drop_and_create
 *                "truncate_before_load": false,  optional: empty non-empty tables first
 *                "schema": "tables",             optional: tables | full | bare
 *                "foreign_keys": "validate",     optional: validate | not_valid | none
 *                "create_extensions": true,      optional: create extensions tables need
 *                ...},                           the sink plugin's options
 *     "snapshot": {"parallel": 4,                optional, 1..64 copy workers
 *                  "chunk_rows": 250000},        optional, >= 1000: split bigger tables
 *     "tables": {"include": ["public.*"],        optional, default ["*.*"]
 *                "exclude": ["public.audit_*"],  optional, default []
 *                "keyless": "insert_only"},      optional: insert_only | refuse |
 *                                                replica_identity_full
 *     "limits": {"rows_per_sec": 0,              optional, >= 0 (0: unlimited); change live
 *                "bytes_per_sec": 0},            optional, >= 0 (0: unlimited); change live
 *     "complete": {"max_lag_ms": 5000},          optional, migration only: 1..3600000
 *     "resume": "if_exists",                     optional: never | always | if_exists
 *     "retry": {"initial_backoff_ms": 1000,      optional, 10..3600000: first wait
 *               "max_backoff_ms": 60000,         optional, >= initial_backoff_ms, <= 86400000
 *               "max_attempts": 0},              optional, 0 (forever)..1000000: retries
 *                                                after a retryable error (penstock server)
 *     "checks": {"skip": ["source.slots"]},      optional: precheck ids reported as
 *                                                skipped (core/precheck.h, docs/prechecks.md)
 *     "webhook": {"url_env": "HOOK_URL",         optional (penstock server): the variables
 *                 "secret_env": "HOOK_SECRET"}   holding the URL called on some transitions
 *                                                and the HMAC secret (optional) signing it
 *   }
 *
 * Rules: unknown fields are errors; duplicate keys are errors; every error
 * names the field path ("tables.include[2]: expected a string, got number").
 * Table patterns are globs (fnmatch) on "schema.table" and must contain a dot.
 */
#ifndef PS_CORE_SPEC_H
#define PS_CORE_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/url.h"
#include "penstock/error.h"
#include "penstock/sink.h"
#include "penstock/source.h"

typedef enum ps_job_type {
	PS_JOB_MIGRATION = 1,
	PS_JOB_SYNC,
	PS_JOB_SNAPSHOT,
	PS_JOB_CDC
} ps_job_type;

typedef enum ps_resume_policy {
	PS_RESUME_IF_EXISTS = 0,
	PS_RESUME_NEVER,
	PS_RESUME_ALWAYS
} ps_resume_policy;

typedef struct ps_endpoint_spec {
	char *url;            /* as written */
	ps_url parsed;
	char *password_env;   /* NULL when absent */
	char *password_file;  /* NULL when absent */
	json_t *options;      /* the plugin's declared options, defaults filled
	                         (an empty object when it declares none) */
	int create_tables;    /* target only: ps_create_tables (penstock/sink.h) */
	bool truncate_before_load; /* target only */
	/* issue 14, target only (penstock/schema.h): */
	int schema;           /* target.schema: ps_schema_mode, default tables */
	int foreign_keys;     /* target.foreign_keys: ps_foreign_keys, default validate */
	bool create_extensions; /* target.create_extensions, default true */
	int follow_ddl;       /* target.follow_ddl: ps_follow_ddl (penstock/sink.h),
	                         default created (issue 15) */
} ps_endpoint_spec;

typedef struct ps_spec {
	char *name;
	int type;             /* ps_job_type */
	ps_endpoint_spec source;
	ps_endpoint_spec target;
	char **include;       /* ninclude patterns; default {"*.*"} */
	size_t ninclude;
	char **exclude;
	size_t nexclude;
	int resume;           /* ps_resume_policy */
	long long retry_initial_backoff_ms; /* first wait after a retryable error, default 1000 */
	long long retry_max_backoff_ms;     /* the doubling stops here, default 60000 */
	long long retry_max_attempts;       /* retries before failed_permanently; 0: forever */
	int snapshot_parallel;        /* copy workers, default 4 */
	long long snapshot_chunk_rows; /* split tables above this many rows, default 250000 */
	char **check_skip;    /* ncheck_skip precheck ids to report as skipped */
	size_t ncheck_skip;
	long long limit_rows_per_sec;  /* limits.rows_per_sec: changes applied per second, 0 = unlimited */
	long long limit_bytes_per_sec; /* limits.bytes_per_sec: change bytes per second, 0 = unlimited */
	long long complete_max_lag_ms; /* complete.max_lag_ms: a migration is ready_to_complete
	                                  while its lag stays under this (default 5000) */
	int keyless;          /* tables.keyless: ps_keyless (penstock/schema.h), default
	                         insert_only (issue 14) */
	char *webhook_url_env;         /* webhook.url_env: the variable holding the URL the
	                                  server calls on some transitions, or NULL */
	char *webhook_secret_env;      /* webhook.secret_env: the variable holding the
	                                  secret that signs the calls, or NULL */
} ps_spec;

/*
 * Parses a spec. origin names the document in messages ("spec.json", "request
 * body"). On error returns PS_EINVAL and err->message is
 * "<origin>: <field path>: <what is wrong>" or, for JSON syntax,
 * "<origin>:<line>:<column>: <jansson's text>".
 */
int ps_spec_parse(ps_spec **out, const char *text, size_t len, const char *origin,
                  ps_error *err);
/* Reads the file (at most 1 MiB) and parses it with the path as origin. */
int ps_spec_load_file(ps_spec **out, const char *path, ps_error *err);
/* (A file that cannot be read is PS_EINVAL too: it is bad input.) */
void ps_spec_free(ps_spec *spec);

/*
 * Resolves the password of an endpoint: the environment variable named by
 * password_env, or the first line of password_file. *out is NULL when neither
 * is set, else malloc'd (caller frees, after wiping). field is "source" or
 * "target" for messages; a variable that is unset or a file that cannot be
 * read is PS_EINVAL naming the field, never the value.
 */
int ps_spec_password(const ps_endpoint_spec *ep, const char *field, char **out,
                     ps_error *err);

/*
 * The plugin configurations for the spec's ends: cfg borrows the spec's
 * strings; *password is the resolved password (NULL when none; the caller
 * frees it with ps_secret_free). want_snapshot is left false. The sink's
 * connector is the source plugin's envelope name. Errors name the field.
 */
int ps_spec_source_config(const ps_spec *s, ps_source_config *cfg, char **password,
                          ps_error *err);
int ps_spec_sink_config(const ps_spec *s, ps_sink_config *cfg, char **password, ps_error *err);

/* "migration" | "sync" | "snapshot" | "cdc"; "never" | "always" | "if_exists". */
const char *ps_job_type_name(int type);
const char *ps_resume_policy_name(int policy);

#endif
