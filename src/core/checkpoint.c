/*
 * checkpoint.c — persisting and checking checkpoints (see checkpoint.h for
 * the design notes).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/fault.h"
#include "core/plugin.h"
#include "core/spec_json.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"

/* --- CDC marker ----------------------------------------------------------- */

static const char *const cdc_names[] = {
	"INITIAL", "ILSTART", "ILEND", "ILUPDATE", "TFSTART", "TFEND", "TFREDO", "ERROR"
};

const char *ps_cdc_state_name(int state)
{
	if (state < PS_CDC_INITIAL || state > PS_CDC_ERROR)
		return "ERROR";
	return cdc_names[state];
}

int ps_cdc_state_parse(const char *name, int *out)
{
	for (int i = PS_CDC_INITIAL; i <= PS_CDC_ERROR; i++) {
		if (strcmp(cdc_names[i], name) == 0) {
			*out = i;
			return PS_OK;
		}
	}
	return PS_EINVAL;
}

int ps_cdc_transition(int from, int to)
{
	/* allowed[from] is a bit set of the states `from` may move to. */
	static const unsigned allowed[] = {
		[PS_CDC_INITIAL] = 1u << PS_CDC_ILSTART | 1u << PS_CDC_TFSTART,
		[PS_CDC_ILSTART] = 1u << PS_CDC_ILSTART | 1u << PS_CDC_ILEND | 1u << PS_CDC_ILUPDATE,
		[PS_CDC_ILEND] = 1u << PS_CDC_ILUPDATE | 1u << PS_CDC_TFSTART,
		[PS_CDC_ILUPDATE] = 1u << PS_CDC_ILUPDATE | 1u << PS_CDC_TFSTART | 1u << PS_CDC_TFEND,
		[PS_CDC_TFSTART] = 1u << PS_CDC_TFSTART | 1u << PS_CDC_TFEND | 1u << PS_CDC_TFREDO,
		[PS_CDC_TFEND] = 1u << PS_CDC_TFSTART | 1u << PS_CDC_TFEND,
		[PS_CDC_TFREDO] = 1u << PS_CDC_TFREDO | 1u << PS_CDC_TFSTART | 1u << PS_CDC_TFEND,
		[PS_CDC_ERROR] = 1u << PS_CDC_INITIAL,
	};

	if (from < PS_CDC_INITIAL || from > PS_CDC_ERROR || to < PS_CDC_INITIAL || to > PS_CDC_ERROR)
		return PS_CDC_ERROR;
	if (to == PS_CDC_ERROR || (allowed[from] & (1u << to)))
		return to;
	return PS_CDC_ERROR;
}

/* --- identity ------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void join_patterns(ps_buf *b, char **pats, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(b, "%s%s", i ? "," : "", pats[i]);
}

/* Each end as its plugin identifies it, without who connects: the user may
 * change freely. An end whose plugin this build lacks is its URL's identity. */
void ps_identity_from_spec(ps_identity *id, const ps_spec *spec)
{
	ps_error ignored;
	ps_buf tables;
	uint64_t h = 0xcbf29ce484222325ull;

	memset(id, 0, sizeof(*id));
	ps_error_clear(&ignored);
	ps_plugin_source_identity(ps_plugin_source_for(spec->source.parsed.scheme_name, &ignored),
	                          &spec->source.parsed, spec->source.options, id->source,
	                          sizeof(id->source));
	ps_plugin_sink_identity(ps_plugin_sink_for(spec->target.parsed.scheme_name, &ignored),
	                        &spec->target.parsed, spec->target.options, id->target,
	                        sizeof(id->target));
	ps_buf_init(&tables, sizeof(id->tables) - 1);
	ps_buf_puts(&tables, "include=");
	join_patterns(&tables, spec->include, spec->ninclude);
	ps_buf_puts(&tables, ";exclude=");
	join_patterns(&tables, spec->exclude, spec->nexclude);
	snprintf(id->tables, sizeof(id->tables), "%s", tables.data ? tables.data : "");
	ps_buf_free(&tables);
	h = fnv1a(h, id->source);
	h = fnv1a(h, "\n");
	h = fnv1a(h, id->target);
	h = fnv1a(h, "\n");
	h = fnv1a(h, id->tables);
	snprintf(id->fingerprint, sizeof(id->fingerprint), "%016llx", (unsigned long long)h);
}

