/*
 * pg_binwalk.c — walking a binary COPY stream (see pg_binwalk.h).
 *
 * NOTES ON THE DESIGN
 *
 * 1. The walk never looks inside a value: it reads the fixed-size words
 *    (signature, flags, lengths, field counts) and jumps over the bytes they
 *    announce, so its cost is a few operations per field whatever the
 *    values hold. That is what makes counting rows of a passthrough cheap.
 * 2. A word split across two pieces is gathered in `part`; a word wholly
 *    inside a piece is read where it lies.
 * 3. Any malformed input puts the walk in W_FAILED for good: the stream is
 *    no longer known to be in step, so nothing after it can be judged.
 *
 * States (one per item of the format; W_EXT and W_VALUE skip bytes):
 *
 *   W_SIGNATURE ─► W_FLAGS ─► W_EXTLEN ─► [W_EXT] ─► W_COUNT
 *   W_COUNT ─(n fields)─► { W_LENGTH ─► [W_VALUE] }n ─► W_COUNT
 *   W_COUNT ─(-1)─► W_DONE          any ─(malformed)─► W_FAILED
 */
#include <stdio.h>
#include <string.h>

#include "source/pg/pg_binwalk.h"

enum {
	W_SIGNATURE = 0,
	W_FLAGS,
	W_EXTLEN,
	W_EXT,
	W_COUNT,
	W_LENGTH,
	W_VALUE,
	W_DONE,
	W_FAILED
};

static const uint8_t SIGNATURE[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

void pg_binwalk_init(pg_binwalk *w, int nfields)
{
	memset(w, 0, sizeof(*w));
	w->state = W_SIGNATURE;
	w->nfields = nfields;
}

static size_t word_size(int state)
{
	switch (state) {
	case W_SIGNATURE: return sizeof(SIGNATURE);
	case W_COUNT: return 2;
	default: return 4;   /* W_FLAGS, W_EXTLEN, W_LENGTH */
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int fail(pg_binwalk *w, uint64_t at, ps_error *err, const char *what)
{
	w->state = W_FAILED;
	return ps_error_set(err, PS_EPROTO, "binary COPY stream: %s at byte %llu", what,
	                    (unsigned long long)at);
}

/* A field ended: the next one's length, or the next tuple. */
static void end_field(pg_binwalk *w, int64_t *done)
{
	if (--w->fields_left > 0) {
		w->state = W_LENGTH;
		return;
	}
	w->rows++;
	(*done)++;
	w->state = W_COUNT;
}

/* Acts on one whole word p of the current state; at is its offset. */
static int take(pg_binwalk *w, const uint8_t *p, uint64_t at, int64_t *done, ps_error *err)
{
	uint32_t v;
	int32_t n;

	switch (w->state) {
	case W_SIGNATURE:
		if (memcmp(p, SIGNATURE, sizeof(SIGNATURE)) != 0)
			return fail(w, at, err, "bad signature (not a binary COPY stream)");
		w->state = W_FLAGS;
		return PS_OK;
	case W_FLAGS:
		v = be32(p);
		if (v & 0xffffu)
			return fail(w, at, err, "critical flags set in the header");
		if (v & (1u << 16))
			return fail(w, at, err, "rows carry OIDs");
		w->state = W_EXTLEN;
		return PS_OK;
	case W_EXTLEN:
		v = be32(p);
		if (v > INT32_MAX)
			return fail(w, at, err, "bad header extension length");
		w->skip = v;
		w->state = v ? W_EXT : W_COUNT;
		return PS_OK;
	case W_COUNT:
		n = (int16_t)((uint16_t)p[0] << 8 | p[1]);
		if (n == -1) {
			w->state = W_DONE;
			return PS_OK;
		}
		if (n != w->nfields) {
			char what[96];

			snprintf(what, sizeof(what), "a tuple of %d fields, expected %d", n, w->nfields);
			return fail(w, at, err, what);
		}
		if (n == 0) {
			w->rows++;
			(*done)++;
			return PS_OK;
		}
		w->fields_left = n;
		w->state = W_LENGTH;
		return PS_OK;
	case W_LENGTH:
		n = (int32_t)be32(p);
		if (n < -1)
			return fail(w, at, err, "negative field length");
		if (n <= 0) {
			end_field(w, done);   /* NULL (-1) or empty */
			return PS_OK;
		}
		w->skip = (uint64_t)n;
		w->state = W_VALUE;
		return PS_OK;
	default:
		return fail(w, at, err, "walk in an impossible state");
	}
}

int pg_binwalk_feed(pg_binwalk *w, const char *data, size_t len, int64_t *rows,
                    ps_error *err)
{
	const uint8_t *in = (const uint8_t *)data;
	int64_t done = 0;
	size_t i = 0;
	int rc = PS_OK;

	if (rows)
		*rows = 0;
	if (w->state == W_FAILED)
		return ps_error_set(err, PS_EPROTO, "binary COPY stream: malformed earlier");
	while (i < len && rc == PS_OK) {
		const uint8_t *word;
		size_t need;

		if (w->state == W_EXT || w->state == W_VALUE) {
			size_t n = len - i < w->skip ? len - i : (size_t)w->skip;

			i += n;
			w->skip -= n;
			if (w->skip > 0)
				continue;
			if (w->state == W_EXT)
				w->state = W_COUNT;
			else
				end_field(w, &done);
			continue;
		}
		if (w->state == W_DONE) {
			rc = fail(w, w->offset + i, err, "data after the trailer");
			break;
		}
		need = word_size(w->state);
		if (w->have == 0 && len - i >= need) {
			word = in + i;     /* NOTES 2: read in place */
			i += need;
		} else {
			size_t n = need - w->have < len - i ? need - w->have : len - i;

			memcpy(w->part + w->have, in + i, n);
			w->have += n;
			i += n;
			if (w->have < need)
				continue;
			word = w->part;
			w->have = 0;
		}
		rc = take(w, word, w->offset + i - need, &done, err);
	}
	w->offset += i;
	if (rows)
		*rows = done;
	return rc;
}

int pg_binwalk_finish(const pg_binwalk *w, ps_error *err)
{
	if (w->state == W_DONE)
		return PS_OK;
	if (w->state == W_FAILED)
		return ps_error_set(err, PS_EPROTO, "binary COPY stream: malformed earlier");
	return ps_error_set(err, PS_EPROTO, "binary COPY stream cut short after %llu bytes "
	                    "(%lld rows) without its trailer", (unsigned long long)w->offset,
	                    (long long)w->rows);
}
