/*
 * mysink_net.c — net changes: the inserts, updates and deletes of one target
 * transaction (many source transactions, mysink.c NOTES 3) collected per
 * table and key, and applied as their net effect in bulk statements
 * (mysink_apply.c: one round trip for up to MYS_BULK_ROWS rows) when
 * anything else happens.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Why. A target transaction spans up to a thousand source transactions;
 *     one statement per change is one round trip per change, and a hot row
 *     (a pgbench branch) is written in most of them. Collapsing the changes
 *     of one key to their net effect writes each row once per target
 *     transaction, and array binding sends each kind of statement once.
 *  2. When it gives the same final state. Only outside re-processing, with
 *     foreign_key_checks = 0 (the order across tables and keys cannot be
 *     observed), on a table without triggers (they would see other
 *     statements), and per table:
 *       keyed    the target has a primary key and no other unique key
 *                (reordering distinct keys could make a transient duplicate
 *                of another unique value), and the change leaves the key as
 *                it is;
 *       keyless  no primary key: inserts are held in order (they are
 *                applied in order, unchanged); an update or delete is not.
 *     Any other change first applies what its table holds, then is applied
 *     at once. mys_settle applies everything before a truncate, a load, a
 *     checkpoint, DDL or the commit, so nothing held here outlives the
 *     target transaction it belongs to.
 *  3. Per key, the net state and what the next change makes of it:
 *
 *       state   │ + insert   + update          + delete
 *       ────────┼──────────────────────────────────────────────
 *       (new)   │ INS        UPD               DEL
 *       NONE    │ INS        apply, restart    apply, restart
 *       INS     │ restart    INS (merged)      NONE
 *       UPD     │ restart    UPD (merged)      DEL
 *       DEL     │ REPL       restart           restart
 *       REPL    │ restart    REPL (merged)     DEL
 *
 *     NONE: absent before and after (inserted, then deleted). REPL: the
 *     row was there, was deleted and inserted again: applied as a delete
 *     then an insert. "merged": the later change's values, and the earlier
 *     one's where the later says UNCHANGED (TOAST). "restart": a sequence
 *     a consistent source does not produce; the table's held changes are
 *     applied and the change starts a new entry, so the target sees the
 *     same statements in the same order as without compaction.
 *  4. A group is applied as: deletes (DEL by the old key, REPL by the new),
 *     then updates grouped by the columns they set, then inserts (INS and
 *     REPL): distinct keys, so any order gives the same rows.
 *  5. Memory: at most MYS_NET_MAX_BYTES of change data and MYS_NET_MAX_ITEMS
 *     entries are held; past that everything is applied (a five-million-row
 *     transaction streams through in slices).
 */
#include <stdlib.h>
#include <string.h>

#include "sink/mysql/mysink.h"

enum { NET_NONE = 0, NET_INS, NET_UPD, NET_DEL, NET_REPL };


/* ==== hashing ============================================================= */

static uint32_t hash_bytes(const char *p, size_t n, uint32_t h)
{
	for (size_t i = 0; i < n; i++) {   /* FNV-1a */
		h ^= (uint8_t)p[i];
		h *= 16777619u;
	}
	return h;
}

/* The key of c in the target's key order as length-prefixed bytes in b: of
 * the new row, or of the row the change finds (pgsink_apply.c NOTES 2); false
 * when a key value is unknown (the change is then not held). */
static bool key_of(ps_buf *b, const mys_table *t, const ps_change *c, bool from_new)
{
	ps_buf_reset(b);
	for (int k = 0; k < t->nkey; k++) {
		int col = t->key[k];
		const ps_value *v = NULL;
		uint32_t len;

		if (from_new) {
			v = c->new_values ? &c->new_values[col] : NULL;
		} else if (c->old_values && c->old_values[col].kind == PS_VALUE_TEXT &&
		           (!c->old_is_key || c->table->columns[col].is_key)) {
			v = &c->old_values[col];
		} else if (c->new_values) {
			v = &c->new_values[col];
		}
		if (!v || v->kind != PS_VALUE_TEXT)
			return false;
		len = v->len;
		if (ps_buf_append(b, &len, sizeof(len)) != PS_OK ||
		    ps_buf_append(b, v->data, v->len) != PS_OK)
			return false;
	}
	return true;
}

/* ==== groups ============================================================== */

