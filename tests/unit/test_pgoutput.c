/*
 * test_pgoutput.c — unit tests of the pgoutput decoder (src/source/pg/pgoutput.c).
 *
 * Fixtures are built byte by byte here, in the wire format PostgreSQL 15
 * sends with proto_version '1', so the tests need no server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source/pg/pgoutput.h"

/* --- fixture builder ------------------------------------------------------ */

typedef struct fx {
	uint8_t b[1024];
	size_t n;
} fx;

static void put8(fx *f, uint8_t v)
{
	assert_true(f->n < sizeof(f->b));
	f->b[f->n++] = v;
}

static void put_be(fx *f, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		put8(f, (uint8_t)(v >> (8 * i)));
}

static void put16(fx *f, uint16_t v) { put_be(f, v, 2); }
static void put32(fx *f, uint32_t v) { put_be(f, v, 4); }
static void put64(fx *f, uint64_t v) { put_be(f, v, 8); }

static void putbytes(fx *f, const void *p, size_t n)
{
	assert_true(f->n + n <= sizeof(f->b));
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void putstr(fx *f, const char *s)
{
	putbytes(f, s, strlen(s) + 1);
}

static void put_text(fx *f, const char *s)
{
	put8(f, 't');
	put32(f, (uint32_t)strlen(s));
	putbytes(f, s, strlen(s));
}

static void put_column(fx *f, uint8_t flags, const char *name, uint32_t oid, int32_t mod)
{
	put8(f, flags);
	putstr(f, name);
	put32(f, oid);
	put32(f, (uint32_t)mod);
}

#define REL_ORDERS 16384u
#define REL_ITEMS 16390u
#define WAL_START 0x16B3F10ull

/* public.orders: id int4 (key), note text, doc jsonb */
static fx fx_relation_orders(void)
{
	fx f = {0};

	put8(&f, 'R');
	put32(&f, REL_ORDERS);
	putstr(&f, "public");
	putstr(&f, "orders");
	put8(&f, 'd');
	put16(&f, 3);
	put_column(&f, 1, "id", 23, -1);
	put_column(&f, 0, "note", 25, -1);
	put_column(&f, 0, "doc", 3802, -1);
	return f;
}

/* public.orders after ALTER TABLE ADD COLUMN amount numeric(10,2) */
static fx fx_relation_orders_v2(void)
{
	fx f = {0};

	put8(&f, 'R');
	put32(&f, REL_ORDERS);
	putstr(&f, "public");
	putstr(&f, "orders");
	put8(&f, 'f');
	put16(&f, 4);
	put_column(&f, 1, "id", 23, -1);
	put_column(&f, 0, "note", 25, -1);
	put_column(&f, 0, "doc", 3802, -1);
	put_column(&f, 0, "amount", 1700, (10 << 16 | 2) + 4);
	return f;
}

/* pg_catalog (empty namespace).items: every type class, two key columns */
static fx fx_relation_items(void)
{
	fx f = {0};

	put8(&f, 'R');
	put32(&f, REL_ITEMS);
	putstr(&f, "");
	putstr(&f, "items");
	put8(&f, 'i');
	put16(&f, 7);
	put_column(&f, 1, "k1", 20, -1);
	put_column(&f, 1, "k2", 16, -1);
	put_column(&f, 0, "f", 701, -1);
	put_column(&f, 0, "j", 114, -1);
	put_column(&f, 0, "b", 17, -1);
	put_column(&f, 0, "v", 1043, 36);
	put_column(&f, 0, "o", 26, -1);
	return f;
}

static fx fx_begin(void)
{
	fx f = {0};

	put8(&f, 'B');
	put64(&f, 0x100000002ull);
	put64(&f, 1000000ull);           /* 2000-01-01 00:00:01 UTC */
	put32(&f, 735);
	return f;
}

static fx fx_commit(void)
{
	fx f = {0};

	put8(&f, 'C');
	put8(&f, 0);
	put64(&f, 0x16B3F10ull);
	put64(&f, 0x16B3F40ull);
	put64(&f, 742000000000000ull);
	return f;
}

static fx fx_origin(void)
{
	fx f = {0};

	put8(&f, 'O');
	put64(&f, 0xABCDEF01ull);
	putstr(&f, "upstream_a");
	return f;
}

static fx fx_type(void)
{
	fx f = {0};

	put8(&f, 'Y');
	put32(&f, 90001);
	putstr(&f, "");
	putstr(&f, "mood");
	return f;
}

/* orders: (42, NULL, unchanged TOAST) */
static fx fx_insert(void)
{
	fx f = {0};

	put8(&f, 'I');
	put32(&f, REL_ORDERS);
	put8(&f, 'N');
	put16(&f, 3);
	put_text(&f, "42");
	put8(&f, 'n');
	put8(&f, 'u');
	return f;
}

static fx fx_insert_v2(void)
{
	fx f = {0};

	put8(&f, 'I');
	put32(&f, REL_ORDERS);
	put8(&f, 'N');
	put16(&f, 4);
	put_text(&f, "7");
	put_text(&f, "hello");
	put_text(&f, "{\"a\":1}");
	put_text(&f, "12.50");
	return f;
}

/* old: 0 = none, 'K' or 'O' */
static fx fx_update(char old)
{
	fx f = {0};

	put8(&f, 'U');
	put32(&f, REL_ORDERS);
	if (old == 'K') {
		put8(&f, 'K');
		put16(&f, 3);
		put_text(&f, "41");
		put8(&f, 'n');
		put8(&f, 'n');
	} else if (old == 'O') {
		put8(&f, 'O');
		put16(&f, 3);
		put_text(&f, "41");
		put_text(&f, "old note");
		put_text(&f, "{}");
	}
	put8(&f, 'N');
	put16(&f, 3);
	put_text(&f, "42");
	put_text(&f, "");
	put8(&f, 'u');
	return f;
}

static fx fx_delete(char old)
{
	fx f = {0};

	put8(&f, 'D');
	put32(&f, REL_ORDERS);
	put8(&f, (uint8_t)old);
	put16(&f, 3);
	put_text(&f, "42");
	if (old == 'K') {
		put8(&f, 'n');
		put8(&f, 'n');
	} else {
		put_text(&f, "bye");
		put8(&f, 'n');
	}
	return f;
}

static fx fx_truncate(void)
{
	fx f = {0};

	put8(&f, 'T');
	put32(&f, 2);
	put8(&f, PS_TRUNCATE_CASCADE | PS_TRUNCATE_RESTART_IDENTITY);
	put32(&f, REL_ORDERS);
	put32(&f, REL_ITEMS);
	return f;
}

static fx fx_message(bool transactional)
{
	static const char content[] = { 'a', '\0', 'b' };
	fx f = {0};

	put8(&f, 'M');
	put8(&f, transactional ? 1 : 0);
	put64(&f, 0x2000010ull);
	putstr(&f, "penstock.test");
	put32(&f, sizeof(content));
	putbytes(&f, content, sizeof(content));
	return f;
}

/* --- helpers -------------------------------------------------------------- */

static int decode(pgo_msg *m, pgo_relcache *c, const fx *f, ps_error *err)
{
	return pgo_decode(m, c, f->b, f->n, WAL_START, err);
}

static void must_decode(pgo_msg *m, pgo_relcache *c, const fx *f)
{
	ps_error err;
	int rc;

	ps_error_clear(&err);
	rc = decode(m, c, f, &err);
	if (rc != 0)
		fail_msg("decode of '%c' failed: %s", f->b[0], err.message);
}

static pgo_relcache *primed_cache(void)
{
	pgo_relcache *c = pgo_relcache_new();
	fx r1 = fx_relation_orders(), r2 = fx_relation_items();
	pgo_msg m;

	assert_non_null(c);
	must_decode(&m, c, &r1);
	pgo_msg_clear(&m);
	must_decode(&m, c, &r2);
	pgo_msg_clear(&m);
	return c;
}

static void assert_text(const ps_value *v, const char *s)
{
	assert_int_equal(v->kind, PS_VALUE_TEXT);
	assert_int_equal(v->len, strlen(s));
	assert_string_equal(v->data, s);
}

static void assert_empty_msg(const pgo_msg *m)
{
	assert_null(m->changes);
	assert_int_equal(m->nchanges, 0);
	assert_null(m->relation);
	assert_int_equal(m->kind, 0);
}

static void expect_eproto(pgo_relcache *c, const fx *f, const char *needle)
{
	ps_error err;
	pgo_msg m;
	int rc;

	ps_error_clear(&err);
	rc = decode(&m, c, f, &err);
	assert_int_equal(rc, PS_EPROTO);
	assert_int_equal(err.code, PS_EPROTO);
	assert_empty_msg(&m);
	if (needle && !strstr(err.message, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err.message, needle);
}

/* --- valid messages ------------------------------------------------------- */

static void test_begin_commit(void **state)
{
	fx b = fx_begin(), c = fx_commit();
	pgo_relcache *cache = pgo_relcache_new();
	pgo_msg m;

	must_decode(&m, cache, &b);
	assert_int_equal(m.kind, PGO_BEGIN);
	assert_true(m.final_lsn == 0x100000002ull);
	assert_true(m.commit_time_us == 946684801000000LL);
	assert_int_equal(m.xid, 735);
	assert_int_equal(m.nchanges, 0);
	pgo_msg_clear(&m);

	must_decode(&m, cache, &c);
	assert_int_equal(m.kind, PGO_COMMIT);
	assert_int_equal(m.commit_flags, 0);
	assert_true(m.commit_lsn == 0x16B3F10ull);
	assert_true(m.end_lsn == 0x16B3F40ull);
	assert_true(m.commit_time_us == 742000000000000LL + PGO_EPOCH_OFFSET_US);
	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
}

static void test_origin_type(void **state)
{
	fx o = fx_origin(), y = fx_type();
	pgo_relcache *cache = pgo_relcache_new();
	pgo_msg m;

	must_decode(&m, cache, &o);
	assert_int_equal(m.kind, PGO_ORIGIN);
	assert_true(m.origin_lsn == 0xABCDEF01ull);
	assert_string_equal(m.origin_name, "upstream_a");
	pgo_msg_clear(&m);

	must_decode(&m, cache, &y);
	assert_int_equal(m.kind, PGO_TYPE);
	assert_int_equal(m.type_id, 90001);
	assert_string_equal(m.type_schema, "pg_catalog");
	assert_string_equal(m.type_name, "mood");
	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
}

static void test_relation(void **state)
{
	static const uint8_t classes[7] = {
		PS_TYPE_INTEGER, PS_TYPE_BOOL, PS_TYPE_FLOAT, PS_TYPE_JSON,
		PS_TYPE_BYTES, PS_TYPE_TEXT, PS_TYPE_INTEGER
	};
	fx r1 = fx_relation_orders(), r2 = fx_relation_items();
	pgo_relcache *cache = pgo_relcache_new();
	pgo_msg m;
	ps_table *t;

	must_decode(&m, cache, &r1);
	assert_int_equal(m.kind, PGO_RELATION);
	t = m.relation;
	assert_non_null(t);
	assert_ptr_equal(t, pgo_relcache_get(cache, REL_ORDERS));
	assert_int_equal(t->id, REL_ORDERS);
	assert_string_equal(t->schema, "public");
	assert_string_equal(t->name, "orders");
	assert_int_equal(t->replica_identity, 'd');
	assert_int_equal(t->ncolumns, 3);
	assert_string_equal(t->columns[0].name, "id");
	assert_true(t->columns[0].is_key);
	assert_int_equal(t->columns[0].type_id, 23);
	assert_int_equal(t->columns[0].type_mod, -1);
	assert_int_equal(t->columns[0].type_class, PS_TYPE_INTEGER);
	assert_string_equal(t->columns[1].name, "note");
	assert_false(t->columns[1].is_key);
	assert_int_equal(t->columns[1].type_class, PS_TYPE_TEXT);
	assert_string_equal(t->columns[2].name, "doc");
	assert_int_equal(t->columns[2].type_class, PS_TYPE_JSON);
	pgo_msg_clear(&m);

	must_decode(&m, cache, &r2);
	t = m.relation;
	assert_string_equal(t->schema, "pg_catalog");
	assert_string_equal(t->name, "items");
	assert_int_equal(t->replica_identity, 'i');
	assert_int_equal(t->ncolumns, 7);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(t->columns[i].type_class, classes[i]);
		assert_int_equal(t->columns[i].is_key, i < 2);
	}
	assert_int_equal(t->columns[5].type_mod, 36);
	pgo_msg_clear(&m);
	assert_null(pgo_relcache_get(cache, 1));
	pgo_relcache_free(cache);
}

static void test_insert(void **state)
{
	fx f = fx_insert();
	pgo_relcache *cache = primed_cache();
	pgo_msg m;
	ps_change *c;

	must_decode(&m, cache, &f);
	assert_int_equal(m.kind, PGO_INSERT);
	assert_int_equal(m.nchanges, 1);
	c = m.changes[0];
	assert_int_equal(c->op, PS_OP_INSERT);
	assert_ptr_equal(c->table, pgo_relcache_get(cache, REL_ORDERS));
	assert_true(c->lsn == WAL_START);
	assert_null(c->old_values);
	assert_non_null(c->new_values);
	assert_text(&c->new_values[0], "42");
	assert_int_equal(c->new_values[1].kind, PS_VALUE_NULL);
	assert_null(c->new_values[1].data);
	assert_int_equal(c->new_values[2].kind, PS_VALUE_UNCHANGED);
	assert_string_equal(c->table->columns[0].name, "id");
	assert_true(c->table->columns[0].is_key);
	/* the change's text does not point into the input buffer */
	assert_true((const uint8_t *)c->new_values[0].data < f.b ||
	            (const uint8_t *)c->new_values[0].data >= f.b + sizeof(f.b));
	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
}

static void test_relation_redefined(void **state)
{
	fx ins = fx_insert(), r2 = fx_relation_orders_v2(), ins2 = fx_insert_v2();
	pgo_relcache *cache = primed_cache();
	ps_table *old_table = pgo_relcache_get(cache, REL_ORDERS);
	ps_change *early, *late;
	pgo_msg m;

	must_decode(&m, cache, &ins);
	early = m.changes[0];
	m.changes[0] = NULL;             /* the caller takes it */
	pgo_msg_clear(&m);

	must_decode(&m, cache, &r2);
	assert_ptr_not_equal(m.relation, old_table);
	assert_int_equal(m.relation->ncolumns, 4);
	assert_int_equal(m.relation->replica_identity, 'f');
	assert_int_equal(m.relation->columns[3].type_class, PS_TYPE_NUMERIC);
	pgo_msg_clear(&m);

	/* the old shape no longer decodes; the new one does */
	expect_eproto(cache, &ins, "tuple has 3 columns");
	must_decode(&m, cache, &ins2);
	late = m.changes[0];
	assert_int_equal(late->table->ncolumns, 4);
	assert_string_equal(late->table->columns[3].name, "amount");
	assert_text(&late->new_values[1], "hello");
	assert_text(&late->new_values[3], "12.50");

	/* the earlier change still holds the old definition (kept alive) */
	assert_ptr_equal(early->table, old_table);
	assert_int_equal(early->table->ncolumns, 3);
	assert_string_equal(early->table->columns[2].name, "doc");
	assert_int_equal(atomic_load(&early->table->refs), 1);

	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
	assert_string_equal(early->table->name, "orders");
	ps_change_free(early);
}

static void test_update(void **state)
{
	fx none = fx_update(0), key = fx_update('K'), full = fx_update('O');
	pgo_relcache *cache = primed_cache();
	pgo_msg m;
	ps_change *c;

	must_decode(&m, cache, &none);
	c = m.changes[0];
	assert_int_equal(c->op, PS_OP_UPDATE);
	assert_null(c->old_values);
	assert_false(c->old_is_key);
	assert_text(&c->new_values[0], "42");
	assert_text(&c->new_values[1], "");
	assert_int_equal(c->new_values[2].kind, PS_VALUE_UNCHANGED);
	pgo_msg_clear(&m);

	must_decode(&m, cache, &key);
	c = m.changes[0];
	assert_non_null(c->old_values);
	assert_true(c->old_is_key);
	assert_text(&c->old_values[0], "41");
	assert_int_equal(c->old_values[1].kind, PS_VALUE_NULL);
	assert_text(&c->new_values[0], "42");
	pgo_msg_clear(&m);

	must_decode(&m, cache, &full);
	c = m.changes[0];
	assert_false(c->old_is_key);
	assert_text(&c->old_values[1], "old note");
	assert_text(&c->old_values[2], "{}");
	assert_text(&c->new_values[0], "42");
	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
}

static void test_delete(void **state)
{
	fx key = fx_delete('K'), full = fx_delete('O');
	pgo_relcache *cache = primed_cache();
	pgo_msg m;
	ps_change *c;

	must_decode(&m, cache, &key);
	assert_int_equal(m.kind, PGO_DELETE);
	c = m.changes[0];
	assert_int_equal(c->op, PS_OP_DELETE);
	assert_null(c->new_values);
	assert_true(c->old_is_key);
	assert_text(&c->old_values[0], "42");
	assert_true(c->lsn == WAL_START);
	pgo_msg_clear(&m);

	must_decode(&m, cache, &full);
	c = m.changes[0];
	assert_false(c->old_is_key);
	assert_text(&c->old_values[1], "bye");
	assert_int_equal(c->old_values[2].kind, PS_VALUE_NULL);
	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
}

static void test_truncate(void **state)
{
	fx f = fx_truncate();
	pgo_relcache *cache = primed_cache();
	pgo_msg m;

	must_decode(&m, cache, &f);
	assert_int_equal(m.kind, PGO_TRUNCATE);
	assert_int_equal(m.nchanges, 2);
	for (int i = 0; i < 2; i++) {
		ps_change *c = m.changes[i];

		assert_int_equal(c->op, PS_OP_TRUNCATE);
		assert_null(c->new_values);
		assert_null(c->old_values);
		assert_int_equal(c->truncate_flags,
		                 PS_TRUNCATE_CASCADE | PS_TRUNCATE_RESTART_IDENTITY);
		assert_true(c->lsn == WAL_START);
	}
	assert_int_equal(m.changes[0]->table->id, REL_ORDERS);
	assert_int_equal(m.changes[1]->table->id, REL_ITEMS);
	/* a taken slot is skipped by clear */
	ps_change_free(m.changes[1]);
	m.changes[1] = NULL;
	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
}

static void test_message(void **state)
{
	fx t = fx_message(true), n = fx_message(false);
	pgo_relcache *cache = pgo_relcache_new();
	pgo_msg m;
	ps_change *c;

	must_decode(&m, cache, &t);
	assert_int_equal(m.kind, PGO_MESSAGE);
	c = m.changes[0];
	assert_int_equal(c->op, PS_OP_MESSAGE);
	assert_null(c->table);
	assert_true(c->message_transactional);
	assert_string_equal(c->message_prefix, "penstock.test");
	assert_int_equal(c->message_len, 3);
	assert_memory_equal(c->message_content, "a\0b", 3);
	assert_true(c->lsn == 0x2000010ull);
	pgo_msg_clear(&m);

	must_decode(&m, cache, &n);
	assert_false(m.changes[0]->message_transactional);
	pgo_msg_clear(&m);
	pgo_relcache_free(cache);
}

static void test_relcache_many(void **state)
{
	pgo_relcache *cache = pgo_relcache_new();
	pgo_msg m;

	for (uint32_t id = 1; id <= 5000; id++) {
		fx f = {0};

		put8(&f, 'R');
		put32(&f, id * 7919u);
		putstr(&f, "s");
		putstr(&f, "t");
		put8(&f, 'd');
		put16(&f, 1);
		put_column(&f, 1, "id", 23, -1);
		must_decode(&m, cache, &f);
		pgo_msg_clear(&m);
	}
	for (uint32_t id = 1; id <= 5000; id++) {
		ps_table *t = pgo_relcache_get(cache, id * 7919u);

		assert_non_null(t);
		assert_int_equal(t->id, id * 7919u);
	}
	assert_null(pgo_relcache_get(cache, 5001u * 7919u));
	pgo_relcache_free(cache);
}

/* --- errors --------------------------------------------------------------- */

static fx all_fixtures(int i)
{
	switch (i) {
	case 0: return fx_begin();
	case 1: return fx_commit();
	case 2: return fx_origin();
	case 3: return fx_type();
	case 4: return fx_relation_orders();
	case 5: return fx_relation_items();
	case 6: return fx_insert();
	case 7: return fx_update(0);
	case 8: return fx_update('K');
	case 9: return fx_update('O');
	case 10: return fx_delete('K');
	case 11: return fx_delete('O');
	case 12: return fx_truncate();
	case 13: return fx_message(true);
	case 14: return fx_message(false);
	default: return fx_relation_orders_v2();
	}
}
#define NFIXTURES 16

static void test_every_prefix_fails(void **state)
{
	pgo_relcache *cache = primed_cache();
	ps_table *orders = pgo_relcache_get(cache, REL_ORDERS);

	for (int i = 0; i < NFIXTURES; i++) {
		fx f = all_fixtures(i);
		size_t full = f.n;

		for (f.n = 0; f.n < full; f.n++)
			expect_eproto(cache, &f, NULL);
		/* a failed Relation message leaves the cache alone */
		assert_ptr_equal(pgo_relcache_get(cache, REL_ORDERS), orders);
	}
	pgo_relcache_free(cache);
}

static void test_truncation_message(void **state)
{
	fx f = fx_update(0);
	pgo_relcache *cache = primed_cache();

	f.n = 16;       /* 'U' relid 'N' ncols 't' len "42" 't' | second length cut */
	expect_eproto(cache, &f, "pgoutput Update message: truncated at byte 16 (need 4 more)");
	f.n = 18;
	expect_eproto(cache, &f, "pgoutput Update message: truncated at byte 16 (need 2 more)");
	f.n = 0;
	expect_eproto(cache, &f, "empty");
	pgo_relcache_free(cache);
}

static void test_errors(void **state)
{
	pgo_relcache *cache = primed_cache();
	fx f;

	f = (fx){0};
	put8(&f, 'Z');
	put32(&f, 1);
	expect_eproto(cache, &f, "unknown message type 0x5a at byte 0");

	f = fx_insert();
	f.b[4] = 0x99;  /* relid 16384 -> 16537 */
	expect_eproto(cache, &f, "pgoutput Insert message: relation OID 16537 not described");

	f = fx_truncate();
	f.b[f.n - 1] = 0x01;
	expect_eproto(cache, &f, "not described by a Relation message");

	f = fx_insert();
	f.b[7] = 2;     /* column count 3 -> 2 */
	expect_eproto(cache, &f, "tuple has 2 columns");
	f.b[6] = 0xFF;  /* column count negative */
	expect_eproto(cache, &f, "negative column count");

	f = fx_insert();
	f.b[8] = 'b';
	expect_eproto(cache, &f, "binary tuple data not requested");
	f.b[8] = 'x';
	expect_eproto(cache, &f, "unknown tuple data kind");

	f = fx_insert();
	f.b[9] = 0x80;  /* negative text length */
	expect_eproto(cache, &f, "negative value length");

	f = fx_update(0);
	f.b[5] = 'X';
	expect_eproto(cache, &f, "unexpected tuple marker");
	f = fx_delete('K');
	f.b[5] = 'N';
	expect_eproto(cache, &f, "expected 'K' or 'O'");
	f = fx_insert();
	f.b[5] = 'K';
	expect_eproto(cache, &f, "expected 'N'");

	f = fx_origin();
	f.n--;          /* drop the name's NUL */
	expect_eproto(cache, &f, "no terminating NUL");

	f = fx_relation_orders();
	put8(&f, 0xAA);
	expect_eproto(cache, &f, "1 trailing bytes at byte");

	for (int i = 0; i < NFIXTURES; i++) {
		f = all_fixtures(i);
		put8(&f, 0);
		put8(&f, 0);
		expect_eproto(cache, &f, "2 trailing bytes");
	}

	f = fx_message(true);
	f.b[24] = 0x7F;    /* content length far larger than the buffer */
	expect_eproto(cache, &f, "truncated");
	f.b[24] = 0x80;
	expect_eproto(cache, &f, "negative content length");

	f = fx_truncate();
	f.b[1] = 0x7F;
	expect_eproto(cache, &f, "truncated at byte 6");

	f = fx_relation_orders();
	f.b[19] = 'x';     /* replica identity */
	expect_eproto(cache, &f, "unknown replica identity");

	/* a wire name with a newline is quoted safely (one line, no overflow) */
	f = (fx){0};
	put8(&f, 'R');
	put32(&f, 777);
	putstr(&f, "evil\nschema");
	putstr(&f, "tab\tle");
	put8(&f, 'd');
	put16(&f, 0);
	{
		pgo_msg m;

		must_decode(&m, cache, &f);
		pgo_msg_clear(&m);
	}
	f = (fx){0};
	put8(&f, 'I');
	put32(&f, 777);
	put8(&f, 'N');
	put16(&f, 1);
	put8(&f, 'n');
	expect_eproto(cache, &f, "relation evil?schema.tab?le (OID 777) has 0");

	f = fx_begin();
	f.b[9] = 0x7F;     /* timestamp near INT64_MAX overflows the conversion */
	f.b[10] = 0xFF;
	f.b[11] = 0xFF;
	expect_eproto(cache, &f, "out of range");
	pgo_relcache_free(cache);
}

static void test_bad_arguments(void **state)
{
	pgo_relcache *cache = pgo_relcache_new();
	fx f = fx_begin();
	pgo_msg m;
	ps_error err;

	assert_int_equal(pgo_decode(&m, NULL, f.b, f.n, 0, &err), PS_EINVAL);
	assert_int_equal(pgo_decode(&m, cache, NULL, 5, 0, &err), PS_EINVAL);
	assert_int_equal(pgo_decode(NULL, cache, f.b, f.n, 0, NULL), PS_EINVAL);
	assert_null(pgo_relcache_get(NULL, 1));
	pgo_msg_clear(NULL);
	pgo_relcache_free(NULL);
	pgo_relcache_free(cache);
}

/* --- type classes and LSNs ------------------------------------------------ */

static void test_type_class(void **state)
{
	assert_int_equal(pgo_type_class(16), PS_TYPE_BOOL);
	assert_int_equal(pgo_type_class(20), PS_TYPE_INTEGER);
	assert_int_equal(pgo_type_class(21), PS_TYPE_INTEGER);
	assert_int_equal(pgo_type_class(23), PS_TYPE_INTEGER);
	assert_int_equal(pgo_type_class(26), PS_TYPE_INTEGER);
	assert_int_equal(pgo_type_class(700), PS_TYPE_FLOAT);
	assert_int_equal(pgo_type_class(701), PS_TYPE_FLOAT);
	assert_int_equal(pgo_type_class(1700), PS_TYPE_NUMERIC);
	assert_int_equal(pgo_type_class(114), PS_TYPE_JSON);
	assert_int_equal(pgo_type_class(3802), PS_TYPE_JSON);
	assert_int_equal(pgo_type_class(17), PS_TYPE_BYTES);
	assert_int_equal(pgo_type_class(25), PS_TYPE_TEXT);
	assert_int_equal(pgo_type_class(1184), PS_TYPE_TIMESTAMPTZ);
	assert_int_equal(pgo_type_class(1114), PS_TYPE_TIMESTAMP);
	assert_int_equal(pgo_type_class(1082), PS_TYPE_DATE);
	assert_int_equal(pgo_type_class(1083), PS_TYPE_TIME);
	assert_int_equal(pgo_type_class(2950), PS_TYPE_UUID);
	assert_int_equal(pgo_type_class(1266), PS_TYPE_TEXT);           /* timetz: text */
	assert_int_equal(pgo_type_class(0), PS_TYPE_TEXT);
}

static void test_lsn(void **state)
{
	static const uint64_t values[] = {
		0, 1, 0x16B3F10ull, 0x100000000ull, 0xFFFFFFFFFFFFFFFFull, 0x1234ABCD00000001ull
	};
	static const char *const bad[] = {
		"", "0/", "/0", "G/1", "1/2/3", "123456789/0", "0/123456789", " 0/1",
		"0/1 ", "0x1/2", "-1/2", "+1/2", "1", "1/G"
	};
	char buf[PS_POSITION_MAX];
	uint64_t v;

	pgo_lsn_format(0x16B3F10ull, buf, sizeof(buf));
	assert_string_equal(buf, "0/16B3F10");
	pgo_lsn_format(0xFFFFFFFFFFFFFFFFull, buf, sizeof(buf));
	assert_string_equal(buf, "FFFFFFFF/FFFFFFFF");
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		pgo_lsn_format(values[i], buf, sizeof(buf));
		assert_int_equal(pgo_lsn_parse(buf, &v), 0);
		assert_true(v == values[i]);
	}
	assert_int_equal(pgo_lsn_parse("abcdef01/0000000a", &v), 0);
	assert_true(v == 0xABCDEF010000000Aull);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 77;
		if (pgo_lsn_parse(bad[i], &v) != PS_EINVAL)
			fail_msg("pgo_lsn_parse accepted \"%s\"", bad[i]);
		assert_true(v == 77);
	}
	assert_int_equal(pgo_lsn_parse(NULL, &v), PS_EINVAL);
}

