/*
 * plugin.h — the static registry of sources and sinks, and the wrappers the
 * core calls them through.
 *
 * Every call to a plugin goes through a ps_src_* / ps_snk_* wrapper, which:
 *   - handles optional callbacks that are NULL,
 *   - adds context to errors ("source pg: ..."),
 *   - counts calls and time spent (ps_plugin_timing), for status output.
 * The core never switches on a plugin's name; it looks plugins up by URL
 * scheme and checks the ABI version and required callbacks once, at lookup.
 */
#ifndef PS_CORE_PLUGIN_H
#define PS_CORE_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "penstock/sink.h"
#include "penstock/source.h"
#include "util/clock.h"

typedef struct ps_plugin_timing {
	uint64_t calls;
	uint64_t total_ns;
} ps_plugin_timing;

/* A source plugin instance with its wrapper state. */
typedef struct ps_src {
	const ps_source_ops *ops;
	ps_source *impl;
	ps_plugin_timing read_time;
	ps_plugin_timing ack_time;
	ps_plugin_timing live_time;    /* retable, mark, chunk_read */
} ps_src;

typedef struct ps_snk {
	const ps_sink_ops *ops;
	ps_sink *impl;
	ps_plugin_timing write_time;
	ps_plugin_timing flush_time;
	uint64_t flushes;              /* flushes that returned 0 (sink.h rule a) */
} ps_snk;

/* Looks up a plugin by URL scheme ("postgresql", "jsonl"). Returns NULL and
 * fills err (listing what this build supports) when there is none, or when
 * the plugin fails validation (wrong ABI version, missing callback). */
const ps_source_ops *ps_plugin_source_for(const char *scheme, ps_error *err);
const ps_sink_ops *ps_plugin_sink_for(const char *scheme, ps_error *err);

/* Every precheck id a plugin of this build may report ("source.connect",
 * "target.connect" and each plugin's check_ids), once each, into ids (at
 * most cap); returns how many. */
size_t ps_plugin_check_ids(const char **ids, size_t cap);

/* Fault point number i that a plugin of this build declares (sources'
 * then sinks' fault_points), or NULL past the last (core/fault.c). */
const char *ps_plugin_fault_point(size_t i);

/* The first URL scheme of source plugin number i ("postgresql"), or NULL
 * past the last: what a message lists as supported sources. */
const char *ps_plugin_source_name(size_t i);

/* What identifies an end for the checkpoint's fingerprint: the plugin's
 * identity callback, else ps_url_identity. ops may be NULL. */
void ps_plugin_source_identity(const ps_source_ops *ops, const ps_url *url,
                               const json_t *options, char *buf, size_t len);
void ps_plugin_sink_identity(const ps_sink_ops *ops, const ps_url *url, const json_t *options,
                             char *buf, size_t len);
/* What a job holds on the source and how to release it by hand, in the
 * plugin's words (empty when the plugin says nothing). ops may be NULL. */
void ps_plugin_source_resources(const ps_source_ops *ops, const json_t *options,
                                ps_source_resources *out);

/* Tests only: puts other registry tables in place (NULL: the built-in one)
 * so that a test runs the core against in-memory plugins. Not thread-safe:
 * call before anything looks a plugin up. */
void ps__plugin_set_tables_for_tests(const ps_url_syntax *const *syntaxes,
                                     const ps_source_ops *const *sources,
                                     const ps_sink_ops *const *sinks);

/* Validation used by the lookups, exposed for tests. */
int ps_plugin_check_source(const ps_source_ops *ops, ps_error *err);
int ps_plugin_check_sink(const ps_sink_ops *ops, ps_error *err);

/* --- source wrappers ------------------------------------------------------ */
int ps_src_open(ps_src *s, const ps_source_ops *ops, const ps_source_config *cfg,
                ps_error *err);
int ps_src_prepare(ps_src *s, int mode, ps_prepare_result *res, ps_error *err);
int ps_src_start(ps_src *s, const char *position, const char *redo_until, const char *state,
                 ps_error *err);
int ps_src_read(ps_src *s, ps_read_item *item, int timeout_ms, ps_error *err);
int ps_src_ack(ps_src *s, const char *position, ps_error *err);
int ps_src_compare(const ps_src *s, const char *a, const char *b);
/* PS_OK when text is one of the source's positions; a plugin that cannot
 * tell accepts any non-empty text. */
int ps_src_position_check(const ps_src *s, const char *text, ps_error *err);
/* PS_OK with buf "" when the plugin cannot tell. */
int ps_src_current_position(ps_src *s, char *buf, size_t len, ps_error *err);
long long ps_src_distance(const ps_src *s, const char *from, const char *to);
int ps_src_fence(ps_src *s, char *pos, size_t len, ps_error *err);
/* done receives what was released, in the plugin's words ("" when nothing). */
int ps_src_drop(ps_src *s, char *done, size_t done_len, ps_error *err);

