/*
 * test_pgsink.c — the pure helpers of the PostgreSQL sink (src/sink/pg/):
 * COPY text escaping, making CREATE INDEX idempotent, and splitting a quoted
 * qualified name. Everything that talks to a server is covered by
 * tests/integration/test_sink_pg.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"

/* ---- COPY escaping ------------------------------------------------------- */

/* COPY text format's reading of one field (PostgreSQL's rules for the
 * escapes we produce; any other escaped byte stands for itself). */
static size_t copy_unescape(char *dst, const char *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (src[i] != '\\' || i + 1 == len) {
			dst[o++] = src[i];
			continue;
		}
		i++;
		switch (src[i]) {
		case 't': dst[o++] = '\t'; break;
		case 'n': dst[o++] = '\n'; break;
		case 'r': dst[o++] = '\r'; break;
		default: dst[o++] = src[i]; break;
		}
	}
	return o;
}

static void check_round_trip(const char *in, size_t len)
{
	char *esc = malloc(2 * len + 1), *back = malloc(len + 1);
	size_t n, m;

	assert_non_null(esc);
	assert_non_null(back);
	n = ps__pg_copy_escape(esc, in, len);
	assert_true(n <= 2 * len);
	/* No raw delimiter, newline or carriage return survives: the field
	 * cannot split a row or a column. */
	for (size_t i = 0; i < n; i++)
		assert_true(esc[i] != '\t' && esc[i] != '\n' && esc[i] != '\r');
	/* And no escaped text reads as \N (NULL) on its own. */
	if (n == 2)
		assert_false(esc[0] == '\\' && esc[1] == 'N');
	m = copy_unescape(back, esc, n);
	assert_int_equal(m, len);
	assert_memory_equal(back, in, len);
	free(esc);
	free(back);
}

static void test_copy_escape_examples(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	n = ps__pg_copy_escape(out, "a\tb\nc\rd\\e", 9);
	assert_int_equal(n, 13);
	assert_memory_equal(out, "a\\tb\\nc\\rd\\\\e", 13);
	n = ps__pg_copy_escape(out, "\\N", 2);            /* the text "\N", not NULL */
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\\\\N", 3);
	n = ps__pg_copy_escape(out, "", 0);
	assert_int_equal(n, 0);
	n = ps__pg_copy_escape(out, "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);   /* UTF-8 as is */
	assert_int_equal(n, 10);
	assert_memory_equal(out, "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
}

static void test_copy_escape_round_trips(void **state)
{
	static const char alphabet[] = "ab\t\n\r\\N. \x01\x7f\xc3\xa9";
	char buf[200];
	unsigned seed = 12345;

	(void)state;
	for (int iter = 0; iter < 2000; iter++) {
		size_t len = (size_t)(iter % 200);

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		check_round_trip(buf, len);
	}
}

/* ---- CREATE INDEX IF NOT EXISTS ------------------------------------------ */

static void expect_index(const char *in, const char *want)
{
	char *got = ps__pg_index_if_not_exists(in);

	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_index_if_not_exists(void **state)
{
	(void)state;
	expect_index("CREATE INDEX t_a_idx ON public.t USING btree (a)",
	             "CREATE INDEX IF NOT EXISTS t_a_idx ON public.t USING btree (a)");
	expect_index("CREATE UNIQUE INDEX \"Odd Name\" ON public.t USING btree (lower(a))",
	             "CREATE UNIQUE INDEX IF NOT EXISTS \"Odd Name\" ON public.t USING btree (lower(a))");
	expect_index("create index  x on s.t (a) where (a > 0)",
	             "create index IF NOT EXISTS x on s.t (a) where (a > 0)");
	/* Already idempotent: unchanged. */
	expect_index("CREATE INDEX IF NOT EXISTS x ON t (a)", "CREATE INDEX IF NOT EXISTS x ON t (a)");
	/* CONCURRENTLY cannot run in a transaction block: dropped. */
	expect_index("CREATE INDEX CONCURRENTLY x ON t (a)", "CREATE INDEX IF NOT EXISTS x ON t (a)");
	/* No name: kept as it is (IF NOT EXISTS needs a name). */
	expect_index("CREATE INDEX ON t (a)", "CREATE INDEX ON t (a)");
	expect_index("CREATE INDEX ON ONLY t (a)", "CREATE INDEX ON ONLY t (a)");
	/* Not a CREATE INDEX. */
	expect_index("ALTER TABLE t ADD PRIMARY KEY (a)", NULL);
	expect_index("CREATE TABLE x (a int)", NULL);
	expect_index("", NULL);
}

/* ---- qualified names ----------------------------------------------------- */

static void expect_split(const char *in, int rc, const char *schema, const char *name)
{
	char s[64], n[64];

	assert_int_equal(ps__pg_split_qualified(in, s, sizeof(s), n, sizeof(n)), rc);
	if (rc != PS_OK)
		return;
	assert_string_equal(s, schema);
	assert_string_equal(n, name);
}

static void test_split_qualified(void **state)
{
	(void)state;
	expect_split("\"public\".\"t_id_seq\"", PS_OK, "public", "t_id_seq");
	expect_split("\"My Schema\".\"Seq\"\"Q\"", PS_OK, "My Schema", "Seq\"Q");
	expect_split("\"a.b\".\"c.d\"", PS_OK, "a.b", "c.d");
	expect_split("public.Seq", PS_OK, "public", "seq");      /* unquoted folds */
	expect_split("\"only\"", PS_OK, "", "only");
	expect_split("", PS_EINVAL, NULL, NULL);
	expect_split("\"unterminated", PS_EINVAL, NULL, NULL);
	expect_split("\"a\".", PS_EINVAL, NULL, NULL);
	expect_split("\"a\".\"b\".\"c\"", PS_EINVAL, NULL, NULL);
	expect_split("\"a\" x", PS_EINVAL, NULL, NULL);
	expect_split("\"\"", PS_EINVAL, NULL, NULL);
}

static void test_split_qualified_too_long(void **state)
{
	char s[8], n[8];

	(void)state;
	assert_int_equal(ps__pg_split_qualified("\"abcdefgh\".\"x\"", s, sizeof(s), n, sizeof(n)),
	                 PS_EINVAL);
	assert_int_equal(ps__pg_split_qualified("\"x\".\"abcdefgh\"", s, sizeof(s), n, sizeof(n)),
	                 PS_EINVAL);
	assert_int_equal(ps__pg_split_qualified("\"abcdefg\".\"x\"", s, sizeof(s), n, sizeof(n)),
	                 PS_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_escape_examples),
		cmocka_unit_test(test_copy_escape_round_trips),
		cmocka_unit_test(test_index_if_not_exists),
		cmocka_unit_test(test_split_qualified),
		cmocka_unit_test(test_split_qualified_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
