/*
 * pg_internal.h — the PostgreSQL source's state, shared by its parts:
 * pg_source.c (connections, table selection, publication, slot),
 * pg_stream.c (the replication stream: reading, decoding, acknowledging),
 * pg_snapshot.c (describe, split, exported snapshots) and pgsrc_copy.c (the
 * initial load's worker connections and the COPY text parser).
 * Not part of any public contract.
 */
#ifndef PS_SOURCE_PG_INTERNAL_H
#define PS_SOURCE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "penstock/url.h"
#include "penstock/source.h"
#include "source/pg/pgoutput.h"
#include "util/buf.h"
#include "util/clock.h"

#define PG_PENDING_MAX 3
#define PG_LONG_XIDS 256

typedef struct pg_ddl pg_ddl;

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
	bool want_snapshot;        /* prepare exports a snapshot when it creates the slot */
	int schema;                /* ps_schema_mode (source.h, issue 14) */
	int keyless;               /* ps_keyless */
	int foreign_keys;          /* ps_foreign_keys */
	bool no_extensions;
	bool load_only;            /* a snapshot job */

	/* Everything above is fixed at open and only read afterwards: copy_open
	 * runs on worker threads and may read it (source.h invariant 7). Nothing
	 * below may be touched by a worker thread. */

	/* schema changes (issue 15, reader thread only) */
	pg_ddl *ddl;               /* what was announced per relation (pg_ddl.c) */
	char **table_names;        /* per table_oids entry: "schema.name" when selected */
	uint64_t *table_sigs;      /* per table_oids entry: its partitions' signature */
	uint64_t sel_sig;          /* the whole selection's signature (selection_check) */

	PGconn *sql;               /* catalog queries, publication, slot checks */
	PGconn *repl;              /* replication=database, owns the stream */
	pgo_relcache *cache;

	/* initial load (reader thread only) */
	uint32_t *table_oids;      /* tables prepare selected, for describe */
	bool *table_insert_only;   /* per table_oids entry: captured insert-only */
	size_t ntable_oids;
	char snapshot[64];         /* snapshot exported by prepare on repl, "" if none */
	PGconn *snap;              /* snapshot_export's replication connection: its
	                              temporary slot and snapshot live as long as it */

	/* stream state (reader thread only) */
	bool streaming;
	unsigned commits_seen;     /* transactions read since the reader last slept */
	uint64_t start_lsn;        /* deliver only transactions committed after it */
	uint64_t redo_until;       /* transactions committed up to it are reprocessing */
	uint64_t received_lsn;     /* highest WAL position seen in any message */
	uint64_t server_wal_end;   /* from keepalives: everything before is sent */
	uint64_t delivered_lsn;    /* end of the last transaction handed out */
	uint64_t acked_lsn;        /* durable in the target (from ack) */
	uint64_t reported_flush;   /* last flush position sent to the server */
	uint64_t last_feedback_ns;    /* monotonic */
	bool in_txn;               /* between a delivered BEGIN and its COMMIT */
	bool skipping;             /* inside a transaction at or before start_lsn */
	ps_txn txn;                /* the transaction being delivered */

	/* backfill chunks (pg_live.c, reader thread only): the transactions in
	 * progress after the last mark, which a chunk read waits for */
	uint64_t *wait_xids;
	size_t nwait;
	bool wait_taken;
	uint64_t wait_since_ns;       /* monotonic */
	uint64_t long_xids[PG_LONG_XIDS];  /* waited for in vain: running for long */
	size_t nlong, long_next;

	/* items produced by one message and not yet returned */
	ps_read_item pending[PG_PENDING_MAX];
	int npending, pending_next;
	pgo_msg msg;               /* a decoded message with changes left to hand out */
	size_t msg_next;
};

/* Feedback interval: well under the server's wal_sender_timeout (60 s). */
#define PG_FEEDBACK_INTERVAL_NS (10ULL * 1000000000ULL)


