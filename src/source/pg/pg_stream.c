/*
 * pg_stream.c — the PostgreSQL replication stream: START_REPLICATION with
 * pgoutput, CopyBoth messages, decoding into items, standby status updates.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Wire messages (CopyData): 'w' XLogData = dataStart(8) walEnd(8)
 *    sendTime(8) payload; 'k' keepalive = walEnd(8) sendTime(8)
 *    replyRequested(1). We send 'r' standby status updates = write(8)
 *    flush(8) apply(8) clientTime(8) replyRequested(1).
 * 2. What we report as flush is only ever a position the core acknowledged
 *    (durable in the target), so the slot never lets go of WAL we still
 *    need. Exception that is still safe: when every transaction we handed
 *    out is acknowledged and we are between transactions, everything up to
 *    the server's last reported WAL end is either ours and durable or not
 *    ours at all, so we confirm that too. This keeps an idle or filtered
 *    source from pinning WAL forever.
 * 3. Transactions whose commit record starts before start_lsn were applied
 *    before the checkpoint: the server normally skips them, and we skip any
 *    it sends anyway (final_lsn < start_lsn). Those whose commit starts before
 *    redo_until are marked reprocessing.
 * 4. A non-transactional logical message at LSN m is handed out as its own
 *    transaction with position m+1, so that resuming at that position skips
 *    it and nothing else.
 * 5. States: idle (between transactions) -> in_txn (BEGIN delivered) ->
 *    idle at COMMIT; or idle -> skipping (BEGIN of an old transaction) ->
 *    idle at its COMMIT.
 * 6. Napping amid short transactions. The walsender flushes each message
 *    as it makes it; a reader that polls as soon as it has drained the
 *    socket takes them a few at a time, and the walsender, the one process
 *    of the pipeline that cannot be split, spends its CPU on sends of a
 *    message each. So once the socket is drained after NAP_MIN_COMMITS or
 *    more transactions since the last wait, the reader sleeps NAP_US and
 *    then reads (at most one libpq read, ~16 kB) instead of polling. On a
 *    backlog of pgbench transactions this took a sixth off the walsender's
 *    CPU, half off ours, and a fifth off the catch-up time (measured, with
 *    the commands, in docs/benchmarks.md; the likely mechanism is that the
 *    walsender, finding the socket unread, writes its pending messages in
 *    fewer and larger sends). Inside a huge transaction there are no
 *    commits and the reader polls as before: naps there made the catch-up
 *    of a 1M-row transaction 35 % slower. The nap adds at most NAP_US of
 *    latency, and only while short transactions stream in.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "source/pg/pg_internal.h"
#include "util/pgconn.h"
#include "util/buf.h"
#include "util/log.h"

#define NAP_US 250
#define NAP_MIN_COMMITS 4

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

/* --- feedback ------------------------------------------------------------- */

static uint64_t flush_to_report(const ps_source *src)
{
	uint64_t flush = src->acked_lsn;

	if (!src->in_txn && !src->skipping && src->npending == src->pending_next &&
	    src->msg_next >= src->msg.nchanges && src->acked_lsn >= src->delivered_lsn &&
	    src->server_wal_end > flush)
		flush = src->server_wal_end;
	return flush;
}

static int send_feedback(ps_source *src, bool reply_requested, ps_error *err)
{
	uint8_t msg[1 + 8 * 4 + 1];
	uint64_t flush = flush_to_report(src);
	uint64_t write = src->received_lsn > flush ? src->received_lsn : flush;
	int64_t now = ps_wall_us();

	msg[0] = 'r';
	put_u64(msg + 1, write);
	put_u64(msg + 9, flush);
	put_u64(msg + 17, flush);
	put_u64(msg + 25, (uint64_t)(now - PGO_EPOCH_OFFSET_US));
	msg[33] = reply_requested ? 1 : 0;
	if (PQputCopyData(src->repl, (const char *)msg, sizeof(msg)) != 1 || PQflush(src->repl) != 0)
		return ps_error_set(err, PS_ECONNECT, "sending standby status update: %s",
		                    PQerrorMessage(src->repl));
	if (flush != src->reported_flush && ps_log_enabled(PS_LOG_DEBUG)) {
		char at[32];
		pgo_lsn_format(flush, at, sizeof(at));
		ps_log_debug("standby status: flush %s", at);
	}
	src->reported_flush = flush;
	src->last_feedback_ns = ps_now_ns();
	return PS_OK;
}

