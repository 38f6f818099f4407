/*
 * pg_ddl.c — what the PostgreSQL source tells about tables whose definition
 * changes while it streams (source.h invariant 10): a PS_READ_TABLE item
 * before the first change that carries a definition not yet announced in
 * this run, with the table described as the source has it.
 *
 * NOTES ON THE DESIGN
 *
 * 1. pgoutput sends a Relation message before the first change of a table
 *    in a session and again after any invalidation of it (ALTER TABLE, a
 *    rename, a partition attached); the decoder makes each one a new
 *    ps_table. What was last announced is kept per relation OID (`ann`,
 *    open addressing, never shrinking, like the decoder's cache). A change
 *    whose table is the announced one costs one lookup; a new one is
 *    compared with it: another name, other columns (names, types,
 *    modifiers), or for a partitioned table another set of partitions (a
 *    Relation message of the root comes before the first change of each
 *    new leaf). Only then, or for the first definition of a table in the
 *    run, is the table described.
 * 2. Announcing is driven by changes, not by Relation messages: a Relation
 *    message can arrive in a transaction that is skipped (before the start
 *    position), or with no change after it.
 * 3. The description is the catalog's of now, which may be ahead of the
 *    stream (later DDL already committed). It is aligned with the stream's
 *    definition: its columns are the stream's, in its order; a column the
 *    catalog no longer has under that name with that type gets its type
 *    from format_type and nothing else, and a constraint that names it
 *    loses its column list. The next definition of the stream brings the
 *    rest.
 * 4. Enum labels: an enum column's value must be a label the target has.
 *    The labels known when a definition was announced are kept per enum
 *    type; a value outside them makes the source read the labels again and,
 *    when the type gained some, announce the table again (PS_TC_LABELS)
 *    before the change, so that the target adds them first. The first
 *    definition of a run is announced with the labels of now, which covers
 *    labels added while the job was stopped. Arrays and domains of enums
 *    are not looked into.
 * 5. First sights come in bursts (a restart, then a transaction touching
 *    many tables): describing each table on its own cost ~75 ms apiece on
 *    a busy machine, 20 s for 300 tables. So the first first sight of a run
 *    describes every captured table at once (one describe of the lot, as
 *    the initial load's), keeps each def with its relation (`early`), and
 *    each first sight takes its table's when the stream's definition is the
 *    same; only the others are described one by one.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_internal.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/pgconn.h"

/* One enum type's labels as last read. */
typedef struct pg_enum_type {
	uint32_t typid;
	char **labels;
	int nlabels;
	struct pg_enum_type *next;
} pg_enum_type;

/* What was last announced of one relation (note 1). */
typedef struct pg_announced {
	uint32_t relid;            /* 0: a free slot */
	ps_table *table;           /* one reference */
	bool partitioned;
	uint64_t partsig;          /* its partitions when announced */
	int nenum;
	int *enum_cols;            /* positions in table of its enum columns */
	pg_enum_type **enum_types; /* their types (owned by the list in pg_ddl) */
	char **ord_names;          /* the columns' ordinals as last described (note 3) */
	int *ords;
	int nords;
	ps_table_def *early;       /* described with every table for first sights (note 5) */
} pg_announced;

struct pg_ddl {
	pg_announced *slots;
	size_t cap, count;
	pg_enum_type *types;
	bool batched;              /* every captured table was described at once (note 5) */
};

/* --- labels ------------------------------------------------------------- */

int pg_labels_parse(const char *json, char ***labels, int *n)
{
	json_t *a = json_loads(json, 0, NULL), *v;
	size_t i;
	int rc = PS_OK;

	*labels = NULL;
	*n = 0;
	if (!json_is_array(a)) {
		json_decref(a);
		return PS_EPROTO;
	}
	*labels = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!*labels)
		rc = PS_ENOMEM;
	json_array_foreach(a, i, v) {
		if (rc != PS_OK)
			break;
		(*labels)[i] = strdup(json_is_string(v) ? json_string_value(v) : "");
		if (!(*labels)[i])
			rc = PS_ENOMEM;
		else
			*n = (int)i + 1;
	}
	json_decref(a);
	return rc;
}

