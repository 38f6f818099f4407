/*
 * test_compare.c — the canonical text of values (src/compare/canon.c), LSN
 * parsing, row hashing and the row-set difference (src/compare/rows.c).
 * Servers are exercised by tests/integration/test_compare.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "compare/cmp_internal.h"

static void canon_is(uint8_t kind, const char *in, const char *want)
{
	ps_buf b;

	ps_buf_init(&b, 1 << 20);
	assert_int_equal(ps__cmp_canon(kind, in, strlen(in), &b), PS_OK);
	assert_non_null(b.data);
	assert_string_equal(b.data, want);
	ps_buf_free(&b);
}

static bool eq(uint8_t kind, const char *a, const char *b)
{
	return ps__cmp_equal(kind, a, a ? strlen(a) : 0, b, b ? strlen(b) : 0);
}

static void test_numeric_and_int(void **state)
{
	(void)state;
	canon_is(CMP_NUMERIC, "1.50", "1.5");
	canon_is(CMP_NUMERIC, "001.500", "1.5");
	canon_is(CMP_NUMERIC, "-0.00", "0");
	canon_is(CMP_NUMERIC, "-0.010", "-0.01");
	canon_is(CMP_NUMERIC, ".5", "0.5");
	canon_is(CMP_NUMERIC, "12.", "12");
	canon_is(CMP_NUMERIC, "NaN", "NaN");
	canon_is(CMP_NUMERIC, "1e5", "1e5");         /* not our form: left alone */
	canon_is(CMP_INT, "+0042", "42");
	canon_is(CMP_INT, "-0", "0");
	canon_is(CMP_INT, "9223372036854775808", "9223372036854775808");
	assert_true(eq(CMP_NUMERIC, "1.50", "1.5"));
	assert_false(eq(CMP_NUMERIC, "1.51", "1.5"));
	assert_false(eq(CMP_NUMERIC, "15", "1.5"));
	assert_false(eq(CMP_TEXT, "1.50", "1.5"));   /* text is text */
}

static void test_float_bool_bytea(void **state)
{
	(void)state;
	assert_true(eq(CMP_FLOAT, "-2.5e-05", "-2.5000000000000001e-05"));
	assert_true(eq(CMP_FLOAT, "1.5", "1.5"));
	assert_true(eq(CMP_FLOAT, "-0", "0"));
	assert_true(eq(CMP_FLOAT, "NaN", "NaN"));
	assert_false(eq(CMP_FLOAT, "NaN", "Infinity"));
	assert_false(eq(CMP_FLOAT, "0.1", "0.10000000000000002"));
	canon_is(CMP_BOOL, "true", "t");
	canon_is(CMP_BOOL, "1", "t");
	canon_is(CMP_BOOL, "0", "f");
	assert_false(eq(CMP_BOOL, "t", "f"));
	canon_is(CMP_BYTEA, "\\x00FFab", "\\x00ffab");
	assert_true(eq(CMP_BYTEA, "\\x", "\\x"));
	assert_false(eq(CMP_BYTEA, "\\x00", "\\x0000"));
	/* NULL only equals NULL; "" is not NULL */
	assert_true(eq(CMP_TEXT, NULL, NULL));
	assert_false(eq(CMP_TEXT, "", NULL));
}

