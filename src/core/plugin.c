/*
 * plugin.c — registry and call wrappers for source and sink plugins.
 *
 * The registry is two static tables. Adding a plugin means one line here and
 * one `const ps_*_ops` definition in its own file; nothing else in the core
 * knows plugin names.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/plugin.h"
#include "util/buf.h"

extern const ps_source_ops ps_source_pg;
extern const ps_sink_ops ps_sink_jsonl;

static const ps_source_ops *const source_table[] = {&ps_source_pg, NULL};
static const ps_sink_ops *const sink_table[] = {&ps_sink_jsonl, NULL};

uint64_t ps_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int has_scheme(const char *const *schemes, const char *scheme)
{
	for (; schemes && *schemes; schemes++)
		if (strcmp(*schemes, scheme) == 0)
			return 1;
	return 0;
}

static void list_schemes(ps_buf *b, const char *const *schemes)
{
	for (; schemes && *schemes; schemes++)
		ps_buf_printf(b, "%s%s://", b->len ? ", " : "", *schemes);
}

int ps_plugin_check_source(const ps_source_ops *ops, ps_error *err)
{
	const char *missing = NULL;

	if (ops->abi_version != PS_SOURCE_ABI_VERSION)
		return ps_error_set(err, PS_EINVAL,
		                    "source plugin %s has ABI version %d, this build needs %d",
		                    ops->name ? ops->name : "?", ops->abi_version,
		                    PS_SOURCE_ABI_VERSION);
	if (!ops->open) missing = "open";
	else if (!ops->prepare) missing = "prepare";
	else if (!ops->start) missing = "start";
	else if (!ops->read) missing = "read";
	else if (!ops->ack) missing = "ack";
	else if (!ops->position_compare) missing = "position_compare";
	else if (!ops->close) missing = "close";
	else if (!ops->name || !ops->connector || !ops->url_schemes) missing = "name/connector/url_schemes";
	if (missing)
		return ps_error_set(err, PS_EINVAL, "source plugin %s lacks required callback %s",
		                    ops->name ? ops->name : "?", missing);
	return PS_OK;
}

int ps_plugin_check_sink(const ps_sink_ops *ops, ps_error *err)
{
	const char *missing = NULL;

	if (ops->abi_version != PS_SINK_ABI_VERSION)
		return ps_error_set(err, PS_EINVAL,
		                    "sink plugin %s has ABI version %d, this build needs %d",
		                    ops->name ? ops->name : "?", ops->abi_version,
		                    PS_SINK_ABI_VERSION);
	if (!ops->open) missing = "open";
	else if (!ops->write) missing = "write";
	else if (!ops->flush) missing = "flush";
	else if (!ops->close) missing = "close";
	else if (!ops->name || !ops->url_schemes) missing = "name/url_schemes";
	else if (!ops->checkpoint_load != !ops->checkpoint_store) missing = "checkpoint_load/_store pair";
	if (missing)
		return ps_error_set(err, PS_EINVAL, "sink plugin %s lacks required callback %s",
		                    ops->name ? ops->name : "?", missing);
	return PS_OK;
}

const ps_source_ops *ps_plugin_source_for(const char *scheme, ps_error *err)
{
	ps_buf known;

	for (int i = 0; source_table[i]; i++) {
		if (!has_scheme(source_table[i]->url_schemes, scheme))
			continue;
		if (ps_plugin_check_source(source_table[i], err) != PS_OK)
			return NULL;
		return source_table[i];
	}
	ps_buf_init(&known, 1024);
	for (int i = 0; source_table[i]; i++)
		list_schemes(&known, source_table[i]->url_schemes);
	ps_error_set(err, PS_EINVAL, "%s:// sources are not supported by this build; supported: %s",
	             scheme, known.data ? known.data : "none");
	ps_buf_free(&known);
	return NULL;
}

const ps_sink_ops *ps_plugin_sink_for(const char *scheme, ps_error *err)
{
	ps_buf known;

	for (int i = 0; sink_table[i]; i++) {
		if (!has_scheme(sink_table[i]->url_schemes, scheme))
			continue;
		if (ps_plugin_check_sink(sink_table[i], err) != PS_OK)
			return NULL;
		return sink_table[i];
	}
	ps_buf_init(&known, 1024);
	for (int i = 0; sink_table[i]; i++)
		list_schemes(&known, sink_table[i]->url_schemes);
	ps_error_set(err, PS_EINVAL, "%s:// targets are not supported by this build; supported: %s",
	             scheme, known.data ? known.data : "none");
	ps_buf_free(&known);
	return NULL;
}

/* --- source wrappers ------------------------------------------------------ */

#define SRC_CTX(s, err) ps_error_add_context((err), "source %s", (s)->ops->name)
#define SNK_CTX(k, err) ps_error_add_context((err), "target %s", (k)->ops->name)