static void labels_free(char **labels, int n)
{
	for (int i = 0; i < n; i++)
		free(labels[i]);
	free(labels);
}

static bool has_label(const pg_enum_type *t, const char *v)
{
	for (int i = 0; i < t->nlabels; i++)
		if (strcmp(t->labels[i], v) == 0)
			return true;
	return false;
}

/* The type's entry, made (without labels) when missing. */
static pg_enum_type *enum_type(pg_ddl *d, uint32_t typid)
{
	pg_enum_type *t;

	for (t = d->types; t; t = t->next)
		if (t->typid == typid)
			return t;
	t = calloc(1, sizeof(*t));
	if (t) {
		t->typid = typid;
		t->next = d->types;
		d->types = t;
	}
	return t;
}

/* Reads t's labels again; *grew when it has more than before. */
static int labels_reload(ps_source *src, pg_enum_type *t, bool *grew, ps_error *err)
{
	char oid[16], **labels = NULL;
	const char *params[1] = {oid};
	PGresult *r = NULL;
	int n = 0, rc;

	*grew = false;
	snprintf(oid, sizeof(oid), "%u", t->typid);
	rc = pg_exec(src->sql, &r, err, "reading an enum's labels",
	             "SELECT json_agg(enumlabel ORDER BY enumsortorder)::text FROM pg_enum "
	             "WHERE enumtypid = $1::oid", 1, params);
	if (rc == PS_OK && !PQgetisnull(r, 0, 0) &&
	    pg_labels_parse(PQgetvalue(r, 0, 0), &labels, &n) != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	PQclear(r);
	if (rc != PS_OK) {
		labels_free(labels, n);
		return rc;
	}
	*grew = n > t->nlabels;
	labels_free(t->labels, t->nlabels);
	t->labels = labels;
	t->nlabels = n;
	return PS_OK;
}

/* --- the announced definitions (note 1) --------------------------------- */

static size_t slot_of(const pg_ddl *d, uint32_t relid)
{
	uint32_t h = relid * 2654435761u;
	size_t i = (size_t)(h ^ (h >> 16)) & (d->cap - 1);

	while (d->slots[i].relid && d->slots[i].relid != relid)
		i = (i + 1) & (d->cap - 1);
	return i;
}

static pg_announced *ann_find(pg_ddl *d, uint32_t relid)
{
	if (!d->cap)
		return NULL;
	pg_announced *a = &d->slots[slot_of(d, relid)];
	return a->relid ? a : NULL;
}

static pg_announced *ann_get(pg_ddl *d, uint32_t relid)
{
	pg_announced *a = ann_find(d, relid);

	if (a)
		return a;
	if ((d->count + 1) * 4 > d->cap * 3) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		pg_ddl bigger = {calloc(cap, sizeof(pg_announced)), cap, 0, NULL, false};

		if (!bigger.slots)
			return NULL;
		for (size_t i = 0; i < d->cap; i++)
			if (d->slots[i].relid)
				bigger.slots[slot_of(&bigger, d->slots[i].relid)] = d->slots[i];
		free(d->slots);
		d->slots = bigger.slots;
		d->cap = cap;
	}
	a = &d->slots[slot_of(d, relid)];
	a->relid = relid;
	d->count++;
	return a;
}

static void ann_clear(pg_announced *a)
{
	ps_table_unref(a->table);
	free(a->enum_cols);
	free(a->enum_types);
	a->table = NULL;
	a->enum_cols = NULL;
	a->enum_types = NULL;
	a->nenum = 0;
}

static void early_clear(pg_announced *a)
{
	ps_table_def_free(a->early);
	a->early = NULL;
}

static void ords_clear(pg_announced *a)
{
	labels_free(a->ord_names, a->nords);
	free(a->ords);
	a->ord_names = NULL;
	a->ords = NULL;
	a->nords = 0;
}

