/*
 * binlog_event.c — framing of binlog events (see binlog.h): the common
 * header, the format description, CRC32 checks, MariaDB's compressed blocks,
 * and the fields of every event that is not a table map or rows.
 *
 * NOTES ON THE DESIGN
 *
 * 1. One event in, one ps_binlog_event out, nothing kept. The only state a
 *    reader carries between events is the format description (ps_binlog_fde),
 *    which the caller holds and replaces when a FORMAT_DESCRIPTION event
 *    arrives; the table map cache is a separate, optional layer.
 *
 * 2. Lengths are checked in this order: the buffer holds the whole event
 *    (event_len == len); the event is long enough for the header the FDE
 *    announces and for its checksum; the checksum matches; then each field is
 *    read through a bl_reader over the body (checksum excluded), so a field
 *    can never run into the checksum or past the end. Offsets in messages are
 *    bytes from the start of the event.
 *
 * 3. Post-header lengths come from the FDE when it lists the type, from
 *    MariaDB 10.x's values otherwise. Only the lengths a decoder depends on
 *    are trusted (query, rotate, table map, rows); an unexpected one is
 *    PS_EPROTO rather than a guess.
 *
 * 4. Event kinds: a reader acts on GTID/QUERY/XID (transaction framing),
 *    TABLE_MAP and ROWS (data), ROTATE/FDE/GTID_LIST/HEARTBEAT (position);
 *    INCIDENT means the server lost events. Every other known or unknown type
 *    is PS_BINLOG_EV_OTHER and may be skipped, except the formats that
 *    change the meaning of what follows and that we cannot decode yet
 *    (MySQL GTID and payload events, encryption): those are PS_EPROTO "not
 *    supported yet", never silently skipped.
 *
 * 5. Compressed blocks (MariaDB log_bin_compress): one header byte 0x80 | L
 *    (algorithm 0 = zlib in bits 4-6), L = 1..4 bytes of uncompressed length,
 *    big-endian, then a zlib stream. The declared length is capped by the
 *    scratch's inflate limit and by zlib's best ratio (1032:1) over the
 *    compressed bytes, so a forged length cannot make us allocate much more
 *    than the event is long.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "source/mysql/binlog_internal.h"

#define FDE_FIXED_LEN 57          /* binlog version 2 + server version 50 + created 4 + header len 1 */
#define FDE_SERVER_VERSION_LEN 50
#define QUERY_POST_HEADER_MIN 13
#define GTID_LIST_ENTRY_LEN 16
#define ZLIB_MAX_RATIO 1032u      /* deflate cannot do better than ~1032:1 */

/* --- reader helpers ------------------------------------------------------------ */

void ps__bl_where(const bl_reader *r, size_t pos, char *buf, size_t len)
{
	if (r->inflated)
		snprintf(buf, len, "byte %zu of the inflated data", pos);
	else
		snprintf(buf, len, "byte %zu", r->base + pos);
}

static int bl_vfail(const bl_reader *r, int code, const char *field, const char *fmt,
                    va_list ap)
{
	char detail[PS_ERROR_MESSAGE_MAX / 2];

	vsnprintf(detail, sizeof(detail), fmt, ap);
	return ps_error_set(r->err, code, "binlog %s event: %s: %s", r->what, field, detail);
}

int ps__bl_fail(const bl_reader *r, const char *field, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = bl_vfail(r, PS_EPROTO, field, fmt, ap);
	va_end(ap);
	return rc;
}

int ps__bl_fail_code(const bl_reader *r, int code, const char *field, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = bl_vfail(r, code, field, fmt, ap);
	va_end(ap);
	return rc;
}

int ps__bl_truncated(const bl_reader *r, const char *field, size_t n)
{
	char where[64];

	ps__bl_where(r, r->pos, where, sizeof(where));
	return ps__bl_fail(r, field, "truncated at %s (need %zu more)", where, n - (r->len - r->pos));
}

int ps__bl_packed(bl_reader *r, uint64_t *v, const char *field)
{
	uint8_t first = 0;
	size_t start = r->pos;
	int rc = bl_u8(r, &first, field);

	if (rc != PS_OK)
		return rc;
	if (first < 251) {
		*v = first;
		return PS_OK;
	}
	if (first == 252)
		return bl_uint(r, 2, v, field);
	if (first == 253)
		return bl_uint(r, 3, v, field);
	if (first == 254)
		return bl_uint(r, 8, v, field);
	{
		char where[64];

		ps__bl_where(r, start, where, sizeof(where));
		return ps__bl_fail(r, field, "bad length-encoded integer (first byte %u) at %s",
		                   first, where);
	}
}

int ps__bl_packed_max(bl_reader *r, uint64_t max, uint64_t *v, const char *field)
{
	size_t start = r->pos;
	int rc = ps__bl_packed(r, v, field);
	char where[64];

	if (rc != PS_OK || *v <= max)
		return rc;
	ps__bl_where(r, start, where, sizeof(where));
	return ps__bl_fail(r, field, "%" PRIu64 " at %s is more than the %" PRIu64 " possible",
	                   *v, where, max);
}

int ps__bl_packed_len(bl_reader *r, uint64_t *v, const char *field)
{
	size_t start = r->pos;
	int rc = ps__bl_packed(r, v, field);
	char where[64];

	if (rc != PS_OK || *v <= bl_left(r))
		return rc;
	ps__bl_where(r, start, where, sizeof(where));
	return ps__bl_fail(r, field, "length %" PRIu64 " at %s runs past the end (%zu bytes left)",
	                   *v, where, bl_left(r));
}

/* --- names ---------------------------------------------------------------------- */

