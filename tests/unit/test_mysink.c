/*
 * test_mysink.c — the pure parts of the MySQL / MariaDB sink: the type map
 * of created columns (src/sink/mysql/mysink_typemap.c), how values become
 * MariaDB's and what is refused, how existing columns are written and
 * compared, LOAD DATA escaping, identifier limits, and the sink's place in
 * the registry. tests/integration/test_sink_mysql.py checks the same rules
 * against a real MariaDB.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "sink/mysql/mysink.h"
#include "sink/mysql/mysink_typemap.h"

/* The created type of a PostgreSQL column, or "!" + why. */
static const char *pg_type(const char *sql_type, int cls, bool user, bool key)
{
	static char out[512];
	char type[128], why[300];
	mys_type_in in = {"postgresql", sql_type, cls, user, key};

	if (ps__mys_type_for(&in, type, sizeof(type), why, sizeof(why)) != PS_OK)
		snprintf(out, sizeof(out), "!%s", why);
	else
		snprintf(out, sizeof(out), "%s", type);
	return out;
}

static void test_postgresql_types(void **state)
{
	(void)state;
	assert_string_equal(pg_type("boolean", PS_TYPE_BOOL, false, false), "TINYINT(1)");
	assert_string_equal(pg_type("smallint", PS_TYPE_INTEGER, false, false), "SMALLINT");
	assert_string_equal(pg_type("integer", PS_TYPE_INTEGER, false, false), "INT");
	assert_string_equal(pg_type("bigint", PS_TYPE_INTEGER, false, false), "BIGINT");
	assert_string_equal(pg_type("real", PS_TYPE_FLOAT, false, false), "FLOAT");
	assert_string_equal(pg_type("double precision", PS_TYPE_FLOAT, false, false), "DOUBLE");
	assert_string_equal(pg_type("numeric(12,2)", PS_TYPE_NUMERIC, false, false), "DECIMAL(12,2)");
	assert_string_equal(pg_type("numeric(65,38)", PS_TYPE_NUMERIC, false, false),
	                    "DECIMAL(65,38)");
	assert_string_equal(pg_type("numeric(10)", PS_TYPE_NUMERIC, false, false), "DECIMAL(10,0)");
	assert_string_equal(pg_type("character varying(10)", PS_TYPE_TEXT, false, false),
	                    "VARCHAR(10)");
	assert_string_equal(pg_type("character varying(20000)", PS_TYPE_TEXT, false, false),
	                    "MEDIUMTEXT");
	assert_string_equal(pg_type("character varying", PS_TYPE_TEXT, false, false), "LONGTEXT");
	assert_string_equal(pg_type("character(3)", PS_TYPE_TEXT, false, false), "CHAR(3)");
	assert_string_equal(pg_type("character(300)", PS_TYPE_TEXT, false, false), "VARCHAR(300)");
	assert_string_equal(pg_type("text", PS_TYPE_TEXT, false, false), "LONGTEXT");
	assert_string_equal(pg_type("text", PS_TYPE_TEXT, false, true), "VARCHAR(768)");
	assert_string_equal(pg_type("bytea", PS_TYPE_BYTES, false, false), "LONGBLOB");
	assert_string_equal(pg_type("bytea", PS_TYPE_BYTES, false, true), "VARBINARY(3072)");
	assert_string_equal(pg_type("date", PS_TYPE_DATE, false, false), "DATE");
	assert_string_equal(pg_type("time without time zone", PS_TYPE_TIME, false, false), "TIME(6)");
	assert_string_equal(pg_type("time(3) without time zone", PS_TYPE_TIME, false, false),
	                    "TIME(3)");
	assert_string_equal(pg_type("time with time zone", PS_TYPE_TEXT, false, false), "VARCHAR(32)");
	assert_string_equal(pg_type("timestamp without time zone", PS_TYPE_TIMESTAMP, false, false),
	                    "DATETIME(6)");
	assert_string_equal(pg_type("timestamp(0) with time zone", PS_TYPE_TIMESTAMPTZ, false, false),
	                    "DATETIME(0)");
	assert_string_equal(pg_type("interval", PS_TYPE_TEXT, false, false), "VARCHAR(100)");
	assert_string_equal(pg_type("uuid", PS_TYPE_UUID, false, false), "UUID");
	assert_string_equal(pg_type("jsonb", PS_TYPE_JSON, false, false), "JSON");
	assert_string_equal(pg_type("inet", PS_TYPE_TEXT, false, false), "VARCHAR(43)");
	assert_string_equal(pg_type("bit(8)", PS_TYPE_TEXT, false, false), "VARCHAR(8)");
	assert_string_equal(pg_type("integer[]", PS_TYPE_TEXT, false, false), "LONGTEXT");
	assert_string_equal(pg_type("mood", PS_TYPE_TEXT, true, false), "LONGTEXT");
	assert_string_equal(pg_type("money", PS_TYPE_TEXT, false, false), "VARCHAR(64)");
}

