/*
 * pgsink.h — internals of the PostgreSQL sink, shared by its files:
 *
 *   pgsink.c          the ops table, the connection, target transactions,
 *                     the pipeline of pending commands, checkpoints
 *   pgsink_copy.c     initial-load rows through COPY ... FROM STDIN (text
 *                     format), and binary COPY streams passed through (the
 *                     raw path)
 *   pgsink_tables.c   the per-table cache (target columns and primary key)
 *                     and truncates
 *   pgsink_apply.c    the prepared statements of insert / update / delete
 *   pgsink_ddl.c      table_prepare and table_finish
 *   pgsink_schema.c   the objects a table needs and those created after the
 *                     load (penstock/schema.h)
 *   pgsink_net.c      net changes: a batch's changes per key, applied as
 *                     their net effect
 *   pgsink_precheck.c the sink's prechecks
 *   pgsink_sequences.c the cutover's sequences
 *
 * Nothing here is part of the plugin contract; only pgsink.c exports a symbol
 * the core knows (ps_sink_pg). Helpers shared between the files are named
 * pgs_*; the pure ones that unit tests reach are ps__pg_*.
 */
#ifndef PS_SINK_PG_SINK_H
#define PS_SINK_PG_SINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/url.h"
#include "penstock/sink.h"
#include "util/buf.h"

#define PGS_COPY_CHUNK ((size_t)64 << 10)     /* bytes per PQputCopyData */
#define PGS_COPY_BUF_LIMIT ((size_t)256 << 10)
#define PGS_PIPELINE_MAX 1024                 /* commands in flight before a sync */
#define PGS_STMTS_PER_TABLE 64                /* prepared shapes kept per table */
#define PGS_SQL_LIMIT ((size_t)4 << 20)       /* longest statement we build */
#define PGS_WARN_INTERVAL_NS (10ull * 1000000000ull)
#define PGS_NET_MAX_BYTES ((size_t)8 << 20)   /* change data held by pgsink_net.c */
#define PGS_MULTI_ROWS 64                     /* rows per multi-row INSERT */
#define PGS_NET_MAX_ITEMS ((size_t)65536)     /* entries held by pgsink_net.c */
#define PGS_MARKS_MAX 64                      /* commits awaiting durability kept apart */

/* One prepared statement: the SQL for one table and one statement shape. */
typedef struct pgs_stmt {
	struct pgs_stmt *next;       /* most recently used first */
	char name[24];               /* "ps_<n>", unique per connection */
	uint8_t *shape;              /* what the SQL depends on (pgsink_apply.c) */
	size_t shape_len;
	int nparams;
	int *params;                 /* where $i comes from: PGS_PARAM(src, index) */
} pgs_stmt;

#define PGS_FROM_NEW 0               /* new_values[index] */
#define PGS_FROM_OLD 1               /* old_values[index] */
#define PGS_FROM_KEY 2               /* the old key's value of key column index */
#define PGS_PARAM(src, index) (((index) << 2) | (src))

/* What the sink knows about one target table, for one source definition. */
typedef struct pgs_table {
	struct pgs_table *next;      /* most recently used first */
	ps_table *src;               /* the definition this was built for (ref held) */
	char *qname;                 /* "schema"."name", quoted */
	char relkind;                /* 'r' or 'p' (partitioned) */
	int ncols;                   /* src->ncolumns */
	char **qcol;                 /* quoted target name of each source column */
	char **coltype;              /* its target type, format_type() text */
	char **basetype;             /* the same without modifiers (format_type(t, NULL)):
	                                what a key parameter is cast to, so that a
	                                composite key compares as its own type and a
	                                cast never truncates or rounds */
	int nkey;                    /* primary key columns in the target, 0 if none */
	int *key;                    /* source column index of each, in key order */
	bool *is_pk;                 /* per source column */
	bool other_unique;           /* a unique index or exclusion constraint
	                                besides the primary key */
	pgs_stmt *stmts;
	int nstmts;
} pgs_table;

/* pgsink_net.c: the net change of one key (or one held insert of a keyless table). */
typedef struct pgs_net_entry {
	uint8_t op;                  /* NET_* (pgsink_net.c) */
	uint32_t hash;
	uint32_t key_len;
	char *key;
	ps_change *c;                /* owned */
} pgs_net_entry;

/* pgsink_net.c: what is held for one table definition, in arrival order. */
typedef struct pgs_net_group {
	ps_table *table;             /* reference */
	pgs_net_entry *e;
	size_t n, cap;
	int32_t *index;              /* open addressing into e, -1 empty */
	size_t index_cap;            /* a power of two, or 0 */
	size_t bytes;
} pgs_net_group;