/* The source's retention figures (source.h log_retention); every field -1
 * / "" when the plugin has no such callback (PS_OK). */
int ps_src_log_retention(ps_src *s, ps_log_retention *out, ps_error *err);
/* The position as a byte offset in the log (source.h position_offset), or
 * -1 when the plugin cannot tell; ops may be NULL. */
long long ps_plugin_position_offset(const ps_source_ops *ops, const char *pos);

/* --- live table changes (source.h invariants 8, 9) ------------------------ */
int ps_src_can_retable(const ps_src *s);
int ps_src_retable(ps_src *s, const char *const *include, size_t ninclude,
                   const char *const *exclude, size_t nexclude, bool with_key,
                   const char *mark, ps_retable_result *res, ps_error *err);
int ps_src_mark(ps_src *s, const char *content, char *pos, size_t len, ps_error *err);
int ps_src_chunk_read(ps_src *s, const ps_table_def *def, const ps_key_bound *after,
                      int max_rows, ps_row_fn fn, void *ctx, int *nrows, ps_error *err);

/* --- cutover -------------------------------------------------------------- */
/* No sequences (PS_OK, *n = 0) when the plugin has none to tell. */
int ps_src_sequences(ps_src *s, ps_sequence **seqs, size_t *n, ps_error *err);
/* A sink without sequences says "not applicable (...)" in summary, PS_OK. */
int ps_snk_sequences_set(ps_snk *k, const ps_sequence *seqs, size_t n, char *summary,
                         size_t len, ps_error *err);

/* --- engine state in the checkpoint (sink.h state_save/_restore) ---------- */
int ps_snk_state_save(ps_snk *k, char **json, ps_error *err);
int ps_snk_state_restore(ps_snk *k, const char *json, ps_error *err);
/* The processing range streaming begins with (sink.h range); *hold: the
 * sink keeps what it is given until the range ends. No-op without it. */
int ps_snk_range(ps_snk *k, const char *from, const char *to, bool *hold, ps_error *err);
void ps_src_close(ps_src *s);

/* --- prechecks (penstock/check.h) ---------------------------------------- */
/* Run the plugin's precheck callback; a NULL callback has nothing to check
 * (PS_OK, report and tables untouched). An error return means the checks
 * could not run; it gets the plugin's name as context. */
int ps_src_precheck(const ps_source_ops *ops, const ps_source_config *cfg,
                    ps_check_report *report, ps_check_tables *tables, ps_error *err);
int ps_snk_precheck(const ps_sink_ops *ops, const ps_sink_config *cfg,
                    const ps_table_options *opt, bool loads, const ps_check_tables *tables,
                    ps_check_report *report, ps_error *err);

/* --- initial load (valid only when ps_src_can_snapshot) ------------------- */
int ps_src_can_snapshot(const ps_src *s);
int ps_src_describe(ps_src *s, ps_table_def ***defs, size_t *n, ps_error *err);
int ps_src_split(ps_src *s, const ps_table_def *def, int64_t chunk_rows, ps_key_bound **bounds,
                 size_t *nbounds, ps_error *err);
int ps_src_snapshot_export(ps_src *s, char *name, size_t name_len, char *point,
                           size_t point_len, ps_error *err);
int ps_src_snapshot_release(ps_src *s, ps_error *err);
/* Thread-safe with respect to each other (source.h invariant 7). */
int ps_src_copy_open(ps_src *s, const char *snapshot, ps_copier **out, ps_error *err);
int ps_src_copy_unit(ps_src *s, ps_copier *c, const ps_table_def *def,
                     const ps_copy_range *range, ps_row_fn fn, void *ctx, ps_error *err);
void ps_src_copy_close(ps_src *s, ps_copier *c);
/* The copier's own snapshot point into point (source.h copy_point), or
 * the exported point `dflt` when the plugin shares one snapshot. */
void ps_src_copy_point(ps_src *s, ps_copier *c, const char *dflt, char *point, size_t len);

/* --- raw initial load (source.h copy_raw_format, sink.h load_raw_*) -------- */
/* Whether the plugin offers the raw path; the calls below need it. */
int ps_src_can_copy_raw(const ps_src *s);
int ps_snk_can_load_raw(const ps_snk *k);
/* format "" (and why set) when def's table cannot be copied raw. */
int ps_src_copy_raw_format(ps_src *s, ps_copier *c, const ps_table_def *def, char *format,
                           size_t format_len, char *why, size_t why_len, ps_error *err);
