/*
 * pg_source.c — the PostgreSQL source plugin: connections, table selection,
 * publication and replication slot. The stream itself is in pg_stream.c.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Two connections: `sql` for catalog queries and DDL on the publication,
 *    `repl` (replication=database) for the slot and the stream. Both belong
 *    to the reader thread.
 * 2. Tables are chosen by the spec's glob patterns against the catalog at
 *    prepare time, and the publications are made to list exactly them
 *    (pgsrc_select.c: partitions go with their parent).
 * 3. A table without a usable replica identity (no primary key and REPLICA
 *    IDENTITY DEFAULT, or NOTHING) is never published for UPDATE and
 *    DELETE: that would make those statements fail *on the source*,
 *    breaking the user's application. tables.keyless says whether it is
 *    captured insert-only (default), refused, or given REPLICA IDENTITY
 *    FULL (pgsrc_select.c note 3).
 * 4. The slot is the log retention handle. Resuming requires it to exist:
 *    recreating it would silently skip every change since the checkpoint.
 * 5. Initial load (cfg.want_snapshot): a slot created now exports its
 *    snapshot, which stays importable until the next command on `repl`
 *    (START_REPLICATION, or anything else): copy workers import it in the
 *    meantime. The selected tables' OIDs are kept for describe
 *    (pg_snapshot.c); copying is in pgsrc_copy.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "source/pg/pg_internal.h"
#include "util/pgconn.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"

static void pg_close(ps_source *src)
{
	if (!src)
		return;
	pg_snapshot_release(src, NULL);
	pgo_msg_clear(&src->msg);
	for (int i = src->pending_next; i < src->npending; i++)
		ps_change_free(src->pending[i].change);
	if (src->repl)
		PQfinish(src->repl);
	if (src->sql)
		PQfinish(src->sql);
	pgo_relcache_free(src->cache);
	pg_ddl_free(src->ddl);
	ps_strv_free(src->table_names, src->ntable_oids);
	free(src->table_sigs);
	ps_secret_free(src->password);
	free(src->job_name);
	free(src->url);
	free(src->slot);
	free(src->publication);
	ps_strv_free(src->include, src->ninclude);
	ps_strv_free(src->exclude, src->nexclude);
	free(src->table_oids);
	free(src->table_insert_only);
	free(src->wait_xids);
	free(src);
}

static int pg_open(ps_source **out, const ps_source_config *cfg, ps_error *err)
{
	ps_source *src = calloc(1, sizeof(*src));
	int rc;

	*out = NULL;
	if (!src)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	src->job_name = strdup(cfg->job_name);
	src->url = strdup(cfg->url);
	src->password = cfg->password ? strdup(cfg->password) : NULL;
	src->slot = pg_option_dup(cfg->options, "slot", cfg->job_name);
	src->publication = pg_option_dup(cfg->options, "publication", cfg->job_name);
	src->include = ps_strv_copy((char *const *)cfg->include, cfg->ninclude);
	src->exclude = ps_strv_copy((char *const *)cfg->exclude, cfg->nexclude);
	src->ninclude = cfg->ninclude;
	src->nexclude = cfg->nexclude;
	src->want_snapshot = cfg->want_snapshot;
	src->schema = cfg->schema;
	src->keyless = cfg->keyless;
	src->foreign_keys = cfg->foreign_keys;
	src->no_extensions = cfg->no_extensions;
	src->load_only = cfg->load_only;
	src->cache = pgo_relcache_new();
	if (!src->job_name || !src->url || !src->slot || !src->publication || !src->include ||
	    !src->exclude || !src->cache || (cfg->password && !src->password)) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory");
		goto fail;
	}
	rc = ps_url_parse(&src->parsed, src->url, err);
	if (rc != PS_OK)
		goto fail;
	snprintf(src->app_name, sizeof(src->app_name), "penstock_%s", src->job_name);
	rc = pg_connect(&src->sql, src->url, &src->parsed, src->password, false, src->app_name, err);
	if (rc != PS_OK)
		goto fail;
	pg_catalog_session(src->sql);
	rc = pg_connect(&src->repl, src->url, &src->parsed, src->password, true, src->app_name, err);
	if (rc != PS_OK)
		goto fail;
	*out = src;
	return PS_OK;
fail:
	pg_close(src);
	return rc;
}

/* --- checks --------------------------------------------------------------- */

