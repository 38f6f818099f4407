/*
 * pipeline.c — running one job (see pipeline.h).
 *
 * NOTES ON THE DESIGN
 *
 * Threads: the reader owns the source and its connections; the applier (the
 * calling thread) owns the sink. They share only the bounded queue, the
 * durable position (under a mutex) and a few atomic flags and counters.
 *
 *   reader:  read ─► push (blocks while the queue is full, still sending
 *            keepalives) ─► ... ; acks the durable position as it moves.
 *   applier: pop ─► sink begin/write/commit ─► at a batch boundary:
 *            store checkpoint ─► flush sink ─► publish durable position
 *            (at once, or once the sink says the flush is durable: note 7).
 *
 * Invariants:
 *   1. The durable position only moves after the sink flushed everything up
 *      to it AND the checkpoint recording it is on disk; the source is only
 *      ever acknowledged up to the durable position. So a crash at any
 *      instant loses nothing: the source still has every change after it.
 *   2. A batch ends at a COMMIT, never inside a transaction.
 *   3. The checkpoint says TFSTART (or TFREDO) while a run may have written
 *      events past its position, and TFEND only when it certainly has not
 *      (graceful stop, or an error between transactions). A restart after
 *      TFSTART/TFREDO marks the transactions up to the source's log end at
 *      restart time as reprocessing: they may already be in the target.
 *   4. Memory is bounded by the queue (count and bytes) plus one item.
 *   5. A bounded run (cfg->until) processes the range (checkpoint, bound]:
 *      the bound is a position in the source's log, and a fence is written
 *      past it so that the log certainly reaches beyond it. The reader stops
 *      at the first transaction that begins past the bound (source.h: a
 *      BEGIN's position compares as its commit will), so exactly the
 *      transactions committed up to the bound are applied; the last
 *      checkpoint then records the bound itself as the position (TFEND) and
 *      the range, and the next run's range begins there. A backfill (a
 *      table that came into the selection) reads its chunks between markers
 *      written during the run, always past the bound: with --until
 *      caught-up the range goes on until no backfill is under way, and ends
 *      at a fence written then (an explicit --until POSITION keeps its
 *      bound; the backfill goes on in the next run).
 *   6. A sink may hold a bounded run's range until its end (sink.h range:
 *      net changes are known only then): while it holds, a batch boundary
 *      neither flushes it nor writes a checkpoint, and nothing is acked, so
 *      the checkpoint stays at the range's start (TFSTART) until the range
 *      is done; a run that dies in the range leaves it there and the next
 *      run redoes the whole range. The final flush, at the range's end or
 *      when the run stops early, gives the sink's events out before the
 *      checkpoint that records them; just before it the sink is told the
 *      range as it ended (the bound, which a backfill may have moved, or
 *      the last commit of a run stopped early).
 *
 *   7. Asynchronous durability (sink.h `durable`). A sink may commit a batch
 *      before it is durable (PostgreSQL: synchronous_commit = off): a crash
 *      of the target then loses the newest batches, each whole with its
 *      checkpoint, so the target falls back to an older checkpoint of its
 *      own, and the source must still hold everything after it. So the
 *      applier keeps, for every batch flushed but not yet reported
 *      durable, its flush number and the position its checkpoint records
 *      (pend, at most PEND_MAX: when full the newest entry is replaced,
 *      which makes acknowledgements coarser, never wrong), and publishes a
 *      position as durable only once the sink reports its flush durable.
 *      It asks the sink what it knows after every flush (no I/O: the
 *      PostgreSQL sink learns the target's flush position with each
 *      COMMIT), asks the target every DURABLE_ASK_MS while idle, and makes
 *      everything durable (one disk sync of the target) when idle for
 *      DURABLE_WAIT_MS, at the end of every run that ends cleanly, and
 *      before the slot of a finished snapshot job is dropped. So under load
 *      (no idle gap of DURABLE_WAIT_MS) batches cost no disk sync of their
 *      own, and the target's WAL writer makes them durable (within
 *      wal_writer_delay, 200 ms by default); a trickle pays at most one
 *      sync per idle gap, as it paid one per batch before; and the source
 *      hears of the end of a backlog within DURABLE_WAIT_MS and a sync,
 *      not a WAL writer's round later. The commit itself, the checkpoint
 *      in it and exactly-once are unchanged: only when the source hears of
 *      it is.
 *
 * Health: when the reader loses the source (an error the job retries), the
 * applier still applies and checkpoints everything queued before the run
 * ends with that error: the run is `degraded` meanwhile, and
 * `degraded_log_fully_read` once all of it is durable.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backfill.h"
#include "core/checkpoint.h"
#include "core/errclass.h"
#include "core/fault.h"
#include "core/load.h"
#include "core/pipeline.h"
#include "core/plugin.h"
#include "core/queue.h"
#include "core/spec_json.h"
#include "util/log.h"
#include "util/str.h"

/* After a load whose units were copied at different snapshot points, a
 * table's changes committed at or before `skip` are in every unit already,
 * those up to `redo` in some: applied in re-processing mode. */
typedef struct route {
	const char *schema, *name;          /* borrowed from the checkpoint */
	char skip[PS_POSITION_MAX];
	char redo[PS_POSITION_MAX];
} route;

#define PEND_MAX 64           /* batches awaiting durability we keep apart */
#define DURABLE_ASK_MS 5      /* idle, batches not yet durable: ask this often */
#define DURABLE_WAIT_MS 20    /* idle this long: make them durable (note 7) */

typedef struct pipeline {
	const ps_pipeline_config *cfg;
	const ps_spec *spec;
	atomic_int *stop;
	ps_src src;
	ps_snk snk;
	ps_queue queue;
	ps_checkpoint ck;
	ps_identity identity;
	char redo_until[PS_POSITION_MAX];

	pthread_mutex_t mu;                 /* guards durable (position) */
	char durable[PS_POSITION_MAX];
	atomic_uint durable_seq;            /* bumped whenever durable moves */

	/* reader-only */
	unsigned acked_seq;                 /* durable_seq last acknowledged */
	uint64_t acked_ns;                  /* when the source was last acked */

	atomic_int degraded;                /* the source failed while changes were queued */
	atomic_int applier_done;            /* applier finished: reader may ack and leave */
	atomic_int applier_failed;
	atomic_int reader_idle;             /* last read found nothing new */
	ps_error reader_err;                /* set by the reader before it closes the queue */
	int reader_rc;

	/* set-up */
	ps_sink_config sink_cfg;            /* kept for the load's extra sink instances */
	char *target_password;              /* wiped and freed at the end */
	char until[PS_POSITION_MAX];        /* stop once this is applied (snapshot jobs, the
	                                       cutover); written before until_set, never after */
	atomic_int until_set;
	bool reached_until;
	bool fence_written;                 /* reader: the cutover's fence is in the log */
	bool bounded;                       /* a bounded run (note 5): bound is set */
	char bound[PS_POSITION_MAX];
	char range_from[PS_POSITION_MAX];   /* where the bounded run began */
	atomic_int bound_passed;            /* reader: a transaction past the bound began */
	bool bound_extending;               /* reader: past the bound while a backfill runs */
	bool range_hold;                    /* the sink holds the range until its end (note 6) */

	/* applier-only: batches flushed, not yet reported durable (note 7) */
	struct pend {
		uint64_t flush;             /* the sink's flush number (sink.h rule a) */
		char position[PS_POSITION_MAX];
	} pend[PEND_MAX];
	int npend;
	uint64_t last_flush_ns, last_ask_ns;

	/* applier-only */
	bool in_txn;
	bool txn_sent;                      /* the sink has had something of this transaction */
	ps_change **held;                   /* its first changes, held (hold_change) */
	size_t nheld, held_cap, held_bytes;
	bool holding;
	ps_txn txn;
	ps_txn txn_redo;                    /* txn with reprocessing set */
	route *routes;                      /* per-table windows after a resumed load */
	size_t nroutes;
	char routes_end[PS_POSITION_MAX];   /* routing ends once this is applied */
	ps_table *route_table;              /* last lookup; a reference is held, so the
	                                       address cannot be reused by another table
	                                       (a relation re-described mid-stream) */
	const route *route_hit;
	int batch_txns;
	size_t batch_bytes;
	uint64_t batch_started_ns;
	char last_commit[PS_POSITION_MAX];
	int64_t last_commit_time_us;
	uint64_t changes_applied, txns_applied;
	uint64_t last_progress_ns, last_progress_changes;
	uint64_t status_ns;                 /* last publish to cfg->status */
	atomic_int phase;                   /* ps_phase */
	char catchup_to[PS_POSITION_MAX];   /* the log's end when streaming began */
	uint64_t idle_since_ns;             /* applier saw an idle log since then; 0: not idle */

	/* reader-only, for cfg->status */
	uint64_t read_status_ns, end_status_ns, retention_ns;
	ps_op_counts ops;                   /* applier-only: changes by table and operation */

	/* live controls (pipeline.h): cfg->live, or own_live filled from the spec */
	ps_live *live;
	ps_live own_live;
	ps_ratelimit rl;                    /* the apply path's bucket */
	ps_backfill *bf;                    /* tables added and removed while running */
	char *prev_spec_json;               /* the resumed checkpoint's spec (tables in force) */
} pipeline;