/* A command sent in the pipeline whose result has not been read yet. */
typedef enum pgs_pending_kind {
	PGS_P_BEGIN = 1,
	PGS_P_COMMIT,
	PGS_P_PREPARE,
	PGS_P_CHANGE,                /* insert / update / delete */
	PGS_P_OTHER,                 /* truncate, checkpoint, deallocate */
	PGS_P_WAL                    /* the WAL insert and flush positions (pgsink.c
	                                NOTES 7) */
} pgs_pending_kind;

typedef struct pgs_pending {
	uint8_t kind;                /* pgs_pending_kind */
	uint8_t op;                  /* change op, for PGS_P_CHANGE */
	bool count_missing;          /* 0 rows is a diverged target (warn) */
	ps_table *table;             /* reference, for messages; NULL if none */
	const char *what;            /* static: "insert", "checkpoint", ... */
} pgs_pending;

struct ps_sink {
	char *job;
	ps_url url;
	PGconn *conn;
	char *url_text;              /* as configured, for a second connection */
	char *password;              /* NULL, or the password: never logged; wiped at close */
	PGconn *side;                /* autocommit connection for enum labels (pgsink_follow.c) */

	/* target transaction and connection mode (pgsink.c NOTES) */
	bool in_txn;                 /* BEGIN sent, COMMIT not yet */
	bool pipeline;               /* the connection is in pipeline mode */
	int npending;
	pgs_pending pending[PGS_PIPELINE_MAX + 4];
	bool failed;                 /* an error left the transaction unusable */

	/* asynchronous commits and their durability (pgsink.c NOTES 7) */
	bool async;                  /* the session commits with synchronous_commit = off */
	uint64_t nflush;             /* flushes that returned 0 (sink.h rule a) */
	struct pgs_mark {
		uint64_t flush;          /* the flush that committed ... */
		uint64_t lsn;            /* ... with its commit record before this WAL position */
	} marks[PGS_MARKS_MAX];      /* commits not yet known durable, oldest first */
	int nmarks;
	uint64_t wal_insert;         /* WAL positions last read (bytes from 0/0) */
	uint64_t wal_flush;
	uint64_t ncommits, nasks, nwaits;   /* for the log at close */
	int failure_code;            /* the first such error's code */
	char failure[PS_ERROR_MESSAGE_MAX];

	/* COPY of initial-load rows (pgsink_copy.c) */
	bool copying;
	pgs_table *copy_table;       /* table of the running COPY */
	ps_table *copy_src;          /* definition it was started for (borrowed) */
	ps_buf copy_buf;
	uint64_t copy_rows;
	bool copy_raw;               /* a binary COPY of the raw path (copy_src NULL) */

	/* truncates of one source statement, sent as one TRUNCATE */
	ps_buf trunc_sql;            /* "TRUNCATE a, b" while ntrunc > 0 */
	int ntrunc;
	uint32_t trunc_flags;
	uint64_t trunc_lsn;
	ps_table *trunc_first;       /* reference, for messages */

	/* statements (pgsink_apply.c) */
	pgs_table *tables;
	uint64_t stmt_seq;
	ps_buf sql;                  /* scratch for building SQL */
	const char **values;         /* scratch parameter array */
	int values_cap;
	const ps_value **keyv;       /* scratch: resolved old key values */
	int keyv_cap;
	uint8_t *shape;              /* scratch shape */
	size_t shape_cap;

	/* net changes (pgsink_net.c) */
	bool replica;                /* session_replication_role = replica is set */
	pgs_net_group *groups;
	int ngroups, groups_cap;
	size_t net_items, net_bytes;
	ps_buf net_key, net_key2;    /* scratch keys */
	ps_value *net_vals;          /* scratch merged values */
	int net_vals_cap;

	/* update/delete that found no row (rate-limited warning) */
	uint64_t missing_total;
	uint64_t missing_unreported;
	uint64_t missing_warned_ns;
	char missing_last[300];
};

/* --- pgsink_sequences.c: sink.h sequences_set ------------------------------- */
int pgs_sequences_set(ps_sink *s, const ps_sequence *seqs, size_t n, char *summary, size_t len,
                      ps_error *err);

/* --- pgsink.c: connection, transaction and pipeline ------------------------- */

/* Fails at once when an earlier error left the sink unusable. */
int pgs_check_usable(ps_sink *s, ps_error *err);
/* Records err as the reason the sink is unusable until close; returns its code. */
int pgs_fail(ps_sink *s, ps_error *err);
/* Ends a running COPY and sends pending truncates: called before anything
 * else is done on the connection. */
