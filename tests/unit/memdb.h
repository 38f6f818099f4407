/*
 * memdb.h — the in-memory database behind the in-memory source (memsrc.h)
 * and target (memsink.h) of tests/unit/test_pipeline.c: tables, rows,
 * positions, a generated history, and a page shared with forked children.
 * Included by tests/unit/test_pipeline.c only: static definitions, since
 * the Makefile builds each tests/unit/test_*.c as one binary.
 *
 * NOTES ON THE DESIGN
 *
 * The source database's whole history is generated up front from a seed: a
 * log of transactions on three tables (two with an integer primary key, one
 * keyless and insert-only, whose row count would grow on any duplicate).
 * Transaction i commits at position (i+1)*10, its BEGIN carries (i+1)*10-1,
 * which orders against every commit position and snapshot point exactly as
 * its commit does (change.h). Positions are zero-padded 10-digit numbers.
 * "The application" commits the next transactions of that history as the
 * test goes on (db_commit_more). The database's state at a position is the
 * log replayed up to it (db_state_at), so a snapshot is exact by
 * construction, and so is the state a target must end with.
 *
 * What outlives a run and a forked child's SIGKILL, as a server's state
 * outlives a crash of penstock, lives in a MAP_SHARED page (shared): the
 * transactions committed so far, the source's slot, and the counters of
 * violations that the doubles notice on pipeline threads (violation()),
 * where cmocka cannot assert; the test's own thread asserts on them.
 */
#ifndef PS_TESTS_MEMDB_H
#define PS_TESTS_MEMDB_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "penstock/change.h"
#include "penstock/error.h"

/* An allocation or an internal invariant of the doubles failed: they may run
 * on pipeline threads or in a forked child, where cmocka cannot help. */
#define MUST(cond)                                                              \
	do {                                                                        \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: MUST(%s) failed\n", __FILE__, __LINE__, #cond); \
			abort();                                                            \
		}                                                                       \
	} while (0)

#define NT 3                     /* tables */
#define NCOL 3                   /* columns of every table */
#define MAX_ID 600               /* keys of the keyed tables are 1..MAX_ID */
#define HUGE_CHANGES 1500        /* the transaction bigger than the queue */
#define BIG_VALUE (100u << 10)   /* the value bigger than the queue */

/* ==== tables, rows ======================================================== */

enum { T_EVENTS, T_ACCOUNTS, T_ITEMS };

typedef struct tdesc {
	const char *schema, *name;
	bool keyed;                  /* column 0 is the integer primary key */
	const char *cols[NCOL];
	const char *types[NCOL];
	uint8_t classes[NCOL];
} tdesc;

/* In schema and name order, as describe lists them. */
static const tdesc TABLES[NT] = {
	{"audit", "events", false, {"seq", "kind", "body"}, {"bigint", "text", "text"},
	 {PS_TYPE_INTEGER, PS_TYPE_TEXT, PS_TYPE_TEXT}},
	{"public", "accounts", true, {"id", "balance", "note"}, {"integer", "bigint", "text"},
	 {PS_TYPE_INTEGER, PS_TYPE_INTEGER, PS_TYPE_TEXT}},
	{"public", "items", true, {"id", "name", "payload"}, {"integer", "text", "text"},
	 {PS_TYPE_INTEGER, PS_TYPE_TEXT, PS_TYPE_TEXT}},
};

static int table_index(const char *schema, const char *name)
{
	for (int t = 0; t < NT; t++)
		if (strcmp(TABLES[t].schema, schema) == 0 && strcmp(TABLES[t].name, name) == 0)
			return t;
	return -1;
}

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	MUST(!s || d);
	return d;
}

static char *fmt(const char *f, ...) PS_PRINTF(1, 2);
static char *fmt(const char *f, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return xstrdup(buf);
}

/* One row: NCOL values, each malloc'd text or NULL (SQL NULL). */
typedef struct row {
	char *v[NCOL];
} row;

