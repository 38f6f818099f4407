/*
 * sqlite_apply.c — writing changes into SQLite (sink.h "Applying changes").
 *
 * NOTES ON THE DESIGN
 *
 *  1. Every change is one or two steps of a cached statement (sqlite_table.c
 *     note 4): compute the column mask, find the statement, bind, step,
 *     reset. Values go through ps_typemap_sqlite_convert (sqlite_typemap.c),
 *     the same conversion for what is written and for what a WHERE matches,
 *     so a row written by the load is found again by the stream.
 *  2. A value of kind PS_VALUE_UNCHANGED is never bound (sink.h invariant
 *     2): an update leaves such columns out of its SET, a reprocessing upsert
 *     out of both its INSERT and its DO UPDATE parts.
 *  3. Finding the old row. With a target PRIMARY KEY: each key column's old
 *     value when the change has one that means something (old_values, and
 *     with old_is_key only the replica-identity columns), else its new value.
 *     Without one: every meaningful, not-unchanged column of old_values,
 *     compared with IS (NULL-safe), one row at a time (LIMIT 1 on the rowid).
 *  4. Divergence outside reprocessing: an update or delete that finds no row
 *     is counted and warned about (at most once per WARN_INTERVAL_NS per
 *     kind, with the count), and the stream goes on; a duplicate insert is
 *     an error naming table and key.
 *  5. Reprocessing (txn->reprocessing): insert is an upsert on the key;
 *     delete tolerates a missing row; update first tries the plain UPDATE by
 *     the old key (which keeps the target's values for unchanged columns,
 *     also when the key moves) and, when no row matched, upserts the new row;
 *     when the UPDATE hits an existing row at a changed key, the old key is
 *     deleted and the new row upserted. Tables without a key cannot upsert:
 *     their inserts stay inserts, and an update that matches nothing is
 *     skipped.
 *  6. The bytes of bytea values are decoded into one scratch buffer per row,
 *     reserved before any of them is bound (its address must not move while
 *     SQLite holds SQLITE_STATIC pointers into it).
 */
#include <stdio.h>
#include <string.h>

#include "sink/sqlite/sqlite_typemap.h"
#include "sink/sqlite/sqlite_internal.h"
#include "util/clock.h"
#include "util/log.h"

#define WARN_INTERVAL_NS (10ull * 1000000000ull)
#define KEY_TEXT_MAX 512          /* key description in messages */
#define KEY_VALUE_MAX 64          /* bytes of one value shown */

static const char *col_name(const sq_table *tb, int i)
{
	const char *n = tb->layout->columns[i].name;
	return n ? n : "?";
}

/* ==== messages ============================================================ */

/* A bounded text being appended to; stops quietly when full. */
typedef struct text_out {
	char *buf;
	size_t len, used;
} text_out;

static void add(text_out *o, const char *s, size_t n)
{
	if (o->used + 1 >= o->len)
		return;
	if (n > o->len - o->used - 1)
		n = o->len - o->used - 1;
	memcpy(o->buf + o->used, s, n);
	o->used += n;
	o->buf[o->used] = '\0';
}

static void add_str(text_out *o, const char *s)
{
	add(o, s, strlen(s));
}

/* "(a, b)=(1, x)" for the key columns, from vals[i] (source column order). */
static void describe_key(const sq_table *tb, const ps_value *const *vals, char *buf,
                         size_t len)
{
	text_out o = {buf, len, 0};

	buf[0] = '\0';
	if (tb->npk == 0) {
		add_str(&o, "(no primary key)");
		return;
	}
	add_str(&o, "(");
	for (int p = 0; p < tb->npk; p++) {
		add_str(&o, p ? ", " : "");
		add_str(&o, col_name(tb, tb->pk[p]));
	}
	add_str(&o, ")=(");
	for (int p = 0; p < tb->npk; p++) {
		const ps_value *v = vals[tb->pk[p]];

		add_str(&o, p ? ", " : "");
		if (!v || v->kind != PS_VALUE_TEXT) {
			add_str(&o, "NULL");
			continue;
		}
		add(&o, v->data, v->len > KEY_VALUE_MAX ? KEY_VALUE_MAX : v->len);
		if (v->len > KEY_VALUE_MAX)
			add_str(&o, "...");
	}
	add_str(&o, ")");
}

