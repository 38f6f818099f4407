/*
 * binlogdump.c — test driver for the binlog decoder (source/mysql/binlog.h):
 * reads MariaDB binlog files and prints one JSON line per row change.
 *
 *   binlogdump [--events] [--quiet] [--type DB.TABLE.COLUMN=uuid|inet6|inet4]...
 *              FILE...
 *
 * Files are read in the order given, each from its magic number on, with
 * the format description carried from event to event as a reader must.
 * Output, JSON lines on stdout:
 *
 *   {"file":"binlog.000001","pos":1234,"gtid":"0-1-7","op":"update",
 *    "db":"d","table":"t","before":[...],"after":[...]}
 *
 * where pos is the rows event's offset in its file, gtid the transaction's
 * (domain-server-seq, "" before any), before/after null or one entry per
 * column: null (SQL NULL), a string (the canonical text), {"absent":true}
 * (not in this image), or {"v":"...","zero_date":true} /
 * {"v":"...","no_labels":true} for a flagged value.
 *
 * --events also prints a line for every event: {"event":"Gtid","file":..,
 * "pos":..,...} with the fields a reader acts on (gtid, query kind and text,
 * xid, rotate target, table map columns with their types).
 * --quiet decodes everything and prints only the totals (for timing).
 * --type marks a column the binlog shows as BINARY: its values are printed
 * as that type (what the source plugin does from information_schema).
 *
 * Totals go to stderr: "binlogdump: N events, M rows". Exit status 0, 1 on a
 * decoding or I/O error (message on stderr with file and position), 2 on
 * usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/binlog.h"
#include "util/buf.h"
#include "util/json.h"

#define MAX_TYPES 256
#define MAX_EVENT (((size_t)1 << 30) + 4096)

typedef struct type_hint {
	char db[128], table[128], column[128];
	uint8_t ext;
} type_hint;

typedef struct dump {
	bool events, quiet;
	type_hint hints[MAX_TYPES];
	size_t nhints;
	ps_binlog_fde fde;
	ps_binlog_tablecache *tables;
	ps_binlog_scratch scratch;
	ps_buf line;
	char gtid[64];
	const char *file;          /* base name of the current file */
	uint64_t nevents, nrows;
} dump;

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int parse_hint(dump *d, const char *arg)
{
	type_hint *h;
	const char *eq = strchr(arg, '='), *dot1, *dot2;

	if (d->nhints == MAX_TYPES || !eq)
		return -1;
	h = &d->hints[d->nhints];
	dot1 = memchr(arg, '.', (size_t)(eq - arg));
	dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(eq - dot1 - 1)) : NULL;
	if (!dot1 || !dot2)
		return -1;
	snprintf(h->db, sizeof(h->db), "%.*s", (int)(dot1 - arg), arg);
	snprintf(h->table, sizeof(h->table), "%.*s", (int)(dot2 - dot1 - 1), dot1 + 1);
	snprintf(h->column, sizeof(h->column), "%.*s", (int)(eq - dot2 - 1), dot2 + 1);
	if (strcmp(eq + 1, "uuid") == 0)
		h->ext = PS_BINLOG_EXT_UUID;
	else if (strcmp(eq + 1, "inet6") == 0)
		h->ext = PS_BINLOG_EXT_INET6;
	else if (strcmp(eq + 1, "inet4") == 0)
		h->ext = PS_BINLOG_EXT_INET4;
	else
		return -1;
	d->nhints++;
	return 0;
}

static void apply_hints(dump *d, ps_binlog_table *t)
{
	for (size_t i = 0; i < d->nhints; i++) {
		const type_hint *h = &d->hints[i];
		int col;

		if (strcmp(h->db, t->db) != 0 || strcmp(h->table, t->name) != 0)
			continue;
		col = ps_binlog_table_column_index(t, h->column);
		if (col >= 0)
			t->columns[col].ext = h->ext;
	}
}

/* --- output ------------------------------------------------------------------------ */

static void put_json(ps_buf *b, const char *s, size_t n)
{
	if (s)
		ps_json_append_string(b, s, n);
	else
		ps_buf_puts(b, "null");
}

static void put_head(dump *d, const char *event, uint64_t pos)
{
	ps_buf_puts(&d->line, "{\"event\":");
	put_json(&d->line, event, strlen(event));
	ps_buf_puts(&d->line, ",\"file\":");
	put_json(&d->line, d->file, strlen(d->file));
	ps_buf_printf(&d->line, ",\"pos\":%" PRIu64, pos);
}

static void flush_line(dump *d)
{
	ps_buf_putc(&d->line, '\n');
	if (!d->quiet)
		fwrite(d->line.data, 1, d->line.len, stdout);
	ps_buf_reset(&d->line);
}

