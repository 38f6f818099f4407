/*
 * memsink.h — an in-memory transactional sink plugin ("memsink:///tgt") over
 * memdb.h, for tests/unit/test_pipeline.c; it keeps the contract of
 * penstock/sink.h for transactional targets.
 * Included by tests/unit/test_pipeline.c only: static definitions, since
 * the Makefile builds each tests/unit/test_*.c as one binary.
 *
 * NOTES ON THE DESIGN
 *
 * It models a transactional database. Each instance has an open transaction
 * (an overlay of the rows it changed, the tables it created or emptied, the
 * checkpoint it stored, the source transactions it committed), and flush
 * moves all of it into the committed state at once, under the target's
 * mutex; other instances see only committed rows. close drops the open
 * transaction, as a database rolls back the transaction of a connection
 * that went away: a run that ends with an error leaves exactly the committed
 * state, which is what a crash of penstock leaves in a real target. For the
 * power-cut test, every flush also writes the committed state to a file
 * (write, rename: all or nothing), from which the parent reloads it after
 * the child was SIGKILLed.
 *
 * It watches the core as it goes: a BEGIN, change or COMMIT out of place, a
 * flush inside a source transaction, a duplicate key or a missing row
 * outside reprocessing, and after every commit that the checkpoint it holds
 * is at the last source transaction its data holds (check_batch).
 *
 * Asynchronous mode (target_set_async; sink.h "Asynchronous durability"):
 * flush commits (visible to every instance) but the commit becomes durable
 * only later, as a database's WAL writer would make it. Commits are
 * numbered target-wide in commit order; the committed state after each is
 * kept as an image (the dump format below) until it is durable; the "WAL
 * writer" makes commits durable up to lag behind the newest, lag drawn
 * from 0..lag_max at each commit; durable(ASK) brings it to the newest or
 * the one before; durable(WAIT) and checkpoint_load (rule c) to the
 * newest. A crash of the target (target_crash) brings the committed state
 * back to the durable image, losing the newest commits whole; the power
 * cut's file then holds the durable image, not the committed state.
 */
#ifndef PS_TESTS_MEMSINK_H
#define PS_TESTS_MEMSINK_H

#include "core/checkpoint.h"
#include "penstock/sink.h"
#include "memdb.h"

/* ==== the in-memory transactional target (sink.h) ========================= */

/* A source transaction a sink instance committed (xid != 0; initial-load
 * units have none). */
typedef struct applied {
	uint64_t xid, commit;
	size_t n;
	uint64_t hash;
	bool redo;                   /* some change was written as reprocessing */
} applied;

typedef struct applog {
	applied *v;
	size_t n, cap;
} applog;

static void applog_add(applog *l, const applied *a)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		MUST(l->v);
	}
	l->v[l->n++] = *a;
}

typedef struct memtarget {
	pthread_mutex_t mu;          /* guards everything below */
	/* committed state */
	bool exists[NT];
	rowset rows[NT];
	char *ck;                    /* the checkpoint, NULL when none */
	applog log;                  /* source transactions, in commit order */
	/* derived from ck at each commit */
	bool has_ck;
	uint64_t ck_pos;
	/* what the instances did */
	applog seen;                 /* every source transaction committed by a sink
	                                instance, whether its target transaction
	                                committed or not */
	unsigned flushes, multi_txn_flushes, ck_checks, finishes;
	int open;                    /* sink instances open */
	char durable[512];           /* "": memory only; else a file every commit
	                                also rewrites (the power-cut test) */
	/* asynchronous mode (NOTES) */
	bool async;
	unsigned lag_max;            /* the WAL writer's pace: commits it may lag */
	uint64_t rng;
	uint64_t ncommits;           /* commits so far */
	uint64_t ndurable;           /* the first ndurable commits are durable */
	struct image {
		uint64_t commit;
		char *text;              /* the committed state after it */
		bool has_ck;
		uint64_t ck_pos;
	} *img;                      /* commits not yet durable, in order */
	size_t nimg, img_cap;
	char *durable_img;           /* the committed state after commit ndurable */
	bool durable_has_ck;
	uint64_t durable_ck_pos;
	unsigned gap_acks;           /* acknowledgements made while the target held
	                                commits not yet durable (test_pipeline.c) */
} memtarget;

