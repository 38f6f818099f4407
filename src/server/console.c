/*
 * console.c — which compiled-in file of the status page a URL names
 * (console.h); http.c sends it.
 */
#include <string.h>

#include "server/console.h"

const ps_console_asset *ps_console_find(const char *url)
{
	const char *name;

	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		name = "index.html";
	else if (strncmp(url, "/ui/", 4) == 0 && url[4] && !strchr(url + 4, '/'))
		name = url + 4;
	else
		return NULL;
	for (const ps_console_asset *a = ps_console_assets; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}
