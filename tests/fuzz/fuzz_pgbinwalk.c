/*
 * fuzz_pgbinwalk.c — libFuzzer entry point for the binary COPY walker
 * (src/source/pg/pg_binwalk.c): arbitrary bytes as the COPY ... (FORMAT
 * binary) stream of a table, walked whole and in pieces.
 *
 * Input: one byte, the number of fields a tuple must have; one byte that
 * seeds the sizes of the pieces (1..255 bytes, varying from piece to
 * piece); then the stream.
 *
 * What must hold, besides no crash, sanitizer report or leak: the walk in
 * pieces decides exactly as the walk in one piece (a piece may end
 * anywhere, even inside a length word): the same result, the same error
 * message (it names the byte offset, which must not depend on where the
 * pieces end), the same number of rows, the pieces' row counts adding up
 * to it; a failed walk stays failed; finish succeeds only for a stream
 * that ended with its trailer.
 *
 * Seeds: tests/fuzz/corpus/pgbinwalk/ (make_corpus_pg.py: streams a real
 * PostgreSQL 15 sent for COPY of the type zoo, and the unit tests' shapes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_binwalk.h"

typedef struct outcome {
	int rc;               /* of the feeds, then of finish */
	int64_t rows;
	char message[PS_ERROR_MESSAGE_MAX];
} outcome;

static void walk(const uint8_t *s, size_t len, int nfields, uint8_t piece, outcome *o)
{
	pg_binwalk w;
	ps_error err;
	int64_t sum = 0;
	size_t at = 0;
	uint8_t step = piece;

	memset(o, 0, sizeof(*o));
	ps_error_clear(&err);
	pg_binwalk_init(&w, nfields);
	while (at < len) {
		size_t n = len - at;
		int64_t rows = -1;
		char *copy;

		if (piece) {
			step = (uint8_t)(step * 37u + 11u);
			if (step == 0)
				step = 1;
			if (n > step)
				n = step;
		}
		/* each piece in its own exact-size buffer: ASan sees a read past it */
		copy = malloc(n);
		if (!copy)
			abort();
		memcpy(copy, s + at, n);
		o->rc = pg_binwalk_feed(&w, copy, n, &rows, &err);
		free(copy);
		if (rows < 0)
			abort();
		sum += rows;
		at += n;
		if (o->rc != PS_OK)
			break;
	}
	if (sum != w.rows)
		abort();
	if (o->rc != PS_OK) {
		/* a failed walk stays failed */
		if (pg_binwalk_feed(&w, "", 0, NULL, &err) != PS_EPROTO ||
		    pg_binwalk_finish(&w, &err) != PS_EPROTO)
			abort();
	} else {
		o->rc = pg_binwalk_finish(&w, &err);
		if (o->rc == PS_OK) {
			pg_binwalk after = w;
			ps_error ignored;

			/* nothing may follow the trailer */
			if (pg_binwalk_feed(&after, "\0", 1, NULL, &ignored) != PS_EPROTO)
				abort();
		}
	}
	o->rows = sum;
	if (o->rc != PS_OK)
		memcpy(o->message, err.message, sizeof(o->message));
	if (o->rc != PS_OK && o->rc != PS_EPROTO)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	outcome whole, pieces;
	int nfields;

	if (size < 2)
		return 0;
	nfields = data[0];
	walk(data + 2, size - 2, nfields, 0, &whole);
	walk(data + 2, size - 2, nfields, data[1] ? data[1] : 1, &pieces);
	if (whole.rc != pieces.rc || whole.rows != pieces.rows ||
	    strcmp(whole.message, pieces.message) != 0)
		abort();
	return 0;
}
