/*
 * myconn.h — Connector/C helpers shared by everything that talks to MySQL
 * or MariaDB (the source, the sink, compare).
 *
 * - Connections are made from the spec's URL (mysql:// or mariadb://) with
 *   the password passed separately (never in a string that could be
 *   logged). URL query parameters: ssl_mode (disable | require |
 *   verify_ca | verify_full), ssl_ca, ssl_cert, ssl_key, connect_timeout
 *   (seconds, default 10), socket (a Unix socket path instead of TCP).
 * - Every session speaks utf8mb4 and UTC (time_zone '+00:00'), so that text
 *   read and written agrees byte for byte with the canonical forms of
 *   penstock/change.h whatever the server's own settings.
 * - Errors are copied out of the handle at once (it reuses its buffer) with
 *   the server's errno as the engine code ("MySQL error", e.g. 1213) and the
 *   class this file gives it (my_errclass_of), naming host and port.
 * - Identifiers go into SQL only through my_quote_ident (backticks); values
 *   only as parameters, LOAD DATA streams or escaped literals.
 */
#ifndef PS_UTIL_MYCONN_H
#define PS_UTIL_MYCONN_H

#include <mysql.h>
#include <stdbool.h>

#include "penstock/error.h"
#include "penstock/url.h"
#include "util/buf.h"

/* The URL syntax of mysql:// and mariadb:// (penstock/url.h). */
extern const ps_url_syntax ps_mysql_url_syntax[];

/* The engine code kind of a MySQL/MariaDB error (ps_error.engine_code_kind). */
#define MY_CODE_KIND "MySQL error"

typedef struct my_connect_opts {
	bool local_infile;          /* allow LOAD DATA LOCAL INFILE */
	bool multi_statements;
	const char *program;        /* program_name connect attribute, e.g. "penstock sink orders" */
	unsigned int read_timeout;  /* seconds a read may block (MYSQL_OPT_READ_TIMEOUT); 0: none */
} my_connect_opts;

/* Connects to the URL's server and database as its user; sets the session
 * to utf8mb4 and UTC. PS_ECONNECT (or the server's refusal, classed) with
 * host and port named. */
int my_connect(MYSQL **out, const ps_url *url, const char *password,
               const my_connect_opts *opts, ps_error *err);

/* The class of a server or client errno (ps_errclass), -1 when unknown. */
int my_errclass_of(unsigned int my_errno);
/* Fills err from the handle's last error: PS_ECONNECT when the connection
 * is gone, else PS_ESERVER; the errno as the engine code with its class.
 * what says what was being done. Returns the code. */
int my_error(ps_error *err, MYSQL *conn, const char *what);
/* Runs a statement that returns no rows (or discards them). */
int my_exec(MYSQL *conn, const char *sql, const char *what, ps_error *err);
/* Runs a query and stores its whole result in *out (mysql_free_result). */
int my_query(MYSQL *conn, const char *sql, MYSQL_RES **out, const char *what, ps_error *err);
/* The first column of the first row of sql into buf ("" and *found false
 * when there is no row or it is NULL). */
int my_query_text(MYSQL *conn, const char *sql, char *buf, size_t len, bool *found,
                  const char *what, ps_error *err);

/* Appends `ident` with backticks doubled; on failure b is left as it was. */
int my_quote_ident(ps_buf *b, const char *ident);
/* Appends 'text' as a string literal escaped for the connection. */
int my_quote_literal(MYSQL *conn, ps_buf *b, const char *text);

#endif
