/*
 * kafka_memlog.h — an in-memory Kafka cluster with real transaction
 * semantics, behind the Kafka sink's log interface (kafka_log.h), for
 * tests: the sink's exactly-once recovery is proven against it, where
 * librdkafka 2.0.2's mock cluster cannot show it (aborted records stay
 * visible there, and a second producer of a transactional id does not
 * fence the first).
 *
 * What it models, as Kafka does (KIP-98):
 *   - partitions are append-only logs of records; each record of a
 *     transaction is open until its producer commits or aborts it;
 *   - a read_committed reader sees a partition up to its last stable
 *     offset (the first record of a still open transaction) and never an
 *     aborted record;
 *   - opening a producer with a transactional id bumps the id's epoch,
 *     aborts the transaction the previous producer left open, and fences
 *     it: every later call of the previous producer fails with KF_FENCED;
 *   - a killed producer (kf_memstore_crash) ends nothing: its open
 *     transaction stays open until the next producer of its id.
 * With aborted_visible the store reads like the 2.0.2 mock instead: every
 * record is visible to read_committed readers, aborted or open.
 *
 * Not thread-safe: one test thread drives it.
 */
#ifndef PS_SINK_KAFKA_MEMLOG_H
#define PS_SINK_KAFKA_MEMLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink/kafka/kafka_log.h"

typedef enum kf_recstate { KF_REC_OPEN = 0, KF_REC_COMMITTED, KF_REC_ABORTED } kf_recstate;

typedef struct kf_memrec {
	char *key;              /* NULL: no key */
	size_t klen;
	char *value;            /* NULL: a tombstone */
	size_t vlen;
	char *batch;            /* the penstock.batch header, or NULL */
	int state;              /* kf_recstate */
	uint64_t txn;           /* the store's number for its transaction, 0: none */
} kf_memrec;

typedef struct kf_memstore kf_memstore;

kf_memstore *kf_memstore_new(bool aborted_visible, int default_partitions);
void kf_memstore_free(kf_memstore *s);
/* The store the memlog's producers open against (the sink cannot be told). */
void kf_memstore_use(kf_memstore *s);
/* on: producers end no transaction themselves, as a process killed at
 * that moment would not (an abort is refused, a closed producer leaves its
 * transaction open for the next producer of its id to end); off: as usual. */
void kf_memstore_crash(kf_memstore *s, bool on);
/* The next count calls of op ("open", "produce", "flush", "commit",
 * "abort") fail with kind and librdkafka error code code. */
void kf_memstore_inject(kf_memstore *s, const char *op, kf_errkind kind, int code, int count);

/* The records of topic's partition a reader sees: read_committed as the
 * store's semantics say, or every record. *recs points into the store
 * (valid until the next call that changes it); returns how many. */
size_t kf_memstore_read(kf_memstore *s, const char *topic, int partition, bool read_committed,
                        const kf_memrec **recs);
int kf_memstore_partitions(kf_memstore *s, const char *topic);
/* The name of topic number i, or NULL past the last. */
const char *kf_memstore_topic(kf_memstore *s, size_t i);
/* Transactions committed and aborted so far. */
void kf_memstore_counts(kf_memstore *s, uint64_t *committed, uint64_t *aborted);

/* Kafka's murmur2 partition of a key (the Java producer's). */
int32_t kf_murmur2_partition(const void *key, size_t len, int partitions);

extern const kf_log_ops ps__kafka_memlog;

#endif
