/*
 * spec.c — parsing and checking the job spec (see spec.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. jansson parses the document (duplicate keys rejected); this file then
 *     walks it once, object by object: first every key of an object is
 *     checked against that object's known fields (a typo must not silently
 *     disable an option), then each field is read and checked in turn. The
 *     first problem stops the walk.
 *  2. Every message is "<origin>: <field path>: <what is wrong>", built by
 *     fail(). Paths are written the way a user would point at the field:
 *     "source.url", "tables.include[2]"; the top level is "top level".
 *  3. Ownership: a ps_spec owns every string in it. Parsing fills a calloc'd
 *     spec as it goes and on any error the one cleanup path frees the
 *     partial spec with ps_spec_free, which accepts every partial state
 *     (arrays are published before their elements, counts follow them).
 *  4. Secrets: the spec holds only where a password comes from. The value
 *     is read by ps_spec_password on demand and never appears in a message;
 *     password_env is not echoed either, in case a password was pasted
 *     there by mistake.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/plugin.h"
#include "core/precheck.h"
#include "core/spec.h"
#include "util/buf.h"

#define SPEC_MAX_BYTES (1024 * 1024)
#define PASSWORD_LINE_MAX 4096
#define PATH_LEN 320
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct spec_ctx {
	const char *origin;   /* names the document in messages */
	ps_error *err;
} spec_ctx;

static const char *const root_fields[] = {
	"name", "type", "source", "target", "tables", "snapshot", "resume", "checks",
	"retry", "limits", "complete", "webhook"
};
static const char *const source_fields[] = {"url", "password_env", "password_file"};
static const char *const target_fields[] = {
	"url", "password_env", "password_file", "create_tables", "truncate_before_load",
	"schema", "foreign_keys", "create_extensions", "follow_ddl"
};
/* issue 15: target.follow_ddl (penstock/sink.h) */
static const char *const follow_names[] = {"created", "all", "none"};
static const int follow_values[] = {PS_FOLLOW_CREATED, PS_FOLLOW_ALL, PS_FOLLOW_NONE};
/* issue 14: target.schema, target.foreign_keys, tables.keyless (penstock/schema.h) */
static const char *const schema_names[] = {"tables", "full", "bare"};
static const int schema_values[] = {PS_SCHEMA_TABLES, PS_SCHEMA_FULL, PS_SCHEMA_BARE};
static const char *const fk_names[] = {"validate", "not_valid", "none"};
static const int fk_values[] = {PS_FK_VALIDATE, PS_FK_NOT_VALID, PS_FK_NONE};
static const char *const keyless_names[] = {"insert_only", "refuse", "replica_identity_full"};
static const int keyless_values[] = {PS_KEYLESS_INSERT_ONLY, PS_KEYLESS_REFUSE, PS_KEYLESS_FULL};
#define ENDPOINT_FIELDS_MAX 64   /* core fields and a plugin's options */
static const char *const snapshot_fields[] = {"parallel", "chunk_rows"};
static const char *const create_names[] = {"if_missing", "never", "drop_and_create"};
static const int create_values[] = {
	PS_CREATE_IF_MISSING, PS_CREATE_NEVER, PS_CREATE_DROP_AND_CREATE
};
static const char *const tables_fields[] = {"include", "exclude", "keyless"};
static const char *const checks_fields[] = {"skip"};
static const char *const retry_fields[] = {"initial_backoff_ms", "max_backoff_ms", "max_attempts"};
static const char *const limits_fields[] = {"rows_per_sec", "bytes_per_sec"};
static const char *const complete_fields[] = {"max_lag_ms"};
static const char *const webhook_fields[] = {"url_env", "secret_env"};

