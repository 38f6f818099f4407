/*
 * sqlite_table.c — the SQLite sink's knowledge of target tables: names, the
 * target's catalogue, the per-table cache and its statements.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Naming. Source table schema.name is SQLite table `name` when the schema
 *     is "public", else the single identifier `schema.name` ("sales.orders"):
 *     SQLite has no schemas, and attached databases would split one target
 *     into several files. SQLite resolves names case-insensitively, so
 *     source tables or columns that differ only in case meet in one target.
 *  2. The cache is keyed by source schema + name and remembers the ps_table
 *     (`layout`, one reference held so the pointer cannot be reused) whose
 *     column list the maps were built for. A change whose table pointer is
 *     the layout hits at once. A new ps_table for the same relation (the
 *     source re-described it) is compared column by column (name, type OID,
 *     type class): the same list just takes over as the layout; a different
 *     one drops the entry's statements and maps and rebuilds them from the
 *     target's catalogue.
 *  3. The key is the target's PRIMARY KEY (PRAGMA table_info), never the
 *     change's is_key flags (which mark the source's replica identity). Every
 *     target key column must be a source column, or rows could not be found.
 *     A table without one is matched on the old row's values with IS, one
 *     row at a time through its rowid (under a name no column shadows).
 *  4. Statements are cached per table by kind and column mask (sqlite_
 *     internal.h), at most SQ_STMT_CACHE of them, replaced round-robin. Their
 *     parameters are numbered by source column (?i+1 for the new value of
 *     column i, ?ncols+i+1 for the value its WHERE matches), so one binding
 *     routine serves every variant.
 *  5. table_prepare and table_finish (sqlite_ddl.c) change the target's
 *     schema: they drop the cache entries of the table they touch
 *     (ps__sqlite_forget_target), so the next write reads the catalogue
 *     again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/sqlite/sqlite_typemap.h"
#include "sink/sqlite/sqlite_internal.h"
#include "util/log.h"

/* ==== names =============================================================== */

char *ps__sqlite_join_dot(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *out = malloc(la + lb + 2);

	if (!out)
		return NULL;
	memcpy(out, a, la);
	out[la] = '.';
	memcpy(out + la + 1, b, lb + 1);
	return out;
}

char *ps__sqlite_target_name(const char *schema, const char *name)
{
	if (!name)
		name = "";
	if (!schema || !schema[0] || strcmp(schema, "public") == 0)
		return strdup(name);
	return ps__sqlite_join_dot(schema, name);
}

/* ident quoted, as a malloc'd string. */
static char *quoted(ps_sink *k, const char *ident)
{
	ps_buf_reset(&k->sql);
	if (ps_sql_quote_ident(&k->sql, ident) != 0)
		return NULL;
	return strdup(k->sql.data);
}

/* ==== the target's catalogue ============================================== */

void ps__sqlite_target_cols_free(sq_target_cols *tc)
{
	for (int i = 0; i < tc->n; i++)
		free(tc->name[i]);
	free(tc->name);
	free(tc->pk);
	memset(tc, 0, sizeof(*tc));
}

int ps__sqlite_read_target(ps_sink *k, const char *target, sq_target_cols *tc, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	bool oom = false;
	int rc, cap = 0;

	memset(tc, 0, sizeof(*tc));
	rc = sqlite3_prepare_v2(k->db, "SELECT name, pk FROM pragma_table_info(?1, 'main')", -1,
	                        &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	while (rc == SQLITE_ROW && !oom) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (tc->n == cap) {
			int ncap = cap ? cap * 2 : 16;
			char **names = realloc(tc->name, (size_t)ncap * sizeof(*names));
			int *pk = names ? realloc(tc->pk, (size_t)ncap * sizeof(*pk)) : NULL;

			if (names)
				tc->name = names;
			if (pk)
				tc->pk = pk;
			cap = ncap;
			oom = !names || !pk;
		}
		if (!oom) {
			tc->name[tc->n] = strdup(name ? name : "");
			oom = !tc->name[tc->n];
		}
		if (!oom) {
			tc->pk[tc->n] = sqlite3_column_int(st, 1);
			tc->n++;
			rc = sqlite3_step(st);
		}
	}
	if (oom)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	else if (rc != SQLITE_DONE)
		rc = ps__sqlite_fail(k, rc, err, "cannot read the columns of table %s", target);
	else
		rc = 0;
	sqlite3_finalize(st);
	if (rc != 0)
		ps__sqlite_target_cols_free(tc);
	return rc;
}

