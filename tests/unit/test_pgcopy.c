/*
 * test_pgcopy.c — unit tests of the COPY text-format row parser
 * (pg_copy_parse_row in src/source/pg/pgsrc_copy.c), no server needed.
 *
 * Rows are written here the way COPY ... TO STDOUT (text format) writes
 * them: tab between fields, newline at the end, \N for NULL, and backslash
 * escapes for backslash, tab, newline and the other control characters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source/pg/pg_internal.h"

#define MAXV 8

typedef struct parsed {
	char buf[512];
	ps_value v[MAXV];
	ps_error err;
	int rc;
} parsed;

/* Parses a copy of text (len bytes, so NULs in the input are possible) into
 * p, with nvalues fields expected. buf has room for the NUL at buf[len],
 * as libpq's row buffers do. */
static void parse_n(parsed *p, const char *text, size_t len, int nvalues)
{
	assert_true(len < sizeof(p->buf));
	memset(p, 0, sizeof(*p));
	memset(p->buf, 'Z', sizeof(p->buf));
	memcpy(p->buf, text, len);
	p->buf[len] = '\0';
	p->rc = pg_copy_parse_row(p->buf, len, p->v, nvalues, &p->err);
}

static void parse(parsed *p, const char *text, int nvalues)
{
	parse_n(p, text, strlen(text), nvalues);
}

static void assert_text(const ps_value *v, const char *want, size_t want_len)
{
	assert_int_equal(v->kind, PS_VALUE_TEXT);
	assert_int_equal(v->len, want_len);
	assert_memory_equal(v->data, want, want_len);
	assert_int_equal(v->data[want_len], '\0');
}

static void assert_sql_null(const ps_value *v)
{
	assert_int_equal(v->kind, PS_VALUE_NULL);
	assert_null(v->data);
	assert_int_equal(v->len, 0);
}

static void test_plain_fields(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "1\thello\t2024-01-02 03:04:05+00\n", 3);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "1", 1);
	assert_text(&p.v[1], "hello", 5);
	assert_text(&p.v[2], "2024-01-02 03:04:05+00", 22);
}

static void test_control_escapes(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh\n", 1);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "a\tb\nc\rd\\e\bf\fg\vh", 15);
}

static void test_octal_and_hex_escapes(void **state)
{
	parsed p;

	(void)state;
	/* \101 = 'A', \7 = BEL (one digit), \0101 = '\010' then '1', \x41 = 'A',
	 * \x4 = 0x04 (one digit), \xg = 'x' then 'g' (no hex digit) */
	parse(&p, "\\101\t\\7|\t\\0101\t\\x41\t\\x4|\t\\xg\n", 6);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "A", 1);
	assert_text(&p.v[1], "\a|", 2);
	assert_text(&p.v[2], "\b1", 2);
	assert_text(&p.v[3], "A", 1);
	assert_text(&p.v[4], "\x04|", 2);
	assert_text(&p.v[5], "xg", 2);
}

static void test_backslash_before_other_char(void **state)
{
	parsed p;

	(void)state;
	/* \q is q, \. is ., and \N inside a longer field is just N */
	parse(&p, "\\q\\.\t\\Nx\tx\\N\n", 3);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "q.", 2);
	assert_text(&p.v[1], "Nx", 2);
	assert_text(&p.v[2], "xN", 2);
}

static void test_empty_string_is_not_null(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "\t\\N\t\\\\N\t\n", 4);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "", 0);
	assert_sql_null(&p.v[1]);
	assert_text(&p.v[2], "\\N", 2);     /* the text backslash-N, escaped */
	assert_text(&p.v[3], "", 0);        /* a trailing tab: an empty last field */
}

static void test_null_first_and_last(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "\\N\tx\t\\N\n", 3);
	assert_int_equal(p.rc, PS_OK);
	assert_sql_null(&p.v[0]);
	assert_text(&p.v[1], "x", 1);
	assert_sql_null(&p.v[2]);
}

static void test_row_without_final_newline(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "a\tb", 2);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "a", 1);
	assert_text(&p.v[1], "b", 1);
}

static void test_single_empty_field(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "\n", 1);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "", 0);
}

static void test_zero_columns(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "\n", 0);
	assert_int_equal(p.rc, PS_OK);
	parse(&p, "x\n", 0);
	assert_int_equal(p.rc, PS_EPROTO);
}

static void test_too_few_fields(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "1\t2\n", 3);
	assert_int_equal(p.rc, PS_EPROTO);
	assert_non_null(strstr(p.err.message, "2 fields, expected 3"));
}

static void test_too_many_fields(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "1\t2\t3\n", 2);
	assert_int_equal(p.rc, PS_EPROTO);
	parse(&p, "1\t2\t\n", 2);               /* a trailing tab is one more field */
	assert_int_equal(p.rc, PS_EPROTO);
}

static void test_backslash_at_end_is_an_error(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "abc\\\n", 1);
	assert_int_equal(p.rc, PS_EPROTO);
	parse(&p, "abc\\", 1);
	assert_int_equal(p.rc, PS_EPROTO);
}

static void test_nul_byte_is_an_error(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "a\\000b\n", 1);
	assert_int_equal(p.rc, PS_EPROTO);
	parse(&p, "a\\x0\n", 1);
	assert_int_equal(p.rc, PS_EPROTO);
	parse_n(&p, "a\0b\n", 4, 1);
	assert_int_equal(p.rc, PS_EPROTO);
}

static void test_escaped_tab_does_not_split(void **state)
{
	parsed p;

	(void)state;
	/* a backslash before a raw tab makes it data, as COPY FROM reads it */
	parse(&p, "a\\\tb\tc\n", 2);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "a\tb", 3);
	assert_text(&p.v[1], "c", 1);
}

static void test_utf8_passes_through(void **state)
{
	parsed p;

	(void)state;
	parse(&p, "\xf0\x9f\x98\x80 \xc3\xa9\t\\\\x41\n", 2);
	assert_int_equal(p.rc, PS_OK);
	assert_text(&p.v[0], "\xf0\x9f\x98\x80 \xc3\xa9", 7);
	assert_text(&p.v[1], "\\x41", 4);      /* bytea text \x41, escaped */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_fields),
		cmocka_unit_test(test_control_escapes),
		cmocka_unit_test(test_octal_and_hex_escapes),
		cmocka_unit_test(test_backslash_before_other_char),
		cmocka_unit_test(test_empty_string_is_not_null),
		cmocka_unit_test(test_null_first_and_last),
		cmocka_unit_test(test_row_without_final_newline),
		cmocka_unit_test(test_single_empty_field),
		cmocka_unit_test(test_zero_columns),
		cmocka_unit_test(test_too_few_fields),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_backslash_at_end_is_an_error),
		cmocka_unit_test(test_nul_byte_is_an_error),
		cmocka_unit_test(test_escaped_tab_does_not_split),
		cmocka_unit_test(test_utf8_passes_through),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
