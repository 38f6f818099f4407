/*
 * binlog.h — decoder of MariaDB (and, where it is the same, MySQL) binary log
 * events, from raw bytes to canonical text. No I/O and no libmariadb: the
 * same code serves a binlog file reader, the network transport and a fuzzer.
 *
 * Layers, each usable alone:
 *
 *   1. Framing: ps_binlog_event_parse takes the bytes of exactly one event
 *      (19-byte header .. last byte, CRC32 included when there is one),
 *      checks its length and checksum against the current format
 *      description (ps_binlog_fde), and decodes the event's own fields into a
 *      ps_binlog_event.
 *   2. Tables: ps_binlog_table_map_parse turns a TABLE_MAP event into a
 *      ps_binlog_table (column types, metadata and every optional metadata
 *      field of binlog_row_metadata=FULL). ps_binlog_tablecache keeps them by
 *      table id, as a reader must.
 *   3. Rows: ps_binlog_rows_begin / ps_binlog_rows_next walk the rows of a
 *      WRITE/UPDATE/DELETE_ROWS event (v1, v2 and MariaDB's compressed v1),
 *      yielding each row image as an array of ps_binlog_value in canonical
 *      text (see "Values" below).
 *
 * Errors: every function returns 0 (or a count) on success and a negative
 * ps_error_code on failure, with err filled. Malformed input is PS_EPROTO
 * whose message names the event type, the field and the byte offset in the
 * event ("binlog Table_map event: column 3 metadata: truncated at byte 41
 * (need 2 more)"); a size past a buffer's limit is PS_ETOOBIG; formats that
 * exist but are not decoded (MySQL GTID events, binary JSON, an unsupported
 * charset, encrypted binlogs) are PS_EPROTO with "not supported yet".
 * Nothing is ever read past the given length, and no allocation is larger
 * than a small multiple of the event's length (or the caller's limits).
 *
 * Ownership:
 *   - ps_binlog_event points into the caller's buffer (and, for a compressed
 *     QUERY event, into scratch->inflate). It is valid while both are.
 *   - ps_binlog_table is one allocation owned by whoever parsed it (or by
 *     the table cache that holds it): free it with ps_binlog_table_free. It
 *     does not point into the event.
 *   - ps_binlog_rows borrows the event, the table and the scratch; the values
 *     of a row point into scratch->text and are valid until the next
 *     ps_binlog_rows_next (or any other use of the same scratch).
 *   - ps_binlog_scratch is owned by the caller, reused across events (no
 *     allocation on the per-value path once it has grown), freed with
 *     ps_binlog_scratch_free.
 *
 * Values (canonical text, the core's PostgreSQL text output forms):
 *   integers           decimal, unsigned per the SIGNEDNESS metadata
 *   DECIMAL            exact, exactly `scale` fraction digits, no exponent
 *   FLOAT / DOUBLE     shortest text that round-trips; NaN, Infinity, -Infinity
 *   DATE               YYYY-MM-DD
 *   DATETIME           YYYY-MM-DD HH:MM:SS[.f] (fraction without trailing zeros)
 *   TIMESTAMP          YYYY-MM-DD HH:MM:SS[.f]+00 (the binlog holds UTC)
 *   TIME               [-]HH:MM:SS[.f], hours up to 838
 *   zero dates         as MariaDB prints them ("0000-00-00", "2024-00-10",
 *                      "0000-00-00 00:00:00", TIMESTAMP 0 without "+00"),
 *                      flagged PS_BINLOG_VF_ZERO_DATE
 *   YEAR               0 stays "0", else 1900 + n
 *   BIT(n)             n characters '0'/'1'
 *   character strings  UTF-8, converted from the column's charset
 *   binary strings     "\x" + lowercase hex; BINARY(n) padded back to n bytes
 *   ENUM / SET         label / labels joined with ','; without labels in the
 *                      metadata the index / bitmask in decimal, flagged
 *                      PS_BINLOG_VF_NO_LABELS
 *   UUID / INET6 / INET4  (only when the caller marked the column, see
 *                      ps_binlog_column.ext: the binlog shows them as BINARY)
 *                      8-4-4-4-12 lowercase; PostgreSQL inet text; dotted quad
 *   GEOMETRY, BLOB     bytes
 *   MariaDB JSON       text (it is LONGTEXT in the binlog)
 */
