/*
 * pgsrc_schema.c — what the selected tables need besides their own
 * definitions (penstock/schema.h), read from the PostgreSQL catalog: the
 * types, sequences, collations, extensions, schemas and functions a table's
 * columns, defaults, checks and indexes use (each def's `requires`), and
 * what the target gets after the load (schema_after_load): foreign keys,
 * comments on indexes and constraints, sequence values and, with
 * target.schema "full", the rest of the tables' schemas.
 *
 * NOTES ON THE DESIGN
 *
 * 1. One walk over pg_depend, in one recursive query, from each table (and
 *    each partition under it), its column defaults, its constraints other
 *    than foreign keys and its indexes, towards what they reference. The
 *    walk goes on through types, functions, domains' constraints,
 *    composite types' attributes, ranges, sequences and views, and stops
 *    at: tables (a table it reaches other than its start is not created by
 *    following a dependency: it is selected, or it blocks what needs it),
 *    members of an extension (the extension is what is created), base types
 *    and the object kinds penstock never creates (operator classes and
 *    families, operators, text search objects, languages, access methods:
 *    must_exist). A few edges are turned round so that the walk reaches
 *    what creating an object needs: a domain needs its constraints, a
 *    composite type its attributes (its pg_class row), a view its query
 *    (its _RETURN rule).
 * 2. Creation order is a topological order of the walked nodes over the
 *    pg_depend edges between them (Kahn's algorithm, ties broken by node
 *    kind, then OID, i.e. creation order on the source). A cycle, which
 *    pg_depend does not hold for objects one can create one after the
 *    other, is broken at the lowest OID and logged.
 * 3. Each object's SQL is written by the source server itself (format()
 *    with %I and %L, format_type, pg_get_functiondef, pg_get_viewdef,
 *    pg_get_constraintdef, pg_get_triggerdef, pg_get_expr), so quoting and
 *    type spelling are the server's. Names are schema-qualified; the
 *    expressions inside are deparsed under the default search_path, as the
 *    table definitions are (pg_snapshot.c).
 * 4. A node that depends on a table the job does not select (a view, a
 *    function with a SQL-standard body reading it, a table's row type) is
 *    blocked: as something a table needs it becomes must_exist (named in
 *    the refusal), after the load it is left out and logged.
 * 5. Sequences: created before the table that uses them, with the source's
 *    parameters and the value they have when the job describes the tables
 *    (the load's snapshot point); after the load they are set again to the
 *    source's value then; the migration cutover sets them once more. An
 *    identity sequence is made by its column (pg_snapshot.c), under its
 *    source name.
 * 6. target.schema "full" adds, as more starting points: every function,
 *    procedure, type, sequence, view and materialized view (with its
 *    indexes) of the schemas that hold selected tables, the triggers and
 *    row-level security policies of the selected tables, and, after all
 *    of them, grants to roles (the sink skips a grant to a role it lacks)
 *    and materialized view refreshes.
 * 7. The walk and the queries over pg_depend are costed far above what
 *    they take (a few milliseconds), so the server would JIT-compile them:
 *    seconds of compiling for nothing. Catalog connections turn JIT off
 *    (pg_catalog_session).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_internal.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/pgconn.h"

#define OID_TEXT_MAX ((size_t)64 << 20)

void pg_catalog_session(PGconn *conn)
{
	PQclear(PQexec(conn, "SET jit = off"));   /* a server without JIT: nothing to do */
}

/* --- the walk (note 1) ---------------------------------------------------- */

/* $1 the selected tables; $2, $3 more starting nodes (classid, objid),
 * walked with root 0. Rows: 'n', root, classid, objid — a node reached from
 * root — and 'e', 0, classid, objid, refclassid, refobjid — an edge between
 * two walked nodes. */
static const char *const WALK_SQL =
	"WITH RECURSIVE "
	"rels(o, r) AS ("
	"  SELECT s.r, s.r FROM unnest($1::oid[]) s(r) "
	"  UNION SELECT t.relid, s.r FROM unnest($1::oid[]) s(r) "
	"    CROSS JOIN LATERAL pg_partition_tree(s.r) t), "
	"start(root, classid, objid) AS ("
	"  SELECT r, 'pg_class'::regclass::oid, o FROM rels "
	"  UNION ALL SELECT r, 'pg_attrdef'::regclass::oid, d.oid FROM rels "
	"    JOIN pg_attrdef d ON d.adrelid = rels.o "
	"  UNION ALL SELECT r, 'pg_constraint'::regclass::oid, k.oid FROM rels "
	"    JOIN pg_constraint k ON k.conrelid = rels.o WHERE k.contype <> 'f' "
	"  UNION ALL SELECT r, 'pg_class'::regclass::oid, i.indexrelid FROM rels "
	"    JOIN pg_index i ON i.indrelid = rels.o "
	"  UNION ALL SELECT 0, x.c, x.o FROM unnest($2::oid[], $3::oid[]) x(c, o)), "
	"edge(classid, objid, refclassid, refobjid, deptype) AS NOT MATERIALIZED ("
	"  SELECT d.classid, d.objid, d.refclassid, d.refobjid, d.deptype FROM pg_depend d "
	"  WHERE d.deptype IN ('n', 'a', 'i', 'e') "
	"    AND NOT (d.classid = 'pg_constraint'::regclass AND d.refclassid = 'pg_type'::regclass "
	"      AND d.deptype = 'a') "
	"    AND NOT (d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_type'::regclass "
	"      AND d.deptype = 'i') "
	/* a view's _RETURN rule on the view itself (turned round below) */
	"    AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (SELECT 1 FROM pg_rewrite rw "
	"      WHERE rw.oid = d.objid AND rw.ev_class = d.refobjid)) "
	/* a sequence owned by a column: not what it needs */
	"    AND NOT (d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
	"      AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 AND EXISTS (SELECT 1 "
	"      FROM pg_class sq WHERE sq.oid = d.objid AND sq.relkind = 'S')) "
	"  UNION ALL SELECT 'pg_type'::regclass, c.contypid, 'pg_constraint'::regclass, c.oid, 'n' "
	"    FROM pg_constraint c WHERE c.contypid <> 0 "
	"  UNION ALL SELECT 'pg_type'::regclass, t.oid, 'pg_class'::regclass, t.typrelid, 'n' "
	"    FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid "
	"    WHERE t.typtype = 'c' AND c.relkind = 'c' "
	"  UNION ALL SELECT 'pg_class'::regclass, r.ev_class, 'pg_rewrite'::regclass, r.oid, 'n' "
	"    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class "
	"    WHERE r.rulename = '_RETURN' AND c.relkind IN ('v', 'm')), "
	"walk(root, classid, objid, first) AS ("
	"  SELECT root, classid, objid, true FROM start "
	"  UNION "
	"  SELECT w.root, e.refclassid, e.refobjid, false FROM walk w "
	"  JOIN edge e ON e.classid = w.classid AND e.objid = w.objid "
	/* an extension member leads only to its extension */
	"  WHERE e.deptype = 'e' OR (NOT EXISTS (SELECT 1 FROM pg_depend m "
	"      WHERE m.classid = w.classid AND m.objid = w.objid AND m.deptype = 'e') "
	"    AND w.classid NOT IN ('pg_opclass'::regclass, 'pg_opfamily'::regclass, "
	"      'pg_operator'::regclass, 'pg_ts_config'::regclass, 'pg_ts_dict'::regclass, "
	"      'pg_ts_parser'::regclass, 'pg_ts_template'::regclass, 'pg_am'::regclass, "
	"      'pg_language'::regclass, 'pg_namespace'::regclass) "
	"    AND NOT (w.classid = 'pg_class'::regclass AND NOT w.first AND EXISTS ("
	"      SELECT 1 FROM pg_class c WHERE c.oid = w.objid AND c.relkind IN ('r', 'p', 'f'))) "
	"    AND NOT (w.classid = 'pg_type'::regclass AND EXISTS (SELECT 1 FROM pg_type t "
	"      WHERE t.oid = w.objid AND t.typtype IN ('b', 'p') AND t.typcategory <> 'A')) "
	"    AND NOT (e.refclassid = 'pg_class'::regclass AND e.refobjid = w.objid))), "
	"nodes AS (SELECT DISTINCT root, classid, objid FROM walk) "
	"SELECT 'n', root, classid, objid, 0::oid, 0::oid FROM nodes "
	"UNION ALL "
	"SELECT DISTINCT 'e', 0::oid, e.classid, e.objid, e.refclassid, e.refobjid FROM edge e "
	"WHERE (e.classid, e.objid) IN (SELECT classid, objid FROM nodes) "
	"  AND (e.refclassid, e.refobjid) IN (SELECT classid, objid FROM nodes) "
	"  AND (e.classid, e.objid) <> (e.refclassid, e.refobjid)";

/* Catalogs the nodes live in, by the OIDs of their pg_class rows (stable:
 * fixed OIDs of the system catalogs). */
enum {
	CAT_CLASS = 1259, CAT_TYPE = 1247, CAT_PROC = 1255, CAT_NAMESPACE = 2615,
	CAT_COLLATION = 3456, CAT_EXTENSION = 3079, CAT_CONSTRAINT = 2606, CAT_ATTRDEF = 2604,
	CAT_REWRITE = 2618, CAT_TRIGGER = 2620, CAT_POLICY = 3256, CAT_OPERATOR = 2617,
	CAT_OPCLASS = 2616, CAT_OPFAMILY = 2753, CAT_TS_CONFIG = 3602, CAT_TS_DICT = 3600,
	CAT_TS_PARSER = 3601, CAT_TS_TEMPLATE = 3764, CAT_LANGUAGE = 2612, CAT_AM = 2601
};

/* One node of the graph. */
typedef struct sg_node {
	uint32_t classid, objid;
	bool has_obj;            /* an object to create or require */
	bool blocked;            /* note 4 */
	bool skip;               /* nothing to create and nothing to order by */
	bool start_table;        /* a selected table or partition */
	int order;               /* position in creation order, -1 before sorting */
	int rank;                /* tie-break: kind */
	char *member_of;         /* extension it belongs to, or NULL */
	ps_schema_object obj;
	int nin;                 /* Kahn: unsorted dependencies */
} sg_node;

