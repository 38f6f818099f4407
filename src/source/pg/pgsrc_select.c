/*
 * pgsrc_select.c — which tables a PostgreSQL job captures and through which
 * publication: the selection shared by prepare, retable and the prechecks,
 * the tables.keyless policy, and the job's two publications.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Candidates are ordinary and partitioned tables (relkind r, p) outside
 *    the system schemas and the penstock schema, matched with fnmatch on
 *    "schema.table" by an include pattern and by no exclude pattern. A
 *    partition whose ancestor is matched goes with that ancestor and is not
 *    a table of its own: `public.payment` means the parent with every
 *    partition, wherever the partitions live, and `public.*` does not select
 *    payment's partitions twice. A partition matched while none of its
 *    ancestors is becomes a table of its own.
 * 2. Each selected table is one of
 *      keyed     a primary key;
 *      identity  no primary key but REPLICA IDENTITY FULL or USING INDEX
 *                (a partitioned table: every leaf partition has one, since
 *                UPDATE and DELETE check the partition's own);
 *      keyless   neither: once published for UPDATE or DELETE, those
 *                statements fail *on the source*.
 * 3. tables.keyless decides what happens to a keyless table: insert_only
 *    (default) publishes it only for INSERT and TRUNCATE, through a second
 *    publication (`<publication>_inserts`, publish = 'insert, truncate'),
 *    so UPDATE and DELETE keep working on the source and are not captured;
 *    refuse refuses the job as before; replica_identity_full sets REPLICA
 *    IDENTITY FULL on it (on each leaf of a partitioned table) and captures
 *    it whole. A snapshot job (load_only) publishes no keyless table at all:
 *    it copies it under the snapshot and never reads its changes.
 * 4. Both publications always exist while the job does (the stream names
 *    both, and pgoutput fails on a publication it cannot find), both with
 *    publish_via_partition_root = true: a partitioned table's changes come
 *    under the parent's name and columns, whichever partition they hit.
 *    They are created or changed together in one transaction.
 * 7. Least privilege (docs/privileges.md): a publication that exists and
 *    that this role does not own was made by an administrator for a role
 *    with only REPLICATION and SELECT. penstock never changes it (it could
 *    not) and never drops it; it uses it when it publishes exactly the
 *    tables the job needs, with the job's actions, via the partition root,
 *    without row filters, column lists or whole schemas — anything else
 *    could hide changes — and otherwise refuses, naming the difference and
 *    the statements its owner runs (pg_publication_foreign).
 * 5. The listing query is the same for prepare and the prechecks; the
 *    prechecks read its extra columns (privileges, owner).
 * 6. Signatures (issue 15): each selected table gets a 64-bit hash of its
 *    OID, name, whether it is keyless and, for a partitioned table, the
 *    OIDs, names and bounds of every partition under it; the selection
 *    gets one of them all. selection_check lists the tables again and
 *    compares: a table created, dropped, renamed, moved, attached or
 *    detached, or one that gained or lost a key, changes it.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_internal.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/pgconn.h"
#include "util/str.h"

/* Columns of PG_TABLES_SQL (pg_internal.h). */
const char *const PG_TABLES_SQL =
	"SELECT n.nspname, c.relname, c.relreplident, "
	"  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
	"  c.oid, c.relkind, "
	/* the ancestors of a partition, nearest first */
	"  CASE WHEN c.relispartition THEN ARRAY(SELECT a.relid::oid FROM pg_partition_ancestors(c.oid) a "
	"    WHERE a.relid <> c.oid)::text ELSE '{}' END, "
	/* a partitioned table has a replica identity when every leaf has one */
	"  CASE WHEN c.relkind = 'p' THEN NOT EXISTS (SELECT 1 FROM pg_partition_tree(c.oid) t "
	"    JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf AND l.relreplident NOT IN ('f', 'i')) "
	"    ELSE c.relreplident IN ('f', 'i') END, "
	"  has_table_privilege(c.oid, 'SELECT'), pg_has_role(c.relowner, 'USAGE'), "
	"  pg_get_userbyid(c.relowner), pg_get_expr(c.relpartbound, c.oid) "
	"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	"WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', "
	"'penstock') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2";

