/*
 * penstock/source.h — the contract of a source plugin.
 *
 * A source reads one database's log and hands the core a stream of items in
 * commit order (see change.h). It is driven by exactly one thread, the
 * reader, which owns its connections.
 *
 * Lifecycle of one run:
 *
 *     open ─► prepare(mode) ─► start(position, redo_until)
 *          ─► { read | ack }* ─► close
 *
 * Invariants a source must keep:
 *   1. Transactions come whole and in commit order; a transaction whose commit
 *      position is <= the start position is never delivered.
 *   2. A transaction whose commit is <= redo_until is delivered with
 *      txn.reprocessing set: it may already be in the target.
 *   3. ack(position) tells the source that everything up to position is
 *      durable in the target; only then may the source let its log go (PG:
 *      the flush position in standby status updates). A source may confirm
 *      further on an idle log when nothing it delivered is unacknowledged.
 *   4. Positions are opaque text to the core; position_compare orders them.
 *
 * Optional callbacks may be NULL; the core wrappers (core/plugin.h) handle
 * that, add error context and time every call.
 *
 * Initial load (optional as a group: describe, split, snapshot_export,
 * snapshot_release, copy_open, copy_unit, copy_close):
 *
 *     open ─► prepare (cfg.want_snapshot: a newly created slot exports a
 *             snapshot, res.snapshot) ─► describe ─► split per big table
 *          ─► N worker threads: copy_open(snapshot) ─► copy_unit* ─► copy_close
 *          ─► start(position = the slot's point) ─► read ...
 *
 *   5. The exported snapshot shows exactly the transactions whose commit
 *      position is <= its point (res.start_position, or snapshot_export's
 *      point); start(point) delivers exactly the others. So a copy under the
 *      snapshot followed by the stream from its point has no gap and no
 *      overlap.
 *      An engine without shareable snapshots gives each copier its own,
 *      at or after the point, and tells it through copy_point: the load
 *      then records per unit where its rows were read.
 *   6. The snapshot stays importable until snapshot_release, start or close,
 *      whichever comes first. Copiers that imported it keep it.
 *   7. copy_open and copy_unit may be called from several threads at once,
 *      each with its own copier; they only read the immutable configuration
 *      of src, never its connections.
 *
 * Live table changes (optional as a group: retable, mark, chunk_read), on
 * the reader thread, between transactions, while streaming:
 *
 *   8. retable changes the set of tables the log delivers and writes a
 *      marker (PS_MARK_PREFIX) in the same source transaction: a removed
 *      table's changes come only before the marker, an added table's only
 *      after it. Markers come back through read as PS_OP_MESSAGE changes
 *      with prefix PS_MARK_PREFIX, in log order.
 *   9. A backfill reads an added table in key-ordered chunks between two
 *      markers (DBLog watermarks): mark(low), chunk_read, mark(high). The
 *      chunk's rows reflect every transaction whose commit precedes the low
 *      marker in the log, and none that commits after the high one; a row
 *      changed by a transaction in between may hold either version.
 *
 * Schema changes (issue 15; optional, a source that cannot tell delivers
 * no PS_READ_TABLE item and its sinks see new definitions as they come):
 *
 *  10. Before the first change of a transaction that carries a table
 *      definition it has not announced in this run (the first one of the
 *      table, or one whose columns or name differ from the last announced,
 *      or whose partitions or enum labels changed), read delivers a
 *      PS_READ_TABLE item inside that transaction, with the new definition
 *      and the source's description of it (tabledef.h ps_table_change).
 *  11. selection_check says, cheaply, whether the tables the patterns
 *      select now differ from those the log delivers (a table created,
 *      dropped, renamed or moved into or out of the selection, a partition
 *      attached or detached). The core then calls retable with the same
 *      patterns, which reports renamed tables as removed under the old name
 *      and added under the new, and tables whose partitions changed in
 *      `changed`.
 */
#ifndef PENSTOCK_SOURCE_H
#define PENSTOCK_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/change.h"
#include "penstock/check.h"
#include "penstock/error.h"
#include "penstock/schema.h"
#include "penstock/options.h"
#include "penstock/tabledef.h"
#include "penstock/url.h"

#define PS_SOURCE_ABI_VERSION 2

/* The prefix of the markers the core writes into the log (retable, mark). */
#define PS_MARK_PREFIX "penstock.mark"

typedef struct ps_source ps_source; /* defined by each plugin */
typedef struct ps_copier ps_copier; /* one initial-load worker connection */

