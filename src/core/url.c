/*
 * url.c — parsing the URLs that name sources and targets (see url.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. One pass splits the text the RFC 3986 way into scheme, authority,
 *     path and query; each scheme then checks which of those it allows and
 *     fills its fields. Every scheme's query is parsed the same way.
 *  2. Secrets are refused, not hidden: "user:password@" and any query
 *     parameter whose name contains "password" are errors, so a parsed
 *     ps_url never holds a secret and needs no wiping.
 *  3. Messages echo nothing typed after the scheme except a port made only
 *     of digits and query parameter names: a password pasted in the wrong
 *     place ("postgresql://user:secret/db" without '@') must not reach a log
 *     through an error. The userinfo is split at the LAST '@' so that a
 *     password containing '@' still lands wholly in the userinfo.
 *  4. Each component is decoded into its fixed field; input that does not
 *     fit is an error naming the component, never silently truncated.
 *  5. The redacted form is rebuilt from the decoded fields, re-encoding
 *     anything unusual, so it shows exactly what was accepted.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "penstock/url.h"
#include "util/str.h"

#define PASSWORD_REFUSAL "put the password in password_env or password_file, not in the URL"

/* The text after "scheme:", split into its parts; pointers into the input. */
typedef struct url_parts {
	const char *rest;          /* everything after "scheme:" */
	bool has_authority;        /* rest began with "//" */
	const char *userinfo;      /* NULL when there is no '@' */
	size_t userinfo_len;
	const char *hostport;      /* authority without the userinfo */
	size_t hostport_len;
	const char *path;          /* from the '/' after the authority, "" if none */
	size_t path_len;
	const char *query;         /* after '?', NULL when there is no '?' */
	size_t query_len;
} url_parts;


/* ------------------------------------------------------------------ */
/* Percent-decoding and encoding                                       */
/* ------------------------------------------------------------------ */

/* Decodes src[0..n) into dst (capacity cap, NUL-terminated). what names the
 * component in messages; the text itself is never echoed. */
