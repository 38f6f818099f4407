/*
 * mysink_apply.c — insert, update and delete on a MySQL / MariaDB target
 * through prepared statements, executed one row at a time or, for the
 * batches mysink_net.c and mysink_load.c gather, with arrays of rows bound
 * at once (MariaDB's bulk execution: one round trip for up to
 * MYS_BULK_ROWS rows).
 *
 * NOTES ON THE DESIGN
 *
 *  1. Statement shapes. The SQL of a change depends on its table, its kind
 *     and which columns it carries, so a statement is prepared once per
 *     (table, shape) and kept in a most-recently-used list of at most
 *     MYS_STMTS_PER_TABLE. A shape is [kind][extra][set mask][match mask],
 *     a bit per source column in each mask:
 *       I  INSERT INTO t (mask) VALUES (...)
 *       U  UPDATE t SET mask WHERE key = old key
 *       D  DELETE FROM t WHERE key = old key
 *       V  UPDATE t SET mask WHERE (every match column equal) LIMIT 1
 *       E  DELETE FROM t WHERE (every match column equal) LIMIT 1
 *       A  INSERT INTO t (mask) SELECT ... WHERE NOT EXISTS (an equal row):
 *          re-processing, without a key
 *       K  DELETE FROM t WHERE unique key number extra = the new row's
 *          AND NOT key = old key: re-processing clears the rows in the way
 *     Tables without a primary key are matched on every column the old row
 *     carries (V, E, A), by the bytes of text columns and through a CAST
 *     of the parameter to the column's type for the others
 *     (mysink_typemap.c NOTES 4); LIMIT 1 changes one of identical rows.
 *  2. Re-processing (txn->reprocessing: the rows may already be there, in a
 *     later state). ON DUPLICATE KEY UPDATE and REPLACE are not used: both
 *     act on whichever unique key matches first, so with two unique keys
 *     they update or delete the wrong row, and REPLACE's delete fires
 *     cascades. An insert or update instead
 *       - deletes every row that holds one of the new row's unique values
 *         (K, once per unique key; the primary key when it changes), but
 *         never the row being updated itself: in the source no other row
 *         held that value when the change was made, so such a row is in a
 *         later state and its own change, further on in what is replayed,
 *         puts it back;
 *       - updates the row at the old key (U), which also moves its key;
 *       - inserts the new row when U found none (I), if the row is whole
 *         (a PostgreSQL update may leave unchanged TOAST columns out: that
 *         row then comes whole from the copy that holds it).
 *     A delete tolerates a missing row.
 *  3. Outside re-processing, an insert of a key that exists fails with
 *     MariaDB's duplicate-entry error naming the key, and an update or
 *     delete that finds no row is counted and warned about (the session
 *     counts found rows, CLIENT_FOUND_ROWS, so an update to equal values
 *     still counts).
 *  4. Values are bound as text (a binary column's as bytes) after
 *     ps__mys_convert, which refuses what MariaDB cannot hold; the error
 *     names the table, the column, the value and the row's key.
 *  5. MariaDB's ENUM error value ('' where '' is no label: index 0, what a
 *     non-strict session stores for a value not in the list) can only be
 *     written without strict mode. A row that carries it goes alone through
 *     the statement's lax variant (SET STATEMENT sql_mode = ... FOR), and
 *     every warning that statement leaves must be that value going in as
 *     it is; any other is a changed value and fails the batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/mysql/mysink.h"
#include "util/myconn.h"
#include "util/str.h"

enum {
	SH_INSERT = 'I',
	SH_UPDATE_KEY = 'U',
	SH_DELETE_KEY = 'D',
	SH_UPDATE_MATCH = 'V',
	SH_DELETE_MATCH = 'E',
	SH_INSERT_ABSENT = 'A',
	SH_CLEAR_UNIQUE = 'K'
};

#define SHAPE_HEAD 2   /* kind, extra (match-from, or the unique key number) */
#define SH_LAX 0x80    /* with kind: the statement runs without strict mode (NOTES 5) */

static inline bool bit_get(const uint8_t *m, int i)
{
	return (m[i >> 3] >> (i & 7)) & 1;
}

static inline void bit_set(uint8_t *m, int i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static size_t mask_bytes(const mys_table *t)
{
	return ((size_t)t->ncols + 7) / 8;
}

static size_t shape_len(const mys_table *t)
{
	return SHAPE_HEAD + 2 * mask_bytes(t);
}

/* ==== statement text ====================================================== */

typedef struct build {
	ps_buf *b;
	int rc;
	int np;
	int *params;
} build;

static void put(build *bd, const char *text)
{
	if (bd->rc == PS_OK)
		bd->rc = ps_buf_puts(bd->b, text);
}

/* Appends expr (a "?" inside, perhaps in a CAST) for a new parameter. */
static void put_param(build *bd, const char *expr, int src, int index)
{
	bd->params[bd->np++] = MYS_PARAM(src, index);
	put(bd, expr);
}

static void put_list(build *bd, const mys_table *t, const uint8_t *mask)
{
	bool first = true;

	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : ", ");
		put(bd, t->qcol[i]);
		first = false;
	}
}

