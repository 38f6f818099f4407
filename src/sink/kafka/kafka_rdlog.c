/*
 * kafka_rdlog.c — the broker behind the Kafka sink, through librdkafka
 * (kafka_log.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. One producer per log: idempotent always (acks=all, in-order
 *     retries), transactional when the sink asks, partitioner
 *     murmur2_random (the Java producer's partition for a key).
 *  2. Errors are librdkafka's own kinds: a transactional call's
 *     rd_kafka_error_t says retriable / requires abort / fatal; a fatal
 *     error whose code is _FENCED means a newer producer holds the
 *     transactional id. A failed delivery inside a transaction makes it
 *     abortable (librdkafka refuses its commit); outside one it fails the
 *     next flush.
 *  3. read_last is a short-lived read_committed consumer assigned to the one
 *     partition from its start, reading to the end it can see (for
 *     read_committed, librdkafka reports the partition's end at the last
 *     stable offset): compacted topics stay small. The mock cluster of
 *     librdkafka 2.0.2 writes no transaction markers, so there aborted
 *     records read as committed (docs/kafka.md, "Testing").
 *  4. Topic existence is checked against one listing of the cluster's
 *     topics per log (Metadata for all topics never creates one); a topic
 *     missing there is created with CreateTopics, or, where the brokers do
 *     not take it, left to their automatic creation at the first record.
 *  5. No secret is logged: librdkafka's own log goes to our log at warning
 *     level and above, and its messages never hold the password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "sink/kafka/kafka_log.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

#define KF_ERRSTR 512

struct kf_log {
	rd_kafka_t *rk;
	bool transactional;
	int timeout_ms;
	char *brokers;
	char **props;                 /* copy of cfg->props (security), for readers */
	void (*on_delivery)(void *, int, size_t, int64_t);
	void *opaque;
	int delivery_err;             /* first failed delivery since the last flush */
	char **topics;                /* the cluster's topics, listed once (note 4) */
	size_t ntopics;
	bool listed;
	bool controller;              /* the metadata names a controller among the
	                                 brokers: CreateTopics can be sent */
};

/* Whether the brokers name a controller among themselves (librdkafka's
 * mock cluster does not: an admin request would wait for it in vain). */
bool ps__kafka_has_controller(rd_kafka_t *rk, const struct rd_kafka_metadata *md, int timeout_ms)
{
	int32_t id = rd_kafka_controllerid(rk, timeout_ms);

	for (int i = 0; id >= 0 && i < md->broker_cnt; i++)
		if (md->brokers[i].id == id)
			return true;
	return false;
}

/* --- errors (note 2) -------------------------------------------------------- */

static kf_errkind set_err(ps_error *err, kf_errkind kind, int code, const char *what,
                          const char *detail)
{
	return ps__kafka_error(err, kind, code, what, detail);
}

static kf_errkind txn_error(kf_log *l, rd_kafka_error_t *e, const char *what, ps_error *err)
{
	kf_errkind kind = KF_PERMANENT;
	int code = rd_kafka_error_code(e);
	char detail[KF_ERRSTR];

	snprintf(detail, sizeof(detail), "%s", rd_kafka_error_string(e));
	if (rd_kafka_error_is_fatal(e)) {
		char why[KF_ERRSTR] = "";
		int fatal = rd_kafka_fatal_error(l->rk, why, sizeof(why));
		if (fatal) {
			code = fatal;
			if (why[0])
				snprintf(detail, sizeof(detail), "%s", why);
		}
		kind = code == RD_KAFKA_RESP_ERR__FENCED ? KF_FENCED : KF_FATAL;
	} else if (rd_kafka_error_txn_requires_abort(e)) {
		kind = KF_ABORTABLE;
	} else if (rd_kafka_error_is_retriable(e)) {
		kind = KF_RETRIABLE;
	}
	rd_kafka_error_destroy(e);
	return set_err(err, kind, code, what, detail);
}

/* A producer that went fatal behind a call that only said "state". */
static kf_errkind fatal_check(kf_log *l, const char *what, ps_error *err)
{
	char why[KF_ERRSTR] = "";
	int fatal = rd_kafka_fatal_error(l->rk, why, sizeof(why));

	if (!fatal)
		return KF_OK;
	return set_err(err, fatal == RD_KAFKA_RESP_ERR__FENCED ? KF_FENCED : KF_FATAL, fatal, what,
	               why);
}