static void group_clear(mys_net_group *g)
{
	for (size_t i = 0; i < g->n; i++) {
		ps_change_free(g->e[i].c);
		free(g->e[i].key);
	}
	g->n = 0;
	if (g->index)
		memset(g->index, 0xff, g->index_cap * sizeof(*g->index));
}

static void group_free(mys_net_group *g)
{
	group_clear(g);
	free(g->e);
	free(g->index);
	ps_table_unref(g->table);
	memset(g, 0, sizeof(*g));
}

/* Applies what g holds, then empties it (NOTES 4). */
static int group_apply(ps_sink *s, mys_net_group *g, ps_error *err)
{
	const ps_change **del = NULL, **repl = NULL, **upd = NULL, **ins = NULL;
	size_t ndel = 0, nrepl = 0, nupd = 0, nins = 0;
	ps_change *repl_del = NULL;
	int rc = PS_OK;

	if (g->n) {
		del = malloc(g->n * sizeof(*del));
		repl = malloc(g->n * sizeof(*repl));
		upd = malloc(g->n * sizeof(*upd));
		ins = malloc(g->n * sizeof(*ins));
		repl_del = malloc(g->n * sizeof(*repl_del));
		if (!del || !repl || !upd || !ins || !repl_del)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < g->n && rc == PS_OK; i++) {
		mys_net_entry *e = &g->e[i];

		switch (e->op) {
		case NET_DEL:
			del[ndel++] = e->c;
			break;
		case NET_UPD:
			upd[nupd++] = e->c;
			break;
		case NET_REPL:
			/* the same row, found by the key of the row inserted again */
			repl_del[nrepl] = *e->c;
			repl_del[nrepl].op = PS_OP_DELETE;
			repl[nrepl] = &repl_del[nrepl];
			nrepl++;
			ins[nins++] = e->c;
			break;
		case NET_INS:
			ins[nins++] = e->c;
			break;
		default:
			break;
		}
	}
	if (rc == PS_OK)
		rc = mys_apply_deletes(s, del, ndel, false, true, err);
	if (rc == PS_OK)
		rc = mys_apply_deletes(s, repl, nrepl, true, true, err);
	if (rc == PS_OK)
		rc = mys_apply_updates(s, upd, nupd, err);
	if (rc == PS_OK)
		rc = mys_apply_inserts(s, ins, nins, err);
	free(del);
	free(repl);
	free(upd);
	free(ins);
	free(repl_del);
	s->net_items -= g->n;
	s->net_bytes -= g->bytes;
	g->bytes = 0;
	group_clear(g);
	return rc;
}

int mys_net_flush(ps_sink *s, ps_error *err)
{
	int rc = PS_OK;

	for (int i = 0; i < s->ngroups && rc == PS_OK; i++)
		if (s->groups[i].n)
			rc = group_apply(s, &s->groups[i], err);
	return rc;
}

void mys_net_free(ps_sink *s)
{
	for (int i = 0; i < s->ngroups; i++)
		group_free(&s->groups[i]);
	free(s->groups);
	s->groups = NULL;
	s->ngroups = s->groups_cap = 0;
	s->net_items = s->net_bytes = 0;
	ps_buf_free(&s->net_key);
	ps_buf_free(&s->net_key2);
	free(s->net_vals);
	s->net_vals = NULL;
	s->net_vals_cap = 0;
}

static bool same_table(const ps_table *a, const ps_table *b)
{
	return a == b || (strcmp(a->name, b->name) == 0 && strcmp(a->schema, b->schema) == 0);
}

/* The group of c's table definition. A group of an older definition of the
 * same table is applied and reused, so definitions never interleave. */
static int group_get(ps_sink *s, ps_table *table, mys_net_group **out, ps_error *err)
{
	mys_net_group *g;
	int rc;

	*out = NULL;
	for (int i = 0; i < s->ngroups; i++) {
		g = &s->groups[i];
		if (g->table == table) {
			*out = g;
			return PS_OK;
		}
		if (same_table(g->table, table)) {
			rc = group_apply(s, g, err);
			if (rc != PS_OK)
				return rc;
			ps_table_unref(g->table);
			g->table = ps_table_ref(table);
			*out = g;
			return PS_OK;
		}
	}
	if (s->ngroups == s->groups_cap) {
		int cap = s->groups_cap ? 2 * s->groups_cap : 8;
		mys_net_group *ng = realloc(s->groups, (size_t)cap * sizeof(*ng));

		if (!ng)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->groups = ng;
		s->groups_cap = cap;
	}
	g = &s->groups[s->ngroups++];
	memset(g, 0, sizeof(*g));
	g->table = ps_table_ref(table);
	*out = g;
	return PS_OK;
}

