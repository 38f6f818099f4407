/*
 * mysink_typemap.c — types and values for MySQL / MariaDB targets (see
 * mysink_typemap.h; the user's version of the rules is docs/types-mariadb.md).
 *
 * NOTES ON THE DESIGN
 *
 *  1. Exact or refused. A created column holds every value the source
 *     column can hold, spelled back the same way; where MariaDB has no such
 *     type the column is refused with what to do instead (give the source
 *     column a precision, or create the target column yourself). Types with
 *     no MariaDB counterpart whose text is the value (arrays, intervals,
 *     inet, bit strings, time with time zone, ranges, enums) are kept as
 *     that text: lossless, and compare reads them back as they were.
 *  2. Values that a column of the right type still cannot hold (infinite or
 *     BC dates, years past 9999, NaN and infinite floats and numerics, UUIDs
 *     of version 8 to 15 with variant 0 to 7, which MariaDB's UUID type
 *     refuses) are refused one by one when they come, naming table, column
 *     and row: a clamped or rounded value would be a silent change.
 *  3. Keys must be indexable whole: InnoDB indexes at most 3072 bytes, so a
 *     key column of unbounded text becomes VARCHAR(768) (768 characters of
 *     up to 4 bytes) and of unbounded bytea VARBINARY(3072); a longer value
 *     then fails to load with MariaDB's own error instead of being cut.
 *  4. Comparisons bind text: a parameter compared with a numeric or
 *     temporal column is CAST to the column's type, because MariaDB compares
 *     a string with a number as doubles (two BIGINTs above 2^53 would match).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "penstock/error.h"
#include "sink/mysql/mysink_typemap.h"

/* ==== created columns ===================================================== */

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "(n)" or "(n,m)" right after prefix: 1 or 2 numbers, 0 when none. */
static int mods(const char *s, const char *prefix, long *a, long *b)
{
	const char *p = s + strlen(prefix);
	char *end = NULL;

	if (*p != '(')
		return 0;
	*a = strtol(p + 1, &end, 10);
	if (end == p + 1)
		return 0;
	if (*end == ')')
		return 1;
	if (*end != ',')
		return 0;
	p = end + 1;
	while (*p == ' ')
		p++;
	*b = strtol(p, &end, 10);
	if (end == p || *end != ')')
		return 0;
	return 2;
}

static int put(char *buf, size_t len, const char *text)
{
	snprintf(buf, len, "%s", text);
	return PS_OK;
}

static int refuse(char *why, size_t why_len, const char *fmt, const char *a)
    PS_PRINTF(3, 0);

/* fmt has one %s, for a. */
static int refuse(char *why, size_t why_len, const char *fmt, const char *a)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(why, why_len, fmt, a);
#pragma GCC diagnostic pop
	return PS_EINVAL;
}

/* Unbounded text (NOTES 3). */
static int long_text(const mys_type_in *in, char *buf, size_t len)
{
	return put(buf, len, in->in_unique ? "VARCHAR(768)" : "LONGTEXT");
}

/* A type by its class alone: another engine's type, a user type, or a
 * PostgreSQL type not listed below. */
static int by_class(const mys_type_in *in, char *buf, size_t len, char *why, size_t why_len)
{
	switch (in->type_class) {
	case PS_TYPE_BOOL: return put(buf, len, "TINYINT(1)");
	case PS_TYPE_INTEGER: return put(buf, len, "BIGINT");
	case PS_TYPE_FLOAT: return put(buf, len, "DOUBLE");
	case PS_TYPE_NUMERIC:
		return refuse(why, why_len, "%s has no precision, and MariaDB's DECIMAL holds at "
		              "most 65 digits, 38 of them after the point", in->sql_type ? in->sql_type
		                                                                         : "numeric");
	case PS_TYPE_JSON: return put(buf, len, "JSON");
	case PS_TYPE_BYTES: return put(buf, len, in->in_unique ? "VARBINARY(3072)" : "LONGBLOB");
	case PS_TYPE_DATE: return put(buf, len, "DATE");
	case PS_TYPE_TIME: return put(buf, len, "TIME(6)");
	case PS_TYPE_TIMESTAMP:
	case PS_TYPE_TIMESTAMPTZ: return put(buf, len, "DATETIME(6)");
	case PS_TYPE_UUID: return put(buf, len, "UUID");
	default: return long_text(in, buf, len);
	}
}

