/*
 * test_backfill.c — unit tests for live table changes, without servers:
 *
 *   live        core/pipeline.c ps_live_update: the table patterns' generation
 *               moves only when the patterns change; limits follow the spec.
 *   resume      core/backfill.c ps_backfill_tables_only: which checkpoints a
 *               job whose tables changed may resume.
 *   routing     ps_backfill_begin + ps_backfill_route_change: after the tables
 *               changed while the job was stopped, changes of tables no
 *               longer selected are skipped, the others applied; markers are
 *               recognised and foreign ones ignored; the checkpoint's
 *               identity and spec follow the tables in force.
 *   by name     the tables in force are known by name (issue 15): a table
 *               that came into the selection while the job was stopped is
 *               prepared and backfilled, one that left it and one the
 *               source shows under a new name are not applied, table
 *               changes reach the sink only for tables in force.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backfill.h"
#include "core/checkpoint.h"
#include "core/pipeline.h"
#include "core/spec.h"

static ps_spec *spec_with(const char *type, const char *tables)
{
	char doc[1024];
	ps_spec *s = NULL;
	ps_error err;

	snprintf(doc, sizeof(doc),
	         "{\"name\": \"j\", \"type\": \"%s\", \"source\": {\"url\": \"postgresql://h/db\"}, "
	         "\"target\": {\"url\": \"postgresql://t/db\"}, \"tables\": %s}", type, tables);
	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&s, doc, strlen(doc), "spec", &err), PS_OK);
	return s;
}

static void test_live_generation(void **state)
{
	ps_spec *a = spec_with("sync", "{\"include\": [\"public.a\"]}");
	ps_spec *b = spec_with("sync", "{\"include\": [\"public.a\", \"public.b\"]}");
	ps_live live;
	unsigned gen;

	(void)state;
	a->limit_rows_per_sec = 10;
	ps_live_init(&live, a);
	gen = live.tables_gen;
	assert_int_equal(atomic_load(&live.limits.rows_per_sec), 10);
	ps_live_update(&live, a);            /* the same patterns: no change asked for */
	assert_int_equal(live.tables_gen, gen);
	ps_live_update(&live, b);
	assert_int_equal(live.tables_gen, gen + 1);
	assert_int_equal(live.ninclude, 2);
	assert_string_equal(live.include[1], "public.b");
	assert_int_equal(atomic_load(&live.limits.rows_per_sec), 0);
	ps_live_destroy(&live);
	ps_spec_free(a);
	ps_spec_free(b);
}

static void test_tables_only(void **state)
{
	ps_spec *a = spec_with("sync", "{\"include\": [\"public.a\"]}");
	ps_spec *b = spec_with("sync", "{\"include\": [\"public.*\"], \"exclude\": [\"public.x\"]}");
	ps_checkpoint ck;
	ps_identity id;

	(void)state;
	memset(&ck, 0, sizeof(ck));
	ps_identity_from_spec(&ck.identity, a);
	ps_identity_from_spec(&id, b);
	ck.cdc_state = PS_CDC_TFEND;
	assert_false(ps_backfill_tables_only(&ck, &id));   /* no spec: tables in force unknown */
	ck.spec_json = strdup("{\"tables\": {\"include\": [\"public.a\"], \"exclude\": []}}");
	assert_true(ps_backfill_tables_only(&ck, &id));
	ck.cdc_state = PS_CDC_ILSTART;                       /* the load is not behind it */
	assert_false(ps_backfill_tables_only(&ck, &id));
	ck.cdc_state = PS_CDC_TFSTART;
	snprintf(ck.identity.source, sizeof(ck.identity.source), "postgresql://other:5432/db");
	assert_false(ps_backfill_tables_only(&ck, &id));    /* another source: never */
	ps_checkpoint_free(&ck);
	ps_spec_free(a);
	ps_spec_free(b);
}

static ps_change *change_of(ps_table *t)
{
	ps_value v[1] = {{PS_VALUE_TEXT, 1, "1"}};

	return ps_change_new(PS_OP_INSERT, t, v, NULL, false, 0);
}

static ps_table *table(const char *schema, const char *name)
{
	ps_table *t = ps_table_new(1, 1);

	assert_non_null(t);
	assert_int_equal(ps_table_set_names(t, schema, name), PS_OK);
	assert_int_equal(ps_table_set_column(t, 0, "id", 23, -1, PS_TYPE_INTEGER, true), PS_OK);
	return t;
}

