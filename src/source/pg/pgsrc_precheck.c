/*
 * pgsrc_precheck.c — the PostgreSQL source's prechecks (source.h precheck,
 * penstock/check.h; every id is documented in docs/prechecks.md).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Read-only. One ordinary connection reads settings and catalogs; one
 *    short replication connection proves that pg_hba.conf lets the role in
 *    for replication, and is closed at once. No slot, no publication, no
 *    table is created or changed.
 * 2. The same selection as prepare (pgsrc_select.c): ordinary and
 *    partitioned tables outside the system schemas, matched with fnmatch on
 *    "schema.table" by the include patterns and not by the exclude ones, a
 *    partition going with its matched parent. A table without a usable
 *    replica identity stays selected so that source.replica_identity (with
 *    tables.keyless refuse) or source.keyless can name it.
 * 3. What prepare and the stream need, item by item: PostgreSQL 14 or later
 *    (the stream asks pgoutput for logical messages, an option of 14),
 *    wal_level = logical, room for the slots and WAL senders the job holds at
 *    once (a load job: its slot plus the temporary slot that exports a
 *    snapshot when a load resumes; the same in WAL senders), REPLICATION or
 *    superuser, the right to create or change the publication (CREATE on
 *    the database, ownership of each table), SELECT on each table for the
 *    initial load, and a replica identity on each table.
 * 4. A query that fails turns its item into failed with the server's
 *    message: an item is never passed on a guess. When the connection
 *    itself fails, every other item is skipped.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pg_internal.h"
#include "util/buf.h"
#include "util/pgconn.h"

#define LIST_SHOW 20                /* tables named in one message or fix */
#define LIST_LIMIT ((size_t)8192)

/* One selected table. */
typedef struct pc_table {
	char *schema, *name, *owner;
	char qualified[300];        /* schema.name, for messages */
	char oid[16];
	char replident;
	int klass;                  /* PG_CLASS_* (pgsrc_select.c note 2) */
	bool has_pk, can_select, owns;
} pc_table;

typedef struct pc_ctx {
	const ps_source_config *cfg;
	const char *slot_name;      /* the job's options, or their defaults */
	const char *publication_name;
	ps_url parsed;
	PGconn *conn;
	ps_check_report *r;
	ps_check_tables *out_tables;
	int rc;                     /* first PS_ENOMEM, else 0 */
	/* from the settings query */
	int version_num;
	char version[32];
	char wal_level[32];
	char encoding[32];
	char role[128];
	char dbname[128];
	bool superuser, replication, db_create, has_plugin_setting;
	bool pub_foreign;           /* the publication is another role's (least privilege) */
	long max_slots, used_slots, max_senders, used_senders;
	/* selection */
	pc_table *tables;
	size_t ntables;
} pc_ctx;

/* A bounded "a, b, c and 4 more" list. */
typedef struct name_list {
	ps_buf b;
	size_t n;
} name_list;

static void list_init(name_list *l) { ps_buf_init(&l->b, LIST_LIMIT); l->n = 0; }
static void list_free(name_list *l) { ps_buf_free(&l->b); }

static void list_add(name_list *l, const char *sep, const char *s)
{
	if (l->n < LIST_SHOW)
		ps_buf_printf(&l->b, "%s%s", l->n ? sep : "", s);
	l->n++;
}

/* The list's text; "" when empty. */
static const char *list_text(name_list *l)
{
	if (l->n > LIST_SHOW) {
		ps_buf_printf(&l->b, " (and %zu more)", l->n - LIST_SHOW);
		l->n = LIST_SHOW;   /* appended once */
	}
	return l->b.data ? l->b.data : "";
}

static void note(pc_ctx *c, int rc)
{
	if (rc != 0 && c->rc == 0)
		c->rc = rc;
}

#define ADD(c, ...) note((c), ps_check_add((c)->r, __VA_ARGS__))

/* "quoted"."ident" of schema.name into b. */
static void quote_table(PGconn *conn, ps_buf *b, const pc_table *t)
{
	pg_quote_ident(conn, b, t->schema);
	ps_buf_putc(b, '.');
	pg_quote_ident(conn, b, t->name);
}

static void quote_role(pc_ctx *c, char *out, size_t len, const char *role)
{
	ps_buf b;

	ps_buf_init(&b, 512);
	pg_quote_ident(c->conn, &b, role);
	snprintf(out, len, "%s", b.data ? b.data : role);
	ps_buf_free(&b);
}

static long to_long(const char *s)
{
	return strtol(s, NULL, 10);
}

/* --- server-wide items ---------------------------------------------------- */

static int read_settings(pc_ctx *c, ps_error *qerr)
{
	PGresult *res = NULL;
	int rc;

	rc = pg_exec(c->conn, &res, qerr, "reading server settings",
	             "SELECT current_setting('server_version_num')::int, "
	             "  current_setting('server_version'), current_setting('wal_level'), "
	             "  pg_encoding_to_char(d.encoding), current_user, r.rolsuper, r.rolreplication, "
	             "  has_database_privilege(current_database(), 'CREATE'), current_database(), "
	             "  current_setting('max_replication_slots')::int, "
	             "  (SELECT count(*) FROM pg_replication_slots), "
	             "  current_setting('max_wal_senders')::int, "
	             "  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'), "
	             "  EXISTS (SELECT 1 FROM pg_settings WHERE name = 'output_plugin_libraries') "
	             "FROM pg_database d, pg_roles r "
	             "WHERE d.datname = current_database() AND r.rolname = current_user", 0, NULL);
	if (rc != PS_OK)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return ps_error_set(qerr, PS_ESERVER, "reading server settings: no row for the "
		                    "current database and role");
	}
	c->version_num = (int)to_long(PQgetvalue(res, 0, 0));
	snprintf(c->version, sizeof(c->version), "%s", PQgetvalue(res, 0, 1));
	snprintf(c->wal_level, sizeof(c->wal_level), "%s", PQgetvalue(res, 0, 2));
	snprintf(c->encoding, sizeof(c->encoding), "%s", PQgetvalue(res, 0, 3));
	snprintf(c->role, sizeof(c->role), "%s", PQgetvalue(res, 0, 4));
	c->superuser = PQgetvalue(res, 0, 5)[0] == 't';
	c->replication = PQgetvalue(res, 0, 6)[0] == 't';
	c->db_create = PQgetvalue(res, 0, 7)[0] == 't';
	snprintf(c->dbname, sizeof(c->dbname), "%s", PQgetvalue(res, 0, 8));
	c->max_slots = to_long(PQgetvalue(res, 0, 9));
	c->used_slots = to_long(PQgetvalue(res, 0, 10));
	c->max_senders = to_long(PQgetvalue(res, 0, 11));
	c->used_senders = to_long(PQgetvalue(res, 0, 12));
	c->has_plugin_setting = PQgetvalue(res, 0, 13)[0] == 't';
	PQclear(res);
	return PS_OK;
}

