/*
 * log.h — leveled logging to stderr, as text or JSON lines.
 *
 * One line per record. Text: "2026-11-21T03:40:00.123Z info  message".
 * JSON: {"ts":"...","level":"info","msg":"..."}. Secrets must never be
 * passed in: callers log redacted URLs only.
 */
#ifndef PS_UTIL_LOG_H
#define PS_UTIL_LOG_H

#include "penstock/error.h"

typedef enum ps_log_level {
	PS_LOG_ERROR = 0,
	PS_LOG_WARN,
	PS_LOG_INFO,
	PS_LOG_DEBUG
} ps_log_level;

typedef enum ps_log_format {
	PS_LOG_TEXT = 0,
	PS_LOG_JSON
} ps_log_format;

void ps_log_configure(ps_log_level level, ps_log_format format);
/* Parse "error|warn|info|debug" / "text|json"; 0 or PS_EINVAL. */
int ps_log_parse_level(const char *s, ps_log_level *out);
int ps_log_parse_format(const char *s, ps_log_format *out);
int ps_log_enabled(ps_log_level level);
ps_log_format ps_log_format_get(void);
void ps_log(ps_log_level level, const char *fmt, ...) PS_PRINTF(2, 3);

/* Something else draws on stderr in place (a terminal progress display):
 * hook(1, payload) is called before each record is written and hook(0,
 * payload) after, under the same stderr lock, so it can take its lines away
 * and draw them again below the record. NULL removes it. */
void ps_log_set_hook(void (*hook)(int before, void *payload), void *payload);

#define ps_log_error(...) ps_log(PS_LOG_ERROR, __VA_ARGS__)
#define ps_log_warn(...) ps_log(PS_LOG_WARN, __VA_ARGS__)
#define ps_log_info(...) ps_log(PS_LOG_INFO, __VA_ARGS__)
#define ps_log_debug(...) ps_log(PS_LOG_DEBUG, __VA_ARGS__)

#endif
