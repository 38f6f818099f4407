/*
 * myconn.c — Connector/C helpers (see myconn.h) and the URL syntax of
 * mysql:// and mariadb://.
 */
#include <errmsg.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/myconn.h"

const ps_url_syntax ps_mysql_url_syntax[] = {
	{"mysql", "mysql", PS_URL_SERVER, 3306, true, false, NULL,
	 "mysql://user@host[:port]/dbname"},
	{"mariadb", "mysql", PS_URL_SERVER, 3306, true, false, NULL,
	 "mysql://user@host[:port]/dbname"},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};

/* --- error classes ---------------------------------------------------------- */

static const struct {
	unsigned int code;
	int cls;
} MY_CODES[] = {
	/* the connection is gone or cannot be made: the client library's codes */
	{CR_CONNECTION_ERROR, PS_ERRCLASS_CONNECTION},   /* 2002 */
	{CR_CONN_HOST_ERROR, PS_ERRCLASS_CONNECTION},    /* 2003 */
	{CR_SERVER_GONE_ERROR, PS_ERRCLASS_CONNECTION},  /* 2006 */
	{CR_SERVER_LOST, PS_ERRCLASS_CONNECTION},        /* 2013 */
	{2055, PS_ERRCLASS_CONNECTION},                  /* CR_SERVER_LOST_EXTENDED */
	{ER_SERVER_SHUTDOWN, PS_ERRCLASS_CONNECTION},    /* 1053 */
	{ER_CONNECTION_KILLED, PS_ERRCLASS_CONNECTION},  /* 1927 */
	{ER_ABORTING_CONNECTION, PS_ERRCLASS_CONNECTION}, /* 1152 */
	{ER_NET_READ_ERROR, PS_ERRCLASS_CONNECTION},     /* 1158 */
	{ER_NET_READ_INTERRUPTED, PS_ERRCLASS_CONNECTION}, /* 1159 */
	{ER_NET_ERROR_ON_WRITE, PS_ERRCLASS_CONNECTION}, /* 1160 */
	{ER_NET_WRITE_INTERRUPTED, PS_ERRCLASS_CONNECTION}, /* 1161 */
	/* deadlines */
	{ER_STATEMENT_TIMEOUT, PS_ERRCLASS_TIMEOUT},     /* 1969: max_statement_time */
	{ER_QUERY_INTERRUPTED, PS_ERRCLASS_TIMEOUT},     /* 1317 */
	/* conflicts that pass */
	{ER_LOCK_DEADLOCK, PS_ERRCLASS_CONFLICT},        /* 1213 */
	{ER_LOCK_WAIT_TIMEOUT, PS_ERRCLASS_CONFLICT},    /* 1205 */
	/* the server's resources */
	{ER_DISK_FULL, PS_ERRCLASS_RESOURCES},           /* 1021 */
	{ER_RECORD_FILE_FULL, PS_ERRCLASS_RESOURCES},    /* 1114 */
	{ER_OUTOFMEMORY, PS_ERRCLASS_RESOURCES},         /* 1037 */
	{ER_OUT_OF_SORTMEMORY, PS_ERRCLASS_RESOURCES},   /* 1038 */
	{ER_OUT_OF_RESOURCES, PS_ERRCLASS_RESOURCES},    /* 1041 */
	{ER_CON_COUNT_ERROR, PS_ERRCLASS_RESOURCES},     /* 1040: too many connections */
	{ER_TOO_MANY_USER_CONNECTIONS, PS_ERRCLASS_RESOURCES}, /* 1203 */
	{ER_CANT_CREATE_THREAD, PS_ERRCLASS_RESOURCES},  /* 1135 */
	/* the binlog the position needs was purged */
	{ER_MASTER_FATAL_ERROR_READING_BINLOG, PS_ERRCLASS_LOG_LOST}, /* 1236 */
	/* privileges and authentication */
	{ER_DBACCESS_DENIED_ERROR, PS_ERRCLASS_PERMISSION},   /* 1044 */
	{ER_ACCESS_DENIED_ERROR, PS_ERRCLASS_PERMISSION},     /* 1045 */
	{ER_TABLEACCESS_DENIED_ERROR, PS_ERRCLASS_PERMISSION}, /* 1142 */
	{ER_COLUMNACCESS_DENIED_ERROR, PS_ERRCLASS_PERMISSION}, /* 1143 */
	{ER_SPECIFIC_ACCESS_DENIED_ERROR, PS_ERRCLASS_PERMISSION}, /* 1227 */
	{ER_PROCACCESS_DENIED_ERROR, PS_ERRCLASS_PERMISSION}, /* 1370 */
	{ER_OPTION_PREVENTS_STATEMENT, PS_ERRCLASS_PERMISSION}, /* 1290: read_only */
	/* the spec names what is not there */
	{ER_BAD_DB_ERROR, PS_ERRCLASS_INVALID},          /* 1049 */
	/* the target's schema or data refuse the source's */
	{ER_NO_SUCH_TABLE, PS_ERRCLASS_SCHEMA},          /* 1146 */
	{ER_BAD_FIELD_ERROR, PS_ERRCLASS_SCHEMA},        /* 1054 */
	{ER_DUP_ENTRY, PS_ERRCLASS_SCHEMA},              /* 1062 */
	{ER_BAD_NULL_ERROR, PS_ERRCLASS_SCHEMA},         /* 1048 */
	{ER_WARN_DATA_OUT_OF_RANGE, PS_ERRCLASS_SCHEMA}, /* 1264 */
	{ER_DATA_TOO_LONG, PS_ERRCLASS_SCHEMA},          /* 1406 */
	{ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, PS_ERRCLASS_SCHEMA}, /* 1366 */
	{ER_TRUNCATED_WRONG_VALUE, PS_ERRCLASS_SCHEMA},  /* 1292 */
	{ER_ROW_IS_REFERENCED_2, PS_ERRCLASS_SCHEMA},    /* 1451 */
	{ER_NO_REFERENCED_ROW_2, PS_ERRCLASS_SCHEMA},    /* 1452 */
	{ER_TABLE_EXISTS_ERROR, PS_ERRCLASS_SCHEMA},     /* 1050 */
	{ER_WRONG_VALUE_COUNT_ON_ROW, PS_ERRCLASS_SCHEMA}, /* 1136 */
	{ER_CONSTRAINT_FAILED, PS_ERRCLASS_SCHEMA},      /* 4025: CHECK */
	{ER_NOT_SUPPORTED_YET, PS_ERRCLASS_SCHEMA},      /* 1235 */
};

