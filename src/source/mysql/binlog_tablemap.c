/*
 * binlog_tablemap.c — TABLE_MAP events to ps_binlog_table, and the table
 * cache by table id (see binlog.h).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Layout of the event body after the post-header (table id, flags):
 *    db length, db, NUL, table length, table, NUL, column count (packed),
 *    one type byte per column, metadata length (packed), per-column
 *    metadata (0, 1 or 2 bytes by type), null bitmap (LSB first), then the
 *    optional metadata: type byte, length (packed), value, until the end.
 *
 * 2. Two passes over the optional metadata. The first only records where
 *    each field is and counts the ENUM/SET labels, so that the table can be
 *    one allocation of a size known up front and bounded by the event: every
 *    name and label is copied from the event, so the strings need at most
 *    the body's length plus one NUL each. The second pass decodes into it.
 *
 * 3. Which columns a field covers (MariaDB 10.11, checked on the server):
 *    SIGNEDNESS has one bit (MSB first) per numeric column, and MariaDB
 *    counts YEAR as numeric (BIT is not); the charset fields cover the
 *    "character" columns — CHAR/BINARY (not ENUM/SET), VARCHAR, every BLOB
 *    and TEXT, GEOMETRY, and the BINARY(16)/BINARY(4) of UUID and INET —
 *    with DEFAULT_CHARSET's column numbers counted among those columns; the
 *    ENUM_AND_SET fields cover ENUM and SET columns; GEOMETRY_TYPE the
 *    GEOMETRY ones. A field whose count does not match its columns is
 *    PS_EPROTO: decoding strings with the wrong charset would be worse.
 *
 * 4. The table keeps a copy of the event body, so a reader that sees the
 *    same TABLE_MAP before every transaction (the server sends one per
 *    statement) can compare bytes and keep the table it has.
 *
 * 5. Cache: open addressing on the 48-bit table id (linear probing, power
 *    of two capacity, load under 3/4). Entries are replaced, never removed;
 *    past PS_BINLOG_TABLECACHE_MAX entries the whole cache is emptied, which
 *    costs one parse per table of the next transactions and keeps memory
 *    bounded however many tables a server cycles through.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/binlog_internal.h"

#define MAX_COLUMNS 4096          /* MariaDB's and MySQL's MAX_FIELDS */

enum opt_type {
	OPT_SIGNEDNESS = 1,
	OPT_DEFAULT_CHARSET,
	OPT_COLUMN_CHARSET,
	OPT_COLUMN_NAME,
	OPT_SET_STR_VALUE,
	OPT_ENUM_STR_VALUE,
	OPT_GEOMETRY_TYPE,
	OPT_SIMPLE_PRIMARY_KEY,
	OPT_PRIMARY_KEY_WITH_PREFIX,
	OPT_ENUM_AND_SET_DEFAULT_CHARSET,
	OPT_ENUM_AND_SET_COLUMN_CHARSET,
	OPT_COLUMN_VISIBILITY,
	OPT_MAX
};

static const char *const opt_names[OPT_MAX] = {
	"?", "SIGNEDNESS", "DEFAULT_CHARSET", "COLUMN_CHARSET", "COLUMN_NAME",
	"SET_STR_VALUE", "ENUM_STR_VALUE", "GEOMETRY_TYPE", "SIMPLE_PRIMARY_KEY",
	"PRIMARY_KEY_WITH_PREFIX", "ENUM_AND_SET_DEFAULT_CHARSET",
	"ENUM_AND_SET_COLUMN_CHARSET", "COLUMN_VISIBILITY",
};

typedef struct opt_slice {
	size_t pos, len;          /* in the body; len 0 and pos 0 when absent */
	bool present;
} opt_slice;

typedef struct tm_parse {
	bl_reader r;              /* over the whole body */
	uint64_t table_id;
	uint16_t flags;
	const uint8_t *db, *tbl;
	uint8_t db_len, tbl_len;
	uint32_t ncols;
	const uint8_t *types;
	const uint8_t *meta;
	size_t meta_len;
	const uint8_t *nulls;
	opt_slice opt[OPT_MAX];
	uint32_t nlabels;         /* ENUM + SET labels in the optional metadata */
	/* the table being filled */
	ps_binlog_table *t;
	char *chars, *chars_end;  /* string arena inside t's allocation */
	const char **labels;
	uint32_t *label_lens;
	uint32_t labels_used;
} tm_parse;

/* --- column classes ---------------------------------------------------------------- */

static bool is_numeric(const ps_binlog_column *c)
{
	switch (c->type) {
	case PS_MYSQL_TYPE_TINY:
	case PS_MYSQL_TYPE_SHORT:
	case PS_MYSQL_TYPE_INT24:
	case PS_MYSQL_TYPE_LONG:
	case PS_MYSQL_TYPE_LONGLONG:
	case PS_MYSQL_TYPE_FLOAT:
	case PS_MYSQL_TYPE_DOUBLE:
	case PS_MYSQL_TYPE_NEWDECIMAL:
	case PS_MYSQL_TYPE_DECIMAL:
	case PS_MYSQL_TYPE_YEAR:
		return true;
	default:
		return false;
	}
}