static void put_values(build *bd, const mys_table *t, const uint8_t *mask)
{
	bool first = true;

	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : ", ");
		put_param(bd, t->col[i].param, MYS_FROM_NEW, i);
		first = false;
	}
}

static void put_set(build *bd, const mys_table *t, const uint8_t *mask)
{
	bool first = true;

	put(bd, " SET ");
	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : ", ");
		put(bd, t->qcol[i]);
		put(bd, " = ");
		put_param(bd, t->col[i].param, MYS_FROM_NEW, i);
		first = false;
	}
	if (first) {            /* nothing to set: touch a column to find the row */
		int c = t->nkey ? t->key[0] : 0;

		put(bd, t->qcol[c]);
		put(bd, " = ");
		put(bd, t->qcol[c]);
	}
}

/* key = ? AND ... (the old key) */
static void put_key_eq(build *bd, const mys_table *t)
{
	for (int k = 0; k < t->nkey; k++) {
		put(bd, k ? " AND " : "");
		put(bd, t->qcol[t->key[k]]);
		put(bd, " = ");
		put_param(bd, t->col[t->key[k]].where, MYS_FROM_KEY, k);
	}
}

/* One column's NULL-safe equality by value (NOTES 1). */
static void put_match_col(build *bd, const mys_table *t, int i, int from)
{
	const mys_col *c = &t->col[i];

	if (c->text) {
		put(bd, "CAST(");
		put(bd, t->qcol[i]);
		put(bd, " AS BINARY) <=> CAST(CONVERT(");
		put_param(bd, c->fixed ? "TRIM(TRAILING ' ' FROM ?)" : "?", from, i);
		put(bd, " USING ");
		put(bd, c->charset);
		put(bd, ") AS BINARY)");
		return;
	}
	put(bd, t->qcol[i]);
	put(bd, " <=> ");
	put_param(bd, c->where, from, i);
}

static void put_match(build *bd, const mys_table *t, const uint8_t *mask, int from)
{
	bool first = true;

	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : " AND ");
		put_match_col(bd, t, i, from);
		first = false;
	}
}

static void build_clear_unique(build *bd, const mys_table *t, int which)
{
	put(bd, "DELETE FROM ");
	put(bd, t->qname);
	put(bd, " WHERE ");
	if (which == 0) {                   /* the primary key, at the new row's key */
		for (int k = 0; k < t->nkey; k++) {
			put(bd, k ? " AND " : "");
			put(bd, t->qcol[t->key[k]]);
			put(bd, " = ");
			put_param(bd, t->col[t->key[k]].where, MYS_FROM_NEW, t->key[k]);
		}
	} else {
		const mys_unique *u = &t->uniq[which - 1];

		for (int k = 0; k < u->ncols; k++) {
			put(bd, k ? " AND " : "");
			put(bd, t->qcol[u->cols[k]]);
			put(bd, " = ");
			put_param(bd, t->col[u->cols[k]].where, MYS_FROM_NEW, u->cols[k]);
		}
	}
	if (t->nkey) {
		put(bd, " AND NOT (");
		put_key_eq(bd, t);
		put(bd, ")");
	}
}

static int stmt_build(ps_sink *s, const mys_table *t, ps_buf *sql, int *params, int *np,
                      ps_error *err)
{
	const uint8_t *mask = s->shape + SHAPE_HEAD;
	const uint8_t *match = mask + mask_bytes(t);
	int kind = s->shape[0] & ~SH_LAX, extra = s->shape[1];
	build bd = {sql, PS_OK, 0, params};

	ps_buf_reset(sql);
	if (s->shape[0] & SH_LAX)              /* NOTES 5 */
		put(&bd, "SET STATEMENT sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION' FOR ");
	switch (kind) {
	case SH_INSERT:
		put(&bd, "INSERT INTO ");
		put(&bd, t->qname);
		put(&bd, " (");
		put_list(&bd, t, mask);
		put(&bd, ") VALUES (");
		put_values(&bd, t, mask);
		put(&bd, ")");
		break;
	case SH_INSERT_ABSENT:
		put(&bd, "INSERT INTO ");
		put(&bd, t->qname);
		put(&bd, " (");
		put_list(&bd, t, mask);
		put(&bd, ") SELECT ");
		put_values(&bd, t, mask);
		put(&bd, " FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM ");
		put(&bd, t->qname);
		put(&bd, " WHERE ");
		put_match(&bd, t, mask, MYS_FROM_NEW);
		put(&bd, ")");
		break;
	case SH_UPDATE_KEY:
	case SH_UPDATE_MATCH:
		put(&bd, "UPDATE ");
		put(&bd, t->qname);
		put_set(&bd, t, mask);
		put(&bd, " WHERE ");
		if (kind == SH_UPDATE_KEY) {
			put_key_eq(&bd, t);
		} else {
			put_match(&bd, t, match, extra);
			put(&bd, " LIMIT 1");
		}
		break;
	case SH_DELETE_KEY:
	case SH_DELETE_MATCH:
		put(&bd, "DELETE FROM ");
		put(&bd, t->qname);
		put(&bd, " WHERE ");
		if (kind == SH_DELETE_KEY) {
			put_key_eq(&bd, t);
		} else {
			put_match(&bd, t, match, extra);
			put(&bd, " LIMIT 1");
		}
		break;
	case SH_CLEAR_UNIQUE:
		build_clear_unique(&bd, t, extra);
		break;
	default:
		return ps_error_set(err, PS_EINVAL, "unknown statement shape '%c'", kind);
	}
	if (bd.rc != PS_OK)
		return ps_error_set(err, bd.rc, "statement for %s.%s is too long", t->db, t->name);
	*np = bd.np;
	return PS_OK;
}