static void warn_missing(ps_sink *k, sq_missing *m, const char *what, const sq_table *tb,
                         const ps_value *const *key)
{
	uint64_t now = ps_now_ns();
	char desc[KEY_TEXT_MAX];

	m->count++;
	m->unreported++;
	if (m->last_warn_ns != 0 && now - m->last_warn_ns < WARN_INTERVAL_NS)
		return;
	describe_key(tb, key, desc, sizeof(desc));
	ps_log_warn("sink sqlite: table %s: %s found no row for key %s: the target diverged "
	            "from the source (%llu such since the last warning, %llu in all)",
	            tb->target, what, desc, (unsigned long long)m->unreported,
	            (unsigned long long)m->count);
	m->unreported = 0;
	m->last_warn_ns = now;
}

/* ==== binding ============================================================= */

typedef struct row_binding {
	const uint8_t *set;             /* ncols: bind vals[i] at ?i+1 */
	const ps_value *vals;
	const uint8_t *match;           /* ncols: bind *where[i] at ?ncols+i+1 */
	const ps_value *const *where;
} row_binding;

static int bind_one(ps_sink *k, const sq_table *tb, sqlite3_stmt *st, int idx, int col,
                    const ps_value *v, unsigned char **scratch, ps_error *err)
{
	ps_sqlite_datum d;
	const char *why = NULL;
	int rc;

	if (ps_typemap_sqlite_convert(tb->storage[col], v, *scratch, &d, &why) != 0)
		return ps_error_set(err, PS_EINVAL, "column %s: the value %s%.*s%s %s",
		                    col_name(tb, col), v->kind == PS_VALUE_TEXT ? "'" : "",
		                    v->kind == PS_VALUE_TEXT ? KEY_VALUE_MAX : 0,
		                    v->kind == PS_VALUE_TEXT ? v->data : "",
		                    v->kind == PS_VALUE_TEXT ? "'" : "", why ? why : "is invalid");
	switch (d.type) {
	case PS_DATUM_INTEGER:
		rc = sqlite3_bind_int64(st, idx, d.i);
		break;
	case PS_DATUM_REAL:
		rc = sqlite3_bind_double(st, idx, d.r);
		break;
	case PS_DATUM_TEXT:
		rc = sqlite3_bind_text64(st, idx, d.p, d.n, SQLITE_STATIC, SQLITE_UTF8);
		break;
	case PS_DATUM_BLOB:
		rc = sqlite3_bind_blob64(st, idx, d.p, d.n, SQLITE_STATIC);
		*scratch += d.n;
		break;
	default:
		rc = sqlite3_bind_null(st, idx);
		break;
	}
	if (rc != SQLITE_OK)
		return ps__sqlite_fail(k, rc, err, "column %s: cannot bind the value",
		                       col_name(tb, col));
	return 0;
}

static int bind_row(ps_sink *k, const sq_table *tb, sqlite3_stmt *st, const row_binding *b,
                    ps_error *err)
{
	size_t need = 0;
	unsigned char *scratch;
	int n = tb->ncols, rc = 0;

	/* Note 6: one reservation for every blob of the row. */
	for (int i = 0; i < n; i++) {
		if (b->set && b->set[i])
			need += ps_typemap_sqlite_scratch(tb->storage[i], &b->vals[i]);
		if (b->match && b->match[i])
			need += ps_typemap_sqlite_scratch(tb->storage[i], b->where[i]);
	}
	ps_buf_reset(&k->blob);
	if (need > 0) {
		rc = ps_buf_reserve(&k->blob, need);
		if (rc != 0)
			return ps_error_set(err, rc, "the bytea values of one row exceed %zu MiB",
			                    k->blob.limit >> 20);
	}
	scratch = (unsigned char *)k->blob.data;
	for (int i = 0; rc == 0 && i < n; i++) {
		if (b->set && b->set[i])
			rc = bind_one(k, tb, st, i + 1, i, &b->vals[i], &scratch, err);
		if (rc == 0 && b->match && b->match[i])
			rc = bind_one(k, tb, st, n + i + 1, i, b->where[i], &scratch, err);
	}
	return rc;
}

