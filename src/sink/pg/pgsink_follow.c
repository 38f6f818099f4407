/*
 * pgsink_follow.c — the PostgreSQL sink follows a table's schema changes
 * (sink.h table_change) and records the tables it created.
 *
 * NOTES ON THE DESIGN
 *
 *  1. The record. penstock.tables holds one row per target table penstock
 *     created (keyed by the target table's OID, so a table the user drops
 *     and creates again is the user's), with the source columns it made:
 *     their names in the target and the source's own numbers for them
 *     (ordinal, PG attnum). It is written in the target transaction that
 *     creates or alters the table, so it always describes the committed
 *     table. A table without a row is the user's; so is one with columns
 *     penstock did not make (besides generated columns it made): neither
 *     is altered unless target.follow_ddl is "all".
 *  2. Matching. A column of the new definition is the target column the
 *     record gives for its ordinal (a renamed column keeps its ordinal: a
 *     rename, never a drop and an add), else the target column of its
 *     name, else, when the stream's previous definition had another name
 *     at the same place with the same type and the target has that name,
 *     that one (a rename seen in the stream). A recorded column whose
 *     ordinal the source no longer has was dropped there.
 *  3. The plan: per column, what differs (added, dropped, renamed, type,
 *     NOT NULL, default); enum labels the target lacks; partitions to
 *     create, attach or detach. An empty plan only refreshes the caches
 *     (the user already made the change, or nothing the target keeps
 *     changed). A plan on a table penstock may not alter is refused with
 *     the changes, the reason and the fix, as a permanent error of class
 *     schema: the job stops at the change, nothing after it applied.
 *  4. Order: enum labels first, on a connection of their own (`side`,
 *     autocommit): PostgreSQL refuses a label used in the transaction that
 *     added it, and adding one is harmless if the batch is later rolled
 *     back (ADD VALUE IF NOT EXISTS, where the source has it). Then, in the
 *     batch's transaction: the objects new columns need (types, sequences),
 *     renames, drops, type changes, adds, NOT NULL and defaults,
 *     partitions, the record. A statement the target refuses (a type
 *     narrowing with rows that do not fit) ends the job with the table,
 *     the change, the server's words and the ways out.
 *  5. Rows the target holds after the change: an added column is filled
 *     as the source filled it (a constant default's value, taken from the
 *     source's missing value, before the default of now is set; NULL
 *     without one). When only the source can tell (a volatile default, an
 *     identity, a type changed by the source's own expression, a partition
 *     attached with rows), *backfill asks the core to read the table's
 *     rows again.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/log.h"
#include "util/pgconn.h"

/* ==== the target table =================================================== */

typedef struct tcol {
	char *name;
	char *type;          /* format_type with modifiers */
	char *dflt;          /* pg_get_expr of its default, or NULL */
	uint32_t typid;
	int32_t typmod;
	bool notnull, generated, identity, is_enum;
	bool matched;        /* a source column is this one */
} tcol;

typedef struct target {
	char oid[32];
	char relkind;
	int n;
	tcol *cols;
} target;

static void target_free(target *t)
{
	for (int i = 0; i < t->n; i++) {
		free(t->cols[i].name);
		free(t->cols[i].type);
		free(t->cols[i].dflt);
	}
	free(t->cols);
	memset(t, 0, sizeof(*t));
}

static char *dup_value(const PGresult *r, int row, int col, bool *oom)
{
	char *v;

	if (PQgetisnull(r, row, col))
		return NULL;
	v = strdup(PQgetvalue(r, row, col));
	*oom |= !v;
	return v;
}

/* The target table schema.name with its columns; tt->oid empty when none. */
static int target_load(ps_sink *s, const char *schema, const char *name, target *tt,
                       ps_error *err)
{
	const char *params[2] = {schema, name};
	PGresult *r = NULL;
	bool oom = false;
	int rc;

	memset(tt, 0, sizeof(*tt));
	rc = pgs_exec(s, &r, err, "reading the target table's columns",
	              "SELECT c.oid, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), "
	              "  pg_get_expr(d.adbin, d.adrelid), a.attnotnull, a.attgenerated <> '', "
	              "  a.attidentity <> '', a.atttypid, t.typtype = 'e', a.atttypmod "
	              "FROM pg_catalog.pg_class c "
	              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	              "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
	              "  AND NOT a.attisdropped "
	              "LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
	              "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid "
	              "  AND d.adnum = a.attnum "
	              "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') "
	              "ORDER BY a.attnum", 2, params);
	if (rc != PS_OK)
		return rc;
	if (PQntuples(r) == 0)
		goto cleanup;
	snprintf(tt->oid, sizeof(tt->oid), "%s", PQgetvalue(r, 0, 0));
	tt->relkind = PQgetvalue(r, 0, 1)[0];
	tt->cols = calloc((size_t)PQntuples(r) + 1, sizeof(tcol));
	if (!tt->cols) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (int row = 0; row < PQntuples(r); row++) {
		tcol *c;

		if (PQgetisnull(r, row, 2))
			continue;   /* a table without columns */
		c = &tt->cols[tt->n++];
		c->name = dup_value(r, row, 2, &oom);
		c->type = dup_value(r, row, 3, &oom);
		c->dflt = dup_value(r, row, 4, &oom);
		c->notnull = PQgetvalue(r, row, 5)[0] == 't';
		c->generated = PQgetvalue(r, row, 6)[0] == 't';
		c->identity = PQgetvalue(r, row, 7)[0] == 't';
		c->typid = (uint32_t)strtoul(PQgetvalue(r, row, 8), NULL, 10);
		c->is_enum = PQgetvalue(r, row, 9)[0] == 't';
		c->typmod = (int32_t)strtol(PQgetvalue(r, row, 10), NULL, 10);
	}
	if (oom)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
cleanup:
	PQclear(r);
	if (rc != PS_OK)
		target_free(tt);
	return rc;
}

static tcol *target_col(target *tt, const char *name)
{
	for (int i = 0; i < tt->n; i++)
		if (strcmp(tt->cols[i].name, name) == 0)
			return &tt->cols[i];
	return NULL;
}

/* ==== the record (NOTES 1) ================================================ */

typedef struct record {
	bool owned;
	int n;
	char **names;        /* target column names penstock made */
	int *ordinals;       /* the source's numbers for them (0: unknown) */
	char **types;        /* the source's type penstock last set on each, or NULL */
	char **dflts;        /* ... its default (NULL: none, or not recorded) */
	int8_t *notnull;     /* ... NOT NULL: 1, 0, or -1 not recorded */
	char *text;          /* the JSON as stored */
} record;

