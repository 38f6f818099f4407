/*
 * compare.c — the driver of `penstock compare` (see compare.h).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Chunks. A keyed table is cut into ranges of the source's key order,
 *    lower < key <= upper, every chunk_rows-th source key a boundary; the
 *    first range is open below, the last open above, so rows the target has
 *    beyond either end are seen. Modes full/sample check all / a random
 *    percentage of the ranges.
 * 2. Checking a range. Two sides with the same digest (ops->digest; two
 *    PostgreSQL servers) both compute count and digest of the range's rows
 *    in key order at the same time (digest_send on both before digest_get
 *    on either); a range whose digests differ is bisected at its middle key
 *    until the pieces hold at most CMP_LEAF_ROWS rows, and those are read
 *    and compared value by value. Otherwise (an SQLite target) the range is
 *    read from both sides and compared in C. Either way a range yields the
 *    keys that differ.
 * 3. Resolving keys. The keys a range yielded are read again from both sides
 *    by key, compared through the canonical text of each value, and
 *    classed missing_in_target / extra_in_target / different (with the
 *    columns). That is what is reported, counted in full and listed up to
 *    max_report per table.
 * 4. A running job (opts->job). Lag must not look like a difference. The
 *    source rows of those keys are read for share in a source transaction
 *    (txn_begin, fetch_keys), so no change to them can commit while we
 *    look; the source's log position L is read after the locks are held
 *    (PostgreSQL: the WAL insert LSN), so every change to those rows is
 *    before L; a fence is written on a second source instance so that a
 *    quiet source still gives the job a commit to apply; then we poll the
 *    job's checkpoint in the target until its position has reached L and
 *    read the target rows. Only what still differs then is reported. (A key
 *    the source lacks may have been inserted after our read: it is read
 *    again before it is reported.) Unkeyed tables and count mode do the
 *    same with lock_table (PostgreSQL: LOCK TABLE ... IN SHARE MODE), which
 *    holds writers of that table for the duration of the wait.
 * 6. Sides. The driver sees each end only through cmp_side_ops
 *    (cmp_side.h), picked by URL scheme in sides.c; it branches on what a
 *    side can do (a digest, repair, following a job), never on its engine.
 * 5. Repair rewrites exactly the resolved differences on the target — delete
 *    by key, insert the source row — in one target transaction per range,
 *    while the source rows are still locked when a job runs (so the job
 *    cannot later apply an older version over it), then reads those keys
 *    again on both sides and reports what still differs.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare/cmp_internal.h"
#include "util/log.h"

/* ==== checking ranges ===================================================== */

/* Reads (lo, hi] from both sides and adds the keys that differ to ks. */
static int diff_range(cmp_run *run, const cmp_table *t, const cmp_bound *lo,
                      const cmp_bound *hi, cmp_keys *ks, int64_t *cs, int64_t *ct,
                      ps_error *err)
{
	cmp_rows s, g;
	cmp_items d = {0};
	int rc;

	ps__cmp_rows_init(&s, ps__cmp_rows_limit(run));
	ps__cmp_rows_init(&g, ps__cmp_rows_limit(run));
	rc = run->src.ops->fetch_range(&run->src, t, lo, hi, &s, err);
	if (rc == PS_OK)
		rc = run->tgt.ops->fetch_range(&run->tgt, t, lo, hi, &g, err);
	if (rc == PS_OK) {
		*cs = (int64_t)s.n;
		*ct = (int64_t)g.n;
		rc = ps__cmp_rows_diff(t, &s, &g, &d, err);
	}
	for (size_t i = 0; rc == PS_OK && i < d.n; i++)
		rc = ps__cmp_keys_add(ks, t, ps__cmp_item_row(&d.v[i]), err);
	ps__cmp_items_free(&d);
	ps__cmp_rows_free(&s);
	ps__cmp_rows_free(&g);
	return rc;
}

static int digest_pair(cmp_run *run, const cmp_table *t, const cmp_bound *lo,
                       const cmp_bound *hi, int64_t *cs, int64_t *ct, bool *same, ps_error *err)
{
	char hs[CMP_DIGEST_MAX] = "", ht[CMP_DIGEST_MAX] = "";
	int rc, rc2;

	rc = run->src.ops->digest_send(&run->src, t, lo, hi, err);
	if (rc != PS_OK)
		return rc;
	rc = run->tgt.ops->digest_send(&run->tgt, t, lo, hi, err);
	/* collect the source's result even when the target failed */
	rc2 = run->src.ops->digest_get(&run->src, cs, hs, sizeof(hs), rc == PS_OK ? err : NULL);
	if (rc == PS_OK)
		rc = rc2;
	if (rc == PS_OK)
		rc = run->tgt.ops->digest_get(&run->tgt, ct, ht, sizeof(ht), err);
	*same = rc == PS_OK && *cs == *ct && strcmp(hs, ht) == 0;
	return rc;
}

