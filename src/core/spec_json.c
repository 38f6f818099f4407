/*
 * spec_json.c — canonical JSON of a spec (see spec_json.h).
 */
#include <jansson.h>
#include <stdlib.h>

#include "core/spec_json.h"

static json_t *string_array(char **items, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(items[i]));
	return a;
}

static json_t *endpoint(const ps_endpoint_spec *ep, int is_source)
{
	json_t *o = json_object();

	json_object_set_new(o, "url", json_string(ep->parsed.redacted));
	if (ep->password_env)
		json_object_set_new(o, "password_env", json_string(ep->password_env));
	if (ep->password_file)
		json_object_set_new(o, "password_file", json_string(ep->password_file));
	if (ep->options)
		json_object_update(o, ep->options);   /* the plugin's options, as fields */
	if (!is_source) {
		static const char *const create[] = {"if_missing", "never", "drop_and_create"};
		json_object_set_new(o, "create_tables", json_string(create[ep->create_tables]));
		json_object_set_new(o, "truncate_before_load", json_boolean(ep->truncate_before_load));
		static const char *const schema[] = {"tables", "full", "bare"};
		static const char *const fks[] = {"validate", "not_valid", "none"};
		json_object_set_new(o, "schema", json_string(schema[ep->schema]));
		json_object_set_new(o, "foreign_keys", json_string(fks[ep->foreign_keys]));
		json_object_set_new(o, "create_extensions", json_boolean(ep->create_extensions));
		static const char *const follow[] = {"created", "all", "none"};
		json_object_set_new(o, "follow_ddl", json_string(follow[ep->follow_ddl]));
	}
	return o;
}

char *ps_spec_to_json(const ps_spec *spec)
{
	json_t *root = json_object();
	char *text;

	json_object_set_new(root, "name", json_string(spec->name));
	json_object_set_new(root, "type", json_string(ps_job_type_name(spec->type)));
	json_object_set_new(root, "source", endpoint(&spec->source, 1));
	json_object_set_new(root, "target", endpoint(&spec->target, 0));
	static const char *const keyless[] = {"insert_only", "refuse", "replica_identity_full"};
	json_object_set_new(root, "tables",
	                    json_pack("{s:o, s:o, s:s}", "include",
	                              string_array(spec->include, spec->ninclude),
	                              "exclude", string_array(spec->exclude, spec->nexclude),
	                              "keyless", keyless[spec->keyless]));
	json_object_set_new(root, "resume", json_string(ps_resume_policy_name(spec->resume)));
	if (spec->type != PS_JOB_CDC)
		json_object_set_new(root, "snapshot",
		                    json_pack("{s:i, s:I}", "parallel", spec->snapshot_parallel,
		                              "chunk_rows", (json_int_t)spec->snapshot_chunk_rows));
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	return text;
}