static void check_version(pc_ctx *c)
{
	if (c->version_num >= 140000)
		ADD(c, "source.version", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "PostgreSQL %s", c->version);
	else
		ADD(c, "source.version", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "upgrade the source to PostgreSQL 14 or later",
		    "PostgreSQL %s is not supported: penstock needs 14 or later (its stream asks "
		    "pgoutput for logical messages)", c->version);
}

static void check_wal_level(pc_ctx *c)
{
	if (strcmp(c->wal_level, "logical") == 0)
		ADD(c, "source.wal_level", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL, "wal_level is logical");
	else
		ADD(c, "source.wal_level", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
		    "wal_level is '%s' but logical decoding needs 'logical'", c->wal_level);
}

static void check_encoding(pc_ctx *c)
{
	if (strcmp(c->encoding, "UTF8") == 0)
		ADD(c, "source.encoding", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "database encoding is UTF8");
	else
		ADD(c, "source.encoding", PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "none needed to run; to avoid it, use a UTF8 database",
		    "database encoding is %s, not UTF8: text is passed on as the server sends it, and "
		    "bytes that are not UTF-8 become U+FFFD in JSON targets", c->encoding);
}

/* pgoutput must be allowed where the server restricts output plugins. */
static void check_output_plugin(pc_ctx *c)
{
	PGresult *res = NULL;
	ps_error qerr;
	char fix[600];
	bool allowed = false;
	const char *p;

	if (!c->has_plugin_setting) {
		ADD(c, "source.output_plugin", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "this server has no output_plugin_libraries setting: every installed output "
		    "plugin, pgoutput included, may be used");
		return;
	}
	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "reading output_plugin_libraries",
	            "SELECT current_setting('output_plugin_libraries')", 0, NULL) != PS_OK) {
		ADD(c, "source.output_plugin", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "could not check: %s", qerr.message);
		return;
	}
	/* a list of names separated by commas and blanks */
	for (p = PQgetvalue(res, 0, 0); *p && !allowed;) {
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		allowed = (n == 8 && strncmp(p, "pgoutput", 8) == 0) || (n == 1 && *p == '*');
		p += n;
	}
	if (allowed) {
		ADD(c, "source.output_plugin", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "output_plugin_libraries allows pgoutput");
	} else {
		snprintf(fix, sizeof(fix), "ALTER SYSTEM SET output_plugin_libraries = '%s%spgoutput'; "
		         "then SELECT pg_reload_conf(); (restart if the setting requires it)",
		         PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 0)[0] ? "," : "");
		ADD(c, "source.output_plugin", PS_CHECK_ERROR, PS_CHECK_FAILED, fix,
		    "output_plugin_libraries is '%s', which does not list pgoutput",
		    PQgetvalue(res, 0, 0));
	}
	PQclear(res);
}

static void check_replication(pc_ctx *c)
{
	PGconn *repl = NULL;
	ps_error cerr;
	char role[300], fix[700];

	quote_role(c, role, sizeof(role), c->role);
	if (!c->superuser && !c->replication) {
		snprintf(fix, sizeof(fix), "ALTER ROLE %s REPLICATION;", role);
		ADD(c, "source.replication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, fix,
		    "role %s has neither REPLICATION nor superuser: it cannot create a replication "
		    "slot or stream changes", c->role);
		return;
	}
	ps_error_clear(&cerr);
	if (pg_connect(&repl, c->cfg->url, &c->parsed, c->cfg->password, true, "penstock_precheck",
	               &cerr) != PS_OK) {
		snprintf(fix, sizeof(fix), "allow replication connections for the role in pg_hba.conf "
		         "(a line like: host replication %s <client address>/32 scram-sha-256), then "
		         "SELECT pg_reload_conf();", role);
		ADD(c, "source.replication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, fix,
		    "role %s has %s, but a replication connection failed: %s", c->role,
		    c->superuser ? "superuser" : "REPLICATION", cerr.message);
		return;
	}
	PQfinish(repl);
	ADD(c, "source.replication_privilege", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
	    "role %s has %s and may connect for replication", c->role,
	    c->superuser ? "superuser" : "REPLICATION");
}

/* Room for the job's slots and WAL senders (design note 3), and the job's
 * own slot, when it exists, must be usable by it. */