static int find_target_col(const sq_target_cols *tc, const char *name)
{
	for (int i = 0; i < tc->n; i++)
		if (sqlite3_stricmp(tc->name[i], name) == 0)
			return i;
	return -1;
}

int ps__sqlite_list_missing(const ps_table *t, const sq_target_cols *tc, ps_buf *b)
{
	int n = 0;

	for (int i = 0; i < t->ncolumns; i++) {
		const char *name = t->columns[i].name ? t->columns[i].name : "";

		if (find_target_col(tc, name) >= 0)
			continue;
		if (n++ > 0)
			ps_buf_puts(b, ", ");
		ps_buf_puts(b, name);
	}
	return n;
}

/* ==== the cache =========================================================== */

static void stmt_clear(sq_stmt *s)
{
	sqlite3_finalize(s->stmt);
	free(s->mask);
	memset(s, 0, sizeof(*s));
}

/* Drops everything built from the layout; keeps the source identity. */
static void table_clear(sq_table *tb)
{
	for (int i = 0; i < SQ_STMT_CACHE; i++)
		stmt_clear(&tb->stmts[i]);
	for (int i = 0; tb->qcol && i < tb->ncols; i++)
		free(tb->qcol[i]);
	free(tb->qcol);
	free(tb->storage);
	free(tb->is_pk);
	free(tb->pk);
	free(tb->target);
	free(tb->qtarget);
	ps_table_unref(tb->layout);
	tb->qcol = NULL;
	tb->storage = NULL;
	tb->is_pk = NULL;
	tb->pk = NULL;
	tb->target = NULL;
	tb->qtarget = NULL;
	tb->layout = NULL;
	tb->ncols = 0;
	tb->npk = 0;
	tb->rowid = NULL;
	tb->last_stmt = 0;
	tb->next_evict = 0;
}

static void table_free(sq_table *tb)
{
	if (!tb)
		return;
	table_clear(tb);
	free(tb->schema);
	free(tb->name);
	free(tb);
}

void ps__sqlite_tables_free(ps_sink *k)
{
	for (int i = 0; i < k->ntables; i++)
		table_free(k->tables[i]);
	free(k->tables);
	k->tables = NULL;
	k->ntables = 0;
	k->cap_tables = 0;
	k->last = NULL;
}

static void table_remove(ps_sink *k, int i)
{
	if (k->last == k->tables[i])
		k->last = NULL;
	table_free(k->tables[i]);
	memmove(&k->tables[i], &k->tables[i + 1],
	        (size_t)(k->ntables - i - 1) * sizeof(k->tables[0]));
	k->ntables--;
}

void ps__sqlite_forget_target(ps_sink *k, const char *target)
{
	for (int i = k->ntables - 1; i >= 0; i--)
		if (k->tables[i]->target && sqlite3_stricmp(k->tables[i]->target, target) == 0)
			table_remove(k, i);
}

int ps__sqlite_scratch(ps_sink *k, int ncols, ps_error *err)
{
	uint8_t *mask;
	const ps_value **where;

	if (ncols <= k->scratch_cols)
		return 0;
	mask = realloc(k->mask, 2 * (size_t)ncols);
	if (mask)
		k->mask = mask;
	where = mask ? realloc(k->where, (size_t)ncols * sizeof(*where)) : NULL;
	if (!mask || !where)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	k->where = where;
	k->scratch_cols = ncols;
	return 0;
}