static void test_postgresql_types_without_an_exact_home(void **state)
{
	(void)state;
	assert_non_null(strstr(pg_type("numeric", PS_TYPE_NUMERIC, false, false), "no precision"));
	assert_int_equal(pg_type("numeric", PS_TYPE_NUMERIC, false, false)[0], '!');
	assert_non_null(strstr(pg_type("numeric(70,2)", PS_TYPE_NUMERIC, false, false),
	                       "does not fit"));
	assert_non_null(strstr(pg_type("numeric(10,40)", PS_TYPE_NUMERIC, false, false),
	                       "does not fit"));
	/* a domain over numeric without a precision */
	assert_int_equal(pg_type("amount", PS_TYPE_NUMERIC, true, false)[0], '!');
	/* a key of 1000 characters cannot be indexed whole */
	assert_non_null(strstr(pg_type("character varying(1000)", PS_TYPE_TEXT, false, true),
	                       "3072 bytes"));
}

static void test_other_engines(void **state)
{
	char type[128], why[300];
	mys_type_in mysql = {"mysql", "enum('a','b''c')", PS_TYPE_TEXT, false, false};
	mys_type_in evil = {"mysql", "int; DROP TABLE x", PS_TYPE_INTEGER, false, false};
	mys_type_in key = {"mysql", "longtext", PS_TYPE_TEXT, false, true};
	mys_type_in none = {NULL, NULL, PS_TYPE_TIMESTAMPTZ, false, false};
	(void)state;

	assert_int_equal(ps__mys_type_for(&mysql, type, sizeof(type), why, sizeof(why)), PS_OK);
	assert_string_equal(type, "enum('a','b''c')");
	assert_int_equal(ps__mys_type_for(&evil, type, sizeof(type), why, sizeof(why)), PS_EINVAL);
	assert_int_equal(ps__mys_type_for(&key, type, sizeof(type), why, sizeof(why)), PS_OK);
	assert_string_equal(type, "VARCHAR(768)");
	assert_int_equal(ps__mys_type_for(&none, type, sizeof(type), why, sizeof(why)), PS_OK);
	assert_string_equal(type, "DATETIME(6)");
}

/* ps__mys_convert of v for a column of (data_type, column_type, class). */
static const char *conv(const char *data_type, const char *column_type, int cls, const char *v,
                        size_t *len)
{
	static char out[256];
	char scratch[256];
	const char *p, *why;
	size_t n;
	mys_col c;

	ps__mys_col_from_catalog(&c, data_type, column_type, "utf8mb4", false, cls);
	if (ps__mys_convert(&c, v, strlen(v), scratch, &p, &n, &why) != PS_OK) {
		snprintf(out, sizeof(out), "!%s", why);
		n = strlen(out);
	} else {
		memcpy(out, p, n);
		out[n] = '\0';
	}
	if (len)
		*len = n;
	return out;
}

