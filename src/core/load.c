/*
 * load.c — the initial load (see load.h).
 *
 * NOTES ON THE DESIGN
 *
 * Threads: the calling thread (main) owns cfg->snk and finishes tables;
 * N copy workers each own one source copier (a connection that imported the
 * snapshot) and one sink instance. They share the unit list, the checkpoint
 * and the per-table counters, all under `mu`, plus atomic row counters.
 *
 *   worker: take units ─► each: begin ─► copy rows (op r) ─► commit
 *           ─► [mu] mark them done, fault snapshot.unit.commit, checkpoint_commit
 *   main:   wait ─► tables whose units are all done ─► each: table_finish
 *           ─► [mu] mark them finished, checkpoint_commit ─► ... ─► ILEND
 *
 * Invariants:
 *   1. A unit is marked done in the checkpoint that commits with its rows
 *      (transactional targets: the same target transaction), so a crash at any
 *      instant leaves each unit either wholly present and done, or absent
 *      and not done. Checkpoint commits are serialised by `mu`, so each one
 *      carries every unit that committed before it.
 *   2. Units are key ranges of the primary key (or whole tables), which stay
 *      the same across snapshots: after a restart the unfinished ones are
 *      copied under a new snapshot and every unit records the point it was
 *      copied at. The pipeline later replays the log between the oldest and
 *      newest of those points in re-processing mode (seed 002, ILUPDATE).
 *   3. Keys and indexes are built once all units of a table are done, in a
 *      target transaction with the checkpoint that says so; table_finish is
 *      idempotent, so a crash in between only repeats it.
 *   4. The table set of a resumed load must equal the planned one: a table
 *      that appeared or vanished meanwhile is refused with what to do.
 *   5. Live limits (cfg->limits, core/ratelimit.h): every row takes from the
 *      job's rate-limit bucket (on the raw path too: while a limit is in
 *      force, a piece's rows pay one by one before it goes), and the number
 *      of workers follows
 *      snapshot.parallel while the load runs: worker i stops before its next
 *      unit once i >= parallel; main starts workers in free slots below it
 *      while units remain.
 *   6. A unit is copied one of two ways, chosen once per table and run
 *      (the first worker to reach a table judges it, under `path_mu`, and
 *      logs the choice): row by row (copy_unit ─► op r writes), or raw
 *      (copy_unit_raw ─► load_raw_*) when both plugins offer the raw path,
 *      the source names a format for the table and the sink accepts it for
 *      the table as the target holds it. Either way the unit is one target
 *      transaction committed with the checkpoint (invariant 1); the raw path
 *      also checks that the rows the source walked are the rows the target
 *      took.
 *   7. A partitioned table with a primary key is copied one leaf partition a
 *      unit, in parallel (ps_ck_table.parts); its rows go into the target
 *      table, which routes them (or is one table, SQLite). Without a key it
 *      stays one unit, like any table without one, so that no row of it is
 *      applied twice after a resumed load.
 *   8. Once every table is finished, the objects the source describes for
 *      after the load (foreign keys, sequence values, target.schema full)
 *      are created by the sink in the transaction that commits ILEND: a
 *      crash before it repeats them, a crash after it never needs them again.
 *   9. Checkpoints are batched, because each one carries every table. A
 *      worker takes after its unit the next ones while their estimated rows
 *      stay under cfg->batch_rows (snapshot.chunk_rows: what one key range
 *      of a split table holds, so a crash repeats no more work than one
 *      range did; todo is biggest first, so the batches are the many small
 *      tables at the end, and a split table's ranges, over half of
 *      chunk_rows each, still go one a checkpoint), copies each in its own
 *      sink transaction and marks them all done in one checkpoint, which
 *      the sink's flush commits with all their rows (transactional targets:
 *      a crash before it loses the batch's rows and marks together). Main
 *      likewise finishes the tables ready at once, up to
 *      FINISH_BATCH_TABLES or one second of index building, under one
 *      checkpoint. With a checkpoint a unit and a table, 1,000 small tables
 *      made 2,000 checkpoints of all 1,000 tables, one at a time under mu,
 *      and they took most of the load's time.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/load.h"
#include "util/log.h"

typedef struct load_unit {
	size_t table;
	size_t unit;
} load_unit;

typedef enum load_path {
	PATH_UNDECIDED = 0,
	PATH_ROWS,                    /* copy_unit, rows through the sink's write */
	PATH_RAW                      /* copy_unit_raw into load_raw_* (NOTES 6) */
} load_path;

#define RAW_FORMAT_MAX 64
#define RAW_WHY_MAX 300

typedef struct load_table {
	ps_table_def *def;
	ps_ck_table *ck;              /* in cfg->ck->tables */
	int path;                     /* load_path; set once under path_mu */
	char raw_format[RAW_FORMAT_MAX]; /* PATH_RAW: the source's format name */
	atomic_llong rows;            /* rows copied in this run, units in progress included */
	long long rows_committed;     /* of those, in units committed in this run; under mu */
	size_t units_done;            /* under mu */
	bool finishing;               /* main took it; under mu */
	uint64_t started_ns;
} load_table;

