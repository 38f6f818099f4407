/*
 * pg_snapshot.c — what the PostgreSQL source tells the initial load: the
 * definitions of the selected tables (describe), key ranges to copy a big
 * table in (split), and exported snapshots for copying again after a
 * restart (snapshot_export, snapshot_release).
 *
 * NOTES ON THE DESIGN
 *
 * 1. describe reads the catalog on the `sql` connection in four queries
 *    for all tables at once (tables, columns, constraints and indexes,
 *    partitions), each sorted by relation OID so a table's rows are found
 *    by binary search; the defs come out ordered by schema and name. The
 *    columns are exactly those pgoutput sends: attnum > 0, not dropped, not
 *    generated (PG 15 does not replicate generated columns: each is logged
 *    and described apart, in def->generated, for a target that computes
 *    it). Then pgsrc_schema.c adds what each table needs (requires).
 * 2. Key order is the primary key's index order, which may differ from the
 *    column order. It is carried by the PRIMARY constraint's cols; split
 *    and copy_unit both take it from there (pg_primary_key). A table with
 *    no primary key but REPLICA IDENTITY USING INDEX marks that index's
 *    columns is_key (identity_index): the target finds rows by them.
 * 3. Foreign keys are not described here: the load runs without FK checks,
 *    and they are created after it (pgsrc_schema.c). Exclusion constraints
 *    are described with the others and added after the load.
 * 4. split samples the key (TABLESAMPLE BERNOULLI, or SYSTEM for big
 *    tables, aiming at ~100 keys and, with SYSTEM, ~50 pages per chunk,
 *    at most SPLIT_MAX_SAMPLES keys), sorted by the server with the
 *    key's own ORDER BY — the order copy_unit's row comparison uses — and
 *    picks evenly spaced samples. Sampled keys are distinct (a primary key)
 *    and picked at strictly increasing positions, so the bounds are
 *    strictly ascending. Bounds need no snapshot: any ascending bounds
 *    partition the key space.
 * 5. Snapshots: prepare's exported snapshot lives on `repl` until its next
 *    command (pg_source.c); snapshot_export makes another on a connection
 *    of its own (`snap`) with a TEMPORARY slot, which the server drops when
 *    that connection ends. snapshot_release closes `snap` and forgets both
 *    names; it is idempotent.
 * 6. A partitioned table (relkind p) is one def: its partition key, every
 *    partition under it (parents first, each with its bound and its own
 *    schema) and, as estimates, the sums of its leaves'. Its indexes are
 *    shown without ON ONLY, so that the target's cascade to its partitions.
 * 7. A column's collation is described when it is not its type's own: the
 *    name (for a PostgreSQL target) and a class (tabledef.h
 *    ps_collation_class) for a target that maps collations.
 *
 * States of `snap`: none ─► (export) holding ─► (release, close) none.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source/pg/pg_internal.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/pgconn.h"

#define SPLIT_MAX_BOUNDS 100000      /* more chunks than this: bigger chunks */
#define SPLIT_KEYS_PER_CHUNK 100
#define SPLIT_MAX_SAMPLES 1000000
#define SPLIT_SYSTEM_ROWS 1000000    /* from this size on, sample pages, not rows */
#define SPLIT_PAGES_PER_CHUNK 50     /* SYSTEM: pages sampled per chunk, at least */
#define SPLIT_PAGE_BYTES 8192        /* PostgreSQL's default block size */
#define MAX_KEYS 32                  /* PostgreSQL's INDEX_MAX_KEYS */

/* --- small helpers -------------------------------------------------------- */

static uint32_t value_oid(const PGresult *r, int row, int col)
{
	return (uint32_t)strtoul(PQgetvalue(r, row, col), NULL, 10);
}

/* Rows [*begin, *end) of r, sorted by the OID in column 0, that belong to
 * relid. */
