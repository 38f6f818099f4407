/*
 * fuzz_binlog.c — libFuzzer entry point for the binlog decoder
 * (src/source/mysql/binlog*.c): arbitrary bytes through framing, the format
 * description, table maps (into the table cache) and every row's values, as
 * a reader of a binlog file would take them.
 *
 * Input: one flags byte, then events back to back, each as long as its
 * header's event_len says.
 *   flags & 1   the checksum in force before the first FORMAT_DESCRIPTION is
 *               CRC32 (as a network reader may know it), else none
 *   flags & 2   repair each event's frame before decoding it: event_len set
 *               to the bytes it spans (the rest of the input when the field
 *               is short or too long) and, with CRC32 in force, the
 *               checksum recomputed — so that mutations reach the fields
 *               behind the checks instead of dying at them
 *   flags & 4   mark BINARY(16) columns as UUID or INET6 and BINARY(4) ones
 *               as INET4, as the source plugin does from information_schema
 *
 * Every value must be NUL-terminated at its length; any crash, sanitizer
 * report, leak or timeout is a finding. Limits keep one input's memory small:
 * 1 MiB of text a row, 1 MiB inflated a compressed event.
 *
 * Seeds: tests/fuzz/corpus/binlog/ (events of real MariaDB binlogs, see
 * make_corpus.py there).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "source/mysql/binlog.h"

#define LIMIT ((size_t)1 << 20)

static void touch_row(const ps_binlog_row *row, const ps_binlog_table *t)
{
	const ps_binlog_value *images[2] = {row->before, row->after};

	if (row->ncolumns != t->ncolumns)
		abort();
	for (int k = 0; k < 2; k++) {
		if (!images[k])
			continue;
		for (uint32_t i = 0; i < row->ncolumns; i++) {
			const ps_binlog_value *v = &images[k][i];

			if (v->kind == PS_BINLOG_TEXT && (!v->text || v->text[v->len] != '\0'))
				abort();
			if (v->kind != PS_BINLOG_TEXT && v->text)
				abort();
		}
	}
}

static void mark_ext(ps_binlog_table *t)
{
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		ps_binlog_column *c = &t->columns[i];

		if (c->real_type != PS_MYSQL_TYPE_STRING)
			continue;
		if (c->max_bytes == 16)
			c->ext = i % 2 ? PS_BINLOG_EXT_UUID : PS_BINLOG_EXT_INET6;
		else if (c->max_bytes == 4)
			c->ext = PS_BINLOG_EXT_INET4;
	}
}

static void describe(const ps_binlog_table *t, ps_buf *labels)
{
	char type[64];
	ps_error err;

	for (uint32_t i = 0; i < t->ncolumns; i++) {
		const ps_binlog_column *c = &t->columns[i];

		ps_binlog_column_describe(c, type, sizeof(type));
		for (uint32_t k = 0; k < c->nlabels; k++) {
			ps_buf_reset(labels);
			(void)ps_binlog_label_text(c, k, labels, &err);
		}
		(void)ps_binlog_charset_name(c->collation);
		(void)ps_binlog_charset_maxlen(c->collation);
	}
}

static void one_event(const uint8_t *e, size_t len, ps_binlog_fde *fde,
                      ps_binlog_tablecache *tables, ps_binlog_scratch *s, ps_buf *labels,
                      uint8_t flags)
{
	ps_binlog_event ev;
	ps_binlog_table *t = NULL;
	ps_binlog_rows it;
	ps_binlog_row row;
	ps_error err;
	int rc;

	if (ps_binlog_event_parse(&ev, e, len, fde, s, &err) != PS_OK)
		return;
	switch (ev.kind) {
	case PS_BINLOG_EV_FDE:
		*fde = ev.u.fde;
		break;
	case PS_BINLOG_EV_GTID_LIST:
		for (uint32_t i = 0; i < ev.u.gtid_list.count; i++) {
			ps_binlog_gtid g;

			ps_binlog_gtid_list_get(&ev, i, &g);
		}
		break;
	case PS_BINLOG_EV_TABLE_MAP:
		if (ps_binlog_tablecache_put(tables, &ev, &t, NULL, &err) != PS_OK)
			break;
		if (flags & 4)
			mark_ext(t);
		describe(t, labels);
		break;
	case PS_BINLOG_EV_ROWS:
		t = ps_binlog_tablecache_get(tables, ev.u.rows.table_id);
		if (!t || ps_binlog_rows_begin(&it, &ev, t, s, &err) != PS_OK)
			break;
		while ((rc = ps_binlog_rows_next(&it, &row, &err)) == 1)
			touch_row(&row, t);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ps_binlog_fde fde;
	ps_binlog_tablecache *tables;
	ps_binlog_scratch scratch;
	ps_buf labels;
	uint8_t flags, *copy;
	size_t pos = 1;

	if (size < 1)
		return 0;
	flags = data[0];
	copy = malloc(size);
	tables = ps_binlog_tablecache_new();
	if (!copy || !tables) {
		free(copy);
		ps_binlog_tablecache_free(tables);
		return 0;
	}
	ps_binlog_fde_init(&fde, (flags & 1) ? PS_BINLOG_CHECKSUM_CRC32 : PS_BINLOG_CHECKSUM_OFF);
	ps_binlog_scratch_init(&scratch, LIMIT, LIMIT);
	ps_buf_init(&labels, LIMIT);
	while (pos < size) {
		size_t left = size - pos, len = left;

		if (left >= PS_BINLOG_HEADER_LEN) {
			uint32_t event_len = (uint32_t)data[pos + 9] | (uint32_t)data[pos + 10] << 8 |
			                     (uint32_t)data[pos + 11] << 16 | (uint32_t)data[pos + 12] << 24;

			if (event_len >= PS_BINLOG_HEADER_LEN && event_len <= left)
				len = event_len;
		}
		memcpy(copy, data + pos, len);
		if ((flags & 2) && len >= PS_BINLOG_HEADER_LEN) {
			copy[9] = (uint8_t)len;
			copy[10] = (uint8_t)(len >> 8);
			copy[11] = (uint8_t)(len >> 16);
			copy[12] = (uint8_t)(len >> 24);
			if (len >= PS_BINLOG_HEADER_LEN + PS_BINLOG_CHECKSUM_LEN &&
			    (fde.checksum_alg == PS_BINLOG_CHECKSUM_CRC32 ||
			     copy[4] == PS_BINLOG_FORMAT_DESCRIPTION)) {
				uint8_t saved = copy[17];
				uint32_t crc;

				if (copy[4] == PS_BINLOG_FORMAT_DESCRIPTION)
					copy[17] &= (uint8_t)~PS_BINLOG_F_BINLOG_IN_USE;
				crc = (uint32_t)crc32(0L, copy, (uInt)(len - 4));
				copy[17] = saved;
				for (int i = 0; i < 4; i++)
					copy[len - 4 + i] = (uint8_t)(crc >> (8 * i));
			}
		}
		one_event(copy, len, &fde, tables, &scratch, &labels, flags);
		pos += len;
	}
	ps_buf_free(&labels);
	ps_binlog_scratch_free(&scratch);
	ps_binlog_tablecache_free(tables);
	free(copy);
	return 0;
}
