/*
 * envelope.c — rendering the Debezium-style change event (see envelope.h for
 * the format and the design notes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/envelope_internal.h"

#define NAMES_LIMIT ((size_t)16 << 20)

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

bool ps__env_is_json_integer(const char *s, size_t len)
{
	size_t i = 0;

	return json_int_part(s, len, &i) && i == len;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — RFC 8259 number. */
bool ps__env_is_json_number(const char *s, size_t len)
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
static void put_value(ps_env_out *o, const ps_column *col, const ps_value *v)
{
	if (v->kind != PS_VALUE_TEXT || !v->data) {
		PS_ENV_LIT(o, "null");
		return;
	}
	switch (col->type_class) {
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
	default:
		break;
	}
	ps__env_str(o, v->data, v->len);
}

/* A row object. Unchanged values are skipped and reported in *unchanged. */
static void put_row(ps_env_out *o, const ps_table *t, const ps_envelope_names *names,
                    const ps_value *vals, bool keys_only, bool *unchanged)
{
	bool first = true;

	PS_ENV_LIT(o, "{");
	for (int i = 0; i < t->ncolumns; i++) {
		if (keys_only && !t->columns[i].is_key)
			continue;
		if (vals[i].kind == PS_VALUE_UNCHANGED) {
			*unchanged = true;
			continue;
		}
		if (!first)
			PS_ENV_LIT(o, ",");
		first = false;
		ps__env_column_name(o, names, i);
		PS_ENV_LIT(o, ":");
		put_value(o, &t->columns[i], &vals[i]);
	}
	PS_ENV_LIT(o, "}");
}

static void put_unchanged(ps_env_out *o, const ps_table *t, const ps_envelope_names *names,
                          const ps_value *vals)
{
	bool first = true;

	PS_ENV_LIT(o, ",\"unchanged\":[");
	for (int i = 0; i < t->ncolumns; i++) {
		if (vals[i].kind != PS_VALUE_UNCHANGED)
			continue;
		if (!first)
			PS_ENV_LIT(o, ",");
		first = false;
		ps__env_column_name(o, names, i);
	}
	PS_ENV_LIT(o, "]");
}

static void put_source(ps_env_out *o, const ps_envelope *k, const ps_txn *txn,
                       const ps_change *c, const ps_envelope_names *names)
{
	ps__env_put(o, k->source_prefix, k->source_prefix_len);
	if (names)
		ps__env_put(o, names->text, names->off[1]);
	else
		PS_ENV_LIT(o, "\"schema\":null,\"table\":null");
	PS_ENV_LIT(o, ",\"lsn\":");
	ps__env_u64(o, c->lsn);
	PS_ENV_LIT(o, ",\"txId\":");
	ps__env_u64(o, txn ? txn->xid : 0);
	PS_ENV_LIT(o, ",\"ts_ms\":");
	ps__env_i64(o, txn ? txn->commit_time_us / 1000 : 0);
	if (c->source_info && c->source_info[0]) {
		PS_ENV_LIT(o, ",");
		ps__env_put(o, c->source_info, strlen(c->source_info));
	}
	PS_ENV_LIT(o, "}");
}

static void put_extras(ps_env_out *o, const ps_change *c)
{
	if (c->op == PS_OP_TRUNCATE) {
		PS_ENV_LIT(o, ",\"truncate\":{\"cascade\":");
		ps__env_bool(o, (c->truncate_flags & PS_TRUNCATE_CASCADE) != 0);
		PS_ENV_LIT(o, ",\"restart_identity\":");
		ps__env_bool(o, (c->truncate_flags & PS_TRUNCATE_RESTART_IDENTITY) != 0);
		PS_ENV_LIT(o, "}");
	} else if (c->op == PS_OP_MESSAGE) {
		PS_ENV_LIT(o, ",\"message\":{\"prefix\":");
		ps__env_cstr_or_null(o, c->message_prefix ? c->message_prefix : "");
		PS_ENV_LIT(o, ",\"content\":");
		if (o->rc == 0)
			o->rc = ps_json_append_base64(o->b, c->message_content,
			                              c->message_content ? c->message_len : 0);
		PS_ENV_LIT(o, ",\"transactional\":");
		ps__env_bool(o, c->message_transactional);
		PS_ENV_LIT(o, "}");
	}
}

