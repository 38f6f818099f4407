/*
 * cmp_internal.h — what the files of src/compare/ share. Not a contract.
 *
 *   compare.c   the driver: tables, modes, chunks, bisection, the run
 *   resolve.c   differing keys made final: settled against a running job,
 *               recorded, repaired
 *   canon.c     the canonical text of a value, row hashing, LSN text
 *   rows.c      row sets read from either side, and their difference
 *   catalog.c   which tables, their columns and key (source catalogue),
 *               and what the target has
 *   side_pg.c   SQL against PostgreSQL (source, or a PostgreSQL target)
 *   side_sqlite.c  reading and repairing an SQLite target
 *   report.c    JSON, the readable printer, freeing
 *
 * Every value crossing between the two sides is "PostgreSQL text": the text
 * a PostgreSQL output function gives under PG_SESSION_OPTIONS. An SQLite
 * value is turned back into that form (1 -> "t" for a boolean column, a BLOB
 * -> "\x..." hex); two values are equal when their canonical forms
 * (ps__cmp_canon) are, which irons out what the engines spell differently:
 * 1.50 vs 1.5, +05:30 vs UTC, upper/lower-case hex, 1/t/true.
 */
#ifndef PS_COMPARE_INTERNAL_H
#define PS_COMPARE_INTERNAL_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compare/compare.h"
#include "penstock/url.h"
#include "util/buf.h"

/* How a value is made canonical. */
typedef enum cmp_kind {
	CMP_TEXT = 0,    /* compared byte for byte */
	CMP_BOOL,        /* t/true/1 -> t, f/false/0 -> f */
	CMP_INT,         /* sign and leading zeros */
	CMP_FLOAT,       /* the double it parses to (%.17g); NaN/±Infinity as text */
	CMP_NUMERIC,     /* leading and trailing zeros: 1.50 = 1.5 = 01.5 */
	CMP_BYTEA,       /* \x + lower-case hex */
	CMP_TSTZ         /* a timestamp with a zone, moved to UTC (+00) */
} cmp_kind;

#define CMP_LEAF_ROWS 1000       /* bisection stops at ranges this small */
#define CMP_KEYS_PER_QUERY 500   /* keys per fetch-by-key statement */
#define CMP_VALUE_MAX ((size_t)1 << 30)

/* --- canon.c --------------------------------------------------------------- */
uint8_t ps__cmp_kind_of_oid(uint32_t oid);
/* Appends the canonical text of v (len bytes) to out. */
int ps__cmp_canon(uint8_t kind, const char *v, size_t len, ps_buf *out);
/* Equal after canonicalisation (a, b: PostgreSQL text, or NULL for SQL NULL). */
bool ps__cmp_equal(uint8_t kind, const char *a, size_t alen, const char *b, size_t blen);
/* 64-bit FNV-1a, continued from h (start with PS_CMP_FNV_SEED). */
#define PS_CMP_FNV_SEED 0xcbf29ce484222325ULL
uint64_t ps__cmp_fnv(uint64_t h, const void *p, size_t n);
/* "16/B374D848" -> 0x16B374D848. PS_EINVAL on anything else. */
int ps__cmp_parse_lsn(const char *s, uint64_t *out);

/* --- the table being compared (catalog.c) --------------------------------- */
typedef struct cmp_table {
	char *schema, *name;
	char *qname;            /* "schema"."name" for PostgreSQL */
	char *target;           /* target table name: PG same; SQLite name or schema.name */
	char *qtarget;          /* quoted for the target's dialect */
	int ncols;
	char **cols;            /* column names */
	char **qcols;           /* quoted (same in both dialects: "x""y") */
	char **types;           /* format_type spelling, for $n::type casts */
	uint32_t *oids;
	uint8_t *kind;          /* cmp_kind */
	uint8_t *storage;       /* ps_sqlite_storage of each column */
	bool *collatable;       /* text-like: ordered COLLATE "C" against SQLite */
	int nkey;               /* 0: no usable key */
	int *key;               /* column indexes, in key order */
	char *key_source;
} cmp_table;

void ps__cmp_table_free(cmp_table *t);
void ps__cmp_tables_free(cmp_table *t, size_t n);