static memtarget *g_tgt;         /* the target memsink:///tgt names */

/* One table's part of an open target transaction. */
typedef struct otable {
	bool created, truncated;
	bool touched[MAX_ID + 1];    /* keyed: the row's fate is rows.byid[id] */
	rowset rows;                 /* keyed: new versions (NULL: deleted);
	                                keyless: rows added */
} otable;

struct ps_sink {
	memtarget *tgt;
	uint64_t nflush;             /* sink.h rule a */
	struct mark {
		uint64_t flush, commit;  /* this instance's flush is the target's commit */
	} *marks;                    /* flushes not yet durable, in order */
	size_t nmarks, marks_cap;
	otable ov[NT];
	bool ck_set;                 /* the transaction stored (or deleted) the checkpoint */
	char *ck;
	applog done;                 /* source transactions committed into it */
	bool in_src;                 /* between a source transaction's begin and commit */
	ps_txn src;                  /* that transaction as at its begin */
	size_t nchanges;
	uint64_t hash;
	bool redo;
};

static int mem_snk_open(ps_sink **out, const ps_sink_config *cfg, ps_error *err)
{
	ps_sink *k;
	ps_url u;

	*out = NULL;
	if (ps_url_parse(&u, cfg->url, err) != PS_OK || strcmp(u.path, "/tgt") != 0 || !g_tgt)
		return ps_error_set(err, PS_ECONNECT, "no in-memory target at %s", cfg->url);
	k = calloc(1, sizeof(*k));
	MUST(k);
	k->tgt = g_tgt;
	pthread_mutex_lock(&k->tgt->mu);
	k->tgt->open++;
	pthread_mutex_unlock(&k->tgt->mu);
	*out = k;
	return PS_OK;
}

/* Whether the transaction sees table t (committed, or created in it). */
static bool ov_table_exists(ps_sink *k, int t)
{
	bool e;

	pthread_mutex_lock(&k->tgt->mu);
	e = k->tgt->exists[t] || k->ov[t].created;
	pthread_mutex_unlock(&k->tgt->mu);
	return e;
}

/* Whether the transaction sees row id of keyed table t. */
static bool ov_row_exists(ps_sink *k, int t, long id)
{
	bool e;

	if (k->ov[t].touched[id])
		return k->ov[t].rows.byid[id] != NULL;
	if (k->ov[t].truncated)
		return false;
	pthread_mutex_lock(&k->tgt->mu);
	e = k->tgt->rows[t].byid[id] != NULL;
	pthread_mutex_unlock(&k->tgt->mu);
	return e;
}

/* Whether the transaction sees a row of keyless table t equal to r. */
static bool ov_keyless_has(ps_sink *k, int t, const row *r)
{
	bool e = false;

	for (size_t i = 0; i < k->ov[t].rows.n && !e; i++)
		e = row_equal(k->ov[t].rows.list[i], r);
	if (e || k->ov[t].truncated)
		return e;
	pthread_mutex_lock(&k->tgt->mu);
	for (size_t i = 0; i < k->tgt->rows[t].n && !e; i++)
		e = row_equal(k->tgt->rows[t].list[i], r);
	pthread_mutex_unlock(&k->tgt->mu);
	return e;
}

static void ov_put(otable *ov, long id, row *r)
{
	row_free(ov->rows.byid[id]);
	ov->rows.byid[id] = r;
	ov->touched[id] = true;
}

static void ov_truncate(otable *ov)
{
	rs_clear(&ov->rows);
	memset(ov->touched, 0, sizeof(ov->touched));
	ov->truncated = true;
}

