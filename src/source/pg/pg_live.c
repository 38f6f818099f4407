/*
 * pg_live.c — the PostgreSQL source's live table changes (source.h
 * invariants 8 and 9): retable (ALTER PUBLICATION with a marker in the same
 * transaction), mark (a marker of its own) and chunk_read (one key-ordered
 * chunk of a table being backfilled).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Markers are transactional logical messages (prefix PS_MARK_PREFIX).
 *    pgoutput hands a table's changes out only while the table is in the
 *    publication as of the change's place in the log (decoding uses the
 *    catalog as it was then), so a marker written in the transaction that
 *    alters the publication splits a table's changes exactly: before it for
 *    a removed table, after it for an added one. A marker of its own is a
 *    transaction of its own: committed, so flushed, so delivered at once.
 * 2. Invariant 9 (the chunk reflects everything committed before the low
 *    marker): a transaction whose commit record precedes the marker in the
 *    log may still be invisible to a snapshot taken just after it, for the
 *    moment between its commit record and the end of its transaction in the
 *    process array (longer with synchronous replication). So the first
 *    chunk_read after a mark notes the transactions in progress then
 *    (pg_current_snapshot's xip), and reads only once none of them is in
 *    progress in a later snapshot. It does not block the reader: it answers
 *    "not yet" (*nrows = -1) and is called again. A transaction still open
 *    after PG_WAIT_LONG_NS is a long one, which cannot have committed
 *    before the marker (the gap above is short): it is not waited for, now
 *    or in later chunks (long_xids, a bounded ring).
 * 3. The chunk is one SELECT in its own snapshot: rows whose primary key, in
 *    key order, is greater than `after` (a row comparison, the same order
 *    the ORDER BY gives), LIMIT max_rows. Key values go in as parameters cast
 *    to the column's type. The session's settings (util/pgconn.h) give the
 *    same text as COPY and pgoutput.
 * 4. retable selects with prepare's rules (pg_select), alters the
 *    publication and writes the marker in one transaction: either all of it
 *    happens, or nothing (ROLLBACK). Then the source's own patterns and
 *    table list become the new ones; no copy worker runs while streaming,
 *    so nothing else reads them meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_internal.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/pgconn.h"

#define PG_WAIT_LONG_NS (5ULL * 1000000000ULL)
#define CHUNK_MAX_KEYS 32

/* --- retable (note 4) ------------------------------------------------------ */

/* Appends `"schema"."name", ...` of the tables among oids to list, and
 * their "schema.name" to names (when not NULL; *nnames counts them). */
