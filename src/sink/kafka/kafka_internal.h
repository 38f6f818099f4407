/*
 * kafka_internal.h — what the files of the Kafka sink share: its options,
 * the sink instance, and the functions each file gives the others.
 *
 *   kafka.c           the ops: open, transactions, checkpoint, close
 *   kafka_event.c     a change as Debezium's records (topics, keys,
 *                     tombstones, key changes, transaction metadata,
 *                     heartbeats)
 *   kafka_options.c   the target's options, the URL, client settings
 *   kafka_precheck.c  prechecks
 *   kafka_log.h       the broker behind an interface (rdlog, memlog)
 */
#ifndef PS_SINK_KAFKA_INTERNAL_H
#define PS_SINK_KAFKA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "penstock/sink.h"
#include "sink/envelope.h"
#include "sink/kafka/kafka_log.h"
#include "sink/netchg.h"
#include "util/buf.h"

#define KF_DEFAULT_CHECKPOINT_TOPIC "penstock.checkpoints"
#define KF_BATCH_HEADER "penstock.batch"

/* The target's options as the sink uses them (kafka_options.c). */
typedef struct kf_opts {
	char *brokers;                /* the URL's host list */
	char *topic_prefix;           /* Debezium's topic.prefix */
	bool exactly_once;            /* delivery: exactly_once (transactions) */
	bool schemas;                 /* JSON converter with schemas */
	bool flatten;                 /* ExtractNewRecordState */
	bool tombstones;
	bool truncate_events;
	bool transaction_metadata;
	long long heartbeat_ms;       /* 0: none */
	int decimals;                 /* PS_DECIMAL_* */
	char *transactional_id;
	char *checkpoint_topic;
	int topic_partitions;         /* for topics penstock creates; -1: broker default */
	int replication_factor;       /* -1: broker default */
	int transaction_timeout_ms;
	int timeout_ms;
	char *placeholder;            /* unavailable (unchanged TOAST) value */
	char **props;                 /* client security settings: key, value, ...,
	                                 NULL; may hold the password: wiped on free */
	bool net;                     /* changes: net (kafka.c note 6) */
	ps_netchg_opts net_opts;
	bool split;                   /* split: operation, a topic per operation
	                                 (kafka_event.c) */
} kf_opts;

/* Parses the URL and the target's options into o; the password goes only
 * into o->props. Messages name the field. */
int ps__kafka_opts_parse(kf_opts *o, const ps_sink_config *cfg, ps_error *err);
void ps__kafka_opts_free(kf_opts *o);
extern const ps_option_def ps__kafka_options[];

/* Per table, what a source transaction wrote, for its END record. */
typedef struct kf_collection {
	char name[256];               /* "schema.table" */
	uint64_t count;
} kf_collection;

struct ps_sink {
	kf_opts o;
	char *job;
	const kf_log_ops *lops;
	kf_log *log;
	ps_envelope env;
	ps_buf key, val, aux;         /* rendering buffers, reused */
	char topic[512];

	/* the Kafka transaction (exactly once) */
	bool in_txn;
	bool broken;                  /* an error ended what this producer can do */
	char producer[20];            /* this producer's id in batch headers */
	uint64_t batch_no;
	char batch[48];               /* "<producer>-<batch_no>" */

	/* the source transaction being written */
	const ps_txn *txn;
	uint64_t txn_events;          /* events of it produced so far */
	char txn_id[64];              /* "<xid>:<lsn of its first event>" */
	kf_collection *colls;
	size_t ncolls, capcolls;

	/* topics made sure of in this run */
	char **topics_ok;
	size_t ntopics_ok;

	uint64_t last_heartbeat_ns;

	/* net changes (kafka.c note 6) */
	ps_netchg *net;               /* NULL: every change is produced as it comes */
	char range_from[PS_POSITION_MAX], range_to[PS_POSITION_MAX];
	bool bounded;                 /* range_to is a bounded run's end */
	char last_commit[PS_POSITION_MAX];
	ps_buf tail;                  /* the net event being produced: its extra
	                                 members (range, changed); empty otherwise */

	/* what consumers were told of each table's columns (schema changes) */
	ps_envelope_shapes shapes;
	const ps_table *last_r;       /* the table of the last initial-load row seen */

	/* figures (sink.h figures) */
	uint64_t messages, bytes, delivery_failures;
	uint64_t txns_committed, txns_aborted;
	uint64_t lat_sum_us, lat_n, lat_max_us;   /* since the last figures */
	double lat_avg_ms, lat_max_ms;
};

/* kafka.c: a record into the open Kafka transaction (opened when none is),
 * to topic (made sure of on first use), with the batch header and any
 * extra headers. value NULL: a tombstone. */
int ps__kafka_produce(ps_sink *k, const char *topic, int32_t partition, const ps_buf *key,
                      const char *value, size_t vlen, const kf_header *extra, size_t nextra,
                      ps_error *err);

/* kafka_event.c */
int ps__kafka_write_change(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err);
int ps__kafka_txn_begin(ps_sink *k, const ps_txn *txn);
int ps__kafka_txn_end(ps_sink *k, const ps_txn *txn, ps_error *err);
int ps__kafka_heartbeat(ps_sink *k, ps_error *err);
int ps__kafka_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                           const ps_table_options *opt, bool *backfill, ps_error *err);
int ps__kafka_table_prepare(ps_sink *k, const ps_table_def *def, const ps_table_options *opt,
                            bool *created, ps_error *err);
int ps__kafka_shape_of_row(ps_sink *k, const ps_change *c, ps_error *err);

/* kafka_precheck.c */
int ps__kafka_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                       const ps_check_tables *tables, ps_check_report *report, ps_error *err);

#endif
