/*
 * test_jsonl.c — the JSON-lines sink (src/sink/jsonl/jsonl.c).
 *
 * Every test drives the sink through its ops table, on a fresh mkdtemp
 * directory, then reads the files back and parses every line with jansson.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "penstock/change.h"
#include "penstock/sink.h"
#include "penstock/tabledef.h"

extern const ps_sink_ops ps_sink_jsonl;

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fixture {
	char dir[64];       /* mkdtemp directory */
	char out[128];      /* dir/out: created by the sink */
	char url[256];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/penstock-jsonl-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->out, sizeof(f->out), "%s/out", f->dir);
	snprintf(f->url, sizeof(f->url), "jsonl://%s", f->out);
	umask(022);
	*state = f;
	return 0;
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char child[512];

	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		remove_tree(child);
	}
	closedir(d);
	rmdir(path);
}

static int teardown(void **state)
{
	fixture *f = *state;

	remove_tree(f->dir);
	free(f);
	return 0;
}

static int sink_open(ps_sink **k, const char *url, const char *job, ps_error *err)
{
	ps_sink_config cfg = {
		.job_name = job,
		.url = url,
		.password = NULL,
		.connector = "postgresql",
		.source_db = "app",
	};
	char url_copy[512], job_copy[64], conn[32] = "postgresql", db[8] = "app";
	int rc;

	/* The config is not kept alive: hand the sink copies, then wipe them. */
	snprintf(url_copy, sizeof(url_copy), "%s", url);
	snprintf(job_copy, sizeof(job_copy), "%s", job);
	cfg.url = url_copy;
	cfg.job_name = job_copy;
	cfg.connector = conn;
	cfg.source_db = db;
	ps_error_clear(err);
	rc = ps_sink_jsonl.open(k, &cfg, err);
	memset(url_copy, 'X', sizeof(url_copy) - 1);
	memset(job_copy, 'X', sizeof(job_copy) - 1);
	memset(conn, 'X', sizeof(conn) - 1);
	memset(db, 'X', sizeof(db) - 1);
	return rc;
}

static ps_value vtext(const char *s)
{
	ps_value v = {PS_VALUE_TEXT, (uint32_t)strlen(s), s};
	return v;
}

static const ps_value VNULL = {PS_VALUE_NULL, 0, NULL};
static const ps_value VUNCH = {PS_VALUE_UNCHANGED, 0, NULL};

enum { C_ID, C_NAME, C_PRICE, C_ACTIVE, C_AMOUNT, C_BIG, C_NOTE, C_WEIRD, NCOLS };

