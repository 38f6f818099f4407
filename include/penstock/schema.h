/*
 * penstock/schema.h — what a target gets besides the tables' rows: the
 * objects a table needs before it can be created (types, sequences,
 * collations, extensions, functions its defaults and checks call), and
 * what comes after the initial load (foreign keys, sequence values, and
 * with target.schema "full" views, functions, triggers, policies, grants).
 *
 * A source describes them (tabledef.h `requires`, source.h
 * schema_after_load); a sink creates them (table_prepare, schema_apply).
 * Like a def's defaults and checks, an object's SQL is the source engine's
 * own: a sink of that engine runs it, any other sink ignores it (the
 * table's columns already say what it needs to store the rows).
 *
 * Rules a sink keeps:
 *   1. Objects come in creation order (what an object needs comes before
 *      it): the sink runs them in that order.
 *   2. An object is created only when the target lacks it (looked up by
 *      kind, schema and name, see ps_object_kind): running a list twice
 *      changes nothing the second time, so a restart may repeat it. An
 *      object the target already has is used as it is, not compared.
 *   3. PS_OBJECT_STATEMENT objects have no identity and run every time;
 *      their SQL is idempotent (GRANT, COMMENT, setval, REFRESH, ALTER ...
 *      ENABLE ROW LEVEL SECURITY).
 *   4. must_exist objects are never created (penstock cannot, or the spec
 *      says not to): a target without one is refused, naming the object,
 *      what needs it and the fix.
 *   5. An object whose roles (grants, policies) are not all in the target
 *      is skipped with a warning naming the role.
 *
 * Ownership: every pointer is its own malloc'd block; ps_schema_free and
 * ps_schema_objects_free (src/core/schema.c) release them.
 */
#ifndef PENSTOCK_SCHEMA_H
#define PENSTOCK_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

/* target.schema: what the target gets besides the tables' rows. */
typedef enum ps_schema_mode {
	PS_SCHEMA_TABLES = 0,   /* the tables and every object they need (default) */
	PS_SCHEMA_FULL,         /* and the rest of their schemas: views, functions,
	                           triggers, policies, grants ... */
	PS_SCHEMA_BARE          /* the tables only: whatever else they need must
	                           already be in the target */
} ps_schema_mode;

/* tables.keyless: a table without a primary key or replica identity. */
typedef enum ps_keyless {
	PS_KEYLESS_INSERT_ONLY = 0, /* capture its inserts and truncates only (default) */
	PS_KEYLESS_REFUSE,          /* refuse the job */
	PS_KEYLESS_FULL             /* set REPLICA IDENTITY FULL on the source */
} ps_keyless;

/* target.foreign_keys: how foreign keys are added after the load. */
typedef enum ps_foreign_keys {
	PS_FK_VALIDATE = 0,     /* NOT VALID, then VALIDATE CONSTRAINT (default) */
	PS_FK_NOT_VALID,        /* NOT VALID, left for the user to validate */
	PS_FK_NONE              /* not created */
} ps_foreign_keys;

/* How a sink finds an object in the target (rule 2). */
typedef enum ps_object_kind {
	PS_OBJECT_SCHEMA = 1,   /* name */
	PS_OBJECT_EXTENSION,    /* name */
	PS_OBJECT_COLLATION,    /* schema, name */
	PS_OBJECT_TYPE,         /* ident: the type as the engine's type input reads it
	                           (PG: to_regtype) */
	PS_OBJECT_FUNCTION,     /* ident: name and argument types (PG: to_regprocedure) */
	PS_OBJECT_OPERATOR,     /* ident: name and operand types (PG: to_regoperator) */
	PS_OBJECT_RELATION,     /* schema, name: a sequence, view, materialized view
	                           or index */
	PS_OBJECT_CONSTRAINT,   /* table, name */
	PS_OBJECT_TRIGGER,      /* table, name */
	PS_OBJECT_POLICY,       /* table, name */
	PS_OBJECT_OTHER,        /* catalog, schema (may be NULL), name: an object
	                           penstock never creates (PG: operator classes and
	                           families, text search objects, languages, access
	                           methods); always must_exist */
	PS_OBJECT_STATEMENT     /* no identity: runs every time (rule 3) */
} ps_object_kind;

typedef struct ps_schema_object {
	int kind;               /* ps_object_kind */
	bool must_exist;        /* rule 4: sql is NULL */
	char *what;             /* for messages: "type public.mood" */
	char *schema;           /* per kind; may be NULL */
	char *name;
	char *table;            /* CONSTRAINT, TRIGGER, POLICY: "schema"."table" */
	char *ident;            /* TYPE, FUNCTION, OPERATOR */
	char *catalog;          /* OTHER: where it lives, e.g. "pg_opclass" */
	char *sql;              /* the statements that create it (engine SQL) */
	char **roles;           /* rule 5; nroles entries */
	size_t nroles;
} ps_schema_object;

/* A list of objects for one engine, in creation order. */
typedef struct ps_schema {
	char *engine;           /* e.g. "postgresql" */
	ps_schema_object *objects;
	size_t n;
	char *skipped;          /* what the source left out and why, for the log;
	                           NULL when nothing */
} ps_schema;

/* A deep copy of src into dst; 0 or PS_ENOMEM (dst then holds what was
 * copied so far: ps_schema_object_clear releases it). */
int ps_schema_object_copy(ps_schema_object *dst, const ps_schema_object *src);
/* Frees what one object holds and zeroes it (not the object itself). */
void ps_schema_object_clear(ps_schema_object *o);
/* Frees the n objects' contents and the array; objects may be NULL. */
void ps_schema_objects_free(ps_schema_object *objects, size_t n);
/* Frees everything and the schema itself; s may be NULL. */
void ps_schema_free(ps_schema *s);

#endif
