/*
 * my_stream.c — the binlog stream: events (my_transport.c) decoded
 * (binlog.h) into the items of penstock/change.h.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Event groups. MariaDB writes every transaction as a group that starts
 *    with a GTID event and ends with an XID (InnoDB) or a QUERY "COMMIT"
 *    (non-transactional engines); a DDL statement is a standalone group
 *    (GTID flag STANDALONE, then the QUERY alone). A group is one ps
 *    transaction. BEGIN is handed out lazily, at the group's first change of
 *    a selected table, so a group that touches none costs nothing; once a
 *    second has passed without any COMMIT handed out, an untouched group is
 *    handed out empty so that the checkpoint keeps up with the binlog.
 * 2. Positions. The commit position is "file:offset" where the event after
 *    the group starts, with the GTID state after it: resuming there starts
 *    at the next group. At BEGIN the position is the offset right after the
 *    GTID event: for any point P at a group boundary it is <= P exactly
 *    when the commit position is, which is what the core compares BEGIN
 *    positions with (snapshot points, routes, redo_until).
 * 3. Shapes, not table ids. A TABLE_MAP describes a table as it was when
 *    the row was written (binlog_row_metadata=FULL gives column names,
 *    signedness, charsets, labels and the primary key). Each selected table
 *    has a current shape: its columns as one line each ("name type
 *    c<collation>"), the marks information_schema added (uuid, inet6,
 *    inet4, json) and the ps_table changes are built with. A TABLE_MAP with
 *    the same lines reuses it; one whose columns were only added or dropped
 *    makes a new shape (the change is followed); any other difference
 *    stops the job with what changed and what to do. Shapes are the engine
 *    state kept in the checkpoint (the COMMIT after a shape changed carries
 *    them), so a change made while the job was down is judged the same way.
 *    Table ids are never kept: they mean nothing after a restart.
 * 4. Rows of one event are handed out one change per read, from the
 *    decoder's iterator; the event's bytes are kept until it is done. A
 *    huge transaction therefore streams: memory is the transport's bound
 *    plus the core's queue.
 * 5. Markers (my_live.c) are rows of penstock.marks: an insert by this job
 *    becomes a PS_OP_MESSAGE change with its prefix and content; a fence's
 *    row is dropped (its transaction's position is all the core needs).
 * 6. Stopping conditions, each with the position: an INCIDENT event (the
 *    server lost events), a rows event without its TABLE_MAP, a shape
 *    change that is not an added or dropped column, an XA transaction on a
 *    selected table, a MySQL-only event format (the decoder says "not
 *    supported yet").
 *
 * States: idle ─(GTID)─► in group ─(first selected row)─► delivered
 *         ─(XID / COMMIT / standalone QUERY)─► idle.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "source/mysql/my_internal.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/myconn.h"

#define HEARTBEAT_MS 1000
#define READ_TIMEOUT_S 30
#define TRANSPORT_LIMIT (16u << 20)
#define PROGRESS_NS 1000000000ull

/* --- positions --------------------------------------------------------------- */

static void here(const ps_source *src, char *buf, size_t len)
{
	my_pos_format(buf, len, src->file, src->next_offset, NULL);
}

static void commit_position(ps_source *src, char *buf, size_t len)
{
	char gtid[PS_POSITION_MAX];

	my_gtid_state_format(&src->gtid, gtid, sizeof(gtid));
	my_pos_format(buf, len, src->file, src->next_offset, gtid);
}

/* --- pending items ------------------------------------------------------------ */

static void push(ps_source *src, int kind, ps_change *c, char *state)
{
	ps_read_item *it = &src->pending[src->npending++];

	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->txn = src->txn;
	it->change = c;
	it->state = state;
}

static void begin_group_items(ps_source *src)
{
	if (src->group_delivered)
		return;
	src->group_delivered = true;
	push(src, PS_READ_BEGIN, NULL, NULL);
}

/* --- shapes -------------------------------------------------------------------- */

static void shape_free(my_shape *s)
{
	if (!s)
		return;
	free(s->db);
	free(s->name);
	free(s->sig);
	free(s->marks);
	if (s->table)
		ps_table_unref(s->table);
	free(s);
}