int ps_checkpoint_set_text(char **slot, const char *text)
{
	char *copy = NULL;

	if (text) {
		copy = strdup(text);
		if (!copy)
			return PS_ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return PS_OK;
}

int ps_checkpoint_match(const ps_checkpoint *ck, const ps_identity *id, ps_error *err)
{
	char diff[1024] = "";
	size_t used = 0;

	if (strcmp(ck->identity.fingerprint, id->fingerprint) == 0)
		return PS_OK;
	if (strcmp(ck->identity.source, id->source) != 0)
		used += (size_t)snprintf(diff + used, sizeof(diff) - used, "; source was %s, now %s",
		                         ck->identity.source, id->source);
	if (used < sizeof(diff) && strcmp(ck->identity.target, id->target) != 0)
		used += (size_t)snprintf(diff + used, sizeof(diff) - used, "; target was %s, now %s",
		                         ck->identity.target, id->target);
	if (used < sizeof(diff) && strcmp(ck->identity.tables, id->tables) != 0)
		snprintf(diff + used, sizeof(diff) - used, "; tables were %s, now %s",
		         ck->identity.tables, id->tables);
	return ps_error_set(err, PS_ECHECKPOINT,
	                    "checkpoint of job '%s' was written for a different job definition%s. "
	                    "Restore the previous definition to resume, or set \"resume\": \"never\" "
	                    "(or delete the checkpoint) to start over from now",
	                    ck->job, diff[0] ? diff : " (fingerprint differs)");
}

/* --- state directory ------------------------------------------------------ */

int ps_state_dir_resolve(char *buf, size_t len, const char *explicit_dir, ps_error *err)
{
	const char *env = getenv("PENSTOCK_STATE_DIR");
	const char *home = getenv("HOME");

	if (explicit_dir && *explicit_dir)
		snprintf(buf, len, "%s", explicit_dir);
	else if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (home && *home)
		snprintf(buf, len, "%s/.local/state/penstock", home);
	else
		return ps_error_set(err, PS_EINVAL,
		                    "no state directory: pass --state-dir DIR or set PENSTOCK_STATE_DIR");
	return PS_OK;
}

static int mkdir_private(const char *path, ps_error *err)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return PS_OK;
	if (errno != EEXIST)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot create directory '%s'", path);
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return ps_error_set(err, PS_EIO, "'%s' exists and is not a directory", path);
	if (st.st_mode & 077) {
		if (chmod(path, 0700) != 0)
			return ps_error_set_errno(err, PS_EIO, errno, "cannot restrict '%s' to mode 0700", path);
		ps_log_warn("state directory %s was accessible to others; restricted it to 0700", path);
	}
	return PS_OK;
}

int ps_state_dir_ensure(const char *dir, ps_error *err)
{
	char path[1024];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return ps_error_set(err, PS_EINVAL, "state directory path is empty or too long");
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return ps_error_set_errno(err, PS_EIO, errno, "cannot create directory '%s'", path);
		*p = '/';
	}
	return mkdir_private(path, err);
}

void ps_checkpoint_path(char *buf, size_t len, const char *state_dir, const char *job)
{
	snprintf(buf, len, "%s/jobs/%s/checkpoint.json", state_dir, job);
}

/* --- load / store --------------------------------------------------------- */

/* How to start over without an unusable checkpoint: a file is moved away;
 * one given as text (a target's checkpoint row) is deleted where it is. */
#define TODO_FILE "move it away to start over"
#define TODO_TEXT "delete it to start over"

/* A string field into its slot ("" when absent). Every slot holds what
 * penstock put in it, so a longer text was not written by penstock: the
 * checkpoint is refused rather than cut (a cut inside a UTF-8 character
 * would not even be written back). */
static int copy_str(char *dst, size_t len, json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s && strlen(s) >= len)
		return PS_ECHECKPOINT;
	snprintf(dst, len, "%s", s ? s : "");
	return PS_OK;
}

/* The string fields of the checkpoint into ck; the name of the first that
 * does not fit, or NULL. */
