/*
 * my_internal.h — the MySQL/MariaDB source's state, shared by its parts:
 *
 *   my_source.c     open, prepare, positions, options, drop, the ops table
 *   my_position.c   positions ("file:pos/gtid-list") and GTID states
 *   my_catalog.c    table selection and information_schema (columns, keys)
 *   my_transport.c  the binlog dump connection and its receiving thread
 *   my_stream.c     start, read, ack, fence: binlog events into items
 *   my_snapshot.c   describe, split, consistent snapshots, copy workers
 *   my_values.c     SELECT expressions and their text made canonical
 *   my_precheck.c   precheck
 *   my_live.c       markers, retable, chunk_read, sequences
 *
 * Columns of the ps_tables this source makes (engine "mysql"): type_id is
 * MariaDB's type code (MYSQL_TYPE_*; binlog.h), type_mod is 1 for an
 * UNSIGNED integer and -1 otherwise.
 *
 * Not part of any public contract.
 */
#ifndef PS_SOURCE_MYSQL_INTERNAL_H
#define PS_SOURCE_MYSQL_INTERNAL_H

#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "penstock/source.h"
#include "penstock/url.h"
#include "source/mysql/binlog.h"
#include "util/buf.h"

/* --- positions (my_position.c) ------------------------------------------- */

#define MY_FILE_MAX 128
#define MY_GTID_DOMAINS_MAX 256

/* A MariaDB GTID state: the last GTID of each replication domain, sorted
 * by domain. */
typedef struct my_gtid_state {
	ps_binlog_gtid g[MY_GTID_DOMAINS_MAX];
	int n;
} my_gtid_state;

/*
 * A position: "binlog.000003:1234/0-1-57,1-2-9". file:pos is where the
 * next event after the point starts (a transaction boundary); the GTID list
 * after '/' is the state of every domain at that point, when known. Either
 * part may be missing: "binlog.000003:4" or "0-1-57". Positions of one
 * server are ordered by file number and offset; GTID-only positions order
 * before every file position (they are only ever a start given by a user).
 */
typedef struct my_pos {
	char file[MY_FILE_MAX];   /* "" when absent */
	uint64_t filenum;         /* the number after the file name's last '.' */
	uint64_t offset;
	char gtid[PS_POSITION_MAX]; /* "" when absent */
} my_pos;

int my_pos_parse(const char *text, my_pos *out, ps_error *err);
/* file:offset[/gtid]; the GTID list is left out when the whole would not fit. */
void my_pos_format(char *buf, size_t len, const char *file, uint64_t offset, const char *gtid);
int my_pos_compare(const char *a, const char *b);
/* The number after the file name's last '.', 0 when none. */
uint64_t my_file_number(const char *file);

void my_gtid_state_clear(my_gtid_state *s);
/* Parses "d-s-n,d-s-n"; PS_EINVAL naming what is wrong. */
int my_gtid_state_parse(my_gtid_state *s, const char *text, ps_error *err);
void my_gtid_state_set(my_gtid_state *s, uint32_t domain, uint32_t server, uint64_t seq);
void my_gtid_state_format(const my_gtid_state *s, char *buf, size_t len);

/* --- catalog (my_catalog.c) ---------------------------------------------- */

/* What information_schema says of a column that the binlog does not. */
typedef struct my_colinfo {
	char *name;
	char *data_type;          /* lower case: "int", "varchar", "uuid", "inet6" */
	char *column_type;        /* "int(10) unsigned", "enum('a','b')" */
	char *default_expr;       /* COLUMN_DEFAULT as MariaDB spells it, or NULL */
	char *charset;            /* CHARACTER_SET_NAME, or NULL */
	bool nullable;
	bool is_unsigned;
	bool json;                /* LONGTEXT with CHECK (json_valid(col)) */
	bool generated;           /* a virtual or stored generated column */
	bool auto_increment;
	int precision;            /* DATETIME_PRECISION, -1 if none */
	int ext;                  /* ps_binlog_ext */
	uint8_t type_class;       /* ps_type_class */
} my_colinfo;