/* Binds and runs; returns the SQLite result code (SQLITE_DONE on success),
 * or a negative ps_error code when binding failed (err filled). */
static int run(ps_sink *k, sq_table *tb, uint8_t kind, const uint8_t *mask,
               const row_binding *b, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = ps__sqlite_stmt_for(k, tb, kind, mask, &st, err);

	if (rc == 0)
		rc = bind_row(k, tb, st, b, err);
	if (rc != 0)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

static bool is_duplicate(int sqlite_rc)
{
	return sqlite_rc == SQLITE_CONSTRAINT_PRIMARYKEY || sqlite_rc == SQLITE_CONSTRAINT_UNIQUE;
}

/* An error from run(): negative codes are already in err. */
static int run_failed(ps_sink *k, const sq_table *tb, int rc, const char *what,
                      const ps_value *const *key, ps_error *err)
{
	char desc[KEY_TEXT_MAX];

	if (rc < 0)
		return rc;
	describe_key(tb, key, desc, sizeof(desc));
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return ps__sqlite_fail(k, rc, err,
		                       "%s of key %s: the target already holds a row with that key "
		                       "(the target diverged from the source)", what, desc);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return ps__sqlite_fail(k, rc, err,
		                       "%s of key %s: a unique index of the target holds another row "
		                       "with the same values (the target diverged from the source)",
		                       what, desc);
	return ps__sqlite_fail(k, rc, err, "%s of key %s failed", what, desc);
}

/* ==== the old row ========================================================= */

/* Note 3: fills k->where and match (ncols bytes) with what finds the old
 * row. new_values may stand in for key columns (updates). */
static int old_row(ps_sink *k, const sq_table *tb, const ps_change *c, bool use_new,
                   uint8_t *match, ps_error *err)
{
	const ps_value *ov = c->old_values, *nv = use_new ? c->new_values : NULL;
	const ps_column *cols = c->table->columns;
	int n = tb->ncols, nmatch = 0;

	memset(match, 0, (size_t)n);
	if (tb->npk > 0) {
		for (int p = 0; p < tb->npk; p++) {
			int s = tb->pk[p];

			if (ov && (!c->old_is_key || cols[s].is_key) && ov[s].kind != PS_VALUE_UNCHANGED)
				k->where[s] = &ov[s];
			else if (nv && nv[s].kind != PS_VALUE_UNCHANGED)
				k->where[s] = &nv[s];
			else
				return ps_error_set(err, PS_EINVAL,
				                    "the change carries no value for key column %s, so the "
				                    "row cannot be found", col_name(tb, s));
			match[s] = 1;
		}
		return 0;
	}
	if (!ov && nv) {
		/* An update that kept its replica identity (USING INDEX) sends no
		 * old row: the identity columns' new values are the old ones. */
		for (int i = 0; i < n; i++) {
			if (!cols[i].is_key || nv[i].kind == PS_VALUE_UNCHANGED)
				continue;
			k->where[i] = &nv[i];
			match[i] = 1;
			nmatch++;
		}
		if (nmatch > 0)
			return 0;
	}
	if (!ov)
		return ps_error_set(err, PS_EINVAL,
		                    "table %s has no primary key in the target and the change carries "
		                    "no old row to find the row by (REPLICA IDENTITY FULL on the "
		                    "source table sends one)", tb->target);
	if (!tb->rowid)
		return ps_error_set(err, PS_EINVAL,
		                    "table %s has no primary key and has columns named rowid, _rowid_ "
		                    "and oid, so its rows cannot be addressed one at a time", tb->target);
	for (int i = 0; i < n; i++) {
		if ((c->old_is_key && !cols[i].is_key) || ov[i].kind == PS_VALUE_UNCHANGED)
			continue;
		k->where[i] = &ov[i];
		match[i] = 1;
		nmatch++;
	}
	if (nmatch == 0)
		return ps_error_set(err, PS_EINVAL,
		                    "the old row carries no value to find the row by in table %s",
		                    tb->target);
	return 0;
}

static bool same_value(const ps_value *a, const ps_value *b)
{
	if (a->kind != b->kind)
		return false;
	return a->kind != PS_VALUE_TEXT || (a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
}

/* Does the update move the row to another key? (k->where holds the old key.) */
static bool key_changed(const ps_sink *k, const sq_table *tb, const ps_value *nv)
{
	for (int p = 0; p < tb->npk; p++) {
		int s = tb->pk[p];

		if (nv[s].kind != PS_VALUE_UNCHANGED && !same_value(k->where[s], &nv[s]))
			return true;
	}
	return false;
}

/* An update that keeps its key need not SET the key columns; leaving them
 * out spares SQLite the key index maintenance. (Unless nothing else is set:
 * an UPDATE needs one assignment.) */
static void keep_key(const sq_table *tb, uint8_t *set)
{
	int others = 0;

	for (int i = 0; i < tb->ncols; i++)
		others += set[i] && !tb->is_pk[i];
	if (others == 0)
		return;
	for (int p = 0; p < tb->npk; p++)
		set[tb->pk[p]] = 0;
}

/* The key of a new row, for messages. */
static void new_key(ps_sink *k, const sq_table *tb, const ps_value *nv)
{
	for (int p = 0; p < tb->npk; p++)
		k->where[tb->pk[p]] = &nv[tb->pk[p]];
}

/* ==== the operations ====================================================== */

static int set_mask(uint8_t *mask, const ps_value *nv, int n)
{
	int nset = 0;

	memset(mask, 0, 2 * (size_t)n);
	for (int i = 0; i < n; i++) {
		mask[i] = nv[i].kind != PS_VALUE_UNCHANGED;
		nset += mask[i];
	}
	return nset;
}

/* The new row as an upsert on the key (note 5). */
static int upsert(ps_sink *k, sq_table *tb, const ps_value *nv, ps_error *err)
{
	row_binding b = {k->mask, nv, NULL, NULL};
	int rc;

	for (int p = 0; p < tb->npk; p++)
		if (nv[tb->pk[p]].kind == PS_VALUE_UNCHANGED)
			return ps_error_set(err, PS_EINVAL,
			                    "key column %s is unchanged in the new row, so it cannot be "
			                    "upserted", col_name(tb, tb->pk[p]));
	set_mask(k->mask, nv, tb->ncols);
	rc = run(k, tb, SQ_UPSERT, k->mask, &b, err);
	if (rc != SQLITE_DONE) {
		new_key(k, tb, nv);
		return run_failed(k, tb, rc, "upsert", k->where, err);
	}
	return 0;
}

static int apply_insert(ps_sink *k, sq_table *tb, const ps_change *c, bool reprocessing,
                        ps_error *err)
{
	const ps_value *nv = c->new_values;
	row_binding b = {k->mask, nv, NULL, NULL};
	int rc;

	if (!nv)
		return ps_error_set(err, PS_EINVAL, "an insert without a new row");
	if (reprocessing && tb->npk > 0)
		return upsert(k, tb, nv, err);
	set_mask(k->mask, nv, tb->ncols);
	rc = run(k, tb, SQ_INSERT, k->mask, &b, err);
	if (rc != SQLITE_DONE) {
		new_key(k, tb, nv);
		return run_failed(k, tb, rc, "insert", k->where, err);
	}
	return 0;
}

/* Reprocessing, and the UPDATE hit an existing row at the new key. */
static int move_onto_existing(ps_sink *k, sq_table *tb, const ps_value *nv, ps_error *err)
{
	uint8_t *match = k->mask + tb->ncols;
	row_binding b = {NULL, NULL, match, k->where};
	int rc;

	memset(k->mask, 0, (size_t)tb->ncols);
	rc = run(k, tb, SQ_DELETE, k->mask, &b, err);
	if (rc != SQLITE_DONE)
		return run_failed(k, tb, rc, "delete of the old key", k->where, err);
	return upsert(k, tb, nv, err);
}

static int apply_update(ps_sink *k, sq_table *tb, const ps_change *c, bool reprocessing,
                        ps_error *err)
{
	const ps_value *nv = c->new_values;
	uint8_t *match = k->mask + tb->ncols;
	row_binding b = {k->mask, nv, match, k->where};
	bool moved;
	int rc;

	if (!nv)
		return ps_error_set(err, PS_EINVAL, "an update without a new row");
	if (set_mask(k->mask, nv, tb->ncols) == 0)
		return 0;               /* nothing to write: every column unchanged */
	rc = old_row(k, tb, c, true, match, err);
	if (rc != 0)
		return rc;
	moved = tb->npk > 0 && key_changed(k, tb, nv);
	if (tb->npk > 0 && !moved)
		keep_key(tb, k->mask);
	rc = run(k, tb, SQ_UPDATE, k->mask, &b, err);
	if (rc == SQLITE_DONE) {
		if (sqlite3_changes(k->db) > 0)
			return 0;
		if (!reprocessing) {
			warn_missing(k, &k->missing_update, "update", tb, k->where);
			return 0;
		}
		/* a new row with unchanged (unsent TOAST) columns is not whole: the
		 * row comes whole from the copy that holds it (see pg_apply.c) */
		for (int i = 0; i < tb->ncols; i++)
			if (nv[i].kind == PS_VALUE_UNCHANGED)
				return 0;
		return tb->npk > 0 ? upsert(k, tb, nv, err) : 0;
	}
	if (reprocessing && moved && is_duplicate(rc))
		return move_onto_existing(k, tb, nv, err);
	if (rc > 0 && is_duplicate(rc)) {
		new_key(k, tb, nv);
		return run_failed(k, tb, rc, "update to a new key", k->where, err);
	}
	return run_failed(k, tb, rc, "update", k->where, err);
}

static int apply_delete(ps_sink *k, sq_table *tb, const ps_change *c, bool reprocessing,
                        ps_error *err)
{
	uint8_t *match = k->mask + tb->ncols;
	row_binding b = {NULL, NULL, match, k->where};
	int rc;

	if (!c->old_values && tb->npk > 0)
		return ps_error_set(err, PS_EINVAL, "a delete without the old key");
	memset(k->mask, 0, (size_t)tb->ncols);
	rc = old_row(k, tb, c, false, match, err);
	if (rc != 0)
		return rc;
	rc = run(k, tb, SQ_DELETE, k->mask, &b, err);
	if (rc != SQLITE_DONE)
		return run_failed(k, tb, rc, "delete", k->where, err);
	if (sqlite3_changes(k->db) == 0 && !reprocessing)
		warn_missing(k, &k->missing_delete, "delete", tb, k->where);
	return 0;
}

static int apply_truncate(ps_sink *k, sq_table *tb, ps_error *err)
{
	row_binding b = {NULL, NULL, NULL, NULL};
	int rc;

	memset(k->mask, 0, 2 * (size_t)tb->ncols);
	rc = run(k, tb, SQ_TRUNCATE, k->mask, &b, err);
	if (rc != SQLITE_DONE)
		return rc < 0 ? rc : ps__sqlite_fail(k, rc, err, "cannot empty the table");
	return 0;
}

int ps__sqlite_write(ps_sink *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	bool reprocessing = txn && txn->reprocessing;
	sq_table *tb = NULL;
	int rc;

	switch (c->op) {
	case PS_OP_MESSAGE:
		return 0;
	case PS_OP_INSERT:
	case PS_OP_READ:
	case PS_OP_UPDATE:
	case PS_OP_DELETE:
	case PS_OP_TRUNCATE:
		break;
	default:
		return ps_error_set(err, PS_EINVAL, "unknown change op %u at lsn %llu",
		                    (unsigned)c->op, (unsigned long long)c->lsn);
	}
	if (!c->table)
		return ps_error_set(err, PS_EINVAL, "change '%c' at lsn %llu has no table",
		                    (char)c->op, (unsigned long long)c->lsn);
	rc = ps__sqlite_txn(k, err);
	if (rc == 0)
		rc = ps__sqlite_table_for(k, c->table, &tb, err);
	if (rc == 0) {
		switch (c->op) {
		case PS_OP_INSERT:
		case PS_OP_READ: rc = apply_insert(k, tb, c, reprocessing, err); break;
		case PS_OP_UPDATE: rc = apply_update(k, tb, c, reprocessing, err); break;
		case PS_OP_DELETE: rc = apply_delete(k, tb, c, reprocessing, err); break;
		default: rc = apply_truncate(k, tb, err); break;
		}
	}
	if (rc != 0)
		ps_error_add_context(err, "table %s.%s", c->table->schema ? c->table->schema : "",
		                     c->table->name ? c->table->name : "");
	return rc;
}