/* --- a row read from either side (rows.c) --------------------------------- */
typedef struct cmp_row {
	char *key;              /* canonical key values, each length-prefixed */
	size_t keylen;
	char **val;             /* ncols, PostgreSQL text; NULL for SQL NULL */
	size_t *len;
} cmp_row;

typedef struct cmp_rows {
	cmp_row *r;
	size_t n, cap;
	size_t limit;           /* most rows a set may hold */
} cmp_rows;

void ps__cmp_rows_init(cmp_rows *s, size_t limit);
void ps__cmp_rows_free(cmp_rows *s);
/* Adds a row of t from vals (NULL entries are SQL NULL; lens[i] bytes). */
int ps__cmp_rows_add(cmp_rows *s, const cmp_table *t, const char *const *vals,
                     const size_t *lens, ps_error *err);
void ps__cmp_rows_sort(cmp_rows *s);

/* One difference, before it goes into the report. key points into a row of
 * one of the two sets diffed (valid while they are). */
typedef struct cmp_item {
	int kind;               /* ps_compare_diff_kind */
	const cmp_row *src;     /* NULL when missing in the source (extra) */
	const cmp_row *tgt;     /* NULL when missing in the target */
} cmp_item;

typedef struct cmp_items {
	cmp_item *v;
	size_t n, cap;
} cmp_items;

void ps__cmp_items_free(cmp_items *d);
/* Sorts both sets and appends their differences to d. */
int ps__cmp_rows_diff(const cmp_table *t, cmp_rows *src, cmp_rows *tgt, cmp_items *d,
                      ps_error *err);
/* Row of an item that carries the key (source row if any). */
const cmp_row *ps__cmp_item_row(const cmp_item *it);

/* --- a key range: lower < key <= upper; NULL bound: open ------------------ */
typedef struct cmp_bound {
	char **v;               /* nkey PostgreSQL text values */
} cmp_bound;

void ps__cmp_bound_free(cmp_bound *b);
/* Copies the key values of row r. */
int ps__cmp_bound_from_row(cmp_bound *b, const cmp_table *t, const cmp_row *r);

/* --- the two ends (side_pg.c, side_sqlite.c) ------------------------------ */
typedef struct cmp_end {
	bool is_sqlite;
	PGconn *pg;
	sqlite3 *lite;
	char what[16];          /* "source" / "target" for messages */
	ps_url url;
	bool collate_c;         /* PG source ordering keys for an SQLite target */
} cmp_end;

/* PostgreSQL, either end. */
int ps__cmp_pg_count(cmp_end *e, const cmp_table *t, bool target, int64_t *n, ps_error *err);
/* Key of the row at offset off (0-based) in (lo, hi] in key order; *found
 * false when the range has fewer rows. */
int ps__cmp_pg_key_at(cmp_end *e, const cmp_table *t, bool target, const cmp_bound *lo,
                      const cmp_bound *hi, int64_t off, cmp_bound *out, bool *found,
                      ps_error *err);
/* Sends the digest query of (lo, hi] (count and md5 of the rows in key order)
 * without waiting; ps__cmp_pg_digest_get collects it. */
int ps__cmp_pg_digest_send(cmp_end *e, const cmp_table *t, bool target, const cmp_bound *lo,
                           const cmp_bound *hi, ps_error *err);
int ps__cmp_pg_digest_get(cmp_end *e, int64_t *count, char *md5, size_t md5_len,
                          ps_error *err);
/* Multiset digest of the whole table (count and two 64-bit sums as text). */
int ps__cmp_pg_multiset(cmp_end *e, const cmp_table *t, bool target, int64_t *count,
                        char *sum, size_t sum_len, ps_error *err);
/* Rows of (lo, hi] in key order, at most limit (0: no limit). */
int ps__cmp_pg_fetch_range(cmp_end *e, const cmp_table *t, bool target, const cmp_bound *lo,
                           const cmp_bound *hi, int64_t limit, cmp_rows *out, ps_error *err);
/* Rows with the given keys; for_share locks them (source, in a transaction). */
int ps__cmp_pg_fetch_keys(cmp_end *e, const cmp_table *t, bool target, char ***keys,
                          size_t nkeys, bool for_share, cmp_rows *out, ps_error *err);
/* Every row, hashed as a multiset in C (count and sums). */
int ps__cmp_pg_multiset_c(cmp_end *e, const cmp_table *t, int64_t *count, uint64_t sum[2],
                          ps_error *err);