static int maybe_feedback(ps_source *src, ps_error *err)
{
	if (!src->streaming)
		return PS_OK;
	if (flush_to_report(src) > src->reported_flush ||
	    ps_now_ns() - src->last_feedback_ns >= PG_FEEDBACK_INTERVAL_NS)
		return send_feedback(src, false, err);
	return PS_OK;
}

/* --- start ---------------------------------------------------------------- */

int pg_stream_start(ps_source *src, const char *position, const char *redo_until,
                    const char *state, ps_error *err)
{
	PGresult *r = NULL;
	char lsn[32];
	ps_buf cmd;
	int rc = PS_OK;

	if (!position || !*position)
		return ps_error_set(err, PS_EINVAL, "no start position (prepare gives the slot's)");
	if (pgo_lsn_parse(position, &src->start_lsn) != PS_OK)
		return ps_error_set(err, PS_ECHECKPOINT, "position '%s' is not a PostgreSQL LSN", position);
	src->redo_until = 0;
	if (redo_until && *redo_until && pgo_lsn_parse(redo_until, &src->redo_until) != PS_OK)
		return ps_error_set(err, PS_EINVAL, "redo position '%s' is not an LSN", redo_until);
	src->acked_lsn = src->start_lsn;
	src->delivered_lsn = src->start_lsn;
	src->reported_flush = 0;

	pgo_lsn_format(src->start_lsn, lsn, sizeof(lsn));
	ps_buf_init(&cmd, 4096);
	ps_buf_puts(&cmd, "START_REPLICATION SLOT ");
	pg_quote_ident(src->repl, &cmd, src->slot);
	ps_buf_printf(&cmd, " LOGICAL %s (proto_version '1', messages 'true', publication_names ", lsn);
	{
		/* both publications (pgsrc_select.c note 4) */
		char inserts[PG_PUBNAME_MAX];
		ps_buf names;

		pg_inserts_publication(src->publication, inserts, sizeof(inserts));
		ps_buf_init(&names, 1024);
		pg_quote_ident(src->repl, &names, src->publication);
		ps_buf_putc(&names, ',');
		pg_quote_ident(src->repl, &names, inserts);
		pg_quote_literal(src->repl, &cmd, names.data);
		ps_buf_free(&names);
	}
	ps_buf_putc(&cmd, ')');
	r = PQexec(src->repl, cmd.data);
	if (PQresultStatus(r) != PGRES_COPY_BOTH)
		rc = pg_result_error(err, src->repl, r, "starting replication");
	PQclear(r);
	ps_buf_free(&cmd);
	if (rc != PS_OK)
		return rc;
	src->streaming = true;
	src->commits_seen = 0;
	return send_feedback(src, false, err);
}

/* --- decoding into items -------------------------------------------------- */

static void push_pending(ps_source *src, int kind, ps_change *change)
{
	ps_read_item *it = &src->pending[src->npending++];

	it->kind = kind;
	it->txn = src->txn;
	it->change = change;
}

static int on_begin(ps_source *src, const pgo_msg *m, ps_error *err)
{
	if (src->in_txn || src->skipping)
		return ps_error_set(err, PS_EPROTO, "pgoutput: Begin inside an open transaction");
	if (m->final_lsn < src->start_lsn) {
		src->skipping = true;
		return PS_OK;
	}
	memset(&src->txn, 0, sizeof(src->txn));
	src->txn.xid = m->xid;
	src->txn.commit_time_us = m->commit_time_us;
	src->txn.reprocessing = m->final_lsn < src->redo_until;
	/* Orders like end_lsn against any record boundary (change.h). */
	pgo_lsn_format(m->final_lsn + 1, src->txn.position, sizeof(src->txn.position));
	src->in_txn = true;
	push_pending(src, PS_READ_BEGIN, NULL);
	return PS_OK;
}

static int on_commit(ps_source *src, const pgo_msg *m, ps_error *err)
{
	if (src->skipping) {
		src->skipping = false;
		return PS_OK;
	}
	if (!src->in_txn)
		return ps_error_set(err, PS_EPROTO, "pgoutput: Commit without Begin");
	pgo_lsn_format(m->end_lsn, src->txn.position, sizeof(src->txn.position));
	src->in_txn = false;
	src->delivered_lsn = m->end_lsn;
	push_pending(src, PS_READ_COMMIT, NULL);
	return PS_OK;
}

