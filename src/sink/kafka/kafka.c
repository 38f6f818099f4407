/*
 * kafka.c — the Kafka sink: Debezium's change events on Kafka topics,
 * exactly once (docs/kafka.md). The events themselves are kafka_event.c's.
 *
 * NOTES ON THE DESIGN
 *
 * Exactly once (delivery exactly_once), the way Kafka Connect does it:
 *  1. One transactional producer per job (transactional id penstock-<job>).
 *     open initialises transactions, which fences every older producer of
 *     the job and ends the transaction it left open; only then is the
 *     checkpoint read, read_committed, from the compacted checkpoint topic
 *     (key: the job's name, partition 0). The source restarts after it, so
 *     nothing it covers is produced again.
 *  2. A Kafka transaction opens at the first record after a commit and holds
 *     whole source transactions (the core's batch, sink.h) and, last, the
 *     checkpoint record naming their position; flush commits it. The core
 *     acknowledges the source only after flush returned, so the source
 *     keeps every change whose Kafka transaction did not commit.
 *  3. The checkpoint record is produced only once every record before it
 *     in the transaction was acknowledged (a flush inside the transaction).
 *     On a real broker this changes nothing (the transaction is atomic); on
 *     one that shows aborted records (librdkafka 2.0.2's mock) a visible
 *     checkpoint then never names changes missing from the topics.
 *  4. Errors by kind (kafka_log.h): a retriable commit is tried again until
 *     the transaction timeout; an abortable error aborts the transaction and
 *     ends the run, whose retry sends the batch again from the checkpoint; a
 *     fatal one ends the run and its retry builds a new producer (open);
 *     fenced is permanent and names its likely cause. After any of them the
 *     instance is broken: every call fails until close.
 *  5. Every record carries the header penstock.batch = "<producer>-<n>":
 *     which producer instance wrote it, in which of its transactions. The
 *     checkpoint record carries it too, so a reader can tell a committed
 *     batch's records from those of one that never committed where the
 *     broker cannot (the mock; tests/integration/test_kafka.py).
 *
 *  6. Net changes (target.changes "net", issue 21): the changes go into
 *     sink/netchg.c's store instead of the topics. The span is a bounded
 *     run's processing range, which the sink asks the core to hold to its
 *     end (sink.h range), or, for a run without a bound, what came since
 *     the last checkpoint. The store is drained (one event per key, each
 *     with its range) just before the checkpoint record (exactly once) or
 *     at flush (at least once), so a span is one Kafka transaction with
 *     its checkpoint, opened only when the span is drained: the
 *     transaction timeout bounds producing the net set, not the range. A
 *     run that dies first commits nothing of it, and the next run reads the
 *     range again. Heartbeats are not produced while changes are written
 *     (they would open the transaction early); idle ones still are.
 *
 * At least once (delivery at_least_once): an idempotent producer without
 * transactions; flush waits for every acknowledgement; the core keeps the
 * checkpoint in the state directory (checkpoint_kept says no) and marks what
 * a restart may repeat "reprocessing".
 *
 * States: ready ─► in_txn (records produced) ─► flush ─► ready; any error
 * ─► broken; close from any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/fault.h"
#include "sink/kafka/kafka_internal.h"
#include "util/clock.h"
#include "util/log.h"

#define RENDER_LIMIT ((size_t)64 << 20)
/* The producer's queue, bounded so that a huge source transaction streams
 * through in bounded memory: the core's own queue may hold 64 MiB of
 * changes already (pipeline.h), and 8 MiB of records is many round trips
 * of a fast link. */
#define PRODUCER_BUFFER ((size_t)8 << 20)
#define PRODUCER_MESSAGES 20000

extern const ps_url_syntax ps_kafka_url_syntax[];

/* --- errors (note 4) -------------------------------------------------------- */

static void append(ps_error *err, const char *text)
{
	size_t n = strlen(err->message);

	snprintf(err->message + n, sizeof(err->message) - n, "%s", text);
}

