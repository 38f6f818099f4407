/*
 * cmp_side.h — the side contract of `penstock compare`: how the driver
 * (compare.c, resolve.c, catalog.c) reads, and repairs, one end of a
 * comparison whatever its engine. A new side needs this header only; nothing
 * in it names an engine. Sides today: side_pg.c (PostgreSQL, source or
 * target), side_sqlite.c (SQLite, target).
 *
 * NOTES ON THE DESIGN
 *
 * 1. A side is a `const cmp_side_ops`: a version (CMP_SIDE_OPS_VERSION), the
 *    URL schemes it reads, the roles it can play, and function pointers.
 *    The source is the reference: its catalogue says which tables and
 *    columns are compared and what the key is, its key order cuts chunks.
 *    The target is checked against it, and repaired. sides.c holds the one
 *    table of sides; the driver picks a side by the URL's scheme and role and
 *    refuses a side whose ops miss a callback that role requires
 *    (ps__cmp_side_check). Optional callbacks may be NULL; the driver then
 *    does without (below), or refuses the option that needs them.
 * 2. An instance (cmp_side) belongs to the driver. ops->open fills url and
 *    impl: the engine's handle (a connection) lives only in impl, and only
 *    the side's own file knows its type. ops->close frees impl. One thread
 *    uses an instance, one call at a time, except that a digest_send is
 *    followed by its digest_get before any other call on that instance.
 * 3. The canonical text. Every value crossing between a side and the driver
 *    — rows read, key bounds and keys passed in, rows given to repair — is
 *    text in PostgreSQL's output form under the session settings of
 *    util/pgconn.h (PG_SESSION_OPTIONS): ISO dates, TimeZone UTC, floats with
 *    extra_float_digits=3, bytea as "\x" and hex, booleans "t"/"f",
 *    IntervalStyle postgres; SQL NULL is a NULL pointer (never ""). A side
 *    whose engine stores something else turns it back into that form when it
 *    reads (SQLite: 1 in a boolean column -> "t", a BLOB -> "\x..."), and
 *    turns that text into its own storage when it binds a key or repairs a
 *    row. The driver compares two values with ps__cmp_equal by the column's
 *    kind (cmp_kind), which forgives spellings of one value (1.50 = 1.5,
 *    +05:30 moved to UTC, hex case, 1/true/t): a side must be value-exact,
 *    not byte-exact.
 * 4. Key order. A range is lower < key <= upper, the key compared as a row
 *    tuple in the source's key order; both sides must agree on that order.
 *    A side that can only order text by its bytes sets CMP_SIDE_BYTE_ORDER;
 *    the driver then sets byte_order on both instances, and a side must
 *    order (and compare) collatable key columns by their bytes (PostgreSQL:
 *    COLLATE "C").
 * 5. Digests are an optimisation, never a requirement. A side may compute
 *    in its engine a range digest (count and a hash of the range's rows in
 *    key order) and a multiset digest of a whole table. The driver compares
 *    digests only between two sides whose ops->digest name the same
 *    algorithm; otherwise it reads each range from both sides and compares
 *    the rows (fetch_range), and for a multiset scans both tables and hashes
 *    the canonical text in C (scan, ps__cmp_row_hash).
 * 6. Per-table data. The source's list_tables creates each cmp_table; a side
 *    may hang its own data (quoted names, storage classes, an oid) on
 *    t->side[s->role], freed with the table.
 *
 * Errors: every callback returns PS_OK or a negative ps_error_code with err
 * set (err may be NULL where a callback says so), naming the side
 * (s->what) and the table. Engine messages are copied into err at once.
 */
#ifndef PS_COMPARE_SIDE_H
#define PS_COMPARE_SIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/url.h"
#include "penstock/error.h"
#include "util/buf.h"
#include "util/sql.h"

/* How a value is made canonical (canon.c). */
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
#define CMP_DIGEST_MAX 128       /* bytes of a digest's text, with its NUL */
#define CMP_POSITION_MAX 128     /* bytes of a source position's text, with its NUL */

/* The roles; ops->roles is a mask of CMP_ROLE(role). */
enum { CMP_SOURCE = 0, CMP_TARGET = 1 };
#define CMP_ROLE(role) (1u << (role))

/* ops->flags */
#define CMP_SIDE_BYTE_ORDER 0x1u   /* orders text keys by their bytes only */

#define CMP_SIDE_OPS_VERSION 1

/* --- the table being compared --------------------------------------------- */
typedef struct cmp_table_side {
	void *data;                   /* the side's own, or NULL */
	void (*free)(void *data);     /* frees data; NULL: plain free() */
} cmp_table_side;

typedef struct cmp_table {
	char *schema, *name;    /* the source's names (report, --tables, messages) */
	char *target;           /* the target's name for it, for the report (map_table) */
	int ncols;
	char **cols;            /* column names, as the source spells them */
	const char *engine;     /* the source's engine (ps_table.engine, static):
	                           says how to read type_id */
	uint32_t *type_id;      /* the column's type id in that engine (ps_column.type_id);
	                           0: unknown */
	uint8_t *kind;          /* cmp_kind */
	bool *collatable;       /* ordered by a collation (text-like), see note 4 */
	int nkey;               /* 0: no usable key (count and multiset only) */
	int *key;               /* column indexes, in key order */
	char *key_source;       /* "primary key", "unique index <name>" */
	cmp_table_side side[2]; /* indexed by role */
} cmp_table;