static void rows_of(const PGresult *r, uint32_t relid, int *begin, int *end)
{
	int lo = 0, hi = PQntuples(r);

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (value_oid(r, mid, 0) < relid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*begin = lo;
	while (lo < PQntuples(r) && value_oid(r, lo, 0) == relid)
		lo++;
	*end = lo;
}

/* "{1,2,3}": tables as an oid[] parameter. */
static int oid_array(const uint32_t *oids, size_t n, ps_buf *b)
{
	int rc = ps_buf_putc(b, '{');

	for (size_t i = 0; rc == PS_OK && i < n; i++)
		rc = ps_buf_printf(b, "%s%u", i ? "," : "", oids[i]);
	if (rc == PS_OK)
		rc = ps_buf_putc(b, '}');
	return rc;
}

static char *dup_or_null(const PGresult *r, int row, int col, int *rc)
{
	char *s;

	if (PQgetisnull(r, row, col))
		return NULL;
	s = strdup(PQgetvalue(r, row, col));
	if (!s)
		*rc = PS_ENOMEM;
	return s;
}

void pg_primary_key(const ps_table_def *def, const int **keys, int *nkeys)
{
	*keys = NULL;
	*nkeys = 0;
	if (!def->has_primary_key)
		return;
	for (int i = 0; i < def->nconstraints; i++) {
		if (def->constraints[i].kind == PS_CONSTRAINT_PRIMARY && def->constraints[i].ncols > 0) {
			*keys = def->constraints[i].cols;
			*nkeys = def->constraints[i].ncols;
			return;
		}
	}
}

/* --- describe: the catalog queries ---------------------------------------- */

enum { T_OID, T_SCHEMA, T_NAME, T_IDENT, T_TUPLES, T_BYTES, T_COMMENT, T_PARTKEY,
       T_IDENT_INDEX };

static int query_tables(ps_source *src, const char *const *oids, PGresult **r, ps_error *err)
{
	/* A partitioned table holds no rows itself: its estimates are its
	 * leaves' (note 6). */
	return pg_exec(src->sql, r, err, "describing tables",
	               "SELECT c.oid, n.nspname, c.relname, c.relreplident, "
	               "  CASE WHEN c.relkind = 'p' THEN coalesce((SELECT sum(l.reltuples) "
	               "    FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid "
	               "    WHERE t.isleaf AND l.reltuples >= 0), -1) ELSE c.reltuples END, "
	               "  CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_relation_size(t.relid)), 0) "
	               "    FROM pg_partition_tree(c.oid) t WHERE t.isleaf) "
	               "    ELSE pg_relation_size(c.oid) END, "
	               "  obj_description(c.oid, 'pg_class'), "
	               "  CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, "
	               "  (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
	               "    WHERE i.indrelid = c.oid AND i.indisreplident AND c.relreplident = 'i' "
	               "    AND NOT EXISTS (SELECT 1 FROM pg_index k WHERE k.indrelid = c.oid "
	               "      AND k.indisprimary)) "
	               "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	               "WHERE c.oid = ANY($1::oid[]) ORDER BY n.nspname, c.relname", 1, oids);
}

/* Every partition of the partitioned tables among oids, parents before
 * their partitions. */
enum { P_ROOT, P_SCHEMA, P_NAME, P_PSCHEMA, P_PNAME, P_BOUND, P_PARTKEY, P_LEAF, P_TUPLES,
       P_BYTES, P_COMMENT, P_ATTACHED };

static int query_partitions(ps_source *src, const char *const *oids, PGresult **r, ps_error *err)
{
	return pg_exec(src->sql, r, err, "describing partitions",
	               "SELECT root.oid, n.nspname, c.relname, pn.nspname, p.relname, "
	               "  pg_get_expr(c.relpartbound, c.oid), "
	               "  CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, t.isleaf, "
	               "  c.reltuples, pg_relation_size(c.oid), obj_description(c.oid, 'pg_class'), "
	               /* made (its row type) by another transaction than the one that made
	                * it a partition: it may hold rows written before (issue 15) */
	               "  (SELECT ty.xmin::text FROM pg_type ty WHERE ty.oid = c.reltype) <> "
	               "    (SELECT i.xmin::text FROM pg_inherits i WHERE i.inhrelid = c.oid) "
	               "FROM pg_class root CROSS JOIN LATERAL pg_partition_tree(root.oid) t "
	               "JOIN pg_class c ON c.oid = t.relid "
	               "JOIN pg_namespace n ON n.oid = c.relnamespace "
	               "JOIN pg_class p ON p.oid = t.parentrelid "
	               "JOIN pg_namespace pn ON pn.oid = p.relnamespace "
	               "WHERE root.oid = ANY($1::oid[]) AND root.relkind = 'p' AND t.level > 0 "
	               "ORDER BY root.oid, t.level, n.nspname, c.relname", 1, oids);
}

enum { C_RELID, C_ATTNUM, C_NAME, C_TYPE, C_TYPMOD, C_SQLTYPE, C_NOTNULL, C_IDENTITY,
       C_GENERATED, C_DEFAULT, C_USERTYPE, C_SEQSCHEMA, C_SEQNAME, C_COLLATION, C_IDOPTIONS,
       C_COMMENT, C_COLLCLASS, C_HASMISSING, C_MISSING, C_LABELS };

static int query_columns(ps_source *src, int version, const char *const *oids, PGresult **r,
                         ps_error *err)
{
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, 8192);
	rc = ps_buf_printf(&sql,
	    "SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod, "
	    "  format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, %s, "
	    "  pg_get_expr(d.adbin, d.adrelid), "
	    "  tn.nspname NOT IN ('pg_catalog', 'information_schema'), seq.nspname, seq.relname, "
	    /* a collation other than the type's own (note 7) */
	    "  CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN "
	    "    (SELECT format('%%I.%%I', cn.nspname, co.collname) FROM pg_collation co "
	    "     JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END, "
	    /* an identity column's sequence, named and set up as on the source */
	    "  (SELECT format('SEQUENCE NAME %%I.%%I START WITH %%s INCREMENT BY %%s MINVALUE %%s "
	    "     MAXVALUE %%s CACHE %%s%%s', sn.nspname, s.relname, q.seqstart, q.seqincrement, "
	    "     q.seqmin, q.seqmax, q.seqcache, CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END) "
	    "   FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S' "
	    "   JOIN pg_namespace sn ON sn.oid = s.relnamespace JOIN pg_sequence q ON q.seqrelid = s.oid "
	    "   WHERE a.attidentity <> '' AND dep.classid = 'pg_class'::regclass "
	    "     AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = a.attrelid "
	    "     AND dep.refobjsubid = a.attnum AND dep.deptype = 'i' LIMIT 1), "
	    "  col_description(a.attrelid, a.attnum), "
	    /* tabledef.h ps_collation_class */
	    "  (SELECT CASE WHEN co.collname IN ('C', 'POSIX', 'ucs_basic') "
	    "      OR (co.collprovider = 'c' AND co.collcollate IN ('C', 'POSIX')) THEN 1 "
	    "    WHEN NOT co.collisdeterministic AND coalesce(to_jsonb(co) ->> 'colllocale', "
	    "      to_jsonb(co) ->> 'colliculocale', '') ~ 'ks-level[12]' THEN 2 ELSE 3 END "
	    "   FROM pg_collation co WHERE co.oid = a.attcollation "
	    "     AND a.attcollation <> t.typcollation), "
	    /* what rows older than the column hold (tabledef.h ps_fill): a
	     * constant default's missing value (issue 15) */
	    "  %s, %s, "
	    /* an enum's labels in their order, as a JSON array */
	    "  CASE WHEN t.typtype = 'e' THEN (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) "
	    "    FROM pg_enum e WHERE e.enumtypid = t.oid) END "
	    "FROM pg_attribute a "
	    "JOIN pg_type t ON t.oid = a.atttypid "
	    /* an array's element type says whether the target may lack it */
	    "LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typlen = -1 "
	    "JOIN pg_namespace tn ON tn.oid = coalesce(et.typnamespace, t.typnamespace) "
	    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
	    /* the sequence a serial column owns (what pg_get_serial_sequence finds
	     * for a non-identity column), as separate names to quote */
	    "LEFT JOIN LATERAL (SELECT sn.nspname, s.relname FROM pg_depend dep "
	    "  JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S' "
	    "  JOIN pg_namespace sn ON sn.oid = s.relnamespace "
	    "  WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass "
	    "    AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND dep.deptype = 'a' "
	    "  ORDER BY s.oid LIMIT 1) seq ON a.attidentity = '' AND d.adbin IS NOT NULL "
	    "WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped "
	    "ORDER BY a.attrelid, a.attnum",
	    version >= 120000 ? "a.attgenerated" : "''::\"char\"",
	    version >= 110000 ? "a.atthasmissing" : "false",
	    version >= 110000 ? "CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END"
	                      : "NULL::text");
	if (rc == PS_OK)
		rc = pg_exec(src->sql, r, err, "describing columns", sql.data, 1, oids);
	else
		ps_error_set(err, rc, "column query too long");
	ps_buf_free(&sql);
	return rc;
}

enum { K_RELID, K_NAME, K_KIND, K_SQL, K_INDKEY, K_NKEYS, K_PARTIAL };

static int query_constraints(ps_source *src, int version, const char *const *oids,
                             PGresult **r, ps_error *err)
{
	const char *nkeys = version >= 110000 ? "i.indnkeyatts" : "i.indnatts";
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, 8192);
	rc = ps_buf_printf(&sql,
	    "SELECT con.conrelid, con.conname, con.contype::text, pg_get_constraintdef(con.oid), "
	    "  i.indkey::text, %s, i.indpred IS NOT NULL, "
	    "  CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 ELSE 2 END "
	    "FROM pg_constraint con "
	    "LEFT JOIN pg_index i ON i.indexrelid = con.conindid AND con.contype IN ('p', 'u') "
	    "WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'u', 'c', 'x') "
	    "UNION ALL "
	    /* a partitioned table's index is shown ON ONLY the parent; created so
	     * it would not cascade to the partitions */
	    "SELECT i.indrelid, ic.relname, 'i', regexp_replace(pg_get_indexdef(i.indexrelid), "
	    "    '^(CREATE (UNIQUE )?INDEX (\"([^\"]|\"\")*\"|[^ ]+)) ON ONLY ', '\\1 ON '), "
	    "  i.indkey::text, "
	    "  %s, i.indpred IS NOT NULL, 3 "
	    "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
	    "WHERE i.indrelid = ANY($1::oid[]) AND i.indisvalid AND NOT EXISTS ("
	    "  SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid "
	    "  AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')) "
	    "ORDER BY 1, 8, 2", nkeys, nkeys);
	if (rc == PS_OK)
		rc = pg_exec(src->sql, r, err, "describing constraints and indexes", sql.data, 1, oids);
	else
		ps_error_set(err, rc, "constraint query too long");
	ps_buf_free(&sql);
	return rc;
}