const char *ps_binlog_type_name(uint8_t type)
{
	switch (type) {
	case PS_BINLOG_START_V3: return "Start_v3";
	case PS_BINLOG_QUERY: return "Query";
	case PS_BINLOG_STOP: return "Stop";
	case PS_BINLOG_ROTATE: return "Rotate";
	case PS_BINLOG_INTVAR: return "Intvar";
	case 6: return "Load";
	case 8: return "Create_file";
	case 9: return "Append_block";
	case 10: return "Exec_load";
	case 11: return "Delete_file";
	case 12: return "New_load";
	case PS_BINLOG_RAND: return "RAND";
	case PS_BINLOG_USER_VAR: return "User_var";
	case PS_BINLOG_FORMAT_DESCRIPTION: return "Format_desc";
	case PS_BINLOG_XID: return "Xid";
	case 17: return "Begin_load_query";
	case 18: return "Execute_load_query";
	case PS_BINLOG_TABLE_MAP: return "Table_map";
	case 20: return "Write_rows_event_old";
	case 21: return "Update_rows_event_old";
	case 22: return "Delete_rows_event_old";
	case PS_BINLOG_WRITE_ROWS_V1: return "Write_rows_v1";
	case PS_BINLOG_UPDATE_ROWS_V1: return "Update_rows_v1";
	case PS_BINLOG_DELETE_ROWS_V1: return "Delete_rows_v1";
	case PS_BINLOG_INCIDENT: return "Incident";
	case PS_BINLOG_HEARTBEAT: return "Heartbeat";
	case PS_BINLOG_IGNORABLE: return "Ignorable";
	case PS_BINLOG_ROWS_QUERY: return "Rows_query";
	case PS_BINLOG_WRITE_ROWS_V2: return "Write_rows";
	case PS_BINLOG_UPDATE_ROWS_V2: return "Update_rows";
	case PS_BINLOG_DELETE_ROWS_V2: return "Delete_rows";
	case PS_BINLOG_MYSQL_GTID: return "MySQL_gtid";
	case PS_BINLOG_MYSQL_ANONYMOUS_GTID: return "Anonymous_gtid";
	case PS_BINLOG_MYSQL_PREVIOUS_GTIDS: return "Previous_gtids";
	case 36: return "Transaction_context";
	case 37: return "View_change";
	case PS_BINLOG_XA_PREPARE: return "XA_prepare";
	case PS_BINLOG_MYSQL_PARTIAL_UPDATE_ROWS: return "Partial_update_rows";
	case PS_BINLOG_MYSQL_TRANSACTION_PAYLOAD: return "Transaction_payload";
	case PS_BINLOG_MYSQL_HEARTBEAT_V2: return "Heartbeat_v2";
	case PS_BINLOG_MYSQL_GTID_TAGGED: return "Gtid_tagged";
	case PS_BINLOG_ANNOTATE_ROWS: return "Annotate_rows";
	case PS_BINLOG_BINLOG_CHECKPOINT: return "Binlog_checkpoint";
	case PS_BINLOG_GTID: return "Gtid";
	case PS_BINLOG_GTID_LIST: return "Gtid_list";
	case PS_BINLOG_START_ENCRYPTION: return "Start_encryption";
	case PS_BINLOG_QUERY_COMPRESSED: return "Query_compressed";
	case PS_BINLOG_WRITE_ROWS_COMPRESSED_V1: return "Write_rows_compressed_v1";
	case PS_BINLOG_UPDATE_ROWS_COMPRESSED_V1: return "Update_rows_compressed_v1";
	case PS_BINLOG_DELETE_ROWS_COMPRESSED_V1: return "Delete_rows_compressed_v1";
	case PS_BINLOG_WRITE_ROWS_COMPRESSED: return "Write_rows_compressed";
	case PS_BINLOG_UPDATE_ROWS_COMPRESSED: return "Update_rows_compressed";
	case PS_BINLOG_DELETE_ROWS_COMPRESSED: return "Delete_rows_compressed";
	default: return "Unknown";
	}
}

/* --- format description ---------------------------------------------------------- */

/* MariaDB 10.x's post-header lengths for the types a decoder depends on. */
static const uint8_t default_phl[256] = {
	[PS_BINLOG_START_V3] = 56,
	[PS_BINLOG_QUERY] = 13,
	[PS_BINLOG_ROTATE] = 8,
	[PS_BINLOG_FORMAT_DESCRIPTION] = 228,
	[17] = 4,
	[18] = 26,
	[PS_BINLOG_TABLE_MAP] = 8,
	[PS_BINLOG_WRITE_ROWS_V1] = 8,
	[PS_BINLOG_UPDATE_ROWS_V1] = 8,
	[PS_BINLOG_DELETE_ROWS_V1] = 8,
	[PS_BINLOG_INCIDENT] = 2,
	[PS_BINLOG_WRITE_ROWS_V2] = 10,
	[PS_BINLOG_UPDATE_ROWS_V2] = 10,
	[PS_BINLOG_DELETE_ROWS_V2] = 10,
	[PS_BINLOG_BINLOG_CHECKPOINT] = 4,
	[PS_BINLOG_GTID] = 19,
	[PS_BINLOG_GTID_LIST] = 4,
	[PS_BINLOG_QUERY_COMPRESSED] = 13,
	[PS_BINLOG_WRITE_ROWS_COMPRESSED_V1] = 8,
	[PS_BINLOG_UPDATE_ROWS_COMPRESSED_V1] = 8,
	[PS_BINLOG_DELETE_ROWS_COMPRESSED_V1] = 8,
	[PS_BINLOG_WRITE_ROWS_COMPRESSED] = 10,
	[PS_BINLOG_UPDATE_ROWS_COMPRESSED] = 10,
	[PS_BINLOG_DELETE_ROWS_COMPRESSED] = 10,
};

