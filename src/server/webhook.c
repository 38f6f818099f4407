/*
 * webhook.c — the delivery thread of job webhooks (webhook.h notes 1-5).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/version.h"
#include "server/store.h"
#include "server/webhook.h"
#include "util/log.h"

#define COUNTED_JOBS_MAX 1024   /* jobs counted apart in /metrics; the rest as "" */

typedef struct call {
	char job[64];
	char url_env[128];
	char secret_env[128];
	char event[32];
	char delivery[40];
	char *body;
	int attempts;            /* tries made */
	bool in_flight;          /* the thread is trying it (without the lock) */
	int64_t due_ms;          /* the next try, wall clock */
} call;

typedef struct job_counts {
	char job[64];
	unsigned long long delivered, failed, dropped;
} job_counts;

struct ps_webhooks {
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_t thread;
	bool stopping;
	call *queue[PS_WEBHOOK_QUEUE_MAX];   /* in arrival order */
	size_t n;
	job_counts *counts;
	size_t ncounts;
};

/* ==== signature ============================================================ */

int ps_webhook_sign(char *out, size_t len, const char *secret, const char *body, size_t n)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t used;

	if (len < PS_WEBHOOK_SIGNATURE_MAX)
		return PS_EINVAL;
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, n, mac,
	          &maclen) || maclen != 32)
		return PS_ERR;
	used = (size_t)snprintf(out, len, "sha256=");
	for (unsigned int i = 0; i < maclen; i++)
		used += (size_t)snprintf(out + used, len - used, "%02x", mac[i]);
	return PS_OK;
}

/* ==== counts (w->mu held) ================================================= */

static job_counts *counts_of(ps_webhooks *w, const char *job)
{
	job_counts *grown;

	for (size_t i = 0; i < w->ncounts; i++)
		if (strcmp(w->counts[i].job, job) == 0)
			return &w->counts[i];
	if (w->ncounts >= COUNTED_JOBS_MAX)
		job = "";
	for (size_t i = 0; i < w->ncounts; i++)
		if (strcmp(w->counts[i].job, job) == 0)
			return &w->counts[i];
	grown = realloc(w->counts, (w->ncounts + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	w->counts = grown;
	memset(&grown[w->ncounts], 0, sizeof(*grown));
	snprintf(grown[w->ncounts].job, sizeof(grown[w->ncounts].job), "%s", job);
	return &grown[w->ncounts++];
}

static void count(ps_webhooks *w, const char *job, int what)
{
	job_counts *c = counts_of(w, job);

	if (!c)
		return;
	if (what == 0)
		c->delivered++;
	else if (what == 1)
		c->failed++;
	else
		c->dropped++;
}

void ps_webhooks_metrics(ps_webhooks *w, ps_buf *b)
{
	static const char *const results[] = {"delivered", "failed", "dropped"};

	size_t queued = 0;

	ps_buf_puts(b, "# HELP penstock_webhook_calls_total Webhook calls by result: delivered (2xx), "
	               "failed (a try that did not get 2xx; retried), dropped (given up, or pushed out "
	               "of the full queue).\n# TYPE penstock_webhook_calls_total counter\n");
	if (w) {
		pthread_mutex_lock(&w->mu);
		for (size_t i = 0; i < w->ncounts; i++)
			for (int r = 0; r < 3; r++)
				ps_buf_printf(b, "penstock_webhook_calls_total{job=\"%s\",result=\"%s\"} %llu\n",
				              w->counts[i].job, results[r],
				              r == 0 ? w->counts[i].delivered
				                     : r == 1 ? w->counts[i].failed : w->counts[i].dropped);
		queued = w->n;
		pthread_mutex_unlock(&w->mu);
	}
	ps_buf_printf(b, "# HELP penstock_webhook_queue_length Webhook calls waiting to be made or "
	                 "retried.\n# TYPE penstock_webhook_queue_length gauge\n"
	                 "penstock_webhook_queue_length %zu\n", queued);
}

/* ==== the queue =========================================================== */

static void call_free(call *c)
{
	if (c) {
		free(c->body);
		free(c);
	}
}

void ps_webhooks_enqueue(ps_webhooks *w, const char *job, const char *url_env,
                         const char *secret_env, const char *event, const char *delivery,
                         const char *body)
{
	call *c = calloc(1, sizeof(*c)), *dropped = NULL;

	if (c)
		c->body = strdup(body);
	if (!c || !c->body) {
		free(c);
		ps_log_error("job %s: webhook (%s): out of memory; the %s call is lost", job, url_env, event);
		return;
	}
	snprintf(c->job, sizeof(c->job), "%s", job);
	snprintf(c->url_env, sizeof(c->url_env), "%s", url_env);
	snprintf(c->secret_env, sizeof(c->secret_env), "%s", secret_env ? secret_env : "");
	snprintf(c->event, sizeof(c->event), "%s", event);
	snprintf(c->delivery, sizeof(c->delivery), "%s", delivery);
	c->due_ms = ps_time_now_ms();
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		dropped = c;
	} else {
		if (w->n == PS_WEBHOOK_QUEUE_MAX) {   /* note 1: the oldest goes */
			size_t k = w->queue[0]->in_flight ? 1 : 0;   /* not the one being tried */
			dropped = w->queue[k];
			memmove(&w->queue[k], &w->queue[k + 1], (w->n - k - 1) * sizeof(w->queue[0]));
			w->n--;
		}
		w->queue[w->n++] = c;
	}
	if (dropped)
		count(w, dropped->job, 2);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->mu);
	if (dropped) {
		ps_log_warn("job %s: webhook (%s): the %s call %s was dropped: %s", dropped->job,
		            dropped->url_env, dropped->event, dropped->delivery,
		            dropped == c ? "the server is stopping" : "the queue is full");
		call_free(dropped);
	}
}

