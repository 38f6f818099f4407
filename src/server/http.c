/*
 * http.c — the REST API over libmicrohttpd (routes in docs/api.md).
 *
 * NOTES ON THE DESIGN
 *
 *  1. One thread per connection (MHD_USE_THREAD_PER_CONNECTION): a handler
 *     may wait (DELETE waits for the job's pipeline to stop) without holding
 *     up other clients. Handlers only take srv->mu briefly (server.h).
 *  2. Every request needs "Authorization: Bearer <token>", compared in
 *     constant time; a missing or wrong token is 401 before anything else is
 *     looked at, so nothing changes and nothing about jobs leaks.
 *  3. A body is read into a buffer bounded by PS_API_BODY_MAX; a longer one
 *     is drained and answered 413 without being parsed.
 *  4. Errors are {"error": {"code", "message", ...}} with the HTTP status
 *     that fits; the token never appears in any answer or log.
 *  5. The exception to note 2 is the status page's own files (console.h):
 *     they hold no data, and a browser cannot send a bearer token for a
 *     page it navigates to. They go out with a strict Content-Security-
 *     Policy; the page then calls the API with the token the user gives it.
 *  6. The main loop (ps_http_serve) also samples every job's figures into
 *     its history every PS_HISTORY_INTERVAL_MS, and under systemd tells it
 *     READY=1 once the jobs are loaded and WATCHDOG=1 while the job table's
 *     lock can be had (a wedged server stops pinging and is restarted).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "core/version.h"
#include "server/console.h"
#include "server/recover.h"
#include "server/sdnotify.h"
#include "server/server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

typedef struct request {
	ps_buf body;
	bool too_big;
} request;

static enum MHD_Result send_text(struct MHD_Connection *conn, int status, const char *type,
                                 char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"penstock\"");
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, ps_api_result *r)
{
	char *text = r->body ? json_dumps(r->body, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(r->body);
	r->body = NULL;
	if (!text)
		text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
	if (!text)
		return MHD_NO;
	n = strlen(text);
	/* one JSON document per answer, newline-terminated for shells */
	char *nl = realloc(text, n + 2);
	if (nl) {
		text = nl;
		text[n] = '\n';
		text[n + 1] = '\0';
	}
	return send_text(conn, r->status, "application/json", text);
}

/* One file of the status page (note 5); MHD leaves the body out of an
 * answer to HEAD. */
static enum MHD_Result send_asset(struct MHD_Connection *conn, const ps_console_asset *a)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", a->type);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "Content-Security-Policy", PS_CONSOLE_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool token_ok(const char *header, const char *token)
{
	size_t n = strlen(token), m;
	unsigned char diff = 0;

	if (!header || strncmp(header, "Bearer ", 7) != 0)
		return false;
	header += 7;
	m = strlen(header);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(token[i] ^ (i < m ? header[i] : 0));
	return diff == 0 && m == n;
}

/* "api" unless the client says who it is (X-Penstock-Actor: cli), kept to
 * a short plain word for the event history. */
static void actor_of(struct MHD_Connection *conn, char *buf, size_t len)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Penstock-Actor");
	size_t n = 0;

	for (; h && *h && n + 1 < len && n < 32; h++)
		if ((*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') || strchr("-_.@", *h))
			buf[n++] = *h;
	buf[n] = '\0';
	if (!n)
		snprintf(buf, len, "api");
}

/* Action bodies may be empty or {"reason": "..."}; anything else is 400. */
static bool action_body_ok(const ps_buf *body, ps_api_result *r)
{
	json_t *doc;
	const char *key;
	json_t *v;
	bool ok = true;

	if (body->len == 0)
		return true;
	doc = ps_api_body_object(body->data, body->len, "expected a JSON object", r);
	if (!doc)
		return false;
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "reason") == 0 && json_is_string(v))
			continue;
		ps_api_bad_field(r, key, strcmp(key, "reason") == 0 ? "expected a string"
		                                                    : "unknown field; known: reason");
		ok = false;
		break;
	}
	json_decref(doc);
	return ok;
}