/* SQL appenders that remember the first failure in *rc, so that a long run
 * of appends is checked once and never sends half a statement
 * (pgsrc_copy.c). put_columns writes "c1", "c2" of t's columns at cols (all of
 * them, in order, when cols is NULL); put_table "schema"."name". */
void pg_put(int *rc, ps_buf *b, const char *s);
void pg_put_ident(int *rc, PGconn *conn, ps_buf *b, const char *ident);
void pg_put_columns(int *rc, PGconn *conn, ps_buf *b, const ps_table *t, const int *cols,
                    int ncols);
void pg_put_table(int *rc, PGconn *conn, ps_buf *b, const ps_table *t);

/* pgsrc_select.c: which tables a job captures, and its publications. */

/* The listing of candidate tables (relkind r and p outside the system and
 * penstock schemas), ordered by schema and name; its columns: */
extern const char *const PG_TABLES_SQL;
enum { PG_T_SCHEMA, PG_T_NAME, PG_T_REPLIDENT, PG_T_HAS_PK, PG_T_OID, PG_T_RELKIND,
       PG_T_ANCESTORS, PG_T_IDENTITY, PG_T_CAN_SELECT, PG_T_OWNS, PG_T_OWNER, PG_T_BOUND };

/* How a selected table can be captured (pgsrc_select.c note 2). */
enum { PG_CLASS_KEYED = 1, PG_CLASS_IDENTITY, PG_CLASS_KEYLESS };
int pg_table_class(const PGresult *r, int row);

/* selected[i] for each row of a PG_TABLES_SQL result: matched by the
 * patterns and not a partition of a matched table. 0 or PS_ENOMEM. */
int pg_tables_match(const PGresult *r, char *const *include, size_t ninclude,
                    char *const *exclude, size_t nexclude, bool *selected);

/* The tables the patterns select now: OIDs, "schema.table" names, their
 * schema and name apart, whether each has a primary key, and its class.
 * Refuses only an empty selection (tables.keyless is pg_keyless_policy's). */
typedef struct pg_selection {
	uint32_t *oids;
	char **names;
	char **schemas, **relnames;
	bool *has_key;
	int *klass;                /* PG_CLASS_* */
	uint64_t *sigs;            /* per table: its signature (pgsrc_select.c note 6) */
	uint64_t sig_all;          /* the selection's */
	size_t n;
} pg_selection;
/* Signatures of the rows of a PG_TABLES_SQL result that selected[] marks
 * (row_sigs: one per row, 0 for the others) and of them all. */
int pg_selection_sigs(const PGresult *r, const bool *selected, uint64_t *row_sigs,
                      uint64_t *all);
/* The source takes sel's tables as the ones it captures (OIDs, names,
 * signatures) with insert_only (taken); sel keeps the rest to free. */
void pg_selection_keep(ps_source *src, pg_selection *sel, bool *insert_only);
/* source.h selection_check */
int pg_selection_check(ps_source *src, bool *changed, ps_error *err);
/* source.h redescribe */
int pg_redescribe(ps_source *src, const ps_table_def *def, ps_table_def **out, bool *gone,
                  ps_error *err);
/* "schema.name" matches an include pattern and no exclude pattern. */
bool pg_selected(char **include, size_t ninclude, char **exclude, size_t nexclude,
                 const char *schema, const char *name);
int pg_select(ps_source *src, char **include, size_t ninclude, char **exclude, size_t nexclude,
              pg_selection *sel, ps_error *err);
void pg_selection_free(pg_selection *sel);
/* tables.keyless for the keyless tables of sel: refuses them (refuse), sets
 * REPLICA IDENTITY FULL on them (replica_identity_full, their class
 * becomes identity), or leaves them to be captured insert-only. */
