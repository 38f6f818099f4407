/*
 * test_compare_driver.c — the driver of `penstock compare` (compare.c,
 * resolve.c, catalog.c, sides.c) with no server: two in-memory sides,
 * registered for this test only (ps__cmp_sides_for_tests), holding rows in
 * arrays. Planted differences (missing, extra, different, in several
 * chunks, beyond either end) must be found through digests and bisection
 * down to the keys, repaired on the in-memory target, and then be gone.
 * The same data read through a side without digests must give the same
 * report, and the lookup of sides must refuse what it cannot do.
 *
 * The in-memory side follows the contract of cmp_side.h: values are
 * canonical text, text keys are ordered by bytes (CMP_SIDE_BYTE_ORDER),
 * integer keys as numbers; its digest is an FNV hash of the canonical rows
 * in key order, comparable only with itself ("memory-fnv").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/cmp_internal.h"

#define MEM_MAX_COLS 8

/* ==== the in-memory engine ================================================ */

typedef struct mem_table {
	const char *schema, *name;
	int ncols;
	const char *cols[MEM_MAX_COLS];
	uint8_t kind[MEM_MAX_COLS];
	int nkey;
	int key[MEM_MAX_COLS];
	char ***rows;              /* nrows rows of ncols strdup'd values (NULL: SQL NULL) */
	size_t nrows, cap;
} mem_table;

typedef struct mem_db {
	const char *name;          /* memory:<name> */
	mem_table t[4];
	int ntables;
	/* what the driver asked of it */
	int digests, key_ats, range_reads, key_reads, scans, repairs;
	size_t most_rows_read;     /* largest fetch_range answer */
	/* the digest sent, waiting for digest_get */
	int64_t pend_count;
	char pend_digest[64];
} mem_db;

static mem_db *g_dbs[2];

/* What a table is to one side: its mem_table and where each of the
 * compared columns (t->cols order) is in it. */
typedef struct mem_ref {
	mem_table *mt;
	int colmap[MEM_MAX_COLS];
} mem_ref;

static void mem_add(mem_table *mt, const char *const *vals)
{
	char **row = calloc((size_t)mt->ncols, sizeof(char *));

	assert_non_null(row);
	if (mt->nrows == mt->cap) {
		mt->cap = mt->cap ? mt->cap * 2 : 64;
		mt->rows = realloc(mt->rows, mt->cap * sizeof(*mt->rows));
		assert_non_null(mt->rows);
	}
	for (int c = 0; c < mt->ncols; c++)
		row[c] = vals[c] ? strdup(vals[c]) : NULL;
	mt->rows[mt->nrows++] = row;
}

static void mem_remove_at(mem_table *mt, size_t i)
{
	for (int c = 0; c < mt->ncols; c++)
		free(mt->rows[i][c]);
	free(mt->rows[i]);
	mt->rows[i] = mt->rows[--mt->nrows];
}

static void mem_free(mem_db *db)
{
	for (int i = 0; i < db->ntables; i++) {
		while (db->t[i].nrows)
			mem_remove_at(&db->t[i], 0);
		free(db->t[i].rows);
	}
	memset(db, 0, sizeof(*db));
}

static mem_table *mem_find(mem_db *db, const char *schema, const char *name)
{
	for (int i = 0; i < db->ntables; i++)
		if (strcmp(db->t[i].schema, schema) == 0 && strcmp(db->t[i].name, name) == 0)
			return &db->t[i];
	return NULL;
}

/* Row i of a table by id (first key column), or -1. */
static long mem_row_by_id(const mem_table *mt, const char *id)
{
	for (size_t i = 0; i < mt->nrows; i++)
		if (strcmp(mt->rows[i][0], id) == 0)
			return (long)i;
	return -1;
}

static void mem_set(mem_table *mt, const char *id, int col, const char *v)
{
	long i = mem_row_by_id(mt, id);

	assert_true(i >= 0);
	free(mt->rows[i][col]);
	mt->rows[i][col] = v ? strdup(v) : NULL;
}

static void mem_delete(mem_table *mt, const char *id)
{
	long i = mem_row_by_id(mt, id);

	assert_true(i >= 0);
	mem_remove_at(mt, (size_t)i);
}

