/*
 * pgsink_schema.c — creating the objects of penstock/schema.h in a
 * PostgreSQL target: what a table needs before it is created (a def's
 * requires, from table_prepare) and what comes after the load
 * (schema_apply).
 *
 * NOTES ON THE DESIGN
 *
 *  1. Inside the open target transaction: the objects commit with the
 *     tables and the checkpoint that need them, or not at all.
 *  2. Each object is looked up first, by kind (schema.h ps_object_kind),
 *     with parameters; one the target has is used as it is. Creation runs
 *     under a savepoint, so another writer creating the same object at the
 *     same time loses nothing but the race (pgsink_ddl.c NOTES 4).
 *  3. check_function_bodies is off for the transaction (SET LOCAL): a
 *     function's body may name objects created after it, as in pg_dump's
 *     output.
 *  4. An object penstock does not create (must_exist) that the target
 *     lacks is refused with its name, what needs it and the fix; the
 *     transaction stays usable (the refusal is the user's to fix).
 *  5. An object whose statements name a role the target lacks (a grant, a
 *     policy) is skipped with a warning naming the role.
 *  6. Objects described by another engine are ignored: their SQL is not
 *     PostgreSQL's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/log.h"
#include "util/pgconn.h"

/* The lookup of one kind of object (note 2): SQL returning one boolean row,
 * and which fields go in as $1, $2. */
typedef struct probe {
	const char *sql;
	int nparams;
	int first;        /* 0 schema, 1 name, 2 table, 3 ident */
	int second;
} probe;

enum { F_SCHEMA, F_NAME, F_TABLE, F_IDENT };

static const char *field(const ps_schema_object *o, int f)
{
	switch (f) {
	case F_SCHEMA: return o->schema;
	case F_NAME: return o->name;
	case F_TABLE: return o->table;
	default: return o->ident;
	}
}

/* Objects penstock never creates, by the catalog they live in. */
static const struct {
	const char *catalog, *sql;
	bool has_schema;
} OTHER_PROBES[] = {
	{"pg_opclass", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_opclass x JOIN "
	 "pg_catalog.pg_namespace n ON n.oid = x.opcnamespace WHERE n.nspname = $1 AND "
	 "x.opcname = $2)", true},
	{"pg_opfamily", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_opfamily x JOIN "
	 "pg_catalog.pg_namespace n ON n.oid = x.opfnamespace WHERE n.nspname = $1 AND "
	 "x.opfname = $2)", true},
	{"pg_ts_config", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_ts_config x JOIN "
	 "pg_catalog.pg_namespace n ON n.oid = x.cfgnamespace WHERE n.nspname = $1 AND "
	 "x.cfgname = $2)", true},
	{"pg_ts_dict", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_ts_dict x JOIN "
	 "pg_catalog.pg_namespace n ON n.oid = x.dictnamespace WHERE n.nspname = $1 AND "
	 "x.dictname = $2)", true},
	{"pg_ts_parser", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_ts_parser x JOIN "
	 "pg_catalog.pg_namespace n ON n.oid = x.prsnamespace WHERE n.nspname = $1 AND "
	 "x.prsname = $2)", true},
	{"pg_ts_template", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_ts_template x JOIN "
	 "pg_catalog.pg_namespace n ON n.oid = x.tmplnamespace WHERE n.nspname = $1 AND "
	 "x.tmplname = $2)", true},
	{"pg_language", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_language WHERE lanname = $1)",
	 false},
	{"pg_am", "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_am WHERE amname = $1)", false},
};

