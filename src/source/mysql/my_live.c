/*
 * my_live.c — markers in the binlog (fences, DBLog watermarks), live table
 * changes (retable, chunk_read) and the cutover's AUTO_INCREMENT counters.
 *
 * NOTES ON THE DESIGN
 *
 * 1. A marker is a row of penstock.marks written in a transaction of its
 *    own: DELETE the job's last row, INSERT the new one, COMMIT. The stream
 *    recognises the insert (my_stream.c) wherever the job's tables are.
 *    The table is made on first use, so a job that never needs a marker
 *    (no cutover fence, no live table change) writes nothing to the source.
 * 2. The position a marker returns is the binlog's end read just before
 *    its transaction: every transaction committed before the call is at or
 *    before it, and the marker's own commit is after it (source.h fence).
 * 3. retable makes the new table set take effect where its marker is in
 *    the binlog, not when it is called: the events between the two are
 *    still judged with the old set (the receiving thread may hold them
 *    already). So a removed table's changes end exactly at the marker and
 *    an added table's begin exactly there (invariant 8).
 * 4. chunk_read needs no wait for transactions in progress: with
 *    binlog_order_commits (MariaDB's default) InnoDB commits in binlog
 *    order, so when the low marker has committed, every transaction before
 *    it in the binlog is visible to the chunk's SELECT, and every one after
 *    the high marker is not (invariant 9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/my_internal.h"
#include "util/log.h"
#include "util/myconn.h"
#include "util/str.h"

int my_marks_ensure(ps_source *src, ps_error *err)
{
	int rc = my_exec(src->sql, "CREATE DATABASE IF NOT EXISTS `" MY_MARKS_DB "`",
	                 "creating the database " MY_MARKS_DB " for markers", err);

	if (rc == PS_OK)
		rc = my_exec(src->sql, "CREATE TABLE IF NOT EXISTS `" MY_MARKS_DB "`.`" MY_MARKS_TABLE
		             "` (id BIGINT AUTO_INCREMENT PRIMARY KEY, job VARCHAR(200) NOT NULL, "
		             "prefix VARCHAR(64) NOT NULL, content LONGTEXT NOT NULL, "
		             "at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY (job)) "
		             "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		             "creating the marker table " MY_MARKS_DB "." MY_MARKS_TABLE, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "penstock writes markers into the source's binlog as rows "
		                     "of " MY_MARKS_DB "." MY_MARKS_TABLE "; GRANT CREATE, INSERT, "
		                     "DELETE ON `" MY_MARKS_DB "`.* TO the source user");
	return rc;
}

int my_write_marker(ps_source *src, const char *prefix, const char *content, char *pos,
                    size_t len, ps_error *err)
{
	ps_buf sql;
	int rc = my_marks_ensure(src, err);

	if (rc == PS_OK)
		rc = my_current_position(src, pos, len, err);
	if (rc != PS_OK)
		return rc;
	ps_buf_init(&sql, (size_t)1 << 30);
	rc = my_exec(src->sql, "START TRANSACTION", "writing a marker", err);
	if (rc == PS_OK) {
		ps_buf_puts(&sql, "DELETE FROM `" MY_MARKS_DB "`.`" MY_MARKS_TABLE "` WHERE job = ");
		my_quote_literal(src->sql, &sql, src->job_name);
		rc = sql.data ? my_exec(src->sql, sql.data, "writing a marker", err)
		              : ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (rc == PS_OK) {
		ps_buf_reset(&sql);
		ps_buf_puts(&sql, "INSERT INTO `" MY_MARKS_DB "`.`" MY_MARKS_TABLE
		            "` (job, prefix, content) VALUES (");
		my_quote_literal(src->sql, &sql, src->job_name);
		ps_buf_puts(&sql, ", ");
		my_quote_literal(src->sql, &sql, prefix);
		ps_buf_puts(&sql, ", ");
		my_quote_literal(src->sql, &sql, content);
		rc = ps_buf_puts(&sql, ")");
		rc = rc == PS_OK ? my_exec(src->sql, sql.data, "writing a marker", err)
		                 : ps_error_set(err, PS_ETOOBIG, "marker too long");
	}
	if (rc == PS_OK)
		rc = my_exec(src->sql, "COMMIT", "committing a marker", err);
	else
		my_exec(src->sql, "ROLLBACK", "rolling back a marker", &(ps_error){0});
	ps_buf_free(&sql);
	return rc;
}

int my_mark(ps_source *src, const char *content, char *pos, size_t len, ps_error *err)
{
	return my_write_marker(src, PS_MARK_PREFIX, content, pos, len, err);
}

/* --- retable ----------------------------------------------------------------------- */

static bool has_table(const my_tableinfo *t, size_t n, const char *db, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].db, db) == 0 && strcmp(t[i].name, name) == 0)
			return true;
	return false;
}

