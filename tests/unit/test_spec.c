/*
 * test_spec.c — unit tests for core/spec.c: a full spec, the defaults,
 * every error class with its exact field path, file loading, password
 * resolution, and that no message ever holds a secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/spec.h"
#include "core/spec_json.h"

#define ORIGIN "t.json"

/* A valid spec around which the error tests vary one thing. */
#define SRC_OK "\"source\": {\"url\": \"postgresql://repl@db1:5432/app\"}"
#define DST_OK "\"target\": {\"url\": \"jsonl:///var/out\"}"

static ps_spec *parse_ok(const char *text)
{
	ps_spec *spec = NULL;
	ps_error err;

	ps_error_clear(&err);
	if (ps_spec_parse(&spec, text, strlen(text), ORIGIN, &err) != 0)
		fail_msg("spec did not parse: %s\n%s", err.message, text);
	assert_non_null(spec);
	return spec;
}

/* Expects PS_EINVAL with exactly ORIGIN ": " want as the message. */
static void parse_fails(const char *text, const char *want)
{
	ps_spec *spec = (ps_spec *)0x1;
	ps_error err;
	char full[PS_ERROR_MESSAGE_MAX];

	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&spec, text, strlen(text), ORIGIN, &err), PS_EINVAL);
	assert_null(spec);
	assert_int_equal(err.code, PS_EINVAL);
	snprintf(full, sizeof(full), ORIGIN ": %s", want);
	if (strcmp(err.message, full) != 0)
		fail_msg("message\n  got:  %s\n  want: %s", err.message, full);
}

/* Expects PS_EINVAL with phrase in the message and secret nowhere in it. */
static void parse_fails_without(const char *text, const char *phrase, const char *secret)
{
	ps_spec *spec = NULL;
	ps_error err;

	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&spec, text, strlen(text), ORIGIN, &err), PS_EINVAL);
	assert_null(spec);
	if (!strstr(err.message, phrase))
		fail_msg("message '%s' lacks '%s'", err.message, phrase);
	if (strstr(err.message, secret))
		fail_msg("message '%s' holds the secret", err.message);
}

static void test_full_spec(void **state)
{
	const char *text =
		"{\n"
		"  \"name\": \"orders\",\n"
		"  \"type\": \"cdc\",\n"
		"  \"source\": {\"url\": \"postgresql://repl@db1:5432/app?sslmode=require\",\n"
		"             \"password_env\": \"SRC_PW\",\n"
		"             \"slot\": \"my_slot\", \"publication\": \"my_pub\"},\n"
		"  \"target\": {\"url\": \"postgres://app@[::1]:6432/dst\",\n"
		"             \"password_file\": \"/run/secrets/dst\"},\n"
		"  \"tables\": {\"include\": [\"public.*\", \"sales.orders\"],\n"
		"             \"exclude\": [\"public.audit_*\"]},\n"
		"  \"resume\": \"never\"\n"
		"}\n";
	ps_spec *spec = parse_ok(text);

	assert_string_equal(spec->name, "orders");
	assert_int_equal(spec->type, PS_JOB_CDC);
	assert_string_equal(spec->source.url, "postgresql://repl@db1:5432/app?sslmode=require");
	assert_string_equal(spec->source.parsed.scheme_name, "postgresql");
	assert_string_equal(spec->source.parsed.host, "db1");
	assert_int_equal(spec->source.parsed.port, 5432);
	assert_string_equal(spec->source.parsed.dbname, "app");
	assert_string_equal(ps_url_param_get(&spec->source.parsed, "sslmode"), "require");
	assert_string_equal(spec->source.password_env, "SRC_PW");
	assert_null(spec->source.password_file);
	assert_string_equal(ps_option_str(spec->source.options, "slot"), "my_slot");
	assert_string_equal(ps_option_str(spec->source.options, "publication"), "my_pub");
	assert_string_equal(spec->target.url, "postgres://app@[::1]:6432/dst");
	assert_string_equal(spec->target.parsed.host, "::1");
	assert_string_equal(spec->target.parsed.user, "app");
	assert_null(spec->target.password_env);
	assert_string_equal(spec->target.password_file, "/run/secrets/dst");
	assert_null(ps_option_str(spec->target.options, "slot"));
	assert_null(ps_option_str(spec->target.options, "publication"));
	assert_int_equal(spec->ninclude, 2);
	assert_string_equal(spec->include[0], "public.*");
	assert_string_equal(spec->include[1], "sales.orders");
	assert_int_equal(spec->nexclude, 1);
	assert_string_equal(spec->exclude[0], "public.audit_*");
	assert_int_equal(spec->resume, PS_RESUME_NEVER);
	ps_spec_free(spec);
}

