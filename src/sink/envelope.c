/*
 * envelope.c — rendering the Debezium-style change event (see envelope.h for
 * the format and the design notes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/envelope.h"
#include "util/json.h"

#define NAMES_LIMIT ((size_t)16 << 20)

/* The pre-rendered names of one table definition (note 2). */
struct ps_envelope_names {
	ps_table *table;   /* one reference held while cached; NULL if free */
	char *text;        /* "schema":..,"table":.. then each quoted column name */
	size_t *off;       /* ncolumns + 2 offsets into text: off[1] ends the
	                      schema/table part; column i is [off[i+1], off[i+2]) */
};


/* A writer with a sticky error, so rendering reads as a sequence of puts. */
typedef struct out {
	ps_buf *b;
	int rc;
} out;

static inline void put(out *o, const char *s, size_t n)
{
	if (o->rc == 0)
		o->rc = ps_buf_append(o->b, s, n);
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static inline void put_str(out *o, const char *s, size_t n)
{
	if (o->rc == 0)
		o->rc = ps_json_append_string(o->b, s, n);
}

static void put_cstr_or_null(out *o, const char *s)
{
	if (s)
		put_str(o, s, strlen(s));
	else
		PUT_LIT(o, "null");
}

static void put_u64(out *o, uint64_t v)
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void put_i64(out *o, int64_t v)
{
	if (v < 0) {
		PUT_LIT(o, "-");
		put_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(o, (uint64_t)v);
	}
}

static void put_bool(out *o, bool v)
{
	if (v)
		PUT_LIT(o, "true");
	else
		PUT_LIT(o, "false");
}

/* Digits at s[*i..], advancing *i; returns how many. */
static size_t skip_digits(const char *s, size_t len, size_t *i)
{
	size_t start = *i;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	return *i - start;
}

/* -?(0|[1-9][0-9]*) at the start of s; *i is left after it. */
static bool json_int_part(const char *s, size_t len, size_t *i)
{
	size_t nd;

	if (*i < len && s[*i] == '-')
		(*i)++;
	nd = skip_digits(s, len, i);
	return nd > 0 && !(nd > 1 && s[*i - nd] == '0');
}

static bool is_json_integer(const char *s, size_t len)
{
	size_t i = 0;

	return json_int_part(s, len, &i) && i == len;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — RFC 8259 number. */
static bool is_json_number(const char *s, size_t len)
{
	size_t i = 0;

	if (!json_int_part(s, len, &i))
		return false;
	if (i < len && s[i] == '.') {
		i++;
		if (skip_digits(s, len, &i) == 0)
			return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (skip_digits(s, len, &i) == 0)
			return false;
	}
	return i == len;
}

/* A NULL or TEXT value, rendered by its column's type class. */
static void put_value(out *o, const ps_column *col, const ps_value *v)
{
	if (v->kind != PS_VALUE_TEXT || !v->data) {
		PUT_LIT(o, "null");
		return;
	}
	switch (col->type_class) {
	case PS_TYPE_INTEGER:
		if (is_json_integer(v->data, v->len)) {
			put(o, v->data, v->len);
			return;
		}
		break;
	case PS_TYPE_FLOAT:
		if (is_json_number(v->data, v->len)) {
			put(o, v->data, v->len);
			return;
		}
		break;
	case PS_TYPE_BOOL:
		if (v->len == 1 && (v->data[0] == 't' || v->data[0] == 'f')) {
			put_bool(o, v->data[0] == 't');
			return;
		}
		break;
	default:
		break;
	}
	put_str(o, v->data, v->len);
}

static inline void put_column_name(out *o, const ps_envelope_names *names, int i)
{
	put(o, names->text + names->off[i + 1], names->off[i + 2] - names->off[i + 1]);
}

/* A row object. Unchanged values are skipped and reported in *unchanged. */
static void put_row(out *o, const ps_table *t, const ps_envelope_names *names,
                    const ps_value *vals, bool keys_only, bool *unchanged)
{
	bool first = true;

	PUT_LIT(o, "{");
	for (int i = 0; i < t->ncolumns; i++) {
		if (keys_only && !t->columns[i].is_key)
			continue;
		if (vals[i].kind == PS_VALUE_UNCHANGED) {
			*unchanged = true;
			continue;
		}
		if (!first)
			PUT_LIT(o, ",");
		first = false;
		put_column_name(o, names, i);
		PUT_LIT(o, ":");
		put_value(o, &t->columns[i], &vals[i]);
	}
	PUT_LIT(o, "}");
}

static void put_unchanged(out *o, const ps_table *t, const ps_envelope_names *names,
                          const ps_value *vals)
{
	bool first = true;

	PUT_LIT(o, ",\"unchanged\":[");
	for (int i = 0; i < t->ncolumns; i++) {
		if (vals[i].kind != PS_VALUE_UNCHANGED)
			continue;
		if (!first)
			PUT_LIT(o, ",");
		first = false;
		put_column_name(o, names, i);
	}
	PUT_LIT(o, "]");
}

static void put_source(out *o, const ps_envelope *k, const ps_txn *txn,
                       const ps_change *c, const ps_envelope_names *names)
{
	put(o, k->source_prefix, k->source_prefix_len);
	if (names)
		put(o, names->text, names->off[1]);
	else
		PUT_LIT(o, "\"schema\":null,\"table\":null");
	PUT_LIT(o, ",\"lsn\":");
	put_u64(o, c->lsn);
	PUT_LIT(o, ",\"txId\":");
	put_u64(o, txn ? txn->xid : 0);
	PUT_LIT(o, ",\"ts_ms\":");
	put_i64(o, txn ? txn->commit_time_us / 1000 : 0);
	if (c->source_info && c->source_info[0]) {
		PUT_LIT(o, ",");
		put(o, c->source_info, strlen(c->source_info));
	}
	PUT_LIT(o, "}");
}

static void put_extras(out *o, const ps_change *c)
{
	if (c->op == PS_OP_TRUNCATE) {
		PUT_LIT(o, ",\"truncate\":{\"cascade\":");
		put_bool(o, (c->truncate_flags & PS_TRUNCATE_CASCADE) != 0);
		PUT_LIT(o, ",\"restart_identity\":");
		put_bool(o, (c->truncate_flags & PS_TRUNCATE_RESTART_IDENTITY) != 0);
		PUT_LIT(o, "}");
	} else if (c->op == PS_OP_MESSAGE) {
		PUT_LIT(o, ",\"message\":{\"prefix\":");
		put_cstr_or_null(o, c->message_prefix ? c->message_prefix : "");
		PUT_LIT(o, ",\"content\":");
		if (o->rc == 0)
			o->rc = ps_json_append_base64(o->b, c->message_content,
			                              c->message_content ? c->message_len : 0);
		PUT_LIT(o, ",\"transactional\":");
		put_bool(o, c->message_transactional);
		PUT_LIT(o, "}");
	}
}

/* Appends one whole line for c to b; on failure returns the code and
 * may leave part of the line (the caller rolls back). */
static int render_event(const ps_envelope *k, ps_buf *b, const ps_txn *txn, const ps_change *c,
                        const ps_envelope_names *names, int64_t now_ms)
{
	out o = {b, 0};
	const ps_table *t = c->table;
	bool has_before = t && c->old_values &&
	                  (c->op == PS_OP_UPDATE || c->op == PS_OP_DELETE);
	bool has_after = t && c->new_values &&
	                 (c->op == PS_OP_INSERT || c->op == PS_OP_UPDATE ||
	                  c->op == PS_OP_READ);
	bool unchanged = false, old_unchanged = false;
	char op_text[] = ",\"op\":\"?\",\"ts_ms\":";

	PUT_LIT(&o, "{\"before\":");
	if (has_before)
		put_row(&o, t, names, c->old_values, c->old_is_key, &old_unchanged);
	else
		PUT_LIT(&o, "null");
	PUT_LIT(&o, ",\"after\":");
	if (has_after)
		put_row(&o, t, names, c->new_values, false, &unchanged);
	else
		PUT_LIT(&o, "null");
	op_text[7] = (char)c->op;
	put(&o, op_text, sizeof(op_text) - 1);
	put_i64(&o, now_ms);
	put_source(&o, k, txn, c, names);
	put_extras(&o, c);
	if (txn && txn->reprocessing)
		PUT_LIT(&o, ",\"reprocessing\":true");
	if (unchanged)
		put_unchanged(&o, t, names, c->new_values);
	PUT_LIT(&o, "}\n");
	return o.rc;
}

/* --- table name cache (note 2) ------------------------------------------ */

static void names_clear(ps_envelope_names *e)
{
	ps_table_unref(e->table);
	free(e->text);
	free(e->off);
	e->table = NULL;
	e->text = NULL;
	e->off = NULL;
}

static int names_build(ps_envelope_names *e, ps_table *t)
{
	ps_buf b;
	out o = {&b, 0};
	size_t *off = NULL;
	int rc = 0;

	ps_buf_init(&b, NAMES_LIMIT);
	off = calloc((size_t)t->ncolumns + 2, sizeof(*off));
	if (!off) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	PUT_LIT(&o, "\"schema\":");
	put_cstr_or_null(&o, t->schema);
	PUT_LIT(&o, ",\"table\":");
	put_cstr_or_null(&o, t->name);
	off[1] = b.len;
	for (int i = 0; i < t->ncolumns; i++) {
		const char *name = t->columns[i].name ? t->columns[i].name : "";
		put_str(&o, name, strlen(name));
		off[i + 2] = b.len;
	}
	rc = o.rc;
	if (rc != 0)
		goto cleanup;
	e->text = ps_buf_detach(&b);
	if (!e->text) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	e->off = off;
	off = NULL;
	e->table = ps_table_ref(t);
cleanup:
	free(off);
	ps_buf_free(&b);
	return rc;
}

/* The cached names of t, rendering them on a miss. */
static int names_for(ps_envelope *k, ps_table *t, const ps_envelope_names **out_names,
                     ps_error *err)
{
	ps_envelope_names *e;
	int rc;

	if (k->cache[k->cache_last].table == t) {
		*out_names = &k->cache[k->cache_last];
		return 0;
	}
	for (int i = 0; i < PS_ENVELOPE_CACHE_SIZE; i++) {
		if (k->cache[i].table == t) {
			k->cache_last = i;
			*out_names = &k->cache[i];
			return 0;
		}
	}
	e = &k->cache[k->cache_next];
	names_clear(e);
	rc = names_build(e, t);
	if (rc != 0)
		return ps_error_set(err, rc, "cannot render the names of table %s.%s",
		                    t->schema ? t->schema : "?", t->name ? t->name : "?");
	k->cache_last = k->cache_next;
	k->cache_next = (k->cache_next + 1) % PS_ENVELOPE_CACHE_SIZE;
	*out_names = e;
	return 0;
}


static int build_source_prefix(ps_envelope *k, const char *connector, const char *source_db)
{
	ps_buf b;
	out o = {&b, 0};

	ps_buf_init(&b, NAMES_LIMIT);
	PUT_LIT(&o, ",\"source\":{\"connector\":");
	put_cstr_or_null(&o, connector);
	PUT_LIT(&o, ",\"db\":");
	put_cstr_or_null(&o, source_db);
	PUT_LIT(&o, ",");
	if (o.rc != 0) {
		ps_buf_free(&b);
		return o.rc;
	}
	k->source_prefix_len = b.len;
	k->source_prefix = ps_buf_detach(&b);
	return k->source_prefix ? 0 : PS_ENOMEM;
}


/* --- the envelope ---------------------------------------------------------- */

int ps_envelope_init(ps_envelope *env, const char *connector, const char *source_db,
                     ps_error *err)
{
	memset(env, 0, sizeof(*env));
	env->cache = calloc(PS_ENVELOPE_CACHE_SIZE, sizeof(*env->cache));
	if (!env->cache || build_source_prefix(env, connector, source_db) != 0) {
		ps_envelope_free(env);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	return PS_OK;
}

void ps_envelope_free(ps_envelope *env)
{
	for (int i = 0; env->cache && i < PS_ENVELOPE_CACHE_SIZE; i++)
		names_clear(&env->cache[i]);
	free(env->cache);
	free(env->source_prefix);
	memset(env, 0, sizeof(*env));
}

static bool op_known(uint8_t op)
{
	return op == PS_OP_INSERT || op == PS_OP_UPDATE || op == PS_OP_DELETE ||
	       op == PS_OP_TRUNCATE || op == PS_OP_READ || op == PS_OP_MESSAGE;
}

int ps_envelope_render(ps_envelope *env, ps_buf *buf, const ps_txn *txn, const ps_change *c,
                       int64_t now_ms, ps_error *err)
{
	const ps_envelope_names *names = NULL;
	int rc;

	if (!op_known(c->op))
		return ps_error_set(err, PS_EINVAL, "unknown change op %u at lsn %llu",
		                    (unsigned)c->op, (unsigned long long)c->lsn);
	if (c->op != PS_OP_MESSAGE) {
		if (!c->table)
			return ps_error_set(err, PS_EINVAL, "change '%c' at lsn %llu has no table",
			                    (char)c->op, (unsigned long long)c->lsn);
		rc = names_for(env, c->table, &names, err);
		if (rc != 0)
			return rc;
	}
	rc = render_event(env, buf, txn, c, names, now_ms);
	if (rc != 0)
		return ps_error_set(err, rc, "cannot render the '%c' event at lsn %llu",
		                    (char)c->op, (unsigned long long)c->lsn);
	return PS_OK;
}