void ps_binlog_fde_init(ps_binlog_fde *fde, uint8_t checksum_alg)
{
	memset(fde, 0, sizeof(*fde));
	fde->binlog_version = 4;
	fde->header_len = PS_BINLOG_HEADER_LEN;
	fde->checksum_alg = checksum_alg;
	fde->mariadb = true;
	memcpy(fde->post_header_len, default_phl, sizeof(default_phl));
}

static uint8_t post_header_len(const ps_binlog_fde *fde, uint8_t type)
{
	if (type != 0 && type <= fde->ntypes)
		return fde->post_header_len[type];
	return default_phl[type];
}

/* "10.11.19-MariaDB-log" -> 10, 11, 19; missing parts are 0. */
static void parse_version(const char *v, unsigned out[3])
{
	out[0] = out[1] = out[2] = 0;
	for (int i = 0; i < 3; i++) {
		unsigned n = 0;
		int digits = 0;

		while (*v >= '0' && *v <= '9' && digits < 6) {
			n = n * 10 + (unsigned)(*v - '0');
			v++;
			digits++;
		}
		out[i] = n;
		if (*v != '.')
			break;
		v++;
	}
}

static bool version_at_least(const unsigned v[3], unsigned a, unsigned b, unsigned c)
{
	if (v[0] != a)
		return v[0] > a;
	if (v[1] != b)
		return v[1] > b;
	return v[2] >= c;
}

/* The CRC32 covers the event up to its last 4 bytes. A FORMAT_DESCRIPTION
 * event's covers it with the "binlog in use" flag clear: the server sets
 * that flag in the file's first event while it writes the file, after the
 * checksum was computed, and clears it when the file is closed. */
static int verify_crc(bl_reader *r, const uint8_t *buf, size_t len)
{
	uint32_t stored = (uint32_t)bl_le(buf + len - PS_BINLOG_CHECKSUM_LEN, 4);
	uint32_t computed;

	if (buf[4] == PS_BINLOG_FORMAT_DESCRIPTION) {
		uint8_t flags = (uint8_t)(buf[17] & ~PS_BINLOG_F_BINLOG_IN_USE);

		computed = (uint32_t)crc32(0L, buf, 17);
		computed = (uint32_t)crc32(computed, &flags, 1);
		computed = (uint32_t)crc32(computed, buf + 18, (uInt)(len - PS_BINLOG_CHECKSUM_LEN - 18));
	} else {
		computed = (uint32_t)crc32(0L, buf, (uInt)(len - PS_BINLOG_CHECKSUM_LEN));
	}

	if (stored == computed)
		return PS_OK;
	return ps__bl_fail(r, "checksum", "CRC32 mismatch: event says 0x%08" PRIx32
	                   ", bytes give 0x%08" PRIx32, stored, computed);
}

/* The FDE's body starts right after the 19-byte header whatever the header
 * length in force, and carries its own checksum algorithm. */
static int parse_fde(bl_reader *r, ps_binlog_event *out, const uint8_t *buf, size_t len)
{
	ps_binlog_fde *f = &out->u.fde;
	const uint8_t *version = NULL;
	uint16_t binlog_version = 0;
	unsigned v[3];
	size_t ntypes;
	int rc;

	memset(f, 0, sizeof(*f));
	rc = bl_u16(r, &binlog_version, "binlog version");
	if (rc != PS_OK)
		return rc;
	if (binlog_version != 4)
		return ps__bl_fail(r, "binlog version", "version %u not supported yet (only 4)",
		                   binlog_version);
	rc = bl_bytes(r, FDE_SERVER_VERSION_LEN, &version, "server version");
	if (rc == PS_OK)
		rc = bl_need(r, 4 + 1, "create timestamp and header length");
	if (rc != PS_OK)
		return rc;
	r->pos += 4;
	f->binlog_version = binlog_version;
	f->header_len = r->buf[r->pos++];
	for (size_t i = 0; i < FDE_SERVER_VERSION_LEN && version[i]; i++) {
		unsigned char ch = version[i];

		f->server_version[i] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
	}
	f->mariadb = strstr(f->server_version, "MariaDB") != NULL;
	if (f->header_len < PS_BINLOG_HEADER_LEN)
		return ps__bl_fail(r, "header length", "%u is less than 19", f->header_len);

	/* Checksum-aware servers (MySQL 5.6.1, MariaDB 5.3) end the FDE with the
	 * algorithm byte and a 4-byte checksum. */
	parse_version(f->server_version, v);
	if (version_at_least(v, 5, 6, 1) || (f->mariadb && version_at_least(v, 5, 3, 0))) {
		if (bl_left(r) < 1 + PS_BINLOG_CHECKSUM_LEN)
			return ps__bl_truncated(r, "checksum algorithm", 1 + PS_BINLOG_CHECKSUM_LEN);
		ntypes = bl_left(r) - 1 - PS_BINLOG_CHECKSUM_LEN;
		f->checksum_alg = r->buf[r->pos + ntypes];
	} else {
		ntypes = bl_left(r);
		f->checksum_alg = PS_BINLOG_CHECKSUM_OFF;
	}
	if (f->checksum_alg != PS_BINLOG_CHECKSUM_OFF && f->checksum_alg != PS_BINLOG_CHECKSUM_CRC32)
		return ps__bl_fail(r, "checksum algorithm", "algorithm %u not supported yet",
		                   f->checksum_alg);
	if (ntypes > 255)
		return ps__bl_fail(r, "post-header lengths", "%zu types listed, at most 255", ntypes);
	f->ntypes = (uint16_t)ntypes;
	memcpy(f->post_header_len + 1, r->buf + r->pos, ntypes);
	if (f->checksum_alg == PS_BINLOG_CHECKSUM_CRC32) {
		rc = verify_crc(r, buf, len);
		if (rc != PS_OK)
			return rc;
		out->has_checksum = true;
	}
	/* The types we decode must have the post-header we expect. */
	if (ntypes >= PS_BINLOG_QUERY && f->post_header_len[PS_BINLOG_QUERY] < QUERY_POST_HEADER_MIN)
		return ps__bl_fail(r, "post-header lengths", "Query post-header of %u bytes",
		                   f->post_header_len[PS_BINLOG_QUERY]);
	return PS_OK;
}

