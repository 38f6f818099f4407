/*
 * check.c — the precheck report and table list (penstock/check.h).
 *
 * Both are plain growable arrays. An append either adds the whole item or
 * leaves the array as it was, so a caller that ignores PS_ENOMEM still holds
 * a consistent report. Text is bounded by PS_CHECK_TEXT_MAX: a message that
 * lists many tables is cut rather than grown without limit.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "penstock/check.h"

static int grow(void **items, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	p = realloc(*items, ncap * size);
	if (!p)
		return PS_ENOMEM;
	*items = p;
	*cap = ncap;
	return 0;
}

/* vsnprintf into a malloc'd string of at most PS_CHECK_TEXT_MAX bytes, cut
 * with "..." when longer. */
static char *format_bounded(const char *fmt, va_list ap)
{
	char *s = malloc(PS_CHECK_TEXT_MAX);
	int n;

	if (!s)
		return NULL;
	n = vsnprintf(s, PS_CHECK_TEXT_MAX, fmt, ap);
	if (n < 0)
		s[0] = '\0';
	else if ((size_t)n >= PS_CHECK_TEXT_MAX)
		memcpy(s + PS_CHECK_TEXT_MAX - 4, "...", 4);
	return s;
}

int ps_check_add(ps_check_report *r, const char *id, int level, int result,
                 const char *fix, const char *fmt, ...)
{
	ps_check_item *it;
	char *message = NULL, *fix_copy = NULL;
	va_list ap;

	va_start(ap, fmt);
	message = format_bounded(fmt, ap);
	va_end(ap);
	if (fix)
		fix_copy = strndup(fix, PS_CHECK_TEXT_MAX - 1);
	if (!message || (fix && !fix_copy) ||
	    grow((void **)&r->items, &r->cap, r->n, sizeof(*r->items)) != 0) {
		free(message);
		free(fix_copy);
		return PS_ENOMEM;
	}
	it = &r->items[r->n++];
	memset(it, 0, sizeof(*it));
	snprintf(it->id, sizeof(it->id), "%s", id);
	it->level = level;
	it->result = result;
	it->message = message;
	it->fix = fix_copy;
	return 0;
}

void ps_check_report_free(ps_check_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->items[i].message);
		free(r->items[i].fix);
	}
	free(r->items);
	memset(r, 0, sizeof(*r));
}

bool ps_check_report_passed(const ps_check_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].level == PS_CHECK_ERROR && r->items[i].result == PS_CHECK_FAILED)
			return false;
	return true;
}

ps_check_item *ps_check_find(const ps_check_report *r, const char *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->items[i].id, id) == 0)
			return &r->items[i];
	return NULL;
}

const char *ps_check_level_name(int level)
{
	switch (level) {
	case PS_CHECK_ERROR: return "error";
	case PS_CHECK_WARNING: return "warning";
	default: return "?";
	}
}

const char *ps_check_result_name(int result)
{
	switch (result) {
	case PS_CHECK_PASSED: return "passed";
	case PS_CHECK_FAILED: return "failed";
	case PS_CHECK_SKIPPED: return "skipped";
	default: return "?";
	}
}

/* --- tables --------------------------------------------------------------- */

int ps_check_tables_add(ps_check_tables *t, const char *schema, const char *name)
{
	char *s = strdup(schema), *n = strdup(name);
	ps_check_table *it;

	if (!s || !n || grow((void **)&t->items, &t->cap, t->n, sizeof(*t->items)) != 0) {
		free(s);
		free(n);
		return PS_ENOMEM;
	}
	it = &t->items[t->n++];
	memset(it, 0, sizeof(*it));
	it->schema = s;
	it->name = n;
	return 0;
}

int ps_check_table_add_type(ps_check_table *t, const char *type)
{
	char **v;
	char *copy;

	for (size_t i = 0; i < t->nuser_types; i++)
		if (strcmp(t->user_types[i], type) == 0)
			return 0;
	copy = strdup(type);
	v = copy ? realloc(t->user_types, (t->nuser_types + 1) * sizeof(char *)) : NULL;
	if (!v) {
		free(copy);
		return PS_ENOMEM;
	}
	t->user_types = v;
	t->user_types[t->nuser_types++] = copy;
	return 0;
}

int ps_check_table_add_column(ps_check_table *t, const char *column)
{
	char *copy = strdup(column);
	char **v = copy ? realloc(t->columns, (t->ncolumns + 1) * sizeof(char *)) : NULL;

	if (!v) {
		free(copy);
		return PS_ENOMEM;
	}
	t->columns = v;
	t->columns[t->ncolumns++] = copy;
	t->columns_listed = true;
	return 0;
}

int ps_check_table_add_need(ps_check_table *t, const ps_schema_object *o)
{
	ps_schema_object *v = realloc(t->needs, (t->nneeds + 1) * sizeof(*v));

	if (!v)
		return PS_ENOMEM;
	t->needs = v;
	if (ps_schema_object_copy(&v[t->nneeds], o) != PS_OK) {
		ps_schema_object_clear(&v[t->nneeds]);
		return PS_ENOMEM;
	}
	t->nneeds++;
	return 0;
}

void ps_check_tables_free(ps_check_tables *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->items[i].schema);
		free(t->items[i].name);
		for (size_t k = 0; k < t->items[i].nuser_types; k++)
			free(t->items[i].user_types[k]);
		free(t->items[i].user_types);
		ps_schema_objects_free(t->items[i].needs, t->items[i].nneeds);
		for (size_t k = 0; k < t->items[i].ncolumns; k++)
			free(t->items[i].columns[k]);
		free(t->items[i].columns);
	}
	free(t->items);
	memset(t, 0, sizeof(*t));
}