static my_shape *shape_find(ps_source *src, const char *db, const char *name)
{
	for (my_shape *s = src->shapes; s; s = s->next)
		if (strcmp(s->db, db) == 0 && strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static int signature(const ps_binlog_table *bt, ps_buf *out)
{
	int rc = PS_OK;

	for (uint32_t i = 0; rc == PS_OK && i < bt->ncolumns; i++) {
		ps_binlog_column c = bt->columns[i];
		char desc[128];

		c.ext = PS_BINLOG_EXT_NONE;
		ps_binlog_column_describe(&c, desc, sizeof(desc));
		rc = ps_buf_printf(out, "%s%s %s", i ? "\n" : "", c.name ? c.name : "?", desc);
		if (rc == PS_OK && (c.real_type == PS_MYSQL_TYPE_ENUM || c.real_type == PS_MYSQL_TYPE_SET))
			rc = ps_buf_printf(out, "/%u", (unsigned)c.nlabels);
		if (rc == PS_OK && c.collation)
			rc = ps_buf_printf(out, " c%u", (unsigned)c.collation);
		if (rc == PS_OK && c.is_key)
			rc = ps_buf_puts(out, " key");
	}
	return rc;
}

/* The mark of column name in marks ("col:uuid,..."), or NULL. */
static const char *mark_of(const char *marks, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = marks; p && *p;) {
		const char *end = strchr(p, ',');
		size_t item = end ? (size_t)(end - p) : strlen(p);
		if (item > n && strncmp(p, name, n) == 0 && p[n] == ':') {
			snprintf(buf, len, "%.*s", (int)(item - n - 1), p + n + 1);
			return buf;
		}
		p = end ? end + 1 : p + item;
	}
	return NULL;
}

static uint8_t class_of_binlog(const ps_binlog_column *c, bool json)
{
	bool binary = c->collation == PS_BINLOG_COLLATION_BINARY;

	switch (c->real_type) {
	case PS_MYSQL_TYPE_TINY: case PS_MYSQL_TYPE_SHORT: case PS_MYSQL_TYPE_INT24:
	case PS_MYSQL_TYPE_LONG: case PS_MYSQL_TYPE_LONGLONG: case PS_MYSQL_TYPE_YEAR:
		return PS_TYPE_INTEGER;
	case PS_MYSQL_TYPE_FLOAT: case PS_MYSQL_TYPE_DOUBLE:
		return PS_TYPE_FLOAT;
	case PS_MYSQL_TYPE_NEWDECIMAL: case PS_MYSQL_TYPE_DECIMAL:
		return PS_TYPE_NUMERIC;
	case PS_MYSQL_TYPE_DATE: case PS_MYSQL_TYPE_NEWDATE:
		return PS_TYPE_DATE;
	case PS_MYSQL_TYPE_TIME: case PS_MYSQL_TYPE_TIME2:
		return PS_TYPE_TIME;
	case PS_MYSQL_TYPE_DATETIME: case PS_MYSQL_TYPE_DATETIME2:
		return PS_TYPE_TIMESTAMP;
	case PS_MYSQL_TYPE_TIMESTAMP: case PS_MYSQL_TYPE_TIMESTAMP2:
		return PS_TYPE_TIMESTAMPTZ;
	case PS_MYSQL_TYPE_JSON:
		return PS_TYPE_JSON;
	case PS_MYSQL_TYPE_GEOMETRY:
		return PS_TYPE_BYTES;
	case PS_MYSQL_TYPE_STRING: case PS_MYSQL_TYPE_VARCHAR: case PS_MYSQL_TYPE_VAR_STRING:
		if (c->ext == PS_BINLOG_EXT_UUID)
			return PS_TYPE_UUID;
		if (c->ext != PS_BINLOG_EXT_NONE)
			return PS_TYPE_TEXT;
		return binary ? PS_TYPE_BYTES : PS_TYPE_TEXT;
	case PS_MYSQL_TYPE_TINY_BLOB: case PS_MYSQL_TYPE_MEDIUM_BLOB: case PS_MYSQL_TYPE_LONG_BLOB:
	case PS_MYSQL_TYPE_BLOB:
		if (json && !binary)
			return PS_TYPE_JSON;
		return binary ? PS_TYPE_BYTES : PS_TYPE_TEXT;
	default:
		return PS_TYPE_TEXT;   /* BIT, ENUM, SET */
	}
}

static const my_tableinfo *selected_info(const ps_source *src, const char *db, const char *name)
{
	for (size_t i = 0; i < src->ntables; i++)
		if (strcmp(src->tables[i].db, db) == 0 && strcmp(src->tables[i].name, name) == 0)
			return &src->tables[i];
	return NULL;
}

/* The marks information_schema gives the columns of bt that it describes
 * the same way (a BINARY(16) that is UUID, a LONGTEXT that is JSON); a
 * column it no longer describes keeps the mark of the last shape. */
static int make_marks(ps_source *src, const ps_binlog_table *bt, const my_tableinfo *info,
                      const char *old_marks, ps_buf *out, ps_error *err)
{
	int rc = PS_OK;

	for (uint32_t i = 0; rc == PS_OK && i < bt->ncolumns; i++) {
		const ps_binlog_column *c = &bt->columns[i];
		const my_colinfo *ci = info && c->name ? my_tableinfo_column(info, c->name) : NULL;
		const char *mark = NULL;
		char buf[16];
		bool fixed_binary = c->real_type == PS_MYSQL_TYPE_STRING &&
		                    c->collation == PS_BINLOG_COLLATION_BINARY;

		if (ci && ci->ext == PS_BINLOG_EXT_UUID && fixed_binary && c->max_bytes == 16)
			mark = "uuid";
		else if (ci && ci->ext == PS_BINLOG_EXT_INET6 && fixed_binary && c->max_bytes == 16)
			mark = "inet6";
		else if (ci && ci->ext == PS_BINLOG_EXT_INET4 && fixed_binary && c->max_bytes == 4)
			mark = "inet4";
		else if (ci && ci->json && c->real_type == PS_MYSQL_TYPE_LONG_BLOB)
			mark = "json";
		else if (!ci && c->name)
			mark = mark_of(old_marks, c->name, buf, sizeof(buf));
		if (ci && c->real_type == PS_MYSQL_TYPE_DATETIME && ci->precision > 0)
			rc = ps_error_set(err, PS_EINVAL, "column %s of %s.%s is a DATETIME(%d) in the "
			                  "old temporal format (written before MariaDB 10.0, or with "
			                  "mysql56_temporal_format=OFF), whose fraction the binlog does "
			                  "not carry. Fix: ALTER TABLE `%s`.`%s` FORCE; rewrites it in "
			                  "the current format", c->name, bt->db, bt->name, ci->precision,
			                  bt->db, bt->name);
		if (ci && (c->real_type == PS_MYSQL_TYPE_TIME || c->real_type == PS_MYSQL_TYPE_TIMESTAMP) &&
		    ci->precision > 0)
			rc = ps_error_set(err, PS_EINVAL, "column %s of %s.%s is a %s(%d) in the old "
			                  "temporal format, whose fraction the binlog does not carry. Fix: "
			                  "ALTER TABLE `%s`.`%s` FORCE; rewrites it in the current format",
			                  c->name, bt->db, bt->name, c->real_type == PS_MYSQL_TYPE_TIME ?
			                  "TIME" : "TIMESTAMP", ci->precision, bt->db, bt->name);
		if (rc == PS_OK && mark)
			rc = ps_buf_printf(out, "%s%s:%s", out->len ? "," : "", c->name, mark);
	}
	(void)src;
	if (rc == PS_OK && !out->data)
		rc = ps_buf_puts(out, "");
	return rc;
}

/* Sets the columns' ext marks from the shape's marks (after every put). */
static void apply_marks(const my_shape *s, ps_binlog_table *bt)
{
	for (uint32_t i = 0; i < bt->ncolumns; i++) {
		char buf[16];
		const char *m = bt->columns[i].name ? mark_of(s->marks, bt->columns[i].name, buf,
		                                              sizeof(buf)) : NULL;
		bt->columns[i].ext = !m                        ? PS_BINLOG_EXT_NONE
		                     : strcmp(m, "uuid") == 0  ? PS_BINLOG_EXT_UUID
		                     : strcmp(m, "inet6") == 0 ? PS_BINLOG_EXT_INET6
		                     : strcmp(m, "inet4") == 0 ? PS_BINLOG_EXT_INET4
		                                               : PS_BINLOG_EXT_NONE;
	}
}

static int build_table(ps_source *src, my_shape *s, const ps_binlog_table *bt, ps_error *err)
{
	ps_table *t = ps_table_new(++src->next_table_id, (int)bt->ncolumns);
	int rc;

	if (!t)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	t->engine = "mysql";
	rc = ps_table_set_names(t, bt->db, bt->name);
	for (uint32_t i = 0; rc == PS_OK && i < bt->ncolumns; i++) {
		const ps_binlog_column *c = &bt->columns[i];
		char buf[16];
		bool json = mark_of(s->marks, c->name, buf, sizeof(buf)) &&
		            strcmp(buf, "json") == 0;
		rc = ps_table_set_column(t, (int)i, c->name, c->real_type, c->is_unsigned ? 1 : -1,
		                         class_of_binlog(c, json), c->is_key);
	}
	if (rc != PS_OK) {
		ps_table_unref(t);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (s->table)
		ps_table_unref(s->table);
	s->table = t;
	if (src->nvals < 2 * (size_t)bt->ncolumns) {
		ps_value *v = realloc(src->vals, 2 * (size_t)bt->ncolumns * sizeof(ps_value));
		if (!v)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		src->vals = v;
		src->nvals = 2 * (size_t)bt->ncolumns;
	}
	return PS_OK;
}

/* Lines of a signature into a json-free list: name -> line, for the diff. */
static const char *find_line(const char *sig, const char *name, size_t *len)
{
	size_t n = strlen(name);

	for (const char *p = sig; p && *p;) {
		const char *end = strchr(p, '\n');
		size_t l = end ? (size_t)(end - p) : strlen(p);
		if (l > n && strncmp(p, name, n) == 0 && p[n] == ' ') {
			*len = l;
			return p;
		}
		p = end ? end + 1 : p + l;
	}
	return NULL;
}

/* Whether new_sig differs from old_sig only by added and dropped columns;
 * what changed goes into what. */
static bool only_added_dropped(const char *old_sig, const char *new_sig, ps_buf *what)
{
	bool ok = true;
	const char *sigs[2] = {old_sig, new_sig};

	for (int pass = 0; pass < 2; pass++) {
		const char *mine = sigs[pass], *other = sigs[1 - pass];
		for (const char *p = mine; p && *p;) {
			const char *end = strchr(p, '\n'), *sp;
			size_t l = end ? (size_t)(end - p) : strlen(p), ol = 0;
			char name[256];
			const char *o;

			sp = memchr(p, ' ', l);
			snprintf(name, sizeof(name), "%.*s", (int)(sp ? sp - p : (ptrdiff_t)l), p);
			o = find_line(other, name, &ol);
			if (!o) {
				ps_buf_printf(what, "%scolumn %s %s", what->len ? ", " : "", name,
				              pass == 0 ? "dropped" : "added");
			} else if (pass == 0 && (ol != l || memcmp(o, p, l) != 0)) {
				ps_buf_printf(what, "%scolumn %s was '%.*s' and is now '%.*s'",
				              what->len ? ", " : "", name, (int)(l - strlen(name) - 1),
				              p + strlen(name) + 1, (int)(ol - strlen(name) - 1),
				              o + strlen(name) + 1);
				ok = false;
			}
			p = end ? end + 1 : p + l;
		}
	}
	return ok;
}

/* The shape of a selected table's TABLE_MAP (design note 3); NULL when the
 * table is not selected. */
static int shape_for(ps_source *src, ps_binlog_table *bt, my_shape **out, ps_error *err)
{
	bool marks_table = strcmp(bt->db, MY_MARKS_DB) == 0 && strcmp(bt->name, MY_MARKS_TABLE) == 0;
	const my_tableinfo *info = selected_info(src, bt->db, bt->name);
	my_tableinfo *fresh = NULL;
	my_shape *s;
	ps_buf sig, marks, what;
	char pos[PS_POSITION_MAX];
	int rc;

	*out = NULL;
	if (!info && !marks_table)
		return PS_OK;
	if (!(bt->has & PS_BINLOG_HAS_NAMES))
		return ps_error_set(err, PS_EINVAL, "the TABLE_MAP of %s.%s has no column names: "
		                    "binlog_row_metadata is not FULL (it must have been when the event "
		                    "was written). Fix: SET GLOBAL binlog_row_metadata = 'FULL', and "
		                    "recover with resync for the changes written meanwhile",
		                    bt->db, bt->name);
	ps_buf_init(&sig, 1 << 20);
	ps_buf_init(&marks, 1 << 16);
	ps_buf_init(&what, 1 << 16);
	rc = signature(bt, &sig);
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "table %s.%s: column list too long", bt->db, bt->name);
		goto cleanup;
	}
	s = shape_find(src, bt->db, bt->name);
	if (s && s->table && strcmp(s->sig, sig.data) == 0) {
		apply_marks(s, bt);
		*out = s;
		goto cleanup;
	}
	if (s && strcmp(s->sig, sig.data) != 0) {
		here(src, pos, sizeof(pos));
		if (!only_added_dropped(s->sig, sig.data, &what)) {
			rc = ps_error_set(err, PS_EINVAL, "table %s.%s changed before %s in a way penstock "
			                  "cannot follow: %s. penstock follows added and dropped columns "
			                  "only. Fix: change the target table to match and recover the job "
			                  "with resync (a fresh load), or exclude the table",
			                  bt->db, bt->name, pos, what.data);
			ps_error_set_engine(err, "penstock", "shape", PS_ERRCLASS_SCHEMA);
			goto cleanup;
		}
		ps_log_info("table %s.%s: %s (binlog before %s); following the new columns",
		            bt->db, bt->name, what.data, pos);
		/* information_schema may describe the new columns (uuid, json) */
		rc = my_catalog_table(src->sql, bt->db, bt->name, &fresh, err);
		if (rc != PS_OK)
			goto cleanup;
		if (fresh)
			info = fresh;
	}
	rc = make_marks(src, bt, marks_table ? NULL : info, s ? s->marks : NULL, &marks, err);
	if (rc != PS_OK)
		goto cleanup;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || !(s->db = strdup(bt->db)) || !(s->name = strdup(bt->name))) {
			shape_free(s);
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
		s->is_marks = marks_table;
		s->insert_only = info && !info->has_pk && src->keyless == PS_KEYLESS_INSERT_ONLY;
		s->next = src->shapes;
		src->shapes = s;
	}
	free(s->sig);
	free(s->marks);
	s->sig = ps_buf_detach(&sig);
	s->marks = ps_buf_detach(&marks);
	if (!s->sig || !s->marks) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	apply_marks(s, bt);
	rc = build_table(src, s, bt, err);
	if (rc == PS_OK) {
		src->shapes_dirty = !marks_table || src->shapes_dirty;
		*out = s;
	}
