/*
 * penstock/error.h — the error value every call returns through.
 *
 * Functions return 0 on success or a negative ps_error_code, and fill an
 * explicit `ps_error *err` supplied by the caller (never thread-local state).
 * An error carries what happened (message; the engine's own code such as a
 * SQLSTATE, a MySQL errno or a Kafka error; errno) and where (context: job,
 * table, position). Context is prepended layer by layer as the error travels
 * up ("sink jsonl: table public.orders: write failed: ...").
 *
 * Classes: whether an error passes by itself (retryable) or needs an
 * operator (permanent) is decided once, by the plugin that copied the error
 * from its engine: it knows what its engine's codes mean, and records the
 * class with the code (ps_error_set_engine). Errors without a class are
 * classed by the core from errno and penstock's own code (core/errclass.h).
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
	PS_ESERVER = -12      /* the server refused a command (see engine_code) */
} ps_error_code;

/* What can be done about an error (core/errclass.h says more). */
typedef enum ps_errclass {
	/* retryable */
	PS_ERRCLASS_CONNECTION = 0, /* lost or refused connection, server restarting */
	PS_ERRCLASS_TIMEOUT,        /* a deadline passed, a statement was cancelled */
	PS_ERRCLASS_CONFLICT,       /* serialization failure, deadlock, lock timeout, object in use */
	PS_ERRCLASS_RESOURCES,      /* disk full, server out of memory or connections, I/O error */
	PS_ERRCLASS_INTERRUPTED,    /* the run was interrupted (PS_ESTOPPED without a stop request) */
	PS_ERRCLASS_INJECTED,       /* PENSTOCK_FAULT */
	/* permanent */
	PS_ERRCLASS_SLOT_LOST,      /* the source's log reader (PG slot) is missing or invalidated */
	PS_ERRCLASS_LOG_LOST,       /* the log the checkpoint needs was removed */
	PS_ERRCLASS_PERMISSION,     /* privilege or authentication refused */
	PS_ERRCLASS_SCHEMA,         /* target schema or data incompatible with the source's */
	PS_ERRCLASS_CHECKPOINT,     /* checkpoint refused: fingerprint mismatch, slot gone, corrupt */
	PS_ERRCLASS_INVALID,        /* bad spec or input */
	PS_ERRCLASS_INTERNAL,       /* protocol violation, out of memory, anything unknown */
	PS_ERRCLASS_COUNT
} ps_errclass;

#define PS_ERROR_MESSAGE_MAX 1024
#define PS_ERROR_CONTEXT_MAX 512

#define PS_ENGINE_CODE_MAX 48   /* Kafka error names run to ~40 characters */

typedef struct ps_error {
	int code;                            /* ps_error_code, PS_OK when clear */
	char engine_code[PS_ENGINE_CODE_MAX];      /* the engine's code for it ("23505",
	                                              "1062", "_FENCED"); "" if none */
	char engine_code_kind[PS_ENGINE_CODE_MAX]; /* what engine_code is, as shown to
	                                              users: "SQLSTATE", "MySQL error",
	                                              "Kafka error"; "" */
	int errclass;                        /* ps_errclass + 1 as the plugin classed it;
	                                        0: not classed by a plugin */
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

/* Records the engine's own code (kind says what it is, e.g. "SQLSTATE") and
 * the class the plugin gives it (a ps_errclass, or -1 when the code names no
 * condition it knows: the core then classes by errno and code). Keeps the
 * message. Returns err->code. err may be NULL. */
int ps_error_set_engine(ps_error *err, const char *kind, const char *code, int errclass);

/* Prepends "<context>: " to the error's context. Returns err->code. */
int ps_error_add_context(ps_error *err, const char *fmt, ...) PS_PRINTF(2, 3);

/* The JSON key of err's engine code: its kind in lower case with every
 * other character as '_' ("sqlstate", "mysql_error"), into buf; "" when
 * none. */
void ps_error_engine_key(const ps_error *err, char *buf, size_t len);

/* "context: message" (or just the message), into buf of size len. */
void ps_error_format(const ps_error *err, char *buf, size_t len);

/* Stable lower-case name of a code, e.g. "invalid_input". */
const char *ps_error_code_name(int code);

#endif