typedef struct load {
	const ps_load_config *cfg;
	ps_table_def **defs;
	size_t ndefs;
	load_table *tables;           /* ndefs entries, same order as ck->tables */
	size_t ntables;

	pthread_mutex_t mu;
	pthread_mutex_t path_mu;      /* judging a table's path (NOTES 6) */
	bool raw_offered;             /* both plugins have the raw path */
	pthread_cond_t changed;
	load_unit *todo;
	size_t ntodo, next;
	int running;                  /* workers still alive */
	bool table_complete;          /* a table's last unit committed */
	int failed_rc;
	ps_error failed_err;
	atomic_int abort;

	uint64_t started_ns;
	uint64_t last_progress_ns;
	uint64_t retention_ns;        /* last ask of what the source keeps */
	uint64_t tables_ns;           /* last publish_tables */
} load;

#define LOAD_MAX_WORKERS 64           /* snapshot.parallel's upper bound */
#define LOAD_BATCH_UNITS 32           /* units a worker commits with one checkpoint, while
                                         their estimated rows stay under cfg->batch_rows */
#define FINISH_BATCH_TABLES 64        /* tables main finishes with one checkpoint */
#define FINISH_BATCH_NS 1000000000ull /* ... while building them takes less than 1 s */

typedef struct worker {
	load *ld;
	int index;                    /* slot: stops once index >= the live parallel */
	bool started, exited;         /* under ld->mu */
	pthread_t thread;
	ps_snk own;                   /* this worker's sink instance, or */
	ps_snk *snk;                  /* the main one when the target allows one writer */
	ps_copier *copier;
	char point[PS_POSITION_MAX];  /* the copier's snapshot point (source.h copy_point) */
	ps_txn txn;
	load_table *table;
	long long unit_rows;
} worker;

/* Copy workers wanted now (note 5). */
static int live_parallel(const load *ld)
{
	int n = ld->cfg->limits ? atomic_load(&ld->cfg->limits->parallel)
	                        : ld->cfg->spec->snapshot_parallel;

	return n < 1 ? 1 : n > LOAD_MAX_WORKERS ? LOAD_MAX_WORKERS : n;
}

static bool stop_requested(load *ld)
{
	return atomic_load(ld->cfg->stop) != 0 || atomic_load(&ld->abort) != 0;
}

static void fail(load *ld, int rc, const ps_error *err)
{
	pthread_mutex_lock(&ld->mu);
	if (ld->failed_rc == PS_OK && rc != PS_ESTOPPED) {
		ld->failed_rc = rc;
		ld->failed_err = *err;
	}
	pthread_mutex_unlock(&ld->mu);
	atomic_store(&ld->abort, 1);
}

/* --- planning ------------------------------------------------------------- */

static void ck_table_name(char *buf, size_t len, const char *schema, const char *name)
{
	snprintf(buf, len, "%s.%s", schema, name);
}

/* NOTES 7: a partitioned table with a primary key is copied one partition
 * a unit (its leaves; an empty table is still one unit). */
static int plan_partitions(const ps_table_def *def, ps_ck_table *t, ps_error *err)
{
	size_t leaves = 0;

	for (int i = 0; i < def->npartitions; i++)
		leaves += def->partitions[i].leaf;
	t->nunits = leaves ? leaves : 1;
	t->units = calloc(t->nunits, sizeof(ps_ck_unit));
	if (!t->units)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (!leaves)
		return PS_OK;
	t->parts = calloc(t->nunits, sizeof(char *));
	if (!t->parts)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0, k = 0; i < def->npartitions; i++) {
		const ps_partition_def *p = &def->partitions[i];
		char name[300];

		if (!p->leaf)
			continue;
		snprintf(name, sizeof(name), "%s.%s", p->schema, p->name);
		t->parts[k] = strdup(name);
		if (!t->parts[k++])
			return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	return PS_OK;
}

static int plan_table(load *ld, ps_table_def *def, ps_ck_table *t, ps_error *err)
{
	const ps_load_config *cfg = ld->cfg;
	ps_table_options opt = {
		.create = cfg->spec->target.create_tables,
		.truncate_before_load = cfg->spec->target.truncate_before_load,
	};
	int rc;

	t->schema = strdup(def->table->schema);
	t->name = strdup(def->table->name);
	if (!t->schema || !t->name)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	t->estimated_rows = def->estimated_rows;
	rc = ps_snk_table_prepare(cfg->snk, def, &opt, &t->created, err);
	if (rc != PS_OK)
		return rc;
	if (def->has_primary_key && def->npartitions > 0)
		return plan_partitions(def, t, err);
	if (def->has_primary_key && def->estimated_rows > cfg->spec->snapshot_chunk_rows) {
		rc = ps_src_split(cfg->src, def, cfg->spec->snapshot_chunk_rows, &t->bounds,
		                  &t->nbounds, err);
		if (rc != PS_OK)
			return rc;
	}
	t->nunits = t->nbounds + 1;
	t->units = calloc(t->nunits, sizeof(ps_ck_unit));
	if (!t->units)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	return PS_OK;
}

/* Fresh load: prepare every table in the target and record the plan, in one
 * target transaction with the ILSTART checkpoint. */