#ifndef PS_SOURCE_MYSQL_BINLOG_H
#define PS_SOURCE_MYSQL_BINLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "penstock/error.h"
#include "util/buf.h"

/* --- constants -------------------------------------------------------------- */

#define PS_BINLOG_MAGIC "\xfe" "bin"     /* first 4 bytes of a binlog file */
#define PS_BINLOG_MAGIC_LEN 4
#define PS_BINLOG_HEADER_LEN 19
#define PS_BINLOG_CHECKSUM_LEN 4

/* Event type codes (the header's type byte). */
enum {
	PS_BINLOG_UNKNOWN_EVENT = 0,
	PS_BINLOG_START_V3 = 1,
	PS_BINLOG_QUERY = 2,
	PS_BINLOG_STOP = 3,
	PS_BINLOG_ROTATE = 4,
	PS_BINLOG_INTVAR = 5,
	PS_BINLOG_RAND = 13,
	PS_BINLOG_USER_VAR = 14,
	PS_BINLOG_FORMAT_DESCRIPTION = 15,
	PS_BINLOG_XID = 16,
	PS_BINLOG_TABLE_MAP = 19,
	PS_BINLOG_WRITE_ROWS_V1 = 23,
	PS_BINLOG_UPDATE_ROWS_V1 = 24,
	PS_BINLOG_DELETE_ROWS_V1 = 25,
	PS_BINLOG_INCIDENT = 26,
	PS_BINLOG_HEARTBEAT = 27,
	PS_BINLOG_IGNORABLE = 28,
	PS_BINLOG_ROWS_QUERY = 29,           /* MySQL */
	PS_BINLOG_WRITE_ROWS_V2 = 30,        /* MySQL */
	PS_BINLOG_UPDATE_ROWS_V2 = 31,
	PS_BINLOG_DELETE_ROWS_V2 = 32,
	PS_BINLOG_MYSQL_GTID = 33,           /* MySQL */
	PS_BINLOG_MYSQL_ANONYMOUS_GTID = 34,
	PS_BINLOG_MYSQL_PREVIOUS_GTIDS = 35,
	PS_BINLOG_XA_PREPARE = 38,           /* MySQL and MariaDB */
	PS_BINLOG_MYSQL_PARTIAL_UPDATE_ROWS = 39,
	PS_BINLOG_MYSQL_TRANSACTION_PAYLOAD = 40,
	PS_BINLOG_MYSQL_HEARTBEAT_V2 = 41,
	PS_BINLOG_MYSQL_GTID_TAGGED = 42,
	PS_BINLOG_ANNOTATE_ROWS = 160,       /* MariaDB from here on */
	PS_BINLOG_BINLOG_CHECKPOINT = 161,
	PS_BINLOG_GTID = 162,
	PS_BINLOG_GTID_LIST = 163,
	PS_BINLOG_START_ENCRYPTION = 164,
	PS_BINLOG_QUERY_COMPRESSED = 165,
	PS_BINLOG_WRITE_ROWS_COMPRESSED_V1 = 166,
	PS_BINLOG_UPDATE_ROWS_COMPRESSED_V1 = 167,
	PS_BINLOG_DELETE_ROWS_COMPRESSED_V1 = 168,
	PS_BINLOG_WRITE_ROWS_COMPRESSED = 169,
	PS_BINLOG_UPDATE_ROWS_COMPRESSED = 170,
	PS_BINLOG_DELETE_ROWS_COMPRESSED = 171
};