static row *row_of_values(const ps_value *v)
{
	row *r = calloc(1, sizeof(*r));

	MUST(r);
	for (int i = 0; i < NCOL; i++) {
		if (v[i].kind == PS_VALUE_UNCHANGED)
			violation(V_CONTRACT, "an unchanged value reached the sink");
		r->v[i] = v[i].kind == PS_VALUE_TEXT ? xstrdup(v[i].data) : NULL;
	}
	return r;
}

/* sink.h "Applying changes", on the open transaction. */
static int ov_apply(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	int t = c->table ? table_index(c->table->schema, c->table->name) : -1;
	bool redo = txn->reprocessing;
	const ps_value *keyv;
	long id;

	if (c->op == PS_OP_MESSAGE)
		return PS_OK;
	if (t < 0 || !ov_table_exists(k, t))
		return ps_error_set(err, PS_ESERVER, "relation %s.%s does not exist",
		                    c->table ? c->table->schema : "?", c->table ? c->table->name : "?");
	if (c->op == PS_OP_TRUNCATE) {
		ov_truncate(&k->ov[t]);
		return PS_OK;
	}
	if (!TABLES[t].keyed) {
		row *r;

		if (c->op != PS_OP_INSERT && c->op != PS_OP_READ)
			return ps_error_set(err, PS_EINVAL, "memsink models keyless tables as insert-only");
		r = row_of_values(c->new_values);
		if (redo && ov_keyless_has(k, t, r))
			row_free(r);   /* the key is every column: an upsert finds it */
		else
			rs_append(&k->ov[t].rows, r);
		return PS_OK;
	}
	keyv = c->old_values ? c->old_values : c->new_values;
	id = keyv && keyv[0].kind == PS_VALUE_TEXT ? key_of(keyv[0].data) : -1;
	if (id < 0)
		return ps_error_set(err, PS_EINVAL, "no valid key in a change of %s", TABLES[t].name);
	switch (c->op) {
	case PS_OP_INSERT:
	case PS_OP_READ:
		if (!redo && ov_row_exists(k, t, id)) {
			violation(V_APPLY, "duplicate key %s.id=%ld (xid %llu)", TABLES[t].name, id,
			          (unsigned long long)txn->xid);
			return ps_error_set(err, PS_ESERVER, "duplicate key %s.id=%ld", TABLES[t].name, id);
		}
		ov_put(&k->ov[t], id, row_of_values(c->new_values));
		return PS_OK;
	case PS_OP_UPDATE:
		if (!redo && !ov_row_exists(k, t, id)) {
			violation(V_APPLY, "update of missing row %s.id=%ld (xid %llu)", TABLES[t].name, id,
			          (unsigned long long)txn->xid);
			return PS_OK;
		}
		ov_put(&k->ov[t], id, row_of_values(c->new_values));
		return PS_OK;
	case PS_OP_DELETE:
		if (!redo && !ov_row_exists(k, t, id))
			violation(V_APPLY, "delete of missing row %s.id=%ld (xid %llu)", TABLES[t].name, id,
			          (unsigned long long)txn->xid);
		ov_put(&k->ov[t], id, NULL);
		return PS_OK;
	default:
		return ps_error_set(err, PS_EINVAL, "unknown op %c", c->op);
	}
}

static int mem_snk_begin(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	if (k->in_src)
		violation(V_TXN, "BEGIN of xid %llu inside xid %llu", (unsigned long long)txn->xid,
		          (unsigned long long)k->src.xid);
	k->in_src = true;
	k->src = *txn;
	k->nchanges = 0;
	k->hash = FNV0;
	k->redo = false;
	return PS_OK;
}