static const char *copy_fields(ps_checkpoint *ck, json_t *root, json_t *ident)
{
	json_t *range = json_object_get(root, "range");
	const struct {
		char *dst;
		size_t len;
		json_t *obj;
		const char *key, *name;
	} f[] = {
		{ck->job, sizeof(ck->job), root, "job", "job"},
		{ck->identity.source, sizeof(ck->identity.source), ident, "source", "identity.source"},
		{ck->identity.target, sizeof(ck->identity.target), ident, "target", "identity.target"},
		{ck->identity.tables, sizeof(ck->identity.tables), ident, "tables", "identity.tables"},
		{ck->identity.fingerprint, sizeof(ck->identity.fingerprint), ident, "fingerprint",
		 "identity.fingerprint"},
		{ck->source_server_id, sizeof(ck->source_server_id), root, "source_server_id",
		 "source_server_id"},
		{ck->position, sizeof(ck->position), root, "position", "position"},
		{ck->updated_at, sizeof(ck->updated_at), root, "updated_at", "updated_at"},
		{ck->range_from, sizeof(ck->range_from), range, "from", "range.from"},
		{ck->range_to, sizeof(ck->range_to), range, "to", "range.to"},
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (copy_str(f[i].dst, f[i].len, f[i].obj, f[i].key) != PS_OK)
			return f[i].name;
	return NULL;
}

static int bound_from_json(ps_key_bound *b, json_t *arr)
{
	size_t n = json_array_size(arr);

	b->nvalues = 0;
	b->values = calloc(n ? n : 1, sizeof(char *));
	if (!b->values)
		return PS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *v = json_string_value(json_array_get(arr, i));
		if (!v)
			return PS_ECHECKPOINT;
		b->values[i] = strdup(v);
		if (!b->values[i])
			return PS_ENOMEM;
		b->nvalues = (int)i + 1;
	}
	return PS_OK;
}

static int table_from_json(ps_ck_table *t, json_t *o)
{
	json_t *bounds = json_object_get(o, "bounds");
	json_t *units = json_object_get(o, "units");
	json_t *parts = json_object_get(o, "parts");
	const char *schema = json_string_value(json_object_get(o, "schema"));
	const char *name = json_string_value(json_object_get(o, "name"));
	int rc;

	if (!schema || !name || !json_is_array(bounds) || !json_is_array(units))
		return PS_ECHECKPOINT;
	if (parts ? !json_is_array(parts) || json_array_size(bounds) != 0 ||
	            json_array_size(parts) != json_array_size(units) || json_array_size(units) == 0
	          : json_array_size(units) != json_array_size(bounds) + 1)
		return PS_ECHECKPOINT;

	t->schema = strdup(schema);
	t->name = strdup(name);
	t->created = json_is_true(json_object_get(o, "created"));
	t->finished = json_is_true(json_object_get(o, "finished"));
	t->estimated_rows = json_integer_value(json_object_get(o, "estimated_rows"));
	t->bounds = calloc(json_array_size(bounds) + 1, sizeof(ps_key_bound));
	t->units = calloc(json_array_size(units), sizeof(ps_ck_unit));
	if (!t->schema || !t->name || !t->bounds || !t->units)
		return PS_ENOMEM;
	for (size_t i = 0; i < json_array_size(bounds); i++) {
		t->nbounds = i + 1;
		rc = bound_from_json(&t->bounds[i], json_array_get(bounds, i));
		if (rc != PS_OK)
			return rc;
	}
	t->nunits = json_array_size(units);
	for (size_t i = 0; i < t->nunits; i++) {
		json_t *u = json_array_get(units, i);
		const char *point = json_string_value(json_object_get(u, "done_at"));

		if (point && strlen(point) >= sizeof(t->units[i].point))
			return PS_ECHECKPOINT;     /* as copy_str */
		t->units[i].done = point != NULL;
		snprintf(t->units[i].point, sizeof(t->units[i].point), "%s", point ? point : "");
		t->units[i].rows = json_integer_value(json_object_get(u, "rows"));
	}
	if (parts) {
		t->parts = calloc(t->nunits, sizeof(char *));
		if (!t->parts)
			return PS_ENOMEM;
		for (size_t i = 0; i < t->nunits; i++) {
			const char *v = json_string_value(json_array_get(parts, i));

			if (!v)
				return PS_ECHECKPOINT;
			t->parts[i] = strdup(v);
			if (!t->parts[i])
				return PS_ENOMEM;
		}
	}
	return PS_OK;
}