static bool parse_int_arg(struct MHD_Connection *conn, const char *name, long long def,
                          long long min, long long max, long long *out, ps_api_result *r)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
	char *end = NULL;
	long long n;

	*out = def;
	if (!v)
		return true;
	n = strtoll(v, &end, 10);
	if (!*v || *end || n < min || n > max) {
		ps_api_error(r, 400, "invalid_request", "query parameter %s: expected an integer from %lld "
		             "to %lld", name, min, max);
		return false;
	}
	*out = n;
	return true;
}

static void method_not_allowed(ps_api_result *r, const char *method, const char *url,
                               const char *allowed)
{
	ps_api_error(r, 405, "method_not_allowed", "%s is not allowed on %s; allowed: %s", method, url,
	             allowed);
}

/* Routes /v1/jobs... (url starts after "/v1/jobs"). */
static void route_jobs(ps_server *srv, struct MHD_Connection *conn, const char *method,
                       const char *full_url, const char *rest, const ps_buf *body, ps_api_result *r)
{
	char id[200], sub[40], actor[40];
	const char *slash;
	int action;

	actor_of(conn, actor, sizeof(actor));
	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		if (strcmp(method, "GET") == 0)
			ps_jobs_list(srv, r);
		else if (strcmp(method, "POST") == 0)
			ps_jobs_create(srv, body->data ? body->data : "", body->len, actor, r);
		else
			method_not_allowed(r, method, full_url, "GET, POST");
		return;
	}
	rest++;   /* past '/' */
	slash = strchr(rest, '/');
	if ((slash ? (size_t)(slash - rest) : strlen(rest)) >= sizeof(id) ||
	    (slash && strlen(slash + 1) >= sizeof(sub))) {
		ps_api_error(r, 404, "not_found", "no such resource: %s", full_url);
		return;
	}
	snprintf(id, sizeof(id), "%.*s", (int)(slash ? (size_t)(slash - rest) : strlen(rest)), rest);
	snprintf(sub, sizeof(sub), "%s", slash ? slash + 1 : "");
	if (!sub[0]) {
		if (strcmp(method, "GET") == 0)
			ps_jobs_get(srv, id, r);
		else if (strcmp(method, "PATCH") == 0)
			ps_jobs_modify(srv, id, body->data ? body->data : "", body->len, actor, r);
		else if (strcmp(method, "DELETE") == 0)
			ps_jobs_delete(srv, id, actor, r);
		else
			method_not_allowed(r, method, full_url, "GET, PATCH, DELETE");
		return;
	}
	if (strcmp(sub, "events") == 0) {
		long long after, limit;
		if (strcmp(method, "GET") != 0)
			method_not_allowed(r, method, full_url, "GET");
		else if (parse_int_arg(conn, "after", 0, 0, INT64_MAX, &after, r) &&
		         parse_int_arg(conn, "limit", 1000, 1, 10000, &limit, r))
			ps_jobs_events(srv, id, after, (int)limit, r);
		return;
	}
	if (strcmp(sub, "compare") == 0) {
		if (strcmp(method, "POST") != 0)
			method_not_allowed(r, method, full_url, "POST");
		else
			ps_jobs_compare(srv, id, body->data ? body->data : "", body->len, actor, r);
		return;
	}
	if (strcmp(sub, "complete") == 0) {
		if (strcmp(method, "POST") != 0)
			method_not_allowed(r, method, full_url, "POST");
		else
			ps_jobs_complete(srv, id, body->data ? body->data : "", body->len, actor, r);
		return;
	}
	if (strcmp(sub, "history") == 0) {
		long long since;
		if (strcmp(method, "GET") != 0)
			method_not_allowed(r, method, full_url, "GET");
		else if (parse_int_arg(conn, "since", 0, 0, INT64_MAX, &since, r))
			ps_jobs_history(srv, id, since, r);
		return;
	}
	if (strcmp(sub, "compares") == 0) {
		long long limit;
		if (strcmp(method, "GET") != 0)
			method_not_allowed(r, method, full_url, "GET");
		else if (parse_int_arg(conn, "limit", 20, 1, 1000, &limit, r))
			ps_jobs_compares(srv, id, (int)limit, r);
		return;
	}
	if (strcmp(sub, "recover") == 0) {
		if (strcmp(method, "POST") != 0)
			method_not_allowed(r, method, full_url, "POST");
		else
			ps_jobs_recover(srv, id, body->data ? body->data : "", body->len, actor, r);
		return;
	}
	action = ps_job_action_parse(sub);
	if (action < 0 || action == PS_ACT_DELETE || action == PS_ACT_MODIFY) {
		ps_api_error(r, 404, "not_found", "no such resource: %s; job actions are check, start, "
		             "pause, resume, stop, recover, complete, compare", full_url);
		return;
	}
	if (strcmp(method, "POST") != 0) {
		method_not_allowed(r, method, full_url, "POST");
		return;
	}
	if (action_body_ok(body, r))
		ps_jobs_action(srv, id, action, actor, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **ctx)
{
	ps_server *srv = cls;
	request *req = *ctx;
	ps_api_result r = {0, NULL};
	const char *auth;

	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		ps_buf_init(&req->body, PS_API_BODY_MAX);
		*ctx = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!req->too_big && ps_buf_append(&req->body, upload_data, *upload_data_size) != PS_OK)
			req->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
		const ps_console_asset *asset = ps_console_find(url);
		if (asset)
			return send_asset(conn, asset);
	}
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!token_ok(auth, srv->token)) {
		ps_api_error(&r, 401, "unauthorized",
		             auth ? "the bearer token is wrong; use the server's token (PENSTOCK_API_TOKEN "
		                    "or the api-token file in its state directory)"
		                  : "missing \"Authorization: Bearer <token>\"; the token is in "
		                    "PENSTOCK_API_TOKEN or the api-token file in the server's state directory");
		return send_json(conn, &r);
	}
	if (req->too_big) {
		ps_api_error(&r, 413, "too_large", "the request body is larger than %u bytes",
		             PS_API_BODY_MAX);
		return send_json(conn, &r);
	}
	if (!atomic_load(&srv->loaded)) {
		/* the port is taken before the jobs are loaded (ps_http_serve): until
		 * then no answer may say a stored job does not exist */
		ps_api_error(&r, 503, "starting", "the server is starting: its jobs are being "
		             "loaded from the state directory; try again in a moment");
		return send_json(conn, &r);
	}
	if (strcmp(url, "/healthz") == 0) {
		int n = 0;
		pthread_mutex_lock(&srv->mu);
		for (ps_job *j = srv->jobs; j; j = j->next)
			n++;
		pthread_mutex_unlock(&srv->mu);
		r.status = 200;
		r.body = json_pack("{s:s, s:s, s:i, s:I}", "status", "ok", "version",
		                   PENSTOCK_VERSION, "jobs", n, "uptime_seconds",
		                   (json_int_t)((ps_time_now_ms() - srv->started_ms) / 1000));
	} else if (strcmp(url, "/readyz") == 0) {
		ps_server_ready(srv, &r);
	} else if (strcmp(url, "/metrics") == 0) {
		char *text = ps_jobs_metrics(srv);
		if (text)
			return send_text(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text);
		ps_api_error(&r, 500, "internal", "out of memory");
	} else if (strncmp(url, "/v1/jobs", 8) == 0 && (url[8] == '\0' || url[8] == '/')) {
		route_jobs(srv, conn, method, url, url + 8, &req->body, &r);
	} else {
		ps_api_error(&r, 404, "not_found", "no such resource: %s; the API is under /v1/jobs, "
		             "plus /healthz, /readyz and /metrics; the status page is at /", url);
	}
	return send_json(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
	request *req = *ctx;

	(void)cls;
	(void)conn;
	(void)toe;
	if (req) {
		ps_buf_free(&req->body);
		free(req);
	}
	*ctx = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	ps_log_warn("http: %s", msg);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, ps_error *err)
{
	const char *colon = strrchr(listen, ':');
	char host[256];
	char *end = NULL;
	long port;
	struct addrinfo hints, *res = NULL;

	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
		return ps_error_set(err, PS_EINVAL, "--listen: expected HOST:PORT, got '%s'", listen);
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 0 || port > 65535)
		return ps_error_set(err, PS_EINVAL, "--listen: port must be 0..65535, got '%s'", colon + 1);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return ps_error_set(err, PS_EINVAL, "--listen: cannot resolve '%s' to an IPv4 address",
		                    host);
	memcpy(sa, res->ai_addr, sizeof(*sa));
	sa->sin_port = htons((uint16_t)port);
	freeaddrinfo(res);
	return PS_OK;
}

