/*
 * fuzz_pgoutput.c — libFuzzer entry point for the pgoutput decoder
 * (src/source/pg/pgoutput.c): arbitrary bytes as the payloads of XLogData
 * messages, one relation cache across them, as the replication stream of
 * one connection would hand them over.
 *
 * Input: frames back to back, each a 16-bit big-endian length and that many
 * bytes (the last frame takes what is left when its length runs past the
 * end). A frame is one pgoutput message, except that a frame starting with
 * '#' holds the text of an LSN ("16/B374D848") for pgo_lsn_parse.
 *
 * What must hold, besides no crash, sanitizer report or leak:
 *   - a decoded message is of the kind of its first byte; a row change has
 *     one change of its relation with the images its kind carries, every
 *     text value NUL-terminated at its length; a Truncate has one change per
 *     relation; a Relation message is what the cache now holds for its id;
 *   - a refused message is PS_EPROTO (or PS_ENOMEM), leaves nothing in the
 *     msg, and its error is one line starting "pgoutput";
 *   - an LSN that parses formats back to the same value, and a formatted
 *     LSN parses back.
 *   - every decoded change renders as the event the JSON-lines and Kafka
 *     sinks write (src/sink/envelope.c): one line that is valid JSON,
 *     whatever bytes its values held.
 * Changes are kept until the end of the input (at most KEEP of them), so a
 * Relation message replacing a table that changes still point at is
 * exercised as on the real stream.
 *
 * Seeds: tests/fuzz/corpus/pgoutput/ (make_corpus_pgoutput.py: the unit
 * tests' fixtures and messages a real PostgreSQL 15 sent).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sink/envelope.h"
#include "source/pg/pgoutput.h"

#define KEEP 64

static void check_values(const ps_value *vals, int n)
{
	for (int i = 0; vals && i < n; i++) {
		const ps_value *v = &vals[i];

		switch (v->kind) {
		case PS_VALUE_TEXT:
			if (!v->data || v->data[v->len] != '\0')
				abort();
			break;
		case PS_VALUE_NULL:
		case PS_VALUE_UNCHANGED:
			break;
		default:
			abort();
		}
	}
}

static void check_change(const pgo_msg *m, const ps_change *c, pgo_relcache *cache)
{
	int n;

	if (!c)
		abort();
	if (m->kind == PGO_MESSAGE) {
		if (c->op != PS_OP_MESSAGE || c->table || !c->message_prefix ||
		    (c->message_len && !c->message_content))
			abort();
		return;
	}
	if (!c->table)
		abort();
	n = c->table->ncolumns;
	switch (m->kind) {
	case PGO_INSERT:
		if (c->op != PS_OP_INSERT || !c->new_values || c->old_values)
			abort();
		break;
	case PGO_UPDATE:
		if (c->op != PS_OP_UPDATE || !c->new_values)
			abort();
		break;
	case PGO_DELETE:
		if (c->op != PS_OP_DELETE || c->new_values || !c->old_values)
			abort();
		break;
	case PGO_TRUNCATE:
		if (c->op != PS_OP_TRUNCATE || c->new_values || c->old_values)
			abort();
		break;
	default:
		abort();
	}
	/* decoded with the table the cache holds for its id right now */
	if (pgo_relcache_get(cache, c->table->id) != c->table)
		abort();
	check_values(c->new_values, n);
	check_values(c->old_values, n);
}