static int mem_snk_write(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	if (!k->in_src || txn->xid != k->src.xid)
		violation(V_TXN, "a change of xid %llu %s", (unsigned long long)txn->xid,
		          k->in_src ? "inside another transaction" : "outside any transaction");
	k->nchanges++;
	k->hash = txn_fold(k->hash, change_hash(c));
	k->redo |= txn->reprocessing;
	return ov_apply(k, txn, c, err);
}

static int mem_snk_commit(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	applied a = {txn->xid, pos_parse(txn->position), k->nchanges, k->hash, k->redo};

	if (!k->in_src || txn->xid != k->src.xid)
		violation(V_TXN, "COMMIT of xid %llu %s", (unsigned long long)txn->xid,
		          k->in_src ? "inside another transaction" : "without its BEGIN");
	k->in_src = false;
	if (!txn->xid)
		return PS_OK;   /* an initial-load unit */
	applog_add(&k->done, &a);
	pthread_mutex_lock(&k->tgt->mu);
	applog_add(&k->tgt->seen, &a);
	pthread_mutex_unlock(&k->tgt->mu);
	return PS_OK;
}

/* The open transaction goes: rows, flags, checkpoint, source transactions. */
static void txn_reset(ps_sink *k)
{
	for (int t = 0; t < NT; t++) {
		ov_truncate(&k->ov[t]);
		k->ov[t].truncated = k->ov[t].created = false;
	}
	free(k->ck);
	k->ck = NULL;
	k->ck_set = false;
	k->done.n = 0;
}

static void ov_merge(memtarget *tgt, otable *ov, int t)
{
	rowset *rs = &tgt->rows[t];

	if (ov->created)
		tgt->exists[t] = true;
	if (ov->truncated)
		rs_clear(rs);
	for (int id = 0; id <= MAX_ID; id++) {
		if (!ov->touched[id])
			continue;
		row_free(rs->byid[id]);
		rs->byid[id] = ov->rows.byid[id];
		ov->rows.byid[id] = NULL;
		ov->touched[id] = false;
	}
	for (size_t i = 0; i < ov->rows.n; i++)
		rs_append(rs, ov->rows.list[i]);
	ov->rows.n = 0;
}

/* The committed checkpoint's position, for the checks (under mu). */
static void parse_committed_ck(memtarget *tgt)
{
	ps_checkpoint ck;
	ps_error err;

	tgt->has_ck = false;
	if (!tgt->ck)
		return;
	ps_error_clear(&err);
	if (ps_checkpoint_from_text(&ck, tgt->ck, "memsink", &err) != PS_OK) {
		violation(V_BATCH, "the committed checkpoint does not parse: %s", err.message);
		return;
	}
	tgt->has_ck = true;
	tgt->ck_pos = pos_parse(ck.position);
	ps_checkpoint_free(&ck);
}

/* Invariant 2, after every commit: the checkpoint committed with the data
 * is at the last source transaction the data holds (under mu). */
static void check_batch(memtarget *tgt)
{
	const applied *last;

	parse_committed_ck(tgt);
	if (tgt->log.n == 0)
		return;
	last = &tgt->log.v[tgt->log.n - 1];
	tgt->ck_checks++;
	if (!tgt->has_ck)
		violation(V_BATCH, "data up to %llu committed without a checkpoint",
		          (unsigned long long)last->commit);
	else if (tgt->ck_pos != last->commit)
		violation(V_BATCH, "committed checkpoint at %llu, committed data up to %llu (%s)",
		          (unsigned long long)tgt->ck_pos, (unsigned long long)last->commit,
		          tgt->ck_pos > last->commit ? "ahead" : "behind");
}

static int target_dump(memtarget *tgt, const char *path);
static void async_commit(memtarget *tgt);
static void durable_to(memtarget *tgt, uint64_t commit);

