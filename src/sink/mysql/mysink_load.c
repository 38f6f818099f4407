/*
 * mysink_load.c — rows of the initial load (op r) into a MySQL / MariaDB
 * target: LOAD DATA LOCAL INFILE fed from memory, or bulk INSERTs.
 *
 * NOTES ON THE DESIGN
 *
 *  1. Rows of one table definition gather, as LOAD DATA text, until about
 *     MYS_LOAD_BYTES (or MYS_LOAD_ROWS rows) are there or anything else
 *     happens on the connection (another table, a checkpoint, the commit:
 *     mysink.c calls mys_settle). Then one LOAD DATA LOCAL INFILE statement
 *     runs in the open target transaction and the client library pulls the
 *     text from memory through mysql_set_local_infile_handler: no file, and
 *     memory bounded by the gathered text.
 *  2. With LOCAL, the server turns what would be errors into warnings and
 *     loads a changed value (a string cut to the column's length, NULL
 *     turned into 0 or '', a number clamped, a duplicate key skipped).
 *     So every warning, and every note, fails the load: the error names
 *     the table, the server's words (which name the column) and the row,
 *     with the values of its key columns read back from the gathered text;
 *     the sink fails and the transaction rolls back, so nothing of the
 *     unit is kept. The rows the server says it took must also be the
 *     rows sent.
 *  3. Format: fields separated by tab, rows ended by newline, NULL as \N;
 *     in a value, backslash, tab, newline, carriage return and NUL are
 *     escaped (\\ \t \n \r \0), CHARACTER SET utf8mb4 (the values' own).
 *     Binary columns get the value's hex (canonical bytes are "\x" and hex)
 *     into a variable and SET col = UNHEX(@v): no byte of a BLOB goes
 *     through a character set. BIT columns go through CAST(@v AS UNSIGNED).
 *  4. Where LOCAL is off on the server (mysink.c probes @@local_infile; the
 *     precheck target.local_infile warns), the rows gather as copies and go
 *     in as bulk INSERTs (mysink_apply.c), MYS_BULK_ROWS at a time, under
 *     the same strict sql_mode: a value that does not fit is an error.
 *  5. A LOAD DATA statement runs on a sender thread while the next batch
 *     gathers (reading the source and formatting rows overlap with the
 *     server's work, as in a shell pipe). While it runs, the sender owns
 *     the connection: every other use of it comes after mys_settle, which
 *     ends with mys_load_end, which joins the sender; close and failures
 *     join it too (mys_load_abandon). Its error surfaces at the next send
 *     or at the settle, always before the commit, so a failed statement
 *     still rolls the whole transaction back. Memory: two batches of
 *     MYS_LOAD_BYTES (a single bigger row makes its batch bigger).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/mysql/mysink.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/myconn.h"

int ps__mys_refuse_value(ps_error *err, const mys_table *t, const ps_change *c, int col,
                         const ps_value *v, const char *why);

#define ESCAPE_SLICE ((size_t)16 << 10)

size_t ps__mys_load_escape(char *dst, const char *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		switch (c) {
		case '\\': dst[o++] = '\\'; dst[o++] = '\\'; break;
		case '\t': dst[o++] = '\\'; dst[o++] = 't'; break;
		case '\n': dst[o++] = '\\'; dst[o++] = 'n'; break;
		case '\r': dst[o++] = '\\'; dst[o++] = 'r'; break;
		case '\0': dst[o++] = '\\'; dst[o++] = '0'; break;
		default: dst[o++] = c; break;
		}
	}
	return o;
}

void mys_load_init(ps_sink *s)
{
	mys_load *l = &s->load;

	for (int i = 0; i < 2; i++)
		ps_buf_init(&l->batch[i].text, MYS_LOAD_TEXT_MAX);
	ps_buf_init(&l->stmt, MYS_SQL_LIMIT);
	l->fill = &l->batch[0];
}

static void batch_reset(mys_batch *b)
{
	ps_buf_reset(&b->text);
	b->nrows = 0;
	b->pos = 0;
}

void mys_load_free(ps_sink *s)
{
	mys_load *l = &s->load;

	mys_load_abandon(s);
	for (size_t i = 0; l->held && i < l->nheld; i++)
		ps_change_free(l->held[i]);
	free(l->held);
	for (int i = 0; i < 2; i++) {
		free(l->batch[i].row_at);
		ps_buf_free(&l->batch[i].text);
	}
	ps_buf_free(&l->stmt);
	memset(l, 0, sizeof(*l));
}

/* ==== the infile handler (NOTES 1) ======================================== */

