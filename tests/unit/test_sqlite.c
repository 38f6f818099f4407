/*
 * test_sqlite.c — the SQLite sink (src/sink/sqlite/), end to end.
 *
 * SQLite is embedded, so these unit tests are real: every test drives the
 * sink through its ops table on a fresh database file in a mkdtemp
 * directory, then reads the file back through a second, independent
 * connection (which also proves what was committed: it cannot see the
 * sink's open transaction). Values are compared with quote() and typeof()
 * so that the storage class is checked, not only the text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "penstock/change.h"
#include "penstock/sink.h"
#include "sink/sqlite/sqlite_internal.h"
#include "penstock/tabledef.h"
#include "util/log.h"

extern const ps_sink_ops ps_sink_sqlite;

/* ==== fixture ============================================================= */

typedef struct fixture {
	char dir[64];
	char path[128];
	char url[160];
	char result[16384];     /* last query() result */
	ps_sink *k;
	ps_error err;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/penstock-sqlite-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/target.db", f->dir);
	snprintf(f->url, sizeof(f->url), "sqlite://%s", f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ps_sink_sqlite.close(f->k);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s'\n  does not contain '%s'", haystack, needle);
}

/* "context: message" of the fixture's error. */
static const char *errtext(fixture *f)
{
	static char buf[PS_ERROR_MESSAGE_MAX + PS_ERROR_CONTEXT_MAX + 4];

	ps_error_format(&f->err, buf, sizeof(buf));
	return buf;
}

static int open_sink_url(fixture *f, const char *url, const char *job)
{
	ps_sink_config cfg = {.job_name = job, .url = url, .connector = "postgresql",
	                      .source_db = "app"};

	ps_error_clear(&f->err);
	return ps_sink_sqlite.open(&f->k, &cfg, &f->err);
}

static void open_sink(fixture *f)
{
	int rc = open_sink_url(f, f->url, "job1");

	if (rc != 0)
		fail_msg("open: %s", errtext(f));
}

static void reopen(fixture *f)
{
	ps_sink_sqlite.close(f->k);
	f->k = NULL;
	open_sink(f);
}

static void flush(fixture *f)
{
	int rc = ps_sink_sqlite.flush(f->k, &f->err);

	if (rc != 0)
		fail_msg("flush: %s", errtext(f));
}

/*
 * Runs sql on a separate connection; rows joined by '\n', columns by '|',
 * NULL as "NULL". The result stays in f->result.
 */
static const char *query(fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t used = 0;
	int rc;

	f->result[0] = '\0';
	rc = sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK)
		fail_msg("open %s: %s", f->path, sqlite3_errmsg(db));
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (used)
			used += (size_t)snprintf(f->result + used, sizeof(f->result) - used, "\n");
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const char *v = (const char *)sqlite3_column_text(st, i);

			used += (size_t)snprintf(f->result + used, sizeof(f->result) - used, "%s%s",
			                         i ? "|" : "", v ? v : "NULL");
		}
		if (used >= sizeof(f->result))
			fail_msg("query result too long: %s", sql);
	}
	if (rc != SQLITE_DONE)
		fail_msg("step %s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return f->result;
}

/* ==== building tables and changes ======================================== */

/* Type OIDs and classes as the PostgreSQL source reports them. */
typedef struct coldesc {
	const char *name;
	uint32_t oid;
	uint8_t type_class;
	bool key;
	bool not_null;
} coldesc;

#define INT4 23, PS_TYPE_INTEGER
#define INT8 20, PS_TYPE_INTEGER
#define TEXT 25, PS_TYPE_TEXT
#define BOOL 16, PS_TYPE_BOOL
#define FLOAT8 701, PS_TYPE_FLOAT
#define NUMERIC 1700, PS_TYPE_NUMERIC
#define BYTEA 17, PS_TYPE_BYTES
#define JSONB 3802, PS_TYPE_JSON
#define TSTZ 1184, PS_TYPE_TEXT