static void record_free(record *rec)
{
	for (int i = 0; i < rec->n; i++) {
		free(rec->names[i]);
		free(rec->types[i]);
		free(rec->dflts[i]);
	}
	free(rec->names);
	free(rec->ordinals);
	free(rec->types);
	free(rec->dflts);
	free(rec->notnull);
	free(rec->text);
	memset(rec, 0, sizeof(*rec));
}

/* The recorded column of that ordinal (else of that name), or -1. */
static int record_col(const record *rec, int ordinal, const char *name)
{
	for (int r = 0; ordinal > 0 && r < rec->n; r++)
		if (rec->ordinals[r] == ordinal)
			return r;
	for (int r = 0; r < rec->n; r++)
		if (strcmp(rec->names[r], name) == 0)
			return r;
	return -1;
}

static int record_load(ps_sink *s, const char *oid, record *rec, ps_error *err)
{
	const char *params[1] = {oid};
	PGresult *r = NULL;
	json_t *cols = NULL, *v;
	size_t i;
	int rc;

	memset(rec, 0, sizeof(*rec));
	rc = pgs_exec(s, &r, err, "reading penstock.tables",
	              "SELECT columns FROM penstock.tables WHERE relid = $1::oid", 1, params);
	if (rc != PS_OK || PQntuples(r) == 0)
		goto cleanup;
	rec->owned = true;
	rec->text = strdup(PQgetvalue(r, 0, 0));
	cols = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	if (!json_is_array(cols))
		goto cleanup;   /* unreadable: penstock's table, columns unknown */
	rec->names = calloc(json_array_size(cols) + 1, sizeof(char *));
	rec->ordinals = calloc(json_array_size(cols) + 1, sizeof(int));
	rec->types = calloc(json_array_size(cols) + 1, sizeof(char *));
	rec->dflts = calloc(json_array_size(cols) + 1, sizeof(char *));
	rec->notnull = calloc(json_array_size(cols) + 1, sizeof(int8_t));
	if (!rec->text || !rec->names || !rec->ordinals || !rec->types || !rec->dflts ||
	    !rec->notnull) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	json_array_foreach(cols, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *dflt = json_string_value(json_object_get(v, "default"));
		json_t *nn = json_object_get(v, "not_null");
		int k = rec->n;

		if (!name)
			continue;
		rec->names[k] = strdup(name);
		rec->types[k] = type ? strdup(type) : NULL;
		rec->dflts[k] = dflt ? strdup(dflt) : NULL;
		rec->notnull[k] = json_is_boolean(nn) ? json_is_true(nn) : -1;
		rec->ordinals[k] = (int)json_integer_value(json_object_get(v, "ordinal"));
		rec->n++;
		if (!rec->names[k] || (type && !rec->types[k]) || (dflt && !rec->dflts[k])) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
	}
cleanup:
	json_decref(cols);
	PQclear(r);
	if (rc != PS_OK)
		record_free(rec);
	return rc;
}

/* Writes the record of the table qname with def's columns; srcid: the
 * source's relation it holds (0 for a partition: its rows come through the
 * parent's). */
static int record_store(ps_sink *s, const char *qname, const char *name, const ps_table_def *def,
                        uint32_t srcid, const record *prev, ps_error *err)
{
	json_t *cols = json_array();
	const char *params[5];
	char id[16];
	char *text = NULL;
	int rc = PS_OK;

	for (int i = 0; cols && def && i < def->table->ncolumns; i++) {
		const ps_column_def *cd = &def->columns[i];
		int ordinal = cd->ordinal;
		json_t *o;
		/* a column the source could not number now keeps its number */
		for (int r = 0; ordinal == 0 && prev && r < prev->n; r++)
			if (strcmp(prev->names[r], def->table->columns[i].name) == 0)
				ordinal = prev->ordinals[r];
		/* what penstock set: the source's changes are told from the user's
		 * by it (NOTES 1) */
		o = json_pack("{s:s, s:i, s:b}", "name", def->table->columns[i].name, "ordinal", ordinal,
		              "not_null", cd->not_null);
		if (o && cd->sql_type)
			json_object_set_new(o, "type", json_string(cd->sql_type));
		if (o && cd->default_expr)
			json_object_set_new(o, "default", json_string(cd->default_expr));
		json_array_append_new(cols, o);
	}
	text = cols ? json_dumps(cols, JSON_COMPACT) : NULL;
	json_decref(cols);
	if (!text)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (prev && prev->text && strcmp(prev->text, text) == 0) {
		free(text);
		return PS_OK;   /* nothing to write */
	}
	snprintf(id, sizeof(id), "%u", srcid);
	params[0] = qname;
	params[1] = name;
	params[2] = s->job;
	params[3] = text;
	params[4] = id;
	rc = pgs_exec(s, NULL, err, "writing penstock.tables",
	              "INSERT INTO penstock.tables (relid, name, job, columns, source) "
	              "VALUES ($1::regclass, $2, $3, $4, $5::bigint) ON CONFLICT (relid) DO UPDATE "
	              "SET name = EXCLUDED.name, job = EXCLUDED.job, columns = EXCLUDED.columns, "
	              "source = EXCLUDED.source, updated_at = now()", 5, params);
	free(text);
	return rc;
}