int pg_keyless_policy(ps_source *src, pg_selection *sel, ps_error *err);
/* Whether selected table i is captured insert-only. */
bool pg_selected_insert_only(const ps_source *src, size_t i, const pg_selection *sel);
/* Creates or changes both publications to publish sel (note 4), in one
 * transaction. */
int pg_publications_ensure(ps_source *src, const pg_selection *sel, ps_error *err);
/* Whether publication name exists and belongs to a role this one is not a
 * member of (pgsrc_select.c note 7); for such a one, why gets how it differs
 * from publishing exactly the tables oids ("{...}") with publish, via the
 * partition root and unfiltered (empty when it fits). */
int pg_publication_foreign(PGconn *conn, const char *name, const char *oids, const char *publish,
                           bool *exists, bool *foreign, ps_buf *why, ps_error *err);
/* The name of the insert-only publication next to `publication`. */
#define PG_PUBNAME_MAX 64
void pg_inserts_publication(const char *publication, char *out, size_t len);

/* pg_stream.c */
/* A transactional logical message prefix/content written into the WAL; its
 * position into pos. */
int pg_emit_message(ps_source *src, const char *prefix, const char *content, const char *what,
                    char *pos, size_t len, ps_error *err);
/* source.h start; state (the checkpoint's slot and publication) is not
 * needed: the options name them. */
int pg_stream_start(ps_source *src, const char *position, const char *redo_until,
                    const char *state, ps_error *err);
int pg_stream_read(ps_source *src, ps_read_item *item, int timeout_ms, ps_error *err);
int pg_stream_ack(ps_source *src, const char *position, ps_error *err);
/* source.h fence: a transactional logical message with this prefix, which the
 * stream drops when it comes back. */
#define PG_FENCE_PREFIX "penstock.fence"
int pg_stream_fence(ps_source *src, char *pos, size_t len, ps_error *err);

/* pg_snapshot.c */
int pg_describe(ps_source *src, ps_table_def ***defs, size_t *n, ps_error *err);
/* describe for the given tables (pg_live.c describes the added ones). */
int pg_describe_oids(ps_source *src, const uint32_t *oids, size_t noids, ps_table_def ***defs,
                     size_t *n, ps_error *err);
int pg_split(ps_source *src, const ps_table_def *def, int64_t chunk_rows,
             ps_key_bound **bounds, size_t *nbounds, ps_error *err);
int pg_snapshot_export(ps_source *src, char *name, size_t name_len, char *point,
                       size_t point_len, ps_error *err);
int pg_snapshot_release(ps_source *src, ps_error *err);
/* The primary key's column positions in def->table, in key order: *keys
 * points into def (borrowed), *nkeys = 0 when the table has no usable key. */
void pg_primary_key(const ps_table_def *def, const int **keys, int *nkeys);

/* pgsrc_precheck.c: source.h precheck, and the ids of its items */
int pg_precheck(const ps_source_config *cfg, ps_check_report *report, ps_check_tables *tables,
                ps_error *err);
extern const char *const pg_check_ids[];

/* pg_source.c: the value of option name (slot, publication), or its
 * default for the job; malloc'd, NULL on OOM. */
char *pg_option_dup(const json_t *opts, const char *name, const char *job_name);

/* pgsrc_sequences.c: source.h sequences */
int pg_sequences(ps_source *src, ps_sequence **seqs, size_t *n, ps_error *err);

/* pg_live.c: source.h retable, mark, chunk_read */
int pg_retable(ps_source *src, const char *const *include, size_t ninclude,
               const char *const *exclude, size_t nexclude, bool with_key, const char *mark,
               ps_retable_result *res, ps_error *err);
int pg_mark(ps_source *src, const char *content, char *pos, size_t len, ps_error *err);
int pg_chunk_read(ps_source *src, const ps_table_def *def, const ps_key_bound *after,
                  int max_rows, ps_row_fn fn, void *ctx, int *nrows, ps_error *err);