int ps_src_copy_unit_raw(ps_src *s, ps_copier *c, const ps_table_def *def,
                         const ps_copy_range *range, ps_raw_fn fn, void *ctx, ps_error *err);
/* *accepted false (and why set) when the target cannot load format into
 * def's table. */
int ps_snk_load_raw_accepts(ps_snk *k, const ps_table_def *def, const char *format,
                            bool *accepted, char *why, size_t why_len, ps_error *err);
int ps_snk_load_raw_begin(ps_snk *k, const ps_table_def *def, const char *format,
                          ps_error *err);
int ps_snk_load_raw_write(ps_snk *k, const char *data, size_t len, ps_error *err);
int ps_snk_load_raw_end(ps_snk *k, int64_t *rows, ps_error *err);

/* --- sink wrappers -------------------------------------------------------- */
int ps_snk_open(ps_snk *k, const ps_sink_ops *ops, const ps_sink_config *cfg,
                ps_error *err);
int ps_snk_begin(ps_snk *k, const ps_txn *txn, ps_error *err);
int ps_snk_write(ps_snk *k, const ps_txn *txn, const ps_change *c, ps_error *err);
int ps_snk_commit(ps_snk *k, const ps_txn *txn, ps_error *err);
int ps_snk_flush(ps_snk *k, ps_error *err);
/* sink.h durable: *through is the number of the last durable flush (of
 * k->flushes); a sink without the callback has every flush durable. */
int ps_snk_durable(ps_snk *k, int how, uint64_t *through, ps_error *err);
/* Makes every flush so far durable (PS_DURABLE_WAIT); a no-op for sinks
 * without the callback. For what must survive a crash of the target before
 * the source is told or changed (a dropped slot, a completed cutover). */
int ps_snk_make_durable(ps_snk *k, ps_error *err);
bool ps_snk_has_durable(const ps_snk *k);
/* The sink keeps the checkpoint in the target: it has the checkpoint group
 * and, when it has checkpoint_kept, this open instance says so. */
int ps_snk_has_checkpoint_store(const ps_snk *k);
/* The sink's own figures (sink.h figures) as compact JSON text into buf
 * ("" when it has none); PS_ETOOBIG when they do not fit in len. */
int ps_snk_figures(ps_snk *k, char *buf, size_t len, ps_error *err);
/* The applier is idle (sink.h idle); PS_OK when the sink has no idle work. */
int ps_snk_idle(ps_snk *k, ps_error *err);
/* *json NULL when there is none (or the sink keeps no checkpoints). */
int ps_snk_checkpoint_load(ps_snk *k, char **json, ps_error *err);
int ps_snk_checkpoint_store(ps_snk *k, const char *json, ps_error *err);
int ps_snk_checkpoint_delete(ps_snk *k, ps_error *err);
/* No-ops (created = false) for sinks without table management. */
int ps_snk_table_prepare(ps_snk *k, const ps_table_def *def, const ps_table_options *opt,
                         bool *created, ps_error *err);
int ps_snk_table_finish(ps_snk *k, const ps_table_def *def, ps_error *err);
int ps_snk_max_writers(const ps_snk *k);
void ps_snk_close(ps_snk *k);

/* --- schema (penstock/schema.h) ------------------------------------------- */
/* *out NULL when the source has none (or no such callback). */
int ps_src_schema_after_load(ps_src *s, ps_schema **out, ps_error *err);
/* A no-op (*applied 0) for a NULL or empty schema or a sink without the
 * callback (ps_snk_can_apply_schema tells which). */
int ps_snk_schema_apply(ps_snk *k, const ps_schema *schema, size_t *applied, ps_error *err);
int ps_snk_can_apply_schema(const ps_snk *k);
/* The sink's DDL commits by itself (sink.h ddl_commits). */
bool ps_snk_ddl_commits(const ps_snk *k);

/* --- schema changes (issue 15; source.h invariants 10, 11) ------------------ */
int ps_src_can_check_selection(const ps_src *s);
/* *changed false when the source cannot tell. */
int ps_src_selection_check(ps_src *s, bool *changed, ps_error *err);
/* *out NULL (def holds) when the source cannot tell. */
int ps_src_redescribe(ps_src *s, const ps_table_def *def, ps_table_def **out, bool *gone,
                      ps_error *err);
/* A table's definition changed (sink.h table_change); nothing when the sink
 * has no callback. */
int ps_snk_table_change(ps_snk *k, const ps_txn *txn, const ps_table_change *tc,
                        const ps_table_options *opt, bool *backfill, ps_error *err);

#endif
