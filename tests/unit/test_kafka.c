/*
 * test_kafka.c — the Kafka target without a broker:
 *
 *   decimals      Debezium's precise decimals are Java's BigInteger bytes
 *   events        key, value and flattened value, with and without schemas,
 *                 in Debezium's spellings; no key with REPLICA IDENTITY FULL
 *   records       the sink over the in-memory log: topics, partitions
 *                 (murmur2 of the key), tombstones, key changes, truncates,
 *                 transaction metadata, the checkpoint read back
 *   table change  a column added: the first event after the change carries
 *                 it, in its value and in the value's schema, the events
 *                 before do not; the core is asked for the rows again when
 *                 consumers cannot know their new values; what consumers
 *                 were told survives in the sink's engine state
 *   net changes   changes: "net" over a held processing range: nothing is
 *                 produced before the range's end, then one event per key
 *                 (insert + update = its final insert, insert + delete =
 *                 nothing, update + delete = a delete and its tombstone),
 *                 each with the range, then the checkpoint, one Kafka
 *                 transaction; a run without a bound: one span per
 *                 checkpoint, the next from where the last ended; the
 *                 options refused as JSON lines refuses them
 *   split         split: "operation": a topic per operation whose records,
 *                 together, are the unsplit stream's, tombstones after
 *                 their delete
 *   mysql source  a MySQL-origin event carries Debezium's MySQL source block
 *   errors        each error kind: retriable commits retried, abortable ones
 *                 aborted, fatal and fenced ones ending the producer with
 *                 the right class and words
 *   exactly once  the whole pipeline (an in-memory source, the real core,
 *                 the real sink) over an in-memory Kafka with real
 *                 read_committed semantics, stopped at every fault point and
 *                 as by kill -9 at many moments: after the restarts every
 *                 change is in the topics exactly once. The same runs over
 *                 a store that shows aborted records (librdkafka 2.0.2's
 *                 mock) prove the rule the integration tests read the mock
 *                 by: drop the records of batches whose checkpoint record
 *                 is not there, and every change is there exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/errclass.h"
#include "core/fault.h"
#include "core/pipeline.h"
#include "core/plugin.h"
#include "core/spec.h"
#include "sink/envelope.h"
#include "sink/envelope_internal.h"
#include "sink/kafka/kafka_memlog.h"
#include "util/log.h"

extern const ps_sink_ops ps_sink_kafka;
extern const ps_url_syntax ps_kafka_url_syntax[];

#define PG_INT4 23
#define PG_TEXT 25
#define PG_NUMERIC 1700
#define PG_DATE 1082
#define PG_TIMESTAMPTZ 1184
#define PG_BYTEA 17

/* --- helpers ---------------------------------------------------------------- */

static ps_value text(const char *s)
{
	ps_value v = {PS_VALUE_TEXT, (uint32_t)strlen(s), s};
	return v;
}

static ps_value null_value(void)
{
	ps_value v = {PS_VALUE_NULL, 0, NULL};
	return v;
}

/* public.t (id int4 key, v text, n numeric(10,2), d date, ts timestamptz, b bytea) */
static ps_table *zoo_table(char identity)
{
	ps_table *t = ps_table_new(1, 6);

	assert_non_null(t);
	t->engine = "postgresql";
	t->replica_identity = identity;
	assert_int_equal(ps_table_set_names(t, "public", "t"), 0);
	assert_int_equal(ps_table_set_column(t, 0, "id", PG_INT4, -1, PS_TYPE_INTEGER, true), 0);
	assert_int_equal(ps_table_set_column(t, 1, "v", PG_TEXT, -1, PS_TYPE_TEXT, false), 0);
	assert_int_equal(ps_table_set_column(t, 2, "n", PG_NUMERIC, ((10 << 16) | 2) + 4,
	                                     PS_TYPE_NUMERIC, false), 0);
	assert_int_equal(ps_table_set_column(t, 3, "d", PG_DATE, -1, PS_TYPE_TEXT, false), 0);
	assert_int_equal(ps_table_set_column(t, 4, "ts", PG_TIMESTAMPTZ, -1, PS_TYPE_TEXT, false), 0);
	assert_int_equal(ps_table_set_column(t, 5, "b", PG_BYTEA, -1, PS_TYPE_BYTES, false), 0);
	return t;
}

static ps_change *zoo_change(ps_table *t, char op, int id, const char *v, int old_id)
{
	char idtext[16], oldtext[16];
	ps_value nv[6], ov[6];
	ps_change *c;

	snprintf(idtext, sizeof(idtext), "%d", id);
	snprintf(oldtext, sizeof(oldtext), "%d", old_id);
	nv[0] = text(idtext);
	nv[1] = v ? text(v) : null_value();
	nv[2] = text("1.50");
	nv[3] = text("2024-01-02");
	nv[4] = text("2024-01-02 10:00:00.5+00");
	nv[5] = text("\\x00ff");
	for (int i = 0; i < 6; i++)
		ov[i] = null_value();
	ov[0] = text(oldtext);
	c = ps_change_new((uint8_t)op, t, op == 'd' ? NULL : nv, old_id ? ov : NULL, true, 1000 + id);
	assert_non_null(c);
	return c;
}

static json_t *parse(const ps_buf *b)
{
	json_error_t jerr;
	json_t *j = json_loadb(b->data, b->len, 0, &jerr);

	if (!j)
		fail_msg("not JSON (%s): %.*s", jerr.text, (int)b->len, b->data);
	return j;
}

/* --- decimals ------------------------------------------------------------------ */

static void check_bytes(const char *text_value, int scale, bool own, const char *hex, int want_scale)
{
	unsigned char *b = NULL;
	size_t n = 0;
	int used = -99;
	char got[128] = "";

	assert_int_equal(ps__decimal_unscaled_bytes(text_value, strlen(text_value), scale, own, &b, &n,
	                                            &used), PS_OK);
	for (size_t i = 0; i < n; i++)
		snprintf(got + 2 * i, sizeof(got) - 2 * i, "%02x", b[i]);
	free(b);
	if (strcmp(got, hex) != 0)
		fail_msg("%s at scale %d: got %s, want %s", text_value, scale, got, hex);
	assert_int_equal(used, want_scale);
}

static void test_decimal_bytes(void **state)
{
	unsigned char *b = NULL;
	size_t n;
	int used;

	(void)state;
	/* Java: new BigInteger(s).toByteArray() */
	check_bytes("0", 0, false, "00", 0);
	check_bytes("1", 0, false, "01", 0);
	check_bytes("127", 0, false, "7f", 0);
	check_bytes("128", 0, false, "0080", 0);
	check_bytes("255", 0, false, "00ff", 0);
	check_bytes("-1", 0, false, "ff", 0);
	check_bytes("-128", 0, false, "80", 0);
	check_bytes("-129", 0, false, "ff7f", 0);
	check_bytes("-256", 0, false, "ff00", 0);
	check_bytes("18446744073709551616", 0, false, "010000000000000000", 0);
	check_bytes("-9223372036854775808", 0, false, "8000000000000000", 0);
	check_bytes("123456789012345678901234567890", 0, false, "018ee90ff6c373e0ee4e3f0ad2", 0);
	/* a declared scale: 12.30 -> 1230; 12.3 padded; a negative scale */
	check_bytes("12.30", 2, false, "04ce", 2);
	check_bytes("12.3", 2, false, "04ce", 2);
	check_bytes("-0.50", 2, false, "ce", 2);
	check_bytes("1200", -2, false, "0c", -2);
	/* the text's own scale (VariableScaleDecimal) */
	check_bytes("3.14159", 0, true, "04cb2f", 5);
	/* not representable */
	assert_int_equal(ps__decimal_unscaled_bytes("12.345", 6, 2, false, &b, &n, &used), PS_EINVAL);
	assert_int_equal(ps__decimal_unscaled_bytes("NaN", 3, 2, false, &b, &n, &used), PS_EINVAL);
	assert_int_equal(ps__decimal_unscaled_bytes("Infinity", 8, 0, true, &b, &n, &used), PS_EINVAL);
	assert_null(b);
}

/* --- events ------------------------------------------------------------------------ */

