/*
 * sqlite_precheck.c — the SQLite sink's prechecks (sink.h precheck,
 * penstock/check.h; every id is documented in docs/prechecks.md).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Read-only and creating nothing: a database file that does not exist
 *    yet is not created (its directory is checked instead); one that exists
 *    is opened read-only.
 * 2. The file and its directory must be writable: the sink keeps the
 *    database in WAL mode, whose -wal and -shm files live next to it.
 * 3. Tables follow sqlite_table.c's naming (public.t is "t", s.t is
 *    "s.t") and the load's rules (sqlite_ddl.c): a table that holds rows is
 *    refused unless truncate_before_load, a missing one is created unless
 *    create_tables is never, drop_and_create replaces it; a cdc job creates
 *    no table. Every source type is stored by its type class
 *    (docs/types-sqlite.md), so there is no type item.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "penstock/url.h"
#include "sink/sqlite/sqlite_internal.h"
#include "util/buf.h"

#define LIST_SHOW 20

typedef struct sk_ctx {
	ps_check_report *r;
	sqlite3 *db;
	int rc;
} sk_ctx;

static void note(sk_ctx *c, int rc)
{
	if (rc != 0 && c->rc == 0)
		c->rc = rc;
}

#define ADD(c, ...) note((c), ps_check_add((c)->r, __VA_ARGS__))

static void add_name(ps_buf *b, size_t *n, const char *sep, const char *name)
{
	if (*n < LIST_SHOW)
		ps_buf_printf(b, "%s%s", *n ? sep : "", name);
	(*n)++;
}

static const char *names_text(ps_buf *b, size_t n)
{
	if (n > LIST_SHOW)
		ps_buf_printf(b, " (and %zu more)", n - LIST_SHOW);
	return b->data ? b->data : "";
}

/* 1 when target exists and holds rows, 0 when it exists and is empty, -2
 * when it does not exist, -1 when it could not be read (why in *why). */