/* An error of kind kind is in err: ends what this producer can do. */
static int fail(ps_sink *k, kf_errkind kind, ps_error *err)
{
	ps_error ignored;
	char msg[PS_ERROR_MESSAGE_MAX];

	k->broken = true;
	switch (kind) {
	case KF_ABORTABLE:
	case KF_RETRIABLE:
	case KF_PERMANENT:
		if (k->in_txn) {
			ps_error_clear(&ignored);
			if (k->lops->abort(k->log, &ignored) == KF_OK) {
				k->txns_aborted++;
				append(err, "; the Kafka transaction was aborted, and the batch is sent again "
				            "from the checkpoint");
			} else {
				ps_log_warn("sink kafka: aborting the transaction failed too: %s",
				            ignored.message);
			}
			k->in_txn = false;
		}
		break;
	case KF_FATAL:
		append(err, "; the producer cannot go on: the run ends and the next one builds a new "
		            "producer, which sends the batch again from the checkpoint");
		break;
	case KF_FENCED:
		snprintf(msg, sizeof(msg),
		         "Kafka: this producer was fenced: a newer producer took transactional id '%s'. "
		         "Most likely another penstock is running job '%s' against these brokers, or "
		         "another job has the same target.transactional_id; stop the other one (or give "
		         "this job its own transactional_id), then `penstock job recover %s --strategy "
		         "retry` (%s)",
		         k->o.transactional_id, k->job, k->job, err->message);
		snprintf(err->message, sizeof(err->message), "%s", msg);
		k->in_txn = false;
		break;
	default:
		break;
	}
	return err->code ? err->code : PS_ERR;
}

static int broken(ps_sink *k, ps_error *err)
{
	return ps_error_set(err, PS_ERR, "the Kafka producer of job %s failed earlier in this run",
	                    k->job);
}

/* --- deliveries and figures ------------------------------------------------- */

static void on_delivery(void *opaque, int err, size_t bytes, int64_t latency_us)
{
	ps_sink *k = opaque;

	if (err) {
		k->delivery_failures++;
		return;
	}
	k->messages++;
	k->bytes += bytes;
	if (latency_us >= 0) {
		k->lat_sum_us += (uint64_t)latency_us;
		k->lat_n++;
		if ((uint64_t)latency_us > k->lat_max_us)
			k->lat_max_us = (uint64_t)latency_us;
	}
}

static void add_figure(json_t *o, const char *name, const char *type, double value,
                       const char *unit, const char *help)
{
	json_object_set_new(o, name, json_pack("{s:s, s:f, s:s, s:s}", "type", type, "value", value,
	                                       "unit", unit, "help", help));
}

static int kafka_figures(ps_sink *k, json_t **out, ps_error *err)
{
	json_t *o = json_object();

	if (!o)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (k->lat_n) {   /* a gauge over the deliveries since the last look */
		k->lat_avg_ms = (double)k->lat_sum_us / (double)k->lat_n / 1000.0;
		k->lat_max_ms = (double)k->lat_max_us / 1000.0;
		k->lat_sum_us = k->lat_n = k->lat_max_us = 0;
	}
	add_figure(o, "messages_produced", "counter", (double)k->messages, "",
	           "Records the brokers acknowledged (events, tombstones, checkpoints, metadata).");
	add_figure(o, "bytes_produced", "counter", (double)k->bytes, "bytes",
	           "Key and value bytes of the acknowledged records.");
	add_figure(o, "transactions_committed", "counter", (double)k->txns_committed, "",
	           "Kafka transactions committed.");
	add_figure(o, "transactions_aborted", "counter", (double)k->txns_aborted, "",
	           "Kafka transactions aborted (their batch is sent again from the checkpoint).");
	add_figure(o, "delivery_failures", "counter", (double)k->delivery_failures, "",
	           "Records the brokers refused for good.");
	add_figure(o, "delivery_latency_ms", "gauge", k->lat_avg_ms, "ms",
	           "Mean time from produce to acknowledgement, over the last moments.");
	add_figure(o, "delivery_latency_max_ms", "gauge", k->lat_max_ms, "ms",
	           "Longest time from produce to acknowledgement, over the last moments.");
	*out = o;
	return PS_OK;
}

/* --- producing --------------------------------------------------------------- */