int my_errclass_of(unsigned int my_errno)
{
	for (size_t i = 0; i < sizeof(MY_CODES) / sizeof(MY_CODES[0]); i++)
		if (MY_CODES[i].code == my_errno)
			return MY_CODES[i].cls;
	/* the client library's other codes are about the transport */
	if (my_errno >= 2000 && my_errno < 3000)
		return PS_ERRCLASS_CONNECTION;
	return -1;
}

static bool gone(unsigned int e)
{
	return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == 2055 ||
	       e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
	       e == ER_CONNECTION_KILLED || e == ER_SERVER_SHUTDOWN;
}

int my_error(ps_error *err, MYSQL *conn, const char *what)
{
	unsigned int e = conn ? mysql_errno(conn) : 0;
	char code[16];
	int rc = gone(e) ? PS_ECONNECT : PS_ESERVER;

	ps_error_set(err, rc, "%s: %s", what, conn && *mysql_error(conn) ? mysql_error(conn)
	                                                                   : "unknown error");
	if (e) {
		snprintf(code, sizeof(code), "%u", e);
		ps_error_set_engine(err, MY_CODE_KIND, code, my_errclass_of(e));
	}
	return rc;
}

/* --- connections ------------------------------------------------------------ */

/* What to do about a TLS failure while connecting (MySQL error 2026), from
 * Connector/C's message; "" when there is no advice. A chain that does not
 * lead to ssl_ca fails in the handshake with the TLS library's words; the
 * host name is checked by Connector/C after it, "Validation of SSL server
 * certificate failed". */