int pgs_settle(ps_sink *s, ps_error *err);
/* Opens the target transaction if none is open (BEGIN is pipelined). */
int pgs_ensure_txn(ps_sink *s, ps_error *err);
/* Enters pipeline mode if needed; syncs and reads results when the
 * pipeline is full. Call before every send. */
int pgs_pipeline_ready(ps_sink *s, ps_error *err);
/* Sends a parameterised command (unnamed statement) in the pipeline and
 * records it as pending. */
int pgs_send_query(ps_sink *s, const char *sql, int nparams, const char *const *params,
                   int kind, ps_table *table, const char *what, ps_error *err);
/* Records a command just sent (takes a new reference on table). */
void pgs_pending_push(ps_sink *s, int kind, int op, bool count_missing,
                      ps_table *table, const char *what);
/* Syncs, reads and checks every pending result, and leaves pipeline mode,
 * so that synchronous commands (COPY, catalog queries, DDL) can run. */
int pgs_leave_pipeline(ps_sink *s, ps_error *err);
/* pg_exec after leaving the pipeline; a server error inside the target
 * transaction makes the sink unusable. */
/* pgsink_mysql.c: tables of a MySQL/MariaDB source (ps_table_def.engine
 * "mysql"): the PostgreSQL type of a column (NULL: map by type class), its
 * default appended to b when PostgreSQL reads it the same way, and keys and
 * indexes made from their columns. */
const char *pgs_mysql_type(const ps_column_def *cd, const ps_column *col, char *buf, size_t len);
int pgs_mysql_default(ps_sink *s, const ps_table *t, const ps_column_def *cd,
                      const ps_column *col, ps_buf *b);
int pgs_mysql_constraint(ps_sink *s, const ps_table_def *def, const ps_constraint_def *cd,
                         const char *qname, const PGresult *existing, ps_error *err);

int pgs_exec(ps_sink *s, PGresult **out, ps_error *err, const char *what,
             const char *sql, int nparams, const char *const *params);
/* Counts an update/delete that found no row; warns at most every 10 s. */
void pgs_note_missing(ps_sink *s, int op, const ps_table *t);

/* --- pgsink_copy.c ------------------------------------------------------------ */

int pgs_copy_row(ps_sink *s, pgs_table *t, const ps_change *c, ps_error *err);
int pgs_copy_end(ps_sink *s, ps_error *err);
/* Abandons a COPY (close): no error reported. */
void pgs_copy_abort(ps_sink *s);
/* Escapes len bytes of src for COPY text format into dst, which has room
 * for 2 * len bytes; returns the bytes written. */
size_t ps__pg_copy_escape(char *dst, const char *src, size_t len);
/* sink.h load_raw_accepts / _begin / _write / _end: binary COPY passthrough */
int pgs_raw_accepts(ps_sink *s, const ps_table_def *def, const char *format, bool *accepted,
                    char *why, size_t why_len, ps_error *err);
int pgs_raw_begin(ps_sink *s, const ps_table_def *def, const char *format, ps_error *err);
int pgs_raw_write(ps_sink *s, const char *data, size_t len, ps_error *err);
int pgs_raw_end(ps_sink *s, int64_t *rows, ps_error *err);

/* --- pgsink_tables.c ---------------------------------------------------------- */

/* The cache entry of the change's table, built from the target catalog on
 * first use or when the definition's columns changed. */
int pgs_table_get(ps_sink *s, ps_table *src, pgs_table **out, ps_error *err);
/* Forgets what is cached about schema.name (after DDL on it). */
int pgs_table_forget(ps_sink *s, const char *schema, const char *name, ps_error *err);
void pgs_tables_free(ps_sink *s);
/* Queues a truncate; sent with the ones that directly follow it. */
int pgs_truncate_add(ps_sink *s, const ps_change *c, ps_error *err);
int pgs_truncate_send(ps_sink *s, ps_error *err);

/* --- pgsink_apply.c ----------------------------------------------------------- */

/* Applies one insert / update / delete through prepared statements. */
int pgs_apply_change(ps_sink *s, const ps_txn *txn, const ps_change *c, ps_error *err);
/* Applies n inserts of one table definition (not reprocessing) with
 * multi-row statements where their columns allow. */
int pgs_apply_inserts(ps_sink *s, const ps_change *const *cs, int n, ps_error *err);
void pgs_stmt_free(pgs_stmt *st);
/* Sends DEALLOCATE for st's server-side statement (pipelined). */
int pgs_stmt_deallocate(ps_sink *s, const pgs_stmt *st, ps_error *err);

/* --- pgsink_net.c ------------------------------------------------------------- */

