/*
 * test_pipeline.c — the core's invariants proven without servers.
 *
 * The real pipeline (core/pipeline.c with load.c, checkpoint.c, queue.c,
 * backfill.c, as they are) runs against an in-memory source and an
 * in-memory transactional sink, registered for this test only through
 * ps__plugin_set_tables_for_tests. What each test proves (ARCHITECTURE.md,
 * "Data flow of one job" and "Checkpoints"):
 *
 *   whole_in_order    source transactions reach the sink whole, never
 *                     interleaved, in commit order, each exactly once:
 *                     empty ones, one bigger than the queue's byte bound and
 *                     one whose single change is bigger than it included.
 *   batch_atomic      after every target commit, the checkpoint committed
 *                     in the target is at the commit position of the last
 *                     source transaction in the target's data: never ahead,
 *                     never behind (checked at each flush, load included).
 *   ack_durable       every acknowledgement is at or before the checkpoint
 *                     committed in the target at that instant, and the last
 *                     commit is acknowledged in the end.
 *   fault_*           a failure injected at each fault point, at several
 *                     hits, ends the run; the target keeps what it committed
 *                     and nothing else; the next run resumes from its
 *                     checkpoint and the target ends equal to the source,
 *                     every source transaction committed exactly once.
 *   power_cut         the same with the `crash` action: the run is a forked
 *                     child SIGKILLed at the fault point, whose target's
 *                     committed state is a file written at each commit, and
 *                     the parent resumes from what the file holds.
 *   async_*           a target that commits asynchronously (sink.h
 *                     `durable`; pipeline.c note 6): every acknowledgement
 *                     is at or before the checkpoint of the last *durable*
 *                     commit, though acknowledgements did come while newer
 *                     commits were not durable; a clean end, and a snapshot
 *                     job before it drops its slot, make everything
 *                     durable; crashes of the target after failed runs (and
 *                     power cuts) lose the newest commits whole, and the
 *                     next run still ends equal to the source, each
 *                     transaction once; more batches than the pipeline
 *                     keeps apart (a disk that never catches up).
 *   memsrc_contract,  the two doubles honour source.h and sink.h, so that
 *   memsink_contract  what the tests above prove is about the core.
 *
 * Violations noticed on other threads (or in the forked child) are counted
 * in a shared page per invariant and asserted on by the main thread after
 * the run: cmocka's asserts may only run on the test's own thread.
 *
 * The in-memory source and sink, and what they model, are in memdb.h,
 * memsrc.h and memsink.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fnmatch.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/fault.h"
#include "core/pipeline.h"
#include "core/plugin.h"
#include "core/spec.h"
#include "util/log.h"

#include "memdb.h"
#include "memsink.h"
#include "memsrc.h"

#define QUEUE_BYTES (64u << 10)  /* the queue's byte bound in these runs */
#define CHUNK_ROWS 100           /* keys per copy unit: 6 units a keyed table */
#define RUN_DEADLINE_S 120       /* a run that takes longer has hung */

/* The registry of this test: only the in-memory plugins. */
static const ps_url_syntax mem_syntaxes[] = {
	{"memsrc", "memsrc", PS_URL_PATH, 0, false, false, "database", "memsrc:///db"},
	{"memsink", "memsink", PS_URL_PATH, 0, false, false, "database", "memsink:///tgt"},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};
static const ps_url_syntax *const mem_syntax_table[] = {mem_syntaxes, NULL};
static const ps_source_ops *const mem_source_table[] = {&memsrc_ops, NULL};
static const ps_sink_ops *const mem_sink_table[] = {&memsink_ops, NULL};

/* ==== the harness ========================================================= */

typedef struct harness {
	memdb db;
	memtarget tgt;
	ps_spec *spec;
	char state_dir[64];
	atomic_int stop;
	ps_run_status status;        /* what a watcher sees, as the server passes it */
	/* a stop request (1 graceful, 2 at once) when the source delivers the
	 * BEGIN of transaction stop_txn, or at the stop_units-th copy unit */
	size_t stop_txn;             /* 0: none */
	int stop_units;              /* 0: none */
	int stop_how;
	atomic_int units;
	int batch_txns;              /* the runs' batch_max_txns (16) */
	long long load_batch_rows;   /* the runs' load_batch_rows (g_load_batch_rows) */
	/* watchdog of one run */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	bool run_over;
	atomic_int timed_out;
} harness;

/* The load_batch_rows of the harnesses h_new makes: 0, the spec's
 * chunk_rows (CHUNK_ROWS), which the 100-row units fill alone, so that the
 * fault tests hit each unit's commit; the batched test sets it (load.c
 * NOTES 9), teardown puts it back. */
static long long g_load_batch_rows;

static harness *g_h;             /* the test's harness, freed by teardown if a
                                    failed assert skipped h_free */

/*
 * Invariant 3, at every acknowledgement (reader thread): the position is
 * durable in the target, i.e. at or before the checkpoint committed there
 * at this instant, or in asynchronous mode the checkpoint of its last
 * durable commit; or it is no further than the slot's own creation point,
 * which confirms nothing new. Then, once the whole history is committed at
 * the source and acknowledged, the run is asked to stop (gracefully), as
 * an operator would stop `penstock run` once the source is drained.
 */
static void h_on_ack(void *ctx, uint64_t pos)
{
	harness *h = ctx;
	uint64_t ck_pos;
	bool has_ck;

	pthread_mutex_lock(&h->tgt.mu);
	has_ck = h->tgt.async ? h->tgt.durable_has_ck : h->tgt.has_ck;
	ck_pos = h->tgt.async ? h->tgt.durable_ck_pos : h->tgt.ck_pos;
	if (h->tgt.async && h->tgt.ncommits > h->tgt.ndurable)
		h->tgt.gap_acks++;
	pthread_mutex_unlock(&h->tgt.mu);
	if ((!has_ck || pos > ck_pos) && pos > atomic_load(&g_sh->slot_point))
		violation(V_ACK, "acknowledged %llu while the target's %s checkpoint is %s%llu",
		          (unsigned long long)pos, h->tgt.async ? "durable" : "committed",
		          has_ck ? "at " : "absent, ", (unsigned long long)(has_ck ? ck_pos : 0));
	if (db_visible(&h->db) == h->db.nlog && pos >= h->db.log[h->db.nlog - 1].commit)
		atomic_store(&h->stop, 1);
}

/* When the slot is dropped, nothing the target committed may still be
 * waiting to become durable: the log that would redo it goes with the slot. */
static void h_on_drop(void *ctx)
{
	harness *h = ctx;

	pthread_mutex_lock(&h->tgt.mu);
	if (h->tgt.async && h->tgt.ncommits > h->tgt.ndurable)
		violation(V_ACK, "the slot was dropped with %llu target commits not yet durable",
		          (unsigned long long)(h->tgt.ncommits - h->tgt.ndurable));
	pthread_mutex_unlock(&h->tgt.mu);
}

/* At every BEGIN the source delivers (reader thread). */
static void h_on_begin(void *ctx, size_t i)
{
	harness *h = ctx;

	if (h->stop_txn && i == h->stop_txn)
		atomic_store(&h->stop, h->stop_how);
}

