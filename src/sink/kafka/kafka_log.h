/*
 * kafka_log.h — what the Kafka sink needs from a broker: a producer with
 * transactions and a read_committed reader of one partition, behind a small
 * interface.
 *
 * Two implementations:
 *   kafka_rdlog.c   librdkafka, against real brokers (or librdkafka's mock
 *                   cluster, whose 2.0.2 version keeps aborted messages
 *                   visible to read_committed readers);
 *   kafka_memlog.c  an in-memory log with Kafka's transaction semantics
 *                   (fencing by transactional id, the last stable offset,
 *                   aborted records invisible to read_committed readers),
 *                   so that the sink's recovery logic is proven in unit
 *                   tests where the mock cannot show it.
 *
 * The interface speaks in error kinds, the way librdkafka classifies them
 * (rd_kafka_error_is_retriable, _txn_requires_abort, _is_fatal); every
 * call that fails fills err with the broker's or client's own code
 * (ps_error_set_engine with "Kafka error") and returns its kind. What to do
 * about a kind is the sink's decision (kafka.c).
 *
 * Threads: one log is used by one thread (the sink's). Delivery reports
 * arrive through cfg->on_delivery during produce, poll and flush, on that
 * same thread.
 */
#ifndef PS_SINK_KAFKA_LOG_H
#define PS_SINK_KAFKA_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/error.h"

typedef enum kf_errkind {
	KF_OK = 0,
	KF_RETRIABLE,      /* the same call may simply be made again */
	KF_ABORTABLE,      /* the open transaction must be aborted; what it held
	                      is sent again from the checkpoint */
	KF_FATAL,          /* the producer is unusable: a new one must be built */
	KF_FENCED,         /* a newer producer took the transactional id */
	KF_PERMANENT       /* configuration, authorization, a refused record: an
	                      operator must act */
} kf_errkind;

/* What the sink asks for; borrowed for the duration of open. */
typedef struct kf_log_config {
	const char *brokers;              /* "host:port,host:port" */
	const char *transactional_id;     /* NULL: idempotent producer, no transactions */
	const char *client_id;
	const char *const *props;         /* further client settings as key, value,
	                                     key, value..., NULL-terminated (security) */
	int timeout_ms;                   /* init, commit, abort, metadata */
	int transaction_timeout_ms;
	size_t max_buffered_bytes;        /* producer queue bounds: bytes, */
	int max_buffered_messages;        /* and records (0: librdkafka's) */
	/* A message was delivered (err 0) or failed for good; bytes is key +
	 * value, latency_us from produce to acknowledgement. */
	void (*on_delivery)(void *opaque, int err, size_t bytes, int64_t latency_us);
	void *opaque;
} kf_log_config;

typedef struct kf_header {
	const char *name;
	const void *value;
	size_t len;
} kf_header;

typedef struct kf_log kf_log;

typedef struct kf_log_ops {
	const char *name;
	/* Builds a producer; with a transactional id, initialises transactions
	 * (fencing every older producer of that id and ending its open
	 * transaction) before returning. */
	kf_errkind (*open)(kf_log **out, const kf_log_config *cfg, ps_error *err);
	/* Makes sure topic exists: created with partitions (-1: the broker's
	 * default), replication (-1: default) and, when compacted,
	 * cleanup.policy=compact, where the broker takes CreateTopics; else left
	 * to the broker's automatic creation. *note says which, for the log. */
	kf_errkind (*ensure_topic)(kf_log *l, const char *topic, int partitions, int replication,
	                           bool compacted, char *note, size_t note_len, ps_error *err);
	kf_errkind (*begin)(kf_log *l, ps_error *err);
	/* Queues one record; partition -1: by key (murmur2_random, as a Java
	 * producer); value NULL: a tombstone. Blocks while the producer's queue
	 * is full, serving deliveries. */
	kf_errkind (*produce)(kf_log *l, const char *topic, int32_t partition, const void *key,
	                      size_t klen, const void *value, size_t vlen, const kf_header *headers,
	                      size_t nheaders, ps_error *err);
	/* Waits until every queued record is acknowledged or failed. */
	kf_errkind (*flush)(kf_log *l, ps_error *err);
	kf_errkind (*commit)(kf_log *l, ps_error *err);
	kf_errkind (*abort)(kf_log *l, ps_error *err);
	/* Serves delivery reports without waiting. */
	void (*poll)(kf_log *l);
	/* The value of the last record with this key in topic's partition, as
	 * a read_committed consumer sees the partition up to its end now; NULL
	 * (and *vlen 0) when there is none or it is a tombstone. *value is
	 * malloc'd, NUL-terminated. */
	kf_errkind (*read_last)(kf_log *l, const char *topic, int32_t partition, const void *key,
	                        size_t klen, char **value, size_t *vlen, ps_error *err);
	/* Turns the producer fatal, as librdkafka's own fatal errors do
	 * (the fault point kafka.producer.fatal). */
	void (*make_fatal)(kf_log *l, const char *reason);
	/* Frees the producer without ending an open transaction (a broker
	 * ends it: the next producer of the id, or the transaction timeout). */
	void (*close)(kf_log *l);
} kf_log_ops;

extern const kf_log_ops ps__kafka_rdlog;

/* The log the sink uses: librdkafka unless a test put another in place. */
const kf_log_ops *ps__kafka_log_ops(void);
/* Tests only: the in-memory log (NULL: librdkafka again). Not thread-safe. */
void ps__kafka_set_log_for_tests(const kf_log_ops *ops);

/* "Kafka error" engine codes and classes for librdkafka's error codes
 * (kafka_errors.c): the class a failure of this kind with this code gets. */
int ps__kafka_errclass(int rd_err, kf_errkind kind);
/* Fills err from a librdkafka error code and message, with its class;
 * returns kind. */
kf_errkind ps__kafka_error(ps_error *err, kf_errkind kind, int rd_err, const char *what,
                           const char *detail);

/* kafka_rdlog.c: whether a cluster's metadata names a controller among its
 * brokers (what CreateTopics needs; librdkafka's mock cluster names none). */
struct rd_kafka_metadata;
struct rd_kafka_s;
bool ps__kafka_has_controller(struct rd_kafka_s *rk, const struct rd_kafka_metadata *md,
                              int timeout_ms);

#endif