/* varchar(n) and friends: n characters of utf8mb4. */
static int varchar(const mys_type_in *in, long n, char *buf, size_t len, char *why,
                   size_t why_len)
{
	char tmp[64];

	if (in->in_unique && n > 768) {
		snprintf(tmp, sizeof(tmp), "%ld", n);
		return refuse(why, why_len, "a key column of %s characters cannot be indexed whole "
		              "by InnoDB (3072 bytes, 768 characters of utf8mb4)", tmp);
	}
	if (n <= 16383)
		snprintf(buf, len, "VARCHAR(%ld)", n);
	else
		snprintf(buf, len, "%s", n <= 4194303 ? "MEDIUMTEXT" : "LONGTEXT");
	return PS_OK;
}

/* Fractional digits of time(p) / timestamp(p): 6 when none are given. */
static long fsp_of(const char *t, const char *prefix)
{
	long p = 6, unused = 0;

	if (mods(t, prefix, &p, &unused) != 1 || p < 0 || p > 6)
		p = 6;
	return p;
}

/* PostgreSQL's format_type() spellings. */
static int pg_type(const mys_type_in *in, char *buf, size_t len, char *why, size_t why_len)
{
	const char *t = in->sql_type;
	long a = 0, b = 0;
	int n;

	if (ends(t, "[]"))                                    /* the array's literal */
		return long_text(in, buf, len);
	if (in->user_type)
		return by_class(in, buf, len, why, why_len);
	if (strcmp(t, "boolean") == 0) return put(buf, len, "TINYINT(1)");
	if (strcmp(t, "smallint") == 0) return put(buf, len, "SMALLINT");
	if (strcmp(t, "integer") == 0) return put(buf, len, "INT");
	if (strcmp(t, "bigint") == 0) return put(buf, len, "BIGINT");
	if (strcmp(t, "oid") == 0) return put(buf, len, "INT UNSIGNED");
	if (strcmp(t, "real") == 0) return put(buf, len, "FLOAT");
	if (strcmp(t, "double precision") == 0) return put(buf, len, "DOUBLE");
	if (starts(t, "numeric")) {
		n = mods(t, "numeric", &a, &b);
		if (n == 0)
			return by_class(&(mys_type_in){.sql_type = t, .type_class = PS_TYPE_NUMERIC},
			                buf, len, why, why_len);
		if (n == 1)
			b = 0;
		if (a < 1 || a > 65 || b < 0 || b > 38 || b > a)
			return refuse(why, why_len, "%s does not fit MariaDB's DECIMAL (at most 65 "
			              "digits, 0 to 38 of them after the point)", t);
		snprintf(buf, len, "DECIMAL(%ld,%ld)", a, b);
		return PS_OK;
	}
	if (strcmp(t, "money") == 0) return put(buf, len, "VARCHAR(64)");
	if (starts(t, "character varying")) {
		if (mods(t, "character varying", &a, &b) == 1)
			return varchar(in, a, buf, len, why, why_len);
		return long_text(in, buf, len);
	}
	if (starts(t, "character(")) {
		if (mods(t, "character", &a, &b) == 1 && a <= 255) {
			snprintf(buf, len, "CHAR(%ld)", a);
			return PS_OK;
		}
		if (mods(t, "character", &a, &b) == 1)
			return varchar(in, a, buf, len, why, why_len);
	}
	if (strcmp(t, "name") == 0) return put(buf, len, "VARCHAR(64)");
	if (strcmp(t, "\"char\"") == 0) return put(buf, len, "VARCHAR(4)");
	if (strcmp(t, "bytea") == 0)
		return put(buf, len, in->in_unique ? "VARBINARY(3072)" : "LONGBLOB");
	if (strcmp(t, "date") == 0) return put(buf, len, "DATE");
	if (starts(t, "time") && ends(t, "without time zone") && !starts(t, "timestamp")) {
		snprintf(buf, len, "TIME(%ld)", fsp_of(t, "time"));
		return PS_OK;
	}
	if (starts(t, "time") && ends(t, "with time zone") && !starts(t, "timestamp"))
		return put(buf, len, "VARCHAR(32)");              /* "10:00:00+02": its text */
	if (starts(t, "timestamp") && (ends(t, "with time zone") || ends(t, "without time zone"))) {
		snprintf(buf, len, "DATETIME(%ld)", fsp_of(t, "timestamp"));
		return PS_OK;
	}
	if (starts(t, "interval")) return put(buf, len, "VARCHAR(100)");
	if (strcmp(t, "uuid") == 0) return put(buf, len, "UUID");
	if (strcmp(t, "json") == 0 || strcmp(t, "jsonb") == 0) return put(buf, len, "JSON");
	if (strcmp(t, "inet") == 0 || strcmp(t, "cidr") == 0) return put(buf, len, "VARCHAR(43)");
	if (strcmp(t, "macaddr") == 0) return put(buf, len, "VARCHAR(17)");
	if (strcmp(t, "macaddr8") == 0) return put(buf, len, "VARCHAR(23)");
	if (starts(t, "bit varying")) {
		if (mods(t, "bit varying", &a, &b) == 1)
			return varchar(in, a, buf, len, why, why_len);
		return long_text(in, buf, len);
	}
	if (starts(t, "bit(") && mods(t, "bit", &a, &b) == 1)
		return varchar(in, a, buf, len, why, why_len);
	return by_class(in, buf, len, why, why_len);
}

