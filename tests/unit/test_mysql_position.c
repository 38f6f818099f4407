/*
 * test_mysql_position.c — the MySQL source's positions (file:offset/GTID
 * list), GTID states and the snapshot's value texts, without a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source/mysql/my_internal.h"

static void test_parse_forms(void **state)
{
	my_pos p;
	ps_error err;
	(void)state;

	assert_int_equal(my_pos_parse("binlog.000003:1234/0-1-57,1-2-9", &p, &err), PS_OK);
	assert_string_equal(p.file, "binlog.000003");
	assert_int_equal(p.filenum, 3);
	assert_int_equal(p.offset, 1234);
	assert_string_equal(p.gtid, "0-1-57,1-2-9");
	assert_int_equal(my_pos_parse("mariadb-bin.000010:4", &p, &err), PS_OK);
	assert_int_equal(p.filenum, 10);
	assert_string_equal(p.gtid, "");
	assert_int_equal(my_pos_parse("0-1-57", &p, &err), PS_OK);
	assert_string_equal(p.file, "");
	assert_string_equal(p.gtid, "0-1-57");
	assert_int_equal(my_pos_parse("", &p, &err), PS_OK);
	assert_int_equal(my_pos_parse("binlog.000003:", &p, &err), PS_EINVAL);
	assert_int_equal(my_pos_parse("binlog.000003:12x", &p, &err), PS_EINVAL);
	assert_int_equal(my_pos_parse("0/16B3F10", &p, &err), PS_EINVAL);
	assert_non_null(strstr(err.message, "0/16B3F10"));
	assert_int_equal(my_pos_parse("binlog.1:5/0-1", &p, &err), PS_EINVAL);
	assert_int_equal(my_pos_parse("0-1-2,x", &p, &err), PS_EINVAL);
}

static void test_order_by_file_number_then_offset(void **state)
{
	(void)state;
	assert_true(my_pos_compare("binlog.000003:900", "binlog.000004:4") < 0);
	assert_true(my_pos_compare("binlog.000009:900", "binlog.000010:4") < 0);
	assert_true(my_pos_compare("binlog.999999:5", "binlog.1000000:4") < 0);  /* past 6 digits */
	assert_true(my_pos_compare("binlog.000003:1234/0-1-9", "binlog.000003:1234/0-1-7") == 0);
	assert_true(my_pos_compare("binlog.000003:1235", "binlog.000003:1234") > 0);
	/* GTID-only positions (a user's start) come before any file position */
	assert_true(my_pos_compare("0-1-5", "binlog.000001:4") < 0);
	assert_true(my_pos_compare("", "") == 0);
}

static void test_format_drops_a_gtid_list_that_does_not_fit(void **state)
{
	char buf[PS_POSITION_MAX], big[PS_POSITION_MAX];
	(void)state;

	my_pos_format(buf, sizeof(buf), "binlog.000002", 77, "0-1-3");
	assert_string_equal(buf, "binlog.000002:77/0-1-3");
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	my_pos_format(buf, sizeof(buf), "binlog.000002", 77, big);
	assert_string_equal(buf, "binlog.000002:77");
}

static void test_gtid_state_keeps_every_domain(void **state)
{
	my_gtid_state s;
	char buf[256];
	ps_error err;
	(void)state;

	assert_int_equal(my_gtid_state_parse(&s, "1-2-9,0-1-57", &err), PS_OK);
	my_gtid_state_format(&s, buf, sizeof(buf));
	assert_string_equal(buf, "0-1-57,1-2-9");
	my_gtid_state_set(&s, 0, 3, 58);        /* a new server in domain 0 */
	my_gtid_state_set(&s, 5, 1, 1);         /* a new domain */
	my_gtid_state_format(&s, buf, sizeof(buf));
	assert_string_equal(buf, "0-3-58,1-2-9,5-1-1");
	my_gtid_state_format(&s, buf, 8);       /* never a cut list */
	assert_string_equal(buf, "");
	assert_int_equal(my_gtid_state_parse(&s, "4294967296-1-1", &err), PS_EINVAL);
	assert_int_equal(my_file_number("binlog.000123"), 123);
	assert_int_equal(my_file_number("nodot"), 0);
}