/* --- compressed blocks ------------------------------------------------------------- */

int ps__binlog_inflate(bl_reader *r, size_t n, ps_buf *inflate, const char *field)
{
	const uint8_t *p = NULL;
	uint8_t head;
	size_t lenlen;
	uint64_t declared;
	uLongf produced;
	size_t start = r->pos;
	char where[64];
	int rc = bl_bytes(r, n, &p, field);

	if (rc != PS_OK)
		return rc;
	ps__bl_where(r, start, where, sizeof(where));
	if (n < 2)
		return ps__bl_fail(r, field, "compressed block of %zu bytes at %s", n, where);
	head = p[0];
	lenlen = head & 0x07u;
	if ((head & 0x80u) == 0 || (head & 0x78u) != 0 || lenlen < 1 || lenlen > 4)
		return ps__bl_fail(r, field, "bad compressed block header 0x%02x at %s "
		                   "(only zlib is supported)", head, where);
	if (n < 1 + lenlen + 1)
		return ps__bl_fail(r, field, "compressed block of %zu bytes at %s", n, where);
	declared = bl_be(p + 1, lenlen);
	if (declared == 0)
		return ps__bl_fail(r, field, "compressed block at %s declares 0 bytes", where);
	if (declared > (uint64_t)(n - 1 - lenlen) * ZLIB_MAX_RATIO)
		return ps__bl_fail(r, field, "compressed block at %s declares %" PRIu64
		                   " bytes from %zu: more than zlib can produce", where, declared,
		                   n - 1 - lenlen);
	ps_buf_reset(inflate);
	rc = ps_buf_reserve(inflate, (size_t)declared);
	if (rc != PS_OK)
		return ps__bl_fail_code(r, rc, field, "cannot hold %" PRIu64 " inflated bytes (%s)",
		                        declared, rc == PS_ETOOBIG ? "over the limit" : "out of memory");
	produced = (uLongf)declared;
	rc = uncompress((Bytef *)inflate->data, &produced, p + 1 + lenlen, (uLong)(n - 1 - lenlen));
	if (rc != Z_OK || produced != declared) {
		ps_buf_reset(inflate);
		return ps__bl_fail(r, field, "compressed block at %s does not inflate to its "
		                   "%" PRIu64 " bytes (zlib %d)", where, declared, rc);
	}
	inflate->len = (size_t)declared;
	inflate->data[inflate->len] = '\0';
	return PS_OK;
}

/* --- scratch ------------------------------------------------------------------------ */

void ps_binlog_scratch_init(ps_binlog_scratch *s, size_t text_limit, size_t inflate_limit)
{
	memset(s, 0, sizeof(*s));
	ps_buf_init(&s->text, text_limit ? text_limit : PS_BINLOG_TEXT_LIMIT_DEFAULT);
	ps_buf_init(&s->inflate, inflate_limit ? inflate_limit : PS_BINLOG_INFLATE_LIMIT_DEFAULT);
}

void ps_binlog_scratch_free(ps_binlog_scratch *s)
{
	if (!s)
		return;
	ps_buf_free(&s->text);
	ps_buf_free(&s->inflate);
	free(s->values);
	free(s->offsets);
	s->values = NULL;
	s->offsets = NULL;
	s->nvalues = 0;
}

/* --- header ---------------------------------------------------------------------------- */

int ps_binlog_header_parse(ps_binlog_header *out, const uint8_t *buf, size_t len, ps_error *err)
{
	if (len < PS_BINLOG_HEADER_LEN)
		return ps_error_set(err, PS_EPROTO, "binlog event header: truncated at byte %zu "
		                    "(need %zu more)", len, (size_t)PS_BINLOG_HEADER_LEN - len);
	out->timestamp = (uint32_t)bl_le(buf, 4);
	out->type = buf[4];
	out->server_id = (uint32_t)bl_le(buf + 5, 4);
	out->event_len = (uint32_t)bl_le(buf + 9, 4);
	out->log_pos = (uint32_t)bl_le(buf + 13, 4);
	out->flags = (uint16_t)bl_le(buf + 17, 2);
	if (out->event_len < PS_BINLOG_HEADER_LEN)
		return ps_error_set(err, PS_EPROTO, "binlog %s event header: event length %" PRIu32
		                    " at byte 9 is less than the 19-byte header",
		                    ps_binlog_type_name(out->type), out->event_len);
	return PS_OK;
}

/* --- event bodies ----------------------------------------------------------------------- */

static int parse_rotate(bl_reader *r, ps_binlog_event *out, uint8_t phl)
{
	uint64_t pos = 0;
	int rc = PS_OK;

	if (phl >= 8) {
		rc = bl_uint(r, 8, &pos, "position");
		if (rc == PS_OK)
			rc = bl_need(r, (size_t)phl - 8, "post-header");
		if (rc == PS_OK)
			r->pos += (size_t)phl - 8;
	}
	if (rc != PS_OK)
		return rc;
	out->u.rotate.position = pos;
	out->u.rotate.file = (const char *)r->buf + r->pos;
	out->u.rotate.file_len = bl_left(r);
	if (out->u.rotate.file_len == 0)
		return ps__bl_fail(r, "file name", "empty");
	r->pos = r->len;
	return PS_OK;
}