static void test_defaults(void **state)
{
	ps_spec *spec = parse_ok("{\"name\": \"big-orders-2\", \"type\": \"migration\", "
	                         SRC_OK ", " DST_OK "}");

	assert_int_equal(spec->type, PS_JOB_MIGRATION);
	assert_int_equal(spec->resume, PS_RESUME_IF_EXISTS);
	assert_int_equal(spec->ninclude, 1);
	assert_string_equal(spec->include[0], "*.*");
	assert_int_equal(spec->nexclude, 0);
	assert_null(spec->exclude);
	assert_string_equal(ps_option_str(spec->source.options, "slot"), "penstock_big_orders_2");
	assert_string_equal(ps_option_str(spec->source.options, "publication"), "penstock_big_orders_2");
	assert_null(spec->source.password_env);
	assert_null(spec->source.password_file);
	assert_string_equal(spec->target.parsed.scheme_name, "jsonl");
	assert_string_equal(spec->target.parsed.path, "/var/out");
	ps_spec_free(spec);

	/* tables present without include: include still defaults. */
	spec = parse_ok("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", " DST_OK ", "
	                "\"tables\": {\"exclude\": [\"public.x\"]}, \"resume\": \"always\"}");
	assert_int_equal(spec->type, PS_JOB_SYNC);
	assert_int_equal(spec->resume, PS_RESUME_ALWAYS);
	assert_int_equal(spec->ninclude, 1);
	assert_string_equal(spec->include[0], "*.*");
	assert_int_equal(spec->nexclude, 1);
	ps_spec_free(spec);

	spec = parse_ok("{\"name\": \"a\", \"type\": \"snapshot\", " SRC_OK ", " DST_OK ", "
	                "\"tables\": {}, \"resume\": \"if_exists\"}");
	assert_int_equal(spec->type, PS_JOB_SNAPSHOT);
	assert_int_equal(spec->resume, PS_RESUME_IF_EXISTS);
	assert_int_equal(spec->ninclude, 1);
	ps_spec_free(spec);

	ps_spec_free(NULL);
}

static void test_target_schemes(void **state)
{
	static const char *const urls[] = {
		"jsonl:-", "sqlite:///tmp/x.db", "mysql://u@h/db", "kafka://k:9092/?topic_prefix=p",
	};
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		ps_spec *spec;

		snprintf(text, sizeof(text), "{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK
		         ", \"target\": {\"url\": \"%s\"}}", urls[i]);
		spec = parse_ok(text);
		assert_string_equal(spec->target.url, urls[i]);
		ps_spec_free(spec);
	}
}

static void test_unknown_fields(void **state)
{
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", \"resmue\": \"never\"}",
	            "resmue: unknown field; known fields are name, type, source, target, tables, snapshot, resume, checks, "
	            "retry, limits, complete, webhook");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": \"postgresql://h/db\", "
	            "\"slto\": \"x\"}, " DST_OK "}",
	            "source.slto: unknown field; known fields are url, password_env, password_file, "
	            "slot, publication");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", \"target\": {\"url\": \"jsonl:-\", "
	            "\"slot\": \"x\"}}",
	            "target.slot: unknown field; known fields are url, password_env, password_file, "
	            "create_tables, truncate_before_load, schema, foreign_keys, create_extensions, "
	            "follow_ddl");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"tables\": {\"include\": [\"a.b\"], \"exclud\": []}}",
	            "tables.exclud: unknown field; known fields are include, exclude, keyless");
}

/* issue 14: target.schema, target.foreign_keys, target.create_extensions,
 * tables.keyless: defaults, each value, and refusals naming the field. */