static int check_server(ps_source *src, ps_prepare_result *res, ps_error *err)
{
	PGresult *r = NULL;
	int rc;

	rc = pg_exec(src->sql, &r, err, "reading server settings",
	             "SELECT current_setting('server_version_num')::int, "
	             "current_setting('wal_level'), current_setting('server_version'), "
	             "pg_encoding_to_char(encoding) FROM pg_database "
	             "WHERE datname = current_database()", 0, NULL);
	if (rc != PS_OK)
		return rc;
	snprintf(res->server_version, sizeof(res->server_version), "%s", PQgetvalue(r, 0, 2));
	if (strtol(PQgetvalue(r, 0, 0), NULL, 10) < 100000) {
		rc = ps_error_set(err, PS_EINVAL, "PostgreSQL %s is too old: penstock needs 10 or later",
		                  res->server_version);
	} else if (strcmp(PQgetvalue(r, 0, 1), "logical") != 0) {
		rc = ps_error_set(err, PS_EINVAL,
		                  "wal_level is '%s' but logical decoding needs 'logical': run "
		                  "ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL",
		                  PQgetvalue(r, 0, 1));
	} else if (strcmp(PQgetvalue(r, 0, 3), "UTF8") != 0) {
		ps_log_warn("source database encoding is %s, not UTF8: text is passed through as "
		            "the server sends it and bytes that are not UTF-8 become U+FFFD in JSON",
		            PQgetvalue(r, 0, 3));
	}
	PQclear(r);
	return rc;
}