static void mem_copy(mem_db *to, const mem_db *from, const char *name)
{
	*to = *from;
	to->name = name;
	for (int i = 0; i < from->ntables; i++) {
		to->t[i].rows = NULL;
		to->t[i].nrows = to->t[i].cap = 0;
		for (size_t r = 0; r < from->t[i].nrows; r++)
			mem_add(&to->t[i], (const char *const *)from->t[i].rows[r]);
	}
}

/* ---- key order: integers as numbers, anything else by its bytes ---- */

static int val_cmp(uint8_t kind, const char *a, const char *b)
{
	if (kind == CMP_INT) {
		long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10);
		return (x > y) - (x < y);
	}
	return strcmp(a, b);
}

static const char *cell(const mem_ref *ref, char **row, int c)
{
	return ref->colmap[c] < 0 ? NULL : row[ref->colmap[c]];
}

/* row's key against nkey values */
static int key_vs(const mem_ref *ref, const cmp_table *t, char **row, char *const *vals)
{
	for (int k = 0; k < t->nkey; k++) {
		int c = val_cmp(t->kind[t->key[k]], cell(ref, row, t->key[k]), vals[k]);
		if (c)
			return c;
	}
	return 0;
}

static const mem_ref *g_sort_ref;
static const cmp_table *g_sort_t;

static int row_order(const void *a, const void *b)
{
	char **ra = *(char **const *)a, **rb = *(char **const *)b;
	const cmp_table *t = g_sort_t;

	for (int k = 0; k < t->nkey; k++) {
		int c = val_cmp(t->kind[t->key[k]], cell(g_sort_ref, ra, t->key[k]),
		                cell(g_sort_ref, rb, t->key[k]));
		if (c)
			return c;
	}
	return 0;
}

/* The rows of (lo, hi] in key order (a malloc'd array of row pointers). */
static char ***range_rows(const mem_ref *ref, const cmp_table *t, const cmp_bound *lo,
                          const cmp_bound *hi, size_t *n)
{
	char ***v = calloc(ref->mt->nrows + 1, sizeof(*v));

	assert_non_null(v);
	*n = 0;
	for (size_t i = 0; i < ref->mt->nrows; i++) {
		char **row = ref->mt->rows[i];
		if ((!lo || key_vs(ref, t, row, lo->v) > 0) && (!hi || key_vs(ref, t, row, hi->v) <= 0))
			v[(*n)++] = row;
	}
	g_sort_ref = ref;
	g_sort_t = t;
	qsort(v, *n, sizeof(*v), row_order);
	return v;
}

static void row_vals(const mem_ref *ref, const cmp_table *t, char **row, const char **vals,
                     size_t *lens)
{
	for (int c = 0; c < t->ncols; c++) {
		vals[c] = cell(ref, row, c);
		lens[c] = vals[c] ? strlen(vals[c]) : 0;
	}
}

/* ==== the side ============================================================ */

static mem_db *db_of(cmp_side *s)
{
	return s->impl;
}

static const mem_ref *ref_of(cmp_side *s, const cmp_table *t)
{
	return t->side[s->role].data;
}

static int mem_open(cmp_side *s, const char *url, const char *password, ps_error *err)
{
	const char *name = strchr(url, ':') + 1;

	(void)password;
	snprintf(s->url.redacted, sizeof(s->url.redacted), "%s", url);
	for (int i = 0; i < 2; i++)
		if (g_dbs[i] && strcmp(g_dbs[i]->name, name) == 0)
			s->impl = g_dbs[i];
	if (!s->impl)
		return ps_error_set(err, PS_EINVAL, "no in-memory database '%s'", name);
	return PS_OK;
}

static void mem_close(cmp_side *s)
{
	s->impl = NULL;
}

static int mem_list_tables(cmp_side *s, cmp_table **out, size_t *n, ps_error *err)
{
	mem_db *db = db_of(s);
	cmp_table *v = calloc((size_t)db->ntables + 1, sizeof(*v));

	(void)err;
	assert_non_null(v);
	for (int i = 0; i < db->ntables; i++) {
		mem_ref *ref = calloc(1, sizeof(*ref));
		assert_non_null(ref);
		ref->mt = &db->t[i];
		for (int c = 0; c < MEM_MAX_COLS; c++)
			ref->colmap[c] = c;
		v[i].schema = strdup(db->t[i].schema);
		v[i].name = strdup(db->t[i].name);
		ps__cmp_table_set_side(&v[i], s->role, ref, NULL);
	}
	*out = v;
	*n = (size_t)db->ntables;
	return PS_OK;
}

