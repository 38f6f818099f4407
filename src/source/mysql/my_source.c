/*
 * my_source.c — the MySQL/MariaDB source plugin: connections, the server's
 * settings, table selection, positions, options. The stream is in
 * my_stream.c, the initial load in my_snapshot.c.
 *
 * NOTES ON THE DESIGN
 *
 * 1. penstock reads the binlog as a replica does (COM_BINLOG_DUMP with its
 *    own server id). MariaDB keeps nothing for a replica: no slot pins the
 *    binlog, so retention is the server's (binlog_expire_logs_seconds) and
 *    a position whose file is gone is found at start and refused for good
 *    (the changes since are lost; recover with resync).
 * 2. `sql` is the reader thread's connection for catalog queries, positions
 *    and markers; the stream has its own (my_transport.c), and each copy
 *    worker its own (my_snapshot.c).
 * 3. Positions are "file:offset/GTID list" (my_position.c). prepare's start
 *    position is the binlog's end with the GTID state at exactly that
 *    offset (BINLOG_GTID_POS), so both parts name one point.
 * 4. A fresh start creates nothing on the source (res.created is set so the
 *    core knows no earlier run can have written past the point). Markers
 *    (fences, live table changes) need a table penstock.marks on the source,
 *    made on first use (my_live.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/my_internal.h"
#include "util/log.h"
#include "util/myconn.h"
#include "util/str.h"

static void my_close(ps_source *src)
{
	if (!src)
		return;
	my_stream_stop(src);
	if (src->sql)
		mysql_close(src->sql);
	my_tableinfos_free(src->tables, src->ntables);
	my_tableinfos_free(src->next_tables, src->nnext_tables);
	free(src->next_mark);
	ps_secret_free(src->password);
	free(src->job_name);
	free(src->url);
	ps_strv_free(src->include, src->ninclude);
	ps_strv_free(src->exclude, src->nexclude);
	free(src);
}

int my_source_connect(ps_source *src, MYSQL **out, const char *program, unsigned read_timeout,
                      ps_error *err)
{
	char prog[200];
	my_connect_opts opts = {.program = prog, .read_timeout = read_timeout};

	snprintf(prog, sizeof(prog), "penstock %s %s", program, src->job_name);
	return my_connect(out, &src->parsed, src->password, &opts, err);
}

/* A server id for the dump when the spec gives none: a hash of the job
 * name, above the ids people give servers by hand. */
static uint32_t default_server_id(const char *job)
{
	uint32_t h = 2166136261u;

	for (const char *p = job; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return 1000000000u + h % 3000000000u;
}

static int my_open(ps_source **out, const ps_source_config *cfg, ps_error *err)
{
	ps_source *src = calloc(1, sizeof(*src));
	const char *zd;
	long long sid;
	int rc;

	*out = NULL;
	if (!src)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	src->job_name = strdup(cfg->job_name);
	src->url = strdup(cfg->url);
	src->password = cfg->password ? strdup(cfg->password) : NULL;
	src->include = ps_strv_copy((char *const *)cfg->include, cfg->ninclude);
	src->exclude = ps_strv_copy((char *const *)cfg->exclude, cfg->nexclude);
	src->ninclude = cfg->ninclude;
	src->nexclude = cfg->nexclude;
	src->want_snapshot = cfg->want_snapshot;
	if (!src->job_name || !src->url || !src->include || !src->exclude ||
	    (cfg->password && !src->password)) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto fail;
	}
	sid = ps_option_int(cfg->options, "server_id", 0);
	src->server_id = sid > 0 ? (uint32_t)sid : default_server_id(src->job_name);
	zd = ps_option_str(cfg->options, "zero_dates");
	src->zero_dates_null = zd && strcmp(zd, "null") == 0;
	src->include_query = ps_option_bool(cfg->options, "include_query", false);
	src->keyless = cfg->keyless;
	rc = ps_url_parse(&src->parsed, src->url, err);
	if (rc != PS_OK)
		goto fail;
	ps_url_host_port(&src->parsed, src->where, sizeof(src->where));
	rc = my_source_connect(src, &src->sql, "source", 0, err);
	if (rc != PS_OK)
		goto fail;
	*out = src;
	return PS_OK;
fail:
	my_close(src);
	return rc;
}

/* --- the server's settings ---------------------------------------------------- */

