/*
 * str.h — small string and file helpers shared across modules.
 */
#ifndef PS_UTIL_STR_H
#define PS_UTIL_STR_H

#include "penstock/error.h"

/* Value of a hexadecimal digit, or -1. */
int ps_hex_value(char c);

/* Overwrites a secret with zeros, then frees it. NULL is fine. */
void ps_secret_free(char *secret);

/* fsync of a directory, so a created or renamed entry in it is durable. */
int ps_fsync_dir(const char *dir, ps_error *err);

#endif