static int mem_describe(cmp_side *s, cmp_table *t, ps_error *err)
{
	const mem_table *mt = ref_of(s, t)->mt;

	(void)err;
	t->ncols = mt->ncols;
	t->cols = calloc((size_t)mt->ncols + 1, sizeof(char *));
	t->type_id = calloc((size_t)mt->ncols + 1, sizeof(uint32_t));
	t->kind = calloc((size_t)mt->ncols + 1, 1);
	t->collatable = calloc((size_t)mt->ncols + 1, sizeof(bool));
	t->key = calloc((size_t)mt->ncols + 1, sizeof(int));
	for (int c = 0; c < mt->ncols; c++) {
		t->cols[c] = strdup(mt->cols[c]);
		t->kind[c] = mt->kind[c];
		t->collatable[c] = mt->kind[c] == CMP_TEXT;
	}
	t->nkey = mt->nkey;
	for (int k = 0; k < mt->nkey; k++)
		t->key[k] = mt->key[k];
	t->key_source = mt->nkey ? strdup("primary key") : NULL;
	return PS_OK;
}

static int mem_map_table(cmp_side *s, cmp_table *t, bool *exists, bool *has_col, ps_error *err)
{
	mem_table *mt = mem_find(db_of(s), t->schema, t->name);
	mem_ref *ref = calloc(1, sizeof(*ref));

	(void)err;
	assert_non_null(ref);
	ref->mt = mt;
	if (asprintf(&t->target, "%s.%s", t->schema, t->name) < 0)
		t->target = NULL;
	*exists = mt != NULL;
	for (int c = 0; c < t->ncols; c++) {
		ref->colmap[c] = -1;
		for (int i = 0; mt && i < mt->ncols; i++)
			if (strcmp(mt->cols[i], t->cols[c]) == 0)
				ref->colmap[c] = i;
		has_col[c] = ref->colmap[c] >= 0;
	}
	ps__cmp_table_set_side(t, s->role, ref, NULL);
	return PS_OK;
}

static int mem_count(cmp_side *s, const cmp_table *t, int64_t *n, ps_error *err)
{
	(void)err;
	*n = (int64_t)ref_of(s, t)->mt->nrows;
	return PS_OK;
}

static int mem_key_at(cmp_side *s, const cmp_table *t, const cmp_bound *lo, const cmp_bound *hi,
                      int64_t off, cmp_bound *out, bool *found, ps_error *err)
{
	const mem_ref *ref = ref_of(s, t);
	size_t n;
	char ***v = range_rows(ref, t, lo, hi, &n);

	(void)err;
	db_of(s)->key_ats++;
	assert_true(off >= 0);
	*found = (size_t)off < n;
	out->v = NULL;
	if (*found) {
		out->v = calloc((size_t)t->nkey + 1, sizeof(char *));
		for (int k = 0; k < t->nkey; k++)
			out->v[k] = strdup(cell(ref, v[off], t->key[k]));
	}
	free(v);
	return PS_OK;
}

static int mem_fetch_range(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                           const cmp_bound *hi, cmp_rows *out, ps_error *err)
{
	const mem_ref *ref = ref_of(s, t);
	const char *vals[MEM_MAX_COLS];
	size_t lens[MEM_MAX_COLS], n;
	char ***v = range_rows(ref, t, lo, hi, &n);
	int rc = PS_OK;

	db_of(s)->range_reads++;
	if (n > db_of(s)->most_rows_read)
		db_of(s)->most_rows_read = n;
	for (size_t i = 0; rc == PS_OK && i < n; i++) {
		row_vals(ref, t, v[i], vals, lens);
		rc = ps__cmp_rows_add(out, t, vals, lens, err);
	}
	free(v);
	return rc;
}

static int mem_fetch_keys(cmp_side *s, const cmp_table *t, char ***keys, size_t nkeys,
                          bool for_share, cmp_rows *out, ps_error *err)
{
	const mem_ref *ref = ref_of(s, t);
	const char *vals[MEM_MAX_COLS];
	size_t lens[MEM_MAX_COLS];
	int rc = PS_OK;

	assert_false(for_share);   /* no job here */
	db_of(s)->key_reads++;
	for (size_t k = 0; rc == PS_OK && k < nkeys; k++)
		for (size_t i = 0; rc == PS_OK && i < ref->mt->nrows; i++)
			if (key_vs(ref, t, ref->mt->rows[i], keys[k]) == 0) {
				row_vals(ref, t, ref->mt->rows[i], vals, lens);
				rc = ps__cmp_rows_add(out, t, vals, lens, err);
			}
	return rc;
}

