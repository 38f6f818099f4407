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
 * sends). In def->table, is_key marks the PRIMARY KEY columns (or, without
 * one, those of the REPLICA IDENTITY USING INDEX index: identity_index; all
 * false when the table has neither). Note that the stream's own ps_table marks the replica
 * identity instead, which can differ (REPLICA IDENTITY FULL marks every
 * column): sinks take the key from the target table itself.
 */
#ifndef PENSTOCK_TABLEDEF_H
#define PENSTOCK_TABLEDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/change.h"
#include "penstock/schema.h"

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
	/* Added for issue 14; NULL when the source has nothing to say. */
	char *collation;       /* quoted "schema"."name" of the column's collation when
	                          it is not its type's default */
	char *identity_options;/* identity columns: the sequence options, as the engine
	                          writes them in GENERATED ... AS IDENTITY (...) */
	char *comment;         /* the column's comment */
	uint8_t collation_class; /* ps_collation_class of collation, for targets that
	                            map collations instead of creating them */
	/* Added for issue 15 (schema changes followed); 0 / NULL when unknown. */
	int ordinal;           /* the source's own number for the column (PG attnum): a
	                          renamed column keeps it, a dropped one's is never reused */
	uint8_t fill;          /* ps_fill: what rows older than the column hold in it */
	char *fill_value;      /* PS_FILL_VALUE: that value, canonical text */
	char **labels;         /* an enum type's labels in their sort order, or NULL */
	int nlabels;
} ps_column_def;

/* What the rows a table held when a column was added hold in it (ps_column_def
 * fill): a target adding the column gives its existing rows the same. */
typedef enum ps_fill {
	PS_FILL_NULL = 0,      /* NULL: the column was added without a default */
	PS_FILL_VALUE,         /* fill_value: a constant default, evaluated once when it
	                          was added (PG: the column's missing value) */
	PS_FILL_UNKNOWN        /* each row got its own value (a volatile default) or the
	                          source cannot tell: only reading the rows again says */
} ps_fill;

/* What a column's collation means, engine-neutrally (ps_column_def). */
typedef enum ps_collation_class {
	PS_COLLATION_DEFAULT = 0,        /* the type's / database's default */
	PS_COLLATION_BINARY,             /* byte order ("C", "POSIX") */
	PS_COLLATION_CASE_INSENSITIVE,   /* equal regardless of case (ICU level 1 or 2,
	                                    nondeterministic) */
	PS_COLLATION_OTHER               /* another language's order */
} ps_collation_class;

/* A generated column: computed by the target from the others, never copied
 * (PG 15 does not replicate generated columns). */
typedef struct ps_generated_def {
	char *name;
	char *sql_type;
	char *expr;            /* the generation expression, engine SQL */
	char *collation;       /* as in ps_column_def, or NULL */
	char *comment;
	int position;          /* how many of def->table's columns come before it */
} ps_generated_def;

/* One partition of a partitioned table, with its own partitions after it. */
typedef struct ps_partition_def {
	char *schema, *name;
	char *parent_schema, *parent_name;
	char *bound;           /* "FOR VALUES ..." or "DEFAULT", engine SQL */
	char *partition_by;    /* sub-partitioned: its partition key, else NULL */
	bool leaf;             /* holds rows (not partitioned itself) */
	int64_t estimated_rows;
	int64_t estimated_bytes;
	char *comment;
	bool attached;         /* issue 15: attached after it was created (ATTACH
	                          PARTITION), so it may hold rows written before it
	                          was a partition; false: created as one */
} ps_partition_def;

typedef enum ps_constraint_kind {
	PS_CONSTRAINT_PRIMARY = 'p',
	PS_CONSTRAINT_UNIQUE = 'u',
	PS_CONSTRAINT_CHECK = 'c',
	PS_CONSTRAINT_EXCLUSION = 'x', /* sql: "EXCLUDE USING ..."; added after the load */
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

	/* Added for issue 14: a sink that does not know a field ignores it. */
	ps_schema_object *requires; /* objects the table needs, in creation order
	                               (penstock/schema.h); created before it */
	size_t nrequires;
	ps_generated_def *generated; /* generated columns (not in table->columns) */
	int ngenerated;
	char *partition_by;    /* a partitioned table: its partition key, engine SQL
	                          ("RANGE (payment_date)"), else NULL */
	ps_partition_def *partitions; /* every partition under it, parents first */
	int npartitions;
	char *comment;         /* the table's comment */
	char *identity_index;  /* no primary key but REPLICA IDENTITY USING INDEX: the
	                          index's name (one of constraints); rows are found by
	                          its columns, marked is_key like a primary key's */
	bool insert_only;      /* only its inserts and truncates are captured
	                          (tables.keyless insert_only) */
} ps_table_def;

/* One key tuple bounding a copy range: nvalues canonical-text values of the
 * primary key columns, in key order. */
typedef struct ps_key_bound {
	int nvalues;
	char **values;
} ps_key_bound;

/* The rows a copy unit covers: lower <= key < upper; NULL means unbounded.
 * Both NULL: the whole table. partition, when set, narrows the unit to the
 * rows of that partition ("schema.name" of one of def->partitions' leaves). */
typedef struct ps_copy_range {
	const ps_key_bound *lower;
	const ps_key_bound *upper;
	const char *partition; /* added for issue 14; NULL: every partition */
} ps_copy_range;

/*
 * A table's definition changed in the stream (source.h PS_READ_TABLE): the
 * changes that follow carry `table`. Ownership: the holder owns the struct,
 * one reference to each table and the def; ps_table_change_free releases
 * them.
 */
typedef struct ps_table_change {
	ps_table *table;       /* the definition of the changes that follow */
	ps_table *previous;    /* the one the stream had before in this run, or NULL
	                          when it is the first one seen since the run began
	                          (what changed before is then for the target to tell) */
	ps_table_def *def;     /* the table as the source has it for `table` (describe,
	                          its columns those of `table` in the same order), or
	                          NULL when the source cannot tell (the table is gone) */
	uint32_t what;         /* PS_TC_*: what the source saw */
	uint64_t lsn;          /* log offset of the first change that carries `table`
	                          (as ps_change lsn), 0 if unknown */
} ps_table_change;

#define PS_TC_FIRST 0x01u      /* first definition of the table in this run */
#define PS_TC_COLUMNS 0x02u    /* its columns: added, dropped, renamed, retyped */
#define PS_TC_NAME 0x04u       /* its schema or name */
#define PS_TC_PARTITIONS 0x08u /* its partitions: created, attached, detached */
#define PS_TC_LABELS 0x10u     /* an enum type of a column gained labels */

void ps_table_change_free(ps_table_change *tc);

/* Frees everything the def owns and the def itself; def may be NULL. */
void ps_table_def_free(ps_table_def *def);
void ps_key_bound_clear(ps_key_bound *b);   /* frees values, keeps b */

#endif
