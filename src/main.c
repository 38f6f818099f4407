/*
 * main.c — entry point: parses the sub-command and dispatches to src/cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/version.h"


static void usage(FILE *f)
{
	fputs("usage: penstock <command> [options]\n"
	      "\n"
	      "commands:\n"
	      "  run SPEC.json     run one job in the foreground (penstock run --help)\n"
	      "  check SPEC.json   run the job's prechecks, change nothing (penstock check --help)\n"
	      "  server            the job server: REST API, metrics (penstock server --help)\n"
	      "  job ACTION ...    drive the server's jobs: create, list, show, check, start,\n"
	      "                    pause, resume, stop, delete, events (penstock job --help)\n"
	      "  compare           check (and repair) a target against its source (penstock compare --help)\n"
	      "  version           print the version\n"
	      "  help              this text\n"
	      "\n"
	      "options for every command: --log-level error|warn|info|debug, --log-format text|json\n"
	      "exit status: 0 ok, 1 runtime failure, 2 bad usage or input, 3 checkpoint refused,\n"
	      "             4 a blocking precheck failed, 5 (job) the state does not allow the action\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return PS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "run") == 0)
		return ps_cli_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return ps_cli_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "server") == 0)
		return ps_cli_server(argc - 1, argv + 1);
	if (strcmp(argv[1], "job") == 0)
		return ps_cli_job(argc - 1, argv + 1);
	if (strcmp(argv[1], "compare") == 0)
		return ps_cli_compare(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("penstock %s\n", PENSTOCK_VERSION);
		return PS_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return PS_EXIT_OK;
	}
	fprintf(stderr, "penstock: error: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return PS_EXIT_USAGE;
}
