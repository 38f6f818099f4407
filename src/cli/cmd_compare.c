/*
 * compare.c — `penstock compare`: consistency check (and repair) of a target
 * against its source. The work is done by src/compare/; this file parses
 * the command line, resolves passwords from the environment and prints.
 *
 * Exit status is compare's own convention (like diff(1)): 0 equal (or every
 * difference repaired), 1 different, 2 error of any kind (bad input, a
 * server, a timeout).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "compare/compare.h"
#include "util/log.h"

#define CMP_EXIT_EQUAL 0
#define CMP_EXIT_DIFFERENT 1
#define CMP_EXIT_ERROR 2
#define CMP_MAX_PATTERNS 256

static atomic_int g_cancel;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&g_cancel, 1);
}

static void usage(FILE *f)
{
	fputs("usage: penstock compare --source URL --target URL [options]\n"
	      "\n"
	      "Checks that the target holds the same rows as the source; with --repair, rewrites\n"
	      "the rows that differ. Targets: postgresql://... or sqlite:///path.db.\n"
	      "  --source-password-env VAR   source password from environment variable VAR\n"
	      "  --target-password-env VAR   target password from environment variable VAR\n"
	      "  --tables PATTERN,...        schema.table globs (no dot: public.PATTERN); default all\n"
	      "  --mode count|full|sample    row counts / every row (default) / some chunks\n"
	      "  --sample-percent N          chunks checked in sample mode (default 10)\n"
	      "  --chunk-rows N              rows per chunk (default 10000)\n"
	      "  --max-report N              differing keys listed per table (default 100)\n"
	      "  --repair                    rewrite differing rows on the target, then re-check\n"
	      "  --job NAME                  a job replicates source -> target: re-check differences\n"
	      "                              once the target applied past the source position\n"
	      "  --lag-timeout SECONDS       how long to wait for that (default 60)\n"
	      "  --json                      print the report as JSON\n"
	      "exit status: 0 equal (or all repaired), 1 different, 2 error\n",
	      f);
}

static const char *value_of(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

static int number(const char *opt, const char *v, long long lo, long long hi, long long *out)
{
	char *end = NULL;
	long long n;

	n = strtoll(v, &end, 10);
	if (!*v || *end || n < lo || n > hi) {
		fprintf(stderr, "penstock: error: %s: expected a number from %lld to %lld, got '%s'\n",
		        opt, lo, hi, v);
		return -1;
	}
	*out = n;
	return 0;
}

static int password_from(const char *opt, const char *var, const char **out)
{
	*out = NULL;
	if (!var)
		return 0;
	*out = getenv(var);
	if (!*out) {
		/* name the variable, never a value */
		fprintf(stderr, "penstock: error: %s: environment variable %s is not set\n", opt, var);
		return -1;
	}
	return 0;
}

/* Splits the comma list in place into patterns. */
static int split_tables(char *list, const char **patterns, size_t *n)
{
	char *p = list;

	while (p && *p) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (*p) {
			if (*n >= CMP_MAX_PATTERNS) {
				fprintf(stderr, "penstock: error: --tables: at most %d patterns\n",
				        CMP_MAX_PATTERNS);
				return -1;
			}
			patterns[(*n)++] = p;
		}
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

static int parse(int argc, char **argv, ps_compare_opts *o, const char **patterns,
                 char **tables_copy, bool *json)
{
	const char *src_env = NULL, *tgt_env = NULL, *v;
	long long n;

	for (int i = 1; i < argc; i++) {
		int c = ps_cli_common_option(argc, argv, &i);
		if (c < 0)
			return -1;
		if (c > 0)
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 1;
		} else if ((v = value_of(argc, argv, &i, "--source"))) {
			o->source_url = v;
		} else if ((v = value_of(argc, argv, &i, "--target"))) {
			o->target_url = v;
		} else if ((v = value_of(argc, argv, &i, "--source-password-env"))) {
			src_env = v;
		} else if ((v = value_of(argc, argv, &i, "--target-password-env"))) {
			tgt_env = v;
		} else if ((v = value_of(argc, argv, &i, "--tables"))) {
			free(*tables_copy);
			*tables_copy = strdup(v);
			o->ntables = 0;
			if (!*tables_copy || split_tables(*tables_copy, patterns, &o->ntables) < 0)
				return -1;
		} else if ((v = value_of(argc, argv, &i, "--mode"))) {
			if (ps_compare_mode_parse(v, &o->mode) != PS_OK) {
				fprintf(stderr, "penstock: error: --mode: '%s' is not count, full or sample\n", v);
				return -1;
			}
		} else if ((v = value_of(argc, argv, &i, "--sample-percent"))) {
			if (number("--sample-percent", v, 1, 100, &n) < 0)
				return -1;
			o->sample_percent = (int)n;
		} else if ((v = value_of(argc, argv, &i, "--chunk-rows"))) {
			if (number("--chunk-rows", v, 2, 10000000, &n) < 0)
				return -1;
			o->chunk_rows = n;
		} else if ((v = value_of(argc, argv, &i, "--max-report"))) {
			if (number("--max-report", v, 0, 1000000, &n) < 0)
				return -1;
			o->max_report = (int)n;
		} else if ((v = value_of(argc, argv, &i, "--job"))) {
			o->job = v;
		} else if ((v = value_of(argc, argv, &i, "--lag-timeout"))) {
			if (number("--lag-timeout", v, 1, 86400, &n) < 0)
				return -1;
			o->lag_timeout_ms = (int)(n * 1000);
		} else if (strcmp(argv[i], "--repair") == 0) {
			o->repair = true;
		} else if (strcmp(argv[i], "--json") == 0) {
			*json = true;
		} else {
			fprintf(stderr, "penstock: error: compare: unknown option or missing value '%s'\n",
			        argv[i]);
			usage(stderr);
			return -1;
		}
	}
	if (!o->source_url || !o->target_url) {
		fprintf(stderr, "penstock: error: compare: --source and --target are required\n");
		usage(stderr);
		return -1;
	}
	if (password_from("--source-password-env", src_env, &o->source_password) < 0 ||
	    password_from("--target-password-env", tgt_env, &o->target_password) < 0)
		return -1;
	o->tables = patterns;
	return 0;
}

int ps_cli_compare(int argc, char **argv)
{
	static const char *patterns[CMP_MAX_PATTERNS];
	ps_compare_opts o;
	ps_compare_report rep;
	char *tables_copy = NULL;
	bool json = false;
	ps_error err;
	int rc, status;
	struct sigaction sa;

	ps_error_clear(&err);
	ps_compare_opts_defaults(&o);
	rc = parse(argc, argv, &o, patterns, &tables_copy, &json);
	if (rc != 0) {
		free(tables_copy);
		return rc > 0 ? CMP_EXIT_EQUAL : CMP_EXIT_ERROR;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	o.cancel = &g_cancel;
	rc = ps_compare_run(&o, &rep, &err);
	if (rc != PS_OK) {
		ps_cli_report(&err);
		free(tables_copy);
		return CMP_EXIT_ERROR;
	}
	if (json) {
		json_t *j = ps_compare_report_json(&rep);
		char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(j);
	} else {
		ps_compare_report_print(&rep, stdout);
	}
	status = rep.consistent ? CMP_EXIT_EQUAL : CMP_EXIT_DIFFERENT;
	ps_compare_report_free(&rep);
	free(tables_copy);
	return status;
}