static ps_table *orders_table(void)
{
	ps_table *t = ps_table_new(16384, NCOLS);

	assert_non_null(t);
	assert_int_equal(ps_table_set_names(t, "public", "orders"), 0);
	assert_int_equal(ps_table_set_column(t, C_ID, "id", 20, -1, PS_TYPE_INTEGER, true), 0);
	assert_int_equal(ps_table_set_column(t, C_NAME, "name", 25, -1, PS_TYPE_TEXT, false), 0);
	assert_int_equal(ps_table_set_column(t, C_PRICE, "price", 701, -1, PS_TYPE_FLOAT, false), 0);
	assert_int_equal(ps_table_set_column(t, C_ACTIVE, "active", 16, -1, PS_TYPE_BOOL, false), 0);
	assert_int_equal(ps_table_set_column(t, C_AMOUNT, "amount", 1700, -1, PS_TYPE_NUMERIC, false), 0);
	assert_int_equal(ps_table_set_column(t, C_BIG, "big_col", 25, -1, PS_TYPE_TEXT, false), 0);
	assert_int_equal(ps_table_set_column(t, C_NOTE, "note", 25, -1, PS_TYPE_TEXT, false), 0);
	assert_int_equal(ps_table_set_column(t, C_WEIRD, "we\"ird\ncol", 25, -1, PS_TYPE_TEXT, false), 0);
	return t;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *data;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	data = malloc((size_t)n + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
	data[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return data;
}

/* Parses every line of path, appending the objects to lines. Every line
 * must be a whole JSON object ending in '\n'. Returns how many. */
static size_t read_lines(const char *path, json_t *lines)
{
	size_t len, count = 0;
	char *data = read_file(path, &len);
	char *p = data;

	assert_true(len == 0 || data[len - 1] == '\n');
	while (p < data + len) {
		char *nl = memchr(p, '\n', (size_t)(data + len - p));
		json_error_t jerr;
		json_t *obj;

		assert_non_null(nl);
		obj = json_loadb(p, (size_t)(nl - p), 0, &jerr);
		if (!obj)
			fail_msg("%s: line %zu does not parse: %s", path, count + 1, jerr.text);
		assert_true(json_is_object(obj));
		json_array_append_new(lines, obj);
		count++;
		p = nl + 1;
	}
	free(data);
	return count;
}

static void file_path(char *buf, size_t len, const char *dir, const char *job, int seq)
{
	snprintf(buf, len, "%s/%s-%06d.jsonl", dir, job, seq);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void write_ok(ps_sink *k, const ps_txn *txn, ps_change *c)
{
	ps_error err;

	assert_non_null(c);
	ps_error_clear(&err);
	if (ps_sink_jsonl.write(k, txn, c, &err) != 0)
		fail_msg("write: %s", err.message);
	ps_change_free(c);
}

static void flush_ok(ps_sink *k)
{
	ps_error err;

	ps_error_clear(&err);
	if (ps_sink_jsonl.flush(k, &err) != 0)
		fail_msg("flush: %s", err.message);
}

/* ---- assertions on one envelope ------------------------------------------ */

static const char *sget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("'%s' is not a string", key);
	return json_string_value(v);
}

static json_int_t iget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("'%s' is not an integer", key);
	return json_integer_value(v);
}

static void check_source(json_t *ev, const char *schema, const char *table,
                         json_int_t lsn, json_int_t xid, json_int_t ts_ms)
{
	json_t *src = json_object_get(ev, "source");

	assert_true(json_is_object(src));
	assert_int_equal(json_object_size(src), 7);
	assert_string_equal(sget(src, "connector"), "postgresql");
	assert_string_equal(sget(src, "db"), "app");
	if (schema) {
		assert_string_equal(sget(src, "schema"), schema);
		assert_string_equal(sget(src, "table"), table);
	} else {
		assert_true(json_is_null(json_object_get(src, "schema")));
		assert_true(json_is_null(json_object_get(src, "table")));
	}
	assert_int_equal(iget(src, "lsn"), lsn);
	assert_int_equal(iget(src, "txId"), xid);
	assert_int_equal(iget(src, "ts_ms"), ts_ms);
}

/* op, ts_ms within [t0, t1], and exactly the keys expected. */
static void check_top(json_t *ev, const char *op, int64_t t0, int64_t t1, size_t nkeys)
{
	json_int_t ts = iget(ev, "ts_ms");

	assert_string_equal(sget(ev, "op"), op);
	assert_true(ts >= t0 && ts <= t1);
	assert_true(json_object_get(ev, "before") != NULL);
	assert_true(json_object_get(ev, "after") != NULL);
	assert_int_equal(json_object_size(ev), nkeys);
}

static void check_real(json_t *o, const char *key, double want)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_real(v))
		fail_msg("'%s' is not a real number", key);
	assert_true(json_real_value(v) == want);
}

/* ---- the envelope -------------------------------------------------------- */

#define NUM40 "1234567890123456789012345.678901234567890"
#define TEXT_HARD "He said \"hi\"\\\nline 2\t\xF0\x9F\x98\x80 end"

/* Writes the fixed sequence of events checked by test_envelope. */
static void write_envelope_events(ps_sink *k, ps_table *t)
{
	ps_txn txn = {.xid = 745, .commit_time_us = 1763700000100999LL, .reprocessing = false};
	ps_txn rtxn = {.xid = 746, .commit_time_us = 1763700000200000LL, .reprocessing = true};
	ps_value v[NCOLS], old[NCOLS];
	ps_change *c;

	/* 0: insert with every kind of value */
	v[C_ID] = vtext("1"); v[C_NAME] = vtext(TEXT_HARD); v[C_PRICE] = vtext("1.5");
	v[C_ACTIVE] = vtext("t"); v[C_AMOUNT] = vtext(NUM40); v[C_BIG] = vtext("big");
	v[C_NOTE] = VNULL; v[C_WEIRD] = vtext("w");
	write_ok(k, &txn, ps_change_new(PS_OP_INSERT, t, v, NULL, false, 23456789));

	/* 1: update, old key only ('K'), big_col unchanged TOAST */
	for (int i = 0; i < NCOLS; i++)
		old[i] = VNULL;
	old[C_ID] = vtext("1");
	v[C_NAME] = vtext("n2"); v[C_PRICE] = vtext("NaN"); v[C_ACTIVE] = vtext("f");
	v[C_AMOUNT] = vtext("NaN"); v[C_BIG] = VUNCH; v[C_NOTE] = vtext("");
	write_ok(k, &txn, ps_change_new(PS_OP_UPDATE, t, v, old, true, 23456790));

	/* 2: update with the full old tuple ('O'); odd floats and integers */
	for (int i = 0; i < NCOLS; i++)
		old[i] = v[i];
	old[C_BIG] = vtext("big");
	v[C_ID] = vtext("-42"); v[C_PRICE] = vtext("-2e-05"); v[C_ACTIVE] = vtext("x");
	v[C_BIG] = vtext("big2"); v[C_NOTE] = VNULL;
	write_ok(k, &txn, ps_change_new(PS_OP_UPDATE, t, v, old, false, 23456791));

	/* 3: delete with the old key */
	for (int i = 0; i < NCOLS; i++)
		old[i] = VNULL;
	old[C_ID] = vtext("-42");
	write_ok(k, &txn, ps_change_new(PS_OP_DELETE, t, NULL, old, true, 23456792));

	/* 4: truncate, cascade */
	c = ps_change_new(PS_OP_TRUNCATE, t, NULL, NULL, false, 23456793);
	assert_non_null(c);
	c->truncate_flags = PS_TRUNCATE_CASCADE;
	write_ok(k, &txn, c);

	/* 5: logical message with a NUL and a high byte, reprocessing */
	write_ok(k, &rtxn, ps_change_new_message(true, "pfx", "hi\0there\xff", 9, 23456794));

	/* 6: snapshot read; "007" and "1e+100"; "Infinity" in an integer column
	 * must stay a string */
	v[C_ID] = vtext("007"); v[C_PRICE] = vtext("1e+100"); v[C_ACTIVE] = vtext("t");
	write_ok(k, &rtxn, ps_change_new(PS_OP_READ, t, v, NULL, false, 0));
	v[C_ID] = vtext("0"); v[C_PRICE] = vtext("-Infinity"); v[C_AMOUNT] = vtext("-0.5");
	write_ok(k, &rtxn, ps_change_new(PS_OP_READ, t, v, NULL, false, 0));
}