static int probe_for(const ps_schema_object *o, probe *p)
{
	memset(p, 0, sizeof(*p));
	switch (o->kind) {
	case PS_OBJECT_SCHEMA:
		*p = (probe){"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
		             1, F_NAME, 0};
		return PS_OK;
	case PS_OBJECT_EXTENSION:
		*p = (probe){"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = $1)",
		             1, F_NAME, 0};
		return PS_OK;
	case PS_OBJECT_COLLATION:
		*p = (probe){"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_collation c "
		             "JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace "
		             "WHERE n.nspname = $1 AND c.collname = $2 AND c.collencoding IN (-1, "
		             "pg_catalog.pg_char_to_encoding(pg_catalog.getdatabaseencoding())))",
		             2, F_SCHEMA, F_NAME};
		return PS_OK;
	case PS_OBJECT_TYPE:
		*p = (probe){"SELECT pg_catalog.to_regtype($1) IS NOT NULL", 1, F_IDENT, 0};
		return PS_OK;
	case PS_OBJECT_FUNCTION:
		*p = (probe){"SELECT pg_catalog.to_regprocedure($1) IS NOT NULL", 1, F_IDENT, 0};
		return PS_OK;
	case PS_OBJECT_OPERATOR:
		*p = (probe){"SELECT pg_catalog.to_regoperator($1) IS NOT NULL", 1, F_IDENT, 0};
		return PS_OK;
	case PS_OBJECT_RELATION:
		*p = (probe){"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
		             "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
		             "WHERE n.nspname = $1 AND c.relname = $2)", 2, F_SCHEMA, F_NAME};
		return PS_OK;
	case PS_OBJECT_CONSTRAINT:
		*p = (probe){"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint "
		             "WHERE conrelid = pg_catalog.to_regclass($1) AND conname = $2)",
		             2, F_TABLE, F_NAME};
		return PS_OK;
	case PS_OBJECT_TRIGGER:
		*p = (probe){"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger "
		             "WHERE tgrelid = pg_catalog.to_regclass($1) AND tgname = $2)",
		             2, F_TABLE, F_NAME};
		return PS_OK;
	case PS_OBJECT_POLICY:
		*p = (probe){"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_policy "
		             "WHERE polrelid = pg_catalog.to_regclass($1) AND polname = $2)",
		             2, F_TABLE, F_NAME};
		return PS_OK;
	case PS_OBJECT_OTHER:
		for (size_t i = 0; o->catalog && i < sizeof(OTHER_PROBES) / sizeof(OTHER_PROBES[0]); i++) {
			if (strcmp(OTHER_PROBES[i].catalog, o->catalog) != 0)
				continue;
			*p = OTHER_PROBES[i].has_schema ? (probe){OTHER_PROBES[i].sql, 2, F_SCHEMA, F_NAME}
			                                : (probe){OTHER_PROBES[i].sql, 1, F_NAME, 0};
			return PS_OK;
		}
		return PS_EINVAL;
	default:
		return PS_EINVAL;
	}
}

int pgs_object_probe(const ps_schema_object *o, const char **sql, const char **params,
                     int *nparams, ps_error *err)
{
	probe p;

	if (probe_for(o, &p) != PS_OK)
		return ps_error_set(err, PS_EINVAL, "%s: an object of kind %d that this target cannot "
		                    "look up", o->what ? o->what : "an object", o->kind);
	params[0] = field(o, p.first);
	params[1] = p.nparams > 1 ? field(o, p.second) : NULL;
	if (!params[0] || (p.nparams > 1 && !params[1]))
		return ps_error_set(err, PS_EINVAL, "%s: the source did not name it fully",
		                    o->what ? o->what : "an object");
	*sql = p.sql;
	*nparams = p.nparams;
	return PS_OK;
}

/* Whether the target has the object (note 2). */
static int exists(ps_sink *s, const ps_schema_object *o, bool *found, ps_error *err)
{
	const char *params[2], *sql;
	PGresult *res = NULL;
	int n, rc;

	*found = false;
	if (o->kind == PS_OBJECT_STATEMENT)
		return PS_OK;
	rc = pgs_object_probe(o, &sql, params, &n, err);
	if (rc == PS_OK)
		rc = pgs_exec(s, &res, err, "looking up an object in the target", sql, n, params);
	if (rc == PS_OK)
		*found = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return rc;
}