/* Index slot of key (hash h) in g: its entry, or the empty slot for it. */
static size_t slot_find(const mys_net_group *g, uint32_t h, const char *key, size_t len)
{
	size_t mask = g->index_cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		int32_t at = g->index[i];

		if (at < 0)
			return i;
		if (g->e[at].hash == h && g->e[at].key_len == len && memcmp(g->e[at].key, key, len) == 0)
			return i;
	}
}

static int index_grow(mys_net_group *g, ps_error *err)
{
	size_t cap = g->index_cap ? 2 * g->index_cap : 256;
	int32_t *idx = malloc(cap * sizeof(*idx));

	if (!idx)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	memset(idx, 0xff, cap * sizeof(*idx));
	free(g->index);
	g->index = idx;
	g->index_cap = cap;
	for (size_t i = 0; i < g->n; i++)
		g->index[slot_find(g, g->e[i].hash, g->e[i].key, g->e[i].key_len)] = (int32_t)i;
	return PS_OK;
}

/* Appends an entry holding a copy of c (or of the merged change m, taken). */
static int entry_add(ps_sink *s, mys_net_group *g, int op, const ps_change *c, uint32_t h,
                     size_t slot, ps_error *err)
{
	mys_net_entry *e;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 256;
		mys_net_entry *ne = realloc(g->e, cap * sizeof(*ne));

		if (!ne)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		g->e = ne;
		g->cap = cap;
	}
	e = &g->e[g->n];
	memset(e, 0, sizeof(*e));
	e->c = ps_change_new(c->op, c->table, c->new_values, c->old_values, c->old_is_key, c->lsn);
	e->key = malloc(s->net_key.len ? s->net_key.len : 1);
	if (!e->c || !e->key) {
		ps_change_free(e->c);
		free(e->key);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (s->net_key.len)        /* keyless tables have no key (and maybe no buffer) */
		memcpy(e->key, s->net_key.data, s->net_key.len);
	e->key_len = s->net_key.len;
	e->hash = h;
	e->op = (uint8_t)op;
	if (g->index_cap)
		g->index[slot] = (int32_t)g->n;
	g->n++;
	g->bytes += e->c->mem_size + e->key_len;
	s->net_items++;
	s->net_bytes += e->c->mem_size + e->key_len;
	return PS_OK;
}

/* Replaces e's change with op: c's new values, and e's where c says
 * UNCHANGED; old values (the row's key) stay e's. */
static int entry_merge(ps_sink *s, mys_net_group *g, mys_net_entry *e, int op, uint8_t chop,
                       const ps_change *c, ps_error *err)
{
	int n = c->table->ncolumns;
	ps_change *m;

	if (n > s->net_vals_cap) {
		ps_value *v = realloc(s->net_vals, (size_t)n * sizeof(*v));

		if (!v)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->net_vals = v;
		s->net_vals_cap = n;
	}
	for (int i = 0; i < n; i++)
		s->net_vals[i] = c->new_values[i].kind == PS_VALUE_UNCHANGED && e->c->new_values
		                 ? e->c->new_values[i] : c->new_values[i];
	m = ps_change_new(chop, c->table, s->net_vals, chop == PS_OP_UPDATE ? e->c->old_values : NULL,
	                  e->c->old_is_key, c->lsn);
	if (!m)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	g->bytes += m->mem_size;
	s->net_bytes += m->mem_size;
	g->bytes -= e->c->mem_size;
	s->net_bytes -= e->c->mem_size;
	ps_change_free(e->c);
	e->c = m;
	e->op = (uint8_t)op;
	return PS_OK;
}

/* Replaces e's change with a copy of c (a delete, or the insert of REPL). */
static int entry_replace(ps_sink *s, mys_net_group *g, mys_net_entry *e, int op,
                         const ps_change *c, ps_error *err)
{
	ps_change *m = ps_change_new(c->op, c->table, c->new_values, c->old_values, c->old_is_key,
	                             c->lsn);

	if (!m)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	g->bytes += m->mem_size;
	s->net_bytes += m->mem_size;
	g->bytes -= e->c->mem_size;
	s->net_bytes -= e->c->mem_size;
	ps_change_free(e->c);
	e->c = m;
	e->op = (uint8_t)op;
	return PS_OK;
}

