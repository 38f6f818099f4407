/*
 * cutover.c — the last steps of a migration's `complete`, after the
 * pipeline applied everything up to the fence and stopped (jobs.c drives
 * the states: completing ─► completed, or failed).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Sequences: the rows arrived, but a target sequence still stands where
 *    the target table was created. Every sequence owned by a selected table
 *    (a serial column's, pg_depend 'a', or an identity column's, 'i') is set
 *    on the target to the source's last_value and is_called, so the first
 *    nextval() after the cutover continues where the source stopped. The
 *    target's sequence is the one pg_get_serial_sequence names for the same
 *    table and column (the sink creates serial sequences under their source
 *    names and OWNED BY the column; identity columns have their own). A
 *    column whose target has no sequence is listed as skipped, not an error.
 *    Only PostgreSQL targets have sequences: for the others the step is
 *    reported as not applicable.
 * 2. Like compare (src/compare), this step reads both ends directly by URL:
 *    it runs once, outside the pipeline, and needs nothing of the plugins'
 *    streaming state.
 * 3. Table selection is the source plugin's: ordinary tables outside the
 *    system and penstock schemas whose "schema.table" matches an include
 *    pattern and no exclude pattern (fnmatch). The compare gets the selected
 *    tables by name (glob characters escaped), so exclusions hold.
 * 4. Nothing here releases anything: jobs.c releases slot, publication and
 *    checkpoint only after every step here succeeded.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare.h"
#include "server/server.h"
#include "util/buf.h"
#include "util/pgconn.h"
#include "util/str.h"

static bool matches_any(char **pats, size_t n, const char *qualified)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], qualified, 0) == 0)
			return true;
	return false;
}

static bool selected(const ps_spec *spec, const char *schema, const char *name)
{
	char qualified[300];

	snprintf(qualified, sizeof(qualified), "%s.%s", schema, name);
	return matches_any(spec->include, spec->ninclude, qualified) &&
	       !matches_any(spec->exclude, spec->nexclude, qualified);
}

static int connect_end(PGconn **conn, const ps_endpoint_spec *ep, const char *field,
                       ps_error *err)
{
	char *password = NULL;
	int rc = ps_spec_password(ep, field, &password, err);

	if (rc == PS_OK)
		rc = pg_connect(conn, ep->url, &ep->parsed, password, false, "penstock cutover", err);
	ps_secret_free(password);
	if (rc != PS_OK)
		ps_error_add_context(err, "%s %s", field, ep->parsed.redacted);
	return rc;
}

/* --- sequences (note 1) -------------------------------------------------- */

enum { Q_TSCHEMA, Q_TNAME, Q_COLUMN, Q_SSCHEMA, Q_SNAME };

static int owned_sequences(PGconn *src, PGresult **r, ps_error *err)
{
	return pg_exec(src, r, err, "listing the sequences the tables own",
	               "SELECT tn.nspname, t.relname, a.attname, sn.nspname, s.relname "
	               "FROM pg_depend d "
	               "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
	               "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
	               "JOIN pg_class t ON t.oid = d.refobjid AND t.relkind = 'r' "
	               "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
	               "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
	               "WHERE d.classid = 'pg_class'::regclass "
	               "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
	               "  AND tn.nspname NOT IN ('pg_catalog', 'information_schema', 'penstock') "
	               "  AND tn.nspname NOT LIKE 'pg\\_%' "
	               "ORDER BY 1, 2, 3", 0, NULL);
}

/* "schema"."name", quoted for the connection. */
static int qualified_name(PGconn *conn, ps_buf *b, const char *schema, const char *name)
{
	int rc = pg_quote_ident(conn, b, schema);

	if (rc == PS_OK)
		rc = ps_buf_putc(b, '.');
	return rc == PS_OK ? pg_quote_ident(conn, b, name) : rc;
}

/* Copies one sequence's state from src to dst; *target_seq receives the
 * target sequence's name ("" when the target column has none). */
