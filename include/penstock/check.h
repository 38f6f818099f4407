/*
 * penstock/check.h — prechecks: what a job needs from its source and target,
 * checked before the job starts, reported as a list of items.
 *
 * An item says what was checked (id, e.g. "source.wal_level"), how much it
 * matters (level: an ERROR item that failed blocks the job, a WARNING does
 * not), what came of it (passed, failed, skipped), what was found (message)
 * and, when it failed, the exact SQL or setting that fixes it (fix).
 *
 * Rules for whoever adds items (source and sink plugins, core):
 *   1. A check that could not be made (the server is unreachable, an earlier
 *      check it depends on failed) is SKIPPED with a message saying why;
 *      never PASSED.
 *   2. message and fix never hold a secret (no password, no URL with one:
 *      use the redacted URL).
 *   3. Ids are stable: users list them in the spec's checks.skip, and the
 *      core refuses an id it does not know (core/precheck.h keeps the list;
 *      docs/prechecks.md documents each one).
 *
 * Ownership: a report owns its items and their strings; ps_check_report_free
 * releases them. A zeroed report is empty and valid. The same holds for
 * ps_check_tables.
 */
#ifndef PENSTOCK_CHECK_H
#define PENSTOCK_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/error.h"
#include "penstock/schema.h"

typedef enum ps_check_level {
	PS_CHECK_ERROR = 1,      /* failing it blocks the job */
	PS_CHECK_WARNING         /* reported; the job may still start */
} ps_check_level;

typedef enum ps_check_result {
	PS_CHECK_PASSED = 1,
	PS_CHECK_FAILED,
	PS_CHECK_SKIPPED         /* not checked: listed in checks.skip, or not checkable */
} ps_check_result;

#define PS_CHECK_ID_MAX 48

typedef struct ps_check_item {
	char id[PS_CHECK_ID_MAX];   /* e.g. "source.wal_level" */
	int level;                  /* ps_check_level */
	int result;                 /* ps_check_result */
	char *message;              /* what was found; never NULL */
	char *fix;                  /* exact SQL or setting that fixes it, or NULL */
} ps_check_item;

typedef struct ps_check_report {
	ps_check_item *items;
	size_t n, cap;
} ps_check_report;

/* Longest message or fix kept; longer text is cut with "...". */
#define PS_CHECK_TEXT_MAX 4096

/* Appends an item; message is printf-style, fix may be NULL. The id is cut
 * to PS_CHECK_ID_MAX - 1 bytes. Returns 0 or PS_ENOMEM (report unchanged). */
int ps_check_add(ps_check_report *r, const char *id, int level, int result,
                 const char *fix, const char *fmt, ...) PS_PRINTF(6, 7);
void ps_check_report_free(ps_check_report *r);
/* True when no item of level ERROR has result FAILED. */
bool ps_check_report_passed(const ps_check_report *r);
/* The first item with this id, or NULL. */
ps_check_item *ps_check_find(const ps_check_report *r, const char *id);

/* "error" / "warning"; "passed" / "failed" / "skipped"; "?" when unknown. */
const char *ps_check_level_name(int level);
const char *ps_check_result_name(int result);

/*
 * The tables a source's precheck selected, handed to the sink's precheck.
 * user_types lists, once each, the types of the table's columns that a
 * target may not have (PG: types outside pg_catalog — enums, domains,
 * composites, ranges, and arrays of them), spelled as the source does
 * (format_type), for a target that creates the table.
 */
typedef struct ps_check_table {
	char *schema;
	char *name;
	char **user_types;
	size_t nuser_types;
	/* Added for issue 14: what the table needs that the target may lack
	 * and penstock does not simply create (penstock/schema.h): extensions
	 * (must_exist false: penstock creates them when the target can) and
	 * objects the target must already have (must_exist). */
	ps_schema_object *needs;
	size_t nneeds;
	/* The columns the source sends (not generated ones), so that a target
	 * table that exists can be checked against them; listed = false when
	 * the source did not list them. */
	char **columns;
	size_t ncolumns;
	bool columns_listed;
} ps_check_table;

typedef struct ps_check_tables {
	ps_check_table *items;
	size_t n, cap;
	bool listed;            /* set by the source once it could list its tables
	                           (n may still be 0: nothing matched) */
} ps_check_tables;

/* Appends a table (names copied); 0 or PS_ENOMEM. */
int ps_check_tables_add(ps_check_tables *t, const char *schema, const char *name);
/* Adds a type to the table unless it is already listed; 0 or PS_ENOMEM. */
int ps_check_table_add_type(ps_check_table *t, const char *type);
/* Adds a column name to the table's columns (columns_listed set); 0 or
 * PS_ENOMEM. */
int ps_check_table_add_column(ps_check_table *t, const char *column);
/* Adds a copy of o to the table's needs; 0 or PS_ENOMEM. */
int ps_check_table_add_need(ps_check_table *t, const ps_schema_object *o);
void ps_check_tables_free(ps_check_tables *t);

#endif
