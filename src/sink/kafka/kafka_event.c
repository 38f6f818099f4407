/*
 * kafka_event.c — a change as the records a Debezium consumer reads
 * (docs/kafka.md has an example of each):
 *
 *   insert, load row   <prefix>.<schema>.<table>: key, value (op c / r)
 *   update             key, value (op u); when the key changed: a delete
 *                      (op d, header __debezium.newkey) and a tombstone
 *                      under the old key, then a create (op c, header
 *                      __debezium.oldkey) under the new one
 *   delete             key, value (op d), then a tombstone (key, null)
 *                      unless target.tombstones is false
 *   truncate           null key, value (op t), with target.truncate_events
 *   logical message    <prefix>.message: key {"prefix"}, value (op m)
 *   transaction        <prefix>.transaction: BEGIN before the first event of
 *                      a source transaction, END after its last, and a
 *                      transaction block in each event
 *                      (target.transaction_metadata)
 *   heartbeat          __debezium-heartbeat.<prefix>: key {"serverName"},
 *                      value {"ts_ms"} (target.heartbeat_interval_ms)
 *
 * With target.flatten the value is the flattened row (envelope.h) and
 * truncate events are dropped, as ExtractNewRecordState does.
 *
 * With target.split "operation" a table's events go to a topic per
 * operation: <prefix>.<schema>.<table>.insert (op c, the create half of a
 * key change included), .update, .delete (with its tombstone), .load (op r)
 * and .truncate. Messages, transaction records and heartbeats keep their
 * topics. Each of those events carries the header penstock.position: its
 * source transaction's place in the commit order, to merge topics by
 * (with source.lsn within a transaction).
 *
 * A net event (target.changes "net", kafka.c note 6) is rendered like any
 * other, with the members sink/netchg.c gives it ("range", and "changed"
 * under update_mask) last in its payload.
 *
 * A table's definition changes (issue 15): its key, value and flattened
 * schemas are rendered once per definition (envelope_dbz.c note 1), so the
 * first event that carries new columns carries the new schemas and fields,
 * and no record announces the change: Debezium's PostgreSQL connector does
 * the same (it has no schema-change topic). What consumers were told of
 * each table is kept in the sink's engine state, as JSON lines keeps it, so
 * that when they cannot tell the values older rows now hold (a column
 * added with a value only the source knows, a type changed) the rows come
 * again as read events (a backfill).
 *
 * Records without a key go to a partition of the producer's choosing; keyed
 * ones to murmur2(key) modulo the topic's partitions, as a Java producer.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sink/kafka/kafka_internal.h"
#include "util/clock.h"
#include "util/json.h"

static const char TXN_KEY_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"id\"}],"
	"\"optional\":false,\"name\":\"io.debezium.connector.common.TransactionMetadataKey\","
	"\"version\":1}";
static const char TXN_VALUE_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":["
	"{\"type\":\"string\",\"optional\":false,\"field\":\"status\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"event_count\"},"
	"{\"type\":\"array\",\"items\":{\"type\":\"struct\",\"fields\":["
	"{\"type\":\"string\",\"optional\":false,\"field\":\"data_collection\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"event_count\"}],"
	"\"optional\":false,\"name\":\"event.collection\",\"version\":1},"
	"\"optional\":true,\"field\":\"data_collections\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"}],"
	"\"optional\":false,\"name\":\"io.debezium.connector.common.TransactionMetadataValue\","
	"\"version\":1}";
static const char HEARTBEAT_KEY_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,"
	"\"field\":\"serverName\"}],\"optional\":false,"
	"\"name\":\"io.debezium.connector.common.ServerNameKey\",\"version\":1}";
static const char HEARTBEAT_VALUE_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":[{\"type\":\"int64\",\"optional\":false,"
	"\"field\":\"ts_ms\"}],\"optional\":false,"
	"\"name\":\"io.debezium.connector.common.Heartbeat\",\"version\":1}";
static const char MESSAGE_KEY_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":true,"
	"\"field\":\"prefix\"}],\"optional\":false,"
	"\"name\":\"io.debezium.connector.postgresql.MessageKey\"}";

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int oom(ps_error *err)
{
	return ps_error_set(err, PS_ENOMEM, "out of memory rendering a Kafka record");
}

/* {"schema":<schema>,"payload":<payload>}, or the payload alone. */
static int wrap_open(ps_sink *k, ps_buf *b, const char *schema)
{
	if (!k->o.schemas)
		return 0;
	return ps_buf_puts(b, "{\"schema\":") || ps_buf_puts(b, schema) ||
	       ps_buf_puts(b, ",\"payload\":");
}

