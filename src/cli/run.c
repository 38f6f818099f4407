/*
 * run.c — `penstock run SPEC.json`: one job in the foreground.
 *
 * The first SIGINT/SIGTERM asks for a graceful stop: the transaction being
 * read is finished, the target flushed, the checkpoint written, exit 0. A
 * second one stops at once (still flushing what is complete).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "core/fault.h"
#include "core/pipeline.h"
#include "core/checkpoint.h"
#include "core/spec.h"
#include "util/log.h"

static atomic_int g_stop;   /* lock-free, so safe in a signal handler */

static void on_signal(int sig)
{
	(void)sig;
	if (atomic_load(&g_stop) < 2)
		atomic_fetch_add(&g_stop, 1);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *f)
{
	fputs("usage: penstock run [--until caught-up|POSITION] [--state-dir DIR]\n"
	      "                    [--progress auto|always|never] [--log-level LEVEL]\n"
	      "                    [--log-format text|json] SPEC.json\n"
	      "\n"
	      "Runs one job in the foreground until SIGINT/SIGTERM (graceful: flush, checkpoint,\n"
	      "exit 0). Running it again resumes from the checkpoint.\n"
	      "  --until caught-up  a bounded run (a trickle feed): process the changes from the\n"
	      "                     checkpoint up to the source's log end as it is now, then exit 0\n"
	      "  --until POSITION   the same, up to POSITION of the source's log\n"
	      "  --state-dir DIR    checkpoints (default $PENSTOCK_STATE_DIR, else ~/.local/state/penstock)\n"
	      "  --progress WHEN    draw the load's tables, rows, rate and ETA, then the stream's lag,\n"
	      "                     in place: auto (default: on a terminal, with text logs), always,\n"
	      "                     never (plain log lines every 10 s)\n",
	      f);
}

int ps_cli_run(int argc, char **argv)
{
	ps_pipeline_config cfg;
	const char *spec_path = NULL, *state_opt = NULL, *until = NULL, *v;
	char state_dir[1024];
	ps_spec *spec = NULL;
	ps_run_status status;
	ps_progress *progress = NULL;
	int progress_mode = PS_PROGRESS_AUTO;
	ps_error err;
	int rc;

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
		} else if ((v = ps_cli_option_value(argc, argv, &i, "--state-dir"))) {
			if (!*v) {
				fprintf(stderr, "penstock: error: run: --state-dir needs a directory\n");
				return PS_EXIT_USAGE;
			}
			state_opt = v;
		} else if ((v = ps_cli_option_value(argc, argv, &i, "--progress"))) {
			progress_mode = ps_progress_mode_parse(v);
			if (progress_mode < 0) {
				fprintf(stderr, "penstock: error: run: --progress: '%s' is not auto, always or "
				        "never\n", v);
				return PS_EXIT_USAGE;
			}
		} else if ((v = ps_cli_option_value(argc, argv, &i, "--until"))) {
			if (!*v) {
				fprintf(stderr, "penstock: error: run: --until needs caught-up or a position "
				        "of the source's log\n");
				return PS_EXIT_USAGE;
			}
			until = v;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "penstock: error: run: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return PS_EXIT_USAGE;
		} else if (ps_cli_spec_arg("run", &spec_path, argv[i]) != PS_EXIT_OK) {
			return PS_EXIT_USAGE;
		}
	}
	if (!spec_path) {
		ps_cli_spec_arg("run", &spec_path, NULL);
		usage(stderr);
		return PS_EXIT_USAGE;
	}
	rc = ps_fault_init(&err);
	if (rc == PS_OK)
		rc = ps_spec_load_file(&spec, spec_path, &err);
	if (rc == PS_OK)
		rc = ps_state_dir_resolve(state_dir, sizeof(state_dir), state_opt, &err);
	ps_run_status_init(&status);
	if (rc == PS_OK) {
		install_signals();
		ps_pipeline_config_defaults(&cfg);
		cfg.spec = spec;
		cfg.state_dir = state_dir;
		cfg.until = until;
		cfg.status = &status;
		/* drawn in place: the periodic progress lines would only repeat it
		 * (progress.h note 2) */
		if (ps_progress_wanted(progress_mode) && ps_progress_start(&progress, &status) == PS_OK)
			cfg.progress_interval_ms = 60000;
		rc = ps_pipeline_run(&cfg, &g_stop, &err);
		ps_progress_stop(progress);
	}
	if (rc != PS_OK)
		ps_cli_report(&err);
	ps_run_status_destroy(&status);
	ps_spec_free(spec);
	return ps_cli_exit_code(rc);
}