static row *row_new(char *const *v)
{
	row *r = calloc(1, sizeof(*r));

	MUST(r);
	for (int i = 0; i < NCOL; i++)
		r->v[i] = xstrdup(v[i]);
	return r;
}

static void row_free(row *r)
{
	if (!r)
		return;
	for (int i = 0; i < NCOL; i++)
		free(r->v[i]);
	free(r);
}

static bool row_equal(const row *a, const row *b)
{
	for (int i = 0; i < NCOL; i++)
		if (!a->v[i] != !b->v[i] || (a->v[i] && strcmp(a->v[i], b->v[i]) != 0))
			return false;
	return true;
}

/* A table's rows: by key (keyed tables) or as a list (keyless). */
typedef struct rowset {
	row *byid[MAX_ID + 1];
	row **list;
	size_t n, cap;
} rowset;

static void rs_append(rowset *rs, row *r)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 64;
		rs->list = realloc(rs->list, rs->cap * sizeof(*rs->list));
		MUST(rs->list);
	}
	rs->list[rs->n++] = r;
}

static void rs_clear(rowset *rs)
{
	for (int id = 0; id <= MAX_ID; id++) {
		row_free(rs->byid[id]);
		rs->byid[id] = NULL;
	}
	for (size_t i = 0; i < rs->n; i++)
		row_free(rs->list[i]);
	rs->n = 0;
}

static void rs_free(rowset *rs)
{
	rs_clear(rs);
	free(rs->list);
	rs->list = NULL;
	rs->cap = 0;
}

static size_t rs_count(const rowset *rs)
{
	size_t n = rs->n;

	for (int id = 0; id <= MAX_ID; id++)
		n += rs->byid[id] != NULL;
	return n;
}

/* A key as the tables hold it: 1..MAX_ID, else -1. */
static long key_of(const char *text)
{
	char *end = NULL;
	long id;

	if (!text)
		return -1;
	errno = 0;
	id = strtol(text, &end, 10);
	return errno || *end || id < 1 || id > MAX_ID ? -1 : id;
}

/* ==== positions =========================================================== */

/* Kinds of violations (below). */
enum { V_TXN, V_BATCH, V_ACK, V_APPLY, V_CONTRACT, V_COUNT };


static void pos_fmt(char *buf, size_t len, uint64_t p)
{
	snprintf(buf, len, "%010llu", (unsigned long long)p);
}

static void violation(int kind, const char *f, ...) PS_PRINTF(2, 3);

/* "" (none) is 0, before every position. The core hands back positions as
 * the source gave them: anything else is a violation. */
static uint64_t pos_parse(const char *s)
{
	uint64_t p = 0;

	for (const char *c = s ? s : ""; *c; c++) {
		if (*c < '0' || *c > '9' || c - s >= 10) {
			violation(V_CONTRACT, "position '%.40s' is not one the source gave", s);
			return 0;
		}
		p = p * 10 + (uint64_t)(*c - '0');
	}
	return p;
}

static int mem_position_compare(const char *a, const char *b)
{
	uint64_t x = pos_parse(a), y = pos_parse(b);

	return (x > y) - (x < y);
}

/* ==== violations: a shared page, read by the main thread after a run ====== */

static const char *const V_NAMES[V_COUNT] = {
	"transaction order", "batch/checkpoint", "acknowledgement", "apply", "plugin contract"
};

/*
 * What outlives a run, and a forked child's SIGKILL: the source server's
 * state (what the application committed so far, the slot) and the
 * violations noticed on any thread.
 */
typedef struct shared {
	atomic_size_t visible;           /* transactions committed in the source so far */
	atomic_int slot;                 /* the job's slot exists */
	atomic_ullong slot_point;        /* where it was last created */
	atomic_ullong confirmed;         /* acknowledged: the log up to here is gone */
	atomic_int nsnapshots;           /* exported so far (names) */
	atomic_ullong max_point;         /* newest snapshot point exported */
	atomic_uint nacks;
	atomic_ullong max_ack;
	atomic_int nviol[V_COUNT];
	char viol[V_COUNT][400];         /* the first of each kind */
} shared;