/* At every copy unit (copy worker threads). */
static void h_on_unit(void *ctx)
{
	harness *h = ctx;

	if (atomic_fetch_add(&h->units, 1) + 1 == h->stop_units)
		atomic_store(&h->stop, h->stop_how);
}

/*
 * A job of type `type` over a history of ntxn transactions, `first` of
 * them committed before the job starts. A cdc job's target tables exist
 * (empty, as the source was when the slot is made: first is 0 then); a
 * load job creates them.
 */
static harness *h_new(const char *type, size_t ntxn, size_t first, uint64_t seed)
{
	harness *h = calloc(1, sizeof(*h));
	char doc[512];
	ps_error err;

	assert_non_null(h);
	assert_true(strcmp(type, "cdc") != 0 || first == 0);
	g_sh = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(g_sh != MAP_FAILED);
	memset(g_sh, 0, sizeof(*g_sh));
	atomic_store(&g_sh->visible, first);
	db_init(&h->db, ntxn, first, seed);
	h->db.on_ack = h_on_ack;
	h->db.on_unit = h_on_unit;
	h->db.on_begin = h_on_begin;
	h->db.on_drop = h_on_drop;
	h->db.hook_ctx = h;
	target_init(&h->tgt);
	for (int t = 0; t < NT && strcmp(type, "cdc") == 0; t++)
		h->tgt.exists[t] = true;
	g_db = &h->db;
	g_tgt = &h->tgt;
	pthread_mutex_init(&h->wmu, NULL);
	pthread_cond_init(&h->wcv, NULL);
	ps_run_status_init(&h->status);
	ps__plugin_set_tables_for_tests(mem_syntax_table, mem_source_table, mem_sink_table);
	snprintf(doc, sizeof(doc),
	         "{\"name\": \"pipetest\", \"type\": \"%s\", \"source\": {\"url\": \"memsrc:///db\"}, "
	         "\"target\": {\"url\": \"memsink:///tgt\"}%s}", type,
	         strcmp(type, "cdc") == 0 ? "" : ", \"snapshot\": {\"parallel\": 3}");
	ps_error_clear(&err);
	if (ps_spec_parse(&h->spec, doc, strlen(doc), "spec", &err) != PS_OK)
		fail_msg("spec: %s", err.message);
	/* The spec's smallest chunk (1000 rows) is for real tables: these have
	 * 600 keys, cut in 6 units. */
	h->spec->snapshot_chunk_rows = CHUNK_ROWS;
	snprintf(h->state_dir, sizeof(h->state_dir), "/tmp/penstock-pipetest.XXXXXX");
	assert_non_null(mkdtemp(h->state_dir));
	h->batch_txns = 16;
	h->load_batch_rows = g_load_batch_rows;
	g_h = h;
	return h;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void h_free(harness *h)
{
	nftw(h->state_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	ps_spec_free(h->spec);
	ps__plugin_set_tables_for_tests(NULL, NULL, NULL);
	db_free(&h->db);
	target_free(&h->tgt);
	pthread_cond_destroy(&h->wcv);
	pthread_mutex_destroy(&h->wmu);
	ps_run_status_destroy(&h->status);
	g_db = NULL;
	g_tgt = NULL;
	munmap(g_sh, sizeof(shared));
	g_sh = NULL;
	free(h);
	g_h = NULL;
}

static int teardown(void **state)
{
	(void)state;
	if (g_h)
		h_free(g_h);
	g_load_batch_rows = 0;
	return 0;
}

static void *watchdog(void *arg)
{
	harness *h = arg;
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += RUN_DEADLINE_S;
	pthread_mutex_lock(&h->wmu);
	while (!h->run_over)
		if (pthread_cond_timedwait(&h->wcv, &h->wmu, &deadline) == ETIMEDOUT)
			break;
	if (!h->run_over) {
		atomic_store(&h->timed_out, 1);
		atomic_store(&h->stop, 2);
	}
	pthread_mutex_unlock(&h->wmu);
	return NULL;
}

/* One run of the job, with PENSTOCK_FAULT set to fault (NULL: none), until
 * it stops by itself, fails, or the watchdog stops it. No cmocka asserts:
 * a forked child runs this too. */
static int h_run(harness *h, const char *fault, ps_error *err)
{
	ps_pipeline_config cfg;
	pthread_t wd;
	int rc;

	ps_error_clear(err);
	if (fault)
		setenv("PENSTOCK_FAULT", fault, 1);
	else
		unsetenv("PENSTOCK_FAULT");
	rc = ps_fault_init(err);
	if (rc != PS_OK)
		return rc;
	ps_pipeline_config_defaults(&cfg);
	cfg.spec = h->spec;
	cfg.state_dir = h->state_dir;
	cfg.queue_max_bytes = QUEUE_BYTES;
	cfg.queue_max_items = 512;
	cfg.batch_max_txns = h->batch_txns;
	cfg.load_batch_rows = h->load_batch_rows;
	cfg.batch_max_ms = 50;
	cfg.progress_interval_ms = 60000;
	cfg.status = &h->status;
	atomic_store(&h->stop, 0);
	atomic_store(&h->units, 0);
	h->run_over = false;
	MUST(pthread_create(&wd, NULL, watchdog, h) == 0);
	rc = ps_pipeline_run(&cfg, &h->stop, err);
	pthread_mutex_lock(&h->wmu);
	h->run_over = true;
	pthread_cond_signal(&h->wcv);
	pthread_mutex_unlock(&h->wmu);
	pthread_join(wd, NULL);
	unsetenv("PENSTOCK_FAULT");
	ps_fault_init(err);
	return rc;
}

static void h_run_ok(harness *h)
{
	ps_error err;
	char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX];
	int rc = h_run(h, NULL, &err);

	ps_error_format(&err, msg, sizeof(msg));
	if (rc != PS_OK)
		fail_msg("the run failed (%s): %s", ps_error_code_name(rc), msg);
	if (atomic_load(&h->timed_out))
		fail_msg("the run did not drain the source within %d s", RUN_DEADLINE_S);
}

/* "Crashes" the target: a transactional database keeps what it committed
 * (asynchronous mode: what of it is durable) and rolls back every open
 * transaction. The pipeline closed its sink instances without flushing,
 * which dropped theirs: nothing may be open. */
static void h_crash_target(harness *h)
{
	assert_int_equal(h->tgt.open, 0);
	if (!h->tgt.async)
		return;
	target_crash(&h->tgt);
	h->status.applied[0] = h->status.acked[0] = '\0';   /* of a target that is no more */
}

/* No violation of any kind was noticed; after a run, what the status
 * shows as applied is what the target committed, and what it shows as
 * acknowledged is no further. */
static void h_assert_clean(harness *h)
{
	int first = -1;
	uint64_t shown, acked;

	for (int k = 0; k < V_COUNT; k++) {
		int n = atomic_load(&g_sh->nviol[k]);

		if (n) {
			print_error("%d %s violation(s), the first: %s\n", n, V_NAMES[k], g_sh->viol[k]);
			first = first < 0 ? k : first;
		}
	}
	if (first >= 0)
		fail_msg("%s violated: %s", V_NAMES[first], g_sh->viol[first]);
	pthread_mutex_lock(&h->status.mu);
	shown = pos_parse(h->status.applied);
	acked = pos_parse(h->status.acked);
	pthread_mutex_unlock(&h->status.mu);
	if (h->tgt.has_ck && h->status.applied[0] &&
	    (shown != h->tgt.ck_pos || acked > (h->tgt.async ? h->tgt.durable_ck_pos : h->tgt.ck_pos)))
		fail_msg("the status shows %llu applied and %llu acknowledged; the target's checkpoint "
		         "is at %llu (durable: %llu)", (unsigned long long)shown,
		         (unsigned long long)acked, (unsigned long long)h->tgt.ck_pos,
		         (unsigned long long)h->tgt.durable_ck_pos);
}

/* The CDC state of the checkpoint committed in the target ("none"). */
static const char *committed_state(harness *h, char *buf, size_t len)
{
	ps_checkpoint ck;
	ps_error err;

	snprintf(buf, len, "none");
	ps_error_clear(&err);
	if (h->tgt.ck && ps_checkpoint_from_text(&ck, h->tgt.ck, "memsink", &err) == PS_OK) {
		snprintf(buf, len, "%s", ps_cdc_state_name(ck.cdc_state));
		ps_checkpoint_free(&ck);
	}
	return buf;
}

static int cmp_seq(const void *a, const void *b)
{
	long x = strtol((*(row *const *)a)->v[0], NULL, 10);
	long y = strtol((*(row *const *)b)->v[0], NULL, 10);

	return (x > y) - (x < y);
}

static void assert_rows_equal(int t, rowset *got, rowset *want)
{
	if (!TABLES[t].keyed) {
		if (got->n != want->n)
			fail_msg("%s holds %zu rows, the source %zu", TABLES[t].name, got->n, want->n);
		qsort(got->list, got->n, sizeof(row *), cmp_seq);
		qsort(want->list, want->n, sizeof(row *), cmp_seq);
		for (size_t i = 0; i < got->n; i++)
			if (!row_equal(got->list[i], want->list[i]))
				fail_msg("%s row %zu: seq %s in the target, %s in the source", TABLES[t].name, i,
				         got->list[i]->v[0], want->list[i]->v[0]);
		return;
	}
	for (int id = 1; id <= MAX_ID; id++) {
		const row *g = got->byid[id], *w = want->byid[id];

		if (!g != !w)
			fail_msg("%s.id=%d is %s the target but %s the source", TABLES[t].name, id,
			         g ? "in" : "missing from", w ? "in" : "not in");
		if (g && !row_equal(g, w))
			fail_msg("%s.id=%d differs: %.40s / %.40s in the target, %.40s / %.40s in the source",
			         TABLES[t].name, id, g->v[1] ? g->v[1] : "NULL", g->v[2] ? g->v[2] : "NULL",
			         w->v[1] ? w->v[1] : "NULL", w->v[2] ? w->v[2] : "NULL");
	}
}

/*
 * The end of every test: the whole history is committed at the source and
 * acknowledged; the target's committed state equals the source's, with its
 * checkpoint TFEND at the last commit; and it committed each source
 * transaction after the slot's point exactly once, in commit order, whole
 * (every change, as the source sent it) past the newest snapshot point —
 * before it, a resumed load's units may hold a table's changes already, and
 * the core skips or reprocesses them (ARCHITECTURE.md, "Resumable snapshot").
 */
static void h_assert_final(harness *h)
{
	const memdb *db = &h->db;
	memtarget *tgt = &h->tgt;
	uint64_t last = db->log[db->nlog - 1].commit;
	uint64_t from = atomic_load(&g_sh->slot_point), max_point = atomic_load(&g_sh->max_point);
	uint64_t whole_after = max_point > from ? max_point : from;
	rowset *want = calloc(NT, sizeof(rowset));
	ps_checkpoint ck;
	ps_error err;
	size_t first = 0;

	assert_non_null(want);
	h_assert_clean(h);
	assert_int_equal(db_visible(db), db->nlog);
	assert_int_equal(atomic_load(&g_sh->max_ack), last);
	assert_non_null(tgt->ck);
	ps_error_clear(&err);
	assert_int_equal(ps_checkpoint_from_text(&ck, tgt->ck, "memsink", &err), PS_OK);
	assert_int_equal(pos_parse(ck.position), last);
	assert_string_equal(ps_cdc_state_name(ck.cdc_state), "TFEND");
	ps_checkpoint_free(&ck);

	db_state_at(db, last, want);
	for (int t = 0; t < NT; t++) {
		assert_true(tgt->exists[t]);
		assert_rows_equal(t, &tgt->rows[t], &want[t]);
		rs_free(&want[t]);
	}
	free(want);

	while (first < db->nlog && db->log[first].commit <= from)
		first++;
	if (tgt->log.n != db->nlog - first)
		fail_msg("the target committed %zu source transactions; %zu commit after the slot's point",
		         tgt->log.n, db->nlog - first);
	for (size_t i = 0; i < tgt->log.n; i++) {
		const applied *a = &tgt->log.v[i];
		const gtxn *g = &db->log[first + i];

		if (a->xid != g->xid || a->commit != g->commit)
			fail_msg("committed transaction %zu is xid %llu at %llu; the source's is xid %llu at "
			         "%llu", i, (unsigned long long)a->xid, (unsigned long long)a->commit,
			         (unsigned long long)g->xid, (unsigned long long)g->commit);
		if (g->commit > whole_after && (a->n != g->n || a->hash != g->hash || a->redo))
			fail_msg("xid %llu arrived with %zu changes%s (hash %s); the source sent %zu",
			         (unsigned long long)g->xid, a->n, a->redo ? " as reprocessing" : "",
			         a->hash == g->hash ? "equal" : "different", g->n);
	}
}

/* Runs the job in a forked child that PENSTOCK_FAULT `fault` (a crash)
 * SIGKILLs; the child's target writes its committed state to a file at
 * every commit, and the parent's target becomes what the file holds, as a
 * database comes back after a power cut with what it had committed. */
static void h_run_killed(harness *h, const char *fault)
{
	char path[128];
	int status = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/target.state", h->state_dir);
	pthread_mutex_lock(&h->tgt.mu);
	assert_int_equal(target_dump(&h->tgt, path), 0);
	pthread_mutex_unlock(&h->tgt.mu);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ps_error err;
		int rc;

		snprintf(h->tgt.durable, sizeof(h->tgt.durable), "%s", path);
		rc = h_run(h, fault, &err);
		_exit(rc == PS_OK ? 3 : 4);
	}
	for (int waited_ms = 0; waitpid(pid, &status, WNOHANG) == 0; waited_ms += 10) {
		if (waited_ms > RUN_DEADLINE_S * 1000) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("the child running with %s did not end within %d s", fault, RUN_DEADLINE_S);
		}
		sleep_ms(10);
	}
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("the child running with %s was not killed by it (%s %d)", fault,
		         WIFSIGNALED(status) ? "signal" : "exit status",
		         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	assert_int_equal(target_load(&h->tgt, path), 0);
	h->status.applied[0] = h->status.acked[0] = '\0';   /* the child's, never seen */
}

