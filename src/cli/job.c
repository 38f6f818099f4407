/*
 * job.c — `penstock job ACTION`: the CLI client of the server's REST API.
 *
 * Readable tables by default; --json prints the API's own JSON. Exit status
 * (cli.h): 0 done; 1 the server cannot be reached or failed (5xx); 2 bad
 * usage or input, unknown job, missing or wrong token (4xx); 4 the job's
 * prechecks failed (check, start --wait); 5 the job's state does not allow
 * the action (409, nothing changed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/clock.h"
#include "cli/http_client.h"
#include "core/checkpoint.h"
#include "server/server.h"
#include "util/buf.h"

typedef struct job_opts {
	ps_http_client http;
	char token[128];
	bool json;
	bool wait;
	double timeout_s;
	long long after;
	const char *action;
	const char *arg;        /* job id/name, or the spec file for create */
	json_t *compare;        /* compare: the request body */
	const char *complete_compare;   /* complete --compare [MODE]: the mode, or NULL */
	bool timeout_given;
	const char *strategy;   /* recover --strategy */
	const char *position;   /* recover --position */
} job_opts;

static void usage(FILE *f)
{
	fputs("usage: penstock job ACTION [ARG] [options]\n"
	      "\n"
	      "actions:\n"
	      "  create SPEC.json     define a job (state created)\n"
	      "  list                 every job: name, state, phase, health, lag\n"
	      "  show JOB             one job on one screen: state, positions, lag, tables, last error\n"
	      "  check JOB            run the prechecks and print them (waits for the result)\n"
	      "  start JOB            start (runs the prechecks first unless they passed)\n"
	      "  pause JOB            stop reading, apply what was read, checkpoint; the source\n"
	      "                       keeps what follows (its slot, binlog)\n"
	      "  resume JOB           continue a paused job from its checkpoint\n"
	      "  stop JOB             drain, then release what the job holds on the source (slot,\n"
	      "                       publication); only a fresh start remains\n"
	      "  complete JOB         a migration's cutover: fence at the source's current position,\n"
	      "                       apply up to it, sync sequences, release what the job holds on\n"
	      "                       the source and its checkpoint; --compare [count|full|sample]\n"
	      "                       compares first\n"
	      "  delete JOB           remove the job, what it holds on the source and its checkpoint\n"
	      "                       (never target data)\n"
	      "  events JOB           the job's history: transitions with time, actor and reason\n"
	      "  recover JOB --strategy retry|skip|resync\n"
	      "                       a failed_permanently job: run again from the checkpoint (retry),\n"
	      "                       continue from --position P or the log's end, recording the gap\n"
	      "                       (skip), or a new log reader and snapshot of all or --tables T,...\n"
	      "                       (resync)\n"
	      "  compare JOB          compare the job's target with its source (docs/compare.md);\n"
	      "                       --mode count|full|sample, --tables P,..., --sample-percent N,\n"
	      "                       --chunk-rows N, --max-report N, --repair; stored in the job store\n"
	      "\n"
	      "JOB is a job's name or id. Options:\n"
	      "  --server URL         the server (default $PENSTOCK_SERVER, else http://127.0.0.1:7654)\n"
	      "  --state-dir DIR      where the server's api-token file is (when PENSTOCK_API_TOKEN is unset)\n"
	      "  --cacert FILE        https:// servers: trust the CA certificate(s) in FILE (PEM) instead\n"
	      "                       of the system's (default $PENSTOCK_CACERT)\n"
	      "  --json               print the API's JSON\n"
	      "  --wait               start/pause/resume/stop/recover/complete: wait until the job settles\n"
	      "  --timeout SECONDS    for --wait and check (default 120)\n"
	      "  --after SEQ          events: only those after this sequence number\n"
	      "\n"
	      "exit status: 0 ok, 1 server unreachable or failed, 2 bad input or unknown job,\n"
	      "             4 prechecks failed, 5 the job's state does not allow the action,\n"
	      "             6 compare found differences (not all repaired)\n",
	      f);
}

static void print_error_reply(const ps_http_reply *r)
{
	json_t *e = json_object_get(r->json, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));

	fprintf(stderr, "penstock: error: %s\n", msg ? msg : (r->body && r->body[0] ? r->body : "no answer"));
}

