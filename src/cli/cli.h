/*
 * cli.h — sub-commands. Each returns the process exit status:
 *
 *   0  success (for run: stopped cleanly on SIGINT/SIGTERM)
 *   1  runtime failure (cannot connect, server error, I/O error)
 *   2  bad usage or bad input (command line, spec, URL)
 *   3  checkpoint refused (different job definition or server, resume
 *      "always" without a checkpoint, slot gone)
 *   4  a blocking precheck failed (check, job check, job start --wait: an
 *      item of level error failed; the report says which and how to fix it)
 *   5  job: the job's state does not allow the action; nothing changed
 *   6  job compare: the target differs from the source
 */
#ifndef PS_CLI_CLI_H
#define PS_CLI_CLI_H

#include "penstock/error.h"

#define PS_EXIT_OK 0
#define PS_EXIT_FAILURE 1
#define PS_EXIT_USAGE 2
#define PS_EXIT_CHECKPOINT 3
#define PS_EXIT_CHECK_FAILED 4   /* a blocking precheck failed (check, job check/start) */
#define PS_EXIT_REFUSED 5        /* job: the job's state does not allow the action */
#define PS_EXIT_DIFFERENT 6      /* job compare: differences found (not all repaired) */

int ps_cli_run(int argc, char **argv);
int ps_cli_check(int argc, char **argv);
int ps_cli_server(int argc, char **argv);
int ps_cli_job(int argc, char **argv);
/* compare has its own exit convention: 0 equal, 1 different, 2 error. */
int ps_cli_compare(int argc, char **argv);

/* Exit status for an error code, as above. */
int ps_cli_exit_code(int code);
/* Reports an error once, where it is handled: "penstock: error: <context>:
 * <message>" on stderr, or one JSON log record with --log-format json. */
void ps_cli_report(const ps_error *err);

/* Parses the options every command takes (--log-level, --log-format) at
 * argv[*i]; returns 1 when it consumed one, 0 when not its option, -1 on a
 * bad value (reported). */
int ps_cli_common_option(int argc, char **argv, int *i);

/* Takes arg as the command's one spec file into *spec_path; arg NULL means
 * none was given. Prints the error and returns PS_EXIT_USAGE when there is
 * none or a second one. */
int ps_cli_spec_arg(const char *cmd, const char **spec_path, const char *arg);

/* The value of option name at argv[*i], given as "name VALUE" (then *i
 * moves past it) or "name=VALUE"; "" when name is last with no value; NULL
 * when argv[*i] is another argument. */
const char *ps_cli_option_value(int argc, char **argv, int *i, const char *name);

#endif
