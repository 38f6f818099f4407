/*
 * console.h — the status page at / (docs/api.md, "Status page"): an HTML
 * page, a script and a style sheet from src/server/console/, compiled into
 * the binary (scripts/embed-assets.sh writes the arrays at build time), so
 * the page needs nothing from the internet and nothing on disk.
 *
 * The files hold no data and no secret: they are served without the bearer
 * token, which the page asks for and then sends with each API call it makes
 * (kept in the browser's sessionStorage, never in a URL). Everything else
 * still needs the token (http.c note 2).
 */
#ifndef PS_SERVER_CONSOLE_H
#define PS_SERVER_CONSOLE_H

#include <stddef.h>

typedef struct ps_console_asset {
	const char *name;               /* file name: "index.html", "app.js" */
	const char *type;               /* Content-Type */
	const unsigned char *data;      /* len bytes (and a NUL after them) */
	size_t len;
} ps_console_asset;

/* Ended by an entry whose name is NULL (generated: build/gen/console_assets.c). */
extern const ps_console_asset ps_console_assets[];

/* The file served at url: "/" is index.html, "/ui/NAME" the file NAME;
 * NULL for anything else. */
const ps_console_asset *ps_console_find(const char *url);

/* The Content-Security-Policy of the page: its own files only, API calls to
 * its own origin, no inline script, no framing. */
#define PS_CONSOLE_CSP                                                                   \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#endif