static int sync_one(PGconn *src, PGconn *dst, const PGresult *seqs, int row, char *value,
                    size_t value_len, char *target_seq, size_t seq_len, ps_error *err)
{
	ps_buf sql, table;
	PGresult *r = NULL, *t = NULL;
	const char *params[3];
	int rc;

	target_seq[0] = '\0';
	ps_buf_init(&sql, 4096);
	ps_buf_init(&table, 2048);
	rc = ps_buf_puts(&sql, "SELECT last_value::text, CASE WHEN is_called THEN 'true' ELSE 'false' "
	                       "END FROM ");
	if (rc == PS_OK)
		rc = qualified_name(src, &sql, PQgetvalue(seqs, row, Q_SSCHEMA), PQgetvalue(seqs, row, Q_SNAME));
	if (rc == PS_OK)
		rc = qualified_name(dst, &table, PQgetvalue(seqs, row, Q_TSCHEMA),
		                    PQgetvalue(seqs, row, Q_TNAME));
	if (rc != PS_OK) {
		rc = ps_error_set(err, rc, "sequence name too long");
		goto cleanup;
	}
	rc = pg_exec(src, &r, err, "reading a sequence on the source", sql.data, 0, NULL);
	if (rc != PS_OK)
		goto cleanup;
	params[0] = table.data;
	params[1] = PQgetvalue(seqs, row, Q_COLUMN);
	rc = pg_exec(dst, &t, err, "finding the sequence on the target",
	             "SELECT pg_get_serial_sequence($1, $2)", 2, params);
	if (rc != PS_OK || PQgetisnull(t, 0, 0))
		goto cleanup;
	snprintf(target_seq, seq_len, "%s", PQgetvalue(t, 0, 0));
	snprintf(value, value_len, "%s", PQgetvalue(r, 0, 0));
	params[0] = target_seq;
	params[1] = PQgetvalue(r, 0, 0);
	params[2] = PQgetvalue(r, 0, 1);
	rc = pg_exec(dst, NULL, err, "setting the sequence on the target",
	             "SELECT setval($1::regclass, $2::bigint, $3::boolean)", 3, params);
cleanup:
	if (rc != PS_OK)
		ps_error_add_context(err, "sequence %s.%s of %s.%s.%s", PQgetvalue(seqs, row, Q_SSCHEMA),
		                     PQgetvalue(seqs, row, Q_SNAME), PQgetvalue(seqs, row, Q_TSCHEMA),
		                     PQgetvalue(seqs, row, Q_TNAME), PQgetvalue(seqs, row, Q_COLUMN));
	PQclear(r);
	PQclear(t);
	ps_buf_free(&sql);
	ps_buf_free(&table);
	return rc;
}

int ps_cutover_sequences(const ps_spec *spec, char *summary, size_t len, ps_error *err)
{
	PGconn *src = NULL, *dst = NULL;
	PGresult *seqs = NULL;
	ps_buf synced, skipped;
	int nsynced = 0, nskipped = 0, rc;

	summary[0] = '\0';
	ps_buf_init(&synced, len);
	ps_buf_init(&skipped, len);
	if (spec->target.parsed.scheme != PS_URL_POSTGRESQL) {
		snprintf(summary, len, "sequences: not applicable (a %s target has no sequences%s)",
		         spec->target.parsed.scheme_name,
		         spec->target.parsed.scheme == PS_URL_SQLITE
		         ? "; an INTEGER PRIMARY KEY takes the value after the largest by itself" : "");
		rc = PS_OK;
		goto cleanup;
	}
	rc = connect_end(&src, &spec->source, "source", err);
	if (rc == PS_OK)
		rc = connect_end(&dst, &spec->target, "target", err);
	if (rc == PS_OK)
		rc = owned_sequences(src, &seqs, err);
	for (int i = 0; rc == PS_OK && i < PQntuples(seqs); i++) {
		char value[64], target_seq[600];

		if (!selected(spec, PQgetvalue(seqs, i, Q_TSCHEMA), PQgetvalue(seqs, i, Q_TNAME)))
			continue;
		rc = sync_one(src, dst, seqs, i, value, sizeof(value), target_seq, sizeof(target_seq), err);
		if (rc != PS_OK)
			break;
		if (target_seq[0]) {
			ps_buf_printf(&synced, "%s%s = %s", nsynced ? ", " : "", target_seq, value);
			nsynced++;
		} else {
			ps_buf_printf(&skipped, "%s%s.%s.%s", nskipped ? ", " : "", PQgetvalue(seqs, i, Q_TSCHEMA),
			              PQgetvalue(seqs, i, Q_TNAME), PQgetvalue(seqs, i, Q_COLUMN));
			nskipped++;
		}
	}
	if (rc == PS_OK)
		snprintf(summary, len, "sequences: %d synced to the source's values%s%s%s%s%s", nsynced,
		         nsynced ? " (" : "", nsynced ? synced.data : "", nsynced ? ")" : "",
		         nskipped ? "; no sequence in the target for " : "", nskipped ? skipped.data : "");
cleanup:
	PQclear(seqs);
	if (src)
		PQfinish(src);
	if (dst)
		PQfinish(dst);
	ps_buf_free(&synced);
	ps_buf_free(&skipped);
	return rc;
}