static bool is_enum_or_set(const ps_binlog_column *c)
{
	return c->real_type == PS_MYSQL_TYPE_ENUM || c->real_type == PS_MYSQL_TYPE_SET;
}

static bool is_character(const ps_binlog_column *c)
{
	switch (c->type) {
	case PS_MYSQL_TYPE_STRING:
		return c->real_type == PS_MYSQL_TYPE_STRING;
	case PS_MYSQL_TYPE_VARCHAR:
	case PS_MYSQL_TYPE_VAR_STRING:
	case PS_MYSQL_TYPE_TINY_BLOB:
	case PS_MYSQL_TYPE_MEDIUM_BLOB:
	case PS_MYSQL_TYPE_LONG_BLOB:
	case PS_MYSQL_TYPE_BLOB:
	case PS_MYSQL_TYPE_GEOMETRY:
	case PS_MYSQL_TYPE_JSON:
		return true;
	default:
		return false;
	}
}

/* Bytes of per-column metadata in the fixed part of the event. */
static size_t meta_size(uint8_t type)
{
	switch (type) {
	case PS_MYSQL_TYPE_FLOAT:
	case PS_MYSQL_TYPE_DOUBLE:
	case PS_MYSQL_TYPE_TINY_BLOB:
	case PS_MYSQL_TYPE_MEDIUM_BLOB:
	case PS_MYSQL_TYPE_LONG_BLOB:
	case PS_MYSQL_TYPE_BLOB:
	case PS_MYSQL_TYPE_GEOMETRY:
	case PS_MYSQL_TYPE_JSON:
	case PS_MYSQL_TYPE_TIMESTAMP2:
	case PS_MYSQL_TYPE_DATETIME2:
	case PS_MYSQL_TYPE_TIME2:
		return 1;
	case PS_MYSQL_TYPE_VARCHAR:
	case PS_MYSQL_TYPE_VAR_STRING:
	case PS_MYSQL_TYPE_BIT:
	case PS_MYSQL_TYPE_NEWDECIMAL:
	case PS_MYSQL_TYPE_STRING:
	case PS_MYSQL_TYPE_ENUM:
	case PS_MYSQL_TYPE_SET:
		return 2;
	default:
		return 0;
	}
}

/* Fills the type facts of column i from its type byte and metadata m. */
static int column_from_meta(tm_parse *p, uint32_t i, const uint8_t *m)
{
	ps_binlog_column *c = &p->t->columns[i];
	bl_reader *r = &p->r;
	char field[48];

	snprintf(field, sizeof(field), "column %" PRIu32 " metadata", i + 1);
	c->type = p->types[i];
	c->real_type = c->type;
	switch (c->type) {
	case PS_MYSQL_TYPE_FLOAT:
	case PS_MYSQL_TYPE_DOUBLE:
		c->meta = m[0];
		break;
	case PS_MYSQL_TYPE_TINY_BLOB:
	case PS_MYSQL_TYPE_MEDIUM_BLOB:
	case PS_MYSQL_TYPE_LONG_BLOB:
	case PS_MYSQL_TYPE_BLOB:
	case PS_MYSQL_TYPE_GEOMETRY:
	case PS_MYSQL_TYPE_JSON: {
		static const uint8_t blob_types[5] = {0, PS_MYSQL_TYPE_TINY_BLOB, PS_MYSQL_TYPE_BLOB,
		                                      PS_MYSQL_TYPE_MEDIUM_BLOB, PS_MYSQL_TYPE_LONG_BLOB};

		c->meta = m[0];
		if (m[0] < 1 || m[0] > 4)
			return ps__bl_fail(r, field, "length bytes %u, expected 1 to 4", m[0]);
		c->max_bytes = m[0];
		if (c->type != PS_MYSQL_TYPE_GEOMETRY && c->type != PS_MYSQL_TYPE_JSON)
			c->real_type = blob_types[m[0]];
		break;
	}
	case PS_MYSQL_TYPE_TIMESTAMP2:
	case PS_MYSQL_TYPE_DATETIME2:
	case PS_MYSQL_TYPE_TIME2:
		c->meta = m[0];
		if (m[0] > 6)
			return ps__bl_fail(r, field, "fractional digits %u, at most 6", m[0]);
		c->fsp = m[0];
		break;
	case PS_MYSQL_TYPE_VARCHAR:
	case PS_MYSQL_TYPE_VAR_STRING:
		c->meta = (uint16_t)(m[0] | m[1] << 8);
		c->max_bytes = c->meta;
		break;
	case PS_MYSQL_TYPE_BIT:
		c->meta = (uint16_t)(m[0] | m[1] << 8);
		c->bits = (uint32_t)m[1] * 8 + m[0];
		if (m[0] > 7 || c->bits < 1 || c->bits > 64)
			return ps__bl_fail(r, field, "BIT of %u bytes and %u bits", m[1], m[0]);
		break;
	case PS_MYSQL_TYPE_NEWDECIMAL:
		c->meta = (uint16_t)(m[0] << 8 | m[1]);
		c->precision = m[0];
		c->scale = m[1];
		if (c->precision < 1 || c->precision > 65 || c->scale > c->precision || c->scale > 38)
			return ps__bl_fail(r, field, "DECIMAL(%u,%u) is not a valid type", m[0], m[1]);
		break;
	case PS_MYSQL_TYPE_STRING:
	case PS_MYSQL_TYPE_ENUM:
	case PS_MYSQL_TYPE_SET:
		c->meta = (uint16_t)(m[0] << 8 | m[1]);
		if (c->type == PS_MYSQL_TYPE_STRING && (m[0] & 0x30) != 0x30) {
			/* a CHAR longer than 255 bytes keeps bits 8-9 of its length
			 * in the (inverted) bits 4-5 of the type byte */
			c->real_type = m[0] | 0x30;
			c->max_bytes = m[1] | (uint32_t)((m[0] & 0x30) ^ 0x30) << 4;
		} else {
			c->real_type = c->type == PS_MYSQL_TYPE_STRING ? m[0] : c->type;
			c->max_bytes = m[1];
		}
		if (c->real_type == PS_MYSQL_TYPE_ENUM) {
			if (c->max_bytes != 1 && c->max_bytes != 2)
				return ps__bl_fail(r, field, "ENUM of %u bytes", (unsigned)c->max_bytes);
		} else if (c->real_type == PS_MYSQL_TYPE_SET) {
			if (c->max_bytes < 1 || c->max_bytes > 8)
				return ps__bl_fail(r, field, "SET of %u bytes", (unsigned)c->max_bytes);
		} else if (c->real_type != PS_MYSQL_TYPE_STRING) {
			return ps__bl_fail(r, field, "CHAR of real type %u", c->real_type);
		}
		break;
	default:
		break;
	}
	return PS_OK;
}