static int wrap_close(ps_sink *k, ps_buf *b)
{
	return k->o.schemas ? ps_buf_putc(b, '}') : 0;
}

static int set_topic(ps_sink *k, const char *suffix_a, const char *suffix_b)
{
	int n = snprintf(k->topic, sizeof(k->topic), "%s%s%s", suffix_a, suffix_b ? "." : "",
	                 suffix_b ? suffix_b : "");
	return n > 0 && (size_t)n < sizeof(k->topic) ? PS_OK : PS_ETOOBIG;
}

/* The topic's last part for an event of op under split (NULL: none). */
static const char *op_topic(const ps_sink *k, char op)
{
	if (!k->o.split)
		return NULL;
	switch (op) {
	case PS_OP_INSERT: return "insert";
	case PS_OP_UPDATE: return "update";
	case PS_OP_DELETE: return "delete";
	case PS_OP_READ: return "load";
	default: return "truncate";
	}
}

static int table_topic(ps_sink *k, ps_table *t, char op, ps_error *err)
{
	const char *part, *kind = op_topic(k, op);
	char name[512];
	int rc = ps_envelope_topic_part(&k->env, t, &part, err);

	if (rc != PS_OK)
		return rc;
	snprintf(name, sizeof(name), "%s%s%s", part, kind ? "." : "", kind ? kind : "");
	if (set_topic(k, k->o.topic_prefix, name) != PS_OK || strlen(k->topic) > 249)
		return ps_error_set(err, PS_EINVAL, "topic name %s.%s is too long (Kafka takes 249 "
		                    "characters)", k->o.topic_prefix, name);
	return PS_OK;
}

/* A net event's members (k->tail) go last in the value's payload, before
 * its closing brace (and the wrapper's, with schemas). */
static int add_tail(ps_sink *k, ps_error *err)
{
	size_t closing = k->o.schemas ? 2 : 1;

	if (k->tail.len == 0)
		return PS_OK;
	if (k->val.len < closing || k->val.data[k->val.len - 1] != '}' ||
	    (closing == 2 && k->val.data[k->val.len - 2] != '}'))
		return ps_error_set(err, PS_EINVAL, "a net event's value does not end as a JSON object");
	k->val.len -= closing;
	if (ps_buf_append(&k->val, k->tail.data, k->tail.len) != 0 ||
	    ps_buf_append(&k->val, "}}", closing) != 0)
		return oom(err);
	return PS_OK;
}

/* --- transaction metadata ------------------------------------------------------ */

int ps__kafka_txn_begin(ps_sink *k, const ps_txn *txn)
{
	k->txn = txn;
	k->txn_events = 0;
	k->ncolls = 0;
	k->txn_id[0] = '\0';
	return PS_OK;
}

/* The BEGIN or END record of the source transaction. */
static int txn_record(ps_sink *k, bool end, int64_t commit_us, ps_error *err)
{
	int rc = 0;
	char topic[512];

	snprintf(topic, sizeof(topic), "%s.transaction", k->o.topic_prefix);
	ps_buf_reset(&k->aux);
	rc |= wrap_open(k, &k->aux, TXN_KEY_SCHEMA);
	rc |= ps_buf_puts(&k->aux, "{\"id\":");
	rc |= ps_json_append_string(&k->aux, k->txn_id, strlen(k->txn_id));
	rc |= ps_buf_putc(&k->aux, '}');
	rc |= wrap_close(k, &k->aux);
	ps_buf_reset(&k->val);
	rc |= wrap_open(k, &k->val, TXN_VALUE_SCHEMA);
	rc |= ps_buf_printf(&k->val, "{\"status\":\"%s\",\"id\":", end ? "END" : "BEGIN");
	rc |= ps_json_append_string(&k->val, k->txn_id, strlen(k->txn_id));
	if (end) {
		rc |= ps_buf_printf(&k->val, ",\"event_count\":%llu,\"data_collections\":[",
		                    (unsigned long long)k->txn_events);
		for (size_t i = 0; i < k->ncolls; i++) {
			rc |= ps_buf_puts(&k->val, i ? ",{\"data_collection\":" : "{\"data_collection\":");
			rc |= ps_json_append_string(&k->val, k->colls[i].name, strlen(k->colls[i].name));
			rc |= ps_buf_printf(&k->val, ",\"event_count\":%llu}",
			                    (unsigned long long)k->colls[i].count);
		}
		rc |= ps_buf_putc(&k->val, ']');
	} else {
		rc |= ps_buf_puts(&k->val, ",\"event_count\":null,\"data_collections\":null");
	}
	rc |= ps_buf_printf(&k->val, ",\"ts_ms\":%lld}", (long long)(commit_us / 1000));
	rc |= wrap_close(k, &k->val);
	if (rc)
		return oom(err);
	return ps__kafka_produce(k, topic, -1, &k->aux, k->val.data, k->val.len, NULL, 0, err);
}