static void check_slots(pc_ctx *c)
{
	const char *params[1] = {c->slot_name};
	bool loads = c->cfg->want_snapshot;
	PGresult *res = NULL;
	ps_error qerr;
	ps_buf fix;
	bool exists = false;
	long need_slots, need_senders;

	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "looking up the replication slot",
	            "SELECT slot_type = 'logical' AND plugin = 'pgoutput' AND "
	            "  database = current_database(), active_pid "
	            "FROM pg_replication_slots WHERE slot_name = $1", 1, params) != PS_OK) {
		ADD(c, "source.slots", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL, "could not check: %s",
		    qerr.message);
		return;
	}
	exists = PQntuples(res) > 0;
	if (exists && PQgetvalue(res, 0, 0)[0] != 't') {
		ADD(c, "source.slots", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "set source.slot to another name",
		    "replication slot %s exists but is not a pgoutput slot of database '%s'",
		    c->slot_name, c->dbname);
		PQclear(res);
		return;
	}
	if (exists && !PQgetisnull(res, 0, 1)) {
		ADD(c, "source.slots", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "stop the other penstock running this job, or set source.slot to another name",
		    "replication slot %s is in use by server process %s", c->slot_name,
		    PQgetvalue(res, 0, 1));
		PQclear(res);
		return;
	}
	PQclear(res);
	need_slots = (loads ? 2 : 1) - (exists ? 1 : 0);
	need_senders = loads ? 2 : 1;
	if (c->max_slots - c->used_slots >= need_slots && c->max_senders - c->used_senders >= need_senders) {
		ADD(c, "source.slots", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "%ld of %ld replication slots and %ld of %ld WAL senders free; the job needs %ld "
		    "new slot%s%s and %ld sender%s", c->max_slots - c->used_slots, c->max_slots,
		    c->max_senders - c->used_senders, c->max_senders, need_slots,
		    need_slots == 1 ? "" : "s", exists ? " (its slot exists)" : "", need_senders,
		    need_senders == 1 ? "" : "s");
		return;
	}
	ps_buf_init(&fix, 1024);
	if (c->max_slots - c->used_slots < need_slots)
		ps_buf_printf(&fix, "ALTER SYSTEM SET max_replication_slots = %ld; ",
		              c->used_slots + need_slots);
	if (c->max_senders - c->used_senders < need_senders)
		ps_buf_printf(&fix, "ALTER SYSTEM SET max_wal_senders = %ld; ",
		              c->used_senders + need_senders);
	ps_buf_puts(&fix, "then restart PostgreSQL (or drop unused slots with "
	            "SELECT pg_drop_replication_slot('name');)");
	ADD(c, "source.slots", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.data,
	    "%ld of %ld replication slots and %ld of %ld WAL senders are free, but a %s job needs "
	    "%ld free slot%s and %ld sender%s at once", c->max_slots - c->used_slots, c->max_slots,
	    c->max_senders - c->used_senders, c->max_senders, loads ? "load" : "cdc", need_slots,
	    need_slots == 1 ? "" : "s", need_senders, need_senders == 1 ? "" : "s");
	ps_buf_free(&fix);
}

/* --- tables ---------------------------------------------------------------- */

static bool matches(char *const *pats, size_t n, const char *qualified)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], qualified, 0) == 0)
			return true;
	return false;
}

static void free_tables(pc_ctx *c)
{
	for (size_t i = 0; i < c->ntables; i++) {
		free(c->tables[i].schema);
		free(c->tables[i].name);
		free(c->tables[i].owner);
	}
	free(c->tables);
	c->tables = NULL;
	c->ntables = 0;
}

/* Selects the tables (design note 2) and reports source.tables: every
 * include pattern must select at least one table. */
static int select_tables(pc_ctx *c)
{
	const ps_source_config *cfg = c->cfg;
	char *const *inc = (char *const *)cfg->include;
	char *const *exc = (char *const *)cfg->exclude;
	PGresult *res = NULL;
	ps_error qerr;
	name_list empty, names;
	size_t *hits = NULL;
	bool *selected = NULL;
	int rc = PS_OK;

	list_init(&empty);
	list_init(&names);
	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "listing tables", PG_TABLES_SQL, 0, NULL) != PS_OK) {
		ADD(c, "source.tables", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL, "could not list tables: %s",
		    qerr.message);
		goto cleanup;
	}
	c->tables = calloc((size_t)PQntuples(res) + 1, sizeof(pc_table));
	hits = calloc(cfg->ninclude + 1, sizeof(size_t));
	selected = calloc((size_t)PQntuples(res) + 1, sizeof(bool));
	if (!c->tables || !hits || !selected ||
	    pg_tables_match(res, inc, cfg->ninclude, exc, cfg->nexclude, selected) != PS_OK) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		pc_table *t = &c->tables[c->ntables];

		snprintf(t->qualified, sizeof(t->qualified), "%s.%s", PQgetvalue(res, row, PG_T_SCHEMA),
		         PQgetvalue(res, row, PG_T_NAME));
		if (matches(exc, cfg->nexclude, t->qualified))
			continue;
		/* a pattern counts as used when it matches a table or a partition
		 * that comes with one */
		for (size_t i = 0; i < cfg->ninclude; i++)
			if (fnmatch(inc[i], t->qualified, 0) == 0)
				hits[i]++;
		if (!selected[row])
			continue;
		t->schema = strdup(PQgetvalue(res, row, PG_T_SCHEMA));
		t->name = strdup(PQgetvalue(res, row, PG_T_NAME));
		t->owner = strdup(PQgetvalue(res, row, PG_T_OWNER));
		c->ntables++;
		if (!t->schema || !t->name || !t->owner) {
			rc = PS_ENOMEM;
			goto cleanup;
		}
		t->replident = PQgetvalue(res, row, PG_T_REPLIDENT)[0];
		t->has_pk = PQgetvalue(res, row, PG_T_HAS_PK)[0] == 't';
		t->klass = pg_table_class(res, row);
		t->can_select = PQgetvalue(res, row, PG_T_CAN_SELECT)[0] == 't';
		t->owns = PQgetvalue(res, row, PG_T_OWNS)[0] == 't';
		snprintf(t->oid, sizeof(t->oid), "%s", PQgetvalue(res, row, PG_T_OID));
		list_add(&names, ", ", t->qualified);
		rc = ps_check_tables_add(c->out_tables, t->schema, t->name);
		if (rc != PS_OK)
			goto cleanup;
	}
	c->out_tables->listed = true;
	for (size_t i = 0; i < cfg->ninclude; i++) {
		char quoted[300];

		if (hits[i])
			continue;
		snprintf(quoted, sizeof(quoted), "tables.include[%zu] \"%s\"", i, inc[i]);
		list_add(&empty, "; ", quoted);
	}
	if (empty.n)
		ADD(c, "source.tables", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "fix or remove the patterns in tables.include (schema.table globs; list the "
		    "tables with psql's \\dt *.*), or add the tables",
		    "%s matched no table in database '%s' (after tables.exclude); %zu table%s "
		    "selected%s%s", list_text(&empty), c->dbname, c->ntables,
		    c->ntables == 1 ? "" : "s", c->ntables ? ": " : "", list_text(&names));
	else
		ADD(c, "source.tables", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "%zu table%s selected: %s", c->ntables, c->ntables == 1 ? "" : "s",
		    list_text(&names));