int pgs_registry_created(ps_sink *s, const ps_table_def *def, ps_error *err)
{
	char name[300];
	ps_buf q;
	int rc = PS_OK;

	ps_buf_init(&q, 4096);
	if (pgs_qualified(s, &q, def->table->schema, def->table->name) != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	snprintf(name, sizeof(name), "%s.%s", def->table->schema, def->table->name);
	if (rc == PS_OK)
		rc = record_store(s, q.data, name, def, def->table->id, NULL, err);
	/* its partitions are penstock's too (a detached one may join later) */
	for (int i = 0; rc == PS_OK && i < def->npartitions; i++) {
		const ps_partition_def *p = &def->partitions[i];

		ps_buf_reset(&q);
		if (!p->schema || !p->name || pgs_qualified(s, &q, p->schema, p->name) != PS_OK)
			continue;
		snprintf(name, sizeof(name), "%s.%s", p->schema, p->name);
		rc = record_store(s, q.data, name, def, 0, NULL, err);
	}
	ps_buf_free(&q);
	return rc;
}

/* ==== the plan (NOTES 2, 3) =============================================== */

enum { ST_LABELS = 1, ST_RENAME, ST_DROP, ST_TYPE, ST_ADD, ST_NOTNULL, ST_DEFAULT,
       ST_PART_CREATE, ST_PART_ATTACH, ST_PART_DETACH };

typedef struct step {
	int kind;
	int col;             /* the def's column, or -1 */
	tcol *tc;            /* the target's column, or NULL */
	int part;            /* ST_PART_CREATE / _ATTACH: def->partitions index */
	char *detach;        /* ST_PART_DETACH: "schema"."name" (malloc'd) */
} step;

typedef struct plan {
	step *steps;
	int n, cap;
	ps_buf what;         /* the changes, for messages and the log */
	bool backfill;       /* NOTES 5 */
} plan;

static void plan_free(plan *pl)
{
	for (int i = 0; i < pl->n; i++)
		free(pl->steps[i].detach);
	free(pl->steps);
	ps_buf_free(&pl->what);
}

static int plan_add(plan *pl, int kind, int col, tcol *tc, int part, const char *fmt, ...)
	PS_PRINTF(6, 7);
static int plan_add(plan *pl, int kind, int col, tcol *tc, int part, const char *fmt, ...)
{
	char text[600];
	va_list ap;

	if (pl->n == pl->cap) {
		int cap = pl->cap ? pl->cap * 2 : 16;
		step *grown = realloc(pl->steps, (size_t)cap * sizeof(*grown));
		if (!grown)
			return PS_ENOMEM;
		pl->steps = grown;
		pl->cap = cap;
	}
	pl->steps[pl->n++] = (step){kind, col, tc, part, NULL};
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return ps_buf_printf(&pl->what, "%s%s", pl->what.len ? "; " : "", text);
}

/* Enum labels of the target type typid, in order (NULL-terminated). */
static int target_labels(ps_sink *s, uint32_t typid, char ***labels, int *n, ps_error *err)
{
	char oid[16];
	const char *params[1] = {oid};
	PGresult *r = NULL;
	int rc;

	*labels = NULL;
	*n = 0;
	snprintf(oid, sizeof(oid), "%u", typid);
	rc = pgs_exec(s, &r, err, "reading an enum's labels in the target",
	              "SELECT enumlabel FROM pg_catalog.pg_enum WHERE enumtypid = $1::oid "
	              "ORDER BY enumsortorder", 1, params);
	if (rc != PS_OK)
		return rc;
	*labels = calloc((size_t)PQntuples(r) + 1, sizeof(char *));
	for (int i = 0; *labels && i < PQntuples(r); i++) {
		(*labels)[i] = strdup(PQgetvalue(r, i, 0));
		if (!(*labels)[i])
			break;
		*n = i + 1;
	}
	if (!*labels || *n != PQntuples(r))
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	PQclear(r);
	return rc;
}

static void labels_free(char **labels, int n)
{
	for (int i = 0; i < n; i++)
		free(labels[i]);
	free(labels);
}

static bool in_labels(char **labels, int n, const char *l)
{
	for (int i = 0; i < n; i++)
		if (strcmp(labels[i], l) == 0)
			return true;
	return false;
}

/* The target column for def column i (NOTES 2). */
static tcol *match_column(const ps_table_change *tc, const record *rec, target *tt, int i)
{
	const ps_table_def *def = tc->def;
	const ps_column *c = &def->table->columns[i];
	const ps_table *prev = tc->previous;
	tcol *t;

	for (int r = 0; def->columns[i].ordinal > 0 && r < rec->n; r++)
		if (rec->ordinals[r] == def->columns[i].ordinal) {
			t = target_col(tt, rec->names[r]);
			if (t && !t->matched)
				return t;
		}
	t = target_col(tt, c->name);
	if (t && !t->matched)
		return t;
	if (prev && prev->ncolumns == def->table->ncolumns && i < prev->ncolumns &&
	    strcmp(prev->columns[i].name, c->name) != 0 &&
	    prev->columns[i].type_id == c->type_id) {
		t = target_col(tt, prev->columns[i].name);
		if (t && !t->matched)
			return t;
	}
	return NULL;
}

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The column of the stream's previous definition that def column i was,
 * or NULL (not known, or new). */
static const ps_column *previous_column(const ps_table_change *tc, int i)
{
	const ps_table *prev = tc->previous;
	const ps_column *c = &tc->def->table->columns[i];

	if (!prev)
		return NULL;
	for (int j = 0; j < prev->ncolumns; j++)
		if (strcmp(prev->columns[j].name, c->name) == 0)
			return &prev->columns[j];
	if (prev->ncolumns == tc->def->table->ncolumns && i < prev->ncolumns &&
	    prev->columns[i].type_id == c->type_id)
		return &prev->columns[i];   /* renamed at the same place */
	return NULL;
}

/* The columns' part of the plan. A table penstock made (full) gets the
 * source's definition whole; one the user manages only what the rows that
 * follow need (NOTES 3): the columns the source sends, a type the source
 * changed where the target had the source's old one, enum labels. */
static int plan_columns(ps_sink *s, const ps_table_change *tc, const record *rec, target *tt,
                        bool full, plan *pl, ps_error *err)
{
	const ps_table_def *def = tc->def;
	tcol **matched = calloc((size_t)def->table->ncolumns + 1, sizeof(tcol *));
	int rc = PS_OK, r;

	if (!matched)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; i < def->table->ncolumns; i++) {
		matched[i] = match_column(tc, rec, tt, i);
		if (matched[i])
			matched[i]->matched = true;
	}
	/* recorded columns whose ordinal the source no longer has: dropped */
	for (int k = 0; full && rc == PS_OK && k < rec->n; k++) {
		tcol *t = target_col(tt, rec->names[k]);
		bool kept = false;

		for (int i = 0; i < def->table->ncolumns && !kept; i++)
			kept = matched[i] == t || (rec->ordinals[k] > 0 &&
			                           def->columns[i].ordinal == rec->ordinals[k]);
		if (t && !kept && !t->matched)
			rc = plan_add(pl, ST_DROP, -1, t, -1, "column %s dropped", t->name);
	}
	for (int i = 0; rc == PS_OK && i < def->table->ncolumns; i++) {
		const ps_column_def *cd = &def->columns[i];
		const char *name = def->table->columns[i].name;
		tcol *t = matched[i];

		if (!t) {
			rc = plan_add(pl, ST_ADD, i, NULL, -1, "column %s %s added", name,
			              cd->sql_type ? cd->sql_type : "?");
			if (cd->fill == PS_FILL_UNKNOWN)
				pl->backfill = true;
			continue;
		}
		/* what penstock last set on it: a difference from the source's
		 * definition is a change of the source, one from the target alone
		 * the user's own, which stays (NOTES 1) */
		r = full ? record_col(rec, cd->ordinal, t->name) : -1;
		if (strcmp(t->name, name) != 0)
			rc = plan_add(pl, ST_RENAME, i, t, -1, "column %s renamed to %s", t->name, name);
		if (rc == PS_OK && cd->sql_type && t->type && strcmp(cd->sql_type, t->type) != 0) {
			const ps_column *was = previous_column(tc, i);
			/* the user's table: only when it had the source's type until
			 * the source changed it */
			bool lags = was && (was->type_id != def->table->columns[i].type_id ||
			                    was->type_mod != def->table->columns[i].type_mod) &&
			            was->type_id == t->typid && was->type_mod == t->typmod;
			bool source_changed = r < 0 || !rec->types[r] ||
			                      strcmp(rec->types[r], cd->sql_type) != 0;
			if ((full && source_changed) || lags) {
				rc = plan_add(pl, ST_TYPE, i, t, -1, "column %s: type %s, was %s", name,
				              cd->sql_type, t->type);
				pl->backfill = true;
			}
		}
		if (rc == PS_OK && full && cd->not_null != t->notnull && !t->generated &&
		    (r < 0 || rec->notnull[r] < 0 || rec->notnull[r] != cd->not_null))
			rc = plan_add(pl, ST_NOTNULL, i, t, -1, "column %s: %s", name,
			              cd->not_null ? "NOT NULL" : "NULL allowed");
		if (rc == PS_OK && full && !cd->identity && !t->identity && !t->generated &&
		    !same_text(cd->default_expr, t->dflt) &&
		    (r < 0 || rec->notnull[r] < 0 || !same_text(rec->dflts[r], cd->default_expr)))
			rc = plan_add(pl, ST_DEFAULT, i, t, -1, "column %s: default %s", name,
			              cd->default_expr ? cd->default_expr : "none");
		/* enum labels the target lacks (NOTES 4) */
		if (rc == PS_OK && cd->labels && t->is_enum) {
			char **have = NULL;
			int nhave = 0, missing = 0;

			rc = target_labels(s, t->typid, &have, &nhave, err);
			for (int l = 0; rc == PS_OK && l < cd->nlabels; l++)
				missing += !in_labels(have, nhave, cd->labels[l]);
			labels_free(have, nhave);
			if (rc == PS_OK && missing)
				rc = plan_add(pl, ST_LABELS, i, t, -1, "type %s: %d label%s added", t->type,
				              missing, missing == 1 ? "" : "s");
		}
	}
	free(matched);
	return rc == PS_ENOMEM || rc == PS_ETOOBIG ? ps_error_set(err, rc, "out of memory") : rc;
}

