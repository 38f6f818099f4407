/*
 * test_sqlite_typemap.c — the PostgreSQL -> SQLite type map (src/sink/sqlite/sqlite_typemap.c).
 *
 * The mapping rules are checked here on their own; test_sqlite.c checks the
 * same conversions end to end, through real SQLite files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sink/sqlite/sqlite_typemap.h"
#include "penstock/error.h"

static ps_column col(uint32_t oid, uint8_t type_class)
{
	ps_column c = {"c", oid, -1, type_class, false};
	return c;
}

static ps_value vtext(const char *s)
{
	ps_value v = {PS_VALUE_TEXT, (uint32_t)strlen(s), s};
	return v;
}

static void test_storage_by_class_and_oid(void **state)
{
	ps_column c;
	ps_column_def d = {0};
	(void)state;

	c = col(23, PS_TYPE_INTEGER);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_INTEGER);
	c = col(16, PS_TYPE_BOOL);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_BOOL);
	c = col(701, PS_TYPE_FLOAT);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_REAL);
	c = col(1700, PS_TYPE_NUMERIC);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_TEXT);
	c = col(3802, PS_TYPE_JSON);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_TEXT);
	c = col(17, PS_TYPE_BYTES);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_BLOB);
	/* A source that leaves the class at TEXT: the OID decides. */
	c = col(20, PS_TYPE_TEXT);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_INTEGER);
	c = col(700, PS_TYPE_TEXT);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_REAL);
	c = col(1007, PS_TYPE_TEXT);   /* integer[] */
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_TEXT);
	c = col(1184, PS_TYPE_TEXT);   /* timestamptz */
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_TEXT);
	/* No OID: the SQL spelling decides. */
	c = col(0, PS_TYPE_TEXT);
	d.sql_type = "bigint";
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, &d), PS_SQLITE_INTEGER);
	d.sql_type = "double precision";
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, &d), PS_SQLITE_REAL);
	d.sql_type = "bigint[]";
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, &d), PS_SQLITE_TEXT);
	d.sql_type = "numeric(12,2)";
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, &d), PS_SQLITE_TEXT);
	assert_int_equal(ps_typemap_sqlite("postgresql", &c, NULL), PS_SQLITE_TEXT);

	assert_string_equal(ps_typemap_sqlite_decl(PS_SQLITE_INTEGER), "INTEGER");
	assert_string_equal(ps_typemap_sqlite_decl(PS_SQLITE_BOOL), "INTEGER");
	assert_string_equal(ps_typemap_sqlite_decl(PS_SQLITE_REAL), "REAL");
	assert_string_equal(ps_typemap_sqlite_decl(PS_SQLITE_BLOB), "BLOB");
	assert_string_equal(ps_typemap_sqlite_decl(PS_SQLITE_TEXT), "TEXT");
}

static void test_convert_integer(void **state)
{
	ps_sqlite_datum d;
	ps_value v;
	const char *why = NULL;
	(void)state;

	v = vtext("-9223372036854775808");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_INTEGER, &v, NULL, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_INTEGER);
	assert_true(d.i == INT64_MIN);
	/* Wider than 64 bits (MySQL BIGINT UNSIGNED): kept exactly, as text. */
	v = vtext("18446744073709551615");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_INTEGER, &v, NULL, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_TEXT);
	assert_int_equal(d.n, 20);
	v = vtext(" 12");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_INTEGER, &v, NULL, &d, &why),
	                 PS_EINVAL);
	assert_non_null(why);
	v = vtext("12x");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_INTEGER, &v, NULL, &d, &why),
	                 PS_EINVAL);
	v = vtext("");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_INTEGER, &v, NULL, &d, &why),
	                 PS_EINVAL);
}

static void test_convert_bool_real(void **state)
{
	ps_sqlite_datum d;
	ps_value v;
	const char *why = NULL;
	(void)state;

	v = vtext("t");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_BOOL, &v, NULL, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_INTEGER);
	assert_int_equal(d.i, 1);
	v = vtext("f");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_BOOL, &v, NULL, &d, &why), 0);
	assert_int_equal(d.i, 0);
	v = vtext("yes");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_BOOL, &v, NULL, &d, &why),
	                 PS_EINVAL);

	v = vtext("0.1");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_REAL, &v, NULL, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_REAL);
	assert_true(d.r == 0.1);
	v = vtext("4.9406564584124654e-324");   /* subnormal: strtod sets ERANGE */
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_REAL, &v, NULL, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_REAL);
	assert_true(d.r > 0);
	for (int i = 0; i < 3; i++) {
		const char *special[] = {"NaN", "Infinity", "-Infinity"};

		v = vtext(special[i]);
		assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_REAL, &v, NULL, &d, &why), 0);
		assert_int_equal(d.type, PS_DATUM_TEXT);
		assert_memory_equal(d.p, special[i], strlen(special[i]));
	}
	v = vtext("1.5abc");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_REAL, &v, NULL, &d, &why),
	                 PS_EINVAL);
}

static void test_convert_blob_text_null(void **state)
{
	unsigned char scratch[8];
	ps_sqlite_datum d;
	ps_value v;
	ps_value vnull = {PS_VALUE_NULL, 0, NULL};
	ps_value vunch = {PS_VALUE_UNCHANGED, 0, NULL};
	const char *why = NULL;
	(void)state;

	v = vtext("\\x00ff7A");
	assert_int_equal(ps_typemap_sqlite_scratch(PS_SQLITE_BLOB, &v), 3);
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_BLOB, &v, scratch, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_BLOB);
	assert_int_equal(d.n, 3);
	assert_memory_equal(d.p, "\x00\xff\x7a", 3);
	v = vtext("\\x");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_BLOB, &v, scratch, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_BLOB);
	assert_int_equal(d.n, 0);
	assert_non_null(d.p);
	v = vtext("\\x0g");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_BLOB, &v, scratch, &d, &why),
	                 PS_EINVAL);
	v = vtext("abc");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_BLOB, &v, scratch, &d, &why),
	                 PS_EINVAL);

	v = vtext("1.50");
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_TEXT, &v, NULL, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_TEXT);
	assert_ptr_equal(d.p, v.data);
	assert_int_equal(d.n, 4);

	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_INTEGER, &vnull, NULL, &d, &why), 0);
	assert_int_equal(d.type, PS_DATUM_NULL);
	assert_int_equal(ps_typemap_sqlite_convert(PS_SQLITE_TEXT, &vunch, NULL, &d, &why),
	                 PS_EINVAL);
	assert_non_null(strstr(why, "unchanged"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_by_class_and_oid),
		cmocka_unit_test(test_convert_integer),
		cmocka_unit_test(test_convert_bool_real),
		cmocka_unit_test(test_convert_blob_text_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