static void put_values(ps_buf *b, const ps_binlog_value *v, uint32_t n)
{
	if (!v) {
		ps_buf_puts(b, "null");
		return;
	}
	ps_buf_putc(b, '[');
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			ps_buf_putc(b, ',');
		if (v[i].kind == PS_BINLOG_NULL) {
			ps_buf_puts(b, "null");
		} else if (v[i].kind == PS_BINLOG_ABSENT) {
			ps_buf_puts(b, "{\"absent\":true}");
		} else if (v[i].flags) {
			ps_buf_puts(b, "{\"v\":");
			put_json(b, v[i].text, v[i].len);
			if (v[i].flags & PS_BINLOG_VF_ZERO_DATE)
				ps_buf_puts(b, ",\"zero_date\":true");
			if (v[i].flags & PS_BINLOG_VF_NO_LABELS)
				ps_buf_puts(b, ",\"no_labels\":true");
			ps_buf_putc(b, '}');
		} else {
			put_json(b, v[i].text, v[i].len);
		}
	}
	ps_buf_putc(b, ']');
}

static void put_table_event(dump *d, const ps_binlog_event *ev, const ps_binlog_table *t,
                            uint64_t pos)
{
	ps_buf *b = &d->line;

	put_head(d, "Table_map", pos);
	ps_buf_printf(b, ",\"table_id\":%" PRIu64 ",\"db\":", t->table_id);
	put_json(b, t->db, strlen(t->db));
	ps_buf_puts(b, ",\"table\":");
	put_json(b, t->name, strlen(t->name));
	ps_buf_printf(b, ",\"has\":%" PRIu32 ",\"columns\":[", t->has);
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		const ps_binlog_column *c = &t->columns[i];
		char type[64];

		ps_binlog_column_describe(c, type, sizeof(type));
		ps_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		put_json(b, c->name, c->name ? strlen(c->name) : 0);
		ps_buf_puts(b, ",\"type\":");
		put_json(b, type, strlen(type));
		ps_buf_printf(b, ",\"type_code\":%u,\"real_type\":%u,\"meta\":%u,\"nullable\":%s,"
		              "\"unsigned\":%s,\"key_seq\":%u,\"collation\":%" PRIu32,
		              c->type, c->real_type, c->meta, c->nullable ? "true" : "false",
		              c->is_unsigned ? "true" : "false", c->key_seq, c->collation);
		if (c->nlabels) {
			ps_buf_puts(b, ",\"labels\":[");
			for (uint32_t k = 0; k < c->nlabels; k++) {
				ps_buf label;
				ps_error lerr;

				ps_buf_init(&label, (size_t)1 << 20);
				if (ps_binlog_label_text(c, k, &label, &lerr) != PS_OK)
					ps_buf_puts(&label, "?");
				if (k)
					ps_buf_putc(b, ',');
				put_json(b, label.data, label.len);
				ps_buf_free(&label);
			}
			ps_buf_putc(b, ']');
		}
		ps_buf_putc(b, '}');
	}
	ps_buf_puts(b, "]}");
	(void)ev;
	flush_line(d);
}

static void put_event(dump *d, const ps_binlog_event *ev, uint64_t pos)
{
	ps_buf *b = &d->line;

	put_head(d, ev->type_name, pos);
	ps_buf_printf(b, ",\"type\":%u,\"log_pos\":%" PRIu32 ",\"flags\":%u", ev->header.type,
	              ev->header.log_pos, ev->header.flags);
	switch (ev->kind) {
	case PS_BINLOG_EV_FDE:
		ps_buf_puts(b, ",\"server_version\":");
		put_json(b, ev->u.fde.server_version, strlen(ev->u.fde.server_version));
		ps_buf_printf(b, ",\"checksum\":%u", ev->u.fde.checksum_alg);
		break;
	case PS_BINLOG_EV_ROTATE:
		ps_buf_printf(b, ",\"position\":%" PRIu64 ",\"next\":", ev->u.rotate.position);
		put_json(b, ev->u.rotate.file, ev->u.rotate.file_len);
		break;
	case PS_BINLOG_EV_GTID:
		ps_buf_printf(b, ",\"gtid\":\"%s\",\"flags2\":%u", d->gtid, ev->u.gtid.flags2);
		break;
	case PS_BINLOG_EV_GTID_LIST:
		ps_buf_puts(b, ",\"gtids\":[");
		for (uint32_t i = 0; i < ev->u.gtid_list.count; i++) {
			ps_binlog_gtid g;

			ps_binlog_gtid_list_get(ev, i, &g);
			ps_buf_printf(b, "%s\"%" PRIu32 "-%" PRIu32 "-%" PRIu64 "\"", i ? "," : "",
			              g.domain_id, g.server_id, g.seq_no);
		}
		ps_buf_putc(b, ']');
		break;
	case PS_BINLOG_EV_QUERY: {
		static const char *const kinds[] = {"statement", "begin", "commit", "rollback"};

		ps_buf_printf(b, ",\"query\":\"%s\",\"compressed\":%s,\"db\":",
		              kinds[ev->u.query.kind], ev->u.query.compressed ? "true" : "false");
		put_json(b, ev->u.query.db, ev->u.query.db_len);
		ps_buf_puts(b, ",\"statement\":");
		put_json(b, ev->u.query.statement, ev->u.query.statement_len);
		break;
	}
	case PS_BINLOG_EV_XID:
		ps_buf_printf(b, ",\"xid\":%" PRIu64, ev->u.xid.xid);
		break;
	case PS_BINLOG_EV_ANNOTATE_ROWS:
		ps_buf_puts(b, ",\"statement\":");
		put_json(b, ev->u.annotate.statement, ev->u.annotate.statement_len);
		break;
	case PS_BINLOG_EV_ROWS:
		ps_buf_printf(b, ",\"table_id\":%" PRIu64 ",\"compressed\":%s,\"rows_flags\":%u",
		              ev->u.rows.table_id, ev->u.rows.compressed ? "true" : "false",
		              ev->u.rows.flags);
		break;
	default:
		break;
	}
	ps_buf_putc(b, '}');
	flush_line(d);
}

