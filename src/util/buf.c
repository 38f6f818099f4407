/*
 * buf.c — bounded growable buffer (see buf.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

void ps_buf_init(ps_buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
}

void ps_buf_free(ps_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void ps_buf_reset(ps_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int ps_buf_reserve(ps_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->limit || b->len > b->limit - extra)
		return PS_ETOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return PS_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = (cap > ((size_t)-1) / 2) ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return PS_ENOMEM;
	b->data = p;
	b->cap = cap;
	return PS_OK;
}

int ps_buf_append(ps_buf *b, const void *p, size_t n)
{
	int rc = ps_buf_reserve(b, n);

	if (rc != PS_OK)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return PS_OK;
}

int ps_buf_puts(ps_buf *b, const char *s)
{
	return ps_buf_append(b, s, strlen(s));
}

int ps_buf_putc(ps_buf *b, char c)
{
	int rc;

	if (b->len + 1 < b->cap && b->len < b->limit) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return PS_OK;
	}
	rc = ps_buf_reserve(b, 1);
	if (rc != PS_OK)
		return rc;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return PS_OK;
}

int ps_buf_vprintf(ps_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, rc;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return PS_ERR;
	rc = ps_buf_reserve(b, (size_t)n);
	if (rc != PS_OK)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return PS_OK;
}

int ps_buf_printf(ps_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ps_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *ps_buf_detach(ps_buf *b)
{
	char *p = b->data;

	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
