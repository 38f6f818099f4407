/*
 * catalog.c — which tables to compare, their columns and key, and whether
 * the target has them.
 *
 * The source side's catalogue is the reference: list_tables gives the
 * candidates (PostgreSQL: ordinary and partitioned tables outside the system
 * schemas and penstock's own), describe their columns (what a job copies)
 * and key. Here they are filtered by --tables, and the target side says
 * whether it has each table and column (by its own naming rule: SQLite's
 * names, case-insensitive columns).
 *
 * Every pattern must match at least one table: a typo is an error, not an
 * empty, "equal" comparison. The target must have each table and each
 * column (extra target columns are not compared).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/cmp_internal.h"

static void side_free(cmp_table_side *s)
{
	if (s->data) {
		if (s->free)
			s->free(s->data);
		else
			free(s->data);
	}
	s->data = NULL;
	s->free = NULL;
}

void ps__cmp_table_set_side(cmp_table *t, int role, void *data, void (*free_fn)(void *))
{
	side_free(&t->side[role]);
	t->side[role].data = data;
	t->side[role].free = free_fn;
}

void ps__cmp_table_free(cmp_table *t)
{
	if (!t)
		return;
	for (int i = 0; t->cols && i < t->ncols; i++)
		free(t->cols[i]);
	free(t->cols);
	free(t->type_id);
	free(t->kind);
	free(t->collatable);
	free(t->key);
	free(t->key_source);
	free(t->schema);
	free(t->name);
	free(t->target);
	side_free(&t->side[CMP_SOURCE]);
	side_free(&t->side[CMP_TARGET]);
	memset(t, 0, sizeof(*t));
}

void ps__cmp_tables_free(cmp_table *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		ps__cmp_table_free(&t[i]);
	free(t);
}

static bool matches(const char *pattern, const char *schema, const char *name)
{
	char full[1024];

	snprintf(full, sizeof(full), "%s.%s", schema, name);
	if (strchr(pattern, '.'))
		return fnmatch(pattern, full, 0) == 0;
	return strcmp(schema, "public") == 0 && fnmatch(pattern, name, 0) == 0;
}

static int check_target(cmp_side *tgt, cmp_table *t, ps_error *err)
{
	bool exists = false, *has = calloc((size_t)t->ncols + 1, sizeof(bool));
	ps_buf missing;
	int rc;

	ps_buf_init(&missing, 8192);
	if (!has) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = tgt->ops->map_table(tgt, t, &exists, has, err);
	if (rc != PS_OK)
		goto cleanup;
	if (!exists) {
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s does not exist in the target (looked for %s)",
		                  t->schema, t->name, t->target ? t->target : "?");
		goto cleanup;
	}
	for (int c = 0; c < t->ncols; c++)
		if (!has[c])
			ps_buf_printf(&missing, "%s%s", missing.len ? ", " : "", t->cols[c]);
	if (missing.len)
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s: the target table %s has no column %s",
		                  t->schema, t->name, t->target ? t->target : "?", missing.data);
cleanup:
	free(has);
	ps_buf_free(&missing);
	return rc;
}

static int fill_table(cmp_side *src, cmp_side *tgt, cmp_table *t, ps_error *err)
{
	int rc = src->ops->describe(src, t, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "source table %s.%s", t->schema, t->name);
	if (rc == PS_OK)
		rc = check_target(tgt, t, err);
	return rc;
}

int ps__cmp_catalog(cmp_side *src, cmp_side *tgt, const char *const *patterns,
                    size_t npatterns, const char *const *exclude, size_t nexclude,
                    cmp_table **out, size_t *nout, ps_error *err)
{
	cmp_table *tables = NULL;
	size_t n = 0, listed = 0;
	bool *used = NULL;
	int rc;

	*out = NULL;
	*nout = 0;
	rc = src->ops->list_tables(src, &tables, &listed, err);
	if (rc != PS_OK) {
		ps_error_add_context(err, "source");
		return rc;
	}
	used = calloc(npatterns + 1, sizeof(bool));
	if (!used) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* Wanted tables move to the front, in the source's order; the others
	 * are freed (a freed or moved-from entry is all zeros). */
	for (size_t r = 0; rc == PS_OK && r < listed; r++) {
		bool want = npatterns == 0;

		for (size_t p = 0; p < npatterns; p++)
			if (matches(patterns[p], tables[r].schema, tables[r].name)) {
				used[p] = true;
				want = true;
			}
		for (size_t x = 0; want && x < nexclude; x++)
			want = !matches(exclude[x], tables[r].schema, tables[r].name);
		if (!want) {
			ps__cmp_table_free(&tables[r]);
			continue;
		}
		if (r != n) {
			tables[n] = tables[r];
			memset(&tables[r], 0, sizeof(tables[r]));
		}
		rc = fill_table(src, tgt, &tables[n++], err);
	}
	for (size_t p = 0; rc == PS_OK && p < npatterns; p++)
		if (!used[p])
			rc = ps_error_set(err, PS_EINVAL, "--tables: no table of the source matches '%s'",
			                  patterns[p]);
	if (rc == PS_OK && n == 0)
		rc = ps_error_set(err, PS_EINVAL, "the source has no table to compare");
cleanup:
	free(used);
	if (rc != PS_OK) {
		ps__cmp_tables_free(tables, listed);
		return rc;
	}
	*out = tables;
	*nout = n;
	return PS_OK;
}