static int table_state(sk_ctx *c, const char *target, char *why, size_t why_len)
{
	sqlite3_stmt *st = NULL;
	ps_buf sql;
	int out = -1, rc;

	ps_buf_init(&sql, 4096);
	rc = sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			out = -2;
		else if (rc != SQLITE_ROW)
			goto fail;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (out == -2)
		goto cleanup;
	ps_buf_puts(&sql, "SELECT EXISTS (SELECT 1 FROM ");
	ps_sql_quote_ident(&sql, target);
	if (ps_buf_putc(&sql, ')') != 0) {
		snprintf(why, why_len, "table name too long");
		goto cleanup;
	}
	rc = sqlite3_prepare_v2(c->db, sql.data, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		goto fail;
	out = sqlite3_column_int(st, 0) ? 1 : 0;
	goto cleanup;
fail:
	snprintf(why, why_len, "%s", sqlite3_errmsg(c->db));
	out = -1;
cleanup:
	sqlite3_finalize(st);
	ps_buf_free(&sql);
	return out;
}

static void check_tables(sk_ctx *c, const ps_check_tables *tables, const ps_table_options *opt,
                         bool loads, bool file_exists)
{
	ps_buf nonempty, missing, bad, fix;
	size_t nn = 0, nm = 0, nb = 0, nfix = 0, created = 0;
	char why[512], item[1024];

	ps_buf_init(&nonempty, 8192);
	ps_buf_init(&missing, 8192);
	ps_buf_init(&bad, 8192);
	ps_buf_init(&fix, 8192);
	for (size_t i = 0; i < tables->n; i++) {
		char *target = ps__sqlite_target_name(tables->items[i].schema, tables->items[i].name);
		int state;

		if (!target) {
			note(c, PS_ENOMEM);
			break;
		}
		why[0] = '\0';
		state = file_exists ? table_state(c, target, why, sizeof(why)) : -2;
		if (state == -1) {
			snprintf(item, sizeof(item), "%s (%s)", target, why);
			add_name(&bad, &nb, ", ", item);
		} else if (state == -2 && (!loads || opt->create == PS_CREATE_NEVER)) {
			add_name(&missing, &nm, ", ", target);
		} else if (state == -2 || (loads && opt->create == PS_CREATE_DROP_AND_CREATE)) {
			created++;
		} else if (state == 1 && loads && !opt->truncate_before_load) {
			add_name(&nonempty, &nn, ", ", target);
			if (nfix < LIST_SHOW) {
				ps_buf_puts(&fix, nfix ? " DELETE FROM " : "DELETE FROM ");
				ps_sql_quote_ident(&fix, target);
				ps_buf_putc(&fix, ';');
			}
			nfix++;
		}
		free(target);
	}
	if (nn || nm || nb) {
		ps_buf msg, fixes;

		ps_buf_init(&msg, 32768);
		ps_buf_init(&fixes, 16384);
		if (nn) {
			ps_buf_printf(&msg, "%s already hold%s rows and the load would refuse %s",
			              names_text(&nonempty, nn), nn == 1 ? "s" : "", nn == 1 ? "it" : "them");
			ps_buf_printf(&fixes, "%s%s or set \"target\": {\"truncate_before_load\": true}",
			              fix.data ? fix.data : "", nfix > LIST_SHOW ? " (and the same for "
			              "the other tables named)" : "");
		}
		if (nm) {
			ps_buf_printf(&msg, "%s%s %s not exist in the target%s", msg.len ? "; " : "",
			              names_text(&missing, nm), nm == 1 ? "does" : "do",
			              loads ? " and create_tables is never" : " and a cdc job creates no table");
			ps_buf_printf(&fixes, "%screate the table%s in the target%s", fixes.len ? "; " : "",
			              nm == 1 ? "" : "s", loads ? ", or set \"target\": "
			              "{\"create_tables\": \"if_missing\"}" : "");
		}
		if (nb)
			ps_buf_printf(&msg, "%scould not check %s", msg.len ? "; " : "",
			              names_text(&bad, nb));
		ADD(c, "target.tables", PS_CHECK_ERROR, PS_CHECK_FAILED, fixes.len ? fixes.data : NULL,
		    "%s", msg.data);
		ps_buf_free(&msg);
		ps_buf_free(&fixes);
	} else {
		ADD(c, "target.tables", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "%zu table%s: %zu to create, the others exist%s", tables->n,
		    tables->n == 1 ? "" : "s", created,
		    !loads ? "" : opt->truncate_before_load ? " (emptied before the load)"
		                                            : " and are empty");
	}
	ps_buf_free(&nonempty);
	ps_buf_free(&missing);
	ps_buf_free(&bad);
	ps_buf_free(&fix);
}

int ps__sqlite_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                        const ps_check_tables *tables, ps_check_report *report, ps_error *err)
{
	sk_ctx c;
	ps_url url;
	ps_error uerr;
	struct stat st;
	char dir[1024];
	const char *slash;
	bool exists;
	int rc;

	memset(&c, 0, sizeof(c));
	c.r = report;
	ps_error_clear(&uerr);
	if (ps_url_parse(&url, cfg->url, &uerr) != PS_OK) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, "fix target.url", "%s",
		    uerr.message);
		goto skip_rest;
	}
	slash = strrchr(url.path, '/');
	if (!slash || url.path[0] != '/' || slash[1] == '\0') {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "write target.url as sqlite:///absolute/path/file.db",
		    "SQLite database path '%s' is not an absolute path to a file", url.path);
		goto skip_rest;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash == url.path ? 1 : (int)(slash - url.path), url.path);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "directory %s of SQLite database %s does not exist (or is not a directory)", dir,
		    url.path);
		goto skip_rest;
	}
	exists = stat(url.path, &st) == 0;
	if (exists) {
		rc = sqlite3_open_v2(url.path, &c.db, SQLITE_OPEN_READONLY, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(c.db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
			    "point target.url at a SQLite database, or at a file that does not exist yet",
			    "cannot open %s as a SQLite database: %s", url.path,
			    c.db ? sqlite3_errmsg(c.db) : sqlite3_errstr(rc));
			goto skip_rest;
		}
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "SQLite database %s opened", url.path);
	} else {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "SQLite database %s does not exist yet; it will be created in %s", url.path, dir);
	}
	if (access(dir, W_OK | X_OK) != 0)
		ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "directory %s is not writable (%s): the database%s needs it for its WAL files",
		    dir, strerror(errno), exists ? "" : " itself and");
	else if (exists && access(url.path, W_OK) != 0)
		ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "%s is not writable (%s)", url.path, strerror(errno));
	else
		ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "%s%s%s is writable", exists ? url.path : "", exists ? " and its directory " :
		    "directory ", dir);
	if (tables)
		check_tables(&c, tables, opt, loads, exists);
	else
		ADD(&c, "target.tables", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source's tables are not known");
	goto cleanup;
skip_rest:
	ADD(&c, "target.writable", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
	    "not checked: target.connect failed");
	ADD(&c, "target.tables", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
	    "not checked: target.connect failed");
cleanup:
	if (c.db)
		sqlite3_close(c.db);
	if (c.rc != 0)
		return ps_error_set(err, c.rc, "out of memory");
	return PS_OK;
}