typedef struct my_keyinfo {
	char *name;               /* "PRIMARY" or the index name */
	char kind;                /* 'p', 'u', 'i' */
	int ncols;
	int *cols;                /* indexes into the table's columns */
} my_keyinfo;

typedef struct my_tableinfo {
	char *db, *name;
	char *engine;             /* "InnoDB", "MyISAM", ... (NULL: a view) */
	my_colinfo *cols;
	int ncols;
	my_keyinfo *keys;         /* the primary key first */
	int nkeys;
	bool has_pk;
	int64_t rows, bytes;      /* TABLE_ROWS, DATA_LENGTH; -1 if unknown */
	char *auto_increment;     /* AUTO_INCREMENT counter, or NULL */
} my_tableinfo;

void my_tableinfo_free(my_tableinfo *t);
void my_tableinfos_free(my_tableinfo *t, size_t n);

/* "db.name" matches an include pattern and no exclude pattern. */
bool my_selected(char *const *include, size_t ninclude, char *const *exclude, size_t nexclude,
                 const char *db, const char *name);
/* The base tables the patterns select now, described from information_schema
 * (ordered by db and name), and the tables refused (no primary key, not
 * transactional) in `refused` as "db.t (why)" items. The system databases
 * and penstock's own are never selected. */
int my_catalog_load(MYSQL *conn, char *const *include, size_t ninclude, char *const *exclude,
                    size_t nexclude, my_tableinfo **out, size_t *n, ps_buf *refused,
                    ps_error *err);
/* One table by name (*out NULL when it does not exist). */
int my_catalog_table(MYSQL *conn, const char *db, const char *name, my_tableinfo **out,
                     ps_error *err);
/* The column named name, or NULL. */
const my_colinfo *my_tableinfo_column(const my_tableinfo *t, const char *name);
/* The type class of a column from what information_schema says. */
uint8_t my_class_of_info(const my_colinfo *c);

/* --- transport (my_transport.c) ------------------------------------------ */

typedef struct my_event_node my_event_node;

/*
 * The dump connection. A thread of its own reads packets (a blocking read
 * in Connector/C) and queues the raw events, bounded in bytes, so that
 * read() can wait with a timeout and decoding overlaps the network.
 */
typedef struct my_transport {
	MYSQL *conn;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t more, space;
	my_event_node *head, *tail;
	size_t bytes, limit;
	bool ended;               /* the thread is done: error or EOF */
	int rc;                   /* its error, or PS_OK at EOF */
	ps_error err;
	atomic_int stop;
	char where[300];          /* host:port for messages */
} my_transport;

typedef struct my_dump_request {
	const char *file;         /* "" with a GTID state */
	uint32_t offset;
	const char *gtid;         /* the state to start after, or NULL */
	uint32_t server_id;
	unsigned heartbeat_ms;
} my_dump_request;

/* Takes conn (closed by my_transport_stop, also on failure), sends the
 * dump request and starts the thread. */
int my_transport_start(my_transport *t, MYSQL *conn, const my_dump_request *req, size_t limit,
                       const char *where, ps_error *err);
/* The next event: 1 with *ev (malloc'd, the caller frees) and *len, 0 when
 * none arrived within timeout_ms, < 0 when the connection ended (err). */
int my_transport_next(my_transport *t, uint8_t **ev, size_t *len, int timeout_ms,
                      ps_error *err);
/* The connection's end as an error (the queued events notwithstanding),
 * PS_OK while it lasts: a reader held up by a full queue still learns that
 * the source is gone. */
int my_transport_check(my_transport *t, ps_error *err);
void my_transport_stop(my_transport *t);

/* --- the source ----------------------------------------------------------- */

/* A table shape: one TABLE_MAP definition of a selected table, with the
 * ps_table changes are built with. */