static void test_schema_options(void **state)
{
	ps_spec *spec;
	ps_source_config cfg;
	char *pw = NULL;
	char *json;

	spec = parse_ok("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", " DST_OK "}");
	assert_int_equal(spec->target.schema, PS_SCHEMA_TABLES);
	assert_int_equal(spec->target.foreign_keys, PS_FK_VALIDATE);
	assert_true(spec->target.create_extensions);
	assert_int_equal(spec->keyless, PS_KEYLESS_INSERT_ONLY);
	assert_int_equal(ps_spec_source_config(spec, &cfg, &pw, NULL), PS_OK);
	assert_int_equal(cfg.schema, PS_SCHEMA_TABLES);
	assert_false(cfg.no_extensions);
	assert_false(cfg.load_only);
	json = ps_spec_to_json(spec);
	assert_non_null(strstr(json, "\"keyless\":\"insert_only\""));
	assert_non_null(strstr(json, "\"schema\":\"tables\""));
	free(json);
	ps_spec_free(spec);

	spec = parse_ok("{\"name\": \"a\", \"type\": \"snapshot\", " SRC_OK ", "
	                "\"target\": {\"url\": \"postgresql://h/t\", \"schema\": \"full\", "
	                "\"foreign_keys\": \"not_valid\", \"create_extensions\": false}, "
	                "\"tables\": {\"keyless\": \"replica_identity_full\"}}");
	assert_int_equal(spec->target.schema, PS_SCHEMA_FULL);
	assert_int_equal(spec->target.foreign_keys, PS_FK_NOT_VALID);
	assert_false(spec->target.create_extensions);
	assert_int_equal(spec->keyless, PS_KEYLESS_FULL);
	assert_int_equal(spec->ninclude, 1);          /* keyless alone keeps the default include */
	assert_int_equal(ps_spec_source_config(spec, &cfg, &pw, NULL), PS_OK);
	assert_int_equal(cfg.schema, PS_SCHEMA_FULL);
	assert_int_equal(cfg.foreign_keys, PS_FK_NOT_VALID);
	assert_int_equal(cfg.keyless, PS_KEYLESS_FULL);
	assert_true(cfg.no_extensions);
	assert_true(cfg.load_only);
	ps_spec_free(spec);

	spec = parse_ok("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", "
	                "\"target\": {\"url\": \"jsonl:-\", \"schema\": \"bare\", "
	                "\"foreign_keys\": \"none\"}, \"tables\": {\"keyless\": \"refuse\"}}");
	assert_int_equal(spec->target.schema, PS_SCHEMA_BARE);
	assert_int_equal(spec->target.foreign_keys, PS_FK_NONE);
	assert_int_equal(spec->keyless, PS_KEYLESS_REFUSE);
	ps_spec_free(spec);

	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", "
	            "\"target\": {\"url\": \"jsonl:-\", \"schema\": \"everything\"}}",
	            "target.schema: 'everything' is not one of tables, full, bare");
	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", "
	            "\"target\": {\"url\": \"jsonl:-\", \"foreign_keys\": true}}",
	            "target.foreign_keys: expected a string, got boolean");
	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", "
	            "\"target\": {\"url\": \"jsonl:-\", \"create_extensions\": \"yes\"}}",
	            "target.create_extensions: expected true or false, got string");
	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", " DST_OK ", "
	            "\"tables\": {\"keyless\": \"full\"}}",
	            "tables.keyless: 'full' is not one of insert_only, refuse, replica_identity_full");
}

static void test_load_options(void **state)
{
	ps_spec *spec;

	spec = parse_ok("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", " DST_OK "}");
	assert_int_equal(spec->snapshot_parallel, 4);
	assert_int_equal(spec->snapshot_chunk_rows, 250000);
	assert_int_equal(spec->target.create_tables, PS_CREATE_IF_MISSING);
	assert_false(spec->target.truncate_before_load);
	ps_spec_free(spec);

	spec = parse_ok("{\"name\": \"a\", \"type\": \"migration\", " SRC_OK ", "
	                "\"target\": {\"url\": \"sqlite:///tmp/x.db\", \"create_tables\": \"never\", "
	                "\"truncate_before_load\": true}, "
	                "\"snapshot\": {\"parallel\": 8, \"chunk_rows\": 5000}}");
	assert_int_equal(spec->snapshot_parallel, 8);
	assert_int_equal(spec->snapshot_chunk_rows, 5000);
	assert_int_equal(spec->target.create_tables, PS_CREATE_NEVER);
	assert_true(spec->target.truncate_before_load);
	ps_spec_free(spec);

	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", " DST_OK ", "
	            "\"snapshot\": {\"parallel\": 0}}",
	            "snapshot.parallel: 0 is out of range; use 1 to 64");
	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", " DST_OK ", "
	            "\"snapshot\": {\"parallel\": \"4\"}}",
	            "snapshot.parallel: expected an integer, got string");
	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", " DST_OK ", "
	            "\"snapshot\": {\"chunk\": 4}}",
	            "snapshot.chunk: unknown field; known fields are parallel, chunk_rows");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"snapshot\": {\"parallel\": 2}}",
	            "snapshot: a cdc job copies no snapshot; remove this field or use type sync, "
	            "migration or snapshot");
	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", "
	            "\"target\": {\"url\": \"jsonl:-\", \"create_tables\": \"always\"}}",
	            "target.create_tables: 'always' is not one of if_missing, never, drop_and_create");
	parse_fails("{\"name\": \"a\", \"type\": \"sync\", " SRC_OK ", "
	            "\"target\": {\"url\": \"jsonl:-\", \"truncate_before_load\": \"yes\"}}",
	            "target.truncate_before_load: expected true or false, got string");
}

