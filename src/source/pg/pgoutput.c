/*
 * pgoutput.c — decoder of pgoutput protocol version 1 messages (see
 * pgoutput.h), plus the relation cache the decoder keeps between messages.
 *
 * NOTES ON THE DESIGN
 *
 * 1. One message in, one pgo_msg out. pgo_decode reads the payload of one
 *    XLogData message through a `reader` that knows the buffer's length; every
 *    read checks the bytes left first, so nothing ever reads past len. All
 *    integers are big-endian and are assembled byte by byte (no unaligned
 *    loads, no host byte order).
 *
 * 2. Errors name the message and the byte. Every failure is PS_EPROTO (or
 *    PS_ENOMEM) with "pgoutput <Type> message: <what> at byte <offset>"; for a
 *    short message the offset is where the incomplete field starts and "need
 *    N more" is how many bytes are missing. Names taken from the wire are cut
 *    to 64 bytes and stripped of control bytes before they are quoted.
 *
 * 3. All or nothing. Decoders build into *out as they go; on any error
 *    pgo_decode frees whatever *out holds and zeroes it, so the caller never
 *    has anything to free after a failure. The only side effect outside *out
 *    is a Relation message replacing a cache entry, and that happens last,
 *    after the whole message (trailing bytes included) has been checked.
 *
 * 4. Text values are not copied by the decoder: a PS_VALUE_TEXT points into
 *    the input buffer until ps_change_new copies it into the change's single
 *    allocation. The value arrays are scratch and freed before returning.
 *
 * 5. Relation cache: an open-addressing hash table (linear probing, power of
 *    two capacity, load kept under 3/4) from relation OID to ps_table. A slot
 *    with table == NULL is empty; entries are only ever replaced, never
 *    removed, so no tombstones are needed. The cache holds one reference per
 *    entry; a replaced table lives on as long as changes decoded with it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pgoutput.h"
#include "util/str.h"

/* Smallest encoding of one column in a Relation message:
 * flags (1) + name NUL (1) + type OID (4) + type modifier (4). */
#define REL_COLUMN_MIN_BYTES 10

/* Room for a wire-supplied name quoted in an error message, NUL included. */
#define NAME_IN_ERROR_MAX 65

/* --- relation cache ------------------------------------------------------- */

typedef struct relcache_slot {
	uint32_t relid;
	ps_table *table;         /* NULL when the slot is empty */
} relcache_slot;

struct pgo_relcache {
	relcache_slot *slots;
	size_t cap;              /* power of two, or 0 before the first insert */
	size_t count;            /* occupied slots */
};

static size_t relid_hash(uint32_t relid)
{
	uint32_t h = relid * 2654435761u;    /* Knuth's multiplicative hash */

	return (size_t)(h ^ (h >> 16));
}

static relcache_slot *relcache_find(relcache_slot *slots, size_t cap, uint32_t relid)
{
	size_t mask = cap - 1;
	size_t i = relid_hash(relid) & mask;

	while (slots[i].table && slots[i].relid != relid)
		i = (i + 1) & mask;
	return &slots[i];
}

static int relcache_grow(pgo_relcache *cache)
{
	size_t cap = cache->cap ? cache->cap * 2 : 64;
	relcache_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return PS_ENOMEM;
	for (size_t i = 0; i < cache->cap; i++) {
		relcache_slot *old = &cache->slots[i];

		if (old->table)
			*relcache_find(slots, cap, old->relid) = *old;
	}
	free(cache->slots);
	cache->slots = slots;
	cache->cap = cap;
	return PS_OK;
}

/* Takes over the caller's reference to table, also on failure. */
static int relcache_put(pgo_relcache *cache, ps_table *table)
{
	relcache_slot *slot;

	if ((cache->count + 1) * 4 > cache->cap * 3 && relcache_grow(cache) < 0) {
		ps_table_unref(table);
		return PS_ENOMEM;
	}
	slot = relcache_find(cache->slots, cache->cap, table->id);
	if (slot->table)
		ps_table_unref(slot->table);
	else
		cache->count++;
	slot->relid = table->id;
	slot->table = table;
	return PS_OK;
}