/* Appends one whole line for c to b; on failure returns the code and
 * may leave part of the line (the caller rolls back). */
static int render_event(const ps_envelope *k, ps_buf *b, const ps_txn *txn, const ps_change *c,
                        const ps_envelope_names *names, int64_t now_ms, const char *tail,
                        size_t tail_len)
{
	ps_env_out o = {b, 0};
	const ps_table *t = c->table;
	bool has_before = t && c->old_values &&
	                  (c->op == PS_OP_UPDATE || c->op == PS_OP_DELETE);
	bool has_after = t && c->new_values &&
	                 (c->op == PS_OP_INSERT || c->op == PS_OP_UPDATE ||
	                  c->op == PS_OP_READ);
	bool unchanged = false, old_unchanged = false;
	char op_text[] = ",\"op\":\"?\",\"ts_ms\":";

	PS_ENV_LIT(&o, "{\"before\":");
	if (has_before)
		put_row(&o, t, names, c->old_values, c->old_is_key, &old_unchanged);
	else
		PS_ENV_LIT(&o, "null");
	PS_ENV_LIT(&o, ",\"after\":");
	if (has_after)
		put_row(&o, t, names, c->new_values, false, &unchanged);
	else
		PS_ENV_LIT(&o, "null");
	op_text[7] = (char)c->op;
	ps__env_put(&o, op_text, sizeof(op_text) - 1);
	ps__env_i64(&o, now_ms);
	put_source(&o, k, txn, c, names);
	put_extras(&o, c);
	if (txn && txn->reprocessing)
		PS_ENV_LIT(&o, ",\"reprocessing\":true");
	if (unchanged)
		put_unchanged(&o, t, names, c->new_values);
	if (tail_len)
		ps__env_put(&o, tail, tail_len);
	PS_ENV_LIT(&o, "}\n");
	return o.rc;
}

/* --- table name cache (note 2) ------------------------------------------ */

static void names_clear(ps_envelope_names *e)
{
	ps__envelope_dbz_clear(e);
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
	ps_env_out o = {&b, 0};
	size_t *off = NULL;
	int rc = 0;

	ps_buf_init(&b, NAMES_LIMIT);
	off = calloc((size_t)t->ncolumns + 2, sizeof(*off));
	if (!off) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	PS_ENV_LIT(&o, "\"schema\":");
	ps__env_cstr_or_null(&o, t->schema);
	PS_ENV_LIT(&o, ",\"table\":");
	ps__env_cstr_or_null(&o, t->name);
	off[1] = b.len;
	for (int i = 0; i < t->ncolumns; i++) {
		const char *name = t->columns[i].name ? t->columns[i].name : "";
		ps__env_str(&o, name, strlen(name));
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
int ps__envelope_names_for(ps_envelope *k, ps_table *t, const ps_envelope_names **out_names,
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
	ps_env_out o = {&b, 0};

	ps_buf_init(&b, NAMES_LIMIT);
	PS_ENV_LIT(&o, ",\"source\":{\"connector\":");
	ps__env_cstr_or_null(&o, connector);
	PS_ENV_LIT(&o, ",\"db\":");
	ps__env_cstr_or_null(&o, source_db);
	PS_ENV_LIT(&o, ",");
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
	env->connector = strdup(connector ? connector : "");
	env->source_db = strdup(source_db ? source_db : "");
	if (!env->cache || !env->connector || !env->source_db ||
	    build_source_prefix(env, connector, source_db) != 0) {
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
	ps__envelope_style_free(env->style);
	free(env->connector);
	free(env->source_db);
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
	return ps_envelope_render_tail(env, buf, txn, c, now_ms, NULL, 0, err);
}

int ps_envelope_render_tail(ps_envelope *env, ps_buf *buf, const ps_txn *txn,
                            const ps_change *c, int64_t now_ms, const char *tail,
                            size_t tail_len, ps_error *err)
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
		rc = ps__envelope_names_for(env, c->table, &names, err);
		if (rc != 0)
			return rc;
	}
	rc = render_event(env, buf, txn, c, names, now_ms, tail, tail_len);
	if (rc != 0)
		return ps_error_set(err, rc, "cannot render the '%c' event at lsn %llu",
		                    (char)c->op, (unsigned long long)c->lsn);
	return PS_OK;
}