static int parse_gtid(bl_reader *r, ps_binlog_event *out)
{
	uint64_t seq_no = 0, commit_id = 0, sa_seq_no = 0;
	uint32_t domain_id = 0, format_id = 0;
	uint8_t flags2 = 0, flags_extra = 0, engines = 0, glen = 0, blen = 0;
	const uint8_t *xid = NULL;
	int rc = bl_uint(r, 8, &seq_no, "sequence number");

	if (rc == PS_OK)
		rc = bl_u32(r, &domain_id, "domain id");
	if (rc == PS_OK)
		rc = bl_u8(r, &flags2, "flags");
	if (rc == PS_OK && (flags2 & PS_BINLOG_GTID_GROUP_COMMIT_ID))
		rc = bl_uint(r, 8, &commit_id, "commit id");
	if (rc == PS_OK && (flags2 & (PS_BINLOG_GTID_PREPARED_XA | PS_BINLOG_GTID_COMPLETED_XA))) {
		rc = bl_u32(r, &format_id, "XA format id");
		if (rc == PS_OK)
			rc = bl_u8(r, &glen, "XA gtrid length");
		if (rc == PS_OK)
			rc = bl_u8(r, &blen, "XA bqual length");
		if (rc == PS_OK && ((unsigned)glen > 64 || (unsigned)blen > 64))
			rc = ps__bl_fail(r, "XA xid", "gtrid %u / bqual %u bytes, at most 64 each",
			                 glen, blen);
		if (rc == PS_OK)
			rc = bl_bytes(r, (size_t)glen + blen, &xid, "XA xid");
	}
	/* flags_extra and what it announces follow when the event is longer;
	 * a GTID without them is zero-padded to the 19-byte post-header. */
	if (rc == PS_OK && bl_left(r) > 0) {
		rc = bl_u8(r, &flags_extra, "extra flags");
		if (rc == PS_OK && (flags_extra & PS_BINLOG_GTID_EXTRA_MULTI_ENGINE))
			rc = bl_u8(r, &engines, "extra engines");
		if (rc == PS_OK && (flags_extra & (PS_BINLOG_GTID_EXTRA_COMMIT_ALTER |
		                                   PS_BINLOG_GTID_EXTRA_ROLLBACK_ALTER)))
			rc = bl_uint(r, 8, &sa_seq_no, "start alter sequence number");
	}
	if (rc != PS_OK)
		return rc;
	out->u.gtid.seq_no = seq_no;
	out->u.gtid.domain_id = domain_id;
	out->u.gtid.flags2 = flags2;
	out->u.gtid.flags_extra = flags_extra;
	out->u.gtid.commit_id = commit_id;
	out->u.gtid.extra_engines = engines;
	out->u.gtid.sa_seq_no = sa_seq_no;
	out->u.gtid.xid_format_id = format_id;
	out->u.gtid.xid_data = xid;
	out->u.gtid.xid_gtrid_len = glen;
	out->u.gtid.xid_bqual_len = blen;
	r->pos = r->len;      /* later additions (thread id, ...) and padding */
	return PS_OK;
}

static int parse_gtid_list(bl_reader *r, ps_binlog_event *out)
{
	uint32_t word = 0;
	const uint8_t *raw = NULL;
	int rc = bl_u32(r, &word, "count");

	if (rc != PS_OK)
		return rc;
	out->u.gtid_list.count = word & 0x0fffffffu;
	out->u.gtid_list.flags = (uint8_t)(word >> 28);
	if (out->u.gtid_list.count > PS_BINLOG_GTID_LIST_MAX)
		return ps__bl_fail(r, "count", "%" PRIu32 " entries, at most %d decoded",
		                   out->u.gtid_list.count, PS_BINLOG_GTID_LIST_MAX);
	rc = bl_bytes(r, (size_t)out->u.gtid_list.count * GTID_LIST_ENTRY_LEN, &raw, "entries");
	if (rc != PS_OK)
		return rc;
	out->u.gtid_list.raw = raw;
	r->pos = r->len;
	return PS_OK;
}

void ps_binlog_gtid_list_get(const ps_binlog_event *ev, uint32_t i, ps_binlog_gtid *out)
{
	const uint8_t *p = ev->u.gtid_list.raw + (size_t)i * GTID_LIST_ENTRY_LEN;

	out->domain_id = (uint32_t)bl_le(p, 4);
	out->server_id = (uint32_t)bl_le(p + 4, 4);
	out->seq_no = bl_le(p + 8, 8);
}

/* Picks what a reader needs from the status variables. Stops quietly at a
 * code it does not know (its length is unknown): the block's own length has
 * already been skipped over, so nothing after it depends on this. */
static void parse_status_vars(const uint8_t *p, size_t n, ps_binlog_event *out)
{
	size_t i = 0;

	while (i < n) {
		uint8_t code = p[i++];
		size_t left = n - i, need;

		switch (code) {
		case 0: need = 4; break;                             /* flags2 */
		case 1:                                              /* sql_mode */
			need = 8;
			if (left >= need) {
				out->u.query.has_sql_mode = true;
				out->u.query.sql_mode = bl_le(p + i, 8);
			}
			break;
		case 2: need = left ? (size_t)p[i] + 2 : 1; break;   /* catalog + NUL */
		case 3: need = 4; break;                             /* auto_increment */
		case 4:                                              /* charsets */
			need = 6;
			if (left >= need) {
				out->u.query.has_charset = true;
				out->u.query.charset_client = (uint16_t)bl_le(p + i, 2);
				out->u.query.collation_connection = (uint16_t)bl_le(p + i + 2, 2);
				out->u.query.collation_server = (uint16_t)bl_le(p + i + 4, 2);
			}
			break;
		case 5:                                              /* time_zone */
			need = left ? (size_t)p[i] + 1 : 1;
			if (left >= need) {
				out->u.query.time_zone = (const char *)p + i + 1;
				out->u.query.time_zone_len = p[i];
			}
			break;
		case 6: need = left ? (size_t)p[i] + 1 : 1; break;   /* catalog, no NUL */
		case 7: need = 2; break;                             /* lc_time_names */
		case 8: need = 2; break;                             /* charset_database */
		case 9: need = 8; break;                             /* table_map_for_update */
		case 10: need = 4; break;                            /* master_data_written */
		case 11:                                             /* invoker: user, host */
			need = left ? (size_t)p[i] + 1 : 1;
			if (left > need)
				need += (size_t)p[i + need] + 1;
			else
				need += 1;
			break;
		case 128: need = 3; break;                           /* hrnow */
		case 129: need = 8; break;                           /* xid */
		default:
			return;
		}
		if (left < need) {
			out->u.query.has_charset = false;
			out->u.query.has_sql_mode = false;
			out->u.query.time_zone = NULL;
			return;
		}
		i += need;
	}
}