static ps_table *mk_table(const char *schema, const char *name, int n, const coldesc *cols)
{
	ps_table *t = ps_table_new(42, n);

	assert_non_null(t);
	assert_int_equal(ps_table_set_names(t, schema, name), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(ps_table_set_column(t, i, cols[i].name, cols[i].oid, -1,
		                                     cols[i].type_class, cols[i].key), 0);
	return t;
}

/* A definition of t; has_pk when any column is a key. Takes a ref on t. */
static ps_table_def *mk_def(ps_table *t, const coldesc *cols)
{
	ps_table_def *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->table = ps_table_ref(t);
	d->engine = strdup("postgresql");
	d->columns = calloc((size_t)t->ncolumns, sizeof(*d->columns));
	assert_non_null(d->columns);
	for (int i = 0; i < t->ncolumns; i++) {
		d->columns[i].not_null = cols[i].not_null || cols[i].key;
		d->has_primary_key |= cols[i].key;
	}
	d->estimated_rows = -1;
	d->estimated_bytes = -1;
	return d;
}

static int prepare(fixture *f, const ps_table_def *d, int create, bool truncate, bool *created)
{
	ps_table_options opt = {.create = create, .truncate_before_load = truncate};
	bool dummy;

	ps_error_clear(&f->err);
	return ps_sink_sqlite.table_prepare(f->k, d, &opt, created ? created : &dummy, &f->err);
}

/* Creates the table described by cols via table_prepare (if missing). */
static ps_table *create(fixture *f, const char *schema, const char *name, int n,
                        const coldesc *cols)
{
	ps_table *t = mk_table(schema, name, n, cols);
	ps_table_def *d = mk_def(t, cols);

	if (prepare(f, d, PS_CREATE_IF_MISSING, false, NULL) != 0)
		fail_msg("table_prepare: %s", errtext(f));
	ps_table_def_free(d);
	return t;
}

/* Value lists: NULL is SQL NULL, UNCH the unchanged marker. */
static const char UNCH[] = "<unchanged>";
#define ROW(...) ((const char *[]){__VA_ARGS__})

static void fill(ps_value *out, int n, const char *const *s)
{
	for (int i = 0; i < n; i++) {
		if (!s[i]) {
			out[i] = (ps_value){PS_VALUE_NULL, 0, NULL};
		} else if (s[i] == UNCH) {
			out[i] = (ps_value){PS_VALUE_UNCHANGED, 0, NULL};
		} else {
			out[i] = (ps_value){PS_VALUE_TEXT, (uint32_t)strlen(s[i]), s[i]};
		}
	}
}

static ps_change *mk_change(uint8_t op, ps_table *t, const char *const *nv,
                            const char *const *ov, bool old_is_key)
{
	ps_value nvals[32], ovals[32];
	ps_change *c;

	assert_true(t->ncolumns <= 32);
	if (nv)
		fill(nvals, t->ncolumns, nv);
	if (ov)
		fill(ovals, t->ncolumns, ov);
	c = ps_change_new(op, t, nv ? nvals : NULL, ov ? ovals : NULL, old_is_key, 1);
	assert_non_null(c);
	return c;
}

/* Writes one change in a source transaction of its own; frees it. */
static int apply(fixture *f, bool reprocessing, ps_change *c)
{
	ps_txn txn = {.xid = 7, .reprocessing = reprocessing};
	int rc;

	snprintf(txn.position, sizeof(txn.position), "0/10");
	ps_error_clear(&f->err);
	rc = ps_sink_sqlite.begin(f->k, &txn, &f->err);
	if (rc == 0)
		rc = ps_sink_sqlite.write(f->k, &txn, c, &f->err);
	if (rc == 0)
		rc = ps_sink_sqlite.commit(f->k, &txn, &f->err);
	ps_change_free(c);
	return rc;
}

static void apply_ok(fixture *f, bool reprocessing, ps_change *c)
{
	if (apply(f, reprocessing, c) != 0)
		fail_msg("write: %s", errtext(f));
}

#define INS(f, t, ...) apply_ok((f), false, mk_change(PS_OP_INSERT, (t), ROW(__VA_ARGS__), NULL, false))
#define LOAD(f, t, ...) apply_ok((f), false, mk_change(PS_OP_READ, (t), ROW(__VA_ARGS__), NULL, false))

/* The "items" table used by most tests. */
enum { I_ID, I_NAME, I_PRICE, I_QTY, NITEMS };
static const coldesc items_cols[NITEMS] = {
	{"id", INT4, true, true},
	{"name", TEXT, false, false},
	{"price", NUMERIC, false, false},
	{"qty", INT8, false, false},
};

static ps_table *items(fixture *f)
{
	return create(f, "public", "items", NITEMS, items_cols);
}

#define ITEMS_ROWS "SELECT id, name, price, qty FROM items ORDER BY id"

/* ==== open ================================================================ */

static void test_open_creates_wal_database(void **state)
{
	fixture *f = *state;

	open_sink(f);
	assert_int_equal(access(f->path, F_OK), 0);
	assert_string_equal(query(f, "PRAGMA journal_mode"), "wal");
	assert_string_equal(query(f, "SELECT name FROM pragma_table_info('_penstock_checkpoint') "
	                             "ORDER BY cid"),
	                    "job\nbody\nupdated_at");
	assert_string_equal(query(f, "SELECT pk FROM pragma_table_info('_penstock_checkpoint') "
	                             "WHERE name = 'job'"), "1");
	/* Opening an existing database again is fine. */
	reopen(f);
	assert_int_equal(ps_sink_sqlite.max_writers, 1);
	assert_string_equal(ps_sink_sqlite.name, "sqlite");
}

static void test_open_errors(void **state)
{
	fixture *f = *state;
	char url[256], missing[200];

	snprintf(missing, sizeof(missing), "%s/no/such/dir", f->dir);
	snprintf(url, sizeof(url), "sqlite://%s/x.db", missing);
	assert_int_equal(open_sink_url(f, url, "job1"), PS_EIO);
	assert_null(f->k);
	assert_contains(f->err.message, missing);
	assert_contains(f->err.message, "does not exist");

	assert_int_equal(open_sink_url(f, "jsonl:-", "job1"), PS_EINVAL);
	assert_contains(f->err.message, "sqlite");
	assert_int_equal(open_sink_url(f, "sqlite:relative.db", "job1"), PS_EINVAL);
	assert_int_equal(open_sink_url(f, f->url, ""), PS_EINVAL);
	assert_contains(f->err.message, "job name");
	assert_null(f->k);
}

/* ==== table_prepare ======================================================= */

static void test_prepare_creates_with_mapped_types(void **state)
{
	fixture *f = *state;
	static const coldesc cols[] = {
		{"id", INT8, true, true},  {"region", TEXT, true, true},
		{"flag", BOOL, false, true}, {"ratio", FLOAT8, false, false},
		{"amount", NUMERIC, false, false}, {"blob", BYTEA, false, false},
		{"doc", JSONB, false, false}, {"at", TSTZ, false, false},
	};
	ps_table *t;
	ps_table_def *d;
	bool created = false;

	open_sink(f);
	t = mk_table("public", "things", 8, cols);
	d = mk_def(t, cols);
	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, false, &created), 0);
	assert_true(created);
	flush(f);
	assert_string_equal(query(f, "SELECT name, type, \"notnull\", pk FROM "
	                             "pragma_table_info('things') ORDER BY cid"),
	                    "id|INTEGER|1|1\nregion|TEXT|1|2\nflag|INTEGER|1|0\nratio|REAL|0|0\n"
	                    "amount|TEXT|0|0\nblob|BLOB|0|0\ndoc|TEXT|0|0\nat|TEXT|0|0");
	/* Existing and empty: used as is. */
	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, false, &created), 0);
	assert_false(created);
	assert_int_equal(prepare(f, d, PS_CREATE_NEVER, false, &created), 0);
	assert_false(created);
	flush(f);
	ps_table_def_free(d);
	ps_table_unref(t);
}

static void test_prepare_never_and_missing_columns(void **state)
{
	fixture *f = *state;
	static const coldesc two[] = {{"id", INT4, true, true}, {"name", TEXT, false, false}};
	static const coldesc four[] = {{"id", INT4, true, true}, {"name", TEXT, false, false},
	                               {"extra", TEXT, false, false}, {"more", INT8, false, false}};
	ps_table *t2, *t4;
	ps_table_def *d2, *d4;

	open_sink(f);
	t2 = mk_table("public", "narrow", 2, two);
	d2 = mk_def(t2, two);
	assert_int_equal(prepare(f, d2, PS_CREATE_NEVER, false, NULL), PS_EINVAL);
	assert_contains(errtext(f), "narrow");
	assert_contains(errtext(f), "target.create_tables");

	assert_int_equal(prepare(f, d2, PS_CREATE_IF_MISSING, false, NULL), 0);
	t4 = mk_table("public", "narrow", 4, four);
	d4 = mk_def(t4, four);
	assert_int_equal(prepare(f, d4, PS_CREATE_IF_MISSING, false, NULL), PS_EINVAL);
	assert_contains(errtext(f), "narrow");
	assert_contains(errtext(f), "extra, more");

	/* Drop and create replaces the narrow table with the wide one. */
	assert_int_equal(prepare(f, d4, PS_CREATE_DROP_AND_CREATE, false, NULL), 0);
	flush(f);
	assert_string_equal(query(f, "SELECT group_concat(name, ',') FROM pragma_table_info('narrow')"),
	                    "id,name,extra,more");
	ps_table_def_free(d2);
	ps_table_def_free(d4);
	ps_table_unref(t2);
	ps_table_unref(t4);
}