/* The partitions' part of the plan: def's against the target's tree. */
static int plan_partitions(ps_sink *s, const ps_table_def *def, const target *tt, plan *pl,
                           ps_error *err)
{
	const char *params[1] = {tt->oid};
	PGresult *r = NULL;
	int rc;

	if (tt->relkind != 'p')
		return PS_OK;
	rc = pgs_exec(s, &r, err, "listing the target's partitions",
	              "SELECT n.nspname, c.relname, pn.nspname, p.relname, "
	              "  pg_get_expr(c.relpartbound, c.oid), format('%I.%I', n.nspname, c.relname) "
	              "FROM pg_partition_tree($1::oid) t JOIN pg_catalog.pg_class c ON c.oid = t.relid "
	              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	              "JOIN pg_catalog.pg_class p ON p.oid = t.parentrelid "
	              "JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
	              "WHERE t.level > 0 ORDER BY t.level DESC", 1, params);
	if (rc != PS_OK)
		return rc;
	/* the target's partitions the source no longer has under that parent
	 * and bound: detached (deepest first) */
	for (int row = 0; rc == PS_OK && row < PQntuples(r); row++) {
		bool keep = false;

		for (int i = 0; i < def->npartitions && !keep; i++) {
			const ps_partition_def *p = &def->partitions[i];
			keep = p->schema && p->name && p->parent_schema && p->parent_name &&
			       strcmp(p->schema, PQgetvalue(r, row, 0)) == 0 &&
			       strcmp(p->name, PQgetvalue(r, row, 1)) == 0 &&
			       strcmp(p->parent_schema, PQgetvalue(r, row, 2)) == 0 &&
			       strcmp(p->parent_name, PQgetvalue(r, row, 3)) == 0 &&
			       same_text(p->bound, PQgetvalue(r, row, 4));
		}
		if (keep)
			continue;
		rc = plan_add(pl, ST_PART_DETACH, -1, NULL, -1, "partition %s.%s detached",
		              PQgetvalue(r, row, 0), PQgetvalue(r, row, 1));
		if (rc == PS_OK) {
			pl->steps[pl->n - 1].detach = strdup(PQgetvalue(r, row, 5));
			if (!pl->steps[pl->n - 1].detach)
				rc = PS_ENOMEM;
		}
	}
	/* the source's partitions the target lacks under their parent and bound */
	for (int i = 0; rc == PS_OK && i < def->npartitions; i++) {
		const ps_partition_def *p = &def->partitions[i];
		bool have = false;
		char oid[32] = "";
		ps_table probe;

		if (!p->schema || !p->name || !p->parent_schema || !p->parent_name || !p->bound)
			continue;
		for (int row = 0; row < PQntuples(r) && !have; row++)
			have = strcmp(p->schema, PQgetvalue(r, row, 0)) == 0 &&
			       strcmp(p->name, PQgetvalue(r, row, 1)) == 0 &&
			       strcmp(p->parent_schema, PQgetvalue(r, row, 2)) == 0 &&
			       strcmp(p->parent_name, PQgetvalue(r, row, 3)) == 0 &&
			       same_text(p->bound, PQgetvalue(r, row, 4));
		if (have)
			continue;
		memset(&probe, 0, sizeof(probe));
		probe.schema = p->schema;
		probe.name = p->name;
		rc = pgs_find_table(s, &probe, oid, sizeof(oid), err);
		if (rc != PS_OK)
			break;
		/* a table of that name exists (a former partition, or one the job
		 * selected on its own): attached; else created */
		rc = plan_add(pl, oid[0] ? ST_PART_ATTACH : ST_PART_CREATE, -1, NULL, i,
		              "partition %s.%s %s (%s)", p->schema, p->name,
		              oid[0] ? "attached" : "created", p->bound);
		/* rows it held before it was a partition are not in the stream */
		if (p->leaf && p->attached)
			pl->backfill = true;
	}
	PQclear(r);
	return rc == PS_ENOMEM ? ps_error_set(err, rc, "out of memory") : rc;
}