static int exit_for_status(long status)
{
	if (status >= 200 && status < 300)
		return PS_EXIT_OK;
	if (status == 409)
		return PS_EXIT_REFUSED;
	if (status >= 400 && status < 500)
		return PS_EXIT_USAGE;
	return PS_EXIT_FAILURE;
}

/* ==== formatting ========================================================== */

static const char *str(json_t *o, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : def;
}

static void human_bytes(char *buf, size_t len, double b)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static void print_list(json_t *reply)
{
	json_t *jobs = json_object_get(reply, "jobs"), *j;
	size_t i;

	if (json_array_size(jobs) == 0) {
		printf("no jobs; create one with `penstock job create SPEC.json`\n");
		return;
	}
	printf("%-24s %-18s %-9s %-18s %-10s %-23s %10s  %s\n", "NAME", "ID", "TYPE", "STATE", "PHASE",
	       "HEALTH", "LAG", "APPLIED");
	json_array_foreach(jobs, i, j) {
		json_t *lag = json_object_get(j, "lag");
		char lagbuf[32];

		snprintf(lagbuf, sizeof(lagbuf), "%.1f s", json_number_value(json_object_get(lag, "seconds")));
		printf("%-24s %-18s %-9s %-18s %-10s %-23s %10s  %s\n", str(j, "name", "?"),
		       str(j, "id", "?"), str(j, "type", "?"), str(j, "state", "?"),
		       str(j, "phase", "-"), str(j, "health", "?"), lagbuf,
		       str(json_object_get(j, "positions"), "applied", "-"));
	}
}

static void print_checks(json_t *checks, bool only_failed)
{
	json_t *items = json_object_get(checks, "items"), *it;
	size_t i;

	json_array_foreach(items, i, it) {
		const char *result = str(it, "result", "?"), *fix = str(it, "fix", NULL);
		if (only_failed && strcmp(result, "failed") != 0)
			continue;
		printf("  %-7s %-7s %-30s %s\n", result, str(it, "level", "?"), str(it, "id", "?"),
		       str(it, "message", ""));
		if (fix && strcmp(result, "failed") == 0)
			printf("  %-7s %-7s %-30s fix: %s\n", "", "", "", fix);
	}
}

/* The target's own figures (sink.h figures), named as the sink names
 * them, a few to a line. */
static void print_target_figures(json_t *figures)
{
	const char *name;
	json_t *f;
	int n = 0;

	json_object_foreach(figures, name, f) {
		const char *unit = str(f, "unit", "");
		double v = json_number_value(json_object_get(f, "value"));
		char value[48];

		if (strcmp(unit, "bytes") == 0)
			human_bytes(value, sizeof(value), v);
		else if (v == (double)(long long)v)
			snprintf(value, sizeof(value), "%lld%s%s", (long long)v, unit[0] ? " " : "", unit);
		else
			snprintf(value, sizeof(value), "%.1f%s%s", v, unit[0] ? " " : "", unit);
		printf("%s%s %s", n == 0 ? "  target      " : n % 3 == 0 ? ",\n              " : ", ",
		       name, value);
		n++;
	}
	if (n)
		printf("\n");
}

/* What the source says of the log it keeps, when it says anything beyond
 * the figure of the lag line: its limit, what may still be written, its
 * word for the reader's state. */
static void print_retention(json_t *r)
{
	json_t *limit = json_object_get(r, "limit_bytes"), *safe = json_object_get(r, "safe_bytes");
	char a[32] = "none", b[32] = "no limit";

	if (!json_is_string(json_object_get(r, "status")) && !json_is_number(limit))
		return;
	if (json_is_number(limit))
		human_bytes(a, sizeof(a), json_number_value(limit));
	if (json_is_number(safe))
		human_bytes(b, sizeof(b), json_number_value(safe));
	printf("  retention   limit %s, %s more may be written before the log reader is at risk; "
	       "status %s\n", a, b, str(r, "status", "?"));
}