cleanup:
	my_tableinfos_free(fresh, fresh ? 1 : 0);
	ps_buf_free(&sig);
	ps_buf_free(&marks);
	ps_buf_free(&what);
	return rc;
}

char *my_shapes_state(ps_source *src)
{
	json_t *root = json_object(), *arr = json_array();
	char *text = NULL;

	if (!root || !arr)
		goto cleanup;
	json_object_set_new(root, "shapes", arr);
	for (my_shape *s = src->shapes; s; s = s->next) {
		if (s->is_marks)
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "db", s->db, "table",
		                                     s->name, "columns", s->sig, "marks", s->marks));
	}
	text = json_dumps(root, JSON_COMPACT);
	arr = NULL;
cleanup:
	json_decref(root);
	json_decref(arr);
	return text;
}

static int restore_shapes(ps_source *src, const char *state, ps_error *err)
{
	json_error_t jerr;
	json_t *root, *arr, *item;
	size_t i;
	int rc = PS_OK;

	if (!state || !*state)
		return PS_OK;
	root = json_loads(state, 0, &jerr);
	if (!root)
		return ps_error_set(err, PS_ECHECKPOINT, "the checkpoint's source state is not JSON: %s",
		                    jerr.text);
	arr = json_object_get(root, "shapes");
	json_array_foreach(arr, i, item) {
		const char *db = json_string_value(json_object_get(item, "db"));
		const char *name = json_string_value(json_object_get(item, "table"));
		const char *cols = json_string_value(json_object_get(item, "columns"));
		const char *marks = json_string_value(json_object_get(item, "marks"));
		my_shape *s;

		if (!db || !name || !cols)
			continue;
		s = calloc(1, sizeof(*s));
		if (!s || !(s->db = strdup(db)) || !(s->name = strdup(name)) ||
		    !(s->sig = strdup(cols)) || !(s->marks = strdup(marks ? marks : ""))) {
			shape_free(s);
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		s->next = src->shapes;
		src->shapes = s;
	}
	json_decref(root);
	return rc;
}

/* --- start / stop ---------------------------------------------------------------- */

void my_stream_stop(ps_source *src)
{
	my_transport_stop(&src->tr);
	src->streaming = false;
	if (src->rows_active || src->rows_buf) {
		free(src->rows_buf);
		src->rows_buf = NULL;
		src->rows_active = false;
	}
	for (int i = src->pending_next; i < src->npending; i++) {
		ps_change_free(src->pending[i].change);
		free(src->pending[i].state);
	}
	src->npending = src->pending_next = 0;
	ps_binlog_tablecache_free(src->tcache);
	src->tcache = NULL;
	ps_binlog_scratch_free(&src->scratch);
	while (src->shapes) {
		my_shape *s = src->shapes;
		src->shapes = s->next;
		shape_free(s);
	}
	free(src->vals);
	src->vals = NULL;
	src->nvals = 0;
	free(src->annotate);
	src->annotate = NULL;
	src->last_shape = NULL;
	src->last_bt = NULL;
}

/* A start position whose binlog file the server no longer has: the changes
 * since are gone (design note 1 of my_source.c). */
static int check_retained(ps_source *src, const my_pos *p, ps_error *err)
{
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	char first[MY_FILE_MAX] = "";
	bool found = false;
	int rc;

	if (!p->file[0])
		return PS_OK;
	rc = my_query(src->sql, "SHOW BINARY LOGS", &r, "listing the binlog files", err);
	if (rc != PS_OK)
		return rc;
	while ((row = mysql_fetch_row(r)) != NULL) {
		if (!first[0] && row[0])
			snprintf(first, sizeof(first), "%s", row[0]);
		if (row[0] && strcmp(row[0], p->file) == 0)
			found = true;
	}
	mysql_free_result(r);
	if (found)
		return PS_OK;
	rc = ps_error_set(err, PS_ECHECKPOINT, "the binlog holding position %s:%llu (file %s) was "
	                  "purged from the server (its oldest binlog is %s), so the changes since "
	                  "are gone; recover with resync (a fresh load), and keep binlogs longer "
	                  "(binlog_expire_logs_seconds) than the job may be down", p->file,
	                  (unsigned long long)p->offset, p->file, first[0] ? first : "none");
	ps_error_set_engine(err, MY_CODE_KIND, "1236", PS_ERRCLASS_LOG_LOST);
	return rc;
}

static int checksum_alg(ps_source *src, uint8_t *alg, ps_error *err)
{
	char v[32];
	bool found;
	int rc = my_query_text(src->sql, "SELECT @@global.binlog_checksum", v, sizeof(v), &found,
	                       "reading binlog_checksum", err);

	if (rc == PS_OK)
		*alg = strcasecmp(v, "CRC32") == 0 ? PS_BINLOG_CHECKSUM_CRC32 : PS_BINLOG_CHECKSUM_OFF;
	return rc;
}

int my_stream_start(ps_source *src, const char *position, const char *redo_until,
                    const char *state, ps_error *err)
{
	my_dump_request req = {0};
	char pos_text[PS_POSITION_MAX];
	MYSQL *conn = NULL;
	uint8_t alg = PS_BINLOG_CHECKSUM_CRC32;
	int rc;

	my_stream_stop(src);
	src->snap_exported = false;
	if (!position || !*position) {
		rc = my_current_position(src, pos_text, sizeof(pos_text), err);
		if (rc != PS_OK)
			return rc;
		position = pos_text;
	}
	rc = my_pos_parse(position, &src->start_pos, err);
	if (rc == PS_OK)
		rc = restore_shapes(src, state, err);
	if (rc == PS_OK)
		rc = check_retained(src, &src->start_pos, err);
	if (rc == PS_OK)
		rc = checksum_alg(src, &alg, err);
	if (rc != PS_OK)
		return rc;
	snprintf(src->redo_until, sizeof(src->redo_until), "%s", redo_until ? redo_until : "");
	my_gtid_state_clear(&src->gtid);
	if (src->start_pos.gtid[0])
		my_gtid_state_parse(&src->gtid, src->start_pos.gtid, err);
	snprintf(src->file, sizeof(src->file), "%s", src->start_pos.file);
	src->next_offset = src->start_pos.offset;
	ps_binlog_fde_init(&src->fde, alg);
	ps_binlog_scratch_init(&src->scratch, 0, 0);
	src->tcache = ps_binlog_tablecache_new();
	if (!src->tcache)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	src->in_group = false;
	src->last_commit_ns = ps_now_ns();
	rc = my_source_connect(src, &conn, "binlog", READ_TIMEOUT_S, err);
	if (rc != PS_OK)
		return rc;
	req.file = src->start_pos.file;
	req.offset = src->start_pos.file[0] ? (uint32_t)src->start_pos.offset : 4;
	req.gtid = src->start_pos.file[0] ? NULL : src->start_pos.gtid;
	req.server_id = src->server_id;
	req.heartbeat_ms = HEARTBEAT_MS;
	rc = my_transport_start(&src->tr, conn, &req, TRANSPORT_LIMIT, src->where, err);
	if (rc == PS_OK)
		src->streaming = true;
	return rc;
}

/* MariaDB keeps nothing for a replica: nothing to release. ack is also the
 * core's keepalive while the reader waits on a full queue: a dump
 * connection that ended is reported here, so the job learns that the source
 * is gone while it applies what it read (health degraded). */
int my_stream_ack(ps_source *src, const char *position, ps_error *err)
{
	(void)position;
	return src->streaming ? my_transport_check(&src->tr, err) : PS_OK;
}

int my_stream_fence(ps_source *src, char *pos, size_t len, ps_error *err)
{
	return my_write_marker(src, MY_FENCE_PREFIX, src->job_name, pos, len, err);
}

/* --- events into items ------------------------------------------------------------ */

static void start_group(ps_source *src, const ps_binlog_event *ev)
{
	char begin[PS_POSITION_MAX];

	src->in_group = true;
	src->group_delivered = false;
	src->group_ddl = (ev->u.gtid.flags2 & PS_BINLOG_GTID_DDL) != 0;
	src->group_standalone = (ev->u.gtid.flags2 & PS_BINLOG_GTID_STANDALONE) != 0;
	src->group_xa = (ev->u.gtid.flags2 & PS_BINLOG_GTID_PREPARED_XA) != 0;
	src->group_gtid.domain_id = ev->u.gtid.domain_id;
	src->group_gtid.server_id = ev->header.server_id;
	src->group_gtid.seq_no = ev->u.gtid.seq_no;
	src->group_begin_offset = ev->header.log_pos;
	memset(&src->txn, 0, sizeof(src->txn));
	src->txn.xid = ev->u.gtid.seq_no;
	src->txn.commit_time_us = (int64_t)ev->header.timestamp * 1000000;
	my_pos_format(begin, sizeof(begin), src->file, src->group_begin_offset, NULL);
	snprintf(src->txn.position, sizeof(src->txn.position), "%s", begin);
	src->txn.reprocessing = src->redo_until[0] && my_pos_compare(begin, src->redo_until) <= 0;
}

/* A group seen without its GTID event (the stream started inside one is
 * impossible: positions are group boundaries; a server without GTIDs). */
static void start_bare_group(ps_source *src, const ps_binlog_event *ev)
{
	char begin[PS_POSITION_MAX];

	src->in_group = true;
	src->group_delivered = false;
	src->group_ddl = src->group_standalone = src->group_xa = false;
	src->group_gtid.seq_no = 0;
	src->group_begin_offset = ev->header.log_pos;
	memset(&src->txn, 0, sizeof(src->txn));
	src->txn.commit_time_us = (int64_t)ev->header.timestamp * 1000000;
	my_pos_format(begin, sizeof(begin), src->file, src->group_begin_offset, NULL);
	snprintf(src->txn.position, sizeof(src->txn.position), "%s", begin);
	src->txn.reprocessing = src->redo_until[0] && my_pos_compare(begin, src->redo_until) <= 0;
}

static int end_group(ps_source *src, uint32_t timestamp, ps_error *err)
{
	char *state = NULL;

	if (src->group_gtid.seq_no)
		my_gtid_state_set(&src->gtid, src->group_gtid.domain_id, src->group_gtid.server_id,
		                  src->group_gtid.seq_no);
	src->in_group = false;
	if (!src->group_delivered &&
	    !src->shapes_dirty && ps_now_ns() - src->last_commit_ns < PROGRESS_NS)
		return PS_OK;
	begin_group_items(src);
	commit_position(src, src->txn.position, sizeof(src->txn.position));
	if (timestamp)
		src->txn.commit_time_us = (int64_t)timestamp * 1000000;
	if (src->shapes_dirty) {
		state = my_shapes_state(src);
		if (!state)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		src->shapes_dirty = false;
	}
	push(src, PS_READ_COMMIT, NULL, state);
	src->last_commit_ns = ps_now_ns();
	return PS_OK;
}

/* TRUNCATE [TABLE] [db.]name of a selected table: a truncate change. Other
 * DDL is logged once: columns added or dropped are followed from the next
 * TABLE_MAP, other changes stop the job there (design note 3). */
static int statement(ps_source *src, const ps_binlog_event *ev, ps_error *err)
{
	const char *s = ev->u.query.statement;
	size_t n = ev->u.query.statement_len;
	char db[256], name[256], pos[PS_POSITION_MAX];
	const char *p = s, *end = s + n;
	const my_tableinfo *info;
	ps_table_def **defs = NULL;
	ps_change *c;
	int rc;

	while (p < end && (*p == ' ' || *p == '\n' || *p == '\t'))
		p++;
	if ((size_t)(end - p) < 9 || strncasecmp(p, "TRUNCATE ", 9) != 0) {
		if (!src->warned_ddl && src->group_ddl) {
			here(src, pos, sizeof(pos));
			ps_log_info("DDL in the binlog before %s (%.*s%s): penstock applies no DDL; added "
			            "and dropped columns of selected tables are followed from their next "
			            "rows, other changes to them stop the job", pos,
			            (int)(n > 120 ? 120 : n), s, n > 120 ? "..." : "");
			src->warned_ddl = true;
		}
		return PS_OK;
	}
	p += 9;
	while (p < end && *p == ' ')
		p++;
	if ((size_t)(end - p) >= 6 && strncasecmp(p, "TABLE ", 6) == 0)
		p += 6;
	snprintf(db, sizeof(db), "%.*s", (int)ev->u.query.db_len, ev->u.query.db ? ev->u.query.db : "");
	for (int part = 0; part < 2; part++) {
		char ident[256];
		size_t k = 0;
		if (p < end && *p == '`') {
			for (p++; p < end && k + 1 < sizeof(ident); p++) {
				if (*p == '`' && (p + 1 >= end || p[1] != '`'))
					break;
				if (*p == '`')
					p++;
				ident[k++] = *p;
			}
			p++;
		} else {
			while (p < end && *p != '.' && *p != ' ' && *p != ';' && k + 1 < sizeof(ident))
				ident[k++] = *p++;
		}
		ident[k] = '\0';
		if (p < end && *p == '.' && part == 0) {
			snprintf(db, sizeof(db), "%s", ident);
			p++;
			continue;
		}
		snprintf(name, sizeof(name), "%s", ident);
		break;
	}
	info = selected_info(src, db, name);
	if (!info)
		return PS_OK;
	rc = my_describe_infos(info, 1, &defs, err);
	if (rc != PS_OK)
		return rc;
	c = ps_change_new(PS_OP_TRUNCATE, defs[0]->table, NULL, NULL, false, ev->header.log_pos);
	ps_table_def_free(defs[0]);
	free(defs);
	if (!c)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	begin_group_items(src);
	push(src, PS_READ_CHANGE, c, NULL);
	return PS_OK;
}

/* Shapes of tables no longer selected go: a table added again later starts
 * from its TABLE_MAP then. */
static void drop_unselected_shapes(ps_source *src)
{
	my_shape **pp = &src->shapes;

	while (*pp) {
		my_shape *s = *pp;
		if (!s->is_marks && !selected_info(src, s->db, s->name)) {
			*pp = s->next;
			shape_free(s);
			src->shapes_dirty = true;
		} else {
			pp = &s->next;
		}
	}
}

static int marker_rows(ps_source *src, ps_error *err)
{
	const ps_binlog_table *bt = src->rows_it.table;
	int ijob = ps_binlog_table_column_index(bt, "job");
	int iprefix = ps_binlog_table_column_index(bt, "prefix");
	int icontent = ps_binlog_table_column_index(bt, "content");
	ps_binlog_row row;
	int rc;

	while ((rc = ps_binlog_rows_next(&src->rows_it, &row, err)) == 1) {
		const ps_binlog_value *v = row.after;
		ps_change *c;

		if (src->rows_it.op != PS_BINLOG_INSERT || ijob < 0 || iprefix < 0 || icontent < 0 ||
		    v[ijob].kind != PS_BINLOG_TEXT || strcmp(v[ijob].text, src->job_name) != 0 ||
		    v[iprefix].kind != PS_BINLOG_TEXT)
			continue;
		if (strcmp(v[iprefix].text, MY_FENCE_PREFIX) == 0) {
			begin_group_items(src);   /* the fence: its commit position is all it says */
			continue;
		}
		if (src->next_mark && strcmp(v[iprefix].text, PS_MARK_PREFIX) == 0 &&
		    v[icontent].kind == PS_BINLOG_TEXT && strcmp(v[icontent].text, src->next_mark) == 0) {
			/* retable's marker: its table set is in force from here (my_live.c) */
			my_tableinfos_free(src->tables, src->ntables);
			src->tables = src->next_tables;
			src->ntables = src->nnext_tables;
			src->next_tables = NULL;
			src->nnext_tables = 0;
			free(src->next_mark);
			src->next_mark = NULL;
			src->last_bt = NULL;
			src->last_shape = NULL;
			drop_unselected_shapes(src);
		}
		c = ps_change_new_message(true, v[iprefix].text,
		                          v[icontent].kind == PS_BINLOG_TEXT ? v[icontent].text : "",
		                          v[icontent].kind == PS_BINLOG_TEXT ? v[icontent].len : 0,
		                          src->rows_ev.header.log_pos);
		if (!c)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		begin_group_items(src);
		push(src, PS_READ_CHANGE, c, NULL);
		if (src->npending >= 3)
			return 1;   /* come back for the rest */
	}
	return rc;
}

/* The Debezium MySQL connector's source fields of a row change: server id,
 * GTID, binlog file, the rows event's offset, the row's index in it, and
 * with include_query the statement (ANNOTATE_ROWS). */
static char *source_info(ps_source *src, uint64_t row)
{
	ps_buf b;
	char gtid[64];

	ps_buf_init(&b, 1 << 20);
	snprintf(gtid, sizeof(gtid), "%u-%u-%llu", src->group_gtid.domain_id,
	         src->group_gtid.server_id, (unsigned long long)src->group_gtid.seq_no);
	ps_buf_printf(&b, "\"server_id\":%u,\"gtid\":", (unsigned)src->rows_ev.header.server_id);
	if (src->group_gtid.seq_no)
		ps_json_append_string(&b, gtid, strlen(gtid));
	else
		ps_buf_puts(&b, "null");
	ps_buf_puts(&b, ",\"file\":");
	ps_json_append_string(&b, src->file, strlen(src->file));
	ps_buf_printf(&b, ",\"pos\":%llu,\"row\":%llu", (unsigned long long)src->rows_event_pos,
	              (unsigned long long)row);
	if (src->include_query && src->annotate) {
		ps_buf_puts(&b, ",\"query\":");
		ps_json_append_string(&b, src->annotate, strlen(src->annotate));
	}
	return ps_buf_detach(&b);
}

/* The next change of the rows event being handed out: 1 with an item
 * pushed, 0 when the event is done. */
static int next_row(ps_source *src, ps_error *err)
{
	ps_binlog_row row;
	ps_table *t = src->rows_shape->table;
	ps_value *nv = src->vals, *ov = src->vals + t->ncolumns;
	ps_change *c;
	int rc, op;

	if (src->rows_shape->is_marks)
		return marker_rows(src, err);
	rc = ps_binlog_rows_next(&src->rows_it, &row, err);
	if (rc <= 0)
		return rc;
	if (src->rows_shape->insert_only && src->rows_it.op != PS_BINLOG_INSERT)
		return 1;   /* tables.keyless insert_only: nothing to find the row by */
	for (int pass = 0; pass < 2; pass++) {
		const ps_binlog_value *in = pass == 0 ? row.after : row.before;
		ps_value *out = pass == 0 ? nv : ov;
		if (!in)
			continue;
		for (int i = 0; i < t->ncolumns; i++) {
			out[i].kind = in[i].kind == PS_BINLOG_TEXT   ? PS_VALUE_TEXT
			              : in[i].kind == PS_BINLOG_NULL ? PS_VALUE_NULL
			              : pass == 0                    ? PS_VALUE_UNCHANGED
			                                             : PS_VALUE_NULL;
			out[i].len = out[i].kind == PS_VALUE_TEXT ? in[i].len : 0;
			out[i].data = out[i].kind == PS_VALUE_TEXT ? in[i].text : NULL;
			if (src->zero_dates_null && (in[i].flags & PS_BINLOG_VF_ZERO_DATE)) {
				out[i].kind = PS_VALUE_NULL;
				out[i].len = 0;
				out[i].data = NULL;
			}
		}
	}
	op = src->rows_it.op == PS_BINLOG_INSERT ? PS_OP_INSERT
	     : src->rows_it.op == PS_BINLOG_UPDATE ? PS_OP_UPDATE : PS_OP_DELETE;
	c = ps_change_new((uint8_t)op, t, row.after ? nv : NULL, row.before ? ov : NULL, false,
	                  src->rows_ev.header.log_pos);
	if (!c)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_change_set_source_info(c, source_info(src, src->rows_it.nrows - 1));
	begin_group_items(src);
	push(src, PS_READ_CHANGE, c, NULL);
	return 1;
}

static int rows_event(ps_source *src, uint8_t *buf, ps_error *err)
{
	ps_binlog_table *bt = ps_binlog_tablecache_get(src->tcache, src->rows_ev.u.rows.table_id);
	my_shape *s;
	char pos[PS_POSITION_MAX];
	int rc;

	if (!bt) {
		free(buf);
		here(src, pos, sizeof(pos));
		return ps_error_set(err, PS_EPROTO, "a rows event for table id %llu before %s has no "
		                    "TABLE_MAP: the stream did not start at a transaction boundary",
		                    (unsigned long long)src->rows_ev.u.rows.table_id, pos);
	}
	s = bt == src->last_bt ? src->last_shape : NULL;
	if (bt != src->last_bt) {
		s = shape_find(src, bt->db, bt->name);
		if (s && !s->table)
			s = NULL;
		src->last_bt = bt;
		src->last_shape = s;
	}
	if (!s) {
		free(buf);
		return PS_OK;
	}
	if (src->group_xa) {
		free(buf);
		here(src, pos, sizeof(pos));
		return ps_error_set(err, PS_EINVAL, "an XA transaction changes %s.%s (before %s): XA "
		                    "transactions are not supported yet. Fix: exclude the table, or "
		                    "commit without XA", bt->db, bt->name, pos);
	}
	if (!src->in_group)
		start_bare_group(src, &src->rows_ev);
	rc = ps_binlog_rows_begin(&src->rows_it, &src->rows_ev, bt, &src->scratch, err);
	if (rc != PS_OK) {
		free(buf);
		return rc;
	}
	src->rows_buf = buf;
	src->rows_shape = s;
	src->rows_active = true;
	return PS_OK;
}

static int table_map_event(ps_source *src, const ps_binlog_event *ev, ps_error *err)
{
	ps_binlog_table *bt = NULL;
	my_shape *s;
	int rc = ps_binlog_tablecache_put(src->tcache, ev, &bt, NULL, err);

	if (rc != PS_OK)
		return rc;
	src->last_bt = NULL;   /* the cache may have replaced the table */
	rc = shape_for(src, bt, &s, err);
	if (rc == PS_OK && s)
		apply_marks(s, bt);
	return rc;
}

/* One event: items may be pushed; the buffer is freed or kept (rows). */
static int handle_event(ps_source *src, uint8_t *buf, size_t len, ps_error *err)
{
	ps_binlog_event ev;
	char pos[PS_POSITION_MAX];
	int rc;

	rc = ps_binlog_event_parse(&ev, buf, len, &src->fde, &src->scratch, err);
	if (rc != PS_OK) {
		free(buf);
		here(src, pos, sizeof(pos));
		return ps_error_add_context(err, "binlog at %s", pos);
	}
	if (ev.header.log_pos && !(ev.header.flags & PS_BINLOG_F_ARTIFICIAL) &&
	    ev.kind != PS_BINLOG_EV_ROTATE)
		src->next_offset = ev.header.log_pos;
	switch (ev.kind) {
	case PS_BINLOG_EV_FDE:
		src->fde = ev.u.fde;
		break;
	case PS_BINLOG_EV_ROTATE:
		snprintf(src->file, sizeof(src->file), "%.*s", (int)ev.u.rotate.file_len,
		         ev.u.rotate.file);
		src->next_offset = ev.u.rotate.position;
		break;
	case PS_BINLOG_EV_GTID:
		start_group(src, &ev);
		break;
	case PS_BINLOG_EV_GTID_LIST:
		if (src->gtid.n == 0) {
			for (uint32_t i = 0; i < ev.u.gtid_list.count && i < PS_BINLOG_GTID_LIST_MAX; i++) {
				ps_binlog_gtid g;
				ps_binlog_gtid_list_get(&ev, i, &g);
				my_gtid_state_set(&src->gtid, g.domain_id, g.server_id, g.seq_no);
			}
		}
		break;
	case PS_BINLOG_EV_QUERY:
		if (ev.u.query.kind == PS_BINLOG_Q_BEGIN) {
			if (!src->in_group)
				start_bare_group(src, &ev);
		} else if (ev.u.query.kind == PS_BINLOG_Q_COMMIT ||
		           ev.u.query.kind == PS_BINLOG_Q_ROLLBACK) {
			rc = end_group(src, ev.header.timestamp, err);
		} else {
			bool standalone = !src->in_group || src->group_standalone;
			if (!src->in_group)
				start_bare_group(src, &ev);
			rc = statement(src, &ev, err);
			if (rc == PS_OK && standalone)
				rc = end_group(src, ev.header.timestamp, err);
		}
		break;
	case PS_BINLOG_EV_XID:
		rc = end_group(src, ev.header.timestamp, err);
		break;
	case PS_BINLOG_EV_XA_PREPARE:
		src->in_group = false;   /* its rows were refused if they were ours */
		break;
	case PS_BINLOG_EV_TABLE_MAP:
		rc = table_map_event(src, &ev, err);
		break;
	case PS_BINLOG_EV_ANNOTATE_ROWS:
		if (src->include_query) {
			free(src->annotate);
			src->annotate = strndup(ev.u.annotate.statement, ev.u.annotate.statement_len);
		}
		break;
	case PS_BINLOG_EV_ROWS:
		src->rows_ev = ev;
		src->rows_event_pos = ev.header.log_pos >= ev.header.event_len
		                      ? ev.header.log_pos - ev.header.event_len : 0;
		return rows_event(src, buf, err);   /* keeps or frees buf */
	case PS_BINLOG_EV_HEARTBEAT:
		my_pos_format(src->server_end, sizeof(src->server_end), src->file, ev.header.log_pos,
		              NULL);
		break;
	case PS_BINLOG_EV_INCIDENT:
		here(src, pos, sizeof(pos));
		rc = ps_error_set(err, PS_EPROTO, "the server wrote an INCIDENT event before %s: it "
		                  "lost events there (%.*s), so the binlog no longer holds every "
		                  "change; recover with resync", pos, (int)ev.u.incident.message_len,
		                  ev.u.incident.message ? ev.u.incident.message : "");
		ps_error_set_engine(err, "penstock", "incident", PS_ERRCLASS_LOG_LOST);
		break;
	default:
		break;
	}
	free(buf);
	return rc;
}

int my_stream_read(ps_source *src, ps_read_item *item, int timeout_ms, ps_error *err)
{
	uint64_t deadline = ps_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
	int rc;

	item->kind = PS_READ_NONE;
	if (!src->streaming)
		return ps_error_set(err, PS_EINVAL, "read before start");
	for (;;) {
		uint8_t *ev = NULL;
		size_t len = 0;
		uint64_t now;

		if (src->pending_next < src->npending) {
			*item = src->pending[src->pending_next++];
			if (src->pending_next == src->npending)
				src->npending = src->pending_next = 0;
			return PS_OK;
		}
		src->npending = src->pending_next = 0;
		if (src->rows_active) {
			rc = next_row(src, err);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				src->rows_active = false;
				free(src->rows_buf);
				src->rows_buf = NULL;
			}
			continue;
		}
		now = ps_now_ns();
		rc = my_transport_next(&src->tr, &ev, &len, now >= deadline ? 0
		                       : (int)((deadline - now) / 1000000ull), err);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return PS_OK;   /* nothing within the timeout */
		rc = handle_event(src, ev, len, err);
		if (rc != PS_OK)
			return rc;
	}
}