/* Header flags. */
#define PS_BINLOG_F_BINLOG_IN_USE 0x0001u   /* FDE: file not closed cleanly */
#define PS_BINLOG_F_ARTIFICIAL 0x0020u      /* made up by the sender, log_pos 0 */
#define PS_BINLOG_F_RELAY_LOG 0x0040u
#define PS_BINLOG_F_SKIP_REPLICATION 0x8000u

/* Checksum algorithms (FDE). */
#define PS_BINLOG_CHECKSUM_OFF 0
#define PS_BINLOG_CHECKSUM_CRC32 1
#define PS_BINLOG_CHECKSUM_UNDEF 255

/* MariaDB GTID flags2. */
#define PS_BINLOG_GTID_STANDALONE 0x01u
#define PS_BINLOG_GTID_GROUP_COMMIT_ID 0x02u
#define PS_BINLOG_GTID_TRANSACTIONAL 0x04u
#define PS_BINLOG_GTID_ALLOW_PARALLEL 0x08u
#define PS_BINLOG_GTID_WAITED 0x10u
#define PS_BINLOG_GTID_DDL 0x20u
#define PS_BINLOG_GTID_PREPARED_XA 0x40u
#define PS_BINLOG_GTID_COMPLETED_XA 0x80u
/* MariaDB GTID flags_extra. */
#define PS_BINLOG_GTID_EXTRA_MULTI_ENGINE 0x01u
#define PS_BINLOG_GTID_EXTRA_START_ALTER 0x02u
#define PS_BINLOG_GTID_EXTRA_COMMIT_ALTER 0x04u
#define PS_BINLOG_GTID_EXTRA_ROLLBACK_ALTER 0x08u
#define PS_BINLOG_GTID_EXTRA_THREAD_ID 0x10u

/* Rows event flags. */
#define PS_BINLOG_ROWS_STMT_END 0x0001u
#define PS_BINLOG_ROWS_NO_FOREIGN_KEY_CHECKS 0x0002u
#define PS_BINLOG_ROWS_RELAXED_UNIQUE_CHECKS 0x0004u
#define PS_BINLOG_ROWS_COMPLETE_ROWS 0x0008u

/* Column type codes (MYSQL_TYPE_*), as in TABLE_MAP and column.real_type. */
enum {
	PS_MYSQL_TYPE_DECIMAL = 0,
	PS_MYSQL_TYPE_TINY = 1,
	PS_MYSQL_TYPE_SHORT = 2,
	PS_MYSQL_TYPE_LONG = 3,
	PS_MYSQL_TYPE_FLOAT = 4,
	PS_MYSQL_TYPE_DOUBLE = 5,
	PS_MYSQL_TYPE_NULL = 6,
	PS_MYSQL_TYPE_TIMESTAMP = 7,
	PS_MYSQL_TYPE_LONGLONG = 8,
	PS_MYSQL_TYPE_INT24 = 9,
	PS_MYSQL_TYPE_DATE = 10,
	PS_MYSQL_TYPE_TIME = 11,
	PS_MYSQL_TYPE_DATETIME = 12,
	PS_MYSQL_TYPE_YEAR = 13,
	PS_MYSQL_TYPE_NEWDATE = 14,
	PS_MYSQL_TYPE_VARCHAR = 15,
	PS_MYSQL_TYPE_BIT = 16,
	PS_MYSQL_TYPE_TIMESTAMP2 = 17,
	PS_MYSQL_TYPE_DATETIME2 = 18,
	PS_MYSQL_TYPE_TIME2 = 19,
	PS_MYSQL_TYPE_JSON = 245,            /* MySQL binary JSON */
	PS_MYSQL_TYPE_NEWDECIMAL = 246,
	PS_MYSQL_TYPE_ENUM = 247,
	PS_MYSQL_TYPE_SET = 248,
	PS_MYSQL_TYPE_TINY_BLOB = 249,
	PS_MYSQL_TYPE_MEDIUM_BLOB = 250,
	PS_MYSQL_TYPE_LONG_BLOB = 251,
	PS_MYSQL_TYPE_BLOB = 252,
	PS_MYSQL_TYPE_VAR_STRING = 253,
	PS_MYSQL_TYPE_STRING = 254,
	PS_MYSQL_TYPE_GEOMETRY = 255
};