/* --- the fixed part ------------------------------------------------------------------- */

static int read_name(bl_reader *r, const uint8_t **s, uint8_t *len, const char *field)
{
	const uint8_t *p = NULL;
	int rc = bl_u8(r, len, field);

	if (rc == PS_OK)
		rc = bl_bytes(r, (size_t)*len + 1, &p, field);
	if (rc != PS_OK)
		return rc;
	if (p[*len] != '\0' || memchr(p, '\0', *len))
		return ps__bl_fail(r, field, "name of %u bytes is not NUL-terminated", *len);
	*s = p;
	return PS_OK;
}

static int parse_fixed(tm_parse *p)
{
	bl_reader *r = &p->r;
	uint64_t ncols = 0, meta_len = 0;
	size_t want = 0;
	int rc = read_name(r, &p->db, &p->db_len, "database name");

	if (rc == PS_OK)
		rc = read_name(r, &p->tbl, &p->tbl_len, "table name");
	if (rc == PS_OK)
		rc = ps__bl_packed_max(r, MAX_COLUMNS, &ncols, "column count");
	if (rc == PS_OK && ncols == 0)
		rc = ps__bl_fail(r, "column count", "0 columns");
	if (rc == PS_OK)
		rc = bl_bytes(r, (size_t)ncols, &p->types, "column types");
	if (rc == PS_OK)
		rc = ps__bl_packed_max(r, UINT32_MAX, &meta_len, "metadata length");
	if (rc == PS_OK)
		rc = bl_bytes(r, (size_t)meta_len, &p->meta, "column metadata");
	if (rc == PS_OK)
		rc = bl_bytes(r, ((size_t)ncols + 7) / 8, &p->nulls, "null bitmap");
	if (rc != PS_OK)
		return rc;
	p->ncols = (uint32_t)ncols;
	p->meta_len = (size_t)meta_len;
	for (uint32_t i = 0; i < p->ncols; i++)
		want += meta_size(p->types[i]);
	if (want != p->meta_len)
		return ps__bl_fail(r, "column metadata", "%zu bytes, the column types need %zu",
		                   p->meta_len, want);
	return PS_OK;
}

/* First pass over the optional metadata: where each field is, and how many
 * ENUM/SET labels they hold. */
static int scan_optional(tm_parse *p)
{
	bl_reader *r = &p->r;

	while (bl_left(r) > 0) {
		uint8_t type = 0;
		uint64_t len = 0;
		int rc = bl_u8(r, &type, "optional metadata type");

		if (rc == PS_OK)
			rc = ps__bl_packed_len(r, &len, "optional metadata length");
		if (rc != PS_OK)
			return rc;
		if (type > 0 && type < OPT_MAX) {
			p->opt[type].present = true;
			p->opt[type].pos = r->pos;
			p->opt[type].len = (size_t)len;
		}
		r->pos += (size_t)len;
	}
	for (int type = OPT_SET_STR_VALUE; type <= OPT_ENUM_STR_VALUE; type++) {
		bl_reader sub;

		if (!p->opt[type].present)
			continue;
		bl_init(&sub, r->buf + p->opt[type].pos, p->opt[type].len,
		        r->base + p->opt[type].pos, r->what, r->err);
		while (bl_left(&sub) > 0) {
			uint64_t count = 0;
			int rc = ps__bl_packed_max(&sub, bl_left(&sub), &count, opt_names[type]);

			for (uint64_t i = 0; rc == PS_OK && i < count; i++) {
				uint64_t len = 0;

				rc = ps__bl_packed_len(&sub, &len, opt_names[type]);
				if (rc == PS_OK)
					sub.pos += (size_t)len;
			}
			if (rc != PS_OK)
				return rc;
			if (count > UINT32_MAX - p->nlabels)
				return ps__bl_fail(&sub, opt_names[type], "too many labels");
			p->nlabels += (uint32_t)count;
		}
	}
	return PS_OK;
}