static void test_prepare_refuses_rows_unless_truncate(void **state)
{
	fixture *f = *state;
	ps_table *t;
	ps_table_def *d;
	bool created = true;

	open_sink(f);
	t = items(f);
	INS(f, t, "1", "a", "1.00", "1");
	INS(f, t, "2", "b", "2.00", "2");
	flush(f);
	d = mk_def(t, items_cols);
	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, false, &created), PS_EINVAL);
	assert_contains(errtext(f), "items");
	assert_contains(errtext(f), "2 rows");
	assert_contains(errtext(f), "target.truncate_before_load");
	assert_int_equal(prepare(f, d, PS_CREATE_NEVER, false, &created), PS_EINVAL);
	assert_contains(errtext(f), "target.truncate_before_load");

	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, true, &created), 0);
	assert_false(created);
	/* Not committed yet: the other connection still sees both rows. */
	assert_string_equal(query(f, "SELECT count(*) FROM items"), "2");
	flush(f);
	assert_string_equal(query(f, "SELECT count(*) FROM items"), "0");

	/* Drop and create, on a table with rows, also empties it. */
	INS(f, t, "3", "c", "3.00", "3");
	flush(f);
	assert_int_equal(prepare(f, d, PS_CREATE_DROP_AND_CREATE, false, &created), 0);
	assert_true(created);
	flush(f);
	assert_string_equal(query(f, "SELECT count(*) FROM items"), "0");
	/* The sink's cache followed the drop: writing still works. */
	INS(f, t, "4", "d", "4.00", "4");
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS), "4|d|4.00|4");
	ps_table_def_free(d);
	ps_table_unref(t);
}

static void add_constraint(ps_table_def *d, const char *name, char kind, const char *sql,
                           int ncols, const int *cols);

/* The key takes the order of the PRIMARY KEY constraint; DDL is transactional. */
static void test_prepare_key_order_and_rollback(void **state)
{
	fixture *f = *state;
	static const coldesc cols[] = {{"a", INT4, true, true}, {"b", TEXT, true, true},
	                               {"c", TEXT, false, false}};
	static const int ba[] = {1, 0};
	ps_table *t;
	ps_table_def *d;
	bool created = false;

	open_sink(f);
	t = mk_table("public", "pairs", 3, cols);
	d = mk_def(t, cols);
	add_constraint(d, "pairs_pkey", 'p', "PRIMARY KEY (b, a)", 2, ba);
	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, false, &created), 0);
	assert_true(created);
	LOAD(f, t, "1", "x", "row");
	/* Closed without a flush: neither the table nor its row is there. */
	reopen(f);
	assert_string_equal(query(f, "SELECT count(*) FROM sqlite_schema WHERE name = 'pairs'"), "0");
	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, false, &created), 0);
	assert_true(created);
	flush(f);
	assert_string_equal(query(f, "SELECT name, pk FROM pragma_table_info('pairs') ORDER BY pk"),
	                    "c|0\nb|1\na|2");
	ps_table_def_free(d);
	ps_table_unref(t);
}

/* The target's key column must come with the source's rows. */
static void test_target_key_not_in_source(void **state)
{
	fixture *f = *state;
	static const coldesc only_name[] = {{"name", TEXT, false, false}};
	ps_table *t, *partial;

	open_sink(f);
	t = items(f);
	partial = mk_table("public", "items", 1, only_name);
	assert_int_equal(apply(f, false, mk_change(PS_OP_INSERT, partial, ROW("x"), NULL, false)),
	                 PS_EINVAL);
	assert_contains(errtext(f), "primary key column id");
	assert_contains(errtext(f), "items");
	ps_table_unref(partial);
	ps_table_unref(t);
}

/* ==== load and types ====================================================== */

static void test_load_types(void **state)
{
	fixture *f = *state;
	static const coldesc cols[] = {
		{"id", INT4, true, true}, {"big", INT8, false, false}, {"flag", BOOL, false, false},
		{"f", FLOAT8, false, false}, {"amount", NUMERIC, false, false},
		{"raw", BYTEA, false, false}, {"doc", JSONB, false, false},
		{"at", TSTZ, false, false}, {"note", TEXT, false, false},
	};
	static const char *floats[] = {"0.1", "-1.7976931348623157e+308", "5e-324", "NaN",
	                               "Infinity", "-Infinity", "123456789.12345679"};
	ps_table *t;
	char id[16];

	open_sink(f);
	t = create(f, "public", "typed", 9, cols);
	LOAD(f, t, "1", "-9223372036854775808", "t", "0.1", "1.50", "\\x00ff10", "{\"a\": [1, 2]}",
	     "2024-02-29 23:59:59.123456+00", "it's \"quoted\"");
	LOAD(f, t, "2", "9223372036854775807", "f", "NaN", "-0.000", "\\x", "null",
	     "infinity", "");
	LOAD(f, t, "3", NULL, NULL, "-Infinity", "NaN", NULL, NULL, NULL, NULL);
	flush(f);
	assert_string_equal(query(f, "SELECT quote(big), typeof(big), quote(flag), typeof(flag), "
	                             "quote(amount), typeof(amount), quote(raw), typeof(raw), "
	                             "quote(doc), quote(at), quote(note) FROM typed ORDER BY id"),
	                    "-9223372036854775808|integer|1|integer|'1.50'|text|X'00FF10'|blob|"
	                    "'{\"a\": [1, 2]}'|'2024-02-29 23:59:59.123456+00'|'it''s \"quoted\"'\n"
	                    "9223372036854775807|integer|0|integer|'-0.000'|text|X''|blob|'null'|"
	                    "'infinity'|''\n"
	                    "NULL|null|NULL|null|'NaN'|text|NULL|null|NULL|NULL|NULL");
	assert_string_equal(query(f, "SELECT quote(f), typeof(f) FROM typed WHERE id > 1 ORDER BY id"),
	                    "'NaN'|text\n'-Infinity'|text");

	/* Floats round-trip exactly: what SQLite holds is strtod of the source text. */
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
		snprintf(id, sizeof(id), "%zu", 10 + i);
		LOAD(f, t, id, NULL, NULL, floats[i], NULL, NULL, NULL, NULL, NULL);
	}
	flush(f);
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		double expect = strtod(floats[i], NULL);

		assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT f, typeof(f) FROM typed WHERE id = ?1",
		                                    -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_int(st, 1, (int)(10 + i));
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		if (isfinite(expect)) {
			assert_string_equal((const char *)sqlite3_column_text(st, 1), "real");
			assert_true(sqlite3_column_double(st, 0) == expect);
		} else {
			assert_string_equal((const char *)sqlite3_column_text(st, 1), "text");
			assert_string_equal((const char *)sqlite3_column_text(st, 0), floats[i]);
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
	}

	/* A value that does not fit its type is refused, naming the column. */
	assert_int_equal(apply(f, false, mk_change(PS_OP_READ, t,
	                                           ROW("99", "12abc", NULL, NULL, NULL, NULL, NULL,
	                                               NULL, NULL), NULL, false)), PS_EINVAL);
	assert_contains(errtext(f), "big");
	assert_contains(errtext(f), "typed");
	ps_table_unref(t);
}

