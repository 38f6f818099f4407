/*
 * envelope_dbz.c — the Debezium event for brokers: key, value and flattened
 * value, with or without the JSON converter's schemas (see envelope.h,
 * "Debezium events", and docs/kafka.md).
 *
 * NOTES ON THE DESIGN
 *
 *  1. A table's schemas (key, envelope, flattened value) do not change
 *     while its definition does not: they are rendered once per ps_table,
 *     on first use, and kept in the envelope's name cache with its names
 *     (envelope.h note 2), so an event costs a few appends.
 *  2. The field order is Kafka Connect's: a struct's fields in schema order,
 *     a schema as {"type", "fields" | "name", "version", "parameters",
 *     "field"} with "optional" after the type (JsonConverter.asJsonSchema).
 *     Consumers do not care, but a key's bytes decide its partition, so the
 *     key is byte for byte what the JSON converter writes for the same
 *     struct (docs/kafka.md, partitions).
 *  3. Rows carry every column; a column the source did not send reads null
 *     (old key-only rows) or the placeholder (unchanged TOAST).
 *  4. Decimals in precise mode are Java's BigInteger.toByteArray of the
 *     unscaled value (minimal big-endian two's complement), base64; a
 *     column without a declared scale is Debezium's VariableScaleDecimal
 *     {"scale", "value"}. NaN and infinities have no such form: null.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/version.h"
#include "sink/envelope_internal.h"

#define SCHEMA_LIMIT ((size_t)16 << 20)

/* PostgreSQL type OIDs (pg_type.dat) whose width Debezium tells apart. */
#define PG_INT8 20
#define PG_INT2 21
#define PG_INT4 23
#define PG_FLOAT4 700

static const char SOURCE_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":["
	"{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},"
	"{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\"version\":1,"
	"\"parameters\":{\"allowed\":\"true,first,first_in_data_collection,last_in_data_collection,"
	"last,false,incremental\"},\"default\":\"false\",\"field\":\"snapshot\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},"
	"{\"type\":\"string\",\"optional\":true,\"field\":\"sequence\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"schema\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"table\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"txId\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"lsn\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"xmin\"}],"
	"\"optional\":false,\"name\":\"io.debezium.connector.postgresql.Source\",\"field\":\"source\"}";

/* A MySQL/MariaDB source's block: Debezium's MySQL connector's fields
 * (io.debezium.connector.mysql.Source); the binlog fields come from the
 * change's source_info, as in the JSON-lines event. */
static const char MYSQL_SOURCE_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":["
	"{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},"
	"{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\"version\":1,"
	"\"parameters\":{\"allowed\":\"true,first,first_in_data_collection,last_in_data_collection,"
	"last,false,incremental\"},\"default\":\"false\",\"field\":\"snapshot\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},"
	"{\"type\":\"string\",\"optional\":true,\"field\":\"sequence\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
	"{\"type\":\"string\",\"optional\":true,\"field\":\"table\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"server_id\"},"
	"{\"type\":\"string\",\"optional\":true,\"field\":\"gtid\"},"
	"{\"type\":\"string\",\"optional\":false,\"field\":\"file\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"pos\"},"
	"{\"type\":\"int32\",\"optional\":false,\"field\":\"row\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"thread\"},"
	"{\"type\":\"string\",\"optional\":true,\"field\":\"query\"}],"
	"\"optional\":false,\"name\":\"io.debezium.connector.mysql.Source\",\"field\":\"source\"}";

static const char TXN_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":["
	"{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},"
	"{\"type\":\"int64\",\"optional\":false,\"field\":\"data_collection_order\"}],"
	"\"optional\":true,\"name\":\"event.block\",\"version\":1,\"field\":\"transaction\"}";

static const char ENVELOPE_TAIL_SCHEMA[] =
	"{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
	"{\"type\":\"boolean\",\"optional\":true,\"field\":\"reprocessing\"}";

static const char FLAT_TAIL_SCHEMA[] =
	"{\"type\":\"string\",\"optional\":true,\"field\":\"__deleted\"},"
	"{\"type\":\"string\",\"optional\":true,\"field\":\"__op\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"__source_ts_ms\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"__lsn\"}";

/* A logical message (op m): Debezium's message event, on <prefix>.message. */
static const char MESSAGE_VALUE_SCHEMA[] =
	"{\"type\":\"struct\",\"fields\":[";
static const char MESSAGE_VALUE_SCHEMA_TAIL[] =
	",{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
	"{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
	"{\"type\":\"struct\",\"fields\":["
	"{\"type\":\"string\",\"optional\":false,\"field\":\"prefix\"},"
	"{\"type\":\"bytes\",\"optional\":true,\"field\":\"content\"}],"
	"\"optional\":true,\"name\":\"io.debezium.connector.postgresql.Message\",\"field\":\"message\"}],"
	"\"optional\":false,\"name\":\"io.debezium.connector.postgresql.MessageValue\"}";

/* --- style ------------------------------------------------------------------ */

void ps__envelope_style_free(ps_event_style *style)
{
	if (!style)
		return;
	free(style->server_name);
	free(style->placeholder);
	free(style);
}