/* --- set-up ----------------------------------------------------------------- */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 3)
		ps_log_warn("kafka: %s: %s", fac, buf);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	kf_log *l = opaque;

	(void)rk;
	if (m->err && !l->delivery_err)
		l->delivery_err = m->err;
	if (l->on_delivery)
		l->on_delivery(l->opaque, m->err, m->len + m->key_len, rd_kafka_message_latency(m));
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, ps_error *err)
{
	char errstr[KF_ERRSTR];

	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
		return PS_OK;
	/* the value may be a secret: only the key and librdkafka's words */
	return ps_error_set(err, PS_EINVAL, "Kafka client setting %s refused: %s", k, errstr);
}

/* The settings every client of this log shares: brokers and security. */
static int conf_common(rd_kafka_conf_t *conf, const char *brokers, char **props, ps_error *err)
{
	int rc = conf_set(conf, "bootstrap.servers", brokers, err);

	for (size_t i = 0; rc == PS_OK && props && props[i] && props[i + 1]; i += 2)
		rc = conf_set(conf, props[i], props[i + 1], err);
	if (rc == PS_OK)
		rd_kafka_conf_set_log_cb(conf, log_cb);
	return rc;
}

static void free_props(char **props)
{
	for (size_t i = 0; props && props[i]; i++)
		ps_secret_free(props[i]);   /* a value may be the password */
	free(props);
}

static char **copy_props(const char *const *props)
{
	size_t n = 0;
	char **out;

	while (props && props[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		out[i] = strdup(props[i]);
		if (!out[i]) {
			free_props(out);
			return NULL;
		}
	}
	return out;
}

static void rd_close(kf_log *l)
{
	if (!l)
		return;
	if (l->rk) {
		/* nothing queued survives us: a broker ends an open transaction */
		rd_kafka_purge(l->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(l->rk, 0);
		rd_kafka_destroy(l->rk);
	}
	for (size_t i = 0; i < l->ntopics; i++)
		free(l->topics[i]);
	free(l->topics);
	free_props(l->props);
	free(l->brokers);
	free(l);
}

static kf_errkind rd_open(kf_log **out, const kf_log_config *cfg, ps_error *err)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[KF_ERRSTR], num[32];
	kf_log *l = calloc(1, sizeof(*l));
	rd_kafka_error_t *e;
	int rc;
	kf_errkind kind = KF_PERMANENT;
	int msg_timeout = cfg->transaction_timeout_ms < 300000 ? cfg->transaction_timeout_ms : 300000;

	*out = NULL;
	if (!l || !conf) {
		ps_error_set(err, PS_ENOMEM, "out of memory");
		goto fail;
	}
	l->transactional = cfg->transactional_id != NULL;
	l->timeout_ms = cfg->timeout_ms;
	l->on_delivery = cfg->on_delivery;
	l->opaque = cfg->opaque;
	l->brokers = strdup(cfg->brokers);
	l->props = copy_props(cfg->props);
	if (!l->brokers || !l->props) {
		ps_error_set(err, PS_ENOMEM, "out of memory");
		goto fail;
	}
	rc = conf_common(conf, cfg->brokers, l->props, err);
	if (rc == PS_OK && cfg->client_id)
		rc = conf_set(conf, "client.id", cfg->client_id, err);
	if (rc == PS_OK)
		rc = conf_set(conf, "enable.idempotence", "true", err);
	if (rc == PS_OK)
		rc = conf_set(conf, "partitioner", "murmur2_random", err);
	if (rc == PS_OK) {
		snprintf(num, sizeof(num), "%zu", cfg->max_buffered_bytes / 1024 ? cfg->max_buffered_bytes / 1024 : 1);
		rc = conf_set(conf, "queue.buffering.max.kbytes", num, err);
	}
	if (rc == PS_OK && cfg->max_buffered_messages > 0) {
		snprintf(num, sizeof(num), "%d", cfg->max_buffered_messages);
		rc = conf_set(conf, "queue.buffering.max.messages", num, err);
	}
	if (rc == PS_OK) {
		snprintf(num, sizeof(num), "%d", msg_timeout);
		rc = conf_set(conf, "message.timeout.ms", num, err);
	}
	if (rc == PS_OK && l->transactional) {
		snprintf(num, sizeof(num), "%d", cfg->transaction_timeout_ms);
		rc = conf_set(conf, "transaction.timeout.ms", num, err);
		if (rc == PS_OK)
			rc = conf_set(conf, "transactional.id", cfg->transactional_id, err);
	}
	if (rc != PS_OK)
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_opaque(conf, l);
	l->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!l->rk) {
		ps_error_set(err, PS_EINVAL, "cannot create the Kafka producer: %s", errstr);
		goto fail;
	}
	conf = NULL;   /* the producer owns it */
	if (l->transactional) {
		e = rd_kafka_init_transactions(l->rk, cfg->timeout_ms);
		if (e) {
			kind = txn_error(l, e, "initialising transactions", err);
			goto fail;
		}
	} else {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t me = rd_kafka_metadata(l->rk, 0, NULL, &md, cfg->timeout_ms);
		if (me) {
			kind = set_err(err, KF_RETRIABLE, me, "reaching the brokers", rd_kafka_err2str(me));
			goto fail;
		}
		rd_kafka_metadata_destroy(md);
	}
	*out = l;
	return KF_OK;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	rd_close(l);
	return kind;
}

