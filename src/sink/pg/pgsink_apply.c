/*
 * pgsink_apply.c — insert, update and delete on the target through prepared
 * statements sent in the pipeline (see pgsink.c NOTES 4-5).
 *
 * NOTES ON THE DESIGN
 *
 *  1. Statement shapes. The SQL of a change depends on its table, its op
 *     and which columns it carries, so a statement is prepared once per
 *     (table, shape) and kept in a most-recently-used list of at most
 *     PGS_STMTS_PER_TABLE, the oldest being DEALLOCATEd. A shape is
 *       [kind][match-from][set/insert mask][match mask]
 *     where the masks have one bit per source column.
 *       I  INSERT ... OVERRIDING SYSTEM VALUE VALUES (...)
 *       B  the same with n rows: VALUES (...), (...), ... (n in the
 *          match-from byte): the inserts pgsink_net.c holds, PGS_MULTI_ROWS
 *          at a time (a power of two below that for the rest)
 *       P  the same ... ON CONFLICT (key) DO UPDATE SET non-key = EXCLUDED..
 *          (DO NOTHING when every column is key): reprocessing, with a key
 *       M  WITH old AS (DELETE ... WHERE key = old key RETURNING *)
 *          INSERT ... SELECT $n, ..., (SELECT unchanged FROM old)
 *          ON CONFLICT (key) DO UPDATE ...: reprocessing, key changed; the
 *          row moves to its new key keeping its UNCHANGED columns whether
 *          the update was applied before (new key there) or not (old key)
 *       A  INSERT ... SELECT ... WHERE NOT EXISTS (an equal row):
 *          reprocessing, without a key
 *       U  UPDATE ... SET <mask> WHERE key = old key
 *       V  UPDATE ... SET <mask> WHERE ctid = (one row equal on <match>)
 *       D  DELETE ... WHERE key = old key
 *       E  DELETE ... WHERE ctid = (one row equal on <match>)
 *     OVERRIDING SYSTEM VALUE writes the source's value into GENERATED
 *     ALWAYS identity columns; PostgreSQL accepts it on tables without one.
 *  2. The old key: per key column, the old row's value when the change has
 *     one that means something (with old_is_key only the source's key
 *     columns do), else the new row's value. The new value of a key column
 *     is left out of SET when equal to the old one (keeps updates HOT).
 *  3. Tables without a primary key in the target are matched on the old
 *     row: every column it carries that means something (not UNCHANGED;
 *     with old_is_key only the source's key columns), NULL-safely and on
 *     the text form: "col"::text IS NOT DISTINCT FROM $n::<type>::text.
 *     Text, because json, point and others have no = operator; the
 *     parameter goes through the column's type and back so both sides are
 *     normalised alike (char(n) loses its padding in ::text on both sides).
 *     Exactly one row changes: ctid = (SELECT ctid ... LIMIT 1), with
 *     tableoid too on partitioned tables, where ctids repeat.
 *  4. Parameters are sent as text with types inferred by the server from
 *     the statement (or cast explicitly in A/V/E), so every type's input
 *     function reads the source's canonical text (pgsink.c NOTES 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/pgconn.h"

enum {
	SH_INSERT = 'I',
	SH_INSERT_MULTI = 'B',
	SH_UPSERT = 'P',
	SH_MOVE_UPSERT = 'M',
	SH_INSERT_ABSENT = 'A',
	SH_UPDATE_KEY = 'U',
	SH_UPDATE_MATCH = 'V',
	SH_DELETE_KEY = 'D',
	SH_DELETE_MATCH = 'E'
};

#define SHAPE_HEAD 2   /* kind, match-from */

static inline bool bit_get(const uint8_t *m, int i)
{
	return (m[i >> 3] >> (i & 7)) & 1;
}

static inline void bit_set(uint8_t *m, int i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* ==== statements ========================================================== */

void pgs_stmt_free(pgs_stmt *st)
{
	if (!st)
		return;
	free(st->shape);
	free(st->params);
	free(st);
}

/* Frees the server's copy of a prepared statement (pipelined). */
int pgs_stmt_deallocate(ps_sink *s, const pgs_stmt *st, ps_error *err)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
	return pgs_send_query(s, sql, 0, NULL, PGS_P_OTHER, NULL, "deallocating a statement", err);
}

