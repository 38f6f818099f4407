/*
 * jsonl.c — the JSON-lines sink: one change event per line, in the
 * Debezium-style envelope of sink/envelope.h.
 *
 * Destinations: `jsonl:-` is standard output; `jsonl:///dir` is a directory
 * of files named <job>-<seq>.jsonl (seq at least 6 digits, from 000001).
 *
 * NOTES ON THE DESIGN
 *
 *  1. Every file holds whole lines only. Events are rendered into one
 *     bounded buffer and reach write(2) only between lines; a short write
 *     keeps the unwritten tail in the buffer, so a retried write completes
 *     the line instead of starting a new one. A crash can still leave a
 *     partial last line: open cuts the newest file back to its last '\n'
 *     (ftruncate + fsync) before doing anything else.
 *  2. A file is never appended to after open: each open starts a new file
 *     (O_EXCL) with the next sequence number, and the directory is fsynced
 *     after each file is created so that its name survives a crash.
 *  3. Rotation happens before an event is rendered, when the current file
 *     (written bytes plus buffered bytes) has reached max_file_bytes. The
 *     old file is fdatasynced before it is closed, so flush only ever needs
 *     to sync the current file to make everything durable (sink.h inv. 1).
 *  4. Rendering is sink/envelope.c's (unchanged values left out, no
 *     allocation on the hot path beyond the reusable buffer).
 *  5. An event larger than EVENT_MAX is refused with PS_ETOOBIG and leaves
 *     the buffer as it was; the sink stays usable.
 *  6. Schema changes (issue 15): the sink keeps, per table, the columns it
 *     last told consumers of (the first definition it saw: a table about to
 *     be loaded or backfilled, with the source's ordinals for its columns,
 *     an initial-load row, or the stream), in its engine state, so in the
 *     checkpoint written after the files are flushed. When the stream
 *     announces other columns, it writes a schema-change event (op "s",
 *     envelope_schema.c) before the first event that has them. A crash
 *     before the checkpoint repeats the event with the events after it.
 *
 *  7. Net changes (issue 21, target.changes "net"): the changes of a span
 *     go into sink/netchg.c's store instead of the files; flush gives the
 *     span's net events out (each with its range) and then syncs. The span
 *     is a bounded run's processing range, which the sink asks the core to
 *     hold to its end (sink.h range), or, for a run without a bound, what
 *     came since the last flush. Initial-load rows (op r) and schema events
 *     are written as they come.
 *  8. Split by operation (target.split "operation"): one output per kind of
 *     event, each a sequence of files of its own, <job>.<kind>-<seq>.jsonl
 *     (kinds: insert c, update u, delete d, load r, other t m s), created
 *     at the kind's first event after open. Every output follows notes 1-3;
 *     flush writes and syncs each. Without split there is one output,
 *     <job>-<seq>.jsonl, created at open as before.
 *
 * States: open (fd is the current file or 1) ─► closed. There is no error
 * state: after a failed write or flush the buffer still holds exactly the
 * bytes not yet written, and the core decides whether to retry or close.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "penstock/url.h"
#include "penstock/sink.h"
#include "sink/envelope.h"
#include "sink/netchg.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/str.h"

/* The URL syntax of jsonl: (penstock/url.h), defined with the ops. */
extern const ps_url_syntax ps_jsonl_url_syntax[];

#define EVENT_MAX ((size_t)64 << 20)          /* largest single event */
#define WRITE_THRESHOLD ((size_t)256 << 10)   /* write(2) once this is buffered */
#define BUF_LIMIT (EVENT_MAX + WRITE_THRESHOLD)
#define DEFAULT_MAX_FILE_BYTES ((uint64_t)64 << 20)
#define MIN_MAX_FILE_BYTES 1024ULL
#define MAX_MAX_FILE_BYTES (1ULL << 40)
#define SEQ_MAX_DIGITS 15

/* Outputs by kind of event (note 8); OUT_ALL without split. */
enum { OUT_INSERT, OUT_UPDATE, OUT_DELETE, OUT_LOAD, OUT_OTHER, OUT_N, OUT_ALL = 0 };
static const char *const out_kinds[OUT_N] = {"insert", "update", "delete", "load", "other"};