static int topic_ok(ps_sink *k, const char *topic, int partitions, bool compacted, ps_error *err)
{
	char note[512], **more;
	kf_errkind kind;

	for (size_t i = 0; i < k->ntopics_ok; i++)
		if (strcmp(k->topics_ok[i], topic) == 0)
			return PS_OK;
	kind = k->lops->ensure_topic(k->log, topic, partitions, k->o.replication_factor, compacted,
	                             note, sizeof(note), err);
	if (kind != KF_OK)
		return fail(k, kind, err);
	if (note[0])
		ps_log_info("sink kafka: %s", note);
	more = realloc(k->topics_ok, (k->ntopics_ok + 1) * sizeof(*more));
	if (!more || !(more[k->ntopics_ok] = strdup(topic))) {
		if (more)
			k->topics_ok = more;
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	k->topics_ok = more;
	k->ntopics_ok++;
	return PS_OK;
}

static void batch_next(ps_sink *k)
{
	k->batch_no++;
	snprintf(k->batch, sizeof(k->batch), "%s-%llu", k->producer, (unsigned long long)k->batch_no);
}

int ps__kafka_produce(ps_sink *k, const char *topic, int32_t partition, const ps_buf *key,
                      const char *value, size_t vlen, const kf_header *extra, size_t nextra,
                      ps_error *err)
{
	kf_header h[4];
	kf_errkind kind;
	int rc;

	if (k->broken)
		return broken(k, err);
	rc = topic_ok(k, topic, strcmp(topic, k->o.checkpoint_topic) == 0 ? 1 : k->o.topic_partitions,
	              strcmp(topic, k->o.checkpoint_topic) == 0, err);
	if (rc != PS_OK)
		return rc;
	if (k->o.exactly_once && !k->in_txn) {
		kind = k->lops->begin(k->log, err);
		if (kind != KF_OK)
			return fail(k, kind, err);
		k->in_txn = true;
		batch_next(k);
	}
	h[0].name = KF_BATCH_HEADER;
	h[0].value = k->batch;
	h[0].len = strlen(k->batch);
	for (size_t i = 0; i < nextra && i < 3; i++)
		h[i + 1] = extra[i];
	kind = k->lops->produce(k->log, topic, partition, key && key->len ? key->data : NULL,
	                        key ? key->len : 0, value, value ? vlen : 0, h,
	                        1 + (nextra < 3 ? nextra : 3), err);
	if (kind != KF_OK) {
		ps_error_add_context(err, "topic %s", topic);
		return fail(k, kind, err);
	}
	return PS_OK;
}

/* --- open / close ------------------------------------------------------------ */

static void kafka_close(ps_sink *k)
{
	ps_error ignored;

	if (!k)
		return;
	if (k->log && k->in_txn && !k->broken) {
		/* a cut-off batch: end it now rather than at the transaction timeout */
		ps_error_clear(&ignored);
		if (k->lops->abort(k->log, &ignored) == KF_OK)
			k->txns_aborted++;
	}
	if (k->log)
		k->lops->close(k->log);
	ps_envelope_free(&k->env);
	ps_buf_free(&k->key);
	ps_buf_free(&k->val);
	ps_buf_free(&k->aux);
	ps_buf_free(&k->tail);
	ps_netchg_close(k->net);
	for (size_t i = 0; i < k->ntopics_ok; i++)
		free(k->topics_ok[i]);
	free(k->topics_ok);
	free(k->colls);
	ps_envelope_shapes_free(&k->shapes);
	free(k->job);
	ps__kafka_opts_free(&k->o);
	free(k);
}

static void producer_id(char *buf, size_t len)
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		uint64_t t = ps_now_ns() ^ ((uint64_t)getpid() << 32);
		memcpy(r, &t, sizeof(r));
	}
	snprintf(buf, len, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
	         r[6], r[7]);
}

