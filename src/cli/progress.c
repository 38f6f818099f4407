/*
 * progress.c — the run's figures in place on a terminal (progress.h notes
 * 1-3).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"
#include "core/checkpoint.h"
#include "util/log.h"

struct ps_progress {
	ps_run_status *status;
	pthread_t thread;
	atomic_int stop;
	ps_progress_block shown;    /* what is on the screen now (stderr's lock) */
};

int ps_progress_mode_parse(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return PS_PROGRESS_AUTO;
	if (strcmp(s, "always") == 0)
		return PS_PROGRESS_ALWAYS;
	if (strcmp(s, "never") == 0)
		return PS_PROGRESS_NEVER;
	return -1;
}

bool ps_progress_wanted(int mode)
{
	const char *term = getenv("TERM");

	if (mode == PS_PROGRESS_ALWAYS)
		return true;
	if (mode == PS_PROGRESS_NEVER || ps_log_format_get() != PS_LOG_TEXT)
		return false;
	return isatty(2) && !(term && strcmp(term, "dumb") == 0);
}

/* ==== rendering ============================================================ */

/* 1234567 as "1,234,567". */
static void grouped(char *buf, size_t len, long long v)
{
	char digits[32];
	size_t n, out = 0;
	int neg = v < 0;

	snprintf(digits, sizeof(digits), "%lld", neg ? -v : v);
	n = strlen(digits);
	if (neg && out + 1 < len)
		buf[out++] = '-';
	for (size_t i = 0; i < n && out + 1 < len; i++) {
		buf[out++] = digits[i];
		if ((n - i - 1) % 3 == 0 && i + 1 < n && out + 1 < len)
			buf[out++] = ',';
	}
	buf[out] = '\0';
}