static int decode(char *dst, size_t cap, const char *src, size_t n,
                  const char *what, ps_error *err)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)src[i];

		if (c == '%') {
			int hi = i + 2 < n ? ps_hex_value(src[i + 1]) : -1;
			int lo = i + 2 < n ? ps_hex_value(src[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return ps_error_set(err, PS_EINVAL,
				                    "invalid percent-escape in %s; write %%XX with two hex digits",
				                    what);
			c = hi * 16 + lo;
			if (c == 0)
				return ps_error_set(err, PS_EINVAL, "%s contains %%00", what);
			i += 2;
		}
		if (o + 1 >= cap)
			return ps_error_set(err, PS_EINVAL, "%s is longer than %zu bytes",
			                    what, cap - 1);
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* A bounded output for the redacted form: truncates, never overflows. */
typedef struct out_text {
	char *p;
	size_t cap;
	size_t len;
} out_text;

static void put_char(out_text *o, char c)
{
	if (o->len + 1 < o->cap) {
		o->p[o->len++] = c;
		o->p[o->len] = '\0';
	}
}

static void put(out_text *o, const char *s)
{
	while (*s)
		put_char(o, *s++);
}

/* Appends s, percent-encoding every byte that is not unreserved (RFC 3986)
 * and not in keep. */
static void put_encoded(out_text *o, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~", c) || (c && strchr(keep, c))) {
			put_char(o, (char)c);
		} else {
			put_char(o, '%');
			put_char(o, hex[c >> 4]);
			put_char(o, hex[c & 15]);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Components                                                          */
/* ------------------------------------------------------------------ */

static int parse_port(const char *s, size_t n, int *port, ps_error *err)
{
	char digits[16];
	char *end = NULL;
	long v;
	size_t i;

	if (n == 0)
		return ps_error_set(err, PS_EINVAL,
		                    "port is empty; write host:5432 or leave out the ':'");
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return ps_error_set(err, PS_EINVAL,
			                    "port is not a number from 1 to 65535");
	}
	if (n >= sizeof(digits))
		return ps_error_set(err, PS_EINVAL,
		                    "port is not a number from 1 to 65535");
	memcpy(digits, s, n);
	digits[n] = '\0';
	errno = 0;
	v = strtol(digits, &end, 10);
	if (errno != 0 || end != digits + n || v < 1 || v > 65535)
		return ps_error_set(err, PS_EINVAL,
		                    "port '%s' is not a number from 1 to 65535", digits);
	*port = (int)v;
	return 0;
}

/* "[v6]:port", "host:port", "host" or "" into out->host and out->port. */
static int parse_host_port(ps_url *out, const char *s, size_t n, ps_error *err)
{
	const char *host = s, *colon = NULL, *end = s + n;
	size_t host_len;
	int rc;

	if (memchr(s, ',', n))
		return ps_error_set(err, PS_EINVAL,
		                    "more than one host is not supported; give a single host");
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (!close)
			return ps_error_set(err, PS_EINVAL,
			                    "IPv6 address is missing its closing ']'");
		host = s + 1;
		host_len = (size_t)(close - host);
		if (host_len == 0)
			return ps_error_set(err, PS_EINVAL, "IPv6 address in [] is empty");
		if (close + 1 < end && close[1] != ':')
			return ps_error_set(err, PS_EINVAL,
			                    "unexpected text after ']'; write [::1]:5432");
		if (close + 1 < end)
			colon = close + 1;
	} else {
		colon = memchr(s, ':', n);
		host_len = colon ? (size_t)(colon - s) : n;
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return ps_error_set(err, PS_EINVAL,
			                    "host has more than one ':'; write an IPv6 address in brackets, e.g. [::1]:5432");
	}
	rc = decode(out->host, sizeof(out->host), host, host_len, "host", err);
	if (rc < 0)
		return rc;
	if (colon)
		return parse_port(colon + 1, (size_t)(end - colon - 1), &out->port, err);
	return 0;
}

/* A decoded parameter name as messages quote it: a control byte (a decoded
 * %0A or %1B) would break the one-line message or drive a terminal, so it
 * becomes '?'. */
static void printable_key(const char *key, char out[64])
{
	size_t i = 0;

	for (; key[i] && i < 63; i++)
		out[i] = (unsigned char)key[i] < 0x20 || key[i] == 0x7f ? '?' : key[i];
	out[i] = '\0';
}

static int add_param(ps_url *out, const char *seg, size_t n, int index, ps_error *err)
{
	const char *eq = memchr(seg, '=', n);
	ps_url_param *p;
	char what[128], key[64];
	int i, rc;

	if (!eq)
		return ps_error_set(err, PS_EINVAL,
		                    "query parameter %d has no '='; write key=value", index);
	if (out->nparams >= PS_URL_MAX_PARAMS)
		return ps_error_set(err, PS_EINVAL, "more than %d query parameters",
		                    PS_URL_MAX_PARAMS);
	p = &out->params[out->nparams];
	rc = decode(p->key, sizeof(p->key), seg, (size_t)(eq - seg),
	            "query parameter name", err);
	if (rc < 0)
		return rc;
	if (p->key[0] == '\0')
		return ps_error_set(err, PS_EINVAL,
		                    "query parameter %d has an empty name", index);
	printable_key(p->key, key);
	if (strstr(p->key, "password"))
		return ps_error_set(err, PS_EINVAL, PASSWORD_REFUSAL " (query parameter '%s')", key);
	for (i = 0; i < out->nparams; i++) {
		if (strcmp(out->params[i].key, p->key) == 0)
			return ps_error_set(err, PS_EINVAL,
			                    "query parameter '%s' is given twice", key);
	}
	snprintf(what, sizeof(what), "query parameter '%s'", key);
	rc = decode(p->value, sizeof(p->value), eq + 1, (size_t)(seg + n - eq - 1),
	            what, err);
	if (rc < 0)
		return rc;
	out->nparams++;
	return 0;
}

static int parse_query(ps_url *out, const char *q, size_t n, ps_error *err)
{
	const char *end = q + n;
	int index = 0;

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *seg_end = amp ? amp : end;
		int rc;

		index++;
		if (seg_end > q) {
			rc = add_param(out, q, (size_t)(seg_end - q), index, err);
			if (rc < 0)
				return rc;
		}
		q = amp ? amp + 1 : end;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Splitting                                                           */
/* ------------------------------------------------------------------ */

/* Finds the scheme; on success *rest points after the ':'. */
static int parse_scheme(ps_url *out, const char *text, const char **rest, ps_error *err)
{
	const ps_url_syntax *syn;
	char known[256];
	size_t n = 0;

	if (isalpha((unsigned char)text[0])) {
		n = 1;
		while (isalnum((unsigned char)text[n]) || text[n] == '+' ||
		       text[n] == '-' || text[n] == '.')
			n++;
	}
	if (n == 0 || text[n] != ':')
		return ps_error_set(err, PS_EINVAL,
		                    "not a URL: it has no scheme; write e.g. postgresql://host/dbname, "
		                    "sqlite:///path.db or jsonl:-");
	syn = ps_url_syntax_find(text, n);
	if (syn) {
		out->syntax = syn;
		snprintf(out->scheme_name, sizeof(out->scheme_name), "%s", syn->canonical);
		*rest = text + n + 1;
		return 0;
	}
	ps_url_schemes_list(known, sizeof(known));
	return ps_error_set(err, PS_EINVAL, "unknown URL scheme '%.*s'; use %s",
	                    n > 32 ? 32 : (int)n, text, known);
}

static int split(url_parts *p, const char *rest, ps_error *err)
{
	const char *s = rest, *auth_end, *q;

	memset(p, 0, sizeof(*p));
	p->rest = rest;
	p->path = "";
	if (strncmp(s, "//", 2) != 0)
		return 0;      /* the caller decides whether that is allowed */
	p->has_authority = true;
	s += 2;
	auth_end = s + strcspn(s, "/?");
	p->hostport = s;
	p->hostport_len = (size_t)(auth_end - s);
	for (q = auth_end; q > s; q--) {
		if (q[-1] == '@') {
			p->userinfo = s;
			p->userinfo_len = (size_t)(q - 1 - s);
			p->hostport = q;
			p->hostport_len = (size_t)(auth_end - q);
			break;
		}
	}
	if (p->userinfo && memchr(p->userinfo, ':', p->userinfo_len))
		return ps_error_set(err, PS_EINVAL, PASSWORD_REFUSAL);
	q = strchr(auth_end, '?');
	p->path = auth_end;
	p->path_len = q ? (size_t)(q - auth_end) : strlen(auth_end);
	if (q) {
		p->query = q + 1;
		p->query_len = strlen(q + 1);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Schemes                                                             */
/* ------------------------------------------------------------------ */

static int fill_server(ps_url *out, const url_parts *p, ps_error *err)
{
	int rc;

	if (!p->has_authority)
		return ps_error_set(err, PS_EINVAL, "write %s", out->syntax->hint);
	if (p->userinfo) {
		rc = decode(out->user, sizeof(out->user), p->userinfo, p->userinfo_len,
		            "user", err);
		if (rc < 0)
			return rc;
	}
	rc = parse_host_port(out, p->hostport, p->hostport_len, err);
	if (rc < 0)
		return rc;
	if (out->syntax->host_required && out->host[0] == '\0')
		return ps_error_set(err, PS_EINVAL, "%s URL needs a host; write %s",
		                    out->scheme_name, out->syntax->hint);
	if (p->path_len > 1 && memchr(p->path + 1, '/', p->path_len - 1))
		return ps_error_set(err, PS_EINVAL,
		                    "dbname contains '/'; write it as %%2F if it is meant");
	if (p->path_len > 1)
		return decode(out->dbname, sizeof(out->dbname), p->path + 1,
		              p->path_len - 1, "dbname", err);
	return 0;
}

/* scheme:///path: no host, an absolute non-root path. */
static int fill_path(ps_url *out, const url_parts *p, ps_error *err)
{
	const char *hint = out->syntax->hint;
	const char *what = out->syntax->what ? out->syntax->what : "path";

	if (!p->has_authority || p->userinfo || p->hostport_len > 0)
		return ps_error_set(err, PS_EINVAL, "%s URL needs an absolute path and no host; write %s",
		                    out->scheme_name, hint);
	if (p->path_len <= 1)
		return ps_error_set(err, PS_EINVAL, "%s URL has no path; write %s",
		                    out->scheme_name, hint);
	return decode(out->path, sizeof(out->path), p->path, p->path_len, what, err);
}

/* scheme://host:port[,host:port...]/: a host list, no user, no path. */
static int fill_hosts(ps_url *out, const url_parts *p, ps_error *err)
{
	if (!p->has_authority || p->hostport_len == 0)
		return ps_error_set(err, PS_EINVAL, "%s URL needs brokers; write %s",
		                    out->scheme_name, out->syntax->hint);
	if (p->userinfo)
		return ps_error_set(err, PS_EINVAL, "%s URL takes no user@", out->scheme_name);
	if (p->path_len > 1)
		return ps_error_set(err, PS_EINVAL, "%s URL takes no path; write %s",
		                    out->scheme_name, out->syntax->hint);
	if (p->hostport_len >= sizeof(out->host))
		return ps_error_set(err, PS_EINVAL, "host is longer than %zu bytes",
		                    sizeof(out->host) - 1);
	memcpy(out->host, p->hostport, p->hostport_len);
	out->host[p->hostport_len] = '\0';
	return 0;
}

static void build_redacted(ps_url *u)
{
	out_text o = {u->redacted, sizeof(u->redacted), 0};
	int i;

	u->redacted[0] = '\0';
	put(&o, u->scheme_name);
	if (u->is_stdout) {
		put(&o, ":-");
		return;
	}
	put(&o, "://");
	if (u->user[0]) {
		put_encoded(&o, u->user, "");
		put_char(&o, '@');
	}
	if (u->syntax->form == PS_URL_HOSTS) {
		put(&o, u->host);
		put_char(&o, '/');
	} else if (strchr(u->host, ':')) {
		put_char(&o, '[');
		put_encoded(&o, u->host, ":");
		put_char(&o, ']');
	} else {
		put_encoded(&o, u->host, "");
	}
	if (u->port) {
		char port[16];

		snprintf(port, sizeof(port), ":%d", u->port);
		put(&o, port);
	}
	if (u->dbname[0]) {
		put_char(&o, '/');
		put_encoded(&o, u->dbname, "");
	}
	put_encoded(&o, u->path, "/");
	for (i = 0; i < u->nparams; i++) {
		put_char(&o, i == 0 ? '?' : '&');
		put_encoded(&o, u->params[i].key, "");
		put_char(&o, '=');
		put_encoded(&o, u->params[i].value, "/:,@");
	}
}

int ps_url_parse(ps_url *out, const char *text, ps_error *err)
{
	url_parts parts;
	const char *rest = NULL;
	const char *c;
	int rc;

	if (!out)
		return ps_error_set(err, PS_EINVAL, "no URL output given");
	memset(out, 0, sizeof(*out));
	if (!text || !text[0])
		return ps_error_set(err, PS_EINVAL, "URL is empty");
	for (c = text; *c; c++) {
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f)
			return ps_error_set(err, PS_EINVAL,
			                    "URL contains a space or control character; percent-encode it (e.g. %%20)");
	}
	rc = parse_scheme(out, text, &rest, err);
	if (rc < 0)
		goto cleanup;
	if (out->syntax->form == PS_URL_PATH && out->syntax->stdout_ok && rest[0] == '-') {
		if (rest[1] != '\0') {
			rc = ps_error_set(err, PS_EINVAL, "%s:- takes nothing after the '-'; write %s",
			                  out->scheme_name, out->syntax->hint);
			goto cleanup;
		}
		out->is_stdout = true;
		build_redacted(out);
		return 0;
	}
	rc = split(&parts, rest, err);
	if (rc < 0)
		goto cleanup;
	if (parts.query) {
		rc = parse_query(out, parts.query, parts.query_len, err);
		if (rc < 0)
			goto cleanup;
	}
	switch (out->syntax->form) {
	case PS_URL_SERVER:
		rc = fill_server(out, &parts, err);
		break;
	case PS_URL_PATH:
		rc = fill_path(out, &parts, err);
		break;
	default:
		rc = fill_hosts(out, &parts, err);
		break;
	}
	if (rc < 0)
		goto cleanup;
	build_redacted(out);
	return 0;

cleanup:
	/* Leave no half-filled URL behind for a caller that ignores rc. */
	memset(out, 0, sizeof(*out));
	return rc;
}

const char *ps_url_param_get(const ps_url *u, const char *key)
{
	int i;

	if (!u || !key)
		return NULL;
	for (i = 0; i < u->nparams; i++) {
		if (strcmp(u->params[i].key, key) == 0)
			return u->params[i].value;
	}
	return NULL;
}

void ps_url_host_port(const ps_url *u, char *buf, size_t len)
{
	int port;

	if (!buf || len == 0)
		return;
	if (!u || !u->syntax) {
		snprintf(buf, len, "(no URL)");
		return;
	}
	port = u->port ? u->port : u->syntax->default_port;
	if (u->syntax->form == PS_URL_PATH)
		snprintf(buf, len, "%s", u->is_stdout ? "standard output" : u->path);
	else if (u->syntax->form == PS_URL_HOSTS)
		snprintf(buf, len, "%s", u->host);
	else if (u->host[0] == '\0' && port)
		snprintf(buf, len, "local socket:%d", port);
	else if (u->host[0] == '\0')
		snprintf(buf, len, "local socket");
	else if (strchr(u->host, ':'))
		snprintf(buf, len, "[%s]:%d", u->host, port);
	else
		snprintf(buf, len, "%s:%d", u->host, port);
}

void ps_url_identity(const ps_url *u, char *buf, size_t len)
{
	char hp[300];

	if (!u->syntax || u->syntax->form != PS_URL_SERVER) {
		snprintf(buf, len, "%s", u->redacted);
		return;
	}
	ps_url_host_port(u, hp, sizeof(hp));
	snprintf(buf, len, "%s://%s/%s", u->scheme_name, hp, u->dbname);
}