/* The transaction block of c's event, after the BEGIN record when c is the
 * transaction's first event; tx NULL when metadata is off. */
static int txn_block(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_event_txn *tx,
                     ps_event_txn **out, ps_error *err)
{
	kf_collection *coll = NULL;
	char name[256];
	int rc;

	*out = NULL;
	if (!k->o.transaction_metadata || !c->table || c->op == PS_OP_READ)
		return PS_OK;   /* load rows belong to no source transaction */
	if (k->txn_events == 0) {
		snprintf(k->txn_id, sizeof(k->txn_id), "%llu:%llu",
		         (unsigned long long)(txn ? txn->xid : 0), (unsigned long long)c->lsn);
		rc = txn_record(k, false, txn ? txn->commit_time_us : 0, err);
		if (rc != PS_OK)
			return rc;
	}
	snprintf(name, sizeof(name), "%s.%s", c->table->schema ? c->table->schema : "",
	         c->table->name ? c->table->name : "");
	for (size_t i = 0; i < k->ncolls && !coll; i++)
		if (strcmp(k->colls[i].name, name) == 0)
			coll = &k->colls[i];
	if (!coll) {
		if (k->ncolls == k->capcolls) {
			size_t cap = k->capcolls ? k->capcolls * 2 : 8;
			kf_collection *more = realloc(k->colls, cap * sizeof(*more));
			if (!more)
				return oom(err);
			k->colls = more;
			k->capcolls = cap;
		}
		coll = &k->colls[k->ncolls++];
		snprintf(coll->name, sizeof(coll->name), "%s", name);
		coll->count = 0;
	}
	tx->id = k->txn_id;
	tx->total_order = ++k->txn_events;
	tx->collection_order = ++coll->count;
	*out = tx;
	return PS_OK;
}

int ps__kafka_txn_end(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	int rc = PS_OK;

	if (k->o.transaction_metadata && k->txn_events > 0)
		rc = txn_record(k, true, txn ? txn->commit_time_us : 0, err);
	k->txn_events = 0;
	k->ncolls = 0;
	k->txn = NULL;
	return rc;
}

/* --- heartbeats ------------------------------------------------------------------- */

int ps__kafka_heartbeat(ps_sink *k, ps_error *err)
{
	char topic[512];
	int rc = 0;

	k->last_heartbeat_ns = ps_now_ns();
	snprintf(topic, sizeof(topic), "__debezium-heartbeat.%s", k->o.topic_prefix);
	ps_buf_reset(&k->aux);
	rc |= wrap_open(k, &k->aux, HEARTBEAT_KEY_SCHEMA);
	rc |= ps_buf_puts(&k->aux, "{\"serverName\":");
	rc |= ps_json_append_string(&k->aux, k->o.topic_prefix, strlen(k->o.topic_prefix));
	rc |= ps_buf_putc(&k->aux, '}');
	rc |= wrap_close(k, &k->aux);
	ps_buf_reset(&k->val);
	rc |= wrap_open(k, &k->val, HEARTBEAT_VALUE_SCHEMA);
	rc |= ps_buf_printf(&k->val, "{\"ts_ms\":%lld}", (long long)(wall_us() / 1000));
	rc |= wrap_close(k, &k->val);
	if (rc)
		return oom(err);
	return ps__kafka_produce(k, topic, -1, &k->aux, k->val.data, k->val.len, NULL, 0, err);
}