static bool word_is(const char *s, size_t n, const char *word)
{
	size_t wl = strlen(word);

	if (n != wl)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != word[i])
			return false;
	}
	return true;
}

static int classify_query(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
	             s[n - 1] == '\r' || s[n - 1] == ';'))
		n--;
	if (word_is(s, n, "BEGIN"))
		return PS_BINLOG_Q_BEGIN;
	if (word_is(s, n, "COMMIT"))
		return PS_BINLOG_Q_COMMIT;
	if (word_is(s, n, "ROLLBACK"))
		return PS_BINLOG_Q_ROLLBACK;
	return PS_BINLOG_Q_STATEMENT;
}

static int parse_query(bl_reader *r, ps_binlog_event *out, uint8_t phl, bool compressed,
                       ps_binlog_scratch *scratch)
{
	uint8_t db_len = 0;
	uint16_t status_len = 0;
	const uint8_t *status = NULL, *db = NULL;
	int rc;

	if (phl < QUERY_POST_HEADER_MIN)
		return ps__bl_fail(r, "post-header", "%u bytes, need at least 13", phl);
	rc = bl_u32(r, &out->u.query.thread_id, "thread id");
	if (rc == PS_OK)
		rc = bl_u32(r, &out->u.query.exec_time, "exec time");
	if (rc == PS_OK)
		rc = bl_u8(r, &db_len, "database length");
	if (rc == PS_OK)
		rc = bl_u16(r, &out->u.query.error_code, "error code");
	if (rc == PS_OK)
		rc = bl_u16(r, &status_len, "status variables length");
	if (rc == PS_OK)
		rc = bl_need(r, (size_t)phl - QUERY_POST_HEADER_MIN, "post-header");
	if (rc != PS_OK)
		return rc;
	r->pos += (size_t)phl - QUERY_POST_HEADER_MIN;
	rc = bl_bytes(r, status_len, &status, "status variables");
	if (rc == PS_OK)
		rc = bl_bytes(r, (size_t)db_len + 1, &db, "database");
	if (rc != PS_OK)
		return rc;
	if (db[db_len] != '\0' || memchr(db, '\0', db_len))
		return ps__bl_fail(r, "database", "name of %u bytes is not NUL-terminated", db_len);
	parse_status_vars(status, status_len, out);
	out->u.query.db = (const char *)db;
	out->u.query.db_len = db_len;
	out->u.query.compressed = compressed;
	if (compressed) {
		if (!scratch)
			return ps__bl_fail(r, "statement", "compressed, and no scratch to inflate it");
		rc = ps__binlog_inflate(r, bl_left(r), &scratch->inflate, "statement");
		if (rc != PS_OK)
			return rc;
		out->u.query.statement = scratch->inflate.data;
		out->u.query.statement_len = scratch->inflate.len;
	} else {
		out->u.query.statement = (const char *)r->buf + r->pos;
		out->u.query.statement_len = bl_left(r);
		r->pos = r->len;
	}
	out->u.query.kind = classify_query(out->u.query.statement, out->u.query.statement_len);
	return PS_OK;
}

static int parse_xa_prepare(bl_reader *r, ps_binlog_event *out)
{
	uint8_t one_phase = 0;
	uint32_t glen = 0, blen = 0;
	int rc = bl_u8(r, &one_phase, "one phase");

	if (rc == PS_OK)
		rc = bl_u32(r, &out->u.xa_prepare.format_id, "format id");
	if (rc == PS_OK)
		rc = bl_u32(r, &glen, "gtrid length");
	if (rc == PS_OK)
		rc = bl_u32(r, &blen, "bqual length");
	if (rc == PS_OK && (glen > 64 || blen > 64))
		rc = ps__bl_fail(r, "xid", "gtrid %" PRIu32 " / bqual %" PRIu32
		                 " bytes, at most 64 each", glen, blen);
	if (rc == PS_OK)
		rc = bl_bytes(r, (size_t)glen + blen, &out->u.xa_prepare.data, "xid");
	if (rc != PS_OK)
		return rc;
	out->u.xa_prepare.one_phase = one_phase != 0;
	out->u.xa_prepare.gtrid_len = glen;
	out->u.xa_prepare.bqual_len = blen;
	return PS_OK;
}

static int parse_incident(bl_reader *r, ps_binlog_event *out, uint8_t phl)
{
	uint8_t mlen = 0;
	const uint8_t *msg = NULL;
	int rc = bl_u16(r, &out->u.incident.number, "incident number");

	if (rc == PS_OK && phl > 2) {
		rc = bl_need(r, (size_t)phl - 2, "post-header");
		if (rc == PS_OK)
			r->pos += (size_t)phl - 2;
	}
	if (rc == PS_OK && bl_left(r) > 0) {
		rc = bl_u8(r, &mlen, "message length");
		if (rc == PS_OK)
			rc = bl_bytes(r, mlen, &msg, "message");
	}
	if (rc != PS_OK)
		return rc;
	out->u.incident.message = (const char *)msg;
	out->u.incident.message_len = mlen;
	return PS_OK;
}

