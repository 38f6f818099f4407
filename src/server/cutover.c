/*
 * cutover.c — the last steps of a migration's `complete`, after the
 * pipeline applied everything up to the fence and stopped (supervisor.c drives
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
 * 3. Table selection is the job's: the compare gets its include and exclude
 *    patterns and reads the tables through the source's compare side.
 * 4. Nothing here releases anything: supervisor.c releases what the job holds
 *    on the source and its checkpoint only after every step here succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare.h"
#include "core/plugin.h"
#include "server/server.h"
#include "util/buf.h"
#include "util/str.h"

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
	if (rc == PS_OK)   /* the application writes here next (sink.h, durability) */
		rc = ps_snk_make_durable(&snk, err);
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

int ps_cutover_compare(const ps_spec *spec, int mode, atomic_int *cancel, ps_compare_report *rep,
                       ps_error *err)
{
	ps_compare_opts o;
	char *src_pw = NULL, *dst_pw = NULL;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rc = ps_spec_password(&spec->source, "source", &src_pw, err);
	if (rc == PS_OK)
		rc = ps_spec_password(&spec->target, "target", &dst_pw, err);
	if (rc == PS_OK) {
		ps_compare_opts_defaults(&o);
		o.source_url = spec->source.url;
		o.source_password = src_pw;
		o.target_url = spec->target.url;
		o.target_password = dst_pw;
		o.tables = (const char *const *)spec->include;   /* the job's selection (note 3) */
		o.ntables = spec->ninclude;
		o.exclude = (const char *const *)spec->exclude;
		o.nexclude = spec->nexclude;
		o.mode = mode;
		o.job = NULL;           /* the pipeline stopped: nothing is in flight */
		o.cancel = cancel;
		rc = ps_compare_run(&o, rep, err);
		if (rc != PS_OK)
			ps_error_add_context(err, "compare");
	}
	ps_secret_free(src_pw);
	ps_secret_free(dst_pw);
	return rc;
}