static int infile_init(void **ptr, const char *filename, void *userdata)
{
	(void)filename;
	*ptr = userdata;
	return 0;
}

static int infile_read(void *ptr, char *buf, unsigned int len)
{
	mys_batch *b = ptr;
	size_t n = b->text.len - b->pos;

	if (n > len)
		n = len;
	memcpy(buf, b->text.data + b->pos, n);
	b->pos += n;
	return (int)n;
}

static void infile_end(void *ptr)
{
	(void)ptr;
}

static int infile_error(void *ptr, char *buf, unsigned int len)
{
	(void)ptr;
	snprintf(buf, len, "penstock: the rows could not be handed over");
	return 2000;
}

/* ==== gathering rows ======================================================= */

static int append_escaped(mys_batch *b, const char *data, size_t len, ps_error *err)
{
	while (len > 0) {
		size_t n = len < ESCAPE_SLICE ? len : ESCAPE_SLICE;
		int rc = ps_buf_reserve(&b->text, 2 * n);

		if (rc != PS_OK)
			return ps_error_set(err, rc, "LOAD DATA buffer full");
		b->text.len += ps__mys_load_escape(b->text.data + b->text.len, data, n);
		b->text.data[b->text.len] = '\0';
		data += n;
		len -= n;
	}
	return PS_OK;
}

/* One value of a row as LOAD DATA text (NOTES 3). */
static int put_value(mys_batch *b, mys_table *t, const ps_change *c, int i, ps_error *err)
{
	const ps_value *v = &c->new_values[i];
	const mys_col *col = &t->col[i];
	char scratch[40];
	const char *out, *why;
	size_t out_len;

	if (v->kind == PS_VALUE_NULL)
		return ps_buf_append(&b->text, "\\N", 2) == PS_OK ? PS_OK
		       : ps_error_set(err, PS_ETOOBIG, "LOAD DATA buffer full");
	if (v->kind != PS_VALUE_TEXT)
		return ps_error_set(err, PS_EINVAL, "column %s of a row of the initial load of %s.%s "
		                    "has no value (unchanged)", t->src->columns[i].name, t->db, t->name);
	if (col->conv == MYS_CONV_BYTES) {
		/* "\x" and hex: the hex goes to UNHEX(@v) as it is, once checked
		 * (UNHEX would make NULL of anything else) */
		bool hex = v->len >= 2 && v->data[0] == '\\' && v->data[1] == 'x' && v->len % 2 == 0;

		for (size_t k = 2; hex && k < v->len; k++)
			hex = strchr("0123456789abcdefABCDEF", v->data[k]) != NULL;
		if (!hex)
			return ps__mys_refuse_value(err, t, c, i, v, "is not bytes in hex (\\x...)");
		return append_escaped(b, v->data + 2, v->len - 2, err);
	}
	if (col->conv == MYS_CONV_TEXT)
		return append_escaped(b, v->data, v->len, err);
	if (ps__mys_convert(col, v->data, v->len, scratch, &out, &out_len, &why) != PS_OK)
		return ps__mys_refuse_value(err, t, c, i, v, why);
	return append_escaped(b, out, out_len, err);
}

static int send_gathered(ps_sink *s, ps_error *err);

