/*
 * sqlite_internal.h — what the three files of the SQLite sink share.
 *
 *   sqlite.c        open/close, the lazy transaction, flush, checkpoints,
 *                   errors, identifier quoting, the ops table
 *   sqlite_table.c  the per-table cache (target columns, key, statements)
 *   sqlite_ddl.c    table_prepare and table_finish
 *   sqlite_apply.c  write: insert/update/delete/truncate by the rules of
 *                   sink.h "Applying changes"
 *
 * Nothing here is visible outside src/sink/sqlite/. Everything belongs to
 * one sink instance and is used by one thread.
 */
#ifndef PS_SINK_SQLITE_INTERNAL_H
#define PS_SINK_SQLITE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "penstock/sink.h"
#include "util/buf.h"
#include "util/sql.h"

/* sqlite.c: the URL syntax of sqlite:// (penstock/url.h) */
extern const ps_url_syntax ps_sqlite_url_syntax[];

#define SQ_STMT_CACHE 16               /* statement variants kept per table */
#define SQ_SQL_LIMIT ((size_t)16 << 20) /* longest statement we build */
#define SQ_SCRATCH_LIMIT ((size_t)1 << 31) /* decoded bytea of one row */
#define SQ_CHECKPOINT_TABLE "_penstock_checkpoint"
#define SQ_TABLES_TABLE "_penstock_tables"        /* the tables penstock made (issue 15) */

/* Statement kinds. The mask says which columns a variant uses (below). */
typedef enum sq_kind {
	SQ_INSERT = 1,
	SQ_UPSERT,
	SQ_UPDATE,
	SQ_DELETE,
	SQ_TRUNCATE
} sq_kind;

/*
 * A cached statement. mask has 2 * ncols bytes: [0, ncols) marks the source
 * columns the statement writes (bound at ?(i+1)), [ncols, 2 * ncols) the
 * columns its WHERE matches (bound at ?(ncols+i+1)).
 */
typedef struct sq_stmt {
	uint8_t kind;                  /* sq_kind, 0 when the slot is free */
	uint8_t *mask;
	sqlite3_stmt *stmt;
} sq_stmt;

/*
 * What the sink knows about one target table, keyed by the source's schema
 * and name. Built from the target's own catalogue (PRAGMA table_info) and
 * the column list of `layout`; rebuilt when a source table is re-described
 * with a different column list.
 */
typedef struct sq_table {
	char *schema, *name;           /* source identity: the cache key */
	char *target;                  /* SQLite table name */
	char *qtarget;                 /* target, quoted */
	ps_table *layout;              /* column list the maps are for (one ref) */
	int ncols;                     /* layout->ncolumns */
	uint8_t *storage;              /* per source column: ps_sqlite_storage */
	char **qcol;                   /* per source column: quoted target column */
	bool *is_pk;                   /* per source column */
	int npk;                       /* target PRIMARY KEY columns; 0: none */
	int *pk;                       /* source column of each, in key order */
	const char *rowid;             /* a rowid name no column shadows, or NULL */
	sq_stmt stmts[SQ_STMT_CACHE];
	int last_stmt;                 /* slot of the last hit */
	int next_evict;                /* slot the next miss replaces when full */
} sq_table;

/* The columns of a target table, as its catalogue lists them. */
typedef struct sq_target_cols {
	int n;                         /* 0: the table does not exist */
	char **name;
	int *pk;                       /* 1-based position in the PRIMARY KEY, 0 if not in it */
} sq_target_cols;

/* Building SQL text with a sticky error, so it reads as a sequence of puts. */
typedef struct sq_sql {
	ps_buf *b;
	int rc;
} sq_sql;

static inline void sq_put(sq_sql *o, const char *s)
{
	if (o->rc == 0)
		o->rc = ps_buf_puts(o->b, s);
}

/* Missing-row counter for the rate-limited warning. */
typedef struct sq_missing {
	uint64_t count;                /* since open */
	uint64_t unreported;           /* since the last warning */
	uint64_t last_warn_ns;         /* 0: never warned */
} sq_missing;

struct ps_sink {
	sqlite3 *db;
	char *path;                    /* database file, for messages */
	char *job;                     /* checkpoint key */
	bool in_txn;                   /* BEGIN IMMEDIATE issued, not yet ended */
	bool broken;                   /* SQLite rolled back our open transaction */
	sqlite3_stmt *st_begin, *st_commit;
	sqlite3_stmt *st_ck_load, *st_ck_store, *st_ck_delete;
	sq_table **tables;
	int ntables, cap_tables;
	sq_table *last;                /* table of the last write */
	/* Per-row scratch, sized for the widest table seen. */
	uint8_t *mask;                 /* 2 * scratch_cols */
	const ps_value **where;        /* scratch_cols */
	int scratch_cols;
	ps_buf blob;                   /* decoded bytea of the current row */
	ps_buf sql;                    /* statement text being built */
	sq_missing missing_update, missing_delete;
};