static int identify_system(ps_source *src, ps_prepare_result *res, ps_error *err)
{
	PGresult *r = PQexec(src->repl, "IDENTIFY_SYSTEM");
	int rc = PS_OK;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
		rc = pg_result_error(err, src->repl, r, "IDENTIFY_SYSTEM");
	else
		snprintf(res->server_id, sizeof(res->server_id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

/* --- table selection (pgsrc_select.c) ------------------------------------- */

/* Selects the tables, applies tables.keyless and makes the publications
 * publish them; *count receives how many. Their OIDs (and which are
 * insert-only) are kept for describe. */
static int select_tables(ps_source *src, size_t *count, ps_error *err)
{
	pg_selection sel;
	bool *insert_only = NULL;
	int rc;

	*count = 0;
	rc = pg_select(src, src->include, src->ninclude, src->exclude, src->nexclude, &sel, err);
	if (rc != PS_OK)
		return rc;
	rc = pg_keyless_policy(src, &sel, err);
	if (rc == PS_OK)
		rc = pg_publications_ensure(src, &sel, err);
	if (rc == PS_OK) {
		insert_only = calloc(sel.n + 1, sizeof(bool));
		if (!insert_only)
			rc = ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	if (rc != PS_OK) {
		pg_selection_free(&sel);
		return rc;
	}
	for (size_t i = 0; i < sel.n; i++)
		insert_only[i] = pg_selected_insert_only(src, i, &sel);
	pg_selection_keep(src, &sel, insert_only);
	*count = src->ntable_oids;
	pg_selection_free(&sel);
	return PS_OK;
}

/* --- slot ------------------------------------------------------------------ */

static int slot_lookup(ps_source *src, bool *exists, bool *lost, char *confirmed, size_t len,
                       ps_error *err)
{
	const char *params[1] = {src->slot};
	PGresult *r = NULL;
	int rc;

	*exists = false;
	*lost = false;
	rc = pg_exec(src->sql, &r, err, "looking up the replication slot",
	             "SELECT plugin, database = current_database(), active_pid, "
	             "  coalesce(confirmed_flush_lsn::text, ''), slot_type, "
	             "  coalesce(wal_status, '') "
	             "FROM pg_replication_slots WHERE slot_name = $1", 1, params);
	if (rc != PS_OK)
		return rc;
	if (PQntuples(r) == 0)
		goto cleanup;
	*exists = true;
	if (strcmp(PQgetvalue(r, 0, 4), "logical") != 0 || strcmp(PQgetvalue(r, 0, 0), "pgoutput") != 0 ||
	    PQgetvalue(r, 0, 1)[0] != 't') {
		rc = ps_error_set(err, PS_EINVAL,
		                  "replication slot %s exists but is not a pgoutput slot of database "
		                  "'%s'; set source.slot to another name", src->slot, PQdb(src->sql));
	} else if (strcmp(PQgetvalue(r, 0, 5), "lost") == 0) {
		*lost = true;   /* invalidated: prepare_slot decides (replace or refuse) */
	} else if (!PQgetisnull(r, 0, 2)) {
		/* object_in_use: a retry may find it free (the last run's walsender
		 * exiting), so it is a server condition, not bad input */
		rc = ps_error_set(err, PS_ESERVER,
		                  "replication slot %s is in use by server process %s: is another "
		                  "penstock running job '%s'? Stop it first", src->slot,
		                  PQgetvalue(r, 0, 2), src->job_name);
		pg_error_sqlstate(err, "55006");
	} else {
		snprintf(confirmed, len, "%s", PQgetvalue(r, 0, 3));
	}
cleanup:
	PQclear(r);
	return rc;
}

static int slot_drop(ps_source *src, ps_error *err)
{
	const char *params[1] = {src->slot};

	return pg_exec(src->sql, NULL, err, "dropping the replication slot",
	               "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
	               "WHERE slot_name = $1", 1, params);
}

/* Creates the slot; with want_snapshot it exports a snapshot (design note
 * 5), whose name goes to res->snapshot and src->snapshot. */
static int slot_create(ps_source *src, ps_prepare_result *res, ps_error *err)
{
	PGresult *r = NULL;
	ps_buf cmd;
	int rc = PS_OK;

	ps_buf_init(&cmd, 1024);
	ps_buf_puts(&cmd, "CREATE_REPLICATION_SLOT ");
	pg_quote_ident(src->repl, &cmd, src->slot);
	ps_buf_puts(&cmd, src->want_snapshot ? " LOGICAL pgoutput EXPORT_SNAPSHOT"
	                                     : " LOGICAL pgoutput NOEXPORT_SNAPSHOT");
	r = PQexec(src->repl, cmd.data);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQnfields(r) < 3) {
		rc = pg_result_error(err, src->repl, r, "creating the replication slot");
	} else {
		snprintf(res->start_position, sizeof(res->start_position), "%s", PQgetvalue(r, 0, 1));
		if (src->want_snapshot && !PQgetisnull(r, 0, 2)) {
			snprintf(src->snapshot, sizeof(src->snapshot), "%s", PQgetvalue(r, 0, 2));
			snprintf(res->snapshot, sizeof(res->snapshot), "%s", src->snapshot);
		}
	}
	PQclear(r);
	ps_buf_free(&cmd);
	return rc;
}

static int prepare_slot(ps_source *src, int mode, ps_prepare_result *res, ps_error *err)
{
	bool exists, lost;
	int rc;

	rc = slot_lookup(src, &exists, &lost, res->start_position, sizeof(res->start_position), err);
	if (rc != PS_OK)
		return rc;
	if (lost && mode != PS_PREPARE_RECREATE) {
		/* invalidated (max_slot_wal_keep_size): it can never deliver again */
		rc = ps_error_set(err, PS_ESERVER,
		                  "replication slot %s was invalidated: the server removed log it still "
		                  "needed (max_slot_wal_keep_size), so it cannot deliver changes any more",
		                  src->slot);
		pg_error_sqlstate(err, "55000");
		return rc;
	}
	if (mode == PS_PREPARE_MUST_EXIST && !exists)
		return ps_error_set(err, PS_ECHECKPOINT,
		                    "replication slot %s no longer exists, so the changes since the "
		                    "checkpoint are gone from the source's log. Start over with "
		                    "\"resume\": \"never\" (the target must then be loaded again)",
		                    src->slot);
	if (mode == PS_PREPARE_RECREATE && exists) {
		rc = slot_drop(src, err);
		if (rc != PS_OK)
			return rc;
		exists = false;
	}
	if (exists)
		return PS_OK;
	rc = slot_create(src, res, err);
	if (rc == PS_OK)
		res->created = true;
	return rc;
}

/* The plugin's words for the log and its state for the checkpoint. */
static int describe_prepared(ps_source *src, ps_prepare_result *res, ps_error *err)
{
	json_t *state = json_pack("{s:s, s:s}", "slot", src->slot, "publication", src->publication);

	snprintf(res->summary, sizeof(res->summary), "PostgreSQL %s, publication %s",
	         res->server_version, src->publication);
	snprintf(res->log_reader, sizeof(res->log_reader), "slot %s", src->slot);
	res->state = state ? json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(state);
	return res->state ? PS_OK : ps_error_set(err, PS_ENOMEM, "out of memory");
}

static int pg_prepare(ps_source *src, int mode, ps_prepare_result *res, ps_error *err)
{
	int rc;

	src->snapshot[0] = '\0';   /* any earlier one ends with the next command on repl */
	rc = check_server(src, res, err);
	if (rc == PS_OK)
		rc = identify_system(src, res, err);
	if (rc == PS_OK)
		rc = select_tables(src, &res->ntables, err);
	if (rc == PS_OK)
		rc = prepare_slot(src, mode, res, err);
	if (rc == PS_OK)
		rc = describe_prepared(src, res, err);
	return rc;
}

/* --- positions ------------------------------------------------------------ */

static int pg_position_compare(const char *a, const char *b)
{
	uint64_t x = 0, y = 0;

	if (a && *a)
		pgo_lsn_parse(a, &x);
	if (b && *b)
		pgo_lsn_parse(b, &y);
	return (x > y) - (x < y);
}

static int pg_position_check(const char *text, ps_error *err)
{
	uint64_t lsn;

	if (pgo_lsn_parse(text, &lsn) != PS_OK)
		return ps_error_set(err, PS_EINVAL, "'%.64s' is not a PostgreSQL log position; write "
		                    "an LSN such as 0/16B3F10 (pg_current_wal_lsn() gives one)", text);
	return PS_OK;
}

static long long pg_position_distance(const char *from, const char *to)
{
	uint64_t x, y;

	if (pgo_lsn_parse(from, &x) != PS_OK || pgo_lsn_parse(to, &y) != PS_OK)
		return -1;
	return y > x ? (long long)(y - x) : 0;
}

static int pg_current_position(ps_source *src, char *buf, size_t len, ps_error *err)
{
	PGresult *r = NULL;
	int rc = pg_exec(src->sql, &r, err, "reading the current WAL position",
	                 "SELECT pg_current_wal_insert_lsn()::text", 0, NULL);

	if (rc == PS_OK)
		snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

/* What the slot keeps (source.h log_retention): from pg_replication_slots,
 * with wal_status and safe_wal_size from PostgreSQL 13 on, and the limit
 * max_slot_wal_keep_size (-1, no limit, is left -1). No row (the slot is
 * gone): every figure unknown; the stream reports the loss itself. */
static int pg_log_retention(ps_source *src, ps_log_retention *out, ps_error *err)
{
	static const char *const sql13 =
		"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text, wal_status, "
		"safe_wal_size::text, "
		"pg_size_bytes(NULLIF(current_setting('max_slot_wal_keep_size'), '-1'))::text "
		"FROM pg_replication_slots WHERE slot_name = $1";
	static const char *const sql10 =
		"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text, NULL, NULL, NULL "
		"FROM pg_replication_slots WHERE slot_name = $1";
	const char *params[1] = {src->slot};
	long long *figures[3] = {&out->retained_bytes, &out->safe_bytes, &out->limit_bytes};
	const int columns[3] = {0, 2, 3};
	PGresult *r = NULL;
	int rc;

	rc = pg_exec(src->sql, &r, err, "reading the slot's retained WAL",
	             PQserverVersion(src->sql) >= 130000 ? sql13 : sql10, 1, params);
	if (rc == PS_OK && PQntuples(r) == 1) {
		for (int i = 0; i < 3; i++) {
			char *end = NULL;
			long long v;

			if (PQgetisnull(r, 0, columns[i]))
				continue;
			v = strtoll(PQgetvalue(r, 0, columns[i]), &end, 10);
			if (end && *end == '\0')
				*figures[i] = v < 0 ? 0 : v;
		}
		if (!PQgetisnull(r, 0, 1))
			snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return rc;
}

static long long pg_position_offset(const char *pos)
{
	uint64_t lsn;

	if (pgo_lsn_parse(pos, &lsn) != PS_OK || lsn > (uint64_t)INT64_MAX)
		return -1;
	return (long long)lsn;
}

/* Drops slot and publication. The last run's walsender may still hold the
 * slot for a moment after its connection closed (object_in_use): tried
 * again for up to 10 s. */
static int pg_drop(ps_source *src, char *done, size_t done_len, ps_error *err)
{
	char inserts[PG_PUBNAME_MAX];
	const char *params[2];
	PGresult *r = NULL;
	bool foreign;
	ps_buf sql;
	int rc;

	if (src->repl) {
		PQfinish(src->repl);   /* releases the slot if it was streaming */
		src->repl = NULL;
		src->streaming = false;
		src->snapshot[0] = '\0'; /* ended with the connection */
	}
	for (int i = 0;; i++) {
		struct timespec nap = {0, 200 * 1000000L};

		rc = slot_drop(src, err);
		if (rc == PS_OK || strcmp(pg_sqlstate(err), "55006") != 0 || i == 49)
			break;
		nanosleep(&nap, NULL);
	}
	if (rc != PS_OK)
		return rc;
	/* a publication another role owns stays: its owner made it for the job
	 * (pgsrc_select.c note 7) and may give it to the next one */
	pg_inserts_publication(src->publication, inserts, sizeof(inserts));
	params[0] = src->publication;
	params[1] = inserts;
	rc = pg_exec(src->sql, &r, err, "looking up the publications",
	             "SELECT pubname, pg_has_role(pubowner, 'USAGE') FROM pg_publication "
	             "WHERE pubname IN ($1, $2)", 2, params);
	if (rc != PS_OK)
		return rc;
	foreign = false;
	ps_buf_init(&sql, 1024);
	for (int i = 0; i < PQntuples(r); i++) {
		if (PQgetvalue(r, i, 1)[0] != 't') {
			foreign = true;
			continue;
		}
		ps_buf_puts(&sql, sql.len ? ", " : "DROP PUBLICATION IF EXISTS ");
		pg_quote_ident(src->sql, &sql, PQgetvalue(r, i, 0));
	}
	PQclear(r);
	if (sql.len)
		rc = pg_exec(src->sql, NULL, err, "dropping the publications", sql.data, 0, NULL);
	ps_buf_free(&sql);
	if (rc == PS_OK && foreign)
		snprintf(done, done_len, "dropped slot %s on the source; publications %s and %s "
		         "belong to another role and are left for it", src->slot, src->publication,
		         inserts);
	else if (rc == PS_OK)
		snprintf(done, done_len, "dropped slot %s and publication %s (and %s) on the source",
		         src->slot, src->publication, inserts);
	return rc;
}

/* --- options -------------------------------------------------------------- */

/* penstock_<job>, '-' made '_' (a slot name cannot hold '-'). */
static void default_name(const char *job_name, char *buf, size_t len)
{
	snprintf(buf, len, "penstock_%s", job_name ? job_name : "");
	for (char *p = buf; *p; p++)
		if (*p == '-')
			*p = '_';
}

/* ^[a-z0-9_]{1,63}$ — a replication slot or publication name. */
static const char *check_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63)
		return "is not valid; use 1 to 63 characters a-z, 0-9 or '_'";
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return "is not valid; use 1 to 63 characters a-z, 0-9 or '_'";
	return NULL;
}

static const ps_option_def pg_options[] = {
	{.name = "slot", .kind = PS_OPTION_STRING, .default_fn = default_name, .check = check_name,
	 .restart = true, .unique = true, .doc = "the logical replication slot; default penstock_<name>"},
	{.name = "publication", .kind = PS_OPTION_STRING, .default_fn = default_name,
	 .check = check_name, .restart = true, .unique = true,
	 .doc = "the publication of the selected tables; default penstock_<name>"},
	{.name = NULL},
};

char *pg_option_dup(const json_t *opts, const char *name, const char *job_name)
{
	const char *v = ps_option_str(opts, name);
	char dflt[80];

	if (!v) {
		default_name(job_name, dflt, sizeof(dflt));
		v = dflt;
	}
	return strdup(v);
}

static void pg_resources(const json_t *opts, ps_source_resources *out)
{
	const char *slot = ps_option_str(opts, "slot");
	const char *pub = ps_option_str(opts, "publication");
	char inserts[PG_PUBNAME_MAX];

	if (!slot || !pub)
		return;
	pg_inserts_publication(pub, inserts, sizeof(inserts));
	snprintf(out->held, sizeof(out->held), "slot %s and publication %s", slot, pub);
	snprintf(out->log_reader, sizeof(out->log_reader), "slot %s", slot);
	/* the insert-only publication goes too (pgsrc_select.c note 4) */
	snprintf(out->release, sizeof(out->release), "SELECT pg_drop_replication_slot('%s'); "
	         "DROP PUBLICATION IF EXISTS \"%s\", \"%s\";", slot, pub, inserts);
}

static const char *const pg_schemes[] = {"postgresql", NULL};

const ps_source_ops ps_source_pg = {
	.abi_version = PS_SOURCE_ABI_VERSION,
	.name = "pg",
	.connector = "postgresql",
	.url_schemes = pg_schemes,
	.options = pg_options,
	.check_ids = pg_check_ids,
	.resources = pg_resources,
	.open = pg_open,
	.prepare = pg_prepare,
	.start = pg_stream_start,
	.read = pg_stream_read,
	.ack = pg_stream_ack,
	.position_compare = pg_position_compare,
	.current_position = pg_current_position,
	.position_check = pg_position_check,
	.position_distance = pg_position_distance,
	.fence = pg_stream_fence,
	.drop = pg_drop,
	.close = pg_close,
	.describe = pg_describe,
	.split = pg_split,
	.snapshot_export = pg_snapshot_export,
	.snapshot_release = pg_snapshot_release,
	.copy_open = pg_copy_open,
	.copy_unit = pg_copy_unit,
	.copy_close = pg_copy_close,
	.precheck = pg_precheck,
	.retable = pg_retable,
	.mark = pg_mark,
	.chunk_read = pg_chunk_read,
	.copy_raw_format = pg_copy_raw_format,
	.copy_unit_raw = pg_copy_unit_raw,
	.sequences = pg_sequences,
	.schema_after_load = pg_schema_after_load,
	.log_retention = pg_log_retention,
	.position_offset = pg_position_offset,
	.selection_check = pg_selection_check,
	.redescribe = pg_redescribe,
};
