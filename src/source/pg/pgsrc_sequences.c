/*
 * pgsrc_sequences.c — the sequences a job's tables draw values from, with
 * their values now (source.h sequences), for the cutover to carry over.
 *
 * The tables are selected as prepare selects them (pgsrc_select.c: a
 * partitioned table with its partitions); the sequences are those their
 * defaults and identity columns use (pgsrc_schema.c pg_sequences_used):
 * owned by a column (serial, pg_depend 'a'), made by one (identity, 'i'),
 * or only drawn from by a default — owned by another table or by none, and
 * shared by any number of tables, as in a schema restored from an old
 * dump. Each is listed with the column that owns it (NULL when none does)
 * and its last_value / is_called, read one by one right after the list (a
 * sequence is not transactional: any later read is as good).
 */
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_internal.h"
#include "util/pgconn.h"

/* last_value and is_called of one sequence into seq. */
static int read_value(ps_source *src, ps_sequence *seq, ps_error *err)
{
	PGresult *r = NULL;
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, 4096);
	ps_buf_puts(&sql, "SELECT last_value::text, is_called FROM ");
	pg_quote_ident(src->sql, &sql, seq->schema);
	ps_buf_putc(&sql, '.');
	rc = pg_quote_ident(src->sql, &sql, seq->name);
	if (rc != PS_OK) {
		ps_buf_free(&sql);
		return ps_error_set(err, rc, "sequence name too long");
	}
	rc = pg_exec(src->sql, &r, err, "reading a sequence", sql.data, 0, NULL);
	ps_buf_free(&sql);
	if (rc != PS_OK)
		return ps_error_add_context(err, "sequence %s.%s", seq->schema, seq->name);
	seq->last_value = strdup(PQgetvalue(r, 0, 0));
	seq->is_called = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	return seq->last_value ? PS_OK : ps_error_set(err, PS_ENOMEM, "out of memory");
}

static char *dup_or_null(const PGresult *r, int row, int col, int *rc)
{
	char *v;

	if (PQgetisnull(r, row, col))
		return NULL;
	v = strdup(PQgetvalue(r, row, col));
	if (!v)
		*rc = PS_ENOMEM;
	return v;
}

int pg_sequences(ps_source *src, ps_sequence **out, size_t *nout, ps_error *err)
{
	PGresult *r = NULL;
	ps_sequence *seqs = NULL;
	pg_selection sel;
	size_t n = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	rc = pg_select(src, src->include, src->ninclude, src->exclude, src->nexclude, &sel, err);
	if (rc == PS_OK)
		rc = pg_sequences_used(src->sql, sel.oids, sel.n, &r, err);
	pg_selection_free(&sel);
	if (rc != PS_OK)
		return rc;
	seqs = calloc((size_t)PQntuples(r) + 1, sizeof(*seqs));
	if (!seqs)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; rc == PS_OK && i < PQntuples(r); i++) {
		ps_sequence *q = &seqs[n++];
		bool owned = !PQgetisnull(r, i, PG_SEQ_COLUMN);

		q->schema = dup_or_null(r, i, PG_SEQ_SCHEMA, &rc);
		q->name = dup_or_null(r, i, PG_SEQ_NAME, &rc);
		if (owned) {
			q->table_schema = dup_or_null(r, i, PG_SEQ_TSCHEMA, &rc);
			q->table_name = dup_or_null(r, i, PG_SEQ_TNAME, &rc);
			q->column = dup_or_null(r, i, PG_SEQ_COLUMN, &rc);
		}
		if (rc != PS_OK)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = read_value(src, q, err);
	}
	PQclear(r);
	if (rc != PS_OK) {
		ps_sequences_free(seqs, n);
		return rc;
	}
	*out = seqs;
	*nout = n;
	return PS_OK;
}