static int names_of(ps_source *src, const uint32_t *oids, size_t n, ps_buf *list, char ***names,
                    size_t *nnames, ps_error *err)
{
	ps_buf arr;
	PGresult *r = NULL;
	const char *params[1];
	int rc = PS_OK;

	if (n == 0)
		return PS_OK;
	ps_buf_init(&arr, 64u << 20);
	ps_buf_putc(&arr, '{');
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(&arr, "%s%u", i ? "," : "", oids[i]);
	if (ps_buf_putc(&arr, '}') != PS_OK) {
		ps_buf_free(&arr);
		return ps_error_set(err, PS_ETOOBIG, "too many tables");
	}
	params[0] = arr.data;
	rc = pg_exec(src->sql, &r, err, "naming tables",
	             "SELECT n.nspname, c.relname FROM pg_class c "
	             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY($1::oid[]) "
	             "ORDER BY 1, 2", 1, params);
	if (rc == PS_OK && names) {
		*names = calloc((size_t)PQntuples(r) + 1, sizeof(char *));
		if (!*names)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (int i = 0; rc == PS_OK && i < PQntuples(r); i++) {
		if (i)
			ps_buf_puts(list, ", ");
		pg_quote_ident(src->sql, list, PQgetvalue(r, i, 0));
		ps_buf_putc(list, '.');
		pg_quote_ident(src->sql, list, PQgetvalue(r, i, 1));
		if (names) {
			char q[300];
			snprintf(q, sizeof(q), "%s.%s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
			(*names)[*nnames] = strdup(q);
			if (!(*names)[*nnames])
				rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			else
				(*nnames)++;
		}
	}
	PQclear(r);
	ps_buf_free(&arr);
	return rc;
}

/* One ALTER PUBLICATION name ADD|DROP TABLE list, when list is not empty. */
static int alter_one(ps_source *src, const char *name, const char *verb, const char *list,
                     ps_error *err)
{
	ps_buf sql;
	int rc = PS_OK;

	if (!list[0])
		return PS_OK;
	ps_buf_init(&sql, 64u << 20);
	pg_put(&rc, &sql, "ALTER PUBLICATION ");
	pg_put_ident(&rc, src->sql, &sql, name);
	pg_put(&rc, &sql, verb);
	pg_put(&rc, &sql, list);
	if (rc != PS_OK)
		rc = ps_error_set(err, PS_ETOOBIG, "table list too long for one publication command");
	else
		rc = pg_exec(src->sql, NULL, err, "changing the publication's tables", sql.data, 0, NULL);
	ps_buf_free(&sql);
	return rc;
}

/* The tables added to and dropped from each publication (pgsrc_select.c
 * note 3): [0] the publication, [1] the insert-only one. */
typedef struct pub_changes {
	ps_buf add[2], drop[2];
} pub_changes;

/* ALTER PUBLICATION for every list and the marker, in one transaction. */
static int alter_with_marker(ps_source *src, pub_changes *ch, const char *mark, ps_error *err)
{
	const char *params[1] = {mark};
	char inserts[PG_PUBNAME_MAX];
	const char *names[2] = {src->publication, inserts};
	int rc;

	pg_inserts_publication(src->publication, inserts, sizeof(inserts));
	rc = pg_exec(src->sql, NULL, err, "beginning the table change", "BEGIN", 0, NULL);
	for (int p = 0; p < 2 && rc == PS_OK; p++) {
		rc = alter_one(src, names[p], " ADD TABLE ", ch->add[p].data ? ch->add[p].data : "", err);
		if (rc == PS_OK)
			rc = alter_one(src, names[p], " DROP TABLE ",
			               ch->drop[p].data ? ch->drop[p].data : "", err);
	}
	if (rc == PS_OK)
		rc = pg_exec(src->sql, NULL, err, "writing the table change's marker",
		             "SELECT pg_logical_emit_message(true, '" PS_MARK_PREFIX "', $1)", 1, params);
	if (rc == PS_OK)
		rc = pg_exec(src->sql, NULL, err, "committing the table change", "COMMIT", 0, NULL);
	if (rc != PS_OK && PQtransactionStatus(src->sql) != PQTRANS_IDLE)
		PQclear(PQexec(src->sql, "ROLLBACK"));
	return rc;
}

/* The OIDs among oids[0..*n) that publication name lists (present) or does
 * not list (!present), kept in place; *n their count. */
static int keep_listed(ps_source *src, const char *name, uint32_t *oids, size_t *n, bool present,
                       ps_error *err)
{
	const char *params[2];
	PGresult *r = NULL;
	ps_buf arr;
	int rc;

	if (*n == 0)
		return PS_OK;
	ps_buf_init(&arr, 64u << 20);
	ps_buf_putc(&arr, '{');
	for (size_t i = 0; i < *n; i++)
		ps_buf_printf(&arr, "%s%u", i ? "," : "", oids[i]);
	if (ps_buf_putc(&arr, '}') != PS_OK) {
		ps_buf_free(&arr);
		return ps_error_set(err, PS_ETOOBIG, "too many tables");
	}
	params[0] = name;
	params[1] = arr.data;
	rc = pg_exec(src->sql, &r, err, "listing the publication's tables",
	             present ? "SELECT o FROM unnest($2::oid[]) o WHERE o IN (SELECT prrelid FROM "
	                       "pg_publication_rel x JOIN pg_publication p ON p.oid = x.prpubid "
	                       "WHERE p.pubname = $1)"
	                     : "SELECT o FROM unnest($2::oid[]) o WHERE o NOT IN (SELECT prrelid FROM "
	                       "pg_publication_rel x JOIN pg_publication p ON p.oid = x.prpubid "
	                       "WHERE p.pubname = $1)", 2, params);
	ps_buf_free(&arr);
	if (rc != PS_OK)
		return rc;
	*n = (size_t)PQntuples(r);
	for (size_t i = 0; i < *n; i++)
		oids[i] = (uint32_t)strtoul(PQgetvalue(r, (int)i, 0), NULL, 10);
	PQclear(r);
	return PS_OK;
}

/* A publication another role owns (pgsrc_select.c note 7) is never changed:
 * its owner makes the change, penstock only writes the marker. Tables it
 * lists already leave add, tables it does not list leave drop; whatever is
 * left needs its owner, and the message names the statements to run. */
static int foreign_publication(ps_source *src, const char *name, uint32_t *add, size_t *nadd,
                               uint32_t *drop, size_t *ndrop, ps_error *err)
{
	const char *params[1] = {name};
	PGresult *r = NULL;
	char owner[300];
	ps_buf a, d;
	int rc;

	if (*nadd == 0 && *ndrop == 0)
		return PS_OK;
	rc = pg_exec(src->sql, &r, err, "looking up the publication's owner",
	             "SELECT NOT pg_has_role(pubowner, 'USAGE'), pubowner::regrole::text "
	             "FROM pg_publication WHERE pubname = $1", 1, params);
	if (rc != PS_OK)
		return rc;
	if (PQntuples(r) == 0 || PQgetvalue(r, 0, 0)[0] != 't') {
		PQclear(r);
		return PS_OK;       /* this role's: changed as usual */
	}
	snprintf(owner, sizeof(owner), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	rc = keep_listed(src, name, add, nadd, false, err);
	if (rc == PS_OK)
		rc = keep_listed(src, name, drop, ndrop, true, err);
	if (rc != PS_OK || (*nadd == 0 && *ndrop == 0))
		return rc;
	ps_buf_init(&a, 16u << 20);
	ps_buf_init(&d, 16u << 20);
	rc = names_of(src, add, *nadd, &a, NULL, NULL, err);
	if (rc == PS_OK)
		rc = names_of(src, drop, *ndrop, &d, NULL, NULL, err);
	if (rc == PS_OK) {
		ps_buf fix;
		ps_buf_init(&fix, 16u << 20);
		if (a.len) {
			ps_buf_puts(&fix, "ALTER PUBLICATION ");
			pg_quote_ident(src->sql, &fix, name);
			ps_buf_printf(&fix, " ADD TABLE %s; ", a.data);
		}
		if (d.len) {
			ps_buf_puts(&fix, "ALTER PUBLICATION ");
			pg_quote_ident(src->sql, &fix, name);
			ps_buf_printf(&fix, " DROP TABLE %s;", d.data);
		}
		rc = ps_error_set(err, PS_EINVAL,
		                  "the tables the job selects changed, and publication %s belongs to "
		                  "role %s, so penstock cannot change it. Have its owner run: %.400s "
		                  "Then recover the job with strategy retry (with penstock run, run it "
		                  "again): the tables that came in are then copied and nothing is lost",
		                  name, owner, fix.data ? fix.data : "");
		ps_error_set_engine(err, "", "", PS_ERRCLASS_PERMISSION);
		ps_buf_free(&fix);
	}
	ps_buf_free(&a);
	ps_buf_free(&d);
	return rc;
}

/* Lists of OIDs by publication: [0] all, [1] insert-only. */
typedef struct oid_lists {
	uint32_t *oids[2];
	size_t n[2];
} oid_lists;

/* Where selected table i was among the tables captured so far, or -1. */
static ssize_t captured_at(const ps_source *src, uint32_t oid)
{
	for (size_t j = 0; j < src->ntable_oids; j++)
		if (src->table_oids[j] == oid)
			return (ssize_t)j;
	return -1;
}

/* The plan of a retable (note 4): what each publication gains and loses,
 * and what the core is told. */
typedef struct retable_plan {
	oid_lists add, drop;        /* per publication */
	uint32_t *described;        /* tables the core gets as added (new, or renamed) */
	size_t ndescribed;
	uint32_t *changed;          /* tables whose partitions changed */
	size_t nchanged;
	char **removed;             /* names the core drops (as they were captured) */
	size_t nremoved;
	uint32_t *removed_unnamed;  /* removed tables whose captured name is unknown */
	size_t nremoved_unnamed;
} retable_plan;

static void plan_free(retable_plan *pl)
{
	for (int p = 0; p < 2; p++) {
		free(pl->add.oids[p]);
		free(pl->drop.oids[p]);
	}
	free(pl->described);
	free(pl->changed);
	ps_strv_free(pl->removed, pl->nremoved);
	free(pl->removed_unnamed);
}

static int plan_make(ps_source *src, const pg_selection *sel, const bool *insert_only,
                     bool with_key, retable_plan *pl, ps_buf *nokey, ps_error *err)
{
	size_t cap = sel->n + src->ntable_oids + 1;

	memset(pl, 0, sizeof(*pl));
	for (int p = 0; p < 2; p++) {
		pl->add.oids[p] = calloc(cap, sizeof(uint32_t));
		pl->drop.oids[p] = calloc(cap, sizeof(uint32_t));
		if (!pl->add.oids[p] || !pl->drop.oids[p])
			return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	pl->described = calloc(cap, sizeof(uint32_t));
	pl->changed = calloc(cap, sizeof(uint32_t));
	pl->removed = calloc(cap, sizeof(char *));
	pl->removed_unnamed = calloc(cap, sizeof(uint32_t));
	if (!pl->described || !pl->changed || !pl->removed || !pl->removed_unnamed)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	for (size_t i = 0; i < sel->n; i++) {
		ssize_t j = captured_at(src, sel->oids[i]);
		int now = insert_only[i] ? 1 : 0;
		bool renamed = false;

		if (j < 0) {
			pl->add.oids[now][pl->add.n[now]++] = sel->oids[i];
		} else {
			int was = src->table_insert_only && src->table_insert_only[j] ? 1 : 0;
			if (was != now) {   /* it gained or lost a key: the other publication */
				pl->drop.oids[was][pl->drop.n[was]++] = sel->oids[i];
				pl->add.oids[now][pl->add.n[now]++] = sel->oids[i];
			}
			renamed = src->table_names && strcmp(src->table_names[j], sel->names[i]) != 0;
			if (renamed && !(pl->removed[pl->nremoved] = strdup(src->table_names[j])))
				return ps_error_set(err, PS_ENOMEM, "out of memory");
			pl->nremoved += renamed;
			if (!renamed && was == now && src->table_sigs && src->table_sigs[j] != sel->sigs[i])
				pl->changed[pl->nchanged++] = sel->oids[i];
		}
		if (j >= 0 && !renamed)
			continue;
		pl->described[pl->ndescribed++] = sel->oids[i];
		if (with_key && !sel->has_key[i])
			ps_buf_printf(nokey, "%s%s", nokey->len ? ", " : "", sel->names[i]);
	}
	for (size_t j = 0; j < src->ntable_oids; j++) {
		bool kept = false;
		int was = src->table_insert_only && src->table_insert_only[j] ? 1 : 0;

		for (size_t i = 0; i < sel->n && !kept; i++)
			kept = sel->oids[i] == src->table_oids[j];
		if (kept)
			continue;
		pl->drop.oids[was][pl->drop.n[was]++] = src->table_oids[j];
		if (!src->table_names)
			pl->removed_unnamed[pl->nremoved_unnamed++] = src->table_oids[j];
		else if (!(pl->removed[pl->nremoved++] = strdup(src->table_names[j])))
			return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	return PS_OK;
}

int pg_retable(ps_source *src, const char *const *include, size_t ninclude,
               const char *const *exclude, size_t nexclude, bool with_key, const char *mark,
               ps_retable_result *res, ps_error *err)
{
	pg_selection sel;
	retable_plan pl;
	bool *insert_only = NULL;
	char **inc = NULL, **exc = NULL;
	pub_changes ch;
	ps_buf nokey, scratch;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&pl, 0, sizeof(pl));
	for (int p = 0; p < 2; p++) {
		ps_buf_init(&ch.add[p], 16u << 20);
		ps_buf_init(&ch.drop[p], 16u << 20);
	}
	ps_buf_init(&nokey, 4096);
	ps_buf_init(&scratch, 16u << 20);
	rc = pg_select(src, (char **)include, ninclude, (char **)exclude, nexclude, &sel, err);
	if (rc == PS_OK)
		rc = pg_keyless_policy(src, &sel, err);
	if (rc != PS_OK)
		goto cleanup;
	insert_only = calloc(sel.n + 1, sizeof(bool));
	inc = ps_strv_copy((char *const *)include, ninclude);
	exc = ps_strv_copy((char *const *)exclude, nexclude);
	if (!insert_only || !inc || !exc) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < sel.n; i++)
		insert_only[i] = pg_selected_insert_only(src, i, &sel);
	rc = plan_make(src, &sel, insert_only, with_key, &pl, &nokey, err);
	if (rc != PS_OK)
		goto cleanup;
	if (nokey.len) {
		rc = ps_error_set(err, PS_EINVAL,
		                  "cannot take %s into the running job: a table that joins a job while "
		                  "the others stream is copied in primary-key ranges (a backfill), and it "
		                  "has no primary key, so its rows written before it joined could not be "
		                  "copied exactly. Add a primary key, or leave it out of the job "
		                  "(tables.exclude); then recover or run the job again", nokey.data);
		goto cleanup;
	}
	for (int p = 0; p < 2 && rc == PS_OK; p++) {
		char inserts[PG_PUBNAME_MAX];
		pg_inserts_publication(src->publication, inserts, sizeof(inserts));
		rc = foreign_publication(src, p ? inserts : src->publication, pl.add.oids[p],
		                         &pl.add.n[p], pl.drop.oids[p], &pl.drop.n[p], err);
	}
	for (int p = 0; p < 2 && rc == PS_OK; p++) {
		rc = names_of(src, pl.add.oids[p], pl.add.n[p], &ch.add[p], NULL, NULL, err);
		if (rc == PS_OK)
			rc = names_of(src, pl.drop.oids[p], pl.drop.n[p], &ch.drop[p], NULL, NULL, err);
	}
	if (rc == PS_OK)
		rc = names_of(src, pl.removed_unnamed, pl.nremoved_unnamed, &scratch, &res->removed,
		              &res->nremoved, err);
	if (rc == PS_OK)
		rc = alter_with_marker(src, &ch, mark, err);
	if (rc != PS_OK)
		goto cleanup;
	pg_selection_keep(src, &sel, insert_only);
	insert_only = NULL;
	/* the names the core drops: as they were captured */
	if (pl.nremoved) {
		char **all = realloc(res->removed, (res->nremoved + pl.nremoved + 1) * sizeof(char *));
		if (!all) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
		res->removed = all;
		for (size_t i = 0; i < pl.nremoved; i++) {
			res->removed[res->nremoved++] = pl.removed[i];
			pl.removed[i] = NULL;
		}
	}
	if (pl.ndescribed)
		rc = pg_describe_oids(src, pl.described, pl.ndescribed, &res->added, &res->nadded, err);
	if (rc == PS_OK && pl.nchanged)
		rc = pg_describe_oids(src, pl.changed, pl.nchanged, &res->changed, &res->nchanged, err);
	if (rc != PS_OK)
		goto cleanup;
	ps_strv_free(src->include, src->ninclude);
	ps_strv_free(src->exclude, src->nexclude);
	src->include = inc;
	src->ninclude = ninclude;
	src->exclude = exc;
	src->nexclude = nexclude;
	inc = exc = NULL;
	ps_log_info("publication %s: %zu table%s added, %zu removed, %zu with other partitions",
	            src->publication, res->nadded, res->nadded == 1 ? "" : "s", res->nremoved,
	            res->nchanged);
cleanup:
	if (rc != PS_OK) {
		ps_strv_free(res->removed, res->nremoved);
		for (size_t i = 0; i < res->nadded; i++)
			ps_table_def_free(res->added[i]);
		free(res->added);
		for (size_t i = 0; i < res->nchanged; i++)
			ps_table_def_free(res->changed[i]);
		free(res->changed);
		memset(res, 0, sizeof(*res));
	}
	pg_selection_free(&sel);
	plan_free(&pl);
	for (int p = 0; p < 2; p++) {
		ps_buf_free(&ch.add[p]);
		ps_buf_free(&ch.drop[p]);
	}
	free(insert_only);
	ps_strv_free(inc, ninclude);
	ps_strv_free(exc, nexclude);
	ps_buf_free(&nokey);
	ps_buf_free(&scratch);
	return rc;
}

/* --- markers (note 1) ------------------------------------------------------ */

int pg_mark(ps_source *src, const char *content, char *pos, size_t len, ps_error *err)
{
	src->wait_taken = false;   /* the next chunk waits for what is in progress now */
	return pg_emit_message(src, PS_MARK_PREFIX, content, "writing a marker into the WAL", pos,
	                       len, err);
}

/* --- chunks (notes 2, 3) --------------------------------------------------- */

/* The transactions in progress now (xid8 values), into *out (malloc'd). */
static int in_progress(ps_source *src, uint64_t **out, size_t *n, ps_error *err)
{
	PGresult *r = NULL;
	int rc = pg_exec(src->sql, &r, err, "listing transactions in progress",
	                 "SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) x", 0, NULL);

	*out = NULL;
	*n = 0;
	if (rc != PS_OK)
		return rc;
	*out = calloc((size_t)PQntuples(r) + 1, sizeof(uint64_t));
	if (!*out)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	for (int i = 0; rc == PS_OK && i < PQntuples(r); i++)
		(*out)[(*n)++] = strtoull(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	return rc;
}

static bool is_long(const ps_source *src, uint64_t xid)
{
	for (size_t i = 0; i < src->nlong; i++)
		if (src->long_xids[i] == xid)
			return true;
	return false;
}

static void remember_long(ps_source *src, uint64_t xid)
{
	if (is_long(src, xid))
		return;
	src->long_xids[src->long_next] = xid;
	src->long_next = (src->long_next + 1) % PG_LONG_XIDS;
	if (src->nlong < PG_LONG_XIDS)
		src->nlong++;
}

/* Whether the transactions noted after the last mark have ended (note 2). */
static int waited(ps_source *src, bool *done, ps_error *err)
{
	uint64_t *now = NULL;
	size_t nnow = 0, still = 0;
	int rc;

	*done = false;
	rc = in_progress(src, &now, &nnow, err);
	if (rc != PS_OK)
		return rc;
	if (!src->wait_taken) {
		free(src->wait_xids);
		src->wait_xids = now;
		src->nwait = 0;
		for (size_t i = 0; i < nnow; i++)
			if (!is_long(src, now[i]))
				src->wait_xids[src->nwait++] = now[i];
		src->wait_taken = true;
		src->wait_since_ns = ps_now_ns();
		*done = src->nwait == 0;
		return PS_OK;
	}
	for (size_t i = 0; i < src->nwait; i++)
		for (size_t j = 0; j < nnow; j++)
			if (src->wait_xids[i] == now[j]) {
				src->wait_xids[still++] = src->wait_xids[i];
				break;
			}
	src->nwait = still;
	free(now);
	if (still && ps_now_ns() - src->wait_since_ns >= PG_WAIT_LONG_NS) {
		for (size_t i = 0; i < still; i++)
			remember_long(src, src->wait_xids[i]);
		ps_log_info("backfill: %zu source transaction%s open for over %lld s; not waiting for "
		            "%s (a long transaction commits after the chunk's low marker)", still,
		            still == 1 ? "" : "s", (long long)(PG_WAIT_LONG_NS / 1000000000ULL), still == 1 ? "it" : "them");
		still = 0;
	}
	*done = still == 0;
	return PS_OK;
}

/* SELECT cols FROM t [WHERE (keys) > ($1::type, ...)] ORDER BY keys LIMIT n */
static int chunk_sql(ps_source *src, ps_buf *sql, const ps_table_def *def, const int *keys,
                     int nkeys, bool after, int max_rows)
{
	const ps_table *t = def->table;
	char piece[64];
	int rc = PS_OK;

	pg_put(&rc, sql, "SELECT ");
	pg_put_columns(&rc, src->sql, sql, t, NULL, t->ncolumns);
	pg_put(&rc, sql, t->ncolumns == 0 ? "1 FROM " : " FROM ");
	pg_put_table(&rc, src->sql, sql, t);
	if (after) {
		pg_put(&rc, sql, " WHERE (");
		pg_put_columns(&rc, src->sql, sql, t, keys, nkeys);
		pg_put(&rc, sql, ") > (");
		for (int k = 0; k < nkeys; k++) {
			snprintf(piece, sizeof(piece), "%s$%d::", k ? ", " : "", k + 1);
			pg_put(&rc, sql, piece);
			pg_put(&rc, sql, def->columns[keys[k]].sql_type);
		}
		pg_put(&rc, sql, ")");
	}
	pg_put(&rc, sql, " ORDER BY ");
	pg_put_columns(&rc, src->sql, sql, t, keys, nkeys);
	snprintf(piece, sizeof(piece), " LIMIT %d", max_rows);
	pg_put(&rc, sql, piece);
	return rc;
}

int pg_chunk_read(ps_source *src, const ps_table_def *def, const ps_key_bound *after,
                  int max_rows, ps_row_fn fn, void *ctx, int *nrows, ps_error *err)
{
	const char *params[CHUNK_MAX_KEYS];
	ps_value *values = NULL;
	PGresult *r = NULL;
	const int *keys;
	int nkeys, ncols = def->table->ncolumns, rc;
	bool done;
	ps_buf sql;

	*nrows = -1;
	pg_primary_key(def, &keys, &nkeys);
	if (nkeys == 0 || nkeys > CHUNK_MAX_KEYS)
		return ps_error_set(err, PS_EINVAL, "%s.%s has no usable primary key to read it in chunks",
		                    def->table->schema, def->table->name);
	if (after && after->nvalues != nkeys)
		return ps_error_set(err, PS_EINVAL, "chunk bound has %d values, the primary key of %s.%s "
		                    "has %d columns", after->nvalues, def->table->schema,
		                    def->table->name, nkeys);
	rc = waited(src, &done, err);
	if (rc != PS_OK || !done)
		return rc;
	src->wait_taken = false;
	for (int k = 0; after && k < nkeys; k++)
		params[k] = after->values[k];
	ps_buf_init(&sql, 1u << 20);
	rc = chunk_sql(src, &sql, def, keys, nkeys, after != NULL, max_rows > 0 ? max_rows : 1);
	if (rc != PS_OK) {
		ps_buf_free(&sql);
		return ps_error_set(err, rc, "chunk statement too long");
	}
	rc = pg_exec(src->sql, &r, err, "reading a chunk", sql.data, after ? nkeys : 0,
	             after ? params : NULL);
	ps_buf_free(&sql);
	if (rc != PS_OK)
		goto cleanup;
	values = calloc((size_t)ncols + 1, sizeof(*values));
	if (!values) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	*nrows = 0;
	for (int i = 0; rc == PS_OK && i < PQntuples(r); i++) {
		for (int c = 0; c < ncols; c++) {
			bool null = PQgetisnull(r, i, c);
			values[c].kind = null ? PS_VALUE_NULL : PS_VALUE_TEXT;
			values[c].len = null ? 0 : (uint32_t)PQgetlength(r, i, c);
			values[c].data = null ? NULL : PQgetvalue(r, i, c);
		}
		rc = fn(ctx, def->table, values, err);
		if (rc == PS_OK)
			(*nrows)++;
	}
cleanup:
	if (rc != PS_OK)
		ps_error_add_context(err, "table %s.%s", def->table->schema, def->table->name);
	free(values);
	PQclear(r);
	return rc;
}
