/*
 * penstock/sink.h — the contract of a sink (target) plugin.
 *
 * A sink receives the items of change.h in commit order on exactly one thread,
 * the applier, which owns its connections:
 *
 *     open ─► { begin ─► write* ─► commit }* ─► flush ─► ... ─► close
 *
 * Invariants a sink must keep:
 *   1. After flush returns 0, everything written so far survives a crash of
 *      penstock and of the machine (fsync for files, COMMIT for databases).
 *      A sink with the optional `durable` callback relaxes this to: after
 *      flush returns 0, everything written so far is committed (visible,
 *      whole, with the checkpoint stored in it), and it survives a crash
 *      once durable has reported that flush (see "Asynchronous durability").
 *   2. A value of kind PS_VALUE_UNCHANGED is never written as a value.
 *   3. When txn->reprocessing is set, applying the transaction again must not
 *      duplicate it (transactional sinks) or must mark it (event sinks).
 *
 * Checkpoints: a transactional sink implements checkpoint_load/_store/_delete
 * and keeps the checkpoint in the target, written in the same target
 * transaction as the data it describes. Other sinks leave them NULL; the core
 * then keeps the checkpoint in the state directory, written after flush.
 *
 * Transactions: a transactional sink opens a target transaction lazily (at
 * the first begin, write, checkpoint_store, table_prepare or table_finish
 * after a flush) and commits it in flush. Many source transactions go into
 * one target transaction; nothing is committed before flush.
 *
 * Applying changes (transactional sinks):
 *   - The key of a target table is its PRIMARY KEY, looked up in the target
 *     (the change's is_key flags mark the source's replica identity, which
 *     can be every column). A table without one is matched on every column
 *     of the old row (REPLICA IDENTITY FULL), changing one row per change
 *     even when several are identical.
 *   - update: the row is found by the old key (old_values when present, else
 *     the key columns of new_values); the key itself may change.
 *     PS_VALUE_UNCHANGED columns keep their target value.
 *   - insert of a key that exists, or update/delete of a row that does not,
 *     outside reprocessing: the target diverged; update/delete of a missing
 *     row is counted and warned about (rate-limited), a duplicate insert is an
 *     error naming table and key.
 *   - reprocessing (txn->reprocessing): insert and update are upserts on the
 *     key (an update that changes the key also deletes the old key); delete
 *     tolerates a missing row; truncate as usual.
 *   - op PS_OP_READ (initial load rows) arrives in runs of one table between
 *     begin and commit and is written with the engine's bulk path (COPY).
 *   - PS_OP_MESSAGE is ignored by database sinks.
 *
 * Sink instances: the core opens one sink for streaming and, during the
 * initial load, up to max_writers more (one per copy worker), each used by one
 * thread. Instances share nothing but the target.
 *
 * Asynchronous durability (optional `durable`): a database commits faster
 * when its COMMIT returns before the commit's log record is on disk
 * (PostgreSQL: synchronous_commit = off). A crash of the target then loses
 * the newest commits, each whole: data and checkpoint vanish together, so
 * the target stays consistent with its own checkpoint. What it must never
 * lose is something the source was told is durable, since the source then
 * lets its log go (source.h invariant 3). So a sink that commits this way
 * implements `durable`, and the core acknowledges the source only up to the
 * position of the last flush it reported durable (pipeline.c note 7).
 * Rules for such a sink:
 *   a. Flushes are numbered 1, 2, ... on each instance, in the order they
 *      returned 0 (a flush with nothing to commit counts too).
 *   b. Durability follows commit order across all instances of the sink:
 *      when a flush is durable, so is every flush that returned before it
 *      began, on any instance (one log, written in order).
 *   c. checkpoint_load returns only a durable checkpoint (it makes what it
 *      reads durable first): its position goes to the source's start, which
 *      may confirm it at once.
 *   d. A sink that commits durably after all (a setting, an old server)
 *      keeps the callback and reports every flush durable.
 *   e. What table_change (and table_prepare/table_finish) make in the
 *      target is part of the open transaction and so of the next flush: a
 *      crash that loses that flush loses the schema change with it, and
 *      the source, not acknowledged past it, delivers it again. Anything
 *      made outside the transaction must be harmless to make again.
 */
#ifndef PENSTOCK_SINK_H
#define PENSTOCK_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/change.h"
#include "penstock/check.h"
#include "penstock/error.h"
#include "penstock/options.h"
#include "penstock/source.h"
#include "penstock/tabledef.h"
#include "penstock/url.h"

#define PS_SINK_ABI_VERSION 2

typedef struct ps_sink ps_sink; /* defined by each plugin */