/* NOTES 3. *restart is set when the change cannot follow the entry. */
static int entry_step(ps_sink *s, mys_net_group *g, mys_net_entry *e, const ps_change *c,
                      bool *restart, ps_error *err)
{
	*restart = false;
	switch (c->op) {
	case PS_OP_INSERT:
		if (e->op == NET_NONE)
			return entry_replace(s, g, e, NET_INS, c, err);
		if (e->op == NET_DEL)
			return entry_replace(s, g, e, NET_REPL, c, err);
		break;
	case PS_OP_UPDATE:
		if (e->op == NET_INS || e->op == NET_REPL)
			return entry_merge(s, g, e, e->op, PS_OP_INSERT, c, err);
		if (e->op == NET_UPD)
			return entry_merge(s, g, e, NET_UPD, PS_OP_UPDATE, c, err);
		break;
	case PS_OP_DELETE:
		if (e->op == NET_INS) {
			e->op = NET_NONE;
			return PS_OK;
		}
		if (e->op == NET_UPD || e->op == NET_REPL)
			return entry_replace(s, g, e, NET_DEL, c, err);
		break;
	}
	*restart = true;
	return PS_OK;
}

/* Whether c may be held (NOTES 2) and, when keyed, its key in s->net_key. */
static bool holdable(ps_sink *s, const mys_table *t, const ps_change *c)
{
	if (!s->fk_off || t->triggers)
		return false;
	if (t->nkey == 0)
		return c->op == PS_OP_INSERT && c->new_values;
	if (t->nuniq > 0)
		return false;
	switch (c->op) {
	case PS_OP_INSERT:
		return c->new_values && key_of(&s->net_key, t, c, true);
	case PS_OP_UPDATE:          /* only when the key stays */
		return c->new_values && key_of(&s->net_key2, t, c, true) &&
		       key_of(&s->net_key, t, c, false) && s->net_key.len == s->net_key2.len &&
		       memcmp(s->net_key.data, s->net_key2.data, s->net_key.len) == 0;
	case PS_OP_DELETE:
		return c->old_values && key_of(&s->net_key, t, c, false);
	default:
		return false;
	}
}

int mys_net_write(ps_sink *s, mys_table *t, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	mys_net_group *g = NULL;
	bool restart = false;
	int rc;

	if (txn->reprocessing || !holdable(s, t, c)) {
		/* what this table holds (under any definition) goes first, then c */
		for (int i = 0; i < s->ngroups; i++)
			if (s->groups[i].n && same_table(s->groups[i].table, c->table)) {
				rc = group_apply(s, &s->groups[i], err);
				if (rc != PS_OK)
					return rc;
			}
		return mys_apply_change(s, txn, c, err);
	}
	rc = group_get(s, c->table, &g, err);
	/* applying an older definition's group may have rebuilt the cache entry */
	if (rc == PS_OK)
		rc = mys_table_get(s, c->table, &t, err);
	if (rc != PS_OK)
		return rc;
	if (t->nkey == 0) {
		ps_buf_reset(&s->net_key);
		rc = entry_add(s, g, NET_INS, c, 0, 0, err);
	} else {
		uint32_t h = hash_bytes(s->net_key.data, s->net_key.len, 2166136261u);
		size_t slot;

		if (g->n + 1 > g->index_cap / 2) {
			rc = index_grow(g, err);
			if (rc != PS_OK)
				return rc;
		}
		slot = slot_find(g, h, s->net_key.data, s->net_key.len);
		if (g->index[slot] >= 0) {
			rc = entry_step(s, g, &g->e[g->index[slot]], c, &restart, err);
			if (rc != PS_OK)
				return rc;
			if (!restart)
				goto bounds;
			/* apply the table's entries, then start again with c */
			rc = group_apply(s, g, err);
			if (rc != PS_OK)
				return rc;
			slot = slot_find(g, h, s->net_key.data, s->net_key.len);
		}
		rc = entry_add(s, g, c->op == PS_OP_INSERT ? NET_INS : c->op == PS_OP_UPDATE ? NET_UPD
		               : NET_DEL, c, h, slot, err);
	}
	if (rc != PS_OK)
		return rc;
bounds:
	if (s->net_bytes > MYS_NET_MAX_BYTES || s->net_items > MYS_NET_MAX_ITEMS)
		return mys_net_flush(s, err);
	return PS_OK;
}