static void test_wrong_types(void **state)
{
	parse_fails("{\"name\": 7, \"type\": \"cdc\", " SRC_OK ", " DST_OK "}",
	            "name: expected a string, got number");
	parse_fails("{\"name\": \"a\", \"type\": true, " SRC_OK ", " DST_OK "}",
	            "type: expected a string, got boolean");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": \"postgresql://h/db\", " DST_OK "}",
	            "source: expected an object, got string");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": null}, " DST_OK "}",
	            "source.url: expected a string, got null");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"tables\": {\"include\": [\"a.b\", \"c.d\", 3]}}",
	            "tables.include[2]: expected a string, got number");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"tables\": {\"include\": \"a.b\"}}",
	            "tables.include: expected an array, got string");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", \"tables\": []}",
	            "tables: expected an object, got array");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", \"resume\": {}}",
	            "resume: expected a string, got object");
	parse_fails("[1, 2]", "top level: expected an object, got array");
	parse_fails("\"x\"", "top level: expected an object, got string");
}

static void test_missing_fields(void **state)
{
	parse_fails("{\"type\": \"cdc\", " SRC_OK ", " DST_OK "}", "name: required field is missing");
	parse_fails("{\"name\": \"a\", " SRC_OK ", " DST_OK "}", "type: required field is missing");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " DST_OK "}", "source: required field is missing");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK "}", "target: required field is missing");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"password_env\": \"X\"}, " DST_OK "}",
	            "source.url: required field is missing");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", \"target\": {}}",
	            "target.url: required field is missing");
}

static void test_bad_values(void **state)
{
	const char *rule = "is not a valid job name; use 1 to 48 characters a-z, 0-9, '_' or '-', "
	                   "starting with a letter or digit";
	char want[512];
	char text[512];

	snprintf(want, sizeof(want), "name: 'Orders' %s", rule);
	parse_fails("{\"name\": \"Orders\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}", want);
	snprintf(want, sizeof(want), "name: '-x' %s", rule);
	parse_fails("{\"name\": \"-x\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}", want);
	snprintf(want, sizeof(want), "name: '' %s", rule);
	parse_fails("{\"name\": \"\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}", want);
	/* 48 characters is the most. */
	snprintf(text, sizeof(text), "{\"name\": \"%048d\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}", 0);
	ps_spec_free(parse_ok(text));
	snprintf(text, sizeof(text), "{\"name\": \"%049d\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}", 0);
	snprintf(want, sizeof(want), "name: '%049d' %s", 0, rule);
	parse_fails(text, want);

	parse_fails("{\"name\": \"a\", \"type\": \"replicate\", " SRC_OK ", " DST_OK "}",
	            "type: 'replicate' is not one of migration, sync, snapshot, cdc");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", \"resume\": \"maybe\"}",
	            "resume: 'maybe' is not one of never, always, if_exists");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"tables\": {\"include\": []}}",
	            "tables.include: must list at least one pattern");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"tables\": {\"include\": [\"public.a\", \"public.b\", \"orders\"]}}",
	            "tables.include[2]: 'orders' is not schema.table; write public.orders or public.*");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"tables\": {\"exclude\": [\"audit\"]}}",
	            "tables.exclude[0]: 'audit' is not schema.table; write public.audit or public.*");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": \"postgresql://h/db\", "
	            "\"slot\": \"Bad-Slot\"}, " DST_OK "}",
	            "source.slot: 'Bad-Slot' is not valid; use 1 to 63 characters a-z, 0-9 or '_'");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": \"postgresql://h/db\", "
	            "\"publication\": \"\"}, " DST_OK "}",
	            "source.publication: '' is not valid; use 1 to 63 characters a-z, 0-9 or '_'");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": \"postgresql://h/db\", "
	            "\"password_env\": \"1BAD\"}, " DST_OK "}",
	            "source.password_env: must be the name of an environment variable "
	            "(letters, digits and '_', not starting with a digit)");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", \"target\": {\"url\": \"ftp://x\"}}",
	            "target.url: unknown URL scheme 'ftp'; use postgresql://, mysql://, sqlite:///, "
	            "jsonl:// or kafka://");
}

