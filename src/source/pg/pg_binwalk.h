/*
 * pg_binwalk.h — walks a PostgreSQL binary COPY stream without decoding its
 * values: counts the rows and checks the stream's shape, in pieces of any
 * size (a piece may end anywhere, even inside a length word).
 *
 * The stream (PostgreSQL manual, COPY, "Binary Format"):
 *
 *     header   11-byte signature "PGCOPY\n\377\r\n\0", a 32-bit flags word
 *              (bit 16: OIDs included; bits 0-15: critical, must be 0),
 *              a 32-bit length and that many bytes of header extension
 *     tuple*   a 16-bit field count, then per field a 32-bit length (-1:
 *              NULL, no bytes follow) and that many bytes of value
 *     trailer  a 16-bit field count of -1; nothing may follow it
 *
 * Integers are in network byte order. A walk is the state of one stream;
 * it owns no memory. Not part of any contract: the PostgreSQL source uses
 * it (pgsrc_copy.c) and unit tests reach it.
 */
#ifndef PS_SOURCE_PG_BINWALK_H
#define PS_SOURCE_PG_BINWALK_H

#include <stddef.h>
#include <stdint.h>

#include "penstock/error.h"

typedef struct pg_binwalk {
	int state;            /* where in the stream (pg_binwalk.c) */
	int nfields;          /* fields every tuple must have */
	int fields_left;      /* of the current tuple */
	uint8_t part[11];     /* a fixed-size item split across pieces */
	size_t have;          /* bytes of it in part */
	uint64_t skip;        /* bytes of value or header extension still to pass */
	int64_t rows;         /* tuples complete so far */
	uint64_t offset;      /* bytes walked, for messages */
} pg_binwalk;

/* A new walk of a stream whose tuples have nfields fields. */
void pg_binwalk_init(pg_binwalk *w, int nfields);

/* Walks the next len bytes; *rows (may be NULL) receives how many tuples
 * ended within them. A malformed stream (bad signature, critical or OID
 * flags, a field count other than nfields, a length below -1, bytes after
 * the trailer) is PS_EPROTO naming the byte offset; the walk then stays
 * failed. */
int pg_binwalk_feed(pg_binwalk *w, const char *data, size_t len, int64_t *rows,
                    ps_error *err);

/* PS_OK when the stream ended with its trailer, else PS_EPROTO (a stream
 * cut short). */
int pg_binwalk_finish(const pg_binwalk *w, ps_error *err);

#endif