/* --- live controls -------------------------------------------------------- */

void ps_live_init(ps_live *l, const ps_spec *spec)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	ps_live_update(l, spec);
}

void ps_live_destroy(ps_live *l)
{
	ps_strv_free(l->include, l->ninclude);
	ps_strv_free(l->exclude, l->nexclude);
	pthread_mutex_destroy(&l->mu);
}

void ps_live_update(ps_live *l, const ps_spec *spec)
{
	char **inc, **exc;

	ps_limits_set(&l->limits, spec);
	pthread_mutex_lock(&l->mu);
	if (!l->include || !ps_strv_equal(l->include, l->ninclude, spec->include, spec->ninclude) ||
	    !ps_strv_equal(l->exclude, l->nexclude, spec->exclude, spec->nexclude)) {
		inc = ps_strv_copy(spec->include, spec->ninclude);
		exc = ps_strv_copy(spec->exclude, spec->nexclude);
		if (inc && exc) {   /* out of memory: the change waits for the next update */
			ps_strv_free(l->include, l->ninclude);
			ps_strv_free(l->exclude, l->nexclude);
			l->include = inc;
			l->ninclude = spec->ninclude;
			l->exclude = exc;
			l->nexclude = spec->nexclude;
			l->tables_gen++;
			inc = exc = NULL;
		}
		ps_strv_free(inc, spec->ninclude);
		ps_strv_free(exc, spec->nexclude);
	}
	pthread_mutex_unlock(&l->mu);
}

void ps_pipeline_config_defaults(ps_pipeline_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->queue_max_bytes = 64u << 20;
	cfg->queue_max_items = 65536;
	cfg->batch_max_txns = 1000;
	cfg->batch_max_bytes = 16u << 20;
	cfg->batch_max_ms = 500;
	cfg->progress_interval_ms = 10000;
}

/* --- degraded health (issue 5) -------------------------------------------- */

/* The reader failed; called before it closes the queue. When the source
 * became unreachable (an error the job retries) and the applier is still
 * at work, the run is degraded: the applier goes on applying what was
 * read, then the run ends with the reader's error. */
static void degraded_begin(pipeline *p, const ps_error *err)
{
	if (!p->cfg->status || atomic_load(&p->applier_failed) || atomic_load(p->stop) ||
	    !ps_error_retryable(err))
		return;
	atomic_store(&p->degraded, 1);
	ps_log_warn("the source is unreachable (%s); applying the %zu items already read "
	            "(health degraded)", err->message, ps_queue_count(&p->queue));
	ps_run_status_set_health(p->cfg->status, PS_HEALTH_DEGRADED);
}

/* The applier finished; checkpointed says everything it applied is durable.
 * Then the log read before the source went away is fully applied. */
static void degraded_end(pipeline *p, bool checkpointed)
{
	if (!atomic_load(&p->degraded) || !checkpointed)
		return;
	ps_log_warn("every change read before the source became unreachable is applied and "
	            "checkpointed at %s (health degraded_log_fully_read)", p->ck.position);
	ps_run_status_set_health(p->cfg->status, PS_HEALTH_DEGRADED_LOG_FULLY_READ);
}

/* --- reader thread -------------------------------------------------------- */

static void durable_get(pipeline *p, char *buf, size_t len)
{
	pthread_mutex_lock(&p->mu);
	snprintf(buf, len, "%s", p->durable);
	pthread_mutex_unlock(&p->mu);
}

static void durable_set(pipeline *p, const char *pos)
{
	pthread_mutex_lock(&p->mu);
	snprintf(p->durable, sizeof(p->durable), "%s", pos);
	pthread_mutex_unlock(&p->mu);
	atomic_fetch_add(&p->durable_seq, 1);
}

/* --- durable position with an asynchronous sink (note 7) ----------------- */

/* Publishes the position of the last pending batch the sink reports
 * durable by how (sink.h ps_durable_how), and forgets it and those before. */
static int durable_poll(pipeline *p, int how, ps_error *err)
{
	uint64_t through = 0;
	int n = 0, rc;

	if (p->npend == 0)
		return PS_OK;
	rc = ps_snk_durable(&p->snk, how, &through, err);
	if (rc != PS_OK)
		return rc;
	while (n < p->npend && p->pend[n].flush <= through)
		n++;
	if (n == 0)
		return PS_OK;
	durable_set(p, p->pend[n - 1].position);
	memmove(p->pend, p->pend + n, (size_t)(p->npend - n) * sizeof(p->pend[0]));
	p->npend -= n;
	return PS_OK;
}

/* The checkpoint recording pos was just flushed (the sink's last flush):
 * pos becomes the durable position now, or once the sink says so. */
static int durable_after_flush(pipeline *p, const char *pos, ps_error *err)
{
	struct pend *e;

	p->last_flush_ns = ps_now_ns();
	if (!ps_snk_has_durable(&p->snk)) {
		durable_set(p, pos);
		return PS_OK;
	}
	e = &p->pend[p->npend < PEND_MAX ? p->npend++ : PEND_MAX - 1];
	e->flush = p->snk.flushes;
	snprintf(e->position, sizeof(e->position), "%s", pos);
	return durable_poll(p, PS_DURABLE_KNOWN, err);
}

/* Between batches, with nothing open: ask, then insist (note 7). How long
 * the applier may wait for the next item before it should look again. */
static int durable_idle(pipeline *p, int *wait_ms, ps_error *err)
{
	uint64_t now, idle_ms;

	if (p->npend == 0 || p->in_txn || p->batch_txns > 0)
		return PS_OK;
	now = ps_now_ns();
	idle_ms = (now - p->last_flush_ns) / 1000000ull;
	if (idle_ms >= DURABLE_WAIT_MS)
		return durable_poll(p, PS_DURABLE_WAIT, err);
	if (idle_ms >= DURABLE_ASK_MS && now - p->last_ask_ns >= DURABLE_ASK_MS * 1000000ull) {
		int rc = durable_poll(p, PS_DURABLE_ASK, err);

		if (rc != PS_OK)
			return rc;
		p->last_ask_ns = now;
	}
	*wait_ms = (int)(DURABLE_WAIT_MS - idle_ms < DURABLE_ASK_MS ? DURABLE_WAIT_MS - idle_ms
	                                                             : DURABLE_ASK_MS);
	return PS_OK;
}

/* Everything flushed is made durable and published (a clean end). */
static int durable_all(pipeline *p, ps_error *err)
{
	int rc = ps_snk_make_durable(&p->snk, err);

	if (rc == PS_OK)
		rc = durable_poll(p, PS_DURABLE_KNOWN, err);
	return rc;
}

/* Acknowledges the durable position when it moved, and at least once a
 * second so the source can keep its connection alive; not per change. */
static int reader_ack(pipeline *p, bool force, ps_error *err)
{
	char pos[PS_POSITION_MAX];
	unsigned seq = atomic_load(&p->durable_seq);
	uint64_t now = ps_now_ns();

	if (!force && seq == p->acked_seq && now - p->acked_ns < 1000000000ull)
		return PS_OK;
	p->acked_seq = seq;
	p->acked_ns = now;
	durable_get(p, pos, sizeof(pos));
	if (p->cfg->status) {
		pthread_mutex_lock(&p->cfg->status->mu);
		snprintf(p->cfg->status->acked, sizeof(p->cfg->status->acked), "%s", pos);
		pthread_mutex_unlock(&p->cfg->status->mu);
	}
	return ps_src_ack(&p->src, pos, err);
}

/* How often the reader asks the source what it keeps for the job. */
#define RETENTION_SAMPLE_NS 5000000000ull

/* For a watcher, at each commit read (item) or idle read (NULL): the last
 * commit read (at most 4 times a second), and every 2 s the source log's
 * end with the distances to it. A failed sample is only
 * a missing figure: the stream reports a lost source by itself. */