/* Collation id of the binary charset. */
#define PS_BINLOG_COLLATION_BINARY 63

/* --- format description --------------------------------------------------------- */

typedef struct ps_binlog_fde {
	uint16_t binlog_version;       /* 4 */
	char server_version[51];       /* e.g. "10.11.19-MariaDB-0+deb12u1-log" */
	bool mariadb;                  /* server_version names MariaDB */
	uint8_t header_len;            /* common header length, >= 19 */
	uint8_t checksum_alg;          /* PS_BINLOG_CHECKSUM_* of the events after it */
	uint16_t ntypes;               /* how many post-header lengths it listed */
	uint8_t post_header_len[256];  /* by type code; [0] unused */
} ps_binlog_fde;

/* The format in force before the first FORMAT_DESCRIPTION event: binlog v4,
 * 19-byte header, MariaDB 10.x post-header lengths, and checksum_alg (a
 * network reader knows it from @master_binlog_checksum; a file reader passes
 * PS_BINLOG_CHECKSUM_OFF, the FDE being the first event of a file). */
void ps_binlog_fde_init(ps_binlog_fde *fde, uint8_t checksum_alg);

/* --- scratch ------------------------------------------------------------------- */

typedef struct ps_binlog_value ps_binlog_value;

typedef struct ps_binlog_scratch {
	ps_buf text;                   /* texts of the current row's values */
	ps_buf inflate;                /* body of the current compressed event */
	ps_binlog_value *values;       /* 2 x columns of the widest table seen */
	size_t *offsets;               /* text offset of each value while decoding */
	size_t nvalues;                /* entries in values and offsets */
} ps_binlog_scratch;

#define PS_BINLOG_TEXT_LIMIT_DEFAULT ((size_t)1 << 31)      /* 2 GiB of text a row */
#define PS_BINLOG_INFLATE_LIMIT_DEFAULT ((size_t)1 << 30)   /* 1 GiB (max_allowed_packet) */

/* Limits: 0 means the default. */
void ps_binlog_scratch_init(ps_binlog_scratch *s, size_t text_limit, size_t inflate_limit);
void ps_binlog_scratch_free(ps_binlog_scratch *s);

/* --- events -------------------------------------------------------------------- */

typedef struct ps_binlog_header {
	uint32_t timestamp;            /* seconds since the epoch */
	uint8_t type;                  /* event type code */
	uint32_t server_id;
	uint32_t event_len;            /* whole event, header and checksum included */
	uint32_t log_pos;              /* position of the next event; 0 if artificial */
	uint16_t flags;                /* PS_BINLOG_F_* */
} ps_binlog_header;

/* Reads the 19-byte common header (len >= 19). Checks only that event_len is
 * at least 19: the rest is for ps_binlog_event_parse. */
int ps_binlog_header_parse(ps_binlog_header *out, const uint8_t *buf, size_t len,
                           ps_error *err);

/* What an event is to a reader. */
typedef enum ps_binlog_kind {
	PS_BINLOG_EV_OTHER = 0,        /* known or unknown, nothing to do: skip */
	PS_BINLOG_EV_FDE,
	PS_BINLOG_EV_ROTATE,
	PS_BINLOG_EV_GTID,             /* MariaDB transaction start */
	PS_BINLOG_EV_GTID_LIST,
	PS_BINLOG_EV_QUERY,
	PS_BINLOG_EV_XID,              /* transaction commit */
	PS_BINLOG_EV_XA_PREPARE,       /* XA transaction prepared (ends its group) */
	PS_BINLOG_EV_HEARTBEAT,
	PS_BINLOG_EV_ANNOTATE_ROWS,
	PS_BINLOG_EV_BINLOG_CHECKPOINT,
	PS_BINLOG_EV_TABLE_MAP,
	PS_BINLOG_EV_ROWS,
	PS_BINLOG_EV_INCIDENT,         /* the server lost events: a reader must stop */
	PS_BINLOG_EV_STOP              /* the server shut down */
} ps_binlog_kind;