typedef struct setting {
	const char *name;      /* variable */
	const char *want;      /* required value (case-insensitive) */
	const char *fix;
} setting;

static const setting REQUIRED[] = {
	{"log_bin", "1", "start MariaDB with log_bin (e.g. log_bin=binlog in my.cnf) and restart it"},
	{"binlog_format", "ROW", "SET GLOBAL binlog_format = 'ROW'; and binlog_format=ROW in my.cnf"},
	{"binlog_row_image", "FULL",
	 "SET GLOBAL binlog_row_image = 'FULL'; and binlog_row_image=FULL in my.cnf"},
	{"binlog_row_metadata", "FULL",
	 "SET GLOBAL binlog_row_metadata = 'FULL'; and binlog_row_metadata=FULL in my.cnf"},
	{NULL, NULL, NULL},
};

static int check_server(ps_source *src, ps_prepare_result *res, ps_error *err)
{
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	int rc;

	rc = my_query(src->sql, "SELECT VERSION(), @@log_bin, @@binlog_format, @@binlog_row_image, "
	              "@@binlog_row_metadata, @@server_id, @@hostname, @@port",
	              &r, "reading the server's settings", err);
	if (rc != PS_OK)
		return rc;
	row = mysql_fetch_row(r);
	if (!row) {
		mysql_free_result(r);
		return ps_error_set(err, PS_EPROTO, "reading the server's settings: no row");
	}
	snprintf(src->server_version, sizeof(src->server_version), "%s", row[0] ? row[0] : "");
	snprintf(res->server_version, sizeof(res->server_version), "%s", src->server_version);
	if (!strstr(src->server_version, "MariaDB"))
		ps_log_warn("the source is not MariaDB (%s): penstock reads MariaDB's binlog; MySQL's "
		            "own event formats (GTID, binary JSON, transaction payloads) stop the job "
		            "with 'not supported yet'", src->server_version);
	for (int i = 0; REQUIRED[i].name && rc == PS_OK; i++) {
		const char *v = row[i + 1] ? row[i + 1] : "";
		if (strcasecmp(v, REQUIRED[i].want) != 0)
			rc = ps_error_set(err, PS_EINVAL, "%s is '%s' but penstock needs '%s': %s",
			                  REQUIRED[i].name, v, REQUIRED[i].want, REQUIRED[i].fix);
	}
	snprintf(src->server_uuid, sizeof(src->server_uuid), "%s:%s/%s", row[6] ? row[6] : "",
	         row[7] ? row[7] : "", row[5] ? row[5] : "");
	snprintf(res->server_id, sizeof(res->server_id), "%s", src->server_uuid);
	mysql_free_result(r);
	return rc;
}

int my_current_position(ps_source *src, char *buf, size_t len, ps_error *err)
{
	MYSQL_RES *r = NULL;
	MYSQL_ROW row;
	char file[MY_FILE_MAX], gtid[PS_POSITION_MAX];
	unsigned long long off;
	ps_buf sql;
	bool found;
	int rc;

	rc = my_query(src->sql, "SHOW MASTER STATUS", &r, "reading the binlog position", err);
	if (rc != PS_OK)
		return rc;
	row = mysql_fetch_row(r);
	if (!row || !row[0] || !row[1]) {
		mysql_free_result(r);
		return ps_error_set(err, PS_EINVAL, "SHOW MASTER STATUS returned nothing: the binlog is "
		                    "off; start MariaDB with log_bin");
	}
	snprintf(file, sizeof(file), "%s", row[0]);
	off = strtoull(row[1], NULL, 10);
	mysql_free_result(r);
	ps_buf_init(&sql, 1024);
	ps_buf_puts(&sql, "SELECT BINLOG_GTID_POS(");
	my_quote_literal(src->sql, &sql, file);
	ps_buf_printf(&sql, ", %llu)", off);
	rc = sql.data ? my_query_text(src->sql, sql.data, gtid, sizeof(gtid), &found,
	                              "reading the GTID state", err)
	              : ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_free(&sql);
	if (rc == PS_OK)
		my_pos_format(buf, len, file, off, gtid);
	return rc;
}

static int my_current_position_cb(ps_source *src, char *buf, size_t len, ps_error *err)
{
	return my_current_position(src, buf, len, err);
}