static void test_events(void **state)
{
	ps_envelope env;
	ps_table *t = zoo_table('d');
	ps_change *c = zoo_change(t, 'c', 7, "seven", 0);
	ps_txn txn = {.xid = 42, .commit_time_us = 1700000000123456};
	ps_buf b;
	ps_error err;
	bool has_key;
	json_t *j, *p;

	(void)state;
	ps_error_clear(&err);
	ps_buf_init(&b, 1 << 20);
	assert_int_equal(ps_envelope_init(&env, "postgresql", "app", &err), PS_OK);

	/* schemaless */
	assert_int_equal(ps_envelope_set_style(&env, "srv", false, PS_DECIMAL_STRING, "__u", &err), PS_OK);
	assert_int_equal(ps_envelope_key(&env, &b, t, c->new_values, &has_key, &err), PS_OK);
	assert_true(has_key);
	assert_int_equal(b.len, strlen("{\"id\":7}"));
	assert_memory_equal(b.data, "{\"id\":7}", b.len);
	ps_buf_reset(&b);
	assert_int_equal(ps_envelope_value(&env, &b, &txn, c, 'c', NULL, 1700000000999000, &err), PS_OK);
	j = parse(&b);
	assert_true(json_is_null(json_object_get(j, "before")));
	p = json_object_get(j, "after");
	assert_int_equal(json_integer_value(json_object_get(p, "id")), 7);
	assert_string_equal(json_string_value(json_object_get(p, "n")), "1.50");
	assert_string_equal(json_string_value(json_object_get(p, "d")), "2024-01-02Z");
	assert_string_equal(json_string_value(json_object_get(p, "ts")), "2024-01-02T10:00:00.5Z");
	assert_string_equal(json_string_value(json_object_get(p, "b")), "AP8=");
	p = json_object_get(j, "source");
	assert_string_equal(json_string_value(json_object_get(p, "connector")), "postgresql");
	assert_string_equal(json_string_value(json_object_get(p, "name")), "srv");
	assert_string_equal(json_string_value(json_object_get(p, "db")), "app");
	assert_string_equal(json_string_value(json_object_get(p, "snapshot")), "false");
	assert_string_equal(json_string_value(json_object_get(p, "sequence")), "[null,\"1007\"]");
	assert_int_equal(json_integer_value(json_object_get(p, "ts_ms")), 1700000000123);
	assert_int_equal(json_integer_value(json_object_get(p, "txId")), 42);
	assert_int_equal(json_integer_value(json_object_get(p, "lsn")), 1007);
	assert_true(json_is_null(json_object_get(j, "transaction")));
	assert_string_equal(json_string_value(json_object_get(j, "op")), "c");
	assert_int_equal(json_integer_value(json_object_get(j, "ts_ms")), 1700000000999);
	assert_null(json_object_get(j, "reprocessing"));
	json_decref(j);

	/* with schemas: the key is byte for byte the JSON converter's */
	assert_int_equal(ps_envelope_set_style(&env, "srv", true, PS_DECIMAL_PRECISE, "__u", &err), PS_OK);
	ps_buf_reset(&b);
	assert_int_equal(ps_envelope_key(&env, &b, t, c->new_values, &has_key, &err), PS_OK);
	{
		const char *want = "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\","
		                   "\"optional\":false,\"field\":\"id\"}],\"optional\":false,"
		                   "\"name\":\"srv.public.t.Key\"},\"payload\":{\"id\":7}}";
		assert_int_equal(b.len, strlen(want));
		assert_memory_equal(b.data, want, b.len);
	}
	ps_buf_reset(&b);
	txn.reprocessing = true;
	{
		ps_event_txn tx = {.id = "42:1007", .total_order = 3, .collection_order = 2};
		assert_int_equal(ps_envelope_value(&env, &b, &txn, c, 'c', &tx, 0, &err), PS_OK);
	}
	j = parse(&b);
	p = json_object_get(json_object_get(j, "payload"), "after");
	assert_string_equal(json_string_value(json_object_get(p, "n")), "AJY=");   /* 150, scale 2 */
	p = json_object_get(j, "payload");
	assert_true(json_is_true(json_object_get(p, "reprocessing")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "transaction"), "id")),
	                    "42:1007");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "transaction"),
	                                                    "data_collection_order")), 2);
	p = json_object_get(j, "schema");
	assert_string_equal(json_string_value(json_object_get(p, "name")), "srv.public.t.Envelope");
	{
		/* after's n: Decimal with its scale and precision; d: IsoDate */
		json_t *after = json_array_get(json_object_get(p, "fields"), 1);
		json_t *n = json_array_get(json_object_get(after, "fields"), 2);
		json_t *d = json_array_get(json_object_get(after, "fields"), 3);
		assert_string_equal(json_string_value(json_object_get(after, "field")), "after");
		assert_string_equal(json_string_value(json_object_get(n, "name")),
		                    "org.apache.kafka.connect.data.Decimal");
		assert_string_equal(json_string_value(json_object_get(json_object_get(n, "parameters"),
		                                                      "scale")), "2");
		assert_string_equal(json_string_value(json_object_get(json_object_get(n, "parameters"),
		                                                      "connect.decimal.precision")), "10");
		assert_string_equal(json_string_value(json_object_get(d, "name")), "io.debezium.time.IsoDate");
	}
	json_decref(j);

	/* flattened delete: the row before, __deleted "true" */
	{
		ps_change *d = zoo_change(t, 'd', 7, NULL, 7);
		assert_int_equal(ps_envelope_set_style(&env, "srv", false, PS_DECIMAL_STRING, "__u", &err), PS_OK);
		ps_buf_reset(&b);
		assert_int_equal(ps_envelope_flat(&env, &b, &txn, d, 'd', &err), PS_OK);
		j = parse(&b);
		assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
		assert_true(json_is_null(json_object_get(j, "v")));
		assert_string_equal(json_string_value(json_object_get(j, "__deleted")), "true");
		assert_string_equal(json_string_value(json_object_get(j, "__op")), "d");
		assert_int_equal(json_integer_value(json_object_get(j, "__source_ts_ms")), 1700000000123);
		assert_int_equal(json_integer_value(json_object_get(j, "__lsn")), 1007);
		json_decref(j);
		ps_buf_reset(&b);
		assert_int_equal(ps_envelope_flat(&env, &b, &txn, c, 'c', &err), PS_OK);
		j = parse(&b);
		assert_string_equal(json_string_value(json_object_get(j, "__deleted")), "false");
		assert_string_equal(json_string_value(json_object_get(j, "v")), "seven");
		json_decref(j);
		ps_change_free(d);
	}

	/* REPLICA IDENTITY FULL: the stream flags every column; no key */
	{
		ps_table *full = zoo_table('f');
		ps_buf_reset(&b);
		assert_int_equal(ps_envelope_key(&env, &b, full, c->new_values, &has_key, &err), PS_OK);
		assert_false(has_key);
		assert_int_equal(b.len, 0);
		ps_table_unref(full);
	}
	ps_change_free(c);
	ps_table_unref(t);
	ps_envelope_free(&env);
	ps_buf_free(&b);
}

/* --- the sink over the in-memory log ---------------------------------------------------- */

static kf_memstore *g_store;

static void sink_config(ps_sink_config *cfg, json_t **opts, const char *job, const char *extra)
{
	char doc[512];
	json_error_t jerr;

	snprintf(doc, sizeof(doc), "{\"delivery\": \"exactly_once\", \"schemas\": false%s%s}",
	         extra ? ", " : "", extra ? extra : "");
	*opts = json_loads(doc, 0, &jerr);
	assert_non_null(*opts);
	memset(cfg, 0, sizeof(*cfg));
	cfg->job_name = job;
	cfg->url = "kafka://mem:9092/?topic_prefix=app";
	cfg->options = *opts;
	cfg->connector = "postgresql";
	cfg->source_db = "app";
}

static int setup_store(void **state)
{
	(void)state;
	g_store = kf_memstore_new(false, 4);
	kf_memstore_use(g_store);
	ps__kafka_set_log_for_tests(&ps__kafka_memlog);
	return 0;
}