static int plan(load *ld, ps_error *err)
{
	ps_checkpoint *ck = ld->cfg->ck;
	int rc;

	ps_checkpoint_clear_tables(ck);
	ck->tables = calloc(ld->ndefs ? ld->ndefs : 1, sizeof(ps_ck_table));
	if (!ck->tables)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t i = 0; i < ld->ndefs; i++) {
		ck->ntables = i + 1;
		rc = plan_table(ld, ld->defs[i], &ck->tables[i], err);
		if (rc != PS_OK)
			return rc;
	}
	ck->cdc_state = ps_cdc_transition(ck->cdc_state, PS_CDC_ILSTART);
	if (ck->cdc_state == PS_CDC_ERROR)
		return ps_error_set(err, PS_ECHECKPOINT, "impossible CDC transition to ILSTART");
	return ps_checkpoint_commit(ck, ld->cfg->snk, ld->cfg->state_dir, err);
}

static bool same_table(const ps_table_def *def, const ps_ck_table *t)
{
	return strcmp(def->table->schema, t->schema) == 0 && strcmp(def->table->name, t->name) == 0;
}

/* The def of a planned table, or NULL. */
static ps_table_def *def_of(load *ld, const ps_ck_table *t)
{
	for (size_t j = 0; j < ld->ndefs; j++)
		if (same_table(ld->defs[j], t))
			return ld->defs[j];
	return NULL;
}

/* Resumed load: the described tables must be the planned ones. */
static int match_plan(load *ld, ps_error *err)
{
	ps_checkpoint *ck = ld->cfg->ck;
	char name[300];

	for (size_t i = 0; i < ck->ntables; i++) {
		if (def_of(ld, &ck->tables[i]))
			continue;
		ck_table_name(name, sizeof(name), ck->tables[i].schema, ck->tables[i].name);
		return ps_error_set(err, PS_ECHECKPOINT,
		                    "table %s was part of the interrupted initial load but is no "
		                    "longer selected in the source (dropped or renamed?). Start "
		                    "the load over with \"resume\": \"never\"", name);
	}
	for (size_t j = 0; j < ld->ndefs; j++) {
		bool planned = false;
		for (size_t i = 0; i < ck->ntables && !planned; i++)
			planned = same_table(ld->defs[j], &ck->tables[i]);
		if (planned)
			continue;
		ck_table_name(name, sizeof(name), ld->defs[j]->table->schema, ld->defs[j]->table->name);
		return ps_error_set(err, PS_ECHECKPOINT,
		                    "table %s appeared in the source after the initial load began and "
		                    "is not part of it. Start the load over with \"resume\": \"never\", "
		                    "or exclude it in tables.exclude", name);
	}
	return PS_OK;
}

/* Pairs defs with checkpoint tables and lists the units still to copy. */
static int build_todo(load *ld, ps_error *err)
{
	ps_checkpoint *ck = ld->cfg->ck;
	size_t total = 0;

	ld->tables = calloc(ck->ntables ? ck->ntables : 1, sizeof(load_table));
	if (!ld->tables)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ld->ntables = ck->ntables;
	for (size_t i = 0; i < ck->ntables; i++) {
		ps_ck_table *t = &ck->tables[i];
		ld->tables[i].def = def_of(ld, t);
		ld->tables[i].ck = t;
		atomic_init(&ld->tables[i].rows, 0);
		for (size_t u = 0; u < t->nunits; u++) {
			if (t->units[u].done)
				ld->tables[i].units_done++;
			else
				total++;
		}
	}
	ld->todo = calloc(total ? total : 1, sizeof(load_unit));
	if (!ld->todo)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	/* Biggest tables first, so one huge table does not start last. */
	for (size_t i = 0; i < ck->ntables; i++)
		for (size_t u = 0; u < ck->tables[i].nunits; u++)
			if (!ck->tables[i].units[u].done)
				ld->todo[ld->ntodo++] = (load_unit){i, u};
	for (size_t a = 1; a < ld->ntodo; a++) {
		load_unit x = ld->todo[a];
		long long rx = ck->tables[x.table].estimated_rows / (long long)ck->tables[x.table].nunits;
		size_t b = a;
		while (b > 0) {
			load_unit y = ld->todo[b - 1];
			long long ry = ck->tables[y.table].estimated_rows / (long long)ck->tables[y.table].nunits;
			if (ry >= rx)
				break;
			ld->todo[b] = y;
			b--;
		}
		ld->todo[b] = x;
	}
	return PS_OK;
}

/* --- copy workers --------------------------------------------------------- */

static int on_row(void *ctx, ps_table *t, const ps_value *values, ps_error *err)
{
	worker *w = ctx;
	ps_change *c;
	int rc;

	if (stop_requested(w->ld))
		return ps_error_set(err, PS_ESTOPPED, "stopping");
	c = ps_change_new(PS_OP_READ, t, values, NULL, false, 0);
	if (!c)
		return ps_error_set(err, PS_ENOMEM, "out of memory copying %s.%s", t->schema, t->name);
	if (w->ld->cfg->limits && w->ld->cfg->rl)
		ps_ratelimit_take(w->ld->cfg->rl, w->ld->cfg->limits, 1, c->mem_size, w->ld->cfg->stop);
	rc = ps_snk_write(w->snk, &w->txn, c, err);
	ps_change_free(c);
	if (rc != PS_OK)
		return rc;
	w->unit_rows++;
	atomic_fetch_add_explicit(&w->table->rows, 1, memory_order_relaxed);
	return PS_OK;
}