/* What a QUERY event's statement is. */
typedef enum ps_binlog_query_kind {
	PS_BINLOG_Q_STATEMENT = 0,     /* anything else: DDL, XA ..., SAVEPOINT ... */
	PS_BINLOG_Q_BEGIN,
	PS_BINLOG_Q_COMMIT,
	PS_BINLOG_Q_ROLLBACK
} ps_binlog_query_kind;

typedef enum ps_binlog_row_op {
	PS_BINLOG_INSERT = 1,
	PS_BINLOG_UPDATE = 2,
	PS_BINLOG_DELETE = 3
} ps_binlog_row_op;

#define PS_BINLOG_GTID_LIST_MAX 4096   /* entries decoded from one GTID_LIST */

typedef struct ps_binlog_gtid {
	uint32_t domain_id;
	uint32_t server_id;
	uint64_t seq_no;
} ps_binlog_gtid;

typedef struct ps_binlog_event {
	ps_binlog_header header;
	int kind;                      /* ps_binlog_kind */
	const char *type_name;         /* "Write_rows_v1", "Gtid", ... or "Unknown" */
	const uint8_t *body;           /* after the common header, checksum excluded */
	size_t body_len;
	bool has_checksum;             /* the event ended in a CRC32, verified */
	union {
		ps_binlog_fde fde;     /* the new format: the caller makes it current */
		struct {
			uint64_t position;
			const char *file;  /* not NUL-terminated */
			size_t file_len;
		} rotate;
		struct {
			uint64_t seq_no;
			uint32_t domain_id;
			uint8_t flags2;    /* PS_BINLOG_GTID_* */
			uint8_t flags_extra;
			uint64_t commit_id;        /* with PS_BINLOG_GTID_GROUP_COMMIT_ID */
			uint8_t extra_engines;
			uint64_t sa_seq_no;        /* COMMIT/ROLLBACK ALTER */
			uint32_t xid_format_id;    /* XA */
			const uint8_t *xid_data;   /* gtrid then bqual */
			uint8_t xid_gtrid_len, xid_bqual_len;
		} gtid;
		struct {
			uint32_t count;            /* entries in the event */
			uint8_t flags;             /* top 4 bits of the count word */
			const uint8_t *raw;        /* count x 16 bytes; use ps_binlog_gtid_list_get */
		} gtid_list;
		struct {
			uint32_t thread_id;
			uint32_t exec_time;
			uint16_t error_code;
			const char *db;            /* NUL-terminated in the event */
			size_t db_len;
			const char *statement;     /* not NUL-terminated */
			size_t statement_len;
			int kind;                  /* ps_binlog_query_kind */
			bool compressed;           /* was QUERY_COMPRESSED (statement inflated) */
			/* from the status variables, when present */
			bool has_charset;
			uint16_t charset_client, collation_connection, collation_server;
			bool has_sql_mode;
			uint64_t sql_mode;
			const char *time_zone;     /* not NUL-terminated; NULL if absent */
			size_t time_zone_len;
		} query;
		struct {
			uint64_t xid;
		} xid;
		struct {
			bool one_phase;
			uint32_t format_id;
			const uint8_t *data;       /* gtrid then bqual */
			uint32_t gtrid_len, bqual_len;
		} xa_prepare;
		struct {
			const char *file;          /* current binlog; position in header.log_pos */
			size_t file_len;
		} heartbeat;
		struct {
			const char *statement;
			size_t statement_len;
		} annotate;
		struct {
			const char *file;
			size_t file_len;
		} checkpoint;
		struct {
			uint16_t number;
			const char *message;
			size_t message_len;
		} incident;
		struct {
			uint64_t table_id;
			uint16_t flags;
			size_t data_pos;           /* in body: where the post-header ends */
		} table_map;                   /* decode with ps_binlog_table_map_parse */
		struct {
			uint64_t table_id;
			uint16_t flags;            /* PS_BINLOG_ROWS_* */
			int op;                    /* ps_binlog_row_op */
			uint8_t version;           /* 1 or 2 */
			bool compressed;
			uint32_t width;            /* columns in the table */
			const uint8_t *present;    /* width bits: columns in the row image
			                              (UPDATE: in the before image) */
			const uint8_t *present_after; /* UPDATE: columns in the after image;
			                                 else the same as present */
			const uint8_t *rows;       /* row data, compressed if `compressed` */
			size_t rows_len;
			size_t rows_offset;        /* of `rows` in the event, for messages */
		} rows;
	} u;
} ps_binlog_event;