/* ", 2,500 rows/s, ETA 0:42" for a table being copied. */
static void table_rate(char *buf, size_t len, json_t *t)
{
	double rate = json_number_value(json_object_get(t, "rows_per_sec"));
	json_t *eta = json_object_get(t, "eta_seconds");

	buf[0] = '\0';
	if (json_is_true(json_object_get(t, "finished")) || rate <= 0)
		return;
	if (json_is_number(eta)) {
		long long e = (long long)(json_number_value(eta) + 0.5);
		snprintf(buf, len, "%.0f rows/s, ETA %lld:%02lld", rate, e / 60, e % 60);
	} else {
		snprintf(buf, len, "%.0f rows/s", rate);
	}
}

/* Warnings that did not block the job but say something the user should
 * know (e.g. source.keyless: tables captured insert-only). */
static void print_warnings(json_t *checks)
{
	json_t *items = json_object_get(checks, "items"), *it;
	size_t i;

	json_array_foreach(items, i, it) {
		if (strcmp(str(it, "result", "?"), "failed") != 0 ||
		    strcmp(str(it, "level", "?"), "warning") != 0)
			continue;
		printf("  warning     %s: %s\n", str(it, "id", "?"), str(it, "message", ""));
	}
}

static void print_show(json_t *j)
{
	json_t *pos = json_object_get(j, "positions"), *lag = json_object_get(j, "lag");
	json_t *rates = json_object_get(j, "rates"), *counters = json_object_get(j, "counters");
	json_t *tables = json_object_get(j, "tables"), *err = json_object_get(j, "last_error");
	json_t *checks = json_object_get(j, "checks"), *retry = json_object_get(j, "retry");
	json_t *allowed = json_object_get(j, "allowed_actions"), *t, *a;
	json_t *limits = json_object_get(j, "limits");
	char retained[32], lagbytes[32];
	size_t i;

	printf("job %s (%s), type %s\n", str(j, "name", "?"), str(j, "id", "?"), str(j, "type", "?"));
	printf("  state       %s%s%s, health %s\n", str(j, "state", "?"),
	       json_is_string(json_object_get(j, "phase")) ? ", phase " : "", str(j, "phase", ""),
	       str(j, "health", "?"));
	printf("  CDC marker  %s\n", str(j, "cdc_state", "-"));
	printf("  positions   read %s, applied %s, acknowledged %s (source end %s)\n",
	       str(pos, "read", "-"), str(pos, "applied", "-"), str(pos, "acknowledged", "-"),
	       str(pos, "source_end", "-"));
	if (json_is_number(json_object_get(lag, "bytes")))
		human_bytes(lagbytes, sizeof(lagbytes), json_number_value(json_object_get(lag, "bytes")));
	else
		snprintf(lagbytes, sizeof(lagbytes), "? bytes");
	if (json_is_number(json_object_get(j, "retained_bytes")))
		human_bytes(retained, sizeof(retained), json_number_value(json_object_get(j, "retained_bytes")));
	else
		snprintf(retained, sizeof(retained), "?");
	printf("  lag         %.1f s, %s behind; %s retains %s of log\n",
	       json_number_value(json_object_get(lag, "seconds")), lagbytes,
	       str(j, "log_reader", "the log reader"),
	       retained);
	print_retention(json_object_get(j, "retention"));
	printf("  rates       %.0f changes/s; %.0f changes in %.0f transactions applied this run\n",
	       json_number_value(json_object_get(rates, "changes_per_sec")),
	       json_number_value(json_object_get(counters, "changes_applied")),
	       json_number_value(json_object_get(counters, "txns_applied")));
	print_target_figures(json_object_get(j, "target_figures"));
	if (json_is_object(limits)) {
		char rows[40] = "unlimited", bytes[40] = "unlimited bytes";
		long long rr = json_integer_value(json_object_get(limits, "rows_per_sec"));
		long long br = json_integer_value(json_object_get(limits, "bytes_per_sec"));

		if (rr > 0)
			snprintf(rows, sizeof(rows), "%lld", rr);
		if (br > 0)
			human_bytes(bytes, sizeof(bytes), (double)br);
		printf("  limits      %s changes/s, %s/s, %lld copy workers\n", rows, bytes,
		       (long long)json_integer_value(json_object_get(limits, "parallel")));
	}
	if (json_array_size(tables)) {
		printf("  snapshot    %-40s %23s %11s\n", "table", "rows copied/estimated", "units");
		json_array_foreach(tables, i, t) {
			char name[200], rows[64], units[32];
			snprintf(name, sizeof(name), "%s.%s", str(t, "schema", "?"), str(t, "name", "?"));
			if (json_number_value(json_object_get(t, "rows_estimated")) >= 0)
				snprintf(rows, sizeof(rows), "%.0f/%.0f",
				         json_number_value(json_object_get(t, "rows_copied")),
				         json_number_value(json_object_get(t, "rows_estimated")));
			else   /* the source has no statistics for the table yet */
				snprintf(rows, sizeof(rows), "%.0f/?",
				         json_number_value(json_object_get(t, "rows_copied")));
			snprintf(units, sizeof(units), "%.0f/%.0f",
			         json_number_value(json_object_get(t, "units_done")),
			         json_number_value(json_object_get(t, "units_total")));
			char speed[64];
			table_rate(speed, sizeof(speed), t);
			printf("              %-40s %23s %11s %s%s\n", name, rows, units,
			       json_is_true(json_object_get(t, "finished")) ? "done" : speed,
			       json_is_true(json_object_get(t, "insert_only"))
			       ? "  insert-only: updates and deletes not captured" : "");
		}
	}
	if (json_integer_value(json_object_get(retry, "attempts")) > 0) {
		long long max = json_integer_value(json_object_get(retry, "max_attempts"));
		printf("  retries     %lld failed run%s", (long long)json_integer_value(json_object_get(retry, "attempts")),
		       json_integer_value(json_object_get(retry, "attempts")) == 1 ? "" : "s");
		if (max > 0)
			printf(" (at most %lld retries)", max);
		printf("; next retry at %s\n", str(retry, "next_at", "-"));
	}
	if (json_is_object(err)) {
		printf("  last error  %s (%s, %s)\n", str(err, "message", "?"), str(err, "code", "?"),
		       str(err, "at", "?"));
		printf("  what to do  %s\n", str(err, "hint", "-"));
	} else {
		printf("  last error  none\n");
	}
	if (json_is_object(checks)) {
		bool passed = json_is_true(json_object_get(checks, "passed"));
		printf("  prechecks   %s\n", passed ? "passed" : "FAILED:");
		if (!passed)
			print_checks(checks, true);
		else
			print_warnings(checks);
	}
	if (json_is_object(json_object_get(j, "last_compare"))) {
		json_t *c = json_object_get(j, "last_compare");
		printf("  compare     %s compare at %s: %s\n", str(c, "mode", "?"), str(c, "at", "?"),
		       json_is_true(json_object_get(c, "consistent")) ? "consistent" : "DIFFERENT");
	}
	printf("  actions     ");
	json_array_foreach(allowed, i, a)
		printf("%s%s", i ? ", " : "", json_string_value(a));
	printf("\n");
}