/* --- the table's allocation ------------------------------------------------------------ */

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int alloc_table(tm_parse *p, const ps_binlog_event *ev)
{
	size_t off_cols = align8(sizeof(ps_binlog_table));
	size_t off_labels = align8(off_cols + (size_t)p->ncols * sizeof(ps_binlog_column));
	size_t off_lens = off_labels + (size_t)p->nlabels * sizeof(char *);
	size_t off_raw = off_lens + (size_t)p->nlabels * sizeof(uint32_t);
	size_t off_chars = off_raw + ev->body_len;
	/* every string is copied from the body and gets a NUL */
	size_t nchars = ev->body_len + (size_t)p->ncols + p->nlabels + 2;
	char *mem = calloc(1, off_chars + nchars);
	ps_binlog_table *t;

	if (!mem)
		return ps__bl_fail_code(&p->r, PS_ENOMEM, "table", "out of memory for %" PRIu32
		                        " columns", p->ncols);
	t = (ps_binlog_table *)mem;
	t->columns = (ps_binlog_column *)(mem + off_cols);
	p->labels = (const char **)(mem + off_labels);
	p->label_lens = (uint32_t *)(mem + off_lens);
	memcpy(mem + off_raw, ev->body, ev->body_len);
	t->raw = (const uint8_t *)(mem + off_raw);
	t->raw_len = ev->body_len;
	p->chars = mem + off_chars;
	p->chars_end = p->chars + nchars;
	p->t = t;
	return PS_OK;
}

/* Copies n bytes of the body into the arena, NUL-terminated. */
static const char *arena_copy(tm_parse *p, const uint8_t *s, size_t n)
{
	char *out = p->chars;

	if ((size_t)(p->chars_end - p->chars) < n + 1)
		return NULL;       /* cannot happen: the arena is sized for the body */
	memcpy(out, s, n);
	out[n] = '\0';
	p->chars += n + 1;
	return out;
}

/* --- the optional fields ------------------------------------------------------------------ */

static void opt_reader(tm_parse *p, int type, bl_reader *sub)
{
	bl_init(sub, p->r.buf + p->opt[type].pos, p->opt[type].len,
	        p->r.base + p->opt[type].pos, p->r.what, p->r.err);
}

static int opt_end(bl_reader *sub, int type)
{
	char where[64];

	if (bl_left(sub) == 0)
		return PS_OK;
	ps__bl_where(sub, sub->pos, where, sizeof(where));
	return ps__bl_fail(sub, opt_names[type], "%zu bytes left over at %s", bl_left(sub), where);
}

static int opt_signedness(tm_parse *p)
{
	ps_binlog_table *t = p->t;
	bl_reader sub;
	uint32_t n = 0;

	opt_reader(p, OPT_SIGNEDNESS, &sub);
	for (uint32_t i = 0; i < t->ncolumns; i++)
		if (t->columns[i].is_numeric)
			n++;
	if (sub.len != ((size_t)n + 7) / 8)
		return ps__bl_fail(&sub, "SIGNEDNESS", "%zu bytes for %" PRIu32 " numeric columns",
		                   sub.len, n);
	n = 0;
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		if (!t->columns[i].is_numeric)
			continue;
		t->columns[i].is_unsigned = (sub.buf[n / 8] >> (7 - n % 8)) & 1;
		n++;
	}
	t->has |= PS_BINLOG_HAS_SIGNEDNESS;
	return PS_OK;
}

typedef bool (*column_pred)(const ps_binlog_column *);

/* DEFAULT_CHARSET / ENUM_AND_SET_DEFAULT_CHARSET: a default, then (index
 * among the covered columns, collation) for each column that differs. */