static void test_values(void **state)
{
	size_t n;
	(void)state;

	assert_string_equal(conv("tinyint", "tinyint(1)", PS_TYPE_BOOL, "t", NULL), "1");
	assert_string_equal(conv("tinyint", "tinyint(1)", PS_TYPE_BOOL, "f", NULL), "0");
	assert_int_equal(conv("tinyint", "tinyint(1)", PS_TYPE_BOOL, "maybe", NULL)[0], '!');
	assert_string_equal(conv("varchar", "varchar(5)", PS_TYPE_BOOL, "t", NULL), "t");
	assert_string_equal(conv("datetime", "datetime(6)", PS_TYPE_TIMESTAMPTZ,
	                         "2024-01-01 10:00:00.5+00", NULL), "2024-01-01 10:00:00.5");
	assert_string_equal(conv("timestamp", "timestamp", PS_TYPE_TIMESTAMPTZ,
	                         "2024-01-01 10:00:00+00:00", NULL), "2024-01-01 10:00:00");
	assert_non_null(strstr(conv("datetime", "datetime(6)", PS_TYPE_TIMESTAMPTZ, "infinity",
	                            NULL), "infinite"));
	assert_non_null(strstr(conv("datetime", "datetime(6)", PS_TYPE_TIMESTAMPTZ,
	                            "0044-03-15 12:00:00+00 BC", NULL), "BC"));
	assert_non_null(strstr(conv("datetime", "datetime(6)", PS_TYPE_TIMESTAMPTZ,
	                            "12024-01-01 00:00:00+00", NULL), "9999"));
	assert_non_null(strstr(conv("datetime", "datetime(6)", PS_TYPE_TIMESTAMPTZ,
	                            "2024-01-01 00:00:00+02", NULL), "UTC"));
	assert_string_equal(conv("timestamp", "timestamp", PS_TYPE_TIMESTAMPTZ,
	                         "0000-00-00 00:00:00", NULL), "0000-00-00 00:00:00");
	assert_non_null(strstr(conv("date", "date", PS_TYPE_DATE, "-infinity", NULL), "infinite"));
	assert_string_equal(conv("date", "date", PS_TYPE_DATE, "2024-02-29", NULL), "2024-02-29");
	assert_non_null(strstr(conv("double", "double", PS_TYPE_FLOAT, "NaN", NULL), "NaN"));
	assert_non_null(strstr(conv("float", "float", PS_TYPE_FLOAT, "-Infinity", NULL), "infinite"));
	assert_string_equal(conv("double", "double", PS_TYPE_FLOAT, "1e+300", NULL), "1e+300");
	/* a float's shortest text can lie past FLT_MAX as a double */
	assert_string_equal(conv("float", "float", PS_TYPE_FLOAT, "3.4028235e+38", NULL),
	                    "3.4028234663852886e+38");
	assert_string_equal(conv("float", "float", PS_TYPE_FLOAT, "0.1", NULL),
	                    "0.10000000149011612");
	assert_non_null(strstr(conv("decimal", "decimal(10,2)", PS_TYPE_NUMERIC, "NaN", NULL),
	                       "DECIMAL"));
	assert_string_equal(conv("decimal", "decimal(10,2)", PS_TYPE_NUMERIC, "-0.50", NULL), "-0.50");
	/* MariaDB's UUID refuses version digits 8-f with variant digits 0-7 */
	assert_string_equal(conv("uuid", "uuid", PS_TYPE_UUID, "9a8594ce-0b62-4c86-83c9-6b09fd378151",
	                         NULL), "9a8594ce-0b62-4c86-83c9-6b09fd378151");
	assert_string_equal(conv("uuid", "uuid", PS_TYPE_UUID, "9a8594ce-0b62-ec86-83c9-6b09fd378151",
	                         NULL), "9a8594ce-0b62-ec86-83c9-6b09fd378151");
	assert_string_equal(conv("uuid", "uuid", PS_TYPE_UUID, "9a8594ce-0b62-7c86-03c9-6b09fd378151",
	                         NULL), "9a8594ce-0b62-7c86-03c9-6b09fd378151");
	assert_non_null(strstr(conv("uuid", "uuid", PS_TYPE_UUID,
	                            "9a8594ce-0b62-ec86-33c9-6b09fd378151", NULL), "MariaDB's UUID"));
	assert_non_null(strstr(conv("uuid", "uuid", PS_TYPE_UUID,
	                            "9A8594CE-0B62-8C86-73C9-6B09FD378151", NULL), "MariaDB's UUID"));
	assert_string_equal(conv("longblob", "longblob", PS_TYPE_BYTES, "\\x00ff0a", &n), "\0\xff\n");
	assert_int_equal(n, 3);
	assert_string_equal(conv("longblob", "longblob", PS_TYPE_BYTES, "\\x", &n), "");
	assert_int_equal(n, 0);
	assert_int_equal(conv("longblob", "longblob", PS_TYPE_BYTES, "\\x0g", NULL)[0], '!');
	assert_int_equal(conv("longblob", "longblob", PS_TYPE_BYTES, "00ff", NULL)[0], '!');
	assert_string_equal(conv("longblob", "longblob", PS_TYPE_TEXT, "plain", NULL), "plain");
	assert_string_equal(conv("bit", "bit(4)", PS_TYPE_TEXT, "0101", NULL), "5");
	assert_string_equal(conv("bit", "bit(64)", PS_TYPE_TEXT,
	                         "1111111111111111111111111111111111111111111111111111111111111111",
	                         NULL), "18446744073709551615");
	assert_int_equal(conv("bit", "bit(4)", PS_TYPE_TEXT, "0102", NULL)[0], '!');
	assert_string_equal(conv("varchar", "varchar(10)", PS_TYPE_TEXT, "a\tb", NULL), "a\tb");
	assert_string_equal(conv("year", "year(4)", PS_TYPE_INTEGER, "0", NULL), "0000");
	assert_string_equal(conv("year", "year(4)", PS_TYPE_INTEGER, "2155", NULL), "2155");
}