/* Borrowed for the duration of open only: a sink copies what it keeps. */
typedef struct ps_sink_config {
	const char *job_name;
	const char *url;          /* as in the spec; never holds a password */
	const char *password;     /* NULL, or from password_env/_file: never log */
	const json_t *options;    /* the plugin's declared options (options.h),
	                             defaults filled; may be NULL */
	const char *connector;    /* source's envelope name, e.g. "postgresql" */
	const char *source_db;    /* source database name, for envelopes */
} ps_sink_config;

typedef enum ps_create_tables {
	PS_CREATE_IF_MISSING = 0,      /* create a missing table; use an existing one */
	PS_CREATE_NEVER,               /* the table must exist */
	PS_CREATE_DROP_AND_CREATE      /* drop any existing table, create it anew */
} ps_create_tables;

/* target.follow_ddl: whose target tables follow the source's schema changes
 * (issue 15). A target table penstock created is one it recorded creating;
 * any other, or one with columns the user added, is the user's. */
typedef enum ps_follow_ddl {
	PS_FOLLOW_CREATED = 0,         /* the tables penstock created follow; a change to a
	                                  table the user manages stops the job (default) */
	PS_FOLLOW_ALL,                 /* every table follows; columns only the target has
	                                  are kept as they are */
	PS_FOLLOW_NONE                 /* no table is altered: a change the target does not
	                                  already match stops the job */
} ps_follow_ddl;

typedef struct ps_table_options {
	int create;                    /* ps_create_tables */
	bool truncate_before_load;     /* empty an existing table instead of refusing it */
	/* Added for issue 15; zero is the default of each. */
	int follow_ddl;                /* ps_follow_ddl */
	bool rejoin;                   /* table_prepare of a table that comes (back) into a
	                                  running job's selection: an existing target table
	                                  penstock created holds a former state of it, and is
	                                  emptied and brought to def instead of refused */
} ps_table_options;

/* How durable (below) may find out which flushes are durable. */
typedef enum ps_durable_how {
	PS_DURABLE_KNOWN = 0,
	PS_DURABLE_ASK,
	PS_DURABLE_WAIT
} ps_durable_how;