/*
 * Decodes one whole event: buf holds exactly header.event_len bytes. Verifies
 * the CRC32 when fde says so (an FDE carries its own algorithm and is checked
 * by it). scratch is needed only for QUERY_COMPRESSED (the statement is
 * inflated into scratch->inflate); it may be NULL otherwise. Unknown event
 * types come back as PS_BINLOG_EV_OTHER. On success *out is filled; on error
 * its contents mean nothing.
 *
 * A FORMAT_DESCRIPTION event yields kind PS_BINLOG_EV_FDE and the new format
 * in out->u.fde; the caller makes it current for the events that follow.
 */
int ps_binlog_event_parse(ps_binlog_event *out, const uint8_t *buf, size_t len,
                          const ps_binlog_fde *fde, ps_binlog_scratch *scratch,
                          ps_error *err);

/* Entry i (< count, and < PS_BINLOG_GTID_LIST_MAX) of a GTID_LIST event. */
void ps_binlog_gtid_list_get(const ps_binlog_event *ev, uint32_t i, ps_binlog_gtid *out);

/* Name of an event type code ("Query", "Write_rows_compressed_v1", ...). */
const char *ps_binlog_type_name(uint8_t type);

/* --- tables -------------------------------------------------------------------- */

/* What the caller knows about a column that the binlog does not say. MariaDB
 * writes UUID, INET6 and INET4 columns as BINARY(16) / BINARY(4), with
 * nothing in TABLE_MAP that tells them apart: a reader that knows the type
 * from information_schema marks the column and gets the type's text. */
typedef enum ps_binlog_ext {
	PS_BINLOG_EXT_NONE = 0,
	PS_BINLOG_EXT_UUID,
	PS_BINLOG_EXT_INET6,
	PS_BINLOG_EXT_INET4
} ps_binlog_ext;

typedef struct ps_binlog_column {
	const char *name;              /* NUL-terminated; NULL without COLUMN_NAME metadata */
	uint8_t type;                  /* type code in TABLE_MAP */
	uint8_t real_type;             /* STRING -> STRING/ENUM/SET; BLOB -> TINY_/MEDIUM_/LONG_BLOB
	                                  by its length bytes; else = type */
	uint16_t meta;                 /* raw metadata as mariadb-binlog prints it
	                                  (STRING, ENUM, SET, NEWDECIMAL: byte0 << 8 |
	                                  byte1; others little-endian) */
	bool nullable;
	bool is_numeric;               /* has a SIGNEDNESS bit (YEAR included) */
	bool is_unsigned;              /* from SIGNEDNESS */
	bool is_key;                   /* part of the primary key */
	uint16_t key_seq;              /* 1-based position in the primary key, 0 if not */
	uint32_t key_prefix;           /* prefix length in characters, 0 = whole column */
	uint32_t max_bytes;            /* CHAR/VARCHAR/BINARY: max length in bytes;
	                                  blobs, GEOMETRY: length bytes (1..4);
	                                  ENUM/SET: storage bytes */
	uint32_t bits;                 /* BIT(n): n */
	uint8_t precision, scale;      /* DECIMAL */
	uint8_t fsp;                   /* TIME2/DATETIME2/TIMESTAMP2 fraction digits */
	uint32_t collation;            /* collation id; 0 when not a string or unknown */
	uint32_t geometry_type;        /* GEOMETRY subtype from the metadata */
	uint32_t nlabels;              /* ENUM/SET labels (0 without the metadata) */
	const char *const *labels;     /* raw bytes in label_collation's charset
	                                  (NUL-terminated); UTF-8 text from
	                                  ps_binlog_label_text */
	const uint32_t *label_lens;
	uint32_t label_collation;      /* charset of the labels */
	uint8_t ext;                   /* ps_binlog_ext, set by the caller */
} ps_binlog_column;