void ps__cmp_table_free(cmp_table *t);
void ps__cmp_tables_free(cmp_table *t, size_t n);
/* Hangs data on t->side[role] (freeing what was there). */
void ps__cmp_table_set_side(cmp_table *t, int role, void *data, void (*free_fn)(void *));

/* --- rows (rows.c) -------------------------------------------------------- */
typedef struct cmp_row {
	char *key;              /* canonical key values, each length-prefixed */
	size_t keylen;
	char **val;             /* ncols, canonical text (note 3); NULL for SQL NULL */
	size_t *len;
} cmp_row;

typedef struct cmp_rows {
	cmp_row *r;
	size_t n, cap;
	size_t limit;           /* most rows a set may hold */
} cmp_rows;

void ps__cmp_rows_init(cmp_rows *s, size_t limit);
void ps__cmp_rows_free(cmp_rows *s);
/* Adds a row of t from vals (NULL entries are SQL NULL; lens[i] bytes), in
 * the order of t->cols. Copies the values. PS_ETOOBIG past s->limit. */
int ps__cmp_rows_add(cmp_rows *s, const cmp_table *t, const char *const *vals,
                     const size_t *lens, ps_error *err);
void ps__cmp_rows_sort(cmp_rows *s);

/* A key range bound: lower < key <= upper; a NULL bound is open. */
typedef struct cmp_bound {
	char **v;               /* nkey canonical values, NULL-terminated */
} cmp_bound;

void ps__cmp_bound_free(cmp_bound *b);
/* Copies the key values of row r. */
int ps__cmp_bound_from_row(cmp_bound *b, const cmp_table *t, const cmp_row *r);

/* --- canonical text (canon.c) --------------------------------------------- */
/* Appends the canonical text of v (len bytes) to out. */
int ps__cmp_canon(uint8_t kind, const char *v, size_t len, ps_buf *out);
/* Equal after canonicalisation (NULL for SQL NULL). */
bool ps__cmp_equal(uint8_t kind, const char *a, size_t alen, const char *b, size_t blen);
/* 64-bit FNV-1a, continued from h (start with PS_CMP_FNV_SEED). */
#define PS_CMP_FNV_SEED 0xcbf29ce484222325ULL
uint64_t ps__cmp_fnv(uint64_t h, const void *p, size_t n);
/* Row hash of the multiset digest computed in C: two FNV lanes over the
 * canonical text of every value. */
void ps__cmp_row_hash(const cmp_table *t, const char *const *vals, const size_t *lens,
                      ps_buf *scratch, uint64_t out[2]);

/* --- one end -------------------------------------------------------------- */
typedef struct cmp_side_ops cmp_side_ops;

typedef struct cmp_side {
	const cmp_side_ops *ops;
	int role;               /* CMP_SOURCE / CMP_TARGET */
	char what[16];          /* "source" / "target", for messages */
	ps_url url;             /* filled by ops->open; url.redacted goes in the report */
	bool byte_order;        /* note 4; set by the driver after open */
	void *impl;             /* the side's own state; set by open, freed by close */
} cmp_side;

/* One row of a scan, values as in ps__cmp_rows_add (borrowed for the call).
 * A non-zero return stops the scan and is returned by it. */
typedef int (*cmp_row_fn)(const cmp_table *t, const char *const *vals, const size_t *lens,
                          void *payload, ps_error *err);

struct cmp_side_ops {
	int version;                   /* CMP_SIDE_OPS_VERSION */
	const char *name;              /* the engine, for messages: "PostgreSQL" */
	const char *const *schemes;    /* URL schemes it reads, NULL-terminated; the
	                                  first is the one messages show */
	unsigned roles;                /* CMP_ROLE(CMP_SOURCE) | CMP_ROLE(CMP_TARGET) */
	unsigned flags;                /* CMP_SIDE_BYTE_ORDER */
	const char *digest;            /* the algorithm of digest_* and multiset, e.g.
	                                  "postgresql-md5-record"; NULL: no digests */

