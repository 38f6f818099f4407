/*
 * buf.h — a growable byte buffer that knows its limit (after curl's dynbuf).
 *
 * Invariants: data is NUL-terminated whenever it is non-NULL; len never
 * exceeds limit; a failed append leaves the buffer as it was and returns
 * PS_ETOOBIG (limit) or PS_ENOMEM.
 */
#ifndef PS_UTIL_BUF_H
#define PS_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "penstock/error.h"

typedef struct ps_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t limit;   /* the most len may ever be */
} ps_buf;

void ps_buf_init(ps_buf *b, size_t limit);
void ps_buf_free(ps_buf *b);
void ps_buf_reset(ps_buf *b);              /* len = 0, keeps memory */
int ps_buf_reserve(ps_buf *b, size_t extra);
int ps_buf_append(ps_buf *b, const void *p, size_t n);
int ps_buf_puts(ps_buf *b, const char *s);
int ps_buf_putc(ps_buf *b, char c);
int ps_buf_printf(ps_buf *b, const char *fmt, ...) PS_PRINTF(2, 3);
int ps_buf_vprintf(ps_buf *b, const char *fmt, va_list ap);
/* Hands the data to the caller (malloc'd, NUL-terminated) and resets b. */
char *ps_buf_detach(ps_buf *b);

#endif