static int parse_table_map_head(bl_reader *r, ps_binlog_event *out, uint8_t phl)
{
	uint64_t id = 0;
	int rc;

	if (phl == 6) {
		rc = bl_uint(r, 4, &id, "table id");
	} else if (phl == 8) {
		rc = bl_uint(r, 6, &id, "table id");
	} else {
		return ps__bl_fail(r, "post-header", "%u bytes, expected 6 or 8", phl);
	}
	if (rc == PS_OK)
		rc = bl_u16(r, &out->u.table_map.flags, "flags");
	out->u.table_map.table_id = id;
	out->u.table_map.data_pos = r->pos;
	r->pos = r->len;
	return rc;
}

static int rows_op(uint8_t type)
{
	switch (type) {
	case PS_BINLOG_WRITE_ROWS_V1:
	case PS_BINLOG_WRITE_ROWS_V2:
	case PS_BINLOG_WRITE_ROWS_COMPRESSED_V1:
	case PS_BINLOG_WRITE_ROWS_COMPRESSED:
		return PS_BINLOG_INSERT;
	case PS_BINLOG_UPDATE_ROWS_V1:
	case PS_BINLOG_UPDATE_ROWS_V2:
	case PS_BINLOG_UPDATE_ROWS_COMPRESSED_V1:
	case PS_BINLOG_UPDATE_ROWS_COMPRESSED:
		return PS_BINLOG_UPDATE;
	case PS_BINLOG_DELETE_ROWS_V1:
	case PS_BINLOG_DELETE_ROWS_V2:
	case PS_BINLOG_DELETE_ROWS_COMPRESSED_V1:
	case PS_BINLOG_DELETE_ROWS_COMPRESSED:
		return PS_BINLOG_DELETE;
	default:
		return 0;
	}
}

/* Post-header, extra data (v2), width and the columns-present bitmaps; the
 * row data stays as it is (maybe compressed) for ps_binlog_rows_begin. */
static int parse_rows_head(bl_reader *r, ps_binlog_event *out, uint8_t phl)
{
	uint8_t type = out->header.type;
	uint64_t id = 0, width = 0;
	uint16_t extra = 0;
	size_t nbytes;
	int rc;

	out->u.rows.op = rows_op(type);
	out->u.rows.compressed = type >= PS_BINLOG_WRITE_ROWS_COMPRESSED_V1;
	out->u.rows.version = (type >= PS_BINLOG_WRITE_ROWS_V2 && type <= PS_BINLOG_DELETE_ROWS_V2) ||
	                      type >= PS_BINLOG_WRITE_ROWS_COMPRESSED ? 2 : 1;
	if (phl == 6 && out->u.rows.version == 1)
		rc = bl_uint(r, 4, &id, "table id");
	else if ((phl == 8 && out->u.rows.version == 1) || (phl == 10 && out->u.rows.version == 2))
		rc = bl_uint(r, 6, &id, "table id");
	else
		return ps__bl_fail(r, "post-header", "%u bytes for a v%u rows event", phl,
		                   out->u.rows.version);
	if (rc == PS_OK)
		rc = bl_u16(r, &out->u.rows.flags, "flags");
	if (rc == PS_OK && out->u.rows.version == 2) {
		rc = bl_u16(r, &extra, "extra data length");
		if (rc == PS_OK && extra < 2)
			rc = ps__bl_fail(r, "extra data length", "%u, at least 2", extra);
		if (rc == PS_OK)
			rc = bl_need(r, (size_t)extra - 2, "extra data");
		if (rc == PS_OK)
			r->pos += (size_t)extra - 2;
	}
	if (rc == PS_OK)
		rc = ps__bl_packed_max(r, UINT32_MAX, &width, "column count");
	if (rc != PS_OK)
		return rc;
	if (width == 0)
		return ps__bl_fail(r, "column count", "0 columns");
	nbytes = ((size_t)width + 7) / 8;
	rc = bl_bytes(r, nbytes, &out->u.rows.present, "columns-present bitmap");
	if (rc != PS_OK)
		return rc;
	out->u.rows.present_after = out->u.rows.present;
	if (out->u.rows.op == PS_BINLOG_UPDATE) {
		rc = bl_bytes(r, nbytes, &out->u.rows.present_after, "after-image columns bitmap");
		if (rc != PS_OK)
			return rc;
	}
	out->u.rows.table_id = id;
	out->u.rows.width = (uint32_t)width;
	out->u.rows.rows = r->buf + r->pos;
	out->u.rows.rows_len = bl_left(r);
	out->u.rows.rows_offset = r->base + r->pos;
	r->pos = r->len;
	return PS_OK;
}

static int not_supported(bl_reader *r, const char *what)
{
	return ps__bl_fail(r, "event", "%s not supported yet", what);
}