static int teardown_store(void **state)
{
	(void)state;
	kf_memstore_free(g_store);
	g_store = NULL;
	return 0;
}

static json_t *rec_json(const char *p, size_t n)
{
	json_error_t jerr;
	json_t *j = json_loadb(p, n, 0, &jerr);

	assert_non_null(j);
	return j;
}

static void test_records(void **state)
{
	ps_sink_config cfg;
	json_t *opts;
	ps_snk k;
	ps_error err;
	ps_table *t = zoo_table('d');
	ps_txn txn = {.xid = 9, .commit_time_us = 1700000000000000, .position = "0/10"};
	ps_change *c[5];
	const kf_memrec *recs;
	size_t n, total = 0, tombstones = 0;
	char *ck = NULL;

	(void)state;
	ps_error_clear(&err);
	sink_config(&cfg, &opts, "recs", "\"transaction_metadata\": true, \"truncate_events\": true");
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_true(ps_snk_has_checkpoint_store(&k));
	c[0] = zoo_change(t, 'c', 1, "one", 0);
	c[1] = zoo_change(t, 'u', 2, "two", 0);         /* same key */
	c[2] = zoo_change(t, 'u', 3, "three", 1);       /* key 1 -> 3 */
	c[3] = zoo_change(t, 'd', 2, NULL, 2);
	c[4] = ps_change_new('t', t, NULL, NULL, false, 2000);
	assert_int_equal(ps_snk_begin(&k, &txn, &err), PS_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ps_snk_write(&k, &txn, c[i], &err), PS_OK);
	assert_int_equal(ps_snk_commit(&k, &txn, &err), PS_OK);
	assert_int_equal(ps_snk_checkpoint_store(&k, "{\"position\":\"0/10\"}", &err), PS_OK);
	/* nothing committed yet: a read_committed reader sees nothing */
	assert_int_equal(kf_memstore_read(g_store, "app.public.t", 0, true, &recs), 0);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);

	/* every keyed record in murmur2(key) % 4, tombstones with the key */
	for (int p = 0; p < kf_memstore_partitions(g_store, "app.public.t"); p++) {
		n = kf_memstore_read(g_store, "app.public.t", p, true, &recs);
		for (size_t i = 0; i < n; i++) {
			total++;
			if (recs[i].key)
				assert_int_equal(kf_murmur2_partition(recs[i].key, recs[i].klen, 4), p);
			else
				assert_non_null(recs[i].value);   /* the truncate event */
			if (!recs[i].value)
				tombstones++;
			assert_non_null(recs[i].batch);
		}
	}
	/* c(1), u(2), d(1)+tombstone, c(3), d(2)+tombstone, t */
	assert_int_equal(total, 8);
	assert_int_equal(tombstones, 2);
	/* transaction metadata: BEGIN and END with the counts */
	{
		size_t seen = 0;
		for (int p = 0; p < kf_memstore_partitions(g_store, "app.transaction"); p++) {
			n = kf_memstore_read(g_store, "app.transaction", p, true, &recs);
			for (size_t i = 0; i < n; i++, seen++) {
				json_t *v = rec_json(recs[i].value, recs[i].vlen);
				if (strcmp(json_string_value(json_object_get(v, "status")), "END") == 0) {
					assert_int_equal(json_integer_value(json_object_get(v, "event_count")), 6);
					assert_string_equal(json_string_value(json_object_get(
						json_array_get(json_object_get(v, "data_collections"), 0),
						"data_collection")), "public.t");
				}
				assert_string_equal(json_string_value(json_object_get(v, "id")), "9:1001");
				json_decref(v);
			}
		}
		assert_int_equal(seen, 2);
	}
	/* the key change: delete with __debezium.newkey, create */
	{
		bool saw_delete_of_1 = false;
		for (int p = 0; p < 4; p++) {
			n = kf_memstore_read(g_store, "app.public.t", p, true, &recs);
			for (size_t i = 0; i < n; i++)
				if (recs[i].key && recs[i].value && strcmp(recs[i].key, "{\"id\":1}") == 0 &&
				    strstr(recs[i].value, "\"op\":\"d\""))
					saw_delete_of_1 = true;
		}
		assert_true(saw_delete_of_1);
	}
	ps_snk_close(&k);

	/* a new producer reads the checkpoint back */
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_int_equal(ps_snk_checkpoint_load(&k, &ck, &err), PS_OK);
	assert_string_equal(ck, "{\"position\":\"0/10\"}");
	free(ck);
	/* delete: a tombstone in the checkpoint topic */
	assert_int_equal(ps_snk_checkpoint_delete(&k, &err), PS_OK);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	assert_int_equal(ps_snk_checkpoint_load(&k, &ck, &err), PS_OK);
	assert_null(ck);
	ps_snk_close(&k);

	for (int i = 0; i < 5; i++)
		ps_change_free(c[i]);
	ps_table_unref(t);
	json_decref(opts);
}


/* --- net changes and split by operation ------------------------------------------------ */

/* Every record of topic, partition after partition (each in its order). */
static size_t topic_records(const char *topic, const kf_memrec **out, size_t max)
{
	const kf_memrec *recs;
	size_t total = 0;

	for (int p = 0; p < kf_memstore_partitions(g_store, topic); p++) {
		size_t n = kf_memstore_read(g_store, topic, p, true, &recs);
		for (size_t i = 0; i < n; i++) {
			assert_true(total < max);
			out[total++] = &recs[i];
		}
	}
	return total;
}

/* The records of key (e.g. {"id":1}) in topic, in order. */
static size_t key_records(const char *topic, const char *key, const kf_memrec **out, size_t max)
{
	const kf_memrec *all[64];
	size_t n = topic_records(topic, all, 64), got = 0;

	for (size_t i = 0; i < n; i++)
		if (all[i]->key && strcmp(all[i]->key, key) == 0) {
			assert_true(got < max);
			out[got++] = all[i];
		}
	return got;
}

static void assert_op_range(const kf_memrec *r, const char *op, const char *from, const char *to)
{
	json_t *v = rec_json(r->value, r->vlen), *range = json_object_get(v, "range");

	assert_string_equal(json_string_value(json_object_get(v, "op")), op);
	assert_non_null(range);
	assert_string_equal(json_string_value(json_object_get(range, "from")), from);
	assert_string_equal(json_string_value(json_object_get(range, "to")), to);
	json_decref(v);
}

static void write_txn(ps_snk *k, ps_txn *txn, ps_change **c, int n)
{
	ps_error err;

	ps_error_clear(&err);
	assert_int_equal(ps_snk_begin(k, txn, &err), PS_OK);
	for (int i = 0; i < n; i++)
		assert_int_equal(ps_snk_write(k, txn, c[i], &err), PS_OK);
	assert_int_equal(ps_snk_commit(k, txn, &err), PS_OK);
}

