/*
 * netchg.c — net changes for the event sinks (see netchg.h for the rules).
 *
 * NOTES ON THE DESIGN
 *
 *  1. Store. One SQLite database opened on the empty file name: SQLite's
 *     private temporary database, which lives in its page cache and spills
 *     to an unlinked temporary file (SQLITE_TMPDIR, TMPDIR, /var/tmp, /tmp)
 *     once the cache (opts.memory_bytes) is full. Memory stays bounded
 *     whatever the span holds (a five-million-row range included), and
 *     nothing is left on disk after a crash: the file has no name.
 *  2. Rows. `net` holds one row per key (tname, key: the key columns'
 *     values, length-prefixed) and one per change passed through (tname and
 *     key NULL). seq is the order of the row's last change; a key's row is
 *     moved to a new seq by each change, so ORDER BY seq is the order of
 *     the keys' final states (commit order within the span).
 *  3. Per key: existed (before the span), present (now), the row before the
 *     span as its first change told it (old_def, oldrow: key columns only
 *     unless the source sent the whole old row), the row now (def, newrow:
 *     a value the source did not send, PostgreSQL's unchanged TOAST, keeps
 *     the value an earlier change of the span gave it), and under
 *     update_mask one byte per column: changed by an update of the span.
 *     A column counts as changed unless its value was not sent, or equals
 *     the old row's when the source sent it, or it is a key column of an
 *     update that kept the key, or equals the value an earlier change of
 *     the span gave it: without any of these (the first update of a row
 *     under PostgreSQL's default replica identity) a column rewritten with
 *     its own value counts.
 *  4. Transactions. Each source transaction is a SAVEPOINT: a drain inside
 *     one (the run ends mid-transaction) rolls it back, so only whole
 *     transactions are given back; the rest is read again next run.
 *  5. Table definitions are kept (with a reference) in `defs`; a row names
 *     its definition by index. A key is a table's by name, so it survives
 *     a schema change; the before row of an older definition is given back
 *     in the newer one's columns, by name.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/netchg.h"
#include "util/json.h"

#define DEFAULT_MEMORY ((size_t)64 << 20)
#define ROW_LIMIT ((size_t)1 << 31)

typedef struct def_entry {
	ps_table *table;
	int tname;                  /* index into names */
} def_entry;

enum {
	S_FIND, S_DEL_SEQ, S_INSERT, S_TRUNC, S_DRAIN, S_CLEAR, S_COUNT, S_MAX
};

static const char *const stmt_sql[S_MAX] = {
	[S_FIND] = "SELECT seq, def, existed, present, reproc, old_def, oldrow, newrow, mask "
	           "FROM net WHERE tname = ?1 AND key = ?2",
	[S_DEL_SEQ] = "DELETE FROM net WHERE seq = ?1",
	[S_INSERT] = "INSERT INTO net (seq, tname, key, def, op, existed, present, reproc, xid, "
	             "commit_us, pos, lsn, old_def, oldrow, newrow, mask, flags, prefix, content, info) "
	             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
	             "?17, ?18, ?19, ?20)",
	[S_TRUNC] = "DELETE FROM net WHERE tname = ?1",
	[S_DRAIN] = "SELECT seq, def, op, existed, present, reproc, xid, commit_us, pos, lsn, "
	            "old_def, oldrow, newrow, mask, flags, prefix, content, info, key IS NOT NULL "
	            "FROM net ORDER BY seq",
	[S_CLEAR] = "DELETE FROM net",
	[S_COUNT] = "SELECT count(*) FROM net",
};

struct ps_netchg {
	ps_netchg_opts opts;
	sqlite3 *db;
	sqlite3_stmt *st[S_MAX];
	int64_t seq;
	bool in_txn;
	def_entry *defs;
	int ndefs, cap_defs, last_def;
	char **names;               /* "schema.name" */
	int nnames, cap_names;
	ps_buf key, key2, row_old, row_new, mask, carry;
	int carry_def;              /* def of carry (the row a key change moves), -1 none */
};

/* ==== SQLite helpers ======================================================= */

static int db_fail(ps_netchg *n, ps_error *err, const char *what)
{
	return ps_error_set(err, PS_EIO, "net changes: %s: %s", what, sqlite3_errmsg(n->db));
}

