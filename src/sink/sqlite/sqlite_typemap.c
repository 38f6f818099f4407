/*
 * sqlite_typemap.c — PostgreSQL to SQLite type mapping and value conversion (see
 * sqlite_typemap.h; the user-facing table is docs/types-sqlite.md).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sink/sqlite/sqlite_typemap.h"
#include "util/str.h"

/* PostgreSQL built-in type OIDs (pg_type.dat) that are not stored as TEXT. */
enum {
	OID_BOOL = 16,
	OID_BYTEA = 17,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_OID = 26,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701
};

static uint8_t storage_of_class(uint8_t type_class)
{
	switch (type_class) {
	case PS_TYPE_BOOL: return PS_SQLITE_BOOL;
	case PS_TYPE_INTEGER: return PS_SQLITE_INTEGER;
	case PS_TYPE_FLOAT: return PS_SQLITE_REAL;
	case PS_TYPE_BYTES: return PS_SQLITE_BLOB;
	default: return PS_SQLITE_TEXT;   /* text, numeric, json */
	}
}

static uint8_t storage_of_oid(uint32_t oid)
{
	switch (oid) {
	case OID_BOOL: return PS_SQLITE_BOOL;
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID: return PS_SQLITE_INTEGER;
	case OID_FLOAT4:
	case OID_FLOAT8: return PS_SQLITE_REAL;
	case OID_BYTEA: return PS_SQLITE_BLOB;
	default: return PS_SQLITE_TEXT;
	}
}

/* format_type() spellings of the same types; arrays ("integer[]") stay TEXT. */
static uint8_t storage_of_sql_type(const char *t)
{
	static const struct {
		const char *name;
		uint8_t storage;
	} names[] = {
		{"smallint", PS_SQLITE_INTEGER}, {"integer", PS_SQLITE_INTEGER},
		{"bigint", PS_SQLITE_INTEGER},   {"oid", PS_SQLITE_INTEGER},
		{"boolean", PS_SQLITE_BOOL},     {"real", PS_SQLITE_REAL},
		{"double precision", PS_SQLITE_REAL}, {"bytea", PS_SQLITE_BLOB},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(t, names[i].name) == 0)
			return names[i].storage;
	return PS_SQLITE_TEXT;
}

/* MySQL's type code of BIGINT; a MySQL source marks UNSIGNED integer
 * columns with type_mod 1. */
#define MYSQL_TYPE_LONGLONG 8

uint8_t ps_typemap_sqlite(const char *engine, const ps_column *col, const ps_column_def *def)
{
	uint8_t s = storage_of_class(col->type_class);

	/* BIGINT UNSIGNED reaches 2^64 - 1, past SQLite's INTEGER: a TEXT
	 * column keeps it exact (INTEGER affinity would make it a REAL). */
	if (engine && strcmp(engine, "mysql") == 0 && col->type_class == PS_TYPE_INTEGER &&
	    col->type_id == MYSQL_TYPE_LONGLONG && col->type_mod == 1)
		return PS_SQLITE_TEXT;

	if (s != PS_SQLITE_TEXT || col->type_class != PS_TYPE_TEXT)
		return s;
	/* Type ids and spellings below are PostgreSQL's. */
	if (!engine || strcmp(engine, "postgresql") != 0)
		return PS_SQLITE_TEXT;
	if (col->type_id != 0)
		return storage_of_oid(col->type_id);
	if (def && def->sql_type)
		return storage_of_sql_type(def->sql_type);
	return PS_SQLITE_TEXT;
}

const char *ps_typemap_sqlite_decl(uint8_t storage)
{
	switch (storage) {
	case PS_SQLITE_INTEGER:
	case PS_SQLITE_BOOL: return "INTEGER";
	case PS_SQLITE_REAL: return "REAL";
	case PS_SQLITE_BLOB: return "BLOB";
	default: return "TEXT";
	}
}

size_t ps_typemap_sqlite_scratch(uint8_t storage, const ps_value *v)
{
	if (storage != PS_SQLITE_BLOB || v->kind != PS_VALUE_TEXT || v->len < 2)
		return 0;
	return (v->len - 2) / 2;
}

static void set_text(ps_sqlite_datum *out, const ps_value *v)
{
	out->type = PS_DATUM_TEXT;
	out->p = v->data;
	out->n = v->len;
}

