/*
 * test_netchg.c — net changes (src/sink/netchg.c): the state table, every
 * sequence of up to four inserts, updates and deletes of one key checked
 * against a model of it, key changes, values not sent, transactions rolled
 * back, tables without a key, truncates, and a span larger than memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "penstock/change.h"
#include "sink/netchg.h"

/* ---- helpers --------------------------------------------------------------- */

#define MAXEV 64

typedef struct got {
	int n;
	char op[MAXEV];
	char key[MAXEV][32];      /* after's id, else before's */
	char val[MAXEV][32];      /* after's v, "" when none */
	char before[MAXEV][32];   /* before's id, "" when no before */
	bool reproc[MAXEV];
	char changed[MAXEV][16];  /* 'i','v' for changed columns; "-" no mask */
} got;

static int collect(const ps_netchg_event *ev, void *payload, ps_error *err)
{
	got *g = payload;
	const ps_change *c = ev->change;
	int i = g->n++;

	(void)err;
	assert_true(i < MAXEV);
	g->op[i] = (char)c->op;
	g->key[i][0] = g->val[i][0] = g->before[i][0] = '\0';
	if (c->new_values) {
		snprintf(g->key[i], sizeof(g->key[i]), "%s", c->new_values[0].data ? c->new_values[0].data : "");
		if (c->table->ncolumns > 1)
			snprintf(g->val[i], sizeof(g->val[i]), "%s",
			         c->new_values[1].kind == PS_VALUE_TEXT ? c->new_values[1].data
			         : c->new_values[1].kind == PS_VALUE_UNCHANGED ? "?" : "null");
	}
	if (c->old_values) {
		snprintf(g->before[i], sizeof(g->before[i]), "%s", c->old_values[0].data);
		if (!c->new_values)
			snprintf(g->key[i], sizeof(g->key[i]), "%s", c->old_values[0].data);
	}
	g->reproc[i] = ev->txn->reprocessing;
	snprintf(g->changed[i], sizeof(g->changed[i]), "-");
	if (ev->changed) {
		int o = 0;
		for (int k = 0; k < c->table->ncolumns; k++)
			if (ev->changed[k])
				g->changed[i][o++] = c->table->columns[k].name[0];
		g->changed[i][o] = '\0';
	}
	return PS_OK;
}

static ps_table *table(bool with_key)
{
	ps_table *t = ps_table_new(1, 2);

	assert_non_null(t);
	ps_table_set_names(t, "public", "t");
	ps_table_set_column(t, 0, "id", 23, -1, PS_TYPE_INTEGER, with_key);
	ps_table_set_column(t, 1, "v", 25, -1, PS_TYPE_TEXT, false);
	t->replica_identity = 'd';
	return t;
}

static ps_value text(const char *s)
{
	ps_value v = {PS_VALUE_TEXT, (uint32_t)strlen(s), s};
	return v;
}

static ps_txn txn_at(int i, bool reproc)
{
	ps_txn t;

	memset(&t, 0, sizeof(t));
	t.xid = (uint64_t)i;
	t.reprocessing = reproc;
	snprintf(t.position, sizeof(t.position), "0/%X", i * 16);
	return t;
}

/* Adds one change in a transaction of its own. old_key: the key the
 * change finds (update, delete), NULL for the default identity's update
 * that keeps the key. */
static void add(ps_netchg *n, ps_table *t, int i, uint8_t op, const char *key, const char *val,
                const char *old_key)
{
	ps_txn txn = txn_at(i, false);
	ps_value nv[2], ov[2] = {{PS_VALUE_NULL, 0, NULL}, {PS_VALUE_NULL, 0, NULL}};
	ps_change *c;
	ps_error err;

	ps_error_clear(&err);
	nv[0] = text(key);
	nv[1] = val ? text(val) : (ps_value){PS_VALUE_UNCHANGED, 0, NULL};
	if (old_key)
		ov[0] = text(old_key);
	c = ps_change_new(op, t, op == PS_OP_DELETE ? NULL : nv, old_key ? ov : NULL,
	                  old_key != NULL, (uint64_t)i);
	assert_non_null(c);
	assert_int_equal(ps_netchg_begin(n, &err), PS_OK);
	assert_int_equal(ps_netchg_add(n, &txn, c, &err), PS_OK);
	assert_int_equal(ps_netchg_commit(n, &err), PS_OK);
	ps_change_free(c);
}

