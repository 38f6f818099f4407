/*
 * pgoutput.h — decoder of PostgreSQL's pgoutput logical replication messages
 * (protocol version 1), independent of any connection.
 *
 * Input: the payload of one XLogData ('w') message, i.e. one pgoutput
 * message starting with its type byte, plus the WAL position from the 'w'
 * header. Output: a pgo_msg. The decoder never reads past len; a truncated
 * or corrupt message returns PS_EPROTO with a message naming the message type
 * and the offset, never crashes.
 *
 * Relation cache: Relation ('R') messages define relation id -> ps_table
 * (names, columns, key flags, type classes). A later Relation message for
 * the same id replaces the entry, so a column added on the source shows up in
 * the changes decoded after it; changes decoded before keep their own table
 * reference. A change for an id that is not in the cache is PS_EPROTO.
 */
#ifndef PS_SOURCE_PG_PGOUTPUT_H
#define PS_SOURCE_PG_PGOUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "penstock/change.h"
#include "penstock/error.h"

/* Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01). */
#define PGO_EPOCH_OFFSET_US 946684800000000LL

typedef struct pgo_relcache pgo_relcache;

pgo_relcache *pgo_relcache_new(void);
void pgo_relcache_free(pgo_relcache *cache);
/* Borrowed pointer (the cache keeps its reference), or NULL. */
ps_table *pgo_relcache_get(pgo_relcache *cache, uint32_t relid);

typedef enum pgo_kind {
	PGO_BEGIN = 'B',
	PGO_COMMIT = 'C',
	PGO_ORIGIN = 'O',
	PGO_RELATION = 'R',
	PGO_TYPE = 'Y',
	PGO_INSERT = 'I',
	PGO_UPDATE = 'U',
	PGO_DELETE = 'D',
	PGO_TRUNCATE = 'T',
	PGO_MESSAGE = 'M'
} pgo_kind;

typedef struct pgo_msg {
	int kind;                          /* pgo_kind */
	/* BEGIN */
	uint64_t final_lsn;                /* LSN of the commit record */
	int64_t commit_time_us;            /* BEGIN and COMMIT: Unix epoch microseconds */
	uint32_t xid;
	/* COMMIT */
	uint8_t commit_flags;
	uint64_t commit_lsn;
	uint64_t end_lsn;                  /* the position we checkpoint */
	/* ORIGIN */
	uint64_t origin_lsn;
	char origin_name[64];              /* truncated if longer */
	/* TYPE */
	uint32_t type_id;
	char type_schema[64];
	char type_name[64];
	/* RELATION: borrowed from the cache after decoding */
	ps_table *relation;
	/* INSERT / UPDATE / DELETE: 1 change; TRUNCATE: one per relation;
	 * MESSAGE: 1 change with op PS_OP_MESSAGE. Owned by the msg until the
	 * caller takes them (set the slot to NULL) or pgo_msg_clear frees them. */
	ps_change **changes;
	size_t nchanges;
} pgo_msg;

/*
 * Decodes one message. wal_start is the 'w' header's dataStart, stored as the
 * change's lsn. On success *out is filled (zeroed first); on error *out holds
 * nothing to free.
 */
int pgo_decode(pgo_msg *out, pgo_relcache *cache, const uint8_t *buf, size_t len,
               uint64_t wal_start, ps_error *err);
void pgo_msg_clear(pgo_msg *msg);

/* Maps a built-in type OID to its ps_type_class (PS_TYPE_TEXT for others). */
uint8_t pgo_type_class(uint32_t type_id);

/* "X/Y" form of an LSN, and back. parse returns PS_EINVAL on bad text. */
void pgo_lsn_format(uint64_t lsn, char *buf, size_t len);
int pgo_lsn_parse(const char *text, uint64_t *out);

#endif
