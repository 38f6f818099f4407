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
#include "util/str.h"

static const char hex_digits[] = "0123456789abcdef";

static int needs_attention(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

/* Appends the escaped body of s (no quotes). Stops at the first failure. */
static int append_escaped(ps_buf *b, const unsigned char *s, size_t len)
{
	size_t i = 0, run;
	int rc = 0;

	while (i < len) {
		run = i;
		while (run < len && !needs_attention(s[run]))
			run++;
		if (run > i) {
			rc = ps_buf_append(b, s + i, run - i);
			if (rc != 0)
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
			size_t n = ps_utf8_valid_len(s + i, len - i);
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
	return rc;
}

/*
 * The output is at least len + 2 bytes (every input byte yields one or more),
 * so a string that cannot fit fails at once; room for exactly that much is
 * reserved, and escapes grow the buffer as they come. Reserving the 6x worst
 * case instead would fail strings that fit whenever the buffer is partly
 * full. On failure the buffer is left as it was (as buf.h promises).
 */
int ps_json_append_string(ps_buf *b, const char *str, size_t len)
{
	size_t start = b->len;
	size_t room = b->len < b->limit ? b->limit - b->len : 0;
	int rc;

	if (len > room || room - len < 2)
		return PS_ETOOBIG;
	rc = ps_buf_reserve(b, len + 2);
	if (rc == 0)
		rc = ps_buf_append(b, "\"", 1);
	if (rc == 0)
		rc = append_escaped(b, (const unsigned char *)str, len);
	/* ps_buf_append, not ps_buf_putc: putc may write past the limit when
	 * the capacity happens to allow it. */
	if (rc == 0)
		rc = ps_buf_append(b, "\"", 1);
	if (rc != 0 && b->data) {
		b->len = start;
		b->data[start] = '\0';
	}
	return rc;
}

int ps_json_append_base64(ps_buf *b, const void *p, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	size_t i;
	int rc;

	if (len > ((size_t)-1 - 8) / 4 * 3)
		return PS_ETOOBIG;
	/* Reserving the exact output size up front means none of the appends
	 * below can fail. */
	rc = ps_buf_reserve(b, (len + 2) / 3 * 4 + 2);
	if (rc != 0)
		return rc;
	ps_buf_append(b, "\"", 1);
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
	return ps_buf_append(b, "\"", 1);
}
