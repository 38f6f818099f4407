/*
 * json.c — JSON string escaping for every byte sequence (see json.h).
 *
 * The fast path copies runs of plain ASCII in one append; only bytes that need
 * attention (quote, backslash, control, >= 0x80) leave the run. UTF-8 is
 * validated by the rules of RFC 3629 table 3-7: the allowed ranges of the
 * second byte depend on the first, which rules out overlong forms,
 * surrogates (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF).
 */
#include <string.h>

#include "util/json.h"

static const char hex_digits[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

static int needs_attention(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

int ps_json_append_string(ps_buf *b, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run;
	int rc;

	/* Worst case is 6 output bytes per input byte, plus quotes. */
	if (len > (b->limit / 6))
		rc = ps_buf_reserve(b, len + 2);
	else
		rc = ps_buf_reserve(b, len * 6 + 2);
	if (rc != 0)
		return rc;
	if ((rc = ps_buf_putc(b, '"')) != 0)
		return rc;
	while (i < len) {
		run = i;
		while (run < len && !needs_attention(s[run]))
			run++;
		if (run > i) {
			if ((rc = ps_buf_append(b, s + i, run - i)) != 0)
				return rc;
			i = run;
			if (i >= len)
				break;
		}
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			rc = ps_buf_append(b, esc, 2);
			i++;
		} else if (c < 0x20) {
			char esc[6];
			size_t n = 2;
			esc[0] = '\\';
			switch (c) {
			case '\n': esc[1] = 'n'; break;
			case '\r': esc[1] = 'r'; break;
			case '\t': esc[1] = 't'; break;
			case '\b': esc[1] = 'b'; break;
			case '\f': esc[1] = 'f'; break;
			default:
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex_digits[c >> 4];
				esc[5] = hex_digits[c & 15];
				n = 6;
			}
			rc = ps_buf_append(b, esc, n);
			i++;
		} else {
			size_t n = utf8_valid_len(s + i, len - i);
			if (n == 0) {
				rc = ps_buf_append(b, "\\ufffd", 6);
				i++;
			} else {
				rc = ps_buf_append(b, s + i, n);
				i += n;
			}
		}
		if (rc != 0)
			return rc;
	}
	return ps_buf_putc(b, '"');
}

int ps_json_append_base64(ps_buf *b, const void *p, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	size_t i;
	int rc;

	if ((rc = ps_buf_reserve(b, (len + 2) / 3 * 4 + 2)) != 0)
		return rc;
	ps_buf_putc(b, '"');
	for (i = 0; i + 2 < len; i += 3) {
		char q[4] = {alphabet[s[i] >> 2],
		             alphabet[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
		             alphabet[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)],
		             alphabet[s[i + 2] & 63]};
		ps_buf_append(b, q, 4);
	}
	if (len - i == 1) {
		char q[4] = {alphabet[s[i] >> 2], alphabet[(s[i] & 3) << 4], '=', '='};
		ps_buf_append(b, q, 4);
	} else if (len - i == 2) {
		char q[4] = {alphabet[s[i] >> 2],
		             alphabet[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
		             alphabet[(s[i + 1] & 15) << 2], '='};
		ps_buf_append(b, q, 4);
	}
	return ps_buf_putc(b, '"');
}
