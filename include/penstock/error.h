/*
 * penstock/error.h — the error value every call returns through.
 *
 * Functions return 0 on success or a negative ps_error_code, and fill an
 * explicit `ps_error *err` supplied by the caller (never thread-local state).
 * An error carries what happened (message, SQLSTATE or errno) and where
 * (context: job, table, position). Context is prepended layer by layer as the
 * error travels up ("sink jsonl: table public.orders: write failed: ...").
 *
 * Messages never contain secrets: code that builds one from a URL uses the
 * redacted form (see ps_url_redacted in core/url.h).
 */
#ifndef PENSTOCK_ERROR_H
#define PENSTOCK_ERROR_H

#include <stddef.h>

typedef enum ps_error_code {
	PS_OK = 0,
	PS_ERR = -1,          /* runtime failure not covered below */
	PS_EINVAL = -2,       /* bad input: spec, URL, option, argument */
	PS_ECONNECT = -3,     /* cannot connect to, or lost, a server */
	PS_EPROTO = -4,       /* protocol violation, corrupt or truncated message */
	PS_ENOMEM = -5,       /* allocation failed */
	PS_EIO = -6,          /* file or socket I/O failed (see sys_errno) */
	PS_ECHECKPOINT = -7,  /* checkpoint refused: mismatch, missing, corrupt */
	PS_ESTOPPED = -8,     /* interrupted by a stop request */
	PS_ETIMEOUT = -9,     /* a deadline passed */
	PS_ETOOBIG = -10,     /* a bounded buffer would exceed its limit */
	PS_EFAULT = -11,      /* an injected fault (PENSTOCK_FAULT) */
	PS_ESERVER = -12      /* the server refused a command (see sqlstate) */
} ps_error_code;

#define PS_ERROR_MESSAGE_MAX 1024
#define PS_ERROR_CONTEXT_MAX 512

typedef struct ps_error {
	int code;                            /* ps_error_code, PS_OK when clear */
	char sqlstate[6];                    /* five characters and NUL, "" if none */
	int sys_errno;                       /* errno at the failure, 0 if none */
	char message[PS_ERROR_MESSAGE_MAX];  /* what happened, one line */
	char context[PS_ERROR_CONTEXT_MAX];  /* where, outermost first */
} ps_error;

#if defined(__GNUC__)
#define PS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PS_PRINTF(fmt, args)
#endif

/* Clears err to PS_OK. err may be NULL. */
void ps_error_clear(ps_error *err);

/* Sets code and message (newlines folded to "; "), clears the rest.
 * Returns code, so `return ps_error_set(err, PS_EINVAL, ...)` reads well. */
int ps_error_set(ps_error *err, int code, const char *fmt, ...) PS_PRINTF(3, 4);

/* As ps_error_set, and records errno_value and appends strerror(errno_value). */
int ps_error_set_errno(ps_error *err, int code, int errno_value,
                       const char *fmt, ...) PS_PRINTF(4, 5);

/* Prepends "<context>: " to the error's context. Returns err->code. */
int ps_error_add_context(ps_error *err, const char *fmt, ...) PS_PRINTF(2, 3);

/* "context: message" (or just the message), into buf of size len. */
void ps_error_format(const ps_error *err, char *buf, size_t len);

/* Stable lower-case name of a code, e.g. "invalid_input". */
const char *ps_error_code_name(int code);

#endif