static ps_netchg *open_net(bool mask, bool merge, size_t mem)
{
	ps_netchg_opts o = {mask, merge, mem};
	ps_netchg *n = NULL;
	ps_error err;

	ps_error_clear(&err);
	assert_int_equal(ps_netchg_open(&n, &o, &err), PS_OK);
	return n;
}

static void drain(ps_netchg *n, got *g)
{
	ps_error err;

	ps_error_clear(&err);
	memset(g, 0, sizeof(*g));
	assert_int_equal(ps_netchg_drain(n, collect, g, &err), PS_OK);
	assert_int_equal(ps_netchg_count(n), 0);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_state_table(void **state)
{
	(void)state;
	assert_int_equal(ps_netchg_op(false, true, false), PS_OP_INSERT);
	assert_int_equal(ps_netchg_op(true, true, false), PS_OP_UPDATE);
	assert_int_equal(ps_netchg_op(true, false, false), PS_OP_DELETE);
	assert_int_equal(ps_netchg_op(false, false, false), 0);
	assert_int_equal(ps_netchg_op(false, true, true), PS_OP_UPDATE);
	assert_int_equal(ps_netchg_op(true, true, true), PS_OP_UPDATE);
	assert_int_equal(ps_netchg_op(true, false, true), PS_OP_DELETE);
	assert_int_equal(ps_netchg_op(false, false, true), 0);
}

/* Every sequence of up to 4 changes of one key that a source can produce
 * (an insert only where the row is absent, an update or delete only where
 * it is there), from both starting points, against the model: existed =
 * the row was there before, exists = after; the values of the last write. */
static void test_every_sequence(void **state)
{
	static const uint8_t ops[3] = {PS_OP_INSERT, PS_OP_UPDATE, PS_OP_DELETE};
	ps_table *t = table(true);
	int checked = 0;

	(void)state;
	for (int len = 1; len <= 4; len++) {
		int combos = 1;
		for (int i = 0; i < len; i++)
			combos *= 3;
		for (int pre = 0; pre < 2; pre++) {
			for (int m = 0; m < combos; m++) {
				ps_netchg *n = open_net(false, false, 0);
				bool there = pre, ok = true;
				char last[16] = "";
				got g;
				int code = m;

				for (int i = 0; i < len && ok; i++) {
					uint8_t op = ops[code % 3];
					char val[16];
					code /= 3;
					ok = op == PS_OP_INSERT ? !there : there;
					if (!ok)
						break;
					snprintf(val, sizeof(val), "v%d", i);
					add(n, t, i + 1, op, "7", op == PS_OP_DELETE ? NULL : val,
					    op == PS_OP_DELETE ? "7" : NULL);
					there = op != PS_OP_DELETE;
					if (op != PS_OP_DELETE)
						snprintf(last, sizeof(last), "%s", val);
				}
				if (ok) {
					uint8_t want = ps_netchg_op(pre, there, false);
					drain(n, &g);
					assert_int_equal(g.n, want ? 1 : 0);
					if (want) {
						assert_int_equal(g.op[0], want);
						assert_string_equal(g.key[0], "7");
						if (want != PS_OP_DELETE)
							assert_string_equal(g.val[0], last);
						/* an update or delete says the key before the span */
						assert_string_equal(g.before[0], want == PS_OP_INSERT ? "" : "7");
					}
					checked++;
				}
				ps_netchg_close(n);
			}
		}
	}
	assert_true(checked > 20);
	ps_table_unref(t);
}

static void test_key_changes(void **state)
{
	ps_table *t = table(true);
	ps_netchg *n = open_net(false, false, 0);
	got g;

	(void)state;
	add(n, t, 1, PS_OP_UPDATE, "2", "moved", "1");       /* 1 was there: 1 -> 2 */
	add(n, t, 2, PS_OP_INSERT, "3", "new", NULL);        /* 3 inserted, then 3 -> 4 */
	add(n, t, 3, PS_OP_UPDATE, "4", NULL, "3");          /* v not sent: kept from 3 */
	add(n, t, 4, PS_OP_UPDATE, "6", "x", "5");           /* 5 -> 6 -> 5: an update of 5 */
	add(n, t, 5, PS_OP_UPDATE, "5", "y", "6");
	drain(n, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.op[0], 'd');
	assert_string_equal(g.key[0], "1");
	assert_int_equal(g.op[1], 'c');
	assert_string_equal(g.key[1], "2");
	assert_string_equal(g.val[1], "moved");
	assert_int_equal(g.op[2], 'c');
	assert_string_equal(g.key[2], "4");
	assert_string_equal(g.val[2], "new");
	assert_int_equal(g.op[3], 'u');
	assert_string_equal(g.key[3], "5");
	assert_string_equal(g.val[3], "y");
	assert_string_equal(g.before[3], "5");
	ps_netchg_close(n);
	ps_table_unref(t);
}

static void test_merge_and_mask(void **state)
{
	ps_table *t = table(true);
	ps_netchg *n = open_net(true, false, 0);
	got g;

	(void)state;
	add(n, t, 1, PS_OP_INSERT, "1", "a", NULL);
	add(n, t, 2, PS_OP_UPDATE, "1", "b", NULL);        /* insert + update: c, no mask */
	add(n, t, 3, PS_OP_UPDATE, "2", NULL, NULL);       /* v not sent: not changed */
	add(n, t, 4, PS_OP_UPDATE, "3", "p", NULL);        /* first update: v counts */
	add(n, t, 5, PS_OP_UPDATE, "4", "q", NULL);
	add(n, t, 6, PS_OP_UPDATE, "2", "s", NULL);        /* then v changes */
	drain(n, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.op[0], 'c');
	assert_string_equal(g.changed[0], "-");
	assert_string_equal(g.key[1], "3");
	assert_string_equal(g.changed[1], "v");
	assert_string_equal(g.key[3], "2");
	assert_string_equal(g.changed[3], "v");
	ps_netchg_close(n);

	n = open_net(false, true, 0);
	add(n, t, 1, PS_OP_INSERT, "1", "a", NULL);
	add(n, t, 2, PS_OP_UPDATE, "2", "b", NULL);
	add(n, t, 3, PS_OP_DELETE, "3", NULL, "3");
	drain(n, &g);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.op[0], 'u');
	assert_string_equal(g.before[0], "");
	assert_int_equal(g.op[1], 'u');
	assert_string_equal(g.before[1], "");   /* merge: before does not matter */
	assert_int_equal(g.op[2], 'd');
	ps_netchg_close(n);
	ps_table_unref(t);
}