typedef struct sg_edge {
	int from, to;            /* node indexes: from depends on to */
} sg_edge;

typedef struct sg_reach {
	uint32_t root;
	int node;
} sg_reach;

typedef struct sg_graph {
	sg_node *nodes;
	size_t n;
	sg_edge *edges;
	size_t nedges;
	sg_reach *reach;         /* (root, node) pairs: which nodes each table needs */
	size_t nreach;
	int *sorted;             /* node indexes in creation order */
	size_t *dep_at, *user_at; /* adjacency (build_adjacency) */
	int *deps, *users;
} sg_graph;

static void graph_free(sg_graph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->nodes[i].member_of);
		ps_schema_object_clear(&g->nodes[i].obj);
	}
	free(g->nodes);
	free(g->edges);
	free(g->reach);
	free(g->sorted);
	free(g->dep_at);
	free(g->user_at);
	free(g->deps);
	free(g->users);
	memset(g, 0, sizeof(*g));
}

static int cmp_node(const void *a, const void *b)
{
	const sg_node *x = a, *y = b;

	if (x->classid != y->classid)
		return x->classid < y->classid ? -1 : 1;
	return (x->objid > y->objid) - (x->objid < y->objid);
}

static int find_node(const sg_graph *g, uint32_t classid, uint32_t objid)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const sg_node *m = &g->nodes[mid];

		if (m->classid == classid && m->objid == objid)
			return (int)mid;
		if (m->classid < classid || (m->classid == classid && m->objid < objid))
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static uint32_t col_oid(const PGresult *r, int row, int col)
{
	return (uint32_t)strtoul(PQgetvalue(r, row, col), NULL, 10);
}

static int oid_array_text(ps_buf *b, const uint32_t *oids, size_t n)
{
	int rc = ps_buf_putc(b, '{');

	for (size_t i = 0; rc == PS_OK && i < n; i++)
		rc = ps_buf_printf(b, "%s%u", i ? "," : "", oids[i]);
	if (rc == PS_OK)
		rc = ps_buf_putc(b, '}');
	return rc;
}

/* Runs the walk from roots (and extra starting nodes) and builds the graph. */
static int walk(PGconn *conn, const uint32_t *roots, size_t nroots, const uint32_t *xclass,
                const uint32_t *xobj, size_t nextra, sg_graph *g, ps_error *err)
{
	ps_buf a1, a2, a3;
	const char *params[3];
	PGresult *r = NULL;
	size_t nn = 0, ne = 0, k;
	int rc;

	memset(g, 0, sizeof(*g));
	ps_buf_init(&a1, OID_TEXT_MAX);
	ps_buf_init(&a2, OID_TEXT_MAX);
	ps_buf_init(&a3, OID_TEXT_MAX);
	rc = oid_array_text(&a1, roots, nroots);
	if (rc == PS_OK)
		rc = oid_array_text(&a2, xclass, nextra);
	if (rc == PS_OK)
		rc = oid_array_text(&a3, xobj, nextra);
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "too many tables");
		goto cleanup;
	}
	params[0] = a1.data;
	params[1] = a2.data;
	params[2] = a3.data;
	rc = pg_exec(conn, &r, err, "reading what the tables depend on", WALK_SQL, 3, params);
	if (rc != PS_OK)
		goto cleanup;
	for (int i = 0; i < PQntuples(r); i++) {
		if (PQgetvalue(r, i, 0)[0] == 'n')
			nn++;
		else
			ne++;
	}
	g->nodes = calloc(nn + 1, sizeof(sg_node));
	g->edges = calloc(ne + 1, sizeof(sg_edge));
	g->reach = calloc(nn + 1, sizeof(sg_reach));
	if (!g->nodes || !g->edges || !g->reach) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* distinct nodes, then the (root, node) pairs and the edges by index */
	for (int i = 0; i < PQntuples(r); i++) {
		if (PQgetvalue(r, i, 0)[0] != 'n')
			continue;
		g->nodes[g->n].classid = col_oid(r, i, 2);
		g->nodes[g->n].objid = col_oid(r, i, 3);
		g->n++;
	}
	qsort(g->nodes, g->n, sizeof(sg_node), cmp_node);
	k = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (k && g->nodes[k - 1].classid == g->nodes[i].classid &&
		    g->nodes[k - 1].objid == g->nodes[i].objid)
			continue;
		g->nodes[k++] = g->nodes[i];
	}
	g->n = k;
	for (size_t i = 0; i < g->n; i++)
		g->nodes[i].order = -1;
	for (int i = 0; i < PQntuples(r); i++) {
		int from = find_node(g, col_oid(r, i, 2), col_oid(r, i, 3));

		if (PQgetvalue(r, i, 0)[0] == 'n') {
			g->reach[g->nreach].root = col_oid(r, i, 1);
			g->reach[g->nreach].node = from;
			g->nreach++;
		} else {
			int to = find_node(g, col_oid(r, i, 4), col_oid(r, i, 5));

			if (from >= 0 && to >= 0 && from != to) {
				g->edges[g->nedges].from = from;
				g->edges[g->nedges].to = to;
				g->nedges++;
			}
		}
	}
cleanup:
	PQclear(r);
	ps_buf_free(&a1);
	ps_buf_free(&a2);
	ps_buf_free(&a3);
	return rc;
}

/* --- what each node is (note 3) ------------------------------------------- */

/* Per catalog: a query over $1::oid[] returning, for each object that is
 * to be created or required, the columns
 *   0 oid, 1 kind (ps_object_kind), 2 must_exist, 3 what, 4 schema, 5 name,
 *   6 table, 7 ident, 8 catalog, 9 sql, 10 roles (text[]), 11 rank, 12 note
 * Objects that are part of something else (an array type, a table's own
 * indexes) are not returned; system objects are returned only when a
 * target might lack them (collations). */
#define OBJ_COLUMNS 13

static const char *const TYPE_SQL =
	"SELECT t.oid, %d, t.typtype IN ('b', 'p') OR coalesce(rg.rngcanonical, 0) <> 0, "
	"  format('%%s %%s.%%s', CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, "
	"    n.nspname, t.typname), "
	"  n.nspname, t.typname, NULL, format('%%I.%%I', n.nspname, t.typname), NULL, "
	"  CASE t.typtype "
	"  WHEN 'e' THEN format('CREATE TYPE %%I.%%I AS ENUM (%%s)', n.nspname, t.typname, "
	"    (SELECT coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '') "
	"     FROM pg_enum e WHERE e.enumtypid = t.oid)) "
	"  WHEN 'd' THEN format('CREATE DOMAIN %%I.%%I AS %%s', n.nspname, t.typname, "
	"      format_type(t.typbasetype, t.typtypmod)) "
	"    || CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN ' COLLATE ' "
	"      || (SELECT format('%%I.%%I', cn.nspname, co.collname) FROM pg_collation co "
	"          JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) "
	"      ELSE '' END "
	"    || CASE WHEN t.typdefault IS NOT NULL THEN ' DEFAULT ' || t.typdefault ELSE '' END "
	"    || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END "
	"    || coalesce((SELECT string_agg(format(' CONSTRAINT %%I %%s', k.conname, "
	"         pg_get_constraintdef(k.oid)), '' ORDER BY k.conname) FROM pg_constraint k "
	"       WHERE k.contypid = t.oid AND k.contype = 'c' AND k.convalidated), '') "
	"    || coalesce((SELECT string_agg(format('; ALTER DOMAIN %%I.%%I ADD CONSTRAINT %%I %%s', "
	"         n.nspname, t.typname, k.conname, pg_get_constraintdef(k.oid)), '' ORDER BY k.conname) "
	"       FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c' "
	"       AND NOT k.convalidated), '') "
	"  WHEN 'c' THEN format('CREATE TYPE %%I.%%I AS (%%s)', n.nspname, t.typname, "
	"    (SELECT coalesce(string_agg(format('%%I %%s%%s', a.attname, "
	"       format_type(a.atttypid, a.atttypmod), "
	"       CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation THEN ' COLLATE ' "
	"         || (SELECT format('%%I.%%I', cn.nspname, co.collname) FROM pg_collation co "
	"             JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) "
	"         ELSE '' END), ', ' ORDER BY a.attnum), '') "
	"     FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid "
	"     WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)) "
	"  WHEN 'r' THEN format('CREATE TYPE %%I.%%I AS RANGE (SUBTYPE = %%s, SUBTYPE_OPCLASS = "
	"%%I.%%I%%s%%s, MULTIRANGE_TYPE_NAME = %%I.%%I)', n.nspname, t.typname, "
	"      format_type(rg.rngsubtype, NULL), ocn.nspname, oc.opcname, "
	"      CASE WHEN rg.rngcollation <> 0 AND rg.rngcollation <> st.typcollation THEN "
	"        ', COLLATION = ' || (SELECT format('%%I.%%I', cn.nspname, co.collname) "
	"          FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace "
	"          WHERE co.oid = rg.rngcollation) ELSE '' END, "
	"      CASE WHEN rg.rngsubdiff <> 0 THEN ', SUBTYPE_DIFF = ' || "
	"        (SELECT format('%%I.%%I', pn.nspname, p.proname) FROM pg_proc p "
	"         JOIN pg_namespace pn ON pn.oid = p.pronamespace WHERE p.oid = rg.rngsubdiff) "
	"        ELSE '' END, mn.nspname, mt.typname) "
	"  END || CASE WHEN obj_description(t.oid, 'pg_type') IS NOT NULL THEN format('; COMMENT ON %%s %%I.%%I IS %%L', "
	"    CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, "
	"    obj_description(t.oid, 'pg_type')) ELSE '' END, "
	"  NULL::text[], 40, "
	"  CASE WHEN t.typtype IN ('b', 'p') THEN 'a base type penstock cannot create' "
	"    WHEN coalesce(rg.rngcanonical, 0) <> 0 THEN 'a range type with a canonical function' "
	"  END "
	"FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
	"LEFT JOIN pg_type bt ON bt.oid = t.typbasetype "
	"LEFT JOIN pg_range rg ON rg.rngtypid = t.oid "
	"LEFT JOIN pg_opclass oc ON oc.oid = rg.rngsubopc "
	"LEFT JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace "
	"LEFT JOIN pg_type st ON st.oid = rg.rngsubtype "
	"LEFT JOIN pg_type mt ON mt.oid = rg.rngmultitypid "
	"LEFT JOIN pg_namespace mn ON mn.oid = mt.typnamespace "
	"WHERE t.oid = ANY($1::oid[]) AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
	/* an array comes with its element type, a multirange with its range,
	 * a table's row type with the table */
	"  AND NOT (t.typcategory = 'A' AND t.typelem <> 0) AND t.typtype <> 'm' "
	"  AND NOT (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid "
	"    AND c.relkind <> 'c'))";