static const char *tls_advice(unsigned int e, const char *msg)
{
	if (e != 2026)
		return "";
	if (strstr(msg, "Validation of SSL server certificate failed"))
		return "; the server's certificate does not name the URL's host (ssl_mode=verify_ca and "
		       "verify_full both check the name with this client library): connect by a name "
		       "or address its subjectAltName holds, or have it reissued for this host";
	if (strstr(msg, "self-signed") || strstr(msg, "issuer") || strstr(msg, "verify") ||
	    strstr(msg, "unknown ca") || strstr(msg, "expired"))
		return "; the server's certificate is not signed by a CA penstock trusts: give the CA "
		       "certificate that signed it with ssl_ca=FILE in the URL";
	if (strstr(msg, "not support") || strstr(msg, "SSL is required"))
		return "; the server does not speak TLS: start it with ssl_cert and ssl_key, or lower "
		       "ssl_mode in the URL";
	return "; check the URL's ssl_ca, ssl_cert and ssl_key: PEM files readable by penstock, the "
	       "key unencrypted and private to its owner (chmod 600)";
}

static int set_ssl(MYSQL *m, const ps_url *u, ps_error *err)
{
	const char *mode = ps_url_param_get(u, "ssl_mode");
	const char *ca = ps_url_param_get(u, "ssl_ca");
	const char *cert = ps_url_param_get(u, "ssl_cert");
	const char *key = ps_url_param_get(u, "ssl_key");
	my_bool on = 1, off = 0;

	if (ca)
		mysql_optionsv(m, MYSQL_OPT_SSL_CA, ca);
	if (cert)
		mysql_optionsv(m, MYSQL_OPT_SSL_CERT, cert);
	if (key)
		mysql_optionsv(m, MYSQL_OPT_SSL_KEY, key);
	if (!mode || strcmp(mode, "disable") == 0) {
		mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &off);
		return PS_OK;
	}
	if (strcmp(mode, "require") == 0 || strcmp(mode, "verify_ca") == 0 ||
	    strcmp(mode, "verify_full") == 0) {
		mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
		mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
		               strcmp(mode, "require") == 0 ? &off : &on);
		return PS_OK;
	}
	return ps_error_set(err, PS_EINVAL, "URL parameter ssl_mode '%s' is not one of disable, "
	                    "require, verify_ca, verify_full", mode);
}

int my_connect(MYSQL **out, const ps_url *u, const char *password,
               const my_connect_opts *opts, ps_error *err)
{
	const char *timeout_text = ps_url_param_get(u, "connect_timeout");
	const char *sock = ps_url_param_get(u, "socket");
	unsigned int timeout = 10;
	my_bool infile = opts && opts->local_infile;
	char where[300], *end = NULL;
	unsigned long flags = 0;
	MYSQL *m;
	int rc;

	*out = NULL;
	if (timeout_text) {
		long v = strtol(timeout_text, &end, 10);
		if (!*timeout_text || *end || v < 1 || v > 3600)
			return ps_error_set(err, PS_EINVAL, "URL parameter connect_timeout '%s' is not a "
			                    "number of seconds from 1 to 3600", timeout_text);
		timeout = (unsigned int)v;
	}
	m = mysql_init(NULL);
	if (!m)
		return ps_error_set(err, PS_ENOMEM, "out of memory creating a MySQL connection");
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &infile);
	if (opts && opts->read_timeout)
		mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &opts->read_timeout);
	mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name",
	               opts && opts->program ? opts->program : "penstock");
	rc = set_ssl(m, u, err);
	if (rc != PS_OK) {
		mysql_close(m);
		return rc;
	}
	if (opts && opts->multi_statements)
		flags |= CLIENT_MULTI_STATEMENTS;
	if (opts && opts->found_rows)
		flags |= CLIENT_FOUND_ROWS;
	ps_url_host_port(u, where, sizeof(where));
	if (!mysql_real_connect(m, sock ? NULL : u->host, u->user[0] ? u->user : NULL, password,
	                        u->dbname[0] ? u->dbname : NULL,
	                        (unsigned int)(u->port ? u->port : 3306), sock, flags)) {
		unsigned int e = mysql_errno(m);
		char code[16];

		ps_error_set(err, gone(e) || (e >= 2000 && e < 3000) ? PS_ECONNECT : PS_ESERVER,
		             "cannot connect to MySQL at %s%s%s: %s%s", sock ? sock : where,
		             u->user[0] ? " as " : "", u->user, mysql_error(m),
		             tls_advice(e, mysql_error(m)));
		snprintf(code, sizeof(code), "%u", e);
		ps_error_set_engine(err, MY_CODE_KIND, code, my_errclass_of(e));
		mysql_close(m);
		return err->code;
	}
	rc = my_exec(m, "SET time_zone = '+00:00'", "setting the session's time zone", err);
	if (rc != PS_OK) {
		mysql_close(m);
		return rc;
	}
	*out = m;
	return PS_OK;
}