/* What the optional metadata carried (bits of ps_binlog_table.has). */
#define PS_BINLOG_HAS_SIGNEDNESS 0x001u
#define PS_BINLOG_HAS_CHARSETS 0x002u      /* DEFAULT_ or COLUMN_CHARSET */
#define PS_BINLOG_HAS_NAMES 0x004u
#define PS_BINLOG_HAS_SET_LABELS 0x008u
#define PS_BINLOG_HAS_ENUM_LABELS 0x010u
#define PS_BINLOG_HAS_GEOMETRY_TYPES 0x020u
#define PS_BINLOG_HAS_PRIMARY_KEY 0x040u   /* SIMPLE_ or PRIMARY_KEY_WITH_PREFIX */
#define PS_BINLOG_HAS_ENUM_SET_CHARSETS 0x080u
#define PS_BINLOG_HAS_VISIBILITY 0x100u    /* MySQL COLUMN_VISIBILITY */

typedef struct ps_binlog_table {
	uint64_t table_id;
	uint16_t flags;
	const char *db;                /* NUL-terminated */
	const char *name;
	uint32_t ncolumns;
	ps_binlog_column *columns;
	uint32_t has;                  /* PS_BINLOG_HAS_* */
	/* the event body this was parsed from, to recognise a repeated TABLE_MAP */
	const uint8_t *raw;
	size_t raw_len;
} ps_binlog_table;

/* Decodes a TABLE_MAP event into a new table (one allocation, *out). */
int ps_binlog_table_map_parse(ps_binlog_table **out, const ps_binlog_event *ev,
                              ps_error *err);
void ps_binlog_table_free(ps_binlog_table *t);

/* True when ev (a TABLE_MAP) describes the table exactly as t does. */
bool ps_binlog_table_map_same(const ps_binlog_table *t, const ps_binlog_event *ev);

/* Appends label i (< c->nlabels) of an ENUM/SET column to out as UTF-8,
 * converted from the labels' charset. PS_EPROTO for an unsupported charset
 * or bytes invalid in it. */
int ps_binlog_label_text(const ps_binlog_column *c, uint32_t i, ps_buf *out, ps_error *err);

/* Index of the column named name, or -1. */
int ps_binlog_table_column_index(const ps_binlog_table *t, const char *name);

/* "db.table" style description of a column's type, e.g. "decimal(10,2)
 * unsigned", "varchar(30 bytes)", "enum", for messages and tools. */
void ps_binlog_column_describe(const ps_binlog_column *c, char *buf, size_t len);

/* Table cache by table id: what a reader keeps between TABLE_MAP and rows
 * events. At most PS_BINLOG_TABLECACHE_MAX tables: past that it is emptied
 * (every transaction maps its tables again). A put of a TABLE_MAP identical
 * to the cached one keeps the cached table (no allocation). */
#define PS_BINLOG_TABLECACHE_MAX 65536

typedef struct ps_binlog_tablecache ps_binlog_tablecache;