static int mem_scan(cmp_side *s, const cmp_table *t, cmp_row_fn fn, void *payload,
                    ps_error *err)
{
	const mem_ref *ref = ref_of(s, t);
	const char *vals[MEM_MAX_COLS];
	size_t lens[MEM_MAX_COLS];
	int rc = PS_OK;

	db_of(s)->scans++;
	for (size_t i = 0; rc == PS_OK && i < ref->mt->nrows; i++) {
		row_vals(ref, t, ref->mt->rows[i], vals, lens);
		rc = fn(t, vals, lens, payload, err);
	}
	return rc;
}

/* Computed at once (nothing to pipeline); digest_get hands it over. */
static int mem_digest_send(cmp_side *s, const cmp_table *t, const cmp_bound *lo,
                           const cmp_bound *hi, ps_error *err)
{
	const mem_ref *ref = ref_of(s, t);
	const char *vals[MEM_MAX_COLS];
	size_t lens[MEM_MAX_COLS], n;
	char ***v = range_rows(ref, t, lo, hi, &n);
	uint64_t h = PS_CMP_FNV_SEED, row[2];
	ps_buf scratch;

	(void)err;
	db_of(s)->digests++;
	ps_buf_init(&scratch, 1 << 20);
	for (size_t i = 0; i < n; i++) {
		row_vals(ref, t, v[i], vals, lens);
		ps__cmp_row_hash(t, vals, lens, &scratch, row);
		h = ps__cmp_fnv(h, row, sizeof(row));
	}
	ps_buf_free(&scratch);
	free(v);
	db_of(s)->pend_count = (int64_t)n;
	snprintf(db_of(s)->pend_digest, sizeof(db_of(s)->pend_digest), "%016llx",
	         (unsigned long long)h);
	return PS_OK;
}

static int mem_digest_get(cmp_side *s, int64_t *count, char *digest, size_t len,
                          ps_error *err)
{
	(void)err;
	*count = db_of(s)->pend_count;
	snprintf(digest, len, "%s", db_of(s)->pend_digest);
	return PS_OK;
}

static int mem_repair(cmp_side *s, const cmp_table *t, char ***del, size_t ndel,
                      const cmp_row *const *put, size_t nput, ps_error *err)
{
	const mem_ref *ref = ref_of(s, t);
	mem_table *mt = ref->mt;

	(void)err;
	db_of(s)->repairs++;
	for (size_t i = 0; i < ndel + nput; i++) {
		char *key[MEM_MAX_COLS];
		for (int k = 0; k < t->nkey; k++)
			key[k] = i < ndel ? del[i][k] : put[i - ndel]->val[t->key[k]];
		for (size_t r = mt->nrows; r-- > 0;)
			if (key_vs(ref, t, mt->rows[r], key) == 0)
				mem_remove_at(mt, r);
		if (i >= ndel) {
			const char *vals[MEM_MAX_COLS] = {NULL};
			for (int c = 0; c < t->ncols; c++)
				vals[ref->colmap[c]] = put[i - ndel]->val[c];
			mem_add(mt, vals);
		}
	}
	return PS_OK;
}

static int mem_fence(cmp_side *s, ps_error *err)
{
	(void)s;
	(void)err;
	return PS_OK;
}

static const char *const mem_schemes[] = {"memory", NULL};
static const char *const plain_schemes[] = {"memory-plain", NULL};

/* With a digest: ranges are checked by digests, then bisected. */
static const cmp_side_ops mem_ops = {
	.version = CMP_SIDE_OPS_VERSION,
	.name = "memory",
	.schemes = mem_schemes,
	.roles = CMP_ROLE(CMP_SOURCE) | CMP_ROLE(CMP_TARGET),
	.flags = CMP_SIDE_BYTE_ORDER,
	.digest = "memory-fnv",
	.open = mem_open,
	.close = mem_close,
	.count = mem_count,
	.fetch_range = mem_fetch_range,
	.fetch_keys = mem_fetch_keys,
	.scan = mem_scan,
	.key_at = mem_key_at,
	.list_tables = mem_list_tables,
	.describe = mem_describe,
	.map_table = mem_map_table,
	.repair = mem_repair,
	.digest_send = mem_digest_send,
	.digest_get = mem_digest_get,
};