/* ==== statement text ====================================================== */

/* Builds SQL and the parameter map side by side, with a sticky error. */
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

/* Appends "$n" for a new parameter taken from (src, index). */
static int put_param(build *bd, int src, int index)
{
	char tmp[16];

	bd->params[bd->np++] = PGS_PARAM(src, index);
	snprintf(tmp, sizeof(tmp), "$%d", bd->np);
	put(bd, tmp);
	return bd->np;
}

static void put_ref(build *bd, int n)
{
	char tmp[16];

	snprintf(tmp, sizeof(tmp), "$%d", n);
	put(bd, tmp);
}

static void put_list(build *bd, const pgs_table *t, const uint8_t *mask)
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

/* "col"::text IS NOT DISTINCT FROM $n::type::text for each column in mask
 * (NOTES 3); refs, when given, reuses parameter numbers per column. */
static void put_match(build *bd, const pgs_table *t, const uint8_t *mask, int from,
                      const int *refs)
{
	bool first = true;

	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : " AND ");
		put(bd, t->qcol[i]);
		put(bd, "::text IS NOT DISTINCT FROM ");
		if (refs)
			put_ref(bd, refs[i]);
		else
			put_param(bd, from, i);
		put(bd, "::");
		put(bd, t->coltype[i]);
		put(bd, "::text");
		first = false;
	}
}

/* WHERE k1 = $n::type AND ...: the cast (to the type without modifiers)
 * makes a composite key compare as its own type; left to infer, the
 * parameter of record = record would be an anonymous record, which has no
 * input function. */
static void put_key_where(build *bd, const pgs_table *t)
{
	for (int k = 0; k < t->nkey; k++) {
		put(bd, k ? " AND " : " WHERE ");
		put(bd, t->qcol[t->key[k]]);
		put(bd, " = ");
		put_param(bd, PGS_FROM_KEY, k);
		put(bd, "::");
		put(bd, t->basetype[t->key[k]]);
	}
}

/* WHERE ctid = (SELECT ctid FROM t WHERE <match> LIMIT 1) */
static void put_one_row_where(build *bd, const pgs_table *t, const uint8_t *mask, int from)
{
	bool part = t->relkind == 'p';

	put(bd, part ? " WHERE (tableoid, ctid) = (SELECT tableoid, ctid" : " WHERE ctid = (SELECT ctid");
	put(bd, " FROM ");
	put(bd, t->qname);
	put(bd, " WHERE ");
	put_match(bd, t, mask, from, NULL);
	put(bd, " LIMIT 1)");
}

static void put_set(build *bd, const pgs_table *t, const uint8_t *mask)
{
	bool first = true;

	put(bd, " SET ");
	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : ", ");
		put(bd, t->qcol[i]);
		put(bd, " = ");
		put_param(bd, PGS_FROM_NEW, i);
		first = false;
	}
	if (first) {            /* nothing to set: touch a column to count the row */
		int c = t->nkey ? t->key[0] : 0;

		put(bd, t->qcol[c]);
		put(bd, " = ");
		put(bd, t->qcol[c]);
	}
}

/* ON CONFLICT (key) DO UPDATE SET <non-key columns in mask> | DO NOTHING */
static void put_on_conflict(build *bd, const pgs_table *t, const uint8_t *mask)
{
	bool first = true;

	put(bd, " ON CONFLICT (");
	for (int k = 0; k < t->nkey; k++) {
		put(bd, k ? ", " : "");
		put(bd, t->qcol[t->key[k]]);
	}
	put(bd, ") DO ");
	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i) || t->is_pk[i])
			continue;
		put(bd, first ? "UPDATE SET " : ", ");
		put(bd, t->qcol[i]);
		put(bd, " = EXCLUDED.");
		put(bd, t->qcol[i]);
		first = false;
	}
	if (first)
		put(bd, "NOTHING");
}