static int exec(ps_netchg *n, const char *sql, ps_error *err)
{
	if (sqlite3_exec(n->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(n, err, sql);
	return PS_OK;
}

static sqlite3_stmt *stmt(ps_netchg *n, int which)
{
	sqlite3_stmt *s = n->st[which];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* ==== rows ================================================================= */

/* A row: u8 old_is_key, u32 ncolumns, then per column u8 kind, u32 len, bytes. */
static int row_put(ps_buf *b, const ps_value *vals, int ncols, bool keys_only)
{
	uint8_t k = keys_only;
	uint32_t n = (uint32_t)ncols;
	int rc;

	ps_buf_reset(b);
	rc = ps_buf_append(b, &k, 1);
	if (rc == PS_OK)
		rc = ps_buf_append(b, &n, sizeof(n));
	for (int i = 0; rc == PS_OK && i < ncols; i++) {
		uint8_t kind = vals[i].kind;
		uint32_t len = kind == PS_VALUE_TEXT ? vals[i].len : 0;

		rc = ps_buf_append(b, &kind, 1);
		if (rc == PS_OK)
			rc = ps_buf_append(b, &len, sizeof(len));
		if (rc == PS_OK && len)
			rc = ps_buf_append(b, vals[i].data, len);
	}
	return rc;
}

/* Reads a row blob into vals (ncols entries, pointing into blob); false
 * when it does not have ncols columns. */
static bool row_get(const void *blob, int size, ps_value *vals, int ncols, bool *keys_only)
{
	const uint8_t *p = blob, *end = p + (size > 0 ? size : 0);
	uint32_t n, len;

	if (!blob || end - p < 5)
		return false;
	*keys_only = p[0] != 0;
	memcpy(&n, p + 1, sizeof(n));
	p += 5;
	if ((int)n != ncols)
		return false;
	for (int i = 0; i < ncols; i++) {
		if (end - p < 5)
			return false;
		vals[i].kind = p[0];
		memcpy(&len, p + 1, sizeof(len));
		p += 5;
		if ((size_t)(end - p) < len)
			return false;
		vals[i].len = len;
		vals[i].data = vals[i].kind == PS_VALUE_TEXT ? (const char *)p : NULL;
		p += len;
	}
	return true;
}

static bool value_eq(const ps_value *a, const ps_value *b)
{
	if (a->kind != b->kind)
		return false;
	return a->kind != PS_VALUE_TEXT || (a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
}

/* ==== tables =============================================================== */

static int name_id(ps_netchg *n, const ps_table *t)
{
	char q[600];

	snprintf(q, sizeof(q), "%s.%s", t->schema ? t->schema : "", t->name ? t->name : "");
	for (int i = 0; i < n->nnames; i++)
		if (strcmp(n->names[i], q) == 0)
			return i;
	if (n->nnames == n->cap_names) {
		int cap = n->cap_names ? n->cap_names * 2 : 16;
		char **grown = realloc(n->names, (size_t)cap * sizeof(*grown));
		if (!grown)
			return -1;
		n->names = grown;
		n->cap_names = cap;
	}
	n->names[n->nnames] = strdup(q);
	return n->names[n->nnames] ? n->nnames++ : -1;
}

/* The index of t in defs (added with a reference when new); -1 on OOM. */
static int def_id(ps_netchg *n, ps_table *t)
{
	int tname;

	if (n->last_def >= 0 && n->defs[n->last_def].table == t)
		return n->last_def;
	for (int i = 0; i < n->ndefs; i++)
		if (n->defs[i].table == t)
			return n->last_def = i;
	tname = name_id(n, t);
	if (tname < 0)
		return -1;
	if (n->ndefs == n->cap_defs) {
		int cap = n->cap_defs ? n->cap_defs * 2 : 16;
		def_entry *grown = realloc(n->defs, (size_t)cap * sizeof(*grown));
		if (!grown)
			return -1;
		n->defs = grown;
		n->cap_defs = cap;
	}
	n->defs[n->ndefs].table = ps_table_ref(t);
	n->defs[n->ndefs].tname = tname;
	return n->last_def = n->ndefs++;
}

/* Compacted: the table has key columns that identify one row. */
static bool keyed(const ps_table *t)
{
	if (!t || t->replica_identity == 'f')
		return false;
	for (int i = 0; i < t->ncolumns; i++)
		if (t->columns[i].is_key)
			return true;
	return false;
}

/* The key of the row an update or delete finds (from_new false) or of the
 * new row, length-prefixed, into b; false when a key value is missing. */
static bool key_of(ps_buf *b, const ps_change *c, bool from_new)
{
	const ps_table *t = c->table;

	ps_buf_reset(b);
	for (int i = 0; i < t->ncolumns; i++) {
		const ps_value *v = NULL;
		uint32_t len;

		if (!t->columns[i].is_key)
			continue;
		if (!from_new && c->old_values && c->old_values[i].kind == PS_VALUE_TEXT)
			v = &c->old_values[i];
		else if (c->new_values)
			v = &c->new_values[i];
		if (!v || v->kind != PS_VALUE_TEXT)
			return false;
		len = v->len;
		if (ps_buf_append(b, &len, sizeof(len)) != PS_OK ||
		    ps_buf_append(b, v->data, v->len) != PS_OK)
			return false;
	}
	return true;
}

/* ==== the state of a key =================================================== */

uint8_t ps_netchg_op(bool existed, bool exists, bool merge)
{
	if (exists)
		return merge || existed ? PS_OP_UPDATE : PS_OP_INSERT;
	return existed ? PS_OP_DELETE : 0;
}

enum { K_INSERT, K_UPDATE, K_DELETE };

static int bind_blob(sqlite3_stmt *s, int i, const ps_buf *b)
{
	return b ? sqlite3_bind_blob(s, i, b->data ? b->data : "", (int)b->len, SQLITE_TRANSIENT)
	         : sqlite3_bind_null(s, i);
}

static int insert_row(ps_netchg *n, const ps_txn *txn, const ps_change *c, int tname,
                      const ps_buf *key, int def, int op, bool existed, bool present,
                      bool reproc, int old_def, const ps_buf *oldrow, const ps_buf *newrow,
                      const ps_buf *mask, ps_error *err)
{
	sqlite3_stmt *s = stmt(n, S_INSERT);

	sqlite3_bind_int64(s, 1, ++n->seq);
	if (tname >= 0)
		sqlite3_bind_int(s, 2, tname);
	bind_blob(s, 3, key);
	sqlite3_bind_int(s, 4, def);
	sqlite3_bind_int(s, 5, op);
	sqlite3_bind_int(s, 6, existed);
	sqlite3_bind_int(s, 7, present);
	sqlite3_bind_int(s, 8, reproc);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)txn->xid);
	sqlite3_bind_int64(s, 10, txn->commit_time_us);
	sqlite3_bind_text(s, 11, txn->position, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 12, (sqlite3_int64)c->lsn);
	sqlite3_bind_int(s, 13, old_def);
	bind_blob(s, 14, oldrow);
	bind_blob(s, 15, newrow);
	bind_blob(s, 16, mask);
	sqlite3_bind_int64(s, 17, c->op == PS_OP_MESSAGE ? c->message_transactional
	                                                 : (sqlite3_int64)c->truncate_flags);
	if (c->op == PS_OP_MESSAGE) {
		sqlite3_bind_text(s, 18, c->message_prefix ? c->message_prefix : "", -1,
		                  SQLITE_TRANSIENT);
		sqlite3_bind_blob(s, 19, c->message_content ? c->message_content : "",
		                  (int)c->message_len, SQLITE_TRANSIENT);
	}
	if (c->source_info)
		sqlite3_bind_text(s, 20, c->source_info, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(n, err, "cannot keep a change");
	return PS_OK;
}

/* What the span holds for the key in n->key, taken out of the store (the
 * step puts it back under a new seq): the facts of note 3 into e, the row
 * before the span into n->row_old, the key's row now into n->carry (when of
 * definition def) and its mask into n->mask. A key the span does not hold
 * yet starts from change c's step kind. */
typedef struct key_entry {
	bool found, existed, present, reproc;
	int prev_def, old_def;
} key_entry;

static int entry_take(ps_netchg *n, const ps_change *c, int def, int kind, key_entry *e,
                      ps_error *err)
{
	sqlite3_stmt *s = stmt(n, S_FIND);
	int64_t seq;
	int rc = PS_OK, step;

	ps_buf_reset(&n->row_old);
	ps_buf_reset(&n->mask);
	sqlite3_bind_int(s, 1, n->defs[def].tname);
	sqlite3_bind_blob(s, 2, n->key.data, (int)n->key.len, SQLITE_STATIC);
	step = sqlite3_step(s);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return db_fail(n, err, "cannot look a key up");
	e->found = step == SQLITE_ROW;
	if (!e->found) {
		e->existed = kind != K_INSERT;
		e->present = false;
		e->prev_def = -1;
		e->old_def = def;
		/* the row before the span: as the source sent it, else the key */
		if (kind != K_INSERT && (c->old_values || c->new_values))
			rc = row_put(&n->row_old, c->old_values ? c->old_values : c->new_values,
			             c->table->ncolumns, !c->old_values || c->old_is_key);
		return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
	}
	seq = sqlite3_column_int64(s, 0);
	e->prev_def = sqlite3_column_int(s, 1);
	e->existed = sqlite3_column_int(s, 2);
	e->present = sqlite3_column_int(s, 3);
	e->reproc |= sqlite3_column_int(s, 4) != 0;
	e->old_def = sqlite3_column_int(s, 5);
	if (sqlite3_column_type(s, 6) == SQLITE_BLOB)
		rc = ps_buf_append(&n->row_old, sqlite3_column_blob(s, 6),
		                   (size_t)sqlite3_column_bytes(s, 6));
	if (rc == PS_OK && sqlite3_column_type(s, 7) == SQLITE_BLOB && e->prev_def == def) {
		ps_buf_reset(&n->carry);
		rc = ps_buf_append(&n->carry, sqlite3_column_blob(s, 7),
		                   (size_t)sqlite3_column_bytes(s, 7));
		n->carry_def = rc == PS_OK ? def : -1;
	}
	if (rc == PS_OK && sqlite3_column_type(s, 8) == SQLITE_BLOB && e->prev_def == def)
		rc = ps_buf_append(&n->mask, sqlite3_column_blob(s, 8),
		                   (size_t)sqlite3_column_bytes(s, 8));
	sqlite3_reset(s);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	s = stmt(n, S_DEL_SEQ);
	sqlite3_bind_int64(s, 1, seq);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(n, err, "cannot move a key");
	return PS_OK;
}

/* Marks in n->mask the columns an update changes (note 3); prev: the key's
 * earlier row in the span when have_prev, present: it was there. */
static void mask_update(ps_netchg *n, const ps_change *c, const ps_value *prev, bool have_prev,
                        bool present)
{
	const ps_table *t = c->table;
	bool full_old = c->old_values && !c->old_is_key;

	for (int i = 0; i < t->ncolumns; i++) {
		const ps_value *nv = &c->new_values[i];
		bool ch = nv->kind != PS_VALUE_UNCHANGED;

		if (ch && full_old)
			ch = !value_eq(nv, &c->old_values[i]);
		else if (ch && have_prev && present)
			ch = !value_eq(nv, &prev[i]);   /* the span's earlier row */
		else if (ch && t->columns[i].is_key)
			ch = false;                     /* a key change is a delete + insert */
		if (ch)
			n->mask.data[i] = 1;
	}
}

/* Applies one step (K_*) of change c to the key in n->key (note 3). */
static int key_step(ps_netchg *n, const ps_txn *txn, const ps_change *c, int def, int kind,
                    ps_error *err)
{
	const ps_table *t = c->table;
	int ncols = t->ncolumns, rc;
	key_entry e = {.reproc = txn->reprocessing};
	ps_value *vals = NULL, *prev = NULL;
	bool have_prev = false, keys_only;

	rc = entry_take(n, c, def, kind, &e, err);
	if (rc != PS_OK)
		return rc;
	vals = calloc((size_t)ncols + 1, sizeof(*vals));
	prev = calloc((size_t)ncols + 1, sizeof(*prev));
	if (!vals || !prev) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* the earlier row of this key (or the one a key change moves here) */
	if (n->carry_def == def && n->carry.len)
		have_prev = row_get(n->carry.data, (int)n->carry.len, prev, ncols, &keys_only);
	if (n->opts.update_mask && n->mask.len != (size_t)ncols) {
		ps_buf_reset(&n->mask);
		for (int i = 0; rc == PS_OK && i < ncols; i++)
			rc = ps_buf_putc(&n->mask, (char)(e.found && e.prev_def != def));
	}
	ps_buf_reset(&n->row_new);
	if (kind == K_DELETE) {
		e.present = false;
	} else {
		/* a value not sent keeps the earlier one (TOAST) */
		for (int i = 0; i < ncols; i++) {
			vals[i] = c->new_values[i];
			if (vals[i].kind == PS_VALUE_UNCHANGED && have_prev &&
			    prev[i].kind != PS_VALUE_UNCHANGED)
				vals[i] = prev[i];
		}
		if (n->opts.update_mask && kind == K_UPDATE)
			mask_update(n, c, prev, have_prev, e.present);
		else if (n->opts.update_mask && kind == K_INSERT && e.existed)
			for (int i = 0; i < ncols; i++)   /* deleted, then inserted again */
				n->mask.data[i] = !t->columns[i].is_key;
		e.present = true;
		rc = row_put(&n->row_new, vals, ncols, false);
		if (rc != PS_OK) {
			rc = ps_error_set(err, rc, "out of memory");
			goto cleanup;
		}
	}
	if (!e.existed && !e.present)
		goto cleanup;   /* inserted and deleted within the span: nothing */
	rc = insert_row(n, txn, c, n->defs[def].tname, &n->key, def, 0, e.existed, e.present,
	                e.reproc, e.old_def, n->row_old.len ? &n->row_old : NULL,
	                e.present ? &n->row_new : NULL, n->opts.update_mask ? &n->mask : NULL,
	                err);
cleanup:
	free(vals);
	free(prev);
	return rc;
}

static int pass_through(ps_netchg *n, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	int def = -1, rc = PS_OK;
	ps_buf *oldb = NULL, *newb = NULL;

	if (c->table) {
		def = def_id(n, c->table);
		if (def < 0)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (c->table && c->old_values) {
		rc = row_put(&n->row_old, c->old_values, c->table->ncolumns, c->old_is_key);
		oldb = &n->row_old;
	}
	if (rc == PS_OK && c->table && c->new_values) {
		rc = row_put(&n->row_new, c->new_values, c->table->ncolumns, false);
		newb = &n->row_new;
	}
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	return insert_row(n, txn, c, -1, NULL, def, c->op, false, false, txn->reprocessing, def,
	                  oldb, newb, NULL, err);
}

int ps_netchg_add(ps_netchg *n, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	int def, rc;
	bool moved;

	if (!c->table || !keyed(c->table) ||
	    (c->op != PS_OP_INSERT && c->op != PS_OP_UPDATE && c->op != PS_OP_DELETE &&
	     c->op != PS_OP_TRUNCATE))
		return pass_through(n, txn, c, err);
	def = def_id(n, c->table);
	if (def < 0)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (c->op == PS_OP_TRUNCATE) {
		sqlite3_stmt *s = stmt(n, S_TRUNC);
		sqlite3_bind_int(s, 1, n->defs[def].tname);
		if (sqlite3_step(s) != SQLITE_DONE)
			return db_fail(n, err, "cannot drop a truncated table's changes");
		return pass_through(n, txn, c, err);
	}
	n->carry_def = -1;
	ps_buf_reset(&n->carry);
	if (!key_of(&n->key, c, c->op == PS_OP_INSERT))
		return pass_through(n, txn, c, err);   /* a key value missing: as it came */
	if (c->op == PS_OP_INSERT)
		return key_step(n, txn, c, def, K_INSERT, err);
	if (c->op == PS_OP_DELETE)
		return key_step(n, txn, c, def, K_DELETE, err);
	if (!key_of(&n->key2, c, true))
		return pass_through(n, txn, c, err);
	moved = n->key.len != n->key2.len || memcmp(n->key.data, n->key2.data, n->key.len) != 0;
	if (!moved)
		return key_step(n, txn, c, def, K_UPDATE, err);
	/* a key change: the old key is deleted, the new one inserted, with the
	 * old key's row for the values the source did not send */
	rc = key_step(n, txn, c, def, K_DELETE, err);
	if (rc != PS_OK)
		return rc;
	ps_buf_reset(&n->key);
	rc = ps_buf_append(&n->key, n->key2.data, n->key2.len);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	return key_step(n, txn, c, def, K_INSERT, err);
}

/* ==== transactions ========================================================= */

int ps_netchg_begin(ps_netchg *n, ps_error *err)
{
	int rc;

	if (n->in_txn)
		return PS_OK;
	rc = exec(n, "SAVEPOINT txn", err);
	n->in_txn = rc == PS_OK;
	return rc;
}

int ps_netchg_commit(ps_netchg *n, ps_error *err)
{
	if (!n->in_txn)
		return PS_OK;
	n->in_txn = false;
	return exec(n, "RELEASE txn", err);
}

int ps_netchg_rollback(ps_netchg *n, ps_error *err)
{
	int rc;

	if (!n->in_txn)
		return PS_OK;
	n->in_txn = false;
	rc = exec(n, "ROLLBACK TO txn", err);
	return rc == PS_OK ? exec(n, "RELEASE txn", err) : rc;
}

/* ==== draining ============================================================= */

uint64_t ps_netchg_count(const ps_netchg *n)
{
	sqlite3_stmt *s = stmt((ps_netchg *)n, S_COUNT);

	return sqlite3_step(s) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
}

/* Row blob column col of s as values of table t; a row of another
 * definition (old_def) is mapped to t's columns by name. */
static bool row_in(sqlite3_stmt *s, int col, const ps_netchg *n, int row_def, const ps_table *t,
                   ps_value *out, bool *keys_only)
{
	const ps_table *rt;
	ps_value *tmp;
	bool ok;

	if (sqlite3_column_type(s, col) != SQLITE_BLOB)
		return false;
	rt = row_def >= 0 && row_def < n->ndefs ? n->defs[row_def].table : t;
	if (rt == t)
		return row_get(sqlite3_column_blob(s, col), sqlite3_column_bytes(s, col), out,
		               t->ncolumns, keys_only);
	tmp = calloc((size_t)rt->ncolumns + 1, sizeof(*tmp));
	ok = tmp && row_get(sqlite3_column_blob(s, col), sqlite3_column_bytes(s, col), tmp,
	                    rt->ncolumns, keys_only);
	for (int i = 0; ok && i < t->ncolumns; i++) {
		out[i] = (ps_value){PS_VALUE_NULL, 0, NULL};
		for (int j = 0; j < rt->ncolumns; j++)
			if (t->columns[i].name && rt->columns[j].name &&
			    strcmp(t->columns[i].name, rt->columns[j].name) == 0)
				out[i] = tmp[j];
	}
	/* out points into the blob, not into tmp */
	free(tmp);
	return ok;
}

static int emit_row(ps_netchg *n, sqlite3_stmt *s, ps_netchg_emit_fn emit, void *payload,
                    ps_error *err)
{
	int def = sqlite3_column_int(s, 1), op = sqlite3_column_int(s, 2);
	bool is_key = sqlite3_column_int(s, 18) != 0, ko = false, ko2 = false;
	ps_table *t = def >= 0 && def < n->ndefs ? n->defs[def].table : NULL;
	ps_value *oldv = NULL, *newv = NULL;
	bool *changed = NULL;
	bool has_old, has_new;
	ps_change *c = NULL;
	ps_txn txn;
	ps_netchg_event ev;
	int rc = PS_OK, ncols = t ? t->ncolumns : 0;

	memset(&txn, 0, sizeof(txn));
	txn.xid = (uint64_t)sqlite3_column_int64(s, 6);
	txn.commit_time_us = sqlite3_column_int64(s, 7);
	txn.reprocessing = sqlite3_column_int(s, 5) != 0;
	snprintf(txn.position, sizeof(txn.position), "%s",
	         sqlite3_column_text(s, 8) ? (const char *)sqlite3_column_text(s, 8) : "");
	if (is_key)
		op = ps_netchg_op(sqlite3_column_int(s, 3) != 0, sqlite3_column_int(s, 4) != 0,
		                  n->opts.merge);
	if (op == 0)
		return PS_OK;
	oldv = calloc((size_t)ncols + 1, sizeof(*oldv));
	newv = calloc((size_t)ncols + 1, sizeof(*newv));
	if (!oldv || !newv) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	has_old = t && row_in(s, 11, n, sqlite3_column_int(s, 10), t, oldv, &ko);
	has_new = t && row_in(s, 12, n, def, t, newv, &ko2);
	/* merge: insert-or-update, whose before does not matter */
	if (is_key && (op == PS_OP_INSERT || (n->opts.merge && op == PS_OP_UPDATE)))
		has_old = false;
	if (op == PS_OP_MESSAGE) {
		const void *content = sqlite3_column_blob(s, 16);
		c = ps_change_new_message(sqlite3_column_int(s, 14) != 0,
		                          (const char *)sqlite3_column_text(s, 15),
		                          content ? content : "",
		                          (uint32_t)sqlite3_column_bytes(s, 16),
		                          (uint64_t)sqlite3_column_int64(s, 9));
	} else {
		c = ps_change_new((uint8_t)op, t, has_new ? newv : NULL, has_old ? oldv : NULL, ko,
		                  (uint64_t)sqlite3_column_int64(s, 9));
	}
	if (!c) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (op == PS_OP_TRUNCATE)
		c->truncate_flags = (uint32_t)sqlite3_column_int64(s, 14);
	if (sqlite3_column_type(s, 17) == SQLITE_TEXT) {
		char *info = strdup((const char *)sqlite3_column_text(s, 17));
		if (info)
			ps_change_set_source_info(c, info);
	}
	if (is_key && op == PS_OP_UPDATE && n->opts.update_mask &&
	    sqlite3_column_bytes(s, 13) == ncols) {
		const char *m = sqlite3_column_blob(s, 13);
		changed = calloc((size_t)ncols + 1, sizeof(*changed));
		if (!changed) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
		for (int i = 0; i < ncols; i++)
			changed[i] = m[i] != 0;
	}
	ev.change = c;
	ev.txn = &txn;
	ev.changed = changed;
	ev.net = is_key;
	rc = emit(&ev, payload, err);
cleanup:
	ps_change_free(c);
	free(oldv);
	free(newv);
	free(changed);
	return rc;
}

int ps_netchg_drain(ps_netchg *n, ps_netchg_emit_fn emit, void *payload, ps_error *err)
{
	sqlite3_stmt *s;
	int rc, step;

	rc = ps_netchg_rollback(n, err);
	if (rc != PS_OK)
		return rc;
	s = stmt(n, S_DRAIN);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rc = emit_row(n, s, emit, payload, err);
		if (rc != PS_OK) {
			sqlite3_reset(s);
			return rc;
		}
	}
	if (step != SQLITE_DONE)
		return db_fail(n, err, "cannot read the net changes");
	sqlite3_reset(s);
	if (sqlite3_step(stmt(n, S_CLEAR)) != SQLITE_DONE)
		return db_fail(n, err, "cannot empty the net changes");
	return PS_OK;
}

int ps_netchg_render_tail(ps_buf *b, const ps_netchg_event *ev, const char *from, const char *to)
{
	int rc = ps_buf_puts(b, ",\"range\":{\"from\":");
	const ps_table *t = ev->change->table;
	bool first = true;

	if (rc == PS_OK)
		rc = ps_json_append_string(b, from ? from : "", from ? strlen(from) : 0);
	if (rc == PS_OK)
		rc = ps_buf_puts(b, ",\"to\":");
	if (rc == PS_OK)
		rc = ps_json_append_string(b, to ? to : "", to ? strlen(to) : 0);
	if (rc == PS_OK)
		rc = ps_buf_putc(b, '}');
	if (rc != PS_OK || !ev->changed || !t)
		return rc;
	rc = ps_buf_puts(b, ",\"changed\":[");
	for (int i = 0; rc == PS_OK && i < t->ncolumns; i++) {
		const char *name = t->columns[i].name ? t->columns[i].name : "";
		if (!ev->changed[i])
			continue;
		if (!first)
			rc = ps_buf_putc(b, ',');
		first = false;
		if (rc == PS_OK)
			rc = ps_json_append_string(b, name, strlen(name));
	}
	return rc == PS_OK ? ps_buf_putc(b, ']') : rc;
}

/* ==== options ============================================================== */

const char *const ps_netchg_changes_choices[] = {"all", "net", NULL};

int ps_netchg_options(const json_t *options, bool *net, ps_netchg_opts *no, ps_error *err)
{
	const char *changes = ps_option_str(options, "changes");

	memset(no, 0, sizeof(*no));
	*net = changes && strcmp(changes, "net") == 0;
	no->update_mask = ps_option_bool(options, "update_mask", false);
	no->merge = ps_option_bool(options, "merge", false);
	no->memory_bytes = (size_t)ps_option_int(options, "net_memory_mb", 64) << 20;
	if (!*net && (no->update_mask || no->merge))
		return ps_error_set(err, PS_EINVAL, "target.%s applies to net changes only: set "
		                    "target.changes to \"net\", or remove target.%s",
		                    no->update_mask ? "update_mask" : "merge",
		                    no->update_mask ? "update_mask" : "merge");
	if (no->update_mask && no->merge)
		return ps_error_set(err, PS_EINVAL, "target.update_mask and target.merge do not go "
		                    "together: a merge event does not say whether the row was "
		                    "updated; choose one");
	return PS_OK;
}

/* ==== open / close ========================================================= */

void ps_netchg_close(ps_netchg *n)
{
	if (!n)
		return;
	for (int i = 0; i < S_MAX; i++)
		sqlite3_finalize(n->st[i]);
	sqlite3_close(n->db);
	for (int i = 0; i < n->ndefs; i++)
		ps_table_unref(n->defs[i].table);
	free(n->defs);
	for (int i = 0; i < n->nnames; i++)
		free(n->names[i]);
	free(n->names);
	ps_buf_free(&n->key);
	ps_buf_free(&n->key2);
	ps_buf_free(&n->row_old);
	ps_buf_free(&n->row_new);
	ps_buf_free(&n->mask);
	ps_buf_free(&n->carry);
	free(n);
}

int ps_netchg_open(ps_netchg **out, const ps_netchg_opts *opts, ps_error *err)
{
	ps_netchg *n = calloc(1, sizeof(*n));
	char pragma[96];
	int rc = PS_OK;

	*out = NULL;
	if (!n)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	n->opts = *opts;
	if (!n->opts.memory_bytes)
		n->opts.memory_bytes = DEFAULT_MEMORY;
	n->last_def = -1;
	n->carry_def = -1;
	ps_buf_init(&n->key, ROW_LIMIT);
	ps_buf_init(&n->key2, ROW_LIMIT);
	ps_buf_init(&n->row_old, ROW_LIMIT);
	ps_buf_init(&n->row_new, ROW_LIMIT);
	ps_buf_init(&n->mask, ROW_LIMIT);
	ps_buf_init(&n->carry, ROW_LIMIT);
	/* note 1: the empty name is a private temporary database */
	if (sqlite3_open_v2("", &n->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		rc = ps_error_set(err, PS_EIO, "net changes: cannot open a temporary database: %s",
		                  n->db ? sqlite3_errmsg(n->db) : "out of memory");
		goto cleanup;
	}
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%zu",
	         n->opts.memory_bytes / 1024 ? n->opts.memory_bytes / 1024 : 1);
	rc = exec(n, pragma, err);
	if (rc == PS_OK)
		rc = exec(n, "PRAGMA temp_store = FILE", err);
	if (rc == PS_OK)
		rc = exec(n, "CREATE TABLE net (seq INTEGER PRIMARY KEY, tname INTEGER, key BLOB, "
		             "def INTEGER NOT NULL, op INTEGER NOT NULL, existed INTEGER, present "
		             "INTEGER, reproc INTEGER, xid INTEGER, commit_us INTEGER, pos TEXT, lsn "
		             "INTEGER, old_def INTEGER, oldrow BLOB, newrow BLOB, mask BLOB, flags "
		             "INTEGER, prefix TEXT, content BLOB, info TEXT)", err);
	if (rc == PS_OK)
		rc = exec(n, "CREATE UNIQUE INDEX net_key ON net (tname, key)", err);
	for (int i = 0; rc == PS_OK && i < S_MAX; i++)
		if (sqlite3_prepare_v2(n->db, stmt_sql[i], -1, &n->st[i], NULL) != SQLITE_OK)
			rc = db_fail(n, err, stmt_sql[i]);
cleanup:
	if (rc != PS_OK) {
		ps_netchg_close(n);
		return rc;
	}
	*out = n;
	return PS_OK;
}