/* A float, bool and bytea key: rows are found again by the same conversion. */
static void test_typed_keys_round_trip(void **state)
{
	fixture *f = *state;
	static const coldesc cols[] = {
		{"k1", FLOAT8, true, true}, {"k2", BYTEA, true, true}, {"k3", BOOL, true, true},
		{"v", TEXT, false, false},
	};
	ps_table *t;

	open_sink(f);
	t = create(f, "public", "odd_keys", 4, cols);
	INS(f, t, "0.1", "\\xdeadbeef", "t", "one");
	INS(f, t, "NaN", "\\x", "f", "two");
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("0.1", "\\xdeadbeef", "t", "ONE"),
	                             NULL, false));
	apply_ok(f, false, mk_change(PS_OP_DELETE, t, NULL, ROW("NaN", "\\x", "f", NULL), true));
	flush(f);
	assert_string_equal(query(f, "SELECT quote(k1), quote(k2), k3, v FROM odd_keys"),
	                    "0.1|X'DEADBEEF'|1|ONE");
	ps_table_unref(t);
}

/* ==== insert, update, delete, truncate ==================================== */

static void test_insert_update_delete(void **state)
{
	fixture *f = *state;
	ps_table *t;

	open_sink(f);
	t = items(f);
	flush(f);
	INS(f, t, "1", "apple", "1.50", "10");
	INS(f, t, "2", "pear", "2.25", "20");
	INS(f, t, "3", "plum", "0.10", NULL);
	/* Not visible before flush. */
	assert_string_equal(query(f, "SELECT count(*) FROM items"), "0");
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS),
	                    "1|apple|1.50|10\n2|pear|2.25|20\n3|plum|0.10|NULL");

	/* Update a non-key column; the old row is not sent (REPLICA IDENTITY DEFAULT). */
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("1", "apple", "1.75", "9"), NULL, false));
	/* An unchanged column keeps the target's value. */
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("2", UNCH, "2.50", UNCH), NULL, false));
	/* A key change: the old key comes in old_values (key columns only). */
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("30", "plum", "0.10", "5"),
	                             ROW("3", NULL, NULL, NULL), true));
	/* A delete by the old key. */
	apply_ok(f, false, mk_change(PS_OP_DELETE, t, NULL, ROW("1", NULL, NULL, NULL), true));
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS), "2|pear|2.50|20\n30|plum|0.10|5");

	/* A message is ignored; a truncate empties the table. */
	{
		ps_change *m = ps_change_new_message(true, "p", "x", 1, 1);
		ps_txn txn = {0};

		assert_non_null(m);
		assert_int_equal(ps_sink_sqlite.write(f->k, &txn, m, &f->err), 0);
		ps_change_free(m);
	}
	apply_ok(f, false, mk_change(PS_OP_TRUNCATE, t, NULL, NULL, false));
	flush(f);
	assert_string_equal(query(f, "SELECT count(*) FROM items"), "0");
	ps_table_unref(t);
}

/* REPLICA IDENTITY FULL on a PK table: old_values is the whole old row. */
static void test_update_with_full_old_row(void **state)
{
	fixture *f = *state;
	ps_table *t;

	open_sink(f);
	t = items(f);
	INS(f, t, "1", "a", "1.00", "1");
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("2", "b", "2.00", "2"),
	                             ROW("1", "a", "1.00", "1"), false));
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS), "2|b|2.00|2");
	ps_table_unref(t);
}

/* Many rows in one target transaction, then a missing row is tolerated. */
static void test_divergence_outside_reprocessing(void **state)
{
	fixture *f = *state;
	ps_table *t;
	char id[16], qty[16];

	open_sink(f);
	t = items(f);
	for (int i = 1; i <= 200; i++) {
		snprintf(id, sizeof(id), "%d", i);
		snprintf(qty, sizeof(qty), "%d", i * 3);
		INS(f, t, id, "n", "1.00", qty);
	}
	flush(f);
	assert_string_equal(query(f, "SELECT count(*), sum(qty) FROM items"), "200|60300");

	/* Update and delete of rows that are not there: warned, not fatal. */
	assert_int_equal(apply(f, false, mk_change(PS_OP_UPDATE, t, ROW("999", "x", "1", "1"),
	                                           NULL, false)), 0);
	assert_int_equal(apply(f, false, mk_change(PS_OP_DELETE, t, NULL,
	                                           ROW("998", NULL, NULL, NULL), true)), 0);
	/* A duplicate insert is an error naming table and key. */
	assert_int_equal(apply(f, false, mk_change(PS_OP_INSERT, t, ROW("7", "dup", "1", "1"),
	                                           NULL, false)), PS_ESERVER);
	assert_contains(errtext(f), "public.items");
	assert_contains(errtext(f), "(id)=(7)");
	assert_contains(errtext(f), "diverged");
	flush(f);
	assert_string_equal(query(f, "SELECT count(*), sum(qty), max(id) FROM items"), "200|60300|200");
	assert_string_equal(query(f, "SELECT name FROM items WHERE id = 7"), "n");
	ps_table_unref(t);
}

/* ==== tables without a primary key ======================================= */