static void build_insert(build *bd, const pgs_table *t, int kind, const uint8_t *mask)
{
	bool first = true;

	put(bd, "INSERT INTO ");
	put(bd, t->qname);
	put(bd, " (");
	put_list(bd, t, mask);
	put(bd, ") OVERRIDING SYSTEM VALUE VALUES (");
	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : ", ");
		put_param(bd, PGS_FROM_NEW, i);
		first = false;
	}
	put(bd, ")");
	if (kind == SH_UPSERT)
		put_on_conflict(bd, t, mask);
}

/* INSERT ... VALUES ($1, ..), ($m+1, ..), ... for nrows rows; the
 * parameters are row by row, the mask's columns in order (no params map). */
static void build_insert_multi(build *bd, const pgs_table *t, const uint8_t *mask, int nrows)
{
	int n = 0;

	put(bd, "INSERT INTO ");
	put(bd, t->qname);
	put(bd, " (");
	put_list(bd, t, mask);
	put(bd, ") OVERRIDING SYSTEM VALUE VALUES ");
	for (int r = 0; r < nrows; r++) {
		bool first = true;

		put(bd, r ? ", (" : "(");
		for (int i = 0; i < t->ncols; i++) {
			if (!bit_get(mask, i))
				continue;
			put(bd, first ? "" : ", ");
			put_ref(bd, ++n);
			first = false;
		}
		put(bd, ")");
	}
	bd->np = n;
}

/* WITH old AS (DELETE ... old key RETURNING *) INSERT ... ON CONFLICT. */
static void build_move_upsert(build *bd, const pgs_table *t, const uint8_t *mask)
{
	bool first = true;

	put(bd, "WITH old AS (DELETE FROM ");
	put(bd, t->qname);
	put_key_where(bd, t);
	put(bd, " RETURNING *) INSERT INTO ");
	put(bd, t->qname);
	put(bd, " (");
	for (int i = 0; i < t->ncols; i++) {
		put(bd, i ? ", " : "");
		put(bd, t->qcol[i]);
	}
	put(bd, ") OVERRIDING SYSTEM VALUE SELECT ");
	for (int i = 0; i < t->ncols; i++) {
		put(bd, first ? "" : ", ");
		first = false;
		if (!bit_get(mask, i)) {
			put(bd, "(SELECT ");
			put(bd, t->qcol[i]);
			put(bd, " FROM old)");
			continue;
		}
		put_param(bd, PGS_FROM_NEW, i);
		put(bd, "::");
		put(bd, t->coltype[i]);
	}
	put_on_conflict(bd, t, mask);
}

/* INSERT ... SELECT $1::type, ... WHERE NOT EXISTS (an equal row). */
static void build_insert_absent(build *bd, const pgs_table *t, const uint8_t *mask, int *refs)
{
	bool first = true;

	put(bd, "INSERT INTO ");
	put(bd, t->qname);
	put(bd, " (");
	put_list(bd, t, mask);
	put(bd, ") OVERRIDING SYSTEM VALUE SELECT ");
	for (int i = 0; i < t->ncols; i++) {
		if (!bit_get(mask, i))
			continue;
		put(bd, first ? "" : ", ");
		refs[i] = put_param(bd, PGS_FROM_NEW, i);
		put(bd, "::");
		put(bd, t->coltype[i]);
		first = false;
	}
	put(bd, " WHERE NOT EXISTS (SELECT 1 FROM ");
	put(bd, t->qname);
	put(bd, " WHERE ");
	put_match(bd, t, mask, PGS_FROM_NEW, refs);
	put(bd, ")");
}

