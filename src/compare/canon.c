/*
 * canon.c — one canonical text per value, so that two engines (or two
 * spellings in one engine) that hold the same value compare equal.
 *
 * The input is always a value's PostgreSQL text form (what an output
 * function prints under PG_SESSION_OPTIONS), as every side gives it (the
 * contract in cmp_side.h, note 3: side_sqlite.c turns what SQLite stored
 * back into that form). Which kind a column has is the source side's word
 * (side_pg.c: by type OID). Canonical forms:
 *   bool     "t" / "f" (also from true/false/1/0/yes/no/on/off)
 *   int      no '+', no leading zeros, "0" for -0
 *   float    "%.17g" of the double it parses to (SQLite stores doubles);
 *            0 for -0 (SQLite drops the sign); NaN/Infinity/-Infinity kept
 *   numeric  no leading zeros, no trailing fraction zeros: 1.50 -> 1.5
 *   bytea    "\x" and lower-case hex
 *   tstz     "YYYY-MM-DD HH:MM:SS[.f]+00": an offset is applied, not kept
 *   other    unchanged
 * Text that does not look like its kind is left unchanged: it then compares
 * byte for byte, which can only report a difference, never hide one.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compare/cmp_internal.h"

static bool word_in(const char *v, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && strncasecmp(v, *words, len) == 0)
			return true;
	return false;
}

static int canon_bool(const char *v, size_t len, ps_buf *out)
{
	static const char *const yes[] = {"t", "true", "1", "y", "yes", "on", NULL};
	static const char *const no[] = {"f", "false", "0", "n", "no", "off", NULL};

	if (word_in(v, len, yes))
		return ps_buf_putc(out, 't');
	if (word_in(v, len, no))
		return ps_buf_putc(out, 'f');
	return ps_buf_append(out, v, len);
}

static bool all_digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/* int and numeric: [sign] digits [. digits] */
static int canon_decimal(const char *v, size_t len, bool fraction_ok, ps_buf *out)
{
	const char *p = v, *end = v + len, *dot, *ip, *fp = NULL;
	size_t ilen, flen = 0;
	bool neg = false;

	if (p < end && (*p == '-' || *p == '+')) {
		neg = *p == '-';
		p++;
	}
	dot = memchr(p, '.', (size_t)(end - p));
	if (dot && !fraction_ok)
		return ps_buf_append(out, v, len);
	ip = p;
	ilen = (size_t)((dot ? dot : end) - p);
	if (dot) {
		fp = dot + 1;
		flen = (size_t)(end - fp);
	}
	if ((ilen == 0 && flen == 0) || !all_digits(ip, ilen) || (fp && !all_digits(fp, flen)))
		return ps_buf_append(out, v, len);
	while (ilen > 0 && *ip == '0') {
		ip++;
		ilen--;
	}
	while (flen > 0 && fp[flen - 1] == '0')
		flen--;
	if (ilen == 0 && flen == 0)
		return ps_buf_putc(out, '0');
	if (neg && ps_buf_putc(out, '-') != PS_OK)
		return PS_ENOMEM;
	if (ilen == 0 ? ps_buf_putc(out, '0') : ps_buf_append(out, ip, ilen))
		return PS_ENOMEM;
	if (flen > 0 && (ps_buf_putc(out, '.') || ps_buf_append(out, fp, flen)))
		return PS_ENOMEM;
	return PS_OK;
}

static int canon_float(const char *v, size_t len, ps_buf *out)
{
	char tmp[64], *end = NULL;
	double d;

	if (len == 0 || len >= sizeof(tmp))
		return ps_buf_append(out, v, len);
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	if (strcmp(tmp, "NaN") == 0 || strcmp(tmp, "Infinity") == 0 || strcmp(tmp, "-Infinity") == 0)
		return ps_buf_append(out, v, len);
	if (!((tmp[0] >= '0' && tmp[0] <= '9') || tmp[0] == '-' || tmp[0] == '+' || tmp[0] == '.'))
		return ps_buf_append(out, v, len);
	errno = 0;
	d = strtod(tmp, &end);
	if (end != tmp + len || !isfinite(d))
		return ps_buf_append(out, v, len);
	if (d == 0)
		return ps_buf_putc(out, '0');
	return ps_buf_printf(out, "%.17g", d);
}

