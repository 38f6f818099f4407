/*
 * penstock/change.h — what flows from a source to a sink.
 *
 * A source emits, in commit order, a stream of items:
 *
 *     BEGIN(txn)  CHANGE*  COMMIT(txn with position)
 *
 * Transactions are never interleaved and never split across restarts: the
 * pipeline acknowledges positions only at COMMIT boundaries.
 *
 * Ownership:
 *   - ps_table is immutable once built and reference counted (atomically: a
 *     change is built on the reader thread and freed on the applier thread).
 *     A new definition of the same relation is a new ps_table; changes keep
 *     the definition they were decoded with.
 *   - ps_change is one allocation holding its value arrays and text bytes; it
 *     owns one reference to its table. ps_change_free releases both.
 *   - A value's data is NUL-terminated (len excludes the NUL) and lives as
 *     long as the change.
 */
#ifndef PENSTOCK_CHANGE_H
#define PENSTOCK_CHANGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest serialised position, NUL included (PG "FFFFFFFF/FFFFFFFF",
 * MySQL "file.000001:4294967295" or a GTID set summary). */
#define PS_POSITION_MAX 128

typedef enum ps_value_kind {
	PS_VALUE_NULL = 0,
	PS_VALUE_TEXT = 1,       /* canonical text (below) */
	PS_VALUE_UNCHANGED = 2   /* not sent by the source (PG unchanged TOAST):
	                            a sink must never write it as a value */
} ps_value_kind;

typedef struct ps_value {
	uint8_t kind;            /* ps_value_kind */
	uint32_t len;            /* bytes in data, NUL excluded; 0 unless TEXT */
	const char *data;        /* NUL-terminated when TEXT, else NULL */
} ps_value;

/*
 * Canonical text: every source hands values over in one text form per type
 * class, whatever its engine, so that a sink renders or stores a value
 * without knowing where it came from. The forms are PostgreSQL's text
 * output under DateStyle ISO, TimeZone UTC, extra_float_digits 3 and
 * bytea_output hex, which every target engine reads:
 *
 *   BOOL         "t" or "f"
 *   INTEGER      decimal, optional '-': "-12", "18446744073709551615"
 *   FLOAT        shortest text that reads back to the same double; "NaN",
 *                "Infinity", "-Infinity"
 *   NUMERIC      exact decimal, no exponent, the column's scale: "-0.50";
 *                "NaN" where the engine has it
 *   DATE         "YYYY-MM-DD"
 *   TIME         "[-]HH:MM:SS[.ffffff]", hours may exceed 23 (MySQL TIME)
 *   TIMESTAMP    "YYYY-MM-DD HH:MM:SS[.ffffff]", no zone
 *   TIMESTAMPTZ  "YYYY-MM-DD HH:MM:SS[.ffffff]+00", in UTC
 *   UUID         "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case
 *   BYTES        "\x" then lower-case hex: "\x00ff"
 *   JSON         a JSON document
 *   TEXT         UTF-8 text: anything else (bit strings "0101", intervals,
 *                arrays "{1,2}", enum labels, ...) as the source spells it
 *
 * Fractions of seconds carry no trailing zeros (".5", not ".500000").
 * Years beyond 9999, BC dates, infinite timestamps and MySQL's zero dates
 * keep their source spelling ("infinity", "0000-00-00"); a sink that cannot
 * store them refuses them with a clear error.
 */
typedef enum ps_type_class {
	PS_TYPE_TEXT = 0,        /* anything not listed below */
	PS_TYPE_BOOL,            /* text is "t" or "f" */
	PS_TYPE_INTEGER,         /* text is a decimal integer */
	PS_TYPE_FLOAT,           /* text is a float, or NaN / Infinity / -Infinity */
	PS_TYPE_NUMERIC,         /* arbitrary precision decimal, or NaN */
	PS_TYPE_JSON,            /* text is a JSON document */
	PS_TYPE_BYTES,           /* text is "\x" and hex */
	PS_TYPE_DATE,            /* "YYYY-MM-DD" */
	PS_TYPE_TIME,            /* "[-]HH:MM:SS[.ffffff]" */
	PS_TYPE_TIMESTAMP,       /* "YYYY-MM-DD HH:MM:SS[.ffffff]" */
	PS_TYPE_TIMESTAMPTZ,     /* "YYYY-MM-DD HH:MM:SS[.ffffff]+00" */
	PS_TYPE_UUID             /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
} ps_type_class;

typedef struct ps_column {
	const char *name;
	uint32_t type_id;        /* the source engine's type id (PG: the type's OID;
	                            MySQL: the column type code), 0 if none: only
	                            meaningful together with the table's engine */
	int32_t type_mod;        /* source type modifier, -1 if none */
	uint8_t type_class;      /* ps_type_class */
	bool is_key;             /* part of the replica identity / primary key */
} ps_column;