static bool matches_any(char *const *pats, size_t n, const char *qualified)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], qualified, 0) == 0)
			return true;
	return false;
}

bool pg_selected(char **include, size_t ninclude, char **exclude, size_t nexclude,
                 const char *schema, const char *name)
{
	char qualified[300];

	snprintf(qualified, sizeof(qualified), "%s.%s", schema, name);
	return matches_any(include, ninclude, qualified) && !matches_any(exclude, nexclude, qualified);
}

/* Whether row i's OID is in the sorted oids. */
static bool oid_in(const uint32_t *oids, size_t n, uint32_t oid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (oids[mid] == oid)
			return true;
		if (oids[mid] < oid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_oid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int pg_tables_match(const PGresult *r, char *const *include, size_t ninclude,
                    char *const *exclude, size_t nexclude, bool *selected)
{
	int nrows = PQntuples(r);
	uint32_t *matched = calloc((size_t)nrows + 1, sizeof(uint32_t));
	size_t nmatched = 0;
	char qualified[300];

	if (!matched)
		return PS_ENOMEM;
	for (int i = 0; i < nrows; i++) {
		snprintf(qualified, sizeof(qualified), "%s.%s", PQgetvalue(r, i, PG_T_SCHEMA),
		         PQgetvalue(r, i, PG_T_NAME));
		selected[i] = matches_any(include, ninclude, qualified) &&
		              !matches_any(exclude, nexclude, qualified);
		if (selected[i])
			matched[nmatched++] = (uint32_t)strtoul(PQgetvalue(r, i, PG_T_OID), NULL, 10);
	}
	qsort(matched, nmatched, sizeof(uint32_t), cmp_oid);
	/* note 1: a partition goes with its nearest matched ancestor */
	for (int i = 0; i < nrows; i++) {
		const char *p = PQgetvalue(r, i, PG_T_ANCESTORS);

		while (selected[i] && *p) {
			char *end;
			unsigned long oid;

			p += strspn(p, "{},");
			if (!*p)
				break;
			oid = strtoul(p, &end, 10);
			if (end == p)
				break;
			if (oid_in(matched, nmatched, (uint32_t)oid))
				selected[i] = false;
			p = end;
		}
	}
	free(matched);
	return PS_OK;
}

int pg_table_class(const PGresult *r, int row)
{
	if (PQgetvalue(r, row, PG_T_HAS_PK)[0] == 't')
		return PG_CLASS_KEYED;
	if (PQgetvalue(r, row, PG_T_IDENTITY)[0] == 't')
		return PG_CLASS_IDENTITY;
	return PG_CLASS_KEYLESS;
}

/* --- signatures (note 6) ----------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	h ^= 0xff;   /* a separator no text holds */
	return h * 0x100000001b3ull;
}

#define FNV_BASIS 0xcbf29ce484222325ull

/* The selected row of r that row's partition belongs to (its nearest
 * selected ancestor), or -1. oids/rows: the selected rows' OIDs, sorted. */
static int owner_row(const PGresult *r, int row, const uint32_t *oids, const int *rows, size_t n)
{
	const char *p = PQgetvalue(r, row, PG_T_ANCESTORS);

	while (*p) {
		char *end;
		unsigned long oid;
		size_t lo = 0, hi = n;

		p += strspn(p, "{},");
		if (!*p)
			break;
		oid = strtoul(p, &end, 10);
		if (end == p)
			break;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (oids[mid] == (uint32_t)oid)
				return rows[mid];
			if (oids[mid] < (uint32_t)oid)
				lo = mid + 1;
			else
				hi = mid;
		}
		p = end;
	}
	return -1;
}