static int mem_snk_flush(ps_sink *k, ps_error *err)
{
	memtarget *tgt = k->tgt;

	if (k->in_src)
		violation(V_TXN, "flush inside source transaction xid %llu: a batch must end at a COMMIT",
		          (unsigned long long)k->src.xid);
	pthread_mutex_lock(&tgt->mu);
	for (int t = 0; t < NT; t++)
		ov_merge(tgt, &k->ov[t], t);
	if (k->ck_set) {
		free(tgt->ck);
		tgt->ck = k->ck;
		k->ck = NULL;
	}
	for (size_t i = 0; i < k->done.n; i++)
		applog_add(&tgt->log, &k->done.v[i]);
	tgt->flushes++;
	tgt->multi_txn_flushes += k->done.n > 1;
	check_batch(tgt);
	k->nflush++;
	if (tgt->async) {
		async_commit(tgt);
		if (k->nmarks == k->marks_cap) {
			k->marks_cap = k->marks_cap ? 2 * k->marks_cap : 16;
			k->marks = realloc(k->marks, k->marks_cap * sizeof(*k->marks));
			MUST(k->marks);
		}
		k->marks[k->nmarks++] = (struct mark){k->nflush, tgt->ncommits};
	} else if (tgt->durable[0]) {
		MUST(target_dump(tgt, tgt->durable) == 0);
	}
	pthread_mutex_unlock(&tgt->mu);
	txn_reset(k);
	return PS_OK;
}

/* sink.h durable, in asynchronous mode (NOTES). */
static int mem_snk_durable(ps_sink *k, int how, uint64_t *through, ps_error *err)
{
	memtarget *tgt = k->tgt;
	size_t n = 0;

	if (how < PS_DURABLE_KNOWN || how > PS_DURABLE_WAIT)
		violation(V_CONTRACT, "durable asked with how %d", how);
	if (how == PS_DURABLE_WAIT && k->in_src)
		violation(V_CONTRACT, "durable(WAIT) inside source transaction xid %llu",
		          (unsigned long long)k->src.xid);
	pthread_mutex_lock(&tgt->mu);
	if (tgt->async && how == PS_DURABLE_ASK)
		durable_to(tgt, tgt->ncommits - (rng_next(&tgt->rng) % 2 && tgt->ncommits ? 1 : 0));
	if (tgt->async && how == PS_DURABLE_WAIT)
		durable_to(tgt, tgt->ncommits);
	while (n < k->nmarks && k->marks[n].commit <= tgt->ndurable)
		n++;
	pthread_mutex_unlock(&tgt->mu);
	memmove(k->marks, k->marks + n, (k->nmarks - n) * sizeof(*k->marks));
	k->nmarks -= n;
	*through = k->nmarks ? k->marks[0].flush - 1 : k->nflush;
	return PS_OK;
}

static int mem_snk_checkpoint_load(ps_sink *k, char **json, ps_error *err)
{
	pthread_mutex_lock(&k->tgt->mu);
	if (k->tgt->async)   /* sink.h rule c */
		durable_to(k->tgt, k->tgt->ncommits);
	*json = xstrdup(k->ck_set ? k->ck : k->tgt->ck);
	pthread_mutex_unlock(&k->tgt->mu);
	return PS_OK;
}

static int mem_snk_checkpoint_store(ps_sink *k, const char *json, ps_error *err)
{
	free(k->ck);
	k->ck = xstrdup(json);
	k->ck_set = true;
	return PS_OK;
}

static int mem_snk_checkpoint_delete(ps_sink *k, ps_error *err)
{
	free(k->ck);
	k->ck = NULL;
	k->ck_set = true;
	return PS_OK;
}