/* A MySQL / MariaDB COLUMN_TYPE is this engine's own spelling: kept when it
 * is only a type (words, numbers, parentheses, commas, quoted labels). */
static int my_type(const mys_type_in *in, char *buf, size_t len, char *why, size_t why_len)
{
	const char *t = in->sql_type;
	bool quoted = false;

	for (const char *p = t; *p; p++) {
		if (*p == '\'') {
			if (quoted && p[1] == '\'') {
				p++;
				continue;
			}
			quoted = !quoted;
			continue;
		}
		if (!quoted && !isalnum((unsigned char)*p) && !strchr(" (),_", *p))
			return refuse(why, why_len, "type %s is not a column type MariaDB reads", t);
	}
	if (quoted || strlen(t) >= len)
		return refuse(why, why_len, "type %s is not a column type MariaDB reads", t);
	if (in->in_unique && (strcasecmp(t, "longtext") == 0 || strcasecmp(t, "mediumtext") == 0 ||
	                      strcasecmp(t, "text") == 0))
		return put(buf, len, "VARCHAR(768)");
	if (in->in_unique && (strcasecmp(t, "longblob") == 0 || strcasecmp(t, "mediumblob") == 0 ||
	                      strcasecmp(t, "blob") == 0))
		return put(buf, len, "VARBINARY(3072)");
	return put(buf, len, t);
}

int ps__mys_type_for(const mys_type_in *in, char *buf, size_t len, char *why, size_t why_len)
{
	if (why_len)
		why[0] = '\0';
	if (in->sql_type && in->engine && strcmp(in->engine, "postgresql") == 0)
		return pg_type(in, buf, len, why, why_len);
	if (in->sql_type && in->engine && strcmp(in->engine, "mysql") == 0)
		return my_type(in, buf, len, why, why_len);
	return by_class(in, buf, len, why, why_len);
}

bool ps__mys_ident_ok(const char *name)
{
	size_t chars = 0, n = strlen(name);

	if (n == 0 || name[n - 1] == ' ')
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		chars += (*p & 0xc0) != 0x80;
	return chars <= 64;
}

/* ==== existing columns ==================================================== */

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcasecmp(s, *list) == 0)
			return true;
	return false;
}

/* The fractional digits of "datetime(3)", "time(6)": "" when none. */
static void fsp_suffix(const char *column_type, char *out, size_t len)
{
	const char *p = strchr(column_type, '(');
	long v;

	out[0] = '\0';
	if (!p)
		return;
	v = strtol(p + 1, NULL, 10);
	if (v >= 0 && v <= 6)
		snprintf(out, len, "(%ld)", v);
}