/* Builds the statement of shape s->shape for t. */
static int stmt_build(ps_sink *s, const pgs_table *t, size_t shape_len, pgs_stmt **out,
                      ps_error *err)
{
	size_t nbytes = ((size_t)t->ncols + 7) / 8;
	const uint8_t *mask = s->shape + SHAPE_HEAD;
	const uint8_t *match = mask + nbytes;
	int kind = s->shape[0], from = s->shape[1];
	pgs_stmt *st = calloc(1, sizeof(*st));
	int *refs = calloc((size_t)t->ncols + 1, sizeof(int));
	build bd = {&s->sql, PS_OK, 0, NULL};
	int rc = PS_OK;

	*out = NULL;
	if (st) {
		st->shape = malloc(shape_len);
		st->params = calloc(2 * (size_t)t->ncols + (size_t)t->nkey + 1, sizeof(int));
	}
	if (!st || !refs || !st->shape || !st->params) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	memcpy(st->shape, s->shape, shape_len);
	st->shape_len = shape_len;
	bd.params = st->params;
	ps_buf_reset(&s->sql);
	switch (kind) {
	case SH_INSERT:
	case SH_UPSERT:
		build_insert(&bd, t, kind, mask);
		break;
	case SH_INSERT_MULTI:
		build_insert_multi(&bd, t, mask, from);
		break;
	case SH_MOVE_UPSERT:
		build_move_upsert(&bd, t, mask);
		break;
	case SH_INSERT_ABSENT:
		build_insert_absent(&bd, t, mask, refs);
		break;
	case SH_UPDATE_KEY:
	case SH_UPDATE_MATCH:
		put(&bd, "UPDATE ");
		put(&bd, t->qname);
		put_set(&bd, t, mask);
		if (kind == SH_UPDATE_KEY)
			put_key_where(&bd, t);
		else
			put_one_row_where(&bd, t, match, from);
		break;
	default:
		put(&bd, "DELETE FROM ");
		put(&bd, t->qname);
		if (kind == SH_DELETE_KEY)
			put_key_where(&bd, t);
		else
			put_one_row_where(&bd, t, match, from);
		break;
	}
	if (bd.rc != PS_OK) {
		rc = ps_error_set(err, bd.rc, "statement for %s.%s is too long", t->src->schema,
		                  t->src->name);
		goto cleanup;
	}
	st->nparams = bd.np;
	snprintf(st->name, sizeof(st->name), "ps_%llu", (unsigned long long)++s->stmt_seq);
	*out = st;
	st = NULL;
cleanup:
	pgs_stmt_free(st);
	free(refs);
	return rc;
}

/* ==== executing =========================================================== */

static int ensure_scratch(ps_sink *s, const pgs_table *t, ps_error *err)
{
	int need = 2 * t->ncols + t->nkey + 1;
	size_t shape_need = SHAPE_HEAD + 2 * (((size_t)t->ncols + 7) / 8);

	if (need > s->values_cap || need > s->keyv_cap) {
		const char **v = realloc(s->values, (size_t)need * sizeof(*v));
		const ps_value **k;

		if (!v)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->values = v;
		k = realloc(s->keyv, (size_t)need * sizeof(*k));
		if (!k)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->keyv = k;
		s->values_cap = need;
		s->keyv_cap = need;
	}
	if (shape_need > s->shape_cap) {
		uint8_t *sh = realloc(s->shape, shape_need);

		if (!sh)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->shape = sh;
		s->shape_cap = shape_need;
	}
	memset(s->shape, 0, shape_need);
	return PS_OK;
}

/* The statement of the shape in s->shape: cached, or built and prepared. */
static int stmt_get(ps_sink *s, pgs_table *t, const ps_change *c, pgs_stmt **out,
                    ps_error *err)
{
	size_t len = SHAPE_HEAD + 2 * (((size_t)t->ncols + 7) / 8);
	pgs_stmt *st, *prev = NULL;
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
	if (t->nstmts >= PGS_STMTS_PER_TABLE) {           /* drop the oldest */
		pgs_stmt **pp = &t->stmts;

		while ((*pp)->next)
			pp = &(*pp)->next;
		st = *pp;
		*pp = NULL;
		t->nstmts--;
		rc = pgs_stmt_deallocate(s, st, err);
		pgs_stmt_free(st);
		if (rc != PS_OK)
			return rc;
	}
	rc = stmt_build(s, t, len, &st, err);
	if (rc == PS_OK)
		rc = pgs_pipeline_ready(s, err);
	if (rc == PS_OK && PQsendPrepare(s->conn, st->name, s->sql.data, 0, NULL) != 1)
		rc = pg_result_error(err, s->conn, NULL, "preparing a statement");
	if (rc != PS_OK) {
		pgs_stmt_free(st);
		return rc;
	}
	pgs_pending_push(s, PGS_P_PREPARE, 0, false, c->table, "preparing a statement for");
	st->next = t->stmts;
	t->stmts = st;
	t->nstmts++;
	*out = st;
	return PS_OK;
}