/* pg_ddl.c: schema changes in the stream (source.h invariant 10) */
/* A PS_READ_TABLE item to deliver before change c, or *out NULL. */
int pg_ddl_check(ps_source *src, const ps_change *c, ps_table_change **out, ps_error *err);
void pg_ddl_free(pg_ddl *d);
/* describe's defs are the first the source knows of the tables' column
 * ordinals (pg_ddl.c note 3). */
void pg_ddl_seed(ps_source *src, ps_table_def *def);
/* t's table as the catalog has it, aligned with t's columns (*out NULL when
 * the table is gone). */
int pg_describe_table(ps_source *src, const ps_table *t, ps_table_def **out, ps_error *err);
/* A JSON array of strings into a malloc'd array (PS_EPROTO when not one). */
int pg_labels_parse(const char *json, char ***labels, int *n);
/* A signature of relid's partitions (OIDs, names, bounds). */
int pg_partitions_signature(ps_source *src, uint32_t relid, uint64_t *sig, ps_error *err);

/* pgsrc_schema.c: the objects the tables need (penstock/schema.h) */
/* Turns JIT off for a catalog connection (best effort): the catalog
 * queries are cheap to run but costed high, and JIT compiling one took
 * seconds (pgsrc_schema.c NOTES 7). */
void pg_catalog_session(PGconn *conn);
/* Fills each def's requires (nothing with target.schema bare). */
int pg_schema_requires(ps_source *src, ps_table_def **defs, size_t ndefs, ps_error *err);
/* The same on any connection: lists[i] (counts[i] objects) for roots[i]. */
int pg_schema_needs(PGconn *conn, int mode, bool no_extensions, const uint32_t *roots,
                    size_t nroots, ps_schema_object **lists, size_t *counts, ps_error *err);
/* source.h schema_after_load */
int pg_schema_after_load(ps_source *src, ps_schema **out, ps_error *err);
/* The same on any connection, for the given tables. */
int pg_schema_after(PGconn *conn, int mode, bool no_extensions, int foreign_keys,
                    const uint32_t *roots, size_t nroots, ps_schema **out, ps_error *err);
/* The sequences the tables' defaults and identity columns use (owned or
 * not), one row each: */
enum { PG_SEQ_SCHEMA, PG_SEQ_NAME, PG_SEQ_TSCHEMA, PG_SEQ_TNAME,
       PG_SEQ_COLUMN,   /* the column that owns it, or NULL */
       PG_SEQ_VALUE };  /* its last value, NULL when never used (or no privilege) */
int pg_sequences_used(PGconn *conn, const uint32_t *tables, size_t n, PGresult **out,
                      ps_error *err);

/* pgsrc_copy.c */
int pg_copy_open(ps_source *src, const char *snapshot, ps_copier **out, ps_error *err);
int pg_copy_unit(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                 ps_row_fn fn, void *ctx, ps_error *err);
void pg_copy_close(ps_copier *c);
/* source.h copy_raw_format / copy_unit_raw: binary COPY passthrough */
int pg_copy_raw_format(ps_copier *c, const ps_table_def *def, char *format, size_t format_len,
                       char *why, size_t why_len, ps_error *err);
int pg_copy_unit_raw(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                     ps_raw_fn fn, void *ctx, ps_error *err);

/*
 * Parses one row of COPY ... TO STDOUT text format in place: fields split
 * by tab, an optional final newline, `\N` alone is NULL, and backslash
 * escapes (\b \f \n \r \t \v \\, \NNN octal, \xHH hex, and \ before
 * any other character meaning that character) are decoded. values receives
 * nvalues entries of kind NULL or TEXT pointing into line, each
 * NUL-terminated; line[len] must be writable (libpq's PQgetCopyData buffers
 * have a NUL there). A different number of fields, a backslash ending the
 * row, or a NUL byte in a value is PS_EPROTO.
 */
int pg_copy_parse_row(char *line, size_t len, ps_value *values, int nvalues, ps_error *err);

#endif