/* --- describe: building one definition ------------------------------------ */

/* Maps the first nkeys attnums of an int2vector text ("1 3 0") to column
 * positions. Returns how many were mapped, 0 when any key is an expression
 * (attnum 0) or a column the def leaves out. */
static int map_index_keys(const char *indkey, int nkeys, const int *attnums, int ncols,
                          int *out)
{
	const char *p = indkey;

	if (nkeys <= 0 || nkeys > MAX_KEYS)
		return 0;
	for (int k = 0; k < nkeys; k++) {
		char *next;
		long attnum = strtol(p, &next, 10);
		int pos = -1;

		if (next == p || attnum <= 0)
			return 0;
		for (int i = 0; i < ncols; i++)
			if (attnums[i] == attnum)
				pos = i;
		if (pos < 0)
			return 0;
		out[k] = pos;
		p = next;
	}
	return nkeys;
}

/* Fills def->constraints from rows [begin, end) of r; attnums maps the
 * def's column positions to attribute numbers. */
static int build_constraints(ps_table_def *def, const PGresult *r, int begin, int end,
                             const int *attnums, int ncols)
{
	int rc = PS_OK, pos[MAX_KEYS];

	def->constraints = calloc((size_t)(end - begin) + 1, sizeof(ps_constraint_def));
	if (!def->constraints)
		return PS_ENOMEM;
	for (int row = begin; rc == PS_OK && row < end; row++) {
		ps_constraint_def *k = &def->constraints[def->nconstraints];
		char kind = PQgetvalue(r, row, K_KIND)[0];
		int n = 0;

		def->nconstraints++;
		k->kind = kind;
		k->name = dup_or_null(r, row, K_NAME, &rc);
		k->sql = dup_or_null(r, row, K_SQL, &rc);
		/* A partial index on plain columns still gets ncols = 0: its column
		 * list alone would describe a different (stricter) index. */
		if (kind != 'c' && !PQgetisnull(r, row, K_INDKEY) && PQgetvalue(r, row, K_PARTIAL)[0] != 't')
			n = map_index_keys(PQgetvalue(r, row, K_INDKEY),
			                   (int)strtol(PQgetvalue(r, row, K_NKEYS), NULL, 10), attnums,
			                   ncols, pos);
		if (n > 0) {
			k->cols = malloc((size_t)n * sizeof(int));
			if (!k->cols)
				rc = PS_ENOMEM;
			else
				memcpy(k->cols, pos, (size_t)n * sizeof(int));
			k->ncols = k->cols ? n : 0;
		}
		if (kind == 'p')
			def->has_primary_key = n > 0;
	}
	return rc;
}