typedef struct jsonl_out {
	char prefix[160];           /* file names: <prefix>-<seq>.jsonl */
	int fd;                     /* current file, or 1; -1: none yet */
	uint64_t seq;               /* sequence number of the current file */
	uint64_t file_bytes;        /* bytes write(2) has put in the current file */
	char file_path[PATH_MAX];   /* current file, for messages */
	ps_buf buf;                 /* rendered events not yet written */
	bool opened;                /* its files were looked at (last seq, repair) */
} jsonl_out;

struct ps_sink {
	char *job_name;
	char *dir;                  /* NULL when writing to standard output */
	int dir_fd;                 /* -1 for standard output */
	uint64_t max_file_bytes;
	jsonl_out outs[OUT_N];
	int nouts;                  /* 1, or OUT_N with split */
	ps_envelope env;
	ps_netchg *net;             /* net changes (note 7), or NULL */
	bool in_txn;
	char range_from[PS_POSITION_MAX], range_to[PS_POSITION_MAX];
	bool bounded;               /* range_to is a bounded run's end */
	char last_commit[PS_POSITION_MAX];
	ps_buf tail;                /* a net event's extra members */
	char *connector, *source_db;  /* for schema events */
	ps_envelope_shapes shapes;  /* what consumers were told, per table (note 6) */
	const ps_table *last_r;     /* the table of the last initial-load row seen */
};

/* ==== files =============================================================== */

/* Writes o's whole buffer; on failure keeps the unwritten tail (invariant 1). */
static int write_out(jsonl_out *o, ps_error *err)
{
	size_t done = 0;
	int rc = 0;

	while (done < o->buf.len) {
		ssize_t n = write(o->fd, o->buf.data + done, o->buf.len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			rc = ps_error_set_errno(err, PS_EIO, e, "cannot write to %s",
			                        o->file_path);
			break;
		}
		done += (size_t)n;
	}
	if (done > 0) {
		o->file_bytes += done;
		memmove(o->buf.data, o->buf.data + done, o->buf.len - done);
		o->buf.len -= done;
		o->buf.data[o->buf.len] = '\0';
	}
	return rc;
}

/* Creates dir (mode 0750) unless it exists; its parent must exist. */
static int ensure_dir(const char *dir, ps_error *err)
{
	char parent[PATH_MAX];
	struct stat st;
	char *slash;

	if (mkdir(dir, 0750) == 0) {
		snprintf(parent, sizeof(parent), "%s", dir);
		slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		return ps_fsync_dir(parent, err);
	}
	if (errno == ENOENT)
		return ps_error_set_errno(err, PS_EIO, errno,
		                          "cannot create directory %s: its parent directory does not exist",
		                          dir);
	if (errno != EEXIST)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot create directory %s", dir);
	if (stat(dir, &st) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot stat %s", dir);
	if (!S_ISDIR(st.st_mode))
		return ps_error_set(err, PS_EINVAL, "%s exists and is not a directory", dir);
	return 0;
}

/* True when name is "<prefix>-<6 or more digits>.jsonl"; sets *seq. */
static bool parse_file_seq(const char *name, const char *prefix, size_t prefix_len,
                           uint64_t *seq)
{
	const char *p;
	uint64_t v = 0;
	size_t nd = 0;

	if (strncmp(name, prefix, prefix_len) != 0 || name[prefix_len] != '-')
		return false;
	for (p = name + prefix_len + 1; *p >= '0' && *p <= '9'; p++) {
		if (++nd > SEQ_MAX_DIGITS)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (nd < 6 || strcmp(p, ".jsonl") != 0)
		return false;
	*seq = v;
	return true;
}

static int find_last_seq(ps_sink *k, const jsonl_out *o, uint64_t *last, ps_error *err)
{
	size_t prefix_len = strlen(o->prefix);
	struct dirent *de;
	DIR *d = opendir(k->dir);
	uint64_t seq;

	*last = 0;
	if (!d)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot list directory %s", k->dir);
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (parse_file_seq(de->d_name, o->prefix, prefix_len, &seq) && seq > *last)
			*last = seq;
	}
	if (errno != 0) {
		int e = errno;
		closedir(d);
		return ps_error_set_errno(err, PS_EIO, e, "cannot list directory %s", k->dir);
	}
	closedir(d);
	return 0;
}

static void file_name(const jsonl_out *o, uint64_t seq, char *name, size_t len)
{
	snprintf(name, len, "%s-%06llu.jsonl", o->prefix, (unsigned long long)seq);
}

/* Offset just after the last '\n' of fd's first size bytes (0 if none). */
static int last_line_end(int fd, off_t size, off_t *end)
{
	char chunk[8192];
	off_t pos = size;

	while (pos > 0) {
		size_t n = pos > (off_t)sizeof(chunk) ? sizeof(chunk) : (size_t)pos;
		ssize_t got = pread(fd, chunk, n, pos - (off_t)n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)n)
			return got < 0 ? errno : EIO;
		for (size_t i = n; i > 0; i--) {
			if (chunk[i - 1] == '\n') {
				*end = pos - (off_t)n + (off_t)i;
				return 0;
			}
		}
		pos -= (off_t)n;
	}
	*end = 0;
	return 0;
}