static const char *op_what(int kind)
{
	switch (kind) {
	case SH_INSERT:
	case SH_INSERT_MULTI: return "insert into";
	case SH_UPSERT:
	case SH_MOVE_UPSERT:
	case SH_INSERT_ABSENT: return "upsert into";
	case SH_UPDATE_KEY:
	case SH_UPDATE_MATCH: return "update of";
	default: return "delete from";
	}
}

/* Fills s->shape's head, gets its statement and sends it with c's values. */
static int exec_shape(ps_sink *s, pgs_table *t, const ps_change *c, int kind, int from,
                      bool count_missing, ps_error *err)
{
	pgs_stmt *st = NULL;
	int rc;

	s->shape[0] = (uint8_t)kind;
	s->shape[1] = (uint8_t)from;
	rc = stmt_get(s, t, c, &st, err);
	if (rc != PS_OK)
		return rc;
	for (int i = 0; i < st->nparams; i++) {
		int src = st->params[i] & 3, index = st->params[i] >> 2;
		const ps_value *v = src == PGS_FROM_NEW ? &c->new_values[index]
		                  : src == PGS_FROM_OLD ? &c->old_values[index] : s->keyv[index];

		s->values[i] = v->kind == PS_VALUE_TEXT ? v->data : NULL;
	}
	rc = pgs_pipeline_ready(s, err);
	if (rc != PS_OK)
		return rc;
	if (PQsendQueryPrepared(s->conn, st->name, st->nparams, s->values, NULL, NULL, 0) != 1)
		return pg_result_error(err, s->conn, NULL, op_what(kind));
	pgs_pending_push(s, PGS_P_CHANGE, c->op, count_missing, c->table, op_what(kind));
	return PS_OK;
}

/* Per key column, the value that finds the row (NOTES 2) into s->keyv. */
static int resolve_key(ps_sink *s, const pgs_table *t, const ps_change *c, ps_error *err)
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
			                    "has no value for primary key column %s",
			                    c->table->schema, c->table->name, c->table->columns[col].name);
		s->keyv[k] = v;
	}
	return PS_OK;
}

static bool same_text(const ps_value *a, const ps_value *b)
{
	return a->kind == PS_VALUE_TEXT && b->kind == PS_VALUE_TEXT && a->len == b->len &&
	       memcmp(a->data, b->data, a->len) == 0;
}

static bool key_changed(const ps_sink *s, const pgs_table *t, const ps_change *c)
{
	for (int k = 0; k < t->nkey; k++)
		if (!same_text(s->keyv[k], &c->new_values[t->key[k]]))
			return true;
	return false;
}

/* Set/insert mask: the columns whose new value is known. With skip_same_key,
 * key columns whose value stays the same are left out (NOTES 2). */
static int new_mask(ps_sink *s, const pgs_table *t, const ps_change *c, bool skip_same_key,
                    ps_error *err)
{
	uint8_t *mask = s->shape + SHAPE_HEAD;
	int k = 0;

	if (!c->new_values)
		return ps_error_set(err, PS_EINVAL, "%s of %s.%s without new values",
		                    c->op == PS_OP_INSERT ? "insert" : "update",
		                    c->table->schema, c->table->name);
	for (int i = 0; i < t->ncols; i++) {
		if (c->new_values[i].kind == PS_VALUE_UNCHANGED)
			continue;
		if (skip_same_key && t->is_pk[i]) {
			for (k = 0; k < t->nkey && t->key[k] != i; k++)
				;
			if (k < t->nkey && same_text(s->keyv[k], &c->new_values[i]))
				continue;
		}
		bit_set(mask, i);
	}
	return PS_OK;
}