static int select_tables(ps_source *src, ps_prepare_result *res, ps_error *err)
{
	ps_buf refused;
	int rc;

	ps_buf_init(&refused, 1 << 16);
	my_tableinfos_free(src->tables, src->ntables);
	src->tables = NULL;
	src->ntables = 0;
	rc = my_catalog_load(src->sql, src->include, src->ninclude, src->exclude, src->nexclude,
	                     &src->tables, &src->ntables, &refused, err);
	if (rc == PS_OK && refused.len)
		rc = ps_error_set(err, PS_EINVAL, "tables of a storage engine without transactions: "
		                  "%s. Their changes have no transaction boundary in the binlog and a "
		                  "consistent snapshot cannot see them at one point. Fix: ALTER TABLE "
		                  "... ENGINE=InnoDB, or add them to tables.exclude", refused.data);
	else if (rc == PS_OK && src->ntables == 0)
		rc = ps_error_set(err, PS_EINVAL, "tables.include matched no table on the source; list "
		                  "them with SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM "
		                  "information_schema.TABLES and fix the patterns (they are "
		                  "database.table globs)");
	for (size_t i = 0; rc == PS_OK && i < src->ntables; i++) {
		if (src->tables[i].has_pk)
			continue;
		if (src->keyless == PS_KEYLESS_REFUSE)
			rc = ps_error_set(err, PS_EINVAL, "table %s.%s has no primary key and "
			                  "tables.keyless is refuse. Fix: ALTER TABLE `%s`.`%s` ADD PRIMARY "
			                  "KEY (...), exclude it, or set tables.keyless", src->tables[i].db,
			                  src->tables[i].name, src->tables[i].db, src->tables[i].name);
		else if (src->keyless == PS_KEYLESS_INSERT_ONLY)
			ps_log_warn("table %s.%s has no primary key: only its inserts and truncates are "
			            "captured (tables.keyless insert_only; replica_identity_full captures "
			            "whole rows)", src->tables[i].db, src->tables[i].name);
	}
	for (size_t i = 0; rc == PS_OK && i < src->ntables; i++) {
		const my_tableinfo *t = &src->tables[i];
		for (int j = 0; j < t->ncols; j++)
			if (t->cols[j].generated)
				ps_log_warn("column %s of %s.%s is generated: its values are copied like "
				            "any other, and the target computes nothing", t->cols[j].name,
				            t->db, t->name);
	}
	res->ntables = src->ntables;
	ps_buf_free(&refused);
	return rc;
}