int pg_selection_sigs(const PGresult *r, const bool *selected, uint64_t *row_sigs,
                      uint64_t *all)
{
	int nrows = PQntuples(r);
	uint32_t *oids = calloc((size_t)nrows + 1, sizeof(uint32_t));
	int *rows = calloc((size_t)nrows + 1, sizeof(int));
	size_t n = 0;

	if (!oids || !rows) {
		free(oids);
		free(rows);
		return PS_ENOMEM;
	}
	for (int i = 0; i < nrows; i++) {
		row_sigs[i] = 0;
		if (!selected[i])
			continue;
		row_sigs[i] = fnv(fnv(fnv(fnv(FNV_BASIS, PQgetvalue(r, i, PG_T_OID)),
		                          PQgetvalue(r, i, PG_T_SCHEMA)), PQgetvalue(r, i, PG_T_NAME)),
		                  pg_table_class(r, i) == PG_CLASS_KEYLESS ? "k" : "-");
		oids[n] = (uint32_t)strtoul(PQgetvalue(r, i, PG_T_OID), NULL, 10);
		rows[n++] = i;
	}
	/* sorted by OID, to find a partition's selected ancestor */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && oids[j - 1] > oids[j]; j--) {
			uint32_t o = oids[j];
			int w = rows[j];
			oids[j] = oids[j - 1];
			rows[j] = rows[j - 1];
			oids[j - 1] = o;
			rows[j - 1] = w;
		}
	for (int i = 0; i < nrows; i++) {
		int owner;
		if (selected[i] || PQgetvalue(r, i, PG_T_ANCESTORS)[1] == '}')
			continue;
		owner = owner_row(r, i, oids, rows, n);
		if (owner >= 0)
			row_sigs[owner] = fnv(fnv(fnv(fnv(row_sigs[owner], PQgetvalue(r, i, PG_T_OID)),
			                              PQgetvalue(r, i, PG_T_SCHEMA)),
			                          PQgetvalue(r, i, PG_T_NAME)), PQgetvalue(r, i, PG_T_BOUND));
	}
	*all = FNV_BASIS;
	for (int i = 0; i < nrows; i++)
		if (selected[i])
			*all = (*all ^ row_sigs[i]) * 0x100000001b3ull;
	free(oids);
	free(rows);
	return PS_OK;
}

void pg_selection_free(pg_selection *sel)
{
	for (size_t i = 0; i < sel->n; i++) {
		free(sel->names[i]);
		free(sel->schemas[i]);
		free(sel->relnames[i]);
	}
	free(sel->names);
	free(sel->schemas);
	free(sel->relnames);
	free(sel->oids);
	free(sel->has_key);
	free(sel->klass);
	free(sel->sigs);
	memset(sel, 0, sizeof(*sel));
}