	/* ---- every role ---- */
	/* Parses url (ps__cmp_side_parse_url), connects or opens, fills s->impl.
	 * On failure leaves s->impl NULL. */
	int (*open)(cmp_side *s, const char *url, const char *password, ps_error *err);
	void (*close)(cmp_side *s);
	int (*count)(cmp_side *s, const cmp_table *t, int64_t *n, ps_error *err);
	/* Rows of (lo, hi], into out (any order). */
	int (*fetch_range)(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
	                   const cmp_bound *hi, cmp_rows *out, ps_error *err);
	/* Rows with the given keys (each nkey values), into out (any order);
	 * for_share (source, inside txn_begin): lock them until txn_end. */
	int (*fetch_keys)(cmp_side *s, const cmp_table *t, char ***keys, size_t nkeys,
	                  bool for_share, cmp_rows *out, ps_error *err);
	/* Every row of the table, one call of fn each (a multiset: any order). */
	int (*scan)(cmp_side *s, const cmp_table *t, cmp_row_fn fn, void *payload, ps_error *err);
	/* Key of the row at offset off (0-based) of (lo, hi] in key order; *found
	 * false when the range has fewer rows. Required of a source; a target
	 * without it leaves bisection to the source's keys. */
	int (*key_at)(cmp_side *s, const cmp_table *t, const cmp_bound *lo, const cmp_bound *hi,
	              int64_t off, cmp_bound *out, bool *found, ps_error *err);

	/* ---- source: the catalogue ---- */
	/* Candidate tables (schema, name and the side's data set; no columns
	 * yet), in the order they are reported. *out is a calloc'd array of *n. */
	int (*list_tables)(cmp_side *s, cmp_table **out, size_t *n, ps_error *err);
	/* Fills the columns (cols, type_id, kind, collatable) and the key of a
	 * table list_tables gave; nkey 0 when there is no usable key. */
	int (*describe)(cmp_side *s, cmp_table *t, ps_error *err);

	/* ---- target ---- */
	/* Sets t->target (and the side's data); *exists: the target has the
	 * table; has_col[c] (t->ncols entries): it has column t->cols[c], by the
	 * engine's rule for names. */
	int (*map_table)(cmp_side *s, cmp_table *t, bool *exists, bool *has_col, ps_error *err);
	/* Optional (NULL: --repair is refused). In one transaction: delete each
	 * key of del, and for each row of put delete its key and insert it. */
	int (*repair)(cmp_side *s, const cmp_table *t, char ***del, size_t ndel,
	              const cmp_row *const *put, size_t nput, ps_error *err);
	/* Optional (NULL: --job is refused). The body of job's checkpoint in
	 * the target (malloc'd into *body), or *found false. */
	int (*checkpoint)(cmp_side *s, const char *job, char **body, bool *found, ps_error *err);

	/* ---- digests: all three NULL without ops->digest ---- */
	/* Starts the digest of (lo, hi]; a side that cannot pipeline computes it
	 * here and keeps it for digest_get. */
	int (*digest_send)(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
	                   const cmp_bound *hi, ps_error *err);
	/* Row count and digest text (len bytes at most, NUL included) of the
	 * last digest_send. err may be NULL (the other side already failed);
	 * the side must still finish the exchange. */
	int (*digest_get)(cmp_side *s, int64_t *count, char *digest, size_t len, ps_error *err);
	/* Optional even with a digest: row count and a multiset digest of the
	 * whole table (the same for the same rows in any order). */
	int (*multiset)(cmp_side *s, const cmp_table *t, int64_t *count, char *digest, size_t len,
	                ps_error *err);

	/* ---- source, following a job (--job): all or none ---- */
	/* A transaction on this instance: fetch_keys(for_share) and lock_table
	 * hold writers of those rows / that table until txn_end. txn_end's err
	 * may be NULL. */
	int (*txn_begin)(cmp_side *s, ps_error *err);
	int (*lock_table)(cmp_side *s, const cmp_table *t, ps_error *err);
	int (*txn_end)(cmp_side *s, bool commit, ps_error *err);
	/* The source's log position now, as text (every change committed so far
	 * is at or before it). */
	int (*log_position)(cmp_side *s, char *pos, size_t len, ps_error *err);
	/* Whether a checkpoint's position applied is at or past wanted (both
	 * this source's text form); wanted NULL only checks applied.
	 * PS_ECHECKPOINT when applied is not a position of this source. */
	int (*position_reached)(const char *applied, const char *wanted, bool *reached,
	                        ps_error *err);
	/* Writes something the job must apply (on a second instance, so that a
	 * quiet source still moves the job's checkpoint). */
	int (*fence)(cmp_side *s, ps_error *err);
};

/* --- sides.c -------------------------------------------------------------- */
/* The side for url in role: by the URL's scheme, matched against each side's
 * schemes. PS_EINVAL naming what is supported when none fits. */
int ps__cmp_side_find(const char *url, int role, const cmp_side_ops **out, ps_error *err);
/* PS_EINVAL when ops lacks a callback role requires or has the wrong version. */
int ps__cmp_side_check(const cmp_side_ops *ops, int role, ps_error *err);
/* ps_url_parse into s->url; an error gets the context "--source"/"--target". */
int ps__cmp_side_parse_url(cmp_side *s, const char *url, ps_error *err);

/* TEST HOOK, for tests only: sides consulted before the built-in ones
 * (NULL-terminated; NULL removes them). Not thread-safe; never called by
 * penstock itself. */
void ps__cmp_sides_for_tests(const cmp_side_ops *const *sides);

extern const cmp_side_ops ps__cmp_side_pg;
extern const cmp_side_ops ps__cmp_side_sqlite;
extern const cmp_side_ops ps__cmp_side_mysql;

#endif