static void check_insert(json_t *ev, int64_t t0, int64_t t1)
{
	json_t *after = json_object_get(ev, "after");

	check_top(ev, "c", t0, t1, 5);
	assert_true(json_is_null(json_object_get(ev, "before")));
	check_source(ev, "public", "orders", 23456789, 745, 1763700000100);
	assert_int_equal(json_object_size(after), NCOLS);
	assert_int_equal(iget(after, "id"), 1);
	assert_string_equal(sget(after, "name"), TEXT_HARD);
	check_real(after, "price", 1.5);
	assert_true(json_is_true(json_object_get(after, "active")));
	assert_string_equal(sget(after, "amount"), NUM40);
	assert_string_equal(sget(after, "big_col"), "big");
	assert_true(json_is_null(json_object_get(after, "note")));
	assert_string_equal(sget(after, "we\"ird\ncol"), "w");
}

static void check_update_key(json_t *ev, int64_t t0, int64_t t1)
{
	json_t *before = json_object_get(ev, "before");
	json_t *after = json_object_get(ev, "after");
	json_t *unch = json_object_get(ev, "unchanged");

	check_top(ev, "u", t0, t1, 6);
	check_source(ev, "public", "orders", 23456790, 745, 1763700000100);
	assert_int_equal(json_object_size(before), 1);
	assert_int_equal(iget(before, "id"), 1);
	assert_int_equal(json_object_size(after), NCOLS - 1);
	assert_null(json_object_get(after, "big_col"));
	assert_string_equal(sget(after, "price"), "NaN");
	assert_true(json_is_false(json_object_get(after, "active")));
	assert_string_equal(sget(after, "amount"), "NaN");
	assert_string_equal(sget(after, "note"), "");
	assert_true(json_is_array(unch));
	assert_int_equal(json_array_size(unch), 1);
	assert_string_equal(json_string_value(json_array_get(unch, 0)), "big_col");
}

static void check_update_full(json_t *ev, int64_t t0, int64_t t1)
{
	json_t *before = json_object_get(ev, "before");
	json_t *after = json_object_get(ev, "after");

	check_top(ev, "u", t0, t1, 5);
	check_source(ev, "public", "orders", 23456791, 745, 1763700000100);
	assert_int_equal(json_object_size(before), NCOLS);
	assert_int_equal(iget(before, "id"), 1);
	assert_string_equal(sget(before, "name"), "n2");
	assert_string_equal(sget(before, "price"), "NaN");
	assert_string_equal(sget(before, "big_col"), "big");
	assert_string_equal(sget(before, "note"), "");
	assert_int_equal(json_object_size(after), NCOLS);
	assert_int_equal(iget(after, "id"), -42);
	check_real(after, "price", -2e-05);
	assert_string_equal(sget(after, "active"), "x");
	assert_string_equal(sget(after, "big_col"), "big2");
	assert_true(json_is_null(json_object_get(after, "note")));
}