void ps__envelope_dbz_clear(ps_envelope_names *e)
{
	for (int i = 0; i < PS_DBZ_NPARTS; i++) {
		free(e->dbz[i]);
		e->dbz[i] = NULL;
	}
	e->dbz_built = false;
	e->nkeys = 0;
}

int ps_envelope_set_style(ps_envelope *env, const char *server_name, bool schemas, int decimals,
                          const char *placeholder, ps_error *err)
{
	ps_event_style *st = calloc(1, sizeof(*st));

	if (st) {
		st->server_name = strdup(server_name ? server_name : "");
		st->placeholder = strdup(placeholder ? placeholder : "");
		st->schemas = schemas;
		st->decimals = decimals;
	}
	if (!st || !st->server_name || !st->placeholder) {
		ps__envelope_style_free(st);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	ps__envelope_style_free(env->style);
	env->style = st;
	for (int i = 0; env->cache && i < PS_ENVELOPE_CACHE_SIZE; i++)
		ps__envelope_dbz_clear(&env->cache[i]);
	return PS_OK;
}

/* --- value spellings ------------------------------------------------------- */

static bool is_pg(const ps_table *t)
{
	return t->engine && strcmp(t->engine, "postgresql") == 0;
}

static bool is_mysql(const ps_table *t)
{
	return t && t->engine && strcmp(t->engine, "mysql") == 0;
}

/* The column's type class. A PostgreSQL source that still hands dates,
 * times and UUIDs over as TEXT (their canonical text is already the
 * class's, change.h) gets the class its type OID names, so their schema and
 * ISO spelling are Debezium's. */
static uint8_t class_of(const ps_table *t, const ps_column *c)
{
	if (c->type_class != PS_TYPE_TEXT || !is_pg(t))
		return c->type_class;
	switch (c->type_id) {
	case 1082: return PS_TYPE_DATE;          /* date */
	case 1083: return PS_TYPE_TIME;          /* time */
	case 1114: return PS_TYPE_TIMESTAMP;     /* timestamp */
	case 1184: return PS_TYPE_TIMESTAMPTZ;   /* timestamptz */
	case 2950: return PS_TYPE_UUID;          /* uuid */
	default: return PS_TYPE_TEXT;
	}
}

/* A numeric column's declared precision and scale, when its engine says. */
static bool numeric_scale(const ps_table *t, const ps_column *c, int *precision, int *scale)
{
	int32_t m;

	if (!is_pg(t) || c->type_mod < 4)
		return false;
	m = c->type_mod - 4;
	*precision = (m >> 16) & 0xffff;
	*scale = ((m & 0x7ff) ^ 1024) - 1024;   /* PostgreSQL 15 allows negative scales */
	return true;
}

/* Java's BigInteger.toByteArray of the unscaled value of decimal text s at
 * scale (own: the text's own scale), into a malloc'd *out; *scale_out is the
 * scale used. PS_EINVAL when s is no finite decimal or has more fraction
 * digits than scale takes without loss. */
int ps__decimal_unscaled_bytes(const char *s, size_t len, int scale, bool own,
                               unsigned char **out, size_t *n, int *scale_out)
{
	size_t i = 0, ndig = 0, frac = 0, nlimbs = 1, nbytes;
	bool neg = false, dot = false;
	uint32_t *limbs = NULL;
	unsigned char *bytes = NULL;
	char *digits = NULL;
	int rc = PS_EINVAL;

	*out = NULL;
	*n = 0;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	digits = malloc(len + (scale > 0 ? (size_t)scale : 0) + 1);
	if (!digits)
		return PS_ENOMEM;
	for (; i < len; i++) {
		if (s[i] == '.' && !dot) {
			dot = true;
		} else if (s[i] >= '0' && s[i] <= '9') {
			digits[ndig++] = s[i];
			frac += dot;
		} else {
			goto cleanup;
		}
	}
	if (ndig == 0)
		goto cleanup;
	if (own) {
		scale = (int)frac;
	} else if ((long)scale >= (long)frac) {
		for (long k = (long)frac; k < scale; k++)
			digits[ndig++] = '0';
	} else {
		size_t drop = (size_t)((long)frac - scale);
		if (drop > ndig)
			goto cleanup;
		for (size_t k = ndig - drop; k < ndig; k++)
			if (digits[k] != '0')
				goto cleanup;
		ndig -= drop;
		if (ndig == 0)
			digits[ndig++] = '0';
	}
	/* decimal digits to base 2^32 limbs, nine digits at a time */
	limbs = calloc(ndig / 9 + 2, sizeof(*limbs));
	if (!limbs) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	for (size_t d = 0; d < ndig;) {
		uint32_t chunk = 0, mul = 1;
		for (int k = 0; k < 9 && d < ndig; k++, d++) {
			chunk = chunk * 10 + (uint32_t)(digits[d] - '0');
			mul *= 10;
		}
		uint64_t carry = chunk;
		for (size_t l = 0; l < nlimbs; l++) {
			uint64_t v = (uint64_t)limbs[l] * mul + carry;
			limbs[l] = (uint32_t)v;
			carry = v >> 32;
		}
		if (carry)
			limbs[nlimbs++] = (uint32_t)carry;
	}
	/* big-endian magnitude, one spare byte for the sign */
	nbytes = nlimbs * 4 + 1;
	bytes = calloc(nbytes, 1);
	if (!bytes) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	for (size_t l = 0; l < nlimbs; l++)
		for (int b = 0; b < 4; b++)
			bytes[nbytes - 1 - l * 4 - (size_t)b] = (unsigned char)(limbs[l] >> (8 * b));
	if (neg) {   /* two's complement over all nbytes: invert, add one */
		unsigned carry = 1;
		for (size_t k = nbytes; k-- > 0;) {
			unsigned v = (unsigned)(unsigned char)~bytes[k] + carry;
			bytes[k] = (unsigned char)v;
			carry = v >> 8;
		}
	}
	/* minimal: drop a leading byte that only repeats the next one's sign */
	{
		size_t start = 0;
		unsigned char fill = neg ? 0xff : 0x00;
		while (start + 1 < nbytes && bytes[start] == fill &&
		       ((bytes[start + 1] & 0x80) != 0) == neg)
			start++;
		memmove(bytes, bytes + start, nbytes - start);
		*n = nbytes - start;
	}
	*out = bytes;
	bytes = NULL;
	*scale_out = scale;
	rc = PS_OK;
cleanup:
	free(digits);
	free(limbs);
	free(bytes);
	return rc;
}

/* text + 'Z', or with the date/time separator 'T' and "+00" as 'Z'
 * (isostring); anything else (infinity, BC, far years) as the source
 * spells it. */
static void put_iso(ps_env_out *o, uint8_t cls, const char *s, size_t len)
{
	char tmp[64];
	size_t n = len;

	if (len + 2 > sizeof(tmp) || (len > 0 && (s[0] < '0' || s[0] > '9')) ||
	    (len >= 3 && memcmp(s + len - 3, " BC", 3) == 0)) {
		ps__env_str(o, s, len);
		return;
	}
	memcpy(tmp, s, len);
	switch (cls) {
	case PS_TYPE_DATE:
		if (len != 10 || s[4] != '-')
			goto as_is;
		break;
	case PS_TYPE_TIME:
		if (len < 8 || s[2] != ':')
			goto as_is;
		break;
	case PS_TYPE_TIMESTAMP:
		if (len < 19 || s[10] != ' ')
			goto as_is;
		tmp[10] = 'T';
		break;
	case PS_TYPE_TIMESTAMPTZ:
		if (len < 22 || s[10] != ' ' || memcmp(s + len - 3, "+00", 3) != 0)
			goto as_is;
		tmp[10] = 'T';
		n = len - 3;
		break;
	default:
		goto as_is;
	}
	tmp[n++] = 'Z';
	ps__env_str(o, tmp, n);
	return;
as_is:
	ps__env_str(o, s, len);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "\x..." as base64 bytes; text that is not hex as a plain string. */
static void put_bytes(ps_env_out *o, const char *s, size_t len)
{
	unsigned char stackbuf[512], *raw = stackbuf;
	size_t n = (len - 2) / 2;

	if (len < 2 || s[0] != '\\' || s[1] != 'x' || (len % 2) != 0) {
		ps__env_str(o, s, len);
		return;
	}
	if (n > sizeof(stackbuf)) {
		raw = malloc(n);
		if (!raw) {
			o->rc = o->rc ? o->rc : PS_ENOMEM;
			return;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
		if (hi < 0 || lo < 0) {
			if (raw != stackbuf)
				free(raw);
			ps__env_str(o, s, len);
			return;
		}
		raw[i] = (unsigned char)(hi << 4 | lo);
	}
	if (o->rc == 0)
		o->rc = ps_json_append_base64(o->b, raw, n);
	if (raw != stackbuf)
		free(raw);
}

static void put_decimal(ps_env_out *o, const ps_table *t, const ps_column *col, const char *s,
                        size_t len, const ps_event_style *st)
{
	unsigned char *bytes = NULL;
	size_t n = 0;
	int precision = 0, scale = 0, used;
	bool fixed;

	if (st->decimals != PS_DECIMAL_PRECISE) {
		ps__env_str(o, s, len);
		return;
	}
	fixed = numeric_scale(t, col, &precision, &scale);
	if (ps__decimal_unscaled_bytes(s, len, scale, !fixed, &bytes, &n, &used) != PS_OK) {
		PS_ENV_LIT(o, "null");   /* NaN, infinities (note 4) */
		return;
	}
	if (!fixed) {
		PS_ENV_LIT(o, "{\"scale\":");
		ps__env_i64(o, used);
		PS_ENV_LIT(o, ",\"value\":");
	}
	if (o->rc == 0)
		o->rc = ps_json_append_base64(o->b, bytes, n);
	if (!fixed)
		PS_ENV_LIT(o, "}");
	free(bytes);
}

/* One value in Debezium's spelling (envelope.h). */
static void put_dbz_value(ps_env_out *o, const ps_table *t, const ps_column *col,
                          const ps_value *v, const ps_event_style *st)
{
	uint8_t cls = class_of(t, col);

	if (v->kind == PS_VALUE_UNCHANGED) {
		if (cls == PS_TYPE_BYTES) {
			if (o->rc == 0)
				o->rc = ps_json_append_base64(o->b, st->placeholder, strlen(st->placeholder));
		} else {
			ps__env_cstr_or_null(o, st->placeholder);
		}
		return;
	}
	if (v->kind != PS_VALUE_TEXT || !v->data) {
		PS_ENV_LIT(o, "null");
		return;
	}
	switch (cls) {
	case PS_TYPE_INTEGER:
		if (ps__env_is_json_integer(v->data, v->len)) {
			ps__env_put(o, v->data, v->len);
			return;
		}
		break;
	case PS_TYPE_FLOAT:
		if (ps__env_is_json_number(v->data, v->len)) {
			ps__env_put(o, v->data, v->len);
			return;
		}
		break;
	case PS_TYPE_BOOL:
		if (v->len == 1 && (v->data[0] == 't' || v->data[0] == 'f')) {
			ps__env_bool(o, v->data[0] == 't');
			return;
		}
		break;
	case PS_TYPE_NUMERIC:
		put_decimal(o, t, col, v->data, v->len, st);
		return;
	case PS_TYPE_BYTES:
		put_bytes(o, v->data, v->len);
		return;
	case PS_TYPE_DATE:
	case PS_TYPE_TIME:
	case PS_TYPE_TIMESTAMP:
	case PS_TYPE_TIMESTAMPTZ:
		put_iso(o, cls, v->data, v->len);
		return;
	default:
		break;
	}
	ps__env_str(o, v->data, v->len);
}

/* --- schemas (note 1) ------------------------------------------------------ */

/* Kafka Connect's schema of one column, closed with its field name. */
static void put_field_schema(ps_env_out *o, const ps_table *t, int i, bool optional,
                             const ps_envelope_names *names, const ps_event_style *st)
{
	const ps_column *c = &t->columns[i];
	const char *type = "string", *name = NULL;
	int precision = 0, scale = 0;
	bool fixed = false;

	switch (class_of(t, c)) {
	case PS_TYPE_BOOL: type = "boolean"; break;
	case PS_TYPE_INTEGER:
		type = is_pg(t) && c->type_id == PG_INT2 ? "int16"
		     : is_pg(t) && c->type_id == PG_INT4 ? "int32" : "int64";
		break;
	case PS_TYPE_FLOAT: type = is_pg(t) && c->type_id == PG_FLOAT4 ? "float" : "double"; break;
	case PS_TYPE_NUMERIC:
		if (st->decimals == PS_DECIMAL_PRECISE) {
			fixed = numeric_scale(t, c, &precision, &scale);
			if (!fixed) {
				PS_ENV_LIT(o, "{\"type\":\"struct\",\"fields\":["
				              "{\"type\":\"int32\",\"optional\":false,\"field\":\"scale\"},"
				              "{\"type\":\"bytes\",\"optional\":false,\"field\":\"value\"}],"
				              "\"optional\":");
				ps__env_bool(o, optional);
				PS_ENV_LIT(o, ",\"name\":\"io.debezium.data.VariableScaleDecimal\",\"version\":1,"
				              "\"doc\":\"Variable scaled decimal\",\"field\":");
				ps__env_column_name(o, names, i);
				PS_ENV_LIT(o, "}");
				return;
			}
			type = "bytes";
			name = "org.apache.kafka.connect.data.Decimal";
		}
		break;
	case PS_TYPE_JSON: name = "io.debezium.data.Json"; break;
	case PS_TYPE_BYTES: type = "bytes"; break;
	case PS_TYPE_DATE: name = "io.debezium.time.IsoDate"; break;
	case PS_TYPE_TIME: name = "io.debezium.time.IsoTime"; break;
	case PS_TYPE_TIMESTAMP: name = "io.debezium.time.IsoTimestamp"; break;
	case PS_TYPE_TIMESTAMPTZ: name = "io.debezium.time.ZonedTimestamp"; break;
	case PS_TYPE_UUID: name = "io.debezium.data.Uuid"; break;
	default: break;
	}
	PS_ENV_LIT(o, "{\"type\":\"");
	ps__env_put(o, type, strlen(type));
	PS_ENV_LIT(o, "\",\"optional\":");
	ps__env_bool(o, optional);
	if (name) {
		PS_ENV_LIT(o, ",\"name\":\"");
		ps__env_put(o, name, strlen(name));
		PS_ENV_LIT(o, "\",\"version\":1");
	}
	if (fixed) {
		PS_ENV_LIT(o, ",\"parameters\":{\"scale\":\"");
		ps__env_i64(o, scale);
		PS_ENV_LIT(o, "\",\"connect.decimal.precision\":\"");
		ps__env_i64(o, precision);
		PS_ENV_LIT(o, "\"}");
	}
	PS_ENV_LIT(o, ",\"field\":");
	ps__env_column_name(o, names, i);
	PS_ENV_LIT(o, "}");
}

/* "<server>.<schema>.<table>.<suffix>" as a JSON string. */
static void put_schema_name(ps_env_out *o, const ps_event_style *st, const ps_table *t,
                            const char *suffix)
{
	ps_buf tmp;

	ps_buf_init(&tmp, SCHEMA_LIMIT);
	if (ps_buf_printf(&tmp, "%s.%s.%s.%s", st->server_name, t->schema ? t->schema : "",
	                  t->name ? t->name : "", suffix) != 0) {
		o->rc = o->rc ? o->rc : PS_ENOMEM;
	} else {
		ps__env_str(o, tmp.data, tmp.len);
	}
	ps_buf_free(&tmp);
}

/* The struct of the row's columns, as a field named field (or, with
 * field NULL, a top-level schema) with the flattened fields appended. */
static void put_row_schema(ps_env_out *o, const ps_table *t, const ps_envelope_names *names,
                           const ps_event_style *st, const char *field, bool flat)
{
	PS_ENV_LIT(o, "{\"type\":\"struct\",\"fields\":[");
	for (int i = 0; i < t->ncolumns; i++) {
		if (i)
			PS_ENV_LIT(o, ",");
		put_field_schema(o, t, i, true, names, st);
	}
	if (flat) {
		if (t->ncolumns)
			PS_ENV_LIT(o, ",");
		ps__env_put(o, FLAT_TAIL_SCHEMA, sizeof(FLAT_TAIL_SCHEMA) - 1);
	}
	PS_ENV_LIT(o, "],\"optional\":");
	ps__env_bool(o, field != NULL);
	PS_ENV_LIT(o, ",\"name\":");
	put_schema_name(o, st, t, "Value");
	if (field) {
		PS_ENV_LIT(o, ",\"field\":\"");
		ps__env_put(o, field, strlen(field));
		PS_ENV_LIT(o, "\"");
	}
	PS_ENV_LIT(o, "}");
}

static bool key_column(const ps_table *t, int i)
{
	return t->columns[i].is_key && t->replica_identity != 'f';
}

/* Renders one part into a malloc'd string. */
static int render_part(char **out, int part, const ps_table *t, const ps_envelope_names *names,
                       const ps_event_style *st)
{
	ps_buf b;
	ps_env_out o = {&b, 0};
	bool first = true;

	ps_buf_init(&b, SCHEMA_LIMIT);
	switch (part) {
	case PS_DBZ_KEY_SCHEMA:
		PS_ENV_LIT(&o, "{\"type\":\"struct\",\"fields\":[");
		for (int i = 0; i < t->ncolumns; i++) {
			if (!key_column(t, i))
				continue;
			if (!first)
				PS_ENV_LIT(&o, ",");
			first = false;
			put_field_schema(&o, t, i, false, names, st);
		}
		PS_ENV_LIT(&o, "],\"optional\":false,\"name\":");
		put_schema_name(&o, st, t, "Key");
		PS_ENV_LIT(&o, "}");
		break;
	case PS_DBZ_VALUE_SCHEMA:
		PS_ENV_LIT(&o, "{\"type\":\"struct\",\"fields\":[");
		put_row_schema(&o, t, names, st, "before", false);
		PS_ENV_LIT(&o, ",");
		put_row_schema(&o, t, names, st, "after", false);
		PS_ENV_LIT(&o, ",");
		if (is_mysql(t))
			ps__env_put(&o, MYSQL_SOURCE_SCHEMA, sizeof(MYSQL_SOURCE_SCHEMA) - 1);
		else
			ps__env_put(&o, SOURCE_SCHEMA, sizeof(SOURCE_SCHEMA) - 1);
		PS_ENV_LIT(&o, ",");
		ps__env_put(&o, TXN_SCHEMA, sizeof(TXN_SCHEMA) - 1);
		PS_ENV_LIT(&o, ",");
		ps__env_put(&o, ENVELOPE_TAIL_SCHEMA, sizeof(ENVELOPE_TAIL_SCHEMA) - 1);
		PS_ENV_LIT(&o, "],\"optional\":false,\"name\":");
		put_schema_name(&o, st, t, "Envelope");
		PS_ENV_LIT(&o, ",\"version\":2}");
		break;
	case PS_DBZ_FLAT_SCHEMA:
		put_row_schema(&o, t, names, st, NULL, true);
		break;
	case PS_DBZ_TOPIC_TABLE:
		if (ps_buf_printf(&b, "%s.%s", t->schema ? t->schema : "", t->name ? t->name : "") != 0)
			o.rc = PS_ENOMEM;
		for (size_t i = 0; o.rc == 0 && i < b.len; i++) {
			char c = b.data[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			      c == '.' || c == '_' || c == '-'))
				b.data[i] = '_';
		}
		break;
	}
	if (o.rc != 0) {
		ps_buf_free(&b);
		return o.rc;
	}
	*out = ps_buf_detach(&b);
	return *out ? PS_OK : PS_ENOMEM;
}

/* The names of t with the Debezium parts built (note 1). */
static int dbz_names(ps_envelope *env, ps_table *t, const ps_envelope_names **out,
                     ps_error *err)
{
	const ps_envelope_names *names;
	ps_envelope_names *e;
	int rc;

	if (!env->style)
		return ps_error_set(err, PS_EINVAL, "the event style is not set");
	rc = ps__envelope_names_for(env, t, &names, err);
	if (rc != PS_OK)
		return rc;
	e = (ps_envelope_names *)names;
	if (!e->dbz_built) {
		e->nkeys = 0;
		for (int i = 0; i < t->ncolumns; i++)
			e->nkeys += key_column(t, i);
		for (int p = 0; p < PS_DBZ_NPARTS && rc == PS_OK; p++)
			if (env->style->schemas || p == PS_DBZ_TOPIC_TABLE)
				rc = render_part(&e->dbz[p], p, t, e, env->style);
		if (rc != PS_OK) {
			ps__envelope_dbz_clear(e);
			return ps_error_set(err, rc, "cannot render the schemas of table %s.%s",
			                    t->schema ? t->schema : "?", t->name ? t->name : "?");
		}
		e->dbz_built = true;
	}
	*out = e;
	return PS_OK;
}

/* --- events ---------------------------------------------------------------- */

int ps_envelope_has_key(ps_envelope *env, ps_table *t, bool *has_key, ps_error *err)
{
	const ps_envelope_names *names;
	int rc = dbz_names(env, t, &names, err);

	*has_key = rc == PS_OK && names->nkeys > 0;
	return rc;
}

int ps_envelope_topic_part(ps_envelope *env, ps_table *t, const char **part, ps_error *err)
{
	const ps_envelope_names *names;
	int rc = dbz_names(env, t, &names, err);

	*part = rc == PS_OK ? names->dbz[PS_DBZ_TOPIC_TABLE] : NULL;
	return rc;
}

static void put_schema_open(ps_env_out *o, const char *schema, size_t len)
{
	PS_ENV_LIT(o, "{\"schema\":");
	ps__env_put(o, schema, len);
	PS_ENV_LIT(o, ",\"payload\":");
}

int ps_envelope_key(ps_envelope *env, ps_buf *buf, ps_table *t, const ps_value *vals,
                    bool *has_key, ps_error *err)
{
	const ps_envelope_names *names;
	ps_env_out o = {buf, 0};
	bool first = true;
	int rc;

	*has_key = false;
	rc = dbz_names(env, t, &names, err);
	if (rc != PS_OK || names->nkeys == 0)
		return rc;
	*has_key = true;
	if (env->style->schemas)
		put_schema_open(&o, names->dbz[PS_DBZ_KEY_SCHEMA], strlen(names->dbz[PS_DBZ_KEY_SCHEMA]));
	PS_ENV_LIT(&o, "{");
	for (int i = 0; i < t->ncolumns; i++) {
		if (!key_column(t, i))
			continue;
		if (!first)
			PS_ENV_LIT(&o, ",");
		first = false;
		ps__env_column_name(&o, names, i);
		PS_ENV_LIT(&o, ":");
		put_dbz_value(&o, t, &t->columns[i], &vals[i], env->style);
	}
	PS_ENV_LIT(&o, "}");
	if (env->style->schemas)
		PS_ENV_LIT(&o, "}");
	if (o.rc != 0)
		return ps_error_set(err, o.rc, "cannot render the key of a change to %s.%s",
		                    t->schema ? t->schema : "?", t->name ? t->name : "?");
	return PS_OK;
}

/* Every column of the row (note 3); vals NULL: null. */
static void put_dbz_row(ps_env_out *o, const ps_table *t, const ps_envelope_names *names,
                        const ps_value *vals, const ps_event_style *st, bool close)
{
	if (!vals) {
		PS_ENV_LIT(o, "null");
		return;
	}
	PS_ENV_LIT(o, "{");
	for (int i = 0; i < t->ncolumns; i++) {
		if (i)
			PS_ENV_LIT(o, ",");
		ps__env_column_name(o, names, i);
		PS_ENV_LIT(o, ":");
		put_dbz_value(o, t, &t->columns[i], &vals[i], st);
	}
	if (close)
		PS_ENV_LIT(o, "}");
}

static void put_times(ps_env_out *o, const char *ms_field, int64_t us)
{
	ps__env_put(o, ms_field, strlen(ms_field));
	ps__env_i64(o, us / 1000);
	PS_ENV_LIT(o, ",\"ts_us\":");
	ps__env_i64(o, us);
	PS_ENV_LIT(o, ",\"ts_ns\":");
	ps__env_i64(o, us * 1000);
}

/* The MySQL connector's fields after ts_ns: table, then the binlog fields
 * the source gave (source_info: server_id, gtid, file, pos, row[, query]),
 * thread (never told) and query when not given. A load row has no binlog
 * event: server_id 0, file "", pos 0, row 0, as Debezium's snapshot rows
 * carry no event's either. */
static void put_mysql_tail(ps_env_out *o, const ps_change *c)
{
	const char *info = c->source_info;

	PS_ENV_LIT(o, ",\"table\":");
	ps__env_cstr_or_null(o, c->table ? c->table->name : NULL);
	if (info && info[0]) {
		PS_ENV_LIT(o, ",");
		ps__env_put(o, info, strlen(info));
	} else {
		PS_ENV_LIT(o, ",\"server_id\":0,\"gtid\":null,\"file\":\"\",\"pos\":0,\"row\":0");
	}
	PS_ENV_LIT(o, ",\"thread\":null");
	if (!info || !strstr(info, "\"query\":"))
		PS_ENV_LIT(o, ",\"query\":null");
	PS_ENV_LIT(o, "}");
}

static void put_dbz_source(ps_env_out *o, const ps_envelope *env, const ps_txn *txn,
                           const ps_change *c, char op)
{
	const ps_table *t = c->table;
	int64_t commit_us = txn ? txn->commit_time_us : 0;
	char seq[48];

	PS_ENV_LIT(o, "{\"version\":\"penstock-" PENSTOCK_VERSION "\",\"connector\":");
	ps__env_cstr_or_null(o, env->connector);
	PS_ENV_LIT(o, ",\"name\":");
	ps__env_cstr_or_null(o, env->style->server_name);
	/* Debezium's field order (io.debezium.connector.postgresql.Source) */
	PS_ENV_LIT(o, ",\"ts_ms\":");
	ps__env_i64(o, commit_us / 1000);
	PS_ENV_LIT(o, ",\"snapshot\":");
	if (op == PS_OP_READ)
		PS_ENV_LIT(o, "\"true\"");
	else
		PS_ENV_LIT(o, "\"false\"");
	PS_ENV_LIT(o, ",\"db\":");
	/* MySQL's db is the table's database, which penstock calls its schema */
	ps__env_cstr_or_null(o, is_mysql(t) ? t->schema : env->source_db);
	PS_ENV_LIT(o, ",\"sequence\":");
	if (c->lsn && !is_mysql(t)) {
		snprintf(seq, sizeof(seq), "[null,\"%llu\"]", (unsigned long long)c->lsn);
		ps__env_str(o, seq, strlen(seq));
	} else {
		PS_ENV_LIT(o, "null");
	}
	PS_ENV_LIT(o, ",\"ts_us\":");
	ps__env_i64(o, commit_us);
	PS_ENV_LIT(o, ",\"ts_ns\":");
	ps__env_i64(o, commit_us * 1000);
	if (is_mysql(t)) {
		put_mysql_tail(o, c);
		return;
	}
	PS_ENV_LIT(o, ",\"schema\":");
	ps__env_cstr_or_null(o, t ? t->schema : "");
	PS_ENV_LIT(o, ",\"table\":");
	ps__env_cstr_or_null(o, t ? t->name : "");
	PS_ENV_LIT(o, ",\"txId\":");
	if (txn && txn->xid)
		ps__env_u64(o, txn->xid);
	else
		PS_ENV_LIT(o, "null");
	PS_ENV_LIT(o, ",\"lsn\":");
	if (c->lsn)
		ps__env_u64(o, c->lsn);
	else
		PS_ENV_LIT(o, "null");
	PS_ENV_LIT(o, ",\"xmin\":null}");
}

static void put_txn_block(ps_env_out *o, const ps_event_txn *tx)
{
	if (!tx) {
		PS_ENV_LIT(o, "null");
		return;
	}
	PS_ENV_LIT(o, "{\"id\":");
	ps__env_cstr_or_null(o, tx->id);
	PS_ENV_LIT(o, ",\"total_order\":");
	ps__env_u64(o, tx->total_order);
	PS_ENV_LIT(o, ",\"data_collection_order\":");
	ps__env_u64(o, tx->collection_order);
	PS_ENV_LIT(o, "}");
}

/* A logical message event (op m). */
static int message_value(ps_envelope *env, ps_env_out *o, const ps_txn *txn,
                         const ps_change *c, int64_t now_us)
{
	if (env->style->schemas) {
		PS_ENV_LIT(o, "{\"schema\":");
		ps__env_put(o, MESSAGE_VALUE_SCHEMA, sizeof(MESSAGE_VALUE_SCHEMA) - 1);
		ps__env_put(o, SOURCE_SCHEMA, sizeof(SOURCE_SCHEMA) - 1);
		ps__env_put(o, MESSAGE_VALUE_SCHEMA_TAIL, sizeof(MESSAGE_VALUE_SCHEMA_TAIL) - 1);
		PS_ENV_LIT(o, ",\"payload\":");
	}
	PS_ENV_LIT(o, "{\"source\":");
	put_dbz_source(o, env, txn, c, PS_OP_MESSAGE);
	PS_ENV_LIT(o, ",\"op\":\"m\"");
	put_times(o, ",\"ts_ms\":", now_us);
	PS_ENV_LIT(o, ",\"message\":{\"prefix\":");
	ps__env_cstr_or_null(o, c->message_prefix ? c->message_prefix : "");
	PS_ENV_LIT(o, ",\"content\":");
	if (o->rc == 0)
		o->rc = ps_json_append_base64(o->b, c->message_content,
		                              c->message_content ? c->message_len : 0);
	PS_ENV_LIT(o, "}}");
	if (env->style->schemas)
		PS_ENV_LIT(o, "}");
	return o->rc;
}

int ps_envelope_value(ps_envelope *env, ps_buf *buf, const ps_txn *txn, const ps_change *c,
                      char op, const ps_event_txn *tx, int64_t now_us, ps_error *err)
{
	const ps_envelope_names *names = NULL;
	ps_env_out o = {buf, 0};
	const ps_value *before = NULL, *after = NULL;
	char op_text[] = ",\"op\":\"?\"";
	int rc;

	if (!env->style)
		return ps_error_set(err, PS_EINVAL, "the event style is not set");
	if (c->op == PS_OP_MESSAGE) {
		rc = message_value(env, &o, txn, c, now_us);
		goto done;
	}
	if (!c->table)
		return ps_error_set(err, PS_EINVAL, "change '%c' at lsn %llu has no table", (char)c->op,
		                    (unsigned long long)c->lsn);
	rc = dbz_names(env, c->table, &names, err);
	if (rc != PS_OK)
		return rc;
	switch (op) {
	case PS_OP_INSERT:
	case PS_OP_READ:
		after = c->new_values;
		break;
	case PS_OP_UPDATE:
		before = c->old_values;
		after = c->new_values;
		break;
	case PS_OP_DELETE:
		/* a delete, or the delete half of a key change (envelope.h) */
		before = c->old_values ? c->old_values : c->new_values;
		break;
	case PS_OP_TRUNCATE:
		break;
	default:
		return ps_error_set(err, PS_EINVAL, "unknown change op %u at lsn %llu", (unsigned)op,
		                    (unsigned long long)c->lsn);
	}
	if (env->style->schemas)
		put_schema_open(&o, names->dbz[PS_DBZ_VALUE_SCHEMA],
		                strlen(names->dbz[PS_DBZ_VALUE_SCHEMA]));
	PS_ENV_LIT(&o, "{\"before\":");
	put_dbz_row(&o, c->table, names, before, env->style, true);
	PS_ENV_LIT(&o, ",\"after\":");
	put_dbz_row(&o, c->table, names, after, env->style, true);
	PS_ENV_LIT(&o, ",\"source\":");
	put_dbz_source(&o, env, txn, c, op);
	PS_ENV_LIT(&o, ",\"transaction\":");
	put_txn_block(&o, tx);
	op_text[7] = op;
	ps__env_put(&o, op_text, sizeof(op_text) - 1);
	put_times(&o, ",\"ts_ms\":", now_us);
	if (txn && txn->reprocessing)
		PS_ENV_LIT(&o, ",\"reprocessing\":true");
	PS_ENV_LIT(&o, "}");
	if (env->style->schemas)
		PS_ENV_LIT(&o, "}");
	rc = o.rc;
done:
	if (rc != 0)
		return ps_error_set(err, rc, "cannot render the '%c' event at lsn %llu", op,
		                    (unsigned long long)c->lsn);
	return PS_OK;
}

int ps_envelope_flat(ps_envelope *env, ps_buf *buf, const ps_txn *txn, const ps_change *c,
                     char op, ps_error *err)
{
	const ps_envelope_names *names = NULL;
	ps_env_out o = {buf, 0};
	const ps_value *row;
	char op_text[] = ",\"__op\":\"?\"";
	int rc;

	if (!c->table)
		return ps_error_set(err, PS_EINVAL, "change '%c' at lsn %llu has no table", (char)c->op,
		                    (unsigned long long)c->lsn);
	rc = dbz_names(env, c->table, &names, err);
	if (rc != PS_OK)
		return rc;
	row = op == PS_OP_DELETE ? (c->old_values ? c->old_values : c->new_values) : c->new_values;
	if (!row)
		return ps_error_set(err, PS_EINVAL, "the '%c' change at lsn %llu has no row to flatten",
		                    op, (unsigned long long)c->lsn);
	if (env->style->schemas)
		put_schema_open(&o, names->dbz[PS_DBZ_FLAT_SCHEMA], strlen(names->dbz[PS_DBZ_FLAT_SCHEMA]));
	put_dbz_row(&o, c->table, names, row, env->style, false);
	if (c->table->ncolumns)
		PS_ENV_LIT(&o, ",");
	if (op == PS_OP_DELETE)
		PS_ENV_LIT(&o, "\"__deleted\":\"true\"");
	else
		PS_ENV_LIT(&o, "\"__deleted\":\"false\"");
	op_text[9] = op;
	ps__env_put(&o, op_text, sizeof(op_text) - 1);
	PS_ENV_LIT(&o, ",\"__source_ts_ms\":");
	ps__env_i64(&o, txn ? txn->commit_time_us / 1000 : 0);
	PS_ENV_LIT(&o, ",\"__lsn\":");
	if (c->lsn)
		ps__env_u64(&o, c->lsn);
	else
		PS_ENV_LIT(&o, "null");
	PS_ENV_LIT(&o, "}");
	if (env->style->schemas)
		PS_ENV_LIT(&o, "}");
	if (o.rc != 0)
		return ps_error_set(err, o.rc, "cannot render the flattened '%c' event at lsn %llu", op,
		                    (unsigned long long)c->lsn);
	return PS_OK;
}