int my_retable(ps_source *src, const char *const *include, size_t ninclude,
               const char *const *exclude, size_t nexclude, bool with_key, const char *mark,
               ps_retable_result *res, ps_error *err)
{
	my_tableinfo *now = NULL, *added = NULL;
	size_t n = 0, nadded = 0;
	char **inc = NULL, **exc = NULL;
	ps_buf refused;
	char pos[PS_POSITION_MAX];
	int rc;

	memset(res, 0, sizeof(*res));
	ps_buf_init(&refused, 1 << 16);
	rc = my_catalog_load(src->sql, (char *const *)include, ninclude, (char *const *)exclude,
	                     nexclude, &now, &n, &refused, err);
	if (rc != PS_OK)
		goto cleanup;
	if (refused.len) {
		rc = ps_error_set(err, PS_EINVAL, "tables of a storage engine without transactions: "
		                  "%s. Fix: ALTER TABLE ... ENGINE=InnoDB, or exclude them",
		                  refused.data);
		goto cleanup;
	}
	added = calloc(n + 1, sizeof(*added));
	res->removed = calloc(src->ntables + 1, sizeof(char *));
	inc = ps_strv_copy((char *const *)include, ninclude);
	exc = ps_strv_copy((char *const *)exclude, nexclude);
	if (!added || !res->removed || !inc || !exc) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		if (has_table(src->tables, src->ntables, now[i].db, now[i].name))
			continue;
		if (with_key && !now[i].has_pk) {
			rc = ps_error_set(err, PS_EINVAL, "table %s.%s has no primary key, so it cannot be "
			                  "added to a running job (its backfill reads it in key order). "
			                  "Fix: ALTER TABLE `%s`.`%s` ADD PRIMARY KEY (...), or exclude it",
			                  now[i].db, now[i].name, now[i].db, now[i].name);
			goto cleanup;
		}
		added[nadded++] = now[i];   /* shallow: the infos stay owned by `now` */
	}
	for (size_t i = 0; i < src->ntables; i++) {
		char name[600];
		if (has_table(now, n, src->tables[i].db, src->tables[i].name))
			continue;
		snprintf(name, sizeof(name), "%s.%s", src->tables[i].db, src->tables[i].name);
		if (!(res->removed[res->nremoved] = strdup(name))) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
			goto cleanup;
		}
		res->nremoved++;
	}
	if (nadded) {
		rc = my_describe_infos_keyless(added, nadded, src->keyless, &res->added, err);
		if (rc != PS_OK)
			goto cleanup;
		res->nadded = nadded;
	}
	rc = my_write_marker(src, PS_MARK_PREFIX, mark, pos, sizeof(pos), err);
	if (rc != PS_OK)
		goto cleanup;
	/* design note 3: the stream switches when the marker comes through */
	my_tableinfos_free(src->next_tables, src->nnext_tables);
	src->next_tables = now;
	src->nnext_tables = n;
	free(src->next_mark);
	src->next_mark = strdup(mark);
	now = NULL;
	n = 0;
	ps_strv_free(src->include, src->ninclude);
	ps_strv_free(src->exclude, src->nexclude);
	src->include = inc;
	src->exclude = exc;
	src->ninclude = ninclude;
	src->nexclude = nexclude;
	inc = exc = NULL;
	if (!src->next_mark)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
cleanup:
	free(added);
	my_tableinfos_free(now, n);
	ps_strv_free(inc, ninclude);
	ps_strv_free(exc, nexclude);
	ps_buf_free(&refused);
	if (rc != PS_OK) {
		for (size_t i = 0; i < res->nadded; i++)
			ps_table_def_free(res->added[i]);
		free(res->added);
		for (size_t i = 0; i < res->nremoved; i++)
			free(res->removed[i]);
		free(res->removed);
		memset(res, 0, sizeof(*res));
	}
	return rc;
}

int my_chunk_read(ps_source *src, const ps_table_def *def, const ps_key_bound *after,
                  int max_rows, ps_row_fn fn, void *ctx, int *nrows, ps_error *err)
{
	if (!def->has_primary_key)
		return ps_error_set(err, PS_EINVAL, "table %s.%s has no primary key: it cannot be read "
		                    "in chunks", def->table->schema, def->table->name);
	return my_select_rows(src->sql, def, NULL, after, max_rows > 0 ? max_rows : 1,
	                      src->zero_dates_null, fn, ctx, nrows, err);
}

/* --- sequences ----------------------------------------------------------------------- */

int my_sequences(ps_source *src, ps_sequence **seqs, size_t *n, ps_error *err)
{
	my_tableinfo *t = NULL;
	size_t nt = 0, k = 0;
	ps_sequence *out = NULL;
	int rc;

	*seqs = NULL;
	*n = 0;
	rc = my_catalog_load(src->sql, src->include, src->ninclude, src->exclude, src->nexclude, &t,
	                     &nt, NULL, err);
	if (rc != PS_OK)
		return rc;
	out = calloc(nt + 1, sizeof(*out));
	if (!out) {
		my_tableinfos_free(t, nt);
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == PS_OK && i < nt; i++) {
		const my_colinfo *col = NULL;
		unsigned long long next;
		char last[32];

		for (int j = 0; j < t[i].ncols && !col; j++)
			if (t[i].cols[j].auto_increment)
				col = &t[i].cols[j];
		if (!col || !t[i].auto_increment)
			continue;
		next = strtoull(t[i].auto_increment, NULL, 10);
		snprintf(last, sizeof(last), "%llu", next > 1 ? next - 1 : 1);
		out[k].schema = strdup(t[i].db);
		out[k].name = strdup(t[i].name);   /* the table stands for its counter */
		out[k].table_schema = strdup(t[i].db);
		out[k].table_name = strdup(t[i].name);
		out[k].column = strdup(col->name);
		out[k].last_value = strdup(last);
		out[k].is_called = next > 1;
		k++;
		if (!out[k - 1].schema || !out[k - 1].name || !out[k - 1].table_schema ||
		    !out[k - 1].table_name || !out[k - 1].column || !out[k - 1].last_value)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	my_tableinfos_free(t, nt);
	if (rc != PS_OK) {
		ps_sequences_free(out, k);
		return rc;
	}
	*seqs = out;
	*n = k;
	return PS_OK;
}