static void check_delete_truncate_message(json_t *lines, int64_t t0, int64_t t1)
{
	json_t *ev = json_array_get(lines, 3), *tr, *msg;

	check_top(ev, "d", t0, t1, 5);
	check_source(ev, "public", "orders", 23456792, 745, 1763700000100);
	assert_int_equal(json_object_size(json_object_get(ev, "before")), 1);
	assert_int_equal(iget(json_object_get(ev, "before"), "id"), -42);
	assert_true(json_is_null(json_object_get(ev, "after")));

	ev = json_array_get(lines, 4);
	check_top(ev, "t", t0, t1, 6);
	check_source(ev, "public", "orders", 23456793, 745, 1763700000100);
	assert_true(json_is_null(json_object_get(ev, "before")));
	assert_true(json_is_null(json_object_get(ev, "after")));
	tr = json_object_get(ev, "truncate");
	assert_int_equal(json_object_size(tr), 2);
	assert_true(json_is_true(json_object_get(tr, "cascade")));
	assert_true(json_is_false(json_object_get(tr, "restart_identity")));

	ev = json_array_get(lines, 5);
	check_top(ev, "m", t0, t1, 7);
	check_source(ev, NULL, NULL, 23456794, 746, 1763700000200);
	assert_true(json_is_null(json_object_get(ev, "before")));
	assert_true(json_is_null(json_object_get(ev, "after")));
	assert_true(json_is_true(json_object_get(ev, "reprocessing")));
	msg = json_object_get(ev, "message");
	assert_int_equal(json_object_size(msg), 3);
	assert_string_equal(sget(msg, "prefix"), "pfx");
	assert_string_equal(sget(msg, "content"), "aGkAdGhlcmX/");
	assert_true(json_is_true(json_object_get(msg, "transactional")));
}

static void check_reads(json_t *lines, int64_t t0, int64_t t1)
{
	json_t *ev = json_array_get(lines, 6), *after;

	check_top(ev, "r", t0, t1, 6);
	check_source(ev, "public", "orders", 0, 746, 1763700000200);
	assert_true(json_is_true(json_object_get(ev, "reprocessing")));
	after = json_object_get(ev, "after");
	assert_string_equal(sget(after, "id"), "007");
	check_real(after, "price", 1e100);
	assert_true(json_is_true(json_object_get(after, "active")));

	ev = json_array_get(lines, 7);
	after = json_object_get(ev, "after");
	assert_int_equal(iget(after, "id"), 0);
	assert_string_equal(sget(after, "price"), "-Infinity");
	assert_string_equal(sget(after, "amount"), "-0.5");
}

