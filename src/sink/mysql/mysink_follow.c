/*
 * mysink_follow.c — the MySQL / MariaDB sink follows a table's schema
 * changes (sink.h table_change; docs/ddl.md).
 *
 * NOTES ON THE DESIGN
 *
 *  1. The record is in MariaDB's own catalog, written by the DDL that makes
 *     what it describes (so it cannot disagree with it after a crash): a
 *     table penstock created has the comment "penstock: created for job
 *     <job>" (or, until its keys are built, the keys-pending marker of
 *     mysink_ddl.c NOTES 1); each column penstock made has the comment
 *     "penstock #<n>", n the source's number for it (PostgreSQL's attnum),
 *     or "penstock" when the source has none. A table is penstock's when it
 *     has the table comment and every column has a column comment; any
 *     other is the user's (docs/ddl.md, target.follow_ddl).
 *  2. Columns are matched as in the PostgreSQL sink: by the source's number
 *     (a rename keeps it), else by name, else by the previous definition's
 *     name at the same place. A column of the source that matches none is
 *     added; a column penstock made that the source no longer has is
 *     dropped; one whose type (as a created table would have it) or NULL-
 *     ability differs is changed with CHANGE COLUMN (which also renames).
 *     A target column that already holds every value of the new type (a
 *     wider integer, a longer VARCHAR, a TEXT) is left as it is: types are
 *     widened, never narrowed.
 *  3. MariaDB commits around DDL, so nothing here runs inside the open
 *     target transaction: the ALTER runs on the DDL connection, and only on
 *     a table the open transaction has not written (the core commits the
 *     batch before a table change whenever it can: sink.h ddl_commits). The
 *     open transaction then holds no row of the table older than the change,
 *     and its checkpoint is older than the change: a crash after the ALTER
 *     replays from there, and the table's first change in the replay
 *     carries the new definition, which the target already matches. A
 *     table the open transaction did write (the source transaction that
 *     changed it wrote it before the change) stops the job with the fix.
 *  4. Rows already in the table get what the source's rows got: the new
 *     column's constant value (the default of the ADD is that value, then
 *     the column's own default is set), or NULL. A value only the source
 *     knows (a volatile default) and a changed type (the source may have
 *     converted with its own USING) set *backfill: the core reads the
 *     table's rows again.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/mysql/mysink.h"
#include "sink/mysql/mysink_typemap.h"
#include "util/log.h"
#include "util/str.h"
#include "util/myconn.h"

typedef struct tcol {
	char *name;
	char type[200];      /* normalised (norm_type) */
	bool nullable;
	bool ours;           /* has penstock's column comment */
	int ordinal;         /* from it, 0 if none */
	bool matched;
} tcol;

typedef struct target {
	bool exists;
	bool table_ours;
	int n;
	tcol *cols;
} target;

static void target_free(target *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->cols[i].name);
	free(t->cols);
	memset(t, 0, sizeof(*t));
}

/* Lower case outside quotes, integer display widths dropped ("int(11)" ->
 * "int", but "tinyint(1)" stays: it means boolean), JSON as MariaDB keeps
 * it (LONGTEXT). */
static void norm_type(const char *in, char *out, size_t len)
{
	static const char *const ints[] = {"bigint", "mediumint", "smallint", "tinyint", "int",
	                                   NULL};
	size_t o = 0;
	bool quoted = false;

	for (const char *p = in; *p && o + 1 < len; p++) {
		if (*p == '\'')
			quoted = !quoted;
		out[o++] = quoted ? *p : (char)tolower((unsigned char)*p);
	}
	out[o] = '\0';
	for (int i = 0; ints[i]; i++) {
		size_t n = strlen(ints[i]);
		char *close;

		if (strncmp(out, ints[i], n) != 0 || out[n] != '(')
			continue;
		if (strncmp(out, "tinyint(1)", 10) == 0)
			break;
		close = strchr(out + n, ')');
		if (close)
			memmove(out + n, close + 1, strlen(close + 1) + 1);
		break;
	}
	if (strcmp(out, "json") == 0)
		snprintf(out, len, "longtext");
}

