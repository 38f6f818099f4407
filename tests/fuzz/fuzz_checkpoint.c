/*
 * fuzz_checkpoint.c — libFuzzer entry point for the checkpoint reader
 * (ps_checkpoint_from_text, src/core/checkpoint.c): the text of a
 * checkpoint as it comes from <state-dir>/jobs/<job>/checkpoint.json or from
 * the checkpoint row of a PostgreSQL or SQLite target, then what a run does
 * with it before it touches a server: the identity check, the CDC marker's
 * transitions, whether only the tables changed (core/backfill.c), and
 * writing it back.
 *
 * Input: the checkpoint's text (cut at the first NUL, as a file read into a
 * C string is).
 *
 * What must hold, besides no crash, sanitizer report or leak:
 *   - a refused checkpoint is PS_ECHECKPOINT (or PS_ENOMEM) with a one-line
 *     message naming where it came from, and nothing to free;
 *   - an accepted one has its CDC marker in range, and for each table of the
 *     initial load one unit more than key bounds, or one unit per partition;
 *   - written back (ps_checkpoint_to_text) and read again, it is the same
 *     checkpoint, field by field (updated_at aside: writing stamps it; and a
 *     range without its end is not written, as the pipeline never makes one);
 *     the spec object is kept as it came, with what core/backfill.c keeps
 *     in it (issue 15: "tables_in_force", and "backfill", the unfinished
 *     backfills with their last key), which the next run reads;
 *   - that spec, read as a resuming run reads it (ps_backfill_begin) against
 *     a fixed selection of three tables (one key column, two, none; an
 *     in-process catalogue, no server), is either refused with a one-line
 *     PS_ECHECKPOINT (or PS_EINVAL: a backfill of the table without a key)
 *     or taken, and then the spec the run keeps names exactly the tables of
 *     that selection in force;
 *   - its position, read as a MariaDB source reads one (my_pos_parse: it is
 *     also what recover and --until take), is refused on one line, or is a
 *     file offset a binlog can have (4 bytes: the dump request's width) and,
 *     formatted and read again, the same position; its GTID list likewise.
 *
 * Seeds: tests/fuzz/corpus/checkpoint/ (make_corpus_text.py: checkpoints
 * of real runs against PostgreSQL 15 — JSON lines and SQLite targets, a
 * load cut short mid-table, a bounded run, the tables in force, and a
 * backfill under way derived from them — and the unit tests').
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/backfill.h"
#include "core/checkpoint.h"
#include "core/pipeline.h"
#include "core/plugin.h"
#include "core/spec.h"
#include "source/mysql/my_internal.h"
#include "util/log.h"

#define ORIGIN "of job 'fuzz' in the target"

/* --- a resuming run's reading of the spec the checkpoint keeps ----------- */

/* The selection the run finds: public.orders (key id), sales.lines (key
 * order_id, line), public.nokey (no key). */
static const struct {
	const char *schema, *name;
	int nkeys;
} fixed[] = {{"public", "orders", 1}, {"sales", "lines", 2}, {"public", "nokey", 0}};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

static int fixed_describe(ps_source *src, ps_table_def ***defs, size_t *n, ps_error *err)
{
	(void)src;
	*defs = calloc(NFIXED, sizeof(ps_table_def *));
	if (!*defs)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t i = 0; i < NFIXED; i++) {
		int ncols = fixed[i].nkeys ? fixed[i].nkeys + 1 : 2;
		ps_table_def *d = calloc(1, sizeof(*d));

		if (!d)
			abort();
		d->table = ps_table_new((uint32_t)(100 + i), ncols);
		if (!d->table || ps_table_set_names(d->table, fixed[i].schema, fixed[i].name) != PS_OK)
			abort();
		d->engine = strdup("postgresql");
		d->columns = calloc((size_t)ncols, sizeof(ps_column_def));
		for (int c = 0; c < ncols; c++) {
			char col[16];
			snprintf(col, sizeof(col), "c%d", c);
			if (ps_table_set_column(d->table, c, col, 23, -1, PS_TYPE_INTEGER,
			                        c < fixed[i].nkeys) != PS_OK)
				abort();
			d->table->columns[c].is_key = c < fixed[i].nkeys;
			d->columns[c].sql_type = strdup("integer");
			d->columns[c].ordinal = c + 1;
		}
		if (fixed[i].nkeys) {
			d->constraints = calloc(1, sizeof(ps_constraint_def));
			d->nconstraints = 1;
			d->constraints[0].kind = PS_CONSTRAINT_PRIMARY;
			d->constraints[0].name = strdup("pk");
			d->constraints[0].cols = calloc((size_t)fixed[i].nkeys, sizeof(int));
			for (int c = 0; c < fixed[i].nkeys; c++)
				d->constraints[0].cols[c] = c;
			d->constraints[0].ncols = fixed[i].nkeys;
			d->has_primary_key = true;
		}
		(*defs)[i] = d;
	}
	*n = NFIXED;
	return PS_OK;
}