static json_t *table_to_json(const ps_ck_table *t)
{
	json_t *bounds = json_array(), *units = json_array();

	for (size_t i = 0; i < t->nbounds; i++) {
		json_t *b = json_array();
		for (int j = 0; j < t->bounds[i].nvalues; j++)
			json_array_append_new(b, json_string(t->bounds[i].values[j]));
		json_array_append_new(bounds, b);
	}
	for (size_t i = 0; i < t->nunits; i++) {
		const ps_ck_unit *u = &t->units[i];
		json_array_append_new(units, u->done
		                      ? json_pack("{s:s, s:I}", "done_at", u->point, "rows", (json_int_t)u->rows)
		                      : json_object());
	}
	json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:I, s:o, s:o}", "schema", t->schema,
	                      "name", t->name, "created", t->created, "finished", t->finished,
	                      "estimated_rows", (json_int_t)t->estimated_rows, "bounds", bounds,
	                      "units", units);

	if (o && t->parts) {
		json_t *parts = json_array();

		for (size_t i = 0; i < t->nunits; i++)
			json_array_append_new(parts, json_string(t->parts[i]));
		json_object_set_new(o, "parts", parts);
	}
	return o;
}

/* An engine state object into *out as text, NULL when absent. (A
 * checkpoint written before engine states existed has none; its
 * PostgreSQL slot and publication names, at its top level, are in the
 * spec anyway.) */
static int state_from_json(char **out, json_t *root, const char *key)
{
	json_t *state = json_object_get(root, key);

	*out = NULL;
	if (!json_is_object(state))
		return PS_OK;
	*out = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
	return *out ? PS_OK : PS_ENOMEM;
}

/* where names the checkpoint in messages ("'/state/jobs/x/checkpoint.json'",
 * "of job 'x' in the target"), todo says how to start over without it. */
static int from_json(ps_checkpoint *ck, json_t *root, const char *where, const char *todo,
                     ps_error *err)
{
	json_t *tables = json_object_get(root, "tables");
	json_t *ident = json_object_get(root, "identity");
	json_t *spec = json_object_get(root, "spec");
	const char *cdc = json_string_value(json_object_get(root, "cdc_state"));
	const char *too_long;

	if (json_integer_value(json_object_get(root, "format")) != 1 || !json_is_object(ident) || !cdc)
		return ps_error_set(err, PS_ECHECKPOINT,
		                    "checkpoint %s is not a penstock checkpoint of format 1; %s",
		                    where, todo);
	too_long = copy_fields(ck, root, ident);
	if (too_long)
		return ps_error_set(err, PS_ECHECKPOINT, "checkpoint %s: %s is longer than penstock "
		                    "writes it; %s", where, too_long, todo);
	if (state_from_json(&ck->source_state, root, "source_state") != PS_OK ||
	    state_from_json(&ck->target_state, root, "target_state") != PS_OK)
		return ps_error_set(err, PS_ENOMEM, "out of memory reading checkpoint %s", where);
	if (ps_cdc_state_parse(cdc, &ck->cdc_state) != PS_OK)
		return ps_error_set(err, PS_ECHECKPOINT, "checkpoint %s: unknown cdc_state '%s'; %s",
		                    where, cdc, todo);
	if (json_is_object(spec))
		ck->spec_json = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	if (json_is_array(tables) && json_array_size(tables) > 0) {
		ck->tables = calloc(json_array_size(tables), sizeof(ps_ck_table));
		if (!ck->tables)
			return ps_error_set(err, PS_ENOMEM, "out of memory reading checkpoint %s", where);
		for (size_t i = 0; i < json_array_size(tables); i++) {
			int rc;

			ck->ntables = i + 1;
			rc = table_from_json(&ck->tables[i], json_array_get(tables, i));
			if (rc != PS_OK)
				return ps_error_set(err, rc == PS_ENOMEM ? PS_ENOMEM : PS_ECHECKPOINT,
				                    "checkpoint %s: tables[%zu] is malformed; %s", where, i,
				                    todo);
		}
	}
	return PS_OK;
}

int ps_checkpoint_from_text(ps_checkpoint *out, const char *text, const char *origin,
                            ps_error *err)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return ps_error_set(err, PS_ECHECKPOINT, "checkpoint %s is unreadable (%s, line %d); %s",
		                    origin, jerr.text, jerr.line, TODO_TEXT);
	rc = from_json(out, root, origin, TODO_TEXT, err);
	json_decref(root);
	if (rc != PS_OK)
		ps_checkpoint_free(out);
	return rc;
}