/* `"schema"."name"` of a column's sequence, or NULL. */
static char *quoted_sequence(PGconn *conn, const PGresult *r, int row, int *rc)
{
	ps_buf q;
	int qrc;

	if (PQgetisnull(r, row, C_SEQSCHEMA))
		return NULL;
	ps_buf_init(&q, 1024);
	qrc = pg_quote_ident(conn, &q, PQgetvalue(r, row, C_SEQSCHEMA));
	if (qrc == PS_OK)
		qrc = ps_buf_putc(&q, '.');
	if (qrc == PS_OK)
		qrc = pg_quote_ident(conn, &q, PQgetvalue(r, row, C_SEQNAME));
	if (qrc != PS_OK) {
		*rc = qrc;
		ps_buf_free(&q);
		return NULL;
	}
	return ps_buf_detach(&q);
}

/* A generated column of row `row`, after `position` copied columns. */
static int build_generated(ps_generated_def *g, const PGresult *r, int row, int position)
{
	int rc = PS_OK;

	g->name = dup_or_null(r, row, C_NAME, &rc);
	g->sql_type = dup_or_null(r, row, C_SQLTYPE, &rc);
	g->expr = dup_or_null(r, row, C_DEFAULT, &rc);
	g->collation = dup_or_null(r, row, C_COLLATION, &rc);
	g->comment = dup_or_null(r, row, C_COMMENT, &rc);
	g->position = position;
	return rc;
}

/* Fills def->columns and def->table's columns from rows [begin, end) of r,
 * and def->generated with the generated columns (note 1); attnums receives
 * each copied column's attnum. */