static void test_envelope(void **state)
{
	fixture *f = *state;
	ps_table *t = orders_table();
	ps_sink *k = NULL;
	ps_error err;
	json_t *lines = json_array();
	char path[256], *raw;
	size_t len;
	int64_t t0, t1;
	struct stat st;

	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	t0 = now_ms();
	write_envelope_events(k, t);
	flush_ok(k);
	t1 = now_ms();
	ps_sink_jsonl.close(k);
	ps_table_unref(t);

	assert_int_equal(stat(f->out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	file_path(path, sizeof(path), f->out, "orders", 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(read_lines(path, lines), 8);
	check_insert(json_array_get(lines, 0), t0, t1);
	check_update_key(json_array_get(lines, 1), t0, t1);
	check_update_full(json_array_get(lines, 2), t0, t1);
	check_delete_truncate_message(lines, t0, t1);
	check_reads(lines, t0, t1);

	/* The raw text: numbers bare, key order of the envelope, no "unchanged"
	 * value anywhere. */
	raw = read_file(path, &len);
	assert_non_null(strstr(raw, "{\"before\":null,\"after\":{\"id\":1,\"name\":"));
	assert_non_null(strstr(raw, "\"price\":1.5,\"active\":true,\"amount\":\"" NUM40 "\""));
	assert_non_null(strstr(raw, "\"price\":-2e-05"));
	assert_non_null(strstr(raw, "\"price\":1e+100"));
	assert_non_null(strstr(raw, ",\"source\":{\"connector\":\"postgresql\",\"db\":\"app\","
	                            "\"schema\":\"public\",\"table\":\"orders\",\"lsn\":23456789,"
	                            "\"txId\":745,\"ts_ms\":1763700000100}}\n"));
	free(raw);
	json_decref(lines);
}

/* ---- rotation ------------------------------------------------------------ */

static ps_change *small_insert(ps_table *t, int id, const char *pad)
{
	char idtext[16];
	ps_value v[NCOLS];

	snprintf(idtext, sizeof(idtext), "%d", id);
	for (int i = 0; i < NCOLS; i++)
		v[i] = VNULL;
	v[C_ID] = vtext(idtext);
	v[C_NAME] = vtext(pad);
	return ps_change_new(PS_OP_INSERT, t, v, NULL, false, (uint64_t)id + 1000);
}

static void test_rotation(void **state)
{
	fixture *f = *state;
	ps_table *t = orders_table();
	ps_txn txn = {.xid = 1, .commit_time_us = 0};
	ps_sink *k = NULL;
	ps_error err;
	char url[512], path[256];
	int nfiles = 0, next_id = 0;
	const int nevents = 200;

	snprintf(url, sizeof(url), "%s?max_file_bytes=1024", f->url);
	assert_int_equal(sink_open(&k, url, "orders", &err), 0);
	for (int i = 0; i < nevents; i++)
		write_ok(k, &txn, small_insert(t, i, "padding padding padding"));
	flush_ok(k);
	ps_sink_jsonl.close(k);
	ps_table_unref(t);

	for (int seq = 1;; seq++) {
		json_t *lines = json_array();
		struct stat st;
		size_t n;

		file_path(path, sizeof(path), f->out, "orders", seq);
		if (!exists(path)) {
			json_decref(lines);
			break;
		}
		nfiles++;
		assert_int_equal(stat(path, &st), 0);
		n = read_lines(path, lines);
		assert_true(n > 0);
		/* Rotation happens once a file reaches the limit, between lines:
		 * every file but the last is at least 1024 bytes, and no file
		 * goes past the limit by more than one line. */
		assert_true(st.st_size < 1024 + 400);
		for (size_t i = 0; i < n; i++) {
			json_t *after = json_object_get(json_array_get(lines, i), "after");
			assert_int_equal(iget(after, "id"), next_id);
			next_id++;
		}
		if (next_id < nevents)
			assert_true(st.st_size >= 1024);
		json_decref(lines);
	}
	assert_true(nfiles >= 10);
	assert_int_equal(next_id, nevents);
}

/* ---- reopen after a crash ------------------------------------------------ */

static void append_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_reopen_partial_line(void **state)
{
	fixture *f = *state;
	ps_table *t = orders_table();
	ps_txn txn = {.xid = 1, .commit_time_us = 0};
	ps_sink *k = NULL;
	ps_error err;
	char p1[256], p2[256], p3[256], p4[256], other[256];
	off_t whole;
	json_t *lines = json_array();

	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	for (int i = 0; i < 3; i++)
		write_ok(k, &txn, small_insert(t, i, "x"));
	flush_ok(k);
	ps_sink_jsonl.close(k);
	file_path(p1, sizeof(p1), f->out, "orders", 1);
	file_path(p2, sizeof(p2), f->out, "orders", 2);
	file_path(p3, sizeof(p3), f->out, "orders", 3);
	file_path(p4, sizeof(p4), f->out, "orders", 4);
	whole = file_size(p1);

	/* A crash mid-write, and files that are not ours. */
	append_text(p1, "{\"before\":null,\"after\":{\"id\":");
	snprintf(other, sizeof(other), "%s/other-000009.jsonl", f->out);
	close(open(other, O_WRONLY | O_CREAT, 0640));
	snprintf(other, sizeof(other), "%s/orders-000077.jsonl.tmp", f->out);
	close(open(other, O_WRONLY | O_CREAT, 0640));
	snprintf(other, sizeof(other), "%s/orders-77.jsonl", f->out);
	close(open(other, O_WRONLY | O_CREAT, 0640));

	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	assert_int_equal(file_size(p1), whole);
	assert_true(exists(p2));
	assert_int_equal(file_size(p2), 0);
	write_ok(k, &txn, small_insert(t, 3, "y"));
	flush_ok(k);
	ps_sink_jsonl.close(k);
	assert_int_equal(read_lines(p1, lines), 3);
	assert_int_equal(read_lines(p2, lines), 1);
	assert_int_equal(iget(json_object_get(json_array_get(lines, 3), "after"), "id"), 3);

	/* A clean reopen starts a new file and leaves the old one alone; a last
	 * file holding nothing but a partial line is cut to empty. */
	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	ps_sink_jsonl.close(k);
	assert_true(exists(p3));
	assert_int_equal(read_lines(p2, lines), 1);
	append_text(p3, "{\"partial");
	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	ps_sink_jsonl.close(k);
	assert_int_equal(file_size(p3), 0);
	assert_true(exists(p4));
	ps_table_unref(t);
	json_decref(lines);
}

/* ---- bad URLs and directories -------------------------------------------- */

static void expect_open_error(const char *url, int code, const char *needle)
{
	ps_sink *k = (ps_sink *)(uintptr_t)1;
	ps_error err;
	int rc = sink_open(&k, url, "orders", &err);

	if (rc != code)
		fail_msg("%s: got %d (%s), want %d", url, rc, err.message, code);
	assert_null(k);
	assert_int_equal(err.code, code);
	if (!strstr(err.message, needle))
		fail_msg("%s: message '%s' does not mention '%s'", url, err.message, needle);
}

static void test_bad_urls(void **state)
{
	fixture *f = *state;
	char url[512], path[256];
	ps_sink *k = NULL;
	ps_error err;

	snprintf(url, sizeof(url), "%s?max_file_bytes=1023", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?max_file_bytes=1099511627777", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?max_file_bytes=99999999999999999999999", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?max_file_bytes=abc", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?max_file_bytes=-2048", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?max_file_bytes=%%202048", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?max_file_bytes=2048x", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?max_file_bytes=", f->url);
	expect_open_error(url, PS_EINVAL, "max_file_bytes");
	snprintf(url, sizeof(url), "%s?compress=gzip", f->url);
	expect_open_error(url, PS_EINVAL, "compress");
	snprintf(url, sizeof(url), "%s?max_file_bytes=2048&rotate=daily", f->url);
	expect_open_error(url, PS_EINVAL, "rotate");
	expect_open_error("postgresql://db1/app", PS_EINVAL, "jsonl");
	assert_false(exists(f->out)); /* nothing was created by a refused open */

	/* The parent must exist; the error names the path. */
	snprintf(url, sizeof(url), "jsonl://%s/missing/out", f->dir);
	snprintf(path, sizeof(path), "%s/missing/out", f->dir);
	expect_open_error(url, PS_EIO, path);
	/* A file where the directory should be. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	close(open(path, O_WRONLY | O_CREAT, 0640));
	snprintf(url, sizeof(url), "jsonl://%s", path);
	expect_open_error(url, PS_EINVAL, path);

	/* The bounds themselves are accepted. */
	snprintf(url, sizeof(url), "%s?max_file_bytes=1024", f->url);
	assert_int_equal(sink_open(&k, url, "orders", &err), 0);
	ps_sink_jsonl.close(k);
	snprintf(url, sizeof(url), "%s?max_file_bytes=1099511627776", f->url);
	assert_int_equal(sink_open(&k, url, "orders", &err), 0);
	ps_sink_jsonl.close(k);
	ps_sink_jsonl.close(NULL);
}

/* ---- standard output ----------------------------------------------------- */

/* Points fd 1 at path for the duration of fn. */
static void with_stdout(const char *path, int flags, void (*fn)(void))
{
	int saved, fd;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, flags, 0640);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	fn();
	assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
	close(saved);
}

static void stdout_events(void)
{
	ps_table *t = orders_table();
	ps_txn txn = {.xid = 9, .commit_time_us = 5000};
	ps_sink *k = NULL;
	ps_error err;

	assert_int_equal(sink_open(&k, "jsonl:-", "orders", &err), 0);
	write_ok(k, &txn, small_insert(t, 1, "a"));
	write_ok(k, &txn, small_insert(t, 2, "b"));
	flush_ok(k);
	ps_sink_jsonl.close(k);
	ps_table_unref(t);
}

static void stdout_full(void)
{
	ps_table *t = orders_table();
	ps_txn txn = {.xid = 9, .commit_time_us = 5000};
	ps_sink *k = NULL;
	ps_error err;

	assert_int_equal(sink_open(&k, "jsonl:-", "orders", &err), 0);
	write_ok(k, &txn, small_insert(t, 1, "a"));
	assert_int_equal(ps_sink_jsonl.flush(k, &err), PS_EIO);
	assert_int_equal(err.sys_errno, ENOSPC);
	assert_non_null(strstr(err.message, "standard output"));
	ps_sink_jsonl.close(k);
	ps_table_unref(t);
}

static void test_stdout(void **state)
{
	fixture *f = *state;
	char path[256];
	json_t *lines = json_array();

	snprintf(path, sizeof(path), "%s/stdout.jsonl", f->dir);
	with_stdout(path, O_WRONLY | O_CREAT | O_TRUNC, stdout_events);
	assert_int_equal(read_lines(path, lines), 2);
	assert_int_equal(iget(json_object_get(json_array_get(lines, 1), "after"), "id"), 2);
	check_source(json_array_get(lines, 0), "public", "orders", 1001, 9, 5);
	json_decref(lines);
	/* fd 1 must still be open and usable after close. */
	assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);

	if (exists("/dev/full"))
		with_stdout("/dev/full", O_WRONLY, stdout_full);
}

/* ---- limits and the table cache ------------------------------------------ */

static void test_too_big(void **state)
{
	fixture *f = *state;
	ps_table *t = orders_table();
	ps_txn txn = {.xid = 1, .commit_time_us = 0};
	size_t big_len = ((size_t)64 << 20) + ((size_t)64 << 10); /* past EVENT_MAX, within the buffer */
	char *big = malloc(big_len + 1);
	ps_sink *k = NULL;
	ps_change *c;
	ps_error err;
	char path[256];
	json_t *lines = json_array();

	assert_non_null(big);
	memset(big, 'a', big_len);
	big[big_len] = '\0';
	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	write_ok(k, &txn, small_insert(t, 1, "before"));
	c = small_insert(t, 2, big);
	free(big);
	assert_int_equal(ps_sink_jsonl.write(k, &txn, c, &err), PS_ETOOBIG);
	assert_non_null(strstr(err.message, "larger than"));
	ps_change_free(c);
	write_ok(k, &txn, small_insert(t, 3, "after"));
	flush_ok(k);
	ps_sink_jsonl.close(k);
	ps_table_unref(t);

	file_path(path, sizeof(path), f->out, "orders", 1);
	assert_int_equal(read_lines(path, lines), 2);
	assert_int_equal(iget(json_object_get(json_array_get(lines, 0), "after"), "id"), 1);
	assert_int_equal(iget(json_object_get(json_array_get(lines, 1), "after"), "id"), 3);
	json_decref(lines);
}

/* More table definitions than the name cache holds, freed by their owner
 * while the sink still renders them: names must always be the right ones. */
static void test_many_tables(void **state)
{
	fixture *f = *state;
	ps_txn txn = {.xid = 1, .commit_time_us = 0};
	ps_table *tables[80];
	ps_sink *k = NULL;
	ps_error err;
	char path[256], name[32];
	json_t *lines = json_array();
	int n = 0;

	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	for (int i = 0; i < 80; i++) {
		tables[i] = ps_table_new((uint32_t)i, 1);
		assert_non_null(tables[i]);
		snprintf(name, sizeof(name), "t%d", i);
		assert_int_equal(ps_table_set_names(tables[i], "s", name), 0);
		snprintf(name, sizeof(name), "c%d", i);
		assert_int_equal(ps_table_set_column(tables[i], 0, name, 20, -1, PS_TYPE_INTEGER, true), 0);
	}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 80; i++) {
			ps_value v = vtext("5");
			write_ok(k, &txn, ps_change_new(PS_OP_INSERT, tables[(i * 7 + round) % 80],
			                                &v, NULL, false, 1));
		}
	}
	for (int i = 0; i < 80; i++)
		ps_table_unref(tables[i]);
	flush_ok(k);
	ps_sink_jsonl.close(k);

	file_path(path, sizeof(path), f->out, "orders", 1);
	assert_int_equal(read_lines(path, lines), 240);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 80; i++) {
			json_t *ev = json_array_get(lines, (size_t)n++);
			int ti = (i * 7 + round) % 80;
			char want[32];

			snprintf(want, sizeof(want), "t%d", ti);
			assert_string_equal(sget(json_object_get(ev, "source"), "table"), want);
			snprintf(want, sizeof(want), "c%d", ti);
			assert_int_equal(iget(json_object_get(ev, "after"), want), 5);
		}
	}
	json_decref(lines);
}

