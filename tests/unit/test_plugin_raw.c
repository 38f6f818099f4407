/*
 * test_plugin_raw.c — the plugin checks and wrappers of the raw initial-load
 * path (source.h copy_raw_format/copy_unit_raw, sink.h load_raw_*): a
 * group is all there or not at all, and the wrappers of a plugin without it
 * say so instead of calling NULL. No server needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/plugin.h"

extern const ps_source_ops ps_source_pg;
extern const ps_sink_ops ps_sink_pg;
extern const ps_sink_ops ps_sink_jsonl;
extern const ps_sink_ops ps_sink_sqlite;

static void test_pg_plugins_offer_the_raw_path(void **state)
{
	ps_src src = {.ops = &ps_source_pg};
	ps_snk pg = {.ops = &ps_sink_pg};
	ps_snk jsonl = {.ops = &ps_sink_jsonl};
	ps_snk sqlite = {.ops = &ps_sink_sqlite};
	ps_error err;

	(void)state;
	ps_error_clear(&err);
	assert_int_equal(ps_plugin_check_source(&ps_source_pg, &err), PS_OK);
	assert_int_equal(ps_plugin_check_sink(&ps_sink_pg, &err), PS_OK);
	assert_true(ps_src_can_copy_raw(&src));
	assert_true(ps_snk_can_load_raw(&pg));
	/* the sinks that need parsed rows keep the row path */
	assert_false(ps_snk_can_load_raw(&jsonl));
	assert_false(ps_snk_can_load_raw(&sqlite));
}

static void test_source_raw_pair_is_all_or_nothing(void **state)
{
	ps_source_ops ops;
	ps_error err;

	(void)state;
	ops = ps_source_pg;
	ops.copy_unit_raw = NULL;
	ps_error_clear(&err);
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "raw initial-load pair"));

	ops = ps_source_pg;
	ops.copy_raw_format = NULL;
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_EINVAL);

	/* the raw pair needs the load group it belongs to */
	ops = ps_source_pg;
	ops.describe = NULL;
	ops.split = NULL;
	ops.snapshot_export = NULL;
	ops.snapshot_release = NULL;
	ops.copy_open = NULL;
	ops.copy_unit = NULL;
	ops.copy_close = NULL;
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "with describe"));

	/* neither is fine */
	ops = ps_source_pg;
	ops.copy_raw_format = NULL;
	ops.copy_unit_raw = NULL;
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_OK);
}

static void test_sink_raw_group_is_all_or_nothing(void **state)
{
	ps_sink_ops ops;
	ps_error err;

	(void)state;
	for (int i = 0; i < 4; i++) {
		ops = ps_sink_pg;
		switch (i) {
		case 0: ops.load_raw_accepts = NULL; break;
		case 1: ops.load_raw_begin = NULL; break;
		case 2: ops.load_raw_write = NULL; break;
		default: ops.load_raw_end = NULL; break;
		}
		ps_error_clear(&err);
		assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
		assert_non_null(strstr(err.message, "load_raw_accepts/_begin/_write/_end"));
	}
	ops = ps_sink_pg;
	ops.load_raw_accepts = NULL;
	ops.load_raw_begin = NULL;
	ops.load_raw_write = NULL;
	ops.load_raw_end = NULL;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_OK);
}

static void test_wrappers_without_the_raw_path_say_why(void **state)
{
	ps_source_ops sops = ps_source_pg;
	ps_src src;
	ps_snk jsonl = {.ops = &ps_sink_jsonl};
	ps_table *t = ps_table_new(1, 0);
	ps_table_def def;
	char format[64] = "junk", why[128] = "junk";
	bool accepted = true;
	ps_error err;

	(void)state;
	assert_non_null(t);
	assert_int_equal(ps_table_set_names(t, "public", "t"), PS_OK);
	memset(&def, 0, sizeof(def));
	def.table = t;
	sops.copy_raw_format = NULL;
	sops.copy_unit_raw = NULL;
	memset(&src, 0, sizeof(src));
	src.ops = &sops;
	ps_error_clear(&err);
	assert_int_equal(ps_src_copy_raw_format(&src, NULL, &def, format, sizeof(format), why,
	                                        sizeof(why), &err), PS_OK);
	assert_string_equal(format, "");
	assert_string_equal(why, "source pg has no raw copy");
	assert_int_equal(ps_snk_load_raw_accepts(&jsonl, &def, "postgresql-binary-copy/15",
	                                         &accepted, why, sizeof(why), &err), PS_OK);
	assert_false(accepted);
	assert_string_equal(why, "target jsonl has no raw load");
	ps_table_unref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pg_plugins_offer_the_raw_path),
		cmocka_unit_test(test_source_raw_pair_is_all_or_nothing),
		cmocka_unit_test(test_sink_raw_group_is_all_or_nothing),
		cmocka_unit_test(test_wrappers_without_the_raw_path_say_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
