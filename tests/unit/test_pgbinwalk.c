/*
 * test_pgbinwalk.c — unit tests of the binary COPY stream walker
 * (src/source/pg/pg_binwalk.c), no server needed.
 *
 * Streams are built here as the PostgreSQL manual describes the binary COPY
 * format: signature, flags, header extension, tuples of (count, (length,
 * bytes)*), trailer -1. Each is walked whole, one byte at a time and split
 * at every offset, and must give the same rows every way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source/pg/pg_binwalk.h"

typedef struct stream {
	uint8_t b[4096];
	size_t len;
} stream;

static void put(stream *s, const void *p, size_t n)
{
	assert_true(s->len + n <= sizeof(s->b));
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static void put16(stream *s, int v)
{
	uint8_t b[2] = {(uint8_t)((unsigned)v >> 8), (uint8_t)v};

	put(s, b, 2);
}

static void put32(stream *s, int64_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};

	put(s, b, 4);
}

static void header(stream *s, uint32_t flags, const char *ext)
{
	put(s, "PGCOPY\n\377\r\n\0", 11);
	put32(s, flags);
	put32(s, ext ? (int64_t)strlen(ext) : 0);
	if (ext)
		put(s, ext, strlen(ext));
}

/* A tuple of n fields: values[i] NULL is SQL NULL. */
static void tuple(stream *s, int n, const char *const *values)
{
	put16(s, n);
	for (int i = 0; i < n; i++) {
		if (!values[i]) {
			put32(s, -1);
			continue;
		}
		put32(s, (int64_t)strlen(values[i]));
		put(s, values[i], strlen(values[i]));
	}
}

/* Walks s in pieces of `piece` bytes (0: whole); the rows each piece
 * reports must add up to the walk's total. */
static int walk(const stream *s, int nfields, size_t piece, int64_t *rows, ps_error *err)
{
	pg_binwalk w;
	int64_t sum = 0;
	int rc = PS_OK;

	pg_binwalk_init(&w, nfields);
	for (size_t at = 0; at < s->len && rc == PS_OK;) {
		size_t n = piece == 0 || s->len - at < piece ? s->len - at : piece;
		int64_t r = -1;

		rc = pg_binwalk_feed(&w, (const char *)s->b + at, n, &r, err);
		assert_true(r >= 0);
		sum += r;
		at += n;
	}
	if (rc == PS_OK)
		rc = pg_binwalk_finish(&w, err);
	assert_int_equal(sum, w.rows);
	*rows = sum;
	return rc;
}

static void test_counts_rows_in_any_pieces(void **state)
{
	static const char *const a[] = {"1", "hello", NULL};
	static const char *const b[] = {NULL, "", "x"};
	static const char *const c[] = {"a long value, longer than a length word", "y", "z"};
	stream s = {0};
	ps_error err;
	int64_t rows;

	(void)state;
	header(&s, 0, NULL);
	tuple(&s, 3, a);
	tuple(&s, 3, b);
	tuple(&s, 3, c);
	put16(&s, -1);
	for (size_t piece = 0; piece <= s.len; piece++) {
		assert_int_equal(walk(&s, 3, piece, &rows, &err), PS_OK);
		assert_int_equal(rows, 3);
	}
}

static void test_split_at_every_offset(void **state)
{
	static const char *const a[] = {"abc", NULL};
	stream s = {0};
	ps_error err;

	(void)state;
	header(&s, 1u << 20, "ext!");   /* a non-critical flag and an extension */
	for (int i = 0; i < 5; i++)
		tuple(&s, 2, a);
	put16(&s, -1);
	for (size_t cut = 0; cut <= s.len; cut++) {
		pg_binwalk w;
		int64_t r1, r2;

		pg_binwalk_init(&w, 2);
		assert_int_equal(pg_binwalk_feed(&w, (const char *)s.b, cut, &r1, &err), PS_OK);
		assert_int_equal(pg_binwalk_feed(&w, (const char *)s.b + cut, s.len - cut, &r2, &err),
		                 PS_OK);
		assert_int_equal(pg_binwalk_finish(&w, &err), PS_OK);
		assert_int_equal(r1 + r2, 5);
	}
}

