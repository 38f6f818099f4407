/*
 * resolve.c — the keys a range yielded, made final: read again by key on
 * both sides (against a running job: after the target applied past the
 * source position they were read at, with the source rows locked), classed,
 * recorded in the report, and repaired when asked. See NOTES ON THE DESIGN
 * 3-5 in compare.c. Also the helpers the driver shares with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare/cmp_internal.h"
#include "core/checkpoint.h"

void ps__cmp_keys_free(cmp_keys *ks)
{
	for (size_t i = 0; i < ks->n; i++) {
		for (int j = 0; j < ks->nkey; j++)
			free(ks->k[i][j]);
		free(ks->k[i]);
	}
	free(ks->k);
	ks->k = NULL;
	ks->n = ks->cap = 0;
}

int ps__cmp_keys_add(cmp_keys *ks, const cmp_table *t, const cmp_row *r, ps_error *err)
{
	char **tuple;

	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 32;
		char ***nk = realloc(ks->k, cap * sizeof(*nk));
		if (!nk)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		ks->k = nk;
		ks->cap = cap;
	}
	tuple = calloc((size_t)t->nkey + 1, sizeof(char *));
	if (!tuple)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int j = 0; j < t->nkey; j++) {
		const char *v = r->val[t->key[j]];
		tuple[j] = strdup(v ? v : "");
		if (!tuple[j]) {
			for (int i = 0; i < j; i++)
				free(tuple[i]);
			free(tuple);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
	}
	ks->k[ks->n++] = tuple;
	return PS_OK;
}

int ps__cmp_cancelled(cmp_run *run, ps_error *err)
{
	if (run->o->cancel && atomic_load(run->o->cancel))
		return ps_error_set(err, PS_ESTOPPED, "compare stopped on request");
	return PS_OK;
}

size_t ps__cmp_rows_limit(const cmp_run *run)
{
	return (size_t)run->o->chunk_rows * 4 + 100000;
}

/* ==== waiting for the job ================================================= */

/* The checkpoint is penstock's own document (core/checkpoint.h), whichever
 * sink wrote it; its position is in the source's form, which only the
 * source side reads. */
int ps__cmp_job_position(cmp_run *run, char *pos, size_t len, ps_error *err)
{
	ps_checkpoint ck;
	char *body = NULL;
	bool found = false, reached;
	int rc;

	memset(&ck, 0, sizeof(ck));
	rc = run->tgt.ops->checkpoint(&run->tgt, run->o->job, &body, &found, err);
	if (rc != PS_OK)
		return rc;
	if (!found) {
		free(body);
		return ps_error_set(err, PS_EINVAL, "--job %s: the target holds no checkpoint of that "
		                    "job (is it the job that replicates into this target?)", run->o->job);
	}
	rc = ps_checkpoint_from_text(&ck, body, "the job's checkpoint", err);
	if (rc == PS_OK) {
		rc = run->src.ops->position_reached(ck.position, NULL, &reached, err);
		if (rc != PS_OK)
			ps_error_add_context(err, "--job %s", run->o->job);
	}
	if (rc == PS_OK)
		snprintf(pos, len, "%s", ck.position);
	ps_checkpoint_free(&ck);
	free(body);
	return rc;
}

uint64_t ps__cmp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads L = the source's log position, writes a fence, and polls the job's
 * checkpoint in the target until it has reached L. */