/* --- decoding ------------------------------------------------------------------------ */

static int do_rows(dump *d, const ps_binlog_event *ev, uint64_t pos, ps_error *err)
{
	static const char *const ops[] = {"?", "insert", "update", "delete"};
	ps_binlog_table *t = ps_binlog_tablecache_get(d->tables, ev->u.rows.table_id);
	ps_binlog_rows it;
	ps_binlog_row row;
	int rc;

	if (!t)
		return ps_error_set(err, PS_EPROTO, "rows for table id %" PRIu64 " with no table map",
		                    ev->u.rows.table_id);
	rc = ps_binlog_rows_begin(&it, ev, t, &d->scratch, err);
	while (rc == PS_OK && (rc = ps_binlog_rows_next(&it, &row, err)) == 1) {
		ps_buf *b = &d->line;

		rc = PS_OK;
		d->nrows++;
		if (d->quiet)
			continue;
		ps_buf_puts(b, "{\"file\":");
		put_json(b, d->file, strlen(d->file));
		ps_buf_printf(b, ",\"pos\":%" PRIu64 ",\"gtid\":\"%s\",\"op\":\"%s\",\"db\":", pos,
		              d->gtid, ops[it.op]);
		put_json(b, t->db, strlen(t->db));
		ps_buf_puts(b, ",\"table\":");
		put_json(b, t->name, strlen(t->name));
		ps_buf_puts(b, ",\"before\":");
		put_values(b, row.before, row.ncolumns);
		ps_buf_puts(b, ",\"after\":");
		put_values(b, row.after, row.ncolumns);
		ps_buf_putc(b, '}');
		flush_line(d);
	}
	return rc;
}

static int do_event(dump *d, const uint8_t *buf, size_t len, uint64_t pos, ps_error *err)
{
	ps_binlog_event ev;
	ps_binlog_table *t = NULL;
	bool replaced = false;
	int rc = ps_binlog_event_parse(&ev, buf, len, &d->fde, &d->scratch, err);

	if (rc != PS_OK)
		return rc;
	d->nevents++;
	switch (ev.kind) {
	case PS_BINLOG_EV_FDE:
		d->fde = ev.u.fde;
		break;
	case PS_BINLOG_EV_GTID:
		snprintf(d->gtid, sizeof(d->gtid), "%" PRIu32 "-%" PRIu32 "-%" PRIu64,
		         ev.u.gtid.domain_id, ev.header.server_id, ev.u.gtid.seq_no);
		break;
	case PS_BINLOG_EV_TABLE_MAP:
		rc = ps_binlog_tablecache_put(d->tables, &ev, &t, &replaced, err);
		if (rc != PS_OK)
			return rc;
		apply_hints(d, t);
		if (d->events && !d->quiet)
			put_table_event(d, &ev, t, pos);
		return PS_OK;
	case PS_BINLOG_EV_INCIDENT:
		return ps_error_set(err, PS_EPROTO, "incident event %u: %.*s", ev.u.incident.number,
		                    (int)ev.u.incident.message_len,
		                    ev.u.incident.message ? ev.u.incident.message : "");
	default:
		break;
	}
	if (d->events && !d->quiet)
		put_event(d, &ev, pos);
	if (ev.kind == PS_BINLOG_EV_ROWS)
		return do_rows(d, &ev, pos, err);
	return PS_OK;
}