static int opt_default_charset(tm_parse *p, int type, column_pred covered, bool labels)
{
	ps_binlog_table *t = p->t;
	bl_reader sub;
	uint64_t def = 0, n = 0;
	int rc;

	opt_reader(p, type, &sub);
	rc = ps__bl_packed_max(&sub, UINT32_MAX, &def, opt_names[type]);
	if (rc != PS_OK)
		return rc;
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		if (!covered(&t->columns[i]))
			continue;
		if (labels)
			t->columns[i].label_collation = (uint32_t)def;
		else
			t->columns[i].collation = (uint32_t)def;
		n++;
	}
	while (bl_left(&sub) > 0) {
		uint64_t index = 0, coll = 0, seen = 0;

		rc = ps__bl_packed_max(&sub, n ? n - 1 : 0, &index, opt_names[type]);
		if (rc == PS_OK && n == 0)
			rc = ps__bl_fail(&sub, opt_names[type], "a column entry, and no column it covers");
		if (rc == PS_OK)
			rc = ps__bl_packed_max(&sub, UINT32_MAX, &coll, opt_names[type]);
		if (rc != PS_OK)
			return rc;
		for (uint32_t i = 0; i < t->ncolumns; i++) {
			if (!covered(&t->columns[i]))
				continue;
			if (seen++ != index)
				continue;
			if (labels)
				t->columns[i].label_collation = (uint32_t)coll;
			else
				t->columns[i].collation = (uint32_t)coll;
			break;
		}
	}
	return PS_OK;
}

/* COLUMN_CHARSET / ENUM_AND_SET_COLUMN_CHARSET: one collation a column. */
static int opt_column_charset(tm_parse *p, int type, column_pred covered, bool labels)
{
	ps_binlog_table *t = p->t;
	bl_reader sub;

	opt_reader(p, type, &sub);
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		uint64_t coll = 0;
		int rc;

		if (!covered(&t->columns[i]))
			continue;
		rc = ps__bl_packed_max(&sub, UINT32_MAX, &coll, opt_names[type]);
		if (rc != PS_OK)
			return rc;
		if (labels)
			t->columns[i].label_collation = (uint32_t)coll;
		else
			t->columns[i].collation = (uint32_t)coll;
	}
	return opt_end(&sub, type);
}

static int opt_names_field(tm_parse *p)
{
	ps_binlog_table *t = p->t;
	bl_reader sub;

	opt_reader(p, OPT_COLUMN_NAME, &sub);
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		uint64_t len = 0;
		const uint8_t *s = NULL;
		int rc = ps__bl_packed_len(&sub, &len, "COLUMN_NAME");

		if (rc == PS_OK)
			rc = bl_bytes(&sub, (size_t)len, &s, "COLUMN_NAME");
		if (rc != PS_OK)
			return rc;
		if (memchr(s, '\0', (size_t)len))
			return ps__bl_fail(&sub, "COLUMN_NAME", "name of column %" PRIu32
			                   " holds a NUL byte", i + 1);
		t->columns[i].name = arena_copy(p, s, (size_t)len);
	}
	t->has |= PS_BINLOG_HAS_NAMES;
	return opt_end(&sub, OPT_COLUMN_NAME);
}

/* SET_STR_VALUE / ENUM_STR_VALUE: for each such column, a count and the
 * labels. */
static int opt_labels(tm_parse *p, int type, uint8_t real_type)
{
	ps_binlog_table *t = p->t;
	bl_reader sub;

	opt_reader(p, type, &sub);
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		ps_binlog_column *c = &t->columns[i];
		uint64_t count = 0;
		int rc;

		if (c->real_type != real_type)
			continue;
		rc = ps__bl_packed_max(&sub, bl_left(&sub), &count, opt_names[type]);
		if (rc != PS_OK)
			return rc;
		if (real_type == PS_MYSQL_TYPE_SET && count > 64)
			return ps__bl_fail(&sub, opt_names[type], "SET column %" PRIu32 " with %" PRIu64
			                   " labels, at most 64", i + 1, count);
		if (count > p->nlabels - p->labels_used)
			return ps__bl_fail(&sub, opt_names[type], "more labels than counted");
		c->labels = p->labels + p->labels_used;
		c->label_lens = p->label_lens + p->labels_used;
		c->nlabels = (uint32_t)count;
		for (uint64_t k = 0; k < count; k++) {
			uint64_t len = 0;
			const uint8_t *s = NULL;

			rc = ps__bl_packed_len(&sub, &len, opt_names[type]);
			if (rc == PS_OK)
				rc = bl_bytes(&sub, (size_t)len, &s, opt_names[type]);
			if (rc != PS_OK)
				return rc;
			p->labels[p->labels_used] = arena_copy(p, s, (size_t)len);
			p->label_lens[p->labels_used] = (uint32_t)len;
			p->labels_used++;
		}
	}
	t->has |= type == OPT_SET_STR_VALUE ? PS_BINLOG_HAS_SET_LABELS : PS_BINLOG_HAS_ENUM_LABELS;
	return opt_end(&sub, type);
}

static int opt_geometry(tm_parse *p)
{
	ps_binlog_table *t = p->t;
	bl_reader sub;

	opt_reader(p, OPT_GEOMETRY_TYPE, &sub);
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		uint64_t g = 0;
		int rc;

		if (t->columns[i].type != PS_MYSQL_TYPE_GEOMETRY)
			continue;
		rc = ps__bl_packed_max(&sub, UINT32_MAX, &g, "GEOMETRY_TYPE");
		if (rc != PS_OK)
			return rc;
		t->columns[i].geometry_type = (uint32_t)g;
	}
	t->has |= PS_BINLOG_HAS_GEOMETRY_TYPES;
	return opt_end(&sub, OPT_GEOMETRY_TYPE);
}