static void timed(ps_plugin_timing *t, uint64_t start)
{
	t->calls++;
	t->total_ns += ps_now_ns() - start;
}

int ps_src_open(ps_src *s, const ps_source_ops *ops, const ps_source_config *cfg,
                ps_error *err)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->ops = ops;
	rc = ops->open(&s->impl, cfg, err);
	if (rc != PS_OK) {
		s->impl = NULL;
		SRC_CTX(s, err);
	}
	return rc;
}

int ps_src_prepare(ps_src *s, int mode, ps_prepare_result *res, ps_error *err)
{
	int rc;

	memset(res, 0, sizeof(*res));
	rc = s->ops->prepare(s->impl, mode, res, err);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

int ps_src_start(ps_src *s, const char *position, const char *redo_until, ps_error *err)
{
	int rc = s->ops->start(s->impl, position, redo_until, err);

	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, position %s", s->ops->name,
		                     position && *position ? position : "(slot)");
	return rc;
}

int ps_src_read(ps_src *s, ps_read_item *item, int timeout_ms, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc;

	memset(item, 0, sizeof(*item));
	rc = s->ops->read(s->impl, item, timeout_ms, err);
	timed(&s->read_time, t0);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

int ps_src_ack(ps_src *s, const char *position, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc = s->ops->ack(s->impl, position, err);

	timed(&s->ack_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "source %s, acknowledging %s", s->ops->name,
		                     position && *position ? position : "(none)");
	return rc;
}

int ps_src_compare(const ps_src *s, const char *a, const char *b)
{
	return s->ops->position_compare(a, b);
}

int ps_src_current_position(ps_src *s, char *buf, size_t len, ps_error *err)
{
	int rc;

	if (len)
		buf[0] = '\0';
	if (!s->ops->current_position)
		return PS_OK;
	rc = s->ops->current_position(s->impl, buf, len, err);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

long long ps_src_distance(const ps_src *s, const char *from, const char *to)
{
	if (!s->ops->position_distance || !from || !to || !*from || !*to)
		return -1;
	return s->ops->position_distance(from, to);
}

int ps_src_drop(ps_src *s, ps_error *err)
{
	int rc;

	if (!s->ops->drop)
		return PS_OK;
	rc = s->ops->drop(s->impl, err);
	if (rc != PS_OK)
		SRC_CTX(s, err);
	return rc;
}

void ps_src_close(ps_src *s)
{
	if (s->ops && s->impl)
		s->ops->close(s->impl);
	s->impl = NULL;
}

/* --- sink wrappers -------------------------------------------------------- */

int ps_snk_open(ps_snk *k, const ps_sink_ops *ops, const ps_sink_config *cfg,
                ps_error *err)
{
	int rc;

	memset(k, 0, sizeof(*k));
	k->ops = ops;
	rc = ops->open(&k->impl, cfg, err);
	if (rc != PS_OK) {
		k->impl = NULL;
		SNK_CTX(k, err);
	}
	return rc;
}

int ps_snk_begin(ps_snk *k, const ps_txn *txn, ps_error *err)
{
	int rc;

	if (!k->ops->begin)
		return PS_OK;
	rc = k->ops->begin(k->impl, txn, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, transaction %llu", k->ops->name,
		                     (unsigned long long)txn->xid);
	return rc;
}

int ps_snk_write(ps_snk *k, const ps_txn *txn, const ps_change *c, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc = k->ops->write(k->impl, txn, c, err);

	timed(&k->write_time, t0);
	if (rc != PS_OK) {
		if (c->table)
			ps_error_add_context(err, "target %s, table %s.%s, transaction %llu",
			                     k->ops->name, c->table->schema, c->table->name,
			                     (unsigned long long)txn->xid);
		else
			SNK_CTX(k, err);
	}
	return rc;
}

int ps_snk_commit(ps_snk *k, const ps_txn *txn, ps_error *err)
{
	int rc;

	if (!k->ops->commit)
		return PS_OK;
	rc = k->ops->commit(k->impl, txn, err);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, commit at %s", k->ops->name, txn->position);
	return rc;
}

int ps_snk_flush(ps_snk *k, ps_error *err)
{
	uint64_t t0 = ps_now_ns();
	int rc = k->ops->flush(k->impl, err);

	timed(&k->flush_time, t0);
	if (rc != PS_OK)
		ps_error_add_context(err, "target %s, flush", k->ops->name);
	return rc;
}

int ps_snk_has_checkpoint_store(const ps_snk *k)
{
	return k->ops->checkpoint_store != NULL;
}

void ps_snk_close(ps_snk *k)
{
	if (k->ops && k->impl)
		k->ops->close(k->impl);
	k->impl = NULL;
}