/* Target columns penstock did not make (NOTES 1), into b; how many. */
static int user_columns(const record *rec, const target *tt, const ps_table_def *def, ps_buf *b)
{
	int n = 0;

	for (int i = 0; i < tt->n; i++) {
		bool made = tt->cols[i].generated;

		for (int r = 0; r < rec->n && !made; r++)
			made = strcmp(rec->names[r], tt->cols[i].name) == 0;
		for (int g = 0; def && g < def->ngenerated && !made; g++)
			made = def->generated[g].name && strcmp(def->generated[g].name, tt->cols[i].name) == 0;
		/* one the source has now (the user followed a change by hand) */
		for (int c = 0; def && c < def->table->ncolumns && !made; c++)
			made = strcmp(def->table->columns[c].name, tt->cols[i].name) == 0;
		if (made)
			continue;
		ps_buf_printf(b, "%s%s", n ? ", " : "", tt->cols[i].name);
		n++;
	}
	return n;
}

/* ==== executing (NOTES 4) ================================================= */

/* Runs one statement of the plan; a refusal by the target ends the job with
 * what it was and the ways out (a permanent error of class schema). */
static int ddl(ps_sink *s, const char *sql, const ps_table *t, const char *change,
               const ps_txn *txn, ps_error *err)
{
	char what[700];
	int rc;

	snprintf(what, sizeof(what), "table %s.%s: %s", t->schema, t->name, change);
	rc = pgs_exec(s, NULL, err, what, sql, 0, NULL);
	if (rc == PS_OK || rc == PS_ECONNECT)
		return rc;
	{
		char server[PS_ERROR_MESSAGE_MAX], code[PS_ENGINE_CODE_MAX];
		snprintf(server, sizeof(server), "%s", err->message);
		snprintf(code, sizeof(code), "%s", err->engine_code);
		/* the user's to fix, like a refusal: PS_EINVAL (penstock run exits 2,
		 * which a service manager does not restart into the same failure) */
		ps_error_set(err, PS_EINVAL, "table %s.%s changed on the source at %s (%s), and the "
		             "target refused to follow: %s. Make the target's rows or definition fit "
		             "the change and recover the job with strategy retry (penstock job recover "
		             "%s --strategy retry; with penstock run, run it again); or drop the target "
		             "table and recover with strategy resync for it (--tables %s.%s) to copy it "
		             "again as it is now", t->schema, t->name, txn ? txn->position : "?",
		             change, server, s->job, t->schema, t->name);
		ps_error_set_engine(err, "SQLSTATE", code[0] ? code : NULL, PS_ERRCLASS_SCHEMA);
	}
	return pgs_fail(s, err);
}

/* The side connection for enum labels (NOTES 4). */
static int side_conn(ps_sink *s, ps_error *err)
{
	char app[128];
	int rc;

	if (s->side && PQstatus(s->side) == CONNECTION_OK)
		return PS_OK;
	if (s->side)
		PQfinish(s->side);
	s->side = NULL;
	snprintf(app, sizeof(app), "penstock ddl %s", s->job);
	rc = pg_connect(&s->side, s->url_text, &s->url, s->password, false, app, err);
	/* never wait on the batch's own transaction for long: an error, not a hang */
	if (rc == PS_OK)
		rc = pg_exec(s->side, NULL, err, "setting a lock timeout", "SET lock_timeout = '30s'",
		             0, NULL);
	return rc;
}

/* Adds the labels of def column i the target's enum lacks, each in its
 * place: BEFORE the next label it has, else AFTER the previous one. */
static int add_labels(ps_sink *s, const ps_column_def *cd, const tcol *t, ps_error *err)
{
	char **have = NULL;
	int nhave = 0, rc;
	ps_buf sql;

	rc = target_labels(s, t->typid, &have, &nhave, err);
	if (rc == PS_OK)
		rc = side_conn(s, err);
	ps_buf_init(&sql, 65536);
	for (int l = 0; rc == PS_OK && l < cd->nlabels; l++) {
		const char *next = NULL, *prev = NULL;

		if (in_labels(have, nhave, cd->labels[l]))
			continue;
		for (int k = l + 1; k < cd->nlabels && !next; k++)
			if (in_labels(have, nhave, cd->labels[k]))
				next = cd->labels[k];
		for (int k = l - 1; k >= 0 && !next && !prev; k--)
			if (in_labels(have, nhave, cd->labels[k]))
				prev = cd->labels[k];
		ps_buf_reset(&sql);
		rc = ps_buf_printf(&sql, "ALTER TYPE %s ADD VALUE IF NOT EXISTS ", t->type);
		if (rc == PS_OK)
			rc = pgs_put_literal(s, &sql, cd->labels[l]);
		if (rc == PS_OK && (next || prev))
			rc = ps_buf_puts(&sql, next ? " BEFORE " : " AFTER ");
		if (rc == PS_OK && (next || prev))
			rc = pgs_put_literal(s, &sql, next ? next : prev);
		if (rc != PS_OK) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			break;
		}
		rc = pg_exec(s->side, NULL, err, "adding an enum label in the target", sql.data, 0, NULL);
		if (rc == PS_OK) {
			char **grown = realloc(have, (size_t)(nhave + 2) * sizeof(char *));
			if (!grown || !(grown[nhave] = strdup(cd->labels[l]))) {
				have = grown ? grown : have;
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
				break;
			}
			have = grown;
			nhave++;
			ps_log_info("target pg: type %s: label %s added", t->type, cd->labels[l]);
		}
	}
	labels_free(have, nhave);
	ps_buf_free(&sql);
	return rc;
}

/* ALTER TABLE ... ADD COLUMN, its existing rows filled as the source's were
 * (NOTES 5). */