void ps__mys_col_from_catalog(mys_col *out, const char *data_type, const char *column_type,
                              const char *charset, bool generated, int type_class)
{
	static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int", "integer",
	                                   "bigint", NULL};
	static const char *const binaries[] = {"binary", "varbinary", "tinyblob", "blob",
	                                       "mediumblob", "longblob", "geometry", "point",
	                                       "linestring", "polygon", "multipoint",
	                                       "multilinestring", "multipolygon",
	                                       "geometrycollection", NULL};
	static const char *const texts[] = {"char", "varchar", "tinytext", "text", "mediumtext",
	                                    "longtext", "enum", "set", "json", NULL};
	char fsp[8];
	bool is_unsigned = column_type && strstr(column_type, "unsigned") != NULL;

	memset(out, 0, sizeof(*out));
	out->generated = generated;
	snprintf(out->param, sizeof(out->param), "?");
	snprintf(out->where, sizeof(out->where), "?");
	if (!data_type)
		return;
	if (in_list(data_type, ints)) {
		out->conv = type_class == PS_TYPE_BOOL ? MYS_CONV_BOOL : MYS_CONV_TEXT;
		snprintf(out->where, sizeof(out->where), "CAST(? AS %s)",
		         is_unsigned ? "UNSIGNED" : "SIGNED");
	} else if (strcasecmp(data_type, "decimal") == 0 || strcasecmp(data_type, "numeric") == 0) {
		const char *p = column_type ? strchr(column_type, '(') : NULL;
		const char *q = p ? strchr(p, ')') : NULL;

		out->conv = MYS_CONV_DECIMAL;
		if (p && q && q - p < 16)
			snprintf(out->where, sizeof(out->where), "CAST(? AS DECIMAL%.*s)",
			         (int)(q - p + 1), p);
		else
			snprintf(out->where, sizeof(out->where), "CAST(? AS DECIMAL(65,30))");
	} else if (strcasecmp(data_type, "float") == 0 || strcasecmp(data_type, "double") == 0 ||
	           strcasecmp(data_type, "real") == 0) {
		out->conv = MYS_CONV_FLOAT;
		out->single = strcasecmp(data_type, "float") == 0;
		snprintf(out->where, sizeof(out->where), "CAST(? AS %s)",
		         out->single ? "FLOAT" : "DOUBLE");
	} else if (strcasecmp(data_type, "date") == 0) {
		out->conv = MYS_CONV_DATE;
		snprintf(out->where, sizeof(out->where), "CAST(? AS DATE)");
	} else if (strcasecmp(data_type, "datetime") == 0 || strcasecmp(data_type, "timestamp") == 0) {
		out->conv = type_class == PS_TYPE_TIMESTAMPTZ ? MYS_CONV_TSTZ : MYS_CONV_DATETIME;
		fsp_suffix(column_type ? column_type : "", fsp, sizeof(fsp));
		snprintf(out->where, sizeof(out->where), "CAST(? AS DATETIME%s)", fsp);
	} else if (strcasecmp(data_type, "time") == 0) {
		fsp_suffix(column_type ? column_type : "", fsp, sizeof(fsp));
		snprintf(out->where, sizeof(out->where), "CAST(? AS TIME%s)", fsp);
	} else if (strcasecmp(data_type, "year") == 0) {
		out->conv = MYS_CONV_YEAR;
	} else if (strcasecmp(data_type, "uuid") == 0) {
		out->conv = MYS_CONV_UUID;
	} else if (strcasecmp(data_type, "bit") == 0) {
		out->conv = MYS_CONV_BIT;
		snprintf(out->param, sizeof(out->param), "CAST(? AS UNSIGNED)");
		snprintf(out->where, sizeof(out->where), "CAST(? AS UNSIGNED)");
	} else if (in_list(data_type, binaries)) {
		out->binary = true;
		out->conv = type_class == PS_TYPE_BYTES ? MYS_CONV_BYTES : MYS_CONV_TEXT;
	} else if (in_list(data_type, texts)) {
		out->text = true;
		out->enum_error = strcasecmp(data_type, "enum") == 0 && column_type &&
		                  !strstr(column_type, "''") ;
		out->fixed = strcasecmp(data_type, "char") == 0;
		snprintf(out->charset, sizeof(out->charset), "%s", charset ? charset : "utf8mb4");
		for (char *p = out->charset; *p; p++)      /* a name MariaDB knows: [a-z0-9_] */
			if (!isalnum((unsigned char)*p) && *p != '_')
				*p = '_';
	}
}

/* ==== values ============================================================== */

size_t ps__mys_scratch_len(size_t len)
{
	return len / 2 + 32;
}

static bool text_is(const char *v, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(v, word, len) == 0;
}

