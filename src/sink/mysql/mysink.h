/*
 * mysink.h — internals of the MySQL / MariaDB sink, shared by its files:
 *
 *   mysink.c           the ops table, the connections and their sessions,
 *                      target transactions, failure, checkpoints
 *   mysink_typemap.c   pure: the column type a created table gets, and how
 *                      a canonical value becomes a MariaDB one (also used by
 *                      compare's MariaDB side: mysink_typemap.h)
 *   mysink_tables.c    target names, and the per-table cache (columns, keys,
 *                      unique keys, triggers) read from information_schema
 *   mysink_apply.c     prepared statements, array-bound (bulk) execution,
 *                      insert / update / delete, re-processing
 *   mysink_net.c       net changes: a batch's changes per key, applied as
 *                      their net effect in bulk statements
 *   mysink_load.c      initial-load rows: LOAD DATA LOCAL INFILE fed from
 *                      memory, or bulk INSERTs where LOCAL is off
 *   mysink_ddl.c       table_prepare and table_finish, on a second connection
 *   mysink_precheck.c  the sink's prechecks
 *   mysink_sequences.c the cutover's AUTO_INCREMENT counters
 *
 * Nothing here is part of the plugin contract; only mysink.c exports a
 * symbol the core knows (ps_sink_mysql). Helpers shared between the files
 * are mys_*; the pure ones that unit tests reach are ps__mys_*.
 */
#ifndef PS_SINK_MYSQL_SINK_H
#define PS_SINK_MYSQL_SINK_H

#include <mysql.h>
#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/sink.h"
#include "penstock/url.h"
#include "sink/mysql/mysink_typemap.h"
#include "util/buf.h"