static int build_columns(PGconn *conn, ps_table_def *def, const PGresult *r, int begin,
                         int end, int *attnums)
{
	ps_table *t = def->table;
	int i = 0, rc = PS_OK;

	for (int row = begin; rc == PS_OK && row < end; row++) {
		ps_column_def *c;
		uint32_t type = value_oid(r, row, C_TYPE);

		if (PQgetvalue(r, row, C_GENERATED)[0] != '\0') {
			rc = build_generated(&def->generated[def->ngenerated++], r, row, i);
			continue;
		}
		c = &def->columns[i];
		attnums[i] = (int)strtol(PQgetvalue(r, row, C_ATTNUM), NULL, 10);
		rc = ps_table_set_column(t, i, PQgetvalue(r, row, C_NAME), type,
		                         (int32_t)strtol(PQgetvalue(r, row, C_TYPMOD), NULL, 10),
		                         pgo_type_class(type), false);
		c->sql_type = dup_or_null(r, row, C_SQLTYPE, &rc);
		c->user_type = PQgetvalue(r, row, C_USERTYPE)[0] == 't';
		c->default_expr = dup_or_null(r, row, C_DEFAULT, &rc);
		c->not_null = PQgetvalue(r, row, C_NOTNULL)[0] == 't';
		c->identity = PQgetvalue(r, row, C_IDENTITY)[0];
		c->sequence = quoted_sequence(conn, r, row, &rc);
		c->collation = dup_or_null(r, row, C_COLLATION, &rc);
		c->identity_options = dup_or_null(r, row, C_IDOPTIONS, &rc);
		c->comment = dup_or_null(r, row, C_COMMENT, &rc);
		c->collation_class = PQgetisnull(r, row, C_COLLCLASS) ? PS_COLLATION_DEFAULT
		                     : (uint8_t)strtol(PQgetvalue(r, row, C_COLLCLASS), NULL, 10);
		c->ordinal = attnums[i];
		/* rows older than the column: its missing value, else NULL when it
		 * has no default, else unknown (a volatile default, an identity, or
		 * a default set after it was added) */
		if (PQgetvalue(r, row, C_HASMISSING)[0] == 't') {
			c->fill = PS_FILL_VALUE;
			c->fill_value = dup_or_null(r, row, C_MISSING, &rc);
		} else {
			c->fill = c->default_expr || c->identity ? PS_FILL_UNKNOWN : PS_FILL_NULL;
		}
		if (rc == PS_OK && !PQgetisnull(r, row, C_LABELS))
			rc = pg_labels_parse(PQgetvalue(r, row, C_LABELS), &c->labels, &c->nlabels);
		i++;
	}
	return rc;
}

/* Marks the primary key's columns in def->table (tabledef.h: is_key is the
 * PRIMARY KEY in a def), or without one the replica identity index's. */
static void mark_key(ps_table_def *def)
{
	const int *keys;
	int nkeys;

	pg_primary_key(def, &keys, &nkeys);
	for (int k = 0; k < nkeys; k++)
		def->table->columns[keys[k]].is_key = true;
	if (nkeys > 0 || !def->identity_index)
		return;
	for (int i = 0; i < def->nconstraints; i++) {
		const ps_constraint_def *k = &def->constraints[i];

		if (k->name && strcmp(k->name, def->identity_index) == 0)
			for (int c = 0; c < k->ncols; c++)
				def->table->columns[k->cols[c]].is_key = true;
	}
}

typedef struct describe_results {
	PGresult *tables, *columns, *constraints, *partitions;
} describe_results;

/* Fills def->partitions from the rows of q->partitions under def's table. */
static int build_partitions(ps_table_def *def, const PGresult *r)
{
	int begin, end, rc = PS_OK;

	rows_of(r, def->table->id, &begin, &end);
	if (end == begin)
		return PS_OK;
	def->partitions = calloc((size_t)(end - begin), sizeof(ps_partition_def));
	if (!def->partitions)
		return PS_ENOMEM;
	for (int row = begin; rc == PS_OK && row < end; row++) {
		ps_partition_def *p = &def->partitions[def->npartitions++];
		double tuples = strtod(PQgetvalue(r, row, P_TUPLES), NULL);

		p->schema = dup_or_null(r, row, P_SCHEMA, &rc);
		p->name = dup_or_null(r, row, P_NAME, &rc);
		p->parent_schema = dup_or_null(r, row, P_PSCHEMA, &rc);
		p->parent_name = dup_or_null(r, row, P_PNAME, &rc);
		p->bound = dup_or_null(r, row, P_BOUND, &rc);
		p->partition_by = dup_or_null(r, row, P_PARTKEY, &rc);
		p->comment = dup_or_null(r, row, P_COMMENT, &rc);
		p->leaf = PQgetvalue(r, row, P_LEAF)[0] == 't';
		p->attached = PQgetvalue(r, row, P_ATTACHED)[0] == 't';
		p->estimated_rows = tuples < 0 ? -1 : (int64_t)llround(tuples);
		p->estimated_bytes = strtoll(PQgetvalue(r, row, P_BYTES), NULL, 10);
	}
	return rc;
}