int ps__cmp_wait_applied(cmp_run *run, ps_error *err)
{
	const cmp_side_ops *ops = run->src.ops;
	char wanted[CMP_POSITION_MAX] = "", applied[CMP_POSITION_MAX] = "";
	uint64_t start = ps__cmp_now_ms(), last_fence;
	struct timespec pause = {0, 20 * 1000 * 1000};
	bool reached = false;
	int rc;

	rc = ops->log_position(&run->src, wanted, sizeof(wanted), err);
	if (rc == PS_OK)
		rc = run->fence.ops->fence(&run->fence, err);
	last_fence = ps__cmp_now_ms();
	while (rc == PS_OK) {
		rc = ps__cmp_job_position(run, applied, sizeof(applied), err);
		if (rc == PS_OK)
			rc = ops->position_reached(applied, wanted, &reached, err);
		if (rc != PS_OK || reached)
			break;
		rc = ps__cmp_cancelled(run, err);
		if (rc != PS_OK)
			break;
		if (ps__cmp_now_ms() - start > (uint64_t)run->o->lag_timeout_ms) {
			rc = ps_error_set(err, PS_ETIMEOUT, "--job %s: the target did not apply past source "
			                  "position %s within %d ms (its checkpoint is at %s); is the "
			                  "job running?", run->o->job, wanted, run->o->lag_timeout_ms,
			                  applied);
			break;
		}
		if (ps__cmp_now_ms() - last_fence > 5000) {
			rc = run->fence.ops->fence(&run->fence, err);
			last_fence = ps__cmp_now_ms();
		}
		nanosleep(&pause, NULL);   /* a poll interval, not a wait for an outcome */
	}
	return rc;
}

/* ==== reading rows by key from either side ================================ */

static int fetch_keys(cmp_side *side, const cmp_table *t, char ***keys, size_t n,
                      bool for_share, cmp_rows *out, ps_error *err)
{
	return side->ops->fetch_keys(side, t, keys, n, for_share, out, err);
}

/* ==== recording differences =============================================== */