static void test_no_primary_key(void **state)
{
	fixture *f = *state;
	/* The source has no primary key (the def marks none); its stream uses
	 * REPLICA IDENTITY FULL, which marks every column as the identity. */
	static const coldesc def_cols[] = {
		{"a", INT4, false, false}, {"b", TEXT, false, false}, {"c", NUMERIC, false, false},
	};
	static const coldesc cols[] = {
		{"a", INT4, true, false}, {"b", TEXT, true, false}, {"c", NUMERIC, true, false},
	};
	ps_table *t;

	open_sink(f);
	ps_table_unref(create(f, "public", "log", 3, def_cols));
	t = mk_table("public", "log", 3, cols);
	INS(f, t, "1", "x", NULL);
	INS(f, t, "1", "x", NULL);
	INS(f, t, "2", "y", "3.0");
	flush(f);
	assert_string_equal(query(f, "SELECT count(*) FROM pragma_table_info('log') WHERE pk > 0"), "0");

	/* Two identical rows (with a NULL): a delete removes exactly one. */
	apply_ok(f, false, mk_change(PS_OP_DELETE, t, NULL, ROW("1", "x", NULL), false));
	flush(f);
	assert_string_equal(query(f, "SELECT a, b, quote(c) FROM log ORDER BY a"),
	                    "1|x|NULL\n2|y|'3.0'");
	/* An update of one of two identical rows changes one. */
	INS(f, t, "2", "y", "3.0");
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("2", "z", "3.0"), ROW("2", "y", "3.0"),
	                             false));
	flush(f);
	assert_string_equal(query(f, "SELECT a, b, c FROM log ORDER BY a, b"),
	                    "1|x|NULL\n2|y|3.0\n2|z|3.0");
	/* An unchanged old value is left out of the match. */
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("2", "w", UNCH), ROW("2", "z", UNCH),
	                             false));
	flush(f);
	assert_string_equal(query(f, "SELECT a, b, c FROM log ORDER BY a, b"),
	                    "1|x|NULL\n2|w|3.0\n2|y|3.0");
	/* In reprocessing an insert stays an insert (there is no key to upsert on). */
	apply_ok(f, true, mk_change(PS_OP_INSERT, t, ROW("1", "x", NULL), NULL, false));
	/* An update that finds nothing in reprocessing is skipped. */
	apply_ok(f, true, mk_change(PS_OP_UPDATE, t, ROW("8", "q", NULL), ROW("9", "q", NULL), false));
	flush(f);
	assert_string_equal(query(f, "SELECT a, b, count(*) FROM log GROUP BY a, b ORDER BY a, b"),
	                    "1|x|2\n2|w|1\n2|y|1");
	/* Without an old row such a table cannot be matched. */
	assert_int_equal(apply(f, false, mk_change(PS_OP_DELETE, t, NULL, NULL, false)), PS_EINVAL);
	assert_contains(errtext(f), "no primary key");
	ps_table_unref(t);
}

/* ==== reprocessing ========================================================= */

static void test_reprocessing(void **state)
{
	fixture *f = *state;
	ps_table *t;

	open_sink(f);
	t = items(f);
	INS(f, t, "1", "a", "1.00", "1");
	INS(f, t, "2", "b", "2.00", "2");
	INS(f, t, "3", "c", "3.00", "3");
	INS(f, t, "4", "d", "4.00", "4");
	flush(f);

	/* An insert of an existing key upserts. */
	apply_ok(f, true, mk_change(PS_OP_INSERT, t, ROW("1", "A", "1.10", "11"), NULL, false));
	apply_ok(f, true, mk_change(PS_OP_READ, t, ROW("5", "e", "5.00", "5"), NULL, false));
	/* A delete of a missing row is fine. */
	apply_ok(f, true, mk_change(PS_OP_DELETE, t, NULL, ROW("77", NULL, NULL, NULL), true));
	/* An update of a missing row upserts; unchanged columns stay out of it. */
	apply_ok(f, true, mk_change(PS_OP_UPDATE, t, ROW("6", "f", "6.00", "6"), NULL, false));
	apply_ok(f, true, mk_change(PS_OP_UPDATE, t, ROW("2", UNCH, "2.20", UNCH), NULL, false));
	/* A key change whose old row is gone: the new row is upserted. */
	apply_ok(f, true, mk_change(PS_OP_UPDATE, t, ROW("8", "h", "8.00", "8"),
	                            ROW("88", NULL, NULL, NULL), true));
	/* A key change onto a key already present: the old key goes, the new is updated. */
	apply_ok(f, true, mk_change(PS_OP_UPDATE, t, ROW("4", "D", "4.40", UNCH),
	                            ROW("3", NULL, NULL, NULL), true));
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS),
	                    "1|A|1.10|11\n2|b|2.20|2\n4|D|4.40|4\n5|e|5.00|5\n6|f|6.00|6\n8|h|8.00|8");
	/* A key change with unchanged columns keeps them when the old row is there. */
	apply_ok(f, true, mk_change(PS_OP_UPDATE, t, ROW("9", UNCH, "9.00", UNCH),
	                            ROW("6", NULL, NULL, NULL), true));
	/* Applying the same insert twice is harmless. */
	apply_ok(f, true, mk_change(PS_OP_INSERT, t, ROW("1", "A", "1.10", "11"), NULL, false));
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS),
	                    "1|A|1.10|11\n2|b|2.20|2\n4|D|4.40|4\n5|e|5.00|5\n8|h|8.00|8\n9|f|9.00|6");
	ps_table_unref(t);
}

/* ==== checkpoints ========================================================== */

static char *load(fixture *f)
{
	char *json = (char *)1;

	if (ps_sink_sqlite.checkpoint_load(f->k, &json, &f->err) != 0)
		fail_msg("checkpoint_load: %s", errtext(f));
	return json;
}