/* "STATUS=..." for the service manager: how many jobs, and how many run. */
static void notify_status(ps_server *srv, const char *prefix, const char *addr, unsigned port)
{
	char msg[300];
	int jobs = 0, running = 0, failing = 0;

	pthread_mutex_lock(&srv->mu);
	for (ps_job *j = srv->jobs; j; j = j->next) {
		jobs++;
		running += j->state == PS_JOB_RUNNING || j->state == PS_JOB_READY_TO_COMPLETE;
		failing += j->state == PS_JOB_FAILED || j->state == PS_JOB_FAILED_PERMANENTLY;
	}
	pthread_mutex_unlock(&srv->mu);
	snprintf(msg, sizeof(msg), "%sSTATUS=serving http://%s:%u: %d job%s, %d running, %d failed",
	         prefix, addr, port, jobs, jobs == 1 ? "" : "s", running, failing);
	ps_sd_notify(msg);
}

/* Until *stop: samples the jobs' history and pings the watchdog (note 6). */
static void main_loop(ps_server *srv, atomic_int *stop, const char *addr, unsigned port)
{
	uint64_t watchdog_ns = ps_sd_watchdog_usec() * 1000ull / 2;
	uint64_t last_sample = 0, last_ping = 0;

	ps_jobs_sample(srv);   /* a first point for every job at once */
	last_sample = ps_now_ns();
	notify_status(srv, "READY=1\n", addr, port);
	if (watchdog_ns)
		ps_log_info("systemd watchdog: pinging every %.1f s", (double)watchdog_ns / 1e9);
	while (!atomic_load(stop)) {
		struct timespec ts = {0, 100 * 1000000L};
		uint64_t now;

		nanosleep(&ts, NULL);
		now = ps_now_ns();
		if (now - last_sample >= (uint64_t)PS_HISTORY_INTERVAL_MS * 1000000ull) {
			last_sample = now;
			if (ps_jobs_sample(srv))
				notify_status(srv, "", addr, port);
		}
		if (watchdog_ns && now - last_ping >= watchdog_ns) {
			struct timespec until;

			/* alive means the job table's lock can be had, not only
			 * that this loop turns */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			if (pthread_mutex_timedlock(&srv->mu, &until) == 0) {
				pthread_mutex_unlock(&srv->mu);
				ps_sd_notify("WATCHDOG=1");
				last_ping = now;
			}
		}
	}
}

