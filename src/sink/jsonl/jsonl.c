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
#include "util/buf.h"
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

typedef struct jsonl_shape {
	char *table;                /* "schema.name" */
	ps_envelope_shape shape;
} jsonl_shape;

struct ps_sink {
	char *job_name;
	char *dir;                  /* NULL when writing to standard output */
	int dir_fd;                 /* -1 for standard output */
	int fd;                     /* current file, or 1 */
	uint64_t seq;               /* sequence number of the current file */
	uint64_t file_bytes;        /* bytes write(2) has put in the current file */
	uint64_t max_file_bytes;
	char file_path[PATH_MAX];   /* current file, for messages */
	ps_envelope env;
	ps_buf buf;                 /* rendered events not yet written */
	char *connector, *source_db;  /* for schema events */
	jsonl_shape *shapes;        /* what consumers were told, per table (note 6) */
	size_t nshapes, cap_shapes;
	const ps_table *last_r;     /* the table of the last initial-load row seen */
};

/* ==== files =============================================================== */

/* Writes the whole buffer; on failure keeps the unwritten tail (invariant 1). */
static int write_out(ps_sink *k, ps_error *err)
{
	size_t done = 0;
	int rc = 0;

	while (done < k->buf.len) {
		ssize_t n = write(k->fd, k->buf.data + done, k->buf.len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			rc = ps_error_set_errno(err, PS_EIO, e, "cannot write to %s",
			                        k->file_path);
			break;
		}
		done += (size_t)n;
	}
	if (done > 0) {
		k->file_bytes += done;
		memmove(k->buf.data, k->buf.data + done, k->buf.len - done);
		k->buf.len -= done;
		k->buf.data[k->buf.len] = '\0';
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

/* True when name is "<job>-<6 or more digits>.jsonl"; sets *seq. */
static bool parse_file_seq(const char *name, const char *job, size_t job_len,
                           uint64_t *seq)
{
	const char *p;
	uint64_t v = 0;
	size_t nd = 0;

	if (strncmp(name, job, job_len) != 0 || name[job_len] != '-')
		return false;
	for (p = name + job_len + 1; *p >= '0' && *p <= '9'; p++) {
		if (++nd > SEQ_MAX_DIGITS)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (nd < 6 || strcmp(p, ".jsonl") != 0)
		return false;
	*seq = v;
	return true;
}

static int find_last_seq(ps_sink *k, uint64_t *last, ps_error *err)
{
	size_t job_len = strlen(k->job_name);
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
		if (parse_file_seq(de->d_name, k->job_name, job_len, &seq) && seq > *last)
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

static void file_name(const ps_sink *k, uint64_t seq, char *name, size_t len)
{
	snprintf(name, len, "%s-%06llu.jsonl", k->job_name, (unsigned long long)seq);
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

/* Cuts a partial last line left by a crash off file seq (invariant 1). */
static int repair_partial_line(ps_sink *k, uint64_t seq, ps_error *err)
{
	char name[NAME_MAX + 1];
	struct stat st;
	off_t end = 0;
	int fd = -1, e, rc = 0;

	file_name(k, seq, name, sizeof(name));
	snprintf(k->file_path, sizeof(k->file_path), "%s/%s", k->dir, name);
	fd = openat(k->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot open %s", k->file_path);
		goto cleanup;
	}
	if (st.st_size == 0)
		goto cleanup;
	e = last_line_end(fd, st.st_size, &end);
	if (e != 0) {
		rc = ps_error_set_errno(err, PS_EIO, e, "cannot read %s", k->file_path);
		goto cleanup;
	}
	if (end == st.st_size)
		goto cleanup;
	if (ftruncate(fd, end) != 0 || fsync(fd) != 0) {
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot cut the partial last line of %s",
		                        k->file_path);
		goto cleanup;
	}
	ps_log_warn("sink jsonl: cut a partial last line (%lld bytes) off %s",
	            (long long)(st.st_size - end), k->file_path);
cleanup:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Creates file k->seq (new, never appended to) and makes its name durable. */
static int create_file(ps_sink *k, ps_error *err)
{
	char name[NAME_MAX + 1];

	file_name(k, k->seq, name, sizeof(name));
	snprintf(k->file_path, sizeof(k->file_path), "%s/%s", k->dir, name);
	k->fd = openat(k->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (k->fd < 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot create %s", k->file_path);
	k->file_bytes = 0;
	if (fsync(k->dir_fd) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot fsync directory %s", k->dir);
	return 0;
}

/* Ends the current file durably and starts the next (invariant 3). */
static int rotate(ps_sink *k, ps_error *err)
{
	int rc = write_out(k, err);

	if (rc != 0)
		return rc;
	if (fdatasync(k->fd) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot fdatasync %s", k->file_path);
	close(k->fd);
	k->fd = -1;
	k->seq++;
	return create_file(k, err);
}

static int open_directory(ps_sink *k, const char *path, ps_error *err)
{
	size_t len = strlen(path);
	uint64_t last;
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
	rc = find_last_seq(k, &last, err);
	if (rc == 0 && last > 0)
		rc = repair_partial_line(k, last, err);
	if (rc != 0)
		return rc;
	k->seq = last + 1;
	return create_file(k, err);
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

static void jsonl_close(ps_sink *k)
{
	if (!k)
		return;
	if (k->fd >= 0 && k->dir)
		close(k->fd);
	if (k->dir_fd >= 0)
		close(k->dir_fd);
	ps_envelope_free(&k->env);
	ps_buf_free(&k->buf);
	for (size_t i = 0; i < k->nshapes; i++) {
		free(k->shapes[i].table);
		ps_envelope_shape_clear(&k->shapes[i].shape);
	}
	free(k->shapes);
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
	k->fd = -1;
	k->dir_fd = -1;
	ps_buf_init(&k->buf, BUF_LIMIT);
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
	if (url.is_stdout) {
		k->fd = STDOUT_FILENO;
		snprintf(k->file_path, sizeof(k->file_path), "standard output");
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

static jsonl_shape *shape_find(ps_sink *k, const char *schema, const char *name)
{
	char q[300];

	snprintf(q, sizeof(q), "%s.%s", schema, name);
	for (size_t i = 0; i < k->nshapes; i++)
		if (strcmp(k->shapes[i].table, q) == 0)
			return &k->shapes[i];
	return NULL;
}

/* Takes sh as what consumers know of schema.name. */
static int shape_keep(ps_sink *k, const char *schema, const char *name, ps_envelope_shape *sh)
{
	jsonl_shape *e = shape_find(k, schema, name);
	char q[300];

	if (!e) {
		if (k->nshapes == k->cap_shapes) {
			size_t cap = k->cap_shapes ? k->cap_shapes * 2 : 16;
			jsonl_shape *grown = realloc(k->shapes, cap * sizeof(*grown));
			if (!grown)
				return PS_ENOMEM;
			k->shapes = grown;
			k->cap_shapes = cap;
		}
		snprintf(q, sizeof(q), "%s.%s", schema, name);
		e = &k->shapes[k->nshapes];
		memset(e, 0, sizeof(*e));
		e->table = strdup(q);
		if (!e->table)
			return PS_ENOMEM;
		k->nshapes++;
	}
	/* a column the source could not number now keeps its number */
	for (int i = 0; i < sh->n; i++)
		for (int j = 0; sh->cols[i].ordinal == 0 && j < e->shape.n; j++)
			if (strcmp(e->shape.cols[j].name, sh->cols[i].name) == 0)
				sh->cols[i].ordinal = e->shape.cols[j].ordinal;
	ps_envelope_shape_clear(&e->shape);
	e->shape = *sh;
	memset(sh, 0, sizeof(*sh));
	return PS_OK;
}

static int jsonl_table_change(ps_sink *k, const ps_txn *txn, const ps_table_change *tc,
                              const ps_table_options *opt, bool *backfill, ps_error *err)
{
	const ps_table *t = tc->table;
	jsonl_shape *e = shape_find(k, t->schema, t->name);
	ps_envelope_shape now;
	size_t start = k->buf.len;
	int rc;

	(void)opt;
	*backfill = false;
	rc = ps_envelope_shape_of(&now, t, tc->def);
	if (rc != PS_OK) {
		ps_envelope_shape_clear(&now);
		return ps_error_set(err, rc, "out of memory");
	}
	if (e && !ps_envelope_shape_equal(&e->shape, &now)) {
		if (k->dir && k->file_bytes + k->buf.len >= k->max_file_bytes)
			rc = rotate(k, err);
		start = k->buf.len;
		if (rc == 0)
			rc = ps_envelope_render_schema(&k->buf, k->connector, k->source_db, txn, tc,
			                               &e->shape, &now, wall_ms(), err);
		if (rc != 0) {
			k->buf.len = start;
			if (k->buf.data)
				k->buf.data[start] = '\0';
			ps_envelope_shape_clear(&now);
			return rc;
		}
		/* the rows come again when consumers cannot tell their new values */
		*backfill = ps_envelope_shape_needs_rows(&e->shape, &now, tc->def);
	}
	/* the first definition seen, or a new one: what consumers know now */
	rc = shape_keep(k, t->schema, t->name, &now);
	ps_envelope_shape_clear(&now);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "out of memory");
	if (k->buf.len >= WRITE_THRESHOLD)
		return write_out(k, err);
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
		rc = shape_keep(k, def->table->schema, def->table->name, &sh);
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
	if (shape_find(k, c->table->schema, c->table->name))
		return PS_OK;
	rc = ps_envelope_shape_of(&sh, c->table, NULL);
	if (rc == PS_OK)
		rc = shape_keep(k, c->table->schema, c->table->name, &sh);
	ps_envelope_shape_clear(&sh);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

static int jsonl_state_save(ps_sink *k, char **json, ps_error *err)
{
	json_t *root = json_object(), *shapes = json_object();

	*json = NULL;
	if (!k->nshapes) {
		json_decref(root);
		json_decref(shapes);
		return PS_OK;
	}
	for (size_t i = 0; root && shapes && i < k->nshapes; i++)
		json_object_set_new(shapes, k->shapes[i].table, ps_envelope_shape_json(&k->shapes[i].shape));
	if (root && shapes)
		json_object_set_new(root, "shapes", shapes);
	*json = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(root);
	return *json ? PS_OK : ps_error_set(err, PS_ENOMEM, "out of memory");
}

static int jsonl_state_restore(ps_sink *k, const char *json, ps_error *err)
{
	json_t *root = json ? json_loads(json, 0, NULL) : NULL, *v;
	const char *table;
	int rc = PS_OK;

	json_object_foreach(json_object_get(root, "shapes"), table, v) {
		ps_envelope_shape sh;
		const char *dot = strrchr(table, '.');
		char schema[256];

		if (!dot || (size_t)(dot - table) >= sizeof(schema))
			continue;
		snprintf(schema, sizeof(schema), "%.*s", (int)(dot - table), table);
		rc = ps_envelope_shape_from_json(&sh, v);
		if (rc == PS_OK)
			rc = shape_keep(k, schema, dot + 1, &sh);
		ps_envelope_shape_clear(&sh);
		if (rc == PS_ENOMEM)
			break;
		rc = PS_OK;   /* an unreadable entry: nothing known of that table */
	}
	json_decref(root);
	return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory");
}

static int jsonl_write(ps_sink *k, const ps_txn *txn, const ps_change *c,
                       ps_error *err)
{
	size_t start;
	int rc;

	if (c->op == PS_OP_READ && c->table) {
		rc = shape_of_row(k, c, err);
		if (rc != 0)
			return rc;
	}
	if (k->dir && k->file_bytes + k->buf.len >= k->max_file_bytes) {
		rc = rotate(k, err);
		if (rc != 0)
			return rc;
	}
	start = k->buf.len;
	rc = ps_envelope_render(&k->env, &k->buf, txn, c, wall_ms(), err);
	if ((rc == 0 && k->buf.len - start > EVENT_MAX) || rc == PS_ETOOBIG)
		rc = ps_error_set(err, PS_ETOOBIG, "the '%c' event at lsn %llu is larger than %zu MiB",
		                  (char)c->op, (unsigned long long)c->lsn, EVENT_MAX >> 20);
	if (rc != 0) {
		k->buf.len = start;
		if (k->buf.data)
			k->buf.data[start] = '\0';
		return rc;
	}
	if (k->buf.len >= WRITE_THRESHOLD)
		return write_out(k, err);
	return 0;
}

static int jsonl_flush(ps_sink *k, ps_error *err)
{
	int rc = write_out(k, err);

	if (rc != 0)
		return rc;
	if (!k->dir) {
		/* Pipes and terminals cannot be synced; files behind stdout can. */
		if (fsync(k->fd) != 0 && errno != EINVAL && errno != EROFS &&
		    errno != ENOTSUP && errno != EOPNOTSUPP)
			return ps_error_set_errno(err, PS_EIO, errno, "cannot fsync %s", k->file_path);
		return 0;
	}
	if (fdatasync(k->fd) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot fdatasync %s", k->file_path);
	return 0;
}

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
	.open = jsonl_open,
	.begin = NULL,
	.write = jsonl_write,
	.commit = NULL,
	.flush = jsonl_flush,
	.checkpoint_load = NULL,
	.checkpoint_store = NULL,
	.close = jsonl_close,
	.precheck = ps__jsonl_precheck,
	.table_prepare = jsonl_table_prepare,
	.state_save = jsonl_state_save,
	.state_restore = jsonl_state_restore,
	.table_change = jsonl_table_change,
};
