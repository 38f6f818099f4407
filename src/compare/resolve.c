/*
 * resolve.c — the keys a range yielded, made final: read again by key on
 * both sides (against a running job: after the target applied past the
 * source position they were read at, with the source rows locked), classed,
 * recorded in the report, and repaired when asked. See NOTES ON THE DESIGN
 * 3-5 in compare.c. Also the helpers the driver shares with it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare/cmp_internal.h"
#include "core/checkpoint.h"
#include "util/pgconn.h"

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

int ps__cmp_job_position(cmp_run *run, uint64_t *pos, ps_error *err)
{
	const char *params[1] = {run->o->job};
	ps_checkpoint ck;
	char *body = NULL;
	bool found = false;
	int rc;

	memset(&ck, 0, sizeof(ck));
	if (run->tgt.is_sqlite) {
		rc = ps__cmp_lite_checkpoint(&run->tgt, run->o->job, &body, &found, err);
	} else {
		rc = ps__cmp_pg_text(&run->tgt, "SELECT to_regclass('penstock.checkpoint')::text", 0,
		                     NULL, &body, "looking for penstock.checkpoint", err);
		if (rc == PS_OK && body) {
			free(body);
			rc = ps__cmp_pg_text(&run->tgt,
			                     "SELECT body FROM penstock.checkpoint WHERE job = $1", 1,
			                     params, &body, "reading the job's checkpoint", err);
		}
		found = body != NULL;
	}
	if (rc != PS_OK)
		return rc;
	if (!found) {
		free(body);
		return ps_error_set(err, PS_EINVAL, "--job %s: the target holds no checkpoint of that "
		                    "job (is it the job that replicates into this target?)", run->o->job);
	}
	rc = ps_checkpoint_from_text(&ck, body, "the job's checkpoint", err);
	if (rc == PS_OK && ps__cmp_parse_lsn(ck.position, pos) != PS_OK)
		rc = ps_error_set(err, PS_ECHECKPOINT, "--job %s: checkpoint position '%s' is not a "
		                  "PostgreSQL LSN", run->o->job, ck.position);
	ps_checkpoint_free(&ck);
	free(body);
	return rc;
}

static int emit_fence(cmp_run *run, ps_error *err)
{
	return ps__cmp_pg_simple(&run->fence,
	                         "SELECT pg_logical_emit_message(true, 'penstock.fence', '')",
	                         "writing a fence message", err);
}

uint64_t ps__cmp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads L = the source's WAL insert position, writes a fence, and polls the
 * job's checkpoint in the target until it is past L. */
int ps__cmp_wait_applied(cmp_run *run, ps_error *err)
{
	char *text = NULL;
	uint64_t lsn = 0, pos = 0, start = ps__cmp_now_ms(), last_fence;
	struct timespec pause = {0, 20 * 1000 * 1000};
	int rc;

	rc = ps__cmp_pg_text(&run->src, "SELECT pg_current_wal_insert_lsn()::text", 0, NULL, &text,
	                     "reading the WAL position", err);
	if (rc == PS_OK && (!text || ps__cmp_parse_lsn(text, &lsn) != PS_OK))
		rc = ps_error_set(err, PS_EPROTO, "unexpected WAL position '%s'", text ? text : "");
	free(text);
	if (rc == PS_OK)
		rc = emit_fence(run, err);
	last_fence = ps__cmp_now_ms();
	while (rc == PS_OK) {
		rc = ps__cmp_job_position(run, &pos, err);
		if (rc != PS_OK || pos >= lsn)
			break;
		rc = ps__cmp_cancelled(run, err);
		if (rc != PS_OK)
			break;
		if (ps__cmp_now_ms() - start > (uint64_t)run->o->lag_timeout_ms) {
			rc = ps_error_set(err, PS_ETIMEOUT, "--job %s: the target did not apply past source "
			                  "position %X/%X within %d ms (its checkpoint is at %X/%X); is the "
			                  "job running?", run->o->job, (unsigned)(lsn >> 32), (unsigned)lsn,
			                  run->o->lag_timeout_ms, (unsigned)(pos >> 32), (unsigned)pos);
			break;
		}
		if (ps__cmp_now_ms() - last_fence > 5000) {
			rc = emit_fence(run, err);
			last_fence = ps__cmp_now_ms();
		}
		nanosleep(&pause, NULL);   /* a poll interval, not a wait for an outcome */
	}
	return rc;
}

/* ==== reading rows by key from either side ================================ */

int ps__cmp_fetch_keys(cmp_run *run, bool target, const cmp_table *t, char ***keys, size_t n,
                      bool for_share, cmp_rows *out, ps_error *err)
{
	if (target && run->tgt.is_sqlite)
		return ps__cmp_lite_fetch_keys(&run->tgt, t, keys, n, out, err);
	return ps__cmp_pg_fetch_keys(target ? &run->tgt : &run->src, t, target, keys, n,
	                             for_share, out, err);
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
		rc = run->tgt.is_sqlite ? ps__cmp_lite_repair(&run->tgt, t, del, ndel, put, nput, err)
		                        : ps__cmp_pg_repair(&run->tgt, t, del, ndel, put, nput, err);
	if (rc != PS_OK)
		goto cleanup;
	tr->repaired = true;
	tr->repair_written += (int64_t)nput;
	tr->repair_deleted += (int64_t)ndel;
	/* check again: the same keys, both sides */
	rc = ps__cmp_fetch_keys(run, false, t, again.k, again.n, false, &s2, err);
	if (rc == PS_OK)
		rc = ps__cmp_fetch_keys(run, true, t, again.k, again.n, false, &t2, err);
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
		rc = ps__cmp_fetch_keys(run, false, t, extra.k, extra.n, false, &now, err);
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
		rc = ps__cmp_pg_simple(&run->src, "BEGIN", "starting a transaction", err);
		open = rc == PS_OK;
	}
	if (rc == PS_OK)
		rc = ps__cmp_fetch_keys(run, false, t, ks->k, ks->n, job, &s, err);
	if (rc == PS_OK && job)
		rc = ps__cmp_wait_applied(run, err);
	if (rc == PS_OK)
		rc = ps__cmp_fetch_keys(run, true, t, ks->k, ks->n, false, &g, err);
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
		int rc2 = ps__cmp_pg_simple(&run->src, rc == PS_OK ? "COMMIT" : "ROLLBACK",
		                            "ending a transaction", rc == PS_OK ? err : NULL);
		if (rc == PS_OK)
			rc = rc2;
	}
	ps__cmp_items_free(&d);
	ps__cmp_rows_free(&s);
	ps__cmp_rows_free(&g);
	return rc;
}