static void test_net_changes(void **state)
{
	ps_sink_config cfg;
	json_t *opts;
	ps_snk k;
	ps_error err;
	ps_table *t = zoo_table('d');
	ps_txn t1 = {.xid = 1, .commit_time_us = 1700000000000000, .position = "0/20"};
	ps_txn t2 = {.xid = 2, .commit_time_us = 1700000001000000, .position = "0/30"};
	ps_change *a[3], *b[3];
	const kf_memrec *recs[16], *all[64];
	const kf_memrec *raw;
	json_t *v;
	bool hold = false;
	uint64_t committed, aborted;
	char *ck = NULL;

	(void)state;
	ps_error_clear(&err);
	sink_config(&cfg, &opts, "net", "\"changes\": \"net\"");
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_int_equal(ps_snk_range(&k, "0/10", "0/40", &hold, &err), PS_OK);
	assert_true(hold);
	a[0] = zoo_change(t, 'c', 1, "one", 0);     /* 1: inserted, then updated */
	a[1] = zoo_change(t, 'c', 2, "two", 0);     /* 2: inserted, then deleted */
	a[2] = zoo_change(t, 'u', 3, "three", 3);   /* 3: updated, then deleted */
	b[0] = zoo_change(t, 'u', 1, "uno", 1);
	b[1] = zoo_change(t, 'd', 2, NULL, 2);
	b[2] = zoo_change(t, 'd', 3, NULL, 3);
	write_txn(&k, &t1, a, 3);
	write_txn(&k, &t2, b, 3);
	/* held: nothing produced, not even an open transaction */
	assert_int_equal(kf_memstore_read(g_store, "app.public.t", 0, false, &raw), 0);
	assert_int_equal(kf_memstore_partitions(g_store, "app.public.t"), 0);
	/* the range as it ended, then the checkpoint and its flush */
	assert_int_equal(ps_snk_range(&k, "0/10", "0/40", &hold, &err), PS_OK);
	assert_int_equal(ps_snk_checkpoint_store(&k, "{\"position\":\"0/40\"}", &err), PS_OK);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	kf_memstore_counts(g_store, &committed, &aborted);
	assert_int_equal(committed, 1);   /* the net set and its checkpoint */
	/* 1: one insert with the final values */
	assert_int_equal(key_records("app.public.t", "{\"id\":1}", recs, 16), 1);
	assert_op_range(recs[0], "c", "0/10", "0/40");
	v = rec_json(recs[0]->value, recs[0]->vlen);
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "after"), "v")),
	                    "uno");
	json_decref(v);
	/* 2: nothing */
	assert_int_equal(key_records("app.public.t", "{\"id\":2}", recs, 16), 0);
	/* 3: a delete of the key before the range, then its tombstone */
	assert_int_equal(key_records("app.public.t", "{\"id\":3}", recs, 16), 2);
	assert_op_range(recs[0], "d", "0/10", "0/40");
	assert_null(recs[1]->value);
	assert_int_equal(topic_records("app.public.t", all, 64), 3);
	assert_int_equal(ps_snk_checkpoint_load(&k, &ck, &err), PS_OK);
	assert_string_equal(ck, "{\"position\":\"0/40\"}");
	free(ck);
	ps_snk_close(&k);
	json_decref(opts);

	/* a run without a bound: a span per checkpoint */
	sink_config(&cfg, &opts, "net2", "\"changes\": \"net\", \"update_mask\": true");
	cfg.url = "kafka://mem:9092/?topic_prefix=app2";
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_int_equal(ps_snk_range(&k, "0/10", NULL, &hold, &err), PS_OK);
	assert_false(hold);
	write_txn(&k, &t1, a, 3);
	assert_int_equal(ps_snk_checkpoint_store(&k, "{\"position\":\"0/20\"}", &err), PS_OK);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	write_txn(&k, &t2, b, 3);
	assert_int_equal(ps_snk_checkpoint_store(&k, "{\"position\":\"0/30\"}", &err), PS_OK);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	/* 1: inserted in the first span, updated in the second (with its mask) */
	assert_int_equal(key_records("app2.public.t", "{\"id\":1}", recs, 16), 2);
	assert_op_range(recs[0], "c", "0/10", "0/20");
	assert_op_range(recs[1], "u", "0/20", "0/30");
	v = rec_json(recs[1]->value, recs[1]->vlen);
	{
		json_t *changed = json_object_get(v, "changed");
		bool has_v = false;
		for (size_t i = 0; i < json_array_size(changed); i++)
			has_v |= strcmp(json_string_value(json_array_get(changed, i)), "v") == 0;
		assert_true(has_v);
	}
	json_decref(v);
	/* 2: inserted, then deleted (and its tombstone); 3: updated, then deleted */
	assert_int_equal(key_records("app2.public.t", "{\"id\":2}", recs, 16), 3);
	assert_op_range(recs[0], "c", "0/10", "0/20");
	assert_op_range(recs[1], "d", "0/20", "0/30");
	assert_null(recs[2]->value);
	assert_int_equal(key_records("app2.public.t", "{\"id\":3}", recs, 16), 3);
	assert_op_range(recs[0], "u", "0/10", "0/20");
	assert_op_range(recs[1], "d", "0/20", "0/30");
	assert_null(recs[2]->value);
	ps_snk_close(&k);
	json_decref(opts);

	/* at least once: held through idle heartbeats, produced at the flush */
	sink_config(&cfg, &opts, "net4", "\"delivery\": \"at_least_once\", \"changes\": \"net\", "
	                                 "\"heartbeat_interval_ms\": 1");
	cfg.url = "kafka://mem:9092/?topic_prefix=app4";
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_false(ps_snk_has_checkpoint_store(&k));
	assert_int_equal(ps_snk_range(&k, "0/10", "0/40", &hold, &err), PS_OK);
	assert_true(hold);
	write_txn(&k, &t1, a, 3);
	write_txn(&k, &t2, b, 3);
	/* idle until a heartbeat was produced and flushed (its 1 ms passed) */
	while (kf_memstore_partitions(g_store, "__debezium-heartbeat.app4") == 0)
		assert_int_equal(ps_snk_idle(&k, &err), PS_OK);
	assert_int_equal(kf_memstore_partitions(g_store, "app4.public.t"), 0);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	assert_int_equal(key_records("app4.public.t", "{\"id\":1}", recs, 16), 1);
	assert_op_range(recs[0], "c", "0/10", "0/40");
	assert_int_equal(key_records("app4.public.t", "{\"id\":3}", recs, 16), 2);
	assert_int_equal(topic_records("app4.public.t", all, 64), 3);
	ps_snk_close(&k);
	json_decref(opts);

	/* refused as JSON lines refuses them, and with transaction metadata */
	sink_config(&cfg, &opts, "net3", "\"update_mask\": true");
	assert_int_not_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_non_null(strstr(err.message, "target.update_mask applies to net changes only"));
	json_decref(opts);
	ps_error_clear(&err);
	sink_config(&cfg, &opts, "net3", "\"changes\": \"net\", \"transaction_metadata\": true");
	assert_int_not_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_non_null(strstr(err.message, "target.transaction_metadata"));
	json_decref(opts);

	for (int i = 0; i < 3; i++) {
		ps_change_free(a[i]);
		ps_change_free(b[i]);
	}
	ps_table_unref(t);
}

static void test_split_topics(void **state)
{
	static const char *const kinds[] = {"insert", "update", "delete", "load", "truncate"};
	ps_sink_config cfg;
	json_t *opts;
	ps_snk k;
	ps_error err;
	ps_table *t = zoo_table('d');
	ps_txn txn = {.xid = 9, .commit_time_us = 1700000000000000, .position = "0/10"};
	ps_change *c[6];
	const kf_memrec *recs[64];
	size_t n, split_total = 0, whole;
	char topic[64];

	(void)state;
	ps_error_clear(&err);
	c[0] = zoo_change(t, 'c', 1, "one", 0);
	c[1] = zoo_change(t, 'u', 2, "two", 0);         /* same key */
	c[2] = zoo_change(t, 'u', 3, "three", 1);       /* key 1 -> 3 */
	c[3] = zoo_change(t, 'd', 2, NULL, 2);
	c[4] = ps_change_new('t', t, NULL, NULL, false, 2000);
	c[5] = zoo_change(t, 'r', 7, "seven", 0);
	/* the unsplit stream, then the same changes split, by another job */
	for (int split = 0; split < 2; split++) {
		sink_config(&cfg, &opts, split ? "split" : "whole",
		            split ? "\"truncate_events\": true, \"split\": \"operation\""
		                  : "\"truncate_events\": true");
		cfg.url = split ? "kafka://mem:9092/?topic_prefix=s" : "kafka://mem:9092/?topic_prefix=w";
		assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
		write_txn(&k, &txn, c, 6);
		assert_int_equal(ps_snk_checkpoint_store(&k, "{\"position\":\"0/10\"}", &err), PS_OK);
		assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
		ps_snk_close(&k);
		json_decref(opts);
	}
	whole = topic_records("w.public.t", recs, 64);
	assert_int_equal(whole, 9);   /* c, u, d+tb, c, d+tb, t, r */
	assert_int_equal(kf_memstore_partitions(g_store, "s.public.t"), 0);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(topic, sizeof(topic), "s.public.t.%s", kinds[i]);
		n = topic_records(topic, recs, 64);
		assert_true(n > 0);
		for (size_t j = 0; j < n; j++) {
			json_t *v;
			const char *op;
			if (!recs[j]->value) {   /* a tombstone: after its key's delete */
				assert_string_equal(kinds[i], "delete");
				assert_true(j > 0 && recs[j - 1]->value &&
				            strcmp(recs[j - 1]->key, recs[j]->key) == 0);
				continue;
			}
			v = rec_json(recs[j]->value, recs[j]->vlen);
			op = json_string_value(json_object_get(v, "op"));
			assert_int_equal(op[0], i == 0 ? 'c' : i == 1 ? 'u' : i == 2 ? 'd' : i == 3 ? 'r' : 't');
			json_decref(v);
		}
		split_total += n;
	}
	/* together, the split topics hold what the one topic holds: per key,
	 * the same values in the same order */
	assert_int_equal(split_total, whole);
	{
		static const char *const keys[] = {"{\"id\":1}", "{\"id\":2}", "{\"id\":3}",
		                                   "{\"id\":7}"};
		for (size_t i = 0; i < 4; i++) {
			const kf_memrec *w[8], *sp[8];
			size_t nw = key_records("w.public.t", keys[i], w, 8), ns = 0;
			for (size_t j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++) {
				snprintf(topic, sizeof(topic), "s.public.t.%s", kinds[j]);
				ns += key_records(topic, keys[i], sp + ns, 8 - ns);
			}
			assert_int_equal(ns, nw);
			for (size_t j = 0; j < nw; j++) {
				bool found = false;
				for (size_t m = 0; m < ns && !found; m++)
					found = (!w[j]->value && !sp[m]->value) ||
					        (w[j]->value && sp[m]->value &&
					         strstr(sp[m]->value, "\"op\":") &&
					         strncmp(strstr(w[j]->value, "\"op\":"),
					                 strstr(sp[m]->value, "\"op\":"), 8) == 0);
				assert_true(found);
			}
		}
	}
	for (int i = 0; i < 6; i++)
		ps_change_free(c[i]);
	ps_table_unref(t);
}