ps_binlog_tablecache *ps_binlog_tablecache_new(void);
void ps_binlog_tablecache_free(ps_binlog_tablecache *c);
/* Parses ev into the cache; *out (optional) is the cached table, borrowed:
 * valid until the next put of the same table id, or of any id when the cache
 * is emptied, or ps_binlog_tablecache_free. *replaced (optional) is set when
 * a different definition was cached under this id before. A table kept
 * because the TABLE_MAP was identical keeps the caller's ext marks; a newly
 * parsed one has none, so mark columns after every put. */
int ps_binlog_tablecache_put(ps_binlog_tablecache *c, const ps_binlog_event *ev,
                             ps_binlog_table **out, bool *replaced, ps_error *err);
/* Borrowed, or NULL when the id was never mapped. */
ps_binlog_table *ps_binlog_tablecache_get(ps_binlog_tablecache *c, uint64_t table_id);

/* --- rows ---------------------------------------------------------------------- */

typedef enum ps_binlog_value_kind {
	PS_BINLOG_NULL = 0,            /* same numbers as ps_value_kind */
	PS_BINLOG_TEXT = 1,
	PS_BINLOG_ABSENT = 2           /* column not in this image (partial row) */
} ps_binlog_value_kind;

#define PS_BINLOG_VF_ZERO_DATE 0x01u   /* a zero date or a date with zero parts */
#define PS_BINLOG_VF_NO_LABELS 0x02u   /* ENUM/SET as a number: no labels known */

struct ps_binlog_value {
	uint8_t kind;                  /* ps_binlog_value_kind */
	uint8_t flags;                 /* PS_BINLOG_VF_* */
	uint32_t len;                  /* bytes of text, NUL excluded */
	const char *text;              /* NUL-terminated when TEXT, else NULL */
};

typedef struct ps_binlog_row {
	const ps_binlog_value *before; /* UPDATE: the old row; DELETE: the row; else NULL */
	const ps_binlog_value *after;  /* UPDATE: the new row; INSERT: the row; else NULL */
	uint32_t ncolumns;
} ps_binlog_row;

typedef struct ps_binlog_rows {
	/* read-only for the caller */
	const ps_binlog_event *ev;
	const ps_binlog_table *table;
	int op;                        /* ps_binlog_row_op */
	uint64_t nrows;                /* rows returned so far */
	/* private */
	ps_binlog_scratch *scratch;
	const uint8_t *data;           /* row data (inflated when compressed) */
	size_t len, pos;
	size_t base;                   /* offset of data[0] in the event, for messages */
	bool inflated;
	uint32_t npresent, npresent_after;  /* columns in each image */
} ps_binlog_rows;

/* Starts walking the rows of ev (kind PS_BINLOG_EV_ROWS) with table, which
 * must be the table mapped under ev's table id. Inflates a compressed event
 * into scratch->inflate. */
int ps_binlog_rows_begin(ps_binlog_rows *it, const ps_binlog_event *ev,
                         const ps_binlog_table *table, ps_binlog_scratch *scratch,
                         ps_error *err);
/* Next row: 1 and *row filled, 0 at the end, < 0 on error. */
int ps_binlog_rows_next(ps_binlog_rows *it, ps_binlog_row *row, ps_error *err);

/* --- value texts shared with the snapshot ------------------------------------- */

/* A FLOAT (is_float) or DOUBLE as canonical text (PostgreSQL's float4 /
 * float8 output: shortest round trip). 0 or PS_ENOMEM / PS_ETOOBIG. */
int ps_binlog_float_text(ps_buf *out, double v, bool is_float);
/* The text of a UUID / INET6 (16 bytes) or INET4 (4 bytes) value, ext a
 * ps_binlog_ext other than NONE. */
int ps_binlog_ext_text(ps_buf *out, int ext, const uint8_t *b);

/* --- charsets ------------------------------------------------------------------ */

/* Charset name of a collation id ("utf8mb4", "latin1", "binary"), or NULL. */
const char *ps_binlog_charset_name(uint32_t collation);
/* Longest character in bytes (1 for binary and single-byte charsets), 0 if unknown. */
int ps_binlog_charset_maxlen(uint32_t collation);

#endif