/* Builds the def of row `row` of q->tables. */
static int build_def(ps_source *src, const describe_results *q, int row, ps_table_def **out,
                     ps_error *err)
{
	ps_table_def *def = calloc(1, sizeof(*def));
	uint32_t oid = value_oid(q->tables, row, T_OID);
	int cb, ce, kb, ke, ncols = 0, rc = PS_ENOMEM;
	int *attnums = NULL;
	double tuples;

	*out = NULL;
	rows_of(q->columns, oid, &cb, &ce);
	rows_of(q->constraints, oid, &kb, &ke);
	for (int i = cb; i < ce; i++) {
		if (PQgetvalue(q->columns, i, C_GENERATED)[0] == '\0')
			ncols++;
		else
			ps_log_info("table %s.%s: generated column %s is left out of the copied columns "
			            "(PostgreSQL does not replicate generated columns); a PostgreSQL target "
			            "computes it", PQgetvalue(q->tables, row, T_SCHEMA),
			            PQgetvalue(q->tables, row, T_NAME), PQgetvalue(q->columns, i, C_NAME));
	}
	if (!def)
		goto cleanup;
	def->table = ps_table_new(oid, ncols);
	def->engine = strdup("postgresql");
	if (def->table)
		def->table->engine = "postgresql";
	def->columns = calloc((size_t)ncols + 1, sizeof(ps_column_def));
	def->generated = calloc((size_t)(ce - cb - ncols) + 1, sizeof(ps_generated_def));
	attnums = calloc((size_t)ncols + 1, sizeof(int));
	if (!def->table || !def->engine || !def->columns || !def->generated || !attnums)
		goto cleanup;
	rc = PS_OK;
	def->comment = dup_or_null(q->tables, row, T_COMMENT, &rc);
	def->partition_by = dup_or_null(q->tables, row, T_PARTKEY, &rc);
	def->identity_index = dup_or_null(q->tables, row, T_IDENT_INDEX, &rc);
	if (rc != PS_OK)
		goto cleanup;
	rc = ps_table_set_names(def->table, PQgetvalue(q->tables, row, T_SCHEMA),
	                        PQgetvalue(q->tables, row, T_NAME));
	def->table->replica_identity = PQgetvalue(q->tables, row, T_IDENT)[0];
	if (rc == PS_OK)
		rc = build_columns(src->sql, def, q->columns, cb, ce, attnums);
	if (rc == PS_OK)
		rc = build_constraints(def, q->constraints, kb, ke, attnums, ncols);
	if (rc == PS_OK && def->partition_by)
		rc = build_partitions(def, q->partitions);
	if (rc != PS_OK)
		goto cleanup;
	mark_key(def);
	tuples = strtod(PQgetvalue(q->tables, row, T_TUPLES), NULL);
	def->estimated_rows = tuples < 0 ? -1 : (int64_t)llround(tuples);
	def->estimated_bytes = strtoll(PQgetvalue(q->tables, row, T_BYTES), NULL, 10);
	for (size_t i = 0; src->table_insert_only && i < src->ntable_oids; i++)
		if (src->table_oids[i] == oid)
			def->insert_only = src->table_insert_only[i];
	*out = def;
	def = NULL;
cleanup:
	if (rc != PS_OK)
		ps_error_set(err, rc, "out of memory describing %s.%s",
		             PQgetvalue(q->tables, row, T_SCHEMA), PQgetvalue(q->tables, row, T_NAME));
	free(attnums);
	ps_table_def_free(def);
	return rc;
}

static int server_version(ps_source *src, int *version, ps_error *err)
{
	PGresult *r = NULL;
	int rc = pg_exec(src->sql, &r, err, "reading the server version",
	                 "SELECT current_setting('server_version_num')::int", 0, NULL);

	if (rc == PS_OK)
		*version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return rc;
}

int pg_describe(ps_source *src, ps_table_def ***defs, size_t *n, ps_error *err)
{
	*defs = NULL;
	*n = 0;
	if (!src->table_oids)
		return ps_error_set(err, PS_EINVAL, "describe needs prepare to select the tables first");
	return pg_describe_oids(src, src->table_oids, src->ntable_oids, defs, n, err);
}

