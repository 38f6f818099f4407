/*
 * netchg.h — net changes for the event sinks (JSON lines now, Kafka later):
 * the changes of a span of source transactions (a trickle feed's processing
 * range, or one flush of a continuous job) collected per table and key,
 * and given back as one event per key with its final state (issue 21).
 *
 * Engine-neutral: it sees only ps_change/ps_txn (penstock/change.h) and
 * renders nothing of the envelope but the extra members of a net event
 * (ps_netchg_render_tail). The caller decides when a span ends.
 *
 * Per key it keeps two facts: whether the row existed before the span (the
 * first change of the key says so: an insert says no, an update or a delete
 * says yes) and whether it exists now (the last change says so). The net
 * event follows from them:
 *
 *     existed  exists │ event   (merge)
 *     ────────────────┼──────────────────
 *     no       yes    │ c       u (insert or update)
 *     yes      yes    │ u       u
 *     yes      no     │ d       d (the key as it was before the span)
 *     no       no     │ nothing nothing
 *
 * An update that changes the key is a delete of the old key and an insert
 * of the new one. A truncate drops what its table holds and is kept as an
 * event of its own; logical messages and the changes of tables without a
 * usable key (no key columns, or REPLICA IDENTITY FULL, where identical rows
 * cannot be told apart) pass through as they came, in their place.
 *
 * Ownership: a ps_netchg belongs to one sink instance and its thread. It
 * holds a reference on every table definition it has seen until closed.
 */
#ifndef PS_SINK_NETCHG_H
#define PS_SINK_NETCHG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "penstock/change.h"
#include "penstock/error.h"
#include "penstock/options.h"
#include "util/buf.h"

typedef struct ps_netchg ps_netchg;

typedef struct ps_netchg_opts {
	bool update_mask;          /* updates carry the columns the span changed */
	bool merge;                /* inserts and updates are one op, "u" (upsert) */
	size_t memory_bytes;       /* held in memory up to about this; past it the
	                              store spills to a temporary file (0: 64 MiB) */
} ps_netchg_opts;

/* One event given back by ps_netchg_drain; valid during the callback only. */
typedef struct ps_netchg_event {
	const ps_change *change;   /* the net change (op c, u, d), or one passed through */
	const ps_txn *txn;         /* of the last change merged into it; reprocessing
	                              when any of them was */
	const bool *changed;       /* update_mask and op u of a key: per column of
	                              change->table; NULL otherwise */
	bool net;                  /* a key's net change (false: passed through) */
} ps_netchg_event;

typedef int (*ps_netchg_emit_fn)(const ps_netchg_event *ev, void *payload, ps_error *err);

int ps_netchg_open(ps_netchg **out, const ps_netchg_opts *opts, ps_error *err);
void ps_netchg_close(ps_netchg *n);

/* A source transaction begins / commits. Changes added in between are
 * undone by ps_netchg_rollback (a drain inside a transaction leaves the
 * uncommitted part out: it is read again next run). */
int ps_netchg_begin(ps_netchg *n, ps_error *err);
int ps_netchg_commit(ps_netchg *n, ps_error *err);
int ps_netchg_rollback(ps_netchg *n, ps_error *err);

/* Takes the change c of transaction txn into the span. */
int ps_netchg_add(ps_netchg *n, const ps_txn *txn, const ps_change *c, ps_error *err);

/* Gives back the span's events in the order of their last change (within
 * the span: commit order), then empties it. A transaction still open is
 * rolled back first. On an error from emit the span is kept. */
int ps_netchg_drain(ps_netchg *n, ps_netchg_emit_fn emit, void *payload, ps_error *err);

/* Events the span holds (keys and passed-through changes). */
uint64_t ps_netchg_count(const ps_netchg *n);

/* The net event's op for a key that existed before the span or not and
 * exists after it or not; 0 when there is none (the table above). */
uint8_t ps_netchg_op(bool existed, bool exists, bool merge);

/* Appends the members a net event carries besides the envelope's:
 * ,"range":{"from":..,"to":..} and, for a key's update under update_mask,
 * ,"changed":[column names]. */
int ps_netchg_render_tail(ps_buf *b, const ps_netchg_event *ev, const char *from,
                          const char *to);

/* The options of net changes, shared by the event sinks: put
 * PS_NETCHG_OPTION_DEFS in a sink's option list (target.changes,
 * update_mask, merge, net_memory_mb; their types are checked with the
 * spec), and call ps_netchg_options at open for what they mean together. */
extern const char *const ps_netchg_changes_choices[];
#define PS_NETCHG_OPTION_DEFS                                                                   \
	{.name = "changes", .kind = PS_OPTION_CHOICE, .choices = ps_netchg_changes_choices,          \
	 .default_text = "all",                                                                      \
	 .doc = "all: every change as an event; net: one event per key with its final state, "      \
	        "per processing range (penstock run --until) or per flush"},                         \
	{.name = "update_mask", .kind = PS_OPTION_BOOL, .default_int = 0,                           \
	 .doc = "net changes: each update names the columns the range changed (\"changed\")"},       \
	{.name = "merge", .kind = PS_OPTION_BOOL, .default_int = 0,                                 \
	 .doc = "net changes: inserts and updates are one operation, op \"u\" (insert or update)"},  \
	{.name = "net_memory_mb", .kind = PS_OPTION_INTEGER, .min = 1, .max = 1048576,              \
	 .default_int = 64,                                                                          \
	 .doc = "net changes: memory the held changes may use before they spill to a "              \
	        "temporary file"}

/* Reads those options: *net is whether target.changes is "net", *opts the
 * store's options; refuses (PS_EINVAL, naming the fields and the fix)
 * update_mask or merge without net, and both together. */
int ps_netchg_options(const json_t *options, bool *net, ps_netchg_opts *opts, ps_error *err);

#endif