/* A column the catalog no longer has under its stream name (renamed or
 * dropped since) keeps the ordinal it was last described with (note 3);
 * then def's known ordinals are remembered by name, with the others'. */
static int ords_follow(pg_announced *a, ps_table_def *def)
{
	for (int i = 0; i < def->table->ncolumns; i++)
		for (int k = 0; def->columns[i].ordinal == 0 && k < a->nords; k++)
			if (strcmp(a->ord_names[k], def->table->columns[i].name) == 0)
				def->columns[i].ordinal = a->ords[k];
	for (int i = 0; i < def->table->ncolumns; i++) {
		int k = 0;
		if (def->columns[i].ordinal == 0)
			continue;
		while (k < a->nords && strcmp(a->ord_names[k], def->table->columns[i].name) != 0)
			k++;
		if (k == a->nords) {
			char **names = realloc(a->ord_names, (size_t)(k + 1) * sizeof(char *));
			int *ords = names ? realloc(a->ords, (size_t)(k + 1) * sizeof(int)) : NULL;
			if (names)
				a->ord_names = names;
			if (ords)
				a->ords = ords;
			if (!names || !ords || !(a->ord_names[k] = strdup(def->table->columns[i].name)))
				return PS_ENOMEM;
			a->nords++;
		}
		a->ords[k] = def->columns[i].ordinal;
	}
	return PS_OK;
}

void pg_ddl_free(pg_ddl *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->cap; i++)
		if (d->slots[i].relid) {
			ann_clear(&d->slots[i]);
			ords_clear(&d->slots[i]);
			early_clear(&d->slots[i]);
		}
	free(d->slots);
	while (d->types) {
		pg_enum_type *next = d->types->next;
		labels_free(d->types->labels, d->types->nlabels);
		free(d->types);
		d->types = next;
	}
	free(d);
}

/* --- partitions ------------------------------------------------------------ */

static uint64_t fnv(const char *s, uint64_t h)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

