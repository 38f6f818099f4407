/*
 * rows.c — sets of rows read from either side, and what differs between two
 * of them.
 *
 * A row is one allocation: the cmp_row's arrays and every value's bytes
 * (NUL-terminated), and its canonical key. Keys are compared as bytes; both
 * sets are sorted by them and merged, so the order each engine returned the
 * rows in does not matter. A set holds at most `limit` rows (the caller's
 * bound on memory); one more is PS_ETOOBIG.
 */
#include <stdlib.h>
#include <string.h>

#include "compare/cmp_internal.h"

void ps__cmp_rows_init(cmp_rows *s, size_t limit)
{
	memset(s, 0, sizeof(*s));
	s->limit = limit;
}

void ps__cmp_rows_free(cmp_rows *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->r[i].key);   /* the row's one block */
	free(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
}

int ps__cmp_rows_add(cmp_rows *s, const cmp_table *t, const char *const *vals,
                     const size_t *lens, ps_error *err)
{
	ps_buf key;
	size_t bytes, off;
	char *block = NULL;
	cmp_row *r;
	int rc = PS_OK;

	ps_buf_init(&key, CMP_VALUE_MAX);
	if (s->n >= s->limit) {
		rc = ps_error_set(err, PS_ETOOBIG, "more than %zu rows in one range of table %s.%s; "
		                  "use a smaller --chunk-rows", s->limit, t->schema, t->name);
		goto cleanup;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		cmp_row *nr = realloc(s->r, cap * sizeof(*nr));
		if (!nr) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory reading rows");
			goto cleanup;
		}
		s->r = nr;
		s->cap = cap;
	}
	for (int k = 0; k < t->nkey; k++) {
		int c = t->key[k];
		size_t at = key.len;
		uint32_t n;

		/* 4-byte length slot, then the canonical text; NULL keys do not
		 * happen (key columns are NOT NULL) but get length 0xffffffff. */
		if (ps_buf_append(&key, "\0\0\0\0", 4) != PS_OK ||
		    (vals[c] && ps__cmp_canon(t->kind[c], vals[c], lens[c], &key) != PS_OK)) {
			rc = ps_error_set(err, PS_ENOMEM, "out of memory building a key");
			goto cleanup;
		}
		n = vals[c] ? (uint32_t)(key.len - at - 4) : 0xffffffffu;
		/* big-endian, so that memcmp orders by length first per column */
		key.data[at] = (char)(n >> 24);
		key.data[at + 1] = (char)(n >> 16);
		key.data[at + 2] = (char)(n >> 8);
		key.data[at + 3] = (char)n;
	}
	bytes = key.len + 1 + (size_t)t->ncols * (sizeof(char *) + sizeof(size_t));
	for (int i = 0; i < t->ncols; i++)
		if (vals[i])
			bytes += lens[i] + 1;
	block = malloc(bytes + sizeof(void *));
	if (!block) {
		rc = ps_error_set(err, PS_ENOMEM, "out of memory reading rows");
		goto cleanup;
	}
	r = &s->r[s->n];
	/* layout: key bytes at the front (so free(r->key) frees all), then
	 * aligned pointer arrays, then values */
	r->key = block;
	r->keylen = key.len;
	if (key.len)
		memcpy(block, key.data, key.len);
	block[key.len] = '\0';
	off = (key.len + 1 + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
	r->val = (char **)(void *)(block + off);
	off += (size_t)t->ncols * sizeof(char *);
	r->len = (size_t *)(void *)(block + off);
	off += (size_t)t->ncols * sizeof(size_t);
	for (int i = 0; i < t->ncols; i++) {
		if (!vals[i]) {
			r->val[i] = NULL;
			r->len[i] = 0;
			continue;
		}
		r->val[i] = block + off;
		memcpy(r->val[i], vals[i], lens[i]);
		r->val[i][lens[i]] = '\0';
		r->len[i] = lens[i];
		off += lens[i] + 1;
	}
	s->n++;
	block = NULL;
cleanup:
	free(block);
	ps_buf_free(&key);
	return rc;
}

static int key_cmp(const cmp_row *a, const cmp_row *b)
{
	size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
	int c = n ? memcmp(a->key, b->key, n) : 0;

	if (c != 0)
		return c;
	return a->keylen < b->keylen ? -1 : a->keylen > b->keylen;
}

static int row_cmp(const void *a, const void *b)
{
	return key_cmp(a, b);
}

void ps__cmp_rows_sort(cmp_rows *s)
{
	if (s->n > 1)
		qsort(s->r, s->n, sizeof(*s->r), row_cmp);
}

void ps__cmp_items_free(cmp_items *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static int items_push(cmp_items *d, int kind, const cmp_row *src, const cmp_row *tgt,
                      ps_error *err)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		cmp_item *nv = realloc(d->v, cap * sizeof(*nv));
		if (!nv)
			return ps_error_set(err, PS_ENOMEM, "out of memory listing differences");
		d->v = nv;
		d->cap = cap;
	}
	d->v[d->n].kind = kind;
	d->v[d->n].src = src;
	d->v[d->n].tgt = tgt;
	d->n++;
	return PS_OK;
}

static bool rows_equal(const cmp_table *t, const cmp_row *a, const cmp_row *b)
{
	for (int i = 0; i < t->ncols; i++)
		if (!ps__cmp_equal(t->kind[i], a->val[i], a->len[i], b->val[i], b->len[i]))
			return false;
	return true;
}

int ps__cmp_rows_diff(const cmp_table *t, cmp_rows *src, cmp_rows *tgt, cmp_items *d,
                      ps_error *err)
{
	size_t i = 0, j = 0;
	int rc = PS_OK;

	ps__cmp_rows_sort(src);
	ps__cmp_rows_sort(tgt);
	while (rc == PS_OK && (i < src->n || j < tgt->n)) {
		int c = i >= src->n ? 1 : j >= tgt->n ? -1 : key_cmp(&src->r[i], &tgt->r[j]);

		if (c < 0) {
			rc = items_push(d, PS_DIFF_MISSING_IN_TARGET, &src->r[i++], NULL, err);
		} else if (c > 0) {
			rc = items_push(d, PS_DIFF_EXTRA_IN_TARGET, NULL, &tgt->r[j++], err);
		} else {
			if (!rows_equal(t, &src->r[i], &tgt->r[j]))
				rc = items_push(d, PS_DIFF_DIFFERENT, &src->r[i], &tgt->r[j], err);
			i++;
			j++;
		}
	}
	return rc;
}

const cmp_row *ps__cmp_item_row(const cmp_item *it)
{
	return it->src ? it->src : it->tgt;
}

void ps__cmp_bound_free(cmp_bound *b)
{
	if (!b || !b->v)
		return;
	for (size_t i = 0; b->v[i]; i++)
		free(b->v[i]);
	free(b->v);
	b->v = NULL;
}

int ps__cmp_bound_from_row(cmp_bound *b, const cmp_table *t, const cmp_row *r)
{
	b->v = calloc((size_t)t->nkey + 1, sizeof(char *));
	if (!b->v)
		return PS_ENOMEM;
	for (int k = 0; k < t->nkey; k++) {
		const char *v = r->val[t->key[k]];
		b->v[k] = strdup(v ? v : "");
		if (!b->v[k]) {
			ps__cmp_bound_free(b);
			return PS_ENOMEM;
		}
	}
	return PS_OK;
}
