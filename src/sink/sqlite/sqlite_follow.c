/*
 * sqlite_follow.c — the SQLite sink follows a table's schema changes
 * (sink.h table_change) and records the tables it created.
 *
 * NOTES ON THE DESIGN
 *
 *  1. The record: _penstock_tables holds one row per target table penstock
 *     created, keyed by its SQLite name, with the source columns it made
 *     (their names and the source's numbers for them), written in the
 *     transaction that creates or alters the table. Without a row, or with
 *     columns penstock did not make, the table is the user's (as in the
 *     PostgreSQL sink, pgsink_follow.c NOTES 1).
 *  2. Columns are matched as in the PostgreSQL sink: by the source's number
 *     (a rename keeps it), else by name, else by the stream's previous
 *     name at the same place.
 *  3. What SQLite can do in place, it does: ADD COLUMN (the rows it held
 *     get the value the source's rows got, by an UPDATE with the same
 *     conversion as any value), RENAME COLUMN, DROP COLUMN (after the
 *     indexes penstock made on it). A column whose declared type changes
 *     (INTEGER to TEXT for bigint to numeric) needs the table rebuilt:
 *     renamed aside, created anew from the def with its key, the rows
 *     copied by column, the old one dropped, the indexes made again. A type
 *     change within one declared type changes nothing in SQLite. Defaults
 *     and NOT NULL are not carried to SQLite (docs/types-sqlite.md).
 *  4. Rows only the source can fill (a volatile default, a type changed by
 *     the source's own expression) make *backfill ask for the table's rows
 *     again, as in the PostgreSQL sink.
 *  5. Everything runs in the open transaction (SQLite's DDL is
 *     transactional): the change commits with the rows after it and the
 *     checkpoint, or not at all.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/sqlite/sqlite_typemap.h"
#include "sink/sqlite/sqlite_internal.h"
#include "util/log.h"

/* ==== the target's columns and the record ================================ */

typedef struct sq_col {
	char *name;
	char *decl;          /* the declared type */
	bool pk;
	bool matched;
} sq_col;

typedef struct sq_target {
	int n;
	sq_col *cols;
} sq_target;

static void target_free(sq_target *t)
{
	for (int i = 0; i < t->n; i++) {
		free(t->cols[i].name);
		free(t->cols[i].decl);
	}
	free(t->cols);
	memset(t, 0, sizeof(*t));
}

static int target_load(ps_sink *k, const char *target, sq_target *tt, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, cap = 0;

	memset(tt, 0, sizeof(*tt));
	rc = sqlite3_prepare_v2(k->db, "SELECT name, type, pk FROM pragma_table_info(?1, 'main')",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		sq_col *c;

		if (tt->n == cap) {
			int ncap = cap ? cap * 2 : 16;
			sq_col *grown = realloc(tt->cols, (size_t)ncap * sizeof(*grown));
			if (!grown) {
				sqlite3_finalize(st);
				target_free(tt);
				return ps_error_set(err, PS_ENOMEM, "out of memory");
			}
			tt->cols = grown;
			cap = ncap;
		}
		c = &tt->cols[tt->n++];
		memset(c, 0, sizeof(*c));
		c->name = strdup((const char *)sqlite3_column_text(st, 0));
		c->decl = strdup(sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
		c->pk = sqlite3_column_int(st, 2) > 0;
		rc = c->name && c->decl ? SQLITE_OK : SQLITE_NOMEM;
	}
	if (rc != SQLITE_DONE) {
		rc = ps__sqlite_fail(k, rc, err, "cannot read the columns of table %s", target);
		sqlite3_finalize(st);
		target_free(tt);
		return rc;
	}
	sqlite3_finalize(st);
	return 0;
}

static sq_col *target_col(sq_target *tt, const char *name)
{
	for (int i = 0; i < tt->n; i++)
		if (sqlite3_stricmp(tt->cols[i].name, name) == 0)
			return &tt->cols[i];
	return NULL;
}

typedef struct sq_record {
	bool owned;
	int n;
	char **names;
	int *ordinals;
} sq_record;

static void record_free(sq_record *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->names[i]);
	free(r->names);
	free(r->ordinals);
	memset(r, 0, sizeof(*r));
}