/* Receives one row of a copy unit. values has t->ncolumns entries of kind
 * NULL or TEXT, valid only during the call. A non-zero return stops the copy
 * and is returned by copy_unit. */
typedef int (*ps_row_fn)(void *ctx, ps_table *t, const ps_value *values, ps_error *err);

/* Receives the next len bytes of a raw copy unit (copy_unit_raw), valid
 * only during the call; rows is how many rows end within them. A non-zero
 * return stops the copy and is returned by copy_unit_raw. */
typedef int (*ps_raw_fn)(void *ctx, const char *data, size_t len, int64_t rows, ps_error *err);

/* Borrowed for the duration of open only: a source copies what it keeps. */
typedef struct ps_source_config {
	const char *job_name;
	const char *url;               /* as in the spec; never holds a password */
	const char *password;          /* NULL, or from password_env/_file: never log */
	const json_t *options;         /* the plugin's declared options (options.h),
	                                  defaults filled; may be NULL */
	const char *const *include;    /* glob patterns on "schema.table" */
	size_t ninclude;
	const char *const *exclude;
	size_t nexclude;
	bool want_snapshot;            /* prepare exports a snapshot when it creates the slot */
	/* Added for issue 14 (penstock/schema.h); zero is the default of each. */
	int schema;                    /* ps_schema_mode: what describe and schema_after_load
	                                  tell the target to create */
	int keyless;                   /* ps_keyless: tables without a key or replica identity */
	int foreign_keys;              /* ps_foreign_keys */
	bool no_extensions;            /* extensions a table needs must already be in the
	                                  target (target.create_extensions false) */
	bool load_only;                /* a snapshot job: changes are only read to catch up
	                                  after a resumed load, so a table without a key
	                                  needs no replica identity and is not published */
} ps_source_config;

typedef enum ps_prepare_mode {
	PS_PREPARE_CREATE_OR_USE = 0,  /* use the slot if it exists, else create it */
	PS_PREPARE_MUST_EXIST,         /* resuming: the slot must still exist */
	PS_PREPARE_RECREATE            /* start over: drop any existing slot */
} ps_prepare_mode;

typedef enum ps_read_kind {
	PS_READ_NONE = 0,   /* nothing arrived within the timeout */
	PS_READ_BEGIN,      /* item->txn filled (position still empty) */
	PS_READ_CHANGE,     /* item->change set; the caller owns it */
	PS_READ_COMMIT,     /* item->txn filled, position set */
	PS_READ_TABLE       /* item->table_change set (invariant 10); the caller owns it */
} ps_read_kind;

typedef struct ps_read_item {
	int kind;           /* ps_read_kind */
	ps_txn txn;
	ps_change *change;
	char *state;        /* COMMIT only, optional: the source's engine state as
	                       of this commit (malloc'd JSON object text, the
	                       caller owns it), kept in the checkpoint with the
	                       position and handed back to start; NULL: unchanged */
	ps_table_change *table_change; /* PS_READ_TABLE only (ps_table_change_free) */
} ps_read_item;

/* What prepare found or made, for status output and the checkpoint. The
 * text fields are the plugin's own words: the core prints them as they are. */
typedef struct ps_prepare_result {
	bool created;                       /* the log reader (PG slot) was created now */
	char start_position[PS_POSITION_MAX]; /* where changes begin (slot's point) */
	size_t ntables;                     /* tables selected */
	char server_id[64];                 /* identity of the server (PG system id) */
	char server_version[32];
	char snapshot[64];                  /* exported snapshot name, "" if none */
	char summary[256];                  /* the source, for the log: "PostgreSQL 15.4,
	                                       publication penstock_orders" */
	char log_reader[128];               /* what holds the log for the job: "slot
	                                       penstock_orders" */
	char *state;                        /* the engine state to checkpoint (malloc'd
	                                       JSON object text, or NULL); the caller
	                                       frees it with ps_prepare_result_clear */
} ps_prepare_result;

/* Frees what a prepare result owns (state) and zeroes it. */
void ps_prepare_result_clear(ps_prepare_result *res);

/* What the job holds on the source and how an operator releases it by hand
 * when penstock cannot (resources), in the plugin's words. */
typedef struct ps_source_resources {
	char held[256];                     /* "slot penstock_orders and publication
	                                       penstock_orders" */
	char log_reader[128];               /* what holds the log for the job, as in
	                                       ps_prepare_result: "slot penstock_orders" */
	char release[512];                  /* "SELECT pg_drop_replication_slot(...);
	                                       DROP PUBLICATION IF EXISTS ...;" */
} ps_source_resources;