static int bisect(cmp_run *run, const cmp_table *t, const cmp_bound *lo, const cmp_bound *hi,
                  int64_t cs, int64_t ct, cmp_keys *ks, int depth, ps_error *err)
{
	/* the middle of the side with more rows; the source when the target
	 * cannot say where its keys are */
	cmp_side *by = cs < ct && run->tgt.ops->key_at ? &run->tgt : &run->src;
	cmp_bound mid = {NULL};
	bool found = false, same;
	int64_t a, b, off, n = cs > ct ? cs : ct;
	int rc;

	rc = ps__cmp_cancelled(run, err);
	if (rc != PS_OK)
		return rc;
	if (n <= CMP_LEAF_ROWS || depth > 60)
		return diff_range(run, t, lo, hi, ks, &a, &b, err);
	off = (by == &run->src ? cs : ct) / 2 - 1;
	if (off < 0)                 /* nothing to split on that side */
		return diff_range(run, t, lo, hi, ks, &a, &b, err);
	rc = by->ops->key_at(by, t, lo, hi, off, &mid, &found, err);
	if (rc != PS_OK || !found)   /* rows changed under us: read the range as it is */
		return rc != PS_OK ? rc : diff_range(run, t, lo, hi, ks, &a, &b, err);
	rc = digest_pair(run, t, lo, &mid, &a, &b, &same, err);
	if (rc == PS_OK && !same)
		rc = bisect(run, t, lo, &mid, a, b, ks, depth + 1, err);
	if (rc == PS_OK)
		rc = digest_pair(run, t, &mid, hi, &a, &b, &same, err);
	if (rc == PS_OK && !same)
		rc = bisect(run, t, &mid, hi, a, b, ks, depth + 1, err);
	ps__cmp_bound_free(&mid);
	return rc;
}

static int check_range(cmp_run *run, const cmp_table *t, ps_compare_table *tr,
                       const cmp_bound *lo, const cmp_bound *hi, bool count_rows, ps_error *err)
{
	cmp_keys ks = {NULL, 0, 0, t->nkey};
	int64_t cs = 0, ct = 0;
	bool same = true;
	int rc;

	if (run->digests) {
		rc = digest_pair(run, t, lo, hi, &cs, &ct, &same, err);
		if (rc == PS_OK && !same)
			rc = bisect(run, t, lo, hi, cs, ct, &ks, 0, err);
	} else {
		rc = diff_range(run, t, lo, hi, &ks, &cs, &ct, err);
		same = ks.n == 0;
	}
	if (rc == PS_OK && count_rows) {
		tr->source_rows += cs;
		tr->target_rows += ct;
	}
	tr->chunks_checked++;
	if (rc == PS_OK && !same) {
		int64_t before = tr->missing + tr->extra + tr->different;
		rc = ps__cmp_resolve(run, t, tr, &ks, err);
		if (rc == PS_OK && tr->missing + tr->extra + tr->different > before)
			tr->chunks_different++;
	}
	ps__cmp_keys_free(&ks);
	return rc;
}

