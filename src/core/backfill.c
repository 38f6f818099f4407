/*
 * backfill.c — tables added to and removed from a running job (see
 * backfill.h), with the watermarked backfill of an added table in the
 * style of Netflix DBLog and Debezium's incremental snapshots.
 *
 * NOTES ON THE DESIGN
 *
 * 1. A table change. The reader sees new patterns in the live controls,
 *    asks the source to retable with a marker "tables <job> <nonce> <gen>"
 *    and queues what changed (a bf_pending) for the applier. The applier
 *    finds the marker in the stream and applies the pending change there:
 *    the patterns in force change (a change of a table they no longer
 *    select is skipped from then on), the checkpoint's identity and spec
 *    follow, added tables are prepared in the target (as a load would,
 *    inside the open target transaction, so with the checkpoint that
 *    records them) and queued for their backfill.
 * 2. A backfill reads its table in chunks of at most max_rows rows in
 *    primary-key order, each between two watermarks, markers "low" and
 *    "high" with the chunk's sequence number:
 *
 *      applier: chunk wanted ──────────────────────► (sees low) window open
 *      reader:  mark low ─► chunk_read (rows kept) ─► mark high
 *      applier: (sees high) window closed: rows whose key was changed in the
 *               window are dropped, the others applied as upserts, the
 *               table's progress (the chunk's last key) advances
 *
 *    Source invariant 9 makes a kept row right as of the high watermark:
 *    no change touched its key between the watermarks, and every change
 *    before the low one is in it. Changes of the table are applied as they
 *    come, idempotently (reprocessing: upsert, delete if there), from the
 *    marker that added it until its last chunk; changes after a chunk's
 *    high watermark come after its rows. A truncate in a window drops the
 *    whole chunk. A chunk shorter than max_rows is the last one.
 * 3. One backfill at a time, in the order the tables were added; one chunk
 *    in flight. The chunk's state moves under `mu`: wanted (applier) ─►
 *    reading (reader: low written) ─► ready (reader: rows handed over, high
 *    about to be written) ─► consumed at the high watermark (applier). The
 *    rows are built by the reader and only touched by the applier once
 *    ready, which is before the high marker can reach it.
 * 4. Markers carry a nonce of this run: markers of an earlier run (the log
 *    is read again after a restart), of another job (another name) or of a
 *    chunk no longer wanted are ignored. No marker reaches the sink.
 * 5. Persistence: the tables in force and each unfinished backfill (table,
 *    last key applied, rows, chunks) live in the checkpoint's spec object
 *    ("backfill": [...]), rendered by spec_render() whenever they change;
 *    a restart compares that spec's tables with the job's and resumes the
 *    backfills from their last key. (The checkpoint has no field of its own
 *    for this yet; the spec is the checkpoint's record of what is in force.)
 * 6. Table defs live until ps_backfill_free: the reader may be reading a
 *    chunk of a table the applier just cancelled, or of one whose def a
 *    table change replaced (old_defs).
 * 7. The selection is live (issue 15). Besides the patterns, the applier
 *    knows the tables in force by name (in_force, kept in the checkpoint's
 *    spec as "tables_in_force"): a change of a table not in force is not
 *    applied, whatever the patterns say — a table renamed or moved within
 *    the publication keeps its relation but not its name. The reader asks
 *    the source every BF_POLL_NS (sooner when the stream shows a table
 *    under a new name) whether the patterns select other tables now
 *    (source.h selection_check); when they do, it retables with the same
 *    patterns ("automatic"), and the marker makes the difference take
 *    effect like a pattern change: a table that came to match is created
 *    and backfilled (whatever the job type: its rows written before it
 *    joined the publication are read from the table itself, under the
 *    watermarks), one that left is no longer applied, its target data
 *    kept. A restart compares the checkpoint's tables in force with the
 *    source's selection the same way, so a table created, renamed or
 *    moved while the job was stopped or crashed is found as well.
 * 8. Table changes (source.h invariant 10): a PS_READ_TABLE item of a table
 *    in force goes to the sink (table_change) in stream order, inside the
 *    target transaction of the rows that follow it. When the sink says the
 *    rows already in the target may hold values it cannot derive, the
 *    table is backfilled again from its first key (a backfill under way
 *    starts over); otherwise a backfill under way continues with the new
 *    def, its chunk in flight read again.
 */
#include <fnmatch.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/backfill.h"
#include "core/spec_json.h"
#include "util/log.h"
#include "util/str.h"

#define BF_POLL_NS (2000ull * 1000000ull) /* selection checks (note 7) */
#define BF_CHUNK_ROWS 1000            /* rows per chunk at most */
#define BF_CHUNK_BYTES (4u << 20)     /* ... and about this many bytes */

enum { CH_NONE = 0, CH_WANTED, CH_READING, CH_READY };

typedef struct bf_table {
	ps_table_def *def;               /* owned, until ps_backfill_free (note 6) */
	char *qualified;                 /* "schema.name" */
	const int *keys;                 /* primary key positions in def (borrowed) */
	int nkeys;
	ps_key_bound after;              /* last key applied; nvalues 0: none yet */
	long long rows, chunks;
	bool done, cancelled;
} bf_table;

typedef struct bf_pending {
	unsigned gen;
	bool automatic;                  /* the patterns are unchanged: tables came into or
	                                    left the selection by themselves (note 7) */
	char **inc, **exc;
	size_t ninc, nexc;
	ps_retable_result res;
	struct bf_pending *next;
} bf_pending;

/* A set of key texts (open addressing), for a chunk's window. */
typedef struct key_set {
	char **slots;
	size_t cap, n;
} key_set;

struct ps_backfill {
	ps_backfill_config cfg;
	bool copy_rows;                  /* the job keeps a target copy: backfill added tables */
	char nonce[40];

	/* applier-only */
	char **inc, **exc;               /* patterns in force */
	size_t ninc, nexc;
	bool filtering;                  /* tables changed in this run: skip the unselected */
	bf_table *tables;
	size_t ntables, cap_tables;
	ps_table *route_table;           /* last route lookup (a reference is held) */
	int route_result;
	bf_table *route_bt;
	int *route_keys;                 /* the key's positions in route_table, or NULL */
	unsigned long long window_seq;   /* 0: no window open */
	bool window_truncated;           /* a TRUNCATE in the window: no chunk row stands */
	bool window_untrusted;           /* keys could not be told: read the chunk again */
	bool chunk_stale;                /* the chunk in flight was read with columns its
	                                    table no longer has (note 8): read it again */
	key_set window;
	key_set window_partial;          /* keys updated with unchanged (unsent) columns */
	ps_txn txn_redo;
	bool tracking;                   /* in_force is known (note 7) */
	key_set in_force;                /* "schema.name" of the tables whose changes apply */
	ps_table_def **old_defs;         /* defs replaced by a table change (note 6) */
	size_t nold_defs;

	/* reader-only */
	uint64_t poll_ns;                /* when the selection was last checked (note 7) */
	unsigned auto_gen;
	atomic_int poll_now;             /* the stream showed a table under a new name */
	unsigned reader_gen;
	char **reader_inc, **reader_exc;
	size_t reader_ninc, reader_nexc;
	ps_change **rows;                /* the chunk being read */
	size_t nrows, cap_rows, row_bytes;

	/* shared, under mu (note 3) */
	pthread_mutex_t mu;
	bf_pending *pending;
	int chunk_state;
	unsigned long long chunk_seq;
	bf_table *chunk_table;
	int chunk_max;
	ps_key_bound chunk_after;        /* where the chunk starts (copy) */
	ps_table_def *chunk_def;         /* ready: the table's def as the chunk was read, when
	                                    it was no longer the one asked with (note 8) */
	ps_change **chunk_rows;          /* ready: handed over */
	size_t chunk_nrows;
	size_t chunk_bytes;
};