/* The next call to make: due, and no earlier call of its job still
 * waiting (note 2). *wait_ms: how long until one may be due. w->mu held. */
static ssize_t next_due(ps_webhooks *w, int64_t now, int64_t *wait_ms)
{
	*wait_ms = 1000;
	for (size_t i = 0; i < w->n; i++) {
		bool blocked = false;

		for (size_t j = 0; j < i && !blocked; j++)
			blocked = strcmp(w->queue[j]->job, w->queue[i]->job) == 0;
		if (blocked)
			continue;
		if (w->queue[i]->due_ms <= now)
			return (ssize_t)i;
		if (w->queue[i]->due_ms - now < *wait_ms)
			*wait_ms = w->queue[i]->due_ms - now;
	}
	return -1;
}

/* ==== one try ============================================================= */

static size_t discard(char *p, size_t size, size_t n, void *payload)
{
	(void)p;
	(void)payload;
	return size * n;
}

/* Makes one try of c; 0 when the receiver answered 2xx, else a short
 * reason (never the URL) in why. Runs without w->mu. */
static int try_call(const call *c, char *why, size_t why_len)
{
	const char *url = getenv(c->url_env);
	const char *secret = c->secret_env[0] ? getenv(c->secret_env) : NULL;
	char sig[PS_WEBHOOK_SIGNATURE_MAX + 40], hdr[200];
	struct curl_slist *headers = NULL;
	CURL *curl = NULL;
	CURLcode cc;
	long status = 0;
	int rc = -1;

	if (!url || !*url) {
		snprintf(why, why_len, "%s is not set in the server's environment", c->url_env);
		return -1;
	}
	if (c->secret_env[0] && (!secret || !*secret)) {
		snprintf(why, why_len, "%s (webhook.secret_env) is not set in the server's environment; "
		         "not sending unsigned", c->secret_env);
		return -1;
	}
	curl = curl_easy_init();
	if (!curl) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	snprintf(hdr, sizeof(hdr), "X-Penstock-Event: %s", c->event);
	headers = curl_slist_append(headers, hdr);
	snprintf(hdr, sizeof(hdr), "X-Penstock-Delivery: %s", c->delivery);
	headers = curl_slist_append(headers, hdr);
	if (secret) {
		char mac[PS_WEBHOOK_SIGNATURE_MAX];
		if (ps_webhook_sign(mac, sizeof(mac), secret, c->body, strlen(c->body)) != PS_OK) {
			snprintf(why, why_len, "cannot compute the signature");
			goto cleanup;
		}
		snprintf(sig, sizeof(sig), "X-Penstock-Signature: %s", mac);
		headers = curl_slist_append(headers, sig);
		memset(mac, 0, sizeof(mac));
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "penstock/" PENSTOCK_VERSION);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)PS_WEBHOOK_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		/* curl's text for the code only: its error buffer may quote the URL */
		snprintf(why, why_len, "%s", curl_easy_strerror(cc));
		goto cleanup;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(why, why_len, "the receiver answered %ld", status);
		goto cleanup;
	}
	rc = 0;