/* ==== 1. transactions whole and in commit order =========================== */

static void test_whole_in_order(void **state)
{
	harness *h = h_new("cdc", 400, 0, 1);
	const memdb *db = &h->db;
	size_t empty = 0;

	(void)state;
	/* the shapes that matter are in the history */
	for (size_t i = 0; i < db->nlog; i++)
		empty += db->log[i].n == 0;
	assert_true(empty >= 10);
	assert_true(db->log[db->huge].bytes > QUEUE_BYTES);
	assert_int_equal(db->log[db->big].n, 1);
	assert_true(db->log[db->big].bytes > QUEUE_BYTES);

	h_run_ok(h);
	h_assert_clean(h);
	/* Every source transaction the sink saw committed, rolled back or not:
	 * each once, in commit order, with every change as sent, none inside
	 * another (the sink counts a BEGIN, change or COMMIT out of place). */
	assert_int_equal(h->tgt.seen.n, db->nlog);
	for (size_t i = 0; i < db->nlog; i++) {
		const applied *a = &h->tgt.seen.v[i];
		const gtxn *g = &db->log[i];

		if (a->xid != g->xid || a->commit != g->commit || a->n != g->n || a->hash != g->hash)
			fail_msg("transaction %zu: the sink saw xid %llu at %llu with %zu changes; the source "
			         "sent xid %llu at %llu with %zu", i, (unsigned long long)a->xid,
			         (unsigned long long)a->commit, a->n, (unsigned long long)g->xid,
			         (unsigned long long)g->commit, g->n);
	}
	h_assert_final(h);
	h_free(h);
}

