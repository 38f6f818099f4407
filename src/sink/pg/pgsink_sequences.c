/*
 * pgsink_sequences.c — the cutover's sequences (sink.h sequences_set): each
 * target sequence is set to the source's last_value and is_called, so that
 * the first nextval() after the cutover continues where the source stopped.
 *
 * The target's sequence of an owned one is the one pg_get_serial_sequence
 * names for the same table and column (the sink creates serial sequences
 * under their source names and OWNED BY the column; identity columns have
 * their own); a sequence no column owns is looked up under its own name. A
 * sequence with no counterpart in the target is listed as skipped, not an
 * error. Runs inside the sink's target transaction: flush commits it.
 */
#include <stdio.h>
#include <string.h>

#include "sink/pg/pgsink.h"
#include "util/pgconn.h"

/* "schema"."name", quoted for the connection. */
static int qualified(PGconn *conn, ps_buf *b, const char *schema, const char *name)
{
	int rc = pg_quote_ident(conn, b, schema);

	if (rc == PS_OK)
		rc = ps_buf_putc(b, '.');
	return rc == PS_OK ? pg_quote_ident(conn, b, name) : rc;
}

/* The target sequence standing for seq into *target ("" when none). */
static int target_of(ps_sink *s, const ps_sequence *seq, char *target, size_t len,
                     ps_error *err)
{
	PGresult *r = NULL;
	ps_buf name;
	const char *params[2];
	int rc;

	target[0] = '\0';
	ps_buf_init(&name, 2048);
	if (seq->table_name && seq->column)
		rc = qualified(s->conn, &name, seq->table_schema, seq->table_name);
	else
		rc = qualified(s->conn, &name, seq->schema, seq->name);
	if (rc != PS_OK) {
		ps_buf_free(&name);
		return ps_error_set(err, rc, "sequence name too long");
	}
	params[0] = name.data;
	params[1] = seq->column;
	if (seq->table_name && seq->column)
		rc = pgs_exec(s, &r, err, "finding the sequence on the target",
		              "SELECT pg_get_serial_sequence($1, $2)", 2, params);
	else
		rc = pgs_exec(s, &r, err, "finding the sequence on the target",
		              "SELECT to_regclass($1)::text", 1, params);
	if (rc == PS_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		snprintf(target, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	ps_buf_free(&name);
	return rc;
}

int pgs_sequences_set(ps_sink *s, const ps_sequence *seqs, size_t n, char *summary, size_t len,
                      ps_error *err)
{
	ps_buf synced, skipped;
	int nsynced = 0, nskipped = 0, rc;

	ps_buf_init(&synced, len);
	ps_buf_init(&skipped, len);
	rc = pgs_check_usable(s, err);
	if (rc == PS_OK)
		rc = pgs_settle(s, err);
	if (rc == PS_OK)
		rc = pgs_ensure_txn(s, err);
	for (size_t i = 0; rc == PS_OK && i < n; i++) {
		const ps_sequence *q = &seqs[i];
		char target[600];
		const char *params[3];

		rc = target_of(s, q, target, sizeof(target), err);
		if (rc == PS_OK && !target[0]) {
			if (q->table_name && q->column)
				ps_buf_printf(&skipped, "%s%s.%s.%s", nskipped ? ", " : "", q->table_schema,
				              q->table_name, q->column);
			else
				ps_buf_printf(&skipped, "%s%s.%s", nskipped ? ", " : "", q->schema, q->name);
			nskipped++;
			continue;
		}
		params[0] = target;
		params[1] = q->last_value;
		params[2] = q->is_called ? "true" : "false";
		if (rc == PS_OK)
			rc = pgs_exec(s, NULL, err, "setting the sequence on the target",
			              "SELECT setval($1::regclass, $2::bigint, $3::boolean)", 3, params);
		if (rc != PS_OK) {
			ps_error_add_context(err, "sequence %s.%s", q->schema, q->name);
			break;
		}
		ps_buf_printf(&synced, "%s%s = %s", nsynced ? ", " : "", target, q->last_value);
		nsynced++;
	}
	if (rc == PS_OK)
		snprintf(summary, len, "%d synced to the source's values%s%s%s%s%s", nsynced,
		         nsynced ? " (" : "", nsynced ? synced.data : "", nsynced ? ")" : "",
		         nskipped ? "; no sequence in the target for " : "", nskipped ? skipped.data : "");
	ps_buf_free(&synced);
	ps_buf_free(&skipped);
	return rc;
}