static int follow_change(ps_backfill *bf, const ps_txn *txn, ps_table_change *tc,
                         bool from_chunk, ps_error *err);

/* ==== small helpers ======================================================= */

static bool matches_any(char *const *pats, size_t n, const char *qualified)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], qualified, 0) == 0)
			return true;
	return false;
}

static bool selects(char *const *inc, size_t ninc, char *const *exc, size_t nexc,
                    const char *schema, const char *name)
{
	char q[300];

	snprintf(q, sizeof(q), "%s.%s", schema, name);
	return matches_any(inc, ninc, q) && !matches_any(exc, nexc, q);
}

static int key_bound_copy(ps_key_bound *dst, const ps_key_bound *src)
{
	ps_key_bound_clear(dst);
	dst->values = calloc((size_t)src->nvalues + 1, sizeof(char *));
	if (!dst->values)
		return PS_ENOMEM;
	for (int i = 0; i < src->nvalues; i++) {
		dst->values[i] = strdup(src->values[i]);
		if (!dst->values[i])
			return PS_ENOMEM;
		dst->nvalues = i + 1;
	}
	return PS_OK;
}

static void event(ps_backfill *bf, const char *fmt, ...) PS_PRINTF(2, 3);
static void event(ps_backfill *bf, const char *fmt, ...)
{
	char text[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ps_log_info("%s", text);
	if (bf->cfg.on_event)
		bf->cfg.on_event(text, bf->cfg.payload);
}

/* ==== key sets (a chunk's window) ========================================== */

static uint64_t fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void key_set_clear(key_set *ks)
{
	for (size_t i = 0; i < ks->cap; i++)
		free(ks->slots[i]);
	free(ks->slots);
	memset(ks, 0, sizeof(*ks));
}

static bool key_set_has(const key_set *ks, const char *key)
{
	if (!ks->cap)
		return false;
	for (size_t i = fnv(key) & (ks->cap - 1); ks->slots[i]; i = (i + 1) & (ks->cap - 1))
		if (strcmp(ks->slots[i], key) == 0)
			return true;
	return false;
}

/* Takes ownership of key. */
static int key_set_add(key_set *ks, char *key)
{
	if (key_set_has(ks, key)) {
		free(key);
		return PS_OK;
	}
	if ((ks->n + 1) * 2 > ks->cap) {
		key_set bigger = {calloc(ks->cap ? ks->cap * 2 : 64, sizeof(char *)),
		                  ks->cap ? ks->cap * 2 : 64, 0};
		if (!bigger.slots) {
			free(key);
			return PS_ENOMEM;
		}
		for (size_t i = 0; i < ks->cap; i++) {
			if (!ks->slots[i])
				continue;
			size_t j = fnv(ks->slots[i]) & (bigger.cap - 1);
			while (bigger.slots[j])
				j = (j + 1) & (bigger.cap - 1);
			bigger.slots[j] = ks->slots[i];
			bigger.n++;
		}
		free(ks->slots);
		*ks = bigger;
	}
	size_t i = fnv(key) & (ks->cap - 1);
	while (ks->slots[i])
		i = (i + 1) & (ks->cap - 1);
	ks->slots[i] = key;
	ks->n++;
	return PS_OK;
}

/* "<len>:<text>" per key column: unambiguous whatever the text holds. NULL
 * when a key value is missing (not sent) or on OOM. */
static char *key_text(const ps_value *values, const int *pos, int nkeys)
{
	size_t len = 1;
	char *out, *w;

	for (int k = 0; k < nkeys; k++) {
		if (values[pos[k]].kind != PS_VALUE_TEXT)
			return NULL;
		len += values[pos[k]].len + 12;
	}
	out = malloc(len);
	if (!out)
		return NULL;
	w = out;
	for (int k = 0; k < nkeys; k++) {
		const ps_value *v = &values[pos[k]];
		w += snprintf(w, len - (size_t)(w - out), "%u:", v->len);
		memcpy(w, v->data, v->len);
		w += v->len;
	}
	*w = '\0';
	return out;
}

/* ==== the tables in force by name (note 7) ================================= */

/* Whether changes of schema.name apply: in force when tracked, else when
 * the patterns select it (or always, before the tables ever changed). */
static bool applies(ps_backfill *bf, const char *schema, const char *name)
{
	char q[300];

	if (!bf->tracking)
		return !bf->filtering || selects(bf->inc, bf->ninc, bf->exc, bf->nexc, schema, name);
	snprintf(q, sizeof(q), "%s.%s", schema, name);
	return key_set_has(&bf->in_force, q);
}

static int force_add(ps_backfill *bf, const char *qualified)
{
	char *q = strdup(qualified);

	return q ? key_set_add(&bf->in_force, q) : PS_ENOMEM;
}

/* Removes one name: rebuilt without it (removals are rare). */
static int force_remove(ps_backfill *bf, const char *qualified)
{
	key_set rest = {NULL, 0, 0};
	int rc = PS_OK;

	for (size_t i = 0; i < bf->in_force.cap && rc == PS_OK; i++) {
		char *k = bf->in_force.slots[i];
		if (k && strcmp(k, qualified) != 0) {
			char *dup = strdup(k);
			rc = dup ? key_set_add(&rest, dup) : PS_ENOMEM;
		}
	}
	if (rc != PS_OK) {
		key_set_clear(&rest);
		return rc;
	}
	key_set_clear(&bf->in_force);
	bf->in_force = rest;
	return PS_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in force, sorted, as a JSON array. */
static json_t *force_json(const ps_backfill *bf)
{
	char **names = calloc(bf->in_force.n + 1, sizeof(char *));
	json_t *a = json_array();
	size_t n = 0;

	if (!names || !a) {
		free(names);
		json_decref(a);
		return NULL;
	}
	for (size_t i = 0; i < bf->in_force.cap; i++)
		if (bf->in_force.slots[i])
			names[n++] = bf->in_force.slots[i];
	qsort(names, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(names[i]));
	free(names);
	return a;
}

/* ==== the tables in force, identity, checkpoint spec (notes 1, 5) ========= */

/* The spec with the patterns in force: a shallow copy, borrowing them. */
static ps_spec spec_in_force(const ps_backfill *bf)
{
	ps_spec s = *bf->cfg.spec;

	s.include = bf->inc;
	s.ninclude = bf->ninc;
	s.exclude = bf->exc;
	s.nexclude = bf->nexc;
	return s;
}

static json_t *bound_json(const ps_key_bound *b)
{
	json_t *a;

	if (b->nvalues == 0)
		return json_null();
	a = json_array();
	for (int i = 0; i < b->nvalues; i++)
		json_array_append_new(a, json_string(b->values[i]));
	return a;
}

/* ck->spec_json and the identities for the tables in force and the
 * unfinished backfills. */
static int spec_render(ps_backfill *bf, ps_error *err)
{
	ps_spec view = spec_in_force(bf);
	json_t *root = NULL, *list;
	char *text = NULL, *base;

	ps_identity_from_spec(bf->cfg.identity, &view);
	bf->cfg.ck->identity = *bf->cfg.identity;
	base = ps_spec_to_json(&view);
	root = base ? json_loads(base, 0, NULL) : NULL;
	free(base);
	if (!root)
		return ps_error_set(err, PS_ENOMEM, "out of memory rendering the checkpoint's spec");
	list = json_array();
	for (size_t i = 0; i < bf->ntables; i++) {
		const bf_table *t = &bf->tables[i];
		if (t->done || t->cancelled)
			continue;
		json_array_append_new(list, json_pack("{s:s, s:o, s:I, s:I}", "table", t->qualified,
		                                      "after", bound_json(&t->after), "rows",
		                                      (json_int_t)t->rows, "chunks", (json_int_t)t->chunks));
	}
	if (json_array_size(list))
		json_object_set_new(root, "backfill", list);
	else
		json_decref(list);
	if (bf->tracking) {
		json_t *names = force_json(bf);
		if (!names) {
			json_decref(root);
			return ps_error_set(err, PS_ENOMEM, "out of memory rendering the checkpoint's spec");
		}
		json_object_set_new(root, "tables_in_force", names);
	}
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return ps_error_set(err, PS_ENOMEM, "out of memory rendering the checkpoint's spec");
	free(bf->cfg.ck->spec_json);
	bf->cfg.ck->spec_json = text;
	return PS_OK;
}

/* The backfill progress among the run's tables, for a watcher. */
static void publish(ps_backfill *bf)
{
	ps_run_status *st = bf->cfg.status;
	ps_run_status copy;
	ps_table_status *list;
	size_t n;

	if (!st || !bf->ntables)
		return;
	ps_run_status_copy(st, &copy);
	list = realloc(copy.tables, (copy.ntables + bf->ntables) * sizeof(*list));
	if (!list) {
		free(copy.tables);
		return;
	}
	n = copy.ntables;
	for (size_t i = 0; i < bf->ntables; i++) {
		const bf_table *t = &bf->tables[i];
		ps_table_status *ts = NULL;

		if (t->cancelled)
			continue;
		for (size_t j = 0; j < n && !ts; j++)
			if (strcmp(list[j].schema, t->def->table->schema) == 0 &&
			    strcmp(list[j].name, t->def->table->name) == 0)
				ts = &list[j];
		if (!ts) {
			ts = &list[n++];
			memset(ts, 0, sizeof(*ts));
			snprintf(ts->schema, sizeof(ts->schema), "%s", t->def->table->schema);
			snprintf(ts->name, sizeof(ts->name), "%s", t->def->table->name);
		}
		ts->rows_copied = t->rows;
		ts->rows_estimated = t->def->estimated_rows;
		ts->units_done = (size_t)t->chunks;
		ts->units_total = (size_t)t->chunks + (t->done ? 0 : 1);
		ts->finished = t->done;
	}
	ps_run_status_set_tables(st, list, n);
	free(list);
}

static void busy_add(ps_backfill *bf, int delta)
{
	if (bf->cfg.live)
		atomic_fetch_add(&bf->cfg.live->busy, delta);
}

/* ==== backfills: the applier's side ======================================== */

/* The next table that wants its chunks, or NULL. */
static bf_table *next_backfill(ps_backfill *bf)
{
	for (size_t i = 0; i < bf->ntables; i++)
		if (!bf->tables[i].done && !bf->tables[i].cancelled)
			return &bf->tables[i];
	return NULL;
}

/* Asks the reader for the next chunk, when none is in flight. */
static int want_chunk(ps_backfill *bf, ps_error *err)
{
	bf_table *t = next_backfill(bf);
	int rc = PS_OK;

	pthread_mutex_lock(&bf->mu);
	if (t && bf->chunk_state == CH_NONE) {
		bf->chunk_state = CH_WANTED;
		bf->chunk_seq++;
		bf->chunk_table = t;
		if (bf->chunk_max <= 0)
			bf->chunk_max = BF_CHUNK_ROWS;
		rc = key_bound_copy(&bf->chunk_after, &t->after);
	}
	pthread_mutex_unlock(&bf->mu);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

static int table_add(ps_backfill *bf, ps_table_def *def, const ps_key_bound *after,
                     long long rows, long long chunks, ps_error *err)
{
	bf_table *t;
	char q[300];

	if (bf->ntables == bf->cap_tables) {
		size_t cap = bf->cap_tables ? bf->cap_tables * 2 : 8;
		bf_table *grown;
		ptrdiff_t at;
		/* The reader reads chunk_table under mu: the array moves and the
		 * pointer follows it under mu, so it never sees the freed array. */
		pthread_mutex_lock(&bf->mu);
		at = bf->chunk_table ? bf->chunk_table - bf->tables : -1;
		grown = realloc(bf->tables, cap * sizeof(*grown));
		if (grown) {
			bf->tables = grown;
			if (at >= 0)
				bf->chunk_table = grown + at;
		}
		pthread_mutex_unlock(&bf->mu);
		if (!grown)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		bf->cap_tables = cap;
		bf->route_bt = NULL;
		ps_table_unref(bf->route_table);
		bf->route_table = NULL;
	}
	t = &bf->tables[bf->ntables];
	memset(t, 0, sizeof(*t));
	snprintf(q, sizeof(q), "%s.%s", def->table->schema, def->table->name);
	t->qualified = strdup(q);
	if (!t->qualified)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	t->def = def;
	for (int i = 0; i < def->nconstraints; i++)
		if (def->constraints[i].kind == PS_CONSTRAINT_PRIMARY && def->constraints[i].ncols > 0) {
			t->keys = def->constraints[i].cols;
			t->nkeys = def->constraints[i].ncols;
		}
	t->rows = rows;
	t->chunks = chunks;
	if (after && key_bound_copy(&t->after, after) != PS_OK) {
		free(t->qualified);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	bf->ntables++;
	if (!t->nkeys || !def->has_primary_key)
		return ps_error_set(err, PS_EINVAL, "table %s has no primary key to backfill it by", q);
	busy_add(bf, 1);
	return want_chunk(bf, err);
}

/* Creates (or checks) an added table in the target as a load would, and
 * queues its backfill. Takes def. */
/* The target options of the run, for tables joining it (rejoin) or not. */
static ps_table_options table_options(const ps_backfill *bf, bool rejoin)
{
	ps_table_options opt = {
		.create = bf->cfg.spec->target.create_tables,
		.truncate_before_load = bf->cfg.spec->target.truncate_before_load,
		.follow_ddl = bf->cfg.spec->target.follow_ddl,
		.rejoin = rejoin,
	};
	return opt;
}

/* Creates (or checks) an added table in the target as a load would, and
 * queues its backfill. Takes def. A table joining a running job (rejoin)
 * may find the target table penstock made for it the last time it was
 * selected: the sink empties it (sink.h ps_table_options). */
static int add_table(ps_backfill *bf, ps_table_def *def, bool rejoin, ps_error *err)
{
	ps_table_options opt = table_options(bf, rejoin);
	bool created = false;
	int rc;

	rc = ps_snk_table_prepare(bf->cfg.snk, def, &opt, &created, err);
	/* the key first: upserts need it from the first change on */
	if (rc == PS_OK && created)
		rc = ps_snk_table_finish(bf->cfg.snk, def, err);
	if (rc != PS_OK) {
		ps_error_add_context(err, "adding table %s.%s", def->table->schema, def->table->name);
		ps_table_def_free(def);
		return rc;
	}
	return table_add(bf, def, NULL, 0, 0, err);
}

static void table_done(ps_backfill *bf, bf_table *t)
{
	t->done = true;
	busy_add(bf, -1);
	event(bf, "backfill of %s done: %lld rows in %lld chunks; its changes are applied as usual "
	      "from here on", t->qualified, t->rows, t->chunks);
}

/* Drops the chunk in flight for t (cancelled, or the table done). */
static void chunk_forget(ps_backfill *bf, const bf_table *t)
{
	pthread_mutex_lock(&bf->mu);
	if (bf->chunk_table == t && bf->chunk_state == CH_WANTED)
		bf->chunk_state = CH_NONE;   /* the reader had not begun */
	pthread_mutex_unlock(&bf->mu);
}

/* The high watermark of a chunk (note 2): filter, apply, advance. */
static int chunk_apply(ps_backfill *bf, const ps_txn *txn, ps_error *err)
{
	ps_change **rows;
	ps_table_def *fresh;
	size_t nrows, bytes, applied = 0;
	bf_table *t;
	bool last, truncated, reread;
	int rc = PS_OK, max;

	pthread_mutex_lock(&bf->mu);
	rows = bf->chunk_rows;
	nrows = bf->chunk_nrows;
	bytes = bf->chunk_bytes;
	t = bf->chunk_table;
	max = bf->chunk_max;
	fresh = bf->chunk_def;
	bf->chunk_def = NULL;
	bf->chunk_rows = NULL;
	bf->chunk_nrows = 0;
	bf->chunk_state = CH_NONE;
	pthread_mutex_unlock(&bf->mu);

	/* The chunk was read with the table's columns of now, which the stream
	 * has not shown yet (no change of the table since its DDL): the target
	 * follows here, before the rows (note 8). */
	if (fresh && !t->cancelled) {
		ps_table_change *tc = calloc(1, sizeof(*tc));
		if (!tc) {
			ps_table_def_free(fresh);
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		} else {
			tc->def = fresh;
			tc->table = ps_table_ref(fresh->table);
			tc->what = PS_TC_COLUMNS | PS_TC_PARTITIONS;
			rc = follow_change(bf, txn, tc, true, err);
			ps_table_change_free(tc);
		}
		if (rc != PS_OK) {
			for (size_t i = 0; i < nrows; i++)
				ps_change_free(rows[i]);
			free(rows);
			return rc;
		}
	} else {
		ps_table_def_free(fresh);
	}

	/* A window whose keys could not all be told, or a row of the chunk
	 * updated without all its columns, makes the chunk untrustworthy: it
	 * is read again from the same key, after a new low watermark. */
	reread = bf->window_untrusted || bf->chunk_stale;
	bf->chunk_stale = false;
	for (size_t i = 0; i < nrows && !reread && bf->window_partial.n; i++) {
		char *key = key_text(rows[i]->new_values, t->keys, t->nkeys);
		reread = !key || key_set_has(&bf->window_partial, key);
		free(key);
	}
	if (reread && !bf->window_truncated) {
		for (size_t i = 0; i < nrows; i++)
			ps_change_free(rows[i]);
		free(rows);
		key_set_clear(&bf->window);
		key_set_clear(&bf->window_partial);
		bf->window_seq = 0;
		bf->window_untrusted = false;
		ps_log_debug("backfill of %s: chunk %lld read again (a row in it changed without all "
		             "its columns, or keys in its window could not be told)", t->qualified,
		             t->chunks + 1);
		return want_chunk(bf, err);
	}
	last = (int)nrows < max;
	bf->txn_redo = *txn;
	bf->txn_redo.reprocessing = true;
	for (size_t i = 0; i < nrows && rc == PS_OK && !t->cancelled; i++) {
		char *key = key_text(rows[i]->new_values, t->keys, t->nkeys);
		bool changed = bf->window_truncated || !key || key_set_has(&bf->window, key);

		free(key);
		if (!changed) {
			ps_ratelimit_take(bf->cfg.rl, &bf->cfg.live->limits, 1, rows[i]->mem_size,
			                  bf->cfg.stop);
			rc = ps_snk_write(bf->cfg.snk, &bf->txn_redo, rows[i], err);
			applied++;
		}
		if (i + 1 == nrows && rc == PS_OK) {
			/* the next chunk starts after this one's last key, kept or not */
			ps_key_bound b = {0, NULL};
			b.values = calloc((size_t)t->nkeys + 1, sizeof(char *));
			for (int k = 0; b.values && k < t->nkeys; k++) {
				b.values[k] = strdup(rows[i]->new_values[t->keys[k]].data);
				b.nvalues = b.values[k] ? k + 1 : b.nvalues;
			}
			if (!b.values || b.nvalues != t->nkeys)
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			else {
				ps_key_bound_clear(&t->after);
				t->after = b;
				b.values = NULL;
				b.nvalues = 0;
			}
			ps_key_bound_clear(&b);
		}
	}
	for (size_t i = 0; i < nrows; i++)
		ps_change_free(rows[i]);
	free(rows);
	truncated = bf->window_truncated;
	key_set_clear(&bf->window);
	key_set_clear(&bf->window_partial);
	bf->window_seq = 0;
	bf->window_truncated = false;
	bf->window_untrusted = false;
	if (rc != PS_OK)
		return rc;
	if (t->cancelled)
		return want_chunk(bf, err);   /* the next table's turn */
	t->rows += (long long)applied;
	t->chunks++;
	ps_log_debug("backfill of %s: chunk %lld: %zu rows applied, %zu left to the stream (their "
	             "keys changed between the watermarks)%s", t->qualified, t->chunks, applied,
	             nrows - applied, truncated ? " after a truncate" : "");
	/* the next chunk's size: about BF_CHUNK_BYTES, at most BF_CHUNK_ROWS */
	if (nrows && bytes / nrows > BF_CHUNK_BYTES / BF_CHUNK_ROWS) {
		size_t fit = BF_CHUNK_BYTES / (bytes / nrows);
		pthread_mutex_lock(&bf->mu);
		bf->chunk_max = fit < 10 ? 10 : (int)fit;
		pthread_mutex_unlock(&bf->mu);
	}
	if (last)
		table_done(bf, t);
	rc = spec_render(bf, err);
	publish(bf);
	return rc == PS_OK ? want_chunk(bf, err) : rc;
}

/* ==== table changes: the applier's side (note 1) ========================== */

static bf_pending *take_pending(ps_backfill *bf, unsigned gen)
{
	bf_pending *p = NULL, **pp;

	pthread_mutex_lock(&bf->mu);
	for (pp = &bf->pending; *pp; pp = &(*pp)->next)
		if ((*pp)->gen == gen) {
			p = *pp;
			*pp = p->next;
			break;
		}
	pthread_mutex_unlock(&bf->mu);
	return p;
}

static void pending_free(bf_pending *p)
{
	if (!p)
		return;
	ps_strv_free(p->inc, p->ninc);
	ps_strv_free(p->exc, p->nexc);
	for (size_t i = 0; i < p->res.nadded; i++)
		ps_table_def_free(p->res.added[i]);
	free(p->res.added);
	ps_strv_free(p->res.removed, p->res.nremoved);
	for (size_t i = 0; i < p->res.nchanged; i++)
		ps_table_def_free(p->res.changed[i]);
	free(p->res.changed);
	free(p);
}

static void route_forget(ps_backfill *bf)
{
	ps_table_unref(bf->route_table);
	bf->route_table = NULL;
	bf->route_bt = NULL;
	free(bf->route_keys);
	bf->route_keys = NULL;
}

static int tables_changed(ps_backfill *bf, const ps_txn *txn, unsigned gen, ps_error *err)
{
	bf_pending *p = take_pending(bf, gen);
	char list[800];
	size_t used = 0;
	int rc = PS_OK;

	if (!p)
		return PS_OK;   /* not ours to apply (never happens: the reader queued it first) */
	ps_strv_free(bf->inc, bf->ninc);
	ps_strv_free(bf->exc, bf->nexc);
	bf->inc = p->inc;
	bf->ninc = p->ninc;
	bf->exc = p->exc;
	bf->nexc = p->nexc;
	p->inc = p->exc = NULL;
	bf->filtering = true;
	route_forget(bf);
	list[0] = '\0';
	for (size_t i = 0; i < p->res.nremoved && rc == PS_OK; i++) {
		for (size_t j = 0; j < bf->ntables; j++)
			if (strcmp(bf->tables[j].qualified, p->res.removed[i]) == 0 && !bf->tables[j].done &&
			    !bf->tables[j].cancelled) {
				bf->tables[j].cancelled = true;
				busy_add(bf, -1);
				chunk_forget(bf, &bf->tables[j]);
			}
		if (bf->tracking)
			rc = force_remove(bf, p->res.removed[i]);
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
			                         p->res.removed[i]);
	}
	if (rc == PS_OK && p->res.nremoved)
		rc = want_chunk(bf, err);   /* a cancelled backfill hands over to the next */
	if (rc == PS_OK && p->res.nremoved)
		event(bf, "table%s %s %s at %s: %s changes after that position are not applied; "
		      "target data left as it is", p->res.nremoved == 1 ? "" : "s", list,
		      p->automatic ? "left the selection (dropped, renamed or moved out of it)"
		                   : "removed", txn->position, p->res.nremoved == 1 ? "its" : "their");
	/* partitions attached or detached: the target follows (note 8) */
	for (size_t i = 0; i < p->res.nchanged && rc == PS_OK; i++) {
		ps_table_change *tc = calloc(1, sizeof(*tc));

		if (!tc) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		tc->def = p->res.changed[i];
		p->res.changed[i] = NULL;
		tc->table = ps_table_ref(tc->def->table);
		tc->what = PS_TC_PARTITIONS;
		rc = ps_backfill_on_table(bf, txn, tc, err);
		ps_table_change_free(tc);
	}
	for (size_t i = 0; i < p->res.nadded && rc == PS_OK; i++) {
		ps_table_def *def = p->res.added[i];
		char q[300];

		p->res.added[i] = NULL;
		snprintf(q, sizeof(q), "%s.%s", def->table->schema, def->table->name);
		if (bf->tracking)
			rc = force_add(bf, q);
		if (rc != PS_OK) {
			ps_table_def_free(def);
		} else if (bf->copy_rows || p->automatic) {
			event(bf, "table %s %s at %s: created in the target as a load would, its "
			      "changes applied as they come (idempotently) and its rows backfilled in "
			      "chunks while the other tables stream", q,
			      p->automatic ? "came into the selection (created, renamed or moved into it, "
			                     "or detached from a partitioned table)" : "added",
			      txn->position);
			rc = add_table(bf, def, true, err);
		} else {
			event(bf, "table %s added at %s: its changes from there on are applied", q,
			      txn->position);
			ps_table_def_free(def);
		}
	}
	busy_add(bf, -1);   /* the reader's count for this change */
	if (rc == PS_OK)
		rc = spec_render(bf, err);
	publish(bf);
	pending_free(p);
	return rc;
}

/* ==== table changes in the stream (note 8) ================================= */

/* The primary key's positions in def (borrowed), as table_add takes them. */
static void def_keys(const ps_table_def *def, const int **keys, int *nkeys)
{
	*keys = NULL;
	*nkeys = 0;
	for (int i = 0; def->has_primary_key && i < def->nconstraints; i++)
		if (def->constraints[i].kind == PS_CONSTRAINT_PRIMARY && def->constraints[i].ncols > 0) {
			*keys = def->constraints[i].cols;
			*nkeys = def->constraints[i].ncols;
		}
}

/* A backfill under way of tc's table takes the new def; with `again` it
 * starts over from the first key. Without one, `again` starts a backfill
 * (taking tc->def) when the table has a key to read it by. */
static int follow_backfills(ps_backfill *bf, ps_table_change *tc, bool again, bool from_chunk,
                            ps_error *err)
{
	const ps_table *t = tc->table;
	bf_table *bt = NULL;
	ps_table_def *def = tc->def;
	const int *keys;
	int nkeys;

	for (size_t i = 0; i < bf->ntables; i++)
		if (!bf->tables[i].done && !bf->tables[i].cancelled &&
		    strcmp(bf->tables[i].def->table->schema, t->schema) == 0 &&
		    strcmp(bf->tables[i].def->table->name, t->name) == 0)
			bt = &bf->tables[i];
	if (!def)
		return PS_OK;
	def_keys(def, &keys, &nkeys);
	if (bt) {
		ps_table_def **grave = realloc(bf->old_defs, (bf->nold_defs + 1) * sizeof(*grave));
		if (!grave)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		bf->old_defs = grave;
		if (nkeys == 0)
			return ps_error_set(err, PS_EINVAL, "table %s.%s lost its primary key while it was "
			                    "being backfilled, so its rows cannot be read by key any more; "
			                    "add the key back on the source, or leave the table out of the "
			                    "job", t->schema, t->name);
		if (again)
			ps_key_bound_clear(&bt->after);
		pthread_mutex_lock(&bf->mu);   /* the reader reads chunk_table->def under mu */
		bf->old_defs[bf->nold_defs++] = bt->def;
		bt->def = def;
		bt->keys = keys;
		bt->nkeys = nkeys;
		/* a chunk not begun starts where the table now starts; one in
		 * flight, read with the old columns, is read again */
		if (bf->chunk_table == bt && bf->chunk_state == CH_WANTED && again)
			ps_key_bound_clear(&bf->chunk_after);
		if (bf->chunk_table == bt && (bf->chunk_state == CH_READING ||
		                              bf->chunk_state == CH_READY) && (again || !from_chunk))
			bf->chunk_stale = true;
		pthread_mutex_unlock(&bf->mu);
		if (from_chunk && again)
			bf->chunk_stale = true;
		tc->def = NULL;
		if (again)
			event(bf, "backfill of %s starts over: rows already copied may hold values the "
			      "target computed when it followed the change", bt->qualified);
		return PS_OK;
	}
	if (!again)
		return PS_OK;
	if (nkeys == 0 || !bf->cfg.src || !ps_src_can_retable(bf->cfg.src)) {
		event(bf, "table %s.%s: rows the target held before the change keep the values the "
		      "target gave them, which may differ from the source's (%s); recover with "
		      "resync to copy it again", t->schema, t->name,
		      nkeys == 0 ? "a table without a primary key cannot be read again while it streams"
		                 : "the source cannot read a table again while it streams");
		return PS_OK;
	}
	tc->def = NULL;
	event(bf, "table %s.%s: its rows are read again in chunks (backfill), as the target could "
	      "not derive their new values itself", t->schema, t->name);
	return table_add(bf, def, NULL, 0, 0, err);
}

static int follow_change(ps_backfill *bf, const ps_txn *txn, ps_table_change *tc,
                         bool from_chunk, ps_error *err)
{
	ps_table_options opt = table_options(bf, false);
	bool again = false;
	int rc;

	if (!applies(bf, tc->table->schema, tc->table->name))
		return PS_OK;   /* not in force: its changes are not applied either */
	rc = ps_snk_table_change(bf->cfg.snk, txn, tc, &opt, &again, err);
	if (rc != PS_OK)
		return rc;
	route_forget(bf);
	rc = follow_backfills(bf, tc, again, from_chunk, err);
	if (rc == PS_OK && again)
		rc = spec_render(bf, err);
	publish(bf);
	return rc == PS_OK ? want_chunk(bf, err) : rc;
}

int ps_backfill_on_table(ps_backfill *bf, const ps_txn *txn, ps_table_change *tc, ps_error *err)
{
	return follow_change(bf, txn, tc, false, err);
}

void ps_backfill_table_seen(ps_backfill *bf, const ps_table_change *tc)
{
	if (tc && (tc->what & PS_TC_NAME))
		atomic_store(&bf->poll_now, 1);
}

/* ==== markers ============================================================== */

bool ps_backfill_is_mark(const ps_change *c)
{
	return c->op == PS_OP_MESSAGE && c->message_prefix &&
	       strcmp(c->message_prefix, PS_MARK_PREFIX) == 0;
}

/* "<kind> <job> <nonce> <number>" into its parts; false when malformed. */
static bool parse_mark(const ps_change *c, char *kind, size_t klen, char *job, size_t jlen,
                       char *nonce, size_t nlen, unsigned long long *number)
{
	char text[256], *fields[4], *p, *end = NULL;
	int n = 0;

	if (c->message_len == 0 || c->message_len >= sizeof(text))
		return false;
	memcpy(text, c->message_content, c->message_len);
	text[c->message_len] = '\0';
	for (p = text; n < 4 && *p; n++) {
		fields[n] = p;
		p += strcspn(p, " ");
		if (*p)
			*p++ = '\0';
	}
	if (n != 4 || *p)
		return false;
	*number = strtoull(fields[3], &end, 10);
	if (!fields[3][0] || *end)
		return false;
	snprintf(kind, klen, "%s", fields[0]);
	snprintf(job, jlen, "%s", fields[1]);
	snprintf(nonce, nlen, "%s", fields[2]);
	return true;
}

int ps_backfill_on_mark(ps_backfill *bf, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	char kind[16], job[80], nonce[40];
	unsigned long long number;
	bool ready;

	if (!parse_mark(c, kind, sizeof(kind), job, sizeof(job), nonce, sizeof(nonce), &number) ||
	    strcmp(job, bf->cfg.spec->name) != 0 || strcmp(nonce, bf->nonce) != 0)
		return PS_OK;   /* another run's or another job's (note 4) */
	if (strcmp(kind, "tables") == 0)
		return tables_changed(bf, txn, (unsigned)number, err);
	pthread_mutex_lock(&bf->mu);
	ready = bf->chunk_seq == number && bf->chunk_state == CH_READY;
	pthread_mutex_unlock(&bf->mu);
	if (strcmp(kind, "low") == 0 && number == bf->chunk_seq) {
		key_set_clear(&bf->window);
		key_set_clear(&bf->window_partial);
		bf->window_seq = number;
		bf->window_truncated = false;
		bf->window_untrusted = false;
		return PS_OK;
	}
	if (strcmp(kind, "high") == 0 && ready && bf->window_seq == number)
		return chunk_apply(bf, txn, err);
	return PS_OK;
}

/* ==== routing the stream's changes ========================================= */

/* The positions of t's primary key columns in the change's table, matched by
 * name (the stream's definition may list columns differently). */
static int *key_positions(const bf_table *t, const ps_table *ct)
{
	int *pos = calloc((size_t)t->nkeys + 1, sizeof(int));

	for (int k = 0; pos && k < t->nkeys; k++) {
		const char *name = t->def->table->columns[t->keys[k]].name;
		pos[k] = -1;
		for (int i = 0; i < ct->ncolumns; i++)
			if (strcmp(ct->columns[i].name, name) == 0)
				pos[k] = i;
		if (pos[k] < 0) {
			free(pos);
			return NULL;
		}
	}
	return pos;
}

/* Records the keys a change touches while its table's chunk window is open. */
static int window_record(ps_backfill *bf, const ps_change *c)
{
	const ps_value *sides[2] = {c->old_values, c->new_values};
	int rc = PS_OK;

	if (c->op == PS_OP_TRUNCATE) {
		bf->window_truncated = true;
		return PS_OK;
	}
	if (!bf->route_keys) {
		bf->window_untrusted = true;   /* keys cannot be told: read the chunk again */
		return PS_OK;
	}
	for (int s = 0; s < 2 && rc == PS_OK; s++) {
		char *key;
		if (!sides[s])
			continue;
		key = key_text(sides[s], bf->route_keys, bf->route_bt->nkeys);
		if (key)
			rc = key_set_add(&bf->window, key);
		else if (s == 1 || !c->new_values)
			bf->window_untrusted = true;   /* a key we cannot read: read the chunk again */
	}
	/* An update that did not send every column cannot make its row whole
	 * in the target: if the chunk holds that row, the chunk is read again
	 * (after a new low watermark) rather than the row left to the stream. */
	if (rc == PS_OK && c->op == PS_OP_UPDATE && c->new_values) {
		bool partial = false;
		for (int i = 0; i < c->table->ncolumns; i++)
			if (c->new_values[i].kind == PS_VALUE_UNCHANGED)
				partial = true;
		if (partial) {
			char *key = key_text(c->new_values, bf->route_keys, bf->route_bt->nkeys);
			if (key)
				rc = key_set_add(&bf->window_partial, key);
			else
				bf->window_untrusted = true;
		}
	}
	return rc;
}

int ps_backfill_route_change(ps_backfill *bf, const ps_change *c)
{
	if (!c->table)
		return PS_BF_APPLY;
	if (c->table != bf->route_table) {
		route_forget(bf);
		bf->route_table = ps_table_ref(c->table);
		bf->route_result = PS_BF_APPLY;
		if (!applies(bf, c->table->schema, c->table->name))
			bf->route_result = PS_BF_SKIP;
		for (size_t i = 0; bf->route_result == PS_BF_APPLY && i < bf->ntables; i++) {
			bf_table *t = &bf->tables[i];
			if (t->done || t->cancelled || strcmp(t->def->table->schema, c->table->schema) != 0 ||
			    strcmp(t->def->table->name, c->table->name) != 0)
				continue;
			bf->route_bt = t;
			bf->route_keys = key_positions(t, c->table);
			bf->route_result = PS_BF_REDO;
		}
	}
	if (bf->route_result == PS_BF_REDO && bf->window_seq && bf->route_bt == bf->chunk_table &&
	    window_record(bf, c) != PS_OK)
		bf->window_untrusted = true;   /* out of memory: read the chunk again instead */
	return bf->route_result;
}

/* ==== the reader's side ===================================================== */

static int on_chunk_row(void *ctx, ps_table *t, const ps_value *values, ps_error *err)
{
	ps_backfill *bf = ctx;
	ps_change *c;

	if (bf->nrows == bf->cap_rows) {
		size_t cap = bf->cap_rows ? bf->cap_rows * 2 : 256;
		ps_change **grown = realloc(bf->rows, cap * sizeof(*grown));
		if (!grown)
			return ps_error_set(err, PS_ENOMEM, "out of memory reading a chunk");
		bf->rows = grown;
		bf->cap_rows = cap;
	}
	c = ps_change_new(PS_OP_INSERT, t, values, NULL, false, 0);
	if (!c)
		return ps_error_set(err, PS_ENOMEM, "out of memory reading a chunk");
	bf->rows[bf->nrows++] = c;
	bf->row_bytes += c->mem_size;
	return PS_OK;
}

static void rows_drop(ps_backfill *bf)
{
	for (size_t i = 0; i < bf->nrows; i++)
		ps_change_free(bf->rows[i]);
	bf->nrows = 0;
	bf->row_bytes = 0;
}

/* Reads the chunk in flight, when there is one to read (note 3). */
static int reader_chunk(ps_backfill *bf, ps_error *err)
{
	char content[200], pos[PS_POSITION_MAX];
	unsigned long long seq;
	const ps_table_def *def;
	ps_table_def *fresh = NULL;
	const ps_key_bound *after;
	int state, max, nrows = -1, rc;
	bool gone = false;

	pthread_mutex_lock(&bf->mu);
	state = bf->chunk_state;
	seq = bf->chunk_seq;
	if (state == CH_WANTED)
		bf->chunk_state = CH_READING;
	def = bf->chunk_table ? bf->chunk_table->def : NULL;
	after = bf->chunk_after.nvalues ? &bf->chunk_after : NULL;
	max = bf->chunk_max;
	pthread_mutex_unlock(&bf->mu);
	if (state != CH_WANTED && state != CH_READING)
		return PS_OK;
	if (state == CH_WANTED) {
		snprintf(content, sizeof(content), "low %s %s %llu", bf->cfg.spec->name, bf->nonce, seq);
		rc = ps_src_mark(bf->cfg.src, content, pos, sizeof(pos), err);
		if (rc != PS_OK)
			return rc;
	}
	/* the table's columns of now (note 8); a table gone has no more rows */
	rc = ps_src_redescribe(bf->cfg.src, def, &fresh, &gone, err);
	if (rc == PS_OK && !gone)
		rc = ps_src_chunk_read(bf->cfg.src, fresh ? fresh : def, after, max, on_chunk_row, bf,
		                       &nrows, err);
	if (rc == PS_OK && gone)
		nrows = 0;
	if (rc != PS_OK || nrows < 0) {
		rows_drop(bf);
		ps_table_def_free(fresh);
		return rc;   /* not yet (source transactions still open): next time */
	}
	pthread_mutex_lock(&bf->mu);
	bf->chunk_def = fresh;
	bf->chunk_rows = bf->rows;
	bf->chunk_nrows = bf->nrows;
	bf->chunk_bytes = bf->row_bytes;
	bf->chunk_state = CH_READY;
	pthread_mutex_unlock(&bf->mu);
	bf->rows = NULL;
	bf->nrows = bf->cap_rows = bf->row_bytes = 0;
	snprintf(content, sizeof(content), "high %s %s %llu", bf->cfg.spec->name, bf->nonce, seq);
	return ps_src_mark(bf->cfg.src, content, pos, sizeof(pos), err);
}

int ps_backfill_reader(ps_backfill *bf, ps_error *err)
{
	ps_live *live = bf->cfg.live;
	char **inc = NULL, **exc = NULL, mark[200];
	size_t ninc = 0, nexc = 0;
	unsigned gen = 0;
	bool automatic = false;
	bf_pending *p;
	int rc;

	if (live && bf->cfg.spec->type != PS_JOB_SNAPSHOT) {
		pthread_mutex_lock(&live->mu);
		if (live->tables_gen != bf->reader_gen && live->include) {
			gen = live->tables_gen;
			inc = ps_strv_copy(live->include, live->ninclude);
			exc = ps_strv_copy(live->exclude, live->nexclude);
			ninc = live->ninclude;
			nexc = live->nexclude;
		}
		pthread_mutex_unlock(&live->mu);
	}
	/* tables that came into or left the selection by themselves (note 7) */
	if (!gen && bf->cfg.spec->type != PS_JOB_SNAPSHOT && bf->cfg.src &&
	    ps_src_can_check_selection(bf->cfg.src)) {
		uint64_t now = ps_now_ns();
		bool changed = false;

		if (atomic_exchange(&bf->poll_now, 0) || now - bf->poll_ns >= BF_POLL_NS) {
			bf->poll_ns = now;
			rc = ps_src_selection_check(bf->cfg.src, &changed, err);
			if (rc != PS_OK)
				return rc;
		}
		if (changed) {
			automatic = true;
			gen = 0x80000000u | ++bf->auto_gen;
			inc = ps_strv_copy(bf->reader_inc, bf->reader_ninc);
			exc = ps_strv_copy(bf->reader_exc, bf->reader_nexc);
			ninc = bf->reader_ninc;
			nexc = bf->reader_nexc;
		}
	}
	if (gen && (!inc || !exc)) {
		ps_strv_free(inc, ninc);
		ps_strv_free(exc, nexc);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (gen && !automatic && ps_strv_equal(inc, ninc, bf->reader_inc, bf->reader_ninc) &&
	    ps_strv_equal(exc, nexc, bf->reader_exc, bf->reader_nexc)) {
		bf->reader_gen = gen;   /* asked for what is in force already */
		ps_strv_free(inc, ninc);
		ps_strv_free(exc, nexc);
	} else if (gen) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			ps_strv_free(inc, ninc);
			ps_strv_free(exc, nexc);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		p->gen = gen;
		p->automatic = automatic;
		snprintf(mark, sizeof(mark), "tables %s %s %u", bf->cfg.spec->name, bf->nonce, gen);
		busy_add(bf, 1);
		rc = ps_src_retable(bf->cfg.src, (const char *const *)inc, ninc, (const char *const *)exc, nexc,
		                    bf->copy_rows || automatic, mark, &p->res, err);
		if (rc != PS_OK) {
			busy_add(bf, -1);
			free(p);
			ps_strv_free(inc, ninc);
			ps_strv_free(exc, nexc);
			if (automatic)
				return ps_error_add_context(err, "taking in the tables that came into the "
				                            "selection");
			return ps_error_add_context(err, "changing the job's tables to include=%s...",
			                            ninc ? inc[0] : "");
		}
		/* the reader's record of what the source selects now */
		ps_strv_free(bf->reader_inc, bf->reader_ninc);
		ps_strv_free(bf->reader_exc, bf->reader_nexc);
		bf->reader_inc = ps_strv_copy(inc, ninc);
		bf->reader_exc = ps_strv_copy(exc, nexc);
		bf->reader_ninc = bf->reader_inc ? ninc : 0;
		bf->reader_nexc = bf->reader_exc ? nexc : 0;
		p->inc = inc;
		p->ninc = ninc;
		p->exc = exc;
		p->nexc = nexc;
		pthread_mutex_lock(&bf->mu);
		p->next = bf->pending;
		bf->pending = p;
		pthread_mutex_unlock(&bf->mu);
		if (!automatic)
			bf->reader_gen = gen;
	}
	return reader_chunk(bf, err);
}

/* ==== set-up ================================================================ */

int ps_backfill_new(ps_backfill **out, const ps_backfill_config *cfg, ps_error *err)
{
	ps_backfill *bf = calloc(1, sizeof(*bf));

	*out = NULL;
	if (!bf)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	bf->cfg = *cfg;
	bf->copy_rows = cfg->spec->type == PS_JOB_MIGRATION || cfg->spec->type == PS_JOB_SYNC;
	snprintf(bf->nonce, sizeof(bf->nonce), "%llx%lx", (unsigned long long)ps_now_ns(),
	         (long)getpid());
	pthread_mutex_init(&bf->mu, NULL);
	bf->inc = ps_strv_copy(cfg->spec->include, cfg->spec->ninclude);
	bf->exc = ps_strv_copy(cfg->spec->exclude, cfg->spec->nexclude);
	bf->reader_inc = ps_strv_copy(cfg->spec->include, cfg->spec->ninclude);
	bf->reader_exc = ps_strv_copy(cfg->spec->exclude, cfg->spec->nexclude);
	bf->ninc = bf->reader_ninc = cfg->spec->ninclude;
	bf->nexc = bf->reader_nexc = cfg->spec->nexclude;
	if (!bf->inc || !bf->exc || !bf->reader_inc || !bf->reader_exc) {
		ps_backfill_free(bf);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	*out = bf;
	return PS_OK;
}

void ps_backfill_free(ps_backfill *bf)
{
	if (!bf)
		return;
	while (bf->pending) {
		bf_pending *next = bf->pending->next;
		pending_free(bf->pending);
		bf->pending = next;
	}
	for (size_t i = 0; i < bf->ntables; i++) {
		ps_table_def_free(bf->tables[i].def);
		free(bf->tables[i].qualified);
		ps_key_bound_clear(&bf->tables[i].after);
	}
	free(bf->tables);
	for (size_t i = 0; i < bf->chunk_nrows; i++)
		ps_change_free(bf->chunk_rows[i]);
	free(bf->chunk_rows);
	ps_table_def_free(bf->chunk_def);
	ps_key_bound_clear(&bf->chunk_after);
	rows_drop(bf);
	free(bf->rows);
	route_forget(bf);
	key_set_clear(&bf->window);
	key_set_clear(&bf->window_partial);
	key_set_clear(&bf->in_force);
	for (size_t i = 0; i < bf->nold_defs; i++)
		ps_table_def_free(bf->old_defs[i]);
	free(bf->old_defs);
	ps_strv_free(bf->inc, bf->ninc);
	ps_strv_free(bf->exc, bf->nexc);
	ps_strv_free(bf->reader_inc, bf->reader_ninc);
	ps_strv_free(bf->reader_exc, bf->reader_nexc);
	pthread_mutex_destroy(&bf->mu);
	free(bf);
}

/* The string array at obj.key (NULL when absent or not strings). */
static char **json_strv(json_t *obj, const char *key, size_t *n)
{
	json_t *a = json_object_get(obj, key), *v;
	char **out;
	size_t i;

	*n = 0;
	if (!json_is_array(a))
		return NULL;
	out = calloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v) {
		if (!out || !json_is_string(v) || !(out[i] = strdup(json_string_value(v)))) {
			ps_strv_free(out, i);
			return NULL;
		}
		*n = i + 1;
	}
	return out;
}

bool ps_backfill_tables_only(const ps_checkpoint *ck, const ps_identity *id)
{
	json_t *spec, *tables;
	bool ok;

	/* INITIAL, ILSTART: the initial load is not done, and it must copy the
	 * tables it planned (load.c note 4) */
	if (strcmp(ck->identity.source, id->source) != 0 || strcmp(ck->identity.target, id->target) != 0 ||
	    !ck->spec_json || ck->cdc_state == PS_CDC_INITIAL || ck->cdc_state == PS_CDC_ILSTART ||
	    ck->cdc_state == PS_CDC_ERROR)
		return false;
	spec = json_loads(ck->spec_json, 0, NULL);
	tables = json_object_get(spec, "tables");
	ok = json_is_array(json_object_get(tables, "include"));
	json_decref(spec);
	return ok;
}

static ps_table_def *take_def(ps_table_def **defs, size_t n, const char *qualified)
{
	char q[300];

	for (size_t i = 0; i < n; i++) {
		if (!defs[i])
			continue;
		snprintf(q, sizeof(q), "%s.%s", defs[i]->table->schema, defs[i]->table->name);
		if (strcmp(q, qualified) == 0) {
			ps_table_def *d = defs[i];
			defs[i] = NULL;
			return d;
		}
	}
	return NULL;
}

/* Resumes the checkpoint's unfinished backfills (note 5). */
static int resume_backfills(ps_backfill *bf, json_t *list, ps_table_def **defs, size_t ndefs,
                            ps_error *err)
{
	json_t *e;
	size_t i;
	int rc = PS_OK;

	json_array_foreach(list, i, e) {
		const char *table = json_string_value(json_object_get(e, "table"));
		ps_key_bound after = {0, NULL};
		size_t nafter = 0;
		ps_table_def *def;

		if (!table || rc != PS_OK)
			continue;
		def = take_def(defs, ndefs, table);
		if (!def) {
			event(bf, "the backfill of %s is dropped: the job no longer selects it", table);
			continue;
		}
		after.values = json_strv(e, "after", &nafter);
		after.nvalues = (int)nafter;
		rc = table_add(bf, def, after.nvalues ? &after : NULL,
		               json_integer_value(json_object_get(e, "rows")),
		               json_integer_value(json_object_get(e, "chunks")), err);
		ps_key_bound_clear(&after);
		if (rc == PS_OK)
			event(bf, "resuming the backfill of %s after %lld rows", table,
			      (long long)json_integer_value(json_object_get(e, "rows")));
	}
	return rc;
}

/* Whether the checkpoint's list (or, without one, its patterns) had q. */
static bool was_in_force(json_t *force, char **inc, size_t ninc, char **exc, size_t nexc,
                         const ps_table_def *def, const char *q)
{
	size_t i;
	json_t *v;

	if (json_is_array(force)) {
		json_array_foreach(force, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), q) == 0)
				return true;
		return false;
	}
	return !inc || selects(inc, ninc, exc, nexc, def->table->schema, def->table->name);
}

int ps_backfill_begin(ps_backfill *bf, const char *ck_spec_json, bool resuming, ps_error *err)
{
	json_t *prev = resuming && ck_spec_json ? json_loads(ck_spec_json, 0, NULL) : NULL;
	json_t *tables = json_object_get(prev, "tables"), *list = json_object_get(prev, "backfill");
	json_t *force = json_object_get(prev, "tables_in_force"), *v;
	ps_table_def **defs = NULL;
	size_t ndefs = 0, ninc = 0, nexc = 0, i;
	char **inc = json_strv(tables, "include", &ninc), **exc = json_strv(tables, "exclude", &nexc);
	bool changed = inc && !(ps_strv_equal(inc, ninc, bf->inc, bf->ninc) &&
	                        ps_strv_equal(exc, nexc, bf->exc, bf->nexc));
	/* the tables in force are tracked by name where the source can list
	 * them (note 7) */
	bool track = bf->cfg.src && ps_src_can_snapshot(bf->cfg.src) &&
	             bf->cfg.spec->type != PS_JOB_SNAPSHOT;
	int rc = PS_OK;

	if (changed) {
		/* tables changed while the job was not running: in force from the
		 * checkpoint's position (backfill.h) */
		bf->filtering = true;
		event(bf, "the job's tables changed while it was not running: from the checkpoint on, "
		      "changes of tables it no longer selects are not applied%s",
		      bf->copy_rows ? ", and the tables it adds are backfilled" : "");
	}
	if (track || (changed && bf->copy_rows) || json_array_size(list)) {
		rc = ps_src_describe(bf->cfg.src, &defs, &ndefs, err);
		if (rc != PS_OK)
			goto cleanup;
	}
	for (size_t d = 0; track && rc == PS_OK && d < ndefs; d++) {
		char q[300];
		snprintf(q, sizeof(q), "%s.%s", defs[d]->table->schema, defs[d]->table->name);
		rc = force_add(bf, q);
	}
	if (rc != PS_OK)
		goto cleanup;
	bf->tracking = track;
	/* tables in force at the checkpoint that the source no longer selects */
	json_array_foreach(force, i, v) {
		const char *q = json_string_value(v);
		if (track && q && !key_set_has(&bf->in_force, q))
			event(bf, "table %s left the selection while the job was not running (dropped, "
			      "renamed or moved out of it): its changes after the checkpoint are not "
			      "applied; target data left as it is", q);
	}
	if (json_array_size(list))
		rc = resume_backfills(bf, list, defs, ndefs, err);
	for (size_t d = 0; rc == PS_OK && d < ndefs; d++) {
		ps_table_def *def = defs[d];
		bool by_patterns;
		char q[300];

		if (!def)
			continue;
		snprintf(q, sizeof(q), "%s.%s", def->table->schema, def->table->name);
		if (!(changed || track) ||
		    was_in_force(track ? force : NULL, inc, ninc, exc, nexc, def, q))
			continue;
		/* a table the patterns newly select is copied by load jobs only; one
		 * that came to match them by itself whatever the job type */
		by_patterns = inc && !selects(inc, ninc, exc, nexc, def->table->schema, def->table->name);
		if (by_patterns && !bf->copy_rows)
			continue;
		defs[d] = NULL;
		if (by_patterns)
			event(bf, "table %s added while the job was not running: created in the target as "
			      "a load would and backfilled while the other tables stream", q);
		else
			event(bf, "table %s came into the selection while the job was not running "
			      "(created, renamed or moved into it): created in the target as a load "
			      "would and backfilled while the other tables stream", q);
		rc = add_table(bf, def, true, err);
	}
	if (rc == PS_OK)
		rc = spec_render(bf, err);
	publish(bf);
cleanup:
	for (size_t d = 0; d < ndefs; d++)
		ps_table_def_free(defs[d]);
	free(defs);
	ps_strv_free(inc, ninc);
	ps_strv_free(exc, nexc);
	json_decref(prev);
	return rc;
}