static void print_events(json_t *reply)
{
	json_t *events = json_object_get(reply, "events"), *e;
	size_t i;

	printf("%6s  %-24s %-7s %-11s %-36s %s\n", "SEQ", "AT", "ACTOR", "KIND", "TRANSITION", "REASON");
	json_array_foreach(events, i, e) {
		char tr[80] = "";
		if (json_is_string(json_object_get(e, "to")))
			snprintf(tr, sizeof(tr), "%s -> %s", str(e, "from", "(new)"), str(e, "to", "?"));
		printf("%6lld  %-24s %-7s %-11s %-36s %s\n",
		       (long long)json_integer_value(json_object_get(e, "seq")), str(e, "at", "?"),
		       str(e, "actor", "?"), str(e, "kind", "?"), tr, str(e, "reason", ""));
	}
}

static void print_compare(json_t *reply)
{
	json_t *c = json_object_get(reply, "compare"), *tables = json_object_get(c, "tables"), *t;
	size_t i;

	json_array_foreach(tables, i, t) {
		json_t *diffs = json_object_get(t, "differences"), *d, *repair = json_object_get(t, "repair");
		size_t k;

		printf("%s: %s (source rows %lld, target rows %lld, %lld of %lld chunks checked)\n",
		       str(t, "table", "?"), json_is_true(json_object_get(t, "equal")) ? "equal" : "DIFFERENT",
		       (long long)json_integer_value(json_object_get(t, "source_rows")),
		       (long long)json_integer_value(json_object_get(t, "target_rows")),
		       (long long)json_integer_value(json_object_get(t, "chunks_checked")),
		       (long long)json_integer_value(json_object_get(t, "chunks")));
		if (json_is_string(json_object_get(t, "note")))
			printf("  note: %s\n", str(t, "note", ""));
		if (json_array_size(diffs))
			printf("  missing_in_target %lld, extra_in_target %lld, different %lld\n",
			       (long long)json_integer_value(json_object_get(t, "missing_in_target")),
			       (long long)json_integer_value(json_object_get(t, "extra_in_target")),
			       (long long)json_integer_value(json_object_get(t, "different")));
		json_array_foreach(diffs, k, d) {
			char *key = json_dumps(json_object_get(d, "key"), JSON_COMPACT | JSON_PRESERVE_ORDER);
			char *cols = json_dumps(json_object_get(d, "columns"), JSON_COMPACT);
			printf("  %-17s %s%s%s\n", str(d, "kind", "?"), key ? key : "?",
			       cols ? " columns " : "", cols ? cols : "");
			free(key);
			free(cols);
		}
		if (json_is_object(repair))
			printf("  repair: %lld rows written, %lld deleted, %lld remaining\n",
			       (long long)json_integer_value(json_object_get(repair, "rows_written")),
			       (long long)json_integer_value(json_object_get(repair, "rows_deleted")),
			       (long long)json_integer_value(json_object_get(repair, "remaining")));
	}
	printf("%s in %.1f s (result %lld in the job store)\n",
	       json_is_true(json_object_get(c, "equal")) ? "equal"
	       : json_is_true(json_object_get(c, "consistent")) ? "differences repaired" : "DIFFERENT",
	       json_number_value(json_object_get(c, "seconds")),
	       (long long)json_integer_value(json_object_get(reply, "seq")));
}