static void test_endpoint_rules(void **state)
{
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": \"postgresql://h/db\", "
	            "\"password_env\": \"A\", \"password_file\": \"/f\"}, " DST_OK "}",
	            "source: set password_env or password_file, not both");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", \"target\": {\"url\": \"jsonl:-\", "
	            "\"password_env\": \"A\", \"password_file\": \"/f\"}}",
	            "target: set password_env or password_file, not both");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": "
	            "\"kafka://k:9092/?topic_prefix=p\"}, " DST_OK "}",
	            "source.url: kafka sources are not supported by this build yet; supported: "
	            "postgresql, mysql");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": \"jsonl:-\"}, " DST_OK "}",
	            "source.url: jsonl cannot be a source; supported: postgresql, mysql");
	parse_fails_without("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": "
	                    "\"postgresql://repl:Hunter2Pw@h/db\"}, " DST_OK "}",
	                    ORIGIN ": source.url: put the password in password_env or password_file, "
	                    "not in the URL", "Hunter2Pw");
	parse_fails_without("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", \"target\": {\"url\": "
	                    "\"postgresql://h/db?password=Hunter2Pw\"}}",
	                    ORIGIN ": target.url: put the password", "Hunter2Pw");
}

static void test_json_syntax(void **state)
{
	ps_spec *spec = NULL;
	ps_error err;
	const char *bad = "{\n  \"name\": \"a\",\n  \"type\" \"cdc\"\n}";
	const char *dup = "{\"name\": \"a\",\n \"name\": \"b\"}";

	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&spec, bad, strlen(bad), ORIGIN, &err), PS_EINVAL);
	assert_null(spec);
	if (strncmp(err.message, ORIGIN ":3:", strlen(ORIGIN ":3:")) != 0)
		fail_msg("no line:column in '%s'", err.message);
	assert_string_equal(err.message, ORIGIN ":3:14: ':' expected near '\"cdc\"'");

	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&spec, dup, strlen(dup), ORIGIN, &err), PS_EINVAL);
	assert_null(spec);
	if (strncmp(err.message, ORIGIN ":2:", strlen(ORIGIN ":2:")) != 0 ||
	    !strstr(err.message, "duplicate object key"))
		fail_msg("duplicate key not reported: '%s'", err.message);

	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&spec, "", 0, ORIGIN, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, ORIGIN ":"));

	/* The length is honoured: a valid document cut short is an error. */
	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&spec, "{\"name\": \"a\"}", 5, ORIGIN, &err), PS_EINVAL);
	assert_int_equal(ps_spec_parse(NULL, "{}", 2, ORIGIN, &err), PS_EINVAL);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/penstock-test-spec-XXXXXX";
	char path[256];
	ps_spec *spec = NULL;
	ps_error err;
	const char *text = "{\"name\": \"filejob\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}";
	char *big;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/spec.json", dir);

	ps_error_clear(&err);
	assert_int_not_equal(ps_spec_load_file(&spec, path, &err), 0);
	assert_null(spec);
	{
		char want[512];

		snprintf(want, sizeof(want), "cannot read spec '%s': No such file or directory", path);
		assert_string_equal(err.message, want);
	}

	write_file(path, text, strlen(text));
	assert_int_equal(ps_spec_load_file(&spec, path, &err), 0);
	assert_string_equal(spec->name, "filejob");
	ps_spec_free(spec);
	spec = NULL;

	/* Errors in a loaded file name the file. */
	write_file(path, "{\"name\": 1}", 11);
	assert_int_equal(ps_spec_load_file(&spec, path, &err), PS_EINVAL);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s: name: expected a string, got number", path);
		assert_string_equal(err.message, want);
	}

	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, ' ', 1024 * 1024 + 1);
	big[0] = '{';
	write_file(path, big, 1024 * 1024 + 1);
	free(big);
	assert_int_equal(ps_spec_load_file(&spec, path, &err), PS_EINVAL);
	assert_null(spec);
	assert_non_null(strstr(err.message, "larger than 1 MiB"));

	/* A directory cannot be read as a spec. */
	assert_int_not_equal(ps_spec_load_file(&spec, dir, &err), 0);
	assert_null(spec);
	assert_non_null(strstr(err.message, "cannot read spec"));

	unlink(path);
	rmdir(dir);
}

