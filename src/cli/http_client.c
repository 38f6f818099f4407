/*
 * http_client.c — the CLI's calls to the server's REST API (libcurl).
 *
 * One request per call, a bounded reply (64 MiB), the bearer token in a
 * header only (never in a URL, a message or a log line). An https:// server
 * is always verified (its chain against --cacert or the system's CAs, its
 * name against the URL's host); there is no switch to turn that off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/http_client.h"
#include "util/buf.h"

static size_t on_data(char *p, size_t size, size_t n, void *payload)
{
	ps_buf *b = payload;

	return ps_buf_append(b, p, size * n) == PS_OK ? size * n : 0;
}

void ps_http_reply_free(ps_http_reply *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

int ps_http_call(const ps_http_client *c, const char *method, const char *path, const char *body,
                 ps_http_reply *out, ps_error *err)
{
	CURL *h = NULL;
	struct curl_slist *headers = NULL;
	char url[2048], auth[300], cerr[CURL_ERROR_SIZE] = "";
	ps_buf reply;
	json_error_t jerr;
	CURLcode cc;
	int rc = PS_OK;

	memset(out, 0, sizeof(*out));
	ps_buf_init(&reply, 64u << 20);
	snprintf(url, sizeof(url), "%s%s", c->base_url, path);
	h = curl_easy_init();
	if (!h) {
		rc = ps_error_set(err, PS_ENOMEM, "cannot set up an HTTP request");
		goto cleanup;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
	headers = curl_slist_append(headers, auth);
	headers = curl_slist_append(headers, "X-Penstock-Actor: cli");
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_PEER_FAILED_VERIFICATION) {
		rc = ps_error_set(err, PS_ECONNECT, "the penstock server at %s is not trusted: %s; if "
		                  "its certificate is signed by your own CA, pass that CA's certificate "
		                  "with --cacert FILE (or PENSTOCK_CACERT), and use the host name the "
		                  "certificate was made for in --server", c->base_url,
		                  cerr[0] ? cerr : curl_easy_strerror(cc));
		goto cleanup;
	}
	if (cc == CURLE_SSL_CACERT_BADFILE) {
		rc = ps_error_set(err, PS_EINVAL, "--cacert %s: cannot be read as PEM CA certificates: %s",
		                  c->cacert ? c->cacert : "(system)", cerr[0] ? cerr : curl_easy_strerror(cc));
		goto cleanup;
	}
	if (cc == CURLE_SSL_CONNECT_ERROR && strncmp(c->base_url, "https:", 6) == 0) {
		rc = ps_error_set(err, PS_ECONNECT, "no TLS handshake with the penstock server at %s: %s; "
		                  "a server started without --tls-cert speaks plain HTTP: use http://",
		                  c->base_url, cerr[0] ? cerr : curl_easy_strerror(cc));
		goto cleanup;
	}
	if ((cc == CURLE_GOT_NOTHING || cc == CURLE_RECV_ERROR || cc == CURLE_WEIRD_SERVER_REPLY) &&
	    strncmp(c->base_url, "http:", 5) == 0) {
		rc = ps_error_set(err, PS_ECONNECT, "the penstock server at %s gave no HTTP answer (%s); "
		                  "a server started with --tls-cert speaks HTTPS only: use https:// "
		                  "(and --cacert FILE for a private CA)", c->base_url,
		                  cerr[0] ? cerr : curl_easy_strerror(cc));
		goto cleanup;
	}
	if (cc != CURLE_OK) {
		rc = ps_error_set(err, PS_ECONNECT, "cannot reach the penstock server at %s: %s; is "
		                  "`penstock server` running? (--server URL or PENSTOCK_SERVER)",
		                  c->base_url, cerr[0] ? cerr : curl_easy_strerror(cc));
		goto cleanup;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	out->body = ps_buf_detach(&reply);
	if (!out->body)
		out->body = strdup("");
	out->json = json_loads(out->body, 0, &jerr);
cleanup:
	curl_slist_free_all(headers);
	if (h)
		curl_easy_cleanup(h);
	memset(auth, 0, sizeof(auth));
	ps_buf_free(&reply);
	return rc;
}