static void duration(char *buf, size_t len, double s)
{
	long long t = s < 0 ? 0 : (long long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, len, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%lld:%02lld", t / 60, t % 60);
}

static void size_text(char *buf, size_t len, long long b)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;

	if (b < 0) {
		snprintf(buf, len, "?");
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void add_line(ps_progress_block *out, int width, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_line(ps_progress_block *out, int width, const char *fmt, ...)
{
	va_list ap;
	size_t cut = (size_t)(width < PS_PROGRESS_WIDTH ? width : PS_PROGRESS_WIDTH - 1);

	if (out->n >= PS_PROGRESS_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(out->line[out->n], sizeof(out->line[out->n]), fmt, ap);
	va_end(ap);
	if (strlen(out->line[out->n]) > cut)
		out->line[out->n][cut] = '\0';   /* note 3: never wrap */
	out->n++;
}

static bool table_done(const ps_table_status *t)
{
	return t->finished || (t->units_total && t->units_done >= t->units_total);
}

static void render_load(const ps_run_status *c, int width, int max_lines, ps_progress_block *out)
{
	long long rows = 0, est = 0;
	bool est_known = true;
	double rate = 0, eta;
	size_t done = 0, listed = 0, room;
	char a[32], b[32], r[32], e[32];

	for (size_t i = 0; i < c->ntables; i++) {
		const ps_table_status *t = &c->tables[i];

		rows += t->rows_copied;
		if (t->rows_estimated >= 0)
			est += t->rows_estimated > t->rows_copied ? t->rows_estimated : t->rows_copied;
		else if (!table_done(t))
			est_known = false;
		else
			est += t->rows_copied;
		rate += t->rows_per_sec;
		done += table_done(t);
	}
	grouped(a, sizeof(a), rows);
	grouped(b, sizeof(b), est);
	grouped(r, sizeof(r), (long long)rate);
	eta = est_known && rate > 0 && est > rows ? (double)(est - rows) / rate : -1;
	if (eta >= 0)
		duration(e, sizeof(e), eta);
	else
		snprintf(e, sizeof(e), "?");
	if (est_known && est > 0)
		add_line(out, width, "load  %zu/%zu tables  %s/~%s rows  %.0f%%  %s rows/s  ETA %s", done,
		         c->ntables, a, b, 100.0 * (double)rows / (double)est, r, e);
	else
		add_line(out, width, "load  %zu/%zu tables  %s rows  %s rows/s", done, c->ntables, a, r);
	/* the tables being copied, then a line for the rest */
	room = max_lines > out->n + 2 ? (size_t)(max_lines - out->n - 2) : 1;
	for (size_t i = 0; i < c->ntables && listed < room; i++) {
		const ps_table_status *t = &c->tables[i];
		char bar[24], name[140];
		double share;
		int filled;

		if (table_done(t))
			continue;
		share = t->rows_estimated > 0 ? (double)t->rows_copied / (double)t->rows_estimated
		        : t->units_total ? (double)t->units_done / (double)t->units_total : 0;
		share = share > 1 ? 1 : share;
		filled = (int)(share * 20 + 0.5);
		for (int k = 0; k < 20; k++)
			bar[k] = k < filled ? '#' : '-';
		bar[20] = '\0';
		snprintf(name, sizeof(name), "%s.%s", t->schema, t->name);
		grouped(a, sizeof(a), t->rows_copied);
		if (t->rows_estimated >= 0)
			grouped(b, sizeof(b), t->rows_estimated);
		else
			snprintf(b, sizeof(b), "?");
		grouped(r, sizeof(r), (long long)t->rows_per_sec);
		if (t->eta_seconds >= 0)
			duration(e, sizeof(e), t->eta_seconds);
		else
			snprintf(e, sizeof(e), "?");
		add_line(out, width, "  %-30s [%s] %s/~%s  %s rows/s  ETA %s", name, bar, a, b, r, e);
		listed++;
	}
	if (done + listed < c->ntables || done)
		add_line(out, width, "  %zu table%s done%s", done, done == 1 ? "" : "s",
		         done + listed < c->ntables ? ", more waiting" : "");
}

static void render_stream(const ps_run_status *c, int width, ps_progress_block *out)
{
	char lag[32], kept[32], n[32], r[32];

	size_text(lag, sizeof(lag), c->lag_bytes);
	size_text(kept, sizeof(kept), c->retained_bytes);
	grouped(n, sizeof(n), (long long)c->changes_applied);
	grouped(r, sizeof(r), (long long)(c->changes_per_sec + 0.5));
	add_line(out, width, "%s  lag %.1f s (%s behind)  %s changes, %s/s  checkpoint %s  CDC %s  "
	         "log kept %s", c->phase == PS_PHASE_CATCHUP ? "catching up" : "streaming",
	         c->lag_seconds, lag, n, r, c->applied[0] ? c->applied : "-",
	         ps_cdc_state_name(c->cdc_state), kept);
}

void ps_progress_render(const ps_run_status *c, int width, int max_lines, ps_progress_block *out)
{
	bool loading = false;

	out->n = 0;
	if (width < 20)
		width = 20;
	if (max_lines > PS_PROGRESS_LINES)
		max_lines = PS_PROGRESS_LINES;
	if (max_lines < 2)
		max_lines = 2;
	for (size_t i = 0; i < c->ntables && !loading; i++)
		loading = !table_done(&c->tables[i]);
	if (loading)
		render_load(c, width, max_lines - 1, out);
	if (c->phase == PS_PHASE_CATCHUP || c->phase == PS_PHASE_STREAMING)
		render_stream(c, width, out);
	else if (!loading)
		add_line(out, width, "%s", c->ntables ? "load done; starting the stream"
		                                      : "starting: connecting, preparing the source");
}

/* ==== drawing (stderr's lock held) ========================================= */

static void erase(ps_progress *p)
{
	if (p->shown.n == 0)
		return;
	fputs("\r", stderr);
	if (p->shown.n > 1)
		fprintf(stderr, "\033[%dA", p->shown.n - 1);
	fputs("\033[J", stderr);
}

static void draw(ps_progress *p)
{
	for (int i = 0; i < p->shown.n; i++)
		fprintf(stderr, "%s%s", i ? "\n" : "", p->shown.line[i]);
	fflush(stderr);
}

/* The log's hook (note 1): a record goes above the block. */
static void around_log(int before, void *payload)
{
	ps_progress *p = payload;

	if (before) {
		erase(p);
	} else {
		draw(p);
	}
}

static void terminal_size(int *width, int *height)
{
	struct winsize ws;
	const char *cols = getenv("COLUMNS");
	char *end = NULL;
	long c = cols ? strtol(cols, &end, 10) : 0;

	/* not a terminal (--progress=always into a file): $COLUMNS, else wide */
	*width = cols && end && !*end && c >= 20 && c <= 1000 ? (int)c : 160;
	*height = 24;
	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		*width = ws.ws_col;
		*height = ws.ws_row;
	}
}

static void *progress_main(void *arg)
{
	ps_progress *p = arg;

	while (!atomic_load(&p->stop)) {
		struct timespec nap = {0, 250 * 1000000L};
		ps_progress_block next;
		ps_run_status copy;
		int width, height;

		ps_run_status_copy(p->status, &copy);
		terminal_size(&width, &height);
		ps_progress_render(&copy, width - 1, height / 2, &next);
		ps_run_status_copy_free(&copy);
		flockfile(stderr);
		erase(p);
		p->shown = next;
		draw(p);
		funlockfile(stderr);
		nanosleep(&nap, NULL);
	}
	return NULL;
}

int ps_progress_start(ps_progress **out, ps_run_status *status)
{
	ps_progress *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return PS_ENOMEM;
	p->status = status;
	atomic_init(&p->stop, 0);
	ps_log_set_hook(around_log, p);
	if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
		ps_log_set_hook(NULL, NULL);
		free(p);
		return PS_ERR;
	}
	*out = p;
	return PS_OK;
}

void ps_progress_stop(ps_progress *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);
	flockfile(stderr);
	erase(p);
	p->shown.n = 0;
	fflush(stderr);
	funlockfile(stderr);
	ps_log_set_hook(NULL, NULL);
	free(p);
}