/* The path lt's units take, judged by the first worker that asks (NOTES 6).
 * format receives the raw format for PATH_RAW. */
static int choose_path(worker *w, load_table *lt, char *format, size_t format_len,
                       int *path, ps_error *err)
{
	load *ld = w->ld;
	const ps_load_config *cfg = ld->cfg;
	const ps_table *t = lt->def->table;
	char why[RAW_WHY_MAX] = "";
	bool accepted = false;
	int rc = PS_OK;

	*path = PATH_ROWS;
	if (!ld->raw_offered)
		return PS_OK;
	pthread_mutex_lock(&ld->path_mu);
	if (lt->path == PATH_UNDECIDED) {
		rc = ps_src_copy_raw_format(cfg->src, w->copier, lt->def, lt->raw_format,
		                            sizeof(lt->raw_format), why, sizeof(why), err);
		if (rc == PS_OK && lt->raw_format[0])
			rc = ps_snk_load_raw_accepts(w->snk, lt->def, lt->raw_format, &accepted, why,
			                             sizeof(why), err);
		if (rc == PS_OK) {
			lt->path = accepted ? PATH_RAW : PATH_ROWS;
			if (accepted)
				ps_log_info("initial load: %s.%s is copied raw (%s passthrough)", t->schema,
				            t->name, lt->raw_format);
			else
				ps_log_info("initial load: %s.%s is copied row by row: %s", t->schema,
				            t->name, why[0] ? why : "no raw format");
		}
	}
	*path = lt->path == PATH_RAW ? PATH_RAW : PATH_ROWS;
	snprintf(format, format_len, "%s", lt->raw_format);
	pthread_mutex_unlock(&ld->path_mu);
	return rc;
}

/* NOTES 5 on the raw path: a piece holds many rows (up to 64 KiB of them),
 * so while a limit is in force its rows pay one at a time, each with its
 * share of the bytes, before the piece goes; a bucket's burst is far
 * smaller than a piece, and paying for the piece at once would let it
 * through ahead of the limit. */
