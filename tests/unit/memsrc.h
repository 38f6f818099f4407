/*
 * memsrc.h — an in-memory source plugin ("memsrc:///db") over memdb.h, for
 * tests/unit/test_pipeline.c; it keeps the contract of penstock/source.h.
 * Included by tests/unit/test_pipeline.c only: static definitions, since
 * the Makefile builds each tests/unit/test_*.c as one binary.
 *
 * NOTES ON THE DESIGN
 *
 * It models a database with a logical replication slot. The slot is made at
 * the log's end (what came before is not kept) and confirms what ack tells
 * it; start refuses a position before the confirmed one, since that log is
 * gone (stricter than PostgreSQL, which would quietly start later: here it
 * would be a loss the test must see). read delivers the committed history
 * from the start position, one item at a time; when it has caught up, every
 * other read is idle and the others let the application commit a burst of
 * 1 to 40 transactions. A snapshot is the database replayed up to the log's
 * end when it is exported; every copy unit lets the application commit five
 * more transactions, as writes go on during a real load. Each COMMIT carries
 * the engine state {"commit": position}, and start checks that the state it
 * is handed is the one of its position, and confirms the start position at
 * once, as PostgreSQL's source does. fence is not offered (optional).
 */
#ifndef PS_TESTS_MEMSRC_H
#define PS_TESTS_MEMSRC_H

#include <fnmatch.h>
#include <jansson.h>
#include <time.h>

#include "penstock/source.h"
#include "memdb.h"

/* ==== the in-memory source (source.h) ===================================== */

static memdb *g_db;              /* the database memsrc:///db names */

struct ps_source {
	memdb *db;
	bool selected[NT];
	bool want_snapshot;
	char snap[32];               /* the snapshot exported last, while live */
	uint64_t snap_point;
	bool snap_live;
	bool started;
	size_t cur;                  /* next transaction to deliver */
	size_t sub;                  /* 0: its BEGIN next; 1..n: change sub-1; n+1: COMMIT */
	uint64_t redo;               /* transactions up to here are reprocessing */
	bool idle_turn;              /* caught up: idle this time, a burst the next */
};

struct ps_copier {
	const memdb *db;
	uint64_t point;
	rowset rows[NT];             /* the database as of the snapshot's point */
};

static int mem_src_open(ps_source **out, const ps_source_config *cfg, ps_error *err)
{
	ps_source *s;
	ps_url u;

	*out = NULL;
	if (ps_url_parse(&u, cfg->url, err) != PS_OK || strcmp(u.path, "/db") != 0 || !g_db)
		return ps_error_set(err, PS_ECONNECT, "no in-memory database at %s", cfg->url);
	s = calloc(1, sizeof(*s));
	MUST(s);
	s->db = g_db;
	s->want_snapshot = cfg->want_snapshot;
	for (int t = 0; t < NT; t++) {
		char name[64];
		bool in = false;

		snprintf(name, sizeof(name), "%s.%s", TABLES[t].schema, TABLES[t].name);
		for (size_t i = 0; i < cfg->ninclude; i++)
			in |= fnmatch(cfg->include[i], name, 0) == 0;
		for (size_t i = 0; i < cfg->nexclude; i++)
			in &= fnmatch(cfg->exclude[i], name, 0) != 0;
		s->selected[t] = in;
	}
	*out = s;
	return PS_OK;
}

static void export_snapshot(ps_source *s, char *name, size_t name_len, char *point,
                            size_t point_len)
{
	s->snap_point = db_end(s->db);
	snprintf(s->snap, sizeof(s->snap), "memsnap-%d", atomic_fetch_add(&g_sh->nsnapshots, 1) + 1);
	s->snap_live = true;
	atomic_max(&g_sh->max_point, s->snap_point);
	snprintf(name, name_len, "%s", s->snap);
	pos_fmt(point, point_len, s->snap_point);
}

/* The engine state checkpointed with a position: the commit it is as of. */
static char *state_at(uint64_t pos)
{
	char p[16];

	pos_fmt(p, sizeof(p), pos);
	return fmt("{\"commit\": \"%s\"}", p);
}