/* The same engine as a target without digests, key_at or repair: ranges
 * are read and compared in C. */
static const cmp_side_ops plain_ops = {
	.version = CMP_SIDE_OPS_VERSION,
	.name = "memory-plain",
	.schemes = plain_schemes,
	.roles = CMP_ROLE(CMP_TARGET),
	.flags = CMP_SIDE_BYTE_ORDER,
	.open = mem_open,
	.close = mem_close,
	.count = mem_count,
	.fetch_range = mem_fetch_range,
	.fetch_keys = mem_fetch_keys,
	.scan = mem_scan,
	.map_table = mem_map_table,
};

static const cmp_side_ops *const test_sides[] = {&mem_ops, &plain_ops, NULL};

/* ==== the data ============================================================ */

static mem_db g_src, g_tgt;

/* public.items (id int key, name text, price numeric): 10000 rows;
 * public.bag (a text, n int), no key, with a duplicate row;
 * public.pairs (k text, n int, v text), key (k, n): 300 rows. */
static void build_source(void)
{
	char id[32], name[32], price[32], k[8], n[8];
	mem_table *items, *bag, *pairs;

	memset(&g_src, 0, sizeof(g_src));
	g_src.name = "src";
	g_src.ntables = 3;
	items = &g_src.t[0];
	*items = (mem_table){.schema = "public", .name = "items", .ncols = 3,
	                     .cols = {"id", "name", "price"},
	                     .kind = {CMP_INT, CMP_TEXT, CMP_NUMERIC}, .nkey = 1, .key = {0}};
	bag = &g_src.t[1];
	*bag = (mem_table){.schema = "public", .name = "bag", .ncols = 2, .cols = {"a", "n"},
	                   .kind = {CMP_TEXT, CMP_INT}, .nkey = 0};
	pairs = &g_src.t[2];
	*pairs = (mem_table){.schema = "sales", .name = "pairs", .ncols = 3,
	                     .cols = {"k", "n", "v"}, .kind = {CMP_TEXT, CMP_INT, CMP_TEXT},
	                     .nkey = 2, .key = {0, 1}};
	for (int i = 1; i <= 10000; i++) {
		const char *row[3] = {id, name, price};
		snprintf(id, sizeof(id), "%d", i);
		snprintf(name, sizeof(name), "item-%d", i);
		snprintf(price, sizeof(price), "%d.50", i);
		mem_add(items, row);
	}
	for (int i = 0; i < 50; i++) {
		const char *row[2] = {name, n};
		snprintf(name, sizeof(name), "thing %d", i % 49);   /* one duplicate */
		snprintf(n, sizeof(n), "%d", i % 7);
		mem_add(bag, row);
	}
	for (int i = 0; i < 300; i++) {
		const char *row[3] = {k, n, i % 3 ? name : NULL};
		snprintf(k, sizeof(k), "%c%c", 'A' + i % 26, 'a' + i / 26);
		snprintf(n, sizeof(n), "%d", i % 4);
		snprintf(name, sizeof(name), "v%d", i);
		mem_add(pairs, row);
	}
}

/* The target: a copy with differences planted. */
static void plant_differences(void)
{
	mem_table *items = &g_tgt.t[0], *bag = &g_tgt.t[1], *pairs = &g_tgt.t[2];
	const char *below[3] = {"0", "item-0", "0"}, *above[3] = {"10001", "item-10001", "1.5"};

	mem_delete(items, "17");                 /* missing, chunk 1 */
	mem_delete(items, "5003");               /* missing, chunk 2 */
	mem_add(items, below);                   /* extra, below the first boundary */
	mem_add(items, above);                   /* extra, beyond the last */
	mem_set(items, "1234", 1, "ITEM-1234");  /* different: name */
	mem_set(items, "9000", 2, "9000.51");    /* different: price */
	mem_set(items, "43", 1, "");             /* different: "" is not NULL... */
	mem_set(items, "44", 2, "44.500");       /* ...but 44.500 is 44.50: equal */
	mem_set(bag, "thing 3", 1, "99");        /* the multiset differs */
	mem_set(pairs, "Kb", 2, "changed");      /* different: v, composite key */
}

