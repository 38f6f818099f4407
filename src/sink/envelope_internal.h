/*
 * envelope_internal.h — what envelope.c (the JSON-lines event) and
 * envelope_dbz.c (the Debezium event for brokers) share: a writer with a
 * sticky error, value tests, and the per-table cache of rendered names.
 * Internal to src/sink/envelope*.c.
 */
#ifndef PS_SINK_ENVELOPE_INTERNAL_H
#define PS_SINK_ENVELOPE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sink/envelope.h"
#include "util/json.h"

/* The pre-rendered names of one table definition (envelope.h note 2), and
 * the Debezium parts built from them on first use (envelope_dbz.c). */
enum {
	PS_DBZ_KEY_SCHEMA = 0,   /* the key's schema object, or NULL: no key */
	PS_DBZ_VALUE_SCHEMA,     /* the envelope's schema object */
	PS_DBZ_FLAT_SCHEMA,      /* the flattened value's schema object */
	PS_DBZ_TOPIC_TABLE,      /* "<schema>.<table>" as in topic and schema names */
	PS_DBZ_NPARTS
};

struct ps_envelope_names {
	ps_table *table;   /* one reference held while cached; NULL if free */
	char *text;        /* "schema":..,"table":.. then each quoted column name */
	size_t *off;       /* ncolumns + 2 offsets into text: off[1] ends the
	                      schema/table part; column i is [off[i+1], off[i+2]) */
	bool dbz_built;    /* dbz[] rendered for the envelope's style */
	char *dbz[PS_DBZ_NPARTS];
	int nkeys;         /* key columns in the event key; 0: the key is null */
};

/* A writer with a sticky error, so rendering reads as a sequence of puts. */
typedef struct ps_env_out {
	ps_buf *b;
	int rc;
} ps_env_out;

static inline void ps__env_put(ps_env_out *o, const char *s, size_t n)
{
	if (o->rc == 0)
		o->rc = ps_buf_append(o->b, s, n);
}

#define PS_ENV_LIT(o, lit) ps__env_put((o), (lit), sizeof(lit) - 1)

static inline void ps__env_str(ps_env_out *o, const char *s, size_t n)
{
	if (o->rc == 0)
		o->rc = ps_json_append_string(o->b, s, n);
}

static inline void ps__env_cstr_or_null(ps_env_out *o, const char *s)
{
	if (s)
		ps__env_str(o, s, strlen(s));
	else
		PS_ENV_LIT(o, "null");
}

static inline void ps__env_u64(ps_env_out *o, uint64_t v)
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	ps__env_put(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

static inline void ps__env_i64(ps_env_out *o, int64_t v)
{
	if (v < 0) {
		PS_ENV_LIT(o, "-");
		ps__env_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		ps__env_u64(o, (uint64_t)v);
	}
}

static inline void ps__env_bool(ps_env_out *o, bool v)
{
	if (v)
		PS_ENV_LIT(o, "true");
	else
		PS_ENV_LIT(o, "false");
}

static inline void ps__env_column_name(ps_env_out *o, const ps_envelope_names *names, int i)
{
	ps__env_put(o, names->text + names->off[i + 1], names->off[i + 2] - names->off[i + 1]);
}

/* -?(0|[1-9][0-9]*) and an RFC 8259 number, over s[0..len). */
bool ps__env_is_json_integer(const char *s, size_t len);
bool ps__env_is_json_number(const char *s, size_t len);

/* The cached names of t, rendering them on a miss (envelope.c). */
int ps__envelope_names_for(ps_envelope *k, ps_table *t, const ps_envelope_names **out_names,
                           ps_error *err);

/* The Debezium parts of a cache entry, released with it, and the style
 * (envelope_dbz.c). */
void ps__envelope_dbz_clear(ps_envelope_names *e);
void ps__envelope_style_free(ps_event_style *style);

/* Java's BigInteger.toByteArray of the unscaled value of decimal text s at
 * scale, or at the text's own scale when own (envelope_dbz.c; exposed for
 * tests). */
int ps__decimal_unscaled_bytes(const char *s, size_t len, int scale, bool own,
                               unsigned char **out, size_t *n, int *scale_out);

#endif