static void test_routing_after_a_change_at_start(void **state)
{
	ps_spec *spec = spec_with("cdc", "{\"include\": [\"public.a\"]}");
	ps_checkpoint ck;
	ps_identity id;
	ps_live live;
	ps_ratelimit rl;
	atomic_int stop;
	ps_backfill *bf = NULL;
	ps_backfill_config cfg;
	ps_table *a = table("public", "a"), *b = table("public", "b");
	ps_change *ca = change_of(a), *cb = change_of(b), *m;
	ps_txn txn;
	ps_error err;

	(void)state;
	memset(&ck, 0, sizeof(ck));
	memset(&txn, 0, sizeof(txn));
	ps_live_init(&live, spec);
	ps_ratelimit_init(&rl);
	atomic_init(&stop, 0);
	ps_error_clear(&err);
	memset(&cfg, 0, sizeof(cfg));
	cfg.spec = spec;
	cfg.live = &live;
	cfg.ck = &ck;
	cfg.identity = &id;
	cfg.rl = &rl;
	cfg.stop = &stop;
	assert_int_equal(ps_backfill_new(&bf, &cfg, &err), PS_OK);

	/* the checkpoint was written while public.a and public.b were selected */
	assert_int_equal(ps_backfill_begin(bf, "{\"tables\": {\"include\": [\"public.a\", "
	                                       "\"public.b\"], \"exclude\": []}}", true, &err), PS_OK);
	assert_int_equal(ps_backfill_route_change(bf, ca), PS_BF_APPLY);
	assert_int_equal(ps_backfill_route_change(bf, cb), PS_BF_SKIP);
	assert_int_equal(ps_backfill_route_change(bf, ca), PS_BF_APPLY);
	/* the checkpoint follows the tables in force */
	assert_string_equal(ck.identity.tables, "include=public.a;exclude=");
	assert_string_equal(ck.identity.fingerprint, id.fingerprint);
	assert_non_null(strstr(ck.spec_json, "\"include\":[\"public.a\"]"));
	assert_null(strstr(ck.spec_json, "backfill"));

	/* markers: never for the sink; another job's or run's are ignored */
	m = ps_change_new_message(true, PS_MARK_PREFIX, "tables other_slot abc 1", 23, 0);
	assert_true(ps_backfill_is_mark(m));
	assert_int_equal(ps_backfill_on_mark(bf, &txn, m, &err), PS_OK);
	ps_change_free(m);
	m = ps_change_new_message(true, "app.prefix", "x", 1, 0);
	assert_false(ps_backfill_is_mark(m));
	ps_change_free(m);
	m = ps_change_new_message(true, PS_MARK_PREFIX, "garbage", 7, 0);
	assert_int_equal(ps_backfill_on_mark(bf, &txn, m, &err), PS_OK);
	ps_change_free(m);

	ps_backfill_free(bf);
	ps_change_free(ca);
	ps_change_free(cb);
	ps_table_unref(a);
	ps_table_unref(b);
	ps_checkpoint_free(&ck);
	ps_ratelimit_destroy(&rl);
	ps_live_destroy(&live);
	ps_spec_free(spec);
}

static void test_fresh_start_changes_nothing(void **state)
{
	ps_spec *spec = spec_with("sync", "{\"include\": [\"public.*\"]}");
	ps_checkpoint ck;
	ps_identity id;
	ps_live live;
	ps_backfill *bf = NULL;
	ps_backfill_config cfg;
	ps_table *b = table("other", "b");
	ps_change *cb = change_of(b);
	ps_error err;

	(void)state;
	memset(&ck, 0, sizeof(ck));
	ps_live_init(&live, spec);
	ps_error_clear(&err);
	memset(&cfg, 0, sizeof(cfg));
	cfg.spec = spec;
	cfg.live = &live;
	cfg.ck = &ck;
	cfg.identity = &id;
	assert_int_equal(ps_backfill_new(&bf, &cfg, &err), PS_OK);
	assert_int_equal(ps_backfill_begin(bf, NULL, false, &err), PS_OK);
	/* no table change in this run: nothing is filtered, even a table the
	 * patterns do not name (the source decides what it delivers) */
	assert_int_equal(ps_backfill_route_change(bf, cb), PS_BF_APPLY);
	assert_int_equal(atomic_load(&live.busy), 0);
	ps_backfill_free(bf);
	ps_change_free(cb);
	ps_table_unref(b);
	ps_checkpoint_free(&ck);
	ps_live_destroy(&live);
	ps_spec_free(spec);
}

/* --- the tables in force by name (issue 15) ------------------------------ */

/* A source that selects public.a and public.b2 (b renamed to b2 while the
 * job was stopped), each with a primary key on id. */
static int fake_describe(ps_source *src, ps_table_def ***defs, size_t *n, ps_error *err)
{
	static const char *const names[] = {"a", "b2"};

	(void)src;
	(void)err;
	*defs = calloc(2, sizeof(ps_table_def *));
	for (int i = 0; i < 2; i++) {
		ps_table_def *d = calloc(1, sizeof(*d));
		d->table = table("public", names[i]);
		d->table->columns[0].is_key = true;
		d->engine = strdup("postgresql");
		d->columns = calloc(1, sizeof(ps_column_def));
		d->columns[0].sql_type = strdup("integer");
		d->columns[0].ordinal = 1;
		d->constraints = calloc(1, sizeof(ps_constraint_def));
		d->nconstraints = 1;
		d->constraints[0].kind = PS_CONSTRAINT_PRIMARY;
		d->constraints[0].name = strdup("pk");
		d->constraints[0].cols = calloc(1, sizeof(int));
		d->constraints[0].ncols = 1;
		d->has_primary_key = true;
		(*defs)[i] = d;
	}
	*n = 2;
	return PS_OK;
}

