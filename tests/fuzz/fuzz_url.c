/*
 * fuzz_url.c — libFuzzer entry point for the URL parser (src/core/url.c)
 * with the schemes the plugin registry declares (core/plugin.c): what a
 * user writes in a spec's source.url and target.url.
 *
 * Input: one flags byte, then the URL text (cut at the first NUL).
 *   flags & 1   a secret goes into the userinfo: the URL parsed is
 *               SCHEME://USER:SECRET@REST, where SCHEME is the registry's
 *               scheme picked by flags >> 4, USER is the text up to the
 *               first '|' (with '/', '?', '#' and '@' taken out, so that the
 *               secret stays inside the userinfo) and REST is the rest
 *
 * What must hold, besides no crash, sanitizer report or leak:
 *   - the error of a refused URL is one line and never holds the secret
 *     (url.h: a password is refused, never echoed), and the URL is zeroed;
 *   - a parsed URL has a scheme of the registry, holds no secret anywhere,
 *     and its redacted form (when it was not cut at its bound) parses
 *     again to the same URL, whose redacted form is the same text;
 *   - host:port, identity and parameter lookups stay within their buffers.
 *
 * Seeds: tests/fuzz/corpus/url/ (make_corpus_text.py: every URL in the
 * unit and integration tests and the docs).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "penstock/url.h"

#define SECRET "Zx9SECRETqq7"

static const char *const SCHEMES[] = {
	"postgresql", "postgres", "mysql", "mariadb", "sqlite", "jsonl", "kafka", "PostgreSQL",
	"nosuch", "jsonl", "sqlite", "postgresql", "mysql", "kafka", "postgres", "x-y.z+w"
};

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			return true;
	return false;
}

static void same_url(const ps_url *a, const ps_url *b)
{
	/* the redacted form spells the scheme canonically: an alias's syntax
	 * ("postgres") becomes the canonical one's */
	if (a->syntax->form != b->syntax->form || strcmp(a->scheme_name, b->scheme_name) != 0 ||
	    strcmp(a->user, b->user) != 0 || strcmp(a->host, b->host) != 0 ||
	    a->port != b->port || strcmp(a->dbname, b->dbname) != 0 ||
	    strcmp(a->path, b->path) != 0 || a->is_stdout != b->is_stdout ||
	    a->nparams != b->nparams || strcmp(a->redacted, b->redacted) != 0)
		abort();
	for (int i = 0; i < a->nparams; i++)
		if (strcmp(a->params[i].key, b->params[i].key) != 0 ||
		    strcmp(a->params[i].value, b->params[i].value) != 0)
			abort();
}

static void check(const char *text, bool secret)
{
	static const ps_url zero;
	ps_url u, again;
	ps_error err;
	char buf[2048];

	ps_error_clear(&err);
	if (ps_url_parse(&u, text, &err) != PS_OK) {
		if (err.code != PS_EINVAL || has_control(err.message) ||
		    memcmp(&u, &zero, sizeof(u)) != 0)
			abort();
		if (secret && strstr(err.message, SECRET))
			abort();
		return;
	}
	if (secret)
		abort();      /* user:password@ must be refused */
	if (!u.syntax || !u.scheme_name[0] || ps_url_syntax_find(u.scheme_name,
	                                                          strlen(u.scheme_name)) == NULL)
		abort();
	ps_url_host_port(&u, buf, sizeof(buf));
	ps_url_host_port(&u, buf, 8);
	ps_url_identity(&u, buf, sizeof(buf));
	ps_url_identity(&u, buf, 5);
	for (int i = 0; i < u.nparams; i++)
		if (ps_url_param_get(&u, u.params[i].key) != u.params[i].value)
			abort();
	if (strlen(u.redacted) + 1 >= sizeof(u.redacted))
		return;       /* cut at its bound: not a URL any more */
	ps_error_clear(&err);
	if (ps_url_parse(&again, u.redacted, &err) != PS_OK)
		abort();
	same_url(&u, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *bar;
	size_t n, o = 0;

	if (size < 1)
		return 0;
	n = strnlen((const char *)data + 1, size - 1);
	text = malloc(n + sizeof(SECRET) + 40);
	if (!text)
		return 0;
	if (!(data[0] & 1)) {
		memcpy(text, data + 1, n);
		text[n] = '\0';
		check(text, false);
		free(text);
		return 0;
	}
	o = (size_t)snprintf(text, 40, "%s://", SCHEMES[data[0] >> 4]);
	bar = memchr(data + 1, '|', n);
	for (const uint8_t *p = data + 1; p < (bar ? (const uint8_t *)bar : data + 1 + n); p++)
		if (!strchr("/?#@", *p))
			text[o++] = (char)*p;
	memcpy(text + o, ":" SECRET "@", sizeof(SECRET) + 1);
	o += sizeof(SECRET) + 1;
	if (bar) {
		size_t rest = n - (size_t)((const uint8_t *)bar + 1 - (data + 1));

		memcpy(text + o, bar + 1, rest);
		o += rest;
	}
	text[o] = '\0';
	check(text, true);
	free(text);
	return 0;
}