static shared *g_sh;

static void violation(int kind, const char *f, ...)
{
	va_list ap;

	if (atomic_fetch_add(&g_sh->nviol[kind], 1) != 0)
		return;
	va_start(ap, f);
	vsnprintf(g_sh->viol[kind], sizeof(g_sh->viol[kind]), f, ap);
	va_end(ap);
}

static void atomic_max(atomic_ullong *a, uint64_t v)
{
	unsigned long long cur = atomic_load(a);

	while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
		;
}

/* ==== the source's history ================================================ */

/* One generated change: insert/update carry the whole new row, delete only
 * the key (v[0]), truncate nothing. */
typedef struct gchange {
	uint8_t op;
	int t;
	char *v[NCOL];
} gchange;

typedef struct gtxn {
	uint64_t xid, commit;
	size_t n;
	gchange *c;
	uint64_t hash;               /* of its changes as ps_change, in order */
	size_t bytes;                /* their mem_size, as the queue counts them */
} gtxn;

typedef struct memdb {
	gtxn *log;
	size_t nlog;
	ps_table *tables[NT];        /* immutable, shared by every change */
	size_t huge, big, trunc;     /* where the special transactions are */
	/* The harness's hooks: at every acknowledgement, at every copy unit,
	 * at every BEGIN the source delivers (i: the transaction's index), at
	 * a drop of the slot. */
	void (*on_ack)(void *ctx, uint64_t pos);
	void (*on_unit)(void *ctx);
	void (*on_begin)(void *ctx, size_t i);
	void (*on_drop)(void *ctx);      /* when the slot is dropped */
	void *hook_ctx;
} memdb;

static size_t db_visible(const memdb *db)
{
	return atomic_load(&g_sh->visible);
}

/* The application commits the next k transactions of the history. */
static void db_commit_more(const memdb *db, size_t k)
{
	size_t v = atomic_load(&g_sh->visible);

	while (v < db->nlog &&
	       !atomic_compare_exchange_weak(&g_sh->visible, &v, v + k > db->nlog ? db->nlog : v + k))
		;
}

/* The log's end: the last committed transaction's commit, 0 when none. */
static uint64_t db_end(const memdb *db)
{
	size_t v = db_visible(db);

	return v ? db->log[v - 1].commit : 0;
}

static void rs_apply(rowset *rs, bool keyed, const gchange *g)
{
	long id = keyed && g->op != PS_OP_TRUNCATE ? key_of(g->v[0]) : 0;

	MUST(id >= 0);
	switch (g->op) {
	case PS_OP_INSERT:
		if (!keyed) {
			rs_append(rs, row_new(g->v));
			break;
		}
		MUST(!rs->byid[id]);
		rs->byid[id] = row_new(g->v);
		break;
	case PS_OP_UPDATE:
		MUST(keyed && rs->byid[id]);
		row_free(rs->byid[id]);
		rs->byid[id] = row_new(g->v);
		break;
	case PS_OP_DELETE:
		MUST(keyed && rs->byid[id]);
		row_free(rs->byid[id]);
		rs->byid[id] = NULL;
		break;
	default:
		MUST(g->op == PS_OP_TRUNCATE);
		rs_clear(rs);
	}
}

/* The database as of point: its history replayed up to it. */
static void db_state_at(const memdb *db, uint64_t point, rowset *out)
{
	for (size_t i = 0; i < db->nlog && db->log[i].commit <= point; i++)
		for (size_t j = 0; j < db->log[i].n; j++)
			rs_apply(&out[db->log[i].c[j].t], TABLES[db->log[i].c[j].t].keyed,
			         &db->log[i].c[j]);
}