static void reader_status(pipeline *p, const ps_read_item *item)
{
	ps_run_status *st = p->cfg->status;
	uint64_t now;

	if (!st)
		return;
	now = ps_now_ns();
	if (item && now - p->read_status_ns >= 250000000ull) {
		p->read_status_ns = now;
		pthread_mutex_lock(&st->mu);
		snprintf(st->read, sizeof(st->read), "%s", item->txn.position);
		pthread_mutex_unlock(&st->mu);
	}
	if (now - p->end_status_ns >= 2000000000ull) {
		char end[PS_POSITION_MAX];
		ps_error ignored;

		p->end_status_ns = now;
		ps_error_clear(&ignored);
		if (ps_src_current_position(&p->src, end, sizeof(end), &ignored) != PS_OK)
			return;
		pthread_mutex_lock(&st->mu);
		snprintf(st->source_end, sizeof(st->source_end), "%s", end);
		if (st->applied[0] && !(atomic_load(&p->reader_idle) && ps_queue_count(&p->queue) == 0))
			st->lag_bytes = ps_src_distance(&p->src, st->applied, end);
		if (st->acked[0])
			st->retained_bytes = ps_src_distance(&p->src, st->acked, end);
		pthread_mutex_unlock(&st->mu);
	}
	/* what the source keeps for us, in its own terms (source.h
	 * log_retention): replaces end - acknowledged when it can tell */
	if (now - p->retention_ns >= RETENTION_SAMPLE_NS) {
		ps_log_retention r;
		ps_error ignored;

		p->retention_ns = now;
		ps_error_clear(&ignored);
		if (ps_src_log_retention(&p->src, &r, &ignored) == PS_OK)
			ps_run_status_set_retention(st, &r);
	}
}

/* Pushes one item, keeping the source alive while the queue is full. */
static int reader_push(pipeline *p, ps_read_item *item, ps_error *err)
{
	for (;;) {
		int rc = ps_queue_push(&p->queue, item, 200);
		if (rc != PS_ETIMEOUT)
			return rc == PS_OK ? PS_OK
			       : ps_error_set(err, rc, rc == PS_ENOMEM ? "out of memory growing the "
			                      "queue of changes read" : "queue closed");
		if (atomic_load(&p->applier_failed) || atomic_load(p->stop) >= 2)
			return ps_error_set(err, PS_ESTOPPED, "stopping");
		rc = reader_ack(p, false, err);
		if (rc != PS_OK)
			return rc;
	}
}

/* Between transactions: the cutover's fence, once asked for and nothing
 * else is under way (pipeline.h, ps_live). */
static int reader_control(pipeline *p, ps_error *err)
{
	int rc = ps_backfill_reader(p->bf, err);   /* table changes, backfill chunks */

	if (rc != PS_OK)
		return rc;
	if (p->bound_extending && !atomic_load(&p->live->busy)) {
		char fence[PS_POSITION_MAX];
		rc = ps_src_fence(&p->src, fence, sizeof(fence), err);
		if (rc != PS_OK)
			return ps_error_add_context(err, "--until needs a position the log certainly "
			                            "reaches");
		snprintf(p->bound, sizeof(p->bound), "%s", fence);
		p->bound_extending = false;
		ps_log_info("the backfill is done: the range now ends at %s", p->bound);
	}
	if (p->fence_written || !atomic_load(&p->live->complete) || atomic_load(&p->live->busy))
		return PS_OK;
	rc = ps_src_fence(&p->src, p->until, sizeof(p->until), err);
	if (rc != PS_OK)
		return ps_error_add_context(err, "writing the cutover's fence");
	p->fence_written = true;
	atomic_store(&p->until_set, 1);
	ps_log_info("cutover: fence written at %s; applying everything up to it", p->until);
	return PS_OK;
}

static int reader_loop(pipeline *p, ps_error *err)
{
	ps_read_item item;
	bool in_txn = false;
	int rc;

	for (;;) {
		if (atomic_load(&p->applier_failed) || atomic_load(p->stop) >= 2 || (atomic_load(p->stop) && !in_txn))
			return PS_OK;
		rc = reader_ack(p, false, err);
		if (rc == PS_OK && !in_txn)
			rc = reader_control(p, err);
		if (rc == PS_OK)
			rc = ps_src_read(&p->src, &item, 200, err);
		if (rc != PS_OK)
			return rc;
		if (item.kind == PS_READ_NONE) {
			atomic_store(&p->reader_idle, 1);
			reader_status(p, NULL);
			continue;
		}
		atomic_store(&p->reader_idle, 0);
		if (item.kind == PS_READ_COMMIT)   /* per transaction, not per change */
			reader_status(p, &item);
		rc = ps_fault_hit("source.read", err);
		if (rc != PS_OK) {
			ps_change_free(item.change);
			free(item.state);
			ps_table_change_free(item.table_change);
			return rc;
		}
		if (item.kind == PS_READ_BEGIN && p->bounded && !p->bound_extending &&
		    ps_src_compare(&p->src, item.txn.position, p->bound) > 0) {
			if (!atomic_load(&p->live->busy) || strcmp(p->cfg->until, "caught-up") != 0) {
				atomic_store(&p->bound_passed, 1);   /* note 5: everything up to it is read */
				return PS_OK;
			}
			/* note 5: a backfill's chunks are read between markers written
			 * during the run, past any bound: caught up means it is done */
			p->bound_extending = true;
			ps_log_info("a table is being backfilled: the range goes on past %s until its "
			            "rows are copied", p->bound);
		}
		if (item.kind == PS_READ_BEGIN)
			in_txn = true;
		else if (item.kind == PS_READ_COMMIT)
			in_txn = false;
		if (item.kind == PS_READ_TABLE)
			ps_backfill_table_seen(p->bf, item.table_change);   /* a poll may be due */
		rc = reader_push(p, &item, err);
		if (rc != PS_OK) {
			ps_change_free(item.change);
			free(item.state);
			ps_table_change_free(item.table_change);
			return rc;
		}
	}
}