static int setup(void **state)
{
	(void)state;
	build_source();
	mem_copy(&g_tgt, &g_src, "tgt");
	plant_differences();
	g_dbs[0] = &g_src;
	g_dbs[1] = &g_tgt;
	ps__cmp_sides_for_tests(test_sides);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ps__cmp_sides_for_tests(NULL);
	g_dbs[0] = g_dbs[1] = NULL;
	mem_free(&g_src);
	mem_free(&g_tgt);
	return 0;
}

static void reset_counters(void)
{
	mem_db *dbs[2] = {&g_src, &g_tgt};

	for (int i = 0; i < 2; i++) {
		dbs[i]->digests = dbs[i]->key_ats = dbs[i]->range_reads = dbs[i]->key_reads = 0;
		dbs[i]->scans = dbs[i]->repairs = 0;
		dbs[i]->most_rows_read = 0;
	}
}

static int run(const char *target, const char *const *tables, size_t ntables, bool repair,
               ps_compare_report *rep, ps_error *err)
{
	ps_compare_opts o;

	ps_compare_opts_defaults(&o);
	o.source_url = "memory:src";
	o.target_url = target;
	o.tables = tables;
	o.ntables = ntables;
	o.chunk_rows = 4000;
	o.repair = repair;
	o.seed = 1;
	reset_counters();
	return ps_compare_run(&o, rep, err);
}

static const ps_compare_table *table_of(const ps_compare_report *rep, const char *name)
{
	for (size_t i = 0; i < rep->ntables; i++)
		if (strcmp(rep->tables[i].name, name) == 0)
			return &rep->tables[i];
	fail_msg("no table %s in the report", name);
	return NULL;
}

static const ps_compare_diff *diff_of(const ps_compare_table *tr, const char *key0)
{
	for (size_t i = 0; i < tr->ndiffs; i++)
		if (strcmp(tr->diffs[i].key[0], key0) == 0)
			return &tr->diffs[i];
	fail_msg("no difference at key %s", key0);
	return NULL;
}

/* What both runs (with and without digests) must report. */
static void assert_planted(const ps_compare_report *rep)
{
	const ps_compare_table *items = table_of(rep, "items"), *bag = table_of(rep, "bag"),
	                       *pairs = table_of(rep, "pairs");
	const ps_compare_diff *d;

	assert_false(rep->equal);
	assert_false(rep->consistent);
	assert_int_equal(rep->ntables, 3);
	assert_string_equal(rep->source, "memory:src");

	assert_false(items->equal);
	assert_int_equal(items->nkey, 1);
	assert_int_equal(items->chunks, 3);          /* boundaries at keys 4000 and 8000 */
	assert_int_equal(items->chunks_checked, 3);
	assert_int_equal(items->chunks_different, 3);
	assert_int_equal(items->source_rows, 10000);
	assert_int_equal(items->target_rows, 10000);
	assert_int_equal(items->missing, 2);
	assert_int_equal(items->extra, 2);
	assert_int_equal(items->different, 3);
	assert_int_equal(items->ndiffs, 7);
	assert_int_equal(diff_of(items, "17")->kind, PS_DIFF_MISSING_IN_TARGET);
	assert_int_equal(diff_of(items, "5003")->kind, PS_DIFF_MISSING_IN_TARGET);
	assert_int_equal(diff_of(items, "0")->kind, PS_DIFF_EXTRA_IN_TARGET);
	assert_int_equal(diff_of(items, "10001")->kind, PS_DIFF_EXTRA_IN_TARGET);
	d = diff_of(items, "1234");
	assert_int_equal(d->kind, PS_DIFF_DIFFERENT);
	assert_int_equal(d->ncolumns, 1);
	assert_int_equal(d->columns[0], 1);          /* name */
	d = diff_of(items, "9000");
	assert_int_equal(d->ncolumns, 1);
	assert_int_equal(d->columns[0], 2);          /* price */
	d = diff_of(items, "43");
	assert_int_equal(d->ncolumns, 1);
	assert_int_equal(d->columns[0], 1);
	for (size_t i = 0; i < items->ndiffs; i++)   /* 44.500 = 44.50 */
		assert_string_not_equal(items->diffs[i].key[0], "44");

	assert_int_equal(bag->nkey, 0);
	assert_true(bag->multiset_checked);
	assert_false(bag->multiset_equal);
	assert_int_equal(bag->source_rows, 50);
	assert_int_equal(bag->target_rows, 50);

	assert_int_equal(pairs->nkey, 2);
	assert_int_equal(pairs->different, 1);
	assert_int_equal(pairs->missing + pairs->extra, 0);
	d = diff_of(pairs, "Kb");
	assert_string_equal(d->key[1], "0");         /* i = 36: n = 36 % 4 */
	assert_int_equal(d->columns[0], 2);
}