cleanup:
	free(hits);
	free(selected);
	list_free(&empty);
	list_free(&names);
	PQclear(res);
	return rc;
}

static void check_select(pc_ctx *c)
{
	name_list bad;
	ps_buf fix;
	char role[300];

	if (!c->cfg->want_snapshot) {
		ADD(c, "source.select_privilege", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "a cdc job copies no initial load, so it reads no table");
		return;
	}
	list_init(&bad);
	ps_buf_init(&fix, LIST_LIMIT);
	quote_role(c, role, sizeof(role), c->role);
	ps_buf_puts(&fix, "GRANT SELECT ON ");
	for (size_t i = 0; i < c->ntables; i++) {
		if (c->tables[i].can_select)
			continue;
		if (bad.n < LIST_SHOW) {
			if (bad.n)
				ps_buf_puts(&fix, ", ");
			quote_table(c->conn, &fix, &c->tables[i]);
		}
		list_add(&bad, ", ", c->tables[i].qualified);
	}
	ps_buf_printf(&fix, " TO %s;%s", role, bad.n > LIST_SHOW ? " (and the same for the "
	              "other tables named)" : "");
	if (bad.n)
		ADD(c, "source.select_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.data,
		    "role %s cannot SELECT from %s: the initial load reads them", c->role,
		    list_text(&bad));
	else
		ADD(c, "source.select_privilege", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "role %s may SELECT from every selected table", c->role);
	list_free(&bad);
	ps_buf_free(&fix);
}

/* A table without a primary key or replica identity (pgsrc_select.c notes
 * 2, 3): source.replica_identity is the blocking item (tables.keyless
 * refuse), source.keyless the warning (insert_only, replica_identity_full).
 * A snapshot job reads no change of such a table, so neither applies. */
static void check_replica_identity(pc_ctx *c)
{
	const ps_source_config *cfg = c->cfg;
	name_list bad;
	ps_buf fix;
	const char *why;

	list_init(&bad);
	ps_buf_init(&fix, LIST_LIMIT);
	for (size_t i = 0; i < c->ntables; i++) {
		const pc_table *t = &c->tables[i];

		if (t->klass != PG_CLASS_KEYLESS)
			continue;
		if (bad.n < LIST_SHOW) {
			ps_buf_puts(&fix, bad.n ? " ALTER TABLE " : "ALTER TABLE ");
			quote_table(c->conn, &fix, t);
			ps_buf_puts(&fix, " REPLICA IDENTITY FULL;");
		}
		list_add(&bad, ", ", t->qualified);
	}
	if (bad.n > LIST_SHOW)
		ps_buf_puts(&fix, " (and the same for the other tables named)");
	if (cfg->load_only) {
		why = "a snapshot job reads no change of a table without a key: it is copied as it is";
		ADD(c, "source.replica_identity", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL, "%s", why);
		ADD(c, "source.keyless", PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL, "%s", why);
	} else if (bad.n && cfg->keyless == PS_KEYLESS_REFUSE) {
		ADD(c, "source.replica_identity", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.data,
		    "%s %s no primary key and no replica identity: once published, UPDATE and "
		    "DELETE on %s would fail on the source. Add a primary key, set REPLICA "
		    "IDENTITY FULL (or USING INDEX), or exclude %s in tables.exclude",
		    list_text(&bad), bad.n == 1 ? "has" : "have", bad.n == 1 ? "it" : "them",
		    bad.n == 1 ? "it" : "them");
		ADD(c, "source.keyless", PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL,
		    "tables.keyless is refuse: source.replica_identity names the tables");
	} else if (bad.n && cfg->keyless == PS_KEYLESS_FULL) {
		ADD(c, "source.replica_identity", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "every selected table has a primary key or a replica identity, or is given "
		    "REPLICA IDENTITY FULL when the job starts (source.keyless)");
		ADD(c, "source.keyless", PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "none needed: this is what tables.keyless replica_identity_full asks for",
		    "%s %s no primary key and no replica identity: penstock sets REPLICA IDENTITY "
		    "FULL on %s on the source when the job starts (tables.keyless "
		    "replica_identity_full), so UPDATE and DELETE write whole old rows to the WAL",
		    list_text(&bad), bad.n == 1 ? "has" : "have", bad.n == 1 ? "it" : "them");
	} else if (bad.n) {
		ADD(c, "source.replica_identity", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "every selected table has a primary key or a replica identity, or is captured "
		    "insert-only (source.keyless)");
		ps_buf_puts(&fix, " (or add a primary key, or set \"tables\": {\"keyless\": "
		            "\"replica_identity_full\"})");
		ADD(c, "source.keyless", PS_CHECK_WARNING, PS_CHECK_FAILED, fix.data,
		    "%s %s no primary key and no replica identity: %s captured insert-only. Inserts "
		    "and truncates are applied; UPDATE and DELETE on %s keep working on the source "
		    "but are not captured, so the target keeps rows they changed or removed",
		    list_text(&bad), bad.n == 1 ? "has" : "have", bad.n == 1 ? "it is" : "they are",
		    bad.n == 1 ? "it" : "them");
	} else {
		ADD(c, "source.replica_identity", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "every selected table has a primary key or a replica identity");
		ADD(c, "source.keyless", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "every selected table has a primary key or a replica identity");
	}
	list_free(&bad);
	ps_buf_free(&fix);
}