static int kafka_open(ps_sink **out, const ps_sink_config *cfg, ps_error *err)
{
	ps_sink *k = calloc(1, sizeof(*k));
	kf_log_config lc;
	char client[160];
	kf_errkind kind;
	int rc;

	*out = NULL;
	if (!k)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_init(&k->key, RENDER_LIMIT);
	ps_buf_init(&k->val, RENDER_LIMIT);
	ps_buf_init(&k->aux, RENDER_LIMIT);
	ps_buf_init(&k->tail, RENDER_LIMIT);
	k->lops = ps__kafka_log_ops();
	rc = ps__kafka_opts_parse(&k->o, cfg, err);
	if (rc == PS_OK && !(k->job = strdup(cfg->job_name ? cfg->job_name : "")))
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == PS_OK)
		rc = ps_envelope_init(&k->env, cfg->connector, cfg->source_db, err);
	if (rc == PS_OK)
		rc = ps_envelope_set_style(&k->env, k->o.topic_prefix, k->o.schemas, k->o.decimals,
		                           k->o.placeholder, err);
	if (rc == PS_OK && k->o.net)
		rc = ps_netchg_open(&k->net, &k->o.net_opts, err);
	if (rc != PS_OK)
		goto cleanup;
	producer_id(k->producer, sizeof(k->producer));
	batch_next(k);
	snprintf(client, sizeof(client), "penstock-%s", k->job);
	memset(&lc, 0, sizeof(lc));
	lc.brokers = k->o.brokers;
	lc.transactional_id = k->o.exactly_once ? k->o.transactional_id : NULL;
	lc.client_id = client;
	lc.props = (const char *const *)k->o.props;
	lc.timeout_ms = k->o.timeout_ms;
	lc.transaction_timeout_ms = k->o.transaction_timeout_ms;
	lc.max_buffered_bytes = PRODUCER_BUFFER;
	lc.max_buffered_messages = PRODUCER_MESSAGES;
	lc.on_delivery = on_delivery;
	lc.opaque = k;
	kind = k->lops->open(&k->log, &lc, err);
	if (kind != KF_OK) {
		ps_error_add_context(err, "brokers %s", k->o.brokers);
		rc = err->code ? err->code : PS_ERR;
		goto cleanup;
	}
	if (k->o.exactly_once)
		rc = topic_ok(k, k->o.checkpoint_topic, 1, true, err);
	if (rc == PS_OK)
		ps_log_info("sink kafka: %s producer on %s, topics %s.<schema>.<table>%s%s%s",
		            k->o.exactly_once ? "transactional" : "idempotent", k->o.brokers,
		            k->o.topic_prefix, k->o.split ? ".<operation>" : "",
		            k->net ? ", net changes" : "",
		            k->o.exactly_once ? ", checkpoint in the checkpoint topic" : "");
cleanup:
	if (rc != PS_OK) {
		kafka_close(k);
		return rc;
	}
	*out = k;
	return PS_OK;
}

static bool kafka_checkpoint_kept(const ps_sink *k)
{
	return k->o.exactly_once;
}

/* --- transactions ------------------------------------------------------------ */

static int kafka_begin(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	if (k->broken)
		return broken(k, err);
	if (k->net) {
		int rc = ps_netchg_begin(k->net, err);
		if (rc != PS_OK)
			return rc;
	}
	return ps__kafka_txn_begin(k, txn);
}

static int kafka_write(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	ps_error fault;
	int rc;

	if (k->broken)
		return broken(k, err);
	ps_error_clear(&fault);
	if (ps_fault_hit("kafka.producer.fatal", &fault) != PS_OK) {
		ps_log_warn("sink kafka: the producer is made fatal as PENSTOCK_FAULT asks");
		k->lops->make_fatal(k->log, "injected by PENSTOCK_FAULT kafka.producer.fatal");
	}
	if (k->o.heartbeat_ms > 0 && !k->net &&
	    ps_now_ns() - k->last_heartbeat_ns >= (uint64_t)k->o.heartbeat_ms * 1000000ull) {
		rc = ps__kafka_heartbeat(k, err);
		if (rc != PS_OK)
			return rc;
	}
	if (c->op == PS_OP_READ && c->table) {
		rc = ps__kafka_shape_of_row(k, c, err);
		if (rc != PS_OK)
			return rc;
	}
	if (k->net && c->op != PS_OP_READ)
		return ps_netchg_add(k->net, txn, c, err);   /* note 6 */
	rc = ps__kafka_write_change(k, txn, c, err);
	if (!k->broken)
		k->lops->poll(k->log);
	return rc;
}