/* Repair: in one transaction, delete each key of del and each of put, then
 * insert the rows of put. */
int ps__cmp_pg_repair(cmp_end *e, const cmp_table *t, char ***del, size_t ndel,
                      const cmp_row *const *put, size_t nput, ps_error *err);
int ps__cmp_pg_simple(cmp_end *e, const char *sql, const char *what, ps_error *err);
/* Text of the first column of the first row of sql (params): malloc'd into
 * *out, NULL when there is no row or it is NULL. */
int ps__cmp_pg_text(cmp_end *e, const char *sql, int nparams, const char *const *params,
                    char **out, const char *what, ps_error *err);
/* Quotes an identifier for PostgreSQL and SQLite alike ("a""b"). */
int ps__cmp_quote(ps_buf *b, const char *ident);

/* SQLite target. */
int ps__cmp_lite_count(cmp_end *e, const cmp_table *t, int64_t *n, ps_error *err);
int ps__cmp_lite_fetch_range(cmp_end *e, const cmp_table *t, const cmp_bound *lo,
                             const cmp_bound *hi, cmp_rows *out, ps_error *err);
int ps__cmp_lite_fetch_keys(cmp_end *e, const cmp_table *t, char ***keys, size_t nkeys,
                            cmp_rows *out, ps_error *err);
int ps__cmp_lite_multiset(cmp_end *e, const cmp_table *t, int64_t *count, uint64_t sum[2],
                          ps_error *err);
int ps__cmp_lite_repair(cmp_end *e, const cmp_table *t, char ***del, size_t ndel,
                        const cmp_row *const *put, size_t nput, ps_error *err);
/* The job's checkpoint body, or *found false. malloc'd into *body. */
int ps__cmp_lite_checkpoint(cmp_end *e, const char *job, char **body, bool *found,
                            ps_error *err);
/* Column names of a target table (n = 0: no such table). */
int ps__cmp_lite_columns(cmp_end *e, const char *table, char ***names, int *n, ps_error *err);

/* Row hash for the multiset digest computed in C: two FNV lanes over the
 * canonical text of every value. */
void ps__cmp_row_hash(const cmp_table *t, const char *const *vals, const size_t *lens,
                      ps_buf *scratch, uint64_t out[2]);

/* --- catalog.c ------------------------------------------------------------ */
/* Tables of the source matching the patterns (each pattern must match one),
 * with columns and key; checks the target has each table and column. */
int ps__cmp_catalog(cmp_end *src, cmp_end *tgt, const char *const *patterns, size_t npatterns,
                    cmp_table **out, size_t *n, ps_error *err);

/* --- one run (compare.c, resolve.c) -------------------------------------- */
typedef struct cmp_run {
	const ps_compare_opts *o;
	cmp_end src, tgt;
	cmp_end fence;          /* second source connection (job only) */
	uint64_t rng;
} cmp_run;

/* A growable list of key tuples (each nkey malloc'd strings). */
typedef struct cmp_keys {
	char ***k;
	size_t n, cap;
	int nkey;
} cmp_keys;

void ps__cmp_keys_free(cmp_keys *ks);
int ps__cmp_keys_add(cmp_keys *ks, const cmp_table *t, const cmp_row *r, ps_error *err);
/* PS_ESTOPPED once opts->cancel is set. */
int ps__cmp_cancelled(cmp_run *run, ps_error *err);
/* Most rows one read may hold (memory bound). */
size_t ps__cmp_rows_limit(const cmp_run *run);
uint64_t ps__cmp_now_ms(void);
/* The job's applied position from its checkpoint in the target. */
int ps__cmp_job_position(cmp_run *run, uint64_t *pos, ps_error *err);
/* Fence, then poll until the target applied past the source's position now. */
int ps__cmp_wait_applied(cmp_run *run, ps_error *err);
int ps__cmp_fetch_keys(cmp_run *run, bool target, const cmp_table *t, char ***keys, size_t n,
                       bool for_share, cmp_rows *out, ps_error *err);
/* Reads the keys again on both sides (settling against the job), records
 * the differences in tr and repairs them when asked. */
int ps__cmp_resolve(cmp_run *run, const cmp_table *t, ps_compare_table *tr, cmp_keys *ks,
                    ps_error *err);

#endif