/* The publications of a job whose publication another role owns (an
 * administrator's, for a role with only REPLICATION and SELECT): both must
 * exist and publish exactly the job's tables (pgsrc_select.c notes 4, 7). */
static void check_foreign_publications(pc_ctx *c)
{
	char inserts[PG_PUBNAME_MAX];
	const char *names[2], *publish[2] = {"insert, update, delete, truncate", "insert, truncate"};
	ps_buf list[2], oids[2], why, fix;
	ps_error qerr;
	bool ok = true;

	pg_inserts_publication(c->publication_name, inserts, sizeof(inserts));
	names[0] = c->publication_name;
	names[1] = inserts;
	ps_buf_init(&why, LIST_LIMIT);
	ps_buf_init(&fix, LIST_LIMIT);
	for (int p = 0; p < 2; p++) {
		ps_buf_init(&list[p], 16u << 20);
		ps_buf_init(&oids[p], 1u << 20);
		ps_buf_putc(&oids[p], '{');
	}
	for (size_t i = 0; i < c->ntables; i++) {
		bool keyless = c->tables[i].klass == PG_CLASS_KEYLESS;
		int p = keyless ? 1 : 0;
		if (keyless && (c->cfg->load_only || c->cfg->keyless != PS_KEYLESS_INSERT_ONLY))
			continue;       /* not published, or refused / made FULL elsewhere */
		if (list[p].len)
			ps_buf_puts(&list[p], ", ");
		quote_table(c->conn, &list[p], &c->tables[i]);
		ps_buf_printf(&oids[p], "%s%s", oids[p].len > 1 ? "," : "", c->tables[i].oid);
	}
	ps_error_clear(&qerr);
	for (int p = 0; p < 2; p++) {
		bool exists, foreign;
		ps_buf one;

		ps_buf_putc(&oids[p], '}');
		ps_buf_init(&one, LIST_LIMIT);
		if (pg_publication_foreign(c->conn, names[p], oids[p].data, publish[p], &exists,
		                           &foreign, &one, &qerr) != PS_OK) {
			ps_buf_free(&one);
			ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
			    "could not check: %s", qerr.message);
			goto cleanup;
		}
		if (!exists) {
			ps_buf_printf(&why, "%spublication %s does not exist", why.len ? "; " : "",
			              names[p]);
			ps_buf_puts(&fix, "CREATE PUBLICATION ");
			pg_quote_ident(c->conn, &fix, names[p]);
			if (list[p].len)
				ps_buf_printf(&fix, " FOR TABLE %s", list[p].data);
			ps_buf_printf(&fix, " WITH (publish = '%s', publish_via_partition_root = true); ",
			              publish[p]);
			ok = false;
		} else if (foreign && one.len) {
			ps_buf_printf(&why, "%spublication %s: %s", why.len ? "; " : "", names[p], one.data);
			ps_buf_puts(&fix, "ALTER PUBLICATION ");
			pg_quote_ident(c->conn, &fix, names[p]);
			if (list[p].len) {
				ps_buf_printf(&fix, " SET TABLE %s; ALTER PUBLICATION ", list[p].data);
				pg_quote_ident(c->conn, &fix, names[p]);
			}
			ps_buf_printf(&fix, " SET (publish = '%s', publish_via_partition_root = true); ",
			              publish[p]);
			ok = false;
		}
		/* an insert-only publication this role owns is kept by penstock as usual */
		ps_buf_free(&one);
	}
	if (ok)
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "publication %s belongs to another role and publishes exactly the selected "
		    "tables: penstock uses it as it is and never changes or drops it", names[0]);
	else
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.data,
		    "publication %s belongs to another role, so penstock cannot change it, and it "
		    "does not fit the job: %s. Its owner can make it fit (or give the job a "
		    "publication of its own: source.publication)", names[0], why.data);
cleanup:
	for (int p = 0; p < 2; p++) {
		ps_buf_free(&list[p]);
		ps_buf_free(&oids[p]);
	}
	ps_buf_free(&why);
	ps_buf_free(&fix);
}

/* CREATE PUBLICATION needs CREATE on the database; adding a table to a
 * publication needs its ownership (membership in the owner role); an
 * existing publication must be this role's and not FOR ALL TABLES. */