static void *reader_main(void *arg)
{
	pipeline *p = arg;
	ps_error err;

	ps_error_clear(&err);
	p->reader_rc = reader_loop(p, &p->reader_err);
	if (p->reader_rc != PS_OK)
		degraded_begin(p, &p->reader_err);
	ps_queue_close(&p->queue);
	/* Keep acknowledging until the applier has made everything durable, so
	 * the final position reaches the server before we disconnect. */
	while (!atomic_load(&p->applier_done)) {
		if (p->reader_rc == PS_OK && reader_ack(p, false, &err) != PS_OK)
			break;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (p->reader_rc == PS_OK)
		reader_ack(p, true, &err);
	return NULL;
}

/* --- applier -------------------------------------------------------------- */

static int store_checkpoint(pipeline *p, int cdc_state, ps_error *err)
{
	int next = ps_cdc_transition(p->ck.cdc_state, cdc_state);

	if (next == PS_CDC_ERROR)
		return ps_error_set(err, PS_ECHECKPOINT, "impossible CDC transition %s -> %s",
		                    ps_cdc_state_name(p->ck.cdc_state), ps_cdc_state_name(cdc_state));
	p->ck.cdc_state = next;
	snprintf(p->ck.position, sizeof(p->ck.position), "%s", p->last_commit);
	if (next == PS_CDC_TFSTART || next == PS_CDC_TFEND || next == PS_CDC_TFREDO)
		ps_checkpoint_clear_tables(&p->ck);   /* the load is behind us */
	return ps_checkpoint_commit(&p->ck, &p->snk, p->cfg->state_dir, err);
}

/* The marker for a checkpoint taken while running. */
static int running_state(pipeline *p)
{
	if (p->nroutes)
		return PS_CDC_ILUPDATE;
	if (p->redo_until[0] && ps_src_compare(&p->src, p->last_commit, p->redo_until) < 0)
		return PS_CDC_TFREDO;
	return PS_CDC_TFSTART;
}

static int apply_flush(pipeline *p, ps_error *err)
{
	uint64_t t0;
	int rc;

	if (p->batch_txns == 0)
		return PS_OK;
	if (p->range_hold) {   /* note 6: nothing is durable before the range's end */
		p->batch_txns = 0;
		p->batch_bytes = 0;
		return PS_OK;
	}
	rc = ps_fault_hit("apply.batch.before_commit", err);
	t0 = ps_now_ns();
	if (rc == PS_OK)
		rc = store_checkpoint(p, running_state(p), err);   /* with the data */
	if (rc != PS_OK)
		return rc;
	if (p->cfg->status)   /* the batch's commit, with its checkpoint */
		ps_run_status_batch(p->cfg->status, (double)(ps_now_ns() - t0) / 1e9);
	rc = durable_after_flush(p, p->last_commit, err);
	if (rc == PS_OK)
		rc = ps_fault_hit("apply.batch.after_commit", err);
	p->batch_txns = 0;
	p->batch_bytes = 0;
	if (atomic_load(&p->until_set) && ps_src_compare(&p->src, p->last_commit, p->until) >= 0 &&
	    !p->reached_until) {
		p->reached_until = true;
		if (atomic_load(&p->live->complete)) {
			pthread_mutex_lock(&p->live->mu);
			snprintf(p->live->fence, sizeof(p->live->fence), "%s", p->until);
			pthread_mutex_unlock(&p->live->mu);
			atomic_store(&p->live->fenced, 1);
			ps_log_info("cutover: everything up to the fence %s is applied (last commit %s); "
			            "stopping", p->until, p->last_commit);
		}
		atomic_store(p->stop, 1);
	}
	return rc;
}

/* --- routing after a resumed load ----------------------------------------- */

static void route_cache_clear(pipeline *p)
{
	ps_table_unref(p->route_table);
	p->route_table = NULL;
	p->route_hit = NULL;
}

static const route *route_for(pipeline *p, ps_table *t)
{
	if (t == p->route_table)
		return p->route_hit;
	route_cache_clear(p);
	p->route_table = ps_table_ref(t);
	p->route_hit = NULL;
	for (size_t i = 0; i < p->nroutes; i++)
		if (strcmp(p->routes[i].name, t->name) == 0 && strcmp(p->routes[i].schema, t->schema) == 0)
			p->route_hit = &p->routes[i];
	return p->route_hit;
}

/* Writes a change, skipping or re-processing it as its table's route says.
 * p->txn.position holds the BEGIN ordering position (change.h). */
static int route_write(pipeline *p, const ps_change *c, ps_error *err)
{
	const route *r = c->table ? route_for(p, c->table) : NULL;

	if (!r || ps_src_compare(&p->src, p->txn.position, r->redo) > 0)
		return ps_snk_write(&p->snk, &p->txn, c, err);
	if (ps_src_compare(&p->src, p->txn.position, r->skip) <= 0)
		return PS_OK;   /* copied by every unit of its table already */
	return ps_snk_write(&p->snk, &p->txn_redo, c, err);
}

/* Builds the routes from the load's units; none when every unit was copied
 * at the point streaming starts from (no restart during the load). */
static int routes_build(pipeline *p, ps_error *err)
{
	const ps_checkpoint *ck = &p->ck;

	p->routes_end[0] = '\0';
	if (ck->ntables == 0)
		return PS_OK;
	p->routes = calloc(ck->ntables, sizeof(route));
	if (!p->routes)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t i = 0; i < ck->ntables; i++) {
		const ps_ck_table *t = &ck->tables[i];
		route *r = &p->routes[p->nroutes];

		memset(r, 0, sizeof(*r));   /* the slot may hold a table skipped below */
		r->schema = t->schema;
		r->name = t->name;
		for (size_t u = 0; u < t->nunits; u++) {
			const char *pt = t->units[u].point;
			if (!r->skip[0] || ps_src_compare(&p->src, pt, r->skip) < 0)
				snprintf(r->skip, sizeof(r->skip), "%s", pt);
			if (!r->redo[0] || ps_src_compare(&p->src, pt, r->redo) > 0)
				snprintf(r->redo, sizeof(r->redo), "%s", pt);
		}
		if (!r->redo[0] || ps_src_compare(&p->src, r->redo, ck->position) <= 0)
			continue;   /* nothing past the stream's start: plain apply */
		if (!p->routes_end[0] || ps_src_compare(&p->src, r->redo, p->routes_end) > 0)
			snprintf(p->routes_end, sizeof(p->routes_end), "%s", r->redo);
		p->nroutes++;
	}
	if (p->nroutes)
		ps_log_info("the initial load was resumed under newer snapshots: changes up to %s are "
		            "applied in re-processing mode (CDC ILUPDATE) where units already hold them",
		            p->routes_end);
	return PS_OK;
}

static void routes_end_check(pipeline *p)
{
	if (p->nroutes && ps_src_compare(&p->src, p->last_commit, p->routes_end) >= 0) {
		p->nroutes = 0;   /* past every unit's point: plain apply from here */
		route_cache_clear(p);
	}
}

/* With the queue empty, a batch still lingers this long for more source
 * transactions to join it: a backlog arriving a little slower than it is
 * applied then fills target transactions instead of committing a handful
 * of source transactions each; it bounds the lag this adds. */
#define BATCH_LINGER_MS 20

static bool batch_lingered(pipeline *p)
{
	return ps_now_ns() - p->batch_started_ns >= (uint64_t)BATCH_LINGER_MS * 1000000ull;
}

static bool batch_full(pipeline *p)
{
	const ps_pipeline_config *c = p->cfg;

	return p->batch_txns >= c->batch_max_txns || p->batch_bytes >= c->batch_max_bytes ||
	       ps_now_ns() - p->batch_started_ns >= (uint64_t)c->batch_max_ms * 1000000ull;
}

/* A target whose DDL commits by itself (sink.h ddl_commits) can follow a
 * table change only where nothing of it is in the open target transaction.
 * The batch commits (with its checkpoint, at the last source commit) just
 * before the change when the source transaction in progress has sent
 * nothing to the sink; its first changes are held for that, up to
 * HOLD_MAX_ITEMS / HOLD_MAX_BYTES, and go to the sink at its commit, at a
 * backfill mark, past the bound, or right after a table change. */
#define HOLD_MAX_ITEMS 1024
#define HOLD_MAX_BYTES ((size_t)4 << 20)

static int apply_change(pipeline *p, const ps_change *c, ps_error *err);

static int release_held(pipeline *p, ps_error *err)
{
	int rc = PS_OK;
	size_t i;

	p->holding = false;
	for (i = 0; rc == PS_OK && i < p->nheld; i++)
		rc = apply_change(p, p->held[i], err);
	for (i = 0; i < p->nheld; i++)
		ps_change_free(p->held[i]);
	p->nheld = 0;
	p->held_bytes = 0;
	return rc;
}

/* Takes *cp when it is held (and sets *cp to NULL). */
static bool hold_change(pipeline *p, ps_change **cp)
{
	ps_change *c = *cp;

	if (!p->holding || ps_backfill_is_mark(c) || p->nheld >= HOLD_MAX_ITEMS ||
	    p->held_bytes + c->mem_size > HOLD_MAX_BYTES)
		return false;
	if (p->nheld == p->held_cap) {
		size_t cap = p->held_cap ? 2 * p->held_cap : 64;
		ps_change **h = realloc(p->held, cap * sizeof(*h));

		if (!h)
			return false;
		p->held = h;
		p->held_cap = cap;
	}
	p->held[p->nheld++] = c;
	p->held_bytes += c->mem_size;
	*cp = NULL;
	return true;
}

static bool held_touch(const pipeline *p, const ps_table_change *tc)
{
	for (size_t i = 0; i < p->nheld; i++) {
		const ps_table *t = p->held[i]->table;

		if (!t)
			continue;
		if (strcmp(t->schema, tc->table->schema) == 0 && strcmp(t->name, tc->table->name) == 0)
			return true;
		if (tc->previous && strcmp(t->schema, tc->previous->schema) == 0 &&
		    strcmp(t->name, tc->previous->name) == 0)
			return true;
	}
	return false;
}

static int apply_flush(pipeline *p, ps_error *err);

static int table_change_item(pipeline *p, ps_table_change *tc, ps_error *err)
{
	int rc = PS_OK;

	if (ps_snk_ddl_commits(&p->snk)) {
		if (held_touch(p, tc))
			rc = release_held(p, err);       /* the sink then says whether it can */
		else if (!p->txn_sent)
			rc = apply_flush(p, err);        /* nothing of this transaction in it */
		if (rc != PS_OK)
			return rc;
	}
	rc = ps_backfill_on_table(p->bf, &p->txn, tc, err);
	if (rc == PS_OK && p->nheld)
		rc = release_held(p, err);
	return rc;
}