/* Applies an insert / update / delete: held as part of its key's net change
 * when that gives the same final state (pgsink_net.c NOTES 2), else at once
 * after what its table holds. */
int pgs_net_write(ps_sink *s, pgs_table *t, const ps_txn *txn, const ps_change *c,
                  ps_error *err);
/* Applies everything held (pgs_settle calls it). */
int pgs_net_flush(ps_sink *s, ps_error *err);
void pgs_net_free(ps_sink *s);

/* --- pgsink_ddl.c ------------------------------------------------------------- */

int pgs_table_prepare(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                      bool *created, ps_error *err);
int pgs_table_finish(ps_sink *s, const ps_table_def *def, ps_error *err);
/* Inserts IF NOT EXISTS after CREATE [UNIQUE] INDEX [CONCURRENTLY]; a copy
 * (malloc'd), or NULL when sql is not a CREATE INDEX statement. Kept
 * unchanged when it already says IF NOT EXISTS. */
char *ps__pg_index_if_not_exists(const char *sql);
/* Splits a quoted "schema"."name" (either part may be unquoted) into its
 * two identifiers, unquoted. 0, or PS_EINVAL when it is not such a name. */
int ps__pg_split_qualified(const char *text, char *schema, size_t schema_len,
                           char *name, size_t name_len);

/* Runs sql under a savepoint; an "already exists" error (another writer
 * created it first) is not an error (pgsink_ddl.c NOTES 4). */
int pgs_exec_may_race(ps_sink *s, const char *sql, const char *what, ps_error *err);
/* Pieces of CREATE TABLE that following a change reuses (pgsink_follow.c):
 * "schema"."name"; the schema created when missing; the table's OID as text
 * (empty when none); sequences created (or, owned_by, owned by their
 * column); one column's definition; a quoted literal; user types present;
 * COMMENT ON. */
int pgs_qualified(ps_sink *s, ps_buf *b, const char *schema, const char *name);
int pgs_ensure_schema(ps_sink *s, const char *schema, ps_error *err);
int pgs_find_table(ps_sink *s, const ps_table *t, char *oid, size_t len, ps_error *err);
int pgs_sequences(ps_sink *s, const ps_table_def *def, const char *qname, bool owned_by,
                  ps_error *err);
int pgs_column_sql(ps_sink *s, ps_buf *b, const ps_table_def *def, int i, bool pg);
int pgs_put_literal(ps_sink *s, ps_buf *b, const char *text);
int pgs_check_user_types(ps_sink *s, const ps_table_def *def, ps_error *err);
int pgs_comment_one(ps_sink *s, const char *on, const char *qname, const char *column,
                    const char *text, const char *what, ps_error *err);

/* --- pgsink_follow.c: schema changes (sink.h table_change) ------------------ */

/* sink.h table_change */
int pgs_table_change(ps_sink *s, const ps_txn *txn, const ps_table_change *tc,
                     const ps_table_options *opt, bool *backfill, ps_error *err);
/* Records that penstock created def's table (and its partitions) in the
 * target, with the source columns it made (penstock.tables), in the open
 * transaction. */
int pgs_registry_created(ps_sink *s, const ps_table_def *def, ps_error *err);
/* table_prepare of a table joining a running job (ps_table_options rejoin)
 * that penstock created: brought to def and emptied. *done when it was. */
int pgs_rejoin(ps_sink *s, const ps_table_def *def, const char *oid, const char *qname,
               bool *done, ps_error *err);
/* The target table penstock made for def's source table under another name
 * (renamed or moved on the source), renamed to def's name: its OID into oid,
 * "" when there is none. */
int pgs_renamed_from(ps_sink *s, const ps_table_def *def, char *oid, size_t len, ps_error *err);

/* --- pgsink_schema.c ---------------------------------------------------------- */

/* Creates the objects the target lacks, in order, in the open transaction
 * (penstock/schema.h); needed_by ("table public.t needs") goes into
 * messages; *applied (may be NULL) counts what ran. */
int pgs_ensure_objects(ps_sink *s, const ps_schema_object *objects, size_t n,
                       const char *needed_by, size_t *applied, ps_error *err);
/* The lookup of o in a target (schema.h rule 2): a statement returning one
 * boolean and its parameters (params has room for 2; borrowed from o). */
int pgs_object_probe(const ps_schema_object *o, const char **sql, const char **params,
                     int *nparams, ps_error *err);
/* sink.h schema_apply */
int pgs_schema_apply(ps_sink *s, const ps_schema *schema, size_t *applied, ps_error *err);

/* pgsink_precheck.c: sink.h precheck */
int pgs_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                 const ps_check_tables *tables, ps_check_report *report, ps_error *err);

#endif