static int add_column(ps_sink *s, const ps_table_def *def, int i, const char *qname,
                      const ps_txn *txn, ps_error *err)
{
	const ps_column_def *cd = &def->columns[i];
	const char *name = def->table->columns[i].name;
	bool own_values = cd->identity || cd->fill == PS_FILL_UNKNOWN;
	char change[400];
	ps_buf sql;
	int rc;

	snprintf(change, sizeof(change), "adding column %s %s", name,
	         cd->sql_type ? cd->sql_type : "?");
	if (!cd->sql_type)
		return ps_error_set(err, PS_EINVAL, "table %s.%s: the source did not say the type of "
		                    "new column %s", def->table->schema, def->table->name, name);
	ps_buf_init(&sql, PGS_SQL_LIMIT);
	rc = ps_buf_printf(&sql, "ALTER TABLE %s ADD COLUMN ", qname);
	if (rc == PS_OK && own_values && (cd->identity || cd->default_expr || !cd->not_null)) {
		/* as a created table has it: the existing rows get the target's own
		 * values until the backfill brings the source's */
		rc = pgs_column_sql(s, &sql, def, i, true);
	} else if (rc == PS_OK) {
		/* the value the source's rows got (or NULL), then the default of now */
		rc = pg_quote_ident(s->conn, &sql, name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, " %s", cd->sql_type);
		if (rc == PS_OK && cd->collation)
			rc = ps_buf_printf(&sql, " COLLATE %s", cd->collation);
		if (rc == PS_OK && cd->fill == PS_FILL_VALUE && cd->fill_value) {
			rc = ps_buf_puts(&sql, " DEFAULT ");
			if (rc == PS_OK)
				rc = pgs_put_literal(s, &sql, cd->fill_value);
			if (rc == PS_OK)
				rc = ps_buf_printf(&sql, "::%s", cd->sql_type);
		}
		if (rc == PS_OK && cd->not_null && !own_values)
			rc = ps_buf_puts(&sql, " NOT NULL");
	}
	if (rc == PS_OK)
		rc = ddl(s, sql.data, def->table, change, txn, err);
	if (rc == PS_OK && !own_values && (cd->fill == PS_FILL_VALUE || cd->default_expr)) {
		ps_buf_reset(&sql);
		rc = ps_buf_printf(&sql, "ALTER TABLE %s ALTER COLUMN ", qname);
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, name);
		if (rc == PS_OK && cd->default_expr)
			rc = ps_buf_printf(&sql, " SET DEFAULT %s", cd->default_expr);
		else if (rc == PS_OK)
			rc = ps_buf_puts(&sql, " DROP DEFAULT");
		if (rc == PS_OK)
			rc = ddl(s, sql.data, def->table, change, txn, err);
	}
	ps_buf_free(&sql);
	return rc == PS_ETOOBIG || rc == PS_ENOMEM ? ps_error_set(err, rc, "statement too long") : rc;
}

/* One ALTER TABLE qname <middle> "col" <tail> statement. */
static int alter_column(ps_sink *s, const char *qname, const char *verb, const char *col,
                        const char *tail, const ps_table *t, const char *change,
                        const ps_txn *txn, ps_error *err)
{
	ps_buf sql;
	int rc;

	ps_buf_init(&sql, PGS_SQL_LIMIT);
	rc = ps_buf_printf(&sql, "ALTER TABLE %s %s ", qname, verb);
	if (rc == PS_OK)
		rc = pg_quote_ident(s->conn, &sql, col);
	if (rc == PS_OK && tail)
		rc = ps_buf_puts(&sql, tail);
	if (rc == PS_OK)
		rc = ddl(s, sql.data, t, change, txn, err);
	else
		rc = ps_error_set(err, rc, "statement too long");
	ps_buf_free(&sql);
	return rc;
}

static int run_step(ps_sink *s, const ps_table_change *tc, const step *st, const char *qname,
                    const ps_txn *txn, ps_error *err)
{
	const ps_table_def *def = tc->def;
	const ps_table *t = def->table;
	const ps_column_def *cd = st->col >= 0 ? &def->columns[st->col] : NULL;
	const char *name = st->col >= 0 ? t->columns[st->col].name : NULL;
	char change[600];
	ps_buf tail;
	int rc = PS_OK;

	ps_buf_init(&tail, PGS_SQL_LIMIT);
	switch (st->kind) {
	case ST_LABELS:
		rc = add_labels(s, cd, st->tc, err);
		break;
	case ST_RENAME:
		snprintf(change, sizeof(change), "renaming column %s to %s", st->tc->name, name);
		rc = ps_buf_puts(&tail, " TO ");
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &tail, name);
		if (rc == PS_OK)
			rc = alter_column(s, qname, "RENAME COLUMN", st->tc->name, tail.data, t, change,
			                  txn, err);
		break;
	case ST_DROP:
		snprintf(change, sizeof(change), "dropping column %s", st->tc->name);
		rc = alter_column(s, qname, "DROP COLUMN", st->tc->name, NULL, t, change, txn, err);
		break;
	case ST_TYPE:
		snprintf(change, sizeof(change), "changing the type of column %s from %s to %s", name,
		         st->tc->type, cd->sql_type);
		rc = ps_buf_printf(&tail, " TYPE %s", cd->sql_type);
		if (rc == PS_OK && cd->collation)
			rc = ps_buf_printf(&tail, " COLLATE %s", cd->collation);
		if (rc == PS_OK)
			rc = ps_buf_puts(&tail, " USING ");
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &tail, name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&tail, "::%s", cd->sql_type);
		if (rc == PS_OK)
			rc = alter_column(s, qname, "ALTER COLUMN", name, tail.data, t, change, txn, err);
		break;
	case ST_ADD:
		rc = add_column(s, def, st->col, qname, txn, err);
		break;
	case ST_NOTNULL:
		snprintf(change, sizeof(change), "%s NOT NULL on column %s",
		         cd->not_null ? "setting" : "dropping", name);
		rc = alter_column(s, qname, "ALTER COLUMN", name,
		                  cd->not_null ? " SET NOT NULL" : " DROP NOT NULL", t, change, txn, err);
		break;
	case ST_DEFAULT:
		snprintf(change, sizeof(change), "setting the default of column %s", name);
		if (cd->default_expr)
			rc = ps_buf_printf(&tail, " SET DEFAULT %s", cd->default_expr);
		else
			rc = ps_buf_puts(&tail, " DROP DEFAULT");
		if (rc == PS_OK)
			rc = alter_column(s, qname, "ALTER COLUMN", name, tail.data, t, change, txn, err);
		break;
	case ST_PART_DETACH:
		snprintf(change, sizeof(change), "detaching partition %s", st->detach);
		{
			/* from its own parent: ALTER TABLE parent DETACH PARTITION p */
			const char *params[1] = {st->detach};
			PGresult *r = NULL;
			rc = pgs_exec(s, &r, err, "finding a partition's parent",
			              "SELECT format('%I.%I', n.nspname, p.relname) FROM pg_catalog.pg_inherits i "
			              "JOIN pg_catalog.pg_class p ON p.oid = i.inhparent "
			              "JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace "
			              "WHERE i.inhrelid = $1::regclass", 1, params);
			if (rc == PS_OK && PQntuples(r) == 1)
				rc = ps_buf_printf(&tail, "ALTER TABLE %s DETACH PARTITION %s",
				                   PQgetvalue(r, 0, 0), st->detach);
			PQclear(r);
			if (rc == PS_OK && tail.len)
				rc = ddl(s, tail.data, t, change, txn, err);
		}
		break;
	case ST_PART_CREATE:
	case ST_PART_ATTACH: {
		const ps_partition_def *p = &def->partitions[st->part];
		ps_buf qp;

		ps_buf_init(&qp, 4096);
		snprintf(change, sizeof(change), "%s partition %s.%s %s",
		         st->kind == ST_PART_CREATE ? "creating" : "attaching", p->schema, p->name,
		         p->bound);
		rc = pgs_ensure_schema(s, p->schema, err);
		if (rc == PS_OK)
			rc = pgs_qualified(s, &qp, p->schema, p->name);
		if (rc == PS_OK && st->kind == ST_PART_CREATE) {
			rc = ps_buf_printf(&tail, "CREATE TABLE %s PARTITION OF ", qp.data);
			if (rc == PS_OK)
				rc = pgs_qualified(s, &tail, p->parent_schema, p->parent_name);
			if (rc == PS_OK)
				rc = ps_buf_printf(&tail, " %s", p->bound);
			if (rc == PS_OK && p->partition_by)
				rc = ps_buf_printf(&tail, " PARTITION BY %s", p->partition_by);
		} else if (rc == PS_OK) {
			rc = ps_buf_puts(&tail, "ALTER TABLE ");
			if (rc == PS_OK)
				rc = pgs_qualified(s, &tail, p->parent_schema, p->parent_name);
			if (rc == PS_OK)
				rc = ps_buf_printf(&tail, " ATTACH PARTITION %s %s", qp.data, p->bound);
		}
		if (rc == PS_OK)
			rc = ddl(s, tail.data, t, change, txn, err);
		if (rc == PS_OK && st->kind == ST_PART_CREATE) {
			char pname[300];
			snprintf(pname, sizeof(pname), "%s.%s", p->schema, p->name);
			rc = record_store(s, qp.data, pname, def, 0, NULL, err);
		}
		ps_buf_free(&qp);
		break;
	}
	default:
		break;
	}
	if (rc == PS_ETOOBIG || rc == PS_ENOMEM)
		rc = ps_error_set(err, rc, "statement too long");
	ps_buf_free(&tail);
	return rc;
}