static void test_password_env(void **state)
{
	ps_spec *spec = parse_ok("{\"name\": \"a\", \"type\": \"cdc\", \"source\": {\"url\": "
	                         "\"postgresql://h/db\", \"password_env\": \"PS_TEST_SRC_PW\"}, "
	                         DST_OK "}");
	ps_error err;
	char *pw = (char *)0x1;

	unsetenv("PS_TEST_SRC_PW");
	ps_error_clear(&err);
	assert_int_equal(ps_spec_password(&spec->source, "source", &pw, &err), PS_EINVAL);
	assert_null(pw);
	assert_string_equal(err.message,
	                    "source.password_env: environment variable PS_TEST_SRC_PW is not set");

	setenv("PS_TEST_SRC_PW", "Env$ecret9", 1);
	assert_int_equal(ps_spec_password(&spec->source, "source", &pw, &err), 0);
	assert_string_equal(pw, "Env$ecret9");
	free(pw);

	setenv("PS_TEST_SRC_PW", "", 1);
	assert_int_equal(ps_spec_password(&spec->source, "source", &pw, &err), PS_EINVAL);
	assert_null(pw);
	assert_non_null(strstr(err.message, "is empty"));
	unsetenv("PS_TEST_SRC_PW");

	/* Neither set: NULL, no error. */
	pw = (char *)0x1;
	assert_int_equal(ps_spec_password(&spec->target, "target", &pw, &err), 0);
	assert_null(pw);
	ps_spec_free(spec);
}

static void test_password_file(void **state)
{
	char dir[] = "/tmp/penstock-test-pw-XXXXXX";
	char path[256];
	char text[512];
	ps_spec *spec;
	ps_error err;
	char *pw = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pw", dir);
	snprintf(text, sizeof(text), "{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", "
	         "\"target\": {\"url\": \"postgresql://h/db\", \"password_file\": \"%s\"}}", path);
	spec = parse_ok(text);

	ps_error_clear(&err);
	assert_int_equal(ps_spec_password(&spec->target, "target", &pw, &err), PS_EINVAL);
	assert_null(pw);
	{
		char want[512];

		snprintf(want, sizeof(want), "target.password_file: cannot read '%s': "
		         "No such file or directory", path);
		assert_string_equal(err.message, want);
	}

	write_file(path, "F1leSecret\r\nsecond line\n", 24);
	assert_int_equal(ps_spec_password(&spec->target, "target", &pw, &err), 0);
	assert_string_equal(pw, "F1leSecret");
	free(pw);

	write_file(path, "F1leSecret\n", 11);
	assert_int_equal(ps_spec_password(&spec->target, "target", &pw, &err), 0);
	assert_string_equal(pw, "F1leSecret");
	free(pw);

	write_file(path, "F1leSecret", 10);
	assert_int_equal(ps_spec_password(&spec->target, "target", &pw, &err), 0);
	assert_string_equal(pw, "F1leSecret");
	free(pw);

	write_file(path, "\nF1leSecret\n", 12);
	assert_int_equal(ps_spec_password(&spec->target, "target", &pw, &err), PS_EINVAL);
	assert_null(pw);
	assert_non_null(strstr(err.message, "is empty"));
	assert_null(strstr(err.message, "F1leSecret"));

	write_file(path, "F1le\0Secret\n", 12);
	assert_int_equal(ps_spec_password(&spec->target, "target", &pw, &err), PS_EINVAL);
	assert_null(pw);
	assert_non_null(strstr(err.message, "NUL"));
	assert_null(strstr(err.message, "F1le"));

	unlink(path);
	rmdir(dir);
	ps_spec_free(spec);
}