/* ==== 2. a batch commits its data and its checkpoint together ============= */

static void test_batch_atomic(void **state)
{
	harness *h = h_new("sync", 300, 120, 2);

	(void)state;
	h_run_ok(h);
	h_assert_clean(h);
	/* check_batch ran at every commit that held source transactions, and
	 * batches did group several of them (else "together" is trivial) */
	assert_true(h->tgt.ck_checks >= 10);
	assert_true(h->tgt.multi_txn_flushes >= 3);
	assert_int_equal(h->tgt.seen.n, h->tgt.log.n);   /* nothing rolled back */
	assert_int_equal(h->tgt.finishes, NT);           /* the load finished each table */
	h_assert_final(h);
	h_free(h);
}

/* ==== 3. the source is acknowledged only at a durable position ============ */

static void test_ack_durable(void **state)
{
	harness *h = h_new("cdc", 300, 0, 3);
	uint64_t last = h->db.log[h->db.nlog - 1].commit;
	unsigned acks;

	(void)state;
	h_run_ok(h);
	h_assert_clean(h);            /* h_on_ack checked every one */
	acks = atomic_load(&g_sh->nacks);
	assert_true(acks >= 2);   /* how many depends on timing; each one was checked */
	assert_int_equal(atomic_load(&g_sh->max_ack), last);
	assert_int_equal(atomic_load(&g_sh->confirmed), last);
	/* a second run resumes at what was acknowledged (the source refuses
	 * anything earlier) and acknowledges it again */
	h_run_ok(h);
	h_assert_clean(h);
	assert_true(atomic_load(&g_sh->nacks) > acks);
	h_assert_final(h);
	h_free(h);
}

/* ==== 3b. stopping and resuming ========================================== */

/* A stop request (SIGINT, `job pause`) at any moment, graceful or at once,
 * during the load or mid-stream, then a resume: nothing lost or repeated. */
static void test_stop_and_resume(void **state)
{
	harness *h = h_new("sync", 300, 120, 4);
	const memdb *db = &h->db;
	char st[32];

	(void)state;
	/* graceful, during the load: the finished units are kept */
	h->stop_units = 4;
	h->stop_how = 1;
	h_run_ok(h);
	h_assert_clean(h);
	assert_string_equal(committed_state(h, st, sizeof(st)), "ILSTART");
	/* at once, inside the huge transaction: it is cut off, and with it the
	 * batch it joined, which the target rolls back */
	h->stop_units = 0;
	h->stop_txn = db->huge;
	h->stop_how = 2;
	h_run_ok(h);
	h_assert_clean(h);
	assert_true(h->tgt.ck_pos < db->log[db->huge].commit);
	/* graceful, mid-stream: the transaction being read is finished, the
	 * checkpoint says nothing was written past it */
	h->stop_txn = db->trunc;
	h->stop_how = 1;
	h_run_ok(h);
	h_assert_clean(h);
	assert_string_equal(committed_state(h, st, sizeof(st)), "TFEND");
	assert_int_equal(h->tgt.ck_pos, db->log[db->trunc].commit);
	h->stop_txn = 0;
	h_run_ok(h);
	h_assert_final(h);
	h_free(h);
}

/* ==== 4. a failure at each fault point resumes with nothing lost or repeated */

#define HIT_IN_HUGE (-1L)    /* source.read: a change in the middle of the huge transaction */
#define HIT_LAST (-2L)       /* source.read: the last transaction's COMMIT */

typedef struct fault {
	const char *point;
	long hit;
	bool crash;                  /* SIGKILL in a forked child, else `error` in process */
	const char *left;            /* the CDC state the run must leave in the target's
	                                checkpoint (the path it proves), or NULL */
} fault;

/*
 * Runs the job once per fault, each run ended by its fault; after each, the
 * target keeps what it committed and nothing else. Then a run without
 * faults resumes from the target's checkpoint and must leave the target
 * equal to the source, each source transaction committed exactly once.
 */
static unsigned fault_runs_on(const char *type, uint64_t seed, const fault *faults, size_t n,
                              unsigned async_lag, const bool *target_lives);

static void fault_runs(const char *type, uint64_t seed, const fault *faults, size_t n)
{
	fault_runs_on(type, seed, faults, n, 0, NULL);
}

/* async_lag: 0, a target that commits durably; else one that commits
 * asynchronously, its WAL writer up to async_lag commits behind, so that a
 * crash after a run loses its newest commits (memsink.h). target_lives[i]
 * (NULL: none): the target does not crash after run i. Returns after how
 * many of the in-process runs the target's crash lost commits. */
