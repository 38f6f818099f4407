/*
 * common.c — what every sub-command shares: exit codes, error reporting,
 * logging options.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

int ps_cli_exit_code(int code)
{
	switch (code) {
	case PS_OK: return PS_EXIT_OK;
	case PS_EINVAL: return PS_EXIT_USAGE;
	case PS_ECHECKPOINT: return PS_EXIT_CHECKPOINT;
	default: return PS_EXIT_FAILURE;
	}
}

void ps_cli_report(const ps_error *err)
{
	char text[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 8];
	char state[2 * PS_ENGINE_CODE_MAX + 8] = "";

	ps_error_format(err, text, sizeof(text));
	if (err->engine_code[0])
		snprintf(state, sizeof(state), " (%s %s)", err->engine_code_kind, err->engine_code);
	/* Once: as a JSON record for log collectors, else as a plain line. */
	if (ps_log_format_get() == PS_LOG_JSON)
		ps_log_error("%s%s", text, state);
	else
		fprintf(stderr, "penstock: error: %s%s\n", text, state);
}

const char *ps_cli_option_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (strcmp(argv[*i], name) == 0) {
		if (*i + 1 >= argc)
			return "";
		return argv[++*i];
	}
	return NULL;
}

int ps_cli_spec_arg(const char *cmd, const char **spec_path, const char *arg)
{
	if (!arg) {
		fprintf(stderr, "penstock: error: %s: missing the spec file\n", cmd);
		return PS_EXIT_USAGE;
	}
	if (*spec_path) {
		fprintf(stderr, "penstock: error: %s: takes one spec file, got '%s' and '%s'\n", cmd,
		        *spec_path, arg);
		return PS_EXIT_USAGE;
	}
	*spec_path = arg;
	return PS_EXIT_OK;
}

int ps_cli_common_option(int argc, char **argv, int *i)
{
	static ps_log_level level = PS_LOG_INFO;
	static ps_log_format format = PS_LOG_TEXT;
	const char *v;

	v = ps_cli_option_value(argc, argv, i, "--log-level");
	if (v) {
		if (ps_log_parse_level(v, &level) != PS_OK) {
			fprintf(stderr, "penstock: error: --log-level: '%s' is not error, warn, info or debug\n", v);
			return -1;
		}
		ps_log_configure(level, format);
		return 1;
	}
	v = ps_cli_option_value(argc, argv, i, "--log-format");
	if (v) {
		if (ps_log_parse_format(v, &format) != PS_OK) {
			fprintf(stderr, "penstock: error: --log-format: '%s' is not text or json\n", v);
			return -1;
		}
		ps_log_configure(level, format);
		return 1;
	}
	return 0;
}