static int kafka_commit(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	if (k->broken)
		return broken(k, err);
	if (k->net) {
		int rc = ps_netchg_commit(k->net, err);
		if (rc != PS_OK)
			return rc;
		snprintf(k->last_commit, sizeof(k->last_commit), "%s", txn->position);
	}
	return ps__kafka_txn_end(k, txn, err);
}

/* --- net changes (note 6) ------------------------------------------------------ */

/* A bounded run's range is held to its end; a run without a bound gives
 * each checkpoint's span out, from where the last one ended. */
static int kafka_range(ps_sink *k, const char *from, const char *to, bool *hold, ps_error *err)
{
	(void)err;
	if (from)
		snprintf(k->range_from, sizeof(k->range_from), "%s", from);
	k->bounded = to != NULL;
	snprintf(k->range_to, sizeof(k->range_to), "%s", to ? to : "");
	*hold = k->net != NULL;
	return PS_OK;
}

static int emit_net(const ps_netchg_event *ev, void *payload, ps_error *err)
{
	ps_sink *k = payload;
	const char *to = k->bounded ? k->range_to : k->last_commit;
	int rc;

	ps_buf_reset(&k->tail);
	rc = ps_netchg_render_tail(&k->tail, ev, k->range_from, to);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "cannot render a net event's range");
	rc = ps__kafka_write_change(k, ev->txn, ev->change, err);
	ps_buf_reset(&k->tail);
	if (!k->broken)
		k->lops->poll(k->log);
	return rc;
}

/* Produces the span's net events; the next span begins where it ended. */
static int net_drain(ps_sink *k, ps_error *err)
{
	int rc = PS_OK;

	if (!k->net)
		return PS_OK;
	if (ps_netchg_count(k->net) > 0)
		rc = ps_netchg_drain(k->net, emit_net, k, err);
	if (rc == PS_OK && !k->bounded && k->last_commit[0])
		snprintf(k->range_from, sizeof(k->range_from), "%s", k->last_commit);
	return rc;
}

/* Commits the Kafka transaction (note 2), trying a retriable failure again
 * until the transaction timeout. */
static int commit_txn(ps_sink *k, ps_error *err)
{
	uint64_t deadline = ps_now_ns() + (uint64_t)k->o.transaction_timeout_ms * 1000000ull;
	kf_errkind kind;
	int rc;

	rc = ps_fault_hit("kafka.txn.before_commit", err);
	if (rc != PS_OK)
		return fail(k, KF_ABORTABLE, err);
	for (int tries = 1;; tries++) {
		kind = k->lops->commit(k->log, err);
		if (kind == KF_OK)
			break;
		if (kind != KF_RETRIABLE || ps_now_ns() >= deadline)
			return fail(k, kind, err);
		if (tries == 1)
			ps_log_warn("sink kafka: committing the transaction: %s; trying again",
			            err->message);
	}
	k->in_txn = false;
	k->txns_committed++;
	return PS_OK;
}

/* Everything produced made durable: committed (exactly once) or
 * acknowledged (at least once). */
static int flush_producer(ps_sink *k, ps_error *err)
{
	kf_errkind kind;

	if (!k->o.exactly_once) {
		kind = k->lops->flush(k->log, err);
		if (kind != KF_OK)
			return fail(k, kind, err);
		batch_next(k);
		return PS_OK;
	}
	return k->in_txn ? commit_txn(k, err) : PS_OK;
}

/* Exactly once, the span's net events were produced before the checkpoint
 * record (kafka_checkpoint_store); at least once they are produced here,
 * before the checkpoint goes to the state directory (note 6). */
static int kafka_flush(ps_sink *k, ps_error *err)
{
	int rc;

	if (k->broken)
		return broken(k, err);
	if (!k->o.exactly_once) {
		rc = net_drain(k, err);
		if (rc != PS_OK)
			return rc;
	}
	return flush_producer(k, err);
}

/* An idle log: only heartbeats, each committed at once. */
static int kafka_idle(ps_sink *k, ps_error *err)
{
	int rc;

	if (k->broken)
		return broken(k, err);
	if (k->o.heartbeat_ms <= 0 ||
	    ps_now_ns() - k->last_heartbeat_ns < (uint64_t)k->o.heartbeat_ms * 1000000ull)
		return PS_OK;
	rc = ps__kafka_heartbeat(k, err);
	/* not kafka_flush: a held range stays held (note 6) */
	return rc == PS_OK ? flush_producer(k, err) : rc;
}