static int apply_change(pipeline *p, const ps_change *c, ps_error *err)
{
	int how;

	p->txn_sent = true;
	/* markers of table changes and backfills, and changes of tables
	 * added or removed while running (backfill.h) */
	if (ps_backfill_is_mark(c))
		return ps_backfill_on_mark(p->bf, &p->txn, c, err);
	how = ps_backfill_route_change(p->bf, c);
	if (how == PS_BF_SKIP)
		return PS_OK;
	/* the live limits (ratelimit.h): may wait, never inside the sink */
	ps_ratelimit_take(&p->rl, &p->live->limits, 1, c->mem_size, p->stop);
	p->batch_bytes += c->mem_size;
	p->changes_applied++;
	if (c->table)
		ps_op_counts_add(&p->ops, c->table->schema, c->table->name, c->op, c->mem_size);
	if (how == PS_BF_REDO)
		return ps_snk_write(&p->snk, &p->txn_redo, c, err);
	if (p->nroutes)
		return route_write(p, c, err);
	return ps_snk_write(&p->snk, &p->txn, c, err);
}

static int apply_item(pipeline *p, ps_read_item *item, ps_error *err)
{
	int rc = PS_OK;

	switch (item->kind) {
	case PS_READ_BEGIN:
		p->in_txn = true;
		p->txn_sent = false;
		p->holding = ps_snk_ddl_commits(&p->snk);
		p->txn = item->txn;
		p->txn_redo = item->txn;
		p->txn_redo.reprocessing = true;
		if (p->batch_txns == 0)
			p->batch_started_ns = ps_now_ns();
		return ps_snk_begin(&p->snk, &p->txn, err);
	case PS_READ_CHANGE:
		if (hold_change(p, &item->change))
			return PS_OK;
		if (p->nheld && (rc = release_held(p, err)) != PS_OK)
			return rc;
		p->holding = false;
		return apply_change(p, item->change, err);
	case PS_READ_TABLE:
		/* a table's definition changed: the target follows, or the job
		 * stops at it (backfill.h) */
		return table_change_item(p, item->table_change, err);
	case PS_READ_COMMIT:
		if (p->nheld && (rc = release_held(p, err)) != PS_OK)
			return rc;
		p->holding = false;
		p->txn = item->txn;
		rc = ps_snk_commit(&p->snk, &p->txn, err);
		if (rc != PS_OK)
			return rc;
		/* The source's state as of this commit goes into the checkpoint
		 * that records it (source.h ps_read_item.state). */
		if (item->state && ps_checkpoint_set_text(&p->ck.source_state, item->state) != PS_OK)
			return ps_error_set(err, PS_ENOMEM, "out of memory keeping the source's state");
		p->in_txn = false;
		p->batch_txns++;
		p->txns_applied++;
		snprintf(p->last_commit, sizeof(p->last_commit), "%s", p->txn.position);
		p->last_commit_time_us = p->txn.commit_time_us;
		routes_end_check(p);
		if (batch_full(p) || (ps_queue_count(&p->queue) == 0 && batch_lingered(p)) ||
		    atomic_load(&p->until_set))
			return apply_flush(p, err);
		return PS_OK;
	default:
		return ps_error_set(err, PS_ERR, "unknown queue item %d", item->kind);
	}
}