static unsigned fault_runs_on(const char *type, uint64_t seed, const fault *faults, size_t n,
                              unsigned async_lag, const bool *target_lives)
{
	harness *h = h_new(type, 300, strcmp(type, "cdc") == 0 ? 0 : 120, seed);
	unsigned lost = 0;

	if (async_lag)
		target_set_async(&h->tgt, async_lag, seed);

	for (size_t i = 0; i < n; i++) {
		const fault *f = &faults[i];
		long hit = f->hit;
		char spec[96];
		ps_error err;
		int rc;

		if (hit == HIT_IN_HUGE)
			hit = db_items_before(&h->db, h->db.huge) + 1 + HUGE_CHANGES / 2;
		else if (hit == HIT_LAST)
			hit = db_items_before(&h->db, h->db.nlog);
		snprintf(spec, sizeof(spec), "%s:%s@%ld", f->point, f->crash ? "crash" : "error", hit);
		print_message("  %s job, run %zu: %s\n", type, i + 1, spec);
		if (f->crash) {
			h_run_killed(h, spec);
		} else {
			rc = h_run(h, spec, &err);
			if (rc != PS_EFAULT)
				fail_msg("with %s the run returned %s (%s), not the injected fault", spec,
				         ps_error_code_name(rc), err.message);
		}
		if (!target_lives || !target_lives[i]) {
			uint64_t before = h->tgt.ncommits;

			h_crash_target(h);
			lost += h->tgt.ncommits < before;
		}
		h_assert_clean(h);
		if (f->left) {
			char st[32];

			assert_string_equal(committed_state(h, st, sizeof(st)), f->left);
		}
	}
	h_run_ok(h);
	h_assert_final(h);
	h_free(h);
	return lost;
}

static void fault_case(const char *type, const char *point, long hit, uint64_t seed, bool crash)
{
	const fault f = {point, hit, crash, NULL};

	fault_runs(type, seed, &f, 1);
}

/* PIPETEST_SWEEP=n: every hit from 1 to n instead of the chosen few (slow;
 * for hunting, not for CI). */
static long sweep(void)
{
	const char *v = getenv("PIPETEST_SWEEP");

	return v ? strtol(v, NULL, 10) : 0;
}

static void test_fault_source_read(void **state)
{
	static const long hits[] = {1, 250, HIT_IN_HUGE, HIT_LAST};

	(void)state;
	for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++)
		fault_case("cdc", "source.read", hits[i], 100 + i, false);
	for (long hit = 1; hit <= sweep(); hit++)
		fault_case("cdc", "source.read", hit * 37, 1000 + (uint64_t)hit, false);
}

static void test_fault_before_commit(void **state)
{
	static const long hits[] = {1, 4, 9};

	(void)state;
	for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++)
		fault_case(i % 2 ? "sync" : "cdc", "apply.batch.before_commit", hits[i], 200 + i, false);
	for (long hit = 1; hit <= sweep(); hit++)
		fault_case(hit % 2 ? "sync" : "cdc", "apply.batch.before_commit", hit,
		           2000 + (uint64_t)hit, false);
}

static void test_fault_after_commit(void **state)
{
	static const long hits[] = {1, 4, 9};

	(void)state;
	for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++)
		fault_case(i % 2 ? "cdc" : "sync", "apply.batch.after_commit", hits[i], 300 + i, false);
	for (long hit = 1; hit <= sweep(); hit++)
		fault_case(hit % 2 ? "cdc" : "sync", "apply.batch.after_commit", hit,
		           3000 + (uint64_t)hit, false);
}

static void test_fault_unit_commit(void **state)
{
	static const long hits[] = {1, 5, 12};

	(void)state;
	for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++)
		fault_case("sync", "snapshot.unit.commit", hits[i], 400 + i, false);
	for (long hit = 1; hit <= sweep() && hit <= 13; hit++)
		fault_case("sync", "snapshot.unit.commit", hit, 4000 + (uint64_t)hit, false);
}

/* Batched checkpoints (load.c NOTES 9): the 12 units of 100 estimated rows
 * go two to a checkpoint under a batch of 250 rows, the keyless table's
 * unit of 1000 alone: 7 checkpoints for 13 units, whichever worker takes
 * which. A failure at each, power cuts, and a failure while resuming; a
 * fault at an 8th never comes. */
static void test_fault_unit_commit_batched(void **state)
{
	static const fault twice[] = {{"snapshot.unit.commit", 3, true, "ILSTART"},
	                              {"snapshot.unit.commit", 2, false, "ILSTART"}};
	harness *h;
	ps_error err;

	(void)state;
	g_load_batch_rows = 250;
	for (long hit = 1; hit <= 7; hit++)
		fault_case("sync", "snapshot.unit.commit", hit, 700 + (uint64_t)hit, false);
	fault_case("sync", "snapshot.unit.commit", 5, 710, true);
	fault_runs("sync", 711, twice, 2);
	h = h_new("sync", 300, 120, 712);
	if (h_run(h, "snapshot.unit.commit:error@8", &err) != PS_OK)
		fail_msg("a fault at the 8th unit checkpoint came: %s", err.message);
	h_assert_final(h);
	h_free(h);
	g_load_batch_rows = 0;
}

/* A failure while the previous one is being recovered from: a load
 * resumed twice (units at three snapshot points), and a fault during the
 * re-processing window a resumed load leaves (CDC ILUPDATE). The window
 * holds what the application committed while run 1 copied units: at least
 * 4 units of 5 transactions each, more than one batch (batch_max_txns 16),
 * so the first batch of run 2 commits inside it. */
static void test_fault_while_resuming(void **state)
{
	static const fault twice[] = {{"snapshot.unit.commit", 3, false, "ILSTART"},
	                              {"snapshot.unit.commit", 2, false, "ILSTART"}};
	static const fault window_before[] = {{"snapshot.unit.commit", 4, false, "ILSTART"},
	                                      {"apply.batch.before_commit", 2, false, "ILUPDATE"}};
	static const fault window_after[] = {{"snapshot.unit.commit", 6, false, "ILSTART"},
	                                     {"apply.batch.after_commit", 1, false, "ILUPDATE"},
	                                     {"source.read", 40, false, NULL}};
	static const fault stream[] = {{"source.read", HIT_IN_HUGE, false, "TFSTART"},
	                               {"apply.batch.after_commit", 2, false, "TFSTART"},
	                               {"source.read", 100, false, NULL}};

	(void)state;
	fault_runs("sync", 600, twice, 2);
	fault_runs("sync", 601, window_before, 2);
	fault_runs("sync", 602, window_after, 3);
	fault_runs("cdc", 603, stream, 3);
}

/* The same as a power cut: SIGKILL at the fault point, nothing flushed. */
static void test_power_cut(void **state)
{
	static const fault twice[] = {{"snapshot.unit.commit", 4, true, "ILSTART"},
	                              {"apply.batch.before_commit", 2, true, "ILUPDATE"}};

	(void)state;
	fault_case("cdc", "source.read", HIT_IN_HUGE, 500, true);
	fault_case("cdc", "apply.batch.before_commit", 3, 501, true);
	fault_case("sync", "apply.batch.after_commit", 5, 502, true);
	fault_case("sync", "snapshot.unit.commit", 7, 503, true);
	fault_runs("sync", 504, twice, 2);
}

/* ==== 4b. a target that commits asynchronously (sink.h durable) ============ */

/* The source is acknowledged only up to the checkpoint of the last durable
 * commit, never into commits a crash of the target would lose; a clean end
 * makes everything durable, so a crash right after it loses nothing. Runs:
 * a WAL writer a few commits behind, the same with an initial load (copy
 * workers commit asynchronously too), and a disk so slow that only the
 * pipeline's asking and insisting make anything durable, with a batch per
 * transaction, so that more batches wait than the pipeline keeps apart. */