/* --- topics (note 4) --------------------------------------------------------- */

static kf_errkind list_topics(kf_log *l, ps_error *err)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(l->rk, 1, NULL, &md, l->timeout_ms);

	if (e)
		return set_err(err, KF_RETRIABLE, e, "listing the cluster's topics", rd_kafka_err2str(e));
	l->topics = calloc((size_t)md->topic_cnt + 1, sizeof(*l->topics));
	for (int i = 0; l->topics && i < md->topic_cnt; i++)
		if (!md->topics[i].err && (l->topics[l->ntopics] = strdup(md->topics[i].topic)))
			l->ntopics++;
	l->controller = ps__kafka_has_controller(l->rk, md, l->timeout_ms);
	rd_kafka_metadata_destroy(md);
	if (!l->topics) {
		ps_error_set(err, PS_ENOMEM, "out of memory");
		return KF_PERMANENT;
	}
	l->listed = true;
	return KF_OK;
}

static bool topic_known(kf_log *l, const char *topic)
{
	for (size_t i = 0; i < l->ntopics; i++)
		if (strcmp(l->topics[i], topic) == 0)
			return true;
	return false;
}

static void topic_remember(kf_log *l, const char *topic)
{
	char **more = realloc(l->topics, (l->ntopics + 2) * sizeof(*more));

	if (!more)
		return;   /* only a later second look */
	l->topics = more;
	l->topics[l->ntopics] = strdup(topic);
	if (l->topics[l->ntopics])
		l->ntopics++;
}