static const char *const PROC_SQL =
	"SELECT p.oid, %d, p.prokind NOT IN ('f', 'p', 'w'), "
	"  format('%%s %%s.%%s(%%s)', CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN "
	"    'aggregate' ELSE 'function' END, n.nspname, p.proname, oidvectortypes(p.proargtypes)), "
	"  n.nspname, p.proname, NULL, "
	"  format('%%I.%%I(%%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)), NULL, "
	"  CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) "
	"    || CASE WHEN obj_description(p.oid, 'pg_proc') IS NOT NULL THEN format('; COMMENT ON %%s %%I.%%I(%%s) IS %%L', "
	"      CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, n.nspname, p.proname, "
	"      oidvectortypes(p.proargtypes), obj_description(p.oid, 'pg_proc')) ELSE '' END END, "
	"  NULL::text[], 50, "
	"  CASE WHEN p.prokind NOT IN ('f', 'p', 'w') THEN 'an aggregate penstock cannot create' END "
	"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
	"WHERE p.oid = ANY($1::oid[]) AND n.nspname NOT IN ('pg_catalog', 'information_schema')";

/* Sequences, views, materialized views and their indexes; a table's own
 * indexes come with table_finish. */
static const char *const CLASS_SQL =
	"SELECT c.oid, %d, false, "
	"  format('%%s %%s.%%s', CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' "
	"    WHEN 'm' THEN 'materialized view' ELSE 'index' END, n.nspname, c.relname), "
	"  n.nspname, c.relname, NULL, NULL, NULL, "
	"  CASE c.relkind "
	"  WHEN 'S' THEN format('CREATE SEQUENCE IF NOT EXISTS %%I.%%I AS %%s INCREMENT BY %%s "
	"MINVALUE %%s MAXVALUE %%s START WITH %%s CACHE %%s%%s', n.nspname, c.relname, "
	"      format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, "
	"      s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END) "
	"    || CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') "
	"      AND pg_sequence_last_value(c.oid) IS NOT NULL THEN "
	"      format('; SELECT setval(%%L, %%s, true)', format('%%I.%%I', n.nspname, c.relname), "
	"      pg_sequence_last_value(c.oid)) ELSE '' END "
	"  WHEN 'v' THEN format('CREATE VIEW %%I.%%I%%s AS %%s', n.nspname, c.relname, "
	"      CASE WHEN c.reloptions IS NOT NULL THEN ' WITH (' || array_to_string(c.reloptions, ', ') "
	"      || ')' ELSE '' END, rtrim(pg_get_viewdef(c.oid), ';')) "
	"  WHEN 'm' THEN format('CREATE MATERIALIZED VIEW %%I.%%I%%s AS %%s WITH NO DATA', n.nspname, "
	"      c.relname, CASE WHEN c.reloptions IS NOT NULL THEN ' WITH (' || "
	"      array_to_string(c.reloptions, ', ') || ')' ELSE '' END, "
	"      rtrim(pg_get_viewdef(c.oid), ';')) "
	"  ELSE pg_get_indexdef(c.oid) END "
	"  || CASE WHEN obj_description(c.oid, 'pg_class') IS NOT NULL THEN format('; COMMENT ON %%s %%I.%%I IS %%L', CASE c.relkind WHEN 'S' THEN "
	"    'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'INDEX' END, "
	"    n.nspname, c.relname, obj_description(c.oid, 'pg_class')) ELSE '' END "
	"  || coalesce((SELECT string_agg(format('; COMMENT ON COLUMN %%I.%%I.%%I IS %%L', n.nspname, "
	"    c.relname, a.attname, d.description), '' ORDER BY a.attnum) FROM pg_attribute a "
	"    JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass "
	"      AND d.objsubid = a.attnum "
	"    WHERE a.attrelid = c.oid AND c.relkind IN ('v', 'm') AND a.attnum > 0), ''), "
	"  NULL::text[], CASE c.relkind WHEN 'S' THEN 30 WHEN 'i' THEN 70 ELSE 60 END, NULL "
	"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	"LEFT JOIN pg_sequence s ON s.seqrelid = c.oid "
	"WHERE c.oid = ANY($1::oid[]) AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
	"  AND (c.relkind IN ('S', 'v', 'm') OR (c.relkind = 'i' AND EXISTS (SELECT 1 FROM pg_index i "
	"    JOIN pg_class m ON m.oid = i.indrelid WHERE i.indexrelid = c.oid AND m.relkind = 'm'))) "
	/* an identity sequence comes with its column */
	"  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
	"    AND d.objid = c.oid AND d.deptype = 'i' AND d.refclassid = 'pg_class'::regclass)";

/* Collations; those in pg_catalog are checked, not created. */
static const char *const COLLATION_SQL =
	"SELECT co.oid, %d, n.nspname = 'pg_catalog', format('collation %%s.%%s', n.nspname, co.collname), "
	"  n.nspname, co.collname, NULL, NULL, NULL, "
	"  CASE WHEN n.nspname <> 'pg_catalog' THEN "
	"    format('CREATE COLLATION IF NOT EXISTS %%I.%%I (%%s%%s)', n.nspname, co.collname, "
	"    CASE co.collprovider WHEN 'i' THEN format('provider = icu, locale = %%L', "
	"      coalesce(to_jsonb(co) ->> 'colllocale', to_jsonb(co) ->> 'colliculocale')) "
	"      ELSE format('provider = libc, lc_collate = %%L, lc_ctype = %%L', co.collcollate, "
	"      co.collctype) END, "
	"    CASE WHEN NOT co.collisdeterministic THEN ', deterministic = false' ELSE '' END) "
	"    || CASE WHEN obj_description(co.oid, 'pg_collation') IS NOT NULL THEN format('; COMMENT ON COLLATION %%I.%%I IS %%L', n.nspname, co.collname, "
	"      obj_description(co.oid, 'pg_collation')) ELSE '' END END, "
	"  NULL::text[], 20, "
	"  CASE WHEN n.nspname = 'pg_catalog' THEN 'a collation of the server''s operating system "
	"or ICU library' END "
	"FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace "
	"WHERE co.oid = ANY($1::oid[]) AND n.nspname <> 'information_schema'";

static const char *const NAMESPACE_SQL =
	"SELECT n.oid, %d, false, format('schema %%s', n.nspname), NULL, n.nspname, NULL, NULL, NULL, "
	"  format('CREATE SCHEMA IF NOT EXISTS %%I', n.nspname) || CASE WHEN obj_description(n.oid, 'pg_namespace') IS NOT NULL THEN format('; COMMENT ON "
	"SCHEMA %%I IS %%L', n.nspname, obj_description(n.oid, 'pg_namespace')) ELSE '' END, "
	"  NULL::text[], 0, NULL "
	"FROM pg_namespace n WHERE n.oid = ANY($1::oid[]) "
	"  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') "
	"  AND n.nspname NOT LIKE 'pg\\_%%'";

/* %d twice: the kind, then whether extensions must exist already */
static const char *const EXTENSION_SQL =
	"SELECT e.oid, %d, %s, format('extension %%s', e.extname), NULL, e.extname, NULL, NULL, NULL, "
	"  format('CREATE EXTENSION IF NOT EXISTS %%I WITH SCHEMA %%I', e.extname, n.nspname), "
	"  NULL::text[], 10, NULL "
	"FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
	"WHERE e.oid = ANY($1::oid[])";

static const char *const OPERATOR_SQL =
	"SELECT o.oid, %d, true, format('operator %%s', o.oid::regoperator), n.nspname, o.oprname, "
	"  NULL, o.oid::regoperator::text, NULL, NULL, NULL::text[], 45, "
	"  'an operator penstock does not create' "
	"FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace "
	"WHERE o.oid = ANY($1::oid[]) AND n.nspname NOT IN ('pg_catalog', 'information_schema')";

/* The other kinds penstock never creates: $2 names the catalog, and the
 * statement reads its name and namespace columns. */
typedef struct other_catalog {
	uint32_t classid;
	const char *catalog, *label, *name_col, *nsp_col;
} other_catalog;

static const other_catalog OTHERS[] = {
	{CAT_OPCLASS, "pg_opclass", "operator class", "opcname", "opcnamespace"},
	{CAT_OPFAMILY, "pg_opfamily", "operator family", "opfname", "opfnamespace"},
	{CAT_TS_CONFIG, "pg_ts_config", "text search configuration", "cfgname", "cfgnamespace"},
	{CAT_TS_DICT, "pg_ts_dict", "text search dictionary", "dictname", "dictnamespace"},
	{CAT_TS_PARSER, "pg_ts_parser", "text search parser", "prsname", "prsnamespace"},
	{CAT_TS_TEMPLATE, "pg_ts_template", "text search template", "tmplname", "tmplnamespace"},
	{CAT_LANGUAGE, "pg_language", "language", "lanname", NULL},
	{CAT_AM, "pg_am", "access method", "amname", NULL},
};

