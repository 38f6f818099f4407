/*
 * pgsrc_sequences.c — the sequences a job's tables draw values from, with
 * their values now (source.h sequences), for the cutover to carry over.
 *
 * Every sequence owned by a selected table (a serial column's, pg_depend
 * 'a', or an identity column's, 'i') is listed with the table and column
 * that own it and its last_value / is_called, read one by one right after
 * the list (a sequence is not transactional: any later read is as good).
 * Selection is the source's: "schema.table" matching an include pattern and
 * no exclude pattern (fnmatch), outside the system and penstock schemas.
 */
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_internal.h"
#include "util/pgconn.h"

enum { Q_TSCHEMA, Q_TNAME, Q_COLUMN, Q_SSCHEMA, Q_SNAME };

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

int pg_sequences(ps_source *src, ps_sequence **out, size_t *nout, ps_error *err)
{
	PGresult *r = NULL;
	ps_sequence *seqs = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	rc = pg_exec(src->sql, &r, err, "listing the sequences the tables own",
	             "SELECT tn.nspname, t.relname, a.attname, sn.nspname, s.relname "
	             "FROM pg_depend d "
	             "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
	             "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
	             "JOIN pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p') "
	             "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
	             "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
	             "WHERE d.classid = 'pg_class'::regclass "
	             "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
	             "  AND tn.nspname NOT IN ('pg_catalog', 'information_schema', 'penstock') "
	             "  AND tn.nspname NOT LIKE 'pg\\_%' "
	             "ORDER BY 1, 2, 3", 0, NULL);
	if (rc != PS_OK)
		return rc;
	seqs = calloc((size_t)PQntuples(r) + 1, sizeof(*seqs));
	if (!seqs)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; rc == PS_OK && i < PQntuples(r); i++) {
		ps_sequence *q = &seqs[n];

		if (!pg_selected(src->include, src->ninclude, src->exclude, src->nexclude,
		                 PQgetvalue(r, i, Q_TSCHEMA), PQgetvalue(r, i, Q_TNAME)))
			continue;
		n++;
		q->table_schema = strdup(PQgetvalue(r, i, Q_TSCHEMA));
		q->table_name = strdup(PQgetvalue(r, i, Q_TNAME));
		q->column = strdup(PQgetvalue(r, i, Q_COLUMN));
		q->schema = strdup(PQgetvalue(r, i, Q_SSCHEMA));
		q->name = strdup(PQgetvalue(r, i, Q_SNAME));
		if (!q->table_schema || !q->table_name || !q->column || !q->schema || !q->name)
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
