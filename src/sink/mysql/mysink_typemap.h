/*
 * mysink_typemap.h — how the MySQL / MariaDB sink maps types and values
 * (docs/types-mariadb.md), shared with compare's MariaDB side. Pure
 * functions: no connection, no allocation.
 *
 *  - ps__mys_type_for: the column type a created table gets for a source
 *    column (from the source engine's spelling, else its type class), or
 *    why the column has no exact MariaDB home.
 *  - ps__mys_col_from_catalog: how values are written to, and compared
 *    with, an existing target column (information_schema's DATA_TYPE and
 *    COLUMN_TYPE) given the source column's type class.
 *  - ps__mys_convert: a canonical value (penstock/change.h) as the target
 *    column takes it, or why it cannot (infinity, NaN, BC dates ...).
 */
#ifndef PS_SINK_MYSQL_TYPEMAP_H
#define PS_SINK_MYSQL_TYPEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/change.h"

/* How a canonical value becomes the target column's. */
typedef enum mys_conv {
	MYS_CONV_TEXT = 0,     /* as it is */
	MYS_CONV_BOOL,         /* "t"/"f" -> "1"/"0" (an integer column, bool source) */
	MYS_CONV_BYTES,        /* "\x00ff" -> the bytes (a binary column, bytes source) */
	MYS_CONV_TSTZ,         /* "... +00" -> "..." in UTC (DATETIME, TIMESTAMP) */
	MYS_CONV_DATETIME,     /* checked: no infinity, BC or year past 9999 */
	MYS_CONV_DATE,         /* checked as DATETIME */
	MYS_CONV_FLOAT,        /* checked: no NaN or Infinity */
	MYS_CONV_DECIMAL,      /* checked: no NaN or Infinity */
	MYS_CONV_BIT,          /* "0101" -> "5" (a BIT column) */
	MYS_CONV_YEAR,         /* "0" -> "0000" (a YEAR column reads the text '0' as 2000) */
	MYS_CONV_UUID          /* checked: a value MariaDB's UUID type takes */
} mys_conv;

/* A target column as the sink writes and compares it. */
typedef struct mys_col {
	uint8_t conv;          /* mys_conv */
	bool binary;           /* bind as bytes (MYSQL_TYPE_BLOB): a binary string column */
	bool text;             /* a character column: compared by its bytes when matching rows */
	bool fixed;            /* CHAR(n): trailing spaces are not kept */
	bool generated;        /* a generated column: cannot be written */
	bool single;           /* FLOAT: a value goes in as the exact double of its float */
	bool enum_error;       /* an ENUM without '' among its labels: '' is MariaDB's
	                          error value (index 0), storable only non-strictly */
	char charset[32];      /* text: the column's character set */
	char param[48];        /* a value of it in INSERT / SET: "?" or "CAST(? AS UNSIGNED)" */
	char where[64];        /* a value of it in WHERE: "?" or "CAST(? AS DECIMAL(12,2))" */
} mys_col;

/* What ps__mys_type_for looks at. */
typedef struct mys_type_in {
	const char *engine;    /* the source engine ("postgresql", "mysql"), or NULL */
	const char *sql_type;  /* the type as the source spells it, or NULL */
	int type_class;        /* ps_type_class */
	bool user_type;        /* a type outside the source's catalog (PG enum, domain) */
	bool in_unique;        /* part of the primary key or a unique key: must be
	                          indexable whole */
} mys_type_in;

/* The MariaDB type of a created column into buf, or PS_EINVAL with why
 * (what has no exact home and what to do instead) in why. */
int ps__mys_type_for(const mys_type_in *in, char *buf, size_t len, char *why, size_t why_len);

/* Fills out for a target column: data_type and column_type as
 * information_schema.COLUMNS gives them, charset its CHARACTER_SET_NAME (or
 * NULL), generated its IS_GENERATED <> 'NEVER', type_class the source
 * column's class. */
void ps__mys_col_from_catalog(mys_col *out, const char *data_type, const char *column_type,
                              const char *charset, bool generated, int type_class);

/* Bytes of scratch ps__mys_convert may need for a value of len bytes. */
size_t ps__mys_scratch_len(size_t len);
/* The value v (len bytes, canonical text) as column c takes it: *out and
 * *out_len point into v, into scratch, or at a constant. PS_EINVAL with
 * *why (a static phrase: "is infinite; MariaDB has no infinite date") when
 * the target cannot hold it exactly. */
int ps__mys_convert(const mys_col *c, const char *v, size_t len, char *scratch,
                    const char **out, size_t *out_len, const char **why);

/* Whether name fits a MariaDB identifier (64 characters at most, no NUL,
 * no trailing space). */
bool ps__mys_ident_ok(const char *name);

#endif