typedef struct my_shape {
	char *db, *name;
	char *sig;                /* one line a column: "name type c<collation>" */
	char *marks;              /* "col:uuid,col:inet6,col:json" (what information_schema
	                             told), "" when none */
	ps_table *table;          /* one reference; NULL for a shape restored from
	                             the checkpoint and not seen since */
	bool is_marks;            /* penstock's marker table */
	bool insert_only;         /* keyless under tables.keyless insert_only */
	struct my_shape *next;
} my_shape;

#define MY_MARKS_DB "penstock"
#define MY_MARKS_TABLE "marks"
#define MY_FENCE_PREFIX "penstock.fence"

struct ps_source {
	/* configuration (owned copies), fixed at open: copy workers read it */
	char *job_name;
	char *url;
	char *password;           /* wiped and freed at close */
	ps_url parsed;
	char **include, **exclude;
	size_t ninclude, nexclude;
	bool want_snapshot;
	uint32_t server_id;       /* as a replica */
	bool zero_dates_null;     /* zero_dates: "null" */
	bool include_query;       /* include_query: the statement in each event */
	int keyless;              /* ps_keyless: tables without a primary key */
	char where[300];          /* host:port */

	/* the reader thread's from here on */
	MYSQL *sql;               /* catalog, markers, positions */
	char server_version[64];
	char server_uuid[64];     /* @@server_uuid-like identity for the checkpoint */
	my_tableinfo *tables;     /* selected by the last prepare/retable */
	size_t ntables;
	my_tableinfo *next_tables;  /* retable's set, in force from its marker on */
	size_t nnext_tables;
	char *next_mark;
	char snap_point[PS_POSITION_MAX]; /* prepare's snapshot point */
	bool snap_exported;

	/* stream */
	my_transport tr;
	bool streaming;
	ps_binlog_fde fde;
	ps_binlog_scratch scratch;
	ps_binlog_tablecache *tcache;
	my_shape *shapes;
	bool shapes_dirty;        /* a shape changed since the last state handed out */
	char file[MY_FILE_MAX];   /* current binlog file */
	uint64_t next_offset;     /* where the next event starts in it */
	my_gtid_state gtid;       /* after the last complete transaction */
	my_pos start_pos;
	char redo_until[PS_POSITION_MAX];
	char server_end[PS_POSITION_MAX]; /* from heartbeats: the server's end */
	/* the current event group */
	bool in_group;
	bool group_delivered;     /* BEGIN handed out */
	bool group_ddl, group_standalone;
	ps_binlog_gtid group_gtid;
	uint64_t group_begin_offset;
	uint32_t group_thread;
	ps_txn txn;
	uint64_t last_commit_ns;  /* monotonic: last COMMIT handed out */
	/* rows being handed out from one event */
	uint8_t *rows_buf;        /* the event (owned) */
	ps_binlog_event rows_ev;
	ps_binlog_rows rows_it;
	my_shape *rows_shape;
	bool rows_active;
	ps_value *vals;           /* 2 x the widest shape's columns */
	size_t nvals;
	my_shape *last_shape;     /* lookup cache: the shape of last_bt */
	const ps_binlog_table *last_bt;
	uint32_t next_table_id;
	bool warned_ddl;
	char *annotate;           /* the last ANNOTATE_ROWS statement (include_query) */
	uint64_t rows_event_pos;  /* where the rows event being handed out starts */
	bool group_xa;
	/* items made ahead of read */
	ps_read_item pending[4];
	int npending, pending_next;
	/* markers: the id written last */
	char last_mark_pos[PS_POSITION_MAX];
};

/* my_source.c */
int my_source_connect(ps_source *src, MYSQL **out, const char *program, unsigned read_timeout,
                      ps_error *err);
/* The binlog's end now ("file:pos/gtid"). */
int my_current_position(ps_source *src, char *buf, size_t len, ps_error *err);
int my_position_compare(const char *a, const char *b);