static bool same_layout(const ps_table *a, const ps_table *b)
{
	if (a->ncolumns != b->ncolumns)
		return false;
	for (int i = 0; i < a->ncolumns; i++) {
		const ps_column *x = &a->columns[i], *y = &b->columns[i];

		if (x->type_id != y->type_id || x->type_class != y->type_class ||
		    strcmp(x->name ? x->name : "", y->name ? y->name : "") != 0)
			return false;
	}
	return true;
}

/* Note 3: the target's key, as source column numbers in key order. */
static int map_key(sq_table *tb, const ps_table *t, const sq_target_cols *tc, ps_error *err)
{
	static const char *const rowid_names[] = {"rowid", "_rowid_", "oid"};

	for (int j = 0; j < tc->n; j++)
		if (tc->pk[j] > 0)
			tb->npk++;
	if (tb->npk == 0) {
		for (size_t r = 0; r < sizeof(rowid_names) / sizeof(rowid_names[0]); r++) {
			if (find_target_col(tc, rowid_names[r]) < 0) {
				tb->rowid = rowid_names[r];
				break;
			}
		}
		return 0;
	}
	tb->pk = calloc((size_t)tb->npk, sizeof(*tb->pk));
	if (!tb->pk)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int p = 1; p <= tb->npk; p++) {
		int j = 0, src = -1;

		while (j < tc->n && tc->pk[j] != p)
			j++;
		for (int i = 0; j < tc->n && i < t->ncolumns; i++)
			if (sqlite3_stricmp(t->columns[i].name ? t->columns[i].name : "", tc->name[j]) == 0)
				src = i;
		if (src < 0)
			return ps_error_set(err, PS_EINVAL,
			                    "table %s: primary key column %s of the target is not a column "
			                    "of the source table, so rows cannot be found by key",
			                    tb->target, j < tc->n ? tc->name[j] : "?");
		tb->pk[p - 1] = src;
		tb->is_pk[src] = true;
	}
	return 0;
}