typedef struct ps_table {
	atomic_int refs;
	uint32_t id;             /* source's relation id, the same for the table across
	                            renames and runs (PG relation OID); 0 when the
	                            source has none (MySQL): a sink then cannot tell a
	                            renamed table from a new one, and does not try */
	const char *engine;      /* the source engine, static: "postgresql",
	                            "mysql"; says how to read type_id; NULL: none */
	const char *schema;
	const char *name;
	char replica_identity;   /* PG: 'd' default, 'n' nothing, 'f' full, 'i' index */
	int ncolumns;
	ps_column *columns;      /* ncolumns entries */
} ps_table;

typedef enum ps_change_op {
	PS_OP_INSERT = 'c',
	PS_OP_UPDATE = 'u',
	PS_OP_DELETE = 'd',
	PS_OP_TRUNCATE = 't',
	PS_OP_READ = 'r',        /* a row of the initial load */
	PS_OP_MESSAGE = 'm'      /* a logical message (PG pg_logical_emit_message) */
} ps_change_op;

#define PS_TRUNCATE_CASCADE 1u
#define PS_TRUNCATE_RESTART_IDENTITY 2u

typedef struct ps_change {
	uint8_t op;              /* ps_change_op */
	ps_table *table;         /* owned reference; NULL for PS_OP_MESSAGE */
	ps_value *new_values;    /* table->ncolumns entries, or NULL (delete, truncate) */
	ps_value *old_values;    /* table->ncolumns entries, or NULL when not sent */
	bool old_is_key;         /* old_values holds only the key columns; the
	                            others are PS_VALUE_NULL and mean nothing */
	uint32_t truncate_flags; /* PS_TRUNCATE_*; set by the builder after ps_change_new */
	uint64_t lsn;            /* source log offset of this change, 0 if unknown */
	/* PS_OP_MESSAGE only */
	bool message_transactional;
	const char *message_prefix;   /* NUL-terminated */
	const char *message_content;  /* message_len bytes, may hold NULs */
	uint32_t message_len;
	size_t mem_size;         /* bytes this change holds, for queue bounds */
	/* Optional: the source's own fields for an event's "source" object, as
	 * the members of a JSON object without its braces
	 * ("\"file\":\"binlog.000001\",\"pos\":4"); a separate allocation owned
	 * by the change (set with ps_change_set_source_info); NULL: none. */
	char *source_info;
} ps_change;

/* A source transaction as seen by a sink. Filled at BEGIN. `position` is the
 * commit position at COMMIT; at BEGIN it is a position that compares with
 * every checkpoint position and snapshot point exactly as the commit position
 * will (PG: the commit record's start + 1), so the core can route the
 * transaction's changes before its COMMIT arrives. */
typedef struct ps_txn {
	uint64_t xid;            /* source transaction id, 0 if none */
	int64_t commit_time_us;  /* commit time, microseconds since the Unix epoch */
	bool reprocessing;       /* may already be present in the target: apply
	                            idempotently, mark events "reprocessing" */
	char position[PS_POSITION_MAX]; /* commit position (opaque, source-ordered) */
} ps_txn;

/* --- tables (src/core/change.c) ------------------------------------------ */

/* Allocates a table with ncolumns zeroed columns and one reference. Names are
 * copied by ps_table_set_names / ps_table_set_column. NULL on OOM. */
ps_table *ps_table_new(uint32_t id, int ncolumns);
int ps_table_set_names(ps_table *t, const char *schema, const char *name);
int ps_table_set_column(ps_table *t, int i, const char *name, uint32_t type_id,
                        int32_t type_mod, uint8_t type_class, bool is_key);
ps_table *ps_table_ref(ps_table *t);
void ps_table_unref(ps_table *t);

/* --- changes (src/core/change.c) ----------------------------------------- */

/*
 * Builds a change in one allocation. `table` gains a reference. new_values /
 * old_values may be NULL; their text bytes are copied. Returns NULL on OOM.
 */
ps_change *ps_change_new(uint8_t op, ps_table *table,
                         const ps_value *new_values, const ps_value *old_values,
                         bool old_is_key, uint64_t lsn);
ps_change *ps_change_new_message(bool transactional, const char *prefix,
                                 const char *content, uint32_t len, uint64_t lsn);
void ps_change_free(ps_change *c);
/* Gives c the source fields info (malloc'd, ownership passes; NULL clears). */
void ps_change_set_source_info(ps_change *c, char *info);

#endif