/* Match mask for tables without a key (NOTES 3); *from says which row. */
static int match_mask(ps_sink *s, const pgs_table *t, const ps_change *c, int *from,
                      ps_error *err)
{
	uint8_t *match = s->shape + SHAPE_HEAD + ((size_t)t->ncols + 7) / 8;
	const ps_value *v = c->old_values ? c->old_values : c->new_values;
	bool keys_only = c->old_values ? c->old_is_key : true;
	int n = 0;

	*from = c->old_values ? PGS_FROM_OLD : PGS_FROM_NEW;
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
		                    "primary key to both)", c->table->schema, c->table->name);
	return PS_OK;
}

static int apply_insert(ps_sink *s, pgs_table *t, const ps_txn *txn, const ps_change *c,
                        ps_error *err)
{
	int kind = !txn->reprocessing ? SH_INSERT : t->nkey ? SH_UPSERT : SH_INSERT_ABSENT;
	int rc = new_mask(s, t, c, false, err);

	if (rc == PS_OK && kind == SH_UPSERT)
		rc = resolve_key(s, t, c, err);       /* the new key must be known */
	if (rc != PS_OK)
		return rc;
	return exec_shape(s, t, c, kind, 0, false, err);
}

static int apply_update(ps_sink *s, pgs_table *t, const ps_txn *txn, const ps_change *c,
                        ps_error *err)
{
	bool new_key_known = true;
	int from = 0;
	int rc;

	if (!c->new_values)
		return new_mask(s, t, c, false, err);
	if (t->nkey == 0) {
		rc = match_mask(s, t, c, &from, err);
		if (rc == PS_OK)
			rc = new_mask(s, t, c, false, err);
		if (rc == PS_OK)
			rc = exec_shape(s, t, c, SH_UPDATE_MATCH, from, !txn->reprocessing, err);
		return rc;
	}
	rc = resolve_key(s, t, c, err);
	if (rc != PS_OK)
		return rc;
	for (int k = 0; k < t->nkey; k++)
		if (c->new_values[t->key[k]].kind != PS_VALUE_TEXT)
			new_key_known = false;
	/* A new row with unchanged (unsent TOAST) columns is not a whole row: an
	 * upsert would insert it without them, or fail a NOT NULL before its
	 * ON CONFLICT is considered. Reprocessing, it updates the row if there
	 * is one; a row not there yet comes whole from the copy that holds it. */
	if (txn->reprocessing)
		for (int i = 0; i < c->table->ncolumns && new_key_known; i++)
			if (c->new_values[i].kind == PS_VALUE_UNCHANGED)
				new_key_known = false;
	if (!txn->reprocessing || !new_key_known) {
		rc = new_mask(s, t, c, true, err);
		if (rc == PS_OK)
			rc = exec_shape(s, t, c, SH_UPDATE_KEY, 0, !txn->reprocessing, err);
		return rc;
	}
	/* Reprocessing: an upsert of the new row; the old key's row, if still
	 * there, moves to the new key (NOTES 1, M). */
	rc = new_mask(s, t, c, false, err);
	if (rc == PS_OK)
		rc = exec_shape(s, t, c, key_changed(s, t, c) ? SH_MOVE_UPSERT : SH_UPSERT, 0,
		                false, err);
	return rc;
}

static int apply_delete(ps_sink *s, pgs_table *t, const ps_txn *txn, const ps_change *c,
                        ps_error *err)
{
	int from = 0;
	int rc;

	if (!c->old_values)
		return ps_error_set(err, PS_EINVAL, "delete from %s.%s without the old row or key",
		                    c->table->schema, c->table->name);
	if (t->nkey == 0) {
		rc = match_mask(s, t, c, &from, err);
		if (rc == PS_OK)
			rc = exec_shape(s, t, c, SH_DELETE_MATCH, from, !txn->reprocessing, err);
		return rc;
	}
	rc = resolve_key(s, t, c, err);
	if (rc == PS_OK)
		rc = exec_shape(s, t, c, SH_DELETE_KEY, 0, !txn->reprocessing, err);
	return rc;
}

/* Sends one B statement for the n inserts in cs (their masks are equal and
 * in s->shape). */