static int convert_integer(const ps_value *v, ps_sqlite_datum *out, const char **why)
{
	const char *s = v->data;
	char *end = NULL;
	long long n;

	/* strtoll would skip leading blanks and accept an empty string. */
	if (!((s[0] >= '0' && s[0] <= '9') ||
	      ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9'))) {
		*why = "is not a decimal integer";
		return PS_EINVAL;
	}
	errno = 0;
	n = strtoll(s, &end, 10);
	if (end != s + v->len) {
		*why = "is not a decimal integer";
		return PS_EINVAL;
	}
	if (errno == ERANGE) {
		/* Well formed but wider than 64 bits: keep it exact as text. */
		set_text(out, v);
		return 0;
	}
	out->type = PS_DATUM_INTEGER;
	out->i = (int64_t)n;
	return 0;
}

static int convert_bool(const ps_value *v, ps_sqlite_datum *out, const char **why)
{
	const char *s = v->data;

	out->type = PS_DATUM_INTEGER;
	if (strcmp(s, "t") == 0 || strcmp(s, "true") == 0) {
		out->i = 1;
		return 0;
	}
	if (strcmp(s, "f") == 0 || strcmp(s, "false") == 0) {
		out->i = 0;
		return 0;
	}
	out->type = PS_DATUM_NULL;
	*why = "is not a boolean (t or f)";
	return PS_EINVAL;
}

static int convert_real(const ps_value *v, ps_sqlite_datum *out, const char **why)
{
	const char *s = v->data;
	char *end = NULL;
	double d;

	if (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
		/* SQLite turns a NaN REAL into NULL: these stay TEXT. */
		set_text(out, v);
		return 0;
	}
	if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+' || s[0] == '.')) {
		*why = "is not a floating-point number";
		return PS_EINVAL;
	}
	d = strtod(s, &end);
	if (end != s + v->len) {
		*why = "is not a floating-point number";
		return PS_EINVAL;
	}
	/* errno ERANGE is also set for exact subnormals, so judge the result
	 * itself: only a value beyond double range is kept as text. */
	if (!isfinite(d)) {
		set_text(out, v);
		return 0;
	}
	out->type = PS_DATUM_REAL;
	out->r = d;
	return 0;
}

static int convert_blob(const ps_value *v, unsigned char *scratch, ps_sqlite_datum *out,
                        const char **why)
{
	const char *s = v->data;
	size_t n;

	if (v->len < 2 || s[0] != '\\' || s[1] != 'x' || (v->len - 2) % 2 != 0) {
		*why = "is not bytea hex output (\\x followed by pairs of hex digits)";
		return PS_EINVAL;
	}
	n = (v->len - 2) / 2;
	for (size_t i = 0; i < n; i++) {
		int hi = ps_hex_value(s[2 + 2 * i]), lo = ps_hex_value(s[3 + 2 * i]);

		if (hi < 0 || lo < 0) {
			*why = "is not bytea hex output (\\x followed by pairs of hex digits)";
			return PS_EINVAL;
		}
		scratch[i] = (unsigned char)(hi << 4 | lo);
	}
	out->type = PS_DATUM_BLOB;
	/* A zero-length blob still needs a non-NULL pointer, or SQLite binds NULL. */
	out->p = n ? (const void *)scratch : (const void *)"";
	out->n = n;
	return 0;
}

int ps_typemap_sqlite_convert(uint8_t storage, const ps_value *v, unsigned char *scratch,
                              ps_sqlite_datum *out, const char **why)
{
	const char *ignored = NULL;

	if (!why)
		why = &ignored;
	*why = NULL;
	memset(out, 0, sizeof(*out));
	if (v->kind == PS_VALUE_NULL)
		return 0;
	if (v->kind != PS_VALUE_TEXT || !v->data) {
		*why = "is the unchanged-value marker, which is never written";
		return PS_EINVAL;
	}
	switch (storage) {
	case PS_SQLITE_INTEGER: return convert_integer(v, out, why);
	case PS_SQLITE_BOOL: return convert_bool(v, out, why);
	case PS_SQLITE_REAL: return convert_real(v, out, why);
	case PS_SQLITE_BLOB: return convert_blob(v, scratch, out, why);
	default:
		set_text(out, v);
		return 0;
	}
}