int pg_select(ps_source *src, char **include, size_t ninclude, char **exclude, size_t nexclude,
              pg_selection *sel, ps_error *err)
{
	PGresult *r = NULL;
	bool *selected = NULL;
	uint64_t *row_sigs = NULL;
	size_t rows;
	int rc;

	memset(sel, 0, sizeof(*sel));
	rc = pg_exec(src->sql, &r, err, "listing tables", PG_TABLES_SQL, 0, NULL);
	if (rc != PS_OK)
		goto cleanup;
	rows = (size_t)PQntuples(r) + 1;
	selected = calloc(rows, sizeof(bool));
	sel->oids = calloc(rows, sizeof(uint32_t));
	sel->has_key = calloc(rows, sizeof(bool));
	sel->klass = calloc(rows, sizeof(int));
	sel->names = calloc(rows, sizeof(char *));
	sel->schemas = calloc(rows, sizeof(char *));
	sel->relnames = calloc(rows, sizeof(char *));
	sel->sigs = calloc(rows, sizeof(uint64_t));
	row_sigs = calloc(rows, sizeof(uint64_t));
	if (!selected || !sel->oids || !sel->has_key || !sel->klass || !sel->names ||
	    !sel->schemas || !sel->relnames || !sel->sigs || !row_sigs ||
	    pg_tables_match(r, include, ninclude, exclude, nexclude, selected) != PS_OK ||
	    pg_selection_sigs(r, selected, row_sigs, &sel->sig_all) != PS_OK) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		char qualified[300];
		size_t k = sel->n;

		if (!selected[i])
			continue;
		snprintf(qualified, sizeof(qualified), "%s.%s", PQgetvalue(r, i, PG_T_SCHEMA),
		         PQgetvalue(r, i, PG_T_NAME));
		sel->names[k] = strdup(qualified);
		sel->schemas[k] = strdup(PQgetvalue(r, i, PG_T_SCHEMA));
		sel->relnames[k] = strdup(PQgetvalue(r, i, PG_T_NAME));
		sel->n++;
		if (!sel->names[k] || !sel->schemas[k] || !sel->relnames[k]) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
		sel->oids[k] = (uint32_t)strtoul(PQgetvalue(r, i, PG_T_OID), NULL, 10);
		sel->sigs[k] = row_sigs[i];
		sel->klass[k] = pg_table_class(r, i);
		sel->has_key[k] = sel->klass[k] == PG_CLASS_KEYED;
	}
	if (sel->n == 0)
		rc = ps_error_set(err, PS_EINVAL,
		                  "tables.include matched no table in database '%s'; list tables with "
		                  "psql's \\dt *.* and fix the patterns (they are schema.table globs)",
		                  PQdb(src->sql));
cleanup:
	if (rc != PS_OK)
		pg_selection_free(sel);
	free(selected);
	free(row_sigs);
	PQclear(r);
	return rc;
}

void pg_selection_keep(ps_source *src, pg_selection *sel, bool *insert_only)
{
	ps_strv_free(src->table_names, src->ntable_oids);
	free(src->table_oids);
	free(src->table_insert_only);
	free(src->table_sigs);
	src->table_oids = sel->oids;
	src->table_insert_only = insert_only;
	src->table_names = ps_strv_copy(sel->names, sel->n);   /* NULL: names unknown */
	src->table_sigs = sel->sigs;
	src->ntable_oids = sel->n;
	src->sel_sig = sel->sig_all;
	sel->oids = NULL;
	sel->sigs = NULL;
}