int pg_partitions_signature(ps_source *src, uint32_t relid, uint64_t *sig, ps_error *err)
{
	char oid[16];
	const char *params[1] = {oid};
	PGresult *r = NULL;
	int rc;

	snprintf(oid, sizeof(oid), "%u", relid);
	rc = pg_exec(src->sql, &r, err, "listing partitions",
	             "SELECT coalesce(string_agg(format('%s %I.%I %s', c.oid, n.nspname, c.relname, "
	             "  pg_get_expr(c.relpartbound, c.oid)), ',' ORDER BY c.oid), '') "
	             "FROM pg_partition_tree($1::oid) t JOIN pg_class c ON c.oid = t.relid "
	             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.level > 0", 1, params);
	if (rc == PS_OK)
		*sig = fnv(PQgetvalue(r, 0, 0), 0xcbf29ce484222325ull);
	PQclear(r);
	return rc;
}

/* --- describing a stream definition (note 3) ------------------------------ */

static bool same_columns(const ps_table *a, const ps_table *b)
{
	if (a->ncolumns != b->ncolumns)
		return false;
	for (int i = 0; i < a->ncolumns; i++)
		if (strcmp(a->columns[i].name, b->columns[i].name) != 0 ||
		    a->columns[i].type_id != b->columns[i].type_id ||
		    a->columns[i].type_mod != b->columns[i].type_mod)
			return false;
	return true;
}

static bool same_name(const ps_table *a, const ps_table *b)
{
	return strcmp(a->schema, b->schema) == 0 && strcmp(a->name, b->name) == 0;
}

/* Moves column def `from` of src_def into `to`, leaving `from` empty. */
static void column_move(ps_column_def *to, ps_column_def *from)
{
	*to = *from;
	memset(from, 0, sizeof(*from));
}

/* def (the catalog's) rebuilt with t's columns in t's order (note 3). */
static int align(ps_source *src, const ps_table *t, ps_table_def *def, ps_error *err)
{
	ps_table *nt = ps_table_new(t->id, t->ncolumns);
	ps_column_def *cols = calloc((size_t)t->ncolumns + 1, sizeof(*cols));
	int *map = calloc((size_t)def->table->ncolumns + 1, sizeof(int));
	int rc = PS_OK;

	if (!nt || !cols || !map || ps_table_set_names(nt, t->schema, t->name) != PS_OK) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	nt->engine = "postgresql";
	nt->replica_identity = def->table->replica_identity;
	for (int j = 0; j < def->table->ncolumns; j++)
		map[j] = -1;
	for (int i = 0; rc == PS_OK && i < t->ncolumns; i++) {
		const ps_column *sc = &t->columns[i];
		int found = -1;

		for (int j = 0; j < def->table->ncolumns && found < 0; j++)
			if (strcmp(def->table->columns[j].name, sc->name) == 0 &&
			    def->table->columns[j].type_id == sc->type_id &&
			    def->table->columns[j].type_mod == sc->type_mod)
				found = j;
		rc = ps_table_set_column(nt, i, sc->name, sc->type_id, sc->type_mod, sc->type_class,
		                         found >= 0 && def->table->columns[found].is_key);
		if (found >= 0) {
			map[found] = i;
			column_move(&cols[i], &def->columns[found]);
			continue;
		}
		/* not in the catalog as the stream has it: its type, and no more */
		char typid[16], typmod[16];
		const char *params[2] = {typid, typmod};
		PGresult *r = NULL;

		snprintf(typid, sizeof(typid), "%u", sc->type_id);
		snprintf(typmod, sizeof(typmod), "%d", (int)sc->type_mod);
		if (rc == PS_OK)
			rc = pg_exec(src->sql, &r, err, "naming a column's type",
			             "SELECT format_type($1::oid, $2::int), t.typnamespace <> "
			             "'pg_catalog'::regnamespace FROM pg_type t WHERE t.oid = $1::oid", 2, params);
		if (rc == PS_OK && PQntuples(r) == 1) {
			cols[i].sql_type = strdup(PQgetvalue(r, 0, 0));
			cols[i].user_type = PQgetvalue(r, 0, 1)[0] == 't';
			if (!cols[i].sql_type)
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		cols[i].fill = PS_FILL_UNKNOWN;
		PQclear(r);
	}
	if (rc != PS_OK)
		goto cleanup;
	/* constraints on columns that moved keep them; others lose the list */
	for (int k = 0; k < def->nconstraints; k++) {
		ps_constraint_def *c = &def->constraints[k];
		bool all = true;

		for (int j = 0; j < c->ncols; j++) {
			if (map[c->cols[j]] < 0)
				all = false;
			else
				c->cols[j] = map[c->cols[j]];
		}
		if (!all) {
			if (c->kind == PS_CONSTRAINT_PRIMARY)
				def->has_primary_key = false;
			free(c->cols);
			c->cols = NULL;
			c->ncols = 0;
		}
	}
	for (int j = 0; j < def->table->ncolumns; j++) {
		ps_column_def *c = &def->columns[j];
		free(c->sql_type);
		free(c->default_expr);
		free(c->sequence);
		free(c->collation);
		free(c->identity_options);
		free(c->comment);
		free(c->fill_value);
		labels_free(c->labels, c->nlabels);
	}
	free(def->columns);
	def->columns = cols;
	cols = NULL;
	ps_table_unref(def->table);
	def->table = nt;
	nt = NULL;
cleanup:
	free(cols);
	free(map);
	ps_table_unref(nt);
	return rc;
}

int pg_describe_table(ps_source *src, const ps_table *t, ps_table_def **out, ps_error *err)
{
	ps_table_def **defs = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	rc = pg_describe_oids(src, &t->id, 1, &defs, &n, err);
	if (rc != PS_OK)
		return rc;
	if (n == 1) {
		*out = defs[0];
		defs[0] = NULL;
		if (!same_columns((*out)->table, t) || !same_name((*out)->table, t))
			rc = align(src, t, *out, err);
		if (rc != PS_OK) {
			ps_table_def_free(*out);
			*out = NULL;
		}
	}
	for (size_t i = 0; i < n; i++)
		ps_table_def_free(defs[i]);
	free(defs);
	return rc;
}

/* --- announcing (notes 1, 2, 4) ------------------------------------------ */

/* Records def's enum columns and their labels in a. */
static int remember_enums(pg_ddl *d, pg_announced *a, const ps_table_def *def)
{
	int n = 0;

	if (!def)
		return PS_OK;
	for (int i = 0; i < def->table->ncolumns; i++)
		n += def->columns[i].labels != NULL;
	if (!n)
		return PS_OK;
	a->enum_cols = calloc((size_t)n, sizeof(int));
	a->enum_types = calloc((size_t)n, sizeof(pg_enum_type *));
	if (!a->enum_cols || !a->enum_types)
		return PS_ENOMEM;
	for (int i = 0; i < def->table->ncolumns; i++) {
		const ps_column_def *c = &def->columns[i];
		pg_enum_type *t;

		if (!c->labels)
			continue;
		t = enum_type(d, def->table->columns[i].type_id);
		if (!t)
			return PS_ENOMEM;
		if (c->nlabels > t->nlabels) {
			char **copy = calloc((size_t)c->nlabels + 1, sizeof(char *));
			for (int l = 0; copy && l < c->nlabels; l++)
				if (!(copy[l] = strdup(c->labels[l]))) {
					labels_free(copy, l);
					copy = NULL;
				}
			if (!copy)
				return PS_ENOMEM;
			labels_free(t->labels, t->nlabels);
			t->labels = copy;
			t->nlabels = c->nlabels;
		}
		a->enum_cols[a->nenum] = i;
		a->enum_types[a->nenum++] = t;
	}
	return PS_OK;
}

/* The name under which the source selected relid, or NULL. */
static const char *selected_name(const ps_source *src, uint32_t relid)
{
	for (size_t i = 0; src->table_names && i < src->ntable_oids; i++)
		if (src->table_oids[i] == relid)
			return src->table_names[i];
	return NULL;
}

/* Every captured table described at once, each def kept with its relation
 * (note 5). A failure only means first sights describe one by one. */
static void describe_early(ps_source *src)
{
	ps_table_def **defs = NULL;
	size_t n = 0;
	ps_error ignored;

	src->ddl->batched = true;
	ps_error_clear(&ignored);
	if (!src->table_oids || pg_describe_oids(src, src->table_oids, src->ntable_oids, &defs, &n,
	                                         &ignored) != PS_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		pg_announced *a = ann_get(src->ddl, defs[i]->table->id);
		if (a && !a->table) {
			early_clear(a);
			a->early = defs[i];
			defs[i] = NULL;
		}
		ps_table_def_free(defs[i]);
	}
	free(defs);
}

static int announce(ps_source *src, pg_announced *a, const ps_change *c, uint32_t what,
                    ps_table_change **out, ps_error *err)
{
	ps_table_change *tc = calloc(1, sizeof(*tc));
	ps_table *t = c->table;
	int rc = PS_OK;

	if (!tc)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	tc->lsn = c->lsn;
	tc->table = ps_table_ref(t);
	tc->previous = a->table ? ps_table_ref(a->table) : NULL;
	tc->what = what;
	if (what == PS_TC_FIRST && !src->ddl->batched) {
		describe_early(src);
		a = ann_get(src->ddl, t->id);   /* the map may have grown */
		if (!a) {
			ps_table_change_free(tc);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
	}
	if (a->early && same_columns(a->early->table, t) && same_name(a->early->table, t)) {
		tc->def = a->early;   /* described with the others: the same definition */
		a->early = NULL;
	} else {
		early_clear(a);
		rc = pg_describe_table(src, t, &tc->def, err);
	}
	if (rc != PS_OK) {
		ps_table_change_free(tc);
		return ps_error_add_context(err, "describing %s.%s after a change of its definition",
		                            t->schema, t->name);
	}
	ann_clear(a);
	a->table = ps_table_ref(t);
	a->partitioned = tc->def && tc->def->partition_by;
	if ((tc->def && ords_follow(a, tc->def) != PS_OK) ||
	    remember_enums(src->ddl, a, tc->def) != PS_OK) {
		ps_table_change_free(tc);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (a->partitioned) {
		rc = pg_partitions_signature(src, t->id, &a->partsig, err);
		if (rc != PS_OK) {
			ps_table_change_free(tc);
			return rc;
		}
	}
	if (what & ~PS_TC_FIRST) {
		char said[128] = "";
		size_t used = 0;
		static const struct { uint32_t bit; const char *word; } words[] = {
			{PS_TC_NAME, "its name"}, {PS_TC_COLUMNS, "its columns"},
			{PS_TC_PARTITIONS, "its partitions"}, {PS_TC_LABELS, "an enum's labels"}};
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (what & words[i].bit && used < sizeof(said))
				used += (size_t)snprintf(said + used, sizeof(said) - used, "%s%s",
				                         used ? ", " : "", words[i].word);
		ps_log_info("table %s.%s: new definition in the stream (%s changed)", t->schema, t->name,
		            said);
	}
	*out = tc;
	return PS_OK;
}

/* Whether a value of an enum column of a is a label the announcement did
 * not know; reads the labels again when so (note 4). */
static int labels_grew(ps_source *src, pg_announced *a, const ps_change *c, bool *grew,
                       ps_error *err)
{
	*grew = false;
	for (int k = 0; k < a->nenum && c->new_values; k++) {
		const ps_value *v = &c->new_values[a->enum_cols[k]];
		int rc;

		if (v->kind != PS_VALUE_TEXT || has_label(a->enum_types[k], v->data))
			continue;
		rc = labels_reload(src, a->enum_types[k], grew, err);
		if (rc != PS_OK || *grew)
			return rc;
	}
	return PS_OK;
}

int pg_ddl_check(ps_source *src, const ps_change *c, ps_table_change **out, ps_error *err)
{
	pg_announced *a;
	ps_table *t = c->table;
	uint32_t what = 0;
	bool grew = false;
	int rc;

	*out = NULL;
	if (!t)
		return PS_OK;
	if (!src->ddl) {
		src->ddl = calloc(1, sizeof(*src->ddl));
		if (!src->ddl)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	a = ann_get(src->ddl, t->id);
	if (!a)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (a->table == t) {
		if (!a->nenum)
			return PS_OK;
		rc = labels_grew(src, a, c, &grew, err);
		if (rc != PS_OK || !grew)
			return rc;
		return announce(src, a, c, PS_TC_LABELS, out, err);
	}
	if (!a->table) {
		const char *sel = selected_name(src, t->id);
		char q[300];

		what = PS_TC_FIRST;
		snprintf(q, sizeof(q), "%s.%s", t->schema, t->name);
		if (sel && strcmp(sel, q) != 0)
			what |= PS_TC_NAME;   /* renamed or moved since it was selected */
		return announce(src, a, c, what, out, err);
	}
	if (!same_name(a->table, t))
		what |= PS_TC_NAME;
	if (!same_columns(a->table, t))
		what |= PS_TC_COLUMNS;
	if (!what && a->partitioned) {
		uint64_t sig = 0;
		rc = pg_partitions_signature(src, t->id, &sig, err);
		if (rc != PS_OK)
			return rc;
		if (sig != a->partsig)
			what |= PS_TC_PARTITIONS;
	}
	if (!what) {
		ps_table_unref(a->table);
		a->table = ps_table_ref(t);   /* the same definition sent again */
		return PS_OK;
	}
	return announce(src, a, c, what, out, err);
}

/* --- redescribe (source.h): a backfill's def against the catalog ---------- */

/* "attnum name typid typmod,..." of def's columns, as the query below. */
static int def_columns_text(const ps_table_def *def, ps_buf *b)
{
	int rc = PS_OK;

	for (int i = 0; rc == PS_OK && i < def->table->ncolumns; i++)
		rc = ps_buf_printf(b, "%s%d %s %u %d", i ? "," : "", def->columns[i].ordinal,
		                   def->table->columns[i].name, def->table->columns[i].type_id,
		                   (int)def->table->columns[i].type_mod);
	return rc;
}

/* "schema.name bound,..." of def's partitions, in describe's order. */
static int def_partitions_text(const ps_table_def *def, ps_buf *b)
{
	int rc = PS_OK;

	for (int i = 0; rc == PS_OK && i < def->npartitions; i++)
		rc = ps_buf_printf(b, "%s%s.%s %s", i ? "," : "", def->partitions[i].schema,
		                   def->partitions[i].name,
		                   def->partitions[i].bound ? def->partitions[i].bound : "");
	return rc;
}

int pg_redescribe(ps_source *src, const ps_table_def *def, ps_table_def **out, bool *gone,
                  ps_error *err)
{
	char oid[16];
	const char *params[1] = {oid};
	PGresult *r = NULL;
	ps_table_def **defs = NULL;
	size_t n = 0;
	ps_buf cols, parts;
	bool same;
	int rc;

	*out = NULL;
	*gone = false;
	snprintf(oid, sizeof(oid), "%u", def->table->id);
	rc = pg_exec(src->sql, &r, err, "looking at a table's columns",
	             "SELECT n.nspname, c.relname, "
	             "  coalesce((SELECT string_agg(format('%s %s %s %s', a.attnum, a.attname, "
	             "    a.atttypid, a.atttypmod), ',' ORDER BY a.attnum) FROM pg_attribute a "
	             "    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
	             "    AND coalesce(to_jsonb(a) ->> 'attgenerated', '') = ''), ''), "
	             "  CASE WHEN c.relkind = 'p' THEN coalesce((SELECT string_agg(format('%s.%s %s', "
	             "    pn.nspname, p.relname, pg_get_expr(p.relpartbound, p.oid)), ',' "
	             "    ORDER BY t.level, pn.nspname, p.relname) FROM pg_partition_tree(c.oid) t "
	             "    JOIN pg_class p ON p.oid = t.relid "
	             "    JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE t.level > 0), '') "
	             "  ELSE '' END "
	             "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	             "WHERE c.oid = $1::oid", 1, params);
	if (rc != PS_OK)
		return rc;
	if (PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 0), def->table->schema) != 0 ||
	    strcmp(PQgetvalue(r, 0, 1), def->table->name) != 0) {
		*gone = true;   /* dropped, or renamed: the selection takes it in again */
		PQclear(r);
		return PS_OK;
	}
	ps_buf_init(&cols, 1u << 20);
	ps_buf_init(&parts, 1u << 20);
	if (def_columns_text(def, &cols) != PS_OK || def_partitions_text(def, &parts) != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	same = rc == PS_OK && strcmp(cols.data ? cols.data : "", PQgetvalue(r, 0, 2)) == 0 &&
	       strcmp(parts.data ? parts.data : "", PQgetvalue(r, 0, 3)) == 0;
	ps_buf_free(&cols);
	ps_buf_free(&parts);
	PQclear(r);
	if (rc != PS_OK || same)
		return rc;
	rc = pg_describe_oids(src, &def->table->id, 1, &defs, &n, err);
	if (rc == PS_OK && n == 1) {
		*out = defs[0];
		defs[0] = NULL;
	} else if (rc == PS_OK) {
		*gone = true;
	}
	for (size_t i = 0; i < n; i++)
		ps_table_def_free(defs[i]);
	free(defs);
	return rc;
}

void pg_ddl_seed(ps_source *src, ps_table_def *def)
{
	pg_announced *a;

	if (!src->ddl && !(src->ddl = calloc(1, sizeof(*src->ddl))))
		return;
	a = ann_get(src->ddl, def->table->id);
	if (a && ords_follow(a, def) != PS_OK)
		ords_clear(a);   /* out of memory: the ordinals are only a help */
}