/* ==== actions ============================================================== */

static int call(job_opts *o, const char *method, const char *path, const char *body,
                ps_http_reply *r)
{
	ps_error err;

	ps_error_clear(&err);
	if (ps_http_call(&o->http, method, path, body, r, &err) != PS_OK) {
		ps_cli_report(&err);
		return PS_EXIT_FAILURE;
	}
	if (r->status >= 300) {
		print_error_reply(r);
		return exit_for_status(r->status);
	}
	if (!r->json) {
		fprintf(stderr, "penstock: error: the server answered %ld with something that is not JSON\n",
		        r->status);
		return PS_EXIT_FAILURE;
	}
	return PS_EXIT_OK;
}

static bool settling(const char *state)
{
	return strcmp(state, "checking") == 0 || strcmp(state, "starting") == 0 ||
	       strcmp(state, "draining") == 0 || strcmp(state, "stopping") == 0 ||
	       strcmp(state, "completing") == 0;
}

/* Polls the job until it leaves the transitional states (or the timeout);
 * leaves the last reply in r. */
static int wait_settled(job_opts *o, const char *path, ps_http_reply *r)
{
	struct timespec pause = {0, 200 * 1000000L};
	uint64_t start = ps_now_ns();
	int rc;

	for (;;) {
		if (!settling(str(r->json, "state", "?")))
			return PS_EXIT_OK;
		if ((double)(ps_now_ns() - start) / 1e9 > o->timeout_s) {
			fprintf(stderr, "penstock: error: job is still %s after %.0f s (--timeout)\n",
			        str(r->json, "state", "?"), o->timeout_s);
			return PS_EXIT_FAILURE;
		}
		nanosleep(&pause, NULL);
		ps_http_reply_free(r);
		rc = call(o, "GET", path, NULL, r);
		if (rc != PS_EXIT_OK)
			return rc;
	}
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	ps_buf b;
	char chunk[8192];
	size_t n;

	if (!f)
		return NULL;
	ps_buf_init(&b, PS_API_BODY_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (ps_buf_append(&b, chunk, n) != PS_OK) {
			ps_buf_free(&b);
			fclose(f);
			return NULL;
		}
	fclose(f);
	return b.data ? ps_buf_detach(&b) : strdup("");
}

static void url_escape(char *out, size_t len, const char *in)
{
	size_t n = 0;

	for (; *in && n + 4 < len; in++) {
		unsigned char ch = (unsigned char)*in;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    strchr("-_.~", ch))
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, len - n, "%%%02X", ch);
	}
	out[n] = '\0';
}