/* --- compare -------------------------------------------------------------- */

/* "schema.table" with the glob characters escaped, so that compare's
 * patterns name exactly this table (note 3). */
static char *literal_pattern(const char *schema, const char *name)
{
	ps_buf b;
	const char *parts[2] = {schema, name};

	ps_buf_init(&b, 1024);
	for (int k = 0; k < 2; k++) {
		if (k)
			ps_buf_putc(&b, '.');
		for (const char *ch = parts[k]; *ch; ch++) {
			if (strchr("*?[]\\", *ch))
				ps_buf_putc(&b, '\\');
			ps_buf_putc(&b, *ch);
		}
	}
	return b.data ? ps_buf_detach(&b) : NULL;
}

static int selected_tables(const ps_spec *spec, char ***out, size_t *n, ps_error *err)
{
	PGconn *src = NULL;
	PGresult *r = NULL;
	char **list = NULL;
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = connect_end(&src, &spec->source, "source", err);
	if (rc == PS_OK)
		rc = pg_exec(src, &r, err, "listing tables",
		             "SELECT n.nspname, c.relname FROM pg_class c "
		             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
		             "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'penstock') "
		             "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2", 0, NULL);
	if (rc == PS_OK) {
		list = calloc((size_t)PQntuples(r) + 1, sizeof(char *));
		if (!list)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (int i = 0; rc == PS_OK && i < PQntuples(r); i++) {
		if (!selected(spec, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)))
			continue;
		list[count] = literal_pattern(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (!list[count])
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			count++;
	}
	PQclear(r);
	if (src)
		PQfinish(src);
	if (rc != PS_OK) {
		for (size_t i = 0; list && i < count; i++)
			free(list[i]);
		free(list);
		return rc;
	}
	*out = list;
	*n = count;
	return PS_OK;
}

int ps_cutover_compare(const ps_spec *spec, int mode, atomic_int *cancel, ps_compare_report *rep,
                       ps_error *err)
{
	ps_compare_opts o;
	char *src_pw = NULL, *dst_pw = NULL, **tables = NULL;
	size_t ntables = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rc = selected_tables(spec, &tables, &ntables, err);
	if (rc == PS_OK && ntables == 0)
		rc = ps_error_set(err, PS_EINVAL, "the job selects no table to compare");
	if (rc == PS_OK)
		rc = ps_spec_password(&spec->source, "source", &src_pw, err);
	if (rc == PS_OK)
		rc = ps_spec_password(&spec->target, "target", &dst_pw, err);
	if (rc == PS_OK) {
		ps_compare_opts_defaults(&o);
		o.source_url = spec->source.url;
		o.source_password = src_pw;
		o.target_url = spec->target.url;
		o.target_password = dst_pw;
		o.tables = (const char *const *)tables;
		o.ntables = ntables;
		o.mode = mode;
		o.job = NULL;           /* the pipeline stopped: nothing is in flight */
		o.cancel = cancel;
		rc = ps_compare_run(&o, rep, err);
		if (rc != PS_OK)
			ps_error_add_context(err, "compare");
	}
	ps_secret_free(src_pw);
	ps_secret_free(dst_pw);
	for (size_t i = 0; i < ntables; i++)
		free(tables[i]);
	free(tables);
	return rc;
}