/* ---- schema changes (issue 15) ------------------------------------------ */

/* t(id, a, b) as version 1 and t(id, b renamed c, d added with a fill) as
 * version 2, with their ordinals. */
static ps_table_def *shape_def(int version)
{
	static const char *const names[2][3] = {{"id", "a", "b"}, {"id", "c", "d"}};
	static const int ords[2][3] = {{1, 2, 3}, {1, 3, 4}};
	ps_table_def *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->table = ps_table_new(16500, 3);
	assert_int_equal(ps_table_set_names(d->table, "public", "t"), 0);
	d->engine = strdup("postgresql");
	d->columns = calloc(3, sizeof(ps_column_def));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ps_table_set_column(d->table, i, names[version - 1][i], i ? 25 : 23, -1,
		                                     i ? PS_TYPE_TEXT : PS_TYPE_INTEGER, i == 0), 0);
		d->columns[i].sql_type = strdup(i ? "text" : "integer");
		d->columns[i].ordinal = ords[version - 1][i];
	}
	if (version == 2) {
		d->columns[2].fill = PS_FILL_VALUE;
		d->columns[2].fill_value = strdup("x");
	}
	return d;
}

static void test_schema_change_event(void **state)
{
	fixture *f = *state;
	ps_table_def *v1 = shape_def(1), *v2 = shape_def(2);
	ps_table_options opt = {.create = PS_CREATE_IF_MISSING};
	ps_table_change tc1 = {.table = v1->table, .def = v1, .what = PS_TC_FIRST, .lsn = 90};
	ps_table_change tc2 = {.table = v2->table, .previous = v1->table, .def = v2,
	                       .what = PS_TC_COLUMNS, .lsn = 100};
	ps_txn txn = {.xid = 5, .commit_time_us = 1700000000000000LL};
	ps_value row[3] = {vtext("1"), vtext("c1"), vtext("d1")};
	ps_sink *k = NULL, *k2 = NULL;
	ps_error err;
	json_t *lines = json_array(), *ev, *changes;
	char path[256], *state_json = NULL;
	bool created = true, backfill = true;
	ps_change *c;

	assert_int_equal(sink_open(&k, f->url, "orders", &err), 0);
	/* a table about to be loaded: its shape is what consumers know */
	assert_int_equal(ps_sink_jsonl.table_prepare(k, v1, &opt, &created, &err), 0);
	assert_false(created);
	/* the same definition in the stream: no event */
	assert_int_equal(ps_sink_jsonl.table_change(k, &txn, &tc1, &opt, &backfill, &err), 0);
	assert_false(backfill);
	/* another one: an event before the first change that has it */
	assert_int_equal(ps_sink_jsonl.table_change(k, &txn, &tc2, &opt, &backfill, &err), 0);
	assert_false(backfill);             /* the added column's older value is known */
	c = ps_change_new(PS_OP_INSERT, v2->table, row, NULL, false, 101);
	write_ok(k, &txn, c);
	flush_ok(k);
	assert_int_equal(ps_sink_jsonl.state_save(k, &state_json, &err), 0);
	assert_non_null(strstr(state_json, "\"public.t\""));
	ps_sink_jsonl.close(k);

	file_path(path, sizeof(path), f->out, "orders", 1);
	assert_int_equal(read_lines(path, lines), 2);
	ev = json_array_get(lines, 0);
	assert_string_equal(sget(ev, "op"), "s");
	assert_true(json_is_null(json_object_get(ev, "before")));
	check_source(ev, "public", "t", 100, 5, 1700000000000LL);
	changes = json_object_get(json_object_get(ev, "schema"), "changes");
	assert_int_equal(json_array_size(changes), 3);
	assert_string_equal(sget(json_array_get(changes, 0), "change"), "renamed");
	assert_string_equal(sget(json_array_get(changes, 0), "column"), "c");
	assert_string_equal(sget(json_array_get(changes, 0), "from"), "b");
	assert_string_equal(sget(json_array_get(changes, 1), "change"), "added");
	assert_string_equal(sget(json_array_get(changes, 1), "fill"), "x");
	assert_string_equal(sget(json_array_get(changes, 2), "change"), "dropped");
	assert_string_equal(sget(json_array_get(changes, 2), "column"), "a");
	assert_int_equal(json_array_size(json_object_get(json_object_get(ev, "schema"), "columns")), 3);
	assert_string_equal(sget(json_array_get(lines, 1), "op"), "c");

	/* the next run knows what consumers were told: the same definition is
	 * no event, the first one again is */
	assert_int_equal(sink_open(&k2, f->url, "orders", &err), 0);
	assert_int_equal(ps_sink_jsonl.state_restore(k2, state_json, &err), 0);
	tc2.previous = NULL;
	tc2.what = PS_TC_FIRST;
	assert_int_equal(ps_sink_jsonl.table_change(k2, &txn, &tc2, &opt, &backfill, &err), 0);
	tc1.what = PS_TC_FIRST;
	assert_int_equal(ps_sink_jsonl.table_change(k2, &txn, &tc1, &opt, &backfill, &err), 0);
	flush_ok(k2);
	ps_sink_jsonl.close(k2);
	json_array_clear(lines);
	file_path(path, sizeof(path), f->out, "orders", 2);
	assert_int_equal(read_lines(path, lines), 1);
	assert_string_equal(sget(json_array_get(lines, 0), "op"), "s");

	json_decref(lines);
	free(state_json);
	ps_table_def_free(v1);
	ps_table_def_free(v2);
}

static void test_ops_table(void **state)
{
	(void)state;
	assert_int_equal(ps_sink_jsonl.abi_version, PS_SINK_ABI_VERSION);
	assert_string_equal(ps_sink_jsonl.name, "jsonl");
	assert_string_equal(ps_sink_jsonl.url_schemes[0], "jsonl");
	assert_null(ps_sink_jsonl.url_schemes[1]);
	assert_non_null(ps_sink_jsonl.open);
	assert_non_null(ps_sink_jsonl.write);
	assert_non_null(ps_sink_jsonl.flush);
	assert_non_null(ps_sink_jsonl.close);
	assert_null(ps_sink_jsonl.checkpoint_load);
	assert_null(ps_sink_jsonl.checkpoint_store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops_table),
		cmocka_unit_test_setup_teardown(test_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_partial_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_change_event, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
