/*
 * check.c — `penstock check SPEC.json [--json]`: runs the job's prechecks in
 * the foreground and prints the report.
 *
 * Exit status: 0 when no blocking check failed (warnings allowed), 4
 * (PS_EXIT_CHECK_FAILED) when one did, 2 on a bad spec or usage, 1 when the
 * checks could not run. The text form is a table, one item per line, with
 * the fix under each failed item; --json prints the report's JSON
 * (core/precheck.h) on one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/precheck.h"
#include "core/spec.h"

static void usage(FILE *f)
{
	fputs("usage: penstock check [--json] [--log-level LEVEL] [--log-format text|json] SPEC.json\n"
	      "\n"
	      "Checks what the job needs from its source and target, changing nothing,\n"
	      "and prints each check with the fix for the ones that failed.\n"
	      "  --json   print {\"passed\": bool, \"items\": [...]} instead of a table\n"
	      "exit status: 0 passed (warnings allowed), 4 a blocking check failed,\n"
	      "2 bad spec or usage, 1 the checks could not run\n",
	      f);
}

static void print_table(const ps_check_report *r, FILE *f)
{
	size_t idw = 2;

	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->items[i].id) > idw)
			idw = strlen(r->items[i].id);
	fprintf(f, "%-*s  %-7s  %-7s  %s\n", (int)idw, "ID", "LEVEL", "RESULT", "MESSAGE");
	for (size_t i = 0; i < r->n; i++) {
		const ps_check_item *it = &r->items[i];

		fprintf(f, "%-*s  %-7s  %-7s  %s\n", (int)idw, it->id, ps_check_level_name(it->level),
		        ps_check_result_name(it->result), it->message);
		if (it->result == PS_CHECK_FAILED && it->fix)
			fprintf(f, "%-*s  fix: %s\n", (int)idw + 18, "", it->fix);
	}
	fprintf(f, "\n%s\n", ps_check_report_passed(r)
	        ? "passed: the job may start"
	        : "FAILED: fix the failed error items (or list them in checks.skip) and check again");
}

static int print_json(const ps_check_report *r, ps_error *err)
{
	json_t *j = ps_check_report_json(r);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!text)
		return ps_error_set(err, PS_ENOMEM, "check: out of memory rendering JSON");
	puts(text);
	free(text);
	return PS_OK;
}

int ps_cli_check(int argc, char **argv)
{
	const char *spec_path = NULL;
	bool as_json = false, blocked = false;
	ps_check_report report;
	ps_spec *spec = NULL;
	ps_error err;
	int rc;

	memset(&report, 0, sizeof(report));
	ps_error_clear(&err);
	for (int i = 1; i < argc; i++) {
		int c = ps_cli_common_option(argc, argv, &i);
		if (c < 0)
			return PS_EXIT_USAGE;
		if (c > 0)
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return PS_EXIT_OK;
		} else if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "penstock: error: check: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return PS_EXIT_USAGE;
		} else if (ps_cli_spec_arg("check", &spec_path, argv[i]) != PS_EXIT_OK) {
			return PS_EXIT_USAGE;
		}
	}
	if (!spec_path) {
		ps_cli_spec_arg("check", &spec_path, NULL);
		usage(stderr);
		return PS_EXIT_USAGE;
	}
	rc = ps_spec_load_file(&spec, spec_path, &err);
	if (rc == PS_OK)
		rc = ps_precheck_run(spec, &report, &err);
	if (rc == PS_OK && as_json)
		rc = print_json(&report, &err);
	else if (rc == PS_OK)
		print_table(&report, stdout);
	if (rc != PS_OK)
		ps_cli_report(&err);
	else
		blocked = !ps_check_report_passed(&report);
	fflush(stdout);
	ps_check_report_free(&report);
	ps_spec_free(spec);
	if (rc != PS_OK)
		return ps_cli_exit_code(rc);
	return blocked ? PS_EXIT_CHECK_FAILED : PS_EXIT_OK;
}