/* The first of the object's roles the target lacks, or NULL (note 5). */
static int missing_role(ps_sink *s, const ps_schema_object *o, const char **missing, ps_error *err)
{
	*missing = NULL;
	for (size_t i = 0; i < o->nroles; i++) {
		const char *params[1] = {o->roles[i]};
		PGresult *res = NULL;
		bool found;
		int rc = pgs_exec(s, &res, err, "looking up a role in the target",
		                  "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)",
		                  1, params);

		if (rc != PS_OK)
			return rc;
		found = PQgetvalue(res, 0, 0)[0] == 't';
		PQclear(res);
		if (!found) {
			*missing = o->roles[i];
			return PS_OK;
		}
	}
	return PS_OK;
}

int pgs_ensure_objects(ps_sink *s, const ps_schema_object *objects, size_t n,
                       const char *needed_by, size_t *applied, ps_error *err)
{
	bool bodies_off = false;
	char what[1024];
	int rc = PS_OK;

	if (applied)
		*applied = 0;
	for (size_t i = 0; rc == PS_OK && i < n; i++) {
		const ps_schema_object *o = &objects[i];
		const char *role = NULL;
		bool found = false;

		rc = missing_role(s, o, &role, err);
		if (rc == PS_OK && role) {
			ps_log_warn("%s: left out, role %s does not exist in the target", o->what, role);
			continue;
		}
		if (rc == PS_OK)
			rc = exists(s, o, &found, err);
		if (rc != PS_OK || found)
			continue;
		if (o->must_exist || !o->sql) {
			rc = ps_error_set(err, PS_EINVAL, "%s%s%s is not in the target, and penstock does "
			                  "not create it: %s", o->what ? o->what : "an object",
			                  needed_by ? ", which " : "", needed_by ? needed_by : "",
			                  o->kind == PS_OBJECT_EXTENSION
			                  ? "create the extension in the target (CREATE EXTENSION), or let "
			                    "penstock do it with \"target\": {\"create_extensions\": true}"
			                  : "create it in the target first, as it is in the source "
			                    "(pg_dump --schema-only shows its definition)");
			break;
		}
		if (!bodies_off && o->kind == PS_OBJECT_FUNCTION) {
			rc = pgs_exec(s, NULL, err, "turning off function body checks",
			              "SET LOCAL check_function_bodies = false", 0, NULL);
			bodies_off = true;
			if (rc != PS_OK)
				break;
		}
		if (o->kind == PS_OBJECT_EXTENSION)
			snprintf(what, sizeof(what), "creating %s%s%s (is it installed on the target server? "
			         "it is part of the PostgreSQL contrib package or its own package)",
			         o->what, needed_by ? ", which " : "", needed_by ? needed_by : "");
		else
			snprintf(what, sizeof(what), "creating %s%s%s", o->what ? o->what : "an object",
			         needed_by ? ", which " : "", needed_by ? needed_by : "");
		/* simple query: an object's SQL may be several statements */
		rc = pgs_exec_may_race(s, o->sql, what, err);
		if (rc == PS_OK && applied)
			(*applied)++;
	}
	return rc;
}

int pgs_schema_apply(ps_sink *s, const ps_schema *schema, size_t *applied, ps_error *err)
{
	int rc = pgs_check_usable(s, err);

	*applied = 0;
	if (!schema->engine || strcmp(schema->engine, "postgresql") != 0) {
		if (schema->n)
			ps_log_warn("the %zu objects the source described in %s SQL are not created in a "
			            "PostgreSQL target", schema->n, schema->engine ? schema->engine : "?");
		return rc;
	}
	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	if (rc != PS_OK)
		return pgs_fail(s, err);
	return pgs_ensure_objects(s, schema->objects, schema->n, NULL, applied, err);
}
