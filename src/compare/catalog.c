/*
 * catalog.c — which tables to compare, their columns and key, and whether
 * the target has them.
 *
 * The source's catalogue is the reference: its ordinary and partitioned
 * tables (no partitions: their parent is compared), outside the system
 * schemas and penstock's own. Columns are the non-dropped, non-generated
 * ones in attnum order (what a job copies). The key is the primary key, else
 * the unique index (not partial, no expressions) on the fewest NOT NULL
 * columns; a table with neither is compared by count and multiset.
 *
 * Every pattern must match at least one table: a typo is an error, not an
 * empty, "equal" comparison. The target must have each table and each
 * column (extra target columns are not compared).
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compare/cmp_internal.h"
#include "sink/sqlite/sqlite_typemap.h"
#include "util/pgconn.h"

void ps__cmp_table_free(cmp_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->ncols; i++) {
		if (t->cols)
			free(t->cols[i]);
		if (t->qcols)
			free(t->qcols[i]);
		if (t->types)
			free(t->types[i]);
	}
	free(t->cols);
	free(t->qcols);
	free(t->types);
	free(t->oids);
	free(t->kind);
	free(t->storage);
	free(t->collatable);
	free(t->key);
	free(t->key_source);
	free(t->schema);
	free(t->name);
	free(t->qname);
	free(t->target);
	free(t->qtarget);
	memset(t, 0, sizeof(*t));
}

void ps__cmp_tables_free(cmp_table *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		ps__cmp_table_free(&t[i]);
	free(t);
}

static char *quoted(const char *a, const char *b)
{
	ps_buf q;

	ps_buf_init(&q, 4096);
	if (a) {
		ps__cmp_quote(&q, a);
		ps_buf_putc(&q, '.');
	}
	ps__cmp_quote(&q, b);
	return ps_buf_detach(&q);
}

static int load_columns(cmp_end *src, cmp_table *t, const char *oid, ps_error *err)
{
	const char *params[1] = {oid};
	PGresult *res = NULL;
	int rc, n;

	rc = pg_exec(src->pg, &res, err, "reading columns",
	             "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
	             "CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, "
	             "a.attcollation <> 0, a.attnum "
	             "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
	             "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
	             "AND a.attgenerated = '' ORDER BY a.attnum", 1, params);
	if (rc != PS_OK)
		return rc;
	n = PQntuples(res);
	t->cols = calloc((size_t)n + 1, sizeof(char *));
	t->qcols = calloc((size_t)n + 1, sizeof(char *));
	t->types = calloc((size_t)n + 1, sizeof(char *));
	t->oids = calloc((size_t)n + 1, sizeof(uint32_t));
	t->kind = calloc((size_t)n + 1, 1);
	t->storage = calloc((size_t)n + 1, 1);
	t->collatable = calloc((size_t)n + 1, sizeof(bool));
	if (!t->cols || !t->qcols || !t->types || !t->oids || !t->kind || !t->storage ||
	    !t->collatable) {
		PQclear(res);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	t->ncols = n;
	for (int i = 0; i < n; i++) {
		ps_column col = {PQgetvalue(res, i, 0), 0, -1, PS_TYPE_TEXT, false};

		t->cols[i] = strdup(PQgetvalue(res, i, 0));
		t->qcols[i] = quoted(NULL, PQgetvalue(res, i, 0));
		t->types[i] = strdup(PQgetvalue(res, i, 1));
		t->oids[i] = (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10);
		t->kind[i] = ps__cmp_kind_of_oid(t->oids[i]);
		col.type_id = t->oids[i];
		t->storage[i] = ps_typemap_sqlite("postgresql", &col, NULL);
		t->collatable[i] = PQgetvalue(res, i, 3)[0] == 't';
		if (!t->cols[i] || !t->qcols[i] || !t->types[i]) {
			PQclear(res);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
	}
	PQclear(res);
	return PS_OK;
}

/* attnum -> column index, by name (columns were read in attnum order). */
static int load_key(cmp_end *src, cmp_table *t, const char *oid, ps_error *err)
{
	const char *params[1] = {oid};
	PGresult *res = NULL;
	int rc, n;
	char *names, *next = NULL, *tok;

	rc = pg_exec(src->pg, &res, err, "reading the key",
	             "SELECT i.indisprimary, ci.relname, "
	             "(SELECT string_agg(a.attname, E'\\x1f' ORDER BY k.ord) "
	             "   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
	             "   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	             "   WHERE k.ord <= i.indnkeyatts) "
	             "FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid "
	             "WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid "
	             "AND i.indpred IS NULL AND i.indexprs IS NULL "
	             "AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
	             "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	             "  WHERE k.ord <= i.indnkeyatts AND (NOT a.attnotnull OR a.attgenerated <> '')) "
	             "ORDER BY i.indisprimary DESC, i.indnkeyatts, ci.relname LIMIT 1", 1, params);
	if (rc != PS_OK)
		return rc;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 2)) {
		PQclear(res);
		return PS_OK;
	}
	names = strdup(PQgetvalue(res, 0, 2));
	t->key = calloc((size_t)t->ncols + 1, sizeof(int));
	if (PQgetvalue(res, 0, 0)[0] == 't')
		t->key_source = strdup("primary key");
	else if (asprintf(&t->key_source, "unique index %s", PQgetvalue(res, 0, 1)) < 0)
		t->key_source = NULL;
	PQclear(res);
	if (!names || !t->key || !t->key_source) {
		free(names);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	n = 0;
	for (tok = names; tok; tok = next) {
		int c = -1;

		next = strchr(tok, '\x1f');
		if (next)
			*next++ = '\0';
		for (int i = 0; i < t->ncols; i++)
			if (strcmp(t->cols[i], tok) == 0)
				c = i;
		if (c < 0 || n >= t->ncols) {
			n = 0;
			break;
		}
		t->key[n++] = c;
	}
	t->nkey = n;
	free(names);
	return PS_OK;
}