/* --- schema changes ------------------------------------------------------------------ */

/* public.s (id int4 key, v text[, extra int4]) */
static ps_table *shape_table(bool extra)
{
	ps_table *t = ps_table_new(2, extra ? 3 : 2);

	assert_non_null(t);
	t->engine = "postgresql";
	t->replica_identity = 'd';
	assert_int_equal(ps_table_set_names(t, "public", "s"), 0);
	assert_int_equal(ps_table_set_column(t, 0, "id", PG_INT4, -1, PS_TYPE_INTEGER, true), 0);
	assert_int_equal(ps_table_set_column(t, 1, "v", PG_TEXT, -1, PS_TYPE_TEXT, false), 0);
	if (extra)
		assert_int_equal(ps_table_set_column(t, 2, "extra", PG_INT4, -1, PS_TYPE_INTEGER, false),
		                 0);
	return t;
}

static ps_change *shape_insert(ps_table *t, int id)
{
	char idtext[16];
	ps_value v[3];

	snprintf(idtext, sizeof(idtext), "%d", id);
	v[0] = text(idtext);
	v[1] = text("x");
	v[2] = text("42");
	return ps_change_new('c', t, v, NULL, true, 5000 + id);
}

/* Whether the value's schema (after) and payload name the column. */
static void value_has(const kf_memrec *r, const char *column, bool want)
{
	json_t *v = rec_json(r->value, r->vlen), *f, *after_schema = NULL;
	size_t i;
	bool in_schema = false;

	json_array_foreach(json_object_get(json_object_get(v, "schema"), "fields"), i, f)
		if (strcmp(json_string_value(json_object_get(f, "field")), "after") == 0)
			after_schema = f;
	assert_non_null(after_schema);
	json_array_foreach(json_object_get(after_schema, "fields"), i, f)
		if (strcmp(json_string_value(json_object_get(f, "field")), column) == 0)
			in_schema = true;
	assert_int_equal(in_schema, want);
	assert_int_equal(json_object_get(json_object_get(json_object_get(v, "payload"), "after"),
	                                 column) != NULL, want);
	json_decref(v);
}

static void test_table_change(void **state)
{
	ps_sink_config cfg;
	json_t *opts;
	ps_snk k;
	ps_error err;
	ps_table *t1 = shape_table(false), *t2 = shape_table(true);
	ps_txn txn = {.xid = 11, .commit_time_us = 1700000000000000, .position = "0/20"};
	ps_table_change tc = {.table = t2, .previous = t1, .what = PS_TC_COLUMNS, .lsn = 5002};
	ps_table_options topt;
	ps_change *c1 = shape_insert(t1, 1), *c2 = shape_insert(t2, 2);
	const kf_memrec *recs;
	bool backfill = true;
	char *saved = NULL;
	int seen = 0;

	(void)state;
	memset(&topt, 0, sizeof(topt));
	ps_error_clear(&err);
	sink_config(&cfg, &opts, "shape", "\"schemas\": true, \"topic_partitions\": 1");
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_int_equal(ps_snk_begin(&k, &txn, &err), PS_OK);
	/* the first definition seen: recorded, nothing asked */
	tc.table = t1;
	tc.previous = NULL;
	tc.what = PS_TC_FIRST;
	assert_int_equal(ps_snk_table_change(&k, &txn, &tc, &topt, &backfill, &err), PS_OK);
	assert_false(backfill);
	assert_int_equal(ps_snk_write(&k, &txn, c1, &err), PS_OK);
	/* a column added whose value in older rows the source did not say */
	tc.table = t2;
	tc.previous = t1;
	tc.what = PS_TC_COLUMNS;
	assert_int_equal(ps_snk_table_change(&k, &txn, &tc, &topt, &backfill, &err), PS_OK);
	assert_true(backfill);
	assert_int_equal(ps_snk_write(&k, &txn, c2, &err), PS_OK);
	assert_int_equal(ps_snk_commit(&k, &txn, &err), PS_OK);
	assert_int_equal(ps_snk_state_save(&k, &saved, &err), PS_OK);
	assert_non_null(saved);
	assert_int_equal(ps_snk_checkpoint_store(&k, "{\"position\":\"0/20\"}", &err), PS_OK);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	ps_snk_close(&k);

	/* the event before the change has no such field, the one after it has */
	for (int p = 0; p < kf_memstore_partitions(g_store, "app.public.s"); p++) {
		size_t n = kf_memstore_read(g_store, "app.public.s", p, true, &recs);
		for (size_t i = 0; i < n; i++, seen++)
			value_has(&recs[i], "extra", strstr(recs[i].key, "\"id\":2") != NULL);
	}
	assert_int_equal(seen, 2);

	/* the next run knows what consumers were told: the same definition
	 * again asks nothing, and the state names the new column */
	assert_non_null(strstr(saved, "\"extra\""));
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_int_equal(ps_snk_state_restore(&k, saved, &err), PS_OK);
	tc.previous = NULL;
	tc.what = PS_TC_FIRST;
	assert_int_equal(ps_snk_table_change(&k, &txn, &tc, &topt, &backfill, &err), PS_OK);
	assert_false(backfill);
	/* ... and a definition without it is a change (a column dropped: the
	 * remaining columns' values are known, nothing to read again) */
	tc.table = t1;
	assert_int_equal(ps_snk_table_change(&k, &txn, &tc, &topt, &backfill, &err), PS_OK);
	assert_false(backfill);
	ps_snk_close(&k);

	free(saved);
	ps_change_free(c1);
	ps_change_free(c2);
	ps_table_unref(t1);
	ps_table_unref(t2);
	json_decref(opts);
}

/* --- a MySQL source ------------------------------------------------------------------- */

