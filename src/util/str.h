/*
 * str.h — small string and file helpers shared across modules.
 */
#ifndef PS_UTIL_STR_H
#define PS_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/error.h"

/* Value of a hexadecimal digit, or -1. */
int ps_hex_value(char c);

/* Overwrites a secret with zeros, then frees it. NULL is fine. */
void ps_secret_free(char *secret);

/* String vectors (the table patterns): a NULL-terminated copy of v's n
 * strings, or NULL when out of memory; free of a copy (NULL is fine); equal
 * when of the same length and the same strings in the same order. */
char **ps_strv_copy(char *const *v, size_t n);
void ps_strv_free(char **v, size_t n);
bool ps_strv_equal(char *const *a, size_t na, char *const *b, size_t nb);

/* Length of the valid UTF-8 sequence at s (1..4, RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 if invalid or cut
 * short by avail. */
size_t ps_utf8_valid_len(const unsigned char *s, size_t avail);
/* Makes s valid UTF-8 in place, every byte that is not part of a valid
 * sequence becoming '?': for text bound for JSON (jansson refuses anything
 * else) that may hold bytes from a server in another encoding, or end in a
 * character that a bounded snprintf cut in half. */
void ps_utf8_sanitize(char *s);

/* The decimal number s begins with (after optional blanks and a sign), or 0
 * when it begins with none; for numbers inside text a server gave (an errno
 * in a warning, a length in a type name), where no number means 0. Out of
 * range: LONG_MIN or LONG_MAX, as strtol. */
long ps_leading_long(const char *s);

/* fsync of a directory, so a created or renamed entry in it is durable. */
int ps_fsync_dir(const char *dir, ps_error *err);

#endif