static int int_rank(const char *t)
{
	static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int", "bigint", NULL};

	if (strcmp(t, "tinyint(1)") == 0)
		return 0;
	for (int i = 0; ints[i]; i++)
		if (strcmp(t, ints[i]) == 0)
			return i + 1;
	return 0;
}

/* Whether a target column of type have holds every value of one of type
 * want (both normalised): the same type, a wider integer, a longer VARCHAR
 * or a text type where a VARCHAR is wanted (the created table's row-size
 * rule turns wide VARCHARs into TEXT). A source type narrowed leaves the
 * target as wide as it was. */
static bool holds(const char *have, const char *want)
{
	static const char *const texts[] = {"text", "mediumtext", "longtext", NULL};

	if (strcmp(have, want) == 0)
		return true;
	if (int_rank(have) && int_rank(want) && !strstr(have, "unsigned") &&
	    !strstr(want, "unsigned"))
		return int_rank(have) >= int_rank(want);
	if (strncmp(want, "varchar(", 8) == 0) {
		if (strncmp(have, "varchar(", 8) == 0)
			return ps_leading_long(have + 8) >= ps_leading_long(want + 8);
		for (int i = 0; texts[i]; i++)
			if (strcmp(have, texts[i]) == 0)
				return true;
	}
	if (strcmp(want, "text") == 0 || strcmp(want, "mediumtext") == 0)
		return strcmp(have, "mediumtext") == 0 || strcmp(have, "longtext") == 0;
	return false;
}

static int target_load(MYSQL *ddl, const ps_sink *s, const char *db, const char *name,
                       target *tt, ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	size_t n;
	char mark[400];
	int rc;

	memset(tt, 0, sizeof(*tt));
	rc = mys_catalog_query(ddl, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE ",
	                       "TABLE_SCHEMA", db, "TABLE_NAME", name, "", &res, err);
	if (rc != PS_OK)
		return rc;
	if ((row = mysql_fetch_row(res)) != NULL) {
		const char *c = row[0] ? row[0] : "";

		tt->exists = true;
		snprintf(mark, sizeof(mark), "%s%s", MYS_CREATED_BY, s->job);
		tt->table_ours = strcmp(c, mark) == 0;
		snprintf(mark, sizeof(mark), "%s%s", MYS_KEYS_PENDING, s->job);
		tt->table_ours = tt->table_ours || strcmp(c, mark) == 0;
	}
	mysql_free_result(res);
	if (!tt->exists)
		return PS_OK;
	rc = mys_catalog_query(ddl, "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_COMMENT "
	                       "FROM information_schema.COLUMNS WHERE ", "TABLE_SCHEMA", db,
	                       "TABLE_NAME", name, " ORDER BY ORDINAL_POSITION", &res, err);
	if (rc != PS_OK)
		return rc;
	n = (size_t)mysql_num_rows(res);
	tt->cols = calloc(n + 1, sizeof(*tt->cols));
	if (!tt->cols) {
		mysql_free_result(res);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		tcol *c = &tt->cols[tt->n];
		const char *cm = row[3] ? row[3] : "";
		size_t ml = strlen(MYS_COL_MARK);

		c->name = strdup(row[0] ? row[0] : "");
		if (!c->name) {
			mysql_free_result(res);
			return ps_error_set(err, PS_ENOMEM, "out of memory");
		}
		norm_type(row[1] ? row[1] : "", c->type, sizeof(c->type));
		c->nullable = row[2] && strcmp(row[2], "YES") == 0;
		c->ours = strncmp(cm, MYS_COL_MARK, ml) == 0 && (cm[ml] == '\0' || cm[ml] == ' ');
		if (c->ours && strncmp(cm + ml, " #", 2) == 0)
			c->ordinal = (int)ps_leading_long(cm + ml + 2);
		tt->n++;
	}
	mysql_free_result(res);
	return PS_OK;
}

static tcol *by_name(target *tt, const char *name)
{
	for (int i = 0; i < tt->n; i++)
		if (!tt->cols[i].matched && strcasecmp(tt->cols[i].name, name) == 0)
			return &tt->cols[i];
	return NULL;
}

