/*
 * penstock/tabledef.h — what a source says about a table so that a target can
 * create it, and the key ranges the initial load copies it in.
 *
 * A ps_table_def is built by a source (describe) and read by sinks
 * (table_prepare, table_finish) and the core. Ownership: every pointer in it
 * is its own malloc'd block, released by ps_table_def_free (src/core/change.c);
 * the def holds one reference to its ps_table.
 *
 * Column layout: def->table->columns are exactly the columns a row of the
 * initial load and a change of the stream carry, in the same order (PG: the
 * non-dropped, non-generated attributes in attnum order — what pgoutput
 * sends). In def->table, is_key marks the PRIMARY KEY columns (all false when
 * the table has none). Note that the stream's own ps_table marks the replica
 * identity instead, which can differ (REPLICA IDENTITY FULL marks every
 * column): sinks take the key from the target table itself.
 */
#ifndef PENSTOCK_TABLEDEF_H
#define PENSTOCK_TABLEDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/change.h"

typedef struct ps_column_def {
	char *sql_type;        /* the type as the source engine spells it, e.g.
	                          "numeric(12,2)", "timestamp with time zone",
	                          "integer[]", "character varying(10)" */
	bool user_type;        /* a type the target may not have (PG: enum, domain,
	                          composite, range... outside pg_catalog) */
	char *default_expr;    /* the source engine's default expression, or NULL */
	bool not_null;
	char identity;         /* 0, 'a' GENERATED ALWAYS / 'd' BY DEFAULT AS IDENTITY */
	char *sequence;        /* quoted "schema"."name" of the sequence a serial
	                          default draws from (default_expr names it), or NULL */
} ps_column_def;

typedef enum ps_constraint_kind {
	PS_CONSTRAINT_PRIMARY = 'p',
	PS_CONSTRAINT_UNIQUE = 'u',
	PS_CONSTRAINT_CHECK = 'c',
	PS_CONSTRAINT_INDEX = 'i'   /* an index that backs no constraint */
} ps_constraint_kind;

typedef struct ps_constraint_def {
	char *name;            /* constraint or index name in the source */
	char kind;             /* ps_constraint_kind */
	char *sql;             /* source engine text: for p/u/c the constraint
	                          definition ("PRIMARY KEY (id)", "UNIQUE (a, b)",
	                          "CHECK ((qty > 0))"); for i the whole CREATE INDEX
	                          statement, schema-qualified */
	int ncols;             /* p/u/i on plain columns only: their indexes into */
	int *cols;             /* def->table->columns; ncols = 0 otherwise */
} ps_constraint_def;

typedef struct ps_table_def {
	ps_table *table;       /* owned reference */
	char *engine;          /* source engine: "postgresql" */
	ps_column_def *columns;  /* table->ncolumns entries */
	ps_constraint_def *constraints;
	int nconstraints;
	bool has_primary_key;  /* table->columns[].is_key is the primary key */
	int64_t estimated_rows;  /* from statistics; -1 if unknown */
	int64_t estimated_bytes; /* on-disk size; -1 if unknown */
} ps_table_def;

/* One key tuple bounding a copy range: nvalues canonical-text values of the
 * primary key columns, in key order. */
typedef struct ps_key_bound {
	int nvalues;
	char **values;
} ps_key_bound;

/* The rows a copy unit covers: lower <= key < upper; NULL means unbounded.
 * Both NULL: the whole table. */
typedef struct ps_copy_range {
	const ps_key_bound *lower;
	const ps_key_bound *upper;
} ps_copy_range;

/* Frees everything the def owns and the def itself; def may be NULL. */
void ps_table_def_free(ps_table_def *def);
void ps_key_bound_clear(ps_key_bound *b);   /* frees values, keeps b */

#endif