static int opt_primary_key(tm_parse *p, int type)
{
	ps_binlog_table *t = p->t;
	bl_reader sub;
	uint16_t seq = 0;

	opt_reader(p, type, &sub);
	while (bl_left(&sub) > 0) {
		uint64_t index = 0, prefix = 0;
		int rc = ps__bl_packed_max(&sub, t->ncolumns - 1, &index, opt_names[type]);

		if (rc == PS_OK && type == OPT_PRIMARY_KEY_WITH_PREFIX)
			rc = ps__bl_packed_max(&sub, UINT32_MAX, &prefix, opt_names[type]);
		if (rc != PS_OK)
			return rc;
		if (t->columns[index].is_key)
			return ps__bl_fail(&sub, opt_names[type], "column %" PRIu64 " listed twice",
			                   index + 1);
		t->columns[index].is_key = true;
		t->columns[index].key_seq = ++seq;
		t->columns[index].key_prefix = (uint32_t)prefix;
	}
	t->has |= PS_BINLOG_HAS_PRIMARY_KEY;
	return PS_OK;
}

static int parse_optional(tm_parse *p)
{
	int rc = PS_OK;

	if (p->opt[OPT_SIGNEDNESS].present)
		rc = opt_signedness(p);
	if (rc == PS_OK && p->opt[OPT_DEFAULT_CHARSET].present)
		rc = opt_default_charset(p, OPT_DEFAULT_CHARSET, is_character, false);
	if (rc == PS_OK && p->opt[OPT_COLUMN_CHARSET].present)
		rc = opt_column_charset(p, OPT_COLUMN_CHARSET, is_character, false);
	if (rc == PS_OK && (p->opt[OPT_DEFAULT_CHARSET].present || p->opt[OPT_COLUMN_CHARSET].present))
		p->t->has |= PS_BINLOG_HAS_CHARSETS;
	if (rc == PS_OK && p->opt[OPT_ENUM_AND_SET_DEFAULT_CHARSET].present)
		rc = opt_default_charset(p, OPT_ENUM_AND_SET_DEFAULT_CHARSET, is_enum_or_set, true);
	if (rc == PS_OK && p->opt[OPT_ENUM_AND_SET_COLUMN_CHARSET].present)
		rc = opt_column_charset(p, OPT_ENUM_AND_SET_COLUMN_CHARSET, is_enum_or_set, true);
	if (rc == PS_OK && (p->opt[OPT_ENUM_AND_SET_DEFAULT_CHARSET].present ||
	                    p->opt[OPT_ENUM_AND_SET_COLUMN_CHARSET].present))
		p->t->has |= PS_BINLOG_HAS_ENUM_SET_CHARSETS;
	if (rc == PS_OK && p->opt[OPT_COLUMN_NAME].present)
		rc = opt_names_field(p);
	if (rc == PS_OK && p->opt[OPT_SET_STR_VALUE].present)
		rc = opt_labels(p, OPT_SET_STR_VALUE, PS_MYSQL_TYPE_SET);
	if (rc == PS_OK && p->opt[OPT_ENUM_STR_VALUE].present)
		rc = opt_labels(p, OPT_ENUM_STR_VALUE, PS_MYSQL_TYPE_ENUM);
	if (rc == PS_OK && p->opt[OPT_GEOMETRY_TYPE].present)
		rc = opt_geometry(p);
	if (rc == PS_OK && p->opt[OPT_SIMPLE_PRIMARY_KEY].present)
		rc = opt_primary_key(p, OPT_SIMPLE_PRIMARY_KEY);
	if (rc == PS_OK && p->opt[OPT_PRIMARY_KEY_WITH_PREFIX].present)
		rc = opt_primary_key(p, OPT_PRIMARY_KEY_WITH_PREFIX);
	if (rc == PS_OK && p->opt[OPT_COLUMN_VISIBILITY].present)
		p->t->has |= PS_BINLOG_HAS_VISIBILITY;
	return rc;
}

/* --- public ----------------------------------------------------------------------------------- */