/* ==== the statement cache ================================================= */

static int ensure_scratch(ps_sink *s, const mys_table *t, ps_error *err)
{
	size_t need = shape_len(t);

	if (t->nkey + 1 > s->keyv_cap) {
		const ps_value **k = realloc(s->keyv, (size_t)(t->nkey + 1) * sizeof(*k));

		if (!k)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->keyv = k;
		s->keyv_cap = t->nkey + 1;
	}
	if (need > s->shape_cap) {
		uint8_t *sh = realloc(s->shape, need);

		if (!sh)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->shape = sh;
		s->shape_cap = need;
	}
	memset(s->shape, 0, need);
	return PS_OK;
}

/* The statement of the shape in s->shape: cached, or built and prepared. */
static int stmt_get(ps_sink *s, mys_table *t, mys_stmt **out, ps_error *err)
{
	size_t len = shape_len(t);
	mys_stmt *st, *prev = NULL;
	int rc;

	*out = NULL;
	for (st = t->stmts; st; prev = st, st = st->next) {
		if (st->shape_len == len && memcmp(st->shape, s->shape, len) == 0) {
			if (prev) {
				prev->next = st->next;
				st->next = t->stmts;
				t->stmts = st;
			}
			*out = st;
			return PS_OK;
		}
	}
	if (t->nstmts >= MYS_STMTS_PER_TABLE) {           /* drop the oldest */
		mys_stmt **pp = &t->stmts;

		while ((*pp)->next)
			pp = &(*pp)->next;
		mys_stmt_free(*pp);
		*pp = NULL;
		t->nstmts--;
	}
	st = calloc(1, sizeof(*st));
	if (st) {
		st->shape = malloc(len);
		st->params = calloc(3 * (size_t)t->ncols + (size_t)t->nkey + 1, sizeof(int));
	}
	if (!st || !st->shape || !st->params) {
		mys_stmt_free(st);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	memcpy(st->shape, s->shape, len);
	st->shape_len = len;
	rc = stmt_build(s, t, &s->sql, st->params, &st->nparams, err);
	if (rc == PS_OK) {
		st->st = mysql_stmt_init(s->conn);
		if (!st->st)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (rc == PS_OK && mysql_stmt_prepare(st->st, s->sql.data, (unsigned long)s->sql.len) != 0) {
		char what[400];

		snprintf(what, sizeof(what), "preparing a statement for %s.%s", t->db, t->name);
		rc = mys_stmt_error(err, st->st, what);
	}
	if (rc != PS_OK) {
		mys_stmt_free(st);
		return rc;
	}
	st->next = t->stmts;
	t->stmts = st;
	t->nstmts++;
	*out = st;
	return PS_OK;
}

/* ==== binding and executing =============================================== */

void mys_bulk_free(mys_bulk *b)
{
	free(b->bind);
	free(b->isnull);
	free(b->ptr);
	free(b->len);
	free(b->ind);
	free(b->off);
	ps_buf_free(&b->arena);
	b->bind = NULL;
	b->isnull = NULL;
	b->ptr = NULL;
	b->len = NULL;
	b->ind = NULL;
	b->off = NULL;
	b->cap = 0;
	b->nbind = 0;
}

static int bulk_reserve(mys_bulk *b, int nparams, size_t entries, ps_error *err)
{
	if (nparams > b->nbind) {
		MYSQL_BIND *nb = realloc(b->bind, (size_t)nparams * sizeof(*nb));
		my_bool *nn = nb ? realloc(b->isnull, (size_t)nparams * sizeof(*nn)) : NULL;

		if (nb)
			b->bind = nb;
		if (!nn)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		b->isnull = nn;
		b->nbind = nparams;
	}
	if (entries > b->cap) {
		char **p = realloc(b->ptr, entries * sizeof(*p));
		unsigned long *l = p ? realloc(b->len, entries * sizeof(*l)) : NULL;
		char *ind = l ? realloc(b->ind, entries) : NULL;
		size_t *off = ind ? realloc(b->off, entries * sizeof(*off)) : NULL;

		if (p)
			b->ptr = p;
		if (l)
			b->len = l;
		if (ind)
			b->ind = ind;
		if (!off)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		b->off = off;
		b->cap = entries;
	}
	ps_buf_reset(&b->arena);
	return PS_OK;
}

/* "id=5, code=a" for messages: the target key of c's row, else its first columns. */
static void row_ident(const mys_table *t, const ps_change *c, char *buf, size_t len)
{
	const ps_value *v = c->new_values ? c->new_values : c->old_values;
	size_t used = 0;
	int n = t->nkey ? t->nkey : (t->ncols < 3 ? t->ncols : 3);

	buf[0] = '\0';
	for (int k = 0; v && k < n && used < len; k++) {
		int col = t->nkey ? t->key[k] : k;
		const ps_value *x = &v[col];

		used += (size_t)snprintf(buf + used, len - used, "%s%s=%.*s%s", k ? ", " : "",
		                         t->src->columns[col].name,
		                         x->kind == PS_VALUE_TEXT ? (int)(x->len < 60 ? x->len : 60) : 4,
		                         x->kind == PS_VALUE_TEXT ? x->data : "NULL",
		                         x->kind == PS_VALUE_TEXT && x->len > 60 ? "..." : "");
	}
}

int ps__mys_refuse_value(ps_error *err, const mys_table *t, const ps_change *c, int col,
                         const ps_value *v, const char *why);

/* Shared by the load: the refusal of a value (NOTES 4). */
int ps__mys_refuse_value(ps_error *err, const mys_table *t, const ps_change *c, int col,
                         const ps_value *v, const char *why)
{
	char row[300];

	row_ident(t, c, row, sizeof(row));
	ps_error_set(err, PS_EINVAL, "table %s.%s, column %s, row (%s): the value '%.60s%s' %s; "
	             "create the target column as a text type (VARCHAR, LONGTEXT) to keep such "
	             "values as the source spells them, or change them in the source", t->db,
	             t->name, t->src->columns[col].name, row, v->data, v->len > 60 ? "..." : "",
	             why);
	/* the target's types cannot hold the source's data: an operator's matter */
	return ps_error_set_engine(err, "", "", PS_ERRCLASS_SCHEMA);
}

/* The value of parameter p for change c (keys: keyv, nkey entries). */
static const ps_value *param_value(int p, const ps_change *c, const ps_value *const *keyv)
{
	int src = p & 3, index = p >> 2;

	if (src == MYS_FROM_NEW)
		return c->new_values ? &c->new_values[index] : NULL;
	if (src == MYS_FROM_OLD)
		return c->old_values ? &c->old_values[index] : NULL;
	return keyv[index];
}

/* The column a parameter writes or compares. */
static int param_column(const mys_table *t, int p)
{
	int src = p & 3, index = p >> 2;

	return src == MYS_FROM_KEY ? t->key[index] : index;
}

/* Binds st's parameters for n rows (cs[r], keys rowkeys[r * nkey ...]) and
 * executes; *affected gets the rows the server reports. */
static int exec_rows(ps_sink *s, mys_table *t, mys_stmt *st, const ps_change *const *cs,
                     size_t n, const ps_value *const *rowkeys, uint64_t *affected,
                     const char *what_op, ps_error *err)
{
	mys_bulk *b = &s->bulk_scratch;
	size_t np = (size_t)st->nparams;
	char what[400];
	int rc;

	*affected = 0;
	rc = bulk_reserve(b, st->nparams, np * n + 1, err);
	if (rc != PS_OK)
		return rc;
	/* Convert every value; bytes that are not the change's own go in the
	 * arena, whose address may move until the last one is in. */
	for (size_t r = 0; r < n; r++) {
		const ps_value *const *keyv = rowkeys ? rowkeys + r * (size_t)(t->nkey ? t->nkey : 1)
		                                      : NULL;

		for (size_t p = 0; p < np; p++) {
			size_t at = p * n + r;
			int col = param_column(t, st->params[p]);
			const ps_value *v = param_value(st->params[p], cs[r], keyv);
			const char *out, *why;
			size_t out_len;

			b->off[at] = (size_t)-1;
			if (!v || v->kind != PS_VALUE_TEXT) {
				if (v && v->kind == PS_VALUE_UNCHANGED)
					return ps_error_set(err, PS_EINVAL, "%s %s.%s: column %s has no value "
					                    "(unchanged)", what_op, t->db, t->name,
					                    t->src->columns[col].name);
				b->ind[at] = STMT_INDICATOR_NULL;
				b->ptr[at] = NULL;
				b->len[at] = 0;
				continue;
			}
			b->ind[at] = STMT_INDICATOR_NONE;
			if (t->col[col].conv == MYS_CONV_TEXT) {
				b->ptr[at] = (char *)v->data;
				b->len[at] = v->len;
				continue;
			}
			rc = ps_buf_reserve(&b->arena, ps__mys_scratch_len(v->len));
			if (rc != PS_OK)
				return ps_error_set(err, rc, "%s %s.%s: values too large", what_op, t->db,
				                    t->name);
			if (ps__mys_convert(&t->col[col], v->data, v->len, b->arena.data + b->arena.len,
			                    &out, &out_len, &why) != PS_OK)
				return ps__mys_refuse_value(err, t, cs[r], col, v, why);
			if (out == b->arena.data + b->arena.len) {
				b->off[at] = b->arena.len;
				b->arena.len += out_len;
			} else {
				b->ptr[at] = (char *)out;
			}
			b->len[at] = out_len;
		}
	}
	for (size_t at = 0; at < np * n; at++)
		if (b->off[at] != (size_t)-1)
			b->ptr[at] = b->arena.data + b->off[at];
	memset(b->bind, 0, np * sizeof(MYSQL_BIND));
	snprintf(what, sizeof(what), "%s %s.%s", what_op, t->db, t->name);
	for (size_t start = 0; start < n;) {
		/* one execution for every row where the server takes arrays, else
		 * one per row */
		size_t rows = s->bulk && n > 1 ? n : 1;
		unsigned int array = s->bulk && n > 1 ? (unsigned int)n : 0;

		for (size_t p = 0; p < np; p++) {
			MYSQL_BIND *bd = &b->bind[p];
			int col = param_column(t, st->params[p]);
			size_t at = p * n + start;

			bd->buffer_type = t->col[col].binary ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
			if (array) {
				bd->buffer = &b->ptr[at];
				bd->length = &b->len[at];
				bd->u.indicator = &b->ind[at];
				bd->is_null = NULL;
			} else {
				bd->buffer = b->ptr[at];
				bd->buffer_length = b->len[at];
				bd->length = &b->len[at];
				bd->u.indicator = NULL;
				b->isnull[p] = b->ind[at] == STMT_INDICATOR_NULL;
				bd->is_null = &b->isnull[p];
			}
		}
		if (mysql_stmt_attr_set(st->st, STMT_ATTR_ARRAY_SIZE, &array) != 0 ||
		    mysql_stmt_bind_param(st->st, b->bind) != 0 || mysql_stmt_execute(st->st) != 0)
			return mys_stmt_error(err, st->st, what);
		*affected += mysql_stmt_affected_rows(st->st);
		start += rows;
	}
	return PS_OK;
}

/* Whether row r of cs writes MariaDB's ENUM error value (NOTES 5). */
static bool needs_lax(const mys_table *t, const mys_stmt *st, const ps_change *c,
                      const ps_value *const *keyv)
{
	for (int p = 0; p < st->nparams; p++) {
		int col = param_column(t, st->params[p]);
		const ps_value *v = param_value(st->params[p], c, keyv);

		if (t->col[col].enum_error && v && v->kind == PS_VALUE_TEXT && v->len == 0)
			return true;
	}
	return false;
}

/* After a lax execution: every warning must be the ENUM error value going
 * in as it is ("Data truncated for column 'e'" on such a column); anything
 * else is a changed value, and fails. */
static int check_lax(ps_sink *s, const mys_table *t, MYSQL_STMT *st, const char *what,
                     ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc = PS_OK;

	if (mysql_stmt_warning_count(st) == 0)
		return PS_OK;
	rc = my_query(s->conn, "SHOW WARNINGS", &res, "reading a statement's warnings", err);
	while (rc == PS_OK && (row = mysql_fetch_row(res)) != NULL) {
		const char *msg = row[2] ? row[2] : "", *q = strstr(msg, "column '");
		bool ok = false;

		for (int i = 0; q && row[1] && strcmp(row[1], "1265") == 0 && i < t->ncols; i++) {
			size_t n = strlen(t->src->columns[i].name);

			ok |= t->col[i].enum_error && strncasecmp(q + 8, t->src->columns[i].name, n) == 0 &&
			      q[8 + n] == '\'';
		}
		if (!ok) {
			rc = ps_error_set(err, PS_ESERVER, "%s %s.%s: the server would have written a "
			                  "changed value: %s %s: %s", what, t->db, t->name,
			                  row[0] ? row[0] : "Warning", row[1] ? row[1] : "?", msg);
			ps_error_set_engine(err, MY_CODE_KIND, row[1] ? row[1] : "",
			                    my_errclass_of((unsigned)ps_leading_long(row[1])));
		}
	}
	mysql_free_result(res);
	return rc;
}

/* Fills s->shape's head, gets the statement and runs it for cs: rows that
 * write MariaDB's ENUM error value one by one through the lax variant, the
 * others together. */
static int exec_shape(ps_sink *s, mys_table *t, int kind, int extra, const ps_change *const *cs,
                      size_t n, const ps_value *const *rowkeys, uint64_t *affected,
                      ps_error *err)
{
	static const char *const whats[] = {"insert into", "update of", "delete from"};
	const char *what = kind == SH_INSERT || kind == SH_INSERT_ABSENT ? whats[0]
	                   : kind == SH_UPDATE_KEY || kind == SH_UPDATE_MATCH ? whats[1] : whats[2];
	size_t nk = (size_t)(t->nkey ? t->nkey : 1), start = 0;
	mys_stmt *st = NULL;
	uint64_t got = 0;
	bool any_enum = false;
	int rc;

	*affected = 0;
	s->shape[0] = (uint8_t)kind;
	s->shape[1] = (uint8_t)extra;
	rc = stmt_get(s, t, &st, err);
	for (int i = 0; i < t->ncols; i++)
		any_enum |= t->col[i].enum_error;
	for (size_t r = 0; rc == PS_OK && any_enum && r < n; r++) {
		const ps_value *const *keyv = rowkeys ? rowkeys + r * nk : NULL;
		mys_stmt *lax = NULL;

		if (!needs_lax(t, st, cs[r], keyv))
			continue;
		if (r > start)
			rc = exec_rows(s, t, st, cs + start, r - start, rowkeys ? rowkeys + start * nk
			               : NULL, &got, what, err);
		*affected += got;
		got = 0;
		s->shape[0] = (uint8_t)(kind | SH_LAX);
		if (rc == PS_OK)
			rc = stmt_get(s, t, &lax, err);
		if (rc == PS_OK)
			rc = exec_rows(s, t, lax, cs + r, 1, keyv, &got, what, err);
		if (rc == PS_OK)
			rc = check_lax(s, t, lax->st, what, err);
		*affected += got;
		got = 0;
		s->shape[0] = (uint8_t)kind;
		if (rc == PS_OK)
			rc = stmt_get(s, t, &st, err);       /* the cache may have moved it */
		start = r + 1;
	}
	if (rc == PS_OK && start < n)
		rc = exec_rows(s, t, st, cs + start, n - start, rowkeys ? rowkeys + start * nk : NULL,
		               &got, what, err);
	*affected += got;
	return rc;
}

/* ==== one change =========================================================== */

/* Per key column, the value that finds the row: the old row's when it
 * has one that means something, else the new row's. */
static int resolve_key(const mys_table *t, const ps_change *c, const ps_value **keyv,
                       ps_error *err)
{
	for (int k = 0; k < t->nkey; k++) {
		int col = t->key[k];
		const ps_value *v = NULL;

		if (c->old_values && c->old_values[col].kind == PS_VALUE_TEXT &&
		    (!c->old_is_key || c->table->columns[col].is_key))
			v = &c->old_values[col];
		if (!v && c->new_values && c->new_values[col].kind == PS_VALUE_TEXT)
			v = &c->new_values[col];
		if (!v)
			return ps_error_set(err, PS_EINVAL, "cannot find the row in %s.%s: the change "
			                    "has no value for primary key column %s", t->db, t->name,
			                    c->table->columns[col].name);
		keyv[k] = v;
	}
	return PS_OK;
}

/* The columns whose new value is known, into the shape's set mask. */
static int new_mask(ps_sink *s, const mys_table *t, const ps_change *c, bool *whole,
                    ps_error *err)
{
	uint8_t *mask = s->shape + SHAPE_HEAD;

	if (!c->new_values)
		return ps_error_set(err, PS_EINVAL, "%s of %s.%s without new values",
		                    c->op == PS_OP_INSERT ? "insert" : "update", t->db, t->name);
	if (whole)
		*whole = true;
	for (int i = 0; i < t->ncols; i++) {
		if (c->new_values[i].kind == PS_VALUE_UNCHANGED) {
			if (whole)
				*whole = false;
			continue;
		}
		bit_set(mask, i);
	}
	return PS_OK;
}

/* Match mask for tables without a key; *from says which row. */
static int match_mask(ps_sink *s, const mys_table *t, const ps_change *c, int *from,
                      ps_error *err)
{
	uint8_t *match = s->shape + SHAPE_HEAD + mask_bytes(t);
	const ps_value *v = c->old_values ? c->old_values : c->new_values;
	bool keys_only = c->old_values ? c->old_is_key : true;
	int n = 0;

	*from = c->old_values ? MYS_FROM_OLD : MYS_FROM_NEW;
	for (int i = 0; v && i < t->ncols; i++) {
		if (v[i].kind == PS_VALUE_UNCHANGED || (keys_only && !c->table->columns[i].is_key))
			continue;
		bit_set(match, i);
		n++;
	}
	if (n == 0)
		return ps_error_set(err, PS_EINVAL, "cannot find the row in %s.%s: the table has no "
		                    "primary key in the target and the change carries no old row "
		                    "(set REPLICA IDENTITY FULL on the source table, or add a "
		                    "primary key to both)", t->db, t->name);
	return PS_OK;
}

static int one(ps_sink *s, mys_table *t, int kind, int extra, const ps_change *c,
               uint64_t *affected, ps_error *err)
{
	const ps_change *cs[1] = {c};

	return exec_shape(s, t, kind, extra, cs, 1, s->keyv, affected, err);
}

/* NOTES 2: an insert or update while re-processing, on a keyed table. */
static int reprocess_upsert(ps_sink *s, mys_table *t, const ps_change *c, ps_error *err)
{
	bool whole = true, key_changes = false;
	uint64_t n = 0;
	int rc;

	if (!c->new_values)
		return new_mask(s, t, c, NULL, err);          /* says what is missing */
	rc = resolve_key(t, c, s->keyv, err);
	for (int k = 0; rc == PS_OK && k < t->nkey; k++) {
		const ps_value *nv = &c->new_values[t->key[k]];

		if (nv->kind != PS_VALUE_TEXT) {
			key_changes = false;
			break;
		}
		if (nv->len != s->keyv[k]->len || memcmp(nv->data, s->keyv[k]->data, nv->len) != 0)
			key_changes = true;
	}
	for (int u = key_changes ? 0 : 1; rc == PS_OK && u <= t->nuniq; u++) {
		bool known = true;

		for (int k = 0; u > 0 && k < t->uniq[u - 1].ncols; k++)
			known &= c->new_values[t->uniq[u - 1].cols[k]].kind != PS_VALUE_UNCHANGED;
		if (!known)
			continue;
		memset(s->shape, 0, shape_len(t));
		rc = one(s, t, SH_CLEAR_UNIQUE, u, c, &n, err);
	}
	memset(s->shape, 0, shape_len(t));
	if (rc == PS_OK)
		rc = new_mask(s, t, c, &whole, err);
	if (rc == PS_OK)
		rc = one(s, t, SH_UPDATE_KEY, 0, c, &n, err);
	if (rc == PS_OK && n == 0 && whole)
		rc = one(s, t, SH_INSERT, 0, c, &n, err);
	return rc;
}

static int apply_insert(ps_sink *s, mys_table *t, const ps_txn *txn, const ps_change *c,
                        ps_error *err)
{
	uint64_t n = 0;
	int rc;

	if (txn->reprocessing && t->nkey)
		return reprocess_upsert(s, t, c, err);
	rc = new_mask(s, t, c, NULL, err);
	if (rc == PS_OK)
		rc = one(s, t, txn->reprocessing ? SH_INSERT_ABSENT : SH_INSERT, 0, c, &n, err);
	return rc;
}

static int apply_update(ps_sink *s, mys_table *t, const ps_txn *txn, const ps_change *c,
                        ps_error *err)
{
	uint64_t n = 0;
	int from = 0;
	int rc;

	if (t->nkey == 0) {
		rc = match_mask(s, t, c, &from, err);
		if (rc == PS_OK)
			rc = new_mask(s, t, c, NULL, err);
		if (rc == PS_OK)
			rc = one(s, t, SH_UPDATE_MATCH, from, c, &n, err);
		if (rc == PS_OK && !txn->reprocessing && n == 0)
			mys_note_missing(s, PS_OP_UPDATE, c->table, 1);
		return rc;
	}
	if (txn->reprocessing)
		return reprocess_upsert(s, t, c, err);
	rc = resolve_key(t, c, s->keyv, err);
	if (rc == PS_OK)
		rc = new_mask(s, t, c, NULL, err);
	if (rc == PS_OK)
		rc = one(s, t, SH_UPDATE_KEY, 0, c, &n, err);
	if (rc == PS_OK && n == 0)
		mys_note_missing(s, PS_OP_UPDATE, c->table, 1);
	return rc;
}

static int apply_delete(ps_sink *s, mys_table *t, const ps_txn *txn, const ps_change *c,
                        ps_error *err)
{
	uint64_t n = 0;
	int from = 0;
	int rc;

	if (!c->old_values)
		return ps_error_set(err, PS_EINVAL, "delete from %s.%s without the old row or key",
		                    t->db, t->name);
	if (t->nkey == 0) {
		rc = match_mask(s, t, c, &from, err);
		if (rc == PS_OK)
			rc = one(s, t, SH_DELETE_MATCH, from, c, &n, err);
	} else {
		rc = resolve_key(t, c, s->keyv, err);
		if (rc == PS_OK)
			rc = one(s, t, SH_DELETE_KEY, 0, c, &n, err);
	}
	if (rc == PS_OK && !txn->reprocessing && n == 0)
		mys_note_missing(s, PS_OP_DELETE, c->table, 1);
	return rc;
}

int mys_apply_change(ps_sink *s, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	mys_table *t = NULL;
	int rc = mys_table_get(s, c->table, &t, err);

	if (rc == PS_OK)
		rc = ensure_scratch(s, t, err);
	if (rc != PS_OK)
		return rc;
	switch (c->op) {
	case PS_OP_INSERT:
		return apply_insert(s, t, txn, c, err);
	case PS_OP_UPDATE:
		return apply_update(s, t, txn, c, err);
	case PS_OP_DELETE:
		return apply_delete(s, t, txn, c, err);
	default:
		return ps_error_set(err, PS_EINVAL, "unknown change op '%c'", c->op);
	}
}

int mys_apply_truncate(ps_sink *s, const ps_change *c, ps_error *err)
{
	mys_table *t = NULL;
	char what[300];
	int rc = mys_table_get(s, c->table, &t, err);

	if (rc != PS_OK)
		return rc;
	/* DELETE, not TRUNCATE: TRUNCATE would commit the open transaction
	 * (mysink.c NOTES 4). */
	ps_buf_reset(&s->sql);
	rc = ps_buf_printf(&s->sql, "DELETE FROM %s", t->qname);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	snprintf(what, sizeof(what), "truncate (DELETE) of %s.%s", t->db, t->name);
	return mys_exec(s, s->sql.data, what, err);
}

/* ==== many changes at once ================================================ */

/* Runs the rows cs[0..n) of one shape (in s->shape) in slices of at most
 * MYS_BULK_ROWS rows and about s->bulk_bytes, adding up what the server
 * reports. rowkeys: nkey resolved key values per row, or NULL. */
static int exec_sliced(ps_sink *s, mys_table *t, int kind, const ps_change *const *cs,
                       size_t n, const ps_value **rowkeys, uint64_t *affected, ps_error *err)
{
	size_t nk = (size_t)(t->nkey ? t->nkey : 1);
	int rc = PS_OK;

	*affected = 0;
	for (size_t start = 0; start < n && rc == PS_OK;) {
		size_t rows = 0, bytes = 0;
		uint64_t got = 0;

		while (start + rows < n && rows < MYS_BULK_ROWS &&
		       (rows == 0 || bytes < s->bulk_bytes)) {
			bytes += cs[start + rows]->mem_size;
			rows++;
		}
		rc = exec_shape(s, t, kind, 0, cs + start, rows, rowkeys ? rowkeys + start * nk : NULL,
		                &got, err);
		*affected += got;
		start += rows;
	}
	return rc;
}

/* Resolved keys of n changes, nkey each (malloc'd into *out). */
static int resolve_keys(const mys_table *t, const ps_change *const *cs, size_t n,
                        const ps_value ***out, ps_error *err)
{
	const ps_value **k = calloc(n * (size_t)(t->nkey ? t->nkey : 1) + 1, sizeof(*k));
	int rc = PS_OK;

	*out = NULL;
	if (!k)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t r = 0; r < n && rc == PS_OK; r++)
		rc = resolve_key(t, cs[r], k + r * (size_t)t->nkey, err);
	if (rc != PS_OK) {
		free(k);
		return rc;
	}
	*out = k;
	return PS_OK;
}

/* Groups the changes by their set mask, in order of first appearance, and
 * runs each group with kind. */
static int by_mask(ps_sink *s, mys_table *t, int kind, const ps_change *const *cs, size_t n,
                   bool count_missing, ps_error *err)
{
	const ps_change **run = NULL;
	const ps_value **keys = NULL;
	uint8_t *mask = NULL, *done = NULL;
	size_t nb = mask_bytes(t);
	int rc = PS_OK;

	run = malloc((n + 1) * sizeof(*run));
	mask = malloc(nb + 1);
	done = calloc(n + 1, 1);
	if (!run || !mask || !done) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < n && rc == PS_OK; i++) {
		size_t m = 0;
		uint64_t got = 0;

		if (done[i])
			continue;
		memset(s->shape, 0, shape_len(t));
		rc = new_mask(s, t, cs[i], NULL, err);
		if (rc != PS_OK)
			break;
		memcpy(mask, s->shape + SHAPE_HEAD, nb);
		for (size_t j = i; j < n && rc == PS_OK; j++) {
			if (done[j])
				continue;
			memset(s->shape, 0, shape_len(t));
			rc = new_mask(s, t, cs[j], NULL, err);
			if (rc == PS_OK && memcmp(mask, s->shape + SHAPE_HEAD, nb) == 0) {
				run[m++] = cs[j];
				done[j] = 1;
			}
		}
		if (rc != PS_OK)
			break;
		memset(s->shape, 0, shape_len(t));
		memcpy(s->shape + SHAPE_HEAD, mask, nb);
		free(keys);
		keys = NULL;
		if (kind == SH_UPDATE_KEY)
			rc = resolve_keys(t, run, m, &keys, err);
		if (rc == PS_OK)
			rc = exec_sliced(s, t, kind, run, m, keys, &got, err);
		if (rc == PS_OK && count_missing && got < m)
			mys_note_missing(s, PS_OP_UPDATE, t->src, m - got);
	}
cleanup:
	free(keys);
	free(run);
	free(mask);
	free(done);
	return rc;
}