static kf_errkind rd_ensure_topic(kf_log *l, const char *topic, int partitions, int replication,
                                  bool compacted, char *note, size_t note_len, ps_error *err)
{
	rd_kafka_NewTopic_t *nt = NULL;
	rd_kafka_AdminOptions_t *opt = NULL;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	char errstr[KF_ERRSTR];
	kf_errkind kind = KF_OK;
	int code = 0;
	const char *msg = NULL;

	if (note_len)
		note[0] = '\0';
	if (!l->listed && (kind = list_topics(l, err)) != KF_OK)
		return kind;
	if (topic_known(l, topic))
		return KF_OK;
	if (!l->controller) {
		snprintf(note, note_len,
		         "the brokers name no controller, so no topic can be created by request: topic "
		         "%s is left to their automatic creation%s", topic,
		         compacted ? ", with their default cleanup.policy: make it compact" : "");
		topic_remember(l, topic);
		return KF_OK;
	}
	nt = rd_kafka_NewTopic_new(topic, partitions, replication, errstr, sizeof(errstr));
	if (!nt) {
		ps_error_set(err, PS_EINVAL, "cannot create topic %s: %s", topic, errstr);
		return KF_PERMANENT;
	}
	if (compacted)
		rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
	opt = rd_kafka_AdminOptions_new(l->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(opt, l->timeout_ms, errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_operation_timeout(opt, l->timeout_ms, errstr, sizeof(errstr));
	q = rd_kafka_queue_new(l->rk);
	rd_kafka_CreateTopics(l->rk, &nt, 1, opt, q);
	ev = rd_kafka_queue_poll(q, l->timeout_ms + 1000);
	if (!ev) {
		code = RD_KAFKA_RESP_ERR__TIMED_OUT;
		msg = "no answer";
	} else if (rd_kafka_event_error(ev)) {
		code = rd_kafka_event_error(ev);
		msg = rd_kafka_event_error_string(ev);
	} else {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t n = 0;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
		if (n == 1 && rd_kafka_topic_result_error(tr[0])) {
			code = rd_kafka_topic_result_error(tr[0]);
			msg = rd_kafka_topic_result_error_string(tr[0]);
		}
	}
	if (code == 0) {
		snprintf(note, note_len, "created topic %s%s", topic, compacted ? " (compacted)" : "");
	} else if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
		code = 0;
	} else if (code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
	           code == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
	           code == RD_KAFKA_RESP_ERR_INVALID_REQUEST) {
		snprintf(note, note_len,
		         "the brokers do not take CreateTopics: topic %s is left to their automatic "
		         "creation%s", topic,
		         compacted ? ", with their default cleanup.policy: make it compact" : "");
		code = 0;
	} else {
		kind = set_err(err, KF_PERMANENT, code, "creating a topic", msg ? msg : "");
		ps_error_add_context(err, "topic %s", topic);
	}
	if (code == 0)
		topic_remember(l, topic);
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_NewTopic_destroy(nt);
	return kind;
}

/* --- producing ---------------------------------------------------------------- */

static kf_errkind rd_begin(kf_log *l, ps_error *err)
{
	rd_kafka_error_t *e = rd_kafka_begin_transaction(l->rk);

	return e ? txn_error(l, e, "beginning a transaction", err) : KF_OK;
}

static kf_errkind rd_produce(kf_log *l, const char *topic, int32_t partition, const void *key,
                             size_t klen, const void *value, size_t vlen,
                             const kf_header *headers, size_t nheaders, ps_error *err)
{
	rd_kafka_headers_t *hdrs = nheaders ? rd_kafka_headers_new(nheaders) : NULL;
	rd_kafka_resp_err_t e;

	for (size_t i = 0; i < nheaders; i++)
		rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value, (ssize_t)headers[i].len);
	for (;;) {
		if (hdrs)
			e = rd_kafka_producev(l->rk, RD_KAFKA_V_TOPIC(topic),
			                      RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
			                      RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
			                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
		else
			e = rd_kafka_producev(l->rk, RD_KAFKA_V_TOPIC(topic),
			                      RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
			                      RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
			                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(l->rk, 20);   /* bounded memory: wait for deliveries */
	}
	if (e) {
		kf_errkind kind;
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		kind = fatal_check(l, "producing", err);
		if (kind != KF_OK)
			return kind;
		return set_err(err, e == RD_KAFKA_RESP_ERR__STATE ? KF_ABORTABLE : KF_PERMANENT, e,
		               "producing", rd_kafka_err2str(e));
	}
	rd_kafka_poll(l->rk, 0);
	return KF_OK;
}

static kf_errkind rd_flush(kf_log *l, ps_error *err)
{
	uint64_t deadline = ps_now_ns() + (uint64_t)l->timeout_ms * 1000000ull;
	kf_errkind kind;
	int code;

	while (rd_kafka_outq_len(l->rk) > 0 && ps_now_ns() < deadline)
		rd_kafka_flush(l->rk, 100);
	kind = fatal_check(l, "delivering", err);
	if (kind != KF_OK)
		return kind;
	code = l->delivery_err;
	l->delivery_err = 0;
	if (code)
		/* in a transaction librdkafka also made it abortable (note 2) */
		return set_err(err, l->transactional ? KF_ABORTABLE : KF_RETRIABLE, code,
		               "delivering a record", rd_kafka_err2str(code));
	if (rd_kafka_outq_len(l->rk) > 0)
		return set_err(err, KF_RETRIABLE, RD_KAFKA_RESP_ERR__TIMED_OUT, "delivering",
		               "records still unacknowledged after the timeout");
	return KF_OK;
}

static kf_errkind rd_commit(kf_log *l, ps_error *err)
{
	rd_kafka_error_t *e = rd_kafka_commit_transaction(l->rk, l->timeout_ms);

	l->delivery_err = 0;
	return e ? txn_error(l, e, "committing the transaction", err) : KF_OK;
}

static kf_errkind rd_abort(kf_log *l, ps_error *err)
{
	rd_kafka_error_t *e = rd_kafka_abort_transaction(l->rk, l->timeout_ms);

	l->delivery_err = 0;
	return e ? txn_error(l, e, "aborting the transaction", err) : KF_OK;
}

static void rd_poll(kf_log *l)
{
	rd_kafka_poll(l->rk, 0);
}

static void rd_make_fatal(kf_log *l, const char *reason)
{
	rd_kafka_test_fatal_error(l->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason);
}

/* --- reading back (note 3) --------------------------------------------------- */

static kf_errkind rd_read_last(kf_log *l, const char *topic, int32_t partition, const void *key,
                               size_t klen, char **value, size_t *vlen, ps_error *err)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *c = NULL;
	rd_kafka_topic_partition_list_t *parts = NULL;
	char errstr[KF_ERRSTR];
	int64_t lo = 0, hi = 0;
	uint64_t deadline = ps_now_ns() + (uint64_t)l->timeout_ms * 1000000ull;
	kf_errkind kind = KF_OK;
	rd_kafka_resp_err_t e;
	bool eof = false;

	*value = NULL;
	*vlen = 0;
	if (conf_common(conf, l->brokers, l->props, err) != PS_OK ||
	    conf_set(conf, "isolation.level", "read_committed", err) != PS_OK ||
	    conf_set(conf, "enable.partition.eof", "true", err) != PS_OK ||
	    conf_set(conf, "enable.auto.commit", "false", err) != PS_OK ||
	    conf_set(conf, "group.id", "penstock-checkpoint-reader", err) != PS_OK) {
		rd_kafka_conf_destroy(conf);
		return KF_PERMANENT;
	}
	c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!c) {
		rd_kafka_conf_destroy(conf);
		ps_error_set(err, PS_EINVAL, "cannot create a Kafka consumer: %s", errstr);
		return KF_PERMANENT;
	}
	e = rd_kafka_query_watermark_offsets(c, topic, partition, &lo, &hi, l->timeout_ms);
	if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		goto cleanup;   /* no topic yet (left to automatic creation): no checkpoint */
	if (e) {
		kind = set_err(err, KF_RETRIABLE, e, "reading the checkpoint topic's offsets",
		               rd_kafka_err2str(e));
		goto cleanup;
	}
	if (hi <= lo)
		goto cleanup;   /* empty: no checkpoint */
	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = lo;
	e = rd_kafka_assign(c, parts);
	if (e) {
		kind = set_err(err, KF_RETRIABLE, e, "reading the checkpoint topic", rd_kafka_err2str(e));
		goto cleanup;
	}
	while (!eof) {
		rd_kafka_message_t *m;

		if (ps_now_ns() > deadline) {
			kind = set_err(err, KF_RETRIABLE, RD_KAFKA_RESP_ERR__TIMED_OUT,
			               "reading the checkpoint topic", "its end was not reached in time");
			break;
		}
		m = rd_kafka_consumer_poll(c, 100);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			eof = true;
		} else if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT) {
				kind = set_err(err, KF_RETRIABLE, m->err, "reading the checkpoint topic",
				               rd_kafka_message_errstr(m));
				rd_kafka_message_destroy(m);
				break;
			}
		} else if (m->key_len == klen && memcmp(m->key, key, klen) == 0) {
			free(*value);
			*value = NULL;
			*vlen = 0;
			if (m->payload) {
				*value = malloc(m->len + 1);
				if (*value) {
					memcpy(*value, m->payload, m->len);
					(*value)[m->len] = '\0';
					*vlen = m->len;
				}
			}
		}
		rd_kafka_message_destroy(m);
	}
cleanup:
	if (kind != KF_OK) {
		free(*value);
		*value = NULL;
		*vlen = 0;
	}
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return kind;
}

const kf_log_ops ps__kafka_rdlog = {
	.name = "librdkafka",
	.open = rd_open,
	.ensure_topic = rd_ensure_topic,
	.begin = rd_begin,
	.produce = rd_produce,
	.flush = rd_flush,
	.commit = rd_commit,
	.abort = rd_abort,
	.poll = rd_poll,
	.read_last = rd_read_last,
	.make_fatal = rd_make_fatal,
	.close = rd_close,
};

/* --- which log ------------------------------------------------------------------ */

static const kf_log_ops *g_log_ops = &ps__kafka_rdlog;

const kf_log_ops *ps__kafka_log_ops(void)
{
	return g_log_ops;
}

void ps__kafka_set_log_for_tests(const kf_log_ops *ops)
{
	g_log_ops = ops ? ops : &ps__kafka_rdlog;
}