int ps_http_serve(ps_server *srv, const char *listen, atomic_int *stop, ps_error *err)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	char addr[64];
	int rc;

	rc = parse_listen(listen, &sa, err);
	if (rc != PS_OK)
		return rc;
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                             MHD_USE_ITC | MHD_USE_ERROR_LOG,
	                     0, NULL, NULL, on_request, srv,
	                     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	                     MHD_OPTION_SOCK_ADDR, &sa,
	                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	                     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
	if (!d)
		return ps_error_set(err, PS_EIO, "cannot listen on %s (in use? another penstock server?); "
		                    "pick another address with --listen", listen);
	/* the port is ours: now the jobs that were running may run again */
	rc = ps_webhooks_start(&srv->webhooks, err);
	if (rc == PS_OK)
		rc = ps_server_jobs_load(srv, err);
	if (rc == PS_OK)
		atomic_store(&srv->loaded, 1);
	if (rc != PS_OK) {
		MHD_stop_daemon(d);
		ps_webhooks_stop(srv->webhooks);
		srv->webhooks = NULL;
		return rc;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
	ps_log_info("penstock server listening on http://%s:%u (API under /v1, status page at /, "
	            "state in %s)", addr, info ? (unsigned)info->port : (unsigned)ntohs(sa.sin_port),
	            srv->state_dir);
	main_loop(srv, stop, addr, info ? (unsigned)info->port : (unsigned)ntohs(sa.sin_port));
	ps_log_info("penstock server stopping: letting running jobs drain and checkpoint");
	ps_sd_notify("STOPPING=1\nSTATUS=stopping: running jobs drain and checkpoint");
	MHD_quiesce_daemon(d);
	ps_server_jobs_shutdown(srv);
	MHD_stop_daemon(d);
	ps_webhooks_stop(srv->webhooks);
	srv->webhooks = NULL;
	ps_server_jobs_free(srv);
	return PS_OK;
}