typedef struct ps_sink_ops {
	int abi_version;                 /* PS_SINK_ABI_VERSION */
	const char *name;                /* plugin name, e.g. "jsonl" */
	const char *const *url_schemes;  /* NULL-terminated */
	int max_writers;                 /* instances that may write at once; 0 = any */
	const ps_option_def *options;    /* fields it accepts in "target" (options.h),
	                                    ended by a NULL name; NULL: none */
	const char *const *check_ids;    /* the precheck ids it reports besides
	                                    "target.connect" (check.h), NULL-terminated */

	/* Optional. What identifies the target, whoever connects, for the
	 * checkpoint's fingerprint; default ps_url_identity. */
	void (*identity)(const ps_url *url, const json_t *options, char *buf, size_t len);

	/* Required. Opens the target (creates the directory, connects). */
	int (*open)(ps_sink **out, const ps_sink_config *cfg, ps_error *err);
	/* Optional. A source transaction starts. */
	int (*begin)(ps_sink *sink, const ps_txn *txn, ps_error *err);
	/* Required. One change of the current transaction; txn as at BEGIN. */
	int (*write)(ps_sink *sink, const ps_txn *txn, const ps_change *change,
	             ps_error *err);
	/* Optional. The source transaction committed at txn->position. */
	int (*commit)(ps_sink *sink, const ps_txn *txn, ps_error *err);
	/* Required. Make everything written so far durable (invariant 1). */
	int (*flush)(ps_sink *sink, ps_error *err);
	/* Optional pair: checkpoint kept in the target. load sets *json to a
	 * malloc'd string or NULL when there is none. store happens inside the
	 * open target transaction, before flush commits it. */
	int (*checkpoint_load)(ps_sink *sink, char **json, ps_error *err);
	int (*checkpoint_store)(ps_sink *sink, const char *json, ps_error *err);
	/* Optional, with the pair: removes this job's checkpoint, inside the
	 * open target transaction. */
	int (*checkpoint_delete)(ps_sink *sink, ps_error *err);
	/* Optional. Before the initial load of a table, inside the open target
	 * transaction: creates it from def when opt says so (without secondary
	 * indexes, and without the primary key where the engine can add it
	 * later), or checks the existing one (columns by name; says which are
	 * missing). A table that exists and holds rows is refused (PS_EINVAL,
	 * naming it and target.truncate_before_load) unless
	 * opt->truncate_before_load, which empties it. *created tells whether it
	 * was created now. */
	int (*table_prepare)(ps_sink *sink, const ps_table_def *def,
	                     const ps_table_options *opt, bool *created, ps_error *err);
	/* Optional. After the load of a table that table_prepare created, inside
	 * the open target transaction: adds the primary key (if not already
	 * there), unique constraints and indexes. Idempotent. */
	int (*table_finish)(ps_sink *sink, const ps_table_def *def, ps_error *err);
	/* Required. Frees everything; does not flush; sink may be NULL. */
	void (*close)(ps_sink *sink);

	/* Optional. Checks what a job needs from this target (penstock/check.h),
	 * without an instance: connects on its own from cfg, creates and
	 * changes nothing, appends its items to report. opt holds the spec's
	 * create_tables and truncate_before_load; loads says the job copies an
	 * initial load (migration, sync, snapshot); tables are the tables the
	 * source selected, or NULL when the source could not list them (the
	 * items about tables are then skipped). Returns 0 whenever the checks
	 * ran: failures are items, and a connection failure is the item
	 * target.connect failed with the items that need it skipped. */
	int (*precheck)(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
	                const ps_check_tables *tables, ps_check_report *report, ps_error *err);

	/* --- raw initial load; optional as a group ------------------------- */
	/* A unit of the initial load in the source engine's own bulk format
	 * (source.h copy_raw_format, copy_unit_raw), loaded without decoding
	 * rows, instead of its op r rows:
	 *
	 *     begin ─► load_raw_begin ─► load_raw_write* ─► load_raw_end ─► commit
	 *
	 * Says whether this sink can load format into def's table as the
	 * target holds it (*accepted; when not, why says why, for the log).
	 * Changes nothing; may run a catalog query. */
	int (*load_raw_accepts)(ps_sink *sink, const ps_table_def *def, const char *format,
	                        bool *accepted, char *why, size_t why_len, ps_error *err);
	/* Starts loading one stream of an accepted format into def's table,
	 * inside the open target transaction (opened if none is). */
	int (*load_raw_begin)(ps_sink *sink, const ps_table_def *def, const char *format,
	                      ps_error *err);
	/* The next bytes of the stream, in order. */
	int (*load_raw_write)(ps_sink *sink, const char *data, size_t len, ps_error *err);
	/* The stream is complete: ends the load (errors in the data surface
	 * here) and sets *rows to the rows the target took. Nothing commits
	 * before flush. After a failure anywhere in between, the caller closes
	 * the sink (which abandons the load and rolls back). */
	int (*load_raw_end)(ps_sink *sink, int64_t *rows, ps_error *err);

	/* --- engine state; optional as a pair ------------------------------ */
	/* The sink's own state to keep in the checkpoint (malloc'd JSON object
	 * text into *json, or NULL), asked when a checkpoint is written. */
	int (*state_save)(ps_sink *sink, char **json, ps_error *err);
	/* The state of the checkpoint a run resumes from (NULL: none), given
	 * once after open, before any write. */
	int (*state_restore)(ps_sink *sink, const char *json, ps_error *err);

	/* --- cutover; optional ---------------------------------------------- */
	/* Sets the target's sequences (or auto-increment counters) so that the
	 * next value each gives continues after the source's (source.h
	 * sequences), inside the open target transaction; summary says what
	 * was done in the plugin's words ("2 synced to the source's values
	 * (...); no sequence in the target for ..."). A sink without sequences
	 * leaves it NULL and says why in no_sequences. */
	int (*sequences_set)(ps_sink *sink, const ps_sequence *seqs, size_t n, char *summary,
	                     size_t len, ps_error *err);
	const char *no_sequences;        /* why sequences do not apply, when
	                                    sequences_set is NULL, or NULL */

	/* --- asynchronous durability; optional (see the notes above) -------- */
	/* Sets *through to the number of the last flush of this instance that
	 * is durable now (0: none yet), by how:
	 *   PS_DURABLE_KNOWN  from what the sink already knows: no I/O, fast;
	 *   PS_DURABLE_ASK    may ask the target (one round trip, no waiting);
	 *   PS_DURABLE_WAIT   makes every flush so far durable first (may cost
	 *                     one disk sync of the target), then reports all.
	 * PS_DURABLE_WAIT is called only between flushes, never with a target
	 * transaction open; the others at any time (inside a transaction, ASK
	 * may answer as KNOWN). NULL: flush itself is durable (invariant 1 as
	 * first stated). */
	int (*durable)(ps_sink *sink, int how, uint64_t *through, ps_error *err);

	/* --- schema; optional (penstock/schema.h) -------------------------- */
	/* Creates the objects of schema that the target lacks, in order, inside
	 * the open target transaction (opened if none is), by the rules of
	 * schema.h; nothing commits before flush. A schema of another engine
	 * is ignored (*applied 0). *applied receives how many objects it
	 * created or ran. table_prepare does the same with a def's requires
	 * before it creates the table. */
	int (*schema_apply)(ps_sink *sink, const ps_schema *schema, size_t *applied,
	                    ps_error *err);

	/* --- schema changes; optional (issue 15) --------------------------- */
	/* A table's definition changed in the stream (source.h PS_READ_TABLE,
	 * tabledef.h ps_table_change), before the first change that carries it,
	 * in source transaction txn (as at BEGIN). A database sink drops what it
	 * caches about the table (definitions, prepared statements), and by
	 * opt->follow_ddl brings the target table to tc->def inside the open
	 * target transaction (opened if none is), so the change commits with
	 * the rows and the checkpoint that follow it: columns added (type,
	 * default, NOT NULL as on the source, existing rows filled as the
	 * source's were), dropped, renamed and retyped, partitions created,
	 * attached and detached, enum labels added. A change it may not or
	 * cannot make is a permanent error (class schema) naming the table,
	 * the change and what fixes it. An event sink writes the change as an
	 * event. *backfill is set when rows already in the target may hold
	 * values the target cannot derive (a column added with a volatile
	 * default, a type changed by the source's own expression, a partition
	 * attached with rows): the core then reads the table's rows again. */
	int (*table_change)(ps_sink *sink, const ps_txn *txn, const ps_table_change *tc,
	                    const ps_table_options *opt, bool *backfill, ps_error *err);

	/* --- where the checkpoint is kept; optional, with the checkpoint group */
	/* Whether this instance keeps the checkpoint in the target: a sink
	 * whose options decide (Kafka with transactions does, without them it
	 * does not). NULL: it does whenever checkpoint_load/_store/_delete are
	 * set. When it says false the core treats the target as
	 * non-transactional: the checkpoint goes to the state directory after
	 * flush, and a run that did not end cleanly marks what it repeats
	 * "reprocessing". Asked after open, of an open instance. */
	bool (*checkpoint_kept)(const ps_sink *sink);

	/* --- the sink's own figures; optional -------------------------------- */
	/* What the sink measures that the core cannot (a producer's messages,
	 * bytes, transactions, delivery latency), for `job show`, the API and
	 * /metrics. Sets *out to a new JSON object, one member per figure:
	 *
	 *   {"<name>": {"type": "counter"|"gauge", "value": <number>,
	 *               "unit": "bytes"|"ms"|"", "help": "<one line>"}, ...}
	 *
	 * name is [a-z0-9_]; a counter counts since open (the core shows it
	 * per run). Called on the applier thread, a few times a second at most;
	 * must not block. Keep it under a few dozen figures. */
	int (*figures)(ps_sink *sink, json_t **out, ps_error *err);

	/* --- idle; optional ---------------------------------------------------- */
	/* Nothing is being applied: called by the applier between transactions,
	 * with no target transaction open, about every 200 ms while the source
	 * has nothing new. For what a sink does by the clock rather than by the
	 * changes (Kafka's heartbeats); anything it writes it makes durable
	 * before returning. An error ends the run like a failed flush. */
	int (*idle)(ps_sink *sink, ps_error *err);

	/* --- fault points; optional ------------------------------------------ */
	/* The plugin's own fault points (core/fault.h), each "<name>.<...>",
	 * NULL-terminated: PENSTOCK_FAULT accepts them beside the core's, and
	 * the plugin calls ps_fault_hit with them. */
	const char *const *fault_points;

	/* The target commits around DDL (MariaDB): table_change cannot alter a
	 * table inside the open target transaction. The core then commits the
	 * batch (with its checkpoint) just before a table change whenever the
	 * source transaction in progress has written nothing to the sink yet;
	 * to make that the common case, it holds the first changes of each
	 * source transaction (up to a bound) until its commit or its first
	 * table change of a table they do not touch. table_change itself must
	 * refuse to alter a table the open target transaction wrote. */
	bool ddl_commits;

	/* --- processing ranges; optional (issue 21) ------------------------- */
	/* Streaming begins after position from (the checkpoint's). to: the end
	 * of a bounded run's processing range (`penstock run --until`), or NULL
	 * for a run that goes on until stopped. Called again with to = the last
	 * commit applied when a bounded run stops before its end, before the
	 * final flush. A sink that sets *hold (heeded for a bounded range only)
	 * keeps what it is given until the range ends: the core then neither
	 * flushes it nor writes a checkpoint before the range's end or the
	 * run's; a run that dies mid-range leaves the checkpoint at from, and
	 * the next run redoes the whole range (TFREDO). */
	int (*range)(ps_sink *sink, const char *from, const char *to, bool *hold, ps_error *err);
} ps_sink_ops;

#endif