static int fixed_prepare(ps_sink *k, const ps_table_def *def, const ps_table_options *opt,
                         bool *created, ps_error *err)
{
	(void)k;
	(void)def;
	(void)opt;
	(void)err;
	*created = false;
	return PS_OK;
}

static const ps_source_ops fixed_src_ops = {.name = "fixed", .describe = fixed_describe};
static const ps_sink_ops fixed_sink_ops = {.name = "fixed", .table_prepare = fixed_prepare};
static ps_spec *run_spec;

static bool one_line(const char *s);

static void resume_from(const char *ck_spec_json)
{
	ps_checkpoint run_ck;
	ps_identity id;
	ps_live live;
	ps_ratelimit rl;
	atomic_int stop;
	ps_backfill *bf = NULL;
	ps_backfill_config cfg;
	ps_src src = {.ops = &fixed_src_ops};
	ps_snk snk = {.ops = &fixed_sink_ops};
	ps_error err;
	int rc;

	memset(&run_ck, 0, sizeof(run_ck));
	ps_live_init(&live, run_spec);
	ps_ratelimit_init(&rl);
	atomic_init(&stop, 0);
	ps_error_clear(&err);
	memset(&cfg, 0, sizeof(cfg));
	cfg.spec = run_spec;
	cfg.src = &src;
	cfg.snk = &snk;
	cfg.live = &live;
	cfg.ck = &run_ck;
	cfg.identity = &id;
	cfg.rl = &rl;
	cfg.stop = &stop;
	if (ps_backfill_new(&bf, &cfg, &err) != PS_OK)
		abort();
	rc = ps_backfill_begin(bf, ck_spec_json, true, &err);
	if (rc == PS_OK) {
		/* the spec the run keeps: the selection in force, by name */
		json_t *doc = run_ck.spec_json ? json_loads(run_ck.spec_json, 0, NULL) : NULL;
		json_t *force = json_object_get(doc, "tables_in_force");

		if (!json_is_array(force) || json_array_size(force) != NFIXED)
			abort();
		for (size_t i = 0; i < NFIXED; i++) {
			char q[64];
			bool found = false;
			size_t j;
			json_t *v;

			snprintf(q, sizeof(q), "%s.%s", fixed[i].schema, fixed[i].name);
			json_array_foreach(force, j, v)
				found = found || (json_is_string(v) && strcmp(json_string_value(v), q) == 0);
			if (!found)
				abort();
		}
		json_decref(doc);
	} else if ((rc != PS_ECHECKPOINT && rc != PS_EINVAL && rc != PS_ENOMEM) ||
	           err.code != rc || !err.message[0] || !one_line(err.message)) {
		ps_log_error("the checkpoint's spec was refused badly: %d %s", rc, err.message);
		abort();
	}
	ps_backfill_free(bf);
	ps_checkpoint_free(&run_ck);
	ps_ratelimit_destroy(&rl);
	ps_live_destroy(&live);
}

