/*
 * penstock/url.h — the URLs that name sources and targets.
 *
 * Each engine declares the URL syntax of its schemes (ps_url_syntax) and the
 * plugin registry lists them (core/plugin.c); the parser knows three forms
 * and nothing about engines:
 *
 *   server  scheme://[user@][host][:port][/dbname][?param=value&...]
 *           e.g. postgresql:// (also postgres://), mysql://
 *   path    scheme:///absolute/path[?param=value&...], and scheme:- for
 *           standard output where the syntax allows it
 *           e.g. sqlite:///absolute/path.db, jsonl:///dir, jsonl:-
 *   hosts   scheme://host:port[,host:port...]/[?param=value&...]
 *           e.g. kafka://k1:9092,k2:9092/?topic_prefix=...
 *
 * What a plugin needs beyond the form (query parameters it knows, a
 * database name it requires) it checks itself when it opens.
 *
 * A password in the URL (user:password@) is refused: secrets come from
 * password_env / password_file so that they never land in a spec, a log or
 * the API. Percent-escapes are decoded in user, host, dbname, path and query
 * values. The redacted form is safe to print anywhere.
 */
#ifndef PENSTOCK_URL_H
#define PENSTOCK_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/error.h"

typedef enum ps_url_form {
	PS_URL_SERVER = 1,    /* scheme://[user@][host][:port][/dbname][?query] */
	PS_URL_PATH,          /* scheme:///absolute/path[?query], maybe scheme:- */
	PS_URL_HOSTS          /* scheme://host:port[,host:port...]/[?query] */
} ps_url_form;

/* One scheme's syntax, declared by the engine that owns it. An engine's
 * array ends with an entry whose scheme is NULL. */
typedef struct ps_url_syntax {
	const char *scheme;       /* as written, lower case: "postgres" */
	const char *canonical;    /* the name plugins register under: "postgresql" */
	int form;                 /* ps_url_form */
	int default_port;         /* server: the port when none is given, 0: none */
	bool host_required;       /* server: a local socket is not possible */
	bool stdout_ok;           /* path: "scheme:-" means standard output */
	const char *what;         /* path: what the path names ("directory") */
	const char *hint;         /* how to write it, for messages */
} ps_url_syntax;

#define PS_URL_MAX_PARAMS 16

typedef struct ps_url_param {
	char key[64];
	char value[256];
} ps_url_param;

typedef struct ps_url {
	const ps_url_syntax *syntax; /* the scheme's syntax (static; never NULL once parsed) */
	char scheme_name[16];        /* canonical: "postgresql", "mysql", "sqlite", "jsonl", "kafka" */
	char user[128];              /* "" when absent */
	char host[256];              /* "" when absent; IPv6 without brackets; hosts form: the list as written */
	int port;                    /* 0 when absent */
	char dbname[128];            /* "" when absent */
	char path[1024];             /* path form: the path; "" for standard output */
	bool is_stdout;              /* path form: scheme:- */
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

/* "host:port" for messages ("127.0.0.1:5432", "[::1]:5432", "local socket:5432");
 * the path for the path form, the host list for the hosts form. */
void ps_url_host_port(const ps_url *u, char *buf, size_t len);

/* What identifies the endpoint, whoever connects: the server form without
 * the user ("postgresql://db1:5432/app"), else the redacted URL. */
void ps_url_identity(const ps_url *u, char *buf, size_t len);

/* The syntax of a scheme as written (case-insensitive, n bytes), from the
 * plugin registry (core/plugin.c); NULL when no engine declares it. */
const ps_url_syntax *ps_url_syntax_find(const char *scheme, size_t n);
/* "postgresql://, mysql://, sqlite:/// or jsonl://" for messages. */
void ps_url_schemes_list(char *buf, size_t len);

#endif