static bool def_has(const ps_table_def *def, const char *name)
{
	for (int i = 0; i < def->table->ncolumns; i++)
		if (strcasecmp(def->table->columns[i].name, name) == 0)
			return true;
	return false;
}

/* The target column of def's column i (NOTES 2), or NULL. */
static tcol *match(target *tt, const ps_table_change *tc, int i)
{
	const ps_table_def *def = tc->def;
	int ord = def->columns[i].ordinal;
	tcol *c;

	if (ord > 0)
		for (int k = 0; k < tt->n; k++)
			if (!tt->cols[k].matched && tt->cols[k].ordinal == ord)
				return &tt->cols[k];
	c = by_name(tt, def->table->columns[i].name);
	if (c)
		return c;
	if (tc->previous && i < tc->previous->ncolumns && !def_has(def, tc->previous->columns[i].name))
		return by_name(tt, tc->previous->columns[i].name);
	return NULL;
}

typedef struct plan {
	ps_buf alter;        /* the clauses of one ALTER TABLE */
	ps_buf after;        /* a second ALTER: defaults set after an ADD filled old rows */
	ps_buf what;         /* for messages */
	bool backfill;
	int n;
} plan;

/* Appends one change to what the plan says (for messages). */
#define WHAT(pl, ...)                                                              \
	(ps_buf_puts(&(pl)->what, (pl)->what.len ? "; " : "") != PS_OK ? PS_ENOMEM      \
	 : ((pl)->n++, ps_buf_printf(&(pl)->what, __VA_ARGS__)))

/* Where the source's rows got a constant when the column was added, the
 * ADD gives the table's rows the same (NOTES 4). */
static int add_column(plan *pl, const ps_table_def *def, int i, ps_error *err)
{
	const ps_column_def *cd = &def->columns[i];
	const char *name = def->table->columns[i].name;
	char type[128], dflt[600] = "";
	bool has_default;
	ps_buf col;
	int rc;

	ps_buf_init(&col, 1 << 20);
	rc = mys_column_sql(&col, def, i, type, sizeof(type), err);
	if (rc != PS_OK) {
		ps_buf_free(&col);
		return rc;
	}
	has_default = mys_default_sql(def, i, type, dflt, sizeof(dflt));
	if (cd->fill == PS_FILL_UNKNOWN) {
		pl->backfill = true;         /* only the source knows each row's value */
	} else if (cd->fill == PS_FILL_VALUE && cd->fill_value &&
	           !(has_default && strcmp(dflt, cd->fill_value) == 0)) {
		/* the old rows' constant first, then the column's default */
		int cls = def->table->columns[i].type_class;
		ps_buf fill, lit;
		char *q = col.data ? strstr(col.data, " DEFAULT ") : NULL;
		char *cm = col.data ? strstr(q ? q + 1 : col.data, " COMMENT ") : NULL;

		if (cls != PS_TYPE_INTEGER && cls != PS_TYPE_NUMERIC && cls != PS_TYPE_FLOAT &&
		    cls != PS_TYPE_TEXT && cls != PS_TYPE_BOOL) {
			pl->backfill = true;     /* a value this side would have to convert */
			goto plain;
		}
		ps_buf_init(&fill, 1 << 20);
		ps_buf_init(&lit, 1 << 20);
		if (cls == PS_TYPE_BOOL) {
			rc = ps_buf_puts(&lit, cd->fill_value[0] == 't' ? "1" : "0");
		} else {
			rc = ps_buf_putc(&lit, '\'');
			for (const char *p = cd->fill_value; rc == PS_OK && *p; p++)
				rc = *p == '\'' ? ps_buf_puts(&lit, "''")
				     : *p == '\\' ? ps_buf_puts(&lit, "\\\\") : ps_buf_putc(&lit, *p);
			if (rc == PS_OK)
				rc = ps_buf_putc(&lit, '\'');
		}
		/* the column's definition with DEFAULT <fill> in place of its own */
		if (rc == PS_OK)
			rc = ps_buf_append(&fill, col.data, q ? (size_t)(q - col.data)
			                                     : cm ? (size_t)(cm - col.data) : col.len);
		if (rc == PS_OK)
			rc = ps_buf_printf(&fill, " DEFAULT %s%s", lit.data, cm ? cm : "");
		if (rc == PS_OK)
			rc = ps_buf_printf(&pl->alter, "%sADD COLUMN %s", pl->alter.len ? ", " : "",
			                   fill.data);
		if (rc == PS_OK)
			rc = ps_buf_printf(&pl->after, "%sALTER COLUMN ", pl->after.len ? ", " : "");
		if (rc == PS_OK)
			rc = my_quote_ident(&pl->after, name);
		if (rc == PS_OK)
			rc = has_default ? ps_buf_printf(&pl->after, " SET DEFAULT %s", dflt)
			     : ps_buf_puts(&pl->after, " DROP DEFAULT");
		ps_buf_free(&fill);
		ps_buf_free(&lit);
		ps_buf_free(&col);
		if (rc == PS_OK)
			rc = WHAT(pl, "column %s %s added%s", name, type, "");
		return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "ALTER TABLE statement too long");
	} else if (has_default && cd->fill == PS_FILL_NULL) {
		/* old rows hold NULL (the default came later): no default at the ADD */
		char *q = col.data ? strstr(col.data, " DEFAULT ") : NULL;
		char *cm = q ? strstr(q, " COMMENT ") : NULL;

		if (q && cm)
			memmove(q, cm, strlen(cm) + 1);
		rc = ps_buf_printf(&pl->after, "%sALTER COLUMN ", pl->after.len ? ", " : "");
		if (rc == PS_OK)
			rc = my_quote_ident(&pl->after, name);
		if (rc == PS_OK)
			rc = ps_buf_printf(&pl->after, " SET DEFAULT %s", dflt);
	}