static void test_async_ack_durable(void **state)
{
	static const struct {
		const char *type;
		size_t first;
		unsigned lag;
		int batch;
	} runs[] = {{"cdc", 0, 3, 16}, {"sync", 120, 3, 16}, {"cdc", 0, 100000, 1}};

	(void)state;
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		harness *h = h_new(runs[i].type, 400, runs[i].first, 700 + i);

		print_message("  %s job, WAL writer up to %u commits behind, batches of up to %d\n",
		              runs[i].type, runs[i].lag, runs[i].batch);
		h->batch_txns = runs[i].batch;
		target_set_async(&h->tgt, runs[i].lag, 700 + i);
		h_run_ok(h);
		h_assert_clean(h);          /* h_on_ack checked every acknowledgement */
		/* acknowledgements did come while the target held commits that
		 * were not durable: the check had something to catch */
		assert_true(h->tgt.gap_acks > 0);
		assert_int_equal(h->tgt.ndurable, h->tgt.ncommits);
		h_crash_target(h);
		h_assert_final(h);
		h_free(h);
	}
}

/* A crash of the target after runs that failed (so nothing made their last
 * commits durable) loses those commits, with their checkpoints; the source
 * still has everything after the checkpoint that survived, and the next run
 * ends with the target equal to the source, each transaction once. Also
 * when the target lived through failed runs first (their checkpoints were
 * read, made durable and the start confirmed: sink.h rule c), and as a
 * power cut of penstock and target together. */
static void test_async_target_crash(void **state)
{
	static const fault errors[] = {{"apply.batch.after_commit", 6, false, NULL},
	                               {"source.read", HIT_IN_HUGE, false, NULL},
	                               {"apply.batch.before_commit", 9, false, NULL}};
	static const fault chain[] = {{"apply.batch.after_commit", 4, false, NULL},
	                              {"source.read", 600, false, NULL},
	                              {"apply.batch.after_commit", 3, false, NULL}};
	static const bool chain_lives[] = {true, true, false};
	static const fault load[] = {{"snapshot.unit.commit", 5, false, NULL},
	                             {"apply.batch.after_commit", 2, false, NULL}};
	static const fault cut[] = {{"apply.batch.after_commit", 5, true, NULL},
	                            {"source.read", HIT_IN_HUGE, true, NULL}};
	static const fault cut_load[] = {{"snapshot.unit.commit", 7, true, NULL},
	                                 {"apply.batch.before_commit", 2, true, NULL}};
	unsigned lost = 0;

	(void)state;
	lost += fault_runs_on("cdc", 800, errors, 3, 3, NULL);
	lost += fault_runs_on("cdc", 801, chain, 3, 3, chain_lives);
	lost += fault_runs_on("sync", 802, load, 2, 3, NULL);
	assert_true(lost >= 1);     /* the crashes did lose commits */
	fault_runs_on("cdc", 803, cut, 2, 3, NULL);
	fault_runs_on("sync", 804, cut_load, 2, 3, NULL);
}

/* A snapshot job ends by dropping the slot: its load must be durable
 * first, or a crash of the target then would lose rows nobody can copy
 * from the slot's point again. */
static void test_async_snapshot_job(void **state)
{
	harness *h = h_new("snapshot", 200, 120, 805);
	rowset *want = calloc(NT, sizeof(rowset));

	(void)state;
	assert_non_null(want);
	target_set_async(&h->tgt, 3, 805);
	h_run_ok(h);
	h_assert_clean(h);
	assert_int_equal(atomic_load(&g_sh->slot), 0);   /* completed: the slot is gone */
	h_crash_target(h);
	assert_null(h->tgt.ck);                          /* its checkpoint too, durably */
	db_state_at(&h->db, atomic_load(&g_sh->slot_point), want);
	for (int t = 0; t < NT; t++) {
		assert_true(h->tgt.exists[t]);
		assert_rows_equal(t, &h->tgt.rows[t], &want[t]);
		rs_free(&want[t]);
	}
	free(want);
	h_free(h);
}

/* ==== 5. the doubles honour their contracts ================================ */

/* Asserts that n violations of kind were counted, and forgets them. */
static void take_violations(int kind, int n)
{
	assert_int_equal(atomic_load(&g_sh->nviol[kind]), n);
	atomic_store(&g_sh->nviol[kind], 0);
	g_sh->viol[kind][0] = '\0';
}

static void rs_apply_change(rowset *rs, int t, const ps_change *c)
{
	gchange g = {.op = c->op, .t = t};
	const ps_value *v = c->new_values ? c->new_values : c->old_values;

	for (int i = 0; v && i < NCOL; i++)
		g.v[i] = v[i].kind == PS_VALUE_TEXT ? (char *)v[i].data : NULL;
	rs_apply(rs, TABLES[t].keyed, &g);
}

static int collect_row(void *ctx, ps_table *pt, const ps_value *v, ps_error *err)
{
	rowset *rows = ctx;
	int t = table_index(pt->schema, pt->name);
	row *r = row_of_values(v);

	MUST(t >= 0);
	if (!TABLES[t].keyed) {
		rs_append(&rows[t], r);
		return PS_OK;
	}
	MUST(key_of(r->v[0]) > 0 && !rows[t].byid[key_of(r->v[0])]);
	rows[t].byid[key_of(r->v[0])] = r;
	return PS_OK;
}

/* Copies every unit of every table under the exported snapshot. */
static void copy_all(ps_src *src, const char *snapshot, rowset *into)
{
	ps_table_def **defs = NULL;
	ps_copier *c = NULL;
	ps_error err;
	size_t n = 0;

	ps_error_clear(&err);
	assert_int_equal(ps_src_describe(src, &defs, &n, &err), PS_OK);
	assert_int_equal(n, NT);
	assert_int_equal(ps_src_copy_open(src, snapshot, &c, &err), PS_OK);
	for (size_t i = 0; i < n; i++) {
		ps_key_bound *b = NULL;
		size_t nb = 0;

		assert_string_equal(defs[i]->table->name, TABLES[i].name);   /* in name order */
		if (defs[i]->has_primary_key)
			assert_int_equal(ps_src_split(src, defs[i], CHUNK_ROWS, &b, &nb, &err), PS_OK);
		for (size_t u = 0; u <= nb; u++) {
			ps_copy_range r = {.lower = u ? &b[u - 1] : NULL, .upper = u < nb ? &b[u] : NULL};

			assert_int_equal(ps_src_copy_unit(src, c, defs[i], &r, collect_row, into, &err),
			                 PS_OK);
		}
		for (size_t u = 0; u < nb; u++)
			ps_key_bound_clear(&b[u]);
		free(b);
		ps_table_def_free(defs[i]);
	}
	free(defs);
	ps_src_copy_close(src, c);
}

/* Reads until the source is idle, applying what it delivers to rows;
 * checks every transaction is whole and the reprocessing flag. Returns the
 * index of the first transaction delivered. */