/* Fills tb (cleared, with its source identity) for layout t. */
static int table_build(ps_sink *k, sq_table *tb, ps_table *t, ps_error *err)
{
	sq_target_cols tc = {0};
	ps_buf missing;
	int n = t->ncolumns, rc;

	ps_buf_init(&missing, 64 << 10);
	tb->target = ps__sqlite_target_name(t->schema, t->name);
	tb->qtarget = tb->target ? quoted(k, tb->target) : NULL;
	tb->storage = calloc((size_t)n + 1, sizeof(*tb->storage));
	tb->qcol = calloc((size_t)n + 1, sizeof(*tb->qcol));
	tb->is_pk = calloc((size_t)n + 1, sizeof(*tb->is_pk));
	if (!tb->target || !tb->qtarget || !tb->storage || !tb->qcol || !tb->is_pk) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	tb->ncols = n;
	rc = ps__sqlite_read_target(k, tb->target, &tc, err);
	if (rc != 0)
		goto cleanup;
	if (tc.n == 0) {
		rc = ps_error_set(err, PS_EINVAL,
		                  "table %s does not exist in the target (source table %s.%s); "
		                  "the initial load creates tables (target.create_tables)",
		                  tb->target, t->schema ? t->schema : "", t->name ? t->name : "");
		goto cleanup;
	}
	if (ps__sqlite_list_missing(t, &tc, &missing) > 0) {
		rc = ps_error_set(err, PS_EINVAL,
		                  "table %s in the target has no column %s of source table %s.%s",
		                  tb->target, missing.data, t->schema ? t->schema : "",
		                  t->name ? t->name : "");
		goto cleanup;
	}
	for (int i = 0; i < n; i++) {
		int j = find_target_col(&tc, t->columns[i].name ? t->columns[i].name : "");

		tb->storage[i] = ps_typemap_sqlite(t->engine, &t->columns[i], NULL);
		tb->qcol[i] = quoted(k, tc.name[j]);
		if (!tb->qcol[i]) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	rc = map_key(tb, t, &tc, err);
	if (rc == 0)
		rc = ps__sqlite_scratch(k, n, err);
	if (rc == 0)
		tb->layout = ps_table_ref(t);
cleanup:
	ps__sqlite_target_cols_free(&tc);
	ps_buf_free(&missing);
	return rc;
}

static bool same_source(const sq_table *tb, const ps_table *t)
{
	return strcmp(tb->schema, t->schema ? t->schema : "") == 0 &&
	       strcmp(tb->name, t->name ? t->name : "") == 0;
}

static int table_add(ps_sink *k, ps_table *t, sq_table **out, ps_error *err)
{
	sq_table *tb = calloc(1, sizeof(*tb));
	int rc;

	if (!tb)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	tb->schema = strdup(t->schema ? t->schema : "");
	tb->name = strdup(t->name ? t->name : "");
	if (!tb->schema || !tb->name) {
		table_free(tb);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (k->ntables == k->cap_tables) {
		int ncap = k->cap_tables ? k->cap_tables * 2 : 16;
		sq_table **tables = realloc(k->tables, (size_t)ncap * sizeof(*tables));

		if (!tables) {
			table_free(tb);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		k->tables = tables;
		k->cap_tables = ncap;
	}
	rc = table_build(k, tb, t, err);
	if (rc != 0) {
		table_free(tb);
		return rc;
	}
	k->tables[k->ntables++] = tb;
	*out = tb;
	return 0;
}

int ps__sqlite_table_for(ps_sink *k, ps_table *t, sq_table **out, ps_error *err)
{
	int rc;

	if (k->last && k->last->layout == t) {
		*out = k->last;
		return 0;
	}
	for (int i = 0; i < k->ntables; i++) {
		if (k->tables[i]->layout == t) {
			*out = k->last = k->tables[i];
			return 0;
		}
	}
	for (int i = 0; i < k->ntables; i++) {
		sq_table *tb = k->tables[i];

		if (!same_source(tb, t))
			continue;
		if (same_layout(tb->layout, t)) {
			ps_table_unref(tb->layout);
			tb->layout = ps_table_ref(t);
		} else {
			ps_log_debug("sink sqlite: table %s was re-described; rebuilding its statements",
			             tb->target);
			table_clear(tb);
			rc = table_build(k, tb, t, err);
			if (rc != 0) {
				table_remove(k, i);
				return rc;
			}
		}
		*out = k->last = tb;
		return 0;
	}
	rc = table_add(k, t, out, err);
	if (rc == 0)
		k->last = *out;
	return rc;
}

/* ==== statements ========================================================== */

static void put_param(sq_sql *o, int n)
{
	if (o->rc == 0)
		o->rc = ps_buf_printf(o->b, "?%d", n);
}

/* " WHERE ..." matching the columns in `match` (note 3, note 4). */
static void put_where(sq_sql *o, const sq_table *tb, const uint8_t *match)
{
	const char *sep = "";
	int n = tb->ncols;

	if (tb->npk > 0) {
		sq_put(o, " WHERE ");
		for (int p = 0; p < tb->npk; p++) {
			sq_put(o, sep);
			sq_put(o, tb->qcol[tb->pk[p]]);
			sq_put(o, " = ");
			put_param(o, n + tb->pk[p] + 1);
			sep = " AND ";
		}
		return;
	}
	sq_put(o, " WHERE ");
	sq_put(o, tb->rowid);
	sq_put(o, " = (SELECT ");
	sq_put(o, tb->rowid);
	sq_put(o, " FROM ");
	sq_put(o, tb->qtarget);
	sq_put(o, " WHERE ");
	for (int i = 0; i < n; i++) {
		if (!match[i])
			continue;
		sq_put(o, sep);
		sq_put(o, tb->qcol[i]);
		sq_put(o, " IS ");
		put_param(o, n + i + 1);
		sep = " AND ";
	}
	sq_put(o, " LIMIT 1)");
}

static void put_insert(sq_sql *o, const sq_table *tb, const uint8_t *set, bool upsert)
{
	const char *sep = "";
	bool any_update = false;

	sq_put(o, "INSERT INTO ");
	sq_put(o, tb->qtarget);
	sq_put(o, " (");
	for (int i = 0; i < tb->ncols; i++) {
		if (!set[i])
			continue;
		sq_put(o, sep);
		sq_put(o, tb->qcol[i]);
		sep = ", ";
	}
	sq_put(o, ") VALUES (");
	sep = "";
	for (int i = 0; i < tb->ncols; i++) {
		if (!set[i])
			continue;
		sq_put(o, sep);
		put_param(o, i + 1);
		sep = ", ";
	}
	sq_put(o, ")");
	if (!upsert)
		return;
	sq_put(o, " ON CONFLICT (");
	for (int p = 0; p < tb->npk; p++) {
		sq_put(o, p ? ", " : "");
		sq_put(o, tb->qcol[tb->pk[p]]);
	}
	sq_put(o, ") DO ");
	sep = "UPDATE SET ";
	for (int i = 0; i < tb->ncols; i++) {
		if (!set[i] || tb->is_pk[i])
			continue;
		sq_put(o, sep);
		sq_put(o, tb->qcol[i]);
		sq_put(o, " = excluded.");
		sq_put(o, tb->qcol[i]);
		sep = ", ";
		any_update = true;
	}
	if (!any_update)
		sq_put(o, "NOTHING");
}

static int build_sql(ps_sink *k, const sq_table *tb, uint8_t kind, const uint8_t *mask)
{
	sq_sql o = {&k->sql, 0};
	const char *sep = "";

	ps_buf_reset(&k->sql);
	switch (kind) {
	case SQ_INSERT:
	case SQ_UPSERT:
		put_insert(&o, tb, mask, kind == SQ_UPSERT);
		break;
	case SQ_UPDATE:
		sq_put(&o, "UPDATE ");
		sq_put(&o, tb->qtarget);
		sq_put(&o, " SET ");
		for (int i = 0; i < tb->ncols; i++) {
			if (!mask[i])
				continue;
			sq_put(&o, sep);
			sq_put(&o, tb->qcol[i]);
			sq_put(&o, " = ");
			put_param(&o, i + 1);
			sep = ", ";
		}
		put_where(&o, tb, mask + tb->ncols);
		break;
	case SQ_DELETE:
		sq_put(&o, "DELETE FROM ");
		sq_put(&o, tb->qtarget);
		put_where(&o, tb, mask + tb->ncols);
		break;
	default:
		sq_put(&o, "DELETE FROM ");
		sq_put(&o, tb->qtarget);
		break;
	}
	return o.rc;
}

int ps__sqlite_stmt_for(ps_sink *k, sq_table *tb, uint8_t kind, const uint8_t *mask,
                        sqlite3_stmt **out, ps_error *err)
{
	size_t mlen = 2 * (size_t)tb->ncols;
	sq_stmt *s = &tb->stmts[tb->last_stmt];
	int slot = -1, rc;

	if (s->kind == kind && memcmp(s->mask, mask, mlen) == 0) {
		*out = s->stmt;
		return 0;
	}
	for (int i = 0; i < SQ_STMT_CACHE; i++) {
		s = &tb->stmts[i];
		if (s->kind == kind && memcmp(s->mask, mask, mlen) == 0) {
			tb->last_stmt = i;
			*out = s->stmt;
			return 0;
		}
		if (s->kind == 0 && slot < 0)
			slot = i;
	}
	if (slot < 0) {
		slot = tb->next_evict;
		tb->next_evict = (tb->next_evict + 1) % SQ_STMT_CACHE;
		stmt_clear(&tb->stmts[slot]);
	}
	s = &tb->stmts[slot];
	rc = build_sql(k, tb, kind, mask);
	if (rc != 0)
		return ps_error_set(err, rc, "table %s: cannot build a statement", tb->target);
	s->mask = malloc(mlen + 1);
	if (!s->mask)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	memcpy(s->mask, mask, mlen);
	rc = ps__sqlite_prepare(k, &k->sql, true, &s->stmt, err);
	if (rc != 0) {
		stmt_clear(s);
		return rc;
	}
	s->kind = kind;
	tb->last_stmt = slot;
	*out = s->stmt;
	return 0;
}