int pg_describe_oids(ps_source *src, const uint32_t *table_oids, size_t ntables,
                     ps_table_def ***defs, size_t *n, ps_error *err)
{
	describe_results q = {NULL, NULL, NULL, NULL};
	ps_table_def **out = NULL;
	const char *params[1];
	size_t count = 0;
	int version = 0, rc;
	ps_buf oids;

	*defs = NULL;
	*n = 0;
	ps_buf_init(&oids, 64u << 20);
	rc = oid_array(table_oids, ntables, &oids);
	if (rc != PS_OK) {
		ps_error_set(err, rc, "too many tables");
		goto cleanup;
	}
	params[0] = oids.data;
	rc = server_version(src, &version, err);
	if (rc == PS_OK)
		rc = query_tables(src, params, &q.tables, err);
	if (rc == PS_OK)
		rc = query_columns(src, version, params, &q.columns, err);
	if (rc == PS_OK)
		rc = query_constraints(src, version, params, &q.constraints, err);
	if (rc == PS_OK)
		rc = query_partitions(src, params, &q.partitions, err);
	if (rc != PS_OK)
		goto cleanup;
	if ((size_t)PQntuples(q.tables) < ntables)
		ps_log_warn("%zu of the %zu selected tables no longer exist and are not described",
		            ntables - (size_t)PQntuples(q.tables), ntables);
	out = calloc((size_t)PQntuples(q.tables) + 1, sizeof(*out));
	if (!out) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (int row = 0; rc == PS_OK && row < PQntuples(q.tables); row++) {
		rc = build_def(src, &q, row, &out[count], err);
		if (rc == PS_OK)
			pg_ddl_seed(src, out[count++]);
	}
	if (rc == PS_OK)
		rc = pg_schema_requires(src, out, count, err);
	if (rc == PS_OK) {
		*defs = out;
		*n = count;
		out = NULL;
	}
cleanup:
	for (size_t i = 0; out && i < count; i++)
		ps_table_def_free(out[i]);
	free(out);
	PQclear(q.tables);
	PQclear(q.columns);
	PQclear(q.constraints);
	PQclear(q.partitions);
	ps_buf_free(&oids);
	return rc;
}

/* --- split ------------------------------------------------------------------ */

/* How many chunks a table of rows rows is cut into (at least 1). */
static int64_t chunk_count(int64_t rows, int64_t chunk_rows)
{
	int64_t n = rows / chunk_rows + (rows % chunk_rows != 0);

	return n > SPLIT_MAX_BOUNDS + 1 ? SPLIT_MAX_BOUNDS + 1 : n;
}

/* SELECT k1, k2 FROM "s"."t" [TABLESAMPLE method ($1)] ORDER BY k1, k2 */
static int sample_sql(ps_source *src, ps_buf *sql, const ps_table_def *def, const int *keys,
                      int nkeys, const char *method)
{
	int rc = PS_OK;

	pg_put(&rc, sql, "SELECT ");
	pg_put_columns(&rc, src->sql, sql, def->table, keys, nkeys);
	pg_put(&rc, sql, " FROM ");
	pg_put_table(&rc, src->sql, sql, def->table);
	if (method) {
		pg_put(&rc, sql, " TABLESAMPLE ");
		pg_put(&rc, sql, method);
		pg_put(&rc, sql, " ($1::float8)");
	}
	pg_put(&rc, sql, " ORDER BY ");
	pg_put_columns(&rc, src->sql, sql, def->table, keys, nkeys);
	return rc;
}

/* Copies sampled key row `row` of r into b. */
static int bound_from_row(const PGresult *r, int row, int nkeys, ps_key_bound *b)
{
	b->values = calloc((size_t)nkeys, sizeof(char *));
	if (!b->values)
		return PS_ENOMEM;
	b->nvalues = nkeys;
	for (int k = 0; k < nkeys; k++) {
		b->values[k] = strdup(PQgetvalue(r, row, k));
		if (!b->values[k])
			return PS_ENOMEM;
	}
	return PS_OK;
}