/* Cuts a partial last line left by a crash off file seq of o (invariant 1). */
static int repair_partial_line(ps_sink *k, jsonl_out *o, uint64_t seq, ps_error *err)
{
	char name[NAME_MAX + 1];
	struct stat st;
	off_t end = 0;
	int fd = -1, e, rc = 0;

	file_name(o, seq, name, sizeof(name));
	snprintf(o->file_path, sizeof(o->file_path), "%s/%s", k->dir, name);
	fd = openat(k->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot open %s", o->file_path);
		goto cleanup;
	}
	if (st.st_size == 0)
		goto cleanup;
	e = last_line_end(fd, st.st_size, &end);
	if (e != 0) {
		rc = ps_error_set_errno(err, PS_EIO, e, "cannot read %s", o->file_path);
		goto cleanup;
	}
	if (end == st.st_size)
		goto cleanup;
	if (ftruncate(fd, end) != 0 || fsync(fd) != 0) {
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot cut the partial last line of %s",
		                        o->file_path);
		goto cleanup;
	}
	ps_log_warn("sink jsonl: cut a partial last line (%lld bytes) off %s",
	            (long long)(st.st_size - end), o->file_path);
cleanup:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Creates file o->seq (new, never appended to) and makes its name durable. */
static int create_file(ps_sink *k, jsonl_out *o, ps_error *err)
{
	char name[NAME_MAX + 1];

	file_name(o, o->seq, name, sizeof(name));
	snprintf(o->file_path, sizeof(o->file_path), "%s/%s", k->dir, name);
	o->fd = openat(k->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (o->fd < 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot create %s", o->file_path);
	o->file_bytes = 0;
	if (fsync(k->dir_fd) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot fsync directory %s", k->dir);
	return 0;
}

/* Ends o's current file durably and starts the next (invariant 3). */
static int rotate(ps_sink *k, jsonl_out *o, ps_error *err)
{
	int rc = write_out(o, err);

	if (rc != 0)
		return rc;
	if (fdatasync(o->fd) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot fdatasync %s", o->file_path);
	close(o->fd);
	o->fd = -1;
	o->seq++;
	return create_file(k, o, err);
}

/* o's first file of this run: after the last one there (repaired). */
static int out_start(ps_sink *k, jsonl_out *o, ps_error *err)
{
	uint64_t last;
	int rc;

	rc = find_last_seq(k, o, &last, err);
	if (rc == 0 && last > 0)
		rc = repair_partial_line(k, o, last, err);
	if (rc != 0)
		return rc;
	o->seq = last + 1;
	o->opened = true;
	return create_file(k, o, err);
}

/* o ready for the next event: its file exists (note 8) and has room. */
static int out_ready(ps_sink *k, jsonl_out *o, ps_error *err)
{
	if (!k->dir)
		return 0;
	if (o->fd < 0)
		return out_start(k, o, err);
	if (o->file_bytes + o->buf.len >= k->max_file_bytes)
		return rotate(k, o, err);
	return 0;
}

static int open_directory(ps_sink *k, const char *path, ps_error *err)
{
	size_t len = strlen(path);
	int rc;

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len == 0 || path[0] != '/')
		return ps_error_set(err, PS_EINVAL, "jsonl directory '%s' is not an absolute path", path);
	k->dir = strndup(path, len);
	if (!k->dir)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	rc = ensure_dir(k->dir, err);
	if (rc != 0)
		return rc;
	k->dir_fd = open(k->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (k->dir_fd < 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot open directory %s", k->dir);
	/* without split, the one output's file is created now (note 2) */
	return k->nouts == 1 ? out_start(k, &k->outs[OUT_ALL], err) : 0;
}

/* ==== open / close ======================================================== */

static int parse_params(ps_sink *k, const ps_url *u, ps_error *err)
{
	k->max_file_bytes = DEFAULT_MAX_FILE_BYTES;
	for (int i = 0; i < u->nparams; i++) {
		const char *key = u->params[i].key, *val = u->params[i].value;
		char *end = NULL;
		long long v;

		if (strcmp(key, "max_file_bytes") != 0)
			return ps_error_set(err, PS_EINVAL,
			                    "unknown jsonl URL parameter '%s' (the only one is max_file_bytes)",
			                    key);
		if (u->is_stdout)
			return ps_error_set(err, PS_EINVAL,
			                    "max_file_bytes does not apply to jsonl:- (standard output)");
		errno = 0;
		v = strtoll(val, &end, 10);
		if (val[0] < '0' || val[0] > '9' || errno != 0 || *end != '\0' ||
		    v < (long long)MIN_MAX_FILE_BYTES || v > (long long)MAX_MAX_FILE_BYTES)
			return ps_error_set(err, PS_EINVAL,
			                    "max_file_bytes '%s' is not a number from %llu to %llu",
			                    val, MIN_MAX_FILE_BYTES, MAX_MAX_FILE_BYTES);
		k->max_file_bytes = (uint64_t)v;
	}
	return 0;
}

/* Job names become file names: keep them to a safe alphabet. */
static bool job_name_ok(const char *s)
{
	size_t n = 0;

	if (!s || !s[0] || s[0] == '.' || s[0] == '-')
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return n <= 128;
}

/* target.changes, update_mask, merge, net_memory_mb and split (notes 7, 8):
 * their types are checked with the spec; here what they mean together. */
static int open_options(ps_sink *k, const ps_sink_config *cfg, bool is_stdout, ps_error *err)
{
	const char *split = ps_option_str(cfg->options, "split");
	ps_netchg_opts no;
	bool net;
	int rc = ps_netchg_options(cfg->options, &net, &no, err);

	if (rc != PS_OK)
		return rc;
	k->nouts = 1;
	snprintf(k->outs[OUT_ALL].prefix, sizeof(k->outs[OUT_ALL].prefix), "%s", k->job_name);
	if (split && strcmp(split, "operation") == 0) {
		if (is_stdout)
			return ps_error_set(err, PS_EINVAL, "target.split \"operation\" writes one file "
			                    "sequence per operation: it needs a directory "
			                    "(jsonl:///absolute/dir), not jsonl:-");
		k->nouts = OUT_N;
		for (int i = 0; i < OUT_N; i++)
			snprintf(k->outs[i].prefix, sizeof(k->outs[i].prefix), "%s.%s", k->job_name,
			         out_kinds[i]);
	}
	return net ? ps_netchg_open(&k->net, &no, err) : 0;
}

static void jsonl_close(ps_sink *k)
{
	if (!k)
		return;
	for (int i = 0; i < OUT_N; i++) {
		if (k->outs[i].fd >= 0 && k->dir)
			close(k->outs[i].fd);
		ps_buf_free(&k->outs[i].buf);
	}
	if (k->dir_fd >= 0)
		close(k->dir_fd);
	ps_envelope_free(&k->env);
	ps_netchg_close(k->net);
	ps_buf_free(&k->tail);
	ps_envelope_shapes_free(&k->shapes);
	free(k->connector);
	free(k->source_db);
	free(k->job_name);
	free(k->dir);
	free(k);
}

static int jsonl_open(ps_sink **out_sink, const ps_sink_config *cfg, ps_error *err)
{
	ps_sink *k = NULL;
	ps_url url;
	int rc;

	*out_sink = NULL;
	if (!cfg || !cfg->url)
		return ps_error_set(err, PS_EINVAL, "sink jsonl needs a URL");
	if (!job_name_ok(cfg->job_name))
		return ps_error_set(err, PS_EINVAL,
		                    "job name '%s' cannot be used in a file name",
		                    cfg->job_name ? cfg->job_name : "");
	k = calloc(1, sizeof(*k));
	if (!k)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	k->dir_fd = -1;
	for (int i = 0; i < OUT_N; i++) {
		k->outs[i].fd = -1;
		ps_buf_init(&k->outs[i].buf, BUF_LIMIT);
	}
	ps_buf_init(&k->tail, BUF_LIMIT);
	rc = ps_url_parse(&url, cfg->url, err);
	if (rc != 0)
		goto cleanup;
	if (url.syntax != ps_jsonl_url_syntax) {
		rc = ps_error_set(err, PS_EINVAL, "sink jsonl cannot write to '%s'", url.redacted);
		goto cleanup;
	}
	rc = parse_params(k, &url, err);
	if (rc != 0)
		goto cleanup;
	k->job_name = strdup(cfg->job_name);
	if (!k->job_name) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = ps_envelope_init(&k->env, cfg->connector, cfg->source_db, err);
	if (rc != 0)
		goto cleanup;
	k->connector = cfg->connector ? strdup(cfg->connector) : NULL;
	k->source_db = cfg->source_db ? strdup(cfg->source_db) : NULL;
	if ((cfg->connector && !k->connector) || (cfg->source_db && !k->source_db)) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = open_options(k, cfg, url.is_stdout, err);
	if (rc != 0)
		goto cleanup;
	if (url.is_stdout) {
		k->outs[OUT_ALL].fd = STDOUT_FILENO;
		snprintf(k->outs[OUT_ALL].file_path, sizeof(k->outs[OUT_ALL].file_path),
		         "standard output");
	} else {
		rc = open_directory(k, url.path, err);
	}
cleanup:
	if (rc != 0) {
		jsonl_close(k);
		return rc;
	}
	*out_sink = k;
	return 0;
}

/* ==== write / flush ======================================================= */

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ==== schema changes (note 6) ============================================== */

static int jsonl_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                              const ps_table_options *opt, bool *backfill, ps_error *err)
{
	const ps_table *t = tc->table;
	ps_envelope_shape *known = ps_envelope_shapes_find(&k->shapes, t->schema, t->name);
	ps_envelope_shape now;
	jsonl_out *o = &k->outs[k->nouts > 1 ? OUT_OTHER : OUT_ALL];
	size_t start = o->buf.len;
	int rc = 0;

	(void)opt;
	*backfill = false;
	rc = ps_envelope_shape_of(&now, t, tc->def);
	if (rc != PS_OK) {
		ps_envelope_shape_clear(&now);
		return ps_error_set(err, rc, "out of memory");
	}
	if (known && !ps_envelope_shape_equal(known, &now)) {
		rc = out_ready(k, o, err);
		start = o->buf.len;
		if (rc == 0)
			rc = ps_envelope_render_schema(&o->buf, k->connector, k->source_db, txn, tc,
			                               known, &now, wall_ms(), err);
		if (rc != 0) {
			o->buf.len = start;
			if (o->buf.data)
				o->buf.data[start] = '\0';
			ps_envelope_shape_clear(&now);
			return rc;
		}
		/* the rows come again when consumers cannot tell their new values */
		*backfill = ps_envelope_shape_needs_rows(known, &now, tc->def);
	}
	/* the first definition seen, or a new one: what consumers know now */
	rc = ps_envelope_shapes_keep(&k->shapes, t->schema, t->name, &now);
	ps_envelope_shape_clear(&now);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	if (o->buf.len >= WRITE_THRESHOLD)
		return write_out(o, err);
	return 0;
}

/* A table about to be loaded or backfilled: its columns, as the source
 * described them (with their ordinals), are what consumers will know. */
static int jsonl_table_prepare(ps_sink *k, const ps_table_def *def, const ps_table_options *opt,
                               bool *created, ps_error *err)
{
	ps_envelope_shape sh;
	int rc;

	(void)opt;
	*created = false;
	rc = ps_envelope_shape_of(&sh, def->table, def);
	if (rc == PS_OK)
		rc = ps_envelope_shapes_keep(&k->shapes, def->table->schema, def->table->name, &sh);
	ps_envelope_shape_clear(&sh);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

/* An initial-load row: its table's columns are what consumers know, when
 * nothing was known of them yet. */
static int shape_of_row(ps_sink *k, const ps_change *c, ps_error *err)
{
	ps_envelope_shape sh;
	int rc;

	if (c->table == k->last_r)
		return PS_OK;
	k->last_r = c->table;
	if (ps_envelope_shapes_find(&k->shapes, c->table->schema, c->table->name))
		return PS_OK;
	rc = ps_envelope_shape_of(&sh, c->table, NULL);
	if (rc == PS_OK)
		rc = ps_envelope_shapes_keep(&k->shapes, c->table->schema, c->table->name, &sh);
	ps_envelope_shape_clear(&sh);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

static int jsonl_state_save(ps_sink *k, char **json, ps_error *err)
{
	int rc = ps_envelope_shapes_save(&k->shapes, json);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

static int jsonl_state_restore(ps_sink *k, const char *json, ps_error *err)
{
	int rc = ps_envelope_shapes_restore(&k->shapes, json);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

/* The output of an event of op (note 8). */
static jsonl_out *out_for(ps_sink *k, uint8_t op)
{
	if (k->nouts == 1)
		return &k->outs[OUT_ALL];
	switch (op) {
	case PS_OP_INSERT: return &k->outs[OUT_INSERT];
	case PS_OP_UPDATE: return &k->outs[OUT_UPDATE];
	case PS_OP_DELETE: return &k->outs[OUT_DELETE];
	case PS_OP_READ: return &k->outs[OUT_LOAD];
	default: return &k->outs[OUT_OTHER];
	}
}

/* Renders c (with tail, tail_len bytes, before its closing brace) into its
 * output; rotates first when the file is full. */
static int render(ps_sink *k, const ps_txn *txn, const ps_change *c, const char *tail,
                  size_t tail_len, ps_error *err)
{
	jsonl_out *o = out_for(k, c->op);
	size_t start;
	int rc;

	rc = out_ready(k, o, err);
	if (rc != 0)
		return rc;
	start = o->buf.len;
	rc = ps_envelope_render_tail(&k->env, &o->buf, txn, c, wall_ms(), tail, tail_len, err);
	if ((rc == 0 && o->buf.len - start > EVENT_MAX) || rc == PS_ETOOBIG)
		rc = ps_error_set(err, PS_ETOOBIG, "the '%c' event at lsn %llu is larger than %zu MiB",
		                  (char)c->op, (unsigned long long)c->lsn, EVENT_MAX >> 20);
	if (rc != 0) {
		o->buf.len = start;
		if (o->buf.data)
			o->buf.data[start] = '\0';
		return rc;
	}
	if (o->buf.len >= WRITE_THRESHOLD)
		return write_out(o, err);
	return 0;
}

/* Split outputs (note 8): each event says where its transaction stands in
 * the source's commit order, for a reader that merges the files. */
static int tail_position(ps_sink *k, const ps_txn *txn)
{
	int rc;

	if (k->nouts == 1 || !txn)
		return PS_OK;
	rc = ps_buf_puts(&k->tail, ",\"position\":");
	return rc == PS_OK ? ps_json_append_string(&k->tail, txn->position, strlen(txn->position))
	                   : rc;
}

static int jsonl_write(ps_sink *k, const ps_txn *txn, const ps_change *c,
                       ps_error *err)
{
	int rc;

	if (c->op == PS_OP_READ && c->table) {
		rc = shape_of_row(k, c, err);
		if (rc != 0)
			return rc;
	}
	if (k->net && c->op != PS_OP_READ)
		return ps_netchg_add(k->net, txn, c, err);   /* note 7 */
	ps_buf_reset(&k->tail);
	rc = tail_position(k, txn);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	return render(k, txn, c, k->tail.data, k->tail.len, err);
}

static int jsonl_begin(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	(void)txn;
	k->in_txn = true;
	return k->net ? ps_netchg_begin(k->net, err) : 0;
}

static int jsonl_commit(ps_sink *k, const ps_txn *txn, ps_error *err)
{
	k->in_txn = false;
	snprintf(k->last_commit, sizeof(k->last_commit), "%s", txn->position);
	return k->net ? ps_netchg_commit(k->net, err) : 0;
}

/* A bounded run's range is held to its end (note 7); a run without a bound
 * gives each flush's span out, from where the last one ended. */
static int jsonl_range(ps_sink *k, const char *from, const char *to, bool *hold, ps_error *err)
{
	(void)err;
	if (from)
		snprintf(k->range_from, sizeof(k->range_from), "%s", from);
	k->bounded = to != NULL;
	snprintf(k->range_to, sizeof(k->range_to), "%s", to ? to : "");
	*hold = k->net != NULL;
	return 0;
}

static int emit_net(const ps_netchg_event *ev, void *payload, ps_error *err)
{
	ps_sink *k = payload;
	const char *to = k->bounded ? k->range_to : k->last_commit;
	int rc;

	ps_buf_reset(&k->tail);
	rc = ps_netchg_render_tail(&k->tail, ev, k->range_from, to);
	if (rc == PS_OK)
		rc = tail_position(k, ev->txn);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "cannot render a net event's range");
	return render(k, ev->txn, ev->change, k->tail.data, k->tail.len, err);
}

static int jsonl_flush(ps_sink *k, ps_error *err)
{
	int rc = 0;

	if (k->net) {
		rc = ps_netchg_drain(k->net, emit_net, k, err);
		if (rc != 0)
			return rc;
		k->in_txn = false;
		/* the next span begins where this one ended */
		if (!k->bounded && k->last_commit[0])
			snprintf(k->range_from, sizeof(k->range_from), "%s", k->last_commit);
	}
	for (int i = 0; i < k->nouts && rc == 0; i++) {
		jsonl_out *o = &k->outs[i];

		if (o->fd < 0)
			continue;
		rc = write_out(o, err);
		if (rc != 0)
			break;
		if (!k->dir) {
			/* Pipes and terminals cannot be synced; files behind stdout can. */
			if (fsync(o->fd) != 0 && errno != EINVAL && errno != EROFS &&
			    errno != ENOTSUP && errno != EOPNOTSUPP)
				rc = ps_error_set_errno(err, PS_EIO, errno, "cannot fsync %s", o->file_path);
		} else if (fdatasync(o->fd) != 0) {
			rc = ps_error_set_errno(err, PS_EIO, errno, "cannot fdatasync %s", o->file_path);
		}
	}
	return rc;
}

static const char *const split_choices[] = {"none", "operation", NULL};

static const ps_option_def jsonl_options[] = {
	PS_NETCHG_OPTION_DEFS,
	{.name = "split", .kind = PS_OPTION_CHOICE, .choices = split_choices,
	 .default_text = "none",
	 .doc = "operation: inserts, updates, deletes, load rows and the rest (truncates, "
	        "messages, schema changes) each in files of their own"},
	{.name = NULL},
};

static const char *const jsonl_schemes[] = {"jsonl", NULL};
static const char *const check_ids[] = {"target.writable", NULL};

const ps_url_syntax ps_jsonl_url_syntax[] = {
	{"jsonl", "jsonl", PS_URL_PATH, 0, false, true, "directory",
	 "jsonl:///absolute/dir, or jsonl:- for standard output"},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};

int ps__jsonl_precheck(const ps_sink_config *, const ps_table_options *, bool, const ps_check_tables *, ps_check_report *, ps_error *); /* jsonl_precheck.c */
const ps_sink_ops ps_sink_jsonl = {
	.abi_version = PS_SINK_ABI_VERSION,
	.name = "jsonl",
	.url_schemes = jsonl_schemes,
	.check_ids = check_ids,
	.max_writers = 1,   /* one appender per directory */
	.options = jsonl_options,
	.open = jsonl_open,
	.begin = jsonl_begin,
	.write = jsonl_write,
	.commit = jsonl_commit,
	.flush = jsonl_flush,
	.checkpoint_load = NULL,
	.checkpoint_store = NULL,
	.close = jsonl_close,
	.precheck = ps__jsonl_precheck,
	.table_prepare = jsonl_table_prepare,
	.state_save = jsonl_state_save,
	.state_restore = jsonl_state_restore,
	.table_change = jsonl_table_change,
	.range = jsonl_range,
};