/* A message outside any transaction becomes a transaction of its own. */
static void on_lone_message(ps_source *src, pgo_msg *m)
{
	ps_change *c = m->changes[0];
	uint64_t pos = c->lsn + 1;

	m->changes[0] = NULL;
	if (c->lsn < src->start_lsn) {
		ps_change_free(c);
		return;
	}
	memset(&src->txn, 0, sizeof(src->txn));
	src->txn.commit_time_us = ps_wall_us();
	src->txn.reprocessing = c->lsn < src->redo_until;
	pgo_lsn_format(pos, src->txn.position, sizeof(src->txn.position));
	src->delivered_lsn = pos;
	push_pending(src, PS_READ_BEGIN, NULL);
	push_pending(src, PS_READ_CHANGE, c);
	push_pending(src, PS_READ_COMMIT, NULL);
}

static int on_xlogdata(ps_source *src, const uint8_t *p, size_t len, ps_error *err)
{
	uint64_t data_start, wal_end;
	int rc;

	if (len < 24)
		return ps_error_set(err, PS_EPROTO, "XLogData message of %zu bytes is truncated", len);
	data_start = get_u64(p);
	wal_end = get_u64(p + 8);
	if (wal_end > src->received_lsn)
		src->received_lsn = wal_end;
	pgo_msg_clear(&src->msg);
	src->msg_next = 0;
	rc = pgo_decode(&src->msg, src->cache, p + 24, len - 24, data_start, err);
	if (rc != PS_OK)
		return rc;
	if (ps_log_enabled(PS_LOG_DEBUG)) {
		char at[32];
		pgo_lsn_format(data_start, at, sizeof(at));
		ps_log_debug("pgoutput %c at %s", (char)src->msg.kind, at);
	}
	switch (src->msg.kind) {
	case PGO_BEGIN:
		return on_begin(src, &src->msg, err);
	case PGO_COMMIT:
		return on_commit(src, &src->msg, err);
	case PGO_MESSAGE:
		if (!src->msg.changes[0]->message_transactional && !src->in_txn && !src->skipping)
			on_lone_message(src, &src->msg);
		break;
	default:
		break;
	}
	if (src->skipping) {
		pgo_msg_clear(&src->msg);
		src->msg_next = 0;
	}
	return PS_OK;
}

static int on_copydata(ps_source *src, const uint8_t *p, size_t len, ps_error *err)
{
	if (len < 1)
		return ps_error_set(err, PS_EPROTO, "empty CopyData message");
	if (p[0] == 'w')
		return on_xlogdata(src, p + 1, len - 1, err);
	if (p[0] == 'k') {
		if (len < 18)
			return ps_error_set(err, PS_EPROTO, "keepalive message is truncated");
		uint64_t wal_end = get_u64(p + 1);
		if (ps_log_enabled(PS_LOG_DEBUG)) {
			char at[32];
			pgo_lsn_format(wal_end, at, sizeof(at));
			ps_log_debug("keepalive: server WAL end %s%s", at, p[17] ? ", reply requested" : "");
		}
		if (wal_end > src->server_wal_end)
			src->server_wal_end = wal_end;
		if (p[17])
			return send_feedback(src, false, err);
		return PS_OK;
	}
	return ps_error_set(err, PS_EPROTO, "unexpected CopyData message type '%c'", p[0]);
}

/* Hands out the next item produced by the last message, if any: 1 when
 * one was, 0 when none is left, or an error. A change whose table has a
 * definition not announced yet comes after its PS_READ_TABLE item
 * (source.h invariant 10, pg_ddl.c). */
static int next_ready(ps_source *src, ps_read_item *item, ps_error *err)
{
	if (src->pending_next < src->npending) {
		*item = src->pending[src->pending_next];
		src->pending[src->pending_next].change = NULL;
		if (++src->pending_next == src->npending)
			src->npending = src->pending_next = 0;
		return 1;
	}
	while (src->msg_next < src->msg.nchanges) {
		ps_change *c = src->msg.changes[src->msg_next];
		ps_table_change *tc = NULL;
		int rc;

		if (!c) {
			src->msg_next++;
			continue;
		}
		if (c->op == PS_OP_MESSAGE && strcmp(c->message_prefix, PG_FENCE_PREFIX) == 0) {
			src->msg.changes[src->msg_next++] = NULL;
			ps_change_free(c);   /* our own marker (pg_stream_fence) */
			continue;
		}
		rc = pg_ddl_check(src, c, &tc, err);
		if (rc != PS_OK)
			return rc;
		memset(item, 0, sizeof(*item));
		item->txn = src->txn;
		if (tc) {
			item->kind = PS_READ_TABLE;   /* the change itself comes next time */
			item->table_change = tc;
			return 1;
		}
		src->msg.changes[src->msg_next++] = NULL;
		item->kind = PS_READ_CHANGE;
		item->change = c;
		return 1;
	}
	return 0;
}