int ps_checkpoint_load(ps_checkpoint *out, bool *found, const char *state_dir,
                       const char *job, ps_error *err)
{
	char path[1200], where[1210];
	json_error_t jerr;
	json_t *root = NULL;
	int rc = PS_OK;

	memset(out, 0, sizeof(*out));
	*found = false;
	ps_checkpoint_path(path, sizeof(path), state_dir, job);
	snprintf(where, sizeof(where), "'%s'", path);
	if (access(path, F_OK) != 0) {
		if (errno == ENOENT)
			return PS_OK;
		return ps_error_set_errno(err, PS_EIO, errno, "cannot read checkpoint '%s'", path);
	}
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = ps_error_set(err, PS_ECHECKPOINT,
		                  "checkpoint %s is unreadable (%s, line %d); %s",
		                  where, jerr.text, jerr.line, TODO_FILE);
		goto cleanup;
	}
	rc = from_json(out, root, where, TODO_FILE, err);
	if (rc == PS_OK)
		*found = true;
	else
		ps_checkpoint_free(out);
cleanup:
	json_decref(root);
	return rc;
}

static int write_all_fsync(int fd, const char *data, size_t len, const char *path, ps_error *err)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ps_error_set_errno(err, PS_EIO, errno, "cannot write '%s'", path);
		data += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot fsync '%s'", path);
	return PS_OK;
}

static json_t *to_json(const ps_checkpoint *ck)
{
	json_t *root = json_object();
	json_t *spec = NULL;

	json_object_set_new(root, "format", json_integer(1));
	json_object_set_new(root, "job", json_string(ck->job));
	json_object_set_new(root, "identity",
	                    json_pack("{s:s, s:s, s:s, s:s}", "fingerprint", ck->identity.fingerprint,
	                              "source", ck->identity.source, "target", ck->identity.target,
	                              "tables", ck->identity.tables));
	json_object_set_new(root, "source_server_id", json_string(ck->source_server_id));
	json_object_set_new(root, "cdc_state", json_string(ps_cdc_state_name(ck->cdc_state)));
	json_object_set_new(root, "position", json_string(ck->position));
	if (ck->range_to[0])
		json_object_set_new(root, "range", json_pack("{s:s, s:s}", "from", ck->range_from,
		                                             "to", ck->range_to));
	if (ck->source_state)
		json_object_set_new(root, "source_state", json_loads(ck->source_state, 0, NULL));
	if (ck->target_state)
		json_object_set_new(root, "target_state", json_loads(ck->target_state, 0, NULL));
	json_object_set_new(root, "updated_at", json_string(ck->updated_at));
	if (ck->spec_json)
		spec = json_loads(ck->spec_json, 0, NULL);
	if (spec)
		json_object_set_new(root, "spec", spec);
	if (ck->ntables) {
		json_t *tables = json_array();
		for (size_t i = 0; i < ck->ntables; i++)
			json_array_append_new(tables, table_to_json(&ck->tables[i]));
		json_object_set_new(root, "tables", tables);
	}
	return root;
}

static void stamp(ps_checkpoint *ck)
{
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ck->updated_at, sizeof(ck->updated_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *ps_checkpoint_to_text(ps_checkpoint *ck)
{
	json_t *root;
	char *text;

	stamp(ck);
	root = to_json(ck);
	text = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(root);
	return text;
}

int ps_checkpoint_store(ps_checkpoint *ck, const char *state_dir, ps_error *err)
{
	char dir[1100], path[1200], tmp[1250];
	json_t *root = NULL;
	char *text = NULL;
	int fd = -1, rc;

	stamp(ck);
	snprintf(dir, sizeof(dir), "%s/jobs/%s", state_dir, ck->job);
	rc = ps_state_dir_ensure(dir, err);
	if (rc != PS_OK)
		goto cleanup;
	ps_checkpoint_path(path, sizeof(path), state_dir, ck->job);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	root = to_json(ck);
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		rc = ps_error_set(err, PS_ENOMEM, "cannot serialise checkpoint");
		goto cleanup;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot create '%s'", tmp);
		goto cleanup;
	}
	rc = write_all_fsync(fd, text, strlen(text), tmp, err);
	if (rc == PS_OK)
		rc = write_all_fsync(fd, "\n", 1, tmp, err);
	if (rc != PS_OK)
		goto cleanup;
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot rename '%s' to '%s'", tmp, path);
		goto cleanup;
	}
	rc = ps_fsync_dir(dir, err);
cleanup:
	if (fd >= 0)
		close(fd);
	free(text);
	json_decref(root);
	return rc;
}