/* The position as a MariaDB source reads it. */
static void mysql_position(const char *text)
{
	my_pos p, again;
	my_gtid_state g;
	char buf[PS_POSITION_MAX], buf2[PS_POSITION_MAX];
	ps_error err;

	ps_error_clear(&err);
	if (my_pos_parse(text, &p, &err) != PS_OK) {
		if (err.code != PS_EINVAL || !strstr(err.message, "position") || !one_line(err.message))
			abort();
		return;
	}
	if (p.file[0]) {
		if (p.offset > UINT32_MAX)
			abort();
		my_pos_format(buf, sizeof(buf), p.file, p.offset, p.gtid);
		if (my_pos_parse(buf, &again, &err) != PS_OK || strcmp(again.file, p.file) ||
		    again.offset != p.offset || again.filenum != p.filenum ||
		    (again.gtid[0] && strcmp(again.gtid, p.gtid))) {
			ps_log_error("MariaDB position '%s' formatted as '%s' reads differently", text, buf);
			abort();
		}
	}
	if (p.gtid[0]) {
		if (my_gtid_state_parse(&g, p.gtid, &err) != PS_OK)
			abort();              /* my_pos_parse took it */
		my_gtid_state_format(&g, buf, sizeof(buf));
		if (my_gtid_state_parse(&g, buf, &err) != PS_OK)
			abort();
		my_gtid_state_format(&g, buf2, sizeof(buf2));
		if (strcmp(buf, buf2))
			abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char doc[] =
		"{\"name\": \"fuzz\", \"type\": \"cdc\", \"source\": {\"url\": \"postgresql://h/db\"}, "
		"\"target\": {\"url\": \"postgresql://t/db\"}, \"tables\": {\"include\": "
		"[\"public.*\", \"sales.*\"]}}";
	ps_error err;

	(void)argc;
	(void)argv;
	ps_log_configure(PS_LOG_ERROR, PS_LOG_TEXT);
	ps_error_clear(&err);
	if (ps_spec_parse(&run_spec, doc, strlen(doc), "fuzz", &err) != PS_OK)
		abort();
	return 0;
}

/* No newline nor any other control byte (errors are one line). */
static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static const char *opt(const char *s)
{
	return s ? s : "";
}

static void same(const ps_checkpoint *a, const ps_checkpoint *b)
{
	if (strcmp(a->job, b->job) || strcmp(a->identity.source, b->identity.source) ||
	    strcmp(a->identity.target, b->identity.target) ||
	    strcmp(a->identity.tables, b->identity.tables) ||
	    strcmp(a->identity.fingerprint, b->identity.fingerprint) ||
	    strcmp(a->source_server_id, b->source_server_id) || a->cdc_state != b->cdc_state ||
	    strcmp(a->position, b->position) || strcmp(opt(a->source_state), opt(b->source_state)) ||
	    strcmp(opt(a->target_state), opt(b->target_state)) ||
	    strcmp(opt(a->spec_json), opt(b->spec_json)) ||
	    strcmp(a->range_to, b->range_to) ||
	    (a->range_to[0] && strcmp(a->range_from, b->range_from)) ||
	    a->ntables != b->ntables) {
		ps_log_error("checkpoint changed when written back: job '%s'/'%s' position '%s'/'%s'",
		             a->job, b->job, a->position, b->position);
		abort();
	}
	for (size_t i = 0; i < a->ntables; i++) {
		const ps_ck_table *x = &a->tables[i], *y = &b->tables[i];

		if (strcmp(x->schema, y->schema) || strcmp(x->name, y->name) ||
		    x->created != y->created || x->finished != y->finished ||
		    x->estimated_rows != y->estimated_rows || x->nbounds != y->nbounds ||
		    x->nunits != y->nunits || !x->parts != !y->parts)
			abort();
		for (size_t j = 0; x->parts && j < x->nunits; j++)
			if (strcmp(x->parts[j], y->parts[j]))
				abort();
		for (size_t j = 0; j < x->nbounds; j++) {
			if (x->bounds[j].nvalues != y->bounds[j].nvalues)
				abort();
			for (int k = 0; k < x->bounds[j].nvalues; k++)
				if (strcmp(x->bounds[j].values[k], y->bounds[j].values[k]))
					abort();
		}
		/* a unit not done is written as {}: its point and rows mean nothing */
		for (size_t j = 0; j < x->nunits; j++)
			if (x->units[j].done != y->units[j].done ||
			    (x->units[j].done && (strcmp(x->units[j].point, y->units[j].point) ||
			                          x->units[j].rows != y->units[j].rows)))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ps_checkpoint ck, back;
	ps_identity id;
	ps_error err;
	char *text, *written;
	int rc;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	ps_error_clear(&err);
	rc = ps_checkpoint_from_text(&ck, text, ORIGIN, &err);
	free(text);
	if (rc != PS_OK) {
		if ((rc != PS_ECHECKPOINT && rc != PS_ENOMEM) || err.code != rc ||
		    !strstr(err.message, ORIGIN) || !one_line(err.message) ||
		    ck.tables || ck.spec_json || ck.source_state || ck.target_state)
			abort();
		return 0;
	}
	if (ck.cdc_state < PS_CDC_INITIAL || ck.cdc_state > PS_CDC_ERROR)
		abort();
	for (size_t i = 0; i < ck.ntables; i++) {
		const ps_ck_table *t = &ck.tables[i];

		/* key ranges: one unit more than bounds; partitions: a unit each */
		if (!t->schema || !t->name ||
		    (t->parts ? t->nbounds != 0 || t->nunits == 0 : t->nunits != t->nbounds + 1))
			abort();
		for (size_t j = 0; t->parts && j < t->nunits; j++)
			if (!t->parts[j])
				abort();
	}
	for (int to = PS_CDC_INITIAL; to <= PS_CDC_ERROR; to++)
		(void)ps_cdc_transition(ck.cdc_state, to);

	/* an identity that is the checkpoint's own, and one that differs */
	id = ck.identity;
	if (ps_checkpoint_match(&ck, &id, &err) != PS_OK)
		abort();
	(void)ps_backfill_tables_only(&ck, &id);
	snprintf(id.tables, sizeof(id.tables), "include=public.other;exclude=");
	snprintf(id.fingerprint, sizeof(id.fingerprint), "%s",
	         strcmp(ck.identity.fingerprint, "0000000000000000") ? "0000000000000000"
	                                                             : "1111111111111111");
	if (ps_checkpoint_match(&ck, &id, &err) != PS_ECHECKPOINT || strchr(err.message, '\n'))
		abort();
	(void)ps_backfill_tables_only(&ck, &id);

	if (ck.spec_json)
		resume_from(ck.spec_json);
	mysql_position(ck.position);

	written = ps_checkpoint_to_text(&ck);
	if (!written)
		abort();
	ps_error_clear(&err);
	if (ps_checkpoint_from_text(&back, written, "written back", &err) != PS_OK) {
		ps_log_error("a checkpoint written back does not read: %s: %s", err.message, written);
		abort();
	}
	same(&ck, &back);
	free(written);
	ps_checkpoint_free(&back);
	ps_checkpoint_free(&ck);
	return 0;
}