int my_exec(MYSQL *conn, const char *sql, const char *what, ps_error *err)
{
	MYSQL_RES *res;

	if (mysql_real_query(conn, sql, strlen(sql)) != 0)
		return my_error(err, conn, what);
	/* a statement that returned rows anyway: read and drop them */
	res = mysql_store_result(conn);
	if (res)
		mysql_free_result(res);
	else if (mysql_field_count(conn) != 0)
		return my_error(err, conn, what);
	return PS_OK;
}

int my_query(MYSQL *conn, const char *sql, MYSQL_RES **out, const char *what, ps_error *err)
{
	*out = NULL;
	if (mysql_real_query(conn, sql, strlen(sql)) != 0)
		return my_error(err, conn, what);
	*out = mysql_store_result(conn);
	if (!*out && mysql_field_count(conn) != 0)
		return my_error(err, conn, what);
	if (!*out)
		return ps_error_set(err, PS_EPROTO, "%s: the statement returned no result set", what);
	return PS_OK;
}

int my_query_text(MYSQL *conn, const char *sql, char *buf, size_t len, bool *found,
                  const char *what, ps_error *err)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc = my_query(conn, sql, &res, what, err);

	if (len)
		buf[0] = '\0';
	*found = false;
	if (rc != PS_OK)
		return rc;
	row = mysql_fetch_row(res);
	if (row && row[0]) {
		snprintf(buf, len, "%s", row[0]);
		*found = true;
	}
	mysql_free_result(res);
	return PS_OK;
}

/* --- quoting ---------------------------------------------------------------- */

int my_quote_ident(ps_buf *b, const char *ident)
{
	size_t start = b->len;
	int rc = ps_buf_putc(b, '`');

	for (const char *p = ident; rc == 0 && *p; p++) {
		if (*p == '`')
			rc = ps_buf_putc(b, '`');
		if (rc == 0)
			rc = ps_buf_putc(b, *p);
	}
	if (rc == 0)
		rc = ps_buf_putc(b, '`');
	if (rc != 0) {
		b->len = start;
		if (b->data)
			b->data[start] = '\0';
	}
	return rc;
}

int my_quote_literal(MYSQL *conn, ps_buf *b, const char *text)
{
	size_t n = strlen(text);
	char *tmp = malloc(2 * n + 3);
	int rc;

	if (!tmp)
		return PS_ENOMEM;
	tmp[0] = '\'';
	n = mysql_real_escape_string(conn, tmp + 1, text, (unsigned long)n);
	tmp[n + 1] = '\'';
	tmp[n + 2] = '\0';
	rc = ps_buf_append(b, tmp, n + 2);
	free(tmp);
	return rc;
}