static const char *const TRIGGER_SQL =
	"SELECT tg.oid, %d, false, format('trigger %%s on %%s.%%s', tg.tgname, n.nspname, c.relname), "
	"  n.nspname, tg.tgname, format('%%I.%%I', n.nspname, c.relname), NULL, NULL, "
	"  pg_get_triggerdef(tg.oid) "
	"    || CASE tg.tgenabled WHEN 'D' THEN format('; ALTER TABLE %%I.%%I DISABLE TRIGGER %%I', "
	"      n.nspname, c.relname, tg.tgname) ELSE '' END "
	"    || CASE WHEN obj_description(tg.oid, 'pg_trigger') IS NOT NULL THEN format('; COMMENT ON TRIGGER %%I ON %%I.%%I IS %%L', tg.tgname, n.nspname, "
	"      c.relname, obj_description(tg.oid, 'pg_trigger')) ELSE '' END, "
	"  NULL::text[], 80, "
	"  CASE WHEN tg.tgenabled IN ('A', 'R') THEN format('it fires %%s on the source; on the "
	"target it is created as an ordinary trigger, which the replicated rows never fire', "
	"    CASE tg.tgenabled WHEN 'A' THEN 'ALWAYS' ELSE 'only in replica sessions' END) END "
	"FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid "
	"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE tg.oid = ANY($1::oid[])";

static const char *const POLICY_SQL =
	"SELECT po.oid, %d, false, format('policy %%s on %%s.%%s', po.polname, n.nspname, c.relname), "
	"  n.nspname, po.polname, format('%%I.%%I', n.nspname, c.relname), NULL, NULL, "
	"  format('CREATE POLICY %%I ON %%I.%%I AS %%s FOR %%s TO %%s%%s%%s', po.polname, n.nspname, "
	"    c.relname, CASE WHEN po.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, "
	"    CASE po.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' "
	"      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, "
	"    (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, "
	"      ', ') FROM unnest(po.polroles) r), "
	"    CASE WHEN po.polqual IS NOT NULL THEN ' USING (' || pg_get_expr(po.polqual, po.polrelid) "
	"      || ')' ELSE '' END, "
	"    CASE WHEN po.polwithcheck IS NOT NULL THEN ' WITH CHECK (' || "
	"      pg_get_expr(po.polwithcheck, po.polrelid) || ')' ELSE '' END) "
	"    || CASE WHEN obj_description(po.oid, 'pg_policy') IS NOT NULL THEN format('; COMMENT ON POLICY %%I ON %%I.%%I IS %%L', po.polname, n.nspname, "
	"      c.relname, obj_description(po.oid, 'pg_policy')) ELSE '' END, "
	"  ARRAY(SELECT pg_get_userbyid(r) FROM unnest(po.polroles) r WHERE r <> 0), 80, NULL "
	"FROM pg_policy po JOIN pg_class c ON c.oid = po.polrelid "
	"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE po.oid = ANY($1::oid[])";

static char *dup_col(const PGresult *r, int row, int col, int *rc)
{
	char *s;

	if (PQgetisnull(r, row, col))
		return NULL;
	s = strdup(PQgetvalue(r, row, col));
	if (!s)
		*rc = PS_ENOMEM;
	return s;
}

/* A text[] value ("{a,b}") into a string array. Role names are plain
 * identifiers in practice; a quoted element is unquoted. */
static int parse_text_array(const char *text, char ***out, size_t *n)
{
	const char *p = text;
	ps_buf cur;
	char **v;
	size_t cap = 4;

	*out = NULL;
	*n = 0;
	if (!text || strcmp(text, "{}") == 0 || *p != '{')
		return PS_OK;
	v = calloc(cap, sizeof(char *));
	if (!v)
		return PS_ENOMEM;
	ps_buf_init(&cur, 4096);
	p++;
	while (*p && *p != '}') {
		ps_buf_reset(&cur);
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				ps_buf_putc(&cur, *p);
			}
			if (*p == '"')
				p++;
		} else {
			for (; *p && *p != ',' && *p != '}'; p++)
				ps_buf_putc(&cur, *p);
		}
		if (*n + 1 >= cap) {
			char **nv = realloc(v, cap * 2 * sizeof(char *));
			if (!nv)
				goto oom;
			v = nv;
			cap *= 2;
		}
		v[*n] = strdup(cur.data ? cur.data : "");
		if (!v[*n])
			goto oom;
		(*n)++;
		if (*p == ',')
			p++;
	}
	ps_buf_free(&cur);
	*out = v;
	return PS_OK;
oom:
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	free(v);
	*n = 0;
	ps_buf_free(&cur);
	return PS_ENOMEM;
}

/* Fills an object from row `row` of an OBJ_COLUMNS result; *note receives
 * column 12 (borrowed from r). */
static int object_from_row(ps_schema_object *o, const PGresult *r, int row)
{
	int rc = PS_OK;

	o->kind = (int)strtol(PQgetvalue(r, row, 1), NULL, 10);
	o->must_exist = PQgetvalue(r, row, 2)[0] == 't';
	o->what = dup_col(r, row, 3, &rc);
	o->schema = dup_col(r, row, 4, &rc);
	o->name = dup_col(r, row, 5, &rc);
	o->table = dup_col(r, row, 6, &rc);
	o->ident = dup_col(r, row, 7, &rc);
	o->catalog = dup_col(r, row, 8, &rc);
	o->sql = o->must_exist ? NULL : dup_col(r, row, 9, &rc);
	if (rc == PS_OK && !PQgetisnull(r, row, 10))
		rc = parse_text_array(PQgetvalue(r, row, 10), &o->roles, &o->nroles);
	return rc;
}

/* Runs one describing query over the nodes of one catalog and fills their
 * objects. */
static int describe_catalog(PGconn *conn, sg_graph *g, uint32_t classid, const char *sql,
                            const char *what, ps_error *err)
{
	ps_buf oids;
	const char *params[1];
	PGresult *r = NULL;
	size_t count = 0;
	int rc = PS_OK;

	ps_buf_init(&oids, OID_TEXT_MAX);
	rc = ps_buf_putc(&oids, '{');
	for (size_t i = 0; rc == PS_OK && i < g->n; i++) {
		if (g->nodes[i].classid != classid || g->nodes[i].member_of)
			continue;
		rc = ps_buf_printf(&oids, "%s%u", count++ ? "," : "", g->nodes[i].objid);
	}
	if (rc == PS_OK)
		rc = ps_buf_putc(&oids, '}');
	if (rc != PS_OK) {
		ps_buf_free(&oids);
		return ps_error_set(err, rc, "too many objects");
	}
	if (count == 0) {
		ps_buf_free(&oids);
		return PS_OK;
	}
	params[0] = oids.data;
	rc = pg_exec(conn, &r, err, what, sql, 1, params);
	for (int row = 0; rc == PS_OK && row < PQntuples(r); row++) {
		int i = find_node(g, classid, col_oid(r, row, 0));
		sg_node *nd;

		if (i < 0)
			continue;
		nd = &g->nodes[i];
		rc = object_from_row(&nd->obj, r, row);
		if (rc != PS_OK) {
			ps_error_set(err, rc, "out of memory");
			break;
		}
		nd->has_obj = true;
		nd->rank = (int)strtol(PQgetvalue(r, row, 11), NULL, 10);
		if (!PQgetisnull(r, row, 12) && !nd->obj.must_exist)
			ps_log_warn("%s: %s", nd->obj.what, PQgetvalue(r, row, 12));
		else if (!PQgetisnull(r, row, 12) && nd->obj.must_exist) {
			/* say why it must exist in its description */
			size_t len = strlen(nd->obj.what) + strlen(PQgetvalue(r, row, 12)) + 4;
			char *w = malloc(len);

			if (w) {
				snprintf(w, len, "%s (%s)", nd->obj.what, PQgetvalue(r, row, 12));
				free(nd->obj.what);
				nd->obj.what = w;
			}
		}
	}
	PQclear(r);
	ps_buf_free(&oids);
	return rc;
}

/* Objects of the kinds penstock never creates (must_exist). */
static int describe_others(PGconn *conn, sg_graph *g, ps_error *err)
{
	ps_buf sql;
	int rc = PS_OK;

	ps_buf_init(&sql, 8192);
	for (size_t k = 0; rc == PS_OK && k < sizeof(OTHERS) / sizeof(OTHERS[0]); k++) {
		const other_catalog *oc = &OTHERS[k];

		ps_buf_reset(&sql);
		if (oc->nsp_col)
			rc = ps_buf_printf(&sql,
			    "SELECT x.oid, %d, true, format('%s %%s.%%s', n.nspname, x.%s), n.nspname, "
			    "  x.%s, NULL, NULL, '%s', NULL, NULL::text[], 5, 'penstock does not create it' "
			    "FROM %s x JOIN pg_namespace n ON n.oid = x.%s WHERE x.oid = ANY($1::oid[]) "
			    "  AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
			    PS_OBJECT_OTHER, oc->label, oc->name_col, oc->name_col, oc->catalog,
			    oc->catalog, oc->nsp_col);
		else
			rc = ps_buf_printf(&sql,
			    "SELECT x.oid, %d, true, format('%s %%s', x.%s), NULL, x.%s, NULL, NULL, '%s', "
			    "  NULL, NULL::text[], 5, 'penstock does not create it' "
			    "FROM %s x WHERE x.oid = ANY($1::oid[])",
			    PS_OBJECT_OTHER, oc->label, oc->name_col, oc->name_col, oc->catalog,
			    oc->catalog);
		if (rc == PS_OK)
			rc = describe_catalog(conn, g, oc->classid, sql.data, "describing objects", err);
	}
	ps_buf_free(&sql);
	return rc;
}

