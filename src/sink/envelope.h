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

typedef struct ps_event_style ps_event_style;

typedef struct ps_envelope {
	char *source_prefix;        /* ,"source":{"connector":..,"db":.., */
	size_t source_prefix_len;
	ps_envelope_names *cache;   /* PS_ENVELOPE_CACHE_SIZE entries */
	int cache_next;             /* entry the next miss replaces */
	int cache_last;             /* entry of the last hit */
	ps_event_style *style;      /* Debezium events (below); NULL until set */
	char *connector, *source_db; /* for the Debezium source block */
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
/* The same, with tail (tail_len bytes: more members, each starting with a
 * comma, e.g. a net event's "range", sink/netchg.h) before the closing brace. */
int ps_envelope_render_tail(ps_envelope *env, ps_buf *buf, const ps_txn *txn,
                            const ps_change *c, int64_t now_ms, const char *tail,
                            size_t tail_len, ps_error *err);

/*
 * --- Debezium events for brokers (envelope_dbz.c) ---------------------------
 *
 * What a Kafka consumer of Debezium's PostgreSQL connector reads, configured
 * with decimal.handling.mode=string (or precise), time.precision.mode=
 * isostring and binary.handling.mode=bytes, through Kafka Connect's JSON
 * converter with or without schemas (docs/kafka.md):
 *
 *   key    {"<key column>": value, ...} — the event's key columns; none
 *          (a null key) for a table without one
 *   value  {"before","after","source":{"version","connector","name","ts_ms",
 *          "snapshot","db","sequence","ts_us","ts_ns","schema","table",
 *          "txId","lsn","xmin"},"transaction","op","ts_ms","ts_us","ts_ns"}
 *          [,"reprocessing":true]
 *   flat   the row after the change (before it, for a delete), then
 *          "__deleted", "__op", "__source_ts_ms", "__lsn" (Debezium's
 *          ExtractNewRecordState with add.fields=op,source.ts_ms,lsn and
 *          delete.tombstone.handling.mode=rewrite)
 *
 * With schemas each is {"schema":{..},"payload":{..}}, the schema rendered
 * once per table definition and kept in the name cache. Values differ from
 * the JSON-lines line where Debezium spells a type otherwise: bytes are
 * base64, dates and times ISO 8601 in UTC ("2024-05-01Z",
 * "2024-05-01T10:00:00.5Z"), decimals a string (or, precise, the unscaled
 * two's-complement bytes), a value the source did not send (unchanged
 * TOAST) the placeholder. Every row carries every column (null where the
 * source sent none), as the JSON converter prints a struct.
 *
 * The event key is the columns flagged is_key, unless the table's replica
 * identity is FULL: the stream then flags every column, the primary key
 * cannot be told, and the key is null (docs/kafka.md says so).
 */
enum { PS_DECIMAL_STRING = 0, PS_DECIMAL_PRECISE };

struct ps_event_style {
	char *server_name;     /* the topic prefix: source.name, schema names */
	bool schemas;          /* {"schema","payload"} (JSON converter with schemas) */
	int decimals;          /* PS_DECIMAL_* */
	char *placeholder;     /* what an unchanged value reads as */
};

/* The transaction block of an event (Debezium's transaction metadata). */
typedef struct ps_event_txn {
	const char *id;                 /* "<txId>:<lsn>" */
	uint64_t total_order;           /* 1-based, among the transaction's events */
	uint64_t collection_order;      /* 1-based, among its events of this table */
} ps_event_txn;

/* Sets (copies) the style of the Debezium events; 0 or PS_ENOMEM. */
int ps_envelope_set_style(ps_envelope *env, const char *server_name, bool schemas, int decimals,
                          const char *placeholder, ps_error *err);

/* Whether t's events have a key (some column flagged is_key and replica
 * identity not FULL). */
int ps_envelope_has_key(ps_envelope *env, ps_table *t, bool *has_key, ps_error *err);

/* Appends the key of t's row vals (values of t's columns, key columns used)
 * to buf; nothing when the table has no key (*has_key false). */
int ps_envelope_key(ps_envelope *env, ps_buf *buf, ps_table *t, const ps_value *vals,
                    bool *has_key, ps_error *err);

/* Appends the Debezium value of c to buf, rendered as op: c->op, or for a
 * key change 'd' (before from the old values) or 'c' (after from the new).
 * tx NULL: "transaction" is null. now_us: the event's ts. */
int ps_envelope_value(ps_envelope *env, ps_buf *buf, const ps_txn *txn, const ps_change *c,
                      char op, const ps_event_txn *tx, int64_t now_us, ps_error *err);

/* Appends the flattened value of c (op as above; 'c', 'r', 'u', 'd'). */
int ps_envelope_flat(ps_envelope *env, ps_buf *buf, const ps_txn *txn, const ps_change *c,
                     char op, ps_error *err);

/* "<schema>.<table>" of t as a topic name part (characters Kafka does not
 * take in a topic name become '_'). */
int ps_envelope_topic_part(ps_envelope *env, ps_table *t, const char **part, ps_error *err);

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

/* What consumers were told of each table, by schema and name: an event
 * sink's memory across runs, kept in its engine state. */
typedef struct ps_envelope_shapes_entry {
	char *schema, *name;
	ps_envelope_shape shape;
} ps_envelope_shapes_entry;

typedef struct ps_envelope_shapes {
	ps_envelope_shapes_entry *entries;
	size_t n, cap;
} ps_envelope_shapes;

/* The shape consumers know of schema.name, or NULL. */
ps_envelope_shape *ps_envelope_shapes_find(ps_envelope_shapes *m, const char *schema,
                                           const char *name);
/* Takes sh (left empty) as what consumers know of schema.name; a column
 * without an ordinal keeps the one it had. 0 or PS_ENOMEM. */
int ps_envelope_shapes_keep(ps_envelope_shapes *m, const char *schema, const char *name,
                            ps_envelope_shape *sh);
void ps_envelope_shapes_free(ps_envelope_shapes *m);
/* {"shapes":{"<schema>.<table>":[...]}} into *json (malloc'd; NULL when
 * nothing is known), and back; an unreadable entry is left unknown. 0 or
 * PS_ENOMEM. */
int ps_envelope_shapes_save(const ps_envelope_shapes *m, char **json);
int ps_envelope_shapes_restore(ps_envelope_shapes *m, const char *json);

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