/* Runs the plan in its order (NOTES 4). */
static int run_plan(ps_sink *s, const ps_table_change *tc, const plan *pl, const char *qname,
                    const ps_txn *txn, ps_error *err)
{
	static const int order[] = {ST_LABELS, ST_RENAME, ST_DROP, ST_TYPE, ST_ADD, ST_NOTNULL,
	                            ST_DEFAULT, ST_PART_DETACH, ST_PART_CREATE, ST_PART_ATTACH};
	const ps_table_def *def = tc->def;
	char what[300];
	int rc = PS_OK;

	/* what new columns need: types, collations, sequences (pgsink_schema.c) */
	snprintf(what, sizeof(what), "table %s.%s needs", def->table->schema, def->table->name);
	rc = pgs_ensure_objects(s, def->requires, def->nrequires, what, NULL, err);
	if (rc == PS_OK)
		rc = pgs_check_user_types(s, def, err);
	if (rc == PS_OK)
		rc = pgs_sequences(s, def, qname, false, err);
	for (size_t o = 0; rc == PS_OK && o < sizeof(order) / sizeof(order[0]); o++)
		for (int i = 0; rc == PS_OK && i < pl->n; i++)
			if (pl->steps[i].kind == order[o])
				rc = run_step(s, tc, &pl->steps[i], qname, txn, err);
	if (rc == PS_OK)
		rc = pgs_sequences(s, def, qname, true, err);
	return rc;
}

/* ==== table_change ========================================================= */

static const char *follow_name(int follow)
{
	return follow == PS_FOLLOW_ALL ? "all" : follow == PS_FOLLOW_NONE ? "none" : "created";
}