/* recover: the body from --strategy, --position and --tables; the server
 * checks it (a missing strategy is its 400, naming the field). */
static int run_recover(job_opts *o, const char *path, ps_http_reply *r)
{
	json_t *body = json_object();
	json_t *tables = json_object_get(o->compare, "tables");
	char act[800], *text;
	int rc;

	if (o->strategy)
		json_object_set_new(body, "strategy", json_string(o->strategy));
	if (o->position)
		json_object_set_new(body, "position", json_string(o->position));
	if (tables)
		json_object_set(body, "tables", tables);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	snprintf(act, sizeof(act), "%s/recover", path);
	rc = call(o, "POST", act, text, r);
	free(text);
	if (rc == PS_EXIT_OK && o->wait)
		rc = wait_settled(o, path, r);
	if (rc == PS_EXIT_OK && !o->json)
		printf("job %s is %s (recover %s)\n", str(r->json, "name", "?"), str(r->json, "state", "?"),
		       o->strategy);
	if (rc == PS_EXIT_OK && o->wait && strncmp(str(r->json, "state", ""), "failed", 6) == 0) {
		if (!o->json)
			fprintf(stderr, "penstock: error: %s\n",
			        str(json_object_get(r->json, "last_error"), "message", "the job failed"));
		rc = PS_EXIT_FAILURE;
	}
	return rc;
}

static int run_action(job_opts *o)
{
	ps_http_reply r;
	char path[700], id[600];
	int rc = PS_EXIT_OK;

	memset(&r, 0, sizeof(r));
	if (strcmp(o->action, "list") == 0) {
		rc = call(o, "GET", "/v1/jobs", NULL, &r);
		if (rc == PS_EXIT_OK && !o->json)
			print_list(r.json);
		goto print;
	}
	if (!o->arg) {
		fprintf(stderr, "penstock: error: job %s: missing %s\n", o->action,
		        strcmp(o->action, "create") == 0 ? "the spec file" : "the job (name or id)");
		return PS_EXIT_USAGE;
	}
	if (strcmp(o->action, "create") == 0) {
		char *spec = read_file(o->arg);
		if (!spec) {
			fprintf(stderr, "penstock: error: job create: cannot read %s (or it is larger than 1 MiB)\n",
			        o->arg);
			return PS_EXIT_USAGE;
		}
		rc = call(o, "POST", "/v1/jobs", spec, &r);
		free(spec);
		if (rc == PS_EXIT_OK && !o->json)
			printf("created job %s (%s), state %s; next: penstock job start %s\n",
			       str(r.json, "name", "?"), str(r.json, "id", "?"), str(r.json, "state", "?"),
			       str(r.json, "name", "?"));
		goto print;
	}
	url_escape(id, sizeof(id), o->arg);
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	if (strcmp(o->action, "show") == 0) {
		rc = call(o, "GET", path, NULL, &r);
		if (rc == PS_EXIT_OK && !o->json)
			print_show(r.json);
	} else if (strcmp(o->action, "delete") == 0) {
		rc = call(o, "DELETE", path, NULL, &r);
		if (rc == PS_EXIT_OK && !o->json) {
			printf("deleted job %s: %s; target data %s\n", str(r.json, "name", "?"),
			       str(r.json, "removed", "?"), str(r.json, "target_data", "?"));
			if (json_is_string(json_object_get(r.json, "warning")))
				printf("warning: %s\n", str(r.json, "warning", ""));
		}
	} else if (strcmp(o->action, "compare") == 0) {
		char act[800], *body = json_dumps(o->compare, JSON_COMPACT);
		snprintf(act, sizeof(act), "%s/compare", path);
		rc = call(o, "POST", act, body, &r);
		free(body);
		if (rc == PS_EXIT_OK && !o->json)
			print_compare(r.json);
		if (rc == PS_EXIT_OK &&
		    !json_is_true(json_object_get(json_object_get(r.json, "compare"), "consistent")))
			rc = PS_EXIT_DIFFERENT;
	} else if (strcmp(o->action, "complete") == 0) {
		char act[800], body[64] = "";

		snprintf(act, sizeof(act), "%s/complete", path);
		if (o->complete_compare)
			snprintf(body, sizeof(body), "{\"compare\": \"%s\"}", o->complete_compare);
		rc = call(o, "POST", act, body[0] ? body : NULL, &r);
		if (rc == PS_EXIT_OK && o->wait)
			rc = wait_settled(o, path, &r);
		if (rc == PS_EXIT_OK && !o->json)
			printf("job %s is %s\n", str(r.json, "name", "?"), str(r.json, "state", "?"));
		if (rc == PS_EXIT_OK && o->wait && strcmp(str(r.json, "state", ""), "completed") != 0) {
			if (!o->json)
				fprintf(stderr, "penstock: error: %s\n",
				        str(json_object_get(r.json, "last_error"), "message", "the cutover failed"));
			rc = PS_EXIT_FAILURE;
		}
	} else if (strcmp(o->action, "recover") == 0) {
		rc = run_recover(o, path, &r);
	} else if (strcmp(o->action, "events") == 0) {
		char q[800];
		snprintf(q, sizeof(q), "%s/events?after=%lld", path, o->after);
		rc = call(o, "GET", q, NULL, &r);
		if (rc == PS_EXIT_OK && !o->json)
			print_events(r.json);
	} else if (strcmp(o->action, "check") == 0 || strcmp(o->action, "start") == 0 ||
	           strcmp(o->action, "pause") == 0 || strcmp(o->action, "resume") == 0 ||
	           strcmp(o->action, "stop") == 0) {
		char act[800];
		bool is_check = strcmp(o->action, "check") == 0;

		snprintf(act, sizeof(act), "%s/%s", path, o->action);
		rc = call(o, "POST", act, NULL, &r);
		if (rc == PS_EXIT_OK && (o->wait || is_check))
			rc = wait_settled(o, path, &r);
		if (rc == PS_EXIT_OK && !o->json) {
			printf("job %s is %s\n", str(r.json, "name", "?"), str(r.json, "state", "?"));
			if (is_check && json_is_object(json_object_get(r.json, "checks")))
				print_checks(json_object_get(r.json, "checks"), false);
		}
		if (rc == PS_EXIT_OK && strcmp(str(r.json, "state", ""), "check_failed") == 0) {
			if (!is_check && !o->json)
				print_checks(json_object_get(r.json, "checks"), true);
			rc = PS_EXIT_CHECK_FAILED;
		} else if (rc == PS_EXIT_OK && o->wait &&
		           strncmp(str(r.json, "state", ""), "failed", 6) == 0) {
			if (!o->json)
				fprintf(stderr, "penstock: error: %s\n",
				        str(json_object_get(r.json, "last_error"), "message", "the job failed"));
			rc = PS_EXIT_FAILURE;
		}
	} else {
		fprintf(stderr, "penstock: error: job: unknown action '%s'\n", o->action);
		usage(stderr);
		return PS_EXIT_USAGE;
	}
print:
	if (o->json && r.body && r.body[0])
		fputs(r.body, stdout);
	ps_http_reply_free(&r);
	return rc;
}