static void test_columns_of_the_catalog(void **state)
{
	mys_col c;
	(void)state;

	ps__mys_col_from_catalog(&c, "bigint", "bigint(20) unsigned", NULL, false, PS_TYPE_INTEGER);
	assert_string_equal(c.where, "CAST(? AS UNSIGNED)");
	assert_string_equal(c.param, "?");
	ps__mys_col_from_catalog(&c, "int", "int(11)", NULL, false, PS_TYPE_INTEGER);
	assert_string_equal(c.where, "CAST(? AS SIGNED)");
	ps__mys_col_from_catalog(&c, "decimal", "decimal(12,2)", NULL, false, PS_TYPE_NUMERIC);
	assert_string_equal(c.where, "CAST(? AS DECIMAL(12,2))");
	ps__mys_col_from_catalog(&c, "datetime", "datetime(3)", NULL, false, PS_TYPE_TIMESTAMP);
	assert_string_equal(c.where, "CAST(? AS DATETIME(3))");
	assert_int_equal(c.conv, MYS_CONV_DATETIME);
	ps__mys_col_from_catalog(&c, "float", "float", NULL, false, PS_TYPE_FLOAT);
	assert_string_equal(c.where, "CAST(? AS FLOAT)");
	ps__mys_col_from_catalog(&c, "bit", "bit(3)", NULL, false, PS_TYPE_TEXT);
	assert_string_equal(c.param, "CAST(? AS UNSIGNED)");
	ps__mys_col_from_catalog(&c, "char", "char(3)", "latin1", false, PS_TYPE_TEXT);
	assert_true(c.text && c.fixed);
	assert_string_equal(c.charset, "latin1");
	ps__mys_col_from_catalog(&c, "varbinary", "varbinary(10)", NULL, false, PS_TYPE_BYTES);
	assert_true(c.binary);
	assert_int_equal(c.conv, MYS_CONV_BYTES);
	ps__mys_col_from_catalog(&c, "int", "int(11)", NULL, true, PS_TYPE_INTEGER);
	assert_true(c.generated);
}

static void test_load_escape_and_identifiers(void **state)
{
	char out[64];
	const char in[] = "a\tb\nc\rd\\e\0f";
	size_t n;
	char name[80];
	(void)state;

	n = ps__mys_load_escape(out, in, sizeof(in) - 1);
	assert_int_equal(n, 16);
	assert_memory_equal(out, "a\\tb\\nc\\rd\\\\e\\0f", 16);
	n = ps__mys_load_escape(out, "\\N", 2);
	assert_memory_equal(out, "\\\\N", n);

	assert_true(ps__mys_ident_ok("orders"));
	memset(name, 'x', 64);
	name[64] = '\0';
	assert_true(ps__mys_ident_ok(name));
	name[64] = 'x';
	name[65] = '\0';
	assert_false(ps__mys_ident_ok(name));
	/* 64 characters of two bytes each still fit */
	for (int i = 0; i < 64; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	assert_false(ps__mys_ident_ok("trailing "));
	assert_false(ps__mys_ident_ok(""));
	{
		char wide[200];
		for (int i = 0; i < 64; i++)
			memcpy(wide + 2 * i, "\xc3\xa9", 2);
		wide[128] = '\0';
		assert_true(ps__mys_ident_ok(wide));
	}
}

static void test_registered(void **state)
{
	ps_error err;
	const ps_sink_ops *ops;
	ps_url u;
	(void)state;

	ps_error_clear(&err);
	assert_int_equal(ps_url_parse(&u, "mariadb://app@db1/shop", &err), PS_OK);
	assert_string_equal(u.scheme_name, "mysql");
	assert_int_equal(u.port, 0);
	ops = ps_plugin_sink_for("mysql", &err);
	assert_non_null(ops);
	assert_string_equal(ops->name, "mysql");
	assert_non_null(ops->checkpoint_load);
	assert_non_null(ops->sequences_set);
	assert_int_equal(ps_plugin_check_sink(ops, &err), PS_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postgresql_types),
		cmocka_unit_test(test_postgresql_types_without_an_exact_home),
		cmocka_unit_test(test_other_engines),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_columns_of_the_catalog),
		cmocka_unit_test(test_load_escape_and_identifiers),
		cmocka_unit_test(test_registered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
