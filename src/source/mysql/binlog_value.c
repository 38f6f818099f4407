/*
 * binlog_value.c — one column value of a rows event, from its binlog bytes
 * to canonical text (the forms are listed in binlog.h).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Exact or an error. Every field of a packed value is range-checked
 *    (a DECIMAL group holds fewer than 10^9, a month at most 12, a TIME at
 *    most 838 hours, a BIT no bit past its width, a string no longer than its
 *    column): bytes the server cannot have written are PS_EPROTO, never text
 *    that merely looks plausible.
 *
 * 2. No allocation of its own and no snprintf on the common paths: text is
 *    built in a small stack buffer (numbers, dates) or appended straight to
 *    the caller's buffer (strings), which only grows up to its limit.
 *
 * 3. Errors name the row, the image and the column ("row 2 (after image),
 *    column 5 `price` decimal(10,2)") but that text is only built when there
 *    is an error; the caller passes where it is as numbers.
 *
 * 4. Formats (MariaDB sql/log_event*.cc, sql-common/my_time.c,
 *    strings/decimal.c; checked against the server by the integration test):
 *    integers little-endian; NEWDECIMAL groups of 9 digits in 4 big-endian
 *    bytes with the leftover digits in 1-4 bytes, the sign in the inverted
 *    top bit and every byte inverted when negative; DATE 3 bytes
 *    (year << 9 | month << 5 | day); DATETIME2 5 bytes big-endian
 *    (1 << 39) + (year * 13 + month) << 22 | day << 17 | h << 12 | m << 6 | s;
 *    TIMESTAMP2 4 bytes big-endian seconds; TIME2 3 bytes big-endian
 *    (1 << 23) + h << 12 | m << 6 | s; each followed by (fsp + 1) / 2 bytes of
 *    fraction, big-endian, in units of 10^-fsp rounded up to an even fsp;
 *    a negative TIME2 stores its fraction as a borrow from the integer part
 *    (so -00:00:00.5 is integer part -1 and fraction 0.5).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/binlog_internal.h"

#define DIG_PER_DEC 9

/* --- errors ---------------------------------------------------------------------------- */

static int vfail(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                 const char *fmt, ...) PS_PRINTF(4, 5);

static int vfail_code(bl_reader *r, int code, const ps_binlog_column *c, const bl_valpos *vp,
                      const char *detail)
{
	char field[256], type[64];

	ps_binlog_column_describe(c, type, sizeof(type));
	snprintf(field, sizeof(field), "row %" PRIu64 "%s, column %" PRIu32 " `%s` %s", vp->row,
	         vp->image, vp->column + 1, c->name ? c->name : "?", type);
	return ps__bl_fail_code(r, code, field, "%s", detail);
}