static int mem_snk_table_prepare(ps_sink *k, const ps_table_def *def, const ps_table_options *opt,
                                 bool *created, ps_error *err)
{
	int t = table_index(def->table->schema, def->table->name);
	bool exists, rows;

	*created = false;
	if (t < 0)
		return ps_error_set(err, PS_EINVAL, "memsink has no table %s", def->table->name);
	pthread_mutex_lock(&k->tgt->mu);
	exists = k->tgt->exists[t] || k->ov[t].created;
	rows = rs_count(&k->tgt->rows[t]) > 0;
	pthread_mutex_unlock(&k->tgt->mu);
	if (!exists && opt->create == PS_CREATE_NEVER)
		return ps_error_set(err, PS_EINVAL, "table %s is missing", def->table->name);
	if (exists && opt->create == PS_CREATE_DROP_AND_CREATE) {
		ov_truncate(&k->ov[t]);
		*created = true;
		return PS_OK;
	}
	if (exists && rows && !opt->truncate_before_load)
		return ps_error_set(err, PS_EINVAL, "table %s holds rows; set target.truncate_before_load",
		                    def->table->name);
	if (exists && rows)
		ov_truncate(&k->ov[t]);
	k->ov[t].created |= !exists;
	*created = !exists;
	return PS_OK;
}

static int mem_snk_table_finish(ps_sink *k, const ps_table_def *def, ps_error *err)
{
	pthread_mutex_lock(&k->tgt->mu);
	k->tgt->finishes++;
	pthread_mutex_unlock(&k->tgt->mu);
	return PS_OK;
}

/* Does not flush: the open transaction is rolled back. */
static void mem_snk_close(ps_sink *k)
{
	if (!k)
		return;
	txn_reset(k);
	for (int t = 0; t < NT; t++)
		rs_free(&k->ov[t].rows);
	free(k->done.v);
	free(k->marks);
	pthread_mutex_lock(&k->tgt->mu);
	k->tgt->open--;
	pthread_mutex_unlock(&k->tgt->mu);
	free(k);
}

static const char *const memsink_schemes[] = {"memsink", NULL};

static const ps_sink_ops memsink_ops = {
	.abi_version = PS_SINK_ABI_VERSION,
	.name = "memsink",
	.url_schemes = memsink_schemes,
	.max_writers = 0,
	.open = mem_snk_open,
	.begin = mem_snk_begin,
	.write = mem_snk_write,
	.commit = mem_snk_commit,
	.flush = mem_snk_flush,
	.checkpoint_load = mem_snk_checkpoint_load,
	.checkpoint_store = mem_snk_checkpoint_store,
	.checkpoint_delete = mem_snk_checkpoint_delete,
	.table_prepare = mem_snk_table_prepare,
	.table_finish = mem_snk_table_finish,
	.close = mem_snk_close,
	.durable = mem_snk_durable,
};

/* ---- the committed state in a file (power cut) ---------------------------- */

/* Text, each string as "<len>:<bytes>" or "-" for NULL. */
static void put_str(FILE *f, const char *s)
{
	if (!s)
		fputs("-\n", f);
	else
		fprintf(f, "%zu:%s\n", strlen(s), s);
}

static bool get_str(FILE *f, char **out)
{
	size_t n;
	int c = fgetc(f);

	*out = NULL;
	if (c == '-')
		return fgetc(f) == '\n';
	ungetc(c, f);
	if (fscanf(f, "%zu:", &n) != 1)
		return false;
	*out = malloc(n + 1);
	MUST(*out);
	if (fread(*out, 1, n, f) != n || fgetc(f) != '\n')
		return false;
	(*out)[n] = '\0';
	return true;
}

/* The committed state as text (under mu). */
static void target_write(memtarget *tgt, FILE *f)
{
	for (int t = 0; t < NT; t++) {
		const rowset *rs = &tgt->rows[t];

		fprintf(f, "table %d %d %zu\n", t, tgt->exists[t], rs_count(rs));
		for (int id = 0; id <= MAX_ID; id++)
			for (int c = 0; rs->byid[id] && c < NCOL; c++)
				put_str(f, rs->byid[id]->v[c]);
		for (size_t i = 0; i < rs->n; i++)
			for (int c = 0; c < NCOL; c++)
				put_str(f, rs->list[i]->v[c]);
	}
	put_str(f, tgt->ck);
	fprintf(f, "log %zu\n", tgt->log.n);
	for (size_t i = 0; i < tgt->log.n; i++) {
		const applied *a = &tgt->log.v[i];
		fprintf(f, "%llu %llu %zu %llu %d\n", (unsigned long long)a->xid,
		        (unsigned long long)a->commit, a->n, (unsigned long long)a->hash, a->redo);
	}
}

