/*
 * envelope.h — the Debezium-style change event, rendered as one JSON line,
 * shared by the event sinks (JSON lines today, Kafka next):
 *
 *   {"before":{..}|null,"after":{..}|null,"op":"u","ts_ms":N,
 *    "source":{"connector":..,"db":..,"schema":..,"table":..,"lsn":N,
 *              "txId":N,"ts_ms":N}
 *    [,"truncate":{..}] [,"message":{..}] [,"reprocessing":true]
 *    [,"unchanged":["col",..]]}\n
 *
 * Values: a column whose type class is INTEGER, FLOAT or BOOL becomes a JSON
 * number or boolean when its canonical text is one; everything else a JSON
 * string of its canonical text (change.h), so decimals stay exact.
 *
 * NOTES ON THE DESIGN
 *
 *  1. A PS_VALUE_UNCHANGED value is never rendered: it is left out of the
 *     row and its column named in "unchanged" (sink.h invariant 2).
 *  2. The hot path allocates nothing beyond the caller's buffer. The quoted
 *     schema, table and column names of a table are rendered once and kept in
 *     a small cache keyed by the ps_table pointer; the cache holds a reference
 *     on each table, so a cached pointer can never be freed and reused for a
 *     different definition while it is cached.
 *  3. The renderer only appends to a ps_buf: where the bytes go (files,
 *     rotation, a producer) is the sink's business.
 *
 * Ownership: a ps_envelope is owned by one sink instance and used by its one
 * thread; ps_envelope_free releases the cache and its table references.
 */
#ifndef PS_SINK_ENVELOPE_H
#define PS_SINK_ENVELOPE_H

#include <stdint.h>

#include "penstock/change.h"
#include "penstock/error.h"
#include "util/buf.h"

#define PS_ENVELOPE_CACHE_SIZE 32

typedef struct ps_envelope_names ps_envelope_names;

typedef struct ps_envelope {
	char *source_prefix;        /* ,"source":{"connector":..,"db":.., */
	size_t source_prefix_len;
	ps_envelope_names *cache;   /* PS_ENVELOPE_CACHE_SIZE entries */
	int cache_next;             /* entry the next miss replaces */
	int cache_last;             /* entry of the last hit */
} ps_envelope;

/* connector: the source's envelope name ("postgresql"); source_db: its
 * database name (either may be NULL: rendered as null). 0 or PS_ENOMEM. */
int ps_envelope_init(ps_envelope *env, const char *connector, const char *source_db,
                     ps_error *err);
void ps_envelope_free(ps_envelope *env);

/* Appends the event of c (with its trailing newline) to buf. now_ms is the
 * envelope's ts_ms. Checks the op and that a table change has a table. On
 * failure buf may hold part of the line: the caller rolls it back to the
 * length it had. */
int ps_envelope_render(ps_envelope *env, ps_buf *buf, const ps_txn *txn, const ps_change *c,
                       int64_t now_ms, ps_error *err);

/* --- schema-change events (envelope_schema.c, issue 15) ------------------ */

#include <jansson.h>
#include <stdbool.h>

#include "penstock/tabledef.h"

/* What consumers were last told of a table's columns. */
typedef struct ps_envelope_shape_col {
	char *name;
	char *type;              /* the source's type name, or NULL */
	uint32_t type_id;
	int32_t type_mod;
	int ordinal;             /* the source's number for the column, 0 unknown */
} ps_envelope_shape_col;

typedef struct ps_envelope_shape {
	ps_envelope_shape_col *cols;
	int n;
} ps_envelope_shape;

/* t's columns, with def's type names and ordinals when def has t's columns.
 * 0 or PS_ENOMEM (sh then holds what was made: clear it). */
int ps_envelope_shape_of(ps_envelope_shape *sh, const ps_table *t, const ps_table_def *def);
void ps_envelope_shape_clear(ps_envelope_shape *sh);
/* Same names, types and modifiers in the same order. */
bool ps_envelope_shape_equal(const ps_envelope_shape *a, const ps_envelope_shape *b);
/* To and from the JSON a sink keeps in its state. */
json_t *ps_envelope_shape_json(const ps_envelope_shape *sh);
int ps_envelope_shape_from_json(ps_envelope_shape *sh, json_t *a);

/* Whether consumers need the rows again to know their values after the
 * change from prev to now: a type changed, or a column added whose value in
 * older rows only the source knows. */
bool ps_envelope_shape_needs_rows(const ps_envelope_shape *prev, const ps_envelope_shape *now,
                                  const ps_table_def *def);
/* Appends the schema-change event of tc (with its newline) to buf: the
 * columns from now on (`now`, tc's) and their changes from `previous` (what
 * consumers were told before; NULL when unknown: no changes listed). */
int ps_envelope_render_schema(ps_buf *buf, const char *connector, const char *source_db,
                              const ps_txn *txn, const ps_table_change *tc,
                              const ps_envelope_shape *previous, const ps_envelope_shape *now,
                              int64_t now_ms, ps_error *err);

#endif