static void check_publication(pc_ctx *c)
{
	const char *params[1] = {c->publication_name};
	PGresult *res = NULL;
	ps_error qerr;
	name_list bad, owners;
	ps_buf fix;
	char role[300], q[300];
	bool exists;

	list_init(&bad);
	list_init(&owners);
	ps_buf_init(&fix, LIST_LIMIT);
	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "looking up the publication",
	            "SELECT puballtables, pg_has_role(pubowner, 'USAGE') FROM pg_publication "
	            "WHERE pubname = $1", 1, params) != PS_OK) {
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "could not check: %s", qerr.message);
		goto cleanup;
	}
	exists = PQntuples(res) > 0;
	quote_role(c, role, sizeof(role), c->role);
	if (exists && PQgetvalue(res, 0, 1)[0] != 't' && !c->superuser) {
		c->pub_foreign = true;
		check_foreign_publications(c);      /* pgsrc_select.c note 7 */
		goto cleanup;
	}
	if (exists && PQgetvalue(res, 0, 0)[0] == 't') {
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "set source.publication to another name, or drop the publication",
		    "publication %s exists FOR ALL TABLES; penstock manages its own publication",
		    c->publication_name);
		goto cleanup;
	}
	if (exists && PQgetvalue(res, 0, 1)[0] != 't' && !c->superuser) {
		ps_buf_puts(&fix, "ALTER PUBLICATION ");
		pg_quote_ident(c->conn, &fix, c->publication_name);
		ps_buf_printf(&fix, " OWNER TO %s;", role);
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.data,
		    "publication %s belongs to another role: role %s cannot change its tables",
		    c->publication_name, c->role);
		goto cleanup;
	}
	if (!exists && !c->db_create && !c->superuser) {
		ps_buf_puts(&fix, "GRANT CREATE ON DATABASE ");
		pg_quote_ident(c->conn, &fix, c->dbname);
		ps_buf_printf(&fix, " TO %s;", role);
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.data,
		    "role %s may not create publication %s: it lacks CREATE on database %s",
		    c->role, c->publication_name, c->dbname);
		goto cleanup;
	}
	for (size_t i = 0; !c->superuser && i < c->ntables; i++) {
		if (c->tables[i].owns)
			continue;
		list_add(&bad, ", ", c->tables[i].qualified);
		quote_role(c, q, sizeof(q), c->tables[i].owner);
		if (!strstr(owners.b.data ? owners.b.data : "", q))
			list_add(&owners, ", ", q);
	}
	if (bad.n) {
		ps_buf_printf(&fix, "GRANT %s TO %s;", list_text(&owners), role);
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_FAILED, fix.data,
		    "role %s does not own %s: a table can be added to a publication only by its "
		    "owner (or a member of the owner role)", c->role, list_text(&bad));
	} else {
		ADD(c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "role %s may %s publication %s with the selected tables", c->role,
		    exists ? "change" : "create", c->publication_name);
	}
cleanup:
	PQclear(res);
	list_free(&bad);
	list_free(&owners);
	ps_buf_free(&fix);
}

/* The selected tables' OIDs as an oid[] literal, "{1,2,3}", into oids
 * (initialised here; the caller frees it). */
static int table_oids(const pc_ctx *c, ps_buf *oids)
{
	int rc;

	ps_buf_init(oids, (size_t)16 << 20);
	rc = ps_buf_putc(oids, '{');
	for (size_t i = 0; rc == PS_OK && i < c->ntables; i++)
		rc = ps_buf_printf(oids, "%s%s", i ? "," : "", c->tables[i].oid);
	return rc == PS_OK ? ps_buf_putc(oids, '}') : rc;
}

/* The types of the selected tables' columns that a target may not have
 * (as pg_snapshot.c's describe marks user_type), for the target's check. */
static int list_user_types(pc_ctx *c)
{
	PGresult *res = NULL;
	ps_error qerr;
	ps_buf oids;
	const char *params[1];
	int rc = PS_OK;

	if (c->ntables == 0)
		return PS_OK;
	if (table_oids(c, &oids) != PS_OK) {
		ps_buf_free(&oids);
		return PS_ENOMEM;
	}
	params[0] = oids.data;
	ps_error_clear(&qerr);
	if (pg_exec(c->conn, &res, &qerr, "listing column types",
	            "SELECT DISTINCT a.attrelid::text, format_type(a.atttypid, a.atttypmod) "
	            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
	            "LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typlen = -1 "
	            "JOIN pg_namespace tn ON tn.oid = coalesce(et.typnamespace, t.typnamespace) "
	            "WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped "
	            "  AND a.attgenerated = '' "
	            "  AND tn.nspname NOT IN ('pg_catalog', 'information_schema')",
	            1, params) != PS_OK) {
		/* Without the types the target cannot check its tables: say so on
		 * source.tables and let the target skip its table items. */
		ps_check_item *it = ps_check_find(c->r, "source.tables");

		c->out_tables->listed = false;
		if (it) {
			size_t len = strlen(it->message) + strlen(qerr.message) + 64;
			char *msg = malloc(len);

			if (!msg) {
				rc = PS_ENOMEM;
				goto cleanup;
			}
			snprintf(msg, len, "%s; but listing their column types failed: %s", it->message,
			        qerr.message);
			free(it->message);
			it->message = msg;
			it->result = PS_CHECK_FAILED;
		}
		goto cleanup;
	}
	for (int row = 0; rc == PS_OK && row < PQntuples(res); row++) {
		for (size_t i = 0; i < c->ntables; i++) {
			if (strcmp(c->tables[i].oid, PQgetvalue(res, row, 0)) != 0)
				continue;
			rc = ps_check_table_add_type(&c->out_tables->items[i], PQgetvalue(res, row, 1));
			break;
		}
	}
cleanup:
	PQclear(res);
	ps_buf_free(&oids);
	return rc;
}

/* What the tables need that the target may lack (pgsrc_schema.c): with
 * target.schema tables or full, the extensions (to create or to find) and
 * the objects penstock does not create, for the target's checks. The
 * types themselves are created. */
static int list_needs(pc_ctx *c)
{
	ps_schema_object **lists = NULL;
	uint32_t *roots = NULL;
	size_t *counts = NULL;
	ps_error qerr;
	int rc = PS_OK;

	if (c->ntables == 0)
		return PS_OK;
	roots = calloc(c->ntables, sizeof(uint32_t));
	lists = calloc(c->ntables, sizeof(*lists));
	counts = calloc(c->ntables, sizeof(size_t));
	if (!roots || !lists || !counts) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < c->ntables; i++)
		roots[i] = (uint32_t)strtoul(c->tables[i].oid, NULL, 10);
	ps_error_clear(&qerr);
	if (pg_schema_needs(c->conn, c->cfg->schema, c->cfg->no_extensions, roots, c->ntables,
	                    lists, counts, &qerr) != PS_OK) {
		/* as list_user_types: the target then skips its table items */
		ps_check_item *it = ps_check_find(c->r, "source.tables");

		c->out_tables->listed = false;
		if (it) {
			size_t len = strlen(it->message) + strlen(qerr.message) + 80;
			char *msg = malloc(len);

			if (!msg) {
				rc = PS_ENOMEM;
				goto cleanup;
			}
			snprintf(msg, len, "%s; but reading what they depend on failed: %s", it->message,
			         qerr.message);
			free(it->message);
			it->message = msg;
			it->result = PS_CHECK_FAILED;
		}
		goto cleanup;
	}
	for (size_t i = 0; rc == PS_OK && i < c->ntables; i++)
		for (size_t k = 0; rc == PS_OK && k < counts[i]; k++)
			if (lists[i][k].kind == PS_OBJECT_EXTENSION || lists[i][k].must_exist)
				rc = ps_check_table_add_need(&c->out_tables->items[i], &lists[i][k]);