#define MYS_SQL_LIMIT ((size_t)4 << 20)        /* longest statement we build */
#define MYS_STMTS_PER_TABLE 48                 /* prepared shapes kept per table */
#define MYS_BULK_ROWS 1000                     /* rows per array-bound execution */
#define MYS_BULK_BYTES ((size_t)4 << 20)       /* ... and about this many value bytes */
#define MYS_LOAD_BYTES ((size_t)8 << 20)       /* LOAD DATA text gathered per statement
                                                  (two statements' worth in memory) */
#define MYS_LOAD_TEXT_MAX ((size_t)3 << 30)    /* a single row escaped: up to 2 x 1 GiB */
#define MYS_LOAD_ROWS ((size_t)200000)         /* ... or this many rows */
#define MYS_NET_MAX_BYTES ((size_t)8 << 20)    /* change data held by mysink_net.c */
#define MYS_NET_MAX_ITEMS ((size_t)65536)      /* entries held by mysink_net.c */
#define MYS_WARN_INTERVAL_NS (10ull * 1000000000ull)
#define MYS_LOCK_WAIT_S 60                     /* lock waits of our sessions */
#define MYS_CHECKPOINT_TABLE "_penstock_checkpoint"
#define MYS_CHECKPOINT_DB "penstock"           /* when the URL names no database */
#define MYS_KEYS_PENDING "penstock: keys pending for job "  /* table comment marker */
#define MYS_CREATED_BY "penstock: created for job "     /* ... once its keys are built */
#define MYS_COL_MARK "penstock"                          /* column comment: penstock made it
                                                            ("penstock #<source ordinal>") */

/* One prepared statement for one table and one statement shape. */
typedef struct mys_stmt {
	struct mys_stmt *next;       /* most recently used first */
	MYSQL_STMT *st;
	uint8_t *shape;              /* what the SQL depends on (mysink_apply.c) */
	size_t shape_len;
	int nparams;
	int *params;                 /* where ? i comes from: MYS_PARAM(src, index) */
} mys_stmt;

#define MYS_FROM_NEW 0               /* new_values[index] */
#define MYS_FROM_OLD 1               /* old_values[index] */
#define MYS_FROM_KEY 2               /* the old key's value of key column index */
#define MYS_PARAM(src, index) (((index) << 2) | (src))

/* A unique key of the target other than the primary key. */
typedef struct mys_unique {
	char *name;
	int ncols;
	int *cols;                   /* source column indexes */
} mys_unique;

/* What the sink knows about one target table, for one source definition. */
typedef struct mys_table {
	struct mys_table *next;      /* most recently used first */
	ps_table *src;               /* the definition this was built for (ref held) */
	char *db, *name;             /* the target's names */
	char *qname;                 /* `db`.`name` */
	int ncols;                   /* src->ncolumns */
	char **qcol;                 /* quoted target name of each source column */
	mys_col *col;                /* how each is written and compared (typemap) */
	int nkey;                    /* primary key columns in the target, 0 if none */
	int *key;                    /* source column index of each, in key order */
	bool *is_pk;                 /* per source column */
	int nuniq;
	mys_unique *uniq;            /* other unique keys */
	bool triggers;               /* the target table has triggers */
	bool touched;                /* written in the open target transaction */
	mys_stmt *stmts;
	int nstmts;
} mys_table;

/* mysink_net.c: the net change of one key (or one held insert of a keyless table). */
typedef struct mys_net_entry {
	uint8_t op;                  /* NET_* (mysink_net.c) */
	uint32_t hash;
	uint32_t key_len;
	char *key;
	ps_change *c;                /* owned */
} mys_net_entry;

/* mysink_net.c: what is held for one table definition, in arrival order. */
typedef struct mys_net_group {
	ps_table *table;             /* reference */
	mys_net_entry *e;
	size_t n, cap;
	int32_t *index;              /* open addressing into e, -1 empty */
	size_t index_cap;            /* a power of two, or 0 */
	size_t bytes;
} mys_net_group;

/* mysink_load.c: rows of one LOAD DATA statement, as LOAD DATA text. */
typedef struct mys_batch {
	ps_buf text;
	size_t *row_at;              /* offset in text of each row */
	size_t nrows, cap;
	size_t pos;                  /* how far the server has read text */
} mys_batch;

/* mysink_load.c: initial-load rows, gathered in one batch while the other
 * may be on its way to the server (mysink_load.c NOTES 5). */
typedef struct mys_load {
	mys_table *table;            /* the table being loaded, or NULL */
	ps_table *src;               /* the definition its rows have (borrowed) */
	mys_batch batch[2];
	mys_batch *fill;             /* the batch rows gather in */
	mys_batch *fly;              /* the batch the sender thread sends, or NULL */
	bool sender_running;         /* sender must be joined */
	pthread_t sender;
	mys_table *fly_table;        /* what fly belongs to */
	ps_table *fly_src;
	int fly_rc;                  /* sender's result, read after the join */
	ps_error fly_err;
	ps_buf stmt;                 /* the LOAD DATA statement (sender's) */
	uint64_t rows_loaded;        /* rows the server took for this table so far */
	ps_change **held;            /* bulk mode: copies of the gathered rows */
	size_t nheld, held_cap;
	size_t held_bytes;
} mys_load;

/* Scratch for one array-bound execution (mysink_apply.c). */
typedef struct mys_bulk {
	MYSQL_BIND *bind;
	my_bool *isnull;             /* per parameter, for single executions */
	int nbind;
	char **ptr;                  /* nparams * nrows */
	unsigned long *len;
	char *ind;
	size_t cap;                  /* entries in ptr/len/ind */
	ps_buf arena;                /* converted bytes, offsets kept in len until bound */
	size_t *off;                 /* arena offset per entry, (size_t)-1: not in arena */
} mys_bulk;

struct ps_sink {
	char *job;
	ps_url url;
	char *password;              /* kept for the DDL connection; wiped at close */
	MYSQL *conn;                 /* data: transactions, rows, checkpoint */
	MYSQL *ddl;                  /* DDL (it commits by itself), opened on first use */
	char ck_db[130];             /* where the checkpoint table is */
	char *ck_qname;              /* `db`.`_penstock_checkpoint` */
	bool per_schema;             /* the URL names no database: schema -> database */
	bool mariadb;                /* the server is MariaDB (bulk execution, UUID) */
	bool bulk;                   /* the server takes array-bound executions */
	bool local_infile;           /* LOAD DATA LOCAL works on this connection */
	bool fk_off;                 /* foreign_key_checks = 0 took */
	size_t bulk_bytes;           /* value bytes of one array-bound execution: MYS_BULK_BYTES,
	                                or less when max_allowed_packet is small */

	/* target transaction (mysink.c NOTES) */
	bool in_txn;                 /* START TRANSACTION sent, COMMIT not yet */
	bool failed;                 /* an error left the transaction unusable */
	int failure_code;
	char failure[PS_ERROR_MESSAGE_MAX];

	mys_load load;               /* initial-load rows (mysink_load.c) */
	mys_table *tables;           /* table cache (mysink_tables.c) */
	ps_buf sql;                  /* scratch for building SQL */
	mys_bulk bulk_scratch;       /* (mysink_apply.c) */
	const ps_value **keyv;       /* scratch: resolved old key values */
	int keyv_cap;
	uint8_t *shape;              /* scratch shape */
	size_t shape_cap;

	/* net changes (mysink_net.c) */
	mys_net_group *groups;
	int ngroups, groups_cap;
	size_t net_items, net_bytes;
	ps_buf net_key, net_key2;
	ps_value *net_vals;
	int net_vals_cap;

	/* update/delete that found no row (rate-limited warning) */
	uint64_t missing_total;
	uint64_t missing_unreported;
	uint64_t missing_warned_ns;
	char missing_last[300];
};

/* --- mysink.c --------------------------------------------------------------- */

/* Fails at once when an earlier error left the sink unusable. */
int mys_check_usable(ps_sink *s, ps_error *err);
/* Records err as the reason the sink is unusable until close; returns its code. */
int mys_fail(ps_sink *s, ps_error *err);
/* Applies held net changes and gathered load rows: called before anything
 * else is done on the connection. */
int mys_settle(ps_sink *s, ps_error *err);
/* Opens the target transaction if none is open. */
int mys_ensure_txn(ps_sink *s, ps_error *err);
/* A statement on the data connection; a server error makes the sink failed. */
int mys_exec(ps_sink *s, const char *sql, const char *what, ps_error *err);
/* The DDL connection, opened on first use. */
int mys_ddl_conn(ps_sink *s, MYSQL **out, ps_error *err);
/* Counts n updates/deletes that found no row; warns at most every 10 s. */
void mys_note_missing(ps_sink *s, int op, const ps_table *t, uint64_t n);
/* Fills err from a statement handle's error (as my_error does for a connection). */
int mys_stmt_error(ps_error *err, MYSQL_STMT *st, const char *what);

/* --- mysink_tables.c ---------------------------------------------------------- */

/* The target database and table name of a source table (NOTES in
 * mysink_tables.c): the URL's database, or the source schema. */
void mys_target_names(const ps_sink *s, const char *schema, const char *name, char *db,
                      size_t db_len, char *table, size_t table_len);
/* Runs head + "col_a = 'a' AND col_b = 'b'" + tail (values quoted) on conn. */
int mys_catalog_query(MYSQL *conn, const char *head, const char *col_a, const char *a,
                      const char *col_b, const char *b, const char *tail, MYSQL_RES **res,
                      ps_error *err);
/* `db`.`name` into b. */
int mys_qualified(ps_buf *b, const char *db, const char *name);
/* The cache entry of the change's table, built from the target catalog on
 * first use or when the definition's columns changed. */
int mys_table_get(ps_sink *s, ps_table *src, mys_table **out, ps_error *err);
/* Whether the open target transaction wrote db.name (its DDL would wait). */
bool mys_table_touched(const ps_sink *s, const char *db, const char *name);
/* Forgets that any table was written (after a commit). */
void mys_tables_untouch(ps_sink *s);
/* Forgets what is cached about the target table db.name. */
void mys_table_forget(ps_sink *s, const char *db, const char *name);
void mys_tables_free(ps_sink *s);
void mys_stmt_free(mys_stmt *st);

/* --- mysink_apply.c ----------------------------------------------------------- */

/* Applies one insert / update / delete at once. */
int mys_apply_change(ps_sink *s, const ps_txn *txn, const ps_change *c, ps_error *err);
/* Applies n inserts of one table definition (not reprocessing) in bulk. */
int mys_apply_inserts(ps_sink *s, const ps_change *const *cs, size_t n, ps_error *err);
/* Applies n updates of one keyed table definition whose keys stay, in bulk. */
int mys_apply_updates(ps_sink *s, const ps_change *const *cs, size_t n, ps_error *err);
/* Deletes the rows of n changes by their key (old key; or the new row's
 * key when by_new), in bulk; count_missing warns about absent rows. */
int mys_apply_deletes(ps_sink *s, const ps_change *const *cs, size_t n, bool by_new,
                      bool count_missing, ps_error *err);
/* DELETE FROM t (a truncate of the source). */
int mys_apply_truncate(ps_sink *s, const ps_change *c, ps_error *err);
void mys_bulk_free(mys_bulk *b);

/* --- mysink_net.c ------------------------------------------------------------- */

int mys_net_write(ps_sink *s, mys_table *t, const ps_txn *txn, const ps_change *c,
                  ps_error *err);
int mys_net_flush(ps_sink *s, ps_error *err);
void mys_net_free(ps_sink *s);

/* --- mysink_load.c ------------------------------------------------------------ */

void mys_load_init(ps_sink *s);
int mys_load_row(ps_sink *s, mys_table *t, const ps_change *c, ps_error *err);
/* The load of the current table is over (another table, commit, ...): what
 * is gathered is sent and every statement of it has ended. */
int mys_load_end(ps_sink *s, ps_error *err);
/* Waits for a statement still being sent, and forgets its result: before
 * the connection is used for anything else after a failure. */
void mys_load_abandon(ps_sink *s);
void mys_load_free(ps_sink *s);
/* Escapes len bytes of src for LOAD DATA (FIELDS ESCAPED BY '\\') into dst,
 * which has room for 2 * len bytes; returns the bytes written. */
size_t ps__mys_load_escape(char *dst, const char *src, size_t len);

/* --- mysink_ddl.c ------------------------------------------------------------- */

int mys_table_prepare(ps_sink *s, const ps_table_def *def, const ps_table_options *opt,
                      bool *created, ps_error *err);
int mys_table_finish(ps_sink *s, const ps_table_def *def, ps_error *err);
/* "`name` TYPE [NOT NULL] [DEFAULT ...] COMMENT 'penstock #n'" of column i of
 * def as a created table has it; its type into type. */
int mys_column_sql(ps_buf *b, const ps_table_def *def, int i, char *type, size_t type_len,
                   ps_error *err);
/* The MariaDB default of column i of def (a column of type), or false. */
bool mys_default_sql(const ps_table_def *def, int i, const char *type, char *out, size_t len);

/* --- mysink_follow.c ---------------------------------------------------------- */

int mys_table_change(ps_sink *s, const ps_txn *txn, const ps_table_change *tc,
                     const ps_table_options *opt, bool *backfill, ps_error *err);

/* --- mysink_precheck.c -------------------------------------------------------- */

int mys_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                 const ps_check_tables *tables, ps_check_report *report, ps_error *err);

/* --- mysink_sequences.c ------------------------------------------------------- */

int mys_sequences_set(ps_sink *s, const ps_sequence *seqs, size_t n, char *summary, size_t len,
                      ps_error *err);

#endif