static void take_raw_limits(worker *w, int64_t rows, size_t len)
{
	const ps_load_config *cfg = w->ld->cfg;
	uint64_t n = rows > 0 ? (uint64_t)rows : 1;

	if (!cfg->limits || !cfg->rl)
		return;
	if (atomic_load(&cfg->limits->rows_per_sec) == 0 &&
	    atomic_load(&cfg->limits->bytes_per_sec) == 0) {
		ps_ratelimit_take(cfg->rl, cfg->limits, (uint64_t)rows, len, cfg->stop);
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		ps_ratelimit_take(cfg->rl, cfg->limits, rows > 0 ? 1 : 0,
		                  len / n + (i + 1 == n ? len % n : 0), cfg->stop);
}

static int on_raw(void *ctx, const char *data, size_t len, int64_t rows, ps_error *err)
{
	worker *w = ctx;
	int rc;

	if (stop_requested(w->ld))
		return ps_error_set(err, PS_ESTOPPED, "stopping");
	take_raw_limits(w, rows, len);
	rc = ps_snk_load_raw_write(w->snk, data, len, err);
	if (rc != PS_OK)
		return rc;
	w->unit_rows += rows;
	atomic_fetch_add_explicit(&w->table->rows, rows, memory_order_relaxed);
	return PS_OK;
}

/* One unit through the raw path, inside the open sink transaction. */
static int copy_raw(worker *w, load_table *lt, const ps_copy_range *range, const char *format,
                    ps_error *err)
{
	const ps_load_config *cfg = w->ld->cfg;
	int64_t took = 0;
	int rc;

	rc = ps_snk_load_raw_begin(w->snk, lt->def, format, err);
	if (rc == PS_OK)
		rc = ps_src_copy_unit_raw(cfg->src, w->copier, lt->def, range, on_raw, w, err);
	if (rc == PS_OK)
		rc = ps_snk_load_raw_end(w->snk, &took, err);
	if (rc == PS_OK && took != w->unit_rows)
		rc = ps_error_set(err, PS_EPROTO, "raw copy of %s.%s: the source sent %lld rows, the "
		                  "target took %lld", lt->def->table->schema, lt->def->table->name,
		                  w->unit_rows, (long long)took);
	return rc;
}

/* One unit through the sink: begin, its rows, commit. Marked done by
 * mark_done, with the others of its batch. */
static int copy_unit(worker *w, load_unit u, long long *rows, ps_error *err)
{
	load *ld = w->ld;
	const ps_load_config *cfg = ld->cfg;
	load_table *lt = &ld->tables[u.table];
	ps_ck_table *t = lt->ck;
	ps_copy_range range = {
		.lower = u.unit > 0 && u.unit <= t->nbounds ? &t->bounds[u.unit - 1] : NULL,
		.upper = u.unit < t->nbounds ? &t->bounds[u.unit] : NULL,
		.partition = t->parts ? t->parts[u.unit] : NULL,
	};
	char format[RAW_FORMAT_MAX];
	struct timespec now;
	int path, rc;

	rc = choose_path(w, lt, format, sizeof(format), &path, err);
	if (rc != PS_OK)
		return rc;
	clock_gettime(CLOCK_REALTIME, &now);
	memset(&w->txn, 0, sizeof(w->txn));
	w->txn.commit_time_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	snprintf(w->txn.position, sizeof(w->txn.position), "%s", w->point);
	w->table = lt;
	w->unit_rows = 0;
	rc = ps_snk_begin(w->snk, &w->txn, err);
	if (rc == PS_OK && path == PATH_RAW)
		rc = copy_raw(w, lt, &range, format, err);
	else if (rc == PS_OK)
		rc = ps_src_copy_unit(cfg->src, w->copier, lt->def, &range, on_row, w, err);
	if (rc == PS_OK)
		rc = ps_snk_commit(w->snk, &w->txn, err);
	*rows = w->unit_rows;
	return rc;
}

/* Marks a batch's units done in one checkpoint, committed with their rows
 * (NOTES 1, 9). */
static int mark_done(worker *w, const load_unit *us, const long long *rows, size_t n,
                     ps_error *err)
{
	load *ld = w->ld;
	const ps_load_config *cfg = ld->cfg;
	int rc;

	pthread_mutex_lock(&ld->mu);
	for (size_t i = 0; i < n; i++) {
		ps_ck_unit *unit = &ld->tables[us[i].table].ck->units[us[i].unit];

		unit->done = true;
		unit->rows = rows[i];
		snprintf(unit->point, sizeof(unit->point), "%s", w->point);
	}
	rc = ps_fault_hit("snapshot.unit.commit", err);
	if (rc == PS_OK)
		rc = ps_checkpoint_commit(cfg->ck, w->snk, cfg->state_dir, err);
	for (size_t i = 0; i < n; i++) {
		load_table *lt = &ld->tables[us[i].table];
		ps_ck_unit *unit = &lt->ck->units[us[i].unit];

		if (rc != PS_OK) {
			unit->done = false;
			unit->point[0] = '\0';
			continue;
		}
		lt->rows_committed += rows[i];
		lt->units_done++;
		if (lt->units_done == lt->ck->nunits) {
			ld->table_complete = true;
			pthread_cond_broadcast(&ld->changed);
		}
	}
	pthread_mutex_unlock(&ld->mu);
	return rc;
}

/* Rows a unit is expected to hold, from the planner's estimate; for a table
 * never analysed (a restored dump before autovacuum came), from its size on
 * disk at BYTES_A_ROW_GUESS, so that thousands of small fresh tables still
 * share checkpoints. -1: neither is known. */
#define BYTES_A_ROW_GUESS 100
static long long unit_estimate(const load *ld, load_unit u)
{
	const load_table *lt = &ld->tables[u.table];
	long long units = (long long)(lt->ck->nunits ? lt->ck->nunits : 1);

	if (lt->ck->estimated_rows >= 0)
		return lt->ck->estimated_rows / units;
	if (lt->def && lt->def->estimated_bytes >= 0)
		return lt->def->estimated_bytes / BYTES_A_ROW_GUESS / units;
	return -1;
}

/* Takes the next units for a worker, under mu: one, and after it small ones
 * while the batch stays small (NOTES 9). */
static size_t take_batch(load *ld, load_unit *us)
{
	long long rows = 0;
	size_t n = 0;

	while (ld->next < ld->ntodo && n < LOAD_BATCH_UNITS) {
		long long est = unit_estimate(ld, ld->todo[ld->next]);

		if (n > 0 && (est < 0 || rows + est > ld->cfg->batch_rows))
			break;
		us[n] = ld->todo[ld->next++];
		if (!ld->tables[us[n].table].started_ns)
			ld->tables[us[n].table].started_ns = ps_now_ns();
		rows += est > 0 ? est : 0;
		n++;
	}
	return n;
}

static int copy_batch(worker *w, const load_unit *us, size_t n, ps_error *err)
{
	long long rows[LOAD_BATCH_UNITS];
	int rc = PS_OK;

	for (size_t i = 0; i < n && rc == PS_OK; i++)
		rc = copy_unit(w, us[i], &rows[i], err);
	return rc == PS_OK ? mark_done(w, us, rows, n, err) : rc;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	load *ld = w->ld;
	const ps_load_config *cfg = ld->cfg;
	ps_error err;
	int rc;

	ps_error_clear(&err);
	rc = PS_OK;
	if (w->snk != cfg->snk) {
		rc = ps_snk_open(&w->own, cfg->snk->ops, cfg->sink_cfg, &err);
		w->snk = &w->own;
	}
	if (rc == PS_OK)
		rc = ps_src_copy_open(cfg->src, cfg->snapshot, &w->copier, &err);
	if (rc == PS_OK)
		ps_src_copy_point(cfg->src, w->copier, cfg->point, w->point, sizeof(w->point));
	while (rc == PS_OK) {
		load_unit us[LOAD_BATCH_UNITS];
		size_t n;

		pthread_mutex_lock(&ld->mu);
		if (stop_requested(ld) || ld->next == ld->ntodo || w->index >= live_parallel(ld)) {
			pthread_mutex_unlock(&ld->mu);
			break;
		}
		n = take_batch(ld, us);
		pthread_mutex_unlock(&ld->mu);
		rc = copy_batch(w, us, n, &err);
	}
	if (rc != PS_OK)
		fail(ld, rc, &err);
	ps_src_copy_close(cfg->src, w->copier);
	if (w->snk == &w->own)
		ps_snk_close(&w->own);   /* rolls back an unfinished unit */
	pthread_mutex_lock(&ld->mu);
	ld->running--;
	w->exited = true;
	pthread_cond_broadcast(&ld->changed);
	pthread_mutex_unlock(&ld->mu);
	return NULL;
}

/* --- progress ------------------------------------------------------------- */

static void progress(load *ld, bool force)
{
	uint64_t now = ps_now_ns();
	uint64_t period = (uint64_t)ld->cfg->progress_interval_ms * 1000000ull;
	long long rows = 0, est = 0;
	size_t units = 0, done = 0, tables_done = 0;
	char active[400] = "";
	size_t used = 0;

	if (!force && now - ld->last_progress_ns < period)
		return;
	ld->last_progress_ns = now;
	pthread_mutex_lock(&ld->mu);
	for (size_t i = 0; i < ld->ntables; i++) {
		load_table *lt = &ld->tables[i];
		long long r = atomic_load(&lt->rows);
		long long in_flight = r - lt->rows_committed;

		for (size_t u = 0; u < lt->ck->nunits; u++)
			if (lt->ck->units[u].done)
				rows += lt->ck->units[u].rows;
		rows += in_flight > 0 ? in_flight : 0;
		est += lt->ck->estimated_rows > 0 ? lt->ck->estimated_rows : 0;
		units += lt->ck->nunits;
		done += lt->units_done;
		if (lt->ck->finished)
			tables_done++;
		else if (lt->started_ns && lt->units_done < lt->ck->nunits && used < sizeof(active))
			used += (size_t)snprintf(active + used, sizeof(active) - used, "%s%s.%s %lld/%lld",
			                         used ? ", " : "", lt->ck->schema, lt->ck->name, r,
			                         lt->ck->estimated_rows);
	}
	pthread_mutex_unlock(&ld->mu);
	ps_log_info("initial load: %zu/%zu tables, %zu/%zu units, %lld rows of ~%lld%s%s", tables_done,
	            ld->ntables, done, units, rows, est, active[0] ? "; copying " : "", active);
}

/* What the source keeps for the job while the load runs (the log grows
 * behind the slot meanwhile), every 5 s, on this thread: it owns cfg->src. */
static void publish_retention(load *ld)
{
	uint64_t now = ps_now_ns();
	ps_log_retention r;
	ps_error ignored;

	if (!ld->cfg->status || (ld->retention_ns && now - ld->retention_ns < 5000000000ull))
		return;
	ld->retention_ns = now;
	ps_error_clear(&ignored);
	if (ps_src_log_retention(ld->cfg->src, &r, &ignored) == PS_OK)
		ps_run_status_set_retention(ld->cfg->status, &r);
}

/* Per-table progress for a watcher (cfg->status), from the same figures;
 * twice a second at most, unless forced (it reads every table). */
static void publish_tables(load *ld, bool force)
{
	uint64_t now = ps_now_ns();
	ps_table_status *ts;

	if (!ld->cfg->status || ld->ntables == 0)
		return;
	if (!force && ld->tables_ns && now - ld->tables_ns < 500000000ull)
		return;
	ld->tables_ns = now;
	ts = calloc(ld->ntables, sizeof(*ts));
	if (!ts)
		return;
	pthread_mutex_lock(&ld->mu);
	for (size_t i = 0; i < ld->ntables; i++) {
		load_table *lt = &ld->tables[i];
		long long in_flight = atomic_load(&lt->rows) - lt->rows_committed;

		snprintf(ts[i].schema, sizeof(ts[i].schema), "%s", lt->ck->schema);
		snprintf(ts[i].name, sizeof(ts[i].name), "%s", lt->ck->name);
		for (size_t u = 0; u < lt->ck->nunits; u++)
			if (lt->ck->units[u].done) {
				ts[i].rows_copied += lt->ck->units[u].rows;
				ts[i].units_done++;
			}
		ts[i].rows_copied += in_flight > 0 ? in_flight : 0;
		ts[i].rows_estimated = lt->ck->estimated_rows;
		ts[i].units_total = lt->ck->nunits;
		ts[i].finished = lt->ck->finished;
		ts[i].insert_only = lt->def && lt->def->insert_only;
	}
	pthread_mutex_unlock(&ld->mu);
	ps_run_status_set_tables(ld->cfg->status, ts, ld->ntables);
	free(ts);
}

/* --- finishing tables ----------------------------------------------------- */

/* The log line of a table just finished. */
static void log_finished(const load_table *lt)
{
	double secs = lt->started_ns ? (double)(ps_now_ns() - lt->started_ns) / 1e9 : 0;
	long long rows = 0, least = -1, most = 0;
	char spread[80] = "";

	for (size_t u = 0; u < lt->ck->nunits; u++) {
		long long n = lt->ck->units[u].rows;

		rows += n;
		least = least < 0 || n < least ? n : least;
		most = n > most ? n : most;
	}
	/* How even the key ranges came out: one unit far bigger than the rest
	 * is copied alone at the end. */
	if (lt->ck->nunits > 1)
		snprintf(spread, sizeof(spread), ", %lld to %lld rows a unit", least, most);
	ps_log_info("loaded %s.%s: %lld rows in %zu unit%s%s (%.1f s%s%s)", lt->ck->schema,
	            lt->ck->name, rows, lt->ck->nunits, lt->ck->nunits == 1 ? "" : "s",
	            lt->ck->created ? ", keys and indexes built" : "", secs,
	            lt->path == PATH_RAW ? ", raw" : lt->path == PATH_ROWS ? ", row by row" : "",
	            spread);
}

/* Marks a batch of finished tables in one checkpoint, committed with their
 * keys and indexes (NOTES 3, 9). */
static int commit_finished(load *ld, load_table **batch, size_t n, ps_error *err)
{
	const ps_load_config *cfg = ld->cfg;
	int rc;

	pthread_mutex_lock(&ld->mu);
	for (size_t i = 0; i < n; i++)
		batch[i]->ck->finished = true;
	rc = ps_checkpoint_commit(cfg->ck, cfg->snk, cfg->state_dir, err);
	for (size_t i = 0; i < n && rc != PS_OK; i++)
		batch[i]->ck->finished = false;
	pthread_mutex_unlock(&ld->mu);
	for (size_t i = 0; i < n && rc == PS_OK; i++)
		log_finished(batch[i]);
	return rc;
}

/* Finishes the tables whose units are all done, a batch at a time: up to
 * FINISH_BATCH_TABLES of them, while building them takes less than
 * FINISH_BATCH_NS, then one checkpoint. With a single-writer target
 * (SQLite) only once the workers are gone, so that two writers never wait
 * on each other. */
static int finish_ready(load *ld, bool workers_gone, ps_error *err)
{
	load_table *batch[FINISH_BATCH_TABLES];
	size_t i = 0;
	int rc = PS_OK;

	if (ps_snk_max_writers(ld->cfg->snk) == 1 && !workers_gone)
		return PS_OK;
	while (rc == PS_OK && i < ld->ntables) {
		uint64_t began = ps_now_ns();
		size_t n = 0;

		for (; rc == PS_OK && i < ld->ntables && n < FINISH_BATCH_TABLES &&
		       ps_now_ns() - began < FINISH_BATCH_NS; i++) {
			load_table *lt = &ld->tables[i];
			bool ready;

			pthread_mutex_lock(&ld->mu);
			ready = !lt->ck->finished && !lt->finishing && lt->units_done == lt->ck->nunits;
			if (ready)
				lt->finishing = true;
			pthread_mutex_unlock(&ld->mu);
			if (!ready)
				continue;
			batch[n++] = lt;
			if (lt->ck->created)
				rc = ps_snk_table_finish(ld->cfg->snk, lt->def, err);
		}
		if (rc == PS_OK && n > 0)
			rc = commit_finished(ld, batch, n, err);
		for (size_t j = 0; j < n; j++)
			batch[j]->finishing = false;
	}
	return rc;
}

/* --- after the load (NOTES 8) --------------------------------------------- */

/* What the target gets once every table is loaded and finished: foreign
 * keys, sequence values and the rest of target.schema, in the target
 * transaction that the ILEND checkpoint commits. */
static int apply_schema_after(load *ld, ps_error *err)
{
	const ps_load_config *cfg = ld->cfg;
	ps_schema *schema = NULL;
	size_t applied = 0;
	int rc;

	if (!ps_snk_can_apply_schema(cfg->snk))
		return PS_OK;
	rc = ps_src_schema_after_load(cfg->src, &schema, err);
	if (rc == PS_OK && schema && schema->skipped)
		ps_log_warn("after the load, left out: %s", schema->skipped);
	if (rc == PS_OK)
		rc = ps_snk_schema_apply(cfg->snk, schema, &applied, err);
	if (rc == PS_OK && schema && schema->n)
		ps_log_info("after the load: %zu of %zu objects created or set in the target (foreign "
		            "keys, sequence values%s; the others were there already)", applied,
		            schema->n, cfg->spec->target.schema == PS_SCHEMA_FULL
		            ? ", views, functions, triggers, policies, grants" : "");
	ps_schema_free(schema);
	return rc;
}

/* --- the load ------------------------------------------------------------- */

/* Starts workers in the free slots below the live parallelism while units
 * remain (note 5); joins those that stopped. */
static int start_workers(load *ld, worker *workers, int *logged, ps_error *err)
{
	int max = ps_snk_max_writers(ld->cfg->snk);
	int want = live_parallel(ld);

	if (max > 0 && want > max)
		want = max;
	for (int i = 0; i < LOAD_MAX_WORKERS; i++) {
		worker *w = &workers[i];
		bool idle, more, exited;

		/* exited is the worker's to write (under mu): read it once, here */
		pthread_mutex_lock(&ld->mu);
		exited = w->started && w->exited;
		idle = !w->started || w->exited;
		more = ld->next < ld->ntodo;
		pthread_mutex_unlock(&ld->mu);
		if (exited) {
			pthread_join(w->thread, NULL);
			w->started = false;
		}
		if (!idle || i >= want || !more || atomic_load(&ld->abort) || stop_requested(ld))
			continue;
		memset(w, 0, sizeof(*w));
		w->ld = ld;
		w->index = i;
		/* A single-writer target (SQLite, files) is written through the main
		 * instance: the main thread leaves it alone until the worker is gone. */
		w->snk = max == 1 ? ld->cfg->snk : NULL;
		pthread_mutex_lock(&ld->mu);
		ld->running++;
		w->started = true;
		pthread_mutex_unlock(&ld->mu);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			pthread_mutex_lock(&ld->mu);
			ld->running--;
			w->started = false;
			pthread_mutex_unlock(&ld->mu);
			atomic_store(&ld->abort, 1);
			return ps_error_set(err, PS_ERR, "cannot start copy worker %d", i + 1);
		}
	}
	if (want != *logged) {
		if (*logged)
			ps_log_info("initial load: %d copy worker%s now (snapshot.parallel changed)", want,
			            want == 1 ? "" : "s");
		*logged = want;
	}
	return PS_OK;
}