pgo_relcache *pgo_relcache_new(void)
{
	return calloc(1, sizeof(pgo_relcache));
}

void pgo_relcache_free(pgo_relcache *cache)
{
	if (!cache)
		return;
	for (size_t i = 0; i < cache->cap; i++)
		ps_table_unref(cache->slots[i].table);
	free(cache->slots);
	free(cache);
}

ps_table *pgo_relcache_get(pgo_relcache *cache, uint32_t relid)
{
	if (!cache || cache->cap == 0)
		return NULL;
	return relcache_find(cache->slots, cache->cap, relid)->table;
}

/* --- reader --------------------------------------------------------------- */

typedef struct reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;              /* next byte to read; never more than len */
	const char *what;        /* message name for errors, e.g. "Update" */
	ps_error *err;
} reader;

static int rd_fail(reader *r, const char *fmt, ...) PS_PRINTF(2, 3);

static int rd_fail(reader *r, const char *fmt, ...)
{
	char detail[PS_ERROR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return ps_error_set(r->err, PS_EPROTO, "pgoutput %s message: %s", r->what, detail);
}

static int rd_need(reader *r, size_t n)
{
	size_t left = r->len - r->pos;

	if (n <= left)
		return PS_OK;
	return rd_fail(r, "truncated at byte %zu (need %zu more)", r->pos, n - left);
}

static uint64_t rd_be(reader *r, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | r->buf[r->pos + i];
	r->pos += n;
	return v;
}

static int rd_u8(reader *r, uint8_t *v)
{
	int rc = rd_need(r, 1);

	if (rc == 0)
		*v = (uint8_t)rd_be(r, 1);
	return rc;
}

static int rd_i16(reader *r, int16_t *v)
{
	int rc = rd_need(r, 2);
	uint16_t u;

	if (rc == 0) {
		u = (uint16_t)rd_be(r, 2);
		*v = u <= INT16_MAX ? (int16_t)u : (int16_t)(-(int32_t)(UINT16_MAX - u) - 1);
	}
	return rc;
}

static int rd_u32(reader *r, uint32_t *v)
{
	int rc = rd_need(r, 4);

	if (rc == 0)
		*v = (uint32_t)rd_be(r, 4);
	return rc;
}

static int rd_i32(reader *r, int32_t *v)
{
	uint32_t u;
	int rc = rd_u32(r, &u);

	if (rc == 0)
		*v = u <= INT32_MAX ? (int32_t)u : -(int32_t)(UINT32_MAX - u) - 1;
	return rc;
}

static int rd_u64(reader *r, uint64_t *v)
{
	int rc = rd_need(r, 8);

	if (rc == 0)
		*v = rd_be(r, 8);
	return rc;
}

static int rd_i64(reader *r, int64_t *v)
{
	uint64_t u;
	int rc = rd_u64(r, &u);

	if (rc == 0)
		*v = u <= INT64_MAX ? (int64_t)u : -(int64_t)(UINT64_MAX - u) - 1;
	return rc;
}

/* A NUL-terminated string; *s points into the buffer. */
static int rd_str(reader *r, const char **s)
{
	const uint8_t *start = r->buf + r->pos;
	const uint8_t *nul = memchr(start, '\0', r->len - r->pos);

	if (!nul)
		return rd_fail(r, "string at byte %zu has no terminating NUL", r->pos);
	*s = (const char *)start;
	r->pos += (size_t)(nul - start) + 1;
	return PS_OK;
}

/* n raw bytes; *p points into the buffer. */
static int rd_bytes(reader *r, size_t n, const uint8_t **p)
{
	int rc = rd_need(r, n);

	if (rc == 0) {
		*p = r->buf + r->pos;
		r->pos += n;
	}
	return rc;
}

/* A length field that announces `count` items of `size` bytes each. */
static int rd_need_items(reader *r, size_t count, size_t size)
{
	size_t left = r->len - r->pos;

	if (count <= left / size)
		return PS_OK;
	return rd_fail(r, "truncated at byte %zu (need %zu more)", r->pos, count * size - left);
}

static int rd_end(reader *r)
{
	if (r->pos == r->len)
		return PS_OK;
	return rd_fail(r, "%zu trailing bytes at byte %zu", r->len - r->pos, r->pos);
}

/* --- small helpers -------------------------------------------------------- */

static int pg_time_to_unix(reader *r, int64_t pg_us, int64_t *unix_us)
{
	if (pg_us > INT64_MAX - PGO_EPOCH_OFFSET_US)
		return rd_fail(r, "timestamp %" PRId64 " out of range", pg_us);
	*unix_us = pg_us + PGO_EPOCH_OFFSET_US;
	return PS_OK;
}

static const char *schema_name(const char *nspname)
{
	return nspname[0] ? nspname : "pg_catalog";
}

/* A name from the wire as it may appear in an error: control bytes (a
 * newline would break the one-line message) become '?', and it is cut to
 * NAME_IN_ERROR_MAX - 1 bytes. */
static void printable_name(const char *in, char out[NAME_IN_ERROR_MAX])
{
	size_t i = 0;

	for (; in[i] && i < NAME_IN_ERROR_MAX - 1; i++) {
		unsigned char ch = (unsigned char)in[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	out[i] = '\0';
}

/* Makes c the message's only change; takes ownership of c, also on failure. */
static int set_single_change(reader *r, pgo_msg *out, ps_change *c)
{
	if (!c)
		return ps_error_set(r->err, PS_ENOMEM, "pgoutput %s message: out of memory", r->what);
	out->changes = malloc(sizeof(*out->changes));
	if (!out->changes) {
		ps_change_free(c);
		return ps_error_set(r->err, PS_ENOMEM, "pgoutput %s message: out of memory", r->what);
	}
	out->changes[0] = c;
	out->nchanges = 1;
	return PS_OK;
}

/* --- transaction framing: Begin, Commit, Origin, Type --------------------- */

static int decode_begin(reader *r, pgo_msg *out)
{
	int64_t ts = 0;
	int rc = rd_u64(r, &out->final_lsn);

	if (rc == 0)
		rc = rd_i64(r, &ts);
	if (rc == 0)
		rc = rd_u32(r, &out->xid);
	if (rc == 0)
		rc = pg_time_to_unix(r, ts, &out->commit_time_us);
	return rc;
}

static int decode_commit(reader *r, pgo_msg *out)
{
	int64_t ts = 0;
	int rc = rd_u8(r, &out->commit_flags);

	if (rc == 0)
		rc = rd_u64(r, &out->commit_lsn);
	if (rc == 0)
		rc = rd_u64(r, &out->end_lsn);
	if (rc == 0)
		rc = rd_i64(r, &ts);
	if (rc == 0)
		rc = pg_time_to_unix(r, ts, &out->commit_time_us);
	return rc;
}

static int decode_origin(reader *r, pgo_msg *out)
{
	const char *name = NULL;
	int rc = rd_u64(r, &out->origin_lsn);

	if (rc == 0)
		rc = rd_str(r, &name);
	if (rc == 0)
		snprintf(out->origin_name, sizeof(out->origin_name), "%s", name);
	return rc;
}

static int decode_type(reader *r, pgo_msg *out)
{
	const char *nspname = NULL, *typname = NULL;
	int rc = rd_u32(r, &out->type_id);

	if (rc == 0)
		rc = rd_str(r, &nspname);
	if (rc == 0)
		rc = rd_str(r, &typname);
	if (rc == 0) {
		snprintf(out->type_schema, sizeof(out->type_schema), "%s", schema_name(nspname));
		snprintf(out->type_name, sizeof(out->type_name), "%s", typname);
	}
	return rc;
}

/* --- Relation ------------------------------------------------------------- */

static int read_columns(reader *r, ps_table *t)
{
	for (int i = 0; i < t->ncolumns; i++) {
		uint8_t flags = 0;
		const char *name = NULL;
		uint32_t type_id = 0;
		int32_t type_mod = 0;
		int rc = rd_u8(r, &flags);

		if (rc == 0)
			rc = rd_str(r, &name);
		if (rc == 0)
			rc = rd_u32(r, &type_id);
		if (rc == 0)
			rc = rd_i32(r, &type_mod);
		if (rc == 0 && ps_table_set_column(t, i, name, type_id, type_mod,
		                                   pgo_type_class(type_id), (flags & 1) != 0) < 0)
			rc = ps_error_set(r->err, PS_ENOMEM, "pgoutput Relation message: out of memory");
		if (rc < 0)
			return rc;
	}
	return PS_OK;
}

static int decode_relation(reader *r, pgo_msg *out, pgo_relcache *cache)
{
	uint32_t relid = 0;
	const char *nspname = NULL, *relname = NULL;
	uint8_t ident = 0;
	int16_t ncols = 0;
	size_t at = 0;
	ps_table *t = NULL;
	int rc;

	rc = rd_u32(r, &relid);
	if (rc == 0)
		rc = rd_str(r, &nspname);
	if (rc == 0)
		rc = rd_str(r, &relname);
	if (rc == 0) {
		at = r->pos;
		rc = rd_u8(r, &ident);
	}
	if (rc == 0 && ident != 'd' && ident != 'n' && ident != 'f' && ident != 'i')
		rc = rd_fail(r, "unknown replica identity 0x%02x at byte %zu", ident, at);
	if (rc == 0) {
		at = r->pos;
		rc = rd_i16(r, &ncols);
	}
	if (rc == 0 && ncols < 0)
		rc = rd_fail(r, "negative column count %d at byte %zu", ncols, at);
	if (rc == 0)
		rc = rd_need_items(r, (size_t)ncols, REL_COLUMN_MIN_BYTES);
	if (rc < 0)
		goto cleanup;

	t = ps_table_new(relid, ncols);
	if (!t || ps_table_set_names(t, schema_name(nspname), relname) < 0) {
		rc = ps_error_set(r->err, PS_ENOMEM, "pgoutput Relation message: out of memory");
		goto cleanup;
	}
	t->engine = "postgresql";
	t->replica_identity = (char)ident;
	rc = read_columns(r, t);
	if (rc == 0)
		rc = rd_end(r);
	if (rc < 0)
		goto cleanup;

	/* The cache takes our reference; out->relation borrows it. */
	out->relation = t;
	rc = relcache_put(cache, t);
	t = NULL;
	if (rc < 0) {
		out->relation = NULL;
		rc = ps_error_set(r->err, rc, "pgoutput Relation message: out of memory");
	}

cleanup:
	ps_table_unref(t);
	return rc;
}

/* --- Insert, Update, Delete ----------------------------------------------- */

static int read_value(reader *r, ps_value *v)
{
	size_t at = r->pos;
	uint8_t kind = 0;
	int32_t len = 0;
	const uint8_t *data = NULL;
	int rc = rd_u8(r, &kind);

	if (rc < 0)
		return rc;
	switch (kind) {
	case 'n':
		v->kind = PS_VALUE_NULL;
		return PS_OK;
	case 'u':
		v->kind = PS_VALUE_UNCHANGED;
		return PS_OK;
	case 't':
		at = r->pos;
		rc = rd_i32(r, &len);
		if (rc == 0 && len < 0)
			rc = rd_fail(r, "negative value length %" PRId32 " at byte %zu", len, at);
		if (rc == 0)
			rc = rd_bytes(r, (size_t)len, &data);
		if (rc == 0) {
			v->kind = PS_VALUE_TEXT;
			v->len = (uint32_t)len;
			v->data = (const char *)data;
		}
		return rc;
	case 'b':
		return rd_fail(r, "binary tuple data not requested, at byte %zu", at);
	default:
		return rd_fail(r, "unknown tuple data kind 0x%02x at byte %zu", kind, at);
	}
}

/* TupleData into vals (table->ncolumns entries). */
static int read_tuple(reader *r, const ps_table *t, ps_value *vals)
{
	size_t at = r->pos;
	int16_t ncols = 0;
	int rc = rd_i16(r, &ncols);

	if (rc < 0)
		return rc;
	if (ncols < 0)
		return rd_fail(r, "negative column count %d at byte %zu", ncols, at);
	if (ncols != t->ncolumns) {
		char schema[NAME_IN_ERROR_MAX], name[NAME_IN_ERROR_MAX];

		printable_name(t->schema, schema);
		printable_name(t->name, name);
		return rd_fail(r, "tuple has %d columns but relation %s.%s (OID %" PRIu32
		               ") has %d, at byte %zu", ncols, schema, name, t->id,
		               t->ncolumns, at);
	}
	for (int i = 0; i < ncols; i++) {
		rc = read_value(r, &vals[i]);
		if (rc < 0)
			return rc;
	}
	return PS_OK;
}

/* Allocates a value array for t (never NULL on success, even for 0 columns)
 * and reads a tuple into it. */
static int read_tuple_alloc(reader *r, const ps_table *t, ps_value **vals)
{
	size_t n = t->ncolumns > 0 ? (size_t)t->ncolumns : 1;

	*vals = calloc(n, sizeof(ps_value));
	if (!*vals)
		return ps_error_set(r->err, PS_ENOMEM, "pgoutput %s message: out of memory", r->what);
	return read_tuple(r, t, *vals);
}

static int expect_marker(reader *r, uint8_t marker, size_t at, const char *expected)
{
	return rd_fail(r, "unexpected tuple marker 0x%02x at byte %zu (expected %s)",
	               marker, at, expected);
}

static int decode_row(reader *r, pgo_msg *out, pgo_relcache *cache, uint64_t wal_start)
{
	char kind = (char)r->buf[0];
	uint8_t op = kind == 'I' ? PS_OP_INSERT : kind == 'U' ? PS_OP_UPDATE : PS_OP_DELETE;
	ps_value *new_vals = NULL, *old_vals = NULL;
	bool old_is_key = false;
	uint32_t relid = 0;
	uint8_t marker = 0;
	size_t at;
	ps_table *t;
	int rc;

	rc = rd_u32(r, &relid);
	if (rc < 0)
		goto cleanup;
	t = pgo_relcache_get(cache, relid);
	if (!t) {
		rc = rd_fail(r, "relation OID %" PRIu32 " not described by a Relation message", relid);
		goto cleanup;
	}
	at = r->pos;
	rc = rd_u8(r, &marker);
	if (rc == 0 && kind != 'I' && (marker == 'K' || marker == 'O')) {
		old_is_key = marker == 'K';
		rc = read_tuple_alloc(r, t, &old_vals);
		if (rc == 0 && kind == 'U') {
			at = r->pos;
			rc = rd_u8(r, &marker);
		}
	}
	if (rc < 0)
		goto cleanup;
	if (kind == 'D') {
		if (!old_vals)
			rc = expect_marker(r, marker, at, "'K' or 'O'");
	} else if (marker != 'N') {
		rc = expect_marker(r, marker, at, kind == 'U' && !old_vals ? "'K', 'O' or 'N'" : "'N'");
	} else {
		rc = read_tuple_alloc(r, t, &new_vals);
	}
	if (rc == 0)
		rc = rd_end(r);
	if (rc == 0)
		rc = set_single_change(r, out, ps_change_new(op, t, new_vals, old_vals,
		                                             old_is_key, wal_start));

cleanup:
	free(new_vals);
	free(old_vals);
	return rc;
}

/* --- Truncate, Message ---------------------------------------------------- */

static int decode_truncate(reader *r, pgo_msg *out, pgo_relcache *cache, uint64_t wal_start)
{
	size_t at = r->pos;
	int32_t nrels = 0;
	uint8_t options = 0;
	int rc = rd_i32(r, &nrels);

	if (rc == 0 && nrels < 0)
		rc = rd_fail(r, "negative relation count %" PRId32 " at byte %zu", nrels, at);
	if (rc == 0)
		rc = rd_u8(r, &options);
	if (rc == 0)
		rc = rd_need_items(r, (size_t)nrels, 4);
	if (rc < 0)
		return rc;
	out->changes = calloc(nrels > 0 ? (size_t)nrels : 1, sizeof(*out->changes));
	if (!out->changes)
		return ps_error_set(r->err, PS_ENOMEM, "pgoutput Truncate message: out of memory");
	for (int32_t i = 0; i < nrels; i++) {
		uint32_t relid = 0;
		ps_table *t;
		ps_change *c;

		rc = rd_u32(r, &relid);
		if (rc < 0)
			return rc;
		t = pgo_relcache_get(cache, relid);
		if (!t)
			return rd_fail(r, "relation OID %" PRIu32
			               " not described by a Relation message", relid);
		c = ps_change_new(PS_OP_TRUNCATE, t, NULL, NULL, false, wal_start);
		if (!c)
			return ps_error_set(r->err, PS_ENOMEM, "pgoutput Truncate message: out of memory");
		c->truncate_flags = options;
		out->changes[out->nchanges++] = c;
	}
	return PS_OK;
}

static int decode_message(reader *r, pgo_msg *out)
{
	uint8_t flags = 0;
	uint64_t lsn = 0;
	const char *prefix = NULL;
	int32_t len = 0;
	const uint8_t *content = NULL;
	size_t at = 0;
	int rc = rd_u8(r, &flags);

	if (rc == 0)
		rc = rd_u64(r, &lsn);
	if (rc == 0)
		rc = rd_str(r, &prefix);
	if (rc == 0) {
		at = r->pos;
		rc = rd_i32(r, &len);
	}
	if (rc == 0 && len < 0)
		rc = rd_fail(r, "negative content length %" PRId32 " at byte %zu", len, at);
	if (rc == 0)
		rc = rd_bytes(r, (size_t)len, &content);
	if (rc == 0)
		rc = rd_end(r);
	if (rc == 0)
		rc = set_single_change(r, out, ps_change_new_message((flags & 1) != 0, prefix,
		                                                     (const char *)content,
		                                                     (uint32_t)len, lsn));
	return rc;
}

/* --- entry points --------------------------------------------------------- */

static const char *message_name(uint8_t type)
{
	switch (type) {
	case PGO_BEGIN: return "Begin";
	case PGO_COMMIT: return "Commit";
	case PGO_ORIGIN: return "Origin";
	case PGO_RELATION: return "Relation";
	case PGO_TYPE: return "Type";
	case PGO_INSERT: return "Insert";
	case PGO_UPDATE: return "Update";
	case PGO_DELETE: return "Delete";
	case PGO_TRUNCATE: return "Truncate";
	case PGO_MESSAGE: return "Message";
	default: return NULL;
	}
}

static int decode_body(reader *r, pgo_msg *out, pgo_relcache *cache, uint64_t wal_start)
{
	switch (r->buf[0]) {
	case PGO_BEGIN: return decode_begin(r, out);
	case PGO_COMMIT: return decode_commit(r, out);
	case PGO_ORIGIN: return decode_origin(r, out);
	case PGO_RELATION: return decode_relation(r, out, cache);
	case PGO_TYPE: return decode_type(r, out);
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE: return decode_row(r, out, cache, wal_start);
	case PGO_TRUNCATE: return decode_truncate(r, out, cache, wal_start);
	case PGO_MESSAGE: return decode_message(r, out);
	default: return PS_EPROTO;   /* not reached: pgo_decode checks the type */
	}
}

int pgo_decode(pgo_msg *out, pgo_relcache *cache, const uint8_t *buf, size_t len,
               uint64_t wal_start, ps_error *err)
{
	reader r;
	int rc;

	if (!out || !cache || (!buf && len))
		return ps_error_set(err, PS_EINVAL, "pgo_decode: NULL argument");
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return ps_error_set(err, PS_EPROTO, "pgoutput message: empty at byte 0");
	if (!message_name(buf[0]))
		return ps_error_set(err, PS_EPROTO,
		                    "pgoutput message: unknown message type 0x%02x at byte 0", buf[0]);
	r.buf = buf;
	r.len = len;
	r.pos = 1;
	r.what = message_name(buf[0]);
	r.err = err;
	out->kind = buf[0];
	rc = decode_body(&r, out, cache, wal_start);
	if (rc == 0)
		rc = rd_end(&r);
	if (rc < 0)
		pgo_msg_clear(out);
	return rc;
}

void pgo_msg_clear(pgo_msg *msg)
{
	if (!msg)
		return;
	for (size_t i = 0; msg->changes && i < msg->nchanges; i++)
		ps_change_free(msg->changes[i]);
	free(msg->changes);
	memset(msg, 0, sizeof(*msg));
}

uint8_t pgo_type_class(uint32_t type_id)
{
	switch (type_id) {
	case 16: return PS_TYPE_BOOL;                 /* bool */
	case 20:                                      /* int8 */
	case 21:                                      /* int2 */
	case 23:                                      /* int4 */
	case 26: return PS_TYPE_INTEGER;              /* oid */
	case 700:                                     /* float4 */
	case 701: return PS_TYPE_FLOAT;               /* float8 */
	case 1700: return PS_TYPE_NUMERIC;            /* numeric */
	case 114:                                     /* json */
	case 3802: return PS_TYPE_JSON;               /* jsonb */
	case 17: return PS_TYPE_BYTES;                /* bytea */
	case 1082: return PS_TYPE_DATE;               /* date */
	case 1083: return PS_TYPE_TIME;               /* time */
	case 1114: return PS_TYPE_TIMESTAMP;          /* timestamp */
	case 1184: return PS_TYPE_TIMESTAMPTZ;        /* timestamptz */
	case 2950: return PS_TYPE_UUID;               /* uuid */
	default: return PS_TYPE_TEXT;
	}
}

/* --- LSN text form -------------------------------------------------------- */

void pgo_lsn_format(uint64_t lsn, char *buf, size_t len)
{
	if (!buf || len == 0)
		return;
	snprintf(buf, len, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

/* 1..8 hex digits ending at `stop`; *end is left after them. */
static int parse_hex32(const char *s, char stop, uint32_t *v, const char **end)
{
	uint32_t acc = 0;
	int n = 0;

	for (; *s != stop; s++, n++) {
		int d = ps_hex_value(*s);

		if (d < 0 || n == 8)
			return PS_EINVAL;
		acc = (acc << 4) | (uint32_t)d;
	}
	if (n == 0)
		return PS_EINVAL;
	*v = acc;
	*end = s;
	return PS_OK;
}

int pgo_lsn_parse(const char *text, uint64_t *out)
{
	uint32_t hi = 0, lo = 0;
	const char *p = NULL;

	if (!text || !out)
		return PS_EINVAL;
	if (parse_hex32(text, '/', &hi, &p) < 0)
		return PS_EINVAL;
	if (parse_hex32(p + 1, '\0', &lo, &p) < 0)
		return PS_EINVAL;
	*out = ((uint64_t)hi << 32) | lo;
	return PS_OK;
}
