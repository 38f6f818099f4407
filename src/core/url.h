/*
 * url.h — parsing the URLs that name sources and targets.
 *
 *   postgresql://[user@][host][:port][/dbname][?param=value&...]   (also postgres://)
 *   mysql://[user@]host[:port][/dbname]
 *   sqlite:///absolute/path.db
 *   jsonl:-                      standard output
 *   jsonl:///absolute/dir[?max_file_bytes=N]
 *   kafka://host:port[,host:port...]/[?topic_prefix=...]
 *
 * A password in the URL (user:password@) is refused: secrets come from
 * password_env / password_file so that they never land in a spec, a log or
 * the API. Percent-escapes are decoded in user, host, dbname, path and query
 * values. The redacted form is safe to print anywhere.
 */
#ifndef PS_CORE_URL_H
#define PS_CORE_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/error.h"

typedef enum ps_url_scheme {
	PS_URL_POSTGRESQL = 1,
	PS_URL_MYSQL,
	PS_URL_SQLITE,
	PS_URL_JSONL,
	PS_URL_KAFKA
} ps_url_scheme;

#define PS_URL_MAX_PARAMS 16

typedef struct ps_url_param {
	char key[64];
	char value[256];
} ps_url_param;

typedef struct ps_url {
	int scheme;                  /* ps_url_scheme */
	char scheme_name[16];        /* canonical: "postgresql", "mysql", "sqlite", "jsonl", "kafka" */
	char user[128];              /* "" when absent */
	char host[256];              /* "" when absent; IPv6 without brackets; kafka: host list as written */
	int port;                    /* 0 when absent */
	char dbname[128];            /* "" when absent */
	char path[1024];             /* sqlite/jsonl path; "" for jsonl stdout */
	bool is_stdout;              /* jsonl:- */
	int nparams;
	ps_url_param params[PS_URL_MAX_PARAMS];
	char redacted[1536];         /* printable form, no secrets */
} ps_url;

/*
 * Parses text into *out. On error returns PS_EINVAL with a message that says
 * what is wrong and how to write it instead (e.g. "port '99999' is not a
 * number from 1 to 65535", "put the password in password_env or
 * password_file, not in the URL"). The message never repeats a password.
 */
int ps_url_parse(ps_url *out, const char *text, ps_error *err);

/* The value of query parameter key, or NULL. */
const char *ps_url_param_get(const ps_url *u, const char *key);

/* "host:port" for messages ("127.0.0.1:5432", "[::1]:5432", "local socket:5432"). */
void ps_url_host_port(const ps_url *u, char *buf, size_t len);

#endif