int ps_cli_job(int argc, char **argv)
{
	job_opts o;
	const char *state_opt = NULL, *server = getenv("PENSTOCK_SERVER"), *cacert = NULL;
	char state_dir[1024], *end;
	ps_error err;
	int rc = PS_EXIT_OK;

	memset(&o, 0, sizeof(o));
	o.timeout_s = 120;
	o.compare = json_object();
	ps_error_clear(&err);
	for (int i = 1; i < argc; i++) {
		int c = ps_cli_common_option(argc, argv, &i);
		if (c < 0) {
			rc = PS_EXIT_USAGE;
			goto out;
		}
		if (c > 0)
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			rc = PS_EXIT_OK;
			goto out;
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
		} else if (strcmp(argv[i], "--wait") == 0) {
			o.wait = true;
		} else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
			server = argv[++i];
		} else if (strcmp(argv[i], "--state-dir") == 0 && i + 1 < argc) {
			state_opt = argv[++i];
		} else if (strcmp(argv[i], "--cacert") == 0 && i + 1 < argc) {
			cacert = argv[++i];
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			o.timeout_given = true;
			o.timeout_s = strtod(argv[++i], &end);
			if (*end || o.timeout_s <= 0) {
				fprintf(stderr, "penstock: error: --timeout: expected seconds > 0, got '%s'\n", argv[i]);
				rc = PS_EXIT_USAGE;
				goto out;
			}
		} else if (strcmp(argv[i], "--compare") == 0) {
			o.complete_compare = "full";
			if (i + 1 < argc && (strcmp(argv[i + 1], "count") == 0 || strcmp(argv[i + 1], "full") == 0 ||
			                     strcmp(argv[i + 1], "sample") == 0))
				o.complete_compare = argv[++i];
		} else if (strcmp(argv[i], "--strategy") == 0 && i + 1 < argc) {
			o.strategy = argv[++i];
		} else if (strcmp(argv[i], "--position") == 0 && i + 1 < argc) {
			o.position = argv[++i];
		} else if (strcmp(argv[i], "--repair") == 0) {
			json_object_set_new(o.compare, "repair", json_true());
		} else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			json_object_set_new(o.compare, "mode", json_string(argv[++i]));
		} else if (strcmp(argv[i], "--tables") == 0 && i + 1 < argc) {
			json_t *list = json_array();
			const char *p = argv[++i];
			while (*p) {
				size_t n = strcspn(p, ",");
				if (n)
					json_array_append_new(list, json_stringn(p, n));
				p += n + (p[n] == ',');
			}
			json_object_set_new(o.compare, "tables", list);
		} else if ((strcmp(argv[i], "--sample-percent") == 0 || strcmp(argv[i], "--chunk-rows") == 0 ||
		            strcmp(argv[i], "--max-report") == 0) && i + 1 < argc) {
			char field[32];
			long long n = strtoll(argv[i + 1], &end, 10);
			snprintf(field, sizeof(field), "%s", argv[i] + 2);
			for (char *ch = field; *ch; ch++)
				if (*ch == '-')
					*ch = '_';
			if (!argv[i + 1][0] || *end) {
				fprintf(stderr, "penstock: error: %s: expected an integer, got '%s'\n", argv[i],
				        argv[i + 1]);
				rc = PS_EXIT_USAGE;
				goto out;
			}
			json_object_set_new(o.compare, field, json_integer(n));
			i++;
		} else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
			o.after = strtoll(argv[++i], &end, 10);
			if (*end || o.after < 0) {
				fprintf(stderr, "penstock: error: --after: expected a sequence number, got '%s'\n",
				        argv[i]);
				rc = PS_EXIT_USAGE;
				goto out;
			}
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "penstock: error: job: unknown option '%s'\n", argv[i]);
			usage(stderr);
			rc = PS_EXIT_USAGE;
			goto out;
		} else if (!o.action) {
			o.action = argv[i];
		} else if (!o.arg) {
			o.arg = argv[i];
		} else {
			fprintf(stderr, "penstock: error: job %s: unexpected argument '%s'\n", o.action, argv[i]);
			rc = PS_EXIT_USAGE;
			goto out;
		}
	}
	if (!o.action) {
		usage(stderr);
		rc = PS_EXIT_USAGE;
		goto out;
	}
	rc = ps_state_dir_resolve(state_dir, sizeof(state_dir), state_opt, &err);
	if (rc == PS_OK)
		rc = ps_api_token(o.token, sizeof(o.token), state_dir, false, &err);
	if (rc != PS_OK) {
		ps_cli_report(&err);
		rc = PS_EXIT_USAGE;
		goto out;
	}
	o.http.base_url = server && server[0] ? server : "http://127.0.0.1:7654";
	o.http.token = o.token;
	if (!cacert && getenv("PENSTOCK_CACERT") && getenv("PENSTOCK_CACERT")[0])
		cacert = getenv("PENSTOCK_CACERT");
	if (cacert && access(cacert, R_OK) != 0) {
		fprintf(stderr, "penstock: error: --cacert %s: cannot be read: %s; give the PEM file "
		        "of the CA that signed the server's certificate\n", cacert, strerror(errno));
		rc = PS_EXIT_USAGE;
		goto out;
	}
	o.http.cacert = cacert;
	if (strcmp(o.action, "compare") == 0 && !o.timeout_given)
		o.timeout_s = 6 * 3600;   /* a full compare of a large table takes its time */
	o.http.timeout_ms = (long)(o.timeout_s * 1000) + 30000;
	rc = run_action(&o);
out:
	memset(o.token, 0, sizeof(o.token));
	json_decref(o.compare);
	return rc;
}