static const ps_source_ops fake_src_ops = {.name = "fake", .describe = fake_describe};

static int prepared, followed;

static int fake_prepare(ps_sink *k, const ps_table_def *def, const ps_table_options *opt,
                        bool *created, ps_error *err)
{
	(void)k;
	(void)err;
	assert_string_equal(def->table->name, "b2");
	assert_true(opt->rejoin);          /* it joins a running job */
	*created = false;
	prepared++;
	return PS_OK;
}

static int fake_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                             const ps_table_options *opt, bool *backfill, ps_error *err)
{
	(void)k;
	(void)txn;
	(void)tc;
	(void)opt;
	(void)err;
	*backfill = false;
	followed++;
	return PS_OK;
}

static const ps_sink_ops fake_sink_ops = {.name = "fake", .table_prepare = fake_prepare,
                                          .table_change = fake_table_change};

static void test_tables_in_force_by_name(void **state)
{
	ps_spec *spec = spec_with("cdc", "{\"include\": [\"public.*\"]}");
	ps_checkpoint ck;
	ps_identity id;
	ps_live live;
	ps_ratelimit rl;
	atomic_int stop;
	ps_backfill *bf = NULL;
	ps_backfill_config cfg;
	ps_src src = {.ops = &fake_src_ops};
	ps_snk snk = {.ops = &fake_sink_ops};
	ps_table *a = table("public", "a"), *b = table("public", "b"), *b2 = table("public", "b2");
	ps_table *c = table("public", "c");
	ps_change *ca = change_of(a), *cb = change_of(b), *cb2 = change_of(b2), *cc = change_of(c);
	ps_table_change tc = {.table = c};
	ps_txn txn;
	ps_error err;

	(void)state;
	memset(&ck, 0, sizeof(ck));
	memset(&txn, 0, sizeof(txn));
	ps_live_init(&live, spec);
	ps_ratelimit_init(&rl);
	atomic_init(&stop, 0);
	ps_error_clear(&err);
	memset(&cfg, 0, sizeof(cfg));
	cfg.spec = spec;
	cfg.src = &src;
	cfg.snk = &snk;
	cfg.live = &live;
	cfg.ck = &ck;
	cfg.identity = &id;
	cfg.rl = &rl;
	cfg.stop = &stop;
	prepared = followed = 0;
	assert_int_equal(ps_backfill_new(&bf, &cfg, &err), PS_OK);
	/* the checkpoint had public.a and public.b in force, with the same
	 * patterns: b2 came into the selection by itself, b left it */
	assert_int_equal(ps_backfill_begin(bf, "{\"tables\": {\"include\": [\"public.*\"], "
	                                       "\"exclude\": []}, \"tables_in_force\": "
	                                       "[\"public.a\", \"public.b\"]}", true, &err), PS_OK);
	assert_int_equal(prepared, 1);     /* b2, even in a cdc job: backfilled */
	assert_int_equal(ps_backfill_route_change(bf, ca), PS_BF_APPLY);
	assert_int_equal(ps_backfill_route_change(bf, cb), PS_BF_SKIP);
	assert_int_equal(ps_backfill_route_change(bf, cb2), PS_BF_REDO);
	/* a table the patterns select but that is not in force (a rename the
	 * source has not reported yet): not applied */
	assert_int_equal(ps_backfill_route_change(bf, cc), PS_BF_SKIP);
	assert_non_null(strstr(ck.spec_json, "\"tables_in_force\":[\"public.a\",\"public.b2\"]"));
	assert_non_null(strstr(ck.spec_json, "\"backfill\":[{"));
	/* a table change reaches the sink only for a table in force */
	assert_int_equal(ps_backfill_on_table(bf, &txn, &tc, &err), PS_OK);
	assert_int_equal(followed, 0);
	tc.table = a;
	assert_int_equal(ps_backfill_on_table(bf, &txn, &tc, &err), PS_OK);
	assert_int_equal(followed, 1);

	ps_backfill_free(bf);
	ps_change_free(ca);
	ps_change_free(cb);
	ps_change_free(cb2);
	ps_change_free(cc);
	ps_table_unref(a);
	ps_table_unref(b);
	ps_table_unref(b2);
	ps_table_unref(c);
	ps_checkpoint_free(&ck);
	ps_ratelimit_destroy(&rl);
	ps_live_destroy(&live);
	ps_spec_free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_generation),
		cmocka_unit_test(test_tables_only),
		cmocka_unit_test(test_routing_after_a_change_at_start),
		cmocka_unit_test(test_fresh_start_changes_nothing),
		cmocka_unit_test(test_tables_in_force_by_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
