/*
 * pgconn.c — libpq helpers (see pgconn.h).
 */
#include <stdio.h>
#include <string.h>

#include "util/pgconn.h"

int pg_connect(PGconn **out, const char *url, const ps_url *parsed, const char *password,
               bool replication, const char *application_name, ps_error *err)
{
	const char *keys[9];
	const char *vals[9];
	char where[300];
	int n = 0;
	PGconn *conn;

	*out = NULL;
	keys[n] = "dbname"; vals[n++] = url;
	if (password) {
		keys[n] = "password"; vals[n++] = password;
	}
	if (replication) {
		keys[n] = "replication"; vals[n++] = "database";
	}
	if (!ps_url_param_get(parsed, "application_name")) {
		keys[n] = "application_name"; vals[n++] = application_name ? application_name : "penstock";
	}
	if (!ps_url_param_get(parsed, "options")) {
		keys[n] = "options"; vals[n++] = PG_SESSION_OPTIONS;
	}
	if (!ps_url_param_get(parsed, "connect_timeout")) {
		keys[n] = "connect_timeout"; vals[n++] = "10";
	}
	keys[n] = NULL; vals[n] = NULL;

	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn)
		return ps_error_set(err, PS_ENOMEM, "out of memory creating a PostgreSQL connection");
	if (PQstatus(conn) != CONNECTION_OK) {
		ps_url_host_port(parsed, where, sizeof(where));
		ps_error_set(err, PS_ECONNECT, "cannot connect to PostgreSQL at %s%s%s: %s", where,
		             parsed->user[0] ? " as " : "", parsed->user, PQerrorMessage(conn));
		PQfinish(conn);
		return PS_ECONNECT;
	}
	*out = conn;
	return PS_OK;
}

int pg_result_error(ps_error *err, PGconn *conn, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	int code;

	if (!msg || !*msg)
		msg = PQerrorMessage(conn);
	/* Class 08 (connection exception) and 57P (operator intervention: the
	 * server is shutting down, or our backend was terminated) mean the
	 * connection is gone even when libpq has not noticed yet. */
	code = (PQstatus(conn) == CONNECTION_BAD ||
	        (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)))
	       ? PS_ECONNECT : PS_ESERVER;
	ps_error_set(err, code, "%s: %s", what, msg && *msg ? msg : "unknown error");
	if (state && err)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	return code;
}

int pg_exec(PGconn *conn, PGresult **out, ps_error *err, const char *what,
            const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc;

	if (out)
		*out = NULL;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = pg_result_error(err, conn, res, what);
		PQclear(res);
		return rc;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return PS_OK;
}

static int append_escaped(PGconn *conn, ps_buf *b, const char *text,
                          char *(*escape)(PGconn *, const char *, size_t))
{
	char *q = escape(conn, text, strlen(text));
	int rc;

	if (!q)
		return PS_ENOMEM;
	rc = ps_buf_puts(b, q);
	PQfreemem(q);
	return rc;
}

int pg_quote_ident(PGconn *conn, ps_buf *b, const char *ident)
{
	return append_escaped(conn, b, ident, PQescapeIdentifier);
}

int pg_quote_literal(PGconn *conn, ps_buf *b, const char *text)
{
	return append_escaped(conn, b, text, PQescapeLiteral);
}
