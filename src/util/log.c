/*
 * log.c — leveled logging (see log.h). Records are formatted into one buffer
 * and written with a single fwrite under the stdio lock, so lines from the
 * reader and applier threads never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

static ps_log_level g_level = PS_LOG_INFO;
static ps_log_format g_format = PS_LOG_TEXT;

static const char *level_names[] = {"error", "warn", "info", "debug"};
static void (*g_hook)(int before, void *payload);
static void *g_hook_payload;

void ps_log_set_hook(void (*hook)(int before, void *payload), void *payload)
{
	flockfile(stderr);
	g_hook = hook;
	g_hook_payload = payload;
	funlockfile(stderr);
}

void ps_log_configure(ps_log_level level, ps_log_format format)
{
	g_level = level;
	g_format = format;
}

int ps_log_parse_level(const char *s, ps_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (ps_log_level)i;
			return PS_OK;
		}
	}
	return PS_EINVAL;
}

int ps_log_parse_format(const char *s, ps_log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = PS_LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = PS_LOG_JSON;
	else
		return PS_EINVAL;
	return PS_OK;
}

ps_log_format ps_log_format_get(void)
{
	return g_format;
}

int ps_log_enabled(ps_log_level level)
{
	return level <= g_level;
}

void ps_log(ps_log_level level, const char *fmt, ...)
{
	char msg[4096];
	char ts[40];
	struct timespec now;
	struct tm tm;
	ps_buf line;
	va_list ap;

	if (level > g_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L);

	ps_buf_init(&line, sizeof(msg) * 7);
	if (g_format == PS_LOG_JSON) {
		ps_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
		              level_names[level]);
		ps_json_append_string(&line, msg, strlen(msg));
		ps_buf_puts(&line, "}\n");
	} else {
		ps_buf_printf(&line, "%s %-5s %s\n", ts, level_names[level], msg);
	}
	if (line.data) {
		flockfile(stderr);
		if (g_hook)
			g_hook(1, g_hook_payload);
		fwrite(line.data, 1, line.len, stderr);
		if (g_hook)
			g_hook(0, g_hook_payload);
		fflush(stderr);
		funlockfile(stderr);
	}
	ps_buf_free(&line);
}