/* --- change events ------------------------------------------------------------------ */

/* One event of c rendered as op, under key (NULL or empty: a null key). */
static int emit(ps_sink *k, const ps_txn *txn, const ps_change *c, char op, const ps_buf *key,
                const kf_header *extra, size_t nextra, ps_error *err)
{
	ps_event_txn txbuf, *tx = NULL;
	kf_header h[3];
	int rc = txn_block(k, txn, c, &txbuf, &tx, err);

	if (rc != PS_OK)
		return rc;
	rc = table_topic(k, c->table, op, err);
	if (rc != PS_OK)
		return rc;
	ps_buf_reset(&k->val);
	if (k->o.flatten)
		rc = ps_envelope_flat(&k->env, &k->val, txn, c, op, err);
	else
		rc = ps_envelope_value(&k->env, &k->val, txn, c, op, tx, wall_us(), err);
	if (rc == PS_OK)
		rc = add_tail(k, err);
	if (rc != PS_OK)
		return rc;
	if (k->o.split && txn && txn->position[0] && nextra < 3) {
		for (size_t i = 0; i < nextra; i++)
			h[i] = extra[i];
		h[nextra].name = "penstock.position";
		h[nextra].value = txn->position;
		h[nextra].len = strlen(txn->position);
		extra = h;
		nextra++;
	}
	return ps__kafka_produce(k, k->topic, -1, key, k->val.data, k->val.len, extra, nextra, err);
}

static int tombstone(ps_sink *k, const ps_buf *key, ps_error *err)
{
	if (!k->o.tombstones || !key || key->len == 0)
		return PS_OK;   /* a null key has nothing to forget */
	return ps__kafka_produce(k, k->topic, -1, key, NULL, 0, NULL, 0, err);
}

/* The key of t's row vals into b (left empty when the table has none). */
static int render_key(ps_sink *k, ps_buf *b, ps_table *t, const ps_value *vals, ps_error *err)
{
	bool has_key = false;

	ps_buf_reset(b);
	if (!vals)
		return PS_OK;
	return ps_envelope_key(&k->env, b, t, vals, &has_key, err);
}

static int update(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	kf_header h;
	int rc = render_key(k, &k->key, c->table, c->new_values, err);

	if (rc == PS_OK && c->old_values && k->key.len)
		rc = render_key(k, &k->aux, c->table, c->old_values, err);
	if (rc != PS_OK)
		return rc;
	if (!c->old_values || !k->key.len || k->aux.len == 0 ||
	    (k->aux.len == k->key.len && memcmp(k->aux.data, k->key.data, k->key.len) == 0))
		return emit(k, txn, c, PS_OP_UPDATE, &k->key, NULL, 0, err);
	/* the key changed: delete + tombstone under the old key, create under
	 * the new one, as Debezium does (emit reuses aux only for metadata,
	 * which comes before: keep the old key apart) */
	{
		ps_buf old;
		ps_buf_init(&old, k->aux.len + 1);
		if (ps_buf_append(&old, k->aux.data, k->aux.len) != 0) {
			ps_buf_free(&old);
			return oom(err);
		}
		h.name = "__debezium.newkey";
		h.value = k->key.data;
		h.len = k->key.len;
		rc = emit(k, txn, c, PS_OP_DELETE, &old, &h, 1, err);
		if (rc == PS_OK)
			rc = tombstone(k, &old, err);
		h.name = "__debezium.oldkey";
		h.value = old.data;
		h.len = old.len;
		if (rc == PS_OK)
			rc = emit(k, txn, c, PS_OP_INSERT, &k->key, &h, 1, err);
		ps_buf_free(&old);
	}
	return rc;
}