int pg_selection_check(ps_source *src, bool *changed, ps_error *err)
{
	PGresult *r = NULL;
	bool *selected = NULL;
	uint64_t *row_sigs = NULL, all = 0;
	int rc;

	*changed = false;
	rc = pg_exec(src->sql, &r, err, "listing tables", PG_TABLES_SQL, 0, NULL);
	if (rc != PS_OK)
		return rc;
	selected = calloc((size_t)PQntuples(r) + 1, sizeof(bool));
	row_sigs = calloc((size_t)PQntuples(r) + 1, sizeof(uint64_t));
	if (!selected || !row_sigs ||
	    pg_tables_match(r, src->include, src->ninclude, src->exclude, src->nexclude,
	                    selected) != PS_OK ||
	    pg_selection_sigs(r, selected, row_sigs, &all) != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	else
		*changed = all != src->sel_sig;
	if (*changed)
		ps_log_debug("the tables the patterns select changed: taking them in");
	free(selected);
	free(row_sigs);
	PQclear(r);
	return rc;
}

/* --- tables.keyless (note 3) ------------------------------------------------ */

/* `"schema"."name"` of selected table i into b. */
static int put_selected(ps_source *src, ps_buf *b, const pg_selection *sel, size_t i)
{
	int rc = pg_quote_ident(src->sql, b, sel->schemas[i]);

	if (rc == PS_OK)
		rc = ps_buf_putc(b, '.');
	return rc == PS_OK ? pg_quote_ident(src->sql, b, sel->relnames[i]) : rc;
}

/* REPLICA IDENTITY FULL on keyless table i, or on each leaf partition
 * without one when it is partitioned. */
static int set_identity_full(ps_source *src, const pg_selection *sel, size_t i, ps_error *err)
{
	char oid[16];
	const char *params[1] = {oid};
	PGresult *r = NULL;
	ps_buf sql;
	int rc;

	snprintf(oid, sizeof(oid), "%u", sel->oids[i]);
	rc = pg_exec(src->sql, &r, err, "listing the partitions without a replica identity",
	             "SELECT n.nspname, c.relname FROM pg_partition_tree($1::oid) t "
	             "JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
	             "WHERE t.isleaf AND c.relreplident NOT IN ('f', 'i') "
	             "UNION SELECT n.nspname, c.relname FROM pg_class c "
	             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid "
	             "AND c.relkind = 'r' AND c.relreplident NOT IN ('f', 'i')", 1, params);
	ps_buf_init(&sql, 4096);
	for (int row = 0; rc == PS_OK && r && row < PQntuples(r); row++) {
		ps_buf_reset(&sql);
		ps_buf_puts(&sql, "ALTER TABLE ");
		pg_quote_ident(src->sql, &sql, PQgetvalue(r, row, 0));
		ps_buf_putc(&sql, '.');
		pg_quote_ident(src->sql, &sql, PQgetvalue(r, row, 1));
		if (ps_buf_puts(&sql, " REPLICA IDENTITY FULL") != PS_OK) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		rc = pg_exec(src->sql, NULL, err, "setting REPLICA IDENTITY FULL (tables.keyless)",
		             sql.data, 0, NULL);
		if (rc == PS_OK)
			ps_log_info("table %s.%s had no primary key or replica identity: set REPLICA "
			            "IDENTITY FULL on the source (tables.keyless replica_identity_full)",
			            PQgetvalue(r, row, 0), PQgetvalue(r, row, 1));
	}
	PQclear(r);
	ps_buf_free(&sql);
	return rc;
}

int pg_keyless_policy(ps_source *src, pg_selection *sel, ps_error *err)
{
	ps_buf bad;
	int rc = PS_OK;

	ps_buf_init(&bad, 4096);
	for (size_t i = 0; i < sel->n && rc == PS_OK; i++) {
		if (sel->klass[i] != PG_CLASS_KEYLESS || src->load_only)
			continue;
		if (src->keyless == PS_KEYLESS_REFUSE) {
			ps_buf_printf(&bad, "%s%s", bad.len ? ", " : "", sel->names[i]);
		} else if (src->keyless == PS_KEYLESS_FULL) {
			rc = set_identity_full(src, sel, i, err);
			if (rc == PS_OK)
				sel->klass[i] = PG_CLASS_IDENTITY;
		}
	}
	if (rc == PS_OK && bad.len)
		rc = ps_error_set(err, PS_EINVAL,
		                  "tables without a primary key or replica identity: %s. Publishing them "
		                  "would make UPDATE and DELETE fail on the source. Fix: add a primary key, "
		                  "or ALTER TABLE ... REPLICA IDENTITY FULL, or add them to tables.exclude "
		                  "(or let tables.keyless capture only their inserts: insert_only)",
		                  bad.data);
	ps_buf_free(&bad);
	return rc;
}

bool pg_selected_insert_only(const ps_source *src, size_t i, const pg_selection *sel)
{
	return sel->klass[i] == PG_CLASS_KEYLESS && !src->load_only;
}

/* --- publications (note 4) ------------------------------------------------- */

void pg_inserts_publication(const char *publication, char *out, size_t len)
{
	snprintf(out, len, "%.55s_inserts", publication);
}

/* The statements the owner of publication name runs to make it publish
 * list (quoted, comma-separated; may be empty) with publish (note 7). */
static void owner_fix(PGconn *conn, ps_buf *fix, const char *name, const char *list,
                      const char *publish)
{
	if (list[0]) {
		ps_buf_puts(fix, "ALTER PUBLICATION ");
		pg_quote_ident(conn, fix, name);
		ps_buf_printf(fix, " SET TABLE %s; ", list);
		ps_buf_puts(fix, "ALTER PUBLICATION ");
		pg_quote_ident(conn, fix, name);
	} else {
		ps_buf_puts(fix, "DROP PUBLICATION ");
		pg_quote_ident(conn, fix, name);
		ps_buf_puts(fix, "; CREATE PUBLICATION ");
		pg_quote_ident(conn, fix, name);
	}
	ps_buf_printf(fix, "%s (publish = '%s', publish_via_partition_root = true);",
	              list[0] ? " SET" : " WITH", publish);
}

int pg_publication_foreign(PGconn *conn, const char *name, const char *oids, const char *publish,
                           bool *exists, bool *foreign, ps_buf *why, ps_error *err)
{
	const char *params[2] = {name, oids};
	bool v15 = PQserverVersion(conn) >= 150000;
	PGresult *r = NULL;
	ps_buf q;
	int rc;

	*exists = *foreign = false;
	ps_buf_init(&q, 4096);
	ps_buf_printf(&q,
	    "SELECT p.puballtables, NOT pg_has_role(p.pubowner, 'USAGE'), "
	    "  p.pubowner::regrole::text, "
	    "  (SELECT coalesce(array_agg(prrelid ORDER BY prrelid), '{}') FROM pg_publication_rel "
	    "   WHERE prpubid = p.oid) = "
	    "  (SELECT coalesce(array_agg(o ORDER BY o), '{}') FROM unnest($2::oid[]) o), "
	    "  concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, "
	    "    CASE WHEN p.pubupdate THEN 'update' END, CASE WHEN p.pubdelete THEN 'delete' END, "
	    "    CASE WHEN p.pubtruncate THEN 'truncate' END), p.pubviaroot, %s, %s "
	    "FROM pg_publication p WHERE p.pubname = $1",
	    v15 ? "EXISTS (SELECT 1 FROM pg_publication_rel x WHERE x.prpubid = p.oid "
	          "AND (x.prqual IS NOT NULL OR x.prattrs IS NOT NULL))" : "false",
	    v15 ? "EXISTS (SELECT 1 FROM pg_publication_namespace x WHERE x.pnpubid = p.oid)"
	        : "false");
	rc = pg_exec(conn, &r, err, "looking up the publication", q.data, 2, params);
	ps_buf_free(&q);
	if (rc != PS_OK)
		return rc;
	*exists = PQntuples(r) > 0;
	*foreign = *exists && PQgetvalue(r, 0, 1)[0] == 't';
	if (*foreign) {
		const char *sep = "";
		if (PQgetvalue(r, 0, 0)[0] == 't') {
			ps_buf_puts(why, "it is FOR ALL TABLES");
			sep = "; ";
		} else if (PQgetvalue(r, 0, 3)[0] != 't') {
			ps_buf_puts(why, "it lists other tables than the job's");
			sep = "; ";
		}
		if (strcmp(PQgetvalue(r, 0, 4), publish) != 0) {
			ps_buf_printf(why, "%sit publishes '%s', the job needs '%s'", sep,
			              PQgetvalue(r, 0, 4), publish);
			sep = "; ";
		}
		if (PQgetvalue(r, 0, 5)[0] != 't') {
			ps_buf_printf(why, "%spublish_via_partition_root is off", sep);
			sep = "; ";
		}
		if (PQgetvalue(r, 0, 6)[0] == 't') {
			ps_buf_printf(why, "%sit has a row filter or a column list, which would hide "
			              "changes", sep);
			sep = "; ";
		}
		if (PQgetvalue(r, 0, 7)[0] == 't')
			ps_buf_printf(why, "%sit publishes whole schemas (TABLES IN SCHEMA)", sep);
		if (why->len)
			ps_buf_printf(why, " (owner %s)", PQgetvalue(r, 0, 2));
	}
	PQclear(r);
	return PS_OK;
}

/* Makes publication `name` publish exactly the tables in list (quoted,
 * comma-separated; may be empty; oids the same as a "{...}" array) with the
 * given actions. Inside the caller's transaction. A publication another
 * role owns is only checked (note 7). */
static int ensure_one(ps_source *src, const char *name, const char *list, const char *oids,
                      const char *publish, ps_error *err)
{
	const char *params[1] = {name};
	PGresult *r = NULL;
	ps_buf sql, why;
	bool exists, foreign;
	int rc;

	ps_buf_init(&why, 4096);
	rc = pg_publication_foreign(src->sql, name, oids, publish, &exists, &foreign, &why, err);
	if (rc == PS_OK && foreign && why.len) {
		ps_buf fix;
		ps_buf_init(&fix, 16u << 20);
		owner_fix(src->sql, &fix, name, list, publish);
		rc = ps_error_set(err, PS_EINVAL,
		                  "publication %s belongs to another role, so penstock uses it as it "
		                  "is, but it does not fit the job: %s. Have its owner run: %.400s "
		                  "Then run the job again (or recover it with strategy retry); or give "
		                  "the job a publication of its own (source.publication)",
		                  name, why.data, fix.data ? fix.data : "");
		ps_error_set_engine(err, "", "", PS_ERRCLASS_PERMISSION);
		ps_buf_free(&fix);
	} else if (rc == PS_OK && foreign) {
		ps_log_info("publication %s belongs to another role and publishes exactly the job's "
		            "tables: used as it is, never changed or dropped by penstock", name);
	}
	ps_buf_free(&why);
	if (rc != PS_OK || foreign)
		return rc;
	rc = pg_exec(src->sql, &r, err, "looking up the publication",
	             "SELECT puballtables FROM pg_publication WHERE pubname = $1", 1, params);
	if (rc != PS_OK)
		return rc;
	exists = PQntuples(r) > 0;
	if (exists && PQgetvalue(r, 0, 0)[0] == 't') {
		PQclear(r);
		return ps_error_set(err, PS_EINVAL,
		                    "publication %s is FOR ALL TABLES; penstock manages its own "
		                    "publication: drop it or set source.publication to another name", name);
	}
	PQclear(r);
	r = NULL;
	ps_buf_init(&sql, 16u << 20);
	pg_put(&rc, &sql, exists ? "ALTER PUBLICATION " : "CREATE PUBLICATION ");
	pg_put_ident(&rc, src->sql, &sql, name);
	if (!exists && list[0]) {
		pg_put(&rc, &sql, " FOR TABLE ");
		pg_put(&rc, &sql, list);
	}
	pg_put(&rc, &sql, exists ? " SET (publish = '" : " WITH (publish = '");
	pg_put(&rc, &sql, publish);
	pg_put(&rc, &sql, "', publish_via_partition_root = true)");
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "table list too long for one publication command");
		goto cleanup;
	}
	rc = pg_exec(src->sql, NULL, err, exists ? "updating the publication" : "creating the publication",
	             sql.data, 0, NULL);
	if (rc != PS_OK || !exists)
		goto cleanup;
	/* the tables: SET TABLE needs at least one, so an empty list drops the
	 * current ones */
	ps_buf_reset(&sql);
	if (list[0]) {
		pg_put(&rc, &sql, "ALTER PUBLICATION ");
		pg_put_ident(&rc, src->sql, &sql, name);
		pg_put(&rc, &sql, " SET TABLE ");
		pg_put(&rc, &sql, list);
	} else {
		rc = pg_exec(src->sql, &r, err, "listing the publication's tables",
		             "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables "
		             "WHERE pubname = $1", 1, params);
		for (int i = 0; rc == PS_OK && i < PQntuples(r); i++) {
			if (i == 0) {
				pg_put(&rc, &sql, "ALTER PUBLICATION ");
				pg_put_ident(&rc, src->sql, &sql, name);
				pg_put(&rc, &sql, " DROP TABLE ");
			}
			pg_put(&rc, &sql, i ? ", " : "");
			pg_put(&rc, &sql, PQgetvalue(r, i, 0));
		}
	}
	if (rc == PS_ETOOBIG || rc == PS_ENOMEM)
		rc = ps_error_set(err, rc, "table list too long for one publication command");
	else if (rc == PS_OK && sql.len)
		rc = pg_exec(src->sql, NULL, err, "updating the publication's tables", sql.data, 0, NULL);