int mys_apply_inserts(ps_sink *s, const ps_change *const *cs, size_t n, ps_error *err)
{
	mys_table *t = NULL;
	int rc;

	if (n == 0)
		return PS_OK;
	rc = mys_table_get(s, cs[0]->table, &t, err);
	if (rc == PS_OK)
		rc = ensure_scratch(s, t, err);
	if (rc == PS_OK)
		rc = by_mask(s, t, SH_INSERT, cs, n, false, err);
	return rc;
}

int mys_apply_updates(ps_sink *s, const ps_change *const *cs, size_t n, ps_error *err)
{
	mys_table *t = NULL;
	int rc;

	if (n == 0)
		return PS_OK;
	rc = mys_table_get(s, cs[0]->table, &t, err);
	if (rc == PS_OK)
		rc = ensure_scratch(s, t, err);
	if (rc == PS_OK)
		rc = by_mask(s, t, SH_UPDATE_KEY, cs, n, true, err);
	return rc;
}

int mys_apply_deletes(ps_sink *s, const ps_change *const *cs, size_t n, bool by_new,
                      bool count_missing, ps_error *err)
{
	const ps_value **keys = NULL;
	mys_table *t = NULL;
	uint64_t got = 0;
	int rc;

	if (n == 0)
		return PS_OK;
	rc = mys_table_get(s, cs[0]->table, &t, err);
	if (rc == PS_OK)
		rc = ensure_scratch(s, t, err);
	if (rc == PS_OK && t->nkey == 0)
		rc = ps_error_set(err, PS_EINVAL, "bulk delete from %s.%s, which has no key", t->db,
		                  t->name);
	if (rc != PS_OK)
		return rc;
	keys = calloc(n * (size_t)t->nkey + 1, sizeof(*keys));
	if (!keys)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t r = 0; r < n && rc == PS_OK; r++) {
		if (by_new) {
			for (int k = 0; k < t->nkey; k++)
				keys[r * (size_t)t->nkey + (size_t)k] = &cs[r]->new_values[t->key[k]];
		} else {
			rc = resolve_key(t, cs[r], keys + r * (size_t)t->nkey, err);
		}
	}
	memset(s->shape, 0, shape_len(t));
	if (rc == PS_OK)
		rc = exec_sliced(s, t, SH_DELETE_KEY, cs, n, keys, &got, err);
	if (rc == PS_OK && count_missing && got < n)
		mys_note_missing(s, PS_OP_DELETE, t->src, n - got);
	free(keys);
	return rc;
}