cleanup:
	memset(sig, 0, sizeof(sig));
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return rc;
}

/* ==== the thread ========================================================== */

static void *deliver_main(void *arg)
{
	ps_webhooks *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		int64_t now = ps_time_now_ms(), wait_ms;
		ssize_t i = next_due(w, now, &wait_ms);
		char why[300];
		call *c;
		int rc;

		if (i < 0) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += wait_ms / 1000;
			until.tv_nsec += (wait_ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&w->wake, &w->mu, &until);
			continue;
		}
		c = w->queue[i];
		c->in_flight = true;
		pthread_mutex_unlock(&w->mu);
		why[0] = '\0';
		rc = try_call(c, why, sizeof(why));
		pthread_mutex_lock(&w->mu);
		c->in_flight = false;
		c->attempts++;
		if (rc == 0) {
			count(w, c->job, 0);
			ps_log_info("job %s: webhook (%s): %s call %s delivered", c->job, c->url_env, c->event,
			            c->delivery);
		} else {
			count(w, c->job, 1);
		}
		if (rc == 0 || c->attempts >= PS_WEBHOOK_ATTEMPTS) {
			if (rc != 0) {
				count(w, c->job, 2);
				ps_log_warn("job %s: webhook (%s): the %s call %s was dropped after %d tries: %s",
				            c->job, c->url_env, c->event, c->delivery, c->attempts, why);
			}
			/* it may have moved while unlocked: the queue only shifts */
			for (size_t k = 0; k < w->n; k++)
				if (w->queue[k] == c) {
					memmove(&w->queue[k], &w->queue[k + 1], (w->n - k - 1) * sizeof(c));
					w->n--;
					break;
				}
			call_free(c);
		} else {
			int64_t backoff = 1000LL << (c->attempts - 1);
			c->due_ms = ps_time_now_ms() + backoff;
			ps_log_warn("job %s: webhook (%s): the %s call %s failed (%s); try %d of %d in %.0f s",
			            c->job, c->url_env, c->event, c->delivery, why, c->attempts + 1,
			            PS_WEBHOOK_ATTEMPTS, (double)backoff / 1000.0);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int ps_webhooks_start(ps_webhooks **out, ps_error *err)
{
	ps_webhooks *w = calloc(1, sizeof(*w));
	int rc;

	*out = NULL;
	if (!w)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(w);
		return ps_error_set(err, PS_ERR, "webhooks: cannot initialise libcurl");
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->wake, NULL);
	rc = pthread_create(&w->thread, NULL, deliver_main, w);
	if (rc != 0) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return ps_error_set(err, PS_ERR, "webhooks: cannot start the delivery thread: %s",
		                    strerror(rc));
	}
	*out = w;
	return PS_OK;
}

void ps_webhooks_stop(ps_webhooks *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->n; i++) {
		ps_log_warn("job %s: webhook (%s): the %s call %s was not delivered before the server "
		            "stopped", w->queue[i]->job, w->queue[i]->url_env, w->queue[i]->event,
		            w->queue[i]->delivery);
		call_free(w->queue[i]);
	}
	free(w->counts);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