static int exec_multi(ps_sink *s, pgs_table *t, const ps_change *const *cs, int n,
                      ps_error *err)
{
	const uint8_t *mask = s->shape + SHAPE_HEAD;
	pgs_stmt *st = NULL;
	int m = 0, k = 0;
	int rc;

	for (int i = 0; i < t->ncols; i++)
		m += bit_get(mask, i);
	if ((size_t)n * (size_t)m > (size_t)s->values_cap) {
		const char **v = realloc(s->values, (size_t)n * (size_t)m * sizeof(*v));

		if (!v)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		s->values = v;
		s->values_cap = n * m;
	}
	s->shape[0] = SH_INSERT_MULTI;
	s->shape[1] = (uint8_t)n;
	rc = stmt_get(s, t, cs[0], &st, err);
	if (rc != PS_OK)
		return rc;
	for (int r = 0; r < n; r++)
		for (int i = 0; i < t->ncols; i++)
			if (bit_get(mask, i))
				s->values[k++] = cs[r]->new_values[i].kind == PS_VALUE_TEXT
				                 ? cs[r]->new_values[i].data : NULL;
	rc = pgs_pipeline_ready(s, err);
	if (rc != PS_OK)
		return rc;
	if (PQsendQueryPrepared(s->conn, st->name, st->nparams, s->values, NULL, NULL, 0) != 1)
		return pg_result_error(err, s->conn, NULL, "insert into");
	pgs_pending_push(s, PGS_P_CHANGE, PS_OP_INSERT, false, cs[0]->table, "insert into");
	return PS_OK;
}

/* Applies the run cs[0..n) of inserts that share s->shape's mask: as many
 * rows per statement as fit, then powers of two, then one by one. */
static int insert_run(ps_sink *s, pgs_table *t, const ps_change *const *cs, int n, int most,
                      ps_error *err)
{
	int rc = PS_OK;

	while (n > 1 && rc == PS_OK) {
		int r = most;

		while (r > n)
			r /= 2;
		if (r < 2)
			break;
		rc = exec_multi(s, t, cs, r, err);
		cs += r;
		n -= r;
	}
	for (int i = 0; i < n && rc == PS_OK; i++)
		rc = pgs_apply_change(s, &(ps_txn){0}, cs[i], err);
	return rc;
}

int pgs_apply_inserts(ps_sink *s, const ps_change *const *cs, int n, ps_error *err)
{
	pgs_table *t = NULL;
	size_t nbytes;
	uint8_t *run_mask = NULL;
	int most, start = 0;
	int rc;

	if (n == 0)
		return PS_OK;
	rc = pgs_table_get(s, cs[0]->table, &t, err);
	if (rc == PS_OK)
		rc = ensure_scratch(s, t, err);
	if (rc != PS_OK)
		return rc;
	nbytes = ((size_t)t->ncols + 7) / 8;
	/* 65535 parameters at most per statement; a power of two of rows */
	most = PGS_MULTI_ROWS;
	while (most > 1 && (size_t)most * (size_t)t->ncols > 65535)
		most /= 2;
	run_mask = calloc(nbytes + 1, 1);
	if (!run_mask)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; i <= n && rc == PS_OK; i++) {
		if (i < n) {
			memset(s->shape, 0, SHAPE_HEAD + 2 * nbytes);
			rc = new_mask(s, t, cs[i], false, err);
			if (rc != PS_OK)
				break;
			if (i == start) {
				memcpy(run_mask, s->shape + SHAPE_HEAD, nbytes);
				continue;
			}
			if (memcmp(run_mask, s->shape + SHAPE_HEAD, nbytes) == 0)
				continue;
		}
		/* the run [start, i) ends */
		memset(s->shape, 0, SHAPE_HEAD + 2 * nbytes);
		memcpy(s->shape + SHAPE_HEAD, run_mask, nbytes);
		rc = insert_run(s, t, cs + start, i - start, most, err);
		if (rc == PS_OK && i < n) {
			memset(s->shape, 0, SHAPE_HEAD + 2 * nbytes);
			rc = new_mask(s, t, cs[i], false, err);
			memcpy(run_mask, s->shape + SHAPE_HEAD, nbytes);
		}
		start = i;
	}
	free(run_mask);
	return rc;
}

int pgs_apply_change(ps_sink *s, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	pgs_table *t = NULL;
	int rc = pgs_table_get(s, c->table, &t, err);

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
