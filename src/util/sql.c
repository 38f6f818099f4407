/*
 * sql.c — quoting identifiers (see sql.h).
 */
#include "util/sql.h"

int ps_sql_quote_ident(ps_buf *b, const char *ident)
{
	size_t start = b->len;
	int rc = ps_buf_putc(b, '"');

	for (const char *p = ident; rc == 0 && *p; p++) {
		if (*p == '"')
			rc = ps_buf_putc(b, '"');
		if (rc == 0)
			rc = ps_buf_putc(b, *p);
	}
	if (rc == 0)
		rc = ps_buf_putc(b, '"');
	if (rc != 0) {
		b->len = start;
		if (b->data)
			b->data[start] = '\0';
	}
	return rc;
}
