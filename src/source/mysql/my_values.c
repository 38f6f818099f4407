/*
 * my_values.c — values read with SELECT (initial load, backfill chunks,
 * key bounds) in the same canonical text the binlog decoder makes.
 *
 * NOTES ON THE DESIGN
 *
 * 1. The session is UTC (myconn.c), so TIMESTAMP text is UTC like the
 *    binlog's. Each column is selected as an expression whose text is
 *    exact, then finished here by the decoder's own formatters where the
 *    forms must agree byte for byte:
 *      FLOAT   CAST(c AS DOUBLE): the double that the float is, printed by
 *              MariaDB in full, read back with strtod, printed as float4
 *              by ps_binlog_float_text; DOUBLE the same as float8
 *      BYTES   HEX(c) (BINARY(n) comes padded), as \x and lower case
 *      INET6/INET4  HEX(c) into ps_binlog_ext_text
 *      BIT(n)  LPAD(BIN(c), n, '0')
 *      YEAR    c + 0 (YEAR 0 prints as "0000")
 *      DATETIME, TIME, TIMESTAMP: trailing fraction zeros dropped,
 *              TIMESTAMP gets "+00" unless it is the zero timestamp
 *    Everything else (integers, DECIMAL, DATE, strings converted to utf8mb4
 *    by the server, ENUM/SET labels, JSON text, UUID) is already canonical.
 * 2. The integration test proves the claim: the type matrix through the
 *    snapshot and through the binlog gives the same text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/my_internal.h"
#include "util/myconn.h"
#include "util/str.h"

typedef enum vkind {
	V_PLAIN = 0, V_FLOAT, V_DOUBLE, V_BYTES, V_INET6, V_INET4, V_BIT, V_YEAR, V_DATETIME,
	V_TIMESTAMP, V_TIME, V_DATE
} vkind;

static bool starts(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int kind_of(const ps_table_def *def, int i, unsigned *bits)
{
	const char *t = def->columns[i].sql_type;
	int cls = def->table->columns[i].type_class;

	*bits = 0;
	if (cls == PS_TYPE_FLOAT)
		return starts(t, "float") ? V_FLOAT : V_DOUBLE;
	if (cls == PS_TYPE_BYTES)
		return V_BYTES;
	if (cls == PS_TYPE_TIMESTAMP)
		return V_DATETIME;
	if (cls == PS_TYPE_TIMESTAMPTZ)
		return V_TIMESTAMP;
	if (cls == PS_TYPE_TIME)
		return V_TIME;
	if (cls == PS_TYPE_DATE)
		return V_DATE;
	if (starts(t, "inet6"))
		return V_INET6;
	if (starts(t, "inet4"))
		return V_INET4;
	if (starts(t, "year"))
		return V_YEAR;
	if (starts(t, "bit(")) {
		*bits = (unsigned)strtoul(t + 4, NULL, 10);
		return V_BIT;
	}
	return V_PLAIN;
}

int my_select_expr(ps_buf *b, const ps_table_def *def, int i)
{
	unsigned bits;
	int k = kind_of(def, i, &bits);
	int rc = PS_OK;

	switch (k) {
	case V_FLOAT: rc = ps_buf_puts(b, "CAST("); break;
	case V_BYTES: case V_INET6: case V_INET4: rc = ps_buf_puts(b, "HEX("); break;
	case V_BIT: rc = ps_buf_puts(b, "LPAD(BIN("); break;
	default: break;
	}
	if (rc == PS_OK)
		rc = my_quote_ident(b, def->table->columns[i].name);
	switch (k) {
	case V_FLOAT: if (rc == PS_OK) rc = ps_buf_puts(b, " AS DOUBLE)"); break;
	case V_BYTES: case V_INET6: case V_INET4: if (rc == PS_OK) rc = ps_buf_puts(b, ")"); break;
	case V_BIT: if (rc == PS_OK) rc = ps_buf_printf(b, "), %u, '0')", bits); break;
	case V_YEAR: if (rc == PS_OK) rc = ps_buf_puts(b, " + 0"); break;
	default: break;
	}
	return rc;
}

static bool zero_date(const char *s, unsigned long len)
{
	/* YYYY-MM-DD...: a zero year, month or day */
	return len >= 10 && (strncmp(s, "0000", 4) == 0 || strncmp(s + 5, "00", 2) == 0 ||
	                     strncmp(s + 8, "00", 2) == 0);
}

static int hex_bytes(const char *text, unsigned long len, uint8_t *out, size_t want)
{
	if (len != 2 * want)
		return PS_EPROTO;
	for (size_t i = 0; i < want; i++) {
		int hi = ps_hex_value(text[2 * i]), lo = ps_hex_value(text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return PS_EPROTO;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return PS_OK;
}

int my_value_canon(const ps_table_def *def, int i, const char *text, unsigned long len,
                   ps_buf *out, bool *is_null, bool zero_dates_null, ps_error *err)
{
	unsigned bits;
	int k = kind_of(def, i, &bits);
	const char *col = def->table->columns[i].name;
	uint8_t b[16];
	int rc = PS_OK;

	*is_null = false;
	switch (k) {
	case V_FLOAT:
	case V_DOUBLE: {
		char tmp[64], *end = NULL;
		double v;
		if (len >= sizeof(tmp))
			goto bad;
		memcpy(tmp, text, len);
		tmp[len] = '\0';
		v = strtod(tmp, &end);
		if (end == tmp || *end)
			goto bad;
		return ps_binlog_float_text(out, v, k == V_FLOAT);
	}
	case V_BYTES:
		rc = ps_buf_puts(out, "\\x");
		for (unsigned long j = 0; rc == PS_OK && j < len; j++)
			rc = ps_buf_putc(out, text[j] >= 'A' && text[j] <= 'F' ? (char)(text[j] + 32)
			                                                      : text[j]);
		return rc;
	case V_INET6:
	case V_INET4:
		if (hex_bytes(text, len, b, k == V_INET6 ? 16 : 4) != PS_OK)
			goto bad;
		return ps_binlog_ext_text(out, k == V_INET6 ? PS_BINLOG_EXT_INET6 : PS_BINLOG_EXT_INET4,
		                          b);
	case V_DATE:
	case V_DATETIME:
	case V_TIMESTAMP:
	case V_TIME: {
		unsigned long n = len;
		bool zero = k != V_TIME && zero_date(text, len);
		if (zero && zero_dates_null) {
			*is_null = true;
			return PS_OK;
		}
		if (memchr(text, '.', len)) {
			while (n > 0 && text[n - 1] == '0')
				n--;
			if (n > 0 && text[n - 1] == '.')
				n--;
		}
		rc = ps_buf_append(out, text, n);
		if (rc == PS_OK && k == V_TIMESTAMP && !zero)
			rc = ps_buf_puts(out, "+00");
		return rc;
	}
	default:
		return ps_buf_append(out, text, len);
	}
bad:
	return ps_error_set(err, PS_EPROTO, "column %s of %s.%s: the server returned '%.*s', "
	                    "not the value text penstock asked for", col, def->table->schema,
	                    def->table->name, (int)(len > 64 ? 64 : len), text);
}