static int message(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	const char *prefix = c->message_prefix ? c->message_prefix : "";
	int rc = 0;

	if (set_topic(k, k->o.topic_prefix, "message") != PS_OK)
		return ps_error_set(err, PS_EINVAL, "topic name %s.message is too long",
		                    k->o.topic_prefix);
	ps_buf_reset(&k->key);
	rc |= wrap_open(k, &k->key, MESSAGE_KEY_SCHEMA);
	rc |= ps_buf_puts(&k->key, "{\"prefix\":");
	rc |= ps_json_append_string(&k->key, prefix, strlen(prefix));
	rc |= ps_buf_putc(&k->key, '}');
	rc |= wrap_close(k, &k->key);
	if (rc)
		return oom(err);
	ps_buf_reset(&k->val);
	rc = ps_envelope_value(&k->env, &k->val, txn, c, PS_OP_MESSAGE, NULL, wall_us(), err);
	if (rc == PS_OK)
		rc = add_tail(k, err);
	if (rc != PS_OK)
		return rc;
	return ps__kafka_produce(k, k->topic, -1, &k->key, k->val.data, k->val.len, NULL, 0, err);
}

int ps__kafka_write_change(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	int rc;

	switch (c->op) {
	case PS_OP_INSERT:
	case PS_OP_READ:
		rc = render_key(k, &k->key, c->table, c->new_values, err);
		return rc == PS_OK ? emit(k, txn, c, (char)c->op, &k->key, NULL, 0, err) : rc;
	case PS_OP_UPDATE:
		return update(k, txn, c, err);
	case PS_OP_DELETE:
		rc = render_key(k, &k->key, c->table, c->old_values, err);
		if (rc == PS_OK)
			rc = emit(k, txn, c, PS_OP_DELETE, &k->key, NULL, 0, err);
		return rc == PS_OK ? tombstone(k, &k->key, err) : rc;
	case PS_OP_TRUNCATE:
		if (!k->o.truncate_events || k->o.flatten)
			return PS_OK;
		return emit(k, txn, c, PS_OP_TRUNCATE, NULL, NULL, 0, err);
	case PS_OP_MESSAGE:
		return message(k, txn, c, err);
	default:
		return ps_error_set(err, PS_EINVAL, "unknown change op %u at lsn %llu", (unsigned)c->op,
		                    (unsigned long long)c->lsn);
	}
}

/* --- schema changes ----------------------------------------------------------------- */

int ps__kafka_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                           const ps_table_options *opt, bool *backfill, ps_error *err)
{
	const ps_table *t = tc->table;
	ps_envelope_shape *known = ps_envelope_shapes_find(&k->shapes, t->schema, t->name);
	ps_envelope_shape now;
	int rc;

	(void)txn;
	(void)opt;
	*backfill = false;
	rc = ps_envelope_shape_of(&now, t, tc->def);
	if (rc == PS_OK && known && !ps_envelope_shape_equal(known, &now))
		*backfill = ps_envelope_shape_needs_rows(known, &now, tc->def);
	if (rc == PS_OK)
		rc = ps_envelope_shapes_keep(&k->shapes, t->schema, t->name, &now);
	ps_envelope_shape_clear(&now);
	return rc == PS_OK ? PS_OK : oom(err);
}

/* A table about to be loaded or backfilled: its columns as the source
 * described them are what consumers will know. Creates nothing: topics are
 * made when first written to. */
int ps__kafka_table_prepare(ps_sink *k, const ps_table_def *def, const ps_table_options *opt,
                            bool *created, ps_error *err)
{
	ps_envelope_shape sh;
	int rc;

	(void)opt;
	*created = false;
	rc = ps_envelope_shape_of(&sh, def->table, def);
	if (rc == PS_OK)
		rc = ps_envelope_shapes_keep(&k->shapes, def->table->schema, def->table->name, &sh);
	ps_envelope_shape_clear(&sh);
	return rc == PS_OK ? PS_OK : oom(err);
}

/* An initial-load row: its table's columns are what consumers know, when
 * nothing was known of them yet. */
int ps__kafka_shape_of_row(ps_sink *k, const ps_change *c, ps_error *err)
{
	ps_envelope_shape sh;
	int rc;

	if (c->table == k->last_r)
		return PS_OK;
	k->last_r = c->table;
	if (ps_envelope_shapes_find(&k->shapes, c->table->schema, c->table->name))
		return PS_OK;
	rc = ps_envelope_shape_of(&sh, c->table, NULL);
	if (rc == PS_OK)
		rc = ps_envelope_shapes_keep(&k->shapes, c->table->schema, c->table->name, &sh);
	ps_envelope_shape_clear(&sh);
	return rc == PS_OK ? PS_OK : oom(err);
}