int ps_binlog_table_map_parse(ps_binlog_table **out, const ps_binlog_event *ev, ps_error *err)
{
	tm_parse p;
	const uint8_t *m;
	int rc;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	if (ev->kind != PS_BINLOG_EV_TABLE_MAP)
		return ps_error_set(err, PS_EINVAL, "binlog: ps_binlog_table_map_parse on a %s event",
		                    ev->type_name ? ev->type_name : "?");
	/* offsets in messages count from the start of the event */
	bl_init(&p.r, ev->body, ev->body_len,
	        ev->header.event_len - ev->body_len - (ev->has_checksum ? PS_BINLOG_CHECKSUM_LEN : 0),
	        "Table_map", err);
	p.r.pos = ev->u.table_map.data_pos;
	rc = parse_fixed(&p);
	if (rc == PS_OK)
		rc = scan_optional(&p);
	if (rc == PS_OK)
		rc = alloc_table(&p, ev);
	if (rc != PS_OK)
		return rc;

	p.t->table_id = ev->u.table_map.table_id;
	p.t->flags = ev->u.table_map.flags;
	p.t->ncolumns = p.ncols;
	p.t->db = arena_copy(&p, p.db, p.db_len);
	p.t->name = arena_copy(&p, p.tbl, p.tbl_len);
	m = p.meta;
	for (uint32_t i = 0; i < p.ncols && rc == PS_OK; i++) {
		ps_binlog_column *c = &p.t->columns[i];

		rc = column_from_meta(&p, i, m);
		m += meta_size(p.types[i]);
		c->nullable = (p.nulls[i / 8] >> (i % 8)) & 1;
		c->is_numeric = is_numeric(c);
	}
	if (rc == PS_OK)
		rc = parse_optional(&p);
	if (rc != PS_OK) {
		free(p.t);
		return rc;
	}
	*out = p.t;
	return PS_OK;
}

void ps_binlog_table_free(ps_binlog_table *t)
{
	free(t);
}

bool ps_binlog_table_map_same(const ps_binlog_table *t, const ps_binlog_event *ev)
{
	return t && ev->kind == PS_BINLOG_EV_TABLE_MAP && t->raw_len == ev->body_len &&
	       memcmp(t->raw, ev->body, ev->body_len) == 0;
}

int ps_binlog_label_text(const ps_binlog_column *c, uint32_t i, ps_buf *out, ps_error *err)
{
	char why[160];
	int rc;

	if (i >= c->nlabels)
		return ps_error_set(err, PS_EINVAL, "binlog: column `%s` has no label %" PRIu32,
		                    c->name ? c->name : "?", i + 1);
	rc = ps__binlog_to_utf8(out, (const uint8_t *)c->labels[i], c->label_lens[i],
	                        c->label_collation, why, sizeof(why));
	if (rc == PS_EPROTO)
		return ps_error_set(err, rc, "binlog: column `%s` label %" PRIu32 ": %s",
		                    c->name ? c->name : "?", i + 1, why);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "binlog: column `%s` label %" PRIu32 ": %s",
		                    c->name ? c->name : "?", i + 1,
		                    rc == PS_ETOOBIG ? "over the buffer's limit" : "out of memory");
	return PS_OK;
}

int ps_binlog_table_column_index(const ps_binlog_table *t, const char *name)
{
	for (uint32_t i = 0; i < t->ncolumns; i++)
		if (t->columns[i].name && strcmp(t->columns[i].name, name) == 0)
			return (int)i;
	return -1;
}

void ps_binlog_column_describe(const ps_binlog_column *c, char *buf, size_t len)
{
	const char *u = c->is_unsigned ? " unsigned" : "";
	bool binary = c->collation == PS_BINLOG_COLLATION_BINARY;

	switch (c->ext) {
	case PS_BINLOG_EXT_UUID: snprintf(buf, len, "uuid"); return;
	case PS_BINLOG_EXT_INET6: snprintf(buf, len, "inet6"); return;
	case PS_BINLOG_EXT_INET4: snprintf(buf, len, "inet4"); return;
	default: break;
	}
	switch (c->real_type) {
	case PS_MYSQL_TYPE_TINY: snprintf(buf, len, "tinyint%s", u); break;
	case PS_MYSQL_TYPE_SHORT: snprintf(buf, len, "smallint%s", u); break;
	case PS_MYSQL_TYPE_INT24: snprintf(buf, len, "mediumint%s", u); break;
	case PS_MYSQL_TYPE_LONG: snprintf(buf, len, "int%s", u); break;
	case PS_MYSQL_TYPE_LONGLONG: snprintf(buf, len, "bigint%s", u); break;
	case PS_MYSQL_TYPE_FLOAT: snprintf(buf, len, "float%s", u); break;
	case PS_MYSQL_TYPE_DOUBLE: snprintf(buf, len, "double%s", u); break;
	case PS_MYSQL_TYPE_NEWDECIMAL:
		snprintf(buf, len, "decimal(%u,%u)%s", c->precision, c->scale, u);
		break;
	case PS_MYSQL_TYPE_YEAR: snprintf(buf, len, "year"); break;
	case PS_MYSQL_TYPE_DATE:
	case PS_MYSQL_TYPE_NEWDATE: snprintf(buf, len, "date"); break;
	case PS_MYSQL_TYPE_TIME: snprintf(buf, len, "time"); break;
	case PS_MYSQL_TYPE_TIME2: snprintf(buf, len, "time(%u)", c->fsp); break;
	case PS_MYSQL_TYPE_DATETIME: snprintf(buf, len, "datetime"); break;
	case PS_MYSQL_TYPE_DATETIME2: snprintf(buf, len, "datetime(%u)", c->fsp); break;
	case PS_MYSQL_TYPE_TIMESTAMP: snprintf(buf, len, "timestamp"); break;
	case PS_MYSQL_TYPE_TIMESTAMP2: snprintf(buf, len, "timestamp(%u)", c->fsp); break;
	case PS_MYSQL_TYPE_BIT: snprintf(buf, len, "bit(%u)", (unsigned)c->bits); break;
	case PS_MYSQL_TYPE_VARCHAR:
	case PS_MYSQL_TYPE_VAR_STRING:
		snprintf(buf, len, "%s(%u bytes)", binary ? "varbinary" : "varchar",
		         (unsigned)c->max_bytes);
		break;
	case PS_MYSQL_TYPE_STRING:
		snprintf(buf, len, "%s(%u bytes)", binary ? "binary" : "char", (unsigned)c->max_bytes);
		break;
	case PS_MYSQL_TYPE_ENUM: snprintf(buf, len, "enum"); break;
	case PS_MYSQL_TYPE_SET: snprintf(buf, len, "set"); break;
	case PS_MYSQL_TYPE_TINY_BLOB: snprintf(buf, len, binary ? "tinyblob" : "tinytext"); break;
	case PS_MYSQL_TYPE_BLOB: snprintf(buf, len, binary ? "blob" : "text"); break;
	case PS_MYSQL_TYPE_MEDIUM_BLOB: snprintf(buf, len, binary ? "mediumblob" : "mediumtext"); break;
	case PS_MYSQL_TYPE_LONG_BLOB: snprintf(buf, len, binary ? "longblob" : "longtext"); break;
	case PS_MYSQL_TYPE_GEOMETRY: snprintf(buf, len, "geometry"); break;
	case PS_MYSQL_TYPE_JSON: snprintf(buf, len, "json"); break;
	default: snprintf(buf, len, "type %u", c->real_type); break;
	}
}