static void report_progress(pipeline *p, bool force)
{
	uint64_t now = ps_now_ns();
	double secs = (double)(now - p->last_progress_ns) / 1e9;
	struct timespec wall;
	double lag = 0;

	if (!force && secs * 1000 < p->cfg->progress_interval_ms)
		return;
	clock_gettime(CLOCK_REALTIME, &wall);
	if (!(atomic_load(&p->reader_idle) && ps_queue_count(&p->queue) == 0) && p->last_commit_time_us)
		lag = (double)((int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000 -
		               p->last_commit_time_us) / 1e6;
	ps_log_info("streaming: %llu changes in %llu transactions (%.0f changes/s), "
	            "checkpoint %s, lag %.1f s, CDC %s",
	            (unsigned long long)p->changes_applied, (unsigned long long)p->txns_applied,
	            secs > 0 ? (double)(p->changes_applied - p->last_progress_changes) / secs : 0.0,
	            p->ck.position, lag < 0 ? 0.0 : lag, ps_cdc_state_name(p->ck.cdc_state));
	p->last_progress_ns = now;
	p->last_progress_changes = p->changes_applied;
}

static void set_phase(pipeline *p, int phase)
{
	if (atomic_exchange(&p->phase, phase) != phase && p->cfg->on_phase)
		p->cfg->on_phase(phase, p->cfg->payload);
}

/* The sink's own figures (sink.h figures), with the rest of the status; a
 * sink that cannot tell them now only leaves the last ones shown. */
static void publish_figures(pipeline *p)
{
	char figures[PS_TARGET_FIGURES_MAX];
	ps_error ferr;

	ps_error_clear(&ferr);
	if (ps_snk_figures(&p->snk, figures, sizeof(figures), &ferr) == PS_OK)
		ps_run_status_set_target_figures(p->cfg->status, figures);
}

/* For a watcher, at most 4 times a second unless forced. Once the reader
 * has found the log's end with nothing queued, the job is streaming. */
static void publish_status(pipeline *p, bool force)
{
	uint64_t now;
	bool idle;

	if (!p->cfg->status)
		return;
	now = ps_now_ns();
	if (!force && now - p->status_ns < 250000000ull)
		return;
	p->status_ns = now;
	idle = atomic_load(&p->reader_idle) && ps_queue_count(&p->queue) == 0 && !p->in_txn;
	/* Caught up: the backlog that existed when streaming began is applied,
	 * or the log has had nothing for us for a second (the rest of that
	 * backlog was other tables' or other databases' WAL). */
	if (!idle)
		p->idle_since_ns = 0;
	else if (!p->idle_since_ns)
		p->idle_since_ns = now;
	if (atomic_load(&p->phase) == PS_PHASE_CATCHUP &&
	    ((p->idle_since_ns && now - p->idle_since_ns >= 1000000000ull) ||
	     (p->catchup_to[0] && ps_src_compare(&p->src, p->ck.position, p->catchup_to) >= 0)))
		set_phase(p, PS_PHASE_STREAMING);
	ps_run_status_applied(p->cfg->status, p->ck.position, p->ck.cdc_state, p->changes_applied,
	                      p->txns_applied, p->last_commit_time_us, idle, atomic_load(&p->phase));
	ps_run_status_set_ops(p->cfg->status, &p->ops);
	publish_figures(p);
	if (p->cfg->on_tick)
		p->cfg->on_tick(p->cfg->payload);
}

static int applier_loop(pipeline *p, ps_error *err)
{
	ps_read_item item;
	int rc;

	p->last_progress_ns = ps_now_ns();
	for (;;) {
		/* An open batch waits no longer than its linger for more. */
		int wait_ms = 200;

		if (p->batch_txns > 0 && !p->in_txn) {
			uint64_t age_ms = (ps_now_ns() - p->batch_started_ns) / 1000000ull;

			wait_ms = age_ms >= BATCH_LINGER_MS ? 0 : BATCH_LINGER_MS - (int)age_ms;
		} else {
			/* batches flushed, not yet durable: look again soon (note 7) */
			rc = durable_idle(p, &wait_ms, err);
			if (rc != PS_OK)
				return rc;
		}
		rc = ps_queue_pop(&p->queue, &item, wait_ms);
		if (rc == PS_ESTOPPED)
			return PS_OK;
		if (rc == PS_ETIMEOUT) {
			rc = p->in_txn ? PS_OK : apply_flush(p, err);
			if (rc == PS_OK && !p->in_txn && p->batch_txns == 0)
				rc = ps_snk_idle(&p->snk, err);   /* e.g. heartbeats (sink.h idle) */
			if (rc != PS_OK)
				return rc;
			report_progress(p, false);
			publish_status(p, false);
			continue;
		}
		rc = apply_item(p, &item, err);
		ps_change_free(item.change);
		free(item.state);
		ps_table_change_free(item.table_change);
		if (rc != PS_OK)
			return rc;
		/* Once per transaction, and now and then inside a huge one. */
		if (item.kind == PS_READ_COMMIT || (p->changes_applied & 4095) == 0) {
			report_progress(p, false);
			publish_status(p, false);
		}
	}
}

/* --- set-up --------------------------------------------------------------- */

static bool is_load_job(const pipeline *p)
{
	return p->spec->type != PS_JOB_CDC;
}

static int decide_resume(pipeline *p, bool *resuming, int *mode, ps_error *err)
{
	char where[1300];
	bool found = false;
	int rc;

	if (ps_snk_has_checkpoint_store(&p->snk))
		snprintf(where, sizeof(where), "in the target (table penstock checkpoint, job %s)",
		         p->spec->name);
	else
		ps_checkpoint_path(where, sizeof(where), p->cfg->state_dir, p->spec->name);
	rc = ps_checkpoint_fetch(&p->ck, &found, &p->snk, p->cfg->state_dir, p->spec->name, err);
	if (rc == PS_OK)
		rc = ps_snk_state_restore(&p->snk, found ? p->ck.target_state : NULL, err);
	if (rc != PS_OK)
		return rc;
	*resuming = false;
	/* A load needs a snapshot exported by a slot created now. */
	*mode = is_load_job(p) ? PS_PREPARE_RECREATE : PS_PREPARE_CREATE_OR_USE;
	if (p->spec->resume == PS_RESUME_NEVER) {
		*mode = PS_PREPARE_RECREATE;
		if (found)
			ps_log_info("resume is \"never\": discarding the checkpoint %s (at %s) and "
			            "starting over", where, p->ck.position);
		ps_checkpoint_free(&p->ck);
		memset(&p->ck, 0, sizeof(p->ck));
		return found ? ps_checkpoint_discard(&p->snk, p->cfg->state_dir, p->spec->name, err)
		             : PS_OK;
	}
	if (!found) {
		if (p->spec->resume == PS_RESUME_ALWAYS)
			return ps_error_set(err, PS_ECHECKPOINT,
			                    "resume is \"always\" but job '%s' has no checkpoint %s. Run "
			                    "it once with \"resume\": \"if_exists\" to start %s",
			                    p->spec->name, where,
			                    is_load_job(p) ? "with a fresh initial load" : "from now");
		return PS_OK;
	}
	/* the tables in force at the checkpoint (backfill.h) */
	p->prev_spec_json = p->ck.spec_json ? strdup(p->ck.spec_json) : NULL;
	rc = ps_checkpoint_match(&p->ck, &p->identity, err);
	/* A job modified through its owner (the server, which passes live
	 * controls) may have changed its tables since; a spec file edited
	 * between two `penstock run`s is another definition and refused. */
	if (rc != PS_OK && p->cfg->live && ps_backfill_tables_only(&p->ck, &p->identity)) {
		ps_log_info("the job's tables changed since the checkpoint was written (%s, now %s); "
		            "resuming with the new tables", p->ck.identity.tables, p->identity.tables);
		ps_error_clear(err);
		rc = PS_OK;
	}
	if (rc != PS_OK)
		return rc;
	*resuming = true;
	*mode = PS_PREPARE_MUST_EXIST;
	return PS_OK;
}

static int open_source(pipeline *p, int mode, bool resuming, ps_prepare_result *res, ps_error *err)
{
	const ps_spec *s = p->spec;
	ps_source_config cfg;
	const ps_source_ops *ops;
	char *password = NULL;
	int rc;

	ops = ps_plugin_source_for(s->source.parsed.scheme_name, err);
	if (!ops)
		return ps_error_add_context(err, "source.url");
	rc = ps_spec_source_config(s, &cfg, &password, err);
	if (rc != PS_OK)
		return rc;
	cfg.want_snapshot = is_load_job(p);
	rc = ps_src_open(&p->src, ops, &cfg, err);
	ps_secret_free(password);
	if (rc == PS_OK && is_load_job(p) && !ps_src_can_snapshot(&p->src))
		rc = ps_error_set(err, PS_EINVAL, "source %s cannot copy an initial load; use type cdc",
		                  ops->name);
	if (rc == PS_OK)
		rc = ps_src_prepare(&p->src, mode, res, err);
	if (rc == PS_OK && resuming && p->ck.source_server_id[0] &&
	    strcmp(p->ck.source_server_id, res->server_id) != 0)
		rc = ps_error_set(err, PS_ECHECKPOINT,
		                  "the source is a different server (system identifier %s) than the one "
		                  "the checkpoint was written for (%s); its positions mean nothing here. "
		                  "Point source.url back, or start over with \"resume\": \"never\"",
		                  res->server_id, p->ck.source_server_id);
	return rc;
}

static int open_sink(pipeline *p, ps_error *err)
{
	const ps_spec *s = p->spec;
	const ps_sink_ops *ops;
	int rc;

	ops = ps_plugin_sink_for(s->target.parsed.scheme_name, err);
	if (!ops)
		return ps_error_add_context(err, "target.url");
	rc = ps_spec_sink_config(s, &p->sink_cfg, &p->target_password, err);
	if (rc != PS_OK)
		return rc;
	return ps_snk_open(&p->snk, ops, &p->sink_cfg, err);
}

/* The checkpoint's fixed parts for this run. */
static void fill_checkpoint(pipeline *p, const ps_prepare_result *res)
{
	const ps_spec *s = p->spec;

	snprintf(p->ck.job, sizeof(p->ck.job), "%s", s->name);
	p->ck.identity = p->identity;
	snprintf(p->ck.source_server_id, sizeof(p->ck.source_server_id), "%s", res->server_id);
	/* The source's state from prepare when it has one, else the resumed
	 * checkpoint's stays (a source that tells its state per commit). */
	if (res->state && ps_checkpoint_set_text(&p->ck.source_state, res->state) != PS_OK)
		ps_log_warn("out of memory keeping the source's state");
	free(p->ck.spec_json);
	p->ck.spec_json = ps_spec_to_json(s);
}

/* The initial load, fresh or resumed. */
static int run_load(pipeline *p, bool resuming, const ps_prepare_result *res, ps_error *err)
{
	ps_load_config lc = {0};
	char snapshot[64], point[PS_POSITION_MAX];
	int rc, rrc;
	ps_error rerr;

	if (!resuming) {
		snprintf(snapshot, sizeof(snapshot), "%s", res->snapshot);
		snprintf(point, sizeof(point), "%s", res->start_position);
		if (!snapshot[0])
			return ps_error_set(err, PS_ERR, "the source exported no snapshot for the load");
	} else {
		rc = ps_src_snapshot_export(&p->src, snapshot, sizeof(snapshot), point, sizeof(point), err);
		if (rc != PS_OK)
			return rc;
		ps_log_info("resuming the initial load under a new snapshot at %s: finished units are "
		            "kept, unfinished ones copied again", point);
	}
	lc.spec = p->spec;
	lc.src = &p->src;
	lc.snk = &p->snk;
	lc.sink_cfg = &p->sink_cfg;
	lc.ck = &p->ck;
	lc.state_dir = p->cfg->state_dir;
	lc.snapshot = snapshot;
	lc.point = point;
	lc.fresh = !resuming;
	lc.stop = p->stop;
	lc.progress_interval_ms = p->cfg->progress_interval_ms;
	lc.batch_rows = p->cfg->load_batch_rows > 0 ? p->cfg->load_batch_rows
	                                            : p->spec->snapshot_chunk_rows;
	lc.status = p->cfg->status;
	lc.limits = &p->live->limits;
	lc.rl = &p->rl;
	set_phase(p, PS_PHASE_SNAPSHOT);
	publish_status(p, true);
	rc = ps_load_run(&lc, err);
	ps_error_clear(&rerr);
	rrc = ps_src_snapshot_release(&p->src, &rerr);
	if (rc == PS_OK && rrc != PS_OK) {
		*err = rerr;
		rc = rrc;
	}
	return rc;
}

/* Fills the checkpoint for this run and decides where streaming starts. */
static int begin_run(pipeline *p, bool resuming, const ps_prepare_result *res, ps_error *err)
{
	bool transactional = ps_snk_has_checkpoint_store(&p->snk);
	int rc;

	p->redo_until[0] = '\0';
	if (!resuming) {
		p->ck.cdc_state = PS_CDC_INITIAL;
		snprintf(p->ck.position, sizeof(p->ck.position), "%s", res->start_position);
	}
	fill_checkpoint(p, res);
	snprintf(p->last_commit, sizeof(p->last_commit), "%s", p->ck.position);

	if (is_load_job(p) && (p->ck.cdc_state == PS_CDC_INITIAL || p->ck.cdc_state == PS_CDC_ILSTART)) {
		rc = run_load(p, resuming && p->ck.cdc_state == PS_CDC_ILSTART, res, err);
		if (rc != PS_OK)
			return rc;
	}
	rc = routes_build(p, err);
	if (rc == PS_OK)
		rc = ps_backfill_begin(p->bf, p->prev_spec_json, resuming, err);
	if (rc != PS_OK)
		return rc;

	/* Events past the position may already be in a non-transactional target
	 * when the last run did not end cleanly, or when a slot we did not just
	 * create is reused without a checkpoint: the source marks them
	 * reprocessing. A transactional target holds exactly what its checkpoint
	 * says. */
	if (!transactional &&
	    ((resuming && p->ck.cdc_state != PS_CDC_TFEND && p->ck.cdc_state != PS_CDC_ILEND) ||
	     (!resuming && !res->created))) {
		rc = ps_src_current_position(&p->src, p->redo_until, sizeof(p->redo_until), err);
		if (rc != PS_OK)
			return rc;
	}
	if (p->redo_until[0] && ps_src_compare(&p->src, p->ck.position, p->redo_until) >= 0)
		p->redo_until[0] = '\0';
	/* The marker says TFREDO for that range, unless the load's re-processing
	 * window (ILUPDATE, which keeps the unit points) is still open. */
	rc = PS_OK;
	if (p->redo_until[0] && !p->nroutes && p->ck.cdc_state != PS_CDC_TFSTART &&
	    p->ck.cdc_state != PS_CDC_TFREDO)
		rc = store_checkpoint(p, PS_CDC_TFSTART, err);
	if (rc == PS_OK)
		rc = store_checkpoint(p, running_state(p), err);
	if (rc == PS_OK)
		rc = durable_after_flush(p, p->ck.position, err);
	return rc;
}

static void log_start(pipeline *p, bool resuming, const ps_prepare_result *res)
{
	const ps_spec *s = p->spec;

	ps_log_info("job %s (%s): source %s (%s), target %s, %zu tables", s->name,
	            ps_job_type_name(s->type), s->source.parsed.redacted,
	            res->summary[0] ? res->summary : p->src.ops->name, s->target.parsed.redacted,
	            res->ntables);
	/* Logged once streaming started: from here on every commit is
	 * captured, so scripts may wait for this line. */
	ps_log_info("%s %s; streaming, %s at %s, CDC %s",
	            res->log_reader[0] ? res->log_reader : "log reader",
	            res->created ? "created" : "exists",
	            resuming ? "resuming from checkpoint" : "starting", p->ck.position,
	            ps_cdc_state_name(p->ck.cdc_state));
	if (p->redo_until[0])
		ps_log_info("the last run did not stop cleanly: events up to %s are marked "
		            "\"reprocessing\": true, as they may repeat", p->redo_until);
}

/* --- the run -------------------------------------------------------------- */

static int run_threads(pipeline *p, ps_error *err)
{
	pthread_t reader;
	int rc, final_state;

	if (pthread_create(&reader, NULL, reader_main, p) != 0)
		return ps_error_set(err, PS_ERR, "cannot start the reader thread");
	rc = applier_loop(p, err);
	if (rc != PS_OK) {
		atomic_store(&p->applier_failed, 1);
		ps_queue_close(&p->queue);
	} else if (!p->in_txn) {
		rc = apply_flush(p, err);
	}
	/* A checkpoint says TFEND only when nothing past it was written. A
	 * transactional target never commits a source transaction that was cut
	 * off (the reader failed or an immediate stop came inside it): its open
	 * target transaction, with the whole batch, is rolled back at close and
	 * read again next time, as the last checkpoint says. */
	if (rc == PS_OK && !(p->in_txn && ps_snk_has_checkpoint_store(&p->snk))) {
		final_state = p->in_txn ? running_state(p) : PS_CDC_TFEND;
		if (p->range_hold) {
			bool hold, done = !p->in_txn && atomic_load(&p->bound_passed);

			/* note 6: the range as it ended (a backfill may have moved
			 * the bound; an early stop ends it at the last commit) */
			rc = ps_snk_range(&p->snk, p->range_from, done ? p->bound : p->last_commit,
			                  &hold, err);
		}
		if (!p->in_txn && atomic_load(&p->bound_passed)) {
			/* note 5: the range is done up to the bound itself */
			snprintf(p->last_commit, sizeof(p->last_commit), "%s", p->bound);
			snprintf(p->ck.range_from, sizeof(p->ck.range_from), "%s", p->range_from);
			snprintf(p->ck.range_to, sizeof(p->ck.range_to), "%s", p->bound);
		}
		if (rc == PS_OK)
			rc = store_checkpoint(p, final_state, err);
		if (rc == PS_OK)
			rc = durable_after_flush(p, p->last_commit, err);
		/* a clean end leaves nothing for the source to wait for (note 7) */
		if (rc == PS_OK && !p->in_txn)
			rc = durable_all(p, err);
		degraded_end(p, rc == PS_OK && !p->in_txn);
	}
	atomic_store(&p->applier_done, 1);
	pthread_join(reader, NULL);
	if (rc == PS_OK && p->reader_rc != PS_OK) {
		*err = p->reader_err;
		rc = p->reader_rc;
	}
	return rc;
}

/* A snapshot job ends once the log up to the newest unit's point has been
 * applied (nothing to do when the load was never interrupted): then slot,
 * publication and checkpoint go. */
static int finish_snapshot_job(pipeline *p, ps_error *err)
{
	char done[512];
	int rc;

	/* the load must survive a crash of the target once the slot is gone */
	rc = ps_snk_make_durable(&p->snk, err);
	if (rc == PS_OK)
		rc = ps_src_drop(&p->src, done, sizeof(done), err);
	if (rc == PS_OK)
		rc = ps_checkpoint_discard(&p->snk, p->cfg->state_dir, p->spec->name, err);
	if (rc == PS_OK)
		ps_log_info("snapshot job %s complete: target loaded as of %s; %s%scheckpoint removed",
		            p->spec->name, p->ck.position, done, done[0] ? "; " : "");
	return rc;
}

/* cfg->until is something this job can do: said before the source is
 * touched. */
static int check_until(pipeline *p, ps_error *err)
{
	const char *until = p->cfg->until;
	const ps_source_ops *ops;

	if (!until)
		return PS_OK;
	if (p->spec->type == PS_JOB_SNAPSHOT)
		return ps_error_set(err, PS_EINVAL, "--until bounds the changes a cdc, sync or "
		                    "migration job applies; a snapshot job ends by itself");
	if (strcmp(until, "caught-up") == 0)
		return PS_OK;
	ops = ps_plugin_source_for(p->spec->source.parsed.scheme_name, err);
	if (!ops)
		return ps_error_add_context(err, "source.url");
	if (ops->position_check && ops->position_check(until, err) != PS_OK)
		return ps_error_add_context(err, "--until");
	return PS_OK;
}

/* A bounded run (note 5): the bound, and a fence past it. *nothing when the
 * checkpoint is already at or past the bound. */
static int bound_begin(pipeline *p, bool *nothing, ps_error *err)
{
	const char *until = p->cfg->until;
	char end[PS_POSITION_MAX], fence[PS_POSITION_MAX];
	int rc;

	*nothing = false;
	snprintf(p->range_from, sizeof(p->range_from), "%s", p->ck.position);
	if (strcmp(until, "caught-up") != 0) {
		rc = ps_src_current_position(&p->src, end, sizeof(end), err);
		if (rc != PS_OK)
			return ps_error_add_context(err, "--until");
		if (end[0] && ps_src_compare(&p->src, until, end) > 0)
			return ps_error_set(err, PS_EINVAL, "--until %s is past the end of the source's "
			                    "log (%s): a bounded run processes changes already in the "
			                    "log; give a position up to it, or --until caught-up",
			                    until, end);
		snprintf(p->bound, sizeof(p->bound), "%s", until);
		if (ps_src_compare(&p->src, p->ck.position, p->bound) >= 0) {
			ps_log_info("nothing to process: the checkpoint (%s) is at or past %s",
			            p->ck.position, p->bound);
			*nothing = true;
			return PS_OK;
		}
	}
	/* The fence's own transaction begins past every commit before it, and
	 * past the bound: the reader always sees the log reach beyond it. */
	rc = ps_src_fence(&p->src, fence, sizeof(fence), err);
	if (rc != PS_OK)
		return ps_error_add_context(err, "--until needs a position the log certainly reaches");
	if (!p->bound[0])
		snprintf(p->bound, sizeof(p->bound), "%s", fence);
	p->bounded = true;
	ps_log_info("processing the range (%s, %s]", p->range_from, p->bound);
	return PS_OK;
}

static void bound_end(pipeline *p)
{
	ps_source_resources held;

	if (!atomic_load(&p->bound_passed)) {
		ps_log_info("stopped before the end of the range: processed (%s, %s] of (%s, %s]; the "
		            "next run continues from %s", p->range_from, p->ck.position,
		            p->range_from, p->bound, p->ck.position);
		return;
	}
	ps_plugin_source_resources(p->src.ops, p->spec->source.options, &held);
	ps_log_info("processed the range (%s, %s]: %llu transactions, %llu changes; CDC %s",
	            p->range_from, p->bound, (unsigned long long)p->txns_applied,
	            (unsigned long long)p->changes_applied, ps_cdc_state_name(p->ck.cdc_state));
	ps_log_info("the source keeps the changes after %s for the next run%s%s%s", p->bound,
	            held.log_reader[0] ? " (" : "", held.log_reader,
	            held.log_reader[0] ? ")" : "");
}

static int run_stream(pipeline *p, bool resuming, const ps_prepare_result *res, ps_error *err)
{
	int rc;

	if (p->spec->type == PS_JOB_SNAPSHOT) {
		if (!p->nroutes)
			return PS_OK;
		rc = ps_src_fence(&p->src, p->until, sizeof(p->until), err);
		if (rc != PS_OK)
			return rc;
		atomic_store(&p->until_set, 1);
		ps_log_info("catching up to %s before the snapshot job completes", p->until);
	}
	if (p->cfg->until) {
		bool nothing = false;

		rc = bound_begin(p, &nothing, err);
		if (rc != PS_OK || nothing)
			return rc;
	}
	{
		bool hold = false;   /* note 6 */

		rc = ps_snk_range(&p->snk, p->bounded ? p->range_from : p->ck.position,
		                  p->bounded ? p->bound : NULL, &hold, err);
		if (rc != PS_OK)
			return rc;
		p->range_hold = p->bounded && hold;
	}
	if (p->cfg->status) {
		ps_error ignored;
		ps_error_clear(&ignored);
		if (ps_src_current_position(&p->src, p->catchup_to, sizeof(p->catchup_to), &ignored) != PS_OK)
			p->catchup_to[0] = '\0';   /* then only an idle log ends the catch-up */
	}
	set_phase(p, PS_PHASE_CATCHUP);
	publish_status(p, true);
	rc = ps_src_start(&p->src, p->ck.position, p->redo_until, p->ck.source_state, err);
	if (rc == PS_OK)
		log_start(p, resuming, res);
	if (rc == PS_OK)
		rc = run_threads(p, err);
	if (rc == PS_OK && atomic_load(&p->until_set) && !p->reached_until)
		rc = ps_error_set(err, PS_ESTOPPED, "stopped before %s was applied",
		                  p->spec->type == PS_JOB_SNAPSHOT ? "the snapshot job caught up"
		                                                  : "the cutover's fence");
	if (rc == PS_OK && p->bounded)
		bound_end(p);
	return rc;
}

int ps_pipeline_run(const ps_pipeline_config *cfg, atomic_int *stop, ps_error *err)
{
	pipeline *p = calloc(1, sizeof(*p));
	ps_prepare_result res = {0};
	bool resuming = false;
	int mode, rc;

	if (!p)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	p->cfg = cfg;
	p->spec = cfg->spec;
	p->stop = stop;
	pthread_mutex_init(&p->mu, NULL);
	ps_live_init(&p->own_live, p->spec);
	p->live = cfg->live ? cfg->live : &p->own_live;
	ps_ratelimit_init(&p->rl);
	ps_identity_from_spec(&p->identity, p->spec);
	rc = check_until(p, err);   /* refused before anything is opened or created */
	if (rc == PS_OK)
		rc = ps_queue_init(&p->queue, cfg->queue_max_items, cfg->queue_max_bytes);
	if (rc == PS_OK)
		rc = ps_state_dir_ensure(cfg->state_dir, err);
	if (rc == PS_OK)
		rc = open_sink(p, err);
	if (rc == PS_OK)
		rc = decide_resume(p, &resuming, &mode, err);
	if (rc == PS_OK)
		rc = open_source(p, mode, resuming, &res, err);
	if (rc == PS_OK) {
		ps_backfill_config bc = {
			.spec = p->spec, .src = &p->src, .snk = &p->snk, .live = p->live, .ck = &p->ck,
			.identity = &p->identity, .rl = &p->rl, .stop = stop, .status = cfg->status,
			.on_event = cfg->on_event, .payload = cfg->payload,
		};
		atomic_store(&p->live->busy, 0);   /* this run counts its own */
		rc = ps_backfill_new(&p->bf, &bc, err);
	}
	if (rc == PS_OK && cfg->status) {
		pthread_mutex_lock(&cfg->status->mu);
		snprintf(cfg->status->server_version, sizeof(cfg->status->server_version), "%s",
		         res.server_version);
		pthread_mutex_unlock(&cfg->status->mu);
	}
	if (rc == PS_OK)
		rc = begin_run(p, resuming, &res, err);
	ps_secret_free(p->target_password);   /* the load's extra sinks are closed */
	p->target_password = NULL;
	p->sink_cfg.password = NULL;
	if (rc == PS_OK)
		rc = run_stream(p, resuming, &res, err);
	if (rc == PS_OK && p->spec->type == PS_JOB_SNAPSHOT) {
		rc = finish_snapshot_job(p, err);
		if (rc == PS_OK && cfg->completed)
			*cfg->completed = true;
	}
	else if (rc == PS_OK) {
		report_progress(p, true);
		ps_log_info("stopped cleanly: checkpoint at %s (CDC %s); run again to resume",
		            p->ck.position, ps_cdc_state_name(p->ck.cdc_state));
	} else if (rc == PS_ESTOPPED && atomic_load(stop)) {
		ps_log_info("stopped: %s; checkpoint at %s (CDC %s); run again to resume",
		            err->message, p->ck.position, ps_cdc_state_name(p->ck.cdc_state));
		rc = PS_OK;
	}
	publish_status(p, true);
	ps_snk_close(&p->snk);
	ps_src_close(&p->src);
	ps_queue_destroy(&p->queue);
	ps_checkpoint_free(&p->ck);
	ps_prepare_result_clear(&res);
	route_cache_clear(p);
	free(p->routes);
	for (size_t i = 0; i < p->nheld; i++)
		ps_change_free(p->held[i]);
	free(p->held);
	ps_secret_free(p->target_password);
	ps_backfill_free(p->bf);
	ps_op_counts_free(&p->ops);
	free(p->prev_spec_json);
	ps_ratelimit_destroy(&p->rl);
	ps_live_destroy(&p->own_live);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return rc;
}

int ps_pipeline_release(const ps_spec *spec, const char *state_dir, char *done, size_t len,
                        ps_error *err)
{
	ps_source_config scfg;
	ps_sink_config kcfg;
	const ps_source_ops *sops;
	const ps_sink_ops *kops;
	ps_src src;
	ps_snk snk;
	char *password = NULL;
	ps_error e2;
	int rc, rc2;
	size_t used = 0;

	memset(&src, 0, sizeof(src));
	memset(&snk, 0, sizeof(snk));
	done[0] = '\0';
	ps_error_clear(&e2);
	sops = ps_plugin_source_for(spec->source.parsed.scheme_name, err);
	rc = sops ? ps_spec_source_config(spec, &scfg, &password, err) : err->code;
	if (rc == PS_OK)
		rc = ps_src_open(&src, sops, &scfg, err);
	ps_secret_free(password);
	password = NULL;
	if (rc == PS_OK)
		rc = ps_src_drop(&src, done, len, err);
	ps_src_close(&src);
	if (rc == PS_OK) {
		used = strlen(done);
	} else {
		ps_source_resources held;

		ps_plugin_source_resources(sops, spec->source.options, &held);
		ps_error_add_context(err, "releasing %s", held.held[0] ? held.held : "the source");
	}

	kops = ps_plugin_sink_for(spec->target.parsed.scheme_name, &e2);
	rc2 = kops ? ps_spec_sink_config(spec, &kcfg, &password, &e2) : e2.code;
	if (rc2 == PS_OK)
		rc2 = ps_snk_open(&snk, kops, &kcfg, &e2);
	ps_secret_free(password);
	if (rc2 == PS_OK)
		rc2 = ps_checkpoint_discard(&snk, state_dir, spec->name, &e2);
	ps_snk_close(&snk);
	if (rc2 == PS_OK && used < len)
		snprintf(done + used, len - used, "%sremoved the checkpoint", used ? "; " : "");
	else if (rc2 != PS_OK)
		ps_error_add_context(&e2, "removing the checkpoint");
	if (rc == PS_OK && rc2 != PS_OK) {
		*err = e2;
		rc = rc2;
	}
	return rc;
}