static size_t stream_all(ps_src *src, const memdb *db, uint64_t redo, rowset *rows)
{
	ps_read_item it;
	ps_error err;
	size_t first = SIZE_MAX, at = 0;
	uint64_t hash = FNV0;
	size_t n = 0;

	ps_error_clear(&err);
	for (;;) {
		assert_int_equal(ps_src_read(src, &it, 0, &err), PS_OK);
		if (it.kind == PS_READ_NONE)
			return first;
		if (it.kind == PS_READ_BEGIN) {
			while (at < db->nlog && db->log[at].xid != it.txn.xid)
				at++;
			assert_true(at < db->nlog);
			first = first == SIZE_MAX ? at : first;
			assert_int_equal(pos_parse(it.txn.position), db->log[at].commit - 1);
			hash = FNV0;
			n = 0;
		} else if (it.kind == PS_READ_CHANGE) {
			hash = txn_fold(hash, change_hash(it.change));
			n++;
			rs_apply_change(&rows[table_index(it.change->table->schema, it.change->table->name)],
			                table_index(it.change->table->schema, it.change->table->name),
			                it.change);
			ps_change_free(it.change);
		} else {
			assert_int_equal(it.kind, PS_READ_COMMIT);
			assert_int_equal(it.txn.xid, db->log[at].xid);
			assert_int_equal(pos_parse(it.txn.position), db->log[at].commit);
			assert_int_equal(n, db->log[at].n);
			assert_true(hash == db->log[at].hash);
			assert_int_equal(it.txn.reprocessing, db->log[at].commit <= redo);
			assert_non_null(it.state);
			free(it.state);
			at++;
		}
	}
}

static void rows_free(rowset *rows)
{
	for (int t = 0; t < NT; t++)
		rs_free(&rows[t]);
	free(rows);
}

static void test_memsrc_contract(void **state)
{
	harness *h = h_new("sync", 60, 20, 7);   /* no pipeline: the type is moot */
	const char *inc[] = {"*.*"};
	ps_source_config cfg = {.job_name = "c", .url = "memsrc:///db", .include = inc,
	                        .ninclude = 1, .want_snapshot = true};
	ps_prepare_result res = {0};
	rowset *got = calloc(NT, sizeof(rowset)), *want = calloc(NT, sizeof(rowset));
	char pos[PS_POSITION_MAX];
	ps_copier *c = NULL;
	ps_src src;
	ps_error err;

	(void)state;
	assert_true(got && want);
	h->db.on_ack = NULL;   /* no target here */
	ps_error_clear(&err);
	/* invariant 4: positions are zero-padded numbers; "" is none */
	assert_true(mem_position_compare("0000000010", "0000000020") < 0);
	assert_true(mem_position_compare("0000000020", "0000000010") > 0);
	assert_int_equal(mem_position_compare("0000000020", "0000000020"), 0);
	assert_true(mem_position_compare("", "0000000010") < 0);

	assert_int_equal(ps_src_open(&src, &memsrc_ops, &cfg, &err), PS_OK);
	assert_int_equal(ps_src_prepare(&src, PS_PREPARE_MUST_EXIST, &res, &err), PS_ECHECKPOINT);
	assert_int_equal(ps_src_prepare(&src, PS_PREPARE_CREATE_OR_USE, &res, &err), PS_OK);
	assert_true(res.created);
	assert_string_equal(res.start_position, "0000000200");
	assert_true(res.snapshot[0] != '\0');
	assert_int_equal(ps_src_current_position(&src, pos, sizeof(pos), &err), PS_OK);
	assert_string_equal(pos, "0000000200");

	/* invariant 5: the snapshot at its point, then the stream from that
	 * point, is the database at the log's end: no gap, no overlap; the
	 * application commits meanwhile (copy units and the caught-up reader) */
	copy_all(&src, res.snapshot, got);
	assert_true(db_visible(&h->db) > 20);
	assert_int_equal(ps_src_start(&src, res.start_position, "0000000250", res.state, &err), PS_OK);
	/* invariant 6: start ends the snapshot */
	assert_int_equal(ps_src_copy_open(&src, res.snapshot, &c, &err), PS_ESERVER);
	take_violations(V_CONTRACT, 1);
	/* invariants 1 and 2, checked in stream_all: whole, in order, from the
	 * first after the start position, reprocessing up to 250 */
	assert_int_equal(stream_all(&src, &h->db, 250, got), 20);
	while (db_visible(&h->db) < h->db.nlog)
		stream_all(&src, &h->db, 250, got);
	db_state_at(&h->db, h->db.log[h->db.nlog - 1].commit, want);
	for (int t = 0; t < NT; t++)
		assert_rows_equal(t, &got[t], &want[t]);

	/* invariant 3: an acknowledged position is durable; the log before it
	 * is released, so a start before it is refused */
	assert_int_equal(ps_src_ack(&src, "0000000300", &err), PS_OK);
	ps_src_close(&src);
	ps_prepare_result_clear(&res);
	assert_int_equal(ps_src_open(&src, &memsrc_ops, &cfg, &err), PS_OK);
	assert_int_equal(ps_src_prepare(&src, PS_PREPARE_MUST_EXIST, &res, &err), PS_OK);
	assert_false(res.created);
	assert_string_equal(res.start_position, "0000000300");
	assert_int_equal(ps_src_start(&src, "0000000250", NULL, NULL, &err), PS_ECHECKPOINT);
	take_violations(V_ACK, 1);
	/* the engine state must be the one checkpointed with the position */
	assert_int_equal(ps_src_start(&src, "0000000300", NULL, "{\"commit\": \"0000000290\"}", &err),
	                 PS_ECHECKPOINT);
	take_violations(V_BATCH, 1);
	assert_int_equal(ps_src_start(&src, "0000000300", NULL, "{\"commit\": \"0000000300\"}", &err),
	                 PS_OK);
	rows_free(got);
	got = calloc(NT, sizeof(rowset));
	assert_non_null(got);
	db_state_at(&h->db, 300, got);
	assert_int_equal(stream_all(&src, &h->db, 0, got), 30);   /* xid 5030 commits at 310 */
	for (int t = 0; t < NT; t++)
		assert_rows_equal(t, &got[t], &want[t]);
	assert_int_equal(ps_src_drop(&src, pos, sizeof(pos), &err), PS_OK);
	ps_src_close(&src);
	ps_prepare_result_clear(&res);
	rows_free(got);
	rows_free(want);
	h_assert_clean(h);
	h_free(h);
}

static char *checkpoint_at(const char *position)
{
	ps_checkpoint ck;
	char *text;

	memset(&ck, 0, sizeof(ck));
	snprintf(ck.job, sizeof(ck.job), "c");
	snprintf(ck.position, sizeof(ck.position), "%s", position);
	ck.cdc_state = PS_CDC_TFSTART;
	text = ps_checkpoint_to_text(&ck);
	assert_non_null(text);
	return text;
}

static ps_change *account(uint8_t op, const char *id, const char *balance)
{
	gchange g = {.op = op, .t = T_ACCOUNTS, .v = {(char *)id, (char *)balance, NULL}};

	return gchange_build(g_db, &g);
}

