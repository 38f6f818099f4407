/*
 * binlog_internal.h — what the binlog decoder's files share (not for users of
 * binlog.h): the bounds-checked reader and the helpers between files.
 *
 * The reader knows the bytes it may read (buf, len), where it is (pos), where
 * buf starts within the event (base, so that messages give offsets in the
 * event even inside an inflated body) and the event's name. Every read checks
 * the bytes left first; integers are assembled byte by byte (little-endian
 * unless the name says _be), so nothing depends on alignment or host order.
 */
#ifndef PS_SOURCE_MYSQL_BINLOG_INTERNAL_H
#define PS_SOURCE_MYSQL_BINLOG_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "source/mysql/binlog.h"

typedef struct bl_reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;             /* next byte; never more than len */
	size_t base;            /* offset of buf[0] in the event */
	const char *what;       /* event type name, e.g. "Table_map" */
	bool inflated;          /* buf is an inflated body: say so in messages */
	ps_error *err;
} bl_reader;

static inline void bl_init(bl_reader *r, const uint8_t *buf, size_t len, size_t base,
                           const char *what, ps_error *err)
{
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->base = base;
	r->what = what;
	r->inflated = false;
	r->err = err;
}

/* PS_EPROTO "binlog <what> event: <field>: <detail>", returns PS_EPROTO. */
int ps__bl_fail(const bl_reader *r, const char *field, const char *fmt, ...) PS_PRINTF(3, 4);
/* Same with another code (PS_ETOOBIG, PS_ENOMEM). */
int ps__bl_fail_code(const bl_reader *r, int code, const char *field, const char *fmt, ...)
	PS_PRINTF(4, 5);
/* The offset of the reader's position as text for messages: "byte 41" or
 * "byte 12 of the inflated rows". */
void ps__bl_where(const bl_reader *r, size_t pos, char *buf, size_t len);
/* The truncation error for a field starting at r->pos that needs n bytes. */
int ps__bl_truncated(const bl_reader *r, const char *field, size_t n);

static inline size_t bl_left(const bl_reader *r)
{
	return r->len - r->pos;
}

static inline int bl_need(bl_reader *r, size_t n, const char *field)
{
	if (n <= r->len - r->pos)
		return PS_OK;
	return ps__bl_truncated(r, field, n);
}

static inline uint64_t bl_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i > 0; i--)
		v = (v << 8) | p[i - 1];
	return v;
}

static inline uint64_t bl_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* n (<= 8) bytes little-endian. */
static inline int bl_uint(bl_reader *r, size_t n, uint64_t *v, const char *field)
{
	int rc = bl_need(r, n, field);

	if (rc == PS_OK) {
		*v = bl_le(r->buf + r->pos, n);
		r->pos += n;
	}
	return rc;
}

static inline int bl_u8(bl_reader *r, uint8_t *v, const char *field)
{
	int rc = bl_need(r, 1, field);

	if (rc == PS_OK)
		*v = r->buf[r->pos++];
	return rc;
}

static inline int bl_u16(bl_reader *r, uint16_t *v, const char *field)
{
	uint64_t x = 0;
	int rc = bl_uint(r, 2, &x, field);

	*v = (uint16_t)x;
	return rc;
}

static inline int bl_u32(bl_reader *r, uint32_t *v, const char *field)
{
	uint64_t x = 0;
	int rc = bl_uint(r, 4, &x, field);

	*v = (uint32_t)x;
	return rc;
}

/* n raw bytes; *p points into the buffer. */
static inline int bl_bytes(bl_reader *r, size_t n, const uint8_t **p, const char *field)
{
	int rc = bl_need(r, n, field);

	if (rc == PS_OK) {
		*p = r->buf + r->pos;
		r->pos += n;
	}
	return rc;
}

/* A length-encoded ("packed") integer: < 251 in one byte, 252 + 2 bytes,
 * 253 + 3, 254 + 8. 251 (NULL) and 255 are errors here. */
int ps__bl_packed(bl_reader *r, uint64_t *v, const char *field);

/* A packed integer that must be <= max (a count or a length). */
int ps__bl_packed_max(bl_reader *r, uint64_t max, uint64_t *v, const char *field);

/* A packed length of bytes that must follow it: <= the bytes left once the
 * length itself is read. */
int ps__bl_packed_len(bl_reader *r, uint64_t *v, const char *field);

/* --- between files ------------------------------------------------------------- */

/* Where a value is, for messages (built only on error). */
typedef struct bl_valpos {
	uint64_t row;           /* 1-based */
	uint32_t column;        /* 0-based */
	const char *image;      /* " (before image)", " (after image)" or "" */
} bl_valpos;

/* binlog_value.c: decodes the value of column c at the reader's position and
 * appends its canonical text to out (NUL not included); *flags gets
 * PS_BINLOG_VF_*. */
int ps__binlog_value_decode(bl_reader *r, const ps_binlog_column *c, const bl_valpos *vp,
                            ps_buf *out, uint8_t *flags);

/* binlog_charset.c: appends n bytes in the charset of collation to out as
 * UTF-8. PS_EPROTO with *why set for an invalid sequence or an unsupported
 * charset (message built by the caller, who knows the column); PS_ETOOBIG /
 * PS_ENOMEM from the buffer. */
int ps__binlog_to_utf8(ps_buf *out, const uint8_t *s, size_t n, uint32_t collation,
                       char *why, size_t why_len);

/* Appends "\x" and the lowercase hex of n bytes, then pad zero bytes. */
int ps__binlog_put_hex(ps_buf *out, const uint8_t *s, size_t n, size_t pad);

/* binlog_event.c: inflates a MariaDB compressed block (header byte 0x8L, L
 * length bytes big-endian, zlib data) at r into scratch->inflate; the size
 * is capped by the inflate limit and by what zlib can make of n bytes. */
int ps__binlog_inflate(bl_reader *r, size_t n, ps_buf *inflate, const char *field);

#endif
