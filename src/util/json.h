/*
 * json.h — the hot-path JSON writer used by event sinks and logs.
 *
 * ps_json_append_string writes a complete JSON string literal (with quotes)
 * for ANY byte sequence: quote, backslash and control characters are
 * escaped; valid UTF-8 (including 4-byte, non-BMP sequences) is copied as it
 * is; every byte that is not part of a valid UTF-8 sequence (stray
 * continuation bytes, overlong forms, surrogates, > U+10FFFF, truncated
 * sequences) becomes U+FFFD, so the output always parses.
 */
#ifndef PS_UTIL_JSON_H
#define PS_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

int ps_json_append_string(ps_buf *b, const char *s, size_t len);
/* Standard base64 (RFC 4648, with padding) as a JSON string literal. */
int ps_json_append_base64(ps_buf *b, const void *p, size_t len);

#endif