static void test_memsink_contract(void **state)
{
	harness *h = h_new("cdc", 20, 0, 8);
	ps_sink_config cfg = {.job_name = "c", .url = "memsink:///tgt"};
	ps_txn txn = {.xid = 7, .position = "0000000010"};
	ps_change *ins = account(PS_OP_INSERT, "1", "100"), *del = account(PS_OP_DELETE, "2", NULL);
	char *ck = checkpoint_at("0000000010"), *loaded = NULL;
	ps_snk k;
	ps_error err;

	(void)state;
	ps_error_clear(&err);
	/* what is not flushed is rolled back at close, checkpoint included */
	assert_int_equal(ps_snk_open(&k, &memsink_ops, &cfg, &err), PS_OK);
	assert_int_equal(ps_snk_begin(&k, &txn, &err), PS_OK);
	assert_int_equal(ps_snk_write(&k, &txn, ins, &err), PS_OK);
	assert_int_equal(ps_snk_commit(&k, &txn, &err), PS_OK);
	assert_int_equal(ps_snk_checkpoint_store(&k, ck, &err), PS_OK);
	ps_snk_close(&k);
	h_crash_target(h);
	assert_null(h->tgt.rows[T_ACCOUNTS].byid[1]);
	assert_null(h->tgt.ck);
	assert_int_equal(h->tgt.log.n, 0);

	/* flush commits the data, the checkpoint and the transaction together */
	assert_int_equal(ps_snk_open(&k, &memsink_ops, &cfg, &err), PS_OK);
	assert_int_equal(ps_snk_begin(&k, &txn, &err), PS_OK);
	assert_int_equal(ps_snk_write(&k, &txn, ins, &err), PS_OK);
	assert_int_equal(ps_snk_commit(&k, &txn, &err), PS_OK);
	assert_int_equal(ps_snk_checkpoint_store(&k, ck, &err), PS_OK);
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	assert_non_null(h->tgt.rows[T_ACCOUNTS].byid[1]);
	assert_int_equal(h->tgt.log.n, 1);
	assert_int_equal(h->tgt.ck_pos, 10);
	assert_int_equal(ps_snk_checkpoint_load(&k, &loaded, &err), PS_OK);
	assert_string_equal(loaded, ck);

	/* a duplicate key is an error, a missing row a violation; under
	 * reprocessing both are tolerated */
	txn.xid = 8;
	snprintf(txn.position, sizeof(txn.position), "0000000020");
	assert_int_equal(ps_snk_begin(&k, &txn, &err), PS_OK);
	assert_int_equal(ps_snk_write(&k, &txn, ins, &err), PS_ESERVER);
	take_violations(V_APPLY, 1);
	assert_int_equal(ps_snk_write(&k, &txn, del, &err), PS_OK);
	take_violations(V_APPLY, 1);
	txn.reprocessing = true;
	assert_int_equal(ps_snk_write(&k, &txn, ins, &err), PS_OK);
	assert_int_equal(ps_snk_write(&k, &txn, del, &err), PS_OK);
	assert_int_equal(ps_snk_commit(&k, &txn, &err), PS_OK);
	/* a commit of data past the checkpoint is what check_batch catches */
	assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
	take_violations(V_BATCH, 1);
	ps_snk_close(&k);
	h_assert_clean(h);

	/* asynchronous mode (a WAL writer that never catches up by itself): a
	 * flush commits at once, visibly, and is durable only once durable
	 * says so; a crash of the target loses it whole, checkpoint included */
	target_set_async(&h->tgt, 100000, 9);
	free(ck);
	ck = checkpoint_at("0000000030");
	ps_change_free(ins);
	ins = account(PS_OP_INSERT, "3", "300");
	txn.xid = 9;
	txn.reprocessing = false;
	snprintf(txn.position, sizeof(txn.position), "0000000030");
	for (int wait = 0; wait < 2; wait++) {
		uint64_t through = 99;

		assert_int_equal(ps_snk_open(&k, &memsink_ops, &cfg, &err), PS_OK);
		assert_int_equal(ps_snk_begin(&k, &txn, &err), PS_OK);
		assert_int_equal(ps_snk_write(&k, &txn, ins, &err), PS_OK);
		assert_int_equal(ps_snk_commit(&k, &txn, &err), PS_OK);
		assert_int_equal(ps_snk_checkpoint_store(&k, ck, &err), PS_OK);
		assert_int_equal(ps_snk_flush(&k, &err), PS_OK);
		assert_non_null(h->tgt.rows[T_ACCOUNTS].byid[3]);   /* committed: visible */
		assert_int_equal(h->tgt.ck_pos, 30);
		assert_int_equal(ps_snk_durable(&k, PS_DURABLE_KNOWN, &through, &err), PS_OK);
		assert_int_equal(through, 0);
		if (wait) {
			assert_int_equal(ps_snk_durable(&k, PS_DURABLE_WAIT, &through, &err), PS_OK);
			assert_int_equal(through, 1);
		}
		ps_snk_close(&k);
		h_crash_target(h);
		if (wait) {
			assert_non_null(h->tgt.rows[T_ACCOUNTS].byid[3]);
			assert_int_equal(h->tgt.ck_pos, 30);
		} else {
			assert_null(h->tgt.rows[T_ACCOUNTS].byid[3]);   /* lost with its checkpoint */
			assert_int_equal(h->tgt.ck_pos, 10);   /* as committed before */
		}
	}
	h_assert_clean(h);

	free(loaded);
	free(ck);
	ps_change_free(ins);
	ps_change_free(del);
	h_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_memsrc_contract, teardown),
		cmocka_unit_test_teardown(test_memsink_contract, teardown),
		cmocka_unit_test_teardown(test_whole_in_order, teardown),
		cmocka_unit_test_teardown(test_batch_atomic, teardown),
		cmocka_unit_test_teardown(test_ack_durable, teardown),
		cmocka_unit_test_teardown(test_stop_and_resume, teardown),
		cmocka_unit_test_teardown(test_fault_source_read, teardown),
		cmocka_unit_test_teardown(test_fault_before_commit, teardown),
		cmocka_unit_test_teardown(test_fault_after_commit, teardown),
		cmocka_unit_test_teardown(test_fault_unit_commit, teardown),
		cmocka_unit_test_teardown(test_fault_unit_commit_batched, teardown),
		cmocka_unit_test_teardown(test_fault_while_resuming, teardown),
		cmocka_unit_test_teardown(test_power_cut, teardown),
		cmocka_unit_test_teardown(test_async_ack_durable, teardown),
		cmocka_unit_test_teardown(test_async_target_crash, teardown),
		cmocka_unit_test_teardown(test_async_snapshot_job, teardown),
	};

	/* PIPETEST_LOG=info shows what the pipeline says */
	ps_log_level level = PS_LOG_ERROR;
	if (getenv("PIPETEST_LOG"))
		ps_log_parse_level(getenv("PIPETEST_LOG"), &level);
	ps_log_configure(level, PS_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
