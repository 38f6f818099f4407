/*
 * webhook.h — alerts without Prometheus: a job whose spec names a webhook
 * (webhook.url_env, webhook.secret_env: variables of the server's
 * environment) gets an HTTP POST on its transitions to failed,
 * failed_permanently, ready_to_complete and completed (docs/api.md).
 *
 * NOTES ON THE DESIGN
 *
 *  1. One delivery thread per server and a bounded queue
 *     (PS_WEBHOOK_QUEUE_MAX): enqueueing never blocks and never fails the
 *     transition that caused it; a full queue drops its oldest call, counted
 *     in /metrics and logged.
 *  2. A call is retried with doubling waits (1 s, 2 s, ... PS_WEBHOOK_ATTEMPTS
 *     tries in all) until the receiver answers 2xx; then it is dropped,
 *     counted and logged. Calls of one job go out in order: a later one waits
 *     while an earlier one of the same job is being retried.
 *  3. The URL and the secret are read from the environment when the call is
 *     made and appear nowhere else: not in a log line, an error, the API or
 *     the store (a Slack-style URL is a secret too). Logs name the variables.
 *  4. The body is signed: X-Penstock-Signature: sha256=<hex HMAC-SHA256 of
 *     the exact body bytes under the secret>, like GitHub's. The body holds
 *     a unique delivery id and the time, so a receiver can refuse replays.
 *  5. Not persisted: calls still queued when the server stops are logged
 *     as dropped.
 */
#ifndef PS_SERVER_WEBHOOK_H
#define PS_SERVER_WEBHOOK_H

#include <stddef.h>

#include "penstock/error.h"
#include "util/buf.h"

#define PS_WEBHOOK_QUEUE_MAX 256
#define PS_WEBHOOK_ATTEMPTS 6
#define PS_WEBHOOK_TIMEOUT_S 10

typedef struct ps_webhooks ps_webhooks;

/* Starts the delivery thread. */
int ps_webhooks_start(ps_webhooks **out, ps_error *err);

/* Queues one call (the strings are copied): job names the job in logs and
 * metrics; event is the new state; body is the JSON to send. Never blocks. */
void ps_webhooks_enqueue(ps_webhooks *w, const char *job, const char *url_env,
                         const char *secret_env, const char *event, const char *delivery,
                         const char *body);

/* The Prometheus lines of the deliveries (penstock_webhook_*). */
void ps_webhooks_metrics(ps_webhooks *w, ps_buf *b);

/* Ends the thread once the call in flight is done; what is still queued is
 * logged as dropped. w may be NULL. */
void ps_webhooks_stop(ps_webhooks *w);

/* "sha256=" and the lower-case hex HMAC-SHA256 of body under secret into
 * out (at least PS_WEBHOOK_SIGNATURE_MAX bytes). */
#define PS_WEBHOOK_SIGNATURE_MAX 72
int ps_webhook_sign(char *out, size_t len, const char *secret, const char *body, size_t n);

#endif