static void test_transactions_and_reprocessing(void **state)
{
	ps_table *t = table(true);
	ps_netchg *n = open_net(false, false, 0);
	ps_value nv[2] = {text("9"), text("z")};
	ps_txn redo = txn_at(7, true);
	ps_change *c = ps_change_new(PS_OP_UPDATE, t, nv, NULL, false, 70);
	ps_error err;
	got g;

	(void)state;
	ps_error_clear(&err);
	add(n, t, 1, PS_OP_INSERT, "8", "a", NULL);
	/* a reprocessed change marks the key's event */
	assert_int_equal(ps_netchg_begin(n, &err), PS_OK);
	assert_int_equal(ps_netchg_add(n, &redo, c, &err), PS_OK);
	assert_int_equal(ps_netchg_commit(n, &err), PS_OK);
	/* an open transaction is left out of a drain */
	assert_int_equal(ps_netchg_begin(n, &err), PS_OK);
	assert_int_equal(ps_netchg_add(n, &redo, c, &err), PS_OK);
	nv[0] = text("8");
	ps_change_free(c);
	c = ps_change_new(PS_OP_DELETE, t, NULL, nv, true, 80);
	assert_int_equal(ps_netchg_add(n, &redo, c, &err), PS_OK);
	drain(n, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.op[0], 'c');
	assert_false(g.reproc[0]);
	assert_int_equal(g.op[1], 'u');
	assert_true(g.reproc[1]);
	ps_change_free(c);
	ps_netchg_close(n);
	ps_table_unref(t);
}

