/*
 * binlog_rows.c — the rows of a WRITE/UPDATE/DELETE_ROWS event as arrays of
 * canonical-text values (see binlog.h).
 *
 * NOTES ON THE DESIGN
 *
 * 1. A row image is: a null bitmap with one bit per column present in the
 *    image (LSB first, (present + 7) / 8 bytes), then the values of the
 *    present columns that are not NULL, in column order. An UPDATE row is
 *    the before image (old row, columns of the event's first bitmap) then
 *    the after image (new row, second bitmap). A column outside an image's
 *    bitmap (binlog_row_image=MINIMAL or NOBLOB) is PS_BINLOG_ABSENT, never
 *    NULL. Padding bits of every bitmap are ignored: the server may set them
 *    (it sets the null bitmap's).
 *
 * 2. No allocation per row: values live in scratch->values (grown to twice
 *    the widest table once), their text in scratch->text, which is reset at
 *    each row. While a row is decoded the buffer may move as it grows, so
 *    each value records its text's offset and the pointers are set once the
 *    row is complete.
 *
 * 3. A compressed event is inflated once, at ps_binlog_rows_begin, into
 *    scratch->inflate; offsets in messages are then "of the inflated data".
 *
 * 4. Every row must consume bytes: a row of zero bytes (no column present in
 *    any image) would repeat forever, so it is PS_EPROTO.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/binlog_internal.h"

static uint32_t count_present(const uint8_t *bits, uint32_t width)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < width; i++)
		n += (bits[i / 8] >> (i % 8)) & 1;
	return n;
}

static int grow_values(ps_binlog_scratch *s, size_t need, ps_error *err)
{
	ps_binlog_value *values;
	size_t *offsets;

	if (s->nvalues >= need)
		return PS_OK;
	values = realloc(s->values, need * sizeof(*values));
	if (!values)
		return ps_error_set(err, PS_ENOMEM, "binlog rows: out of memory for %zu values", need);
	s->values = values;
	offsets = realloc(s->offsets, need * sizeof(*offsets));
	if (!offsets)
		return ps_error_set(err, PS_ENOMEM, "binlog rows: out of memory for %zu values", need);
	s->offsets = offsets;
	s->nvalues = need;
	return PS_OK;
}

int ps_binlog_rows_begin(ps_binlog_rows *it, const ps_binlog_event *ev,
                         const ps_binlog_table *table, ps_binlog_scratch *scratch,
                         ps_error *err)
{
	int rc;

	memset(it, 0, sizeof(*it));
	if (ev->kind != PS_BINLOG_EV_ROWS || !table)
		return ps_error_set(err, PS_EINVAL, "binlog: rows of a %s event%s",
		                    ev->type_name ? ev->type_name : "?", table ? "" : " without a table");
	if (table->table_id != ev->u.rows.table_id)
		return ps_error_set(err, PS_EINVAL, "binlog %s event: table id %" PRIu64
		                    " decoded with the table of id %" PRIu64, ev->type_name,
		                    ev->u.rows.table_id, table->table_id);
	if (ev->u.rows.width != table->ncolumns)
		return ps_error_set(err, PS_EPROTO, "binlog %s event: %" PRIu32 " columns, table "
		                    "%s.%s (id %" PRIu64 ") was mapped with %" PRIu32, ev->type_name,
		                    ev->u.rows.width, table->db, table->name, table->table_id,
		                    table->ncolumns);
	rc = grow_values(scratch, 2 * (size_t)table->ncolumns, err);
	if (rc != PS_OK)
		return rc;
	it->ev = ev;
	it->table = table;
	it->op = ev->u.rows.op;
	it->scratch = scratch;
	it->npresent = count_present(ev->u.rows.present, table->ncolumns);
	it->npresent_after = count_present(ev->u.rows.present_after, table->ncolumns);
	if (ev->u.rows.compressed) {
		bl_reader r;

		bl_init(&r, ev->u.rows.rows, ev->u.rows.rows_len, ev->u.rows.rows_offset,
		        ev->type_name, err);
		rc = ps__binlog_inflate(&r, ev->u.rows.rows_len, &scratch->inflate, "rows");
		if (rc != PS_OK)
			return rc;
		it->data = (const uint8_t *)scratch->inflate.data;
		it->len = scratch->inflate.len;
		it->base = 0;
		it->inflated = true;
	} else {
		it->data = ev->u.rows.rows;
		it->len = ev->u.rows.rows_len;
		it->base = ev->u.rows.rows_offset;
	}
	return PS_OK;
}

static int decode_image(bl_reader *r, ps_binlog_rows *it, const uint8_t *present,
                        uint32_t npresent, ps_binlog_value *vals, size_t *offs,
                        const char *image)
{
	const ps_binlog_table *t = it->table;
	ps_buf *text = &it->scratch->text;
	const uint8_t *nulls = NULL;
	bl_valpos vp = {it->nrows + 1, 0, image};
	char field[64];
	uint32_t j = 0;
	int rc;

	snprintf(field, sizeof(field), "row %" PRIu64 "%s null bitmap", it->nrows + 1, image);
	rc = bl_bytes(r, ((size_t)npresent + 7) / 8, &nulls, field);
	if (rc != PS_OK)
		return rc;
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		ps_binlog_value *v = &vals[i];

		v->flags = 0;
		v->len = 0;
		v->text = NULL;
		if (!((present[i / 8] >> (i % 8)) & 1)) {
			v->kind = PS_BINLOG_ABSENT;
			continue;
		}
		if ((nulls[j / 8] >> (j % 8)) & 1) {
			v->kind = PS_BINLOG_NULL;
			j++;
			continue;
		}
		j++;
		vp.column = i;
		offs[i] = text->len;
		rc = ps__binlog_value_decode(r, &t->columns[i], &vp, text, &v->flags);
		if (rc != PS_OK)
			return rc;
		if (text->len - offs[i] > UINT32_MAX) {
			char where[64];

			ps__bl_where(r, r->pos, where, sizeof(where));
			return ps__bl_fail_code(r, PS_ETOOBIG, field, "value of column %" PRIu32
			                        " over 4 GiB of text at %s", i + 1, where);
		}
		v->kind = PS_BINLOG_TEXT;
		v->len = (uint32_t)(text->len - offs[i]);
		rc = ps_buf_putc(text, '\0');
		if (rc != PS_OK)
			return ps__bl_fail_code(r, rc, field, "the row's text is over the limit");
	}
	return PS_OK;
}

int ps_binlog_rows_next(ps_binlog_rows *it, ps_binlog_row *row, ps_error *err)
{
	ps_binlog_scratch *s = it->scratch;
	uint32_t n = it->table ? it->table->ncolumns : 0;
	bl_reader r;
	size_t start;
	int rc;

	memset(row, 0, sizeof(*row));
	if (!it->ev || it->pos >= it->len)
		return 0;
	bl_init(&r, it->data, it->len, it->base, it->ev->type_name, err);
	r.pos = it->pos;
	r.inflated = it->inflated;
	start = r.pos;
	ps_buf_reset(&s->text);
	if (it->op == PS_BINLOG_UPDATE) {
		rc = decode_image(&r, it, it->ev->u.rows.present, it->npresent, s->values, s->offsets,
		                  " (before image)");
		if (rc == PS_OK)
			rc = decode_image(&r, it, it->ev->u.rows.present_after, it->npresent_after,
			                  s->values + n, s->offsets + n, " (after image)");
	} else {
		rc = decode_image(&r, it, it->ev->u.rows.present, it->npresent, s->values, s->offsets,
		                  "");
	}
	if (rc != PS_OK)
		return rc;
	if (r.pos == start)
		return ps__bl_fail(&r, "rows", "row %" PRIu64 " has no bytes (no column present)",
		                   it->nrows + 1);
	for (size_t i = 0; i < (it->op == PS_BINLOG_UPDATE ? 2 * (size_t)n : n); i++)
		if (s->values[i].kind == PS_BINLOG_TEXT)
			s->values[i].text = s->text.data + s->offsets[i];
	row->ncolumns = n;
	if (it->op == PS_BINLOG_UPDATE) {
		row->before = s->values;
		row->after = s->values + n;
	} else if (it->op == PS_BINLOG_DELETE) {
		row->before = s->values;
	} else {
		row->after = s->values;
	}
	it->pos = r.pos;
	it->nrows++;
	return 1;
}