/* --- the checkpoint (note 1) --------------------------------------------------- */

static int kafka_checkpoint_load(ps_sink *k, char **json, ps_error *err)
{
	size_t n = 0;
	kf_errkind kind;

	*json = NULL;
	kind = k->lops->read_last(k->log, k->o.checkpoint_topic, 0, k->job, strlen(k->job), json, &n,
	                          err);
	if (kind != KF_OK) {
		ps_error_add_context(err, "checkpoint topic %s", k->o.checkpoint_topic);
		return err->code ? err->code : PS_ERR;
	}
	return PS_OK;
}

static int job_key(ps_sink *k, ps_error *err)
{
	ps_buf_reset(&k->aux);
	if (ps_buf_append(&k->aux, k->job, strlen(k->job)) != 0)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	return PS_OK;
}

static int kafka_checkpoint_store(ps_sink *k, const char *json, ps_error *err)
{
	kf_errkind kind;
	int rc;

	if (k->broken)
		return broken(k, err);
	rc = net_drain(k, err);   /* note 6: the span, then its checkpoint */
	if (rc != PS_OK)
		return rc;
	if (k->in_txn) {   /* note 3 */
		kind = k->lops->flush(k->log, err);
		if (kind != KF_OK)
			return fail(k, kind, err);
	}
	rc = job_key(k, err);
	if (rc == PS_OK)
		rc = ps__kafka_produce(k, k->o.checkpoint_topic, 0, &k->aux, json, strlen(json), NULL, 0,
		                       err);
	return rc;
}

static int kafka_checkpoint_delete(ps_sink *k, ps_error *err)
{
	int rc;

	if (k->broken)
		return broken(k, err);
	rc = job_key(k, err);
	if (rc == PS_OK)
		rc = ps__kafka_produce(k, k->o.checkpoint_topic, 0, &k->aux, NULL, 0, NULL, 0, err);
	return rc;
}

/* --- engine state: what consumers were told of each table --------------------- */

static int kafka_state_save(ps_sink *k, char **json, ps_error *err)
{
	int rc = ps_envelope_shapes_save(&k->shapes, json);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

static int kafka_state_restore(ps_sink *k, const char *json, ps_error *err)
{
	int rc = ps_envelope_shapes_restore(&k->shapes, json);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

/* --- the plugin ----------------------------------------------------------------- */

static const char *const kafka_schemes[] = {"kafka", NULL};
static const char *const kafka_check_ids[] = {"target.topics", "target.checkpoint_topic", NULL};
/* kafka.txn.before_commit: the batch and the checkpoint record delivered,
 * the transaction not yet committed; kafka.producer.fatal: `error` makes
 * the producer fatal, as librdkafka's own fatal errors do. */
static const char *const kafka_fault_points[] = {"kafka.txn.before_commit",
                                                 "kafka.producer.fatal", NULL};

const ps_sink_ops ps_sink_kafka = {
	.abi_version = PS_SINK_ABI_VERSION,
	.name = "kafka",
	.url_schemes = kafka_schemes,
	.max_writers = 1,   /* one transactional producer per job */
	.options = ps__kafka_options,
	.check_ids = kafka_check_ids,
	.open = kafka_open,
	.begin = kafka_begin,
	.write = kafka_write,
	.commit = kafka_commit,
	.flush = kafka_flush,
	.checkpoint_load = kafka_checkpoint_load,
	.checkpoint_store = kafka_checkpoint_store,
	.checkpoint_delete = kafka_checkpoint_delete,
	.close = kafka_close,
	.precheck = ps__kafka_precheck,
	.table_prepare = ps__kafka_table_prepare,
	.state_save = kafka_state_save,
	.state_restore = kafka_state_restore,
	.table_change = ps__kafka_table_change,
	.checkpoint_kept = kafka_checkpoint_kept,
	.figures = kafka_figures,
	.idle = kafka_idle,
	.fault_points = kafka_fault_points,
	.range = kafka_range,
};