/* --- fuzz ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static void mutate(fx *f)
{
	int edits = 1 + (int)(rng() % 4);

	for (int e = 0; e < edits; e++) {
		switch (rng() % 6) {
		case 0:
		case 1:         /* random byte */
			if (f->n)
				f->b[rng() % f->n] = (uint8_t)rng();
			break;
		case 2:         /* flip one bit */
			if (f->n)
				f->b[rng() % f->n] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 3:         /* extreme byte (0x00, 0x7F, 0x80, 0xFF) */
			if (f->n)
				f->b[rng() % f->n] = (uint8_t[]){0x00, 0x7F, 0x80, 0xFF}[rng() % 4];
			break;
		case 4:         /* cut */
			f->n = f->n ? (size_t)(rng() % (f->n + 1)) : 0;
			break;
		default:        /* extend with random bytes */
			for (int k = (int)(rng() % 16); k > 0 && f->n < sizeof(f->b); k--)
				f->b[f->n++] = (uint8_t)rng();
			break;
		}
	}
}

static void test_fuzz(void **state)
{
	pgo_relcache *cache = primed_cache();
	long ok = 0, proto = 0;

	for (long iter = 0; iter < 200000; iter++) {
		fx f = all_fixtures((int)(rng() % NFIXTURES));
		ps_error err;
		pgo_msg m;
		int rc;

		if (iter % 4096 == 4095) {
			pgo_relcache_free(cache);
			cache = primed_cache();
		}
		mutate(&f);
		rc = decode(&m, cache, &f, &err);
		if (rc == 0) {
			ok++;
			pgo_msg_clear(&m);
		} else if (rc == PS_EPROTO) {
			proto++;
			assert_empty_msg(&m);
			assert_non_null(strstr(err.message, "pgoutput"));
		} else {
			fail_msg("iteration %ld: rc %d (%s)", iter, rc, err.message);
		}
	}
	/* both outcomes must have been exercised */
	assert_true(ok > 1000);
	assert_true(proto > 1000);
	pgo_relcache_free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_commit),
		cmocka_unit_test(test_origin_type),
		cmocka_unit_test(test_relation),
		cmocka_unit_test(test_insert),
		cmocka_unit_test(test_relation_redefined),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_message),
		cmocka_unit_test(test_relcache_many),
		cmocka_unit_test(test_every_prefix_fails),
		cmocka_unit_test(test_truncation_message),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_type_class),
		cmocka_unit_test(test_lsn),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