static int do_file(dump *d, const char *path, ps_error *err)
{
	FILE *f = fopen(path, "rb");
	uint8_t magic[PS_BINLOG_MAGIC_LEN];
	ps_buf ev;
	uint64_t pos = PS_BINLOG_MAGIC_LEN;
	int rc = PS_OK;

	ps_buf_init(&ev, MAX_EVENT);
	d->file = base_name(path);
	if (!f) {
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot open %s", path);
		goto cleanup;
	}
	if (fread(magic, 1, sizeof(magic), f) != sizeof(magic) ||
	    memcmp(magic, PS_BINLOG_MAGIC, PS_BINLOG_MAGIC_LEN) != 0) {
		rc = ps_error_set(err, PS_EPROTO, "%s is not a binlog file (no magic number)", path);
		goto cleanup;
	}
	/* each file starts with its own format description */
	ps_binlog_fde_init(&d->fde, PS_BINLOG_CHECKSUM_OFF);
	for (;;) {
		ps_binlog_header h;
		size_t got;

		ps_buf_reset(&ev);
		rc = ps_buf_reserve(&ev, PS_BINLOG_HEADER_LEN);
		if (rc != PS_OK)
			goto cleanup;
		got = fread(ev.data, 1, PS_BINLOG_HEADER_LEN, f);
		if (got == 0 && feof(f))
			break;
		if (got != PS_BINLOG_HEADER_LEN) {
			rc = ps_error_set(err, PS_EPROTO, "%s:%" PRIu64 ": truncated event header",
			                  d->file, pos);
			goto cleanup;
		}
		rc = ps_binlog_header_parse(&h, (const uint8_t *)ev.data, PS_BINLOG_HEADER_LEN, err);
		if (rc == PS_OK)
			rc = ps_buf_reserve(&ev, h.event_len);
		if (rc != PS_OK)
			goto fail;
		if (fread(ev.data + PS_BINLOG_HEADER_LEN, 1, h.event_len - PS_BINLOG_HEADER_LEN, f) !=
		    h.event_len - PS_BINLOG_HEADER_LEN) {
			rc = ps_error_set(err, PS_EPROTO, "truncated event of %" PRIu32 " bytes",
			                  h.event_len);
			goto fail;
		}
		rc = do_event(d, (const uint8_t *)ev.data, h.event_len, pos, err);
		if (rc != PS_OK)
			goto fail;
		pos += h.event_len;
	}
	goto cleanup;
fail:
	if (rc == PS_ETOOBIG && err->code == PS_OK)
		ps_error_set(err, rc, "event too big");
	ps_error_add_context(err, "%s:%" PRIu64, d->file, pos);
cleanup:
	if (f)
		fclose(f);
	ps_buf_free(&ev);
	return rc;
}

int main(int argc, char **argv)
{
	dump *d = calloc(1, sizeof(dump));
	ps_error err;
	int first = 1, status = 0;

	ps_error_clear(&err);
	if (!d)
		return 1;
	for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
		if (strcmp(argv[first], "--events") == 0) {
			d->events = true;
		} else if (strcmp(argv[first], "--quiet") == 0) {
			d->quiet = true;
		} else if (strcmp(argv[first], "--type") == 0 && first + 1 < argc) {
			if (parse_hint(d, argv[++first]) != 0) {
				fprintf(stderr, "binlogdump: bad --type %s\n", argv[first]);
				free(d);
				return 2;
			}
		} else {
			break;
		}
	}
	if (first >= argc) {
		fprintf(stderr, "usage: binlogdump [--events] [--quiet] "
		        "[--type DB.TABLE.COLUMN=uuid|inet6|inet4]... FILE...\n");
		free(d);
		return 2;
	}
	d->tables = ps_binlog_tablecache_new();
	ps_binlog_scratch_init(&d->scratch, 0, 0);
	ps_buf_init(&d->line, (size_t)1 << 32);
	for (int i = first; i < argc && status == 0; i++) {
		if (do_file(d, argv[i], &err) != PS_OK) {
			char msg[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX];

			ps_error_format(&err, msg, sizeof(msg));
			fprintf(stderr, "binlogdump: %s\n", msg);
			status = 1;
		}
	}
	fflush(stdout);
	fprintf(stderr, "binlogdump: %" PRIu64 " events, %" PRIu64 " rows\n", d->nevents, d->nrows);
	ps_buf_free(&d->line);
	ps_binlog_scratch_free(&d->scratch);
	ps_binlog_tablecache_free(d->tables);
	free(d);
	return status;
}