static int my_prepare(ps_source *src, int mode, ps_prepare_result *res, ps_error *err)
{
	int rc = check_server(src, res, err);

	if (rc == PS_OK)
		rc = select_tables(src, res, err);
	if (rc == PS_OK)
		rc = my_current_position(src, res->start_position, sizeof(res->start_position), err);
	if (rc != PS_OK)
		return rc;
	res->created = mode != PS_PREPARE_MUST_EXIST;
	if (src->want_snapshot) {
		/* each copy worker opens its own consistent snapshot at or after this
		 * point and reports its own (my_snapshot.c) */
		snprintf(src->snap_point, sizeof(src->snap_point), "%s", res->start_position);
		snprintf(res->snapshot, sizeof(res->snapshot), "consistent-snapshot");
		src->snap_exported = true;
	}
	snprintf(res->summary, sizeof(res->summary), "%s, binlog as replica server id %u",
	         src->server_version, src->server_id);
	snprintf(res->log_reader, sizeof(res->log_reader), "binlog reader (server id %u)",
	         src->server_id);
	if (mode != PS_PREPARE_MUST_EXIST) {
		res->state = strdup("{\"shapes\":[]}");
		if (!res->state)
			return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	return PS_OK;
}

/* --- positions ---------------------------------------------------------------- */

static long long my_position_distance(const char *from, const char *to)
{
	my_pos a, b;
	ps_error e;

	if (my_pos_parse(from, &a, &e) != PS_OK || my_pos_parse(to, &b, &e) != PS_OK ||
	    !a.file[0] || !b.file[0] || a.filenum != b.filenum)
		return -1;
	return b.offset > a.offset ? (long long)(b.offset - a.offset) : 0;
}

/* A bound a user gives (`penstock run --until`) must be ordered: file:offset,
 * with or without the GTID list. */
static int my_position_check(const char *text, ps_error *err)
{
	my_pos p;
	int rc = my_pos_parse(text, &p, err);

	if (rc == PS_OK && !p.file[0])
		rc = ps_error_set(err, PS_EINVAL, "position '%s' is a GTID list alone; a bound needs "
		                  "the binlog file and offset, e.g. binlog.000003:1234 (SHOW MASTER "
		                  "STATUS)", text);
	return rc;
}

/* Nothing is held on the source but the job's marker row. */
static int my_drop(ps_source *src, char *done, size_t done_len, ps_error *err)
{
	ps_buf sql;
	bool found = false;
	char exists[8];
	int rc;

	my_stream_stop(src);
	rc = my_query_text(src->sql, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '"
	                   MY_MARKS_DB "' AND TABLE_NAME = '" MY_MARKS_TABLE "'", exists,
	                   sizeof(exists), &found, "looking for the marker table", err);
	if (rc != PS_OK || !found) {
		snprintf(done, done_len, "nothing held on the source (MariaDB keeps no slot)");
		return rc;
	}
	ps_buf_init(&sql, 4096);
	ps_buf_puts(&sql, "DELETE FROM `" MY_MARKS_DB "`.`" MY_MARKS_TABLE "` WHERE job = ");
	my_quote_literal(src->sql, &sql, src->job_name);
	rc = sql.data ? my_exec(src->sql, sql.data, "deleting the job's markers", err)
	              : ps_error_set(err, PS_ENOMEM, "out of memory");
	ps_buf_free(&sql);
	if (rc == PS_OK)
		snprintf(done, done_len, "deleted the job's markers in " MY_MARKS_DB "."
		         MY_MARKS_TABLE " (MariaDB keeps no slot)");
	return rc;
}

/* --- options ------------------------------------------------------------------ */

static const char *const zero_date_choices[] = {"keep", "null", NULL};

static const ps_option_def my_options[] = {
	{.name = "server_id", .kind = PS_OPTION_INTEGER, .min = 0, .max = 4294967295LL,
	 .default_int = 0,
	 .doc = "the replica server id the binlog is read with; 0: derived from the job name. "
	        "Two readers with one id disconnect each other"},
	{.name = "zero_dates", .kind = PS_OPTION_CHOICE, .choices = zero_date_choices,
	 .default_text = "keep",
	 .doc = "zero dates ('0000-00-00', '2024-00-10'): keep their spelling, or null"},
	{.name = "include_query", .kind = PS_OPTION_BOOL, .default_int = 0,
	 .doc = "put the statement that made each change (ANNOTATE_ROWS) in its event's "
	        "source block, like Debezium's include.query"},
	{.name = NULL},
};

static void my_resources(const json_t *opts, ps_source_resources *out)
{
	/* a noun phrase: the core writes "releasing %s", "held no %s" */
	snprintf(out->held, sizeof(out->held), "markers in penstock.marks");
	snprintf(out->log_reader, sizeof(out->log_reader), "binlog reader");
	snprintf(out->release, sizeof(out->release), "DELETE FROM penstock.marks WHERE job = "
	         "'<job name>';  (MariaDB keeps no slot for a replica: binlogs stay as long as "
	         "binlog_expire_logs_seconds says)");
}

static const char *const my_schemes[] = {"mysql", NULL};

const ps_source_ops ps_source_mysql = {
	.abi_version = PS_SOURCE_ABI_VERSION,
	.name = "mysql",
	.connector = "mysql",
	.url_schemes = my_schemes,
	.options = my_options,
	.check_ids = my_check_ids,
	.resources = my_resources,
	.open = my_open,
	.prepare = my_prepare,
	.start = my_stream_start,
	.read = my_stream_read,
	.ack = my_stream_ack,
	.position_compare = my_position_compare,
	.current_position = my_current_position_cb,
	.position_check = my_position_check,
	.position_distance = my_position_distance,
	.fence = my_stream_fence,
	.drop = my_drop,
	.close = my_close,
	.describe = my_describe,
	.split = my_split,
	.snapshot_export = my_snapshot_export,
	.snapshot_release = my_snapshot_release,
	.copy_open = my_copy_open,
	.copy_unit = my_copy_unit,
	.copy_close = my_copy_close,
	.copy_point = my_copy_point,
	.precheck = my_precheck,
	.retable = my_retable,
	.mark = my_mark,
	.chunk_read = my_chunk_read,
	.sequences = my_sequences,
};