static void test_mysql_source_block(void **state)
{
	ps_envelope env;
	ps_table *t = ps_table_new(3, 1);
	ps_value v = text("5");
	ps_change *c;
	ps_txn txn = {.xid = 0, .commit_time_us = 1700000000123456};
	ps_buf b;
	ps_error err;
	json_t *j, *src, *f;
	size_t i;
	bool named = false;

	(void)state;
	ps_error_clear(&err);
	assert_non_null(t);
	t->engine = "mysql";
	assert_int_equal(ps_table_set_names(t, "shop", "acct"), 0);
	assert_int_equal(ps_table_set_column(t, 0, "id", 3, -1, PS_TYPE_INTEGER, true), 0);
	c = ps_change_new('c', t, &v, NULL, true, 777);
	assert_non_null(c);
	ps_change_set_source_info(c, strdup("\"server_id\":1,\"gtid\":\"0-1-9\","
	                                   "\"file\":\"mariadb-bin.000002\",\"pos\":4711,\"row\":0"));
	ps_buf_init(&b, 1 << 20);
	assert_int_equal(ps_envelope_init(&env, "mysql", "", &err), PS_OK);
	assert_int_equal(ps_envelope_set_style(&env, "srv", true, PS_DECIMAL_STRING, "__u", &err),
	                 PS_OK);
	assert_int_equal(ps_envelope_value(&env, &b, &txn, c, 'c', NULL, 0, &err), PS_OK);
	j = parse(&b);
	src = json_object_get(json_object_get(j, "payload"), "source");
	assert_string_equal(json_string_value(json_object_get(src, "connector")), "mysql");
	assert_string_equal(json_string_value(json_object_get(src, "db")), "shop");
	assert_string_equal(json_string_value(json_object_get(src, "table")), "acct");
	assert_string_equal(json_string_value(json_object_get(src, "file")), "mariadb-bin.000002");
	assert_int_equal(json_integer_value(json_object_get(src, "pos")), 4711);
	assert_int_equal(json_integer_value(json_object_get(src, "server_id")), 1);
	assert_string_equal(json_string_value(json_object_get(src, "gtid")), "0-1-9");
	assert_int_equal(json_integer_value(json_object_get(src, "row")), 0);
	assert_true(json_is_null(json_object_get(src, "query")));
	assert_null(json_object_get(src, "lsn"));
	assert_null(json_object_get(src, "schema"));
	/* every payload field is in the schema of the source block */
	json_array_foreach(json_object_get(json_object_get(j, "schema"), "fields"), i, f)
		if (strcmp(json_string_value(json_object_get(f, "field")), "source") == 0) {
			const char *key;
			json_t *val;
			assert_string_equal(json_string_value(json_object_get(f, "name")),
			                    "io.debezium.connector.mysql.Source");
			json_object_foreach(src, key, val) {
				bool found = false;
				json_t *sf;
				size_t k;
				(void)val;
				json_array_foreach(json_object_get(f, "fields"), k, sf)
					found |= strcmp(json_string_value(json_object_get(sf, "field")), key) == 0;
				if (!found)
					fail_msg("source field %s is not in the schema", key);
			}
			named = true;
		}
	assert_true(named);
	json_decref(j);
	ps_change_free(c);
	ps_table_unref(t);
	ps_envelope_free(&env);
	ps_buf_free(&b);
}

/* --- error kinds ----------------------------------------------------------------------- */

static int write_one(ps_snk *k, ps_table *t, int id, ps_error *err)
{
	ps_txn txn = {.xid = (uint64_t)id, .position = "0/1"};
	ps_change *c = zoo_change(t, 'c', id, "x", 0);
	int rc = ps_snk_begin(k, &txn, err);

	if (rc == PS_OK)
		rc = ps_snk_write(k, &txn, c, err);
	if (rc == PS_OK)
		rc = ps_snk_commit(k, &txn, err);
	if (rc == PS_OK)
		rc = ps_snk_checkpoint_store(k, "{}", err);
	if (rc == PS_OK)
		rc = ps_snk_flush(k, err);
	ps_change_free(c);
	return rc;
}