int pgs_table_change(ps_sink *s, const ps_txn *txn, const ps_table_change *tc,
                     const ps_table_options *opt, bool *backfill, ps_error *err)
{
	const ps_table_def *def = tc->def;
	const ps_table *t = tc->table;
	target tt;
	record rec;
	plan pl;
	ps_buf qname, users;
	char name[300];
	int rc, nusers;

	*backfill = false;
	rc = pgs_table_forget(s, t->schema, t->name, err);
	if (rc == PS_OK && tc->previous && (strcmp(tc->previous->schema, t->schema) != 0 ||
	                                    strcmp(tc->previous->name, t->name) != 0))
		rc = pgs_table_forget(s, tc->previous->schema, tc->previous->name, err);
	/* without a description (the table is gone on the source) or from
	 * another engine, only the caches follow */
	if (rc != PS_OK || !def || !def->engine || strcmp(def->engine, "postgresql") != 0)
		return rc;
	memset(&pl, 0, sizeof(pl));
	ps_buf_init(&pl.what, 1u << 20);
	ps_buf_init(&qname, 4096);
	ps_buf_init(&users, 4096);
	memset(&rec, 0, sizeof(rec));
	rc = target_load(s, t->schema, t->name, &tt, err);
	if (rc != PS_OK || !tt.oid[0])
		goto cleanup;   /* no such target table: the first write says so */
	rc = record_load(s, tt.oid, &rec, err);
	nusers = rec.owned ? user_columns(&rec, &tt, def, &users) : 0;
	/* the source's definition whole where penstock made the table (and,
	 * with follow_ddl none, to tell whether the target matches it) */
	if (rc == PS_OK)
		rc = plan_columns(s, tc, &rec, &tt, rec.owned && !nusers, &pl, err);
	if (rc == PS_OK)
		rc = plan_partitions(s, def, &tt, &pl, err);
	if (rc != PS_OK || pl.n == 0) {
		if (rc == PS_OK && (tc->what & ~PS_TC_FIRST))
			ps_log_info("target pg: table %s.%s already matches its new definition", t->schema,
			            t->name);
		/* the record follows what the target already matches */
		snprintf(name, sizeof(name), "%s.%s", t->schema, t->name);
		if (rc == PS_OK && rec.owned && !nusers &&
		    pgs_qualified(s, &qname, t->schema, t->name) == PS_OK)
			rc = record_store(s, qname.data, name, def, t->id, &rec, err);
		goto cleanup;
	}
	if (opt->follow_ddl == PS_FOLLOW_NONE ||
	    (opt->follow_ddl == PS_FOLLOW_CREATED && (!rec.owned || nusers))) {
		char why[600];

		if (opt->follow_ddl == PS_FOLLOW_NONE)
			snprintf(why, sizeof(why), "Its target table is not altered by penstock");
		else if (!rec.owned)
			snprintf(why, sizeof(why), "Its target table was not created by penstock (it "
			         "existed before, or target.create_tables is never), so it is yours");
		else
			snprintf(why, sizeof(why), "Its target table has columns penstock did not create "
			         "(%s), so it is yours", users.data);
		rc = ps_error_set(err, PS_EINVAL, "table %s.%s changed on the source at %s: %s. %s, "
		                  "and penstock does not alter it (target.follow_ddl: %s). Make the "
		                  "same change in the target, then recover the job with strategy retry "
		                  "(penstock job recover %s --strategy retry; with penstock run, run it "
		                  "again); or set target.follow_ddl to all to have penstock follow "
		                  "changes of this table", t->schema, t->name,
		                  txn ? txn->position : "?", pl.what.data, why,
		                  follow_name(opt->follow_ddl), s->job);
		ps_error_set_engine(err, NULL, NULL, PS_ERRCLASS_SCHEMA);
		goto cleanup;
	}
	if (pgs_qualified(s, &qname, t->schema, t->name) != PS_OK) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = run_plan(s, tc, &pl, qname.data, txn, err);
	snprintf(name, sizeof(name), "%s.%s", t->schema, t->name);
	if (rc == PS_OK && rec.owned)
		rc = record_store(s, qname.data, name, def, t->id, &rec, err);
	if (rc == PS_OK) {
		*backfill = pl.backfill;
		ps_log_info("target pg: table %s.%s follows the source (at %s): %s", t->schema, t->name,
		            txn ? txn->position : "?", pl.what.data);
	}
	if (rc == PS_OK)
		rc = pgs_table_forget(s, t->schema, t->name, err);
cleanup:
	target_free(&tt);
	record_free(&rec);
	plan_free(&pl);
	ps_buf_free(&qname);
	ps_buf_free(&users);
	return rc;
}

/* ==== a table joining a running job again ================================= */

int pgs_renamed_from(ps_sink *s, const ps_table_def *def, char *oid, size_t len, ps_error *err)
{
	char id[16];
	const char *params[2] = {id, s->job};
	PGresult *r = NULL;
	ps_buf sql, q;
	int rc;

	oid[0] = '\0';
	if (def->table->id == 0)
		return PS_OK;       /* no stable identity (change.h): a new table */
	snprintf(id, sizeof(id), "%u", def->table->id);
	rc = pgs_exec(s, &r, err, "looking for the table under a former name",
	              "SELECT t.relid::text, n.nspname, c.relname "
	              "FROM penstock.tables t JOIN pg_catalog.pg_class c ON c.oid = t.relid "
	              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	              "WHERE t.source = $1::bigint AND t.job = $2 AND c.relkind IN ('r', 'p')", 2,
	              params);
	if (rc != PS_OK || PQntuples(r) != 1) {
		PQclear(r);
		return rc;
	}
	ps_buf_init(&sql, 4096);
	ps_buf_init(&q, 4096);
	/* the same source table under a new name or schema: the target's follows */
	rc = pgs_qualified(s, &q, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
	if (rc == PS_OK && strcmp(PQgetvalue(r, 0, 1), def->table->schema) != 0) {
		rc = pgs_ensure_schema(s, def->table->schema, err);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, "ALTER TABLE %s SET SCHEMA ", q.data);
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, def->table->schema);
		if (rc == PS_OK)
			rc = pgs_exec(s, NULL, err, "moving a table as on the source", sql.data, 0, NULL);
		ps_buf_reset(&q);
		if (rc == PS_OK)
			rc = pgs_qualified(s, &q, def->table->schema, PQgetvalue(r, 0, 2));
	}
	if (rc == PS_OK && strcmp(PQgetvalue(r, 0, 2), def->table->name) != 0) {
		ps_buf_reset(&sql);
		rc = ps_buf_printf(&sql, "ALTER TABLE %s RENAME TO ", q.data);
		if (rc == PS_OK)
			rc = pg_quote_ident(s->conn, &sql, def->table->name);
		if (rc == PS_OK)
			rc = pgs_exec(s, NULL, err, "renaming a table as on the source", sql.data, 0, NULL);
	}
	if (rc == PS_OK) {
		ps_log_info("target pg: table %s.%s is %s.%s renamed or moved on the source: the one "
		            "penstock made follows", PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
		            def->table->schema, def->table->name);
		snprintf(oid, len, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	ps_buf_free(&sql);
	ps_buf_free(&q);
	return rc == PS_ENOMEM || rc == PS_ETOOBIG ? ps_error_set(err, rc, "out of memory") : rc;
}

int pgs_rejoin(ps_sink *s, const ps_table_def *def, const char *oid, const char *qname,
               bool *done, ps_error *err)
{
	ps_table_change tc = {.table = def->table, .def = (ps_table_def *)def};
	ps_table_options follow = {.follow_ddl = PS_FOLLOW_CREATED};
	ps_buf sql;
	record rec;
	bool again = false;
	int rc;

	*done = false;
	rc = record_load(s, oid, &rec, err);
	if (rc != PS_OK || !rec.owned) {
		record_free(&rec);
		return rc;   /* the user's: the load's rules apply */
	}
	record_free(&rec);
	/* brought to def as a change would, then emptied: its rows are a
	 * former state of the table, and the backfill brings the current one */
	rc = pgs_table_change(s, NULL, &tc, &follow, &again, err);
	ps_buf_init(&sql, PGS_SQL_LIMIT);
	if (rc == PS_OK)
		rc = ps_buf_printf(&sql, "DELETE FROM %s", qname) == PS_OK ? PS_OK
		     : ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == PS_OK)
		rc = pgs_exec(s, NULL, err, "emptying a table that joins the job again", sql.data, 0,
		              NULL);
	ps_buf_free(&sql);
	if (rc == PS_OK) {
		ps_log_info("target pg: table %s.%s joins the job again: penstock made it, so its rows "
		            "(a former state of the table) are replaced by the backfill's",
		            def->table->schema, def->table->name);
		*done = true;
	}
	return rc;
}