int ps__sqlite_registry_init(ps_sink *k, ps_error *err)
{
	return ps__sqlite_exec(k, "CREATE TABLE IF NOT EXISTS " SQ_TABLES_TABLE
	                       " (name TEXT PRIMARY KEY, job TEXT NOT NULL, columns TEXT NOT NULL, "
	                       "source INTEGER NOT NULL DEFAULT 0)",
	                       err, "cannot create the table " SQ_TABLES_TABLE);
}

static int record_load(ps_sink *k, const char *target, sq_record *rec, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	json_t *cols = NULL, *v;
	size_t i;
	int rc;

	memset(rec, 0, sizeof(*rec));
	rc = sqlite3_prepare_v2(k->db, "SELECT columns FROM " SQ_TABLES_TABLE " WHERE name = ?1", -1,
	                        &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rec->owned = true;
		cols = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		rc = ps__sqlite_fail(k, rc, err, "cannot read " SQ_TABLES_TABLE);
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	rec->names = calloc(json_array_size(cols) + 1, sizeof(char *));
	rec->ordinals = calloc(json_array_size(cols) + 1, sizeof(int));
	if (!rec->names || !rec->ordinals) {
		json_decref(cols);
		record_free(rec);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	json_array_foreach(cols, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (!name || !(rec->names[rec->n] = strdup(name)))
			continue;
		rec->ordinals[rec->n++] = (int)json_integer_value(json_object_get(v, "ordinal"));
	}
	json_decref(cols);
	return 0;
}

int ps__sqlite_registry_store(ps_sink *k, const char *target, const ps_table_def *def,
                              uint32_t srcid, ps_error *err)
{
	json_t *cols = json_array();
	sqlite3_stmt *st = NULL;
	sq_record prev;
	char *text;
	int rc;

	/* a column the source could not number now keeps its number */
	rc = record_load(k, target, &prev, err);
	if (rc != 0) {
		json_decref(cols);
		return rc;
	}
	for (int i = 0; cols && i < def->table->ncolumns; i++) {
		int ordinal = def->columns ? def->columns[i].ordinal : 0;
		for (int r = 0; ordinal == 0 && r < prev.n; r++)
			if (sqlite3_stricmp(prev.names[r], def->table->columns[i].name) == 0)
				ordinal = prev.ordinals[r];
		json_array_append_new(cols, json_pack("{s:s, s:i}", "name", def->table->columns[i].name,
		                                      "ordinal", ordinal));
	}
	record_free(&prev);
	text = cols ? json_dumps(cols, JSON_COMPACT) : NULL;
	json_decref(cols);
	if (!text)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = sqlite3_prepare_v2(k->db, "INSERT INTO " SQ_TABLES_TABLE " (name, job, columns, source) "
	                        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
	                        "job = excluded.job, columns = excluded.columns, "
	                        "source = excluded.source", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, k->job, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 4, srcid);
	if (rc == SQLITE_OK)
		rc = ps__sqlite_run(k, st, err, "cannot write " SQ_TABLES_TABLE);
	else
		rc = ps__sqlite_fail(k, rc, err, "cannot write " SQ_TABLES_TABLE);
	sqlite3_finalize(st);
	free(text);
	return rc;
}

/* ==== the plan (NOTES 2, 3) ================================================ */

typedef struct sq_plan {
	sq_col **match;      /* per def column: its target column, or NULL (added) */
	sq_col **drops;      /* recorded columns the source dropped */
	int ndrops;
	bool rebuild;        /* a declared type changes */
	bool backfill;
	ps_buf what;
	int nchanges;
} sq_plan;

static void note(sq_plan *pl, const char *fmt, ...) PS_PRINTF(2, 3);
static void note(sq_plan *pl, const char *fmt, ...)
{
	char text[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ps_buf_printf(&pl->what, "%s%s", pl->what.len ? "; " : "", text);
	pl->nchanges++;
}

static sq_col *match_column(const ps_table_change *tc, const sq_record *rec, sq_target *tt, int i)
{
	const ps_table_def *def = tc->def;
	const ps_column *c = &def->table->columns[i];
	const ps_table *prev = tc->previous;
	sq_col *t;

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
	    strcmp(prev->columns[i].name, c->name) != 0 && prev->columns[i].type_id == c->type_id) {
		t = target_col(tt, prev->columns[i].name);
		if (t && !t->matched)
			return t;
	}
	return NULL;
}

/* full: a table penstock made gets the source's definition whole; one the
 * user manages only the columns the source sends (as in pgsink_follow.c). */
static int plan_make(const ps_table_change *tc, const sq_record *rec, sq_target *tt, bool full,
                     sq_plan *pl, ps_error *err)
{
	const ps_table_def *def = tc->def;
	int n = def->table->ncolumns;

	pl->match = calloc((size_t)n + 1, sizeof(sq_col *));
	pl->drops = calloc((size_t)rec->n + 1, sizeof(sq_col *));
	if (!pl->match || !pl->drops)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		pl->match[i] = match_column(tc, rec, tt, i);
		if (pl->match[i])
			pl->match[i]->matched = true;
	}
	for (int r = 0; full && r < rec->n; r++) {
		sq_col *t = target_col(tt, rec->names[r]);
		if (t && !t->matched) {
			pl->drops[pl->ndrops++] = t;
			note(pl, "column %s dropped", t->name);
		}
	}
	for (int i = 0; i < n; i++) {
		const ps_column_def *cd = &def->columns[i];
		const char *name = def->table->columns[i].name;
		const char *decl = ps_typemap_sqlite_decl(ps_typemap_sqlite(def->engine,
		                                                            &def->table->columns[i], cd));
		sq_col *t = pl->match[i];

		if (!t) {
			note(pl, "column %s %s added", name, decl);
			pl->backfill |= cd->fill == PS_FILL_UNKNOWN;
			continue;
		}
		if (sqlite3_stricmp(t->name, name) != 0)
			note(pl, "column %s renamed to %s", t->name, name);
		if (full && sqlite3_stricmp(t->decl, decl) != 0) {
			note(pl, "column %s: %s, was %s", name, decl, t->decl);
			pl->rebuild = true;
		}
		/* a new source type with the same declared type: nothing to do in
		 * SQLite, but the source may have computed new values */
		if (tc->previous && tc->previous->ncolumns == def->table->ncolumns)
			for (int j = 0; j < tc->previous->ncolumns; j++)
				if (strcmp(tc->previous->columns[j].name, name) == 0 &&
				    (tc->previous->columns[j].type_id != def->table->columns[i].type_id ||
				     tc->previous->columns[j].type_mod != def->table->columns[i].type_mod))
					pl->backfill = true;
	}
	pl->backfill |= pl->rebuild;
	return PS_OK;
}

/* Target columns penstock did not make, and the source does not have now:
 * how many, named in b. */
static int user_columns(const sq_record *rec, const sq_target *tt, const ps_table *t, ps_buf *b)
{
	int n = 0;

	for (int i = 0; i < tt->n; i++) {
		bool made = false;
		for (int r = 0; r < rec->n && !made; r++)
			made = sqlite3_stricmp(rec->names[r], tt->cols[i].name) == 0;
		for (int c = 0; c < t->ncolumns && !made; c++)
			made = sqlite3_stricmp(t->columns[c].name, tt->cols[i].name) == 0;
		if (!made)
			ps_buf_printf(b, "%s%s", n++ ? ", " : "", tt->cols[i].name);
	}
	return n;
}

/* ==== executing (NOTES 3) ================================================== */

static int exec_sql(ps_sink *k, ps_buf *b, const char *target, const char *what, ps_error *err)
{
	int rc = ps__sqlite_exec(k, b->data, err, what);

	if (rc != 0)
		ps_error_add_context(err, "table %s", target);
	return rc;
}

/* Fills new column i of def in every row with the value the source's rows
 * got when it was added (NOTES 3). */
static int fill_column(ps_sink *k, const ps_table_def *def, int i, const char *qtarget,
                       ps_error *err)
{
	const ps_column_def *cd = &def->columns[i];
	uint8_t storage = ps_typemap_sqlite(def->engine, &def->table->columns[i], cd);
	ps_value v = {PS_VALUE_TEXT, 0, cd->fill_value};
	ps_sqlite_datum d;
	unsigned char *scratch = NULL;
	const char *why = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if (cd->fill != PS_FILL_VALUE || !cd->fill_value)
		return 0;
	v.len = (uint32_t)strlen(cd->fill_value);
	scratch = malloc(ps_typemap_sqlite_scratch(storage, &v) + 1);
	if (!scratch)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = ps_typemap_sqlite_convert(storage, &v, scratch, &d, &why);
	if (rc != 0) {
		free(scratch);
		return ps_error_set(err, PS_EINVAL, "column %s: value %s: %s", def->table->columns[i].name,
		                    cd->fill_value, why ? why : "cannot be converted");
	}
	ps_buf_reset(&k->sql);
	if (ps_buf_printf(&k->sql, "UPDATE %s SET ", qtarget) != 0 ||
	    ps_sql_quote_ident(&k->sql, def->table->columns[i].name) != 0 ||
	    ps_buf_puts(&k->sql, " = ?1") != 0) {
		free(scratch);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	rc = ps__sqlite_prepare(k, &k->sql, false, &st, err);
	if (rc == 0) {
		switch (d.type) {
		case PS_DATUM_INTEGER: rc = sqlite3_bind_int64(st, 1, d.i); break;
		case PS_DATUM_REAL: rc = sqlite3_bind_double(st, 1, d.r); break;
		case PS_DATUM_TEXT: rc = sqlite3_bind_text(st, 1, d.p, (int)d.n, SQLITE_STATIC); break;
		case PS_DATUM_BLOB: rc = sqlite3_bind_blob(st, 1, d.p, (int)d.n, SQLITE_STATIC); break;
		default: rc = sqlite3_bind_null(st, 1); break;
		}
		rc = rc == SQLITE_OK ? ps__sqlite_run(k, st, err, "cannot fill a new column")
		                     : ps__sqlite_fail(k, rc, err, "cannot bind a new column's value");
	}
	sqlite3_finalize(st);
	free(scratch);
	return rc;
}

/* Drops the indexes penstock made on a column, then the column. */
static int drop_column(ps_sink *k, const char *target, const char *qtarget, const char *col,
                       ps_error *err)
{
	sqlite3_stmt *st = NULL;
	char **names = NULL;
	int n = 0, rc;

	rc = sqlite3_prepare_v2(k->db, "SELECT DISTINCT l.name FROM pragma_index_list(?1) l, "
	                        "pragma_index_info(l.name) i WHERE i.name = ?2 AND l.origin = 'c'",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **grown = realloc(names, (size_t)(n + 1) * sizeof(char *));
		if (!grown || !(grown[n] = strdup((const char *)sqlite3_column_text(st, 0)))) {
			names = grown ? grown : names;
			rc = SQLITE_NOMEM;
			break;
		}
		names = grown;
		n++;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	rc = rc == SQLITE_DONE ? 0 : ps__sqlite_fail(k, rc, err, "cannot list the indexes of %s", target);
	for (int i = 0; rc == 0 && i < n; i++) {
		ps_buf_reset(&k->sql);
		if (ps_buf_puts(&k->sql, "DROP INDEX IF EXISTS ") != 0 ||
		    ps_sql_quote_ident(&k->sql, names[i]) != 0)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = exec_sql(k, &k->sql, target, "cannot drop an index on a dropped column", err);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc != 0)
		return rc;
	ps_buf_reset(&k->sql);
	if (ps_buf_printf(&k->sql, "ALTER TABLE %s DROP COLUMN ", qtarget) != 0 ||
	    ps_sql_quote_ident(&k->sql, col) != 0)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	return exec_sql(k, &k->sql, target, "cannot drop a column", err);
}

/* In place: renames, drops, adds (NOTES 3). */
static int alter_in_place(ps_sink *k, const ps_table_def *def, const sq_plan *pl,
                          const char *target, const char *qtarget, ps_error *err)
{
	int rc = 0;

	for (int i = 0; rc == 0 && i < def->table->ncolumns; i++) {
		const char *name = def->table->columns[i].name;

		if (!pl->match[i] || sqlite3_stricmp(pl->match[i]->name, name) == 0)
			continue;
		ps_buf_reset(&k->sql);
		if (ps_buf_printf(&k->sql, "ALTER TABLE %s RENAME COLUMN ", qtarget) != 0 ||
		    ps_sql_quote_ident(&k->sql, pl->match[i]->name) != 0 ||
		    ps_buf_puts(&k->sql, " TO ") != 0 || ps_sql_quote_ident(&k->sql, name) != 0)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = exec_sql(k, &k->sql, target, "cannot rename a column", err);
	}
	for (int d = 0; rc == 0 && d < pl->ndrops; d++)
		rc = drop_column(k, target, qtarget, pl->drops[d]->name, err);
	for (int i = 0; rc == 0 && i < def->table->ncolumns; i++) {
		const char *name = def->table->columns[i].name;

		if (pl->match[i])
			continue;
		ps_buf_reset(&k->sql);
		if (ps_buf_printf(&k->sql, "ALTER TABLE %s ADD COLUMN ", qtarget) != 0 ||
		    ps_sql_quote_ident(&k->sql, name) != 0 ||
		    ps_buf_printf(&k->sql, " %s", ps_typemap_sqlite_decl(
		        ps_typemap_sqlite(def->engine, &def->table->columns[i], &def->columns[i]))) != 0)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = exec_sql(k, &k->sql, target, "cannot add a column", err);
		if (rc == 0)
			rc = fill_column(k, def, i, qtarget, err);
	}
	return rc;
}

/* Rebuilt from def (NOTES 3): aside, anew, rows copied, old dropped, indexes. */
static int rebuild(ps_sink *k, const ps_table_def *def, const sq_plan *pl, const char *target,
                   const char *qtarget, ps_error *err)
{
	char *aside = ps__sqlite_join_dot(target, "penstock_old");
	ps_buf cols, vals;
	int rc = 0;

	if (!aside)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_init(&cols, SQ_SQL_LIMIT);
	ps_buf_init(&vals, SQ_SQL_LIMIT);
	ps_buf_reset(&k->sql);
	if (ps_buf_printf(&k->sql, "ALTER TABLE %s RENAME TO ", qtarget) != 0 ||
	    ps_sql_quote_ident(&k->sql, aside) != 0)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	if (rc == 0)
		rc = exec_sql(k, &k->sql, target, "cannot set the table aside", err);
	if (rc == 0)
		rc = ps__sqlite_create_table(k, def, target, err);
	for (int i = 0; rc == 0 && i < def->table->ncolumns; i++) {
		if (!pl->match[i])
			continue;
		if ((cols.len && ps_buf_puts(&cols, ", ") != 0) || (vals.len && ps_buf_puts(&vals, ", ") != 0) ||
		    ps_sql_quote_ident(&cols, def->table->columns[i].name) != 0 ||
		    ps_sql_quote_ident(&vals, pl->match[i]->name) != 0)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (rc == 0 && cols.len) {
		ps_buf_reset(&k->sql);
		if (ps_buf_printf(&k->sql, "INSERT INTO %s (%s) SELECT %s FROM ", qtarget, cols.data,
		                  vals.data) != 0 || ps_sql_quote_ident(&k->sql, aside) != 0)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = exec_sql(k, &k->sql, target, "cannot copy the rows into the rebuilt table", err);
	}
	for (int i = 0; rc == 0 && i < def->table->ncolumns; i++)
		if (!pl->match[i])
			rc = fill_column(k, def, i, qtarget, err);
	if (rc == 0) {
		ps_buf_reset(&k->sql);
		if (ps_buf_puts(&k->sql, "DROP TABLE ") != 0 || ps_sql_quote_ident(&k->sql, aside) != 0)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = exec_sql(k, &k->sql, target, "cannot drop the table set aside", err);
	}
	if (rc == 0)
		rc = ps__sqlite_table_finish(k, def, err);
	ps_buf_free(&cols);
	ps_buf_free(&vals);
	free(aside);
	return rc;
}

/* ==== table_change ========================================================== */

static const char *follow_name(int follow)
{
	return follow == PS_FOLLOW_ALL ? "all" : follow == PS_FOLLOW_NONE ? "none" : "created";
}

int ps__sqlite_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                            const ps_table_options *opt, bool *backfill, ps_error *err)
{
	const ps_table_def *def = tc->def;
	const ps_table *t = tc->table;
	char *target = ps__sqlite_target_name(t->schema, t->name), *qtarget = NULL;
	sq_target tt = {0, NULL};
	sq_record rec;
	sq_plan pl;
	ps_buf users;
	int rc = 0;

	*backfill = false;
	memset(&rec, 0, sizeof(rec));
	memset(&pl, 0, sizeof(pl));
	ps_buf_init(&pl.what, 1u << 20);
	ps_buf_init(&users, 4096);
	if (!target) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	ps__sqlite_forget_target(k, target);
	if (tc->previous) {
		char *prev = ps__sqlite_target_name(tc->previous->schema, tc->previous->name);
		if (prev)
			ps__sqlite_forget_target(k, prev);
		free(prev);
	}
	if (!def || def->table->ncolumns != t->ncolumns)
		goto cleanup;   /* nothing to follow by: the caches only */
	rc = ps__sqlite_txn(k, err);
	if (rc == 0)
		rc = target_load(k, target, &tt, err);
	if (rc != 0 || tt.n == 0)
		goto cleanup;   /* no such target table: the first write says so */
	rc = record_load(k, target, &rec, err);
	if (rc == 0)
		rc = plan_make(tc, &rec, &tt, rec.owned && !user_columns(&rec, &tt, t, &users), &pl, err);
	ps_buf_reset(&users);
	if (rc != 0)
		goto cleanup;
	if (pl.nchanges == 0) {
		*backfill = pl.backfill;
		goto cleanup;
	}
	if (opt->follow_ddl == PS_FOLLOW_NONE ||
	    (opt->follow_ddl == PS_FOLLOW_CREATED && (!rec.owned || user_columns(&rec, &tt, t, &users)))) {
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
		                  "changes of this table", t->schema, t->name, txn ? txn->position : "?",
		                  pl.what.data, why, follow_name(opt->follow_ddl), k->job);
		ps_error_set_engine(err, NULL, NULL, PS_ERRCLASS_SCHEMA);
		goto cleanup;
	}
	ps_buf_reset(&k->sql);
	if (ps_sql_quote_ident(&k->sql, target) != 0 || !(qtarget = strdup(k->sql.data))) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = pl.rebuild ? rebuild(k, def, &pl, target, qtarget, err)
	                : alter_in_place(k, def, &pl, target, qtarget, err);
	if (rc == 0 && rec.owned)
		rc = ps__sqlite_registry_store(k, target, def, t->id, err);
	if (rc != 0) {
		ps_error_add_context(err, "table %s.%s changed on the source at %s (%s); the target "
		                     "could not follow: fix the target table and recover the job "
		                     "with strategy retry, or drop it and recover with strategy "
		                     "resync for it", t->schema, t->name, txn ? txn->position : "?",
		                     pl.what.data);
		err->code = PS_EINVAL;   /* the user's to fix: penstock run exits 2 */
		ps_error_set_engine(err, NULL, NULL, PS_ERRCLASS_SCHEMA);
		goto cleanup;
	}
	*backfill = pl.backfill;
	ps_log_info("sink sqlite: table %s follows the source (at %s): %s", target,
	            txn ? txn->position : "?", pl.what.data);
	ps__sqlite_forget_target(k, target);
cleanup:
	target_free(&tt);
	record_free(&rec);
	free(pl.match);
	free(pl.drops);
	ps_buf_free(&pl.what);
	ps_buf_free(&users);
	free(target);
	free(qtarget);
	return rc;
}

int ps__sqlite_renamed_from(ps_sink *k, const ps_table_def *def, const char *target,
                            bool *found, ps_error *err)
{
	sqlite3_stmt *st = NULL;
	char *old = NULL;
	int rc;

	*found = false;
	if (def->table->id == 0)
		return PS_OK;       /* no stable identity (change.h): a new table */
	rc = sqlite3_prepare_v2(k->db, "SELECT name FROM " SQ_TABLES_TABLE " WHERE source = ?1 AND "
	                        "job = ?2 AND name <> ?3", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 1, def->table->id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, k->job, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, target, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		old = strdup((const char *)sqlite3_column_text(st, 0));
		rc = old ? SQLITE_DONE : SQLITE_NOMEM;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return ps__sqlite_fail(k, rc, err, "cannot read " SQ_TABLES_TABLE);
	if (!old)
		return 0;
	/* the same source table under a new name: the one penstock made follows */
	ps__sqlite_forget_target(k, old);
	ps_buf_reset(&k->sql);
	if (ps_buf_puts(&k->sql, "ALTER TABLE ") != 0 || ps_sql_quote_ident(&k->sql, old) != 0 ||
	    ps_buf_puts(&k->sql, " RENAME TO ") != 0 || ps_sql_quote_ident(&k->sql, target) != 0)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	else
		rc = ps__sqlite_exec(k, k->sql.data, err, "cannot rename a table as on the source");
	if (rc == 0) {
		rc = sqlite3_prepare_v2(k->db, "DELETE FROM " SQ_TABLES_TABLE " WHERE name = ?1", -1, &st,
		                        NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 1, old, -1, SQLITE_STATIC);
		rc = rc == SQLITE_OK ? ps__sqlite_run(k, st, err, "cannot update " SQ_TABLES_TABLE)
		                     : ps__sqlite_fail(k, rc, err, "cannot update " SQ_TABLES_TABLE);
		sqlite3_finalize(st);
	}
	if (rc == 0)
		rc = ps__sqlite_registry_store(k, target, def, def->table->id, err);
	if (rc == 0) {
		ps_log_info("sink sqlite: table %s is %s renamed or moved on the source: the one penstock "
		            "made follows", old, target);
		*found = true;
	}
	free(old);
	return rc;
}

int ps__sqlite_rejoin(ps_sink *k, const ps_table_def *def, const char *target, bool *done,
                      ps_error *err)
{
	ps_table_change tc = {.table = def->table, .def = (ps_table_def *)def};
	ps_table_options follow = {.follow_ddl = PS_FOLLOW_CREATED};
	sq_record rec;
	bool again = false;
	int rc;

	*done = false;
	rc = record_load(k, target, &rec, err);
	if (rc != 0 || !rec.owned) {
		record_free(&rec);
		return rc;
	}
	record_free(&rec);
	rc = ps__sqlite_table_change(k, NULL, &tc, &follow, &again, err);
	if (rc == 0) {
		ps_buf_reset(&k->sql);
		if (ps_buf_puts(&k->sql, "DELETE FROM ") != 0 || ps_sql_quote_ident(&k->sql, target) != 0)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		else
			rc = ps__sqlite_exec(k, k->sql.data, err, "cannot empty a table that joins again");
	}
	if (rc == 0) {
		ps_log_info("sink sqlite: table %s joins the job again: penstock made it, so its rows "
		            "(a former state of the table) are replaced by the backfill's", target);
		*done = true;
	}
	return rc;
}