static void test_error_kinds(void **state)
{
	ps_sink_config cfg;
	json_t *opts;
	ps_snk k, older;
	ps_error err;
	ps_table *t = zoo_table('d');
	uint64_t committed, aborted;

	(void)state;
	ps_error_clear(&err);
	sink_config(&cfg, &opts, "errs", NULL);

	/* retriable commit: tried again, then committed */
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	kf_memstore_inject(g_store, "commit", KF_RETRIABLE, RD_KAFKA_RESP_ERR__TIMED_OUT, 2);
	assert_int_equal(write_one(&k, t, 1, &err), PS_OK);

	/* abortable: aborted, the run ends retryable (conflict) */
	kf_memstore_inject(g_store, "commit", KF_ABORTABLE, RD_KAFKA_RESP_ERR_UNKNOWN, 1);
	kf_memstore_counts(g_store, &committed, &aborted);
	assert_int_not_equal(write_one(&k, t, 2, &err), PS_OK);
	assert_int_equal(ps_errclass_of(&err), PS_ERRCLASS_CONFLICT);
	assert_true(ps_error_retryable(&err));
	assert_string_equal(err.engine_code, "UNKNOWN");
	assert_string_equal(err.engine_code_kind, "Kafka error");
	assert_non_null(strstr(err.message, "was aborted"));
	{
		uint64_t c2, a2;
		kf_memstore_counts(g_store, &c2, &a2);
		assert_int_equal(a2, aborted + 1);
		assert_int_equal(c2, committed);
	}
	/* the instance is spent; the next call says so */
	assert_int_not_equal(write_one(&k, t, 3, &err), PS_OK);
	ps_snk_close(&k);

	/* fatal: retryable, a new producer next time */
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	kf_memstore_inject(g_store, "produce", KF_FATAL, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, 1);
	assert_int_not_equal(write_one(&k, t, 4, &err), PS_OK);
	assert_true(ps_error_retryable(&err));
	assert_non_null(strstr(err.message, "builds a new producer"));
	ps_snk_close(&k);

	/* permanent codes stay permanent whatever the kind */
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	kf_memstore_inject(g_store, "commit", KF_ABORTABLE, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 1);
	assert_int_not_equal(write_one(&k, t, 5, &err), PS_OK);
	assert_int_equal(ps_errclass_of(&err), PS_ERRCLASS_PERMISSION);
	ps_snk_close(&k);

	/* fenced: a second producer of the job's transactional id; the first's
	 * next call is refused for good, naming the likely cause */
	assert_int_equal(ps_snk_open(&older, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_int_equal(write_one(&older, t, 6, &err), PS_OK);
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_int_not_equal(write_one(&older, t, 7, &err), PS_OK);
	assert_false(ps_error_retryable(&err));
	assert_string_equal(err.engine_code, "_FENCED");
	assert_non_null(strstr(err.message, "another penstock is running job 'errs'"));
	assert_int_equal(write_one(&k, t, 8, &err), PS_OK);
	ps_snk_close(&older);
	ps_snk_close(&k);

	/* at least once: no checkpoint in Kafka, no transactions */
	json_decref(opts);
	sink_config(&cfg, &opts, "alo", "\"delivery\": \"at_least_once\"");
	json_object_set_new(opts, "delivery", json_string("at_least_once"));
	assert_int_equal(ps_snk_open(&k, &ps_sink_kafka, &cfg, &err), PS_OK);
	assert_false(ps_snk_has_checkpoint_store(&k));
	{
		ps_txn txn = {.xid = 1, .position = "0/1"};
		ps_change *c = zoo_change(t, 'c', 1, "x", 0);
		const kf_memrec *recs;
		size_t seen = 0;
		assert_int_equal(ps_snk_write(&k, &txn, c, &err), PS_OK);
		assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
		for (int p = 0; p < 4; p++)
			seen += kf_memstore_read(g_store, "app.public.t", p, true, &recs);
		assert_true(seen >= 1);
		ps_change_free(c);
	}
	{
		char figures[4096];
		json_t *f;
		assert_int_equal(ps_snk_figures(&k, figures, sizeof(figures), &err), PS_OK);
		f = json_loads(figures, 0, NULL);
		assert_non_null(f);
		assert_true(json_number_value(json_object_get(json_object_get(f, "messages_produced"),
		                                              "value")) >= 1);
		assert_string_equal(json_string_value(json_object_get(json_object_get(f, "bytes_produced"),
		                                                      "unit")), "bytes");
		json_decref(f);
	}
	ps_snk_close(&k);
	ps_table_unref(t);
	json_decref(opts);
}

/* --- exactly once through the pipeline ------------------------------------------------- */

/*
 * The in-memory source: transactions 1..NTXN, each inserting one row into
 * public.items (keyed) and one into public.log (no key), and every third
 * also updating an items row. Positions are the transaction numbers; a
 * start at p delivers p+1 on. Every change carries (txn, idx) in its row,
 * so the topics can be checked change by change.
 */
#define NTXN 240

typedef struct memsrc {
	ps_table *items, *log;
	int next;             /* next transaction to deliver */
	int redo_until;       /* transactions up to it are reprocessing */
	int step;             /* 0 begin, 1.. changes, then commit */
	int acked;
} memsrc;

static atomic_int g_stop;
static int g_acked_max;

static int changes_of(int txn)
{
	return txn % 3 == 0 ? 3 : 2;
}

static int ms_open(ps_source **out, const ps_source_config *cfg, ps_error *err)
{
	memsrc *s = calloc(1, sizeof(*s));

	(void)cfg;
	(void)err;
	s->items = ps_table_new(10, 3);
	s->log = ps_table_new(11, 2);
	s->items->engine = s->log->engine = "postgresql";
	s->items->replica_identity = 'd';
	s->log->replica_identity = 'f';
	ps_table_set_names(s->items, "public", "items");
	ps_table_set_names(s->log, "public", "log");
	ps_table_set_column(s->items, 0, "id", PG_INT4, -1, PS_TYPE_INTEGER, true);
	ps_table_set_column(s->items, 1, "txn", PG_INT4, -1, PS_TYPE_INTEGER, false);
	ps_table_set_column(s->items, 2, "idx", PG_INT4, -1, PS_TYPE_INTEGER, false);
	ps_table_set_column(s->log, 0, "txn", PG_INT4, -1, PS_TYPE_INTEGER, true);
	ps_table_set_column(s->log, 1, "idx", PG_INT4, -1, PS_TYPE_INTEGER, true);
	*out = (ps_source *)s;
	return PS_OK;
}

static int ms_prepare(ps_source *src, int mode, ps_prepare_result *res, ps_error *err)
{
	(void)src;
	(void)mode;
	(void)err;
	res->created = true;
	snprintf(res->start_position, sizeof(res->start_position), "0");
	snprintf(res->server_id, sizeof(res->server_id), "memsrc");
	return PS_OK;
}

static int ms_start(ps_source *src, const char *position, const char *redo_until,
                    const char *state, ps_error *err)
{
	memsrc *s = (memsrc *)src;

	(void)state;
	(void)err;
	s->next = (position && *position ? atoi(position) : 0) + 1;
	s->redo_until = redo_until && *redo_until ? atoi(redo_until) : 0;
	s->step = 0;
	return PS_OK;
}

static int ms_read(ps_source *src, ps_read_item *item, int timeout_ms, ps_error *err)
{
	memsrc *s = (memsrc *)src;
	int t = s->next;
	char a[16], b[16], c[16];
	ps_value v[3];

	(void)err;
	if (t > NTXN) {
		struct timespec ts = {0, 1000000};
		(void)timeout_ms;
		nanosleep(&ts, NULL);
		item->kind = PS_READ_NONE;
		return PS_OK;
	}
	item->txn.xid = (uint64_t)(1000 + t);
	item->txn.reprocessing = t <= s->redo_until;   /* source.h invariant 2 */
	item->txn.commit_time_us = 1700000000000000 + t;
	if (s->step == 0) {
		item->kind = PS_READ_BEGIN;
		snprintf(item->txn.position, sizeof(item->txn.position), "%d", t);
		s->step = 1;
		return PS_OK;
	}
	if (s->step <= changes_of(t)) {
		int idx = s->step;
		snprintf(b, sizeof(b), "%d", t);
		snprintf(c, sizeof(c), "%d", idx);
		item->kind = PS_READ_CHANGE;
		if (idx == 1) {           /* a new row, key t */
			snprintf(a, sizeof(a), "%d", t);
			v[0] = text(a); v[1] = text(b); v[2] = text(c);
			item->change = ps_change_new('c', s->items, v, NULL, false, (uint64_t)(t * 10 + idx));
		} else if (idx == 2) {    /* a row of the keyless log */
			v[0] = text(b); v[1] = text(c);
			item->change = ps_change_new('c', s->log, v, NULL, false, (uint64_t)(t * 10 + idx));
		} else {                  /* an update of row t - 1 */
			snprintf(a, sizeof(a), "%d", t - 1);
			v[0] = text(a); v[1] = text(b); v[2] = text(c);
			item->change = ps_change_new('u', s->items, v, NULL, false, (uint64_t)(t * 10 + idx));
		}
		s->step++;
		return PS_OK;
	}
	item->kind = PS_READ_COMMIT;
	snprintf(item->txn.position, sizeof(item->txn.position), "%d", t);
	s->next++;
	s->step = 0;
	return PS_OK;
}

static int ms_ack(ps_source *src, const char *position, ps_error *err)
{
	int p = position && *position ? atoi(position) : 0;

	(void)src;
	(void)err;
	if (p > g_acked_max)
		g_acked_max = p;
	if (p >= NTXN)
		atomic_store(&g_stop, 1);   /* everything durable: stop gracefully */
	return PS_OK;
}

static int ms_compare(const char *a, const char *b)
{
	int x = a && *a ? atoi(a) : 0, y = b && *b ? atoi(b) : 0;

	return x < y ? -1 : x > y;
}

static int ms_current(ps_source *src, char *buf, size_t len, ps_error *err)
{
	(void)src;
	(void)err;
	snprintf(buf, len, "%d", NTXN);
	return PS_OK;
}

static void ms_close(ps_source *src)
{
	memsrc *s = (memsrc *)src;

	if (!s)
		return;
	ps_table_unref(s->items);
	ps_table_unref(s->log);
	free(s);
}

static const char *const ms_schemes[] = {"mem", NULL};
static const ps_url_syntax mem_syntax[] = {
	{"mem", "mem", PS_URL_PATH, 0, false, false, "store", "mem:///anything"},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};
static const ps_source_ops ms_ops = {
	.abi_version = PS_SOURCE_ABI_VERSION,
	.name = "mem",
	.connector = "postgresql",
	.url_schemes = ms_schemes,
	.open = ms_open,
	.prepare = ms_prepare,
	.start = ms_start,
	.read = ms_read,
	.ack = ms_ack,
	.position_compare = ms_compare,
	.current_position = ms_current,
	.close = ms_close,
};
static const ps_url_syntax *const test_syntaxes[] = {mem_syntax, ps_kafka_url_syntax, NULL};
static const ps_source_ops *const test_sources[] = {&ms_ops, NULL};
static const ps_sink_ops *const test_sinks[] = {&ps_sink_kafka, NULL};

static int run_once(const char *dir, const char *fault, const char *delivery)
{
	char doc[1024];
	ps_spec *spec = NULL;
	ps_pipeline_config cfg;
	ps_error err;
	int rc;

	snprintf(doc, sizeof(doc),
	         "{\"name\": \"eo\", \"type\": \"cdc\", \"source\": {\"url\": \"mem:///src\"}, "
	         "\"target\": {\"url\": \"kafka://mem:9092/?topic_prefix=app\", \"schemas\": false, "
	         "\"delivery\": \"%s\"}}", delivery);
	ps_error_clear(&err);
	assert_int_equal(ps_spec_parse(&spec, doc, strlen(doc), "test", &err), PS_OK);
	if (fault)
		setenv("PENSTOCK_FAULT", fault, 1);
	else
		unsetenv("PENSTOCK_FAULT");
	assert_int_equal(ps_fault_init(&err), PS_OK);
	ps_pipeline_config_defaults(&cfg);
	cfg.spec = spec;
	cfg.state_dir = dir;
	cfg.batch_max_txns = 25;            /* many Kafka transactions */
	cfg.progress_interval_ms = 3600000;
	atomic_store(&g_stop, 0);
	rc = ps_pipeline_run(&cfg, &g_stop, &err);
	unsetenv("PENSTOCK_FAULT");
	ps_fault_init(&err);
	ps_spec_free(spec);
	return rc;
}

/* (txn, idx) -> times seen, over the data topics as read_committed shows
 * them; with batches_only, only records of batches whose checkpoint record
 * is there too (the rule for a store that shows aborted records). */
static void count_changes(kf_memstore *s, bool batches_only, int counts[NTXN + 1][4])
{
	const kf_memrec *recs, *ck;
	size_t nck = kf_memstore_read(s, "penstock.checkpoints", 0, true, &ck);
	static const char *const topics[] = {"app.public.items", "app.public.log"};

	memset(counts, 0, sizeof(int) * (NTXN + 1) * 4);
	for (size_t ti = 0; ti < 2; ti++)
		for (int p = 0; p < kf_memstore_partitions(s, topics[ti]); p++) {
			size_t n = kf_memstore_read(s, topics[ti], p, true, &recs);
			for (size_t i = 0; i < n; i++) {
				json_t *v, *after;
				bool kept = !batches_only;
				for (size_t j = 0; !kept && j < nck; j++)
					kept = ck[j].batch && recs[i].batch && strcmp(ck[j].batch, recs[i].batch) == 0;
				if (!kept || !recs[i].value)
					continue;
				v = rec_json(recs[i].value, recs[i].vlen);
				after = json_object_get(v, "after");
				counts[json_integer_value(json_object_get(after, "txn"))]
				      [json_integer_value(json_object_get(after, "idx"))]++;
				json_decref(v);
			}
		}
}

static void assert_exactly_once(kf_memstore *s, bool batches_only, const char *what)
{
	static int counts[NTXN + 1][4];

	count_changes(s, batches_only, counts);
	for (int t = 1; t <= NTXN; t++)
		for (int i = 1; i <= changes_of(t); i++)
			if (counts[t][i] != 1)
				fail_msg("%s: change %d.%d is in the topics %d times", what, t, i, counts[t][i]);
}

static void assert_at_least_once(kf_memstore *s, const char *what)
{
	static int counts[NTXN + 1][4];

	count_changes(s, false, counts);
	for (int t = 1; t <= NTXN; t++)
		for (int i = 1; i <= changes_of(t); i++)
			if (counts[t][i] < 1)
				fail_msg("%s: change %d.%d is missing", what, t, i);
}

/* A run stopped by fault (as by kill -9 when crash: its producer ends
 * nothing), then runs until everything is durable. */
static void fault_then_finish(const char *dir, const char *fault, bool crash, const char *delivery)
{
	int rc, tries = 0;

	kf_memstore_crash(g_store, crash);
	rc = run_once(dir, fault, delivery);
	kf_memstore_crash(g_store, false);
	assert_int_not_equal(rc, PS_OK);   /* the fault did fire */
	do {
		rc = run_once(dir, NULL, delivery);
	} while (rc != PS_OK && ++tries < 3);
	assert_int_equal(rc, PS_OK);
	assert_true(g_acked_max >= NTXN);
}

static void exactly_once_under(bool aborted_visible)
{
	static const char *const points[] = {
		"apply.batch.before_commit", "apply.batch.after_commit", "kafka.txn.before_commit",
		"source.read", "kafka.producer.fatal",
	};
	static const int hits[] = {1, 3, 7};
	char dir[] = "/tmp/penstock-kafka-XXXXXX", fault[96], what[160];

	assert_non_null(mkdtemp(dir));
	ps__plugin_set_tables_for_tests(test_syntaxes, test_sources, test_sinks);
	for (size_t p = 0; p < sizeof(points) / sizeof(points[0]); p++)
		for (size_t h = 0; h < sizeof(hits) / sizeof(hits[0]); h++)
			for (int crash = 0; crash < 2; crash++) {
				g_store = kf_memstore_new(aborted_visible, 3);
				kf_memstore_use(g_store);
				g_acked_max = 0;
				snprintf(fault, sizeof(fault), "%s:error@%d", points[p],
				         strcmp(points[p], "source.read") == 0 ? hits[h] * 97 : hits[h]);
				snprintf(what, sizeof(what), "%s%s%s", fault, crash ? " as kill -9" : "",
				         aborted_visible ? ", aborted records visible" : "");
				/* a fresh job each time: no checkpoint in the new store, none
				 * in the state directory (exactly once keeps it in Kafka) */
				fault_then_finish(dir, fault, crash, "exactly_once");
				if (aborted_visible) {
					assert_at_least_once(g_store, what);
					assert_exactly_once(g_store, true, what);
				} else {
					assert_exactly_once(g_store, false, what);
				}
				kf_memstore_free(g_store);
				g_store = NULL;
			}
	ps__plugin_set_tables_for_tests(NULL, NULL, NULL);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void test_exactly_once_read_committed(void **state)
{
	(void)state;
	exactly_once_under(false);
}

static void test_exactly_once_rule_for_the_mock(void **state)
{
	(void)state;
	exactly_once_under(true);
}

/* The gap, shown: under the mock's visibility a cut-off batch is read as if
 * committed, so a plain read_committed count finds duplicates there. */
static void test_mock_shows_aborted_batches(void **state)
{
	char dir[] = "/tmp/penstock-kafka-XXXXXX", cmd[128];
	static int counts[NTXN + 1][4];
	int dups = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	ps__plugin_set_tables_for_tests(test_syntaxes, test_sources, test_sinks);
	g_store = kf_memstore_new(true, 3);
	kf_memstore_use(g_store);
	g_acked_max = 0;
	fault_then_finish(dir, "apply.batch.before_commit:error@3", true, "exactly_once");
	count_changes(g_store, false, counts);
	for (int t = 1; t <= NTXN; t++)
		for (int i = 1; i <= changes_of(t); i++)
			dups += counts[t][i] > 1;
	assert_true(dups > 0);
	assert_exactly_once(g_store, true, "the batch rule");
	kf_memstore_free(g_store);
	g_store = NULL;
	ps__plugin_set_tables_for_tests(NULL, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* At least once: a cut-off run repeats, and what repeats is marked. */
static void test_at_least_once_marks_repeats(void **state)
{
	char dir[] = "/tmp/penstock-kafka-XXXXXX", cmd[128];
	const kf_memrec *recs;
	int repeats = 0, marked = 0;
	static int counts[NTXN + 1][4];

	(void)state;
	assert_non_null(mkdtemp(dir));
	ps__plugin_set_tables_for_tests(test_syntaxes, test_sources, test_sinks);
	g_store = kf_memstore_new(false, 3);
	kf_memstore_use(g_store);
	g_acked_max = 0;
	fault_then_finish(dir, "apply.batch.before_commit:error@2", false, "at_least_once");
	assert_at_least_once(g_store, "at least once");
	count_changes(g_store, false, counts);
	for (int t = 1; t <= NTXN; t++)
		for (int i = 1; i <= changes_of(t); i++)
			repeats += counts[t][i] > 1;
	for (int p = 0; p < kf_memstore_partitions(g_store, "app.public.items"); p++) {
		size_t n = kf_memstore_read(g_store, "app.public.items", p, true, &recs);
		for (size_t i = 0; i < n; i++)
			marked += recs[i].value && strstr(recs[i].value, "\"reprocessing\":true") != NULL;
	}
	assert_true(repeats > 0);
	assert_true(marked > 0);
	assert_int_equal(kf_memstore_partitions(g_store, "penstock.checkpoints"), 0);
	kf_memstore_free(g_store);
	g_store = NULL;
	ps__plugin_set_tables_for_tests(NULL, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decimal_bytes),
		cmocka_unit_test(test_events),
		cmocka_unit_test_setup_teardown(test_records, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_net_changes, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_split_topics, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_table_change, setup_store, teardown_store),
		cmocka_unit_test(test_mysql_source_block),
		cmocka_unit_test_setup_teardown(test_error_kinds, setup_store, teardown_store),
		cmocka_unit_test(test_exactly_once_read_committed),
		cmocka_unit_test(test_exactly_once_rule_for_the_mock),
		cmocka_unit_test(test_mock_shows_aborted_batches),
		cmocka_unit_test(test_at_least_once_marks_repeats),
	};

	ps_log_configure(getenv("TEST_VERBOSE") ? PS_LOG_INFO : PS_LOG_ERROR, PS_LOG_TEXT);
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	ps__kafka_set_log_for_tests(&ps__kafka_memlog);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