static int mem_src_prepare(ps_source *s, int mode, ps_prepare_result *res, ps_error *err)
{
	uint64_t end = db_end(s->db);

	if (mode == PS_PREPARE_RECREATE)
		atomic_store(&g_sh->slot, 0);
	if (mode == PS_PREPARE_MUST_EXIST && !atomic_load(&g_sh->slot)) {
		ps_error_set(err, PS_ECHECKPOINT, "the in-memory slot does not exist");
		return ps_error_set_engine(err, "memsrc", "no_slot", PS_ERRCLASS_SLOT_LOST);
	}
	if (!atomic_load(&g_sh->slot)) {
		/* A new slot starts at the log's end; what came before is not kept. */
		atomic_store(&g_sh->slot_point, end);
		atomic_store(&g_sh->confirmed, end);
		atomic_store(&g_sh->slot, 1);
		res->created = true;
		res->state = state_at(end);
		if (s->want_snapshot)
			export_snapshot(s, res->snapshot, sizeof(res->snapshot), res->start_position,
			                sizeof(res->start_position));
	}
	pos_fmt(res->start_position, sizeof(res->start_position),
	        res->created ? end : atomic_load(&g_sh->confirmed));
	for (int t = 0; t < NT; t++)
		res->ntables += s->selected[t];
	snprintf(res->server_id, sizeof(res->server_id), "memdb-1");
	snprintf(res->server_version, sizeof(res->server_version), "1");
	snprintf(res->summary, sizeof(res->summary), "in-memory database");
	snprintf(res->log_reader, sizeof(res->log_reader), "in-memory slot");
	return PS_OK;
}

/* state, when given, must be the one checkpointed with position. */
static int check_state(const char *state, const char *position, ps_error *err)
{
	json_t *root = json_loads(state, 0, NULL);
	const char *commit = json_string_value(json_object_get(root, "commit"));
	int rc = PS_OK;

	if (!commit || pos_parse(commit) != pos_parse(position)) {
		violation(V_BATCH, "start at %s with the engine state of commit %s", position,
		          commit ? commit : "(none)");
		rc = ps_error_set(err, PS_ECHECKPOINT, "engine state %s is not the one of %s", state,
		                  position);
	}
	json_decref(root);
	return rc;
}

static int mem_src_ack(ps_source *s, const char *position, ps_error *err);