static int run_workers(load *ld, ps_error *err)
{
	int max = ps_snk_max_writers(ld->cfg->snk), want = live_parallel(ld), logged = 0;
	worker *workers;
	int rc = PS_OK;

	workers = calloc(LOAD_MAX_WORKERS, sizeof(worker));
	if (!workers)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (max > 0 && want > max)
		want = max;
	if ((size_t)want > ld->ntodo)
		want = (int)ld->ntodo;
	ps_log_info("initial load: %zu units to copy with %d worker%s under snapshot %s (point %s)",
	            ld->ntodo, want, want == 1 ? "" : "s", ld->cfg->snapshot, ld->cfg->point);
	for (;;) {
		struct timespec deadline;
		bool gone;

		if (rc == PS_OK)
			rc = start_workers(ld, workers, &logged, err);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 200 * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&ld->mu);
		if (ld->running > 0 && !ld->table_complete)
			pthread_cond_timedwait(&ld->changed, &ld->mu, &deadline);
		ld->table_complete = false;
		gone = ld->running == 0;
		pthread_mutex_unlock(&ld->mu);
		if (rc == PS_OK && !atomic_load(&ld->abort)) {
			rc = finish_ready(ld, gone, err);
			if (rc != PS_OK)
				atomic_store(&ld->abort, 1);
		}
		progress(ld, false);
		publish_tables(ld, false);
		publish_retention(ld);
		if (gone)
			break;
	}
	for (int i = 0; i < LOAD_MAX_WORKERS; i++)
		if (workers[i].started)
			pthread_join(workers[i].thread, NULL);
	free(workers);
	return rc;
}

