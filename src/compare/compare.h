/*
 * compare.h — `penstock compare`: is the target a faithful copy of the
 * source, and if not, which rows differ (and, asked to, repair them).
 *
 * A library with a thin CLI (src/cli/cmd_compare.c); the control plane calls the
 * same entry points for `POST /v1/jobs/{id}/compare`.
 *
 *   ps_compare_opts o;
 *   ps_compare_opts_defaults(&o);
 *   o.source_url = ...; o.target_url = ...;     passwords resolved by the caller
 *   rc = ps_compare_run(&o, &rep, &err);        rc < 0: error, rep is empty
 *   json = ps_compare_report_json(&rep);        or ps_compare_report_print
 *   ps_compare_report_free(&rep);
 *
 * Modes: count (row counts), full (every row: digests over key-ordered
 * chunks on both sides; chunks that differ are bisected down to the rows),
 * sample (the given percentage of chunks, chosen at random, plus counts).
 * A table without a primary key or unique not-null key is compared by count
 * and a full-row multiset hash; its report says keys cannot be named.
 *
 * Ownership: opts borrows every string; the report owns everything in it and
 * is released by ps_compare_report_free. Secrets: passwords are only passed
 * to libpq; nothing in the report or an error message carries them.
 */
#ifndef PS_COMPARE_COMPARE_H
#define PS_COMPARE_COMPARE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "penstock/error.h"

typedef enum ps_compare_mode {
	PS_COMPARE_COUNT = 1,
	PS_COMPARE_FULL,
	PS_COMPARE_SAMPLE
} ps_compare_mode;

typedef struct ps_compare_opts {
	const char *source_url;        /* postgresql://... (no password in it) */
	const char *source_password;   /* NULL: none (libpq may still use ~/.pgpass) */
	const char *target_url;        /* postgresql://... or sqlite:///path.db */
	const char *target_password;
	const char *const *tables;     /* ntables glob patterns on "schema.table"; a
	                                  pattern without a dot means public.<it>;
	                                  none: every table of the source */
	size_t ntables;
	const char *const *exclude;    /* nexclude glob patterns on "schema.table": tables
	                                  they match are left out (a job's
	                                  tables.exclude); they need match nothing */
	size_t nexclude;
	int mode;                      /* ps_compare_mode, default full */
	int sample_percent;            /* 1..100, default 10 (sample mode) */
	long long chunk_rows;          /* rows per chunk, default 10000 */
	int max_report;                /* differing keys listed per table, default 100 */
	bool repair;                   /* rewrite differing rows on the target */
	const char *job;               /* name of a job replicating source -> target:
	                                  differences are re-checked once the target
	                                  applied past the source position they were
	                                  read at; NULL: none */
	int lag_timeout_ms;            /* how long to wait for that, default 60000 */
	uint64_t seed;                 /* sample mode chunk choice; 0: from the clock */
	atomic_int *cancel;            /* non-zero asks to stop (PS_ESTOPPED); may be NULL */
} ps_compare_opts;

typedef enum ps_compare_diff_kind {
	PS_DIFF_MISSING_IN_TARGET = 1,
	PS_DIFF_EXTRA_IN_TARGET,
	PS_DIFF_DIFFERENT
} ps_compare_diff_kind;

typedef struct ps_compare_diff {
	int kind;                      /* ps_compare_diff_kind */
	char **key;                    /* nkey values, the source's text form */
	int ncolumns;                  /* PS_DIFF_DIFFERENT: the columns that differ */
	int *columns;                  /* indexes into the table's column_names */
} ps_compare_diff;

typedef struct ps_compare_table {
	char *schema, *name;           /* source table */
	char *target;                  /* target table as the target names it */
	int ncolumns;
	char **column_names;
	int nkey;                      /* 0: no usable key (count + multiset only) */
	char **key_names;
	char *key_source;              /* "primary key" or "unique index <name>", or NULL */
	int64_t source_rows, target_rows;   /* -1 when not counted */
	int64_t chunks, chunks_checked, chunks_different;
	int64_t missing, extra, different;  /* totals, not capped */
	size_t ndiffs;                 /* listed, at most max_report */
	ps_compare_diff *diffs;
	bool multiset_checked, multiset_equal;
	int64_t settled;               /* differences gone once the target caught up */
	bool repaired;                 /* repair ran on this table */
	int64_t repair_written, repair_deleted, repair_remaining;
	bool equal;                    /* no difference found */
} ps_compare_table;

typedef struct ps_compare_report {
	int mode;
	bool repair;
	char job[64];                  /* "" when none */
	char source[1536], target[1536];  /* redacted URLs */
	size_t ntables;
	ps_compare_table *tables;
	bool equal;                    /* every table equal */
	bool consistent;               /* equal, or every difference repaired */
	double seconds;
} ps_compare_report;

void ps_compare_opts_defaults(ps_compare_opts *o);
/* "count" | "full" | "sample" -> mode; PS_EINVAL otherwise. */
int ps_compare_mode_parse(const char *s, int *mode);
const char *ps_compare_mode_name(int mode);
const char *ps_compare_diff_kind_name(int kind);

/*
 * Runs the comparison. Returns 0 with *rep filled (equal or not: see
 * rep->equal / rep->consistent), or a negative ps_error_code with err set
 * and *rep empty: PS_EINVAL for bad options, an unknown table, a table or
 * column missing in the target; PS_ECONNECT / PS_ESERVER for the servers;
 * PS_ETIMEOUT when the job's target did not catch up; PS_ESTOPPED on cancel.
 */
int ps_compare_run(const ps_compare_opts *o, ps_compare_report *rep, ps_error *err);

/* The report as JSON (new reference; NULL on OOM). */
json_t *ps_compare_report_json(const ps_compare_report *rep);
/* The readable form. */
void ps_compare_report_print(const ps_compare_report *rep, FILE *f);
void ps_compare_report_free(ps_compare_report *rep);

#endif