/* --- cache ------------------------------------------------------------------------------------- */

typedef struct cache_slot {
	uint64_t id;
	ps_binlog_table *table;   /* NULL when empty */
} cache_slot;

struct ps_binlog_tablecache {
	cache_slot *slots;
	size_t cap;               /* power of two, or 0 */
	size_t count;
};

static size_t id_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id;
}

static cache_slot *cache_find(cache_slot *slots, size_t cap, uint64_t id)
{
	size_t mask = cap - 1, i = id_hash(id) & mask;

	while (slots[i].table && slots[i].id != id)
		i = (i + 1) & mask;
	return &slots[i];
}

ps_binlog_tablecache *ps_binlog_tablecache_new(void)
{
	return calloc(1, sizeof(ps_binlog_tablecache));
}

static void cache_empty(ps_binlog_tablecache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		ps_binlog_table_free(c->slots[i].table);
		c->slots[i].table = NULL;
	}
	c->count = 0;
}

void ps_binlog_tablecache_free(ps_binlog_tablecache *c)
{
	if (!c)
		return;
	cache_empty(c);
	free(c->slots);
	free(c);
}

static int cache_grow(ps_binlog_tablecache *c)
{
	size_t cap = c->cap ? c->cap * 2 : 64;
	cache_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return PS_ENOMEM;
	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i].table)
			*cache_find(slots, cap, c->slots[i].id) = c->slots[i];
	free(c->slots);
	c->slots = slots;
	c->cap = cap;
	return PS_OK;
}

ps_binlog_table *ps_binlog_tablecache_get(ps_binlog_tablecache *c, uint64_t table_id)
{
	if (!c || c->cap == 0)
		return NULL;
	return cache_find(c->slots, c->cap, table_id)->table;
}

int ps_binlog_tablecache_put(ps_binlog_tablecache *c, const ps_binlog_event *ev,
                             ps_binlog_table **out, bool *replaced, ps_error *err)
{
	ps_binlog_table *t = NULL, *old = ps_binlog_tablecache_get(c, ev->u.table_map.table_id);
	cache_slot *slot;
	int rc;

	if (replaced)
		*replaced = false;
	if (out)
		*out = NULL;
	if (ev->kind != PS_BINLOG_EV_TABLE_MAP)
		return ps_error_set(err, PS_EINVAL, "binlog: table cache put of a %s event",
		                    ev->type_name ? ev->type_name : "?");
	if (old && ps_binlog_table_map_same(old, ev)) {
		if (out)
			*out = old;
		return PS_OK;
	}
	rc = ps_binlog_table_map_parse(&t, ev, err);
	if (rc != PS_OK)
		return rc;
	if (!old && c->count >= PS_BINLOG_TABLECACHE_MAX)
		cache_empty(c);
	if (!old && (c->count + 1) * 4 > c->cap * 3 && cache_grow(c) != PS_OK) {
		ps_binlog_table_free(t);
		return ps_error_set(err, PS_ENOMEM, "binlog: table cache: out of memory");
	}
	slot = cache_find(c->slots, c->cap, t->table_id);
	if (slot->table) {
		ps_binlog_table_free(slot->table);
		if (replaced)
			*replaced = true;
	} else {
		c->count++;
	}
	slot->id = t->table_id;
	slot->table = t;
	if (out)
		*out = t;
	return PS_OK;
}