cleanup:
	for (size_t i = 0; lists && counts && i < c->ntables; i++)
		ps_schema_objects_free(lists[i], counts[i]);
	free(lists);
	free(counts);
	free(roots);
	return rc;
}

/* The columns each selected table sends (not generated ones), so that the
 * target can check a table it already has against them, and their types as
 * describe gives them, so that a target that creates the table can check
 * that it has a type for each (issue 17). */
static int list_columns(pc_ctx *c)
{
	PGresult *res = NULL;
	ps_error qerr;
	ps_buf oids;
	const char *params[1];
	int rc = PS_OK;

	if (c->ntables == 0)
		return PS_OK;
	if (table_oids(c, &oids) != PS_OK) {
		ps_buf_free(&oids);
		return PS_ENOMEM;
	}
	params[0] = oids.data;
	ps_error_clear(&qerr);
	/* a target check that cannot be made is skipped there: nothing to add */
	if (pg_exec(c->conn, &res, &qerr, "listing columns",
	            "SELECT a.attrelid::text, a.attname, format_type(a.atttypid, a.atttypmod), "
	            "  a.atttypid, tn.nspname NOT IN ('pg_catalog', 'information_schema') "
	            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
	            "LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typlen = -1 "
	            "JOIN pg_namespace tn ON tn.oid = coalesce(et.typnamespace, t.typnamespace) "
	            "WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped "
	            "  AND a.attgenerated = '' ORDER BY a.attrelid, a.attnum", 1, params) == PS_OK) {
		for (int row = 0; rc == PS_OK && row < PQntuples(res); row++) {
			for (size_t i = 0; rc == PS_OK && i < c->ntables; i++) {
				ps_check_table *t = &c->out_tables->items[i];

				if (strcmp(c->tables[i].oid, PQgetvalue(res, row, 0)) != 0)
					continue;
				t->engine = "postgresql";
				rc = ps_check_table_add_column(t, PQgetvalue(res, row, 1));
				if (rc == PS_OK)
					rc = ps_check_table_add_column_type(
					    t, PQgetvalue(res, row, 1), PQgetvalue(res, row, 2),
					    pgo_type_class((uint32_t)strtoul(PQgetvalue(res, row, 3), NULL, 10)),
					    PQgetvalue(res, row, 4)[0] == 't');
			}
		}
	}
	PQclear(res);
	ps_buf_free(&oids);
	return rc;
}

/* Privileges beyond what the job needs (docs/privileges.md): a warning.
 * Always needed: REPLICATION, SELECT on the tables (a load). Needed only
 * when penstock keeps its own publication: CREATE on the database and the
 * tables' ownership. Never needed: superuser, CREATEROLE, CREATEDB,
 * BYPASSRLS, and writing the tables. */
static void check_excess(pc_ctx *c)
{
	PGresult *res = NULL;
	ps_error qerr;
	ps_buf oids, what, fix;
	char role[300];
	const char *params[1];

	ps_buf_init(&what, LIST_LIMIT);
	ps_buf_init(&fix, LIST_LIMIT);
	ps_error_clear(&qerr);
	quote_role(c, role, sizeof(role), c->role);
	if (table_oids(c, &oids) != PS_OK) {
		ADD(c, "source.excess_privileges", PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL,
		    "not checked: too many tables to list");
		goto cleanup;
	}
	params[0] = oids.data;
	if (pg_exec(c->conn, &res, &qerr, "reading the role's privileges",
	            "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, "
	            "  (SELECT string_agg(format('%I.%I', n.nspname, k.relname), ', ' "
	            "     ORDER BY n.nspname, k.relname) "
	            "   FROM unnest($1::oid[]) o JOIN pg_class k ON k.oid = o "
	            "   JOIN pg_namespace n ON n.oid = k.relnamespace "
	            "   WHERE has_table_privilege(o, 'INSERT, UPDATE, DELETE, TRUNCATE')), "
	            "  has_database_privilege(current_database(), 'CREATE') "
	            "FROM pg_roles r WHERE r.rolname = current_user", 1, params) != PS_OK ||
	    PQntuples(res) != 1) {
		ADD(c, "source.excess_privileges", PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL,
		    "not checked: %s", qerr.message[0] ? qerr.message : "no row for the role");
		goto cleanup;
	}
#define EXCESS(cond, text, stmt) \
	do { \
		if (cond) { \
			ps_buf_printf(&what, "%s%s", what.len ? ", " : "", text); \
			ps_buf_printf(&fix, "%sALTER ROLE %s %s;", fix.len ? " " : "", role, stmt); \
		} \
	} while (0)
	EXCESS(PQgetvalue(res, 0, 0)[0] == 't', "superuser", "NOSUPERUSER REPLICATION");
	EXCESS(PQgetvalue(res, 0, 1)[0] == 't', "CREATEROLE", "NOCREATEROLE");
	EXCESS(PQgetvalue(res, 0, 2)[0] == 't', "CREATEDB", "NOCREATEDB");
	EXCESS(PQgetvalue(res, 0, 3)[0] == 't', "BYPASSRLS", "NOBYPASSRLS");
	if (c->pub_foreign && PQgetvalue(res, 0, 5)[0] == 't' && PQgetvalue(res, 0, 0)[0] != 't') {
		ps_buf_printf(&what, "%sCREATE on database %s", what.len ? ", " : "", c->dbname);
		ps_buf_printf(&fix, "%sREVOKE CREATE ON DATABASE ", fix.len ? " " : "");
		pg_quote_ident(c->conn, &fix, c->dbname);
		ps_buf_printf(&fix, " FROM %s;", role);
	}
	/* writing (or owning) the tables: needed only to manage the publication */
	if (c->pub_foreign && !PQgetisnull(res, 0, 4) && PQgetvalue(res, 0, 0)[0] != 't') {
		ps_buf_printf(&what, "%sINSERT, UPDATE, DELETE or TRUNCATE (or ownership) on %.300s",
		              what.len ? ", " : "", PQgetvalue(res, 0, 4));
		ps_buf_printf(&fix, "%sREVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %.300s FROM %s;",
		              fix.len ? " " : "", PQgetvalue(res, 0, 4), role);
	}
#undef EXCESS
	if (what.len)
		ADD(c, "source.excess_privileges", PS_CHECK_WARNING, PS_CHECK_FAILED, fix.data,
		    "role %s holds more than the job needs: %s. A job reads with REPLICATION and "
		    "SELECT on its tables%s (docs/privileges.md)", c->role, what.data,
		    c->pub_foreign ? "" : ", plus the right to keep its publication (CREATE on the "
		    "database, ownership of the tables) unless an administrator makes the "
		    "publication");
	else
		ADD(c, "source.excess_privileges", PS_CHECK_WARNING, PS_CHECK_PASSED, NULL,
		    "role %s holds no more than the job needs", c->role);
cleanup:
	PQclear(res);
	ps_buf_free(&oids);
	ps_buf_free(&what);
	ps_buf_free(&fix);
}

