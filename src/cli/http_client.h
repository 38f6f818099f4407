/*
 * http_client.h — calls to the server's REST API for `penstock job`.
 */
#ifndef PS_CLI_HTTP_CLIENT_H
#define PS_CLI_HTTP_CLIENT_H

#include <jansson.h>

#include "penstock/error.h"

typedef struct ps_http_client {
	const char *base_url;   /* "http://127.0.0.1:7654" */
	const char *token;      /* bearer token; never printed */
	long timeout_ms;        /* whole request */
	const char *cacert;     /* https: PEM file of the CA(s) to trust instead of the
	                           system's, or NULL */
} ps_http_client;

typedef struct ps_http_reply {
	long status;            /* HTTP status */
	char *body;             /* the body as received (owned) */
	json_t *json;           /* the body parsed, or NULL when not JSON (owned) */
} ps_http_reply;

/* One request; body may be NULL. PS_ECONNECT when the server cannot be
 * reached; any HTTP status is a success here (the caller reads it). */
int ps_http_call(const ps_http_client *c, const char *method, const char *path, const char *body,
                 ps_http_reply *out, ps_error *err);
void ps_http_reply_free(ps_http_reply *r);

#endif