/* A def with one column of sql type t and class cls. */
static ps_table_def *one_column(const char *t, int cls)
{
	ps_table_def *def = calloc(1, sizeof(*def));

	def->table = ps_table_new(1, 1);
	ps_table_set_names(def->table, "d", "t");
	ps_table_set_column(def->table, 0, "c", 0, -1, (uint8_t)cls, false);
	def->columns = calloc(1, sizeof(ps_column_def));
	def->columns[0].sql_type = strdup(t);
	return def;
}

static void expect(const char *t, int cls, const char *server_text, const char *want,
                   bool zero_null)
{
	ps_table_def *def = one_column(t, cls);
	ps_buf out;
	bool is_null = false;
	ps_error err;

	ps_buf_init(&out, 1 << 20);
	assert_int_equal(my_value_canon(def, 0, server_text, strlen(server_text), &out, &is_null,
	                                zero_null, &err), PS_OK);
	if (!want)
		assert_true(is_null);
	else
		assert_string_equal(out.data ? out.data : "", want);
	ps_buf_free(&out);
	ps_table_def_free(def);
}

static void test_select_texts_made_canonical(void **state)
{
	(void)state;
	expect("float", PS_TYPE_FLOAT, "0.10000000149011612", "0.1", false);
	expect("float", PS_TYPE_FLOAT, "3.4028234663852886e38", "3.4028235e+38", false);
	expect("double", PS_TYPE_FLOAT, "1e300", "1e+300", false);
	expect("double", PS_TYPE_FLOAT, "123456789012345", "123456789012345", false);
	expect("varbinary(20)", PS_TYPE_BYTES, "00FFAB", "\\x00ffab", false);
	expect("inet6", PS_TYPE_TEXT, "00000000000000000000FFFF01020304", "::ffff:1.2.3.4", false);
	expect("inet4", PS_TYPE_TEXT, "0A010203", "10.1.2.3", false);
	expect("datetime(6)", PS_TYPE_TIMESTAMP, "2024-01-02 03:04:05.120000",
	       "2024-01-02 03:04:05.12", false);
	expect("timestamp(6)", PS_TYPE_TIMESTAMPTZ, "2024-01-02 03:04:05.000000",
	       "2024-01-02 03:04:05+00", false);
	expect("timestamp", PS_TYPE_TIMESTAMPTZ, "0000-00-00 00:00:00", "0000-00-00 00:00:00",
	       false);
	expect("time(6)", PS_TYPE_TIME, "-838:59:59.999999", "-838:59:59.999999", false);
	expect("time(1)", PS_TYPE_TIME, "-00:00:00.5", "-00:00:00.5", false);
	expect("date", PS_TYPE_DATE, "2024-00-10", "2024-00-10", false);
	expect("date", PS_TYPE_DATE, "2024-00-10", NULL, true);
	expect("datetime", PS_TYPE_TIMESTAMP, "0000-00-00 00:00:00", NULL, true);
	expect("decimal(10,2)", PS_TYPE_NUMERIC, "-0.50", "-0.50", false);
}

static void test_select_expressions(void **state)
{
	struct { const char *t; int cls; const char *want; } cases[] = {
		{"float", PS_TYPE_FLOAT, "CAST(`c` AS DOUBLE)"},
		{"double", PS_TYPE_FLOAT, "`c`"},
		{"blob", PS_TYPE_BYTES, "HEX(`c`)"},
		{"bit(10)", PS_TYPE_TEXT, "LPAD(BIN(`c`), 10, '0')"},
		{"year(4)", PS_TYPE_INTEGER, "`c` + 0"},
		{"inet6", PS_TYPE_TEXT, "HEX(`c`)"},
		{"uuid", PS_TYPE_UUID, "`c`"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ps_table_def *def = one_column(cases[i].t, cases[i].cls);
		ps_buf b;
		ps_buf_init(&b, 4096);
		assert_int_equal(my_select_expr(&b, def, 0), PS_OK);
		assert_string_equal(b.data, cases[i].want);
		ps_buf_free(&b);
		ps_table_def_free(def);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_order_by_file_number_then_offset),
		cmocka_unit_test(test_format_drops_a_gtid_list_that_does_not_fit),
		cmocka_unit_test(test_gtid_state_keeps_every_domain),
		cmocka_unit_test(test_select_texts_made_canonical),
		cmocka_unit_test(test_select_expressions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
