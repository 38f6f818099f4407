/*
 * pg_internal.h — the PostgreSQL source's state, shared by its two halves:
 * pg_source.c (connections, table selection, publication, slot) and
 * pg_stream.c (the replication stream: reading, decoding, acknowledging).
 * Not part of any public contract.
 */
#ifndef PS_SOURCE_PG_INTERNAL_H
#define PS_SOURCE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/url.h"
#include "penstock/source.h"
#include "source/pg/pgoutput.h"

#define PG_PENDING_MAX 3

struct ps_source {
	/* configuration (owned copies) */
	char *job_name;
	char *url;
	char *password;            /* wiped and freed at close */
	char *slot;
	char *publication;
	char **include, **exclude;
	size_t ninclude, nexclude;
	ps_url parsed;
	char app_name[80];

	PGconn *sql;               /* catalog queries, publication, slot checks */
	PGconn *repl;              /* replication=database, owns the stream */
	pgo_relcache *cache;

	/* stream state (reader thread only) */
	bool streaming;
	uint64_t start_lsn;        /* deliver only transactions committed after it */
	uint64_t redo_until;       /* transactions committed up to it are reprocessing */
	uint64_t received_lsn;     /* highest WAL position seen in any message */
	uint64_t server_wal_end;   /* from keepalives: everything before is sent */
	uint64_t delivered_lsn;    /* end of the last transaction handed out */
	uint64_t acked_lsn;        /* durable in the target (from ack) */
	uint64_t reported_flush;   /* last flush position sent to the server */
	int64_t last_feedback_us;
	bool in_txn;               /* between a delivered BEGIN and its COMMIT */
	bool skipping;             /* inside a transaction at or before start_lsn */
	ps_txn txn;                /* the transaction being delivered */

	/* items produced by one message and not yet returned */
	ps_read_item pending[PG_PENDING_MAX];
	int npending, pending_next;
	pgo_msg msg;               /* a decoded message with changes left to hand out */
	size_t msg_next;
};

/* Feedback interval: well under the server's wal_sender_timeout (60 s). */
#define PG_FEEDBACK_INTERVAL_US (10LL * 1000000LL)

int64_t pg_now_us(void);

/* pg_stream.c */
int pg_stream_start(ps_source *src, const char *position, const char *redo_until,
                    ps_error *err);
int pg_stream_read(ps_source *src, ps_read_item *item, int timeout_ms, ps_error *err);
int pg_stream_ack(ps_source *src, const char *position, ps_error *err);
/* source.h fence: a transactional logical message with this prefix, which the
 * stream drops when it comes back. */
#define PG_FENCE_PREFIX "penstock.fence"
int pg_stream_fence(ps_source *src, char *pos, size_t len, ps_error *err);

#endif