static int canon_bytea(const char *v, size_t len, ps_buf *out)
{
	int rc;

	if (len < 2 || v[0] != '\\' || (v[1] != 'x' && v[1] != 'X'))
		return ps_buf_append(out, v, len);
	rc = ps_buf_reserve(out, len);
	if (rc != PS_OK)
		return rc;
	ps_buf_puts(out, "\\x");
	for (size_t i = 2; i < len; i++) {
		char c = v[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		ps_buf_putc(out, c);
	}
	return PS_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static long long days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
	long long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int num(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff]{+|-}HH[:MM[:SS]]", four-digit years only
 * (others, BC and infinity are left as they are). */
static int canon_tstz(const char *v, size_t len, ps_buf *out)
{
	int mo, d, h, mi, s, oh, om = 0, os = 0, sign;
	long long y, secs, days;
	size_t i = 19, frac, fraclen;

	if (len < 22 || v[4] != '-' || v[7] != '-' || (v[10] != ' ' && v[10] != 'T') ||
	    v[13] != ':' || v[16] != ':')
		return ps_buf_append(out, v, len);
	y = num(v, 4);
	mo = num(v + 5, 2);
	d = num(v + 8, 2);
	h = num(v + 11, 2);
	mi = num(v + 14, 2);
	s = num(v + 17, 2);
	if (y < 0 || mo < 1 || d < 1 || h < 0 || mi < 0 || s < 0)
		return ps_buf_append(out, v, len);
	frac = i;
	if (i < len && v[i] == '.')
		for (i++; i < len && v[i] >= '0' && v[i] <= '9'; i++)
			;
	fraclen = i - frac;
	if (i + 3 > len || (v[i] != '+' && v[i] != '-'))
		return ps_buf_append(out, v, len);
	sign = v[i] == '-' ? -1 : 1;
	oh = num(v + i + 1, 2);
	i += 3;
	if (i < len && v[i] == ':') {
		om = num(v + i + 1, 2);
		i += 3;
	}
	if (i < len && v[i] == ':') {
		os = num(v + i + 1, 2);
		i += 3;
	}
	if (i != len || oh < 0 || om < 0 || os < 0)
		return ps_buf_append(out, v, len);
	secs = (long long)h * 3600 + mi * 60 + s - sign * ((long long)oh * 3600 + om * 60 + os);
	days = days_from_civil(y, mo, d);
	while (secs < 0) {
		secs += 86400;
		days--;
	}
	days += secs / 86400;
	secs %= 86400;
	civil_from_days(days, &y, &mo, &d);
	if (y < 1 || y > 9999)
		return ps_buf_append(out, v, len);
	if (ps_buf_printf(out, "%04lld-%02d-%02d %02lld:%02lld:%02lld", y, mo, d, secs / 3600,
	                  secs / 60 % 60, secs % 60) != PS_OK)
		return PS_ENOMEM;
	if (ps_buf_append(out, v + frac, fraclen) != PS_OK)
		return PS_ENOMEM;
	return ps_buf_puts(out, "+00");
}

int ps__cmp_canon(uint8_t kind, const char *v, size_t len, ps_buf *out)
{
	switch (kind) {
	case CMP_BOOL: return canon_bool(v, len, out);
	case CMP_INT: return canon_decimal(v, len, false, out);
	case CMP_NUMERIC: return canon_decimal(v, len, true, out);
	case CMP_FLOAT: return canon_float(v, len, out);
	case CMP_BYTEA: return canon_bytea(v, len, out);
	case CMP_TSTZ: return canon_tstz(v, len, out);
	default: return ps_buf_append(out, v, len);
	}
}

bool ps__cmp_equal(uint8_t kind, const char *a, size_t alen, const char *b, size_t blen)
{
	ps_buf ca, cb;
	bool eq;

	if (!a || !b)
		return !a && !b;
	if (alen == blen && memcmp(a, b, alen) == 0)
		return true;
	if (kind == CMP_TEXT)
		return false;
	ps_buf_init(&ca, CMP_VALUE_MAX);
	ps_buf_init(&cb, CMP_VALUE_MAX);
	if (ps__cmp_canon(kind, a, alen, &ca) != PS_OK || ps__cmp_canon(kind, b, blen, &cb) != PS_OK)
		eq = false;   /* out of memory: say they differ rather than hide it */
	else
		eq = ca.len == cb.len && memcmp(ca.data, cb.data, ca.len) == 0;
	ps_buf_free(&ca);
	ps_buf_free(&cb);
	return eq;
}

uint64_t ps__cmp_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void ps__cmp_row_hash(const cmp_table *t, const char *const *vals, const size_t *lens,
                      ps_buf *scratch, uint64_t out[2])
{
	uint64_t a = PS_CMP_FNV_SEED, b = 0x84222325cbf29ce4ULL;

	for (int i = 0; i < t->ncols; i++) {
		unsigned char tag = vals[i] ? 1 : 0;
		uint64_t n;

		ps_buf_reset(scratch);
		if (vals[i] && ps__cmp_canon(t->kind[i], vals[i], lens[i], scratch) != PS_OK) {
			ps_buf_reset(scratch);
			ps_buf_append(scratch, vals[i], lens[i]);   /* best effort */
		}
		n = scratch->len;
		/* Tag and length first: NULL, "" and column boundaries stay apart. */
		a = ps__cmp_fnv(a, &tag, 1);
		a = ps__cmp_fnv(a, &n, sizeof(n));
		b = ps__cmp_fnv(b, &n, sizeof(n));
		b = ps__cmp_fnv(b, &tag, 1);
		if (n) {
			a = ps__cmp_fnv(a, scratch->data, n);
			b = ps__cmp_fnv(b ^ 0x9e3779b97f4a7c15ULL, scratch->data, n);
		}
	}
	out[0] = a;
	out[1] = b;
}