static void test_names(void **state)
{
	assert_string_equal(ps_job_type_name(PS_JOB_MIGRATION), "migration");
	assert_string_equal(ps_job_type_name(PS_JOB_SYNC), "sync");
	assert_string_equal(ps_job_type_name(PS_JOB_SNAPSHOT), "snapshot");
	assert_string_equal(ps_job_type_name(PS_JOB_CDC), "cdc");
	assert_string_equal(ps_job_type_name(0), "unknown");
	assert_string_equal(ps_resume_policy_name(PS_RESUME_NEVER), "never");
	assert_string_equal(ps_resume_policy_name(PS_RESUME_ALWAYS), "always");
	assert_string_equal(ps_resume_policy_name(PS_RESUME_IF_EXISTS), "if_exists");
	assert_string_equal(ps_resume_policy_name(99), "unknown");
}

/* webhook: the names of the server's variables, never values; errors name
 * the field. */
static void test_webhook_options(void **state)
{
	ps_spec *spec;

	(void)state;
	spec = parse_ok("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}");
	assert_null(spec->webhook_url_env);
	assert_null(spec->webhook_secret_env);
	ps_spec_free(spec);

	spec = parse_ok("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	                "\"webhook\": {\"url_env\": \"HOOK_URL\", \"secret_env\": \"HOOK_SECRET\"}}");
	assert_string_equal(spec->webhook_url_env, "HOOK_URL");
	assert_string_equal(spec->webhook_secret_env, "HOOK_SECRET");
	ps_spec_free(spec);

	spec = parse_ok("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	                "\"webhook\": {\"url_env\": \"HOOK_URL\"}}");
	assert_null(spec->webhook_secret_env);
	ps_spec_free(spec);

	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"webhook\": {\"secret_env\": \"S\"}}",
	            "webhook.url_env: required field is missing");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"webhook\": {\"url\": \"https://hooks.example/x\"}}",
	            "webhook.url: unknown field; known fields are url_env, secret_env");
	/* a URL pasted where the variable's name goes is not echoed */
	parse_fails_without("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	                    "\"webhook\": {\"url_env\": \"https://hooks.example/T0K3N\"}}",
	                    "webhook.url_env: must be the name of an environment variable",
	                    "T0K3N");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"webhook\": {\"url_env\": \"U\", \"secret_env\": 7}}",
	            "webhook.secret_env: expected a string, got number");
}

/* retry: defaults, a full section, and every error naming its field. */
static void test_retry_options(void **state)
{
	ps_spec *spec;

	(void)state;
	spec = parse_ok("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK "}");
	assert_int_equal(spec->retry_initial_backoff_ms, 1000);
	assert_int_equal(spec->retry_max_backoff_ms, 60000);
	assert_int_equal(spec->retry_max_attempts, 0);
	ps_spec_free(spec);

	spec = parse_ok("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	                "\"retry\": {\"initial_backoff_ms\": 200, \"max_backoff_ms\": 200, "
	                "\"max_attempts\": 3}}");
	assert_int_equal(spec->retry_initial_backoff_ms, 200);
	assert_int_equal(spec->retry_max_backoff_ms, 200);
	assert_int_equal(spec->retry_max_attempts, 3);
	ps_spec_free(spec);

	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", \"retry\": 5}",
	            "retry: expected an object, got number");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"retry\": {\"attempts\": 3}}",
	            "retry.attempts: unknown field; known fields are initial_backoff_ms, "
	            "max_backoff_ms, max_attempts");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"retry\": {\"initial_backoff_ms\": 0}}",
	            "retry.initial_backoff_ms: 0 is out of range; use 10 to 3600000");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"retry\": {\"max_attempts\": -1}}",
	            "retry.max_attempts: -1 is out of range; use 0 to 1000000");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"retry\": {\"max_backoff_ms\": \"60s\"}}",
	            "retry.max_backoff_ms: expected an integer, got string");
	parse_fails("{\"name\": \"a\", \"type\": \"cdc\", " SRC_OK ", " DST_OK ", "
	            "\"retry\": {\"initial_backoff_ms\": 5000, \"max_backoff_ms\": 1000}}",
	            "retry.max_backoff_ms: 1000 is below retry.initial_backoff_ms (5000)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_spec),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_target_schemes),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_endpoint_rules),
		cmocka_unit_test(test_json_syntax),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_password_env),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_load_options),
		cmocka_unit_test(test_schema_options),
		cmocka_unit_test(test_retry_options),
		cmocka_unit_test(test_webhook_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