/* --- sqlite.c ------------------------------------------------------------- */

/* Fills err from the connection's last error (copied at once), with the
 * formatted "what" in front, and notices a transaction SQLite rolled back. */
int ps__sqlite_fail(ps_sink *k, int sqlite_rc, ps_error *err, const char *fmt, ...)
	PS_PRINTF(4, 5);
/* Opens the target transaction unless one is open. */
int ps__sqlite_txn(ps_sink *k, ps_error *err);
/* Prepares b->data (kept across resets when persistent). */
int ps__sqlite_prepare(ps_sink *k, const ps_buf *b, bool persistent, sqlite3_stmt **out,
                       ps_error *err);
/* Runs a statement that returns no rows, then resets it. */
int ps__sqlite_run(ps_sink *k, sqlite3_stmt *st, ps_error *err, const char *what);
/* Runs one SQL text without parameters. */
int ps__sqlite_exec(ps_sink *k, const char *sql, ps_error *err, const char *what);

/* --- sqlite_table.c ------------------------------------------------------- */

/* "name" for schema public (or none), else "schema.name". malloc'd. */
char *ps__sqlite_target_name(const char *schema, const char *name);
/* "a.b", malloc'd. */
char *ps__sqlite_join_dot(const char *a, const char *b);
/* The columns of table target in the main database (tc->n = 0: missing). */
int ps__sqlite_read_target(ps_sink *k, const char *target, sq_target_cols *tc, ps_error *err);
void ps__sqlite_target_cols_free(sq_target_cols *tc);
/* Appends "a, b" of the columns of t that tc lacks to b; returns how many. */
int ps__sqlite_list_missing(const ps_table *t, const sq_target_cols *tc, ps_buf *b);
/* Drops the cache entries of every source table written to target. */
void ps__sqlite_forget_target(ps_sink *k, const char *target);
/* The cache entry for t, built or rebuilt as needed. */
int ps__sqlite_table_for(ps_sink *k, ps_table *t, sq_table **out, ps_error *err);
/* The statement of kind with mask (2 * ncols bytes), built on a miss. */
int ps__sqlite_stmt_for(ps_sink *k, sq_table *tb, uint8_t kind, const uint8_t *mask,
                        sqlite3_stmt **out, ps_error *err);
/* Makes the per-row scratch hold ncols columns. */
int ps__sqlite_scratch(ps_sink *k, int ncols, ps_error *err);
void ps__sqlite_tables_free(ps_sink *k);

/* --- sqlite_ddl.c --------------------------------------------------------- */

int ps__sqlite_table_prepare(ps_sink *k, const ps_table_def *def,
                             const ps_table_options *opt, bool *created, ps_error *err);
int ps__sqlite_table_finish(ps_sink *k, const ps_table_def *def, ps_error *err);
/* CREATE TABLE target from def, with its key. */
int ps__sqlite_create_table(ps_sink *k, const ps_table_def *def, const char *target,
                            ps_error *err);

/* --- sqlite_follow.c: schema changes (issue 15) ----------------------------- */

/* Creates the record of the tables penstock made, when missing. */
int ps__sqlite_registry_init(ps_sink *k, ps_error *err);
/* Records that penstock made table target with def's columns. */
int ps__sqlite_registry_store(ps_sink *k, const char *target, const ps_table_def *def,
                              uint32_t srcid, ps_error *err);
/* The table penstock made for def's source table under another name,
 * renamed to target (*found). */
int ps__sqlite_renamed_from(ps_sink *k, const ps_table_def *def, const char *target,
                            bool *found, ps_error *err);
/* sink.h table_change */
int ps__sqlite_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                            const ps_table_options *opt, bool *backfill, ps_error *err);
/* A table joining a running job that penstock made: brought to def and
 * emptied (*done), else left to the load's rules. */
int ps__sqlite_rejoin(ps_sink *k, const ps_table_def *def, const char *target, bool *done,
                      ps_error *err);

/* --- sqlite_apply.c ------------------------------------------------------- */

int ps__sqlite_write(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err);

/* --- sqlite_precheck.c: sink.h precheck ----------------------------------- */

int ps__sqlite_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                        const ps_check_tables *tables, ps_check_report *report, ps_error *err);

#endif