int mys_load_row(ps_sink *s, mys_table *t, const ps_change *c, ps_error *err)
{
	mys_load *l = &s->load;
	mys_batch *b = l->fill;
	size_t mark;
	int rc = PS_OK;

	if (!c->new_values)
		return ps_error_set(err, PS_EINVAL, "a row of the initial load without values");
	if (l->table && l->src != c->table)          /* mysink.c settles first; never mix */
		return ps_error_set(err, PS_EINVAL, "a row of %s.%s while another load runs",
		                    c->table->schema, c->table->name);
	if (!l->table) {
		l->table = t;
		l->src = c->table;
		l->rows_loaded = 0;
	}
	if (!s->local_infile) {                      /* NOTES 4 */
		ps_change *copy;

		if (l->nheld == l->held_cap) {
			size_t cap = l->held_cap ? 2 * l->held_cap : 1024;
			ps_change **h = realloc(l->held, cap * sizeof(*h));

			if (!h)
				return ps_error_set(err, PS_ENOMEM, "out of memory");
			l->held = h;
			l->held_cap = cap;
		}
		copy = ps_change_new(PS_OP_INSERT, c->table, c->new_values, NULL, false, 0);
		if (!copy)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		l->held[l->nheld++] = copy;
		l->held_bytes += copy->mem_size;
		if (l->nheld >= MYS_BULK_ROWS || l->held_bytes >= s->bulk_bytes)
			rc = send_gathered(s, err);
		return rc;
	}
	if (b->nrows == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 4096;
		size_t *at = realloc(b->row_at, cap * sizeof(*at));

		if (!at)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		b->row_at = at;
		b->cap = cap;
	}
	mark = b->text.len;
	b->row_at[b->nrows] = mark;
	for (int i = 0; rc == PS_OK && i < t->ncols; i++) {
		if (i > 0 && ps_buf_putc(&b->text, '\t') != PS_OK)
			rc = ps_error_set(err, PS_ETOOBIG, "LOAD DATA buffer full");
		if (rc == PS_OK)
			rc = put_value(b, t, c, i, err);
	}
	if (rc == PS_OK && ps_buf_putc(&b->text, '\n') != PS_OK)
		rc = ps_error_set(err, PS_ETOOBIG, "LOAD DATA buffer full");
	if (rc != PS_OK) {
		b->text.len = mark;                      /* no half row stays */
		if (b->text.data)
			b->text.data[mark] = '\0';
		return rc;
	}
	b->nrows++;
	if (b->text.len >= MYS_LOAD_BYTES || b->nrows >= MYS_LOAD_ROWS)
		rc = send_gathered(s, err);
	return rc;
}

/* ==== what the server says (NOTES 2) ====================================== */