/* ==== the tests =========================================================== */

static void test_digests_bisect_down_to_the_keys(void **state)
{
	ps_compare_report rep;
	ps_error err;
	(void)state;

	assert_int_equal(run("memory:tgt", NULL, 0, false, &rep, &err), PS_OK);
	assert_planted(&rep);
	/* ranges were checked by digests and bisected: no read of a whole
	 * 4000-row chunk, only leaves of at most CMP_LEAF_ROWS rows */
	assert_true(g_src.digests > 3 && g_src.digests == g_tgt.digests);
	assert_true(g_src.key_ats > 2);
	assert_true(g_src.range_reads > 0);
	assert_true(g_src.most_rows_read <= CMP_LEAF_ROWS);
	assert_true(g_tgt.most_rows_read <= CMP_LEAF_ROWS + 2);
	/* no multiset callback: the unkeyed table was scanned and hashed in C */
	assert_int_equal(g_src.scans, 1);
	assert_int_equal(g_tgt.scans, 1);
	assert_int_equal(g_tgt.repairs, 0);
	ps_compare_report_free(&rep);
}

static void test_a_side_without_digests_reads_each_range(void **state)
{
	ps_compare_report rep;
	ps_error err;
	(void)state;

	assert_int_equal(run("memory-plain:tgt", NULL, 0, false, &rep, &err), PS_OK);
	assert_planted(&rep);
	assert_int_equal(g_src.digests + g_tgt.digests, 0);
	assert_int_equal(g_src.range_reads, 3 + 1);   /* one per chunk of each keyed table */
	assert_true(g_src.most_rows_read == 4000);
	ps_compare_report_free(&rep);
}

static void test_repair_rewrites_the_target(void **state)
{
	const char *keyed[] = {"items", "sales.*"};
	const mem_table *items = &g_tgt.t[0];
	ps_compare_report rep;
	ps_error err;
	long i;
	(void)state;

	assert_int_equal(run("memory:tgt", keyed, 2, true, &rep, &err), PS_OK);
	assert_false(rep.equal);
	assert_true(rep.consistent);
	assert_true(table_of(&rep, "items")->repaired);
	assert_int_equal(table_of(&rep, "items")->repair_written, 5);   /* 2 missing + 3 different */
	assert_int_equal(table_of(&rep, "items")->repair_deleted, 2);   /* 2 extra */
	assert_int_equal(table_of(&rep, "items")->repair_remaining, 0);
	assert_int_equal(table_of(&rep, "pairs")->repair_written, 1);
	assert_int_equal(g_tgt.repairs, 3 + 1);    /* one per differing chunk */
	ps_compare_report_free(&rep);

	/* the in-memory target holds the source's rows now */
	assert_int_equal(items->nrows, 10000);
	assert_true(mem_row_by_id(items, "0") < 0 && mem_row_by_id(items, "10001") < 0);
	i = mem_row_by_id(items, "17");
	assert_true(i >= 0);
	assert_string_equal(items->rows[i][1], "item-17");
	i = mem_row_by_id(items, "43");
	assert_string_equal(items->rows[i][1], "item-43");

	assert_int_equal(run("memory:tgt", keyed, 2, false, &rep, &err), PS_OK);
	assert_true(rep.equal && rep.consistent);
	ps_compare_report_free(&rep);
	/* the unkeyed table is never repaired */
	assert_int_equal(run("memory:tgt", (const char *[]){"bag"}, 1, true, &rep, &err), PS_OK);
	assert_false(rep.consistent);
	assert_false(table_of(&rep, "bag")->repaired);
	ps_compare_report_free(&rep);
}

