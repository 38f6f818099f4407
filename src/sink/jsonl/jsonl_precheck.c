/*
 * jsonl_precheck.c — the JSON-lines sink's prechecks (sink.h precheck,
 * penstock/check.h; every id is documented in docs/prechecks.md).
 *
 * The sink appends events to files in one directory (created when missing;
 * its parent must exist) or writes to standard output. Only the directory
 * can be checked: events are appended, so there is no table that could be
 * in the way, and every value is carried as JSON, so there is no type item.
 * Nothing is created here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "penstock/url.h"
#include "penstock/sink.h"

int ps__jsonl_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                       const ps_check_tables *tables, ps_check_report *report, ps_error *err)
{
	ps_url url;
	ps_error uerr;
	struct stat st;
	char parent[1024];
	char *slash;
	int rc;

	(void)opt;
	(void)loads;
	(void)tables;
	ps_error_clear(&uerr);
	if (ps_url_parse(&url, cfg->url, &uerr) != PS_OK) {
		rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED,
		                  "fix target.url", "%s", uerr.message);
	} else if (url.is_stdout) {
		rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		                  "events go to standard output");
	} else if (stat(url.path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED,
			                  "point target.url at a directory", "%s exists and is not a "
			                  "directory", url.path);
		else if (access(url.path, W_OK | X_OK) != 0)
			rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
			                  "directory %s is not writable (%s)", url.path, strerror(errno));
		else
			rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
			                  "directory %s is writable", url.path);
	} else {
		snprintf(parent, sizeof(parent), "%s", url.path);
		slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
			rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
			                  "directory %s does not exist and neither does its parent %s",
			                  url.path, parent);
		else if (access(parent, W_OK | X_OK) != 0)
			rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
			                  "directory %s does not exist and its parent %s is not writable "
			                  "(%s)", url.path, parent, strerror(errno));
		else
			rc = ps_check_add(report, "target.writable", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
			                  "directory %s will be created in %s", url.path, parent);
	}
	if (rc != 0)
		return ps_error_set(err, rc, "out of memory");
	return PS_OK;
}