int ps_checkpoint_remove(const char *state_dir, const char *job, ps_error *err)
{
	char path[1200];

	ps_checkpoint_path(path, sizeof(path), state_dir, job);
	if (unlink(path) != 0 && errno != ENOENT)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot remove checkpoint '%s'", path);
	return PS_OK;
}

void ps_checkpoint_clear_tables(ps_checkpoint *ck)
{
	for (size_t i = 0; i < ck->ntables; i++) {
		ps_ck_table *t = &ck->tables[i];
		free(t->schema);
		free(t->name);
		for (size_t j = 0; j < t->nbounds; j++)
			ps_key_bound_clear(&t->bounds[j]);
		free(t->bounds);
		for (size_t j = 0; t->parts && j < t->nunits; j++)
			free(t->parts[j]);
		free(t->parts);
		free(t->units);
	}
	free(ck->tables);
	ck->tables = NULL;
	ck->ntables = 0;
}

void ps_checkpoint_free(ps_checkpoint *ck)
{
	free(ck->spec_json);
	ck->spec_json = NULL;
	free(ck->source_state);
	ck->source_state = NULL;
	free(ck->target_state);
	ck->target_state = NULL;
	ps_checkpoint_clear_tables(ck);
}

/* --- where it lives ------------------------------------------------------- */

int ps_checkpoint_fetch(ps_checkpoint *out, bool *found, ps_snk *snk, const char *state_dir,
                        const char *job, ps_error *err)
{
	char *text = NULL;
	char origin[200];
	int rc;

	if (!ps_snk_has_checkpoint_store(snk))
		return ps_checkpoint_load(out, found, state_dir, job, err);
	memset(out, 0, sizeof(*out));
	*found = false;
	rc = ps_snk_checkpoint_load(snk, &text, err);
	if (rc != PS_OK || !text)
		return rc;
	snprintf(origin, sizeof(origin), "of job '%s' in the target", job);
	rc = ps_checkpoint_from_text(out, text, origin, err);
	free(text);
	if (rc == PS_OK)
		*found = true;
	return rc;
}

int ps_checkpoint_commit(ps_checkpoint *ck, ps_snk *snk, const char *state_dir, ps_error *err)
{
	char *text = NULL;
	int rc;

	/* The sink's own state as of the data this checkpoint covers. */
	rc = ps_snk_state_save(snk, &text, err);
	if (rc != PS_OK)
		return rc;
	if (text) {
		free(ck->target_state);
		ck->target_state = text;
	}

	if (!ps_snk_has_checkpoint_store(snk)) {
		rc = ps_snk_flush(snk, err);
		if (rc == PS_OK)
			rc = ps_fault_hit("checkpoint.after_flush", err);
		return rc == PS_OK ? ps_checkpoint_store(ck, state_dir, err) : rc;
	}
	text = ps_checkpoint_to_text(ck);
	if (!text)
		return ps_error_set(err, PS_ENOMEM, "cannot serialise checkpoint");
	rc = ps_snk_checkpoint_store(snk, text, err);
	free(text);
	return rc == PS_OK ? ps_snk_flush(snk, err) : rc;
}

int ps_checkpoint_discard(ps_snk *snk, const char *state_dir, const char *job, ps_error *err)
{
	int rc = PS_OK;

	if (ps_snk_has_checkpoint_store(snk)) {
		rc = ps_snk_checkpoint_delete(snk, err);
		if (rc == PS_OK)
			rc = ps_snk_flush(snk, err);
		/* a checkpoint that came back after a crash of the target would
		 * resume a job whose slot is gone or made anew */
		if (rc == PS_OK)
			rc = ps_snk_make_durable(snk, err);
	}
	return rc == PS_OK ? ps_checkpoint_remove(state_dir, job, err) : rc;
}