static void test_checkpoint(void **state)
{
	fixture *f = *state;
	ps_table *t;
	char *json;

	open_sink(f);
	assert_null(load(f));
	t = items(f);
	flush(f);
	INS(f, t, "1", "a", "1.00", "1");
	assert_int_equal(ps_sink_sqlite.checkpoint_store(f->k, "{\"position\":\"0/10\"}", &f->err), 0);
	/* The sink sees its own write; another connection does not, yet. */
	json = load(f);
	assert_string_equal(json, "{\"position\":\"0/10\"}");
	free(json);
	assert_string_equal(query(f, "SELECT count(*) FROM _penstock_checkpoint"), "0");
	flush(f);
	assert_string_equal(query(f, "SELECT job, body, updated_at LIKE '____-__-__T__:__:__.___Z' "
	                             "FROM _penstock_checkpoint"),
	                    "job1|{\"position\":\"0/10\"}|1");
	assert_string_equal(query(f, "SELECT count(*) FROM items"), "1");

	/* Data and checkpoint written but not flushed vanish together at close. */
	INS(f, t, "2", "b", "2.00", "2");
	assert_int_equal(ps_sink_sqlite.checkpoint_store(f->k, "{\"position\":\"0/20\"}", &f->err), 0);
	reopen(f);
	json = load(f);
	assert_string_equal(json, "{\"position\":\"0/10\"}");
	free(json);
	assert_string_equal(query(f, ITEMS_ROWS), "1|a|1.00|1");

	/* Another job's checkpoint is its own row. */
	ps_sink_sqlite.close(f->k);
	f->k = NULL;
	assert_int_equal(open_sink_url(f, f->url, "job2"), 0);
	assert_null(load(f));
	assert_int_equal(ps_sink_sqlite.checkpoint_store(f->k, "{\"j\":2}", &f->err), 0);
	flush(f);
	reopen(f);   /* back to job1 */

	/* Store replaces; delete removes, both at flush. */
	assert_int_equal(ps_sink_sqlite.checkpoint_store(f->k, "{\"position\":\"0/30\"}", &f->err), 0);
	flush(f);
	assert_string_equal(query(f, "SELECT body FROM _penstock_checkpoint WHERE job = 'job1'"),
	                    "{\"position\":\"0/30\"}");
	assert_int_equal(ps_sink_sqlite.checkpoint_delete(f->k, &f->err), 0);
	assert_null(load(f));
	assert_string_equal(query(f, "SELECT count(*) FROM _penstock_checkpoint WHERE job = 'job1'"),
	                    "1");
	flush(f);
	assert_string_equal(query(f, "SELECT job, body FROM _penstock_checkpoint"), "job2|{\"j\":2}");
	/* flush with nothing open is a no-op. */
	flush(f);
	ps_table_unref(t);
}

/* ==== errors ================================================================ */

static void test_missing_table_and_column(void **state)
{
	fixture *f = *state;
	static const coldesc extra[] = {{"id", INT4, true, true}, {"name", TEXT, false, false},
	                                {"price", NUMERIC, false, false}, {"qty", INT8, false, false},
	                                {"colour", TEXT, false, false}};
	ps_table *t, *ghost, *wide;

	open_sink(f);
	t = items(f);
	ghost = mk_table("sales", "ghost", NITEMS, items_cols);
	assert_int_equal(apply(f, false, mk_change(PS_OP_INSERT, ghost, ROW("1", "a", "1", "1"),
	                                           NULL, false)), PS_EINVAL);
	assert_contains(errtext(f), "sales.ghost");
	assert_contains(errtext(f), "does not exist");
	assert_contains(errtext(f), "target.create_tables");

	wide = mk_table("public", "items", 5, extra);
	assert_int_equal(apply(f, false, mk_change(PS_OP_INSERT, wide, ROW("1", "a", "1", "1", "red"),
	                                           NULL, false)), PS_EINVAL);
	assert_contains(errtext(f), "colour");
	assert_contains(errtext(f), "items");
	/* The failure left the sink usable. */
	INS(f, t, "1", "a", "1.00", "1");
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS), "1|a|1.00|1");
	ps_table_unref(t);
	ps_table_unref(ghost);
	ps_table_unref(wide);
}

/* Runs sql on a separate read-write connection. */
static void exec_other(fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* When SQLite itself rolls the open transaction back, nothing written
 * before it may be committed by a later flush (sqlite.c note 3). */
static void test_transaction_rolled_back_by_sqlite(void **state)
{
	fixture *f = *state;
	static const coldesc trap_cols[] = {{"id", INT4, true, true}};
	ps_table *t, *trap;

	open_sink(f);
	t = items(f);
	trap = create(f, "public", "trap", 1, trap_cols);
	flush(f);
	/* RAISE(ROLLBACK) ends the whole transaction, as an I/O error would. */
	exec_other(f, "CREATE TRIGGER trap_rb BEFORE INSERT ON trap "
	              "BEGIN SELECT RAISE(ROLLBACK, 'trap sprung'); END");
	INS(f, t, "1", "a", "1.00", "1");
	assert_int_equal(ps_sink_sqlite.checkpoint_store(f->k, "{\"p\":1}", &f->err), 0);
	assert_int_not_equal(apply(f, false, mk_change(PS_OP_INSERT, trap, ROW("1"), NULL, false)), 0);
	assert_contains(errtext(f), "trap sprung");
	/* Later writes and the flush are refused; nothing of the batch lands. */
	assert_int_equal(apply(f, false, mk_change(PS_OP_INSERT, t, ROW("2", "b", "2", "2"), NULL,
	                                           false)), PS_ERR);
	assert_contains(errtext(f), "roll back the open transaction");
	assert_int_equal(ps_sink_sqlite.flush(f->k, &f->err), PS_ERR);
	assert_int_equal(ps_sink_sqlite.checkpoint_store(f->k, "{\"p\":2}", &f->err), PS_ERR);
	assert_string_equal(query(f, "SELECT count(*) FROM items"), "0");
	assert_string_equal(query(f, "SELECT count(*) FROM _penstock_checkpoint"), "0");
	/* A fresh sink works again. */
	reopen(f);
	INS(f, t, "3", "c", "3.00", "3");
	flush(f);
	assert_string_equal(query(f, ITEMS_ROWS), "3|c|3.00|3");
	ps_table_unref(t);
	ps_table_unref(trap);
}

/* ==== re-described tables ================================================== */

static void test_redescribed_table(void **state)
{
	fixture *f = *state;
	static const coldesc v1[] = {{"id", INT4, true, true}, {"name", TEXT, false, false}};
	static const coldesc v2[] = {{"id", INT4, true, true}, {"name", TEXT, false, false},
	                             {"qty", INT8, false, false}};
	static const coldesc v3[] = {{"id", INT4, true, true}, {"qty", TEXT, false, false}};
	static const coldesc wide[] = {{"id", INT4, true, true}, {"name", TEXT, false, false},
	                               {"qty", INT8, false, false}, {"note", TEXT, false, false}};
	ps_table *t0, *t1, *t1b, *t2, *t3;

	open_sink(f);
	t0 = create(f, "app", "evolving", 4, wide);
	flush(f);
	t1 = mk_table("app", "evolving", 2, v1);
	INS(f, t1, "1", "one");
	/* A new object with the same columns. */
	t1b = mk_table("app", "evolving", 2, v1);
	INS(f, t1b, "2", "two");
	/* More columns, mid-stream. */
	t2 = mk_table("app", "evolving", 3, v2);
	INS(f, t2, "3", "three", "3");
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t2, ROW("1", "uno", "10"), NULL, false));
	/* Fewer columns, and a type change: qty now comes as text. */
	t3 = mk_table("app", "evolving", 2, v3);
	INS(f, t3, "4", "four");
	/* And back to an older layout. */
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t1, ROW("2", "dos"), NULL, false));
	flush(f);
	assert_string_equal(query(f, "SELECT id, name, quote(qty), note FROM \"app.evolving\" "
	                             "ORDER BY id"),
	                    "1|uno|10|NULL\n2|dos|NULL|NULL\n3|three|3|NULL\n4|NULL|'four'|NULL");
	ps_table_unref(t0);
	ps_table_unref(t1);
	ps_table_unref(t1b);
	ps_table_unref(t2);
	ps_table_unref(t3);
}