int pg_split(ps_source *src, const ps_table_def *def, int64_t chunk_rows,
             ps_key_bound **bounds, size_t *nbounds, ps_error *err)
{
	ps_key_bound *out = NULL;
	const int *keys;
	int nkeys, nsamples, rc;
	int64_t nchunks, want;
	PGresult *r = NULL;
	const char *method = NULL, *params[1];
	char percent[32];
	size_t nout = 0;
	ps_buf sql;

	*bounds = NULL;
	*nbounds = 0;
	pg_primary_key(def, &keys, &nkeys);
	if (nkeys == 0 || chunk_rows <= 0 || def->estimated_rows <= chunk_rows)
		return PS_OK;
	nchunks = chunk_count(def->estimated_rows, chunk_rows);
	want = nchunks * SPLIT_KEYS_PER_CHUNK;
	if (want > SPLIT_MAX_SAMPLES)
		want = SPLIT_MAX_SAMPLES;
	if (want < def->estimated_rows) {
		double share = (double)want / (double)def->estimated_rows;

		method = def->estimated_rows >= SPLIT_SYSTEM_ROWS ? "SYSTEM" : "BERNOULLI";
		/* SYSTEM takes whole pages: ~100 keys may come from two pages, and
		 * bounds spaced by so few pages make chunks several times apart in
		 * size (at 3M rows, one of 13 chunks held a quarter of the table and
		 * copied alone at the end). Sample enough pages per chunk too. */
		if (method[0] == 'S' && def->estimated_bytes > 0) {
			double pages = (double)def->estimated_bytes / SPLIT_PAGE_BYTES;
			double by_pages = (double)nchunks * SPLIT_PAGES_PER_CHUNK / pages;
			double most = (double)SPLIT_MAX_SAMPLES / (double)def->estimated_rows;

			if (by_pages > most)
				by_pages = most;
			if (by_pages > share)
				share = by_pages < 1.0 ? by_pages : 1.0;
		}
		snprintf(percent, sizeof(percent), "%.6f", 100.0 * share);
	}
	params[0] = percent;
	ps_buf_init(&sql, 1u << 20);
	rc = sample_sql(src, &sql, def, keys, nkeys, method);
	if (rc != PS_OK) {
		ps_error_set(err, rc, "sampling statement too long");
		goto cleanup;
	}
	rc = pg_exec(src->sql, &r, err, "sampling the primary key", sql.data, method ? 1 : 0,
	             method ? params : NULL);
	if (rc != PS_OK)
		goto cleanup;
	nsamples = PQntuples(r);
	if (nsamples < nchunks)
		nchunks = nsamples + 1;   /* every sample becomes a bound */
	out = calloc((size_t)nchunks, sizeof(*out));
	if (!out) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* Bound k (1 .. nchunks-1) is sample floor(k * nsamples / nchunks): with
	 * nsamples >= nchunks the positions grow by at least one each step.
	 * With fewer samples every sample is a bound. */
	for (int64_t k = 1; k < nchunks; k++) {
		int64_t at = nsamples >= nchunks ? k * nsamples / nchunks : k - 1;

		rc = bound_from_row(r, (int)at, nkeys, &out[nout]);
		nout++;
		if (rc != PS_OK) {
			ps_error_set(err, rc, "out of memory");
			goto cleanup;
		}
	}
	if (nout > 0) {
		*bounds = out;
		*nbounds = nout;
		out = NULL;
	}
cleanup:
	for (size_t i = 0; out && i < nout; i++)
		ps_key_bound_clear(&out[i]);
	free(out);
	PQclear(r);
	ps_buf_free(&sql);
	return rc;
}

/* --- exported snapshots ---------------------------------------------------- */

int pg_snapshot_export(ps_source *src, char *name, size_t name_len, char *point,
                       size_t point_len, ps_error *err)
{
	char slot[64];
	PGresult *r = NULL;
	uint64_t lsn;
	ps_buf cmd;
	int rc;

	pg_snapshot_release(src, NULL);   /* one exported snapshot at a time */
	/* Slot names have at most 63 characters: shorten the job's slot name
	 * to leave room for the suffix. */
	snprintf(slot, sizeof(slot), "%.*s_snap_%ld", 40, src->slot, (long)getpid());
	ps_buf_init(&cmd, 1024);
	rc = pg_connect(&src->snap, src->url, &src->parsed, src->password, true, src->app_name, err);
	if (rc != PS_OK)
		goto cleanup;
	ps_buf_puts(&cmd, "CREATE_REPLICATION_SLOT ");
	pg_quote_ident(src->snap, &cmd, slot);
	ps_buf_puts(&cmd, " TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT");
	r = PQexec(src->snap, cmd.data);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQnfields(r) < 3 ||
	    PQgetisnull(r, 0, 2)) {
		rc = pg_result_error(err, src->snap, r, "creating a temporary slot to export a snapshot");
		goto cleanup;
	}
	if (pgo_lsn_parse(PQgetvalue(r, 0, 1), &lsn) != PS_OK) {
		rc = ps_error_set(err, PS_EPROTO, "temporary slot's consistent point '%s' is not an LSN",
		                  PQgetvalue(r, 0, 1));
		goto cleanup;
	}
	if ((size_t)snprintf(name, name_len, "%s", PQgetvalue(r, 0, 2)) >= name_len) {
		rc = ps_error_set(err, PS_ETOOBIG, "snapshot name '%s' does not fit in %zu bytes",
		                  PQgetvalue(r, 0, 2), name_len);
		goto cleanup;
	}
	pgo_lsn_format(lsn, point, point_len);
	ps_log_info("exported snapshot %s at %s (temporary slot %s)", name, point, slot);
cleanup:
	PQclear(r);
	ps_buf_free(&cmd);
	if (rc != PS_OK)
		pg_snapshot_release(src, NULL);
	return rc;
}

int pg_snapshot_release(ps_source *src, ps_error *err)
{
	if (src->snap) {
		PQfinish(src->snap);   /* the temporary slot goes with the session */
		src->snap = NULL;
	}
	/* prepare's snapshot ends with the next command on repl (start, drop or
	 * close); after this nobody is told its name again */
	src->snapshot[0] = '\0';
	return PS_OK;
}
