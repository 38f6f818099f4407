/*
 * test_json.c — ps_json_append_string and ps_json_append_base64 (util/json.c).
 *
 * Exact outputs for the escapes and the invalid UTF-8 forms; then every
 * single byte and a deterministic fuzz, each checked two ways: jansson must
 * parse the output as a string, and that string must equal what an
 * independent reference decoder (written here, decoding code points rather
 * than checking byte ranges) says the input means, with U+FFFD for every
 * byte that does not start a valid sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "util/buf.h"
#include "util/json.h"

/* ---- helpers ------------------------------------------------------------- */

static void expect_escaped(const char *in, size_t len, const char *want)
{
	ps_buf b;

	ps_buf_init(&b, 1 << 20);
	assert_int_equal(ps_json_append_string(&b, in, len), 0);
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	ps_buf_free(&b);
}

/* Decodes one code point at s, or returns 0 if no valid UTF-8 starts there. */
static size_t ref_decode(const unsigned char *s, size_t avail)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		n = 2;
		cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3;
		cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
		return 0; /* overlong */
	if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return n;
}

/* What the input means: valid sequences as they are, U+FFFD per bad byte. */
static size_t ref_expected(const unsigned char *s, size_t len, unsigned char *out,
                           int *valid)
{
	size_t i = 0, o = 0;

	*valid = 1;
	while (i < len) {
		size_t n = ref_decode(s + i, len - i);
		if (n == 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
			*valid = 0;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	return o;
}

/* Escapes in, parses the result with jansson, compares with the reference. */
static void check_roundtrip(const unsigned char *in, size_t len)
{
	unsigned char want[64 * 3 + 8];
	ps_buf b;
	json_t *j;
	json_error_t jerr;
	int valid;
	size_t want_len;

	assert_true(len <= 64 || len == 1);
	ps_buf_init(&b, 1 << 20);
	assert_int_equal(ps_json_append_string(&b, (const char *)in, len), 0);
	j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!j)
		fail_msg("jansson rejected %s: %s", b.data, jerr.text);
	assert_true(json_is_string(j));
	want_len = ref_expected(in, len, want, &valid);
	assert_int_equal(json_string_length(j), want_len);
	assert_memory_equal(json_string_value(j), want, want_len);
	if (valid) {
		assert_int_equal(json_string_length(j), len);
		if (len)
			assert_memory_equal(json_string_value(j), in, len);
	}
	json_decref(j);
	ps_buf_free(&b);
}

/* ---- exact escapes ------------------------------------------------------- */

static void test_quote_backslash(void **state)
{
	(void)state;
	expect_escaped("", 0, "\"\"");
	expect_escaped("plain", 5, "\"plain\"");
	expect_escaped("a\"b", 3, "\"a\\\"b\"");
	expect_escaped("a\\b", 3, "\"a\\\\b\"");
	expect_escaped("\"\\\"", 3, "\"\\\"\\\\\\\"\"");
	expect_escaped("/", 1, "\"/\"");
	expect_escaped("\x7f", 1, "\"\x7f\"");
}

static void test_control_bytes(void **state)
{
	(void)state;
	for (int c = 0; c < 0x20; c++) {
		char in[3] = {'x', (char)c, 'y'};
		char want[16];

		switch (c) {
		case '\n': snprintf(want, sizeof(want), "\"x\\ny\""); break;
		case '\r': snprintf(want, sizeof(want), "\"x\\ry\""); break;
		case '\t': snprintf(want, sizeof(want), "\"x\\ty\""); break;
		case '\b': snprintf(want, sizeof(want), "\"x\\by\""); break;
		case '\f': snprintf(want, sizeof(want), "\"x\\fy\""); break;
		default: snprintf(want, sizeof(want), "\"x\\u%04xy\"", (unsigned)c); break;
		}
		expect_escaped(in, 3, want);
	}
	expect_escaped("\x00", 1, "\"\\u0000\"");
	expect_escaped("\x1f", 1, "\"\\u001f\"");
}

static void test_valid_utf8(void **state)
{
	(void)state;
	expect_escaped("caf\xC3\xA9", 5, "\"caf\xC3\xA9\"");             /* U+00E9 */
	expect_escaped("\xC2\x80", 2, "\"\xC2\x80\"");                   /* U+0080 */
	expect_escaped("\xDF\xBF", 2, "\"\xDF\xBF\"");                   /* U+07FF */
	expect_escaped("\xE2\x82\xAC", 3, "\"\xE2\x82\xAC\"");           /* U+20AC */
	expect_escaped("\xE0\xA0\x80", 3, "\"\xE0\xA0\x80\"");           /* U+0800 */
	expect_escaped("\xED\x9F\xBF", 3, "\"\xED\x9F\xBF\"");           /* U+D7FF */
	expect_escaped("\xEF\xBF\xBF", 3, "\"\xEF\xBF\xBF\"");           /* U+FFFF */
	expect_escaped("\xF0\x9F\x98\x80", 4, "\"\xF0\x9F\x98\x80\"");   /* U+1F600 */
	expect_escaped("\xF0\x90\x80\x80", 4, "\"\xF0\x90\x80\x80\"");   /* U+10000 */
	expect_escaped("\xF4\x8F\xBF\xBF", 4, "\"\xF4\x8F\xBF\xBF\"");   /* U+10FFFF */
	expect_escaped("a\xF0\x9F\x98\x80\"\n", 7, "\"a\xF0\x9F\x98\x80\\\"\\n\"");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	expect_escaped("a\x80" "b", 3, "\"a\\ufffdb\"");                  /* stray continuation */
	expect_escaped("\xBF", 1, "\"\\ufffd\"");
	expect_escaped("\xC0\x80", 2, "\"\\ufffd\\ufffd\"");               /* overlong NUL */
	expect_escaped("\xC1\xBF", 2, "\"\\ufffd\\ufffd\"");               /* overlong */
	expect_escaped("\xE0\x80\xAF", 3, "\"\\ufffd\\ufffd\\ufffd\"");    /* overlong '/' */
	expect_escaped("\xF0\x80\x80\xAF", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	expect_escaped("\xED\xA0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");    /* surrogate D800 */
	expect_escaped("\xED\xBF\xBF", 3, "\"\\ufffd\\ufffd\\ufffd\"");    /* surrogate DFFF */
	expect_escaped("\xF5", 1, "\"\\ufffd\"");
	expect_escaped("\xF4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	expect_escaped("\xFF", 1, "\"\\ufffd\"");
	expect_escaped("\xE2\x82", 2, "\"\\ufffd\\ufffd\"");               /* truncated */
	expect_escaped("\xE2\x82z", 3, "\"\\ufffd\\ufffdz\"");
	expect_escaped("\xF0\x9F\x98", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	expect_escaped("\xC3", 1, "\"\\ufffd\"");
	/* A bad byte does not swallow the valid character after it. */
	expect_escaped("\xC3\xC3\xA9", 3, "\"\\ufffd\xC3\xA9\"");
}

static void test_all_single_bytes(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		unsigned char in = (unsigned char)c;
		check_roundtrip(&in, 1);
	}
}

/* xorshift64*: deterministic on every platform, unlike rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Appends one piece: ASCII, a valid encoded code point, or a random byte. */
static size_t random_piece(unsigned char *p, size_t room, int allow_bad)
{
	uint32_t kind = rng() % (allow_bad ? 8 : 6), cp;

	if (kind < 3 || room < 4) {
		p[0] = (unsigned char)(rng() % 0x80);
		return 1;
	}
	if (kind < 6) {
		do
			cp = 0x80 + rng() % (0x110000 - 0x80);
		while (cp >= 0xD800 && cp <= 0xDFFF);
		if (cp < 0x800) {
			p[0] = (unsigned char)(0xC0 | (cp >> 6));
			p[1] = (unsigned char)(0x80 | (cp & 0x3F));
			return 2;
		}
		if (cp < 0x10000) {
			p[0] = (unsigned char)(0xE0 | (cp >> 12));
			p[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
			p[2] = (unsigned char)(0x80 | (cp & 0x3F));
			return 3;
		}
		p[0] = (unsigned char)(0xF0 | (cp >> 18));
		p[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		p[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		p[3] = (unsigned char)(0x80 | (cp & 0x3F));
		return 4;
	}
	p[0] = (unsigned char)rng();
	return 1;
}

static void test_fuzz(void **state)
{
	unsigned char in[64];
	int nvalid = 0;

	(void)state;
	for (int iter = 0; iter < 100000; iter++) {
		size_t target = rng() % 65, len = 0;
		int valid;
		unsigned char scratch[64 * 3];

		/* A third pure random bytes, a third valid pieces, a third mixed. */
		if (iter % 3 == 0) {
			for (len = 0; len < target; len++)
				in[len] = (unsigned char)rng();
		} else {
			while (len < target)
				len += random_piece(in + len, target - len, iter % 3 == 2);
		}
		check_roundtrip(in, len);
		ref_expected(in, len, scratch, &valid);
		nvalid += valid;
	}
	/* The fuzz must exercise the valid path, not only the U+FFFD one. */
	assert_true(nvalid > 33000);
}

/* ---- bounds -------------------------------------------------------------- */

static void test_limit(void **state)
{
	ps_buf b;
	char filler[90];

	(void)state;
	ps_buf_init(&b, 4);
	assert_int_equal(ps_json_append_string(&b, "hello", 5), PS_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(ps_json_append_string(&b, "ab", 2), 0);      /* exactly 4 */
	assert_string_equal(b.data, "\"ab\"");
	ps_buf_reset(&b);
	assert_int_equal(ps_json_append_string(&b, "\n", 1), 0);      /* "\n" is 4 */
	ps_buf_reset(&b);
	assert_int_equal(ps_json_append_string(&b, "\x01", 1), PS_ETOOBIG); /* 8 */
	assert_int_equal(ps_json_append_string(&b, "\xff", 1), PS_ETOOBIG); /* 8 */
	assert_int_equal(ps_json_append_string(&b, "abc", 3), PS_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(ps_json_append_base64(&b, "foo", 3), PS_ETOOBIG);
	ps_buf_free(&b);

	/* Near the limit: a short string that fits must not fail because the
	 * 6x worst case would not. A failure leaves the buffer as it was. */
	ps_buf_init(&b, 100);
	memset(filler, 'x', sizeof(filler));
	assert_int_equal(ps_buf_append(&b, filler, sizeof(filler)), 0);
	assert_int_equal(ps_json_append_string(&b, "abcdef", 6), 0);
	assert_int_equal(b.len, 98);
	assert_int_equal(ps_json_append_string(&b, "\x01", 1), PS_ETOOBIG);
	assert_int_equal(b.len, 98);
	assert_int_equal(b.data[98], '\0');
	assert_int_equal(ps_json_append_string(&b, "", 0), 0);
	assert_int_equal(b.len, 100);
	assert_int_equal(ps_json_append_string(&b, "", 0), PS_ETOOBIG);
	ps_buf_free(&b);
}

/* ---- base64 -------------------------------------------------------------- */

static void expect_base64(const char *in, const char *want)
{
	ps_buf b;

	ps_buf_init(&b, 1 << 20);
	assert_int_equal(ps_json_append_base64(&b, in, strlen(in)), 0);
	assert_string_equal(b.data, want);
	ps_buf_free(&b);
}

static void test_base64(void **state)
{
	ps_buf b;
	unsigned char all[256];

	(void)state;
	expect_base64("", "\"\"");
	expect_base64("f", "\"Zg==\"");
	expect_base64("fo", "\"Zm8=\"");
	expect_base64("foo", "\"Zm9v\"");
	expect_base64("foob", "\"Zm9vYg==\"");
	expect_base64("fooba", "\"Zm9vYmE=\"");
	expect_base64("foobar", "\"Zm9vYmFy\"");

	/* High bytes and NULs use the whole alphabet and index it correctly. */
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	ps_buf_init(&b, 1 << 20);
	assert_int_equal(ps_json_append_base64(&b, "\xff\xfe\xfd\x00\x01", 5), 0);
	assert_string_equal(b.data, "\"//79AAE=\"");
	ps_buf_reset(&b);
	assert_int_equal(ps_json_append_base64(&b, all, sizeof(all)), 0);
	assert_int_equal(b.len, 2 + (256 + 2) / 3 * 4);
	assert_memory_equal(b.data, "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 45);
	assert_memory_equal(b.data + b.len - 9, "/P3+/w==\"", 9);
	ps_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_backslash),
		cmocka_unit_test(test_control_bytes),
		cmocka_unit_test(test_valid_utf8),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_all_single_bytes),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