/* ==== naming and quoting ================================================== */

static void test_names_are_quoted(void **state)
{
	fixture *f = *state;
	static const coldesc cols[] = {{"Key \"x\"", INT4, true, true},
	                               {"select", TEXT, false, false},
	                               {"rowid", TEXT, false, false}};
	static const coldesc nokey[] = {{"rowid", INT4, false, false}, {"oid", TEXT, false, false}};
	ps_table *t, *n;

	open_sink(f);
	t = create(f, "we\"ird", "ta ble", 3, cols);
	n = create(f, "public", "shadow", 2, nokey);
	INS(f, t, "1", "'; DROP TABLE x; --", "r");
	apply_ok(f, false, mk_change(PS_OP_UPDATE, t, ROW("1", UNCH, "s"), NULL, false));
	/* rowid and oid are column names here: the sink uses _rowid_. */
	INS(f, n, "5", "a");
	INS(f, n, "5", "a");
	apply_ok(f, false, mk_change(PS_OP_DELETE, n, NULL, ROW("5", "a"), false));
	flush(f);
	assert_string_equal(query(f, "SELECT name FROM sqlite_schema WHERE type = 'table' "
	                             "ORDER BY name"),
	                    "_penstock_checkpoint\n_penstock_tables\nshadow\nwe\"ird.ta ble");
	assert_string_equal(query(f, "SELECT \"Key \"\"x\"\"\", \"select\", \"rowid\" "
	                             "FROM \"we\"\"ird.ta ble\""),
	                    "1|'; DROP TABLE x; --|s");
	assert_string_equal(query(f, "SELECT count(*) FROM shadow"), "1");
	ps_table_unref(t);
	ps_table_unref(n);
}

/* ==== table_finish ========================================================= */

static void add_constraint(ps_table_def *d, const char *name, char kind, const char *sql,
                           int ncols, const int *cols)
{
	ps_constraint_def *c;

	d->constraints = realloc(d->constraints, (size_t)(d->nconstraints + 1) * sizeof(*c));
	assert_non_null(d->constraints);
	c = &d->constraints[d->nconstraints++];
	memset(c, 0, sizeof(*c));
	c->name = strdup(name);
	c->kind = kind;
	c->sql = strdup(sql);
	c->ncols = ncols;
	if (ncols) {
		c->cols = malloc((size_t)ncols * sizeof(int));
		assert_non_null(c->cols);
		memcpy(c->cols, cols, (size_t)ncols * sizeof(int));
	}
}

static void test_table_finish_indexes(void **state)
{
	fixture *f = *state;
	static const coldesc cols[] = {{"id", INT4, true, true}, {"email", TEXT, false, false},
	                               {"a", INT4, false, false}, {"b", TEXT, false, false}};
	static const int pk[] = {0}, email[] = {1}, ab[] = {2, 3}, b[] = {3};
	ps_table *t;
	ps_table_def *d;

	open_sink(f);
	t = mk_table("shop", "users", 4, cols);
	d = mk_def(t, cols);
	add_constraint(d, "users_pkey", 'p', "PRIMARY KEY (id)", 1, pk);
	add_constraint(d, "users_email_key", 'u', "UNIQUE (email)", 1, email);
	add_constraint(d, "users_a_b_idx", 'i',
	               "CREATE INDEX users_a_b_idx ON shop.users USING btree (a, b)", 2, ab);
	add_constraint(d, "users_b_uidx", 'i',
	               "CREATE UNIQUE INDEX users_b_uidx ON shop.users USING btree (b)", 1, b);
	add_constraint(d, "users_live_idx", 'i',
	               "CREATE UNIQUE INDEX users_live_idx ON shop.users USING btree (a) "
	               "WHERE (b IS NOT NULL)", 1, ab);
	add_constraint(d, "users_lower_idx", 'i',
	               "CREATE INDEX users_lower_idx ON shop.users USING btree (lower(email))", 0, NULL);
	add_constraint(d, "users_b_gin", 'i',
	               "CREATE INDEX users_b_gin ON shop.users USING gin (b)", 1, b);
	add_constraint(d, "users_a_check", 'c', "CHECK ((a > 0))", 0, NULL);
	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, false, NULL), 0);
	LOAD(f, t, "1", "x@example.org", "-5", "p");
	LOAD(f, t, "2", "y@example.org", "-5", "q");
	assert_int_equal(ps_sink_sqlite.table_finish(f->k, d, &f->err), 0);
	assert_int_equal(ps_sink_sqlite.table_finish(f->k, d, &f->err), 0);   /* idempotent */
	flush(f);
	assert_string_equal(query(f, "SELECT name, \"unique\" FROM pragma_index_list('shop.users') "
	                             "WHERE origin = 'c' ORDER BY name"),
	                    "shop.users.users_a_b_idx|0\nshop.users.users_b_uidx|1\n"
	                    "shop.users.users_email_key|1");
	assert_string_equal(query(f, "SELECT group_concat(name, ',') FROM "
	                             "pragma_index_info('shop.users.users_a_b_idx')"), "a,b");
	/* The unique index holds: a duplicate email is refused, naming the table. */
	assert_int_equal(apply(f, false, mk_change(PS_OP_INSERT, t,
	                                           ROW("3", "x@example.org", "1", "r"), NULL, false)),
	                 PS_ESERVER);
	assert_contains(errtext(f), "shop.users");
	assert_contains(errtext(f), "UNIQUE");
	ps_table_def_free(d);
	ps_table_unref(t);
}

/* ==== schema changes (issue 15) ========================================== */

/* A change of t's definition to the columns of nt (its def numbered by
 * ordinals), with fill for added columns. */