static int parse_body(bl_reader *r, ps_binlog_event *out, const ps_binlog_fde *fde,
                      ps_binlog_scratch *scratch)
{
	uint8_t type = out->header.type;
	uint8_t phl = post_header_len(fde, type);

	switch (type) {
	case PS_BINLOG_ROTATE:
		out->kind = PS_BINLOG_EV_ROTATE;
		return parse_rotate(r, out, phl);
	case PS_BINLOG_GTID:
		out->kind = PS_BINLOG_EV_GTID;
		return parse_gtid(r, out);
	case PS_BINLOG_GTID_LIST:
		out->kind = PS_BINLOG_EV_GTID_LIST;
		return parse_gtid_list(r, out);
	case PS_BINLOG_QUERY:
	case PS_BINLOG_QUERY_COMPRESSED:
		out->kind = PS_BINLOG_EV_QUERY;
		return parse_query(r, out, phl, type == PS_BINLOG_QUERY_COMPRESSED, scratch);
	case PS_BINLOG_XID:
		out->kind = PS_BINLOG_EV_XID;
		return bl_uint(r, 8, &out->u.xid.xid, "xid");
	case PS_BINLOG_XA_PREPARE:
		out->kind = PS_BINLOG_EV_XA_PREPARE;
		return parse_xa_prepare(r, out);
	case PS_BINLOG_HEARTBEAT:
		out->kind = PS_BINLOG_EV_HEARTBEAT;
		out->u.heartbeat.file = (const char *)r->buf;
		out->u.heartbeat.file_len = r->len;
		r->pos = r->len;
		return PS_OK;
	case PS_BINLOG_ANNOTATE_ROWS:
		out->kind = PS_BINLOG_EV_ANNOTATE_ROWS;
		out->u.annotate.statement = (const char *)r->buf;
		out->u.annotate.statement_len = r->len;
		r->pos = r->len;
		return PS_OK;
	case PS_BINLOG_BINLOG_CHECKPOINT: {
		uint32_t n = 0;
		const uint8_t *name = NULL;
		int rc = bl_u32(r, &n, "file name length");

		if (rc == PS_OK)
			rc = bl_bytes(r, n, &name, "file name");
		out->kind = PS_BINLOG_EV_BINLOG_CHECKPOINT;
		out->u.checkpoint.file = (const char *)name;
		out->u.checkpoint.file_len = n;
		return rc;
	}
	case PS_BINLOG_INCIDENT:
		out->kind = PS_BINLOG_EV_INCIDENT;
		return parse_incident(r, out, phl);
	case PS_BINLOG_STOP:
		out->kind = PS_BINLOG_EV_STOP;
		return PS_OK;
	case PS_BINLOG_TABLE_MAP:
		out->kind = PS_BINLOG_EV_TABLE_MAP;
		return parse_table_map_head(r, out, phl);
	case PS_BINLOG_WRITE_ROWS_V1:
	case PS_BINLOG_UPDATE_ROWS_V1:
	case PS_BINLOG_DELETE_ROWS_V1:
	case PS_BINLOG_WRITE_ROWS_V2:
	case PS_BINLOG_UPDATE_ROWS_V2:
	case PS_BINLOG_DELETE_ROWS_V2:
	case PS_BINLOG_WRITE_ROWS_COMPRESSED_V1:
	case PS_BINLOG_UPDATE_ROWS_COMPRESSED_V1:
	case PS_BINLOG_DELETE_ROWS_COMPRESSED_V1:
	case PS_BINLOG_WRITE_ROWS_COMPRESSED:
	case PS_BINLOG_UPDATE_ROWS_COMPRESSED:
	case PS_BINLOG_DELETE_ROWS_COMPRESSED:
		out->kind = PS_BINLOG_EV_ROWS;
		return parse_rows_head(r, out, phl);
	case PS_BINLOG_MYSQL_GTID:
	case PS_BINLOG_MYSQL_ANONYMOUS_GTID:
	case PS_BINLOG_MYSQL_PREVIOUS_GTIDS:
	case PS_BINLOG_MYSQL_GTID_TAGGED:
		return not_supported(r, "MySQL GTID events are");
	case PS_BINLOG_MYSQL_TRANSACTION_PAYLOAD:
		return not_supported(r, "MySQL compressed transaction payloads are");
	case PS_BINLOG_MYSQL_PARTIAL_UPDATE_ROWS:
		return not_supported(r, "MySQL partial JSON updates are");
	case PS_BINLOG_MYSQL_HEARTBEAT_V2:
		return not_supported(r, "MySQL heartbeat v2 is");
	case PS_BINLOG_START_ENCRYPTION:
		return not_supported(r, "an encrypted binlog is");
	default:
		out->kind = PS_BINLOG_EV_OTHER;
		r->pos = r->len;
		return PS_OK;
	}
}

int ps_binlog_event_parse(ps_binlog_event *out, const uint8_t *buf, size_t len,
                          const ps_binlog_fde *fde, ps_binlog_scratch *scratch, ps_error *err)
{
	bl_reader r;
	size_t hlen, end;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = ps_binlog_header_parse(&out->header, buf, len, err);
	if (rc != PS_OK)
		return rc;
	out->type_name = ps_binlog_type_name(out->header.type);
	bl_init(&r, buf, len, 0, out->type_name, err);
	if (out->header.event_len != len)
		return ps__bl_fail(&r, "event length", "header says %" PRIu32 " bytes, the event "
		                   "has %zu", out->header.event_len, len);

	if (out->header.type == PS_BINLOG_FORMAT_DESCRIPTION) {
		out->kind = PS_BINLOG_EV_FDE;
		out->body = buf + PS_BINLOG_HEADER_LEN;
		out->body_len = len - PS_BINLOG_HEADER_LEN;
		bl_init(&r, out->body, out->body_len, PS_BINLOG_HEADER_LEN, out->type_name, err);
		return parse_fde(&r, out, buf, len);
	}

	hlen = fde->header_len >= PS_BINLOG_HEADER_LEN ? fde->header_len : PS_BINLOG_HEADER_LEN;
	end = len;
	if (fde->checksum_alg == PS_BINLOG_CHECKSUM_CRC32) {
		if (len < hlen + PS_BINLOG_CHECKSUM_LEN)
			return ps__bl_fail(&r, "checksum", "event of %zu bytes has no room for its "
			                   "%zu-byte header and CRC32", len, hlen);
		rc = verify_crc(&r, buf, len);
		if (rc != PS_OK)
			return rc;
		out->has_checksum = true;
		end = len - PS_BINLOG_CHECKSUM_LEN;
	} else if (len < hlen) {
		return ps__bl_fail(&r, "header", "event of %zu bytes is shorter than the "
		                   "%zu-byte header", len, hlen);
	}
	out->body = buf + hlen;
	out->body_len = end - hlen;
	bl_init(&r, out->body, out->body_len, hlen, out->type_name, err);
	return parse_body(&r, out, fde, scratch);
}
