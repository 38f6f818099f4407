/*
 * pgconn.c — libpq helpers (see pgconn.h).
 */
#include <stdio.h>
#include <string.h>

#include "util/pgconn.h"
#include "util/sql.h"

/* --- error classes ---------------------------------------------------------- */

/* Exact SQLSTATEs first: several of them refine a class listed below
 * (42501 in class 42, 57014 in class 57). */
static const struct {
	const char *code;
	int cls;
} SQLSTATE_CODES[] = {
	{"57P01", PS_ERRCLASS_CONNECTION},   /* admin_shutdown (or our backend terminated) */
	{"57P02", PS_ERRCLASS_CONNECTION},   /* crash_shutdown */
	{"57P03", PS_ERRCLASS_CONNECTION},   /* cannot_connect_now: starting up, shutting down */
	{"57P05", PS_ERRCLASS_CONNECTION},   /* idle_session_timeout */
	{"25P03", PS_ERRCLASS_CONNECTION},   /* idle_in_transaction_session_timeout */
	{"57014", PS_ERRCLASS_TIMEOUT},      /* query_canceled: statement_timeout, cancel */
	{"40001", PS_ERRCLASS_CONFLICT},     /* serialization_failure */
	{"40P01", PS_ERRCLASS_CONFLICT},     /* deadlock_detected */
	{"55P03", PS_ERRCLASS_CONFLICT},     /* lock_not_available: lock_timeout */
	{"55006", PS_ERRCLASS_CONFLICT},     /* object_in_use: a slot still held */
	{"58030", PS_ERRCLASS_RESOURCES},    /* io_error */
	{"42704", PS_ERRCLASS_SLOT_LOST},    /* undefined_object: START_REPLICATION on no slot */
	{"55000", PS_ERRCLASS_SLOT_LOST},    /* "can no longer get changes from replication slot" */
	{"58P01", PS_ERRCLASS_LOG_LOST},     /* undefined_file: requested WAL segment removed */
	{"42501", PS_ERRCLASS_PERMISSION},   /* insufficient_privilege */
	{"57P04", PS_ERRCLASS_INVALID},      /* database_dropped */
	{"3D000", PS_ERRCLASS_INVALID},      /* invalid_catalog_name: no such database */
	{"0A000", PS_ERRCLASS_SCHEMA},       /* feature_not_supported */
	{"3F000", PS_ERRCLASS_SCHEMA},       /* invalid_schema_name */
};

static const struct {
	const char *prefix;   /* the SQLSTATE class: its first two characters */
	int cls;
} SQLSTATE_CLASSES[] = {
	{"08", PS_ERRCLASS_CONNECTION},      /* connection exception */
	{"53", PS_ERRCLASS_RESOURCES},       /* insufficient resources: disk full, memory, connections */
	{"28", PS_ERRCLASS_PERMISSION},      /* invalid authorization specification */
	{"42", PS_ERRCLASS_SCHEMA},          /* undefined table/column, datatype mismatch, ... */
	{"22", PS_ERRCLASS_SCHEMA},          /* data exception: a value the target type refuses */
	{"23", PS_ERRCLASS_SCHEMA},          /* integrity constraint: NOT NULL, unique, check */
	{"XX", PS_ERRCLASS_INTERNAL},        /* internal error, data corrupted */
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int pg_errclass_of_sqlstate(const char *s)
{
	if (!s || strlen(s) != 5)
		return -1;
	for (size_t i = 0; i < NELEM(SQLSTATE_CODES); i++)
		if (strcmp(s, SQLSTATE_CODES[i].code) == 0)
			return SQLSTATE_CODES[i].cls;
	for (size_t i = 0; i < NELEM(SQLSTATE_CLASSES); i++)
		if (strncmp(s, SQLSTATE_CLASSES[i].prefix, 2) == 0)
			return SQLSTATE_CLASSES[i].cls;
	return -1;
}

int pg_error_sqlstate(ps_error *err, const char *sqlstate)
{
	return ps_error_set_engine(err, PG_CODE_KIND, sqlstate, pg_errclass_of_sqlstate(sqlstate));
}

const char *pg_sqlstate(const ps_error *err)
{
	return strcmp(err->engine_code_kind, PG_CODE_KIND) == 0 ? err->engine_code : "";
}

/* --- URLs ------------------------------------------------------------------- */

const ps_url_syntax ps_pg_url_syntax[] = {
	{"postgresql", "postgresql", PS_URL_SERVER, 5432, false, false, NULL,
	 "postgresql://[user@]host[:port]/dbname"},
	{"postgres", "postgresql", PS_URL_SERVER, 5432, false, false, NULL,
	 "postgresql://[user@]host[:port]/dbname"},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};

/* --- connections ------------------------------------------------------------ */

/* What to do about a TLS failure libpq reports while connecting; NULL when
 * msg is not one. The URL's ssl* parameters go to libpq unchanged (they are
 * part of the connection string), so the advice names them. */
static const char *tls_advice(const char *msg)
{
	if (strstr(msg, "does not match host name"))
		return "the server's certificate does not name the host of the URL (sslmode=verify-full "
		       "checks it): connect by a name or address the certificate holds in its "
		       "subjectAltName, or have the certificate reissued for this host";
	if (strstr(msg, "certificate verify failed"))
		return "the server's certificate is not signed by a CA penstock trusts: give the CA "
		       "certificate that signed it with sslrootcert=FILE in the URL";
	if (strstr(msg, "root certificate file"))
		return "sslmode=verify-ca and verify-full need the CA's certificate: add "
		       "sslrootcert=FILE to the URL (or put it in ~/.postgresql/root.crt)";
	if (strstr(msg, "server does not support SSL"))
		return "the server has ssl=off: turn TLS on there (ssl=on, ssl_cert_file, ssl_key_file), "
		       "or lower sslmode in the URL";
	if (strstr(msg, "private key file") || strstr(msg, "could not load private key") ||
	    strstr(msg, "certificate file"))
		return "check the URL's sslcert and sslkey: PEM files readable by penstock, the key "
		       "unencrypted and private to its owner (chmod 600)";
	if (strstr(msg, "requires a valid client certificate") ||
	    strstr(msg, "certificate authentication failed"))
		return "the server wants a client certificate for this role: give sslcert=FILE and "
		       "sslkey=FILE in the URL, a certificate whose common name is the user";
	return NULL;
}

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
		const char *advice = tls_advice(PQerrorMessage(conn));
		char msg[1024];
		size_t len;

		/* libpq's message ends in a newline (and a sentence in a full stop):
		 * trim them before the advice */
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
		len = strlen(msg);
		while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ' ||
		               (advice && msg[len - 1] == '.')))
			msg[--len] = '\0';
		ps_url_host_port(parsed, where, sizeof(where));
		ps_error_set(err, PS_ECONNECT, "cannot connect to PostgreSQL at %s%s%s: %s%s%s", where,
		             parsed->user[0] ? " as " : "", parsed->user, msg,
		             advice ? "; " : "", advice ? advice : "");
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
		pg_error_sqlstate(err, state);
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
	(void)conn;   /* the session is UTF-8: the standard quoting is exact */
	return ps_sql_quote_ident(b, ident);
}

int pg_quote_literal(PGconn *conn, ps_buf *b, const char *text)
{
	return append_escaped(conn, b, text, PQescapeLiteral);
}