static int vfail(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                 const char *fmt, ...)
{
	char detail[PS_ERROR_MESSAGE_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return vfail_code(r, PS_EPROTO, c, vp, detail);
}

static int vbuf_fail(bl_reader *r, int rc, const ps_binlog_column *c, const bl_valpos *vp)
{
	return vfail_code(r, rc, c, vp, rc == PS_ETOOBIG ? "the row's text is over the limit"
	                  : "out of memory");
}

/* n bytes of the value at the reader's position, or a truncation error. */
static int vtake(bl_reader *r, size_t n, const uint8_t **p, const ps_binlog_column *c,
                 const bl_valpos *vp)
{
	char where[64];

	if (n <= bl_left(r)) {
		*p = r->buf + r->pos;
		r->pos += n;
		return PS_OK;
	}
	ps__bl_where(r, r->pos, where, sizeof(where));
	return vfail(r, c, vp, "truncated at %s (need %zu more)", where, n - bl_left(r));
}

/* --- small formatting helpers ------------------------------------------------------------- */

/* Writes v in decimal ending just before end; returns the first digit. */
static char *u64_digits(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static int put_u64(ps_buf *out, bool negative, uint64_t magnitude)
{
	char tmp[24], *end = tmp + sizeof(tmp), *p = u64_digits(end, magnitude);

	if (negative)
		*--p = '-';
	return ps_buf_append(out, p, (size_t)(end - p));
}

static char *put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

static char *put4(char *p, unsigned v)
{
	p = put2(p, v / 100);
	return put2(p, v % 100);
}

/* ".f" with trailing zeros removed, nothing when usec is 0. */
static char *put_fraction(char *p, uint32_t usec)
{
	char digits[6];
	int n = 6;

	if (usec == 0)
		return p;
	for (int i = 5; i >= 0; i--) {
		digits[i] = (char)('0' + usec % 10);
		usec /= 10;
	}
	while (n > 0 && digits[n - 1] == '0')
		n--;
	*p++ = '.';
	memcpy(p, digits, (size_t)n);
	return p + n;
}

static char *put_date(char *p, unsigned year, unsigned month, unsigned day)
{
	p = put4(p, year);
	*p++ = '-';
	p = put2(p, month);
	*p++ = '-';
	return put2(p, day);
}

static char *put_hms(char *p, unsigned hour, unsigned minute, unsigned second)
{
	if (hour >= 100)
		*p++ = (char)('0' + hour / 100);
	p = put2(p, hour % 100);
	*p++ = ':';
	p = put2(p, minute);
	*p++ = ':';
	return put2(p, second);
}

/* --- integers and floats --------------------------------------------------------------------- */

static int decode_int(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                      size_t n, ps_buf *out)
{
	const uint8_t *p = NULL;
	uint64_t u;
	int rc = vtake(r, n, &p, c, vp);

	if (rc != PS_OK)
		return rc;
	u = bl_le(p, n);
	if (!c->is_unsigned && (u >> (8 * n - 1)) & 1) {
		uint64_t mask = n == 8 ? UINT64_MAX : (((uint64_t)1 << (8 * n)) - 1);

		return put_u64(out, true, ((~u) + 1) & mask);
	}
	return put_u64(out, false, u);
}

/* PostgreSQL's float output: the shortest digits that read back as the same
 * value, in fixed notation unless the decimal exponent is < -4 or >= digs
 * (15 for double, 6 for float), then d.ddde+XX. */
int ps_binlog_float_text(ps_buf *out, double v, bool is_float)
{
	char sci[40], res[48], digits[24];
	int lo = 1, hi = is_float ? 9 : 17, exp10, nd = 0, digs = is_float ? 6 : 15;
	char *p = res, *e;

	if (isnan(v))
		return ps_buf_puts(out, "NaN");
	if (isinf(v))
		return ps_buf_puts(out, v < 0 ? "-Infinity" : "Infinity");
	/* more digits never read back worse, so bisect for the fewest */
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		bool same;

		snprintf(sci, sizeof(sci), "%.*e", mid - 1, v);
		same = is_float ? strtof(sci, NULL) == (float)v : strtod(sci, NULL) == v;
		if (same)
			hi = mid;
		else
			lo = mid + 1;
	}
	snprintf(sci, sizeof(sci), "%.*e", lo - 1, v);
	e = strchr(sci, 'e');
	if (!e)
		return PS_ERR;
	exp10 = (int)strtol(e + 1, NULL, 10);
	for (const char *s = sci; s < e; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (sci[0] == '-')
		*p++ = '-';
	if (exp10 < -4 || exp10 >= digs) {
		*p++ = digits[0];
		if (nd > 1) {
			*p++ = '.';
			memcpy(p, digits + 1, (size_t)nd - 1);
			p += nd - 1;
		}
		p += snprintf(p, 8, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
	} else if (exp10 < 0) {
		*p++ = '0';
		*p++ = '.';
		for (int i = 0; i < -exp10 - 1; i++)
			*p++ = '0';
		memcpy(p, digits, (size_t)nd);
		p += nd;
	} else {
		for (int i = 0; i <= exp10; i++)
			*p++ = i < nd ? digits[i] : '0';
		if (nd > exp10 + 1) {
			*p++ = '.';
			memcpy(p, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
			p += nd - exp10 - 1;
		}
	}
	return ps_buf_append(out, res, (size_t)(p - res));
}

static int decode_float(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                        ps_buf *out)
{
	const uint8_t *p = NULL;
	bool is_float = c->type == PS_MYSQL_TYPE_FLOAT;
	int rc = vtake(r, is_float ? 4 : 8, &p, c, vp);
	double v;

	if (rc != PS_OK)
		return rc;
	if (is_float) {
		uint32_t bits = (uint32_t)bl_le(p, 4);
		float f;

		memcpy(&f, &bits, sizeof(f));
		v = f;
	} else {
		uint64_t bits = bl_le(p, 8);

		memcpy(&v, &bits, sizeof(v));
	}
	return ps_binlog_float_text(out, v, is_float);
}

/* --- DECIMAL -------------------------------------------------------------------------------- */

static const uint8_t dig2bytes[DIG_PER_DEC + 1] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
static const uint32_t pow10_9[DIG_PER_DEC + 1] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000
};

/* Reads one group of `digits` digits from `bytes` bytes; checks its range. */
static bool dec_group(const uint8_t *d, size_t *pos, int bytes, int digits, uint8_t mask,
                      uint32_t *v)
{
	uint32_t x = 0;

	for (int i = 0; i < bytes; i++)
		x = (x << 8) | (uint8_t)(d[(*pos)++] ^ mask);
	*v = x;
	return x < pow10_9[digits];
}

static int decode_decimal(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                          ps_buf *out)
{
	int intg = c->precision - c->scale, intg0 = intg / DIG_PER_DEC, intg0x = intg % DIG_PER_DEC;
	int frac0 = c->scale / DIG_PER_DEC, frac0x = c->scale % DIG_PER_DEC;
	size_t size = (size_t)intg0 * 4 + dig2bytes[intg0x] + (size_t)frac0 * 4 + dig2bytes[frac0x];
	uint8_t d[40];
	char text[96], *p = text + 1, *intstart;   /* room for the sign */
	const uint8_t *raw = NULL;
	size_t pos = 0;
	uint8_t mask;
	uint32_t g;
	bool nonzero = false;
	int rc = vtake(r, size, &raw, c, vp);

	if (rc != PS_OK)
		return rc;
	memcpy(d, raw, size);
	mask = (d[0] & 0x80) ? 0 : 0xFF;           /* top bit set: not negative */
	d[0] ^= 0x80;
	intstart = p;
	if (intg0x && !dec_group(d, &pos, dig2bytes[intg0x], intg0x, mask, &g))
		goto bad;
	if (intg0x) {
		char tmp[12], *e = tmp + sizeof(tmp), *s = u64_digits(e, g);

		memcpy(p, s, (size_t)(e - s));
		p += e - s;
	}
	for (int i = 0; i < intg0; i++) {
		if (!dec_group(d, &pos, 4, DIG_PER_DEC, mask, &g))
			goto bad;
		for (int k = DIG_PER_DEC - 1; k >= 0; k--) {
			p[k] = (char)('0' + g % 10);
			g /= 10;
		}
		p += DIG_PER_DEC;
	}
	/* no leading zeros; "0" for an empty or all-zero integer part */
	while (intstart < p - 1 && *intstart == '0')
		intstart++;
	if (intstart == p)
		*p++ = '0';
	for (char *s = intstart; s < p; s++)
		nonzero |= *s != '0';
	if (c->scale) {
		char *fs;

		*p++ = '.';
		fs = p;
		for (int i = 0; i < frac0; i++) {
			if (!dec_group(d, &pos, 4, DIG_PER_DEC, mask, &g))
				goto bad;
			for (int k = DIG_PER_DEC - 1; k >= 0; k--) {
				p[k] = (char)('0' + g % 10);
				g /= 10;
			}
			p += DIG_PER_DEC;
		}
		if (frac0x) {
			if (!dec_group(d, &pos, dig2bytes[frac0x], frac0x, mask, &g))
				goto bad;
			for (int k = frac0x - 1; k >= 0; k--) {
				p[k] = (char)('0' + g % 10);
				g /= 10;
			}
			p += frac0x;
		}
		for (char *s = fs; s < p; s++)
			nonzero |= *s != '0';
	}
	if (mask && nonzero)
		*--intstart = '-';             /* no "-0.00": zero has no sign */
	rc = ps_buf_append(out, intstart, (size_t)(p - intstart));
	return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
bad:
	return vfail(r, c, vp, "DECIMAL group of %" PRIu32 " is out of range", g);
}

/* --- dates and times ------------------------------------------------------------------------ */

/* Reads the (fsp + 1) / 2 fraction bytes; *usec in microseconds. raw is the
 * value as stored (for TIME2's negative case). */
static int read_fraction(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                         uint32_t *raw, int *nbytes)
{
	const uint8_t *p = NULL;
	int n = (c->fsp + 1) / 2;
	int rc = PS_OK;

	*raw = 0;
	*nbytes = n;
	if (n > 0) {
		rc = vtake(r, (size_t)n, &p, c, vp);
		if (rc == PS_OK)
			*raw = (uint32_t)bl_be(p, (size_t)n);
	}
	return rc;
}

static uint32_t fraction_usec(uint32_t raw, int nbytes)
{
	return nbytes == 1 ? raw * 10000 : nbytes == 2 ? raw * 100 : raw;
}

static bool fraction_ok(uint32_t raw, int nbytes)
{
	return nbytes == 0 || (nbytes == 1 && raw < 100) || (nbytes == 2 && raw < 10000) ||
	       (nbytes == 3 && raw < 1000000);
}

/* Civil date of a day count from 1970-01-01 (days >= 0). */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d)
{
	int64_t era, yoe, doy, mp, yy;
	uint64_t doe;

	z += 719468;
	era = z / 146097;
	doe = (uint64_t)(z - era * 146097);
	yoe = (int64_t)((doe - doe / 1460 + doe / 36524 - doe / 146096) / 365);
	yy = yoe + era * 400;
	doy = (int64_t)doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = (unsigned)(yy + (*m <= 2));
}

static int put_datetime(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                        ps_buf *out, uint8_t *flags, unsigned year, unsigned month,
                        unsigned day, unsigned hour, unsigned minute, unsigned second,
                        uint32_t usec, bool with_time, const char *suffix)
{
	char text[48], *p = text;
	int rc;

	if (year > 9999 || month > 12 || day > 31 || hour > 23 || minute > 59 || second > 59 ||
	    usec > 999999)
		return vfail(r, c, vp, "date %u-%u-%u %u:%u:%u.%06" PRIu32 " is out of range",
		             year, month, day, hour, minute, second, usec);
	if (year == 0 || month == 0 || day == 0)
		*flags |= PS_BINLOG_VF_ZERO_DATE;
	p = put_date(p, year, month, day);
	if (with_time) {
		*p++ = ' ';
		p = put_hms(p, hour, minute, second);
		p = put_fraction(p, usec);
		if (suffix) {
			memcpy(p, suffix, strlen(suffix));
			p += strlen(suffix);
		}
	}
	rc = ps_buf_append(out, text, (size_t)(p - text));
	return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
}

static int put_timestamp(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                         ps_buf *out, uint8_t *flags, uint32_t secs, uint32_t usec)
{
	unsigned y, m, d;

	if (secs == 0 && usec == 0) {
		/* TIMESTAMP's zero value, printed by MariaDB without a zone */
		return put_datetime(r, c, vp, out, flags, 0, 0, 0, 0, 0, 0, 0, true, NULL);
	}
	civil_from_days(secs / 86400, &y, &m, &d);
	secs %= 86400;
	return put_datetime(r, c, vp, out, flags, y, m, d, secs / 3600, secs / 60 % 60, secs % 60,
	                    usec, true, "+00");
}

static int put_time(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                    ps_buf *out, bool negative, uint64_t hour, unsigned minute,
                    unsigned second, uint32_t usec)
{
	char text[32], *p = text;
	int rc;

	if (hour > 838 || minute > 59 || second > 59 || usec > 999999)
		return vfail(r, c, vp, "time %" PRIu64 ":%u:%u.%06" PRIu32 " is out of range",
		             hour, minute, second, usec);
	if (negative && (hour || minute || second || usec))
		*p++ = '-';
	p = put_hms(p, (unsigned)hour, minute, second);
	p = put_fraction(p, usec);
	rc = ps_buf_append(out, text, (size_t)(p - text));
	return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
}

static int decode_date(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                       ps_buf *out, uint8_t *flags)
{
	const uint8_t *p = NULL;
	uint32_t v;
	int rc = vtake(r, 3, &p, c, vp);

	if (rc != PS_OK)
		return rc;
	v = (uint32_t)bl_le(p, 3);
	return put_datetime(r, c, vp, out, flags, v >> 9, (v >> 5) & 15, v & 31, 0, 0, 0, 0,
	                    false, NULL);
}

/* The pre-5.6 DATETIME: YYYYMMDDhhmmss as an 8-byte integer. */
static int decode_datetime(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                           ps_buf *out, uint8_t *flags)
{
	const uint8_t *p = NULL;
	uint64_t v, date, time;
	int rc = vtake(r, 8, &p, c, vp);

	if (rc != PS_OK)
		return rc;
	v = bl_le(p, 8);
	date = v / 1000000;
	time = v % 1000000;
	if (date / 10000 > 9999)
		return vfail(r, c, vp, "DATETIME %" PRIu64 " is out of range", v);
	return put_datetime(r, c, vp, out, flags, (unsigned)(date / 10000),
	                    (unsigned)(date / 100 % 100), (unsigned)(date % 100),
	                    (unsigned)(time / 10000), (unsigned)(time / 100 % 100),
	                    (unsigned)(time % 100), 0, true, NULL);
}

static int decode_datetime2(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                            ps_buf *out, uint8_t *flags)
{
	const uint8_t *p = NULL;
	uint32_t frac = 0;
	int nfrac = 0;
	uint64_t v, ymd, ym, hms;
	int rc = vtake(r, 5, &p, c, vp);

	if (rc == PS_OK)
		rc = read_fraction(r, c, vp, &frac, &nfrac);
	if (rc != PS_OK)
		return rc;
	v = bl_be(p, 5);
	if (v < ((uint64_t)1 << 39) || !fraction_ok(frac, nfrac))
		return vfail(r, c, vp, "DATETIME2 0x%010" PRIx64 " fraction %" PRIu32
		             " is out of range", v, frac);
	v -= (uint64_t)1 << 39;
	ymd = v >> 17;
	ym = ymd >> 5;
	hms = v & 0x1ffff;
	return put_datetime(r, c, vp, out, flags, (unsigned)(ym / 13), (unsigned)(ym % 13),
	                    (unsigned)(ymd & 31), (unsigned)(hms >> 12), (unsigned)((hms >> 6) & 63),
	                    (unsigned)(hms & 63), fraction_usec(frac, nfrac), true, NULL);
}

/* TIMESTAMP (4 bytes little-endian) and TIMESTAMP2 (4 big-endian and a
 * fraction): seconds since the epoch, UTC. */
static int decode_timestamp(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                            ps_buf *out, uint8_t *flags)
{
	const uint8_t *p = NULL;
	uint32_t frac = 0;
	int nfrac = 0;
	bool v2 = c->type == PS_MYSQL_TYPE_TIMESTAMP2;
	int rc = vtake(r, 4, &p, c, vp);

	if (rc == PS_OK && v2)
		rc = read_fraction(r, c, vp, &frac, &nfrac);
	if (rc != PS_OK)
		return rc;
	if (!fraction_ok(frac, nfrac))
		return vfail(r, c, vp, "TIMESTAMP2 fraction %" PRIu32 " is out of range", frac);
	return put_timestamp(r, c, vp, out, flags, (uint32_t)(v2 ? bl_be(p, 4) : bl_le(p, 4)),
	                     fraction_usec(frac, nfrac));
}

/* The pre-5.6 TIME: [-]HHMMSS as a 3-byte signed integer. */
static int decode_time(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                       ps_buf *out)
{
	const uint8_t *p = NULL;
	uint32_t u, a;
	bool neg;
	int rc = vtake(r, 3, &p, c, vp);

	if (rc != PS_OK)
		return rc;
	u = (uint32_t)bl_le(p, 3);
	neg = (u & 0x800000u) != 0;
	a = neg ? (0x1000000u - u) : u;
	return put_time(r, c, vp, out, neg, a / 10000, a / 100 % 100, a % 100, 0);
}

static int decode_time2(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                        ps_buf *out)
{
	const uint8_t *p = NULL;
	uint32_t frac = 0;
	int nfrac = 0;
	int64_t intpart, packed;
	uint64_t mag;
	int rc = vtake(r, 3, &p, c, vp);

	if (rc == PS_OK)
		rc = read_fraction(r, c, vp, &frac, &nfrac);
	if (rc != PS_OK)
		return rc;
	intpart = (int64_t)bl_be(p, 3) - 0x800000;
	if (nfrac == 3) {
		/* fsp 5-6: the six bytes are one signed number */
		packed = (int64_t)((bl_be(p, 3) << 24) | frac) - ((int64_t)0x800000 << 24);
	} else {
		int64_t f = frac;

		if (intpart < 0 && f) {
			intpart++;
			f -= nfrac == 1 ? 0x100 : 0x10000;
		}
		if (f <= -(int64_t)pow10_9[2 * nfrac] || f >= (int64_t)pow10_9[2 * nfrac])
			return vfail(r, c, vp, "TIME2 fraction %" PRIu32 " is out of range", frac);
		packed = intpart * ((int64_t)1 << 24) + f * (nfrac == 1 ? 10000 : 100);
	}
	mag = packed < 0 ? (uint64_t)0 - (uint64_t)packed : (uint64_t)packed;
	if ((mag & 0xffffff) > 999999)
		return vfail(r, c, vp, "TIME2 fraction of %" PRIu64 " us is out of range",
		             mag & 0xffffff);
	return put_time(r, c, vp, out, packed < 0, mag >> 36, (unsigned)((mag >> 30) & 63),
	                (unsigned)((mag >> 24) & 63), (uint32_t)(mag & 0xffffff));
}

/* --- BIT, strings, ENUM, SET ----------------------------------------------------------------- */

static int decode_bit(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp, ps_buf *out)
{
	const uint8_t *p = NULL;
	size_t n = (c->bits + 7) / 8;
	char text[64];
	uint64_t v;
	int rc = vtake(r, n, &p, c, vp);

	if (rc != PS_OK)
		return rc;
	v = bl_be(p, n);
	if (c->bits < 64 && (v >> c->bits) != 0)
		return vfail(r, c, vp, "value 0x%" PRIx64 " has bits past the column's %" PRIu32,
		             v, c->bits);
	for (uint32_t i = 0; i < c->bits; i++)
		text[i] = (char)('0' + ((v >> (c->bits - 1 - i)) & 1));
	rc = ps_buf_append(out, text, c->bits);
	return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
}

static int put_converted(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                         ps_buf *out, const uint8_t *s, size_t n, uint32_t collation)
{
	char why[160];
	int rc;

	if (collation == 0)
		return vfail(r, c, vp, "charset unknown: the TABLE_MAP has no charset metadata "
		             "(binlog_row_metadata=NO_LOG?)");
	rc = ps__binlog_to_utf8(out, s, n, collation, why, sizeof(why));
	if (rc == PS_EPROTO)
		return vfail(r, c, vp, "%s", why);
	return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
}

/* UUID / INET6 / INET4 text of 16 (or, INET4, 4) bytes. */
int ps_binlog_ext_text(ps_buf *out, int ext, const uint8_t *b)
{
	static const char hex[] = "0123456789abcdef";
	char text[64], *p = text;

	if (ext == PS_BINLOG_EXT_UUID) {
		for (int i = 0; i < 16; i++) {
			if (i == 4 || i == 6 || i == 8 || i == 10)
				*p++ = '-';
			*p++ = hex[b[i] >> 4];
			*p++ = hex[b[i] & 15];
		}
	} else if (ext == PS_BINLOG_EXT_INET4) {
		p += snprintf(p, sizeof(text), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	} else {
		/* PostgreSQL's inet text: the longest run (first of equals) of two
		 * or more zero words is "::"; an IPv4-compatible (::/96, second-last
		 * word non-zero) or IPv4-mapped (::ffff:0:0/96) address ends dotted. */
		unsigned w[8];
		int best = -1, bestlen = 0, cur = -1, curlen = 0;

		for (int i = 0; i < 8; i++) {
			w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
			if (w[i] == 0) {
				if (cur < 0)
					cur = i;
				curlen = i - cur + 1;
				if (curlen > bestlen) {
					best = cur;
					bestlen = curlen;
				}
			} else {
				cur = -1;
			}
		}
		if (bestlen < 2)
			best = -1;
		for (int i = 0; i < 8; i++) {
			if (best >= 0 && i >= best && i < best + bestlen) {
				if (i == best)
					*p++ = ':';
				continue;
			}
			if (i != 0)
				*p++ = ':';
			if (i == 6 && best == 0 && (bestlen == 6 || (bestlen == 5 && w[5] == 0xffff))) {
				p += snprintf(p, 16, "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
				break;
			}
			p += snprintf(p, 8, "%x", w[i]);
		}
		if (best >= 0 && best + bestlen == 8)
			*p++ = ':';
	}
	return ps_buf_append(out, text, (size_t)(p - text));
}

/* UUID / INET6 / INET4 columns the caller marked: fixed binary, padded. */
static int put_ext(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp, ps_buf *out,
                   const uint8_t *s, size_t n)
{
	size_t want = c->ext == PS_BINLOG_EXT_INET4 ? 4 : 16;
	uint8_t b[16] = {0};
	int rc;

	if (c->real_type != PS_MYSQL_TYPE_STRING || c->collation != PS_BINLOG_COLLATION_BINARY ||
	    c->max_bytes != want)
		return vfail(r, c, vp, "marked %s but is not BINARY(%zu)",
		             c->ext == PS_BINLOG_EXT_UUID ? "uuid" : c->ext == PS_BINLOG_EXT_INET6 ?
		             "inet6" : "inet4", want);
	memcpy(b, s, n);                         /* n <= max_bytes, checked by the caller */
	rc = ps_binlog_ext_text(out, c->ext, b);
	return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
}

static int decode_string(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                         ps_buf *out)
{
	const uint8_t *p = NULL, *s = NULL;
	size_t prefix, n;
	bool fixed = c->real_type == PS_MYSQL_TYPE_STRING;
	bool is_blob = !fixed && c->real_type != PS_MYSQL_TYPE_VARCHAR &&
	               c->real_type != PS_MYSQL_TYPE_VAR_STRING;
	int rc;

	/* blobs and GEOMETRY: 1..4 length bytes; CHAR and VARCHAR: 1, or 2
	 * when the column can hold more than 255 bytes */
	prefix = is_blob ? c->max_bytes : c->max_bytes > 255 ? 2 : 1;
	rc = vtake(r, prefix, &p, c, vp);
	if (rc != PS_OK)
		return rc;
	n = (size_t)bl_le(p, prefix);
	if (!is_blob && n > c->max_bytes)
		return vfail(r, c, vp, "%zu bytes in a column of at most %" PRIu32, n, c->max_bytes);
	rc = vtake(r, n, &s, c, vp);
	if (rc != PS_OK)
		return rc;
	if (c->ext != PS_BINLOG_EXT_NONE)
		return put_ext(r, c, vp, out, s, n);
	if (c->type == PS_MYSQL_TYPE_GEOMETRY) {
		rc = ps__binlog_put_hex(out, s, n, 0);
		return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
	}
	if (fixed && c->collation == PS_BINLOG_COLLATION_BINARY) {
		/* BINARY(n): the server strips trailing 0x00 bytes */
		rc = ps__binlog_put_hex(out, s, n, c->max_bytes - n);
		return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
	}
	return put_converted(r, c, vp, out, s, n, c->collation);
}

static int put_label(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp, ps_buf *out,
                     uint32_t i)
{
	return put_converted(r, c, vp, out, (const uint8_t *)c->labels[i], c->label_lens[i],
	                     c->label_collation);
}

static int decode_enum_set(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                           ps_buf *out, uint8_t *flags)
{
	const uint8_t *p = NULL;
	uint64_t v;
	int rc = vtake(r, c->max_bytes, &p, c, vp);

	if (rc != PS_OK)
		return rc;
	v = bl_le(p, c->max_bytes);
	if (c->nlabels == 0) {
		*flags |= PS_BINLOG_VF_NO_LABELS;
		rc = put_u64(out, false, v);
		return rc == PS_OK ? PS_OK : vbuf_fail(r, rc, c, vp);
	}
	if (c->real_type == PS_MYSQL_TYPE_ENUM) {
		if (v > c->nlabels)
			return vfail(r, c, vp, "ENUM index %" PRIu64 " past its %" PRIu32 " labels",
			             v, c->nlabels);
		return v == 0 ? PS_OK : put_label(r, c, vp, out, (uint32_t)v - 1);   /* 0: '' */
	}
	if (c->nlabels < 64 && (v >> c->nlabels) != 0)
		return vfail(r, c, vp, "SET bits 0x%" PRIx64 " past its %" PRIu32 " labels", v,
		             c->nlabels);
	for (uint32_t i = 0, first = 1; i < c->nlabels; i++) {
		if (!((v >> i) & 1))
			continue;
		if (!first) {
			rc = ps_buf_putc(out, ',');
			if (rc != PS_OK)
				return vbuf_fail(r, rc, c, vp);
		}
		first = 0;
		rc = put_label(r, c, vp, out, i);
		if (rc != PS_OK)
			return rc;
	}
	return PS_OK;
}

/* --- dispatch -------------------------------------------------------------------------------- */

int ps__binlog_value_decode(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                            ps_buf *out, uint8_t *flags)
{
	const uint8_t *p = NULL;
	int rc;

	*flags = 0;
	switch (c->real_type) {
	case PS_MYSQL_TYPE_TINY: rc = decode_int(r, c, vp, 1, out); break;
	case PS_MYSQL_TYPE_SHORT: rc = decode_int(r, c, vp, 2, out); break;
	case PS_MYSQL_TYPE_INT24: rc = decode_int(r, c, vp, 3, out); break;
	case PS_MYSQL_TYPE_LONG: rc = decode_int(r, c, vp, 4, out); break;
	case PS_MYSQL_TYPE_LONGLONG: rc = decode_int(r, c, vp, 8, out); break;
	case PS_MYSQL_TYPE_FLOAT:
	case PS_MYSQL_TYPE_DOUBLE:
		rc = decode_float(r, c, vp, out);
		break;
	case PS_MYSQL_TYPE_NEWDECIMAL:
		return decode_decimal(r, c, vp, out);
	case PS_MYSQL_TYPE_YEAR:
		rc = vtake(r, 1, &p, c, vp);
		if (rc == PS_OK)
			rc = put_u64(out, false, p[0] ? 1900u + p[0] : 0);
		break;
	case PS_MYSQL_TYPE_DATE:
	case PS_MYSQL_TYPE_NEWDATE:
		return decode_date(r, c, vp, out, flags);
	case PS_MYSQL_TYPE_DATETIME:
		return decode_datetime(r, c, vp, out, flags);
	case PS_MYSQL_TYPE_DATETIME2:
		return decode_datetime2(r, c, vp, out, flags);
	case PS_MYSQL_TYPE_TIMESTAMP:
	case PS_MYSQL_TYPE_TIMESTAMP2:
		return decode_timestamp(r, c, vp, out, flags);
	case PS_MYSQL_TYPE_TIME:
		return decode_time(r, c, vp, out);
	case PS_MYSQL_TYPE_TIME2:
		return decode_time2(r, c, vp, out);
	case PS_MYSQL_TYPE_BIT:
		return decode_bit(r, c, vp, out);
	case PS_MYSQL_TYPE_STRING:
	case PS_MYSQL_TYPE_VARCHAR:
	case PS_MYSQL_TYPE_VAR_STRING:
	case PS_MYSQL_TYPE_TINY_BLOB:
	case PS_MYSQL_TYPE_BLOB:
	case PS_MYSQL_TYPE_MEDIUM_BLOB:
	case PS_MYSQL_TYPE_LONG_BLOB:
	case PS_MYSQL_TYPE_GEOMETRY:
		return decode_string(r, c, vp, out);
	case PS_MYSQL_TYPE_ENUM:
	case PS_MYSQL_TYPE_SET:
		return decode_enum_set(r, c, vp, out, flags);
	case PS_MYSQL_TYPE_JSON:
		return vfail(r, c, vp, "MySQL binary JSON not supported yet");
	case PS_MYSQL_TYPE_DECIMAL:
		return vfail(r, c, vp, "pre-5.0 DECIMAL not supported yet");
	default:
		return vfail(r, c, vp, "column type %u not supported yet", c->real_type);
	}
	if (rc == PS_ETOOBIG || rc == PS_ENOMEM)
		return vbuf_fail(r, rc, c, vp);
	return rc;
}
