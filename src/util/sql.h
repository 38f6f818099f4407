/*
 * sql.h — identifiers into SQL text, one quoter per dialect.
 *
 * Every identifier that goes into a statement goes through one of these;
 * values never do (they are parameters, COPY data or bound values).
 *
 *   ps_sql_quote_ident    the SQL standard's double quotes, doubled inside:
 *                         PostgreSQL and SQLite ("a""b")
 *
 * Identifiers are UTF-8 text without NUL (C strings), which both engines
 * take as they are inside quotes.
 */
#ifndef PS_UTIL_SQL_H
#define PS_UTIL_SQL_H

#include "util/buf.h"

/* Appends the quoted identifier to b; on failure (the buffer's bound) b is
 * left as it was and the code returned. */
int ps_sql_quote_ident(ps_buf *b, const char *ident);

#endif