/* Field f of row r of b, unescaped and cut for a message, into out. */
static void field_of(const mys_batch *b, size_t r, int f, char *out, size_t len)
{
	const char *p = b->text.data + b->row_at[r];
	const char *end = r + 1 < b->nrows ? b->text.data + b->row_at[r + 1] : b->text.data + b->text.len;
	size_t o = 0;

	for (int i = 0; i < f && p < end; p++)
		if (*p == '\\' && p + 1 < end)
			p++;
		else if (*p == '\t')
			i++;
	for (; p < end && *p != '\t' && *p != '\n' && o + 4 < len; p++) {
		if (*p == '\\' && p + 1 < end) {
			p++;
			if (*p == 'N' && o == 0 && (p + 1 == end || p[1] == '\t' || p[1] == '\n')) {
				snprintf(out, len, "NULL");
				return;
			}
		}
		out[o++] = *p;
	}
	if (o + 4 >= len && p < end && *p != '\t' && *p != '\n') {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* "id=2, code=x" of row r of b: the source's key columns, else the first
 * three. */
static void row_key(const ps_table *src, const mys_batch *b, size_t r, char *buf, size_t len)
{
	size_t used = 0;
	int shown = 0;
	bool keyed = false;
	char v[80];

	buf[0] = '\0';
	for (int i = 0; i < src->ncolumns; i++)
		keyed |= src->columns[i].is_key;
	for (int i = 0; i < src->ncolumns && used < len; i++) {
		if (keyed ? !src->columns[i].is_key : shown >= 3)
			continue;
		field_of(b, r, i, v, sizeof(v));
		used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", shown ? ", " : "",
		                         src->columns[i].name, v);
		shown++;
	}
}

/* Whether a warning is MariaDB's ENUM error value going in as it is: 1265
 * on an ENUM without '' among its labels, for a row whose field is ''
 * (mysink_apply.c NOTES 5). */
static bool enum_error_value(const mys_table *t, const mys_batch *b, const char *code,
                             const char *msg)
{
	const char *q = strstr(msg, "column '"), *r = strstr(msg, " at row ");
	long at = r ? strtol(r + 8, NULL, 10) : 0;
	char v[8];

	if (!q || !code || strcmp(code, "1265") != 0 || at < 1 || (size_t)at > b->nrows)
		return false;
	for (int i = 0; i < t->ncols; i++) {
		size_t n = strlen(t->src->columns[i].name);

		if (!t->col[i].enum_error || strncasecmp(q + 8, t->src->columns[i].name, n) != 0 ||
		    q[8 + n] != '\'')
			continue;
		field_of(b, (size_t)at - 1, i, v, sizeof(v));
		return v[0] == '\0';
	}
	return false;
}

/* NOTES 2: any warning fails the load, naming table, column and row. */
static int check_warnings(MYSQL *conn, const mys_table *t, const ps_table *src,
                          const mys_batch *b, const char *what, ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	char first[512] = "", key[400] = "", code[16] = "";
	unsigned int count = mysql_warning_count(conn), seen = 0, tolerated = 0;
	unsigned long long took = mysql_affected_rows(conn);
	long at = 0;
	int rc;

	if (count == 0 && took == (unsigned long long)b->nrows)
		return PS_OK;
	if (count == 0)
		return ps_error_set(err, PS_ESERVER, "%s: the server took %llu of %zu rows", what,
		                    took, b->nrows);
	rc = my_query(conn, "SHOW WARNINGS", &res, "reading the load's warnings", err);
	if (rc != PS_OK)
		return rc;
	while ((row = mysql_fetch_row(res)) != NULL) {
		seen++;
		if (enum_error_value(t, b, row[1], row[2] ? row[2] : "")) {
			tolerated++;
			continue;
		}
		if (!first[0] && row[2]) {
			const char *r = strstr(row[2], " at row ");

			snprintf(first, sizeof(first), "%s %s: %s", row[0] ? row[0] : "Warning",
			         row[1] ? row[1] : "?", row[2]);
			snprintf(code, sizeof(code), "%s", row[1] ? row[1] : "");
			at = r ? strtol(r + 8, NULL, 10) : 0;
		}
	}
	mysql_free_result(res);
	if (tolerated == count && seen == count && took == (unsigned long long)b->nrows)
		return PS_OK;
	if (at >= 1 && (size_t)at <= b->nrows)
		row_key(src, b, (size_t)at - 1, key, sizeof(key));
	ps_error_set(err, PS_ESERVER, "%s: the server would have loaded a changed value (LOAD "
	             "DATA LOCAL turns errors into warnings, and every warning fails the load): "
	             "%s%s%s%s; %u warning(s) in all; nothing of this load is kept", what,
	             first[0] ? first : "more warnings than the server lists", key[0]
	             ? " (the row with " : "", key, key[0] ? ")" : "", count);
	ps_error_set_engine(err, MY_CODE_KIND, code, my_errclass_of((unsigned)ps_leading_long(code)));
	return PS_ESERVER;
}

/* ==== sending (NOTES 1, 5) ================================================= */

/* The column list of LOAD DATA and its SET clause (NOTES 3). */
static int load_statement(const mys_table *t, ps_buf *b)
{
	bool any_set = false;
	int rc;

	rc = ps_buf_printf(b, "LOAD DATA LOCAL INFILE 'penstock' INTO TABLE %s CHARACTER SET "
	                   "utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED "
	                   "BY '\\n' (", t->qname);
	for (int i = 0; rc == PS_OK && i < t->ncols; i++) {
		bool via = t->col[i].conv == MYS_CONV_BYTES || t->col[i].conv == MYS_CONV_BIT;

		if (i)
			rc = ps_buf_puts(b, ", ");
		if (rc == PS_OK)
			rc = via ? ps_buf_printf(b, "@v%d", i) : ps_buf_puts(b, t->qcol[i]);
	}
	if (rc == PS_OK)
		rc = ps_buf_putc(b, ')');
	for (int i = 0; rc == PS_OK && i < t->ncols; i++) {
		if (t->col[i].conv != MYS_CONV_BYTES && t->col[i].conv != MYS_CONV_BIT)
			continue;
		rc = ps_buf_printf(b, "%s%s = %s(@v%d%s", any_set ? ", " : " SET ", t->qcol[i],
		                   t->col[i].conv == MYS_CONV_BYTES ? "UNHEX" : "CAST", i,
		                   t->col[i].conv == MYS_CONV_BYTES ? ")" : " AS UNSIGNED)");
		any_set = true;
	}
	return rc;
}

/* One LOAD DATA statement of batch l->fly, on whichever thread calls it. */
static int run_statement(ps_sink *s, ps_error *err)
{
	mys_load *l = &s->load;
	const mys_table *t = l->fly_table;
	mys_batch *b = l->fly;
	char what[400];
	uint64_t t0 = ps_now_ns();
	int rc;

	snprintf(what, sizeof(what), "loading rows into %s.%s", t->db, t->name);
	ps_buf_reset(&l->stmt);
	if (load_statement(t, &l->stmt) != PS_OK)
		return ps_error_set(err, PS_ETOOBIG, "LOAD DATA statement for %s.%s too long", t->db,
		                    t->name);
	b->pos = 0;
	mysql_set_local_infile_handler(s->conn, infile_init, infile_read, infile_end, infile_error,
	                               b);
	if (mysql_real_query(s->conn, l->stmt.data, (unsigned long)l->stmt.len) != 0)
		rc = my_error(err, s->conn, what);
	else
		rc = check_warnings(s->conn, t, l->fly_src, b, what, err);
	mysql_set_local_infile_default(s->conn);
	ps_log_debug("sink mysql: LOAD DATA of %zu rows (%zu bytes) into %s.%s: %.1f ms", b->nrows,
	             b->text.len, t->db, t->name, (double)(ps_now_ns() - t0) / 1e6);
	return rc;
}

static void *sender_main(void *arg)
{
	ps_sink *s = arg;

	mysql_thread_init();
	ps_error_clear(&s->load.fly_err);
	s->load.fly_rc = run_statement(s, &s->load.fly_err);
	mysql_thread_end();
	return NULL;
}

/* Ends the statement in flight, if any: its result into err; the batch is
 * free again. */
static int land(ps_sink *s, ps_error *err)
{
	mys_load *l = &s->load;
	int rc;

	if (!l->fly)
		return PS_OK;
	if (l->sender_running) {
		pthread_join(l->sender, NULL);
		l->sender_running = false;
	}
	rc = l->fly_rc;
	if (rc == PS_OK)
		l->rows_loaded += l->fly->nrows;
	else
		*err = l->fly_err;
	batch_reset(l->fly);
	l->fly = NULL;
	return rc;
}

/* Sends the gathered batch: waits for the statement before it, then hands
 * this one to a sender thread (wait: runs it here and returns its result). */
static int launch(ps_sink *s, bool wait, ps_error *err)
{
	mys_load *l = &s->load;
	int rc = land(s, err);

	if (rc != PS_OK || l->fill->nrows == 0)
		return rc;
	l->fly = l->fill;
	l->fly_table = l->table;
	l->fly_src = l->src;
	l->fill = l->fly == &l->batch[0] ? &l->batch[1] : &l->batch[0];
	if (!wait && pthread_create(&l->sender, NULL, sender_main, s) == 0) {
		l->sender_running = true;
		return PS_OK;
	}
	l->fly_rc = run_statement(s, &l->fly_err);
	return land(s, err);
}

static int send_gathered(ps_sink *s, ps_error *err)
{
	mys_load *l = &s->load;
	int rc;

	if (s->local_infile)
		return launch(s, false, err);
	if (l->nheld == 0)
		return PS_OK;
	rc = mys_apply_inserts(s, (const ps_change *const *)l->held, l->nheld, err);
	for (size_t i = 0; i < l->nheld; i++)
		ps_change_free(l->held[i]);
	if (rc == PS_OK)
		l->rows_loaded += l->nheld;
	l->nheld = 0;
	l->held_bytes = 0;
	if (rc != PS_OK && l->table)
		ps_error_add_context(err, "loading rows into %s.%s", l->table->db, l->table->name);
	return rc;
}

void mys_load_abandon(ps_sink *s)
{
	ps_error ignored;

	ps_error_clear(&ignored);
	(void)land(s, &ignored);
	batch_reset(s->load.fill ? s->load.fill : &s->load.batch[0]);
}

int mys_load_end(ps_sink *s, ps_error *err)
{
	mys_load *l = &s->load;
	int rc;

	if (!l->table)
		return PS_OK;
	rc = s->local_infile ? launch(s, true, err) : send_gathered(s, err);
	if (rc != PS_OK)
		mys_load_abandon(s);
	l->table = NULL;
	l->src = NULL;
	for (int i = 0; i < 2; i++)                  /* do not keep big buffers idle */
		if (l->batch[i].text.cap > ((size_t)4 << 20) && &l->batch[i] != l->fly)
			ps_buf_free(&l->batch[i].text);
	return rc;
}