static const char *const type_names[] = {"migration", "sync", "snapshot", "cdc"};
static const int type_values[] = {
	PS_JOB_MIGRATION, PS_JOB_SYNC, PS_JOB_SNAPSHOT, PS_JOB_CDC
};
static const char *const resume_names[] = {"never", "always", "if_exists"};
static const int resume_values[] = {
	PS_RESUME_NEVER, PS_RESUME_ALWAYS, PS_RESUME_IF_EXISTS
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static int fail(spec_ctx *c, const char *path, const char *fmt, ...) PS_PRINTF(3, 4);

static int fail(spec_ctx *c, const char *path, const char *fmt, ...)
{
	char text[PS_ERROR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return ps_error_set(c->err, PS_EINVAL, "%s: %s: %s", c->origin, path, text);
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

static void make_path(char *path, const char *prefix, const char *key)
{
	if (prefix[0])
		snprintf(path, PATH_LEN, "%s.%s", prefix, key);
	else
		snprintf(path, PATH_LEN, "%s", key);
}

static int dup_str(spec_ctx *c, char **dst, const char *s)
{
	*dst = strdup(s);
	if (!*dst)
		return ps_error_set(c->err, PS_ENOMEM, "%s: out of memory", c->origin);
	return 0;
}

/* Every key of obj must be one of known[0..n). */
static int check_known(spec_ctx *c, json_t *obj, const char *prefix,
                       const char *const *known, size_t n)
{
	const char *key;
	json_t *value;
	char path[PATH_LEN];
	char list[256];
	size_t i, used = 0;

	json_object_foreach(obj, key, value) {
		bool found = false;

		for (i = 0; i < n && !found; i++)
			found = strcmp(key, known[i]) == 0;
		if (found)
			continue;
		list[0] = '\0';
		for (i = 0; i < n && used < sizeof(list); i++)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
			                         i ? ", " : "", known[i]);
		make_path(path, prefix, key);
		return fail(c, path, "unknown field; known fields are %s", list);
	}
	return 0;
}

/* The string at obj.key into *out (borrowed from obj), NULL when absent. */
static int get_string(spec_ctx *c, json_t *obj, const char *prefix, const char *key,
                      bool required, const char **out)
{
	char path[PATH_LEN];
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	make_path(path, prefix, key);
	if (!v && required)
		return fail(c, path, "required field is missing");
	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(c, path, "expected a string, got %s", type_name(v));
	*out = json_string_value(v);
	return 0;
}

/* A string field that must be one of names[]; *out keeps dflt when absent. */
static int get_choice(spec_ctx *c, json_t *obj, const char *prefix, const char *key,
                      bool required, const char *const *names, const int *values, size_t n,
                      int *out)
{
	const char *s = NULL;
	char list[128], path[PATH_LEN];
	size_t i, used = 0;
	int rc;

	rc = get_string(c, obj, prefix, key, required, &s);
	if (rc < 0 || !s)
		return rc;
	for (i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = values[i];
			return 0;
		}
	}
	list[0] = '\0';
	for (i = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
		                         i ? ", " : "", names[i]);
	make_path(path, prefix, key);
	return fail(c, path, "'%.64s' is not one of %s", s, list);
}

/* A boolean field; *out keeps its default when absent. */
static int get_bool(spec_ctx *c, json_t *obj, const char *prefix, const char *key, bool *out)
{
	char path[PATH_LEN];
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	make_path(path, prefix, key);
	if (!json_is_boolean(v))
		return fail(c, path, "expected true or false, got %s", type_name(v));
	*out = json_is_true(v);
	return 0;
}

/* An integer field within [lo, hi]; *out keeps its default when absent. */
static int get_int(spec_ctx *c, json_t *obj, const char *prefix, const char *key,
                   long long lo, long long hi, long long *out)
{
	char path[PATH_LEN];
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	make_path(path, prefix, key);
	if (!json_is_integer(v))
		return fail(c, path, "expected an integer, got %s", type_name(v));
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return fail(c, path, "%lld is out of range; use %lld to %lld",
		            (long long)json_integer_value(v), lo, hi);
	*out = json_integer_value(v);
	return 0;
}

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* ^[a-z0-9][a-z0-9_-]{0,47}$ */
static bool valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > 48 || !is_lower_alnum(s[0]))
		return false;
	for (i = 1; i < n; i++) {
		if (!is_lower_alnum(s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	}
	return true;
}

/* ^[A-Za-z_][A-Za-z0-9_]*$ */
static bool valid_env_name(const char *s)
{
	size_t i;

	if (!s[0] || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; s[i]; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */
/* ------------------------------------------------------------------ */

static int parse_password_fields(spec_ctx *c, json_t *obj, const char *field,
                                 ps_endpoint_spec *ep)
{
	const char *env = NULL, *file = NULL;
	char path[PATH_LEN];
	int rc;

	rc = get_string(c, obj, field, "password_env", false, &env);
	if (rc < 0)
		return rc;
	rc = get_string(c, obj, field, "password_file", false, &file);
	if (rc < 0)
		return rc;
	if (env && file)
		return fail(c, field, "set password_env or password_file, not both");
	if (env && !valid_env_name(env)) {
		make_path(path, field, "password_env");
		return fail(c, path, "must be the name of an environment variable "
		            "(letters, digits and '_', not starting with a digit)");
	}
	if (file && !file[0]) {
		make_path(path, field, "password_file");
		return fail(c, path, "must not be empty");
	}
	if (env)
		return dup_str(c, &ep->password_env, env);
	if (file)
		return dup_str(c, &ep->password_file, file);
	return 0;
}

/* A plugin's declared option (penstock/options.h) at obj.key into opts:
 * as given, else its default; absent when it has neither. */
static int parse_option(spec_ctx *c, json_t *obj, const char *field, const ps_option_def *d,
                        const char *job_name, json_t *opts)
{
	char path[PATH_LEN], dflt[PS_OPTION_TEXT_MAX];
	const char *text = NULL, *why;
	json_t *value = NULL;
	int rc = 0;

	make_path(path, field, d->name);
	switch (d->kind) {
	case PS_OPTION_INTEGER: {
		long long v = d->default_int;
		rc = get_int(c, obj, field, d->name, d->min, d->max, &v);
		value = rc < 0 ? NULL : json_integer(v);
		break;
	}
	case PS_OPTION_BOOL: {
		bool v = d->default_int != 0;
		rc = get_bool(c, obj, field, d->name, &v);
		value = rc < 0 ? NULL : json_boolean(v);
		break;
	}
	case PS_OPTION_CHOICE: {
		int n = 0, choice = -1, values[64];
		for (; d->choices[n] && n < 64; n++)
			values[n] = n;
		rc = get_choice(c, obj, field, d->name, false, (const char *const *)d->choices, values,
		                (size_t)n, &choice);
		text = choice >= 0 ? d->choices[choice] : d->default_text;
		if (rc == 0 && text)
			value = json_string(text);
		break;
	}
	default:
		rc = get_string(c, obj, field, d->name, false, &text);
		if (rc == 0 && !text && (d->default_fn || d->default_text)) {
			if (d->default_fn)
				d->default_fn(job_name, dflt, sizeof(dflt));
			else
				snprintf(dflt, sizeof(dflt), "%s", d->default_text);
			text = dflt;
		}
		if (rc == 0 && text && strlen(text) >= PS_OPTION_TEXT_MAX)
			return fail(c, path, "is longer than %d characters", PS_OPTION_TEXT_MAX - 1);
		if (rc == 0 && text && d->check) {
			why = d->check(text);
			if (why)
				return fail(c, path, "'%.64s' %s", text, why);
		}
		if (rc == 0 && text)
			value = json_string(text);
		break;
	}
	if (rc < 0)
		return rc;
	if (value && json_object_set_new(opts, d->name, value) != 0)
		return ps_error_set(c->err, PS_ENOMEM, "%s: out of memory", c->origin);
	return 0;
}

/* The fields of an endpoint object: the core's own, then the plugin's. */
static int check_endpoint_fields(spec_ctx *c, json_t *obj, const char *field,
                                 const ps_option_def *defs)
{
	const char *known[ENDPOINT_FIELDS_MAX];
	bool is_source = strcmp(field, "source") == 0;
	const char *const *core = is_source ? source_fields : target_fields;
	size_t ncore = is_source ? ARRAY_LEN(source_fields) : ARRAY_LEN(target_fields), n = 0;

	for (; n < ncore; n++)
		known[n] = core[n];
	for (const ps_option_def *d = defs; d && d->name && n < ENDPOINT_FIELDS_MAX; d++)
		known[n++] = d->name;
	return check_known(c, obj, field, known, n);
}

/* The plugin that will serve this end, for its declared options. A source
 * must have one; a target whose plugin this build lacks is refused when
 * the job runs (its URL may be written before its plugin is installed). */
static int endpoint_plugin(spec_ctx *c, const char *field, const ps_url *u,
                           const ps_option_def **defs)
{
	const ps_source_ops *src;
	const ps_sink_ops *snk;
	char known[256];
	size_t used = 0;
	ps_error ignored;

	*defs = NULL;
	ps_error_clear(&ignored);
	snk = ps_plugin_sink_for(u->scheme_name, &ignored);
	if (strcmp(field, "source") != 0) {
		*defs = snk ? snk->options : NULL;
		return 0;
	}
	src = ps_plugin_source_for(u->scheme_name, &ignored);
	if (src) {
		*defs = src->options;
		return 0;
	}
	known[0] = '\0';
	for (size_t i = 0; ps_plugin_source_name(i) && used < sizeof(known); i++)
		used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
		                         ps_plugin_source_name(i));
	if (snk)
		return fail(c, "source.url", "%s cannot be a source; supported: %s", u->scheme_name,
		            known);
	return fail(c, "source.url", "%s sources are not supported by this build yet; "
	            "supported: %s", u->scheme_name, known);
}

static int parse_endpoint(spec_ctx *c, json_t *root, const char *field,
                          ps_endpoint_spec *ep, const char *name)
{
	bool is_source = strcmp(field, "source") == 0;
	json_t *obj = json_object_get(root, field);
	const ps_option_def *defs = NULL;
	const char *url = NULL;
	char path[PATH_LEN];
	ps_error url_err;
	int rc;

	if (!obj)
		return fail(c, field, "required field is missing");
	if (!json_is_object(obj))
		return fail(c, field, "expected an object, got %s", type_name(obj));
	/* The URL first: its scheme names the plugin whose fields are known. */
	rc = get_string(c, obj, field, "url", true, &url);
	if (rc < 0)
		return rc;
	rc = dup_str(c, &ep->url, url);
	if (rc < 0)
		return rc;
	ps_error_clear(&url_err);
	if (ps_url_parse(&ep->parsed, url, &url_err) < 0) {
		make_path(path, field, "url");
		return fail(c, path, "%s", url_err.message);
	}
	rc = endpoint_plugin(c, field, &ep->parsed, &defs);
	if (rc == 0)
		rc = check_endpoint_fields(c, obj, field, defs);
	if (rc < 0)
		return rc;
	rc = parse_password_fields(c, obj, field, ep);
	if (rc < 0)
		return rc;
	ep->options = json_object();
	if (!ep->options)
		return ps_error_set(c->err, PS_ENOMEM, "%s: out of memory", c->origin);
	for (const ps_option_def *d = defs; d && d->name; d++) {
		rc = parse_option(c, obj, field, d, name, ep->options);
		if (rc < 0)
			return rc;
	}
	if (is_source)
		return 0;
	ep->create_tables = PS_CREATE_IF_MISSING;
	rc = get_choice(c, obj, field, "create_tables", false, create_names, create_values,
	                ARRAY_LEN(create_names), &ep->create_tables);
	if (rc < 0)
		return rc;
	rc = get_bool(c, obj, field, "truncate_before_load", &ep->truncate_before_load);
	/* issue 14: what the target gets besides the rows (penstock/schema.h) */
	ep->schema = PS_SCHEMA_TABLES;
	ep->foreign_keys = PS_FK_VALIDATE;
	ep->create_extensions = true;
	if (rc == 0)
		rc = get_choice(c, obj, field, "schema", false, schema_names, schema_values,
		                ARRAY_LEN(schema_names), &ep->schema);
	if (rc == 0)
		rc = get_choice(c, obj, field, "foreign_keys", false, fk_names, fk_values,
		                ARRAY_LEN(fk_names), &ep->foreign_keys);
	if (rc == 0)
		rc = get_bool(c, obj, field, "create_extensions", &ep->create_extensions);
	ep->follow_ddl = PS_FOLLOW_CREATED;
	if (rc == 0)
		rc = get_choice(c, obj, field, "follow_ddl", false, follow_names, follow_values,
		                ARRAY_LEN(follow_names), &ep->follow_ddl);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

/* tables.<key>: an array of "schema.table" globs. *list is published before
 * it is filled and *count follows each element, so a partial list frees. */
static int parse_patterns(spec_ctx *c, json_t *tables, const char *key,
                          char ***list, size_t *count)
{
	json_t *arr = tables ? json_object_get(tables, key) : NULL;
	char path[PATH_LEN];
	size_t i, n;
	int rc;

	make_path(path, "tables", key);
	if (!arr && strcmp(key, "include") == 0) {
		*list = calloc(1, sizeof(char *));
		if (!*list)
			return ps_error_set(c->err, PS_ENOMEM, "%s: out of memory", c->origin);
		rc = dup_str(c, &(*list)[0], "*.*");
		if (rc == 0)
			*count = 1;
		return rc;
	}
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(c, path, "expected an array, got %s", type_name(arr));
	n = json_array_size(arr);
	if (n == 0 && strcmp(key, "include") == 0)
		return fail(c, path, "must list at least one pattern");
	if (n == 0)
		return 0;
	*list = calloc(n, sizeof(char *));
	if (!*list)
		return ps_error_set(c->err, PS_ENOMEM, "%s: out of memory", c->origin);
	for (i = 0; i < n; i++) {
		json_t *v = json_array_get(arr, i);
		const char *s;

		snprintf(path, sizeof(path), "tables.%s[%zu]", key, i);
		if (!json_is_string(v))
			return fail(c, path, "expected a string, got %s", type_name(v));
		s = json_string_value(v);
		if (!strchr(s, '.'))
			return fail(c, path, "'%.64s' is not schema.table; write public.%.64s or public.*",
			            s, s[0] ? s : "orders");
		rc = dup_str(c, &(*list)[i], s);
		if (rc < 0)
			return rc;
		*count = i + 1;
	}
	return 0;
}

/* The optional object member name of root, in *out (NULL when absent): an
 * error when it is not an object or holds a field not in known. */
static int get_section(spec_ctx *c, json_t *root, const char *name, const char *const *known,
                       size_t n, json_t **out)
{
	json_t *obj = json_object_get(root, name);

	*out = NULL;
	if (!obj)
		return 0;
	if (!json_is_object(obj))
		return fail(c, name, "expected an object, got %s", type_name(obj));
	*out = obj;
	return check_known(c, obj, name, known, n);
}

static int parse_tables(spec_ctx *c, json_t *root, ps_spec *spec)
{
	json_t *tables;
	int rc = get_section(c, root, "tables", tables_fields, ARRAY_LEN(tables_fields), &tables);

	if (rc < 0)
		return rc;
	rc = parse_patterns(c, tables, "include", &spec->include, &spec->ninclude);
	if (rc < 0)
		return rc;
	rc = parse_patterns(c, tables, "exclude", &spec->exclude, &spec->nexclude);
	spec->keyless = PS_KEYLESS_INSERT_ONLY;
	if (rc == 0 && tables)
		rc = get_choice(c, tables, "tables", "keyless", false, keyless_names, keyless_values,
		                ARRAY_LEN(keyless_names), &spec->keyless);
	return rc;
}

static int parse_snapshot(spec_ctx *c, json_t *root, ps_spec *spec)
{
	json_t *snap;
	long long parallel = 4, chunk_rows = 250000;
	int rc = get_section(c, root, "snapshot", snapshot_fields, ARRAY_LEN(snapshot_fields), &snap);

	if (rc < 0)
		return rc;
	if (snap && spec->type == PS_JOB_CDC)
		return fail(c, "snapshot", "a cdc job copies no snapshot; remove this field or use "
		            "type sync, migration or snapshot");
	if (snap) {
		rc = get_int(c, snap, "snapshot", "parallel", 1, 64, &parallel);
		if (rc == 0)
			rc = get_int(c, snap, "snapshot", "chunk_rows", 1000, 1000000000000LL, &chunk_rows);
		if (rc < 0)
			return rc;
	}
	spec->snapshot_parallel = (int)parallel;
	spec->snapshot_chunk_rows = chunk_rows;
	return 0;
}

/* limits: rate limits on what is applied (and copied); 0 or absent means
 * unlimited. They may change while the job runs (core/ratelimit.h). */
static int parse_limits(spec_ctx *c, json_t *root, ps_spec *spec)
{
	json_t *lim;
	int rc = get_section(c, root, "limits", limits_fields, ARRAY_LEN(limits_fields), &lim);

	spec->limit_rows_per_sec = 0;
	spec->limit_bytes_per_sec = 0;
	if (rc < 0 || !lim)
		return rc;
	rc = get_int(c, lim, "limits", "rows_per_sec", 0, 1000000000LL, &spec->limit_rows_per_sec);
	if (rc == 0)
		rc = get_int(c, lim, "limits", "bytes_per_sec", 0, 1000000000000LL,
		             &spec->limit_bytes_per_sec);
	return rc;
}

/* complete: the cutover of a migration job. */
static int parse_complete(spec_ctx *c, json_t *root, ps_spec *spec)
{
	json_t *cpl;
	int rc = get_section(c, root, "complete", complete_fields, ARRAY_LEN(complete_fields), &cpl);

	spec->complete_max_lag_ms = 5000;
	if (rc < 0 || !cpl)
		return rc;
	if (spec->type != PS_JOB_MIGRATION)
		return fail(c, "complete", "only a migration job completes; remove this field or use "
		            "type migration");
	return get_int(c, cpl, "complete", "max_lag_ms", 1, 3600000, &spec->complete_max_lag_ms);
}

/* webhook: the names of the environment variables (of the server) that hold
 * the URL to call on some transitions and the secret that signs the calls;
 * never the values, which may be secrets both. */
static int parse_webhook_env(spec_ctx *c, json_t *hook, const char *key, bool required,
                             char **out)
{
	const char *env = NULL;
	char path[PATH_LEN];
	int rc = get_string(c, hook, "webhook", key, required, &env);

	if (rc < 0 || !env)
		return rc;
	if (!valid_env_name(env)) {
		make_path(path, "webhook", key);
		return fail(c, path, "must be the name of an environment variable "
		            "(letters, digits and '_', not starting with a digit)");
	}
	return dup_str(c, out, env);
}

static int parse_webhook(spec_ctx *c, json_t *root, ps_spec *spec)
{
	json_t *hook;
	int rc = get_section(c, root, "webhook", webhook_fields, ARRAY_LEN(webhook_fields), &hook);

	if (rc < 0 || !hook)
		return rc;
	rc = parse_webhook_env(c, hook, "url_env", true, &spec->webhook_url_env);
	if (rc == 0)
		rc = parse_webhook_env(c, hook, "secret_env", false, &spec->webhook_secret_env);
	return rc;
}

/* checks.skip: precheck ids, each one ps_check_id_skippable. The list is
 * published before it is filled, like the table patterns. */
static int parse_checks(spec_ctx *c, json_t *root, ps_spec *spec)
{
	json_t *checks, *arr;
	char path[PATH_LEN];
	char known[1024];
	size_t i, n, used = 0;
	int rc = get_section(c, root, "checks", checks_fields, ARRAY_LEN(checks_fields), &checks);

	if (rc < 0 || !checks)
		return rc;
	arr = json_object_get(checks, "skip");
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(c, "checks.skip", "expected an array, got %s", type_name(arr));
	n = json_array_size(arr);
	if (n == 0)
		return 0;
	spec->check_skip = calloc(n, sizeof(char *));
	if (!spec->check_skip)
		return ps_error_set(c->err, PS_ENOMEM, "%s: out of memory", c->origin);
	known[0] = '\0';
	for (i = 0; ps_check_known_id(i) && used < sizeof(known); i++) {
		if (ps_check_id_skippable(ps_check_known_id(i)))
			used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
			                         used ? ", " : "", ps_check_known_id(i));
	}
	for (i = 0; i < n; i++) {
		json_t *v = json_array_get(arr, i);
		const char *id;

		snprintf(path, sizeof(path), "checks.skip[%zu]", i);
		if (!json_is_string(v))
			return fail(c, path, "expected a string, got %s", type_name(v));
		id = json_string_value(v);
		if (!ps_check_id_known(id))
			return fail(c, path, "unknown check \"%.64s\"; known: %s", id, known);
		if (!ps_check_id_skippable(id))
			return fail(c, path, "check \"%s\" cannot be skipped: no other check, nor the "
			            "job, can run without the connection", id);
		rc = dup_str(c, &spec->check_skip[i], id);
		if (rc < 0)
			return rc;
		spec->ncheck_skip = i + 1;
	}
	return 0;
}

/* retry: how the server waits after a retryable error (core/errclass.h). */
static int parse_retry(spec_ctx *c, json_t *root, ps_spec *spec)
{
	json_t *retry;
	int rc = get_section(c, root, "retry", retry_fields, ARRAY_LEN(retry_fields), &retry);

	spec->retry_initial_backoff_ms = 1000;
	spec->retry_max_backoff_ms = 60000;
	spec->retry_max_attempts = 0;
	if (rc < 0 || !retry)
		return rc;
	rc = get_int(c, retry, "retry", "initial_backoff_ms", 10, 3600000,
	             &spec->retry_initial_backoff_ms);
	if (rc == 0)
		rc = get_int(c, retry, "retry", "max_backoff_ms", 10, 86400000,
		             &spec->retry_max_backoff_ms);
	if (rc == 0)
		rc = get_int(c, retry, "retry", "max_attempts", 0, 1000000, &spec->retry_max_attempts);
	if (rc < 0)
		return rc;
	if (spec->retry_max_backoff_ms < spec->retry_initial_backoff_ms)
		return fail(c, "retry.max_backoff_ms", "%lld is below retry.initial_backoff_ms (%lld)",
		            spec->retry_max_backoff_ms, spec->retry_initial_backoff_ms);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The document                                                        */
/* ------------------------------------------------------------------ */

static int parse_root(spec_ctx *c, json_t *root, ps_spec *spec)
{
	const char *name = NULL;
	int rc;

	rc = check_known(c, root, "", root_fields, ARRAY_LEN(root_fields));
	if (rc < 0)
		return rc;
	rc = get_string(c, root, "", "name", true, &name);
	if (rc < 0)
		return rc;
	if (!valid_name(name))
		return fail(c, "name", "'%.64s' is not a valid job name; use 1 to 48 characters "
		            "a-z, 0-9, '_' or '-', starting with a letter or digit", name);
	rc = dup_str(c, &spec->name, name);
	if (rc < 0)
		return rc;
	rc = get_choice(c, root, "", "type", true, type_names, type_values,
	                ARRAY_LEN(type_names), &spec->type);
	if (rc < 0)
		return rc;
	rc = parse_endpoint(c, root, "source", &spec->source, spec->name);
	if (rc < 0)
		return rc;
	rc = parse_endpoint(c, root, "target", &spec->target, spec->name);
	if (rc < 0)
		return rc;
	rc = parse_tables(c, root, spec);
	if (rc < 0)
		return rc;
	rc = parse_snapshot(c, root, spec);
	if (rc < 0)
		return rc;
	rc = parse_checks(c, root, spec);
	if (rc < 0)
		return rc;
	rc = parse_retry(c, root, spec);
	if (rc < 0)
		return rc;
	rc = parse_limits(c, root, spec);
	if (rc < 0)
		return rc;
	rc = parse_complete(c, root, spec);
	if (rc < 0)
		return rc;
	rc = parse_webhook(c, root, spec);
	if (rc < 0)
		return rc;
	spec->resume = PS_RESUME_IF_EXISTS;
	return get_choice(c, root, "", "resume", false, resume_names, resume_values,
	                  ARRAY_LEN(resume_names), &spec->resume);
}

int ps_spec_parse(ps_spec **out, const char *text, size_t len, const char *origin,
                  ps_error *err)
{
	spec_ctx c = {origin ? origin : "spec", err};
	json_error_t jerr;
	json_t *root = NULL;
	ps_spec *spec = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (!out || !text) {
		rc = ps_error_set(err, PS_EINVAL, "%s: no spec given", c.origin);
		goto cleanup;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		rc = ps_error_set(err, PS_EINVAL, "%s:%d:%d: %s", c.origin, jerr.line,
		                  jerr.column, jerr.text);
		goto cleanup;
	}
	if (!json_is_object(root)) {
		rc = fail(&c, "top level", "expected an object, got %s", type_name(root));
		goto cleanup;
	}
	spec = calloc(1, sizeof(*spec));
	if (!spec) {
		rc = ps_error_set(err, PS_ENOMEM, "%s: out of memory", c.origin);
		goto cleanup;
	}
	rc = parse_root(&c, root, spec);
	if (rc < 0)
		goto cleanup;
	*out = spec;
	spec = NULL;

cleanup:
	ps_spec_free(spec);
	json_decref(root);
	return rc;
}

int ps_spec_load_file(ps_spec **out, const char *path, ps_error *err)
{
	ps_buf text;
	char chunk[65536];
	FILE *f = NULL;
	size_t n;
	int rc = 0;

	ps_buf_init(&text, SPEC_MAX_BYTES);
	if (out)
		*out = NULL;
	if (!path) {
		rc = ps_error_set(err, PS_EINVAL, "no spec path given");
		goto cleanup;
	}
	f = fopen(path, "rb");
	if (!f) {
		rc = ps_error_set_errno(err, PS_EINVAL, errno, "cannot read spec '%s'", path);
		goto cleanup;
	}
	do {
		n = fread(chunk, 1, sizeof(chunk), f);
		rc = ps_buf_append(&text, chunk, n);
	} while (rc == 0 && n == sizeof(chunk));
	if (rc == PS_ETOOBIG) {
		rc = ps_error_set(err, PS_EINVAL, "spec '%s' is larger than 1 MiB (%d bytes)",
		                  path, SPEC_MAX_BYTES);
		goto cleanup;
	}
	if (rc < 0) {
		rc = ps_error_set(err, rc, "cannot read spec '%s': out of memory", path);
		goto cleanup;
	}
	if (ferror(f)) {
		rc = ps_error_set_errno(err, PS_EINVAL, errno, "cannot read spec '%s'", path);
		goto cleanup;
	}
	rc = ps_spec_parse(out, text.data ? text.data : "", text.len, path, err);

cleanup:
	if (f)
		fclose(f);
	ps_buf_free(&text);
	return rc;
}

static void free_endpoint(ps_endpoint_spec *ep)
{
	free(ep->url);
	free(ep->password_env);
	free(ep->password_file);
	json_decref(ep->options);
}

static void free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void ps_spec_free(ps_spec *spec)
{
	if (!spec)
		return;
	free(spec->name);
	free(spec->webhook_url_env);
	free(spec->webhook_secret_env);
	free_endpoint(&spec->source);
	free_endpoint(&spec->target);
	free_list(spec->include, spec->ninclude);
	free_list(spec->exclude, spec->nexclude);
	free_list(spec->check_skip, spec->ncheck_skip);
	free(spec);
}

/* ------------------------------------------------------------------ */
/* Passwords                                                           */
/* ------------------------------------------------------------------ */

static int password_from_env(const ps_endpoint_spec *ep, const char *field, char **out,
                             ps_error *err)
{
	const char *value = getenv(ep->password_env);

	if (!value)
		return ps_error_set(err, PS_EINVAL,
		                    "%s.password_env: environment variable %s is not set",
		                    field, ep->password_env);
	if (!value[0])
		return ps_error_set(err, PS_EINVAL,
		                    "%s.password_env: environment variable %s is empty",
		                    field, ep->password_env);
	*out = strdup(value);
	if (!*out)
		return ps_error_set(err, PS_ENOMEM, "%s.password_env: out of memory", field);
	return 0;
}

/* The first line of password_file. The stream is unbuffered so that stdio
 * keeps no copy of the secret; the local buffer is wiped on every path. */
static int password_from_file(const ps_endpoint_spec *ep, const char *field, char **out,
                              ps_error *err)
{
	char line[PASSWORD_LINE_MAX];
	const char *path = ep->password_file;
	FILE *f = NULL;
	size_t n, len;
	char *nl;
	int rc = 0;

	f = fopen(path, "rb");
	if (!f) {
		rc = ps_error_set_errno(err, PS_EINVAL, errno,
		                        "%s.password_file: cannot read '%s'", field, path);
		goto cleanup;
	}
	setvbuf(f, NULL, _IONBF, 0);
	n = fread(line, 1, sizeof(line) - 1, f);
	if (ferror(f)) {
		rc = ps_error_set_errno(err, PS_EINVAL, errno,
		                        "%s.password_file: cannot read '%s'", field, path);
		goto cleanup;
	}
	line[n] = '\0';
	nl = memchr(line, '\n', n);
	if (!nl && n == sizeof(line) - 1) {
		rc = ps_error_set(err, PS_EINVAL, "%s.password_file: the first line of '%s' is "
		                  "longer than %d bytes", field, path, PASSWORD_LINE_MAX - 2);
		goto cleanup;
	}
	len = nl ? (size_t)(nl - line) : n;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len)) {
		rc = ps_error_set(err, PS_EINVAL, "%s.password_file: '%s' contains a NUL byte",
		                  field, path);
		goto cleanup;
	}
	if (len == 0) {
		rc = ps_error_set(err, PS_EINVAL, "%s.password_file: the first line of '%s' is empty",
		                  field, path);
		goto cleanup;
	}
	*out = strndup(line, len);
	if (!*out)
		rc = ps_error_set(err, PS_ENOMEM, "%s.password_file: out of memory", field);

cleanup:
	explicit_bzero(line, sizeof(line));
	if (f)
		fclose(f);
	return rc;
}

int ps_spec_password(const ps_endpoint_spec *ep, const char *field, char **out,
                     ps_error *err)
{
	if (!out)
		return ps_error_set(err, PS_EINVAL, "no password output given");
	*out = NULL;
	if (!field)
		field = "endpoint";
	if (!ep)
		return ps_error_set(err, PS_EINVAL, "%s: no endpoint given", field);
	if (ep->password_env)
		return password_from_env(ep, field, out, err);
	if (ep->password_file)
		return password_from_file(ep, field, out, err);
	return 0;
}

const char *ps_job_type_name(int type)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(type_values); i++) {
		if (type_values[i] == type)
			return type_names[i];
	}
	return "unknown";
}