/* my_stream.c */
int my_stream_start(ps_source *src, const char *position, const char *redo_until,
                    const char *state, ps_error *err);
int my_stream_read(ps_source *src, ps_read_item *item, int timeout_ms, ps_error *err);
int my_stream_ack(ps_source *src, const char *position, ps_error *err);
int my_stream_fence(ps_source *src, char *pos, size_t len, ps_error *err);
void my_stream_stop(ps_source *src);
/* The shapes as engine state (malloc'd JSON text). */
char *my_shapes_state(ps_source *src);

/* my_snapshot.c */
int my_describe(ps_source *src, ps_table_def ***defs, size_t *n, ps_error *err);
int my_describe_infos(const my_tableinfo *infos, size_t n, ps_table_def ***defs,
                      ps_error *err);
/* The same, marking keyless tables insert_only under that policy. */
int my_describe_infos_keyless(const my_tableinfo *infos, size_t n, int keyless,
                              ps_table_def ***defs, ps_error *err);
int my_split(ps_source *src, const ps_table_def *def, int64_t chunk_rows,
             ps_key_bound **bounds, size_t *nbounds, ps_error *err);
int my_snapshot_export(ps_source *src, char *name, size_t name_len, char *point,
                       size_t point_len, ps_error *err);
int my_snapshot_release(ps_source *src, ps_error *err);
int my_copy_open(ps_source *src, const char *snapshot, ps_copier **out, ps_error *err);
int my_copy_point(ps_copier *c, char *point, size_t len);
int my_copy_unit(ps_copier *c, const ps_table_def *def, const ps_copy_range *range,
                 ps_row_fn fn, void *ctx, ps_error *err);
void my_copy_close(ps_copier *c);
/* SELECT <columns> FROM <table> [WHERE key > after | range] ORDER BY key
 * [LIMIT n], and the rows made canonical (chunk_read and copy_unit). */
int my_select_rows(MYSQL *conn, const ps_table_def *def, const ps_copy_range *range,
                   const ps_key_bound *after, int limit, bool zero_dates_null, ps_row_fn fn,
                   void *ctx, int *nrows, ps_error *err);

/* A canonical value of type class cls as a literal MariaDB compares with
 * such a column (numbers bare, bytes X'..', TIMESTAMP without "+00", the
 * rest quoted). PS_EINVAL when the text is not of its class. */
int my_put_literal(MYSQL *conn, ps_buf *b, int cls, const char *text);

/* my_values.c */
/* The SELECT expression of column i of def that my_value_canon turns into
 * canonical text. */
int my_select_expr(ps_buf *b, const ps_table_def *def, int i);
/* Makes the text MariaDB returned for that expression canonical into out. */
int my_value_canon(const ps_table_def *def, int i, const char *text, unsigned long len,
                   ps_buf *out, bool *is_null, bool zero_dates_null, ps_error *err);

/* my_precheck.c */
int my_precheck(const ps_source_config *cfg, ps_check_report *report, ps_check_tables *tables,
                ps_error *err);
extern const char *const my_check_ids[];

/* my_live.c */
int my_marks_ensure(ps_source *src, ps_error *err);
/* Writes a marker row in its own transaction; pos: a position every
 * transaction committed before is <= and the marker's is >. */
int my_write_marker(ps_source *src, const char *prefix, const char *content, char *pos,
                    size_t len, ps_error *err);
int my_retable(ps_source *src, const char *const *include, size_t ninclude,
               const char *const *exclude, size_t nexclude, bool with_key, const char *mark,
               ps_retable_result *res, ps_error *err);
int my_mark(ps_source *src, const char *content, char *pos, size_t len, ps_error *err);
int my_chunk_read(ps_source *src, const ps_table_def *def, const ps_key_bound *after,
                  int max_rows, ps_row_fn fn, void *ctx, int *nrows, ps_error *err);
int my_sequences(ps_source *src, ps_sequence **seqs, size_t *n, ps_error *err);

#endif