/* --- entry point ----------------------------------------------------------- */

const char *const pg_check_ids[] = {
	"source.version", "source.wal_level", "source.slots", "source.replication_privilege",
	"source.publication_privilege", "source.output_plugin", "source.encoding",
	"source.tables", "source.select_privilege", "source.replica_identity", "source.keyless",
	"source.excess_privileges", NULL
};
#define after_connect pg_check_ids

static void skip_all(pc_ctx *c, const char *why)
{
	for (size_t i = 0; after_connect[i]; i++)
		ADD(c, after_connect[i],
		    strcmp(after_connect[i], "source.encoding") == 0 ||
		    strcmp(after_connect[i], "source.keyless") == 0 ||
		    strcmp(after_connect[i], "source.excess_privileges") == 0 ? PS_CHECK_WARNING
		                                                              : PS_CHECK_ERROR,
		    PS_CHECK_SKIPPED, NULL, "not checked: %s", why);
}

int pg_precheck(const ps_source_config *cfg, ps_check_report *report, ps_check_tables *tables,
                ps_error *err)
{
	pc_ctx c;
	ps_error cerr;
	char where[300];
	char *slot = pg_option_dup(cfg->options, "slot", cfg->job_name);
	char *publication = pg_option_dup(cfg->options, "publication", cfg->job_name);
	int rc;

	memset(&c, 0, sizeof(c));
	if (!slot || !publication) {
		free(slot);
		free(publication);
		return ps_error_set(err, PS_ENOMEM, "prechecks: out of memory");
	}
	c.cfg = cfg;
	c.slot_name = slot;
	c.publication_name = publication;
	c.r = report;
	c.out_tables = tables;
	ps_error_clear(&cerr);
	if (ps_url_parse(&c.parsed, cfg->url, &cerr) != PS_OK) {
		ADD(&c, "source.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, "fix source.url", "%s",
		    cerr.message);
		skip_all(&c, "source.connect failed");
		goto cleanup;
	}
	ps_url_host_port(&c.parsed, where, sizeof(where));
	if (pg_connect(&c.conn, cfg->url, &c.parsed, cfg->password, false, "penstock_precheck",
	               &cerr) != PS_OK) {
		ADD(&c, "source.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "check source.url (host, port, database, user), the password in "
		    "source.password_env or source.password_file, and that pg_hba.conf admits "
		    "this client", "%s", cerr.message);
		skip_all(&c, "source.connect failed");
		goto cleanup;
	}
	pg_catalog_session(c.conn);
	if (read_settings(&c, &cerr) != PS_OK) {
		ADD(&c, "source.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "connected to %s, but reading the server's settings failed: %s", where,
		    cerr.message);
		skip_all(&c, "the server's settings could not be read");
		goto cleanup;
	}
	ADD(&c, "source.connect", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
	    "connected to %s, database %s, as %s", where, c.dbname, c.role);
	check_version(&c);
	check_wal_level(&c);
	check_slots(&c);
	check_replication(&c);
	rc = select_tables(&c);
	note(&c, rc);
	if (rc == PS_OK && !tables->listed) {
		ADD(&c, "source.publication_privilege", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the tables could not be listed");
		ADD(&c, "source.select_privilege", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the tables could not be listed");
		ADD(&c, "source.replica_identity", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the tables could not be listed");
		ADD(&c, "source.keyless", PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL,
		    "not checked: the tables could not be listed");
		ADD(&c, "source.excess_privileges", PS_CHECK_WARNING, PS_CHECK_SKIPPED, NULL,
		    "not checked: the tables could not be listed");
	} else if (rc == PS_OK) {
		check_publication(&c);
		check_excess(&c);
		check_select(&c);
		check_replica_identity(&c);
		if (cfg->schema == PS_SCHEMA_BARE)
			note(&c, list_user_types(&c));
		else
			note(&c, list_needs(&c));
		note(&c, list_columns(&c));
	}
	check_output_plugin(&c);
	check_encoding(&c);
cleanup:
	if (c.conn)
		PQfinish(c.conn);
	free_tables(&c);
	free(slot);
	free(publication);
	if (c.rc != 0)
		return ps_error_set(err, c.rc, "out of memory");
	return PS_OK;
}
