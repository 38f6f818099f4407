/*
 * pg.c — placeholder: the pg sink is being written (issue 3). Refuses to open.
 */
#include "penstock/sink.h"

static int stub_open(ps_sink **out, const ps_sink_config *cfg, ps_error *err)
{
	(void)cfg;
	*out = NULL;
	return ps_error_set(err, PS_EINVAL, "the pg target is not implemented yet");
}

static int stub_write(ps_sink *s, const ps_txn *t, const ps_change *c, ps_error *err)
{
	(void)s; (void)t; (void)c;
	return ps_error_set(err, PS_ERR, "not implemented");
}

static int stub_flush(ps_sink *s, ps_error *err) { (void)s; (void)err; return PS_OK; }
static void stub_close(ps_sink *s) { (void)s; }

static const char *const schemes[] = {"postgresql", "postgres", NULL};

const ps_sink_ops ps_sink_pg = {
	.abi_version = PS_SINK_ABI_VERSION,
	.name = "pg",
	.url_schemes = schemes,
	.open = stub_open,
	.write = stub_write,
	.flush = stub_flush,
	.close = stub_close,
};