/* Which nodes belong to an extension (note 1). */
static int mark_members(PGconn *conn, sg_graph *g, ps_error *err)
{
	ps_buf cls, obj;
	const char *params[2];
	PGresult *r = NULL;
	int rc;

	ps_buf_init(&cls, OID_TEXT_MAX);
	ps_buf_init(&obj, OID_TEXT_MAX);
	rc = ps_buf_putc(&cls, '{');
	if (rc == PS_OK)
		rc = ps_buf_putc(&obj, '{');
	for (size_t i = 0; rc == PS_OK && i < g->n; i++) {
		rc = ps_buf_printf(&cls, "%s%u", i ? "," : "", g->nodes[i].classid);
		if (rc == PS_OK)
			rc = ps_buf_printf(&obj, "%s%u", i ? "," : "", g->nodes[i].objid);
	}
	if (rc == PS_OK)
		rc = ps_buf_putc(&cls, '}');
	if (rc == PS_OK)
		rc = ps_buf_putc(&obj, '}');
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "too many objects");
		goto cleanup;
	}
	params[0] = cls.data;
	params[1] = obj.data;
	rc = pg_exec(conn, &r, err, "finding extension members",
	             "SELECT d.classid, d.objid, e.extname FROM pg_depend d "
	             "JOIN pg_extension e ON e.oid = d.refobjid "
	             "JOIN unnest($1::oid[], $2::oid[]) x(c, o) ON d.classid = x.c AND d.objid = x.o "
	             "WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass", 2, params);
	for (int row = 0; rc == PS_OK && row < PQntuples(r); row++) {
		int i = find_node(g, col_oid(r, row, 0), col_oid(r, row, 1));

		if (i < 0 || g->nodes[i].member_of)
			continue;
		g->nodes[i].member_of = strdup(PQgetvalue(r, row, 2));
		if (!g->nodes[i].member_of)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
cleanup:
	PQclear(r);
	ps_buf_free(&cls);
	ps_buf_free(&obj);
	return rc;
}

/* Marks the tables and partitions the job selects (and their indexes) as
 * start_table, and blocks the other tables among the nodes (note 4). */
static int mark_tables(PGconn *conn, sg_graph *g, const uint32_t *roots, size_t nroots,
                       ps_error *err)
{
	ps_buf a, nodes;
	const char *params[2];
	PGresult *r = NULL;
	size_t count = 0;
	int rc;

	ps_buf_init(&a, OID_TEXT_MAX);
	ps_buf_init(&nodes, OID_TEXT_MAX);
	rc = oid_array_text(&a, roots, nroots);
	if (rc == PS_OK)
		rc = ps_buf_putc(&nodes, '{');
	for (size_t i = 0; rc == PS_OK && i < g->n; i++)
		if (g->nodes[i].classid == CAT_CLASS)
			rc = ps_buf_printf(&nodes, "%s%u", count++ ? "," : "", g->nodes[i].objid);
	if (rc == PS_OK)
		rc = ps_buf_putc(&nodes, '}');
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "too many tables");
		goto cleanup;
	}
	params[0] = a.data;
	params[1] = nodes.data;
	rc = pg_exec(conn, &r, err, "classifying relations",
	             "WITH sel AS (SELECT s.r AS o FROM unnest($1::oid[]) s(r) "
	             "  UNION SELECT t.relid FROM unnest($1::oid[]) s(r) "
	             "  CROSS JOIN LATERAL pg_partition_tree(s.r) t) "
	             "SELECT c.oid, c.relkind IN ('r', 'p', 'f'), s1.o IS NOT NULL OR s2.o IS NOT NULL "
	             "FROM unnest($2::oid[]) x(o) JOIN pg_class c ON c.oid = x.o "
	             "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
	             "LEFT JOIN sel s1 ON s1.o = c.oid LEFT JOIN sel s2 ON s2.o = i.indrelid", 2, params);
	for (int row = 0; rc == PS_OK && row < PQntuples(r); row++) {
		int i = find_node(g, CAT_CLASS, col_oid(r, row, 0));

		if (i < 0)
			continue;
		g->nodes[i].start_table = PQgetvalue(r, row, 2)[0] == 't';
		g->nodes[i].blocked = !g->nodes[i].start_table && PQgetvalue(r, row, 1)[0] == 't';
	}
cleanup:
	PQclear(r);
	ps_buf_free(&a);
	ps_buf_free(&nodes);
	return rc;
}

/* --- creation order (note 2) ----------------------------------------------- */

/* The edges as adjacency lists (CSR): for node i, its dependencies are
 * deps[dep_at[i] .. dep_at[i + 1]) and its dependents users[user_at[i] ..
 * user_at[i + 1]). */
