/*
 * change.c — building and freeing tables and changes (see penstock/change.h).
 *
 * A change is one allocation laid out as
 *
 *     [ps_change][new ps_value[n]][old ps_value[n]][text bytes ...]
 *
 * so that building it costs one malloc and freeing it one free, and its
 * mem_size (what the bounded queue counts) is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "penstock/change.h"
#include "penstock/tabledef.h"
#include "penstock/error.h"

/* --- tables --------------------------------------------------------------- */

ps_table *ps_table_new(uint32_t id, int ncolumns)
{
	ps_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (ncolumns > 0) {
		t->columns = calloc((size_t)ncolumns, sizeof(ps_column));
		if (!t->columns) {
			free(t);
			return NULL;
		}
	}
	atomic_init(&t->refs, 1);
	t->id = id;
	t->ncolumns = ncolumns;
	t->replica_identity = 'd';
	return t;
}

int ps_table_set_names(ps_table *t, const char *schema, const char *name)
{
	char *s = strdup(schema), *n = strdup(name);

	if (!s || !n) {
		free(s);
		free(n);
		return PS_ENOMEM;
	}
	free((char *)t->schema);
	free((char *)t->name);
	t->schema = s;
	t->name = n;
	return PS_OK;
}

int ps_table_set_column(ps_table *t, int i, const char *name, uint32_t type_id,
                        int32_t type_mod, uint8_t type_class, bool is_key)
{
	char *n;

	if (i < 0 || i >= t->ncolumns)
		return PS_EINVAL;
	n = strdup(name);
	if (!n)
		return PS_ENOMEM;
	free((char *)t->columns[i].name);
	t->columns[i].name = n;
	t->columns[i].type_id = type_id;
	t->columns[i].type_mod = type_mod;
	t->columns[i].type_class = type_class;
	t->columns[i].is_key = is_key;
	return PS_OK;
}

ps_table *ps_table_ref(ps_table *t)
{
	if (t)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void ps_table_unref(ps_table *t)
{
	if (!t)
		return;
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (int i = 0; i < t->ncolumns; i++)
		free((char *)t->columns[i].name);
	free(t->columns);
	free((char *)t->schema);
	free((char *)t->name);
	free(t);
}

/* --- changes -------------------------------------------------------------- */

static size_t values_text_bytes(const ps_value *v, int n)
{
	size_t total = 0;

	for (int i = 0; v && i < n; i++)
		if (v[i].kind == PS_VALUE_TEXT)
			total += (size_t)v[i].len + 1;
	return total;
}

static char *copy_values(ps_value *dst, const ps_value *src, int n, char *text)
{
	for (int i = 0; i < n; i++) {
		dst[i].kind = src[i].kind;
		if (src[i].kind == PS_VALUE_TEXT) {
			dst[i].len = src[i].len;
			if (src[i].len)
				memcpy(text, src[i].data, src[i].len);
			text[src[i].len] = '\0';
			dst[i].data = text;
			text += src[i].len + 1;
		} else {
			dst[i].len = 0;
			dst[i].data = NULL;
		}
	}
	return text;
}

ps_change *ps_change_new(uint8_t op, ps_table *table, const ps_value *new_values,
                         const ps_value *old_values, bool old_is_key, uint64_t lsn)
{
	int n = table ? table->ncolumns : 0;
	size_t nvals = (new_values ? (size_t)n : 0) + (old_values ? (size_t)n : 0);
	size_t size = sizeof(ps_change) + nvals * sizeof(ps_value) +
	              values_text_bytes(new_values, n) + values_text_bytes(old_values, n);
	ps_change *c = malloc(size);
	ps_value *vals;
	char *text;

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	vals = (ps_value *)(c + 1);
	text = (char *)(vals + nvals);
	c->op = op;
	c->table = ps_table_ref(table);
	c->old_is_key = old_values ? old_is_key : false;
	c->lsn = lsn;
	c->mem_size = size;
	if (new_values) {
		c->new_values = vals;
		text = copy_values(vals, new_values, n, text);
		vals += n;
	}
	if (old_values) {
		c->old_values = vals;
		copy_values(vals, old_values, n, text);
	}
	return c;
}

ps_change *ps_change_new_message(bool transactional, const char *prefix,
                                 const char *content, uint32_t len, uint64_t lsn)
{
	size_t plen = strlen(prefix);
	size_t size = sizeof(ps_change) + plen + 1 + (size_t)len + 1;
	ps_change *c = malloc(size);
	char *text;

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	text = (char *)(c + 1);
	c->op = PS_OP_MESSAGE;
	c->lsn = lsn;
	c->message_transactional = transactional;
	memcpy(text, prefix, plen + 1);
	c->message_prefix = text;
	text += plen + 1;
	if (len)
		memcpy(text, content, len);
	text[len] = '\0';
	c->message_content = text;
	c->message_len = len;
	c->mem_size = size;
	return c;
}

void ps_change_free(ps_change *c)
{
	if (!c)
		return;
	ps_table_unref(c->table);
	free(c->source_info);
	free(c);
}

void ps_change_set_source_info(ps_change *c, char *info)
{
	if (c->source_info)
		c->mem_size -= strlen(c->source_info) + 1;
	free(c->source_info);
	c->source_info = info;
	if (info)
		c->mem_size += strlen(info) + 1;
}

/* --- table definitions (penstock/tabledef.h) ----------------------------- */

void ps_key_bound_clear(ps_key_bound *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->nvalues; i++)
		free(b->values[i]);
	free(b->values);
	b->values = NULL;
	b->nvalues = 0;
}

void ps_table_def_free(ps_table_def *def)
{
	if (!def)
		return;
	for (int i = 0; def->columns && def->table && i < def->table->ncolumns; i++) {
		free(def->columns[i].sql_type);
		free(def->columns[i].default_expr);
		free(def->columns[i].sequence);
		free(def->columns[i].collation);
		free(def->columns[i].identity_options);
		free(def->columns[i].comment);
		free(def->columns[i].fill_value);
		for (int l = 0; l < def->columns[i].nlabels; l++)
			free(def->columns[i].labels[l]);
		free(def->columns[i].labels);
	}
	free(def->columns);
	for (int i = 0; i < def->ngenerated; i++) {
		free(def->generated[i].name);
		free(def->generated[i].sql_type);
		free(def->generated[i].expr);
		free(def->generated[i].collation);
		free(def->generated[i].comment);
	}
	free(def->generated);
	for (int i = 0; i < def->npartitions; i++) {
		ps_partition_def *p = &def->partitions[i];

		free(p->schema);
		free(p->name);
		free(p->parent_schema);
		free(p->parent_name);
		free(p->bound);
		free(p->partition_by);
		free(p->comment);
	}
	free(def->partitions);
	free(def->partition_by);
	free(def->comment);
	free(def->identity_index);
	ps_schema_objects_free(def->requires, def->nrequires);
	for (int i = 0; i < def->nconstraints; i++) {
		free(def->constraints[i].name);
		free(def->constraints[i].sql);
		free(def->constraints[i].cols);
	}
	free(def->constraints);
	free(def->engine);
	ps_table_unref(def->table);
	free(def);
}

void ps_table_change_free(ps_table_change *tc)
{
	if (!tc)
		return;
	ps_table_unref(tc->table);
	ps_table_unref(tc->previous);
	ps_table_def_free(tc->def);
	free(tc);
}
