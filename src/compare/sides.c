/*
 * sides.c — the table of sides compare can read, looked up by a URL's
 * scheme (see cmp_side.h), the check of a side's ops, and the few helpers
 * every side uses.
 *
 * Adding a side: implement cmp_side_ops in side_<engine>.c and add one line
 * to `builtin` below. Nothing else in src/compare/ changes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compare/cmp_side.h"

static const cmp_side_ops *const builtin[] = {
	&ps__cmp_side_pg,
	&ps__cmp_side_sqlite,
	&ps__cmp_side_mysql,
	NULL
};

/* TEST HOOK: see ps__cmp_sides_for_tests. */
static const cmp_side_ops *const *test_sides;

void ps__cmp_sides_for_tests(const cmp_side_ops *const *sides)
{
	test_sides = sides;
}

static const char *role_name(int role)
{
	return role == CMP_SOURCE ? "source" : "target";
}

/* "PostgreSQL://host" -> "postgresql"; "" when the text has no scheme. */
static void scheme_of(const char *url, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	if (!isalpha((unsigned char)url[0]))
		return;
	while (url[n] && (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' ||
	                  url[n] == '.'))
		n++;
	if (url[n] != ':' || n >= len)
		return;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)url[i]);
	out[n] = '\0';
}

static bool reads_scheme(const cmp_side_ops *ops, const char *scheme)
{
	for (const char *const *s = ops->schemes; s && *s; s++)
		if (strcasecmp(*s, scheme) == 0)
			return true;
	return false;
}

static void put_supported(ps_buf *b, const cmp_side_ops *const *list)
{
	for (; list && *list; list++) {
		unsigned roles = (*list)->roles;
		ps_buf_printf(b, "%s%s:// (%s%s%s)", b->len ? ", " : "",
		              (*list)->schemes && (*list)->schemes[0] ? (*list)->schemes[0] : "?",
		              roles & CMP_ROLE(CMP_SOURCE) ? "source" : "",
		              roles == (CMP_ROLE(CMP_SOURCE) | CMP_ROLE(CMP_TARGET)) ? ", " : "",
		              roles & CMP_ROLE(CMP_TARGET) ? "target" : "");
	}
}

int ps__cmp_side_find(const char *url, int role, const cmp_side_ops **out, ps_error *err)
{
	const cmp_side_ops *const *lists[2] = {test_sides, builtin};
	const cmp_side_ops *found = NULL;
	char scheme[32];
	ps_buf supported;
	int rc;

	*out = NULL;
	scheme_of(url, scheme, sizeof(scheme));
	for (int l = 0; l < 2 && !found; l++)
		for (const cmp_side_ops *const *p = lists[l]; p && *p && !found; p++)
			if (scheme[0] && reads_scheme(*p, scheme))
				found = *p;
	if (found && (found->roles & CMP_ROLE(role))) {
		rc = ps__cmp_side_check(found, role, err);
		if (rc == PS_OK)
			*out = found;
		return rc;
	}
	if (!found) {
		/* Not ours: a URL penstock does not know gets the parser's own
		 * message (what is wrong with it and how to write it). */
		ps_url u;
		rc = ps_url_parse(&u, url, err);
		if (rc != PS_OK) {
			ps_error_add_context(err, "--%s", role_name(role));
			return rc;
		}
	}
	ps_buf_init(&supported, 4096);
	put_supported(&supported, test_sides);
	put_supported(&supported, builtin);
	if (found)
		rc = ps_error_set(err, PS_EINVAL, "compare: %s:// cannot be a %s yet; supported: %s",
		                  scheme, role_name(role), supported.data ? supported.data : "");
	else
		rc = ps_error_set(err, PS_EINVAL, "compare: %s:// cannot be compared yet; supported: %s",
		                  scheme, supported.data ? supported.data : "");
	ps_buf_free(&supported);
	return rc;
}

#define NEED(field, why)                                                              \
	do {                                                                              \
		if (!ops->field)                                                              \
			return ps_error_set(err, PS_EINVAL, "compare: the %s side has no %s "     \
			                    "callback (%s)", name, #field, why);                  \
	} while (0)

int ps__cmp_side_check(const cmp_side_ops *ops, int role, ps_error *err)
{
	const char *name = ops->name ? ops->name : "unnamed";
	int job = !!ops->txn_begin + !!ops->lock_table + !!ops->txn_end + !!ops->log_position +
	          !!ops->position_reached + !!ops->fence;

	if (ops->version != CMP_SIDE_OPS_VERSION)
		return ps_error_set(err, PS_EINVAL, "compare: the %s side is version %d, expected %d",
		                    name, ops->version, CMP_SIDE_OPS_VERSION);
	NEED(schemes, "every side");
	NEED(open, "every side");
	NEED(close, "every side");
	NEED(count, "every side");
	NEED(fetch_range, "every side");
	NEED(fetch_keys, "every side");
	NEED(scan, "every side");
	if (role == CMP_SOURCE) {
		NEED(key_at, "a source");
		NEED(list_tables, "a source");
		NEED(describe, "a source");
	} else {
		NEED(map_table, "a target");
	}
	if (ops->digest) {
		NEED(digest_send, "a side with a digest");
		NEED(digest_get, "a side with a digest");
	} else if (ops->digest_send || ops->digest_get || ops->multiset) {
		return ps_error_set(err, PS_EINVAL, "compare: the %s side has digest callbacks but "
		                    "names no digest", name);
	}
	if (job != 0 && job != 6)
		return ps_error_set(err, PS_EINVAL, "compare: the %s side has only some of the "
		                    "callbacks that follow a job (txn_begin, lock_table, txn_end, "
		                    "log_position, position_reached, fence)", name);
	return PS_OK;
}

#undef NEED

int ps__cmp_side_parse_url(cmp_side *s, const char *url, ps_error *err)
{
	int rc = ps_url_parse(&s->url, url, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "--%s", s->what);
	return rc;
}