static void test_keyless_and_truncate(void **state)
{
	ps_table *k = table(false), *t = table(true);
	ps_netchg *n = open_net(false, false, 0);
	ps_txn txn = txn_at(9, false);
	ps_change *c;
	ps_error err;
	got g;

	(void)state;
	ps_error_clear(&err);
	add(n, k, 1, PS_OP_INSERT, "1", "a", NULL);          /* the same row twice: both kept */
	add(n, k, 2, PS_OP_INSERT, "1", "a", NULL);
	add(n, t, 3, PS_OP_INSERT, "1", "a", NULL);
	add(n, t, 4, PS_OP_UPDATE, "2", "b", NULL);
	c = ps_change_new(PS_OP_TRUNCATE, t, NULL, NULL, false, 5);
	assert_int_equal(ps_netchg_add(n, &txn, c, &err), PS_OK);
	ps_change_free(c);
	add(n, t, 6, PS_OP_INSERT, "3", "c", NULL);
	drain(n, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.op[0], 'c');
	assert_int_equal(g.op[1], 'c');
	assert_int_equal(g.op[2], 't');   /* what the table held before it is gone */
	assert_int_equal(g.op[3], 'c');
	assert_string_equal(g.key[3], "3");
	ps_netchg_close(n);
	ps_table_unref(k);
	ps_table_unref(t);
}

typedef struct span_seen {
	int n;
	long last;
	bool ordered;
} span_seen;

/* Every key once, as an insert, in the order of its last change. */
static int span_cb(const ps_netchg_event *ev, void *p, ps_error *e)
{
	span_seen *s = p;

	(void)e;
	s->n++;
	s->ordered &= (long)ev->change->lsn > s->last && ev->change->op == PS_OP_INSERT;
	s->last = (long)ev->change->lsn;
	return PS_OK;
}

/* More keys than the store's memory holds: it spills, and gives every key
 * back once, in order. */
static void test_span_larger_than_memory(void **state)
{
	ps_table *t = table(true);
	ps_netchg *n = open_net(false, false, 1 << 20);
	char key[16], val[64];
	ps_txn txn = txn_at(1, false);
	ps_error err;
	int total = 60000;
	span_seen s = {0, -1, true};

	(void)state;
	ps_error_clear(&err);
	assert_int_equal(ps_netchg_begin(n, &err), PS_OK);
	for (int i = 0; i < total; i++) {
		ps_value nv[2];
		ps_change *c;
		snprintf(key, sizeof(key), "%d", i % (total / 2));
		snprintf(val, sizeof(val), "value %d with some padding to fill pages", i);
		nv[0] = text(key);
		nv[1] = text(val);
		c = ps_change_new(i < total / 2 ? PS_OP_INSERT : PS_OP_UPDATE, t, nv, NULL, false,
		                  (uint64_t)i);
		assert_int_equal(ps_netchg_add(n, &txn, c, &err), PS_OK);
		ps_change_free(c);
	}
	assert_int_equal(ps_netchg_commit(n, &err), PS_OK);
	assert_int_equal(ps_netchg_count(n), total / 2);
	assert_int_equal(ps_netchg_drain(n, span_cb, &s, &err), PS_OK);
	assert_int_equal(s.n, total / 2);
	assert_true(s.ordered);
	ps_netchg_close(n);
	ps_table_unref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_table),
		cmocka_unit_test(test_every_sequence),
		cmocka_unit_test(test_key_changes),
		cmocka_unit_test(test_merge_and_mask),
		cmocka_unit_test(test_transactions_and_reprocessing),
		cmocka_unit_test(test_keyless_and_truncate),
		cmocka_unit_test(test_span_larger_than_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