static int build_adjacency(sg_graph *g, ps_error *err)
{
	size_t n = g->n, *fill = calloc(n + 1, sizeof(size_t));

	g->dep_at = calloc(n + 1, sizeof(size_t));
	g->user_at = calloc(n + 1, sizeof(size_t));
	g->deps = calloc(g->nedges + 1, sizeof(int));
	g->users = calloc(g->nedges + 1, sizeof(int));
	if (!fill || !g->dep_at || !g->user_at || !g->deps || !g->users) {
		free(fill);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (size_t e = 0; e < g->nedges; e++) {
		g->dep_at[g->edges[e].from + 1]++;
		g->user_at[g->edges[e].to + 1]++;
	}
	for (size_t i = 0; i < n; i++) {
		g->dep_at[i + 1] += g->dep_at[i];
		g->user_at[i + 1] += g->user_at[i];
	}
	for (size_t e = 0; e < g->nedges; e++)
		g->deps[g->dep_at[g->edges[e].from] + fill[g->edges[e].from]++] = g->edges[e].to;
	memset(fill, 0, (n + 1) * sizeof(size_t));
	for (size_t e = 0; e < g->nedges; e++)
		g->users[g->user_at[g->edges[e].to] + fill[g->edges[e].to]++] = g->edges[e].from;
	free(fill);
	return PS_OK;
}

/* Ready nodes, lowest (rank, OID) first: a binary heap of node indexes. */
typedef struct ready_heap {
	int *v;
	size_t n;
	const sg_node *nodes;
} ready_heap;

static bool before(const ready_heap *h, int a, int b)
{
	const sg_node *x = &h->nodes[a], *y = &h->nodes[b];

	return x->rank != y->rank ? x->rank < y->rank : x->objid < y->objid;
}

static void heap_push(ready_heap *h, int node)
{
	size_t i = h->n++;

	h->v[i] = node;
	while (i > 0 && before(h, h->v[i], h->v[(i - 1) / 2])) {
		int t = h->v[i];

		h->v[i] = h->v[(i - 1) / 2];
		h->v[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static int heap_pop(ready_heap *h)
{
	int top = h->v[0];
	size_t i = 0;

	h->v[0] = h->v[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		int t;

		if (l < h->n && before(h, h->v[l], h->v[m]))
			m = l;
		if (r < h->n && before(h, h->v[r], h->v[m]))
			m = r;
		if (m == i)
			break;
		t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
	return top;
}

static int sort_graph(sg_graph *g, ps_error *err)
{
	ready_heap h = {NULL, 0, g->nodes};
	size_t *deg = NULL, done = 0, scan = 0;
	int rc = build_adjacency(g, err);

	if (rc != PS_OK)
		return rc;
	g->sorted = calloc(g->n + 1, sizeof(int));
	deg = calloc(g->n + 1, sizeof(size_t));
	h.v = calloc(g->n + 1, sizeof(int));
	if (!g->sorted || !deg || !h.v) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < g->n; i++) {
		deg[i] = g->dep_at[i + 1] - g->dep_at[i];
		if (deg[i] == 0)
			heap_push(&h, (int)i);
	}
	while (done < g->n) {
		int best = -1;

		if (h.n > 0) {
			best = heap_pop(&h);
		} else {
			/* a cycle: break it at the lowest OID left (note 2) */
			for (; scan < g->n && g->nodes[scan].order >= 0; scan++)
				;
			for (size_t i = scan; i < g->n; i++)
				if (g->nodes[i].order < 0 &&
				    (best < 0 || g->nodes[i].objid < g->nodes[best].objid))
					best = (int)i;
			ps_log_warn("dependency cycle among the objects the tables need: %s is created "
			            "first", g->nodes[best].has_obj ? g->nodes[best].obj.what : "an object");
			deg[best] = 0;
		}
		if (g->nodes[best].order >= 0)
			continue;               /* a cycle's node placed before its turn */
		g->nodes[best].order = (int)done;
		g->sorted[done++] = best;
		for (size_t k = g->user_at[best]; k < g->user_at[best + 1]; k++) {
			int u = g->users[k];

			if (deg[u] > 0 && --deg[u] == 0 && g->nodes[u].order < 0)
				heap_push(&h, u);
		}
	}
cleanup:
	free(deg);
	free(h.v);
	return rc;
}

/* Blocks every node that depends, directly or not, on a blocked one; the
 * selected tables themselves never are (a partition selected alone has
 * its parent among its dependencies). */
static void propagate_blocked(sg_graph *g)
{
	for (size_t k = 0; k < g->n; k++) {
		int i = g->sorted[k];

		if (g->nodes[i].start_table)
			continue;
		for (size_t d = g->dep_at[i]; d < g->dep_at[i + 1] && !g->nodes[i].blocked; d++)
			if (g->nodes[g->deps[d]].blocked)
				g->nodes[i].blocked = true;
	}
}

/* --- building the graph ---------------------------------------------------- */

typedef struct schema_opts {
	int mode;                 /* ps_schema_mode */
	bool no_extensions;
	int foreign_keys;         /* ps_foreign_keys */
} schema_opts;

static int build_graph(PGconn *conn, const schema_opts *o, const uint32_t *roots, size_t nroots,
                       const uint32_t *xclass, const uint32_t *xobj, size_t nextra, sg_graph *g,
                       ps_error *err)
{
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, 1u << 20);
	rc = walk(conn, roots, nroots, xclass, xobj, nextra, g, err);
	if (rc == PS_OK)
		rc = mark_members(conn, g, err);
#define DESCRIBE(cat, text, ...) \
	do { \
		if (rc == PS_OK) { \
			ps_buf_reset(&sql); \
			rc = ps_buf_printf(&sql, text, __VA_ARGS__); \
			if (rc == PS_OK) \
				rc = describe_catalog(conn, g, cat, sql.data, "describing objects", err); \
			else \
				rc = ps_error_set(err, rc, "out of memory"); \
		} \
	} while (0)
	DESCRIBE(CAT_TYPE, TYPE_SQL, PS_OBJECT_TYPE);
	DESCRIBE(CAT_PROC, PROC_SQL, PS_OBJECT_FUNCTION);
	DESCRIBE(CAT_CLASS, CLASS_SQL, PS_OBJECT_RELATION);
	DESCRIBE(CAT_COLLATION, COLLATION_SQL, PS_OBJECT_COLLATION);
	DESCRIBE(CAT_NAMESPACE, NAMESPACE_SQL, PS_OBJECT_SCHEMA);
	DESCRIBE(CAT_EXTENSION, EXTENSION_SQL, PS_OBJECT_EXTENSION,
	         o->no_extensions ? "true" : "false");
	DESCRIBE(CAT_OPERATOR, OPERATOR_SQL, PS_OBJECT_OPERATOR);
	DESCRIBE(CAT_TRIGGER, TRIGGER_SQL, PS_OBJECT_TRIGGER);
	DESCRIBE(CAT_POLICY, POLICY_SQL, PS_OBJECT_POLICY);
#undef DESCRIBE
	if (rc == PS_OK)
		rc = describe_others(conn, g, err);
	if (rc == PS_OK)
		rc = mark_tables(conn, g, roots, nroots, err);
	if (rc == PS_OK)
		rc = sort_graph(g, err);
	if (rc == PS_OK)
		propagate_blocked(g);
	ps_buf_free(&sql);
	return rc;
}

/* --- what each table needs ------------------------------------------------- */

/* Appends node i's object to list (blocked: as must_exist, note 4). */
static int append_node(ps_schema_object **list, size_t *n, size_t *cap, const sg_node *nd)
{
	ps_schema_object *o;
	int rc;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		ps_schema_object *nl = realloc(*list, ncap * sizeof(*nl));

		if (!nl)
			return PS_ENOMEM;
		*list = nl;
		*cap = ncap;
	}
	o = &(*list)[*n];
	rc = ps_schema_object_copy(o, &nd->obj);
	(*n)++;
	if (rc == PS_OK && nd->blocked && !o->must_exist) {
		const char *why = " (it needs a table the job does not select)";
		size_t len = strlen(o->what) + strlen(why) + 1;
		char *w = malloc(len);

		if (!w)
			return PS_ENOMEM;
		snprintf(w, len, "%s%s", o->what, why);
		free(o->what);
		o->what = w;
		free(o->sql);
		o->sql = NULL;
		o->must_exist = true;
	}
	return rc;
}

static int cmp_reach(const void *a, const void *b)
{
	const sg_reach *x = a, *y = b;

	if (x->root != y->root)
		return x->root < y->root ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int pg_schema_needs(PGconn *conn, int mode, bool no_extensions, const uint32_t *roots,
                    size_t nroots, ps_schema_object **lists, size_t *counts, ps_error *err)
{
	schema_opts o = {mode, no_extensions, PS_FK_VALIDATE};
	int *mine = NULL;
	sg_graph g;
	int rc;

	memset(&g, 0, sizeof(g));
	for (size_t d = 0; d < nroots; d++) {
		lists[d] = NULL;
		counts[d] = 0;
	}
	if (nroots == 0 || mode == PS_SCHEMA_BARE)
		return PS_OK;
	rc = build_graph(conn, &o, roots, nroots, NULL, NULL, 0, &g, err);
	if (rc == PS_OK) {
		mine = calloc(g.nreach + 1, sizeof(int));
		if (!mine)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	/* each table's nodes: its run of the reach pairs, sorted by root, put
	 * in creation order */
	if (rc == PS_OK)
		qsort(g.reach, g.nreach, sizeof(sg_reach), cmp_reach);
	for (size_t d = 0; rc == PS_OK && d < nroots; d++) {
		size_t cap = 0, lo = 0, hi = g.nreach, nmine = 0;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (g.reach[mid].root < roots[d])
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t k = lo; k < g.nreach && g.reach[k].root == roots[d]; k++) {
			const sg_node *nd = g.reach[k].node >= 0 ? &g.nodes[g.reach[k].node] : NULL;

			if (nd && nd->has_obj && !nd->member_of)
				mine[nmine++] = nd->order;
		}
		qsort(mine, nmine, sizeof(int), cmp_int);
		for (size_t k = 0; rc == PS_OK && k < nmine; k++)
			if (append_node(&lists[d], &counts[d], &cap, &g.nodes[g.sorted[mine[k]]]) != PS_OK)
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (rc != PS_OK) {
		for (size_t d = 0; d < nroots; d++) {
			ps_schema_objects_free(lists[d], counts[d]);
			lists[d] = NULL;
			counts[d] = 0;
		}
	}
	free(mine);
	graph_free(&g);
	return rc;
}

int pg_schema_requires(ps_source *src, ps_table_def **defs, size_t ndefs, ps_error *err)
{
	uint32_t *roots = NULL;
	ps_schema_object **lists = NULL;
	size_t *counts = NULL;
	int rc = PS_OK;

	if (ndefs == 0 || src->schema == PS_SCHEMA_BARE)
		return PS_OK;
	roots = calloc(ndefs, sizeof(uint32_t));
	lists = calloc(ndefs, sizeof(*lists));
	counts = calloc(ndefs, sizeof(size_t));
	if (!roots || !lists || !counts)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t i = 0; rc == PS_OK && i < ndefs; i++)
		roots[i] = defs[i]->table->id;
	if (rc == PS_OK)
		rc = pg_schema_needs(src->sql, src->schema, src->no_extensions, roots, ndefs, lists,
		                     counts, err);
	for (size_t i = 0; rc == PS_OK && i < ndefs; i++) {
		defs[i]->requires = lists[i];
		defs[i]->nrequires = counts[i];
	}
	free(roots);
	free(lists);
	free(counts);
	return rc;
}

/* --- after the load --------------------------------------------------------- */

/* A growing list of objects. */
typedef struct obj_list {
	ps_schema_object *v;
	size_t n, cap;
	int rc;
} obj_list;

static ps_schema_object *list_add(obj_list *l)
{
	if (l->rc != PS_OK)
		return NULL;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		ps_schema_object *nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv) {
			l->rc = PS_ENOMEM;
			return NULL;
		}
		l->v = nv;
		l->cap = ncap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/* A statement object (kind STATEMENT, or with identity when kind says so). */
static void list_statement(obj_list *l, int kind, const char *what, const char *schema,
                           const char *name, const char *table, const char *sql,
                           const char *role)
{
	ps_schema_object *o = list_add(l);

	if (!o)
		return;
	o->kind = kind;
	o->what = what ? strdup(what) : NULL;
	o->schema = schema ? strdup(schema) : NULL;
	o->name = name ? strdup(name) : NULL;
	o->table = table ? strdup(table) : NULL;
	o->sql = strdup(sql);
	if (role && role[0]) {
		o->roles = calloc(1, sizeof(char *));
		if (o->roles)
			o->roles[0] = strdup(role);
		o->nroles = o->roles && o->roles[0] ? 1 : 0;
		if (!o->roles || !o->roles[0])
			l->rc = PS_ENOMEM;
	}
	if ((what && !o->what) || (schema && !o->schema) || (name && !o->name) ||
	    (table && !o->table) || !o->sql)
		l->rc = PS_ENOMEM;
}

/* Foreign keys between selected tables (target.foreign_keys). */
static int add_foreign_keys(PGconn *conn, const schema_opts *o, const char *rels, obj_list *l,
                            ps_buf *skipped, ps_error *err)
{
	const char *params[1] = {rels};
	PGresult *r = NULL;
	ps_buf sql;
	int rc;

	if (o->foreign_keys == PS_FK_NONE)
		return PS_OK;
	rc = pg_exec(conn, &r, err, "listing foreign keys",
	             "WITH sel AS (SELECT s.r AS o FROM unnest($1::oid[]) s(r) "
	             "  UNION SELECT t.relid FROM unnest($1::oid[]) s(r) "
	             "  CROSS JOIN LATERAL pg_partition_tree(s.r) t) "
	             "SELECT k.conname, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname), "
	             "  pg_get_constraintdef(k.oid), k.convalidated, c.relkind = 'p', "
	             "  rs.o IS NOT NULL, fn.nspname || '.' || f.relname, "
	             "  obj_description(k.oid, 'pg_constraint') "
	             "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
	             "JOIN pg_namespace n ON n.oid = c.relnamespace "
	             "JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace "
	             "JOIN sel ks ON ks.o = k.conrelid LEFT JOIN sel rs ON rs.o = k.confrelid "
	             "WHERE k.contype = 'f' AND k.conparentid = 0 "
	             "ORDER BY n.nspname, c.relname, k.conname", 1, params);
	if (rc != PS_OK)
		return rc;
	ps_buf_init(&sql, 1u << 20);
	for (int row = 0; l->rc == PS_OK && row < PQntuples(r); row++) {
		const char *name = PQgetvalue(r, row, 0), *qtable = PQgetvalue(r, row, 3);
		bool valid = PQgetvalue(r, row, 5)[0] == 't';
		bool partitioned = PQgetvalue(r, row, 6)[0] == 't';
		char what[700];

		snprintf(what, sizeof(what), "foreign key %s on %s.%s", name, PQgetvalue(r, row, 1),
		         PQgetvalue(r, row, 2));
		if (PQgetvalue(r, row, 7)[0] != 't') {
			ps_buf_printf(skipped, "%s%s (it references %s, which the job does not select)",
			              skipped->len ? "; " : "", what, PQgetvalue(r, row, 8));
			continue;
		}
		ps_buf_reset(&sql);
		rc = PS_OK;
		pg_put(&rc, &sql, "ALTER TABLE ");
		pg_put(&rc, &sql, qtable);
		pg_put(&rc, &sql, " ADD CONSTRAINT ");
		pg_put_ident(&rc, conn, &sql, name);
		pg_put(&rc, &sql, " ");
		pg_put(&rc, &sql, PQgetvalue(r, row, 4));
		/* PostgreSQL cannot add a NOT VALID foreign key to a partitioned
		 * table: it is validated as it is added */
		if (valid && !partitioned) {
			pg_put(&rc, &sql, " NOT VALID");
			if (o->foreign_keys == PS_FK_VALIDATE) {
				pg_put(&rc, &sql, "; ALTER TABLE ");
				pg_put(&rc, &sql, qtable);
				pg_put(&rc, &sql, " VALIDATE CONSTRAINT ");
				pg_put_ident(&rc, conn, &sql, name);
			}
		}
		if (!PQgetisnull(r, row, 9)) {
			pg_put(&rc, &sql, "; COMMENT ON CONSTRAINT ");
			pg_put_ident(&rc, conn, &sql, name);
			pg_put(&rc, &sql, " ON ");
			pg_put(&rc, &sql, qtable);
			pg_put(&rc, &sql, " IS ");
			if (rc == PS_OK) {
				char *lit = PQescapeLiteral(conn, PQgetvalue(r, row, 9),
				                            strlen(PQgetvalue(r, row, 9)));
				if (!lit)
					rc = PS_ENOMEM;
				pg_put(&rc, &sql, lit ? lit : "");
				PQfreemem(lit);
			}
		}
		if (rc != PS_OK) {
			l->rc = rc;
			break;
		}
		list_statement(l, PS_OBJECT_CONSTRAINT, what, PQgetvalue(r, row, 1), name, qtable,
		               sql.data, NULL);
	}
	PQclear(r);
	ps_buf_free(&sql);
	return PS_OK;
}

/* Comments on the selected tables' constraints (not foreign keys: they
 * carry theirs) and indexes. */
static int add_comments(PGconn *conn, const char *rels, obj_list *l, ps_error *err)
{
	const char *params[1] = {rels};
	PGresult *r = NULL;
	int rc;

	rc = pg_exec(conn, &r, err, "listing comments",
	             "SELECT format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', k.conname, n.nspname, "
	             "  c.relname, d.description) "
	             "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
	             "JOIN pg_namespace n ON n.oid = c.relnamespace "
	             "JOIN pg_description d ON d.objoid = k.oid AND d.classoid = 'pg_constraint'::regclass "
	             "WHERE k.conrelid = ANY($1::oid[]) AND k.contype <> 'f' "
	             "UNION ALL "
	             "SELECT format('COMMENT ON INDEX %I.%I IS %L', n.nspname, ic.relname, d.description) "
	             "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
	             "JOIN pg_namespace n ON n.oid = ic.relnamespace "
	             "JOIN pg_description d ON d.objoid = ic.oid AND d.classoid = 'pg_class'::regclass "
	             "WHERE i.indrelid = ANY($1::oid[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
	             "  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)", 1, params);
	for (int row = 0; rc == PS_OK && row < PQntuples(r); row++)
		list_statement(l, PS_OBJECT_STATEMENT, "a comment", NULL, NULL, NULL,
		               PQgetvalue(r, row, 0), NULL);
	PQclear(r);
	return rc;
}

/* $1: the selected tables. The sequences their defaults and identity
 * columns use, with the value they have now. */
static const char *const SEQUENCES_SQL =
	"WITH sel AS (SELECT s.r AS o FROM unnest($1::oid[]) s(r) "
	"  UNION SELECT t.relid FROM unnest($1::oid[]) s(r) "
	"  CROSS JOIN LATERAL pg_partition_tree(s.r) t), "
	"used AS ("
	/* owned by a column (serial) or made by one (identity) */
	"  SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS col FROM pg_depend d "
	"  JOIN sel ON sel.o = d.refobjid "
	"  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
	"    AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 "
	/* drawn from by a default, owned by whatever */
	"  UNION SELECT d.refobjid, ad.adrelid, 0 FROM pg_depend d "
	"  JOIN pg_attrdef ad ON ad.oid = d.objid JOIN sel ON sel.o = ad.adrelid "
	"  WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass) "
	"SELECT DISTINCT ON (s.oid) sn.nspname, s.relname, tn.nspname, t.relname, a.attname, "
	"  CASE WHEN has_sequence_privilege(s.oid, 'SELECT,USAGE') THEN "
	"    pg_sequence_last_value(s.oid) END "
	"FROM used u JOIN pg_class s ON s.oid = u.seq AND s.relkind = 'S' "
	"JOIN pg_namespace sn ON sn.oid = s.relnamespace "
	"JOIN pg_class t ON t.oid = u.rel JOIN pg_namespace tn ON tn.oid = t.relnamespace "
	"LEFT JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.col AND u.col > 0 "
	"ORDER BY s.oid, u.col DESC";

int pg_sequences_used(PGconn *conn, const uint32_t *tables, size_t n, PGresult **out,
                      ps_error *err)
{
	ps_buf a;
	const char *params[1];
	int rc;

	*out = NULL;
	ps_buf_init(&a, OID_TEXT_MAX);
	rc = oid_array_text(&a, tables, n);
	if (rc != PS_OK) {
		ps_buf_free(&a);
		return ps_error_set(err, rc, "too many tables");
	}
	params[0] = a.data;
	rc = pg_exec(conn, out, err, "reading the sequences the tables use", SEQUENCES_SQL, 1, params);
	ps_buf_free(&a);
	return rc;
}

/* setval for each sequence the tables use (note 5): a column's own
 * sequence is found on the target through the column, so that a table the
 * target already had works too; another by its name. */
static int add_sequence_values(PGconn *conn, const uint32_t *roots, size_t nroots, obj_list *l,
                               ps_error *err)
{
	PGresult *r = NULL;
	ps_buf sql, name;
	int rc = pg_sequences_used(conn, roots, nroots, &r, err);

	ps_buf_init(&sql, 8192);
	ps_buf_init(&name, 4096);
	for (int row = 0; rc == PS_OK && l->rc == PS_OK && row < PQntuples(r); row++) {
		char what[700];

		if (PQgetisnull(r, row, PG_SEQ_VALUE))
			continue;              /* never used: the target's stands at its start too */
		ps_buf_reset(&sql);
		ps_buf_reset(&name);
		pg_put_ident(&rc, conn, &name, PQgetvalue(r, row, PG_SEQ_SCHEMA));
		pg_put(&rc, &name, ".");
		pg_put_ident(&rc, conn, &name, PQgetvalue(r, row, PG_SEQ_NAME));
		if (!PQgetisnull(r, row, PG_SEQ_COLUMN)) {
			ps_buf tq;

			ps_buf_init(&tq, 4096);
			pg_put_ident(&rc, conn, &tq, PQgetvalue(r, row, PG_SEQ_TSCHEMA));
			pg_put(&rc, &tq, ".");
			pg_put_ident(&rc, conn, &tq, PQgetvalue(r, row, PG_SEQ_TNAME));
			if (rc == PS_OK) {
				char *t = PQescapeLiteral(conn, tq.data, tq.len);
				char *c = PQescapeLiteral(conn, PQgetvalue(r, row, PG_SEQ_COLUMN),
				                          strlen(PQgetvalue(r, row, PG_SEQ_COLUMN)));

				if (t && c)
					rc = ps_buf_printf(&sql, "SELECT setval(s::regclass, %s, true) FROM "
					                   "pg_get_serial_sequence(%s, %s) s WHERE s IS NOT NULL",
					                   PQgetvalue(r, row, PG_SEQ_VALUE), t, c);
				else
					rc = PS_ENOMEM;
				PQfreemem(t);
				PQfreemem(c);
			}
			ps_buf_free(&tq);
		} else if (rc == PS_OK) {
			char *lit = PQescapeLiteral(conn, name.data, name.len);

			if (lit)
				rc = ps_buf_printf(&sql, "SELECT setval(s, %s, true) FROM to_regclass(%s) s "
				                   "WHERE s IS NOT NULL", PQgetvalue(r, row, PG_SEQ_VALUE), lit);
			else
				rc = PS_ENOMEM;
			PQfreemem(lit);
		}
		if (rc != PS_OK) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		snprintf(what, sizeof(what), "the value of sequence %s.%s", PQgetvalue(r, row, PG_SEQ_SCHEMA),
		         PQgetvalue(r, row, PG_SEQ_NAME));
		list_statement(l, PS_OBJECT_STATEMENT, what, NULL, NULL, NULL, sql.data, NULL);
	}
	PQclear(r);
	ps_buf_free(&sql);
	ps_buf_free(&name);
	return rc;
}

/* target.schema "full" (note 6): the more starting nodes. */
static int full_starts(PGconn *conn, const char *rels, uint32_t **cls, uint32_t **obj, size_t *n,
                       ps_error *err)
{
	const char *params[1] = {rels};
	PGresult *r = NULL;
	int rc;

	*cls = *obj = NULL;
	*n = 0;
	rc = pg_exec(conn, &r, err, "listing the objects of the tables' schemas",
	             "WITH sel AS (SELECT s.r AS o FROM unnest($1::oid[]) s(r) "
	             "  UNION SELECT t.relid FROM unnest($1::oid[]) s(r) "
	             "  CROSS JOIN LATERAL pg_partition_tree(s.r) t), "
	             "nsp AS (SELECT DISTINCT c.relnamespace AS o FROM pg_class c "
	             "  JOIN sel ON sel.o = c.oid), "
	             "members AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e') "
	             "SELECT 'pg_proc'::regclass::oid, p.oid FROM pg_proc p "
	             "  WHERE p.pronamespace IN (SELECT o FROM nsp) "
	             "  AND ('pg_proc'::regclass, p.oid) NOT IN (SELECT * FROM members) "
	             "UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t "
	             "  WHERE t.typnamespace IN (SELECT o FROM nsp) AND t.typtype IN ('e', 'd', 'c', 'r') "
	             "  AND ('pg_type'::regclass, t.oid) NOT IN (SELECT * FROM members) "
	             "UNION ALL SELECT 'pg_class'::regclass, c.oid FROM pg_class c "
	             "  WHERE c.relnamespace IN (SELECT o FROM nsp) AND c.relkind IN ('S', 'v', 'm') "
	             "  AND ('pg_class'::regclass, c.oid) NOT IN (SELECT * FROM members) "
	             "UNION ALL SELECT 'pg_class'::regclass, i.indexrelid FROM pg_index i "
	             "  JOIN pg_class m ON m.oid = i.indrelid WHERE m.relkind = 'm' "
	             "  AND m.relnamespace IN (SELECT o FROM nsp) "
	             "UNION ALL SELECT 'pg_trigger'::regclass, tg.oid FROM pg_trigger tg "
	             "  JOIN sel ON sel.o = tg.tgrelid WHERE NOT tg.tgisinternal "
	             "  AND tg.tgparentid = 0 "
	             "UNION ALL SELECT 'pg_policy'::regclass, po.oid FROM pg_policy po "
	             "  JOIN sel ON sel.o = po.polrelid", 1, params);
	if (rc != PS_OK)
		return rc;
	*cls = calloc((size_t)PQntuples(r) + 1, sizeof(uint32_t));
	*obj = calloc((size_t)PQntuples(r) + 1, sizeof(uint32_t));
	if (!*cls || !*obj) {
		PQclear(r);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (int row = 0; row < PQntuples(r); row++) {
		(*cls)[*n] = col_oid(r, row, 0);
		(*obj)[*n] = col_oid(r, row, 1);
		(*n)++;
	}
	PQclear(r);
	return PS_OK;
}

/* target.schema "full": row level security, grants, refreshes. */
static int add_full_statements(PGconn *conn, const char *rels, const sg_graph *g, obj_list *l,
                               ps_error *err)
{
	const char *params[2];
	ps_buf created;
	PGresult *r = NULL;
	size_t count = 0;
	int rc;

	/* the objects of the after-load graph that were created, and the
	 * tables: the grants are for those */
	ps_buf_init(&created, OID_TEXT_MAX);
	rc = ps_buf_putc(&created, '{');
	for (size_t i = 0; rc == PS_OK && i < g->n; i++) {
		const sg_node *nd = &g->nodes[i];

		if (!nd->has_obj || nd->blocked || nd->obj.must_exist || nd->member_of)
			continue;
		rc = ps_buf_printf(&created, "%s%u", count++ ? "," : "", nd->objid);
	}
	if (rc == PS_OK)
		rc = ps_buf_putc(&created, '}');
	if (rc != PS_OK) {
		ps_buf_free(&created);
		return ps_error_set(err, rc, "too many objects");
	}
	params[0] = rels;
	params[1] = created.data;
	rc = pg_exec(conn, &r, err, "listing row level security and grants",
	             "WITH sel AS (SELECT s.r AS o FROM unnest($1::oid[]) s(r)), "
	             "made AS (SELECT unnest($2::oid[]) AS o), "
	             "rels AS (SELECT c.oid, n.nspname, c.relname, c.relkind, c.relacl, "
	             "    c.relrowsecurity, c.relforcerowsecurity, c.relispopulated "
	             "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	             "  JOIN (SELECT o FROM sel UNION SELECT o FROM made) u ON u.o = c.oid) "
	             /* 1: row level security */
	             "SELECT 1, format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', nspname, relname) "
	             "  || CASE WHEN relforcerowsecurity THEN format('; ALTER TABLE %I.%I FORCE ROW "
	             "LEVEL SECURITY', nspname, relname) ELSE '' END, NULL, "
	             "  format('row level security of %s.%s', nspname, relname) "
	             "FROM rels WHERE relrowsecurity "
	             /* 2: grants on relations */
	             "UNION ALL SELECT 2, format('GRANT %s ON %s %I.%I TO %s%s', "
	             "  string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type), "
	             "  CASE relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, nspname, relname, "
	             "  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
	             "  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), "
	             "  CASE WHEN a.grantee <> 0 THEN pg_get_userbyid(a.grantee) END, "
	             "  format('privileges on %s.%s', nspname, relname) "
	             "FROM rels CROSS JOIN LATERAL aclexplode(relacl) a "
	             "GROUP BY oid, nspname, relname, relkind, a.grantee, a.is_grantable "
	             /* 3: grants on functions and procedures */
	             "UNION ALL SELECT 3, format('GRANT %s ON ROUTINE %I.%I(%s) TO %s%s', "
	             "  string_agg(a.privilege_type, ', '), n.nspname, p.proname, "
	             "  oidvectortypes(p.proargtypes), "
	             "  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
	             "  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), "
	             "  CASE WHEN a.grantee <> 0 THEN pg_get_userbyid(a.grantee) END, "
	             "  format('privileges on %s.%s', n.nspname, p.proname) "
	             "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
	             "JOIN made ON made.o = p.oid CROSS JOIN LATERAL aclexplode(p.proacl) a "
	             "GROUP BY p.oid, n.nspname, p.proname, a.grantee, a.is_grantable "
	             /* 4: grants on schemas that hold selected tables */
	             "UNION ALL SELECT 4, format('GRANT %s ON SCHEMA %I TO %s%s', "
	             "  string_agg(a.privilege_type, ', '), n.nspname, "
	             "  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
	             "  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), "
	             "  CASE WHEN a.grantee <> 0 THEN pg_get_userbyid(a.grantee) END, "
	             "  format('privileges on schema %s', n.nspname) "
	             "FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a "
	             "WHERE n.oid IN (SELECT c.relnamespace FROM pg_class c JOIN sel ON sel.o = c.oid) "
	             "  AND n.nspname <> 'public' "
	             "GROUP BY n.oid, n.nspname, a.grantee, a.is_grantable "
	             /* 5: materialized views filled as on the source */
	             "UNION ALL SELECT 5, format('REFRESH MATERIALIZED VIEW %I.%I', nspname, relname), "
	             "  NULL, format('refreshing materialized view %s.%s', nspname, relname) "
	             "FROM rels WHERE relkind = 'm' AND relispopulated "
	             "ORDER BY 1, 4", 2, params);
	for (int row = 0; rc == PS_OK && row < PQntuples(r); row++)
		list_statement(l, PS_OBJECT_STATEMENT, PQgetvalue(r, row, 3), NULL, NULL, NULL,
		               PQgetvalue(r, row, 1), PQgetisnull(r, row, 2) ? NULL : PQgetvalue(r, row, 2));
	PQclear(r);
	ps_buf_free(&created);
	return rc;
}

int pg_schema_after(PGconn *conn, int mode, bool no_extensions, int foreign_keys,
                    const uint32_t *roots, size_t nroots, ps_schema **out, ps_error *err)
{
	schema_opts o = {mode, no_extensions, foreign_keys};
	ps_schema *s = NULL;
	obj_list l = {NULL, 0, 0, PS_OK};
	uint32_t *xcls = NULL, *xobj = NULL;
	size_t nx = 0;
	ps_buf rels, skipped;
	sg_graph g;
	int rc;

	*out = NULL;
	memset(&g, 0, sizeof(g));
	if (mode == PS_SCHEMA_BARE || nroots == 0)
		return PS_OK;
	ps_buf_init(&rels, OID_TEXT_MAX);
	ps_buf_init(&skipped, 1u << 20);
	rc = oid_array_text(&rels, roots, nroots);
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "too many tables");
		goto cleanup;
	}
	if (mode == PS_SCHEMA_FULL) {
		rc = full_starts(conn, rels.data, &xcls, &xobj, &nx, err);
		if (rc == PS_OK)
			rc = build_graph(conn, &o, roots, nroots, xcls, xobj, nx, &g, err);
		for (size_t k = 0; rc == PS_OK && k < g.n; k++) {
			const sg_node *nd = &g.nodes[g.sorted[k]];
			ps_schema_object *obj;

			if (!nd->has_obj || nd->member_of)
				continue;
			if (nd->blocked) {
				ps_buf_printf(&skipped, "%s%s (it needs a table the job does not select)",
				              skipped.len ? "; " : "", nd->obj.what);
				continue;
			}
			obj = list_add(&l);
			if (obj && ps_schema_object_copy(obj, &nd->obj) != PS_OK)
				l.rc = PS_ENOMEM;
		}
	}
	if (rc == PS_OK)
		rc = add_foreign_keys(conn, &o, rels.data, &l, &skipped, err);
	if (rc == PS_OK)
		rc = add_comments(conn, rels.data, &l, err);
	if (rc == PS_OK && mode == PS_SCHEMA_FULL)
		rc = add_full_statements(conn, rels.data, &g, &l, err);
	if (rc == PS_OK)
		rc = add_sequence_values(conn, roots, nroots, &l, err);
	if (rc == PS_OK && l.rc != PS_OK)
		rc = ps_error_set(err, l.rc, "out of memory");
	if (rc != PS_OK)
		goto cleanup;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->engine = strdup("postgresql"))) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	s->objects = l.v;
	s->n = l.n;
	l.v = NULL;
	l.n = 0;
	if (skipped.len)
		s->skipped = ps_buf_detach(&skipped);
	*out = s;
	s = NULL;
cleanup:
	ps_schema_free(s);
	ps_schema_objects_free(l.v, l.n);
	free(xcls);
	free(xobj);
	graph_free(&g);
	ps_buf_free(&rels);
	ps_buf_free(&skipped);
	return rc;
}

int pg_schema_after_load(ps_source *src, ps_schema **out, ps_error *err)
{
	return pg_schema_after(src->sql, src->schema, src->no_extensions, src->foreign_keys,
	                       src->table_oids, src->ntable_oids, out, err);
}