/* The committed state as a malloc'd string (under mu). */
static char *target_text(memtarget *tgt)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	MUST(f);
	target_write(tgt, f);
	MUST(fclose(f) == 0 && text);
	return text;
}

/* Writes text to path: all or nothing, by rename. */
static int text_to_file(const char *text, const char *path)
{
	char tmp[600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fputs(text, f);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* Writes what survives a power cut (under mu): the committed state, or in
 * asynchronous mode the durable one. */
static int target_dump(memtarget *tgt, const char *path)
{
	char *text = tgt->async ? NULL : target_text(tgt);
	int rc = text_to_file(tgt->async ? tgt->durable_img : text, path);

	free(text);
	return rc;
}

static bool target_read(memtarget *tgt, FILE *f);

/* Replaces the committed state with the file's. */
static int target_load(memtarget *tgt, const char *path)
{
	FILE *f = fopen(path, "r");
	bool ok;

	pthread_mutex_lock(&tgt->mu);
	ok = target_read(tgt, f);
	if (ok && tgt->async) {   /* what came back is what is durable */
		free(tgt->durable_img);
		tgt->durable_img = target_text(tgt);
		tgt->durable_has_ck = tgt->has_ck;
		tgt->durable_ck_pos = tgt->ck_pos;
		tgt->ndurable = tgt->ncommits;
		for (size_t i = 0; i < tgt->nimg; i++)
			free(tgt->img[i].text);
		tgt->nimg = 0;
	}
	pthread_mutex_unlock(&tgt->mu);
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* Replaces the committed state with f's (under mu); f may be NULL. */
static bool target_read(memtarget *tgt, FILE *f)
{
	bool ok = f != NULL;
	size_t n = 0;

	for (int t = 0; t < NT; t++)
		rs_clear(&tgt->rows[t]);
	free(tgt->ck);
	tgt->ck = NULL;
	tgt->log.n = 0;
	for (int t = 0; t < NT && ok; t++) {
		int ti, e;

		ok = fscanf(f, "table %d %d %zu\n", &ti, &e, &n) == 3 && ti == t;
		tgt->exists[t] = e;
		for (size_t i = 0; i < n && ok; i++) {
			row *r = calloc(1, sizeof(*r));

			MUST(r);
			for (int c = 0; c < NCOL && ok; c++)
				ok = get_str(f, &r->v[c]);
			if (ok && TABLES[t].keyed && key_of(r->v[0]) > 0)
				tgt->rows[t].byid[key_of(r->v[0])] = r;
			else if (ok && !TABLES[t].keyed)
				rs_append(&tgt->rows[t], r);
			else
				row_free(r);
		}
	}
	ok = ok && get_str(f, &tgt->ck) && fscanf(f, "log %zu\n", &n) == 1;
	for (size_t i = 0; i < n && ok; i++) {
		unsigned long long xid, commit, hash;
		int redo;
		applied a;

		ok = fscanf(f, "%llu %llu %zu %llu %d\n", &xid, &commit, &a.n, &hash, &redo) == 5;
		a.xid = xid;
		a.commit = commit;
		a.hash = hash;
		a.redo = redo;
		if (ok)
			applog_add(&tgt->log, &a);
	}
	parse_committed_ck(tgt);
	return ok;
}

/* ---- asynchronous mode (NOTES) ---------------------------------------------- */

/* Commits up to `commit` become durable (under mu); never backwards. */
static void durable_to(memtarget *tgt, uint64_t commit)
{
	size_t n = 0;

	if (commit <= tgt->ndurable)
		return;
	MUST(commit <= tgt->ncommits);
	while (n < tgt->nimg && tgt->img[n].commit <= commit)
		n++;
	MUST(n > 0 && tgt->img[n - 1].commit == commit);
	free(tgt->durable_img);
	tgt->durable_img = tgt->img[n - 1].text;
	tgt->durable_has_ck = tgt->img[n - 1].has_ck;
	tgt->durable_ck_pos = tgt->img[n - 1].ck_pos;
	for (size_t i = 0; i + 1 < n; i++)
		free(tgt->img[i].text);
	memmove(tgt->img, tgt->img + n, (tgt->nimg - n) * sizeof(*tgt->img));
	tgt->nimg -= n;
	tgt->ndurable = commit;
	if (tgt->durable[0])
		MUST(text_to_file(tgt->durable_img, tgt->durable) == 0);
}

/* A flush committed (under mu): its image is kept until it is durable, and
 * the WAL writer moves on. */
static void async_commit(memtarget *tgt)
{
	unsigned lag;

	if (tgt->nimg == tgt->img_cap) {
		tgt->img_cap = tgt->img_cap ? 2 * tgt->img_cap : 16;
		tgt->img = realloc(tgt->img, tgt->img_cap * sizeof(*tgt->img));
		MUST(tgt->img);
	}
	tgt->ncommits++;
	tgt->img[tgt->nimg++] = (struct image){tgt->ncommits, target_text(tgt), tgt->has_ck,
	                                       tgt->ck_pos};
	lag = tgt->lag_max ? rng_next(&tgt->rng) % (tgt->lag_max + 1) : 0;
	if (tgt->ncommits > lag)
		durable_to(tgt, tgt->ncommits - lag);
}

/* From now on the target commits asynchronously, the WAL writer lagging up
 * to lag_max commits; what it holds now is durable. */
static void target_set_async(memtarget *tgt, unsigned lag_max, uint64_t seed)
{
	pthread_mutex_lock(&tgt->mu);
	tgt->async = true;
	tgt->lag_max = lag_max;
	tgt->rng = seed;
	free(tgt->durable_img);
	tgt->durable_img = target_text(tgt);
	tgt->durable_has_ck = tgt->has_ck;
	tgt->durable_ck_pos = tgt->ck_pos;
	tgt->ndurable = tgt->ncommits;
	pthread_mutex_unlock(&tgt->mu);
}

/* A crash of the target server: every instance is gone (their open
 * transactions rolled back); in asynchronous mode the commits not yet
 * durable are lost, whole. */
static void target_crash(memtarget *tgt)
{
	FILE *f;

	if (!tgt->async)
		return;
	pthread_mutex_lock(&tgt->mu);
	f = fmemopen(tgt->durable_img, strlen(tgt->durable_img), "r");
	MUST(f && target_read(tgt, f));
	fclose(f);
	for (size_t i = 0; i < tgt->nimg; i++)
		free(tgt->img[i].text);
	tgt->nimg = 0;
	tgt->ncommits = tgt->ndurable;
	MUST(tgt->has_ck == tgt->durable_has_ck && tgt->ck_pos == tgt->durable_ck_pos);
	pthread_mutex_unlock(&tgt->mu);
}

static void target_init(memtarget *tgt)
{
	memset(tgt, 0, sizeof(*tgt));
	pthread_mutex_init(&tgt->mu, NULL);
}

static void target_free(memtarget *tgt)
{
	for (int t = 0; t < NT; t++)
		rs_free(&tgt->rows[t]);
	free(tgt->ck);
	free(tgt->log.v);
	free(tgt->seen.v);
	for (size_t i = 0; i < tgt->nimg; i++)
		free(tgt->img[i].text);
	free(tgt->img);
	free(tgt->durable_img);
	pthread_mutex_destroy(&tgt->mu);
}

#endif