static int mem_src_start(ps_source *s, const char *position, const char *redo_until,
                         const char *state, ps_error *err)
{
	uint64_t confirmed = atomic_load(&g_sh->confirmed);
	uint64_t from = position && *position ? pos_parse(position) : confirmed;

	if (!atomic_load(&g_sh->slot)) {
		ps_error_set(err, PS_ECHECKPOINT, "the in-memory slot does not exist");
		return ps_error_set_engine(err, "memsrc", "no_slot", PS_ERRCLASS_SLOT_LOST);
	}
	/* Stricter than PostgreSQL, which would quietly start at the slot's
	 * point: the log before what was acknowledged is gone, so starting
	 * before it would lose what lies in between. */
	if (from < confirmed) {
		violation(V_ACK, "start at %llu, before the acknowledged %llu",
		          (unsigned long long)from, (unsigned long long)confirmed);
		ps_error_set(err, PS_ECHECKPOINT, "the log before %llu was released",
		             (unsigned long long)confirmed);
		return ps_error_set_engine(err, "memsrc", "log_gone", PS_ERRCLASS_LOG_LOST);
	}
	if (state && position && *position && check_state(state, position, err) != PS_OK)
		return err->code;
	/* As PostgreSQL's source does in its first standby status update, the
	 * start position is confirmed at once: it must be durable (sink.h rule c). */
	mem_src_ack(s, position && *position ? position : "", err);
	s->cur = 0;
	while (s->cur < s->db->nlog && s->db->log[s->cur].commit <= from)
		s->cur++;
	s->sub = 0;
	s->redo = pos_parse(redo_until);
	s->started = true;
	s->snap_live = false;    /* invariant 6: start ends the exported snapshot */
	return PS_OK;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int mem_src_read(ps_source *s, ps_read_item *item, int timeout_ms, ps_error *err)
{
	const gtxn *t;

	memset(item, 0, sizeof(*item));
	if (!s->started) {
		violation(V_CONTRACT, "read before start");
		return ps_error_set(err, PS_EINVAL, "read before start");
	}
	if (s->cur >= db_visible(s->db)) {
		s->idle_turn = !s->idle_turn;
		if (!s->idle_turn)
			db_commit_more(s->db, 1 + (s->cur * 7919u) % 40);
		if (s->cur >= db_visible(s->db)) {
			sleep_ms(timeout_ms < 1 ? 0 : 1);
			item->kind = PS_READ_NONE;
			return PS_OK;
		}
	}
	t = &s->db->log[s->cur];
	item->txn.xid = t->xid;
	item->txn.commit_time_us = 1700000000000000ll + (int64_t)t->commit;
	item->txn.reprocessing = t->commit <= s->redo;
	if (s->sub == 0) {
		item->kind = PS_READ_BEGIN;
		pos_fmt(item->txn.position, sizeof(item->txn.position), t->commit - 1);
		s->sub = 1;
		if (s->db->on_begin)
			s->db->on_begin(s->db->hook_ctx, s->cur);
		return PS_OK;
	}
	while (s->sub <= t->n && !s->selected[t->c[s->sub - 1].t])
		s->sub++;
	if (s->sub <= t->n) {
		item->kind = PS_READ_CHANGE;
		item->change = gchange_build(s->db, &t->c[s->sub - 1]);
		pos_fmt(item->txn.position, sizeof(item->txn.position), t->commit - 1);
		s->sub++;
		return PS_OK;
	}
	item->kind = PS_READ_COMMIT;
	pos_fmt(item->txn.position, sizeof(item->txn.position), t->commit);
	item->state = state_at(t->commit);
	s->cur++;
	s->sub = 0;
	return PS_OK;
}

static int mem_src_ack(ps_source *s, const char *position, ps_error *err)
{
	uint64_t p = pos_parse(position);

	atomic_fetch_add(&g_sh->nacks, 1);
	if (p > db_end(s->db))
		violation(V_ACK, "acknowledged %s, past the log's end", position);
	atomic_max(&g_sh->max_ack, p);
	atomic_max(&g_sh->confirmed, p);
	if (s->db->on_ack)
		s->db->on_ack(s->db->hook_ctx, p);
	return PS_OK;
}

static int mem_src_current_position(ps_source *s, char *buf, size_t len, ps_error *err)
{
	pos_fmt(buf, len, db_end(s->db));
	return PS_OK;
}

static int mem_src_drop(ps_source *s, char *done, size_t done_len, ps_error *err)
{
	if (s->db->on_drop)
		s->db->on_drop(s->db->hook_ctx);
	atomic_store(&g_sh->slot, 0);
	snprintf(done, done_len, "dropped the in-memory slot");
	return PS_OK;
}

static void mem_src_close(ps_source *s)
{
	free(s);
}

static int mem_src_describe(ps_source *s, ps_table_def ***defs, size_t *n, ps_error *err)
{
	*defs = calloc(NT, sizeof(ps_table_def *));
	MUST(*defs);
	*n = 0;
	for (int t = 0; t < NT; t++) {
		ps_table_def *d;

		if (!s->selected[t])
			continue;
		d = calloc(1, sizeof(*d));
		MUST(d);
		d->table = ps_table_ref(s->db->tables[t]);
		d->engine = xstrdup("memory");
		d->columns = calloc(NCOL, sizeof(ps_column_def));
		MUST(d->columns);
		for (int c = 0; c < NCOL; c++) {
			d->columns[c].sql_type = xstrdup(TABLES[t].types[c]);
			d->columns[c].not_null = TABLES[t].keyed && c == 0;
		}
		d->has_primary_key = TABLES[t].keyed;
		d->estimated_rows = TABLES[t].keyed ? MAX_ID : 1000;
		d->estimated_bytes = -1;
		(*defs)[(*n)++] = d;
	}
	return PS_OK;
}

/* Key ranges of chunk_rows keys: any bounds partition the key space. */
static int mem_src_split(ps_source *s, const ps_table_def *def, int64_t chunk_rows,
                         ps_key_bound **bounds, size_t *nbounds, ps_error *err)
{
	size_t n = 0;

	*bounds = calloc(MAX_ID, sizeof(ps_key_bound));
	MUST(*bounds && chunk_rows > 0);
	for (int64_t k = chunk_rows; k < MAX_ID; k += chunk_rows) {
		(*bounds)[n].nvalues = 1;
		(*bounds)[n].values = calloc(1, sizeof(char *));
		MUST((*bounds)[n].values);
		(*bounds)[n].values[0] = fmt("%lld", (long long)k);
		n++;
	}
	*nbounds = n;
	return PS_OK;
}

static int mem_src_snapshot_export(ps_source *s, char *name, size_t name_len, char *point,
                                   size_t point_len, ps_error *err)
{
	export_snapshot(s, name, name_len, point, point_len);
	return PS_OK;
}

static int mem_src_snapshot_release(ps_source *s, ps_error *err)
{
	s->snap_live = false;
	return PS_OK;
}

/* Invariant 7: reads only what the exporting thread set before the load. */
static int mem_src_copy_open(ps_source *s, const char *snapshot, ps_copier **out, ps_error *err)
{
	ps_copier *c;

	*out = NULL;
	if (!s->snap_live || strcmp(snapshot, s->snap) != 0) {
		violation(V_CONTRACT, "copy_open of snapshot %s, which is not importable", snapshot);
		return ps_error_set(err, PS_ESERVER, "snapshot %s is not importable", snapshot);
	}
	c = calloc(1, sizeof(*c));
	MUST(c);
	c->db = s->db;
	c->point = s->snap_point;
	db_state_at(c->db, c->point, c->rows);
	*out = c;
	return PS_OK;
}

static int emit_row(const row *r, const ps_table_def *def, ps_row_fn fn, void *ctx, ps_error *err)
{
	ps_value v[NCOL];

	for (int i = 0; i < NCOL; i++) {
		v[i].kind = r->v[i] ? PS_VALUE_TEXT : PS_VALUE_NULL;
		v[i].len = r->v[i] ? (uint32_t)strlen(r->v[i]) : 0;
		v[i].data = r->v[i];
	}
	return fn(ctx, def->table, v, err);
}

static long bound_key(const ps_key_bound *b, long dflt)
{
	if (!b)
		return dflt;
	MUST(b->nvalues == 1);
	return strtol(b->values[0], NULL, 10);
}

static int mem_src_copy_unit(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                             ps_row_fn fn, void *ctx, ps_error *err)
{
	int t = table_index(def->table->schema, def->table->name);
	const rowset *rs;
	int rc = PS_OK;

	MUST(t >= 0);
	rs = &c->rows[t];
	db_commit_more(c->db, 5);   /* the application goes on writing during the load */
	if (c->db->on_unit)
		c->db->on_unit(c->db->hook_ctx);
	if (!TABLES[t].keyed) {
		MUST(!range->lower && !range->upper);
		for (size_t i = 0; i < rs->n && rc == PS_OK; i++)
			rc = emit_row(rs->list[i], def, fn, ctx, err);
		return rc;
	}
	for (long id = bound_key(range->lower, 1); id < bound_key(range->upper, MAX_ID + 1) &&
	                                           rc == PS_OK; id++)
		if (id >= 1 && id <= MAX_ID && rs->byid[id])
			rc = emit_row(rs->byid[id], def, fn, ctx, err);
	return rc;
}

static void mem_src_copy_close(ps_copier *c)
{
	if (!c)
		return;
	for (int t = 0; t < NT; t++)
		rs_free(&c->rows[t]);
	free(c);
}

static const char *const memsrc_schemes[] = {"memsrc", NULL};

static const ps_source_ops memsrc_ops = {
	.abi_version = PS_SOURCE_ABI_VERSION,
	.name = "memsrc",
	.connector = "memory",
	.url_schemes = memsrc_schemes,
	.open = mem_src_open,
	.prepare = mem_src_prepare,
	.start = mem_src_start,
	.read = mem_src_read,
	.ack = mem_src_ack,
	.position_compare = mem_position_compare,
	.current_position = mem_src_current_position,
	.drop = mem_src_drop,
	.close = mem_src_close,
	.describe = mem_src_describe,
	.split = mem_src_split,
	.snapshot_export = mem_src_snapshot_export,
	.snapshot_release = mem_src_snapshot_release,
	.copy_open = mem_src_copy_open,
	.copy_unit = mem_src_copy_unit,
	.copy_close = mem_src_copy_close,
};

#endif