static int record(cmp_run *run, const cmp_table *t, ps_compare_table *tr, const cmp_items *d,
                  ps_error *err)
{
	for (size_t i = 0; i < d->n; i++) {
		const cmp_item *it = &d->v[i];
		const cmp_row *r = ps__cmp_item_row(it);
		ps_compare_diff *df;

		if (it->kind == PS_DIFF_MISSING_IN_TARGET)
			tr->missing++;
		else if (it->kind == PS_DIFF_EXTRA_IN_TARGET)
			tr->extra++;
		else
			tr->different++;
		if ((int64_t)tr->ndiffs >= run->o->max_report)
			continue;
		df = &tr->diffs[tr->ndiffs];
		memset(df, 0, sizeof(*df));
		df->kind = it->kind;
		df->key = calloc((size_t)t->nkey + 1, sizeof(char *));
		df->columns = calloc((size_t)t->ncols + 1, sizeof(int));
		if (!df->key || !df->columns) {
			free(df->key);
			free(df->columns);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		tr->ndiffs++;
		for (int k = 0; k < t->nkey; k++) {
			const char *v = r->val[t->key[k]];
			df->key[k] = strdup(v ? v : "");
			if (!df->key[k])
				return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		if (it->kind != PS_DIFF_DIFFERENT)
			continue;
		for (int c = 0; c < t->ncols; c++)
			if (!ps__cmp_equal(t->kind[c], it->src->val[c], it->src->len[c], it->tgt->val[c],
			                   it->tgt->len[c]))
				df->columns[df->ncolumns++] = c;
	}
	return PS_OK;
}

/* ==== resolving and repairing the keys of one range ======================= */

static int repair(cmp_run *run, const cmp_table *t, ps_compare_table *tr, const cmp_items *d,
                  ps_error *err)
{
	char ***del = calloc(d->n + 1, sizeof(char **));
	const cmp_row **put = calloc(d->n + 1, sizeof(cmp_row *));
	cmp_keys again = {NULL, 0, 0, t->nkey};
	cmp_rows s2, t2;
	cmp_items left = {0};
	size_t ndel = 0, nput = 0;
	int rc = PS_OK;

	ps__cmp_rows_init(&s2, ps__cmp_rows_limit(run));
	ps__cmp_rows_init(&t2, ps__cmp_rows_limit(run));
	if (!del || !put) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* key tuples of the extra rows, as char** */
	for (size_t i = 0; rc == PS_OK && i < d->n; i++) {
		rc = ps__cmp_keys_add(&again, t, ps__cmp_item_row(&d->v[i]), err);
		if (d->v[i].kind == PS_DIFF_EXTRA_IN_TARGET)
			del[ndel++] = again.k[again.n - 1];
		else
			put[nput++] = d->v[i].src;
	}
	if (rc == PS_OK)
		rc = run->tgt.ops->repair(&run->tgt, t, del, ndel, put, nput, err);
	if (rc != PS_OK)
		goto cleanup;
	tr->repaired = true;
	tr->repair_written += (int64_t)nput;
	tr->repair_deleted += (int64_t)ndel;
	/* check again: the same keys, both sides */
	rc = fetch_keys(&run->src, t, again.k, again.n, false, &s2, err);
	if (rc == PS_OK)
		rc = fetch_keys(&run->tgt, t, again.k, again.n, false, &t2, err);
	if (rc == PS_OK)
		rc = ps__cmp_rows_diff(t, &s2, &t2, &left, err);
	if (rc == PS_OK)
		tr->repair_remaining += (int64_t)left.n;
cleanup:
	ps__cmp_items_free(&left);
	ps__cmp_rows_free(&s2);
	ps__cmp_rows_free(&t2);
	ps__cmp_keys_free(&again);
	free(del);
	free(put);
	return rc;
}

/* Drops the extra_in_target items whose key the source has by now. */
static int drop_late_inserts(cmp_run *run, const cmp_table *t, cmp_items *d, ps_error *err)
{
	cmp_keys extra = {NULL, 0, 0, t->nkey};
	cmp_rows now;
	size_t w = 0;
	int rc = PS_OK;

	ps__cmp_rows_init(&now, ps__cmp_rows_limit(run));
	for (size_t i = 0; rc == PS_OK && i < d->n; i++)
		if (d->v[i].kind == PS_DIFF_EXTRA_IN_TARGET)
			rc = ps__cmp_keys_add(&extra, t, d->v[i].tgt, err);
	if (rc == PS_OK && extra.n > 0)
		rc = fetch_keys(&run->src, t, extra.k, extra.n, false, &now, err);
	if (rc == PS_OK && now.n > 0) {
		ps__cmp_rows_sort(&now);
		for (size_t i = 0; i < d->n; i++) {
			bool late = false;
			for (size_t j = 0; d->v[i].kind == PS_DIFF_EXTRA_IN_TARGET && j < now.n && !late; j++)
				late = now.r[j].keylen == d->v[i].tgt->keylen &&
				       memcmp(now.r[j].key, d->v[i].tgt->key, now.r[j].keylen) == 0;
			if (!late)
				d->v[w++] = d->v[i];
		}
		d->n = w;
	}
	ps__cmp_rows_free(&now);
	ps__cmp_keys_free(&extra);
	return rc;
}

int ps__cmp_resolve(cmp_run *run, const cmp_table *t, ps_compare_table *tr, cmp_keys *ks,
                   ps_error *err)
{
	bool job = run->o->job != NULL, open = false;
	cmp_rows s, g;
	cmp_items d = {0};
	int rc = PS_OK;

	if (ks->n == 0)
		return PS_OK;
	ps__cmp_rows_init(&s, ps__cmp_rows_limit(run));
	ps__cmp_rows_init(&g, ps__cmp_rows_limit(run));
	if (job) {
		rc = run->src.ops->txn_begin(&run->src, err);
		open = rc == PS_OK;
	}
	if (rc == PS_OK)
		rc = fetch_keys(&run->src, t, ks->k, ks->n, job, &s, err);
	if (rc == PS_OK && job)
		rc = ps__cmp_wait_applied(run, err);
	if (rc == PS_OK)
		rc = fetch_keys(&run->tgt, t, ks->k, ks->n, false, &g, err);
	if (rc == PS_OK)
		rc = ps__cmp_rows_diff(t, &s, &g, &d, err);
	if (rc == PS_OK && job) {
		rc = drop_late_inserts(run, t, &d, err);
		tr->settled += (int64_t)ks->n - (int64_t)d.n;
	}
	if (rc == PS_OK)
		rc = record(run, t, tr, &d, err);
	if (rc == PS_OK && run->o->repair && d.n > 0)
		rc = repair(run, t, tr, &d, err);
	if (open) {
		int rc2 = run->src.ops->txn_end(&run->src, rc == PS_OK, rc == PS_OK ? err : NULL);
		if (rc == PS_OK)
			rc = rc2;
	}
	ps__cmp_items_free(&d);
	ps__cmp_rows_free(&s);
	ps__cmp_rows_free(&g);
	return rc;
}