static int follow(fixture *f, ps_table *prev, ps_table *nt, const coldesc *cols, const int *ords,
                  const char *fill, int follow_ddl, bool *backfill)
{
	ps_table_def *d = mk_def(nt, cols);
	ps_table_change tc = {.table = nt, .previous = prev, .def = d, .what = PS_TC_COLUMNS};
	ps_table_options opt = {.follow_ddl = follow_ddl};
	ps_txn txn = {.xid = 8};
	int rc;

	for (int i = 0; i < nt->ncolumns; i++) {
		d->columns[i].ordinal = ords[i];
		d->columns[i].fill = fill ? PS_FILL_VALUE : PS_FILL_NULL;
		d->columns[i].fill_value = fill ? strdup(fill) : NULL;
	}
	snprintf(txn.position, sizeof(txn.position), "0/20");
	ps_error_clear(&f->err);
	rc = ps_sink_sqlite.table_change(f->k, &txn, &tc, &opt, backfill, &f->err);
	ps_table_def_free(d);
	return rc;
}

static void test_a_table_penstock_made_follows_its_source(void **state)
{
	fixture *f = *state;
	static const coldesc v2[] = {{"id", INT4, true, true}, {"renamed", TEXT, false, false},
	                             {"qty", INT8, false, false}, {"added", TEXT, false, false}};
	static const coldesc v3[] = {{"id", INT4, true, true}, {"renamed", TEXT, false, false},
	                             {"qty", NUMERIC, false, false}, {"added", TEXT, false, false}};
	static const int ords1[] = {1, 2, 3, 4}, ords2[] = {1, 2, 4, 5}, ords3[] = {1, 2, 4, 5};
	ps_table *t, *t2, *t3;
	bool backfill = false;
	ps_table_def *d;

	open_sink(f);
	t = mk_table("public", "items", NITEMS, items_cols);
	d = mk_def(t, items_cols);
	for (int i = 0; i < NITEMS; i++)
		d->columns[i].ordinal = ords1[i];
	assert_int_equal(prepare(f, d, PS_CREATE_IF_MISSING, false, NULL), 0);
	ps_table_def_free(d);
	INS(f, t, "1", "one", "1.50", "10");
	INS(f, t, "2", "two", NULL, "20");
	flush(f);
	assert_string_equal(query(f, "SELECT name, columns FROM _penstock_tables"),
	                    "items|[{\"name\":\"id\",\"ordinal\":1},{\"name\":\"name\",\"ordinal\":2},"
	                    "{\"name\":\"price\",\"ordinal\":3},{\"name\":\"qty\",\"ordinal\":4}]");

	/* name renamed (same ordinal), price dropped, added (older rows get the
	 * source's value): in place */
	t2 = mk_table("public", "items", 4, v2);
	assert_int_equal(follow(f, t, t2, v2, ords2, "dflt", PS_FOLLOW_CREATED, &backfill), 0);
	assert_false(backfill);
	INS(f, t2, "3", "three", "30", "mine");
	flush(f);
	assert_string_equal(query(f, "SELECT id, renamed, qty, added FROM items ORDER BY id"),
	                    "1|one|10|dflt\n2|two|20|dflt\n3|three|30|mine");
	/* qty bigint -> numeric: another declared type, the table is rebuilt
	 * (its key kept) and the rows asked for again */
	t3 = mk_table("public", "items", 4, v3);
	assert_int_equal(follow(f, t2, t3, v3, ords3, NULL, PS_FOLLOW_CREATED, &backfill), 0);
	assert_true(backfill);
	INS(f, t3, "4", "four", "12345678901234567890.5", NULL);
	flush(f);
	assert_string_equal(query(f, "SELECT type FROM pragma_table_info('items') WHERE name = 'qty'"),
	                    "TEXT");
	assert_string_equal(query(f, "SELECT pk FROM pragma_table_info('items') WHERE name = 'id'"), "1");
	assert_string_equal(query(f, "SELECT id, renamed, qty, added FROM items ORDER BY id"),
	                    "1|one|10|dflt\n2|two|20|dflt\n3|three|30|mine\n"
	                    "4|four|12345678901234567890.5|NULL");
	/* follow_ddl none: the same change again is nothing to do, another one
	 * stops with the change and the fix */
	assert_int_equal(follow(f, t3, t3, v3, ords3, NULL, PS_FOLLOW_NONE, &backfill), 0);
	assert_int_not_equal(follow(f, t3, t2, v2, ords2, NULL, PS_FOLLOW_NONE, &backfill), 0);
	assert_contains(errtext(f), "column qty: INTEGER, was TEXT");
	assert_contains(errtext(f), "target.follow_ddl: none");
	assert_contains(errtext(f), "--strategy retry");
	ps_table_unref(t);
	ps_table_unref(t2);
	ps_table_unref(t3);
}

static void test_a_table_the_user_made_is_not_altered(void **state)
{
	fixture *f = *state;
	static const coldesc v2[] = {{"id", INT4, true, true}, {"name", TEXT, false, false},
	                             {"price", NUMERIC, false, false}, {"qty", INT8, false, false},
	                             {"added", TEXT, false, false}};
	static const int ords[] = {1, 2, 3, 4, 5};
	ps_table *t, *t2;
	bool backfill = false;

	open_sink(f);
	/* made by the user, with a column of their own */
	assert_int_equal(ps__sqlite_exec(f->k, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, "
	                                 "price TEXT, qty INTEGER, mine TEXT)", &f->err, "create"), 0);
	t = mk_table("public", "items", NITEMS, items_cols);
	t2 = mk_table("public", "items", 5, v2);
	assert_int_not_equal(follow(f, t, t2, v2, ords, NULL, PS_FOLLOW_CREATED, &backfill), 0);
	assert_contains(errtext(f), "table public.items changed on the source at 0/20: column added "
	                "TEXT added");
	assert_contains(errtext(f), "Its target table was not created by penstock");
	assert_contains(errtext(f), "follow_ddl to all");
	assert_string_equal(query(f, "SELECT count(*) FROM pragma_table_info('items')"), "5");
	/* with follow_ddl all it follows, keeping the user's column */
	assert_int_equal(follow(f, t, t2, v2, ords, NULL, PS_FOLLOW_ALL, &backfill), 0);
	flush(f);
	assert_string_equal(query(f, "SELECT group_concat(name) FROM pragma_table_info('items')"),
	                    "id,name,price,qty,mine,added");
	ps_table_unref(t);
	ps_table_unref(t2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_wal_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_creates_with_mapped_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_never_and_missing_columns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_refuses_rows_unless_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_key_order_and_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_key_not_in_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_typed_keys_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_insert_update_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_with_full_old_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_divergence_outside_reprocessing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_primary_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reprocessing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_table_and_column, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction_rolled_back_by_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redescribed_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_are_quoted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_finish_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_table_penstock_made_follows_its_source, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_a_table_the_user_made_is_not_altered, setup,
		                                teardown),
	};

	ps_log_configure(PS_LOG_WARN, PS_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
