/*
 * cmp_internal.h — what the files of src/compare/ share. Not a contract:
 * the contract a side implements is cmp_side.h.
 *
 *   compare.c   the driver: sides, tables, modes, chunks, bisection, the run
 *   resolve.c   differing keys made final: settled against a running job,
 *               recorded, repaired
 *   catalog.c   which tables (the source side's catalogue, --tables), and
 *               what the target side has of them
 *   canon.c     the canonical text of a value, row hashing
 *   rows.c      row sets read from either side, and their difference
 *   sides.c     the table of sides, looked up by URL scheme
 *   side_pg.c   the PostgreSQL side (source or target)
 *   side_sqlite.c  the SQLite side (target)
 *   report.c    JSON, the readable printer, freeing
 *
 * Only side_*.c include an engine's header; the driver reaches an engine
 * through cmp_side_ops alone.
 */
#ifndef PS_COMPARE_INTERNAL_H
#define PS_COMPARE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compare/cmp_side.h"
#include "compare/compare.h"

/* --- differences (rows.c) ------------------------------------------------- */
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

/* --- catalog.c ------------------------------------------------------------ */
/* Tables of the source matching the patterns (each pattern must match one),
 * with columns and key; checks the target has each table and column. */
int ps__cmp_catalog(cmp_side *src, cmp_side *tgt, const char *const *patterns,
                    size_t npatterns, const char *const *exclude, size_t nexclude,
                    cmp_table **out, size_t *n, ps_error *err);

/* --- one run (compare.c, resolve.c) -------------------------------------- */
typedef struct cmp_run {
	const ps_compare_opts *o;
	cmp_side src, tgt;
	cmp_side fence;         /* second source instance (job only) */
	bool digests;           /* the two sides' digests can be compared */
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
/* The job's checkpoint position in the target (checked by the source side),
 * into pos. */
int ps__cmp_job_position(cmp_run *run, char *pos, size_t len, ps_error *err);
/* Fence, then poll until the target applied past the source's position now. */
int ps__cmp_wait_applied(cmp_run *run, ps_error *err);
/* Reads the keys again on both sides (settling against the job), records
 * the differences in tr and repairs them when asked. */
int ps__cmp_resolve(cmp_run *run, const cmp_table *t, ps_compare_table *tr, cmp_keys *ks,
                    ps_error *err);

/* --- side_pg.c, exposed for its unit test --------------------------------- */
/* "16/B374D848" -> 0x16B374D848. PS_EINVAL on anything else. */
int ps__cmp_parse_lsn(const char *s, uint64_t *out);

#endif
