/*
 * error.c — filling and formatting ps_error (see penstock/error.h).
 *
 * Messages are kept on one line: libpq and the kernel like to end theirs
 * with newlines and tabs, which would break log lines and JSON output, so
 * every newline run becomes "; ", a tab a space, any other control byte
 * (one echoed from input, such as ESC) '?', and trailing white space is
 * dropped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "penstock/error.h"

/* Folds s in place, within its buffer of size cap; reads from a copy because
 * "; " is longer than the newline it replaces. */
static void fold_lines(char *s, size_t cap)
{
	char in_buf[PS_ERROR_MESSAGE_MAX];
	const char *in = in_buf;
	size_t out = 0;

	snprintf(in_buf, sizeof(in_buf), "%s", s);
	while (*in && out + 1 < cap) {
		if (*in == '\n' || *in == '\r') {
			while (*in == '\n' || *in == '\r' || *in == '\t' || *in == ' ')
				in++;
			if (*in && out > 0 && out + 3 < cap) {
				s[out++] = ';';
				s[out++] = ' ';
			}
			continue;
		}
		if (*in == '\t')
			s[out++] = ' ';
		else if ((unsigned char)*in < 0x20 || *in == 0x7f)
			s[out++] = '?';     /* a control byte echoed from input: no terminal games */
		else
			s[out++] = *in;
		in++;
	}
	s[out] = '\0';
	while (out > 0 && (s[out - 1] == ' ' || s[out - 1] == ';'))
		s[--out] = '\0';
}

void ps_error_clear(ps_error *err)
{
	if (!err)
		return;
	err->code = PS_OK;
	err->engine_code[0] = '\0';
	err->engine_code_kind[0] = '\0';
	err->errclass = 0;
	err->sys_errno = 0;
	err->message[0] = '\0';
	err->context[0] = '\0';
}

static int set_va(ps_error *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	ps_error_clear(err);
	err->code = code;
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	fold_lines(err->message, sizeof(err->message));
	return code;
}

int ps_error_set(ps_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_va(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int ps_error_set_engine(ps_error *err, const char *kind, const char *code, int errclass)
{
	if (!err)
		return PS_ERR;
	snprintf(err->engine_code, sizeof(err->engine_code), "%s", code ? code : "");
	snprintf(err->engine_code_kind, sizeof(err->engine_code_kind), "%s",
	         code && *code && kind ? kind : "");
	err->errclass = errclass >= 0 && errclass < PS_ERRCLASS_COUNT ? errclass + 1 : 0;
	return err->code;
}

void ps_error_engine_key(const ps_error *err, char *buf, size_t len)
{
	size_t i;

	if (!len)
		return;
	for (i = 0; i + 1 < len && err->engine_code_kind[i]; i++) {
		char c = err->engine_code_kind[i];
		buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a')
		         : ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '_';
	}
	buf[i] = '\0';
}

int ps_error_set_errno(ps_error *err, int code, int errno_value, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	va_start(ap, fmt);
	set_va(err, code, fmt, ap);
	va_end(ap);
	if (!err)
		return code;
	err->sys_errno = errno_value;
	used = strlen(err->message);
	if (used < sizeof(err->message))
		snprintf(err->message + used, sizeof(err->message) - used, ": %s",
		         strerror(errno_value));
	return code;
}

int ps_error_add_context(ps_error *err, const char *fmt, ...)
{
	char add[PS_ERROR_CONTEXT_MAX];
	char old[PS_ERROR_CONTEXT_MAX];
	va_list ap;

	if (!err)
		return PS_ERR;
	va_start(ap, fmt);
	vsnprintf(add, sizeof(add), fmt, ap);
	va_end(ap);
	fold_lines(add, sizeof(add));
	memcpy(old, err->context, sizeof(old));
	if (old[0])
		snprintf(err->context, sizeof(err->context), "%s: %s", add, old);
	else
		snprintf(err->context, sizeof(err->context), "%s", add);
	return err->code;
}

void ps_error_format(const ps_error *err, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (!err || err->code == PS_OK) {
		snprintf(buf, len, "no error");
		return;
	}
	if (err->context[0])
		snprintf(buf, len, "%s: %s", err->context,
		         err->message[0] ? err->message : ps_error_code_name(err->code));
	else
		snprintf(buf, len, "%s",
		         err->message[0] ? err->message : ps_error_code_name(err->code));
}

const char *ps_error_code_name(int code)
{
	switch (code) {
	case PS_OK: return "ok";
	case PS_ERR: return "error";
	case PS_EINVAL: return "invalid_input";
	case PS_ECONNECT: return "connection_failed";
	case PS_EPROTO: return "protocol_error";
	case PS_ENOMEM: return "out_of_memory";
	case PS_EIO: return "io_error";
	case PS_ECHECKPOINT: return "checkpoint_refused";
	case PS_ESTOPPED: return "stopped";
	case PS_ETIMEOUT: return "timeout";
	case PS_ETOOBIG: return "too_big";
	case PS_EFAULT: return "injected_fault";
	case PS_ESERVER: return "server_error";
	default: return "unknown_error";
	}
}