plain:
	if (rc == PS_OK)
		rc = ps_buf_printf(&pl->alter, "%sADD COLUMN %s", pl->alter.len ? ", " : "", col.data);
	ps_buf_free(&col);
	if (rc == PS_OK)
		rc = WHAT(pl, "column %s %s added%s", name, type,
		              cd->fill == PS_FILL_UNKNOWN ? " (the table is read again for its values)"
		                                          : "");
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "ALTER TABLE statement too long");
}

/* What brings the target to tc->def: all of it for a table penstock made;
 * for the user's, only what the rows need (columns the source sends that the
 * target lacks, renamed ones), as in the PostgreSQL sink. */
static int plan_make(const ps_table_change *tc, target *tt, bool yours, plan *pl, ps_error *err)
{
	const ps_table_def *def = tc->def;
	int rc = PS_OK;

	for (int i = 0; rc == PS_OK && i < def->table->ncolumns; i++) {
		const char *name = def->table->columns[i].name;
		tcol *c = match(tt, tc, i);
		char type[128], want[200];
		bool renamed, retyped, renulled;
		ps_buf col;

		if (!c) {
			rc = add_column(pl, def, i, err);
			continue;
		}
		c->matched = true;
		if (yours && strcmp(c->name, name) == 0)
			continue;
		ps_buf_init(&col, 1 << 20);
		rc = mys_column_sql(&col, def, i, type, sizeof(type), err);
		if (rc != PS_OK) {
			ps_buf_free(&col);
			break;
		}
		norm_type(type, want, sizeof(want));
		renamed = strcmp(c->name, name) != 0;
		retyped = !yours && !holds(c->type, want);
		renulled = !yours && c->nullable == def->columns[i].not_null;
		if (yours && renamed) {
			rc = ps_buf_printf(&pl->alter, "%sRENAME COLUMN ", pl->alter.len ? ", " : "");
			if (rc == PS_OK)
				rc = my_quote_ident(&pl->alter, c->name);
			if (rc == PS_OK)
				rc = ps_buf_puts(&pl->alter, " TO ");
			if (rc == PS_OK)
				rc = my_quote_ident(&pl->alter, name);
			if (rc == PS_OK)
				rc = WHAT(pl, "column %s renamed %s", c->name, name);
			if (rc != PS_OK)
				rc = ps_error_set(err, rc, "ALTER TABLE statement too long");
		} else if (renamed || retyped || renulled) {
			rc = ps_buf_printf(&pl->alter, "%sCHANGE COLUMN ", pl->alter.len ? ", " : "");
			if (rc == PS_OK)
				rc = my_quote_ident(&pl->alter, c->name);
			if (rc == PS_OK)
				rc = ps_buf_printf(&pl->alter, " %s", col.data);
			if (rc != PS_OK)
				rc = ps_error_set(err, rc, "ALTER TABLE statement too long");
			if (rc == PS_OK && renamed)
				rc = WHAT(pl, "column %s renamed %s%s", c->name, name, "");
			if (rc == PS_OK && retyped) {
				rc = WHAT(pl, "changing the type of column %s from %s to %s", name,
				              c->type, want);
				pl->backfill = true;     /* NOTES 4 */
			}
			if (rc == PS_OK && renulled && !retyped)
				rc = WHAT(pl, "column %s %s%s", name, def->columns[i].not_null
				              ? "set NOT NULL" : "NULL allowed", "");
		}
		ps_buf_free(&col);
	}
	for (int k = 0; rc == PS_OK && k < tt->n; k++) {
		tcol *c = &tt->cols[k];

		if (c->matched || !c->ours || yours)
			continue;          /* a column of the user's is kept */
		rc = ps_buf_printf(&pl->alter, "%sDROP COLUMN ", pl->alter.len ? ", " : "");
		if (rc == PS_OK)
			rc = my_quote_ident(&pl->alter, c->name);
		if (rc != PS_OK)
			rc = ps_error_set(err, rc, "ALTER TABLE statement too long");
		if (rc == PS_OK)
			rc = WHAT(pl, "column %s dropped%s%s", c->name, "", "");
	}
	return rc;
}