cleanup:
	PQclear(r);
	ps_buf_free(&sql);
	return rc;
}

/* "1,2,3" made "{1,2,3}" (an oid[] literal). */
static int wrap_array(ps_buf *b)
{
	char *body = strdup(b->data ? b->data : "");
	int rc;

	if (!body)
		return PS_ENOMEM;
	ps_buf_reset(b);
	rc = ps_buf_printf(b, "{%s}", body);
	free(body);
	return rc;
}

int pg_publications_ensure(ps_source *src, const pg_selection *sel, ps_error *err)
{
	char inserts[PG_PUBNAME_MAX];
	ps_buf all, ins, all_oids, ins_oids;
	size_t nins = 0;
	int rc = PS_OK;

	pg_inserts_publication(src->publication, inserts, sizeof(inserts));
	ps_buf_init(&all, 16u << 20);
	ps_buf_init(&ins, 16u << 20);
	ps_buf_init(&all_oids, 1u << 20);
	ps_buf_init(&ins_oids, 1u << 20);
	for (size_t i = 0; i < sel->n && rc == PS_OK; i++) {
		bool keyless = sel->klass[i] == PG_CLASS_KEYLESS;
		ps_buf *b = keyless ? &ins : &all;
		ps_buf *o = keyless ? &ins_oids : &all_oids;

		if (keyless && src->load_only)
			continue;           /* note 3: a snapshot job never reads its changes */
		if (b->len)
			pg_put(&rc, b, ", ");
		if (rc == PS_OK)
			rc = put_selected(src, b, sel, i);
		if (rc == PS_OK)
			rc = ps_buf_printf(o, "%s%u", o->len ? "," : "", sel->oids[i]);
		nins += keyless;
	}
	if (rc == PS_OK)
		rc = wrap_array(&all_oids);
	if (rc == PS_OK)
		rc = wrap_array(&ins_oids);
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "table list too long for one publication command");
		goto cleanup;
	}
	rc = pg_exec(src->sql, NULL, err, "beginning the publication change", "BEGIN", 0, NULL);
	if (rc == PS_OK)
		rc = ensure_one(src, src->publication, all.data ? all.data : "", all_oids.data,
		                "insert, update, delete, truncate", err);
	if (rc == PS_OK)
		rc = ensure_one(src, inserts, ins.data ? ins.data : "", ins_oids.data,
		                "insert, truncate", err);
	if (rc == PS_OK)
		rc = pg_exec(src->sql, NULL, err, "committing the publication change", "COMMIT", 0, NULL);
	if (rc != PS_OK && PQtransactionStatus(src->sql) != PQTRANS_IDLE)
		PQclear(PQexec(src->sql, "ROLLBACK"));
	if (rc == PS_OK && nins)
		ps_log_warn("%zu table%s without a primary key or replica identity %s captured "
		            "insert-only (publication %s): their inserts and truncates are applied, "
		            "their updates and deletes are not (tables.keyless)", nins,
		            nins == 1 ? "" : "s", nins == 1 ? "is" : "are", inserts);
cleanup:
	ps_buf_free(&all);
	ps_buf_free(&ins);
	ps_buf_free(&all_oids);
	ps_buf_free(&ins_oids);
	return rc;
}
