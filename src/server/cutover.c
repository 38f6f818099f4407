/*
 * cutover.c — the last steps of a migration's `complete`, after the
 * pipeline applied everything up to the fence and stopped (jobs.c drives
 * the states: completing ─► completed, or failed).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Sequences: the rows arrived, but a target sequence still stands where
 *    the target table was created. The source plugin lists the sequences
 *    the selected tables draw values from, with their values (source.h
 *    sequences), and the sink sets its own so that the first value after
 *    the cutover continues where the source stopped (sink.h sequences_set),
 *    in one target transaction. A sink without sequences says why the step
 *    does not apply; the source is then not asked.
 * 2. Like compare (src/compare), this step opens both ends itself: it runs
 *    once, outside the pipeline, and needs nothing of the plugins'
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
#include "core/plugin.h"
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

int ps_cutover_sequences(const ps_spec *spec, char *summary, size_t len, ps_error *err)
{
	ps_source_config scfg;
	ps_sink_config kcfg;
	const ps_source_ops *sops;
	const ps_sink_ops *kops;
	ps_src src;
	ps_snk snk;
	ps_sequence *seqs = NULL;
	size_t nseqs = 0;
	char *src_pw = NULL, *snk_pw = NULL, done[1024];
	int rc;

	summary[0] = '\0';
	memset(&src, 0, sizeof(src));
	memset(&snk, 0, sizeof(snk));
	sops = ps_plugin_source_for(spec->source.parsed.scheme_name, err);
	kops = sops ? ps_plugin_sink_for(spec->target.parsed.scheme_name, err) : NULL;
	rc = kops ? PS_OK : err->code;
	if (rc == PS_OK)
		rc = ps_spec_sink_config(spec, &kcfg, &snk_pw, err);
	if (rc == PS_OK)
		rc = ps_snk_open(&snk, kops, &kcfg, err);
	/* A target without sequences says so without asking the source. */
	if (rc == PS_OK && kops->sequences_set) {
		rc = ps_spec_source_config(spec, &scfg, &src_pw, err);
		if (rc == PS_OK)
			rc = ps_src_open(&src, sops, &scfg, err);
		if (rc == PS_OK)
			rc = ps_src_sequences(&src, &seqs, &nseqs, err);
	}
	if (rc == PS_OK)
		rc = ps_snk_sequences_set(&snk, seqs, nseqs, done, sizeof(done), err);
	if (rc == PS_OK)
		rc = ps_snk_flush(&snk, err);
	if (rc == PS_OK)
		snprintf(summary, len, "sequences: %s", done);
	ps_sequences_free(seqs, nseqs);
	ps_src_close(&src);
	ps_snk_close(&snk);
	ps_secret_free(src_pw);
	ps_secret_free(snk_pw);
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
