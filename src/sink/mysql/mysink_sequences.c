/*
 * mysink_sequences.c — the cutover's sequences (sink.h sequences_set) on a
 * MySQL / MariaDB target: a sequence that feeds a column (serial, identity)
 * is that column's AUTO_INCREMENT counter here (mysink_ddl.c puts it on a
 * one-column integer primary key), set past the source's last value so the
 * first insert after the cutover continues where the source stopped.
 *
 * ALTER TABLE ... AUTO_INCREMENT = n is DDL: it runs on the DDL connection
 * and commits by itself, before flush. It is idempotent, and InnoDB never
 * sets the counter at or below the largest value in the column, so running
 * it again after a crash changes nothing. A sequence without a column, or
 * whose column has no AUTO_INCREMENT in the target, is listed as skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/mysql/mysink.h"
#include "util/myconn.h"

/* Whether db.table.column is an AUTO_INCREMENT column. */
static int is_auto(MYSQL *ddl, const char *db, const char *table, const char *column, bool *yes,
                   ps_error *err)
{
	ps_buf sql;
	char out[16];
	bool found = false;
	int rc;

	*yes = false;
	ps_buf_init(&sql, 4096);
	rc = ps_buf_puts(&sql, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ");
	if (rc == PS_OK)
		rc = my_quote_literal(ddl, &sql, db);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " AND TABLE_NAME = ");
	if (rc == PS_OK)
		rc = my_quote_literal(ddl, &sql, table);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " AND COLUMN_NAME = ");
	if (rc == PS_OK)
		rc = my_quote_literal(ddl, &sql, column);
	if (rc == PS_OK)
		rc = ps_buf_puts(&sql, " AND EXTRA LIKE '%auto_increment%'");
	if (rc != PS_OK)
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	else
		rc = my_query_text(ddl, sql.data, out, sizeof(out), &found,
		                   "finding the AUTO_INCREMENT column", err);
	*yes = rc == PS_OK && found && strcmp(out, "0") != 0;
	ps_buf_free(&sql);
	return rc;
}

int mys_sequences_set(ps_sink *s, const ps_sequence *seqs, size_t n, char *summary, size_t len,
                      ps_error *err)
{
	ps_buf synced, skipped, sql;
	int nsynced = 0, nskipped = 0, rc;
	MYSQL *ddl = NULL;

	ps_buf_init(&synced, len);
	ps_buf_init(&skipped, len);
	ps_buf_init(&sql, 4096);
	rc = mys_check_usable(s, err);
	if (rc == PS_OK)
		rc = mys_settle(s, err);
	if (rc == PS_OK)
		rc = mys_ddl_conn(s, &ddl, err);
	for (size_t i = 0; rc == PS_OK && i < n; i++) {
		const ps_sequence *q = &seqs[i];
		char db[256], table[256], what[700];
		unsigned long long last, next;
		char *end = NULL;
		bool yes = false;

		if (q->table_name && q->column) {
			mys_target_names(s, q->table_schema, q->table_name, db, sizeof(db), table,
			                 sizeof(table));
			rc = is_auto(ddl, db, table, q->column, &yes, err);
		}
		if (rc != PS_OK)
			break;
		last = strtoull(q->last_value ? q->last_value : "", &end, 10);
		if (!yes || !end || *end || !q->last_value[0] || q->last_value[0] == '-') {
			if (q->table_name && q->column)
				ps_buf_printf(&skipped, "%s%s.%s.%s", nskipped ? ", " : "", q->table_schema,
				              q->table_name, q->column);
			else
				ps_buf_printf(&skipped, "%s%s.%s", nskipped ? ", " : "", q->schema, q->name);
			nskipped++;
			continue;
		}
		next = q->is_called ? last + 1 : last;
		if (next == 0)
			next = 1;
		ps_buf_reset(&sql);
		rc = ps_buf_puts(&sql, "ALTER TABLE ");
		if (rc == PS_OK)
			rc = mys_qualified(&sql, db, table);
		if (rc == PS_OK)
			rc = ps_buf_printf(&sql, " AUTO_INCREMENT = %llu", next);
		snprintf(what, sizeof(what), "setting the AUTO_INCREMENT of %s.%s", db, table);
		if (rc == PS_OK)
			rc = my_exec(ddl, sql.data, what, err);
		else
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		if (rc != PS_OK) {
			ps_error_add_context(err, "sequence %s.%s", q->schema, q->name);
			break;
		}
		ps_buf_printf(&synced, "%s%s.%s AUTO_INCREMENT = %llu", nsynced ? ", " : "", db, table,
		              next);
		nsynced++;
	}
	if (rc == PS_OK)
		snprintf(summary, len, "%d synced to the source's values%s%s%s%s%s", nsynced,
		         nsynced ? " (" : "", nsynced ? synced.data : "", nsynced ? ")" : "",
		         nskipped ? "; no AUTO_INCREMENT column in the target for " : "",
		         nskipped ? skipped.data : "");
	ps_buf_free(&synced);
	ps_buf_free(&skipped);
	ps_buf_free(&sql);
	return rc;
}