static int check_target(cmp_end *tgt, cmp_table *t, ps_error *err)
{
	char **names = NULL;
	int n = 0, rc = PS_OK;
	ps_buf missing;

	ps_buf_init(&missing, 8192);
	if (tgt->is_sqlite) {
		rc = ps__cmp_lite_columns(tgt, t->target, &names, &n, err);
	} else {
		const char *params[1] = {t->qtarget};
		PGresult *res = NULL;
		rc = pg_exec(tgt->pg, &res, err, "reading the target's columns",
		             "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) "
		             "AND attnum > 0 AND NOT attisdropped", 1, params);
		if (rc == PS_OK) {
			n = PQntuples(res);
			names = calloc((size_t)n + 1, sizeof(char *));
			for (int i = 0; names && i < n; i++)
				names[i] = strdup(PQgetvalue(res, i, 0));
			if (!names)
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		PQclear(res);
	}
	if (rc != PS_OK)
		goto cleanup;
	if (n == 0) {
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target (looked for %s)",
		                  t->schema, t->name, t->target);
		goto cleanup;
	}
	for (int c = 0; c < t->ncols; c++) {
		bool found = false;
		for (int i = 0; i < n && !found; i++)
			found = names[i] && (tgt->is_sqlite ? strcasecmp(names[i], t->cols[c]) == 0
			                                    : strcmp(names[i], t->cols[c]) == 0);
		if (!found)
			ps_buf_printf(&missing, "%s%s", missing.len ? ", " : "", t->cols[c]);
	}
	if (missing.len)
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s: the target table %s has no column %s",
		                  t->schema, t->name, t->target, missing.data);
cleanup:
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	ps_buf_free(&missing);
	return rc;
}

static bool matches(const char *pattern, const char *schema, const char *name)
{
	char full[1024];

	snprintf(full, sizeof(full), "%s.%s", schema, name);
	if (strchr(pattern, '.'))
		return fnmatch(pattern, full, 0) == 0;
	return strcmp(schema, "public") == 0 && fnmatch(pattern, name, 0) == 0;
}

static int fill_table(cmp_end *src, cmp_end *tgt, cmp_table *t, const char *oid,
                      const char *schema, const char *name, ps_error *err)
{
	int rc;

	t->schema = strdup(schema);
	t->name = strdup(name);
	t->qname = quoted(schema, name);
	if (tgt->is_sqlite) {
		/* the SQLite sink's naming: public.t -> t, s.t -> "s.t" */
		if (strcmp(schema, "public") == 0)
			t->target = strdup(name);
		else if (asprintf(&t->target, "%s.%s", schema, name) < 0)
			t->target = NULL;
		t->qtarget = t->target ? quoted(NULL, t->target) : NULL;
	} else {
		if (asprintf(&t->target, "%s.%s", schema, name) < 0)
			t->target = NULL;
		t->qtarget = quoted(schema, name);
	}
	if (!t->schema || !t->name || !t->qname || !t->target || !t->qtarget)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = load_columns(src, t, oid, err);
	if (rc == PS_OK)
		rc = load_key(src, t, oid, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "source table %s.%s", schema, name);
	if (rc == PS_OK)
		rc = check_target(tgt, t, err);
	return rc;
}

int ps__cmp_catalog(cmp_end *src, cmp_end *tgt, const char *const *patterns, size_t npatterns,
                    cmp_table **out, size_t *nout, ps_error *err)
{
	PGresult *res = NULL;
	cmp_table *tables = NULL;
	size_t n = 0;
	bool *used = NULL;
	int rc, rows;

	*out = NULL;
	*nout = 0;
	rc = pg_exec(src->pg, &res, err, "listing tables",
	             "SELECT c.oid, n.nspname, c.relname FROM pg_class c "
	             "JOIN pg_namespace n ON n.oid = c.relnamespace "
	             "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
	             "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'penstock') "
	             "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 2, 3", 0, NULL);
	if (rc != PS_OK) {
		ps_error_add_context(err, "source");
		return rc;
	}
	rows = PQntuples(res);
	tables = calloc((size_t)rows + 1, sizeof(*tables));
	used = calloc(npatterns + 1, sizeof(bool));
	if (!tables || !used) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (int r = 0; rc == PS_OK && r < rows; r++) {
		const char *schema = PQgetvalue(res, r, 1), *name = PQgetvalue(res, r, 2);
		bool want = npatterns == 0;

		for (size_t p = 0; p < npatterns; p++)
			if (matches(patterns[p], schema, name)) {
				used[p] = true;
				want = true;
			}
		if (!want)
			continue;
		rc = fill_table(src, tgt, &tables[n++], PQgetvalue(res, r, 0), schema, name, err);
	}
	for (size_t p = 0; rc == PS_OK && p < npatterns; p++)
		if (!used[p])
			rc = ps_error_set(err, PS_EINVAL, "--tables: no table of the source matches '%s'",
			                  patterns[p]);
	if (rc == PS_OK && n == 0)
		rc = ps_error_set(err, PS_EINVAL, "the source has no table to compare");
cleanup:
	PQclear(res);
	free(used);
	if (rc != PS_OK) {
		ps__cmp_tables_free(tables, n);
		return rc;
	}
	*out = tables;
	*nout = n;
	return PS_OK;
}