/* The event a JSON-lines consumer would read for c. */
static void render(ps_envelope *env, const ps_txn *txn, const ps_change *c)
{
	ps_buf line;
	ps_error err;
	json_error_t jerr;
	json_t *doc;

	ps_buf_init(&line, (size_t)64 << 20);
	if (ps_envelope_render(env, &line, txn, c, 1700000000000LL, &err) != PS_OK)
		abort();
	if (line.len == 0 || line.data[line.len - 1] != '\n' || memchr(line.data, '\n', line.len - 1))
		abort();
	/* a NUL byte in a value is \u0000 in the event, and an lsn is an
	 * unsigned 64-bit number: valid JSON both, though PostgreSQL's own text
	 * never holds a NUL and its LSNs stay far below 2^63, beyond which
	 * jansson (like many parsers) refuses an integer */
	doc = json_loadb(line.data, line.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
	if (!doc)
		abort();
	json_decref(doc);
	ps_buf_free(&line);
}

static void check_error(const ps_error *err, const pgo_msg *m, int rc)
{
	static const pgo_msg zero;

	if (rc != PS_EPROTO && rc != PS_ENOMEM)
		abort();
	if (memcmp(m, &zero, sizeof(zero)) != 0)
		abort();
	if (strncmp(err->message, "pgoutput", 8) != 0)
		abort();
	for (const char *p = err->message; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort();
}

static void lsn_text(const uint8_t *p, size_t len)
{
	char text[64], back[32];
	uint64_t lsn = 0, again = 0;

	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	memcpy(text, p, len);
	text[len] = '\0';
	if (pgo_lsn_parse(text, &lsn) != PS_OK)
		return;
	pgo_lsn_format(lsn, back, sizeof(back));
	if (pgo_lsn_parse(back, &again) != PS_OK || again != lsn)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pgo_relcache *cache = pgo_relcache_new();
	ps_change *kept[KEEP];
	size_t nkept = 0, pos = 0;
	ps_envelope env;
	ps_txn txn = {0};
	ps_error ignored;

	if (!cache)
		return 0;
	if (ps_envelope_init(&env, "postgresql", "app", &ignored) != PS_OK) {
		pgo_relcache_free(cache);
		return 0;
	}
	while (pos + 2 <= size) {
		size_t len = (size_t)data[pos] << 8 | data[pos + 1];
		const uint8_t *msg;
		uint8_t *copy;
		ps_error err;
		pgo_msg m;
		int rc;

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		msg = data + pos;
		pos += len;
		if (len > 0 && msg[0] == '#') {
			lsn_text(msg + 1, len - 1);
			continue;
		}
		/* an exact-size copy, so that ASan sees a read past the message */
		copy = malloc(len ? len : 1);
		if (!copy)
			break;
		memcpy(copy, msg, len);
		ps_error_clear(&err);
		rc = pgo_decode(&m, cache, copy, len, 0x16B3F10ull + pos, &err);
		if (rc != PS_OK) {
			check_error(&err, &m, rc);
			free(copy);
			continue;
		}
		if (len == 0 || m.kind != copy[0])
			abort();
		/* values were copied into the changes: the buffer may go */
		memset(copy, 0xA5, len);
		free(copy);
		if (m.kind == PGO_RELATION &&
		    (!m.relation || pgo_relcache_get(cache, m.relation->id) != m.relation))
			abort();
		if (m.kind == PGO_BEGIN) {
			txn.xid = m.xid;
			txn.commit_time_us = m.commit_time_us;
			pgo_lsn_format(m.final_lsn + 1, txn.position, sizeof(txn.position));
		}
		if ((m.kind == PGO_INSERT || m.kind == PGO_UPDATE || m.kind == PGO_DELETE ||
		     m.kind == PGO_MESSAGE) && m.nchanges != 1)
			abort();
		if (m.kind != PGO_INSERT && m.kind != PGO_UPDATE && m.kind != PGO_DELETE &&
		    m.kind != PGO_MESSAGE && m.kind != PGO_TRUNCATE && m.nchanges != 0)
			abort();
		for (size_t i = 0; i < m.nchanges; i++) {
			check_change(&m, m.changes[i], cache);
			render(&env, &txn, m.changes[i]);
			if (nkept == KEEP) {
				ps_change_free(kept[0]);
				memmove(kept, kept + 1, (KEEP - 1) * sizeof(kept[0]));
				nkept--;
			}
			kept[nkept++] = m.changes[i];
			m.changes[i] = NULL;
		}
		pgo_msg_clear(&m);
	}
	/* changes outlive the cache's references to their tables */
	pgo_relcache_free(cache);
	ps_envelope_free(&env);
	for (size_t i = 0; i < nkept; i++) {
		check_values(kept[i]->new_values, kept[i]->table ? kept[i]->table->ncolumns : 0);
		ps_change_free(kept[i]);
	}
	return 0;
}