static uint64_t next_random(cmp_run *run)
{
	uint64_t z = (run->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int count_both(cmp_run *run, const cmp_table *t, int64_t *cs, int64_t *ct, ps_error *err)
{
	int rc = run->src.ops->count(&run->src, t, cs, err);

	if (rc == PS_OK)
		rc = run->tgt.ops->count(&run->tgt, t, ct, err);
	return rc;
}

static int compare_keyed(cmp_run *run, const cmp_table *t, ps_compare_table *tr, ps_error *err)
{
	cmp_bound *bounds = NULL;
	size_t nb = 0, cap = 0;
	bool sample = run->o->mode == PS_COMPARE_SAMPLE, *pick = NULL;
	int rc = PS_OK;

	/* boundaries: every chunk_rows-th key of the source */
	for (;;) {
		cmp_bound next = {NULL};
		bool found = false;

		rc = ps__cmp_cancelled(run, err);
		if (rc == PS_OK)
			rc = run->src.ops->key_at(&run->src, t, nb ? &bounds[nb - 1] : NULL, NULL,
			                          run->o->chunk_rows - 1, &next, &found, err);
		if (rc != PS_OK || !found)
			break;
		if (nb == cap) {
			cmp_bound *nbnd = realloc(bounds, (cap = cap ? cap * 2 : 64) * sizeof(*nbnd));
			if (!nbnd) {
				ps__cmp_bound_free(&next);
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
				break;
			}
			bounds = nbnd;
		}
		bounds[nb++] = next;
	}
	tr->chunks = (int64_t)nb + 1;
	pick = calloc(nb + 1, sizeof(bool));
	if (rc == PS_OK && !pick)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == PS_OK) {
		bool any = false;
		for (size_t i = 0; i <= nb; i++) {
			pick[i] = !sample || next_random(run) % 100 < (uint64_t)run->o->sample_percent;
			any = any || pick[i];
		}
		if (!any)
			pick[next_random(run) % (nb + 1)] = true;
	}
	if (rc == PS_OK && sample)
		rc = count_both(run, t, &tr->source_rows, &tr->target_rows, err);
	else
		tr->source_rows = tr->target_rows = 0;
	for (size_t i = 0; rc == PS_OK && i <= nb; i++) {
		if (!pick[i])
			continue;
		rc = ps__cmp_cancelled(run, err);
		if (rc == PS_OK)
			rc = check_range(run, t, tr, i ? &bounds[i - 1] : NULL, i < nb ? &bounds[i] : NULL,
			                 !sample, err);
	}
	for (size_t i = 0; i < nb; i++)
		ps__cmp_bound_free(&bounds[i]);
	free(bounds);
	free(pick);
	return rc;
}

/* ==== whole-table checks: count mode, tables without a key ================ */

/* A multiset of rows hashed in C (a side without a comparable digest). */
typedef struct hash_sum {
	int64_t count;
	uint64_t sum[2];
	ps_buf scratch;
} hash_sum;

static int hash_row(const cmp_table *t, const char *const *vals, const size_t *lens,
                    void *payload, ps_error *err)
{
	hash_sum *h = payload;
	uint64_t row[2];

	(void)err;
	ps__cmp_row_hash(t, vals, lens, &h->scratch, row);
	h->sum[0] += row[0];
	h->sum[1] += row[1];
	h->count++;
	return PS_OK;
}

static int scan_hash(cmp_side *side, const cmp_table *t, int64_t *count, char *out, size_t len,
                     ps_error *err)
{
	hash_sum h = {0, {0, 0}, {0}};
	int rc;

	ps_buf_init(&h.scratch, CMP_VALUE_MAX);
	rc = side->ops->scan(side, t, hash_row, &h, err);
	*count = h.count;
	snprintf(out, len, "%016llx%016llx", (unsigned long long)h.sum[0],
	         (unsigned long long)h.sum[1]);
	ps_buf_free(&h.scratch);
	return rc;
}

static int table_state(cmp_run *run, const cmp_table *t, ps_compare_table *tr, bool multiset,
                       bool *same, ps_error *err)
{
	char ss[CMP_DIGEST_MAX] = "", st[CMP_DIGEST_MAX] = "";
	int rc;

	if (!multiset) {
		rc = count_both(run, t, &tr->source_rows, &tr->target_rows, err);
	} else if (run->digests && run->src.ops->multiset && run->tgt.ops->multiset) {
		rc = run->src.ops->multiset(&run->src, t, &tr->source_rows, ss, sizeof(ss), err);
		if (rc == PS_OK)
			rc = run->tgt.ops->multiset(&run->tgt, t, &tr->target_rows, st, sizeof(st), err);
	} else {
		rc = scan_hash(&run->src, t, &tr->source_rows, ss, sizeof(ss), err);
		if (rc == PS_OK)
			rc = scan_hash(&run->tgt, t, &tr->target_rows, st, sizeof(st), err);
	}
	*same = rc == PS_OK && tr->source_rows == tr->target_rows && strcmp(ss, st) == 0;
	if (multiset) {
		tr->multiset_checked = true;
		tr->multiset_equal = *same;
	}
	return rc;
}

static int compare_whole(cmp_run *run, const cmp_table *t, ps_compare_table *tr, ps_error *err)
{
	bool multiset = run->o->mode != PS_COMPARE_COUNT, same = false, open = false;
	cmp_side *src = &run->src;
	int rc;

	tr->chunks = tr->chunks_checked = 1;
	rc = table_state(run, t, tr, multiset, &same, err);
	if (rc == PS_OK && !same && run->o->job) {
		/* Hold the source table's writers, let the target catch up, look again. */
		rc = src->ops->txn_begin(src, err);
		open = rc == PS_OK;
		if (rc == PS_OK)
			rc = src->ops->lock_table(src, t, err);
		if (rc == PS_OK)
			rc = ps__cmp_wait_applied(run, err);
		if (rc == PS_OK)
			rc = table_state(run, t, tr, multiset, &same, err);
		if (open)
			src->ops->txn_end(src, rc == PS_OK, NULL);
		if (rc == PS_OK && same)
			tr->settled++;
	}
	if (rc == PS_OK && !same)
		tr->chunks_different = 1;
	return rc;
}

/* ==== tables and the run ================================================== */

static int report_table(ps_compare_table *tr, const cmp_table *t, int max_report)
{
	tr->schema = strdup(t->schema);
	tr->name = strdup(t->name);
	tr->target = strdup(t->target);
	tr->ncolumns = t->ncols;
	tr->column_names = calloc((size_t)t->ncols + 1, sizeof(char *));
	tr->nkey = t->nkey;
	tr->key_names = calloc((size_t)t->nkey + 1, sizeof(char *));
	tr->key_source = t->key_source && t->nkey ? strdup(t->key_source) : NULL;
	tr->diffs = calloc((size_t)max_report + 1, sizeof(*tr->diffs));
	tr->source_rows = tr->target_rows = -1;
	if (!tr->schema || !tr->name || !tr->target || !tr->column_names || !tr->key_names ||
	    !tr->diffs)
		return PS_ENOMEM;
	for (int i = 0; i < t->ncols; i++)
		if (!(tr->column_names[i] = strdup(t->cols[i])))
			return PS_ENOMEM;
	for (int k = 0; k < t->nkey; k++)
		if (!(tr->key_names[k] = strdup(t->cols[t->key[k]])))
			return PS_ENOMEM;
	return PS_OK;
}

static int compare_table(cmp_run *run, const cmp_table *t, ps_compare_table *tr, ps_error *err)
{
	uint64_t t0 = ps__cmp_now_ms();
	int rc;

	if (report_table(tr, t, run->o->max_report) != PS_OK)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (t->nkey > 0 && run->o->mode != PS_COMPARE_COUNT)
		rc = compare_keyed(run, t, tr, err);
	else
		rc = compare_whole(run, t, tr, err);
	if (rc != PS_OK) {
		ps_error_add_context(err, "table %s.%s", t->schema, t->name);
		return rc;
	}
	tr->equal = tr->missing + tr->extra + tr->different == 0 && tr->chunks_different == 0;
	ps_log_debug("compare: %s.%s %s in %.3f s", t->schema, t->name,
	             tr->equal ? "equal" : "different", (double)(ps__cmp_now_ms() - t0) / 1000.0);
	return PS_OK;
}

/* Picks the side for url in role (sides.c) and fills s; no connection yet. */
static int find_side(cmp_side *s, int role, const char *url, ps_error *err)
{
	memset(s, 0, sizeof(*s));
	s->role = role;
	snprintf(s->what, sizeof(s->what), "%s", role == CMP_SOURCE ? "source" : "target");
	if (!url || !*url)
		return ps_error_set(err, PS_EINVAL, "--%s: a URL is required", s->what);
	return ps__cmp_side_find(url, role, &s->ops, err);
}

static int open_side(cmp_side *s, const char *url, const char *password, ps_error *err)
{
	int rc = s->ops->open(s, url, password, err);

	if (rc != PS_OK && s->impl)
		s->ops->close(s);
	return rc;
}

static void close_side(cmp_side *s)
{
	if (s->ops && s->impl)
		s->ops->close(s);
	s->impl = NULL;
}

/* What the options ask of the sides, before any connection is made. */
static int check_sides(const ps_compare_opts *o, const cmp_side *src, const cmp_side *tgt,
                       ps_error *err)
{
	if (o->job && !src->ops->fence)
		return ps_error_set(err, PS_EINVAL, "--job: compare cannot follow a job from a %s "
		                    "source", src->ops->name);
	if (o->job && !tgt->ops->checkpoint)
		return ps_error_set(err, PS_EINVAL, "--job: compare cannot read a job's checkpoint "
		                    "in a %s target", tgt->ops->name);
	if (o->repair && !tgt->ops->repair)
		return ps_error_set(err, PS_EINVAL, "--repair: compare cannot repair a %s target",
		                    tgt->ops->name);
	return PS_OK;
}

static int check_opts(const ps_compare_opts *o, ps_error *err)
{
	if (o->mode < PS_COMPARE_COUNT || o->mode > PS_COMPARE_SAMPLE)
		return ps_error_set(err, PS_EINVAL, "--mode: expected count, full or sample");
	if (o->sample_percent < 1 || o->sample_percent > 100)
		return ps_error_set(err, PS_EINVAL, "--sample-percent: expected 1 to 100, got %d",
		                    o->sample_percent);
	if (o->chunk_rows < 2 || o->chunk_rows > 10000000)
		return ps_error_set(err, PS_EINVAL, "--chunk-rows: expected 2 to 10000000, got %lld",
		                    o->chunk_rows);
	if (o->max_report < 0 || o->max_report > 1000000)
		return ps_error_set(err, PS_EINVAL, "--max-report: expected 0 to 1000000, got %d",
		                    o->max_report);
	if (o->job && (!*o->job || strlen(o->job) >= 64))
		return ps_error_set(err, PS_EINVAL, "--job: expected a job name");
	if (o->lag_timeout_ms < 1)
		return ps_error_set(err, PS_EINVAL, "lag timeout must be positive");
	return PS_OK;
}

int ps_compare_run(const ps_compare_opts *o, ps_compare_report *rep, ps_error *err)
{
	cmp_run run;
	cmp_table *tables = NULL;
	size_t ntables = 0;
	uint64_t t0 = ps__cmp_now_ms();
	int rc;

	memset(rep, 0, sizeof(*rep));
	memset(&run, 0, sizeof(run));
	run.o = o;
	run.rng = o->seed ? o->seed : (uint64_t)time(NULL) ^ (uint64_t)clock();
	rc = check_opts(o, err);
	if (rc == PS_OK)
		rc = find_side(&run.src, CMP_SOURCE, o->source_url, err);
	if (rc == PS_OK)
		rc = find_side(&run.tgt, CMP_TARGET, o->target_url, err);
	if (rc == PS_OK)
		rc = check_sides(o, &run.src, &run.tgt, err);
	if (rc == PS_OK && o->job)
		rc = find_side(&run.fence, CMP_SOURCE, o->source_url, err);
	if (rc == PS_OK)
		rc = open_side(&run.src, o->source_url, o->source_password, err);
	if (rc == PS_OK)
		rc = open_side(&run.tgt, o->target_url, o->target_password, err);
	if (rc == PS_OK && o->job)
		rc = open_side(&run.fence, o->source_url, o->source_password, err);
	if (rc != PS_OK)
		goto cleanup;
	/* Both sides order text keys by bytes when either can only do that. */
	run.src.byte_order = run.tgt.byte_order =
		((run.src.ops->flags | run.tgt.ops->flags) & CMP_SIDE_BYTE_ORDER) != 0;
	run.digests = run.src.ops->digest && run.tgt.ops->digest &&
	              strcmp(run.src.ops->digest, run.tgt.ops->digest) == 0;
	if (o->job) {
		char pos[CMP_POSITION_MAX];
		/* the job must have a checkpoint there */
		rc = ps__cmp_job_position(&run, pos, sizeof(pos), err);
		if (rc != PS_OK)
			goto cleanup;
	}
	rc = ps__cmp_catalog(&run.src, &run.tgt, o->tables, o->ntables, o->exclude, o->nexclude,
	                     &tables, &ntables, err);
	if (rc != PS_OK)
		goto cleanup;
	rep->mode = o->mode;
	rep->repair = o->repair;
	snprintf(rep->job, sizeof(rep->job), "%s", o->job ? o->job : "");
	snprintf(rep->source, sizeof(rep->source), "%s", run.src.url.redacted);
	snprintf(rep->target, sizeof(rep->target), "%s", run.tgt.url.redacted);
	rep->tables = calloc(ntables + 1, sizeof(*rep->tables));
	if (!rep->tables) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rep->ntables = ntables;
	rep->equal = rep->consistent = true;
	for (size_t i = 0; rc == PS_OK && i < ntables; i++) {
		ps_compare_table *tr = &rep->tables[i];
		rc = compare_table(&run, &tables[i], tr, err);
		rep->equal = rep->equal && tr->equal;
		rep->consistent = rep->consistent &&
		                  (tr->equal || (tr->repaired && tr->repair_remaining == 0 &&
		                                 tr->chunks_different > 0 && !tr->multiset_checked));
	}
	rep->seconds = (double)(ps__cmp_now_ms() - t0) / 1000.0;
cleanup:
	if (rc != PS_OK)
		ps_compare_report_free(rep);
	ps__cmp_tables_free(tables, ntables);
	close_side(&run.src);
	close_side(&run.tgt);
	close_side(&run.fence);
	return rc;
}

void ps_compare_opts_defaults(ps_compare_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = PS_COMPARE_FULL;
	o->sample_percent = 10;
	o->chunk_rows = 10000;
	o->max_report = 100;
	o->lag_timeout_ms = 60000;
}