static const char *follow_name(int follow)
{
	return follow == PS_FOLLOW_ALL ? "all" : follow == PS_FOLLOW_NONE ? "none" : "created";
}

static int refused(ps_error *err)
{
	ps_error_set_engine(err, NULL, NULL, PS_ERRCLASS_SCHEMA);
	return PS_EINVAL;
}

int mys_table_change(ps_sink *s, const ps_txn *txn, const ps_table_change *tc,
                     const ps_table_options *opt, bool *backfill, ps_error *err)
{
	const ps_table_def *def = tc->def;
	const ps_table *t = tc->table;
	char db[256], name[256], why[700];
	MYSQL *ddl = NULL;
	target tt;
	plan pl;
	ps_buf qname, users, sql;
	bool touched, yours;
	int rc;

	*backfill = false;
	mys_target_names(s, t->schema, t->name, db, sizeof(db), name, sizeof(name));
	touched = mys_table_touched(s, db, name);
	if (!touched)
		mys_table_forget(s, db, name);       /* cached columns and statements */
	if (!def || !def->engine)
		return PS_OK;                        /* gone on the source: only the caches */
	memset(&pl, 0, sizeof(pl));
	memset(&tt, 0, sizeof(tt));
	ps_buf_init(&pl.alter, MYS_SQL_LIMIT);
	ps_buf_init(&pl.after, MYS_SQL_LIMIT);
	ps_buf_init(&pl.what, 1 << 20);
	ps_buf_init(&qname, 2048);
	ps_buf_init(&users, 8192);
	ps_buf_init(&sql, MYS_SQL_LIMIT + 4096);
	rc = mys_ddl_conn(s, &ddl, err);
	if (rc == PS_OK)
		rc = target_load(ddl, s, db, name, &tt, err);
	if (rc != PS_OK || !tt.exists)
		goto cleanup;                        /* no table: the first write says so */
	for (int k = 0; k < tt.n; k++)
		if (!tt.cols[k].ours)
			ps_buf_printf(&users, "%s%s", users.len ? ", " : "", tt.cols[k].name);
	yours = !tt.table_ours || users.len > 0;
	rc = plan_make(tc, &tt, yours, &pl, err);
	if (rc != PS_OK || pl.n == 0) {
		if (rc == PS_OK && (tc->what & ~PS_TC_FIRST))
			ps_log_info("target mysql: table %s.%s already matches its new definition", db,
			            name);
		goto cleanup;
	}
	if (opt->follow_ddl == PS_FOLLOW_NONE || (opt->follow_ddl == PS_FOLLOW_CREATED && yours)) {
		if (opt->follow_ddl == PS_FOLLOW_NONE)
			snprintf(why, sizeof(why), "Its target table is not altered by penstock");
		else if (!tt.table_ours)
			snprintf(why, sizeof(why), "Its target table was not created by penstock (it "
			         "existed before, or target.create_tables is never), so it is yours");
		else
			snprintf(why, sizeof(why), "Its target table has columns penstock did not create "
			         "(%s), so it is yours", users.data);
		ps_error_set(err, PS_EINVAL, "table %s.%s changed on the source at %s: %s. %s, and "
		             "penstock does not alter it (target.follow_ddl: %s). Make the same change "
		             "in the target, then recover the job with strategy retry (penstock job "
		             "recover %s --strategy retry; with penstock run, run it again); or set "
		             "target.follow_ddl to all to have penstock follow changes of this table",
		             t->schema, t->name, txn ? txn->position : "?", pl.what.data, why,
		             follow_name(opt->follow_ddl), s->job);
		rc = refused(err);
		goto cleanup;
	}
	if (touched) {                           /* NOTES 3 */
		ps_error_set(err, PS_EINVAL, "table %s.%s changed on the source at %s: %s. The "
		             "source transaction that changed it wrote rows of it before the change, "
		             "and MariaDB commits around every ALTER TABLE, so penstock cannot alter "
		             "it without committing those rows ahead of their checkpoint. Make the "
		             "same change in the target yourself (ALTER TABLE), then recover the job "
		             "with strategy retry (penstock job recover %s --strategy retry; with "
		             "penstock run, run it again); or drop the target table and recover with "
		             "strategy resync for it (--tables %s.%s)", t->schema, t->name,
		             txn ? txn->position : "?", pl.what.data, s->job, t->schema, t->name);
		rc = refused(err);
		goto cleanup;
	}
	if (mys_qualified(&qname, db, name) != PS_OK ||
	    ps_buf_printf(&sql, "ALTER TABLE %s %s", qname.data, pl.alter.data) != PS_OK) {
		rc = ps_error_set(err, PS_ETOOBIG, "ALTER TABLE statement for %s.%s too long", db,
		                  name);
		goto cleanup;
	}
	if (pl.alter.len)
		rc = my_exec(ddl, sql.data, "following the source", err);
	if (rc == PS_OK && pl.after.len) {
		ps_buf_reset(&sql);
		rc = ps_buf_printf(&sql, "ALTER TABLE %s %s", qname.data, pl.after.data);
		if (rc == PS_OK)
			rc = my_exec(ddl, sql.data, "setting defaults as on the source", err);
	}
	if (rc != PS_OK) {
		char server[1200];

		ps_error_format(err, server, sizeof(server));
		ps_error_set(err, PS_EINVAL, "table %s.%s changed on the source at %s (%s), and the "
		             "target refused to follow: %s. Make the target's rows or definition fit "
		             "the change and recover the job with strategy retry (penstock job recover "
		             "%s --strategy retry; with penstock run, run it again); or drop the "
		             "target table and recover with strategy resync for it (--tables %s.%s) "
		             "to copy it again as it is now", t->schema, t->name,
		             txn ? txn->position : "?", pl.what.data, server, s->job, t->schema,
		             t->name);
		rc = refused(err);
		goto cleanup;
	}
	mys_table_forget(s, db, name);
	*backfill = pl.backfill;
	ps_log_info("target mysql: table %s.%s follows the source (at %s): %s", db, name,
	            txn ? txn->position : "?", pl.what.data);
cleanup:
	target_free(&tt);
	ps_buf_free(&pl.alter);
	ps_buf_free(&pl.after);
	ps_buf_free(&pl.what);
	ps_buf_free(&qname);
	ps_buf_free(&users);
	ps_buf_free(&sql);
	return rc;
}