/* Dates and timestamps MariaDB has no room for (NOTES 2). */
static int check_date(const char *v, size_t len, const char **why)
{
	size_t digits = 0;

	if (text_is(v, len, "infinity") || text_is(v, len, "-infinity")) {
		*why = "is infinite, and MariaDB has no infinite date or time";
		return PS_EINVAL;
	}
	if (len >= 3 && memcmp(v + len - 3, " BC", 3) == 0) {
		*why = "is before the year 1 (BC), and MariaDB's dates start at the year 0";
		return PS_EINVAL;
	}
	while (digits < len && v[digits] >= '0' && v[digits] <= '9')
		digits++;
	if (digits > 4) {
		*why = "is past the year 9999, where MariaDB's dates end";
		return PS_EINVAL;
	}
	return PS_OK;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int ps__mys_convert(const mys_col *c, const char *v, size_t len, char *scratch,
                    const char **out, size_t *out_len, const char **why)
{
	*out = v;
	*out_len = len;
	*why = NULL;
	switch (c->conv) {
	case MYS_CONV_BOOL:
		if (text_is(v, len, "t") || text_is(v, len, "true") || text_is(v, len, "1"))
			*out = "1";
		else if (text_is(v, len, "f") || text_is(v, len, "false") || text_is(v, len, "0"))
			*out = "0";
		else {
			*why = "is not a boolean (t or f)";
			return PS_EINVAL;
		}
		*out_len = 1;
		return PS_OK;
	case MYS_CONV_BYTES:
		if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2) {
			*why = "is not bytes in hex (\\x...)";
			return PS_EINVAL;
		}
		for (size_t i = 2; i < len; i += 2) {
			int hi = hex_nibble(v[i]), lo = hex_nibble(v[i + 1]);

			if (hi < 0 || lo < 0) {
				*why = "is not bytes in hex (\\x...)";
				return PS_EINVAL;
			}
			scratch[(i - 2) / 2] = (char)(hi << 4 | lo);
		}
		*out = scratch;
		*out_len = (len - 2) / 2;
		return PS_OK;
	case MYS_CONV_TSTZ:
		if (check_date(v, len, why) != PS_OK)
			return PS_EINVAL;
		if (len > 3 && memcmp(v + len - 3, "+00", 3) == 0)
			*out_len = len - 3;
		else if (len > 6 && memcmp(v + len - 6, "+00:00", 6) == 0)
			*out_len = len - 6;
		else if (len >= 10 && memcmp(v, "0000-00-00", 10) == 0)
			;                  /* MariaDB's zero TIMESTAMP, spelled without a zone */
		else {
			*why = "is not a time in UTC (+00)";
			return PS_EINVAL;
		}
		return PS_OK;
	case MYS_CONV_DATETIME:
	case MYS_CONV_DATE:
		return check_date(v, len, why);
	case MYS_CONV_FLOAT:
	case MYS_CONV_DECIMAL:
		if (text_is(v, len, "NaN")) {
			*why = c->conv == MYS_CONV_FLOAT
			       ? "is NaN, which MariaDB's FLOAT and DOUBLE cannot hold"
			       : "is NaN, which MariaDB's DECIMAL cannot hold";
			return PS_EINVAL;
		}
		if (text_is(v, len, "Infinity") || text_is(v, len, "-Infinity")) {
			*why = c->conv == MYS_CONV_FLOAT
			       ? "is infinite, which MariaDB's FLOAT and DOUBLE cannot hold"
			       : "is infinite, which MariaDB's DECIMAL cannot hold";
			return PS_EINVAL;
		}
		if (c->conv == MYS_CONV_FLOAT && c->single && len < 64) {
			/* The shortest text of a float read as a double can lie past
			 * the float's range (3.4028235e+38 > FLT_MAX), which MariaDB
			 * refuses before rounding: give it the float's exact double. */
			char tmp[64], *end = NULL;
			float f;

			memcpy(tmp, v, len);
			tmp[len] = '\0';
			f = strtof(tmp, &end);
			if (end != tmp + len) {
				*why = "is not a number";
				return PS_EINVAL;
			}
			*out_len = (size_t)snprintf(scratch, 32, "%.17g", (double)f);
			*out = scratch;
		}
		return PS_OK;
	case MYS_CONV_UUID:
		/* MariaDB's UUID stores versions 1 to 5 (variant 8 to b) with their
		 * time parts swapped and marks them by those bits; a value whose
		 * version digit is 8 to f with a variant digit 0 to 7 is refused
		 * (10.11: "Incorrect uuid value"), though PostgreSQL's uuid takes
		 * any 128 bits. The digits sit at 14 and 19 of the hyphenated
		 * text; any other spelling is left to the server. */
		if (len == 36 && v[8] == '-' && v[13] == '-' && v[18] == '-' && v[23] == '-' &&
		    hex_nibble(v[14]) >= 8 && hex_nibble(v[19]) >= 0 && hex_nibble(v[19]) < 8) {
			*why = "is a UUID of version 8 to 15 with variant 0 to 7 (its digits at "
			       "positions 15 and 20), which MariaDB's UUID type cannot hold";
			return PS_EINVAL;
		}
		return PS_OK;
	case MYS_CONV_BIT: {
		unsigned long long bits = 0;

		if (len == 0 || len > 64) {
			*why = "is not a string of at most 64 bits";
			return PS_EINVAL;
		}
		for (size_t i = 0; i < len; i++) {
			if (v[i] != '0' && v[i] != '1') {
				*why = "is not a string of bits (0 and 1)";
				return PS_EINVAL;
			}
			bits = bits << 1 | (unsigned long long)(v[i] - '0');
		}
		*out_len = (size_t)snprintf(scratch, 24, "%llu", bits);
		*out = scratch;
		return PS_OK;
	}
	case MYS_CONV_YEAR:
		if (text_is(v, len, "0")) {
			*out = "0000";
			*out_len = 4;
		}
		return PS_OK;
	default:
		return PS_OK;
	}
}
