/*
 * sqlite_typemap.h — how a source column is stored in SQLite (docs/types-sqlite.md).
 *
 * Two halves that must agree: the declared type a created table gets, and the
 * conversion of a value's canonical source text into what is bound to a
 * statement. The same conversion serves the initial load, the applied
 * changes and the WHERE parameters that find a row again, so a value always
 * compares equal to itself.
 *
 * Declared types are exactly INTEGER, REAL, TEXT or BLOB: those give the
 * column INTEGER, REAL, TEXT or BLOB affinity, none of which rewrites a value
 * we bind with its own storage class (NUMERIC affinity would turn the text
 * "1.50" into the number 1.5).
 *
 * The mapping reads the engine-neutral type class first; a column of a
 * PostgreSQL source whose class says nothing (PS_TYPE_TEXT) is looked at
 * again by its type OID and, when the OID is unknown (0), by the type's SQL
 * spelling.
 *
 * This header does not include sqlite3.h: a converted value is described by
 * ps_sqlite_datum and bound by the caller.
 */
#ifndef PS_SINK_SQLITE_TYPEMAP_H
#define PS_SINK_SQLITE_TYPEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "penstock/change.h"
#include "penstock/tabledef.h"

/* How a column is stored (one per mapping rule). */
typedef enum ps_sqlite_storage {
	PS_SQLITE_TEXT = 0,    /* TEXT: the source's text, unchanged */
	PS_SQLITE_INTEGER,     /* INTEGER: decimal integer text -> 64-bit integer */
	PS_SQLITE_BOOL,        /* INTEGER: "t"/"f" -> 1/0 */
	PS_SQLITE_REAL,        /* REAL: float text -> double; NaN/±Infinity as TEXT */
	PS_SQLITE_BLOB         /* BLOB: "\x" + hex -> the bytes */
} ps_sqlite_storage;

/* What to bind for one value. */
typedef enum ps_sqlite_datum_type {
	PS_DATUM_NULL = 0,
	PS_DATUM_INTEGER,
	PS_DATUM_REAL,
	PS_DATUM_TEXT,
	PS_DATUM_BLOB
} ps_sqlite_datum_type;

typedef struct ps_sqlite_datum {
	uint8_t type;          /* ps_sqlite_datum_type */
	int64_t i;             /* PS_DATUM_INTEGER */
	double r;              /* PS_DATUM_REAL */
	const void *p;         /* TEXT: the value's own bytes (borrowed from the
	                          change); BLOB: the caller's scratch buffer */
	size_t n;              /* bytes at p */
} ps_sqlite_datum;

/* The storage for a column of a table of the source engine `engine`
 * (ps_table.engine, may be NULL). def may be NULL (a change carries no
 * ps_column_def). */
uint8_t ps_typemap_sqlite(const char *engine, const ps_column *col, const ps_column_def *def);

/* The declared type for a storage: "INTEGER", "REAL", "TEXT" or "BLOB". */
const char *ps_typemap_sqlite_decl(uint8_t storage);

/* Bytes of scratch ps_typemap_sqlite_convert needs for v (0 unless a BLOB). */
size_t ps_typemap_sqlite_scratch(uint8_t storage, const ps_value *v);

/*
 * Converts v for a column of the given storage into *out. scratch must hold
 * ps_typemap_sqlite_scratch(storage, v) bytes; a BLOB datum points into it,
 * a TEXT datum into v, so both stay valid as long as those do.
 * Returns 0, or PS_EINVAL when v is PS_VALUE_UNCHANGED (never a value) or
 * its text is not what the storage expects (*why then says what is wrong).
 * Values that are well formed but do not fit the storage class are kept
 * exactly as TEXT: an integer beyond 64 bits, a float beyond double range,
 * and NaN / Infinity / -Infinity.
 */
int ps_typemap_sqlite_convert(uint8_t storage, const ps_value *v, unsigned char *scratch,
                              ps_sqlite_datum *out, const char **why);

#endif
