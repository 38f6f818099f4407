/*
 * fault.c — fault injection (see fault.h). Parsed once at start; hit counters
 * are atomics so the reader and the applier may share the table. The known
 * points are the core's and those the registered plugins declare
 * (fault_points in their ops, each under the plugin's name): this file
 * names no engine.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/plugin.h"
#include "util/log.h"

#define MAX_FAULTS 8

typedef struct fault {
	char point[64];
	int crash;
	long nth;
	atomic_long hits;
} fault;

static fault g_faults[MAX_FAULTS];
static int g_nfaults;

static const char *const core_points[] = {
	"source.read", "apply.batch.before_commit", "apply.batch.after_commit",
	"snapshot.unit.commit", "checkpoint.after_flush", NULL
};

/* Known point number i: the core's, then the plugins'; NULL past the last. */
static const char *known_point(size_t i)
{
	size_t ncore = sizeof(core_points) / sizeof(core_points[0]) - 1;

	return i < ncore ? core_points[i] : ps_plugin_fault_point(i - ncore);
}

static int parse_one(const char *spec, fault *f, ps_error *err)
{
	const char *colon = strchr(spec, ':');
	const char *at;
	char action[16];
	char *end = NULL;
	size_t plen;
	int known = 0;
	char list[1024];
	size_t used = 0;

	if (!colon)
		return ps_error_set(err, PS_EINVAL,
		                    "PENSTOCK_FAULT: '%s' is not <point>:<error|crash>[@<n>]", spec);
	plen = (size_t)(colon - spec);
	if (plen == 0 || plen >= sizeof(f->point))
		return ps_error_set(err, PS_EINVAL, "PENSTOCK_FAULT: bad point in '%s'", spec);
	memcpy(f->point, spec, plen);
	f->point[plen] = '\0';
	list[0] = '\0';
	for (size_t i = 0; known_point(i); i++) {
		known |= strcmp(known_point(i), f->point) == 0;
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
			                         known_point(i));
	}
	if (!known)
		return ps_error_set(err, PS_EINVAL, "PENSTOCK_FAULT: unknown point '%s'; known: %s",
		                    f->point, list);
	at = strchr(colon + 1, '@');
	plen = at ? (size_t)(at - colon - 1) : strlen(colon + 1);
	if (plen >= sizeof(action))
		plen = sizeof(action) - 1;
	memcpy(action, colon + 1, plen);
	action[plen] = '\0';
	if (strcmp(action, "error") == 0)
		f->crash = 0;
	else if (strcmp(action, "crash") == 0)
		f->crash = 1;
	else
		return ps_error_set(err, PS_EINVAL,
		                    "PENSTOCK_FAULT: action '%s' is not error or crash", action);
	f->nth = 1;
	if (at) {
		errno = 0;
		f->nth = strtol(at + 1, &end, 10);
		if (at[1] < '0' || at[1] > '9' || *end != '\0' || errno != 0 || f->nth < 1)
			return ps_error_set(err, PS_EINVAL,
			                    "PENSTOCK_FAULT: '@%s' is not a positive count", at + 1);
	}
	atomic_init(&f->hits, 0);
	return PS_OK;
}

int ps_fault_init(ps_error *err)
{
	const char *env = getenv("PENSTOCK_FAULT");
	char copy[512];
	char *p, *comma;

	g_nfaults = 0;
	if (!env || !*env)
		return PS_OK;
	if (strlen(env) >= sizeof(copy))
		return ps_error_set(err, PS_EINVAL, "PENSTOCK_FAULT is longer than %zu bytes",
		                    sizeof(copy) - 1);
	snprintf(copy, sizeof(copy), "%s", env);
	for (p = copy; p && *p; p = comma ? comma + 1 : NULL) {
		comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (g_nfaults == MAX_FAULTS)
			return ps_error_set(err, PS_EINVAL, "PENSTOCK_FAULT: at most %d faults", MAX_FAULTS);
		if (parse_one(p, &g_faults[g_nfaults], err) != PS_OK) {
			g_nfaults = 0;   /* nothing armed from a value that was refused */
			return PS_EINVAL;
		}
		g_nfaults++;
	}
	return PS_OK;
}

int ps_fault_hit(const char *point, ps_error *err)
{
	const fault *fire = NULL;

	/* Every entry for the point counts every hit, so "p:error@1,p:error@3"
	 * fires on the first and the third. */
	for (int i = 0; i < g_nfaults; i++) {
		fault *f = &g_faults[i];
		if (strcmp(f->point, point) != 0)
			continue;
		if (atomic_fetch_add(&f->hits, 1) + 1 == f->nth && !fire)
			fire = f;
	}
	if (!fire)
		return PS_OK;
	if (fire->crash) {
		ps_log_warn("fault point %s: crashing as PENSTOCK_FAULT asks", point);
		kill(getpid(), SIGKILL);
		_exit(137);
	}
	return ps_error_set(err, PS_EFAULT, "injected fault at %s (PENSTOCK_FAULT)", point);
}