static void test_empty_stream_and_zero_fields(void **state)
{
	static const char *const none[] = {NULL};
	stream s = {0};
	ps_error err;
	int64_t rows;

	(void)state;
	header(&s, 0, NULL);
	put16(&s, -1);
	assert_int_equal(walk(&s, 4, 0, &rows, &err), PS_OK);
	assert_int_equal(rows, 0);

	memset(&s, 0, sizeof(s));
	header(&s, 0, NULL);
	tuple(&s, 0, none);
	tuple(&s, 0, none);
	put16(&s, -1);
	assert_int_equal(walk(&s, 0, 1, &rows, &err), PS_OK);
	assert_int_equal(rows, 2);
}

static void expect_eproto(const stream *s, int nfields, const char *needle)
{
	ps_error err;
	int64_t rows;

	memset(&err, 0, sizeof(err));
	assert_int_equal(walk(s, nfields, 0, &rows, &err), PS_EPROTO);
	if (!strstr(err.message, needle))
		fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
	memset(&err, 0, sizeof(err));
	assert_int_equal(walk(s, nfields, 1, &rows, &err), PS_EPROTO);
	if (!strstr(err.message, needle))
		fail_msg("byte-wise: message \"%s\" lacks \"%s\"", err.message, needle);
}

static void test_malformed_streams_are_refused(void **state)
{
	static const char *const one[] = {"v"};
	static const char *const two[] = {"v", "w"};
	stream s;

	(void)state;
	memset(&s, 0, sizeof(s));
	put(&s, "PGCOPY\n\377\r\n\1", 11);
	expect_eproto(&s, 1, "bad signature");

	memset(&s, 0, sizeof(s));
	header(&s, 1u << 16, NULL);
	expect_eproto(&s, 1, "OIDs");

	memset(&s, 0, sizeof(s));
	header(&s, 1u, NULL);
	expect_eproto(&s, 1, "critical flags");

	memset(&s, 0, sizeof(s));
	header(&s, 0, NULL);
	tuple(&s, 1, one);
	tuple(&s, 2, two);
	put16(&s, -1);
	expect_eproto(&s, 1, "a tuple of 2 fields, expected 1");

	memset(&s, 0, sizeof(s));
	header(&s, 0, NULL);
	put16(&s, 1);
	put32(&s, -2);
	expect_eproto(&s, 1, "negative field length");

	memset(&s, 0, sizeof(s));
	header(&s, 0, NULL);
	tuple(&s, 1, one);
	put16(&s, -1);
	put16(&s, 1);
	expect_eproto(&s, 1, "data after the trailer");
}

static void test_stream_cut_short_is_refused(void **state)
{
	static const char *const one[] = {"value"};
	stream s = {0};
	ps_error err;

	(void)state;
	header(&s, 0, NULL);
	tuple(&s, 1, one);
	tuple(&s, 1, one);
	put16(&s, -1);
	/* Every proper prefix walks without error but does not finish. */
	for (size_t cut = 0; cut < s.len; cut++) {
		pg_binwalk w;

		pg_binwalk_init(&w, 1);
		assert_int_equal(pg_binwalk_feed(&w, (const char *)s.b, cut, NULL, &err), PS_OK);
		memset(&err, 0, sizeof(err));
		assert_int_equal(pg_binwalk_finish(&w, &err), PS_EPROTO);
		assert_non_null(strstr(err.message, "cut short"));
	}
}

static void test_failed_walk_stays_failed(void **state)
{
	pg_binwalk w;
	ps_error err;

	(void)state;
	pg_binwalk_init(&w, 1);
	assert_int_equal(pg_binwalk_feed(&w, "XXXXXXXXXXXXXXXXXXX", 19, NULL, &err), PS_EPROTO);
	assert_int_equal(pg_binwalk_feed(&w, "PGCOPY\n\377\r\n", 11, NULL, &err), PS_EPROTO);
	assert_int_equal(pg_binwalk_finish(&w, &err), PS_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_rows_in_any_pieces),
		cmocka_unit_test(test_split_at_every_offset),
		cmocka_unit_test(test_empty_stream_and_zero_fields),
		cmocka_unit_test(test_malformed_streams_are_refused),
		cmocka_unit_test(test_stream_cut_short_is_refused),
		cmocka_unit_test(test_failed_walk_stays_failed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