int ps_load_run(const ps_load_config *cfg, ps_error *err)
{
	load ld;
	int rc;

	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.started_ns = ld.last_progress_ns = ps_now_ns();
	atomic_init(&ld.abort, 0);
	pthread_mutex_init(&ld.mu, NULL);
	pthread_mutex_init(&ld.path_mu, NULL);
	pthread_cond_init(&ld.changed, NULL);
	ld.raw_offered = ps_src_can_copy_raw(cfg->src) && ps_snk_can_load_raw(cfg->snk);

	rc = ps_src_describe(cfg->src, &ld.defs, &ld.ndefs, err);
	if (rc != PS_OK)
		goto cleanup;
	rc = cfg->fresh ? plan(&ld, err) : match_plan(&ld, err);
	if (rc == PS_OK)
		rc = build_todo(&ld, err);
	if (rc == PS_OK)
		rc = run_workers(&ld, err);
	if (rc == PS_OK && ld.failed_rc != PS_OK) {
		rc = ld.failed_rc;
		*err = ld.failed_err;
	}
	if (rc == PS_OK && atomic_load(cfg->stop))
		rc = ps_error_set(err, PS_ESTOPPED, "stopped during the initial load");
	if (rc == PS_OK)
		rc = finish_ready(&ld, true, err);
	if (rc == PS_OK)
		rc = apply_schema_after(&ld, err);
	if (rc != PS_OK)
		goto cleanup;
	progress(&ld, true);
	publish_tables(&ld, true);
	cfg->ck->cdc_state = ps_cdc_transition(cfg->ck->cdc_state, PS_CDC_ILEND);
	if (cfg->ck->cdc_state == PS_CDC_ERROR) {
		rc = ps_error_set(err, PS_ECHECKPOINT, "impossible CDC transition to ILEND");
		goto cleanup;
	}
	rc = ps_checkpoint_commit(cfg->ck, cfg->snk, cfg->state_dir, err);
	if (rc == PS_OK)
		ps_log_info("initial load done in %.1f s; CDC %s",
		            (double)(ps_now_ns() - ld.started_ns) / 1e9,
		            ps_cdc_state_name(cfg->ck->cdc_state));
cleanup:
	for (size_t i = 0; i < ld.ndefs; i++)
		ps_table_def_free(ld.defs[i]);
	free(ld.defs);
	free(ld.tables);
	free(ld.todo);
	pthread_cond_destroy(&ld.changed);
	pthread_mutex_destroy(&ld.path_mu);
	pthread_mutex_destroy(&ld.mu);
	return rc;
}