static ps_change *gchange_build(const memdb *db, const gchange *g)
{
	ps_table *t = db->tables[g->t];
	ps_value v[NCOL];
	ps_change *c;

	for (int i = 0; i < NCOL; i++) {
		v[i].kind = g->v[i] ? PS_VALUE_TEXT : PS_VALUE_NULL;
		v[i].len = g->v[i] ? (uint32_t)strlen(g->v[i]) : 0;
		v[i].data = g->v[i];
	}
	if (g->op == PS_OP_DELETE)
		c = ps_change_new(g->op, t, NULL, v, true, 0);
	else if (g->op == PS_OP_TRUNCATE)
		c = ps_change_new(g->op, t, NULL, NULL, false, 0);
	else
		c = ps_change_new(g->op, t, v, NULL, false, 0);
	MUST(c);
	return c;
}

#define FNV0 0xcbf29ce484222325ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* What a change says, as a number: op, table, every value of both rows. */
static uint64_t change_hash(const ps_change *c)
{
	uint64_t h = fnv(FNV0, &c->op, 1);

	if (c->table) {
		h = fnv(h, c->table->schema, strlen(c->table->schema) + 1);
		h = fnv(h, c->table->name, strlen(c->table->name) + 1);
	}
	for (int k = 0; k < 2; k++) {
		const ps_value *v = k ? c->old_values : c->new_values;

		h = fnv(h, v ? "v" : "-", 1);
		for (int i = 0; v && i < c->table->ncolumns; i++) {
			h = fnv(h, &v[i].kind, 1);
			if (v[i].kind == PS_VALUE_TEXT)
				h = fnv(h, v[i].data, v[i].len);
		}
	}
	return h;
}

static uint64_t txn_fold(uint64_t h, uint64_t change)
{
	return fnv(h, &change, sizeof(change));
}

static uint32_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

/* A valid next change of table t (-1: any) against the model, applied to
 * it; big: an items row whose payload is bigger than the queue. */
static void gen_change(rowset *model, uint64_t *rng, long *evseq, int t, bool big, gchange *g)
{
	static const char *const kinds[] = {"login", "logout", "purchase", "refund"};
	unsigned r = rng_next(rng) % 10;
	long id;

	memset(g, 0, sizeof(*g));
	g->t = t >= 0 ? t : r < 3 ? T_EVENTS : r < 7 ? T_ACCOUNTS : T_ITEMS;
	if (g->t == T_EVENTS) {
		g->op = PS_OP_INSERT;
		g->v[0] = fmt("%ld", ++*evseq);
		g->v[1] = xstrdup(kinds[rng_next(rng) % 4]);
		g->v[2] = rng_next(rng) % 5 ? fmt("event %ld: %u", *evseq, rng_next(rng)) : NULL;
		rs_apply(&model[g->t], false, g);
		return;
	}
	id = 1 + (long)(rng_next(rng) % MAX_ID);
	g->v[0] = fmt("%ld", id);
	if (model[g->t].byid[id] && !big && rng_next(rng) % 10 < 3) {
		g->op = PS_OP_DELETE;
	} else {
		g->op = model[g->t].byid[id] ? PS_OP_UPDATE : PS_OP_INSERT;
		if (g->t == T_ACCOUNTS) {
			g->v[1] = fmt("%ld", (long)(rng_next(rng) % 200000) - 100000);
			g->v[2] = rng_next(rng) % 3 ? fmt("note %u", rng_next(rng)) : NULL;
		} else {
			g->v[1] = fmt("item-%u", rng_next(rng) % 100000);
			g->v[2] = rng_next(rng) % 4 ? fmt("payload %u", rng_next(rng)) : NULL;
		}
	}
	if (big) {
		free(g->v[2]);
		g->v[2] = malloc(BIG_VALUE + 1);
		MUST(g->v[2]);
		memset(g->v[2], 'x', BIG_VALUE);
		g->v[2][BIG_VALUE] = '\0';
	}
	rs_apply(&model[g->t], true, g);
}