const char *ps_resume_policy_name(int policy)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(resume_values); i++) {
		if (resume_values[i] == policy)
			return resume_names[i];
	}
	return "unknown";
}

int ps_spec_source_config(const ps_spec *s, ps_source_config *cfg, char **password,
                          ps_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	*password = NULL;
	cfg->job_name = s->name;
	cfg->url = s->source.url;
	cfg->options = s->source.options;
	cfg->include = (const char *const *)s->include;
	cfg->ninclude = s->ninclude;
	cfg->exclude = (const char *const *)s->exclude;
	cfg->nexclude = s->nexclude;
	cfg->schema = s->target.schema;
	cfg->keyless = s->keyless;
	cfg->foreign_keys = s->target.foreign_keys;
	cfg->no_extensions = !s->target.create_extensions;
	cfg->load_only = s->type == PS_JOB_SNAPSHOT;
	if (ps_spec_password(&s->source, "source", password, err) != PS_OK)
		return err->code;
	cfg->password = *password;
	return PS_OK;
}

int ps_spec_sink_config(const ps_spec *s, ps_sink_config *cfg, char **password, ps_error *err)
{
	const ps_source_ops *src_ops;

	memset(cfg, 0, sizeof(*cfg));
	*password = NULL;
	src_ops = ps_plugin_source_for(s->source.parsed.scheme_name, err);
	if (!src_ops)
		return ps_error_add_context(err, "source.url");
	cfg->job_name = s->name;
	cfg->url = s->target.url;
	cfg->options = s->target.options;
	cfg->connector = src_ops->connector;
	cfg->source_db = s->source.parsed.dbname;
	if (ps_spec_password(&s->target, "target", password, err) != PS_OK)
		return err->code;
	cfg->password = *password;
	return PS_OK;
}