/* A sequence (or what stands for one: an auto-increment counter) that the
 * selected tables draw values from, with its value at the time it was read. */
typedef struct ps_sequence {
	char *schema, *name;      /* the sequence in the source */
	char *table_schema;       /* the table and column that own it or whose */
	char *table_name;         /* default draws from it, or NULL */
	char *column;
	char *last_value;         /* canonical integer text */
	bool is_called;           /* false: the next value is last_value itself */
} ps_sequence;

/* Frees n sequences and the array. */
void ps_sequences_free(ps_sequence *seqs, size_t n);

/* What retable changed. added: malloc'd array of nadded defs, as describe
 * makes them (free each with ps_table_def_free, then the array); removed:
 * malloc'd array of nremoved malloc'd "schema.table" names (free each, then
 * the array). */
typedef struct ps_retable_result {
	ps_table_def **added;
	size_t nadded;
	char **removed;
	size_t nremoved;
	/* Added for issue 15: tables still selected whose partitions were
	 * attached or detached (as added; NULL when none). */
	ps_table_def **changed;
	size_t nchanged;
} ps_retable_result;

/* How much log the source keeps for the job and how close that is to the
 * engine's own limit (log_retention), in the plugin's terms: every figure
 * -1 (status "") when the engine cannot tell. */
typedef struct ps_log_retention {
	long long retained_bytes;   /* log kept for the job's reader now (PG: the
	                               slot's restart_lsn to the WAL's end) */
	long long limit_bytes;      /* the most the engine keeps for a reader before
	                               giving it up (PG: max_slot_wal_keep_size);
	                               -1 also when there is no limit */
	long long safe_bytes;       /* log that may still be written before the
	                               reader is at risk (PG: safe_wal_size) */
	char status[24];            /* the engine's word for the reader's state (PG:
	                               wal_status reserved, extended, unreserved,
	                               lost) */
} ps_log_retention;