/* --- reading -------------------------------------------------------------- */

static int stream_ended(ps_source *src, ps_error *err)
{
	PGresult *r = PQgetResult(src->repl);
	int rc;

	src->streaming = false;
	if (r && PQresultStatus(r) == PGRES_FATAL_ERROR)
		rc = pg_result_error(err, src->repl, r, "replication stream");
	else
		rc = ps_error_set(err, PS_ECONNECT, "replication stream ended by the server: %s",
		                  PQerrorMessage(src->repl));
	PQclear(r);
	return rc;
}

static int read_socket(ps_source *src, ps_error *err)
{
	if (PQconsumeInput(src->repl) != 1)
		return ps_error_set(err, PS_ECONNECT, "replication connection lost: %s",
		                    PQerrorMessage(src->repl));
	return PS_OK;
}

static int wait_socket(ps_source *src, int timeout_ms, ps_error *err)
{
	struct pollfd pfd = {.fd = PQsocket(src->repl), .events = POLLIN};
	int n;

	if (pfd.fd < 0)
		return ps_error_set(err, PS_ECONNECT, "replication connection is closed");
	n = poll(&pfd, 1, timeout_ms);
	if (n < 0 && errno != EINTR)
		return ps_error_set_errno(err, PS_EIO, errno, "poll on the replication connection");
	return n > 0 ? read_socket(src, err) : PS_OK;
}

int pg_stream_read(ps_source *src, ps_read_item *item, int timeout_ms, ps_error *err)
{
	uint64_t deadline = ps_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ULL;
	char *buf = NULL;
	int n, rc;

	item->kind = PS_READ_NONE;
	if (!src->streaming)
		return ps_error_set(err, PS_ECONNECT, "replication stream is not running");
	for (;;) {
		rc = next_ready(src, item, err);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			if (item->kind == PS_READ_COMMIT)
				src->commits_seen++;
			return PS_OK;
		}
		n = PQgetCopyData(src->repl, &buf, 1);
		if (n > 0) {
			rc = on_copydata(src, (const uint8_t *)buf, (size_t)n, err);
			PQfreemem(buf);
			buf = NULL;
			if (rc != PS_OK)
				return rc;
			continue;
		}
		if (n == -1)
			return stream_ended(src, err);
		if (n == -2)
			return ps_error_set(err, PS_ECONNECT, "replication connection failed: %s",
			                    PQerrorMessage(src->repl));
		rc = maybe_feedback(src, err);
		if (rc != PS_OK)
			return rc;
		uint64_t now = ps_now_ns();
		if (now >= deadline)
			return PS_OK;
		int64_t left_ms = (int64_t)((deadline - now) / 1000000ULL);
		if (src->commits_seen >= NAP_MIN_COMMITS) {
			/* drained amid short transactions: nap, then read (note 6) */
			struct timespec nap = {0, NAP_US * 1000};

			src->commits_seen = 0;
			nanosleep(&nap, NULL);
			rc = read_socket(src, err);
		} else {
			src->commits_seen = 0;
			rc = wait_socket(src, (int)(left_ms > 1000 ? 1000 : left_ms), err);
		}
		if (rc != PS_OK)
			return rc;
	}
}

int pg_stream_ack(ps_source *src, const char *position, ps_error *err)
{
	uint64_t lsn;

	if (position && *position) {
		if (pgo_lsn_parse(position, &lsn) != PS_OK)
			return ps_error_set(err, PS_EINVAL, "position '%s' is not an LSN", position);
		if (lsn > src->acked_lsn)
			src->acked_lsn = lsn;
	}
	return maybe_feedback(src, err);
}

int pg_emit_message(ps_source *src, const char *prefix, const char *content, const char *what,
                    char *pos, size_t len, ps_error *err)
{
	const char *params[2] = {prefix, content};
	PGresult *r = NULL;
	int rc = pg_exec(src->sql, &r, err, what,
	                 "SELECT pg_logical_emit_message(true, $1, $2)::text", 2, params);

	if (rc == PS_OK)
		snprintf(pos, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

int pg_stream_fence(ps_source *src, char *pos, size_t len, ps_error *err)
{
	return pg_emit_message(src, PG_FENCE_PREFIX, src->job_name, "writing a fence into the WAL",
	                       pos, len, err);
}
