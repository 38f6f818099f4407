/*
 * pgconn.h — libpq helpers shared by everything that talks to PostgreSQL.
 *
 * - Connections are made from the spec's URL with the password passed as a
 *   separate keyword (never in a string that could be logged).
 * - Errors are copied out of libpq at once (the handle reuses its buffer),
 *   folded to one line, with the SQLSTATE kept, and name host and port.
 * - Identifiers go into SQL only through pg_quote_ident; values only as
 *   parameters.
 * - Every session uses the same settings for the text form of values
 *   (PG_SESSION_OPTIONS), so that text read from a source (COPY, pgoutput)
 *   and text written to or read from a target agree byte for byte: ISO
 *   dates, UTC, shortest exact floats, hex bytea, postgres intervals.
 */
#ifndef PS_UTIL_PGCONN_H
#define PS_UTIL_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "penstock/url.h"
#include "penstock/error.h"
#include "util/buf.h"

#define PG_SESSION_OPTIONS \
	"-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres " \
	"-c extra_float_digits=3 -c bytea_output=hex -c client_encoding=UTF8"

/* The URL syntax of postgresql:// and postgres:// (penstock/url.h). */
extern const ps_url_syntax ps_pg_url_syntax[];

/* The engine code kind of a PostgreSQL error (ps_error.engine_code_kind). */
#define PG_CODE_KIND "SQLSTATE"

/* The class of a SQLSTATE (penstock/error.h ps_errclass); -1 when it names
 * no condition we know. */
int pg_errclass_of_sqlstate(const char *sqlstate);
/* Records sqlstate in err as its engine code, with its class. Returns
 * err->code. */
int pg_error_sqlstate(ps_error *err, const char *sqlstate);
/* err's SQLSTATE, or "" when it carries none. */
const char *pg_sqlstate(const ps_error *err);

/* Connects; replication selects a logical replication connection
 * (replication=database). application_name defaults to "penstock". The
 * session gets PG_SESSION_OPTIONS unless the URL sets `options` itself. */
int pg_connect(PGconn **out, const char *url, const ps_url *parsed, const char *password,
               bool replication, const char *application_name, ps_error *err);

/* Fills err from a failed result (or the connection when res is NULL):
 * PS_ESERVER with SQLSTATE when the server answered, PS_ECONNECT when the
 * connection is gone. what says what was being done. */
int pg_result_error(ps_error *err, PGconn *conn, const PGresult *res, const char *what);

/* Runs a command expecting PGRES_COMMAND_OK or PGRES_TUPLES_OK; *out (may be
 * NULL) receives the result, which the caller PQclears. */
int pg_exec(PGconn *conn, PGresult **out, ps_error *err, const char *what,
            const char *sql, int nparams, const char *const *params);

/* Appends the quoted identifier to b. */
int pg_quote_ident(PGconn *conn, ps_buf *b, const char *ident);
/* Appends the quoted literal to b (for replication commands, which take no
 * parameters). */
int pg_quote_literal(PGconn *conn, ps_buf *b, const char *text);

#endif