/*
 * The history: ntxn transactions of 0 to 8 changes (about one in eight
 * empty) and, in the part after `first` (what a job will stream), one of
 * HUGE_CHANGES changes, one whose one change holds a BIG_VALUE value and one
 * that truncates items and inserts a few rows again.
 */
static void db_generate(memdb *db, size_t ntxn, size_t first, uint64_t seed)
{
	rowset *model = calloc(NT, sizeof(rowset));
	uint64_t rng = seed;
	long evseq = 0;
	size_t span = ntxn - first;

	MUST(model && ntxn > first + 8);
	db->log = calloc(ntxn, sizeof(gtxn));
	MUST(db->log);
	db->nlog = ntxn;
	db->huge = first + span / 4;
	db->big = first + span / 2;
	db->trunc = first + 3 * span / 4;
	for (size_t i = 0; i < ntxn; i++) {
		gtxn *t = &db->log[i];
		uint64_t h = FNV0;

		t->xid = 5000 + i;
		t->commit = (i + 1) * 10;
		t->n = i == db->huge ? HUGE_CHANGES : i == db->big ? 1 : i == db->trunc ? 4
		       : rng_next(&rng) % 8 == 0 ? 0 : 1 + rng_next(&rng) % 8;
		t->c = calloc(t->n ? t->n : 1, sizeof(gchange));
		MUST(t->c);
		for (size_t j = 0; j < t->n; j++) {
			if (i == db->trunc && j == 0) {
				t->c[0] = (gchange){.op = PS_OP_TRUNCATE, .t = T_ITEMS};
				rs_apply(&model[T_ITEMS], true, &t->c[0]);
			} else {
				gen_change(model, &rng, &evseq, i == db->trunc || i == db->big ? T_ITEMS : -1,
				           i == db->big, &t->c[j]);
			}
		}
		for (size_t j = 0; j < t->n; j++) {
			ps_change *c = gchange_build(db, &t->c[j]);

			h = txn_fold(h, change_hash(c));
			t->bytes += c->mem_size;
			ps_change_free(c);
		}
		t->hash = h;
	}
	for (int k = 0; k < NT; k++)
		rs_free(&model[k]);
	free(model);
}

/* Items (BEGIN, CHANGE, COMMIT) the source delivers before transaction i,
 * counted from the first: for source.read hit counts. */
static long db_items_before(const memdb *db, size_t i)
{
	long n = 0;

	for (size_t k = 0; k < i; k++)
		n += (long)db->log[k].n + 2;
	return n;
}

static void db_init(memdb *db, size_t ntxn, size_t first, uint64_t seed)
{
	memset(db, 0, sizeof(*db));
	for (int t = 0; t < NT; t++) {
		ps_table *pt = ps_table_new((uint32_t)(16384 + t), NCOL);

		MUST(pt && ps_table_set_names(pt, TABLES[t].schema, TABLES[t].name) == PS_OK);
		pt->engine = "memory";
		for (int c = 0; c < NCOL; c++)
			MUST(ps_table_set_column(pt, c, TABLES[t].cols[c], 0, -1, TABLES[t].classes[c],
			                         TABLES[t].keyed && c == 0) == PS_OK);
		db->tables[t] = pt;
	}
	db_generate(db, ntxn, first, seed);
}

static void db_free(memdb *db)
{
	for (size_t i = 0; i < db->nlog; i++) {
		for (size_t j = 0; j < db->log[i].n; j++)
			for (int c = 0; c < NCOL; c++)
				free(db->log[i].c[j].v[c]);
		free(db->log[i].c);
	}
	free(db->log);
	for (int t = 0; t < NT; t++)
		ps_table_unref(db->tables[t]);
	memset(db, 0, sizeof(*db));
}

#endif