static void test_catalogue_errors(void **state)
{
	ps_compare_report rep;
	ps_error err;
	mem_table *pairs = &g_tgt.t[2];
	(void)state;

	assert_int_equal(run("memory:tgt", (const char *[]){"nosuch"}, 1, false, &rep, &err),
	                 PS_EINVAL);
	assert_non_null(strstr(err.message, "no table of the source matches 'nosuch'"));
	pairs->cols[2] = "w";
	assert_int_equal(run("memory:tgt", (const char *[]){"sales.pairs"}, 1, false, &rep, &err),
	                 PS_EINVAL);
	assert_non_null(strstr(err.message, "the target table sales.pairs has no column v"));
	pairs->name = "gone";
	assert_int_equal(run("memory:tgt", (const char *[]){"sales.pairs"}, 1, false, &rep, &err),
	                 PS_EINVAL);
	assert_non_null(strstr(err.message, "sales.pairs does not exist in the target"));
	pairs->name = "pairs";
	pairs->cols[2] = "v";
}

static void test_sides_are_looked_up_by_scheme(void **state)
{
	ps_compare_report rep;
	ps_compare_opts o;
	ps_error err;
	char msg[2048];
	(void)state;

	assert_int_equal(run("jsonl:///tmp/out", NULL, 0, false, &rep, &err), PS_EINVAL);
	ps_error_format(&err, msg, sizeof(msg));
	assert_non_null(strstr(msg, "compare: jsonl:// cannot be compared yet; supported: "));
	assert_non_null(strstr(msg, "postgresql:// (source, target), sqlite:// (target), "
	                            "mysql:// (source)"));
	assert_non_null(strstr(msg, "memory:// (source, target), memory-plain:// (target)"));

	ps_compare_opts_defaults(&o);
	o.source_url = "sqlite:///tmp/x.db";
	o.target_url = "memory:tgt";
	assert_int_equal(ps_compare_run(&o, &rep, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "compare: sqlite:// cannot be a source yet"));
	o.source_url = "memory-plain:src";
	assert_int_equal(ps_compare_run(&o, &rep, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "memory-plain:// cannot be a source yet"));
	o.source_url = "nothing here";
	assert_int_equal(ps_compare_run(&o, &rep, &err), PS_EINVAL);
	ps_error_format(&err, msg, sizeof(msg));
	assert_non_null(strstr(msg, "--source: "));      /* the URL parser's own message */
	/* what a side cannot do is refused before anything is read */
	o.source_url = "memory:src";
	o.job = "orders";
	assert_int_equal(ps_compare_run(&o, &rep, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "--job: compare cannot follow a job from a memory source"));
	o.job = NULL;
	o.target_url = "memory-plain:tgt";
	o.repair = true;
	assert_int_equal(ps_compare_run(&o, &rep, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "--repair: compare cannot repair a memory-plain target"));
	assert_int_equal(g_src.scans + g_src.range_reads + g_src.key_ats, 0);
}

static void test_a_side_missing_a_callback_is_refused(void **state)
{
	cmp_side_ops broken = mem_ops;
	ps_error err;
	(void)state;

	assert_int_equal(ps__cmp_side_check(&mem_ops, CMP_SOURCE, &err), PS_OK);
	assert_int_equal(ps__cmp_side_check(&plain_ops, CMP_TARGET, &err), PS_OK);
	/* plain_ops has no key_at, so it cannot be a source */
	assert_int_equal(ps__cmp_side_check(&plain_ops, CMP_SOURCE, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "no key_at callback"));
	broken.scan = NULL;
	assert_int_equal(ps__cmp_side_check(&broken, CMP_TARGET, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "no scan callback"));
	broken = mem_ops;
	broken.digest_get = NULL;
	assert_int_equal(ps__cmp_side_check(&broken, CMP_TARGET, &err), PS_EINVAL);
	broken = mem_ops;
	broken.fence = mem_fence;    /* one of the six that follow a job, without the rest */
	assert_int_equal(ps__cmp_side_check(&broken, CMP_SOURCE, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "only some of the callbacks that follow a job"));
	broken = mem_ops;
	broken.version = 99;
	assert_int_equal(ps__cmp_side_check(&broken, CMP_TARGET, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "version 99"));
	/* the built-in sides pass their own check */
	assert_int_equal(ps__cmp_side_check(&ps__cmp_side_pg, CMP_SOURCE, &err), PS_OK);
	assert_int_equal(ps__cmp_side_check(&ps__cmp_side_pg, CMP_TARGET, &err), PS_OK);
	assert_int_equal(ps__cmp_side_check(&ps__cmp_side_sqlite, CMP_TARGET, &err), PS_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_digests_bisect_down_to_the_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_side_without_digests_reads_each_range, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_repair_rewrites_the_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catalogue_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sides_are_looked_up_by_scheme, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_side_missing_a_callback_is_refused, setup,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