static void test_timestamptz_moves_to_utc(void **state)
{
	(void)state;
	canon_is(CMP_TSTZ, "2024-06-01 12:00:00+05:30", "2024-06-01 06:30:00+00");
	canon_is(CMP_TSTZ, "2024-06-01 06:30:00+00", "2024-06-01 06:30:00+00");
	canon_is(CMP_TSTZ, "2024-03-01 01:00:00.123456+02", "2024-02-29 23:00:00.123456+00");
	canon_is(CMP_TSTZ, "2023-12-31 22:00:00-03", "2024-01-01 01:00:00+00");
	canon_is(CMP_TSTZ, "2024-01-01T00:00:00+00:00", "2024-01-01 00:00:00+00");
	canon_is(CMP_TSTZ, "infinity", "infinity");
	canon_is(CMP_TSTZ, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC");
	assert_true(eq(CMP_TSTZ, "2024-06-01 12:00:00+05:30", "2024-06-01 06:30:00+00"));
	assert_false(eq(CMP_TSTZ, "2024-06-01 12:00:00+05:30", "2024-06-01 12:00:00+00"));
}

static void test_lsn(void **state)
{
	uint64_t v = 0;
	(void)state;
	assert_int_equal(ps__cmp_parse_lsn("16/B374D848", &v), PS_OK);
	assert_true(v == 0x16B374D848ULL);
	assert_int_equal(ps__cmp_parse_lsn("0/0", &v), PS_OK);
	assert_true(v == 0);
	assert_int_equal(ps__cmp_parse_lsn("FFFFFFFF/FFFFFFFF", &v), PS_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(ps__cmp_parse_lsn("16B374D848", &v), PS_EINVAL);
	assert_int_equal(ps__cmp_parse_lsn("1/", &v), PS_EINVAL);
	assert_int_equal(ps__cmp_parse_lsn("/1", &v), PS_EINVAL);
	assert_int_equal(ps__cmp_parse_lsn("1/G", &v), PS_EINVAL);
	assert_int_equal(ps__cmp_parse_lsn("100000000/0", &v), PS_EINVAL);
}

/* a two-column table: id int key, v numeric */
static cmp_table two_cols(void)
{
	static char *cols[] = {"id", "v"};
	static uint8_t kind[] = {CMP_INT, CMP_NUMERIC};
	static int key[] = {0};
	cmp_table t;

	memset(&t, 0, sizeof(t));
	t.schema = "public";
	t.name = "t";
	t.ncols = 2;
	t.cols = cols;
	t.kind = kind;
	t.nkey = 1;
	t.key = key;
	return t;
}

static void add(cmp_rows *s, const cmp_table *t, const char *id, const char *v)
{
	const char *vals[2] = {id, v};
	size_t lens[2] = {strlen(id), v ? strlen(v) : 0};
	ps_error err;

	assert_int_equal(ps__cmp_rows_add(s, t, vals, lens, &err), PS_OK);
}

static void test_rows_diff_classes(void **state)
{
	cmp_table t = two_cols();
	cmp_rows src, tgt;
	cmp_items d = {0};
	ps_error err;
	(void)state;

	ps__cmp_rows_init(&src, 100);
	ps__cmp_rows_init(&tgt, 100);
	/* different orders on each side; "010" and "10" are the same key */
	add(&src, &t, "3", "1.50");
	add(&src, &t, "1", "1");
	add(&src, &t, "2", NULL);
	add(&src, &t, "10", "7");
	add(&tgt, &t, "4", "0");
	add(&tgt, &t, "2", "");
	add(&tgt, &t, "010", "7.0");
	add(&tgt, &t, "3", "1.5");
	assert_int_equal(ps__cmp_rows_diff(&t, &src, &tgt, &d, &err), PS_OK);
	assert_int_equal(d.n, 3);
	for (size_t i = 0; i < d.n; i++) {
		const cmp_row *r = ps__cmp_item_row(&d.v[i]);
		if (d.v[i].kind == PS_DIFF_MISSING_IN_TARGET)
			assert_string_equal(r->val[0], "1");
		else if (d.v[i].kind == PS_DIFF_EXTRA_IN_TARGET)
			assert_string_equal(r->val[0], "4");
		else
			assert_string_equal(r->val[0], "2");   /* NULL vs "" */
	}
	ps__cmp_items_free(&d);
	ps__cmp_rows_free(&src);
	ps__cmp_rows_free(&tgt);
}

static void test_rows_limit_and_hash(void **state)
{
	cmp_table t = two_cols();
	cmp_rows s;
	const char *a[2] = {"1", "1.50"}, *b[2] = {"1", "1.5"}, *c[2] = {"1", NULL},
	           *e[2] = {"1", ""};
	size_t la[2] = {1, 4}, lb[2] = {1, 3}, lc[2] = {1, 0}, le[2] = {1, 0};
	uint64_t ha[2], hb[2], hc[2], he[2];
	ps_buf scratch;
	ps_error err;
	(void)state;

	ps__cmp_rows_init(&s, 1);
	add(&s, &t, "1", "x");
	assert_int_equal(ps__cmp_rows_add(&s, &t, a, la, &err), PS_ETOOBIG);
	assert_non_null(strstr(err.message, "--chunk-rows"));
	ps__cmp_rows_free(&s);
	ps_buf_init(&scratch, 1 << 20);
	ps__cmp_row_hash(&t, a, la, &scratch, ha);
	ps__cmp_row_hash(&t, b, lb, &scratch, hb);
	ps__cmp_row_hash(&t, c, lc, &scratch, hc);
	ps__cmp_row_hash(&t, e, le, &scratch, he);
	assert_true(ha[0] == hb[0] && ha[1] == hb[1]);   /* canonical: 1.50 = 1.5 */
	assert_true(hc[0] != he[0] || hc[1] != he[1]);   /* NULL is not "" */
	ps_buf_free(&scratch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numeric_and_int),
		cmocka_unit_test(test_float_bool_bytea),
		cmocka_unit_test(test_timestamptz_moves_to_utc),
		cmocka_unit_test(test_lsn),
		cmocka_unit_test(test_rows_diff_classes),
		cmocka_unit_test(test_rows_limit_and_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