typedef struct ps_source_ops {
	int abi_version;                 /* PS_SOURCE_ABI_VERSION */
	const char *name;                /* plugin name, e.g. "pg" */
	const char *connector;           /* envelope name, e.g. "postgresql" */
	const char *const *url_schemes;  /* NULL-terminated, e.g. {"postgresql", "postgres", NULL} */
	const ps_option_def *options;    /* fields it accepts in "source" (options.h),
	                                    ended by a NULL name; NULL: none */
	const char *const *check_ids;    /* the precheck ids it reports besides
	                                    "source.connect" (check.h), NULL-terminated */

	/* Optional. What identifies the source, whoever connects, for the
	 * checkpoint's fingerprint; default ps_url_identity. */
	void (*identity)(const ps_url *url, const json_t *options, char *buf, size_t len);
	/* Optional. What a job with these options holds on the source and how
	 * to release it by hand (messages, `penstock job delete`). */
	void (*resources)(const json_t *options, ps_source_resources *out);

	/* Required. Connects; does not start streaming. */
	int (*open)(ps_source **out, const ps_source_config *cfg, ps_error *err);
	/* Required. Selects tables, creates or checks publication and slot. */
	int (*prepare)(ps_source *src, int mode, ps_prepare_result *res, ps_error *err);
	/* Required. Starts streaming after position (NULL or "": from the slot's
	 * own point); transactions up to redo_until (NULL: none) are reprocessing.
	 * state is the engine state checkpointed with position (NULL: none). */
	int (*start)(ps_source *src, const char *position, const char *redo_until,
	             const char *state, ps_error *err);
	/* Required. Next item, or PS_READ_NONE after timeout_ms. */
	int (*read)(ps_source *src, ps_read_item *item, int timeout_ms, ps_error *err);
	/* Required. Everything up to position is durable in the target. Also
	 * keeps the connection alive: call it at least every few seconds. */
	int (*ack)(ps_source *src, const char *position, ps_error *err);
	/* Required. <0, 0, >0 as a is before, equal to, after b. */
	int (*position_compare)(const char *a, const char *b);
	/* Optional. The log's current end (PG: pg_current_wal_lsn()). */
	int (*current_position)(ps_source *src, char *buf, size_t len, ps_error *err);
	/* Optional. PS_OK when text is a position of this source, else PS_EINVAL
	 * saying how one is written (user input: `penstock run --until`). */
	int (*position_check)(const char *text, ps_error *err);
	/* Optional. Bytes of log between two positions, for lag; -1 if unknown. */
	long long (*position_distance)(const char *from, const char *to);
	/* Optional. Writes a marker into the log now and returns in pos a
	 * position that every transaction committed before the call is <= and
	 * the marker's own transaction is > (the core streams until it passes
	 * pos). The marker itself is never delivered as a change. Call it before
	 * start or from the reader thread. */
	int (*fence)(ps_source *src, char *pos, size_t len, ps_error *err);
	/* Optional. Drops what the job holds on the source (PG: slot and
	 * publication), for a fresh start or a stop, waiting a few seconds for a
	 * reader of the last run to let go of it; done receives what was
	 * released, in the plugin's words. */
	int (*drop)(ps_source *src, char *done, size_t done_len, ps_error *err);
	/* Required. Frees everything; src may be NULL. */
	void (*close)(ps_source *src);

	/* --- initial load; optional as a group ---------------------------- */
	/* Describes the selected tables (after prepare): *defs is a malloc'd
	 * array of *n malloc'd defs (free each with ps_table_def_free, then the
	 * array), ordered by schema and name. */
	int (*describe)(ps_source *src, ps_table_def ***defs, size_t *n, ps_error *err);
	/* Splits a table with a primary key into ranges of about chunk_rows rows:
	 * *bounds is a malloc'd array of *nbounds ascending, distinct key tuples
	 * (unit i covers bounds[i-1] <= key < bounds[i]; the first and last are
	 * open). *nbounds = 0: one unit. The bounds need not come from any
	 * snapshot: any bounds partition the key space. */
	int (*split)(ps_source *src, const ps_table_def *def, int64_t chunk_rows,
	             ps_key_bound **bounds, size_t *nbounds, ps_error *err);
	/* A new exported snapshot and its point (PG: a temporary slot created
	 * with EXPORT_SNAPSHOT), for copying units again after a restart. */
	int (*snapshot_export)(ps_source *src, char *name, size_t name_len,
	                       char *point, size_t point_len, ps_error *err);
	/* Ends the exported snapshot (and whatever holds it). */
	int (*snapshot_release)(ps_source *src, ps_error *err);
	/* A worker connection that imports the snapshot (invariant 7). */
	int (*copy_open)(ps_source *src, const char *snapshot, ps_copier **out, ps_error *err);
	/* Streams the rows of def's table within range to fn, under the
	 * snapshot. The ps_table passed to fn is def->table. */
	int (*copy_unit)(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
	                 ps_row_fn fn, void *ctx, ps_error *err);
	/* Frees the copier; c may be NULL. */
	void (*copy_close)(ps_copier *c);
	/* Optional. The point of this copier's own snapshot, when it is not the
	 * exported one: an engine whose sessions cannot share one snapshot
	 * (MariaDB: each START TRANSACTION WITH CONSISTENT SNAPSHOT has its own
	 * binlog position) opens one per copier at or after the exported point
	 * and says where here. The load records it as the point of every unit
	 * the copier copies, and the stream re-processes each table's changes
	 * up to its newest unit point (invariant 5 holds per unit). Returns 1
	 * when it wrote a point, 0 when the copier uses the exported snapshot. */
	int (*copy_point)(ps_copier *c, char *point, size_t len);

	/* --- prechecks; optional ------------------------------------------ */
	/* Checks what a job needs from this source (penstock/check.h), without
	 * an instance: connects on its own from cfg (cfg->want_snapshot says
	 * the job copies an initial load), creates and changes nothing (no
	 * slot, no publication), appends its items to report and the tables it
	 * would select to tables. Returns 0 whenever the checks ran: failures
	 * are items, and a connection failure is the item source.connect
	 * failed with the items that need the connection skipped. An error
	 * only when they could not run at all (out of memory). */
	int (*precheck)(const ps_source_config *cfg, ps_check_report *report,
	                ps_check_tables *tables, ps_error *err);

	/* --- live table changes; optional as a group (invariants 8, 9) ----- */
	/* Selects the tables the patterns name now, with prepare's rules and
	 * refusals, and makes the log deliver exactly those from now on, writing
	 * the marker `mark` in the same source transaction (PG: ALTER
	 * PUBLICATION ... ADD / DROP TABLE and a transactional logical message,
	 * in one transaction). When with_key is set, an added table without a
	 * primary key is refused (PS_EINVAL) and nothing changes. Later
	 * prepares select with these patterns. */
	int (*retable)(ps_source *src, const char *const *include, size_t ninclude,
	               const char *const *exclude, size_t nexclude, bool with_key,
	               const char *mark, ps_retable_result *res, ps_error *err);
	/* Writes a marker with this content into the log now, outside any
	 * transaction (read delivers it as a transaction of its own); *pos
	 * receives its position. */
	int (*mark)(ps_source *src, const char *content, char *pos, size_t len, ps_error *err);
	/* Reads at most max_rows rows of def's table (it needs a primary key)
	 * whose key is greater than `after` (NULL: from the first), in key
	 * order, handing each to fn as copy_unit does (values valid during the
	 * call); *nrows receives how many. Invariant 9: it first waits until
	 * every transaction in progress when it was called has ended. */
	int (*chunk_read)(ps_source *src, const ps_table_def *def, const ps_key_bound *after,
	                  int max_rows, ps_row_fn fn, void *ctx, int *nrows, ps_error *err);

	/* --- raw initial load; optional as a pair, needs the load group ----- */
	/* A unit can also be copied as the engine's own bulk format (PG: binary
	 * COPY), handed to a sink that loads it without decoding rows, when the
	 * sink recognises the format (sink.h load_raw_*).
	 *
	 * Names the format copy_unit_raw would write for def's table into
	 * format ("" when the table cannot be copied raw, with the reason in
	 * why, e.g. a column of a type the target may number differently). The
	 * name says everything a sink must know to accept the bytes (PG:
	 * "postgresql-binary-copy/15", the server's major version); the
	 * column types are def->table->columns[].type_id / type_mod. */
	int (*copy_raw_format)(ps_copier *c, const ps_table_def *def, char *format,
	                       size_t format_len, char *why, size_t why_len, ps_error *err);
	/* Streams the unit (as copy_unit) as one complete stream in that format
	 * (header, rows, trailer), handed to fn in pieces; checks that the
	 * stream is whole before returning PS_OK. */
	int (*copy_unit_raw)(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
	                     ps_raw_fn fn, void *ctx, ps_error *err);

	/* --- cutover; optional ---------------------------------------------- */
	/* The sequences the selected tables own or draw defaults from, with
	 * their current values (*seqs malloc'd, free with ps_sequences_free).
	 * Needs no prepare. */
	int (*sequences)(ps_source *src, ps_sequence **seqs, size_t *n, ps_error *err);

	/* --- schema; optional (penstock/schema.h) -------------------------- */
	/* The objects the target should get once the initial load has copied
	 * every table (after describe, on the reader thread): foreign keys
	 * between the selected tables, the current values of the sequences
	 * their defaults and identities use, and with target.schema "full" the
	 * rest of their schemas. *out is malloc'd (ps_schema_free), or NULL
	 * when there is nothing. What the tables need before they are created
	 * comes with each def (requires). */
	int (*schema_after_load)(ps_source *src, ps_schema **out, ps_error *err);

	/* --- what an operator watches; optional --------------------------- */
	/* The log the source keeps for this job and the engine's limit
	 * (ps_log_retention), for the status, /metrics and alerts. Called on
	 * the thread that owns src, every few seconds; a cheap catalog read.
	 * Fields the engine cannot tell stay -1 / "" (the wrapper sets them so
	 * before the call). */
	int (*log_retention)(ps_source *src, ps_log_retention *out, ps_error *err);
	/* The position as a byte offset in the source's log, when the engine
	 * numbers its log by bytes (PG: the LSN as an integer); -1 when it
	 * cannot. Needs no instance: /metrics turns positions into numbers. */
	long long (*position_offset)(const char *pos);

	/* --- schema changes; optional (invariants 10, 11) ------------------- */
	/* Whether the tables the patterns in force select now differ from those
	 * the log delivers (invariant 11). A catalog read; changes nothing. On
	 * the reader thread, between transactions, every few seconds. Needs the
	 * live table group. */
	int (*selection_check)(ps_source *src, bool *changed, ps_error *err);
	/* Optional, with selection_check. Whether def still describes its table:
	 * *out receives a new def (as describe makes them) when its columns or
	 * partitions changed since, NULL when def holds; *gone is set when the
	 * table no longer exists. One catalog read when nothing changed. On the
	 * reader thread: a backfill reads each chunk with the table's current
	 * columns. */
	int (*redescribe)(ps_source *src, const ps_table_def *def, ps_table_def **out, bool *gone,
	                  ps_error *err);
} ps_source_ops;

#endif
